// Package gateway reads the routing facts out of one Discord gateway payload: whether it is a
// dispatch (op 0), its event type, its sequence number and the guild it belongs to.
//
// Parse scans the payload bytes once without decoding them: it keeps only the few values it
// needs and skips everything else, validating the JSON syntax of every byte it passes over, so
// a 256 KiB GUILD_CREATE costs no allocations beyond the guild id string. Where each event
// type keeps its guild id is listed in one table (events.go).
//
// Rules beyond JSON syntax, applied in this order (the first that fails decides the error):
//   - the body is at most MaxBodyBytes (ErrTooLarge) and one JSON object, nested at most
//     10000 levels deep like encoding/json (ErrMalformed);
//   - the keys "op", "t", "s" and "d" each appear at most once (ErrMalformed);
//   - "op" is present and an integer (ErrMalformed); any value but 0 is ErrNotDispatch, and then
//     nothing else is checked;
//   - "t" is a string (ErrMalformed otherwise); missing, null or "" is ErrNotDispatch; longer
//     than MaxEventTypeBytes is ErrMalformed;
//   - "s" is an integer, null or absent (ErrMalformed otherwise);
//   - "d" is an object, null or absent (ErrMalformed otherwise);
//   - the keys on the path to the guild id appear at most once and the containers on it are
//     objects or null (ErrMalformed); the guild id itself is null, absent, or a string that
//     is a valid snowflake (sandbox.ValidSnowflake; ErrInvalidGuildID otherwise). A guild id sent as a JSON number is
//     rejected: Discord always sends snowflakes as strings, and a number can lose precision
//     in other consumers of the same payload.
//
// Strings are compared after unescaping with encoding/json's rules, so "guild\u005fid" is the
// key guild_id, and invalid UTF-8 in the event type becomes U+FFFD as it would there.
package gateway

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// MaxBodyBytes is the largest body Parse accepts: the SQS message size limit.
const MaxBodyBytes = 256 * 1024

// MaxEventTypeBytes bounds the event type: Discord's names are far shorter, and the type is
// copied into logs, metrics and stream entries.
const MaxEventTypeBytes = 64

// Sentinel errors. Parse wraps them with a short reason that never quotes the payload.
var (
	ErrMalformed      = errors.New("gateway: malformed payload")
	ErrNotDispatch    = errors.New("gateway: not a dispatch event")
	ErrTooLarge       = errors.New("gateway: payload too large")
	ErrInvalidGuildID = errors.New("gateway: invalid guild id")
)

// Dispatch is what routing needs to know about one dispatch event.
type Dispatch struct {
	// Type is the event name, such as "MESSAGE_CREATE".
	Type string
	// Sequence is the gateway sequence number s, meaningful when HasSequence is set.
	Sequence    int64
	HasSequence bool
	// GuildID is the snowflake of the guild the event belongs to, "" for guild-less events.
	GuildID string
}

// parseError carries a sentinel (for errors.Is) and a reason fit for logs.
type parseError struct {
	kind   error
	reason string
	offset int // byte offset of a syntax error, -1 for errors about a whole value
}

func (e *parseError) Error() string {
	if e.offset >= 0 {
		return fmt.Sprintf("%v: %s at byte %d", e.kind, e.reason, e.offset)
	}
	return e.kind.Error() + ": " + e.reason
}

func (e *parseError) Unwrap() error { return e.kind }

func newError(kind error, reason string) error {
	return &parseError{kind: kind, reason: reason, offset: -1}
}

// fieldState records what a top-level member held.
type fieldState uint8

const (
	fieldMissing fieldState = iota
	fieldNull
	fieldOK
	fieldWrongType
)

// envelope holds what the scan of the top-level object found.
type envelope struct {
	op      int64
	opState fieldState

	tState   fieldState
	tTooLong bool
	tLen     int
	tBuf     [MaxEventTypeBytes]byte // the decoded event type
	event    eventInfo
	known    bool

	seq      int64
	seqState fieldState

	dState fieldState
	dStart int

	guild        guildValue
	guildScanned bool
}

