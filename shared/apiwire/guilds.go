package apiwire

import (
	"time"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// RouteExplanation is the answer of GET /v1/routes/{guild_id}: where a guild's events go now,
// and why.
type RouteExplanation struct {
	GuildID     string        `json:"guild_id"`
	Destination string        `json:"destination"`
	Reason      string        `json:"reason"`
	Protected   bool          `json:"protected"`
	Mapping     *RouteMapping `json:"mapping"`
	// Parked is the parking of a parked test guild.
	Parked *ParkedGuild    `json:"parked,omitempty"`
	Cache  RouteCacheEntry `json:"cache"`
	Source string          `json:"source"`
}

// RouteMapping is the sandbox a guild is mapped to.
type RouteMapping struct {
	SandboxID    string         `json:"sandbox_id"`
	SandboxName  string         `json:"sandbox_name"`
	Status       string         `json:"status"`
	StoredStatus sandbox.Status `json:"stored_status"`
	Stream       string         `json:"stream"`
}

// RouteCacheEntry is what the Redis route cache holds for a guild.
type RouteCacheEntry struct {
	Present     bool   `json:"present"`
	Value       string `json:"value,omitempty"`
	TTLSeconds  *int64 `json:"ttl_seconds,omitempty"`
	Destination string `json:"destination,omitempty"`
	Agrees      bool   `json:"agrees"`
	// Error says why the cache could not be read (the answer then comes from the database).
	Error string `json:"error,omitempty"`
}

// ParkedGuild is a test guild whose sandbox was torn down: its events are dropped until it
// is released or mapped again. Its fields are controlplane.ParkedGuild's, in the same order,
// so that the API converts one into the other.
type ParkedGuild struct {
	GuildID     string    `json:"guild_id"`
	SandboxID   string    `json:"sandbox_id"`
	SandboxName string    `json:"sandbox_name"`
	Owner       string    `json:"owner"`
	Reason      string    `json:"reason"`
	ParkedAt    time.Time `json:"parked_at"`
}

// ParkedGuilds is the answer of GET /v1/guilds/parked.
type ParkedGuilds struct {
	Guilds []ParkedGuild `json:"guilds"`
}

// ReleasedGuild is the answer of POST /v1/guilds/{guild_id}/release.
type ReleasedGuild struct {
	GuildID     string `json:"guild_id"`
	Destination string `json:"destination"`
	// Released is the parking that was lifted.
	Released ParkedGuild `json:"released"`
}

// TestGuild is a guild an admin registered as one of the platform's test guilds: the only
// guilds a sandbox may map (docs/api.md, "Test guilds").
type TestGuild struct {
	GuildID      string    `json:"guild_id"`
	Note         string    `json:"note"`
	RegisteredAt time.Time `json:"registered_at"`
	RegisteredBy string    `json:"registered_by"`
	// State is free (no sandbox has it), mapped, parked, or protected (the deployment's
	// configuration protects it since it was registered: no sandbox may map it).
	State string `json:"state"`
}

// TestGuilds is the answer of GET /v1/test-guilds.
type TestGuilds struct {
	Guilds []TestGuild `json:"guilds"`
}

// RegisterTestGuildRequest is the optional body of PUT /v1/admin/test-guilds/{guild_id}.
type RegisterTestGuildRequest struct {
	Note string `json:"note"`
}

// ProtectedGuild is a production guild that no sandbox may map and whose events go to
// production whatever else is recorded (docs/api.md, "Protected guilds").
type ProtectedGuild struct {
	GuildID string `json:"guild_id"`
	// Reason, ProtectedAt and ProtectedBy are those of the protection an admin recorded;
	// absent for a guild only the deployment's configuration protects.
	Reason      string    `json:"reason,omitempty"`
	ProtectedAt time.Time `json:"protected_at,omitzero"`
	ProtectedBy string    `json:"protected_by,omitempty"`
	// Configured: SANDBOX_PROTECTED_GUILDS protects the guild, and only a deployment can
	// take that away.
	Configured bool `json:"configured"`
}

// ProtectedGuilds is the answer of GET /v1/admin/protected-guilds.
type ProtectedGuilds struct {
	Guilds []ProtectedGuild `json:"guilds"`
}

// ProtectGuildRequest is the optional body of PUT /v1/admin/protected-guilds/{guild_id}.
type ProtectGuildRequest struct {
	Reason string `json:"reason"`
}
