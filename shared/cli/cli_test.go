package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
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

// Amounts read at a glance are rounded to the nearest unit shown, and written as typed.
func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                         "0s",
		59 * time.Second:          "59s",
		90 * time.Minute:          "1h30m",
		2*time.Hour - time.Second: "2h",
		23*time.Hour + 59*time.Minute + 59*time.Second: "1d",
		47 * time.Hour:               "1d23h",
		7*24*time.Hour - time.Second: "7d",
		-5 * time.Minute:             "5m",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

// checkEach calls f, named name, on each input of cases and wants the case's result.
func checkEach(t *testing.T, name string, f func(string) string, cases map[string]string) {
	t.Helper()
	for in, want := range cases {
		if got := f(in); got != want {
			t.Errorf("%s(%q) = %q, want %q", name, in, got, want)
		}
	}
}

// Tables show who owns a sandbox in a word; the full ARN is for --wide and --json.
func TestShortOwner(t *testing.T) {
	checkEach(t, "shortOwner", shortOwner, map[string]string{
		"arn:aws:iam::123456789012:user/alice":                               "alice",
		"arn:aws:iam::123456789012:user/engineering/bots/alice":              "alice",
		"arn:aws:sts::123456789012:assumed-role/Developer/alice@example.com": "Developer/alice@example.com",
		"arn:aws:sts::123456789012:assumed-role/Developer":                   "Developer",
		"arn:aws:sts::123456789012:federated-user/bob":                       "bob",
		"arn:aws-cn:iam::123456789012:user/chen":                             "chen",
		"arn:aws:iam::123456789012:root":                                     "root@123456789012",
		"arn:aws:iam::123456789012:role/ci/Deployer":                         "role/ci/Deployer",
		"arn:aws:iam::123456789012:user/":                                    "user/",
		"arn:aws:iam::123456789012:":                                         "arn:aws:iam::123456789012:",
		"alice":                                                              "alice",
		"ops-admin":                                                          "ops-admin",
		"arn:not:enough":                                                     "arn:not:enough",
	})
	if got := ownerField("arn:aws:iam::123456789012:user/alice"); got != "alice (arn:aws:iam::123456789012:user/alice)" {
		t.Errorf("ownerField: %q", got)
	}
	if got := ownerField("alice"); got != "alice" {
		t.Errorf("ownerField of a local principal: %q", got)
	}
}

// The stamped version wins; without one, the module's, "devel" for a checkout; the commit as
// the build recorded it.
func TestVersionOf(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "4db34e0a1b2c3d4e5f60718293a4b5c6d7e8f901"},
		{Key: "vcs.time", Value: "2026-11-26T23:50:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	v := versionOf("", info)
	if v.Version != "devel" || v.Commit != "4db34e0a1b2c3d4e5f60718293a4b5c6d7e8f901" || v.CommitTime != "2026-11-26T23:50:00Z" ||
		!v.Modified || v.Go != "go1.26.8" || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("a checkout's build: %+v", v)
	}
	if v := versionOf("v1.4.0", info); v.Version != "v1.4.0" {
		t.Errorf("stamped: %+v", v)
	}
	if v := versionOf("", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.2"}}); v.Version != "v1.3.2" || v.Commit != "" || v.Modified {
		t.Errorf("go install ...@v1.3.2: %+v", v)
	}
	if v := versionOf("", nil); v.Version != "devel" || v.Go != runtime.Version() {
		t.Errorf("no build info: %+v", v)
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

// Every command group, whoever added it, behaves alike run bare: its help on stderr, a usage
// error naming its commands, exit 2; with --json, only the error document.
func TestEveryGroupBehavesAlike(t *testing.T) {
	var groups [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		// A group is a command of commands alone; one that takes arguments too (events NAME,
		// with events rewind) is a command.
		if c.HasAvailableSubCommands() && c.Use == c.Name() {
			groups = append(groups, path)
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub, append(slices.Clone(path), sub.Name()))
			}
		}
	}
	walk((&app{}).rootCommand(), nil)
	if len(groups) < 3 {
		t.Fatalf("groups found: %q", groups)
	}
	for _, group := range groups {
		path := strings.Join(append([]string{"sandbox"}, group...), " ")
		var stdout, stderr bytes.Buffer
		env := Env{Stdout: &stdout, Stderr: &stderr, Lookup: config.MapLookup(nil)}
		if code := Run(t.Context(), group, env); code != ExitUsage {
			t.Errorf("%s: exit %d", path, code)
		}
		if stdout.Len() != 0 || !strings.Contains(stderr.String(), "Usage:\n  "+path+" [command]\n") ||
			!strings.Contains(stderr.String(), "error: "+path+" needs a command: ") || strings.Contains(stderr.String(), "hint:") {
			t.Errorf("%s run bare:\n--- stdout\n%s--- stderr\n%s", path, stdout.String(), stderr.String())
		}
		stdout.Reset()
		stderr.Reset()
		if code := Run(t.Context(), append(slices.Clone(group), "--json"), env); code != ExitUsage || stderr.Len() != 0 ||
			!strings.Contains(stdout.String(), `"code": "usage"`) {
			t.Errorf("%s --json: exit %d\n--- stdout\n%s--- stderr\n%s", path, code, stdout.String(), stderr.String())
		}
		stdout.Reset()
		if code := Run(t.Context(), append(slices.Clone(group), "--help"), env); code != ExitOK || !strings.Contains(stdout.String(), "Usage:") {
			t.Errorf("%s --help: exit %d", path, code)
		}
	}
}

