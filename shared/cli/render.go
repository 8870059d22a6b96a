package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// style colors text when the output is a terminal that wants colors, and is the identity
// otherwise, so renderers never check the terminal themselves.
type style struct{ color bool }

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

func (s style) wrap(code, text string) string {
	if !s.color || text == "" {
		return text
	}
	return code + text + ansiReset
}

func (s style) bold(t string) string   { return s.wrap(ansiBold, t) }
func (s style) dim(t string) string    { return s.wrap(ansiDim, t) }
func (s style) red(t string) string    { return s.wrap(ansiRed, t) }
func (s style) green(t string) string  { return s.wrap(ansiGreen, t) }
func (s style) yellow(t string) string { return s.wrap(ansiYellow, t) }

// status colors a display status or a health verdict by how good it is.
func (s style) status(t string) string {
	switch t {
	case "running", "ok", "healthy", "sandbox":
		return s.green(t)
	case "creating", "destroying", "warn", "degraded", "production":
		return s.yellow(t)
	case "expired", "failed", "fail", "unhealthy", "dropped", "EXPIRED":
		return s.red(t)
	case "destroyed":
		return s.dim(t)
	}
	return t
}

// cell is one table cell: its text and how to color it (padding counts the text only).
type cell struct {
	text  string
	paint func(string) string
}

func plain(t string) cell { return cell{text: t} }

// printable is what the CLI writes of any text the API hands it, without letting that text
// drive the terminal: a sandbox's code writes its stream and names its objects (a database
// error in a teardown record may quote them), and an owner writes the metadata that the
// people the sandbox is shared with read, escape sequences included (OSC 52, say, sets a
// terminal's clipboard). Every rune that is not graphic (controls, format characters such as
// bidi overrides) is written as its Go escape, and every byte that is not UTF-8 as \xNN. The
// CLI's own colors are added after it (cell.paint, style).
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, notGraphic) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case notGraphic(r):
			b.WriteString(strings.Trim(strconv.QuoteRuneToASCII(r), "'"))
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func notGraphic(r rune) bool { return !unicode.IsGraphic(r) }

// writeTable writes rows under a header, columns separated by two spaces, every cell's text
// escaped (printable).
func writeTable(w io.Writer, st style, indent string, header []string, rows [][]cell) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i := range r {
			r[i].text = printable(r[i].text)
			widths[i] = max(widths[i], utf8.RuneCountInString(r[i].text))
		}
	}
	line := func(cells []cell) {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range cells {
			text := c.text
			if c.paint != nil {
				text = c.paint(text)
			}
			b.WriteString(text)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2))
			}
		}
		fmt.Fprintln(w, b.String())
	}
	hc := make([]cell, len(header))
	for i, h := range header {
		hc[i] = cell{text: h, paint: st.bold}
	}
	line(hc)
	for _, r := range rows {
		line(r)
	}
}

// writeFields writes "label  value" lines with the labels aligned.
func writeFields(w io.Writer, st style, indent string, fields [][2]string) {
	width := 0
	for _, f := range fields {
		width = max(width, len(f[0]))
	}
	for _, f := range fields {
		fmt.Fprintf(w, "%s%s%s  %s\n", indent, st.bold(f[0]), strings.Repeat(" ", width-len(f[0])), f[1])
	}
}

// humanDuration is a duration people read at a glance (time left, "ago"): its size, rounded
// to the nearest unit shown (sandbox.RoundDuration) and written as it is typed
// (sandbox.FormatDuration): 5d18h, 2h, 23h59m, 45m, 30s. Amounts that must be exact (how far
// an extension moved the expiry) use sandbox.FormatDuration alone.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	return sandbox.FormatDuration(sandbox.RoundDuration(d))
}

// shortOwner is an owner as tables show it: the user name of an IAM user
// (arn:aws:iam::123456789012:user/team/alice → alice), role/session of an assumed role
// (arn:aws:sts::123456789012:assumed-role/Developer/alice → Developer/alice), the name of a
// federated user, root@account for an account's root, the resource of any other ARN (role/x);
// a local principal as it is. --wide and --json show owners in full.
func shortOwner(owner string) string {
	parts := strings.SplitN(owner, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[5] == "" {
		return owner
	}
	resource := parts[5]
	if resource == "root" {
		return "root@" + parts[4]
	}
	kind, rest, _ := strings.Cut(resource, "/")
	switch {
	case rest == "":
	case kind == "user" || kind == "federated-user":
		if name := rest[strings.LastIndex(rest, "/")+1:]; name != "" {
			return name
		}
	case kind == "assumed-role":
		return rest
	}
	return resource
}

// ownerField is an owner in a detail view: short, with the full ARN after it when they differ.
func ownerField(owner string) string {
	if short := shortOwner(owner); short != owner {
		return short + " (" + owner + ")"
	}
	return owner
}

// Display statuses the CLI treats specially.
const (
	statusRunning   = "running"
	statusExpired   = "expired"
	statusDestroyed = "destroyed"
)

// timeLeft is what people see for a sandbox's expiry: the time left, EXPIRED, or "-" for a
// sandbox that is not live.
func timeLeft(s *apiwire.Sandbox) string {
	switch s.Status {
	case statusExpired:
		return "EXPIRED"
	case statusRunning, "creating":
		return humanDuration(s.TimeLeft())
	}
	return "-"
}

// formatTime is an absolute time for people, in the CLI's zone, to the second.
func formatTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04:05 MST")
}

