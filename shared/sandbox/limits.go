package sandbox

import "time"

// Limits bounds what a sandbox may be. Defaults live here; configuration overrides them.
type Limits struct {
	// DefaultTTL is the TTL of a sandbox created without one.
	DefaultTTL time.Duration
	// MinTTL is the shortest TTL accepted on create and the shortest extension.
	MinTTL time.Duration
	// MaxLifetime caps expires_at at created_at + MaxLifetime, whatever the extensions.
	MaxLifetime time.Duration
	// OwnerQuota is how many sandboxes that are not destroyed one owner may have.
	OwnerQuota int
	// MaxGuilds is how many guilds one sandbox may have mapped.
	MaxGuilds int
	// MetadataMaxBytes bounds the JSON encoding of a sandbox's metadata.
	MetadataMaxBytes int
	// MetadataMaxKeys bounds the number of metadata entries.
	MetadataMaxKeys int
	// DBReservedConnections is how many of the database server's connections (max_connections
	// less superuser_reserved_connections) no sandbox's role may take: the functions' pools'
	// and the operators'. A creation is refused when the roles of the sandboxes not destroyed,
	// each allowed RoleConnectionLimit sessions, could reach into them. Negative: no check.
	DBReservedConnections int
}

// RoleConnectionLimit bounds the sessions one sandbox's database role may open (its role's
// CONNECTION LIMIT); connect hands it to the worker (SANDBOX_DATABASE_MAX_CONNECTIONS).
const RoleConnectionLimit = 20

// RedisConnectionLimit bounds the connections one sandbox's Redis user may hold on one node.
// Redis has no limit per user, so the scheduled cleanup enforces it: a user found above it
// is switched off and its connections closed, until the sandbox's next connect
// (provision.SwitchOffCrowdingRedisUsers). connect hands it to the worker
// (SANDBOX_REDIS_MAX_CONNECTIONS) to size its pools by: go-redis opens up to 10 a CPU on each
// node by default, which on a large machine is more.
const RedisConnectionLimit = 50

// RedisMemoryLimit bounds the memory one sandbox's keys may hold in Redis, in bytes, as
// MEMORY USAGE counts it (the value, its name and the server's overhead). Redis bounds memory
// per server (maxmemory), never per key prefix: one worker's keys could fill the server, and
// with noeviction every other sandbox's writes and the router's appends would then fail. The
// scheduled cleanup measures every namespace in its keyspace pass and switches off the Redis
// user of a sandbox above it, as for RedisConnectionLimit. Its event stream counts: the
// router keeps it at ROUTER_STREAM_MAXLEN entries (10,000 by default), which events of a few
// KB keep well under this. connect hands it to the worker (SANDBOX_REDIS_MAX_MEMORY).
const RedisMemoryLimit = 128 << 20

// SchemaSizeLimit bounds the disk one sandbox's schema may take, in bytes: its tables,
// indexes and TOAST, and its role's temporary tables (what usage shows as schema_bytes).
// PostgreSQL has no quota per schema or role: one worker's rows could fill the disk every
// other sandbox writes to, and on a shared server the control plane's tables and WAL. The
// scheduled cleanup reads every schema's size and takes the password of a role above it away,
// ending its sessions, until the sandbox's next connect
// (provision.SwitchOffOversizedRoles). connect hands it to the worker
// (SANDBOX_DATABASE_MAX_BYTES).
const SchemaSizeLimit = 1 << 30

// RoleQuietLogSettings are the server settings a sandbox's database role gets as its own
// defaults, at PANIC, so that its messages and failed statements stay out of the server's
// log, which is the server's disk. Both are a superuser's settings: the role can set them
// back neither in its session nor as its default, and the control user may set them only
// when granted SET on them (docs/deploy.md).
var RoleQuietLogSettings = []string{"log_min_messages", "log_min_error_statement"}

// QuietLogPrivilegeSQL answers, with RoleQuietLogSettings as $1, whether the current user may
// set them.
const QuietLogPrivilegeSQL = `SELECT coalesce(pg_catalog.bool_and(pg_catalog.has_parameter_privilege(p, 'SET')), true)
	FROM pg_catalog.unnest($1::text[]) AS p`

// DefaultLimits are the limits a deployment has unless configured: the defaults of
// docs/configuration.md (SANDBOX_DEFAULT_TTL, ...); MetadataMaxKeys is not configurable.
func DefaultLimits() Limits {
	return Limits{
		DefaultTTL:       24 * time.Hour,
		MinTTL:           10 * time.Minute,
		MaxLifetime:      168 * time.Hour,
		OwnerQuota:       5,
		MaxGuilds:        25,
		MetadataMaxBytes: 4096,
		MetadataMaxKeys:  32,

		DBReservedConnections: 100,
	}
}
