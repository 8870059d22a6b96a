package cleanup

import (
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
)

// Defaults of the cleanup settings; Options and LoadConfig share them.
const (
	DefaultStuckCreatingAfter  = 30 * time.Minute
	DefaultOrphanGrace         = time.Hour
	DefaultDeadlineMargin      = 30 * time.Second
	DefaultExpiryWarningWindow = time.Hour
	DefaultDropLockTimeout     = 5 * time.Second
	DefaultConcurrency         = 4
	DefaultScanCount           = 1000
	DefaultBatchLimit          = 2000
	// DefaultClaimLease is how long a teardown claim lasts unless renewed. A run renews its
	// claims every third of it, concurrently with its steps, so the lease only has to outlast
	// the longest stall of a live run (the longest step: the keyspace pass over a million keys
	// takes well under a minute, a schema drop waits at most DropLockTimeout); a run that
	// crashed or was frozen at its deadline loses its claims after it, to the next run (every
	// 15 minutes).
	DefaultClaimLease = 5 * time.Minute
)

// Config is the cleanup function's configuration: the shared settings and its own.
type Config struct {
	config.Shared
	// RemoveOrphans (CLEANUP_ORPHANED) lets the scheduled run remove the orphans it finds.
	RemoveOrphans bool
	// StuckCreatingAfter (CLEANUP_STUCK_CREATING_AFTER) is how long a creation may take before
	// cleanup reclaims the sandbox.
	StuckCreatingAfter time.Duration
	// OrphanGrace (CLEANUP_ORPHAN_GRACE): younger orphans are not reported.
	OrphanGrace time.Duration
	// DeadlineMargin (CLEANUP_DEADLINE_MARGIN): no new sandbox is taken when less time than
	// this remains before the invocation's deadline.
	DeadlineMargin time.Duration
	// ExpiryWarningWindow (EXPIRY_WARNING_WINDOW): owners are warned this long before expiry.
	ExpiryWarningWindow time.Duration
	// ExpiryWarningTopicARN (EXPIRY_WARNING_TOPIC_ARN) is the SNS topic of the warnings; without
	// one they are logged.
	ExpiryWarningTopicARN string
}

// LoadConfig reads the configuration, reporting every problem at once.
func LoadConfig(l config.Lookup) (Config, error) {
	r := config.NewReader(l)
	c := Config{
		Shared:                config.LoadShared(r),
		RemoveOrphans:         r.Bool("CLEANUP_ORPHANED", false),
		StuckCreatingAfter:    r.Duration("CLEANUP_STUCK_CREATING_AFTER", DefaultStuckCreatingAfter),
		OrphanGrace:           r.Duration("CLEANUP_ORPHAN_GRACE", DefaultOrphanGrace),
		DeadlineMargin:        r.Duration("CLEANUP_DEADLINE_MARGIN", DefaultDeadlineMargin),
		ExpiryWarningWindow:   r.Duration("EXPIRY_WARNING_WINDOW", DefaultExpiryWarningWindow),
		ExpiryWarningTopicARN: r.String("EXPIRY_WARNING_TOPIC_ARN", ""),
	}
	r.Check(c.StuckCreatingAfter >= time.Minute, "CLEANUP_STUCK_CREATING_AFTER", "must be at least 1m: a creation takes seconds, but reclaiming one in progress would race it")
	r.Check(c.ExpiryWarningWindow > 0, "EXPIRY_WARNING_WINDOW", "must be positive")
	r.Check(c.ExpiryWarningTopicARN == "" || strings.HasPrefix(c.ExpiryWarningTopicARN, "arn:"),
		"EXPIRY_WARNING_TOPIC_ARN", "%q is not an SNS topic ARN", c.ExpiryWarningTopicARN)
	return c, r.Err()
}

// NewFromConfig builds the Service of the cleanup function from its configuration and the
// execution environment's clients. publisher may be nil (warnings are logged).
func NewFromConfig(cfg Config, db *pgxpool.Pool, rdb redis.UniversalClient, publisher Publisher) (*Service, error) {
	p := provision.New(db, rdb, cfg.TemplateSchema, provision.WithRedisAccess(cfg.RedisAccess))
	m := controlplane.NewManager(db, controlplane.Options{
		Limits: cfg.Limits, ProtectedGuilds: cfg.ProtectedGuilds, Provisioner: p, Routes: routecache.New(rdb, 0, 0),
	})
	return New(Options{
		Manager: m, Resources: p, Redis: rdb, Publisher: publisher,
		StuckCreatingAfter: cfg.StuckCreatingAfter, OrphanGrace: cfg.OrphanGrace,
		DeadlineMargin: cfg.DeadlineMargin, ExpiryWarningWindow: cfg.ExpiryWarningWindow,
	})
}
