package provision_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// A sandbox's code cannot forge its usage: its Redis user is refused every write, read and
// script on its usage hash, which lives outside its namespace, while its own keys stay
// writable (the control).
func TestSandboxCannotTouchItsUsage(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, _ := provisioned(t, e)
	creds := rotated(t, e, id)
	usage := keys.Usage(id)
	if err := e.rdb.HSet(ctx, usage, keys.UsageFieldEvents, 3).Err(); err != nil {
		t.Fatal(err)
	}
	sb := asSandbox(t, e, creds)
	if err := sb.HSet(ctx, keys.Namespace(id)+"h", "f", 1).Err(); err != nil {
		t.Fatalf("the sandbox cannot write its own keys: %v: this test proves nothing", err)
	}
	for name, f := range map[string]func() error{
		"HSET":           func() error { return sb.HSet(ctx, usage, keys.UsageFieldEvents, 999999).Err() },
		"HINCRBY":        func() error { return sb.HIncrBy(ctx, usage, keys.UsageFieldEvents, 1).Err() },
		"HGETALL":        func() error { return sb.HGetAll(ctx, usage).Err() },
		"DEL":            func() error { return sb.Del(ctx, usage).Err() },
		"UNLINK":         func() error { return sb.Unlink(ctx, usage).Err() },
		"RENAME onto it": func() error { return sb.Rename(ctx, keys.Namespace(id)+"h", usage).Err() },
		"COPY onto it":   func() error { return sb.Copy(ctx, keys.Namespace(id)+"h", usage, 0, true).Err() },
		"EVAL declared": func() error {
			return sb.Eval(ctx, "return redis.call('HSET', KEYS[1], 'events', 1)", []string{usage}).Err()
		},
		"EVAL undeclared": func() error { return sb.Eval(ctx, "return redis.call('DEL', '"+usage+"')", nil).Err() },
	} {
		if err := f(); !refusal(err) {
			t.Errorf("%s on its usage hash: got %v, want a refusal", name, err)
		}
	}
	if got, _ := e.rdb.HGet(ctx, usage, keys.UsageFieldEvents).Result(); got != "3" {
		t.Errorf("the usage hash says %q events after the attempts, want 3", got)
	}
}

// RedisUsage reads the counters, the stream's length and its group's pending entries of many
// sandboxes at once; a sandbox with no hash, or no stream any more, reads as zeros; and one
// whose own code put a string in place of its stream reads as unusable, failing nobody's read.
func TestRedisUsage(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	busy, _ := provisioned(t, e)
	quiet, _ := provisioned(t, e)
	broken, _ := provisioned(t, e)
	gone := sandbox.NewID()
	if err := e.rdb.Set(ctx, keys.EventStream(broken), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1767000000123).UTC()
	if err := e.rdb.HSet(ctx, keys.Usage(busy), keys.UsageFieldEvents, 7, keys.UsageFieldLastEventMS, at.UnixMilli(),
		keys.UsageFieldKeys, 4, keys.UsageFieldMemory, 5120, keys.UsageFieldKeysCountedMS, at.UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.EventStream(busy), Values: []string{"n", strconv.Itoa(i)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: keys.EventsGroup, Consumer: "w",
		Streams: []string{keys.EventStream(busy), ">"}, Count: 2}).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := e.p.RedisUsage(ctx, []string{busy, quiet, broken, gone})
	if err != nil {
		t.Fatal(err)
	}
	b := got[busy]
	if b.Events != 7 || b.LastEventAt == nil || !b.LastEventAt.Equal(at) || b.Keys == nil || *b.Keys != 4 ||
		b.Memory == nil || *b.Memory != 5120 ||
		b.KeysCountedAt == nil || !b.Stream.Exists || b.Stream.Length != 3 || b.Stream.Pending != 2 {
		t.Errorf("busy: %+v", b)
	}
	if q := got[quiet]; q.Events != 0 || q.LastEventAt != nil || q.Keys != nil || q.Memory != nil || !q.Stream.Exists || q.Stream.Length != 0 {
		t.Errorf("quiet: %+v", q)
	}
	if g, ok := got[gone]; !ok || g.Stream.Exists || g.Events != 0 {
		t.Errorf("gone: %+v %v", g, ok)
	}
	if b := got[broken]; !b.Stream.Exists || !b.Stream.NotAStream || b.Stream.Length != 0 {
		t.Errorf("broken: %+v", b)
	}
}

