package routing

import (
	"context"
	"fmt"
	"time"
)

// withDeadline runs call under a deadline of timeout (and ctx's own, when sooner) and returns
// at that deadline at the latest, whether or not call has returned. go-redis bounds its socket
// reads by its ReadTimeout, not by the context, unless the client was built with
// ContextTimeoutEnabled, and it retries (MaxRetries) a command that timed out: a context
// deadline alone does not bound a call to a Redis that accepts connections and never answers.
//
// A timeout of zero or less sets no deadline of its own. When call returns by the deadline, withDeadline returns call's error. Otherwise it returns
// an error wrapping the context's (context.DeadlineExceeded), and call goes on in the
// background until it notices its cancelled context or its client gives up: the caller must
// then not read anything call writes.
func withDeadline(ctx context.Context, timeout time.Duration, call func(ctx context.Context) error) error {
	if timeout <= 0 { // no deadline of its own
		return call(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		select {
		case err := <-done: // it finished at the deadline: its answer counts
			return err
		default:
			return fmt.Errorf("no answer within %s: %w", timeout, ctx.Err())
		}
	}
}
