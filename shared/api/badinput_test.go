package api_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// validCall is a request each route accepts, as a principal allowed to make it; bad-input
// cases start from it and break one thing.
func validCall(pattern string) call {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "{name}", "alpha")
	path = strings.ReplaceAll(path, "{guild_id}", guild1)
	c := call{method: method, path: path, principal: alice}
	switch pattern {
	case "POST /v1/sandboxes":
		c.body = `{"name":"fresh"}`
	case "POST /v1/sandboxes/{name}/extend":
		c.body = `{"by":"1h"}`
	case "POST /v1/sandboxes/{name}/events/read", "POST /v1/sandboxes/{name}/events/claim":
		c.body = `{"consumer":"c1"}`
	case "POST /v1/sandboxes/{name}/events/ack":
		c.body = `{"ids":["1-0"]}`
	case "POST /v1/admin/cleanup", "GET /v1/admin/orphans":
		c.principal = admin
	case "POST /v1/admin/templates":
		c.principal, c.body = admin, `{"name":"fresh-tmpl","source_schema":"sandbox_template"}`
	case "PATCH /v1/admin/templates/{template}":
		c.principal, c.path, c.body = admin, "/v1/admin/templates/"+badInputTemplate, `{"description":"changed"}`
	case "DELETE /v1/admin/templates/{template}":
		c.principal, c.path = admin, "/v1/admin/templates/"+badInputTemplate
	case "PUT /v1/admin/test-guilds/{guild_id}":
		c.principal, c.body = admin, `{"note":"QA"}`
	case "DELETE /v1/admin/test-guilds/{guild_id}", "GET /v1/admin/protected-guilds", "DELETE /v1/admin/protected-guilds/{guild_id}":
		c.principal = admin
	case "PUT /v1/admin/protected-guilds/{guild_id}":
		c.principal, c.body = admin, `{"reason":"production"}`
	}
	return c
}

// badInputTemplate is the registered template the bad-input cases of the admin template
// routes address.
const badInputTemplate = "tmpl-alpha"

type badCase struct {
	name   string
	call   call
	status int
	field  string
}

// genericBadInput breaks, for every route, what every route must refuse.
func genericBadInput(patterns []string) []badCase {
	var out []badCase
	oversized := `{"name":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`
	for _, p := range patterns {
		c := validCall(p)
		with := func(mod func(*call)) call { cc := c; mod(&cc); return cc }
		out = append(out,
			badCase{p + ": malformed JSON", with(func(c *call) { c.body = `{"name":` }), 400, "body"},
			badCase{p + ": invalid JSON", with(func(c *call) { c.body = `{"name" "x"}` }), 400, "body"},
			badCase{p + ": oversized body", with(func(c *call) { c.body = oversized }), 413, "body"},
			badCase{p + ": unknown field", with(func(c *call) { c.body = `{"bogus":true}` }), 400, "bogus"},
			badCase{p + ": trailing data", with(func(c *call) { c.body = `{} {}` }), 400, "body"},
			badCase{p + ": not an object", with(func(c *call) { c.body = `["x"]` }), 400, "body"},
			badCase{p + ": not JSON media type", with(func(c *call) { c.body = `{}`; c.contentType = "text/plain" }), 415, "body"},
			badCase{p + ": unknown query parameter", with(func(c *call) { c.query = "bogus=1" }), 400, "bogus"},
			// Strings encoding/json would take as something else than was sent: refused before
			// any field is looked at (unknown fields included), naming the object of the key.
			badCase{p + ": NUL in a key", with(func(c *call) { c.body = `{"bogus\u0000":1}` }), 400, "body"},
			badCase{p + ": lone surrogate in a key", with(func(c *call) { c.body = `{"\ud800":1}` }), 400, "body"},
			badCase{p + ": invalid UTF-8 in a key", with(func(c *call) { c.body = "{\"\xff\":1}"; c.base64 = true }), 400, "body"},
		)
		// A field given twice, whatever its value: the last one would win.
		if dup, field := duplicated(c.body); dup != "" {
			out = append(out, badCase{p + ": duplicate key", with(func(c *call) { c.body = dup }), 400, field})
		}
		if strings.Contains(p, "{name}") {
			out = append(out,
				badCase{p + ": invalid name", with(func(c *call) { c.path = strings.Replace(c.path, "/alpha", "/Bad_Name", 1) }), 400, "name"},
				badCase{p + ": name too long", with(func(c *call) { c.path = strings.Replace(c.path, "/alpha", "/"+strings.Repeat("a", 33), 1) }), 400, "name"},
			)
		}
		if strings.Contains(p, "{template}") {
			out = append(out,
				badCase{p + ": invalid template name", with(func(c *call) { c.path = strings.Replace(c.path, "/"+badInputTemplate, "/Bad_Tmpl", 1) }), 400, "template"},
				badCase{p + ": template name too long", with(func(c *call) {
					c.path = strings.Replace(c.path, "/"+badInputTemplate, "/"+strings.Repeat("t", 33), 1)
				}), 400, "template"},
				badCase{p + ": the default template", with(func(c *call) { c.path = strings.Replace(c.path, "/"+badInputTemplate, "/default", 1) }), 400, "template"},
			)
		}
		if strings.Contains(p, "{guild_id}") {
			out = append(out,
				badCase{p + ": guild id too short", with(func(c *call) { c.path = strings.Replace(c.path, guild1, "12345", 1) }), 400, "guild_id"},
				badCase{p + ": guild id overflows", with(func(c *call) { c.path = strings.Replace(c.path, guild1, "99999999999999999999", 1) }), 400, "guild_id"},
				badCase{p + ": guild id not digits", with(func(c *call) { c.path = strings.Replace(c.path, guild1, "8035111022467891x", 1) }), 400, "guild_id"},
			)
		}
	}
	return out
}

