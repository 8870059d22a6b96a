package apiwire

import "time"

// Usage is what one sandbox used (docs/api.md, "Usage"): the events the router routed to it
// and when the last one came, its stream and consumer group now, its schema's size and its
// namespace's key count and memory. Nothing here is a metric dimension: it is per sandbox.
type Usage struct {
	// EventsRouted counts the events the router appended to the sandbox's stream since it was
	// created (counted by the router in the usage hash, which the sandbox cannot write).
	EventsRouted int64 `json:"events_routed"`
	// LastEventAt is when the router appended the last one; null before the first.
	LastEventAt *time.Time `json:"last_event_at"`
	// StreamLength is the entries its stream holds now (the router trims it to
	// ROUTER_STREAM_MAXLEN); StreamPending those its consumer group workers was delivered and
	// has not acknowledged.
	StreamLength  int64 `json:"stream_length"`
	StreamPending int64 `json:"stream_pending"`
	// SchemaBytes is the size of its schema's relations now: tables, materialized views and
	// sequences with their indexes and TOAST, and its role's temporary tables.
	SchemaBytes int64 `json:"schema_bytes"`
	// CatalogBytes is what its objects' rows took in the system catalogs (function bodies,
	// comments, views, defaults, columns, statistics, its role's settings) when the cleanup
	// last counted them (CatalogCountedAt, every cleanup run); null until one did. With
	// SchemaBytes it makes the disk a sandbox may take (sandbox.SchemaSizeLimit).
	CatalogBytes     *int64     `json:"catalog_bytes"`
	CatalogCountedAt *time.Time `json:"catalog_counted_at"`
	// Keys is how many keys its namespace held when the cleanup's keyspace pass last counted
	// them (KeysCountedAt, every cleanup run); null until one did.
	Keys          *int64     `json:"keys"`
	KeysCountedAt *time.Time `json:"keys_counted_at"`
	// RedisBytes is the memory those keys held at that count (MEMORY USAGE of each, summed);
	// null until one measured it. Above RedisBytesLimit (sandbox.RedisMemoryLimit) the
	// cleanup switches off the sandbox's Redis user.
	RedisBytes      *int64 `json:"redis_bytes"`
	RedisBytesLimit int64  `json:"redis_bytes_limit"`
	// Idle is set when a running sandbox had no event for IdleAfterSeconds
	// (SANDBOX_IDLE_AFTER), counted from its last event or, before any, from its creation;
	// IdleSeconds is for how long it had none.
	Idle             bool  `json:"idle"`
	IdleSeconds      int64 `json:"idle_seconds"`
	IdleAfterSeconds int64 `json:"idle_after_seconds"`
	// Unavailable names the stores that could not be read now ("redis", "database"): their
	// fields are zero.
	Unavailable []string `json:"unavailable,omitempty"`
}
