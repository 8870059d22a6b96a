package cleanup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// RunOptions configures one run.
type RunOptions struct {
	// DryRun reports candidates, due warnings and orphans and changes nothing (not even
	// orphan sightings); it records no metrics.
	DryRun bool
	// RemoveOrphans removes the orphans found (CLEANUP_ORPHANED for the scheduled job).
	RemoveOrphans bool
	// DeadlineMargin overrides the service's margin; callers with short deadlines (the API)
	// pass a smaller one.
	DeadlineMargin time.Duration
	// Metrics receives the run's metrics; nil records none.
	Metrics *metrics.Recorder
	// SkipExpiryWarnings leaves the expiry warnings to the scheduled run, the one that has the
	// topic: a run without it would mark the warnings sent and only log them.
	SkipExpiryWarnings bool
}

// The run's report is the API's wire type (apiwire), so that the cleanup function, the admin
// routes and the CLI answer with one shape.
type (
	// RunReport is what one run did. It is the Lambda handler's response.
	RunReport = apiwire.RunReport
	// Candidate is a sandbox due for teardown, as a dry run lists it.
	Candidate = apiwire.Candidate
	// SandboxFailure is a teardown that stopped at a failed step in this run.
	SandboxFailure = apiwire.SandboxFailure
)

// Run is one cleanup run: expiry warnings, then the teardown of every due sandbox (several
// at once, each claimed so that concurrent runs never share one), then the end of sandbox
// sessions whose transaction has been open too long, of the Redis users that hold too many
// connections and of the roles whose schema takes too much disk, then orphan reconciliation, whose keyspace pass also measures every sandbox's
// keys and switches off the Redis users of those above their memory share, then the gauges.
// It stops taking sandboxes when less than the deadline margin remains before ctx's deadline
// and skips the orphans (and the memory check) then.
// Failed teardowns are recorded and reported, not returned; the error joins the problems of
// the run itself.
func (s *Service) Run(ctx context.Context, opts RunOptions) (RunReport, error) {
	start := time.Now()
	rep := RunReport{StartedAt: s.now(), DryRun: opts.DryRun, Destroyed: []string{}, Failed: []SandboxFailure{}}
	rec := opts.Metrics
	if opts.DryRun {
		rec = nil
	}
	margin := orDefault(opts.DeadlineMargin, s.margin)
	var errs []error
	fail := func(err error) {
		errs = append(errs, err)
		rep.Errors = append(rep.Errors, err.Error())
		s.log.ErrorContext(ctx, "cleanup run problem", logkey.Error, err)
	}
	rec.Count(metrics.CleanupRuns, 1)

	// Route changes whose publication failed (Redis was down for their writer) wait in the
	// control plane; every run publishes them, like every router does every second.
	if !opts.DryRun {
		if n, err := s.routes.PublishRouteChanges(ctx); err != nil {
			fail(fmt.Errorf("publish pending route changes: %w", err))
		} else if n > 0 {
			s.log.InfoContext(ctx, "published route changes left pending by their writer", "changes", n)
		}
		// The route generation of the layout before its hash tag has no TTL: nothing reads
		// it, and this removes it from deployments that had it (keys.LegacyRouteGeneration).
		if err := s.rdb.Unlink(ctx, keys.LegacyRouteGeneration).Err(); err != nil {
			s.log.WarnContext(ctx, "unlinking the old route generation failed; the next run tries again", logkey.Error, err)
		}
	}

	var err error
	switch {
	case opts.SkipExpiryWarnings:
		rep.ExpiryWarnings.Skipped = true
	case opts.DryRun:
		rep.ExpiryWarnings, err = s.dueExpiryWarnings(ctx)
	default:
		rep.ExpiryWarnings, err = s.SendExpiryWarnings(ctx)
		rec.Count(metrics.ExpiryWarningsSent, rep.ExpiryWarnings.Sent)
	}
	if err != nil {
		fail(err)
	}

	if err := s.runTeardowns(ctx, opts.DryRun, margin, &rep); err != nil {
		fail(err)
	}
	rec.Count(metrics.CleanupSandboxes, len(rep.Destroyed))
	rec.Count(metrics.SandboxesDestroyed, len(rep.Destroyed))
	rec.Count(metrics.CleanupFailures, len(rep.Failed))
	rec.Count(metrics.CleanupClaimsLost, rep.ClaimsLost)
	rec.Count(metrics.CleanupSandboxesRemaining, rep.Remaining)

	if !opts.DryRun {
		s.endLongTransactions(ctx, &rep, fail)
		s.switchOffCrowdingRedisUsers(ctx, &rep, fail)
		s.switchOffOversizedRoles(ctx, &rep, fail)
	}
	rec.Count(metrics.SandboxDatabaseRolesSwitchedOff, len(rep.DatabaseRolesSwitchedOff))

	if nearDeadline(ctx, margin) {
		rep.OrphansSkipped = true
		s.log.WarnContext(ctx, "orphan reconciliation skipped: the deadline is near")
	} else if orphans, live, err := s.findOrphans(ctx, !opts.DryRun); err != nil {
		fail(err)
	} else {
		s.switchOffRedisUsersOverMemory(ctx, live, &rep, fail)
		rep.Orphans = &orphans
		for _, t := range ResourceTypes() {
			rec.Count(metrics.OrphanedResources, orphans.Count(t), metrics.DimResourceType, t)
		}
		if opts.RemoveOrphans && !opts.DryRun && len(orphans.Orphans) > 0 {
			removal, err := s.RemoveOrphans(ctx, orphans)
			rep.OrphansRemoved = &removal
			if err != nil {
				fail(err)
			}
			if len(removal.Failed) > 0 {
				fail(fmt.Errorf("%d orphans could not be removed", len(removal.Failed)))
			}
		}
	}

	rec.Count(metrics.SandboxRedisUsersSwitchedOff, len(rep.RedisUsersSwitchedOff)+len(rep.RedisUsersOverMemory))

	if stats, err := s.gauges.Stats(ctx); err != nil {
		fail(fmt.Errorf("cleanup: read gauges: %w", err))
	} else {
		rep.ActiveSandboxes, rep.GuildMappings = stats.Active, stats.GuildMappings
		rec.Gauge(metrics.ActiveSandboxes, stats.Active)
		rec.Gauge(metrics.GuildMappings, stats.GuildMappings)
	}

	elapsed := time.Since(start)
	rep.DurationMS = elapsed.Milliseconds()
	rec.Milliseconds(metrics.CleanupDuration, elapsed)
	// A run that found nothing to do logs at debug: make dev runs one every 30 seconds.
	level := slog.LevelInfo
	if idle(rep) {
		level = slog.LevelDebug
	}
	attrs := []any{"dry_run", opts.DryRun, "candidates", rep.CandidateCount,
		"destroyed", len(rep.Destroyed), "failed", len(rep.Failed), "skipped", rep.Skipped, "claims_lost", rep.ClaimsLost,
		"left_at_deadline", rep.LeftAtDeadline, "warnings_sent", rep.ExpiryWarnings.Sent,
		"orphans", orphanCount(rep.Orphans), logkey.DurationMS, rep.DurationMS}
	s.log.Log(ctx, level, "cleanup run finished", attrs...)
	return rep, errors.Join(errs...)
}

