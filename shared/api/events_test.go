package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/internal/alarmtest"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// routeEvents puts gateway payloads through the real router, as the ingress queue's
// messages msg-<first>, msg-<first+1>, ..., accepted by the queue at sentAt; every one must
// land in a sandbox stream.
func routeEvents(t *testing.T, e *env, first int, sentAt time.Time, bodies ...string) {
	t.Helper()
	r, err := routing.New(routing.Options{
		Store: e.manager, Cache: e.cache, Redis: e.rdb,
		Production: testenv.NoProduction{T: t}, ProductionQueueURL: "http://127.0.0.1:1/000000000000/production",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]routing.Message, len(bodies))
	for i, b := range bodies {
		batch[i] = routing.Message{ID: fmt.Sprintf("msg-%d", first+i), Body: b, SentAt: sentAt}
	}
	res := r.Route(context.Background(), nil, batch)
	if len(res.Failed) > 0 || res.Routed[routing.DestinationSandbox] != len(bodies) {
		t.Fatalf("routing %d events: %+v", len(bodies), res)
	}
}

func dispatch(typ, guild string, seq int, content string) string {
	return fmt.Sprintf(`{"op":0,"t":%q,"s":%d,"d":{"guild_id":%q,"channel_id":"1300000000000000101","content":%q}}`, typ, seq, guild, content)
}

// events reads a page as principal with the query.
func (e *env) events(t *testing.T, principal, name, query string) apiwire.EventsPage {
	t.Helper()
	r := e.do(t, call{method: "GET", path: "/v1/sandboxes/" + name + "/events", query: query, principal: principal})
	wantStatus(t, r, 200)
	if cc := r.headers["Cache-Control"]; cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	return decode[apiwire.EventsPage](t, r)
}

func types(p apiwire.EventsPage) string {
	out := make([]string, len(p.Events))
	for i, ev := range p.Events {
		out[i] = ev.Type
	}
	return strings.Join(out, " ")
}

