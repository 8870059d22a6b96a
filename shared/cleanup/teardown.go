package cleanup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// StepError is a teardown that stopped at a failed step; the next run resumes at that step.
type StepError struct {
	SandboxID string
	Step      Step
	Err       error
	// Recorded is false when even recording the failure failed (RecordErr says why).
	Recorded  bool
	RecordErr error
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("teardown of sandbox %s stopped at %s: %v", e.SandboxID, e.Step, e.Err)
	if !e.Recorded {
		msg += fmt.Sprintf(" (recording the failure failed too: %v)", e.RecordErr)
	}
	return msg
}

func (e *StepError) Unwrap() error { return e.Err }

// maxErrorLen bounds the error text kept in the record and in last_error.
const maxErrorLen = 1000

// failureRecordTimeout bounds recording a failure after the run's context has ended.
const failureRecordTimeout = 10 * time.Second

// teardownRun is one attempt at one claimed sandbox.
type teardownRun struct {
	s      *Service
	actor  string
	sb     *sandbox.Sandbox
	rec    Record
	reason controlplane.TeardownReason
	claim  *heldClaim
}

// newTeardown reads the record of a claimed sandbox. A teardown keeps the reason its first
// transition recorded, whatever the sandbox's status says now (a resumed expiry is destroying,
// which alone would read as destroy_requested).
func (s *Service) newTeardown(ctx context.Context, actor string, sb *sandbox.Sandbox, reason controlplane.TeardownReason, claim *heldClaim) *teardownRun {
	rec, err := ParseRecord(sb.Teardown)
	if err != nil {
		// Every step is idempotent: starting over from an unreadable record is safe.
		s.log.WarnContext(ctx, "teardown record unreadable; starting over", logkey.Sandbox, sb.ID, logkey.Error, err)
		rec = Record{}
	}
	if rec.StartedAt == nil {
		at := s.now()
		rec.StartedAt = &at
	}
	if rec.MarkDestroying != nil && rec.MarkDestroying.Reason != "" {
		reason = controlplane.TeardownReason(rec.MarkDestroying.Reason)
	}
	return &teardownRun{s: s, actor: actor, sb: sb, rec: rec, reason: reason, claim: claim}
}

// done reports whether every step has completed.
func (t *teardownRun) done() bool { return t.rec.Next(t.sb.Status) == "" }

func (t *teardownRun) logDone(ctx context.Context) {
	t.s.log.InfoContext(ctx, "sandbox torn down", logkey.Sandbox, t.sb.ID, logkey.Name, t.sb.Name, logkey.Reason, string(t.reason), "actor", t.actor,
		logkey.Guilds, t.rec.RemoveMappings.Guilds, "keys_unlinked", t.rec.DeleteKeys.Unlinked,
		"schema_existed", t.rec.DropDatabase.SchemaExisted, "role_existed", t.rec.DropDatabase.RoleExisted)
}

// runStep runs one step of its own (not a batched step, see engine.go): the fault hook, the
// claim check, the step; a failure is recorded and returned (fail).
func (t *teardownRun) runStep(ctx context.Context, step Step) error {
	err := t.s.fault(ctx, "before", step, t.sb.ID)
	if err == nil {
		err = t.checkClaim(ctx, step)
	}
	if err == nil {
		err = t.run(ctx, step)
	}
	if err != nil {
		return t.fail(ctx, step, err)
	}
	return nil
}

// checkClaim stops the teardown before a step once its claim is lost. The steps whose effect
// is outside the control plane (Redis, the schema) ask the database first; the others write
// only through the fenced methods (controlplane's *Claimed), which check it themselves.
func (t *teardownRun) checkClaim(ctx context.Context, step Step) error {
	if t.claim.lost.Load() {
		return t.lostErr()
	}
	switch step {
	case StepInvalidateCache, StepDeleteRedisUser, StepDeleteKeys, StepDropDatabase:
		ok, err := t.s.claims.TeardownClaimCurrent(ctx, t.claim.TeardownClaim)
		if err != nil {
			return err
		}
		if !ok {
			t.claim.lost.Store(true)
			return t.lostErr()
		}
	}
	return nil
}

func (t *teardownRun) lostErr() error {
	return fmt.Errorf("%w: sandbox %s, token %d", controlplane.ErrClaimLost, t.sb.ID, t.claim.Token)
}

