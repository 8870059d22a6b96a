package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

func TestCreateGetAndList(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: alice,
		body: `{"name":"alpha","ttl":"2h","guilds":["` + guild1 + `","` + guild1 + `"],"metadata":{"branch":"feature-x"}}`})
	wantStatus(t, r, 201)
	if r.headers["Location"] != "/v1/sandboxes/alpha" {
		t.Errorf("Location %q", r.headers["Location"])
	}
	sb := decode[apiwire.Sandbox](t, r)
	if sb.Name != "alpha" || sb.Owner != alice || sb.Status != "running" || sb.StoredStatus != sandbox.StatusRunning ||
		!slices.Equal(sb.Guilds, []string{guild1}) || sb.Metadata["branch"] != "feature-x" ||
		sb.Schema != sandbox.SchemaName(sb.ID) || sb.Role != sandbox.RoleName(sb.ID) ||
		sb.Namespace != keys.Namespace(sb.ID) || sb.Stream != keys.EventStream(sb.ID) || sb.DestroyedAt != nil {
		t.Errorf("created %+v", sb)
	}
	if sb.TimeLeftSeconds < 7190 || sb.TimeLeftSeconds > 7200 {
		t.Errorf("time_left_seconds %d, want about 7200", sb.TimeLeftSeconds)
	}
	emf := e.emf.String()
	for _, want := range []string{`"SandboxesCreated":1`, `"SandboxCreationDuration"`, `"Route":"POST /v1/sandboxes"`, `"ApiRequests":1`} {
		if !strings.Contains(emf, want) {
			t.Errorf("metrics lack %s:\n%s", want, emf)
		}
	}

	got := decode[apiwire.Sandbox](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: alice}))
	if got.ID != sb.ID || !slices.Equal(got.Guilds, []string{guild1}) {
		t.Errorf("get %+v", got)
	}
	if !strings.Contains(e.emf.String(), `"Route":"GET /v1/sandboxes/{name}"`) {
		t.Errorf("no per-route metrics for get")
	}

	e.create(t, alice, "beta")
	e.create(t, alice, "gamma")
	e.create(t, bob, "bobs")

	page1 := decode[apiwire.ListResponse](t, e.do(t, call{method: "GET", path: "/v1/sandboxes", query: "limit=2", principal: alice}))
	if len(page1.Sandboxes) != 2 || page1.NextCursor == "" || page1.Sandboxes[0].Name != "gamma" {
		t.Fatalf("page 1: %+v", page1)
	}
	page2 := decode[apiwire.ListResponse](t, e.do(t, call{method: "GET", path: "/v1/sandboxes",
		query: "limit=2&cursor=" + url.QueryEscape(page1.NextCursor), principal: alice}))
	if len(page2.Sandboxes) != 1 || page2.NextCursor != "" || page2.Sandboxes[0].Name != "alpha" {
		t.Fatalf("page 2: %+v", page2)
	}
	bobs := decode[apiwire.ListResponse](t, e.do(t, call{method: "GET", path: "/v1/sandboxes", principal: bob}))
	if len(bobs.Sandboxes) != 1 || bobs.Sandboxes[0].Name != "bobs" {
		t.Errorf("bob lists %+v", bobs)
	}
	all := decode[apiwire.ListResponse](t, e.do(t, call{method: "GET", path: "/v1/sandboxes", query: "all=true", principal: admin}))
	if len(all.Sandboxes) != 4 {
		t.Errorf("admin lists %d sandboxes, want 4", len(all.Sandboxes))
	}
	ofAlice := decode[apiwire.ListResponse](t, e.do(t, call{method: "GET", path: "/v1/sandboxes",
		query: "owner=" + url.QueryEscape(alice) + "&status=running", principal: admin}))
	if len(ofAlice.Sandboxes) != 3 {
		t.Errorf("admin lists %d of alice's sandboxes, want 3", len(ofAlice.Sandboxes))
	}

	// Conflicts: the name, a mapped guild, a protected guild.
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: bob, body: `{"name":"alpha"}`}),
		409, sandbox.CodeNameTaken, "")
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: bob, body: `{"name":"other","guilds":["` + guild1 + `"]}`}),
		409, sandbox.CodeGuildAlreadyMapped, "")
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: bob, body: `{"name":"other","guilds":["` + guild3 + `"]}`}),
		409, sandbox.CodeGuildProtected, "")
	wantProblem(t, e.do(t, call{method: "GET", path: "/v1/sandboxes/nothing-here", principal: alice}), 404, sandbox.CodeNotFound, "")
}

