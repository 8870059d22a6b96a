package sandbox

import "testing"

func TestIDOfNameTakesExactlySandboxNames(t *testing.T) {
	id := NewID()
	if got, ok := IDOfName("sb_" + id); !ok || got != id {
		t.Fatalf("IDOfName(sb_%s) = %q, %v", id, got, ok)
	}
	for _, name := range []string{
		"", "sb_", "sb_short", "sb_ABCDEFGHIJKLM", "sbx_" + id, "sb_" + id + "_x", "SB_" + id,
		"sb_" + id + " ", "sandbox_control", "sb_" + id + "\x00", `sb_"` + id + `"`,
	} {
		if got, ok := IDOfName(name); ok {
			t.Errorf("IDOfName(%q) = %q: a name that is not exactly a sandbox's was taken", name, got)
		}
	}
}
