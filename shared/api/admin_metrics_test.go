package api_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/cleanup"
	"github.com/botplatform/discord-sandboxes/shared/internal/alarmtest"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// TestAdminCleanupRecordsTheRunsMetrics: a run started through POST /v1/admin/cleanup
// records in the API invocation's metrics what a scheduled run records, flushed with the
// request's own metrics: the run, its teardowns, the orphans (total and per type) and the
// gauges.
func TestAdminCleanupRecordsTheRunsMetrics(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	e := newEnv(t, envOptions{cleanup: func(e *env) api.CleanupAdmin {
		s, err := cleanup.New(cleanup.Options{
			Manager: e.manager, Resources: e.resources, Redis: e.control, WorkerRedis: e.rdb, Now: clock.Now,
			OrphanGrace: time.Minute, DropLockTimeout: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return cleanup.Admin{Service: s}
	}})
	e.create(t, alice, "alpha", guild1)
	// A schema of a sandbox the control plane does not know: an orphan once the grace
	// period has passed since the first run saw it.
	ghost := sandbox.SchemaName(sandbox.NewID())
	if _, err := e.workers.Exec(context.Background(), "CREATE SCHEMA "+ghost); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.do(t, call{method: "POST", path: "/v1/admin/cleanup", principal: admin}), 200)
	clock.Add(time.Minute)

	e.emf.Reset()
	r := e.do(t, call{method: "POST", path: "/v1/admin/cleanup", principal: admin})
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.body), ghost) {
		t.Errorf("the run does not report the orphan %s: %s", ghost, r.body)
	}
	points, err := alarmtest.ParseEMF([]byte(e.emf.String()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]float64{}
	for _, p := range points {
		var dims []string
		for _, k := range p.DimensionNames() {
			if k != "Environment" {
				dims = append(dims, k+"="+p.Dimensions[k])
			}
		}
		if p.Dimensions["Environment"] != "test" {
			t.Errorf("point without the environment: %+v", p)
		}
		key := p.Metric + "{" + strings.Join(dims, ",") + "}"
		got[key] = append(got[key], p.Values...)
	}
	want := map[string][]float64{
		"CleanupRuns{}":                             {1},
		"CleanupSandboxes{}":                        {0},
		"SandboxesDestroyed{}":                      {0},
		"CleanupFailures{}":                         {0},
		"CleanupClaimsLost{}":                       {0},
		"CleanupSandboxesRemaining{}":               {0},
		"ActiveSandboxes{}":                         {1},
		"GuildMappings{}":                           {1},
		"OrphanedResources{}":                       {1},
		"OrphanedResources{ResourceType=schema}":    {1},
		"ApiRequests{}":                             {1},
		"ApiRequests{Route=POST /v1/admin/cleanup}": {1},
	}
	for _, rt := range cleanup.ResourceTypes() {
		if rt != cleanup.ResourceSchema {
			want[fmt.Sprintf("OrphanedResources{ResourceType=%s}", rt)] = []float64{0}
		}
	}
	// Expiry warnings are the scheduled run's (the api has no topic).
	if v, ok := got["ExpiryWarningsSent{}"]; ok {
		t.Errorf("an admin run recorded ExpiryWarningsSent %v", v)
	}
	for key, values := range want {
		if !slices.Equal(got[key], values) {
			t.Errorf("%s = %v, want %v", key, got[key], values)
		}
	}
	for _, key := range []string{"CleanupDuration{}", "ApiLatency{}", "ApiLatency{Route=POST /v1/admin/cleanup}"} {
		if len(got[key]) != 1 {
			t.Errorf("%s = %v, want one sample", key, got[key])
		}
	}
	if t.Failed() {
		t.Logf("published: %v", slices.Sorted(maps.Keys(got)))
	}
}
