package api

import "testing"

func TestSplitHostPort(t *testing.T) {
	for in, want := range map[string]struct {
		host string
		port int
		ok   bool
	}{
		"db":            {"db", 5432, true},
		"10.0.0.7":      {"10.0.0.7", 5432, true},
		"db:6543":       {"db", 6543, true},
		"[::1]":         {"::1", 5432, true},
		"[2001:db8::1]": {"2001:db8::1", 5432, true},
		"[::1]:6543":    {"::1", 6543, true},
		"db:port":       {ok: false},
		"db:0":          {ok: false},
		":6543":         {ok: false},
		"::1":           {ok: false}, // an IPv6 address takes brackets
	} {
		host, port, err := splitHostPort(in, 5432)
		if (err == nil) != want.ok || (want.ok && (host != want.host || port != want.port)) {
			t.Errorf("splitHostPort(%q) = %q, %d, %v; want %q, %d, ok %v", in, host, port, err, want.host, want.port, want.ok)
		}
	}
}
