package sandbox

import (
	"encoding/json"
	"time"
)

// Sandbox is one sandbox as the control plane stores it.
type Sandbox struct {
	ID         string
	Name       string
	Owner      string
	Status     Status
	SchemaName string
	DBRole     string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ExpiresAt  time.Time
	// DestroyedAt is set exactly when Status is destroyed.
	DestroyedAt *time.Time
	Metadata    map[string]string
	// Teardown is the teardown record written by the cleanup service
	// (docs/architecture.md, "Cleanup"), kept as raw JSON here so that the record's shape has
	// one home: the cleanup package.
	Teardown        json.RawMessage
	CleanupAttempts int
	LastError       string
	ExpiryWarnedAt  *time.Time
	// Guilds are the guild ids mapped to the sandbox, sorted; filled by reads that say so.
	Guilds []string
	// Template names the template it was created from (DefaultTemplate: the configured one).
	Template string
}

// DisplayStatus is the status shown to people (see the package function).
func (s *Sandbox) DisplayStatus(now time.Time) string {
	return DisplayStatus(s.Status, s.ExpiresAt, now)
}

// CheckRunning is nil when the sandbox is running and has not expired at now, else
// invalid_transition, saying that what needs it.
func (s *Sandbox) CheckRunning(now time.Time, what string) error {
	if status := s.DisplayStatus(now); status != string(StatusRunning) {
		return Errorf(CodeInvalidTransition, "sandbox %q is %s; %s needs a running sandbox that has not expired", s.Name, status, what)
	}
	return nil
}

// TimeLeft is the time until expiry, zero when expired or not live.
func (s *Sandbox) TimeLeft(now time.Time) time.Duration {
	if !s.Status.Live() || !now.Before(s.ExpiresAt) {
		return 0
	}
	return s.ExpiresAt.Sub(now)
}

// Route is where the control plane says a guild's events go: the sandbox a guild is mapped
// to, that sandbox's status and expiry, whether the guild is protected, and whether it is
// parked. A zero SandboxID means the guild is not mapped.
type Route struct {
	GuildID   string
	SandboxID string
	Status    Status
	// ExpiresAt is the mapped sandbox's expiry: past it, events are not delivered even while
	// the sandbox is still running (its teardown is due).
	ExpiresAt time.Time
	// Protected is true for guilds that may never be mapped (production guilds).
	Protected bool
	// ParkedBy is the sandbox that last owned a parked guild: a test guild whose sandbox was
	// torn down. Its events are dropped, never sent to production, until it is released or
	// mapped again. ParkedAt is when it was parked.
	ParkedBy string
	ParkedAt time.Time
}

// Mapped reports whether the guild belongs to a sandbox.
func (r Route) Mapped() bool { return r.SandboxID != "" }

// Parked reports whether the guild is a parked test guild.
func (r Route) Parked() bool { return !r.Mapped() && r.ParkedBy != "" }

// Expired reports whether the guild is mapped to a sandbox whose expiry has passed.
func (r Route) Expired(now time.Time) bool { return r.Mapped() && !now.Before(r.ExpiresAt) }

// Where a guild's events go (Route.Destination). The values are the router's Destination
// metric dimension and the API's destination field.
const (
	DestinationSandbox    = "sandbox"
	DestinationProduction = "production"
	// DestinationDropped: mapped to a sandbox that is not running (creating, destroying,
	// failed): no worker reads them, and a test guild never reaches production.
	DestinationDropped = "dropped"
	// DestinationParked: a parked test guild (its sandbox was torn down), or a guild of a
	// running sandbox past its expiry.
	DestinationParked = "parked"
)

// Destination is where the router sends the guild's events at now, the one statement of the
// routing rule: protected guilds to production, whatever a mapping says; a running sandbox
// before its expiry to its stream; a running sandbox past its expiry and a parked guild
// nowhere (parked); a sandbox in any other status nowhere (dropped); any other guild to
// production.
func (r Route) Destination(now time.Time) string {
	switch {
	case r.Protected:
		return DestinationProduction
	case r.Deliverable(now):
		return DestinationSandbox
	case r.Mapped() && r.Status == StatusRunning, r.Parked():
		return DestinationParked
	case r.Mapped():
		return DestinationDropped
	default:
		return DestinationProduction
	}
}

// Deliverable reports whether events for the guild go to the sandbox's stream at now: the
// sandbox runs and has not expired.
func (r Route) Deliverable(now time.Time) bool {
	return r.Mapped() && r.Status == StatusRunning && !r.Expired(now)
}
