package provision

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
)

// RewindTarget is where a rewind moves a sandbox's consumer group: after an entry id (ID set),
// or to just before the first entry appended at or after a time.
type RewindTarget struct {
	ID   keys.StreamID
	Time time.Time
	// ByTime: Time is the target, ID is not.
	ByTime bool
}

// Rewind is what RewindGroup did to the group keys.EventsGroup of a sandbox's stream.
type Rewind struct {
	Key   string
	Group string
	// Previous is the id the group had delivered up to before the rewind.
	Previous string
	// Requested is the position asked for: the entry id given, or the id just before the
	// time given.
	Requested string
	// Position is the id the group was set to: XREADGROUP ... > delivers every entry after it
	// again, whether delivered or acknowledged before.
	Position string
	// Clamped: the position asked for is older than the oldest entry the stream still holds
	// and the stream has lost entries (trimmed by the router's MAXLEN, or deleted): those are
	// gone, and the group starts again at the oldest entry, FirstID.
	Clamped bool
	// FirstID is the oldest entry the stream holds, how far back a rewind can go ("" when
	// the stream is empty); LastID is the last entry ever appended.
	FirstID string
	LastID  string
	Length  int64
	// Pending is the group's pending entries (delivered, not acknowledged): a rewind leaves
	// them as they are.
	Pending int64
}

// ErrNoStream and ErrNoGroup (consume.go) are a rewind's too: the stream or its group
// keys.EventsGroup is gone (torn down, or deleted by the sandbox's worker).

// AheadError refuses a rewind whose position is after what the group has delivered: a rewind
// only moves the group back, never past entries its workers have not read yet.
type AheadError struct {
	Position  string
	Delivered string
}

func (e *AheadError) Error() string {
	return fmt.Sprintf("position %s is after the last entry the group %s delivered, %s: a rewind moves the group back, never past entries not read yet",
		e.Position, keys.EventsGroup, e.Delivered)
}

// RewindGroup moves the consumer group keys.EventsGroup of a sandbox's stream back, so that its
// workers read again the entries after the target (XGROUP SETID): to the id given, or to the
// id just before the first entry at or after the time given (the stream's end when there is
// none). A position older than the stream's first entry, when entries were trimmed, is
// clamped to just before that entry (Clamped). A position after what the group has delivered
// is refused (*AheadError); so are a missing stream (ErrNoStream), a key of another type
// (ErrNotAStream) and a missing group (ErrNoGroup). Pending entries stay pending: entries the
// group delivers again are re-assigned to the consumer that reads them. It touches only the
// sandbox's own key.
func (p *Provisioner) RewindGroup(ctx context.Context, id string, to RewindTarget) (Rewind, error) {
	rw := Rewind{Key: keys.EventStream(id), Group: keys.EventsGroup}
	if err := checkID(id); err != nil {
		return rw, err
	}
	if p.rdb == nil {
		return rw, fmt.Errorf("provision: rewind %s: no Redis client", rw.Key)
	}
	requested := to.ID
	if to.ByTime {
		requested = keys.StreamIDBefore(to.Time)
	}
	rw.Requested = requested.String()

	// One snapshot: the stream, its groups, and for a time the first entry at or after it.
	var info *redis.XInfoStreamCmd
	var groups *redis.XInfoGroupsCmd
	var first *redis.XMessageSliceCmd
	_, _ = p.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		info = pipe.XInfoStream(ctx, rw.Key)
		groups = pipe.XInfoGroups(ctx, rw.Key)
		if to.ByTime {
			first = pipe.XRangeN(ctx, rw.Key, "("+requested.String(), "+", 1)
		}
		return nil
	}) // each command's error is read below
	if err := info.Err(); err != nil {
		if known := streamError(err); known != err {
			return rw, known
		}
		return rw, fmt.Errorf("rewind %s: XINFO STREAM: %w", rw.Key, err)
	}
	st := info.Val()
	rw.Length, rw.LastID = st.Length, st.LastGeneratedID
	if st.Length > 0 {
		rw.FirstID = st.FirstEntry.ID
	}
	if err := groups.Err(); err != nil {
		return rw, fmt.Errorf("rewind %s: XINFO GROUPS: %w", rw.Key, err)
	}
	var group *redis.XInfoGroup
	for i := range groups.Val() {
		if groups.Val()[i].Name == keys.EventsGroup {
			group = &groups.Val()[i]
		}
	}
	if group == nil {
		return rw, ErrNoGroup
	}
	rw.Previous, rw.Pending = group.LastDeliveredID, group.Pending

	position := requested
	if to.ByTime {
		switch msgs, err := first.Result(); {
		case err != nil:
			return rw, fmt.Errorf("rewind %s: XRANGE: %w", rw.Key, err)
		case len(msgs) > 0:
			if e, ok := keys.ParseStreamID(msgs[0].ID); ok {
				position = e.Prev() // just before it: every entry from it on follows
			}
		default:
			// Nothing at or after the time: nothing to read again.
			if last, ok := keys.ParseStreamID(rw.LastID); ok && last.Less(position) {
				position = last
			}
		}
	}
	// How far back the stream goes: just before its oldest entry, or its end when it is empty.
	floor, ok := keys.ParseStreamID(rw.LastID)
	if f, fok := keys.ParseStreamID(rw.FirstID); fok {
		floor, ok = f.Prev(), true
	}
	if lost := st.EntriesAdded > st.Length; ok && lost && requested.Less(floor) {
		rw.Clamped = true
		if position.Less(floor) {
			position = floor
		}
	}
	rw.Position = position.String()
	if delivered, ok := keys.ParseStreamID(group.LastDeliveredID); ok && delivered.Less(position) {
		return rw, &AheadError{Position: rw.Position, Delivered: group.LastDeliveredID}
	}

	var after *redis.XInfoGroupsCmd
	var set *redis.StatusCmd
	_, _ = p.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		set = pipe.XGroupSetID(ctx, rw.Key, keys.EventsGroup, rw.Position)
		after = pipe.XInfoGroups(ctx, rw.Key)
		return nil
	})
	if err := set.Err(); err != nil {
		if redis.HasErrorPrefix(err, "NOGROUP") {
			return rw, ErrNoGroup // deleted by its worker meanwhile
		}
		return rw, fmt.Errorf("rewind %s: XGROUP SETID %s: %w", rw.Key, rw.Position, err)
	}
	if err := after.Err(); err == nil {
		for _, g := range after.Val() {
			if g.Name == keys.EventsGroup {
				rw.Pending = g.Pending
			}
		}
	}
	return rw, nil
}

// streamError tells a missing stream and a key of another type from other errors of XINFO
// on a sandbox's stream (Redis answers a missing key with a plain "ERR no such key", which
// HasErrorPrefix reads without its "ERR "); any other error is returned as it is.
func streamError(err error) error {
	switch {
	case isNoSuchKey(err):
		return ErrNoStream
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		return ErrNotAStream
	}
	return err
}
