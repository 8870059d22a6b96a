package routing_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/routing"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// beforeAppend is a go-redis hook that runs its func once, just before the first pipeline
// carrying stream appends is sent: the point where a batch's stream delivery begins.
type beforeAppend struct {
	once sync.Once
	f    func()
}

func (h *beforeAppend) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *beforeAppend) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *beforeAppend) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Name() == "xadd" }) {
			h.once.Do(h.f)
		}
		return next(ctx, cmds)
	}
}

// The primary holding some sandboxes' streams becomes unreachable just as a batch is being
// appended: the events of those sandboxes are batch item failures (counted and logged), the
// others are delivered. Once the replica has taken over, the queue delivers the failed ones
// again and every stream holds each of its events exactly once: nothing lost, nothing twice.
func TestFailoverDuringRouting(t *testing.T) {
	e := newEnv(t)
	cluster := testenv.FailoverCluster(t)
	ctx := t.Context()

	// Sandboxes until some streams are on one primary (the victim) and some on others.
	var victims, others []*sandbox.Sandbox
	var victim string
	for i := 0; len(victims) == 0 || len(others) == 0; i++ {
		if i == 30 {
			t.Fatalf("30 sandboxes, all on one primary")
		}
		sb := e.sandbox(t, fmt.Sprintf("failover-%02d", i), fmt.Sprintf("90000000000001%05d", i))
		primary := cluster.PrimaryOf(keys.EventStream(sb.ID))
		if victim == "" {
			victim = primary
		}
		if primary == victim {
			victims = append(victims, sb)
		} else {
			others = append(others, sb)
		}
	}
	const perSandbox = 3
	var batch []routing.Message
	var wantFailed []string
	events := map[string][]string{} // sandbox id -> its message ids, in batch order
	for n := range perSandbox {
		for _, sb := range slices.Concat(victims, others) {
			id := fmt.Sprintf("%s-%d", sb.Name, n)
			batch = append(batch, msg(id, dispatch("MESSAGE_CREATE", n+1, sb.Guilds[0])))
			events[sb.ID] = append(events[sb.ID], id)
			if slices.Contains(victims, sb) {
				wantFailed = append(wantFailed, id)
			}
		}
	}

	// The router as production builds it: the functions' client and the default deadline.
	rdb := testenv.ProductionRedis(t)
	var logs testenv.SyncBuffer
	r := e.router(t, &queue{}, func(o *routing.Options) {
		o.Redis = rdb
		o.Cache = routecache.New(rdb, 0, 0)
		o.RedisTimeout = routing.DefaultRedisTimeout
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	const asleep = 8 * time.Second // well past the failover (about 4 s with a 2 s node timeout)
	rdb.AddHook(&beforeAppend{f: func() { cluster.Unreachable(victim, asleep) }})

	start := time.Now()
	res := r.Route(ctx, nil, batch)
	t.Logf("batch routed in %s with %s asleep: %d failed, routed %v, errors %v",
		time.Since(start).Round(time.Millisecond), victim, len(res.Failed), res.Routed, res.Errors)
	equal(t, "failed with their primary unreachable", res.Failed, wantFailed)
	if got := res.Routed[routing.DestinationSandbox]; got != len(batch)-len(wantFailed) {
		t.Errorf("delivered to sandboxes: %d, want %d", got, len(batch)-len(wantFailed))
	}
	if got := res.Errors[routing.KindDeliveryStream]; got != len(wantFailed) {
		t.Errorf("stream delivery errors counted: %d, want %d", got, len(wantFailed))
	}
	for _, id := range wantFailed {
		if !strings.Contains(logs.String(), "msg=\"message not routed\" message_id="+id+" kind=delivery_stream") {
			t.Errorf("failure of %s not logged:\n%s", id, logs.String())
		}
	}

	promoted := cluster.WaitPromoted(victim, keys.EventStream(victims[0].ID))
	t.Logf("%s promoted %s after the batch", promoted, time.Since(start).Round(time.Millisecond))
	cluster.WaitHealthy() // the sleeper is back, a replica now
	if role := cluster.Role(victim); role != "slave" {
		t.Fatalf("%s woke up as %s, want a replica", victim, role)
	}

	var again []routing.Message // what the queue delivers again: the failed messages
	for _, m := range batch {
		if slices.Contains(res.Failed, m.ID) {
			again = append(again, m)
		}
	}
	res = r.Route(ctx, nil, again)
	if len(res.Failed) != 0 || res.Routed[routing.DestinationSandbox] != len(again) {
		t.Fatalf("redelivery: failed %q, routed %v, errors %v", res.Failed, res.Routed, res.Errors)
	}
	for _, sb := range slices.Concat(victims, others) {
		equal(t, "stream of "+sb.Name, e.streamIDs(t, sb.ID), events[sb.ID])
	}
}