func TestQuotaExceeded(t *testing.T) {
	limits := sandbox.DefaultLimits()
	limits.OwnerQuota = 1
	e := newEnv(t, envOptions{limits: limits})
	e.create(t, alice, "first")
	before := e.snapshot(t)
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: alice, body: `{"name":"second"}`}),
		409, sandbox.CodeQuotaExceeded, "")
	e.unchanged(t, before)
}

func TestProvisioningFailedAnswersWithTheFailedSandbox(t *testing.T) {
	e := newEnv(t, envOptions{})
	// A template table whose clone cannot be created makes provisioning fail for real.
	if _, err := e.workers.Exec(context.Background(), `DROP SCHEMA sandbox_template CASCADE`); err != nil {
		t.Fatal(err)
	}
	p := wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: alice, body: `{"name":"doomed"}`}),
		500, sandbox.CodeProvisioningFailed, "")
	if p.Sandbox == nil || p.Sandbox.Name != "doomed" || p.Sandbox.Status != "failed" || p.Sandbox.LastError == "" {
		t.Fatalf("problem sandbox %+v", p.Sandbox)
	}
	if !strings.Contains(e.emf.String(), `"SchemaCreationFailures":1`) {
		t.Errorf("no SchemaCreationFailures metric:\n%s", e.emf.String())
	}
}

func TestExtend(t *testing.T) {
	clock := testenv.NewClock(time.Now().UTC().Truncate(time.Second))
	e := newEnv(t, envOptions{now: clock.Now})
	sb := e.create(t, alice, "alpha")

	r := e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/extend", principal: alice, body: `{"by":"1h"}`})
	wantStatus(t, r, 200)
	ext := decode[apiwire.ExtendResponse](t, r)
	if ext.Capped || !ext.Sandbox.ExpiresAt.Equal(sb.ExpiresAt.Add(time.Hour)) {
		t.Errorf("extend by 1h: %+v (was %s)", ext, sb.ExpiresAt)
	}
	r = e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/extend", principal: admin, body: `{"by":"7d"}`})
	wantStatus(t, r, 200)
	ext = decode[apiwire.ExtendResponse](t, r)
	if !ext.Capped || !ext.Sandbox.ExpiresAt.Equal(sb.CreatedAt.Add(168*time.Hour)) {
		t.Errorf("extend by 7d: %+v", ext)
	}
	// At the cap no extension can move the expiry: a conflict with the sandbox's state.
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/extend", principal: alice, body: `{"by":"1h"}`}),
		409, sandbox.CodeInvalidTransition, "")

	clock.Add(200 * time.Hour)
	got := decode[apiwire.Sandbox](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: alice}))
	if got.Status != sandbox.DisplayExpired || got.StoredStatus != sandbox.StatusRunning || got.TimeLeftSeconds != 0 {
		t.Errorf("expired sandbox shows %+v", got)
	}
	before := e.snapshot(t)
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/extend", principal: alice, body: `{"by":"1h"}`}),
		409, sandbox.CodeInvalidTransition, "")
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", principal: alice}),
		409, sandbox.CodeInvalidTransition, "")
	e.unchanged(t, before)
}

func TestDestroyWithoutTeardownLeavesItToCleanup(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.create(t, alice, "alpha", guild1)
	if err := e.cache.SetCurrent(context.Background(), []sandbox.Route{{GuildID: guild1, SandboxID: "x0000000000000", Status: sandbox.StatusRunning}}); err != nil {
		t.Fatal(err)
	}
	r := e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha", principal: alice})
	wantStatus(t, r, 202)
	d := decode[apiwire.DestroyResponse](t, r)
	if !d.Changed || d.Sandbox.Status != "destroying" || d.TeardownError != "" {
		t.Errorf("destroy: %+v", d)
	}
	if n := e.control.Exists(context.Background(), keys.RouteCache(guild1)).Val(); n != 0 {
		t.Errorf("route cache entry of the destroyed sandbox's guild survived")
	}
	r = e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha", principal: alice})
	wantStatus(t, r, 202)
	if d := decode[apiwire.DestroyResponse](t, r); d.Changed || d.Sandbox.Status != "destroying" {
		t.Errorf("second destroy: %+v", d)
	}
	if strings.Contains(e.emf.String(), "SandboxesDestroyed") {
		t.Errorf("SandboxesDestroyed counted without a completed teardown")
	}
}

