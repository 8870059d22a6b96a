package docscheck

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// update rewrites the generated regions of the docs instead of comparing them.
var update = flag.Bool("update", false, "rewrite the generated regions of docs/*.md")

// repoRoot is the repository root, relative to this package.
const repoRoot = "../.."

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", name))
	if err != nil {
		t.Fatalf("reading docs/%s: %v", name, err)
	}
	return string(b)
}

// generatedRegion finds the text between "<!-- BEGIN GENERATED: id ... -->" and
// "<!-- END GENERATED: id -->" lines.
func generatedRegion(t *testing.T, doc, id string) (start, end int) {
	t.Helper()
	begin := regexp.MustCompile(`(?m)^<!-- BEGIN GENERATED: ` + regexp.QuoteMeta(id) + `\b.*-->\n`)
	loc := begin.FindStringIndex(doc)
	if loc == nil {
		t.Fatalf("no <!-- BEGIN GENERATED: %s --> line", id)
	}
	endMarker := "<!-- END GENERATED: " + id + " -->"
	e := strings.Index(doc[loc[1]:], endMarker)
	if e < 0 {
		t.Fatalf("no %s line", endMarker)
	}
	return loc[1], loc[1] + e
}

// checkGenerated compares a generated region of docs/name with want, or rewrites it with -update.
func checkGenerated(t *testing.T, name, id, want string) {
	t.Helper()
	doc := readDoc(t, name)
	start, end := generatedRegion(t, doc, id)
	if got := doc[start:end]; got != want {
		if *update {
			doc = doc[:start] + want + doc[end:]
			if err := os.WriteFile(filepath.Join(repoRoot, "docs", name), []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote the %s region of docs/%s", id, name)
			return
		}
		t.Errorf("docs/%s: the %s region is out of date; run `go test ./shared/docscheck -update`.\n--- got\n%s\n--- want\n%s", name, id, got, want)
	}
}

// table is a Markdown table: the header cells and the rows' cells, trimmed.
type table struct {
	Line   int // 1-based line of the header
	Header []string
	Rows   [][]string
}

// taggedTables returns the tables that follow a "<!-- tag: value -->" line (blank lines and
// prose may come between), keyed by value.
func taggedTables(doc, tag string) map[string]table {
	tagRE := regexp.MustCompile(`^<!-- ` + regexp.QuoteMeta(tag) + `: ([a-z0-9-]+) -->$`)
	out := map[string]table{}
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		m := tagRE.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[j]), "|") {
			j++
		}
		tb := table{Line: j + 1}
		for k := j; k < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[k]), "|"); k++ {
			cells := splitRow(lines[k])
			switch k {
			case j:
				tb.Header = cells
			case j + 1: // the --- separator
			default:
				tb.Rows = append(tb.Rows, cells)
			}
		}
		out[m[1]] = tb
	}
	return out
}

// splitRow splits "| a | b \| c |" into ["a", "b | c"].
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

// codeBlock is a fenced code block with the tag of the "<!-- runbook: kind -->" line right
// before it ("" when none).
type codeBlock struct {
	Line int // 1-based line of the opening fence
	Lang string
	Tag  string
	Body string
}

var runbookTagRE = regexp.MustCompile(`^<!-- runbook: ([a-z-]+) -->$`)

func codeBlocks(doc string) []codeBlock {
	var out []codeBlock
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		// Fences may be indented (inside a list item); the body loses that indentation.
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		fence, ok := strings.CutPrefix(lines[i][indent:], "```")
		if !ok {
			continue
		}
		b := codeBlock{Line: i + 1, Lang: strings.TrimSpace(fence)}
		for k := i - 1; k >= 0; k-- {
			if strings.TrimSpace(lines[k]) == "" {
				continue
			}
			if m := runbookTagRE.FindStringSubmatch(strings.TrimSpace(lines[k])); m != nil {
				b.Tag = m[1]
			}
			break
		}
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimLeft(lines[i], " "), "```"); i++ {
			line := lines[i]
			if len(line) >= indent && strings.TrimSpace(line[:indent]) == "" {
				line = line[indent:]
			}
			body = append(body, line)
		}
		b.Body = strings.Join(body, "\n") + "\n"
		out = append(out, b)
	}
	return out
}

// section is the text under one "## " heading, up to the next one.
type section struct {
	Title string
	Line  int // 1-based line of the heading; the Text starts on the next line
	Text  string
}

func sections(doc string) []section {
	var out []section
	cur := section{}
	inFence := false
	for i, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
			inFence = !inFence
		}
		if title, ok := strings.CutPrefix(line, "## "); ok && !inFence {
			out = append(out, cur)
			cur = section{Title: title, Line: i + 1}
			continue
		}
		cur.Text += line + "\n"
	}
	return append(out, cur)
}

// inlineCode returns the `code spans` of the prose (outside fenced blocks).
func inlineCode(doc string) []string {
	var out []string
	inFence := false
	span := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range span.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// unquote strips one pair of backticks.
func unquote(cell string) string {
	if len(cell) >= 2 && cell[0] == '`' && cell[len(cell)-1] == '`' {
		return cell[1 : len(cell)-1]
	}
	return cell
}
