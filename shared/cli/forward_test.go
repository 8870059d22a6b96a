package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// delivery is one request the local server of a forwarder received.
type delivery struct {
	n       int // 1-based, in arrival order
	id      string
	body    string
	header  http.Header
	arrived time.Time
}

// sink is the developer's local server: it records every request and answers what answer
// says (200 without one). answer may block to force an interleaving.
type sink struct {
	*httptest.Server
	mu       sync.Mutex
	got      []delivery
	arrivals chan delivery
	answer   func(d delivery, r *http.Request) int
}

func newSink(t testing.TB, answer func(d delivery, r *http.Request) int) *sink {
	k := &sink{arrivals: make(chan delivery, 100000), answer: answer}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		k.mu.Lock()
		d := delivery{n: len(k.got) + 1, id: r.Header.Get(HeaderStreamID), body: string(body), header: r.Header.Clone(), arrived: time.Now()}
		k.got = append(k.got, d)
		k.mu.Unlock()
		k.arrivals <- d
		status := http.StatusOK
		if k.answer != nil {
			status = k.answer(d, r)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(k.Close)
	return k
}

// wait returns the next n arrivals, failing the test after a generous bound.
func (k *sink) wait(t testing.TB, n int) []delivery {
	t.Helper()
	out := make([]delivery, 0, n)
	timeout := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case d := <-k.arrivals:
			out = append(out, d)
		case <-timeout:
			t.Fatalf("the local server got %d of %d requests", len(out), n)
		}
	}
	return out
}

// forwardRun is a forwarder running in-process through the real CLI.
type forwardRun struct {
	stop, kill     context.CancelFunc
	stdout, stderr *testenv.SyncBuffer
	done           chan int
}

// startForward runs `sandbox forward` as alice. Cancelling stop is Ctrl-C; cancelling kill
// ends the entry in flight too, as a crash would.
func (s *stack) startForward(t testing.TB, args ...string) *forwardRun {
	stopCtx, stop := context.WithCancel(context.Background())
	killCtx, kill := context.WithCancel(context.Background())
	fr := &forwardRun{stop: stop, kill: kill, stdout: &testenv.SyncBuffer{}, stderr: &testenv.SyncBuffer{}, done: make(chan int, 1)}
	env := s.env(aliceToken, fr.stdout, fr.stderr)
	env.forwardWork = killCtx
	go func() { fr.done <- Run(stopCtx, append([]string{"forward"}, args...), env) }()
	t.Cleanup(func() { kill(); stop(); <-fr.done })
	return fr
}

// end waits for the forwarder to exit and returns its exit code.
func (fr *forwardRun) end(t testing.TB) int {
	t.Helper()
	select {
	case code := <-fr.done:
		fr.done <- code // for the cleanup
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("the forwarder did not stop")
	}
	return -1
}

// records are the forwarder's --json lines.
func (fr *forwardRun) records(t testing.TB) []forwardRecord {
	t.Helper()
	var out []forwardRecord
	for line := range strings.Lines(fr.stdout.String()) {
		var rec forwardRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a --json line that is not a record: %q", line)
		}
		out = append(out, rec)
	}
	return out
}

// pendingIDs are the entries of the group pending on consumer (all consumers: "").
func (s *stack) pendingIDs(t testing.TB, stream, consumer string) []string {
	t.Helper()
	args := &redis.XPendingExtArgs{Stream: stream, Group: keys.EventsGroup, Start: "-", End: "+", Count: 100000, Consumer: consumer}
	p, err := s.rdb.XPendingExt(context.Background(), args).Result()
	if err != nil {
		t.Fatal(err)
	}
	return idsOf(p, func(e redis.XPendingExt) string { return e.ID })
}

// forwardSandbox creates alice's sandbox with guild1 and routes n events through the real
// router; it returns the stream key and the events as routed.
func (s *stack) forwardSandbox(t *testing.T, name string, n int) (string, []routing.Message) {
	t.Helper()
	expect(t, s.run(t, aliceToken, "create", name, "--guild", guild1), ExitOK)
	sb, err := s.manager.GetByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return keys.EventStream(sb.ID), s.routeN(t, 0, n)
}

