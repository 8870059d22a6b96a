package testenv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/config"
)

// On the standalone server, logical database 0 is reserved for the leases below; tests get
// databases 1..N-1, where N is the server's `databases` setting (scripts/services.sh sets 256).
//
// Logical databases exist only on a standalone server: Redis Cluster has database 0 alone, so
// with SANDBOX_TEST_REDIS_MODE=cluster each test takes a whole cluster of a pool instead
// (cluster.go), and behaviour specific to cluster mode (hash slots, one SCAN per primary,
// failover) is tested there.
const (
	leaseKeyPrefix  = "sandbox:testenv:db-lease:"
	leaseCounterKey = "sandbox:testenv:next-db"
	// leaseTTL frees the databases of test binaries that died before their cleanup ran.
	leaseTTL = time.Hour
)

// releaseScript deletes a lease only while it is still ours, so an expired and re-leased
// database is never freed from under its new holder.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// RedisAddr returns host:port of the test Redis server; on the cluster (RedisCluster), the
// first node's of the cluster the test holds, a seed from which a cluster client finds the
// others, and the caller holds the cluster until the test ends (see Redis).
func RedisAddr(t testing.TB) string {
	t.Helper()
	if RedisCluster() {
		return RedisAddrs(t)[0]
	}
	return requireEnv(t, redisAddrVar)
}

// RedisAddrs returns the addresses of every node of the test Redis: the standalone server's
// alone, or every node of the cluster the test holds (taken at the first call, held until the
// test ends).
func RedisAddrs(t testing.TB) []string {
	t.Helper()
	if !RedisCluster() {
		return []string{requireEnv(t, redisAddrVar)}
	}
	return holdCluster(t).addrs
}

// RedisCredentials returns the user and password of the functions' Redis ACL user, for code
// that builds its own client (REDIS_USERNAME, REDIS_PASSWORD).
func RedisCredentials(t testing.TB) (user, password string) {
	t.Helper()
	return requireEnv(t, redisUserVar), requireEnv(t, redisPassVar)
}

// Redis returns a client authenticated as the functions' ACL user on a Redis that no concurrent
// test uses, empty at the start: on the standalone server, a *redis.Client on a logical database
// of its own, emptied and released when the test ends; on the cluster (RedisCluster), a
// *redis.ClusterClient on database 0 of a cluster of the pool that the test holds alone, across
// processes, until it ends (emptied when taken and when released). The client is closed when the
// test ends.
//
// On the cluster, as many tests use Redis at once as the pool has clusters: a test must call
// t.Parallel, if at all, before it first calls Redis, RedisAdmin, RedisDB or RedisAddr, or it
// would hold a cluster while paused, and the sequential tests could wait for it.
func Redis(t testing.TB) redis.UniversalClient {
	t.Helper()
	user, password := RedisCredentials(t)
	return NewRedisClient(t, redis.UniversalOptions{DB: RedisDB(t), Username: user, Password: password})
}

// NewRedisClient returns a client on the test Redis built from opts, with the addresses filled
// in: a *redis.Client on opts.DB of the standalone server, or a *redis.ClusterClient on the
// cluster (database 0, whatever opts.DB says; the test holds the cluster until it ends). It is
// closed when the test ends. It serves tests that connect as another user, such as a sandbox's.
func NewRedisClient(t testing.TB, opts redis.UniversalOptions) redis.UniversalClient {
	t.Helper()
	opts.Addrs = RedisAddrs(t)
	opts.IsClusterMode = RedisCluster()
	if opts.IsClusterMode {
		opts.DB = 0
	}
	client := redis.NewUniversalClient(&opts)
	t.Cleanup(func() {
		_ = client.Close() // the test may have closed it already
	})
	return client
}

// RedisDBOf returns the logical database a client from Redis or NewRedisClient works on: 0 for
// a cluster client.
func RedisDBOf(client redis.UniversalClient) int {
	if c, ok := client.(*redis.Client); ok {
		return c.Options().DB
	}
	return 0
}

