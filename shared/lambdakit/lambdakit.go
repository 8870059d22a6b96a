// Package lambdakit is the Lambda glue the three function binaries share: detecting Lambda,
// JSON logging with the request id, a handler wrapper that meters, recovers and logs every
// invocation, and the one way a function starts (Serve): through the Lambda runtime API
// inside Lambda, and outside it once on an event file (-invoke) or in the function's local
// mode (docs/architecture.md, "Local mode").
//
// A function's main builds its whole graph (configuration, clients, the schema check, stores,
// the service, the handler), then:
//
//	handler := lambdakit.Wrap("router", emitter, sqsadapter.Handler(router))
//	return lambdakit.Serve(ctx, handler, lambdakit.Local{
//		InvokeFile: invokeFile,
//		Run:        sqsadapter.Poll(queues, cfg.IngressQueueURL, handler, logger),
//	})
package lambdakit

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// Handler is a Lambda handler as aws-lambda-go accepts it.
type Handler[In, Out any] = func(ctx context.Context, in In) (Out, error)

// MeteredHandler is a handler that records metrics into the Recorder of its invocation.
type MeteredHandler[In, Out any] = func(ctx context.Context, rec *metrics.Recorder, in In) (Out, error)

// ErrNotInLambda is returned by Start outside the Lambda execution environment.
var ErrNotInLambda = errors.New("not running in AWS Lambda: AWS_LAMBDA_RUNTIME_API is not set")

// InLambda reports whether the process runs in the Lambda execution environment. It looks at
// AWS_LAMBDA_RUNTIME_API, the variable the runtime client needs: AWS_LAMBDA_FUNCTION_NAME
// alone (exported in a shell, say) is not enough to serve invocations.
func InLambda() bool {
	return os.Getenv("AWS_LAMBDA_RUNTIME_API") != ""
}

// Start serves h through the Lambda runtime API and never returns in Lambda; outside it, it
// returns ErrNotInLambda instead of letting aws-lambda-go exit the process.
func Start[In, Out any](h Handler[In, Out]) error {
	if !InLambda() {
		return ErrNotInLambda
	}
	lambda.Start(h)
	return nil
}
