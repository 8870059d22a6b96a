package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// frank is a principal no sandbox of the tests is shared with until a test shares one.
const frank = "arn:aws:iam::123456789012:user/frank"

// shareWith shares owner's sandbox name with principal through the API.
func (e *env) shareWith(t testing.TB, owner, name, principal, role string) apiwire.ShareResponse {
	t.Helper()
	body, _ := json.Marshal(apiwire.ShareRequest{Principal: principal, Role: sandbox.ShareRole(role)})
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes/" + name + "/shares", body: string(body), principal: owner})
	if r.status != 201 && r.status != 200 {
		t.Fatalf("sharing %s with %s: %d %s", name, principal, r.status, r.body)
	}
	return decode[apiwire.ShareResponse](t, r)
}

// auditOf returns the audit entries of a sandbox with the action.
func (e *env) auditOf(t testing.TB, id, action string) []controlplane.AuditEntry {
	t.Helper()
	all, err := e.manager.AuditLog(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []controlplane.AuditEntry
	for _, en := range all {
		if en.Action == action {
			out = append(out, en)
		}
	}
	return out
}

// names lists the names of a list answer.
func names(l apiwire.ListResponse) []string {
	var out []string
	for _, sb := range l.Sandboxes {
		out = append(out, sb.Name+":"+string(sb.SharedRole))
	}
	slices.Sort(out)
	return out
}

// TestSharedSandbox is a shared sandbox as its collaborators use it: each sees it (and only
// it) with its role, in list too; a developer acts on it under its own name in the audit log,
// a viewer only reads; neither destroys or shares it; quotas count only what one owns; an
// unshare takes effect at the next request; the shares end with the sandbox.
func TestSharedSandbox(t *testing.T) {
	limits := sandbox.DefaultLimits()
	limits.OwnerQuota = 2
	e := newEnv(t, envOptions{limits: limits})
	ctx := context.Background()
	shared := e.create(t, alice, "alpha", guild1)
	e.create(t, alice, "beta") // never shared

	sh := e.shareWith(t, alice, "alpha", dave, "developer")
	if !sh.Changed || sh.PreviousRole != "" || sh.Share.Principal != dave || sh.Share.Role != sandbox.ShareDeveloper || sh.Share.CreatedBy != alice {
		t.Fatalf("share: %+v", sh)
	}
	e.shareWith(t, alice, "alpha", erin, "viewer")

	// Each collaborator sees the shared sandbox with its role, and nothing else of alice's.
	for who, role := range map[string]sandbox.ShareRole{dave: sandbox.ShareDeveloper, erin: sandbox.ShareViewer} {
		r := e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: who})
		wantStatus(t, r, 200)
		if got := decode[apiwire.Sandbox](t, r); got.SharedRole != role || got.Owner != alice {
			t.Errorf("%s sees alpha as %+v", who, got)
		}
		wantProblem(t, e.do(t, call{method: "GET", path: "/v1/sandboxes/beta", principal: who}), 403, sandbox.CodeForbidden, "")
		l := decode[apiwire.ListResponse](t, e.do(t, call{method: "GET", path: "/v1/sandboxes", principal: who}))
		if got := names(l); !slices.Equal(got, []string{"alpha:" + string(role)}) {
			t.Errorf("%s lists %v", who, got)
		}
		wantProblem(t, e.do(t, call{method: "GET", path: "/v1/sandboxes", query: "owner=" + url.QueryEscape(alice), principal: who}), 403, sandbox.CodeForbidden, "")
	}
	// The owner's own view carries no role; its list, both of its sandboxes.
	if got := decode[apiwire.Sandbox](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: alice})); got.SharedRole != "" {
		t.Errorf("the owner sees a role: %q", got.SharedRole)
	}
	if got := names(decode[apiwire.ListResponse](t, e.do(t, call{method: "GET", path: "/v1/sandboxes", principal: alice}))); !slices.Equal(got, []string{"alpha:", "beta:"}) {
		t.Errorf("alice lists %v", got)
	}

	// The developer connects, extends and maps guilds under its own name; the audit says so.
	wantStatus(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", principal: dave}), 200)
	wantStatus(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/extend", body: `{"by":"1h"}`, principal: dave}), 200)
	wantStatus(t, e.do(t, call{method: "PUT", path: "/v1/sandboxes/alpha/guilds/" + guild2, principal: dave}), 201)
	connects := e.auditOf(t, shared.ID, controlplane.ActionConnect)
	var d map[string]any
	if len(connects) != 1 || connects[0].Actor != dave || json.Unmarshal(connects[0].Details, &d) != nil || d["role"] != "developer" {
		t.Errorf("connect audit: %+v", connects)
	}
	for _, action := range []string{controlplane.ActionExtend, controlplane.ActionGuildAdd} {
		if got := e.auditOf(t, shared.ID, action); len(got) != 1 || got[0].Actor != dave {
			t.Errorf("%s audit: %+v", action, got)
		}
	}

	// What each may not do is refused, and changes nothing.
	refused := []struct {
		who string
		c   call
	}{
		{erin, call{method: "POST", path: "/v1/sandboxes/alpha/connect"}},
		{erin, call{method: "POST", path: "/v1/sandboxes/alpha/extend", body: `{"by":"1h"}`}},
		{erin, call{method: "POST", path: "/v1/sandboxes/alpha/events/rewind", body: `{"to":"0-0"}`}},
		{erin, call{method: "DELETE", path: "/v1/sandboxes/alpha/guilds/" + guild2}},
		{dave, call{method: "DELETE", path: "/v1/sandboxes/alpha"}},
		{dave, call{method: "POST", path: "/v1/sandboxes/alpha/shares", body: `{"principal":"` + frank + `"}`}},
		{dave, call{method: "DELETE", path: "/v1/sandboxes/alpha/shares", query: "principal=" + url.QueryEscape(erin)}},
		{dave, call{method: "GET", path: "/v1/sandboxes/alpha/shares"}},
		{erin, call{method: "DELETE", path: "/v1/sandboxes/alpha"}},
	}
	for _, rc := range refused {
		before := e.snapshot(t)
		rc.c.principal = rc.who
		p := wantProblem(t, e.do(t, rc.c), 403, sandbox.CodeForbidden, "")
		if !strings.Contains(p.Detail, "shared with you as a") {
			t.Errorf("%s %s: the refusal does not say why: %q", rc.c.method, rc.c.path, p.Detail)
		}
		e.unchanged(t, before)
	}

	// A share is no ownership: dave's quota is his own sandboxes, not alpha.
	e.create(t, dave, "dave-one")
	e.create(t, dave, "dave-two")

	// Sharing again is idempotent; changing the role updates it, audited once.
	shares := len(e.auditOf(t, shared.ID, controlplane.ActionShare))
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/shares", body: `{"principal":"` + erin + `","role":"viewer"}`, principal: alice})
	wantStatus(t, r, 200)
	if got := decode[apiwire.ShareResponse](t, r); got.Changed || got.PreviousRole != sandbox.ShareViewer {
		t.Errorf("sharing again: %+v", got)
	}
	if n := len(e.auditOf(t, shared.ID, controlplane.ActionShare)); n != shares {
		t.Errorf("an unchanged share was audited: %d entries, was %d", n, shares)
	}
	if got := e.shareWith(t, admin, "alpha", erin, "developer"); !got.Changed || got.PreviousRole != sandbox.ShareViewer || got.Share.Role != sandbox.ShareDeveloper {
		t.Errorf("an admin changes the role: %+v", got)
	}
	changes := e.auditOf(t, shared.ID, controlplane.ActionShare)
	if err := json.Unmarshal(changes[len(changes)-1].Details, &d); err != nil || len(changes) != shares+1 ||
		changes[len(changes)-1].Actor != admin || d["previous_role"] != "viewer" || d["role"] != "developer" {
		t.Errorf("role change audit: %+v", changes)
	}
	list := decode[apiwire.SharesResponse](t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha/shares", principal: alice}))
	if len(list.Shares) != 2 || list.Owner != alice || list.Shares[0].Principal != dave || list.Shares[1].Role != sandbox.ShareDeveloper {
		t.Errorf("shares: %+v", list)
	}

	// An unshare takes effect at the principal's next request.
	r = e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha/shares", query: "principal=" + url.QueryEscape(dave), principal: alice})
	wantStatus(t, r, 200)
	if got := decode[apiwire.UnshareResponse](t, r); got.Removed.Principal != dave || got.Removed.Role != sandbox.ShareDeveloper {
		t.Errorf("unshare: %+v", got)
	}
	wantProblem(t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: dave}), 403, sandbox.CodeForbidden, "")
	if got := names(decode[apiwire.ListResponse](t, e.do(t, call{method: "GET", path: "/v1/sandboxes", principal: dave}))); !slices.Equal(got, []string{"dave-one:", "dave-two:"}) {
		t.Errorf("dave lists after the unshare: %v", got)
	}
	if got := e.auditOf(t, shared.ID, controlplane.ActionUnshare); len(got) != 1 || got[0].Actor != alice {
		t.Errorf("unshare audit: %+v", got)
	}
	wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha/shares", query: "principal=" + url.QueryEscape(dave), principal: alice}),
		404, sandbox.CodeNotFound, "")

	// Destroyed, the sandbox's shares end with it, audited under the destroyer's name.
	wantStatus(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha", principal: alice}), 202)
	if _, err := e.manager.Transition(ctx, "cleanup", shared.ID, sandbox.StatusDestroyed, nil); err != nil {
		t.Fatal(err)
	}
	if left, err := e.manager.Shares(ctx, shared.ID); err != nil || len(left) != 0 {
		t.Errorf("shares left on a destroyed sandbox: %+v %v", left, err)
	}
	if ended := e.auditOf(t, shared.ID, controlplane.ActionShareEnded); len(ended) != 1 || ended[0].Actor != "cleanup" {
		t.Errorf("share_ended audit: %+v", ended)
	}
	wantProblem(t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: erin}), 403, sandbox.CodeForbidden, "")
	if got := decode[apiwire.ListResponse](t, e.do(t, call{method: "GET", path: "/v1/sandboxes", query: "include_destroyed=true", principal: erin})); len(got.Sandboxes) != 0 {
		t.Errorf("erin still lists the destroyed sandbox: %v", names(got))
	}
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/shares", body: `{"principal":"` + erin + `"}`, principal: alice}),
		409, sandbox.CodeInvalidTransition, "")
}

