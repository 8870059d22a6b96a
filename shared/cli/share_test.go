package cli

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// TestShareEndToEnd shares a sandbox the way its owner and collaborators use the CLI, on the
// local stack: share and list the shares, what a developer and a viewer may and may not do,
// how list and status mark a shared sandbox, unshare, and the command line's mistakes. Its
// transcript is docs/cli.md's (SANDBOX_CLI_TRANSCRIPT=file: file.share).
func TestShareEndToEnd(t *testing.T) {
	s := newStack(t)
	const name = "alice-shared"
	expect(t, s.run(t, aliceToken, "create", name, "--ttl", "2h", "--guild", guild1), ExitOK)
	r := s.run(t, aliceToken, "share", name)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Sandbox "+name+" is shared with nobody")

	r = s.run(t, aliceToken, "share", name, "--with", bob, "--role", "developer")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Shared sandbox "+name+" with bob as a developer", "rotates the one set of worker credentials")
	r = s.run(t, aliceToken, "share", name, "--with", carol)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Shared sandbox "+name+" with "+carol+" as a viewer")
	r = s.run(t, aliceToken, "share", name, "--with", carol, "--json")
	expect(t, r, ExitOK)
	var again apiwire.ShareResponse
	decodeStrict(t, r.stdout, &again)
	if again.Changed || again.Share.Role != "viewer" || again.Share.Principal != carol {
		t.Errorf("share again: %+v", again)
	}
	r = s.run(t, aliceToken, "share", name)
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `^PRINCIPAL +ROLE +SINCE +SHARED BY\nbob +developer +.* UTC +alice\n`+carol+` +viewer `)
	mustContain(t, r.stdout, "Sandbox "+name+" (owner alice) is shared with 2 principals.")

	// The developer: sees it in list and status with its role, connects, extends; the
	// audit log keeps its name; it neither destroys nor shares.
	expect(t, s.run(t, bobToken, "create", "bob-own", "--ttl", "1h"), ExitOK)
	r = s.run(t, bobToken, "list")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `^NAME +STATUS +OWNER +EXPIRES IN +GUILDS +SHARED\n`)
	mustMatch(t, r.stdout, `\nbob-own +running +bob +1h +- +-\n`)
	mustMatch(t, r.stdout, `\n`+name+` +running +alice +2h +`+guild1+` +developer\n`)
	r = s.run(t, bobToken, "status", name)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Owner      alice\nShared     with you as a developer\n")
	r = s.run(t, bobToken, "connect", name)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, `export SANDBOX_NAME="`+name+`"`)
	expect(t, s.run(t, bobToken, "extend", name, "--by", "1h"), ExitOK)
	expect(t, s.run(t, adminToken, "guilds", "register", guild2), ExitOK)
	expect(t, s.run(t, bobToken, "guilds", "add", name, guild2), ExitOK)
	expect(t, s.run(t, bobToken, "guilds", "remove", name, guild2), ExitOK)
	expect(t, s.run(t, bobToken, "events", name), ExitOK)
	sb, err := s.manager.GetByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	audit, err := s.manager.AuditLog(context.Background(), sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	actors := map[string]string{}
	for _, en := range audit {
		actors[en.Action] = en.Actor
	}
	if actors["sandbox.connect"] != bob || actors["sandbox.extend"] != bob || actors["sandbox.share"] != alice ||
		actors["guild.add"] != bob || actors["guild.remove"] != bob {
		t.Errorf("audit actors: %v", actors)
	}
	r = s.run(t, bobToken, "destroy", name, "--yes")
	expect(t, r, ExitAuth)
	mustContain(t, r.stderr, `sandbox "`+name+`" is shared with you as a developer; only its owner or an admin may do this [forbidden]`)
	expect(t, s.run(t, bobToken, "share", name, "--with", "ops-admin"), ExitAuth)

	// The viewer reads, and may not connect.
	r = s.run(t, carolToken, "status", name)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Shared     with you as a viewer")
	expect(t, s.run(t, carolToken, "events", name), ExitOK)
	expect(t, s.run(t, carolToken, "guilds", "list", name), ExitOK)
	for _, args := range [][]string{{"extend", name, "--by", "1h"}, {"guilds", "add", name, guild2},
		{"guilds", "remove", name, guild1}, {"destroy", name, "--yes"}, {"share", name, "--with", bob}, {"share", name}} {
		r = s.run(t, carolToken, args...)
		expect(t, r, ExitAuth)
		mustContain(t, r.stderr, "shared with you as a viewer")
	}
	r = s.run(t, carolToken, "connect", name)
	expect(t, r, ExitAuth)
	mustContain(t, r.stderr, "shared with you as a viewer; this needs a developer's share, its owner or an admin [forbidden]")
	if r.stdout != "" {
		t.Errorf("a refused connect prints nothing for eval: %q", r.stdout)
	}

	// Who the API takes for no principal, and the command line's mistakes.
	r = s.run(t, aliceToken, "share", name, "--with", alice)
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "alice owns sandbox", "[invalid_input]")
	r = s.run(t, aliceToken, "share", name, "--with", "mallory", "--json")
	expect(t, r, ExitUsage)
	if e := errorDoc(t, r); e.Code != "invalid_input" || e.Field != "principal" {
		t.Errorf("an unknown principal: %+v", e)
	}
	r = s.run(t, aliceToken, "share", name, "--with", bob, "--role", "admin")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `--role "admin" is neither viewer nor developer [usage]`)
	r = s.run(t, aliceToken, "share", name, "--role", "developer")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "--role needs --with")
	r = s.run(t, aliceToken, "unshare", name)
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "sandbox unshare needs --with")

	// Unshared: the next request is refused, and list no longer shows it.
	r = s.run(t, aliceToken, "unshare", name, "--with", bob)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Unshared sandbox "+name+" with bob (was a developer)",
		"bob had connected: the worker credentials are replaced", "every worker connects again with sandbox connect "+name)
	r = s.run(t, bobToken, "status", name)
	expect(t, r, ExitAuth)
	mustContain(t, r.stderr, "belongs to another owner")
	// The owner connects again, ending what the previous credentials opened, if anything.
	r = s.run(t, aliceToken, "connect", name, "--end-sessions")
	expect(t, r, ExitOK)
	mustContain(t, r.stderr, "# ended 0 database sessions and 0 Redis connections opened with the previous credentials")
	mustContain(t, r.stdout, `export SANDBOX_NAME="`+name+`"`)
	r = s.run(t, bobToken, "list")
	expect(t, r, ExitOK)
	if strings.Contains(r.stdout, name) || strings.Contains(r.stdout, "SHARED") {
		t.Errorf("bob still lists the sandbox: %s", r)
	}
	expect(t, s.run(t, aliceToken, "unshare", name, "--with", bob), ExitNotFound)
	audit, err = s.manager.AuditLog(context.Background(), sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	unshared, revoked := 0, 0
	for _, en := range audit {
		switch {
		case en.Action == "sandbox.unshare" && en.Actor == alice:
			unshared++
		case en.Action == "sandbox.revoke" && en.Actor == alice:
			revoked++
		}
	}
	if unshared != 1 || revoked != 1 {
		t.Errorf("%d sandbox.unshare and %d sandbox.revoke audit entries by alice, want 1 of each", unshared, revoked)
	}

	// Destroyed by its owner: the viewer's share ends with it.
	expect(t, s.run(t, aliceToken, "destroy", name, "--yes"), ExitOK)
	expect(t, s.run(t, carolToken, "status", name), ExitAuth)
	s.writeTranscriptAs(t, ".share")
}

