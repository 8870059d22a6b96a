package keys

import (
	"strings"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// A sandbox's usage counters live in one hash per sandbox, outside its namespace:
//
//	sandbox:usage:{<id>}    events routed to it, its last event, its key count and memory,
//	                        its catalog rows' size
//
// Outside the namespace, because the sandbox's own Redis user reaches sandbox:{<id>}:* and
// nothing else (SandboxACLRules): its code can neither write nor delete its counters. With
// the namespace's hash tag {<id>}, because a Redis Cluster serves a pipeline per slot: the
// router updates the counters in the pipeline of the stream appends, and a counter that
// shares the stream's slot costs that pipeline no other node. The key matches neither
// AllNamespacesPattern nor AllRoutesPattern; the teardown deletes it explicitly and orphan
// reconciliation scans AllUsagePattern.

const usagePrefix = "sandbox:usage:"

// Usage returns the usage hash of a sandbox: "sandbox:usage:{<id>}".
func Usage(id string) string { return usagePrefix + "{" + id + "}" }

// AllUsagePattern matches every usage hash (for orphan reconciliation).
const AllUsagePattern = usagePrefix + "{*}"

// ParseUsageKey returns the sandbox id of a usage hash's key, and false for any key that is
// not exactly Usage of a valid id.
func ParseUsageKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, usagePrefix+"{")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "}")
	if !ok || Usage(id) != key || !sandbox.ValidID(id) {
		return "", false
	}
	return id, true
}

// The fields of a usage hash. Every value is a decimal integer.
const (
	// UsageFieldEvents counts the events the router appended to the sandbox's stream.
	UsageFieldEvents = "events"
	// UsageFieldLastEventMS is when the router last appended one, in Unix milliseconds.
	UsageFieldLastEventMS = "last_event_ms"
	// UsageFieldKeys is how many keys the sandbox's namespace held at the last cleanup pass.
	UsageFieldKeys = "keys"
	// UsageFieldMemory is the memory those keys held at that pass, in bytes (MEMORY USAGE).
	UsageFieldMemory = "memory_bytes"
	// UsageFieldKeysCountedMS is when that pass counted them, in Unix milliseconds.
	UsageFieldKeysCountedMS = "keys_counted_ms"
	// UsageFieldCatalog is what the sandbox's objects took in the database's catalogs at the
	// last cleanup run's disk share, in bytes.
	UsageFieldCatalog = "catalog_bytes"
	// UsageFieldCatalogCountedMS is when that run counted it, in Unix milliseconds.
	UsageFieldCatalogCountedMS = "catalog_counted_ms"
)
