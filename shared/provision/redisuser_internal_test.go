package provision

import (
	"context"
	"maps"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The copy a node that lacks a user gets is the user as another node has it: read with ACL
// GETUSER, in the protocol the client speaks, and set again, it authenticates with the same
// password. (A standalone server has no second node; this is that copy on one.)
func TestACLUserCopyKeepsThePassword(t *testing.T) {
	testenv.SkipOnRedisCluster(t, "it copies a user within one server; nodes_test.go copies one across the cluster's nodes")
	rdb := testenv.Redis(t).(*redis.Client)
	ctx := context.Background()
	p := New(nil, rdb, "sandbox_template")
	id := sandbox.NewID()
	user := p.RedisUserName(id)
	t.Cleanup(func() { _ = rdb.Do(context.Background(), "ACL", "DELUSER", user).Err() })
	if err := p.setRedisUser(ctx, id, "s3cret-password"); err != nil {
		t.Fatal(err)
	}
	for _, protocol := range []int{2, 3} {
		c := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, DB: rdb.Options().DB,
			Username: rdb.Options().Username, Password: rdb.Options().Password, Protocol: protocol})
		v, err := c.Do(ctx, "ACL", "GETUSER", user).Result()
		_ = c.Close()
		u, err := parseACLUser(v, err)
		if err != nil || !u.on || len(u.passwords) != 1 {
			t.Fatalf("RESP%d: %+v %v", protocol, u, err)
		}
		if err := rdb.Do(ctx, "ACL", "DELUSER", user).Err(); err != nil {
			t.Fatal(err)
		}
		args, err := appendRules(u.setUserArgs(user), id, p.allowSelect())
		if err != nil {
			t.Fatal(err)
		}
		if err := rdb.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("RESP%d: %v", protocol, err)
		}
		w := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, DB: rdb.Options().DB,
			Username: user, Password: "s3cret-password", MaxRetries: -1})
		err = w.Ping(ctx).Err()
		_ = w.Close()
		if err != nil {
			t.Fatalf("RESP%d: the copy does not authenticate: %v", protocol, err)
		}
	}
}

// A CLIENT LIST line counts for its user field alone: a worker that names its connection
// after another sandbox's user (CLIENT SETNAME takes '=') counts for itself, not for that one.
func TestConnectionsByUser(t *testing.T) {
	list := "id=3 addr=127.0.0.1:5001 laddr=127.0.0.1:6379 fd=8 name=user=sb_victim age=1 db=0 user=sb_worker lib-name= cmd=get\n" +
		"id=4 addr=127.0.0.1:5002 laddr=127.0.0.1:6379 fd=9 name= age=1 db=0 user=sb_worker cmd=blpop\n" +
		"id=5 addr=127.0.0.1:5003 laddr=127.0.0.1:6379 fd=10 name= age=3 db=0 user=sandbox-control cmd=client|list\n"
	got := connectionsByUser(list)
	want := map[string]int{"sb_worker": 2, "sandbox-control": 1}
	if !maps.Equal(got, want) {
		t.Errorf("connectionsByUser = %v, want %v", got, want)
	}
}
