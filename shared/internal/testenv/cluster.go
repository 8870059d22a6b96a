package testenv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis Cluster mode (SANDBOX_TEST_REDIS_MODE=cluster; scripts/test.sh's second pass runs
// the Redis packages so): Redis, RedisAdmin and RedisDB serve one of the clusters that
// `scripts/services.sh start redis-cluster` starts instead of the standalone server.
//
// A cluster has database 0 alone, and go test runs packages as parallel processes, so a test
// takes a whole cluster of the pool: an exclusive flock on that cluster's lock file, held from
// its first call until it ends. It takes whichever cluster is free, and waits while none is.
// Within a process the hold belongs to the test that took the cluster: its own later calls and
// its subtests share it (re-entrant); subtests of a parent that holds none take one each, as
// they would each lease a database of the standalone server; other tests of the process take
// another cluster, or wait. A
// cluster is taken once it is healthy (a failover test may have left one settling: the wait is
// bounded by clusterSettleTimeout), and every primary is emptied (FLUSHALL) when it is taken and
// when it is released, and sandbox ACL users (sb_*: on a cluster their names carry no database
// number, so a test's would collide with the next one's) are removed from every node.

const (
	redisModeVar = "SANDBOX_TEST_REDIS_MODE"
	// redisClusterAddrsVar lists the pool: the clusters separated by ';', each one's nodes by ','.
	redisClusterAddrsVar = "SANDBOX_TEST_REDIS_CLUSTER_ADDRS"
	// redisClusterLockVar lists each cluster's lock file, in the same order, separated by ';'.
	redisClusterLockVar = "SANDBOX_TEST_REDIS_CLUSTER_LOCK"
	// sandboxUserPrefix starts every sandbox's ACL user (shared/keys.ACLUser).
	sandboxUserPrefix = "sb_"
	// clusterPollInterval is the pause between two rounds of trying every cluster's lock.
	clusterPollInterval = 20 * time.Millisecond
	// clusterSettleTimeout bounds the wait for a taken cluster to be healthy: a primary put to
	// sleep (DEBUG SLEEP) is failed over after the node timeout (2 s), then wakes and rejoins
	// as a replica, which syncs from its new primary.
	clusterSettleTimeout = time.Minute
)

// RedisCluster reports whether the tests run on the Redis Cluster (SANDBOX_TEST_REDIS_MODE is
// "cluster") rather than the standalone server.
func RedisCluster() bool { return os.Getenv(redisModeVar) == "cluster" }

// OversizedBytes is mib MiB on the standalone server: what a test of a sandbox's oversized
// names or values writes to pass the server's output limit (64 MB, scripts/redis-server.conf).
// On a cluster it is 4 KiB: tens of MiB, replicated, held a node of a loaded machine past
// the cluster's node timeout, which failed it over under the test (seen in CI). The cluster
// pass then runs the same code paths, for names past 1 KiB, without the limit.
func OversizedBytes(mib int) int {
	if RedisCluster() {
		return 4 << 10
	}
	return mib << 20
}

// SkipOnRedisCluster skips the test on the Redis Cluster, saying why: only for tests of
// behaviour a cluster does not have (logical databases), never to hide a failure.
func SkipOnRedisCluster(t testing.TB, why string) {
	t.Helper()
	if RedisCluster() {
		t.Skipf("standalone Redis only (%s=cluster): %s", redisModeVar, why)
	}
}

// redisCluster is one cluster of the pool.
type redisCluster struct {
	addrs []string // every node
	lock  string   // the lock file whose flock a test holds while it uses the cluster
}

// clusterPool returns the clusters that SANDBOX_TEST_REDIS_CLUSTER_ADDRS and _LOCK list.
func clusterPool(t testing.TB) []redisCluster {
	t.Helper()
	groups := strings.Split(requireEnv(t, redisClusterAddrsVar), ";")
	locks := strings.Split(requireEnv(t, redisClusterLockVar), ";")
	if len(groups) != len(locks) {
		t.Fatalf("testenv: %s lists %d clusters and %s %d lock files: %s", redisClusterAddrsVar, len(groups), redisClusterLockVar, len(locks), howToRun)
	}
	pool := make([]redisCluster, len(groups))
	for i, group := range groups {
		pool[i] = redisCluster{addrs: strings.Split(group, ","), lock: locks[i]}
	}
	return pool
}

// clusterHold is one test's hold of a cluster in this process.
type clusterHold struct {
	refs    int           // calls not yet ended (each ends with the test that made it)
	ready   chan struct{} // closed once a cluster is taken and emptied, or that failed
	err     error
	cluster redisCluster
	lock    *os.File
}

var clusterHolds = struct {
	mu     sync.Mutex
	byTest map[string]*clusterHold // by the name of the test that took the cluster
}{byTest: map[string]*clusterHold{}}

// heldBy returns the name of the test whose hold t shares: t's own, or its closest ancestor's
// (a subtest uses the cluster its parent holds, as it would use the parent's client); "" when
// none holds one. The caller holds clusterHolds.mu.
func heldBy(t testing.TB) string {
	for name := t.Name(); ; {
		if clusterHolds.byTest[name] != nil {
			return name
		}
		i := strings.LastIndex(name, "/")
		if i < 0 {
			return ""
		}
		name = name[:i]
	}
}

// holdCluster makes t share the cluster that t or its closest ancestor holds, or else makes t
// the holder of a cluster of the pool, taking a free one (waiting while none is), until t ends;
// it returns the cluster. Subtests whose parent holds none take one each, so parallel subtests
// are as isolated from each other as on the standalone server, where each has its database.
func holdCluster(t testing.TB) redisCluster {
	t.Helper()
	pool := clusterPool(t)

	clusterHolds.mu.Lock()
	holder := heldBy(t)
	first := holder == ""
	if first {
		holder = t.Name()
		clusterHolds.byTest[holder] = &clusterHold{ready: make(chan struct{})}
	}
	h := clusterHolds.byTest[holder]
	h.refs++
	clusterHolds.mu.Unlock()
	t.Cleanup(func() { releaseCluster(t, holder, h) })

	if first {
		h.cluster, h.lock, h.err = takeCluster(t, pool)
		close(h.ready)
	}
	<-h.ready
	if h.err != nil {
		t.Fatalf("testenv: redis cluster: %v", h.err)
	}
	return h.cluster
}

// takeCluster takes the flock of a free cluster of the pool, trying them all in turn (from a
// random one, so that takers spread) and again after a pause while none is free, then waits for
// the cluster to be healthy and empties it.
func takeCluster(t testing.TB, pool []redisCluster) (redisCluster, *os.File, error) {
	ctx := t.Context()
	files := make([]*os.File, len(pool))
	for i, c := range pool {
		f, err := os.OpenFile(c.lock, os.O_RDWR, 0)
		if err != nil {
			closeFiles(files)
			return redisCluster{}, nil, fmt.Errorf("open the lock file (scripts/services.sh start redis-cluster makes it): %w", err)
		}
		files[i] = f
	}
	start := rand.IntN(len(pool))
	for {
		for n := range pool {
			i := (start + n) % len(pool)
			err := syscall.Flock(int(files[i].Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EINTR) {
				continue
			}
			f := files[i]
			files[i] = nil
			closeFiles(files)
			if err != nil {
				_ = f.Close()
				return redisCluster{}, nil, fmt.Errorf("flock %s: %w", pool[i].lock, err)
			}
			if err := settleCluster(ctx, t, pool[i]); err != nil {
				_ = f.Close() // releases the flock
				return redisCluster{}, nil, err
			}
			return pool[i], f, nil
		}
		select {
		case <-ctx.Done():
			closeFiles(files)
			return redisCluster{}, nil, fmt.Errorf("waiting for a free cluster: %w", ctx.Err())
		case <-time.After(clusterPollInterval):
		}
	}
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			_ = f.Close()
		}
	}
}