// idle reports whether the run found nothing to do and nothing to report: no sandbox due, no
// expiry warning due, sent or failed, no orphan (reported or removed), no orphan check
// skipped, and no error of its own.
func idle(r RunReport) bool {
	w := r.ExpiryWarnings
	return r.CandidateCount == 0 && w.Sent == 0 && w.Failed == 0 && len(w.Due) == 0 &&
		orphanCount(r.Orphans) == 0 && r.OrphansRemoved == nil && !r.OrphansSkipped && len(r.Errors) == 0
}

func orphanCount(r *OrphanReport) int {
	if r == nil {
		return 0
	}
	return len(r.Orphans)
}

// nearDeadline reports whether less than margin remains before ctx's deadline, or ctx is done.
func nearDeadline(ctx context.Context, margin time.Duration) bool {
	if ctx.Err() != nil {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && time.Until(deadline) < margin
}

// runTeardowns tears down the due sandboxes: it claims them on s.concurrency workers, then
// takes the claimed ones through the steps together (tearDown). Every candidate ends up
// destroyed, failed, skipped, lost or left at the deadline.
func (s *Service) runTeardowns(ctx context.Context, dryRun bool, margin time.Duration, rep *RunReport) error {
	now := s.now()
	cands, err := s.candidates.TeardownCandidates(ctx, now, now.Add(-s.stuckAfter), s.batchLimit)
	if err != nil {
		return fmt.Errorf("cleanup: list teardown candidates: %w", err)
	}
	rep.CandidateCount = len(cands)
	if dryRun {
		rep.Candidates = make([]Candidate, len(cands))
		for i, c := range cands {
			rep.Candidates[i] = Candidate{ID: c.ID, Name: c.Name, Status: c.Status, Reason: string(c.Reason)}
		}
		return nil
	}
	if len(cands) == 0 {
		return nil
	}
	ls := s.startLeases(ctx)
	defer ls.close()

	var mu sync.Mutex
	tally := func(id string, o outcome) {
		mu.Lock()
		defer mu.Unlock()
		switch o.kind {
		case outcomeDestroyed:
			rep.Destroyed = append(rep.Destroyed, id)
		case outcomeFailed:
			rep.Failed = append(rep.Failed, *o.failure)
		case outcomeLost:
			rep.ClaimsLost++
		case outcomeLeft:
			rep.LeftAtDeadline++
		default:
			rep.Skipped++
		}
	}
	leave := func() bool { return nearDeadline(ctx, margin) }

	// Claim and read each candidate.
	claimed := make([]*teardownRun, len(cands))
	s.forEach(len(cands), func(i int) {
		if leave() {
			tally(cands[i].ID, outcome{kind: outcomeLeft})
			return
		}
		t, o := s.claimAndRead(ctx, ls, cands[i])
		if o.kind == outcomeWaiting {
			claimed[i] = t
			return
		}
		s.finish(ctx, ls, t)
		tally(cands[i].ID, o)
	})
	ts := slices.DeleteFunc(claimed, func(t *teardownRun) bool { return t == nil })

	// Then the steps, all of them together.
	results := s.tearDown(ctx, ls, ts, leave)
	for i, t := range ts {
		s.finish(ctx, ls, t)
		tally(t.sb.ID, s.outcomeOf(ctx, t, results[i]))
	}
	rep.Remaining = rep.LeftAtDeadline + len(rep.Failed)
	return nil
}

// forEach calls fn(i) for every i below n, on s.concurrency workers.
func (s *Service) forEach(n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(s.concurrency, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

type outcomeKind int

const (
	outcomeSkipped   outcomeKind = iota // held by another run, or no longer due
	outcomeWaiting                      // claimed and still due: its steps are to run
	outcomeDestroyed                    // torn down completely in this run
	outcomeFailed                       // stopped at a failed step (recorded)
	outcomeLost                         // its claim was lost: another run has it now
	outcomeLeft                         // not taken, or left, because the deadline is near
)

type outcome struct {
	kind    outcomeKind
	failure *SandboxFailure
}

// claimAndRead claims one candidate and re-reads it. It returns the teardown with outcome
// waiting when the sandbox is still due, else what became of it (the teardown is nil when
// nothing was claimed: another run holds the claim, or claiming failed).
func (s *Service) claimAndRead(ctx context.Context, ls *leases, c controlplane.TeardownCandidate) (*teardownRun, outcome) {
	claim, err := ls.take(ctx, c.ID)
	if err != nil {
		return nil, outcome{kind: outcomeFailed, failure: &SandboxFailure{SandboxID: c.ID, Error: err.Error()}}
	}
	if claim == nil {
		return nil, outcome{kind: outcomeSkipped}
	}
	t := &teardownRun{s: s, claim: claim, sb: &sandbox.Sandbox{ID: c.ID}} // until read
	// Another run may have finished it, or its owner extended it, since the list was read.
	now := s.now()
	sb, reason, err := s.candidates.TeardownDue(ctx, c.ID, now, now.Add(-s.stuckAfter))
	switch {
	case errors.Is(err, sandbox.ErrNotFound):
		return t, outcome{kind: outcomeSkipped}
	case err != nil:
		return t, outcome{kind: outcomeFailed, failure: &SandboxFailure{SandboxID: c.ID, Error: err.Error()}}
	case reason == "":
		return t, outcome{kind: outcomeSkipped}
	}
	return s.newTeardown(ctx, s.actor, sb, reason, claim), outcome{kind: outcomeWaiting}
}

// outcomeOf classifies the result of a teardown's steps.
func (s *Service) outcomeOf(ctx context.Context, t *teardownRun, err error) outcome {
	var stepErr *StepError
	switch {
	case err == nil && t.done():
		t.logDone(ctx)
		return outcome{kind: outcomeDestroyed}
	case err == nil:
		return outcome{kind: outcomeSkipped}
	case errors.Is(err, controlplane.ErrClaimLost):
		return outcome{kind: outcomeLost}
	case errors.Is(err, errLeftAtDeadline):
		return outcome{kind: outcomeLeft}
	case errors.As(err, &stepErr):
		return outcome{kind: outcomeFailed, failure: &SandboxFailure{SandboxID: t.sb.ID, Step: stepErr.Step, Error: stepErr.Err.Error()}}
	default:
		return outcome{kind: outcomeFailed, failure: &SandboxFailure{SandboxID: t.sb.ID, Error: err.Error()}}
	}
}

// finish releases the claim claimAndRead took for a sandbox (t is nil when it took none).
func (s *Service) finish(ctx context.Context, ls *leases, t *teardownRun) {
	if t != nil {
		ls.release(ctx, t.claim)
	}
}

// endLongTransactions ends the sandbox sessions whose transaction has been open longer than
// the limit (provision.EndLongTransactions: an open transaction keeps vacuum from the whole
// database, the control plane's tables included), logging each at warn.
func (s *Service) endLongTransactions(ctx context.Context, rep *RunReport, fail func(error)) {
	ended, err := s.resources.EndLongTransactions(ctx, s.maxXact)
	if err != nil {
		fail(fmt.Errorf("end long transactions of sandboxes: %w", err))
	}
	for _, e := range ended {
		s.log.WarnContext(ctx, "ended a sandbox session whose transaction was open too long", logkey.Sandbox, e.SandboxID,
			"pid", e.PID, "xact_start", e.XactStart, "state", e.State, "limit", s.maxXact.String())
	}
	rep.TransactionsEnded = len(ended)
}

// switchOffCrowdingRedisUsers switches off the Redis user of every sandbox that holds more
// connections than sandbox.RedisConnectionLimit on one node, and closes them
// (provision.SwitchOffCrowdingRedisUsers: Redis has no limit per user, so one worker could
// take every connection of the sandboxes' server), logging each at warn.
func (s *Service) switchOffCrowdingRedisUsers(ctx context.Context, rep *RunReport, fail func(error)) {
	off, err := s.resources.SwitchOffCrowdingRedisUsers(ctx, sandbox.RedisConnectionLimit)
	if err != nil {
		fail(err)
	}
	for _, u := range off {
		s.log.WarnContext(ctx, "switched off a sandbox's Redis user that held too many connections; its next connect switches it on again",
			logkey.Sandbox, u.SandboxID, "connections", u.Connections, "node", u.Node, "closed", u.Closed, "limit", sandbox.RedisConnectionLimit)
		rep.RedisUsersSwitchedOff = append(rep.RedisUsersSwitchedOff, u.SandboxID)
	}
}

// switchOffRedisUsersOverMemory switches off the Redis user of every sandbox whose keys held
// more memory than the limit in the keyspace pass (live: what findOrphans measured, empty on a
// dry run), and closes its connections, logging each at warn. Redis bounds memory per server,
// never per namespace: one worker's keys could fill the server, and every other sandbox's
// writes would then fail. The keys stay: the owner, connected again, deletes what it does not
// need, or destroys the sandbox; the next run switches the user off again while they hold
// more. A user already off is left off and not reported again; a sandbox without a user (the
// shared Redis mode, or a teardown meanwhile) has nothing to switch off.
func (s *Service) switchOffRedisUsersOverMemory(ctx context.Context, live map[string]namespaceUse, rep *RunReport, fail func(error)) {
	for _, id := range slices.Sorted(maps.Keys(live)) {
		n := live[id]
		if n.bytes <= s.maxMemory {
			continue
		}
		st, err := s.resources.RedisUserStateOf(ctx, id)
		if err != nil {
			fail(fmt.Errorf("read the Redis user of %s, whose keys hold %d bytes: %w", id, n.bytes, err))
			continue
		}
		if st != provision.RedisUserOn {
			continue
		}
		closed, err := s.resources.SwitchOffRedisUser(ctx, id)
		if err != nil {
			fail(fmt.Errorf("switch off the Redis user of %s, whose keys hold %d bytes: %w", id, n.bytes, err))
			continue
		}
		s.log.WarnContext(ctx, "switched off a sandbox's Redis user whose keys hold more memory than a sandbox may; its next connect switches it on again",
			logkey.Sandbox, id, "bytes", n.bytes, "keys", n.keys, "closed", closed, "limit", s.maxMemory)
		rep.RedisUsersOverMemory = append(rep.RedisUsersOverMemory, id)
	}
}

// switchOffOversizedRoles takes the password of the role of every sandbox whose schema takes
// more disk than the limit away and ends its sessions (provision.SwitchOffOversizedRoles:
// PostgreSQL has no quota per schema, so one worker's rows could fill the disk every other
// sandbox writes to), logging each at warn.
func (s *Service) switchOffOversizedRoles(ctx context.Context, rep *RunReport, fail func(error)) {
	res, err := s.resources.SwitchOffOversizedRoles(ctx, s.maxSchema, s.lockTimeout)
	if err != nil {
		fail(err)
	}
	s.recordCatalogUse(ctx, res.Measured)
	for _, o := range res.SwitchedOff {
		s.log.WarnContext(ctx, "took the password of a sandbox's role whose schema takes more disk than a sandbox may; its next connect sets a new one",
			logkey.Sandbox, o.SandboxID, "bytes", o.Bytes, "sessions_ended", o.SessionsEnded, "limit", s.maxSchema)
		rep.DatabaseRolesSwitchedOff = append(rep.DatabaseRolesSwitchedOff, o.SandboxID)
	}
	if res.LockingSessionsEnded > 0 {
		s.log.WarnContext(ctx, "ended sandbox sessions whose exclusive locks kept their schema's size from being read",
			"sessions", res.LockingSessionsEnded)
	}
	if len(res.Unmeasured) > 0 {
		s.log.WarnContext(ctx, "could not read the size of sandbox schemas whose sessions hold a lock; the next run reads them again",
			"sandboxes", res.Unmeasured)
	}
}
