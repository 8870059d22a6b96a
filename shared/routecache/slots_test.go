package routecache_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The write-back and publication scripts name the generation and the entries of many guilds
// at once: on a Redis Cluster they run only because every one of those keys shares a slot
// (keys, "The route slot"). The guilds are chosen so that, hashed without the tag, they
// would fall in many slots: a layout that lost the tag fails here with CROSSSLOT.
func TestScriptsNameGuildsOfManySlotsAtOnce(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	c := routecache.New(rdb, time.Minute, 10*time.Second)

	var guilds []string
	var routes []sandbox.Route
	untagged := map[int]bool{}
	for i := range 40 {
		g := strconv.FormatUint(80351110224678912+uint64(i)*7919, 10)
		guilds = append(guilds, g)
		untagged[keys.Slot(g)] = true
		r := sandbox.Route{GuildID: g}
		if i%2 == 0 {
			r = sandbox.Route{GuildID: g, SandboxID: "abc123def456gh", Status: sandbox.StatusRunning, ExpiresAt: exp}
		}
		routes = append(routes, r)
	}
	if len(untagged) < 30 {
		t.Fatalf("the guilds hash to %d slots only; the test needs many", len(untagged))
	}
	for _, g := range guilds {
		if keys.Slot(keys.RouteCache(g)) != keys.Slot(keys.RouteGeneration) {
			t.Fatalf("%q is not in the generation's slot", keys.RouteCache(g))
		}
	}

	snap, err := c.Read(ctx, guilds)
	if err != nil || len(snap.Routes) != 0 {
		t.Fatalf("Read before: %+v %v", snap, err)
	}
	if err := c.SetMany(ctx, snap.Generation, routes); err != nil {
		t.Fatalf("SetMany of %d guilds: %v", len(routes), err)
	}
	got, err := c.Read(ctx, guilds)
	if err != nil || len(got.Routes) != len(routes) {
		t.Fatalf("Read after SetMany: %d routes, %v", len(got.Routes), err)
	}
	for _, r := range routes {
		if got.Routes[r.GuildID] != r {
			t.Fatalf("guild %s: %+v, want %+v", r.GuildID, got.Routes[r.GuildID], r)
		}
	}

	existed, err := c.Publish(ctx, guilds...)
	if err != nil {
		t.Fatalf("Publish of %d guilds: %v", len(guilds), err)
	}
	for i, e := range existed {
		if !e {
			t.Fatalf("Publish: guild %s had no entry", guilds[i])
		}
	}
	after, err := c.Read(ctx, guilds)
	if err != nil || len(after.Routes) != 0 || after.Generation == got.Generation {
		t.Fatalf("Read after Publish: %d routes, generation %q (was %q), %v", len(after.Routes), after.Generation, got.Generation, err)
	}
	// A write-back that read the generation before the publication is refused, for every
	// guild at once.
	if err := c.SetMany(ctx, got.Generation, routes); !errors.Is(err, routecache.ErrGenerationChanged) {
		t.Fatalf("stale SetMany: %v", err)
	}
}
