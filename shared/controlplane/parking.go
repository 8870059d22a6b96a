package controlplane

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Audit actions of parked guilds.
const (
	// ActionGuildParked records a test guild parked by its sandbox's teardown.
	ActionGuildParked = "guild.parked"
	// ActionGuildReleased records a parked guild released to production.
	ActionGuildReleased = "guild.released"
)

// ParkedGuild is a test guild whose sandbox was torn down: its events are dropped, never
// sent to production, until its former owner or an admin releases it or it is mapped again
// (to a sandbox of its former owner, or by an admin: unpark).
// The API answers with apiwire.ParkedGuild, converted from this type: same fields, same order.
type ParkedGuild struct {
	GuildID     string
	SandboxID   string
	SandboxName string
	Owner       string
	Reason      string
	ParkedAt    time.Time
}

// EndableBy is the one rule of who may end a parking, by releasing the guild or by mapping
// it to a sandbox of theirs: the owner of the sandbox that parked it, or an admin.
func (p ParkedGuild) EndableBy(owner string, admin bool) bool { return admin || p.Owner == owner }

const parkedColumns = `pk.guild_id, pk.sandbox_id, s.name, pk.owner, pk.reason, pk.parked_at`

func scanParked(row pgx.CollectableRow) (ParkedGuild, error) {
	var p ParkedGuild
	err := row.Scan(&p.GuildID, &p.SandboxID, &p.SandboxName, &p.Owner, &p.Reason, &p.ParkedAt)
	p.ParkedAt = p.ParkedAt.UTC()
	return p, err
}

// park parks the guilds a teardown removed from sandbox id, inside its transaction, with an
// audit entry per guild. Protected guilds are not parked: they belong to production.
func park(ctx context.Context, tx pgx.Tx, actor, id string, guilds []string, reason string) ([]string, error) {
	if len(guilds) == 0 {
		return []string{}, nil
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO sandbox_control.parked_guilds (guild_id, sandbox_id, owner, reason)
		SELECT g, s.id, s.owner, $3 FROM unnest($1::text[]) AS g, sandbox_control.sandboxes s
		WHERE s.id = $2 AND NOT EXISTS (SELECT 1 FROM sandbox_control.protected_guilds p WHERE p.guild_id = g)
		ON CONFLICT (guild_id) DO UPDATE SET sandbox_id = excluded.sandbox_id, owner = excluded.owner,
			reason = excluded.reason, parked_at = now()
		RETURNING guild_id`, guilds, id, reason)
	if err != nil {
		return nil, err
	}
	parked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, g := range parked {
		if err := audit(ctx, tx, actor, ActionGuildParked, id, map[string]any{"guild_id": g, "reason": reason}); err != nil {
			return nil, err
		}
	}
	return parked, nil
}

// unpark ends the parkings of the guilds a new mapping to a sandbox of owner takes, inside
// its transaction, and returns the guilds unparked. Mapping a guild ends its parking, so it
// is held to the rule of a release: a guild parked by a sandbox of another owner is refused
// (forbidden) unless admin (the actor is an admin), and the caller's transaction, rolled
// back, changes nothing. The check is the DELETE's own, so a parking committed meanwhile
// cannot slip past it.
func unpark(ctx context.Context, tx pgx.Tx, owner string, admin bool, guilds []string) ([]string, error) {
	if len(guilds) == 0 {
		return []string{}, nil
	}
	rows, err := tx.Query(ctx, `DELETE FROM sandbox_control.parked_guilds pk USING sandbox_control.sandboxes s
		WHERE pk.guild_id = ANY($1) AND s.id = pk.sandbox_id RETURNING `+parkedColumns, guilds)
	if err != nil {
		return nil, err
	}
	ended, err := pgx.CollectRows(rows, scanParked)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ended, func(a, b ParkedGuild) int { return strings.Compare(a.GuildID, b.GuildID) })
	unparked := make([]string, 0, len(ended))
	for _, p := range ended {
		if !p.EndableBy(owner, admin) {
			return nil, sandbox.Errorf(sandbox.CodeForbidden,
				"guild %s is parked by sandbox %q of another owner (%s): it can be mapped again only to a sandbox of that owner, "+
					"or by an admin, and only that owner or an admin may release it", p.GuildID, p.SandboxName, p.Owner)
		}
		unparked = append(unparked, p.GuildID)
	}
	return unparked, nil
}

// Parked returns a parked guild, or a not_found error when the guild is not parked.
func (m *Manager) Parked(ctx context.Context, guildID string) (_ ParkedGuild, err error) {
	defer withOp(&err, "read the parking of guild %s", guildID)
	if err := sandbox.ValidateGuildID(guildID); err != nil {
		return ParkedGuild{}, err
	}
	rows, err := m.db.Query(ctx, `SELECT `+parkedColumns+` FROM sandbox_control.parked_guilds pk
		JOIN sandbox_control.sandboxes s ON s.id = pk.sandbox_id WHERE pk.guild_id = $1`, guildID)
	if err != nil {
		return ParkedGuild{}, err
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanParked)
	if isNoRows(err) {
		return ParkedGuild{}, sandbox.Errorf(sandbox.CodeNotFound, "guild %s is not parked", guildID)
	}
	return p, err
}

// ListParked returns the parked guilds of owner (every owner's when owner is empty), most
// recently parked first.
func (m *Manager) ListParked(ctx context.Context, owner string) (_ []ParkedGuild, err error) {
	defer withOp(&err, "list parked guilds")
	return queryList(ctx, m.db, scanParked, `SELECT `+parkedColumns+` FROM sandbox_control.parked_guilds pk
		JOIN sandbox_control.sandboxes s ON s.id = pk.sandbox_id
		WHERE $1 = '' OR pk.owner = $1 ORDER BY pk.parked_at DESC, pk.guild_id`, owner)
}

// ReleaseGuild releases a parked guild to production: its events go to the production bot
// from the next batch on. The caller has checked that actor may (the former owner or an
// admin); sandboxID is the parking the caller saw, so a guild parked again meanwhile by
// another sandbox is not released on that basis.
func (m *Manager) ReleaseGuild(ctx context.Context, actor, guildID, sandboxID string) (err error) {
	defer withOp(&err, "release guild %s", guildID)
	err = pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		var reason string
		err := tx.QueryRow(ctx, `DELETE FROM sandbox_control.parked_guilds WHERE guild_id = $1 AND sandbox_id = $2 RETURNING reason`,
			guildID, sandboxID).Scan(&reason)
		if isNoRows(err) {
			return sandbox.Errorf(sandbox.CodeNotFound, "guild %s is not parked", guildID)
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, ActionGuildReleased, sandboxID, map[string]any{"guild_id": guildID, "parked_reason": reason})
	})
	if err != nil {
		return err
	}
	m.publishRouteChanges(ctx)
	return nil
}
