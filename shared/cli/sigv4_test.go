package cli

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The "get-vanilla" case of the AWS Signature Version 4 test suite, as AWS publishes it.
const (
	vectorAccessKey = "AKIDEXAMPLE"
	vectorSecret    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	vectorAuth      = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, " +
		"SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
)

var vectorTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

// referenceSignature computes a SigV4 signature from the AWS documentation, independently of
// the SDK: it is how the tests check what the SDK produced, and how the gateway below
// verifies requests the way API Gateway does. Paths and query values here are plain ASCII,
// so canonical encoding is the URL's own escaping.
func referenceSignature(method string, u *url.URL, host string, header http.Header, signed []string,
	payloadHash, secret, scope, amzDate string,
) string {
	q := u.Query()
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, url.QueryEscape(k)+"="+strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		}
	}
	sort.Strings(pairs)
	var canonHeaders strings.Builder
	for _, h := range signed {
		value := strings.Join(header.Values(h), ",")
		if h == "host" {
			value = host
		}
		canonHeaders.WriteString(h + ":" + strings.Join(strings.Fields(value), " ") + "\n")
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	canonical := strings.Join([]string{method, path, strings.Join(pairs, "&"), canonHeaders.String(),
		strings.Join(signed, ";"), payloadHash}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + secret)
	for _, part := range strings.Split(scope, "/") {
		key = hmacSHA256(key, part)
	}
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// authParts parses "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
var authPattern = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8}/[^/]+/[^/]+/aws4_request), SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)

func TestReferenceSignatureMatchesAWSVector(t *testing.T) {
	u, _ := url.Parse("https://example.amazonaws.com/")
	h := http.Header{"X-Amz-Date": {"20150830T123600Z"}}
	sig := referenceSignature("GET", u, "example.amazonaws.com", h, []string{"host", "x-amz-date"},
		payloadHash(nil), vectorSecret, "20150830/us-east-1/service/aws4_request", "20150830T123600Z")
	if got := authPattern.FindStringSubmatch(vectorAuth)[4]; sig != got {
		t.Fatalf("reference signature %s, AWS publishes %s", sig, got)
	}
}

func TestSDKSignerMatchesAWSVector(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://example.amazonaws.com/", nil)
	creds := aws.Credentials{AccessKeyID: vectorAccessKey, SecretAccessKey: vectorSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash(nil), "service", "us-east-1", vectorTime); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Authorization"); got != vectorAuth {
		t.Fatalf("Authorization\n got %s\nwant %s", got, vectorAuth)
	}
}

