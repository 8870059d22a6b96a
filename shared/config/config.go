// Package config reads configuration from environment variables: typed readers that collect
// every problem at once (so an operator fixes all of them in one deploy), and the settings
// that all three functions share. Each function's own settings are read by its package with
// the same Reader, so that every variable has one home and a documented default.
package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Lookup finds an environment variable; os.LookupEnv in production, a map in tests.
type Lookup func(name string) (string, bool)

// MapLookup adapts a map to a Lookup, for tests and for local runs.
func MapLookup(m map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// Reader reads typed values and remembers every malformed or missing one.
type Reader struct {
	lookup Lookup
	errs   []error
}

// NewReader returns a Reader over lookup.
func NewReader(lookup Lookup) *Reader { return &Reader{lookup: lookup} }

// Err returns all problems found so far, joined, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

func (r *Reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("config: %s: %s", name, fmt.Sprintf(format, args...)))
}

// raw returns the trimmed value and whether it is set and non-empty.
func (r *Reader) raw(name string) (string, bool) {
	v, ok := r.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// String returns the variable or def when unset or empty.
func (r *Reader) String(name, def string) string {
	if v, ok := r.raw(name); ok {
		return v
	}
	return def
}

// Required returns the variable and records an error when it is unset or empty.
func (r *Reader) Required(name string) string {
	v, ok := r.raw(name)
	if !ok {
		r.fail(name, "is required")
	}
	return v
}

// Duration parses a duration with sandbox.ParseDuration ("90s", "24h", "7d", "7d12h").
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	d, err := sandbox.ParseDuration(v)
	if err != nil || d < 0 {
		r.fail(name, "%q is not a duration like %s", v, sandbox.DurationForms)
		return def
	}
	return d
}

// Int parses an integer within [min, max].
func (r *Reader) Int(name string, def, min, max int) int {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.fail(name, "%q is not an integer between %d and %d", v, min, max)
		return def
	}
	return n
}

// Bool parses true/false/1/0/yes/no.
func (r *Reader) Bool(name string, def bool) bool {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	r.fail(name, "%q is not a boolean (true or false)", v)
	return def
}

// List splits a comma-separated list, dropping empty items.
func (r *Reader) List(name string) []string {
	v, ok := r.raw(name)
	if !ok {
		return nil
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Check records an error for name when ok is false; for cross-field rules.
func (r *Reader) Check(ok bool, name, format string, args ...any) {
	if !ok {
		r.fail(name, format, args...)
	}
}
