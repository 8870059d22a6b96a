package cleanup

import (
	"strings"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/config"
)

// Defaults of the cleanup function's own settings and of the Options that have no variable.
// The teardown settings' defaults are config's (config.Teardown), their one home.
const (
	DefaultDeadlineMargin      = 30 * time.Second
	DefaultExpiryWarningWindow = time.Hour
	DefaultMaxTransaction      = time.Hour
	DefaultConcurrency         = 4
	DefaultScanCount           = 1000
	DefaultBatchLimit          = 2000
)

// Config is the cleanup function's configuration: the settings it reads as the api does
// (config.Lifecycle) and its own.
type Config struct {
	config.Lifecycle
	// RemoveOrphans (CLEANUP_ORPHANED) lets the scheduled run remove the orphans it finds.
	RemoveOrphans bool
	// DeadlineMargin (CLEANUP_DEADLINE_MARGIN): no new sandbox is taken when less time than
	// this remains before the invocation's deadline.
	DeadlineMargin time.Duration
	// ExpiryWarningWindow (EXPIRY_WARNING_WINDOW): owners are warned this long before expiry.
	ExpiryWarningWindow time.Duration
	// ExpiryWarningTopicARN (EXPIRY_WARNING_TOPIC_ARN) is the SNS topic of the warnings; without
	// one they are logged.
	ExpiryWarningTopicARN string
	// MaxTransaction (CLEANUP_MAX_SANDBOX_TRANSACTION): a sandbox's session whose transaction
	// has been open longer is ended by the scheduled run (provision.EndLongTransactions).
	MaxTransaction time.Duration
}

// LoadConfig reads the configuration, reporting every problem at once.
func LoadConfig(l config.Lookup) (Config, error) {
	r := config.NewReader(l)
	c := Config{
		Lifecycle:             config.LoadLifecycle(r),
		RemoveOrphans:         r.Bool("CLEANUP_ORPHANED", false),
		DeadlineMargin:        r.Duration("CLEANUP_DEADLINE_MARGIN", DefaultDeadlineMargin),
		ExpiryWarningWindow:   r.Duration("EXPIRY_WARNING_WINDOW", DefaultExpiryWarningWindow),
		ExpiryWarningTopicARN: r.String("EXPIRY_WARNING_TOPIC_ARN", ""),
		MaxTransaction:        r.Duration("CLEANUP_MAX_SANDBOX_TRANSACTION", DefaultMaxTransaction),
	}
	r.Check(c.DeadlineMargin > 0, "CLEANUP_DEADLINE_MARGIN", "must be positive")
	r.Check(c.ExpiryWarningWindow > 0, "EXPIRY_WARNING_WINDOW", "must be positive")
	r.Check(c.MaxTransaction >= time.Minute, "CLEANUP_MAX_SANDBOX_TRANSACTION",
		"must be at least 1m: a worker's ordinary transactions take far less, and a shorter one would end them")
	r.Check(c.ExpiryWarningTopicARN == "" || strings.HasPrefix(c.ExpiryWarningTopicARN, "arn:"),
		"EXPIRY_WARNING_TOPIC_ARN", "%q is not an SNS topic ARN", c.ExpiryWarningTopicARN)
	return c, r.Err()
}

// ServiceOptions returns deps, the clients a function's main built (Manager, Resources,
// Redis, Publisher, Logger), with the settings of c: the teardown settings, which the api
// passes the same way (a Config with its Lifecycle), and the cleanup function's own. Settings left
// zero take New's defaults.
func (c Config) ServiceOptions(deps Options) Options {
	deps.StuckCreatingAfter = c.Teardown.StuckCreatingAfter
	deps.OrphanGrace = c.Teardown.OrphanGrace
	deps.DropLockTimeout = c.Teardown.DropLockTimeout
	deps.ClaimLease = c.Teardown.ClaimLease
	deps.DeadlineMargin = c.DeadlineMargin
	deps.ExpiryWarningWindow = c.ExpiryWarningWindow
	deps.MaxTransaction = c.MaxTransaction
	return deps
}
