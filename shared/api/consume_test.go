package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// consume posts body to one of the consume routes (read, claim, ack) of name as principal.
func (e *env) consume(t *testing.T, principal, name, route, body string) reply {
	t.Helper()
	return e.do(t, call{method: "POST", path: "/v1/sandboxes/" + name + "/events/" + route, body: body, principal: principal})
}

// consumePage posts body and decodes the page of a 200.
func (e *env) consumePage(t *testing.T, name, route, body string) apiwire.ConsumePage {
	t.Helper()
	r := e.consume(t, alice, name, route, body)
	wantStatus(t, r, 200)
	if cc := r.headers["Cache-Control"]; cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	return decode[apiwire.ConsumePage](t, r)
}

func entryIDs(p apiwire.ConsumePage) []string {
	out := make([]string, len(p.Entries))
	for i, en := range p.Entries {
		out[i] = en.ID
	}
	return out
}

// TestConsumeReadsAcksAndClaims routes events through the real router and consumes them
// through the API as Redis's consumer groups do: new entries once per group, the payload
// byte for byte, pending entries until acknowledged, a dead consumer's entries claimed.
func TestConsumeReadsAcksAndClaims(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha", guild1)
	ctx := context.Background()
	bodies := []string{
		dispatch("MESSAGE_CREATE", guild1, 1, "one <&> \u00e9"),
		dispatch("TYPING_START", guild1, 2, "two"),
		`{"op":0, "t":"GUILD_MEMBER_ADD", "s":3, "d":{"guild_id":"` + guild1 + `"}}`, // spaces kept
	}
	routeEvents(t, e, 1, time.Now(), bodies...)

	p := e.consumePage(t, "alpha", "read", `{"consumer":"c1","count":2}`)
	if p.Group != keys.EventsGroup || p.Consumer != "c1" || p.Stream != sb.Stream || len(p.Entries) != 2 || p.More || p.GroupCreated {
		t.Fatalf("first read: %+v", p)
	}
	for i, en := range p.Entries {
		if string(en.Payload) != bodies[i] || en.MessageID != fmt.Sprintf("msg-%d", 1+i) || en.GuildID != guild1 ||
			en.Seq == nil || *en.Seq != int64(1+i) || en.ReceivedAt == nil || en.Size != len(bodies[i]) {
			t.Errorf("entry %d: %+v", i, en)
		}
	}
	if p.Next != p.Entries[1].ID {
		t.Errorf("next %q, want the last entry's id", p.Next)
	}
	p2 := e.consumePage(t, "alpha", "read", `{"consumer":"c2","count":10}`)
	if len(p2.Entries) != 1 || string(p2.Entries[0].Payload) != bodies[2] {
		t.Fatalf("another consumer gets only what nobody got: %+v", p2)
	}
	if p := e.consumePage(t, "alpha", "read", `{"consumer":"c1"}`); len(p.Entries) != 0 || p.More {
		t.Fatalf("nothing new: %+v", p)
	}
	// c1's pending entries, from the first on; then acknowledged ones are no longer pending.
	pending := e.consumePage(t, "alpha", "read", `{"consumer":"c1","after":"0-0"}`)
	if fmt.Sprint(entryIDs(pending)) != fmt.Sprint(entryIDs(p)) {
		t.Fatalf("pending %v, want %v", entryIDs(pending), entryIDs(p))
	}
	r := e.consume(t, alice, "alpha", "ack", `{"ids":["`+p.Entries[0].ID+`","`+p.Entries[0].ID+`","1-0"]}`)
	wantStatus(t, r, 200)
	if ack := decode[apiwire.ConsumeAckResponse](t, r); ack.Acknowledged != 1 || ack.Group != keys.EventsGroup {
		t.Fatalf("ack: %+v", ack)
	}
	if p := e.consumePage(t, "alpha", "read", `{"consumer":"c1","after":"0-0"}`); len(p.Entries) != 1 || p.Entries[0].ID != pending.Entries[1].ID {
		t.Fatalf("pending after the ack: %v", entryIDs(p))
	}
	// A pending read that fills its count says more, and goes on after next.
	if p := e.consumePage(t, "alpha", "read", `{"consumer":"c1","after":"0-0","count":1}`); !p.More || p.Next != pending.Entries[1].ID {
		t.Fatalf("a full pending page: %+v", p)
	}

	// Claims: nothing is idle for a minute yet; made idle, c2's entry moves to c3.
	if p := e.consumePage(t, "alpha", "claim", `{"consumer":"c3"}`); len(p.Entries) != 0 || p.Next != "0-0" {
		t.Fatalf("claim of nothing idle: %+v", p)
	}
	if err := e.rdb.Do(ctx, "XCLAIM", sb.Stream, keys.EventsGroup, "c2", 0, p2.Entries[0].ID, "IDLE", 120000, "JUSTID").Err(); err != nil {
		t.Fatal(err)
	}
	c := e.consumePage(t, "alpha", "claim", `{"consumer":"c3","min_idle":"1m","count":5}`)
	if len(c.Entries) != 1 || c.Entries[0].ID != p2.Entries[0].ID || string(c.Entries[0].Payload) != bodies[2] || c.Next != "0-0" {
		t.Fatalf("claim: %+v", c)
	}
	if p := e.consumePage(t, "alpha", "read", `{"consumer":"c3","after":"0-0"}`); len(p.Entries) != 1 {
		t.Fatalf("the claimed entry is c3's now: %+v", p)
	}
	if p := e.consumePage(t, "alpha", "read", `{"consumer":"c2","after":"0-0"}`); len(p.Entries) != 0 {
		t.Fatalf("and no longer c2's: %+v", p)
	}

	// An entry deleted while pending: a pending read lists it as deleted, and so does a claim.
	if err := e.rdb.XDel(ctx, sb.Stream, pending.Entries[1].ID).Err(); err != nil {
		t.Fatal(err)
	}
	if p := e.consumePage(t, "alpha", "read", `{"consumer":"c1","after":"0-0"}`); len(p.Entries) != 0 ||
		fmt.Sprint(p.Deleted) != "["+pending.Entries[1].ID+"]" || p.Next != pending.Entries[1].ID {
		t.Fatalf("a deleted pending entry: %+v", p)
	}
}

