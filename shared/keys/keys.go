// Package keys is the one home of the Redis key layout (DESIGN §3.3):
//
//	sandbox:{<id>}:          namespace of one sandbox (the braces are a cluster hash tag:
//	                         one sandbox, one slot)
//	sandbox:{<id>}:events    the sandbox's event stream
//	sandbox:route:<guild_id> route cache entry of one guild (outside any namespace: per guild)
//
// Patterns for SCAN MATCH are built only from validated ids, so user input never reaches a
// glob.
package keys

import (
	"fmt"
	"strings"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const (
	prefix      = "sandbox:"
	routePrefix = "sandbox:route:"
	// EventsGroup is the consumer group created with every sandbox stream; workers read with
	// XREADGROUP GROUP workers <consumer>.
	EventsGroup = "workers"
)

// Namespace returns the key prefix of a sandbox: "sandbox:{<id>}:".
func Namespace(id string) string { return prefix + "{" + id + "}:" }

// EventStream returns the sandbox's event stream key: "sandbox:{<id>}:events".
func EventStream(id string) string { return Namespace(id) + "events" }

// RouteCache returns the route cache key of a guild: "sandbox:route:<guild_id>".
func RouteCache(guildID string) string { return routePrefix + guildID }

// NamespacePattern returns the SCAN MATCH pattern of every key of one sandbox. It refuses an
// id that is not valid, so that no glob character ever reaches Redis from outside.
func NamespacePattern(id string) (string, error) {
	if !sandbox.ValidID(id) {
		return "", fmt.Errorf("keys: invalid sandbox id %q", id)
	}
	return Namespace(id) + "*", nil
}

// AllNamespacesPattern matches the keys of every sandbox namespace (for orphan reconciliation).
const AllNamespacesPattern = prefix + "{*}:*"

// AllRoutesPattern matches every route cache entry.
const AllRoutesPattern = routePrefix + "*"

// ParseNamespaceKey returns the sandbox id of a key inside a namespace, and false for any key
// that does not match the layout exactly (including ids that are not valid).
func ParseNamespaceKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, prefix+"{")
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "}:")
	if !ok || !sandbox.ValidID(id) {
		return "", false
	}
	return id, true
}

// ParseRouteKey returns the guild id of a route cache key, and false for anything else.
func ParseRouteKey(key string) (string, bool) {
	guild, ok := strings.CutPrefix(key, routePrefix)
	if !ok || !sandbox.ValidGuildID(guild) {
		return "", false
	}
	return guild, true
}
