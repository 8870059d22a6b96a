package api

import (
	"bytes"
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

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

// CreateRequest is the body of POST /v1/sandboxes.
type CreateRequest struct {
	Name     string            `json:"name"`
	TTL      string            `json:"ttl,omitempty"`
	Guilds   []string          `json:"guilds,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ExtendRequest is the body of POST /v1/sandboxes/{name}/extend.
type ExtendRequest struct {
	By string `json:"by"`
}

// CleanupRequest is the (optional) body of POST /v1/admin/cleanup.
type CleanupRequest struct {
	RemoveOrphans bool `json:"remove_orphans,omitempty"`
}

// noBody is what routes without a body accept: nothing, or {}.
type noBody struct{}

// readBody reads the request body within MaxBodyBytes and checks its media type.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &httpError{status: http.StatusRequestEntityTooLarge,
				err: sandbox.InvalidField("body", "the request body exceeds %d bytes", MaxBodyBytes)}
		}
		return nil, sandbox.InvalidField("body", "the request body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, &httpError{status: http.StatusUnsupportedMediaType,
				err: sandbox.InvalidField("body", "the request body must be application/json, not %q", truncate(ct, 60))}
		}
	}
	return body, nil
}

// decodeJSON decodes exactly one JSON object into v: unknown fields, trailing data and
// anything but an object are refused with a message that says where. An empty body leaves v
// as it is.
func decodeJSON(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil
	}
	if trimmed[0] != '{' {
		return sandbox.InvalidField("body", "the request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return sandbox.InvalidField("body", "the request body has data after the JSON object")
	}
	return nil
}

// jsonError turns a decoding error into a caller-safe invalid_input error.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return sandbox.InvalidField("body", "the request body is not valid JSON (at byte %d): %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return sandbox.InvalidField(field, "field %q: expected %s, got a JSON %s", field, jsonKind(typ.Type.String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return sandbox.InvalidField("body", "the request body ends in the middle of the JSON object")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field, _ := strconv.Unquote(name)
		if field == "" {
			field = "body"
		}
		return sandbox.InvalidField(truncate(field, 40), "unknown field %s", truncate(name, 42))
	}
	return sandbox.InvalidField("body", "the request body is not a valid request")
}

func jsonKind(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "[]"):
		return "an array of strings"
	case strings.HasPrefix(goType, "map["):
		return "an object of strings"
	default:
		return "an object"
	}
}

// ParseCreateRequest decodes and validates a create body against the limits. What it
// returns passes the Manager's own validation.
func ParseCreateRequest(body []byte, limits sandbox.Limits) (controlplane.CreateInput, error) {
	var req CreateRequest
	if err := decodeJSON(body, &req); err != nil {
		return controlplane.CreateInput{}, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return controlplane.CreateInput{}, sandbox.InvalidField("body", "a JSON object with at least \"name\" is required")
	}
	if err := sandbox.ValidateName(req.Name); err != nil {
		return controlplane.CreateInput{}, err
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := parseDuration("ttl", req.TTL)
		if err != nil {
			return controlplane.CreateInput{}, err
		}
		ttl = d
	}
	if _, err := limits.ResolveTTL(ttl); err != nil {
		return controlplane.CreateInput{}, err
	}
	guilds, err := limits.NormalizeGuilds(req.Guilds)
	if err != nil {
		return controlplane.CreateInput{}, err
	}
	if err := limits.ValidateMetadata(req.Metadata); err != nil {
		return controlplane.CreateInput{}, err
	}
	return controlplane.CreateInput{Name: req.Name, TTL: ttl, Guilds: guilds, Metadata: req.Metadata}, nil
}

// extendBy checks an extend body; the Manager checks the bounds of "by" against the
// sandbox's lifetime.
func extendBy(req ExtendRequest) (time.Duration, error) {
	if req.By == "" {
		return 0, sandbox.InvalidField("by", "\"by\" is required, e.g. {\"by\": \"24h\"}")
	}
	return parseDuration("by", req.By)
}

func parseDuration(field, s string) (time.Duration, error) {
	d, err := config.ParseDuration(s)
	if err != nil {
		return 0, sandbox.InvalidField(field, "%s %q is not a duration like \"90m\", \"24h\" or \"7d\"", field, truncate(s, 40))
	}
	if d <= 0 {
		return 0, sandbox.InvalidField(field, "%s must be positive", field)
	}
	return d, nil
}

// query reads the query parameters a route allows; anything else, or a parameter given
// twice, is invalid input.
type query struct {
	values url.Values
}

func parseQuery(r *http.Request, allowed ...string) (query, error) {
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return query{}, sandbox.InvalidField("query", "the query string is malformed")
	}
	for name, vs := range values {
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			if len(allowed) == 0 {
				return query{}, sandbox.InvalidField(truncate(name, 40), "this route takes no query parameters, got %q", truncate(name, 40))
			}
			return query{}, sandbox.InvalidField(truncate(name, 40), "unknown query parameter %q (allowed: %s)", truncate(name, 40), strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return query{}, sandbox.InvalidField(name, "query parameter %q is given %d times", name, len(vs))
		}
	}
	return query{values: values}, nil
}

func (q query) str(name string) string { return q.values.Get(name) }

func (q query) boolean(name string) (bool, error) {
	v := q.values.Get(name)
	switch v {
	case "":
		return false, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, sandbox.InvalidField(name, "%s must be true or false, not %q", name, truncate(v, 20))
}

func (q query) integer(name string, def, min, max int) (int, error) {
	v := q.values.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, sandbox.InvalidField(name, "%s must be an integer between %d and %d", name, min, max)
	}
	return n, nil
}

// truncate bounds user input echoed in messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%.*s...", n, s)
}
