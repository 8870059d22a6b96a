package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// registerTemplate registers a template as the admin, through the control plane.
func registerTemplate(t testing.TB, e *env, name, schema string, copyRows bool) {
	t.Helper()
	if _, err := e.manager.AddTemplate(context.Background(), admin, controlplane.TemplateInput{
		Name: name, SourceSchema: schema, CopyRows: copyRows}); err != nil {
		t.Fatal(err)
	}
}

// templatesState is the template registry as stored, for before/after comparisons.
func templatesState(t testing.TB, e *env) string {
	t.Helper()
	var s string
	if err := e.direct.QueryRow(context.Background(),
		`SELECT coalesce((SELECT json_agg(t ORDER BY t.name)::text FROM sandbox_control.templates t), '')`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// templateAudit returns the details of the registry's audit entries with the action, oldest
// first.
func templateAudit(t testing.TB, e *env, action string) []map[string]any {
	t.Helper()
	rows, err := e.direct.Query(context.Background(),
		`SELECT actor, details FROM sandbox_control.audit_log WHERE action = $1 ORDER BY id`, action)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (map[string]any, error) {
		var actor string
		var raw []byte
		if err := r.Scan(&actor, &raw); err != nil {
			return nil, err
		}
		var d map[string]any
		err := json.Unmarshal(raw, &d)
		d["actor"] = actor
		return d, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The template routes as an admin and a developer use them: the admin registers a template
// with seed rows, everyone lists it after the default one, a developer creates a sandbox from
// it and its role reads the seed rows at once; the admin updates it and retires it, each
// change audited under the admin's name; a retired template takes no new sandbox, is listed
// only when an admin asks for the retired ones, and keeps its name.
func TestTemplateRoutes(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	seed := testenv.SeedTemplate(t, e.workers, "tmpl_guild_xp", 1000)

	r := e.do(t, call{method: "POST", path: "/v1/admin/templates", principal: admin,
		body: `{"name":"guild-xp","description":"a guild with XP","source_schema":"tmpl_guild_xp","copy_rows":true,"default_ttl":"2d"}`})
	wantStatus(t, r, 201)
	added := decode[apiwire.Template](t, r)
	if r.headers["Location"] != "/v1/admin/templates/guild-xp" || added.Name != "guild-xp" || !added.CopyRows ||
		added.DefaultTTL != "2d" || added.DefaultTTLSeconds != 172800 || added.CreatedBy != admin || added.Builtin {
		t.Errorf("added: %+v (Location %q)", added, r.headers["Location"])
	}
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/admin/templates", principal: admin,
		body: `{"name":"guild-xp","source_schema":"sandbox_template"}`}), 409, sandbox.CodeNameTaken, "")

	r = e.do(t, call{method: "GET", path: "/v1/templates", principal: alice})
	wantStatus(t, r, 200)
	list := decode[apiwire.TemplatesResponse](t, r)
	if len(list.Templates) != 2 || list.Templates[0].Name != sandbox.DefaultTemplate || !list.Templates[0].Builtin ||
		list.Templates[0].SourceSchema != "sandbox_template" || list.Templates[1].Name != "guild-xp" {
		t.Fatalf("list: %+v", list)
	}

	r = e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: alice, body: `{"name":"seeded","template":"guild-xp"}`})
	wantStatus(t, r, 201)
	sb := decode[apiwire.Sandbox](t, r)
	if sb.Template != "guild-xp" || sb.ExpiresAt.Sub(sb.CreatedAt).Hours() != 48 {
		t.Errorf("created: template %q, TTL %s", sb.Template, sb.ExpiresAt.Sub(sb.CreatedAt))
	}
	for table, n := range seed {
		var got int
		if err := e.workers.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s", pgx.Identifier{"sb_" + sb.ID, table}.Sanitize())).Scan(&got); err != nil || got != n {
			t.Errorf("%s: %d rows (%v), want %d", table, got, err, n)
		}
	}
	if run := e.auditOf(t, sb.ID, controlplane.ActionRunning); len(run) != 1 || !jsonHas(run[0].Details, "seed_rows", float64(seed.Total())) {
		t.Errorf("running entry: %+v", run)
	}
	if cr := e.auditOf(t, sb.ID, controlplane.ActionCreate); len(cr) != 1 || !jsonHas(cr[0].Details, "template", "guild-xp") {
		t.Errorf("create entry: %+v", cr)
	}
	if plain := e.create(t, alice, "plain"); plain.Template != sandbox.DefaultTemplate {
		t.Errorf("without a template: %q", plain.Template)
	}

	r = e.do(t, call{method: "PATCH", path: "/v1/admin/templates/guild-xp", principal: admin, body: `{"description":"XP, 10 guilds","default_ttl":""}`})
	wantStatus(t, r, 200)
	if up := decode[apiwire.Template](t, r); up.Description != "XP, 10 guilds" || up.DefaultTTLSeconds != 86400 || !up.CopyRows {
		t.Errorf("updated: %+v", up)
	}
	wantProblem(t, e.do(t, call{method: "PATCH", path: "/v1/admin/templates/no-such", principal: admin, body: `{"copy_rows":false}`}),
		404, sandbox.CodeNotFound, "")

	r = e.do(t, call{method: "DELETE", path: "/v1/admin/templates/guild-xp", principal: admin})
	wantStatus(t, r, 200)
	if ret := decode[apiwire.RetireTemplateResponse](t, r); !ret.Changed || ret.Template.RetiredAt == nil || ret.Template.RetiredBy != admin {
		t.Errorf("retired: %+v", ret)
	}
	r = e.do(t, call{method: "DELETE", path: "/v1/admin/templates/guild-xp", principal: admin})
	wantStatus(t, r, 200)
	if ret := decode[apiwire.RetireTemplateResponse](t, r); ret.Changed {
		t.Errorf("retiring twice changed it again: %+v", ret)
	}
	wantProblem(t, e.do(t, call{method: "PATCH", path: "/v1/admin/templates/guild-xp", principal: admin, body: `{"copy_rows":false}`}),
		409, sandbox.CodeInvalidTransition, "")
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: alice, body: `{"name":"late","template":"guild-xp"}`}),
		400, sandbox.CodeInvalidInput, "template")
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/admin/templates", principal: admin,
		body: `{"name":"guild-xp","source_schema":"sandbox_template"}`}), 409, sandbox.CodeNameTaken, "")

	if l := decode[apiwire.TemplatesResponse](t, e.do(t, call{method: "GET", path: "/v1/templates", principal: alice})); len(l.Templates) != 1 {
		t.Errorf("the retired template is still listed: %+v", l)
	}
	l := decode[apiwire.TemplatesResponse](t, e.do(t, call{method: "GET", path: "/v1/templates", principal: admin, query: "include_retired=true"}))
	if len(l.Templates) != 2 || l.Templates[1].RetiredAt == nil {
		t.Errorf("include_retired: %+v", l)
	}
	// The sandbox made from it lives on.
	if got := decode[apiwire.Sandbox](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/seeded", principal: alice})); got.Status != string(sandbox.StatusRunning) {
		t.Errorf("the sandbox of the retired template: %s", got.Status)
	}

	for action, want := range map[string]int{controlplane.ActionTemplateAdd: 1, controlplane.ActionTemplateUpdate: 1, controlplane.ActionTemplateRetire: 1} {
		entries := templateAudit(t, e, action)
		if len(entries) != want {
			t.Errorf("%s: %d entries, want %d: %+v", action, len(entries), want, entries)
			continue
		}
		if entries[0]["actor"] != admin || (action != controlplane.ActionTemplateUpdate && entries[0]["name"] != "guild-xp") {
			t.Errorf("%s: %+v", action, entries[0])
		}
	}
}

