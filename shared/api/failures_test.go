package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// logLine is one JSON line of the handler's log.
type logLine struct {
	Message   string `json:"msg"`
	RequestID string `json:"request_id"`
	Code      string `json:"code"`
	Error     string `json:"error"`
}

// failureLog returns the "request failed" line logged under the request id.
func failureLog(t *testing.T, logs, requestID string) logLine {
	t.Helper()
	for line := range strings.SplitSeq(logs, "\n") {
		var l logLine
		if json.Unmarshal([]byte(line), &l) == nil && l.RequestID == requestID && l.Error != "" {
			return l
		}
	}
	t.Fatalf("no log line with the error under request id %s:\n%s", requestID, logs)
	return logLine{}
}

// A store error is answered with a stable message, a code and the request id; the error
// itself (address, SQLSTATE) is only in the log line, under the same request id.
func TestStoreErrorsAnswerAStableMessageAndLogTheCause(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.create(t, alice, "alpha")

	t.Run("unreachable database", func(t *testing.T) {
		// An API whose database refuses connections: "dial tcp 127.0.0.1:PORT: connect:
		// connection refused".
		addr := testenv.ClosedAddr(t)
		deadURL := strings.Replace(e.dbURL, hostOf(t, e.dbURL), addr, 1)
		dead, err := pgxpool.New(context.Background(), deadURL) // connects lazily
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(dead.Close)
		logs := &testenv.SyncBuffer{}
		h, err := api.New(testConfig(t, deadURL, testenv.RedisAddr(t)), api.Deps{
			Sandboxes: controlplane.NewManager(dead, controlplane.Options{Limits: sandbox.DefaultLimits()}),
			Resources: provision.New(dead, e.rdb, "sandbox_template"), Routes: e.cache,
			DB: dead, Redis: e.control, WorkerRedis: e.rdb, Logger: lambdakit.NewLogger(logs, slog.LevelDebug),
		})
		if err != nil {
			t.Fatal(err)
		}
		down := *e
		down.invoke = lambdaOf(h)
		r := down.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: alice})
		p := wantProblem(t, r, 503, sandbox.CodeUnavailable, "")
		if r.headers["Retry-After"] == "" {
			t.Errorf("a 503 without Retry-After: %v", r.headers)
		}
		_, port, _ := net.SplitHostPort(addr)
		for _, leak := range []string{addr, port, "127.0.0.1", "connection refused", "dial"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("the answer carries %q: %s", leak, r.body)
			}
		}
		l := failureLog(t, logs.String(), p.RequestID)
		if l.Code != string(sandbox.CodeUnavailable) || !strings.Contains(l.Error, "dial tcp "+addr) ||
			!strings.Contains(l.Error, "connection refused") {
			t.Errorf("the log line lacks the error: %+v", l)
		}
	})

	t.Run("database error", func(t *testing.T) {
		// A statement the database refuses (the schema is not what the code expects): 500,
		// and the SQLSTATE only in the log.
		if _, err := e.direct.Exec(context.Background(),
			`ALTER TABLE sandbox_control.guild_mappings RENAME COLUMN guild_id TO guild_id_renamed`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = e.direct.Exec(context.Background(), `ALTER TABLE sandbox_control.guild_mappings RENAME COLUMN guild_id_renamed TO guild_id`)
		})
		e.logs.Reset()
		r := e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: alice})
		p := wantProblem(t, r, 500, sandbox.CodeInternal, "")
		for _, leak := range []string{"42703", "guild_id", "column"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("the answer carries %q: %s", leak, r.body)
			}
		}
		if !strings.Contains(p.Detail, p.RequestID) {
			t.Errorf("the detail does not give the request id to quote: %q", p.Detail)
		}
		if l := failureLog(t, e.logs.String(), p.RequestID); !strings.Contains(l.Error, "SQLSTATE 42703") {
			t.Errorf("the log line lacks the error: %+v", l)
		}
	})
}

// hostOf returns the host:port of a URL.
func hostOf(t *testing.T, raw string) string {
	t.Helper()
	_, rest, ok := strings.Cut(raw, "@")
	if !ok {
		_, rest, _ = strings.Cut(raw, "://")
	}
	host, _, _ := strings.Cut(rest, "/")
	return host
}

// documentedFailures returns the stable message of each failure code, from docs/api.md: the
// table must list every code of sandbox.FailureCodes(), and the API must answer its messages.
func documentedFailures(t *testing.T) map[sandbox.Code]string {
	t.Helper()
	out := map[sandbox.Code]string{}
	for _, cells := range docTable(t, "### Recorded failures") {
		if len(cells) == 2 && cells[0] != "code" && !strings.HasPrefix(cells[0], "---") {
			out[sandbox.Code(cells[0])] = cells[1]
		}
	}
	if len(out) != len(sandbox.FailureCodes()) {
		t.Fatalf("docs/api.md, Recorded failures, lists %v; the codes are %v", out, sandbox.FailureCodes())
	}
	for _, c := range sandbox.FailureCodes() {
		if out[c] == "" {
			t.Fatalf("docs/api.md, Recorded failures, lacks %s", c)
		}
	}
	return out
}

