package cleanup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
)

// The teardown engine. A run (and a destroy, a batch of one) takes its sandboxes through the
// steps together, one step after the other (Steps):
//
//   - the steps whose work is in PostgreSQL (the transitions, removing the mappings, dropping
//     the schema and the role) run for each sandbox on s.concurrency workers, through the
//     Deferred manager: their route changes wait in route_changes instead of being published
//     one write at a time;
//   - the steps whose work is in Redis run once for the whole batch (batchSteps): one route
//     publication for every guild (and every change waiting), one ACL DELUSER per node for
//     every user, one SCAN pass per primary for every namespace. Then each sandbox records
//     its step.
//
// So the Redis commands of a run follow its guilds, users and keys, not the sandboxes times
// the keys (docs/performance-cleanup.md). Every step stays idempotent and recorded per
// sandbox: a run that stops anywhere leaves records the next run resumes from.

// errLeftAtDeadline stops a teardown before a step because the deadline is near; what it
// did is recorded and the next run resumes it.
var errLeftAtDeadline = errors.New("cleanup: left for the next run: the deadline is near")

// batchSteps are the steps run once for the whole batch.
var batchSteps = map[Step]func(s *Service, ctx context.Context, ts []*teardownRun) []error{
	StepInvalidateCache: (*Service).publishBatch,
	StepDeleteRedisUser: (*Service).deleteUsersBatch,
	StepDeleteKeys:      (*Service).deleteKeysBatch,
}

// tearDown runs the steps not yet completed of every teardown of ts, step by step for all of
// them, and returns each one's result: nil once every step is done, errLeftAtDeadline when
// leave said to stop (nil leave: never), a *StepError for a failed step (recorded), or an
// error wrapping controlplane.ErrClaimLost (nothing written). At the end it publishes the
// route changes its writes left waiting.
func (s *Service) tearDown(ctx context.Context, ls *leases, ts []*teardownRun, leave func() bool) []error {
	results := make([]error, len(ts))
	active := make([]int, len(ts)) // indexes into ts of the teardowns still going
	for i := range ts {
		active[i] = i
	}
	for _, step := range Steps() {
		var due []*teardownRun
		var dueIdx []int
		for _, i := range active {
			if !ts[i].rec.Completed(step, ts[i].sb.Status) {
				due, dueIdx = append(due, ts[i]), append(dueIdx, i)
			}
		}
		if len(due) == 0 {
			continue
		}
		var errs []error
		switch batch, ok := batchSteps[step]; {
		case leave != nil && leave():
			errs = make([]error, len(due))
			for j := range errs {
				errs[j] = errLeftAtDeadline
			}
		case ok:
			errs = s.runBatch(ctx, ls, step, due, batch)
		default:
			errs = make([]error, len(due))
			s.forEach(len(due), func(j int) {
				if leave != nil && leave() {
					errs[j] = errLeftAtDeadline
					return
				}
				errs[j] = due[j].runStep(ctx, step)
			})
		}
		stopped := map[int]bool{}
		for j, err := range errs {
			if err != nil {
				results[dueIdx[j]] = err
				stopped[dueIdx[j]] = true
			}
		}
		kept := active[:0]
		for _, i := range active {
			if !stopped[i] {
				kept = append(kept, i)
			}
		}
		active = kept
	}
	// The route changes of the last steps, and of teardowns that stopped before their cache
	// step, are published now rather than by the next router tick.
	if _, err := s.routes.PublishRouteChanges(context.WithoutCancel(ctx)); err != nil {
		s.log.WarnContext(ctx, "publishing route changes failed; routers publish them within a second", logkey.Error, err)
	}
	return results
}

// runBatch runs a batched step for the teardowns of due: the fault hook before the step of
// each, one statement renewing the leases (which tells which claims are still current), then
// op for those that may go on, which does the step's work for all of them and records it for
// each. It returns each teardown's error; a failure is recorded by fail.
func (s *Service) runBatch(ctx context.Context, ls *leases, step Step, due []*teardownRun,
	op func(s *Service, ctx context.Context, ts []*teardownRun) []error) []error {
	errs := make([]error, len(due))
	var ready []int
	for i, t := range due {
		if err := s.fault(ctx, "before", step, t.sb.ID); err != nil {
			errs[i] = t.fail(ctx, step, err)
			continue
		}
		ready = append(ready, i)
	}
	if len(ready) == 0 {
		return errs
	}
	if _, err := ls.renew(ctx); err != nil {
		for _, i := range ready {
			errs[i] = due[i].fail(ctx, step, fmt.Errorf("check the claims: %w", err))
		}
		return errs
	}
	var live []*teardownRun
	var liveIdx []int
	for _, i := range ready {
		if due[i].claim.lost.Load() {
			errs[i] = due[i].fail(ctx, step, due[i].lostErr())
			continue
		}
		live, liveIdx = append(live, due[i]), append(liveIdx, i)
	}
	if len(live) == 0 {
		return errs
	}
	for j, err := range op(s, ctx, live) {
		if err != nil {
			errs[liveIdx[j]] = live[j].fail(ctx, step, err)
		}
	}
	return errs
}

