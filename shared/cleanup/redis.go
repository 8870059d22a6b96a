package cleanup

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
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
