package cleanup

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/internal/alarmtest"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The scenario tests of the alarms on cleanup's metrics: real runs, their EMF lines placed in
// time as the schedule would place them (every 15 minutes), evaluated by alarmtest against
// the alarms of terraform/monitoring.tf.

// alarmEpoch is the start of a quarter hour, where the first evaluated period begins. Only
// the lines' timestamps are placed on it; the service keeps its own policy clock.
var alarmEpoch = time.Date(2026, 1, 8, 13, 0, 0, 0, time.UTC)

// quarter is the time of the scheduled run of quarter hour q: 2 minutes into it.
func quarter(q int) time.Time {
	return alarmEpoch.Add(time.Duration(q)*15*time.Minute + 2*time.Minute)
}

// runMetered runs cleanup once with a Recorder, as the cleanup function does, and returns
// the report and the EMF lines of the run, timestamped at.
func (e *env) runMetered(t *testing.T, opts RunOptions, at time.Time) (RunReport, []byte) {
	t.Helper()
	var out bytes.Buffer
	emitter, err := metrics.NewEmitter(&out, alarmtest.Environment)
	if err != nil {
		t.Fatal(err)
	}
	rec := emitter.Begin()
	opts.Metrics = rec
	rep, err := e.s.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("run: %v (%+v)", err, rep)
	}
	if err := rec.Err(); err != nil {
		t.Fatalf("recordings rejected by the catalog: %v", err)
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	lines, err := alarmtest.Retime(out.Bytes(), at)
	if err != nil {
		t.Fatal(err)
	}
	return rep, lines
}

// TestOrphanedResourcesAlarm: more than 5 orphans reported by every run for an hour fire the
// alarm, 5 do not. The orphans are spread over two resource types, fewer than 5 of each, so
// only the total can fire it: the [Environment] series must carry one data point per run,
// the total, for the alarm's Minimum to be that total.
func TestOrphanedResourcesAlarm(t *testing.T) {
	t.Parallel()
	alarm := alarmtest.Load(t, "orphaned-resources")
	for _, c := range []struct {
		schemas, namespaces int
		want                alarmtest.State
	}{
		{schemas: 3, namespaces: 3, want: alarmtest.Alarm},
		{schemas: 3, namespaces: 2, want: alarmtest.OK},
	} {
		total := c.schemas + c.namespaces
		t.Run(fmt.Sprintf("%d orphans", total), func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			// Schemas and Redis namespaces of sandboxes that have no row in the control plane.
			for range c.schemas {
				e.workerExec(t, "CREATE SCHEMA "+sandbox.SchemaName(sandbox.NewID()))
			}
			for range c.namespaces {
				mustSet(t, e, keys.Namespace(sandbox.NewID())+"k")
			}
			// The first run sees them for the first time; after the grace period they are orphans.
			if rep, _ := e.runMetered(t, RunOptions{}, alarmEpoch.Add(-time.Hour)); rep.Orphans == nil || rep.Orphans.Young != total {
				t.Fatalf("first run: %+v", rep.Orphans)
			}
			e.clock.Add(config.DefaultOrphanGrace)

			var lines []byte
			for q := range 4 {
				rep, run := e.runMetered(t, RunOptions{}, quarter(q))
				if rep.Orphans == nil || len(rep.Orphans.Orphans) != total ||
					rep.Orphans.Count(ResourceSchema) != c.schemas || rep.Orphans.Count(ResourceRedis) != c.namespaces {
					t.Fatalf("run %d reports %+v, want %d schemas and %d namespaces", q, rep.Orphans, c.schemas, c.namespaces)
				}
				lines = append(lines, run...)
				e.clock.Add(15 * time.Minute)
			}
			ev := alarmtest.Expect(t, alarm, lines, alarmEpoch.Add(time.Hour), c.want)
			for _, p := range ev.Periods {
				if p.Samples != 1 || p.Value != float64(total) {
					t.Errorf("period %s: %d data points, Minimum %v; want one per run, the total %d", p.Start.Format("15:04"), p.Samples, p.Value, total)
				}
			}
			// Three quarters of an hour is not an hour.
			alarmtest.Expect(t, alarm, lines, alarmEpoch.Add(45*time.Minute), alarmtest.OK)
		})
	}
}

