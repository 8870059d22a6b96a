// Package sqsadapter connects the routing core to SQS: it maps Lambda's SQS events to routing
// Messages and the core's failed ids to a partial batch response (ReportBatchItemFailures),
// and, outside Lambda, polls an SQS queue and applies the same handler
// (docs/architecture.md, "Local mode"). The AWS event types stop here.
package sqsadapter

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// BatchRouter routes one batch (routing.Router).
type BatchRouter interface {
	Route(ctx context.Context, rec *metrics.Recorder, batch []routing.Message) routing.Result
}

// Handler returns the router's Lambda handler: every message the core could not deliver is a
// batch item failure, and the invocation itself never fails for a message.
func Handler(router BatchRouter) lambdakit.MeteredHandler[events.SQSEvent, events.SQSEventResponse] {
	return func(ctx context.Context, rec *metrics.Recorder, ev events.SQSEvent) (events.SQSEventResponse, error) {
		result := router.Route(ctx, rec, Messages(ev))
		resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		for _, id := range result.Failed {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
		}
		return resp, nil
	}
}

// Messages maps an SQS event to routing messages, in order.
func Messages(ev events.SQSEvent) []routing.Message {
	out := make([]routing.Message, len(ev.Records))
	for i, r := range ev.Records {
		out[i] = routing.Message{
			ID:         r.MessageId,
			Body:       r.Body,
			SentAt:     sentAt(r.Attributes),
			Attributes: attributes(r.MessageAttributes),
			// Present only on a FIFO queue: the router then keeps each group's order.
			GroupID: r.Attributes["MessageGroupId"],
		}
	}
	return out
}

// sentAt reads the SentTimestamp system attribute (Unix milliseconds); zero when absent.
func sentAt(attrs map[string]string) time.Time {
	ms, err := strconv.ParseInt(attrs["SentTimestamp"], 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func attributes(in map[string]events.SQSMessageAttribute) map[string]routing.Attribute {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]routing.Attribute, len(in))
	for name, a := range in {
		attr := routing.Attribute{DataType: a.DataType, BinaryValue: a.BinaryValue}
		if a.StringValue != nil {
			attr.StringValue = *a.StringValue
		}
		out[name] = attr
	}
	return out
}
