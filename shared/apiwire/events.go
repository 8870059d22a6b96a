package apiwire

import (
	"encoding/json"
	"time"
)

// EventsPage is the answer of GET /v1/sandboxes/{name}/events: the entries of the sandbox's
// event stream after a position, oldest first, at most the page's limit.
type EventsPage struct {
	// Stream is the sandbox's stream key.
	Stream string `json:"stream"`
	// Status is the sandbox's status (as Sandbox.Status shows it): a follower stops once it
	// is destroyed, since no event arrives any more.
	Status string `json:"status"`
	// Events are the entries after the position asked for, oldest first.
	Events []Event `json:"events"`
	// Next is the position to ask for next: the last entry's id, or when there was none the
	// position asked for (or the stream's last id, when that is later). A follower passes it
	// as `after`.
	Next string `json:"next"`
	// More is whether entries after Next exist already (the page stopped at its limit or
	// size): a follower asks again at once rather than waiting.
	More bool `json:"more"`
	// Length is how many entries the stream holds now.
	Length int64 `json:"length"`
	// FirstID is the oldest entry the stream still holds ("" when empty): entries before it
	// were trimmed (ROUTER_STREAM_MAXLEN) and cannot be read any more.
	FirstID string `json:"first_id,omitempty"`
	// Trimmed is whether the position asked for is before the oldest entry the stream holds
	// while the stream lost entries (trimmed by ROUTER_STREAM_MAXLEN, or deleted by a worker
	// with XDEL): entries after the position may be gone, and the page starts at FirstID.
	Trimmed bool `json:"trimmed"`
}

// EventFields are the fields of a stream entry that every answer carrying entries shows
// (Event, ConsumedEntry), bounded the same way: the entry's own, as the router appended them.
type EventFields struct {
	// ID is the stream entry id (milliseconds-sequence).
	ID string `json:"id"`
	// Time is when the router appended it (from the entry id).
	Time time.Time `json:"time"`
	// ReceivedAt is when the ingress queue accepted the event (the entry's received_at).
	ReceivedAt *time.Time `json:"received_at,omitempty"`
	// Type is the gateway dispatch type, e.g. MESSAGE_CREATE.
	Type    string `json:"type"`
	GuildID string `json:"guild_id,omitempty"`
	// Seq is the gateway sequence number, when the payload had one.
	Seq *int64 `json:"seq,omitempty"`
	// MessageID is the ingress SQS message id.
	MessageID string `json:"message_id"`
	// GroupID is the ingress message's FIFO message group (FIFO ingress queues only).
	GroupID string `json:"group_id,omitempty"`
	// Size is the payload's length in bytes.
	Size int `json:"size"`
}

// Event is one entry of a sandbox's event stream, as the router appended it.
type Event struct {
	EventFields
	// Payload is the raw gateway payload, as received; only with include_payload=true.
	Payload json.RawMessage `json:"payload,omitempty"`
	// PayloadOmitted is set when the payload was asked for but is left out: it is not JSON,
	// or it alone is larger than a page's payload budget (only an entry a worker wrote
	// itself can be either).
	PayloadOmitted bool `json:"payload_omitted,omitempty"`
}
