package provision

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// The verifier for RFC 7677's example input (password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==,
// 4096 iterations); the expected value was computed independently (Python's hashlib:
// StoredKey = SHA-256(HMAC(PBKDF2(password), "Client Key")), ServerKey = HMAC(..., "Server Key")).
func TestSCRAMVerifierMatchesAnIndependentComputation(t *testing.T) {
	salt, err := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	if err != nil {
		t.Fatal(err)
	}
	got, err := scramVerifierWithSalt("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	const want = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
	if got != want {
		t.Fatalf("verifier\n got %s\nwant %s", got, want)
	}
	if _, err := scramVerifier("pass word"); err == nil {
		t.Fatal("a password SASLprep would change was accepted")
	}
	a, _ := scramVerifier("pencil")
	b, _ := scramVerifier("pencil")
	if a == b {
		t.Fatal("two verifiers share a salt")
	}
}

func TestSetUserArgsCarryOnlyTheHash(t *testing.T) {
	const id, password = "abc123def456gh", "0123456789abcdef0123456789abcdef"
	args, err := setUserArgs("sb_"+id, id, password, false)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(password))
	joined := fmt.Sprint(args...)
	if strings.Contains(joined, password) || !strings.Contains(joined, "#"+hex.EncodeToString(sum[:])) {
		t.Fatalf("ACL SETUSER args %v", args)
	}
	if !strings.Contains(joined, "-select") || strings.Contains(joined, "+select") {
		t.Fatalf("production rules allow SELECT: %v", args)
	}
	if _, err := setUserArgs("sb_x", "NOT-AN-ID", "", false); err == nil {
		t.Fatal("an invalid id was accepted")
	}
}
