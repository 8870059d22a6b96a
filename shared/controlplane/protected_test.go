package controlplane_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// An admin protects a guild at run time: it leaves the registry and its parking, no sandbox
// may map it, and the router sends it to production. A mapped guild is refused and nothing
// changes; only the run-time protection can be taken away, and the guild is then an
// ordinary guild, not a test guild.
func TestProtectAndUnprotectAGuildAtRunTime(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{ProtectedGuilds: []string{production}})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "holder", Owner: alice, Guilds: []string{guild1}})

	// A free test guild.
	g, created, err := m.ProtectGuild(ctx, "ops-admin", guild2, "the support guild")
	if err != nil || !created || g.GuildID != guild2 || g.Reason != "the support guild" || g.ProtectedBy != "ops-admin" ||
		g.ProtectedAt.IsZero() || g.Configured {
		t.Fatalf("protect: %+v, created %v, %v", g, created, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.test_guilds WHERE guild_id = $1`, guild2); n != 0 {
		t.Fatal("the protected guild is still a registered test guild")
	}
	if err := m.AddGuild(ctx, alice, sb.ID, guild2, false); !errors.Is(err, sandbox.ErrGuildProtected) {
		t.Fatalf("map the protected guild: %v, want guild_protected", err)
	}
	routes, err := m.LookupRoutes(ctx, []string{guild2})
	if err != nil || !routes[guild2].Protected || routes[guild2].Destination(time.Now()) != sandbox.DestinationProduction {
		t.Fatalf("route of the protected guild: %+v, %v", routes[guild2], err)
	}
	// Protecting again replaces the reason only.
	g, created, err = m.ProtectGuild(ctx, "another-admin", guild2, "support")
	if err != nil || created || g.Reason != "support" || g.ProtectedBy != "ops-admin" {
		t.Fatalf("protect again: %+v, created %v, %v", g, created, err)
	}

	// A mapped guild: refused, and the refusal changes nothing.
	if _, _, err := m.ProtectGuild(ctx, "ops-admin", guild1, "production"); !errors.Is(err, sandbox.ErrGuildAlreadyMapped) {
		t.Fatalf("protect a mapped guild: %v, want guild_already_mapped", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.test_guilds WHERE guild_id = $1`, guild1); n != 1 {
		t.Fatal("the refused protection took the guild off the registry")
	}
	// Parked, after the holder's teardown: the protection releases it to production.
	tearDownMappings(t, m, sb.ID, "destroy_requested")
	if _, _, err := m.ProtectGuild(ctx, "ops-admin", guild1, "production after all"); err != nil {
		t.Fatalf("protect a parked guild: %v", err)
	}
	if _, err := m.Parked(ctx, guild1); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("the protected guild is still parked: %v", err)
	}
	var released string
	if err := pool.QueryRow(ctx, `SELECT details->>'released_parking_of' FROM sandbox_control.audit_log
		WHERE action = $1 AND details->>'guild_id' = $2`, controlplane.ActionGuildProtect, guild1).Scan(&released); err != nil || released != sb.ID {
		t.Fatalf("the protection's audit entry names the parking %q (%v), want sandbox %s", released, err, sb.ID)
	}

	// Bad input changes nothing.
	for _, bad := range []struct{ guild, reason string }{{"12", ""}, {guild3, "bell\a"}} {
		if _, _, err := m.ProtectGuild(ctx, "ops-admin", bad.guild, bad.reason); !errors.Is(err, sandbox.ErrInvalidInput) {
			t.Errorf("protect %q with reason %q: %v, want invalid_input", bad.guild, bad.reason, err)
		}
	}

	list, err := m.ProtectedGuilds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].GuildID != guild1 || list[1].GuildID != guild2 || list[2].GuildID != production ||
		list[0].Configured || !list[2].Configured || !list[2].ProtectedAt.IsZero() {
		t.Fatalf("protected guilds %+v; want guild1 and guild2 recorded, then the configured one", list)
	}

	// Taking a protection away: the configuration's cannot be, the run-time one can, once.
	if _, err := m.UnprotectGuild(ctx, "ops-admin", production); !errors.Is(err, sandbox.ErrGuildProtected) {
		t.Fatalf("unprotect a configured guild: %v, want guild_protected", err)
	}
	g, err = m.UnprotectGuild(ctx, "ops-admin", guild2)
	if err != nil || g.GuildID != guild2 || g.Reason != "support" {
		t.Fatalf("unprotect: %+v, %v", g, err)
	}
	if _, err := m.UnprotectGuild(ctx, "ops-admin", guild2); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("unprotect twice: %v, want not_found", err)
	}
	// An ordinary guild now: a sandbox maps it only once an admin registers it again.
	sb2 := mustCreate(t, m, controlplane.CreateInput{Name: "mapper", Owner: alice})
	if err := m.AddGuild(ctx, alice, sb2.ID, guild2, false); !errors.Is(err, sandbox.ErrGuildNotRegistered) {
		t.Fatalf("map the unprotected guild: %v, want guild_not_registered", err)
	}

	protections, unprotections := audited(t, pool, controlplane.ActionGuildProtect), audited(t, pool, controlplane.ActionGuildUnprotect)
	if protections != 3 || unprotections != 1 {
		t.Fatalf("audit: %d protections, %d unprotections; want 3 and 1", protections, unprotections)
	}
}

