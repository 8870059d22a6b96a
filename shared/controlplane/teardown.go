package controlplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// This file holds the control-plane queries of the teardown and expiry warnings
// (docs/architecture.md, "Cleanup"); those of orphan reconciliation are in orphans.go. The
// policy and the teardown record's shape belong to the cleanup package; the record is stored
// here as opaque JSON.

// Audit actions of the cleanup service; they complete the list in store.go.
const (
	ActionTeardownStep   = "sandbox.teardown_step"
	ActionTeardownFailed = "sandbox.teardown_failed"
	ActionExpiryWarned   = "sandbox.expiry_warned"
	ActionOrphanRemoved  = "orphan.removed"
)

// TeardownReason says why a sandbox is due for teardown.
type TeardownReason string

// The reasons, in the order a run takes them.
const (
	ReasonDestroyRequested   TeardownReason = "destroy_requested"
	ReasonProvisioningFailed TeardownReason = "provisioning_failed"
	ReasonExpired            TeardownReason = "expired"
	ReasonStuckCreating      TeardownReason = "stuck_creating"
)

// teardownDue is the one definition of "due for teardown" at $1 (now), with creations started
// before $2 counting as stuck; reasonOf names the arm that matched.
//
// A creation is due when its creator is gone: its creation lease (CreationLockClass) is free,
// probed with a transaction lock that the statement's end releases. created_at <= $2 is the
// backstop (CLEANUP_STUCK_CREATING_AFTER) for a lease that cannot be probed.
var teardownDue = fmt.Sprintf(`(status IN ('destroying', 'failed')
		OR (status = 'running' AND expires_at <= $1)
		OR (status = 'creating' AND (created_at <= $2 OR pg_catalog.pg_try_advisory_xact_lock(%d, pg_catalog.hashtext(id)))))`,
	CreationLockClass)

var reasonOf = fmt.Sprintf(`CASE status WHEN 'destroying' THEN '%s' WHEN 'failed' THEN '%s' WHEN 'running' THEN '%s' ELSE '%s' END`,
	ReasonDestroyRequested, ReasonProvisioningFailed, ReasonExpired, ReasonStuckCreating)

// TeardownCandidate is a sandbox due for teardown.
type TeardownCandidate struct {
	ID     string
	Name   string
	Status sandbox.Status
	Reason TeardownReason
}

// TeardownCandidates lists at most limit sandboxes due for teardown at now: destroy requests
// first, then failed provisionings, then expired sandboxes by expiry, then creations started
// before stuckBefore. It takes no lock: callers claim each one before working on it.
func (m *Manager) TeardownCandidates(ctx context.Context, now, stuckBefore time.Time, limit int) (_ []TeardownCandidate, err error) {
	defer withOp(&err, "list teardown candidates")
	rows, err := m.db.Query(ctx, `
		SELECT id, name, status, `+reasonOf+` FROM sandbox_control.sandboxes
		WHERE `+teardownDue+`
		ORDER BY CASE status WHEN 'destroying' THEN 0 WHEN 'failed' THEN 1 WHEN 'running' THEN 2 ELSE 3 END, expires_at, id
		LIMIT $3`, now, stuckBefore, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (TeardownCandidate, error) {
		var c TeardownCandidate
		var status, reason string
		err := row.Scan(&c.ID, &c.Name, &status, &reason)
		c.Status, c.Reason = sandbox.Status(status), TeardownReason(reason)
		return c, err
	})
}

// TeardownDue re-reads one sandbox and says why it is due for teardown at now, with an empty
// reason when it is not (any more). It returns sandbox.ErrNotFound for an unknown id.
func (m *Manager) TeardownDue(ctx context.Context, id string, now, stuckBefore time.Time) (_ *sandbox.Sandbox, _ TeardownReason, err error) {
	defer withOp(&err, "read the teardown state of sandbox %s", id)
	sb, err := m.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	var reason string
	err = m.db.QueryRow(ctx, `SELECT `+reasonOf+` FROM sandbox_control.sandboxes WHERE id = $3 AND `+teardownDue,
		now, stuckBefore, id).Scan(&reason)
	if isNoRows(err) {
		return sb, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	return sb, TeardownReason(reason), nil
}

// SaveTeardown stores a sandbox's teardown record and, when action is not empty, an audit
// entry in the same transaction. updated_at is left alone: it tracks status and expiry.
func (m *Manager) SaveTeardown(ctx context.Context, actor, id string, record []byte, action string, details map[string]any) (err error) {
	defer withOp(&err, "save the teardown record of sandbox %s", id)
	return m.saveTeardown(ctx, nil, actor, id, record, action, details)
}

// SaveTeardownClaimed is SaveTeardown fenced by claim: it writes nothing and returns
// ErrClaimLost unless claim is still the sandbox's current claim.
func (m *Manager) SaveTeardownClaimed(ctx context.Context, claim *TeardownClaim, actor string, record []byte, action string, details map[string]any) (err error) {
	defer withOp(&err, "save the teardown record of sandbox %s", claim.SandboxID)
	return m.saveTeardown(ctx, claim, actor, claim.SandboxID, record, action, details)
}

func (m *Manager) saveTeardown(ctx context.Context, claim *TeardownClaim, actor, id string, record []byte, action string, details map[string]any) error {
	return pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		if err := checkClaim(ctx, tx, claim); err != nil {
			return err
		}
		if err := saveRecord(ctx, tx, id, record); err != nil {
			return err
		}
		if action == "" {
			return nil
		}
		return audit(ctx, tx, actor, action, id, details)
	})
}

