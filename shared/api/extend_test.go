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
