package routing_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/gateway"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/routing"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The batch of the performance goal: 10,000 events, 10% for 50 sandboxes, 90% for production
// (400 unmapped guilds, and one production event in nine without a guild).
const (
	benchEvents           = 10000
	benchSandboxes        = 50
	benchProductionGuilds = 400
)

// templateGuild is the guild id of the payloads in testdata/payloads.
const templateGuild = "1081240586043576360"

// fixture is a control plane with sandboxes and a batch routed to them.
type fixture struct {
	*env
	batch     []routing.Message
	sink      *countingSink
	router    *routing.Router
	trips     *roundTrips
	sandboxes int // events for sandboxes in the batch
	guilds    int // distinct guilds in the batch
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	trips := &roundTrips{}
	e := newEnv(tb)
	e.rdb.AddHook(trips)
	return newFixtureOn(tb, e, trips)
}

// newFixtureOn is newFixture on e, whose Redis client reports its round trips to trips.
func newFixtureOn(tb testing.TB, e *env, trips *roundTrips) *fixture {
	tb.Helper()
	templates := payloadTemplates(tb)
	sandboxGuilds := make([]string, benchSandboxes)
	for i := range sandboxGuilds {
		sandboxGuilds[i] = fmt.Sprintf("90000000000000%05d", i)
		e.sandbox(tb, fmt.Sprintf("bench-%02d", i), sandboxGuilds[i])
	}
	f := &fixture{env: e, sink: &countingSink{}, trips: trips}
	production := 0
	for i := range benchEvents {
		tmpl := templates[i%len(templates)]
		var guild string
		switch i % 10 {
		case 0:
			guild = sandboxGuilds[(i/10)%benchSandboxes]
			f.sandboxes++
		case 5: // no guild
		default:
			guild = fmt.Sprintf("80000000000000%05d", production%benchProductionGuilds)
			production++
		}
		body := strings.ReplaceAll(tmpl, `"`+templateGuild+`"`, "null")
		if guild != "" {
			body = strings.ReplaceAll(tmpl, templateGuild, guild)
		}
		if d, err := gateway.Parse([]byte(body)); err != nil || d.GuildID != guild {
			tb.Fatalf("event %d: guild %q, want %q, error %v", i, d.GuildID, guild, err)
		}
		f.batch = append(f.batch, routing.Message{ID: fmt.Sprintf("bench-%05d", i), Body: body})
	}
	f.guilds = benchSandboxes + benchProductionGuilds
	f.router = e.router(tb, f.sink)
	return f
}

// payloadTemplates reads realistic dispatch payloads (0.5 to 1.3 KB) that carry templateGuild.
func payloadTemplates(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob("testdata/payloads/*.json")
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no payload templates: %v", err)
	}
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		d, err := gateway.Parse(b)
		if err != nil || d.GuildID != templateGuild {
			tb.Fatalf("%s: guild %q, error %v", p, d.GuildID, err)
		}
		out = append(out, strings.TrimSpace(string(b)))
	}
	return out
}

// countingSink is a production queue that accepts everything and counts it.
type countingSink struct {
	calls, entries atomic.Int64
}

func (s *countingSink) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	s.calls.Add(1)
	s.entries.Add(int64(len(in.Entries)))
	out := &sqs.SendMessageBatchOutput{Successful: make([]types.SendMessageBatchResultEntry, len(in.Entries))}
	for i, e := range in.Entries {
		out.Successful[i] = types.SendMessageBatchResultEntry{Id: e.Id}
	}
	return out, nil
}

// roundTrips is a go-redis hook recording every round trip to Redis as "command×count" for
// each command name in it, in order.
type roundTrips struct {
	mu    sync.Mutex
	trips []string
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.record([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.record(cmds)
		return next(ctx, cmds)
	}
}

func (h *roundTrips) record(cmds []redis.Cmder) {
	var names []string
	counts := map[string]int{}
	for _, c := range cmds {
		switch c.Name() {
		case "hello", "select", "client", "auth":
			continue // a new connection's handshake, not a round trip of the batch
		case "eval":
			continue // EVALSHA's fallback when the server lost the script: the same step
		}
		if counts[c.Name()] == 0 {
			names = append(names, c.Name())
		}
		counts[c.Name()]++
	}
	if len(names) == 0 {
		return
	}
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s×%d", n, counts[n]))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trips = append(h.trips, strings.Join(parts, " "))
}

func (h *roundTrips) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.trips
	h.trips = nil
	return out
}

