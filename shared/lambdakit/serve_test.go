package lambdakit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// echo is a handler that answers with its event's text and the request id it saw.
func echo(_ context.Context, _ *metrics.Recorder, in string) (string, error) {
	if in == "fail" {
		return "", errors.New("asked to fail")
	}
	return "echo " + in, nil
}

// Outside Lambda, -invoke runs the handler once on the file and never the local mode; without
// it the local mode runs; a function without one says so.
func TestServeOutsideLambda(t *testing.T) {
	t.Setenv("AWS_LAMBDA_RUNTIME_API", "")
	handler := lambdakit.Wrap("test", nil, echo)
	path := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(path, []byte(`"hello"`), 0o600); err != nil {
		t.Fatal(err)
	}
	localRan := false
	local := func(context.Context) error { localRan = true; return nil }

	var out bytes.Buffer
	if err := lambdakit.Serve(t.Context(), handler, lambdakit.Local{InvokeFile: path, Output: &out, Run: local}); err != nil {
		t.Fatal(err)
	}
	if out.String() != `"echo hello"`+"\n" || localRan {
		t.Errorf("-invoke printed %q, local mode ran: %v", out.String(), localRan)
	}

	stop := errors.New("local mode stopped")
	if err := lambdakit.Serve(t.Context(), handler, lambdakit.Local{Run: func(context.Context) error { return stop }}); !errors.Is(err, stop) {
		t.Errorf("without -invoke: %v, want the local mode's result", err)
	}
	if err := lambdakit.Serve(t.Context(), handler, lambdakit.Local{}); err == nil || !strings.Contains(err.Error(), "no local mode") {
		t.Errorf("without a local mode: %v", err)
	}
}

// Each call of WrapRun's function is an invocation of its own: a fresh request id, its
// metrics flushed, logged as a cold start the first time only.
func TestWrapRun(t *testing.T) {
	logs := captureLogs(t, slog.LevelInfo)
	var emf bytes.Buffer
	var ids []string
	run := lambdakit.WrapRun("cleanup", newEmitter(t, &emf), func(ctx context.Context, rec *metrics.Recorder) (int, error) {
		lc, _ := lambdacontext.FromContext(ctx)
		ids = append(ids, lc.AwsRequestID)
		rec.Count(metrics.CleanupRuns, 1)
		return len(ids), nil
	})
	for want := 1; want <= 2; want++ {
		if n, err := run(context.Background()); err != nil || n != want {
			t.Fatalf("run %d: %d, %v", want, n, err)
		}
	}
	if len(ids) != 2 || ids[0] == "" || ids[0] == ids[1] {
		t.Errorf("request ids %q: want two distinct ones", ids)
	}
	if n := strings.Count(emf.String(), `"CleanupRuns":1`); n != 2 {
		t.Errorf("%d metric lines, want one per run: %s", n, emf.String())
	}
	var cold []any
	for _, r := range records(t, logs) {
		if r["message"] == "invocation finished" {
			cold = append(cold, r["cold_start"])
		}
	}
	if fmt.Sprint(cold) != "[true false]" {
		t.Errorf("cold_start of the runs: %v, want [true false]", cold)
	}
}

// In Lambda, Serve serves the handler through the runtime API, whatever Local says. The
// function runs in a child process (lambda.Start never returns) against a fake runtime API.
func TestServeInLambda(t *testing.T) {
	if os.Getenv("LAMBDAKIT_SERVE_CHILD") == "1" {
		handler := lambdakit.Wrap("test", nil, echo)
		err := lambdakit.Serve(context.Background(), handler, lambdakit.Local{
			InvokeFile: "/nonexistent/event.json",
			Run:        func(context.Context) error { fmt.Println("LOCAL MODE RAN"); return nil },
		})
		fmt.Println("SERVE RETURNED", err)
		os.Exit(3)
	}

	responses := make(chan string, 1)
	var served atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		if served.Swap(true) {
			<-r.Context().Done() // one invocation is enough: keep the runtime waiting
			return
		}
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", "req-1")
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:test")
		_, _ = io.WriteString(w, `"from the runtime"`)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/{outcome}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		responses <- r.PathValue("id") + " " + r.PathValue("outcome") + " " + string(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	child := exec.Command(os.Args[0], "-test.run=^TestServeInLambda$")
	child.Env = append(os.Environ(), "LAMBDAKIT_SERVE_CHILD=1", "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var got string
	select {
	case got = <-responses:
	case <-time.After(30 * time.Second):
	}
	// The child serves until killed; its output is complete once it has exited.
	_ = child.Process.Kill()
	_ = child.Wait()
	if got != `req-1 response "echo from the runtime"` {
		t.Errorf("the runtime API received %q; child output:\n%s", got, out.String())
	}
	if strings.Contains(out.String(), "LOCAL MODE RAN") || strings.Contains(out.String(), "SERVE RETURNED") {
		t.Errorf("in Lambda, Serve ran the local mode or returned:\n%s", out.String())
	}
}
