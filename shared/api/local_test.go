package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const (
	aliceToken = "alice-token-0123456789abcdef"
	bobToken   = "bob-token-0123456789abcdef00"
)

var localTokens = map[string]string{aliceToken: alice, bobToken: bob}

// localGet makes a real HTTP request to a local server.
func localGet(t *testing.T, url, authorization string) reply {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{}
	for k := range resp.Header {
		headers[k] = resp.Header.Get(k)
	}
	return reply{status: resp.StatusCode, headers: headers, body: body}
}

func TestLocalModeRequiresAKnownToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.create(t, alice, "alpha")
	srv := httptest.NewServer(api.LocalHandler(e.handler, localTokens, e.emitter))
	t.Cleanup(srv.Close)

	for name, auth := range map[string]string{
		"no header":       "",
		"unknown token":   "Bearer not-a-configured-token-000",
		"token prefix":    "Bearer " + aliceToken[:len(aliceToken)-1],
		"token extended":  "Bearer " + aliceToken + "x",
		"basic scheme":    "Basic " + aliceToken,
		"no scheme":       aliceToken,
		"empty bearer":    "Bearer ",
		"principal given": "Bearer " + alice,
	} {
		t.Run(name, func(t *testing.T) {
			before := e.snapshot(t)
			for _, path := range []string{"/health", "/v1/sandboxes/alpha"} {
				wantProblem(t, localGet(t, srv.URL+path, auth), 401, sandbox.CodeUnauthenticated, "")
			}
			e.unchanged(t, before)
		})
	}

	e.emf.Reset()
	wantStatus(t, localGet(t, srv.URL+"/health", "Bearer "+aliceToken), 200)
	if !strings.Contains(e.emf.String(), `"Route":"GET /health"`) {
		t.Errorf("local requests are not metered: %q", e.emf.String())
	}
	r := localGet(t, srv.URL+"/v1/sandboxes/alpha", "bearer "+aliceToken)
	wantStatus(t, r, 200)
	if sb := decode[apiwire.Sandbox](t, r); sb.Owner != alice {
		t.Errorf("token mapped to %q", sb.Owner)
	}
	wantProblem(t, localGet(t, srv.URL+"/v1/sandboxes/alpha", "Bearer "+bobToken), 403, sandbox.CodeForbidden, "")
}

func TestCheckLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.2:0", "[::1]:8080", "localhost:8080"} {
		if err := api.CheckLoopback(addr); err != nil {
			t.Errorf("CheckLoopback(%q) = %v", addr, err)
		}
	}
	for _, addr := range []string{":8080", "0.0.0.0:8080", "[::]:8080", "10.0.0.5:8080", "example.com:8080", "127.0.0.1", ""} {
		if err := api.CheckLoopback(addr); err == nil {
			t.Errorf("CheckLoopback(%q) accepted a non-loopback address", addr)
		}
	}
}

func TestServeLocal(t *testing.T) {
	e := newEnv(t, envOptions{})
	cfg := testConfig(t, e.dbURL, "127.0.0.1:1")

	cfg.ListenAddr = "0.0.0.0:0"
	cfg.LocalTokens = localTokens
	if err := api.ServeLocal(context.Background(), cfg, e.handler, e.emitter); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("ServeLocal on 0.0.0.0: %v", err)
	}
	cfg.ListenAddr = testenv.ClosedAddr(t)
	cfg.LocalTokens = nil
	if err := api.ServeLocal(context.Background(), cfg, e.handler, e.emitter); err == nil || !strings.Contains(err.Error(), "API_LOCAL_TOKENS") {
		t.Errorf("ServeLocal without tokens: %v", err)
	}

	cfg.LocalTokens = localTokens
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.ServeLocal(ctx, cfg, e.handler, e.emitter) }()
	url := "http://" + cfg.ListenAddr + "/health"
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", cfg.ListenAddr)
		if err == nil {
			_ = conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("local server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantProblem(t, localGet(t, url, ""), 401, sandbox.CodeUnauthenticated, "")
	r := localGet(t, url, "Bearer "+bobToken)
	wantStatus(t, r, 200)
	var h apiwire.ServiceHealth
	if err := json.Unmarshal(r.body, &h); err != nil || !healthyBut(h.Overall, h.Checks) {
		t.Errorf("health %s", r.body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeLocal returned %v after shutdown", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ServeLocal did not stop")
	}
}
