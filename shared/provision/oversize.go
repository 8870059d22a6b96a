package provision

// This file: a sandbox's share of the database server's disk. PostgreSQL has no quota per
// schema or role: one worker's rows could fill the disk that every other sandbox's writes,
// and on a shared server the control plane's and its WAL, need.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// OversizedSchema is a sandbox whose schema SwitchOffOversizedRoles found above the limit.
type OversizedSchema struct {
	SandboxID string `json:"sandbox_id"`
	// Bytes is the schema's size when it was read (SchemaSize.Bytes: its relations, its role's
	// temporary tables and its catalog rows).
	Bytes int64 `json:"bytes"`
	// SessionsEnded counts the sessions of its role that were ended.
	SessionsEnded int `json:"sessions_ended"`
}

// OversizedRoles is what SwitchOffOversizedRoles did.
type OversizedRoles struct {
	// SwitchedOff are the sandboxes whose role it took the password of, in id order.
	SwitchedOff []OversizedSchema
	// LockingSessionsEnded counts the sandboxes' sessions it ended because they held (or
	// waited for) an exclusive lock that kept their schema's size from being read.
	LockingSessionsEnded int
	// Unmeasured are the sandboxes whose size it could not read even then (the next run
	// reads again).
	Unmeasured []string
	// Measured are the sizes it read, by sandbox id: the cleanup records their catalog part,
	// which a page of usage does not read (RelationSizes).
	Measured map[string]SchemaSize
}

// SwitchOffOversizedRoles reads the size of every sandbox schema of this database and, for
// each above limit, takes its role's password away and ends its sessions (switchOffRole),
// so that its worker can write no more until the sandbox's next connect, which sets a new
// password (RotateCredentials). The rows stay: the owner, connected again, truncates or drops
// what it does not need (a DELETE leaves a table's size until VACUUM FULL), or destroys the
// sandbox. A schema still above the limit at the next run is switched off again.
//
// The sizes are read from the catalog (schemaSizes), in one query for every schema. The size
// of a relation waits for its ACCESS EXCLUSIVE locks: when one sandbox's session holds one
// past sizeLockTimeout, that query fails, and each schema is then read alone, so that one
// sandbox cannot keep the others unmeasured. A schema that still cannot be read has the
// sessions of its role that hold or wait for an ACCESS EXCLUSIVE lock on a relation ended
// (endLockingSessions), and is read again: otherwise a worker that kept one of its tables
// locked in an open transaction, locking it again as soon as it reconnects, would keep that
// table's rows from every measure. It reads no row and runs no code a sandbox can define.
func (p *Provisioner) SwitchOffOversizedRoles(ctx context.Context, limit int64, lockTimeout time.Duration) (OversizedRoles, error) {
	var out OversizedRoles
	if limit < 1 {
		return out, fmt.Errorf("switch off oversized roles: limit %d is not positive", limit)
	}
	ids, err := p.SandboxSchemas(ctx)
	if err != nil || len(ids) == 0 {
		return out, err
	}
	sizes, err := p.SchemaSizes(ctx, ids)
	if pgCode(err) == pgLockNotAvailable {
		sizes = make(map[string]SchemaSize, len(ids))
		for _, id := range ids {
			one, err := p.SchemaSizes(ctx, []string{id})
			if pgCode(err) == pgLockNotAvailable {
				ended, endErr := p.endLockingSessions(ctx, id, accessExclusiveLock)
				if endErr != nil {
					return out, endErr
				}
				out.LockingSessionsEnded += ended
				one, err = p.SchemaSizes(ctx, []string{id})
			}
			switch {
			case pgCode(err) == pgLockNotAvailable:
				out.Unmeasured = append(out.Unmeasured, id)
			case err != nil:
				return out, err
			default:
				sizes[id] = one[id]
			}
		}
	} else if err != nil {
		return out, err
	}
	out.Measured = sizes
	for _, id := range ids {
		if sizes[id].Bytes() <= limit {
			continue
		}
		ended, err := p.switchOffRole(ctx, id, lockTimeout)
		if err != nil {
			return out, fmt.Errorf("switch off the role of %s, whose schema holds %d bytes: %w", id, sizes[id].Bytes(), err)
		}
		if ended >= 0 {
			out.SwitchedOff = append(out.SwitchedOff, OversizedSchema{SandboxID: id, Bytes: sizes[id].Bytes(), SessionsEnded: ended})
		}
	}
	return out, nil
}

// switchOffRole ends the sessions of the sandbox's role and sets its password to NULL, in one
// transaction (endSessionsAndAlter), then ends the sessions that logged in before that
// committed; it returns how many sessions it ended, -1 when the role does not exist or is
// another database's (a schema of this database named like it is not its). The role
// keeps its LOGIN, so that a teardown's lockOut stays the one place that takes it away, and
// connect's new password is all it takes to log in again. A role that is not this
// database's is refused (ourRoleOf).
func (p *Provisioner) switchOffRole(ctx context.Context, id string, lockTimeout time.Duration) (int, error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	ended, oid, err := p.endSessionsAndAlter(ctx, sandbox.RoleName(id), lockTimeout, "PASSWORD NULL")
	if errors.Is(err, errForeignRole) {
		return -1, nil
	}
	if err != nil || oid == 0 {
		return -1, err
	}
	late, err := endSessions(ctx, p.db, oid, ended)
	return len(ended) + len(late), err
}

// The lock modes endLockingSessions looks for.
const (
	// accessExclusiveLock is the one mode that keeps the size of a relation from being read
	// (and a waiting request queues every later reader behind it).
	accessExclusiveLock = "AccessExclusiveLock"
	// anyRelationLock is every mode: each keeps an ALTER ... OWNER from its table.
	anyRelationLock = ""
)

// endLockingSessions ends the sessions of the sandbox's role that hold or wait for a lock of
// mode on a relation (any mode for anyRelationLock), and returns how many it ended. Only
// sessions of this database's role are ended (ourRoleOf): the control plane's own DDL is never
// a sandbox's session.
func (p *Provisioner) endLockingSessions(ctx context.Context, id, mode string) (int, error) {
	role := sandbox.RoleName(id)
	st, err := ourRoleOf(ctx, p.db, role)
	if errors.Is(err, errForeignRole) {
		return 0, nil
	}
	if err != nil || !st.exists {
		return 0, err
	}
	var ended []int32
	err = p.db.QueryRow(ctx, `SELECT pg_catalog.array_agg(a.pid) FILTER (WHERE pg_catalog.pg_terminate_backend(a.pid))
		FROM pg_catalog.pg_stat_activity a
		WHERE a.usesysid = $1 AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
			WHERE l.pid = a.pid AND l.locktype = 'relation' AND ($2 = '' OR l.mode = $2))`, st.oid, mode).Scan(&ended)
	if err != nil {
		return 0, fmt.Errorf("end the sessions of %s that lock its relations: %w", role, err)
	}
	return len(ended), nil
}