// Parse extracts the dispatch facts from one gateway payload; see the package documentation
// for the rules. On ErrInvalidGuildID the returned Dispatch still carries Type and Sequence so
// the caller can say which event was bad; on any other error it is empty.
func Parse(body []byte) (Dispatch, error) {
	if len(body) > MaxBodyBytes {
		return Dispatch{}, newError(ErrTooLarge, fmt.Sprintf("%d bytes, limit %d", len(body), MaxBodyBytes))
	}
	s := scanner{buf: body}
	var env envelope
	if err := s.scanEnvelope(&env); err != nil {
		return Dispatch{}, err
	}
	return env.dispatch(&s)
}

// envelopeMember is a top-level member of the payload that the envelope reads.
type envelopeMember uint8

const (
	otherMember envelopeMember = iota
	opMember
	tMember
	sMember
	dMember
)

// memberKeys are the members' keys, for errors.
var memberKeys = [...]string{opMember: "op", tMember: "t", sMember: "s", dMember: "d"}

// memberOf returns the member a raw key names, comparing the key as decoded.
func memberOf(key []byte, escaped bool) envelopeMember {
	if escaped {
		if len(key) > 12 { // decodes to more than two bytes: an escape is at most 6 bytes per byte
			return otherMember
		}
		var tmp [64]byte
		key = appendUnescaped(tmp[:0], key)
	}
	switch string(key) {
	case "op":
		return opMember
	case "t":
		return tMember
	case "s":
		return sMember
	case "d":
		return dMember
	}
	return otherMember
}

// state returns where the state of member m is kept.
func (env *envelope) state(m envelopeMember) *fieldState {
	switch m {
	case opMember:
		return &env.opState
	case tMember:
		return &env.tState
	case sMember:
		return &env.seqState
	default:
		return &env.dState
	}
}

