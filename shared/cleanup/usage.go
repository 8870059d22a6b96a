package cleanup

// This file: the cleanup's share of the sandboxes' usage hashes (keys.Usage): the key counts
// and memory its keyspace pass records (the pass orphan reconciliation makes anyway), the
// catalog sizes its disk share reads, and the hashes the teardown deletes, which are outside
// the namespaces its keyspace step unlinks.

import (
	"context"
	"maps"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/provision"
)

// recordUse writes fields of a sandbox's usage hash, only while the sandbox still has its
// stream or its hash: a sandbox the teardown deleted meanwhile (stream, then hash) gets no
// hash again.
//
// KEYS[1] the usage hash, KEYS[2] the stream; ARGV the fields and their values, in pairs.
var recordUse = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 and redis.call("EXISTS", KEYS[2]) == 0 then
	return 0
end
redis.call("HSET", KEYS[1], unpack(ARGV))
return 1`)

// recordUses writes fields of the usage hashes of many sandboxes (recordUse), each sandbox's
// pairs from fields, in one pipeline (one round trip per node). Failures are logged: the
// figures are a hint for the owner, and the next run counts again.
func (s *Service) recordUses(ctx context.Context, ids []string, fields func(id string) []any, what string) {
	if len(ids) == 0 {
		return
	}
	pipe := s.sandboxRedis.Pipeline()
	for _, id := range ids {
		recordUse.Eval(ctx, pipe, []string{keys.Usage(id), keys.EventStream(id)}, fields(id)...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.WarnContext(ctx, "recording the sandboxes' "+what+" failed; the next run counts again",
			"sandboxes", len(ids), logkey.Error, err)
	}
}

// recordNamespaceUse records the key count and memory of each sandbox of use.
func (s *Service) recordNamespaceUse(ctx context.Context, use map[string]namespaceUse) {
	at := s.now().UnixMilli()
	s.recordUses(ctx, slices.Sorted(maps.Keys(use)), func(id string) []any {
		return []any{keys.UsageFieldKeys, use[id].keys, keys.UsageFieldMemory, use[id].bytes, keys.UsageFieldKeysCountedMS, at}
	}, "key counts and memory")
}

// recordCatalogUse records what each measured sandbox's objects take in the catalogs, which a
// page of usage does not read live (provision.RelationSizes).
func (s *Service) recordCatalogUse(ctx context.Context, measured map[string]provision.SchemaSize) {
	at := s.now().UnixMilli()
	s.recordUses(ctx, slices.Sorted(maps.Keys(measured)), func(id string) []any {
		return []any{keys.UsageFieldCatalog, measured[id].Catalog, keys.UsageFieldCatalogCountedMS, at}
	}, "catalog sizes")
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