// TestActiveSandboxesHighAlarm: a run that counts 101 sandboxes not destroyed fires the alarm,
// one that counts 100 does not. The sandboxes are rows only (no schema, role or stream): the
// gauge counts rows, and 101 provisioned sandboxes would take the test a minute.
func TestActiveSandboxesHighAlarm(t *testing.T) {
	t.Parallel()
	e := setup(t)
	alarm := alarmtest.Load(t, "active-sandboxes-high")
	addRunning := func(n int) {
		t.Helper()
		now := e.clock.Now()
		ids := make([]string, n)
		for i := range ids {
			ids[i] = sandbox.NewID()
		}
		e.exec(t, `INSERT INTO sandbox_control.sandboxes (id, name, owner, status, schema_name, db_role, created_at, updated_at, expires_at)
			SELECT id, 'load-' || id, $2, 'running', 'sb_' || id, 'sb_' || id, $3, $3, $4 FROM unnest($1::text[]) AS id`,
			ids, owner, now, now.Add(24*time.Hour))
	}

	addRunning(100)
	rep, at100 := e.runMetered(t, RunOptions{}, quarter(0))
	if rep.ActiveSandboxes != 100 {
		t.Fatalf("active %d, want 100", rep.ActiveSandboxes)
	}
	addRunning(1)
	rep, at101 := e.runMetered(t, RunOptions{}, quarter(1))
	if rep.ActiveSandboxes != 101 {
		t.Fatalf("active %d, want 101", rep.ActiveSandboxes)
	}
	lines := append(at100, at101...)
	alarmtest.Expect(t, alarm, lines, alarmEpoch.Add(15*time.Minute), alarmtest.OK)
	alarmtest.Expect(t, alarm, lines, alarmEpoch.Add(30*time.Minute), alarmtest.Alarm)
}

// TestCleanupFailuresAlarm: a run with one failed teardown fires the alarm for its period;
// the next run, which finishes that teardown with no failure, leaves the next period quiet.
func TestCleanupFailuresAlarm(t *testing.T) {
	t.Parallel()
	e := setup(t)
	alarm := alarmtest.Load(t, "cleanup-failures")
	target := e.createExpired(t, "fails-once", newGuild())
	e.s.inject = func(_ context.Context, point string, _ Step, id string) error {
		if point == "before" && id == target.ID {
			return errInjected
		}
		return nil
	}
	rep, failing := e.runMetered(t, RunOptions{}, quarter(0))
	e.s.inject = nil
	if len(rep.Failed) != 1 || rep.Failed[0].SandboxID != target.ID {
		t.Fatalf("first run: %+v", rep)
	}
	rep, clean := e.runMetered(t, RunOptions{}, quarter(1))
	if len(rep.Failed) != 0 || len(rep.Destroyed) != 1 {
		t.Fatalf("second run: %+v", rep)
	}
	firesForOneQuarter(t, alarm, failing, clean)
}

// firesForOneQuarter checks a Sum alarm of one 15-minute period on the lines of two runs, a
// quarter of an hour apart: in alarm after the first run's period, quiet after the second's,
// whose one data point is its 0.
func firesForOneQuarter(t *testing.T, alarm alarmtest.MetricAlarm, first, second []byte) {
	t.Helper()
	lines := append(first, second...)
	alarmtest.Expect(t, alarm, lines, alarmEpoch.Add(15*time.Minute), alarmtest.Alarm)
	ev := alarmtest.Expect(t, alarm, lines, alarmEpoch.Add(30*time.Minute), alarmtest.OK)
	if p := ev.Periods[0]; p.Samples != 1 || p.Value != 0 {
		t.Errorf("the second run's period: %d data points, Sum %v; want its 0", p.Samples, p.Value)
	}
}

