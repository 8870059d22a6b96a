package cli

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

// EventsOptions are the query parameters of GET /v1/sandboxes/{name}/events: After (an entry
// id) and Since (a duration) exclude each other; neither starts at the oldest entry.
type EventsOptions struct {
	After          string
	Since          string
	Limit          int
	IncludePayload bool
}

// Events reads one page of a sandbox's event stream: the entries after the position, oldest
// first. A follower passes the page's Next as the next After.
func (c *Client) Events(ctx context.Context, name string, o EventsOptions) (*apiwire.EventsPage, error) {
	q := url.Values{}
	if o.After != "" {
		q.Set("after", o.After)
	}
	if o.Since != "" {
		q.Set("since", o.Since)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.IncludePayload {
		q.Set("include_payload", "true")
	}
	return call[apiwire.EventsPage](ctx, c, http.MethodGet, []string{"v1", "sandboxes", name, "events"}, q, nil)
}
