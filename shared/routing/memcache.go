package routing

import (
	"sync"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// DefaultMemoryCacheSize bounds the in-process route cache. A production bot sees many
// guilds, each cached as "no sandbox": the bound keeps memory flat (about 100 bytes an entry).
const DefaultMemoryCacheSize = 50000

// memoryCache is the in-process route tier: a map with one expiry per entry and a size bound,
// valid for one route generation only. Every batch reads the generation (in the round trip of
// its Redis lookups); when it differs from the one the entries were filled at, they are all
// dropped, so a published route change is seen by the very next batch. The TTL still bounds
// an entry's life when the generation cannot be read.
type memoryCache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]memoryEntry
	gen     routecache.Generation // the generation the entries were filled at
}

type memoryEntry struct {
	route   sandbox.Route
	expires time.Time
}

func newMemoryCache(ttl time.Duration, max int, now func() time.Time) *memoryCache {
	return &memoryCache{ttl: ttl, max: max, now: now, entries: map[string]memoryEntry{}}
}

// enabled is false when the TTL is zero: every lookup then goes to Redis.
func (c *memoryCache) enabled() bool { return c.ttl > 0 && c.max > 0 }

// generation returns the generation the entries were filled at.
func (c *memoryCache) generation() routecache.Generation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// sync makes gen the current generation: the entries of any other generation are dropped.
// It reports whether the entries were kept.
func (c *memoryCache) sync(gen routecache.Generation) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		return true
	}
	c.gen = gen
	clear(c.entries)
	return false
}

// get fills routes with the fresh entries of guilds and returns the guilds it did not know.
// The entries are those of the generation the cache holds (see sync).
func (c *memoryCache) get(guilds []string, routes map[string]sandbox.Route) (misses []string) {
	if !c.enabled() {
		return guilds
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range guilds {
		e, ok := c.entries[g]
		if ok && now.Before(e.expires) {
			routes[g] = e.route
			continue
		}
		misses = append(misses, g)
	}
	return misses
}

// put stores routes read at generation gen, making room first when the cache is full:
// expired entries go, then arbitrary ones (map iteration order), which at worst costs a few
// extra Redis lookups. Routes of another generation than the cache's are not stored: they
// may be older than what the cache's generation says.
func (c *memoryCache) put(gen routecache.Generation, routes []sandbox.Route) {
	if !c.enabled() || len(routes) == 0 {
		return
	}
	now := c.now()
	expires := now.Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries)+len(routes) > c.max {
		for g, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, g)
			}
		}
		for g := range c.entries {
			if len(c.entries)+len(routes) <= c.max {
				break
			}
			delete(c.entries, g)
		}
	}
	for i, r := range routes {
		if i >= c.max {
			break
		}
		c.entries[r.GuildID] = memoryEntry{route: r, expires: expires}
	}
}

// forget drops one guild, when the router learns its cached route is out of date.
func (c *memoryCache) forget(guild string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, guild)
}

func (c *memoryCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
