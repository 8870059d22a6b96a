package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const (
	alice = "arn:aws:iam::123456789012:user/alice"
	bob   = "arn:aws:iam::123456789012:user/bob"
	admin = "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/carol"
	// nobody stands for a request without a caller identity.
	nobody = ""

	guild1 = "80351110224678912"
	guild2 = "80351110224678913"
	guild3 = "80351110224678914"
)

// env is one API over a fresh database and Redis database, invoked through real
// payload-2.0 events.
type env struct {
	pool *pgxpool.Pool
	// direct is a pool that bypasses the proxy (the same as pool without one).
	direct *pgxpool.Pool
	proxy  *testenv.Proxy
	dbURL  string
	// workers is the database of the sandboxes' schemas and roles, and workerURL its URL:
	// pool and dbURL unless the env has them apart (envOptions.workersApart).
	workers   *pgxpool.Pool
	workerURL string
	// workerProxy carries the control plane's connections to an apart worker database.
	workerProxy *testenv.Proxy
	// rdb holds the sandboxes' namespaces, streams and users, control the route cache: one
	// Redis, unless the env has the sandboxes apart (then rdb is on the sandboxes' own server,
	// as with WORKER_REDIS_ADDR).
	rdb     redis.UniversalClient
	control redis.UniversalClient
	// workerRedisProxy carries the functions' connections to an apart Redis of the sandboxes
	// (envOptions.workerRedisProxy); rdb bypasses it.
	workerRedisProxy *testenv.Proxy
	manager          *controlplane.Manager
	resources        *provision.Provisioner
	cache            *routecache.Cache
	handler          *api.Handler
	invoke           lambda.Handler
	emitter          *metrics.Emitter
	emf              *testenv.SyncBuffer
	logs             *testenv.SyncBuffer
	now              func() time.Time
}

