package api_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

func loadWith(t *testing.T, extra map[string]string) (api.Config, error) {
	t.Helper()
	env := map[string]string{"DATABASE_URL": "postgres://u:p@db:5432/bot", "REDIS_ADDR": "redis:6379"}
	for k, v := range extra {
		env[k] = v
	}
	return api.LoadConfig(config.MapLookup(env))
}

// API_CURSOR_KEY is base64 of at least 32 bytes; the key it gives is the one that signs, and
// a printed configuration never shows it.
func TestCursorKeyFromConfiguration(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		cfg, err := loadWith(t, map[string]string{"API_CURSOR_KEY": enc.EncodeToString(key)})
		if err != nil {
			t.Fatal(err)
		}
		got, source, err := api.CursorKey(cfg, "the-database-password")
		if err != nil || !bytes.Equal(got, key) || source != api.CursorKeyConfigured {
			t.Errorf("configured key: %x %q %v", got, source, err)
		}
		if printed := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.CursorKey); strings.Contains(printed, "171") ||
			strings.Contains(printed, "abab") || strings.Contains(printed, enc.EncodeToString(key)[:8]) {
			t.Errorf("the printed configuration shows the key: %s", printed)
		}
	}
	for _, bad := range []string{base64.StdEncoding.EncodeToString(key[:16]), "not base64!", "%%%%"} {
		if _, err := loadWith(t, map[string]string{"API_CURSOR_KEY": bad}); err == nil || !strings.Contains(err.Error(), "API_CURSOR_KEY") {
			t.Errorf("API_CURSOR_KEY=%q: %v", bad, err)
		}
	}
}

// Without API_CURSOR_KEY every instance of a deployment derives the same key from the
// database password; another password or another environment gives another key; without a
// password the key is random.
func TestCursorKeyDerivedFromTheDatabasePassword(t *testing.T) {
	cfg, err := loadWith(t, map[string]string{"ENVIRONMENT": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	derive := func(cfg api.Config, password string) []byte {
		t.Helper()
		key, source, err := api.CursorKey(cfg, password)
		if err != nil || len(key) < controlplane.MinCursorKeyBytes {
			t.Fatalf("derive: %x %v", key, err)
		}
		want := api.CursorKeyDerived
		if password == "" {
			want = api.CursorKeyGenerated
		}
		if source != want {
			t.Fatalf("source %q, want %q", source, want)
		}
		return key
	}
	a, b := derive(cfg, "s3cret"), derive(cfg, "s3cret")
	if !bytes.Equal(a, b) || bytes.Contains(a, []byte("s3cret")) {
		t.Errorf("the same password derives %x and %x", a, b)
	}
	if bytes.Equal(a, derive(cfg, "other")) {
		t.Error("another password derives the same key")
	}
	staging, err := loadWith(t, map[string]string{"ENVIRONMENT": "staging"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, derive(staging, "s3cret")) {
		t.Error("another environment derives the same key")
	}
	if bytes.Equal(derive(cfg, ""), derive(cfg, "")) {
		t.Error("keys generated without a password repeat")
	}
}

// listing is an API instance over the env's stores whose Manager signs cursors with key.
func (e *env) listing(t *testing.T, key []byte) *env {
	t.Helper()
	m := controlplane.NewManager(e.pool, controlplane.Options{Limits: sandbox.DefaultLimits(), CursorKey: key})
	h, err := api.New(testConfig(t, e.dbURL, testenv.RedisAddr(t)), api.Deps{
		Sandboxes: m, Resources: e.resources, Routes: e.cache, DB: e.pool, Redis: e.control, WorkerRedis: e.rdb,
	})
	if err != nil {
		t.Fatal(err)
	}
	other := *e
	other.invoke = lambdaOf(h)
	return &other
}

// A cursor from another instance of the same deployment (the same key) pages on; one signed
// with another key, or cut short, is 400 invalid_input naming cursor.
func TestListCursorsAreAuthenticated(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, name := range []string{"alpha", "beta", "gamma"} {
		e.create(t, alice, name)
	}
	key := bytes.Repeat([]byte{1}, 32)
	one, two := e.listing(t, key), e.listing(t, bytes.Clone(key))
	foreign := e.listing(t, bytes.Repeat([]byte{2}, 32))
	page := func(e *env, cursor string) apiwire.ListResponse {
		t.Helper()
		q := "limit=1"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := e.do(t, call{method: "GET", path: "/v1/sandboxes", query: q, principal: alice})
		wantStatus(t, r, 200)
		return decode[apiwire.ListResponse](t, r)
	}
	first := page(one, "")
	if second := page(two, first.NextCursor); len(second.Sandboxes) != 1 || second.Sandboxes[0].Name != "beta" {
		t.Fatalf("the next page from another instance: %+v", second)
	}
	for label, cursor := range map[string]string{
		"signed with another key": page(foreign, "").NextCursor,
		"truncated":               first.NextCursor[:len(first.NextCursor)-4],
		"payload only":            first.NextCursor[43:], // without the signature's 32 bytes
	} {
		t.Run(label, func(t *testing.T) {
			r := one.do(t, call{method: "GET", path: "/v1/sandboxes", query: "limit=1&cursor=" + url.QueryEscape(cursor), principal: alice})
			wantProblem(t, r, 400, sandbox.CodeInvalidInput, "cursor")
		})
	}
}
