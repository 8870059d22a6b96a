package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Authorizer adds credentials to a request about to be sent. body is the exact payload
// (nil for none): SigV4 signs its hash.
type Authorizer interface {
	Authorize(ctx context.Context, req *http.Request, body []byte) error
}

// BearerToken authenticates against the local stack (docs/api.md, Local mode).
type BearerToken string

// Authorize sets the Authorization header.
func (t BearerToken) Authorize(_ context.Context, req *http.Request, _ []byte) error {
	req.Header.Set("Authorization", "Bearer "+string(t))
	return nil
}

// SigV4Service is the signing name of API Gateway's execute-api endpoints.
const SigV4Service = "execute-api"

// contentSHA256Header carries the payload hash. API Gateway computes the hash itself; sending
// it (signed) makes the request self-describing and is what the SDK does for its own calls.
const contentSHA256Header = "X-Amz-Content-Sha256"

// SigV4 signs requests for API Gateway with AWS credentials (the standard chain in
// production, fixed ones in tests).
type SigV4 struct {
	Credentials aws.CredentialsProvider
	Region      string
	// Now is the signing clock; nil means time.Now.
	Now    func() time.Time
	signer *v4.Signer
}

// NewSigV4 returns a signer for region with credentials.
func NewSigV4(creds aws.CredentialsProvider, region string) *SigV4 {
	return &SigV4{Credentials: creds, Region: region, signer: v4.NewSigner()}
}

// Authorize signs req: host, x-amz-date, x-amz-content-sha256, the session token when the
// credentials have one, and every other header already set.
func (s *SigV4) Authorize(ctx context.Context, req *http.Request, body []byte) error {
	creds, err := s.Credentials.Retrieve(ctx)
	if err != nil {
		return &Error{Code: CodeCredentials, Message: "no AWS credentials to sign the request: " + err.Error(),
			Hint: "configure AWS credentials (AWS_PROFILE, aws sso login, ...), or use --token against a local stack"}
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	hash := payloadHash(body)
	req.Header.Set(contentSHA256Header, hash)
	signer := s.signer
	if signer == nil {
		signer = v4.NewSigner()
	}
	if err := signer.SignHTTP(ctx, creds, req, hash, SigV4Service, s.Region, now()); err != nil {
		return &Error{Code: CodeCredentials, Message: "signing the request failed: " + err.Error()}
	}
	return nil
}

// payloadHash is the hex SHA-256 of the body (of the empty string when there is none).
func payloadHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// RegionFromHost extracts the region from the host name (no port) of an API Gateway default
// endpoint (<api-id>.execute-api.<region>.amazonaws.com[.cn]); "" for any other host (custom
// domains, the local stack).
func RegionFromHost(host string) string {
	labels := strings.Split(strings.ToLower(host), ".")
	for i := 0; i+2 < len(labels); i++ {
		if labels[i] == "execute-api" && labels[i+2] == "amazonaws" && i > 0 {
			return labels[i+1]
		}
	}
	return ""
}