// eachRecord records a batched step for every teardown of ts on s.concurrency workers, or
// fails every one of them with err when the batch's work failed.
func (s *Service) eachRecord(ts []*teardownRun, err error, record func(t *teardownRun) error) []error {
	errs := make([]error, len(ts))
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	s.forEach(len(ts), func(i int) { errs[i] = record(ts[i]) })
	return errs
}

// publishBatch is the invalidate_cache step of a batch: one publication (per
// routecache.MaxPublish guilds) of the route changes of every guild the teardowns removed,
// together with every change waiting in route_changes (their own transitions' among them),
// so that no router routes by an entry written before. Each teardown counts the entries of
// its guilds that existed.
func (s *Service) publishBatch(ctx context.Context, ts []*teardownRun) []error {
	var guilds []string
	for _, t := range ts {
		guilds = append(guilds, t.rec.RemoveMappings.Guilds...)
	}
	_, existed, err := s.routes.PublishRoutes(ctx, guilds)
	if err != nil {
		err = fmt.Errorf("publish route changes: %w", err)
	}
	return s.eachRecord(ts, err, func(t *teardownRun) error {
		n := 0
		for _, g := range t.rec.RemoveMappings.Guilds {
			if existed[g] {
				n++
			}
		}
		return t.recordInvalidated(ctx, n)
	})
}

// deleteUsersBatch is the delete_redis_user step of a batch: every user in one ACL DELUSER
// per node (TeardownResources.DeleteRedisUsers), before the keys, so that no sandbox's code
// writes a key once the pass has begun.
func (s *Service) deleteUsersBatch(ctx context.Context, ts []*teardownRun) []error {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.sb.ID
	}
	res, err := s.resources.DeleteRedisUsers(ctx, ids)
	return s.eachRecord(ts, err, func(t *teardownRun) error { return t.recordRedisUser(ctx, res[t.sb.ID]) })
}

// deleteKeysBatch is the delete_keys step of a batch: one SCAN pass per primary over every
// namespace for all of them (unlinkNamespaces), or, for a batch of one (a destroy), a scan of
// that namespace's own pattern, which a cluster can serve from the namespace's one slot; then
// their usage hashes, which are outside the namespaces (unlinkUsage).
func (s *Service) deleteKeysBatch(ctx context.Context, ts []*teardownRun) []error {
	start := time.Now()
	var (
		counts    map[string]int64
		primaries int
		err       error
	)
	if len(ts) == 1 {
		var pattern string
		if pattern, err = keys.NamespacePattern(ts[0].sb.ID); err == nil {
			var n int64
			n, primaries, err = unlinkMatching(ctx, s.sandboxRedis, pattern, s.scanCount)
			counts = map[string]int64{ts[0].sb.ID: n}
		}
	} else {
		ids := make(map[string]bool, len(ts))
		for _, t := range ts {
			ids[t.sb.ID] = true
		}
		counts, primaries, err = unlinkNamespaces(ctx, s.sandboxRedis, ids, s.scanCount)
	}
	var usage map[string]bool
	if err == nil { // after the namespaces: see unlinkUsage
		ids := make([]string, len(ts))
		for i, t := range ts {
			ids[i] = t.sb.ID
		}
		if usage, err = unlinkUsage(ctx, s.sandboxRedis, ids); err != nil {
			err = fmt.Errorf("unlink the usage hashes: %w", err)
		}
	}
	if err == nil && len(ts) > 1 {
		var total int64
		for _, n := range counts {
			total += n
		}
		s.log.InfoContext(ctx, "keyspace pass done", "sandboxes", len(ts), "keys_unlinked", total,
			"primaries", primaries, logkey.DurationMS, time.Since(start).Milliseconds())
	}
	return s.eachRecord(ts, err, func(t *teardownRun) error {
		return t.recordKeys(ctx, counts[t.sb.ID], primaries, usage[t.sb.ID])
	})
}
