package testenv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Logical database 0 is reserved for the leases below; tests get databases 1..N-1, where N is
// the server's `databases` setting (scripts/services.sh sets 256).
//
// Logical databases exist only on a standalone server: Redis Cluster has database 0 alone, so
// behaviour specific to cluster mode (hash slots, one SCAN per primary) cannot be tested this way.
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

// RedisAddr returns host:port of the test Redis server.
func RedisAddr(t testing.TB) string {
	t.Helper()
	return requireEnv(t, redisAddrVar)
}

// RedisCredentials returns the user and password of the functions' Redis ACL user, for code
// that builds its own client (REDIS_USERNAME, REDIS_PASSWORD).
func RedisCredentials(t testing.TB) (user, password string) {
	t.Helper()
	return requireEnv(t, redisUserVar), requireEnv(t, redisPassVar)
}

// Redis returns a client on a logical database that no concurrent test uses, empty at the start,
// authenticated as the functions' ACL user. The client is closed, and the database emptied and
// released, when the test ends.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	db := RedisDB(t)
	user, password := RedisCredentials(t)
	client := redis.NewClient(&redis.Options{Addr: RedisAddr(t), DB: db, Username: user, Password: password})
	t.Cleanup(func() {
		_ = client.Close() // the test may have closed it already
	})
	return client
}

// RedisAdmin returns a client on logical database db as the server's administrator (the
// default user): for assertions that need commands the functions may not run, such as KEYS.
func RedisAdmin(t testing.TB, db int) *redis.Client {
	t.Helper()
	client := adminClient(t, db)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func adminClient(t testing.TB, db int) *redis.Client {
	t.Helper()
	return redis.NewClient(&redis.Options{Addr: RedisAddr(t), DB: db, Password: requireEnv(t, redisAdminPassVar)})
}

// RedisDB leases a logical database index that no concurrent test holds and empties it; when the
// test ends the database is emptied and released. It serves code that builds its own client
// from an address and a database index; other tests use Redis.
func RedisDB(t testing.TB) int {
	t.Helper()
	return leaseRedisDB(t).db
}

type dbLease struct {
	db    int
	token string
}

func leaseKey(db int) string { return leaseKeyPrefix + strconv.Itoa(db) }

func leaseRedisDB(t testing.TB) dbLease {
	t.Helper()
	addr := RedisAddr(t)
	admin := adminClient(t, 0)
	defer func() { _ = admin.Close() }()

	lease, err := acquireDB(t.Context(), admin)
	if err != nil {
		t.Fatalf("testenv: redis at %s: %v", addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		admin := adminClient(t, 0)
		defer func() { _ = admin.Close() }()
		err := flushDB(ctx, adminClient(t, lease.db))
		if err == nil {
			err = releaseDB(ctx, admin, lease)
		}
		if err != nil {
			t.Errorf("testenv: redis at %s: release database %d: %v", addr, lease.db, err)
		}
	})
	if err := flushDB(t.Context(), adminClient(t, lease.db)); err != nil {
		t.Fatalf("testenv: redis at %s: empty database %d: %v", addr, lease.db, err)
	}
	return lease
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