// routeN routes n events msg-<first>... in batches of 10, as the ingress queue hands them.
func (s *stack) routeN(t *testing.T, first, n int) []routing.Message {
	t.Helper()
	var all []routing.Message
	for i := 0; i < n; i += 10 {
		var batch []routing.Message
		for j := i; j < min(i+10, n); j++ {
			batch = append(batch, gatewayEvent(fmt.Sprintf("msg-%d", first+j), "MESSAGE_CREATE", guild1, first+j+1))
		}
		s.route(t, batch...)
		all = append(all, batch...)
	}
	return all
}

func ids(ds []delivery) []string { return idsOf(ds, func(d delivery) string { return d.id }) }

// idsOf returns the id of each item, in order: of deliveries, stream entries, pending entries.
func idsOf[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, item := range items {
		out[i] = id(item)
	}
	return out
}

// TestForwardDeliversEveryEventInOrder: every routed event reaches the local URL once, in
// stream order, byte for byte with its headers, and is acknowledged; events routed while the
// forwarder waits arrive too; Ctrl-C ends it with exit 0.
func TestForwardDeliversEveryEventInOrder(t *testing.T) {
	s := newStack(t)
	stream, sent := s.forwardSandbox(t, "alice-fwd", 25)
	k := newSink(t, nil)
	fr := s.startForward(t, "alice-fwd", "--to", k.URL+"/events", "--consumer", "laptop", "--wait", "2s", "--json")
	got := k.wait(t, 25)
	sent = append(sent, s.routeN(t, 25, 5)...) // while it waits
	got = append(got, k.wait(t, 5)...)
	streamIDs := s.streamIDs(t, stream)
	if !slices.Equal(ids(got), streamIDs) {
		t.Fatalf("delivered %q\nstream    %q", ids(got), streamIDs)
	}
	for i, d := range got {
		m := sent[i]
		h := d.header
		if d.body != m.Body || h.Get(HeaderMessageID) != m.ID || h.Get(HeaderEventType) != "MESSAGE_CREATE" ||
			h.Get(HeaderGuildID) != guild1 || h.Get(HeaderSeq) != fmt.Sprint(i+1) || h.Get(HeaderSandbox) != "alice-fwd" ||
			h.Get(HeaderAttempt) != "1" || h.Get("Content-Type") != "application/json" {
			t.Fatalf("delivery %d: %q %v", i, d.body, h)
		}
	}
	// Acknowledged as they were delivered: nothing is pending once the last one is recorded.
	waitFor(t, func() bool { return len(fr.records(t)) == 30 })
	if p := s.pendingIDs(t, stream, ""); len(p) != 0 {
		t.Errorf("pending after delivery: %q", p)
	}
	fr.stop()
	if code := fr.end(t); code != ExitOK || fr.stderr.String() != "" {
		t.Fatalf("Ctrl-C: exit %d, stderr %q", code, fr.stderr.String())
	}
	for i, rec := range fr.records(t) {
		if rec.Status != "delivered" || rec.HTTPStatus != 200 || rec.ID != streamIDs[i] || rec.Seq == nil || *rec.Seq != int64(i+1) || rec.MessageID != sent[i].ID {
			t.Errorf("record %d: %+v", i, rec)
		}
	}
	if len(k.arrivals) != 0 {
		t.Errorf("%d deliveries more than events", len(k.arrivals))
	}
}

// waitFor polls cond (state another goroutine writes) until it holds.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	testenv.WaitUntil(t, "the forwarder's state", cond)
}

