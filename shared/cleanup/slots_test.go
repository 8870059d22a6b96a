package cleanup

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// setKeys writes each key with a small value, in one pipeline.
func setKeys(t *testing.T, rdb redis.UniversalClient, ks []string) {
	t.Helper()
	pipe := rdb.Pipeline()
	for _, k := range ks {
		pipe.Set(context.Background(), k, "x", 0)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// slotsOf counts the hash slots of ks.
func slotsOf(ks []string) int {
	slots := map[int]bool{}
	for _, k := range ks {
		slots[keys.Slot(k)] = true
	}
	return len(slots)
}

// A SCAN reply on a cluster node mixes every slot the node serves, and a cluster refuses an
// UNLINK across slots (CROSSSLOT) even on one node: unlinkMatching batches per slot, so a
// pattern whose keys spread over many slots (and one slot full enough to fill batches) is
// unlinked whole.
func TestUnlinkMatchingKeysOfManySlots(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	prefix := "slotstest:" + sandbox.NewID() + ":"
	var ks []string
	for i := range 700 {
		ks = append(ks, prefix+strconv.Itoa(i))          // one slot each, or nearly
		ks = append(ks, prefix+"{one}:"+strconv.Itoa(i)) // 700 keys of one slot: more than unlinkBatch
	}
	setKeys(t, rdb, ks)
	if n := slotsOf(ks); n < 500 {
		t.Fatalf("the keys hash to %d slots only; the test needs many", n)
	}
	kept := "slotstest:" + sandbox.NewID() + ":kept"
	setKeys(t, rdb, []string{kept})

	n, primaries, err := unlinkMatching(ctx, rdb, prefix+"*", 100)
	if err != nil {
		t.Fatalf("unlinkMatching: %v", err)
	}
	if n != int64(len(ks)) || primaries < 1 {
		t.Fatalf("unlinked %d keys of %d on %d primaries", n, len(ks), primaries)
	}
	left, _, err := scanAll(ctx, rdb, prefix+"*")
	if err != nil || len(left) != 0 {
		t.Fatalf("left %d keys (%v)", len(left), err)
	}
	if x, err := rdb.Exists(ctx, kept).Result(); err != nil || x != 1 {
		t.Fatalf("a key outside the pattern went: %d %v", x, err)
	}
}

// The run's keyspace pass unlinks the namespaces of many sandboxes, each in its own slot, in
// one pass, and counts each sandbox's keys.
func TestUnlinkNamespacesOfManySlots(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	ids := map[string]bool{}
	want := map[string]int64{}
	var all []string
	for i := range 30 {
		id := sandbox.NewID()
		ids[id] = true
		want[id] = int64(1 + i*25) // 726 keys for the last: more than unlinkBatch
		for j := range want[id] {
			all = append(all, keys.Namespace(id)+strconv.FormatInt(j, 10))
		}
	}
	other := sandbox.NewID()
	otherKeys := []string{keys.EventStream(other), keys.Namespace(other) + "k"}
	setKeys(t, rdb, append(all, otherKeys...))
	if n := slotsOf(all); n < 20 {
		t.Fatalf("the namespaces hash to %d slots only; the test needs many", n)
	}

	got, _, err := unlinkNamespaces(ctx, rdb, ids, 100)
	if err != nil {
		t.Fatalf("unlinkNamespaces: %v", err)
	}
	for id, n := range want {
		if got[id] != n {
			t.Errorf("sandbox %s: %d keys unlinked, want %d", id, got[id], n)
		}
		left, _, err := scanAll(ctx, rdb, keys.Namespace(id)+"*")
		if err != nil || len(left) != 0 {
			t.Errorf("sandbox %s: %d keys left (%v)", id, len(left), err)
		}
	}
	for _, k := range otherKeys {
		if x, err := rdb.Exists(ctx, k).Result(); err != nil || x != 1 {
			t.Errorf("another sandbox's key %s went: %d %v", k, x, err)
		}
	}
}

// scanAll lists the keys matching pattern on every primary.
func scanAll(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, int, error) {
	var found []string
	ch := make(chan []string, 16)
	done := make(chan struct{})
	go func() {
		for b := range ch {
			found = append(found, b...)
		}
		close(done)
	}()
	n, err := scanKeys(ctx, rdb, pattern, "", 1000, func(b []string, _ []int64) error {
		ch <- append([]string(nil), b...)
		return nil
	})
	close(ch)
	<-done
	if err != nil {
		return nil, n, fmt.Errorf("scan %s: %w", pattern, err)
	}
	return found, n, nil
}

// Every run unlinks the route generation of the layout before its hash tag, which has no TTL
// to go by.
func TestRunUnlinksTheLegacyRouteGeneration(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if err := e.control.Set(ctx, keys.LegacyRouteGeneration, "1768989600000000", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Run(ctx, RunOptions{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if x, err := e.control.Exists(ctx, keys.LegacyRouteGeneration).Result(); err != nil || x != 0 {
		t.Fatalf("the old generation is still there: %d %v", x, err)
	}
}

// unlinkCounter counts the UNLINK commands sent, pipelined or not (count, through a
// testenv.CommandHook).
type unlinkCounter struct{ n int }

func (h *unlinkCounter) count(cmd redis.Cmder) {
	if cmd.Name() == "unlink" {
		h.n++
	}
}

// Batches are per slot on a cluster only: a single server takes full batches whatever the
// slots, so that it pays one UNLINK per unlinkBatch keys, not one per slot.
func TestSlotBatchesGroupBySlotOnAClusterOnly(t *testing.T) {
	testenv.SkipOnRedisCluster(t, "it drives one server's client with and without slot grouping")
	rdb := testenv.Redis(t).(*redis.Client)
	ctx := context.Background()
	var ks []string
	for i := range 2 * unlinkBatch {
		ks = append(ks, "slotstest:"+strconv.Itoa(i))
	}
	slots := slotsOf(ks)
	for _, cluster := range []bool{false, true} {
		setKeys(t, rdb, ks)
		counter := &unlinkCounter{}
		node := redis.NewClient(rdb.Options())
		node.AddHook(testenv.CommandHook(counter.count))
		var unlinked int64
		b := newSlotBatches(node, cluster, func(_ []string, n int64) { unlinked += n })
		for _, k := range ks {
			if err := b.add(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.flush(ctx, -1); err != nil {
			t.Fatal(err)
		}
		_ = node.Close()
		want := 2 // 2 x unlinkBatch keys in full batches
		if cluster {
			want = slots
		}
		if unlinked != int64(len(ks)) || counter.n != want {
			t.Errorf("cluster %v: %d UNLINKs for %d keys of %d slots, %d unlinked; want %d UNLINKs", cluster, counter.n, len(ks), slots, unlinked, want)
		}
	}
}
