package cleanup

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// latencyHook records the longest and total client-side time of each Redis command name.
type latencyHook struct {
	mu    sync.Mutex
	max   map[string]time.Duration
	total map[string]time.Duration
	calls map[string]int
}

func newLatencyHook() *latencyHook {
	return &latencyHook{max: map[string]time.Duration{}, total: map[string]time.Duration{}, calls: map[string]int{}}
}

func (h *latencyHook) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.max)
	clear(h.total)
	clear(h.calls)
}

func (h *latencyHook) record(name string, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.max[name] = max(h.max[name], d)
	h.total[name] += d
	h.calls[name]++
}

func (h *latencyHook) longest(names ...string) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	var m time.Duration
	for _, n := range names {
		m = max(m, h.max[n])
	}
	return m
}

func (h *latencyHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *latencyHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.record(strings.ToUpper(cmd.Name()), time.Since(start))
		return err
	}
}

func (h *latencyHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.record("PIPELINE", time.Since(start))
		return err
	}
}

var _ redis.Hook = (*latencyHook)(nil)

// comparePerNamespace makes BenchmarkFullRun also time the per-namespace deletion passes
// (SCAN+UNLINK per sandbox, KEYS+DEL per sandbox) after the run; they take minutes at the large
// sizes, so they are opt-in.
var comparePerNamespace = flag.Bool("cleanup.compare-per-namespace", false,
	"BenchmarkFullRun: also time deleting the keyspace namespace by namespace (SCAN+UNLINK, KEYS+DEL)")

// populate gives every sandbox perSandbox keys (its stream included), one MSET each.
func populate(b *testing.B, rdb redis.UniversalClient, ids []string, perSandbox int) {
	b.Helper()
	ctx := context.Background()
	for _, id := range ids {
		pairs := make([]any, 0, 2*perSandbox)
		for i := range perSandbox - 1 {
			pairs = append(pairs, fmt.Sprintf("%sstate:%d", keys.Namespace(id), i), "0123456789abcdef")
		}
		pipe := rdb.Pipeline()
		pipe.MSet(ctx, pairs...)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.EventStream(id), Values: map[string]any{"type": "MESSAGE_CREATE"}})
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// slowlogThreshold is the server-side execution time above which the benchmark's passes log
// a command in SLOWLOG; a pass with no entry of a command ran every one of them faster.
const slowlogThreshold = 500 * time.Microsecond

// serverMax returns the longest server-side execution time SLOWLOG holds for the commands,
// among entries about sandbox keys, and resets the log.
func serverMax(b *testing.B, admin redis.UniversalClient, commands ...string) time.Duration { // an admin client
	b.Helper()
	var mu sync.Mutex
	var longest time.Duration
	eachPrimary(b, admin, func(ctx context.Context, rdb *redis.Client) error {
		entries, err := rdb.SlowLogGet(ctx, -1).Result()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range entries {
			if len(e.Args) < 2 || !slices.Contains(commands, strings.ToUpper(e.Args[0])) || !strings.Contains(strings.Join(e.Args[1:], " "), "sandbox:{") {
				continue
			}
			longest = max(longest, e.Duration)
		}
		return rdb.Do(ctx, "SLOWLOG", "RESET").Err()
	})
	return longest
}

// eachPrimary runs fn on the standalone server, or on every primary of the cluster (the
// command statistics and SLOWLOG are per node; a replica's would count the writes again).
func eachPrimary(b *testing.B, admin redis.UniversalClient, fn func(ctx context.Context, rdb *redis.Client) error) {
	b.Helper()
	ctx := context.Background()
	var err error
	if cluster, ok := admin.(*redis.ClusterClient); ok {
		err = cluster.ForEachMaster(ctx, fn)
	} else {
		err = fn(ctx, admin.(*redis.Client))
	}
	if err != nil {
		b.Fatal(err)
	}
}

