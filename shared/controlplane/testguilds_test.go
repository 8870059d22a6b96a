package controlplane_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// production is a guild nobody registered: a production guild the operator did not protect.
const production = "80351110224679001"

// A sandbox maps only registered test guilds: a guild nobody registered is refused at
// creation and when added, and the refusal leaves nothing behind.
func TestOnlyRegisteredTestGuildsCanBeMapped(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{ProtectedGuilds: []string{guild3}})
	ctx := context.Background()
	before := count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log`)

	_, err := m.Create(ctx, alice, controlplane.CreateInput{Name: "taker", Owner: alice, Guilds: []string{guild1, production}})
	if !errors.Is(err, sandbox.ErrGuildNotRegistered) {
		t.Fatalf("create with a production guild: %v, want guild_not_registered", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.sandboxes`); n != 0 {
		t.Fatalf("the refused creation left %d sandboxes", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log`); n != before {
		t.Fatal("the refused creation left audit entries")
	}
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "taker", Owner: alice, Guilds: []string{guild1}})
	if err := m.AddGuild(ctx, alice, sb.ID, production, false); !errors.Is(err, sandbox.ErrGuildNotRegistered) {
		t.Fatalf("add a production guild: %v, want guild_not_registered", err)
	}
	// An admin's mapping is held to the same rule: registering is the admin's way.
	if err := m.AddGuild(ctx, "ops-admin", sb.ID, production, true); !errors.Is(err, sandbox.ErrGuildNotRegistered) {
		t.Fatalf("an admin adds a production guild: %v, want guild_not_registered", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.guild_mappings WHERE guild_id = $1`, production); n != 0 {
		t.Fatal("a refused mapping was written")
	}

	g, created, err := m.RegisterTestGuild(ctx, "ops-admin", production, "the QA guild")
	if err != nil || !created || g.GuildID != production || g.Note != "the QA guild" || g.RegisteredBy != "ops-admin" || g.State != controlplane.TestGuildFree {
		t.Fatalf("register: %+v, created %v, %v", g, created, err)
	}
	if err := m.AddGuild(ctx, alice, sb.ID, production, false); err != nil {
		t.Fatalf("add a registered guild: %v", err)
	}
	// Registering again changes the note only.
	g, created, err = m.RegisterTestGuild(ctx, "another-admin", production, "QA")
	if err != nil || created || g.Note != "QA" || g.RegisteredBy != "ops-admin" || g.State != controlplane.TestGuildMapped {
		t.Fatalf("register again: %+v, created %v, %v", g, created, err)
	}
}

// Protected guilds belong to production: neither kind (configured, recorded) can be
// registered, and bad input is refused before anything is written.
func TestProtectedGuildsCannotBeRegistered(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{ProtectedGuilds: []string{production}})
	ctx := context.Background()
	const recorded = "80351110224679002"
	if _, _, err := m.ProtectGuild(ctx, "operator", recorded, "production"); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{production, recorded} {
		if _, _, err := m.RegisterTestGuild(ctx, "ops-admin", g, ""); !errors.Is(err, sandbox.ErrGuildProtected) {
			t.Errorf("register protected %s: %v, want guild_protected", g, err)
		}
	}
	if _, _, err := m.RegisterTestGuild(ctx, "ops-admin", "12", ""); !errors.Is(err, sandbox.ErrInvalidInput) {
		t.Errorf("register a bad id: %v", err)
	}
	if _, _, err := m.RegisterTestGuild(ctx, "ops-admin", "80351110224679003", "bell\a"); !errors.Is(err, sandbox.ErrInvalidInput) {
		t.Errorf("register with a control character in the note: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.test_guilds WHERE guild_id = ANY($1)`,
		[]string{production, recorded, "80351110224679003"}); n != 0 {
		t.Fatalf("%d refused registrations were written", n)
	}
}

