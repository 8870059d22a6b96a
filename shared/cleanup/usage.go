package cleanup

// This file: the cleanup's share of the sandboxes' usage hashes (keys.Usage): the key counts
// and memory its keyspace pass records (the pass orphan reconciliation makes anyway), and the
// hashes the teardown deletes, which are outside the namespaces its keyspace step unlinks.

import (
	"context"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
)

// recordUse writes a sandbox's key count and memory into its usage hash, only while the
// sandbox still has its stream or its hash: a sandbox the teardown deleted meanwhile
// (stream, then hash) gets no hash again.
//
// KEYS[1] the usage hash, KEYS[2] the stream; ARGV[1] the count, ARGV[2] the memory, ARGV[3]
// when (Unix ms), ARGV[4] to ARGV[6] the fields (keys.UsageFieldKeys, keys.UsageFieldMemory,
// keys.UsageFieldKeysCountedMS).
var recordUse = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 and redis.call("EXISTS", KEYS[2]) == 0 then
	return 0
end
redis.call("HSET", KEYS[1], ARGV[4], ARGV[1], ARGV[5], ARGV[2], ARGV[6], ARGV[3])
return 1`)

// recordNamespaceUse records the key count and memory of each sandbox of use in one pipeline
// (one round trip per node). Failures are logged: the figures are a hint for the owner, and
// the next run counts again.
func (s *Service) recordNamespaceUse(ctx context.Context, use map[string]namespaceUse) {
	if len(use) == 0 {
		return
	}
	at := strconv.FormatInt(s.now().UnixMilli(), 10)
	pipe := s.sandboxRedis.Pipeline()
	for id, n := range use {
		recordUse.Eval(ctx, pipe, []string{keys.Usage(id), keys.EventStream(id)},
			strconv.Itoa(n.keys), strconv.FormatInt(n.bytes, 10), at,
			keys.UsageFieldKeys, keys.UsageFieldMemory, keys.UsageFieldKeysCountedMS)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.WarnContext(ctx, "recording the sandboxes' key counts and memory failed; the next run counts again",
			"sandboxes", len(use), logkey.Error, err)
	}
}

// unlinkUsage deletes the usage hashes of ids, one UNLINK per sandbox in one pipeline (each
// in its sandbox's slot), and reports which existed. The teardown runs it after the
// namespaces' keys are gone: with the stream gone first, the router, which counts only while
// the stream exists, writes no hash again.
func unlinkUsage(ctx context.Context, rdb redis.UniversalClient, ids []string) (map[string]bool, error) {
	pipe := rdb.Pipeline()
	cmds := make(map[string]*redis.IntCmd, len(ids))
	for _, id := range ids {
		cmds[id] = pipe.Unlink(ctx, keys.Usage(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ids))
	for id, c := range cmds {
		out[id] = c.Val() == 1
	}
	return out, nil
}