// settleCluster waits (at most clusterSettleTimeout) until c is healthy, then empties it.
func settleCluster(ctx context.Context, t testing.TB, c redisCluster) error {
	if err := waitClusterHealthy(ctx, t, c); err != nil {
		return err
	}
	if err := resetCluster(ctx, t, c); err != nil {
		return fmt.Errorf("empty the cluster %s: %w", c.addrs[0], err)
	}
	return nil
}

// releaseCluster ends one call's share of h; the last one empties the cluster and lets the
// next holder in.
func releaseCluster(t testing.TB, holder string, h *clusterHold) {
	clusterHolds.mu.Lock()
	h.refs--
	last := h.refs == 0
	if last {
		// A later call of the same test takes a cluster anew rather than this one, which is
		// being released.
		delete(clusterHolds.byTest, holder)
	}
	clusterHolds.mu.Unlock()
	if !last {
		return
	}
	<-h.ready
	if h.lock == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterSettleTimeout)
	defer cancel()
	if err := settleCluster(ctx, t, h.cluster); err != nil {
		t.Errorf("testenv: redis cluster: at the end of %s: %v", holder, err)
	}
	_ = h.lock.Close() // releases the flock
}

// waitClusterHealthy waits until every node of c answers and sees the cluster whole (state ok,
// every slot served, every node known) with as many primaries as slot ranges and every primary's
// replicas connected and synced, and no node flagging another as failing: after a failover,
// until the old primary has rejoined as a replica and every node sees it so. It gives up
// after clusterSettleTimeout, saying what was still wrong.
func waitClusterHealthy(ctx context.Context, t testing.TB, c redisCluster) error {
	ctx, cancel := context.WithTimeout(ctx, clusterSettleTimeout)
	defer cancel()
	nodes := make([]*redis.Client, len(c.addrs))
	for i, addr := range c.addrs {
		nodes[i] = adminNode(t, addr, time.Second)
	}
	defer func() {
		for _, node := range nodes {
			_ = node.Close()
		}
	}()
	for {
		problem := clusterProblem(ctx, nodes)
		if problem == "" || problem == noReplicas {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster %s is not healthy after %v: %s", strings.Join(c.addrs, ","), clusterSettleTimeout, problem)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// adminNode returns a client of the administrator on the one node at addr, with short
// timeouts (a node in DEBUG SLEEP must not stall its caller for long) and no retries; a
// readTimeout of zero keeps go-redis's default. The caller closes it.
func adminNode(t testing.TB, addr string, readTimeout time.Duration) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, Password: requireEnv(t, redisAdminPassVar),
		DialTimeout: time.Second, ReadTimeout: readTimeout, WriteTimeout: time.Second,
		MaxRetries: -1, PoolSize: 1,
	})
}

