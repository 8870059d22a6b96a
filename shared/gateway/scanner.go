package gateway

import (
	"encoding/binary"
	"math/bits"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxNestingDepth matches encoding/json, so both accept the same documents.
const maxNestingDepth = 10000

// scanner walks JSON bytes in place. Skipped values are checked against the JSON grammar
// (except UTF-8 validity, which encoding/json does not check either) but never materialised.
type scanner struct {
	buf   []byte
	pos   int
	depth int // containers currently open
	// objects has bit i set when the container open at depth i is an object, clear for an
	// array: skipping needs it to know what may follow a comma, without recursion.
	objects [maxNestingDepth/64 + 1]uint64
}

// plainStringByte marks the bytes a string may contain without ending or escaping.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *scanner) fail(reason string) error {
	if s.pos >= len(s.buf) {
		return &parseError{kind: ErrMalformed, reason: "unexpected end of input", offset: len(s.buf)}
	}
	return &parseError{kind: ErrMalformed, reason: reason, offset: s.pos}
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end of the input.
func (s *scanner) peek() byte {
	s.skipSpace()
	if s.pos < len(s.buf) {
		return s.buf[s.pos]
	}
	return 0
}

// open consumes '{' or '[' and records the container.
func (s *scanner) open(object bool) error {
	if s.depth >= maxNestingDepth {
		return s.fail("nesting deeper than 10000 levels")
	}
	word, bit := s.depth/64, uint(s.depth%64)
	if object {
		s.objects[word] |= 1 << bit
	} else {
		s.objects[word] &^= 1 << bit
	}
	s.depth++
	s.pos++
	return nil
}

func (s *scanner) inObject() bool {
	d := s.depth - 1
	return s.objects[d/64]&(1<<uint(d%64)) != 0
}

// enterObject consumes the '{' at the current position.
func (s *scanner) enterObject() error { return s.open(true) }

// nextKey reads the next key of the object entered last and the colon after it; more is false
// once the closing brace has been consumed. first says whether a member was read before.
func (s *scanner) nextKey(first bool) (key []byte, escaped, more bool, err error) {
	c := s.peek()
	if c == '}' {
		s.pos++
		s.depth--
		return nil, false, false, nil
	}
	if !first {
		if c != ',' {
			return nil, false, false, s.fail("expected ',' or '}' after object member")
		}
		s.pos++
		c = s.peek()
	}
	if c != '"' {
		return nil, false, false, s.fail("expected object key")
	}
	if key, escaped, err = s.readString(); err != nil {
		return nil, false, false, err
	}
	if s.peek() != ':' {
		return nil, false, false, s.fail("expected ':' after object key")
	}
	s.pos++
	return key, escaped, true, nil
}

// readString consumes the string whose opening quote is at the current position and returns
// the raw bytes between the quotes; escaped reports a backslash escape among them.
func (s *scanner) readString() (raw []byte, escaped bool, err error) {
	buf := s.buf
	start := s.pos + 1
	i := start
	for {
		// Eight bytes at a time until one of them is special, then byte by byte.
		for i+8 <= len(buf) {
			if m := stringSpecials(binary.LittleEndian.Uint64(buf[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		for i < len(buf) && plainStringByte[buf[i]] {
			i++
		}
		if i >= len(buf) {
			s.pos = i
			return nil, false, s.fail("unterminated string")
		}
		switch buf[i] {
		case '"':
			s.pos = i + 1
			return buf[start:i], escaped, nil
		case '\\':
			escaped = true
			n := escapeLen(buf[i:])
			if n == 0 {
				s.pos = i
				if i+6 > len(buf) && truncatedEscape(buf[i:]) {
					s.pos = len(buf)
				}
				return nil, false, s.fail("invalid escape in string")
			}
			i += n
		default:
			s.pos = i
			return nil, false, s.fail("control character in string")
		}
	}
}

const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// stringSpecials returns a mask with the high bit set in the byte lanes of x (little-endian)
// that hold '"', '\\' or a control character. Borrows can mark lanes above a special byte, never
// below it, so the lowest marked lane is always exact.
func stringSpecials(x uint64) uint64 {
	quote := x ^ (lowBits * '"')
	backslash := x ^ (lowBits * '\\')
	return ((x-lowBits*0x20)&^x | (quote-lowBits)&^quote | (backslash-lowBits)&^backslash) & highBits
}

// escapeLen returns the length of the valid escape at the start of b, or 0.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if len(b) >= 6 && isHex(b[2]) && isHex(b[3]) && isHex(b[4]) && isHex(b[5]) {
			return 6
		}
	}
	return 0
}

// truncatedEscape reports whether b is a valid escape cut short by the end of the input.
func truncatedEscape(b []byte) bool {
	if len(b) < 2 {
		return true
	}
	if b[1] != 'u' {
		return false
	}
	for _, c := range b[2:] {
		if !isHex(c) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipNumber consumes a number; integer reports that it has neither fraction nor exponent.
func (s *scanner) skipNumber() (integer bool, err error) {
	b, i := s.buf, s.pos
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		s.pos = i
		return false, s.fail("invalid value")
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		if i++; i >= len(b) || !isDigit(b[i]) {
			s.pos = i
			return false, s.fail("invalid number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			s.pos = i
			return false, s.fail("invalid number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.pos = i
	return integer, nil
}

// readInt consumes any value; state says whether it was null, an int64, or something else.
func (s *scanner) readInt() (n int64, state fieldState, err error) {
	switch c := s.peek(); {
	case c == '-' || isDigit(c):
	case c == 'n':
		return 0, fieldNull, s.skipLiteral("null")
	default:
		return 0, fieldWrongType, s.skipValue()
	}
	start := s.pos
	integer, err := s.skipNumber()
	if err != nil {
		return 0, fieldWrongType, err
	}
	if !integer {
		return 0, fieldWrongType, nil
	}
	n, ok := parseInt64(s.buf[start:s.pos])
	if !ok {
		return 0, fieldWrongType, nil
	}
	return n, fieldOK, nil
}

// parseInt64 converts a JSON integer literal, reporting overflow.
func parseInt64(b []byte) (int64, bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit++
	}
	var n uint64
	for _, c := range b {
		digit := uint64(c - '0')
		if n > (limit-digit)/10 {
			return 0, false
		}
		n = n*10 + digit
	}
	if neg {
		return int64(-n), true
	}
	return int64(n), true
}

func (s *scanner) skipLiteral(lit string) error {
	rest := s.buf[s.pos:]
	if len(rest) >= len(lit) && string(rest[:len(lit)]) == lit {
		s.pos += len(lit)
		return nil
	}
	if len(rest) < len(lit) && string(rest) == lit[:len(rest)] {
		s.pos = len(s.buf)
	}
	return s.fail("invalid literal")
}

// skipValue consumes one complete value, however deeply nested, without recursion.
func (s *scanner) skipValue() error {
	base := s.depth
	for {
		// A value starts here.
		switch s.peek() {
		case '{':
			if err := s.open(true); err != nil {
				return err
			}
			if s.peek() == '}' {
				s.pos++
				s.depth--
				break
			}
			if err := s.skipKey(); err != nil {
				return err
			}
			continue
		case '[':
			if err := s.open(false); err != nil {
				return err
			}
			if s.peek() == ']' {
				s.pos++
				s.depth--
				break
			}
			continue
		case '"':
			if _, _, err := s.readString(); err != nil {
				return err
			}
		case 't':
			if err := s.skipLiteral("true"); err != nil {
				return err
			}
		case 'f':
			if err := s.skipLiteral("false"); err != nil {
				return err
			}
		case 'n':
			if err := s.skipLiteral("null"); err != nil {
				return err
			}
		default:
			if _, err := s.skipNumber(); err != nil {
				return err
			}
		}
		// A value ended: close finished containers until the next value is due.
		for s.depth > base {
			c := s.peek()
			if c == ',' {
				s.pos++
				if s.inObject() {
					if err := s.skipKey(); err != nil {
						return err
					}
				}
				break
			}
			if c == '}' && s.inObject() || c == ']' && !s.inObject() {
				s.pos++
				s.depth--
				continue
			}
			return s.fail("expected ',' or the end of the container")
		}
		if s.depth == base {
			return nil
		}
	}
}

// skipKey consumes an object key and the colon after it.
func (s *scanner) skipKey() error {
	if s.peek() != '"' {
		return s.fail("expected object key")
	}
	if _, _, err := s.readString(); err != nil {
		return err
	}
	if s.peek() != ':' {
		return s.fail("expected ':' after object key")
	}
	s.pos++
	return nil
}

// guildState says what was found at the end of a guild path.
type guildState uint8

const (
	guildAbsent    guildState = iota // missing or null, here or on the way
	guildString                      // a string: raw holds its undecoded bytes
	guildWrongType                   // a number, boolean, object or array
	guildNotObject                   // a container on the way is not an object
	guildDuplicate                   // a key on the way appears twice
)

type guildValue struct {
	state   guildState
	raw     []byte
	escaped bool
}

// findGuild consumes the value at the current position and reports what path leads to
// inside it. It reads every member, so a duplicate key on the path cannot go unnoticed.
func (s *scanner) findGuild(path guildPath) (guildValue, error) {
	switch s.peek() {
	case '{':
	case 'n':
		return guildValue{}, s.skipLiteral("null")
	default:
		return guildValue{state: guildNotObject}, s.skipValue()
	}
	if err := s.enterObject(); err != nil {
		return guildValue{}, err
	}
	var found guildValue
	seen := false
	for first := true; ; first = false {
		key, escaped, more, err := s.nextKey(first)
		if err != nil {
			return guildValue{}, err
		}
		if !more {
			return found, nil
		}
		if !keyIs(key, escaped, path[0]) {
			if err := s.skipValue(); err != nil {
				return guildValue{}, err
			}
			continue
		}
		var v guildValue
		if len(path) > 1 {
			v, err = s.findGuild(path[1:])
		} else {
			v, err = s.readGuildValue()
		}
		if err != nil {
			return guildValue{}, err
		}
		if seen {
			found = guildValue{state: guildDuplicate}
		} else {
			found, seen = v, true
		}
	}
}

func (s *scanner) readGuildValue() (guildValue, error) {
	switch s.peek() {
	case '"':
		raw, escaped, err := s.readString()
		return guildValue{state: guildString, raw: raw, escaped: escaped}, err
	case 'n':
		return guildValue{}, s.skipLiteral("null")
	default:
		return guildValue{state: guildWrongType}, s.skipValue()
	}
}

// keyIs reports whether the raw key decodes to want, which must be ASCII. Without escapes
// the raw bytes are the key: a non-ASCII byte could never decode to an ASCII want.
func keyIs(raw []byte, escaped bool, want string) bool {
	if !escaped {
		return string(raw) == want
	}
	if len(raw) > 6*len(want) {
		return false
	}
	var tmp [64]byte
	return string(appendUnescaped(tmp[:0], raw)) == want
}

// appendUnescaped appends the decoded form of a raw JSON string (escapes already validated)
// to dst, exactly as encoding/json decodes it: invalid UTF-8 bytes and unpaired surrogates
// become U+FFFD.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			switch raw[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(raw[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if pair := utf16.DecodeRune(r, hex4(raw[i+2:])); pair != unicode.ReplacementChar {
							i += 6
							dst = utf8.AppendRune(dst, pair)
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, raw[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
