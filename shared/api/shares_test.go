package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/provision"
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
	h, err := api.New(cfg, api.Deps{Sandboxes: e.manager, Resources: e.resources, Routes: e.cache, DB: e.pool, Redis: e.control, WorkerRedis: e.rdb})
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

// workerOf is what a worker opens with the credentials of a connect's answer: a database
// session of the sandbox's role and a Redis connection of its user.
type workerOf struct {
	db    *pgx.Conn
	redis redis.UniversalClient
}

// connectWorker connects to sandbox name as who, and opens a worker with what it was handed.
func (e *env) connectWorker(t *testing.T, who, name string) (workerOf, apiwire.ConnectResponse) {
	t.Helper()
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes/" + name + "/connect", principal: who})
	wantStatus(t, r, 200)
	conn := decode[apiwire.ConnectResponse](t, r)
	db, err := testenv.ConnectAs(t, e.workerURL, conn.Database.Role, conn.Database.Password)
	if err != nil {
		t.Fatal(err)
	}
	rdb := testenv.RedisClientLike(t, e.rdb, redis.UniversalOptions{
		Username: conn.Redis.Username, Password: conn.Redis.Password, MaxRetries: -1})
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return workerOf{db: db, redis: rdb}, conn
}

// open reports whether the worker's database session and Redis connection still answer.
func (w workerOf) open() (db, redis bool) {
	ctx := context.Background()
	_, dbErr := w.db.Exec(ctx, "SELECT 1")
	return dbErr == nil, w.redis.Ping(ctx).Err() == nil
}

// A developer whose share ends, or becomes a viewer's, keeps nothing of the sandbox: had it
// connected, the credentials it was handed no longer work and the sessions it opened with
// them are ended, the owner's workers' too (they connect again). It kept both before, for as
// long as the sandbox lived: a rotation leaves open sessions open. A developer who never
// connected costs the owner's workers nothing.
func TestAnEndedDeveloperShareKeepsNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	sb := e.create(t, alice, "alpha", guild1)
	unshare := func(who string) apiwire.UnshareResponse {
		r := e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha/shares", query: "principal=" + url.QueryEscape(who), principal: alice})
		wantStatus(t, r, 200)
		return decode[apiwire.UnshareResponse](t, r)
	}

	// A developer who never connected: the owner's worker is left alone.
	e.shareWith(t, alice, "alpha", frank, "developer")
	owners, _ := e.connectWorker(t, alice, "alpha")
	if res := unshare(frank); res.Revoked != nil || res.Warning != "" {
		t.Errorf("unshare of a developer who never connected: %+v", res)
	}
	if db, rd := owners.open(); !db || !rd {
		t.Errorf("the owner's worker was ended (database %v, Redis %v) by the unshare of a developer who never connected", db, rd)
	}

	// Bob connects and runs a worker; the owner's worker runs too, with what bob's connect
	// rotated.
	e.shareWith(t, alice, "alpha", bob, "developer")
	bobs, handed := e.connectWorker(t, bob, "alpha")
	res := unshare(bob)
	if res.Revoked == nil || res.Revoked.SessionsEnded.DatabaseSessions != 2 || res.Revoked.SessionsEnded.RedisConnections < 2 ||
		len(res.Revoked.Rotated) != 2 || res.Warning != "" {
		t.Errorf("unshare of a developer who connected: %+v (revoked %+v)", res, res.Revoked)
	}
	for who, w := range map[string]workerOf{"bob's": bobs, "the owner's": owners} {
		if db, rd := w.open(); db || rd {
			t.Errorf("%s worker still answers after the unshare (database %v, Redis %v)", who, db, rd)
		}
	}
	if _, err := testenv.ConnectAs(t, e.workerURL, handed.Database.Role, handed.Database.Password); err == nil {
		t.Error("the database password bob was handed still logs in")
	}
	again := testenv.RedisClientLike(t, e.rdb, redis.UniversalOptions{
		Username: handed.Redis.Username, Password: handed.Redis.Password, MaxRetries: -1})
	if again.Ping(ctx).Err() == nil {
		t.Error("the Redis password bob was handed still authenticates")
	}
	revokes := e.auditOf(t, sb.ID, controlplane.ActionRevoke)
	var d map[string]any
	if len(revokes) != 1 || revokes[0].Actor != alice || json.Unmarshal(revokes[0].Details, &d) != nil || d["principal"] != bob {
		t.Errorf("revoke audit: %+v", revokes)
	}
	// The owner connects again, and works; a connect that ends the sessions ends that worker.
	w, _ := e.connectWorker(t, alice, "alpha")
	if db, rd := w.open(); !db || !rd {
		t.Errorf("the owner's new worker: database %v, Redis %v", db, rd)
	}
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", body: `{"end_sessions": true}`, principal: alice})
	wantStatus(t, r, 200)
	if ended := decode[apiwire.ConnectResponse](t, r).SessionsEnded; ended == nil || ended.DatabaseSessions != 1 || ended.RedisConnections < 1 {
		t.Errorf("connect with end_sessions ended %+v, want the worker's session and connection", ended)
	}
	if db, rd := w.open(); db || rd {
		t.Errorf("a connect with end_sessions left the worker open (database %v, Redis %v)", db, rd)
	}
	wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", body: `{"end_sessions": "yes"}`, principal: alice}),
		400, sandbox.CodeInvalidInput, "")

	// A developer made a viewer loses the same.
	e.shareWith(t, alice, "alpha", dave, "developer")
	daves, _ := e.connectWorker(t, dave, "alpha")
	down := e.shareWith(t, alice, "alpha", dave, "viewer")
	if down.Revoked == nil || down.Revoked.SessionsEnded.DatabaseSessions < 1 || down.PreviousRole != sandbox.ShareDeveloper {
		t.Errorf("a developer made a viewer: %+v", down)
	}
	if db, rd := daves.open(); db || rd {
		t.Errorf("the worker of a developer made a viewer still answers (database %v, Redis %v)", db, rd)
	}
	// A viewer made a developer, or a share unchanged, revokes nothing.
	if up := e.shareWith(t, alice, "alpha", dave, "developer"); up.Revoked != nil {
		t.Errorf("a viewer made a developer revoked: %+v", up)
	}
}

