package routing

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/gateway"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Options assembles a Router. Store, Redis, Production and ProductionQueueURL are required.
type Options struct {
	// Store is the authoritative route tier (controlplane.Manager).
	Store RouteStore
	// Cache is the Redis route tier (routecache.Cache); nil goes from memory to Store.
	Cache RouteCache
	// Redis holds the sandbox streams and their usage counters: the sandboxes' own server when
	// they have one (clients.Stores.WorkerRedis), never needed for production's events.
	Redis redis.UniversalClient
	// Production sends to the production queue at ProductionQueueURL.
	Production         QueueSender
	ProductionQueueURL string
	// ProductionConcurrency bounds SendMessageBatch calls in flight; zero means
	// DefaultProductionConcurrency.
	ProductionConcurrency int
	// DeadLetterQueueURL is the ingress dead-letter queue (ROUTER_DEAD_LETTER_QUEUE_URL): the
	// router sends poison messages there itself, with the AttributePoison* attributes, and
	// reports them as handled; only when that send fails are they batch item failures. Empty
	// leaves every poison message to the ingress queue's redrive policy.
	DeadLetterQueueURL string
	// DeadLetter sends to DeadLetterQueueURL; nil means Production (one SQS client serves both).
	DeadLetter QueueSender
	// RedisTimeout bounds each Redis call of a batch, go-redis's retries included
	// (ROUTER_REDIS_TIMEOUT); zero means DefaultRedisTimeout. New sets it before it builds
	// anything, so every Redis caller of the router can use it.
	RedisTimeout time.Duration
	// SQSTimeout bounds a batch's production delivery, all its SendMessageBatch calls
	// together, and its dead-letter send (ROUTER_SQS_TIMEOUT); zero means DefaultSQSTimeout.
	SQSTimeout time.Duration
	// StreamMaxLen bounds each sandbox stream (approximately); zero means DefaultStreamMaxLen.
	StreamMaxLen int
	// MemoryCacheTTL is the in-process route cache TTL; zero disables that tier.
	MemoryCacheTTL time.Duration
	// MemoryCacheSize bounds the in-process cache; zero means DefaultMemoryCacheSize.
	MemoryCacheSize int
	// ProtectedGuilds are production guilds (SANDBOX_PROTECTED_GUILDS): their events go to
	// production whatever any route tier answers, a forged or stale Redis entry included.
	ProtectedGuilds []string
	// Publisher publishes route changes left pending by a writer whose publication failed
	// (controlplane.Manager), every PublishInterval (DefaultPublishInterval when zero); nil
	// publishes nothing.
	Publisher       RoutePublisher
	PublishInterval time.Duration
	// Now is the clock of the in-process cache and of received_at when the queue gave no
	// time; nil means time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// isFIFO reports whether a queue URL names a FIFO queue: SQS requires their names to end in
// ".fifo".
func isFIFO(queueURL string) bool { return strings.HasSuffix(queueURL, ".fifo") }

// Router routes batches of gateway events. It is safe for concurrent use.
type Router struct {
	routes     *resolver
	protected  map[string]bool
	streams    *streamWriter
	production *productionSender
	deadLetter *productionSender // nil: poison messages are batch item failures
	now        func() time.Time
	log        *slog.Logger
}

// New returns a Router.
func New(o Options) (*Router, error) {
	var missing []error
	if o.Store == nil {
		missing = append(missing, errors.New("routing: Options.Store is required"))
	}
	if o.Redis == nil {
		missing = append(missing, errors.New("routing: Options.Redis is required"))
	}
	if o.Production == nil || o.ProductionQueueURL == "" {
		missing = append(missing, errors.New("routing: Options.Production and ProductionQueueURL are required"))
	}
	if o.DeadLetter != nil && o.DeadLetterQueueURL == "" {
		missing = append(missing, errors.New("routing: Options.DeadLetter needs DeadLetterQueueURL"))
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	if o.RedisTimeout <= 0 {
		o.RedisTimeout = DefaultRedisTimeout
	}
	if o.SQSTimeout <= 0 {
		o.SQSTimeout = DefaultSQSTimeout
	}
	if o.ProductionConcurrency <= 0 {
		o.ProductionConcurrency = DefaultProductionConcurrency
	}
	if o.StreamMaxLen <= 0 {
		o.StreamMaxLen = DefaultStreamMaxLen
	}
	if o.MemoryCacheSize <= 0 {
		o.MemoryCacheSize = DefaultMemoryCacheSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	protected := make(map[string]bool, len(o.ProtectedGuilds))
	for _, g := range o.ProtectedGuilds {
		protected[g] = true
	}
	var deadLetter *productionSender
	if o.DeadLetterQueueURL != "" {
		queue := o.DeadLetter
		if queue == nil {
			queue = o.Production
		}
		deadLetter = &productionSender{
			queue: queue, url: o.DeadLetterQueueURL, name: "dead-letter queue", fifo: isFIFO(o.DeadLetterQueueURL),
			concurrency: o.ProductionConcurrency, timeout: o.SQSTimeout,
		}
	}
	return &Router{
		protected: protected,
		routes: &resolver{
			memory:          newMemoryCache(o.MemoryCacheTTL, o.MemoryCacheSize, o.Now),
			cache:           o.Cache,
			store:           o.Store,
			log:             o.Logger,
			timeout:         o.RedisTimeout,
			publisher:       o.Publisher,
			publishInterval: cmp.Or(o.PublishInterval, DefaultPublishInterval),
			now:             o.Now,
		},
		streams: &streamWriter{rdb: o.Redis, maxLen: int64(o.StreamMaxLen), timeout: o.RedisTimeout, now: o.Now, log: o.Logger},
		production: &productionSender{
			queue: o.Production, url: o.ProductionQueueURL, name: "production queue", fifo: isFIFO(o.ProductionQueueURL),
			concurrency: o.ProductionConcurrency, timeout: o.SQSTimeout,
		},
		deadLetter: deadLetter,
		now:        o.Now,
		log:        o.Logger,
	}, nil
}

// Route routes one batch and records its metrics in rec (nil: none). It never fails as a
// whole: every message either is delivered (or deliberately dropped, or, poison, sent to the
// dead-letter queue) or is listed in Result.Failed.
func (r *Router) Route(ctx context.Context, rec *metrics.Recorder, batch []Message) Result {
	start := time.Now()
	b := &batchState{
		router:   r,
		ctx:      ctx,
		messages: batch,
		failed:   make([]bool, len(batch)),
		result: Result{
			Routed: map[Destination]int{}, Errors: map[ErrorKind]int{}, Lookups: map[Tier]int{},
		},
	}
	// The route generation is read while the batch is parsed: when every guild is in the
	// in-process tier, that read is the batch's only lookup round trip, and it costs no time.
	b.generation = r.routes.prefetch(ctx)
	b.parse()
	b.resolve(rec)
	b.decide()
	b.deliver()

	for i, m := range batch {
		if b.failed[i] {
			b.result.Failed = append(b.result.Failed, m.ID)
		}
	}
	rec.Count(metrics.RouterBatchSize, len(batch))
	for _, d := range []Destination{DestinationSandbox, DestinationProduction, DestinationDropped, DestinationParked} {
		if n := b.result.Routed[d]; n > 0 {
			rec.Count(metrics.EventsRouted, n, metrics.DimDestination, d)
		}
	}
	for kind, n := range b.result.Errors {
		rec.Count(metrics.RoutingErrors, n, metrics.DimKind, kind)
	}
	for kind, n := range b.result.DeadLettered {
		rec.Count(metrics.PoisonDeadLettered, n, metrics.DimKind, kind)
	}
	elapsed := time.Since(start)
	rec.Milliseconds(metrics.RouterBatchDuration, elapsed)
	b.logSummary(elapsed)
	return b.result
}

// logSummary logs the batch's one line at info: where its events went (the destinations of
// the EventsRouted metric, drops and parkings by reason), the batch item failures, the
// poison messages and the routing errors by kind, and how long it took. It is what a
// developer watches in `make dev`'s router log; the per-event lines are at debug.
func (b *batchState) logSummary(elapsed time.Duration) {
	routed := b.result.Routed
	attrs := []any{
		"messages", len(b.messages),
		"to_sandbox", routed[DestinationSandbox],
		"to_production", routed[DestinationProduction],
		"parked", routed[DestinationParked],
		"dropped", routed[DestinationDropped],
		"failed", len(b.result.Failed),
		"poison", b.poisonCount,
		logkey.DurationMS, float64(elapsed.Microseconds()) / 1000,
	}
	if b.result.Blocked > 0 {
		attrs = append(attrs, "blocked_for_order", b.result.Blocked)
	}
	if len(b.parkedBy) > 0 {
		attrs = append(attrs, "parked_by_reason", b.parkedBy)
	}
	if len(b.droppedBy) > 0 {
		attrs = append(attrs, "dropped_by_reason", b.droppedBy)
	}
	if n := totalCount(b.result.DeadLettered); n > 0 {
		attrs = append(attrs, "dead_lettered", n)
	}
	if len(b.result.Errors) > 0 {
		attrs = append(attrs, "errors", b.result.Errors)
	}
	b.router.log.InfoContext(b.ctx, "batch routed", attrs...)
}

func totalCount[K comparable](counts map[K]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// batchState is one batch on its way through Route.
type batchState struct {
	router   *Router
	ctx      context.Context
	messages []Message
	failed   []bool
	result   Result

	generation *prefetched // the route generation, read while parsing
	dispatches []gateway.Dispatch
	parsed     []bool
	guilds     []string // distinct, in order of first appearance
	routes     map[string]sandbox.Route
	lookupErr  error // why guilds missing from routes could not be resolved

	toStream     []int // batch indexes, in batch order
	toProduction []int
	poison       []poisonMessage // for the dead-letter queue, in batch order
	poisonCount  int             // poison messages, sent to the dead-letter queue or failed

	// The reasons of the events dropped and parked (DropReason*, ParkReason*), for the
	// batch's log line.
	droppedBy map[string]int
	parkedBy  map[string]int
	// settled are the messages dropped or parked (nothing to deliver), with how they were
	// counted: a FIFO batch may have to fail one after all (ordered.go) and uncount it.
	settled map[int]settlement
}

// settlement is how a message with nothing to deliver was counted.
type settlement struct {
	dest   Destination
	reason string
}

// The reasons the batch's log line gives for the events it did not deliver (dropped_by_reason,
// parked_by_reason). A dropped event's reason is otherwise its sandbox's status.
const (
	// DropReasonStreamGone: the sandbox's stream no longer exists (torn down since its route
	// was cached, or routing to sandboxes stopped).
	DropReasonStreamGone = "stream_gone"
	// DropReasonStreamUnusable: the sandbox's own code made its stream take no entry (another
	// type in its place, or its last ID the largest possible); see errStreamUnusable.
	DropReasonStreamUnusable = "stream_unusable"
	// ParkReasonExpired: the guild's sandbox is past its expiry, its teardown not done yet.
	ParkReasonExpired = "sandbox_expired"
	// ParkReasonParked: the guild's sandbox was torn down; the guild is parked.
	ParkReasonParked = "guild_parked"
)

// fail makes message i a batch item failure: the queue delivers it again.
func (b *batchState) fail(i int, kind ErrorKind, err error) {
	if err == nil {
		err = errors.New(string(kind))
	}
	b.failed[i] = true
	b.result.Errors[kind]++
	// The reason never quotes the payload: gateway errors and delivery errors do not.
	b.router.log.WarnContext(b.ctx, "message not routed",
		logkey.MessageID, b.messages[i].ID, "kind", string(kind), logkey.Error, err.Error())
}

// parse extracts the dispatch facts of every message and the batch's distinct guilds, and sets
// the poison messages aside.
func (b *batchState) parse() {
	var errs []error
	b.dispatches, errs = parseAll(b.messages)
	b.parsed = make([]bool, len(b.messages))
	b.result.DeadLettered = map[ErrorKind]int{}
	seen := make(map[string]struct{})
	for i, err := range errs {
		if err != nil {
			b.poisonCount++
			b.poisoned(i, parseErrorKind(err), err)
			continue
		}
		b.parsed[i] = true
		guild := b.dispatches[i].GuildID
		if guild == "" {
			continue
		}
		if _, ok := seen[guild]; !ok {
			seen[guild] = struct{}{}
			b.guilds = append(b.guilds, guild)
		}
	}
}

// parseChunk is the least work worth another goroutine: parsing is the router's one
// CPU-bound stage, and large batches spread it over the available cores.
const parseChunk = 512

// parseAll parses every message, in parallel for large batches.
func parseAll(msgs []Message) ([]gateway.Dispatch, []error) {
	dispatches := make([]gateway.Dispatch, len(msgs))
	errs := make([]error, len(msgs))
	parseRange := func(lo, hi int) {
		// One buffer per worker instead of a copy per body: Parse keeps nothing of its input
		// (its results are fresh strings), and bodies reach 256 KiB.
		var buf []byte
		for i := lo; i < hi; i++ {
			buf = append(buf[:0], msgs[i].Body...)
			dispatches[i], errs[i] = gateway.Parse(buf)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), (len(msgs)+parseChunk-1)/parseChunk)
	if workers <= 1 {
		parseRange(0, len(msgs))
		return dispatches, errs
	}
	per := (len(msgs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(msgs); lo += per {
		wg.Go(func() { parseRange(lo, min(lo+per, len(msgs))) })
	}
	wg.Wait()
	return dispatches, errs
}

// resolve finds the route of every distinct guild and records the lookup metrics.
func (b *batchState) resolve(rec *metrics.Recorder) {
	if len(b.guilds) == 0 {
		return
	}
	start := time.Now()
	routes, stats, err := b.router.routes.resolve(b.ctx, b.guilds, b.generation)
	rec.Milliseconds(metrics.RouteLookupLatency, time.Since(start))
	b.routes, b.lookupErr = routes, err
	for tier, n := range map[Tier]int{TierMemory: stats.memory, TierRedis: stats.redis, TierDatabase: stats.database} {
		if n > 0 {
			b.result.Lookups[tier] = n
			rec.Count(metrics.RouteLookups, n, metrics.DimTier, tier)
		}
	}
	if stats.cacheFailures > 0 {
		b.result.Errors[KindRouteCache] += stats.cacheFailures
	}
}

// decide sorts every parsed message into stream, production, dropped or failed.
//
// The configured protected guilds are checked first, on the router's own set, whichever tier
// answered: the memory and Redis tiers only repeat what some writer said, and a Redis entry
// can be stale (written before the guild was protected) or forged by anyone who can SET the
// key, so no cache entry may send a production guild to a sandbox. Guilds protected in the
// sandbox_control.protected_guilds table are known only to the database: its answer carries
// Protected, which the route cache keeps (routecache.Encode), and ProtectGuild refuses a guild
// mapped at the time, so an entry older than the protection lasts at most its TTL unless
// invalidated. Those guilds rely on whoever writes the cache; SANDBOX_PROTECTED_GUILDS is the
// protection that holds even against a writable Redis. Protected guilds need no lookup, so
// they go to production even when the database is down.
func (b *batchState) decide() {
	now := b.router.now()
	for i := range b.messages {
		if !b.parsed[i] {
			continue
		}
		guild := b.dispatches[i].GuildID
		if guild == "" {
			b.toProduction = append(b.toProduction, i)
			continue
		}
		route, ok := b.routes[guild]
		if b.router.protected[guild] { // configured production guild: no tier can override it
			b.toProduction = append(b.toProduction, i)
			continue
		}
		if !ok { // resolve leaves a guild out only when the database failed
			b.fail(i, KindRouteLookup, b.lookupErr)
			continue
		}
		switch route.Destination(now) {
		case sandbox.DestinationSandbox:
			b.toStream = append(b.toStream, i)
		case sandbox.DestinationParked:
			// Expired (its teardown not done yet) or parked: a test guild never reaches production.
			reason, why := ParkReasonParked, "parked since "+route.ParkedAt.UTC().Format(time.RFC3339)
			if route.Mapped() {
				reason, why = ParkReasonExpired, "sandbox expired at "+route.ExpiresAt.UTC().Format(time.RFC3339)
			}
			b.park(i, cmp.Or(route.SandboxID, route.ParkedBy), reason, why)
		case sandbox.DestinationDropped:
			b.drop(i, route.SandboxID, string(route.Status), string(route.Status))
		default:
			b.toProduction = append(b.toProduction, i)
		}
	}
}

// drop drops an event of a guild whose sandbox cannot take it; reason is its short form for
// the batch's log line, why the event's own.
func (b *batchState) drop(i int, sandboxID, reason, why string) {
	b.droppedBy = countReason(b.droppedBy, reason)
	b.discard(i, DestinationDropped, "event dropped", sandboxID, reason, why)
}

// park drops the event of a parked (or expired) test guild: counted apart from the events of
// sandboxes that are not running, and never sent to production.
func (b *batchState) park(i int, sandboxID, reason, why string) {
	b.parkedBy = countReason(b.parkedBy, reason)
	b.discard(i, DestinationParked, "event of a parked guild dropped", sandboxID, reason, why)
}

// discard is the rest of drop and park (dest): event i is counted and settled, with nothing
// to deliver, and logged as msg.
func (b *batchState) discard(i int, dest Destination, msg, sandboxID, reason, why string) {
	b.result.Routed[dest]++
	b.settle(i, dest, reason)
	b.router.log.DebugContext(b.ctx, msg, logkey.MessageID, b.messages[i].ID,
		logkey.Sandbox, sandboxID, logkey.Reason, why)
}

// deliver delivers the batch: all of it at once from a standard queue; from a FIFO queue
// (messages that carry their message group), in order within each group (deliverInOrder).
func (b *batchState) deliver() {
	if b.ordered() {
		b.deliverInOrder()
		return
	}
	b.deliverSet(b.toStream, b.toProduction, b.poison)
}

// deliverSet appends the stream events toStream, sends the production events toProduction
// and sends the poison messages to the dead-letter queue, all at the same time, and records
// each message's outcome.
func (b *batchState) deliverSet(toStream, toProduction []int, poison []poisonMessage) {
	now := b.router.now().UnixMilli()
	entries := make([]streamEntry, len(toStream))
	for k, i := range toStream {
		m := &b.messages[i]
		receivedAt := now
		if !m.SentAt.IsZero() {
			receivedAt = m.SentAt.UnixMilli()
		}
		entries[k] = newStreamEntry(b.routes[b.dispatches[i].GuildID].SandboxID, m, b.dispatches[i], receivedAt)
	}
	production := make([]*Message, len(toProduction))
	for k, i := range toProduction {
		production[k] = &b.messages[i]
	}

	deadLetters := b.deadLetters(poison)

	// Each stage has its own deadline (RedisTimeout, SQSTimeout) and waits for no other: a
	// store that does not answer fails only its own messages, and costs the batch its deadline.
	var streamErrs, productionErrs, deadLetterErrs []error
	var wg sync.WaitGroup
	wg.Go(func() { streamErrs = b.router.streams.append(b.ctx, entries) })
	if len(deadLetters) > 0 {
		wg.Go(func() { deadLetterErrs = b.router.deadLetter.send(b.ctx, deadLetters) })
	}
	productionErrs = b.router.production.send(b.ctx, production)
	wg.Wait()

	for k, p := range poison {
		b.deadLettered(p, deadLetterErrs[k])
	}

	for k, i := range toStream {
		switch err := streamErrs[k]; {
		case err == nil:
			b.result.Routed[DestinationSandbox]++
		case errors.Is(err, errStreamGone):
			// Torn down since its route was cached: forget the route, drop the event.
			b.router.routes.memory.forget(b.dispatches[i].GuildID)
			b.drop(i, entries[k].sandboxID, DropReasonStreamGone, err.Error())
		case errors.Is(err, errStreamUnusable):
			b.drop(i, entries[k].sandboxID, DropReasonStreamUnusable, err.Error())
		default:
			b.fail(i, KindDeliveryStream, err)
		}
	}
	for k, i := range toProduction {
		if err := productionErrs[k]; err != nil {
			b.fail(i, KindDeliveryProduction, err)
			continue
		}
		b.result.Routed[DestinationProduction]++
	}
}

func countReason(counts map[string]int, reason string) map[string]int {
	if counts == nil {
		counts = map[string]int{}
	}
	counts[reason]++
	return counts
}
