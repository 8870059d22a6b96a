package routecache_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const (
	guild1 = "80351110224678912"
	guild2 = "80351110224678913"
	guild3 = "80351110224678914"
)

// exp is an expiry as the cache keeps it: milliseconds, UTC.
var exp = time.UnixMilli(1768989600000).UTC()

func TestEncodeDecode(t *testing.T) {
	for _, r := range []sandbox.Route{
		{GuildID: guild1},
		{GuildID: guild1, Protected: true},
		{GuildID: guild1, SandboxID: "abc123def456gh", Status: sandbox.StatusRunning, ExpiresAt: exp},
		{GuildID: guild1, SandboxID: "abc123def456gh", Status: sandbox.StatusDestroying, ExpiresAt: exp},
		{GuildID: guild1, SandboxID: "abc123def456gh", Status: sandbox.StatusRunning, ExpiresAt: exp, Protected: true},
		{GuildID: guild1, SandboxID: "abc123def456gh", Status: sandbox.StatusCreating, ExpiresAt: exp, Protected: true},
		{GuildID: guild1, ParkedBy: "abc123def456gh", ParkedAt: exp},
	} {
		got, ok := routecache.Decode(guild1, routecache.Encode(r))
		if !ok || got != r {
			t.Errorf("round trip of %+v: %+v %v", r, got, ok)
		}
	}
	for _, v := range []string{"", "sandbox:", "sandbox:abc:running", "sandbox:abc123def456gh:zombie", "yes",
		"sandbox:abc123def456gh:running", "sandbox:abc123def456gh:running:protected", // the older layouts: a miss
		"sandbox:abc123def456gh:running:", "sandbox:abc123def456gh:running:yes", "sandbox:abc123def456gh:protected",
		"sandbox:abc123def456gh:running:1:protected:protected", "sandbox:abc123def456gh::1:protected",
		"parked:", "parked:abc123def456gh", "parked:abc:1", "parked:abc123def456gh:x"} {
		if _, ok := routecache.Decode(guild1, v); ok {
			t.Errorf("Decode(%q) accepted", v)
		}
	}
}

// A mapped route keeps its protection and its expiry through the cache (a guild protected
// after it was mapped must not reach its sandbox from a cache hit); values of the older
// layouts read as a miss, so the router asks the database.
func TestEncodeKeepsProtectedMapping(t *testing.T) {
	r := sandbox.Route{GuildID: guild1, SandboxID: "abc123def456gh", Status: sandbox.StatusRunning, ExpiresAt: exp, Protected: true}
	v := routecache.Encode(r)
	if v != "sandbox:abc123def456gh:running:1768989600000:protected" {
		t.Errorf("Encode(%+v) = %q", r, v)
	}
	if got, ok := routecache.Decode(guild1, v); !ok || !got.Protected || got != r {
		t.Errorf("Decode(%q) = %+v %v, want %+v", v, got, ok, r)
	}

	rdb := testenv.Redis(t)
	ctx := context.Background()
	c := routecache.New(rdb, time.Minute, 10*time.Second)
	if err := c.SetCurrent(ctx, []sandbox.Route{r}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetMany(ctx, []string{guild1})
	if err != nil || got[guild1] != r {
		t.Fatalf("GetMany %+v %v, want %+v", got, err, r)
	}
	one, _, ok, err := c.Get(ctx, guild1)
	if err != nil || !ok || one != r {
		t.Fatalf("Get %+v %v %v, want %+v", one, ok, err, r)
	}
}

func TestSetGetInvalidate(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	c := routecache.New(rdb, time.Minute, 10*time.Second)
	routes := []sandbox.Route{
		{GuildID: guild1, SandboxID: "abc123def456gh", Status: sandbox.StatusRunning},
		{GuildID: guild2},
	}
	if err := c.SetCurrent(ctx, routes); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetMany(ctx, []string{guild1, guild2, guild3})
	if err != nil || len(got) != 2 || got[guild1] != routes[0] || got[guild2] != routes[1] {
		t.Fatalf("GetMany %+v %v", got, err)
	}
	if ttl := rdb.PTTL(ctx, keys.RouteCache(guild1)).Val(); ttl <= 10*time.Second || ttl > time.Minute {
		t.Fatalf("positive entry ttl %s", ttl)
	}
	if ttl := rdb.PTTL(ctx, keys.RouteCache(guild2)).Val(); ttl <= 0 || ttl > 10*time.Second {
		t.Fatalf("negative entry ttl %s", ttl)
	}
	// A value this package did not write is ignored, not trusted.
	rdb.Set(ctx, keys.RouteCache(guild3), "garbage", time.Minute)
	if got, _ := c.GetMany(ctx, []string{guild3}); len(got) != 0 {
		t.Fatalf("garbage entry decoded: %+v", got)
	}
	before, _ := c.Read(ctx, nil)
	// Publish says, guild by guild, whose entry existed (guild3's garbage entry counts too).
	existed, err := c.Publish(ctx, guild1, "80351110224678999", guild3)
	if err != nil || !slices.Equal(existed, []bool{true, false, true}) {
		t.Fatalf("Publish: %v %v", existed, err)
	}
	if after, _ := c.Read(ctx, nil); after.Generation == before.Generation {
		t.Fatalf("the generation stayed %q", after.Generation)
	}
	if err := c.Invalidate(ctx, guild1, guild2); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetMany(ctx, []string{guild1, guild2}); len(got) != 0 {
		t.Fatalf("after invalidate: %+v", got)
	}
}

// TestManagerInvalidatesOnMappingChanges proves that a negative entry cached before a guild
// is mapped does not survive the mapping, and the same for removal and destroy.
func TestManagerInvalidatesOnMappingChanges(t *testing.T) {
	pool, _ := testenv.Postgres(t)
	ctx := context.Background()
	if _, err := controlplane.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	rdb := testenv.Redis(t)
	c := routecache.New(rdb, 0, 0)
	m := controlplane.NewManager(pool, controlplane.Options{Limits: sandbox.DefaultLimits(), Routes: c})
	testenv.RegisterTestGuilds(t, pool, guild1, guild2)
	cached := func(g string) bool {
		got, err := c.GetMany(ctx, []string{g})
		if err != nil {
			t.Fatal(err)
		}
		_, ok := got[g]
		return ok
	}
	_ = c.SetCurrent(ctx, []sandbox.Route{{GuildID: guild1}, {GuildID: guild2}})
	sb, err := m.Create(ctx, "alice", controlplane.CreateInput{Name: "cache", Owner: "alice", Guilds: []string{guild1}})
	if err != nil {
		t.Fatal(err)
	}
	if cached(guild1) {
		t.Fatal("create left a stale entry for its guild")
	}
	if err := m.AddGuild(ctx, "alice", sb.ID, guild2, false); err != nil {
		t.Fatal(err)
	}
	if cached(guild2) {
		t.Fatal("add guild left a stale entry")
	}
	_ = c.SetCurrent(ctx, []sandbox.Route{{GuildID: guild2, SandboxID: sb.ID, Status: sandbox.StatusRunning}})
	if err := m.RemoveGuild(ctx, "alice", sb.ID, guild2); err != nil {
		t.Fatal(err)
	}
	if cached(guild2) {
		t.Fatal("remove guild left a stale entry")
	}
	_ = c.SetCurrent(ctx, []sandbox.Route{{GuildID: guild1, SandboxID: sb.ID, Status: sandbox.StatusRunning}})
	if _, _, err := m.RequestDestroy(ctx, "alice", sb.ID); err != nil {
		t.Fatal(err)
	}
	if cached(guild1) {
		t.Fatal("destroy left a stale running entry")
	}
}
