package api_test

import (
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// An extension past the maximum lifetime is capped, not refused (docs/api.md), and the answer
// says the real new expiry and by how much it really moved; once at the cap, extending is a
// conflict that changes nothing.
func TestExtendCapsAtTheMaximumLifetimeAndSaysByHowMuch(t *testing.T) {
	clock := testenv.NewClock(time.Now().UTC().Truncate(time.Second))
	e := newEnv(t, envOptions{now: clock.Now})
	sb := e.create(t, alice, "alpha") // 2h
	maxExpiry := sb.CreatedAt.Add(sandbox.DefaultLimits().MaxLifetime)

	r := e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/extend", principal: alice, body: `{"by":"30d"}`})
	wantStatus(t, r, 200)
	ext := decode[apiwire.ExtendResponse](t, r)
	if !ext.Capped || !ext.ExpiresAt.Equal(maxExpiry) || !ext.Sandbox.ExpiresAt.Equal(maxExpiry) ||
		!ext.PreviousExpiresAt.Equal(sb.ExpiresAt) || !ext.MaxExpiresAt.Equal(maxExpiry) ||
		ext.ExtendedBySeconds != int64(maxExpiry.Sub(sb.ExpiresAt)/time.Second) || ext.ExtendedBySeconds != 166*3600 {
		t.Fatalf("extend by 30d: %+v (created %s, expired %s)", ext, sb.CreatedAt, sb.ExpiresAt)
	}
	before := e.snapshot(t)
	p := wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/extend", principal: alice, body: `{"by":"30d"}`}),
		409, sandbox.CodeInvalidTransition, "")
	t.Logf("at the cap: %s", p.Detail)
	e.unchanged(t, before)

	// Within the lifetime the extension is what was asked.
	other := e.create(t, alice, "beta")
	r = e.do(t, call{method: "POST", path: "/v1/sandboxes/beta/extend", principal: alice, body: `{"by":"90m"}`})
	wantStatus(t, r, 200)
	ext = decode[apiwire.ExtendResponse](t, r)
	if ext.Capped || ext.ExtendedBySeconds != 90*60 || !ext.PreviousExpiresAt.Equal(other.ExpiresAt) ||
		!ext.ExpiresAt.Equal(other.ExpiresAt.Add(90*time.Minute)) || !ext.MaxExpiresAt.Equal(other.CreatedAt.Add(168*time.Hour)) {
		t.Fatalf("extend by 90m: %+v", ext)
	}
}

// Durations come back the way people type them ("8d", "1m30s"), never as Go's "192h0m0s":
// what the API says about a ttl or an extension reaches the CLI's user as it is.
func TestDurationsInAnswersAreHuman(t *testing.T) {
	e := newEnv(t, envOptions{})
	for body, want := range map[string]string{
		`{"name":"gamma","ttl":"8d"}`:   "ttl 8d exceeds the maximum lifetime 7d",
		`{"name":"gamma","ttl":"7d2h"}`: "ttl 7d2h exceeds the maximum lifetime 7d",
		`{"name":"gamma","ttl":"90s"}`:  "ttl 1m30s is shorter than the minimum 10m",
		`{"name":"gamma","ttl":"0"}`:    "ttl must be positive",
		`{"name":"gamma","ttl":"-1h"}`:  "ttl must be positive",
		`{"name":"gamma","ttl":"soon"}`: `ttl "soon" is not a duration like 90m, 1h30m, 24h, 7d or 7d2h`,
	} {
		p := wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: alice, body: body}), 400, sandbox.CodeInvalidInput, "ttl")
		if p.Detail != want {
			t.Errorf("%s: detail %q, want %q", body, p.Detail, want)
		}
	}
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: alice, body: `{"name":"gamma","ttl":"1d12h"}`})
	wantStatus(t, r, 201)
	if sb := decode[apiwire.Sandbox](t, r); sb.ExpiresAt.Sub(sb.CreatedAt) != 36*time.Hour {
		t.Errorf("ttl 1d12h: created %s, expires %s", sb.CreatedAt, sb.ExpiresAt)
	}
	p := wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/gamma/extend", principal: alice, body: `{"by":"5m"}`}),
		400, sandbox.CodeInvalidInput, "by")
	if p.Detail != "extension 5m is shorter than the minimum 10m" {
		t.Errorf("extend by 5m: detail %q", p.Detail)
	}
	r = e.do(t, call{method: "GET", path: "/v1/sandboxes/gamma/health", principal: alice})
	wantStatus(t, r, 200)
	if h := decode[apiwire.SandboxHealth](t, r); h.Checks[0].Name != "status" || h.Checks[0].Detail != "running, 1d12h left" {
		t.Errorf("the status check says the time left rounded, in days and hours: %+v", h.Checks[0])
	}
}
