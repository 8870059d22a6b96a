package apiwire

import (
	"encoding/json"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Sandbox is the Sandbox object (docs/api.md): a sandbox as the API shows it.
type Sandbox struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Owner           string            `json:"owner"`
	Status          string            `json:"status"`
	StoredStatus    sandbox.Status    `json:"stored_status"`
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
	// Teardown is the teardown record as the cleanup service stored it (its last_failure
	// classified): clients show it, they do not parse it.
	Teardown        json.RawMessage `json:"teardown"`
	CleanupAttempts int             `json:"cleanup_attempts"`
	// LastError is the last recorded failure: for admins the text as recorded, for everyone
	// else the stable message of its code, never store errors.
	LastError string `json:"last_error"`
	// LastErrorCode classifies LastError (sandbox.FailureCodes); absent when there is none.
	LastErrorCode sandbox.Code `json:"last_error_code,omitempty"`
	// SharedRole is the caller's role when the sandbox is shared with it (viewer, developer);
	// absent for its owner and for everyone else.
	SharedRole sandbox.ShareRole `json:"shared_role,omitempty"`
	// Template names the template the sandbox was created from ("default": the configured one).
	Template string `json:"template"`
	// Usage is what the sandbox used (usage.go): in the answers of get and list, for a
	// sandbox that is not destroyed; absent elsewhere.
	Usage *Usage `json:"usage,omitempty"`
}

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
	// Template names the template to clone (GET /v1/templates); absent: "default".
	Template string `json:"template,omitempty"`
}

// ListResponse is the answer of GET /v1/sandboxes: one page, NextCursor absent on the last.
type ListResponse struct {
	Sandboxes  []Sandbox `json:"sandboxes"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// ExtendRequest is the body of POST /v1/sandboxes/{name}/extend.
type ExtendRequest struct {
	By string `json:"by"`
}

// ExtendResponse is the answer of POST /v1/sandboxes/{name}/extend: the new expiry and by how
// much it really moved, which is less than asked when the maximum lifetime capped it.
type ExtendResponse struct {
	Sandbox           Sandbox   `json:"sandbox"`
	PreviousExpiresAt time.Time `json:"previous_expires_at"`
	ExpiresAt         time.Time `json:"expires_at"`
	// ExtendedBySeconds is ExpiresAt - PreviousExpiresAt in whole seconds.
	ExtendedBySeconds int64 `json:"extended_by_seconds"`
	// Capped reports that ExpiresAt is MaxExpiresAt (created_at + SANDBOX_MAX_LIFETIME),
	// reached before the extension asked for.
	Capped       bool      `json:"capped"`
	MaxExpiresAt time.Time `json:"max_expires_at"`
}

// DestroyResponse is the answer of DELETE /v1/sandboxes/{name}.
type DestroyResponse struct {
	Sandbox Sandbox `json:"sandbox"`
	// Changed is true when this request moved the sandbox to destroying.
	Changed bool `json:"changed"`
	// TeardownError says, caller-safe, why the teardown of this request stopped.
	TeardownError string `json:"teardown_error,omitempty"`
}

// ConnectRequest is the optional body of POST /v1/sandboxes/{name}/connect.
type ConnectRequest struct {
	// EndSessions also ends every session the previous credentials opened: the role's
	// database sessions and the connections of the sandbox's Redis user. A rotation alone
	// leaves them open.
	EndSessions bool `json:"end_sessions,omitempty"`
}

// SessionsEnded counts the sessions of a sandbox's credentials that were ended.
type SessionsEnded struct {
	DatabaseSessions int `json:"database_sessions"`
	// RedisConnections counts them on every node (0 in shared Redis mode: no Redis user).
	RedisConnections int `json:"redis_connections"`
}

// ConnectResponse is the answer of POST /v1/sandboxes/{name}/connect. It carries passwords.
type ConnectResponse struct {
	SandboxID string            `json:"sandbox_id"`
	Name      string            `json:"name"`
	ExpiresAt time.Time         `json:"expires_at"`
	GuildIDs  []string          `json:"guild_ids"`
	Database  ConnectDatabase   `json:"database"`
	Redis     ConnectRedis      `json:"redis"`
	Env       map[string]string `json:"env"`
	// SessionsEnded is set when the request asked for end_sessions.
	SessionsEnded *SessionsEnded `json:"sessions_ended,omitempty"`
}

// ConnectDatabase is how a worker reaches its schema.
type ConnectDatabase struct {
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

// ConnectRedis is how a worker reaches its namespace and event stream.
type ConnectRedis struct {
	Addr string `json:"addr"`
	TLS  bool   `json:"tls"`
	// Cluster says Addr is a node of a Redis Cluster (REDIS_CLUSTER): a worker needs a
	// cluster client, which finds the other nodes from that one.
	Cluster bool `json:"cluster"`
	// Access is "acl" (Username and Password are the sandbox's own Redis user, which reaches
	// its namespace alone) or "shared" (no credentials: the namespace is a convention only,
	// and Warning says so).
	Access        string `json:"access"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Warning       string `json:"warning,omitempty"`
	Namespace     string `json:"namespace"`
	Stream        string `json:"stream"`
	ConsumerGroup string `json:"consumer_group"`
}
