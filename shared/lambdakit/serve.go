package lambdakit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// Local is how a function runs outside Lambda (docs/architecture.md, "Local mode").
type Local struct {
	// InvokeFile, when set (-invoke FILE), runs the handler once on the event in that file and
	// prints the response, instead of Run.
	InvokeFile string
	// Output receives that response; nil means os.Stdout.
	Output io.Writer
	// Run is the function's local mode, until ctx ends: the API on a loopback port, the router
	// polling a queue, cleanup once or every -interval.
	Run func(ctx context.Context) error
}

// Serve is the one way a function binary starts serving, once its main has built the whole
// graph and the handler (Wrap): inside Lambda (AWS_LAMBDA_RUNTIME_API set) it serves h through
// the runtime API and does not return; outside, it invokes h once on local.InvokeFile when
// that is set, and otherwise runs local.Run.
func Serve[In, Out any](ctx context.Context, h Handler[In, Out], local Local) error {
	switch {
	case InLambda():
		return Start(h)
	case local.InvokeFile != "":
		out := local.Output
		if out == nil {
			out = os.Stdout
		}
		return InvokeFile(ctx, h, local.InvokeFile, out)
	case local.Run == nil:
		return errors.New("this function has no local mode: run it in Lambda, or with -invoke EVENT.json")
	default:
		return local.Run(ctx)
	}
}

// WrapRun is Wrap for a local mode that calls its domain directly, without an event (cleanup's
// local runs): each call of the returned function is one invocation, with a fresh request id,
// its own Recorder from emitter, panic recovery and Wrap's log line.
func WrapRun[Out any](name string, emitter *metrics.Emitter, h func(ctx context.Context, rec *metrics.Recorder) (Out, error), opts ...WrapOption) func(ctx context.Context) (Out, error) {
	run := Wrap(name, emitter, func(ctx context.Context, rec *metrics.Recorder, _ struct{}) (Out, error) {
		return h(ctx, rec)
	}, opts...)
	return func(ctx context.Context) (Out, error) { return run(NewLocalContext(ctx), struct{}{}) }
}

// Main is the body of every function's main, once its flags are parsed: it sets up logging
// (SetupLogging on stderr), runs run with a context that SIGINT and SIGTERM cancel, and when
// run fails logs "<name> stopped" with the error and exits with status 1.
func Main(name string, run func(ctx context.Context, logger *slog.Logger) error) {
	logger := SetupLogging(os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, logger)
	stop()
	if err != nil {
		logger.Error(name+" stopped", logkey.Error, err)
		os.Exit(1)
	}
}