// A sandbox's code decides how large its stream's entries and the names of its groups and
// consumers are, and a list page reads every sandbox's stream in one pipeline: what it reads
// of each must not grow with them. Each attack below made the control plane's answer pass the
// server's output limit (64 MB, scripts/redis-server.conf), which closed its connection and
// with it the reads of every sandbox of the page: XINFO STREAM answers the one entry twice
// (first and last), XINFO GROUPS answers the group's name. The usage of the other sandbox, and
// the hostile one's own counts, must read as they are after each. (On a cluster the sizes are
// 4 KiB: testenv.OversizedBytes.)
func TestAStreamsContentCannotBlindTheUsageOfOthers(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	hostile, _, other := provisionedPair(t, e)
	worker := asSandbox(t, e, rotated(t, e, hostile))
	for i := range 3 {
		if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.EventStream(other), Values: []string{"n", strconv.Itoa(i)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	testenv.ReadGroup(t, e.rdb, keys.EventStream(other), keys.EventsGroup, "w")

	stream := keys.EventStream(hostile)
	big := func(c byte, mib int) string { return strings.Repeat(string(c), testenv.OversizedBytes(mib)) }
	for _, attack := range []struct {
		name            string
		do, undo        func() error
		length, pending int64
	}{{
		name: "one entry of 33 MiB",
		do: func() error {
			return worker.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: "1-1", Values: []string{"p", big('x', 33)}}).Err()
		},
		undo:   func() error { return worker.XDel(ctx, stream, "1-1").Err() },
		length: 1,
	}, {
		name:   "a group named with 65 MiB",
		do:     func() error { return worker.XGroupCreate(ctx, stream, big('g', 65), "0").Err() },
		undo:   func() error { return worker.XGroupDestroy(ctx, stream, big('g', 65)).Err() },
		length: 0,
	}, {
		name: "a consumer named with 65 MiB holding an entry",
		do: func() error {
			if err := worker.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: "2-1", Values: []string{"n", "1"}}).Err(); err != nil {
				return err
			}
			return worker.XReadGroup(ctx, &redis.XReadGroupArgs{Group: keys.EventsGroup, Consumer: big('c', 65),
				Streams: []string{stream, ">"}, Count: 1}).Err()
		},
		undo:    func() error { return worker.XGroupDelConsumer(ctx, stream, keys.EventsGroup, big('c', 65)).Err() },
		length:  1,
		pending: 1,
	}} {
		t.Run(attack.name, func(t *testing.T) {
			if err := attack.do(); err != nil {
				t.Fatalf("the sandbox's own user: %v", err)
			}
			defer func() {
				if err := attack.undo(); err != nil {
					t.Fatal(err)
				}
			}()
			got, err := e.p.RedisUsage(ctx, []string{hostile, other})
			if err != nil {
				t.Fatalf("one sandbox's stream failed the usage read of the page: %.300v", err)
			}
			if o := got[other]; !o.Stream.Exists || o.Stream.Length != 3 || o.Stream.Pending != 3 {
				t.Errorf("the other sandbox: %+v", o.Stream)
			}
			if h := got[hostile]; !h.Stream.Exists || h.Stream.Length != attack.length || h.Stream.Pending != attack.pending {
				t.Errorf("the hostile sandbox: %+v, want length %d and %d pending", h.Stream, attack.length, attack.pending)
			}
		})
	}
}

