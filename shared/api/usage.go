package api

// This file: what sandboxes used, in the answers of get and list (docs/api.md, "Usage"). The
// counters come from the sandbox's usage hash, which the router and the cleanup write and the
// sandbox's own code cannot (keys.Usage); the stream's length and pending entries from its
// stream; the schema's relations' size from the catalog, and its catalog rows' as the last
// cleanup run counted them (from the usage hash: reading them live costs a pass over some
// thirty catalogs, whatever the page's size). A page of any size costs one Redis round trip
// and one PostgreSQL query. A store that cannot be read leaves its fields zero and says so
// (unavailable): a sandbox's usage never fails its read.

import (
	"context"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// DefaultIdleAfter is SANDBOX_IDLE_AFTER's default: a running sandbox without an event for
// this long is idle.
const DefaultIdleAfter = 6 * time.Hour

// Stores usage cannot read, as Usage.Unavailable names them.
const (
	usageRedis    = "redis"
	usageDatabase = "database"
)

// addUsage fills the usage of views[i], the view of sbs[i], for every sandbox that is not
// destroyed (a destroyed sandbox has nothing left to use).
func (h *Handler) addUsage(ctx context.Context, sbs []*sandbox.Sandbox, views []apiwire.Sandbox) {
	var ids []string
	for _, sb := range sbs {
		if sb.Status != sandbox.StatusDestroyed {
			ids = append(ids, sb.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	var unavailable []string
	fromRedis, err := h.deps.Resources.RedisUsage(ctx, ids)
	if err != nil {
		h.log.WarnContext(ctx, "reading the sandboxes' usage from Redis failed", "sandboxes", len(ids), logkey.Error, err)
		unavailable = append(unavailable, usageRedis)
	}
	sizes, err := h.deps.Resources.RelationSizes(ctx, ids)
	if err != nil {
		h.log.WarnContext(ctx, "reading the sandboxes' schema sizes failed", "sandboxes", len(ids), logkey.Error, err)
		unavailable = append(unavailable, usageDatabase)
	}
	now := h.now()
	for i, sb := range sbs {
		if sb.Status == sandbox.StatusDestroyed {
			continue
		}
		u := &apiwire.Usage{SchemaBytes: sizes[sb.ID], IdleAfterSeconds: int64(h.idleAfter / time.Second),
			RedisBytesLimit: sandbox.RedisMemoryLimit, Unavailable: unavailable}
		if r, ok := fromRedis[sb.ID]; ok {
			u.EventsRouted, u.LastEventAt = r.Events, r.LastEventAt
			u.StreamLength, u.StreamPending = r.Stream.Length, r.Stream.Pending
			u.Keys, u.RedisBytes, u.KeysCountedAt = r.Keys, r.Memory, r.KeysCountedAt
			u.CatalogBytes, u.CatalogCountedAt = r.Catalog, r.CatalogCountedAt
			since := sb.CreatedAt
			if r.LastEventAt != nil && r.LastEventAt.After(since) {
				since = *r.LastEventAt
			}
			quiet := max(now.Sub(since), 0)
			u.IdleSeconds = int64(quiet / time.Second)
			u.Idle = sb.DisplayStatus(now) == string(sandbox.StatusRunning) && quiet >= h.idleAfter
		}
		views[i].Usage = u
	}
}
