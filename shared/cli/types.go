package cli

import (
	"encoding/json"
	"time"
)

// The types below are the API's JSON documents (docs/api.md, Objects), as the CLI reads them.
// They are the client's own copies: the CLI talks to the API over HTTP only and must not
// link the server. Tests decode every answer strictly into them, so a field the API adds or
// renames fails a test instead of silently vanishing from --json output. Shapes that belong
// to the cleanup service (the teardown record, cleanup runs, orphan reports) pass through as
// raw JSON.

// Sandbox is the API's Sandbox object.
type Sandbox struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Owner           string            `json:"owner"`
	Status          string            `json:"status"`
	StoredStatus    string            `json:"stored_status"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
	ExpiresAt       time.Time         `json:"expires_at"`
	DestroyedAt     *time.Time        `json:"destroyed_at"`
	TimeLeftSeconds int64             `json:"time_left_seconds"`
	Guilds          []string          `json:"guilds"`
	Metadata        map[string]string `json:"metadata"`
	Schema          string            `json:"schema"`
	Role            string            `json:"role"`
	Namespace       string            `json:"namespace"`
	Stream          string            `json:"stream"`
	Teardown        json.RawMessage   `json:"teardown"`
	CleanupAttempts int               `json:"cleanup_attempts"`
	LastError       string            `json:"last_error"`
	LastErrorCode   string            `json:"last_error_code,omitempty"`
}

// Display statuses the CLI treats specially.
const (
	statusRunning   = "running"
	statusExpired   = "expired"
	statusDestroyed = "destroyed"
)

// TimeLeft is the server's view of the time until expiry.
func (s *Sandbox) TimeLeft() time.Duration {
	return time.Duration(s.TimeLeftSeconds) * time.Second
}

// CreateRequest is the body of POST /v1/sandboxes.
type CreateRequest struct {
	Name     string            `json:"name"`
	TTL      string            `json:"ttl,omitempty"`
	Guilds   []string          `json:"guilds,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ListOptions are the query parameters of GET /v1/sandboxes.
type ListOptions struct {
	Owner            string
	All              bool
	Status           string
	IncludeDestroyed bool
	Limit            int
	Cursor           string
}

// ListPage is one page of GET /v1/sandboxes.
type ListPage struct {
	Sandboxes  []Sandbox `json:"sandboxes"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// ExtendResult answers POST /v1/sandboxes/{name}/extend.
type ExtendResult struct {
	Sandbox           Sandbox   `json:"sandbox"`
	PreviousExpiresAt time.Time `json:"previous_expires_at"`
	ExpiresAt         time.Time `json:"expires_at"`
	// ExtendedBySeconds is how far the expiry really moved: less than asked when Capped.
	ExtendedBySeconds int64     `json:"extended_by_seconds"`
	Capped            bool      `json:"capped"`
	MaxExpiresAt      time.Time `json:"max_expires_at"`
}

// DestroyResult answers DELETE /v1/sandboxes/{name}.
type DestroyResult struct {
	Sandbox       Sandbox `json:"sandbox"`
	Changed       bool    `json:"changed"`
	TeardownError string  `json:"teardown_error,omitempty"`
}

// Connection answers POST /v1/sandboxes/{name}/connect. It carries a password.
type Connection struct {
	SandboxID string            `json:"sandbox_id"`
	Name      string            `json:"name"`
	ExpiresAt time.Time         `json:"expires_at"`
	GuildIDs  []string          `json:"guild_ids"`
	Database  DatabaseAccess    `json:"database"`
	Redis     RedisAccess       `json:"redis"`
	Env       map[string]string `json:"env"`
}

// DatabaseAccess is the database part of a Connection.
type DatabaseAccess struct {
	Host              string    `json:"host"`
	Port              int       `json:"port"`
	Database          string    `json:"database"`
	Schema            string    `json:"schema"`
	Role              string    `json:"role"`
	Password          string    `json:"password"`
	PasswordExpiresAt time.Time `json:"password_expires_at"`
	SSLMode           string    `json:"sslmode"`
	URL               string    `json:"url"`
}

// RedisAccess is the Redis part of a Connection.
type RedisAccess struct {
	Addr string `json:"addr"`
	TLS  bool   `json:"tls"`
	// Access is "acl" (a Redis user of the sandbox's own) or "shared" (Warning says what that
	// means).
	Access        string `json:"access"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Warning       string `json:"warning,omitempty"`
	Namespace     string `json:"namespace"`
	Stream        string `json:"stream"`
	ConsumerGroup string `json:"consumer_group"`
}

// Health answers GET /v1/sandboxes/{name}/health; ServiceHealth (GET /health) has the same
// checks without the sandbox fields.
type Health struct {
	SandboxID string    `json:"sandbox_id"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Overall   string    `json:"overall"`
	CheckedAt time.Time `json:"checked_at"`
	Checks    []Check   `json:"checks"`
}

// Check is one health check with its latency.
type Check struct {
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	Detail    string  `json:"detail"`
}

// Route answers GET /v1/routes/{guild_id}.
type Route struct {
	GuildID     string        `json:"guild_id"`
	Destination string        `json:"destination"`
	Reason      string        `json:"reason"`
	Protected   bool          `json:"protected"`
	Mapping     *RouteMapping `json:"mapping"`
	Parked      *ParkedGuild  `json:"parked,omitempty"`
	Cache       RouteCache    `json:"cache"`
	Source      string        `json:"source"`
}

// ParkedGuild is a test guild whose sandbox was torn down: its events are dropped until it
// is released or mapped again.
type ParkedGuild struct {
	GuildID     string    `json:"guild_id"`
	SandboxID   string    `json:"sandbox_id"`
	SandboxName string    `json:"sandbox_name"`
	Owner       string    `json:"owner"`
	Reason      string    `json:"reason"`
	ParkedAt    time.Time `json:"parked_at"`
}

// ParkedGuilds answers GET /v1/guilds/parked.
type ParkedGuilds struct {
	Guilds []ParkedGuild `json:"guilds"`
}

// ReleasedGuild answers POST /v1/guilds/{guild_id}/release.
type ReleasedGuild struct {
	GuildID     string      `json:"guild_id"`
	Destination string      `json:"destination"`
	Released    ParkedGuild `json:"released"`
}

// RouteMapping is the sandbox a guild is mapped to.
type RouteMapping struct {
	SandboxID    string `json:"sandbox_id"`
	SandboxName  string `json:"sandbox_name"`
	Status       string `json:"status"`
	StoredStatus string `json:"stored_status"`
	Stream       string `json:"stream"`
}

// RouteCache is what the Redis route cache holds for a guild.
type RouteCache struct {
	Present     bool   `json:"present"`
	Value       string `json:"value,omitempty"`
	TTLSeconds  *int64 `json:"ttl_seconds,omitempty"`
	Destination string `json:"destination,omitempty"`
	Agrees      bool   `json:"agrees"`
	// Error says why the cache could not be read (the answer then comes from the database).
	Error string `json:"error,omitempty"`
}

// CleanupResult answers POST /v1/admin/cleanup. Both parts belong to the cleanup service.
type CleanupResult struct {
	Run     json.RawMessage `json:"run"`
	Orphans json.RawMessage `json:"orphans,omitempty"`
}

// StatusView is what `status` shows: the sandbox and its health checks (nil for a destroyed
// sandbox: there is nothing left to check).
type StatusView struct {
	Sandbox Sandbox `json:"sandbox"`
	Health  *Health `json:"health"`
}
