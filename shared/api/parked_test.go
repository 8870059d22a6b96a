package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Only a parked guild's former owner (or an admin) may release it to production (POST
// /v1/guilds/{guild_id}/release answers anyone else 403). Mapping it ends the parking too, so
// it is held to the same rule: a parked guild maps only to a sandbox of the owner of the
// sandbox that parked it, or by an admin. Were another owner allowed to map it to a sandbox of
// their own, they would take the guild's events and, unmapping it, send them to production:
// the owner check on release would protect nothing. Another owner is refused 403 forbidden,
// at creation and when adding the guild, and nothing changes.
func TestAnotherOwnerCannotEndAParking(t *testing.T) {
	const (
		g3   = "80351110224678920" // not the package's guild3, which is protected
		g4   = "80351110224678921"
		g5   = "80351110224678922"
		free = "80351110224678923"
	)
	e := newEnv(t, envOptions{})
	testenv.RegisterTestGuilds(t, e.direct, g3, g4, g5, free)
	e.create(t, alice, "alice-box", guild1, guild2, g3, g4, g5)
	for _, g := range []string{guild1, guild2, g3, g4, g5} {
		parkGuild(t, e, "alice-box", g)
	}
	e.create(t, bob, "bob-box")

	before := e.snapshot(t)
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/guilds/" + guild1 + "/release", principal: bob}), 403, "forbidden", "")
	e.unchanged(t, before)

	// Creating a sandbox with the parked guild (and a free one): refused, no sandbox, no mapping.
	body, _ := json.Marshal(apiwire.CreateRequest{Name: "bob-other", TTL: "2h", Guilds: []string{free, guild1}})
	p := wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes", body: string(body), principal: bob}), 403, "forbidden", "")
	for _, want := range []string{guild1, `sandbox "alice-box"`, alice, "another owner", "admin", "release"} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("the refusal %q does not say %q", p.Detail, want)
		}
	}
	e.unchanged(t, before)
	wantProblem(t, e.do(t, call{method: "GET", path: "/v1/sandboxes/bob-other", principal: bob}), 404, "not_found", "")

	// Adding it to a sandbox of one's own: refused, nothing changed.
	wantProblem(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/bob-box/guilds/" + guild1, principal: bob}), 403, "forbidden", "")
	e.unchanged(t, before)

	parked := decode[apiwire.ParkedGuilds](t, e.do(t, call{method: "GET", path: "/v1/guilds/parked", principal: alice}))
	route := decode[apiwire.RouteExplanation](t, e.do(t, call{method: "GET", path: "/v1/routes/" + guild1, principal: alice}))
	if len(parked.Guilds) != 5 || route.Destination != sandbox.DestinationParked || route.Mapping != nil {
		t.Fatalf("after bob's refused mappings alice has %d parked guilds and guild %s's events go to %s (mapping %+v)",
			len(parked.Guilds), guild1, route.Destination, route.Mapping)
	}

	// The former owner maps them again, at creation and by adding one, and so does a developer
	// of hers (the sandbox's owner is what counts, not the caller).
	e.create(t, alice, "alice-next", guild1)
	wantStatus(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/alice-next/guilds/" + guild2, principal: alice}), 201)
	e.shareWith(t, alice, "alice-next", dave, "developer")
	wantStatus(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/alice-next/guilds/" + g3, principal: dave}), 201)
	// An admin may map them to any sandbox: one of the admin's own, or bob's.
	e.create(t, admin, "admin-box", g4)
	wantStatus(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/bob-box/guilds/" + g5, principal: admin}), 201)

	parked = decode[apiwire.ParkedGuilds](t, e.do(t, call{method: "GET", path: "/v1/guilds/parked", principal: alice}))
	if len(parked.Guilds) != 0 {
		t.Fatalf("parked guilds left after their mappings: %+v", parked.Guilds)
	}
	for g, box := range map[string]string{guild1: "alice-next", guild2: "alice-next", g3: "alice-next", g4: "admin-box", g5: "bob-box"} {
		route := decode[apiwire.RouteExplanation](t, e.do(t, call{method: "GET", path: "/v1/routes/" + g, principal: admin}))
		if route.Mapping == nil || route.Mapping.SandboxName != box || route.Parked != nil || route.Destination != sandbox.DestinationSandbox {
			t.Fatalf("route of %s: %+v, want mapped to %s", g, route, box)
		}
	}
}
