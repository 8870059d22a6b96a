package routing_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// motoFIFOQueue creates a uniquely named FIFO queue (its name ends in .fifo) on the test SQS
// endpoint, deduplicating by the sender's deduplication ids, as Terraform makes them.
func motoFIFOQueue(t *testing.T, role string) (*sqs.Client, string) {
	t.Helper()
	return motoQueue(t, "routing-"+role, map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "false"})
}

// received is one message as a FIFO queue handed it out.
type received struct {
	body, group, dedup, ingressID string
}

// drainFIFO receives every message of a FIFO queue, deleting each so that the next of its
// group is handed out, until the queue stays empty for one long poll.
func drainFIFO(t *testing.T, client *sqs.Client, url string) []received {
	t.Helper()
	var out []received
	for {
		res, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		for _, m := range res.Messages {
			out = append(out, received{
				body: aws.ToString(m.Body), group: m.Attributes["MessageGroupId"], dedup: m.Attributes["MessageDeduplicationId"],
				ingressID: aws.ToString(m.MessageAttributes[routing.AttributeIngressMessageID].StringValue),
			})
			if _, err := client.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// rejectingSender is the production queue with a fault: the entries whose ingress message id
// reject names are refused (as SQS refuses one entry of a batch), the others go to next.
type rejectingSender struct {
	next   routing.QueueSender
	mu     sync.Mutex
	reject map[string]bool
	calls  int
}

func (s *rejectingSender) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	pass := *in
	pass.Entries = nil
	var failed []types.BatchResultErrorEntry
	for _, e := range in.Entries {
		id := aws.ToString(e.MessageAttributes[routing.AttributeIngressMessageID].StringValue)
		s.mu.Lock()
		refuse := s.reject[id]
		s.mu.Unlock()
		if refuse {
			failed = append(failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("injected"), SenderFault: false})
			continue
		}
		pass.Entries = append(pass.Entries, e)
	}
	out := &sqs.SendMessageBatchOutput{}
	if len(pass.Entries) > 0 {
		res, err := s.next.SendMessageBatch(ctx, &pass, opts...)
		if err != nil {
			return nil, err
		}
		out = res
	}
	out.Failed = append(out.Failed, failed...)
	return out, nil
}

// inGroup is a message of the FIFO ingress queue: id, group and a dispatch of guild.
func inGroup(id, group string, seq int, guild string) routing.Message {
	m := msg(id, dispatch("MESSAGE_CREATE", seq, guild))
	m.GroupID = group
	return m
}

// From a FIFO ingress, a message that fails holds back exactly the later messages of its own
// group, which are not delivered: the other groups go on. The queue's redelivery of the held
// messages completes the group in order, with no gap and no duplicate in the stream or on the
// production FIFO queue, which receives each event's ingress group and a deduplication id
// derived from its ingress message; a batch delivered twice adds nothing to production.
func TestFIFOFailureHoldsBackOnlyItsGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sb := e.sandbox(t, "fifo", gRun)
	client, production := motoFIFOQueue(t, "production")
	sender := &rejectingSender{next: client, reject: map[string]bool{"b2": true}}
	r := e.router(t, sender, func(o *routing.Options) { o.ProductionQueueURL = production })

	// Four groups interleaved: a sandbox guild's (a), a production guild's (b), events
	// without a guild (c), and a shard's (d) mixing the sandbox's guild and a production one;
	// b2 and d2 fail at the production queue.
	sender.reject["d2"] = true
	batch := []routing.Message{
		inGroup("a1", "ga", 1, gRun), inGroup("b1", "gb", 1, gUnmapped), inGroup("c1", "gc", 1, ""),
		inGroup("d1", "gd", 1, gRun), inGroup("a2", "ga", 2, gRun), inGroup("b2", "gb", 2, gUnmapped),
		inGroup("d2", "gd", 2, gUnmapped), inGroup("c2", "gc", 2, ""), inGroup("a3", "ga", 3, gRun),
		inGroup("b3", "gb", 3, gUnmapped), inGroup("d3", "gd", 3, gRun), inGroup("b4", "gb", 4, gUnmapped),
	}
	res := r.Route(t.Context(), nil, batch)
	equal(t, "failed", res.Failed, []string{"b2", "d2", "b3", "d3", "b4"})
	if res.Blocked != 3 || res.Errors[routing.KindDeliveryProduction] != 2 {
		t.Fatalf("blocked %d, errors %v: want b3, b4 held back behind b2 and d3 behind d2", res.Blocked, res.Errors)
	}
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"a1", "d1", "a2", "a3"})
	for _, entry := range e.streamEntries(t, sb.ID) {
		if want := "g" + entry.Values[keys.StreamFieldMessageID].(string)[:1]; entry.Values[keys.StreamFieldGroupID] != want {
			t.Errorf("stream entry %v: group_id %v, want %s", entry.ID, entry.Values[keys.StreamFieldGroupID], want)
		}
	}

	// The queue delivers the held messages again, in order; the fault is gone. The stream
	// completes group d after d1 with no gap and no duplicate.
	sender.mu.Lock()
	sender.reject = nil
	sender.mu.Unlock()
	var held []routing.Message
	for _, m := range batch {
		if slices.Contains(res.Failed, m.ID) {
			held = append(held, m)
		}
	}
	retry := r.Route(t.Context(), nil, held)
	if len(retry.Failed) != 0 || retry.Blocked != 0 {
		t.Fatalf("retry: %+v", retry)
	}
	equal(t, "stream after the retry", e.streamIDs(t, sb.ID), []string{"a1", "d1", "a2", "a3", "d3"})
	// The whole first batch delivered once more (an expired visibility timeout): production's
	// deduplication drops every copy.
	again := r.Route(t.Context(), nil, batch)
	if len(again.Failed) != 0 {
		t.Fatalf("second delivery: %+v", again)
	}

	got := drainFIFO(t, client, production)
	byGroup := map[string][]string{}
	for _, m := range got {
		if m.dedup != m.ingressID || m.ingressID == "" {
			t.Errorf("production message %s: deduplication id %q, want its ingress message id", m.ingressID, m.dedup)
		}
		byGroup[m.group] = append(byGroup[m.group], m.ingressID)
	}
	equal(t, "production group gb", byGroup["gb"], []string{"b1", "b2", "b3", "b4"})
	equal(t, "production group gc", byGroup["gc"], []string{"c1", "c2"})
	equal(t, "production group gd", byGroup["gd"], []string{"d2"})
	if len(got) != 7 {
		t.Errorf("production received %d messages, want 7 (no duplicate): %+v", len(got), got)
	}
}

