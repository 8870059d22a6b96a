package metrics_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

func newEmitter(t testing.TB, out *bytes.Buffer) *metrics.Emitter {
	t.Helper()
	e, err := metrics.NewEmitter(out, "test")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// dimsFor returns a value for every dimension besides Environment that m's sets use.
func dimsFor(m metrics.Metric) []any {
	var dims []any
	var seen []metrics.Dimension
	for _, set := range m.DimensionSets {
		for _, d := range set {
			if d != metrics.DimEnvironment && !slices.Contains(seen, d) {
				seen = append(seen, d)
				dims = append(dims, d, "value-of-"+string(d))
			}
		}
	}
	return dims
}

// recordOnce records one value of m with the method its unit calls for.
func recordOnce(t *testing.T, rec *metrics.Recorder, m metrics.Metric) {
	t.Helper()
	switch m.Unit {
	case "Count":
		rec.Count(m, 3, dimsFor(m)...)
	case "Milliseconds":
		rec.Milliseconds(m, 1500*time.Microsecond, dimsFor(m)...)
	default:
		t.Fatalf("metric %s: no recording method for unit %s", m.Name, m.Unit)
	}
}

// unsetenv unsets key for the duration of the test.
func unsetenv(t *testing.T, key string) {
	t.Setenv(key, "")
	_ = os.Unsetenv(key)
}

func TestEveryCatalogMetricWritesValidEMF(t *testing.T) {
	envs := map[string]func(t *testing.T){
		"outside Lambda": func(t *testing.T) {
			unsetenv(t, "AWS_LAMBDA_FUNCTION_NAME")
			unsetenv(t, "AWS_LAMBDA_RUNTIME_API")
		},
		"inside Lambda": func(t *testing.T) {
			t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "sandboxes-api")
			t.Setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
			t.Setenv("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
			t.Setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
		},
	}
	for name, setenv := range envs {
		t.Run(name, func(t *testing.T) {
			setenv(t)
			for _, m := range metrics.Catalog() {
				t.Run(m.Name+" alone", func(t *testing.T) {
					var out bytes.Buffer
					rec := newEmitter(t, &out).Begin()
					recordOnce(t, rec, m)
					if err := rec.Flush(); err != nil {
						t.Fatal(err)
					}
					if err := rec.Err(); err != nil {
						t.Fatal(err)
					}
					// One line per dimension set: the total and the breakdown value.
					lines := splitLines(t, out.Bytes())
					if len(lines) != len(m.DimensionSets) {
						t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(m.DimensionSets), out.String())
					}
					var parsed []emfLine
					for _, line := range lines {
						parsed = append(parsed, checkLine(t, line))
					}
					checkMetricInLines(t, parsed, m)
				})
			}
			t.Run("all together", func(t *testing.T) {
				var out bytes.Buffer
				rec := newEmitter(t, &out).Begin()
				for _, m := range metrics.Catalog() {
					recordOnce(t, rec, m)
				}
				if err := rec.Flush(); err != nil {
					t.Fatal(err)
				}
				found := map[string]bool{}
				for _, line := range splitLines(t, out.Bytes()) {
					parsed := checkLine(t, line)
					for _, d := range parsed.AWS.CloudWatchMetrics {
						for _, def := range d.Metrics {
							found[def.Name] = true
						}
					}
				}
				for _, m := range metrics.Catalog() {
					if !found[m.Name] {
						t.Errorf("metric %s missing from the output", m.Name)
					}
				}
			})
		})
	}
}

