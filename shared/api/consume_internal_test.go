package api

import (
	"context"
	"testing"
	"time"
)

// A wait never runs into the invocation's deadline: it ends consumeWaitMargin before it.
func TestBoundedWait(t *testing.T) {
	if got := boundedWait(context.Background(), 20*time.Second); got != 20*time.Second {
		t.Errorf("without a deadline: %s", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if got := boundedWait(ctx, 20*time.Second); got > 13*time.Second || got < 12*time.Second {
		t.Errorf("15s left: %s", got)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if got := boundedWait(ctx2, 10*time.Second); got != 0 {
		t.Errorf("1s left: %s", got)
	}
}
