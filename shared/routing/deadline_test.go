package routing_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// silentServer listens on 127.0.0.1 and accepts connections but never answers, like a store
// that hangs (a Redis stuck in a long command, a network path that drops replies). It and its
// connections are closed at the end of the test.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// routeWithin routes batch on r and fails the test when Route has not returned after limit:
// a generous bound ("it returns at all"), never a measure of speed.
func routeWithin(t *testing.T, r *routing.Router, limit time.Duration, batch []routing.Message) routing.Result {
	t.Helper()
	done := make(chan routing.Result, 1)
	go func() { done <- r.Route(t.Context(), nil, batch) }()
	select {
	case res := <-done:
		return res
	case <-time.After(limit):
		t.Fatalf("Route did not return within %s", limit)
		return routing.Result{}
	}
}

// notRouted reads the "message not routed" log lines: message id -> why it was not delivered
// (the delivery error, or for poison the dead-letter send's).
func notRouted(t *testing.T, logs *bytes.Buffer) map[string]string {
	t.Helper()
	out := map[string]string{}
	for line := range strings.Lines(logs.String()) {
		var entry struct {
			Msg             string
			MessageID       string `json:"message_id"`
			Error           string
			DeadLetterError string `json:"dead_letter_error"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry.Msg == "message not routed" {
			out[entry.MessageID] = cmp.Or(entry.DeadLetterError, entry.Error)
		}
	}
	return out
}

// A Redis that accepts connections and never answers fails the batch's sandbox events only,
// at the Redis deadline: the production events and the poison are delivered meanwhile. The
// client's own timeouts are a minute and it retries: only the router's deadline can end the
// append in time, and the failures say it did (context.DeadlineExceeded).
func TestSilentRedisFailsOnlySandboxEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.sandbox(t, "stuck-stream", gRun)
	silent := redis.NewClient(&redis.Options{
		Addr: silentServer(t), DialTimeout: time.Minute, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		PoolTimeout: time.Minute, MaxRetries: 3,
	})
	t.Cleanup(func() { _ = silent.Close() })
	q := &queue{}
	dlq := &deadLetterSink{}
	var logs bytes.Buffer
	r := e.router(t, q, func(o *routing.Options) {
		o.Redis = silent // the streams; the route cache stays on the healthy Redis
		o.DeadLetterQueueURL, o.DeadLetter = deadLetterURL, dlq
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	res := routeWithin(t, r, 5*routing.DefaultRedisTimeout, []routing.Message{
		msg("s1", dispatch("MESSAGE_CREATE", 1, gRun)),
		msg("p1", dispatch("MESSAGE_CREATE", 2, gUnmapped)),
		msg("s2", dispatch("MESSAGE_CREATE", 3, gRun)),
		msg("p2", dispatch("MESSAGE_CREATE", 4, "")),
		msg("x1", `not json`),
	})
	equal(t, "failed", res.Failed, []string{"s1", "s2"})
	wantCounts(t, "errors", res.Errors, map[routing.ErrorKind]int{routing.KindDeliveryStream: 2, routing.KindMalformed: 1})
	equal(t, "production", q.acceptedIDs(), []string{"p1", "p2"})
	equal(t, "dead-lettered", dlq.ids(), []string{"x1"})
	errs := notRouted(t, &logs)
	for _, id := range []string{"s1", "s2"} {
		if err := errs[id]; !strings.Contains(err, "context deadline exceeded") {
			t.Errorf("%s failed with %q, want the deadline's error", id, err)
		}
	}
}

// An SQS endpoint that never answers fails the production events and the poison (left to the
// redrive policy) at the SQS deadline; the sandbox events are delivered meanwhile.
func TestSilentSQSFailsOnlyQueueDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sb := e.sandbox(t, "beside-stuck-sqs", gRun)
	silent := sqs.New(sqs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + silentServer(t)),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	const deadline = time.Second
	var logs bytes.Buffer
	r := e.router(t, silent, func(o *routing.Options) {
		o.DeadLetterQueueURL = deadLetterURL // through Production: the same silent client
		o.SQSTimeout = deadline
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	var batch []routing.Message
	for _, id := range []string{"p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09", "p10", "p11", "p12"} {
		batch = append(batch, msg(id, dispatch("MESSAGE_CREATE", 1, gUnmapped))) // two calls' worth
	}
	batch = append(batch, msg("s1", dispatch("MESSAGE_CREATE", 2, gRun)), msg("x1", `{"op":1}`))
	res := routeWithin(t, r, 5*deadline, batch)

	var want []string
	for _, m := range batch {
		if m.ID != "s1" {
			want = append(want, m.ID)
		}
	}
	equal(t, "failed", res.Failed, want)
	wantCounts(t, "errors", res.Errors, map[routing.ErrorKind]int{
		routing.KindDeliveryProduction: 12, routing.KindNotDispatch: 1, routing.KindDeliveryDeadLetter: 1,
	})
	equal(t, "stream", e.streamIDs(t, sb.ID), []string{"s1"})
	errs := notRouted(t, &logs)
	for _, id := range want {
		if !strings.Contains(errs[id], "context deadline exceeded") {
			t.Errorf("%s failed with %q, want the deadline's error", id, errs[id])
		}
	}
}
