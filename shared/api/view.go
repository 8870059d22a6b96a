package api

import (
	"encoding/json"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

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

// viewFor renders a sandbox for the caller: owners and collaborators see recorded failures
// as stable messages with a code, admins as recorded; a collaborator sees its role.
func (h *Handler) viewFor(c caller, sb *sandbox.Sandbox) apiwire.Sandbox {
	v := render(sb, h.now(), c.admin)
	if role, ok := c.grants[sb.ID]; ok && sb.Owner != c.principal {
		v.SharedRole = role
	}
	return v
}

// render renders a sandbox at now; rawFailures keeps the text of recorded failures.
func render(sb *sandbox.Sandbox, now time.Time, rawFailures bool) apiwire.Sandbox {
	v := apiwire.Sandbox{
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
		Template:        sb.Template,
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

// Check statuses and overall health values (apiwire.Check, apiwire.SandboxHealth).
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"

	Healthy   = "healthy"
	Degraded  = "degraded"
	Unhealthy = "unhealthy"
)

// overall folds checks: any fail is unhealthy, any warn degraded.
func overall(checks []apiwire.Check) string {
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

// Destinations of a guild's events (sandbox.Route.Destination is the rule).
const (
	DestinationSandbox    = sandbox.DestinationSandbox
	DestinationProduction = sandbox.DestinationProduction
	DestinationDropped    = sandbox.DestinationDropped
	DestinationParked     = sandbox.DestinationParked
)

// parkedGuilds shows parked guilds as the API answers them.
func parkedGuilds(parked []controlplane.ParkedGuild) []apiwire.ParkedGuild {
	if parked == nil {
		return nil
	}
	out := make([]apiwire.ParkedGuild, len(parked))
	for i, p := range parked {
		out[i] = apiwire.ParkedGuild(p)
	}
	return out
}
