package controlplane

// This file: status transitions, destroy requests and extensions.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Transition moves a sandbox to `to` when its current status allows it
// (docs/architecture.md, "Status machine"), with one conditional update and an audit entry in
// the same transaction. It returns sandbox.ErrInvalidTransition when the current status does
// not allow the move and sandbox.ErrNotFound when there is no such sandbox.
func (m *Manager) Transition(ctx context.Context, actor, id string, to sandbox.Status, details map[string]any) (_ *sandbox.Sandbox, err error) {
	defer withOp(&err, "move sandbox %s to %s", id, to)
	return m.transition(ctx, actor, id, nil, to, ActionTransition, details)
}

// TransitionFrom is Transition restricted to some of the legal source statuses (for
// example: cleanup reclaims only the creating sandboxes it selected as stuck).
func (m *Manager) TransitionFrom(ctx context.Context, actor, id string, from []sandbox.Status, to sandbox.Status, details map[string]any) (_ *sandbox.Sandbox, err error) {
	defer withOp(&err, "move sandbox %s to %s", id, to)
	if len(from) == 0 {
		return nil, fmt.Errorf("controlplane: TransitionFrom needs at least one source status")
	}
	return m.transition(ctx, actor, id, from, to, ActionTransition, details)
}

// transition moves id to `to` from one of `from` (all legal sources when nil); every
// source must be legal for `to`.
func (m *Manager) transition(ctx context.Context, actor, id string, from []sandbox.Status, to sandbox.Status, action string, details map[string]any) (*sandbox.Sandbox, error) {
	return m.fencedTransition(ctx, nil, actor, id, from, to, action, details)
}

// fencedTransition is transition written only while claim is current (ErrClaimLost
// otherwise); a nil claim fences nothing.
func (m *Manager) fencedTransition(ctx context.Context, claim *TeardownClaim, actor, id string, from []sandbox.Status, to sandbox.Status,
	action string, details map[string]any) (*sandbox.Sandbox, error) {
	if !to.Valid() {
		return nil, sandbox.InvalidField("status", "unknown status %q", to)
	}
	if from == nil {
		from = sandbox.Sources(to)
	}
	for _, f := range from {
		if !sandbox.CanTransition(f, to) {
			return nil, fmt.Errorf("controlplane: %s -> %s is not a legal transition", f, to)
		}
	}
	var out *sandbox.Sandbox
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		if err := checkClaim(ctx, tx, claim); err != nil {
			return err
		}
		var lastError any
		if reason, ok := details["error"].(string); ok && to == sandbox.StatusFailed {
			lastError = reason
		}
		row := tx.QueryRow(ctx, `
			WITH prev AS (SELECT id, status FROM sandbox_control.sandboxes WHERE id = $1 FOR UPDATE)
			UPDATE sandbox_control.sandboxes s SET
				status = $2, updated_at = $3,
				destroyed_at = CASE WHEN $2 = 'destroyed' THEN $3 ELSE s.destroyed_at END,
				last_error = coalesce($5, s.last_error)
			FROM prev WHERE s.id = prev.id AND prev.status = ANY($4)
			RETURNING prev.status, `+columnsOf("s."),
			id, string(to), m.now().UTC(), statusStrings(from), lastError)
		var prev string
		sb, err := scanSandbox(row, &prev)
		if isNoRows(err) {
			return m.transitionError(ctx, tx, id, to)
		}
		if err != nil {
			return err
		}
		d := map[string]any{"from": prev, "to": string(to)}
		for k, v := range details {
			d[k] = v
		}
		out = sb
		if err := audit(ctx, tx, actor, action, id, d); err != nil {
			return err
		}
		if to == sandbox.StatusDestroyed {
			return endShares(ctx, tx, actor, id) // a destroyed sandbox's shares end with it
		}
		return nil
	})
	if err == nil {
		m.publishRouteChanges(ctx)
	}
	return out, err
}

func (m *Manager) transitionError(ctx context.Context, q queryer, id string, to sandbox.Status) error {
	var current string
	err := q.QueryRow(ctx, `SELECT status FROM sandbox_control.sandboxes WHERE id = $1`, id).Scan(&current)
	if err := sandboxFound(err, id); err != nil {
		return err
	}
	return sandbox.Errorf(sandbox.CodeInvalidTransition, "sandbox %s cannot move from %s to %s", id, current, to)
}

// RequestDestroy moves a running or failed sandbox to destroying, so that the teardown
// (cleanup) takes it. It is idempotent: for a sandbox already destroying or destroyed it
// returns that sandbox with changed false. A sandbox still creating cannot be destroyed
// until creation ends (cleanup reclaims creations stuck past their limit).
func (m *Manager) RequestDestroy(ctx context.Context, actor, id string) (sb *sandbox.Sandbox, changed bool, err error) {
	defer withOp(&err, "request the destroy of sandbox %s", id)
	// A user may destroy what runs or failed; creating -> destroying is cleanup's, for
	// creations stuck past their limit.
	sb, err = m.transition(ctx, actor, id, []sandbox.Status{sandbox.StatusRunning, sandbox.StatusFailed},
		sandbox.StatusDestroying, ActionDestroyRequested, nil)
	if errors.Is(err, sandbox.ErrInvalidTransition) {
		current, gerr := m.Get(ctx, id)
		if gerr != nil {
			return nil, false, gerr
		}
		switch current.Status {
		case sandbox.StatusDestroying, sandbox.StatusDestroyed:
			return current, false, nil
		case sandbox.StatusCreating:
			return nil, false, sandbox.Errorf(sandbox.CodeInvalidTransition, "sandbox %q is still being created; destroy it once it is running or failed", current.Name)
		}
		return nil, false, err
	}
	if err != nil {
		return nil, false, err
	}
	if err := m.loadGuilds(ctx, []*sandbox.Sandbox{sb}); err != nil {
		return nil, false, err
	}
	return sb, true, nil
}

