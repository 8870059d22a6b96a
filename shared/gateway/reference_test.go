package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// referenceParse states Parse's rules again on top of encoding/json, which decodes the whole
// payload: a second, independent reading to compare the scanner against.
func referenceParse(body []byte) (Dispatch, error) {
	if len(body) > MaxBodyBytes {
		return Dispatch{}, ErrTooLarge
	}
	if !json.Valid(body) {
		return Dispatch{}, ErrMalformed
	}
	top, ok := objectMembers(body)
	if !ok {
		return Dispatch{}, ErrMalformed
	}
	for _, key := range []string{"op", "t", "s", "d"} {
		if len(top[key]) > 1 {
			return Dispatch{}, ErrMalformed
		}
	}
	one := func(key string) json.RawMessage {
		if vs := top[key]; len(vs) == 1 {
			return vs[0]
		}
		return nil
	}
	isNull := func(v json.RawMessage) bool { return string(v) == "null" }

	op := one("op")
	var opcode int64
	if op == nil || isNull(op) || json.Unmarshal(op, &opcode) != nil {
		return Dispatch{}, ErrMalformed
	}
	if opcode != 0 {
		return Dispatch{}, ErrNotDispatch
	}

	var d Dispatch
	t := one("t")
	if t == nil || isNull(t) {
		return Dispatch{}, ErrNotDispatch
	}
	if json.Unmarshal(t, &d.Type) != nil {
		return Dispatch{}, ErrMalformed
	}
	if d.Type == "" {
		return Dispatch{}, ErrNotDispatch
	}
	if len(d.Type) > MaxEventTypeBytes {
		return Dispatch{}, ErrMalformed
	}
	if s := one("s"); s != nil && !isNull(s) {
		if json.Unmarshal(s, &d.Sequence) != nil {
			return Dispatch{}, ErrMalformed
		}
		d.HasSequence = true
	}
	data := one("d")
	if data != nil && !isNull(data) && data[0] != '{' {
		return Dispatch{}, ErrMalformed
	}

	path, known := guildLocations[d.Type]
	if !known {
		path = defaultGuildPath
	}
	if path == nil || data == nil || isNull(data) {
		return d, nil
	}
	// Follow the path; every key on it must appear at most once.
	value := data
	for _, key := range path {
		if isNull(value) {
			return d, nil
		}
		members, ok := objectMembers(value)
		if !ok {
			return Dispatch{}, ErrMalformed
		}
		switch len(members[key]) {
		case 0:
			return d, nil
		case 1:
			value = members[key][0]
		default:
			return Dispatch{}, ErrMalformed
		}
	}
	if isNull(value) {
		return d, nil
	}
	var id string
	if json.Unmarshal(value, &id) != nil || !sandbox.ValidSnowflake(id) {
		return d, ErrInvalidGuildID
	}
	d.GuildID = id
	return d, nil
}

// objectMembers decodes a valid JSON object into its members, keeping every duplicate.
func objectMembers(obj []byte) (map[string][]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	members := map[string][]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		key := tok.(string)
		members[key] = append(members[key], raw)
	}
	return members, true
}

var sentinels = []error{ErrMalformed, ErrNotDispatch, ErrTooLarge, ErrInvalidGuildID}

// sentinelOf returns the one sentinel err wraps, nil for nil, or fails the test.
func sentinelOf(tb testing.TB, err error) error {
	tb.Helper()
	if err == nil {
		return nil
	}
	var found error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			if found != nil {
				tb.Fatalf("error %q wraps both %v and %v", err, found, s)
			}
			found = s
		}
	}
	if found == nil {
		tb.Fatalf("error %q wraps no sentinel", err)
	}
	return found
}