// Each command-line mistake names the help page of the command at hand, whatever cobra or
// pflag found: never the root's for a subcommand's mistake.
func TestUsageErrorsNameTheCommandsHelp(t *testing.T) {
	for _, args := range [][]string{
		{"guilds", "add", "x"}, {"guilds", "frob"}, {"guilds", "list", "--bogus"}, {"guilds", "list"},
		{"cleanup", "run", "extra"}, {"extend", "abc-def"}, {"list", "--owner", "a", "--all"}, {"create", "-abc"},
		{"status", "abc-def", "--interval", "soon"}, {"list", "--json=maybe"}, {"create", "--ttl"},
	} {
		var stderr bytes.Buffer
		code := Run(t.Context(), args, Env{Stdout: io.Discard, Stderr: &stderr, Lookup: config.MapLookup(nil)})
		path := "sandbox"
		for _, a := range args {
			if strings.HasPrefix(a, "-") || a == "x" || a == "abc-def" || a == "frob" || a == "extra" || a == "a" {
				break
			}
			path += " " + a
		}
		if code != ExitUsage || !strings.Contains(stderr.String(), "[usage]\n  hint: run `"+path+" --help`") {
			t.Errorf("%q: exit %d, want a hint to %s --help:\n%s", args, code, path, stderr.String())
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

// testVersion is the version sandboxBinary stamps.
const testVersion = "v0.0.0-test"

// makefileVersionVar is the variable `make build` stamps the version into: the test builds
// with it, so a Makefile naming a variable that does not exist (which -X ignores) fails.
func makefileVersionVar() (string, error) {
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^CLI_VERSION_VAR\s*:?=\s*(\S+)\s*$`).FindSubmatch(mk)
	if m == nil {
		return "", errors.New("the Makefile sets no CLI_VERSION_VAR")
	}
	return string(m[1]), nil
}

// sandboxBinary builds cmd/sandbox once per test run, from the module cache only, with the
// version stamped as `make build` stamps it.
func sandboxBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		versionVar, err := makefileVersionVar()
		if err != nil {
			binaryErr = err
			return
		}
		dir, err := os.MkdirTemp("", "sandbox-cli-test")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "sandbox")
		cmd := exec.Command("go", "build", "-ldflags", "-X "+versionVar+"="+testVersion, "-o", binaryPath,
			"github.com/botplatform/discord-sandboxes/cmd/sandbox")
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

// TestServerTextCannotDriveTheTerminal renders what people read of a sandbox whose metadata
// (stored before the API refused control characters), recorded error, health detail and
// teardown record carry escape sequences, as a sandbox's code or another owner could have put
// them there. With colors off the CLI writes no escape of its own, so none may appear at all.
func TestServerTextCannotDriveTheTerminal(t *testing.T) {
	const osc52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07" // sets the reader's clipboard
	const csi = "\u009b2J"                         // C1 CSI: clears the screen
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	v := &StatusView{
		Sandbox: apiwire.Sandbox{
			Name: "hostile", ID: "abc123def456gh", Status: "running", Owner: "alice",
			CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour),
			Metadata:  map[string]string{"branch" + csi: "main" + osc52},
			LastError: `drop schema: table "t` + osc52 + `" is in use`, CleanupAttempts: 1,
			Teardown: json.RawMessage(`{"last_failure":{"at":"2026-12-06T11:00:00Z","step":"drop_schema_and_role","error":"table \"t\u001b]52;c;eA==\u0007\""}}`),
		},
		Health: &apiwire.SandboxHealth{Overall: "unhealthy", CheckedAt: now, Checks: []apiwire.Check{
			{Name: "database", Status: "fail", Detail: "role lacks its rights on t" + csi},
		}},
	}
	var out bytes.Buffer
	renderStatus(&out, style{}, v, now, time.UTC)
	a := &app{env: Env{Stdout: &out, Stderr: &out}}
	a.reportError(&Error{Code: sandbox.CodeInternal, Message: "failed: " + osc52})
	if err := a.printConnection(&apiwire.ConnectResponse{Name: "hostile", SandboxID: "abc123def456gh",
		Redis: apiwire.ConnectRedis{Username: "sb_x" + csi, Namespace: "ns" + osc52, Cluster: true, Addr: "node" + csi, Warning: "shared" + osc52}}); err != nil {
		t.Fatal(err)
	}
	if err := a.printDestroyed(&apiwire.DestroyResponse{Sandbox: apiwire.Sandbox{Name: "hostile", Status: "destroying"},
		TeardownError: `drop schema: cannot drop table "t` + osc52 + `"`}, false); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.ContainsAny(got, "\x1b\x07\u009b") {
		t.Fatalf("an escape sequence reached the output:\n%q", got)
	}
	for _, want := range []string{`main\x1b]52;c;ZWNobyBwd25lZA==\a`, `branch\u009b2J`, `on t\u009b2J`, `error: table "t\x1b]52;c;eA==\a"`, `failed: \x1b]52`,
		`warning: shared\x1b]52`, `node\u009b2J is one of its nodes`, `teardown error: drop schema: cannot drop table "t\x1b]52`} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}

	// --json escapes what encoding/json leaves raw (C1 and DEL), and still decodes the same.
	out.Reset()
	v.Sandbox.Metadata["del"] = "a\x7fb"
	if err := writeJSONDoc(&out, v); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\x07\x7f\u009b") {
		t.Fatalf("an escape sequence reached the --json output:\n%q", out.String())
	}
	var back StatusView
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || !reflect.DeepEqual(back.Sandbox.Metadata, v.Sandbox.Metadata) {
		t.Fatalf("--json decodes to %v (%v), want %v", back.Sandbox.Metadata, err, v.Sandbox.Metadata)
	}
}
