package provision

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// DropResult says what a drop found.
type DropResult struct {
	SessionsTerminated int
	SchemaExisted      bool
	RoleExisted        bool
	// DroppedInBatches counts the objects of a schema larger than dropBatch (and the role's
	// large objects) dropped in batches before the drop's own transaction (shrink).
	DroppedInBatches int
}

// Drop terminates the role's sessions, drops the schema (cascading to its tables) and the
// role: the teardown's step. It is idempotent. lockTimeout bounds how long it waits for locks
// held by others, so a busy schema fails this attempt instead of hanging it. A role named
// like the sandbox's that is not this database's is refused, and then nothing is dropped.
func (p *Provisioner) Drop(ctx context.Context, id string, lockTimeout time.Duration) (DropResult, error) {
	return p.drop(ctx, id, lockTimeout, true, true)
}

// DropSchema drops the sandbox's schema alone, cascading to its tables (orphan
// reconciliation: a schema whose sandbox is gone). Idempotent; lockTimeout as for Drop.
func (p *Provisioner) DropSchema(ctx context.Context, id string, lockTimeout time.Duration) (DropResult, error) {
	return p.drop(ctx, id, lockTimeout, true, false)
}

// DropRole terminates the sessions of the sandbox's role and drops it alone (orphan
// reconciliation), only while it is this database's. Idempotent; lockTimeout as for Drop.
func (p *Provisioner) DropRole(ctx context.Context, id string, lockTimeout time.Duration) (DropResult, error) {
	return p.drop(ctx, id, lockTimeout, false, true)
}