// envOptions tune an env.
type envOptions struct {
	limits   sandbox.Limits
	teardown func(e *env) api.Teardown
	cleanup  func(e *env) api.CleanupAdmin
	now      func() time.Time
	// discardOutput sends metrics and logs nowhere (benchmarks).
	discardOutput bool
	// proxy, when set, puts the API's database connections through it (the test's own
	// assertions keep a direct pool: e.direct).
	proxy bool
	// provisioner wraps the provisioner the control plane calls at creation.
	provisioner func(e *env, p controlplane.Provisioner) controlplane.Provisioner
	// resources wraps the per-sandbox resources the handler calls.
	resources func(e *env, r api.Resources) api.Resources
	// workersApart puts the sandboxes' schemas and roles in a database of their own, on the
	// sandboxes' own server (config.WorkerDatabase), as a deployment with WORKER_DATABASE_URL
	// does, and, unless the tests run on the Redis Cluster, their keys and users on a Redis of
	// their own (WORKER_REDIS_ADDR).
	workersApart bool
	// workerRedisProxy puts the functions' connections to the sandboxes' apart Redis through a
	// proxy the test can cut (e.workerRedisProxy).
	workerRedisProxy bool
}

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	ctx := context.Background()
	pool, dbURL := testenv.Postgres(t)
	if _, err := controlplane.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	testenv.RegisterTestGuilds(t, pool, guild1, guild2) // guild3 is protected
	e := &env{pool: pool, direct: pool, dbURL: dbURL, workers: pool, workerURL: dbURL, rdb: testenv.Redis(t), emf: &testenv.SyncBuffer{}, logs: &testenv.SyncBuffer{}, now: opts.now}
	if opts.workersApart || testenv.WorkersApart() {
		direct, workerURL := testenv.WorkerPostgres(t)
		if _, err := controlplane.MigrateWorkers(ctx, direct); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(workerURL)
		if err != nil {
			t.Fatal(err)
		}
		e.workerProxy = testenv.NewProxy(t, u.Host)
		e.workers, err = clients.Postgres(ctx, e.workerProxy.Via(t, workerURL), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.workers.Close)
		e.workerURL = workerURL
	}
	e.control = e.rdb
	served := e.rdb // the sandboxes' Redis as the functions reach it
	if (opts.workersApart || testenv.WorkersApart()) && !testenv.RedisCluster() {
		direct := testenv.WorkerRedis(t)
		e.rdb, served = direct, direct
		if opts.workerRedisProxy {
			e.workerRedisProxy = testenv.NewProxy(t, direct.Options().Addr)
			user, password := testenv.RedisCredentials(t)
			proxied := redis.NewClient(&redis.Options{Addr: e.workerRedisProxy.Addr(), DB: direct.Options().DB,
				Username: user, Password: password, MaxRetries: -1})
			t.Cleanup(func() { _ = proxied.Close() })
			served = proxied
		}
	}
	if opts.proxy {
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		e.proxy = testenv.NewProxy(t, u.Host)
		proxied, err := pgxpool.New(ctx, e.proxy.Via(t, dbURL))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proxied.Close)
		e.pool = proxied
		if e.workers == pool {
			e.workers = proxied
		}
		pool = proxied
	}
	if e.now == nil {
		e.now = time.Now
	}
	if opts.limits == (sandbox.Limits{}) {
		opts.limits = sandbox.DefaultLimits()
	}
	var emfOut, logOut io.Writer = e.emf, e.logs
	if opts.discardOutput {
		emfOut, logOut = io.Discard, io.Discard
	}
	logger := lambdakit.NewLogger(logOut, slog.LevelDebug)
	e.resources = provision.New(e.workers, served, "sandbox_template")
	e.cache = routecache.New(e.control, 0, 0)
	var provisioner controlplane.Provisioner = e.resources
	if opts.provisioner != nil {
		provisioner = opts.provisioner(e, e.resources)
	}
	e.manager = controlplane.NewManager(pool, controlplane.Options{
		Limits: opts.limits, ProtectedGuilds: []string{guild3},
		Provisioner: provisioner, WorkerServer: e.workers, Routes: e.cache, Logger: logger, Now: e.now,
	})
	cfg := testConfig(t, dbURL, testenv.RedisAddr(t))
	if e.rdb != e.control {
		cfg.WorkerRedisAddr = testenv.WorkerRedisAddr(t)
	}
	deps := api.Deps{
		Sandboxes: e.manager, Resources: e.resources, Routes: e.cache,
		DB: pool, WorkerDB: e.workers, Redis: e.control, WorkerRedis: served, Logger: logger, Now: e.now,
	}
	if e.rdb != e.control {
		deps.LeftBehind = provision.New(e.workers, e.control, "sandbox_template")
	}
	if opts.resources != nil {
		deps.Resources = opts.resources(e, e.resources)
	}
	if opts.teardown != nil {
		deps.Teardown = opts.teardown(e)
	}
	if opts.cleanup != nil {
		deps.Cleanup = opts.cleanup(e)
	}
	h, err := api.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = h
	e.emitter, err = metrics.NewEmitter(emfOut, "test")
	if err != nil {
		t.Fatal(err)
	}
	e.invoke = lambda.NewHandler(lambdakit.Wrap("api", e.emitter, h.HandleEvent))
	t.Cleanup(func() { dropRoles(e) })
	return e
}

