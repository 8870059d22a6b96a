package config

import (
	"log/slog"
	"strings"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// DefaultEnvironment is ENVIRONMENT's default, the name of a deployment that names none (and
// so the Environment metric dimension's value).
const DefaultEnvironment = "dev"

// Shared is the configuration every function reads: where the stores are and the limits
// of a sandbox.
type Shared struct {
	// Environment names the deployment; it is the Environment metric dimension.
	Environment string
	LogLevel    slog.Level

	// DatabaseURL is used when set (local runs); otherwise DatabaseSecretARN names a Secrets
	// Manager secret in the RDS JSON shape.
	DatabaseURL       string
	DatabaseSecretARN string

	RedisAddr    string
	RedisTLS     bool
	RedisCluster bool
	// RedisUsername and RedisPassword are the functions' own ACL user; in AWS the password
	// comes from the secret RedisPasswordSecretARN names instead.
	RedisUsername          string
	RedisPassword          string
	RedisPasswordSecretARN string
	// RedisAccess says whether each sandbox gets a Redis user of its own.
	RedisAccess sandbox.RedisAccess
	// WorkerRedisAddr, when set, is a Redis server of the sandboxes' own: their namespaces,
	// streams, usage counters and ACL users live there, apart from the route cache that
	// production routing reads (docs/security.md, "A Redis of their own"). The functions reach
	// it as the same user, with the same password and TLS setting, as REDIS_ADDR. Unset, the
	// sandboxes share REDIS_ADDR with the route cache.
	WorkerRedisAddr    string
	WorkerRedisCluster bool

	Limits          sandbox.Limits
	TemplateSchema  string
	ProtectedGuilds []string
}

// WorkerRedisApart reports whether the sandboxes have a Redis server of their own.
func (c Shared) WorkerRedisApart() bool { return c.WorkerRedisAddr != "" }

// LoadShared reads the shared configuration. Every problem is reported at once.
func LoadShared(r *Reader) Shared {
	def := sandbox.DefaultLimits()
	c := Shared{
		Environment:            r.String("ENVIRONMENT", DefaultEnvironment),
		DatabaseURL:            r.String("DATABASE_URL", ""),
		DatabaseSecretARN:      r.String("DATABASE_SECRET_ARN", ""),
		RedisAddr:              r.String("REDIS_ADDR", ""),
		RedisTLS:               r.Bool("REDIS_TLS", false),
		RedisCluster:           r.Bool("REDIS_CLUSTER", false),
		RedisUsername:          r.String("REDIS_USERNAME", ""),
		RedisPassword:          r.String("REDIS_PASSWORD", ""),
		RedisPasswordSecretARN: r.String("REDIS_PASSWORD_SECRET_ARN", ""),
		RedisAccess:            sandbox.RedisAccess(r.String("SANDBOX_REDIS_ACCESS", string(sandbox.RedisAccessACL))),
		WorkerRedisAddr:        r.String("WORKER_REDIS_ADDR", ""),
		WorkerRedisCluster:     r.Bool("WORKER_REDIS_CLUSTER", false),
		TemplateSchema:         r.String("SANDBOX_TEMPLATE_SCHEMA", "sandbox_template"),
		Limits: sandbox.Limits{
			DefaultTTL:       r.Duration("SANDBOX_DEFAULT_TTL", def.DefaultTTL),
			MinTTL:           r.Duration("SANDBOX_MIN_TTL", def.MinTTL),
			MaxLifetime:      r.Duration("SANDBOX_MAX_LIFETIME", def.MaxLifetime),
			OwnerQuota:       r.Int("SANDBOX_OWNER_QUOTA", def.OwnerQuota, 1, 1000),
			MaxGuilds:        r.Int("SANDBOX_MAX_GUILDS", def.MaxGuilds, 1, 1000),
			MetadataMaxBytes: r.Int("SANDBOX_METADATA_MAX_BYTES", def.MetadataMaxBytes, 2, 1<<20),
			MetadataMaxKeys:  def.MetadataMaxKeys,

			DBReservedConnections: r.Int("SANDBOX_DB_RESERVED_CONNECTIONS", def.DBReservedConnections, -1, 1<<20),
		},
	}
	switch level := strings.ToLower(r.String("LOG_LEVEL", "info")); level {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		r.Check(false, "LOG_LEVEL", "%q is not one of debug, info, warn, error", level)
	}
	for _, g := range r.List("SANDBOX_PROTECTED_GUILDS") {
		r.Check(sandbox.ValidGuildID(g), "SANDBOX_PROTECTED_GUILDS", "%q is not a Discord id (%s)", g, sandbox.SnowflakeRule)
		c.ProtectedGuilds = append(c.ProtectedGuilds, g)
	}
	r.Check(c.DatabaseURL != "" || c.DatabaseSecretARN != "", "DATABASE_URL", "is required (or DATABASE_SECRET_ARN)")
	r.Check(c.RedisAddr != "", "REDIS_ADDR", "is required")
	r.Check(c.RedisAccess.Valid(), "SANDBOX_REDIS_ACCESS", "%q is not one of %s, %s", c.RedisAccess, sandbox.RedisAccessACL, sandbox.RedisAccessShared)
	r.Check(c.RedisPassword == "" || c.RedisPasswordSecretARN == "", "REDIS_PASSWORD", "set either REDIS_PASSWORD or REDIS_PASSWORD_SECRET_ARN, not both")
	r.Check(c.WorkerRedisAddr == "" || !strings.EqualFold(c.WorkerRedisAddr, c.RedisAddr), "WORKER_REDIS_ADDR",
		"is REDIS_ADDR itself: leave it unset for the sandboxes to share that server")
	r.Check(c.WorkerRedisAddr != "" || !c.WorkerRedisCluster, "WORKER_REDIS_CLUSTER", "is set but WORKER_REDIS_ADDR is not")
	// The rule of every template's source schema, registered or configured.
	terr := sandbox.ValidateTemplateSchema("SANDBOX_TEMPLATE_SCHEMA", c.TemplateSchema)
	r.Check(terr == nil, "SANDBOX_TEMPLATE_SCHEMA", "%v", terr)
	r.Check(c.Limits.DefaultTTL >= c.Limits.MinTTL && c.Limits.DefaultTTL <= c.Limits.MaxLifetime,
		"SANDBOX_DEFAULT_TTL", "%s must lie between SANDBOX_MIN_TTL (%s) and SANDBOX_MAX_LIFETIME (%s)",
		c.Limits.DefaultTTL, c.Limits.MinTTL, c.Limits.MaxLifetime)
	r.Check(c.Limits.MinTTL > 0, "SANDBOX_MIN_TTL", "must be positive")
	return c
}
