package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// largeGuildCreate builds a GUILD_CREATE of about 200 KiB with the guild id after every large
// array, as the gateway may order it; dFirst puts d before t, which forces a second pass.
func largeGuildCreate(tb testing.TB, dFirst bool) []byte {
	tb.Helper()
	type user struct {
		Username      string  `json:"username"`
		PublicFlags   int     `json:"public_flags"`
		ID            string  `json:"id"`
		GlobalName    *string `json:"global_name"`
		Discriminator string  `json:"discriminator"`
		Bot           bool    `json:"bot,omitempty"`
		Avatar        *string `json:"avatar"`
	}
	type guildMember struct {
		User                       user     `json:"user"`
		Roles                      []string `json:"roles"`
		PremiumSince               *string  `json:"premium_since"`
		Pending                    bool     `json:"pending"`
		Nick                       *string  `json:"nick"`
		Mute                       bool     `json:"mute"`
		JoinedAt                   string   `json:"joined_at"`
		Flags                      int      `json:"flags"`
		Deaf                       bool     `json:"deaf"`
		CommunicationDisabledUntil *string  `json:"communication_disabled_until"`
		Avatar                     *string  `json:"avatar"`
	}
	type activity struct {
		Type      int    `json:"type"`
		State     string `json:"state,omitempty"`
		Name      string `json:"name"`
		ID        string `json:"id"`
		CreatedAt int64  `json:"created_at"`
	}
	type presence struct {
		User         struct{ ID string } `json:"user"`
		Status       string              `json:"status"`
		ClientStatus map[string]string   `json:"client_status"`
		Activities   []activity          `json:"activities"`
	}
	type channel struct {
		Version              int64    `json:"version"`
		Type                 int      `json:"type"`
		Topic                *string  `json:"topic"`
		RateLimitPerUser     int      `json:"rate_limit_per_user"`
		Position             int      `json:"position"`
		PermissionOverwrites []any    `json:"permission_overwrites"`
		ParentID             *string  `json:"parent_id"`
		NSFW                 bool     `json:"nsfw"`
		Name                 string   `json:"name"`
		LastMessageID        *string  `json:"last_message_id"`
		ID                   string   `json:"id"`
		Flags                int      `json:"flags"`
		AppliedTags          []string `json:"applied_tags,omitempty"`
	}
	str := func(s string) *string { return &s }
	nicks := []string{`Nelly "QA" Ops`, `back\slash`, "Zoë ✓ <admin>", "🤖 bot & co", "plain"}

	var members []guildMember
	var presences []presence
	var channels []channel
	for i := range 40 {
		topic := fmt.Sprintf("Channel %d — \"rules\" \\ links: https://example.com/?a=1&b=2", i)
		channels = append(channels, channel{
			Version: 1716991200000 + int64(i), Type: i % 3, Topic: &topic, Position: i,
			PermissionOverwrites: []any{map[string]any{"type": 0, "id": "1081240586043576360", "deny": "1024", "allow": "0"}},
			ParentID:             str("1081240586957934661"), Name: fmt.Sprintf("channel-%d", i),
			LastMessageID: str(fmt.Sprintf("11124098765432%05d", i)), ID: fmt.Sprintf("10812405869579%05d", i),
		})
	}
	size := func() int {
		b, _ := json.Marshal([]any{members, presences, channels})
		return len(b)
	}
	for i := 0; ; i++ {
		id := fmt.Sprintf("80351110224%08d", i)
		nick := nicks[i%len(nicks)]
		members = append(members, guildMember{
			User:     user{Username: fmt.Sprintf("user%d", i), ID: id, GlobalName: str(nick), Discriminator: "0", Avatar: str("8342729096ea3675442027381ff50dfe")},
			Roles:    []string{"1081240586043576361", "1081240586043576362"},
			Nick:     str(nick),
			JoinedAt: "2023-03-03T10:00:00.000000+00:00",
		})
		p := presence{Status: "online", ClientStatus: map[string]string{"desktop": "online"},
			Activities: []activity{{Type: 4, State: "testing " + nick, Name: "Custom Status", ID: "custom", CreatedAt: 1716991200000}}}
		p.User.ID = id
		presences = append(presences, p)
		if i%50 == 0 && size() > 195*1024 {
			break
		}
	}
	m, _ := json.Marshal(members)
	p, _ := json.Marshal(presences)
	c, _ := json.Marshal(channels)
	d := `{"members":` + string(m) + `,"channels":` + string(c) + `,"presences":` + string(p) +
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