// RedisNodes returns a client per node of rdb, with rdb's user: every primary and replica of a
// cluster client (ACL users, for one, are per node), or rdb itself.
func RedisNodes(t testing.TB, rdb redis.UniversalClient) []*redis.Client {
	t.Helper()
	return redisNodes(t, rdb, (*redis.ClusterClient).ForEachShard)
}

// RedisPrimaries returns a client per primary of rdb, with rdb's user: every primary of a
// cluster client (each holds some of the keys: KEYS, SCAN and DBSIZE see its own), or rdb itself.
func RedisPrimaries(t testing.TB, rdb redis.UniversalClient) []*redis.Client {
	t.Helper()
	return redisNodes(t, rdb, (*redis.ClusterClient).ForEachMaster)
}

func redisNodes(t testing.TB, rdb redis.UniversalClient,
	forEach func(*redis.ClusterClient, context.Context, func(context.Context, *redis.Client) error) error,
) []*redis.Client {
	t.Helper()
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return []*redis.Client{rdb.(*redis.Client)}
	}
	var mu sync.Mutex
	var nodes []*redis.Client
	if err := forEach(cluster, t.Context(), func(_ context.Context, n *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		nodes = append(nodes, n)
		return nil
	}); err != nil {
		t.Fatalf("testenv: the nodes of the Redis Cluster: %v", err)
	}
	return nodes
}

// RedisKeys returns the keys matching pattern on every primary of rdb (KEYS runs on one node).
func RedisKeys(t testing.TB, rdb redis.UniversalClient, pattern string) ([]string, error) {
	t.Helper()
	var all []string
	for _, node := range RedisPrimaries(t, rdb) {
		keys, err := node.Keys(t.Context(), pattern).Result()
		if err != nil {
			return nil, fmt.Errorf("KEYS on %s: %w", node.Options().Addr, err)
		}
		all = append(all, keys...)
	}
	return all, nil
}

