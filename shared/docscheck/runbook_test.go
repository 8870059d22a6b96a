package docscheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/cli"
	"github.com/botplatform/discord-sandboxes/shared/config"
)

// seedProcedures are the procedures of the original runbook (docs/sandbox-runbook.md of the
// seed), which keep their numbers.
var seedProcedures = []string{
	"RB-SB-001 High active sandbox count",
	"RB-SB-002 Cleanup job failures",
	"RB-SB-003 Orphaned resources detected",
	"RB-SB-004 Event routing errors",
	"RB-SB-005 Schema creation failures",
	"RB-SB-006 Sandbox status command issues",
}

// Procedures the seed lacked: the queue and schedule alarms of this system.
var addedProcedures = []string{
	"RB-SB-007 Ingress dead-letter queue not empty",
	"RB-SB-008 Ingress backlog",
	"RB-SB-009 Cleanup not running",
}

var emergencyProcedures = []string{
	"Stop routing to all sandboxes",
	"Pause cleanup",
	"Drain the ingress dead-letter queue",
}

func TestRunbookHasEveryProcedure(t *testing.T) {
	doc := readDoc(t, "runbook.md")
	var titles []string
	for _, s := range sections(doc) {
		titles = append(titles, s.Title)
		if !strings.HasPrefix(s.Title, "RB-SB-") {
			continue
		}
		for _, part := range []string{"**Alarm", "**Confirm.**", "**Fix.**", "**Verify.**"} {
			if !strings.Contains(s.Text, part) {
				t.Errorf("runbook procedure %q has no %s part", s.Title, part)
			}
		}
		if !strings.Contains(s.Text, "<!-- runbook: ") {
			t.Errorf("runbook procedure %q has no command", s.Title)
		}
	}
	for _, want := range append(slices.Clone(seedProcedures), addedProcedures...) {
		if !slices.Contains(titles, want) {
			t.Errorf("runbook has no section %q", want)
		}
	}
	for _, want := range emergencyProcedures {
		if !strings.Contains(doc, "\n### "+want+"\n") {
			t.Errorf("runbook has no emergency procedure %q", want)
		}
	}
}

// expandBraces expands one "{a,b}" group: "<name>-{api,router}-errors" gives two names.
func expandBraces(s string) []string {
	open := strings.IndexByte(s, '{')
	closing := strings.IndexByte(s, '}')
	if open < 0 || closing < open {
		return []string{s}
	}
	var out []string
	for _, alt := range strings.Split(s[open+1:closing], ",") {
		out = append(out, s[:open]+alt+s[closing+1:])
	}
	return out
}

var alarmRefRE = regexp.MustCompile("`<name>-([a-z0-9{},-]+)`")

func TestRunbookCoversEveryAlarm(t *testing.T) {
	alarms := loadTerraform(t, repoRoot+"/terraform").alarms(t)
	if len(alarms) < 10 {
		t.Fatalf("only %d alarms found in terraform/: the parser is broken", len(alarms))
	}
	known := map[string]bool{}
	for _, a := range alarms {
		known[a.Suffix] = true
	}
	for _, name := range []string{"runbook.md", "metrics.md"} {
		doc := readDoc(t, name)
		for _, m := range alarmRefRE.FindAllStringSubmatch(doc, -1) {
			for _, suffix := range expandBraces(m[1]) {
				if !known[suffix] {
					t.Errorf("docs/%s cites alarm <name>-%s, which terraform/ does not define", name, suffix)
				}
			}
		}
	}
	doc := readDoc(t, "runbook.md")
	for _, a := range alarms {
		anchor := `<a id="` + a.Suffix + `"></a>`
		if !strings.Contains(doc, anchor) {
			t.Errorf("the runbook's alarm index has no row for alarm <name>-%s (%s)", a.Suffix, anchor)
		}
	}
}

func TestRunbookBlocksAreTagged(t *testing.T) {
	for _, b := range codeBlocks(readDoc(t, "runbook.md")) {
		if b.Lang != "sh" {
			t.Errorf("runbook line %d: a %q block; commands are ```sh blocks", b.Line, b.Lang)
		}
		if b.Tag != "local" && b.Tag != "aws" {
			t.Errorf("runbook line %d: the block is not tagged <!-- runbook: local --> or <!-- runbook: aws -->", b.Line)
		}
	}
}

