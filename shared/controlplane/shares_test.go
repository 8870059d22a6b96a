package controlplane_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// TestShares records who besides its owner may act on a sandbox: idempotent, audited when
// something changes, never for the owner or a sandbox on its way out, listed with the
// sandboxes of the principal it names, and ended with the sandbox, audited under the name of
// whoever destroyed it.
func TestShares(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "alpha", Owner: alice})
	other := mustCreate(t, m, controlplane.CreateInput{Name: "beta", Owner: alice})
	audits := func(action string) int {
		return count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log WHERE sandbox_id = $1 AND action = $2`, sb.ID, action)
	}

	ch, err := m.ShareSandbox(ctx, alice, sb.ID, bob, sandbox.ShareViewer)
	if err != nil || !ch.Changed || ch.Previous != "" || ch.Share.Role != sandbox.ShareViewer || ch.Share.CreatedBy != alice {
		t.Fatalf("share: %+v %v", ch, err)
	}
	if ch, err = m.ShareSandbox(ctx, alice, sb.ID, bob, sandbox.ShareViewer); err != nil || ch.Changed || ch.Previous != sandbox.ShareViewer {
		t.Errorf("share again: %+v %v", ch, err)
	}
	if n := audits(controlplane.ActionShare); n != 1 {
		t.Errorf("%d share entries after a share and a no-op", n)
	}
	if ch, err = m.ShareSandbox(ctx, alice, sb.ID, bob, sandbox.ShareDeveloper); err != nil || !ch.Changed || ch.Previous != sandbox.ShareViewer ||
		ch.Share.Role != sandbox.ShareDeveloper || audits(controlplane.ActionShare) != 2 {
		t.Errorf("change the role: %+v %v", ch, err)
	}
	if role, err := m.ShareRole(ctx, sb.ID, bob); err != nil || role != sandbox.ShareDeveloper {
		t.Errorf("bob's role: %q %v", role, err)
	}
	if role, err := m.ShareRole(ctx, other.ID, bob); err != nil || role != "" {
		t.Errorf("bob's role on a sandbox not shared: %q %v", role, err)
	}
	for _, tc := range []struct {
		id, principal string
		role          sandbox.ShareRole
		code          sandbox.Code
	}{
		{sb.ID, alice, sandbox.ShareViewer, sandbox.CodeInvalidInput},
		{sb.ID, bob, "owner", sandbox.CodeInvalidInput},
		{sb.ID, "", sandbox.ShareViewer, sandbox.CodeInvalidInput},
		{"nosuchsandbox00", bob, sandbox.ShareViewer, sandbox.CodeNotFound},
	} {
		if _, err := m.ShareSandbox(ctx, alice, tc.id, tc.principal, tc.role); sandbox.CodeOf(err) != tc.code {
			t.Errorf("share %s with %q as %q: %v, want %s", tc.id, tc.principal, tc.role, err, tc.code)
		}
	}

	// The principal lists its own sandboxes and those shared with it; the owner both of hers.
	mustCreate(t, m, controlplane.CreateInput{Name: "bobs", Owner: bob})
	listed := func(owner, with string) []string {
		page, err := m.List(ctx, controlplane.ListFilter{Owner: owner, SharedWith: with})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range page.Sandboxes {
			out = append(out, s.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := listed(bob, bob); !slices.Equal(got, []string{"alpha", "bobs"}) {
		t.Errorf("bob with his shares: %v", got)
	}
	if got := listed(bob, ""); !slices.Equal(got, []string{"bobs"}) {
		t.Errorf("bob's own: %v", got)
	}
	if roles, err := m.ShareRoles(ctx, bob, []string{sb.ID, other.ID}); err != nil || len(roles) != 1 || roles[sb.ID] != sandbox.ShareDeveloper {
		t.Errorf("bob's roles: %v %v", roles, err)
	}

	// Unshared: gone at once, audited; a second time there is nothing to remove.
	if removed, err := m.UnshareSandbox(ctx, alice, sb.ID, bob); err != nil || removed.Role != sandbox.ShareDeveloper || audits(controlplane.ActionUnshare) != 1 {
		t.Errorf("unshare: %+v %v", removed, err)
	}
	if _, err := m.UnshareSandbox(ctx, alice, sb.ID, bob); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("unshare again: %v", err)
	}
	if role, err := m.ShareRole(ctx, sb.ID, bob); err != nil || role != "" {
		t.Errorf("after unshare: %q %v", role, err)
	}

	// Destroyed: the shares end with the move to destroyed, audited under the destroyer's
	// name; a sandbox being destroyed takes no new share.
	const carol = "arn:aws:iam::123456789012:user/carol"
	for _, p := range []string{bob, carol} {
		if _, err := m.ShareSandbox(ctx, alice, sb.ID, p, sandbox.ShareViewer); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := m.RequestDestroy(ctx, alice, sb.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ShareSandbox(ctx, alice, sb.ID, "arn:aws:iam::123456789012:user/dan", sandbox.ShareViewer); !errors.Is(err, sandbox.ErrInvalidTransition) {
		t.Errorf("share a destroying sandbox: %v", err)
	}
	if shares, err := m.Shares(ctx, sb.ID); err != nil || len(shares) != 2 {
		t.Errorf("while destroying the shares stay: %+v %v", shares, err)
	}
	if _, err := m.Transition(ctx, "cleanup", sb.ID, sandbox.StatusDestroyed, nil); err != nil {
		t.Fatal(err)
	}
	if shares, err := m.Shares(ctx, sb.ID); err != nil || len(shares) != 0 {
		t.Errorf("a destroyed sandbox keeps shares: %+v %v", shares, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log WHERE sandbox_id = $1 AND action = $2 AND actor = 'cleanup'`,
		sb.ID, controlplane.ActionShareEnded); n != 2 {
		t.Errorf("%d share_ended entries by cleanup, want 2", n)
	}
	if got := listed(bob, bob); !slices.Equal(got, []string{"bobs"}) {
		t.Errorf("bob still lists the destroyed sandbox: %v", got)
	}
}
