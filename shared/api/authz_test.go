package api_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Collaborators of the matrix's sandboxes: each target of alice's is shared with dave as a
// developer and with erin as a viewer.
const (
	dave = "arn:aws:iam::123456789012:user/dave"
	erin = "arn:aws:iam::123456789012:user/erin"
)

// principals of the authorization matrix, in the order each row lists its statuses.
var matrixPrincipals = []struct{ tag, principal string }{
	{"owner", alice}, {"developer", dave}, {"viewer", erin}, {"other", bob}, {"admin", admin}, {"none", nobody},
}

type matrixRow struct {
	pattern string
	// target: the row addresses a sandbox of alice's (one per principal, so that allowed
	// requests of one principal never change what another sees), shared with dave as a
	// developer and erin as a viewer.
	target bool
	build  func(name, guild, tag string) call
	// prepare, when set, readies the target before the request.
	prepare func(t *testing.T, e *env, name, guild string)
	// want lists the status per principal: owner, developer, viewer, other, admin, none.
	want [6]int
}

func matrixRows() []matrixRow {
	return []matrixRow{
		{pattern: "GET /health", build: func(_, _, _ string) call { return call{method: "GET", path: "/health"} },
			want: [6]int{200, 200, 200, 200, 200, 401}},
		{pattern: "POST /v1/sandboxes", build: func(_, _, tag string) call {
			return call{method: "POST", path: "/v1/sandboxes", body: `{"name":"new-` + tag + `"}`}
		}, want: [6]int{201, 201, 201, 201, 201, 401}},
		{pattern: "GET /v1/sandboxes", build: func(_, _, _ string) call { return call{method: "GET", path: "/v1/sandboxes"} },
			want: [6]int{200, 200, 200, 200, 200, 401}},
		{pattern: "GET /v1/sandboxes", build: func(_, _, _ string) call {
			return call{method: "GET", path: "/v1/sandboxes", query: "owner=" + url.QueryEscape(alice)}
		}, want: [6]int{200, 403, 403, 403, 200, 401}},
		{pattern: "GET /v1/sandboxes", build: func(_, _, _ string) call {
			return call{method: "GET", path: "/v1/sandboxes", query: "all=true"}
		}, want: [6]int{403, 403, 403, 403, 200, 401}},
		{pattern: "GET /v1/sandboxes/{name}", target: true, build: func(name, _, _ string) call {
			return call{method: "GET", path: "/v1/sandboxes/" + name}
		}, want: [6]int{200, 200, 200, 403, 200, 401}},
		{pattern: "POST /v1/sandboxes/{name}/extend", target: true, build: func(name, _, _ string) call {
			return call{method: "POST", path: "/v1/sandboxes/" + name + "/extend", body: `{"by":"1h"}`}
		}, want: [6]int{200, 200, 403, 403, 200, 401}},
		{pattern: "DELETE /v1/sandboxes/{name}", target: true, build: func(name, _, _ string) call {
			return call{method: "DELETE", path: "/v1/sandboxes/" + name}
		}, want: [6]int{202, 403, 403, 403, 202, 401}},
		{pattern: "PUT /v1/sandboxes/{name}/guilds/{guild_id}", target: true, build: func(name, guild, _ string) call {
			return call{method: "PUT", path: "/v1/sandboxes/" + name + "/guilds/" + nextGuild(guild)}
		}, want: [6]int{201, 201, 403, 403, 201, 401}},
		{pattern: "DELETE /v1/sandboxes/{name}/guilds/{guild_id}", target: true, build: func(name, guild, _ string) call {
			return call{method: "DELETE", path: "/v1/sandboxes/" + name + "/guilds/" + guild}
		}, want: [6]int{200, 200, 403, 403, 200, 401}},
		{pattern: "POST /v1/sandboxes/{name}/connect", target: true, build: func(name, _, _ string) call {
			return call{method: "POST", path: "/v1/sandboxes/" + name + "/connect"}
		}, want: [6]int{200, 200, 403, 403, 200, 401}},
		{pattern: "GET /v1/sandboxes/{name}/health", target: true, build: func(name, _, _ string) call {
			return call{method: "GET", path: "/v1/sandboxes/" + name + "/health"}
		}, want: [6]int{200, 200, 200, 403, 200, 401}},
		{pattern: "GET /v1/sandboxes/{name}/events", target: true, build: func(name, _, _ string) call {
			return call{method: "GET", path: "/v1/sandboxes/" + name + "/events", query: "since=1h&limit=10&include_payload=true"}
		}, want: [6]int{200, 200, 200, 403, 200, 401}},
		{pattern: "POST /v1/sandboxes/{name}/events/rewind", target: true, build: func(name, _, _ string) call {
			return call{method: "POST", path: "/v1/sandboxes/" + name + "/events/rewind", body: `{"to":"0-0"}`}
		}, want: [6]int{200, 200, 403, 403, 200, 401}},
		{pattern: "GET /v1/sandboxes/{name}/shares", target: true, build: func(name, _, _ string) call {
			return call{method: "GET", path: "/v1/sandboxes/" + name + "/shares"}
		}, want: [6]int{200, 403, 403, 403, 200, 401}},
		{pattern: "POST /v1/sandboxes/{name}/shares", target: true, build: func(name, _, _ string) call {
			return call{method: "POST", path: "/v1/sandboxes/" + name + "/shares", body: `{"principal":"` + frank + `","role":"viewer"}`}
		}, want: [6]int{201, 403, 403, 403, 201, 401}},
		{pattern: "DELETE /v1/sandboxes/{name}/shares", target: true, build: func(name, _, _ string) call {
			return call{method: "DELETE", path: "/v1/sandboxes/" + name + "/shares", query: "principal=" + url.QueryEscape(erin)}
		}, want: [6]int{200, 403, 403, 403, 200, 401}},
		{pattern: "POST /v1/sandboxes/{name}/events/read", target: true, build: func(name, _, _ string) call {
			return call{method: "POST", path: "/v1/sandboxes/" + name + "/events/read", body: `{"consumer":"c1","count":5}`}
		}, want: [6]int{200, 200, 403, 403, 200, 401}},
		{pattern: "POST /v1/sandboxes/{name}/events/claim", target: true, build: func(name, _, _ string) call {
			return call{method: "POST", path: "/v1/sandboxes/" + name + "/events/claim", body: `{"consumer":"c1","min_idle":"1s"}`}
		}, want: [6]int{200, 200, 403, 403, 200, 401}},
		{pattern: "POST /v1/sandboxes/{name}/events/ack", target: true, build: func(name, _, _ string) call {
			return call{method: "POST", path: "/v1/sandboxes/" + name + "/events/ack", body: `{"ids":["1-0"]}`}
		}, want: [6]int{200, 200, 403, 403, 200, 401}},
		{pattern: "GET /v1/routes/{guild_id}", target: true, build: func(_, guild, _ string) call {
			return call{method: "GET", path: "/v1/routes/" + guild}
		}, want: [6]int{200, 200, 200, 200, 200, 401}},
		{pattern: "GET /v1/guilds/parked", build: func(_, _, _ string) call {
			return call{method: "GET", path: "/v1/guilds/parked"}
		}, want: [6]int{200, 200, 200, 200, 200, 401}},
		{pattern: "POST /v1/guilds/{guild_id}/release", target: true, prepare: parkGuild, build: func(_, guild, _ string) call {
			return call{method: "POST", path: "/v1/guilds/" + guild + "/release"}
		}, want: [6]int{200, 403, 403, 403, 200, 401}},
		{pattern: "GET /v1/test-guilds", build: func(_, _, _ string) call {
			return call{method: "GET", path: "/v1/test-guilds"}
		}, want: [6]int{200, 200, 200, 200, 200, 401}},
		{pattern: "PUT /v1/admin/test-guilds/{guild_id}", build: func(_, _, _ string) call {
			return call{method: "PUT", path: "/v1/admin/test-guilds/" + matrixFreshGuild, body: `{"note":"QA"}`}
		}, want: [6]int{403, 403, 403, 403, 201, 401}},
		{pattern: "DELETE /v1/admin/test-guilds/{guild_id}", target: true, build: func(_, guild, _ string) call {
			return call{method: "DELETE", path: "/v1/admin/test-guilds/" + nextGuild(guild)}
		}, want: [6]int{403, 403, 403, 403, 200, 401}},
		{pattern: "GET /v1/admin/protected-guilds", build: func(_, _, _ string) call {
			return call{method: "GET", path: "/v1/admin/protected-guilds"}
		}, want: [6]int{403, 403, 403, 403, 200, 401}},
		{pattern: "PUT /v1/admin/protected-guilds/{guild_id}", target: true, build: func(_, guild, _ string) call {
			return call{method: "PUT", path: "/v1/admin/protected-guilds/" + nextGuild(guild), body: `{"reason":"production"}`}
		}, want: [6]int{403, 403, 403, 403, 201, 401}},
		{pattern: "DELETE /v1/admin/protected-guilds/{guild_id}", target: true, prepare: protectNextGuild, build: func(_, guild, _ string) call {
			return call{method: "DELETE", path: "/v1/admin/protected-guilds/" + nextGuild(guild)}
		}, want: [6]int{403, 403, 403, 403, 200, 401}},
		{pattern: "POST /v1/admin/cleanup", build: func(_, _, _ string) call {
			return call{method: "POST", path: "/v1/admin/cleanup", body: `{"remove_orphans":false}`}
		}, want: [6]int{403, 403, 403, 403, 200, 401}},
		{pattern: "GET /v1/admin/orphans", build: func(_, _, _ string) call {
			return call{method: "GET", path: "/v1/admin/orphans"}
		}, want: [6]int{403, 403, 403, 403, 200, 401}},
		{pattern: "GET /v1/templates", build: func(_, _, _ string) call {
			return call{method: "GET", path: "/v1/templates"}
		}, want: [6]int{200, 200, 200, 200, 200, 401}},
		{pattern: "GET /v1/templates", build: func(_, _, _ string) call {
			return call{method: "GET", path: "/v1/templates", query: "include_retired=true"}
		}, want: [6]int{403, 403, 403, 403, 200, 401}},
		{pattern: "POST /v1/admin/templates", build: func(_, _, tag string) call {
			return call{method: "POST", path: "/v1/admin/templates", body: `{"name":"tm-` + tag + `","source_schema":"sandbox_template"}`}
		}, want: [6]int{403, 403, 403, 403, 201, 401}},
		{pattern: "PATCH /v1/admin/templates/{template}", prepare: matrixTemplate("tm-patched"), build: func(_, _, _ string) call {
			return call{method: "PATCH", path: "/v1/admin/templates/tm-patched", body: `{"description":"changed"}`}
		}, want: [6]int{403, 403, 403, 403, 200, 401}},
		{pattern: "DELETE /v1/admin/templates/{template}", prepare: matrixTemplate("tm-retired"), build: func(_, _, _ string) call {
			return call{method: "DELETE", path: "/v1/admin/templates/tm-retired"}
		}, want: [6]int{403, 403, 403, 403, 200, 401}},
	}
}

