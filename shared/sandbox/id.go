package sandbox

import (
	"crypto/rand"
	"strings"
)

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

// ControlSearchPath is the search_path of every session of the control plane (the functions'
// pools, clients.Postgres): the catalog alone, and the session's own temporary schema last.
// A name the control plane leaves unqualified then resolves to nothing a sandbox's role could
// define, not even in public, where a database made before PostgreSQL 15 still lets every
// role create (a function there with an argument type closer to the call's would win over
// the built-in, and run as the control user).
const ControlSearchPath = "pg_catalog, pg_temp"

// RoleName is the PostgreSQL role of a sandbox
// (docs/architecture.md, "A sandbox's own resources").
func RoleName(id string) string { return "sb_" + id }

// IDOfName returns the sandbox id of a schema or role name that is exactly a sandbox's
// (SchemaName and RoleName of an id ValidID accepts), and false for any other name: names
// read from a catalog are a sandbox's only when they give it back exactly.
func IDOfName(name string) (string, bool) {
	id, ok := strings.CutPrefix(name, "sb_")
	if !ok || !ValidID(id) || SchemaName(id) != name || RoleName(id) != name {
		return "", false
	}
	return id, true
}
