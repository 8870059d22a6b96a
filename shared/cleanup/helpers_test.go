package cleanup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const owner = "arn:aws:iam::123456789012:user/alice"

var errInjected = errors.New("injected fault")

type fakePublisher struct {
	mu   sync.Mutex
	sent []ExpiryWarning
	fail error
}

func (f *fakePublisher) Publish(_ context.Context, w ExpiryWarning) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.sent = append(f.sent, w)
	return nil
}

func (f *fakePublisher) Sent() []ExpiryWarning {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

type env struct {
	pool *pgxpool.Pool
	url  string
	// workers and workerURL are the sandboxes' database: pool and url unless the tests run
	// with the sandboxes on a server of their own (testenv.WorkersApart).
	workers   *pgxpool.Pool
	workerURL string
	// rdb holds the sandboxes' namespaces, usage hashes and users, control the route cache:
	// one Redis, unless the tests run with the sandboxes apart (then rdb is on their own
	// server, as with WORKER_REDIS_ADDR).
	rdb     redis.UniversalClient
	control redis.UniversalClient
	p       *provision.Provisioner
	m       *controlplane.Manager
	s       *Service
	clock   *testenv.Clock
	pub     *fakePublisher
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// guildSeq makes guild ids unique within the test binary.
var guildSeq atomic.Int64

func newGuild() string { return fmt.Sprintf("80351110224%06d", guildSeq.Add(1)) }

type envConfig struct {
	template string // template schema; created by the caller's prepare when not the default
	prepare  func(t testing.TB, pool *pgxpool.Pool)
	options  func(o *Options)
	maxConns int32
	// redis builds the client of the provisioner, the control plane and the service (one
	// Redis, even with the sandboxes apart); nil: testenv.Redis.
	redis func(t testing.TB) redis.UniversalClient
}

// setup returns a Service over a fresh database and Redis database, with a settable clock.
func setup(t testing.TB, cfgs ...envConfig) *env {
	t.Helper()
	cfg := envConfig{template: "sandbox_template", maxConns: 12}
	for _, c := range cfgs {
		if c.template != "" {
			cfg.template = c.template
		}
		if c.prepare != nil {
			cfg.prepare = c.prepare
		}
		if c.options != nil {
			cfg.options = c.options
		}
		if c.maxConns != 0 {
			cfg.maxConns = c.maxConns
		}
		if c.redis != nil {
			cfg.redis = c.redis
		}
	}
	ctx := context.Background()
	_, url := testenv.Postgres(t)
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	pc.MaxConns = cfg.maxConns
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := controlplane.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	newRedis := testenv.Redis
	if cfg.redis != nil {
		newRedis = cfg.redis
	}
	workers, workerURL := pool, url
	if testenv.WorkersApart() {
		workers, workerURL = testenv.WorkerPostgres(t)
		if _, err := controlplane.MigrateWorkers(ctx, workers); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.prepare != nil {
		cfg.prepare(t, workers) // templates are the sandboxes' database's
	}
	rdb := newRedis(t)
	control := rdb
	if testenv.WorkersApart() && !testenv.RedisCluster() && cfg.redis == nil {
		rdb = testenv.WorkerRedis(t)
	}
	clk := testenv.NewClock(time.Date(2026, 1, 8, 12, 0, 0, 0, time.UTC))
	limits := sandbox.DefaultLimits()
	limits.OwnerQuota = 1000
	limits.DBReservedConnections = -1 // more sandboxes than the test server has connections for
	p := provision.New(workers, rdb, cfg.template)
	m := controlplane.NewManager(pool, controlplane.Options{
		Limits: limits, Provisioner: p, WorkerServer: workers, Routes: routecache.New(control, 0, 0), Now: clk.Now, Logger: quiet,
	})
	pub := &fakePublisher{}
	opts := Options{
		Manager: m, Resources: p, Redis: control, WorkerRedis: rdb, Publisher: pub, Now: clk.Now, Logger: quiet,
		Concurrency: 2, DropLockTimeout: 2 * time.Second,
	}
	if cfg.options != nil {
		cfg.options(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &env{pool: pool, url: url, workers: workers, workerURL: workerURL, rdb: rdb, control: control, p: p, m: m, s: s, clock: clk, pub: pub}
}

// create makes a running sandbox with the given TTL and guilds (registered as test guilds
// first), and drops its schema and role when the test ends whatever happened (roles outlive
// the test database).
func (e *env) create(t *testing.T, name string, ttl time.Duration, guilds ...string) *sandbox.Sandbox {
	t.Helper()
	testenv.RegisterTestGuilds(t, e.pool, guilds...)
	sb, err := e.m.Create(context.Background(), owner, controlplane.CreateInput{Name: name, Owner: owner, TTL: ttl, Guilds: guilds})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	e.dropAtEnd(t, sb.ID)
	return sb
}

func (e *env) dropAtEnd(t testing.TB, id string) {
	t.Cleanup(func() {
		if _, err := e.p.Drop(context.Background(), id, 5*time.Second); err != nil {
			t.Logf("cleanup drop %s: %v", id, err)
		}
	})
}

// worker rotates the sandbox's credentials, as `sandbox connect` does, and returns them with a
// client of one connection as its Redis user: its worker, closed when the test ends.
func (e *env) worker(t *testing.T, id string) (redis.UniversalClient, provision.Credentials) {
	t.Helper()
	creds, err := e.p.RotateCredentials(context.Background(), id, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.RedisClientLike(t, e.rdb, redis.UniversalOptions{
		Username: creds.RedisUser, Password: creds.RedisPassword, MaxRetries: -1, PoolSize: 1}), creds
}

// shareLimit is what the tests of the sandboxes' shares lower the share they test to (1 MiB),
// so that they fill it with megabytes, not gigabytes.
const shareLimit = 1 << 20

// setupShare sets up a parallel test of one of the sandboxes' shares, which lower lowers to
// shareLimit, with two sandboxes named after what: big, which the test fills past the share,
// and small, which stays under it.
func setupShare(t *testing.T, what string, lower func(*Options)) (e *env, big, small *sandbox.Sandbox) {
	t.Helper()
	t.Parallel()
	e = setup(t, envConfig{options: lower})
	return e, e.create(t, what+"-big", time.Hour), e.create(t, what+"-small", time.Hour)
}

// login connects to the database as sandbox sb's role, with the new password a connect gives
// it, and returns the session and the password.
func (e *env) login(t *testing.T, sb *sandbox.Sandbox) (*pgx.Conn, string) {
	t.Helper()
	creds, err := e.p.RotateCredentials(context.Background(), sb.ID, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := testenv.ConnectAs(t, e.workerURL, sandbox.RoleName(sb.ID), creds.DatabasePassword)
	if err != nil {
		t.Fatalf("login as %s: %v", sb.Name, err)
	}
	return conn, creds.DatabasePassword
}

// run runs cleanup once and fails the test on any problem of the run.
func (e *env) run(t *testing.T, opts RunOptions) RunReport {
	t.Helper()
	rep, err := e.s.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rep
}

// workerConnections opens n connections as the sandbox's Redis user, each a client of its own
// that has run a command on the node of the sandbox's namespace, closed when the test ends.
func (e *env) workerConnections(t *testing.T, id string, creds provision.Credentials, n int) []redis.UniversalClient {
	t.Helper()
	out := make([]redis.UniversalClient, n)
	for i := range out {
		out[i] = testenv.RedisClientLike(t, e.rdb, redis.UniversalOptions{
			Username: creds.RedisUser, Password: creds.RedisPassword, MaxRetries: -1, PoolSize: 1})
		if err := out[i].Get(t.Context(), keys.Namespace(id)+"probe").Err(); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("a worker's connection as %s: %v", creds.RedisUser, err)
		}
	}
	return out
}

// createExpired makes a sandbox that expired an hour ago, leaving the clock as it was.
func (e *env) createExpired(t *testing.T, name string, guilds ...string) *sandbox.Sandbox {
	t.Helper()
	now := e.clock.Now()
	e.clock.Set(now.Add(-2 * time.Hour))
	defer e.clock.Set(now)
	return e.create(t, name, time.Hour, guilds...)
}

// runStoppingBefore runs the service once with every teardown failing before step, as if
// the process had died there.
func (e *env) runStoppingBefore(t *testing.T, step Step) {
	t.Helper()
	e.s.inject = func(_ context.Context, point string, s Step, _ string) error {
		if point == "before" && s == step {
			return errInjected
		}
		return nil
	}
	defer func() { e.s.inject = nil }()
	if _, err := e.s.Run(context.Background(), RunOptions{}); err != nil {
		t.Fatal(err)
	}
}

// seed gives a sandbox keys besides its stream and route cache entries for its guilds.
func (e *env) seed(t *testing.T, sb *sandbox.Sandbox, extraKeys int) {
	t.Helper()
	ctx := context.Background()
	pipe := e.rdb.Pipeline()
	for i := range extraKeys {
		pipe.Set(ctx, fmt.Sprintf("%sk%d", keys.Namespace(sb.ID), i), "v", 0)
	}
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.EventStream(sb.ID), Values: map[string]any{"type": "MESSAGE_CREATE"}})
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var routes []sandbox.Route
	for _, g := range sb.Guilds {
		routes = append(routes, sandbox.Route{GuildID: g, SandboxID: sb.ID, Status: sandbox.StatusRunning})
	}
	if err := routecache.New(e.control, 0, 0).SetCurrent(ctx, routes); err != nil {
		t.Fatal(err)
	}
}

// state is everything of one sandbox that the teardown touches.
type state struct {
	Status    sandbox.Status
	Schema    bool
	Role      bool
	RedisUser bool
	Keys      []string
	Mappings  []string
	Cache     map[string]string
}

func (e *env) state(t *testing.T, id string, guilds []string) state {
	t.Helper()
	ctx := context.Background()
	var st state
	var status string
	if err := e.pool.QueryRow(ctx, `SELECT status FROM sandbox_control.sandboxes WHERE id = $1`, id).Scan(&status); err != nil {
		t.Fatal(err)
	}
	st.Status = sandbox.Status(status)
	res, err := e.p.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	st.Schema, st.Role, st.RedisUser = res.SchemaExists, res.RoleExists, res.RedisUserExists
	pattern, _ := keys.NamespacePattern(id)
	found, err := testenv.RedisAdminOf(t, e.rdb).Keys(ctx, pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(found)
	st.Keys = found
	rows, err := e.pool.Query(ctx, `SELECT guild_id FROM sandbox_control.guild_mappings WHERE sandbox_id = $1 ORDER BY guild_id`, id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			t.Fatal(err)
		}
		st.Mappings = append(st.Mappings, g)
	}
	st.Cache = map[string]string{}
	for _, g := range guilds {
		if v, err := e.control.Get(ctx, keys.RouteCache(g)).Result(); err == nil {
			st.Cache[g] = v
		}
	}
	return st
}

// assertGone fails unless nothing of the sandbox remains and it is destroyed.
func (e *env) assertGone(t *testing.T, id string, guilds []string) {
	t.Helper()
	st := e.state(t, id, guilds)
	if st.Status != sandbox.StatusDestroyed || st.Schema || st.Role || st.RedisUser || len(st.Keys) > 0 || len(st.Mappings) > 0 || len(st.Cache) > 0 {
		t.Fatalf("sandbox %s not torn down completely: %+v", id, st)
	}
	if n, err := e.rdb.Exists(context.Background(), keys.Usage(id)).Result(); err != nil || n != 0 {
		t.Fatalf("sandbox %s: its usage hash survived the teardown (%d, %v)", id, n, err)
	}
}

// auditCounts counts a sandbox's audit entries by action, transitions by target status and
// teardown steps by step name.
func (e *env) auditCounts(t *testing.T, id string) map[string]int {
	t.Helper()
	out := map[string]int{}
	rows, err := e.pool.Query(context.Background(), `SELECT action, coalesce(details->>'to', ''), coalesce(details->>'step', '')
		FROM sandbox_control.audit_log WHERE sandbox_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var action, to, step string
		if err := rows.Scan(&action, &to, &step); err != nil {
			t.Fatal(err)
		}
		switch action {
		case controlplane.ActionTransition:
			out["to:"+to]++
		case controlplane.ActionTeardownStep:
			out["step:"+step]++
		default:
			out[action]++
		}
	}
	return out
}

// assertTornDownOnce checks the audit trail of one complete teardown: one transition to
// destroyed, one entry per recorded step.
func (e *env) assertTornDownOnce(t *testing.T, id string) {
	t.Helper()
	c := e.auditCounts(t, id)
	for _, k := range []string{"to:destroyed", "step:remove_mappings", "step:invalidate_cache", "step:delete_keys", "step:drop_schema_and_role"} {
		if c[k] != 1 {
			t.Errorf("sandbox %s: %d audit entries %s, want 1 (all: %v)", id, c[k], k, c)
		}
	}
	if c["to:destroying"]+c[controlplane.ActionDestroyRequested] != 1 {
		t.Errorf("sandbox %s: marked destroying %d times (all: %v)", id, c["to:destroying"]+c[controlplane.ActionDestroyRequested], c)
	}
	sb, err := e.m.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ParseRecord(sb.Teardown)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Next(sb.Status) != "" || rec.MarkDestroyed == nil || rec.MarkDestroying == nil || rec.StartedAt == nil {
		t.Errorf("sandbox %s: record incomplete: %s", id, sb.Teardown)
	}
}
