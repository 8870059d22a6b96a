// Package keys is the one home of the Redis key layout
// (docs/architecture.md, "A sandbox's own resources"):
//
//	sandbox:{<id>}:                     namespace of one sandbox (the braces are a cluster
//	                                    hash tag: one sandbox, one slot)
//	sandbox:{<id>}:events               the sandbox's event stream
//	sandbox:route:{routes}:<guild_id>   route cache entry of one guild (outside any namespace)
//	sandbox:routes:{routes}:generation  the route generation, in the route entries' slot
//	sandbox:usage:{<id>}                usage counters of one sandbox (outside its namespace,
//	                                    in its slot: usage.go)
//
// and of the Redis ACL users that confine each sandbox to its namespace (ACLUser,
// SandboxACLRules): a sandbox's user matches its own keys and channels only, never a route;
// and of the fields of an event stream's entries (StreamField*, stream.go).
//
// The namespaces, usage hashes and ACL users are the sandboxes' keys; the route entries and
// the generation are the control plane's. With WORKER_REDIS_ADDR the two live on different
// servers (clients.Stores.WorkerRedis and Redis), so no script or transaction names keys of
// both.
//
// Patterns for SCAN MATCH are built only from validated ids, so user input never reaches a
// glob.
//
// # Redis Cluster: which keys share a slot
//
// A cluster refuses a multi-key command, a script or a transaction whose keys are in
// different slots (CROSSSLOT), even when one node serves them all. Every one this module runs
// names keys of one slot (Slot; TestKeysUsedTogetherShareASlot):
//
//   - routecache's writeBack and publish scripts: the generation and route entries, all
//     tagged {routes};
//   - routing's countEvents and cleanup's recordKeys scripts: Usage(id) and EventStream(id),
//     both tagged {<id>};
//   - cleanup's UNLINKs of SCAN replies: on a cluster, grouped by Slot before each UNLINK,
//     whatever the pattern (a namespace's keys are one slot anyway);
//   - provision's MULTI/EXEC (events page, rewind): one stream key each.
//
// Everything else is one key per command (GET, SET, XADD, XACK, HGETALL, UNLINK of a usage
// hash, orphans' compare-and-delete script), pipelined: a cluster client splits a pipeline by
// node. SCAN and the ACL commands run on each node (provision.ForEachPrimary and provision's
// forEachNode).
//
// # The route slot
//
// Every route entry and the generation share the slot of {routes}, so one primary serves the
// whole route cache: every router batch's read (the generation, and the entries its
// in-process tier lacks, one pipelined round trip), every write-back and every publication.
// That is what the generation alone cost before it had company: every batch read it on its one
// slot already, so the route slot's load follows the router's batches per second, not the
// sandboxes, guilds or streams, which spread over the other slots. One primary serves on the
// order of 100,000 such reads a second, far above the ingress rate of the sandboxes' test
// guilds. An operator who needs more scales that primary up, or moves the slot (12842) to a
// shard of its own (resharding); reading from replicas is not a way out, because a replica's
// lagging generation would let a router keep entries a published change voided.
//
// Entries of the layout before the hash tag (sandbox:route:<guild_id>) are never read again
// and expire by themselves within their TTL (ROUTE_CACHE_TTL at most: every write sets one);
// the old generation (sandbox:routes:generation), which has none, is unlinked by every
// cleanup run (LegacyRouteGeneration).
package keys

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const (
	prefix = "sandbox:"
	// routeTag is the hash tag of the route entries and the generation: one slot for the
	// route cache, whose scripts name both. It follows a prefix other than "sandbox:{", so no
	// route key is ever in a namespace's pattern, whatever the sandbox ids may become.
	routeTag    = "{routes}"
	routePrefix = "sandbox:route:" + routeTag + ":"
	// EventsGroup is the consumer group created with every sandbox stream; workers read with
	// XREADGROUP GROUP workers <consumer>.
	EventsGroup = "workers"
)

