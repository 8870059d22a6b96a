package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const (
	// defaultEventsLimit and maxEventsLimit bound the entries of one events page.
	defaultEventsLimit = 100
	maxEventsLimit     = 1000
	// eventsBudget bounds the payload bytes of one page, and what one read takes from Redis
	// before it stops: a Lambda answer is at most 6 MB, and a gateway payload up to 256 KiB.
	eventsBudget = 4 << 20
	// maxEventFieldLen bounds each short field of an entry as answered: the router writes
	// names and ids there, but a sandbox's own Redis user may write anything in its stream.
	maxEventFieldLen = 128
	// maxJSONMillis is the last millisecond of year 9999, the last time encoding/json writes.
	maxJSONMillis = 253402300799999
)

// events answers GET /v1/sandboxes/{name}/events: the entries of the sandbox's stream after
// a position, oldest first, read with XRANGE (never a blocking read: the answer comes at
// once, and a follower polls). The stream is the addressed sandbox's own (keys.EventStream of
// the id the control plane resolved the name to), whatever the caller passes.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, c caller) error {
	var q eventsQuery
	sb, err := h.addressedWithQuery(r, c, []string{"after", "since", "limit", "include_payload"}, func(qs query) (err error) {
		q, err = h.parseEventsQuery(qs)
		return err
	})
	if err != nil {
		return err
	}
	ctx := r.Context()
	read, err := h.deps.Resources.ReadStream(ctx, sb.ID, q.after.String(), q.limit+1, eventsBudget)
	switch {
	case errors.Is(err, provision.ErrNotAStream):
		// The sandbox's own code replaced its stream: for its events it has none.
		h.log.WarnContext(ctx, "the sandbox's stream key holds another type; answering no events", logkey.Sandbox, sb.ID)
		read = provision.StreamPage{Key: keys.EventStream(sb.ID)}
	case err != nil:
		return err
	}

	page := apiwire.EventsPage{
		Stream: read.Key, Status: sb.DisplayStatus(h.now()), Events: []apiwire.Event{},
		Length: read.Length, FirstID: read.FirstID,
	}
	page.Trimmed = trimmedAfter(q.after, read)
	spent := 0
	for _, en := range read.Entries {
		if len(page.Events) == q.limit {
			break
		}
		ev := apiwire.Event{EventFields: eventFieldsOf(en)}
		if q.payload {
			payload := en.Fields[keys.StreamFieldPayload]
			switch {
			case len(payload) > eventsBudget || !json.Valid([]byte(payload)):
				ev.PayloadOmitted = true
			case spent+len(payload) > eventsBudget && len(page.Events) > 0:
				page.More = true // the next page starts with it
			default:
				ev.Payload, spent = json.RawMessage(payload), spent+len(payload)
			}
			if page.More {
				break
			}
		}
		page.Events = append(page.Events, ev)
	}
	page.More = page.More || len(page.Events) < len(read.Entries) || read.More
	page.Next = q.after.String()
	if n := len(page.Events); n > 0 {
		page.Next = page.Events[n-1].ID
	} else if last, ok := keys.ParseStreamID(read.LastGeneratedID); ok && q.after.Less(last) {
		// Nothing after the position, and every later entry comes after the stream's last id.
		page.Next = last.String()
	}
	writeUncached(w, http.StatusOK, page)
	return nil
}

// trimmedAfter reports whether the stream lost entries (trimming or XDEL: more were added
// than it holds) and the position is before the oldest entry it still holds (before the last
// one ever added, when it holds none). Redis keeps no record of the last id trimmed, so an
// entry that was itself trimmed, with nothing lost after it, counts too.
func trimmedAfter(after keys.StreamID, read provision.StreamPage) bool {
	if read.EntriesAdded <= read.Length {
		return false
	}
	if first, ok := keys.ParseStreamID(read.FirstID); ok {
		return after.Less(first)
	}
	last, ok := keys.ParseStreamID(read.LastGeneratedID)
	return ok && after.Less(last)
}

// eventsQuery is a valid query of the events route.
type eventsQuery struct {
	after   keys.StreamID // exclusive: the page starts after it
	limit   int
	payload bool
}

// parseEventsQuery reads after=ID (strictly after that entry), since=DURATION (from now
// minus it) or neither (from the oldest entry), limit and include_payload.
func (h *Handler) parseEventsQuery(qs query) (eventsQuery, error) {
	var q eventsQuery
	var err error
	if q.limit, err = qs.integer("limit", defaultEventsLimit, 1, maxEventsLimit); err != nil {
		return q, err
	}
	if q.payload, err = qs.boolean("include_payload"); err != nil {
		return q, err
	}
	after, since := qs.str("after"), qs.str("since")
	switch {
	case after != "" && since != "":
		return q, sandbox.InvalidField("since", "after and since exclude each other: give one")
	case after != "":
		id, ok := keys.ParseStreamID(after)
		if !ok {
			return q, sandbox.InvalidField("after", "after must be a stream entry id like 1718000000000-0, not %q", truncate(after, 40))
		}
		q.after = id
	case since != "":
		d, err := parseDuration("since", since)
		if err != nil {
			return q, err
		}
		// Entries from that millisecond on: after the last id the millisecond before can have.
		q.after = keys.StreamIDBefore(h.now().Add(-d))
	}
	return q, nil
}

// eventFieldsOf renders one stream entry's fields, bounded (the entries are the sandbox's to
// write too); the caller adds the payload when asked for.
// Fields are bounded and times kept within what JSON can carry: the sandbox's own user may
// have written the entry.
func eventFieldsOf(en provision.StreamEntry) apiwire.EventFields {
	f := en.Fields
	ev := apiwire.EventFields{
		ID:        en.ID,
		Type:      truncate(f[keys.StreamFieldType], maxEventFieldLen),
		GuildID:   truncate(f[keys.StreamFieldGuildID], maxEventFieldLen),
		MessageID: truncate(f[keys.StreamFieldMessageID], maxEventFieldLen),
		GroupID:   truncate(f[keys.StreamFieldGroupID], maxEventFieldLen),
		Size:      len(f[keys.StreamFieldPayload]),
	}
	if id, ok := keys.ParseStreamID(en.ID); ok && id.MS <= maxJSONMillis {
		ev.Time = time.UnixMilli(int64(id.MS)).UTC()
	}
	if seq, err := strconv.ParseInt(f[keys.StreamFieldSeq], 10, 64); err == nil {
		ev.Seq = &seq
	}
	if ms, err := strconv.ParseInt(f[keys.StreamFieldReceivedAt], 10, 64); err == nil && ms > 0 && ms <= maxJSONMillis {
		at := time.UnixMilli(ms).UTC()
		ev.ReceivedAt = &at
	}
	return ev
}