// TestForwardRetriesFailures: requests the server fails are delivered again, with backoff,
// before any later event (stream order), and reported; a 2xx acknowledges.
func TestForwardRetriesFailures(t *testing.T) {
	s := newStack(t)
	stream, _ := s.forwardSandbox(t, "alice-fwd", 6)
	k := newSink(t, func(d delivery, _ *http.Request) int {
		switch d.n {
		case 3:
			return http.StatusInternalServerError
		case 4:
			return http.StatusServiceUnavailable
		case 6:
			return http.StatusFound // a redirect is not a delivery either
		}
		return http.StatusOK
	})
	fr := s.startForward(t, "alice-fwd", "--to", k.URL, "--consumer", "laptop", "--wait", "1s")
	got := k.wait(t, 9)
	streamIDs := s.streamIDs(t, stream)
	want := []string{streamIDs[0], streamIDs[1], streamIDs[2], streamIDs[2], streamIDs[2], streamIDs[3], streamIDs[3], streamIDs[4], streamIDs[5]}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("deliveries %q\nwant       %q", ids(got), want)
	}
	if a := got[4].header.Get(HeaderAttempt); a != "3" {
		t.Errorf("third attempt says attempt %q", a)
	}
	if gap := got[4].arrived.Sub(got[3].arrived); gap < 2*backoffFirst {
		t.Errorf("the second retry came %s after the first: no backoff", gap)
	}
	waitFor(t, func() bool { return strings.Count(fr.stdout.String(), "\n") == 9 })
	fr.stop()
	expectCode(t, fr.end(t), ExitOK)
	out := fr.stdout.String()
	for _, want := range []string{"500      ", "attempt 1, retrying in 250ms", "503      ", "attempt 2, retrying in 500ms", "302      "} {
		if !strings.Contains(out, want) {
			t.Errorf("the failures are not reported (%q):\n%s", want, out)
		}
	}
	if p := s.pendingIDs(t, stream, ""); len(p) != 0 {
		t.Errorf("pending: %q", p)
	}
	if !strings.HasPrefix(fr.stderr.String(), "Forwarding the events of sandbox alice-fwd (group workers, consumer laptop) to "+k.URL) ||
		!strings.HasSuffix(fr.stderr.String(), "Stopped: 6 events forwarded.\n") {
		t.Errorf("notes: %q", fr.stderr.String())
	}
}

func expectCode(t testing.TB, code, want int) {
	t.Helper()
	if code != want {
		t.Fatalf("exit %d, want %d", code, want)
	}
}

// TestForwardKilledMidStreamLosesNothing kills a forwarder while the local server holds its
// 4th request, then restarts it: the restarted one delivers exactly the entries that were not
// acknowledged (the one in flight and the rest of its read), in order, and nothing that was.
func TestForwardKilledMidStreamLosesNothing(t *testing.T) {
	s := newStack(t)
	stream, _ := s.forwardSandbox(t, "alice-fwd", 10)
	release := make(chan struct{})
	k := newSink(t, func(d delivery, r *http.Request) int {
		if d.n == 4 {
			select { // held until the forwarder is killed (its request is cancelled)
			case <-r.Context().Done():
			case <-release:
			}
		}
		return http.StatusOK
	})
	fr := s.startForward(t, "alice-fwd", "--to", k.URL, "--consumer", "laptop", "--wait", "1s", "--json")
	first := k.wait(t, 4)
	fr.kill() // the crash: the request in flight is abandoned, never acknowledged
	fr.stop()
	fr.end(t)
	close(release)
	streamIDs := s.streamIDs(t, stream)
	if !slices.Equal(ids(first), streamIDs[:4]) {
		t.Fatalf("before the crash: %q", ids(first))
	}
	unacked := s.pendingIDs(t, stream, "laptop")
	if !slices.Equal(unacked, streamIDs[3:]) {
		t.Fatalf("pending after the crash %q, want the 4th on %q", unacked, streamIDs[3:])
	}

	// Restarted: its own pending entries first, in order, then nothing more.
	fr2 := s.startForward(t, "alice-fwd", "--to", k.URL, "--consumer", "laptop", "--wait", "1s", "--json")
	again := k.wait(t, len(unacked))
	if !slices.Equal(ids(again), unacked) {
		t.Fatalf("redelivered %q, want exactly the unacknowledged %q", ids(again), unacked)
	}
	waitFor(t, func() bool { return len(fr2.records(t)) == len(unacked) })
	fr2.stop()
	expectCode(t, fr2.end(t), ExitOK)
	if len(k.arrivals) != 0 || len(s.pendingIDs(t, stream, "")) != 0 {
		t.Fatalf("more deliveries (%d) or entries still pending", len(k.arrivals))
	}
}