// TestConsumeWaitsForNewEntries: a read with wait answers as soon as an entry arrives, or
// empty when the wait ends.
func TestConsumeWaitsForNewEntries(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.create(t, alice, "alpha", guild1)
	start := time.Now()
	if p := e.consumePage(t, "alpha", "read", `{"consumer":"c1","wait":"1s"}`); len(p.Entries) != 0 {
		t.Fatalf("nothing arrives: %+v", p)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("an empty wait of 1s took %s", d)
	}
	done := make(chan apiwire.ConsumePage)
	go func() {
		r := e.consume(t, alice, "alpha", "read", `{"consumer":"c1","wait":"20s"}`)
		done <- decode[apiwire.ConsumePage](t, r)
	}()
	// The entry arrives while the read waits, or just before it: either way it answers at once.
	time.Sleep(200 * time.Millisecond)
	start = time.Now()
	routeEvents(t, e, 1, time.Now(), dispatch("MESSAGE_CREATE", guild1, 1, "hello"))
	select {
	case p := <-done:
		if len(p.Entries) != 1 || p.Entries[0].Type != "MESSAGE_CREATE" {
			t.Fatalf("woken read: %+v", p)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the waiting read answered %s after the entry", d)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("the waiting read never answered")
	}
}

// TestConsumeGroupsAndStreamState: a named group is created at the stream's start, a bounded
// number of them; a stream that is gone is never created again; a sandbox that is not running
// is refused.
func TestConsumeGroupsAndStreamState(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha", guild1)
	ctx := context.Background()
	routeEvents(t, e, 1, time.Now(), dispatch("MESSAGE_CREATE", guild1, 1, "a"), dispatch("MESSAGE_CREATE", guild1, 2, "b"))
	e.consumePage(t, "alpha", "read", `{"consumer":"w1","count":100}`) // the workers group has read them

	p := e.consumePage(t, "alpha", "read", `{"group":"laptop","consumer":"f1","count":100}`)
	if !p.GroupCreated || p.Group != "laptop" || len(p.Entries) != 2 {
		t.Fatalf("a new group starts at the stream's start: %+v", p)
	}
	if p := e.consumePage(t, "alpha", "read", `{"group":"laptop","consumer":"f1"}`); p.GroupCreated || len(p.Entries) != 0 {
		t.Fatalf("the group exists now: %+v", p)
	}
	wantProblem(t, e.consume(t, alice, "alpha", "claim", `{"group":"nogroup","consumer":"f1"}`), 404, sandbox.CodeNotFound, "")
	// XACK of a group that does not exist acknowledges nothing, as Redis answers it.
	if r := e.consume(t, alice, "alpha", "ack", `{"group":"nogroup","ids":["1-0"]}`); r.status != 200 ||
		decode[apiwire.ConsumeAckResponse](t, r).Acknowledged != 0 {
		t.Fatalf("ack in a missing group: %d %s", r.status, r.body)
	}
	for i := 2; i < provision.MaxGroups; i++ {
		e.consumePage(t, "alpha", "read", fmt.Sprintf(`{"group":"g%d","consumer":"f1","count":1}`, i))
	}
	wantProblem(t, e.consume(t, alice, "alpha", "read", `{"group":"one-too-many","consumer":"f1"}`), 409, sandbox.CodeQuotaExceeded, "")

	// The sandbox's own user deleted its stream: no read creates it again.
	if err := e.rdb.Del(ctx, sb.Stream).Err(); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"consumer":"f1"}`, `{"group":"fresh","consumer":"f1"}`, `{"consumer":"f1","wait":"1s"}`} {
		wantProblem(t, e.consume(t, alice, "alpha", "read", body), 404, sandbox.CodeNotFound, "")
	}
	wantProblem(t, e.consume(t, alice, "alpha", "claim", `{"consumer":"f1"}`), 404, sandbox.CodeNotFound, "")
	if n := e.rdb.Exists(ctx, sb.Stream).Val(); n != 0 {
		t.Fatal("a read created the stream again")
	}
	if err := e.rdb.Set(ctx, sb.Stream, "a string", 0).Err(); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, e.consume(t, alice, "alpha", "read", `{"consumer":"f1"}`), 404, sandbox.CodeNotFound, "")

	// Destroyed: refused before Redis is asked.
	e.create(t, alice, "beta", guild2)
	wantStatus(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/beta", principal: alice}), 202)
	for _, route := range []string{"read", "claim", "ack"} {
		wantProblem(t, e.consume(t, alice, "beta", route, map[string]string{
			"read": `{"consumer":"f1"}`, "claim": `{"consumer":"f1"}`, "ack": `{"ids":["1-0"]}`}[route]), 409, sandbox.CodeInvalidTransition, "")
	}
}

// TestConsumeBoundsHostileEntries: what the sandbox's own user writes is bounded like the
// events route bounds it, and a payload budget splits a read whose entries stay pending.
func TestConsumeBoundsHostileEntries(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha", guild1)
	ctx := context.Background()
	add := func(values ...string) string {
		id, err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: sb.Stream, Values: values}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	add(keys.StreamFieldType, "\x1b[31m"+strings.Repeat("X", 1000), keys.StreamFieldPayload, "not json \x00\xff", keys.StreamFieldSeq, "abc")
	add("unrelated", "field")
	pad := strings.Repeat("x", 1200<<10)
	big := []string{add(keys.StreamFieldPayload, pad), add(keys.StreamFieldPayload, pad), add(keys.StreamFieldPayload, pad)}
	huge := add(keys.StreamFieldPayload, strings.Repeat("y", 4<<20))

	p := e.consumePage(t, "alpha", "read", `{"consumer":"c1","count":100}`)
	if len(p.Entries) != 4 || !p.More || p.Next != big[1] {
		t.Fatalf("the budget stops the answer after the second big payload: %d entries, more %v, next %s", len(p.Entries), p.More, p.Next)
	}
	if en := p.Entries[0]; len(en.Type) > 131 || string(en.Payload) != "not json \x00\xff" || en.Seq != nil {
		t.Errorf("a worker's entry: %+v", en)
	}
	// The rest were delivered: they are pending on c1, after next.
	rest := e.consumePage(t, "alpha", "read", `{"consumer":"c1","after":"`+p.Next+`","count":100}`)
	if len(rest.Entries) != 2 || rest.Entries[0].ID != big[2] || rest.Entries[1].ID != huge || !rest.Entries[1].PayloadOmitted ||
		rest.Entries[1].Payload != nil || rest.Entries[1].Size != 4<<20 {
		t.Fatalf("the rest: %d entries", len(rest.Entries))
	}
	body, _ := json.Marshal(apiwire.ConsumeAckRequest{IDs: append(entryIDs(p), entryIDs(rest)...)})
	r := e.consume(t, alice, "alpha", "ack", string(body))
	wantStatus(t, r, 200)
	if ack := decode[apiwire.ConsumeAckResponse](t, r); ack.Acknowledged != 6 {
		t.Fatalf("ack: %+v", ack)
	}
}

// TestConsumeBadInput: every malformed field is refused, naming it, and nothing changes.
func TestConsumeBadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.create(t, alice, "alpha", guild1)
	cases := []struct{ route, body, field string }{
		{"read", `{}`, "consumer"},
		{"read", `{"consumer":""}`, "consumer"},
		{"read", `{"consumer":"has space"}`, "consumer"},
		{"read", `{"consumer":"-dash-first"}`, "consumer"},
		{"read", `{"consumer":"` + strings.Repeat("c", 65) + `"}`, "consumer"},
		{"read", `{"consumer":"c1","group":"a*b"}`, "group"},
		{"read", `{"consumer":"c1","group":"` + strings.Repeat("g", 65) + `"}`, "group"},
		{"read", `{"consumer":"c\u00e91"}`, "consumer"},
		{"read", `{"consumer":"c1","count":0}`, "count"},
		{"read", `{"consumer":"c1","count":101}`, "count"},
		{"read", `{"consumer":"c1","count":"10"}`, "count"},
		{"read", `{"consumer":"c1","wait":"21s"}`, "wait"},
		{"read", `{"consumer":"c1","wait":"-1s"}`, "wait"},
		{"read", `{"consumer":"c1","wait":"soon"}`, "wait"},
		{"read", `{"consumer":"c1","wait":"1s","after":"0-0"}`, "wait"},
		{"read", `{"consumer":"c1","after":">"}`, "after"},
		{"read", `{"consumer":"c1","after":"1"}`, "after"},
		{"read", `{"consumer":"c1","after":"18446744073709551616-0"}`, "after"},
		{"claim", `{}`, "consumer"},
		{"claim", `{"consumer":"c1","min_idle":"500ms"}`, "min_idle"},
		{"claim", `{"consumer":"c1","min_idle":"2d"}`, "min_idle"},
		{"claim", `{"consumer":"c1","start":"x"}`, "start"},
		{"claim", `{"consumer":"c1","count":1000}`, "count"},
		{"claim", `{"consumer":"c1","group":"a b"}`, "group"},
		{"ack", `{}`, "ids"},
		{"ack", `{"ids":[]}`, "ids"},
		{"ack", `{"ids":["1-0","nope"]}`, "ids"},
		{"ack", `{"ids":["1-0"],"group":"$"}`, "group"},
		{"ack", `{"ids":["1-0"],"consumer":"c1"}`, "consumer"},
		{"ack", `{"ids":[` + strings.Repeat(`"1-0",`, 500) + `"1-0"]}`, "ids"},
	}
	for _, tc := range cases {
		t.Run(tc.route+" "+tc.body[:min(len(tc.body), 60)], func(t *testing.T) {
			before := e.snapshot(t)
			wantProblem(t, e.consume(t, alice, "alpha", tc.route, tc.body), 400, sandbox.CodeInvalidInput, tc.field)
			e.unchanged(t, before)
		})
	}
	// Bad input is refused the same way on someone else's sandbox: before the owner check.
	wantProblem(t, e.consume(t, bob, "alpha", "read", `{}`), 400, sandbox.CodeInvalidInput, "consumer")
}