func TestDestroyRunsTheTeardownAndIsIdempotent(t *testing.T) {
	e := newEnv(t, envOptions{teardown: func(e *env) api.Teardown { return teardownOf(e) }})
	sb := e.create(t, alice, "alpha", guild1)
	// A router cached the guild's route: the teardown's cache step removes and counts it.
	if err := routecache.New(e.control, 0, 0).SetCurrent(context.Background(), []sandbox.Route{
		{GuildID: guild1, SandboxID: sb.ID, Status: sandbox.StatusRunning, ExpiresAt: sb.ExpiresAt}}); err != nil {
		t.Fatal(err)
	}

	r := e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha", principal: alice})
	wantStatus(t, r, 200)
	d := decode[apiwire.DestroyResponse](t, r)
	if !d.Changed || d.Sandbox.Status != "destroyed" || d.Sandbox.DestroyedAt == nil || len(d.Sandbox.Guilds) != 0 {
		t.Fatalf("destroy: %+v", d.Sandbox)
	}
	// The record says where the sandbox came from and counts the entry where it was removed.
	var record struct {
		MarkDestroying  struct{ From, Reason, Actor string } `json:"mark_destroying"`
		InvalidateCache struct {
			Invalidated int `json:"entries_invalidated"`
		} `json:"invalidate_cache"`
		DropDatabase struct {
			SchemaExisted bool `json:"schema_existed"`
		} `json:"drop_schema_and_role"`
	}
	if err := json.Unmarshal(d.Sandbox.Teardown, &record); err != nil || !record.DropDatabase.SchemaExisted ||
		record.MarkDestroying.From != "running" || record.MarkDestroying.Reason != "destroy_requested" ||
		record.MarkDestroying.Actor != alice || record.InvalidateCache.Invalidated != 1 {
		t.Errorf("teardown record %s", d.Sandbox.Teardown)
	}
	if !strings.Contains(e.emf.String(), `"SandboxesDestroyed":1`) {
		t.Errorf("no SandboxesDestroyed metric:\n%s", e.emf.String())
	}
	res, err := e.resources.Inspect(context.Background(), sb.ID)
	if err != nil || res.SchemaExists || res.RoleExists || res.StreamExists {
		t.Errorf("resources after destroy: %+v, %v", res, err)
	}

	e.emf.Reset()
	r = e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha", principal: alice})
	wantStatus(t, r, 200)
	again := decode[apiwire.DestroyResponse](t, r)
	if again.Changed || again.Sandbox.Status != "destroyed" || string(again.Sandbox.Teardown) != string(d.Sandbox.Teardown) {
		t.Errorf("destroying a destroyed sandbox: %+v", again)
	}
	if strings.Contains(e.emf.String(), "SandboxesDestroyed") {
		t.Errorf("a second destroy counted SandboxesDestroyed again")
	}
	// The name is free again and the destroyed one is still readable by id in listings.
	e.create(t, alice, "alpha")
}

func TestDestroyResumesAfterAFailedTeardown(t *testing.T) {
	e := newEnv(t, envOptions{teardown: func(e *env) api.Teardown { return teardownOf(e) }})
	sb := e.create(t, alice, "alpha")

	// A session holding a lock on the sandbox's table makes the drop fail fast.
	ctx := context.Background()
	tx, err := e.workers.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // a failure must not leave the pool's Close waiting
	if _, err := tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{sb.Schema, "guild_settings"}.Sanitize()+" IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	r := e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha", principal: alice})
	wantStatus(t, r, 202)
	d := decode[apiwire.DestroyResponse](t, r)
	if !d.Changed || d.Sandbox.Status != "destroying" || d.TeardownError == "" || !strings.Contains(string(d.Sandbox.Teardown), `"last_failure"`) {
		t.Errorf("failed teardown: %+v", d)
	}
	if strings.Contains(string(r.body), "SQLSTATE") || strings.Contains(string(r.body), "lock timeout") {
		t.Errorf("destroy leaks the database error: %s", r.body)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	r = e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha", principal: alice})
	wantStatus(t, r, 200)
	if d := decode[apiwire.DestroyResponse](t, r); d.Changed || d.Sandbox.Status != "destroyed" {
		t.Errorf("resumed destroy: %+v", d)
	}
}

func TestDestroyWhileCreatingIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha")
	if _, err := e.pool.Exec(context.Background(), `UPDATE sandbox_control.sandboxes SET status = 'creating' WHERE id = $1`, sb.ID); err != nil {
		t.Fatal(err)
	}
	before := e.snapshot(t)
	wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha", principal: alice}), 409, sandbox.CodeInvalidTransition, "")
	e.unchanged(t, before)
}

