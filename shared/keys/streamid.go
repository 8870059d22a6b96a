package keys

import (
	"strconv"
	"strings"
	"time"
)

// StreamID is a Redis stream entry id, <ms>-<seq>: the millisecond Redis appended the entry
// at and a sequence within it, both unsigned 64-bit. The zero value, 0-0, comes before every
// entry (Redis never writes it). The events route reads after one, and a rewind moves a
// consumer group to one, so the format has its home here with the stream's other facts.
type StreamID struct{ MS, Seq uint64 }

// MaxStreamSeq is the greatest sequence part of an id.
const MaxStreamSeq = ^uint64(0)

// MaxStreamID is the largest id: a stream whose last id it is takes no entry after it.
var MaxStreamID = StreamID{MS: ^uint64(0), Seq: MaxStreamSeq}

// ParseStreamID reads a complete id as Redis writes it: two unsigned 64-bit decimals joined
// by "-" (no sign, no "*", no "+" or "-" shorthand).
func ParseStreamID(s string) (StreamID, bool) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok || !digits(ms) || !digits(seq) {
		return StreamID{}, false
	}
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	return StreamID{a, b}, err1 == nil && err2 == nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// String writes the id as Redis does (no leading zeros).
func (id StreamID) String() string {
	return strconv.FormatUint(id.MS, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// Less reports whether id comes before o.
func (id StreamID) Less(o StreamID) bool {
	return id.MS < o.MS || (id.MS == o.MS && id.Seq < o.Seq)
}

// Prev is the greatest id before id: reading after it starts at id itself. 0-0 stays 0-0.
func (id StreamID) Prev() StreamID {
	switch {
	case id.Seq > 0:
		return StreamID{id.MS, id.Seq - 1}
	case id.MS > 0:
		return StreamID{id.MS - 1, MaxStreamSeq}
	}
	return id
}

// StreamIDBefore is the greatest id before the millisecond of t: reading after it starts at
// the first entry appended at or after t. A time before 1970 gives 0-0.
func StreamIDBefore(t time.Time) StreamID {
	ms := t.UnixMilli()
	if ms <= 0 {
		return StreamID{}
	}
	return StreamID{MS: uint64(ms)}.Prev()
}
