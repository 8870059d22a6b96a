package sandbox

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Durations as people type and read them: the one home of their syntax, shared by the API
// (a create's ttl, an extension's by, its messages), the CLI (flags and output) and the
// configuration (SANDBOX_DEFAULT_TTL, ...), so that "7d2h" means one thing everywhere and
// what is echoed can be typed back.

// Day is the unit "d" of ParseDuration and FormatDuration: 24 hours (no calendar).
const Day = 24 * time.Hour

// DurationForms is how messages show the accepted syntax.
const DurationForms = "90m, 1h30m, 24h, 7d or 7d2h"

// ParseDuration reads a duration: whole days ("8d") optionally followed by a Go duration
// ("7d2h", "1d30m"), or a Go duration alone ("90m", "1h30m", "1.5h"). A leading '-' makes it
// negative: whether zero or a negative value is acceptable is the caller's rule, so that it
// can say "must be positive" rather than "not a duration".
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration like %s", s, DurationForms)
	rest, neg := strings.CutPrefix(s, "-")
	if !neg {
		rest, _ = strings.CutPrefix(rest, "+")
	}
	var d time.Duration
	if days, after, ok := strings.Cut(rest, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 64) // digits only: no sign, no fraction
		if err != nil || n > uint64(math.MaxInt64/int64(Day)) {
			return 0, bad
		}
		d, rest = time.Duration(n)*Day, after
		if rest == "" {
			return sign(d, neg), nil
		}
	}
	if rest == "" || rest[0] == '-' || rest[0] == '+' {
		return 0, bad
	}
	part, err := time.ParseDuration(rest)
	if err != nil || part > math.MaxInt64-d {
		return 0, bad
	}
	return sign(d+part, neg), nil
}

func sign(d time.Duration, neg bool) time.Duration {
	if neg {
		return -d
	}
	return d
}

// durationUnits are the units FormatDuration writes, largest first.
var durationUnits = []struct {
	size time.Duration
	name string
}{{Day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}}

// FormatDuration writes d exactly, with every unit that is not zero, largest first: 7d,
// 5d18h, 1h30m, 10m, 45s, 1d30s; "0s" for zero, a leading '-' when negative. ParseDuration
// reads every result back to the same value (below a millisecond, Go's notation is kept).
// For an amount people read at a glance (time left, "ago"), round it first: RoundDuration.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d < 0 {
		if d == math.MinInt64 {
			return "-" + FormatDuration(math.MaxInt64) // -MinInt64 overflows; a nanosecond off
		}
		return "-" + FormatDuration(-d)
	}
	var b strings.Builder
	for _, u := range durationUnits {
		if n := d / u.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.size
		}
	}
	if d > 0 {
		b.WriteString(d.String()) // below a millisecond: "1.5µs"
	}
	return b.String()
}

// RoundDuration rounds d, half away from zero, to the smallest unit FormatDuration shows
// of an amount of its size: hours from a day on (5d18h), minutes from a minute on (23h59m,
// 45m), seconds below (30s). So a 2h TTL shows 2h right after creation, not 1h59m, and the
// shown amount is never more than half a unit off.
func RoundDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -RoundDuration(-d)
	}
	unit := func(d time.Duration) time.Duration {
		switch {
		case d >= Day:
			return time.Hour
		case d >= time.Minute:
			return time.Minute
		}
		return time.Second
	}
	r := d.Round(unit(d))
	// Rounding up may reach a larger size (23h59m40s is 1d): round again at its unit.
	return r.Round(unit(r))
}