// TestEventsRewindEndToEnd rewinds a stream a worker has read, on the local stack: the worker
// authenticates with what connect hands out and reads its group; after a rewind to an entry,
// to a time, and to before what the stream still holds (clamped), its next read delivers the
// entries again. Its transcript is docs/cli.md's (file.rewind).
func TestEventsRewindEndToEnd(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	const name = "alice-rewind"
	expect(t, s.run(t, aliceToken, "create", name, "--guild", guild1), ExitOK)
	s.route(t,
		gatewayEvent("msg-1", "MESSAGE_CREATE", guild1, 101),
		gatewayEvent("msg-2", "MESSAGE_UPDATE", guild1, 102),
		gatewayEvent("msg-3", "MESSAGE_DELETE", guild1, 103),
		gatewayEvent("msg-4", "TYPING_START", guild1, 104),
	)
	sb, err := s.manager.GetByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	ids := s.streamIDs(t, keys.EventStream(sb.ID))

	// The worker: the sandbox's own Redis user, from connect.
	r := s.run(t, aliceToken, "connect", name, "--json")
	expect(t, r, ExitOK)
	var conn apiwire.ConnectResponse
	decodeStrict(t, r.stdout, &conn)
	worker := testenv.NewRedisClient(t, redis.UniversalOptions{DB: testenv.RedisDBOf(s.rdb),
		Username: conn.Redis.Username, Password: conn.Redis.Password})
	read := func() []string {
		t.Helper()
		got := testenv.ReadGroup(t, worker, conn.Redis.Stream, conn.Redis.ConsumerGroup, "worker-1")
		if len(got) > 0 {
			if err := worker.XAck(ctx, conn.Redis.Stream, conn.Redis.ConsumerGroup, got...).Err(); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	if got := read(); len(got) != 4 {
		t.Fatalf("the worker read %v", got)
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("nothing new: %v", got)
	}

	r = s.run(t, aliceToken, "events", "rewind", name, "--to", ids[1])
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Rewound the consumer group workers of sandbox "+name, "every event after "+ids[1]+" again",
		"Was at   "+ids[3], "Now at   "+ids[1], "4 events, oldest "+ids[0])
	if got := read(); len(got) != 2 || got[0] != ids[2] {
		t.Errorf("after the rewind to %s the worker reads %v", ids[1], got)
	}
	// A time (the router's entries are from now): every entry from it on, for a developer too.
	expect(t, s.run(t, aliceToken, "share", name, "--with", bob, "--role", "developer"), ExitOK)
	r = s.run(t, bobToken, "events", "rewind", name, "--to", "10m", "--json")
	expect(t, r, ExitOK)
	var rw apiwire.RewindResponse
	decodeStrict(t, r.stdout, &rw)
	if rw.Clamped || rw.FirstID != ids[0] || rw.PreviousID != ids[3] || rw.To != "10m" || rw.Earliest == nil {
		t.Errorf("rewind --to 10m: %+v", rw)
	}
	if got := read(); len(got) != 4 {
		t.Errorf("after the rewind to 10m ago the worker reads %v", got)
	}
	audit, err := s.manager.AuditLog(ctx, sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	var rewinds []string
	for _, en := range audit {
		if en.Action == "sandbox.rewind" {
			rewinds = append(rewinds, en.Actor)
		}
	}
	if len(rewinds) != 2 || !slices.Contains(rewinds, alice) || !slices.Contains(rewinds, bob) {
		t.Errorf("sandbox.rewind audit entries by %v, want alice's and bob's", rewinds)
	}
	// Trimmed to the two newest (the router's MAXLEN): a rewind goes back to the oldest left.
	if err := s.rdb.XTrimMaxLen(ctx, keys.EventStream(sb.ID), 2).Err(); err != nil {
		t.Fatal(err)
	}
	r = s.run(t, aliceToken, "events", "rewind", name, "--to", ids[0])
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Clamped:", "the events before "+ids[2]+" were trimmed and are gone", "2 events, oldest "+ids[2])
	if got := read(); len(got) != 2 || got[0] != ids[2] {
		t.Errorf("after the clamped rewind the worker reads %v", got)
	}

	// Refusals: forward, a viewer, a target that is none, no --to.
	routeOne := []routing.Message{gatewayEvent("msg-5", "MESSAGE_CREATE", guild1, 105)}
	s.route(t, routeOne...)
	last := s.streamIDs(t, keys.EventStream(sb.ID))
	r = s.run(t, aliceToken, "events", "rewind", name, "--to", last[len(last)-1])
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "a rewind moves the group back, never past entries its workers have not read", "[invalid_input]")
	expect(t, s.run(t, aliceToken, "share", name, "--with", carol), ExitOK)
	expect(t, s.run(t, carolToken, "events", "rewind", name, "--to", "10m"), ExitAuth)
	r = s.run(t, aliceToken, "events", "rewind", name, "--to", "yesterday")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, `--to "yesterday" is neither an entry id`)
	r = s.run(t, aliceToken, "events", "rewind", name)
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "sandbox events rewind needs --to")
	// events NAME still reads, and a sandbox named like the command is reached after --.
	expect(t, s.run(t, aliceToken, "events", name), ExitOK)
	r = s.run(t, aliceToken, "events", "--", "rewind")
	expect(t, r, ExitNotFound)
	s.writeTranscriptAs(t, ".rewind")
}
