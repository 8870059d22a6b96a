package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Failover of the Redis Cluster (RedisCluster mode): a test makes the primary of a slot
// unreachable with DEBUG SLEEP (its main thread blocks, so it answers neither clients nor the
// cluster bus), the replica is promoted after the node timeout, and the sleeper wakes up to
// find itself a replica of its former replica. scripts/services.sh starts the cluster with a
// replica per primary, a 2 s node timeout and DEBUG allowed from 127.0.0.1 for that.

const (
	// failoverTimeout bounds the wait for a promotion: the node timeout (2 s), the failure
	// report's spread and the replica's election delay (0.5 to 1 s) take about 4 s.
	failoverTimeout = 30 * time.Second
	pollEvery       = 100 * time.Millisecond
	// blockedProbe is how long a PING may go unanswered before its node counts as blocked:
	// far more than a loopback PING takes, even on a loaded machine.
	blockedProbe = 500 * time.Millisecond
)

// ClusterControl drives failovers of the Redis Cluster for one test.
type ClusterControl struct {
	t       testing.TB
	cluster redisCluster
	addrs   []string
}

// FailoverCluster returns the control of the cluster's failovers, for a test that holds the
// cluster (see Redis). It skips the test unless RedisCluster, saying why, and fails it when
// the cluster cannot fail over (a primary without a replica) or is not healthy. When the test
// ends it waits (bounded) until every node is back and the cluster healthy, so that the next
// holder finds it so.
func FailoverCluster(t testing.TB) *ClusterControl {
	t.Helper()
	if !RedisCluster() {
		t.Skipf("failover needs the Redis Cluster (%s=cluster): a standalone server has no replica to promote", redisModeVar)
	}
	cluster := holdCluster(t)
	c := &ClusterControl{t: t, cluster: cluster, addrs: cluster.addrs}
	c.WaitHealthy()
	if problem := clusterProblem(t.Context(), c.nodes()); problem != "" {
		t.Fatalf("testenv: redis cluster before the failover test: %s", problem)
	}
	t.Cleanup(func() {
		if err := waitClusterHealthy(context.Background(), t, c.cluster); err != nil {
			t.Errorf("testenv: redis cluster not healthy again at the end of %s: %v", t.Name(), err)
		}
	})
	return c
}

// node returns an administrator's client on one node (adminNode).
func (c *ClusterControl) node(addr string, readTimeout time.Duration) *redis.Client {
	return adminNode(c.t, addr, readTimeout)
}

// PrimaryOf returns the address of the primary serving key's slot, as the cluster says now.
func (c *ClusterControl) PrimaryOf(key string) string {
	c.t.Helper()
	addr, err := c.primaryOf(c.t.Context(), c.addrs[0], key)
	if err != nil {
		c.t.Fatalf("testenv: primary of %q: %v", key, err)
	}
	return addr
}

// primaryOf asks the node at via which node is the primary of key's slot.
func (c *ClusterControl) primaryOf(ctx context.Context, via, key string) (string, error) {
	n := c.node(via, time.Second)
	defer func() { _ = n.Close() }()
	slot, err := n.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", fmt.Errorf("CLUSTER KEYSLOT on %s: %w", via, err)
	}
	shards, err := n.ClusterShards(ctx).Result()
	if err != nil {
		return "", fmt.Errorf("CLUSTER SHARDS on %s: %w", via, err)
	}
	for _, shard := range shards {
		if !slices.ContainsFunc(shard.Slots, func(r redis.SlotRange) bool { return r.Start <= slot && slot <= r.End }) {
			continue
		}
		for _, node := range shard.Nodes {
			if node.Role == "master" {
				return net.JoinHostPort(node.IP, strconv.FormatInt(node.Port, 10)), nil
			}
		}
	}
	return "", fmt.Errorf("%s knows no primary of slot %d", via, slot)
}

