package keys

import "testing"

func TestLayout(t *testing.T) {
	const id = "abc123def456gh"
	if got := Namespace(id); got != "sandbox:{abc123def456gh}:" {
		t.Fatalf("Namespace = %q", got)
	}
	if got := EventStream(id); got != "sandbox:{abc123def456gh}:events" {
		t.Fatalf("EventStream = %q", got)
	}
	if got := RouteCache("123456789012345678"); got != "sandbox:route:123456789012345678" {
		t.Fatalf("RouteCache = %q", got)
	}
	p, err := NamespacePattern(id)
	if err != nil || p != "sandbox:{abc123def456gh}:*" {
		t.Fatalf("NamespacePattern = %q, %v", p, err)
	}
}

func TestNamespacePatternRefusesGlobs(t *testing.T) {
	for _, id := range []string{"", "*", "abc*defghijkl", "abcdefghijk?", "ABCDEFGHIJKLM", "abc[d]efghijk", "short"} {
		if _, err := NamespacePattern(id); err == nil {
			t.Errorf("NamespacePattern(%q) accepted", id)
		}
	}
}

func TestParseNamespaceKey(t *testing.T) {
	cases := map[string]string{
		"sandbox:{abc123def456gh}:events":  "abc123def456gh",
		"sandbox:{abc123def456gh}:x:y":     "abc123def456gh",
		"sandbox:{abc123def456gh}events":   "",
		"sandbox:{ABC123DEF456GH}:events":  "",
		"sandbox:route:123456789012345678": "",
		"other:{abc123def456gh}:events":    "",
		"sandbox:{abc}:events":             "",
	}
	for key, want := range cases {
		got, ok := ParseNamespaceKey(key)
		if got != want || ok != (want != "") {
			t.Errorf("ParseNamespaceKey(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
}

func TestParseRouteKey(t *testing.T) {
	if g, ok := ParseRouteKey("sandbox:route:123456789012345678"); !ok || g != "123456789012345678" {
		t.Fatalf("got %q %v", g, ok)
	}
	for _, k := range []string{"sandbox:route:", "sandbox:route:abc", "sandbox:{x}:route", "sandbox:route:99999999999999999999"} {
		if _, ok := ParseRouteKey(k); ok {
			t.Errorf("ParseRouteKey(%q) accepted", k)
		}
	}
}
