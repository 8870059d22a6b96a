package routing

import (
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/botplatform/discord-sandboxes/shared/logkey"
)

// The message attributes of a poison message the router sends to the ingress dead-letter
// queue (Options.DeadLetterQueueURL), besides the original body and the sender's attributes.
// This is their one home; docs/runbook.md (RB-SB-007) shows how to read them. The message's
// id on the ingress queue travels in AttributeIngressMessageID, as on production events.
const (
	// AttributePoisonReason is the poison kind: malformed, not_dispatch, too_large or
	// invalid_guild_id (the Kind dimension of RoutingErrors).
	AttributePoisonReason = "sandbox-poison-reason"
	// AttributePoisonDetail is the parser's reason, at most MaxPoisonDetailBytes; it never
	// quotes the payload.
	AttributePoisonDetail = "sandbox-poison-detail"
	// AttributePoisonAt is when the router dead-lettered the message, RFC 3339 in UTC with
	// milliseconds (PoisonTimeLayout).
	AttributePoisonAt = "sandbox-poison-at"
)

// MaxPoisonDetailBytes bounds AttributePoisonDetail.
const MaxPoisonDetailBytes = 256

// PoisonTimeLayout is the layout of AttributePoisonAt: RFC 3339 with milliseconds.
const PoisonTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// poisonMessage is a poison message of the batch, set aside for the dead-letter queue.
type poisonMessage struct {
	index int // in the batch
	kind  ErrorKind
	err   error
}

// poisoned counts poison message i and sets it aside for the dead-letter queue (deliver sends
// it there); without a dead-letter queue it fails, for the redrive policy to move it.
func (b *batchState) poisoned(i int, kind ErrorKind, err error) {
	if b.router.deadLetter == nil {
		b.fail(i, kind, err)
		return
	}
	b.result.Errors[kind]++
	b.poison = append(b.poison, poisonMessage{index: i, kind: kind, err: err})
}

// deadLetters are the poison messages as the dead-letter queue receives them.
func (b *batchState) deadLetters(poison []poisonMessage) []*Message {
	if len(poison) == 0 {
		return nil
	}
	at := b.router.now()
	out := make([]*Message, len(poison))
	for k, p := range poison {
		out[k] = deadLetterMessage(&b.messages[p.index], p.kind, p.err, at)
	}
	return out
}

// deadLettered records the outcome of poison message p's dead-letter send: handled, or, when
// the send failed, a batch item failure as without a dead-letter queue, so nothing is lost.
// Either way it is logged as not routed, with its kind and reason, never its payload.
func (b *batchState) deadLettered(p poisonMessage, sendErr error) {
	attrs := []any{logkey.MessageID, b.messages[p.index].ID, "kind", string(p.kind), logkey.Error, p.err.Error()}
	if sendErr != nil {
		b.failed[p.index] = true
		b.result.Errors[KindDeliveryDeadLetter]++
		b.router.log.WarnContext(b.ctx, "message not routed",
			append(attrs, "dead_lettered", false, "dead_letter_error", sendErr.Error())...)
		return
	}
	b.result.DeadLettered[p.kind]++
	b.router.log.WarnContext(b.ctx, "message not routed", append(attrs, "dead_lettered", true)...)
}

// deadLetterMessage is m as the dead-letter queue receives it: the same body, the router's
// attributes, and as many of the sender's attributes (valid ones, by name) as SQS's 10 per
// message leave room for. A sender's attribute of the same name as one of the router's is
// replaced: a message redriven from the dead-letter queue and poison again says why now.
func deadLetterMessage(m *Message, kind ErrorKind, err error, at time.Time) *Message {
	attrs := make(map[string]Attribute, maxAttributes)
	str := func(v string) Attribute { return Attribute{DataType: stringType, StringValue: v} }
	attrs[AttributePoisonReason] = str(string(kind))
	if detail := poisonDetail(err); detail != "" {
		attrs[AttributePoisonDetail] = str(detail)
	}
	attrs[AttributePoisonAt] = str(at.UTC().Format(PoisonTimeLayout))
	if m.ID != "" {
		attrs[AttributeIngressMessageID] = str(m.ID)
	}
	for _, name := range slices.Sorted(maps.Keys(m.Attributes)) {
		if len(attrs) == maxAttributes {
			break
		}
		a := m.Attributes[name]
		if _, taken := attrs[name]; taken || a.DataType == "" || a.StringValue == "" && len(a.BinaryValue) == 0 {
			continue
		}
		attrs[name] = a
	}
	return &Message{ID: m.ID, Body: m.Body, SentAt: m.SentAt, Attributes: attrs, GroupID: m.GroupID}
}

// poisonDetail is err's text fit for an SQS string attribute: at most MaxPoisonDetailBytes,
// cut at a character boundary, and only characters SQS accepts. Parse errors name what is
// wrong and where, never the payload.
func poisonDetail(err error) string {
	if err == nil {
		return ""
	}
	s := strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF {
			return r
		}
		return '?'
	}, strings.ToValidUTF8(err.Error(), "?"))
	if len(s) <= MaxPoisonDetailBytes {
		return s
	}
	const ellipsis = "…"
	cut := MaxPoisonDetailBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
