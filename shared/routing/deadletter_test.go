package routing_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/botplatform/discord-sandboxes/shared/gateway"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// motoDeadLetterQueue creates a uniquely named queue on the test SQS endpoint, to play the
// ingress dead-letter queue; it accepts messages of up to 1 MiB, as SQS queues now may.
func motoDeadLetterQueue(t *testing.T) (*sqs.Client, string) {
	t.Helper()
	return motoQueue(t, "routing-ingress-dlq", map[string]string{"MaximumMessageSize": "1048576"})
}

func attr(m types.Message, name string) string {
	return aws.ToString(m.MessageAttributes[name].StringValue)
}

// poisonBatch holds one poison message of each kind, with a sandbox event and a production
// event; it returns the poison ids by kind.
func poisonBatch() ([]routing.Message, map[string]routing.ErrorKind) {
	batch := []routing.Message{
		msg("s1", dispatch("MESSAGE_CREATE", 1, gRun)),
		{ID: "x-malformed", Body: `{"op":0,"t":"MESSAGE_CREATE","d":{"content":"secret payload"`, Attributes: map[string]routing.Attribute{
			"shard":  {DataType: "Number", StringValue: "3"},
			"trace":  {DataType: "Binary", BinaryValue: []byte{1, 2, 3}},
			"origin": {DataType: "String.gateway", StringValue: "eu-1"},
			"empty":  {DataType: "String"}, // carries nothing: not forwarded
		}},
		msg("x-not-dispatch", `{"op":11,"d":null}`),
		msg("p1", dispatch("MESSAGE_CREATE", 2, gUnmapped)),
		msg("x-invalid-guild", `{"op":0,"t":"MESSAGE_CREATE","s":3,"d":{"guild_id":"12","content":"secret payload"}}`),
		msg("x-too-large", `{"op":0,"t":"MESSAGE_CREATE","s":4,"d":{"pad":"`+strings.Repeat("x", gateway.MaxBodyBytes)+`"}}`),
	}
	return batch, map[string]routing.ErrorKind{
		"x-malformed": routing.KindMalformed, "x-not-dispatch": routing.KindNotDispatch,
		"x-invalid-guild": routing.KindInvalidGuildID, "x-too-large": routing.KindTooLarge,
	}
}

// Poison reaches the dead-letter queue from the receive that found it, with the original body
// and attributes and the reason, and is reported handled: not a batch item failure.
func TestPoisonGoesToTheDeadLetterQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sb := e.sandbox(t, "beside-poison", gRun)
	client, dlq := motoDeadLetterQueue(t)
	q := &queue{}
	var logs bytes.Buffer
	r := e.router(t, q, func(o *routing.Options) {
		o.DeadLetterQueueURL, o.DeadLetter = dlq, client
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	batch, kinds := poisonBatch()
	res := r.Route(t.Context(), nil, batch)

	equal(t, "failed", res.Failed, nil)
	wantCounts(t, "dead-lettered", res.DeadLettered, map[routing.ErrorKind]int{
		routing.KindMalformed: 1, routing.KindNotDispatch: 1, routing.KindInvalidGuildID: 1, routing.KindTooLarge: 1,
	})
	wantCounts(t, "errors (poison is still counted)", res.Errors, map[routing.ErrorKind]int{
		routing.KindMalformed: 1, routing.KindNotDispatch: 1, routing.KindInvalidGuildID: 1, routing.KindTooLarge: 1,
	})
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"s1"})
	equal(t, "production", q.acceptedIDs(), []string{"p1"})

	got := receiveAll(t, client, dlq, len(kinds))
	equal(t, "dead-lettered ids", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(kinds)))
	bodies := map[string]string{}
	for _, m := range batch {
		bodies[m.ID] = m.Body
	}
	at := e.clock.Now().UTC().Format(routing.PoisonTimeLayout)
	for id, m := range got {
		if aws.ToString(m.Body) != bodies[id] {
			t.Errorf("%s: the dead-letter queue holds another body (%d bytes, want %d)", id, len(aws.ToString(m.Body)), len(bodies[id]))
		}
		if reason := attr(m, routing.AttributePoisonReason); reason != string(kinds[id]) {
			t.Errorf("%s: %s = %q, want %q", id, routing.AttributePoisonReason, reason, kinds[id])
		}
		if got := attr(m, routing.AttributePoisonAt); got != at {
			t.Errorf("%s: %s = %q, want %q", id, routing.AttributePoisonAt, got, at)
		}
		if _, err := time.Parse(time.RFC3339, attr(m, routing.AttributePoisonAt)); err != nil {
			t.Errorf("%s: %s is not RFC 3339: %v", id, routing.AttributePoisonAt, err)
		}
		detail := attr(m, routing.AttributePoisonDetail)
		if detail == "" || len(detail) > routing.MaxPoisonDetailBytes {
			t.Errorf("%s: %s = %q: want 1 to %d bytes", id, routing.AttributePoisonDetail, detail, routing.MaxPoisonDetailBytes)
		}
		for _, payload := range []string{"secret payload", "xxxxxxxx", `"op"`} {
			if strings.Contains(detail, payload) {
				t.Errorf("%s: %s quotes the payload: %q", id, routing.AttributePoisonDetail, detail)
			}
		}
	}
	malformed := got["x-malformed"]
	equal(t, "attributes of the malformed message", slices.Sorted(maps.Keys(malformed.MessageAttributes)), []string{
		routing.AttributeIngressMessageID, "origin", routing.AttributePoisonAt, routing.AttributePoisonDetail,
		routing.AttributePoisonReason, "shard", "trace",
	})
	if a := malformed.MessageAttributes["trace"]; aws.ToString(a.DataType) != "Binary" || !bytes.Equal(a.BinaryValue, []byte{1, 2, 3}) {
		t.Errorf("trace attribute %+v", a)
	}
	if a := malformed.MessageAttributes["origin"]; aws.ToString(a.DataType) != "String.gateway" || aws.ToString(a.StringValue) != "eu-1" {
		t.Errorf("origin attribute %+v", a)
	}

	// Each one is logged as not routed and dead-lettered, with its kind, never its payload.
	for id, kind := range kinds {
		if want := fmt.Sprintf(`"message_id":%q,"kind":%q`, id, kind); !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	if n := strings.Count(logs.String(), `"dead_lettered":true`); n != len(kinds) {
		t.Errorf("%d log lines say dead_lettered, want %d:\n%s", n, len(kinds), logs.String())
	}
	if strings.Contains(logs.String(), "secret payload") || strings.Contains(logs.String(), "xxxxxxxx") {
		t.Errorf("the log quotes a payload:\n%s", logs.String())
	}
}

