package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// HandleEvent adapts the handler to API Gateway HTTP API payload-2.0 events; it is a
// lambdakit.MeteredHandler. The caller is the IAM principal ARN the AWS_IAM authorizer
// verified (requestContext.authorizer.iam.userArn), in its canonical form under API_OWNER_KEY
// (CanonicalPrincipal); there is no fallback to callerId, so an event without userArn is
// answered 401. Failures are answered as problems, never returned
// as invocation errors: API Gateway would turn those into bare 500s.
func (h *Handler) HandleEvent(ctx context.Context, rec *metrics.Recorder, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ctx = WithRecorder(ctx, rec)
	if auth := ev.RequestContext.Authorizer; auth != nil && auth.IAM != nil && auth.IAM.UserARN != "" {
		ctx = WithPrincipal(ctx, h.admins.canonical(auth.IAM.UserARN))
	}
	w := newResponseBuffer()
	r, err := requestOf(ctx, ev)
	if err != nil {
		if requestID(ctx) == "" {
			ctx = lambdakit.NewLocalContext(ctx)
		}
		r, _ = http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		w.Header().Set("X-Request-Id", requestID(ctx))
		h.writeError(w, r, err)
		rec.Count(metrics.ApiRequests, 1, metrics.DimRoute, unmatchedRoute)
		return w.response(), nil
	}
	h.ServeHTTP(w, r)
	return w.response(), nil
}

// requestOf builds the *http.Request of a payload-2.0 event.
func requestOf(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	path := ev.RawPath
	if stage := ev.RequestContext.Stage; stage != "" && stage != "$default" {
		// A named stage appears as the first segment of rawPath.
		path = strings.TrimPrefix(path, "/"+stage)
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(path)
	if err != nil || u.Path == "" {
		return nil, sandbox.InvalidField("path", "the request path is malformed")
	}
	u.RawQuery = ev.RawQueryString
	var body io.Reader = strings.NewReader(ev.Body)
	if ev.IsBase64Encoded {
		decoded, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, sandbox.InvalidField("body", "the request body is not valid base64")
		}
		body = bytes.NewReader(decoded)
	}
	method := ev.RequestContext.HTTP.Method
	if method == "" {
		return nil, sandbox.InvalidField("method", "the event has no HTTP method")
	}
	r, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, sandbox.InvalidField("method", "the request method or path is malformed")
	}
	for k, v := range ev.Headers {
		r.Header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	r.Host = ev.RequestContext.DomainName
	r.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	r.RequestURI = u.RequestURI()
	return r, nil
}

// responseBuffer is the http.ResponseWriter of one Lambda invocation.
type responseBuffer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newResponseBuffer() *responseBuffer { return &responseBuffer{header: http.Header{}} }

func (b *responseBuffer) Header() http.Header { return b.header }

func (b *responseBuffer) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *responseBuffer) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// response converts to the payload-2.0 response: single headers joined, Set-Cookie as
// cookies, a body that is not UTF-8 base64-encoded.
func (b *responseBuffer) response() events.APIGatewayV2HTTPResponse {
	status := b.status
	if status == 0 {
		status = http.StatusOK
	}
	out := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{}}
	for k, vs := range b.header {
		if k == "Set-Cookie" {
			out.Cookies = append(out.Cookies, vs...)
			continue
		}
		out.Headers[k] = strings.Join(vs, ", ")
	}
	if utf8.Valid(b.body.Bytes()) {
		out.Body = b.body.String()
	} else {
		out.Body = base64.StdEncoding.EncodeToString(b.body.Bytes())
		out.IsBase64Encoded = true
	}
	return out
}