// clusterProblem returns what keeps the cluster of nodes from being healthy (see
// waitClusterHealthy), or "" when nothing does.
func clusterProblem(ctx context.Context, nodes []*redis.Client) string {
	primaries, replicas, size := 0, 0, -1
	replicasOf := map[string]int{} // a primary's address: its replicas online
	for _, node := range nodes {
		addr := node.Options().Addr
		info, err := node.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Sprintf("%s: CLUSTER INFO: %v", addr, err)
		}
		fields := infoFields(info)
		if fields["cluster_state"] != "ok" || fields["cluster_slots_ok"] != "16384" ||
			fields["cluster_known_nodes"] != strconv.Itoa(len(nodes)) {
			return fmt.Sprintf("%s: cluster_state:%s cluster_slots_ok:%s cluster_known_nodes:%s (of %d)",
				addr, fields["cluster_state"], fields["cluster_slots_ok"], fields["cluster_known_nodes"], len(nodes))
		}
		if size < 0 {
			size, _ = strconv.Atoi(fields["cluster_size"])
		}
		if problem := flaggedNodes(ctx, node); problem != "" {
			return problem
		}
		if problem := unlistedNodes(ctx, node, len(nodes)); problem != "" {
			return problem
		}
		repl, err := node.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Sprintf("%s: INFO replication: %v", addr, err)
		}
		fields = infoFields(repl)
		switch fields["role"] {
		case "master":
			primaries++
			online := 0
			for key, value := range fields {
				if strings.HasPrefix(key, "slave") && strings.Contains(value, "state=online") {
					online++
				}
			}
			replicasOf[addr] = online
		case "slave":
			replicas++
			if fields["master_link_status"] != "up" {
				return fmt.Sprintf("%s: a replica whose link to its primary %s:%s is %s",
					addr, fields["master_host"], fields["master_port"], fields["master_link_status"])
			}
		default:
			return fmt.Sprintf("%s: role %q", addr, fields["role"])
		}
	}
	if primaries != size || size == 0 {
		return fmt.Sprintf("%d primaries for %d slot ranges", primaries, size)
	}
	if replicas == 0 {
		return noReplicas
	}
	for addr, online := range replicasOf {
		if online != replicas/primaries {
			return fmt.Sprintf("%s: a primary with %d replicas online, want %d", addr, online, replicas/primaries)
		}
	}
	return ""
}

