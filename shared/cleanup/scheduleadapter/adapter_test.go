package scheduleadapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/botplatform/discord-sandboxes/shared/cleanup"
	"github.com/botplatform/discord-sandboxes/shared/cleanup/scheduleadapter"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// job records its runs and answers with a report of its own.
type job struct {
	runs    int
	withRec bool
	err     error
}

func (j *job) Run(_ context.Context, rec *metrics.Recorder) (cleanup.RunReport, error) {
	j.runs++
	j.withRec = rec != nil
	return cleanup.RunReport{Destroyed: []string{"abcdefghijkl"}, ActiveSandboxes: 3}, j.err
}

// The scheduled event Lambda delivers (aws-lambda-go's own sample) becomes one run of the job,
// with the invocation's Recorder; its report is the response, and the event is logged.
func TestScheduledEventRunsTheJobOnce(t *testing.T) {
	var logs bytes.Buffer
	previous := slog.Default()
	slog.SetDefault(lambdakit.NewLogger(&logs, slog.LevelInfo))
	t.Cleanup(func() { slog.SetDefault(previous) })
	payload, err := os.ReadFile("testdata/scheduled-event.json")
	if err != nil {
		t.Fatal(err)
	}
	var emf bytes.Buffer
	emitter, err := metrics.NewEmitter(&emf, "test")
	if err != nil {
		t.Fatal(err)
	}
	j := &job{}
	handler := lambdakit.Wrap(scheduleadapter.FunctionName, emitter, scheduleadapter.Handler(j, slog.Default()))
	resp, err := lambda.NewHandler(handler).Invoke(lambdakit.NewLocalContext(context.Background()), payload)
	if err != nil {
		t.Fatal(err)
	}
	if j.runs != 1 || !j.withRec {
		t.Fatalf("job ran %d times, with a Recorder: %v; want once, with one", j.runs, j.withRec)
	}
	var rep cleanup.RunReport
	if err := json.Unmarshal(resp, &rep); err != nil || len(rep.Destroyed) != 1 || rep.ActiveSandboxes != 3 {
		t.Fatalf("response %s (%v): want the job's report", resp, err)
	}
	var event struct {
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(payload, &event); err != nil {
		t.Fatal(err)
	}
	var logged bool
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["message"] == "scheduled event received" {
			logged = rec["event_id"] == event.ID && rec["detail_type"] == "Scheduled Event"
		}
	}
	if !logged {
		t.Errorf("the scheduled event %s was not logged: %s", event.ID, logs.String())
	}
}

// A failed run fails the invocation, so that Lambda counts an error and the alarm fires.
func TestFailedRunFailsTheInvocation(t *testing.T) {
	payload, err := os.ReadFile("testdata/scheduled-event.json")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("database unreachable")
	handler := lambdakit.Wrap(scheduleadapter.FunctionName, nil, scheduleadapter.Handler(&job{err: boom}, slog.Default()))
	if _, err := lambda.NewHandler(handler).Invoke(lambdakit.NewLocalContext(context.Background()), payload); err == nil || !strings.Contains(err.Error(), boom.Error()) {
		t.Fatalf("invocation error %v, want the run's", err)
	}
}
