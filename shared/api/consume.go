package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The consume routes (docs/api.md, "Consuming through the API"): consumer-group reads,
// claims and acknowledgements of a sandbox's stream through the API, for a developer outside
// the VPC (`sandbox forward`). Like the events route they read only the addressed sandbox's
// own stream, for its owner, the developers it is shared with and admins, and bound what
// they take of entries the sandbox's own Redis user may have written.

const (
	// defaultConsumeCount and maxConsumeCount bound the entries of one read or claim.
	defaultConsumeCount = 10
	maxConsumeCount     = 100
	// maxConsumeAckIDs bounds the ids of one acknowledgement.
	maxConsumeAckIDs = 500
	// maxConsumeWait bounds a read's wait for new entries; consumeWaitMargin is kept free
	// before the invocation's deadline (the api function's timeout, 15 s by default), so that
	// a waiting read always answers.
	maxConsumeWait    = 20 * time.Second
	consumeWaitMargin = 2 * time.Second
	// consumeBudget bounds the payload bytes of one answer: base64 makes them 4 MiB of JSON,
	// within a Lambda answer's 6 MB.
	consumeBudget = 3 << 20
	// defaultClaimIdle, minClaimIdle and maxClaimIdle bound a claim's min_idle.
	defaultClaimIdle = time.Minute
	minClaimIdle     = time.Second
	maxClaimIdle     = 24 * time.Hour
)

// consumable refuses a sandbox that is not running: its stream is gone or about to be.
func consumable(sb *sandbox.Sandbox) error {
	if sb.Status != sandbox.StatusRunning {
		return sandbox.Errorf(sandbox.CodeInvalidTransition,
			"sandbox %q is %s: only a running sandbox's events can be consumed", sb.Name, sb.Status)
	}
	return nil
}

// consumeGroup validates a group name, "" being the sandbox's own group.
func consumeGroup(g string) (string, error) {
	if g == "" {
		return keys.EventsGroup, nil
	}
	return g, sandbox.ValidateConsumerName("group", g)
}

// consumeCount reads an optional count.
func consumeCount(n *int) (int, error) {
	if n == nil {
		return defaultConsumeCount, nil
	}
	if *n < 1 || *n > maxConsumeCount {
		return 0, sandbox.InvalidField("count", "count must be an integer between 1 and %d", maxConsumeCount)
	}
	return *n, nil
}

// consumeID validates an entry id given as field, written back as Redis writes it.
func consumeID(field, s string) (string, error) {
	id, ok := keys.ParseStreamID(s)
	if !ok {
		return "", sandbox.InvalidField(field, "%s must be a stream entry id like 1718000000000-0, not %q", field, truncate(s, 40))
	}
	return id.String(), nil
}

// consumeRead answers POST /v1/sandboxes/{name}/events/read.
func (h *Handler) consumeRead(w http.ResponseWriter, r *http.Request, c caller) error {
	sb, args, err := addressedBody(h, r, c, parseConsumeRead)
	if err != nil {
		return err
	}
	if err := consumable(sb); err != nil {
		return err
	}
	ctx := r.Context()
	if args.Wait > 0 {
		args.Wait = boundedWait(ctx, args.Wait)
	}
	args.Create = true
	got, err := h.deps.Resources.ReadGroup(ctx, sb.ID, args)
	if err != nil {
		return h.consumeError(ctx, sb, args.Group, err)
	}
	page := h.consumePage(sb, args.Group, args.Consumer, got)
	page.GroupCreated = got.Created
	if got.Created {
		h.log.InfoContext(ctx, "consumer group created through the API", logkey.Sandbox, sb.ID, "group", args.Group)
	}
	// More: entries were delivered but left out, or a pending read filled its count.
	if n := len(page.Entries); n < len(got.Entries) || (args.After != "" && n+len(page.Deleted) >= args.Count) {
		page.More = true
	}
	if page.Next == "" {
		page.Next = args.After
	}
	writeUncached(w, http.StatusOK, page)
	return nil
}

// parseConsumeRead validates a read's body.
func parseConsumeRead(req apiwire.ConsumeReadRequest) (a provision.GroupReadArgs, err error) {
	if a.Group, a.Consumer, a.Count, err = consumeReader(req.Group, req.Consumer, req.Count, "the name of the reader within the group"); err != nil {
		return a, err
	}
	if req.After != "" {
		if a.After, err = consumeID("after", req.After); err != nil {
			return a, err
		}
	}
	if req.Wait != "" {
		if req.After != "" {
			return a, sandbox.InvalidField("wait", "wait applies to new entries only: not with after")
		}
		if a.Wait, err = parseDuration("wait", req.Wait); err != nil {
			return a, err
		}
		if a.Wait > maxConsumeWait {
			return a, sandbox.InvalidField("wait", "wait must be at most %s", sandbox.FormatDuration(maxConsumeWait))
		}
	}
	return a, nil
}

// consumeReader validates the group, the consumer and the count of a read or a claim; what
// says what the consumer is, in the error when it is missing.
func consumeReader(group, consumer string, count *int, what string) (string, string, int, error) {
	g, err := consumeGroup(group)
	if err != nil {
		return "", "", 0, err
	}
	if consumer == "" {
		return "", "", 0, sandbox.InvalidField("consumer", "consumer is required: %s", what)
	}
	if err := sandbox.ValidateConsumerName("consumer", consumer); err != nil {
		return "", "", 0, err
	}
	n, err := consumeCount(count)
	if err != nil {
		return "", "", 0, err
	}
	return g, consumer, n, nil
}

// boundedWait keeps a wait consumeWaitMargin inside the invocation's deadline; 0 when no
// time is left for one.
func boundedWait(ctx context.Context, wait time.Duration) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline)-consumeWaitMargin)
	}
	return max(wait, 0)
}

