package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// RouteStore is the authoritative route tier: the control plane, one query for many guilds
// (controlplane.Manager.LookupRoutes).
type RouteStore interface {
	LookupRoutes(ctx context.Context, guildIDs []string) (map[string]sandbox.Route, error)
}

// RoutePublisher publishes the route changes committed but not yet published
// (controlplane.Manager.PublishRouteChanges): the router's share in making a change whose
// publication failed converge (docs/streams.md, "Route changes").
type RoutePublisher interface {
	PublishRouteChanges(ctx context.Context) (int, error)
}

// RouteCache is the shared route tier in Redis, one round trip per call (routecache.Cache):
// Read returns the route generation with the entries, SetMany is a compare-and-set on it.
type RouteCache interface {
	Read(ctx context.Context, guilds []string) (routecache.Snapshot, error)
	SetMany(ctx context.Context, gen routecache.Generation, routes []sandbox.Route) error
}

// DefaultPublishInterval is how often a router publishes pending route changes.
const DefaultPublishInterval = time.Second

// resolver answers "where do this batch's guilds go" through the three tiers.
type resolver struct {
	memory *memoryCache
	cache  RouteCache // nil: no Redis tier
	store  RouteStore
	log    *slog.Logger

	// timeout bounds each Redis route cache call (Options.RedisTimeout): the tier is an
	// optimization, and an unreachable Redis must cost a batch little more than going
	// straight to PostgreSQL.
	timeout time.Duration

	publisher       RoutePublisher // nil: none
	publishInterval time.Duration
	now             func() time.Time
	publishMu       sync.Mutex
	lastPublish     time.Time
}

// lookupStats says which tier answered how many guilds, and how many Redis calls failed.
type lookupStats struct {
	memory, redis, database int
	cacheFailures           int
	// writeBackRefused is true when the write-back found the generation changed: a route
	// change was published while the batch read PostgreSQL, so its answer was not cached.
	writeBackRefused bool
}

// publishDue publishes pending route changes when the last attempt is publishInterval old.
// It costs one PostgreSQL query a second at most, whatever the batch rate, and runs before
// the batch reads the generation, so a change published here is seen by this very batch.
func (r *resolver) publishDue(ctx context.Context) {
	if r.publisher == nil {
		return
	}
	now := r.now()
	r.publishMu.Lock()
	due := now.Sub(r.lastPublish) >= r.publishInterval
	if due {
		r.lastPublish = now
	}
	r.publishMu.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if n, err := r.publisher.PublishRouteChanges(ctx); err != nil {
		r.log.WarnContext(ctx, "publishing pending route changes failed; the next batch retries", logkey.Error, err)
	} else if n > 0 {
		r.log.InfoContext(ctx, "published route changes left pending by their writer", "changes", n)
	}
}

// prefetched is a route generation read ahead of the batch's lookups.
type prefetched struct {
	done chan struct{}
	snap routecache.Snapshot
	err  error
}

// prefetch publishes pending route changes when due, then starts reading the route
// generation, for resolve to use when the in-process tier knows every guild. nil without a
// Redis tier or an in-process tier.
func (r *resolver) prefetch(ctx context.Context) *prefetched {
	if r.cache == nil || !r.memory.enabled() {
		return nil
	}
	r.publishDue(ctx)
	p := &prefetched{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.snap, p.err = r.cacheRead(ctx, nil)
	}()
	return p
}

// wait returns the prefetched generation.
func (p *prefetched) wait() (routecache.Snapshot, error) {
	<-p.done
	return p.snap, p.err
}

