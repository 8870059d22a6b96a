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
	// DefaultRedisTimeout and DefaultSQSTimeout are the deadlines of a batch's store calls
	// (ROUTER_REDIS_TIMEOUT, ROUTER_SQS_TIMEOUT), well inside the function timeout (30 s by
	// default). The delivery stages run at the same time, so a store that does not answer
	// costs a batch about its own deadline.
	DefaultRedisTimeout = time.Second
	DefaultSQSTimeout   = 5 * time.Second
)

// Bounds of ROUTER_REDIS_TIMEOUT and ROUTER_SQS_TIMEOUT.
const (
	minStoreTimeout = 10 * time.Millisecond
	maxRedisTimeout = 10 * time.Second
	maxSQSTimeout   = 20 * time.Second
)

// Config is the router function's configuration: the shared settings and its own.
type Config struct {
	config.Shared

	// ProductionQueueURL is the production bot's SQS queue (PRODUCTION_QUEUE_URL, required).
	ProductionQueueURL string
	// DeadLetterQueueURL is the ingress dead-letter queue, where the router sends poison
	// messages itself (ROUTER_DEAD_LETTER_QUEUE_URL); empty leaves them to the ingress
	// queue's redrive policy.
	DeadLetterQueueURL string
	// RedisTimeout bounds each Redis call of a batch (route cache, sandbox stream append),
	// retries included (ROUTER_REDIS_TIMEOUT); SQSTimeout its production delivery and its dead-letter send
	// (ROUTER_SQS_TIMEOUT).
	RedisTimeout time.Duration
	SQSTimeout   time.Duration
	// StreamMaxLen bounds every sandbox stream, approximately (ROUTER_STREAM_MAXLEN): older
	// entries are trimmed, read or not.
	StreamMaxLen int
	// MemoryCacheTTL is how long a route stays in the in-process cache
	// (ROUTER_MEMORY_CACHE_TTL); zero disables that tier. A published route change voids
	// the tier at once; the TTL only bounds an entry while Redis cannot be read.
	MemoryCacheTTL time.Duration
	// PublishInterval is how often the router publishes route changes whose writer could not
	// (ROUTER_PUBLISH_INTERVAL): the bound on how long such a change goes unseen.
	PublishInterval time.Duration
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
		DeadLetterQueueURL:    r.String("ROUTER_DEAD_LETTER_QUEUE_URL", ""),
		RedisTimeout:          r.Duration("ROUTER_REDIS_TIMEOUT", DefaultRedisTimeout),
		SQSTimeout:            r.Duration("ROUTER_SQS_TIMEOUT", DefaultSQSTimeout),
		StreamMaxLen:          r.Int("ROUTER_STREAM_MAXLEN", DefaultStreamMaxLen, 1, 1<<30),
		MemoryCacheTTL:        r.Duration("ROUTER_MEMORY_CACHE_TTL", DefaultMemoryCacheTTL),
		PublishInterval:       r.Duration("ROUTER_PUBLISH_INTERVAL", DefaultPublishInterval),
		RouteCacheTTL:         r.Duration("ROUTE_CACHE_TTL", routecache.DefaultTTL),
		RouteCacheNegativeTTL: r.Duration("ROUTE_CACHE_NEGATIVE_TTL", routecache.DefaultNegativeTTL),
		IngressQueueURL:       r.String("INGRESS_QUEUE_URL", ""),
		SQSEndpoint:           r.String("SQS_ENDPOINT", ""),
	}
	r.Check(c.MemoryCacheTTL >= 0 && c.MemoryCacheTTL <= time.Minute,
		"ROUTER_MEMORY_CACHE_TTL", "%s must lie between 0 (disabled) and 1m", c.MemoryCacheTTL)
	// Each attempt costs a PostgreSQL query: not more than ten a second, and a change whose
	// publication failed must not wait long.
	r.Check(c.PublishInterval >= 100*time.Millisecond && c.PublishInterval <= time.Minute,
		"ROUTER_PUBLISH_INTERVAL", "%s must lie between 100ms and 1m", c.PublishInterval)
	// The deadlines must leave the batch time to answer within the function timeout (3 s at
	// the least, 30 s by default), and must not cut calls that are merely a little slow.
	r.Check(c.RedisTimeout >= minStoreTimeout && c.RedisTimeout <= maxRedisTimeout,
		"ROUTER_REDIS_TIMEOUT", "%s must lie between %s and %s", c.RedisTimeout, minStoreTimeout, maxRedisTimeout)
	r.Check(c.SQSTimeout >= minStoreTimeout && c.SQSTimeout <= maxSQSTimeout,
		"ROUTER_SQS_TIMEOUT", "%s must lie between %s and %s", c.SQSTimeout, minStoreTimeout, maxSQSTimeout)
	r.Check(c.RouteCacheTTL > 0, "ROUTE_CACHE_TTL", "must be positive")
	r.Check(c.RouteCacheNegativeTTL > 0, "ROUTE_CACHE_NEGATIVE_TTL", "must be positive")
	return c, r.Err()
}

// RouterOptions returns deps, the clients the router function's main built (Store, Publisher,
// Cache, Redis, Production), with the router's settings from c: the production and
// dead-letter queues, the deadlines, the stream bound, the in-process cache, the publish
// interval and the protected guilds, which the router applies itself whatever a route tier
// answers.
func (c Config) RouterOptions(deps Options) Options {
	deps.ProductionQueueURL = c.ProductionQueueURL
	deps.DeadLetterQueueURL = c.DeadLetterQueueURL
	deps.RedisTimeout = c.RedisTimeout
	deps.SQSTimeout = c.SQSTimeout
	deps.StreamMaxLen = c.StreamMaxLen
	deps.MemoryCacheTTL = c.MemoryCacheTTL
	deps.PublishInterval = c.PublishInterval
	deps.ProtectedGuilds = c.ProtectedGuilds
	return deps
}
