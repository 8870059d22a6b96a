package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	discord "github.com/botplatform/discord-sandboxes/shared/gateway"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// localSQS is the moto endpoint the test services run, with a queue of the test's own.
type localSQS struct {
	endpoint, queue string
	client          *sqs.Client
	received        []string // the bodies receive returned, so that empty knows their copies
}

func newLocalSQS(t *testing.T) *localSQS {
	t.Helper()
	l := &localSQS{endpoint: testenv.SQSEndpoint(t), client: testenv.SQS(t)}
	l.queue = testenv.SQSQueue(t, l.client, "cli-dev", nil)
	return l
}

// sentID is the queue's message id a successful `dev send` reports, in its text or --json.
var sentID = regexp.MustCompile(`(?:: message |"message_id": ")([^"\s]+)`)

// receive takes the message the run r reports it sent, waiting a few seconds for it. On a
// loaded machine moto may drop its answer to a SendMessage it took, and the SDK sends the
// message again under a new id: such a copy carries the same body and is left out, logged;
// any other message fails the test.
func (l *localSQS) receive(t *testing.T, r result) types.Message {
	t.Helper()
	m := sentID.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("the run reports no message id: %s", r)
	}
	id := m[1]
	var found *types.Message
	var others []types.Message
	for deadline := time.Now().Add(20 * time.Second); found == nil && time.Now().Before(deadline); {
		for _, got := range l.take(t, 1) {
			if aws.ToString(got.MessageId) == id {
				found = &got
			} else {
				others = append(others, got)
			}
		}
	}
	if found == nil {
		t.Fatalf("message %s did not arrive on the queue", id)
	}
	l.received = append(l.received, aws.ToString(found.Body))
	l.copies(t, others)
	return *found
}

// copies fails unless every message of ms is a copy of one received before.
func (l *localSQS) copies(t *testing.T, ms []types.Message) {
	t.Helper()
	for _, m := range ms {
		if slices.Contains(l.received, aws.ToString(m.Body)) {
			t.Logf("message %s: a copy the SDK sent again after a lost answer", aws.ToString(m.MessageId))
		} else {
			t.Errorf("message %s on the queue, which no run sent: %s", aws.ToString(m.MessageId), aws.ToString(m.Body))
		}
	}
}

// take receives and deletes what the queue holds, waiting up to wait seconds for a message.
func (l *localSQS) take(t *testing.T, wait int32) []types.Message {
	t.Helper()
	// A short visibility timeout: when a receive's answer is lost under load (the SDK retries
	// the call, and moto has already hidden the message), the message is back in 5 s, well
	// inside the callers' deadlines, instead of SQS's default 30 s.
	out, err := l.client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(l.queue), MaxNumberOfMessages: 10, WaitTimeSeconds: wait, VisibilityTimeout: 5,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameSentTimestamp},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out.Messages {
		if _, err := l.client.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(l.queue), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	return out.Messages
}

// empty fails unless the queue holds nothing but late copies of messages received before.
func (l *localSQS) empty(t *testing.T) {
	t.Helper()
	l.copies(t, l.take(t, 0))
}

// compact is a JSON document without the indentation of --json.
func compact(t *testing.T, doc []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, doc); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// devRun runs the CLI with variables added to the stack's environment (SANDBOX_DEV_DIR always
// set, to an empty directory unless given: no test reads a stack that happens to run here),
// and stdin when given.
func (s *stack) devRun(t *testing.T, note string, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	if _, ok := vars[EnvDevDir]; !ok {
		vars[EnvDevDir] = t.TempDir()
	}
	return s.runEnv(t, note, func(e *Env) {
		for k, v := range vars {
			e.Lookup = withVar(e.Lookup, k, v)
		}
		if stdin != "" {
			e.Stdin = strings.NewReader(stdin)
		}
	}, aliceToken, args...)
}