// TestShareRefusesWhatNamesNoCaller: the owner itself, principals no caller can be, a role
// that does not exist and a missing principal are 400, and nothing is written.
func TestShareRefusesWhatNamesNoCaller(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.create(t, alice, "alpha")
	for _, tc := range []struct{ body, field string }{
		{`{"principal":"` + alice + `"}`, "principal"},
		{`{"principal":"bob"}`, "principal"},
		{`{"principal":"arn:aws:s3:::bucket"}`, "principal"},
		{`{"principal":"arn:aws:iam::123456789012:policy/Admins"}`, "principal"},
		{`{"principal":"arn:aws:iam::12345:user/bob"}`, "principal"},
		{`{"principal":"arn:aws:iam::123456789012:role/Developer"}`, "principal"}, // session owner key: roles are no callers
		{`{"principal":"` + bob + `","role":"admin"}`, "role"},
		{`{"principal":"` + bob + `","role":"owner"}`, "role"},
		{`{"role":"viewer"}`, "principal"},
		{`{"principal":"` + bob + `","extra":1}`, ""},
	} {
		before := e.snapshot(t)
		wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/shares", body: tc.body, principal: alice}), 400, sandbox.CodeInvalidInput, tc.field)
		e.unchanged(t, before)
	}
	wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha/shares", principal: alice}), 400, sandbox.CodeInvalidInput, "principal")
	// An IAM user with a path, a federated user and a root are callers; a session is kept
	// as it is under the default owner key.
	for _, p := range []string{"arn:aws:iam::123456789012:user/team/bob", "arn:aws:sts::123456789012:federated-user/bob",
		"arn:aws:iam::123456789012:root", "arn:aws-cn:sts::123456789012:assumed-role/Developer/bob"} {
		if got := e.shareWith(t, alice, "alpha", p, "viewer"); got.Share.Principal != p {
			t.Errorf("share with %s stored as %s", p, got.Share.Principal)
		}
	}
}

