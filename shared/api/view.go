package api

import (
	"encoding/json"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Sandbox is a sandbox as the API shows it (docs/api.md, Sandbox object).
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
	Teardown        json.RawMessage   `json:"teardown"`
	CleanupAttempts int               `json:"cleanup_attempts"`
	// LastError is the last recorded failure: for admins the text as recorded, for everyone
	// else the stable message of its code (failureMessages), never store errors.
	LastError string `json:"last_error"`
	// LastErrorCode classifies LastError (sandbox.FailureCodes); absent when there is none.
	LastErrorCode sandbox.Code `json:"last_error_code,omitempty"`
}

// Recorded failures (last_error, the teardown record's last_failure) are raw error text,
// written by provisioning and cleanup: addresses, SQL, SQLSTATEs. Owners see a stable message
// per code instead; admins see the text as well, and operators find it in the logs and the
// audit log.
var failureMessages = map[sandbox.Code]string{
	sandbox.CodeUnavailable: "a store (PostgreSQL or Redis) could not be reached or could not serve at the time",
	sandbox.CodeLockTimeout: "another session held a lock that was needed, and waiting for it timed out",
	sandbox.CodeInternal:    "an unexpected error; the operators can find the details in the logs and the sandbox's audit log",
}

// failureCode classifies a recorded failure's text; "" for none.
func failureCode(text string) sandbox.Code {
	switch {
	case text == "":
		return ""
	case clients.IsLockTimeoutText(text):
		return sandbox.CodeLockTimeout
	case clients.IsUnavailableText(text):
		return sandbox.CodeUnavailable
	}
	return sandbox.CodeInternal
}

// viewFor renders a sandbox for the caller: owners see recorded failures as stable messages
// with a code, admins as recorded.
func (h *Handler) viewFor(c caller, sb *sandbox.Sandbox) *Sandbox {
	return render(sb, h.now(), c.admin)
}

// render renders a sandbox at now; rawFailures keeps the text of recorded failures.
func render(sb *sandbox.Sandbox, now time.Time, rawFailures bool) *Sandbox {
	v := &Sandbox{
		ID:              sb.ID,
		Name:            sb.Name,
		Owner:           sb.Owner,
		Status:          sb.DisplayStatus(now),
		StoredStatus:    sb.Status,
		CreatedAt:       sb.CreatedAt.UTC(),
		UpdatedAt:       sb.UpdatedAt.UTC(),
		ExpiresAt:       sb.ExpiresAt.UTC(),
		TimeLeftSeconds: int64(sb.TimeLeft(now) / time.Second),
		Guilds:          sb.Guilds,
		Metadata:        sb.Metadata,
		Schema:          sb.SchemaName,
		Role:            sb.DBRole,
		Namespace:       keys.Namespace(sb.ID),
		Stream:          keys.EventStream(sb.ID),
		CleanupAttempts: sb.CleanupAttempts,
		LastError:       sb.LastError,
		LastErrorCode:   failureCode(sb.LastError),
	}
	if !rawFailures && v.LastErrorCode != "" {
		v.LastError = failureMessages[v.LastErrorCode]
	}
	if sb.DestroyedAt != nil {
		t := sb.DestroyedAt.UTC()
		v.DestroyedAt = &t
	}
	if len(sb.Teardown) > 0 && json.Valid(sb.Teardown) {
		v.Teardown = teardownView(sb.Teardown, rawFailures)
	}
	if v.Guilds == nil {
		v.Guilds = []string{}
	}
	if v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	return v
}

// teardownView is the stored teardown record with its last failure classified: a "code"
// member added and, unless raw, the "error" text replaced by the code's stable message. The
// rest of the record is the cleanup service's, shown as it is.
func teardownView(record json.RawMessage, raw bool) json.RawMessage {
	var members map[string]json.RawMessage
	if json.Unmarshal(record, &members) != nil {
		return record // not an object: it carries no failure to classify
	}
	lf, ok := members["last_failure"]
	if !ok || string(lf) == "null" {
		return record
	}
	var failure map[string]json.RawMessage
	var text string
	if json.Unmarshal(lf, &failure) != nil || failure == nil || json.Unmarshal(failure["error"], &text) != nil {
		// A shape this API does not know: its text cannot be told safe.
		failure, text = map[string]json.RawMessage{}, "unknown"
		raw = false
	}
	code := failureCode(text)
	if code == "" {
		code = sandbox.CodeInternal
	}
	failure["code"], _ = json.Marshal(code)
	if !raw {
		failure["error"], _ = json.Marshal(failureMessages[code])
	}
	members["last_failure"], _ = json.Marshal(failure)
	out, err := json.Marshal(members)
	if err != nil {
		return json.RawMessage(`{}`)
	}
	return out
}

