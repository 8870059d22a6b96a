package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// router is the real router of shared/routing on the stack's stores, with no production
// queue: every event the tests route goes to a sandbox.
func (s *stack) router(t testing.TB) *routing.Router {
	t.Helper()
	r, err := routing.New(routing.Options{
		Store: s.manager, Cache: routecache.New(s.rdb, 0, 0), Redis: s.rdb,
		Production: testenv.NoProduction{T: t}, ProductionQueueURL: "http://127.0.0.1:1/000000000000/production",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// route puts ingress messages through the stack's router, as the router function does with
// a batch of the ingress queue; every one must land in a sandbox's stream.
func (s *stack) route(t *testing.T, msgs ...routing.Message) {
	t.Helper()
	res := s.router(t).Route(context.Background(), nil, msgs)
	if len(res.Failed) > 0 || res.Routed[routing.DestinationSandbox] != len(msgs) {
		t.Fatalf("routing %d events: %+v", len(msgs), res)
	}
}

// gatewayEvent is an ingress message holding a dispatch of the guild.
func gatewayEvent(id, typ, guild string, seq int) routing.Message {
	return routing.Message{ID: id, SentAt: time.Now(),
		Body: fmt.Sprintf(`{"op":0,"t":%q,"s":%d,"d":{"guild_id":%q,"channel_id":"1300000000000000101","content":"event %s"}}`, typ, seq, guild, id)}
}

// streamIDs are the ids of a sandbox's stream entries, oldest first.
func (s *stack) streamIDs(t *testing.T, stream string) []string {
	t.Helper()
	msgs, err := s.rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return idsOf(msgs, func(m redis.XMessage) string { return m.ID })
}

// writeTranscriptAs saves the transcript of a test other than the end-to-end one next to it,
// with suffix, when SANDBOX_CLI_TRANSCRIPT names a file: docs/cli.md quotes it.
func (s *stack) writeTranscriptAs(t *testing.T, suffix string) {
	if path := os.Getenv("SANDBOX_CLI_TRANSCRIPT"); path != "" {
		if err := os.WriteFile(path+suffix, s.transcript.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEventsEndToEnd reads a sandbox's stream through `sandbox events` as its owner sees it,
// with events the real router appended: the lines for people, --json lines (with --payload the
// payloads), --since a duration or an entry id, the notice of trimmed entries, and who may not.
func TestEventsEndToEnd(t *testing.T) {
	s := newStack(t)
	const name = "alice-events"
	expect(t, s.run(t, aliceToken, "create", name, "--guild", guild1), ExitOK)
	r := s.run(t, aliceToken, "events", name)
	expect(t, r, ExitOK)
	if r.stdout != "" || r.stderr != "No events: the stream of sandbox "+name+" is empty.\n" {
		t.Errorf("an empty stream: %s", r)
	}

	sb, err := s.manager.GetByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	stream := keys.EventStream(sb.ID)
	// One event from long ago (an id the test chooses), then three the router appends now.
	old := strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10) + "-0"
	if err := s.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, ID: old, Values: []string{
		keys.StreamFieldType, "GUILD_CREATE", keys.StreamFieldPayload, `{"op":0,"t":"GUILD_CREATE","s":1,"d":{"id":"` + guild1 + `"}}`,
		keys.StreamFieldMessageID, "msg-0", keys.StreamFieldGuildID, guild1, keys.StreamFieldSeq, "1",
	}}).Err(); err != nil {
		t.Fatal(err)
	}
	events := []routing.Message{
		gatewayEvent("msg-1", "MESSAGE_CREATE", guild1, 101),
		gatewayEvent("msg-2", "MESSAGE_REACTION_ADD", guild1, 102),
		gatewayEvent("msg-3", "TYPING_START", guild1, 103),
	}
	s.route(t, events...)
	ids := s.streamIDs(t, stream)
	if len(ids) != 4 || ids[0] != old {
		t.Fatalf("stream ids %q", ids)
	}

	r = s.run(t, aliceToken, "events", name)
	expect(t, r, ExitOK)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "TIME ") || r.stderr != "4 events; the stream holds 4.\n" {
		t.Fatalf("events: %s", r)
	}
	mustMatch(t, lines[0], `^TIME +TYPE +GUILD +SIZE +SEQ +ID$`)
	mustMatch(t, lines[1], `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC +GUILD_CREATE +`+guild1+` +\d+ B +1  `+old+`$`)
	for i, typ := range []string{"MESSAGE_CREATE", "MESSAGE_REACTION_ADD", "TYPING_START"} {
		mustMatch(t, lines[2+i], ` UTC  `+typ+` +`+guild1+` +`+strconv.Itoa(len(events[i].Body))+` B +`+strconv.Itoa(101+i)+`  `+ids[1+i]+`$`)
	}

	// --json: one API event object per line; --payload adds the payload as it was sent.
	r = s.run(t, aliceToken, "events", name, "--json", "--payload")
	expect(t, r, ExitOK)
	jsonLines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(jsonLines) != 4 || r.stderr != "" {
		t.Fatalf("events --json --payload: %s", r)
	}
	for i, line := range jsonLines[1:] {
		var ev apiwire.Event
		decodeStrict(t, line, &ev)
		if ev.ID != ids[1+i] || ev.MessageID != events[i].ID || string(ev.Payload) != events[i].Body || ev.GuildID != guild1 ||
			ev.Seq == nil || *ev.Seq != int64(101+i) || ev.Size != len(events[i].Body) || ev.ReceivedAt == nil {
			t.Errorf("json line %d: %+v", i, ev)
		}
	}
	r = s.run(t, aliceToken, "events", name, "--json")
	expect(t, r, ExitOK)
	if strings.Contains(r.stdout, `"payload"`) || strings.Count(r.stdout, "\n") != 4 {
		t.Errorf("without --payload no payload: %s", r)
	}

	// --since a duration: the last ten minutes hold the router's three; --since an id: after it.
	r = s.run(t, aliceToken, "events", name, "--since", "10m")
	expect(t, r, ExitOK)
	if strings.Contains(r.stdout, "GUILD_CREATE") || strings.Count(r.stdout, "\n") != 4 || r.stderr != "3 events; the stream holds 4.\n" {
		t.Errorf("--since 10m: %s", r)
	}
	r = s.run(t, aliceToken, "events", name, "--since", ids[2], "--json")
	expect(t, r, ExitOK)
	if strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, `"id":"`+ids[3]+`"`) {
		t.Errorf("--since %s: %s", ids[2], r)
	}
	r = s.run(t, aliceToken, "events", name, "--since", ids[3])
	expect(t, r, ExitOK)
	if r.stdout != "" || r.stderr != "No events since "+ids[3]+"; the stream holds 4.\n" {
		t.Errorf("--since the last id: %s", r)
	}

	// Trimmed to the two newest: said once, before the events, on stderr (a JSON line with --json).
	if err := s.rdb.XTrimMaxLen(context.Background(), stream, 2).Err(); err != nil {
		t.Fatal(err)
	}
	r = s.run(t, aliceToken, "events", name)
	expect(t, r, ExitOK)
	notice := "entries before " + ids[2] + " ("
	if strings.Count(r.stderr, notice) != 1 || !strings.HasPrefix(r.stderr, "note: "+notice) || strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("a trimmed stream: %s", r)
	}
	r = s.run(t, aliceToken, "events", name, "--json")
	expect(t, r, ExitOK)
	var trimmed trimmedDocument
	decodeStrict(t, strings.SplitN(r.stdout, "\n", 2)[0], &trimmed)
	if trimmed.Trimmed.FirstID != ids[2] || !strings.Contains(trimmed.Trimmed.Message, "were trimmed") || strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("a trimmed stream, --json: %s", r)
	}
	r = s.run(t, aliceToken, "events", name, "--since", ids[2])
	expect(t, r, ExitOK)
	if strings.Contains(r.stderr, "trimmed") {
		t.Errorf("nothing after %s was trimmed: %s", ids[2], r)
	}

	// The sandbox's own worker may write its stream: nothing it writes drives the terminal.
	if err := s.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: []string{
		keys.StreamFieldType, "EVIL\x1b]0;pwned\x07\x1b[2J\u202e", keys.StreamFieldGuildID, "\x1b[31m", keys.StreamFieldPayload, "{\"x\":\"\u009b31m\"}",
	}}).Err(); err != nil {
		t.Fatal(err)
	}
	r = s.run(t, aliceToken, "events", name, "--payload")
	expect(t, r, ExitOK)
	if strings.ContainsAny(r.stdout+r.stderr, "\x1b\x07\u009b\u202e") || !strings.Contains(r.stdout, `EVIL\x1b]0;pwned\a\x1b[2J\u202e`) {
		t.Errorf("a worker's entry reached the terminal raw: %q", r.stdout)
	}

	// Who may not, and what is not a position.
	r = s.run(t, bobToken, "events", name)
	expect(t, r, ExitAuth)
	mustContain(t, r.stderr, "[forbidden]")
	expect(t, s.run(t, aliceToken, "events", "no-such-sandbox"), ExitNotFound)
	r = s.run(t, aliceToken, "events", name, "--since", "yesterday", "--json")
	expect(t, r, ExitUsage)
	if e := errorDoc(t, r); e.Code != CodeUsage || e.Field != "since" || !strings.Contains(e.Message, "neither a duration") {
		t.Errorf("--since yesterday: %+v", e)
	}
	r = s.run(t, aliceToken, "events", name, "--since", "18446744073709551616-0")
	expect(t, r, ExitUsage)
	s.writeTranscriptAs(t, ".events")
}