// A dead-letter queue that refuses leaves the poison to the redrive policy: batch item
// failures, as without one, and the rest of the batch is delivered.
func TestDeadLetterQueueRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sb := e.sandbox(t, "beside-refusal", gRun)
	poisonIDs := []string{"x-invalid-guild", "x-malformed", "x-not-dispatch", "x-too-large"}

	t.Run("queue does not exist", func(t *testing.T) {
		client, dlq := motoDeadLetterQueue(t)
		q := &queue{}
		r := e.router(t, q, func(o *routing.Options) {
			o.DeadLetterQueueURL, o.DeadLetter = dlq+"-gone", client
		})
		batch, _ := poisonBatch()
		res := r.Route(t.Context(), nil, batch)
		equal(t, "failed", sorted(res.Failed...), poisonIDs)
		wantCounts(t, "dead-lettered", res.DeadLettered, nil)
		wantCounts(t, "errors", res.Errors, map[routing.ErrorKind]int{
			routing.KindMalformed: 1, routing.KindNotDispatch: 1, routing.KindInvalidGuildID: 1, routing.KindTooLarge: 1,
			routing.KindDeliveryDeadLetter: 4,
		})
		equal(t, "production", q.acceptedIDs(), []string{"p1"})
	})

	t.Run("whole call fails", func(t *testing.T) {
		dlq := &deadLetterSink{failCall: errors.New("AccessDenied: not authorized to perform sqs:SendMessage")}
		q := &queue{}
		r := e.router(t, q, func(o *routing.Options) { o.DeadLetterQueueURL, o.DeadLetter = deadLetterURL, dlq })
		batch, _ := poisonBatch()
		res := r.Route(t.Context(), nil, batch)
		equal(t, "failed", sorted(res.Failed...), poisonIDs)
		equal(t, "production", q.acceptedIDs(), []string{"p1"})
	})

	t.Run("one entry rejected", func(t *testing.T) {
		dlq := &deadLetterSink{reject: "x-not-dispatch"}
		r := e.router(t, &queue{}, func(o *routing.Options) { o.DeadLetterQueueURL, o.DeadLetter = deadLetterURL, dlq })
		batch, _ := poisonBatch()
		res := r.Route(t.Context(), nil, batch)
		equal(t, "failed", res.Failed, []string{"x-not-dispatch"})
		wantCounts(t, "dead-lettered", res.DeadLettered, map[routing.ErrorKind]int{
			routing.KindMalformed: 1, routing.KindInvalidGuildID: 1, routing.KindTooLarge: 1,
		})
		equal(t, "accepted by the dead-letter queue", dlq.ids(), []string{"x-invalid-guild", "x-malformed", "x-too-large"})
	})
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"s1", "s1", "s1"})
}