// TestDevSend sends gateway payloads to a local SQS endpoint (moto) the ways a developer
// does: a minimal dispatch from --guild and --type, a file, stdin; with the endpoint and queue
// from the environment, from the file scripts/dev.sh writes, or from --queue-url; and refuses
// to send anywhere but a local endpoint unless --queue-url names the queue.
func TestDevSend(t *testing.T) {
	s := newStack(t)
	l := newLocalSQS(t)
	local := func() map[string]string {
		return map[string]string{EnvSQSEndpoint: l.endpoint, EnvIngressQueue: l.queue}
	}

	// A minimal MESSAGE_CREATE: the router reads the guild and the sequence from it.
	before := time.Now()
	r := s.devRun(t, "make dev running", local(), "", "dev", "send", "--guild", guild1)
	expect(t, r, ExitOK)
	m := l.receive(t, r)
	mustMatch(t, r.stdout, `^Sent MESSAGE_CREATE of guild `+guild1+` \(\d+ bytes\) to `+l.queue+`: message `+aws.ToString(m.MessageId)+"\n")
	d, err := discord.Parse([]byte(aws.ToString(m.Body)))
	if err != nil || d.Type != "MESSAGE_CREATE" || d.GuildID != guild1 || !d.HasSequence || d.Sequence < before.UnixMilli() {
		t.Errorf("the minimal dispatch %s parses as %+v, %v", aws.ToString(m.Body), d, err)
	}
	mustContain(t, r.stdout, "  "+aws.ToString(m.Body)+"\n", "sandbox route "+guild1)

	// A guild's own events carry it in d.id; --json says what was sent.
	for _, typ := range []string{"GUILD_UPDATE", "GUILD_MEMBER_ADD", "INTERACTION_CREATE"} {
		r = s.devRun(t, "make dev running", local(), "", "dev", "send", "--guild", guild2, "--type", typ, "--json")
		expect(t, r, ExitOK)
		var sent devSent
		decodeStrict(t, r.stdout, &sent)
		m = l.receive(t, r)
		d, err = discord.Parse([]byte(aws.ToString(m.Body)))
		if err != nil || d.Type != typ || d.GuildID != guild2 || sent.MessageID != aws.ToString(m.MessageId) ||
			compact(t, sent.Payload) != aws.ToString(m.Body) || sent.Bytes != len(aws.ToString(m.Body)) || sent.QueueURL != l.queue {
			t.Errorf("--type %s: sent %+v, received %s: %+v %v", typ, sent, aws.ToString(m.Body), d, err)
		}
	}

	// A file, and stdin, go as they are, whatever they hold.
	file := filepath.Join(t.TempDir(), "event.json")
	body := "{\"op\":0,\"t\":\"MESSAGE_CREATE\",\"s\":7,\n \"d\":{\"guild_id\":\"" + guild1 + "\",\"content\":\"é <&>\"}}\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r = s.devRun(t, "make dev running", local(), "", "dev", "send", file)
	expect(t, r, ExitOK)
	if got := aws.ToString(l.receive(t, r).Body); got != body {
		t.Errorf("the file arrived as %q", got)
	}
	r = s.devRun(t, "make dev running", local(), "this is not JSON", "dev", "send", "-", "--json")
	expect(t, r, ExitOK)
	if got := aws.ToString(l.receive(t, r).Body); got != "this is not JSON" || strings.Contains(r.stdout, `"payload"`) {
		t.Errorf("stdin arrived as %q; %s", got, r)
	}

	// The file scripts/dev.sh writes is enough; so is --queue-url of a local queue.
	dir := t.TempDir()
	envFile := fmt.Sprintf("# Written by scripts/dev.sh\nexport SANDBOX_DEV_PID='1'\nexport PATH='%s/bin':\"$PATH\"\n"+
		"export SQS_ENDPOINT='%s'\nexport INGRESS_QUEUE_URL='%s'\nexport AWS_ACCESS_KEY_ID='test'\nexport AWS_SECRET_ACCESS_KEY='test'\nexport AWS_REGION='us-east-1'\n",
		dir, l.endpoint, l.queue)
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(envFile), 0o600); err != nil {
		t.Fatal(err)
	}
	r = s.devRun(t, "SANDBOX_DEV_DIR of a running stack", map[string]string{EnvDevDir: dir}, "", "dev", "send", "--guild", guild1)
	expect(t, r, ExitOK)
	l.receive(t, r)
	r = s.devRun(t, "no SQS_ENDPOINT", map[string]string{}, "", "dev", "send", "--guild", guild1, "--queue-url", l.queue)
	expect(t, r, ExitOK)
	l.receive(t, r)

	// Refused before anything is sent.
	awsQueue := "https://sqs.eu-west-1.amazonaws.com/123456789012/discord-sandboxes-prod-ingress"
	for _, tc := range []struct {
		note string
		vars map[string]string
		args []string
		code int
		what string
	}{
		{"no local stack", map[string]string{}, nil, ExitUsage, "no local SQS endpoint"},
		{"SQS_ENDPOINT is AWS's", map[string]string{EnvSQSEndpoint: "https://sqs.eu-west-1.amazonaws.com", EnvIngressQueue: awsQueue}, nil, ExitUsage, "is AWS's"},
		{"INGRESS_QUEUE_URL in AWS", map[string]string{EnvSQSEndpoint: l.endpoint, EnvIngressQueue: awsQueue}, nil, ExitUsage, "is a queue in AWS"},
		{"make dev running", local(), []string{"--guild", "123"}, ExitUsage, "guild"},
		{"make dev running", local(), []string{"--guild", guild1, "--type", "message_create"}, ExitUsage, "not a gateway event type"},
		{"make dev running", local(), []string{}, ExitUsage, "give the payload as FILE"},
		{"make dev running", local(), []string{file, "--guild", guild1}, ExitUsage, "a FILE is sent as it is"},
		{"make dev running", local(), []string{filepath.Join(dir, "missing.json")}, ExitUsage, "cannot read"},
		{"make dev running", local(), []string{"-"}, ExitUsage, "is empty"},
		{"make dev running", local(), []string{"--guild", guild1, "--queue-url", "sqs://queue"}, ExitUsage, "not an http(s) queue URL"},
	} {
		args := tc.args
		if args == nil {
			args = []string{"--guild", guild1}
		}
		r := s.devRun(t, tc.note, tc.vars, "", append([]string{"dev", "send", "--json"}, args...)...)
		if r.code != tc.code || !strings.Contains(errorDoc(t, r).Message, tc.what) {
			t.Errorf("%s, %q: want exit %d saying %q, got %s", tc.note, args, tc.code, tc.what, r)
		}
	}
	l.empty(t)

	// --queue-url names a queue in AWS on purpose: the standard AWS configuration is loaded
	// for it (here there is none), never the local stack's.
	loaded := false
	r = s.runEnv(t, "make dev running", func(e *Env) {
		for k, v := range local() {
			e.Lookup = withVar(e.Lookup, k, v)
		}
		e.Lookup = withVar(e.Lookup, EnvDevDir, dir)
		e.LoadAWSConfig = func(ctx context.Context) (aws.Config, error) {
			loaded = true
			return noAWS(ctx)
		}
	}, aliceToken, "dev", "send", "--guild", guild1, "--queue-url", awsQueue)
	if r.code != ExitAuth || !loaded || !strings.Contains(r.stderr, "[credentials]") {
		t.Errorf("--queue-url of a queue in AWS: %s", r)
	}
	if got := regionOfQueueHost("sqs.eu-west-1.amazonaws.com"); got != "eu-west-1" {
		t.Errorf("region of the queue's host: %q", got)
	}

	// A stack that is not there, a queue that is not there.
	r = s.devRun(t, "make dev stopped", map[string]string{EnvSQSEndpoint: "http://127.0.0.1:1", EnvIngressQueue: "http://127.0.0.1:1/000000000000/ingress"}, "", "dev", "send", "--guild", guild1)
	if r.code != ExitUnavailable || !strings.Contains(r.stderr, "[unreachable]") || !strings.Contains(r.stderr, "make dev") {
		t.Errorf("an endpoint that is down: %s", r)
	}
	r = s.devRun(t, "make dev running", map[string]string{EnvSQSEndpoint: l.endpoint, EnvIngressQueue: l.queue + "-missing"}, "", "dev", "send", "--guild", guild1)
	if r.code != ExitNotFound || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("a queue that does not exist: %s", r)
	}
	s.writeTranscriptAs(t, ".dev")
}

