package routing

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// QueueSender is the part of the SQS client that delivers production events.
type QueueSender interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// SQS limits of one SendMessageBatch call, and of attributes on one message. 256 KiB is
// the historical batch size limit, still the one of queues created before SQS raised it.
const (
	maxBatchEntries = 10
	maxBatchBytes   = 256 * 1024
	maxAttributes   = 10
)

// DefaultProductionConcurrency bounds the SendMessageBatch calls in flight; it matches the
// SDK HTTP client's idle connections per host, so calls reuse connections.
const DefaultProductionConcurrency = 10

// AttributeIngressMessageID is the message attribute, on every event sent to production,
// carrying the id the message had on the ingress queue, so that the production bot's logs
// can be traced back to the router's. It is added only when the sender's own attributes
// leave room for it (SQS allows 10 per message).
const AttributeIngressMessageID = "ingress_message_id"

// entryIDs are the batch entry ids, by position in the group: always valid SQS entry ids,
// whatever the ingress message ids look like, and allocated once.
var entryIDs = func() (ids [maxBatchEntries]string) {
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	return ids
}()

// stringType is the data type of the attribute the router adds.
var stringType = "String"

// DefaultProductionGroup is the message group of the events sent to a FIFO production queue
// that came without one (from a standard ingress queue): they keep the order they had.
const DefaultProductionGroup = "ingress"

// maxDeduplicationID is SQS's limit on a message deduplication id.
const maxDeduplicationID = 128

// productionSender delivers events to the production queue; the router's dead-letter sender
// is one too, pointed at the ingress dead-letter queue.
type productionSender struct {
	queue QueueSender
	url   string
	// fifo: the queue is a FIFO queue (its name ends in .fifo): every entry carries its
	// ingress message group and a deduplication id derived from the ingress message, so a
	// batch the router delivers again within SQS's deduplication window (5 minutes) adds
	// nothing.
	fifo        bool
	name        string // of the queue, in errors: "production queue"
	concurrency int
	// timeout bounds one send, all its calls together (the SDK honours the context deadline
	// through its retries); zero sets no deadline of its own.
	timeout time.Duration
}

// send delivers msgs in groups of at most 10 entries (and 256 KiB), with at most
// p.concurrency calls in flight, and returns one result per message. SendMessageBatch
// succeeds as a call even when some entries failed: every entry's result is checked. The
// calls share one deadline, p.timeout from now: a message whose call did not finish by then
// fails with an error wrapping context.DeadlineExceeded.
func (p *productionSender) send(ctx context.Context, msgs []*Message) []error {
	errs := make([]error, len(msgs))
	if len(msgs) == 0 {
		return errs
	}
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	groups := batchGroups(msgs)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(p.concurrency, len(groups)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(groups); i = int(next.Add(1) - 1) {
				lo, hi := groups[i][0], groups[i][1]
				p.sendGroup(ctx, msgs[lo:hi], errs[lo:hi])
			}
		})
	}
	wg.Wait()
	return errs
}

// batchGroups splits msgs into consecutive [lo, hi) ranges that each fit one call.
func batchGroups(msgs []*Message) [][2]int {
	groups := make([][2]int, 0, (len(msgs)+maxBatchEntries-1)/maxBatchEntries)
	for lo := 0; lo < len(msgs); {
		hi, size := lo, 0
		for hi < len(msgs) && hi-lo < maxBatchEntries {
			n := messageSize(msgs[hi])
			if hi > lo && size+n > maxBatchBytes {
				break
			}
			size += n
			hi++
		}
		groups = append(groups, [2]int{lo, hi})
		lo = hi
	}
	return groups
}

// sendGroup sends one SendMessageBatch call. The request points into the messages rather
// than copying them: the SDK only reads its input.
func (p *productionSender) sendGroup(ctx context.Context, group []*Message, errs []error) {
	entries := make([]types.SendMessageBatchRequestEntry, len(group))
	for i, m := range group {
		entries[i] = types.SendMessageBatchRequestEntry{
			Id:                &entryIDs[i],
			MessageBody:       &m.Body,
			MessageAttributes: productionAttributes(m),
		}
		if p.fifo {
			entries[i].MessageGroupId = aws.String(cmp.Or(m.GroupID, DefaultProductionGroup))
			entries[i].MessageDeduplicationId = aws.String(deduplicationID(m.ID))
		}
	}
	out, err := p.queue.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(p.url), Entries: entries})
	if err != nil {
		if late := ctx.Err(); late != nil && !errors.Is(err, late) {
			err = fmt.Errorf("%w: %w", late, err) // the deadline is the cause, whatever the SDK says
		}
		for i := range errs {
			errs[i] = fmt.Errorf("send message batch to the %s: %w", p.name, err)
		}
		return
	}
	answered := make([]bool, len(group))
	for _, s := range out.Successful {
		if i, ok := entryIndex(s.Id, len(group)); ok {
			answered[i] = true
		}
	}
	for _, f := range out.Failed {
		if i, ok := entryIndex(f.Id, len(group)); ok {
			answered[i] = true
			errs[i] = fmt.Errorf("%s rejected the message: %s: %s (sender fault: %t)",
				p.name, aws.ToString(f.Code), aws.ToString(f.Message), f.SenderFault)
		}
	}
	for i, ok := range answered {
		if !ok {
			errs[i] = fmt.Errorf("%s returned no result for the message", p.name)
		}
	}
}

// deduplicationID is the deduplication id of the event of ingress message id on a FIFO queue:
// the id itself (SQS's message ids are UUIDs), or its SHA-256 when it would not fit SQS's rule
// (at most 128 printable ASCII characters).
func deduplicationID(id string) string {
	ok := id != "" && len(id) <= maxDeduplicationID
	for i := 0; ok && i < len(id); i++ {
		ok = id[i] > ' ' && id[i] <= '~'
	}
	if ok {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func entryIndex(id *string, n int) (int, bool) {
	i, err := strconv.Atoi(aws.ToString(id))
	return i, err == nil && i >= 0 && i < n
}

// productionAttributes forwards the sender's attributes and adds the ingress message id.
func productionAttributes(m *Message) map[string]types.MessageAttributeValue {
	attrs := make(map[string]types.MessageAttributeValue, len(m.Attributes)+1)
	for name, a := range m.Attributes {
		// SQS refuses an attribute without a type or without the value its type calls for;
		// such an attribute carries nothing, and forwarding it would fail the whole message.
		v := types.MessageAttributeValue{DataType: aws.String(a.DataType)}
		switch {
		case a.DataType == "":
			continue
		case strings.HasPrefix(a.DataType, "Binary"):
			if len(a.BinaryValue) == 0 {
				continue
			}
			v.BinaryValue = a.BinaryValue
		default: // String and Number, with or without a custom suffix
			if a.StringValue == "" {
				continue
			}
			v.StringValue = aws.String(a.StringValue)
		}
		attrs[name] = v
	}
	if _, taken := attrs[AttributeIngressMessageID]; !taken && len(attrs) < maxAttributes && m.ID != "" {
		attrs[AttributeIngressMessageID] = types.MessageAttributeValue{DataType: &stringType, StringValue: &m.ID}
	}
	return attrs
}

// messageSize is what SQS counts against the batch size: the body and every attribute's
// name, type and value.
func messageSize(m *Message) int {
	n := len(m.Body) + len(AttributeIngressMessageID) + len(stringType) + len(m.ID)
	for name, a := range m.Attributes {
		n += len(name) + len(a.DataType) + len(a.StringValue) + len(a.BinaryValue)
	}
	return n
}
