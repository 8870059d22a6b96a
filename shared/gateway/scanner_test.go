package gateway

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestStringSpecials checks the word-at-a-time scan against the byte table: the lowest lane
// it marks must be the first byte that ends or escapes a string.
func TestStringSpecials(t *testing.T) {
	firstSpecial := func(w [8]byte) int {
		for i, c := range w {
			if !plainStringByte[c] {
				return i
			}
		}
		return 8
	}
	lowestMarked := func(w [8]byte) int {
		m := stringSpecials(binary.LittleEndian.Uint64(w[:]))
		if m == 0 {
			return 8
		}
		return bits.TrailingZeros64(m) / 8
	}
	check := func(w [8]byte) {
		if got, want := lowestMarked(w), firstSpecial(w); got != want {
			t.Fatalf("word % x: lowest marked lane %d, first special byte %d", w, got, want)
		}
	}
	// Every byte value in every lane, over fillers chosen to provoke borrows.
	for _, filler := range []byte{'a', 0x00, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0x9f, 0xa0, 0xff} {
		for lane := range 8 {
			for c := range 256 {
				var w [8]byte
				for i := range w {
					w[i] = filler
				}
				w[lane] = byte(c)
				check(w)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	interesting := []byte{0x00, 0x01, 0x1f, 0x20, '"', '\\', 'a', 0x7f, 0x80, 0xa0, 0xff}
	for range 200000 {
		var w [8]byte
		for i := range w {
			if rng.IntN(2) == 0 {
				w[i] = interesting[rng.IntN(len(interesting))]
			} else {
				w[i] = byte(rng.Uint32())
			}
		}
		check(w)
	}
}

func TestAppendUnescaped(t *testing.T) {
	tests := map[string]string{
		`plain`:        "plain",
		`a\"b\\c\/d`:   `a"b\c/d`,
		`\b\f\n\r\t`:   "\b\f\n\r\t",
		`\u00e9\u2713`: "é✓",
		`\ud83d\ude00`: "😀",
		`\ud83d`:       "\uFFFD",
		`\ud83dx`:      "\uFFFDx",
		`\ude00\ud83d`: "\uFFFD\uFFFD",
		`\ud83d\u0041`: "\uFFFDA",
		"\xff\xfeok":   "\uFFFD\uFFFDok",
		"\xed\xa0\x80": "\uFFFD\uFFFD\uFFFD",
		"\xef\xbf\xbd": "\uFFFD",
	}
	for raw, want := range tests {
		if got := string(appendUnescaped(nil, []byte(raw))); got != want {
			t.Errorf("appendUnescaped(%q) = %q, want %q", raw, got, want)
		}
	}
}
