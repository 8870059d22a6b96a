package cli

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// TestExportsSurviveEvalInSh feeds values that would break naive quoting through
// `eval "$(...)"` in a real sh: each must come back byte for byte, and nothing may run.
func TestExportsSurviveEvalInSh(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	env := map[string]string{
		"DOLLAR":    "$HOME and ${HOME}",
		"SUBST":     "$(touch " + marker + ")",
		"BACKTICK":  "`touch " + marker + "`",
		"QUOTES":    `she said "hi" and 'bye'`,
		"BACKSLASH": `C:\path\ends\`,
		"NEWLINES":  "line one\nline two\n",
		"GLOB":      "* ? [a-z] ~ !x #y ; & | < >",
		"UNICODE":   "sandbox:{k3m9}:events ✓ ü",
		"EMPTY":     "",
		"NOT-VALID": "skipped",
	}
	var b bytes.Buffer
	skipped, err := writeExports(&b, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || skipped[0] != "NOT-VALID" {
		t.Errorf("skipped %q", skipped)
	}
	names := []string{"DOLLAR", "SUBST", "BACKTICK", "QUOTES", "BACKSLASH", "NEWLINES", "GLOB", "UNICODE", "EMPTY"}
	got := evalInSh(t, b.String(), names...)
	for i, n := range names {
		if got[i] != env[n] {
			t.Errorf("%s: got %q, want %q", n, got[i], env[n])
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a value ran a command under eval")
	}
	if !strings.HasPrefix(b.String(), `export BACKSLASH="C:\\path\\ends\\"`+"\n") {
		t.Errorf("exports are sorted `export KEY=\"value\"` lines:\n%s", b.String())
	}
}

func TestEveryCodeHasAnExitCode(t *testing.T) {
	for _, c := range sandbox.Codes() {
		if _, ok := exitCodes[c]; !ok {
			t.Errorf("API code %s has no exit code", c)
		}
	}
	for err, want := range map[error]int{
		nil:                                                           ExitOK,
		&Error{Code: sandbox.CodeNotFound}:                            ExitNotFound,
		&Error{Code: sandbox.CodeNameTaken}:                           ExitConflict,
		&Error{Code: sandbox.CodeForbidden}:                           ExitAuth,
		&Error{Code: CodeConfirmationRequired}:                        ExitUsage,
		&Error{Code: CodeUnreachable}:                                 ExitUnavailable,
		&Error{Code: CodeInterrupted}:                                 ExitInterrupted,
		&Error{Code: "a_newer_code", Status: http.StatusConflict}:     ExitConflict,
		&Error{Code: "a_newer_code", Status: http.StatusTeapot}:       ExitFailure,
		&Error{Code: "a_newer_code", Status: http.StatusBadRequest}:   ExitUsage,
		&Error{Code: "a_newer_code", Status: http.StatusUnauthorized}: ExitAuth,
	} {
		if got := ExitCode(err); got != want {
			t.Errorf("ExitCode(%v) = %d, want %d", err, got, want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                "0s",
		59 * time.Second: "59s",
		90 * time.Minute: "1h30m",
		23*time.Hour + 59*time.Minute + 59*time.Second: "23h59m",
		47 * time.Hour:               "47h0m",
		7*24*time.Hour - time.Second: "6d23h",
		-5 * time.Minute:             "5m",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

// An extension is said exactly: 5d18h is not rounded to 5d, nor 7d shown as 6d23h.
func TestExactDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                   "0s",
		12 * time.Hour:                      "12h",
		90 * time.Minute:                    "1h30m",
		138 * time.Hour:                     "5d18h",
		168 * time.Hour:                     "7d",
		24*time.Hour + 30*time.Second:       "1d30s",
		2*time.Hour + 1500*time.Millisecond: "2h1s",
		-45 * time.Minute:                   "-45m",
	} {
		if got := exactDuration(d); got != want {
			t.Errorf("exactDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestGeneratedName(t *testing.T) {
	valid := regexp.MustCompile(sandbox.NamePattern)
	for user, prefix := range map[string]string{
		"alice":                               "alice-",
		"Alice.Smith":                         "alice-smith-",
		"DOMAIN\\bob":                         "domain-bob-",
		"42":                                  "sandbox-",
		"":                                    "sandbox-",
		"a-very-long-user-name-indeed-longer": "a-very-long-user-name-i",
	} {
		name := generatedName(user)
		if !valid.MatchString(name) || !strings.HasPrefix(name, prefix) {
			t.Errorf("generatedName(%q) = %q", user, name)
		}
	}
	if first, second := generatedName("alice"), generatedName("alice"); first == second {
		t.Error("generated names are random")
	}
}

// TestDecorationRules checks the one rule for colors and spinners: a terminal, and never with
// --json, NO_COLOR or TERM=dumb.
func TestDecorationRules(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ptmx.Close() }()
	defer func() { _ = tty.Close() }()
	for _, tc := range []struct {
		name   string
		out    any
		vars   map[string]string
		json   bool
		colors bool
	}{
		{"terminal", tty, nil, false, true},
		{"pipe", &bytes.Buffer{}, nil, false, false},
		{"NO_COLOR", tty, map[string]string{EnvNoColor: "1"}, false, false},
		{"TERM=dumb", tty, map[string]string{EnvTerm: "dumb"}, false, false},
		{"--json", tty, nil, true, false},
	} {
		w, _ := tc.out.(interface{ Write([]byte) (int, error) })
		a := &app{env: Env{Stdin: tty, Stdout: w, Stderr: w, Lookup: config.MapLookup(tc.vars)}, json: tc.json}
		if got := a.outStyle().color; got != tc.colors {
			t.Errorf("%s: colors %v", tc.name, got)
		}
		if got := a.spinnerWriter() != nil; got != tc.colors {
			t.Errorf("%s: spinner %v", tc.name, got)
		}
	}
}

func TestClientRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "ftp://example.com", "example.com", "https://example.com/?stage=x"} {
		if _, err := NewClient(u, nil, nil); ExitCode(err) != ExitUsage {
			t.Errorf("NewClient(%q): %v", u, err)
		}
	}
	c, err := NewClient("https://abc.execute-api.eu-west-1.amazonaws.com/prod/", nil, nil)
	if err != nil || c.BaseURL() != "https://abc.execute-api.eu-west-1.amazonaws.com/prod" {
		t.Errorf("stage path: %v %v", c, err)
	}
}

func TestBearerTokenOnlyOverTLSOrLoopback(t *testing.T) {
	for url, want := range map[string]int{
		"http://sandboxes.example.com":  ExitUsage,
		"http://127.0.0.1:8080":         ExitOK,
		"http://localhost:8080":         ExitOK,
		"http://[::1]:8080":             ExitOK,
		"https://sandboxes.example.com": ExitOK,
	} {
		a := &app{env: Env{Lookup: config.MapLookup(map[string]string{EnvAPIURL: url, EnvAPIToken: "devtoken-0123456789"})}}
		if _, err := a.api(t.Context()); ExitCode(err) != want {
			t.Errorf("%s: %v", url, err)
		}
	}
}

// sandboxBinary builds cmd/sandbox once per test run, from the module cache only.
func sandboxBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sandbox-cli-test")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "sandbox")
		cmd := exec.Command("go", "build", "-o", binaryPath, "github.com/botplatform/discord-sandboxes/cmd/sandbox")
		cmd.Env = append(os.Environ(), "GOPROXY=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			binaryErr = err
			binaryPath = string(out)
		}
	})
	if binaryErr != nil {
		t.Fatalf("building cmd/sandbox: %v\n%s", binaryErr, binaryPath)
	}
	return binaryPath
}