// Extension is what an extension did: the expiry before and after, and by how much it really
// moved, which is less than asked when the cap applied.
type Extension struct {
	Sandbox *sandbox.Sandbox
	// From and To are the expiry before and after.
	From, To time.Time
	// By is To - From: the real extension.
	By time.Duration
	// Requested is the extension asked for.
	Requested time.Duration
	// Capped reports that To is the cap, MaxExpiresAt (created_at + the maximum lifetime),
	// reached before Requested.
	Capped       bool
	MaxExpiresAt time.Time
}

// Extend moves a running, unexpired sandbox's expiry by `by`, capped at its maximum
// lifetime. capped reports whether the cap applied. ExtendExpiry says more.
func (m *Manager) Extend(ctx context.Context, actor, id string, by time.Duration) (sb *sandbox.Sandbox, capped bool, err error) {
	defer withOp(&err, "extend sandbox %s", id)
	ext, err := m.ExtendExpiry(ctx, actor, id, by)
	return ext.Sandbox, ext.Capped, err
}

// WhileRunning runs fn while sandbox id is running and has not expired, and keeps it so until
// fn returns: it holds the sandbox's row (FOR SHARE) meanwhile, which the teardown's first
// step (mark destroying) must lock to change. So what fn makes for the sandbox (connect's
// fresh credentials, a Redis user set again on every node) is made before the teardown begins
// and torn down with the rest, never after the teardown deleted it. A sandbox in another
// state is invalid_transition, the message saying what needs it.
func (m *Manager) WhileRunning(ctx context.Context, id, what string, fn func() error) (err error) {
	defer withOp(&err, "%s sandbox %s", what, id)
	return pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		sb, err := scanSandbox(tx.QueryRow(ctx, `SELECT `+sandboxColumns+` FROM sandbox_control.sandboxes WHERE id = $1 FOR SHARE`, id))
		if err := sandboxFound(err, id); err != nil {
			return err
		}
		if err := sb.CheckRunning(m.now(), what); err != nil {
			return err
		}
		return fn()
	})
}

// ExtendExpiry moves a running, unexpired sandbox's expiry by `by`, capped at created_at plus
// the maximum lifetime (sandbox.Limits.ExtendedExpiry), and returns what it did. A sandbox
// already at the cap is invalid_transition.
func (m *Manager) ExtendExpiry(ctx context.Context, actor, id string, by time.Duration) (_ Extension, err error) {
	defer withOp(&err, "extend sandbox %s", id)
	var ext Extension
	err = pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		cur, err := scanSandbox(tx.QueryRow(ctx, `SELECT `+sandboxColumns+` FROM sandbox_control.sandboxes WHERE id = $1 FOR UPDATE`, id))
		if err := sandboxFound(err, id); err != nil {
			return err
		}
		now := m.now().UTC()
		if cur.Status != sandbox.StatusRunning || !now.Before(cur.ExpiresAt) {
			return sandbox.Errorf(sandbox.CodeInvalidTransition, "sandbox %q is %s; only a running sandbox that has not expired can be extended",
				cur.Name, cur.DisplayStatus(now))
		}
		next, capped, err := m.limits.ExtendedExpiry(cur.CreatedAt, cur.ExpiresAt, by)
		if err != nil {
			return err
		}
		sb, err := scanSandbox(tx.QueryRow(ctx, `
			UPDATE sandbox_control.sandboxes SET expires_at = $2, updated_at = $3, expiry_warned_at = NULL
			WHERE id = $1 AND status = 'running'
			RETURNING `+sandboxColumns, id, next, now))
		if err != nil {
			return err
		}
		ext = Extension{Sandbox: sb, From: cur.ExpiresAt, To: sb.ExpiresAt, By: sb.ExpiresAt.Sub(cur.ExpiresAt),
			Requested: by, Capped: capped, MaxExpiresAt: cur.CreatedAt.Add(m.limits.MaxLifetime)}
		return audit(ctx, tx, actor, ActionExtend, id, map[string]any{
			"by_seconds": int64(by / time.Second), "extended_by_seconds": int64(ext.By / time.Second),
			"from": cur.ExpiresAt, "to": next, "capped": capped,
		})
	})
	if err != nil {
		return Extension{}, err
	}
	m.publishRouteChanges(ctx) // the routes carry the expiry
	return ext, m.loadGuilds(ctx, []*sandbox.Sandbox{ext.Sandbox})
}