// Namespace returns the key prefix of a sandbox: "sandbox:{<id>}:".
func Namespace(id string) string { return prefix + "{" + id + "}:" }

// EventStream returns the sandbox's event stream key: "sandbox:{<id>}:events".
func EventStream(id string) string { return Namespace(id) + "events" }

// RouteGeneration is the route generation, bumped by every published route change
// (routecache). It is outside every namespace, matches neither AllRoutesPattern nor
// AllNamespacesPattern, and shares the route entries' hash tag, hence their slot: the
// generation scripts, which touch both, need one slot in a Redis Cluster.
const RouteGeneration = "sandbox:routes:" + routeTag + ":generation"

// LegacyRouteGeneration is the route generation of the layout before the hash tag. Nothing
// reads it; cleanup unlinks it, since it has no TTL to expire by.
const LegacyRouteGeneration = "sandbox:routes:generation"

// RouteCache returns the route cache key of a guild: "sandbox:route:{routes}:<guild_id>".
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

// NamespacesPrefix begins every key of every namespace, and no other key of this layout:
// cleanup's keyspace pass measures the memory of the keys that begin with it.
const NamespacesPrefix = prefix + "{"

// AllRoutesPattern matches every route cache entry.
const AllRoutesPattern = routePrefix + "*"

// AllKeysPattern matches every key of this layout: the namespaces, the route cache, the
// usage hashes and the route generation (orphan reconciliation's one pass, which tells them
// apart with the Parse functions).
const AllKeysPattern = prefix + "*"

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

// aclUserPrefix starts the name of every sandbox's Redis ACL user, like its database role.
const aclUserPrefix = "sb_"

// ACLUser returns the name of a sandbox's Redis ACL user for a suite working on logical
// database db: "sb_<id>" on database 0 (production, and the only database of a cluster),
// "sb_<id>@<db>" elsewhere. ACL users are server-wide while keys are per database, so the
// suffix keeps the orphan finder of one database from taking another database's users.
func ACLUser(id string, db int) string {
	if db == 0 {
		return aclUserPrefix + id
	}
	return aclUserPrefix + id + "@" + strconv.Itoa(db)
}

// ParseACLUser returns the sandbox id of a sandbox ACL user's name made for database db, and
// false for any other name.
func ParseACLUser(name string, db int) (string, bool) {
	rest, ok := strings.CutPrefix(name, aclUserPrefix)
	if !ok {
		return "", false
	}
	id, suffix, scoped := strings.Cut(rest, "@")
	if scoped != (db != 0) || (scoped && suffix != strconv.Itoa(db)) || !sandbox.ValidID(id) {
		return "", false
	}
	return id, true
}

