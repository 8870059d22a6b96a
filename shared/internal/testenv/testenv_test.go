package testenv

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

	if _, err := poolA.Exec(ctx, "CREATE TABLE public.only_in_a (id int)"); err != nil {
		t.Fatal(err)
	}
	var found *string
	if err := poolB.QueryRow(ctx, "SELECT to_regclass('public.only_in_a')::text").Scan(&found); err != nil {
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
	SkipOnRedisCluster(t, "logical databases")
	a, b := Redis(t), Redis(t)
	dbA, dbB := RedisDBOf(a), RedisDBOf(b)
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
	SkipOnRedisCluster(t, "logical database leases (TestRedisClusterHoldIsExclusive is the cluster's)")
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
	SkipOnRedisCluster(t, "logical database leases")
	ctx := t.Context()
	admin := adminClient(t, 0)
	defer func() { _ = admin.Close() }()

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
	if RedisCluster() {
		for _, name := range []string{"Redis", "RedisDB"} {
			h := helpers[name]
			h.env = redisClusterAddrsVar
			helpers[name] = h
		}
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

// clusterMode runs the test on the Redis Cluster: as it is in the cluster pass, or by switching
// this sequential test to it when the services include the cluster. Without the cluster it
// skips: the standalone pass may run without it, and the cluster pass runs these tests anyway.
func clusterMode(t *testing.T) {
	t.Helper()
	if RedisCluster() {
		return
	}
	if os.Getenv(redisClusterAddrsVar) == "" {
		t.Skipf("no Redis Cluster running (%s unset): scripts/services.sh start redis-cluster", redisClusterAddrsVar)
	}
	t.Setenv(redisModeVar, "cluster")
}

func TestRedisClusterClientSeesEveryPrimary(t *testing.T) {
	clusterMode(t)
	ctx := t.Context()
	rdb := Redis(t)
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("Redis returned a %T on the cluster, want a *redis.ClusterClient", rdb)
	}
	if db := RedisDB(t); db != 0 {
		t.Errorf("RedisDB on the cluster: %d, want 0", db)
	}
	var mu sync.Mutex
	primaries := map[string]bool{}
	if err := cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		mu.Lock()
		primaries[node.Options().Addr] = true
		mu.Unlock()
		return node.Ping(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	if len(primaries) != 3 {
		t.Errorf("the control user's cluster client sees primaries %v, want 3", primaries)
	}
	// Keys in every slot range are served, each by its primary, to the control user.
	for _, key := range []string{"a", "b", "c", "d", "e", "f"} {
		if err := rdb.Set(ctx, key, "1", 0).Err(); err != nil {
			t.Errorf("SET %s: %v", key, err)
		}
	}
	var keys int64
	if err := RedisAdmin(t, 0).(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		n, err := node.DBSize(ctx).Result()
		mu.Lock()
		keys += n
		mu.Unlock()
		return err
	}); err != nil || keys != 6 {
		t.Errorf("the primaries hold %d keys (err %v), want 6", keys, err)
	}
}

// fakeTest stands in for another top-level test of the process, whose cleanups run when told.
type fakeTest struct {
	testing.TB
	name     string
	mu       sync.Mutex
	cleanups []func()
}

func (f *fakeTest) Helper()      {}
func (f *fakeTest) Name() string { return f.name }
func (f *fakeTest) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTest) end() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// onlyCluster narrows the pool to its first cluster for the rest of this sequential test, which
// thus knows which cluster its calls take.
func onlyCluster(t *testing.T) redisCluster {
	t.Helper()
	c := clusterPool(t)[0]
	t.Setenv(redisClusterAddrsVar, strings.Join(c.addrs, ","))
	t.Setenv(redisClusterLockVar, c.lock)
	return c
}

func TestRedisClusterHoldIsExclusive(t *testing.T) {
	clusterMode(t)
	onlyCluster(t)
	ctx := t.Context()
	holder := &fakeTest{TB: t, name: "TestFakeHolder"}
	defer holder.end()
	admin := RedisAdmin(holder, 0).(*redis.ClusterClient)
	if err := admin.Set(ctx, "testenv-marker", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		return node.Do(ctx, "ACL", "SETUSER", "sb_testenv_leftover", "off").Err()
	}); err != nil {
		t.Fatal(err)
	}

	// Another process cannot take the lock meanwhile.
	f, err := os.Open(os.Getenv(redisClusterLockVar))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != syscall.EWOULDBLOCK {
		t.Errorf("flock of the lock file while a test holds the cluster: %v, want EWOULDBLOCK", err)
	}

	// Another test of this process waits until the holder ends.
	waiter := &fakeTest{TB: t, name: "TestFakeWaiter"}
	defer waiter.end()
	taken := make(chan struct{})
	go func() {
		defer close(taken)
		RedisDB(waiter)
	}()
	select {
	case <-taken:
		t.Fatal("a second test took the cluster while the first held it")
	case <-time.After(300 * time.Millisecond):
	}
	holder.end()
	select {
	case <-taken:
	case <-time.After(30 * time.Second):
		t.Fatal("the second test did not get the cluster after the first ended")
	}

	// It finds the cluster empty: no key, no sandbox user on any node.
	after := RedisAdmin(waiter, 0).(*redis.ClusterClient)
	if n, err := after.Exists(ctx, "testenv-marker").Result(); err != nil || n != 0 {
		t.Errorf("the previous holder's key: exists=%d err=%v, want gone", n, err)
	}
	if err := after.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		users, err := node.Do(ctx, "ACL", "USERS").StringSlice()
		if slices.Contains(users, "sb_testenv_leftover") {
			t.Errorf("node %s kept the previous holder's sandbox user", node.Options().Addr)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waiter.end()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Errorf("flock of the lock file once no test holds the cluster: %v", err)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// A test calls the helpers several times, and its subtests (parallel ones too) share its hold.
func TestRedisClusterHoldIsReentrant(t *testing.T) {
	clusterMode(t)
	ctx := t.Context()
	a := Redis(t)
	if err := a.Set(ctx, "{testenv}reentrant", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	b := Redis(t)
	_ = RedisDB(t)
	_ = RedisAddr(t)
	if n, err := RedisAdmin(t, 0).Exists(ctx, "{testenv}reentrant").Result(); err != nil || n != 1 {
		t.Errorf("a second call emptied the cluster under the test: exists=%d err=%v", n, err)
	}
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"x", "y"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				if err := Redis(t).Set(t.Context(), "{testenv}sub-"+name, "1", 0).Err(); err != nil {
					t.Error(err)
				}
			})
		}
	})
	if n, err := b.Exists(ctx, "{testenv}reentrant", "{testenv}sub-x", "{testenv}sub-y").Result(); err != nil || n != 3 {
		t.Errorf("after the subtests: %d of 3 keys exist (err %v), want all: a subtest's end emptied the test's cluster", n, err)
	}
}

