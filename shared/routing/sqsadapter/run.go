package sqsadapter

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// FunctionName names the router in logs.
const FunctionName = "router"

// Local says how to run outside Lambda.
type Local struct {
	// EventFile, when set, is an SQS event JSON file to invoke the handler with once.
	EventFile string
	// IngressQueueURL is the queue to poll otherwise (INGRESS_QUEUE_URL).
	IngressQueueURL string
	// Output receives the response of an EventFile invocation; nil means os.Stdout.
	Output io.Writer
}

// Run serves router: once on local.EventFile when set; else through the Lambda runtime inside
// Lambda; else by polling local.IngressQueueURL on ingress until ctx ends.
func Run(ctx context.Context, router BatchRouter, emitter *metrics.Emitter, ingress Queue, local Local) error {
	handler := lambdakit.Wrap(FunctionName, emitter, Handler(router))
	switch {
	case local.EventFile != "":
		out := local.Output
		if out == nil {
			out = os.Stdout
		}
		return lambdakit.InvokeFile(ctx, handler, local.EventFile, out)
	case lambdakit.InLambda():
		return lambdakit.Start(handler)
	case local.IngressQueueURL == "":
		return errors.New("outside Lambda the router polls INGRESS_QUEUE_URL, which is not set (or pass -invoke EVENT.json)")
	default:
		return (&Poller{Queue: ingress, QueueURL: local.IngressQueueURL, Handler: handler}).Run(ctx)
	}
}
