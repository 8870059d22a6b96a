package sandbox

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"abc", "my-sandbox", "a1-2-3", "a" + strings.Repeat("b", 31)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "ab", "1abc", "-abc", "Abc", "ab_c", "a b c", "a" + strings.Repeat("b", 32), "abc\n", "äbc"} {
		err := ValidateName(bad)
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ValidateName(%q) = %v, want invalid_input", bad, err)
		}
	}
}

func TestValidGuildID(t *testing.T) {
	for _, ok := range []string{"80351110224678912", "18446744073709551615", "12345678901234567"} {
		if !ValidGuildID(ok) {
			t.Errorf("ValidGuildID(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "1234567890123456", "18446744073709551616", "123456789012345678901", "8035111022467891a", " 80351110224678912", "08035111022467891"} {
		if ValidGuildID(bad) {
			t.Errorf("ValidGuildID(%q) = true", bad)
		}
	}
}

func TestNormalizeGuilds(t *testing.T) {
	l := DefaultLimits()
	got, err := l.NormalizeGuilds([]string{"80351110224678913", "80351110224678912", "80351110224678913"})
	if err != nil || len(got) != 2 || got[0] != "80351110224678912" {
		t.Fatalf("got %v, %v", got, err)
	}
	l.MaxGuilds = 1
	if _, err := l.NormalizeGuilds([]string{"80351110224678913", "80351110224678912"}); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("over MaxGuilds: %v", err)
	}
	if _, err := l.NormalizeGuilds([]string{"x"}); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("bad id: %v", err)
	}
}

func TestResolveTTL(t *testing.T) {
	l := DefaultLimits()
	cases := []struct {
		in   time.Duration
		want time.Duration
		ok   bool
	}{
		{0, 24 * time.Hour, true},
		{time.Hour, time.Hour, true},
		{168 * time.Hour, 168 * time.Hour, true},
		{168*time.Hour + time.Second, 0, false},
		{time.Minute, 0, false},
		{-time.Hour, 0, false},
	}
	for _, c := range cases {
		got, err := l.ResolveTTL(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ResolveTTL(%s) = %s, %v", c.in, got, err)
		}
	}
}

func TestExtendedExpiry(t *testing.T) {
	l := DefaultLimits()
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	exp := created.Add(24 * time.Hour)
	got, capped, err := l.ExtendedExpiry(created, exp, 12*time.Hour)
	if err != nil || capped || !got.Equal(exp.Add(12*time.Hour)) {
		t.Fatalf("plain extend: %s %v %v", got, capped, err)
	}
	got, capped, err = l.ExtendedExpiry(created, exp, 160*time.Hour)
	if err != nil || !capped || !got.Equal(created.Add(168*time.Hour)) {
		t.Fatalf("capped extend: %s %v %v", got, capped, err)
	}
	// Longer than the whole lifetime: capped, not refused.
	got, capped, err = l.ExtendedExpiry(created, exp, 30*24*time.Hour)
	if err != nil || !capped || !got.Equal(created.Add(168*time.Hour)) {
		t.Fatalf("extend by 30d: %s %v %v", got, capped, err)
	}
	// Exactly to the cap: not capped.
	got, capped, err = l.ExtendedExpiry(created, exp, 144*time.Hour)
	if err != nil || capped || !got.Equal(created.Add(168*time.Hour)) {
		t.Fatalf("extend to the cap: %s %v %v", got, capped, err)
	}
	if _, _, err := l.ExtendedExpiry(created, created.Add(168*time.Hour), time.Hour); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("at cap: %v", err)
	}
	if _, _, err := l.ExtendedExpiry(created, created.Add(168*time.Hour), 1<<62); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("at cap, by the longest duration: %v", err)
	}
	if _, _, err := l.ExtendedExpiry(created, exp, time.Second); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("too short: %v", err)
	}
}