// checkMetricInLines checks that the lines publish m with its catalog unit and the
// Environment value of the Emitter, once under each of its catalog dimension sets, one set
// per line.
func checkMetricInLines(t *testing.T, lines []emfLine, m metrics.Metric) {
	t.Helper()
	var want, got []string
	for _, set := range m.DimensionSets {
		want = append(want, fmt.Sprint(set))
	}
	for _, line := range lines {
		for _, d := range line.AWS.CloudWatchMetrics {
			for _, def := range d.Metrics {
				if def.Name != m.Name {
					continue
				}
				if def.Unit != m.Unit {
					t.Errorf("unit %q, want %q", def.Unit, m.Unit)
				}
				if env := line.Members["Environment"]; env != "test" {
					t.Errorf("Environment %v, want test", env)
				}
				for _, set := range d.Dimensions {
					got = append(got, fmt.Sprint(set))
				}
			}
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("metric %s published under the dimension sets %v, want %v", m.Name, got, want)
	}
}

// values maps every metric of every line to its value, keyed by "Dim=value,...|Metric".
func values(t *testing.T, out []byte) (map[string][]float64, int) {
	t.Helper()
	got := map[string][]float64{}
	lines := splitLines(t, out)
	for _, line := range lines {
		parsed := checkLine(t, line)
		for _, d := range parsed.AWS.CloudWatchMetrics {
			var dims []string
			for _, key := range d.Dimensions[0] { // the only set: checkLine checks that
				dims = append(dims, key+"="+parsed.Members[key].(string))
			}
			for _, def := range d.Metrics {
				key := strings.Join(dims, ",") + "|" + def.Name
				got[key] = append(got[key], parsed.Members[def.Name].(float64))
			}
		}
	}
	return got, len(lines)
}

// equalValues fails the test unless got and want (as values returns them) are equal.
func equalValues(t *testing.T, got, want map[string][]float64) {
	t.Helper()
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("values\n got %v\nwant %v", got, want)
	}
}

func TestAggregation(t *testing.T) {
	var out bytes.Buffer
	rec := newEmitter(t, &out).Begin()
	rec.Count(metrics.ApiRequests, 1, metrics.DimRoute, "GET /sandboxes")
	rec.Count(metrics.ApiRequests, 1, metrics.DimRoute, "GET /sandboxes")
	rec.Count(metrics.ApiRequests, 1, "Route", "POST /sandboxes")
	rec.Milliseconds(metrics.ApiLatency, 12*time.Millisecond, metrics.DimRoute, "GET /sandboxes")
	rec.Milliseconds(metrics.ApiLatency, 2500*time.Microsecond, metrics.DimRoute, "GET /sandboxes")
	rec.Gauge(metrics.ActiveSandboxes, 7)
	rec.Gauge(metrics.ActiveSandboxes, 9)
	rec.Count(metrics.CleanupFailures, 0)
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	got, lines := values(t, out.Bytes())
	want := map[string][]float64{
		"Environment=test|ApiRequests":                       {3},
		"Environment=test|ApiLatency":                        {12, 2.5},
		"Environment=test,Route=GET /sandboxes|ApiRequests":  {2},
		"Environment=test,Route=GET /sandboxes|ApiLatency":   {12, 2.5},
		"Environment=test,Route=POST /sandboxes|ApiRequests": {1},
		"Environment=test|ActiveSandboxes":                   {9},
		"Environment=test|CleanupFailures":                   {0},
	}
	equalValues(t, got, want)
	// Environment (the totals, the gauge and the count with the first latency sample, then
	// the second sample); GET (likewise); POST.
	if lines != 5 {
		t.Errorf("got %d lines, want 5:\n%s", lines, out.String())
	}
}

