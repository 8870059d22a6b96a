package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/clients"
)

// AdminURL returns the URL of the test server's maintenance database as its superuser. Only
// the harness and assertions that must see past the control user's rights use it.
func AdminURL(t testing.TB) string {
	t.Helper()
	return requireEnv(t, adminDatabaseURLVar)
}

// ControlURL returns the URL of the control user's own database (the one `make dev` uses).
func ControlURL(t testing.TB) string {
	t.Helper()
	return requireEnv(t, databaseURLVar)
}

// RouterURL returns the URL of the database of dbURL (a URL Postgres returned) as the router's
// role, which scripts/services.sh creates as docs/deploy.md does: LOGIN and nothing else, not
// even CONNECT on a database. It reaches the database once granted what the router needs
// (controlplane.GrantRouter, as the migrate step does; RouterRole names it).
func RouterURL(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	routerURL, err := replaceDatabase(requireEnv(t, routerURLVar), u.Path[1:])
	if err != nil {
		t.Fatalf("testenv: %s: %v", routerURLVar, err)
	}
	return routerURL
}

// RouterRole returns the name of the router's role (RouterURL's user).
func RouterRole(t testing.TB) string {
	t.Helper()
	role, err := userOf(requireEnv(t, routerURLVar))
	if err != nil {
		t.Fatalf("testenv: %s: %v", routerURLVar, err)
	}
	return role
}

// ServerLog returns the path of the test server's log (log_statement checks read it).
func ServerLog(t testing.TB) string {
	t.Helper()
	return requireEnv(t, pgLogVar)
}

// Postgres creates a fresh database (sbtest_<random>) owned by the control user and returns a
// pool connected to it as that user, and its URL. PUBLIC may not connect to it, as on the
// control user's own database. The pool is closed and the database dropped, whatever
// sessions remain on it, when the test ends.
func Postgres(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	return freshDatabase(t, databaseURLVar, adminDatabaseURLVar)
}

// WorkerPostgres is Postgres on the sandboxes' own server (scripts/services.sh's pg-workers),
// apart from the control plane's: a worker database (config.WorkerDatabase). Roles are a
// server's, so a sandbox's role made there does not exist on the control plane's server.
func WorkerPostgres(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	return freshDatabase(t, workerURLVar, workerAdminURLVar)
}

// freshDatabase creates the fresh database on the server whose control user's URL is in
// urlVar and superuser's in adminVar.
func freshDatabase(t testing.TB, urlVar, adminVar string) (*pgxpool.Pool, string) {
	t.Helper()
	admin := requireEnv(t, adminVar)
	control := requireEnv(t, urlVar)
	name := "sbtest_" + randomHex(8)
	dbURL, err := replaceDatabase(control, name)
	if err != nil {
		t.Fatalf("testenv: %s: %v", urlVar, err)
	}
	owner, err := userOf(control)
	if err != nil {
		t.Fatalf("testenv: %s: %v", urlVar, err)
	}
	quoted := pgx.Identifier{name}.Sanitize()

	if err := adminExec(t.Context(), admin, "CREATE DATABASE "+quoted+" OWNER "+pgx.Identifier{owner}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	if err := adminExec(t.Context(), admin, "REVOKE CONNECT ON DATABASE "+quoted+" FROM PUBLIC"); err != nil {
		t.Fatalf("testenv: revoke connect on %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+quoted+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})

	// The control plane's sessions, opened as the functions open theirs (their search path
	// among the rest), in a pool of pgx's default size.
	pool, err := clients.Postgres(t.Context(), dbURL, 0)
	if err != nil {
		t.Fatalf("testenv: connect to %s: %v", name, err)
	}
	t.Cleanup(pool.Close) // runs before the drop above: cleanups run last-in, first-out
	return pool, dbURL
}

// AdminExec runs one statement as the superuser on the database of dbURL (a URL Postgres
// returned): test setup that production's control user could not do, such as ALTER DATABASE
// ... SET log_statement.
func AdminExec(t testing.TB, dbURL, sql string) {
	t.Helper()
	if err := adminExec(t.Context(), adminURLOf(t, dbURL), sql); err != nil {
		t.Fatalf("testenv: %s: %v", sql, err)
	}
}

// AdminPool returns a pool on the database of dbURL (a URL Postgres returned) as the
// superuser, closed when the test ends: for assertions over what the control user may not
// read, such as pg_authid.
func AdminPool(t testing.TB, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), adminURLOf(t, dbURL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// adminURLOf is the superuser's URL of the database of dbURL, on whichever of the two servers
// dbURL names.
func adminURLOf(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	server := AdminURL(t)
	if w, err := url.Parse(os.Getenv(workerURLVar)); err == nil && w.Host != "" && w.Host == u.Host {
		server = requireEnv(t, workerAdminURLVar)
	}
	adminURL, err := replaceDatabase(server, u.Path[1:])
	if err != nil {
		t.Fatal(err)
	}
	return adminURL
}

func userOf(serverURL string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.User == nil || u.User.Username() == "" {
		return "", fmt.Errorf("no user in the URL")
	}
	return u.User.Username(), nil
}

// replaceDatabase returns serverURL with its database name replaced by name.
func replaceDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("want a postgres:// URL, got scheme %q", u.Scheme)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// adminExec runs one statement on its own connection: CREATE and DROP DATABASE cannot run
// inside a transaction or a pool's prepared-statement cache.
func adminExec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	return err
}

// DropSandboxes calls drop with the id of every sandbox of the control plane in pool, for a
// test's cleanup: sandbox roles are cluster-wide and outlive the test's database. A failed
// listing drops nothing (the database may be gone already).
func DropSandboxes(pool *pgxpool.Pool, drop func(ctx context.Context, id string)) {
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT id FROM sandbox_control.sandboxes`)
	if err != nil {
		return
	}
	ids, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, id := range ids {
		drop(ctx, id)
	}
}

// WaitForLockWait returns once a session of pool's database waits for a lock in a statement
// that matches the SQL condition where over pg_stat_activity's query (args are its
// parameters): the point at which a test that forces an interleaving lets the other side go.
func WaitForLockWait(t testing.TB, pool *pgxpool.Pool, what, where string, args ...any) {
	t.Helper()
	WaitUntil(t, what, func() bool { return LockWaits(pool, where, args...) })
}

// LockWaits reports whether a session of pool's database waits for a lock in a statement
// that matches where (WaitForLockWait), for a test that waits on either of two databases.
func LockWaits(pool *pgxpool.Pool, where string, args ...any) bool {
	var waiting bool
	err := pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity
		WHERE datname = pg_catalog.current_database() AND wait_event_type = 'Lock' AND (`+where+`))`, args...).Scan(&waiting)
	return err == nil && waiting
}

// workersModeVar selects where the tests that build the whole control plane put the
// sandboxes: "apart" runs them on the sandboxes' own servers (WorkerPostgres, WorkerRedis), as
// a deployment with WORKER_DATABASE_URL and WORKER_REDIS_ADDR does; unset, in the control
// plane's database and Redis.
const workersModeVar = "SANDBOX_TEST_WORKERS"

// WorkersApart reports whether the tests put the sandboxes on servers of their own
// (SANDBOX_TEST_WORKERS=apart).
func WorkersApart() bool { return os.Getenv(workersModeVar) == "apart" }
