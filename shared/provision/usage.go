package provision

// This file: reading what sandboxes use, for many at once (a list page): their usage hashes
// (written by the router and the cleanup pass, keys.Usage) with their streams in one Redis
// round trip, and their schemas' sizes in one catalog query.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// RedisUsage is what Redis says a sandbox used.
type RedisUsage struct {
	// Events counts the events the router appended to its stream.
	Events int64
	// LastEventAt is when it appended the last one; nil before the first.
	LastEventAt *time.Time
	// Stream is its event stream now (Exists false once it is gone).
	Stream StreamCounts
	// Keys is how many keys its namespace held at the last cleanup pass that counted them
	// (KeysCountedAt), and Memory their memory in bytes; nil until one did.
	Keys          *int64
	Memory        *int64
	KeysCountedAt *time.Time
}

// StreamCounts is what a list page reads of a sandbox's event stream (RedisUsage); the health
// check reads more (InspectStream).
type StreamCounts struct {
	Exists bool
	// NotAStream is set when the sandbox's own code put another type under the stream's key.
	NotAStream bool
	Length     int64
	// Pending counts the entries the workers' consumer group (keys.EventsGroup) delivered and
	// nobody acknowledged yet: 0 when the worker deleted the group.
	Pending int64
}

// streamCounts reads what a list page shows of a sandbox's stream, and only that, as three
// integers whatever the sandbox's code put in it. XINFO STREAM answers the first and last
// entries, XINFO GROUPS every group's name and XPENDING every consumer's, each as large as
// the worker made it; a list page reads every sandbox's stream in one pipeline, and one answer
// past the server's output limit closes the connection, failing the page's reads of every
// sandbox. Run in the server, the script copies those names (what the worker's own XINFO
// costs) and answers none of them.
//
// KEYS[1] the stream; ARGV[1] the workers' group (keys.EventsGroup). Returns {kind, length,
// pending}, kind 0 for no key, 1 for a stream, 2 for another type.
var streamCounts = redis.NewScript(`
local kind = redis.call("TYPE", KEYS[1])["ok"]
if kind == "none" then
	return {0, 0, 0}
elseif kind ~= "stream" then
	return {2, 0, 0}
end
local length = redis.call("XLEN", KEYS[1])
local summary = redis.pcall("XPENDING", KEYS[1], ARGV[1])
if summary["err"] then
	if string.find(summary["err"], "NOGROUP", 1, true) then
		return {1, length, 0}
	end
	return summary
end
return {1, length, summary[1]}`)