// countingTransport counts the API requests of a run.
type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// followRun is a `sandbox events --follow` running in the background with a manual ticker
// (as startWatch runs `status --watch`), its API requests counted.
type followRun struct {
	*watchRun
	requests *atomic.Int64
	stderr   *testenv.SyncBuffer
}

func startFollow(t *testing.T, s *stack, args ...string) *followRun {
	t.Helper()
	f := &followRun{
		watchRun: &watchRun{t: t, ticker: &manualTicker{c: make(chan time.Time)}, out: &testenv.SyncBuffer{}, done: make(chan int, 1)},
		requests: &atomic.Int64{}, stderr: &testenv.SyncBuffer{},
	}
	e := s.env(aliceToken, f.out, f.stderr)
	e.HTTPClient = &http.Client{Transport: countingTransport{base: s.server.Client().Transport, n: f.requests}}
	e.NewTicker = func(d time.Duration) Ticker {
		if d != time.Second {
			t.Errorf("ticker interval %s, want 1s", d)
		}
		return f.ticker
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	t.Cleanup(cancel)
	go func() { f.done <- Run(ctx, append(args, "--follow"), e) }()
	return f
}

// ticks delivers n ticks, each taken only once the follower waits for it.
func (f *followRun) ticks(n int) {
	f.t.Helper()
	for range n {
		select {
		case f.ticker.c <- time.Now():
		case code := <-f.done:
			f.t.Fatalf("the follower ended early with exit %d:\n%s\n%s", code, f.out.String(), f.stderr.String())
		case <-time.After(30 * time.Second):
			f.t.Fatalf("the follower did not take the tick:\n%s", f.out.String())
		}
	}
}

// TestEventsFollow follows a stream with a manual ticker: it prints what arrives after a tick,
// once, and ends with exit 0 on Ctrl-C, its ticker stopped.
func TestEventsFollow(t *testing.T) {
	s := newStack(t)
	const name = "alice-follow"
	expect(t, s.run(t, aliceToken, "create", name, "--guild", guild1), ExitOK)
	s.route(t, gatewayEvent("msg-1", "MESSAGE_CREATE", guild1, 1))

	f := startFollow(t, s, "events", name)
	f.ticks(1) // taken once the history is printed
	if out := f.out.String(); strings.Count(out, "MESSAGE_CREATE") != 1 || !strings.HasPrefix(out, "TIME ") {
		t.Fatalf("the history: %q", out)
	}
	mustContain(t, f.stderr.String(), "Following the events of sandbox "+name+"; Ctrl-C to stop.")

	// A tick is taken once the request after the previous one is done, so of two ticks after
	// the router appended, the request between them read what it appended.
	s.route(t, gatewayEvent("msg-2", "GUILD_MEMBER_ADD", guild1, 2), gatewayEvent("msg-3", "TYPING_START", guild1, 3))
	f.ticks(2)
	out := f.out.String()
	if strings.Count(out, "GUILD_MEMBER_ADD") != 1 || strings.Count(out, "TYPING_START") != 1 || strings.Count(out, "MESSAGE_CREATE") != 1 ||
		strings.Count(out, "TIME ") != 1 {
		t.Fatalf("after the new events: %q", out)
	}
	f.interrupt("follower")
	f.ticker.mu.Lock()
	defer f.ticker.mu.Unlock()
	if !f.ticker.stopped {
		t.Error("the follower did not stop its ticker")
	}
	s.transcript.Reset()
	fmt.Fprintf(s.transcript, "$ sandbox events %s --follow\n%s%s^C\n[exit 0]\n", name, f.out.String(), f.stderr.String())
	s.writeTranscriptAs(t, ".follow")
}

// TestEventsFollowBacksOffWhileIdle counts a follower's requests: one per tick, never one
// without a tick, and fewer once nothing arrives (idleTicks).
func TestEventsFollowBacksOffWhileIdle(t *testing.T) {
	s := newStack(t)
	const name = "alice-idle"
	expect(t, s.run(t, aliceToken, "create", name, "--guild", guild1), ExitOK)
	s.route(t, gatewayEvent("msg-1", "MESSAGE_CREATE", guild1, 1))
	f := startFollow(t, s, "events", name)
	// Request 1 reads the history; requests 2-11 (empty, the 1st to 10th idle one) each come
	// after 1 tick; 12-21 after 2 ticks each; then 5 ticks each. 33 ticks: 10 + 20 make 21
	// requests, and 3 more leave the follower in the middle of a 5-tick wait, none in flight.
	f.ticks(33)
	if n := f.requests.Load(); n != 21 {
		t.Errorf("%d API requests after 33 ticks, want 21", n)
	}
	f.cancel()
	if code := <-f.done; code != ExitOK {
		t.Errorf("exit %d", code)
	}
}

// TestEventsFollowEndsWhenTheSandboxIsDestroyed: a follower of a sandbox that is destroyed
// prints what remained to read and stops, exit 0; with --json every line is an event.
func TestEventsFollowEndsWhenTheSandboxIsDestroyed(t *testing.T) {
	s := newStack(t)
	const name = "alice-gone"
	expect(t, s.run(t, aliceToken, "create", name, "--guild", guild1), ExitOK)
	f := startFollow(t, s, "events", name, "--json")
	f.ticks(2) // the second is taken once the request after the first is done
	s.route(t, gatewayEvent("msg-1", "MESSAGE_CREATE", guild1, 1))
	f.ticks(2) // the request after the first of these reads it
	expect(t, s.run(t, aliceToken, "destroy", name, "--yes"), ExitOK)
	code := -1
	for code < 0 {
		select {
		case f.ticker.c <- time.Now():
		case code = <-f.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("the follower did not end:\n%s", f.out.String())
		}
	}
	if code != ExitOK || f.stderr.String() != "" {
		t.Fatalf("exit %d, stderr %q", code, f.stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(f.out.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("lines %q", lines)
	}
	var ev apiwire.Event
	decodeStrict(t, lines[0], &ev)
	if ev.Type != "MESSAGE_CREATE" || ev.MessageID != "msg-1" {
		t.Errorf("event %+v", ev)
	}
}

func TestIdleTicks(t *testing.T) {
	for idle, want := range map[int]int{0: 1, 9: 1, 10: 2, 19: 2, 20: 5, 1000: 5} {
		if got := idleTicks(idle); got != want {
			t.Errorf("idleTicks(%d) = %d, want %d", idle, got, want)
		}
	}
}

func TestPrintable(t *testing.T) {
	checkEach(t, "printable", printable, map[string]string{
		"MESSAGE_CREATE":        "MESSAGE_CREATE",
		`{"content":"Zoë ✓ 🤖"}`: `{"content":"Zoë ✓ 🤖"}`,
		"\x1b[2J":               `\x1b[2J`,
		"a\nb\tc":               `a\nb\tc`,
		"\u202eevil":            `\u202eevil`,
		"\u009b31m":             `\u009b31m`,
		"bad \xff byte":         `bad \xff byte`,
	})
}