func saveRecord(ctx context.Context, q queryer, id string, record []byte) error {
	tag, err := q.Exec(ctx, `UPDATE sandbox_control.sandboxes SET teardown = $2 WHERE id = $1`, id, record)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return sandbox.Errorf(sandbox.CodeNotFound, "sandbox %s not found", id)
	}
	return nil
}

// RecordTeardownFailure stores the record of a teardown that stopped at a failed step, counts
// the attempt, keeps reason as the sandbox's last error and audits it, in one transaction. It
// returns the number of failed attempts so far.
func (m *Manager) RecordTeardownFailure(ctx context.Context, actor, id string, record []byte, reason string, details map[string]any) (_ int, err error) {
	defer withOp(&err, "record a teardown failure of sandbox %s", id)
	return m.recordTeardownFailure(ctx, nil, actor, id, record, reason, details)
}

// RecordTeardownFailureClaimed is RecordTeardownFailure fenced by claim (see
// SaveTeardownClaimed).
func (m *Manager) RecordTeardownFailureClaimed(ctx context.Context, claim *TeardownClaim, actor string, record []byte, reason string, details map[string]any) (_ int, err error) {
	defer withOp(&err, "record a teardown failure of sandbox %s", claim.SandboxID)
	return m.recordTeardownFailure(ctx, claim, actor, claim.SandboxID, record, reason, details)
}

func (m *Manager) recordTeardownFailure(ctx context.Context, claim *TeardownClaim, actor, id string, record []byte, reason string, details map[string]any) (int, error) {
	var attempts int
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		if err := checkClaim(ctx, tx, claim); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `UPDATE sandbox_control.sandboxes
			SET teardown = $2, cleanup_attempts = cleanup_attempts + 1, last_error = $3
			WHERE id = $1 RETURNING cleanup_attempts`, id, record, reason).Scan(&attempts)
		if err := sandboxFound(err, id); err != nil {
			return err
		}
		d := map[string]any{"error": reason, "attempt": attempts}
		for k, v := range details {
			d[k] = v
		}
		return audit(ctx, tx, actor, ActionTeardownFailed, id, d)
	})
	return attempts, err
}

// RemoveMappingsForTeardown deletes every guild mapping of a sandbox that is destroying,
// parks the guilds (they stay test guilds: never routed to production until released or
// mapped again; reason is the teardown's) and, in the same transaction, stores the teardown
// record that record returns for the removed guilds, with an ActionTeardownStep audit entry
// carrying details. A crash therefore never loses the guilds whose route cache entries the
// teardown must still invalidate.
func (m *Manager) RemoveMappingsForTeardown(ctx context.Context, actor, id, reason string,
	record func(removed []string) (rec []byte, details map[string]any, err error)) ([]string, error) {
	return m.removeMappingsForTeardown(ctx, nil, actor, id, reason, record)
}

// RemoveMappingsForTeardownClaimed is RemoveMappingsForTeardown fenced by claim (see
// SaveTeardownClaimed).
func (m *Manager) RemoveMappingsForTeardownClaimed(ctx context.Context, claim *TeardownClaim, actor, reason string,
	record func(removed []string) (rec []byte, details map[string]any, err error)) ([]string, error) {
	return m.removeMappingsForTeardown(ctx, claim, actor, claim.SandboxID, reason, record)
}

