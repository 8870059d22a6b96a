package controlplane

// This file: shared sandboxes (table sandbox_shares): who besides its owner may act on a
// sandbox, and with which role. The API decides what each role may do; this records the
// grants, audits them, and ends them with their sandbox.

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Audit actions of shares.
const (
	// ActionShare records a share created, or its role changed (details: principal, role,
	// previous_role when it changed).
	ActionShare = "sandbox.share"
	// ActionUnshare records a share removed by the owner or an admin.
	ActionUnshare = "sandbox.unshare"
	// ActionShareEnded records a share that ended because its sandbox was destroyed, written
	// in the transaction of the move to destroyed.
	ActionShareEnded = "sandbox.share_ended"
	// ActionRevoke records the sandbox's credentials replaced by ones nobody was handed, and
	// every session ended, because a collaborator who had connected lost its developer share
	// (details: principal, rotated, database_sessions, redis_connections).
	ActionRevoke = "sandbox.revoke"
)

// HasConnected reports whether principal has ever been handed credentials of sandbox id
// (a connect's audit entry names it). It does not ask whether a later rotation voided them:
// the audit entries of concurrent connects are not in the order of their rotations, so only
// "never" is a safe answer.
func (m *Manager) HasConnected(ctx context.Context, id, principal string) (_ bool, err error) {
	defer withOp(&err, "read whether %q connected to sandbox %s", principal, id)
	var connected bool
	err = m.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sandbox_control.audit_log
		WHERE sandbox_id = $1 AND action = $3 AND actor = $2)`, id, principal, ActionConnect).Scan(&connected)
	return connected, err
}

// Share is one principal's grant on one sandbox.
type Share struct {
	SandboxID string
	// Principal is the canonical owner key of the callers the share lets in.
	Principal string
	Role      sandbox.ShareRole
	CreatedAt time.Time
	CreatedBy string
	UpdatedAt time.Time
}

const shareColumns = `sandbox_id, principal, role, created_at, created_by, updated_at`

func scanShare(row pgx.CollectableRow) (Share, error) {
	var s Share
	var role string
	err := row.Scan(&s.SandboxID, &s.Principal, &role, &s.CreatedAt, &s.CreatedBy, &s.UpdatedAt)
	s.Role = sandbox.ShareRole(role)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s, err
}

// ShareChange is what ShareSandbox did: the share as it is now, and the role it had before
// ("" when it is new). Changed is false when the share already had that role.
type ShareChange struct {
	Share    Share
	Previous sandbox.ShareRole
	Changed  bool
}

// ShareSandbox lets principal act on sandbox id with role, or changes the role of its share:
// idempotent, and audited when something changed. The caller has checked that actor may (the
// owner or an admin) and that principal is a canonical principal; the owner cannot be given a
// share (invalid_input, field principal), nor a sandbox destroying or destroyed
// (invalid_transition: its shares end with it).
func (m *Manager) ShareSandbox(ctx context.Context, actor, id, principal string, role sandbox.ShareRole) (_ ShareChange, err error) {
	defer withOp(&err, "share sandbox %s with %q", id, principal)
	if !role.Valid() {
		return ShareChange{}, sandbox.InvalidField("role", "role %q is neither %q nor %q", role, sandbox.ShareViewer, sandbox.ShareDeveloper)
	}
	if err := sandbox.ValidateOwner(principal); err != nil {
		return ShareChange{}, sandbox.InvalidField("principal", "principal must be 1-512 characters of valid UTF-8, without control characters")
	}
	var out ShareChange
	err = pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		// FOR SHARE: the sandbox cannot reach destroyed (which ends its shares) until this
		// share commits, so no share outlives its sandbox.
		var name, owner, status string
		err := tx.QueryRow(ctx, `SELECT name, owner, status FROM sandbox_control.sandboxes WHERE id = $1 FOR SHARE`, id).
			Scan(&name, &owner, &status)
		if err := sandboxFound(err, id); err != nil {
			return err
		}
		switch {
		case principal == owner:
			return sandbox.InvalidField("principal", "%s owns sandbox %q: an owner needs no share", principal, name)
		case status == string(sandbox.StatusDestroying) || status == string(sandbox.StatusDestroyed):
			return sandbox.Errorf(sandbox.CodeInvalidTransition, "sandbox %q is %s: its shares end with it, and it cannot be shared", name, status)
		}
		var previous string
		err = tx.QueryRow(ctx, `SELECT role FROM sandbox_control.sandbox_shares WHERE sandbox_id = $1 AND principal = $2 FOR UPDATE`,
			id, principal).Scan(&previous)
		if err != nil && !isNoRows(err) {
			return err
		}
		out.Previous, out.Changed = sandbox.ShareRole(previous), previous != string(role)
		rows, err := tx.Query(ctx, `
			INSERT INTO sandbox_control.sandbox_shares AS s (sandbox_id, principal, role, created_by)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (sandbox_id, principal) DO UPDATE SET role = excluded.role,
				updated_at = CASE WHEN s.role = excluded.role THEN s.updated_at ELSE now() END
			RETURNING `+shareColumns, id, principal, string(role), actor)
		if err != nil {
			return err
		}
		if out.Share, err = pgx.CollectExactlyOneRow(rows, scanShare); err != nil {
			return err
		}
		if !out.Changed {
			return nil // nothing changed, nothing to record
		}
		details := map[string]any{"principal": principal, "role": role}
		if previous != "" {
			details["previous_role"] = previous
		}
		return audit(ctx, tx, actor, ActionShare, id, details)
	})
	return out, err
}

// UnshareSandbox removes principal's share of sandbox id, audited; not_found when there is
// none. It takes effect at the principal's next request: every request reads the shares.
func (m *Manager) UnshareSandbox(ctx context.Context, actor, id, principal string) (_ Share, err error) {
	defer withOp(&err, "unshare sandbox %s with %q", id, principal)
	var out Share
	err = pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM sandbox_control.sandbox_shares WHERE sandbox_id = $1 AND principal = $2
			RETURNING `+shareColumns, id, principal)
		if err != nil {
			return err
		}
		out, err = pgx.CollectExactlyOneRow(rows, scanShare)
		if isNoRows(err) {
			return sandbox.Errorf(sandbox.CodeNotFound, "the sandbox is not shared with %s", principal)
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, ActionUnshare, id, map[string]any{"principal": principal, "role": out.Role})
	})
	return out, err
}

