// Package routecache is the shared Redis tier of route resolution: one entry per guild at
// keys.RouteCache(guild), saying "sandbox X in status S until T" (protected or not),
// "parked since T (sandbox X)", "protected" or "no sandbox", each with its own TTL, and the
// route generation (keys.RouteGeneration) that every published route change bumps.
//
// The generation makes the tiers exact (docs/streams.md, "Route changes"): a reader takes the
// generation in the same round trip as its entries; the in-process tier is valid only for the
// generation it was filled at; and a write-back of a route read from PostgreSQL is a
// compare-and-set on the generation read before that query, so an entry computed from an
// older state is never written after a change was published.
//
// Reads for many guilds are pipelined into one round trip. The generation scripts touch the
// generation and route keys together, which a Redis Cluster allows because they share one
// hash tag, hence one slot and one primary (keys, "The route slot").
package routecache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Defaults for the entry TTLs. Negative entries live shorter, though every change is
// published: the TTLs bound what an entry written by a buggy or foreign writer can do.
const (
	DefaultTTL         = 5 * time.Minute
	DefaultNegativeTTL = time.Minute
)

// Value encodings. The one place that knows them.
//
//	none
//	protected
//	sandbox:<id>:<status>:<expires_at unix ms>[:protected]
//	parked:<former sandbox id>:<parked_at unix ms>
//
// A mapped route that is also protected (a guild protected after it was mapped) keeps the
// flag: otherwise the guild would reach production from the database and the sandbox from
// every cache hit. Values of an older layout do not decode, so they read as a miss.
const (
	valueNone            = "none"
	valueProtected       = "protected"
	valueSandbox         = "sandbox:"
	valueParked          = "parked:"
	valueProtectedSuffix = ":protected"
)

// Cache reads and writes route cache entries and the route generation.
type Cache struct {
	rdb         redis.UniversalClient
	ttl         time.Duration
	negativeTTL time.Duration
	now         func() time.Time
}

// New returns a Cache; zero TTLs take the defaults.
func New(rdb redis.UniversalClient, ttl, negativeTTL time.Duration) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if negativeTTL <= 0 {
		negativeTTL = DefaultNegativeTTL
	}
	return &Cache{rdb: rdb, ttl: ttl, negativeTTL: negativeTTL, now: time.Now}
}

// Encode returns the cache value of a route.
func Encode(r sandbox.Route) string {
	switch {
	case r.Mapped():
		v := valueSandbox + r.SandboxID + ":" + string(r.Status) + ":" + strconv.FormatInt(r.ExpiresAt.UnixMilli(), 10)
		if r.Protected {
			v += valueProtectedSuffix
		}
		return v
	case r.Protected:
		return valueProtected
	case r.Parked():
		return valueParked + r.ParkedBy + ":" + strconv.FormatInt(r.ParkedAt.UnixMilli(), 10)
	default:
		return valueNone
	}
}

// Decode parses a cache value for guild; false for anything this package did not write.
func Decode(guild, v string) (sandbox.Route, bool) {
	switch v {
	case valueNone:
		return sandbox.Route{GuildID: guild}, true
	case valueProtected:
		return sandbox.Route{GuildID: guild, Protected: true}, true
	}
	if rest, ok := strings.CutPrefix(v, valueParked); ok {
		id, at, ok := strings.Cut(rest, ":")
		ms, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil || !sandbox.ValidID(id) {
			return sandbox.Route{}, false
		}
		return sandbox.Route{GuildID: guild, ParkedBy: id, ParkedAt: time.UnixMilli(ms).UTC()}, true
	}
	rest, ok := strings.CutPrefix(v, valueSandbox)
	if !ok {
		return sandbox.Route{}, false
	}
	rest, protected := strings.CutSuffix(rest, valueProtectedSuffix)
	f := strings.Split(rest, ":")
	if len(f) != 3 || !sandbox.ValidID(f[0]) || !sandbox.Status(f[1]).Valid() {
		return sandbox.Route{}, false
	}
	ms, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return sandbox.Route{}, false
	}
	return sandbox.Route{GuildID: guild, SandboxID: f[0], Status: sandbox.Status(f[1]),
		ExpiresAt: time.UnixMilli(ms).UTC(), Protected: protected}, true
}

// Generation identifies the published state of every route: it changes with every published
// route change. The zero value means Redis holds none (never set, or lost with the data).
type Generation string

// Snapshot is what one read returns: the generation and the valid entries among the guilds
// asked for, read in the same round trip.
type Snapshot struct {
	Generation Generation
	Routes     map[string]sandbox.Route
}

// Read returns the route generation and the cached routes of the guilds that have a valid
// entry, in one round trip. With no guilds it reads the generation alone.
func (c *Cache) Read(ctx context.Context, guilds []string) (Snapshot, error) {
	snap := Snapshot{Routes: make(map[string]sandbox.Route, len(guilds))}
	pipe := c.rdb.Pipeline()
	gen := pipe.Get(ctx, keys.RouteGeneration)
	cmds := make([]*redis.StringCmd, len(guilds))
	for i, g := range guilds {
		cmds[i] = pipe.Get(ctx, keys.RouteCache(g))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Snapshot{}, fmt.Errorf("route cache get: %w", err)
	}
	snap.Generation = Generation(gen.Val())
	for i, cmd := range cmds {
		v, err := cmd.Result()
		if err != nil {
			continue // redis.Nil: not cached
		}
		if r, ok := Decode(guilds[i], v); ok {
			snap.Routes[guilds[i]] = r
		}
	}
	return snap, nil
}

