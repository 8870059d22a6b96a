package keys

import "testing"

// The expected slots are what CLUSTER KEYSLOT answered on Redis 7.0.15.
func TestSlotIsClusterKeyslot(t *testing.T) {
	for key, want := range map[string]int{
		"":                                 0,
		"a":                                15495,
		"123456789":                        12739,
		"{user1000}.following":             3443,
		"foo{}{bar}":                       8363,
		"foo{{bar}}zap":                    4015,
		"foo{bar}{zap}":                    5061,
		"{}":                               15257,
		"}{x}":                             16287,
		"sandbox:{}x}:y":                   85,
		"sandbox:{abc123def456gh}:events":  3210,
		"sandbox:usage:{abc123def456gh}":   3210,
		"routes":                           12842,
		"sandbox:route:123456789012345678": 10999,
		"sandbox:route:{routes}:123456789012345678": 12842,
		"sandbox:routes:{routes}:generation":        12842,
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, CLUSTER KEYSLOT says %d", key, got, want)
		}
	}
}

// Every key a multi-key command, script or transaction of this module names together shares
// one slot (the audit in the package doc).
func TestKeysUsedTogetherShareASlot(t *testing.T) {
	const id = "abc123def456gh"
	groups := map[string][]string{
		"route cache scripts (routecache writeBack, publish)": {
			RouteGeneration, RouteCache("123456789012345678"), RouteCache("987654321098765432"), RouteCache("1"),
		},
		"usage scripts (routing countEvents, cleanup recordKeys)": {Usage(id), EventStream(id)},
		"a namespace's keys (cleanup unlink batches)": {
			Namespace(id), EventStream(id), Namespace(id) + "x{other}", Namespace(id) + "{}",
		},
	}
	for name, ks := range groups {
		for _, k := range ks[1:] {
			if Slot(k) != Slot(ks[0]) {
				t.Errorf("%s: %q is in slot %d, %q in slot %d", name, k, Slot(k), ks[0], Slot(ks[0]))
			}
		}
	}
}
