package routing_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

const (
	gSummaryRun     = "1081240586043576380"
	gSummaryGone    = "1081240586043576381"
	gSummaryLeaving = "1081240586043576382"
	gSummaryExpired = "1081240586043576383"
	gSummaryParked  = "1081240586043576384"
	gSummaryProd    = "1081240586043576385"
	gSummaryReject  = "1081240586043576386"
)

// Every batch logs one line at info that says where its events went, by destination and by
// reason, and what failed: the line a developer watches in make dev's router log. Nothing
// else of a batch that goes well is logged at info.
func TestBatchSummaryIsLoggedAtInfoWithItsCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	running := e.sandbox(t, "summary-running", gSummaryRun)
	gone := e.sandbox(t, "summary-gone", gSummaryGone)
	leaving := e.sandbox(t, "summary-leaving", gSummaryLeaving)
	e.register(t, gSummaryExpired)
	short, err := e.manager.Create(ctx, owner, controlplane.CreateInput{
		Name: "summary-short", Owner: owner, TTL: time.Hour, Guilds: []string{gSummaryExpired},
	})
	if err != nil {
		t.Fatal(err)
	}
	parked := e.sandbox(t, "summary-parked", gSummaryParked)

	// leaving: destroy requested, so not running (dropped, reason "destroying").
	if _, _, err := e.manager.RequestDestroy(ctx, owner, leaving.ID); err != nil {
		t.Fatal(err)
	}
	// parked: torn down, its guild parked.
	e.tearDown(t, parked.ID)
	// gone: running, but its stream was removed (as the runbook's "stop routing" does).
	e.removeStream(t, gone.ID)
	// short: past its expiry, not torn down yet (parked, reason "sandbox_expired").
	e.clock.Add(short.ExpiresAt.Sub(e.clock.Now()) + time.Second)

	q := &queue{reject: func(id string) bool { return id == "m11" }}
	var logs bytes.Buffer
	r := e.router(t, q, func(o *routing.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	batch := []routing.Message{
		msg("m01", dispatch("MESSAGE_CREATE", 1, gSummaryRun)),
		msg("m02", dispatch("MESSAGE_UPDATE", 2, gSummaryRun)),
		msg("m03", dispatch("MESSAGE_CREATE", 3, gSummaryRun)),
		msg("m04", dispatch("MESSAGE_CREATE", 4, gSummaryProd)),
		msg("m05", dispatch("MESSAGE_CREATE", 5, "")), // a direct message: production
		msg("m06", dispatch("MESSAGE_CREATE", 6, gSummaryLeaving)),
		msg("m07", dispatch("MESSAGE_CREATE", 7, gSummaryGone)),
		msg("m08", dispatch("MESSAGE_CREATE", 8, gSummaryExpired)),
		msg("m09", dispatch("MESSAGE_CREATE", 9, gSummaryParked)),
		msg("m10", dispatch("MESSAGE_CREATE", 10, gSummaryParked)),
		msg("m11", dispatch("MESSAGE_CREATE", 11, gSummaryReject)), // production refuses it
		msg("m12", `not json`),                                     // poison; no dead-letter queue here, so a failure
	}
	res := r.Route(ctx, nil, batch)
	equal(t, "failed", res.Failed, []string{"m11", "m12"})
	equal(t, "stream", e.streamIDs(t, running.ID), []string{"m01", "m02", "m03"})

	var infos []map[string]any
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["level"] == "INFO" {
			infos = append(infos, rec)
		}
	}
	if len(infos) != 1 || infos[0]["msg"] != "batch routed" {
		t.Fatalf("want exactly one info line, the batch's summary; got %v\n%s", infos, logs.String())
	}
	got := infos[0]
	duration, ok := got["duration_ms"].(float64)
	if !ok || duration <= 0 {
		t.Errorf("duration_ms = %v, want a positive number of milliseconds", got["duration_ms"])
	}
	delete(got, "duration_ms")
	delete(got, "time")
	want := map[string]any{
		"level":             "INFO",
		"msg":               "batch routed",
		"messages":          12.0,
		"to_sandbox":        3.0,
		"to_production":     2.0,
		"parked":            3.0,
		"parked_by_reason":  map[string]any{"sandbox_expired": 1.0, "guild_parked": 2.0},
		"dropped":           2.0,
		"dropped_by_reason": map[string]any{"destroying": 1.0, "stream_gone": 1.0},
		"failed":            2.0,
		"poison":            1.0,
		"errors":            map[string]any{"malformed": 1.0, "delivery_production": 1.0},
	}
	if !maps.EqualFunc(got, want, func(a, b any) bool { return jsonEqual(t, a, b) }) {
		t.Errorf("batch summary:\n got %v\nwant %v", got, want)
	}
}

// A batch that went well logs no reason maps and no errors: only the counts.
func TestQuietBatchSummaryHasOnlyCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.sandbox(t, "summary-quiet", gSummaryRun)
	var logs bytes.Buffer
	r := e.router(t, &queue{}, func(o *routing.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	r.Route(t.Context(), nil, []routing.Message{
		msg("q1", dispatch("MESSAGE_CREATE", 1, gSummaryRun)),
		msg("q2", dispatch("MESSAGE_CREATE", 2, gSummaryProd)),
	})
	var rec map[string]any
	if err := json.Unmarshal(logs.Bytes(), &rec); err != nil {
		t.Fatalf("want one JSON line: %v\n%s", err, logs.String())
	}
	for key, want := range map[string]float64{
		"messages": 2, "to_sandbox": 1, "to_production": 1, "parked": 0, "dropped": 0, "failed": 0, "poison": 0,
	} {
		if rec[key] != want {
			t.Errorf("%s = %v, want %v", key, rec[key], want)
		}
	}
	for _, key := range []string{"parked_by_reason", "dropped_by_reason", "dead_lettered", "errors"} {
		if v, ok := rec[key]; ok {
			t.Errorf("%s = %v in a batch without any", key, v)
		}
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}
