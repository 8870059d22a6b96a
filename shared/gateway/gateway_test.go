package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testGuild   = "1081240586043576360"
	otherGuild  = "613425648685547541"
	oldestGuild = "41771983423143937"
)

// fixtures lists every file in testdata/dispatch with what Parse must return for it.
var fixtures = []struct {
	file  string
	typ   string
	seq   int64
	guild string
}{
	{"READY", "READY", 1, ""},
	{"RESUMED", "RESUMED", 1841, ""},
	{"RATE_LIMITED", "RATE_LIMITED", 77, testGuild},
	{"APPLICATION_COMMAND_PERMISSIONS_UPDATE", "APPLICATION_COMMAND_PERMISSIONS_UPDATE", 12, testGuild},
	{"AUTO_MODERATION_RULE_CREATE", "AUTO_MODERATION_RULE_CREATE", 31, testGuild},
	{"AUTO_MODERATION_RULE_UPDATE", "AUTO_MODERATION_RULE_UPDATE", 32, testGuild},
	{"AUTO_MODERATION_RULE_DELETE", "AUTO_MODERATION_RULE_DELETE", 33, otherGuild},
	{"AUTO_MODERATION_ACTION_EXECUTION", "AUTO_MODERATION_ACTION_EXECUTION", 34, testGuild},
	{"CHANNEL_CREATE", "CHANNEL_CREATE", 40, testGuild},
	{"CHANNEL_UPDATE", "CHANNEL_UPDATE", 41, testGuild},
	{"CHANNEL_DELETE", "CHANNEL_DELETE", 42, otherGuild},
	{"CHANNEL_PINS_UPDATE", "CHANNEL_PINS_UPDATE", 43, testGuild},
	{"CHANNEL_PINS_UPDATE.dm", "CHANNEL_PINS_UPDATE", 44, ""},
	{"THREAD_CREATE", "THREAD_CREATE", 50, testGuild},
	{"THREAD_UPDATE", "THREAD_UPDATE", 51, testGuild},
	{"THREAD_DELETE", "THREAD_DELETE", 52, testGuild},
	{"THREAD_LIST_SYNC", "THREAD_LIST_SYNC", 53, testGuild},
	{"THREAD_MEMBER_UPDATE", "THREAD_MEMBER_UPDATE", 54, testGuild},
	{"THREAD_MEMBERS_UPDATE", "THREAD_MEMBERS_UPDATE", 55, testGuild},
	{"ENTITLEMENT_CREATE", "ENTITLEMENT_CREATE", 60, testGuild},
	{"ENTITLEMENT_UPDATE", "ENTITLEMENT_UPDATE", 61, ""}, // guild_id: null
	{"ENTITLEMENT_DELETE", "ENTITLEMENT_DELETE", 62, ""}, // user entitlement: no guild_id
	{"GUILD_CREATE", "GUILD_CREATE", 2, testGuild},
	{"GUILD_CREATE.unavailable", "GUILD_CREATE", 3, otherGuild},
	{"GUILD_UPDATE", "GUILD_UPDATE", 70, testGuild},
	{"GUILD_DELETE", "GUILD_DELETE", 71, otherGuild},
	{"GUILD_DELETE.removed", "GUILD_DELETE", 72, oldestGuild},
	{"GUILD_AUDIT_LOG_ENTRY_CREATE", "GUILD_AUDIT_LOG_ENTRY_CREATE", 80, testGuild},
	{"GUILD_BAN_ADD", "GUILD_BAN_ADD", 81, testGuild},
	{"GUILD_BAN_REMOVE", "GUILD_BAN_REMOVE", 82, testGuild},
	{"GUILD_EMOJIS_UPDATE", "GUILD_EMOJIS_UPDATE", 83, testGuild},
	{"GUILD_STICKERS_UPDATE", "GUILD_STICKERS_UPDATE", 84, testGuild},
	{"GUILD_INTEGRATIONS_UPDATE", "GUILD_INTEGRATIONS_UPDATE", 85, testGuild},
	{"GUILD_MEMBER_ADD", "GUILD_MEMBER_ADD", 86, testGuild},
	{"GUILD_MEMBER_REMOVE", "GUILD_MEMBER_REMOVE", 87, testGuild},
	{"GUILD_MEMBER_UPDATE", "GUILD_MEMBER_UPDATE", 88, testGuild},
	{"GUILD_MEMBERS_CHUNK", "GUILD_MEMBERS_CHUNK", 89, testGuild},
	{"GUILD_ROLE_CREATE", "GUILD_ROLE_CREATE", 90, testGuild},
	{"GUILD_ROLE_UPDATE", "GUILD_ROLE_UPDATE", 91, testGuild},
	{"GUILD_ROLE_DELETE", "GUILD_ROLE_DELETE", 92, testGuild},
	{"GUILD_SCHEDULED_EVENT_CREATE", "GUILD_SCHEDULED_EVENT_CREATE", 93, testGuild},
	{"GUILD_SCHEDULED_EVENT_UPDATE", "GUILD_SCHEDULED_EVENT_UPDATE", 94, testGuild},
	{"GUILD_SCHEDULED_EVENT_DELETE", "GUILD_SCHEDULED_EVENT_DELETE", 95, otherGuild},
	{"GUILD_SCHEDULED_EVENT_USER_ADD", "GUILD_SCHEDULED_EVENT_USER_ADD", 96, testGuild},
	{"GUILD_SCHEDULED_EVENT_USER_REMOVE", "GUILD_SCHEDULED_EVENT_USER_REMOVE", 97, testGuild},
	{"GUILD_SOUNDBOARD_SOUND_CREATE", "GUILD_SOUNDBOARD_SOUND_CREATE", 98, testGuild},
	{"GUILD_SOUNDBOARD_SOUND_UPDATE", "GUILD_SOUNDBOARD_SOUND_UPDATE", 99, testGuild},
	{"GUILD_SOUNDBOARD_SOUND_DELETE", "GUILD_SOUNDBOARD_SOUND_DELETE", 100, testGuild},
	{"GUILD_SOUNDBOARD_SOUNDS_UPDATE", "GUILD_SOUNDBOARD_SOUNDS_UPDATE", 101, testGuild},
	{"SOUNDBOARD_SOUNDS", "SOUNDBOARD_SOUNDS", 102, otherGuild},
	{"INTEGRATION_CREATE", "INTEGRATION_CREATE", 110, testGuild},
	{"INTEGRATION_UPDATE", "INTEGRATION_UPDATE", 111, testGuild},
	{"INTEGRATION_DELETE", "INTEGRATION_DELETE", 112, testGuild},
	{"INTERACTION_CREATE", "INTERACTION_CREATE", 120, testGuild},
	{"INTERACTION_CREATE.dm", "INTERACTION_CREATE", 121, ""},
	{"INVITE_CREATE", "INVITE_CREATE", 130, testGuild},
	{"INVITE_DELETE", "INVITE_DELETE", 131, testGuild},
	{"MESSAGE_CREATE", "MESSAGE_CREATE", 42, testGuild},
	{"MESSAGE_CREATE.dm", "MESSAGE_CREATE", 43, ""},
	{"MESSAGE_CREATE.crosspost", "MESSAGE_CREATE", 44, testGuild}, // not message_reference.guild_id
	{"MESSAGE_UPDATE", "MESSAGE_UPDATE", 140, testGuild},
	{"MESSAGE_DELETE", "MESSAGE_DELETE", 141, testGuild},
	{"MESSAGE_DELETE.dm", "MESSAGE_DELETE", 142, ""},
	{"MESSAGE_DELETE_BULK", "MESSAGE_DELETE_BULK", 143, testGuild},
	{"MESSAGE_REACTION_ADD", "MESSAGE_REACTION_ADD", 144, testGuild},
	{"MESSAGE_REACTION_ADD.dm", "MESSAGE_REACTION_ADD", 145, ""},
	{"MESSAGE_REACTION_REMOVE", "MESSAGE_REACTION_REMOVE", 146, testGuild},
	{"MESSAGE_REACTION_REMOVE_ALL", "MESSAGE_REACTION_REMOVE_ALL", 147, testGuild},
	{"MESSAGE_REACTION_REMOVE_EMOJI", "MESSAGE_REACTION_REMOVE_EMOJI", 148, testGuild},
	{"MESSAGE_POLL_VOTE_ADD", "MESSAGE_POLL_VOTE_ADD", 149, testGuild},
	{"MESSAGE_POLL_VOTE_REMOVE", "MESSAGE_POLL_VOTE_REMOVE", 150, testGuild},
	{"PRESENCE_UPDATE", "PRESENCE_UPDATE", 160, testGuild},
	{"STAGE_INSTANCE_CREATE", "STAGE_INSTANCE_CREATE", 170, testGuild},
	{"STAGE_INSTANCE_UPDATE", "STAGE_INSTANCE_UPDATE", 171, testGuild},
	{"STAGE_INSTANCE_DELETE", "STAGE_INSTANCE_DELETE", 172, testGuild},
	{"SUBSCRIPTION_CREATE", "SUBSCRIPTION_CREATE", 180, ""},
	{"SUBSCRIPTION_UPDATE", "SUBSCRIPTION_UPDATE", 181, ""},
	{"SUBSCRIPTION_DELETE", "SUBSCRIPTION_DELETE", 182, ""},
	{"TYPING_START", "TYPING_START", 190, testGuild},
	{"TYPING_START.dm", "TYPING_START", 191, ""},
	{"USER_UPDATE", "USER_UPDATE", 200, ""},
	{"VOICE_CHANNEL_EFFECT_SEND", "VOICE_CHANNEL_EFFECT_SEND", 210, testGuild},
	{"VOICE_STATE_UPDATE", "VOICE_STATE_UPDATE", 211, testGuild},
	{"VOICE_SERVER_UPDATE", "VOICE_SERVER_UPDATE", 212, oldestGuild},
	{"WEBHOOKS_UPDATE", "WEBHOOKS_UPDATE", 220, testGuild},
	// An event type Discord does not document: the default location applies.
	{"UNDOCUMENTED_FUTURE_EVENT", "VOICE_CHANNEL_STATUS_UPDATE", 230, testGuild},
}

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "dispatch", name+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