func (t *teardownRun) run(ctx context.Context, step Step) error {
	switch step {
	case StepMarkDestroying:
		return t.markDestroying(ctx)
	case StepRemoveMappings:
		return t.removeMappings(ctx)
	case StepDropDatabase:
		return t.dropDatabase(ctx)
	case StepMarkDestroyed:
		return t.markDestroyed(ctx)
	}
	return fmt.Errorf("step %q runs for the whole batch, not on its own", step)
}

func (t *teardownRun) after(ctx context.Context, step Step) error {
	return t.s.fault(ctx, "after", step, t.sb.ID)
}

// save stores the record, with an ActionTeardownStep audit entry when details is not nil.
func (t *teardownRun) save(ctx context.Context, details map[string]any) error {
	b, err := json.Marshal(t.rec)
	if err != nil {
		return err
	}
	action := ""
	if details != nil {
		action = controlplane.ActionTeardownStep
	}
	return t.s.writes.SaveTeardownClaimed(ctx, t.claim.TeardownClaim, t.actor, b, action, details)
}

// markDestroying moves the sandbox to destroying (unless a destroy request already did);
// the transition writes its own audit entry. The record says where the sandbox came from:
// when it is destroying already, the status the audit log shows before that.
func (t *teardownRun) markDestroying(ctx context.Context) error {
	from := t.sb.Status
	if from == sandbox.StatusDestroying {
		before, ok, err := t.s.writes.StatusBeforeDestroying(ctx, t.sb.ID)
		if err != nil {
			return err
		}
		if ok {
			from = before
		}
	} else {
		sb, err := t.s.writes.TransitionClaimed(ctx, t.claim.TeardownClaim, t.actor, sandbox.StatusDestroying,
			map[string]any{"step": StepMarkDestroying, "reason": t.reason})
		if err != nil {
			return err
		}
		t.sb = sb
	}
	if err := t.after(ctx, StepMarkDestroying); err != nil {
		return err
	}
	t.rec.MarkDestroying = &MarkStep{At: t.s.now(), Actor: t.actor, From: from, Reason: string(t.reason)}
	return t.save(ctx, nil)
}

// removeMappings deletes the guild mappings and records their guilds in the same
// transaction, so the cache step knows them even after a crash.
func (t *teardownRun) removeMappings(ctx context.Context) error {
	var step *MappingsStep
	_, err := t.s.writes.RemoveMappingsForTeardownClaimed(ctx, t.claim.TeardownClaim, t.actor, string(t.reason), func(removed []string) ([]byte, map[string]any, error) {
		guilds := slices.Sorted(slices.Values(removed))
		if guilds == nil {
			guilds = []string{}
		}
		step = &MappingsStep{At: t.s.now(), Removed: len(removed), Guilds: guilds}
		rec := t.rec
		rec.RemoveMappings = step
		b, err := json.Marshal(rec)
		return b, map[string]any{"step": StepRemoveMappings, "mappings_removed": len(removed), "guilds": guilds}, err
	})
	if err != nil {
		return err
	}
	t.rec.RemoveMappings = step
	return t.after(ctx, StepRemoveMappings)
}

// recordInvalidated records the invalidate_cache step once the route changes of the
// sandbox's guilds are published (publishBatch): n of their cache entries existed.
func (t *teardownRun) recordInvalidated(ctx context.Context, n int) error {
	if err := t.after(ctx, StepInvalidateCache); err != nil {
		return err
	}
	t.rec.InvalidateCache = &CacheStep{At: t.s.now(), Invalidated: n}
	return t.save(ctx, map[string]any{"step": StepInvalidateCache, "entries_invalidated": n, "guilds": t.rec.RemoveMappings.Guilds})
}

// recordRedisUser records the delete_redis_user step once the sandbox's ACL user is deleted
// on every node (deleteUsersBatch; skipped in shared Redis mode).
func (t *teardownRun) recordRedisUser(ctx context.Context, res provision.RedisUserResult) error {
	if err := t.after(ctx, StepDeleteRedisUser); err != nil {
		return err
	}
	t.rec.DeleteRedisUser = &RedisUserStep{At: t.s.now(), RedisUserResult: res}
	return t.save(ctx, map[string]any{"step": StepDeleteRedisUser, "deleted_on_nodes": res.Deleted,
		"nodes": res.Nodes, "skipped": res.Skipped})
}

// recordKeys records the delete_keys step once the sandbox's keys and usage hash are
// unlinked (deleteKeysBatch).
func (t *teardownRun) recordKeys(ctx context.Context, n int64, primaries int, usage bool) error {
	if err := t.after(ctx, StepDeleteKeys); err != nil {
		return err
	}
	t.rec.DeleteKeys = &KeysStep{At: t.s.now(), Unlinked: n, Primaries: primaries, UsageUnlinked: usage}
	return t.save(ctx, map[string]any{"step": StepDeleteKeys, "keys_unlinked": n, "primaries_scanned": primaries, "usage_unlinked": usage})
}

