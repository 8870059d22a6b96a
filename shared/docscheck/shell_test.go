package docscheck

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// heredocRE finds a here-document operator and its delimiter: <<'SQL', <<"EOF", <<-EOF, <<EOF.
var heredocRE = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)

// shellCommands returns the simple commands of a shell snippet as words, with quotes
// removed, environment assignments and keywords dropped, redirections and here-document
// bodies left out. Command substitutions count as commands of their own and stand as
// "$(…)" in the word that holds them. It understands the shell the runbook uses, not all of
// POSIX sh.
func shellCommands(src string) [][]string {
	var lines []string
	var delim string
	for _, line := range strings.Split(src, "\n") {
		if delim != "" {
			if strings.TrimSpace(line) == delim {
				delim = ""
			}
			continue
		}
		if m := heredocRE.FindStringSubmatch(line); m != nil {
			delim = m[1]
		}
		lines = append(lines, line)
	}
	src = strings.ReplaceAll(strings.Join(lines, "\n"), "\\\n", " ")
	var out [][]string
	lexCommands(src, &out)
	return out
}

// shellKeywords may start a simple command without being the command.
var shellKeywords = []string{"do", "done", "then", "else", "fi", "if", "while", "until", "for", "!", "{", "}", "time"}

var assignmentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func lexCommands(src string, out *[][]string) {
	var words []string
	var cur strings.Builder
	inWord, skipNext := false, false
	endWord := func() {
		if inWord {
			if skipNext {
				skipNext = false
			} else {
				words = append(words, cur.String())
			}
		}
		cur.Reset()
		inWord = false
	}
	endCommand := func() {
		endWord()
		for len(words) > 0 && (slices.Contains(shellKeywords, words[0]) || assignmentRE.MatchString(words[0])) {
			words = words[1:]
		}
		// "for x in ...": nothing after the keyword is a command.
		if len(words) > 0 {
			*out = append(*out, words)
		}
		words = nil
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\'':
			end := strings.IndexByte(src[i+1:], '\'')
			if end < 0 {
				end = len(src) - i - 1
			}
			cur.WriteString(src[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case c == '"':
			inWord = true
			for i++; i < len(src) && src[i] != '"'; i++ {
				switch {
				case src[i] == '\\' && i+1 < len(src):
					i++
					cur.WriteByte(src[i])
				case src[i] == '$' && i+1 < len(src) && src[i+1] == '(':
					inner, n := substitution(src[i+2:])
					lexCommands(inner, out)
					cur.WriteString("$(…)")
					i += n + 2
				default:
					cur.WriteByte(src[i])
				}
			}
		case c == '$' && i+1 < len(src) && src[i+1] == '(':
			inner, n := substitution(src[i+2:])
			lexCommands(inner, out)
			cur.WriteString("$(…)")
			inWord = true
			i += n + 2
		case c == '\\' && i+1 < len(src):
			i++
			cur.WriteByte(src[i])
			inWord = true
		case c == '#' && !inWord:
			for i < len(src) && src[i] != '\n' {
				i++
			}
			endCommand()
		case c == ' ' || c == '\t':
			endWord()
		case c == '>' || c == '<':
			// A redirection: drop a file descriptor number before it and the target after it.
			if inWord && strings.Trim(cur.String(), "0123456789") == "" {
				cur.Reset()
				inWord = false
			}
			endWord()
			for i+1 < len(src) && (src[i+1] == '>' || src[i+1] == '<' || src[i+1] == '&' || src[i+1] == '-') {
				i++
			}
			for i+1 < len(src) && src[i+1] == ' ' {
				i++
			}
			skipNext = true
		case c == '|' || c == ';' || c == '&' || c == '\n' || c == '(' || c == ')':
			endCommand()
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	endCommand()
}

// substitution returns the text of a $( ... ) whose content starts at s, and the index of
// its closing parenthesis in s.
func substitution(s string) (string, int) {
	depth := 1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			if end := strings.IndexByte(s[i+1:], '\''); end >= 0 {
				i += end + 1
			}
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return s[:i], i
			}
		}
	}
	return s, len(s)
}

func TestShellCommands(t *testing.T) {
	src := `export A="$(terraform -chdir=terraform output -raw api_url)" B=2
psql "$DATABASE_URL" -X -v name="$SANDBOX" <<'SQL'
SELECT 1 | 2;
SQL
aws sqs get-queue-attributes --queue-url "$Q" \
  --attribute-names All --query 'Attributes.X' 2>&1 | cut -c1-200 > out.txt
redis-cli --scan --pattern 'sandbox:{*}:events' |
  while read -r key; do
    redis-cli RENAME "$key" "$key:parked" >/dev/null # a comment
  done
X=1 sandbox status "$(jq -r .name < f)" --json`
	got := shellCommands(src)
	want := [][]string{
		{"terraform", "-chdir=terraform", "output", "-raw", "api_url"},
		{"export", "A=$(…)", "B=2"},
		{"psql", "$DATABASE_URL", "-X", "-v", "name=$SANDBOX"},
		{"aws", "sqs", "get-queue-attributes", "--queue-url", "$Q", "--attribute-names", "All", "--query", "Attributes.X"},
		{"cut", "-c1-200"},
		{"redis-cli", "--scan", "--pattern", "sandbox:{*}:events"},
		{"read", "-r", "key"},
		{"redis-cli", "RENAME", "$key", "$key:parked"},
		{"jq", "-r", ".name"},
		{"sandbox", "status", "$(…)", "--json"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d commands, want %d:\n%q", len(got), len(want), got)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("command %d: got %q, want %q", i, got[i], want[i])
		}
	}
}
