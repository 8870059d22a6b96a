package controlplane

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// MinCursorKeyBytes is the shortest key that signs list cursors (one SHA-256 block's worth of
// HMAC key strength).
const MinCursorKeyBytes = 32

// cursorDomain separates list cursors' MACs from any other use of the same key.
const cursorDomain = "discord-sandboxes/list-cursor/v1\x00"

// cursor is a keyset position of List: the last sandbox of a page, newest first.
type cursor struct {
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
}

// cursorSigner is the one place list cursors are encoded and decoded. A cursor is
// base64url(HMAC-SHA256(key, domain || payload) || payload), payload the JSON of the
// position: opaque to callers, and only cursors signed with this key decode, so a forged,
// truncated or foreign cursor is refused rather than read as a position.
type cursorSigner struct {
	key []byte
}

// newCursorSigner signs with key, or with a random key of its own when key is empty (cursors
// then hold only within this process: fine for tests and for functions that never list).
func newCursorSigner(key []byte) cursorSigner {
	if len(key) == 0 {
		key = make([]byte, MinCursorKeyBytes)
		_, _ = rand.Read(key) // crypto/rand.Read never fails
	}
	return cursorSigner{key: bytes.Clone(key)}
}

func (s cursorSigner) mac(payload []byte) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(cursorDomain))
	h.Write(payload)
	return h.Sum(nil)
}

func (s cursorSigner) encode(c cursor) string {
	payload, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(append(s.mac(payload), payload...))
}

func (s cursorSigner) decode(str string) (cursor, error) {
	invalid := sandbox.InvalidField("cursor", "cursor is not one this API returned; start again without a cursor")
	raw, err := base64.RawURLEncoding.DecodeString(str)
	if err != nil || len(raw) <= sha256.Size {
		return cursor{}, invalid
	}
	sum, payload := raw[:sha256.Size], raw[sha256.Size:]
	if !hmac.Equal(sum, s.mac(payload)) {
		return cursor{}, invalid
	}
	var c cursor
	if json.Unmarshal(payload, &c) != nil || !sandbox.ValidID(c.ID) || c.CreatedAt.IsZero() {
		return cursor{}, invalid
	}
	return c, nil
}
