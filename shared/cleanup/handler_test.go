package cleanup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// emfValues sums, per metric name, the values of the EMF lines published without a
// ResourceType dimension, and per type those of OrphanedResources.
func emfValues(t *testing.T, out []byte) (map[string]float64, map[string]float64) {
	t.Helper()
	totals, byType := map[string]float64{}, map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("EMF line is not JSON: %s", sc.Text())
		}
		if line["Environment"] != "test" {
			t.Fatalf("EMF line without Environment: %s", sc.Text())
		}
		for _, m := range metrics.Catalog() {
			v, ok := line[m.Name].(float64)
			if !ok {
				continue
			}
			if rt, ok := line[string(metrics.DimResourceType)].(string); ok {
				byType[rt] += v
			} else {
				totals[m.Name] += v
			}
		}
	}
	return totals, byType
}

// A run of the job, as the cleanup function's local mode and its Lambda adapter make it
// (lambdakit.WrapRun, scheduleadapter.Handler), tears down what is due and records the run's
// metrics in the invocation's Recorder.
func TestJobRunRecordsTheRunsMetrics(t *testing.T) {
	t.Parallel()
	e := setup(t)
	sb := e.createExpired(t, "scheduled", newGuild())
	e.create(t, "keeper", 168*e.m.Limits().MinTTL, newGuild())
	var out bytes.Buffer
	emitter, err := metrics.NewEmitter(&out, "test")
	if err != nil {
		t.Fatal(err)
	}
	job := &Job{Service: e.s}
	rep, err := lambdakit.WrapRun("cleanup", emitter, job.Run)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Destroyed) != 1 || rep.Destroyed[0] != sb.ID || rep.ActiveSandboxes != 1 || rep.GuildMappings != 1 || rep.Orphans == nil {
		t.Fatalf("report %+v", rep)
	}
	e.assertGone(t, sb.ID, sb.Guilds)

	totals, byType := emfValues(t, out.Bytes())
	want := map[string]float64{"CleanupRuns": 1, "CleanupSandboxes": 1, "SandboxesDestroyed": 1, "CleanupFailures": 0,
		"CleanupSandboxesRemaining": 0, "ActiveSandboxes": 1, "GuildMappings": 1, "ExpiryWarningsSent": 0}
	for name, v := range want {
		if got, ok := totals[name]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	if _, ok := totals["CleanupDuration"]; !ok {
		t.Error("no CleanupDuration")
	}
	for _, rt := range ResourceTypes() {
		if v, ok := byType[string(rt)]; !ok || v != 0 {
			t.Errorf("OrphanedResources %s = %v (present %v)", rt, v, ok)
		}
	}
}
