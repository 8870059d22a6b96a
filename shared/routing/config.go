package routing

import (
	"time"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
)

// Defaults of the router's settings.
const (
	DefaultStreamMaxLen   = 10000
	DefaultMemoryCacheTTL = 5 * time.Second
)

// Config is the router function's configuration: the shared settings and its own.
type Config struct {
	config.Shared

	// ProductionQueueURL is the production bot's SQS queue (PRODUCTION_QUEUE_URL, required).
	ProductionQueueURL string
	// StreamMaxLen bounds every sandbox stream, approximately (ROUTER_STREAM_MAXLEN): older
	// entries are trimmed, read or not.
	StreamMaxLen int
	// MemoryCacheTTL is how long a route stays in the in-process cache
	// (ROUTER_MEMORY_CACHE_TTL); zero disables that tier.
	MemoryCacheTTL time.Duration
	// RouteCacheTTL and RouteCacheNegativeTTL are the Redis route cache entry lifetimes for
	// mapped and for unmapped or protected guilds (ROUTE_CACHE_TTL, ROUTE_CACHE_NEGATIVE_TTL).
	RouteCacheTTL         time.Duration
	RouteCacheNegativeTTL time.Duration

	// IngressQueueURL is the queue polled outside Lambda (INGRESS_QUEUE_URL, local only).
	IngressQueueURL string
	// SQSEndpoint overrides the SQS endpoint outside Lambda, for an SQS-compatible server such
	// as moto_server (SQS_ENDPOINT, local only).
	SQSEndpoint string
}

// LoadConfig reads the router's configuration, reporting every problem at once.
func LoadConfig(lookup config.Lookup) (Config, error) {
	r := config.NewReader(lookup)
	c := Config{
		Shared:                config.LoadShared(r),
		ProductionQueueURL:    r.Required("PRODUCTION_QUEUE_URL"),
		StreamMaxLen:          r.Int("ROUTER_STREAM_MAXLEN", DefaultStreamMaxLen, 1, 1<<30),
		MemoryCacheTTL:        r.Duration("ROUTER_MEMORY_CACHE_TTL", DefaultMemoryCacheTTL),
		RouteCacheTTL:         r.Duration("ROUTE_CACHE_TTL", routecache.DefaultTTL),
		RouteCacheNegativeTTL: r.Duration("ROUTE_CACHE_NEGATIVE_TTL", routecache.DefaultNegativeTTL),
		IngressQueueURL:       r.String("INGRESS_QUEUE_URL", ""),
		SQSEndpoint:           r.String("SQS_ENDPOINT", ""),
	}
	// The in-process tier is never refreshed by invalidations: keep its staleness short.
	r.Check(c.MemoryCacheTTL >= 0 && c.MemoryCacheTTL <= time.Minute,
		"ROUTER_MEMORY_CACHE_TTL", "%s must lie between 0 (disabled) and 1m", c.MemoryCacheTTL)
	r.Check(c.RouteCacheTTL > 0, "ROUTE_CACHE_TTL", "must be positive")
	r.Check(c.RouteCacheNegativeTTL > 0, "ROUTE_CACHE_NEGATIVE_TTL", "must be positive")
	return c, r.Err()
}
