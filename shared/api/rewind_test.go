package api_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// fill appends n entries to a sandbox's stream, one second apart from an hour ago, and
// returns their ids.
func (e *env) fill(t *testing.T, stream string, n int) []string {
	t.Helper()
	base := time.Now().Add(-time.Hour).UnixMilli()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.FormatInt(base+int64(i)*1000, 10) + "-0"
		if err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, ID: ids[i],
			Values: []string{keys.StreamFieldType, "MESSAGE_CREATE", keys.StreamFieldMessageID, "m" + strconv.Itoa(i)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// readGroup reads as a worker of the group does (XREADGROUP ... >) and returns the ids.
func (e *env) readGroup(t *testing.T, stream, consumer string) []string {
	t.Helper()
	return testenv.ReadGroup(t, e.rdb, stream, keys.EventsGroup, consumer)
}

func (e *env) rewind(t *testing.T, principal, name, to string) (reply, apiwire.RewindResponse) {
	t.Helper()
	body, _ := json.Marshal(apiwire.RewindRequest{To: to})
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes/" + name + "/events/rewind", body: string(body), principal: principal})
	var out apiwire.RewindResponse
	if r.status == 200 {
		out = decode[apiwire.RewindResponse](t, r)
	}
	return r, out
}

// TestRewindRereadsTheStream: a rewind to an entry id or a time makes the workers' next
// XREADGROUP ... > deliver the entries after it again, acknowledged or not; pending entries
// stay pending and move to the consumer that reads them again; the answer says where the
// group was and is; the audit log records who rewound.
func TestRewindRereadsTheStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha")
	ids := e.fill(t, sb.Stream, 5)
	if got := e.readGroup(t, sb.Stream, "w1"); len(got) != 5 {
		t.Fatalf("first read: %v", got)
	}
	if err := e.rdb.XAck(context.Background(), sb.Stream, keys.EventsGroup, ids[:4]...).Err(); err != nil {
		t.Fatal(err)
	}

	// After an entry id: the entries after it, once more.
	r, rw := e.rewind(t, alice, "alpha", ids[1])
	wantStatus(t, r, 200)
	if rw.PreviousID != ids[4] || rw.Position != ids[1] || rw.Clamped || rw.FirstID != ids[0] || rw.Length != 5 ||
		rw.Pending != 1 || rw.Group != keys.EventsGroup || rw.Stream != sb.Stream ||
		rw.Earliest == nil || rw.Earliest.UnixMilli() != mustMS(t, ids[0]) {
		t.Errorf("rewind to %s: %+v", ids[1], rw)
	}
	got := e.readGroup(t, sb.Stream, "w2")
	if len(got) != 3 || got[0] != ids[2] || got[2] != ids[4] {
		t.Errorf("after the rewind the group delivers %v, want %v", got, ids[2:])
	}
	// The entry w1 had not acknowledged is now w2's, delivered once again.
	pending, err := e.rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{Stream: sb.Stream, Group: keys.EventsGroup,
		Start: "-", End: "+", Count: 10}).Result()
	if err != nil || len(pending) != 3 {
		t.Fatalf("pending %v %v", pending, err)
	}
	for _, p := range pending {
		if p.Consumer != "w2" || p.RetryCount != 1 {
			t.Errorf("pending entry %+v: want consumer w2, delivered once", p)
		}
	}

	// Since a time: from the first entry appended at or after it; the developer may too.
	e.shareWith(t, alice, "alpha", dave, "developer")
	at := time.UnixMilli(mustMS(t, ids[3])).UTC().Format(time.RFC3339Nano)
	r, rw = e.rewind(t, dave, "alpha", at)
	wantStatus(t, r, 200)
	if want := prevID(t, ids[3]); rw.Position != want || rw.Clamped || rw.To != at {
		t.Errorf("rewind to %s: position %s, want %s: %+v", at, rw.Position, want, rw)
	}
	if got := e.readGroup(t, sb.Stream, "w1"); len(got) != 2 || got[0] != ids[3] {
		t.Errorf("after the rewind to a time the group delivers %v", got)
	}
	rewinds := e.auditOf(t, sb.ID, controlplane.ActionRewind)
	var d map[string]any
	if len(rewinds) != 2 || rewinds[0].Actor != alice || rewinds[1].Actor != dave ||
		json.Unmarshal(rewinds[1].Details, &d) != nil || d["to"] != at || d["position"] != rw.Position || d["previous_id"] != ids[4] {
		t.Errorf("rewind audit: %+v", rewinds)
	}

	// A duration: that long ago, here before every entry, and nothing was trimmed: no clamp.
	r, rw = e.rewind(t, alice, "alpha", "2h")
	wantStatus(t, r, 200)
	if rw.Position != prevID(t, ids[0]) || rw.Clamped {
		t.Errorf("rewind 2h: %+v", rw)
	}
}