func TestParseFixtures(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			got, err := Parse(readFixture(t, fx.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Dispatch{Type: fx.typ, Sequence: fx.seq, HasSequence: true, GuildID: fx.guild}
			if got != want {
				t.Errorf("Parse = %+v, want %+v", got, want)
			}
		})
	}
}

// TestFixturesCoverEveryEvent keeps the fixtures and the event table in step: every
// documented event has a fixture, and every fixture file is checked above.
func TestFixturesCoverEveryEvent(t *testing.T) {
	covered := map[string]bool{}
	listed := map[string]bool{}
	for _, fx := range fixtures {
		covered[fx.typ] = true
		listed[fx.file+".json"] = true
	}
	for name := range guildLocations {
		if !covered[name] {
			t.Errorf("event %s has no fixture in testdata/dispatch", name)
		}
	}
	files, err := filepath.Glob(filepath.Join("testdata", "dispatch", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("fixture %s is not in the fixtures table", f)
		}
	}
	if len(guildLocations) < 75 {
		t.Errorf("event table has %d entries; Discord documents more than 75 dispatch events", len(guildLocations))
	}
}

// member is one top-level member of a payload, raw bytes kept.
type member struct {
	key   string
	value json.RawMessage
}

func topLevelMembers(tb testing.TB, body []byte) []member {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		tb.Fatal(err)
	}
	var ms []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			tb.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			tb.Fatal(err)
		}
		ms = append(ms, member{tok.(string), raw})
	}
	return ms
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

