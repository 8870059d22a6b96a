package api_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

// TestUsageCountsRoutedEvents: the usage of get and list counts exactly the events the real
// router routed (two batches), with the stream's length, the group's pending entries and the
// schema's size; a running sandbox is idle once SANDBOX_IDLE_AFTER (6h) passed without an
// event, counted from its last event or its creation; a destroyed one has no usage; and no
// sandbox's id reaches a metric.
func TestUsageCountsRoutedEvents(t *testing.T) {
	var skew atomic.Int64
	e := newEnv(t, envOptions{now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	busy := e.create(t, alice, "usage-busy", guild1)
	quiet := e.create(t, alice, "usage-quiet")
	batch := func(first, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = dispatch("MESSAGE_CREATE", guild1, first+i, "usage")
		}
		return out
	}
	routeEvents(t, e, 1, time.Now(), batch(1, 7)...)
	routeEvents(t, e, 8, time.Now(), batch(8, 4)...)
	if got := e.readGroup(t, busy.Stream, "worker-1"); len(got) != 11 {
		t.Fatalf("the worker read %d entries", len(got))
	}

	r := e.do(t, call{method: "GET", path: "/v1/sandboxes/usage-busy", principal: alice})
	wantStatus(t, r, 200)
	u := decode[apiwire.Sandbox](t, r).Usage
	if u == nil || u.EventsRouted != 11 || u.StreamLength != 11 || u.StreamPending != 11 || u.LastEventAt == nil ||
		u.SchemaBytes <= 0 || u.Keys != nil || u.Idle || u.IdleAfterSeconds != 6*3600 || len(u.Unavailable) != 0 {
		t.Fatalf("usage after 11 routed events: %+v", u)
	}
	if d := time.Since(*u.LastEventAt); d < 0 || d > time.Minute {
		t.Errorf("last event at %s", u.LastEventAt)
	}

	// Seven hours later (extended, so still running), both are idle: the busy one since its
	// last event, the quiet one since its creation. An expired sandbox is never idle: it
	// receives nothing, and the cleanup takes it.
	for _, name := range []string{busy.Name, quiet.Name} {
		wantStatus(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/" + name + "/extend", body: `{"by":"10h"}`, principal: alice}), 200)
	}
	skew.Store(int64(7 * time.Hour))
	r = e.do(t, call{method: "GET", path: "/v1/sandboxes", principal: alice})
	wantStatus(t, r, 200)
	page := decode[apiwire.ListResponse](t, r)
	seen := 0
	for _, sb := range page.Sandboxes {
		if sb.Name != busy.Name && sb.Name != quiet.Name {
			continue
		}
		seen++
		if sb.Usage == nil || !sb.Usage.Idle || sb.Usage.IdleSeconds < 7*3600-60 {
			t.Errorf("%s seven hours on: %+v", sb.Name, sb.Usage)
		}
	}
	if seen != 2 {
		t.Fatalf("listed %d of the two sandboxes", seen)
	}
	skew.Store(0)

	wantStatus(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/usage-quiet", principal: alice}), 202)
	r = e.do(t, call{method: "GET", path: "/v1/sandboxes/usage-quiet", principal: alice})
	wantStatus(t, r, 200)
	if sb := decode[apiwire.Sandbox](t, r); sb.Status == "destroyed" && sb.Usage != nil {
		t.Errorf("a destroyed sandbox has usage %+v", sb.Usage)
	}
	for _, id := range []string{busy.ID, quiet.ID} {
		if strings.Contains(e.emf.String(), id) {
			t.Errorf("sandbox %s reached a metric: usage is never a metric dimension", id)
		}
	}
}
