package sandbox

// RedisAccess is how a sandbox's code is kept to its own Redis namespace
// (SANDBOX_REDIS_ACCESS).
type RedisAccess string

const (
	// RedisAccessACL gives every sandbox a Redis ACL user of its own that can reach only its
	// namespace: the boundary is enforced by the server. The default.
	RedisAccessACL RedisAccess = "acl"
	// RedisAccessShared hands out no Redis credentials: the workers use whatever user the
	// operator gives them, and the namespace is a convention only. For Redis offerings that
	// refuse ACL SETUSER (ElastiCache manages its users through its own API).
	RedisAccessShared RedisAccess = "shared"
)

// Valid reports whether a is one of the modes.
func (a RedisAccess) Valid() bool { return a == RedisAccessACL || a == RedisAccessShared }

// SharedRedisWarning is what connect and status say in shared mode.
const SharedRedisWarning = "Redis access is shared: this sandbox's namespace is a naming convention only, " +
	"and any code holding the Redis credentials can read and write every sandbox's keys and the route cache"
