package config

import "time"

// Defaults of the teardown settings (Teardown). This is their one home: the cleanup package
// falls back to them, and docs/configuration.md states them (a docscheck test compares).
const (
	DefaultStuckCreatingAfter = 30 * time.Minute
	DefaultOrphanGrace        = time.Hour
	DefaultDropLockTimeout    = 5 * time.Second
	// DefaultClaimLease is how long a teardown claim lasts unless renewed. A run renews its
	// claims every third of it, concurrently with its steps, so the lease only has to outlast
	// the longest stall of a live run (the longest step: the keyspace pass over a million keys
	// takes well under a minute, a schema drop waits at most the drop lock timeout); a run
	// that crashed or was frozen at its deadline loses its claims after it, to the next run.
	DefaultClaimLease = 5 * time.Minute
)

// Teardown is how sandboxes are torn down, read the same way (LoadTeardown) by every
// function that tears down: the api (destroy, the compensation of a failed creation, the
// admin runs) and cleanup (the scheduled runs). Terraform passes the same values to both.
type Teardown struct {
	// StuckCreatingAfter (CLEANUP_STUCK_CREATING_AFTER): a creation whose lease is still held
	// is reclaimed after this long anyway (a backstop).
	StuckCreatingAfter time.Duration
	// OrphanGrace (CLEANUP_ORPHAN_GRACE): younger orphans are not reported or removed.
	OrphanGrace time.Duration
	// DropLockTimeout (CLEANUP_DROP_LOCK_TIMEOUT) bounds the wait for locks when dropping a
	// sandbox's schema and role: a busy schema fails the step instead of hanging the run.
	DropLockTimeout time.Duration
	// ClaimLease (CLEANUP_CLAIM_LEASE): how long a teardown claim lasts unless renewed.
	ClaimLease time.Duration
}

// LoadTeardown reads the teardown settings; problems are reported with the Reader's others.
func LoadTeardown(r *Reader) Teardown {
	t := Teardown{
		StuckCreatingAfter: r.Duration("CLEANUP_STUCK_CREATING_AFTER", DefaultStuckCreatingAfter),
		OrphanGrace:        r.Duration("CLEANUP_ORPHAN_GRACE", DefaultOrphanGrace),
		DropLockTimeout:    r.Duration("CLEANUP_DROP_LOCK_TIMEOUT", DefaultDropLockTimeout),
		ClaimLease:         r.Duration("CLEANUP_CLAIM_LEASE", DefaultClaimLease),
	}
	r.Check(t.StuckCreatingAfter >= time.Minute, "CLEANUP_STUCK_CREATING_AFTER",
		"must be at least 1m: a creation takes seconds, but reclaiming one in progress would race it")
	r.Check(t.OrphanGrace >= time.Minute, "CLEANUP_ORPHAN_GRACE",
		"must be at least 1m: a creation in progress looks like an orphan for a moment")
	r.Check(t.DropLockTimeout >= 100*time.Millisecond && t.DropLockTimeout <= time.Minute, "CLEANUP_DROP_LOCK_TIMEOUT",
		"must lie between 100ms and 1m")
	r.Check(t.ClaimLease >= time.Minute && t.ClaimLease <= time.Hour, "CLEANUP_CLAIM_LEASE",
		"must lie between 1m and 1h: it must outlast the longest step of a live run, and a dead run's sandboxes wait for it")
	return t
}
