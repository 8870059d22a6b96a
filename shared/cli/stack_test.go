package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/cleanup"
	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
)

// Principals and tokens of the local test stack.
const (
	alice      = "alice"
	bob        = "bob"
	admin      = "ops-admin"
	aliceToken = "devtoken-alice-0123456789"
	bobToken   = "devtoken-bob-0123456789"
	adminToken = "devtoken-admin-0123456789"
	// carol is an IAM user, as API Gateway names callers: tables show her short.
	carol      = "arn:aws:iam::123456789012:user/carol"
	carolToken = "devtoken-carol-0123456789"

	// guild1 is a registered test guild from the start; guild2 is registered by the admin in
	// TestEndToEnd.
	guild1         = "1234567890123456789"
	guild2         = "1234567890123456790"
	protectedGuild = "1100000000000000001"
)

// tokenHolders names who runs a command in the transcript.
var tokenHolders = map[string]string{aliceToken: alice, bobToken: bob, adminToken: admin, carolToken: "carol", "devtoken-nobody-0123456789": "an unknown token"}

// stack is the API of shared/api served in-process, in local mode (bearer tokens), on a fresh
// PostgreSQL database and Redis database, with the real teardown of shared/cleanup.
type stack struct {
	pool      *pgxpool.Pool
	rdb       redis.UniversalClient
	handler   *api.Handler
	manager   *controlplane.Manager
	resources *provision.Provisioner
	emitter   *metrics.Emitter
	server    *httptest.Server
	url       string
	logs      *testenv.SyncBuffer
	// transcript records every command run through run, for docs/cli.md.
	transcript *bytes.Buffer
}

func newStack(t testing.TB) *stack {
	t.Helper()
	ctx := context.Background()
	pool, dbURL := testenv.Postgres(t)
	if _, err := controlplane.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	s := &stack{pool: pool, rdb: testenv.Redis(t), logs: &testenv.SyncBuffer{}, transcript: &bytes.Buffer{}}
	cfg, err := api.LoadConfig(config.MapLookup(map[string]string{
		"DATABASE_URL":             dbURL,
		"REDIS_ADDR":               testenv.RedisAddr(t),
		"API_ADMIN_PRINCIPALS":     admin,
		"API_LOCAL_TOKENS":         aliceToken + "=" + alice + "," + bobToken + "=" + bob + "," + adminToken + "=" + admin + "," + carolToken + "=" + carol,
		"SANDBOX_PROTECTED_GUILDS": protectedGuild,
		"ENVIRONMENT":              "test",
	}))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.resources = provision.New(pool, s.rdb, cfg.TemplateSchema)
	routes := routecache.New(s.rdb, 0, 0)
	s.manager = controlplane.NewManager(pool, controlplane.Options{
		Limits: cfg.Limits, ProtectedGuilds: cfg.ProtectedGuilds,
		Provisioner: s.resources, Routes: routes, Logger: logger,
	})
	if _, _, err := s.manager.RegisterTestGuild(ctx, admin, guild1, "QA guild of the payments team"); err != nil {
		t.Fatal(err)
	}
	// A short lock timeout lets a test hold a lock on a sandbox's table to make a teardown
	// step fail without waiting long.
	teardown, err := cleanup.New(cleanup.Options{Manager: s.manager, Resources: s.resources, Redis: s.rdb,
		Logger: logger, DropLockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.handler, err = api.New(cfg, api.Deps{
		Sandboxes: s.manager, Resources: s.resources, Routes: routes,
		Teardown: teardown, Cleanup: cleanup.Admin{Service: teardown},
		DB: pool, Redis: s.rdb, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.emitter, err = metrics.NewEmitter(io.Discard, "test"); err != nil {
		t.Fatal(err)
	}
	s.server = httptest.NewServer(api.LocalHandler(s.handler, cfg.LocalTokens, s.emitter))
	s.url = s.server.URL
	t.Cleanup(func() {
		s.server.Close()
		s.dropRoles()
		if t.Failed() {
			t.Logf("API logs:\n%s", s.logs.String())
		}
	})
	return s
}

// dropRoles removes the roles of sandboxes the test left behind: roles are cluster-wide and
// outlive the test's database.
func (s *stack) dropRoles() {
	testenv.DropSandboxes(s.pool, func(ctx context.Context, id string) {
		_, _ = s.resources.Drop(ctx, id, time.Second)
	})
}

// noAWS stands for a machine without AWS configuration: the tests of the local stack must
// never reach for it.
func noAWS(context.Context) (aws.Config, error) {
	return aws.Config{}, errors.New("the local-stack tests do not use AWS configuration")
}

// env is the CLI's environment against the stack as the holder of token, with captured
// streams and strict decoding of every answer.
func (s *stack) env(token string, stdout, stderr io.Writer) Env {
	vars := map[string]string{EnvAPIURL: s.url}
	if token != "" {
		vars[EnvAPIToken] = token
	}
	return Env{
		Stdin:          strings.NewReader(""),
		Stdout:         stdout,
		Stderr:         stderr,
		Lookup:         config.MapLookup(vars),
		Now:            time.Now,
		Location:       time.UTC,
		NewTicker:      func(d time.Duration) Ticker { return timeTicker{time.NewTicker(d)} },
		HTTPClient:     s.server.Client(),
		LoadAWSConfig:  noAWS,
		strictDecoding: true,
	}
}

// result is one run of the CLI.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// run executes the CLI in-process as the holder of token and records it in the transcript.
func (s *stack) run(t *testing.T, token string, args ...string) result {
	t.Helper()
	return s.runEnv(t, "", func(e *Env) {}, token, args...)
}

// runEnv is run with a change to the environment, which note describes in the transcript.
func (s *stack) runEnv(t *testing.T, note string, change func(*Env), token string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := s.env(token, &stdout, &stderr)
	change(&e)
	code := Run(context.Background(), args, e)
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: code}
	var notes []string
	if who, ok := tokenHolders[token]; ok && token != aliceToken {
		notes = append(notes, "as "+who)
	}
	if note != "" {
		notes = append(notes, note)
	}
	as := ""
	if len(notes) > 0 {
		as = "(" + strings.Join(notes, ", ") + ") "
	}
	fmt.Fprintf(s.transcript, "%s$ sandbox %s\n%s%s[exit %d]\n\n", as, strings.Join(quoteArgs(args), " "), r.stdout, r.stderr, r.code)
	return r
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \"'$") {
			a = shDoubleQuote(a)
		}
		out[i] = a
	}
	return out
}

// expect fails the test unless the run ended with code.
func expect(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %s", code, r)
	}
}

// writeTranscript saves the end-to-end test's transcript when SANDBOX_CLI_TRANSCRIPT names a
// file; docs/cli.md quotes it.
func (s *stack) writeTranscript(t *testing.T) { s.writeTranscriptAs(t, "") }
