package provision_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// groupAt reads the last id the sandbox's group delivered.
func groupAt(t *testing.T, rdb redis.UniversalClient, stream string) string {
	t.Helper()
	groups, err := rdb.XInfoGroups(context.Background(), stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Name == keys.EventsGroup {
			return g.LastDeliveredID
		}
	}
	t.Fatalf("no group %s on %s", keys.EventsGroup, stream)
	return ""
}

func mustID(t *testing.T, s string) keys.StreamID {
	t.Helper()
	id, ok := keys.ParseStreamID(s)
	if !ok {
		t.Fatalf("not an id: %q", s)
	}
	return id
}

// TestRewindGroup moves a stream's group with XGROUP SETID: to an id, to just before the
// first entry at or after a time, clamped to what the stream still holds once entries were
// lost, never forward; and tells a missing stream, a missing group and another type apart.
func TestRewindGroup(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id := sandbox.NewID()
	stream := keys.EventStream(id)

	if _, err := e.p.RewindGroup(ctx, id, provision.RewindTarget{}); !errors.Is(err, provision.ErrNoStream) {
		t.Fatalf("no stream: %v", err)
	}
	// Entries 1000-0, 1002-0 ... 1018-0 (every other millisecond), and 1018-1.
	for i := range 10 {
		if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: fmt.Sprintf("%d-0", 1000+2*i), Values: []string{"n", "x"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: "1018-1", Values: []string{"n", "x"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.RewindGroup(ctx, id, provision.RewindTarget{}); !errors.Is(err, provision.ErrNoGroup) {
		t.Fatalf("no group: %v", err)
	}
	if err := e.rdb.XGroupCreate(ctx, stream, keys.EventsGroup, "$").Err(); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name     string
		to       provision.RewindTarget
		position string
	}{
		{"an id", provision.RewindTarget{ID: mustID(t, "1004-0")}, "1004-0"},
		{"an id that is no entry", provision.RewindTarget{ID: mustID(t, "1005-7")}, "1005-7"},
		{"the millisecond of an entry", provision.RewindTarget{ByTime: true, Time: time.UnixMilli(1006)}, "1005-18446744073709551615"},
		{"a millisecond without one", provision.RewindTarget{ByTime: true, Time: time.UnixMilli(1007)}, "1007-18446744073709551615"},
		{"a time before every entry, nothing lost", provision.RewindTarget{ByTime: true, Time: time.UnixMilli(10)}, "999-18446744073709551615"},
		{"a time after every entry", provision.RewindTarget{ByTime: true, Time: time.UnixMilli(5000)}, "1018-1"},
		{"0-0, nothing lost", provision.RewindTarget{}, "0-0"},
	}
	for _, tc := range cases {
		if err := e.rdb.XGroupSetID(ctx, stream, keys.EventsGroup, "$").Err(); err != nil {
			t.Fatal(err)
		}
		rw, err := e.p.RewindGroup(ctx, id, tc.to)
		if err != nil || rw.Position != tc.position || rw.Previous != "1018-1" || rw.Clamped || rw.FirstID != "1000-0" ||
			rw.LastID != "1018-1" || rw.Length != 11 || rw.Key != stream || rw.Group != keys.EventsGroup {
			t.Errorf("%s: %+v %v, want position %s", tc.name, rw, err, tc.position)
		}
		if got := groupAt(t, e.rdb, stream); got != tc.position {
			t.Errorf("%s: the group is at %s, want %s", tc.name, got, tc.position)
		}
	}

	// Never forward: past what the group delivered is refused, and the group stays.
	if err := e.rdb.XGroupSetID(ctx, stream, keys.EventsGroup, "1003-0").Err(); err != nil {
		t.Fatal(err)
	}
	var ahead *provision.AheadError
	if _, err := e.p.RewindGroup(ctx, id, provision.RewindTarget{ID: mustID(t, "1005-0")}); !errors.As(err, &ahead) ||
		ahead.Position != "1005-0" || ahead.Delivered != "1003-0" {
		t.Errorf("forward: %v", err)
	}
	if got := groupAt(t, e.rdb, stream); got != "1003-0" {
		t.Errorf("a refused rewind moved the group to %s", got)
	}

	// Trimmed (the router's MAXLEN): a target before the oldest entry left is clamped to it.
	if err := e.rdb.XTrimMaxLen(ctx, stream, 4).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XGroupSetID(ctx, stream, keys.EventsGroup, "$").Err(); err != nil {
		t.Fatal(err)
	}
	for _, to := range []provision.RewindTarget{{}, {ID: mustID(t, "1002-0")}, {ByTime: true, Time: time.UnixMilli(1001)}} {
		rw, err := e.p.RewindGroup(ctx, id, to)
		if err != nil || !rw.Clamped || rw.FirstID != "1014-0" || rw.Position != "1013-18446744073709551615" || rw.Length != 4 {
			t.Errorf("trimmed, rewind to %+v: %+v %v", to, rw, err)
		}
	}
	// Deleted by the worker (XDEL) down to nothing: only the end is left.
	if err := e.rdb.XDel(ctx, stream, "1014-0", "1016-0", "1018-0", "1018-1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XGroupSetID(ctx, stream, keys.EventsGroup, "$").Err(); err != nil {
		t.Fatal(err)
	}
	if rw, err := e.p.RewindGroup(ctx, id, provision.RewindTarget{}); err != nil || !rw.Clamped || rw.FirstID != "" || rw.Position != "1018-1" {
		t.Errorf("emptied stream: %+v %v", rw, err)
	}

	// The stream key replaced by the sandbox's own code: not a stream.
	if err := e.rdb.Del(ctx, stream).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Set(ctx, stream, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.RewindGroup(ctx, id, provision.RewindTarget{}); !errors.Is(err, provision.ErrNotAStream) {
		t.Errorf("another type: %v", err)
	}
	if _, err := e.p.RewindGroup(ctx, "Not-An-Id", provision.RewindTarget{}); err == nil {
		t.Error("an invalid id was accepted")
	}
}