// commandStats returns the calls and the total server-side execution time of each command
// since the last CONFIG RESETSTAT, and resets the statistics. rdb is an admin client
// (testenv.RedisAdmin): the functions' user may not run INFO.
func commandStats(b *testing.B, admin redis.UniversalClient) map[string]struct {
	calls int64
	busy  time.Duration
} {
	b.Helper()
	type stat = struct {
		calls int64
		busy  time.Duration
	}
	var mu sync.Mutex
	out := map[string]stat{}
	eachPrimary(b, admin, func(ctx context.Context, rdb *redis.Client) error {
		info, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, line := range strings.Split(info, "\n") {
			name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
			name, isCmd := strings.CutPrefix(name, "cmdstat_")
			if !ok || !isCmd {
				continue
			}
			var calls, usec int64
			for _, f := range strings.Split(fields, ",") {
				k, v, _ := strings.Cut(f, "=")
				var err error
				switch k {
				case "calls":
					_, err = fmt.Sscan(v, &calls)
				case "usec":
					_, err = fmt.Sscan(v, &usec)
				}
				if err != nil {
					return fmt.Errorf("INFO commandstats: %s: %w", line, err)
				}
			}
			st := out[strings.ToUpper(name)]
			out[strings.ToUpper(name)] = stat{st.calls + calls, st.busy + time.Duration(usec)*time.Microsecond}
		}
		return rdb.ConfigResetStat(ctx).Err()
	})
	return out
}

// deletionPass is one way of deleting every namespace, one after the other. KEYS is denied
// to the functions' Redis user (it blocks the server for the whole keyspace), so that pass
// runs as the harness's admin: it is here as the server-side baseline, not as an option.
type deletionPass struct {
	name     string
	commands []string
	asAdmin  bool
	delete   func(ctx context.Context, rdb *redis.Client, id string) error
}

var deletionPasses = []deletionPass{
	{"scan1000+unlink", []string{"SCAN", "UNLINK", "EVALSHA"}, false, func(ctx context.Context, rdb *redis.Client, id string) error {
		pattern, _ := keys.NamespacePattern(id)
		_, _, err := unlinkMatching(ctx, rdb, pattern, 1000)
		return err
	}},
	{"scan10000+unlink", []string{"SCAN", "UNLINK", "EVALSHA"}, false, func(ctx context.Context, rdb *redis.Client, id string) error {
		pattern, _ := keys.NamespacePattern(id)
		_, _, err := unlinkMatching(ctx, rdb, pattern, 10000)
		return err
	}},
	{"keys+del", []string{"KEYS", "DEL"}, true, func(ctx context.Context, rdb *redis.Client, id string) error {
		pattern, _ := keys.NamespacePattern(id)
		found, err := rdb.Keys(ctx, pattern).Result()
		if err != nil || len(found) == 0 {
			return err
		}
		return rdb.Del(ctx, found...).Err()
	}},
}

// benchSizes are BenchmarkFullRun's sizes: 500 x 2,000 and 2,000 x 500 hold the same
// 1,000,000 keys, so the cost of a run can be compared at a constant keyspace.
var benchSizes = []struct{ sandboxes, keys int }{{20, 2000}, {100, 2000}, {500, 2000}, {2000, 500}}

// BenchmarkFullRun measures one cleanup run over S expired sandboxes (sub-benchmark
// sandboxes=S/keys=K), each with a schema cloned from the default template and K Redis keys
// (the default concurrency and SCAN COUNT), and reports the run's wall time and the Redis
// commands and server busy time (INFO commandstats) it cost. With
// -cleanup.compare-per-namespace it then fills the same keyspace again for each deletion pass
// and deletes it namespace by namespace, once with SCAN+UNLINK (at two COUNT hints) and once
// with KEYS+DEL, reporting each pass's time and its longest single command, client-side
// (go-redis hook) and server-side (SLOWLOG). Run it alone: SLOWLOG and the command statistics
// are server-wide. The sizes above 50 sandboxes run only with -benchtime=1x.
func BenchmarkFullRun(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("sandboxes=%d/keys=%d", size.sandboxes, size.keys), func(b *testing.B) {
			if size.sandboxes > 50 && flag.Lookup("test.benchtime").Value.String() != "1x" {
				b.Skip("run with -benchtime=1x")
			}
			benchmarkFullRun(b, size.sandboxes, size.keys)
		})
	}
}

