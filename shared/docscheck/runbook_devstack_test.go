//go:build devstack

// The runbook's local procedures, run for real against a running dev stack. This file needs
// the stack, so it is built only with the devstack tag; scripts/demo-test.sh (part of
// `make test`) runs it after the demo:
//
//	SANDBOX_DEV_DIR=.run/dev go test -tags devstack -run TestRunbookLocalProcedures ./shared/docscheck

package docscheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// devStack is a running `make dev` stack: commands run in a shell that sourced its env file,
// from a directory where the runbook's ". .run/dev/env" finds that file.
type devStack struct {
	t   *testing.T
	dir string // working directory of the commands
}

func openDevStack(t *testing.T) *devStack {
	t.Helper()
	devDir := os.Getenv("SANDBOX_DEV_DIR")
	if devDir == "" {
		t.Fatal("SANDBOX_DEV_DIR is not set: run this test through scripts/demo-test.sh, or against `make dev` with SANDBOX_DEV_DIR=.run/dev")
	}
	if !filepath.IsAbs(devDir) { // relative to the repository, as make dev prints it
		abs, err := filepath.Abs(filepath.Join(repoRoot, devDir))
		if err != nil {
			t.Fatal(err)
		}
		devDir = abs
	}
	if _, err := os.Stat(filepath.Join(devDir, "env")); err != nil {
		t.Fatalf("no running dev stack in %s (its env file is missing): start it with make dev", devDir)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(devDir, filepath.Join(dir, ".run", "dev")); err != nil {
		t.Fatal(err)
	}
	return &devStack{t: t, dir: dir}
}

// prelude makes a shell what the runbook's local setup describes, and points the aws CLI at
// the stack's SQS endpoint (moto), which the runbook's commands leave to the environment.
const prelude = `set -euo pipefail
. .run/dev/env
aws() { command aws --endpoint-url "$SQS_ENDPOINT" "$@"; }
`

// blockMarker precedes each block's output.
const blockMarker = "::runbook-block"

// run runs script in bash after the prelude, with vars exported, and returns its output.
func (s *devStack) run(script string, vars map[string]string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var exports strings.Builder
	for k, v := range vars {
		fmt.Fprintf(&exports, "export %s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", prelude+exports.String()+script)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (s *devStack) mustRun(script string, vars map[string]string) string {
	s.t.Helper()
	out, err := s.run(script, vars)
	if err != nil {
		s.t.Fatalf("%v\n--- script\n%s\n--- output\n%s", err, script, out)
	}
	return out
}

// randomGuild returns a snowflake-shaped guild id no other sandbox uses.
func randomGuild(t *testing.T) string {
	n, err := rand.Int(rand.Reader, big.NewInt(1e17))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("19%017d", n)
}

// testSandbox is the sandbox the procedures act on.
type testSandbox struct{ name, guild string }

// ensureSandbox returns sb when it is still running, and otherwise a new running sandbox.
func (s *devStack) ensureSandbox(sb testSandbox) testSandbox {
	s.t.Helper()
	if sb.name != "" {
		out := s.mustRun(`sandbox status "$SANDBOX" --json | jq -r .sandbox.status`, map[string]string{"SANDBOX": sb.name})
		if strings.TrimSpace(out) == "running" {
			return sb
		}
	}
	sb = testSandbox{name: fmt.Sprintf("rb-test-%d", time.Now().UnixNano()%1e9), guild: randomGuild(s.t)}
	// The guild is registered first, as an admin does: a sandbox maps only test guilds.
	out := s.mustRun(`SANDBOX_API_TOKEN=$SANDBOX_ADMIN_TOKEN sandbox guilds register "$GUILD_ID" >/dev/null
sandbox create "$SANDBOX" --guild "$GUILD_ID" --ttl 1h --json`,
		map[string]string{"SANDBOX": sb.name, "GUILD_ID": sb.guild})
	var created struct{ Status string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Status != "running" {
		s.t.Fatalf("creating the test sandbox: %v\n%s", err, out)
	}
	return sb
}

// TestRunbookLocalProcedures runs every block tagged <!-- runbook: local --> of
// docs/runbook.md against the dev stack, section by section in document order. The Setup
// section's blocks run first in every section's shell (they define NAME, SANDBOX_ID, ...);
// each section acts on a running sandbox with a mapped guild (SANDBOX, GUILD_ID), created
// anew when an earlier section destroyed it.
func TestRunbookLocalProcedures(t *testing.T) {
	s := openDevStack(t)
	doc := readDoc(t, "runbook.md")

	var setup strings.Builder
	type procedure struct {
		title  string
		blocks []codeBlock
	}
	var procedures []procedure
	for _, sec := range sections(doc) {
		var local []codeBlock
		for _, b := range codeBlocks(sec.Text) {
			b.Line += sec.Line
			if b.Tag == "local" {
				local = append(local, b)
			}
		}
		if sec.Title == "Setup" {
			for _, b := range local {
				setup.WriteString(b.Body)
			}
			continue
		}
		if len(local) > 0 {
			procedures = append(procedures, procedure{sec.Title, local})
		}
	}
	if setup.Len() == 0 || len(procedures) < 8 {
		t.Fatalf("found %d procedures with local commands and %d setup bytes: the runbook's structure changed", len(procedures), setup.Len())
	}

	// The dead-letter procedures need a message to look at, as the demo's poison message was.
	s.mustRun(`printf 'not a gateway payload' | sqsctl send -queue "$INGRESS_DLQ_URL" >/dev/null`, nil)

	var sb testSandbox
	var created []string
	defer func() {
		for _, name := range created {
			if out, err := s.run(`sandbox destroy "$SANDBOX" --yes >/dev/null`, map[string]string{"SANDBOX": name}); err != nil {
				t.Errorf("destroying test sandbox %s: %v\n%s", name, err, out)
			}
		}
	}()
	for _, p := range procedures {
		t.Run(p.title, func(t *testing.T) {
			prev := sb.name
			sb = s.ensureSandbox(sb)
			if sb.name != prev {
				created = append(created, sb.name)
			}
			vars := map[string]string{"SANDBOX": sb.name, "GUILD_ID": sb.guild}
			// One shell per procedure, as an operator would run it; a marker before each block
			// tells which one failed.
			script := setup.String()
			for _, b := range p.blocks {
				script += fmt.Sprintf("printf '%s %d\\n'\n%s", blockMarker, b.Line, b.Body)
			}
			start := time.Now()
			out, err := s.run(script, vars)
			if err != nil {
				line, block := "?", ""
				if i := strings.LastIndex(out, blockMarker+" "); i >= 0 {
					line, _, _ = strings.Cut(out[i+len(blockMarker)+1:], "\n")
					for _, b := range p.blocks {
						if fmt.Sprint(b.Line) == line {
							block = b.Body
						}
					}
				}
				t.Fatalf("runbook.md line %s: %v\n--- block\n%s--- output\n%s", line, err, block, out)
			}
			t.Logf("%d blocks ran in %s", len(p.blocks), time.Since(start).Round(time.Millisecond))
		})
	}
}
