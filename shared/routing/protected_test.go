package routing_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/routing"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// A protected guild that still has a mapping (protected after it was mapped) goes to
// production from every tier: the database, then Redis, then the in-process cache. The route
// cache used to drop the flag of a mapped route, so every cache hit sent it to the sandbox.
func TestProtectedMappedGuildStaysInProductionOnEveryTier(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		protect func(t *testing.T, e *env) []func(*routing.Options)
	}{
		{
			// SANDBOX_PROTECTED_GUILDS, wired as the router's main does: the store knows the
			// set and so does the router (Config.RouterOptions).
			name: "configured",
			protect: func(t *testing.T, e *env) []func(*routing.Options) {
				return []func(*routing.Options){func(o *routing.Options) {
					o.Store = controlplane.NewManager(e.pool, controlplane.Options{
						Limits: sandbox.DefaultLimits(), ProtectedGuilds: []string{gProtected},
					})
					o.ProtectedGuilds = []string{gProtected}
				}}
			},
		},
		{
			// A protected_guilds row: only the database knows it, and the Redis tier must
			// carry it.
			name: "table",
			protect: func(t *testing.T, e *env) []func(*routing.Options) {
				if _, err := e.pool.Exec(t.Context(), `INSERT INTO sandbox_control.protected_guilds (guild_id, reason, created_by)
					VALUES ($1, 'protected after it was mapped', 'test')`, gProtected); err != nil {
					t.Fatal(err)
				}
				return nil
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := t.Context()
			sb := e.sandbox(t, "mapped-then-protected", gProtected, gRun)
			q := &queue{}
			r := e.router(t, q, tc.protect(t, e)...)

			route := func(n int, tier routing.Tier) {
				t.Helper()
				res := r.Route(ctx, nil, []routing.Message{
					msg(fmt.Sprintf("p%d", n), dispatch("MESSAGE_CREATE", n, gProtected)),
					msg(fmt.Sprintf("s%d", n), dispatch("MESSAGE_CREATE", n, gRun)),
				})
				equal(t, "failed", res.Failed, nil)
				wantCounts(t, fmt.Sprintf("batch %d lookups", n), res.Lookups, map[routing.Tier]int{tier: 2})
				wantCounts(t, fmt.Sprintf("batch %d routed", n), res.Routed, map[routing.Destination]int{
					routing.DestinationProduction: 1, routing.DestinationSandbox: 1,
				})
			}

			route(1, routing.TierDatabase)
			cached, _, ok, err := e.cache.Get(ctx, gProtected)
			if err != nil || !ok || !cached.Protected || cached.SandboxID != sb.ID {
				t.Errorf("route cache entry %+v ok %v err %v: want sandbox %s, protected", cached, ok, err, sb.ID)
			}
			e.clock.Add(memoryTTL) // the in-process entry expires: Redis answers
			route(2, routing.TierRedis)
			route(3, routing.TierMemory) // Redis's answer was kept in process

			equal(t, "production", q.acceptedIDs(), []string{"p1", "p2", "p3"})
			equal(t, "stream", e.streamIDs(t, sb.ID), []string{"s1", "s2", "s3"})
		})
	}
}

// A configured protected guild goes to production even when its Redis entry says otherwise:
// here an entry forged in the old encoding (which still decodes, as unprotected) points at a
// running sandbox that really maps the guild, so delivering there would succeed. The router
// applies SANDBOX_PROTECTED_GUILDS itself, so neither the Redis hit nor the in-process copy of
// it reaches the sandbox. Built from the configuration as the router's main does
// (Config.RouterOptions), which must pass the set on.
func TestForgedRouteCacheEntryCannotUnprotect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	sb := e.sandbox(t, "forged-target", gProtected)
	forged := routecache.Encode(sandbox.Route{GuildID: gProtected, SandboxID: sb.ID, Status: sandbox.StatusRunning, ExpiresAt: time.Now().Add(time.Hour)})
	if err := e.rdb.Set(ctx, keys.RouteCache(gProtected), forged, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	q := &queue{}
	cfg := routing.Config{
		Shared:             config.Shared{ProtectedGuilds: []string{gProtected}},
		ProductionQueueURL: productionQueue,
		MemoryCacheTTL:     time.Minute,
	}
	cache := routecache.New(e.rdb, cfg.RouteCacheTTL, cfg.RouteCacheNegativeTTL)
	manager := controlplane.NewManager(e.pool, controlplane.Options{Limits: cfg.Limits, ProtectedGuilds: cfg.ProtectedGuilds, Routes: cache})
	r, err := routing.New(cfg.RouterOptions(routing.Options{
		Store: manager, Publisher: manager, Cache: cache, Redis: e.rdb, Production: q,
	}))
	if err != nil {
		t.Fatal(err)
	}

	res := r.Route(ctx, nil, []routing.Message{msg("m1", dispatch("MESSAGE_CREATE", 1, gProtected))})
	equal(t, "failed", res.Failed, nil)
	wantCounts(t, "first lookups", res.Lookups, map[routing.Tier]int{routing.TierRedis: 1})
	res = r.Route(ctx, nil, []routing.Message{msg("m2", dispatch("MESSAGE_CREATE", 2, gProtected))})
	equal(t, "failed", res.Failed, nil)
	wantCounts(t, "second lookups", res.Lookups, map[routing.Tier]int{routing.TierMemory: 1})

	equal(t, "production", q.acceptedIDs(), []string{"m1", "m2"})
	equal(t, "stream", e.streamIDs(t, sb.ID), nil)
}

// A configured protected guild needs no lookup to be routed: with the database down and no
// cache entry its events still go to production rather than failing.
func TestConfiguredProtectedGuildNeedsNoLookup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	dead := deadRedis(t)
	pool := closedPool(t, e)
	q := &queue{}
	r := e.router(t, q, func(o *routing.Options) {
		o.Store = controlplane.NewManager(pool, controlplane.Options{Limits: sandbox.DefaultLimits()})
		o.Cache = nil
		o.Redis = dead
		o.ProtectedGuilds = []string{gProtected}
	})
	res := r.Route(ctx, nil, []routing.Message{
		msg("p1", dispatch("MESSAGE_CREATE", 1, gProtected)),
		msg("o1", dispatch("MESSAGE_CREATE", 2, gOther)),
	})
	equal(t, "failed", res.Failed, []string{"o1"})
	wantCounts(t, "errors", res.Errors, map[routing.ErrorKind]int{routing.KindRouteLookup: 1})
	equal(t, "production", q.acceptedIDs(), []string{"p1"})
}

// closedPool returns a pool on e's database, already closed: every query fails.
func closedPool(t *testing.T, e *env) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(t.Context(), e.pool.Config())
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	return pool
}