// RedisAdmin returns a client on logical database db as the server's administrator (the
// default user): for assertions that need commands the functions may not run, such as KEYS.
// On the cluster it is a cluster client (db must be 0, as RedisDB returns there), and the test
// holds the cluster until it ends.
func RedisAdmin(t testing.TB, db int) redis.UniversalClient {
	t.Helper()
	if RedisCluster() {
		if db != 0 {
			t.Fatalf("testenv: RedisAdmin(%d) on the Redis Cluster, which has database 0 alone", db)
		}
		client := clusterAdminClient(t, holdCluster(t))
		t.Cleanup(func() { _ = client.Close() })
		return client
	}
	client := adminClient(t, db)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func adminClient(t testing.TB, db int) *redis.Client {
	t.Helper()
	return adminClientAt(t, RedisAddr(t), db)
}

func adminClientAt(t testing.TB, addr string, db int) *redis.Client {
	t.Helper()
	return redis.NewClient(&redis.Options{Addr: addr, DB: db, Password: requireEnv(t, redisAdminPassVar)})
}

// RedisDB leases a logical database index that no concurrent test holds and empties it; when the
// test ends the database is emptied and released. It serves code that builds its own client
// from an address and a database index; other tests use Redis. On the cluster it returns 0 and
// the test holds the cluster until it ends (see Redis).
func RedisDB(t testing.TB) int {
	t.Helper()
	if RedisCluster() {
		holdCluster(t)
		return 0
	}
	return leaseRedisDB(t).db
}

// WorkerRedisAddr returns host:port of the sandboxes' own test Redis server (scripts/services.sh's
// redis-workers), standalone in every mode, with the users of RedisAddr's.
func WorkerRedisAddr(t testing.TB) string {
	t.Helper()
	return requireEnv(t, workerRedisAddrVar)
}

// WorkerRedis returns a client authenticated as the functions' ACL user on a logical database
// of the sandboxes' own server (WorkerRedisAddr) that no concurrent test uses, empty at the
// start, emptied and released when the test ends, as Redis does on the standalone server.
func WorkerRedis(t testing.TB) *redis.Client {
	t.Helper()
	user, password := RedisCredentials(t)
	addr := WorkerRedisAddr(t)
	client := redis.NewClient(&redis.Options{Addr: addr, DB: leaseRedisDBAt(t, addr).db, Username: user, Password: password})
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// WorkerRedisAdmin returns a client on logical database db of the sandboxes' own server as its
// administrator (the default user), for assertions, closed when the test ends.
func WorkerRedisAdmin(t testing.TB, db int) *redis.Client {
	t.Helper()
	client := adminClientAt(t, WorkerRedisAddr(t), db)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

type dbLease struct {
	db    int
	token string
}

func leaseKey(db int) string { return leaseKeyPrefix + strconv.Itoa(db) }

func leaseRedisDB(t testing.TB) dbLease {
	t.Helper()
	return leaseRedisDBAt(t, RedisAddr(t))
}

// leaseRedisDBAt is leaseRedisDB on the standalone server at addr.
func leaseRedisDBAt(t testing.TB, addr string) dbLease {
	t.Helper()
	admin := adminClientAt(t, addr, 0)
	defer func() { _ = admin.Close() }()

	lease, err := acquireDB(t.Context(), admin)
	if err != nil {
		t.Fatalf("testenv: redis at %s: %v", addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		admin := adminClientAt(t, addr, 0)
		defer func() { _ = admin.Close() }()
		err := flushDB(ctx, adminClientAt(t, addr, lease.db))
		if err == nil {
			err = releaseDB(ctx, admin, lease)
		}
		if err != nil {
			t.Errorf("testenv: redis at %s: release database %d: %v", addr, lease.db, err)
		}
	})
	if err := flushDB(t.Context(), adminClientAt(t, addr, lease.db)); err != nil {
		t.Fatalf("testenv: redis at %s: empty database %d: %v", addr, lease.db, err)
	}
	// The users a former holder left (keys.ACLUser names them sb_<id>@<db>).
	ofDB := "@" + strconv.Itoa(lease.db)
	if err := deleteSandboxUsers(t.Context(), admin, func(user string) bool { return strings.HasSuffix(user, ofDB) }); err != nil {
		t.Fatalf("testenv: redis at %s: database %d: %v", addr, lease.db, err)
	}
	return lease
}

// deleteSandboxUsers deletes, on the one server or node of client, the sandbox ACL users
// (sandboxUserPrefix) that match accepts: users are the server's, so emptying a database
// keeps them, and the orphan finder of its next holder would report them.
func deleteSandboxUsers(ctx context.Context, client *redis.Client, match func(user string) bool) error {
	users, err := client.Do(ctx, "ACL", "USERS").StringSlice()
	if err != nil {
		return fmt.Errorf("ACL USERS on %s: %w", client.Options().Addr, err)
	}
	args := []any{"ACL", "DELUSER"}
	for _, user := range users {
		if strings.HasPrefix(user, sandboxUserPrefix) && match(user) {
			args = append(args, user)
		}
	}
	if len(args) == 2 {
		return nil
	}
	if err := client.Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("ACL DELUSER on %s: %w", client.Options().Addr, err)
	}
	return nil
}

// acquireDB takes the first free lease, starting from a shared counter so that consecutive
// callers spread over the databases instead of all probing from 1.
func acquireDB(ctx context.Context, admin *redis.Client) (dbLease, error) {
	count, err := databaseCount(ctx, admin)
	if err != nil {
		return dbLease{}, err
	}
	usable := int64(count - 1)
	start, err := admin.Incr(ctx, leaseCounterKey).Result()
	if err != nil {
		return dbLease{}, fmt.Errorf("lease counter: %w", err)
	}
	token := randomHex(16)
	for i := range usable {
		db := int((start+i)%usable) + 1
		ok, err := admin.SetNX(ctx, leaseKey(db), token, leaseTTL).Result()
		if err != nil {
			return dbLease{}, fmt.Errorf("lease database %d: %w", db, err)
		}
		if ok {
			return dbLease{db: db, token: token}, nil
		}
	}
	return dbLease{}, fmt.Errorf("all %d test databases are leased: more tests hold one at once than the server has databases", usable)
}

func releaseDB(ctx context.Context, admin *redis.Client, lease dbLease) error {
	return releaseScript.Run(ctx, admin, []string{leaseKey(lease.db)}, lease.token).Err()
}

func databaseCount(ctx context.Context, admin *redis.Client) (int, error) {
	config, err := admin.ConfigGet(ctx, "databases").Result()
	if err != nil {
		return 0, fmt.Errorf("CONFIG GET databases: %w", err)
	}
	count, err := strconv.Atoi(config["databases"])
	if err != nil {
		return 0, fmt.Errorf("CONFIG GET databases: %w", err)
	}
	if count < 2 {
		return 0, errors.New("the server has a single database (cluster mode?); testenv needs a standalone server with many, as scripts/services.sh starts")
	}
	return count, nil
}

// flushDB empties one logical database through a client of its own (a SELECT on a pooled
// connection would leak into later users of that connection) and closes the client.
func flushDB(ctx context.Context, client *redis.Client) error {
	defer func() { _ = client.Close() }()
	return client.FlushDB(ctx).Err()
}

// ProductionRedis returns a client on the test Redis (the test's cluster in cluster mode) built
// as the functions build theirs (clients.Redis: its timeouts, its retries, the caller's
// deadline bounding socket reads), as the functions' ACL user, closed when the test ends.
func ProductionRedis(t testing.TB) redis.UniversalClient {
	t.Helper()
	user, password := RedisCredentials(t)
	rdb, err := clients.Redis(t.Context(), config.Shared{
		RedisAddr: RedisAddr(t), RedisCluster: RedisCluster(),
		RedisUsername: user, RedisPassword: password,
	}, nil)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// ReadGroup reads the new entries of stream as consumer of group does (XREADGROUP ... >, at
// most 100, without blocking) and returns their ids: none when there are none.
func ReadGroup(t testing.TB, rdb redis.Cmdable, stream, group, consumer string) []string {
	t.Helper()
	res, err := rdb.XReadGroup(t.Context(), &redis.XReadGroupArgs{Group: group, Consumer: consumer,
		Streams: []string{stream, ">"}, Count: 100, Block: -1}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range res[0].Messages {
		ids = append(ids, m.ID)
	}
	return ids
}

// CommandHook is a go-redis hook that shows every command to it before it is sent, alone or
// in a pipeline: what a test records, or the point at which it acts.
type CommandHook func(cmd redis.Cmder)

// DialHook passes dials through.
func (see CommandHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook shows a command sent alone.
func (see CommandHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		see(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook shows each command of a pipeline.
func (see CommandHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			see(cmd)
		}
		return next(ctx, cmds)
	}
}

// RedisClientLike returns a client built from opts on the server (or cluster) and logical
// database of rdb, a client from Redis, WorkerRedis or NewRedisClient: a sandbox's worker,
// say, on whichever server holds the sandboxes. It is closed when the test ends.
func RedisClientLike(t testing.TB, rdb redis.UniversalClient, opts redis.UniversalOptions) redis.UniversalClient {
	t.Helper()
	c, ok := rdb.(*redis.Client)
	if !ok {
		return NewRedisClient(t, opts)
	}
	o := opts.Simple()
	o.Addr, o.DB = c.Options().Addr, c.Options().DB
	client := redis.NewClient(o)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// RedisAdminOf returns a client as the administrator (the default user) on the server (or
// cluster) and logical database of rdb, as RedisAdmin does for Redis's, closed when the test ends.
func RedisAdminOf(t testing.TB, rdb redis.UniversalClient) redis.UniversalClient {
	t.Helper()
	c, ok := rdb.(*redis.Client)
	if !ok {
		return RedisAdmin(t, 0)
	}
	client := adminClientAt(t, c.Options().Addr, c.Options().DB)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// RedisAddrsOf returns the addresses of the server of rdb, a client from Redis, WorkerRedis or
// NewRedisClient: its own, or every node of the cluster the test holds.
func RedisAddrsOf(t testing.TB, rdb redis.UniversalClient) []string {
	t.Helper()
	if c, ok := rdb.(*redis.Client); ok {
		return []string{c.Options().Addr}
	}
	return RedisAddrs(t)
}