// TestBreakdownTotalsHaveALineOfTheirOwn pins the layout the alarms depend on: the total of
// a metric with a breakdown is on a line declaring [Environment] only, and each breakdown
// value on a line declaring [Environment, D] only, so a statistic over the [Environment]
// series sees one data point per flush, the total.
func TestBreakdownTotalsHaveALineOfTheirOwn(t *testing.T) {
	var out bytes.Buffer
	rec := newEmitter(t, &out).Begin()
	orphans := map[string]int{"schema": 0, "role": 0, "redis": 7, "redis_user": 0, "mapping": 0, "route_cache": 0}
	for rt, n := range orphans {
		rec.Count(metrics.OrphanedResources, n, metrics.DimResourceType, rt)
	}
	rec.Count(metrics.RoutingErrors, 2, metrics.DimKind, "malformed")
	rec.Count(metrics.RoutingErrors, 1, metrics.DimKind, "route_lookup")
	rec.Count(metrics.RoutingErrors, 3, metrics.DimKind, "malformed")
	rec.Milliseconds(metrics.ApiLatency, 4*time.Millisecond, metrics.DimRoute, "GET /health")
	rec.Milliseconds(metrics.ApiLatency, 9*time.Millisecond, metrics.DimRoute, "POST /v1/sandboxes")
	rec.Count(metrics.CleanupRuns, 1)
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}

	type published struct {
		set   string
		value float64
	}
	byMetric := map[string][]published{}
	lines := splitLines(t, out.Bytes())
	for _, line := range lines {
		parsed := checkLine(t, line) // one dimension set per line, no stray dimension members
		for _, d := range parsed.AWS.CloudWatchMetrics {
			var dims []string
			for _, key := range d.Dimensions[0] {
				dims = append(dims, key+"="+parsed.Members[key].(string))
			}
			for _, def := range d.Metrics {
				byMetric[def.Name] = append(byMetric[def.Name], published{strings.Join(dims, ","), parsed.Members[def.Name].(float64)})
			}
		}
	}
	for name, ps := range byMetric {
		slices.SortFunc(ps, func(a, b published) int { return strings.Compare(a.set, b.set) })
		byMetric[name] = ps
	}
	want := map[string][]published{
		"OrphanedResources": {
			{"Environment=test", 7},
			{"Environment=test,ResourceType=mapping", 0},
			{"Environment=test,ResourceType=redis", 7},
			{"Environment=test,ResourceType=redis_user", 0},
			{"Environment=test,ResourceType=role", 0},
			{"Environment=test,ResourceType=route_cache", 0},
			{"Environment=test,ResourceType=schema", 0},
		},
		"RoutingErrors": {
			{"Environment=test", 6},
			{"Environment=test,Kind=malformed", 5},
			{"Environment=test,Kind=route_lookup", 1},
		},
		// Every sample is in the total: its percentiles are those of all requests.
		"ApiLatency": {
			{"Environment=test", 4},
			{"Environment=test", 9},
			{"Environment=test,Route=GET /health", 4},
			{"Environment=test,Route=POST /v1/sandboxes", 9},
		},
		"CleanupRuns": {{"Environment=test", 1}},
	}
	if fmt.Sprint(byMetric) != fmt.Sprint(want) {
		t.Errorf("published\n got %v\nwant %v", byMetric, want)
	}
	// The Environment line holds every total and comes first; then one line per value.
	if first := checkLine(t, lines[0]); len(first.AWS.CloudWatchMetrics[0].Dimensions[0]) != 1 {
		t.Errorf("first line is not the Environment line: %s", lines[0])
	}
	if want := 2 + 6 + 2 + 2; len(lines) != want { // Environment x2 (latency samples), types, kinds, routes
		t.Errorf("got %d lines, want %d:\n%s", len(lines), want, out.String())
	}
}

// A gauge with a breakdown totals the last value of each breakdown value.
func TestBreakdownGaugeTotalsTheLastValues(t *testing.T) {
	var out bytes.Buffer
	rec := newEmitter(t, &out).Begin()
	rec.Gauge(metrics.OrphanedResources, 3, metrics.DimResourceType, "redis")
	rec.Gauge(metrics.OrphanedResources, 2, metrics.DimResourceType, "schema")
	rec.Gauge(metrics.OrphanedResources, 5, metrics.DimResourceType, "redis")
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	rec.Gauge(metrics.OrphanedResources, 1, metrics.DimResourceType, "role")
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	got, _ := values(t, out.Bytes())
	want := map[string][]float64{
		"Environment=test|OrphanedResources":                     {7, 1},
		"Environment=test,ResourceType=redis|OrphanedResources":  {5},
		"Environment=test,ResourceType=schema|OrphanedResources": {2},
		"Environment=test,ResourceType=role|OrphanedResources":   {1},
	}
	equalValues(t, got, want)
}

