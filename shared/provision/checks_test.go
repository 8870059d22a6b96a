package provision

import (
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

func TestIDOfNameTakesExactlySandboxNames(t *testing.T) {
	id := sandbox.NewID()
	if got, ok := idOfName("sb_" + id); !ok || got != id {
		t.Fatalf("idOfName(sb_%s) = %q, %v", id, got, ok)
	}
	for _, name := range []string{
		"", "sb_", "sb_short", "sb_ABCDEFGHIJKLM", "sbx_" + id, "sb_" + id + "_x", "SB_" + id,
		"sb_" + id + " ", "sandbox_control", "sb_" + id + "\x00", `sb_"` + id + `"`,
	} {
		if got, ok := idOfName(name); ok {
			t.Errorf("idOfName(%q) = %q: a name that is not exactly a sandbox's was taken", name, got)
		}
	}
}

func TestOwnRoleNeedsThisDatabasesComment(t *testing.T) {
	if !ownRole(RoleCommentFor("app"), "app") {
		t.Fatal("the comment of this database's roles is refused")
	}
	for _, comment := range []string{"", RoleCommentFor("other"), RoleCommentFor("app") + " ", RoleCommentFor("ap"), "app"} {
		if ownRole(comment, "app") {
			t.Errorf("comment %q taken as database app's", comment)
		}
	}
}