// resolve returns the route of every guild. When PostgreSQL fails, the guilds that no cache
// knew are missing from the map and err says why; a failing Redis tier is only counted. pre,
// when not nil, is the generation read while the batch was parsed.
func (r *resolver) resolve(ctx context.Context, guilds []string, pre *prefetched) (map[string]sandbox.Route, lookupStats, error) {
	var stats lookupStats
	routes := make(map[string]sandbox.Route, len(guilds))
	if r.cache == nil {
		// No Redis tier, hence no generation: the in-process tier holds by its TTL alone.
		misses := r.memory.get(guilds, routes)
		stats.memory = len(guilds) - len(misses)
		return routes, stats, r.fromStore(ctx, misses, routes, &stats, r.memory.generation(), false)
	}

	// The in-process entries are tentative until the generation, read in the same round trip
	// as the Redis entries of the other guilds, says they are current.
	tentative := make(map[string]sandbox.Route)
	misses := r.memory.get(guilds, tentative)
	var snap routecache.Snapshot
	var err error
	switch {
	case pre != nil && len(misses) == 0:
		snap, err = pre.wait()
	case pre != nil:
		_, _ = pre.wait() // superseded by the read below, which is fresher; wait to keep order
		snap, err = r.cacheRead(ctx, misses)
	default:
		r.publishDue(ctx)
		snap, err = r.cacheRead(ctx, misses)
	}
	if err != nil {
		// Without the generation neither cache tier can be trusted: PostgreSQL answers all.
		stats.cacheFailures++
		r.log.WarnContext(ctx, "route cache unavailable, resolving from the database", logkey.Guilds, len(guilds), logkey.Error, err)
		return routes, stats, r.fromStore(ctx, guilds, routes, &stats, "", false)
	}
	if !r.memory.sync(snap.Generation) && len(tentative) > 0 {
		// A route change was published since the in-process entries were filled: they are
		// void, and their guilds are looked up like the others.
		again := make([]string, 0, len(tentative))
		for g := range tentative {
			again = append(again, g)
		}
		clear(tentative)
		second, err := r.cacheRead(ctx, again)
		if err != nil {
			stats.cacheFailures++
			r.log.WarnContext(ctx, "route cache unavailable, resolving from the database", logkey.Guilds, len(guilds), logkey.Error, err)
			return routes, stats, r.fromStore(ctx, guilds, routes, &stats, "", false)
		}
		if second.Generation != snap.Generation {
			// Changed again in between: take the newer generation for everything.
			r.memory.sync(second.Generation)
			snap = routecache.Snapshot{Generation: second.Generation, Routes: second.Routes}
			misses = guilds
		} else {
			for g, route := range second.Routes {
				snap.Routes[g] = route
			}
			misses = append(misses, again...)
		}
	}
	for g, route := range tentative {
		routes[g] = route
	}
	stats.memory = len(tentative)

	fresh := make([]sandbox.Route, 0, len(snap.Routes))
	remaining := misses[:0:0]
	for _, g := range misses {
		if route, ok := snap.Routes[g]; ok {
			routes[g] = route
			fresh = append(fresh, route)
			continue
		}
		remaining = append(remaining, g)
	}
	stats.redis = len(fresh)
	r.memory.put(snap.Generation, fresh)
	return routes, stats, r.fromStore(ctx, remaining, routes, &stats, snap.Generation, true)
}

// fromStore resolves guilds from PostgreSQL into routes and, when gen was read from Redis
// before the query (writeBack), caches the answers in both tiers, for that generation only.
func (r *resolver) fromStore(ctx context.Context, guilds []string, routes map[string]sandbox.Route, stats *lookupStats,
	gen routecache.Generation, writeBack bool) error {
	if len(guilds) == 0 {
		return nil
	}
	stored, err := r.store.LookupRoutes(ctx, guilds)
	if err != nil {
		return fmt.Errorf("route lookup of %d guilds: %w", len(guilds), err)
	}
	found := make([]sandbox.Route, 0, len(guilds))
	for _, g := range guilds {
		route, ok := stored[g]
		if !ok {
			route = sandbox.Route{GuildID: g} // no row anywhere: not mapped
		}
		routes[g] = route
		found = append(found, route)
	}
	stats.database += len(found)
	if r.cache == nil {
		r.memory.put(gen, found)
		return nil
	}
	if !writeBack {
		return nil
	}
	err = r.cacheSet(ctx, gen, found)
	switch {
	case errors.Is(err, routecache.ErrGenerationChanged):
		// The answer may predate a published change: cache nothing, the next batch reads again.
		stats.writeBackRefused = true
		r.log.DebugContext(ctx, "route write-back refused: the route generation changed", logkey.Guilds, len(found))
	case err != nil:
		stats.cacheFailures++
		r.log.WarnContext(ctx, "route cache write-back failed", logkey.Guilds, len(found), logkey.Error, err)
	default:
		r.memory.put(gen, found)
	}
	return nil
}

func (r *resolver) cacheRead(ctx context.Context, guilds []string) (routecache.Snapshot, error) {
	var snap routecache.Snapshot
	err := withDeadline(ctx, r.timeout, func(ctx context.Context) error {
		var err error
		snap, err = r.cache.Read(ctx, guilds)
		return err
	})
	if err != nil {
		return routecache.Snapshot{}, err // snap may still be written by a call past its deadline
	}
	return snap, nil
}

func (r *resolver) cacheSet(ctx context.Context, gen routecache.Generation, routes []sandbox.Route) error {
	return withDeadline(ctx, r.timeout, func(ctx context.Context) error { return r.cache.SetMany(ctx, gen, routes) })
}