// Recorded failures (last_error and the teardown record's last failure, raw error text
// written by provisioning and cleanup) reach owners as a stable message and a code; admins
// see the text as recorded, with the same code.
func TestOwnersSeeStableMessagesForRecordedFailures(t *testing.T) {
	messages := documentedFailures(t)
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha")
	const (
		refused     = "dial tcp 127.0.0.1:28206: connect: connection refused"
		lockTimeout = "drop schema and role of x: ERROR: canceling statement due to lock timeout (SQLSTATE 55P03)"
		missing     = `provision schema: ERROR: relation "sandbox_template.t" does not exist (SQLSTATE 42P01)`
	)
	record := `{"mark_destroying":{"at":"2026-01-20T10:00:00Z","actor":"alice","from":"running"},
		"last_failure":{"at":"2026-01-20T10:00:01Z","step":"drop_schema_and_role","error":` + quote(lockTimeout) + `}}`
	set := func(lastError string) {
		t.Helper()
		if _, err := e.direct.Exec(context.Background(), `UPDATE sandbox_control.sandboxes SET last_error = $2, teardown = $3 WHERE id = $1`,
			sb.ID, lastError, record); err != nil {
			t.Fatal(err)
		}
	}
	type failure struct {
		At    string `json:"at"`
		Step  string `json:"step"`
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	var rec struct {
		MarkDestroying json.RawMessage `json:"mark_destroying"`
		LastFailure    failure         `json:"last_failure"`
	}

	set(refused)
	for _, c := range []call{
		{method: "GET", path: "/v1/sandboxes/alpha", principal: alice},
		{method: "GET", path: "/v1/sandboxes", principal: alice},
	} {
		r := e.do(t, c)
		wantStatus(t, r, 200)
		got := decode[apiwire.Sandbox](t, singleSandbox(t, r))
		if got.LastError != messages[sandbox.CodeUnavailable] ||
			got.LastErrorCode != sandbox.CodeUnavailable {
			t.Errorf("%s %s: the owner sees last_error %q (%s)", c.method, c.path, got.LastError, got.LastErrorCode)
		}
		for _, leak := range []string{"28206", "dial tcp", "SQLSTATE", "lock timeout", "drop schema"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("%s %s: the owner's view carries %q: %s", c.method, c.path, leak, r.body)
			}
		}
		if err := json.Unmarshal(got.Teardown, &rec); err != nil || rec.MarkDestroying == nil ||
			rec.LastFailure != (failure{At: "2026-01-20T10:00:01Z", Step: "drop_schema_and_role",
				Error: messages[sandbox.CodeLockTimeout], Code: "lock_timeout"}) {
			t.Errorf("%s %s: the owner's teardown record %s (%v)", c.method, c.path, got.Teardown, err)
		}
	}

	// An admin sees what was recorded, classified the same way.
	got := decode[apiwire.Sandbox](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: admin}))
	if got.LastError != refused || got.LastErrorCode != sandbox.CodeUnavailable {
		t.Errorf("the admin sees last_error %q (%s)", got.LastError, got.LastErrorCode)
	}
	if err := json.Unmarshal(got.Teardown, &rec); err != nil || rec.LastFailure.Error != lockTimeout || rec.LastFailure.Code != "lock_timeout" {
		t.Errorf("the admin's teardown record %s (%v)", got.Teardown, err)
	}

	// Anything else is an internal failure.
	set(missing)
	got = decode[apiwire.Sandbox](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: alice}))
	if got.LastErrorCode != sandbox.CodeInternal || got.LastError != messages[sandbox.CodeInternal] {
		t.Errorf("the owner sees last_error %q (%s)", got.LastError, got.LastErrorCode)
	}

	// No failure: no code.
	set("")
	got = decode[apiwire.Sandbox](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: alice}))
	if got.LastError != "" || got.LastErrorCode != "" {
		t.Errorf("without a failure: last_error %q (%s)", got.LastError, got.LastErrorCode)
	}
}

// singleSandbox returns the sandbox of a get, or the one sandbox of a list, as a reply.
func singleSandbox(t *testing.T, r reply) reply {
	t.Helper()
	var list struct {
		Sandboxes []json.RawMessage `json:"sandboxes"`
	}
	if json.Unmarshal(r.body, &list) == nil && list.Sandboxes != nil {
		if len(list.Sandboxes) != 1 {
			t.Fatalf("want one sandbox: %s", r.body)
		}
		r.body = list.Sandboxes[0]
	}
	return r
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
