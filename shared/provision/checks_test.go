package provision

import "testing"

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