// TestDevSendReachesTheSandboxStream is the local loop end to end: `dev send` puts a dispatch
// on the queue, the router takes it from there into the sandbox's stream, and `events` shows
// it, with the queue's message id and the payload as sent.
func TestDevSendReachesTheSandboxStream(t *testing.T) {
	s := newStack(t)
	l := newLocalSQS(t)
	const name = "alice-local"
	expect(t, s.run(t, aliceToken, "create", name, "--guild", guild1), ExitOK)
	r := s.devRun(t, "make dev running", map[string]string{EnvSQSEndpoint: l.endpoint, EnvIngressQueue: l.queue}, "",
		"dev", "send", "--guild", guild1, "--type", "MESSAGE_REACTION_ADD", "--json")
	expect(t, r, ExitOK)
	var sent devSent
	decodeStrict(t, r.stdout, &sent)

	m := l.receive(t, r) // what the router function's SQS event source hands it
	ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	s.route(t, routing.Message{ID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), SentAt: time.UnixMilli(ms)})

	r = s.run(t, aliceToken, "events", name, "--json", "--payload")
	expect(t, r, ExitOK)
	var ev apiwire.Event
	decodeStrict(t, r.stdout, &ev)
	if ev.MessageID != sent.MessageID || string(ev.Payload) != compact(t, sent.Payload) || ev.Type != "MESSAGE_REACTION_ADD" ||
		ev.GuildID != guild1 || ev.ReceivedAt == nil || !ev.ReceivedAt.Equal(time.UnixMilli(ms).UTC()) {
		t.Errorf("the event in the stream: %+v, sent %+v", ev, sent)
	}
	r = s.run(t, aliceToken, "events", name)
	expect(t, r, ExitOK)
	mustContain(t, r.stdout, "MESSAGE_REACTION_ADD", guild1)
}
