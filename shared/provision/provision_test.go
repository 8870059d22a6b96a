package provision_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

type env struct {
	pool *pgxpool.Pool
	url  string
	rdb  redis.UniversalClient
	p    *provision.Provisioner
}

func setup(t testing.TB) env {
	t.Helper()
	pool, dbURL := testenv.Postgres(t)
	if _, err := controlplane.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	rdb := testenv.Redis(t)
	return env{pool: pool, url: dbURL, rdb: rdb, p: provision.New(pool, rdb, "sandbox_template")}
}

// allowLargeObjects lets every role of the test's database make large objects, as on a server
// whose operator has not taken them from PUBLIC (docs/deploy.md, Server settings): the
// teardown must drop a role's large objects all the same. (A grant to the role itself would
// be the superuser's, which the control user's DROP OWNED may not revoke.)
func (e env) allowLargeObjects(t testing.TB) {
	t.Helper()
	testenv.AdminExec(t, e.url, "GRANT EXECUTE ON FUNCTION pg_catalog.lo_create(oid) TO PUBLIC")
}

// session opens a connection as sandbox id's role with its password, failing the test if it
// cannot.
func (e env) session(t *testing.T, id, password string) *pgx.Conn {
	t.Helper()
	conn, err := testenv.ConnectAs(t, e.url, sandbox.RoleName(id), password)
	if err != nil {
		t.Fatalf("connect as the role of sandbox %s: %v", id, err)
	}
	return conn
}

