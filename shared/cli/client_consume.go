package cli

import (
	"context"
	"net/http"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

// ReadEvents reads the next entries of a sandbox's stream as a consumer of a group
// (POST /v1/sandboxes/{name}/events/read).
func (c *Client) ReadEvents(ctx context.Context, name string, in apiwire.ConsumeReadRequest) (*apiwire.ConsumePage, error) {
	return call[apiwire.ConsumePage](ctx, c, http.MethodPost, []string{"v1", "sandboxes", name, "events", "read"}, nil, in)
}

// ClaimEvents takes over entries pending on other consumers of a group past an idle time
// (POST /v1/sandboxes/{name}/events/claim).
func (c *Client) ClaimEvents(ctx context.Context, name string, in apiwire.ConsumeClaimRequest) (*apiwire.ConsumePage, error) {
	return call[apiwire.ConsumePage](ctx, c, http.MethodPost, []string{"v1", "sandboxes", name, "events", "claim"}, nil, in)
}

// AckEvents acknowledges entries of a group (POST /v1/sandboxes/{name}/events/ack).
func (c *Client) AckEvents(ctx context.Context, name string, in apiwire.ConsumeAckRequest) (*apiwire.ConsumeAckResponse, error) {
	return call[apiwire.ConsumeAckResponse](ctx, c, http.MethodPost, []string{"v1", "sandboxes", name, "events", "ack"}, nil, in)
}
