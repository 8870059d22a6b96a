package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/internal/alarmtest"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// TestSchemaCreationFailuresAlarm: more than 3 sandbox creations whose schema cannot be
// cloned within 5 minutes fire the alarm, 3 do not. The failures are real: the template
// schema is gone, so every POST /v1/sandboxes fails to provision and answers 500, recording
// SchemaCreationFailures in its invocation's metrics.
func TestSchemaCreationFailuresAlarm(t *testing.T) {
	limits := sandbox.DefaultLimits()
	limits.OwnerQuota = 100           // the failed sandboxes stay, and must not hit the quota
	limits.DBReservedConnections = -1 // nor the connections of the test server
	e := newEnv(t, envOptions{limits: limits})
	alarm := alarmtest.Load(t, "schema-creation-failures")
	if _, err := e.workers.Exec(context.Background(), `DROP SCHEMA sandbox_template CASCADE`); err != nil {
		t.Fatal(err)
	}
	period := time.Date(2026, 1, 8, 13, 0, 0, 0, time.UTC) // a 5-minute period starts here

	// invocations holds the metrics of each request, the i-th timestamped 13:01 + i*30s.
	var invocations [][]byte
	fail := func() {
		t.Helper()
		e.emf.Reset()
		name := fmt.Sprintf("doomed-%d", len(invocations))
		wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes", principal: alice, body: `{"name":"` + name + `"}`}),
			500, sandbox.CodeProvisioningFailed, "")
		at := period.Add(time.Minute + time.Duration(len(invocations))*30*time.Second)
		retimed, err := alarmtest.Retime([]byte(e.emf.String()), at)
		if err != nil {
			t.Fatal(err)
		}
		invocations = append(invocations, retimed)
	}
	lines := func() []byte {
		var all []byte
		for _, l := range invocations {
			all = append(all, l...)
		}
		return all
	}

	at := period.Add(5 * time.Minute)
	for range 3 {
		fail()
	}
	ev := alarmtest.Expect(t, alarm, lines(), at, alarmtest.OK)
	if p := ev.Periods[0]; p.Value != 3 {
		t.Errorf("3 failures summed to %v (%d data points)", p.Value, p.Samples)
	}
	fail()
	alarmtest.Expect(t, alarm, lines(), at, alarmtest.Alarm)
	// Spread over two periods, the same 4 failures do not fire it.
	moved, err := alarmtest.Retime(invocations[3], at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	invocations[3] = moved
	alarmtest.Expect(t, alarm, lines(), at, alarmtest.OK)
}
