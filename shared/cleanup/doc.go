// Package cleanup tears sandboxes down, warns owners before their sandboxes expire and
// reconciles orphaned resources (DESIGN §5). The cleanup function runs it every 15 minutes
// (Job, a Lambda handler for the EventBridge schedule); the API's destroy runs the same
// teardown for one sandbox (Service.Destroy) and its admin routes use Admin.
//
// # Teardown
//
// A sandbox is due when it is running past its expiry, destroying (destroy requested),
// failed (provisioning failed) or creating for longer than CLEANUP_STUCK_CREATING_AFTER;
// controlplane.Manager.TeardownCandidates holds that one definition. Each due sandbox goes
// through the steps of Steps, each idempotent and recorded in the sandbox's teardown record
// (Record, the one home of the record's shape; the API shows it as it is):
//
//  1. mark destroying (Manager.Transition: conditional update and audit entry);
//  2. remove the guild mappings, writing the removed guild ids into the record in the same
//     transaction;
//  3. invalidate those guilds' route cache entries, taking the guilds from the record, so a
//     retry after a crash between 2 and 3 still invalidates them;
//  4. delete the namespace's Redis keys with SCAN MATCH keys.NamespacePattern + UNLINK, one
//     SCAN reply per UNLINK, on every primary of a cluster;
//  5. terminate the role's sessions, drop the schema and the role with a lock timeout
//     (provision.Provisioner.Drop), so that a busy schema fails this attempt instead of
//     hanging the run;
//  6. mark destroyed (Manager.Transition). Its record entry is written just before the
//     transition and the status, not the entry, says whether the step is done.
//
// Each step records what it did (mappings removed and their guilds, cache entries deleted,
// keys unlinked, whether the schema and role existed, sessions ended, timestamps) with an
// audit entry in the same transaction. A failing step stops that sandbox for this run: the
// failure goes into the record, last_error, cleanup_attempts and the audit log, and the next
// run resumes at the first step not completed (Record.Next). A crash anywhere leaves a
// sandbox that is still due (status destroying, or earlier), so a later run finishes it.
//
// # Claims
//
// Two runs (EventBridge delivers at least once; an operator may run one by hand; the API
// destroys) never work on the same sandbox: a run claims each sandbox with
// pg_try_advisory_lock(class, hashtext(id)) on a session of its own, held outside the pool,
// and re-reads the sandbox after claiming it. Session advisory locks rather than row locks,
// because the teardown runs many transactions of its own and through the Manager, which
// locks the sandbox's row FOR UPDATE: a row lock held for the whole teardown would block
// those very transactions, and a claim column with a lease would need an expiry to guess.
// An advisory lock lives exactly as long as the claiming session: a run that crashes or
// times out loses its connection and with it every claim, and never waits for another's
// (try, not wait). A hash collision between two ids only postpones one of them to the next
// run. Within a run, Options.Concurrency workers tear sandboxes down at once; each holds at
// most one pooled connection at a time.
//
// # Deadline
//
// A run stops taking sandboxes when less than CLEANUP_DEADLINE_MARGIN remains before its
// context's deadline (the Lambda invocation's), skips orphan reconciliation then, and reports
// how many it left (RunReport.LeftAtDeadline; the CleanupSandboxesRemaining metric counts
// those and the failed ones).
//
// # Orphans
//
// FindOrphans reports, without touching them, resources named exactly like a sandbox's that
// no live sandbox owns: schemas and roles sb_<id> (roles only when commented with
// provision.RoleCommentFor(current_database()): roles are cluster-wide and other databases'
// sandboxes must never be touched), Redis namespaces (SCAN keys.AllNamespacesPattern), guild
// mappings of sandboxes neither running nor creating, and route cache entries pointing at
// sandboxes that are gone. Resources are listed before the control plane is read (a row is
// committed before its resources exist), so a sandbox being created is never mistaken for
// missing. Anything that became an orphan within CLEANUP_ORPHAN_GRACE is counted as young
// and not reported. The age is the sandbox's destroyed_at (or its last status change, for
// mappings); a resource with no sandbox row at all has no creation time anywhere (the
// catalog keeps none for schemas and roles, Redis none for keys), so each run records when
// it first saw it in sandbox_control.orphan_sightings and it is reported once seen for
// longer than the grace period; sightings of resources that are gone or owned are dropped.
// That bookkeeping is the finder's only write; a dry run does not even do that.
// RemoveOrphans removes only what is asked (CLEANUP_ORPHANED for the job, an explicit option
// in the API), re-checks each name against the sandbox patterns and each sandbox against
// the control plane first, and audits every removal.
//
// # Expiry warnings
//
// Owners of running sandboxes that expire within EXPIRY_WARNING_WINDOW get one warning,
// published to EXPIRY_WARNING_TOPIC_ARN (SNSPublisher) or logged without one: the sandbox is
// marked warned (expiry_warned_at) with one conditional update before publishing, so
// concurrent runs send it once; Manager.Extend clears the mark.
//
// # Metrics
//
// A run records CleanupRuns, CleanupSandboxes, SandboxesDestroyed, CleanupFailures,
// CleanupSandboxesRemaining, CleanupDuration, ExpiryWarningsSent, OrphanedResources per
// ResourceType (its [Environment] set is the total) and the ActiveSandboxes and
// GuildMappings gauges, once per run.
package cleanup
