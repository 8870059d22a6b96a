package api_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// FuzzDecodeCreateRequest checks that create bodies either decode into input the control
// plane accepts, or are refused as invalid_input with a bounded, caller-safe message; and
// that an accepted request means the same when encoded and decoded again. The seed corpus is
// testdata/fuzz/FuzzDecodeCreateRequest.
func FuzzDecodeCreateRequest(f *testing.F) {
	f.Add([]byte(`{"name":"alpha","ttl":"2h","guilds":["80351110224678912"],"metadata":{"k":"v"}}`))
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
		req := api.CreateRequest{Name: in.Name, Guilds: in.Guilds, Metadata: in.Metadata}
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
