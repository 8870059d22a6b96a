package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// One member, presence and channel of a GUILD_CREATE, laid out as the gateway sends them;
// each verb takes a JSON value (jsonValue).
const (
	memberJSON = `{"user":{"username":%s,"public_flags":0,"id":%s,"global_name":%s,"discriminator":"0",` +
		`"avatar":"8342729096ea3675442027381ff50dfe"},"roles":["1081240586043576361","1081240586043576362"],` +
		`"premium_since":null,"pending":false,"nick":%s,"mute":false,"joined_at":"2023-03-03T10:00:00.000000+00:00",` +
		`"flags":0,"deaf":false,"communication_disabled_until":null,"avatar":null}`
	presenceJSON = `{"user":{"id":%s},"status":"online","client_status":{"desktop":"online"},` +
		`"activities":[{"type":4,"state":%s,"name":"Custom Status","id":"custom","created_at":1716991200000}]}`
	channelJSON = `{"version":%s,"type":%s,"topic":%s,"rate_limit_per_user":0,"position":%s,` +
		`"permission_overwrites":[{"type":0,"id":"1081240586043576360","deny":"1024","allow":"0"}],` +
		`"parent_id":"1081240586957934661","nsfw":false,"name":%s,"last_message_id":%s,"id":%s,"flags":0}`
)

// jsonValue is v encoded as encoding/json does (with its HTML escapes: < is \u003c).
func jsonValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// largeGuildCreate builds a GUILD_CREATE of about 200 KiB with the guild id after every large
// array, as the gateway may order it; dFirst puts d before t, which forces a second pass.
func largeGuildCreate(tb testing.TB, dFirst bool) []byte {
	tb.Helper()
	nicks := []string{`Nelly "QA" Ops`, `back\slash`, "Zoë ✓ <admin>", "🤖 bot & co", "plain"}

	var members, presences, channels []string
	size := 0
	for i := range 40 {
		topic := fmt.Sprintf("Channel %d — \"rules\" \\ links: https://example.com/?a=1&b=2", i)
		channels = append(channels, fmt.Sprintf(channelJSON, jsonValue(1716991200000+i), jsonValue(i%3), jsonValue(topic),
			jsonValue(i), jsonValue(fmt.Sprintf("channel-%d", i)), jsonValue(fmt.Sprintf("11124098765432%05d", i)),
			jsonValue(fmt.Sprintf("10812405869579%05d", i))))
		size += len(channels[i])
	}
	for i := 0; size <= 195*1024; i++ {
		id, nick := jsonValue(fmt.Sprintf("80351110224%08d", i)), nicks[i%len(nicks)]
		members = append(members, fmt.Sprintf(memberJSON, jsonValue(fmt.Sprintf("user%d", i)), id, jsonValue(nick), jsonValue(nick)))
		presences = append(presences, fmt.Sprintf(presenceJSON, id, jsonValue("testing "+nick)))
		size += len(members[i]) + len(presences[i])
	}
	m, p, c := "["+strings.Join(members, ",")+"]", "["+strings.Join(presences, ",")+"]", "["+strings.Join(channels, ",")+"]"
	d := `{"members":` + m + `,"channels":` + c + `,"presences":` + p +
		`,"name":"Sandbox Test Guild","member_count":` + fmt.Sprint(len(members)) +
		`,"large":true,"id":"1081240586043576360","features":["COMMUNITY"]}`
	var body string
	if dFirst {
		body = `{"op":0,"d":` + d + `,"s":2,"t":"GUILD_CREATE"}`
	} else {
		body = `{"t":"GUILD_CREATE","s":2,"op":0,"d":` + d + `}`
	}
	if n := len(body); n < 190*1024 || n > MaxBodyBytes {
		tb.Fatalf("generated GUILD_CREATE is %d bytes, want about 200 KiB", n)
	}
	if !strings.Contains(body, `\"QA\"`) || !strings.Contains(body, `\\slash`) || !strings.Contains(body, `\u003c`) {
		tb.Fatal("generated GUILD_CREATE lacks the escapes it is meant to exercise")
	}
	return []byte(body)
}

func TestLargeGuildCreate(t *testing.T) {
	for _, dFirst := range []bool{false, true} {
		body := largeGuildCreate(t, dFirst)
		got, err := Parse(body)
		if err != nil || got.GuildID != testGuild || got.Type != "GUILD_CREATE" {
			t.Errorf("dFirst=%v: got %+v, %v", dFirst, got, err)
		}
		checkAgainstReference(t, body)
	}
}

// parseWithEncodingJSON is the baseline: what the router would do with encoding/json alone,
// the envelope into a struct with d kept raw, then d decoded for its guild field.
func parseWithEncodingJSON(body []byte) (Dispatch, error) {
	var env struct {
		Op int             `json:"op"`
		T  string          `json:"t"`
		S  *int64          `json:"s"`
		D  json.RawMessage `json:"d"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return Dispatch{}, err
	}
	d := Dispatch{Type: env.T}
	if env.S != nil {
		d.Sequence, d.HasSequence = *env.S, true
	}
	var fields struct {
		GuildID string `json:"guild_id"`
		ID      string `json:"id"`
	}
	if err := json.Unmarshal(env.D, &fields); err != nil {
		return Dispatch{}, err
	}
	d.GuildID = fields.GuildID
	if strings.HasPrefix(env.T, "GUILD_") && fields.GuildID == "" {
		d.GuildID = fields.ID
	}
	return d, nil
}

func BenchmarkParse(b *testing.B) {
	inputs := []struct {
		name string
		body []byte
	}{
		{"MESSAGE_CREATE", readFixture(b, "MESSAGE_CREATE")},
		{"GUILD_CREATE_200KiB", largeGuildCreate(b, false)},
		{"GUILD_CREATE_200KiB_d_first", largeGuildCreate(b, true)},
	}
	parsers := []struct {
		name  string
		parse func([]byte) (Dispatch, error)
	}{
		{"scanner", Parse},
		{"encoding_json", parseWithEncodingJSON},
	}
	for _, in := range inputs {
		want, err := Parse(in.body)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range parsers {
			b.Run(in.name+"/"+p.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(in.body)))
				for b.Loop() {
					got, err := p.parse(in.body)
					if err != nil || got != want {
						b.Fatalf("got %+v, %v; want %+v", got, err, want)
					}
				}
			})
		}
	}
}

func BenchmarkSkipLargeStrings(b *testing.B) {
	// Long string values dominate big payloads (message content, embeds, topics).
	content := bytes.Repeat([]byte(`lorem ipsum \"quoted\" \\ dolor sit amet `), 4000)
	body := []byte(`{"t":"MESSAGE_CREATE","s":1,"op":0,"d":{"content":"` + string(content) + `","guild_id":"1081240586043576360"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}
