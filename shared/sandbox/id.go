package sandbox

import "crypto/rand"

// idAlphabet keeps ids safe as SQL identifiers and in Redis glob patterns.
const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// IDLength is the length of generated ids: 16 characters of 36 symbols is about 82 bits.
const IDLength = 16

// NewID returns a fresh random sandbox id matching [a-z0-9]{12,20}, starting with a letter.
func NewID() string {
	buf := make([]byte, IDLength)
	// rand.Read never returns an error since Go 1.24; it panics if the OS source fails.
	_, _ = rand.Read(buf)
	for i, b := range buf {
		alphabet := idAlphabet
		if i == 0 {
			alphabet = idAlphabet[:26]
		}
		// Rejection-free mapping: 256 is not a multiple of 36, the bias (< 1%) is harmless
		// for ids whose only requirement is unpredictability, not uniformity.
		buf[i] = alphabet[int(b)%len(alphabet)]
	}
	return string(buf)
}

// SchemaName is the PostgreSQL schema of a sandbox
// (docs/architecture.md, "A sandbox's own resources").
func SchemaName(id string) string { return "sb_" + id }

// RoleName is the PostgreSQL role of a sandbox
// (docs/architecture.md, "A sandbox's own resources").
func RoleName(id string) string { return "sb_" + id }