// afterRotation runs *f once, right after a rotation returned.
type afterRotation struct {
	api.Resources
	f *func()
}

func (r afterRotation) RotateCredentials(ctx context.Context, id string, validUntil time.Time, hold provision.Hold) (provision.Credentials, error) {
	c, err := r.Resources.RotateCredentials(ctx, id, validUntil, hold)
	once(r.f)
	return c, err
}

// A developer's connect that its unshare overtakes hands nothing out. The unshare comes right
// after the connect rotated the credentials, before the connect's audit entry says who holds
// them, so the unshare has nothing to revoke: it was the connect's answer that handed bob
// working credentials after his share had ended.
func TestAConnectThatItsUnshareOvertakesHandsNothingOut(t *testing.T) {
	var after func()
	e := newEnv(t, envOptions{resources: func(e *env, r api.Resources) api.Resources { return afterRotation{Resources: r, f: &after} }})
	e.create(t, alice, "alpha", guild1)
	e.shareWith(t, alice, "alpha", bob, "developer")
	var unshared apiwire.UnshareResponse
	after = func() {
		r := e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha/shares", query: "principal=" + url.QueryEscape(bob), principal: alice})
		wantStatus(t, r, 200)
		unshared = decode[apiwire.UnshareResponse](t, r)
	}
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", principal: bob})
	if after != nil {
		t.Fatal("the unshare never ran: this test proves nothing")
	}
	if unshared.Revoked != nil {
		t.Logf("the unshare revoked: %+v", unshared.Revoked)
	}
	if r.status == 200 {
		handed := decode[apiwire.ConnectResponse](t, r)
		if _, err := testenv.ConnectAs(t, e.workerURL, handed.Database.Role, handed.Database.Password); err == nil {
			t.Fatal("bob's connect, overtaken by his unshare, handed out a database password that logs in")
		}
		t.Fatalf("bob's connect, overtaken by his unshare, answered 200")
	}
	wantProblem(t, r, 403, sandbox.CodeForbidden, "")
}

// unavailableSessions is a store that cannot end sessions.
type unavailableSessions struct{ api.Resources }

func (unavailableSessions) EndSessions(context.Context, string) (provision.SessionsEnded, error) {
	return provision.SessionsEnded{}, sandbox.Errorf(sandbox.CodeUnavailable, "redis: connection refused")
}

// A revocation that fails does not fail the unshare, which is done: the answer warns, naming
// what does the rest, and nothing is audited as revoked.
func TestAnUnshareWhoseRevocationFailsWarns(t *testing.T) {
	e := newEnv(t, envOptions{resources: func(e *env, r api.Resources) api.Resources { return unavailableSessions{r} }})
	sb := e.create(t, alice, "alpha", guild1)
	e.shareWith(t, alice, "alpha", bob, "developer")
	wantStatus(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", principal: bob}), 200)
	r := e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alpha/shares", query: "principal=" + url.QueryEscape(bob), principal: alice})
	wantStatus(t, r, 200)
	res := decode[apiwire.UnshareResponse](t, r)
	if res.Revoked != nil || !strings.Contains(res.Warning, "could not be revoked (") ||
		!strings.Contains(res.Warning, "run `sandbox connect alpha --end-sessions`") {
		t.Errorf("unshare whose revocation failed: %+v", res)
	}
	wantProblem(t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: bob}), 403, sandbox.CodeForbidden, "")
	if got := e.auditOf(t, sb.ID, controlplane.ActionRevoke); len(got) != 0 {
		t.Errorf("a failed revocation was audited: %+v", got)
	}
}