// SandboxACLRules are the ACL SETUSER rules of a sandbox's user, after "reset" and the
// password: its own keys and nothing else. The command set is the data commands a worker
// needs (streams with consumer groups, strings, hashes, lists, sets, sorted sets,
// transactions, bitmaps and geo reads), without anything that reaches past its keys:
// no SCAN, RANDOMKEY, DBSIZE or PUBSUB (they list or count other namespaces), no MOVE or
// SWAPDB, no FUNCTION, SCRIPT FLUSH/KILL, no client tracking (it reports other keys'
// changes), nothing @admin or @dangerous (KEYS, FLUSHALL, CONFIG, ACL, DEBUG, MIGRATE, SORT,
// RESTORE, ...). Because the sandboxes share one Redis with the route cache that production
// routing reads, nothing lets one small command stall the server, fill it or have it parse
// what the worker crafted either: no Lua (a script loops forever, blocking every client, and
// string.rep allocates without bound), no HyperLogLog (below), and none of the commands whose
// one call allocates, answers or works far more than its arguments (SETRANGE and SETBIT at a
// far offset, BITFIELD, BITOP, COPY, the set and sorted-set algebra, the random-member
// commands with a negative count, WATCH): see amplifyingCommands. No pub/sub either: a
// subscription is server memory that neither maxmemory nor maxmemory-clients counts, so a
// worker subscribing to channels of its own could grow the server past its limit without end.
// SELECT is allowed only when the suite itself runs on a logical database other than 0
// (tests); in production it is refused, so no key escapes the database that teardown cleans. The cluster topology commands a cluster client needs are
// allowed.
func SandboxACLRules(id string, allowSelect bool) ([]string, error) {
	if !sandbox.ValidID(id) {
		return nil, fmt.Errorf("keys: invalid sandbox id %q", id)
	}
	rules := []string{
		"~" + Namespace(id) + "*", "resetchannels",
		"-@all",
		"+@read", "+@write", "+@keyspace", "+@string", "+@hash", "+@list", "+@set", "+@sortedset",
		"+@stream", "+@bitmap", "+@geo", "+@transaction",
		"+@connection",
		// HyperLogLog commands parse a string the caller may have written byte by byte (SET of
		// a "HYLL" header): CVE-2025-32023 turned such a string into a write past the buffer,
		// and Redis's advice for a server not yet patched is to refuse these commands by ACL.
		// PFCOUNT is also @read and PFADD @write, hence the explicit refusal.
		"-@dangerous", "-@admin", "-@scripting", "-@hyperloglog", "-@pubsub",
		"-scan", "-randomkey", "-dbsize", "-pubsub", "-move", "-swapdb", "-select",
		"-function", "-fcall", "-fcall_ro", "-script|flush", "-script|kill", "-script|debug",
		"-client|tracking", "-client|caching", "-client|trackinginfo", "-client|getredir",
		"+cluster|slots", "+cluster|shards", "+cluster|nodes", "+cluster|info", "+cluster|myid",
		"+readonly", "+readwrite", "+asking",
	}
	for _, c := range amplifyingCommands {
		rules = append(rules, "-"+c)
	}
	if allowSelect {
		rules = append(rules, "+select")
	}
	return rules, nil
}

// amplifyingCommands are the data commands a sandbox's user is refused because one call
// costs the shared server far more than its arguments: 512 MB from SETRANGE or SETBIT at a far
// offset, or from BITFIELD SET; a copy of any size from COPY, BITOP and the *STORE commands;
// an answer of any length from SRANDMEMBER, ZRANDMEMBER and HRANDFIELD with a negative
// count; a third of a second of the server's time from LOLWUT VERSION 6 1000 1000 (30 bytes,
// no key: measured on Redis 7.0.15, every other client waiting meanwhile); from LCS, a table
// of the product of its strings' lengths (two strings of 11 KB: 1.8 s of the server's time on
// Redis 7.0.15, and a table of about 480 MB; its only bound is proto-max-bulk-len, 512 MB).
// The set and sorted-set algebra (SUNION, SINTER, SINTERCARD, SDIFF and the Z forms) works
// over every set it is given, and a key may be given any number of times: a set of 100,000
// members of the worker's own, named 1,000 times in one 10 KB call, held every other client
// 24.9 s (SUNION) and 17.1 s (ZUNION) on Redis 7.0.15; SINTER of that set and a twin named
// 1,000 times 1.6 s, SDIFF of it minus a disjoint set of the same size named 1,000 times
// 1.3 s, and every such time grows with the names. WATCH checks each of its keys against
// every key the connection watches already: one WATCH of 40,000 keys (589 KB) held every
// other client 9.8 s on Redis 7.0.15, and the watched keys are server memory no limit counts
// (MULTI and EXEC remain). GEORADIUS
// and GEORADIUSBYMEMBER are refused for their STORE option (GEOSEARCH and the _RO forms read
// the same).
var amplifyingCommands = []string{
	"setrange", "setbit", "bitfield", "bitop", "copy",
	"sunionstore", "sinterstore", "sdiffstore", "zunionstore", "zinterstore", "zdiffstore", "zrangestore",
	"sunion", "sinter", "sintercard", "sdiff", "zunion", "zinter", "zintercard", "zdiff",
	"georadius", "georadiusbymember", "geosearchstore",
	"srandmember", "zrandmember", "hrandfield",
	"lolwut", "lcs", "watch",
}