func provisioned(t *testing.T, e env) (string, string) {
	t.Helper()
	id := sandbox.NewID()
	if err := e.p.Provision(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	return id, rotated(t, e, id).DatabasePassword
}

// provisionedPair provisions two sandboxes: the one a test acts as, with its role's password,
// and another, which what the first does must leave untouched.
func provisionedPair(t *testing.T, e env) (id, password, other string) {
	t.Helper()
	id, password = provisioned(t, e)
	other, _ = provisioned(t, e)
	return id, password, other
}

// rotated gives the sandbox fresh credentials, as connect does, valid for an hour.
func rotated(t *testing.T, e env, id string) provision.Credentials {
	t.Helper()
	creds, err := e.p.RotateCredentials(t.Context(), id, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// asSandbox returns a client as the sandbox's Redis user of creds (its worker), closed when the
// test ends.
func asSandbox(t *testing.T, e env, creds provision.Credentials) redis.UniversalClient {
	t.Helper()
	return testenv.NewRedisClient(t, redis.UniversalOptions{DB: testenv.RedisDBOf(e.rdb),
		Username: creds.RedisUser, Password: creds.RedisPassword, MaxRetries: -1})
}

func TestCloneHasTablesIndexesConstraintsAndForeignKeys(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, pw := provisioned(t, e)

	res, err := e.p.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := "guild_settings members moderation_cases reminders"
	if !res.SchemaExists || !res.RoleExists || !res.StreamExists || strings.Join(res.Tables, " ") != want {
		t.Fatalf("inspect: %+v", res)
	}
	var indexes int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexdef LIKE '%xp DESC%'`,
		sandbox.SchemaName(id)).Scan(&indexes); err != nil || indexes != 1 {
		t.Fatalf("leaderboard index in clone: %d %v", indexes, err)
	}
	var groups []redis.XInfoGroup
	if groups, err = e.rdb.XInfoGroups(ctx, keys.EventStream(id)).Result(); err != nil || len(groups) != 1 || groups[0].Name != keys.EventsGroup {
		t.Fatalf("stream groups %+v %v", groups, err)
	}

	conn := e.session(t, id, pw)
	// search_path points at the sandbox's schema; defaults apply.
	var prefix string
	if err := conn.QueryRow(ctx, `INSERT INTO guild_settings (guild_id) VALUES ('80351110224678912') RETURNING prefix`).Scan(&prefix); err != nil || prefix != "!" {
		t.Fatalf("default prefix: %q %v", prefix, err)
	}
	// Check constraint.
	if _, err := conn.Exec(ctx, `INSERT INTO members (guild_id, user_id, xp) VALUES ('80351110224678912', '1', -1)`); err == nil {
		t.Fatal("check constraint xp >= 0 not cloned")
	}
	// Identity sequence of its own.
	var caseID int64
	if err := conn.QueryRow(ctx, `INSERT INTO moderation_cases (guild_id, user_id, moderator_id, action) VALUES ('80351110224678912', '1', '2', 'warn') RETURNING id`).Scan(&caseID); err != nil || caseID != 1 {
		t.Fatalf("identity: %d %v", caseID, err)
	}
	// Foreign key cloned, pointing at the clone's own table.
	if _, err := conn.Exec(ctx, `INSERT INTO moderation_cases (guild_id, user_id, moderator_id, action) VALUES ('80351110224678999', '1', '2', 'ban')`); err == nil {
		t.Fatal("foreign key not cloned")
	}
	if _, err := conn.Exec(ctx, `DELETE FROM guild_settings`); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM moderation_cases`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("ON DELETE CASCADE not cloned: %d %v", left, err)
	}
	// The template itself was not touched.
	var tmplRows int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM sandbox_template.guild_settings`).Scan(&tmplRows); err != nil || tmplRows != 0 {
		t.Fatalf("template rows %d %v", tmplRows, err)
	}
}

func TestRoleIsConfinedToItsSchema(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	a, pwA, b := provisionedPair(t, e)
	conn := e.session(t, a, pwA)
	if _, err := conn.Exec(ctx, `SELECT count(*) FROM members`); err != nil {
		t.Fatalf("own schema: %v", err)
	}
	for _, sql := range []string{
		`SELECT count(*) FROM ` + sandbox.SchemaName(b) + `.members`,
		`SELECT count(*) FROM sandbox_control.sandboxes`,
		`SELECT count(*) FROM sandbox_control.audit_log`,
		`SELECT count(*) FROM sandbox_template.members`,
		`CREATE TABLE public.escape (x int)`,
		`CREATE TABLE ` + sandbox.SchemaName(b) + `.escape (x int)`,
	} {
		if _, err := conn.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s: want permission denied, got %v", sql, err)
		}
	}
	// It may create its own tables in its schema (a worker running its own migrations).
	if _, err := conn.Exec(ctx, `CREATE TABLE scratch (x int)`); err != nil {
		t.Fatalf("create in own schema: %v", err)
	}
}

func TestRotatePasswordInvalidatesThePreviousOne(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, first := provisioned(t, e)
	creds, err := e.p.RotateCredentials(ctx, id, time.Now().Add(time.Hour), nil)
	second := creds.DatabasePassword
	if err != nil || second == first {
		t.Fatalf("rotate: %v", err)
	}
	if _, err := testenv.ConnectAs(t, e.url, sandbox.RoleName(id), first); err == nil {
		t.Fatal("the previous password still works")
	}
	if _, err := testenv.ConnectAs(t, e.url, sandbox.RoleName(id), second); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if _, err := e.p.RotateCredentials(ctx, sandbox.NewID(), time.Now().Add(time.Hour), nil); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("missing role: %v", err)
	}
}

// What the old credentials opened outlives a rotation, and EndSessions ends it: the role's
// database session and the Redis connections of its user, on every node. The new credentials
// open new sessions afterwards; another sandbox's sessions stay open; a sandbox whose role and
// user are gone has nothing to end.
func TestEndSessionsEndsWhatTheOldCredentialsOpened(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, _ := provisioned(t, e)
	old := rotated(t, e, id)
	db := e.session(t, id, old.DatabasePassword)
	worker := asSandbox(t, e, old)
	if err := worker.Set(ctx, keys.Namespace(id)+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	other, _ := provisioned(t, e)
	otherCreds := rotated(t, e, other)
	otherDB, otherWorker := e.session(t, other, otherCreds.DatabasePassword), asSandbox(t, e, otherCreds)
	if err := otherWorker.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	fresh := rotated(t, e, id)
	if _, err := db.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("the rotation ended the open session: %v (it never did; the test's premise is wrong)", err)
	}
	if err := worker.Get(ctx, keys.Namespace(id)+"k").Err(); err != nil {
		t.Fatalf("the rotation closed the open Redis connection: %v", err)
	}

	ended, err := e.p.EndSessions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ended.Database != 1 || ended.Redis < 1 {
		t.Errorf("ended %+v, want the one database session and the worker's Redis connection(s)", ended)
	}
	if _, err := db.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the database session opened with the old password still answers")
	}
	// MaxRetries -1: the closed connection is an error, not a silent reconnect; a reconnect
	// with the old password is refused anyway.
	if err := worker.Get(ctx, keys.Namespace(id)+"k").Err(); err == nil {
		t.Error("the Redis connection opened with the old password still answers")
	}
	if err := worker.Get(ctx, keys.Namespace(id)+"k").Err(); err == nil {
		t.Error("the old Redis password opens a new connection")
	}
	e.session(t, id, fresh.DatabasePassword)
	if err := asSandbox(t, e, fresh).Get(ctx, keys.Namespace(id)+"k").Err(); err != nil {
		t.Errorf("the new Redis password: %v", err)
	}
	if _, err := otherDB.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("another sandbox's session was ended: %v", err)
	}
	if err := otherWorker.Ping(ctx).Err(); err != nil {
		t.Errorf("another sandbox's Redis connection was closed: %v", err)
	}

	gone := sandbox.NewID()
	if ended, err := e.p.EndSessions(ctx, gone); err != nil || ended.Database != 0 || ended.Redis != 0 {
		t.Errorf("EndSessions of a sandbox that has no role or user: %+v %v", ended, err)
	}
}

// A session of the role that shows in pg_stat_activity only after EndSessions's first pass
// (a login whose password check passed just before the rotation committed) is ended by its
// second pass, by the role's OID. The window is too short to hit on purpose, so the test
// opens it: it logs in while EndSessions closes the Redis connections, between the passes.
func TestEndSessionsEndsASessionThatShowsLate(t *testing.T) {
	e := setup(t)
	if _, cluster := e.rdb.(*redis.ClusterClient); cluster {
		t.Skip("the hook sees the commands of a standalone client only; the standalone run covers this")
	}
	ctx := context.Background()
	id, _ := provisioned(t, e)
	creds := rotated(t, e, id)
	var late *pgx.Conn
	var once sync.Once
	e.rdb.AddHook(testenv.CommandHook(func(cmd redis.Cmder) {
		if cmd.Name() == "client" {
			once.Do(func() { late = e.session(t, id, creds.DatabasePassword) })
		}
	}))
	ended, err := e.p.EndSessions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if late == nil {
		t.Fatal("nothing logged in between the passes: this test proves nothing")
	}
	if _, err := late.Exec(ctx, "SELECT 1"); err == nil || ended.Database != 1 {
		t.Errorf("the session that showed after the first pass: %v, ended %+v; want it ended", err, ended)
	}
}

func TestDropIsIdempotentAndTerminatesSessions(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, pw, other := provisionedPair(t, e)
	e.session(t, id, pw)
	res, err := e.p.Drop(ctx, id, 2*time.Second)
	if err != nil || !res.SchemaExisted || !res.RoleExisted || res.SessionsTerminated != 1 {
		t.Fatalf("first drop: %+v %v", res, err)
	}
	res, err = e.p.Drop(ctx, id, 2*time.Second)
	if err != nil || res.SchemaExisted || res.RoleExisted {
		t.Fatalf("second drop: %+v %v", res, err)
	}
	after, err := e.p.Inspect(ctx, id)
	if err != nil || after.SchemaExists || after.RoleExists || len(after.Tables) != 0 {
		t.Fatalf("after drop: %+v %v", after, err)
	}
	still, err := e.p.Inspect(ctx, other)
	if err != nil || !still.SchemaExists || !still.RoleExists {
		t.Fatalf("other sandbox touched: %+v %v", still, err)
	}
}

// lockATable holds a lock on a table of the sandbox's schema, as another session's query
// would, until release is called or the test ends.
func lockATable(t *testing.T, e env, id string) (release func()) {
	t.Helper()
	tx, err := e.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	release = func() { _ = tx.Rollback(context.Background()) }
	t.Cleanup(release)
	if _, err := tx.Exec(t.Context(), "LOCK TABLE "+pgx.Identifier{sandbox.SchemaName(id), "members"}.Sanitize()+" IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	return release
}

func TestDropFailsFastOnABusySchema(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, _ := provisioned(t, e)
	release := lockATable(t, e, id)
	start := time.Now()
	_, err := e.p.Drop(ctx, id, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "lock timeout") {
		t.Fatalf("want a lock timeout, got %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("drop hung instead of failing")
	}
	release()
	if _, err := e.p.Drop(ctx, id, time.Second); err != nil {
		t.Fatalf("retry after the lock is gone: %v", err)
	}
}

func TestProvisionFailureLeavesNothingAndMarksFailed(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	broken := provision.New(e.pool, e.rdb, "no_such_template")
	m := controlplane.NewManager(e.pool, controlplane.Options{Limits: sandbox.DefaultLimits(), Provisioner: broken})
	sb, err := m.Create(ctx, "alice", controlplane.CreateInput{Name: "broken", Owner: "alice"})
	if !errors.Is(err, sandbox.ErrProvisioningFailed) {
		t.Fatalf("want provisioning_failed, got %v", err)
	}
	if controlplane.ProvisioningCause(err) == nil || strings.Contains(err.Error(), "no_such_template") {
		t.Fatalf("the caller-facing message must not carry the cause: %v", err)
	}
	if sb == nil || sb.Status != sandbox.StatusFailed || !strings.Contains(sb.LastError, "no_such_template") {
		t.Fatalf("sandbox %+v", sb)
	}
	res, err := e.p.Inspect(ctx, sb.ID)
	if err != nil || res.SchemaExists || res.RoleExists || res.StreamExists {
		t.Fatalf("resources left by a failed provisioning: %+v %v", res, err)
	}
	entries, _ := m.AuditLog(ctx, sb.ID)
	if len(entries) != 2 || entries[1].Action != controlplane.ActionFailed {
		t.Fatalf("audit %+v", entries)
	}
}

func TestProvisionRefusesInvalidIDs(t *testing.T) {
	e := setup(t)
	for _, id := range []string{"", "x", "abc; DROP TABLE", "ABCDEFGHIJKLMN"} {
		if err := e.p.Provision(context.Background(), id); err == nil {
			t.Errorf("Provision(%q) accepted", id)
		}
		if _, err := e.p.Drop(context.Background(), id, time.Second); err == nil {
			t.Errorf("Drop(%q) accepted", id)
		}
	}
}

// TestConcurrentProvisionAndDrop: GRANT CONNECT ON DATABASE and DROP OWNED both rewrite the
// database's ACL row, so unserialized they fail with "tuple concurrently updated". Parallel
// creates (API) and drops (cleanup runs) must all succeed.
func TestConcurrentProvisionAndDrop(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	const n = 16
	ids := make([]string, n)
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = sandbox.NewID()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.p.Provision(ctx, ids[i])
		}()
	}
	wg.Wait()
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.p.Drop(ctx, ids[i], 5*time.Second)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, id := range ids {
		if res, err := e.p.Inspect(ctx, id); err != nil || res.SchemaExists || res.RoleExists {
			t.Errorf("%s left behind: %+v %v", id, res, err)
		}
	}
}
