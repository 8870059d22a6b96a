package apiwire

// ConsumeReadRequest is the body of POST /v1/sandboxes/{name}/events/read: the next entries
// of the sandbox's stream for one consumer of a consumer group (XREADGROUP).
type ConsumeReadRequest struct {
	// Group is the consumer group; "" is the sandbox's own group, workers. A group that does
	// not exist is created, at the start of the stream, on a running sandbox.
	Group string `json:"group,omitempty"`
	// Consumer names the reader within the group; Redis creates it on first use.
	Consumer string `json:"consumer"`
	// Count bounds the entries of the answer (1 to 100; default 10).
	Count *int `json:"count,omitempty"`
	// Wait is how long to wait for new entries when there are none (a duration, at most
	// 20s); absent: answer at once. New entries only: not with After.
	Wait string `json:"wait,omitempty"`
	// After, when set, reads the consumer's own pending entries (delivered to it, never
	// acknowledged) after that entry id instead of new ones; "0-0" starts at the first.
	After string `json:"after,omitempty"`
}

// ConsumeClaimRequest is the body of POST /v1/sandboxes/{name}/events/claim: take over the
// entries pending on other consumers of a group for longer than MinIdle (XAUTOCLAIM).
type ConsumeClaimRequest struct {
	Group    string `json:"group,omitempty"`
	Consumer string `json:"consumer"`
	// MinIdle is how long an entry must have been pending, unacknowledged, to be taken over
	// (a duration, 1s to 1d; default 1m).
	MinIdle string `json:"min_idle,omitempty"`
	// Start is where the scan of the group's pending entries starts (an entry id; default
	// 0-0); the answer's Next continues it.
	Start string `json:"start,omitempty"`
	// Count bounds the entries claimed by one call (1 to 100; default 10).
	Count *int `json:"count,omitempty"`
}

// ConsumeAckRequest is the body of POST /v1/sandboxes/{name}/events/ack (XACK).
type ConsumeAckRequest struct {
	Group string `json:"group,omitempty"`
	// IDs are the entry ids to acknowledge: 1 to 500.
	IDs []string `json:"ids"`
}

// ConsumeAckResponse is the answer of the ack route.
type ConsumeAckResponse struct {
	Stream string `json:"stream"`
	Group  string `json:"group"`
	// Acknowledged counts the ids that were pending in the group and no longer are: an id
	// acknowledged twice, or never delivered, does not count.
	Acknowledged int64 `json:"acknowledged"`
}

// ConsumePage is the answer of the read and claim routes: the entries delivered to (or
// claimed by) the consumer, oldest first.
type ConsumePage struct {
	Stream   string `json:"stream"`
	Group    string `json:"group"`
	Consumer string `json:"consumer"`
	// Status is the sandbox's status (as Sandbox.Status shows it).
	Status string `json:"status"`
	// GroupCreated is set when this read created the group.
	GroupCreated bool `json:"group_created,omitempty"`
	// Entries are now pending on the consumer until acknowledged.
	Entries []ConsumedEntry `json:"entries"`
	// Deleted are ids pending on the consumer whose entries the stream no longer holds
	// (trimmed or deleted): nothing is left to handle; acknowledge them.
	Deleted []string `json:"deleted,omitempty"`
	// Next is, for a read, the id to pass as `after` to read on in the consumer's pending
	// entries (when More); for a claim, the start of the next claim call ("0-0" once the
	// scan went through every pending entry).
	Next string `json:"next"`
	// More is whether entries now pending on the consumer were left out of this answer
	// (count or byte budget reached): read them with after=Next.
	More bool `json:"more"`
}

// ConsumedEntry is one stream entry delivered to a consumer: the fields of Event, with the
// payload as the exact bytes the stream holds (base64 in JSON), so that a forwarder can pass
// them on unchanged.
type ConsumedEntry struct {
	EventFields
	// Payload is the gateway payload byte for byte (base64 in JSON).
	Payload []byte `json:"payload,omitempty"`
	// PayloadOmitted is set when the payload alone is larger than an answer's payload
	// budget (only an entry the sandbox's own worker wrote can be).
	PayloadOmitted bool `json:"payload_omitted,omitempty"`
}
