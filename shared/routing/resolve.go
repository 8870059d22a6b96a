package routing

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// RouteStore is the authoritative route tier: the control plane, one query for many guilds
// (controlplane.Manager.LookupRoutes).
type RouteStore interface {
	LookupRoutes(ctx context.Context, guildIDs []string) (map[string]sandbox.Route, error)
}

// RouteCache is the shared route tier in Redis, one round trip per call (routecache.Cache).
type RouteCache interface {
	GetMany(ctx context.Context, guilds []string) (map[string]sandbox.Route, error)
	SetMany(ctx context.Context, routes []sandbox.Route) error
}

// cacheTimeout bounds each Redis route cache call: the tier is an optimization, and an
// unreachable Redis must cost a batch little more than going straight to PostgreSQL.
const cacheTimeout = time.Second

// resolver answers "where do this batch's guilds go" through the three tiers.
type resolver struct {
	memory *memoryCache
	cache  RouteCache // nil: no Redis tier
	store  RouteStore
	log    *slog.Logger
}

// lookupStats says which tier answered how many guilds, and how many Redis calls failed.
type lookupStats struct {
	memory, redis, database int
	cacheFailures           int
}

// resolve returns the route of every guild. When PostgreSQL fails, the guilds that no cache
// knew are missing from the map and err says why; a failing Redis tier is only counted.
func (r *resolver) resolve(ctx context.Context, guilds []string) (map[string]sandbox.Route, lookupStats, error) {
	var stats lookupStats
	routes := make(map[string]sandbox.Route, len(guilds))

	misses := r.memory.get(guilds, routes)
	stats.memory = len(guilds) - len(misses)
	if len(misses) == 0 {
		return routes, stats, nil
	}

	cacheUp := r.cache != nil
	if cacheUp {
		cached, err := r.cacheGet(ctx, misses)
		if err != nil {
			cacheUp = false
			stats.cacheFailures++
			r.log.WarnContext(ctx, "route cache unavailable, resolving from the database",
				"guilds", len(misses), "error", err)
		}
		fresh := make([]sandbox.Route, 0, len(cached))
		remaining := misses[:0:0]
		for _, g := range misses {
			if route, ok := cached[g]; ok {
				routes[g] = route
				fresh = append(fresh, route)
				continue
			}
			remaining = append(remaining, g)
		}
		stats.redis = len(fresh)
		r.memory.put(fresh)
		misses = remaining
		if len(misses) == 0 {
			return routes, stats, nil
		}
	}

	stored, err := r.store.LookupRoutes(ctx, misses)
	if err != nil {
		return routes, stats, fmt.Errorf("route lookup of %d guilds: %w", len(misses), err)
	}
	found := make([]sandbox.Route, 0, len(misses))
	for _, g := range misses {
		route, ok := stored[g]
		if !ok {
			route = sandbox.Route{GuildID: g} // no row anywhere: not mapped
		}
		routes[g] = route
		found = append(found, route)
	}
	stats.database = len(found)
	r.memory.put(found)
	if cacheUp {
		if err := r.cacheSet(ctx, found); err != nil {
			stats.cacheFailures++
			r.log.WarnContext(ctx, "route cache write-back failed", "guilds", len(found), "error", err)
		}
	}
	return routes, stats, nil
}

func (r *resolver) cacheGet(ctx context.Context, guilds []string) (map[string]sandbox.Route, error) {
	ctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	defer cancel()
	return r.cache.GetMany(ctx, guilds)
}

func (r *resolver) cacheSet(ctx context.Context, routes []sandbox.Route) error {
	ctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	defer cancel()
	return r.cache.SetMany(ctx, routes)
}
