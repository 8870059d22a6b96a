package apiwire

import (
	"time"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// ShareRequest is the body of POST /v1/sandboxes/{name}/shares: let a principal act on the
// sandbox with a role (viewer when omitted), or change the role of its share.
type ShareRequest struct {
	Principal string            `json:"principal"`
	Role      sandbox.ShareRole `json:"role,omitempty"`
}

// Share is one principal's grant on a sandbox.
type Share struct {
	// Principal is the canonical owner key the share lets in (API_OWNER_KEY applied).
	Principal string            `json:"principal"`
	Role      sandbox.ShareRole `json:"role"`
	CreatedAt time.Time         `json:"created_at"`
	CreatedBy string            `json:"created_by"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// ShareResponse is the answer of POST /v1/sandboxes/{name}/shares.
type ShareResponse struct {
	Sandbox   string `json:"sandbox"`
	SandboxID string `json:"sandbox_id"`
	Share     Share  `json:"share"`
	// Changed is false when the principal already had that role.
	Changed bool `json:"changed"`
	// PreviousRole is the role the share had before; absent for a new share.
	PreviousRole sandbox.ShareRole `json:"previous_role,omitempty"`
	// Revoked and Warning: a developer made a viewer loses the credentials it was handed,
	// as an unshare does (UnshareResponse).
	Revoked *Revocation `json:"revoked,omitempty"`
	Warning string      `json:"warning,omitempty"`
}

// UnshareResponse is the answer of DELETE /v1/sandboxes/{name}/shares: the share removed.
type UnshareResponse struct {
	Sandbox   string `json:"sandbox"`
	SandboxID string `json:"sandbox_id"`
	Removed   Share  `json:"removed"`
	// Revoked is set when the principal had connected as a developer: the sandbox's
	// credentials were replaced by ones nobody was handed and every session was ended, the
	// owner's workers' included (they connect again).
	Revoked *Revocation `json:"revoked,omitempty"`
	// Warning says why credentials the principal was handed could not be revoked, and what
	// does it.
	Warning string `json:"warning,omitempty"`
}

// Revocation is what ending a developer's access did to the sandbox's credentials.
type Revocation struct {
	// Rotated names the credentials replaced ("database_password", "redis_password").
	Rotated       []string      `json:"rotated"`
	SessionsEnded SessionsEnded `json:"sessions_ended"`
}

// SharesResponse is the answer of GET /v1/sandboxes/{name}/shares: who besides its owner may
// act on the sandbox, oldest share first.
type SharesResponse struct {
	Sandbox   string  `json:"sandbox"`
	SandboxID string  `json:"sandbox_id"`
	Owner     string  `json:"owner"`
	Shares    []Share `json:"shares"`
}

// RewindRequest is the body of POST /v1/sandboxes/{name}/events/rewind.
type RewindRequest struct {
	// To is an entry id (the group re-reads the entries after it), an RFC 3339 time (the
	// entries appended at or after it) or a duration (that long ago).
	To string `json:"to"`
}

// RewindResponse is the answer of POST /v1/sandboxes/{name}/events/rewind: where the
// sandbox's consumer group was, where it is now, and how far back the stream goes.
type RewindResponse struct {
	Stream string `json:"stream"`
	Group  string `json:"group"`
	// To is the target as given.
	To string `json:"to"`
	// PreviousID is the last entry the group had delivered before.
	PreviousID string `json:"previous_id"`
	// Position is the id the group is set to: its workers' next XREADGROUP ... > delivers
	// every entry after it.
	Position string `json:"position"`
	// Clamped: the target is older than the oldest entry the stream holds, and entries were
	// trimmed: the group starts again at FirstID, and what came before it is gone.
	Clamped bool `json:"clamped"`
	// FirstID is the oldest entry the stream holds: how far back a rewind can go. Absent
	// when the stream is empty; Earliest is its time.
	FirstID  string     `json:"first_id,omitempty"`
	Earliest *time.Time `json:"earliest,omitempty"`
	// Length is how many entries the stream holds.
	Length int64 `json:"length"`
	// Pending is the group's entries delivered and not acknowledged, which a rewind leaves
	// pending.
	Pending int64 `json:"pending"`
}
