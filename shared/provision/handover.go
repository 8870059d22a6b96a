package provision

// This file: who owns a sandbox's provisioned tables. The role does, never the control user.
//
// PostgreSQL runs a foreign key's checks and actions as the owner of the table the key's query
// reads or writes, not as the session's user. On a table of a sandbox's schema that the control
// user owned, where the role held TRIGGER and REFERENCES, that ran the role's own code as the
// control user (docs/security.md, "PostgreSQL"):
//
//   - a row trigger the role put on the child table of an ON DELETE CASCADE key (the default
//     template has one) fired inside the cascaded DELETE, which ran as the child's owner, when
//     the role deleted a row of the parent;
//   - a cast function of a type of the role's own, by which its foreign key referenced a
//     control-owned table, ran inside the key's check, which read that table as its owner,
//     when the role inserted a row; REFERENCES alone sufficed.
//
// Either made a role of the control user's (CREATEROLE), read and granted what the control
// user may, in every sandbox's schema as well. Provisioning therefore hands every table it
// creates to the role in the creating transaction (provisionDatabase), before any session of
// the role exists, and HandOverTables does the same for the sandboxes provisioned before.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// controlOwnedRelation is true of a relation of pg_class c that the control user (the current
// user) owns, of the kinds a schema's owner could be given.
const controlOwnedRelation = `c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')
	AND c.relowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)`

// controlOwnedRelationsSQL lists the ALTER ... OWNER TO statements that give the relations of
// schema $1 owned by the current (control) user to role $2, tables first. A sequence owned by
// a column follows its table, and an index its table, so neither is listed.
const controlOwnedRelationsSQL = `
	SELECT pg_catalog.format('ALTER %s %I.%I OWNER TO %I',
		CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
			WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
		n.nspname, c.relname, $2::text)
	FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = $1 AND ` + controlOwnedRelation + `
		AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
			WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
				AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i'))
	ORDER BY c.relkind = 'S', c.relname`

// handOverRelations gives the relations of the sandbox's schema that the control user owns to
// its role, in tx, and returns how many ALTERs it ran. ALTER ... OWNER runs no code: not the
// triggers, nor the keys, a role may have put on the tables.
func handOverRelations(ctx context.Context, tx pgx.Tx, id string) (int, error) {
	rows, err := tx.Query(ctx, controlOwnedRelationsSQL, sandbox.SchemaName(id), sandbox.RoleName(id))
	if err != nil {
		return 0, err
	}
	stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return 0, fmt.Errorf("%s: %w", s, err)
		}
	}
	return len(stmts), nil
}

// HandOverTables gives the tables of the sandboxes ids that the control user still owns, as
// provisioning did before it handed them over, to the sandboxes' roles, and returns how many
// sandboxes it changed. The scheduled cleanup runs it over this database's sandbox roles, so
// that a sandbox made before the change is closed from the next run on.
//
// One query finds the schemas that have such relations; each is then changed in a
// transaction of its own, after the role checks (ourRoleOf: another database's role named like
// a sandbox's is never touched). The ALTERs need every table's ACCESS EXCLUSIVE lock: when a
// session of the role holds a lock on one past lockTimeout, the sessions of the role
// that hold or wait for a lock on a relation are ended and the sandbox is tried once more,
// so that a worker cannot keep its tables out of the hand-over by keeping them locked.
func (p *Provisioner) HandOverTables(ctx context.Context, ids []string, lockTimeout time.Duration) (int, error) {
	schemas, err := checkedNames(ids, sandbox.SchemaName)
	if err != nil || len(schemas) == 0 {
		return 0, err
	}
	rows, err := p.db.Query(ctx, `SELECT DISTINCT n.nspname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = ANY($1) AND `+controlOwnedRelation+`
		ORDER BY 1`, schemas)
	if err != nil {
		return 0, fmt.Errorf("find the sandbox schemas whose tables the control user owns: %w", err)
	}
	owned, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("find the sandbox schemas whose tables the control user owns: %w", err)
	}
	var errs []error
	changed := 0
	for _, schema := range owned {
		id, ok := sandbox.IDOfName(schema)
		if !ok {
			continue
		}
		n, err := p.handOverTables(ctx, id, lockTimeout)
		if errors.Is(err, errForeignRole) {
			continue
		}
		if pgCode(err) == pgLockNotAvailable {
			if _, endErr := p.endLockingSessions(ctx, id, anyRelationLock); endErr != nil {
				errs = append(errs, endErr)
				continue
			}
			n, err = p.handOverTables(ctx, id, lockTimeout)
		}
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("hand the tables of %s to its role: %w", schema, err))
		case n > 0:
			changed++
		}
	}
	return changed, errors.Join(errs...)
}

// handOverTables is one sandbox's hand-over, in a transaction of its own.
func (p *Provisioner) handOverTables(ctx context.Context, id string, lockTimeout time.Duration) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		st, err := ourRoleOf(ctx, tx, sandbox.RoleName(id))
		if err != nil || !st.exists {
			return err // no role to give them to: the orphan reconciliation drops the schema
		}
		if err := setLockTimeout(ctx, tx, lockTimeout); err != nil {
			return err
		}
		n, err = handOverRelations(ctx, tx, id)
		return err
	})
	return n, err
}
