package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// maxResponseBytes bounds what the client reads of an answer; the API's largest documents (a
// full list page, an orphan report) are far smaller.
const maxResponseBytes = 8 << 20

// ListOptions are the query parameters of GET /v1/sandboxes.
type ListOptions struct {
	Owner            string
	All              bool
	Status           string
	IncludeDestroyed bool
	Limit            int
	Cursor           string
}

// Client calls the sandbox API of docs/api.md; its requests and answers are the API's own
// wire types (shared/apiwire).
type Client struct {
	base      *url.URL
	http      *http.Client
	auth      Authorizer
	userAgent string
	// Timeout bounds each request, answer included; 0 means no bound but the context's.
	Timeout time.Duration
	// strict makes decoding refuse unknown fields; tests set it to catch contract drift.
	strict bool
}

// NewClient returns a client of the API at baseURL (scheme, host and an optional stage
// path). auth may be nil for an unauthenticated client; hc nil means http.DefaultClient.
func NewClient(baseURL string, auth Authorizer, hc *http.Client) (*Client, error) {
	u, err := parseAPIURL(baseURL)
	if err != nil {
		return nil, err
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, http: hc, auth: auth, userAgent: "sandbox-cli"}, nil
}

// apiURLExample is what a well-formed API URL looks like, for the hints of parseAPIURL.
const apiURLExample = "https://<api-id>.execute-api.<region>.amazonaws.com, or http://127.0.0.1:<port> for a local stack"

// parseAPIURL checks an API base URL, saying what exactly is wrong with it: an http or https
// URL with a host, an optional stage path, and nothing else.
func parseAPIURL(raw string) (*url.URL, error) {
	fail := func(format string, args ...any) error {
		e := errorf(CodeConfig, "API URL %q "+format, append([]any{raw}, args...)...)
		e.Hint = "the API URL looks like " + apiURLExample
		return e
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fail("is not a URL: %v", unwrapURLError(err))
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fail("does not start with https:// or http://")
	case u.Hostname() == "":
		return nil, fail("has no host")
	case u.User != nil:
		return nil, fail("must not carry a user name or password")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fail("must not have a query or fragment")
	}
	return u, nil
}

// BaseURL is the API URL the client calls.
func (c *Client) BaseURL() string { return c.base.String() }

// Create creates a sandbox (POST /v1/sandboxes).
func (c *Client) Create(ctx context.Context, in apiwire.CreateRequest) (*apiwire.Sandbox, error) {
	return call[apiwire.Sandbox](ctx, c, http.MethodPost, []string{"v1", "sandboxes"}, nil, in)
}

// List returns one page of sandboxes (GET /v1/sandboxes).
func (c *Client) List(ctx context.Context, o ListOptions) (*apiwire.ListResponse, error) {
	q := url.Values{}
	if o.Owner != "" {
		q.Set("owner", o.Owner)
	}
	if o.All {
		q.Set("all", "true")
	}
	if o.Status != "" {
		q.Set("status", o.Status)
	}
	if o.IncludeDestroyed {
		q.Set("include_destroyed", "true")
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	return call[apiwire.ListResponse](ctx, c, http.MethodGet, []string{"v1", "sandboxes"}, q, nil)
}

// ListAll follows the cursors and returns every sandbox that matches.
func (c *Client) ListAll(ctx context.Context, o ListOptions) ([]apiwire.Sandbox, error) {
	all := []apiwire.Sandbox{}
	for {
		page, err := c.List(ctx, o)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Sandboxes...)
		if page.NextCursor == "" {
			return all, nil
		}
		o.Cursor = page.NextCursor
	}
}

// Get returns one sandbox with its guilds and teardown record (GET /v1/sandboxes/{name}).
func (c *Client) Get(ctx context.Context, name string) (*apiwire.Sandbox, error) {
	return call[apiwire.Sandbox](ctx, c, http.MethodGet, []string{"v1", "sandboxes", name}, nil, nil)
}

