package keys

import (
	"path"
	"strings"
	"testing"
)

// hashTag is the part of a key Redis Cluster hashes: the first {...} with something inside.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

// The usage hash is out of the sandbox's reach and out of every namespace scan, yet in the
// slot of the sandbox's stream.
func TestUsageKeyIsOutsideTheNamespaceInItsSlot(t *testing.T) {
	const id = "abc123def456gh"
	key := Usage(id)
	if key != "sandbox:usage:{abc123def456gh}" {
		t.Fatalf("Usage = %q", key)
	}
	rules, err := SandboxACLRules(id, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range rules {
		pattern, ok := strings.CutPrefix(rule, "~")
		if !ok {
			continue
		}
		if m, _ := path.Match(pattern, key); m {
			t.Errorf("the sandbox's key pattern %q matches its usage hash", pattern)
		}
		if m, _ := path.Match(pattern, EventStream(id)); !m {
			t.Errorf("the check is broken: %q does not match the stream", pattern)
		}
	}
	for _, p := range []string{AllNamespacesPattern, AllRoutesPattern} {
		if m, _ := path.Match(p, key); m {
			t.Errorf("%q matches the usage hash", p)
		}
	}
	if m, _ := path.Match(AllUsagePattern, key); !m {
		t.Errorf("%q does not match %q", AllUsagePattern, key)
	}
	if hashTag(key) != hashTag(EventStream(id)) || hashTag(key) != id {
		t.Errorf("hash tags differ: %q and %q", hashTag(key), hashTag(EventStream(id)))
	}
}

func TestParseUsageKey(t *testing.T) {
	for key, want := range map[string]string{
		"sandbox:usage:{abc123def456gh}":   "abc123def456gh",
		"sandbox:usage:{abc123def456gh}x":  "",
		"sandbox:usage:{ABC123DEF456GH}":   "",
		"sandbox:usage:{abc}":              "",
		"sandbox:{abc123def456gh}:usage":   "",
		"sandbox:usage:{abc123def456gh}}":  "",
		"sandbox:usage:{{abc123def456gh}}": "",
	} {
		got, ok := ParseUsageKey(key)
		if got != want || ok != (want != "") {
			t.Errorf("ParseUsageKey(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
}