// checkAgainstReference asserts Parse's invariants and that it agrees with referenceParse.
func checkAgainstReference(tb testing.TB, body []byte) {
	tb.Helper()
	got, err := Parse(body)
	kind := sentinelOf(tb, err)
	want, wantKind := referenceParse(body)
	if kind != wantKind || got != want {
		tb.Fatalf("Parse(%q)\n got  %+v, %v\n want %+v, %v", body, got, err, want, wantKind)
	}
	if err == nil {
		if !json.Valid(body) {
			tb.Fatalf("Parse accepted invalid JSON %q", body)
		}
		if got.Type == "" || len(got.Type) > MaxEventTypeBytes {
			tb.Fatalf("Parse returned event type %q", got.Type)
		}
	}
	if got.GuildID != "" && !sandbox.ValidSnowflake(got.GuildID) {
		tb.Fatalf("Parse returned guild id %q, not a snowflake", got.GuildID)
	}
}

// crossCheckBodies are the fixtures plus bodies aimed at the corners of the rules.
func crossCheckBodies(tb testing.TB) [][]byte {
	bodies := [][]byte{}
	for _, fx := range fixtures {
		bodies = append(bodies, readFixture(tb, fx.file))
	}
	for _, s := range []string{
		`{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":"1081240586043576360"}}`,
		`{"d":{"guild_id":"1081240586043576360"},"t":"MESSAGE_CREATE","op":0}`,
		`{"op":0,"t":"GUILD_CREATE","d":{"id":"613425648685547541","guild_id":"1081240586043576360"}}`,
		`{"op":0,"t":"RATE_LIMITED","d":{"meta":{"guild_id":"1081240586043576360"}}}`,
		`{"op":0,"t":"RATE_LIMITED","d":{"meta":"x"}}`,
		`{"op":0,"t":"RATE_LIMITED","d":{"meta":{"guild_id":1}}}`,
		`{"op":0,"t":"MESSAGE\u005fCREATE","d":{"guild\u005fid":"\u0031\u0030\u0038\u0031240586043576360"}}`,
		`{"op":0,"t":"\ud83d\ude00","d":{}}`,
		`{"op":0,"t":"\ud83d","d":{}}`,
		`{"op":0,"t":"\udc00\ud83d\u0041","d":{}}`,
		"{\"op\":0,\"t\":\"MESSAGE_CREATE\xff\xfe\",\"d\":{}}",
		"{\"op\":0,\"t\":\"\xed\xa0\x80\",\"d\":{}}",
		`{"op":0,"t":"` + string(bytes.Repeat([]byte("é"), 32)) + `","d":{}}`,
		`{"op":0,"t":"` + string(bytes.Repeat([]byte("é"), 33)) + `","d":{}}`,
		`{"op":-0,"t":"READY","s":-0}`,
		`{"op":0,"t":"READY","s":9223372036854775807}`,
		`{"op":0,"t":"MESSAGE_CREATE","d":{"guild_id":"1081240586043576360","guild_id":"1081240586043576360"}}`,
		`{"op":0,"t":"MESSAGE_CREATE","d":{"guild_id":"1081240586043576360"},"x":[1,{"y":"\"}"}]}`,
		`{"op":2,"t":5}`,
		`{"op":0,"t":5}`,
		`{"op":0,"t":"READY","s":"x","d":[]}`,
		`{"op":0,"t":"MESSAGE_CREATE","s":1.5,"d":{"guild_id":"x"}}`,
		`{"op":0,"t":"MESSAGE_CREATE","d":[],"s":"x"}`,
		` {"op":0,"t":"READY"} `,
		`{}`,
	} {
		bodies = append(bodies, []byte(s))
	}
	return bodies
}

func TestParseMatchesEncodingJSON(t *testing.T) {
	for _, body := range crossCheckBodies(t) {
		checkAgainstReference(t, body)
	}
}

// FuzzParse: no input may panic Parse, and every input must get the same answer as the
// encoding/json reading of the same rules. In particular Parse never accepts invalid JSON,
// and every guild id it returns is a snowflake.
func FuzzParse(f *testing.F) {
	for _, body := range crossCheckBodies(f) {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAgainstReference(t, body)
	})
}