func TestGuildMappings(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.create(t, alice, "alpha", guild1)
	e.create(t, bob, "bobs")
	ctx := context.Background()
	if err := e.cache.SetCurrent(ctx, []sandbox.Route{{GuildID: guild2}}); err != nil {
		t.Fatal(err)
	}

	r := e.do(t, call{method: "PUT", path: "/v1/sandboxes/alpha/guilds/" + guild2, principal: alice})
	wantStatus(t, r, 201)
	if sb := decode[apiwire.Sandbox](t, r); !slices.Equal(sb.Guilds, []string{guild1, guild2}) {
		t.Errorf("guilds after add: %v", sb.Guilds)
	}
	if e.control.Exists(ctx, keys.RouteCache(guild2)).Val() != 0 {
		t.Errorf("the negative cache entry of the newly mapped guild survived")
	}
	r = e.do(t, call{method: "PUT", path: "/v1/sandboxes/alpha/guilds/" + guild2, principal: alice})
	wantStatus(t, r, 200)

	before := e.snapshot(t)
	wantProblem(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/bobs/guilds/" + guild1, principal: bob}), 409, sandbox.CodeGuildAlreadyMapped, "")
	wantProblem(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/bobs/guilds/" + guild3, principal: bob}), 409, sandbox.CodeGuildProtected, "")
	wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/bobs/guilds/" + guild1, principal: bob}), 404, sandbox.CodeNotFound, "")
	e.unchanged(t, before)

	r = e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha/guilds/" + guild2, principal: alice})
	wantStatus(t, r, 200)
	if sb := decode[apiwire.Sandbox](t, r); !slices.Equal(sb.Guilds, []string{guild1}) {
		t.Errorf("guilds after remove: %v", sb.Guilds)
	}
	wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha/guilds/" + guild2, principal: alice}), 404, sandbox.CodeNotFound, "")
}

func TestConnectRotatesAWorkingPassword(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha", guild1, guild2)
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", principal: alice})
	wantStatus(t, r, 200)
	if r.headers["Cache-Control"] != "no-store" {
		t.Errorf("connect answer may be cached: %v", r.headers)
	}
	c := decode[apiwire.ConnectResponse](t, r)
	db, rd := c.Database, c.Redis
	if c.SandboxID != sb.ID || c.Name != "alpha" || !slices.Equal(c.GuildIDs, []string{guild1, guild2}) ||
		db.Schema != sb.Schema || db.Role != sb.Role || len(db.Password) < 32 || !db.PasswordExpiresAt.Equal(sb.ExpiresAt) ||
		rd.Addr != testenv.RedisAddrsOf(t, e.rdb)[0] || rd.Namespace != sb.Namespace || rd.Stream != sb.Stream || rd.ConsumerGroup != keys.EventsGroup {
		t.Errorf("connect: %+v", c)
	}
	env := c.Env
	for k, want := range map[string]string{
		"SANDBOX_DATABASE_URL": db.URL, "PGUSER": db.Role, "PGPASSWORD": db.Password, "PGHOST": db.Host,
		"PGDATABASE": db.Database, "SANDBOX_SCHEMA": db.Schema, "SANDBOX_REDIS_ADDR": rd.Addr,
		"SANDBOX_STREAM": rd.Stream, "SANDBOX_NAMESPACE": rd.Namespace, "SANDBOX_CONSUMER_GROUP": "workers",
		"SANDBOX_REDIS_CLUSTER": strconv.FormatBool(testenv.RedisCluster()),
		"SANDBOX_GUILD_IDS":     guild1 + "," + guild2, "SANDBOX_ID": sb.ID, "SANDBOX_NAME": "alpha",
		"PGOPTIONS": "-c search_path=" + sb.Schema, "PGSSLMODE": db.SSLMode,
		"SANDBOX_DATABASE_MAX_CONNECTIONS": "20", "SANDBOX_REDIS_MAX_CONNECTIONS": "50",
		"SANDBOX_REDIS_MAX_MEMORY": "134217728", "SANDBOX_DATABASE_MAX_BYTES": "1073741824",
	} {
		if env[k] != want {
			t.Errorf("env %s = %q, want %q", k, env[k], want)
		}
	}

	// The URL works as handed out: the role lands in its schema and can write there.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatalf("connect with the handed-out URL: %v", err)
	}
	var searchPath string
	if err := conn.QueryRow(ctx, "SHOW search_path").Scan(&searchPath); err != nil || searchPath != sb.Schema {
		t.Errorf("search_path %q, %v", searchPath, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO guild_settings (guild_id) VALUES ($1)", guild1); err != nil {
		t.Errorf("the role cannot write its schema: %v", err)
	}
	_ = conn.Close(ctx)

	// Every connect rotates: the previous password stops working.
	second := decode[apiwire.ConnectResponse](t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", principal: admin, body: "{}"}))
	if second.Database.Password == db.Password {
		t.Fatal("connect did not rotate the password")
	}
	if conn, err := pgx.Connect(ctx, db.URL); err == nil {
		_ = conn.Close(ctx)
		t.Error("the previous password still works after a second connect")
	}
	if conn, err := pgx.Connect(ctx, second.Database.URL); err != nil {
		t.Errorf("the new password does not work: %v", err)
	} else {
		_ = conn.Close(ctx)
	}
}

func TestConnectHonoursPublicOverrides(t *testing.T) {
	e := newEnv(t, envOptions{})
	cfg := testConfig(t, e.dbURL, "redis.internal:6379")
	cfg.PublicDatabaseHost = "db.example.internal:6543"
	cfg.PublicRedisAddr = "redis.example.internal:6380"
	cfg.RedisCluster = true // the answer says so; the stores are the test's
	h, err := api.New(cfg, api.Deps{Sandboxes: e.manager, Resources: e.resources, Routes: e.cache, DB: e.pool, Redis: e.control, WorkerRedis: e.rdb})
	if err != nil {
		t.Fatal(err)
	}
	e.handler = h
	e.invoke = lambdaOf(h)
	e.create(t, alice, "alpha")
	c := decode[apiwire.ConnectResponse](t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", principal: alice}))
	u, err := url.Parse(c.Database.URL)
	if err != nil || c.Database.Host != "db.example.internal" || c.Database.Port != 6543 || u.Host != "db.example.internal:6543" ||
		c.Redis.Addr != "redis.example.internal:6380" || c.Env["PGPORT"] != "6543" ||
		!c.Redis.Cluster || c.Env["SANDBOX_REDIS_CLUSTER"] != "true" {
		t.Errorf("overrides ignored: %+v", c)
	}
}

func TestSandboxHealth(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha", guild1)
	ctx := context.Background()

	checks := func(h apiwire.SandboxHealth) map[string]apiwire.Check {
		out := map[string]apiwire.Check{}
		for _, c := range h.Checks {
			out[c.Name] = c
		}
		if len(out) != 4 {
			t.Fatalf("checks %+v", h.Checks)
		}
		return out
	}
	h := decode[apiwire.SandboxHealth](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha/health", principal: alice}))
	if !healthyBut(h.Overall, h.Checks) || h.SandboxID != sb.ID {
		t.Fatalf("health %+v", h)
	}
	for name, c := range checks(h) {
		if !fine(c) || c.Detail == "" || c.LatencyMS < 0 {
			t.Errorf("check %s: %+v", name, c)
		}
	}

	// A cache entry that disagrees with the database degrades.
	if err := e.cache.SetCurrent(ctx, []sandbox.Route{{GuildID: guild1}}); err != nil {
		t.Fatal(err)
	}
	h = decode[apiwire.SandboxHealth](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha/health", principal: alice}))
	if c := checks(h)["routes"]; h.Overall != api.Degraded || c.Status != api.CheckWarn || !strings.Contains(c.Detail, guild1) {
		t.Errorf("stale cache: %s %+v", h.Overall, c)
	}
	if err := e.cache.Invalidate(ctx, guild1); err != nil {
		t.Fatal(err)
	}

	// A Redis user that cleanup switched off (its workers crowded the server) is unhealthy,
	// saying so and how to switch it on again; connect does.
	user := keys.ACLUser(sb.ID, testenv.RedisDBOf(e.rdb))
	for _, node := range testenv.RedisNodes(t, e.rdb) {
		if err := node.Do(ctx, "ACL", "SETUSER", user, "off").Err(); err != nil {
			t.Fatal(err)
		}
	}
	h = decode[apiwire.SandboxHealth](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha/health", principal: alice}))
	if c := checks(h)["redis"]; h.Overall != api.Unhealthy || c.Status != api.CheckFail ||
		!strings.Contains(c.Detail, "switched off") || !strings.Contains(c.Detail, "sandbox connect") {
		t.Errorf("switched-off user: %s %+v", h.Overall, c)
	}
	wantStatus(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", principal: alice}), 200)
	h = decode[apiwire.SandboxHealth](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha/health", principal: alice}))
	if c := checks(h)["redis"]; c.Status != api.CheckOK {
		t.Errorf("after connect: %+v", c)
	}

	// A stream the sandbox's code made take no entry is unhealthy, saying why and how to mend
	// it: an entry at the largest ID, another type in its place.
	unusable := func(what, why string) {
		t.Helper()
		h := decode[apiwire.SandboxHealth](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha/health", principal: alice}))
		if c := checks(h)["redis"]; h.Overall != api.Unhealthy || c.Status != api.CheckFail ||
			!strings.Contains(c.Detail, why) || !strings.Contains(c.Detail, "MKSTREAM") {
			t.Errorf("%s: %s %+v", what, h.Overall, c)
		}
	}
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.EventStream(sb.ID), ID: keys.MaxStreamID.String(), Values: []string{"k", "v"}}).Err(); err != nil {
		t.Fatal(err)
	}
	unusable("an entry at the largest ID", "largest possible")
	if err := e.rdb.Del(ctx, keys.EventStream(sb.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Set(ctx, keys.EventStream(sb.ID), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	unusable("a string in place of the stream", "another type")

	// A missing stream is unhealthy.
	if err := e.rdb.Del(ctx, keys.EventStream(sb.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	h = decode[apiwire.SandboxHealth](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha/health", principal: admin}))
	if c := checks(h)["redis"]; h.Overall != api.Unhealthy || c.Status != api.CheckFail || !strings.Contains(c.Detail, "missing") {
		t.Errorf("missing stream: %s %+v", h.Overall, c)
	}

	// A missing schema is unhealthy too, and a destroying sandbox fails its status and routes.
	if _, err := e.workers.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{sb.Schema}.Sanitize()+" CASCADE"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha", principal: alice}), 202)
	h = decode[apiwire.SandboxHealth](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha/health", principal: alice}))
	cs := checks(h)
	if cs["database"].Status != api.CheckFail || cs["status"].Status != api.CheckFail || h.Status != "destroying" {
		t.Errorf("destroying sandbox health: %+v", h)
	}
}

// aboveDiskShare reports every schema it reads, a sandbox's (Inspect) or a template's
// (CheckTemplateSource), one byte above the disk a sandbox's schema may take: a schema of
// 1 GiB is not written for a test. The cleanup's tests fill one past a lower limit, and
// provision's TestSeedSourceUsingSandboxCodeIsRefused checks the size the catalog gives.
type aboveDiskShare struct{ api.Resources }

func (a aboveDiskShare) Inspect(ctx context.Context, id string) (provision.Resources, error) {
	res, err := a.Resources.Inspect(ctx, id)
	res.Bytes = sandbox.SchemaSizeLimit + 1
	return res, err
}

func (a aboveDiskShare) CheckTemplateSource(ctx context.Context, schema string) (provision.TemplateSource, error) {
	src, err := a.Resources.CheckTemplateSource(ctx, schema)
	src.Bytes = sandbox.SchemaSizeLimit + 1
	return src, err
}

// A schema above its share is unhealthy, saying that the cleanup takes its role's password
// away and how to come back under it.
func TestSandboxHealthOfAnOversizedSchema(t *testing.T) {
	e := newEnv(t, envOptions{resources: func(_ *env, r api.Resources) api.Resources { return aboveDiskShare{r} }})
	e.create(t, alice, "alpha", guild1)
	h := decode[apiwire.SandboxHealth](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha/health", principal: alice}))
	for _, c := range h.Checks {
		if c.Name != "database" {
			continue
		}
		if h.Overall != api.Unhealthy || c.Status != api.CheckFail || !strings.Contains(c.Detail, "more than the 1024 MiB a sandbox may") ||
			!strings.Contains(c.Detail, "sandbox connect") {
			t.Errorf("oversized schema: %s %+v", h.Overall, c)
		}
		return
	}
	t.Fatalf("no database check: %+v", h.Checks)
}

// The health check's size counts the catalog rows the last cleanup run recorded (it does not
// read them live): a schema whose relations are small but whose function bodies and comments
// take its share is unhealthy too. A table its role does not own yet is a warning.
func TestSandboxHealthCountsTheRecordedCatalogRows(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha", guild1)
	database := func() apiwire.Check {
		t.Helper()
		h := decode[apiwire.SandboxHealth](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha/health", principal: alice}))
		for _, c := range h.Checks {
			if c.Name == "database" {
				return c
			}
		}
		t.Fatalf("no database check: %+v", h.Checks)
		return apiwire.Check{}
	}
	if c := database(); c.Status != api.CheckOK {
		t.Fatalf("before any count: %+v", c)
	}
	if err := e.rdb.HSet(t.Context(), keys.Usage(sb.ID), keys.UsageFieldCatalog, sandbox.SchemaSizeLimit).Err(); err != nil {
		t.Fatal(err)
	}
	if c := database(); c.Status != api.CheckFail || !strings.Contains(c.Detail, "more than the 1024 MiB a sandbox may") {
		t.Errorf("with the share's worth of catalog rows recorded: %+v", c)
	}
	// A table the control user still owns, as in a sandbox made before provisioning handed the
	// tables over, is a warning until the cleanup hands it over (provision.HandOverTables).
	if err := e.rdb.HDel(t.Context(), keys.Usage(sb.ID), keys.UsageFieldCatalog).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.workers.Exec(t.Context(), "ALTER TABLE "+sandbox.SchemaName(sb.ID)+".members OWNER TO CURRENT_USER"); err != nil {
		t.Fatal(err)
	}
	if c := database(); c.Status != api.CheckWarn || !strings.Contains(c.Detail, "does not own members yet") {
		t.Errorf("with a table the control user owns: %+v", c)
	}
}

func TestRouteExplanation(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha", guild1)
	ctx := context.Background()
	explain := func(guild string) apiwire.RouteExplanation {
		r := e.do(t, call{method: "GET", path: "/v1/routes/" + guild, principal: bob})
		wantStatus(t, r, 200)
		return decode[apiwire.RouteExplanation](t, r)
	}

	x := explain(guild1)
	if x.Destination != api.DestinationSandbox || x.Source != "database" || x.Cache.Present || x.Mapping == nil ||
		x.Mapping.SandboxID != sb.ID || x.Mapping.SandboxName != "alpha" || x.Mapping.Status != "running" || x.Protected {
		t.Errorf("mapped, uncached: %+v", x)
	}
	routes, err := e.manager.LookupRoutes(ctx, []string{guild1})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cache.SetCurrent(ctx, []sandbox.Route{routes[guild1]}); err != nil {
		t.Fatal(err)
	}
	x = explain(guild1)
	if x.Source != "cache" || !x.Cache.Present || !x.Cache.Agrees || x.Cache.TTLSeconds == nil || *x.Cache.TTLSeconds <= 0 ||
		x.Cache.Value != routecache.Encode(routes[guild1]) || !strings.HasPrefix(x.Cache.Value, "sandbox:"+sb.ID+":running:") ||
		x.Destination != api.DestinationSandbox {
		t.Errorf("mapped, cached: %+v", x)
	}

	x = explain(guild2)
	if x.Destination != api.DestinationProduction || x.Mapping != nil || x.Protected || !strings.Contains(x.Reason, "not mapped") {
		t.Errorf("unmapped: %+v", x)
	}
	x = explain(guild3)
	if x.Destination != api.DestinationProduction || !x.Protected || !strings.Contains(x.Reason, "protected") {
		t.Errorf("protected: %+v", x)
	}

	// A stale negative entry: the router still sends to production until it goes.
	if err := e.cache.SetCurrent(ctx, []sandbox.Route{{GuildID: guild1}}); err != nil {
		t.Fatal(err)
	}
	x = explain(guild1)
	if x.Destination != api.DestinationProduction || x.Cache.Agrees || x.Source != "cache" || !strings.Contains(x.Reason, "route cache still says") {
		t.Errorf("stale cache: %+v", x)
	}

	// A destroying sandbox's guild is dropped, never sent to production.
	if _, err := e.pool.Exec(ctx, `UPDATE sandbox_control.sandboxes SET status = 'destroying' WHERE id = $1`, sb.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.cache.Invalidate(ctx, guild1); err != nil {
		t.Fatal(err)
	}
	x = explain(guild1)
	if x.Destination != api.DestinationDropped || x.Mapping.Status != "destroying" || !strings.Contains(x.Reason, "dropped") {
		t.Errorf("destroying: %+v", x)
	}
}

func TestServiceHealth(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do(t, call{method: "GET", path: "/health", principal: bob})
	wantStatus(t, r, 200)
	h := decode[apiwire.ServiceHealth](t, r)
	want := []string{"database", "redis"}
	if e.workers != e.pool { // the sandboxes on a server of their own (SANDBOX_TEST_WORKERS=apart)
		want = append(want, "worker_database")
	}
	if e.rdb != e.control { // and a Redis of their own
		want = append(want, "worker_redis")
	}
	var names []string
	for _, c := range h.Checks {
		names = append(names, c.Name)
	}
	if !healthyBut(h.Overall, h.Checks) || !slices.Equal(names, want) {
		t.Errorf("health %+v, want the checks %v", h, want)
	}

	// Redis that does not answer: unhealthy, 503, and the address stays out of the answer.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = dead.Close() })
	hd, err := api.New(testConfig(t, e.dbURL, "127.0.0.1:1"), api.Deps{Sandboxes: e.manager, Resources: e.resources, Routes: e.cache, DB: e.pool, Redis: dead})
	if err != nil {
		t.Fatal(err)
	}
	e.invoke = lambdaOf(hd)
	r = e.do(t, call{method: "GET", path: "/health", principal: bob})
	wantStatus(t, r, 503)
	h = decode[apiwire.ServiceHealth](t, r)
	if h.Overall != api.Unhealthy || h.Checks[1].Status != api.CheckFail || !fine(h.Checks[0]) {
		t.Errorf("health with Redis down: %+v", h)
	}
	if strings.Contains(string(r.body), "127.0.0.1:1") || strings.Contains(string(r.body), "connection refused") {
		t.Errorf("health leaks the error: %s", r.body)
	}
}

func TestAdminRoutes(t *testing.T) {
	e := newEnv(t, envOptions{})
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/admin/cleanup", principal: admin}), 503, sandbox.CodeUnavailable, "")
	wantProblem(t, e.do(t, call{method: "GET", path: "/v1/admin/orphans", principal: admin}), 503, sandbox.CodeUnavailable, "")

	e = newEnv(t, envOptions{cleanup: func(e *env) api.CleanupAdmin { return catalogCleanup{e: e} }})
	e.create(t, alice, "alpha", guild1)
	if _, err := e.pool.Exec(context.Background(), `CREATE SCHEMA sb_orphan00000001`); err != nil {
		t.Fatal(err)
	}
	r := e.do(t, call{method: "POST", path: "/v1/admin/cleanup", principal: admin})
	wantStatus(t, r, 200)
	if got := decode[apiwire.CleanupResponse](t, r); got.Run.ActiveSandboxes != 1 || got.Run.GuildMappings != 1 || got.Orphans != nil {
		t.Errorf("cleanup run: %s", r.body)
	}
	r = e.do(t, call{method: "GET", path: "/v1/admin/orphans", principal: admin})
	wantStatus(t, r, 200)
	if got := decode[apiwire.OrphansResponse](t, r); len(got.Report.Orphans) != 1 || got.Report.Orphans[0].Name != "sb_orphan00000001" || got.Removal != nil {
		t.Errorf("orphans: %s", r.body)
	}
	r = e.do(t, call{method: "POST", path: "/v1/admin/cleanup", principal: admin, body: `{"remove_orphans":true}`})
	wantStatus(t, r, 200)
	if got := decode[apiwire.CleanupResponse](t, r); got.Orphans == nil || got.Orphans.Removal == nil ||
		len(got.Orphans.Removal.Removed) != 1 || got.Orphans.Removal.Removed[0].Name != "sb_orphan00000001" {
		t.Errorf("cleanup with orphan removal: %s", r.body)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	e := newEnv(t, envOptions{})
	wantProblem(t, e.do(t, call{method: "GET", path: "/v1/nothing", principal: alice}), 404, sandbox.CodeNotFound, "")
	wantProblem(t, e.do(t, call{method: "GET", path: "/v1/sandboxes/", principal: alice}), 404, sandbox.CodeNotFound, "")
	r := e.do(t, call{method: "PATCH", path: "/v1/sandboxes/alpha", principal: alice})
	wantProblem(t, r, 405, sandbox.CodeInvalidInput, "")
	if r.headers["Allow"] != "DELETE, GET" {
		t.Errorf("Allow %q", r.headers["Allow"])
	}
	if !strings.Contains(e.emf.String(), `"Route":"unmatched"`) {
		t.Errorf("unmatched requests are not metered as such:\n%s", e.emf.String())
	}
}
