package lambdakit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// captureLogs makes a JSON logger writing to the returned buffer the default for the test.
func captureLogs(t *testing.T, level slog.Level) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	previous := slog.Default()
	slog.SetDefault(lambdakit.NewLogger(&buf, level))
	t.Cleanup(func() { slog.SetDefault(previous) })
	return &buf
}

// records parses JSON log lines.
func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, r)
	}
	return out
}

func findRecord(t *testing.T, recs []map[string]any, message string) map[string]any {
	t.Helper()
	for _, r := range recs {
		if r["message"] == message {
			return r
		}
	}
	t.Fatalf("no log record %q in %v", message, recs)
	return nil
}

func newEmitter(t *testing.T, out *bytes.Buffer) *metrics.Emitter {
	t.Helper()
	e, err := metrics.NewEmitter(out, "test")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func invocationContext(requestID string) context.Context {
	return lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{
		AwsRequestID:       requestID,
		InvokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:sandboxes-cleanup",
	})
}

type runResult struct {
	Source string    `json:"source"`
	At     time.Time `json:"at"`
}

func TestInLambda(t *testing.T) {
	cases := []struct {
		runtimeAPI, functionName string
		want                     bool
	}{
		{"", "", false},
		{"", "sandboxes-api", false},
		{"127.0.0.1:9001", "sandboxes-api", true},
	}
	for _, c := range cases {
		t.Setenv("AWS_LAMBDA_RUNTIME_API", c.runtimeAPI)
		t.Setenv("AWS_LAMBDA_FUNCTION_NAME", c.functionName)
		if got := lambdakit.InLambda(); got != c.want {
			t.Errorf("runtime API %q, function %q: InLambda() = %v, want %v", c.runtimeAPI, c.functionName, got, c.want)
		}
	}
}

func TestStartOutsideLambda(t *testing.T) {
	t.Setenv("AWS_LAMBDA_RUNTIME_API", "")
	h := func(context.Context, events.CloudWatchEvent) (runResult, error) { return runResult{}, nil }
	if err := lambdakit.Start(h); !errors.Is(err, lambdakit.ErrNotInLambda) {
		t.Errorf("Start() = %v, want ErrNotInLambda", err)
	}
}

func TestWrapThroughLambdaHandler(t *testing.T) {
	logs := captureLogs(t, slog.LevelInfo)
	var emf bytes.Buffer
	handler := lambdakit.Wrap("cleanup", newEmitter(t, &emf),
		func(ctx context.Context, rec *metrics.Recorder, ev events.CloudWatchEvent) (runResult, error) {
			rec.Count(metrics.CleanupRuns, 1)
			slog.InfoContext(ctx, "cleanup run", "rule", ev.Resources[0])
			return runResult{Source: ev.Source, At: ev.Time}, nil
		})
	payload, err := os.ReadFile("testdata/scheduled-event.json")
	if err != nil {
		t.Fatal(err)
	}

	for i, requestID := range []string{"req-1", "req-2"} {
		response, err := lambda.NewHandler(handler).Invoke(invocationContext(requestID), payload)
		if err != nil {
			t.Fatal(err)
		}
		var got runResult
		if err := json.Unmarshal(response, &got); err != nil {
			t.Fatalf("response %s: %v", response, err)
		}
		if got.Source != "aws.events" || !got.At.Equal(time.Date(2026, 1, 8, 16, 45, 0, 0, time.UTC)) {
			t.Errorf("response %+v: the event was not decoded", got)
		}

		recs := records(t, logs)
		run := findRecord(t, recs, "cleanup run")
		if run["request_id"] != requestID {
			t.Errorf("handler log request_id = %v, want %s", run["request_id"], requestID)
		}
		done := findRecord(t, recs, "invocation finished")
		if done["request_id"] != requestID || done["function"] != "cleanup" || done["level"] != "INFO" {
			t.Errorf("invocation log %v", done)
		}
		if _, ok := done["duration_ms"].(float64); !ok {
			t.Errorf("invocation log has no duration: %v", done)
		}
		if done["cold_start"] != (i == 0) {
			t.Errorf("invocation %d: cold_start = %v", i, done["cold_start"])
		}
		logs.Reset()
	}
	if n := strings.Count(emf.String(), `"CleanupRuns":1`); n != 2 {
		t.Errorf("want one CleanupRuns line per invocation, got %d:\n%s", n, emf.String())
	}
}