// drop is every drop of a sandbox's database objects, in one transaction: the checks
// (checks.go), then the sessions of the role ended, then the schema, then the role. Before
// anything else the role's sessions are ended and it loses its right to log in (lockOut), so
// that no session of it comes back while the drop runs. A schema of more objects than one
// transaction should lock is first taken down in batches (shrink).
func (p *Provisioner) drop(ctx context.Context, id string, lockTimeout time.Duration, schema, role bool) (DropResult, error) {
	var res DropResult
	if err := checkID(id); err != nil {
		return res, err
	}
	schemaName, roleName := sandbox.SchemaName(id), sandbox.RoleName(id)
	var early []int32 // the sessions ended before the drop's transaction
	if role {
		var err error
		early, err = p.lockOut(ctx, roleName, lockTimeout)
		res.SessionsTerminated = len(early)
		if err != nil {
			return res, fmt.Errorf("drop %s of %s: %w", dropWhat(schema, role), id, err)
		}
	}
	dropped, err := p.shrink(ctx, id, lockTimeout, schema, role)
	res.DroppedInBatches = dropped
	if err != nil {
		return res, fmt.Errorf("drop %s of %s: %w", dropWhat(schema, role), id, err)
	}
	var roleOID uint32
	var ended []int32 // the sessions ended before the drop
	err = pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		if err := setLockTimeout(ctx, tx, lockTimeout); err != nil {
			return err
		}
		if role {
			st, err := ourRoleOf(ctx, tx, roleName)
			if err != nil {
				return err
			}
			res.RoleExisted, roleOID = st.exists, st.oid
		}
		if schema {
			err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)`,
				schemaName).Scan(&res.SchemaExisted)
			if err != nil {
				return err
			}
		}
		if res.RoleExisted {
			// A session that lockOut could not see yet (below). DROP SCHEMA would wait for
			// its locks.
			var err error
			if ended, err = endSessions(ctx, tx, roleOID, early); err != nil {
				return fmt.Errorf("terminate sessions of %s: %w", roleName, err)
			}
			res.SessionsTerminated += len(ended)
			ended = append(ended, early...) // ended by lockOut: exiting, or gone
		}
		if res.SchemaExisted {
			if _, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schemaName}.Sanitize()+" CASCADE"); err != nil {
				return err
			}
		}
		if res.RoleExisted {
			return dropRole(ctx, tx, roleName)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("drop %s of %s: %w", dropWhat(schema, role), id, err)
	}
	if res.RoleExisted {
		// A session whose login passed its check before lockOut committed, and which showed
		// in pg_stat_activity only after the sessions were ended, lives on with the dropped
		// role: no name finds it any more, only the OID it keeps. No session can log in as
		// the role now, so this sweep ends the last ones.
		late, err := endSessions(ctx, p.db, roleOID, ended)
		if err != nil {
			return res, fmt.Errorf("drop %s of %s: end the sessions that logged in during the drop: %w", dropWhat(schema, role), id, err)
		}
		res.SessionsTerminated += len(late)
	}
	return res, nil
}

// lockOut ends the sessions of the sandbox role and takes its LOGIN away, in one transaction
// that commits before the drop begins, when the role is this database's (ourRoleOf; a role
// that does not exist is left alone). It returns the sessions it ended. Without it the
// sandbox's worker logs in again as soon as its sessions are ended and locks its tables before
// the drop reaches them: a worker reconnecting on 8 connections failed 7 drop attempts in a
// row on their lock timeout (a schema of 3,000 tables, given up 200 at a time), and a worker
// that made its tables again between two cleanup runs would keep a destroyed sandbox's
// database until its password expired. The sessions are ended first because one of them may
// hold the role's own catalog row (a role may change its own password, in a transaction it
// keeps open), which ALTER ROLE waits for.
func (p *Provisioner) lockOut(ctx context.Context, roleName string, lockTimeout time.Duration) ([]int32, error) {
	ended, _, err := p.endSessionsAndAlter(ctx, roleName, lockTimeout, "NOLOGIN")
	return ended, err
}

// endSessionsAndAlter ends the sessions of the role roleName and alters it with clause (a
// constant of this package: NOLOGIN, PASSWORD NULL), in one transaction with lockTimeout,
// when the role is this database's (ourRoleOf; a role that does not exist is left alone:
// oid 0). It returns the sessions it ended and the role's OID. The sessions are ended first:
// one of them may hold the role's own catalog row, which ALTER ROLE waits for. ALTER ROLE
// changes the role alone and runs no code of the sandbox.
func (p *Provisioner) endSessionsAndAlter(ctx context.Context, roleName string, lockTimeout time.Duration, clause string) ([]int32, uint32, error) {
	var (
		ended []int32
		oid   uint32
	)
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		if err := setLockTimeout(ctx, tx, lockTimeout); err != nil {
			return err
		}
		st, err := ourRoleOf(ctx, tx, roleName)
		if err != nil || !st.exists {
			return err
		}
		if ended, err = endSessions(ctx, tx, st.oid, nil); err != nil {
			return fmt.Errorf("terminate sessions of %s: %w", roleName, err)
		}
		if _, err := tx.Exec(ctx, "ALTER ROLE "+pgx.Identifier{roleName}.Sanitize()+" "+clause); err != nil {
			return fmt.Errorf("ALTER ROLE %s %s: %w", roleName, clause, err)
		}
		oid = st.oid
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return ended, oid, nil
}

// endSessions ends the sessions of the role roleOID but those of except (ended already: they
// may still be exiting), and returns the ones it ended. By OID, so that it also finds the
// sessions of a role already dropped.
func endSessions(ctx context.Context, q queryRower, roleOID uint32, except []int32) ([]int32, error) {
	if except == nil {
		except = []int32{} // none: not NULL, which ALL would make match nothing
	}
	var ended []int32
	err := q.QueryRow(ctx, `SELECT pg_catalog.array_agg(pid) FILTER (WHERE pg_catalog.pg_terminate_backend(pid))
		FROM pg_catalog.pg_stat_activity WHERE usesysid = $1 AND pid <> ALL ($2::int4[])`, roleOID, except).Scan(&ended)
	return ended, err
}

// grantMembership makes the control user a member of the sandbox role name, which a
// non-superuser needs to drop what the role owns (roles provisioned before membership was
// granted at creation lack it).
func grantMembership(ctx context.Context, tx pgx.Tx, name string) error {
	_, err := tx.Exec(ctx, "GRANT "+pgx.Identifier{name}.Sanitize()+" TO CURRENT_USER")
	return err
}

func dropWhat(schema, role bool) string {
	switch {
	case schema && role:
		return "schema and role"
	case schema:
		return "schema"
	}
	return "role"
}

// dropRole drops a sandbox role inside tx: DROP OWNED revokes the role's grants in this
// database (CONNECT, defaults) and drops anything it still owns (large objects, whatever it
// created outside its schema); the role's per-database settings go with DROP ROLE. The
// control user first makes sure it is a member of the role (grantMembership). None of these
// statements runs code a sandbox can define. The caller checked the role (ourRoleOf).
func dropRole(ctx context.Context, tx pgx.Tx, name string) error {
	if err := grantMembership(ctx, tx, name); err != nil {
		return err
	}
	r := pgx.Identifier{name}.Sanitize()
	if err := LockDatabaseACL(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "DROP OWNED BY "+r); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "DROP ROLE IF EXISTS "+r)
	return err
}