// clusterNode is one line of CLUSTER NODES: <id> <addr> <flags> <primary> <ping> <pong>
// <epoch> <link> [slots...].
type clusterNode struct {
	addr  string // ip:port@cport[,hostname]
	flags []string
	link  string
}

// clusterNodes asks node for its view of the cluster (CLUSTER NODES).
func clusterNodes(ctx context.Context, node *redis.Client) ([]clusterNode, error) {
	text, err := node.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER NODES: %w", node.Options().Addr, err)
	}
	var out []clusterNode
	for line := range strings.Lines(text) {
		if f := strings.Fields(line); len(f) >= 8 {
			out = append(out, clusterNode{addr: f[1], flags: strings.Split(f[2], ","), link: f[7]})
		}
	}
	return out, nil
}

// flaggedNodes returns what node's view of the cluster still holds against a node (CLUSTER
// NODES: a flag of failure or of a node not yet a member, a link down), or "" when nothing.
// A replica another node flags as failed is left out of that node's CLUSTER SLOTS, so a
// client's topology may lack it until the flag is cleared.
func flaggedNodes(ctx context.Context, node *redis.Client) string {
	nodes, err := clusterNodes(ctx, node)
	if err != nil {
		return err.Error()
	}
	addr := node.Options().Addr
	for _, n := range nodes {
		for _, flag := range n.flags {
			if flag == "fail" || flag == "fail?" || flag == "handshake" || flag == "noaddr" {
				return fmt.Sprintf("%s sees %s flagged %s", addr, n.addr, strings.Join(n.flags, ","))
			}
		}
		if n.link != "connected" {
			return fmt.Sprintf("%s sees its link to %s %s", addr, n.addr, n.link)
		}
	}
	return ""
}

// unlistedNodes returns what node's CLUSTER SLOTS leaves out of the cluster's want nodes, or
// "" when it lists them all. A client's topology is CLUSTER SLOTS: a replica left out of it is
// one no client reaches, so an ACL change that must reach every node fails (provision's
// forEveryNode). Redis leaves out a replica flagged as failed (flaggedNodes), and one whose
// replication offset is still 0: a new cluster's replicas, until their primary's first
// write or replication PING (every 10 s).
func unlistedNodes(ctx context.Context, node *redis.Client, want int) string {
	slots, err := node.ClusterSlots(ctx).Result() //nolint:staticcheck // SA1019: go-redis's cluster client reads its topology from CLUSTER SLOTS, not CLUSTER SHARDS
	if err != nil {
		return fmt.Sprintf("%s: CLUSTER SLOTS: %v", node.Options().Addr, err)
	}
	listed := map[string]bool{}
	for _, s := range slots {
		for _, n := range s.Nodes {
			listed[n.Addr] = true
		}
	}
	if len(listed) != want {
		return fmt.Sprintf("%s: CLUSTER SLOTS lists %d of the %d nodes (a replica flagged, or not synced yet: replication offset 0)",
			node.Options().Addr, len(listed), want)
	}
	return ""
}

// noReplicas is clusterProblem's answer for a cluster whose primaries have no replica: healthy,
// but unable to fail over (waitClusterHealthy accepts it; FailoverCluster does not).
const noReplicas = "no primary has a replica: the cluster cannot fail over (scripts/services.sh starts one per primary)"

// infoFields parses the key:value lines of an INFO or CLUSTER INFO answer.
func infoFields(info string) map[string]string {
	fields := map[string]string{}
	for line := range strings.Lines(info) {
		if key, value, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[key] = value
		}
	}
	return fields
}

// resetCluster empties every primary of c and removes the sandbox ACL users of every node.
func resetCluster(ctx context.Context, t testing.TB, c redisCluster) error {
	admin := clusterAdminClient(t, c)
	defer func() { _ = admin.Close() }()
	if err := admin.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		return node.FlushAll(ctx).Err()
	}); err != nil {
		return fmt.Errorf("FLUSHALL: %w", err)
	}
	return admin.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		return deleteSandboxUsers(ctx, node, func(string) bool { return true })
	})
}

// clusterAdminClient returns a cluster client on c as the administrator (the default user).
func clusterAdminClient(t testing.TB, c redisCluster) *redis.ClusterClient {
	t.Helper()
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:    c.addrs,
		Password: requireEnv(t, redisAdminPassVar),
	})
}
