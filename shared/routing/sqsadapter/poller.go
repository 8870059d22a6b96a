package sqsadapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
)

// Queue is the part of the SQS client the poller uses.
type Queue interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// Poller limits and defaults, those of SQS and of a Lambda event source mapping.
const (
	MaxWaitTime           = 20 * time.Second
	MaxMessages           = 10
	DefaultHandlerTimeout = 30 * time.Second
	maxBackoff            = 30 * time.Second
)

// Poller does outside Lambda what the SQS event source mapping does inside: it receives
// batches from a queue with long polling, hands each to the handler as an SQS event, deletes
// the messages the handler did not report as failures and leaves the failures to come back
// after their visibility timeout (and to the redrive policy).
type Poller struct {
	Queue    Queue
	QueueURL string
	Handler  lambdakit.Handler[events.SQSEvent, events.SQSEventResponse]
	// WaitTime is the long-poll wait of one receive, at most (and by default) MaxWaitTime.
	WaitTime time.Duration
	// MaxMessages per receive, at most (and by default) MaxMessages.
	MaxMessages int
	// HandlerTimeout bounds one batch, like a Lambda function timeout; default
	// DefaultHandlerTimeout.
	HandlerTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Run polls until ctx ends, then returns nil once the batch in hand is handled and deleted:
// a stop never abandons a batch halfway. Receive errors are logged and retried with backoff.
func (p *Poller) Run(ctx context.Context) error {
	log := p.logger()
	log.InfoContext(ctx, "polling the ingress queue", "queue_url", p.QueueURL)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if _, err := p.PollOnce(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			backoff = min(max(2*backoff, time.Second), maxBackoff)
			log.ErrorContext(ctx, "polling failed", logkey.Error, err, "retry_in", backoff.String())
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
	}
	log.InfoContext(ctx, "stopped polling", "queue_url", p.QueueURL)
	return nil
}

// PollOnce receives one batch (waiting up to WaitTime for it), runs the handler on it and
// deletes the messages that succeeded. It returns how many messages it received.
func (p *Poller) PollOnce(ctx context.Context) (int, error) {
	wait := p.WaitTime
	if wait <= 0 || wait > MaxWaitTime {
		wait = MaxWaitTime
	}
	maxMessages := p.MaxMessages
	if maxMessages <= 0 || maxMessages > MaxMessages {
		maxMessages = MaxMessages
	}
	out, err := p.Queue.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(p.QueueURL),
		MaxNumberOfMessages:         int32(maxMessages),
		WaitTimeSeconds:             int32(wait / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return 0, fmt.Errorf("receive from %s: %w", p.QueueURL, err)
	}
	if len(out.Messages) == 0 {
		return 0, nil
	}

	// The batch in hand is finished even when ctx ends meanwhile, within its own deadline.
	timeout := p.HandlerTimeout
	if timeout <= 0 {
		timeout = DefaultHandlerTimeout
	}
	batchCtx, cancel := context.WithTimeout(lambdakit.NewLocalContext(context.WithoutCancel(ctx)), timeout)
	defer cancel()

	ev := event(out.Messages)
	resp, err := p.Handler(batchCtx, ev)
	if err != nil {
		// Like Lambda: a failed invocation fails the whole batch, which comes back later.
		return len(out.Messages), fmt.Errorf("handler failed, batch left on the queue: %w", err)
	}
	failed := make(map[string]bool, len(resp.BatchItemFailures))
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var done []types.Message
	for _, m := range out.Messages {
		if !failed[aws.ToString(m.MessageId)] {
			done = append(done, m)
		}
	}
	return len(out.Messages), p.delete(batchCtx, done)
}

// delete removes handled messages, 10 per call, checking every entry. A message that could
// not be deleted is delivered again: routing is at least once.
func (p *Poller) delete(ctx context.Context, msgs []types.Message) error {
	var errs []error
	for start := 0; start < len(msgs); start += MaxMessages {
		group := msgs[start:min(start+MaxMessages, len(msgs))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(group))
		for i, m := range group {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
		}
		out, err := p.Queue.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: entries})
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %d messages: %w", len(group), err))
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("delete message entry %s: %s: %s",
				aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}

// event maps received messages to the SQS event Lambda would have delivered.
func event(msgs []types.Message) events.SQSEvent {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		r := events.SQSMessage{
			MessageId:              aws.ToString(m.MessageId),
			ReceiptHandle:          aws.ToString(m.ReceiptHandle),
			Body:                   aws.ToString(m.Body),
			Md5OfBody:              aws.ToString(m.MD5OfBody),
			Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
			Attributes:             m.Attributes,
			EventSource:            "aws:sqs",
		}
		if len(m.MessageAttributes) > 0 {
			r.MessageAttributes = make(map[string]events.SQSMessageAttribute, len(m.MessageAttributes))
			for name, a := range m.MessageAttributes {
				r.MessageAttributes[name] = events.SQSMessageAttribute{
					DataType:    aws.ToString(a.DataType),
					StringValue: a.StringValue,
					BinaryValue: a.BinaryValue,
				}
			}
		}
		ev.Records[i] = r
	}
	return ev
}

func (p *Poller) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}