func benchmarkFullRun(b *testing.B, n, perSandbox int) {
	b.StopTimer()
	if testenv.RedisCluster() && *comparePerNamespace {
		b.Skip("-cleanup.compare-per-namespace runs on the standalone server: its passes use one server's client")
	}
	ctx := context.Background()
	e := setup(b, envConfig{maxConns: DefaultConcurrency + 4, options: func(o *Options) {
		o.Concurrency, o.DropLockTimeout = DefaultConcurrency, config.DefaultDropLockTimeout
	}})
	// On the cluster the statistics are summed over the primaries, which serve every command.
	admin := testenv.RedisAdminOf(b, e.rdb)
	hook := newLatencyHook()
	e.rdb.AddHook(hook)
	admin.AddHook(hook) // the KEYS+DEL pass runs as admin
	slowlog := func(threshold, length string) {
		eachPrimary(b, admin, func(ctx context.Context, rdb *redis.Client) error {
			if err := rdb.ConfigSet(ctx, "slowlog-log-slower-than", threshold).Err(); err != nil {
				return err
			}
			return rdb.ConfigSet(ctx, "slowlog-max-len", length).Err()
		})
	}
	slowlog(fmt.Sprint(slowlogThreshold.Microseconds()), "100000")
	b.Cleanup(func() { slowlog("10000", "128") })

	var (
		runTotal, runBusy, scanBusy time.Duration
		runClientMax, runServerMax  time.Duration
		runCalls, scanCalls         int64
		unlinkCalls                 int64
	)
	passTotal := make([]time.Duration, len(deletionPasses))
	clientMax := make([]time.Duration, len(deletionPasses))
	serverLongest := make([]time.Duration, len(deletionPasses))
	serverBusy := make([]time.Duration, len(deletionPasses))
	calls := make([]int64, len(deletionPasses))
	for range b.N {
		sbs := e.createMany(b, n, 4)
		ids := make([]string, len(sbs))
		for j, sb := range sbs {
			ids[j] = sb.ID
		}
		populate(b, e.rdb, ids, perSandbox)
		commandStats(b, admin)
		hook.reset()
		serverMax(b, admin)

		b.StartTimer()
		start := time.Now()
		rep, err := e.s.Run(ctx, RunOptions{})
		elapsed := time.Since(start)
		b.StopTimer()
		if err != nil || len(rep.Destroyed) != n {
			b.Fatalf("run: destroyed %d of %d, failed %v, %v", len(rep.Destroyed), n, rep.Failed, err)
		}
		runClientMax = max(runClientMax, hook.longest("SCAN", "UNLINK", "EVALSHA"))
		runServerMax = max(runServerMax, serverMax(b, admin, "SCAN", "UNLINK", "EVALSHA"))
		stats := commandStats(b, admin)
		var iterCalls int64
		var iterBusy time.Duration
		for name, st := range stats {
			if name == "INFO" || strings.HasPrefix(name, "SLOWLOG") || strings.HasPrefix(name, "CONFIG") { // the benchmark's own
				continue
			}
			if name == "EVAL" || name == "EVALSHA" {
				// The commands a script calls are counted on their own (the scan step's SCAN and
				// UNLINK): counting the script too would count their time twice.
				continue
			}
			iterCalls += st.calls
			iterBusy += st.busy
		}
		runTotal += elapsed
		runCalls += iterCalls
		runBusy += iterBusy
		scanCalls += stats["SCAN"].calls
		unlinkCalls += stats["UNLINK"].calls
		scanBusy += stats["SCAN"].busy + stats["UNLINK"].busy
		b.Logf("full run of %d sandboxes x %d keys: %v; %d Redis commands (%d SCAN, %d UNLINK), Redis busy %v (SCAN+UNLINK %v), longest SCAN/UNLINK %v client-side, %v server-side",
			n, perSandbox, elapsed, iterCalls, stats["SCAN"].calls, stats["UNLINK"].calls, iterBusy, stats["SCAN"].busy+stats["UNLINK"].busy,
			hook.longest("SCAN", "UNLINK", "EVALSHA"), runServerMax)
		type cmdCalls struct {
			name  string
			calls int64
		}
		var top []cmdCalls
		for name, st := range stats {
			top = append(top, cmdCalls{name, st.calls})
		}
		slices.SortFunc(top, func(a, b cmdCalls) int { return int(b.calls - a.calls) })
		b.Logf("commands by calls: %v", top[:min(len(top), 12)])
		if left, _ := admin.DBSize(ctx).Result(); left > 1 { // the route generation stays
			b.Fatalf("the run left %d keys", left)
		}

		if !*comparePerNamespace {
			continue
		}
		for p, pass := range deletionPasses {
			populate(b, e.rdb, ids, perSandbox)
			hook.reset()
			serverMax(b, admin)
			commandStats(b, admin)
			start := time.Now()
			for _, id := range ids {
				rdb := e.rdb.(*redis.Client)
				if pass.asAdmin {
					rdb = admin.(*redis.Client)
				}
				if err := pass.delete(ctx, rdb, id); err != nil {
					b.Fatal(err)
				}
			}
			passTotal[p] += time.Since(start)
			clientMax[p] = max(clientMax[p], hook.longest(pass.commands...))
			serverLongest[p] = max(serverLongest[p], serverMax(b, admin, pass.commands...))
			stats := commandStats(b, admin)
			for _, c := range pass.commands {
				serverBusy[p] += stats[c].busy
				calls[p] += stats[c].calls
			}
			b.Logf("%s pass: %v, longest command %v client-side, %v server-side", pass.name, time.Since(start),
				hook.longest(pass.commands...), serverLongest[p])
			if left, _ := admin.DBSize(ctx).Result(); left > 1 {
				b.Fatalf("%s left %d keys", pass.name, left)
			}
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	iters := float64(b.N)
	b.ReportMetric(ms(runTotal)/iters, "run-ms")
	b.ReportMetric(ms(runTotal)/(iters*float64(n)), "ms/sandbox")
	b.ReportMetric(float64(runCalls)/iters, "redis-commands/run")
	b.ReportMetric(ms(runBusy)/iters, "redis-busy-ms/run")
	b.ReportMetric(float64(scanCalls)/iters, "scan-calls/run")
	b.ReportMetric(float64(unlinkCalls)/iters, "unlink-calls/run")
	b.ReportMetric(ms(scanBusy)/iters, "scan+unlink-busy-ms/run")
	b.ReportMetric(ms(runClientMax), "run-max-client-ms")
	b.ReportMetric(ms(runServerMax), "run-max-server-ms")
	if !*comparePerNamespace {
		return
	}
	for p, pass := range deletionPasses {
		b.ReportMetric(ms(passTotal[p])/iters, pass.name+"-ms")
		b.ReportMetric(ms(clientMax[p]), pass.name+"-max-client-ms")
		b.ReportMetric(ms(serverLongest[p]), pass.name+"-max-server-ms")
		b.ReportMetric(ms(serverBusy[p])/iters, pass.name+"-server-busy-ms")
		b.ReportMetric(float64(calls[p])/iters, pass.name+"-calls")
	}
	last := len(deletionPasses) - 1
	b.ReportMetric(float64(passTotal[0])/float64(passTotal[last]), "scan1000/keys-time-ratio")
}

// BenchmarkKeyspacePassMemory is the cost of measuring every namespace's memory in the
// keyspace pass (MEMORY USAGE ... SAMPLES 0 of each key, in the scan step) against the same
// pass that only reads the names, over 200 namespaces of 50 small keys and one of a hash of
// 100,000 fields (whose every field the measure counts): the baseline and the measured pass
// run in the same process over the same keyspace.
func BenchmarkKeyspacePassMemory(b *testing.B) {
	ctx := context.Background()
	e := setup(b)
	pipe := e.rdb.Pipeline()
	for range 200 {
		ns := keys.Namespace(sandbox.NewID())
		for k := range 50 {
			pipe.Set(ctx, ns+"k"+strconv.Itoa(k), strings.Repeat("v", 64), 0)
		}
	}
	big := keys.Namespace(sandbox.NewID()) + "hash"
	for start := 0; start < 100_000; start += 1000 {
		fields := make([]any, 0, 2000)
		for f := start; f < start+1000; f++ {
			fields = append(fields, "f"+strconv.Itoa(f), "v")
		}
		pipe.HSet(ctx, big, fields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	for _, measured := range []string{"", keys.NamespacesPrefix} {
		name := "names-only"
		if measured != "" {
			name = "with-memory"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				var total atomic.Int64
				n, err := scanKeys(ctx, e.rdb, keys.AllKeysPattern, measured, DefaultScanCount, func(_ []string, bytes []int64) error {
					for _, v := range bytes {
						total.Add(v)
					}
					return nil
				})
				if err != nil || n == 0 || (measured != "") != (total.Load() > 0) {
					b.Fatalf("pass over %d primaries: %v, %d bytes", n, err, total.Load())
				}
			}
		})
	}
}