// TestRewindClampsToWhatTheStreamHolds: entries trimmed by MAXLEN are gone; a rewind to
// before the oldest entry left starts at that entry and says so.
func TestRewindClampsToWhatTheStreamHolds(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha")
	ids := e.fill(t, sb.Stream, 5)
	e.readGroup(t, sb.Stream, "w1")
	if err := e.rdb.XTrimMaxLen(context.Background(), sb.Stream, 2).Err(); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{ids[0], "0-0", time.UnixMilli(mustMS(t, ids[1])).UTC().Format(time.RFC3339)} {
		r, rw := e.rewind(t, alice, "alpha", to)
		wantStatus(t, r, 200)
		if !rw.Clamped || rw.FirstID != ids[3] || rw.Position != prevID(t, ids[3]) || rw.Length != 2 {
			t.Errorf("rewind to %s after trimming: %+v", to, rw)
		}
		if got := e.readGroup(t, sb.Stream, "w1"); len(got) != 2 || got[0] != ids[3] {
			t.Errorf("after a clamped rewind the group delivers %v", got)
		}
	}
	// At the first entry still held, nothing before it is asked for: not clamped.
	r, rw := e.rewind(t, alice, "alpha", prevID(t, ids[3]))
	wantStatus(t, r, 200)
	if rw.Clamped {
		t.Errorf("a rewind to just before the first entry is not clamped: %+v", rw)
	}
}

// TestRewindRefusals: what a rewind cannot do is refused, and nothing changes.
func TestRewindRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha")
	ids := e.fill(t, sb.Stream, 3)
	if got := e.readGroup(t, sb.Stream, "w1"); len(got) != 3 {
		t.Fatal(got)
	}
	if err := e.rdb.XGroupSetID(context.Background(), sb.Stream, keys.EventsGroup, ids[1]).Err(); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		to     string
		status int
		code   sandbox.Code
	}{
		{ids[2], 400, sandbox.CodeInvalidInput}, // after what the group delivered: not a rewind
		{future, 400, sandbox.CodeInvalidInput}, // no entry is there yet
		{"", 400, sandbox.CodeInvalidInput},     // required
		{"yesterday", 400, sandbox.CodeInvalidInput},
		{"-5m", 400, sandbox.CodeInvalidInput},
		{"1-2-3", 400, sandbox.CodeInvalidInput},
	} {
		before := e.snapshot(t)
		r, _ := e.rewind(t, alice, "alpha", tc.to)
		wantProblem(t, r, tc.status, tc.code, "to")
		e.unchanged(t, before)
	}
	// The group or the stream deleted by the sandbox's own worker: nothing to rewind.
	if err := e.rdb.XGroupDestroy(context.Background(), sb.Stream, keys.EventsGroup).Err(); err != nil {
		t.Fatal(err)
	}
	r, _ := e.rewind(t, alice, "alpha", "0-0")
	wantProblem(t, r, 409, sandbox.CodeInvalidTransition, "")
	if err := e.rdb.Del(context.Background(), sb.Stream).Err(); err != nil {
		t.Fatal(err)
	}
	r, _ = e.rewind(t, alice, "alpha", "0-0")
	wantProblem(t, r, 409, sandbox.CodeInvalidTransition, "")
	// Expired: no event arrives any more, and no worker credentials either.
	if _, err := e.pool.Exec(context.Background(), `UPDATE sandbox_control.sandboxes SET expires_at = now() - interval '1 minute',
		created_at = now() - interval '1 hour' WHERE id = $1`, sb.ID); err != nil {
		t.Fatal(err)
	}
	r, _ = e.rewind(t, alice, "alpha", "0-0")
	wantProblem(t, r, 409, sandbox.CodeInvalidTransition, "")
	if n := len(e.auditOf(t, sb.ID, controlplane.ActionRewind)); n != 0 {
		t.Errorf("%d refused rewinds were audited", n)
	}
}

func mustMS(t *testing.T, id string) int64 {
	t.Helper()
	sid, ok := keys.ParseStreamID(id)
	if !ok {
		t.Fatalf("not an id: %q", id)
	}
	return int64(sid.MS)
}

func prevID(t *testing.T, id string) string {
	t.Helper()
	sid, ok := keys.ParseStreamID(id)
	if !ok {
		t.Fatalf("not an id: %q", id)
	}
	return sid.Prev().String()
}