// consumeClaim answers POST /v1/sandboxes/{name}/events/claim.
func (h *Handler) consumeClaim(w http.ResponseWriter, r *http.Request, c caller) error {
	sb, args, err := addressedBody(h, r, c, parseConsumeClaim)
	if err != nil {
		return err
	}
	if err := consumable(sb); err != nil {
		return err
	}
	got, err := h.deps.Resources.ClaimGroup(r.Context(), sb.ID, args)
	if err != nil {
		return h.consumeError(r.Context(), sb, args.Group, err)
	}
	page := h.consumePage(sb, args.Group, args.Consumer, got)
	page.More = len(page.Entries) < len(got.Entries)
	page.Next = got.Next
	writeUncached(w, http.StatusOK, page)
	return nil
}

// parseConsumeClaim validates a claim's body.
func parseConsumeClaim(req apiwire.ConsumeClaimRequest) (a provision.GroupClaimArgs, err error) {
	if a.Group, a.Consumer, a.Count, err = consumeReader(req.Group, req.Consumer, req.Count, "the name of the reader that takes the entries over"); err != nil {
		return a, err
	}
	a.MinIdle, a.Start = defaultClaimIdle, "0-0"
	if req.MinIdle != "" {
		if a.MinIdle, err = parseDuration("min_idle", req.MinIdle); err != nil {
			return a, err
		}
		if a.MinIdle < minClaimIdle || a.MinIdle > maxClaimIdle {
			return a, sandbox.InvalidField("min_idle", "min_idle must be between %s and %s",
				sandbox.FormatDuration(minClaimIdle), sandbox.FormatDuration(maxClaimIdle))
		}
	}
	if req.Start != "" {
		if a.Start, err = consumeID("start", req.Start); err != nil {
			return a, err
		}
	}
	return a, nil
}

// consumeAck answers POST /v1/sandboxes/{name}/events/ack.
func (h *Handler) consumeAck(w http.ResponseWriter, r *http.Request, c caller) error {
	var req apiwire.ConsumeAckRequest
	var group string
	var ids []string
	sb, err := h.addressed(r, c, &req, func() (err error) {
		if group, err = consumeGroup(req.Group); err != nil {
			return err
		}
		if len(req.IDs) == 0 || len(req.IDs) > maxConsumeAckIDs {
			return sandbox.InvalidField("ids", "ids must list 1 to %d entry ids, got %d", maxConsumeAckIDs, len(req.IDs))
		}
		ids = make([]string, len(req.IDs))
		for i, s := range req.IDs {
			if ids[i], err = consumeID("ids", s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := consumable(sb); err != nil {
		return err
	}
	n, err := h.deps.Resources.AckGroup(r.Context(), sb.ID, group, ids)
	if err != nil {
		return h.consumeError(r.Context(), sb, group, err)
	}
	writeJSON(w, http.StatusOK, apiwire.ConsumeAckResponse{Stream: keys.EventStream(sb.ID), Group: group, Acknowledged: n})
	return nil
}

// consumeError turns what the stream's state refused into the caller's problem; anything
// else is a store error.
func (h *Handler) consumeError(ctx context.Context, sb *sandbox.Sandbox, group string, err error) error {
	switch {
	case errors.Is(err, provision.ErrNoStream):
		return sandbox.Errorf(sandbox.CodeNotFound, "sandbox %q has no event stream: it was deleted (by the sandbox's own Redis user, or a teardown)", sb.Name)
	case errors.Is(err, provision.ErrNotAStream):
		h.log.WarnContext(ctx, "the sandbox's stream key holds another type", logkey.Sandbox, sb.ID)
		return sandbox.Errorf(sandbox.CodeNotFound, "sandbox %q has no event stream: its key holds something else", sb.Name)
	case errors.Is(err, provision.ErrNoGroup):
		return sandbox.Errorf(sandbox.CodeNotFound, "the stream of sandbox %q has no consumer group %q", sb.Name, group)
	case errors.Is(err, provision.ErrTooManyGroups):
		return sandbox.Errorf(sandbox.CodeQuotaExceeded,
			"the stream of sandbox %q has %d consumer groups already: use one of them (the default is %s)", sb.Name, provision.MaxGroups, keys.EventsGroup)
	}
	return err
}

// consumePage renders what a read or claim got, within the payload budget: the entries that
// do not fit stay pending on the consumer, which reads them with after=Next.
func (h *Handler) consumePage(sb *sandbox.Sandbox, group, consumer string, got provision.GroupPage) apiwire.ConsumePage {
	page := apiwire.ConsumePage{
		Stream: got.Key, Group: group, Consumer: consumer, Status: sb.DisplayStatus(h.now()),
		Entries: []apiwire.ConsumedEntry{}, Deleted: got.Deleted,
	}
	spent := 0
	for _, en := range got.Entries {
		e := apiwire.ConsumedEntry{EventFields: eventFieldsOf(en)}
		payload := en.Fields[keys.StreamFieldPayload]
		switch {
		case len(payload) > consumeBudget:
			e.PayloadOmitted = true
		case spent+len(payload) > consumeBudget:
			return page // the rest stays pending: More
		default:
			e.Payload, spent = []byte(payload), spent+len(payload)
		}
		page.Entries = append(page.Entries, e)
		page.Next = e.ID
	}
	if n := len(got.Deleted); n > 0 {
		if last, ok := keys.ParseStreamID(got.Deleted[n-1]); ok {
			if cur, ok := keys.ParseStreamID(page.Next); !ok || cur.Less(last) {
				page.Next = last.String()
			}
		}
	}
	return page
}
