package testenv

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

func TestPostgresDatabasesAreIsolated(t *testing.T) {
	t.Parallel()
	poolA, urlA := Postgres(t)
	poolB, urlB := Postgres(t)
	if urlA == urlB {
		t.Fatalf("two calls returned the same URL %s", urlA)
	}
	ctx := t.Context()

	for _, c := range []struct {
		url  string
		pool *pgxpool.Pool
	}{{urlA, poolA}, {urlB, poolB}} {
		var current string
		if err := c.pool.QueryRow(ctx, "SELECT current_database()").Scan(&current); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(c.url, "/"+current+"?") || !strings.HasPrefix(current, "sbtest_") {
			t.Errorf("pool is on database %q, URL is %s", current, c.url)
		}
	}

	if _, err := poolA.Exec(ctx, "CREATE TABLE only_in_a (id int)"); err != nil {
		t.Fatal(err)
	}
	var found *string
	if err := poolB.QueryRow(ctx, "SELECT to_regclass('only_in_a')::text").Scan(&found); err != nil {
		t.Fatal(err)
	}
	if found != nil {
		t.Errorf("table created in database A is visible in database B as %s", *found)
	}
}

func TestPostgresDropsDatabaseWhenTestEnds(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("holder", func(t *testing.T) {
		pool, _ := Postgres(t)
		if err := pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		// A session the test forgot to close must not keep the database alive.
		conn, err := pool.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.Hijack()
	})

	admin, err := pgx.Connect(t.Context(), AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close(context.Background()) }()
	var exists bool
	if err := admin.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestRedisClientsGetDistinctDatabases(t *testing.T) {
	t.Parallel()
	a, b := Redis(t), Redis(t)
	dbA, dbB := a.Options().DB, b.Options().DB
	if dbA == dbB || dbA == 0 || dbB == 0 {
		t.Fatalf("got databases %d and %d, want two distinct non-zero ones", dbA, dbB)
	}
	ctx := t.Context()
	if err := a.Set(ctx, "only-in-a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Exists(ctx, "only-in-a").Result(); err != nil || n != 0 {
		t.Errorf("key set through database %d seen through database %d: exists=%d err=%v", dbA, dbB, n, err)
	}
}

func TestRedisDatabaseIsEmptiedAndReleasedWhenTestEnds(t *testing.T) {
	t.Parallel()
	marker := "testenv-marker-" + randomHex(8)
	var lease dbLease
	t.Run("holder", func(t *testing.T) {
		lease = leaseRedisDB(t)
		client := RedisAdmin(t, lease.db)
		if err := client.Set(t.Context(), marker, "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})

	ctx := t.Context()
	admin := RedisAdmin(t, 0)
	// Another package may lease the same database meanwhile, so check only what is ours.
	if holder, err := admin.Get(ctx, leaseKey(lease.db)).Result(); err != nil && err != redis.Nil {
		t.Fatal(err)
	} else if holder == lease.token {
		t.Errorf("database %d is still leased after its test ended", lease.db)
	}
	inDB := RedisAdmin(t, lease.db)
	if n, err := inDB.Exists(ctx, marker).Result(); err != nil || n != 0 {
		t.Errorf("database %d kept the test's key: exists=%d err=%v", lease.db, n, err)
	}
}

func TestConcurrentLeasesAreDistinct(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	admin := RedisAdmin(t, 0)

	const callers = 32
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		leases []dbLease
	)
	for range callers {
		wg.Go(func() {
			lease, err := acquireDB(ctx, admin)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			leases = append(leases, lease)
			mu.Unlock()
		})
	}
	wg.Wait()
	defer func() {
		for _, l := range leases {
			if err := releaseDB(context.Background(), admin, l); err != nil {
				t.Error(err)
			}
		}
	}()

	seen := map[int]bool{}
	for _, l := range leases {
		if seen[l.db] {
			t.Errorf("database %d leased twice", l.db)
		}
		seen[l.db] = true
	}
	if len(leases) != callers {
		t.Errorf("got %d leases, want %d", len(leases), callers)
	}
}

// fatalRecorder stands in for a test so that a helper's Fatal or Skip can be observed: both end
// the helper's goroutine, as they would a test's.
type fatalRecorder struct {
	testing.TB
	outcome string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.outcome = "fatal: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *fatalRecorder) Skip(args ...any)                 { r.skipped() }
func (r *fatalRecorder) Skipf(format string, args ...any) { r.skipped() }
func (r *fatalRecorder) SkipNow()                         { r.skipped() }
func (r *fatalRecorder) skipped() {
	r.outcome = "skipped"
	runtime.Goexit()
}

func TestMissingServicesFailTheTest(t *testing.T) {
	helpers := map[string]struct {
		env  string
		call func(testing.TB)
	}{
		"Postgres":    {databaseURLVar, func(tb testing.TB) { Postgres(tb) }},
		"AdminURL":    {adminDatabaseURLVar, func(tb testing.TB) { AdminURL(tb) }},
		"ControlURL":  {databaseURLVar, func(tb testing.TB) { ControlURL(tb) }},
		"RouterRole":  {routerURLVar, func(tb testing.TB) { RouterRole(tb) }},
		"RouterURL":   {routerURLVar, func(tb testing.TB) { RouterURL(tb, "postgres://u@h/db") }},
		"RedisCreds":  {redisUserVar, func(tb testing.TB) { RedisCredentials(tb) }},
		"Redis":       {redisAddrVar, func(tb testing.TB) { Redis(tb) }},
		"RedisDB":     {redisAddrVar, func(tb testing.TB) { RedisDB(tb) }},
		"SQSEndpoint": {sqsEndpointVar, func(tb testing.TB) { SQSEndpoint(tb) }},
	}
	for name, h := range helpers {
		t.Run(name, func(t *testing.T) {
			t.Setenv(h.env, "")
			rec := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.call(rec)
			}()
			<-done
			if !strings.HasPrefix(rec.outcome, "fatal: ") || !strings.Contains(rec.outcome, "scripts/with-services.sh") {
				t.Errorf("%s without %s: outcome %q, want a fatal error that says how to run the tests", name, h.env, rec.outcome)
			}
		})
	}
}

// The code under test connects with production's rights: a PostgreSQL user that is neither
// superuser nor exempt from row-level security, and a Redis user without admin commands.
func TestClientsHaveProductionRights(t *testing.T) {
	t.Parallel()
	pool, _ := Postgres(t)
	ctx := t.Context()
	var super, bypass, createRole, owner bool
	err := pool.QueryRow(ctx, `SELECT rolsuper, rolbypassrls, rolcreaterole,
		(SELECT datdba = r.oid FROM pg_database WHERE datname = current_database())
		FROM pg_roles r WHERE rolname = current_user`).Scan(&super, &bypass, &createRole, &owner)
	if err != nil {
		t.Fatal(err)
	}
	if super || bypass || !createRole || !owner {
		t.Errorf("control user: superuser=%v bypassrls=%v createrole=%v owns database=%v; want false false true true",
			super, bypass, createRole, owner)
	}

	rdb := Redis(t)
	if err := rdb.FlushAll(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("FLUSHALL as the functions' Redis user: %v, want NOPERM", err)
	}
	if err := rdb.ConfigGet(ctx, "databases").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("CONFIG GET as the functions' Redis user: %v, want NOPERM", err)
	}
	anonymous := redis.NewClient(&redis.Options{Addr: RedisAddr(t)})
	defer func() { _ = anonymous.Close() }()
	if err := anonymous.Ping(ctx).Err(); err == nil {
		t.Error("a client without credentials was served")
	}
}

// The router's role starts with no right at all, as docs/deploy.md creates it: whatever the
// router's tests find it may do, the migrate step's grants gave it.
func TestRouterRoleHasNoRightsOfItsOwn(t *testing.T) {
	t.Parallel()
	_, dbURL := Postgres(t)
	ctx := t.Context()
	var super, bypass, createRole, createDB, owns bool
	err := AdminPool(t, dbURL).QueryRow(ctx, `SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb,
		EXISTS (SELECT FROM pg_database WHERE datdba = r.oid)
		FROM pg_roles r WHERE rolname = $1`, RouterRole(t)).Scan(&super, &bypass, &createRole, &createDB, &owns)
	if err != nil {
		t.Fatal(err)
	}
	if super || bypass || createRole || createDB || owns {
		t.Errorf("router role: superuser=%v bypassrls=%v createrole=%v createdb=%v owns a database=%v; want none",
			super, bypass, createRole, createDB, owns)
	}
	conn, err := pgx.Connect(ctx, RouterURL(t, dbURL))
	if err == nil {
		_ = conn.Close(ctx)
		t.Fatal("the router role connected to a database nobody granted it")
	}
	if !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("connecting as the router role without a grant: %v, want permission denied", err)
	}
}
