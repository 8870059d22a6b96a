package sqsadapter_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/routing"
	"github.com/botplatform/discord-sandboxes/shared/routing/sqsadapter"
)

func dispatch(seq int, guild string) string {
	d := `{"channel_id":"1081240586957934662","content":"hi"`
	if guild != "" {
		d += `,"guild_id":"` + guild + `"`
	}
	return fmt.Sprintf(`{"op":0,"t":"MESSAGE_CREATE","s":%d,"d":%s}`, seq, d+"}")
}

// TestPollerRoutesAndDeletes runs local mode against moto: routed messages leave the ingress
// queue, failures stay on it for redrive, and a stop is clean.
func TestPollerRoutesAndDeletes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	ingress := s.queue(t, "ingress")
	// Long enough that a slow machine never sees a message come back before the poller deletes
	// it (a redelivery would route it twice), short enough for the poison to come back below.
	if _, err := s.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(ingress), Attributes: map[string]string{"VisibilityTimeout": "8"},
	}); err != nil {
		t.Fatal(err)
	}

	bodies := []string{ // more than one receive's worth
		dispatch(1, sandboxGuild), dispatch(2, ""), "garbage", dispatch(3, "1081240586043576399"),
		dispatch(4, sandboxGuild), dispatch(5, ""), `{"op":7}`, dispatch(6, sandboxGuild),
		dispatch(7, ""), dispatch(8, ""), dispatch(9, sandboxGuild), dispatch(10, ""),
	}
	ids := make([]string, len(bodies))
	for i, body := range bodies {
		out, err := s.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(ingress), MessageBody: aws.String(body)})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = aws.ToString(out.MessageId)
	}
	poison := []string{ids[2], ids[6]}
	slices.Sort(poison)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	poller := &sqsadapter.Poller{
		Queue: s.sqs, QueueURL: ingress, WaitTime: time.Second, Logger: slog.New(slog.DiscardHandler),
		Handler: lambdakit.Wrap(sqsadapter.FunctionName, nil, sqsadapter.Handler(s.router)),
	}
	go func() { done <- poller.Run(runCtx) }()

	// Production's messages, by the ingress message each carries, until the six the test sent
	// have come (a copy the SDK sent again after a lost answer carries an id of its own).
	want := []string{ids[1], ids[3], ids[5], ids[8], ids[9], ids[11]}
	var production []string
	arrived := func() bool {
		return !slices.ContainsFunc(want, func(id string) bool { return !slices.Contains(production, id) })
	}
	for deadline := time.Now().Add(20 * time.Second); !arrived() && time.Now().Before(deadline); {
		for _, m := range s.drain(t, s.production, 1) {
			production = append(production, aws.ToString(m.MessageAttributes[routing.AttributeIngressMessageID].StringValue))
		}
	}
	for deadline := time.Now().Add(20 * time.Second); len(s.streamIDs(t)) < 4 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}

	// Each event once, where it belongs. On a loaded machine moto may drop an answer to a
	// SendMessage that it did take, and the SDK sends the message again under a new id: such a
	// copy is routed too, but the router must never deliver one message twice.
	delivered := sentOnce(t, "production", production, ids)
	slices.Sort(delivered)
	slices.Sort(want)
	equal(t, "production", delivered, want)
	equal(t, "stream", sentOnce(t, "stream", s.streamIDs(t), ids), []string{ids[0], ids[4], ids[7], ids[10]})

	// Only the poison messages are left on the ingress queue (drain waits for them to come
	// back after their visibility timeout).
	var left []string
	for _, m := range s.drain(t, ingress, len(poison)) {
		left = append(left, aws.ToString(m.MessageId))
	}
	slices.Sort(left)
	equal(t, "left on the ingress queue", left, poison)
	out, err := s.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(ingress), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		t.Fatal(err)
	}
	visible, inFlight := out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]
	if visible != "0" || inFlight != fmt.Sprint(len(poison)) {
		t.Errorf("ingress queue holds %s visible and %s in flight, want 0 and %d", visible, inFlight, len(poison))
	}
}

// sentOnce returns the ingress message ids delivered to where that the test sent, failing on
// one delivered twice; ids the test did not send (copies the SDK sent again after a lost
// answer) are left out.
func sentOnce(t *testing.T, where string, delivered, sent []string) []string {
	t.Helper()
	var out []string
	for _, id := range delivered {
		if !slices.Contains(sent, id) {
			t.Logf("%s: message %s, a copy the SDK sent again after a lost answer", where, id)
			continue
		}
		if slices.Contains(out, id) {
			t.Errorf("%s: message %s delivered twice", where, id)
		}
		out = append(out, id)
	}
	return out
}