// Unreachable makes the node at addr unreachable for d: DEBUG SLEEP on a connection of its
// own, in the background. It returns once the node is seen blocked (a PING goes unanswered),
// so that whatever the caller sends next reaches a node that does not answer.
func (c *ClusterControl) Unreachable(addr string, d time.Duration) {
	c.t.Helper()
	sleeper := c.node(addr, d+30*time.Second)
	done := make(chan error, 1)
	go func() {
		defer func() { _ = sleeper.Close() }()
		done <- sleeper.Do(context.Background(), "DEBUG", "SLEEP", strconv.FormatFloat(d.Seconds(), 'f', 3, 64)).Err()
	}()
	c.t.Cleanup(func() {
		if err := <-done; err != nil {
			c.t.Errorf("testenv: DEBUG SLEEP on %s: %v", addr, err)
		}
	})
	probe := c.node(addr, blockedProbe)
	defer func() { _ = probe.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A PING answered in time was read before the DEBUG SLEEP (or the sleep is not sent
		// yet); the first one left unanswered proves the node's main thread is blocked.
		err := probe.Ping(context.Background()).Err()
		if isTimeout(err) {
			return
		}
		select {
		case err := <-done:
			c.t.Fatalf("testenv: DEBUG SLEEP on %s ended before the node was seen blocked: %v", addr, err)
		default:
		}
		if err != nil {
			c.t.Fatalf("testenv: PING %s while making it unreachable: %v", addr, err)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("testenv: %s still answers PING 10 s after DEBUG SLEEP was sent", addr)
		}
	}
}

// Stopped stops the node's process (SIGSTOP) until the returned function, or the end of
// the test, continues it (SIGCONT). The node is then unreachable for exactly as long as the
// test needs, however slow the machine: Unreachable's DEBUG SLEEP ends after a fixed time,
// which a loaded machine can spend before the test has done what needed the node away.
// The node's process is found by its own INFO (process_id): the services run on this host.
func (c *ClusterControl) Stopped(addr string) (resume func()) {
	c.t.Helper()
	n := c.node(addr, time.Second)
	info, err := n.Info(c.t.Context(), "server").Result()
	_ = n.Close()
	if err != nil {
		c.t.Fatalf("testenv: INFO server of %s: %v", addr, err)
	}
	pid, _ := strconv.Atoi(infoFields(info)["process_id"])
	if pid <= 0 {
		c.t.Fatalf("testenv: no process_id in the INFO of %s", addr)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		c.t.Fatalf("testenv: SIGSTOP to %s (pid %d): %v", addr, pid, err)
	}
	resume = sync.OnceFunc(func() {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			c.t.Errorf("testenv: SIGCONT to %s (pid %d): %v", addr, pid, err)
		}
	})
	c.t.Cleanup(resume)
	probe := c.node(addr, blockedProbe)
	defer func() { _ = probe.Close() }()
	if err := probe.Ping(context.Background()).Err(); !isTimeout(err) {
		c.t.Fatalf("testenv: %s answered PING while stopped: %v", addr, err)
	}
	return resume
}

// isTimeout reports a network timeout: a probe of blockedProbe left unanswered by a node
// whose main thread is blocked (Unreachable) or whose process is stopped (Stopped).
func isTimeout(err error) bool {
	var netErr interface{ Timeout() bool }
	return errors.As(err, &netErr) && netErr.Timeout()
}