func (m *Manager) removeMappingsForTeardown(ctx context.Context, claim *TeardownClaim, actor, id, reason string,
	record func(removed []string) (rec []byte, details map[string]any, err error)) ([]string, error) {
	var removed []string
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		if err := checkClaim(ctx, tx, claim); err != nil {
			return err
		}
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM sandbox_control.sandboxes WHERE id = $1 FOR UPDATE`, id).Scan(&status)
		if err := sandboxFound(err, id); err != nil {
			return err
		}
		if sandbox.Status(status) != sandbox.StatusDestroying {
			return sandbox.Errorf(sandbox.CodeInvalidTransition, "sandbox %s is %s; mappings are removed only while it is destroying", id, status)
		}
		rows, err := tx.Query(ctx, `DELETE FROM sandbox_control.guild_mappings WHERE sandbox_id = $1 RETURNING guild_id`, id)
		if err != nil {
			return err
		}
		if removed, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		if _, err := park(ctx, tx, actor, id, removed, reason); err != nil {
			return err
		}
		rec, details, err := record(removed)
		if err != nil {
			return err
		}
		if err := saveRecord(ctx, tx, id, rec); err != nil {
			return err
		}
		return audit(ctx, tx, actor, ActionTeardownStep, id, details)
	})
	if err != nil {
		return nil, err
	}
	m.publishRouteChanges(ctx)
	return removed, nil
}

// ErrClaimLost is returned by the *Claimed methods when the claim is no longer the sandbox's
// current one: its lease expired and another run took the sandbox over (or released it).
var ErrClaimLost = errors.New("controlplane: teardown claim lost")

// TeardownClaim is a claim on one sandbox's teardown (table teardown_claims): its token is
// the fence of every write of the teardown. A nil *TeardownClaim fences nothing.
type TeardownClaim struct {
	SandboxID string
	Token     int64
}

// ClaimTeardown claims the teardown of a sandbox for holder, for lease: it returns nil (and
// no error) when another holder's lease has not expired. Taking over an expired claim draws
// a new token, which fences every later write of the previous holder.
func (m *Manager) ClaimTeardown(ctx context.Context, id, holder string, lease time.Duration) (_ *TeardownClaim, err error) {
	defer withOp(&err, "claim the teardown of sandbox %s", id)
	var token int64
	err = m.db.QueryRow(ctx, `
		INSERT INTO sandbox_control.teardown_claims AS c (sandbox_id, token, holder, claimed_at, expires_at)
		SELECT $1, nextval('sandbox_control.teardown_claim_tokens'), $2, clock_timestamp(),
			clock_timestamp() + make_interval(secs => $3)
		ON CONFLICT (sandbox_id) DO UPDATE SET token = EXCLUDED.token, holder = EXCLUDED.holder,
			claimed_at = EXCLUDED.claimed_at, expires_at = EXCLUDED.expires_at
		WHERE c.expires_at <= clock_timestamp()
		RETURNING token`, id, holder, lease.Seconds()).Scan(&token)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &TeardownClaim{SandboxID: id, Token: token}, nil
}

// RenewTeardownClaims extends the leases of claims still current by lease from now and
// returns those no longer current (lost).
func (m *Manager) RenewTeardownClaims(ctx context.Context, claims []*TeardownClaim, lease time.Duration) (_ []*TeardownClaim, err error) {
	defer withOp(&err, "renew %d teardown claims", len(claims))
	if len(claims) == 0 {
		return nil, nil
	}
	ids := make([]string, len(claims))
	tokens := make([]int64, len(claims))
	for i, c := range claims {
		ids[i], tokens[i] = c.SandboxID, c.Token
	}
	rows, err := m.db.Query(ctx, `
		UPDATE sandbox_control.teardown_claims c SET expires_at = clock_timestamp() + make_interval(secs => $3)
		FROM unnest($1::text[], $2::bigint[]) AS h (sandbox_id, token)
		WHERE c.sandbox_id = h.sandbox_id AND c.token = h.token
		RETURNING c.token`, ids, tokens, lease.Seconds())
	if err != nil {
		return nil, err
	}
	renewed, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	current := make(map[int64]bool, len(renewed))
	for _, t := range renewed {
		current[t] = true
	}
	var lost []*TeardownClaim
	for _, c := range claims {
		if !current[c.Token] {
			lost = append(lost, c)
		}
	}
	return lost, nil
}

// TeardownClaimCurrent reports whether claim is still the sandbox's current claim.
func (m *Manager) TeardownClaimCurrent(ctx context.Context, claim *TeardownClaim) (_ bool, err error) {
	defer withOp(&err, "check the teardown claim of sandbox %s", claim.SandboxID)
	var ok bool
	err = m.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sandbox_control.teardown_claims
		WHERE sandbox_id = $1 AND token = $2)`, claim.SandboxID, claim.Token).Scan(&ok)
	return ok, err
}

// ReleaseTeardownClaim deletes the claim when it is still current (a lost one is another
// holder's now).
func (m *Manager) ReleaseTeardownClaim(ctx context.Context, claim *TeardownClaim) (err error) {
	defer withOp(&err, "release the teardown claim of sandbox %s", claim.SandboxID)
	_, err = m.db.Exec(ctx, `DELETE FROM sandbox_control.teardown_claims WHERE sandbox_id = $1 AND token = $2`,
		claim.SandboxID, claim.Token)
	return err
}

