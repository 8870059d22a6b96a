package cli

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// TestUsageEndToEnd shows what sandboxes used, on the local stack, with events the real router
// routed: status's Usage block, list --wide's usage columns, and list's IDLE flag on a
// sandbox without an event for SANDBOX_IDLE_AFTER. The counts are the router's (events
// routed), the stream's and its group's (length, pending), the catalog's (schema size) and the
// cleanup's keyspace pass (keys). Its transcript is docs/cli.md's (file.usage).
func TestUsageEndToEnd(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	const name, quiet = "alice-usage", "alice-quiet"
	expect(t, s.run(t, aliceToken, "create", name, "--ttl", "2h", "--guild", guild1), ExitOK)
	expect(t, s.run(t, aliceToken, "create", quiet, "--ttl", "2h"), ExitOK)
	sb, err := s.manager.GetByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}

	// Before any event: nothing routed, keys not counted yet.
	r := s.run(t, aliceToken, "status", name)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "\nUsage\n  Events  none routed yet\n  Stream  0 entries, 0 pending\n",
		"  Keys    not counted yet (the cleanup counts them every run)\n", "  Idle    no (idle after 6h without an event)\n")

	// Five events routed; a worker reads two of them and acknowledges none; the sandbox's
	// code creates a table with rows; the cleanup's pass counts the keys.
	for i := 1; i <= 5; i++ {
		s.route(t, gatewayEvent(fmt.Sprintf("msg-%d", i), "MESSAGE_CREATE", guild1, 100+i))
	}
	if err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: keys.EventsGroup, Consumer: "worker-1",
		Streams: []string{keys.EventStream(sb.ID), ">"}, Count: 2, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s.notes AS SELECT g AS id, repeat('x', 200) AS body FROM generate_series(1, 500) g`,
		sandbox.SchemaName(sb.ID))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s.notes OWNER TO %s`, sandbox.SchemaName(sb.ID), sandbox.RoleName(sb.ID))); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.Set(ctx, keys.Namespace(sb.ID)+"cache:greeting", "hello", 0).Err(); err != nil {
		t.Fatal(err)
	}
	expect(t, s.run(t, adminToken, "cleanup", "run"), ExitOK)
	var nsKeys []string
	iter := s.rdb.Scan(ctx, 0, keys.Namespace(sb.ID)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		nsKeys = append(nsKeys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}

	r = s.run(t, aliceToken, "status", name, "--json")
	expect(t, r, ExitOK)
	var view StatusView
	decodeStrict(t, r.stdout, &view)
	u := view.Sandbox.Usage
	if u == nil || u.EventsRouted != 5 || u.StreamLength != 5 || u.StreamPending != 2 || u.LastEventAt == nil ||
		u.Keys == nil || *u.Keys != int64(len(nsKeys)) || u.KeysCountedAt == nil || u.SchemaBytes < 100_000 ||
		u.CatalogBytes == nil || *u.CatalogBytes <= 0 || u.CatalogCountedAt == nil ||
		u.RedisBytes == nil || *u.RedisBytes <= 0 || u.RedisBytesLimit != sandbox.RedisMemoryLimit ||
		u.Idle || u.IdleAfterSeconds != int64(6*time.Hour/time.Second) || len(u.Unavailable) != 0 {
		t.Fatalf("usage after 5 routed events, 2 read, %d keys: %+v", len(nsKeys), u)
	}
	r = s.run(t, aliceToken, "status", name)
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `\nUsage\n  Events  5 routed, the last at .* UTC \(\d+s ago\)\n  Stream  5 entries, 2 pending\n  Schema  \d+\.\d KiB, and \d+\.\d KiB in the catalogs \(counted by the cleanup \d+s ago\)\n  Keys    `+
		strconv.Itoa(len(nsKeys))+`, \d+\.\d KiB of the 128\.0 MiB a sandbox may hold \(counted by the cleanup \d+s ago\)\n  Idle    no \(idle after 6h without an event\)\n`)

	// A sandbox created seven hours ago without an event since is idle: list flags it.
	if _, err := s.pool.Exec(ctx, `UPDATE sandbox_control.sandboxes SET created_at = now() - interval '7 hours' WHERE name = $1`, quiet); err != nil {
		t.Fatal(err)
	}
	r = s.run(t, aliceToken, "list")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `^NAME +STATUS +OWNER +EXPIRES IN +GUILDS +IDLE\n`)
	mustMatch(t, r.stdout, `\n`+quiet+` +running +alice +2h +- +7h\n`)
	mustMatch(t, r.stdout, `\n`+name+` +running +alice +2h +`+guild1+` +-\n`)
	mustContain(t, r.stdout, "2 sandboxes\n1 sandbox is idle (no event for 6h or more): sandbox destroy NAME the ones no longer needed.\n")
	r = s.run(t, aliceToken, "list", "--wide")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `^NAME +ID +STATUS +OWNER +EXPIRES IN +GUILDS +EVENTS +LAST EVENT +STREAM +PENDING +SCHEMA +KEYS +IDLE\n`)
	mustMatch(t, r.stdout, `\n`+name+` +`+sb.ID+` +running +alice +2h +`+guild1+` +5 +\d+s ago +5 +2 +\d+\.\d KiB +`+strconv.Itoa(len(nsKeys))+` +-\n`)
	mustMatch(t, r.stdout, `\n`+quiet+` +[a-z0-9]+ +running +alice +2h +- +0 +- +0 +0 +\d+\.\d KiB +1 +7h\n`)
	r = s.run(t, aliceToken, "status", quiet)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "  Idle    yes: no event for 7h (idle after 6h); destroy it if it is no longer needed\n")

	// A destroyed sandbox has no usage; the hash went with its teardown.
	expect(t, s.run(t, aliceToken, "destroy", quiet, "--yes"), ExitOK)
	r = s.run(t, aliceToken, "list", "--json", "--include-destroyed")
	expect(t, r, ExitOK)
	var listed listResult
	decodeStrict(t, r.stdout, &listed)
	for _, got := range listed.Sandboxes {
		if (got.Name == quiet) != (got.Usage == nil) {
			t.Errorf("%s (%s) usage %+v", got.Name, got.Status, got.Usage)
		}
	}
	s.writeTranscriptAs(t, ".usage")
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 90112: "88.0 KiB",
		5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB", 2 << 40: "2.0 TiB", 4096 << 40: "4096.0 TiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