// Parallel subtests of a test that holds no cluster take one each: they do not see each
// other's keys, as on the standalone server, where each leases its own database.
func TestRedisClusterSubtestsOfANonHolderAreIsolated(t *testing.T) {
	clusterMode(t)
	for _, name := range []string{"x", "y"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rdb := Redis(t)
			if err := rdb.Set(t.Context(), "{testenv}isolated-"+name, "1", 0).Err(); err != nil {
				t.Fatal(err)
			}
			other := map[string]string{"x": "y", "y": "x"}[name]
			// The sibling may have written its key already: it must be on another cluster.
			if n, err := rdb.Exists(t.Context(), "{testenv}isolated-"+other).Result(); err != nil || n != 0 {
				t.Errorf("subtest %s sees its sibling's key (exists=%d, err %v)", name, n, err)
			}
		})
	}
}

// Tests take different clusters of the pool at once, each holding its own.
func TestRedisClusterPoolServesTestsAtOnce(t *testing.T) {
	clusterMode(t)
	pool := clusterPool(t)
	if len(pool) < 2 {
		t.Skipf("a pool of %d cluster(s) (SANDBOX_REDIS_CLUSTERS)", len(pool))
	}
	tests := make([]*fakeTest, len(pool))
	taken := map[string]bool{}
	for i := range tests {
		tests[i] = &fakeTest{TB: t, name: fmt.Sprintf("TestFakeHolder%d", i)}
		defer tests[i].end()
		addrs := RedisAddrs(tests[i]) // would wait forever if it took a cluster already held
		if taken[addrs[0]] {
			t.Errorf("test %d took the cluster of %s, which another test holds", i, addrs[0])
		}
		taken[addrs[0]] = true
	}
	for _, c := range pool {
		if !taken[c.addrs[0]] {
			t.Errorf("no test took the cluster of %s", c.addrs[0])
		}
		f, err := os.Open(c.lock)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != syscall.EWOULDBLOCK {
			t.Errorf("flock of %s while a test holds its cluster: %v, want EWOULDBLOCK", c.lock, err)
		}
		_ = f.Close()
	}
}

// A failover test may leave its cluster settling: a primary asleep (DEBUG SLEEP), failed over to
// its replica, then rejoining as a replica itself. The next test to take the cluster waits until
// it is whole again rather than fail.
func TestRedisClusterTakeWaitsForTheClusterToSettle(t *testing.T) {
	clusterMode(t)
	c := onlyCluster(t)
	ctx := t.Context()
	holder := &fakeTest{TB: t, name: "TestFakeFailover"}
	var (
		mu      sync.Mutex
		primary string
	)
	if err := RedisAdmin(holder, 0).(*redis.ClusterClient).ForEachMaster(ctx, func(_ context.Context, node *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		primary = node.Options().Addr // any one
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	holder.end()

	// Longer than the node timeout (2 s): the replica takes over meanwhile.
	const sleep = 5 * time.Second
	sleeper := redis.NewClient(&redis.Options{Addr: primary, Password: os.Getenv(redisAdminPassVar), ReadTimeout: 2 * sleep})
	defer func() { _ = sleeper.Close() }()
	if err := sleeper.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	slept := make(chan error, 1)
	start := time.Now()
	go func() { slept <- sleeper.Do(ctx, "DEBUG", "SLEEP", sleep.Seconds()).Err() }()
	time.Sleep(100 * time.Millisecond) // the sleep has begun

	next := &fakeTest{TB: t, name: "TestFakeNext"}
	defer next.end()
	rdb := Redis(next)
	took := time.Since(start)
	if err := <-slept; err != nil {
		t.Fatalf("DEBUG SLEEP on %s: %v", primary, err)
	}
	if took < sleep-time.Second {
		t.Errorf("the next test took the cluster %v after its primary %s fell asleep for %v: it did not wait", took, primary, sleep)
	}
	nodes := make([]*redis.Client, len(c.addrs))
	for i, addr := range c.addrs {
		nodes[i] = redis.NewClient(&redis.Options{Addr: addr, Password: os.Getenv(redisAdminPassVar)})
		defer func() { _ = nodes[i].Close() }()
	}
	if problem := clusterProblem(ctx, nodes); problem != "" {
		t.Errorf("the cluster once taken: %s", problem)
	}
	if err := rdb.Set(ctx, "{testenv}after-failover", "1", 0).Err(); err != nil {
		t.Errorf("SET once taken: %v", err)
	}
	role, err := sleeper.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) == 0 {
		role = []any{err}
	}
	t.Logf("took the cluster after %v; the primary that slept, %s, is now: %v", took, primary, role[0])
}
