package provision_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// A deployment whose functions' Redis user predates +client|list (the rules of
// scripts/redis-control-user.rules before the connection count) is told what to add, not
// handed a bare NOPERM; and nothing is switched off.
func TestSwitchOffNamesTheMissingPermission(t *testing.T) {
	t.Parallel()
	rdb := testenv.Redis(t)
	ctx := context.Background()
	user, password := "control-"+sandbox.NewID(), sandbox.NewID()+sandbox.NewID()
	older := []any{"ACL", "SETUSER", user, "reset", "on", ">" + password, "~*", "&*", "+@all", "-@dangerous",
		"+acl|setuser", "+acl|deluser", "+acl|getuser", "+acl|users", "+client|kill"}
	for _, node := range testenv.RedisNodes(t, testenv.RedisAdminOf(t, rdb)) {
		if err := node.Do(ctx, older...).Err(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = node.Do(context.Background(), "ACL", "DELUSER", user).Err() })
	}
	p := provision.New(nil, testenv.RedisClientLike(t, rdb, redis.UniversalOptions{Username: user, Password: password}), "sandbox_template")
	off, err := p.SwitchOffCrowdingRedisUsers(ctx, sandbox.RedisConnectionLimit)
	if err == nil || !strings.Contains(err.Error(), "NOPERM") || !strings.Contains(err.Error(), "+client|list") || len(off) != 0 {
		t.Fatalf("switch off with the older rules: %v, %v; want NOPERM naming +client|list", off, err)
	}
}

// BenchmarkSwitchOffCrowdingRedisUsers is the scheduled run's connection count: on a server
// that holds no sandbox connection (the baseline), and one that holds 1,000, 25 for each of
// 40 sandboxes, all under the limit (nothing is switched off, as in almost every run).
func BenchmarkSwitchOffCrowdingRedisUsers(b *testing.B) {
	for _, sandboxes := range []int{0, 40} {
		b.Run(fmt.Sprintf("connections=%d", sandboxes*25), func(b *testing.B) {
			rdb := testenv.Redis(b)
			ctx := context.Background()
			admin := testenv.RedisNodes(b, testenv.RedisAdminOf(b, rdb))
			for range sandboxes {
				user, password := keys.ACLUser(sandbox.NewID(), testenv.RedisDBOf(rdb)), sandbox.NewID()
				for _, node := range admin {
					if err := node.Do(ctx, "ACL", "SETUSER", user, "on", ">"+password, "+ping", "+select").Err(); err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = node.Do(context.Background(), "ACL", "DELUSER", user).Err() })
				}
				for i := range 25 { // a client each: one connection each
					c := testenv.RedisClientLike(b, rdb, redis.UniversalOptions{Username: user, Password: password, PoolSize: 1})
					if err := c.Ping(ctx).Err(); err != nil {
						b.Fatalf("connection %d as %s: %v", i, user, err)
					}
				}
			}
			p := provision.New(nil, rdb, "sandbox_template")
			b.ResetTimer()
			for b.Loop() {
				if off, err := p.SwitchOffCrowdingRedisUsers(ctx, sandbox.RedisConnectionLimit); err != nil || len(off) != 0 {
					b.Fatalf("switched off %v: %v", off, err)
				}
			}
		})
	}
}
