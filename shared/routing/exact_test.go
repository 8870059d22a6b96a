package routing_test

import (
	"context"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/routing"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Guilds of the exact-routing tests.
const (
	gRace   = "1081240586043576370"
	gExpire = "1081240586043576371"
	gParked = "1081240586043576372"
	gLost   = "1081240586043576373"
)

// interleavedStore is the authoritative tier with a hook between its query and its answer:
// the hook runs once, after PostgreSQL answered and before the router writes the answer
// back, which forces the interleaving of a route change with a lookup in progress.
type interleavedStore struct {
	routing.RouteStore
	between func()
}

func (s *interleavedStore) LookupRoutes(ctx context.Context, guilds []string) (map[string]sandbox.Route, error) {
	routes, err := s.RouteStore.LookupRoutes(ctx, guilds)
	if f := s.between; f != nil {
		s.between = nil
		f()
	}
	return routes, err
}

func oneEvent(r *routing.Router, ctx context.Context, id, guild string) routing.Result {
	return r.Route(ctx, nil, []routing.Message{msg(id, dispatch("MESSAGE_CREATE", 1, guild))})
}

// A router reads "not mapped" from PostgreSQL while the API maps the guild and publishes the
// change: the write-back is refused (the generation moved), so no stale negative entry is
// cached, and the very next batch routes to the sandbox.
func TestWriteBackAfterAPublishedMappingIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	sb := e.sandbox(t, "race-map")
	e.register(t, gRace)
	q := &queue{}
	store := &interleavedStore{RouteStore: e.manager}
	store.between = func() {
		if err := e.manager.AddGuild(ctx, owner, sb.ID, gRace, false); err != nil {
			t.Error(err)
		}
	}
	r := e.router(t, q, func(o *routing.Options) { o.Store = store })

	res := oneEvent(r, ctx, "during", gRace) // answered from the state before the mapping
	wantCounts(t, "routed during the change", res.Routed, map[routing.Destination]int{routing.DestinationProduction: 1})
	if _, _, ok, err := e.cache.Get(ctx, gRace); err != nil || ok {
		t.Fatalf("an entry computed before the change was cached: ok %v err %v", ok, err)
	}
	res = oneEvent(r, ctx, "after", gRace)
	wantCounts(t, "routed after the change", res.Routed, map[routing.Destination]int{routing.DestinationSandbox: 1})
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"after"})
}

// The mirror race: a router reads "mapped, running" while the guild is unmapped, then while
// its sandbox is destroyed. No stale positive entry survives either change.
func TestWriteBackAfterAPublishedUnmapOrDestroyIsRefused(t *testing.T) {
	t.Parallel()
	for _, change := range []string{"unmap", "destroy"} {
		t.Run(change, func(t *testing.T) {
			e := newEnv(t)
			ctx := t.Context()
			sb := e.sandbox(t, "race-"+change, gRace)
			q := &queue{}
			store := &interleavedStore{RouteStore: e.manager}
			store.between = func() {
				var err error
				if change == "unmap" {
					err = e.manager.RemoveGuild(ctx, owner, sb.ID, gRace)
				} else {
					_, _, err = e.manager.RequestDestroy(ctx, owner, sb.ID)
				}
				if err != nil {
					t.Error(err)
				}
			}
			r := e.router(t, q, func(o *routing.Options) { o.Store = store })

			res := oneEvent(r, ctx, "during", gRace)
			wantCounts(t, "routed during the change", res.Routed, map[routing.Destination]int{routing.DestinationSandbox: 1})
			if _, _, ok, err := e.cache.Get(ctx, gRace); err != nil || ok {
				t.Fatalf("an entry computed before the change was cached: ok %v err %v", ok, err)
			}
			want := map[routing.Destination]int{routing.DestinationProduction: 1}
			if change == "destroy" {
				want = map[routing.Destination]int{routing.DestinationDropped: 1}
			}
			res = oneEvent(r, ctx, "after", gRace)
			wantCounts(t, "routed after the change", res.Routed, want)
			equal(t, "stream", e.streamIDs(t, sb.ID), []string{"during"})
		})
	}
}