// Extend moves the expiry later by `by`, a duration string such as "12h" or "2d".
func (c *Client) Extend(ctx context.Context, name, by string) (*apiwire.ExtendResponse, error) {
	body := apiwire.ExtendRequest{By: by}
	return call[apiwire.ExtendResponse](ctx, c, http.MethodPost, []string{"v1", "sandboxes", name, "extend"}, nil, body)
}

// Destroy destroys a sandbox (DELETE /v1/sandboxes/{name}). completed is false when the API
// answered 202: the sandbox is destroying and the scheduled cleanup finishes the teardown.
func (c *Client) Destroy(ctx context.Context, name string) (res *apiwire.DestroyResponse, completed bool, err error) {
	out, status, err := callStatus[apiwire.DestroyResponse](ctx, c, http.MethodDelete, []string{"v1", "sandboxes", name}, nil, nil)
	if err != nil {
		return nil, false, err
	}
	return out, status != http.StatusAccepted, nil
}

// AddGuild maps a guild to a sandbox. added is false when it already was mapped to it.
func (c *Client) AddGuild(ctx context.Context, name, guildID string) (sb *apiwire.Sandbox, added bool, err error) {
	out, status, err := callStatus[apiwire.Sandbox](ctx, c, http.MethodPut, []string{"v1", "sandboxes", name, "guilds", guildID}, nil, nil)
	if err != nil {
		return nil, false, err
	}
	return out, status == http.StatusCreated, nil
}

// RemoveGuild unmaps a guild from a sandbox.
func (c *Client) RemoveGuild(ctx context.Context, name, guildID string) (*apiwire.Sandbox, error) {
	return call[apiwire.Sandbox](ctx, c, http.MethodDelete, []string{"v1", "sandboxes", name, "guilds", guildID}, nil, nil)
}

// Connect returns worker connection details; every call rotates the role's password.
func (c *Client) Connect(ctx context.Context, name string, in apiwire.ConnectRequest) (*apiwire.ConnectResponse, error) {
	// Without end_sessions the body is {}, which every API version accepts.
	return call[apiwire.ConnectResponse](ctx, c, http.MethodPost, []string{"v1", "sandboxes", name, "connect"}, nil, in)
}

// SandboxHealth runs the health checks of one sandbox.
func (c *Client) SandboxHealth(ctx context.Context, name string) (*apiwire.SandboxHealth, error) {
	return call[apiwire.SandboxHealth](ctx, c, http.MethodGet, []string{"v1", "sandboxes", name, "health"}, nil, nil)
}

// Route explains where a guild's events go.
func (c *Client) Route(ctx context.Context, guildID string) (*apiwire.RouteExplanation, error) {
	return call[apiwire.RouteExplanation](ctx, c, http.MethodGet, []string{"v1", "routes", guildID}, nil, nil)
}

// ParkedGuilds lists the caller's parked guilds (every owner's for an admin).
func (c *Client) ParkedGuilds(ctx context.Context) (*apiwire.ParkedGuilds, error) {
	return call[apiwire.ParkedGuilds](ctx, c, http.MethodGet, []string{"v1", "guilds", "parked"}, nil, nil)
}

// ReleaseGuild releases a parked guild to production.
func (c *Client) ReleaseGuild(ctx context.Context, guildID string) (*apiwire.ReleasedGuild, error) {
	return call[apiwire.ReleasedGuild](ctx, c, http.MethodPost, []string{"v1", "guilds", guildID, "release"}, nil, nil)
}

// TestGuilds lists the registered test guilds, the only guilds a sandbox may map.
func (c *Client) TestGuilds(ctx context.Context) (*apiwire.TestGuilds, error) {
	return call[apiwire.TestGuilds](ctx, c, http.MethodGet, []string{"v1", "test-guilds"}, nil, nil)
}

