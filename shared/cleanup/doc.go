// Package cleanup tears sandboxes down, warns owners before their sandboxes expire and
// reconciles orphaned resources (docs/architecture.md, "Cleanup"). The cleanup function runs it every 15 minutes
// (Job; package scheduleadapter turns its EventBridge schedule into runs); the API's destroy
// runs the same teardown for one sandbox (Service.Destroy) and its admin routes use Admin.
//
// # Teardown
//
// A sandbox is due when it is running past its expiry, destroying (destroy requested),
// failed (provisioning failed) or creating for longer than CLEANUP_STUCK_CREATING_AFTER;
// controlplane.Manager.TeardownCandidates holds that one definition. Each due sandbox goes
// through the steps of Steps, each idempotent and recorded in the sandbox's teardown record
// (Record, the one home of the record's shape; the API shows it as it is):
//
//  1. mark destroying (Manager.TransitionClaimed: conditional update and audit entry);
//  2. remove the guild mappings, writing the removed guild ids into the record in the same
//     transaction;
//  3. publish those guilds' route changes (the route generation bumped, their cache entries
//     deleted), taking the guilds from the record, so a retry after a crash between 2 and 3
//     still publishes them; the count of entries that existed is recorded;
//  4. delete the sandbox's Redis ACL user (after it, no new key can appear), then its
//     namespace's Redis keys;
//  5. terminate the role's sessions, drop the schema and the role with a lock timeout
//     (provision.Provisioner.Drop), so that a busy schema fails this attempt instead of
//     hanging the run;
//  6. mark destroyed (Manager.TransitionClaimed). Its record entry is written just before the
//     transition and the status, not the entry, says whether the step is done.
//
// The engine (engine.go) takes a batch of sandboxes through the steps together, one step
// after the other: a scheduled run its whole batch, Service.Destroy a batch of one. The
// PostgreSQL steps (1, 2, 5, 6) run for each sandbox on Options.Concurrency workers, through a
// Deferred controlplane.Manager whose writes leave their route changes waiting; the Redis
// steps run once for the batch: one publication of every guild's route change (step 3,
// with every change waiting), one ACL DELUSER per node naming every user (step 4), one SCAN
// keys.AllNamespacesPattern pass per primary unlinking the keys whose hash tag
// (keys.ParseNamespaceKey) is a sandbox of the batch (step 4; a batch of one scans its own
// keys.NamespacePattern), each UNLINK on a cluster naming keys of one hash slot (keys.Slot: a
// cluster refuses more). Each SCAN step runs in the server (redis.go, scanStep), so that its
// answer stays small whatever names a sandbox's code gave its keys. Each sandbox then records
// its share. A run's Redis commands thus follow its guilds, users and keys, never its
// sandboxes times its keys.
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
// destroys) never work on the same sandbox. A run takes a claim: a row of teardown_claims
// (which no sandbox's role can reach, unlike an advisory lock) with a fencing
// token from a sequence and a lease (Options.ClaimLease, CLEANUP_CLAIM_LEASE), renewed every
// third of the lease while the run works (leases). It re-reads the sandbox after claiming it.
// Every record write and status change of the teardown goes through the Manager's *Claimed
// methods, which lock the claim row in the same transaction and write nothing unless the
// token is still current; before a step acting outside PostgreSQL (route cache, Redis user,
// keys, schema) the teardown checks the token too. A run whose lease expired and was taken
// over (it was frozen, or cut off from the database, for longer than the lease) thus stops
// before its next step, records nothing (no failure: RunReport.ClaimsLost, metric
// CleanupClaimsLost) and leaves the sandbox to the new holder, which resumes from the record.
// The reason a teardown recorded at its first step (mark_destroying) is kept on every resume.
// Within a run, Options.Concurrency workers run the per-sandbox steps at once; each holds at
// most one pooled connection at a time. A batched step checks every claim of the batch with
// the one statement that renews their leases.
//
// # Deadline
//
// A run stops taking sandboxes, and stops its sandboxes before their next step, when less
// than CLEANUP_DEADLINE_MARGIN remains before its context's deadline (the Lambda
// invocation's); what they did is recorded and the next run resumes them. It skips orphan
// reconciliation then, and reports how many it left (RunReport.LeftAtDeadline; the CleanupSandboxesRemaining metric counts
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
// the control plane first, and audits every removal. Roles and Redis users go first: an
// orphan's worker may still hold their passwords.
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