// TestForwardCtrlCFinishesTheEntryInFlight: Ctrl-C while the server holds a request lets
// that request finish and be acknowledged; the restarted forwarder delivers only the rest.
func TestForwardCtrlCFinishesTheEntryInFlight(t *testing.T) {
	s := newStack(t)
	stream, _ := s.forwardSandbox(t, "alice-fwd", 6)
	release := make(chan struct{})
	k := newSink(t, func(d delivery, _ *http.Request) int {
		if d.n == 2 {
			<-release
		}
		return http.StatusOK
	})
	fr := s.startForward(t, "alice-fwd", "--to", k.URL, "--consumer", "laptop", "--wait", "1s", "--json")
	k.wait(t, 2)
	fr.stop() // Ctrl-C while the 2nd is in flight
	close(release)
	expectCode(t, fr.end(t), ExitOK)
	streamIDs := s.streamIDs(t, stream)
	if recs := fr.records(t); len(recs) != 2 || recs[1].Status != "delivered" || recs[1].ID != streamIDs[1] {
		t.Fatalf("records %+v", recs)
	}
	if p := s.pendingIDs(t, stream, "laptop"); !slices.Equal(p, streamIDs[2:]) {
		t.Fatalf("pending %q, want %q", p, streamIDs[2:])
	}
	fr2 := s.startForward(t, "alice-fwd", "--to", k.URL, "--consumer", "laptop", "--wait", "1s")
	if got := k.wait(t, 4); !slices.Equal(ids(got), streamIDs[2:]) {
		t.Fatalf("after the restart: %q", ids(got))
	}
	fr2.stop()
	fr2.end(t)
}

// TestForwardTwoConsumersShareAGroup: two forwarders of one group get every event between
// them, none twice, each in stream order.
func TestForwardTwoConsumersShareAGroup(t *testing.T) {
	s := newStack(t)
	expect(t, s.run(t, aliceToken, "create", "alice-fwd", "--guild", guild1), ExitOK)
	var mu sync.Mutex
	total := 0
	count := func(delivery, *http.Request) int {
		mu.Lock()
		total++
		mu.Unlock()
		return http.StatusOK
	}
	k1, k2 := newSink(t, count), newSink(t, count)
	f1 := s.startForward(t, "alice-fwd", "--to", k1.URL, "--consumer", "one", "--wait", "1s")
	f2 := s.startForward(t, "alice-fwd", "--to", k2.URL, "--consumer", "two", "--wait", "1s")
	for i := range 20 {
		s.routeN(t, i*5, 5)
		waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return total == (i+1)*5 })
	}
	f1.stop()
	f2.stop()
	f1.end(t)
	f2.end(t)
	sb, _ := s.manager.GetByName(context.Background(), "alice-fwd")
	streamIDs := s.streamIDs(t, keys.EventStream(sb.ID))
	a, b := ids(k1.wait(t, len(k1.arrivals))), ids(k2.wait(t, len(k2.arrivals)))
	union := append(slices.Clone(a), b...)
	sort.Strings(union)
	if !slices.Equal(union, streamIDs) || !slices.IsSorted(a) || !slices.IsSorted(b) {
		t.Fatalf("one got %d, two got %d of %d: overlap, loss or disorder\none %q\ntwo %q", len(a), len(b), len(streamIDs), a, b)
	}
	t.Logf("the two forwarders shared %d events: %d and %d", len(streamIDs), len(a), len(b))
}

// TestForwardTakesOverADeadConsumer: entries pending on a consumer that died (idle past
// --claim-idle) are claimed and delivered by a new forwarder.
func TestForwardTakesOverADeadConsumer(t *testing.T) {
	s := newStack(t)
	stream, _ := s.forwardSandbox(t, "alice-fwd", 3)
	ctx := context.Background()
	if err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: keys.EventsGroup, Consumer: "dead", Streams: []string{stream, ">"}, Count: 2, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	streamIDs := s.streamIDs(t, stream)
	for _, id := range streamIDs[:2] { // dead for two minutes
		if err := s.rdb.Do(ctx, "XCLAIM", stream, keys.EventsGroup, "dead", 0, id, "IDLE", 120000, "JUSTID").Err(); err != nil {
			t.Fatal(err)
		}
	}
	k := newSink(t, nil)
	fr := s.startForward(t, "alice-fwd", "--to", k.URL, "--consumer", "heir", "--claim-idle", "1m", "--wait", "1s")
	if got := k.wait(t, 3); !slices.Equal(ids(got), streamIDs) {
		t.Fatalf("delivered %q, want %q", ids(got), streamIDs)
	}
	waitFor(t, func() bool { return len(s.pendingIDs(t, stream, "")) == 0 })
	fr.stop()
	fr.end(t)
}

