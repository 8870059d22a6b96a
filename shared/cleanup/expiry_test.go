package cleanup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
)

func TestExpiryWarningSentOnceEvenConcurrently(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	soon := e.create(t, "soon", 45*time.Minute)
	e.create(t, "later", 3*time.Hour)
	expired := e.createExpired(t, "gone")

	var wg sync.WaitGroup
	reports := make([]ExpiryReport, 6)
	for i := range reports {
		wg.Go(func() {
			var err error
			if reports[i], err = e.s.SendExpiryWarnings(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	sent := 0
	for _, r := range reports {
		sent += r.Sent
	}
	got := e.pub.Sent()
	if sent != 1 || len(got) != 1 || got[0].SandboxID != soon.ID {
		t.Fatalf("sent %d: %+v", sent, got)
	}
	w := got[0]
	for _, want := range []string{"soon", owner, soon.ID, "sandbox extend soon --by 12h", "45m"} {
		if !strings.Contains(w.Message(), want) {
			t.Errorf("message lacks %q:\n%s", want, w.Message())
		}
	}
	if !strings.Contains(w.Subject(), "soon") || len(w.Subject()) > 100 || strings.ContainsAny(w.Subject(), "\n\r") {
		t.Errorf("subject %q", w.Subject())
	}
	if c := e.auditCounts(t, soon.ID); c[controlplane.ActionExpiryWarned] != 1 {
		t.Errorf("audit %v", c)
	}
	if c := e.auditCounts(t, expired.ID); c[controlplane.ActionExpiryWarned] != 0 {
		t.Errorf("expired sandbox warned: %v", c)
	}

	// Extending clears the mark: the owner is warned again before the new expiry.
	if _, _, err := e.m.Extend(ctx, owner, soon.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.s.SendExpiryWarnings(ctx); r.Sent != 0 {
		t.Fatalf("warned outside the window: %+v", r)
	}
	e.clock.Add(time.Hour)
	if r, _ := e.s.SendExpiryWarnings(ctx); r.Sent != 1 || len(e.pub.Sent()) != 2 {
		t.Fatalf("after extend: %+v", r)
	}
}

// A run started through the API (Admin.RunNow) has no topic: it leaves the warnings to the
// scheduled run, which then sends them, instead of marking them sent and only logging them.
func TestAdminRunLeavesExpiryWarningsToTheScheduledRun(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	soon := e.create(t, "soon", 45*time.Minute)
	out, err := Admin{Service: e.s}.RunNow(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !out.ExpiryWarnings.Skipped || out.ExpiryWarnings.Sent != 0 || len(e.pub.Sent()) != 0 {
		t.Fatalf("admin run: %+v, sent %+v", out.ExpiryWarnings, e.pub.Sent())
	}
	if c := e.auditCounts(t, soon.ID); c[controlplane.ActionExpiryWarned] != 0 {
		t.Fatalf("the admin run claimed the warning: %v", c)
	}
	rep, err := e.s.Run(ctx, RunOptions{})
	if err != nil || rep.ExpiryWarnings.Sent != 1 || len(e.pub.Sent()) != 1 || e.pub.Sent()[0].SandboxID != soon.ID {
		t.Fatalf("scheduled run: %+v %v", rep.ExpiryWarnings, err)
	}
}

func TestExpiryWarningRetriedWhenPublishingFails(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	e.create(t, "soon", 30*time.Minute)
	e.pub.fail = errors.New("topic unavailable")
	if r, _ := e.s.SendExpiryWarnings(ctx); r.Failed != 1 || r.Sent != 0 {
		t.Fatalf("failing: %+v", r)
	}
	e.pub.fail = nil
	if r, _ := e.s.SendExpiryWarnings(ctx); r.Sent != 1 {
		t.Fatalf("retry: %+v", r)
	}
}

// TestExpiryWarningThroughSNS publishes through the real SNS client to moto's SNS, subscribed
// by an SQS queue, and reads the notification back.
func TestExpiryWarningThroughSNS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	endpoint := testenv.SQSEndpoint(t)
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	snsClient := sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: creds})
	sqsClient := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: creds})
	suffix := fmt.Sprint(time.Now().UnixNano())

	topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("expiry-" + suffix)})
	if err != nil {
		t.Fatalf("create topic on %s: %v", endpoint, err)
	}
	queue, err := sqsClient.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("expiry-" + suffix)})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := sqsClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsClient.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])}); err != nil {
		t.Fatal(err)
	}

	e := setup(t, envConfig{options: func(o *Options) {
		o.Publisher = SNSPublisher{Client: snsClient, TopicARN: aws.ToString(topic.TopicArn)}
	}})
	sb := e.create(t, "notified", 20*time.Minute)
	if r, err := e.s.SendExpiryWarnings(ctx); err != nil || r.Sent != 1 {
		t.Fatalf("send: %+v %v", r, err)
	}
	out, err := sqsClient.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: queue.QueueUrl, WaitTimeSeconds: 5, MaxNumberOfMessages: 10})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %d messages, %v", len(out.Messages), err)
	}
	var note struct {
		Subject           string
		Message           string
		MessageAttributes map[string]struct{ Value string }
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &note); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(note.Subject, "notified") || !strings.Contains(note.Message, "sandbox extend notified --by 12h") ||
		!strings.Contains(note.Message, owner) || note.MessageAttributes["sandbox_id"].Value != sb.ID {
		t.Fatalf("notification %+v", note)
	}
}
