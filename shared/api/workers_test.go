package api_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// A deployment whose sandboxes live in a database of their own, on a server of their own
// (WORKER_DATABASE_URL): every object of a sandbox is made, handed out, measured and dropped
// there, and none on the control plane's server, where its role does not even exist. What the worker takes of its
// server is then never the control plane's (docs/security.md, "A database server of their
// own").
func TestSandboxesLiveInTheWorkerDatabase(t *testing.T) {
	e := newEnv(t, envOptions{workersApart: true, teardown: func(e *env) api.Teardown { return teardownOf(e) }})
	ctx := context.Background()
	sb := e.create(t, alice, "apart", guild1)
	if sb.Status != string(sandbox.StatusRunning) {
		t.Fatalf("created %+v", sb)
	}
	schema, role := sandbox.SchemaName(sb.ID), sandbox.RoleName(sb.ID)
	workerDB := databaseOf(t, e.workerURL)

	// The schema, cloned from the worker database's template, and the role are on the
	// sandboxes' server, and the role may connect to the worker database; on the control
	// plane's server neither exists.
	objects := func(pool *pgxpool.Pool) (schemas, tables, roles int) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1),
			(SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = $1),
			(SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = $2)`, schema, role).Scan(&schemas, &tables, &roles); err != nil {
			t.Fatal(err)
		}
		return schemas, tables, roles
	}
	if schemas, tables, roles := objects(e.workers); schemas != 1 || tables == 0 || roles != 1 {
		t.Errorf("worker database: %d schemas %s with %d tables, %d roles; want the schema with the template's tables, and the role", schemas, schema, tables, roles)
	}
	var canConnect bool
	if err := e.workers.QueryRow(ctx, `SELECT pg_catalog.has_database_privilege($1, $2, 'CONNECT')`, role, workerDB).Scan(&canConnect); err != nil || !canConnect {
		t.Errorf("the role may connect to the worker database: %v (%v)", canConnect, err)
	}
	if schemas, _, roles := objects(e.pool); schemas != 0 || roles != 0 {
		t.Errorf("control plane's server: %d schemas %s, %d roles %s; want none of the sandbox's", schemas, schema, roles, role)
	}

	// connect hands out the worker database; the worker's role reaches it, and not the
	// control plane's.
	worker, conn := e.connectWorker(t, alice, "apart")
	if conn.Database.Database != workerDB {
		t.Errorf("connect handed out database %q, want the worker database %q", conn.Database.Database, workerDB)
	}
	if _, err := worker.db.Exec(ctx, "INSERT INTO guild_settings (guild_id) VALUES ($1)", guild1); err != nil {
		t.Errorf("the worker writes its own schema: %v", err)
	}
	_, err := testenv.ConnectAs(t, e.dbURL, conn.Database.Role, conn.Database.Password)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Errorf("the sandbox's role connecting to the control plane's server: %v; want its login refused (28P01: no such role there)", err)
	}

	// The service health check asks both databases; the sandbox's own finds its schema.
	if checks := e.serviceChecks(t, 200); checks["database"] != api.CheckOK || checks["worker_database"] != api.CheckOK {
		t.Errorf("service health checks %v; want database and worker_database ok", checks)
	}
	r := e.do(t, call{method: "GET", path: "/v1/sandboxes/apart/health", principal: alice})
	wantStatus(t, r, 200)
	for _, c := range decode[apiwire.SandboxHealth](t, r).Checks {
		if c.Name == "database" && c.Status != api.CheckOK {
			t.Errorf("the sandbox's database check: %+v", c)
		}
	}
	r = e.do(t, call{method: "GET", path: "/v1/sandboxes/apart", principal: alice})
	wantStatus(t, r, 200)
	if got := decode[apiwire.Sandbox](t, r); got.Usage == nil || got.Usage.SchemaBytes == 0 {
		t.Errorf("usage %+v; want the schema's size, read in the worker database", got.Usage)
	}

	// Its stream and its Redis user are on the sandboxes' own Redis, unless the tests run on
	// the Redis Cluster, where the env keeps one Redis (testenv.WorkersApart).
	redisApart := e.rdb != e.control
	if redisApart {
		e.wantOnlyOnWorkerRedis(t, sb.ID, 1)
		if conn.Redis.Addr != testenv.WorkerRedisAddr(t) {
			t.Errorf("connect handed out Redis %s, want the sandboxes' own %s", conn.Redis.Addr, testenv.WorkerRedisAddr(t))
		}
		elsewhere := testenv.RedisClientLike(t, e.control, redis.UniversalOptions{
			Username: conn.Redis.Username, Password: conn.Redis.Password, MaxRetries: -1})
		if err := elsewhere.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("the sandbox's Redis user on the control plane's Redis: %v; want its login refused (no such user there)", err)
		}
		if err := worker.redis.XAdd(ctx, &redis.XAddArgs{Stream: conn.Redis.Stream, Values: []string{"k", "v"}}).Err(); err != nil {
			t.Errorf("the worker writes its own stream: %v", err)
		}
		if checks := e.serviceChecks(t, 200); checks["redis"] != api.CheckOK || checks["worker_redis"] != api.CheckOK {
			t.Errorf("service health checks %v; want redis and worker_redis ok", checks)
		}
		// A sandbox made before the move left its user on the route cache's server, where its
		// credentials still open it: the check warns until the user is deleted.
		admin := testenv.RedisAdminOf(t, e.control)
		stale := keys.ACLUser(sandbox.NewID(), testenv.RedisDBOf(e.control))
		if err := admin.Do(ctx, "ACL", "SETUSER", stale, "on", ">leaked", "~sandbox:*").Err(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", stale) })
		if checks := e.serviceChecks(t, 200); checks["redis"] != api.CheckWarn {
			t.Errorf("service health checks %v with a sandbox user left on the route cache's server; want redis warn", checks)
		}
		if err := admin.Do(ctx, "ACL", "DELUSER", stale).Err(); err != nil {
			t.Fatal(err)
		}
		if checks := e.serviceChecks(t, 200); checks["redis"] != api.CheckOK {
			t.Errorf("service health checks %v once the user is gone; want redis ok", checks)
		}
	}

	// Destroy drops it from the worker database.
	r = e.do(t, call{method: "DELETE", path: "/v1/sandboxes/apart", principal: alice})
	wantStatus(t, r, 200)
	if got := decode[apiwire.DestroyResponse](t, r); got.Sandbox.Status != string(sandbox.StatusDestroyed) {
		t.Fatalf("destroy left %s (%s)", got.Sandbox.Status, got.TeardownError)
	}
	var left int
	if err := e.workers.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1) +
		(SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = $2)`, schema, role).Scan(&left); err != nil || left != 0 {
		t.Errorf("after destroy the worker database keeps %d of the schema and role (%v)", left, err)
	}
	if redisApart {
		e.wantOnlyOnWorkerRedis(t, sb.ID, 0)
	}
}

