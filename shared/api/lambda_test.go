package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// sample returns aws-lambda-go's IAM-authorized payload-2.0 sample, decoded.
func sample(t *testing.T) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile("testdata/apigw-v2-request-iam.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func marshal(t *testing.T, ev events.APIGatewayV2HTTPRequest) []byte {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLambdaAdapter(t *testing.T) {
	e := newEnv(t, envOptions{})

	// The sample as it is: an authenticated caller on a path the API does not serve.
	raw, err := os.ReadFile("testdata/apigw-v2-request-iam.json")
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, e.invokeRaw(t, raw), 404, sandbox.CodeNotFound, "")

	// The caller is the userArn; without it, callerId is not taken instead.
	ev := sample(t)
	ev.RawPath, ev.RawQueryString, ev.Body = "/v1/sandboxes", "", `{"name":"from-sample","ttl":"1h"}`
	ev.RequestContext.HTTP.Method = "POST"
	ev.Headers = map[string]string{"content-type": "application/json"}
	r := e.invokeRaw(t, marshal(t, ev))
	wantStatus(t, r, 201)
	if sb := decode[apiwire.Sandbox](t, r); sb.Owner != "arn:aws:iam::1234567890:user/Admin" {
		t.Errorf("owner %q, want the event's userArn", sb.Owner)
	}
	before := e.snapshot(t)
	noARN := ev
	iam := *ev.RequestContext.Authorizer.IAM
	iam.UserARN = ""
	noARN.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: &iam}
	noARN.Body = `{"name":"no-arn"}`
	wantProblem(t, e.invokeRaw(t, marshal(t, noARN)), 401, sandbox.CodeUnauthenticated, "")
	jwt := ev
	jwt.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": alice}}}
	jwt.Body = `{"name":"via-jwt"}`
	wantProblem(t, e.invokeRaw(t, marshal(t, jwt)), 401, sandbox.CodeUnauthenticated, "")
	e.unchanged(t, before)

	// Base64 bodies, a named stage's path prefix, cookies and query strings.
	b64 := ev
	b64.Body, b64.IsBase64Encoded = "eyJuYW1lIjoiYmFzZTY0LWJvZHkifQ==", true // {"name":"base64-body"}
	wantStatus(t, e.invokeRaw(t, marshal(t, b64)), 201)

	staged := sample(t)
	staged.RequestContext.Stage = "prod"
	staged.RawPath, staged.RawQueryString, staged.Body = "/prod/v1/sandboxes", "limit=1&all=true", ""
	staged.RequestContext.HTTP.Method = "GET"
	staged.RequestContext.Authorizer.IAM.UserARN = admin
	r = e.invokeRaw(t, marshal(t, staged))
	wantStatus(t, r, 200)
	if l := decode[apiwire.ListResponse](t, r); len(l.Sandboxes) != 1 || l.NextCursor == "" {
		t.Errorf("list through a named stage: %+v", l)
	}
	if r.headers["Content-Type"] != "application/json" || r.headers["X-Request-Id"] == "" {
		t.Errorf("headers %v", r.headers)
	}

	// Encoded path segments are decoded before validation.
	enc := sample(t)
	enc.RawPath, enc.RawQueryString, enc.Body = "/v1/sandboxes/from%2Dsample", "", ""
	enc.RequestContext.HTTP.Method = "GET"
	wantStatus(t, e.invokeRaw(t, marshal(t, enc)), 200)
	enc.RawPath = "/v1/sandboxes/from%2Fsample"
	if r := e.invokeRaw(t, marshal(t, enc)); r.status != 404 && r.status != 400 {
		t.Errorf("an encoded slash reached a handler: %d %s", r.status, r.body)
	}

	if !strings.Contains(e.emf.String(), `"Route":"GET /v1/sandboxes"`) {
		t.Errorf("no metrics for the staged list:\n%s", e.emf.String())
	}
}