// TestSandboxShareAlarms: a run that switches off a sandbox's Redis user (its worker held
// more connections than a sandbox may, or its keys more memory) fires sandbox-redis-crowding
// for its period, and one that takes a role's password away (its schema took more disk)
// sandbox-database-oversized; the next run, which finds nothing more to switch off (the
// schema truncated), leaves the next period quiet.
func TestSandboxShareAlarms(t *testing.T) {
	t.Parallel()
	const memoryLimit, schemaLimit = 64 << 10, 1 << 20
	redisAlarm := func(t *testing.T) alarmtest.MetricAlarm { return alarmtest.Load(t, "sandbox-redis-crowding") }
	databaseAlarm := func(t *testing.T) alarmtest.MetricAlarm { return alarmtest.Load(t, "sandbox-database-oversized") }
	for _, tc := range []struct {
		name  string
		alarm func(t *testing.T) alarmtest.MetricAlarm
		// crowd makes the sandbox's worker pass its share, calm brings it back under
		// (nil: nothing to do); switched reads the run's report.
		crowd, calm func(t *testing.T, e *env, sb *sandbox.Sandbox, creds provision.Credentials)
		switched    func(rep RunReport) []string
	}{
		{"connections", redisAlarm, func(t *testing.T, e *env, sb *sandbox.Sandbox, creds provision.Credentials) {
			e.workerConnections(t, sb.ID, creds, sandbox.RedisConnectionLimit+1)
		}, nil, func(rep RunReport) []string { return rep.RedisUsersSwitchedOff }},
		{"memory", redisAlarm, func(t *testing.T, e *env, sb *sandbox.Sandbox, creds provision.Credentials) {
			worker := e.workerConnections(t, sb.ID, creds, 1)[0]
			if err := worker.Set(t.Context(), keys.Namespace(sb.ID)+"blob", strings.Repeat("x", 2*memoryLimit), 0).Err(); err != nil {
				t.Fatal(err)
			}
		}, nil, func(rep RunReport) []string { return rep.RedisUsersOverMemory }},
		{"disk", databaseAlarm, func(t *testing.T, e *env, sb *sandbox.Sandbox, _ provision.Credentials) {
			e.workerExec(t, "CREATE TABLE "+sb.SchemaName+".rows AS SELECT repeat('x', 1000) AS v FROM generate_series(1, 3000)")
		}, func(t *testing.T, e *env, sb *sandbox.Sandbox, _ provision.Credentials) {
			e.workerExec(t, "TRUNCATE "+sb.SchemaName+".rows")
		}, func(rep RunReport) []string { return rep.DatabaseRolesSwitchedOff }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, envConfig{options: func(o *Options) { o.RedisMemoryLimit, o.SchemaSizeLimit = memoryLimit, schemaLimit }})
			alarm := tc.alarm(t)
			sb := e.create(t, "crowding", time.Hour)
			_, creds := e.worker(t, sb.ID)
			tc.crowd(t, e, sb, creds)
			rep, crowded := e.runMetered(t, RunOptions{}, quarter(0))
			if got := tc.switched(rep); len(got) != 1 {
				t.Fatalf("first run switched off %v, want %s", got, sb.ID)
			}
			if tc.calm != nil {
				tc.calm(t, e, sb, creds)
			}
			rep, calm := e.runMetered(t, RunOptions{}, quarter(1))
			if got := tc.switched(rep); len(got) != 0 {
				t.Fatalf("second run switched off %v", got)
			}
			firesForOneQuarter(t, alarm, crowded, calm)
		})
	}
}

// TestCleanupNotRunningAlarm: runs every 15 minutes keep the alarm quiet; three whole
// periods (45 minutes) without a run fire it, and so does no run at all.
func TestCleanupNotRunningAlarm(t *testing.T) {
	t.Parallel()
	e := setup(t)
	alarm := alarmtest.Load(t, "cleanup-not-running")
	var lines []byte
	for q := range 4 { // 13:02, 13:17, 13:32, 13:47
		_, run := e.runMetered(t, RunOptions{}, quarter(q))
		lines = append(lines, run...)
		e.clock.Add(15 * time.Minute)
	}
	for _, at := range []time.Duration{45 * time.Minute, time.Hour} {
		alarmtest.Expect(t, alarm, lines, alarmEpoch.Add(at), alarmtest.OK)
	}
	// The run of 13:47 is the last: at 14:30 the evaluated periods (13:45, 14:00, 14:15)
	// still hold it.
	alarmtest.Expect(t, alarm, lines, alarmEpoch.Add(time.Hour+30*time.Minute), alarmtest.OK)
	// By 14:45 three whole periods have passed without a run.
	alarmtest.Expect(t, alarm, lines, alarmEpoch.Add(time.Hour+45*time.Minute), alarmtest.Alarm)
	alarmtest.Expect(t, alarm, nil, alarmEpoch.Add(time.Hour), alarmtest.Alarm)
	// A dry run changes nothing and records nothing: it is no run.
	_, dry := e.runMetered(t, RunOptions{DryRun: true}, quarter(4))
	alarmtest.Expect(t, alarm, append(lines, dry...), alarmEpoch.Add(time.Hour+45*time.Minute), alarmtest.Alarm)
}
