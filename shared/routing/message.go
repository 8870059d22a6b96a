package routing

import (
	"errors"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/gateway"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Message is one ingress message: one Discord gateway dispatch payload and what the queue
// says about it.
type Message struct {
	// ID is the queue's message id: the id reported back when the message fails.
	ID string
	// Body is the gateway payload, exactly as the ingress service sent it.
	Body string
	// SentAt is when the ingress queue accepted the message; zero when unknown.
	SentAt time.Time
	// Attributes are the message attributes set by the sender, forwarded to production.
	Attributes map[string]Attribute
	// GroupID is the message's FIFO message group (SQS MessageGroupId); empty on a standard
	// queue. A batch whose messages carry groups is delivered in order within each group
	// (ordered.go).
	GroupID string
}

// Attribute is one message attribute: a data type ("String", "Number", "Binary", optionally
// with a custom suffix) and a string or a binary value.
type Attribute struct {
	DataType    string
	StringValue string
	BinaryValue []byte
}

// Destination is where an event went; the values are the Destination metric dimension.
type Destination string

// Destinations of an event.
const (
	DestinationSandbox    Destination = sandbox.DestinationSandbox
	DestinationProduction Destination = sandbox.DestinationProduction
	// DestinationDropped counts events of guilds mapped to a sandbox that is not running (or
	// whose stream is gone): they must not reach production, and no worker reads them.
	DestinationDropped Destination = sandbox.DestinationDropped
	// DestinationParked counts events of parked test guilds (their sandbox was torn down) and
	// of guilds of a sandbox past its expiry: a test guild never falls back to production.
	DestinationParked Destination = sandbox.DestinationParked
)

// ErrorKind classifies a routing error; the values are the Kind metric dimension.
type ErrorKind string

// Kinds of routing errors. The first four are poison messages (retrying cannot help): the
// router sends them to the ingress dead-letter queue itself when it has one
// (Options.DeadLetterQueueURL), else, and whenever that send fails, they are batch item
// failures that the queue's redrive policy moves there. The others are transient.
const (
	KindMalformed      ErrorKind = "malformed"
	KindNotDispatch    ErrorKind = "not_dispatch"
	KindTooLarge       ErrorKind = "too_large"
	KindInvalidGuildID ErrorKind = "invalid_guild_id"
	// KindRouteLookup: the guild's route could not be resolved (PostgreSQL failed).
	KindRouteLookup ErrorKind = "route_lookup"
	// KindRouteCache: the Redis route cache failed and resolution went on without it. It is
	// counted once per failed cache operation, not per message: no message fails for it.
	KindRouteCache         ErrorKind = "route_cache"
	KindDeliveryStream     ErrorKind = "delivery_stream"
	KindDeliveryProduction ErrorKind = "delivery_production"
	// KindDeliveryDeadLetter: a poison message could not be sent to the dead-letter queue and
	// is a batch item failure instead. It is counted besides the message's poison kind.
	KindDeliveryDeadLetter ErrorKind = "delivery_dead_letter"
)

// parseErrorKind maps a gateway.Parse error to its kind.
func parseErrorKind(err error) ErrorKind {
	switch {
	case errors.Is(err, gateway.ErrNotDispatch):
		return KindNotDispatch
	case errors.Is(err, gateway.ErrTooLarge):
		return KindTooLarge
	case errors.Is(err, gateway.ErrInvalidGuildID):
		return KindInvalidGuildID
	default:
		return KindMalformed
	}
}

// Tier is the route tier that answered a lookup; the values are the Tier metric dimension.
type Tier string

// Route tiers, fastest first.
const (
	TierMemory   Tier = "memory"
	TierRedis    Tier = "redis"
	TierDatabase Tier = "database"
)

// Result is the outcome of one batch.
type Result struct {
	// Failed lists the ids of the messages that were not delivered, in batch order: the
	// queue must deliver them again (or move them to the dead-letter queue). Poison messages
	// the router sent to the dead-letter queue itself are not in it.
	Failed []string
	// Routed counts the delivered messages per destination.
	Routed map[Destination]int
	// Errors counts routing errors per kind.
	Errors map[ErrorKind]int
	// DeadLettered counts the poison messages the router sent to the dead-letter queue, per
	// kind: they are counted in Errors too, but are not in Failed.
	DeadLettered map[ErrorKind]int
	// Lookups counts the batch's distinct guilds per tier that resolved them.
	Lookups map[Tier]int
	// Blocked counts the messages of a FIFO batch that failed only because an earlier message
	// of their group failed (they are in Failed, not in Errors): the queue delivers them again
	// after that one, so none overtakes it.
	Blocked int
}