func TestValidateOwner(t *testing.T) {
	for _, ok := range []string{"alice", "arn:aws:sts::123456789012:assumed-role/Developer/zoë@example.com"} {
		if err := ValidateOwner(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("a", 513), "a\nb", "a\x7fb", "a\u009bb", "\xff"} {
		if err := ValidateOwner(bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%q: %v, want invalid input", bad, err)
		}
	}
}

func TestValidateMetadata(t *testing.T) {
	l := DefaultLimits()
	if err := l.ValidateMetadata(map[string]string{"team": "bots", "ticket": "BOT-1", "owner": "Zoë 👩‍💻"}); err != nil {
		t.Fatal(err)
	}
	big := map[string]string{}
	for i := 0; i < 20; i++ {
		big[strings.Repeat("k", 60)+string(rune('a'+i))] = strings.Repeat("v", 250)
	}
	for name, md := range map[string]map[string]string{
		"too big":   big,
		"empty key": {"": "x"},
		"long key":  {strings.Repeat("k", 65): "x"},
		"long val":  {"k": strings.Repeat("v", 257)},
		"ctrl key":  {"a\nb": "x"},
		"nul value": {"k": "a\x00b"},
		// Escape sequences that would drive the terminal of whoever reads the metadata.
		"osc 52 value":  {"k": "\x1b]52;c;ZWNobyBwd25lZA==\x07"},
		"newline value": {"k": "a\nb"},
		"del value":     {"k": "a\x7fb"},
		"c1 csi value":  {"k": "\u009b2J"},
		"c1 csi key":    {"a\u009bb": "x"},
	} {
		if err := l.ValidateMetadata(md); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := NewID()
		if !ValidID(id) || id[0] < 'a' || id[0] > 'z' {
			t.Fatalf("invalid id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	if SchemaName("abc123def456gh") != "sb_abc123def456gh" || RoleName("abc123def456gh") != "sb_abc123def456gh" {
		t.Fatal("resource names changed")
	}
}

func TestStatusMachine(t *testing.T) {
	legal := map[[2]Status]bool{
		{StatusCreating, StatusRunning}:     true,
		{StatusCreating, StatusFailed}:      true,
		{StatusCreating, StatusDestroying}:  true,
		{StatusRunning, StatusDestroying}:   true,
		{StatusFailed, StatusDestroying}:    true,
		{StatusDestroying, StatusDestroyed}: true,
	}
	for _, from := range Statuses() {
		for _, to := range Statuses() {
			if got := CanTransition(from, to); got != legal[[2]Status{from, to}] {
				t.Errorf("CanTransition(%s, %s) = %v", from, to, got)
			}
		}
	}
	if got := Sources(StatusDestroying); len(got) != 3 {
		t.Errorf("Sources(destroying) = %v", got)
	}
	now := time.Now()
	if DisplayStatus(StatusRunning, now.Add(-time.Second), now) != DisplayExpired {
		t.Error("running past expiry must display expired")
	}
	if DisplayStatus(StatusRunning, now.Add(time.Second), now) != "running" {
		t.Error("running before expiry must display running")
	}
	if DisplayStatus(StatusDestroying, now.Add(-time.Second), now) != "destroying" {
		t.Error("only running sandboxes display expired")
	}
	if Status("expired").Valid() {
		t.Error("expired must never be a stored status")
	}
}

func TestErrors(t *testing.T) {
	err := Errorf(CodeNameTaken, "a sandbox named %q already exists", "x")
	if !errors.Is(err, ErrNameTaken) || errors.Is(err, ErrNotFound) {
		t.Fatal("errors.Is must compare codes")
	}
	if CodeOf(err) != CodeNameTaken || CodeOf(errors.New("x")) != CodeInternal {
		t.Fatal("CodeOf")
	}
	seen := map[Code]bool{}
	for _, c := range Codes() {
		if seen[c] {
			t.Fatalf("duplicate code %s", c)
		}
		seen[c] = true
	}
}

func TestValidateTemplateDescription(t *testing.T) {
	for _, ok := range []string{"", "10 guilds with channels, members and XP", "Zoë's guilds 👩‍💻", strings.Repeat("é", TemplateDescriptionMax)} {
		if err := ValidateTemplateDescription("description", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{strings.Repeat("x", TemplateDescriptionMax+1), "a\nb", "\x1b[2J", "\u009b2J", "\xff"} {
		if err := ValidateTemplateDescription("description", bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%q: %v, want invalid input", bad, err)
		}
	}
}
