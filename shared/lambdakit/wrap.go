package lambdakit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// ErrPanic is what an invocation returns when its handler panicked. The panic value and
// stack go to the log only: the caller learns nothing about the code.
var ErrPanic = errors.New("internal error")

// WrapOption configures Wrap.
type WrapOption func(*wrapOptions)

type wrapOptions struct{ log *slog.Logger }

// WithLogger makes Wrap log through log (slog.Default() otherwise).
func WithLogger(log *slog.Logger) WrapOption {
	return func(o *wrapOptions) { o.log = log }
}

// Wrap adapts h, named name in logs, to a Lambda handler. Each invocation gets its own
// Recorder from emitter (nil: no metrics); the wrapper recovers a panic into ErrPanic,
// always flushes the Recorder, and logs the outcome and duration with the request id.
func Wrap[In, Out any](name string, emitter *metrics.Emitter, h MeteredHandler[In, Out], opts ...WrapOption) Handler[In, Out] {
	o := wrapOptions{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	log := o.log
	var invoked atomic.Bool
	return func(ctx context.Context, in In) (out Out, err error) {
		coldStart := !invoked.Swap(true)
		start := time.Now()
		rec := emitter.Begin()
		defer func() {
			if p := recover(); p != nil {
				log.ErrorContext(ctx, "handler panicked",
					logkey.Function, name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				var zero Out
				out, err = zero, fmt.Errorf("%s: %w", name, ErrPanic)
			}
			if flushErr := rec.Flush(); flushErr != nil {
				log.ErrorContext(ctx, "metrics not written", logkey.Function, name, logkey.Error, flushErr)
			}
			attrs := []any{
				logkey.Function, name,
				logkey.DurationMS, float64(time.Since(start).Microseconds()) / 1000,
				logkey.ColdStart, coldStart,
			}
			if err != nil {
				log.ErrorContext(ctx, "invocation failed", append(attrs, logkey.Error, err)...)
				return
			}
			log.InfoContext(ctx, "invocation finished", attrs...)
		}()
		return h(ctx, rec, in)
	}
}
