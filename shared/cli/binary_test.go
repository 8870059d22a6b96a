package cli

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryErr == nil && binaryPath != "" {
		_ = os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}

// binaryEnv is the environment of the built binary against the stack: the process's own,
// without anything that would change the CLI's behaviour, plus extra.
func binaryEnv(s *stack, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case EnvAPIURL, EnvAPIToken, EnvNoColor, EnvTerm:
			continue
		}
		env = append(env, kv)
	}
	return append(env, append([]string{EnvAPIURL + "=" + s.url, EnvAPIToken + "=" + aliceToken}, extra...)...)
}

// TestBinary runs the built command as a script would: JSON on stdout, exit codes from the
// process.
func TestBinary(t *testing.T) {
	s := newStack(t)
	bin := sandboxBinary(t)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = binaryEnv(s)
		out, err := cmd.Output()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	out, code := run("create", "alice-binary", "--ttl", "90m", "--json")
	var sb apiwire.Sandbox
	if code != ExitOK || json.Unmarshal([]byte(out), &sb) != nil || sb.Name != "alice-binary" {
		t.Fatalf("create: exit %d %s", code, out)
	}
	out, code = run("connect", "alice-binary")
	if code != ExitOK {
		t.Fatalf("connect: exit %d", code)
	}
	if vars := evalInSh(t, out, "SANDBOX_NAME", "SANDBOX_STREAM"); vars[0] != "alice-binary" || vars[1] != sb.Stream {
		t.Errorf("eval of the binary's exports: %q", vars)
	}
	out, code = run("status", "no-such-sandbox", "--json")
	if code != ExitNotFound || !strings.Contains(out, `"code": "not_found"`) {
		t.Errorf("status of a missing sandbox: exit %d %s", code, out)
	}
	// The version the build stamped (the Makefile's variable, see sandboxBinary).
	out, code = run("--version")
	if code != ExitOK || !strings.HasPrefix(out, "sandbox "+testVersion+"\n") {
		t.Errorf("--version: exit %d %q", code, out)
	}
	// bash completes commands, and a NAME with the caller's sandboxes from the API.
	script, code := run("completion", "bash")
	if code != ExitOK {
		t.Fatalf("completion bash: exit %d", code)
	}
	for line, want := range map[string]string{"sandbox guilds l": "list", "sandbox status alice-b": "alice-binary", "sandbox completion f": "fish"} {
		if got := bashComplete(t, s, bin, script, line); got != want {
			t.Errorf("bash completes %q with %q, want %q", line, got, want)
		}
	}
	if _, code = run("destroy", "alice-binary"); code != ExitUsage {
		t.Errorf("destroy without a terminal or --yes: exit %d", code)
	}
	if _, code = run("destroy", "alice-binary", "--yes"); code != ExitOK {
		t.Errorf("destroy --yes: exit %d", code)
	}
}

