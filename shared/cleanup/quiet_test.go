package cleanup

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
)

// logRecords returns the JSON log records written to logs since the last call, and forgets
// them.
func logRecords(t *testing.T, logs *testenv.SyncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(logs.Take()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func messagesAt(recs []map[string]any, level string) []string {
	var out []string
	for _, r := range recs {
		if r["level"] == level {
			out = append(out, r["msg"].(string))
		}
	}
	return out
}

// A scheduled run that finds nothing to do (nothing due, no warning, no orphan) logs nothing at
// info: make dev runs one every 30 seconds, and its log shows only the runs that did
// something. Its summary is still there at debug. A run that tears a sandbox down says so at
// info.
func TestIdleRunLogsNothingAtInfo(t *testing.T) {
	t.Parallel()
	logs := &testenv.SyncBuffer{}
	e := setup(t, envConfig{options: func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	e.create(t, "idle-keeper", 24*time.Hour, newGuild()) // live, far from its expiry
	job := &Job{Service: e.s}

	rep, err := job.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !idle(rep) || rep.ActiveSandboxes != 1 {
		t.Fatalf("want an idle run over one live sandbox, got %+v", rep)
	}
	recs := logRecords(t, logs)
	if info := messagesAt(recs, "INFO"); len(info) > 0 {
		t.Errorf("an idle run logged at info: %q", info)
	}
	if debug := messagesAt(recs, "DEBUG"); !slices.Contains(debug, "cleanup run finished") {
		t.Errorf("the idle run's summary is not at debug; debug lines: %q", debug)
	}

	sb := e.createExpired(t, "idle-expired", newGuild())
	rep, err = job.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if idle(rep) || len(rep.Destroyed) != 1 || rep.Destroyed[0] != sb.ID {
		t.Fatalf("want a run that destroyed %s, got %+v", sb.ID, rep)
	}
	var summary map[string]any
	for _, r := range logRecords(t, logs) {
		if r["msg"] == "cleanup run finished" {
			summary = r
		}
	}
	if summary == nil || summary["level"] != "INFO" || summary["destroyed"] != 1.0 {
		t.Errorf("the summary of a run that destroyed a sandbox: %v, want it at INFO with destroyed 1", summary)
	}
}

// Idle is false as soon as a run has anything to say.
func TestRunReportIdle(t *testing.T) {
	t.Parallel()
	for name, rep := range map[string]RunReport{
		"a candidate":         {CandidateCount: 1},
		"a warning sent":      {ExpiryWarnings: ExpiryReport{Sent: 1}},
		"a warning failed":    {ExpiryWarnings: ExpiryReport{Failed: 1}},
		"a warning due":       {ExpiryWarnings: ExpiryReport{Due: []apiwire.ExpiryWarning{{}}}},
		"an orphan":           {Orphans: &OrphanReport{Orphans: []Orphan{{Type: ResourceSchema}}}},
		"an orphan removal":   {OrphansRemoved: &OrphanRemoval{}},
		"orphans skipped":     {OrphansSkipped: true},
		"an error of its own": {Errors: []string{"publish pending route changes: boom"}},
	} {
		if idle(rep) {
			t.Errorf("a run with %s is idle", name)
		}
	}
	if !idle(RunReport{Orphans: &OrphanReport{Young: 3}}) {
		t.Error("a run with only young look-alikes (not orphans yet) is not idle")
	}
}
