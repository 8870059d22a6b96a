package controlplane

// This file: the protected guilds, production guilds that no sandbox may map and whose events
// the router sends to production whatever else is recorded. Two sources protect a guild: the
// deployment's configuration (SANDBOX_PROTECTED_GUILDS, changed only by a deployment) and
// sandbox_control.protected_guilds, which an admin changes at run time.

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// ProtectedGuild is a production guild no sandbox may map.
// The API answers with apiwire.ProtectedGuild, converted from this type: same fields, same order.
type ProtectedGuild struct {
	GuildID string
	// Reason, ProtectedAt and ProtectedBy are those of the guild's row in
	// sandbox_control.protected_guilds; zero for a guild only the configuration protects.
	Reason      string
	ProtectedAt time.Time
	ProtectedBy string
	// Configured: the deployment's configuration protects the guild, so no admin can take
	// the protection away at run time.
	Configured bool
}

// ProtectedGuilds lists the protected guilds of both sources, in guild id order.
func (m *Manager) ProtectedGuilds(ctx context.Context) (_ []ProtectedGuild, err error) {
	defer withOp(&err, "list protected guilds")
	// Sorted below, with the configuration's.
	recorded, err := queryList(ctx, m.db, scanProtected, `SELECT `+protectedColumns+` FROM sandbox_control.protected_guilds p`)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]ProtectedGuild, len(recorded)+len(m.protected))
	for _, g := range recorded {
		byID[g.GuildID] = g
	}
	for id := range m.protected {
		g := byID[id]
		g.GuildID, g.Configured = id, true
		byID[id] = g
	}
	out := make([]ProtectedGuild, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, byID[id])
	}
	return out, nil
}

const protectedColumns = `p.guild_id, p.reason, p.created_at, p.created_by`

func scanProtected(row pgx.CollectableRow) (ProtectedGuild, error) {
	var g ProtectedGuild
	err := row.Scan(&g.GuildID, &g.Reason, &g.ProtectedAt, &g.ProtectedBy)
	g.ProtectedAt = g.ProtectedAt.UTC()
	return g, err
}

// ProtectGuild protects guildID at run time, with reason, and returns the protection;
// created reports whether it is new (a guild protected already keeps its protection and gets
// the new reason). A production guild is not a test guild: the protection takes the guild off
// the registry of test guilds and releases its parking, in the same transaction. A guild
// mapped now is refused (guild_already_mapped): remove the mapping first.
func (m *Manager) ProtectGuild(ctx context.Context, actor, guildID, reason string) (_ ProtectedGuild, created bool, err error) {
	defer withOp(&err, "protect guild %s", guildID)
	var g ProtectedGuild
	err = m.changeGuildStanding(ctx, guildID, "reason", reason, func(tx pgx.Tx) error {
		// The delete waits for a mapping in progress, which holds the registration FOR SHARE
		// (checkRegistered); the next statement's snapshot then sees that mapping. A mapping
		// that comes after finds the guild unregistered.
		tag, err := tx.Exec(ctx, `DELETE FROM sandbox_control.test_guilds WHERE guild_id = $1`, guildID)
		if err != nil {
			return err
		}
		unregistered := tag.RowsAffected() == 1
		if err := refuseMapped(ctx, tx, guildID); err != nil {
			return err
		}
		var parkedBy string
		err = tx.QueryRow(ctx, `DELETE FROM sandbox_control.parked_guilds WHERE guild_id = $1 RETURNING sandbox_id`, guildID).Scan(&parkedBy)
		if err != nil && !isNoRows(err) {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO sandbox_control.protected_guilds AS p (guild_id, reason, created_by) VALUES ($1, $2, $3)
			ON CONFLICT (guild_id) DO UPDATE SET reason = excluded.reason
			RETURNING `+protectedColumns+`, (p.xmax = 0)`, guildID, reason, actor).Scan(
			&g.GuildID, &g.Reason, &g.ProtectedAt, &g.ProtectedBy, &created); err != nil {
			return err
		}
		g.ProtectedAt, g.Configured = g.ProtectedAt.UTC(), m.protected[guildID]
		details := map[string]any{"guild_id": guildID, "reason": reason, "created": created}
		if unregistered {
			details["unregistered"] = true
		}
		if parkedBy != "" {
			details["released_parking_of"] = parkedBy
		}
		return audit(ctx, tx, actor, ActionGuildProtect, "", details)
	})
	if err != nil {
		return ProtectedGuild{}, false, err
	}
	// A cached route computed before the protection must not outlive it.
	m.publishRouteChanges(ctx)
	return g, created, nil
}

// UnprotectGuild takes guildID's run-time protection away and returns it. The guild becomes
// an ordinary guild: its events still go to production, and no sandbox may map it until an
// admin registers it as a test guild. A guild the configuration protects is refused
// (guild_protected) and keeps its row: only a deployment changes the configuration.
func (m *Manager) UnprotectGuild(ctx context.Context, actor, guildID string) (_ ProtectedGuild, err error) {
	defer withOp(&err, "unprotect guild %s", guildID)
	if m.protected[guildID] {
		return ProtectedGuild{}, sandbox.Errorf(sandbox.CodeGuildProtected,
			"guild %s is protected by the deployment's configuration (SANDBOX_PROTECTED_GUILDS): only a deployment can change that", guildID)
	}
	var g ProtectedGuild
	err = m.changeGuildStanding(ctx, guildID, "", "", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM sandbox_control.protected_guilds p WHERE p.guild_id = $1 RETURNING `+protectedColumns, guildID)
		if err != nil {
			return err
		}
		g, err = pgx.CollectExactlyOneRow(rows, scanProtected)
		if isNoRows(err) {
			return sandbox.Errorf(sandbox.CodeNotFound, "guild %s is not protected", guildID)
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, ActionGuildUnprotect, "", map[string]any{"guild_id": guildID, "reason": g.Reason})
	})
	if err != nil {
		return ProtectedGuild{}, err
	}
	m.publishRouteChanges(ctx)
	return g, nil
}

// changeGuildStanding runs change, an admin's change of whether guildID is a test guild or a
// protected one, in a transaction that holds the guild's lock from its start: such changes of
// one guild come one at a time, each seeing what the one before committed (a registration and
// a protection that ran at once would otherwise both commit, leaving a protected guild on the
// registry). It checks the guild id and the admin's text first (field names it: note,
// reason; none for a removal).
func (m *Manager) changeGuildStanding(ctx context.Context, guildID, field, text string, change func(tx pgx.Tx) error) error {
	if err := sandbox.ValidateGuildID(guildID); err != nil {
		return err
	}
	if field != "" {
		if err := sandbox.ValidateGuildNote(field, text); err != nil {
			return err
		}
	}
	return pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		if err := lockRow(ctx, tx, "guild:"+guildID); err != nil {
			return err
		}
		return change(tx)
	})
}

// refuseMapped refuses (guild_already_mapped) a change of a guild that a sandbox has mapped,
// naming the sandbox: remove the mapping first.
func refuseMapped(ctx context.Context, tx pgx.Tx, guildID string) error {
	var name string
	err := tx.QueryRow(ctx, `SELECT s.name FROM sandbox_control.guild_mappings gm
		JOIN sandbox_control.sandboxes s ON s.id = gm.sandbox_id WHERE gm.guild_id = $1`, guildID).Scan(&name)
	if err == nil {
		return sandbox.Errorf(sandbox.CodeGuildAlreadyMapped, "guild %s is mapped to sandbox %q; remove the mapping first", guildID, name)
	}
	if isNoRows(err) {
		return nil
	}
	return err
}