// RegisterTestGuild registers a guild as a test guild (admin); created is false when it was
// registered already (its note is then replaced).
func (c *Client) RegisterTestGuild(ctx context.Context, guildID, note string) (*apiwire.TestGuild, bool, error) {
	return callCreated[apiwire.TestGuild](ctx, c, http.MethodPut, []string{"v1", "admin", "test-guilds", guildID},
		apiwire.RegisterTestGuildRequest{Note: note})
}

// UnregisterTestGuild takes a guild off the test guilds (admin) and returns the registration
// removed.
func (c *Client) UnregisterTestGuild(ctx context.Context, guildID string) (*apiwire.TestGuild, error) {
	return call[apiwire.TestGuild](ctx, c, http.MethodDelete, []string{"v1", "admin", "test-guilds", guildID}, nil, nil)
}

// ProtectedGuilds lists the protected guilds (admin), configured and recorded.
func (c *Client) ProtectedGuilds(ctx context.Context) (*apiwire.ProtectedGuilds, error) {
	return call[apiwire.ProtectedGuilds](ctx, c, http.MethodGet, []string{"v1", "admin", "protected-guilds"}, nil, nil)
}

// ProtectGuild protects a guild now (admin); created is false when it was protected already
// (its reason is then replaced).
func (c *Client) ProtectGuild(ctx context.Context, guildID, reason string) (*apiwire.ProtectedGuild, bool, error) {
	return callCreated[apiwire.ProtectedGuild](ctx, c, http.MethodPut, []string{"v1", "admin", "protected-guilds", guildID},
		apiwire.ProtectGuildRequest{Reason: reason})
}

// UnprotectGuild takes a recorded protection away (admin) and returns it.
func (c *Client) UnprotectGuild(ctx context.Context, guildID string) (*apiwire.ProtectedGuild, error) {
	return call[apiwire.ProtectedGuild](ctx, c, http.MethodDelete, []string{"v1", "admin", "protected-guilds", guildID}, nil, nil)
}

// Cleanup runs the cleanup now (admin), removing orphans afterwards when asked.
func (c *Client) Cleanup(ctx context.Context, removeOrphans bool) (*apiwire.CleanupResponse, error) {
	var body any // no body unless asked: the API's default is a run without removal
	if removeOrphans {
		body = apiwire.CleanupRequest{RemoveOrphans: true}
	}
	return call[apiwire.CleanupResponse](ctx, c, http.MethodPost, []string{"v1", "admin", "cleanup"}, nil, body)
}

// Orphans returns the orphaned resources report (admin); it never removes anything.
func (c *Client) Orphans(ctx context.Context) (*apiwire.OrphansResponse, error) {
	return call[apiwire.OrphansResponse](ctx, c, http.MethodGet, []string{"v1", "admin", "orphans"}, nil, nil)
}

// call sends one request and returns its 2xx answer decoded as a T: the body of every
// method whose answer is its document alone.
func call[T any](ctx context.Context, c *Client, method string, segments []string, query url.Values, in any) (*T, error) {
	out, _, err := callStatus[T](ctx, c, method, segments, query, in)
	return out, err
}

// callCreated is call for a PUT that creates or replaces: created reports 201 Created.
func callCreated[T any](ctx context.Context, c *Client, method string, segments []string, in any) (*T, bool, error) {
	out, status, err := callStatus[T](ctx, c, method, segments, nil, in)
	if err != nil {
		return nil, false, err
	}
	return out, status == http.StatusCreated, nil
}

// callStatus is call for the methods whose answer also means something by its status (201
// created, 202 accepted).
func callStatus[T any](ctx context.Context, c *Client, method string, segments []string, query url.Values, in any) (*T, int, error) {
	var out T
	status, err := c.do(ctx, method, segments, query, in, &out)
	if err != nil {
		return nil, 0, err
	}
	return &out, status, nil
}

