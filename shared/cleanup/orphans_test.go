package cleanup

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// orphanKey identifies an orphan in comparisons.
type orphanKey struct {
	Type ResourceType
	Name string
}

func keysOf(os []Orphan) []orphanKey {
	out := []orphanKey{}
	for _, o := range os {
		out = append(out, orphanKey{o.Type, o.Name})
	}
	return out
}

// createRole makes a role of the sandboxes' server with a comment, dropped when the test ends.
func (e *env) createRole(t *testing.T, name, comment string) {
	t.Helper()
	ctx := context.Background()
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := e.workers.Exec(ctx, "CREATE ROLE "+ident+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	if comment != "" {
		if _, err := e.workers.Exec(ctx, "COMMENT ON ROLE "+ident+" IS '"+comment+"'"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = e.workers.Exec(context.Background(), "DROP ROLE IF EXISTS "+ident) })
}

// exec runs a statement on the control plane's database.
func (e *env) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// workerExec runs a statement on the sandboxes' database.
func (e *env) workerExec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := e.workers.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestOrphanFinderReportsExactlyTheOrphans(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	var database string
	if err := e.workers.QueryRow(ctx, `SELECT current_database()`).Scan(&database); err != nil {
		t.Fatal(err)
	}
	ours := provision.RoleCommentFor(database)
	t0 := e.clock.Now()

	// Live: a running sandbox, a sandbox being created and one being torn down.
	live := e.create(t, "live", 168*time.Hour, newGuild())
	e.seed(t, live, 3)
	creating := sandbox.NewID()
	e.exec(t, `INSERT INTO sandbox_control.sandboxes (id, name, owner, status, schema_name, db_role, created_at, updated_at, expires_at)
		VALUES ($1, 'creating-one', 'o', 'creating', $2, $2, $3, $3, $4)`, creating, sandbox.SchemaName(creating), t0, t0.Add(time.Hour))
	e.workerExec(t, `CREATE SCHEMA `+sandbox.SchemaName(creating))
	mustSet(t, e, keys.EventStream(creating))
	tearing := e.create(t, "tearing", 168*time.Hour)
	e.seed(t, tearing, 1)
	if _, _, err := e.m.RequestDestroy(ctx, owner, tearing.ID); err != nil {
		t.Fatal(err)
	}

	// Destroyed long ago without a teardown: schema, role, keys, a mapping and a cache entry leak.
	leakGuild := newGuild()
	leaked := e.create(t, "leaked", 168*time.Hour, leakGuild)
	e.seed(t, leaked, 2)
	for _, to := range []sandbox.Status{sandbox.StatusDestroying, sandbox.StatusDestroyed} {
		if _, err := e.m.Transition(ctx, "test", leaked.ID, to, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The transitions published the route change; an entry written behind them leaks.
	setRoute(t, e, leakGuild, leaked.ID)
	// Failed long ago and never torn down: its mapping points nowhere useful.
	failedGuild := newGuild()
	failed := e.create(t, "failed-one", 168*time.Hour, failedGuild)
	e.exec(t, `UPDATE sandbox_control.sandboxes SET status = 'failed', updated_at = $2 WHERE id = $1`, failed.ID, t0)

	// Resources with no sandbox row at all, seen now for the first time.
	ghost := sandbox.NewID()
	e.workerExec(t, `CREATE SCHEMA `+sandbox.SchemaName(ghost))
	e.createRole(t, sandbox.RoleName(ghost), ours)
	mustSet(t, e, keys.Namespace(ghost)+"a", keys.Namespace(ghost)+"b")
	ghostGuild := newGuild()
	setRoute(t, e, ghostGuild, ghost)
	staleGuild := newGuild()
	setRoute(t, e, staleGuild, leaked.ID)
	admin := testenv.RedisAdminOf(t, e.rdb)
	if err := admin.Do(ctx, "ACL", "SETUSER", e.p.RedisUserName(ghost), "reset").Err(); err != nil {
		t.Fatal(err)
	}

	// Never ours: roles of other databases or without comment, names that only look similar.
	foreign := sandbox.NewID()
	e.createRole(t, sandbox.RoleName(foreign), provision.RoleCommentFor("some_other_database"))
	bare := sandbox.NewID()
	e.createRole(t, sandbox.RoleName(bare), "")
	for _, s := range []string{`"sb_ABCDEFGHIJKLM"`, "sb_short", "sbx_" + sandbox.NewID(), "sb_" + sandbox.NewID() + "_x"} {
		e.workerExec(t, "CREATE SCHEMA "+s)
	}
	mustSet(t, e, "sandbox:{BAD-ID}:k", "sandbox:{"+sandbox.NewID()+"}", "sandbox:route:notaguild", "other:{"+sandbox.NewID()+"}:k")
	// Redis users of another logical database (ACL users are server-wide) or not a sandbox's.
	// The other database is one this test holds: ACL users are server-wide, and the orphan
	// pass of a test that held database+1 took a user named for it as its own orphan.
	otherDB := testenv.RedisDBOf(e.rdb) + 1 // a cluster: each test holds a server of its own
	if !testenv.RedisCluster() {
		other := testenv.Redis(t)
		if e.rdb != e.control { // the sandboxes' own server
			other = testenv.WorkerRedis(t)
		}
		otherDB = testenv.RedisDBOf(other)
	}
	foreignUser, oddUser := keys.ACLUser(sandbox.NewID(), otherDB), "sb_"+sandbox.NewID()+"_x"
	adminNodes := testenv.RedisNodes(t, admin) // ACL users are per node
	for _, u := range []string{foreignUser, oddUser} {
		for _, node := range adminNodes {
			if err := node.Do(ctx, "ACL", "SETUSER", u, "reset").Err(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { node.Do(context.Background(), "ACL", "DELUSER", u) })
		}
	}
	if err := e.control.Set(ctx, keys.RouteCache(newGuild()), "garbage", 0).Err(); err != nil {
		t.Fatal(err)
	}

	first, err := e.s.FindOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Everything not owned is young now (destroyed or first seen at t0).
	if len(first.Orphans) != 0 || first.Young != 13 {
		t.Fatalf("first look: young %d, orphans %+v", first.Young, first.Orphans)
	}

	// Two hours later a sandbox is destroyed just now: its leftovers are young.
	e.clock.Add(2 * time.Hour)
	recent := e.create(t, "recent", 168*time.Hour, newGuild())
	e.seed(t, recent, 1)
	for _, to := range []sandbox.Status{sandbox.StatusDestroying, sandbox.StatusDestroyed} {
		if _, err := e.m.Transition(ctx, "test", recent.ID, to, nil); err != nil {
			t.Fatal(err)
		}
	}
	setRoute(t, e, recent.Guilds[0], recent.ID) // written behind the published transitions
	// And a resource first seen now.
	newborn := sandbox.NewID()
	e.workerExec(t, `CREATE SCHEMA `+sandbox.SchemaName(newborn))

	rep, err := e.s.FindOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []orphanKey{
		{ResourceSchema, sandbox.SchemaName(ghost)},
		{ResourceSchema, sandbox.SchemaName(leaked.ID)},
		{ResourceRole, sandbox.RoleName(ghost)},
		{ResourceRole, sandbox.RoleName(leaked.ID)},
		{ResourceRedis, keys.Namespace(ghost)},
		{ResourceRedis, keys.Namespace(leaked.ID)},
		{ResourceRedisUser, e.p.RedisUserName(ghost)},
		{ResourceRedisUser, e.p.RedisUserName(leaked.ID)},
		{ResourceMapping, failedGuild},
		{ResourceMapping, leakGuild},
		{ResourceRouteCache, keys.RouteCache(ghostGuild)},
		{ResourceRouteCache, keys.RouteCache(leakGuild)},
		{ResourceRouteCache, keys.RouteCache(staleGuild)},
	}
	sortKeys(want)
	if got := keysOf(rep.Orphans); !reflect.DeepEqual(got, want) {
		t.Fatalf("orphans\n got %v\nwant %v", got, want)
	}
	// recent: schema, role, namespace, Redis user, mapping, cache entry; newborn: schema.
	if rep.Young != 7 {
		t.Errorf("young %d, want 7", rep.Young)
	}
	for _, o := range rep.Orphans {
		switch {
		case o.SandboxID == ghost && (o.SandboxStatus != "" || !o.Since.Equal(t0)):
			t.Errorf("ghost orphan %+v: want no status, first seen at %v", o, t0)
		case o.SandboxID == leaked.ID && o.SandboxStatus != sandbox.StatusDestroyed:
			t.Errorf("leaked orphan %+v", o)
		case o.Type == ResourceRedis && o.SandboxID == ghost && o.Keys != 2:
			t.Errorf("ghost namespace keys %d", o.Keys)
		}
	}
	if rep.Count(ResourceRouteCache) != 3 || rep.Count(ResourceMapping) != 2 {
		t.Errorf("counts: %+v", rep)
	}

	liveBefore := e.state(t, live.ID, live.Guilds)
	removal, err := e.s.RemoveOrphans(ctx, rep)
	if err != nil || len(removal.Failed) != 0 || len(removal.Kept) != 0 || len(removal.Removed) != len(want) {
		t.Fatalf("removal %+v %v", removal, err)
	}

	// The orphans are gone...
	for _, id := range []string{ghost, leaked.ID} {
		res, err := e.p.Inspect(ctx, id)
		if err != nil || res.SchemaExists || res.RoleExists || res.StreamExists || res.RedisUserExists {
			t.Errorf("%s left: %+v %v", id, res, err)
		}
	}
	for _, u := range []string{foreignUser, oddUser} {
		for _, node := range adminNodes {
			if err := node.Do(ctx, "ACL", "GETUSER", u).Err(); err != nil {
				t.Errorf("Redis user %s, not ours, was removed from %s: %v", u, node.Options().Addr, err)
			}
		}
	}
	for _, g := range []string{ghostGuild, leakGuild, staleGuild} {
		if n, _ := e.control.Exists(ctx, keys.RouteCache(g)).Result(); n != 0 {
			t.Errorf("cache entry of %s left", g)
		}
	}
	var mappings int
	_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM sandbox_control.guild_mappings WHERE guild_id = ANY($1)`,
		[]string{failedGuild, leakGuild}).Scan(&mappings)
	if mappings != 0 {
		t.Errorf("%d orphan mappings left", mappings)
	}
	// ...and nothing else was touched.
	if got := e.state(t, live.ID, live.Guilds); !reflect.DeepEqual(got, liveBefore) {
		t.Errorf("live sandbox touched: %+v", got)
	}
	for _, id := range []string{recent.ID, newborn, creating} {
		if res, _ := e.p.Inspect(ctx, id); !res.SchemaExists {
			t.Errorf("schema of %s removed", id)
		}
	}
	for _, id := range []string{foreign, bare} {
		var n int
		_ = e.workers.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, sandbox.RoleName(id)).Scan(&n)
		if n != 1 {
			t.Errorf("role %s removed", sandbox.RoleName(id))
		}
	}
	var lookalikes int
	_ = e.workers.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname IN ('sb_ABCDEFGHIJKLM', 'sb_short') OR nspname LIKE 'sbx\_%' OR nspname LIKE 'sb\_%\_x'`).Scan(&lookalikes)
	if lookalikes != 4 {
		t.Errorf("look-alike schemas left: %d of 4", lookalikes)
	}
	for _, k := range []string{"sandbox:{BAD-ID}:k", "sandbox:route:notaguild", keys.EventStream(creating), keys.EventStream(tearing.ID)} {
		if n, _ := e.rdb.Exists(ctx, k).Result(); n != 1 {
			t.Errorf("key %s removed", k)
		}
	}
	if c := e.auditCounts(t, ghost); c[controlplane.ActionOrphanRemoved] != 5 {
		t.Errorf("audit of ghost removals: %v", c)
	}

	// Found again: only the young remain, still young.
	again, err := e.s.FindOrphans(ctx)
	if err != nil || len(again.Orphans) != 0 || again.Young != 7 {
		t.Fatalf("after removal: %+v %v", again, err)
	}
	// A report from elsewhere with a name that is not a sandbox's is refused.
	forged := OrphanReport{Orphans: []Orphan{
		{Type: ResourceSchema, Name: "sandbox_control", SandboxID: ghost},
		{Type: ResourceRole, Name: sandbox.RoleName(foreign), SandboxID: foreign},
		{Type: ResourceSchema, Name: sandbox.SchemaName(live.ID), SandboxID: live.ID},
	}}
	removal, err = e.s.RemoveOrphans(ctx, forged)
	if err != nil || len(removal.Removed) != 0 || len(removal.Failed) != 2 || len(removal.Kept) != 1 {
		t.Fatalf("forged report: %+v %v", removal, err)
	}
}

func TestRunRemovesOrphansOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	ghost := sandbox.NewID()
	mustSet(t, e, keys.Namespace(ghost)+"k")
	if _, err := e.s.Run(ctx, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(config.DefaultOrphanGrace)
	rep, err := e.s.Run(ctx, RunOptions{})
	if err != nil || rep.Orphans == nil || rep.Orphans.Count(ResourceRedis) != 1 || rep.OrphansRemoved != nil {
		t.Fatalf("report: %+v %v", rep, err)
	}
	if n, _ := e.rdb.Exists(ctx, keys.Namespace(ghost)+"k").Result(); n != 1 {
		t.Fatal("removed without being asked")
	}
	rep, err = e.s.Run(ctx, RunOptions{RemoveOrphans: true})
	if err != nil || rep.OrphansRemoved == nil || len(rep.OrphansRemoved.Removed) != 1 {
		t.Fatalf("report: %+v %v", rep, err)
	}
	if n, _ := e.rdb.Exists(ctx, keys.Namespace(ghost)+"k").Result(); n != 0 {
		t.Fatal("not removed")
	}
}

func mustSet(t *testing.T, e *env, ks ...string) {
	t.Helper()
	for _, k := range ks {
		if err := e.rdb.Set(context.Background(), k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func setRoute(t *testing.T, e *env, guild, id string) {
	t.Helper()
	err := routecache.New(e.control, 0, 0).SetCurrent(context.Background(), []sandbox.Route{{GuildID: guild, SandboxID: id, Status: sandbox.StatusRunning}})
	if err != nil {
		t.Fatal(err)
	}
}

func sortKeys(ks []orphanKey) {
	order := map[ResourceType]int{}
	for i, t := range ResourceTypes() {
		order[t] = i
	}
	slices.SortFunc(ks, func(a, b orphanKey) int {
		if order[a.Type] != order[b.Type] {
			return order[a.Type] - order[b.Type]
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
}

// workerFirst lets a sandbox's worker act right before each removal that reaches provision:
// the most a worker that never stops can do, whatever the order of the removals.
type workerFirst struct {
	Resources
	act func()
}

func (w *workerFirst) DropSchema(ctx context.Context, id string, lockTimeout time.Duration) (provision.DropResult, error) {
	w.act()
	return w.Resources.DropSchema(ctx, id, lockTimeout)
}

func (w *workerFirst) DropRole(ctx context.Context, id string, lockTimeout time.Duration) (provision.DropResult, error) {
	w.act()
	return w.Resources.DropRole(ctx, id, lockTimeout)
}

func (w *workerFirst) DeleteRedisUsers(ctx context.Context, ids []string) (map[string]provision.RedisUserResult, error) {
	w.act()
	return w.Resources.DeleteRedisUsers(ctx, ids)
}

// The orphans of a sandbox whose worker still holds its credentials (a sandbox marked
// destroyed behind its teardown's back) are removed in one pass, the ways in first: the worker
// logs in and locks a table of its own, and writes a key, before every removal, and neither
// its lock nor its key outlives the pass. Schema first, the drop waited for the worker's lock
// until it failed; keys first, the key written behind the unlink stayed.
func TestOrphanRemovalClosesTheWaysInFirst(t *testing.T) {
	t.Parallel()
	w := &workerFirst{}
	e := setup(t, envConfig{options: func(o *Options) { w.Resources, o.Resources = o.Resources, w }})
	ctx := context.Background()
	sb := e.create(t, "orphaned", time.Hour)
	redisWorker, creds := e.worker(t, sb.ID)
	login := func() (*pgx.Conn, error) {
		return testenv.ConnectAs(t, e.workerURL, sandbox.RoleName(sb.ID), creds.DatabasePassword)
	}
	first, err := login()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Exec(ctx, "CREATE TABLE mine (n int)"); err != nil {
		t.Fatal(err)
	}
	written := keys.Namespace(sb.ID) + "written-behind"
	var logins, writes int
	w.act = func() {
		if conn, err := login(); err == nil {
			logins++
			if _, err := conn.Exec(ctx, "BEGIN; LOCK TABLE mine IN ACCESS SHARE MODE"); err != nil {
				t.Errorf("the worker's lock: %v", err)
			}
		}
		if redisWorker.Set(ctx, written, "x", 0).Err() == nil {
			writes++
		}
	}
	for _, to := range []sandbox.Status{sandbox.StatusDestroying, sandbox.StatusDestroyed} {
		if _, err := e.m.Transition(ctx, "test", sb.ID, to, nil); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Add(config.DefaultOrphanGrace + time.Minute)
	rep, err := e.s.FindOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []orphanKey{
		{ResourceSchema, sandbox.SchemaName(sb.ID)},
		{ResourceRole, sandbox.RoleName(sb.ID)},
		{ResourceRedis, keys.Namespace(sb.ID)},
		{ResourceRedisUser, e.p.RedisUserName(sb.ID)},
	}
	sortKeys(want)
	if got := keysOf(rep.Orphans); !reflect.DeepEqual(got, want) {
		t.Fatalf("orphans\n got %v\nwant %v", got, want)
	}

	removal, err := e.s.RemoveOrphans(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(removal.Failed) != 0 || len(removal.Removed) != len(want) {
		t.Errorf("removal %+v", removal)
	}
	if res, err := e.p.Inspect(ctx, sb.ID); err != nil || res.SchemaExists || res.RoleExists || res.StreamExists || res.RedisUserExists {
		t.Errorf("left after the removal: %+v %v", res, err)
	}
	if n, err := e.rdb.Exists(ctx, written).Result(); err != nil || n != 0 {
		t.Errorf("the key the worker wrote during the removal is left (%d, %v)", n, err)
	}
	// The worker came in before the first removal, and no further.
	if logins != 1 || writes != 2 {
		t.Errorf("the worker logged in %d times and wrote %d times, want 1 and 2: the ways in are closed first", logins, writes)
	}
}
