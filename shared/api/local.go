package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// CheckLoopback refuses a listen address that is not on a loopback interface: local mode
// must not be an open door.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("API_LISTEN_ADDR %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("API_LISTEN_ADDR %q is not a loopback address (127.0.0.1, ::1, localhost); local mode refuses to listen elsewhere", addr)
	}
	return nil
}

// tokenAuth maps bearer tokens to principals.
type tokenAuth struct {
	tokens []tokenEntry
}

type tokenEntry struct {
	token     []byte
	principal string
}

func newTokenAuth(tokens map[string]string) tokenAuth {
	var a tokenAuth
	for t, p := range tokens {
		a.tokens = append(a.tokens, tokenEntry{token: []byte(t), principal: p})
	}
	return a
}

// principal returns the principal of the request's bearer token. Every configured token is
// compared, in constant time, whatever matches, so timing tells nothing about the tokens.
func (a tokenAuth) principal(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	found := ""
	for _, e := range a.tokens {
		if subtle.ConstantTimeCompare(e.token, []byte(token)) == 1 {
			found = e.principal
		}
	}
	return found, found != ""
}

// LocalHandler serves h outside Lambda: each request gets a request id, its own metrics
// Recorder (flushed when it ends) and, when its bearer token is known, that principal.
// Requests without a known token reach h without a principal, which answers 401.
func LocalHandler(h *Handler, tokens map[string]string, emitter *metrics.Emitter) http.Handler {
	auth := newTokenAuth(tokens)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := lambdakit.NewLocalContext(r.Context())
		rec := emitter.Begin()
		ctx = WithRecorder(ctx, rec)
		if p, ok := auth.principal(r); ok {
			ctx = WithPrincipal(ctx, p)
		}
		h.ServeHTTP(w, r.WithContext(ctx))
		if err := rec.Flush(); err != nil {
			h.log.ErrorContext(ctx, "metrics not written", logkey.Error, err)
		}
	})
}

// ServeLocal serves h on cfg.ListenAddr until ctx ends. It refuses a non-loopback address
// and an empty token list.
func ServeLocal(ctx context.Context, cfg Config, h *Handler, emitter *metrics.Emitter) error {
	if err := CheckLoopback(cfg.ListenAddr); err != nil {
		return err
	}
	if len(cfg.LocalTokens) == 0 {
		return errors.New("API_LOCAL_TOKENS is required in local mode (token=principal,...): local mode never serves without authentication")
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return err
	}
	// "localhost" could resolve anywhere: check what was actually bound.
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		_ = ln.Close()
		return fmt.Errorf("API_LISTEN_ADDR %q bound %s, which is not loopback", cfg.ListenAddr, ln.Addr())
	}
	srv := &http.Server{
		Handler:           LocalHandler(h, cfg.LocalTokens, emitter),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
	h.log.Info("api listening (local mode)", "addr", ln.Addr().String(), "principals", len(cfg.LocalTokens))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			return err
		}
		return nil
	}
}