// TestEventsRouteReadsWhatTheRouterAppended routes events of two sandboxes' guilds through the
// real router and reads each sandbox's page: its own events only, oldest first, with every
// field of the entry; payloads only when asked for; a follower's positions (next, after) and
// the page bound (limit, more); and the route's own metrics.
func TestEventsRouteReadsWhatTheRouterAppended(t *testing.T) {
	e := newEnv(t, envOptions{})
	alpha := e.create(t, alice, "alpha", guild1)
	e.create(t, bob, "bravo", guild2)
	sentAt := time.Now().Add(-3 * time.Second).Truncate(time.Millisecond)
	bodies := []string{
		dispatch("MESSAGE_CREATE", guild1, 101, "hello"),
		dispatch("MESSAGE_CREATE", guild2, 9001, "bob's"),
		dispatch("MESSAGE_REACTION_ADD", guild1, 102, ""),
		`{"op":0,"t":"GUILD_UPDATE","d":{"id":"` + guild1 + `","name":"test guild"}}`, // no sequence
	}
	before := time.Now().Add(-time.Second)
	routeEvents(t, e, 1, sentAt, bodies...)

	page := e.events(t, alice, "alpha", "")
	if page.Stream != alpha.Stream || page.Status != "running" || page.Length != 3 || page.More || page.Trimmed ||
		types(page) != "MESSAGE_CREATE MESSAGE_REACTION_ADD GUILD_UPDATE" || page.FirstID != page.Events[0].ID || page.Next != page.Events[2].ID {
		t.Fatalf("alpha's page: %+v", page)
	}
	for i, want := range []struct {
		msg  string
		seq  *int64
		body string
	}{{"msg-1", ptr(int64(101)), bodies[0]}, {"msg-3", ptr(int64(102)), bodies[2]}, {"msg-4", nil, bodies[3]}} {
		ev := page.Events[i]
		if ev.GuildID != guild1 || ev.MessageID != want.msg || ev.Size != len(want.body) || ev.Payload != nil || ev.PayloadOmitted ||
			(ev.Seq == nil) != (want.seq == nil) || (ev.Seq != nil && *ev.Seq != *want.seq) ||
			ev.ReceivedAt == nil || !ev.ReceivedAt.Equal(sentAt) || ev.Time.Before(before) || ev.Time.After(time.Now()) ||
			!strings.HasPrefix(ev.ID, strconv.FormatInt(ev.Time.UnixMilli(), 10)+"-") {
			t.Errorf("event %d: %+v, want message %s", i, ev, want.msg)
		}
	}
	bravo := e.events(t, bob, "bravo", "include_payload=true")
	if types(bravo) != "MESSAGE_CREATE" || bravo.Events[0].GuildID != guild2 || string(bravo.Events[0].Payload) != bodies[1] {
		t.Errorf("bravo's page holds bob's event only, with its payload: %+v", bravo)
	}
	// An admin reads anyone's.
	if got := e.events(t, admin, "alpha", "include_payload=1"); string(got.Events[0].Payload) != bodies[0] {
		t.Errorf("the admin's page: %+v", got)
	}

	// Pages of two: a follower goes on from next, and asks again at once while more is set.
	p1 := e.events(t, alice, "alpha", "limit=2")
	if types(p1) != "MESSAGE_CREATE MESSAGE_REACTION_ADD" || !p1.More || p1.Next != p1.Events[1].ID {
		t.Fatalf("first page of two: %+v", p1)
	}
	p2 := e.events(t, alice, "alpha", "limit=2&after="+p1.Next)
	if types(p2) != "GUILD_UPDATE" || p2.More || p2.Next != page.Events[2].ID || p2.Trimmed {
		t.Fatalf("second page: %+v", p2)
	}
	p3 := e.events(t, alice, "alpha", "after="+p2.Next)
	if len(p3.Events) != 0 || p3.More || p3.Next != p2.Next || p3.Length != 3 {
		t.Fatalf("after the last entry: %+v", p3)
	}
	// What arrives later is the follower's next page.
	routeEvents(t, e, 5, sentAt, dispatch("TYPING_START", guild1, 103, ""))
	if p4 := e.events(t, alice, "alpha", "after="+p3.Next); types(p4) != "TYPING_START" || p4.Length != 4 {
		t.Fatalf("the new event: %+v", p4)
	}
	// Leading zeros are the same id.
	if p := e.events(t, alice, "alpha", "after=0"+p1.Next); types(p) != "GUILD_UPDATE TYPING_START" {
		t.Errorf("after with a leading zero: %+v", p)
	}

	e.emf.Reset()
	e.events(t, alice, "alpha", "")
	points, err := alarmtest.ParseEMF([]byte(e.emf.String()))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range points {
		if p.Metric == "ApiRequests" && p.Dimensions["Route"] == "GET /v1/sandboxes/{name}/events" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("ApiRequests{Route=GET /v1/sandboxes/{name}/events} recorded %d times:\n%s", n, e.emf.String())
	}
}

func ptr[T any](v T) *T { return &v }

// xadd appends an entry with the router's fields and a chosen id, as the test's clock
// needs; the router itself lets Redis choose.
func xadd(t *testing.T, rdb redis.UniversalClient, stream, id, typ string) {
	t.Helper()
	err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, ID: id, Values: []string{
		keys.StreamFieldType, typ, keys.StreamFieldPayload, `{"op":0,"t":"` + typ + `","d":{"guild_id":"` + guild1 + `"}}`,
		keys.StreamFieldMessageID, "m-" + id, keys.StreamFieldGuildID, guild1, keys.StreamFieldReceivedAt, "1",
	}}).Err()
	if err != nil {
		t.Fatal(err)
	}
}

