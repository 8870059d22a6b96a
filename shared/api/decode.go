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
	"unicode/utf8"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

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
	if err := checkStrings(trimmed); err != nil {
		return err
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

// checkStrings refuses what encoding/json lets through silently: a key given twice at any
// depth (the last one would win), and strings, keys and values alike, with a NUL (jsonb cannot
// store one), invalid UTF-8 or a lone surrogate escape such as \ud800 (both would be stored as
// U+FFFD). The refusal names the JSON path of the string (metadata.k). It walks the first
// JSON value of body token by token and leaves syntax errors and trailing data to the
// decoder, which reports them.
func checkStrings(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	// One frame per open object or array: its path, and for an object the keys seen and
	// whether the next string is a key.
	type frame struct {
		path   string
		object bool
		keys   map[string]bool
		key    bool   // an object expects a key next
		member string // the path of the member whose value comes next
		index  int    // an array's next element
	}
	var stack []*frame
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil // the decoder reports it
		}
		// The path of this token when it is a value; the path of its object when it is a key.
		path := ""
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
			if top.object {
				path = top.member
			} else {
				path = top.path + "[" + strconv.Itoa(top.index) + "]"
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil && !top.object {
					top.index++
				}
				if top != nil && top.object {
					top.key = true
				}
				f := &frame{path: path}
				if t == '{' {
					f.object, f.key, f.keys = true, true, map[string]bool{}
				}
				stack = append(stack, f)
			default:
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return nil // the first value ends here; anything after is the decoder's
				}
			}
			continue
		case string:
			raw := body[start:dec.InputOffset()]
			raw = raw[bytes.IndexByte(raw, '"'):] // after the separators before the string
			if top != nil && top.object && top.key {
				field := joinPath(top.path, t)
				if problem := stringProblem(raw, t); problem != "" {
					return sandbox.InvalidField(boundedField(top.path), "a key of %s %s", describePath(top.path), problem)
				}
				if top.keys[t] || (len(stack) == 1 && foldedDuplicate(top.keys, t)) {
					return sandbox.InvalidField(boundedField(field), "%s is given twice; give each key once", boundedField(field))
				}
				top.keys[t] = true
				top.member, top.key = field, false
				continue
			}
			if problem := stringProblem(raw, t); problem != "" {
				return sandbox.InvalidField(boundedField(path), "the value of %s %s", describePath(path), problem)
			}
		}
		// A scalar value (a string that is not a key, a number, a boolean, null).
		if top == nil {
			return nil // not an object: the decoder refuses it
		}
		if top.object {
			top.key = true
		} else {
			top.index++
		}
	}
}

// stringProblem says what is wrong with a JSON string token, raw as it is in the body
// (quotes included), decoded as encoding/json decoded it; "" when nothing is.
func stringProblem(raw []byte, decoded string) string {
	if strings.ContainsRune(decoded, 0) {
		return "contains a NUL character (\\u0000)"
	}
	for i := 1; i < len(raw)-1; {
		c := raw[i]
		if c == '\\' {
			if raw[i+1] != 'u' {
				i += 2
				continue
			}
			r := hex4(raw[i+2 : i+6])
			switch {
			case r >= 0xD800 && r < 0xDC00:
				if i+12 <= len(raw)-1 && raw[i+6] == '\\' && raw[i+7] == 'u' {
					if lo := hex4(raw[i+8 : i+12]); lo >= 0xDC00 && lo < 0xE000 {
						i += 12
						continue
					}
				}
				return "contains a lone surrogate escape (\\u" + string(raw[i+2:i+6]) + "), which is not a character"
			case r >= 0xDC00 && r < 0xE000:
				return "contains a lone surrogate escape (\\u" + string(raw[i+2:i+6]) + "), which is not a character"
			}
			i += 6
			continue
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			return "is not valid UTF-8"
		}
		i += size
	}
	return ""
}

// hex4 reads the four hex digits of a \u escape the decoder already accepted.
func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b), 16, 32)
	return rune(n)
}

// foldedDuplicate reports whether key matches a key seen case-insensitively: encoding/json
// sets a struct field from "name" and "NAME" alike, so in the body's top-level object (a
// request struct) those are the same key given twice.
func foldedDuplicate(seen map[string]bool, key string) bool {
	for k := range seen {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// joinPath appends an object's key to its path: metadata.k; a key that is not a plain name
// is quoted, so that a field never carries raw control characters or bytes.
func joinPath(path, key string) string {
	if !plainKey(key) {
		key = strconv.QuoteToASCII(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for _, r := range key {
		if r > 0x7e || r <= 0x20 || r == '"' || r == '.' || r == '[' || r == ']' || r == '\\' {
			return false
		}
	}
	return true
}

// maxFieldLen bounds the field member of a problem.
const maxFieldLen = 64

// boundedField is the field member for path: body for the top level, cut to maxFieldLen.
func boundedField(path string) string {
	if path == "" {
		path = "body"
	}
	if len(path) > maxFieldLen {
		path = path[:maxFieldLen-3] + "..."
	}
	return path
}

func describePath(path string) string {
	if path == "" {
		return "the request body"
	}
	return truncate(path, 60)
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
	var req apiwire.CreateRequest
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
	if req.Template != "" {
		if err := sandbox.ValidateTemplateName("template", req.Template); err != nil {
			return controlplane.CreateInput{}, err
		}
	}
	return controlplane.CreateInput{Name: req.Name, TTL: ttl, Guilds: guilds, Metadata: req.Metadata, Template: req.Template}, nil
}

// extendBy checks an extend body; the Manager checks the bounds of "by" against the
// sandbox's lifetime.
func extendBy(req apiwire.ExtendRequest) (time.Duration, error) {
	if req.By == "" {
		return 0, sandbox.InvalidField("by", "\"by\" is required, e.g. {\"by\": \"24h\"}")
	}
	return parseDuration("by", req.By)
}

func parseDuration(field, s string) (time.Duration, error) {
	d, err := sandbox.ParseDuration(s)
	if err != nil {
		return 0, sandbox.InvalidField(field, "%s %q is not a duration like %s", field, truncate(s, 40), sandbox.DurationForms)
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
