package controlplane

// This file: the registry of test guilds, the only guilds a sandbox may map. A guild's route
// does not depend on it (an unmapped guild goes to production, registered or not), so a
// change of the registry publishes no route change: it decides only what a mapping may take.

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Audit actions of the test guild registry.
const (
	// ActionGuildRegister records a guild an admin registered as a test guild.
	ActionGuildRegister = "guild.register"
	// ActionGuildUnregister records a test guild an admin took off the registry.
	ActionGuildUnregister = "guild.unregister"
)

// TestGuildState says whether a registered test guild can be mapped now.
type TestGuildState string

const (
	// TestGuildFree is a test guild no sandbox has: any sandbox may map it.
	TestGuildFree TestGuildState = "free"
	// TestGuildMapped is a test guild mapped to a sandbox.
	TestGuildMapped TestGuildState = "mapped"
	// TestGuildParked is a test guild parked by a torn-down sandbox (ParkedGuild).
	TestGuildParked TestGuildState = "parked"
	// TestGuildProtected is a test guild that the deployment's configuration protects since
	// it was registered (SANDBOX_PROTECTED_GUILDS): no sandbox may map it.
	TestGuildProtected TestGuildState = "protected"
)

// TestGuild is a guild an admin registered as one of the platform's test guilds.
// The API answers with apiwire.TestGuild, converted from this type: same fields, same order.
type TestGuild struct {
	GuildID      string
	Note         string
	RegisteredAt time.Time
	RegisteredBy string
	State        TestGuildState
}

const testGuildColumns = `t.guild_id, t.note, t.registered_at, t.registered_by,
	CASE WHEN EXISTS (SELECT 1 FROM sandbox_control.guild_mappings m WHERE m.guild_id = t.guild_id) THEN 'mapped'
		WHEN EXISTS (SELECT 1 FROM sandbox_control.parked_guilds p WHERE p.guild_id = t.guild_id) THEN 'parked'
		ELSE 'free' END`

func scanTestGuild(row pgx.CollectableRow) (TestGuild, error) {
	var g TestGuild
	err := row.Scan(&g.GuildID, &g.Note, &g.RegisteredAt, &g.RegisteredBy, &g.State)
	g.RegisteredAt = g.RegisteredAt.UTC()
	return g, err
}

// TestGuilds lists the registered test guilds, in guild id order.
func (m *Manager) TestGuilds(ctx context.Context) (_ []TestGuild, err error) {
	defer withOp(&err, "list test guilds")
	guilds, err := queryList(ctx, m.db, scanTestGuild, `SELECT `+testGuildColumns+`
		FROM sandbox_control.test_guilds t ORDER BY t.guild_id`)
	for i, g := range guilds {
		// A protection at run time takes the guild off the registry; the configuration's
		// cannot, and wins whatever is recorded.
		if m.protected[g.GuildID] {
			guilds[i].State = TestGuildProtected
		}
	}
	return guilds, err
}

// RegisterTestGuild records guildID as a test guild, which sandboxes may then map, and
// returns it. A protected guild is refused (guild_protected): it belongs to production. A
// guild registered already keeps its registration; only its note changes, and created
// reports false.
func (m *Manager) RegisterTestGuild(ctx context.Context, actor, guildID, note string) (_ TestGuild, created bool, err error) {
	defer withOp(&err, "register test guild %s", guildID)
	var g TestGuild
	err = m.changeGuildStanding(ctx, guildID, "note", note, func(tx pgx.Tx) error {
		// A protection of this guild has committed (and is refused here) or waits for this
		// registration to commit (and then takes the guild off the registry).
		if err := m.checkUnprotected(ctx, tx, []string{guildID}); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO sandbox_control.test_guilds (guild_id, note, registered_by) VALUES ($1, $2, $3)
			ON CONFLICT (guild_id) DO UPDATE SET note = excluded.note RETURNING (xmax = 0)`,
			guildID, note, actor).Scan(&created); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+testGuildColumns+` FROM sandbox_control.test_guilds t WHERE t.guild_id = $1`, guildID)
		if err != nil {
			return err
		}
		if g, err = pgx.CollectExactlyOneRow(rows, scanTestGuild); err != nil {
			return err
		}
		return audit(ctx, tx, actor, ActionGuildRegister, "", map[string]any{"guild_id": guildID, "note": note, "created": created})
	})
	return g, created, err
}

// UnregisterTestGuild takes guildID off the registry, so that no sandbox may map it any more,
// and returns the registration it removed. A guild mapped now is refused
// (guild_already_mapped): remove the mapping first, as for a protection. A parked guild stays
// parked (its events are dropped) until it is released.
func (m *Manager) UnregisterTestGuild(ctx context.Context, actor, guildID string) (_ TestGuild, err error) {
	defer withOp(&err, "unregister test guild %s", guildID)
	var g TestGuild
	err = m.changeGuildStanding(ctx, guildID, "", "", func(tx pgx.Tx) error {
		// The delete waits for a mapping in progress, which holds the row FOR SHARE
		// (checkRegistered); the next statement's snapshot then sees that mapping.
		rows, err := tx.Query(ctx, `DELETE FROM sandbox_control.test_guilds t WHERE t.guild_id = $1 RETURNING `+testGuildColumns, guildID)
		if err != nil {
			return err
		}
		g, err = pgx.CollectExactlyOneRow(rows, scanTestGuild)
		if isNoRows(err) {
			return sandbox.Errorf(sandbox.CodeNotFound, "guild %s is not a registered test guild", guildID)
		}
		if err != nil {
			return err
		}
		if err := refuseMapped(ctx, tx, guildID); err != nil {
			return err
		}
		return audit(ctx, tx, actor, ActionGuildUnregister, "", map[string]any{"guild_id": guildID, "note": g.Note})
	})
	return g, err
}

// checkRegistered refuses, in the caller's transaction, a guild that is not a registered
// test guild (guild_not_registered; the first of guilds, which callers pass normalized and
// so sorted), and holds the registrations FOR SHARE until the caller commits, so that no
// unregistration slips between the check and the mapping.
func checkRegistered(ctx context.Context, tx pgx.Tx, guilds []string) error {
	rows, err := tx.Query(ctx, `SELECT guild_id FROM sandbox_control.test_guilds WHERE guild_id = ANY($1) FOR SHARE`, guilds)
	if err != nil {
		return err
	}
	registered, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, g := range guilds {
		if !slices.Contains(registered, g) {
			return sandbox.Errorf(sandbox.CodeGuildNotRegistered,
				"guild %s is not a registered test guild: only the guilds an admin registered may be mapped (sandbox guilds registered lists them)", g)
		}
	}
	return nil
}

func protectedGuild(guildID string) error {
	return sandbox.Errorf(sandbox.CodeGuildProtected, "guild %s is protected and may never be mapped to a sandbox", guildID)
}