// An unregistered guild can no longer be mapped; a mapped one cannot be unregistered until
// its mapping is removed; a parked one can, and stays parked.
func TestUnregisterTestGuild(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "holder", Owner: alice, Guilds: []string{guild1}})

	if _, err := m.UnregisterTestGuild(ctx, "ops-admin", guild1); !errors.Is(err, sandbox.ErrGuildAlreadyMapped) {
		t.Fatalf("unregister a mapped guild: %v, want guild_already_mapped", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.test_guilds WHERE guild_id = $1`, guild1); n != 1 {
		t.Fatal("the refused unregistration removed the registration")
	}
	if _, err := m.UnregisterTestGuild(ctx, "ops-admin", guild2); err != nil {
		t.Fatalf("unregister a free guild: %v", err)
	}
	if _, err := m.UnregisterTestGuild(ctx, "ops-admin", guild2); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("unregister twice: %v, want not_found", err)
	}
	if err := m.AddGuild(ctx, alice, sb.ID, guild2, false); !errors.Is(err, sandbox.ErrGuildNotRegistered) {
		t.Fatalf("add an unregistered guild: %v", err)
	}

	// Parked: the teardown of the holder parks guild1.
	tearDownMappings(t, m, sb.ID, "destroy_requested")
	list, err := m.TestGuilds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]controlplane.TestGuildState{}
	for _, g := range list {
		states[g.GuildID] = g.State
	}
	if states[guild1] != controlplane.TestGuildParked || states[guild3] != controlplane.TestGuildFree || len(list) != 3 {
		t.Fatalf("test guilds %+v; want guild1 parked, guild3 and guild4 free", list)
	}
	if _, err := m.UnregisterTestGuild(ctx, "ops-admin", guild1); err != nil {
		t.Fatalf("unregister a parked guild: %v", err)
	}
	if _, err := m.Parked(ctx, guild1); err != nil {
		t.Fatalf("the unregistered guild is no longer parked: %v", err)
	}

	registrations, unregistrations := audited(t, pool, controlplane.ActionGuildRegister), audited(t, pool, controlplane.ActionGuildUnregister)
	if registrations != 0 || unregistrations != 2 {
		t.Fatalf("audit: %d registrations, %d unregistrations; want 0 (the fixture's are SQL) and 2", registrations, unregistrations)
	}
}

// The two orders of a mapping and an unregistration of the same guild, forced: the first is
// held open just before its commit, the second waits for its row lock, and once the first
// commits the second never undoes what it did.
func TestAMappingAndAnUnregistrationOfOneGuildDoNotCross(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		crossing
		// kept counts what the first committed, which must still be there.
		kept string
	}{{
		crossing: crossing{
			name:  "the mapping first",
			first: mappingBeforeCommit(guild1),
			second: func(m *controlplane.Manager, _ *sandbox.Sandbox) error {
				_, err := m.UnregisterTestGuild(ctx, "ops-admin", guild1)
				return err
			},
			waits: `query LIKE 'DELETE FROM sandbox_control.test_guilds%'`,
			want:  sandbox.ErrGuildAlreadyMapped,
		},
		kept: `SELECT count(*) FROM sandbox_control.test_guilds WHERE guild_id = $1`,
	}, {
		crossing: crossing{
			name: "the unregistration first",
			first: func(tx pgx.Tx, _ *sandbox.Sandbox) error { // UnregisterTestGuild's delete
				_, err := tx.Exec(ctx, `DELETE FROM sandbox_control.test_guilds WHERE guild_id = $1`, guild1)
				return err
			},
			second: func(m *controlplane.Manager, sb *sandbox.Sandbox) error {
				return m.AddGuild(ctx, alice, sb.ID, guild1, false)
			},
			waits: `query LIKE 'SELECT guild_id FROM sandbox_control.test_guilds%'`,
			want:  sandbox.ErrGuildNotRegistered,
		},
		kept: `SELECT 1 - count(*) FROM sandbox_control.guild_mappings WHERE guild_id = $1`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pool := tc.run(t)
			if n := count(t, pool, tc.kept, guild1); n != 1 {
				t.Fatal("the second operation undid what the first committed")
			}
		})
	}
}

// Migration 0016 registers what was mapped or parked when it ran, so that no running sandbox
// loses a guild at the upgrade, and nothing protected.
func TestTheRegistryMigrationKeepsWhatWasMapped(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "before", Owner: alice, Guilds: []string{guild1, guild2}})
	all, err := controlplane.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	last := all[len(all)-1]
	if last.Version != "0016_test_guilds" {
		t.Skipf("the last migration is %s; this test is 0016's", last.Version)
	}
	// Back to the schema before 0016, with what a deployment of then could hold: a mapping, a
	// parking, and a parking of a guild protected since.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, sql := range []string{
			`DROP TABLE sandbox_control.test_guilds`,
			`DELETE FROM sandbox_control.schema_migrations WHERE version = '0016_test_guilds'`,
			`DELETE FROM sandbox_control.guild_mappings WHERE guild_id = '` + guild2 + `'`,
			`INSERT INTO sandbox_control.parked_guilds (guild_id, sandbox_id, owner, reason) VALUES ('` + guild3 + `', '` + sb.ID + `', 'x', 'expired'), ('` + production + `', '` + sb.ID + `', 'x', 'expired')`,
			`INSERT INTO sandbox_control.protected_guilds (guild_id, reason) VALUES ('` + production + `', 'production')`,
		} {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if applied, err := controlplane.Migrate(ctx, pool); err != nil || len(applied) != 1 {
		t.Fatalf("migrate: %v, %v", applied, err)
	}
	list, err := m.TestGuilds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]controlplane.TestGuildState{}
	for _, g := range list {
		got[g.GuildID] = g.State
		if g.RegisteredBy != "migration" {
			t.Errorf("%s registered by %q", g.GuildID, g.RegisteredBy)
		}
	}
	want := map[string]controlplane.TestGuildState{guild1: controlplane.TestGuildMapped, guild3: controlplane.TestGuildParked}
	if len(got) != len(want) || got[guild1] != want[guild1] || got[guild3] != want[guild3] {
		t.Fatalf("registered by the migration: %v, want %v", got, want)
	}
}