// Redis is unreachable for the API when it maps a guild (the publication fails; the change
// waits in route_changes), while a router still has the old answer in both cache tiers.
// The router publishes pending changes every PublishInterval: the first batch after that
// interval routes by the new mapping. Before it, the stale answer stands: that is the bound.
func TestUnpublishedChangeConvergesWithinThePublishInterval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	sb := e.sandbox(t, "lost-publish")
	q := &queue{}
	r := e.router(t, q, func(o *routing.Options) {
		o.Publisher = e.manager
		o.PublishInterval = time.Second
	})
	oneEvent(r, ctx, "before", gLost) // production, cached in memory and Redis as such

	// The API's Redis is down: its publication fails, the change is committed.
	cut := controlplane.NewManager(e.pool, controlplane.Options{
		Limits: sandbox.DefaultLimits(), Routes: routecache.New(deadRedis(t), 0, 0),
	})
	e.register(t, gLost)
	if err := cut.AddGuild(ctx, owner, sb.ID, gLost, false); err != nil {
		t.Fatal(err)
	}
	var pending int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM sandbox_control.route_changes`).Scan(&pending); err != nil || pending == 0 {
		t.Fatalf("no pending route change recorded (%d, %v)", pending, err)
	}

	e.clock.Add(time.Second - time.Millisecond)
	res := oneEvent(r, ctx, "stale", gLost)
	wantCounts(t, "within the interval", res.Routed, map[routing.Destination]int{routing.DestinationProduction: 1})

	e.clock.Add(time.Millisecond)
	res = oneEvent(r, ctx, "converged", gLost)
	wantCounts(t, "after the interval", res.Routed, map[routing.Destination]int{routing.DestinationSandbox: 1})
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM sandbox_control.route_changes`).Scan(&pending); err != nil || pending != 0 {
		t.Fatalf("%d route changes still pending (%v)", pending, err)
	}
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"converged"})
}

// A running sandbox past its expiry, not torn down yet, receives nothing: its events are
// parked, not delivered and not sent to production, on every tier.
func TestExpiredRunningSandboxReceivesNothing(t *testing.T) {
	t.Parallel()
	e, sb, q, r := oneSandbox(t, "expiring", gExpire)
	ctx := t.Context()
	res := oneEvent(r, ctx, "alive", gExpire)
	wantCounts(t, "before expiry", res.Routed, map[routing.Destination]int{routing.DestinationSandbox: 1})

	e.clock.Add(sb.ExpiresAt.Sub(e.clock.Now())) // past the in-process TTL too
	for _, tier := range []routing.Tier{routing.TierRedis, routing.TierMemory} {
		res = oneEvent(r, ctx, "expired-"+string(tier), gExpire)
		wantCounts(t, "after expiry", res.Routed, map[routing.Destination]int{routing.DestinationParked: 1})
		wantCounts(t, "lookups", res.Lookups, map[routing.Tier]int{tier: 1})
	}
	if err := e.cache.Invalidate(ctx, gExpire); err != nil {
		t.Fatal(err)
	}
	res = oneEvent(r, ctx, "expired-database", gExpire)
	wantCounts(t, "after expiry, from PostgreSQL", res.Routed, map[routing.Destination]int{routing.DestinationParked: 1})
	wantCounts(t, "lookups", res.Lookups, map[routing.Tier]int{routing.TierDatabase: 1})
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"alive"})
	equal(t, "production", q.acceptedIDs(), nil)
}

// A torn-down sandbox's test guild is parked through all three tiers and goes to production
// only after its owner releases it.
func TestParkedGuildReachesProductionOnlyAfterRelease(t *testing.T) {
	t.Parallel()
	e, sb, q, r := oneSandbox(t, "parking", gParked)
	ctx := t.Context()
	oneEvent(r, ctx, "alive", gParked)

	e.tearDown(t, sb.ID)

	for _, tier := range []routing.Tier{routing.TierDatabase, routing.TierMemory} {
		res := oneEvent(r, ctx, "parked-"+string(tier), gParked)
		wantCounts(t, "parked", res.Routed, map[routing.Destination]int{routing.DestinationParked: 1})
		wantCounts(t, "lookups", res.Lookups, map[routing.Tier]int{tier: 1})
	}
	fresh := e.router(t, q)
	res := oneEvent(fresh, ctx, "parked-redis", gParked)
	wantCounts(t, "parked, from Redis", res.Routed, map[routing.Destination]int{routing.DestinationParked: 1})
	wantCounts(t, "lookups", res.Lookups, map[routing.Tier]int{routing.TierRedis: 1})
	equal(t, "production before the release", q.acceptedIDs(), nil)

	if err := e.manager.ReleaseGuild(ctx, owner, gParked, sb.ID); err != nil {
		t.Fatal(err)
	}
	for _, rt := range []*routing.Router{r, fresh} {
		res = oneEvent(rt, ctx, "released", gParked)
		wantCounts(t, "after the release", res.Routed, map[routing.Destination]int{routing.DestinationProduction: 1})
	}
	equal(t, "production", q.acceptedIDs(), []string{"released", "released"})
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"alive"})
}
