package routing_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/routing"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The router runs on its own database role with exactly the privileges the migrate step
// grants it (controlplane.RouterGrants, docs/deploy.md): it passes the cold-start schema
// check, routes a batch, and publishes (and deletes) the route changes a writer left
// pending; it may change no table's shape, write nothing else, and not read the sandboxes'
// owners.
func TestRouterRunsOnItsOwnRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	if err := controlplane.GrantRouter(ctx, e.pool, testenv.RouterRole(t)); err != nil {
		t.Fatal(err)
	}
	rolePool, err := pgxpool.New(ctx, testenv.RouterURL(t, e.pool.Config().ConnString()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rolePool.Close)
	if err := controlplane.CheckSchema(ctx, rolePool); err != nil {
		t.Fatalf("the cold-start check as the router's role: %v", err)
	}

	sb := e.sandbox(t, "own-role", gRun)
	// A mapping whose writer could not reach Redis: its route change waits in route_changes.
	cut := controlplane.NewManager(e.pool, controlplane.Options{
		Limits: sandbox.DefaultLimits(), Routes: routecache.New(deadRedis(t), 0, 0),
	})
	e.register(t, gRun2)
	if err := cut.AddGuild(ctx, owner, sb.ID, gRun2, false); err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		t.Helper()
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM sandbox_control.route_changes`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if pending() == 0 {
		t.Fatal("no pending route change recorded")
	}

	// The router as its main builds it, on the role's pool.
	store := controlplane.NewManager(rolePool, controlplane.Options{Limits: sandbox.DefaultLimits(), Routes: e.cache})
	q := &queue{}
	r := e.router(t, q, func(o *routing.Options) { o.Store, o.Publisher = store, store })
	res := r.Route(ctx, nil, []routing.Message{
		msg("s1", dispatch("MESSAGE_CREATE", 1, gRun)),
		msg("s2", dispatch("MESSAGE_CREATE", 2, gRun2)),
		msg("p1", dispatch("MESSAGE_CREATE", 3, gUnmapped)),
	})
	equal(t, "failed", res.Failed, nil)
	wantCounts(t, "routed", res.Routed, map[routing.Destination]int{routing.DestinationSandbox: 2, routing.DestinationProduction: 1})
	wantCounts(t, "lookups", res.Lookups, map[routing.Tier]int{routing.TierDatabase: 3})
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"s1", "s2"})
	equal(t, "production", q.acceptedIDs(), []string{"p1"})
	if n := pending(); n != 0 {
		t.Errorf("%d route changes still pending: the router's role did not publish and delete them", n)
	}

	for _, sql := range []string{
		`CREATE TABLE sandbox_control.intruder (id int)`,
		`CREATE TABLE public.intruder (id int)`,
		`CREATE SCHEMA intruder`,
		`ALTER TABLE sandbox_control.guild_mappings ADD COLUMN intruder int`,
		`DROP TABLE sandbox_control.route_changes`,
		`CREATE INDEX intruder ON sandbox_control.route_changes (guild_id)`,
		`DELETE FROM sandbox_control.guild_mappings`,
		`UPDATE sandbox_control.sandboxes SET status = 'running'`,
		`INSERT INTO sandbox_control.route_changes (guild_id) VALUES ('1081240586043576399')`,
		`SELECT owner, metadata FROM sandbox_control.sandboxes`,
	} {
		_, err := rolePool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("as the router's role, %s: %v; want insufficient_privilege (42501)", sql, err)
		}
	}
}