// dropDatabase terminates the role's sessions and drops the schema and the role, waiting
// for locks no longer than the lock timeout.
func (t *teardownRun) dropDatabase(ctx context.Context) error {
	res, err := t.s.resources.Drop(ctx, t.sb.ID, t.s.lockTimeout)
	if err != nil {
		return err
	}
	if err := t.after(ctx, StepDropDatabase); err != nil {
		return err
	}
	t.rec.DropDatabase = &DatabaseStep{At: t.s.now(), SessionsTerminated: res.SessionsTerminated,
		SchemaExisted: res.SchemaExisted, RoleExisted: res.RoleExisted}
	return t.save(ctx, map[string]any{"step": StepDropDatabase, "sessions_terminated": res.SessionsTerminated,
		"schema_existed": res.SchemaExisted, "role_existed": res.RoleExisted})
}

// markDestroyed writes the record's last entry, then moves the sandbox to destroyed (the
// transition audits it, with a summary). The status, not the entry, says whether this step
// is done; see Record.Completed.
func (t *teardownRun) markDestroyed(ctx context.Context) error {
	t.rec.MarkDestroyed = &MarkStep{At: t.s.now(), Actor: t.actor, From: sandbox.StatusDestroying, Reason: string(t.reason)}
	if err := t.save(ctx, nil); err != nil {
		return err
	}
	sb, err := t.s.writes.TransitionClaimed(ctx, t.claim.TeardownClaim, t.actor, sandbox.StatusDestroyed, map[string]any{
		"step":              StepMarkDestroyed,
		"reason":            t.reason,
		"guilds":            t.rec.RemoveMappings.Guilds,
		"cache_invalidated": t.rec.InvalidateCache.Invalidated,
		"keys_unlinked":     t.rec.DeleteKeys.Unlinked,
		"schema_existed":    t.rec.DropDatabase.SchemaExisted,
		"role_existed":      t.rec.DropDatabase.RoleExisted,
	})
	if err != nil {
		return err
	}
	t.sb = sb
	return t.after(ctx, StepMarkDestroyed)
}

// fail records a failed step: in the record, as last_error, in cleanup_attempts and in the
// audit log. It uses a context of its own so that a run cut short still records why.
//
// A lost claim is no failure: the teardown is another holder's now, so nothing is written and
// the error (wrapping controlplane.ErrClaimLost) is returned as it is.
func (t *teardownRun) fail(ctx context.Context, step Step, cause error) error {
	if errors.Is(cause, controlplane.ErrClaimLost) {
		t.claim.lost.Store(true)
		t.s.log.WarnContext(ctx, "teardown claim lost; another run took the sandbox over, this one stops", logkey.Sandbox, t.sb.ID,
			logkey.Name, t.sb.Name, logkey.Step, string(step), "token", t.claim.Token, logkey.Error, cause)
		return cause
	}
	msg := cause.Error()
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen]
	}
	if step == StepMarkDestroyed && t.sb.Status != sandbox.StatusDestroyed {
		t.rec.MarkDestroyed = nil // written ahead of a transition that did not happen
	}
	t.rec.LastFailure = &Failure{At: t.s.now(), Step: step, Error: msg}
	stepErr := &StepError{SandboxID: t.sb.ID, Step: step, Err: cause}
	b, err := json.Marshal(t.rec)
	if err == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failureRecordTimeout)
		defer cancel()
		var attempts int
		attempts, err = t.s.writes.RecordTeardownFailureClaimed(rctx, t.claim.TeardownClaim, t.actor, b, string(step)+": "+msg, map[string]any{"step": step})
		if errors.Is(err, controlplane.ErrClaimLost) {
			t.claim.lost.Store(true)
			t.s.log.WarnContext(ctx, "teardown claim lost; the failure is not recorded", logkey.Sandbox, t.sb.ID,
				logkey.Step, string(step), "token", t.claim.Token, logkey.Error, cause)
			return err
		}
		if err == nil {
			t.s.log.WarnContext(ctx, "teardown step failed; the next run resumes it", logkey.Sandbox, t.sb.ID, logkey.Name, t.sb.Name,
				logkey.Step, string(step), "attempt", attempts, logkey.Error, cause)
		}
	}
	stepErr.Recorded, stepErr.RecordErr = err == nil, err
	return stepErr
}
