package api

import (
	"context"

	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// contextKey types keep this package's context values private to it.
type (
	principalKey struct{}
	recorderKey  struct{}
)

// WithPrincipal returns a context carrying the authenticated caller, which is the owner
// identity of the sandboxes it creates and what API_ADMIN_PRINCIPALS is matched against.
// Only the adapters call it, after they verified the identity: the Lambda adapter with the
// IAM ARN in its canonical form (CanonicalPrincipal), the local server with the principal
// of the bearer token as configured.
func WithPrincipal(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal)
}

// PrincipalFrom returns the authenticated caller, or "" when there is none.
func PrincipalFrom(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}

// WithRecorder returns a context carrying the metrics Recorder of the invocation.
func WithRecorder(ctx context.Context, rec *metrics.Recorder) context.Context {
	return context.WithValue(ctx, recorderKey{}, rec)
}

// recorderFrom returns the invocation's Recorder; nil (which records nothing) when none.
func recorderFrom(ctx context.Context) *metrics.Recorder {
	rec, _ := ctx.Value(recorderKey{}).(*metrics.Recorder)
	return rec
}
