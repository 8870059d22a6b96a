package cli

import (
	"context"
	"net/http"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

// ReadEvents reads the next entries of a sandbox's stream as a consumer of a group
// (POST /v1/sandboxes/{name}/events/read).
func (c *Client) ReadEvents(ctx context.Context, name string, in apiwire.ConsumeReadRequest) (*apiwire.ConsumePage, error) {
	var out apiwire.ConsumePage
	if _, err := c.do(ctx, http.MethodPost, []string{"v1", "sandboxes", name, "events", "read"}, nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ClaimEvents takes over entries pending on other consumers of a group past an idle time
// (POST /v1/sandboxes/{name}/events/claim).
func (c *Client) ClaimEvents(ctx context.Context, name string, in apiwire.ConsumeClaimRequest) (*apiwire.ConsumePage, error) {
	var out apiwire.ConsumePage
	if _, err := c.do(ctx, http.MethodPost, []string{"v1", "sandboxes", name, "events", "claim"}, nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AckEvents acknowledges entries of a group (POST /v1/sandboxes/{name}/events/ack).
func (c *Client) AckEvents(ctx context.Context, name string, in apiwire.ConsumeAckRequest) (*apiwire.ConsumeAckResponse, error) {
	var out apiwire.ConsumeAckResponse
	if _, err := c.do(ctx, http.MethodPost, []string{"v1", "sandboxes", name, "events", "ack"}, nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