// Without a dead-letter queue, and by default, poison messages are batch item failures.
func TestNoDeadLetterQueueKeepsPoisonFailed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	batch, _ := poisonBatch()
	res := e.router(t, &queue{}).Route(t.Context(), nil, batch[1:3])
	equal(t, "failed", res.Failed, []string{"x-malformed", "x-not-dispatch"})
	wantCounts(t, "dead-lettered", res.DeadLettered, nil)

	if _, err := routing.New(routing.Options{
		Store: e.manager, Redis: e.rdb, Production: &queue{}, ProductionQueueURL: productionQueue, DeadLetter: &deadLetterSink{},
	}); err == nil || !strings.Contains(err.Error(), "DeadLetterQueueURL") {
		t.Errorf("New with a DeadLetter sender and no DeadLetterQueueURL: %v", err)
	}
}

// SQS allows 10 attributes per message: the router's own come first, then the sender's by name.
func TestDeadLetterAttributesFitTheLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dlq := &deadLetterSink{}
	r := e.router(t, &queue{}, func(o *routing.Options) { o.DeadLetterQueueURL, o.DeadLetter = deadLetterURL, dlq })
	m := msg("x1", `not json`)
	m.Attributes = map[string]routing.Attribute{routing.AttributePoisonReason: {DataType: "String", StringValue: "forged"}}
	for i := range 10 {
		m.Attributes[fmt.Sprintf("a%02d", i)] = routing.Attribute{DataType: "String", StringValue: fmt.Sprint(i)}
	}
	if res := r.Route(t.Context(), nil, []routing.Message{m}); len(res.Failed) != 0 {
		t.Fatalf("failed: %v", res.Failed)
	}
	if len(dlq.accepted) != 1 {
		t.Fatalf("%d messages dead-lettered, want 1", len(dlq.accepted))
	}
	sent := dlq.accepted[0]
	equal(t, "attributes", slices.Sorted(maps.Keys(sent.MessageAttributes)), []string{
		"a00", "a01", "a02", "a03", "a04", "a05", routing.AttributeIngressMessageID,
		routing.AttributePoisonAt, routing.AttributePoisonDetail, routing.AttributePoisonReason,
	})
	if got := aws.ToString(sent.MessageAttributes[routing.AttributePoisonReason].StringValue); got != string(routing.KindMalformed) {
		t.Errorf("reason %q: the sender's attribute of that name must not win", got)
	}
}

func TestPoisonMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	route := func(dlq routing.QueueSender) map[string]float64 {
		t.Helper()
		var out bytes.Buffer
		emitter, err := metrics.NewEmitter(&out, "test")
		if err != nil {
			t.Fatal(err)
		}
		rec := emitter.Begin()
		r := e.router(t, &queue{}, func(o *routing.Options) { o.DeadLetterQueueURL, o.DeadLetter = deadLetterURL, dlq })
		r.Route(t.Context(), rec, []routing.Message{msg("x1", `[]`), msg("x2", `{"op":7}`), msg("x3", `nope`)})
		if err := rec.Err(); err != nil {
			t.Fatalf("recordings rejected by the catalog: %v", err)
		}
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
		return emfValues(t, out.Bytes())
	}
	check := func(what string, got map[string]float64, want map[string]float64) {
		t.Helper()
		for key, v := range want {
			if got[key] != v {
				t.Errorf("%s: %s = %v, want %v (all: %v)", what, key, got[key], v, got)
			}
		}
	}
	// Each line is published per environment and per kind: the keys name the kind.
	check("sent", route(&deadLetterSink{}), map[string]float64{
		"PoisonDeadLettered{Kind=malformed}":       2,
		"PoisonDeadLettered{Kind=not_dispatch}":    1,
		"RoutingErrors{Kind=malformed}":            2,
		"RoutingErrors{Kind=not_dispatch}":         1,
		"RoutingErrors{Kind=delivery_dead_letter}": 0,
	})
	check("refused", route(&deadLetterSink{failCall: errors.New("ServiceUnavailable")}), map[string]float64{
		"PoisonDeadLettered{Kind=malformed}":       0,
		"RoutingErrors{Kind=malformed}":            2,
		"RoutingErrors{Kind=delivery_dead_letter}": 3,
	})
}

const deadLetterURL = "https://sqs.us-east-1.amazonaws.com/123456789012/ingress-dlq"

// deadLetterSink is an in-memory dead-letter queue: it records what it accepted, and refuses
// the whole call (failCall) or the entry of one ingress id (reject).
type deadLetterSink struct {
	failCall error
	reject   string

	mu       sync.Mutex
	accepted []types.SendMessageBatchRequestEntry
}

func (d *deadLetterSink) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	if aws.ToString(in.QueueUrl) != deadLetterURL {
		return nil, fmt.Errorf("unexpected queue %q", aws.ToString(in.QueueUrl))
	}
	if d.failCall != nil {
		return nil, d.failCall
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		if ingressID(e) == d.reject {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), SenderFault: false})
			continue
		}
		d.mu.Lock()
		d.accepted = append(d.accepted, e)
		d.mu.Unlock()
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (d *deadLetterSink) ids() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return ingressIDs(d.accepted)
}
