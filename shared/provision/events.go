package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
)

// StreamPage is what ReadStream read of a sandbox's event stream: a stretch of its entries,
// oldest first, and what XINFO STREAM says of the whole stream at the moment of the read.
type StreamPage struct {
	// Key is the stream's key (keys.EventStream).
	Key    string
	Exists bool
	Length int64
	// FirstID is the oldest entry the stream holds ("" when it holds none).
	FirstID string
	// LastGeneratedID is the id of the last entry ever added: every later entry has a
	// greater one ("0-0" for a stream never written to).
	LastGeneratedID string
	// EntriesAdded counts every entry ever added: more than Length once trimming (the
	// router's MAXLEN) or XDEL removed some.
	EntriesAdded int64
	// MaxDeletedID is the greatest id ever removed with XDEL ("0-0" when none was; trimming
	// does not set it).
	MaxDeletedID string
	Entries      []StreamEntry
	// More is whether reading stopped at the count or at the byte budget after a full
	// XRANGE: entries after the last of Entries may exist.
	More bool
}

// StreamEntry is one entry of a sandbox's stream as it is stored: the router writes the
// fields of keys.StreamField*, but the sandbox's own Redis user may write anything there.
type StreamEntry struct {
	ID     string
	Fields map[string]string
	// Size is the bytes of the entry's field names and values.
	Size int
}

// ErrNotAStream is a sandbox's stream key holding something else than a stream: the
// sandbox's own user may delete its stream and write another type under the key.
var ErrNotAStream = errors.New("the sandbox's stream key holds something else than a stream")

// MaxStreamID is the greatest stream entry id: no entry can follow it.
const MaxStreamID = "18446744073709551615-18446744073709551615"

// streamChunk bounds the entries of one XRANGE: reading stops within one chunk of the byte
// budget, whatever the count asked for (a gateway payload is at most 256 KiB when the router
// writes it).
const streamChunk = 100

// ReadStream reads the entries of a sandbox's event stream after the entry id after
// (exclusive; "" reads from the oldest entry), oldest first: at most count of them, and no
// further XRANGE once the entries read hold budget bytes. after must be an id as Redis
// writes them (ms-seq, no leading zeros). The stream's length, first and last ids come from
// XINFO STREAM in the same transaction as the first XRANGE, so they describe the same state.
// A stream that does not exist is a page with Exists false and no error. It reads only the
// sandbox's own key, with XRANGE: it never blocks.
func (p *Provisioner) ReadStream(ctx context.Context, id, after string, count, budget int) (StreamPage, error) {
	page := StreamPage{Key: keys.EventStream(id), LastGeneratedID: "0-0", MaxDeletedID: "0-0"}
	if err := p.checkStream(id, page.Key, "read stream"); err != nil {
		return page, err
	}
	start := "-"
	switch after {
	case "":
	case MaxStreamID:
		count = 0 // nothing can follow it; XRANGE would refuse the exclusive start
	default:
		start = "(" + after
	}
	chunk := min(count, streamChunk)
	var info *redis.XInfoStreamCmd
	var first *redis.XMessageSliceCmd
	_, _ = p.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		info = pipe.XInfoStream(ctx, page.Key)
		if chunk > 0 {
			first = pipe.XRangeN(ctx, page.Key, start, "+", int64(chunk))
		}
		return nil
	}) // each command's error is read below
	if err := info.Err(); err != nil {
		switch err := streamError(err); {
		case errors.Is(err, ErrNoStream):
			return page, nil
		case errors.Is(err, ErrNotAStream):
			return page, err
		}
		return page, fmt.Errorf("XINFO STREAM %s: %w", page.Key, err)
	}
	st := info.Val()
	page.Exists, page.Length, page.EntriesAdded = true, st.Length, st.EntriesAdded
	if st.Length > 0 {
		page.FirstID = st.FirstEntry.ID
	}
	if st.LastGeneratedID != "" {
		page.LastGeneratedID = st.LastGeneratedID
	}
	if st.MaxDeletedEntryID != "" {
		page.MaxDeletedID = st.MaxDeletedEntryID
	}
	if chunk == 0 {
		return page, nil
	}
	msgs, err := first.Result()
	bytes := 0
	for {
		if err != nil {
			return page, fmt.Errorf("XRANGE %s: %w", page.Key, err)
		}
		for _, m := range msgs {
			e := entryOf(m)
			page.Entries = append(page.Entries, e)
			bytes += e.Size
		}
		if len(msgs) < chunk {
			return page, nil // the stream ends here
		}
		last := msgs[len(msgs)-1].ID
		if len(page.Entries) >= count || bytes >= budget || last == MaxStreamID {
			page.More = last != MaxStreamID
			return page, nil
		}
		chunk = min(count-len(page.Entries), streamChunk)
		msgs, err = p.rdb.XRangeN(ctx, page.Key, "("+last, "+", int64(chunk)).Result()
	}
}

// entryOf copies a stream message's fields as strings (go-redis decodes them as such).
func entryOf(m redis.XMessage) StreamEntry {
	e := StreamEntry{ID: m.ID, Fields: make(map[string]string, len(m.Values))}
	for k, v := range m.Values {
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		e.Fields[k] = s
		e.Size += len(k) + len(s)
	}
	return e
}