func TestFlushWritesOnlyNewValues(t *testing.T) {
	var out bytes.Buffer
	rec := newEmitter(t, &out).Begin()
	rec.Count(metrics.CleanupRuns, 1)
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	first := out.Len()
	if first == 0 {
		t.Fatal("first Flush wrote nothing")
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != first {
		t.Errorf("second Flush without new values wrote %q", out.String()[first:])
	}
	rec.Count(metrics.CleanupRuns, 1)
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	got, _ := values(t, out.Bytes())
	if want := []float64{1, 1}; !slices.Equal(got["Environment=test|CleanupRuns"], want) {
		t.Errorf("CleanupRuns values %v, want %v", got["Environment=test|CleanupRuns"], want)
	}
}

func TestInvalidRecordingsAreDroppedAndReported(t *testing.T) {
	var logs bytes.Buffer
	previous := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(previous) })

	type tier string
	cases := map[string]func(r *metrics.Recorder){
		"metric outside the catalog": func(r *metrics.Recorder) {
			r.Count(metrics.Metric{Name: "Invented", Unit: "Count"}, 1)
		},
		"undeclared dimension": func(r *metrics.Recorder) {
			r.Count(metrics.SandboxesCreated, 1, metrics.DimRoute, "GET /x")
		},
		"dimension of another metric": func(r *metrics.Recorder) {
			r.Count(metrics.EventsRouted, 1, metrics.DimTier, "redis")
		},
		"missing dimension": func(r *metrics.Recorder) {
			r.Count(metrics.RouteLookups, 1)
		},
		"environment given": func(r *metrics.Recorder) {
			r.Count(metrics.CleanupRuns, 1, metrics.DimEnvironment, "prod")
		},
		"odd dimension arguments": func(r *metrics.Recorder) {
			r.Count(metrics.EventsRouted, 1, metrics.DimDestination)
		},
		"key that is not a dimension": func(r *metrics.Recorder) {
			r.Count(metrics.EventsRouted, 1, 42, "sandbox")
		},
		"value that is not a string": func(r *metrics.Recorder) {
			r.Count(metrics.EventsRouted, 1, metrics.DimDestination, 3)
		},
		"dimension given twice": func(r *metrics.Recorder) {
			r.Count(metrics.EventsRouted, 1, metrics.DimDestination, "sandbox", metrics.DimDestination, "dropped")
		},
		"empty value": func(r *metrics.Recorder) {
			r.Count(metrics.EventsRouted, 1, metrics.DimDestination, " ")
		},
		"non-ASCII value": func(r *metrics.Recorder) {
			r.Count(metrics.RoutingErrors, 1, metrics.DimKind, "pärse")
		},
		"control character": func(r *metrics.Recorder) {
			r.Count(metrics.RoutingErrors, 1, metrics.DimKind, "parse\n")
		},
		"value too long": func(r *metrics.Recorder) {
			r.Count(metrics.RoutingErrors, 1, metrics.DimKind, strings.Repeat("k", 1025))
		},
		"Milliseconds on a Count metric": func(r *metrics.Recorder) {
			r.Milliseconds(metrics.CleanupRuns, time.Second)
		},
		"Count on a Milliseconds metric": func(r *metrics.Recorder) {
			r.Count(metrics.CleanupDuration, 1)
		},
		"Gauge on a Milliseconds metric": func(r *metrics.Recorder) {
			r.Gauge(metrics.CleanupDuration, 1)
		},
		"typed string key of the wrong type": func(r *metrics.Recorder) {
			r.Count(metrics.RouteLookups, 1, tier("Tier"), "redis")
		},
	}
	for name, record := range cases {
		t.Run(name, func(t *testing.T) {
			logs.Reset()
			var out bytes.Buffer
			e := newEmitter(t, &out)
			rec := e.Begin()
			record(rec)
			if err := rec.Flush(); err != nil {
				t.Fatal(err)
			}
			if out.Len() != 0 {
				t.Errorf("invalid recording wrote %s", out.String())
			}
			if err := rec.Err(); !errors.Is(err, metrics.ErrRejected) {
				t.Errorf("Err() = %v, want ErrRejected", err)
			}
			if got := e.Rejected(); got != 1 {
				t.Errorf("Rejected() = %d, want 1", got)
			}
			if !strings.Contains(logs.String(), `"msg":"metric value dropped"`) {
				t.Errorf("no warning logged: %s", logs.String())
			}
		})
	}

	t.Run("mixing Count and Gauge", func(t *testing.T) {
		var out bytes.Buffer
		e := newEmitter(t, &out)
		rec := e.Begin()
		rec.Gauge(metrics.ActiveSandboxes, 4)
		rec.Count(metrics.ActiveSandboxes, 1)
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(rec.Err(), metrics.ErrRejected) || e.Rejected() != 1 {
			t.Errorf("Err() = %v, Rejected() = %d; want ErrRejected and 1", rec.Err(), e.Rejected())
		}
		got, _ := values(t, out.Bytes())
		if v := got["Environment=test|ActiveSandboxes"]; !slices.Equal(v, []float64{4}) {
			t.Errorf("ActiveSandboxes = %v, want the gauge value [4]", v)
		}
	})
}

