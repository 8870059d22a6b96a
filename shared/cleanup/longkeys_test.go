package cleanup

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// A sandbox's code names its keys, and the keyspace passes read every sandbox's names: what
// they read must not grow with them. A key named with 65 MiB made a SCAN reply pass the
// server's output limit (64 MB, scripts/redis-server.conf), which closed the control plane's
// connection: every run failed the delete_keys step of every sandbox in its batch (they stayed
// destroying) and its orphan reconciliation, for as long as the hostile sandbox lived, and its
// own teardown then failed forever. Here the run tears another sandbox down and counts the
// hostile one's keys; then the hostile sandbox's own teardown deletes its long key.
func TestLongKeyNamesCannotStopTheKeyspacePasses(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	hostile := e.create(t, "long-names", 2*time.Hour)
	// Two, so that their teardowns share the pass over every namespace.
	victims := []*sandbox.Sandbox{e.createExpired(t, "long-names-a"), e.createExpired(t, "long-names-b")}
	for _, v := range victims {
		e.seed(t, v, 3)
	}
	creds, err := e.p.RotateCredentials(ctx, hostile.ID, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	worker := testenv.NewRedisClient(t, redis.UniversalOptions{DB: testenv.RedisDBOf(e.rdb),
		Username: creds.RedisUser, Password: creds.RedisPassword, MaxRetries: -1, PoolSize: 1})
	defer func() { _ = worker.Close() }()
	long := keys.Namespace(hostile.ID) + strings.Repeat("k", 65<<20)
	if err := worker.Set(ctx, long, "v", 0).Err(); err != nil {
		t.Fatalf("the sandbox's own user: %v", err)
	}
	t.Cleanup(func() { _ = e.rdb.Unlink(context.Background(), long).Err() })

	rep, err := e.s.Run(ctx, RunOptions{})
	if err != nil || len(rep.Destroyed) != 2 || len(rep.Failed) != 0 {
		t.Fatalf("run beside a key named with 65 MiB: %+v %.300v", rep, err)
	}
	for _, v := range victims {
		e.assertGone(t, v.ID, nil)
	}
	if n, err := e.rdb.Exists(ctx, long).Result(); err != nil || n != 1 {
		t.Fatalf("the hostile sandbox's key went with another's teardown: %d %v", n, err)
	}
	counted, err := e.rdb.HGet(ctx, keys.Usage(hostile.ID), keys.UsageFieldKeys).Result()
	if err != nil || counted != "2" { // its stream and its long key
		t.Errorf("the hostile sandbox's key count: %q %v, want 2", counted, err)
	}

	e.clock.Add(3 * time.Hour)
	rep, err = e.s.Run(ctx, RunOptions{})
	if err != nil || len(rep.Destroyed) != 1 || rep.Destroyed[0] != hostile.ID || len(rep.Failed) != 0 {
		t.Fatalf("the hostile sandbox's own teardown: %+v %.300v", rep, err)
	}
	e.assertGone(t, hostile.ID, nil)
	got, _ := e.m.Get(ctx, hostile.ID)
	if rec, _ := ParseRecord(got.Teardown); rec.DeleteKeys == nil || rec.DeleteKeys.Unlinked != 2 {
		t.Errorf("keys step %+v, want its stream and its long key", rec.DeleteKeys)
	}
}