// wantOnlyOnWorkerRedis checks that the sandboxes' own Redis holds want of the sandbox's
// stream and its Redis user (1: both, 0: neither), and the control plane's Redis none.
func (e *env) wantOnlyOnWorkerRedis(t *testing.T, id string, want int) {
	t.Helper()
	ctx := context.Background()
	for _, server := range []struct {
		name string
		rdb  redis.UniversalClient
		want int
	}{{"the sandboxes' Redis", e.rdb, want}, {"the control plane's Redis", e.control, 0}} {
		admin := testenv.RedisAdminOf(t, server.rdb)
		streams, err := admin.Exists(ctx, keys.EventStream(id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		users, err := admin.Do(ctx, "ACL", "USERS").StringSlice()
		if err != nil {
			t.Fatal(err)
		}
		user := 0
		if slices.Contains(users, e.resources.RedisUserName(id)) {
			user = 1
		}
		if int(streams) != server.want || user != server.want {
			t.Errorf("%s holds %d of the sandbox's stream and %d of its user; want %d of each", server.name, streams, user, server.want)
		}
	}
}

// databaseOf is the database a URL names.
func databaseOf(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path[1:]
}

// The worker database's server goes away: failed over, or refusing every new connection
// because a worker filled its lock table or its connections. The control plane serves on:
// routes resolve, sandboxes are listed and read (their schema sizes marked unavailable), and
// only what needs the sandboxes' server fails, as unavailable and leaving nothing behind.
// With the sandboxes in the control plane's database, the same worker takes all of it down.
func TestTheControlPlaneServesWithoutTheWorkerDatabase(t *testing.T) {
	e := newEnv(t, envOptions{workersApart: true})
	ctx := context.Background()
	sb := e.create(t, alice, "apart", guild1)
	e.workerProxy.Cut()
	t.Cleanup(e.workerProxy.Restore) // before the env drops the roles

	routes, err := e.manager.LookupRoutes(ctx, []string{guild1, guild3})
	if err != nil || routes[guild1].SandboxID != sb.ID || !routes[guild3].Protected {
		t.Errorf("routes without the worker database: %+v, %v; want %s to the sandbox and %s protected", routes, err, guild1, guild3)
	}
	e.wantServingWithout(t, "database")
	e.wantCreationRefusedUntil(t, e.workerProxy.Restore)
}

// wantServingWithout wants, with the sandboxes' own store down (store: "database" or
// "redis"), the list to answer with the one sandbox's figures of that store unavailable, and
// the service health check to answer 503 with "worker_"+store failed and the control plane's
// own store ok.
func (e *env) wantServingWithout(t *testing.T, store string) {
	t.Helper()
	r := e.do(t, call{method: "GET", path: "/v1/sandboxes", principal: alice})
	wantStatus(t, r, 200)
	list := decode[apiwire.ListResponse](t, r)
	if len(list.Sandboxes) != 1 || list.Sandboxes[0].Usage == nil || !slices.Contains(list.Sandboxes[0].Usage.Unavailable, store) {
		t.Errorf("list without the sandboxes' %s: %+v; want the sandbox, its %s figures unavailable", store, list.Sandboxes, store)
	}
	down := "worker_" + store
	if checks := e.serviceChecks(t, 503); checks[store] != api.CheckOK || checks[down] != api.CheckFail {
		t.Errorf("service health checks %v; want %s ok and %s failed", checks, store, down)
	}
}

// serviceChecks asks the service health check, wants status, and returns each check's status
// by name.
func (e *env) serviceChecks(t *testing.T, status int) map[string]string {
	t.Helper()
	r := e.do(t, call{method: "GET", path: "/health", principal: alice})
	wantStatus(t, r, status)
	checks := map[string]string{}
	for _, c := range decode[apiwire.ServiceHealth](t, r).Checks {
		checks[c.Name] = c.Status
	}
	return checks
}

// The sandboxes' own Redis goes away: failed over, or refusing new clients because a worker
// opened as many connections as the server takes (Redis has no limit per user). The control
// plane's Redis, and with it the route cache that production's routing reads, is not that
// server: routes resolve through it, sandboxes are listed (their Redis figures marked
// unavailable), the health check names the server that failed, and only what needs the
// sandboxes' Redis fails, as unavailable, leaving nothing behind.
func TestTheControlPlaneServesWithoutTheSandboxesRedis(t *testing.T) {
	testenv.SkipOnRedisCluster(t, "the env keeps the sandboxes on the cluster's Redis")
	e := newEnv(t, envOptions{workersApart: true, workerRedisProxy: true})
	ctx := context.Background()
	sb := e.create(t, alice, "apart", guild1)
	if err := e.cache.SetCurrent(ctx, []sandbox.Route{{GuildID: guild1, SandboxID: sb.ID, Status: sandbox.StatusRunning}}); err != nil {
		t.Fatal(err)
	}
	e.workerRedisProxy.Cut()
	t.Cleanup(e.workerRedisProxy.Restore) // before the env drops the sandboxes

	cached, err := e.cache.GetMany(ctx, []string{guild1})
	if err != nil || cached[guild1].SandboxID != sb.ID {
		t.Errorf("the route cache without the sandboxes' Redis: %+v, %v; want %s to the sandbox", cached, err, guild1)
	}
	e.wantServingWithout(t, "redis")
	wantProblem(t, e.do(t, call{method: "GET", path: "/v1/sandboxes/apart/events", principal: alice}), 503, sandbox.CodeUnavailable, "")
	e.wantCreationRefusedUntil(t, e.workerRedisProxy.Restore)
}

// wantCreationRefusedUntil wants a creation refused as unavailable (503) that changes nothing,
// then, once restore has run, the same creation accepted.
func (e *env) wantCreationRefusedUntil(t *testing.T, restore func()) {
	t.Helper()
	before := e.snapshot(t)
	body := `{"name": "second", "ttl": "1h"}`
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes", body: body, principal: bob})
	wantStatus(t, r, 503)
	if after := e.snapshot(t); after != before {
		t.Errorf("a refused creation changed the control plane:\nbefore %s\nafter  %s", before, after)
	}
	restore()
	r = e.do(t, call{method: "POST", path: "/v1/sandboxes", body: body, principal: bob})
	wantStatus(t, r, 201)
}