// TestEventsSinceAndTrimmed starts pages at now minus a duration, and reports entries trimmed
// away before they could be read: only when entries after the position asked for are gone.
func TestEventsSinceAndTrimmed(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	clock := testenv.NewClock(now)
	e := newEnv(t, envOptions{now: clock.Now})
	sb := e.create(t, alice, "alpha", guild1)
	ms := func(ago time.Duration) string { return strconv.FormatInt(now.Add(-ago).UnixMilli(), 10) }
	xadd(t, e.rdb, sb.Stream, ms(2*time.Hour)+"-0", "OLDEST")
	xadd(t, e.rdb, sb.Stream, ms(20*time.Minute)+"-0", "OLD")
	xadd(t, e.rdb, sb.Stream, ms(10*time.Minute)+"-0", "AT_TEN")
	xadd(t, e.rdb, sb.Stream, ms(10*time.Minute)+"-1", "AT_TEN_TOO")
	xadd(t, e.rdb, sb.Stream, ms(time.Minute)+"-0", "RECENT")

	for query, want := range map[string]string{
		"since=10m":  "AT_TEN AT_TEN_TOO RECENT",
		"since=90s":  "RECENT",
		"since=1d":   "OLDEST OLD AT_TEN AT_TEN_TOO RECENT",
		"since=30s":  "",
		"":           "OLDEST OLD AT_TEN AT_TEN_TOO RECENT",
		"after=0-0":  "OLDEST OLD AT_TEN AT_TEN_TOO RECENT",
		"since=100d": "OLDEST OLD AT_TEN AT_TEN_TOO RECENT",
	} {
		p := e.events(t, alice, "alpha", query)
		if types(p) != want || p.Trimmed || p.Length != 5 {
			t.Errorf("%s: %q (trimmed %v), want %q", query, types(p), p.Trimmed, want)
		}
	}
	// An empty page's next is the position asked for, or the stream's last id when that is
	// later: every later entry comes after it.
	if p := e.events(t, alice, "alpha", "since=30s"); p.Next != strconv.FormatInt(now.Add(-30*time.Second).UnixMilli()-1, 10)+"-18446744073709551615" {
		t.Errorf("next of an empty page since 30s is %s, want the last id before that", p.Next)
	}
	if p := e.events(t, alice, "alpha", "after=1-0&since="); len(p.Events) != 5 {
		t.Errorf("an empty since is no since: %+v", p)
	}
	if p := e.events(t, alice, "alpha", "since=1h&limit=1"); p.Next != ms(20*time.Minute)+"-0" || !p.More {
		t.Errorf("next of a page is its last entry: %+v", p)
	}

	// Trimmed to the two newest: the oldest three are gone.
	if err := e.rdb.XTrimMaxLen(context.Background(), sb.Stream, 2).Err(); err != nil {
		t.Fatal(err)
	}
	for query, want := range map[string]struct {
		types   string
		trimmed bool
	}{
		"":                                   {"AT_TEN_TOO RECENT", true},
		"since=1h":                           {"AT_TEN_TOO RECENT", true},
		"since=10m":                          {"AT_TEN_TOO RECENT", true}, // AT_TEN, at 10m, is gone
		"after=" + ms(20*time.Minute) + "-0": {"AT_TEN_TOO RECENT", true},
		// Redis does not say what was trimmed last: a position that was itself trimmed
		// counts, even with nothing lost after it.
		"after=" + ms(10*time.Minute) + "-0": {"AT_TEN_TOO RECENT", true},
		"after=" + ms(10*time.Minute) + "-1": {"RECENT", false}, // the oldest entry held
		"since=5m":                           {"RECENT", false},
	} {
		p := e.events(t, alice, "alpha", query)
		if types(p) != want.types || p.Trimmed != want.trimmed || p.Length != 2 || p.FirstID != ms(10*time.Minute)+"-1" {
			t.Errorf("%q after trimming: %q trimmed %v first %s, want %q trimmed %v", query, types(p), p.Trimmed, p.FirstID, want.types, want.trimmed)
		}
	}
}

