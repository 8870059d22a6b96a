package routing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

func TestWithDeadline(t *testing.T) {
	t.Run("a call that never returns", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		err := withDeadline(t.Context(), 20*time.Millisecond, func(context.Context) error {
			<-release // ignores its context, like go-redis without ContextTimeoutEnabled
			return nil
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("a call that returns", func(t *testing.T) {
		boom := errors.New("boom")
		if err := withDeadline(t.Context(), time.Minute, func(context.Context) error { return boom }); err != boom {
			t.Fatalf("err = %v, want the call's", err)
		}
	})
	t.Run("the call sees the deadline", func(t *testing.T) {
		err := withDeadline(t.Context(), time.Minute, func(ctx context.Context) error {
			if d, ok := ctx.Deadline(); !ok || time.Until(d) > time.Minute {
				t.Errorf("deadline %v, %t", d, ok)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no timeout, no deadline of its own", func(t *testing.T) {
		err := withDeadline(t.Context(), 0, func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); ok {
				t.Error("a deadline was set")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// The stream append's failure at the deadline is context.DeadlineExceeded, for every entry.
func TestStreamAppendDeadline(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled: the hook hangs first
	release := make(chan struct{})
	defer close(release)
	rdb.AddHook(hangingHook{release})
	defer func() { _ = rdb.Close() }()
	w := &streamWriter{rdb: rdb, maxLen: 10, timeout: 20 * time.Millisecond}
	done := make(chan []error, 1)
	go func() {
		done <- w.append(t.Context(), []streamEntry{
			{sandboxID: "a", values: []string{"k", "v"}}, {sandboxID: "b", values: []string{"k", "v"}},
		})
	}()
	var errs []error
	select {
	case errs = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the append did not return within 5 s: its deadline was not applied")
	}
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("entry %d: %v, want context.DeadlineExceeded", i, err)
		}
	}
}

// hangingHook makes every pipeline hang, whatever its context says, until release is closed:
// a Redis that never answers, to a client that does not watch the context.
type hangingHook struct{ release chan struct{} }

func (h hangingHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h hangingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h hangingHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(context.Context, []redis.Cmder) error {
		<-h.release
		return nil
	}
}

func TestPoisonDetail(t *testing.T) {
	if got := poisonDetail(nil); got != "" {
		t.Errorf("nil error: %q", got)
	}
	if got := poisonDetail(errors.New("gateway: malformed payload: missing op")); got != "gateway: malformed payload: missing op" {
		t.Errorf("short error: %q", got)
	}
	long := poisonDetail(errors.New(strings.Repeat("é", MaxPoisonDetailBytes)))
	if len(long) > MaxPoisonDetailBytes || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") {
		t.Errorf("long error: %d bytes, valid %t: %q", len(long), utf8.ValidString(long), long)
	}
	if got := poisonDetail(errors.New("a\x00b\xffc\uFFFEd")); got != "a?b?c?d" {
		t.Errorf("characters SQS refuses: %q", got)
	}
}
