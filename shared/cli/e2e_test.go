package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// decodeStrict decodes a --json output, refusing fields the CLI's types do not have.
func decodeStrict(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %T from %q: %v", v, s, err)
	}
}

// errorDoc decodes the --json error document on stdout of a failed run.
func errorDoc(t *testing.T, r result) errorBody {
	t.Helper()
	var doc errorDocument
	decodeStrict(t, r.stdout, &doc)
	if r.stderr != "" {
		t.Errorf("a --json error leaves stderr empty, got %q", r.stderr)
	}
	return doc.Error
}

func mustMatch(t *testing.T, out, pattern string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(out) {
		t.Errorf("output does not match %s:\n%s", pattern, out)
	}
}

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestCommandsEndToEnd drives every command against the API served locally on real
// PostgreSQL and Redis, the way a developer uses them, including each failure path and its
// exit code. Its transcript is the source of docs/cli.md (SANDBOX_CLI_TRANSCRIPT=file).
func TestCommandsEndToEnd(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	const name = "alice-feature-x"

	r := s.run(t, aliceToken, "--help")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "create", "list", "status", "extend", "destroy", "connect", "guilds", "route", "cleanup",
		"version", "completion", "--api-url", "--json")

	// version: the build's; --version says the same; --json for scripts.
	r = s.run(t, aliceToken, "version")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `^sandbox \S+\n(.*\n)*  go +go1\.\d+\S* \w+/\w+\n$`)
	version := r.stdout
	r = s.run(t, aliceToken, "--version")
	expect(t, r, ExitOK)
	if r.stdout != version {
		t.Errorf("--version says %q, version %q", r.stdout, version)
	}
	r = s.run(t, aliceToken, "version", "--json")
	expect(t, r, ExitOK)
	var v VersionInfo
	decodeStrict(t, r.stdout, &v)
	if v.Version == "" || !strings.HasPrefix(v.Go, "go1.") || !strings.HasPrefix(version, "sandbox "+v.Version+"\n") {
		t.Errorf("version --json: %+v", v)
	}

	// completion: cobra's script for each shell; an unknown shell is a usage error.
	for shell, marker := range map[string]string{"bash": "__start_sandbox", "zsh": "#compdef sandbox", "fish": "complete -c sandbox", "powershell": "Register-ArgumentCompleter"} {
		var out bytes.Buffer
		code := Run(ctx, []string{"completion", shell}, s.env(aliceToken, &out, io.Discard))
		if code != ExitOK || !strings.Contains(out.String(), marker) {
			t.Errorf("completion %s: exit %d, no %q in the script", shell, code, marker)
		}
	}
	r = s.run(t, aliceToken, "completion", "tcsh")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `sandbox completion has no script for "tcsh": it knows bash, zsh, fish and powershell [usage]`,
		"hint: run `sandbox completion --help`")

	// create, with progress on a terminal only: here stderr is not one, so it stays empty.
	r = s.run(t, aliceToken, "create", name, "--ttl", "24h", "--guild", guild1, "--meta", "branch=feature-x")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Created sandbox "+name, "Expires", guild1, `eval "$(sandbox connect `+name+`)"`)
	mustMatch(t, r.stdout, `Expires  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in 1d\)`)
	if r.stderr != "" {
		t.Errorf("no spinner without a terminal, got stderr %q", r.stderr)
	}

	// create without a name: generated from $USER.
	r = s.runEnv(t, "USER=Alice.Smith", func(e *Env) { e.Lookup = withVar(e.Lookup, "USER", "Alice.Smith") }, aliceToken, "create", "--ttl", "2h", "--json")
	expect(t, r, ExitOK)
	var generated apiwire.Sandbox
	decodeStrict(t, r.stdout, &generated)
	if !regexp.MustCompile(`^alice-smith-[a-z0-9]{6}$`).MatchString(generated.Name) || generated.Status != "running" ||
		generated.TimeLeft() < 119*time.Minute || generated.TimeLeft() > 2*time.Hour {
		t.Errorf("generated sandbox: %+v", generated)
	}

	// list: a table and a total; --json carries the same total. Time left is rounded: the 2h
	// sandbox shows 2h, not 1h59m.
	r = s.run(t, aliceToken, "list")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "NAME", "STATUS", "OWNER", "EXPIRES IN", "GUILDS", name, generated.Name, guild1, "2 sandboxes")
	mustMatch(t, r.stdout, `\n`+generated.Name+` +running +alice +2h +- *\n`)
	mustMatch(t, r.stdout, `\n`+name+` +running +alice +1d +`+guild1+`\n`)
	r = s.run(t, aliceToken, "list", "--json")
	expect(t, r, ExitOK)
	var listed listResult
	decodeStrict(t, r.stdout, &listed)
	if listed.Total != 2 || len(listed.Sandboxes) != 2 || listed.Sandboxes[0].Name != generated.Name {
		t.Errorf("list --json: %+v", listed)
	}
	expect(t, s.run(t, bobToken, "list"), ExitOK)
	// A shell completes a NAME with the caller's sandboxes (the hidden __complete of cobra's
	// scripts), with their status and time left.
	r = s.run(t, aliceToken, "__complete", "status", "alice-f")
	expect(t, r, ExitOK)
	if !strings.HasPrefix(r.stdout, name+"\trunning, 1d\n:4\n") {
		t.Errorf("completing status alice-f: %s", r)
	}

	// status: timing, guilds, every check with its latency, overall, checked-at.
	r = s.run(t, aliceToken, "status", name)
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `Time left +1d\n`)
	mustContain(t, r.stdout, "Created", "Expires", guild1, "branch=feature-x",
		"Health  healthy (checked at", "CHECK", "LATENCY", "status", "database", "redis", "routes", " ms")
	r = s.run(t, aliceToken, "status", name, "--json")
	expect(t, r, ExitOK)
	var before StatusView
	decodeStrict(t, r.stdout, &before)
	if before.Sandbox.Name != name || before.Health == nil || before.Health.Overall != "healthy" || len(before.Health.Checks) != 4 {
		t.Fatalf("status --json: %+v", before)
	}
	for _, c := range before.Health.Checks {
		if c.Status != "ok" || c.LatencyMS < 0 {
			t.Errorf("check %+v", c)
		}
	}

	// extend moves the expiry by exactly the duration.
	r = s.run(t, aliceToken, "extend", name, "--by", "12h")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `^Extended `+name+` by 12h: expires .* UTC \(in 1d12h\)\n$`)
	sb, err := s.manager.GetByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got := sb.ExpiresAt.Sub(before.Sandbox.ExpiresAt); got != 12*time.Hour {
		t.Errorf("extend moved the expiry by %s", got)
	}
	// --json says the expiry before and after, the real extension and the cap.
	r = s.run(t, aliceToken, "extend", name, "--by", "3d", "--json")
	expect(t, r, ExitOK)
	var extended apiwire.ExtendResponse
	decodeStrict(t, r.stdout, &extended)
	maxExpiry := sb.CreatedAt.Add(sandbox.DefaultLimits().MaxLifetime)
	if extended.Capped || !extended.PreviousExpiresAt.Equal(sb.ExpiresAt) || !extended.ExpiresAt.Equal(sb.ExpiresAt.Add(72*time.Hour)) ||
		!extended.Sandbox.ExpiresAt.Equal(extended.ExpiresAt) || extended.ExtendedBySeconds != 72*3600 || !extended.MaxExpiresAt.Equal(maxExpiry) {
		t.Errorf("extend --by 3d --json: %+v", extended)
	}
	// Past the maximum lifetime: capped, not refused, and the output says by how much the
	// expiry really moved (7d - 24h - 12h - 3d), not --by.
	r = s.run(t, aliceToken, "extend", name, "--by", "30d")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `^Extended `+name+` by 2d12h \(capped at the maximum lifetime of 7d\): expires .* UTC \(in 7d\)\n$`)
	if sb, err = s.manager.GetByName(ctx, name); err != nil || !sb.ExpiresAt.Equal(maxExpiry) {
		t.Errorf("extend --by 30d: expires %v (%v), want the cap %s", sb.ExpiresAt, err, maxExpiry)
	}
	// At the cap nothing can move it: a conflict.
	r = s.run(t, aliceToken, "extend", name, "--by", "1h")
	expect(t, r, ExitConflict)
	mustContain(t, r.stderr, "maximum lifetime", "[invalid_transition]")

	// Only registered test guilds can be mapped: guild2 is not, until an admin registers it.
	r = s.run(t, aliceToken, "guilds", "add", name, guild2)
	expect(t, r, ExitConflict)
	mustContain(t, r.stderr, "guild "+guild2+" is not a registered test guild", "[guild_not_registered]")
	expect(t, s.run(t, aliceToken, "guilds", "register", guild2), ExitAuth)
	r = s.run(t, adminToken, "guilds", "register", guild2, "--note", "QA guild")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Registered test guild "+guild2+" (free): sandboxes may map it")
	r = s.run(t, adminToken, "guilds", "register", guild2, "--note", "QA guild of the demo", "--json")
	expect(t, r, ExitOK)
	var registered testGuildChange
	decodeStrict(t, r.stdout, &registered)
	if registered.Created || registered.GuildID != guild2 || registered.Note != "QA guild of the demo" || registered.RegisteredBy != admin {
		t.Errorf("guilds register again: %+v", registered)
	}
	expect(t, s.run(t, adminToken, "guilds", "register", protectedGuild), ExitConflict)
	r = s.run(t, aliceToken, "guilds", "registered")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "GUILD", guild1+"  mapped", guild2+"  free", "QA guild of the demo", "2 test guilds, 1 free.")

	// guilds add (idempotent) and remove; the route follows.
	r = s.run(t, aliceToken, "guilds", "add", name, guild2)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Mapped guild "+guild2, guild1+", "+guild2)
	r = s.run(t, aliceToken, "guilds", "add", name, guild2, "--json")
	expect(t, r, ExitOK)
	var change guildChange
	decodeStrict(t, r.stdout, &change)
	if change.Changed || change.GuildID != guild2 || len(change.Sandbox.Guilds) != 2 {
		t.Errorf("guilds add again: %+v", change)
	}
	// guilds list: the sandbox's guilds, a table and a count; --json for scripts.
	r = s.run(t, aliceToken, "guilds", "list", name)
	expect(t, r, ExitOK)
	if want := "GUILD\n" + guild1 + "\n" + guild2 + "\n2 guilds mapped to sandbox " + name + " (running)\n"; r.stdout != want {
		t.Errorf("guilds list: %q, want %q", r.stdout, want)
	}
	r = s.run(t, aliceToken, "guilds", "list", name, "--json")
	expect(t, r, ExitOK)
	var mapped guildsOf
	decodeStrict(t, r.stdout, &mapped)
	if mapped.Sandbox != name || mapped.SandboxID != sb.ID || mapped.Status != "running" || strings.Join(mapped.Guilds, ",") != guild1+","+guild2 {
		t.Errorf("guilds list --json: %+v", mapped)
	}
	r = s.run(t, aliceToken, "guilds", "list", generated.Name)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "No guilds mapped to sandbox "+generated.Name+" (running): map one with sandbox guilds add "+generated.Name+" GUILD_ID")
	expect(t, s.run(t, aliceToken, "guilds", "list", "no-such-sandbox"), ExitNotFound)
	expect(t, s.run(t, bobToken, "guilds", "list", name), ExitAuth)
	r = s.run(t, aliceToken, "route", guild2)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Guild "+guild2+" → sandbox", name)
	r = s.run(t, aliceToken, "guilds", "remove", name, guild2)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Unmapped guild "+guild2, "Guilds of "+name+": "+guild1)
	expect(t, s.run(t, aliceToken, "guilds", "remove", name, guild2), ExitNotFound)
	// An admin takes a free guild off the registry; a mapped one only once it is unmapped.
	r = s.run(t, adminToken, "guilds", "unregister", guild1)
	expect(t, r, ExitConflict)
	mustContain(t, r.stderr, "guild "+guild1+" is mapped to sandbox \""+name+"\"; remove the mapping first", "[guild_already_mapped]")
	r = s.run(t, adminToken, "guilds", "unregister", guild2)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Unregistered test guild "+guild2+": no sandbox may map it any more")
	expect(t, s.run(t, adminToken, "guilds", "unregister", guild2), ExitNotFound)
	expect(t, s.run(t, aliceToken, "guilds", "add", name, guild2), ExitConflict)
	r = s.run(t, aliceToken, "route", guild2, "--json")
	expect(t, r, ExitOK)
	var route apiwire.RouteExplanation
	decodeStrict(t, r.stdout, &route)
	if route.Destination != "production" || route.Mapping != nil {
		t.Errorf("unmapped guild: %+v", route)
	}
	// An admin protects a production guild at run time (guild2, which is no test guild any
	// more); a developer may not, nor take the configuration's protection away.
	expect(t, s.run(t, aliceToken, "guilds", "protect", guild2), ExitAuth)
	r = s.run(t, adminToken, "guilds", "protect", guild1)
	expect(t, r, ExitConflict)
	mustContain(t, r.stderr, "[guild_already_mapped]")
	r = s.run(t, adminToken, "guilds", "protect", guild2, "--reason", "the community guild")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Protected guild "+guild2+": no sandbox may map it, its events go to production")
	r = s.run(t, adminToken, "guilds", "protected")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `(?m)^GUILD +CONFIGURED +PROTECTED +BY +REASON\n`+protectedGuild+` +yes +- +- *\n`+guild2+` +no +\d{4}-.* UTC +ops-admin +the community guild\n2 protected guilds\.\n$`)
	r = s.run(t, adminToken, "guilds", "protect", guild2, "--reason", "the community guild, since 2019", "--json")
	expect(t, r, ExitOK)
	var protection protectionChange
	decodeStrict(t, r.stdout, &protection)
	if protection.Created || protection.GuildID != guild2 || protection.Reason != "the community guild, since 2019" || protection.ProtectedBy != admin {
		t.Errorf("guilds protect again: %+v", protection)
	}
	r = s.run(t, aliceToken, "route", guild2, "--json")
	expect(t, r, ExitOK)
	decodeStrict(t, r.stdout, &route)
	if route.Destination != "production" || !route.Protected {
		t.Errorf("protected guild: %+v", route)
	}
	r = s.run(t, adminToken, "guilds", "unprotect", protectedGuild)
	expect(t, r, ExitConflict)
	mustContain(t, r.stderr, "SANDBOX_PROTECTED_GUILDS", "[guild_protected]")
	r = s.run(t, adminToken, "guilds", "unprotect", guild2)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Unprotected guild "+guild2+": an ordinary guild again")
	expect(t, s.run(t, adminToken, "guilds", "unprotect", guild2), ExitNotFound)
	r = s.run(t, bobToken, "route", guild1)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Guild "+guild1+" → sandbox", "Stream")

	// connect: exports on stdout only, comments on stderr; eval sets working credentials.
	r = s.run(t, aliceToken, "connect", name)
	expect(t, r, ExitOK)
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !strings.HasPrefix(line, "export ") {
			t.Errorf("stdout line is not an export: %q", line)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if !strings.HasPrefix(line, "# ") {
			t.Errorf("stderr line is not a comment: %q", line)
		}
	}
	vars := evalInSh(t, r.stdout, "SANDBOX_ID", "SANDBOX_NAME", "SANDBOX_NAMESPACE", "SANDBOX_GUILD_IDS", "SANDBOX_DATABASE_URL", "PGPASSWORD")
	if vars[0] != sb.ID || vars[1] != name || vars[2] != "sandbox:{"+sb.ID+"}:" || vars[3] != guild1 || len(vars[5]) != 48 {
		t.Errorf("variables after eval: %q", vars)
	}
	conn, err := pgx.Connect(ctx, vars[4])
	if err != nil {
		t.Fatalf("the evaluated SANDBOX_DATABASE_URL does not connect: %v", err)
	}
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil || schema != sb.SchemaName {
		t.Errorf("current_schema() = %q, %v; want %s", schema, err, sb.SchemaName)
	}
	_ = conn.Close(ctx)
	r = s.run(t, aliceToken, "connect", name, "--json")
	expect(t, r, ExitOK)
	var connection apiwire.ConnectResponse
	decodeStrict(t, r.stdout, &connection)
	if connection.Database.Password == vars[5] || connection.Env["PGPASSWORD"] != connection.Database.Password {
		t.Errorf("every connect rotates the password: %+v", connection.Database)
	}

	// failures and their exit codes, as text and as --json.
	r = s.run(t, aliceToken, "status", "no-such-sandbox")
	expect(t, r, ExitNotFound)
	mustContain(t, r.stderr, "error:", "[not_found]", "request id:")
	if r.stdout != "" {
		t.Errorf("errors go to stderr without --json: %q", r.stdout)
	}
	r = s.run(t, aliceToken, "status", "no-such-sandbox", "--json")
	expect(t, r, ExitNotFound)
	if e := errorDoc(t, r); e.Code != sandbox.CodeNotFound || e.Status != 404 || e.Message == "" || e.RequestID == "" {
		t.Errorf("not found as JSON: %+v", e)
	}
	r = s.run(t, aliceToken, "create", name, "--json")
	expect(t, r, ExitConflict)
	if e := errorDoc(t, r); e.Code != sandbox.CodeNameTaken || e.Status != 409 {
		t.Errorf("name taken: %+v", e)
	}
	r = s.run(t, bobToken, "status", name)
	expect(t, r, ExitAuth)
	mustContain(t, r.stderr, "[forbidden]")
	expect(t, s.run(t, bobToken, "destroy", name, "--yes"), ExitAuth)
	r = s.run(t, aliceToken, "create", "alice-two", "--ttl", "soon", "--json")
	expect(t, r, ExitUsage)
	if e := errorDoc(t, r); e.Code != CodeUsage || e.Field != "ttl" || e.Status != 0 {
		t.Errorf("bad duration: %+v", e)
	}
	r = s.run(t, aliceToken, "create", "alice-two", "--ttl", "1m", "--json")
	expect(t, r, ExitUsage)
	if e := errorDoc(t, r); e.Code != sandbox.CodeInvalidInput || e.Field != "ttl" || e.Status != 400 ||
		e.Message != "ttl 1m is shorter than the minimum 10m" {
		t.Errorf("ttl below the minimum: %+v", e)
	}
	// The API says durations the way they are typed, not 192h0m0s.
	r = s.run(t, aliceToken, "create", "alice-two", "--ttl", "8d")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "error: ttl 8d exceeds the maximum lifetime 7d [invalid_input]")
	// Zero and negative durations are not positive; they are durations.
	r = s.run(t, aliceToken, "create", "alice-two", "--ttl", "0")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `error: --ttl must be positive, not "0" [usage]`, "hint: run `sandbox create --help` for usage")
	r = s.run(t, aliceToken, "extend", name, "--by", "-1h", "--json")
	expect(t, r, ExitUsage)
	if e := errorDoc(t, r); e.Code != CodeUsage || e.Field != "by" || e.Message != `--by must be positive, not "-1h"` {
		t.Errorf("extend --by -1h: %+v", e)
	}
	// A 20-digit id above the range is told the exact rule, the range included.
	r = s.run(t, aliceToken, "guilds", "add", name, "18446744073709551616")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `guild id "18446744073709551616" is not a Discord id (17 to 20 digits, no leading zero, at most 18446744073709551615)`)
	expect(t, s.run(t, aliceToken, "status", "Not_A_Name"), ExitUsage)
	r = s.run(t, aliceToken, "guilds", "add", name, protectedGuild)
	expect(t, r, ExitConflict)
	mustContain(t, r.stderr, "[guild_protected]")
	r = s.run(t, aliceToken, "create", "alice-three", "--guild", guild1)
	expect(t, r, ExitConflict)
	mustContain(t, r.stderr, "[guild_already_mapped]")
	r = s.runEnv(t, EnvAPIURL+" unset", func(e *Env) { e.Lookup = withVar(e.Lookup, EnvAPIURL, "") }, aliceToken, "list")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "no API URL", "[config]")
	r = s.run(t, "devtoken-nobody-0123456789", "list", "--json")
	expect(t, r, ExitAuth)
	if e := errorDoc(t, r); e.Code != sandbox.CodeUnauthenticated || e.Status != 401 {
		t.Errorf("unknown token: %+v", e)
	}
	// The API URL: what is wrong with it, before any token is sent anywhere.
	r = s.run(t, aliceToken, "--api-url", "notaurl", "list")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `error: API URL "notaurl" does not start with https:// or http:// [config]`, "hint: the API URL looks like https://")
	r = s.run(t, aliceToken, "--api-url", "https://", "list")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `error: API URL "https://" has no host [config]`)
	r = s.run(t, aliceToken, "--api-url", "http://sandboxes.example.com", "list")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "refusing to send the bearer token over plain http to sandboxes.example.com")

	// Usage errors: in the CLI's words, each with the help page of the command at hand.
	r = s.run(t, aliceToken, "frobnicate")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `error: unknown command "frobnicate" for sandbox [usage]`, "hint: run `sandbox --help` for its commands")
	r = s.run(t, aliceToken, "gilds", "list", name)
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `unknown command "gilds" for sandbox; did you mean "guilds"? [usage]`)
	r = s.run(t, aliceToken, "guilds", "frob")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `error: unknown command "frob" for sandbox guilds [usage]`, "hint: run `sandbox guilds --help` for its commands")
	r = s.run(t, aliceToken, "guilds", "add", name)
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "error: sandbox guilds add takes NAME GUILD_ID: GUILD_ID is missing [usage]",
		"hint: run `sandbox guilds add --help` for usage")
	r = s.run(t, aliceToken, "status", name, "extra")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `error: sandbox status takes NAME: unexpected argument "extra" [usage]`)
	r = s.run(t, aliceToken, "create", "-abc")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "error: unknown flag -a (in -abc) for sandbox create [usage]", "hint: run `sandbox create --help` for its flags")
	r = s.run(t, aliceToken, "list", "--yes")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "error: unknown flag --yes for sandbox list (it is a flag of sandbox destroy) [usage]")
	r = s.run(t, aliceToken, "create", "alice-two", "--ttl")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "error: --ttl needs a value: time to live", "hint: run `sandbox create --help` for its flags")
	r = s.run(t, aliceToken, "list", "--owner", alice, "--all")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "error: --owner and --all cannot be used together: choose one [usage]", "hint: run `sandbox list --help`")
	r = s.run(t, aliceToken, "help", "frob")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `error: unknown command "frob" for sandbox [usage]`)
	// After --, every argument is literal: --yes is a name here (an invalid one), not the flag.
	r = s.run(t, aliceToken, "destroy", "--", "--yes")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `error: name "--yes" must match`, "[invalid_input]")
	r = s.run(t, aliceToken, "status", "--", "--json")
	expect(t, r, ExitUsage)
	if r.stdout != "" || !strings.Contains(r.stderr, `name "--json" must match`) {
		t.Errorf("a --json after -- is an argument, not the flag: %s", r)
	}
	// Every command group behaves alike run bare: its help on stderr, a usage error.
	for _, group := range [][]string{nil, {"guilds"}, {"cleanup"}} {
		r = s.run(t, aliceToken, group...)
		expect(t, r, ExitUsage)
		path := strings.Join(append([]string{"sandbox"}, group...), " ")
		if r.stdout != "" || !strings.Contains(r.stderr, "Usage:\n  "+path+" [command]\n") ||
			!strings.Contains(r.stderr, "error: "+path+" needs a command: ") || strings.Contains(r.stderr, path+" [flags]") {
			t.Errorf("%s run bare: %s", path, r)
		}
	}
	r = s.run(t, aliceToken, "guilds", "--json")
	expect(t, r, ExitUsage)
	if e := errorDoc(t, r); e.Code != CodeUsage || e.Message != "sandbox guilds needs a command: add, list, parked, protect, protected, register, registered, release, remove, unprotect or unregister" {
		t.Errorf("guilds --json: %+v", e)
	}
	r = s.run(t, aliceToken, "extend", name, "--json")
	expect(t, r, ExitUsage)
	if e := errorDoc(t, r); e.Code != CodeUsage || !strings.Contains(e.Message, "by") {
		t.Errorf("extend without --by: %+v", e)
	}
	expect(t, s.run(t, aliceToken, "list", "--bogus", "--json"), ExitUsage)
	expect(t, s.run(t, aliceToken, "list", "--all"), ExitAuth)
	r = s.run(t, adminToken, "list", "--all", "--json")
	expect(t, r, ExitOK)
	decodeStrict(t, r.stdout, &listed)
	if listed.Total != 2 {
		t.Errorf("admin list --all: %+v", listed)
	}
	// An IAM user's sandbox: its owner short in tables and in full next to it in details;
	// --wide and --json show the ARN.
	r = s.run(t, carolToken, "create", "carol-arn", "--ttl", "90m")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Owner    carol ("+carol+")", "(in 1h30m)")
	r = s.run(t, adminToken, "list", "--all")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `\ncarol-arn +running +carol +1h30m +- *\n`)
	if strings.Contains(r.stdout, "arn:") {
		t.Errorf("the table shows the ARN:\n%s", r.stdout)
	}
	r = s.run(t, adminToken, "list", "--all", "--wide")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `^NAME +ID +STATUS +OWNER +EXPIRES IN +GUILDS +EVENTS +LAST EVENT +STREAM +PENDING +SCHEMA +KEYS\n`)
	mustMatch(t, r.stdout, `\ncarol-arn +[a-z0-9]{16} +running +`+regexp.QuoteMeta(carol)+` +1h30m +- +0 +- +0 +0 +[0-9.]+ KiB +-\n`)
	r = s.run(t, carolToken, "status", "carol-arn")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Owner      carol ("+carol+")", "Time left  1h30m")
	expect(t, s.run(t, carolToken, "destroy", "carol-arn", "--yes"), ExitOK)
	expect(t, s.run(t, aliceToken, "cleanup", "orphans"), ExitAuth)
	closed := httptest.NewServer(nil)
	closed.Close()
	r = s.runEnv(t, "the API is down", func(e *Env) { e.Lookup = withVar(e.Lookup, EnvAPIURL, closed.URL) }, aliceToken, "list")
	expect(t, r, ExitUnavailable)
	mustContain(t, r.stderr, "cannot reach the API", "[unreachable]")

	// expiry and the admin cleanup: an expired sandbox shows EXPIRED, cannot be extended, and
	// the cleanup run tears it down.
	expect(t, s.run(t, aliceToken, "create", "alice-short", "--ttl", "10m"), ExitOK)
	if _, err := s.pool.Exec(ctx, `UPDATE sandbox_control.sandboxes
		SET created_at = now() - interval '1 hour', expires_at = now() - interval '5 minutes' WHERE name = 'alice-short'`); err != nil {
		t.Fatal(err)
	}
	r = s.run(t, aliceToken, "list")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `alice-short +expired +alice +EXPIRED`)
	r = s.run(t, aliceToken, "status", "alice-short")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Status     expired", "Time left  EXPIRED", "Health  unhealthy", "status    fail")
	expect(t, s.run(t, aliceToken, "extend", "alice-short", "--by", "1h"), ExitConflict)
	expect(t, s.run(t, aliceToken, "cleanup", "run"), ExitAuth)
	r = s.run(t, adminToken, "cleanup", "run", "--json")
	expect(t, r, ExitOK)
	var run apiwire.CleanupResponse
	decodeStrict(t, r.stdout, &run)
	short, err := s.manager.GetByName(ctx, "alice-short")
	if err != nil || len(run.Run.Destroyed) != 1 || run.Run.Destroyed[0] != short.ID {
		t.Errorf("the cleanup run destroys the expired sandbox %v: %+v (%v)", short, run.Run, err)
	}
	r = s.run(t, aliceToken, "status", "alice-short")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Status     destroyed", "reason: expired")
	r = s.run(t, adminToken, "cleanup", "orphans")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Orphaned resources:", "grace_seconds")
	r = s.run(t, adminToken, "cleanup", "orphans", "--remove", "--json")
	expect(t, r, ExitOK)
	var orphans map[string]json.RawMessage
	decodeStrict(t, r.stdout, &orphans)
	if orphans["report"] == nil || orphans["removal"] == nil {
		t.Errorf("orphans --remove --json is the orphan report after removal: %s", r.stdout)
	}

	// destroy: refuses without a terminal or --yes, shows the teardown record, is idempotent.
	r = s.run(t, aliceToken, "destroy", name)
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "--yes", "[confirmation_required]")
	r = s.run(t, aliceToken, "destroy", name, "--yes")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Destroyed sandbox "+name, "Teardown record:", "remove_mappings", "drop_schema_and_role", "mark_destroyed")
	if i, j := strings.Index(r.stdout, "mark_destroying"), strings.Index(r.stdout, "mark_destroyed"); i < 0 || j < i {
		t.Errorf("teardown steps are shown in the order they ran:\n%s", r.stdout)
	}
	r = s.run(t, aliceToken, "destroy", name, "--yes", "--json")
	expect(t, r, ExitOK)
	var destroyed apiwire.DestroyResponse
	decodeStrict(t, r.stdout, &destroyed)
	if destroyed.Changed || destroyed.Sandbox.Status != statusDestroyed || len(destroyed.Sandbox.Teardown) == 0 {
		t.Errorf("destroy again: %+v", destroyed)
	}
	r = s.run(t, aliceToken, "status", name)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "destroyed", "Destroyed", "Teardown record")
	expect(t, s.run(t, aliceToken, "extend", name, "--by", "1h"), ExitConflict)
	r = s.run(t, aliceToken, "guilds", "list", name)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "No guilds mapped to sandbox "+name+" (destroyed): its test guilds were parked when it was torn down, see sandbox guilds parked")
	r = s.run(t, aliceToken, "connect", name)
	expect(t, r, ExitConflict)
	if r.stdout != "" {
		t.Errorf("a failed connect prints nothing for eval: %q", r.stdout)
	}
	// The destroyed sandbox's test guild is parked: never production, until released.
	r = s.run(t, aliceToken, "route", guild1)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "→ parked", "parked since", "Parked", "sandbox guilds release "+guild1)
	r = s.run(t, aliceToken, "guilds", "parked")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, guild1, "destroy_requested", name)
	r = s.run(t, bobToken, "guilds", "parked")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "No parked guilds.")
	expect(t, s.run(t, bobToken, "guilds", "release", guild1), ExitAuth)
	r = s.run(t, aliceToken, "guilds", "release", guild1)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Released guild "+guild1, "production")
	expect(t, s.run(t, aliceToken, "guilds", "release", guild1), ExitNotFound)
	r = s.run(t, aliceToken, "route", guild1)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "→ production")

	// A teardown that cannot finish (a session holds a lock on the schema): 202, destroying,
	// the step's error; the next destroy resumes it.
	expect(t, s.run(t, aliceToken, "create", "alice-busy", "--ttl", "1h"), ExitOK)
	busy, err := s.manager.GetByName(ctx, "alice-busy")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var table string
	if err := tx.QueryRow(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1 LIMIT 1`,
		busy.SchemaName).Scan(&table); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{busy.SchemaName, table}.Sanitize()+" IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	r = s.run(t, aliceToken, "destroy", "alice-busy", "--yes")
	_ = tx.Rollback(ctx)
	expect(t, r, ExitOK)
	// The owner sees the failure's code and stable message, not the database's error.
	mustContain(t, r.stdout, "is destroying: the teardown did not finish", "Teardown record:", "last_failure", "lock_timeout",
		"waiting for it timed out")
	if strings.Contains(r.stdout, "SQLSTATE") {
		t.Errorf("the owner sees the database's error:\n%s", r.stdout)
	}
	r = s.run(t, aliceToken, "destroy", "alice-busy", "--yes")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Sandbox alice-busy (id "+busy.ID+") is destroyed since", "mark_destroyed")
	expect(t, s.run(t, aliceToken, "destroy", generated.Name, "--yes"), ExitOK)
	r = s.run(t, aliceToken, "list")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "0 sandboxes")
	// Destroyed rows show their id and when they were destroyed: names can be reused.
	r = s.run(t, aliceToken, "list", "--include-destroyed")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "4 sandboxes")
	mustMatch(t, r.stdout, `^NAME +ID +STATUS +OWNER +EXPIRES IN +GUILDS +DESTROYED\n`)
	mustMatch(t, r.stdout, `\nalice-busy +`+busy.ID+` +destroyed +alice +- +- +\d+s ago\n`)
	mustMatch(t, r.stdout, `\n`+name+` +`+sb.ID+` +destroyed +alice +- +- +\d+s ago\n`)

	s.writeTranscript(t)
}

// withVar returns l with name set to value ("" unsets it).
func withVar(l func(string) (string, bool), name, value string) func(string) (string, bool) {
	return func(n string) (string, bool) {
		if n == name {
			return value, value != ""
		}
		return l(n)
	}
}

// evalInSh evaluates exports in sh, as `eval "$(sandbox connect NAME)"` does, and returns the
// values of names afterwards.
func evalInSh(t *testing.T, exports string, names ...string) []string {
	t.Helper()
	script := `eval "$(cat)"`
	for _, n := range names {
		script += `; printf '%s\0' "$` + n + `"`
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdin = strings.NewReader(exports)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh: %v: %s", err, stderr.String())
	}
	values := strings.Split(string(out), "\x00")
	return values[:len(values)-1]
}
