package sqsadapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/routing"
	"github.com/botplatform/discord-sandboxes/shared/routing/sqsadapter"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// sandboxGuild is the guild the events in testdata/router-event.json map to a sandbox.
const sandboxGuild = "1081240586043576360"

// stack is a router on real PostgreSQL, Redis and SQS (moto) with one running sandbox that
// owns sandboxGuild.
type stack struct {
	rdb        redis.UniversalClient
	sqs        *sqs.Client
	production string // queue URL
	sandboxID  string
	router     *routing.Router
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := t.Context()
	pool, _ := testenv.Postgres(t)
	if _, err := controlplane.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	rdb := testenv.Redis(t)
	cache := routecache.New(rdb, 0, 0)
	manager := controlplane.NewManager(pool, controlplane.Options{
		Limits: sandbox.DefaultLimits(), Provisioner: provision.New(pool, rdb, "sandbox_template"), Routes: cache,
	})
	const owner = "arn:aws:iam::123456789012:user/alice"
	testenv.RegisterTestGuilds(t, pool, sandboxGuild)
	sb, err := manager.Create(ctx, owner, controlplane.CreateInput{Name: "adapter", Owner: owner, Guilds: []string{sandboxGuild}})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{rdb: rdb, sqs: testenv.SQS(t), sandboxID: sb.ID}
	s.production = s.queue(t, "production")
	s.router, err = routing.New(routing.Options{
		Store: manager, Cache: cache, Redis: rdb, Production: s.sqs, ProductionQueueURL: s.production,
		MemoryCacheTTL: time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// queue creates a uniquely named queue; failures come back after visibility seconds.
func (s *stack) queue(t *testing.T, role string) string {
	t.Helper()
	return testenv.SQSQueue(t, s.sqs, "adapter-"+role, map[string]string{"VisibilityTimeout": "1"})
}

// drain receives every message currently visible on a queue, waiting up to a few seconds for
// want of them, and deletes nothing.
func (s *stack) drain(t *testing.T, url string, want int) []types.Message {
	t.Helper()
	var got []types.Message
	seen := map[string]bool{}
	for deadline := time.Now().Add(20 * time.Second); len(got) < want && time.Now().Before(deadline); {
		out, err := s.sqs.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if !seen[aws.ToString(m.MessageId)] {
				seen[aws.ToString(m.MessageId)] = true
				got = append(got, m)
			}
		}
	}
	return got
}

// streamEntries reads the sandbox's whole stream.
func (s *stack) streamEntries(t *testing.T) []redis.XMessage {
	t.Helper()
	entries, err := s.rdb.XRange(t.Context(), keys.EventStream(s.sandboxID), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func (s *stack) streamIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, e := range s.streamEntries(t) {
		ids = append(ids, fmt.Sprint(e.Values[keys.StreamFieldMessageID]))
	}
	return ids
}

// testdata reads the event file name of testdata.
func testdata(t *testing.T, name string) []byte {
	t.Helper()
	payload, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// invoke runs the wrapped handler the way the Lambda runtime does, on raw event JSON.
func invoke(t *testing.T, router sqsadapter.BatchRouter, payload []byte) events.SQSEventResponse {
	t.Helper()
	emitter, err := metrics.NewEmitter(&bytes.Buffer{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	handler := lambdakit.Wrap(sqsadapter.FunctionName, emitter, sqsadapter.Handler(router))
	out, err := lambda.NewHandler(handler).Invoke(lambdakit.NewLocalContext(t.Context()), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp
}

func failures(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// The aws-lambda-go sample event carries "Message Body": not a gateway payload, so it is
// reported as a failure for the redrive policy.
func TestSampleEvent(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	resp := invoke(t, s.router, testdata(t, "sqs-event.json"))
	equal(t, "failures", failures(resp), []string{"MessageID_1"})
}

func TestRouterEvent(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	payload := testdata(t, "router-event.json")
	var ev events.SQSEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	id := func(i int) string { return ev.Records[i].MessageId }

	resp := invoke(t, s.router, payload)
	equal(t, "failures", failures(resp), []string{id(2), id(4)}) // "Message Body" and a heartbeat
	equal(t, "stream", s.streamIDs(t), []string{id(0), id(3)})

	if got := s.streamEntries(t)[0].Values[keys.StreamFieldReceivedAt]; got != "1717243200101" {
		t.Errorf("received_at %v, want the SentTimestamp 1717243200101", got)
	}

	got := map[string]string{}
	var withAttributes types.Message
	for _, m := range s.drain(t, s.production, 2) {
		ingress := aws.ToString(m.MessageAttributes[routing.AttributeIngressMessageID].StringValue)
		got[ingress] = aws.ToString(m.Body)
		if ingress == id(1) {
			withAttributes = m
		}
	}
	want := map[string]string{id(1): ev.Records[1].Body, id(5): ev.Records[5].Body}
	if !maps.Equal(got, want) {
		t.Errorf("production queue:\n got %v\nwant %v", got, want)
	}
	attrs := withAttributes.MessageAttributes
	if a := attrs["Attribute1"]; aws.ToString(a.StringValue) != "AttributeValue1" || aws.ToString(a.DataType) != "String" {
		t.Errorf("Attribute1 forwarded as %+v", a)
	}
	if a := attrs["Attribute2"]; aws.ToString(a.StringValue) != "123" || aws.ToString(a.DataType) != "Number" {
		t.Errorf("Attribute2 forwarded as %+v", a)
	}
	if a := attrs["Attribute3"]; string(a.BinaryValue) != "1100" || aws.ToString(a.DataType) != "Binary" {
		t.Errorf("Attribute3 forwarded as %+v", a)
	}
}

func TestMessages(t *testing.T) {
	v := "v"
	got := sqsadapter.Messages(events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "a", Body: "{}", Attributes: map[string]string{"SentTimestamp": "1717243200123"},
			MessageAttributes: map[string]events.SQSMessageAttribute{
				"s": {DataType: "String", StringValue: &v},
				"b": {DataType: "Binary", BinaryValue: []byte{7}},
			}},
		{MessageId: "b", Body: "[]", Attributes: map[string]string{"SentTimestamp": "soon", "MessageGroupId": "guild-42"}},
	}})
	if len(got) != 2 || got[0].ID != "a" || got[0].Body != "{}" || !got[0].SentAt.Equal(time.UnixMilli(1717243200123)) {
		t.Fatalf("first message %+v", got[0])
	}
	if a := got[0].Attributes; a["s"].StringValue != "v" || a["s"].DataType != "String" || !bytes.Equal(a["b"].BinaryValue, []byte{7}) {
		t.Errorf("attributes %+v", a)
	}
	if !got[1].SentAt.IsZero() || got[1].Attributes != nil || got[1].GroupID != "guild-42" || got[0].GroupID != "" {
		t.Errorf("second message %+v (a FIFO queue's MessageGroupId is the group; a standard queue has none)", got[1])
	}
}

// The router's -invoke: lambdakit.Serve outside Lambda runs the wrapped handler once on the file.
func TestServeInvokesEventFile(t *testing.T) {
	t.Setenv("AWS_LAMBDA_RUNTIME_API", "")
	s := newStack(t)
	var out bytes.Buffer
	handler := lambdakit.Wrap(sqsadapter.FunctionName, nil, sqsadapter.Handler(s.router))
	err := lambdakit.Serve(t.Context(), handler, lambdakit.Local{
		InvokeFile: "testdata/sqs-event.json", Output: &out,
		Run: func(context.Context) error { t.Error("the local mode ran instead of -invoke"); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"batchItemFailures":[{"itemIdentifier":"MessageID_1"}]}` + "\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

func TestPollWithoutIngressQueue(t *testing.T) {
	err := sqsadapter.Poll(nil, "", nil, nil)(context.Background())
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("INGRESS_QUEUE_URL")) {
		t.Fatalf("error %v does not name INGRESS_QUEUE_URL", err)
	}
}