// matrixTemplate registers the template name (once) before a request addresses it.
func matrixTemplate(name string) func(t *testing.T, e *env, _, _ string) {
	return func(t *testing.T, e *env, _, _ string) {
		t.Helper()
		if _, err := e.manager.AddTemplate(context.Background(), admin, controlplane.TemplateInput{
			Name: name, SourceSchema: "sandbox_template"}); err != nil && sandbox.CodeOf(err) != sandbox.CodeNameTaken {
			t.Fatal(err)
		}
	}
}

// parkGuild parks the guild of alice's sandbox name, as its teardown would have.
func parkGuild(t *testing.T, e *env, name, guild string) {
	t.Helper()
	ctx := context.Background()
	sb, err := e.manager.GetByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `DELETE FROM sandbox_control.guild_mappings WHERE guild_id = $1`, guild); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO sandbox_control.parked_guilds (guild_id, sandbox_id, owner, reason)
		VALUES ($1, $2, $3, 'destroy_requested')`, guild, sb.ID, sb.Owner); err != nil {
		t.Fatal(err)
	}
}

// protectNextGuild protects the target's free guild, as an admin's protection would.
func protectNextGuild(t *testing.T, e *env, _, guild string) {
	t.Helper()
	if _, _, err := e.manager.ProtectGuild(context.Background(), admin, nextGuild(guild), "production"); err != nil {
		t.Fatal(err)
	}
}

// matrixGuildBase spaces the guilds of the matrix's sandboxes: each sandbox gets base+2k
// mapped and base+2k+1 free.
const matrixGuildBase = 80351110224690000

// matrixFreshGuild is the guild the matrix registers: nobody has registered it before.
const matrixFreshGuild = "80351110224689999"

func nextGuild(g string) string {
	n, _ := strconv.ParseUint(g, 10, 64)
	return strconv.FormatUint(n+1, 10)
}

func TestAuthorizationMatrix(t *testing.T) {
	limits := sandbox.DefaultLimits()
	limits.OwnerQuota = 1000
	limits.DBReservedConnections = -1 // more sandboxes than the test server has connections for
	e := newEnv(t, envOptions{limits: limits, cleanup: func(e *env) api.CleanupAdmin { return catalogCleanup{e: e} }})

	covered := map[string]bool{}
	targets := 0
	for i, row := range matrixRows() {
		covered[row.pattern] = true
		for j, p := range matrixPrincipals {
			name, guild := "", ""
			if row.target {
				name = fmt.Sprintf("m%d-%s", i, p.tag)
				guild = strconv.FormatUint(matrixGuildBase+uint64(2*targets), 10)
				targets++
				testenv.RegisterTestGuilds(t, e.direct, guild, nextGuild(guild))
				e.create(t, alice, name, guild)
				e.shareWith(t, alice, name, dave, "developer")
				e.shareWith(t, alice, name, erin, "viewer")
			}
			if row.prepare != nil {
				row.prepare(t, e, name, guild)
			}
			c := row.build(name, guild, p.tag)
			c.principal = p.principal
			t.Run(fmt.Sprintf("%s %s?%s as %s", c.method, row.pattern, c.query, p.tag), func(t *testing.T) {
				want := row.want[j]
				before := e.snapshot(t)
				r := e.do(t, c)
				switch want {
				case 401:
					wantProblem(t, r, 401, sandbox.CodeUnauthenticated, "")
					e.unchanged(t, before)
				case 403:
					wantProblem(t, r, 403, sandbox.CodeForbidden, "")
					e.unchanged(t, before)
				default:
					wantStatus(t, r, want)
				}
			})
		}
	}
	var missing []string
	for _, p := range e.handler.Routes() {
		if !covered[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 || len(covered) != len(e.handler.Routes()) {
		t.Errorf("the matrix does not cover routes %v (covers %d of %d)", missing, len(covered), len(e.handler.Routes()))
	}
}

// TestDocumentedRolesMatchTheMatrix keeps docs/api.md's "Roles per route" table in step with
// the authorization matrix: one row per route, each role's "yes" or "no" the first matrix row
// of that route says (a success status, or 403). It needs no services.
func TestDocumentedRolesMatchTheMatrix(t *testing.T) {
	const roles = 5 // owner, developer, viewer, other, admin: the matrix's principals but "none"
	want := map[string][roles]string{}
	for _, row := range matrixRows() {
		if _, seen := want[row.pattern]; seen {
			continue
		}
		var cells [roles]string
		for j := range cells {
			cells[j] = "yes"
			if row.want[j] == 403 {
				cells[j] = "no"
			}
		}
		want[row.pattern] = cells
	}
	got := map[string][roles]string{}
	for _, cells := range docTable(t, "### Roles per route") {
		if len(cells) != 2+roles || !methodRE.MatchString(cells[0]) {
			continue
		}
		var c [roles]string
		copy(c[:], cells[2:])
		got[cells[0]+" "+cells[1]] = c
	}
	for route, w := range want {
		if g, ok := got[route]; !ok {
			t.Errorf("docs/api.md's Roles per route has no row for %s", route)
		} else if g != w {
			t.Errorf("docs/api.md says %s is %v for owner, developer, viewer, other, admin; the matrix %v", route, g, w)
		}
	}
	for route := range got {
		if _, ok := want[route]; !ok {
			t.Errorf("docs/api.md's Roles per route lists %s, which the matrix does not", route)
		}
	}
}