// streamTrips merges the stream delivery's round trips (the last ones of a batch) into one
// entry: on a cluster the appends go in one pipeline per primary (stream.go), concurrently, in
// no set order; it fails the test if there are more of them than nodes (one, standalone).
func streamTrips(t testing.TB, trips []string) []string {
	t.Helper()
	first := slices.IndexFunc(trips, func(s string) bool { return strings.HasPrefix(s, "xadd×") })
	if first < 0 {
		return trips
	}
	var xadds, evals, n int
	for _, trip := range trips[first:] {
		var x, e int
		if _, err := fmt.Sscanf(trip, "xadd×%d evalsha×%d", &x, &e); err != nil {
			t.Fatalf("round trip %q among the stream appends: %v", trip, err)
		}
		xadds, evals, n = xadds+x, evals+e, n+1
	}
	if primaries := len(testenv.RedisAddrs(t)); !testenv.RedisCluster() && n > 1 || n > primaries {
		t.Errorf("the stream appends took %d round trips: %q", n, trips[first:])
	}
	return append(slices.Clone(trips[:first]), fmt.Sprintf("xadd×%d evalsha×%d", xadds, evals))
}

// TestRedisRoundTripsPerBatch counts what the performance goal promises: route resolution
// costs one Redis round trip per batch with the route generation read with the entries (two
// when entries must be written back, a compare-and-set script), stream delivery one more; and
// the generation is read while the batch is parsed, which is the only lookup when every
// guild is in the in-process tier: that read is what makes a published change visible to the
// next batch.
func TestRedisRoundTripsPerBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	guilds := f.guilds
	// The appends, then each sandbox's usage count, in one pipeline (usage.go).
	xadds := fmt.Sprintf("xadd×%d evalsha×%d", f.sandboxes, benchSandboxes)
	route := func() {
		t.Helper()
		res := f.router.Route(ctx, nil, f.batch)
		if len(res.Failed) != 0 || res.Routed[routing.DestinationSandbox] != f.sandboxes ||
			res.Routed[routing.DestinationProduction] != benchEvents-f.sandboxes {
			t.Fatalf("failed %d, routed %v", len(res.Failed), res.Routed)
		}
	}
	f.trips.take()

	route() // nothing cached: one read, one write-back, one delivery
	// The generation is read while the batch is parsed (get×1); with guilds to look up, the
	// lookup round trip reads it again with their entries.
	equal(t, "cold round trips", streamTrips(t, f.trips.take()), []string{"get×1", fmt.Sprintf("get×%d", guilds+1), "evalsha×1", xadds})

	f.clock.Add(memoryTTL) // the in-process tier expires; Redis knows every guild
	route()
	equal(t, "round trips with Redis warm", streamTrips(t, f.trips.take()), []string{"get×1", fmt.Sprintf("get×%d", guilds+1), xadds})

	route() // within the in-process TTL: only the generation leaves the process
	equal(t, "round trips with memory warm", streamTrips(t, f.trips.take()), []string{"get×1", xadds})

	if calls, entries := f.sink.calls.Load(), f.sink.entries.Load(); calls != 3*900 || entries != 3*9000 {
		t.Errorf("production sink: %d calls with %d entries, want %d with %d", calls, entries, 3*900, 3*9000)
	}
}

