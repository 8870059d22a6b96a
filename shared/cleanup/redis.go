package cleanup

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
)

// unlinkBatch is how many keys one UNLINK takes at most. A SCAN reply holds the matches
// among COUNT keys visited, often only a few, so keys are gathered across replies (slotBatches).
const unlinkBatch = 500

// maxKeyName is the longest key name a keyspace pass is answered whole. A sandbox's code names
// its keys, up to 512 MB each, and a pass reads the names of every sandbox: one SCAN reply
// holding a key named with 65 MiB passed the server's output limit, which closed the
// connection and failed the pass, and with it the teardown of every sandbox of the batch and
// the orphan reconciliation, run after run. Longer names are answered cut to this length,
// which keeps whose they are (keys.ParseNamespaceKey reads the start); the pass that deletes
// a namespace unlinks its long keys in the server (scanStep).
const maxKeyName = 1024

// scanStep is one SCAN step on a node, run in the server so that its answer stays small
// whatever names the sandboxes gave their keys (maxKeyName).
//
// ARGV[1] the cursor, ARGV[2] the MATCH pattern, ARGV[3] the COUNT hint, ARGV[4] maxKeyName,
// ARGV[5] the prefix of the keys whose memory the step measures ("": none), ARGV[6] and on
// the prefixes (keys.Namespace) whose long keys the step unlinks itself. Returns {next
// cursor, names answered whole, long names it unlinked, other long names, bytes}, the long
// names cut to ARGV[4] bytes, and bytes the memory of each name answered whole and then of
// each other long name (0 for a key not measured or gone meanwhile).
//
// The memory is MEMORY USAGE with SAMPLES 0: every element of a hash, list, set, sorted set or
// stream counted, not the five Redis samples by default. A sandbox's code chooses its
// elements, and a sample of five misses the few large ones among many small: a hash of 1,000
// small fields and two of 600 KB reads as 48 KB, where it holds 1.36 MB. Counting every
// element costs the server time in proportion to the elements (docs/performance-cleanup.md):
// as much as one HGETALL of the key, which the sandbox's worker may send at will.
var scanStep = redis.NewScript(scanStepSource)

const scanStepSource = `
local reply = redis.call("SCAN", ARGV[1], "MATCH", ARGV[2], "COUNT", ARGV[3])
local limit = tonumber(ARGV[4])
local measured = ARGV[5]
local whole, unlinked, cut, wholeBytes, cutBytes = {}, {}, {}, {}, {}
local function memory(k)
	if measured == "" or string.sub(k, 1, #measured) ~= measured then
		return 0
	end
	return redis.call("MEMORY", "USAGE", k, "SAMPLES", "0") or 0
end
for _, k in ipairs(reply[2]) do
	if #k <= limit then
		whole[#whole + 1] = k
		wholeBytes[#wholeBytes + 1] = memory(k)
	else
		local owned = false
		for i = 6, #ARGV do
			if string.sub(k, 1, #ARGV[i]) == ARGV[i] then
				owned = true
				break
			end
		end
		if not owned then
			cut[#cut + 1] = string.sub(k, 1, limit)
			cutBytes[#cutBytes + 1] = memory(k)
		elseif redis.call("UNLINK", k) == 1 then
			unlinked[#unlinked + 1] = string.sub(k, 1, limit)
		end
	end
end
for _, n in ipairs(cutBytes) do
	wholeBytes[#wholeBytes + 1] = n
end
return {reply[1], whole, unlinked, cut, wholeBytes}`

// scanned is the answer of one scanStep.
type scanned struct {
	// keys are the names of at most maxKeyName bytes, whole.
	keys []string
	// unlinked are the longer names that began with one of the step's prefixes, which the
	// step unlinked; cut are the other longer names. Both are cut to maxKeyName bytes.
	unlinked, cut []string
	// bytes is the memory of each key of keys and then of cut, when the pass measures them
	// (0 otherwise).
	bytes []int64
}

// scanNode calls batch with every non-empty answer of scanStep for pattern on one node. When
// owner says that a long name it was answered cut is of a namespace the caller deletes (its
// prefix, keys.Namespace), the step is run again at the same cursor with those prefixes, and
// unlinks their long keys: a step without long keys, the usual one, costs one call. SCAN
// returns every key that exists for the whole iteration at least once, and may return one
// twice; deleting keys while iterating is safe.
//
// measured is the prefix of the keys whose memory the pass reads (scanStep), "" for none.
func scanNode(ctx context.Context, node redis.Cmdable, pattern, measured string, count int64, owner func(cut string) (string, bool), batch func(scanned) error) error {
	args := []any{"0", pattern, count, maxKeyName, measured}
	for {
		next, found, err := runScanStep(ctx, node, args)
		if err != nil {
			return err
		}
		var prefixes []any
		for _, name := range found.cut {
			if p, ok := owner(name); ok && !slices.Contains(prefixes, any(p)) {
				prefixes = append(prefixes, p)
			}
		}
		if len(prefixes) > 0 {
			_, again, err := runScanStep(ctx, node, append(slices.Clone(args), prefixes...))
			if err != nil {
				return err
			}
			found.unlinked, found.cut = again.unlinked, again.cut
			found.bytes = append(found.bytes[:len(found.keys)], again.bytes[len(again.keys):]...)
		}
		if len(found.keys)+len(found.unlinked)+len(found.cut) > 0 {
			if err := batch(found); err != nil {
				return err
			}
		}
		if next == "0" {
			return nil
		}
		args[0] = next
	}
}