// RedisUsage reads the usage hash and the event stream's counts of every sandbox of ids, with
// one pipelined round trip (HGETALL and streamCounts per sandbox; on a cluster, one per node,
// each sandbox's commands in its slot). A sandbox without a hash or a stream reads as zeros,
// and so does one whose own code put another type under its stream's key (NotAStream).
func (p *Provisioner) RedisUsage(ctx context.Context, ids []string) (map[string]RedisUsage, error) {
	out := make(map[string]RedisUsage, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if p.rdb == nil {
		return nil, errors.New("provision: read usage: no Redis client")
	}
	type reads struct {
		hash   *redis.MapStringStringCmd
		stream *redis.Cmd
	}
	pipe := p.rdb.Pipeline()
	cmds := make(map[string]reads, len(ids))
	for _, id := range ids {
		if err := checkID(id); err != nil {
			return nil, err
		}
		cmds[id] = reads{pipe.HGetAll(ctx, keys.Usage(id)),
			streamCounts.Eval(ctx, pipe, []string{keys.EventStream(id)}, keys.EventsGroup)}
	}
	_, _ = pipe.Exec(ctx) // each command's error is read below
	for id, c := range cmds {
		var u RedisUsage
		hash, err := c.hash.Result()
		if err != nil {
			return nil, fmt.Errorf("read usage: HGETALL %s: %w", keys.Usage(id), err)
		}
		u.Events = field(hash, keys.UsageFieldEvents)
		u.LastEventAt = fieldTime(hash, keys.UsageFieldLastEventMS)
		if _, ok := hash[keys.UsageFieldKeys]; ok {
			n := field(hash, keys.UsageFieldKeys)
			u.Keys, u.KeysCountedAt = &n, fieldTime(hash, keys.UsageFieldKeysCountedMS)
		}
		if _, ok := hash[keys.UsageFieldMemory]; ok {
			n := field(hash, keys.UsageFieldMemory)
			u.Memory = &n
		}
		counts, err := c.stream.Int64Slice()
		if err == nil && len(counts) != 3 {
			err = fmt.Errorf("%d integers, want 3", len(counts))
		}
		if err != nil {
			return nil, fmt.Errorf("read usage: stream counts of %s: %w", keys.EventStream(id), err)
		}
		u.Stream = StreamCounts{Exists: counts[0] != 0, NotAStream: counts[0] == 2, Length: counts[1], Pending: counts[2]}
		out[id] = u
	}
	return out, nil
}

// field reads a counter of a usage hash: 0 when absent or not a number (the hash is the
// functions' own, but a value that does not parse must not fail a read).
func field(hash map[string]string, name string) int64 {
	n, err := strconv.ParseInt(hash[name], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// fieldTime reads a Unix-milliseconds field of a usage hash; nil when absent.
func fieldTime(hash map[string]string, name string) *time.Time {
	if ms := field(hash, name); ms > 0 {
		t := time.UnixMilli(ms).UTC()
		return &t
	}
	return nil
}

// sizeLockTimeout bounds how long reading the sizes waits for a lock: the size functions take
// a lock that a sandbox's own session holding ACCESS EXCLUSIVE on its table (LOCK TABLE)
// would keep them from, and one sandbox must not hold up a list of many.
const sizeLockTimeout = 250 * time.Millisecond

// SchemaSizes returns the total size in bytes of each sandbox's schema (its tables, their
// indexes and TOAST), for the sandboxes of ids whose schema exists. Like Inspect it reads the
// catalogs and pg_total_relation_size only, never a row of a sandbox's relation, in one query
// with a lock timeout (sizeLockTimeout): when a sandbox's session holds a lock that long, the
// read fails rather than waits.
func (p *Provisioner) SchemaSizes(ctx context.Context, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	schemas := make([]string, len(ids))
	for i, id := range ids {
		if err := checkID(id); err != nil {
			return nil, err
		}
		schemas[i] = sandbox.SchemaName(id)
	}
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		if err := setLockTimeout(ctx, tx, sizeLockTimeout); err != nil {
			return err
		}
		sizes, err := schemaSizes(ctx, tx, schemas)
		for schema, n := range sizes {
			if id, ok := sandbox.IDOfName(schema); ok {
				out[id] = n
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read schema sizes: %w", err)
	}
	return out, nil
}

// schemaSizes returns the size of each existing schema of schemas (schemaSizeSQL): its
// relations (tables, materialized views and sequences, with their indexes and TOAST), the
// temporary tables its role (named like the schema) holds in its sessions, and its objects'
// rows in the catalogs. A temporary table lives outside the schema, in the session's
// pg_temp_N, but on the same disk: without it, one session's CREATE TEMP TABLE of 20 GB
// showed nowhere; nor did a function body of 32 MB, held in pg_proc. Inspect, SchemaSizes,
// the template check and the disk share (SwitchOffOversizedRoles) share it.
func schemaSizes(ctx context.Context, q querier, schemas []string) (map[string]int64, error) {
	sql, err := schemaSizeSQL(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, sql, schemas)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(schemas))
	var (
		schema string
		bytes  int64
	)
	_, err = pgx.ForEachRow(rows, []any{&schema, &bytes}, func() error {
		out[schema] = bytes
		return nil
	})
	return out, err
}

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}