// A poison message of a FIFO group goes to the dead-letter queue (a FIFO queue too, with the
// message's group) and does not hold its group back: the next messages of the group are
// delivered after it. When the dead-letter send fails, the poison is a batch item failure and
// holds its group back like any other.
func TestFIFOPoisonDoesNotBlockItsGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sb := e.sandbox(t, "fifo-poison", gRun)
	client, production := motoFIFOQueue(t, "production")
	_, dlq := motoFIFOQueue(t, "dlq")
	r := e.router(t, client, func(o *routing.Options) {
		o.ProductionQueueURL, o.DeadLetterQueueURL = production, dlq
	})
	poison := routing.Message{ID: "p1", Body: "not json", GroupID: "ga"}
	res := r.Route(t.Context(), nil, []routing.Message{
		inGroup("a1", "ga", 1, gRun), poison, inGroup("a2", "ga", 2, gRun), inGroup("b1", "gb", 1, gUnmapped),
	})
	if len(res.Failed) != 0 || res.DeadLettered[routing.KindMalformed] != 1 {
		t.Fatalf("result %+v", res)
	}
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"a1", "a2"})
	dead := drainFIFO(t, client, dlq)
	if len(dead) != 1 || dead[0].group != "ga" || dead[0].body != "not json" || dead[0].dedup != "p1" {
		t.Fatalf("dead-letter queue: %+v", dead)
	}

	// The dead-letter queue refuses the send: the poison fails, and a2 behind it.
	failing := &rejectingSender{next: client, reject: map[string]bool{"p2": true}}
	r = e.router(t, failing, func(o *routing.Options) {
		o.ProductionQueueURL, o.DeadLetterQueueURL = production, dlq
	})
	res = r.Route(t.Context(), nil, []routing.Message{
		inGroup("a3", "ga", 3, gRun), {ID: "p2", Body: "not json", GroupID: "ga"}, inGroup("a4", "ga", 4, gRun),
		inGroup("b2", "gb", 2, gUnmapped),
	})
	equal(t, "failed", res.Failed, []string{"p2", "a4"})
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"a1", "a2", "a3"})
}

// A standard batch (no groups) keeps its behaviour: a failure holds nothing back.
func TestStandardBatchHoldsNothingBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	q := &queue{reject: func(id string) bool { return id == "b2" }}
	r := e.router(t, q)
	res := r.Route(t.Context(), nil, []routing.Message{
		msg("b1", dispatch("MESSAGE_CREATE", 1, gUnmapped)), msg("b2", dispatch("MESSAGE_CREATE", 2, gUnmapped)),
		msg("b3", dispatch("MESSAGE_CREATE", 3, gUnmapped)),
	})
	equal(t, "failed", res.Failed, []string{"b2"})
	if res.Blocked != 0 || !slices.Equal(q.acceptedIDs(), []string{"b1", "b3"}) {
		t.Fatalf("blocked %d, production %v", res.Blocked, q.acceptedIDs())
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, entry := range q.accepted {
		if entry.MessageGroupId != nil || entry.MessageDeduplicationId != nil {
			t.Fatalf("a standard production queue got a message group or deduplication id: %+v", entry)
		}
	}
}