// testConfig is the configuration of a test API, read through LoadConfig like production.
func testConfig(t testing.TB, dbURL, redisAddr string) api.Config {
	t.Helper()
	cfg, err := api.LoadConfig(config.MapLookup(map[string]string{
		"DATABASE_URL":         dbURL,
		"REDIS_ADDR":           redisAddr,
		"REDIS_CLUSTER":        strconv.FormatBool(testenv.RedisCluster()),
		"API_ADMIN_PRINCIPALS": admin + ",arn:aws:iam::123456789012:user/ops",
		"ENVIRONMENT":          "test",
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// dropRoles removes the sandbox roles a test created: roles are cluster-wide and outlive the
// test's database.
func dropRoles(e *env) {
	testenv.DropSandboxes(e.direct, func(ctx context.Context, id string) {
		_, _ = e.resources.Drop(ctx, id, time.Second)
	})
}

// call is one request.
type call struct {
	method, path, query string
	body                string
	principal           string
	contentType         string // default application/json when there is a body
	base64              bool
}

// reply is the API Gateway response of a call.
type reply struct {
	status  int
	headers map[string]string
	body    []byte
}

var (
	templateOnce sync.Once
	templateErr  error
	templateRaw  []byte
)

// event builds a payload-2.0 event from aws-lambda-go's IAM-authorized sample.
func event(t testing.TB, c call) []byte {
	t.Helper()
	templateOnce.Do(func() { templateRaw, templateErr = os.ReadFile("testdata/apigw-v2-request-iam.json") })
	if templateErr != nil {
		t.Fatal(templateErr)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(templateRaw, &ev); err != nil {
		t.Fatal(err)
	}
	ev.RouteKey = c.method + " " + c.path
	ev.RequestContext.RouteKey = ev.RouteKey
	ev.RawPath = c.path
	ev.RequestContext.HTTP.Method = c.method
	ev.RequestContext.HTTP.Path = c.path
	ev.RawQueryString = c.query
	ev.QueryStringParameters = nil
	ev.PathParameters = nil
	ev.Body = c.body
	ev.IsBase64Encoded = false
	if c.base64 {
		ev.Body = base64.StdEncoding.EncodeToString([]byte(c.body))
		ev.IsBase64Encoded = true
	}
	ev.Headers = map[string]string{"user-agent": "api-test"}
	if c.body != "" {
		ct := c.contentType
		if ct == "" {
			ct = "application/json"
		}
		ev.Headers["content-type"] = ct
	}
	if c.principal == nobody {
		ev.RequestContext.Authorizer = nil
	} else {
		ev.RequestContext.Authorizer.IAM.UserARN = c.principal
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// do invokes the Lambda handler with the call's event.
func (e *env) do(t testing.TB, c call) reply {
	t.Helper()
	return e.invokeRaw(t, event(t, c))
}

func (e *env) invokeRaw(t testing.TB, payload []byte) reply {
	t.Helper()
	out, err := e.invoke.Invoke(lambdakit.NewLocalContext(context.Background()), payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response is not a payload-2.0 response: %v: %s", err, out)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			t.Fatal(err)
		}
	}
	return reply{status: resp.StatusCode, headers: resp.Headers, body: body}
}

// decode strictly decodes a JSON answer.
func decode[T any](t testing.TB, r reply) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("answer %d is not the documented shape: %v\n%s", r.status, err, r.body)
	}
	return v
}

// wantStatus fails unless the reply has the status.
func wantStatus(t testing.TB, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}

// leaks are strings that must never reach a caller.
var leaks = []string{"SQLSTATE", "pgx", "pgconn", "goroutine", "panic", "sandbox_control.", "redis:", "dial tcp", ".go:"}

// wantProblem checks an RFC 9457 answer with the code (and field, when not empty).
func wantProblem(t testing.TB, r reply, status int, code sandbox.Code, field string) apiwire.Problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.headers["Content-Type"]; ct != apiwire.ProblemContentType {
		t.Fatalf("content type %q, want %s", ct, apiwire.ProblemContentType)
	}
	p := decode[apiwire.Problem](t, r)
	if p.Code != code || p.Status != status || p.Type != "urn:discord-sandboxes:problem:"+string(code) || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem %+v, want code %s status %d", p, code, status)
	}
	if field != "" && p.Field != field {
		t.Fatalf("problem field %q, want %q (detail %q)", p.Field, field, p.Detail)
	}
	if p.RequestID == "" || r.headers["X-Request-Id"] != p.RequestID {
		t.Fatalf("request id %q, header %q", p.RequestID, r.headers["X-Request-Id"])
	}
	// A sandbox's random id (and the names made of it) may spell a leak by chance ("pgx").
	body := string(r.body)
	if p.Sandbox != nil && p.Sandbox.ID != "" {
		body = strings.ReplaceAll(body, p.Sandbox.ID, "<id>")
	}
	for _, l := range leaks {
		if strings.Contains(body, l) {
			t.Fatalf("problem leaks %q: %s", l, r.body)
		}
	}
	return p
}

// create makes a sandbox through the API.
func (e *env) create(t testing.TB, principal, name string, guilds ...string) *apiwire.Sandbox {
	t.Helper()
	body, _ := json.Marshal(apiwire.CreateRequest{Name: name, TTL: "2h", Guilds: guilds})
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes", body: string(body), principal: principal})
	wantStatus(t, r, 201)
	sb := decode[apiwire.Sandbox](t, r)
	return &sb
}

// snapshot captures everything a request could change: control-plane rows (shares and test
// guilds too),
// audit entries, role passwords, sandbox schemas and every Redis key with its value (for a
// stream, its length and its consumer groups' positions).
func (e *env) snapshot(t testing.TB) string {
	t.Helper()
	var sbs, maps, shares, audit, passwords, schemas string
	var roles []string
	err := e.direct.QueryRow(context.Background(), `SELECT
		coalesce((SELECT json_agg(s ORDER BY s.id)::text FROM sandbox_control.sandboxes s), ''),
		coalesce((SELECT json_agg(m ORDER BY m.guild_id)::text FROM sandbox_control.guild_mappings m), ''),
		coalesce((SELECT json_agg(sh ORDER BY sh.sandbox_id, sh.principal)::text FROM sandbox_control.sandbox_shares sh), '') ||
			coalesce((SELECT json_agg(tg ORDER BY tg.guild_id)::text FROM sandbox_control.test_guilds tg), '') ||
			coalesce((SELECT json_agg(pg ORDER BY pg.guild_id)::text FROM sandbox_control.protected_guilds pg), ''),
		(SELECT count(*) FROM sandbox_control.audit_log)::text,
		coalesce((SELECT array_agg(db_role) FROM sandbox_control.sandboxes), '{}')`,
	).Scan(&sbs, &maps, &shares, &audit, &roles)
	if err != nil {
		t.Fatal(err)
	}
	// Where the sandboxes' roles and schemas are, as the superuser: role passwords are in
	// pg_authid, which the control user cannot read.
	err = testenv.AdminPool(t, e.workerURL).QueryRow(context.Background(), `SELECT
		coalesce((SELECT json_agg(coalesce(a.rolpassword, '') || a.rolname ORDER BY a.rolname)::text FROM pg_authid a
			WHERE a.rolname = ANY($1)), ''),
		coalesce((SELECT json_agg(n.nspname ORDER BY n.nspname)::text FROM pg_namespace n WHERE n.nspname LIKE 'sb\_%'), '')`,
		roles).Scan(&passwords, &schemas)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := testenv.RedisAdminOf(t, e.rdb) // KEYS is not the functions' to run
	var redisState strings.Builder
	servers := []redis.UniversalClient{e.rdb}
	if e.control != e.rdb {
		servers = append(servers, e.control)
	}
	for i, rdb := range servers {
		ks, err := testenv.RedisAdminOf(t, rdb).Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ks)
		fmt.Fprintf(&redisState, "server %d:\n", i)
		for _, k := range ks {
			typ := rdb.Type(ctx, k).Val()
			redisState.WriteString(k + "=" + typ)
			switch typ {
			case "string":
				redisState.WriteString(":" + rdb.Get(ctx, k).Val())
			case "stream":
				redisState.WriteString(":" + strings.Repeat("x", int(rdb.XLen(ctx, k).Val())))
				for _, g := range rdb.XInfoGroups(ctx, k).Val() {
					fmt.Fprintf(&redisState, " group %s at %s, %d pending", g.Name, g.LastDeliveredID, g.Pending)
				}
			}
			redisState.WriteString("\n")
		}
	}
	// The sandboxes' Redis users, with their password hashes (connect rotates them).
	var ids []string
	rows, err := e.pool.Query(ctx, `SELECT id FROM sandbox_control.sandboxes ORDER BY id`)
	if err == nil {
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		t.Fatal(err)
	}
	acl, err := admin.Do(ctx, "ACL", "LIST").StringSlice()
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, line := range acl {
		for _, id := range ids {
			if strings.HasPrefix(line, "user "+e.resources.RedisUserName(id)+" ") {
				users = append(users, line)
			}
		}
	}
	return strings.Join([]string{sbs, maps, shares, audit, passwords, schemas, redisState.String(), strings.Join(users, "\n")}, "\n--\n")
}

// unchanged fails when the state differs from before.
func (e *env) unchanged(t testing.TB, before string) {
	t.Helper()
	if after := e.snapshot(t); after != before {
		t.Fatalf("a refused request changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// lambdaOf wraps a handler like the function does, without metrics.
func lambdaOf(h *api.Handler) lambda.Handler {
	return lambda.NewHandler(lambdakit.Wrap("api", nil, h.HandleEvent))
}

// fine reports whether a health check found nothing wrong: ok, or a warning only for its
// latency (health.go's slowThreshold), which a loaded test machine may pass.
func fine(c apiwire.Check) bool {
	return c.Status == api.CheckOK || c.Status == api.CheckWarn && strings.Contains(c.Detail, " (slow: ")
}

// healthyBut says whether an answer is healthy, or degraded by slow checks alone.
func healthyBut(overall string, checks []apiwire.Check) bool {
	if overall == api.Healthy {
		return true
	}
	if overall != api.Degraded {
		return false
	}
	for _, c := range checks {
		if !fine(c) {
			return false
		}
	}
	return true
}