// bashComplete sources the completion script in bash and completes line as pressing Tab at
// its end would, returning the candidates, one per line. The script needs one function of the
// bash-completion package, _get_comp_words_by_ref; a line that splits the words as it does
// stands for it (the package is not installed everywhere).
func bashComplete(t *testing.T, s *stack, bin, script, line string) string {
	t.Helper()
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", `source /dev/stdin
_get_comp_words_by_ref() { cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} words=("${COMP_WORDS[@]}") cword=$COMP_CWORD; }
read -r -a COMP_WORDS <<<"$LINE"
COMP_LINE=$LINE COMP_POINT=${#LINE} COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
__start_sandbox sandbox "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`)
	cmd.Env = binaryEnv(s, "LINE="+line, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	cmd.Stdin = strings.NewReader(script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash completion of %q: %v\n%s", line, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// ptyRun is the binary running on a pseudo-terminal (stdin, stdout and stderr).
type ptyRun struct {
	t      *testing.T
	ptmx   *os.File
	out    *testenv.SyncBuffer
	copied chan struct{}
	exited chan struct{}
	cmd    *exec.Cmd
}

func startPTY(t *testing.T, env []string, bin string, args ...string) *ptyRun {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyRun{t: t, ptmx: ptmx, out: &testenv.SyncBuffer{}, copied: make(chan struct{}), exited: make(chan struct{}), cmd: cmd}
	go func() {
		_, _ = io.Copy(p.out, ptmx) // ends with EIO once the terminal's last user is gone
		close(p.copied)
	}()
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		_ = ptmx.Close()
	})
	return p
}

// waitFor polls the terminal's output until it contains s.
func (p *ptyRun) waitFor(s string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.out.String(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal never showed %q:\n%q", s, p.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *ptyRun) send(s string) {
	p.t.Helper()
	if _, err := p.ptmx.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// exitCode waits for the process and for its last output.
func (p *ptyRun) exitCode() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("the process did not exit:\n%q", p.out.String())
	}
	select {
	case <-p.copied:
	case <-time.After(5 * time.Second):
	}
	return p.cmd.ProcessState.ExitCode()
}

func TestBinaryOnATerminal(t *testing.T) {
	s := newStack(t)
	bin := sandboxBinary(t)
	env := binaryEnv(s, "TERM=xterm-256color")

	// create: a spinner and colors on the terminal.
	p := startPTY(t, env, bin, "create", "alice-tty")
	if code := p.exitCode(); code != ExitOK {
		t.Fatalf("create: exit %d\n%q", code, p.out.String())
	}
	out := p.out.String()
	for _, want := range []string{spinnerFrames[0] + ansiReset + " Creating sandbox alice-tty", "\r" + clearLineRight, ansiGreen + "Created" + ansiReset} {
		if !strings.Contains(out, want) {
			t.Errorf("create on a terminal lacks %q:\n%q", want, out)
		}
	}

	// NO_COLOR: the same terminal, no decoration at all.
	p = startPTY(t, append(env, "NO_COLOR=1"), bin, "create", "alice-plain")
	if code := p.exitCode(); code != ExitOK {
		t.Fatalf("create: exit %d", code)
	}
	if out := p.out.String(); strings.Contains(out, "\x1b") || strings.Contains(out, spinnerFrames[0]) {
		t.Errorf("NO_COLOR still decorates:\n%q", out)
	}

	// status --watch redraws in place until Ctrl-C, then exits 0 and shows the cursor again.
	p = startPTY(t, env, bin, "status", "alice-tty", "--watch", "--interval", "1h")
	p.waitFor("CHECK")
	p.waitFor(clearScreenDown)
	out = p.out.String()
	if !strings.HasPrefix(out, hideCursor+cursorHome+clearScreenDown) || !strings.Contains(out, ansiGreen+"healthy"+ansiReset) {
		t.Errorf("watch frame on a terminal:\n%q", out)
	}
	p.send("\x03")
	if code := p.exitCode(); code != ExitOK {
		t.Errorf("Ctrl-C ends the watch with exit %d", code)
	}
	if !strings.HasSuffix(p.out.String(), showCursor) {
		t.Errorf("the cursor is shown again:\n%q", p.out.String())
	}

	// destroy asks on a terminal: no keeps the sandbox, yes destroys it.
	for _, step := range []struct {
		answer, question, input string
		code                    int
		want                    string
	}{
		{"no", "[y/N] ", "n\r", ExitFailure, "[aborted]"},
		{"yes", "Destroy sandbox alice-tty (running, owner alice, guilds: none)?", "yes\r", ExitOK, "Destroyed" + ansiReset + " sandbox"},
	} {
		p = startPTY(t, env, bin, "destroy", "alice-tty")
		p.waitFor(step.question)
		p.send(step.input)
		if code := p.exitCode(); code != step.code {
			t.Errorf("answering %s: exit %d\n%q", step.answer, code, p.out.String())
		}
		if !strings.Contains(p.out.String(), step.want) {
			t.Errorf("answering %s:\n%q", step.answer, p.out.String())
		}
	}
}
