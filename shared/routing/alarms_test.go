package routing_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/internal/alarmtest"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// TestRoutingErrorsAlarm: more than 50 messages that fail to route within 5 minutes fire the
// alarm, 50 do not. The messages are poison of two kinds (malformed JSON and a gateway
// message that is no dispatch), routed by the real router in batches of 10 as SQS delivers
// them, each batch its own invocation with its own Recorder, 20 seconds apart.
func TestRoutingErrorsAlarm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alarm := alarmtest.Load(t, "routing-errors")
	period := time.Date(2026, 1, 8, 13, 0, 0, 0, time.UTC) // a 5-minute period starts here
	// No dead-letter queue: poison messages are batch item failures, counted per kind.
	r := e.router(t, &queue{})

	route := func(n int) []byte {
		t.Helper()
		var lines []byte
		for start, invocation := 0, 0; start < n; start, invocation = start+10, invocation+1 {
			var batch []routing.Message
			for i := start; i < min(n, start+10); i++ {
				body := `nope`
				if i%2 == 1 {
					body = `{"op":7}`
				}
				batch = append(batch, msg(fmt.Sprintf("m%d", i), body))
			}
			var out bytes.Buffer
			emitter, err := metrics.NewEmitter(&out, alarmtest.Environment)
			if err != nil {
				t.Fatal(err)
			}
			rec := emitter.Begin()
			res := r.Route(t.Context(), rec, batch)
			if len(res.Failed) != len(batch) {
				t.Fatalf("%d of %d poison messages failed", len(res.Failed), len(batch))
			}
			if err := rec.Err(); err != nil {
				t.Fatalf("recordings rejected by the catalog: %v", err)
			}
			if err := rec.Flush(); err != nil {
				t.Fatal(err)
			}
			at := period.Add(time.Minute + time.Duration(invocation)*20*time.Second)
			retimed, err := alarmtest.Retime(out.Bytes(), at)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, retimed...)
		}
		return lines
	}

	at := period.Add(5 * time.Minute)
	ev := alarmtest.Expect(t, alarm, route(50), at, alarmtest.OK)
	if p := ev.Periods[0]; p.Value != 50 {
		t.Errorf("50 errors summed to %v (%d data points)", p.Value, p.Samples)
	}
	alarmtest.Expect(t, alarm, route(51), at, alarmtest.Alarm)
}
