package api_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/botplatform/discord-sandboxes/shared/api"
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
	if sb := decode[api.Sandbox](t, r); sb.Owner != "arn:aws:iam::1234567890:user/Admin" {
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
	if l := decode[api.ListResponse](t, r); len(l.Sandboxes) != 1 || l.NextCursor == "" {
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
