package cleanup

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
)

// unlinkBatch is how many keys one UNLINK takes at most. A SCAN reply holds the matches
// among COUNT keys visited, often only a few, so keys are gathered across replies.
const unlinkBatch = 500

// forEachPrimary runs fn on every primary of a cluster client, concurrently, or on the
// client itself otherwise, and returns how many primaries it ran on. fn must be safe for
// concurrent use.
func forEachPrimary(ctx context.Context, rdb redis.UniversalClient, fn func(ctx context.Context, node redis.Cmdable) error) (int, error) {
	if cluster, ok := rdb.(*redis.ClusterClient); ok {
		var n atomic.Int32
		err := cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			n.Add(1)
			return fn(ctx, node)
		})
		return int(n.Load()), err
	}
	return 1, fn(ctx, rdb)
}

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
	return forEachPrimary(ctx, rdb, func(ctx context.Context, node redis.Cmdable) error {
		return scanNode(ctx, node, pattern, count, batch)
	})
}

// unlinkMatching unlinks every key matching pattern, up to unlinkBatch keys per UNLINK, on
// every primary, and returns how many keys it unlinked and how many primaries it scanned.
// UNLINK frees values in the background, so even a large stream costs the server no pause.
// All keys of one pattern built by keys.NamespacePattern share a hash tag, hence a slot, so
// a batch never crosses slots.
func unlinkMatching(ctx context.Context, rdb redis.UniversalClient, pattern string, count int64) (int64, int, error) {
	var unlinked atomic.Int64
	primaries, err := forEachPrimary(ctx, rdb, func(ctx context.Context, node redis.Cmdable) error {
		var pending []string
		flush := func() error {
			if len(pending) == 0 {
				return nil
			}
			n, err := node.Unlink(ctx, pending...).Result()
			unlinked.Add(n)
			pending = pending[:0]
			return err
		}
		err := scanNode(ctx, node, pattern, count, func(found []string) error {
			pending = append(pending, found...)
			if len(pending) >= unlinkBatch {
				return flush()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return flush()
	})
	return unlinked.Load(), primaries, err
}

// maxPendingKeys bounds the keys unlinkNamespaces holds between replies on a cluster, where
// keys wait in one batch per sandbox (a batch never crosses slots).
const maxPendingKeys = 20 * unlinkBatch

// unlinkNamespaces unlinks every key of the namespaces of ids with one SCAN pass per primary
// over every namespace (keys.AllNamespacesPattern), whatever the number of ids, and returns
// the keys unlinked per id and how many primaries it scanned. A key is unlinked only when
// keys.ParseNamespaceKey gives it exactly one of ids: keys outside the layout, of other
// sandboxes (ids sharing a prefix included) or whose hash tag is not an id are left alone.
//
// On a single node the batches mix sandboxes (up to unlinkBatch keys per UNLINK, whatever
// their number); on a cluster each batch holds one sandbox's keys (one slot), flushed when
// full or, all of them in one pipeline, when maxPendingKeys wait. The count of a sandbox is
// the keys found and sent to UNLINK; a key that expired in between (or that SCAN returned
// twice, which it may while the table is rehashed) is counted without having been there.
func unlinkNamespaces(ctx context.Context, rdb redis.UniversalClient, ids map[string]bool, count int64) (map[string]int64, int, error) {
	var mu sync.Mutex
	unlinked := make(map[string]int64, len(ids))
	_, cluster := rdb.(*redis.ClusterClient)
	primaries, err := forEachPrimary(ctx, rdb, func(ctx context.Context, node redis.Cmdable) error {
		local := map[string]int64{}
		defer func() {
			mu.Lock()
			for id, n := range local {
				unlinked[id] += n
			}
			mu.Unlock()
		}()
		var (
			mixed      []string                // single node: one batch for every sandbox
			mixedIDs   []string                // the id of each key of mixed
			perSandbox = map[string][]string{} // cluster: one batch per sandbox
			pending    int
		)
		flushMixed := func() error {
			if len(mixed) == 0 {
				return nil
			}
			if err := node.Unlink(ctx, mixed...).Err(); err != nil {
				return err
			}
			for _, id := range mixedIDs {
				local[id]++
			}
			mixed, mixedIDs = mixed[:0], mixedIDs[:0]
			return nil
		}
		take := func(pipe redis.Pipeliner, id string) {
			batch := perSandbox[id]
			pipe.Unlink(ctx, batch...)
			local[id] += int64(len(batch))
			pending -= len(batch)
			delete(perSandbox, id)
		}
		// flushGroups unlinks the batch of one sandbox, or every batch when id is "".
		flushGroups := func(id string) error {
			pipe := node.Pipeline()
			if id != "" {
				take(pipe, id)
			} else {
				for id := range perSandbox {
					take(pipe, id)
				}
			}
			if pipe.Len() == 0 {
				return nil
			}
			_, err := pipe.Exec(ctx)
			return err
		}
		err := scanNode(ctx, node, keys.AllNamespacesPattern, count, func(found []string) error {
			for _, k := range found {
				id, ok := keys.ParseNamespaceKey(k)
				if !ok || !ids[id] {
					continue
				}
				if !cluster {
					mixed, mixedIDs = append(mixed, k), append(mixedIDs, id)
					if len(mixed) >= unlinkBatch {
						if err := flushMixed(); err != nil {
							return err
						}
					}
					continue
				}
				perSandbox[id] = append(perSandbox[id], k)
				pending++
				if len(perSandbox[id]) >= unlinkBatch {
					if err := flushGroups(id); err != nil {
						return err
					}
				}
			}
			if pending >= maxPendingKeys {
				return flushGroups("")
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := flushMixed(); err != nil {
			return err
		}
		return flushGroups("")
	})
	return unlinked, primaries, err
}