// WaitPromoted waits (bounded) until every other node agrees that a primary other than old
// serves key's slot, and says cluster_state:ok. It returns the new primary's address.
func (c *ClusterControl) WaitPromoted(old, key string) string {
	c.t.Helper()
	var promoted string
	err := c.poll(failoverTimeout, func(ctx context.Context) error {
		promoted = ""
		for _, addr := range c.addrs {
			if addr == old {
				continue
			}
			primary, err := c.primaryOf(ctx, addr, key)
			if err != nil {
				return err
			}
			if primary == old {
				return fmt.Errorf("%s still sees %s as the primary", addr, old)
			}
			if promoted != "" && primary != promoted {
				return fmt.Errorf("the nodes disagree on the new primary: %s and %s", promoted, primary)
			}
			promoted = primary
			if err := c.stateOK(ctx, addr); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("testenv: no failover of %s within %s: %v", old, failoverTimeout, err)
	}
	return promoted
}

// WaitFlaggedFailed waits (bounded) until every other node flags the node at addr as failed
// (CLUSTER NODES: "fail", not just "fail?"), the point from which their CLUSTER SLOTS leave
// out a replica, so a cluster client's topology lacks it.
func (c *ClusterControl) WaitFlaggedFailed(addr string) {
	c.t.Helper()
	err := c.poll(failoverTimeout, func(ctx context.Context) error {
		for _, other := range c.addrs {
			if other == addr {
				continue
			}
			n := c.node(other, time.Second)
			nodes, err := clusterNodes(ctx, n)
			_ = n.Close()
			if err != nil {
				return err
			}
			flagged := false
			for _, node := range nodes {
				if strings.HasPrefix(node.addr, addr+"@") {
					flagged = slices.Contains(node.flags, "fail")
				}
			}
			if !flagged {
				return fmt.Errorf("%s does not flag %s as failed yet", other, addr)
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("testenv: %s not flagged as failed within %s: %v", addr, failoverTimeout, err)
	}
}

// WaitHealthy waits (bounded) until the whole cluster is healthy (waitClusterHealthy): every
// node answers and agrees the cluster is ok, every primary's replicas are online (so a sleeper
// is back, as a replica), and no node flags another as failing (so every node is in every
// node's CLUSTER SLOTS again).
func (c *ClusterControl) WaitHealthy() {
	c.t.Helper()
	if err := waitClusterHealthy(c.t.Context(), c.t, c.cluster); err != nil {
		c.t.Fatalf("testenv: %v", err)
	}
}

// nodes returns an administrator's client on every node, closed when the test ends.
func (c *ClusterControl) nodes() []*redis.Client {
	out := make([]*redis.Client, len(c.addrs))
	for i, addr := range c.addrs {
		out[i] = c.node(addr, time.Second)
		c.t.Cleanup(func() { _ = out[i].Close() })
	}
	return out
}

// Role returns the role of the node at addr ("master" or "slave").
func (c *ClusterControl) Role(addr string) string {
	c.t.Helper()
	n := c.node(addr, time.Second)
	defer func() { _ = n.Close() }()
	role, err := n.Do(c.t.Context(), "ROLE").Slice()
	if err != nil || len(role) == 0 {
		c.t.Fatalf("testenv: ROLE on %s: %v", addr, err)
	}
	return fmt.Sprint(role[0])
}

// Addrs returns the address of every node of the cluster.
func (c *ClusterControl) Addrs() []string { return slices.Clone(c.addrs) }

func (c *ClusterControl) poll(timeout time.Duration, check func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(pollEvery)
	}
}

// stateOK checks one node's CLUSTER INFO: state ok, every slot served, none failing.
func (c *ClusterControl) stateOK(ctx context.Context, addr string) error {
	n := c.node(addr, time.Second)
	defer func() { _ = n.Close() }()
	info, err := n.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("CLUSTER INFO on %s: %w", addr, err)
	}
	for _, want := range []string{"cluster_state:ok", "cluster_slots_ok:16384", "cluster_slots_pfail:0", "cluster_slots_fail:0"} {
		if !strings.Contains(info, want) {
			return fmt.Errorf("%s: CLUSTER INFO lacks %s", addr, want)
		}
	}
	return nil
}

// NodesWithUser returns the addresses of the nodes that have the ACL user (ACL users are not
// replicated: each node has its own).
func (c *ClusterControl) NodesWithUser(user string) []string {
	c.t.Helper()
	var with []string
	for _, addr := range c.addrs {
		n := c.node(addr, time.Second)
		users, err := n.Do(c.t.Context(), "ACL", "USERS").StringSlice()
		_ = n.Close()
		if err != nil {
			c.t.Fatalf("testenv: ACL USERS on %s: %v", addr, err)
		}
		if slices.Contains(users, user) {
			with = append(with, addr)
		}
	}
	return with
}

// ClusterRedis returns a cluster client on the Redis Cluster as the functions' ACL user,
// whatever SANDBOX_TEST_REDIS_MODE says: for benchmarks comparing the standalone server with
// the cluster in one run. The test holds the cluster until it ends (the same lock as Redis);
// onNewNode, when not nil, is called with every node client the cluster client makes (a
// node-level hook sees each node's round trips). The client is closed when the test ends.
func ClusterRedis(t testing.TB, onNewNode func(*redis.Client)) *redis.ClusterClient {
	t.Helper()
	addrs := holdCluster(t).addrs
	user, password := RedisCredentials(t)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Username: user, Password: password})
	if onNewNode != nil {
		client.OnNewNode(onNewNode)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}