// Shares returns the shares of sandbox id, oldest first.
func (m *Manager) Shares(ctx context.Context, id string) (_ []Share, err error) {
	defer withOp(&err, "list the shares of sandbox %s", id)
	return queryList(ctx, m.db, scanShare, `SELECT `+shareColumns+` FROM sandbox_control.sandbox_shares
		WHERE sandbox_id = $1 ORDER BY created_at, principal`, id)
}

// ShareRole returns principal's role on sandbox id, "" when it has no share. Read at every
// request, so an unshare takes effect at the next one.
func (m *Manager) ShareRole(ctx context.Context, id, principal string) (_ sandbox.ShareRole, err error) {
	defer withOp(&err, "read the share of sandbox %s with %q", id, principal)
	roles, err := m.shareRoles(ctx, principal, []string{id})
	return roles[id], err
}

// ShareRoles returns principal's roles on the sandboxes ids that are shared with it, by id.
func (m *Manager) ShareRoles(ctx context.Context, principal string, ids []string) (_ map[string]sandbox.ShareRole, err error) {
	defer withOp(&err, "read the shares of %q", principal)
	return m.shareRoles(ctx, principal, ids)
}

func (m *Manager) shareRoles(ctx context.Context, principal string, ids []string) (map[string]sandbox.ShareRole, error) {
	out := map[string]sandbox.ShareRole{}
	if principal == "" || len(ids) == 0 {
		return out, nil
	}
	rows, err := m.db.Query(ctx, `SELECT sandbox_id, role FROM sandbox_control.sandbox_shares
		WHERE principal = $1 AND sandbox_id = ANY($2)`, principal, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, role string
		if err := rows.Scan(&id, &role); err != nil {
			return nil, err
		}
		out[id] = sandbox.ShareRole(role)
	}
	return out, rows.Err()
}

// endShares ends the shares of sandbox id as it moves to destroyed, in the transaction of
// that move, with an audit entry per share: a destroyed sandbox's shares end with it.
func endShares(ctx context.Context, tx pgx.Tx, actor, id string) error {
	rows, err := tx.Query(ctx, `DELETE FROM sandbox_control.sandbox_shares WHERE sandbox_id = $1 RETURNING `+shareColumns, id)
	if err != nil {
		return err
	}
	ended, err := pgx.CollectRows(rows, scanShare)
	if err != nil {
		return err
	}
	for _, s := range ended {
		if err := audit(ctx, tx, actor, ActionShareEnded, id, map[string]any{"principal": s.Principal, "role": s.Role}); err != nil {
			return err
		}
	}
	return nil
}