func TestWrapRecoversPanic(t *testing.T) {
	logs := captureLogs(t, slog.LevelInfo)
	var emf bytes.Buffer
	handler := lambdakit.Wrap("router", newEmitter(t, &emf),
		func(ctx context.Context, rec *metrics.Recorder, ev events.SQSEvent) (events.SQSEventResponse, error) {
			rec.Count(metrics.RoutingErrors, 1, metrics.DimKind, "parse")
			var m map[string]int
			m["secret-token"] = 1 //nolint:staticcheck // SA5000: the panic (a runtime error with a stack) is what this test needs
			return events.SQSEventResponse{}, nil
		})
	payload := []byte(`{"Records":[{"messageId":"m1","body":"{}"}]}`)

	response, err := lambda.NewHandler(handler).Invoke(invocationContext("req-panic"), payload)
	if !errors.Is(err, lambdakit.ErrPanic) {
		t.Fatalf("Invoke() = %s, %v; want ErrPanic", response, err)
	}
	for _, leak := range []string{"nil map", "goroutine", "lambdakit_test", ".go:"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error returned to the caller leaks %q: %v", leak, err)
		}
	}
	if !strings.Contains(emf.String(), `"RoutingErrors":1`) {
		t.Errorf("metrics recorded before the panic were not flushed: %q", emf.String())
	}
	recs := records(t, logs)
	p := findRecord(t, recs, "handler panicked")
	if p["request_id"] != "req-panic" || !strings.Contains(p["panic"].(string), "nil map") {
		t.Errorf("panic log %v", p)
	}
	if stack, _ := p["stack"].(string); !strings.Contains(stack, "lambdakit_test.TestWrapRecoversPanic") {
		t.Errorf("panic log has no stack of the handler: %q", stack)
	}
	failed := findRecord(t, recs, "invocation failed")
	if failed["level"] != "ERROR" || failed["request_id"] != "req-panic" {
		t.Errorf("failure log %v", failed)
	}
}

func TestWrapLogsHandlerErrors(t *testing.T) {
	logs := captureLogs(t, slog.LevelInfo)
	var emf bytes.Buffer
	errStore := errors.New("control plane unreachable")
	handler := lambdakit.Wrap("cleanup", newEmitter(t, &emf),
		func(ctx context.Context, rec *metrics.Recorder, ev events.CloudWatchEvent) (runResult, error) {
			rec.Count(metrics.CleanupFailures, 1)
			return runResult{}, errStore
		})
	_, err := handler(invocationContext("req-err"), events.CloudWatchEvent{})
	if !errors.Is(err, errStore) {
		t.Fatalf("err = %v, want the handler's error unchanged", err)
	}
	failed := findRecord(t, records(t, logs), "invocation failed")
	if failed["error"] != errStore.Error() || failed["request_id"] != "req-err" {
		t.Errorf("failure log %v", failed)
	}
	if !strings.Contains(emf.String(), `"CleanupFailures":1`) {
		t.Errorf("metrics of a failed invocation were not flushed: %q", emf.String())
	}
}

func TestWrapWithoutEmitter(t *testing.T) {
	captureLogs(t, slog.LevelInfo)
	handler := lambdakit.Wrap("api", nil,
		func(ctx context.Context, rec *metrics.Recorder, in string) (string, error) {
			rec.Count(metrics.ApiRequests, 1, metrics.DimRoute, "GET /health")
			return in + "!", nil
		})
	if got, err := handler(context.Background(), "ok"); err != nil || got != "ok!" {
		t.Errorf("handler() = %q, %v", got, err)
	}
}

func TestLoggerRequestID(t *testing.T) {
	var buf bytes.Buffer
	logger := lambdakit.NewLogger(&buf, slog.LevelDebug)
	logger.InfoContext(invocationContext("req-42"), "inside")
	logger.Info("outside")
	logger.With("component", "store").WithGroup("db").InfoContext(invocationContext("req-43"), "grouped", "rows", 3)
	logger.DebugContext(invocationContext("req-44"), "debug")

	recs := records(t, &buf)
	if got := findRecord(t, recs, "inside")["request_id"]; got != "req-42" {
		t.Errorf("request_id = %v, want req-42", got)
	}
	if got, ok := findRecord(t, recs, "outside")["request_id"]; ok {
		t.Errorf("record without Lambda context has request_id %v", got)
	}
	grouped := findRecord(t, recs, "grouped")
	if grouped["component"] != "store" || !strings.Contains(buf.String(), "req-43") {
		t.Errorf("attrs or request id lost through With/WithGroup: %v", grouped)
	}
	if _, ok := findRecord(t, recs, "debug")["timestamp"]; !ok {
		t.Errorf("records use Lambda's key names: want timestamp: %v", recs)
	}
}

