package keys

// The fields of every entry of a sandbox's event stream (EventStream): the contract with the
// sandbox's workers (docs/streams.md, "Entry fields"). The router writes them and the API's
// events route reads them, so they live here, below both. All values are strings.
const (
	// StreamFieldType is the gateway dispatch type, e.g. MESSAGE_CREATE (the payload's t).
	StreamFieldType = "type"
	// StreamFieldPayload is the gateway payload exactly as the ingress queue delivered it.
	StreamFieldPayload = "payload"
	// StreamFieldMessageID is the ingress queue's message id.
	StreamFieldMessageID = "message_id"
	// StreamFieldGuildID is the guild the event belongs to.
	StreamFieldGuildID = "guild_id"
	// StreamFieldSeq is the gateway sequence number (the payload's s), when it has one.
	StreamFieldSeq = "seq"
	// StreamFieldReceivedAt is when the ingress queue accepted the event, in Unix milliseconds.
	StreamFieldReceivedAt = "received_at"
	// StreamFieldGroupID is the ingress message's FIFO message group, on a FIFO ingress queue
	// only: the events of one group are in the stream in their ingress order.
	StreamFieldGroupID = "group_id"
)