// GetMany returns the cached routes of the guilds that have a valid entry, in one round trip.
func (c *Cache) GetMany(ctx context.Context, guilds []string) (map[string]sandbox.Route, error) {
	snap, err := c.Read(ctx, guilds)
	return snap.Routes, err
}

// Get returns one guild's cached route, with ok false when there is no valid entry, and the
// entry's remaining TTL.
func (c *Cache) Get(ctx context.Context, guild string) (r sandbox.Route, ttl time.Duration, ok bool, err error) {
	pipe := c.rdb.Pipeline()
	get := pipe.Get(ctx, keys.RouteCache(guild))
	pttl := pipe.PTTL(ctx, keys.RouteCache(guild))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return r, 0, false, fmt.Errorf("route cache get: %w", err)
	}
	v, err := get.Result()
	if err != nil {
		return r, 0, false, nil
	}
	r, ok = Decode(guild, v)
	return r, pttl.Val(), ok, nil
}

// writeBack sets the entries only while the generation is still the one the caller read
// before it queried PostgreSQL. KEYS[1] is the generation, KEYS[2..] the route keys;
// ARGV[1] the expected generation ("" for none), then a value and a TTL in ms per route key.
var writeBack = redis.NewScript(`
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
	return 0
end
for i = 2, #KEYS do
	redis.call('SET', KEYS[i], ARGV[2 * i - 2], 'PX', ARGV[2 * i - 1])
end
return 1`)

// ErrGenerationChanged says a write-back was refused: a route change was published since the
// generation was read, so the routes may be older than the published state.
var ErrGenerationChanged = errors.New("route cache: the route generation changed; entries not written")

// SetMany writes routes computed from PostgreSQL after the caller read generation gen, in
// one round trip, only if no route change was published meanwhile (ErrGenerationChanged
// otherwise). Mapped and parked routes take the TTL, the others the negative TTL.
func (c *Cache) SetMany(ctx context.Context, gen Generation, routes []sandbox.Route) error {
	if len(routes) == 0 {
		return nil
	}
	ks := make([]string, 0, len(routes)+1)
	args := make([]any, 0, 2*len(routes)+1)
	ks = append(ks, keys.RouteGeneration)
	args = append(args, string(gen))
	for _, r := range routes {
		ttl := c.negativeTTL
		if r.Mapped() || r.Parked() {
			ttl = c.ttl
		}
		ks = append(ks, keys.RouteCache(r.GuildID))
		args = append(args, Encode(r), ttl.Milliseconds())
	}
	n, err := writeBack.Run(ctx, c.rdb, ks, args...).Int()
	if err != nil {
		return fmt.Errorf("route cache set: %w", err)
	}
	if n == 0 {
		return ErrGenerationChanged
	}
	return nil
}

// publish bumps the generation and deletes the guilds' entries, atomically. A generation
// that does not exist (never set, evicted, or lost in a restart) starts from the caller's
// clock in microseconds, so a generation never comes back to a value a reader may still hold.
// KEYS[1] is the generation, KEYS[2..] the route keys; ARGV[1] the starting value. It returns
// the new generation, then 1 or 0 per route key: whether its entry existed. One MGET and one
// DEL serve every guild, so a publication costs the server the same few commands whatever
// the number of guilds.
var publish = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	redis.call('SET', KEYS[1], ARGV[1])
end
local out = {redis.call('INCR', KEYS[1])}
if #KEYS == 1 then
	return out
end
local routes = {unpack(KEYS, 2)}
local values = redis.call('MGET', unpack(routes))
redis.call('DEL', unpack(routes))
for i = 1, #routes do
	out[i + 1] = values[i] and 1 or 0
end
return out`)

// MaxPublish bounds the guilds of one Publish: the script unpacks them onto Lua's stack, and
// keeps the server busy for the time of one MGET and one DEL of that many keys.
const MaxPublish = 1000

// Publish makes route changes of guilds visible to every reader: it bumps the generation
// (which voids every in-process tier filled before) and deletes the guilds' entries, in one
// atomic step, and returns which of the guilds had an entry (existed[i] for guilds[i]), so
// that a caller publishing for several sandboxes at once can count each one's.
func (c *Cache) Publish(ctx context.Context, guilds ...string) (existed []bool, err error) {
	if len(guilds) > MaxPublish {
		return nil, fmt.Errorf("route cache publish: %d guilds, at most %d at once", len(guilds), MaxPublish)
	}
	ks := make([]string, 0, len(guilds)+1)
	ks = append(ks, keys.RouteGeneration)
	for _, g := range guilds {
		ks = append(ks, keys.RouteCache(g))
	}
	res, err := publish.Run(ctx, c.rdb, ks, c.now().UnixMicro()).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("route cache publish: %w", err)
	}
	if len(res) != len(guilds)+1 {
		return nil, fmt.Errorf("route cache publish: %d results for %d guilds", len(res)-1, len(guilds))
	}
	existed = make([]bool, len(guilds))
	for i := range guilds {
		existed[i] = res[i+1] == 1
	}
	return existed, nil
}

// Invalidate publishes route changes of guilds (Publish without the count).
func (c *Cache) Invalidate(ctx context.Context, guilds ...string) error {
	_, err := c.Publish(ctx, guilds...)
	return err
}

// SetCurrent writes routes as of the current generation, read first: for callers whose
// routes cannot predate a published change (tests seeding the cache, tools). The router
// writes back with SetMany and the generation it read before its query.
func (c *Cache) SetCurrent(ctx context.Context, routes []sandbox.Route) error {
	snap, err := c.Read(ctx, nil)
	if err != nil {
		return err
	}
	return c.SetMany(ctx, snap.Generation, routes)
}