// do sends one request and decodes a 2xx answer into out; any other answer becomes an *Error.
// It returns the HTTP status of a successful answer.
func (c *Client) do(ctx context.Context, method string, segments []string, query url.Values, in, out any) (int, error) {
	u := *c.base
	escaped := make([]string, len(segments))
	for i, s := range segments {
		escaped[i] = url.PathEscape(s)
	}
	u.Path = c.base.Path + "/" + strings.Join(segments, "/")
	u.RawPath = c.base.Path + "/" + strings.Join(escaped, "/")
	u.RawQuery = query.Encode()

	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, fmt.Errorf("encoding the request: %w", err)
		}
	}
	reqCtx := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(reqCtx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, errorf(CodeConfig, "building the request: %v", err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, "+apiwire.ProblemContentType)
	req.Header.Set("User-Agent", c.userAgent)
	if c.auth != nil {
		if err := c.auth.Authorize(reqCtx, req, body); err != nil {
			return 0, err
		}
	}

	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, &Error{Code: CodeInterrupted, Message: "interrupted before the API answered " + method + " " + u.Path}
		}
		if reqCtx.Err() != nil {
			return 0, &Error{Code: CodeUnreachable, Message: fmt.Sprintf("the API at %s did not answer %s %s within %s", c.base, method, u.Path, c.Timeout)}
		}
		return 0, &Error{Code: CodeUnreachable, Message: fmt.Sprintf("cannot reach the API at %s: %v", c.base, unwrapURLError(err))}
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return 0, &Error{Code: CodeUnreachable, Message: fmt.Sprintf("reading the API's answer to %s %s: %v", method, u.Path, err)}
	}
	if len(data) > maxResponseBytes {
		return 0, errorf(CodeBadResponse, "the API's answer to %s %s exceeds %d bytes", method, u.Path, maxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, c.decodeError(resp, data)
	}
	if out != nil {
		if err := c.decode(data, out); err != nil {
			return 0, errorf(CodeBadResponse, "cannot read the API's answer to %s %s (HTTP %d): %v", method, u.Path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, nil
}

func (c *Client) decode(data []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if c.strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(out); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

// decodeError turns a non-2xx answer into an *Error: the API's problem document when it is
// one, otherwise (API Gateway's own answers, such as a rejected signature, or a proxy's) an
// error whose code follows the HTTP status.
func (c *Client) decodeError(resp *http.Response, data []byte) *Error {
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType == apiwire.ProblemContentType {
		var p apiwire.Problem
		if err := c.decode(data, &p); err == nil && p.Code != "" {
			msg := p.Detail
			if msg == "" {
				msg = p.Title
			}
			return &Error{Code: p.Code, Message: msg, Status: resp.StatusCode, Field: p.Field,
				RequestID: firstNonEmpty(p.RequestID, resp.Header.Get("X-Request-Id")), Sandbox: p.Sandbox}
		}
	}
	// API Gateway answers {"message":"..."} for requests it rejects itself.
	msg := http.StatusText(resp.StatusCode)
	var gw struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &gw) == nil && gw.Message != "" {
		msg = gw.Message
	}
	return &Error{Code: codeForStatus(resp.StatusCode), Message: msg, Status: resp.StatusCode,
		RequestID: firstNonEmpty(resp.Header.Get("X-Request-Id"), resp.Header.Get("Apigw-Requestid"))}
}

// codeForStatus classifies an answer that carries no code.
func codeForStatus(status int) sandbox.Code {
	switch {
	case status == http.StatusUnauthorized:
		return sandbox.CodeUnauthenticated
	case status == http.StatusForbidden:
		return sandbox.CodeForbidden
	case status == http.StatusNotFound:
		return sandbox.CodeNotFound
	case status == http.StatusTooManyRequests || status == http.StatusBadGateway ||
		status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		return sandbox.CodeUnavailable
	case status >= 400 && status < 500:
		return sandbox.CodeInvalidInput
	}
	return sandbox.CodeInternal
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