// Callers acting through assumed roles.
const (
	devAlice = "arn:aws:sts::123456789012:assumed-role/Developer/alice"
	devBob   = "arn:aws:sts::123456789012:assumed-role/Developer/bob"
	devRole  = "arn:aws:iam::123456789012:role/Developer"
	// testerAlice has devAlice's session name on another role.
	testerAlice = "arn:aws:sts::123456789012:assumed-role/Tester/alice"
	// adminSession is any session of the PlatformAdmin role; adminNamed is a Developer
	// session named after that role.
	adminSession = "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/whoever"
	adminNamed   = "arn:aws:sts::123456789012:assumed-role/Developer/PlatformAdmin"
)

// reconfigure makes e's Lambda handler one loaded from the test configuration plus extra, over
// the same stores, as the function builds it.
func (e *env) reconfigure(t *testing.T, extra map[string]string) {
	t.Helper()
	vars := map[string]string{"DATABASE_URL": e.dbURL, "REDIS_ADDR": "127.0.0.1:1", "ENVIRONMENT": "test"}
	maps.Copy(vars, extra)
	cfg, err := api.LoadConfig(config.MapLookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(cfg, api.Deps{
		Sandboxes: e.manager, Resources: e.resources, Routes: e.cache, DB: e.pool, Redis: e.control, WorkerRedis: e.rdb,
		Logger: lambdakit.NewLogger(io.Discard, slog.LevelDebug), Now: e.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.invoke = lambda.NewHandler(lambdakit.Wrap("api", e.emitter, h.HandleEvent))
}

// listOwners lists the caller's own sandboxes (or, with query, what it asks for) and returns
// their names and owners.
func (e *env) listOwners(t *testing.T, principal, query string) map[string]string {
	t.Helper()
	r := e.do(t, call{method: "GET", path: "/v1/sandboxes", query: query, principal: principal})
	wantStatus(t, r, 200)
	out := map[string]string{}
	for _, sb := range decode[apiwire.ListResponse](t, r).Sandboxes {
		out[sb.Name] = sb.Owner
	}
	return out
}

func TestOwnersThroughAssumedRoles(t *testing.T) {
	get := func(name string) call { return call{method: "GET", path: "/v1/sandboxes/" + name} }
	as := func(c call, principal string) call { c.principal = principal; return c }

	t.Run("session keys: two sessions of one role are two owners", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		if sb := e.create(t, devAlice, "alice-box"); sb.Owner != devAlice {
			t.Fatalf("owner %q, want the session ARN %s", sb.Owner, devAlice)
		}
		before := e.snapshot(t)
		wantProblem(t, e.do(t, as(get("alice-box"), devBob)), 403, sandbox.CodeForbidden, "")
		wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/alice-box", principal: devBob}), 403, sandbox.CodeForbidden, "")
		wantProblem(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alice-box/extend", body: `{"by":"1h"}`, principal: devBob}), 403, sandbox.CodeForbidden, "")
		e.unchanged(t, before)
		if got := e.listOwners(t, devBob, ""); len(got) != 0 {
			t.Errorf("bob's list shows %v", got)
		}
		if got := e.listOwners(t, devAlice, ""); got["alice-box"] != devAlice || len(got) != 1 {
			t.Errorf("alice's list %v", got)
		}
		wantStatus(t, e.do(t, as(get("alice-box"), devAlice)), 200)
		e.create(t, devBob, "bob-box")
		if got := e.listOwners(t, devBob, ""); got["bob-box"] != devBob || len(got) != 1 {
			t.Errorf("bob's list %v", got)
		}
	})

	t.Run("role keys: every session of a role is one owner", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.reconfigure(t, map[string]string{"API_OWNER_KEY": "role"})
		if sb := e.create(t, devAlice, "team-box"); sb.Owner != devRole {
			t.Fatalf("owner %q, want the role %s", sb.Owner, devRole)
		}
		wantStatus(t, e.do(t, as(get("team-box"), devBob)), 200)
		wantStatus(t, e.do(t, call{method: "POST", path: "/v1/sandboxes/team-box/extend", body: `{"by":"1h"}`, principal: devBob}), 200)
		e.create(t, devBob, "team-box-2")
		want := map[string]string{"team-box": devRole, "team-box-2": devRole}
		for _, p := range []string{devAlice, devBob} {
			if got := e.listOwners(t, p, ""); !maps.Equal(got, want) {
				t.Errorf("%s lists %v, want %v", p, got, want)
			}
		}
		if got := e.listOwners(t, devBob, "owner="+devRole); !maps.Equal(got, want) {
			t.Errorf("owner=%s lists %v, want %v", devRole, got, want)
		}

		// Another role's session, even with the same session name, owns none of them.
		before := e.snapshot(t)
		wantProblem(t, e.do(t, as(get("team-box"), testerAlice)), 403, sandbox.CodeForbidden, "")
		wantProblem(t, e.do(t, call{method: "DELETE", path: "/v1/sandboxes/team-box", principal: testerAlice}), 403, sandbox.CodeForbidden, "")
		e.unchanged(t, before)
		if got := e.listOwners(t, testerAlice, ""); len(got) != 0 {
			t.Errorf("the Tester role lists %v", got)
		}
		// IAM users stay themselves.
		if sb := e.create(t, alice, "user-box"); sb.Owner != alice {
			t.Errorf("user owner %q, want %s", sb.Owner, alice)
		}
		wantProblem(t, e.do(t, as(get("user-box"), devAlice)), 403, sandbox.CodeForbidden, "")

		// One session destroys what another created.
		r := e.do(t, call{method: "DELETE", path: "/v1/sandboxes/team-box", principal: devAlice})
		if r.status != 200 && r.status != 202 {
			t.Fatalf("destroy by another session of the role: %d %s", r.status, r.body)
		}
	})

	t.Run("role keys in aws-us-gov", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.reconfigure(t, map[string]string{"API_OWNER_KEY": "role"})
		const gov1 = "arn:aws-us-gov:sts::123456789012:assumed-role/Developer/alice"
		const gov2 = "arn:aws-us-gov:sts::123456789012:assumed-role/Developer/bob"
		if sb := e.create(t, gov1, "gov-box"); sb.Owner != "arn:aws-us-gov:iam::123456789012:role/Developer" {
			t.Fatalf("owner %q", sb.Owner)
		}
		wantStatus(t, e.do(t, as(get("gov-box"), gov2)), 200)
		// The commercial partition's role of the same name and account is another owner.
		wantProblem(t, e.do(t, as(get("gov-box"), devAlice)), 403, sandbox.CodeForbidden, "")
	})

	// Admins listed as a role are every session of it, in both modes; a session name never
	// makes anyone an admin.
	for _, mode := range []string{"session", "role"} {
		t.Run("admin role in "+mode+" mode", func(t *testing.T) {
			e := newEnv(t, envOptions{})
			e.reconfigure(t, map[string]string{
				"API_OWNER_KEY":        mode,
				"API_ADMIN_PRINCIPALS": "arn:aws:iam::123456789012:role/platform/PlatformAdmin",
			})
			e.create(t, devAlice, "alice-box")
			for _, p := range []string{adminSession, "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/carol"} {
				if got := e.listOwners(t, p, "all=true"); len(got) != 1 {
					t.Errorf("%s, an admin, lists %v", p, got)
				}
				wantStatus(t, e.do(t, as(get("alice-box"), p)), 200)
			}
			before := e.snapshot(t)
			for _, p := range []string{adminNamed, testerAlice, "arn:aws:sts::210987654321:assumed-role/PlatformAdmin/carol"} {
				wantProblem(t, e.do(t, call{method: "GET", path: "/v1/sandboxes", query: "all=true", principal: p}), 403, sandbox.CodeForbidden, "")
				wantProblem(t, e.do(t, call{method: "POST", path: "/v1/admin/cleanup", body: "{}", principal: p}), 403, sandbox.CodeForbidden, "")
			}
			e.unchanged(t, before)
		})
	}

	// A session listed as an admin (the test configuration lists PlatformAdmin/carol) is that
	// session only: another session name of the role is not an admin.
	t.Run("admin session in session mode", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.create(t, devAlice, "alice-box")
		if got := e.listOwners(t, admin, "all=true"); len(got) != 1 {
			t.Errorf("the listed session lists %v", got)
		}
		wantProblem(t, e.do(t, call{method: "GET", path: "/v1/sandboxes", query: "all=true", principal: adminSession}), 403, sandbox.CodeForbidden, "")
		wantProblem(t, e.do(t, as(get("alice-box"), adminSession)), 403, sandbox.CodeForbidden, "")
	})
}
