package api

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
)

// secretKey is key material: it prints redacted, so that a configuration that is logged or
// shown by a failing test never carries it.
type secretKey []byte

func (secretKey) String() string   { return "[redacted]" }
func (secretKey) GoString() string { return "[redacted]" }

// parseCursorKey reads API_CURSOR_KEY: base64 (standard or URL alphabet, padded or not) of
// at least controlplane.MinCursorKeyBytes bytes, e.g. `openssl rand -base64 32`.
func parseCursorKey(s string) (secretKey, error) {
	s = strings.TrimRight(s, "=")
	key, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		key, err = base64.RawURLEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, fmt.Errorf("is not base64 (generate one with `openssl rand -base64 32`)")
	}
	if len(key) < controlplane.MinCursorKeyBytes {
		return nil, fmt.Errorf("is %d bytes, fewer than %d (generate one with `openssl rand -base64 32`)", len(key), controlplane.MinCursorKeyBytes)
	}
	return key, nil
}

// Where the cursor key came from, for the start-up log.
const (
	CursorKeyConfigured = "API_CURSOR_KEY"
	CursorKeyDerived    = "derived from the database password"
	CursorKeyGenerated  = "generated at start: cursors hold only within this process"
)

// cursorKeySalt and the info string bind a derived key to this use and this deployment.
const cursorKeySalt = "discord-sandboxes/api/list-cursor"

// CursorKey returns the key that signs list cursors (controlplane.Options.CursorKey) and
// where it came from. Every instance of one deployment must get the same key, or a cursor
// from one is refused by another:
//
//   - API_CURSOR_KEY when it is set;
//   - otherwise derived with HKDF-SHA256 from the password of the database credentials the
//     API connects with (the secret DATABASE_SECRET_ARN names, or DATABASE_URL's), bound to
//     ENVIRONMENT: no secret of its own to manage, but rotating the database password
//     invalidates the cursors handed out before (a client starts its listing again);
//   - without a password (a local database that trusts its users), a random key generated
//     at start: cursors hold until the process restarts, which is fine for one local API.
func CursorKey(cfg Config, databasePassword string) ([]byte, string, error) {
	switch {
	case len(cfg.CursorKey) > 0:
		return []byte(cfg.CursorKey), CursorKeyConfigured, nil
	case databasePassword != "":
		key, err := hkdf.Key(sha256.New, []byte(databasePassword), []byte(cursorKeySalt),
			"list-cursor/v1 environment="+cfg.Environment, controlplane.MinCursorKeyBytes)
		return key, CursorKeyDerived, err
	}
	key := make([]byte, controlplane.MinCursorKeyBytes)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	return key, CursorKeyGenerated, nil
}
