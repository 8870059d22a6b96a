package provision

// This file: a sandbox's share of the database server's disk. PostgreSQL has no quota per
// schema or role: one worker's rows could fill the disk that every other sandbox's writes,
// and on a shared server the control plane's and its WAL, need.

import (
	"context"
	"fmt"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// OversizedSchema is a sandbox whose schema SwitchOffOversizedRoles found above the limit.
type OversizedSchema struct {
	SandboxID string `json:"sandbox_id"`
	// Bytes is the schema's size when it was read (schemaSizes: its relations and its role's
	// temporary tables).
	Bytes int64 `json:"bytes"`
	// SessionsEnded counts the sessions of its role that were ended.
	SessionsEnded int `json:"sessions_ended"`
}

// OversizedRoles is what SwitchOffOversizedRoles did.
type OversizedRoles struct {
	// SwitchedOff are the sandboxes whose role it took the password of, in id order.
	SwitchedOff []OversizedSchema
	// Unmeasured are the sandboxes whose size it could not read: one of their sessions held a
	// lock on a relation of theirs longer than the lock timeout (the next run reads again).
	Unmeasured []string
}

// SwitchOffOversizedRoles reads the size of every sandbox schema of this database and, for
// each above limit, takes its role's password away and ends its sessions (switchOffRole),
// so that its worker can write no more until the sandbox's next connect, which sets a new
// password (RotateCredentials). The rows stay: the owner, connected again, truncates or drops
// what it does not need (a DELETE leaves a table's size until VACUUM FULL), or destroys the
// sandbox. A schema still above the limit at the next run is switched off again.
//
// The sizes are read from the catalog (schemaSizes), in one query for every schema; when one
// sandbox's session holds a lock on one of its relations past sizeLockTimeout, that query
// fails, and each schema is then read alone, so that one sandbox cannot keep the others
// unmeasured. It reads no row and runs no code a sandbox can define.
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
		sizes = make(map[string]int64, len(ids))
		for _, id := range ids {
			one, err := p.SchemaSizes(ctx, []string{id})
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
	for _, id := range ids {
		if sizes[id] <= limit {
			continue
		}
		ended, err := p.switchOffRole(ctx, id, lockTimeout)
		if err != nil {
			return out, fmt.Errorf("switch off the role of %s, whose schema holds %d bytes: %w", id, sizes[id], err)
		}
		if ended >= 0 {
			out.SwitchedOff = append(out.SwitchedOff, OversizedSchema{SandboxID: id, Bytes: sizes[id], SessionsEnded: ended})
		}
	}
	return out, nil
}

// switchOffRole ends the sessions of the sandbox's role and sets its password to NULL, in one
// transaction (endSessionsAndAlter), then ends the sessions that logged in before that
// committed; it returns how many sessions it ended, -1 when the role does not exist. The role
// keeps its LOGIN, so that a teardown's lockOut stays the one place that takes it away, and
// connect's new password is all it takes to log in again. A role that is not this
// database's is refused (ourRoleOf).
func (p *Provisioner) switchOffRole(ctx context.Context, id string, lockTimeout time.Duration) (int, error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	ended, oid, err := p.endSessionsAndAlter(ctx, sandbox.RoleName(id), lockTimeout, "PASSWORD NULL")
	if err != nil || oid == 0 {
		return -1, err
	}
	late, err := endSessions(ctx, p.db, oid, ended)
	return len(ended) + len(late), err
}