// citedCommands returns every simple command of the sh blocks and of the inline code spans
// that start like a command, of the given docs.
func citedCommands(t *testing.T, docs ...string) [][]string {
	t.Helper()
	var out [][]string
	for _, name := range docs {
		doc := readDoc(t, name)
		for _, b := range codeBlocks(doc) {
			if b.Lang == "sh" {
				out = append(out, shellCommands(b.Body)...)
			}
		}
		for _, span := range inlineCode(doc) {
			for _, cmd := range shellCommands(span) {
				if len(cmd) > 1 && slices.Contains([]string{"aws", "sandbox", "terraform"}, cmd[0]) {
					out = append(out, cmd)
				}
			}
		}
	}
	return out
}

// docsWithCommands are the docs whose commands are checked.
var docsWithCommands = []string{"runbook.md", "metrics.md", "configuration.md"}

func TestCitedTerraformOutputsExist(t *testing.T) {
	outputs := loadTerraform(t, repoRoot+"/terraform").outputs
	n := 0
	for _, cmd := range citedCommands(t, docsWithCommands...) {
		if cmd[0] != "terraform" {
			continue
		}
		i := slices.Index(cmd, "output")
		if i < 0 {
			if !slices.Contains([]string{"init", "plan", "apply"}, cmd[len(cmd)-1]) {
				t.Errorf("terraform command %q: expected `terraform output [-raw] NAME`, init, plan or apply", cmd)
			}
			continue
		}
		if i == len(cmd)-1 {
			t.Errorf("terraform command %q names no output", cmd)
			continue
		}
		name := cmd[len(cmd)-1]
		if !outputs[name] {
			t.Errorf("%q names Terraform output %q, which terraform/outputs.tf does not define", strings.Join(cmd, " "), name)
		}
		n++
	}
	if n == 0 {
		t.Error("no terraform output command found in the docs: the extraction is broken")
	}
}

// The sandbox CLI parses the cited command with --help added: an unknown command or flag is
// an error, and nothing is sent.
func TestCitedSandboxCommandsExist(t *testing.T) {
	n := 0
	for _, cmd := range citedCommands(t, docsWithCommands...) {
		if cmd[0] != "sandbox" {
			continue
		}
		n++
		if err := sandboxHelp(cmd[1:]); err != nil {
			t.Errorf("%q: %v", strings.Join(cmd, " "), err)
		}
	}
	if n == 0 {
		t.Error("no sandbox command found in the docs: the extraction is broken")
	}
	if err := sandboxHelp([]string{"destroy", "x", "--no-such-flag"}); err == nil {
		t.Error("an unknown flag passed the check: it cannot find a wrong command")
	}
}

func sandboxHelp(args []string) error {
	var stdout, stderr bytes.Buffer
	env := cli.OSEnv()
	env.Stdin, env.Stdout, env.Stderr = strings.NewReader(""), &stdout, &stderr
	env.Lookup = config.MapLookup(map[string]string{})
	// "sandbox cleanup orphans" with --help also prints the usage; the exit code tells.
	if code := cli.Run(context.Background(), append(slices.Clone(args), "--help"), env); code != 0 {
		return fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	if !strings.Contains(stdout.String(), "Usage:") {
		return fmt.Errorf("no usage printed: %s", stdout.String())
	}
	return nil
}

// awsGlobalFlags are accepted by every aws command.
var awsGlobalFlags = []string{"query", "output", "region", "profile", "endpoint-url", "no-cli-pager",
	"debug", "no-paginate", "no-verify-ssl", "cli-read-timeout", "cli-connect-timeout", "color"}

// kebab turns an API parameter name into its CLI flag: QueueUrl -> queue-url,
// UUID -> uuid, MaxNumberOfMessages -> max-number-of-messages.
func kebab(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		upper := c >= 'A' && c <= 'Z'
		if upper && i > 0 {
			prev := s[i-1]
			prevLower := prev >= 'a' && prev <= 'z' || prev >= '0' && prev <= '9'
			nextLower := i+1 < len(s) && s[i+1] >= 'a' && s[i+1] <= 'z'
			prevUpper := prev >= 'A' && prev <= 'Z'
			if prevLower || prevUpper && nextLower {
				b.WriteByte('-')
			}
		}
		b.WriteString(strings.ToLower(string(c)))
	}
	return b.String()
}

func TestKebab(t *testing.T) {
	for in, want := range map[string]string{
		"QueueUrl": "queue-url", "UUID": "uuid", "MaxNumberOfMessagesPerSecond": "max-number-of-messages-per-second",
		"SourceArn": "source-arn", "ReservedConcurrentExecutions": "reserved-concurrent-executions",
	} {
		if got := kebab(in); got != want {
			t.Errorf("kebab(%q) = %q, want %q", in, got, want)
		}
	}
}

