package lambdakit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// ErrPanic is what an invocation returns when its handler panicked. The panic value and
// stack go to the log only: the caller learns nothing about the code.
var ErrPanic = errors.New("internal error")

// Wrap adapts h, named name in logs, to a Lambda handler. Each invocation gets its own
// Recorder from emitter (nil: no metrics); the wrapper recovers a panic into ErrPanic,
// always flushes the Recorder, and logs the outcome and duration with the request id.
func Wrap[In, Out any](name string, emitter *metrics.Emitter, h MeteredHandler[In, Out]) Handler[In, Out] {
	var invoked atomic.Bool
	return func(ctx context.Context, in In) (out Out, err error) {
		coldStart := !invoked.Swap(true)
		start := time.Now()
		rec := emitter.Begin()
		defer func() {
			if p := recover(); p != nil {
				slog.ErrorContext(ctx, "handler panicked",
					"function", name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				var zero Out
				out, err = zero, fmt.Errorf("%s: %w", name, ErrPanic)
			}
			if flushErr := rec.Flush(); flushErr != nil {
				slog.ErrorContext(ctx, "metrics not written", "function", name, "error", flushErr)
			}
			attrs := []any{
				"function", name,
				"durationMs", float64(time.Since(start).Microseconds()) / 1000,
				"coldStart", coldStart,
			}
			if err != nil {
				slog.ErrorContext(ctx, "invocation failed", append(attrs, "error", err)...)
				return
			}
			slog.InfoContext(ctx, "invocation finished", attrs...)
		}()
		return h(ctx, rec, in)
	}
}