// TestSharesCompareOnTheOwnerKey: with API_OWNER_KEY=role, a share names a role (given as a
// session of it or as the role, its path dropped), and lets in every session of that role;
// a session of the owner's own role is the owner.
func TestSharesCompareOnTheOwnerKey(t *testing.T) {
	e := newEnv(t, envOptions{})
	cfg := testConfig(t, e.dbURL, "127.0.0.1:1")
	cfg.OwnerKey = api.OwnerKeyRole
	h, err := api.New(cfg, api.Deps{Sandboxes: e.manager, Resources: e.resources, Routes: e.cache, DB: e.pool, Redis: e.rdb})
	if err != nil {
		t.Fatal(err)
	}
	e.handler, e.invoke = h, lambdaOf(h)
	const (
		ownerSession = "arn:aws:sts::123456789012:assumed-role/Platform/alice"
		devSession   = "arn:aws:sts::123456789012:assumed-role/Developer/bob"
		otherDev     = "arn:aws:sts::123456789012:assumed-role/Developer/chloe"
		devRole      = "arn:aws:iam::123456789012:role/Developer"
	)
	e.create(t, ownerSession, "alpha")
	if got := e.shareWith(t, ownerSession, "alpha", devSession, "developer"); got.Share.Principal != devRole {
		t.Errorf("a session of the role is shared as %s, want %s", got.Share.Principal, devRole)
	}
	if got := e.shareWith(t, ownerSession, "alpha", "arn:aws:iam::123456789012:role/team/Developer", "viewer"); got.Share.Principal != devRole || got.PreviousRole != sandbox.ShareDeveloper {
		t.Errorf("the role with its path: %+v", got)
	}
	r := e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: otherDev})
	wantStatus(t, r, 200)
	if got := decode[apiwire.Sandbox](t, r); got.SharedRole != sandbox.ShareViewer {
		t.Errorf("another session of the role: %+v", got)
	}
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/shares", principal: ownerSession,
		body: `{"principal":"arn:aws:sts::123456789012:assumed-role/Platform/zoe"}`}), 400, sandbox.CodeInvalidInput, "principal")
}
