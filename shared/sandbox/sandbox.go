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
	// Teardown is the teardown record written by the cleanup service (DESIGN §5), kept as
	// raw JSON here so that the record's shape has one home: the cleanup package.
	Teardown        json.RawMessage
	CleanupAttempts int
	LastError       string
	ExpiryWarnedAt  *time.Time
	// Guilds are the guild ids mapped to the sandbox, sorted; filled by reads that say so.
	Guilds []string
}

// DisplayStatus is the status shown to people (see the package function).
func (s *Sandbox) DisplayStatus(now time.Time) string {
	return DisplayStatus(s.Status, s.ExpiresAt, now)
}

// TimeLeft is the time until expiry, zero when expired or not live.
func (s *Sandbox) TimeLeft(now time.Time) time.Duration {
	if !s.Status.Live() || !now.Before(s.ExpiresAt) {
		return 0
	}
	return s.ExpiresAt.Sub(now)
}

// Route is where the control plane says a guild's events go: the sandbox a guild is mapped
// to and that sandbox's status. A zero SandboxID means the guild is not mapped.
type Route struct {
	GuildID   string
	SandboxID string
	Status    Status
	// Protected is true for guilds that may never be mapped (production guilds).
	Protected bool
}

// Mapped reports whether the guild belongs to a sandbox.
func (r Route) Mapped() bool { return r.SandboxID != "" }

// Deliverable reports whether events for the guild go to the sandbox's stream.
func (r Route) Deliverable() bool { return r.Mapped() && r.Status == StatusRunning }