// TestSigV4SignsForAPIGateway checks the CLI's signer on a known request: the exact header
// the SDK computes for fixed credentials and time, that an independent implementation
// agrees, and that the request carries what API Gateway needs.
func TestSigV4SignsForAPIGateway(t *testing.T) {
	const (
		akid  = "AKIAIOSFODNN7EXAMPLE"
		token = "FQoGZXIvYXdzEXAMPLEsessiontoken"
		host  = "abc123defg.execute-api.eu-west-1.amazonaws.com"
		want  = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260120/eu-west-1/execute-api/aws4_request, " +
			"SignedHeaders=accept;content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, " +
			"Signature=172ca1002db4fbaad6a5ccc6e6da7510a69e6aa88ce3c3781190f36a79658fc3"
	)
	body := []byte(`{"name":"alice-feature-x","ttl":"24h"}`)
	req, _ := http.NewRequest(http.MethodPost, "https://"+host+"/v1/sandboxes?dry=1", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sandbox-cli")
	signer := NewSigV4(credentials.NewStaticCredentialsProvider(akid, vectorSecret, token), RegionFromHost(host))
	signer.Now = func() time.Time { return time.Date(2026, 1, 20, 10, 0, 0, 0, time.UTC) }
	if err := signer.Authorize(context.Background(), req, body); err != nil {
		t.Fatal(err)
	}

	auth := req.Header.Get("Authorization")
	m := authPattern.FindStringSubmatch(auth)
	if m == nil {
		t.Fatalf("Authorization %q", auth)
	}
	if got := req.Header.Get("X-Amz-Date"); got != "20260120T100000Z" {
		t.Errorf("X-Amz-Date %q", got)
	}
	if got := req.Header.Get("X-Amz-Content-Sha256"); got != payloadHash(body) {
		t.Errorf("X-Amz-Content-Sha256 %q", got)
	}
	if got := req.Header.Get("X-Amz-Security-Token"); got != token {
		t.Errorf("X-Amz-Security-Token %q", got)
	}
	signed := strings.Split(m[3], ";")
	sent := req.Header.Clone() // as the transport sends it: with the Content-Length header
	sent.Set("Content-Length", fmt.Sprint(req.ContentLength))
	ref := referenceSignature(req.Method, req.URL, req.URL.Host, sent, signed, payloadHash(body), vectorSecret, m[2], "20260120T100000Z")
	if m[4] != ref {
		t.Errorf("the SDK's signature %s, the reference computes %s", m[4], ref)
	}
	if auth != want {
		t.Errorf("Authorization\n got %s\nwant %s", auth, want)
	}
	if strings.Contains(m[3], "user-agent") {
		t.Error("User-Agent is not signed (proxies rewrite it)")
	}
}

func TestRegionFromHost(t *testing.T) {
	checkEach(t, "RegionFromHost", RegionFromHost, map[string]string{
		"abc123.execute-api.eu-west-1.amazonaws.com":     "eu-west-1",
		"ABC123.Execute-Api.US-EAST-2.amazonaws.com":     "us-east-2",
		"abc123.execute-api.cn-north-1.amazonaws.com.cn": "cn-north-1",
		"sandboxes.example.com":                          "",
		"127.0.0.1":                                      "",
		"execute-api.eu-west-1.amazonaws.com":            "",
	})
}

// gateway stands in for API Gateway with AWS_IAM authorization in front of the real Lambda
// handler: it verifies each request's signature (scope, clock skew, signed headers, session
// token, payload) with the reference implementation, answers 403 {"message"} like API
// Gateway when it does not verify, and otherwise invokes the api function's handler with a
// payload-2.0 event whose authorizer carries the caller's ARN.
type gateway struct {
	invoke lambda.Handler
	region string
	now    func() time.Time
	keys   map[string]gatewayKey
}

type gatewayKey struct{ secret, sessionToken, arn string }

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	arn, err := g.verify(r, body)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
		return
	}
	headers := map[string]string{}
	for k, vs := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: r.URL.EscapedPath(), RawQueryString: r.URL.RawQuery,
		Headers: headers, Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			DomainName: r.Host, Stage: "$default", RequestID: "gw-request",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: r.URL.Path, SourceIP: "127.0.0.1"},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: arn},
			},
		},
	}
	payload, _ := json.Marshal(ev)
	out, err := g.invoke.Invoke(lambdakit.NewLocalContext(r.Context()), payload)
	if err != nil {
		http.Error(w, `{"message":"Internal Server Error"}`, http.StatusInternalServerError)
		return
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		http.Error(w, `{"message":"Internal Server Error"}`, http.StatusInternalServerError)
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.StatusCode)
	respBody := []byte(resp.Body)
	if resp.IsBase64Encoded {
		respBody, _ = base64.StdEncoding.DecodeString(resp.Body)
	}
	_, _ = w.Write(respBody)
}

