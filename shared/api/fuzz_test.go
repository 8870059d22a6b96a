package api_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// FuzzDecodeCreateRequest checks that create bodies either decode into input the control
// plane accepts, or are refused as invalid_input with a bounded, caller-safe message; and
// that an accepted request means the same when encoded and decoded again, with no string
// altered on the way in. The seed corpus is testdata/fuzz/FuzzDecodeCreateRequest and
// ambiguousStrings.
func FuzzDecodeCreateRequest(f *testing.F) {
	f.Add([]byte(`{"name":"alpha","ttl":"2h","guilds":["80351110224678912"],"metadata":{"k":"v"}}`))
	for _, bc := range ambiguousStrings {
		f.Add([]byte(bc.body))
	}
	limits := sandbox.DefaultLimits()
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := api.ParseCreateRequest(body, limits)
		if err != nil {
			var de *sandbox.Error
			if sandbox.CodeOf(err) != sandbox.CodeInvalidInput || !errors.As(err, &de) || de.Message == "" || de.Field == "" {
				t.Fatalf("refusal %v is not an invalid_input error about a field", err)
			}
			if len(de.Message) > 400 || len(de.Field) > 64 {
				t.Fatalf("unbounded message (%d bytes) or field (%d bytes)", len(de.Message), len(de.Field))
			}
			return
		}
		if sandbox.ValidateName(in.Name) != nil {
			t.Fatalf("accepted invalid name %q", in.Name)
		}
		if _, err := limits.ResolveTTL(in.TTL); err != nil {
			t.Fatalf("accepted ttl %s: %v", in.TTL, err)
		}
		if normalized, err := limits.NormalizeGuilds(in.Guilds); err != nil || !slices.Equal(normalized, in.Guilds) {
			t.Fatalf("guilds %v not normalized (%v)", in.Guilds, err)
		}
		if err := limits.ValidateMetadata(in.Metadata); err != nil {
			t.Fatalf("accepted metadata: %v", err)
		}
		// What is accepted is what was sent: no string was altered on the way in.
		if !utf8.Valid(body) || strings.Contains(string(body), `\u0000`) {
			t.Fatalf("accepted a body with invalid UTF-8 or a NUL escape: %q", body)
		}
		for k, v := range in.Metadata {
			if strings.ContainsRune(k+v, 0) || strings.Count(k+v, "\uFFFD") > strings.Count(string(body), "\uFFFD")+
				strings.Count(strings.ToLower(string(body)), `\ufffd`) {
				t.Fatalf("accepted metadata %q: %q, which the body did not carry", k, v)
			}
		}
		req := apiwire.CreateRequest{Name: in.Name, Guilds: in.Guilds, Metadata: in.Metadata}
		if in.TTL != 0 {
			req.TTL = in.TTL.String()
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		round, err := api.ParseCreateRequest(again, limits)
		if err != nil || round.Name != in.Name || round.TTL != in.TTL || !slices.Equal(round.Guilds, in.Guilds) || len(round.Metadata) != len(in.Metadata) {
			t.Fatalf("round trip of %s: %+v, %v; want %+v", again, round, err, in)
		}
		if strings.TrimSpace(string(body)) == "" {
			t.Fatal("an empty body was accepted")
		}
	})
}

// ambiguousStrings are bodies encoding/json decodes without complaint but not as sent: a
// key given twice (the last one would win), NUL characters (jsonb refuses them: a 500),
// invalid UTF-8 and lone surrogate escapes (stored as U+FFFD). Each is invalid_input naming
// the JSON path of the string.
var ambiguousStrings = []struct {
	name, body, field string
}{
	{"duplicate name", `{"name":"alpha","name":"beta"}`, "name"},
	{"duplicate name in another case", `{"name":"alpha","NAME":"beta"}`, "NAME"},
	{"duplicate metadata key", `{"name":"alpha","metadata":{"k":"a","k":"b"}}`, "metadata.k"},
	{"duplicate metadata", `{"name":"alpha","metadata":{"k":"a"},"metadata":{"j":"b"}}`, "metadata"},
	{"NUL in a metadata value", `{"name":"alpha","metadata":{"k":"a\u0000b"}}`, "metadata.k"},
	{"NUL in a metadata key", `{"name":"alpha","metadata":{"k\u0000":"v"}}`, "metadata"},
	{"NUL in the name", `{"name":"alp\u0000ha"}`, "name"},
	{"NUL in a guild", `{"name":"alpha","guilds":["80351110224678912","8035111022467891\u00003"]}`, "guilds[1]"},
	{"NUL in a top-level key", `{"name":"alpha","\u0000":1}`, "body"},
	{"invalid UTF-8 in a metadata value", "{\"name\":\"alpha\",\"metadata\":{\"k\":\"a\xffb\"}}", "metadata.k"},
	{"invalid UTF-8 in a metadata key", "{\"name\":\"alpha\",\"metadata\":{\"k\xc3\":\"v\"}}", "metadata"},
	{"overlong UTF-8", "{\"name\":\"alpha\",\"metadata\":{\"k\":\"\xc0\xaf\"}}", "metadata.k"},
	{"lone high surrogate", `{"name":"alpha","metadata":{"k":"\ud800"}}`, "metadata.k"},
	{"lone low surrogate", `{"name":"alpha","metadata":{"k":"x\udfffy"}}`, "metadata.k"},
	{"surrogates reversed", `{"name":"alpha","metadata":{"k":"\udc00\ud800"}}`, "metadata.k"},
	{"high surrogate then a letter", `{"name":"alpha","metadata":{"k":"\ud83d\u0041"}}`, "metadata.k"},
	{"lone surrogate in a key", `{"name":"alpha","metadata":{"\uD800":"v"}}`, "metadata"},
	{"lone surrogate in the ttl", `{"name":"alpha","ttl":"\ud800"}`, "ttl"},
}

func TestParseCreateRequestRefusesAmbiguousStrings(t *testing.T) {
	limits := sandbox.DefaultLimits()
	for _, bc := range ambiguousStrings {
		_, err := api.ParseCreateRequest([]byte(bc.body), limits)
		var de *sandbox.Error
		if !errors.As(err, &de) || de.Code != sandbox.CodeInvalidInput || de.Field != bc.field {
			t.Errorf("%s: %s: got %v (field %q), want invalid_input on %q", bc.name, bc.body, err, fieldOf(de), bc.field)
		}
	}
	// What is fine stays fine: a surrogate pair, U+FFFD sent as such, escaped backslashes,
	// the same key in different objects, keys that differ in case below the top level.
	for _, body := range []string{
		`{"name":"alpha","metadata":{"emoji":"\ud83d\ude00","pair":"\uD83D\uDE00"}}`,
		`{"name":"alpha","metadata":{"k":"\ufffd �"}}`,
		`{"name":"alpha","metadata":{"k":"\\ud800 \\u0000"}}`,
		`{"name":"alpha","metadata":{"k":"v","K":"w","name":"x"}}`,
	} {
		in, err := api.ParseCreateRequest([]byte(body), limits)
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if e := in.Metadata["emoji"]; e != "" && e != "\U0001F600" {
			t.Errorf("surrogate pair decoded as %q", e)
		}
	}
}

func fieldOf(e *sandbox.Error) string {
	if e == nil {
		return ""
	}
	return e.Field
}