// ListResponse is the answer of GET /v1/sandboxes.
type ListResponse struct {
	Sandboxes  []*Sandbox `json:"sandboxes"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// ExtendResponse is the answer of POST /v1/sandboxes/{name}/extend: the new expiry and by how
// much it really moved, which is less than asked when the maximum lifetime capped it.
type ExtendResponse struct {
	Sandbox           *Sandbox  `json:"sandbox"`
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
	Sandbox *Sandbox `json:"sandbox"`
	// Changed is true when this request moved the sandbox to destroying.
	Changed bool `json:"changed"`
	// TeardownError says, caller-safe, why the teardown of this request stopped.
	TeardownError string `json:"teardown_error,omitempty"`
}

// ConnectResponse is the answer of POST /v1/sandboxes/{name}/connect.
type ConnectResponse struct {
	SandboxID string            `json:"sandbox_id"`
	Name      string            `json:"name"`
	ExpiresAt time.Time         `json:"expires_at"`
	GuildIDs  []string          `json:"guild_ids"`
	Database  ConnectDatabase   `json:"database"`
	Redis     ConnectRedis      `json:"redis"`
	Env       map[string]string `json:"env"`
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

// Check statuses and overall health values.
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"

	Healthy   = "healthy"
	Degraded  = "degraded"
	Unhealthy = "unhealthy"
)

// Check is one health check with its latency.
type Check struct {
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	Detail    string  `json:"detail"`
}

// SandboxHealth is the answer of GET /v1/sandboxes/{name}/health.
type SandboxHealth struct {
	SandboxID string    `json:"sandbox_id"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Overall   string    `json:"overall"`
	CheckedAt time.Time `json:"checked_at"`
	Checks    []Check   `json:"checks"`
}

// ServiceHealth is the answer of GET /health.
type ServiceHealth struct {
	Overall   string    `json:"overall"`
	CheckedAt time.Time `json:"checked_at"`
	Checks    []Check   `json:"checks"`
}

// overall folds checks: any fail is unhealthy, any warn degraded.
func overall(checks []Check) string {
	out := Healthy
	for _, c := range checks {
		switch c.Status {
		case CheckFail:
			return Unhealthy
		case CheckWarn:
			out = Degraded
		}
	}
	return out
}

// RouteExplanation is the answer of GET /v1/routes/{guild_id}.
type RouteExplanation struct {
	GuildID     string        `json:"guild_id"`
	Destination string        `json:"destination"`
	Reason      string        `json:"reason"`
	Protected   bool          `json:"protected"`
	Mapping     *RouteMapping `json:"mapping"`
	// Parked is the parking of a parked test guild.
	Parked *controlplane.ParkedGuild `json:"parked,omitempty"`
	Cache  RouteCacheRow             `json:"cache"`
	Source string                    `json:"source"`
}

// RouteMapping is the sandbox a guild is mapped to.
type RouteMapping struct {
	SandboxID    string         `json:"sandbox_id"`
	SandboxName  string         `json:"sandbox_name"`
	Status       string         `json:"status"`
	StoredStatus sandbox.Status `json:"stored_status"`
	Stream       string         `json:"stream"`
}

// RouteCacheRow is a guild's route cache entry.
type RouteCacheRow struct {
	Present     bool   `json:"present"`
	Value       string `json:"value,omitempty"`
	TTLSeconds  *int64 `json:"ttl_seconds,omitempty"`
	Destination string `json:"destination,omitempty"`
	Agrees      bool   `json:"agrees"`
	Error       string `json:"error,omitempty"`
}

// Destinations of a guild's events (sandbox.Route.Destination is the rule).
const (
	DestinationSandbox    = sandbox.DestinationSandbox
	DestinationProduction = sandbox.DestinationProduction
	DestinationDropped    = sandbox.DestinationDropped
	DestinationParked     = sandbox.DestinationParked
)

// ParkedGuilds answers GET /v1/guilds/parked.
type ParkedGuilds struct {
	Guilds []controlplane.ParkedGuild `json:"guilds"`
}

// ReleasedGuild answers POST /v1/guilds/{guild_id}/release.
type ReleasedGuild struct {
	GuildID     string `json:"guild_id"`
	Destination string `json:"destination"`
	// Released is the parking that was lifted.
	Released controlplane.ParkedGuild `json:"released"`
}

// AdminCleanupResponse is the answer of POST /v1/admin/cleanup.
type AdminCleanupResponse struct {
	Run     any `json:"run"`
	Orphans any `json:"orphans,omitempty"`
}
