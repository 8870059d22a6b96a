package provision

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Catalog reads about sandboxes: what one sandbox has (Inspect, InspectStream, the health
// check's), and which sandbox objects exist at all (SandboxSchemas, SandboxRoles,
// SandboxRedisUsers: orphan reconciliation's). None reads a sandbox's relation.

// Resources is what exists of one sandbox's resources, read from the catalogs alone.
type Resources struct {
	SchemaExists bool
	// RoleExists is whether the sandbox's role exists and is this database's (checks.go).
	RoleExists bool
	// RoleUsage is whether the role may use (USAGE) its schema.
	RoleUsage bool
	// Tables are the schema's tables (relkind r or p), whoever owns them.
	Tables []string
	// NotHandedOver are the tables the control user still owns, which the role should
	// (handover.go): those of a sandbox provisioned before provisioning handed its tables
	// over, until the next cleanup run does (HandOverTables).
	NotHandedOver []string
	// Bytes is the total size of the schema's relations, indexes and TOAST included, and of its
	// role's temporary tables (SchemaSize.Relations). Its catalog rows are not read here: that
	// costs a pass over some thirty catalogs, and the cleanup records them (RedisUsage).
	Bytes        int64
	StreamExists bool
	// RedisUserExists is whether the sandbox's Redis ACL user exists (ACL mode only).
	RedisUserExists bool
}

// Inspect reports which of a sandbox's resources exist. It reads only catalogs and
// privilege and size functions, never a sandbox's relation: the role can turn any of its
// tables into a view, or give one a row-level security policy, and a query over it by the
// control user would run whatever function the role wrote with the control user's rights.
func (p *Provisioner) Inspect(ctx context.Context, id string) (Resources, error) {
	var r Resources
	if err := checkID(id); err != nil {
		return r, err
	}
	schema, role := sandbox.SchemaName(id), sandbox.RoleName(id)
	err := p.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)`,
		schema).Scan(&r.SchemaExists)
	if err != nil {
		return r, err
	}
	st, err := roleOf(ctx, p.db, role)
	if err != nil {
		return r, err
	}
	r.RoleExists = st.ours
	if r.SchemaExists && r.RoleExists {
		if err := p.db.QueryRow(ctx, `SELECT pg_catalog.has_schema_privilege($1, $2, 'USAGE')`, role, schema).Scan(&r.RoleUsage); err != nil {
			return r, err
		}
	}
	if r.SchemaExists {
		type table struct {
			name       string
			controlled bool
		}
		rows, err := p.db.Query(ctx, `
			SELECT c.relname, c.relowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
			FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`, schema)
		if err != nil {
			return r, err
		}
		tables, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (table, error) {
			var t table
			return t, row.Scan(&t.name, &t.controlled)
		})
		if err != nil {
			return r, err
		}
		for _, t := range tables {
			r.Tables = append(r.Tables, t.name)
			if t.controlled {
				r.NotHandedOver = append(r.NotHandedOver, t.name)
			}
		}
		// Sizes from the catalog: pg_total_relation_size reads no row of the relation.
		if err := sumSizes(ctx, p.db, relationSizeSQL, []string{schema}, func(_ string, n int64) { r.Bytes = n }); err != nil {
			return r, err
		}
	}
	if p.rdb != nil {
		n, err := p.rdb.Exists(ctx, keys.EventStream(id)).Result()
		if err != nil {
			return r, err
		}
		r.StreamExists = n == 1
	}
	if p.redisUsers() {
		exists, err := p.RedisUserExists(ctx, id)
		if err != nil {
			return r, err
		}
		r.RedisUserExists = exists
	}
	return r, nil
}

// Stream is what Redis says of a sandbox's event stream.
type Stream struct {
	// Key is the stream's key (keys.EventStream).
	Key    string
	Exists bool
	Length int64
	Groups int64
	// EventsGroup is whether the consumer group workers read with (keys.EventsGroup) exists;
	// Pending counts the entries it delivered and nobody acknowledged yet.
	EventsGroup bool
	Pending     int64
	// Unusable says why the router can append no entry, when the sandbox's own code made it
	// so: its key holds another type, or its last ID is the largest possible. The router drops
	// the sandbox's events meanwhile (routing's stream_unusable); its code can mend it (DEL
	// the key, then XGROUP CREATE ... MKSTREAM).
	Unusable string
}

// InspectStream reads the sandbox's event stream and its consumer groups (XINFO STREAM and
// XINFO GROUPS, one round trip). A missing stream is no error. The error of a failed read
// names its command; with an error, Exists says that XINFO STREAM answered and XINFO GROUPS
// is the read that failed.
func (p *Provisioner) InspectStream(ctx context.Context, id string) (Stream, error) {
	s := Stream{Key: keys.EventStream(id)}
	if err := p.checkStream(id, s.Key, "inspect stream"); err != nil {
		return s, err
	}
	pipe := p.rdb.Pipeline()
	info := pipe.XInfoStream(ctx, s.Key)
	groups := pipe.XInfoGroups(ctx, s.Key)
	_, _ = pipe.Exec(ctx) // each command's error is read below
	return s, s.read(info, groups)
}

// read fills s from the answers of XINFO STREAM and XINFO GROUPS on its key. A missing stream
// is no error, and neither is one the sandbox's own code made unusable (Unusable says why): the
// worker owns its stream, and what it did there must not fail a read of the control plane's.
// The error of a failed read names its command. Those answers are as large as the worker made
// the stream's entries and group names: the health check reads one sandbox, for its owner; a
// list page reads many, and reads streamCounts instead.
func (s *Stream) read(info *redis.XInfoStreamCmd, groups *redis.XInfoGroupsCmd) error {
	if err := info.Err(); err != nil {
		switch {
		case isNoSuchKey(err):
			return nil
		case redis.HasErrorPrefix(err, "WRONGTYPE"):
			s.Exists, s.Unusable = true, "the key holds another type than a stream"
			return nil
		}
		return fmt.Errorf("XINFO STREAM %s: %w", s.Key, err)
	}
	s.Exists, s.Length, s.Groups = true, info.Val().Length, info.Val().Groups
	if last, ok := keys.ParseStreamID(info.Val().LastGeneratedID); ok && last == keys.MaxStreamID {
		s.Unusable = "its last ID is the largest possible (" + last.String() + "): no entry can follow"
	}
	if err := groups.Err(); err != nil {
		return fmt.Errorf("XINFO GROUPS %s: %w", s.Key, err)
	}
	// The worker may have deleted its group: no group, nothing pending.
	for _, g := range groups.Val() {
		if g.Name == keys.EventsGroup {
			s.EventsGroup, s.Pending = true, g.Pending
		}
	}
	return nil
}

// isNoSuchKey is XINFO's answer for a stream that does not exist.
func isNoSuchKey(err error) bool { return redis.HasErrorPrefix(err, "no such key") }

// SandboxSchemas lists the ids of the schemas named exactly like a sandbox's (sb_<id> with
// a valid id), whether or not a sandbox owns them.
func (p *Provisioner) SandboxSchemas(ctx context.Context) ([]string, error) {
	rows, err := p.db.Query(ctx, `SELECT nspname FROM pg_catalog.pg_namespace
		WHERE nspname LIKE 'sb\_%' ORDER BY nspname`)
	if err != nil {
		return nil, fmt.Errorf("list sandbox schemas: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list sandbox schemas: %w", err)
	}
	var ids []string
	for _, n := range names {
		if id, ok := sandbox.IDOfName(n); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// SandboxRoles lists the ids of the roles named exactly like a sandbox's that are this
// database's (checks.go): roles are cluster-wide, and other databases' are never listed.
func (p *Provisioner) SandboxRoles(ctx context.Context) ([]string, error) {
	type role struct{ name, comment, database string }
	rows, err := p.db.Query(ctx, `SELECT rolname, coalesce(pg_catalog.shobj_description(oid, 'pg_authid'), ''),
		pg_catalog.current_database() FROM pg_catalog.pg_roles WHERE rolname LIKE 'sb\_%' ORDER BY rolname`)
	if err != nil {
		return nil, fmt.Errorf("list sandbox roles: %w", err)
	}
	roles, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (role, error) {
		var r role
		return r, row.Scan(&r.name, &r.comment, &r.database)
	})
	if err != nil {
		return nil, fmt.Errorf("list sandbox roles: %w", err)
	}
	var ids []string
	for _, r := range roles {
		if id, ok := sandbox.IDOfName(r.name); ok && ownRole(r.comment, r.database) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