// A registered guild that a deployment protects afterwards is listed as protected, not free:
// the configuration wins whatever the registry says.
func TestARegisteredGuildTheConfigurationProtectsIsListedProtected(t *testing.T) {
	pool := migrated(t)
	m := controlplane.NewManager(pool, controlplane.Options{Limits: sandbox.DefaultLimits(), ProtectedGuilds: []string{guild3}})
	list, err := m.TestGuilds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range list {
		want := controlplane.TestGuildFree
		if g.GuildID == guild3 {
			want = controlplane.TestGuildProtected
		}
		if g.State != want {
			t.Errorf("test guild %s is %s, want %s", g.GuildID, g.State, want)
		}
	}
}

// The two orders of a protection and another change of the same guild, forced (see
// crossing): whichever commits first, the other sees it, and a protected guild is
// never left mapped or registered.
func TestAProtectionAndAnotherChangeOfOneGuildDoNotCross(t *testing.T) {
	ctx := context.Background()
	const (
		lockGuild    = `INSERT INTO sandbox_control.locks (name) VALUES ('guild:' || $1) ON CONFLICT (name) DO UPDATE SET name = excluded.name`
		protect      = `INSERT INTO sandbox_control.protected_guilds (guild_id, created_by) VALUES ($1, 'test')`
		unregister   = `DELETE FROM sandbox_control.test_guilds WHERE guild_id = $1`
		registered   = `SELECT count(*) FROM sandbox_control.test_guilds WHERE guild_id = $1`
		mapped       = `SELECT count(*) FROM sandbox_control.guild_mappings WHERE guild_id = $1`
		isProtected  = `SELECT count(*) FROM sandbox_control.protected_guilds WHERE guild_id = $1`
		waitsForLock = `query LIKE 'INSERT INTO sandbox_control.locks%'`
	)
	protectGuild := func(m *controlplane.Manager, _ *sandbox.Sandbox) error {
		_, _, err := m.ProtectGuild(ctx, "ops-admin", guild4, "production")
		return err
	}
	statements := func(sqls ...string) func(pgx.Tx, *sandbox.Sandbox) error {
		return func(tx pgx.Tx, _ *sandbox.Sandbox) error {
			for _, sql := range sqls {
				if _, err := tx.Exec(ctx, sql, guild4); err != nil {
					return err
				}
			}
			return nil
		}
	}
	for _, tc := range []struct {
		crossing
		// counts: what registered, mapped and isProtected count of guild4 afterwards.
		counts [3]int
	}{{
		crossing: crossing{name: "a mapping, then the protection", first: mappingBeforeCommit(guild4), second: protectGuild,
			waits: `query LIKE 'DELETE FROM sandbox_control.test_guilds%'`, want: sandbox.ErrGuildAlreadyMapped},
		counts: [3]int{1, 1, 0},
	}, {
		crossing: crossing{name: "the protection, then a mapping",
			first: statements(lockGuild, unregister, protect), // ProtectGuild before its commit
			second: func(m *controlplane.Manager, sb *sandbox.Sandbox) error {
				return m.AddGuild(ctx, alice, sb.ID, guild4, false)
			},
			waits: `query LIKE 'SELECT guild_id FROM sandbox_control.test_guilds%'`, want: sandbox.ErrGuildNotRegistered},
		counts: [3]int{0, 0, 1},
	}, {
		// RegisterTestGuild before its commit, of a guild not registered yet
		crossing: crossing{name: "a registration, then the protection",
			first:  statements(unregister, lockGuild, `INSERT INTO sandbox_control.test_guilds (guild_id, registered_by) VALUES ($1, 'test')`),
			second: protectGuild, waits: waitsForLock},
		counts: [3]int{0, 0, 1},
	}, {
		crossing: crossing{name: "the protection, then a registration",
			first: statements(lockGuild, unregister, protect),
			second: func(m *controlplane.Manager, _ *sandbox.Sandbox) error {
				_, _, err := m.RegisterTestGuild(ctx, "ops-admin", guild4, "")
				return err
			},
			waits: waitsForLock, want: sandbox.ErrGuildProtected},
		counts: [3]int{0, 0, 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pool := tc.run(t)
			got := [3]int{count(t, pool, registered, guild4), count(t, pool, mapped, guild4), count(t, pool, isProtected, guild4)}
			if got != tc.counts {
				t.Fatalf("guild4 afterwards: registered, mapped, protected = %v, want %v", got, tc.counts)
			}
		})
	}
}
