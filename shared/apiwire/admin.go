package apiwire

import (
	"time"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The admin routes answer with the cleanup service's reports, and the cleanup function returns
// them: the types below are those reports, defined here once so that the API, the CLI and the
// cleanup function share one shape (shared/cleanup names them with aliases and gives the
// resource types and the teardown steps their values).

// CleanupRequest is the (optional) body of POST /v1/admin/cleanup.
type CleanupRequest struct {
	RemoveOrphans bool `json:"remove_orphans,omitempty"`
}

// CleanupResponse is the answer of POST /v1/admin/cleanup.
type CleanupResponse struct {
	Run RunReport `json:"run"`
	// Orphans is the orphan report and its removal, when the request asked to remove them.
	Orphans *OrphansResponse `json:"orphans,omitempty"`
}

// OrphansResponse is the answer of GET /v1/admin/orphans (Removal absent: it never
// removes), and the orphans part of a cleanup that removed them.
type OrphansResponse struct {
	Report  OrphanReport   `json:"report"`
	Removal *OrphanRemoval `json:"removal,omitempty"`
}

// RunReport is what one cleanup run did: the cleanup function's response, and the run part
// of POST /v1/admin/cleanup's answer.
type RunReport struct {
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	DryRun     bool      `json:"dry_run,omitempty"`

	ExpiryWarnings ExpiryReport `json:"expiry_warnings"`

	// CandidateCount is how many sandboxes were due when the run started.
	CandidateCount int `json:"candidate_count"`
	// Candidates lists them in a dry run.
	Candidates []Candidate `json:"candidates,omitempty"`
	// Destroyed lists the ids of the sandboxes this run tore down completely.
	Destroyed []string         `json:"destroyed"`
	Failed    []SandboxFailure `json:"failed"`
	// Skipped counts candidates another run or a destroy held, or that were no longer due.
	Skipped int `json:"skipped"`
	// ClaimsLost counts teardowns this run stopped because another run took their claim over
	// (their lease had expired); that run finishes them.
	ClaimsLost int `json:"claims_lost"`
	// LeftAtDeadline counts candidates not taken because the deadline was near.
	LeftAtDeadline int `json:"left_at_deadline"`
	// Remaining is what this run left for the next one: failed plus left at the deadline.
	Remaining int `json:"remaining"`

	Orphans        *OrphanReport  `json:"orphans,omitempty"`
	OrphansRemoved *OrphanRemoval `json:"orphans_removed,omitempty"`
	// OrphansSkipped is set when the deadline left no time for orphan reconciliation.
	OrphansSkipped bool `json:"orphans_skipped,omitempty"`
	// TransactionsEnded counts the sandbox sessions the run ended because their transaction
	// had been open too long (CLEANUP_MAX_SANDBOX_TRANSACTION).
	TransactionsEnded int `json:"transactions_ended,omitempty"`
	// RedisUsersSwitchedOff lists the sandboxes whose Redis user the run switched off because
	// it held more connections than a sandbox may (RedisConnectionLimit); their next connect
	// switches it on again.
	RedisUsersSwitchedOff []string `json:"redis_users_switched_off,omitempty"`
	// RedisUsersOverMemory lists the sandboxes whose Redis user the run switched off because
	// their keys held more memory than a sandbox may (RedisMemoryLimit); their next connect
	// switches it on again, and the next run switches it off again while they still do.
	RedisUsersOverMemory []string `json:"redis_users_over_memory,omitempty"`
	// DatabaseRolesSwitchedOff lists the sandboxes whose database role the run took the
	// password of, ending its sessions, because their schema took more disk than a sandbox
	// may (SchemaSizeLimit); their next connect sets a new one, and the next run takes it
	// again while the schema is still above.
	DatabaseRolesSwitchedOff []string `json:"database_roles_switched_off,omitempty"`

	ActiveSandboxes int `json:"active_sandboxes"`
	GuildMappings   int `json:"guild_mappings"`

	// Errors lists problems of the run itself (not of one sandbox); Run returns them joined.
	Errors []string `json:"errors,omitempty"`
}

// ExpiryReport is what one round of expiry warnings did.
type ExpiryReport struct {
	Sent   int `json:"sent"`
	Failed int `json:"failed"`
	// Skipped says the run left the warnings to the scheduled run (the one with the topic).
	Skipped bool `json:"skipped,omitempty"`
	// Due lists the warnings a dry run would send.
	Due []ExpiryWarning `json:"due,omitempty"`
}

// ExpiryWarning tells an owner that a sandbox is about to expire.
type ExpiryWarning struct {
	SandboxID string    `json:"sandbox_id"`
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Candidate is a sandbox due for teardown, as a dry run lists it. Reason is the teardown
// reason ("expired", "destroy_requested", ...).
type Candidate struct {
	ID     string         `json:"id"`
	Name   string         `json:"name"`
	Status sandbox.Status `json:"status"`
	Reason string         `json:"reason"`
}

// TeardownStep names one step of a sandbox's teardown; shared/cleanup lists them (Steps).
type TeardownStep string

// SandboxFailure is a teardown that stopped at a failed step in a run.
type SandboxFailure struct {
	SandboxID string `json:"sandbox_id"`
	// Step is the teardown step that failed; empty when the sandbox could not even be read.
	Step  TeardownStep `json:"step,omitempty"`
	Error string       `json:"error"`
}

// OrphanReport lists the resources named like a sandbox's that no live sandbox owns.
type OrphanReport struct {
	CheckedAt    time.Time `json:"checked_at"`
	GraceSeconds int64     `json:"grace_seconds"`
	Orphans      []Orphan  `json:"orphans"`
	// Young counts resources that look orphaned but became so within the grace period.
	Young int `json:"young"`
}

// Count returns how many orphans of type t the report holds.
func (r OrphanReport) Count(t ResourceType) int {
	n := 0
	for _, o := range r.Orphans {
		if o.Type == t {
			n++
		}
	}
	return n
}

// ResourceType is a kind of resource orphan reconciliation looks at: "schema", "role",
// "redis", "redis_user", "redis_usage", "mapping" or "route_cache" (shared/cleanup's
// ResourceTypes, in report order).
type ResourceType string

// Orphan is a resource named like a sandbox's whose sandbox does not exist or cannot use it.
type Orphan struct {
	Type ResourceType `json:"type"`
	// Name is the schema or role name, the namespace prefix (sandbox:{id}:), the Redis ACL
	// user's name, the usage hash's key, the guild id of a mapping, or the route cache key.
	Name      string `json:"name"`
	SandboxID string `json:"sandbox_id"`
	// SandboxStatus is the status of the sandbox it belongs to, empty when there is none.
	SandboxStatus sandbox.Status `json:"sandbox_status,omitempty"`
	// Since is when it became an orphan as far as the control plane knows: when its sandbox
	// was destroyed or left running, or when cleanup first saw it without a sandbox.
	Since time.Time `json:"since"`
	// Keys is how many keys of a Redis namespace were seen.
	Keys int `json:"keys,omitempty"`
	// Value is the route cache entry's value.
	Value string `json:"value,omitempty"`
}

// OrphanRemoval is what a removal of the reported orphans did.
type OrphanRemoval struct {
	Removed []Orphan `json:"removed"`
	// Kept lists reported orphans that were live or had changed by the time of removal.
	Kept   []Orphan        `json:"kept,omitempty"`
	Failed []OrphanFailure `json:"failed,omitempty"`
}

// OrphanFailure is an orphan that could not be removed.
type OrphanFailure struct {
	Orphan
	Error string `json:"error"`
}