// scanEnvelope walks the top-level object, keeping op, t, s and where d starts. When t came
// before d, the guild id is picked up while d is skipped, so the common case is one pass.
func (s *scanner) scanEnvelope(env *envelope) error {
	if s.peek() != '{' {
		return s.fail("payload is not a JSON object")
	}
	if err := s.enterObject(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, escaped, more, err := s.nextKey(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		m := memberOf(key, escaped)
		if m != otherMember && *env.state(m) != fieldMissing {
			return s.fail(`duplicate key "` + memberKeys[m] + `"`)
		}
		switch m {
		case opMember:
			env.op, env.opState, err = s.readInt()
		case tMember:
			err = s.readEventType(env)
		case sMember:
			env.seq, env.seqState, err = s.readInt()
		case dMember:
			err = s.readData(env)
		default:
			err = s.skipValue()
		}
		if err != nil {
			return err
		}
	}
	s.skipSpace()
	if s.pos != len(s.buf) {
		return s.fail("data after the payload object")
	}
	return nil
}

// readEventType reads t, decoding it into env.tBuf and looking it up in the event table.
func (s *scanner) readEventType(env *envelope) error {
	if s.peek() != '"' {
		return s.skipOther(&env.tState)
	}
	raw, escaped, err := s.readString()
	if err != nil {
		return err
	}
	env.tState = fieldOK
	switch {
	case !escaped && utf8.Valid(raw):
		if len(raw) > MaxEventTypeBytes {
			env.tTooLong = true
			return nil
		}
		env.tLen = copy(env.tBuf[:], raw)
	case len(raw) > 6*MaxEventTypeBytes: // decodes to more than the limit: an escape is at most 6 bytes per byte
		env.tTooLong = true
		return nil
	default:
		decoded := appendUnescaped(env.tBuf[:0], raw)
		if len(decoded) > MaxEventTypeBytes {
			env.tTooLong = true
			return nil
		}
		env.tLen = copy(env.tBuf[:], decoded)
	}
	env.event, env.known = eventsByName[string(env.tBuf[:env.tLen])]
	if !env.known {
		env.event = eventInfo{guildAt: defaultGuildPath}
	}
	return nil
}

// readData notes where d starts and, when the event type is already known, looks for the
// guild id while passing over d.
func (s *scanner) readData(env *envelope) error {
	env.dStart = s.pos
	if s.peek() != '{' {
		return s.skipOther(&env.dState)
	}
	env.dState = fieldOK
	if env.tState == fieldOK && !env.tTooLong && env.event.guildAt != nil {
		var err error
		env.guild, err = s.findGuild(env.event.guildAt)
		env.guildScanned = true
		return err
	}
	return s.skipValue()
}

// skipOther passes over a member that is not of its type, recording in state whether it
// was null or of another type.
func (s *scanner) skipOther(state *fieldState) error {
	if s.peek() == 'n' {
		*state = fieldNull
		return s.skipLiteral("null")
	}
	*state = fieldWrongType
	return s.skipValue()
}

// dispatch applies the rules to what scanEnvelope found.
func (env *envelope) dispatch(s *scanner) (Dispatch, error) {
	switch env.opState {
	case fieldMissing:
		return Dispatch{}, newError(ErrMalformed, "missing op")
	case fieldNull, fieldWrongType:
		return Dispatch{}, newError(ErrMalformed, "op is not an integer")
	}
	if env.op != 0 {
		return Dispatch{}, newError(ErrNotDispatch, fmt.Sprintf("op %d", env.op))
	}
	switch {
	case env.tState == fieldWrongType:
		return Dispatch{}, newError(ErrMalformed, "t is not a string")
	case env.tState != fieldOK || (env.tLen == 0 && !env.tTooLong):
		return Dispatch{}, newError(ErrNotDispatch, "op 0 without an event type")
	case env.tTooLong:
		return Dispatch{}, newError(ErrMalformed, "event type longer than 64 bytes")
	}
	if env.seqState == fieldWrongType {
		return Dispatch{}, newError(ErrMalformed, "s is not an integer")
	}
	if env.dState == fieldWrongType {
		return Dispatch{}, newError(ErrMalformed, "d is not an object")
	}

	d := Dispatch{Sequence: env.seq, HasSequence: env.seqState == fieldOK}
	if env.known {
		d.Type = env.event.name // interned: no allocation for documented events
	} else {
		d.Type = string(env.tBuf[:env.tLen])
	}
	if env.event.guildAt == nil || env.dState != fieldOK {
		return d, nil
	}
	if !env.guildScanned {
		// d came before t: look again, now that the path is known. The first pass validated d.
		s.pos, s.depth = env.dStart, 1
		var err error
		if env.guild, err = s.findGuild(env.event.guildAt); err != nil {
			return Dispatch{}, err
		}
	}
	switch g := env.guild; g.state {
	case guildAbsent:
		return d, nil
	case guildDuplicate:
		return Dispatch{}, newError(ErrMalformed, "duplicate key on the guild id path")
	case guildNotObject:
		return Dispatch{}, newError(ErrMalformed, "guild id path crosses a value that is not an object")
	case guildWrongType:
		return d, newError(ErrInvalidGuildID, "guild id is not a JSON string")
	default:
		id := g.raw
		if g.escaped {
			if len(id) > 6*sandbox.SnowflakeMaxLen {
				return d, newError(ErrInvalidGuildID, "guild id is not a snowflake")
			}
			var tmp [6 * sandbox.SnowflakeMaxLen]byte
			id = appendUnescaped(tmp[:0], id)
		}
		if !sandbox.ValidSnowflake(id) {
			return d, newError(ErrInvalidGuildID, "guild id is not a snowflake")
		}
		d.GuildID = string(id)
		return d, nil
	}
}
