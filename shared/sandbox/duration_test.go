package sandbox

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"8d":         8 * Day,
		"7d2h":       7*Day + 2*time.Hour,
		"1d30m":      Day + 30*time.Minute,
		"1d1h1m1s":   Day + time.Hour + time.Minute + time.Second,
		"90m":        90 * time.Minute,
		"1h30m":      90 * time.Minute,
		"24h":        24 * time.Hour,
		"1.5h":       90 * time.Minute,
		"300ms":      300 * time.Millisecond,
		"0":          0,
		"0d":         0,
		"-1h":        -time.Hour,
		"-1d":        -Day,
		"-7d2h":      -(7*Day + 2*time.Hour),
		"+2h":        2 * time.Hour,
		"106751d":    106751 * Day,
		"0d2562047h": 2562047 * time.Hour,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "1.5d", "7days", "abc", "2h1d", "1d-2h", "1d+2h", "--1h", "1 d", " 1h",
		"d2h", "1dd", "106752d", "106751d24h", "1d2", "-"} {
		_, err := ParseDuration(bad)
		if err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), DurationForms) {
			t.Errorf("ParseDuration(%q): the error does not show the forms: %v", bad, err)
		}
	}
}

// Everything is written with its non-zero units, and reads back to the same value.
func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                   "0s",
		45 * time.Second:                    "45s",
		10 * time.Minute:                    "10m",
		12 * time.Hour:                      "12h",
		90 * time.Minute:                    "1h30m",
		24 * time.Hour:                      "1d",
		138 * time.Hour:                     "5d18h",
		168 * time.Hour:                     "7d",
		192 * time.Hour:                     "8d",
		Day + 30*time.Second:                "1d30s",
		2*time.Hour + 1500*time.Millisecond: "2h1s500ms",
		1500 * time.Nanosecond:              "1.5µs",
		-45 * time.Minute:                   "-45m",
		math.MinInt64:                       "-106751d23h47m16s854ms775.807µs",
	} {
		got := FormatDuration(d)
		if got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(got); err != nil || (back != d && d != math.MinInt64) {
			t.Errorf("ParseDuration(FormatDuration(%d)) = %d, %v", d, back, err)
		}
	}
}

// Rounded to the nearest unit shown: a 2h TTL is 2h a second after creation, not 1h59m.
func TestRoundDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2*time.Hour - time.Second:                      "2h",
		2*time.Hour - 31*time.Second:                   "1h59m",
		24*time.Hour - time.Second:                     "1d",
		23*time.Hour + 59*time.Minute + 29*time.Second: "23h59m",
		7*Day - time.Second:                            "7d",
		7*Day - 31*time.Minute:                         "6d23h",
		5*Day + 17*time.Hour + 30*time.Minute:          "5d18h",
		36*time.Hour - time.Second:                     "1d12h",
		59*time.Minute + 40*time.Second:                "1h",
		45*time.Minute + 20*time.Second:                "45m",
		59*time.Second + 600*time.Millisecond:          "1m",
		30 * time.Second:                               "30s",
		400 * time.Millisecond:                         "0s",
		-(90*time.Minute + 10*time.Second):             "-1h30m",
	} {
		if got := FormatDuration(RoundDuration(d)); got != want {
			t.Errorf("FormatDuration(RoundDuration(%s)) = %q, want %q", d, got, want)
		}
	}
}

// The API's messages say durations the way people type them, never Go's 192h0m0s.
func TestLimitMessagesSayHumanDurations(t *testing.T) {
	l := DefaultLimits()
	_, err := l.ResolveTTL(8 * Day)
	if err == nil || !strings.Contains(err.Error(), "ttl 8d exceeds the maximum lifetime 7d") {
		t.Errorf("ResolveTTL(8d) = %v", err)
	}
	_, err = l.ResolveTTL(time.Minute)
	if err == nil || !strings.Contains(err.Error(), "ttl 1m is shorter than the minimum 10m") {
		t.Errorf("ResolveTTL(1m) = %v", err)
	}
	now := time.Now()
	_, _, err = l.ExtendedExpiry(now, now.Add(time.Hour), 90*time.Second)
	if err == nil || !strings.Contains(err.Error(), "extension 1m30s is shorter than the minimum 10m") {
		t.Errorf("ExtendedExpiry(by 90s) = %v", err)
	}
}

// A refused guild id is told the whole rule, the range included: a 20-digit id can be wrong.
func TestGuildIDMessageSaysTheExactRule(t *testing.T) {
	for _, id := range []string{"18446744073709551616", "0123456789012345678", "1234"} {
		err := ValidateGuildID(id)
		if err == nil || !strings.Contains(err.Error(), "17 to 20 digits, no leading zero, at most 18446744073709551615") {
			t.Errorf("ValidateGuildID(%q) = %v", id, err)
		}
		if _, err := DefaultLimits().NormalizeGuilds([]string{id}); err == nil || !strings.Contains(err.Error(), SnowflakeRule) {
			t.Errorf("NormalizeGuilds(%q) = %v", id, err)
		}
	}
}
