package cli

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// envName is what a POSIX shell accepts as a variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// shDoubleQuote quotes s for a POSIX shell inside double quotes. Within them only $, `, " and
// \ are special (a backslash-newline is a continuation only when unescaped), so escaping those
// four keeps every value, newlines included, literal under eval.
func shDoubleQuote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '$', '`', '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// writeExports writes `export KEY="value"` lines, sorted by name, for eval in sh. Names a shell
// would not accept are skipped and returned, so the caller can warn on stderr: one bad name
// must not break the whole eval.
func writeExports(w io.Writer, env map[string]string) (skipped []string, err error) {
	names := make([]string, 0, len(env))
	for k := range env {
		if !envName.MatchString(k) {
			skipped = append(skipped, k)
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	sort.Strings(skipped)
	for _, k := range names {
		if _, err := fmt.Fprintf(w, "export %s=%s\n", k, shDoubleQuote(env[k])); err != nil {
			return skipped, err
		}
	}
	return skipped, nil
}
