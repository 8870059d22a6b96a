package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
)

// manualTicker ticks when the test says so: an unbuffered channel, so a tick is accepted only
// once the watch has drawn its frame and waits for the next one.
type manualTicker struct {
	c       chan time.Time
	mu      sync.Mutex
	stopped bool
}

func (m *manualTicker) C() <-chan time.Time { return m.c }
func (m *manualTicker) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
}

// watchRun is a `status --watch` running in the background with a manual ticker.
type watchRun struct {
	t      *testing.T
	ticker *manualTicker
	clock  *testenv.Clock
	out    *testenv.SyncBuffer
	done   chan int
	cancel context.CancelFunc
}

func startWatch(t *testing.T, s *stack, args ...string) *watchRun {
	t.Helper()
	w := &watchRun{
		t: t, ticker: &manualTicker{c: make(chan time.Time)}, out: &testenv.SyncBuffer{}, done: make(chan int, 1),
		clock: testenv.NewClock(time.Now().UTC().Truncate(time.Second)),
	}
	e := s.env(aliceToken, w.out, &testenv.SyncBuffer{})
	e.Now = w.clock.Now
	e.NewTicker = func(d time.Duration) Ticker {
		if d != 2*time.Second {
			t.Errorf("ticker interval %s, want the --interval 2s", d)
		}
		return w.ticker
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	t.Cleanup(cancel)
	go func() { w.done <- Run(ctx, append(args, "--watch", "--interval", "2s"), e) }()
	return w
}

// tick delivers one tick; it returns once the frame before it has been drawn.
func (w *watchRun) tick() {
	w.t.Helper()
	select {
	case w.ticker.c <- w.clock.Now():
	case code := <-w.done:
		w.t.Fatalf("the watch ended early with exit %d:\n%s", code, w.out.String())
	case <-time.After(30 * time.Second):
		w.t.Fatalf("the watch did not take the tick:\n%s", w.out.String())
	}
}

// interrupt presses Ctrl-C and wants the run, what it is ("watch", "follower"), to end with
// exit 0.
func (w *watchRun) interrupt(what string) {
	w.t.Helper()
	w.cancel()
	select {
	case code := <-w.done:
		if code != ExitOK {
			w.t.Fatalf("Ctrl-C ends a %s normally, got exit %d", what, code)
		}
	case <-time.After(30 * time.Second):
		w.t.Fatalf("the %s ignored Ctrl-C", what)
	}
}

// exit waits for the watch to end by itself, ticking as long as it asks for ticks.
func (w *watchRun) exit() int {
	w.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case w.ticker.c <- w.clock.Now():
		case code := <-w.done:
			w.ticker.mu.Lock()
			defer w.ticker.mu.Unlock()
			if !w.ticker.stopped {
				w.t.Error("the watch did not stop its ticker")
			}
			return code
		case <-timeout:
			w.t.Fatalf("the watch did not end:\n%s", w.out.String())
		}
	}
}

// lastFrame is the output after the last frame header.
func lastFrame(out string) string {
	return out[strings.LastIndex(out, "Every 2s:"):]
}