func TestSetupLoggingLevel(t *testing.T) {
	previous := slog.Default()
	t.Cleanup(func() { slog.SetDefault(previous) })
	cases := []struct {
		env       string
		debug     bool
		warnsOnce bool
	}{
		{"", false, false},
		{"debug", true, false},
		{"WARN", false, false},
		{"loud", false, true},
	}
	for _, c := range cases {
		t.Setenv("LOG_LEVEL", c.env)
		var buf bytes.Buffer
		logger := lambdakit.SetupLogging(&buf)
		if slog.Default() != logger {
			t.Errorf("LOG_LEVEL=%q: SetupLogging did not set the default logger", c.env)
		}
		if got := logger.Enabled(context.Background(), slog.LevelDebug); got != c.debug {
			t.Errorf("LOG_LEVEL=%q: debug enabled = %v, want %v", c.env, got, c.debug)
		}
		if got := strings.Contains(buf.String(), "LOG_LEVEL ignored"); got != c.warnsOnce {
			t.Errorf("LOG_LEVEL=%q: warning logged = %v, want %v", c.env, got, c.warnsOnce)
		}
	}
}

func TestInvokeFile(t *testing.T) {
	captureLogs(t, slog.LevelInfo)
	var emf bytes.Buffer
	var seenRequestID string
	handler := lambdakit.Wrap("cleanup", newEmitter(t, &emf),
		func(ctx context.Context, rec *metrics.Recorder, ev events.CloudWatchEvent) (runResult, error) {
			lc, _ := lambdacontext.FromContext(ctx)
			seenRequestID = lc.AwsRequestID
			rec.Count(metrics.CleanupRuns, 1)
			if ev.Source != "aws.events" {
				return runResult{}, errors.New("not a scheduled event")
			}
			return runResult{Source: ev.Source, At: ev.Time}, nil
		})
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	event, err := os.ReadFile("testdata/scheduled-event.json")
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := lambdakit.InvokeFile(context.Background(), handler, write("event.json", string(event)), &out); err != nil {
		t.Fatal(err)
	}
	if want := `{"source":"aws.events","at":"2026-01-08T16:45:00Z"}` + "\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(seenRequestID) {
		t.Errorf("handler saw request id %q, want a UUID", seenRequestID)
	}
	if !strings.Contains(emf.String(), `"CleanupRuns":1`) {
		t.Errorf("no metrics written: %q", emf.String())
	}

	failures := map[string]string{
		"missing file":  filepath.Join(dir, "absent.json"),
		"invalid JSON":  write("broken.json", `{"source":`),
		"wrong shape":   write("array.json", `[1, 2]`),
		"handler error": write("other.json", `{"source":"aws.s3"}`),
	}
	for name, path := range failures {
		out.Reset()
		if err := lambdakit.InvokeFile(context.Background(), handler, path, &out); err == nil {
			t.Errorf("%s: InvokeFile succeeded and printed %q", name, out.String())
		}
		if out.Len() != 0 {
			t.Errorf("%s: printed %q on failure", name, out.String())
		}
	}
}

func TestNewLocalContextKeepsLambdaContext(t *testing.T) {
	ctx := invocationContext("req-7")
	lc, _ := lambdacontext.FromContext(lambdakit.NewLocalContext(ctx))
	if lc.AwsRequestID != "req-7" {
		t.Errorf("request id %q, want req-7", lc.AwsRequestID)
	}
	a, _ := lambdacontext.FromContext(lambdakit.NewLocalContext(context.Background()))
	b, _ := lambdacontext.FromContext(lambdakit.NewLocalContext(context.Background()))
	if a.AwsRequestID == b.AwsRequestID {
		t.Errorf("two local invocations share request id %s", a.AwsRequestID)
	}
}