func TestValidRecordingsAreNotRejected(t *testing.T) {
	type destination string
	var out bytes.Buffer
	e := newEmitter(t, &out)
	rec := e.Begin()
	rec.Count(metrics.EventsRouted, 2, metrics.DimDestination, destination("sandbox"))
	rec.Count(metrics.RouteLookups, 5, "Tier", "memory")
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Err(); err != nil || e.Rejected() != 0 {
		t.Fatalf("Err() = %v, Rejected() = %d", err, e.Rejected())
	}
	got, _ := values(t, out.Bytes())
	if v := got["Environment=test,Destination=sandbox|EventsRouted"]; !slices.Equal(v, []float64{2}) {
		t.Errorf("EventsRouted = %v, want [2]", v)
	}
	if v := got["Environment=test,Tier=memory|RouteLookups"]; !slices.Equal(v, []float64{5}) {
		t.Errorf("RouteLookups = %v, want [5]", v)
	}
}

func TestConcurrentRecording(t *testing.T) {
	const goroutines, perGoroutine = 8, 500
	var out bytes.Buffer
	rec := newEmitter(t, &out).Begin()
	destinations := []string{"sandbox", "production", "dropped"}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				rec.Count(metrics.EventsRouted, 1, metrics.DimDestination, destinations[i%len(destinations)])
				rec.Gauge(metrics.RouterBatchSize, 10)
			}
			rec.Milliseconds(metrics.RouteLookupLatency, time.Duration(g+1)*time.Millisecond)
		})
	}
	wg.Wait()
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	got, _ := values(t, out.Bytes())
	total := 0.0
	for _, d := range destinations {
		v := got["Environment=test,Destination="+d+"|EventsRouted"]
		if len(v) != 1 {
			t.Fatalf("EventsRouted for %s: %v", d, v)
		}
		total += v[0]
	}
	if total != goroutines*perGoroutine {
		t.Errorf("EventsRouted sum over destinations %v, want %d", total, goroutines*perGoroutine)
	}
	if v := got["Environment=test|EventsRouted"]; !slices.Equal(v, []float64{goroutines * perGoroutine}) {
		t.Errorf("EventsRouted total %v, want [%d]", v, goroutines*perGoroutine)
	}
	samples := got["Environment=test|RouteLookupLatency"]
	slices.Sort(samples)
	if want := []float64{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(samples, want) {
		t.Errorf("RouteLookupLatency samples %v, want %v", samples, want)
	}
}