// ownsNothing is the owner of a pass that deletes nothing.
func ownsNothing(string) (string, bool) { return "", false }

// runScanStep runs scanStep with args and reads its answer.
func runScanStep(ctx context.Context, node redis.Cmdable, args []any) (string, scanned, error) {
	reply, err := scanStep.Run(ctx, node, nil, args...).Slice()
	if err != nil {
		return "", scanned{}, err
	}
	return parseScanStep(reply)
}

// parseScanStep reads scanStep's answer.
func parseScanStep(reply []any) (string, scanned, error) {
	var found scanned
	if len(reply) != 5 {
		return "", found, fmt.Errorf("scan step: %d parts in the answer, want 5", len(reply))
	}
	next, ok := reply[0].(string)
	lists := []*[]string{&found.keys, &found.unlinked, &found.cut}
	for i, list := range lists {
		names, isList := reply[i+1].([]any)
		ok = ok && isList
		for _, n := range names {
			name, isName := n.(string)
			ok = ok && isName
			*list = append(*list, name)
		}
	}
	sizes, isList := reply[4].([]any)
	ok = ok && isList && len(sizes) == len(found.keys)+len(found.cut)
	for _, n := range sizes {
		size, isInt := n.(int64)
		ok = ok && isInt
		found.bytes = append(found.bytes, size)
	}
	if !ok {
		return "", found, fmt.Errorf("scan step: unexpected answer %.200v", reply)
	}
	return next, found, nil
}

// scanKeys calls batch with the names of every non-empty scan step for pattern, on every
// primary (concurrently: batch must be safe for concurrent use), and with the memory of each
// key that begins with measured (0 for the others; "" measures none). Names longer than
// maxKeyName come cut to it: enough to tell whose a key is, not to address it.
func scanKeys(ctx context.Context, rdb redis.UniversalClient, pattern, measured string, count int64, batch func(keys []string, bytes []int64) error) (int, error) {
	return provision.ForEachPrimary(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		return scanNode(ctx, node, pattern, measured, count, ownsNothing, func(found scanned) error {
			return batch(append(found.keys, found.cut...), found.bytes)
		})
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
// The pattern is a prefix and a final * (keys.NamespacePattern's shape), so that the long
// keys (maxKeyName) of that prefix can be unlinked too. A namespace's pattern names one slot,
// so its batches are of unlinkBatch keys.
func unlinkMatching(ctx context.Context, rdb redis.UniversalClient, pattern string, count int64) (int64, int, error) {
	prefix, ok := strings.CutSuffix(pattern, "*")
	if !ok || strings.ContainsAny(prefix, `*?[]\`) {
		return 0, 0, fmt.Errorf("unlink %q: the pattern must be a prefix and a final *", pattern)
	}
	var unlinked atomic.Int64
	primaries, err := unlinkScanned(ctx, rdb, pattern, count,
		func(string) bool { return true },
		func(cut string) (string, bool) { return prefix, strings.HasPrefix(cut, prefix) },
		func(_ []string, n int64) { unlinked.Add(n) })
	return unlinked.Load(), primaries, err
}

// unlinkScanned unlinks, on every primary, the keys matching pattern that keep accepts, in
// batches of one slot (slotBatches), and the long keys (maxKeyName) whose cut names owner
// gives the prefix of, which the scan step unlinks itself. It tells unlinked each batch the
// server unlinked (the long names cut), and returns how many primaries it scanned.
func unlinkScanned(ctx context.Context, rdb redis.UniversalClient, pattern string, count int64,
	keep func(key string) bool, owner func(cut string) (string, bool), unlinked func(batch []string, n int64)) (int, error) {
	_, cluster := rdb.(*redis.ClusterClient)
	return provision.ForEachPrimary(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		b := newSlotBatches(node, cluster, unlinked)
		err := scanNode(ctx, node, pattern, "", count, owner, func(found scanned) error {
			if len(found.unlinked) > 0 {
				unlinked(found.unlinked, int64(len(found.unlinked)))
			}
			for _, k := range found.keys {
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
// sandboxes (ids sharing a prefix included) or whose hash tag is not an id are left alone;
// the long keys (maxKeyName) of the namespaces are unlinked by the scan step itself.
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
		func(cut string) (string, bool) {
			id, ok := keys.ParseNamespaceKey(cut)
			return keys.Namespace(id), ok && ids[id]
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