// TestParseEveryKeyOrder re-assembles every fixture with its top-level members in every order
// (d before t, t last, ...) and different spacing: the result must not change.
func TestParseEveryKeyOrder(t *testing.T) {
	for _, fx := range fixtures {
		body := readFixture(t, fx.file)
		want, err := Parse(body)
		if err != nil {
			t.Fatalf("%s: %v", fx.file, err)
		}
		ms := topLevelMembers(t, body)
		for _, order := range permutations(len(ms)) {
			var b bytes.Buffer
			b.WriteString("\n{ ")
			for i, idx := range order {
				if i > 0 {
					b.WriteString(" ,\n\t")
				}
				key, _ := json.Marshal(ms[idx].key)
				b.Write(key)
				b.WriteString(" : ")
				b.Write(ms[idx].value)
			}
			b.WriteString("\r\n}\n")
			got, err := Parse(b.Bytes())
			if err != nil || got != want {
				t.Errorf("%s in order %v: got %+v, %v; want %+v", fx.file, order, got, err, want)
			}
		}
	}
}

// TestParseTruncated cuts every fixture at every byte: each prefix is incomplete JSON.
func TestParseTruncated(t *testing.T) {
	for _, fx := range fixtures {
		body := bytes.TrimRight(readFixture(t, fx.file), " \t\r\n")
		for n := range len(body) {
			if _, err := Parse(body[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s cut at %d of %d: err = %v, want ErrMalformed", fx.file, n, len(body), err)
			}
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Dispatch
		err  error
	}{
		// Not a payload at all.
		{"empty", ``, Dispatch{}, ErrMalformed},
		{"spaces", " \n\t", Dispatch{}, ErrMalformed},
		{"text", `hello`, Dispatch{}, ErrMalformed},
		{"array", `[{"op":0,"t":"READY","d":{}}]`, Dispatch{}, ErrMalformed},
		{"string", `"op"`, Dispatch{}, ErrMalformed},
		{"null", `null`, Dispatch{}, ErrMalformed},
		{"trailing data", `{"op":0,"t":"READY","d":{}} x`, Dispatch{}, ErrMalformed},
		{"two objects", `{"op":0,"t":"READY","d":{}}{}`, Dispatch{}, ErrMalformed},
		{"single quotes", `{'op':0}`, Dispatch{}, ErrMalformed},
		{"trailing comma", `{"op":0,"t":"READY",}`, Dispatch{}, ErrMalformed},
		{"missing colon", `{"op" 0}`, Dispatch{}, ErrMalformed},
		{"unquoted key", `{op:0}`, Dispatch{}, ErrMalformed},
		{"bad literal", `{"op":0,"t":"READY","x":nul}`, Dispatch{}, ErrMalformed},
		{"bad number", `{"op":0,"t":"READY","x":01}`, Dispatch{}, ErrMalformed},
		{"bad number dot", `{"op":0,"t":"READY","x":1.}`, Dispatch{}, ErrMalformed},
		{"bad number exp", `{"op":0,"t":"READY","x":1e}`, Dispatch{}, ErrMalformed},
		{"plus number", `{"op":0,"t":"READY","x":+1}`, Dispatch{}, ErrMalformed},
		{"mismatched brackets", `{"op":0,"t":"READY","d":{"a":[1,2}]}`, Dispatch{}, ErrMalformed},
		{"invalid escape in skipped value", `{"op":0,"t":"READY","d":{"a":"\x"}}`, Dispatch{}, ErrMalformed},
		{"short unicode escape", `{"op":0,"t":"READY","d":{"a":"\u12G4"}}`, Dispatch{}, ErrMalformed},
		{"raw newline in string", "{\"op\":0,\"t\":\"READY\",\"d\":{\"a\":\"line\nbreak\"}}", Dispatch{}, ErrMalformed},
		{"missing value", `{"op":0,"t":"READY","d":{"a":}}`, Dispatch{}, ErrMalformed},

		// Not a dispatch.
		{"heartbeat ack", `{"t":null,"s":null,"op":11,"d":null}`, Dispatch{}, ErrNotDispatch},
		{"hello", `{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["[\"gateway-prd\"]"]}}`, Dispatch{}, ErrNotDispatch},
		{"heartbeat", `{"op":1,"d":251}`, Dispatch{}, ErrNotDispatch},
		{"reconnect", `{"t":null,"s":null,"op":7,"d":null}`, Dispatch{}, ErrNotDispatch},
		{"invalid session", `{"t":null,"s":null,"op":9,"d":false}`, Dispatch{}, ErrNotDispatch},
		{"op 1 with a t", `{"t":"MESSAGE_CREATE","s":3,"op":1,"d":{"guild_id":"x"}}`, Dispatch{}, ErrNotDispatch},
		{"negative op", `{"op":-1,"t":"READY","d":{}}`, Dispatch{}, ErrNotDispatch},
		{"missing t", `{"op":0,"s":4,"d":{"guild_id":"1081240586043576360"}}`, Dispatch{}, ErrNotDispatch},
		{"null t", `{"op":0,"s":4,"t":null,"d":{}}`, Dispatch{}, ErrNotDispatch},
		{"empty t", `{"op":0,"s":4,"t":"","d":{}}`, Dispatch{}, ErrNotDispatch},

		// Wrong shapes.
		{"missing op", `{"t":"READY","s":1,"d":{}}`, Dispatch{}, ErrMalformed},
		{"string op", `{"op":"0","t":"READY","d":{}}`, Dispatch{}, ErrMalformed},
		{"null op", `{"op":null,"t":"READY","d":{}}`, Dispatch{}, ErrMalformed},
		{"float op", `{"op":0.0,"t":"READY","d":{}}`, Dispatch{}, ErrMalformed},
		{"exponent op", `{"op":0e0,"t":"READY","d":{}}`, Dispatch{}, ErrMalformed},
		{"huge op", `{"op":99999999999999999999,"t":"READY","d":{}}`, Dispatch{}, ErrMalformed},
		{"number t", `{"op":0,"t":42,"d":{}}`, Dispatch{}, ErrMalformed},
		{"object t", `{"op":0,"t":{"name":"READY"},"d":{}}`, Dispatch{}, ErrMalformed},
		{"long t", `{"op":0,"t":"` + strings.Repeat("X", MaxEventTypeBytes+1) + `","d":{}}`, Dispatch{}, ErrMalformed},
		{"long escaped t", `{"op":0,"t":"` + strings.Repeat(`\u0058`, MaxEventTypeBytes+1) + `","d":{}}`, Dispatch{}, ErrMalformed},
		{"string s", `{"op":0,"t":"READY","s":"1","d":{}}`, Dispatch{}, ErrMalformed},
		{"float s", `{"op":0,"t":"READY","s":1.5,"d":{}}`, Dispatch{}, ErrMalformed},
		{"overflowing s", `{"op":0,"t":"READY","s":9223372036854775808,"d":{}}`, Dispatch{}, ErrMalformed},
		{"array d", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":[]}`, Dispatch{}, ErrMalformed},
		{"string d", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":"guild_id"}`, Dispatch{}, ErrMalformed},
		{"array d for guild-less event", `{"op":0,"t":"READY","s":1,"d":[]}`, Dispatch{}, ErrMalformed},
		{"duplicate op", `{"op":0,"op":1,"t":"READY","d":{}}`, Dispatch{}, ErrMalformed},
		{"duplicate op, one escaped", `{"op":0,"\u006fp":1,"t":"READY","d":{}}`, Dispatch{}, ErrMalformed},
		{"escaped key longer than any member", `{"op":0,"\u0074\u0074\u0074":1,"t":"READY","d":{}}`, Dispatch{Type: "READY"}, nil},
		{"duplicate t", `{"op":0,"t":"READY","t":"MESSAGE_CREATE","d":{}}`, Dispatch{}, ErrMalformed},
		{"duplicate s", `{"op":0,"t":"READY","s":1,"s":2,"d":{}}`, Dispatch{}, ErrMalformed},
		{"duplicate d", `{"op":0,"t":"MESSAGE_CREATE","d":{},"d":{"guild_id":"1081240586043576360"}}`, Dispatch{}, ErrMalformed},
		{"duplicate guild_id", `{"op":0,"t":"MESSAGE_CREATE","d":{"guild_id":"1081240586043576360","guild_id":"613425648685547541"}}`, Dispatch{}, ErrMalformed},
		{"duplicate guild_id, d first", `{"op":0,"d":{"guild_id":"1081240586043576360","guild_id":null},"t":"MESSAGE_CREATE"}`, Dispatch{}, ErrMalformed},
		{"duplicate id in GUILD_UPDATE", `{"op":0,"t":"GUILD_UPDATE","d":{"id":"1081240586043576360","name":"x","id":"613425648685547541"}}`, Dispatch{}, ErrMalformed},
		{"duplicate meta", `{"op":0,"t":"RATE_LIMITED","d":{"meta":{},"meta":{"guild_id":"1081240586043576360"}}}`, Dispatch{}, ErrMalformed},
		{"meta not an object", `{"op":0,"t":"RATE_LIMITED","d":{"opcode":8,"meta":[]}}`, Dispatch{}, ErrMalformed},

		// Guild ids.
		{"guild_id null", `{"op":0,"t":"MESSAGE_CREATE","s":5,"d":{"guild_id":null,"content":"x"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 5, HasSequence: true}, nil},
		{"guild_id null, d first", `{"d":{"content":"x","guild_id":null},"s":5,"op":0,"t":"MESSAGE_CREATE"}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 5, HasSequence: true}, nil},
		{"d null", `{"op":0,"t":"MESSAGE_CREATE","s":5,"d":null}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 5, HasSequence: true}, nil},
		{"d missing", `{"op":0,"t":"MESSAGE_CREATE","s":5}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 5, HasSequence: true}, nil},
		{"meta null", `{"op":0,"t":"RATE_LIMITED","s":5,"d":{"opcode":8,"meta":null}}`, Dispatch{Type: "RATE_LIMITED", Sequence: 5, HasSequence: true}, nil},
		{"s null", `{"op":0,"t":"READY","s":null,"d":{}}`, Dispatch{Type: "READY"}, nil},
		{"s missing", `{"op":0,"t":"READY","d":{}}`, Dispatch{Type: "READY"}, nil},
		{"guild-less event ignores guild_id", `{"op":0,"t":"USER_UPDATE","s":1,"d":{"guild_id":"not a snowflake"}}`, Dispatch{Type: "USER_UPDATE", Sequence: 1, HasSequence: true}, nil},
		{"escaped key and value", `{"\u006fp":0,"\u0074":"MESSAGE\u005fCREATE","s":6,"d":{"guild\u005fid":"\u0031081240586043576360"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 6, HasSequence: true, GuildID: testGuild}, nil},
		{"nested guild_id ignored", `{"op":0,"t":"MESSAGE_CREATE","s":7,"d":{"message_reference":{"guild_id":"613425648685547541"},"author":{"guild_id":"41771983423143937"}}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 7, HasSequence: true}, nil},
		{"guild_id inside skipped string", `{"op":0,"t":"MESSAGE_CREATE","s":8,"d":{"content":"\\\",\"guild_id\":\"613425648685547541\",\"x\":\"\\","guild_id":"1081240586043576360"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 8, HasSequence: true, GuildID: testGuild}, nil},
		{"guild_id inside skipped key", `{"op":0,"t":"MESSAGE_CREATE","s":8,"d":{"\"guild_id\"":"613425648685547541","guild_id ":"613425648685547541"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 8, HasSequence: true}, nil},
		{"case matters", `{"op":0,"t":"MESSAGE_CREATE","s":8,"d":{"Guild_ID":"613425648685547541"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 8, HasSequence: true}, nil},
		{"unknown event type", `{"op":0,"t":"GUILD_JOIN_REQUEST_UPDATE","s":9,"d":{"status":"APPROVED","guild_id":"613425648685547541","request":{"guild_id":"1"}}}`, Dispatch{Type: "GUILD_JOIN_REQUEST_UPDATE", Sequence: 9, HasSequence: true, GuildID: otherGuild}, nil},
		{"max uint64 snowflake", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":"18446744073709551615"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true, GuildID: "18446744073709551615"}, nil},
		{"negative s", `{"op":0,"t":"READY","s":-9223372036854775808,"d":{}}`, Dispatch{Type: "READY", Sequence: -1 << 63, HasSequence: true}, nil},

		{"number guild_id", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":1081240586043576360}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"number id in GUILD_CREATE", `{"op":0,"t":"GUILD_CREATE","s":1,"d":{"id":1081240586043576360}}`, Dispatch{Type: "GUILD_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"bool guild_id", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":true}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"object guild_id", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":{"id":"1081240586043576360"}}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"array guild_id", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":["1081240586043576360"]}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"empty guild_id", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":""}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"short guild_id", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":"1234567890123456"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"long guild_id", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":"108124058604357636000"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"guild_id over uint64", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":"18446744073709551616"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"guild_id with leading zero", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":"01081240586043576360"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"negative guild_id", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":"-1081240586043576360"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"guild_id with letters", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":"10812405860435763a0"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"guild_id with spaces", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":" 1081240586043576360"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"guild_id with escaped NUL", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":"1081240586043576360\u0000"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"guild_id with fullwidth digit", `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":"108124058604357636１"}}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"invalid guild id, d first", `{"d":{"guild_id":"nope"},"op":0,"s":1,"t":"MESSAGE_CREATE"}`, Dispatch{Type: "MESSAGE_CREATE", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
		{"invalid guild id in meta", `{"op":0,"t":"RATE_LIMITED","s":1,"d":{"meta":{"guild_id":"12"}}}`, Dispatch{Type: "RATE_LIMITED", Sequence: 1, HasSequence: true}, ErrInvalidGuildID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body))
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("Parse error = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "1081240586043576360") {
				t.Errorf("error %q quotes the payload", err)
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	head := `{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"guild_id":"1081240586043576360","content":"`
	tail := `"}}`
	exact := head + strings.Repeat("a", MaxBodyBytes-len(head)-len(tail)) + tail
	got, err := Parse([]byte(exact))
	if err != nil || got.GuildID != testGuild {
		t.Fatalf("body of exactly MaxBodyBytes: got %+v, %v", got, err)
	}
	over := head + strings.Repeat("a", MaxBodyBytes-len(head)-len(tail)+1) + tail
	if _, err := Parse([]byte(over)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("body of MaxBodyBytes+1: err = %v, want ErrTooLarge", err)
	}
}

// TestParseNesting checks the depth limit is encoding/json's, so both accept the same bodies,
// and that deep nesting costs no recursion.
func TestParseNesting(t *testing.T) {
	nested := func(depth int) []byte {
		// The payload object and d are two levels; the rest is an array tower inside d.
		inner := depth - 2
		return []byte(`{"op":0,"t":"MESSAGE_CREATE","d":{"x":` + strings.Repeat("[", inner) + strings.Repeat("]", inner) + `,"guild_id":"1081240586043576360"}}`)
	}
	for _, depth := range []int{maxNestingDepth, maxNestingDepth + 1} {
		body := nested(depth)
		_, err := Parse(body)
		if valid := json.Valid(body); valid != (err == nil) {
			t.Errorf("depth %d: json.Valid = %v, Parse error = %v", depth, valid, err)
		}
	}
	if _, err := Parse(nested(maxNestingDepth + 1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("depth %d: err = %v, want ErrMalformed", maxNestingDepth+1, err)
	}
}

func TestParseErrorsWrapWithReason(t *testing.T) {
	_, err := Parse([]byte(`{"op":0,"t":"READY","d":{"content":"secret`))
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, ErrMalformed.Error()+": ") || strings.Contains(msg, "secret") {
		t.Errorf("error message %q: want the sentinel, a reason, and no payload", msg)
	}
	for _, sentinel := range []error{ErrNotDispatch, ErrTooLarge, ErrInvalidGuildID} {
		if errors.Is(err, sentinel) {
			t.Errorf("malformed error also matches %v", sentinel)
		}
	}
}

// TestParseAllocations pins the allocation budget the router relies on: none for guild-less
// events, one (the guild id string) for guild events, whatever the payload size.
func TestParseAllocations(t *testing.T) {
	for _, tc := range []struct {
		file  string
		allow float64
	}{
		{"MESSAGE_CREATE", 1},
		{"GUILD_CREATE", 1},
		{"THREAD_LIST_SYNC", 1}, // d before t: two passes, same budget
		{"READY", 0},
		{"MESSAGE_CREATE.dm", 0},
	} {
		body := readFixture(t, tc.file)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := Parse(body); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > tc.allow {
			t.Errorf("%s: %v allocations per Parse, want at most %v", tc.file, allocs, tc.allow)
		}
	}
}
