package provision

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// scramIterations is PostgreSQL's default (scram_iterations): the verifier costs a client
// as much to attack as one the server computed itself.
const scramIterations = 4096

// scramVerifier returns the SCRAM-SHA-256 verifier of password in the form PostgreSQL stores
// in pg_authid and accepts in ALTER ROLE ... PASSWORD (RFC 5802, RFC 7677):
//
//	SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
//
// Sending the verifier instead of the password keeps the password out of the statement, so
// out of the server log whatever log_statement says. password must be ASCII without control
// characters (SASLprep leaves such a string unchanged; randomPassword makes hex).
func scramVerifier(password string) (string, error) {
	for _, c := range []byte(password) {
		if c < 0x21 || c > 0x7e {
			return "", fmt.Errorf("provision: password must be printable ASCII")
		}
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	return scramVerifierWithSalt(password, salt, scramIterations)
}

func scramVerifierWithSalt(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
