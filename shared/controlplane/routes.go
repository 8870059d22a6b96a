package controlplane

// This file: publishing route changes to the route cache, and route lookups.

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// publishRouteChanges publishes the route changes just committed (and any left over by an
// earlier failure), unless the Manager is Deferred. A failure is logged, not returned: the
// change is committed, and its record in route_changes waits for the next publication
// (docs/streams.md).
func (m *Manager) publishRouteChanges(ctx context.Context) {
	if m.routes == nil || m.deferred {
		return
	}
	if _, err := m.PublishRouteChanges(context.WithoutCancel(ctx)); err != nil {
		m.log.WarnContext(ctx, "publishing route changes failed; the next publication retries them", logkey.Error, err)
	}
}

// publishPage bounds the route_changes rows one publication step reads.
const publishPage = 10000

// PublishRouteChanges publishes every route change recorded in route_changes and returns how
// many rows it published (PublishRoutes without guilds of its own).
func (m *Manager) PublishRouteChanges(ctx context.Context) (int, error) {
	n, _, err := m.PublishRoutes(ctx, nil)
	return n, err
}

// PublishRoutes publishes the route changes of guilds together with every change recorded
// in route_changes. It reads the rows a page at a time; every distinct guild of a page (and,
// with the first page, of guilds) is published once, routecache.MaxPublish guilds per Publish (the
// route generation bumped and their cache entries deleted, in one atomic Redis step), and
// only then are the page's rows deleted, so a change is never forgotten before it is
// published. Once per page is enough: every row read was committed before the read, so a
// router's write-back computed before that commit is refused by the generation bumped after
// it, or deleted with the entry. Concurrent publishers may publish the same rows twice, which
// is harmless. It returns how many rows it published and the guilds whose cache entry existed.
func (m *Manager) PublishRoutes(ctx context.Context, guilds []string) (published int, existed map[string]bool, err error) {
	defer withOp(&err, "publish route changes")
	if m.routes == nil {
		return 0, nil, errors.New("controlplane: no route publisher configured")
	}
	existed = map[string]bool{}
	extra := guilds
	for {
		var ids []int64
		page := slices.Clone(extra)
		extra = nil
		var id int64
		var guild string
		rows, err := m.db.Query(ctx, `SELECT id, guild_id FROM sandbox_control.route_changes ORDER BY id LIMIT $1`, publishPage)
		if err != nil {
			return published, existed, err
		}
		if _, err := pgx.ForEachRow(rows, []any{&id, &guild}, func() error {
			ids, page = append(ids, id), append(page, guild)
			return nil
		}); err != nil {
			return published, existed, err
		}
		if len(page) == 0 {
			return published, existed, nil
		}
		page = slices.Compact(slices.Sorted(slices.Values(page)))
		for chunk := range slices.Chunk(page, routecache.MaxPublish) {
			had, err := m.routes.Publish(ctx, chunk...)
			if err != nil {
				return published, existed, err
			}
			for i, g := range chunk {
				if had[i] {
					existed[g] = true
				}
			}
		}
		if len(ids) > 0 {
			if _, err := m.db.Exec(ctx, `DELETE FROM sandbox_control.route_changes WHERE id = ANY($1)`, ids); err != nil {
				return published, existed, err
			}
		}
		published += len(ids)
		if len(ids) < publishPage {
			return published, existed, nil
		}
	}
}

// LookupRoutes resolves guilds to routes with one query: mapping, sandbox status and
// protection. Guilds with no row in any table come back unmapped.
func (m *Manager) LookupRoutes(ctx context.Context, guildIDs []string) (_ map[string]sandbox.Route, err error) {
	defer withOp(&err, "look up the routes of %d guilds", len(guildIDs))
	out := make(map[string]sandbox.Route, len(guildIDs))
	if len(guildIDs) == 0 {
		return out, nil
	}
	rows, err := m.db.Query(ctx, `
		SELECT g.guild_id, coalesce(mp.sandbox_id, ''), coalesce(s.status, ''), s.expires_at, p.guild_id IS NOT NULL,
			coalesce(pk.sandbox_id, ''), pk.parked_at
		FROM unnest($1::text[]) AS g(guild_id)
		LEFT JOIN sandbox_control.guild_mappings mp ON mp.guild_id = g.guild_id
		LEFT JOIN sandbox_control.sandboxes s ON s.id = mp.sandbox_id
		LEFT JOIN sandbox_control.protected_guilds p ON p.guild_id = g.guild_id
		LEFT JOIN sandbox_control.parked_guilds pk ON pk.guild_id = g.guild_id`, guildIDs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r sandbox.Route
		var status string
		var expires, parked *time.Time
		if err := rows.Scan(&r.GuildID, &r.SandboxID, &status, &expires, &r.Protected, &r.ParkedBy, &parked); err != nil {
			return nil, err
		}
		if expires != nil {
			r.ExpiresAt = expires.UTC()
		}
		if parked != nil {
			r.ParkedAt = parked.UTC()
		}
		r.Status = sandbox.Status(status)
		r.Protected = r.Protected || m.protected[r.GuildID]
		out[r.GuildID] = r
	}
	return out, rows.Err()
}
