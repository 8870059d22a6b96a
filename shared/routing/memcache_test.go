package routing

import (
	"fmt"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

func TestMemoryCache(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	c := newMemoryCache(5*time.Second, 4, func() time.Time { return now })
	route := func(g string) sandbox.Route {
		return sandbox.Route{GuildID: g, SandboxID: "abc123def456gh", Status: sandbox.StatusRunning}
	}

	c.put("", []sandbox.Route{route("1"), route("2")})
	got := map[string]sandbox.Route{}
	if misses := c.get([]string{"1", "2", "3"}, got); len(misses) != 1 || misses[0] != "3" || got["1"] != route("1") {
		t.Fatalf("get: misses %v, routes %v", misses, got)
	}

	// Entries expire exactly at their TTL.
	now = now.Add(5*time.Second - time.Nanosecond)
	if misses := c.get([]string{"1"}, map[string]sandbox.Route{}); len(misses) != 0 {
		t.Fatal("entry expired early")
	}
	now = now.Add(time.Nanosecond)
	if misses := c.get([]string{"1"}, map[string]sandbox.Route{}); len(misses) != 1 {
		t.Fatal("entry outlived its TTL")
	}

	// When full, expired entries go first, then arbitrary ones: the size never exceeds the bound.
	c.put("", []sandbox.Route{route("3"), route("4"), route("5")})
	if n := c.len(); n != 3 {
		t.Fatalf("expired entries kept: %d entries", n)
	}
	for i := range 10 {
		c.put("", []sandbox.Route{route(fmt.Sprint(100 + i))})
		if n := c.len(); n > 4 {
			t.Fatalf("%d entries, bound 4", n)
		}
	}
	c.put("", []sandbox.Route{route("a"), route("b"), route("c"), route("d"), route("e")})
	if n := c.len(); n != 4 {
		t.Fatalf("a put larger than the bound left %d entries", n)
	}

	c.forget("a")
	if misses := c.get([]string{"a"}, map[string]sandbox.Route{}); len(misses) != 1 {
		t.Fatal("forgotten entry still served")
	}

	off := newMemoryCache(0, 4, func() time.Time { return now })
	off.put("", []sandbox.Route{route("1")})
	if misses := off.get([]string{"1"}, map[string]sandbox.Route{}); len(misses) != 1 || off.len() != 0 {
		t.Fatal("a zero TTL must disable the cache")
	}
}