// BenchmarkRouteBatch routes the 10,000-event batch with the Router and with a naive router
// that makes one Redis round trip per event for its route and one per sandbox event for its
// stream entry (production events go one by one to the same counting sink). Run it with
//
//	scripts/with-services.sh go test -run '^$' -bench RouteBatch -benchtime 10x ./shared/routing/
//
// Sub-benchmarks:
//   - router: the in-process route cache is cold for every batch (one Redis round trip for
//     the routes), the realistic case for a batch every few seconds;
//   - router-memory-warm: batches within the in-process TTL (no lookup leaves the process);
//   - naive: the baseline;
//   - interleaved: one router batch then one naive batch per iteration, each timed on its
//     own, so that both see the same machine load; it reports both rates and their ratio;
//   - generation-cost: what reading the route generation costs, interleaved: the router with
//     its in-process tier warm (it still reads the generation, one GET) against the same
//     router without a Redis tier (its in-process tier trusted by TTL alone, as before route
//     generations existed), reporting the share of events/s the generation read takes
//     (from the median batch of each: the machine is shared).
func BenchmarkRouteBatch(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	eventsPerSecond := func(d time.Duration, batches int) float64 {
		return float64(benchEvents*batches) / d.Seconds()
	}
	routeOnce := func(b *testing.B) {
		if res := f.router.Route(ctx, nil, f.batch); len(res.Failed) != 0 {
			b.Fatalf("failed: %d", len(res.Failed))
		}
	}

	// The throughput sub-benchmarks, each timing one batch an iteration.
	for _, sub := range []struct {
		name  string
		batch func(b *testing.B)
	}{
		{"router", func(b *testing.B) {
			f.clock.Add(memoryTTL) // in-process tier cold: every batch asks Redis once
			routeOnce(b)
		}},
		{"router-memory-warm", routeOnce},
		{"naive", func(b *testing.B) {
			if err := f.naiveRoute(ctx); err != nil {
				b.Fatal(err)
			}
		}},
	} {
		b.Run(sub.name, func(b *testing.B) {
			f.warmRedis(b)
			b.ReportAllocs()
			for b.Loop() {
				sub.batch(b)
			}
			b.ReportMetric(eventsPerSecond(b.Elapsed(), b.N), "events/s")
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		f.warmRedis(b)
		var router, naive time.Duration
		for b.Loop() {
			f.clock.Add(memoryTTL)
			start := time.Now()
			routeOnce(b)
			router += time.Since(start)
			start = time.Now()
			if err := f.naiveRoute(ctx); err != nil {
				b.Fatal(err)
			}
			naive += time.Since(start)
		}
		b.ReportMetric(eventsPerSecond(router, b.N), "router-events/s")
		b.ReportMetric(eventsPerSecond(naive, b.N), "naive-events/s")
		b.ReportMetric(float64(naive)/float64(router), "speedup")
	})
	b.Run("generation-cost", func(b *testing.B) {
		f.warmRedis(b)
		ttlOnly := f.env.router(b, f.sink, func(o *routing.Options) { o.Cache = nil })
		routeOnce(b) // both in-process tiers warm
		if res := ttlOnly.Route(ctx, nil, f.batch); len(res.Failed) != 0 {
			b.Fatalf("failed: %d", len(res.Failed))
		}
		var withGen, without []time.Duration
		for b.Loop() {
			start := time.Now()
			routeOnce(b)
			withGen = append(withGen, time.Since(start))
			start = time.Now()
			if res := ttlOnly.Route(ctx, nil, f.batch); len(res.Failed) != 0 {
				b.Fatalf("failed: %d", len(res.Failed))
			}
			without = append(without, time.Since(start))
		}
		// Medians: one batch slowed by the shared machine must not decide the share.
		median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
		mWith, mWithout := median(withGen), median(without)
		b.ReportMetric(eventsPerSecond(mWith, 1), "with-generation-events/s")
		b.ReportMetric(eventsPerSecond(mWithout, 1), "ttl-only-events/s")
		b.ReportMetric(100*(1-float64(mWithout)/float64(mWith)), "generation-cost-%")
	})
}

// BenchmarkRouteBatchStandaloneVsCluster routes the 10,000-event batch (in-process tier cold,
// Redis warm, as BenchmarkRouteBatch's router) on the standalone server and on the Redis
// Cluster in one run, reporting events/s and the Redis round trips per batch. The cluster's
// are counted per node (a hook on each node client): a cluster pipeline is one round trip
// per primary it touches. Run it without SANDBOX_TEST_REDIS_MODE (the cluster is taken
// through testenv's lock either way):
//
//	scripts/with-services.sh go test -run '^$' -bench RouteBatchStandaloneVsCluster -benchtime 20x ./shared/routing/
func BenchmarkRouteBatchStandaloneVsCluster(b *testing.B) {
	testenv.SkipOnRedisCluster(b, "redis=standalone needs the standalone server")
	for _, mode := range []string{"standalone", "cluster"} {
		b.Run("redis="+mode, func(b *testing.B) {
			var f *fixture
			if mode == "standalone" {
				f = newFixture(b)
			} else {
				trips := &roundTrips{}
				rdb := testenv.ClusterRedis(b, func(node *redis.Client) { node.AddHook(trips) })
				f = newFixtureOn(b, newEnvOn(b, rdb), trips)
			}
			ctx := context.Background()
			f.warmRedis(b)
			f.trips.take()
			for b.Loop() {
				f.clock.Add(memoryTTL) // in-process tier cold: every batch asks Redis once
				if res := f.router.Route(ctx, nil, f.batch); len(res.Failed) != 0 {
					b.Fatalf("failed: %d", len(res.Failed))
				}
			}
			b.ReportMetric(float64(benchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(len(f.trips.take()))/float64(b.N), "redis-trips/batch")
		})
	}
}

// warmRedis writes the route of every guild of the batch to the Redis route cache, as the
// steady state of a router has it (entries expire, so each sub-benchmark starts warm).
func (f *fixture) warmRedis(tb testing.TB) {
	tb.Helper()
	var guilds []string
	for _, m := range f.batch {
		if d, _ := gateway.Parse([]byte(m.Body)); d.GuildID != "" && !slices.Contains(guilds, d.GuildID) {
			guilds = append(guilds, d.GuildID)
		}
	}
	routes, err := f.manager.LookupRoutes(context.Background(), guilds)
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.cache.SetCurrent(context.Background(), slices.Collect(maps.Values(routes))); err != nil {
		tb.Fatal(err)
	}
}

// naiveRoute is the baseline: the same decisions, one round trip at a time (and, on a cache
// miss, one query and one write-back for the guild).
func (f *fixture) naiveRoute(ctx context.Context) error {
	for i := range f.batch {
		m := &f.batch[i]
		d, err := gateway.Parse([]byte(m.Body))
		if err != nil {
			return err
		}
		if d.GuildID != "" {
			route, err := f.naiveLookup(ctx, d.GuildID)
			if err != nil {
				return err
			}
			if route.Deliverable(time.Now()) && !route.Protected {
				err := f.rdb.XAdd(ctx, &redis.XAddArgs{
					Stream: keys.EventStream(route.SandboxID), NoMkStream: true, MaxLen: routing.DefaultStreamMaxLen, Approx: true,
					Values: []string{keys.StreamFieldType, d.Type, keys.StreamFieldPayload, m.Body, keys.StreamFieldMessageID, m.ID},
				}).Err()
				if err != nil {
					return err
				}
				continue
			}
			if route.Mapped() && !route.Protected {
				continue // dropped
			}
		}
		_, err = f.sink.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{Entries: []types.SendMessageBatchRequestEntry{{Id: &m.ID, MessageBody: &m.Body}}})
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *fixture) naiveLookup(ctx context.Context, guild string) (sandbox.Route, error) {
	v, err := f.rdb.Get(ctx, keys.RouteCache(guild)).Result()
	if err == nil {
		if route, ok := routecache.Decode(guild, v); ok {
			return route, nil
		}
	} else if !errors.Is(err, redis.Nil) {
		return sandbox.Route{}, err
	}
	routes, err := f.manager.LookupRoutes(ctx, []string{guild})
	if err != nil {
		return sandbox.Route{}, err
	}
	route := routes[guild]
	return route, f.cache.SetCurrent(ctx, []sandbox.Route{route})
}

// BenchmarkRouteFIFOBatch routes the goal batch in batches of 10 (the most a FIFO queue
// delivers at once) shaped four ways, interleaved in one loop so the figures share the
// machine's load: a standard queue's batch (no message groups), and FIFO batches with a group
// per guild, per shard (4 shards) and all in one group. A FIFO batch is delivered in rounds,
// one message of each group per round (routing/ordered.go), so its cost grows with the
// longest group: the ratios against the standard batch are what to read.
func BenchmarkRouteFIFOBatch(b *testing.B) {
	f := newFixture(b)
	f.warmRedis(b)
	ctx := context.Background()
	const batchSize = 10
	shapes := []struct {
		name  string
		group func(i int, guild string) string
	}{
		{"standard", func(int, string) string { return "" }},
		{"fifo-per-guild", func(i int, guild string) string { return cmp.Or(guild, "no-guild") }},
		{"fifo-per-shard", func(i int, _ string) string { return fmt.Sprintf("shard-%d", i%4) }},
		{"fifo-one-group", func(int, string) string { return "shard-0" }},
	}
	batches := make([][][]routing.Message, len(shapes)) // shape, batch, message
	for s, shape := range shapes {
		for start := 0; start+batchSize <= len(f.batch); start += batchSize {
			batch := slices.Clone(f.batch[start : start+batchSize])
			for k := range batch {
				d, _ := gateway.Parse([]byte(batch[k].Body))
				batch[k].GroupID = shape.group(start+k, d.GuildID)
			}
			batches[s] = append(batches[s], batch)
		}
	}
	spent := make([]time.Duration, len(shapes))
	sends := make([]int64, len(shapes)) // SendMessageBatch calls
	trips := make([]int, len(shapes))   // Redis round trips
	n := 0
	for b.Loop() {
		for s := range shapes {
			batch := batches[s][n%len(batches[s])]
			calls := f.sink.calls.Load()
			f.trips.take()
			start := time.Now()
			if res := f.router.Route(ctx, nil, batch); len(res.Failed) != 0 {
				b.Fatalf("%s: failed: %d", shapes[s].name, len(res.Failed))
			}
			spent[s] += time.Since(start)
			sends[s] += f.sink.calls.Load() - calls
			trips[s] += len(f.trips.take())
		}
		n++
	}
	for s, shape := range shapes {
		b.ReportMetric(float64(n*batchSize)/spent[s].Seconds(), shape.name+"-events/s")
		b.ReportMetric(float64(sends[s])/float64(n), shape.name+"-sqs-calls/batch")
		b.ReportMetric(float64(trips[s])/float64(n), shape.name+"-redis-trips/batch")
		if s > 0 {
			b.ReportMetric(float64(spent[s])/float64(spent[0]), shape.name+"-cost-x")
		}
	}
}
