package controlplane

// This file: mapping and unmapping guilds.

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// AddGuild maps a guild to a running sandbox. A guild parked by a sandbox of another owner
// than this sandbox's is refused (forbidden) unless admin says the actor is an admin (unpark).
func (m *Manager) AddGuild(ctx context.Context, actor, id, guildID string, admin bool) (err error) {
	defer withOp(&err, "map guild %s to sandbox %s", guildID, id)
	if err := sandbox.ValidateGuildID(guildID); err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		// FOR SHARE keeps the sandbox from leaving running until this mapping commits.
		var status, name, owner string
		var count int
		err := tx.QueryRow(ctx, `
			SELECT s.status, s.name, s.owner, (SELECT count(*) FROM sandbox_control.guild_mappings m WHERE m.sandbox_id = s.id)
			FROM sandbox_control.sandboxes s WHERE s.id = $1 FOR SHARE OF s`, id).Scan(&status, &name, &owner, &count)
		if err := sandboxFound(err, id); err != nil {
			return err
		}
		if sandbox.Status(status) != sandbox.StatusRunning {
			return sandbox.Errorf(sandbox.CodeInvalidTransition, "sandbox %q is %s; guilds can be added only to a running sandbox", name, status)
		}
		if count >= m.limits.MaxGuilds {
			return sandbox.InvalidField("guild_id", "sandbox %q already has %d guilds (limit %d)", name, count, m.limits.MaxGuilds)
		}
		if err := m.checkGuildsFree(ctx, tx, []string{guildID}); err != nil {
			return err
		}
		if err := insertMappings(ctx, tx, id, actor, []string{guildID}); err != nil {
			return err
		}
		unparked, err := unpark(ctx, tx, owner, admin, []string{guildID})
		if err != nil {
			return err
		}
		details := map[string]any{"guild_id": guildID}
		if len(unparked) > 0 {
			details["unparked"] = true
		}
		return audit(ctx, tx, actor, ActionGuildAdd, id, details)
	})
	if err != nil {
		return err
	}
	m.publishRouteChanges(ctx)
	return nil
}

// RemoveGuild removes a guild's mapping from a sandbox.
func (m *Manager) RemoveGuild(ctx context.Context, actor, id, guildID string) (err error) {
	defer withOp(&err, "unmap guild %s from sandbox %s", guildID, id)
	if err := sandbox.ValidateGuildID(guildID); err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM sandbox_control.guild_mappings WHERE guild_id = $1 AND sandbox_id = $2`, guildID, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return sandbox.Errorf(sandbox.CodeNotFound, "guild %s is not mapped to this sandbox", guildID)
		}
		return audit(ctx, tx, actor, ActionGuildRemove, id, map[string]any{"guild_id": guildID})
	})
	if err != nil {
		return err
	}
	m.publishRouteChanges(ctx)
	return nil
}