// TestEventsOfAStreamThatIsGoneOrForeign: a sandbox without a stream (deleted by its own user,
// or replaced by another type) answers an empty page, never an error; entries its own user
// wrote, whatever they hold, are answered bounded and as valid JSON.
func TestEventsOfAStreamThatIsGoneOrForeign(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha", guild1)
	ctx := context.Background()

	// Entries a worker wrote: nothing but strings, anything in them.
	err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: sb.Stream, Values: []string{
		keys.StreamFieldType, "\x1b[31mRED" + strings.Repeat("X", 1000), keys.StreamFieldPayload, "not json \x00",
		keys.StreamFieldSeq, "abc", keys.StreamFieldReceivedAt, "99999999999999999",
	}}).Err()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: sb.Stream, Values: []string{"unrelated", "field"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: sb.Stream, ID: provision.MaxStreamID, Values: []string{"type", "LAST"}}).Err(); err != nil {
		t.Fatal(err)
	}
	p := e.events(t, alice, "alpha", "include_payload=true")
	if len(p.Events) != 3 || len(p.Events[0].Type) > 131 || !p.Events[0].PayloadOmitted || p.Events[0].Payload != nil ||
		p.Events[0].Seq != nil || p.Events[0].ReceivedAt != nil || p.Events[0].Size != len("not json \x00") ||
		p.Events[1].Type != "" || p.Events[1].PayloadOmitted != true || !p.Events[2].Time.IsZero() || p.Next != provision.MaxStreamID {
		t.Fatalf("a worker's entries: %+v", p)
	}
	if p := e.events(t, alice, "alpha", "after="+provision.MaxStreamID); len(p.Events) != 0 || p.Next != provision.MaxStreamID {
		t.Errorf("after the greatest id: %+v", p)
	}

	if err := e.rdb.Del(ctx, sb.Stream).Err(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"", "after=1-1", "since=1h"} {
		p := e.events(t, alice, "alpha", q)
		want := "0-0"
		if q == "after=1-1" {
			want = "1-1"
		}
		if len(p.Events) != 0 || p.Length != 0 || p.FirstID != "" || p.Trimmed || p.More || (q != "since=1h" && p.Next != want) {
			t.Errorf("no stream, %q: %+v", q, p)
		}
	}
	if err := e.rdb.Set(ctx, sb.Stream, "a string", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if p := e.events(t, alice, "alpha", ""); len(p.Events) != 0 || p.Length != 0 {
		t.Errorf("a string under the stream's key: %+v", p)
	}
	if !strings.Contains(e.logs.String(), "holds another type") {
		t.Errorf("the replaced stream is not logged:\n%s", e.logs.String())
	}
}

// TestEventsPayloadBudget: a page stops before the payload that would take it past its budget
// (the next page starts there), and a payload larger than the budget alone is left out, so
// that no answer outgrows what Lambda can return.
func TestEventsPayloadBudget(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha", guild1)
	ctx := context.Background()
	big := func(n int) string {
		return `{"op":0,"t":"GUILD_CREATE","d":{"id":"` + guild1 + `","pad":"` + strings.Repeat("x", n) + `"}}`
	}
	for _, size := range []int{1500 << 10, 1500 << 10, 1500 << 10, 5 << 20} {
		if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: sb.Stream, Values: []string{
			keys.StreamFieldType, "GUILD_CREATE", keys.StreamFieldPayload, big(size),
		}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	p1 := e.events(t, alice, "alpha", "include_payload=true")
	if len(p1.Events) != 2 || !p1.More || p1.Events[1].Payload == nil || !json.Valid(p1.Events[1].Payload) {
		t.Fatalf("first page: %d events, more %v", len(p1.Events), p1.More)
	}
	p2 := e.events(t, alice, "alpha", "include_payload=true&after="+p1.Next)
	if len(p2.Events) != 2 || p2.More || p2.Events[0].Payload == nil || !p2.Events[1].PayloadOmitted || p2.Events[1].Size != len(big(5<<20)) {
		t.Fatalf("second page: %d events, more %v, omitted %v", len(p2.Events), p2.More, p2.Events[len(p2.Events)-1].PayloadOmitted)
	}
	// Without payloads the sizes are all there is.
	if p := e.events(t, alice, "alpha", "limit=10"); len(p.Events) != 4 || p.More || p.Events[3].PayloadOmitted {
		t.Fatalf("without payloads: %d events, more %v", len(p.Events), p.More)
	}
}