// checkClaim locks the claim's row for the rest of the transaction, so that no takeover
// commits between the check and the write, and returns ErrClaimLost when claim is no longer
// current. A nil claim passes.
func checkClaim(ctx context.Context, tx pgx.Tx, claim *TeardownClaim) error {
	if claim == nil {
		return nil
	}
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM sandbox_control.teardown_claims WHERE sandbox_id = $1 AND token = $2 FOR UPDATE`,
		claim.SandboxID, claim.Token).Scan(&one)
	if isNoRows(err) {
		return fmt.Errorf("%w: sandbox %s, token %d", ErrClaimLost, claim.SandboxID, claim.Token)
	}
	return err
}

// TransitionClaimed is Transition (every legal source status) fenced by claim: the status
// change and its audit entry are written only while claim is current, else ErrClaimLost.
func (m *Manager) TransitionClaimed(ctx context.Context, claim *TeardownClaim, actor string, to sandbox.Status, details map[string]any) (_ *sandbox.Sandbox, err error) {
	defer withOp(&err, "move sandbox %s to %s", claim.SandboxID, to)
	return m.fencedTransition(ctx, claim, actor, claim.SandboxID, nil, to, ActionTransition, details)
}

// StatusBeforeDestroying returns the status a destroying sandbox had when it was moved to
// destroying, as the audit log recorded that transition (the "from" of its latest entry
// moving it there): a teardown that finds its sandbox destroying already (a destroy request,
// or a run that stopped) records where it really came from. ok is false when the log holds
// no such entry.
func (m *Manager) StatusBeforeDestroying(ctx context.Context, id string) (from sandbox.Status, ok bool, err error) {
	defer withOp(&err, "read the status of sandbox %s before destroying", id)
	var s string
	err = m.db.QueryRow(ctx, `SELECT details->>'from' FROM sandbox_control.audit_log
		WHERE sandbox_id = $1 AND details->>'to' = 'destroying' AND details ? 'from'
		ORDER BY id DESC LIMIT 1`, id).Scan(&s)
	if isNoRows(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return sandbox.Status(s), sandbox.Status(s).Valid(), nil
}

// ExpiringUnwarned lists at most limit running sandboxes that expire after now and no later
// than until and have not been warned yet, soonest first.
func (m *Manager) ExpiringUnwarned(ctx context.Context, now, until time.Time, limit int) (_ []*sandbox.Sandbox, err error) {
	defer withOp(&err, "list sandboxes to warn of their expiry")
	rows, err := m.db.Query(ctx, `SELECT `+sandboxColumns+` FROM sandbox_control.sandboxes
		WHERE status = 'running' AND expires_at > $1 AND expires_at <= $2 AND expiry_warned_at IS NULL
		ORDER BY expires_at, id LIMIT $3`, now, until, limit)
	if err != nil {
		return nil, err
	}
	return collectSandboxes(rows)
}

// ClaimExpiryWarning marks a running sandbox expiring after now and no later than until as
// warned at now, with one conditional update, so that of concurrent callers exactly one gets
// ok true. Extend clears the mark.
func (m *Manager) ClaimExpiryWarning(ctx context.Context, id string, now, until time.Time) (sb *sandbox.Sandbox, ok bool, err error) {
	defer withOp(&err, "claim the expiry warning of sandbox %s", id)
	sb, err = scanSandbox(m.db.QueryRow(ctx, `UPDATE sandbox_control.sandboxes SET expiry_warned_at = $2
		WHERE id = $1 AND status = 'running' AND expires_at > $2 AND expires_at <= $3 AND expiry_warned_at IS NULL
		RETURNING `+sandboxColumns, id, now, until))
	if isNoRows(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return sb, true, nil
}

// ReleaseExpiryWarning undoes a claim made at claimedAt whose warning could not be delivered,
// so that a later run tries again.
func (m *Manager) ReleaseExpiryWarning(ctx context.Context, id string, claimedAt time.Time) (err error) {
	defer withOp(&err, "release the expiry warning of sandbox %s", id)
	_, err = m.db.Exec(ctx, `UPDATE sandbox_control.sandboxes SET expiry_warned_at = NULL
		WHERE id = $1 AND expiry_warned_at = $2`, id, claimedAt)
	return err
}

// Audit appends one audit entry on its own, for changes outside the control plane (resources
// removed by orphan reconciliation). sandboxID may be empty.
func (m *Manager) Audit(ctx context.Context, actor, action, sandboxID string, details map[string]any) (err error) {
	defer withOp(&err, "audit %s", action)
	return audit(ctx, m.db, actor, action, sandboxID, details)
}
