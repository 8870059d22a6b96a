package cleanup

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
)

// unlinkBatch is how many keys one UNLINK takes at most. A SCAN reply holds the matches
// among COUNT keys visited, often only a few, so keys are gathered across replies (slotBatches).
const unlinkBatch = 500

// scanNode calls batch with every non-empty SCAN reply for pattern on one node. SCAN returns
// every key that exists for the whole iteration at least once, and may return one twice;
// deleting keys while iterating is safe.
func scanNode(ctx context.Context, node redis.Cmdable, pattern string, count int64, batch func(keys []string) error) error {
	var cursor uint64
	for {
		found, next, err := node.Scan(ctx, cursor, pattern, count).Result()
		if err != nil {
			return err
		}
		if len(found) > 0 {
			if err := batch(found); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// scanKeys calls batch with every non-empty SCAN reply for pattern, on every primary
// (concurrently: batch must be safe for concurrent use).
func scanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string, count int64, batch func(keys []string) error) (int, error) {
	return provision.ForEachPrimary(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		return scanNode(ctx, node, pattern, count, batch)
	})
}

// slotBatches gathers keys for UNLINK on one node. On a cluster it keeps one batch per hash
// slot (keys.Slot): a cluster refuses a multi-key UNLINK across slots (CROSSSLOT), even on one
// node, and a SCAN reply mixes every slot its node serves. A standalone server has no slots:
// there all keys go in one batch, so that each UNLINK carries unlinkBatch keys. A batch is sent
// when it holds unlinkBatch keys, and every batch at once, in one pipeline (one round trip),
// when maxPendingKeys wait or at the end: the round trips are those of one UNLINK per
// unlinkBatch keys, whatever the slots. Grouping costs no round trip, where one UNLINK per key
// would cost one command per key. The cluster pass of the tests runs the per-slot batches.
type slotBatches struct {
	node    redis.Cmdable
	slotOf  func(key string) int
	batches map[int][]string
	pending int
	// unlinked is told each batch the server unlinked, with the number it said it removed.
	unlinked func(batch []string, n int64)
}

// maxPendingKeys bounds the keys a slotBatches holds between SCAN replies (a few MB at most).
// It is large enough that, on a cluster, a sandbox's keys (one slot) usually fill a whole
// batch before a flush of every batch sends them in smaller ones.
const maxPendingKeys = 100 * unlinkBatch

func newSlotBatches(node redis.Cmdable, cluster bool, unlinked func(batch []string, n int64)) *slotBatches {
	slotOf := func(string) int { return 0 }
	if cluster {
		slotOf = keys.Slot
	}
	return &slotBatches{node: node, slotOf: slotOf, batches: map[int][]string{}, unlinked: unlinked}
}

func (b *slotBatches) add(ctx context.Context, key string) error {
	slot := b.slotOf(key)
	b.batches[slot] = append(b.batches[slot], key)
	b.pending++
	if len(b.batches[slot]) >= unlinkBatch {
		return b.flush(ctx, slot)
	}
	if b.pending >= maxPendingKeys {
		return b.flush(ctx, -1)
	}
	return nil
}

// flush unlinks the batch of one slot, or every batch when slot is -1, in one pipeline.
func (b *slotBatches) flush(ctx context.Context, slot int) error {
	type sent struct {
		batch []string
		cmd   *redis.IntCmd
	}
	var out []sent
	pipe := b.node.Pipeline()
	for s, batch := range b.batches {
		if slot >= 0 && s != slot {
			continue
		}
		out = append(out, sent{batch, pipe.Unlink(ctx, batch...)})
		b.pending -= len(batch)
		delete(b.batches, s)
	}
	if len(out) == 0 {
		return nil
	}
	_, err := pipe.Exec(ctx)
	for _, o := range out {
		if o.cmd.Err() == nil {
			b.unlinked(o.batch, o.cmd.Val())
		}
	}
	return err
}

// unlinkMatching unlinks every key matching pattern on every primary, in batches of one slot
// (slotBatches), and returns how many keys it unlinked and how many primaries it scanned.
// UNLINK frees values in the background, so even a large stream costs the server no pause.
// A pattern built by keys.NamespacePattern names one slot, so its batches are of unlinkBatch
// keys; any other pattern works too.
func unlinkMatching(ctx context.Context, rdb redis.UniversalClient, pattern string, count int64) (int64, int, error) {
	var unlinked atomic.Int64
	primaries, err := unlinkScanned(ctx, rdb, pattern, count, func(string) bool { return true },
		func(_ []string, n int64) { unlinked.Add(n) })
	return unlinked.Load(), primaries, err
}

// unlinkScanned unlinks, on every primary, the keys matching pattern that keep accepts, in
// batches of one slot (slotBatches), telling unlinked each batch the server unlinked. It
// returns how many primaries it scanned.
func unlinkScanned(ctx context.Context, rdb redis.UniversalClient, pattern string, count int64,
	keep func(key string) bool, unlinked func(batch []string, n int64)) (int, error) {
	_, cluster := rdb.(*redis.ClusterClient)
	return provision.ForEachPrimary(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		b := newSlotBatches(node, cluster, unlinked)
		err := scanNode(ctx, node, pattern, count, func(found []string) error {
			for _, k := range found {
				if !keep(k) {
					continue
				}
				if err := b.add(ctx, k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return b.flush(ctx, -1)
	})
}

// unlinkNamespaces unlinks every key of the namespaces of ids with one SCAN pass per primary
// over every namespace (keys.AllNamespacesPattern), whatever the number of ids, and returns
// the keys unlinked per id and how many primaries it scanned. A key is unlinked only when
// keys.ParseNamespaceKey gives it exactly one of ids: keys outside the layout, of other
// sandboxes (ids sharing a prefix included) or whose hash tag is not an id are left alone.
//
// The batches are per slot (slotBatches): a sandbox's keys share one, and sandboxes whose
// ids hash alike share theirs. The count of a sandbox is the keys found and sent to UNLINK;
// a key that expired in between (or that SCAN returned twice, which it may while the table
// is rehashed) is counted without having been there.
func unlinkNamespaces(ctx context.Context, rdb redis.UniversalClient, ids map[string]bool, count int64) (map[string]int64, int, error) {
	var mu sync.Mutex
	unlinked := make(map[string]int64, len(ids))
	primaries, err := unlinkScanned(ctx, rdb, keys.AllNamespacesPattern, count,
		func(k string) bool {
			id, ok := keys.ParseNamespaceKey(k)
			return ok && ids[id]
		},
		func(batch []string, _ int64) {
			mu.Lock()
			defer mu.Unlock()
			for _, k := range batch {
				id, _ := keys.ParseNamespaceKey(k)
				unlinked[id]++
			}
		})
	return unlinked, primaries, err
}