func TestConcurrentFlushesWriteWholeLines(t *testing.T) {
	var out bytes.Buffer
	e := newEmitter(t, &out) // Emitter serialises the writes itself: out is a plain buffer
	const invocations = 16
	var wg sync.WaitGroup
	for i := range invocations {
		wg.Go(func() {
			rec := e.Begin()
			rec.Count(metrics.ApiRequests, 1, metrics.DimRoute, fmt.Sprintf("GET /r%d", i))
			rec.Milliseconds(metrics.ApiLatency, time.Millisecond, metrics.DimRoute, fmt.Sprintf("GET /r%d", i))
			rec.Milliseconds(metrics.ApiLatency, 2*time.Millisecond, metrics.DimRoute, fmt.Sprintf("GET /r%d", i))
			if err := rec.Flush(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Per invocation: two lines for the totals (a latency sample each), two for its route.
	got, lines := values(t, out.Bytes())
	if lines != 4*invocations {
		t.Errorf("got %d lines, want %d", lines, 4*invocations)
	}
	if len(got) != 2*invocations+2 {
		t.Errorf("got %d series, want %d", len(got), 2*invocations+2)
	}
	if n := len(got["Environment=test|ApiRequests"]); n != invocations {
		t.Errorf("%d ApiRequests totals, want one per invocation (%d)", n, invocations)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFlushReportsWriteErrors(t *testing.T) {
	e, err := metrics.NewEmitter(failingWriter{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	rec := e.Begin()
	rec.Count(metrics.CleanupRuns, 1)
	if err := rec.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Flush() = %v, want the write error", err)
	}
}

func TestNewEmitterEnvironment(t *testing.T) {
	e, err := metrics.NewEmitter(&bytes.Buffer{}, "staging")
	if err != nil {
		t.Fatal(err)
	}
	if e.Environment() != "staging" {
		t.Errorf("Environment() = %q, want staging", e.Environment())
	}
	// No default here: ENVIRONMENT has one (config.DefaultEnvironment), so an empty value is
	// a caller that skipped the configuration.
	for _, bad := range []string{"", "   ", "prod\n", "prøde"} {
		if _, err := metrics.NewEmitter(&bytes.Buffer{}, bad); err == nil {
			t.Errorf("NewEmitter(%q) accepted an invalid dimension value", bad)
		}
	}
}

func TestNilRecorderDoesNothing(t *testing.T) {
	var e *metrics.Emitter
	rec := e.Begin()
	rec.Count(metrics.CleanupRuns, 1)
	rec.Gauge(metrics.ActiveSandboxes, 1)
	rec.Milliseconds(metrics.CleanupDuration, time.Second)
	if err := rec.Flush(); err != nil {
		t.Error(err)
	}
	if err := rec.Err(); err != nil {
		t.Error(err)
	}
}

func TestLineTimestampIsFlushTime(t *testing.T) {
	var out bytes.Buffer
	rec := newEmitter(t, &out).Begin()
	rec.Count(metrics.CleanupRuns, 1)
	before := time.Now().UnixMilli()
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	var line emfLine
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if ts := line.AWS.Timestamp; ts < before || ts > after {
		t.Errorf("Timestamp %d not within [%d, %d]", ts, before, after)
	}
}

func BenchmarkRecordCount(b *testing.B) {
	var out bytes.Buffer
	rec := newEmitter(b, &out).Begin()
	for b.Loop() {
		rec.Count(metrics.EventsRouted, 1, metrics.DimDestination, "sandbox")
	}
}

// BenchmarkInvocation is a router invocation's worth of metrics: record and flush.
func BenchmarkInvocation(b *testing.B) {
	var out bytes.Buffer
	e := newEmitter(b, &out)
	for b.Loop() {
		out.Reset()
		rec := e.Begin()
		rec.Gauge(metrics.RouterBatchSize, 10)
		for range 10 {
			rec.Count(metrics.EventsRouted, 1, metrics.DimDestination, "sandbox")
		}
		rec.Count(metrics.RouteLookups, 3, metrics.DimTier, "memory")
		rec.Count(metrics.RouteLookups, 1, metrics.DimTier, "redis")
		rec.Milliseconds(metrics.RouteLookupLatency, 2*time.Millisecond)
		rec.Milliseconds(metrics.RouterBatchDuration, 9*time.Millisecond)
		if err := rec.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