// SchemaSizes reads the sizes of many schemas from the catalogs, and a sandbox that holds
// an ACCESS EXCLUSIVE lock on its table makes the read fail within the lock timeout instead
// of holding it (and a whole list page) up.
func TestSchemaSizes(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	a, pw := provisioned(t, e)
	b, _ := provisioned(t, e)
	missing := sandbox.NewID()
	sizes, err := e.p.SchemaSizes(ctx, []string{a, b, missing})
	if err != nil {
		t.Fatal(err)
	}
	if sizes[a].Relations <= 0 || sizes[a].Catalog <= 0 || sizes[b].Bytes() <= 0 {
		t.Errorf("sizes %v", sizes)
	}
	if _, ok := sizes[missing]; ok {
		t.Errorf("a schema that does not exist has a size: %v", sizes)
	}

	// A temporary table of the role counts while its session lives.
	conn := e.session(t, a, pw)
	temp := e.session(t, a, pw)
	if _, err := temp.Exec(ctx, "CREATE TEMP TABLE scratch AS SELECT repeat('x', 1000) AS s FROM generate_series(1, 2000)"); err != nil {
		t.Fatal(err)
	}
	withTemp, err := e.p.SchemaSizes(ctx, []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if grown := withTemp[a].Bytes() - sizes[a].Bytes(); grown < 2000*1000 || withTemp[b] != sizes[b] {
		t.Errorf("a temporary table of 2 MB grew the sandbox's size by %d bytes (the other's: %d to %d)", grown, sizes[b], withTemp[b])
	}
	if err := temp.Close(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, "the temporary table is gone with its session", func() bool {
		now, err := e.p.SchemaSizes(ctx, []string{a})
		return err == nil && now[a] == sizes[a]
	})

	// What the role stores outside its relations' files counts too: each of these stored
	// about 1 MiB that the relations' sizes did not show (a default's or a view's expression
	// is stored compressed: 0.9 MiB).
	const mib = 1 << 20
	big := `(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 32768) g)` // 1 MiB of digits
	for _, c := range []struct {
		what, sql string
		atLeast   int64
	}{
		{"120 sequences (8 kB files)", `DO $$ BEGIN FOR i IN 1..120 LOOP EXECUTE format('CREATE SEQUENCE q%s', i); END LOOP; END $$`, 120 * 8192},
		{"a function's body", `DO $$ BEGIN EXECUTE format('CREATE FUNCTION big() RETURNS int LANGUAGE sql AS %L', 'SELECT 1 /*' || ` + big + ` || '*/'); END $$`, mib},
		{"a comment", `DO $$ BEGIN EXECUTE format('COMMENT ON FUNCTION big() IS %L', ` + big + `); END $$`, mib},
		{"a column's default", `DO $$ BEGIN EXECUTE format('CREATE TABLE padded (x int, padding text DEFAULT %L)', ` + big + `); END $$`, mib * 3 / 4},
		{"a view", `DO $$ BEGIN EXECUTE format('CREATE VIEW wide AS SELECT %L::text AS x', ` + big + `); END $$`, mib * 3 / 4},
		{"a role setting", `DO $$ BEGIN EXECUTE format('ALTER ROLE CURRENT_USER SET search_path = %L', ` + big + `); END $$`, mib},
		// ANALYZE keeps up to 10,000 values of a column at this target, and TRUNCATE leaves them.
		{"a column's statistics", `DO $$ BEGIN
			CREATE TABLE sampled AS SELECT (SELECT string_agg(md5(g::text || ':' || i), '') FROM generate_series(1, 28) i) AS v
				FROM generate_series(1, 12000) g;
			ALTER TABLE sampled ALTER COLUMN v SET STATISTICS 10000; ANALYZE sampled; TRUNCATE sampled; END $$`, 4 * mib},
		{"a table of 1,600 columns", `DO $$ BEGIN EXECUTE 'CREATE TABLE columns (' ||
			(SELECT string_agg(format('c%s int', i), ', ') FROM generate_series(1, 1600) i) || ')'; END $$`, 1600 * 100},
	} {
		before, err := e.p.SchemaSizes(ctx, []string{a, b})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, c.sql); err != nil {
			t.Fatalf("%s, as the sandbox's role: %v", c.what, err)
		}
		after, err := e.p.SchemaSizes(ctx, []string{a, b})
		if err != nil {
			t.Fatal(err)
		}
		if grown := after[a].Bytes() - before[a].Bytes(); grown < c.atLeast || after[b] != before[b] {
			t.Errorf("%s grew the sandbox's size by %d bytes, want at least %d (the other's: %+v to %+v)",
				c.what, grown, c.atLeast, before[b], after[b])
		}
		// A page of usage reads the relations alone, and the same figure.
		relations, err := e.p.RelationSizes(ctx, []string{a, b})
		if err != nil || relations[a] != after[a].Relations || relations[b] != after[b].Relations {
			t.Errorf("relation sizes %v (%v), want those of %+v and %+v", relations, err, after[a], after[b])
		}
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "LOCK TABLE members IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	bounded, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.p.SchemaSizes(bounded, []string{a, b}); err == nil || bounded.Err() != nil {
		t.Errorf("reading a locked schema's size: %v (context %v), want the lock timeout's error", err, bounded.Err())
	}
}
