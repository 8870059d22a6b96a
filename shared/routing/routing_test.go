package routing_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/gateway"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/routing"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const (
	gRun        = "1081240586043576360"
	gRun2       = "1081240586043576361"
	gDestroying = "1081240586043576362"
	gProtected  = "1081240586043576363"
	gUnmapped   = "1081240586043576364"
	gOther      = "1081240586043576365"
)

func wantCounts[K comparable](t *testing.T, what string, got, want map[K]int) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func TestRouteDecisions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	running := e.sandbox(t, "running", gRun, gRun2)
	leaving := e.sandbox(t, "leaving", gDestroying)
	if _, _, err := e.manager.RequestDestroy(ctx, owner, leaving.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.manager.ProtectGuild(ctx, owner, gProtected, "the production guild"); err != nil {
		t.Fatal(err)
	}
	q := &queue{}
	var logs bytes.Buffer
	r := e.router(t, q, func(o *routing.Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })

	sentAt := time.UnixMilli(1717243200123)
	batch := []routing.Message{
		{ID: "m01", Body: dispatch("MESSAGE_CREATE", 1, gRun), SentAt: sentAt},
		msg("m02", dispatch("MESSAGE_CREATE", 2, gUnmapped)),
		msg("m03", dispatch("MESSAGE_CREATE", 3, gDestroying)),
		msg("m04", dispatch("MESSAGE_CREATE", 4, gProtected)),
		// READY lists the bot's guilds but belongs to none of them.
		msg("m05", `{"op":0,"t":"READY","s":5,"d":{"v":10,"session_id":"abc","guilds":[{"id":"`+gRun+`","unavailable":true}]}}`),
		msg("m06", dispatch("MESSAGE_CREATE", 6, "")), // a direct message
		msg("m07", `{"op":0,"t":"GUILD_CREATE","s":7,"d":{"name":"QA","channels":[],"id":"`+gRun2+`"}}`),
		msg("m08", `not json`),
		msg("m09", `{"op":11,"d":null}`), // heartbeat ACK
		msg("m10", `{"op":0,"t":"MESSAGE_CREATE","s":10,"d":{"guild_id":"12"}}`),
		msg("m11", `{"op":0,"t":"MESSAGE_CREATE","s":11,"d":{"pad":"`+strings.Repeat("x", gateway.MaxBodyBytes)+`"}}`),
		// No sequence number: the stream entry has no seq field.
		msg("m12", `{"op":0,"t":"TYPING_START","d":{"user_id":"80351110224678912","guild_id":"`+gRun+`"}}`),
		msg("m13", dispatch("MESSAGE_CREATE", 13, gRun)),
	}
	res := r.Route(ctx, nil, batch)

	equal(t, "failed", res.Failed, []string{"m08", "m09", "m10", "m11"})
	wantCounts(t, "errors", res.Errors, map[routing.ErrorKind]int{
		routing.KindMalformed: 1, routing.KindNotDispatch: 1, routing.KindInvalidGuildID: 1, routing.KindTooLarge: 1,
	})
	wantCounts(t, "routed", res.Routed, map[routing.Destination]int{
		routing.DestinationSandbox: 4, routing.DestinationProduction: 4, routing.DestinationDropped: 1,
	})
	wantCounts(t, "lookups", res.Lookups, map[routing.Tier]int{routing.TierDatabase: 5})

	equal(t, "running sandbox stream", e.streamIDs(t, running.ID), []string{"m01", "m07", "m12", "m13"})
	equal(t, "destroying sandbox stream", e.streamIDs(t, leaving.ID), nil)
	equal(t, "production", q.acceptedIDs(), []string{"m02", "m04", "m05", "m06"})
	for _, entry := range q.accepted {
		id := ingressID(entry)
		if want := batch[mustAtoi(t, id[1:])-1].Body; *entry.MessageBody != want {
			t.Errorf("production body of %s: %s, want %s", id, *entry.MessageBody, want)
		}
	}

	entries := e.streamEntries(t, running.ID)
	want := map[string]any{
		"type": "MESSAGE_CREATE", "payload": batch[0].Body, "message_id": "m01", "guild_id": gRun,
		"seq": "1", "received_at": "1717243200123",
	}
	if !maps.Equal(entries[0].Values, want) {
		t.Errorf("entry of m01:\n got %v\nwant %v", entries[0].Values, want)
	}
	want = map[string]any{
		"type": "TYPING_START", "payload": batch[11].Body, "message_id": "m12", "guild_id": gRun,
		"received_at": strconv.FormatInt(e.clock.Now().UnixMilli(), 10),
	}
	if !maps.Equal(entries[2].Values, want) {
		t.Errorf("entry of m12 (no sequence, no SentAt):\n got %v\nwant %v", entries[2].Values, want)
	}
	if got := entries[1].Values["guild_id"]; got != gRun2 {
		t.Errorf("GUILD_CREATE entry guild_id %v, want %s", got, gRun2)
	}

	// Every failure is logged with its id and kind; no payload ever reaches the log.
	for _, want := range []string{`"message_id":"m08","kind":"malformed"`, `"message_id":"m09","kind":"not_dispatch"`,
		`"message_id":"m10","kind":"invalid_guild_id"`, `"message_id":"m11","kind":"too_large"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	for _, payload := range []string{"not json", "hello", "xxxxxxxx", "session_id"} {
		if strings.Contains(logs.String(), payload) {
			t.Errorf("log quotes a payload (%q):\n%s", payload, logs.String())
		}
	}
}

// A guild protected by configuration goes to production even when the control plane maps it:
// protection names production guilds, and their events must reach production.
func TestProtectedGuildWinsOverMapping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sb := e.sandbox(t, "claims-prod", gProtected)
	q := &queue{}
	r := e.router(t, q, func(o *routing.Options) {
		o.Store = controlplane.NewManager(e.pool, controlplane.Options{
			Limits: sandbox.DefaultLimits(), ProtectedGuilds: []string{gProtected},
		})
	})
	res := r.Route(t.Context(), nil, []routing.Message{msg("m1", dispatch("MESSAGE_CREATE", 1, gProtected))})
	equal(t, "failed", res.Failed, nil)
	equal(t, "production", q.acceptedIDs(), []string{"m1"})
	equal(t, "stream", e.streamIDs(t, sb.ID), nil)
}

func TestRouteCacheTiers(t *testing.T) {
	t.Parallel()
	e, sb, q, r := oneSandbox(t, "tiers", gRun)
	ctx := t.Context()
	batch := func(n int) []routing.Message {
		return []routing.Message{
			msg(fmt.Sprintf("s%d", n), dispatch("MESSAGE_CREATE", n, gRun)),
			msg(fmt.Sprintf("p%d", n), dispatch("MESSAGE_CREATE", n, gUnmapped)),
			msg(fmt.Sprintf("q%d", n), dispatch("MESSAGE_UPDATE", n, gUnmapped)),
		}
	}

	// Cold: both guilds come from the database and are written back, the unmapped one as a
	// negative entry with the shorter TTL.
	res := r.Route(ctx, nil, batch(1))
	wantCounts(t, "cold lookups", res.Lookups, map[routing.Tier]int{routing.TierDatabase: 2})
	route, ttl, ok, err := e.cache.Get(ctx, gRun)
	if err != nil || !ok || route.SandboxID != sb.ID || route.Status != sandbox.StatusRunning || ttl <= routecache.DefaultNegativeTTL {
		t.Fatalf("positive entry %+v ttl %s ok %v err %v", route, ttl, ok, err)
	}
	route, ttl, ok, err = e.cache.Get(ctx, gUnmapped)
	if err != nil || !ok || route.Mapped() || ttl <= 0 || ttl > routecache.DefaultNegativeTTL {
		t.Fatalf("negative entry %+v ttl %s ok %v err %v", route, ttl, ok, err)
	}

	// Within the in-process TTL nothing leaves the process.
	e.clock.Add(memoryTTL - time.Millisecond)
	res = r.Route(ctx, nil, batch(2))
	wantCounts(t, "warm lookups", res.Lookups, map[routing.Tier]int{routing.TierMemory: 2})

	// Past it, Redis answers, the negative entry included.
	e.clock.Add(time.Millisecond)
	res = r.Route(ctx, nil, batch(3))
	wantCounts(t, "redis lookups", res.Lookups, map[routing.Tier]int{routing.TierRedis: 2})

	equal(t, "failed", res.Failed, nil)
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"s1", "s2", "s3"})
	equal(t, "production", q.acceptedIDs(), []string{"p1", "p2", "p3", "q1", "q2", "q3"})
}

// A mapping change reaches the router's very next batch, in-process tier included: the
// control plane publishes it (the route generation changes), and the in-process entries of
// the older generation are void. The clock never moves: no TTL is involved.
func TestMappingChangeSeenByTheNextBatch(t *testing.T) {
	t.Parallel()
	e, sb, q, r := oneSandbox(t, "late", gOther)
	ctx := t.Context()
	route := func(id string) routing.Result {
		t.Helper()
		res := r.Route(ctx, nil, []routing.Message{msg(id, dispatch("MESSAGE_CREATE", 1, gRun))})
		equal(t, "failed", res.Failed, nil)
		return res
	}

	route("before") // unmapped: production, cached as such in memory and Redis
	res := route("warm")
	wantCounts(t, "warm lookups", res.Lookups, map[routing.Tier]int{routing.TierMemory: 1})
	e.register(t, gRun)
	if err := e.manager.AddGuild(ctx, owner, sb.ID, gRun, false); err != nil {
		t.Fatal(err)
	}
	res = route("mapped")
	wantCounts(t, "lookups after the mapping", res.Lookups, map[routing.Tier]int{routing.TierDatabase: 1})

	if _, _, err := e.manager.RequestDestroy(ctx, owner, sb.ID); err != nil {
		t.Fatal(err)
	}
	res = route("destroying")
	wantCounts(t, "routed while destroying", res.Routed, map[routing.Destination]int{routing.DestinationDropped: 1})

	if err := e.manager.RemoveGuild(ctx, owner, sb.ID, gRun); err != nil {
		t.Fatal(err)
	}
	route("unmapped-again")

	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"mapped"})
	equal(t, "production", q.acceptedIDs(), []string{"before", "unmapped-again", "warm"})
}

// deadRedis returns a client of a Redis that is not there.
func deadRedis(t *testing.T) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.ClosedAddr(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sb := e.sandbox(t, "fallback", gRun)
	leaving := e.sandbox(t, "leaving", gDestroying)
	if _, _, err := e.manager.RequestDestroy(t.Context(), owner, leaving.ID); err != nil {
		t.Fatal(err)
	}
	batch := func(prefix string) []routing.Message {
		return []routing.Message{
			msg(prefix+"1", dispatch("MESSAGE_CREATE", 1, gRun)),
			msg(prefix+"2", dispatch("MESSAGE_CREATE", 2, gUnmapped)),
			msg(prefix+"3", dispatch("MESSAGE_CREATE", 3, gDestroying)),
			msg(prefix+"4", dispatch("MESSAGE_CREATE", 4, gRun)),
		}
	}

	t.Run("route cache down", func(t *testing.T) {
		q := &queue{}
		r := e.router(t, q, func(o *routing.Options) { o.Cache = routecache.New(deadRedis(t), 0, 0) })
		res := r.Route(t.Context(), nil, batch("a"))
		equal(t, "failed", res.Failed, nil)
		wantCounts(t, "lookups", res.Lookups, map[routing.Tier]int{routing.TierDatabase: 3})
		wantCounts(t, "errors", res.Errors, map[routing.ErrorKind]int{routing.KindRouteCache: 1})
		wantCounts(t, "routed", res.Routed, map[routing.Destination]int{
			routing.DestinationSandbox: 2, routing.DestinationProduction: 1, routing.DestinationDropped: 1,
		})
		equal(t, "stream", e.streamIDs(t, sb.ID), []string{"a1", "a4"})
		equal(t, "production", q.acceptedIDs(), []string{"a2"})
	})

	t.Run("all of Redis down", func(t *testing.T) {
		q := &queue{}
		dead := deadRedis(t)
		r := e.router(t, q, func(o *routing.Options) {
			o.Cache = routecache.New(dead, 0, 0)
			o.Redis = dead
		})
		res := r.Route(t.Context(), nil, batch("b"))
		// Only the stream deliveries fail; routing itself went on from PostgreSQL.
		equal(t, "failed", res.Failed, []string{"b1", "b4"})
		wantCounts(t, "errors", res.Errors, map[routing.ErrorKind]int{
			routing.KindRouteCache: 1, routing.KindDeliveryStream: 2,
		})
		equal(t, "production", q.acceptedIDs(), []string{"b2"})
	})
}

func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	sb := e.sandbox(t, "cached", gRun)
	// The router's own pool, closed below: the control plane becomes unreachable.
	pool, err := pgxpool.NewWithConfig(ctx, e.pool.Config())
	if err != nil {
		t.Fatal(err)
	}
	q := &queue{}
	r := e.router(t, q, func(o *routing.Options) {
		o.Store = controlplane.NewManager(pool, controlplane.Options{Limits: sandbox.DefaultLimits()})
	})
	if res := r.Route(ctx, nil, []routing.Message{msg("warm", dispatch("MESSAGE_CREATE", 1, gRun))}); len(res.Failed) != 0 {
		t.Fatalf("warm-up failed: %v", res.Failed)
	}
	pool.Close()
	e.clock.Add(memoryTTL)

	res := r.Route(ctx, nil, []routing.Message{
		msg("known", dispatch("MESSAGE_CREATE", 2, gRun)),      // still in Redis
		msg("unknown", dispatch("MESSAGE_CREATE", 3, gOther)),  // only the database knows
		msg("guildless", dispatch("MESSAGE_CREATE", 4, "")),    // needs no route
		msg("unknown2", dispatch("MESSAGE_CREATE", 5, gOther)), // same guild, one lookup
	})
	equal(t, "failed", res.Failed, []string{"unknown", "unknown2"})
	wantCounts(t, "errors", res.Errors, map[routing.ErrorKind]int{routing.KindRouteLookup: 2})
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"warm", "known"})
	equal(t, "production", q.acceptedIDs(), []string{"guildless"})
}

// A sandbox's own code can make its stream take no entry: its Redis user may delete the
// stream and write a string in its place, or add an entry with the largest possible ID. Nobody
// else writes there, so retrying such an event cannot help: it is dropped, not failed (a
// failed one would go round the ingress queue into its dead-letter queue, and one sandbox
// could keep the routing alarms firing), and the other sandboxes and production are served.
func TestASandboxThatBreaksItsStreamLosesOnlyItsEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	a := e.sandbox(t, "healthy", gRun)
	b := e.sandbox(t, "string", gOther)
	c := e.sandbox(t, "last-id", gRun2)
	as := func(id string) redis.UniversalClient { // the sandbox's worker, with its own user
		creds, err := provision.New(e.pool, e.rdb, "sandbox_template").RotateCredentials(ctx, id, time.Now().Add(time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		return testenv.NewRedisClient(t, redis.UniversalOptions{DB: testenv.RedisDBOf(e.rdb), Username: creds.RedisUser, Password: creds.RedisPassword})
	}
	worker := as(b.ID)
	if err := worker.Del(ctx, keys.EventStream(b.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := worker.Set(ctx, keys.EventStream(b.ID), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := as(c.ID).XAdd(ctx, &redis.XAddArgs{Stream: keys.EventStream(c.ID), ID: keys.MaxStreamID.String(), Values: []string{"k", "v"}}).Err(); err != nil {
		t.Fatal(err)
	}

	q := &queue{}
	res := e.router(t, q).Route(ctx, nil, []routing.Message{
		msg("a1", dispatch("MESSAGE_CREATE", 1, gRun)),
		msg("b1", dispatch("MESSAGE_CREATE", 2, gOther)),
		msg("c1", dispatch("MESSAGE_CREATE", 3, gRun2)),
		msg("p1", dispatch("MESSAGE_CREATE", 4, gUnmapped)),
		msg("a2", dispatch("MESSAGE_CREATE", 5, gRun)),
		msg("b2", dispatch("MESSAGE_CREATE", 6, gOther)),
		msg("c2", dispatch("MESSAGE_CREATE", 7, gRun2)),
	})
	equal(t, "failed", res.Failed, nil)
	wantCounts(t, "errors", res.Errors, nil)
	wantCounts(t, "routed", res.Routed, map[routing.Destination]int{
		routing.DestinationSandbox: 2, routing.DestinationProduction: 1, routing.DestinationDropped: 4})
	equal(t, "healthy stream", e.streamIDs(t, a.ID), []string{"a1", "a2"})
	equal(t, "production", q.acceptedIDs(), []string{"p1"})
	if got := e.rdb.Get(ctx, keys.EventStream(b.ID)).Val(); got != "not a stream" {
		t.Errorf("the string in place of the stream became %q", got)
	}
	if n := e.rdb.XLen(ctx, keys.EventStream(c.ID)).Val(); n != 1 {
		t.Errorf("the stream at the largest ID holds %d entries, want the worker's one", n)
	}
}

// A stream that is gone means the sandbox was torn down after its route was cached: the
// event is dropped (never sent to production, never retried) and the route forgotten.
func TestMissingStreamIsDropped(t *testing.T) {
	t.Parallel()
	e, sb, q, r := oneSandbox(t, "vanished", gRun)
	ctx := t.Context()
	r.Route(ctx, nil, []routing.Message{msg("m1", dispatch("MESSAGE_CREATE", 1, gRun))})
	e.removeStream(t, sb.ID)
	res := r.Route(ctx, nil, []routing.Message{msg("m2", dispatch("MESSAGE_CREATE", 2, gRun))})
	equal(t, "failed", res.Failed, nil)
	wantCounts(t, "routed", res.Routed, map[routing.Destination]int{routing.DestinationDropped: 1})
	if n := e.rdb.Exists(ctx, keys.EventStream(sb.ID)).Val(); n != 0 {
		t.Fatal("XADD created the stream of a sandbox that is gone")
	}
	// The in-process entry was forgotten: the next batch asks Redis again.
	res = r.Route(ctx, nil, []routing.Message{msg("m3", dispatch("MESSAGE_CREATE", 3, gRun))})
	wantCounts(t, "lookups", res.Lookups, map[routing.Tier]int{routing.TierRedis: 1})
	equal(t, "production", q.acceptedIDs(), nil)
}

func TestProductionRejectsSomeEntries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sb := e.sandbox(t, "beside", gRun)
	batch := []routing.Message{msg("s1", dispatch("MESSAGE_CREATE", 0, gRun))}
	for i := range 25 {
		batch = append(batch, msg(fmt.Sprintf("p%02d", i), dispatch("MESSAGE_CREATE", i, "")))
	}
	all := func() []string {
		var ids []string
		for _, m := range batch[1:] {
			ids = append(ids, m.ID)
		}
		return ids
	}

	t.Run("rejected entries", func(t *testing.T) {
		q := &queue{reject: func(id string) bool { return id == "p03" || id == "p17" }}
		r := e.router(t, q, func(o *routing.Options) { o.ProductionConcurrency = 2 })
		res := r.Route(t.Context(), nil, batch)
		equal(t, "failed", res.Failed, []string{"p03", "p17"})
		wantCounts(t, "errors", res.Errors, map[routing.ErrorKind]int{routing.KindDeliveryProduction: 2})
		if q.calls != 3 || q.maxLive > 2 {
			t.Errorf("%d SendMessageBatch calls (want 3), %d at once (want at most 2)", q.calls, q.maxLive)
		}
		var want []string
		for _, id := range all() {
			if id != "p03" && id != "p17" {
				want = append(want, id)
			}
		}
		equal(t, "accepted", q.acceptedIDs(), want)
	})

	t.Run("failed call", func(t *testing.T) {
		q := &queue{failCall: func(in *sqs.SendMessageBatchInput) error {
			for _, entry := range in.Entries {
				if ingressID(entry) == "p12" {
					return fmt.Errorf("ServiceUnavailable: try again")
				}
			}
			return nil
		}}
		res := e.router(t, q).Route(t.Context(), nil, batch)
		// The call carrying p12 held the second group of ten production events.
		equal(t, "failed", res.Failed, all()[10:20])
		equal(t, "accepted", q.acceptedIDs(), append(all()[:10:10], all()[20:]...))
	})

	t.Run("size bound", func(t *testing.T) {
		q := &queue{}
		pad := strings.Repeat("x", 100<<10)
		big := func(id string) routing.Message {
			return msg(id, `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"content":"`+pad+`"}}`)
		}
		res := e.router(t, q).Route(t.Context(), nil, []routing.Message{big("b1"), big("b2"), big("b3")})
		equal(t, "failed", res.Failed, nil)
		if q.calls != 2 {
			t.Errorf("3 messages of 100 KiB took %d calls, want 2 (256 KiB per call)", q.calls)
		}
	})
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"s1", "s1"})
}

func mustAtoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
