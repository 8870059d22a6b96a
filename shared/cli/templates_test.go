package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
)

// TestTemplatesEndToEnd is the template registry as an admin and a developer use the CLI on
// the local stack: the admin registers a template with seed rows, everyone lists it, a
// developer creates a sandbox from it whose role reads the seed rows; the admin updates and
// retires it, each change in the audit log; a retired template takes no new sandbox; what a
// developer may not do, and the command line's mistakes. Its transcript is docs/cli.md's
// (SANDBOX_CLI_TRANSCRIPT=file: file.templates).
func TestTemplatesEndToEnd(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	seed := testenv.SeedTemplate(t, s.pool, "tmpl_guild_xp", 10000)

	r := s.run(t, aliceToken, "templates")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `^NAME +SOURCE SCHEMA +SEED ROWS +DEFAULT TTL +DESCRIPTION\ndefault +sandbox_template +- +1d +the deployment's template schema`)

	r = s.run(t, adminToken, "templates", "add", "guild-xp", "--schema", "tmpl_guild_xp", "--copy-rows", "--ttl", "2d",
		"--description", "10 guilds with channels, members and XP")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Added template guild-xp\n", "Source schema  tmpl_guild_xp\n", "Seed rows      copied into every new sandbox\n",
		"Default TTL    2d\n")
	r = s.run(t, aliceToken, "templates", "add", "mine", "--schema", "tmpl_guild_xp")
	expect(t, r, ExitAuth)
	mustContain(t, r.stderr, "[forbidden]")
	r = s.run(t, adminToken, "templates", "add", "bad-source", "--schema", "sandbox_control")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "sandbox_control is the control plane's, never a template", "[invalid_input]")
	r = s.run(t, adminToken, "templates", "add", "no-schema")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "needs --schema")

	r = s.run(t, aliceToken, "templates")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `\nguild-xp +tmpl_guild_xp +copied +2d +10 guilds with channels, members and XP\n`)
	r = s.run(t, aliceToken, "templates", "--json")
	expect(t, r, ExitOK)
	var list apiwire.TemplatesResponse
	decodeStrict(t, r.stdout, &list)
	if len(list.Templates) != 2 || list.Templates[1].Name != "guild-xp" || !list.Templates[1].CopyRows || list.Templates[1].DefaultTTLSeconds != 172800 {
		t.Errorf("templates --json: %+v", list)
	}

	r = s.run(t, aliceToken, "create", "alice-xp", "--template", "guild-xp")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Created sandbox alice-xp", "Template  guild-xp\n", "(in 2d)")
	sb, err := s.manager.GetByName(ctx, "alice-xp")
	if err != nil {
		t.Fatal(err)
	}
	if sb.Template != "guild-xp" {
		t.Errorf("stored template %q", sb.Template)
	}
	// The sandbox's own role reads the seed rows, and owns what it is given to use.
	r = s.run(t, aliceToken, "connect", "alice-xp", "--json")
	expect(t, r, ExitOK)
	var creds apiwire.ConnectResponse
	decodeStrict(t, r.stdout, &creds)
	conn, err := pgx.Connect(ctx, creds.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	for table, n := range seed {
		var got int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&got); err != nil || got != n {
			t.Errorf("%s through the sandbox's role: %d rows (%v), want %d", table, got, err, n)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO guilds (name) VALUES ('mine')`); err != nil {
		t.Errorf("the sandbox's role cannot write its seeded table: %v", err)
	}
	r = s.run(t, aliceToken, "create", "alice-bad", "--template", "Guild XP")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "[invalid_input]")
	r = s.run(t, aliceToken, "create", "alice-none", "--template", "no-such")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `no template named "no-such" (sandbox templates lists them)`)

	r = s.run(t, adminToken, "templates", "update", "guild-xp", "--description", "XP, 10 guilds", "--default-ttl")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Updated template guild-xp\n", "Default TTL    1d\n", "Description    XP, 10 guilds\n")
	r = s.run(t, adminToken, "templates", "update", "guild-xp")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "needs at least one of --description")
	r = s.run(t, adminToken, "templates", "update", "guild-xp", "--ttl", "2d", "--default-ttl")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "cannot be used together")

	r = s.run(t, adminToken, "templates", "retire", "guild-xp")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Retired template guild-xp: no new sandbox is created from it; the sandboxes made from it keep running\n")
	r = s.run(t, adminToken, "templates", "retire", "guild-xp")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Template guild-xp was retired already")
	r = s.run(t, aliceToken, "create", "alice-late", "--template", "guild-xp")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `template "guild-xp" is retired since`)
	r = s.run(t, adminToken, "templates", "--all")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `\nguild-xp +tmpl_guild_xp +copied +1d +XP, 10 guilds +\d{4}-\d\d-\d\d .* by ops-admin\n`)
	r = s.run(t, aliceToken, "templates", "--all")
	expect(t, r, ExitAuth)
	r = s.run(t, aliceToken, "templates", "bogus")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `unknown command "bogus" for sandbox templates`)

	var actions []string
	rows, err := s.pool.Query(ctx, `SELECT action || ' by ' || actor FROM sandbox_control.audit_log WHERE action LIKE 'template.%' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	if actions, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	want := []string{controlplane.ActionTemplateAdd, controlplane.ActionTemplateUpdate, controlplane.ActionTemplateRetire}
	for i := range want {
		want[i] += " by " + admin
	}
	if fmt.Sprint(actions) != fmt.Sprint(want) {
		t.Errorf("audit: %v, want %v", actions, want)
	}
	if got := strings.Count(s.transcript.String(), "$ sandbox"); got == 0 {
		t.Fatal("no transcript")
	}
	s.writeTranscriptAs(t, ".templates")
}
