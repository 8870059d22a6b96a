package controlplane

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// This file holds the control-plane queries of orphan reconciliation (cleanup): which
// sandboxes own what, and the bookkeeping of resources no sandbox owns. The policy (what is
// an orphan, the grace period) is the cleanup package's.

// SandboxState is a sandbox's status and the time it last changed: destroyed_at for a
// destroyed sandbox, updated_at otherwise.
type SandboxState struct {
	Status sandbox.Status
	Since  time.Time
}

// SandboxStates returns the state of every sandbox of ids that has a row; ids without one
// are absent from the map.
func (m *Manager) SandboxStates(ctx context.Context, ids []string) (_ map[string]SandboxState, err error) {
	defer withOp(&err, "read the states of %d sandboxes", len(ids))
	out := map[string]SandboxState{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := m.db.Query(ctx, `SELECT id, status, coalesce(destroyed_at, updated_at)
		FROM sandbox_control.sandboxes WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	var id, status string
	var since time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &status, &since}, func() error {
		out[id] = SandboxState{Status: sandbox.Status(status), Since: since}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// StaleMapping is a guild mapping of a sandbox that is neither running nor being created,
// with the sandbox's status and the time it last changed (SandboxState.Since).
type StaleMapping struct {
	GuildID   string
	SandboxID string
	State     SandboxState
}

// StaleMappings lists the guild mappings of sandboxes that are neither running nor being
// created, by guild.
func (m *Manager) StaleMappings(ctx context.Context) (_ []StaleMapping, err error) {
	defer withOp(&err, "list stale guild mappings")
	rows, err := m.db.Query(ctx, `
		SELECT m.guild_id, m.sandbox_id, s.status, coalesce(s.destroyed_at, s.updated_at)
		FROM sandbox_control.guild_mappings m JOIN sandbox_control.sandboxes s ON s.id = m.sandbox_id
		WHERE s.status NOT IN ('running', 'creating') ORDER BY m.guild_id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (StaleMapping, error) {
		var sm StaleMapping
		var status string
		err := row.Scan(&sm.GuildID, &sm.SandboxID, &status, &sm.State.Since)
		sm.State.Status = sandbox.Status(status)
		return sm, err
	})
}

// OrphanResource names a resource that no sandbox row owns, as orphan reconciliation saw it
// (table orphan_sightings): its type and name.
type OrphanResource struct {
	Type string
	Name string
}

// RecordOrphanSightings records that the resources seen exist at now and returns when each
// was first seen: sightings not recorded before start at now, and the sightings of resources
// no longer seen (gone, or owned now) are forgotten, in one statement.
func (m *Manager) RecordOrphanSightings(ctx context.Context, seen []OrphanResource, now time.Time) (_ map[OrphanResource]time.Time, err error) {
	defer withOp(&err, "record orphan sightings")
	types, names := orphanColumns(seen)
	rows, err := m.db.Query(ctx, `
		WITH seen AS (SELECT * FROM unnest($1::text[], $2::text[]) AS s(resource_type, name)),
		forgotten AS (
			DELETE FROM sandbox_control.orphan_sightings o
			WHERE NOT EXISTS (SELECT 1 FROM seen WHERE seen.resource_type = o.resource_type AND seen.name = o.name))
		INSERT INTO sandbox_control.orphan_sightings AS o (resource_type, name, first_seen_at, last_seen_at)
		SELECT resource_type, name, $3, $3 FROM seen
		ON CONFLICT (resource_type, name) DO UPDATE SET last_seen_at = excluded.last_seen_at
		RETURNING o.resource_type, o.name, o.first_seen_at`, types, names, now)
	if err != nil {
		return nil, err
	}
	return collectFirstSeen(rows)
}

// OrphanFirstSeen returns when each of the resources was first seen, for those recorded,
// changing nothing.
func (m *Manager) OrphanFirstSeen(ctx context.Context, resources []OrphanResource) (_ map[OrphanResource]time.Time, err error) {
	defer withOp(&err, "read orphan sightings")
	types, names := orphanColumns(resources)
	rows, err := m.db.Query(ctx, `
		SELECT o.resource_type, o.name, o.first_seen_at FROM sandbox_control.orphan_sightings o
		JOIN unnest($1::text[], $2::text[]) AS s(resource_type, name) USING (resource_type, name)`, types, names)
	if err != nil {
		return nil, err
	}
	return collectFirstSeen(rows)
}

func orphanColumns(rs []OrphanResource) (types, names []string) {
	types, names = make([]string, len(rs)), make([]string, len(rs))
	for i, r := range rs {
		types[i], names[i] = r.Type, r.Name
	}
	return types, names
}

func collectFirstSeen(rows pgx.Rows) (map[OrphanResource]time.Time, error) {
	out := map[OrphanResource]time.Time{}
	var r OrphanResource
	var at time.Time
	_, err := pgx.ForEachRow(rows, []any{&r.Type, &r.Name, &at}, func() error {
		out[r] = at
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RemoveOrphanMapping deletes the mapping of guildID to sandboxID when that sandbox is
// neither running nor being created, with an ActionOrphanRemoved audit entry carrying
// details. It reports whether it deleted one.
func (m *Manager) RemoveOrphanMapping(ctx context.Context, actor, guildID, sandboxID string, details map[string]any) (_ bool, err error) {
	defer withOp(&err, "remove the orphaned mapping of guild %s", guildID)
	var removed bool
	err = pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM sandbox_control.guild_mappings m USING sandbox_control.sandboxes s
			WHERE m.guild_id = $1 AND m.sandbox_id = $2 AND s.id = m.sandbox_id AND s.status NOT IN ('running', 'creating')`,
			guildID, sandboxID)
		if err != nil {
			return err
		}
		if removed = tag.RowsAffected() == 1; !removed {
			return nil
		}
		return audit(ctx, tx, actor, ActionOrphanRemoved, sandboxID, details)
	})
	return removed, err
}
