package api_test

import (
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// A developer maps only the test guilds an admin registered: a production guild nobody
// registered is refused, at creation and when added, and only an admin changes the registry.
func TestOnlyAnAdminsTestGuildsCanBeMapped(t *testing.T) {
	e := newEnv(t, envOptions{})
	const production = "80351110224679001"

	r := e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: alice, body: `{"name":"taker","guilds":["` + production + `"]}`})
	p := wantProblem(t, r, 409, sandbox.CodeGuildNotRegistered, "")
	if p.Title != "Guild not registered" {
		t.Errorf("title %q", p.Title)
	}
	e.create(t, alice, "taker", guild1)
	before := e.snapshot(t)
	wantProblem(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/taker/guilds/" + production, principal: alice}), 409, sandbox.CodeGuildNotRegistered, "")
	// The registry is the admins': a developer cannot register the guild it wants.
	wantProblem(t, e.do(t, call{method: "PUT", path: "/v1/admin/test-guilds/" + production, principal: alice}), 403, sandbox.CodeForbidden, "")
	wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/admin/test-guilds/" + guild1, principal: alice}), 403, sandbox.CodeForbidden, "")
	// Protected (here by configuration) is production's: never registered.
	wantProblem(t, e.do(t, call{method: "PUT", path: "/v1/admin/test-guilds/" + guild3, principal: admin}), 409, sandbox.CodeGuildProtected, "")
	e.unchanged(t, before)

	r = e.do(t, call{method: "PUT", path: "/v1/admin/test-guilds/" + production, principal: admin, body: `{"note":"QA guild"}`})
	wantStatus(t, r, 201)
	if g := decode[apiwire.TestGuild](t, r); g.GuildID != production || g.Note != "QA guild" || g.RegisteredBy != admin || g.State != "free" {
		t.Fatalf("registered %+v", g)
	}
	wantStatus(t, e.do(t, call{method: "PUT", path: "/v1/admin/test-guilds/" + production, principal: admin}), 200)
	wantStatus(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/taker/guilds/" + production, principal: alice}), 201)

	r = e.do(t, call{method: "GET", path: "/v1/test-guilds", principal: bob})
	wantStatus(t, r, 200)
	states := map[string]string{}
	for _, g := range decode[apiwire.TestGuilds](t, r).Guilds {
		states[g.GuildID] = g.State
	}
	if len(states) != 3 || states[guild1] != "mapped" || states[guild2] != "free" || states[production] != "mapped" {
		t.Fatalf("test guilds %v; want guild1 and %s mapped, guild2 free", states, production)
	}

	wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/admin/test-guilds/" + production, principal: admin}), 409, sandbox.CodeGuildAlreadyMapped, "")
	wantStatus(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/taker/guilds/" + production, principal: alice}), 200)
	r = e.do(t, call{method: "DELETE", path: "/v1/admin/test-guilds/" + production, principal: admin})
	wantStatus(t, r, 200)
	if g := decode[apiwire.TestGuild](t, r); g.GuildID != production || g.Note != "" {
		t.Fatalf("unregistered %+v; want the registration as it was (the second PUT emptied the note)", g)
	}
	wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/admin/test-guilds/" + production, principal: admin}), 404, sandbox.CodeNotFound, "")
	wantProblem(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/taker/guilds/" + production, principal: alice}), 409, sandbox.CodeGuildNotRegistered, "")
}

// An admin protects a guild at run time and takes the protection away again; nobody else
// may, and a configured protection stays whatever an admin asks.
func TestAnAdminProtectsAGuildAtRunTime(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.create(t, alice, "holder", guild1)
	before := e.snapshot(t)
	wantProblem(t, e.do(t, call{method: "PUT", path: "/v1/admin/protected-guilds/" + guild2, principal: alice}), 403, sandbox.CodeForbidden, "")
	wantProblem(t, e.do(t, call{method: "GET", path: "/v1/admin/protected-guilds", principal: alice}), 403, sandbox.CodeForbidden, "")
	wantProblem(t, e.do(t, call{method: "PUT", path: "/v1/admin/protected-guilds/" + guild1, principal: admin}), 409, sandbox.CodeGuildAlreadyMapped, "")
	wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/admin/protected-guilds/" + guild3, principal: admin}), 409, sandbox.CodeGuildProtected, "")
	wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/admin/protected-guilds/" + guild2, principal: admin}), 404, sandbox.CodeNotFound, "")
	e.unchanged(t, before)

	r := e.do(t, call{method: "PUT", path: "/v1/admin/protected-guilds/" + guild2, principal: admin, body: `{"reason":"the support guild"}`})
	wantStatus(t, r, 201)
	if g := decode[apiwire.ProtectedGuild](t, r); g.GuildID != guild2 || g.Reason != "the support guild" || g.ProtectedBy != admin || g.Configured {
		t.Fatalf("protected %+v", g)
	}
	wantStatus(t, e.do(t, call{method: "PUT", path: "/v1/admin/protected-guilds/" + guild2, principal: admin}), 200)
	wantProblem(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/holder/guilds/" + guild2, principal: alice}), 409, sandbox.CodeGuildProtected, "")
	r = e.do(t, call{method: "GET", path: "/v1/routes/" + guild2, principal: bob})
	if rt := decode[apiwire.RouteExplanation](t, r); rt.Destination != "production" || !rt.Protected {
		t.Fatalf("route of the protected guild %+v", rt)
	}
	r = e.do(t, call{method: "GET", path: "/v1/admin/protected-guilds", principal: admin})
	wantStatus(t, r, 200)
	if list := decode[apiwire.ProtectedGuilds](t, r).Guilds; len(list) != 2 || list[0].GuildID != guild2 || list[0].Configured ||
		list[1].GuildID != guild3 || !list[1].Configured || !list[1].ProtectedAt.IsZero() {
		t.Fatalf("protected guilds %+v; want guild2 recorded, guild3 configured", list)
	}
	// Protected is not a test guild: gone from the registry.
	for _, g := range decode[apiwire.TestGuilds](t, e.do(t, call{method: "GET", path: "/v1/test-guilds", principal: bob})).Guilds {
		if g.GuildID == guild2 {
			t.Fatalf("the protected guild is still a test guild: %+v", g)
		}
	}

	r = e.do(t, call{method: "DELETE", path: "/v1/admin/protected-guilds/" + guild2, principal: admin})
	wantStatus(t, r, 200)
	if g := decode[apiwire.ProtectedGuild](t, r); g.GuildID != guild2 || g.Reason != "" {
		t.Fatalf("unprotected %+v; want the protection as it was (the second PUT emptied the reason)", g)
	}
	if rt := decode[apiwire.RouteExplanation](t, e.do(t, call{method: "GET", path: "/v1/routes/" + guild2, principal: bob})); rt.Destination != "production" || rt.Protected {
		t.Fatalf("route of the unprotected guild %+v", rt)
	}
	wantProblem(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/holder/guilds/" + guild2, principal: alice}), 409, sandbox.CodeGuildNotRegistered, "")
}
