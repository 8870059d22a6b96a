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
	// Catalog is what its objects' rows took in the database's catalogs when the cleanup's
	// disk share last counted them (CatalogCountedAt, SchemaSize.Catalog); nil until one did.
	Catalog          *int64
	CatalogCountedAt *time.Time
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
		if _, ok := hash[keys.UsageFieldCatalog]; ok {
			n := field(hash, keys.UsageFieldCatalog)
			u.Catalog, u.CatalogCountedAt = &n, fieldTime(hash, keys.UsageFieldCatalogCountedMS)
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

// SchemaSize is what a sandbox's schema takes on the server's disk.
type SchemaSize struct {
	// Relations: its tables, materialized views and sequences, with their indexes and TOAST,
	// and the temporary tables its role holds in its sessions.
	Relations int64
	// Catalog: the rows that describe its objects in the system catalogs (catalogSizeSQL).
	Catalog int64
}

// Bytes is the whole of it, what the disk share bounds (sandbox.SchemaSizeLimit).
func (s SchemaSize) Bytes() int64 { return s.Relations + s.Catalog }

// RelationSizes returns the size of the relations of each sandbox's schema (SchemaSize's
// Relations), for the sandboxes of ids whose schema exists: what a page of usage shows live,
// in one cheap query. The catalog part, which costs a pass over some thirty catalogs whatever
// the page's size, is the cleanup's to count (SwitchOffOversizedRoles) and to record.
func (p *Provisioner) RelationSizes(ctx context.Context, ids []string) (map[string]int64, error) {
	sizes, err := p.schemaSizesOf(ctx, ids, false)
	out := make(map[string]int64, len(sizes))
	for id, n := range sizes {
		out[id] = n.Relations
	}
	return out, err
}

// SchemaSizes returns the whole size of each sandbox's schema, its relations and its catalog
// rows, for the sandboxes of ids whose schema exists.
func (p *Provisioner) SchemaSizes(ctx context.Context, ids []string) (map[string]SchemaSize, error) {
	return p.schemaSizesOf(ctx, ids, true)
}

// schemaSizesOf reads the sizes of the schemas of ids, with their catalog part or not. Like
// Inspect it reads the catalogs and pg_total_relation_size only, never a row of a sandbox's
// relation, with a lock timeout (sizeLockTimeout): when a sandbox's session holds a lock that
// long, the read fails rather than waits.
func (p *Provisioner) schemaSizesOf(ctx context.Context, ids []string, catalog bool) (map[string]SchemaSize, error) {
	out := make(map[string]SchemaSize, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	schemas, err := checkedNames(ids, sandbox.SchemaName)
	if err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		if err := setLockTimeout(ctx, tx, sizeLockTimeout); err != nil {
			return err
		}
		sizes, err := schemaSizes(ctx, tx, schemas, catalog)
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

// relationSizeSQL reads, for each existing schema of $1 (rows nspname, bytes), the size of
// its relations (tables, materialized views and sequences, with their indexes and TOAST) and
// of the temporary tables its role (named like the schema) holds in its sessions, from the
// catalog: pg_total_relation_size reads no row of a relation. A temporary table lives outside
// the schema, in the session's pg_temp_N, but on the same disk: without it, one session's
// CREATE TEMP TABLE of 20 GB showed nowhere. Sequences take a file each (8 kB): 2,000 of them
// took 21 MB.
//
// Each part is one pass over pg_class joined to the schemas, not a subquery per schema:
// pg_class has no index on relnamespace alone, and a subquery per schema scanned it once for
// each: 450 ms for 500 schemas, against 60-90 ms in one pass (BenchmarkSwitchOffOversizedRoles).
const relationSizeSQL = `
	WITH s AS (SELECT oid, nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY($1)),
	own AS (SELECT c.relnamespace AS nsp, pg_catalog.sum(pg_catalog.pg_total_relation_size(c.oid)) AS bytes
		FROM pg_catalog.pg_class c JOIN s ON c.relnamespace = s.oid
		WHERE c.relkind IN ('r', 'p', 'm', 'S') GROUP BY c.relnamespace),
	temp AS (SELECT r.rolname, pg_catalog.sum(pg_catalog.pg_total_relation_size(c.oid)) AS bytes
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid = c.relowner JOIN s ON s.nspname = r.rolname
		WHERE c.relpersistence = 't' AND c.relkind IN ('r', 'p', 'm', 'S') GROUP BY r.rolname)
	SELECT s.nspname::text, (coalesce(own.bytes, 0) + coalesce(temp.bytes, 0))::bigint
	FROM s LEFT JOIN own ON own.nsp = s.oid LEFT JOIN temp ON temp.rolname = s.nspname`

// schemaSizes returns the size of each existing schema of schemas, in the caller's
// transaction: its relations (relationSizeSQL) and, with catalog, its objects' rows in the
// catalogs (catalogSizeSQL; a function body of 32 MB, held in pg_proc, showed nowhere
// before). The template check and the disk share (SwitchOffOversizedRoles) read both; Inspect
// (the health check) and a page of usage the relations only, and take the catalog part the
// cleanup recorded.
//
// The catalog part runs without JIT compilation: the query has many parts, and once its
// estimate passes jit_above_cost, which a larger catalog reaches, compiling its 788 functions
// took 0.3-0.4 s where the read took 0.05 s (50 schemas, the threshold lowered to show it).
func schemaSizes(ctx context.Context, tx pgx.Tx, schemas []string, catalog bool) (map[string]SchemaSize, error) {
	out := make(map[string]SchemaSize, len(schemas))
	err := sumSizes(ctx, tx, relationSizeSQL, schemas, func(schema string, n int64) {
		out[schema] = SchemaSize{Relations: n}
	})
	if err != nil || !catalog {
		return out, err
	}
	if _, err := tx.Exec(ctx, "SET LOCAL jit = off"); err != nil {
		return nil, err
	}
	sql, err := catalogSizeSQL(ctx, tx)
	if err != nil {
		return nil, err
	}
	err = sumSizes(ctx, tx, sql, schemas, func(schema string, n int64) {
		size := out[schema]
		size.Catalog = n
		out[schema] = size
	})
	return out, err
}

// sumSizes runs a size query of schemas (rows nspname, bytes) on q, calling add for each row.
func sumSizes(ctx context.Context, q querier, sql string, schemas []string, add func(schema string, n int64)) error {
	rows, err := q.Query(ctx, sql, schemas)
	if err != nil {
		return err
	}
	var (
		schema string
		bytes  int64
	)
	_, err = pgx.ForEachRow(rows, []any{&schema, &bytes}, func() error {
		add(schema, bytes)
		return nil
	})
	return err
}

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}
