package sqsadapter

import (
	"context"
	"errors"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
)

// FunctionName names the router in logs.
const FunctionName = "router"

// Poll returns the router's local mode (lambdakit.Local.Run): a Poller that receives batches
// from queueURL on ingress and hands each to handler, the router's Lambda handler as
// lambdakit.Wrap made it, until ctx ends. Without a queue URL it refuses to start.
func Poll(ingress Queue, queueURL string, handler lambdakit.Handler[events.SQSEvent, events.SQSEventResponse], log *slog.Logger) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if queueURL == "" {
			return errors.New("outside Lambda the router polls INGRESS_QUEUE_URL, which is not set (or pass -invoke EVENT.json)")
		}
		return (&Poller{Queue: ingress, QueueURL: queueURL, Handler: handler, Logger: log}).Run(ctx)
	}
}
