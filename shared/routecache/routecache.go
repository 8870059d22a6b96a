// Package routecache is the shared Redis tier of route resolution: one entry per guild at
// keys.RouteCache(guild), saying "sandbox X in status S" (protected or not), "protected" or
// "no sandbox", each with its own TTL. Reads and writes for many guilds are pipelined into one
// round trip (MGET would fail across cluster slots, since route keys carry no hash tag).
package routecache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Defaults for the entry TTLs. Negative entries live shorter: a guild mapped meanwhile is
// invalidated explicitly, but a short TTL bounds the damage of a lost invalidation.
const (
	DefaultTTL         = 5 * time.Minute
	DefaultNegativeTTL = time.Minute
)

// Value encodings. The one place that knows them.
//
// A mapped route that is also protected (a guild protected after it was mapped, or mapped
// through a race with its protection) is sandbox:<id>:<status>:protected: the flag must
// survive the cache, or the guild reaches production from the database and the sandbox from
// every cache hit. Entries written before the suffix existed (sandbox:<id>:<status>) still
// decode, as unprotected; they live minutes, and the router applies its configured protected
// guilds after every tier anyway.
const (
	valueNone            = "none"
	valueProtected       = "protected"
	valueSandbox         = "sandbox:"   // sandbox:<id>:<status>[:protected]
	valueProtectedSuffix = ":protected" // after a mapped route's status
)

// Cache reads and writes route cache entries.
type Cache struct {
	rdb         redis.UniversalClient
	ttl         time.Duration
	negativeTTL time.Duration
}

// New returns a Cache; zero TTLs take the defaults.
func New(rdb redis.UniversalClient, ttl, negativeTTL time.Duration) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if negativeTTL <= 0 {
		negativeTTL = DefaultNegativeTTL
	}
	return &Cache{rdb: rdb, ttl: ttl, negativeTTL: negativeTTL}
}

// Encode returns the cache value of a route.
func Encode(r sandbox.Route) string {
	switch {
	case r.Mapped() && r.Protected:
		return valueSandbox + r.SandboxID + ":" + string(r.Status) + valueProtectedSuffix
	case r.Mapped():
		return valueSandbox + r.SandboxID + ":" + string(r.Status)
	case r.Protected:
		return valueProtected
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
	rest, ok := strings.CutPrefix(v, valueSandbox)
	if !ok {
		return sandbox.Route{}, false
	}
	rest, protected := strings.CutSuffix(rest, valueProtectedSuffix)
	id, status, ok := strings.Cut(rest, ":")
	if !ok || !sandbox.ValidID(id) || !sandbox.Status(status).Valid() {
		return sandbox.Route{}, false
	}
	return sandbox.Route{GuildID: guild, SandboxID: id, Status: sandbox.Status(status), Protected: protected}, true
}

// GetMany returns the cached routes of the guilds that have a valid entry, in one round trip.
func (c *Cache) GetMany(ctx context.Context, guilds []string) (map[string]sandbox.Route, error) {
	out := make(map[string]sandbox.Route, len(guilds))
	if len(guilds) == 0 {
		return out, nil
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(guilds))
	for i, g := range guilds {
		cmds[i] = pipe.Get(ctx, keys.RouteCache(g))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("route cache get: %w", err)
	}
	for i, cmd := range cmds {
		v, err := cmd.Result()
		if err != nil {
			continue // redis.Nil: not cached
		}
		if r, ok := Decode(guilds[i], v); ok {
			out[guilds[i]] = r
		}
	}
	return out, nil
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

// SetMany writes routes in one round trip: mapped routes with the TTL, the others with the
// negative TTL.
func (c *Cache) SetMany(ctx context.Context, routes []sandbox.Route) error {
	if len(routes) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	for _, r := range routes {
		ttl := c.negativeTTL
		if r.Mapped() {
			ttl = c.ttl
		}
		pipe.Set(ctx, keys.RouteCache(r.GuildID), Encode(r), ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("route cache set: %w", err)
	}
	return nil
}

// Invalidate deletes the entries of the guilds, in one round trip.
func (c *Cache) Invalidate(ctx context.Context, guilds ...string) error {
	if len(guilds) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	for _, g := range guilds {
		pipe.Del(ctx, keys.RouteCache(g))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("route cache invalidate: %w", err)
	}
	return nil
}
