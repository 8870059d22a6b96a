package routing_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// The router counts each sandbox's events in its usage hash, in the pipeline of the batch's
// appends, with the time of the last one; a stream that is gone takes no event and gets no
// hash again; and a server that lost the script (SCRIPT FLUSH) still counts every batch.
func TestRouterCountsEventsInTheUsageHash(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	a := e.sandbox(t, "usage-a", gRun)
	b := e.sandbox(t, "usage-b", gRun2)
	r := e.router(t, &queue{})

	usage := func(id string) map[string]string {
		t.Helper()
		h, err := e.rdb.HGetAll(ctx, keys.Usage(id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	route := func(guild string, n int) routing.Result {
		t.Helper()
		var batch []routing.Message
		for i := range n {
			batch = append(batch, msg("m"+strconv.Itoa(i), dispatch("MESSAGE_CREATE", i, guild)))
		}
		return r.Route(ctx, nil, batch)
	}

	res := r.Route(ctx, nil, []routing.Message{
		msg("a1", dispatch("MESSAGE_CREATE", 1, gRun)), msg("b1", dispatch("MESSAGE_CREATE", 2, gRun2)),
		msg("a2", dispatch("MESSAGE_CREATE", 3, gRun)), msg("p1", dispatch("MESSAGE_CREATE", 4, gUnmapped)),
		msg("a3", dispatch("MESSAGE_CREATE", 5, gRun)),
	})
	if res.Routed[routing.DestinationSandbox] != 4 {
		t.Fatalf("routed %v", res.Routed)
	}
	at := strconv.FormatInt(e.clock.Now().UnixMilli(), 10)
	if h := usage(a.ID); h[keys.UsageFieldEvents] != "3" || h[keys.UsageFieldLastEventMS] != at {
		t.Errorf("usage of a: %v, want 3 events at %s", h, at)
	}
	if h := usage(b.ID); h[keys.UsageFieldEvents] != "1" {
		t.Errorf("usage of b: %v", h)
	}

	// A later batch adds up and moves the last event on.
	e.clock.Add(90 * time.Second)
	route(gRun, 4)
	if h := usage(a.ID); h[keys.UsageFieldEvents] != "7" || h[keys.UsageFieldLastEventMS] != strconv.FormatInt(e.clock.Now().UnixMilli(), 10) {
		t.Errorf("usage of a after a second batch: %v", h)
	}

	// The server lost the script: the batch counts anyway (one more round trip).
	if err := testenv.RedisAdmin(t, testenv.RedisDBOf(e.rdb)).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	route(gRun, 2)
	if h := usage(a.ID); h[keys.UsageFieldEvents] != "9" {
		t.Errorf("usage of a after SCRIPT FLUSH: %v", h)
	}

	// b is torn down behind the router's in-process cache: stream, then hash. Its next event
	// is dropped, and no hash comes back.
	if err := e.rdb.Unlink(ctx, keys.EventStream(b.ID), keys.Usage(b.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	res = route(gRun2, 2)
	if res.Routed[routing.DestinationDropped] != 2 {
		t.Fatalf("events of a stream that is gone: %v", res.Routed)
	}
	if n, err := e.rdb.Exists(ctx, keys.Usage(b.ID)).Result(); err != nil || n != 0 {
		t.Errorf("the usage hash of a torn-down sandbox came back (%d, %v)", n, err)
	}
}