// jsonHas reports whether a JSON object has the key with the value.
func jsonHas(raw json.RawMessage, key string, want any) bool {
	var m map[string]any
	return json.Unmarshal(raw, &m) == nil && m[key] == want
}

// A template that would copy more rows than a sandbox's schema may hold is refused, at
// registration and when an update would make it copy them, naming copy_rows; the same schema
// without its rows is registered, and an update that leaves the rows alone passes.
func TestATemplateAboveTheDiskShareCopiesNoRows(t *testing.T) {
	e := newEnv(t, envOptions{resources: func(_ *env, r api.Resources) api.Resources { return aboveDiskShare{r} }})
	testenv.SeedTemplate(t, e.workers, "tmpl_large", 100)
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/admin/templates", principal: admin,
		body: `{"name":"large","source_schema":"tmpl_large","copy_rows":true}`}), 400, sandbox.CodeInvalidInput, "copy_rows")
	wantStatus(t, e.do(t, call{method: "POST", path: "/v1/admin/templates", principal: admin,
		body: `{"name":"large","source_schema":"tmpl_large"}`}), 201)
	wantProblem(t, e.do(t, call{method: "PATCH", path: "/v1/admin/templates/large", principal: admin,
		body: `{"copy_rows":true}`}), 400, sandbox.CodeInvalidInput, "copy_rows")
	r := e.do(t, call{method: "PATCH", path: "/v1/admin/templates/large", principal: admin, body: `{"description":"no rows"}`})
	wantStatus(t, r, 200)
	if up := decode[apiwire.Template](t, r); up.CopyRows || up.Description != "no rows" {
		t.Errorf("updated: %+v", up)
	}
}
