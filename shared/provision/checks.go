package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The one set of checks every statement of this package passes before it touches a sandbox
// object, whoever calls it (provisioning, connect, the health check, teardown, orphan
// reconciliation); docs/security.md, "PostgreSQL":
//
//   - a name is a sandbox's only when it is exactly sandbox.SchemaName(id),
//     sandbox.RoleName(id) or keys.ACLUser(id, db) of an id sandbox.ValidID accepts: callers
//     pass ids (checkID), and names read from a catalog are kept only when
//     sandbox.IDOfName gives them back exactly;
//   - a role is a sandbox's only when it also carries this database's comment
//     (RoleCommentFor(current_database())), read in the transaction that acts on it
//     (roleOf): roles are cluster-wide, and another database's sandboxes are never touched;
//   - no statement reads, writes or plans over a relation a sandbox can define: inspection
//     reads the catalogs only, through pg_catalog-qualified names, and dropping runs DDL,
//     which runs no code a sandbox can define.

// roleCommentPrefix marks roles created by this control plane; the comment names the
// database, because roles are cluster-wide while sandboxes belong to one database.
const roleCommentPrefix = "discord-sandboxes role of database "

// RoleCommentFor is the comment set on the roles this database's control plane creates.
func RoleCommentFor(database string) string { return roleCommentPrefix + database }

// checkID refuses an id that is not a sandbox's: only valid ids ever become identifiers.
func checkID(id string) error {
	if !sandbox.ValidID(id) {
		return fmt.Errorf("provision: invalid sandbox id %q", id)
	}
	return nil
}

// checkedNames is checkID of every id, and then name (sandbox.SchemaName, sandbox.RoleName) of
// each, in order.
func checkedNames(ids []string, name func(id string) string) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		if err := checkID(id); err != nil {
			return nil, err
		}
		out[i] = name(id)
	}
	return out, nil
}

// checkStream is checkID before a command on sandbox id's event stream key, which also needs
// a Redis client; what names the operation in the error.
func (p *Provisioner) checkStream(id, key, what string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if p.rdb == nil {
		return fmt.Errorf("provision: %s %s: no Redis client", what, key)
	}
	return nil
}

// errForeignRole refuses a role named like a sandbox's that another database's control plane
// (or someone else) made.
var errForeignRole = errors.New("it is not a sandbox role of this database")

// roleState is what the catalog says of a role named like a sandbox's.
type roleState struct {
	exists bool
	// ours is whether it carries this database's comment (RoleCommentFor).
	ours     bool
	database string
	// oid is the role's OID (0 when it does not exist): a session keeps it after the role
	// is dropped, when the name no longer finds the session (drop.go).
	oid uint32
}

// ownRole is the check of a role's comment, the one place that compares it.
func ownRole(comment, database string) bool { return comment == RoleCommentFor(database) }

// roleOf reads whether role exists and whether it is this database's.
func roleOf(ctx context.Context, q queryRower, role string) (roleState, error) {
	var st roleState
	var comment *string
	var oid *uint32
	// One row whether or not the role exists: its columns are NULL when it does not.
	err := q.QueryRow(ctx, `SELECT pg_catalog.current_database(), r.oid, pg_catalog.shobj_description(r.oid, 'pg_authid')
		FROM (SELECT) AS one LEFT JOIN pg_catalog.pg_roles r ON r.rolname = $1`, role).Scan(&st.database, &oid, &comment)
	if err != nil {
		return st, fmt.Errorf("read role %s: %w", role, err)
	}
	if oid != nil {
		st.exists, st.oid = true, *oid
	}
	st.ours = st.exists && comment != nil && ownRole(*comment, st.database)
	return st, nil
}

// ourRoleOf reads role as roleOf does, for a statement that acts on it: a role that exists
// but is not this database's sandbox role is refused.
func ourRoleOf(ctx context.Context, q queryRower, role string) (roleState, error) {
	st, err := roleOf(ctx, q, role)
	if err == nil && st.exists && !st.ours {
		err = fmt.Errorf("refusing role %q: %w (database %s)", role, errForeignRole, st.database)
	}
	return st, err
}

// setLockTimeout bounds how long the statements of tx wait for a lock held by another
// session: past it they fail (SQLSTATE 55P03) instead of waiting.
func setLockTimeout(ctx context.Context, tx pgx.Tx, d time.Duration) error {
	_, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", d.Milliseconds()))
	return err
}

// queryRower is a pool, a connection or a transaction.
type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