func (g *gateway) verify(r *http.Request, body []byte) (string, error) {
	m := authPattern.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return "", errors.New("Missing Authentication Token")
	}
	key, ok := g.keys[m[1]]
	if !ok {
		return "", errors.New("The security token included in the request is invalid.")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || at.Sub(g.now()).Abs() > 5*time.Minute {
		return "", errors.New("Signature expired or not yet valid")
	}
	if want := at.Format("20060102") + "/" + g.region + "/" + SigV4Service + "/aws4_request"; m[2] != want {
		return "", fmt.Errorf("Credential should be scoped to %s", want)
	}
	signed := strings.Split(m[3], ";")
	if !contains(signed, "host") || !contains(signed, "x-amz-date") {
		return "", errors.New("host and x-amz-date must be signed")
	}
	if key.sessionToken != "" && (r.Header.Get("X-Amz-Security-Token") != key.sessionToken || !contains(signed, "x-amz-security-token")) {
		return "", errors.New("The security token included in the request is invalid.")
	}
	header := r.Header.Clone()
	if header.Get("Content-Length") == "" && r.ContentLength > 0 {
		header.Set("Content-Length", fmt.Sprint(r.ContentLength))
	}
	want := referenceSignature(r.Method, r.URL, r.Host, header, signed, payloadHash(body), key.secret, m[2], amzDate)
	if subtle.ConstantTimeCompare([]byte(want), []byte(m[4])) != 1 {
		return "", errors.New("The request signature we calculated does not match the signature you provided.")
	}
	return key.arn, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSigV4AgainstTheLambdaHandler runs the CLI without a token against API Gateway's
// expectations: signed requests reach the api function's Lambda handler as the caller's ARN;
// a bad signature, missing credentials and an unknown region fail with their exit codes.
func TestSigV4AgainstTheLambdaHandler(t *testing.T) {
	s := newStack(t)
	const (
		akid  = "ASIAEXAMPLEALICE0001"
		token = "IQoJb3JpZ2luX2VjEXAMPLE"
		arn   = "arn:aws:sts::123456789012:assumed-role/Developer/alice"
	)
	gw := &gateway{
		invoke: lambda.NewHandler(lambdakit.Wrap("api", s.emitter, s.handler.HandleEvent)),
		region: "eu-west-1", now: time.Now,
		keys: map[string]gatewayKey{akid: {secret: vectorSecret, sessionToken: token, arn: arn}},
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	run := func(creds aws.CredentialsProvider, region string, args ...string) result {
		var stdout, stderr bytes.Buffer
		e := s.env("", &stdout, &stderr)
		e.Lookup = config.MapLookup(map[string]string{EnvAPIURL: srv.URL})
		e.HTTPClient = srv.Client()
		e.LoadAWSConfig = func(context.Context) (aws.Config, error) {
			return aws.Config{Region: region, Credentials: creds}, nil
		}
		code := Run(context.Background(), args, e)
		return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
	}
	good := credentials.NewStaticCredentialsProvider(akid, vectorSecret, token)

	r := run(good, "eu-west-1", "create", "alice-signed", "--json")
	expect(t, r, ExitOK)
	var sb apiwire.Sandbox
	decodeStrict(t, r.stdout, &sb)
	if sb.Owner != arn {
		t.Errorf("owner %q, want the caller's ARN", sb.Owner)
	}
	r = run(good, "eu-west-1", "list", "--status", "running", "--json")
	expect(t, r, ExitOK)
	var listed listResult
	decodeStrict(t, r.stdout, &listed)
	if listed.Total != 1 || listed.Sandboxes[0].Name != "alice-signed" {
		t.Errorf("list: %+v", listed)
	}
	// The table shows the assumed role's role/session; --wide and status the ARN.
	r = run(good, "eu-west-1", "list")
	expect(t, r, ExitOK)
	mustMatch(t, r.stdout, `\nalice-signed +running +Developer/alice +1d +- *\n`)
	r = run(good, "eu-west-1", "list", "--wide")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, " "+arn+" ")
	expect(t, run(good, "eu-west-1", "extend", "alice-signed", "--by", "1h"), ExitOK)
	r = run(good, "eu-west-1", "status", "alice-signed")
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "Owner      Developer/alice ("+arn+")\n", "Time left  1d1h\n")

	r = run(credentials.NewStaticCredentialsProvider(akid, "not-the-secret", token), "eu-west-1", "status", "alice-signed", "--json")
	expect(t, r, ExitAuth)
	if e := errorDoc(t, r); e.Code != sandbox.CodeForbidden || e.Status != 403 || !strings.Contains(e.Message, "signature") {
		t.Errorf("bad signature: %+v", e)
	}
	r = run(good, "us-east-1", "status", "alice-signed", "--json")
	expect(t, r, ExitAuth)
	if e := errorDoc(t, r); !strings.Contains(e.Message, "eu-west-1") {
		t.Errorf("wrong region: %+v", e)
	}
	r = run(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no EC2 IMDS role found")
	}), "eu-west-1", "list")
	expect(t, r, ExitAuth)
	mustContain(t, r.stderr, "no AWS credentials", "[credentials]", "hint:")
	r = run(good, "", "list")
	expect(t, r, ExitUsage)
	mustContain(t, r.stderr, "region", "[config]")

	expect(t, run(good, "eu-west-1", "destroy", "alice-signed", "--yes"), ExitOK)
}
