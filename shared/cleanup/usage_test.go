package cleanup

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// countUsage writes a usage hash as the router does.
func countUsage(t *testing.T, e *env, id string, events int) {
	t.Helper()
	if err := e.rdb.HSet(context.Background(), keys.Usage(id), keys.UsageFieldEvents, events,
		keys.UsageFieldLastEventMS, e.clock.Now().UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
}

func usageExists(t *testing.T, e *env, id string) bool {
	t.Helper()
	n, err := e.rdb.Exists(context.Background(), keys.Usage(id)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// The usage hash is outside the namespace the keyspace step scans, so the teardown deletes it
// itself, in the same step, after the keys: through a destroy (a batch of one) and through a
// scheduled run (one pass for many); the record says so.
func TestTeardownDeletesTheUsageHash(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	one := e.create(t, "usage-one", time.Hour)
	e.seed(t, one, 2)
	countUsage(t, e, one.ID, 5)
	var batch []*sandbox.Sandbox
	for i := range 3 {
		sb := e.createExpired(t, "usage-batch-"+strconv.Itoa(i))
		e.seed(t, sb, 1)
		if i > 0 { // the first never had an event: nothing to delete, nothing recorded
			countUsage(t, e, sb.ID, i)
		}
		batch = append(batch, sb)
	}

	if _, err := e.s.Destroy(ctx, "test", one.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Run(ctx, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, sb := range append(batch, one) {
		e.assertGone(t, sb.ID, nil)
		if usageExists(t, e, sb.ID) {
			t.Errorf("the usage hash of %s survived its teardown", sb.Name)
		}
		got, err := e.m.Get(ctx, sb.ID)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := ParseRecord(got.Teardown)
		if err != nil || rec.DeleteKeys == nil || rec.DeleteKeys.UsageUnlinked != (i != 0) {
			t.Errorf("record of %s: %+v %v", sb.Name, rec.DeleteKeys, err)
		}
	}
}

// The cleanup's keyspace pass records each live sandbox's key count (its namespace's keys,
// not the hash) in its usage hash, and never one of a sandbox that is not live; a usage hash
// that no live sandbox owns is an orphan (redis_usage), reported after the grace period and
// removed when asked, and a dry run writes nothing.
func TestKeyCountsAndLeftoverUsageHashes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	live := e.create(t, "usage-live", 168*time.Hour)
	e.seed(t, live, 3) // three keys and the stream
	quiet := e.create(t, "usage-quiet", 168*time.Hour)
	gone := e.create(t, "usage-gone", 168*time.Hour)
	e.seed(t, gone, 1)
	countUsage(t, e, gone.ID, 9)
	for _, to := range []sandbox.Status{sandbox.StatusDestroying, sandbox.StatusDestroyed} {
		if _, err := e.m.Transition(ctx, "test", gone.ID, to, nil); err != nil { // its Redis left behind
			t.Fatal(err)
		}
	}
	ghost := sandbox.NewID()
	countUsage(t, e, ghost, 1)

	if _, err := e.s.Run(ctx, RunOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if usageExists(t, e, live.ID) {
		t.Fatal("a dry run wrote a key count")
	}
	rep, err := e.s.Run(ctx, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.rdb.HGetAll(ctx, keys.Usage(live.ID)).Result()
	if err != nil || h[keys.UsageFieldKeys] != "4" || h[keys.UsageFieldKeysCountedMS] != strconv.FormatInt(e.clock.Now().UnixMilli(), 10) {
		t.Errorf("key count of the live sandbox: %v %v", h, err)
	}
	if h, _ := e.rdb.HGetAll(ctx, keys.Usage(quiet.ID)).Result(); h[keys.UsageFieldKeys] != "1" { // its stream
		t.Errorf("key count of the quiet sandbox: %v", h)
	}
	if h, _ := e.rdb.HGetAll(ctx, keys.Usage(gone.ID)).Result(); h[keys.UsageFieldKeys] != "" || h[keys.UsageFieldEvents] != "9" {
		t.Errorf("the destroyed sandbox's hash was counted: %v", h)
	}
	if rep.Orphans == nil || rep.Orphans.Count(ResourceRedisUsage) != 0 {
		t.Fatalf("young leftovers reported at once: %+v", rep.Orphans)
	}

	e.clock.Add(config.DefaultOrphanGrace)
	rep, err = e.s.Run(ctx, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, o := range rep.Orphans.Orphans {
		if o.Type == ResourceRedisUsage {
			found = append(found, o.Name)
		}
	}
	if len(found) != 2 || !slices.Contains(found, keys.Usage(gone.ID)) || !slices.Contains(found, keys.Usage(ghost)) {
		t.Fatalf("usage orphans %v, want the destroyed sandbox's and the ghost's", found)
	}
	rep, err = e.s.Run(ctx, RunOptions{RemoveOrphans: true})
	if err != nil || rep.OrphansRemoved == nil {
		t.Fatalf("removal: %+v %v", rep, err)
	}
	for _, id := range []string{gone.ID, ghost} {
		if usageExists(t, e, id) {
			t.Errorf("the leftover usage hash of %s was not removed", id)
		}
	}
	if !usageExists(t, e, live.ID) {
		t.Error("a live sandbox's usage hash was removed")
	}
	if c := e.auditCounts(t, ghost); c[controlplane.ActionOrphanRemoved] != 1 {
		t.Errorf("audit of the ghost's removal: %v", c)
	}
}

// A sandbox whose keys hold more memory than a sandbox may (Options.RedisMemoryLimit; here
// 1 MiB) has its Redis user switched off by the scheduled run, after the keyspace pass
// measured every namespace and recorded each live sandbox's memory in its usage hash: Redis
// bounds memory per server only, so one worker's keys could otherwise fill the server that
// every sandbox writes to. The keys are a hash of many small fields and two large ones, which
// the five samples of MEMORY USAGE by default read as 48 KB (1.36 MB): the pass counts every
// element. A sandbox under the limit and a dry run are left alone; a user already off
// is not reported again; after connect the worker deletes its keys, and the next run leaves
// it on.
func TestRunSwitchesOffARedisUserWhoseKeysHoldTooMuchMemory(t *testing.T) {
	e, big, small := setupShare(t, "memory", func(o *Options) { o.RedisMemoryLimit = shareLimit })
	ctx := context.Background()
	bigWorker, _ := e.worker(t, big.ID)
	smallWorker, _ := e.worker(t, small.ID)
	hash := keys.Namespace(big.ID) + "cache"
	fields := make([]any, 0, 2*1002)
	for i := range 1000 {
		fields = append(fields, "f"+strconv.Itoa(i), "v")
	}
	large := strings.Repeat("x", 600<<10)
	fields = append(fields, "large-1", large, "large-2", large)
	if err := bigWorker.HSet(ctx, hash, fields...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := smallWorker.Set(ctx, keys.Namespace(small.ID)+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	memory := func(id string) int64 {
		t.Helper()
		v, err := e.rdb.HGet(ctx, keys.Usage(id), keys.UsageFieldMemory).Int64()
		if err != nil {
			t.Fatalf("memory of %s in its usage hash: %v", id, err)
		}
		return v
	}
	wantState := func(id string, want provision.RedisUserState) {
		t.Helper()
		if st, err := e.p.RedisUserStateOf(ctx, id); err != nil || st != want {
			t.Fatalf("the Redis user of %s is in state %d (%v), want %d", id, st, err, want)
		}
	}

	if rep := e.run(t, RunOptions{DryRun: true}); len(rep.RedisUsersOverMemory) != 0 || usageExists(t, e, big.ID) {
		t.Fatalf("a dry run switched off %v or recorded the memory", rep.RedisUsersOverMemory)
	}
	rep := e.run(t, RunOptions{})
	if !slices.Equal(rep.RedisUsersOverMemory, []string{big.ID}) || len(rep.RedisUsersSwitchedOff) != 0 {
		t.Fatalf("over memory %v (crowding %v), want only %s", rep.RedisUsersOverMemory, rep.RedisUsersSwitchedOff, big.ID)
	}
	if m := memory(big.ID); m <= shareLimit || m > 2*shareLimit {
		t.Errorf("the big sandbox's memory %d bytes, want its 1.36 MB hash and stream", m)
	}
	if m := memory(small.ID); m <= 0 || m >= shareLimit {
		t.Errorf("the small sandbox's memory %d bytes", m)
	}
	wantState(big.ID, provision.RedisUserOff)
	wantState(small.ID, provision.RedisUserOn)
	if err := bigWorker.Ping(ctx).Err(); err == nil {
		t.Error("the big sandbox's worker connection still answers")
	}
	if err := smallWorker.Ping(ctx).Err(); err != nil {
		t.Errorf("the small sandbox's worker lost its connection: %v", err)
	}
	if rep := e.run(t, RunOptions{}); len(rep.RedisUsersOverMemory) != 0 {
		t.Errorf("the next run reported the user that is off already: %v", rep.RedisUsersOverMemory)
	}
	wantState(big.ID, provision.RedisUserOff)

	again, _ := e.worker(t, big.ID) // connect switches it on
	wantState(big.ID, provision.RedisUserOn)
	if err := again.Del(ctx, hash).Err(); err != nil {
		t.Fatal(err)
	}
	if rep := e.run(t, RunOptions{}); len(rep.RedisUsersOverMemory) != 0 {
		t.Fatalf("after the worker deleted its hash: over memory %v", rep.RedisUsersOverMemory)
	}
	wantState(big.ID, provision.RedisUserOn)
	if m := memory(big.ID); m >= shareLimit {
		t.Errorf("the big sandbox's memory after the delete: %d bytes", m)
	}
}