// TestForwardPrint: --print writes each payload on its own line of stdout, in order, and the
// lines for people go to stderr.
func TestForwardPrint(t *testing.T) {
	s := newStack(t)
	_, sent := s.forwardSandbox(t, "alice-fwd", 3)
	fr := s.startForward(t, "alice-fwd", "--print", "--consumer", "pipe", "--wait", "1s")
	waitFor(t, func() bool { return strings.Count(fr.stdout.String(), "\n") == 3 })
	fr.stop()
	expectCode(t, fr.end(t), ExitOK)
	want := sent[0].Body + "\n" + sent[1].Body + "\n" + sent[2].Body + "\n"
	if fr.stdout.String() != want || strings.Count(fr.stderr.String(), "printed") != 3 {
		t.Fatalf("stdout %q\nstderr %q", fr.stdout.String(), fr.stderr.String())
	}
}

// TestForwardRefusesBadFlagsAndOthersSandboxes: usage errors before any request; another
// owner's sandbox is forbidden; a sandbox that is not running ends it with its error.
func TestForwardRefusesBadFlagsAndOthersSandboxes(t *testing.T) {
	s := newStack(t)
	expect(t, s.run(t, aliceToken, "create", "alice-fwd", "--guild", guild1), ExitOK)
	for _, args := range [][]string{
		{"forward", "alice-fwd"},
		{"forward", "alice-fwd", "--to", "http://x", "--print"},
		{"forward", "alice-fwd", "--to", "ftp://x"},
		{"forward", "alice-fwd", "--to", "http://x", "--group", "a b"},
		{"forward", "alice-fwd", "--to", "http://x", "--consumer", strings.Repeat("c", 65)},
		{"forward", "alice-fwd", "--print", "--json"},
		{"forward", "alice-fwd", "--to", "http://x", "--wait", "30s"},
	} {
		if r := s.run(t, aliceToken, args...); r.code != ExitUsage {
			t.Errorf("%q: %s", args, r)
		}
	}
	if r := s.run(t, bobToken, "forward", "alice-fwd", "--print", "--consumer", "c"); r.code != ExitAuth || !strings.Contains(r.stderr, "[forbidden]") {
		t.Errorf("bob: %s", r)
	}
	expect(t, s.run(t, aliceToken, "destroy", "alice-fwd", "--yes"), ExitOK)
	if r := s.run(t, aliceToken, "forward", "alice-fwd", "--print", "--consumer", "c"); r.code != ExitConflict || !strings.Contains(r.stderr, "[invalid_transition]") {
		t.Errorf("destroyed: %s", r)
	}
}

// BenchmarkForward measures forwarding on the local stack: from the router's Route call for
// an event to the local URL receiving it (p50, p99), one event at a time; then events/s
// through one forwarder for a burst routed in batches of 10.
//
//	scripts/with-services.sh go test ./shared/cli/ -run '^$' -bench Forward -benchtime 500x
func BenchmarkForward(b *testing.B) {
	s := newStack(b)
	var stdout, stderr testenv.SyncBuffer
	if code := Run(context.Background(), []string{"create", "alice-bench", "--guild", guild1}, s.env(aliceToken, &stdout, &stderr)); code != ExitOK {
		b.Fatalf("create: %s", stderr.String())
	}
	r := s.router(b)
	route := func(msgs ...routing.Message) {
		if res := r.Route(context.Background(), nil, msgs); len(res.Failed) > 0 {
			b.Fatalf("routing: %+v", res)
		}
	}
	k := newSink(b, nil)
	fr := s.startForward(b, "alice-bench", "--to", k.URL, "--consumer", "bench", "--wait", "10s", "--json")
	route(gatewayEvent("warm-up", "MESSAGE_CREATE", guild1, 0))
	k.wait(b, 1)

	b.ResetTimer()
	lat := make([]time.Duration, 0, b.N)
	for i := range b.N {
		start := time.Now()
		route(gatewayEvent(fmt.Sprintf("lat-%d", i), "MESSAGE_CREATE", guild1, i+1))
		d := k.wait(b, 1)[0]
		lat = append(lat, d.arrived.Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")

	const burst = 1000
	start := time.Now()
	for i := 0; i < burst; i += 10 {
		batch := make([]routing.Message, 10)
		for j := range batch {
			batch[j] = gatewayEvent(fmt.Sprintf("burst-%d", i+j), "MESSAGE_CREATE", guild1, i+j+1)
		}
		route(batch...)
	}
	k.wait(b, burst)
	b.ReportMetric(burst/time.Since(start).Seconds(), "events/s")
	fr.stop()
	fr.end(b)
}
