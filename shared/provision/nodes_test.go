package provision_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// authenticates reports whether user and password open a connection to node.
func authenticates(t *testing.T, node *redis.Client, user, password string) error {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: node.Options().Addr, DB: node.Options().DB,
		Username: user, Password: password, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	return c.Ping(context.Background()).Err()
}

// A sandbox's user is created, rotated and deleted on every node (ACL users are per node);
// the scheduled refresh gives a node that lacks a user (one that joined the cluster later) the
// user with its password, so the worker authenticates there too; and a user no node has any
// more (a teardown ran meanwhile) is not made again.
func TestRedisUserReachesEveryNode(t *testing.T) {
	e := setup(t)
	rdb := e.rdb
	ctx := context.Background()
	nodes := testenv.RedisNodes(t, rdb)

	id := sandbox.NewID()
	if err := e.p.Provision(ctx, id); err != nil {
		t.Fatal(err)
	}
	creds := rotated(t, e, id)
	for _, n := range nodes {
		if err := authenticates(t, n, creds.RedisUser, creds.RedisPassword); err != nil {
			t.Fatalf("node %s: %v", n.Options().Addr, err)
		}
	}
	listed, err := e.p.SandboxRedisUsers(ctx)
	if err != nil || len(listed) != 1 || listed[0] != id {
		t.Fatalf("SandboxRedisUsers: %v %v", listed, err)
	}

	if len(nodes) > 1 {
		// The last node loses the user: the orphan finder still lists it, and the refresh
		// makes it there again, password included.
		lacking := nodes[len(nodes)-1]
		if err := lacking.Do(ctx, "ACL", "DELUSER", creds.RedisUser).Err(); err != nil {
			t.Fatal(err)
		}
		if listed, err := e.p.SandboxRedisUsers(ctx); err != nil || len(listed) != 1 {
			t.Fatalf("SandboxRedisUsers with the user on some nodes: %v %v", listed, err)
		}
		if n, err := e.p.RefreshRedisUserRules(ctx, []string{id}); err != nil || n != 1 {
			t.Fatalf("RefreshRedisUserRules: %d %v", n, err)
		}
		for _, n := range nodes {
			if err := authenticates(t, n, creds.RedisUser, creds.RedisPassword); err != nil {
				t.Errorf("after the refresh, node %s: %v", n.Options().Addr, err)
			}
		}
	}

	res, err := e.p.DeleteRedisUsers(ctx, []string{id})
	if err != nil || res[id].Nodes != len(nodes) || res[id].Deleted != len(nodes) {
		t.Fatalf("DeleteRedisUsers: %+v %v, want %d nodes", res[id], err, len(nodes))
	}
	if n, err := e.p.RefreshRedisUserRules(ctx, []string{id}); err != nil || n != 0 {
		t.Fatalf("RefreshRedisUserRules of a deleted user: %d %v", n, err)
	}
	for _, n := range nodes {
		if err := n.Do(ctx, "ACL", "GETUSER", creds.RedisUser).Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("node %s: the deleted user came back: %v", n.Options().Addr, err)
		}
	}
}

// A replica the other nodes flag as failed is left out of the cluster's topology (their
// CLUSTER SLOTS), and it keeps its ACL users while it is out. A rotation or a deletion then
// fails, unavailable, naming the node, instead of reporting done while the old credential
// still works there; once the node is back, the next attempt completes the change everywhere.
func TestACLChangesWaitForAFailedReplica(t *testing.T) {
	e := setup(t)
	cluster := testenv.FailoverCluster(t)
	ctx := context.Background()
	id, _ := provisioned(t, e)
	old := rotated(t, e, id)
	replica := ""
	for _, addr := range cluster.Addrs() {
		if cluster.Role(addr) == "slave" {
			replica = addr
		}
	}

	resume := cluster.Stopped(replica)
	cluster.WaitFlaggedFailed(replica)
	unreached := func(what string, err error) {
		t.Helper()
		if sandbox.CodeOf(err) != sandbox.CodeUnavailable || !strings.Contains(err.Error(), replica) {
			t.Fatalf("%s with %s flagged as failed: %v, want unavailable naming it", what, replica, err)
		}
	}
	_, err := e.p.RotateCredentials(ctx, id, time.Now().Add(time.Hour), nil)
	unreached("rotation", err)
	_, err = e.p.DeleteRedisUsers(ctx, []string{id})
	unreached("deletion", err)

	resume()
	cluster.WaitHealthy()
	back := redis.NewClient(&redis.Options{Addr: replica})
	defer func() { _ = back.Close() }()
	if err := authenticates(t, back, old.RedisUser, old.RedisPassword); err != nil {
		t.Fatalf("the replica, back, lost the user on its own (the test proves nothing): %v", err)
	}
	// The failed deletion went through on the other nodes: only the replica has the user left.
	res, err := e.p.DeleteRedisUsers(ctx, []string{id})
	if n := len(cluster.Addrs()); err != nil || res[id].Nodes != n || res[id].Deleted != 1 {
		t.Fatalf("DeleteRedisUsers, the replica back: %+v %v, want %d nodes asked, the user deleted on 1", res[id], err, n)
	}
	if with := cluster.NodesWithUser(old.RedisUser); len(with) != 0 {
		t.Errorf("the user survived on %v", with)
	}
}
