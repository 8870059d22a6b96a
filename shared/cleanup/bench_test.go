package cleanup

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
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

const benchKeysPerSandbox = 2000

// populate gives every sandbox benchKeysPerSandbox keys (its stream included), one MSET each.
func populate(b *testing.B, rdb *redis.Client, ids []string) {
	b.Helper()
	ctx := context.Background()
	for _, id := range ids {
		pairs := make([]any, 0, 2*benchKeysPerSandbox)
		for i := range benchKeysPerSandbox - 1 {
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
func serverMax(b *testing.B, rdb *redis.Client, commands ...string) time.Duration {
	b.Helper()
	ctx := context.Background()
	entries, err := rdb.SlowLogGet(ctx, -1).Result()
	if err != nil {
		b.Fatal(err)
	}
	var longest time.Duration
	for _, e := range entries {
		if len(e.Args) < 2 || !slices.Contains(commands, strings.ToUpper(e.Args[0])) || !strings.Contains(strings.Join(e.Args[1:], " "), "sandbox:{") {
			continue
		}
		longest = max(longest, e.Duration)
	}
	if err := rdb.Do(ctx, "SLOWLOG", "RESET").Err(); err != nil {
		b.Fatal(err)
	}
	return longest
}

// commandStats returns the calls and the total server-side execution time of each command
// since the last CONFIG RESETSTAT, and resets the statistics.
func commandStats(b *testing.B, rdb *redis.Client) map[string]struct {
	calls int64
	busy  time.Duration
} {
	b.Helper()
	ctx := context.Background()
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]struct {
		calls int64
		busy  time.Duration
	}{}
	for _, line := range strings.Split(info, "\n") {
		name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		var calls, usec int64
		for _, f := range strings.Split(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "calls":
				fmt.Sscan(v, &calls)
			case "usec":
				fmt.Sscan(v, &usec)
			}
		}
		out[strings.ToUpper(name)] = struct {
			calls int64
			busy  time.Duration
		}{calls, time.Duration(usec) * time.Microsecond}
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	return out
}

// deletionPass is one way of deleting every namespace, one after the other.
type deletionPass struct {
	name     string
	commands []string
	delete   func(ctx context.Context, rdb *redis.Client, id string) error
}

var deletionPasses = []deletionPass{
	{"scan1000+unlink", []string{"SCAN", "UNLINK"}, func(ctx context.Context, rdb *redis.Client, id string) error {
		pattern, _ := keys.NamespacePattern(id)
		_, _, err := unlinkMatching(ctx, rdb, pattern, 1000)
		return err
	}},
	{"scan10000+unlink", []string{"SCAN", "UNLINK"}, func(ctx context.Context, rdb *redis.Client, id string) error {
		pattern, _ := keys.NamespacePattern(id)
		_, _, err := unlinkMatching(ctx, rdb, pattern, 10000)
		return err
	}},
	{"keys+del", []string{"KEYS", "DEL"}, func(ctx context.Context, rdb *redis.Client, id string) error {
		pattern, _ := keys.NamespacePattern(id)
		found, err := rdb.Keys(ctx, pattern).Result()
		if err != nil || len(found) == 0 {
			return err
		}
		return rdb.Del(ctx, found...).Err()
	}},
}

// BenchmarkFullRun measures one cleanup run over n expired sandboxes, each with a schema
// cloned from the default template and benchKeysPerSandbox Redis keys (the default
// concurrency and SCAN COUNT). It then fills the same keyspace again for each deletion pass
// and deletes it namespace by namespace, once with SCAN+UNLINK (what the teardown does, at
// two COUNT hints) and once with KEYS+DEL, reporting each pass's time and its longest single
// command, client-side (go-redis hook) and server-side (SLOWLOG). Run it alone: SLOWLOG is
// server-wide. The 500-sandbox size runs only with -benchtime=1x (it takes minutes).
func BenchmarkFullRun(b *testing.B) {
	for _, n := range []int{20, 500} {
		b.Run(fmt.Sprintf("sandboxes=%d", n), func(b *testing.B) {
			if n > 50 && flag.Lookup("test.benchtime").Value.String() != "1x" {
				b.Skip("run with -benchtime=1x")
			}
			benchmarkFullRun(b, n)
		})
	}
}

func benchmarkFullRun(b *testing.B, n int) {
	b.StopTimer()
	ctx := context.Background()
	e := setup(b, envConfig{maxConns: DefaultConcurrency + 4, options: func(o *Options) {
		o.Concurrency, o.DropLockTimeout = DefaultConcurrency, DefaultDropLockTimeout
	}})
	hook := newLatencyHook()
	e.rdb.AddHook(hook)
	for _, kv := range [][2]string{{"slowlog-log-slower-than", fmt.Sprint(slowlogThreshold.Microseconds())}, {"slowlog-max-len", "100000"}} {
		if err := e.rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		e.rdb.ConfigSet(context.Background(), "slowlog-log-slower-than", "10000")
		e.rdb.ConfigSet(context.Background(), "slowlog-max-len", "128")
	})

	var runTotal time.Duration
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
		populate(b, e.rdb, ids)

		b.StartTimer()
		start := time.Now()
		rep, err := e.s.Run(ctx, RunOptions{})
		elapsed := time.Since(start)
		b.StopTimer()
		if err != nil || len(rep.Destroyed) != n {
			b.Fatalf("run: destroyed %d of %d, failed %v, %v", len(rep.Destroyed), n, rep.Failed, err)
		}
		runTotal += elapsed
		b.Logf("full run of %d sandboxes: %v", n, elapsed)

		for p, pass := range deletionPasses {
			populate(b, e.rdb, ids)
			hook.reset()
			serverMax(b, e.rdb)
			commandStats(b, e.rdb)
			start := time.Now()
			for _, id := range ids {
				if err := pass.delete(ctx, e.rdb, id); err != nil {
					b.Fatal(err)
				}
			}
			passTotal[p] += time.Since(start)
			clientMax[p] = max(clientMax[p], hook.longest(pass.commands...))
			serverLongest[p] = max(serverLongest[p], serverMax(b, e.rdb, pass.commands...))
			stats := commandStats(b, e.rdb)
			for _, c := range pass.commands {
				serverBusy[p] += stats[c].busy
				calls[p] += stats[c].calls
			}
			b.Logf("%s pass: %v, longest command %v client-side, %v server-side", pass.name, time.Since(start),
				hook.longest(pass.commands...), serverLongest[p])
			if left, _ := e.rdb.DBSize(ctx).Result(); left != 0 {
				b.Fatalf("%s left %d keys", pass.name, left)
			}
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(runTotal)/float64(b.N), "run-ms")
	b.ReportMetric(ms(runTotal)/float64(b.N*n), "ms/sandbox")
	for p, pass := range deletionPasses {
		b.ReportMetric(ms(passTotal[p])/float64(b.N), pass.name+"-ms")
		b.ReportMetric(ms(clientMax[p]), pass.name+"-max-client-ms")
		b.ReportMetric(ms(serverLongest[p]), pass.name+"-max-server-ms")
		b.ReportMetric(ms(serverBusy[p])/float64(b.N), pass.name+"-server-busy-ms")
		b.ReportMetric(float64(calls[p])/float64(b.N), pass.name+"-calls")
	}
	last := len(deletionPasses) - 1
	b.ReportMetric(float64(passTotal[0])/float64(passTotal[last]), "scan1000/keys-time-ratio")
}