// botocoreScript prints, for each [service, operation] of its JSON input, the operation's
// parameter names (null for an unknown operation), from the AWS CLI's own service models.
const botocoreScript = `
import json, sys
import botocore.session
from botocore import xform_name
session = botocore.session.get_session()
out = {}
for service, op in json.load(sys.stdin):
    try:
        model = session.get_service_model(service)
    except Exception:
        out[service + " " + op] = None
        continue
    names = {xform_name(n, "-"): n for n in model.operation_names}
    if op not in names:
        out[service + " " + op] = None
        continue
    shape = model.operation_model(names[op]).input_shape
    out[service + " " + op] = [xform_name(m, "-") for m in shape.members] if shape else []
json.dump(out, sys.stdout)
`

// awsOperations returns the flags of each "service operation" key, nil for an operation the
// CLI does not have. It reads the service models of the AWS CLI through botocore in one
// process when python3 can import it, and otherwise asks the aws CLI itself for each
// operation's skeleton (a second per operation).
func awsOperations(t *testing.T, keys []string) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	toParams := func(members []string) map[string]bool {
		params := map[string]bool{}
		for _, m := range members {
			params[kebab(m)] = true
			params["no-"+kebab(m)] = true // boolean parameters have a negative form
		}
		return params
	}
	if python, err := exec.LookPath("python3"); err == nil && exec.Command(python, "-c", "import botocore").Run() == nil {
		var pairs [][2]string
		for _, k := range keys {
			service, op, _ := strings.Cut(k, " ")
			pairs = append(pairs, [2]string{service, op})
		}
		in, _ := json.Marshal(pairs)
		cmd := exec.Command(python, "-c", botocoreScript)
		cmd.Stdin = bytes.NewReader(in)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		raw, err := cmd.Output()
		if err != nil {
			t.Fatalf("reading the AWS CLI's service models: %v: %s", err, stderr.String())
		}
		var models map[string][]string
		if err := json.Unmarshal(raw, &models); err != nil {
			t.Fatal(err)
		}
		for k, members := range models {
			if members != nil {
				out[k] = toParams(members)
			}
		}
		return out
	}
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatal("the aws CLI is needed to check the docs' aws commands: install it (pip install awscli)")
	}
	for _, k := range keys {
		service, op, _ := strings.Cut(k, " ")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		raw, err := exec.CommandContext(ctx, "aws", service, op, "--generate-cli-skeleton", "input").Output()
		cancel()
		var skeleton map[string]any
		if err != nil || json.Unmarshal(raw, &skeleton) != nil {
			continue
		}
		members := make([]string, 0, len(skeleton))
		for m := range skeleton {
			members = append(members, m)
		}
		out[k] = toParams(members)
	}
	return out
}

// Every aws command of the docs names an operation the AWS CLI has, with flags it takes.
func TestCitedAWSCommandsExist(t *testing.T) {
	type use struct {
		cmd   []string
		flags []string
	}
	ops := map[string][]use{}
	for _, cmd := range citedCommands(t, docsWithCommands...) {
		if cmd[0] != "aws" {
			continue
		}
		if len(cmd) < 3 || strings.HasPrefix(cmd[1], "-") {
			t.Errorf("%q: expected `aws SERVICE OPERATION --flags`", strings.Join(cmd, " "))
			continue
		}
		var flags []string
		for _, w := range cmd[3:] {
			if f, ok := strings.CutPrefix(w, "--"); ok {
				f, _, _ = strings.Cut(f, "=")
				flags = append(flags, f)
			}
		}
		key := cmd[1] + " " + cmd[2]
		ops[key] = append(ops[key], use{cmd, flags})
	}
	if len(ops) < 10 {
		t.Fatalf("only %d aws operations found in the docs: the extraction is broken", len(ops))
	}
	keys := make([]string, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	params := awsOperations(t, append(keys, "sqs no-such-operation"))
	if params["sqs no-such-operation"] != nil {
		t.Error("an unknown aws operation passed the check: it cannot find a wrong command")
	}
	for _, k := range keys {
		if params[k] == nil {
			t.Errorf("aws %s is not an operation of the installed AWS CLI (cited as %q)", k, strings.Join(ops[k][0].cmd, " "))
			continue
		}
		for _, u := range ops[k] {
			for _, f := range u.flags {
				if !params[k][f] && !slices.Contains(awsGlobalFlags, f) {
					t.Errorf("%q: aws %s has no --%s", strings.Join(u.cmd, " "), k, f)
				}
			}
		}
	}
}