func TestWatchRedrawsUntilTheSandboxIsGone(t *testing.T) {
	s := newStack(t)
	const name = "alice-watched"
	expect(t, s.run(t, aliceToken, "create", name, "--ttl", "1h"), ExitOK)

	w := startWatch(t, s, "status", name)
	start := w.clock.Now()
	w.tick()
	first := w.out.String()
	mustContain(t, first, "Every 2s: sandbox status "+name+"    "+formatTime(start, time.UTC)+"    Ctrl-C to stop",
		"Status     running", "Guilds     none", "Health  healthy")

	// A change shows up in the frame drawn after the next tick; the header follows the clock.
	expect(t, s.run(t, aliceToken, "guilds", "add", name, guild1), ExitOK)
	w.clock.Add(2 * time.Second)
	w.tick()
	w.tick()
	frame := lastFrame(w.out.String())
	mustContain(t, frame, formatTime(start.Add(2*time.Second), time.UTC)+"    Ctrl-C", "Guilds     "+guild1, "routes")
	if n := strings.Count(w.out.String(), "Every 2s:"); n < 3 {
		t.Errorf("%d frames after three refreshes", n)
	}

	// Destroyed while watched: the last frame says so and the watch ends with exit 0.
	expect(t, s.run(t, aliceToken, "destroy", name, "--yes"), ExitOK)
	if code := w.exit(); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, w.out.String())
	}
	out := w.out.String()
	mustContain(t, lastFrame(out), "Status     destroyed", "Teardown record")
	if !strings.HasSuffix(out, "Sandbox "+name+" is gone; stopped watching.\n") {
		t.Errorf("the watch ends by saying the sandbox is gone:\n%s", out)
	}
	if strings.Contains(out, "\x1b") {
		t.Error("no escape sequences when stdout is not a terminal")
	}
	if path := os.Getenv("SANDBOX_CLI_TRANSCRIPT"); path != "" {
		if err := os.WriteFile(path+".watch", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWatchEndsOnCtrlC(t *testing.T) {
	s := newStack(t)
	expect(t, s.run(t, aliceToken, "create", "alice-ctrl-c"), ExitOK)
	w := startWatch(t, s, "status", "alice-ctrl-c")
	w.tick()
	w.interrupt("watch")
}

func TestWatchJSONLines(t *testing.T) {
	s := newStack(t)
	expect(t, s.run(t, aliceToken, "create", "alice-json-watch"), ExitOK)
	w := startWatch(t, s, "status", "alice-json-watch", "--json")
	w.tick()
	expect(t, s.run(t, aliceToken, "destroy", "alice-json-watch", "--yes"), ExitOK)
	if code := w.exit(); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(w.out.String(), "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("want one JSON document per refresh, got %q", lines)
	}
	for i, line := range lines {
		var v StatusView
		decodeStrict(t, line, &v)
		last := i == len(lines)-1
		if (v.Sandbox.Status == statusDestroyed) != last || (v.Health == nil) != last {
			t.Errorf("line %d: status %s, health %v", i, v.Sandbox.Status, v.Health)
		}
	}
}

func TestWatchOfAMissingSandboxFails(t *testing.T) {
	s := newStack(t)
	w := startWatch(t, s, "status", "never-existed", "--json")
	select {
	case code := <-w.done:
		if code != ExitNotFound {
			t.Fatalf("exit %d, want %d", code, ExitNotFound)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the watch of a sandbox that never existed did not fail")
	}
	var doc errorDocument
	if err := json.Unmarshal([]byte(w.out.String()), &doc); err != nil || doc.Error.Code != "not_found" {
		t.Errorf("error document %q: %v", w.out.String(), err)
	}
}

// TestWatchFramesInPlace checks the redraw itself: on a terminal each frame goes over the
// previous one (cursor home, lines cleared to their end, the rest of the screen cleared);
// elsewhere frames follow each other after a blank line. A transient failure is shown in
// the frame and the watch goes on.
func TestWatchFramesInPlace(t *testing.T) {
	view := &StatusView{Sandbox: apiwire.Sandbox{Name: "alice-x", ID: "k3m9x2p7q4w8e1r5", Status: "running", TimeLeftSeconds: 3600}}
	clock := time.Date(2026, 1, 20, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	w := &watcher{w: &b, name: "alice-x", interval: 5 * time.Second, inPlace: true,
		now: func() time.Time { return clock }, loc: time.UTC}

	for i := range 2 {
		b.Reset()
		if done, err := w.step(view, nil); done || err != nil {
			t.Fatalf("step %d: %v %v", i, done, err)
		}
		frame := b.String()
		prefix := cursorHome
		if i == 0 {
			prefix += clearScreenDown
		}
		if !strings.HasPrefix(frame, prefix) || !strings.HasSuffix(frame, clearLineRight+"\n"+clearScreenDown) {
			t.Errorf("frame %d is not drawn in place: %q", i, frame)
		}
		if n, lines := strings.Count(frame, clearLineRight+"\n"), strings.Count(frame, "\n"); n != lines {
			t.Errorf("frame %d: %d of %d lines cleared to their end", i, n, lines)
		}
	}

	b.Reset()
	done, err := w.step(nil, &Error{Code: CodeUnreachable, Message: "cannot reach the API"})
	if done || err != nil {
		t.Fatalf("a transient failure ends the watch: %v %v", done, err)
	}
	mustContain(t, b.String(), "error: cannot reach the API (retrying in 5s)")

	done, err = w.step(nil, &Error{Code: "forbidden", Message: "not yours", Status: 403})
	if !done || err == nil {
		t.Errorf("a refusal ends the watch with its error: %v %v", done, err)
	}

	b.Reset()
	w.inPlace = false
	if done, err := w.step(nil, &Error{Code: "not_found", Status: 404}); !done || err != nil {
		t.Fatalf("not found after being seen is gone: %v %v", done, err)
	}
	if got := b.String(); !strings.HasPrefix(got, "\nEvery 5s:") || !strings.Contains(got, "Sandbox alice-x no longer exists") || strings.Contains(got, "\x1b") {
		t.Errorf("frame after a blank line, without escapes: %q", got)
	}
}