// ago says how long before now t was, for people.
func ago(t, now time.Time) string {
	if d := now.Sub(t); d > -time.Second { // sub-second skew between clocks is "now"
		return humanDuration(max(d, 0)) + " ago"
	}
	return "in " + humanDuration(t.Sub(now))
}

// guildList is a sandbox's guilds on one line.
func guildList(guilds []string) string {
	if len(guilds) == 0 {
		return "none"
	}
	return strings.Join(guilds, ", ")
}

// writeJSONDoc writes v as indented JSON, the one format of every --json output.
func writeJSONDoc(w io.Writer, v any) error { return writeJSON(w, v, "  ") }

// writeJSONLine writes v as one compact JSON line (the --watch --json stream).
func writeJSONLine(w io.Writer, v any) error { return writeJSON(w, v, "") }

// writeJSON encodes v, then escapes DEL and the C1 controls as \u00XX: encoding/json writes
// them as they are, and a terminal may take U+009B for CSI (printable says why the API's text
// must not drive it). The document decodes to the same values.
func writeJSON(w io.Writer, v any, indent string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", indent)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	out := buf.Bytes()
	// Inside strings encoding/json escapes C0 itself; outside them it writes only newlines.
	raw := func(r rune) bool { return unicode.IsControl(r) && r != '\n' }
	if bytes.ContainsFunc(out, raw) {
		var b strings.Builder
		for _, r := range string(out) {
			if raw(r) {
				fmt.Fprintf(&b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
		out = []byte(b.String())
	}
	_, err := w.Write(out)
	return err
}

// hasRecord reports whether a pass-through record says anything: the API sends null or {}
// for a sandbox whose teardown has not started.
func hasRecord(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return len(bytes.TrimSpace(raw)) > 0
	}
	switch v := v.(type) {
	case nil:
		return false
	case map[string]any:
		return len(v) > 0
	}
	return true
}

// writeRecord renders a record of the cleanup service (the teardown record as raw JSON, a
// cleanup run or an orphan report as its wire type) as indented "key: value" lines, keys
// sorted, so people read every field without the CLI keeping a renderer per report.
func writeRecord(w io.Writer, st style, indent string, record any) {
	raw, isRaw := record.(json.RawMessage)
	if !isRaw {
		var err error
		if raw, err = json.Marshal(record); err != nil {
			fmt.Fprintf(w, "%s%v\n", indent, record)
			return
		}
	}
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		fmt.Fprintf(w, "%s%s\n", indent, strings.TrimSpace(string(raw)))
		return
	}
	writeValue(w, st, indent, v)
}

func writeValue(w io.Writer, st style, indent string, v any) {
	switch v := v.(type) {
	case map[string]any:
		keys := recordOrder(v)
		if len(keys) == 0 {
			fmt.Fprintf(w, "%s(empty)\n", indent)
		}
		for _, k := range keys {
			if scalar, ok := scalarText(v[k]); ok {
				fmt.Fprintf(w, "%s%s: %s\n", indent, st.bold(k), scalar)
				continue
			}
			fmt.Fprintf(w, "%s%s:\n", indent, st.bold(k))
			writeValue(w, st, indent+"  ", v[k])
		}
	case []any:
		if len(v) == 0 {
			fmt.Fprintf(w, "%s(none)\n", indent)
		}
		for _, item := range v {
			if scalar, ok := scalarText(item); ok {
				fmt.Fprintf(w, "%s- %s\n", indent, scalar)
				continue
			}
			fmt.Fprintf(w, "%s-\n", indent)
			writeValue(w, st, indent+"  ", item)
		}
	default:
		s, _ := scalarText(v)
		fmt.Fprintf(w, "%s%s\n", indent, s)
	}
}

// recordOrder orders an object's keys for reading: scalars first, by name, then nested
// objects in the order of their "at" times (the steps of a teardown record happened in
// that order; JSON objects stored in PostgreSQL lose theirs), then the rest by name.
func recordOrder(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	at := func(k string) (time.Time, bool) {
		obj, ok := m[k].(map[string]any)
		if !ok {
			return time.Time{}, false
		}
		s, _ := obj["at"].(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	rank := func(k string) int {
		if _, ok := scalarText(m[k]); ok {
			return 0
		}
		if _, ok := at(k); ok {
			return 1
		}
		return 2
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank(keys[i]), rank(keys[j])
		if ri != rj {
			return ri < rj
		}
		if ri == 1 {
			ti, _ := at(keys[i])
			tj, _ := at(keys[j])
			if !ti.Equal(tj) {
				return ti.Before(tj)
			}
		}
		return keys[i] < keys[j]
	})
	return keys
}

// scalarText formats JSON scalars; ok is false for objects and arrays that are not empty.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "null", true
	case string:
		if v == "" {
			return `""`, true
		}
		return printable(v), true
	case bool, float64:
		b, _ := json.Marshal(v)
		return string(b), true
	case map[string]any:
		return "{}", len(v) == 0
	case []any:
		return "[]", len(v) == 0
	}
	return fmt.Sprint(v), true
}
