package keys

import (
	"path"
	"strings"
	"testing"
)

func TestLayout(t *testing.T) {
	const id = "abc123def456gh"
	if got := Namespace(id); got != "sandbox:{abc123def456gh}:" {
		t.Fatalf("Namespace = %q", got)
	}
	if got := EventStream(id); got != "sandbox:{abc123def456gh}:events" {
		t.Fatalf("EventStream = %q", got)
	}
	if got := RouteCache("123456789012345678"); got != "sandbox:route:{routes}:123456789012345678" {
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
		"sandbox:{abc123def456gh}:events":           "abc123def456gh",
		"sandbox:{abc123def456gh}:x:y":              "abc123def456gh",
		"sandbox:{abc123def456gh}events":            "",
		"sandbox:{ABC123DEF456GH}:events":           "",
		"sandbox:route:123456789012345678":          "",
		"sandbox:route:{routes}:123456789012345678": "",
		"sandbox:routes:{routes}:generation":        "",
		"other:{abc123def456gh}:events":             "",
		"sandbox:{abc}:events":                      "",
	}
	for key, want := range cases {
		got, ok := ParseNamespaceKey(key)
		if got != want || ok != (want != "") {
			t.Errorf("ParseNamespaceKey(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
}

func TestParseRouteKey(t *testing.T) {
	if g, ok := ParseRouteKey("sandbox:route:{routes}:123456789012345678"); !ok || g != "123456789012345678" {
		t.Fatalf("got %q %v", g, ok)
	}
	for _, k := range []string{
		"sandbox:route:{routes}:", "sandbox:route:{routes}:abc", "sandbox:{x}:route", "sandbox:route:{routes}:99999999999999999999",
		"sandbox:route:123456789012345678", // the layout before the hash tag: expired, never read
		RouteGeneration, LegacyRouteGeneration,
	} {
		if _, ok := ParseRouteKey(k); ok {
			t.Errorf("ParseRouteKey(%q) accepted", k)
		}
	}
}

func TestACLUserIsScopedToItsDatabase(t *testing.T) {
	const id = "abc123def456gh"
	if got := ACLUser(id, 0); got != "sb_abc123def456gh" {
		t.Fatalf("ACLUser(db 0) = %q", got)
	}
	if got := ACLUser(id, 7); got != "sb_abc123def456gh@7" {
		t.Fatalf("ACLUser(db 7) = %q", got)
	}
	for name, db := range map[string]int{"sb_abc123def456gh": 0, "sb_abc123def456gh@7": 7} {
		if got, ok := ParseACLUser(name, db); !ok || got != id {
			t.Errorf("ParseACLUser(%q, %d) = %q, %v", name, db, got, ok)
		}
	}
	for name, db := range map[string]int{
		"sb_abc123def456gh@7": 0, "sb_abc123def456gh": 7, "sb_abc123def456gh@8": 7,
		"sb_ABC": 0, "default": 0, "sandbox-control": 0, "sb_abc123def456gh@": 0,
	} {
		if _, ok := ParseACLUser(name, db); ok {
			t.Errorf("ParseACLUser(%q, %d) accepted", name, db)
		}
	}
}

func TestSandboxACLRulesConfineToTheNamespace(t *testing.T) {
	rules, err := SandboxACLRules("abc123def456gh", false)
	if err != nil {
		t.Fatal(err)
	}
	if rules[0] != "~sandbox:{abc123def456gh}:*" || rules[1] != "resetchannels" {
		t.Fatalf("patterns %v", rules[:2])
	}
	for _, r := range rules {
		if r == "~*" || strings.HasPrefix(r, "&") || r == "allchannels" || r == "allkeys" || r == "+@all" || r == "+select" || r == "+@pubsub" {
			t.Fatalf("rule %q widens the user", r)
		}
	}
	if _, err := SandboxACLRules("*", false); err == nil {
		t.Fatal("a glob id was accepted")
	}
}

// No route key is ever mistaken for a namespace's key or reached by a sandbox's user: the
// route layout's prefix is not a namespace's, whatever the ids may become.
func TestRouteKeysAreOutsideEveryNamespace(t *testing.T) {
	routeKeys := []string{RouteCache("123456789012345678"), RouteGeneration, LegacyRouteGeneration}
	for _, k := range routeKeys {
		if strings.HasPrefix(k, prefix+"{") {
			t.Errorf("%q starts like a namespace", k)
		}
		if id, ok := ParseNamespaceKey(k); ok {
			t.Errorf("%q parses as a key of namespace %q", k, id)
		}
		for _, p := range []string{AllNamespacesPattern, AllUsagePattern} {
			if m, _ := path.Match(p, k); m {
				t.Errorf("%q matches %q", p, k)
			}
		}
		rules, err := SandboxACLRules("abc123def456gh", false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if p, ok := strings.CutPrefix(r, "~"); ok {
				if m, _ := path.Match(p, k); m {
					t.Errorf("the sandbox user's pattern %q matches %q", p, k)
				}
			}
		}
	}
	if m, _ := path.Match(AllRoutesPattern, RouteGeneration); m {
		t.Errorf("%q matches the generation", AllRoutesPattern)
	}
	if m, _ := path.Match(AllRoutesPattern, RouteCache("1")); !m {
		t.Errorf("%q does not match a route", AllRoutesPattern)
	}
	if m, _ := path.Match(AllKeysPattern, RouteGeneration); !m {
		t.Errorf("%q does not match the generation", AllKeysPattern)
	}
}