// duplicated repeats the first member of a valid body: {"by":"1h","by":"1h"}.
func duplicated(body string) (string, string) {
	inner, ok := strings.CutPrefix(body, "{")
	if !ok || inner == "}" || inner == "" {
		return "", ""
	}
	inner = strings.TrimSuffix(inner, "}")
	member, _, _ := strings.Cut(inner, ",")
	field, _, _ := strings.Cut(strings.Trim(member, `"`), `"`)
	return "{" + inner + "," + member + "}", field
}

func specificBadInput() []badCase {
	create := func(body string) call {
		return call{method: "POST", path: "/v1/sandboxes", principal: alice, body: body}
	}
	extend := func(body string) call {
		return call{method: "POST", path: "/v1/sandboxes/alpha/extend", principal: alice, body: body}
	}
	events := func(query string) call {
		return call{method: "GET", path: "/v1/sandboxes/alpha/events", principal: alice, query: query}
	}
	list := func(query string) call {
		return call{method: "GET", path: "/v1/sandboxes", principal: admin, query: query}
	}
	manyKeys := make([]string, 33)
	for i := range manyKeys {
		manyKeys[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	manyGuilds := make([]string, 26)
	for i := range manyGuilds {
		manyGuilds[i] = fmt.Sprintf(`"%d"`, 80351110224670000+i)
	}
	return []badCase{
		{"create: empty body", create(""), 400, "body"},
		{"create: no name", create(`{}`), 400, "name"},
		{"create: invalid name", create(`{"name":"Alpha!"}`), 400, "name"},
		{"create: name too short", create(`{"name":"ab"}`), 400, "name"},
		{"create: name a number", create(`{"name":42}`), 400, "name"},
		{"create: null body", create(`null`), 400, "body"},
		{"create: ttl not a duration", create(`{"name":"fresh","ttl":"forever"}`), 400, "ttl"},
		{"create: ttl a number", create(`{"name":"fresh","ttl":3600}`), 400, "ttl"},
		{"create: ttl too short", create(`{"name":"fresh","ttl":"1m"}`), 400, "ttl"},
		{"create: ttl too long", create(`{"name":"fresh","ttl":"999d"}`), 400, "ttl"},
		{"create: ttl negative", create(`{"name":"fresh","ttl":"-1h"}`), 400, "ttl"},
		{"create: guild not a snowflake", create(`{"name":"fresh","guilds":["abc"]}`), 400, "guilds"},
		{"create: guild a number", create(`{"name":"fresh","guilds":[80351110224678913]}`), 400, "guilds"},
		{"create: guilds not an array", create(`{"name":"fresh","guilds":"` + guild2 + `"}`), 400, "guilds"},
		{"create: too many guilds", create(`{"name":"fresh","guilds":[` + strings.Join(manyGuilds, ",") + `]}`), 400, "guilds"},
		{"create: too many metadata keys", create(`{"name":"fresh","metadata":{` + strings.Join(manyKeys, ",") + `}}`), 400, "metadata"},
		{"create: empty metadata key", create(`{"name":"fresh","metadata":{"":"x"}}`), 400, "metadata"},
		{"create: metadata value too long", create(`{"name":"fresh","metadata":{"k":"` + strings.Repeat("v", 300) + `"}}`), 400, "metadata"},
		{"create: metadata not strings", create(`{"name":"fresh","metadata":{"k":1}}`), 400, "metadata"},
		// Once a 500 (jsonb refuses NUL: SQLSTATE 22P05), or stored otherwise than sent.
		{"create: NUL in a metadata value", create(`{"name":"fresh","metadata":{"k":"a\u0000b"}}`), 400, "metadata.k"},
		{"create: invalid UTF-8 in a metadata value", call{method: "POST", path: "/v1/sandboxes", principal: alice,
			body: "{\"name\":\"fresh\",\"metadata\":{\"k\":\"a\xffb\"}}", base64: true}, 400, "metadata.k"},
		{"create: lone surrogate in a metadata value", create(`{"name":"fresh","metadata":{"k":"\ud800"}}`), 400, "metadata.k"},
		{"create: lone surrogate in a metadata key", create(`{"name":"fresh","metadata":{"\udfff":"v"}}`), 400, "metadata"},
		{"create: duplicate metadata key", create(`{"name":"fresh","metadata":{"k":"a","k":"b"}}`), 400, "metadata.k"},
		{"create: duplicate name in another case", create(`{"name":"fresh","Name":"other"}`), 400, "Name"},
		{"create: NUL in a guild", create(`{"name":"fresh","guilds":["8035111022467891\u00002"]}`), 400, "guilds[0]"},
		{"extend: by missing", extend(`{}`), 400, "by"},
		{"extend: empty body", extend(``), 400, "by"},
		{"extend: by not a duration", extend(`{"by":"soon"}`), 400, "by"},
		{"extend: by negative", extend(`{"by":"-1h"}`), 400, "by"},
		{"extend: by too short", extend(`{"by":"1m"}`), 400, "by"},
		{"extend: by overflows", extend(`{"by":"9999999999h"}`), 400, "by"},
		{"extend: NUL in by", extend(`{"by":"1h\u0000"}`), 400, "by"},
		{"list: limit zero", list("limit=0"), 400, "limit"},
		{"list: limit too big", list("limit=201"), 400, "limit"},
		{"list: limit not a number", list("limit=ten"), 400, "limit"},
		{"list: limit twice", list("limit=1&limit=2"), 400, "limit"},
		{"list: unknown status", list("status=sleeping"), 400, "status"},
		{"list: forged cursor", list("cursor=bm90LWEtY3Vyc29y"), 400, "cursor"},
		// A well-formed position (what cursors were before they were signed): accepted once.
		{"list: forged well-formed cursor", list("cursor=" + base64.RawURLEncoding.EncodeToString(
			[]byte(`{"c":"2026-01-20T10:00:00Z","i":"k3m9x2p7q4w8e1r5"}`))), 400, "cursor"},
		{"list: include_destroyed not a bool", list("include_destroyed=maybe"), 400, "include_destroyed"},
		{"list: all not a bool", list("all=yes"), 400, "all"},
		{"list: all with owner", list("all=true&owner=" + bob), 400, "all"},
		{"list: malformed query", list("limit=%zz"), 400, "query"},
		{"events: limit zero", events("limit=0"), 400, "limit"},
		{"events: limit above the maximum", events("limit=1001"), 400, "limit"},
		{"events: limit not a number", events("limit=all"), 400, "limit"},
		{"events: limit twice", events("limit=1&limit=2"), 400, "limit"},
		{"events: after not an id", events("after=yesterday"), 400, "after"},
		{"events: after without its sequence", events("after=1718000000000"), 400, "after"},
		{"events: after with a sign", events("after=%2B1-0"), 400, "after"},
		{"events: after with a negative sequence", events("after=1--1"), 400, "after"},
		{"events: after past 64 bits", events("after=18446744073709551616-0"), 400, "after"},
		{"events: after a range start", events("after=-"), 400, "after"},
		{"events: after exclusive syntax", events("after=(1-0"), 400, "after"},
		{"events: after and since", events("after=1-0&since=1h"), 400, "since"},
		{"events: since not a duration", events("since=recently"), 400, "since"},
		{"events: since negative", events("since=-1h"), 400, "since"},
		{"events: since zero", events("since=0s"), 400, "since"},
		{"events: since an id", events("since=1718000000000-0"), 400, "since"},
		{"events: include_payload not a bool", events("include_payload=yes"), 400, "include_payload"},
		{"events: unknown parameter", events("follow=true"), 400, "follow"},
		{"routes: guild id not a snowflake", call{method: "GET", path: "/v1/routes/abc", principal: bob}, 400, "guild_id"},
		{"admin cleanup: remove_orphans twice", call{method: "POST", path: "/v1/admin/cleanup", principal: admin,
			body: `{"remove_orphans":true,"remove_orphans":false}`}, 400, "remove_orphans"},
		{"admin cleanup: remove_orphans in another case", call{method: "POST", path: "/v1/admin/cleanup", principal: admin,
			body: `{"remove_orphans":false,"Remove_Orphans":true}`}, 400, "Remove_Orphans"},
		{"admin cleanup: remove_orphans not a bool", call{method: "POST", path: "/v1/admin/cleanup", principal: admin, body: `{"remove_orphans":"yes"}`}, 400, "remove_orphans"},
		{"base64 body that is not base64", call{method: "POST", path: "/v1/sandboxes", principal: alice, body: "%%%"}, 400, "body"},
		{"create: template not a name", create(`{"name":"fresh","template":"Bad Tmpl"}`), 400, "template"},
		{"create: unknown template", create(`{"name":"fresh","template":"no-such-tmpl"}`), 400, "template"},
		{"create: template a number", create(`{"name":"fresh","template":7}`), 400, "template"},
	}
}

// adminBadInput breaks the fields of the admin routes that take a body (templates, test
// guilds, protected guilds), as an admin.
func adminBadInput() []badCase {
	add := func(body string) call {
		return call{method: "POST", path: "/v1/admin/templates", principal: admin, body: body}
	}
	update := func(body string) call {
		return call{method: "PATCH", path: "/v1/admin/templates/" + badInputTemplate, principal: admin, body: body}
	}
	registerGuild := func(body string) call {
		return call{method: "PUT", path: "/v1/admin/test-guilds/" + guild2, principal: admin, body: body}
	}
	protectGuild := func(body string) call {
		return call{method: "PUT", path: "/v1/admin/protected-guilds/" + guild2, principal: admin, body: body}
	}
	return []badCase{
		{"add template: empty body", add(``), 400, "name"},
		{"add template: no name", add(`{"source_schema":"sandbox_template"}`), 400, "name"},
		{"add template: invalid name", add(`{"name":"Seeded!","source_schema":"sandbox_template"}`), 400, "name"},
		{"add template: the reserved name", add(`{"name":"default","source_schema":"sandbox_template"}`), 400, "name"},
		{"add template: no source schema", add(`{"name":"fresh-tmpl"}`), 400, "source_schema"},
		{"add template: a sandbox's schema", add(`{"name":"fresh-tmpl","source_schema":"sb_k3m9x2p7q4w8e1r5"}`), 400, "source_schema"},
		{"add template: the control plane's schema", add(`{"name":"fresh-tmpl","source_schema":"sandbox_control"}`), 400, "source_schema"},
		{"add template: PostgreSQL's schema", add(`{"name":"fresh-tmpl","source_schema":"pg_catalog"}`), 400, "source_schema"},
		{"add template: a schema that does not exist", add(`{"name":"fresh-tmpl","source_schema":"no_such_schema"}`), 400, "source_schema"},
		{"add template: schema not an identifier", add(`{"name":"fresh-tmpl","source_schema":"a\"; DROP SCHEMA x; --"}`), 400, "source_schema"},
		{"add template: copy_rows not a bool", add(`{"name":"fresh-tmpl","source_schema":"sandbox_template","copy_rows":"yes"}`), 400, "copy_rows"},
		{"add template: default_ttl not a duration", add(`{"name":"fresh-tmpl","source_schema":"sandbox_template","default_ttl":"forever"}`), 400, "default_ttl"},
		{"add template: default_ttl too long", add(`{"name":"fresh-tmpl","source_schema":"sandbox_template","default_ttl":"999d"}`), 400, "default_ttl"},
		{"add template: description too long", add(`{"name":"fresh-tmpl","source_schema":"sandbox_template","description":"` + strings.Repeat("d", 257) + `"}`), 400, "description"},
		{"add template: NUL in the description", add(`{"name":"fresh-tmpl","source_schema":"sandbox_template","description":"a\u0000b"}`), 400, "description"},
		{"update template: empty body", update(``), 400, "body"},
		{"update template: nothing to change", update(`{}`), 400, "body"},
		{"update template: source schema of a sandbox", update(`{"source_schema":"sb_k3m9x2p7q4w8e1r5"}`), 400, "source_schema"},
		{"update template: a schema that does not exist", update(`{"source_schema":"no_such_schema"}`), 400, "source_schema"},
		{"update template: default_ttl too short", update(`{"default_ttl":"1m"}`), 400, "default_ttl"},
		{"update template: copy_rows null", update(`{"copy_rows":null}`), 400, "body"},
		{"update template: description not printable", update(`{"description":"bell\u0007"}`), 400, "description"},
		{"register test guild: note too long", registerGuild(`{"note":"` + strings.Repeat("n", 201) + `"}`), 400, "note"},
		{"register test guild: control character in the note", registerGuild(`{"note":"bell\u0007"}`), 400, "note"},
		{"register test guild: note a number", registerGuild(`{"note":7}`), 400, "note"},
		{"register test guild: unknown field", registerGuild(`{"note":"QA","owner":"bob"}`), 400, "owner"},
		{"protect guild: reason too long", protectGuild(`{"reason":"` + strings.Repeat("r", 201) + `"}`), 400, "reason"},
		{"protect guild: control character in the reason", protectGuild(`{"reason":"esc\u001b[2J"}`), 400, "reason"},
		{"protect guild: reason a number", protectGuild(`{"reason":7}`), 400, "reason"},
		{"protect guild: unknown field", protectGuild(`{"reason":"production","note":"x"}`), 400, "note"},
		{"templates: include_retired not a bool", call{method: "GET", path: "/v1/templates", principal: admin, query: "include_retired=maybe"}, 400, "include_retired"},
	}
}

func TestBadInputIsRefusedWithoutChange(t *testing.T) {
	e := newEnv(t, envOptions{cleanup: func(e *env) api.CleanupAdmin { return catalogCleanup{e: e} }})
	e.create(t, alice, "alpha", guild1)
	registerTemplate(t, e, badInputTemplate, "sandbox_template", false)
	cases := append(genericBadInput(e.handler.Routes()), specificBadInput()...)
	cases = append(cases, adminBadInput()...)
	for _, bc := range cases {
		t.Run(bc.name, func(t *testing.T) {
			templatesBefore := templatesState(t, e)
			defer func() {
				if after := templatesState(t, e); after != templatesBefore {
					t.Errorf("a refused request changed the template registry:\nbefore: %s\nafter:  %s", templatesBefore, after)
				}
			}()
			before := e.snapshot(t)
			var r reply
			if bc.name == "base64 body that is not base64" {
				ev := event(t, bc.call)
				r = e.invokeRaw(t, []byte(strings.Replace(string(ev), `"isBase64Encoded":false`, `"isBase64Encoded":true`, 1)))
			} else {
				r = e.do(t, bc.call)
			}
			p := wantProblem(t, r, bc.status, sandbox.CodeInvalidInput, bc.field)
			if len(p.Detail) > 300 {
				t.Errorf("detail is not a clear message (%d bytes): %.300s", len(p.Detail), p.Detail)
			}
			e.unchanged(t, before)
		})
	}
}
