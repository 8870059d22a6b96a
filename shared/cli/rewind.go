package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

// Rewind moves a sandbox's consumer group back (POST /v1/sandboxes/{name}/events/rewind), so
// that its workers read the events after the target again.
func (c *Client) Rewind(ctx context.Context, name, to string) (*apiwire.RewindResponse, error) {
	return call[apiwire.RewindResponse](ctx, c, http.MethodPost, []string{"v1", "sandboxes", name, "events", "rewind"}, nil, apiwire.RewindRequest{To: to})
}

func (a *app) eventsRewindCommand() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "rewind NAME --to TIME|ID",
		Short: "Move the workers' consumer group back, so that they read the events since then again",
		Long: "rewind moves the sandbox's consumer group (workers) back: its workers' next\n" +
			"XREADGROUP ... > delivers again every event after the new position, whether they had\n" +
			"acknowledged it or not. --to is an entry id (the events after it), an RFC 3339 time or a\n" +
			"duration such as 10m (the events appended at or after that time). Entries still pending\n" +
			"stay pending, and move to the consumer that reads them again.\n\n" +
			"The stream keeps only its newest ROUTER_STREAM_MAXLEN entries (10000 by default): a\n" +
			"rewind goes back to its oldest entry and no further. A --to older than that, once entries\n" +
			"were trimmed, is clamped to the oldest entry, and rewind says so. A --to after what the\n" +
			"group has delivered is refused: a rewind never skips events not read yet. Developers of a\n" +
			"shared sandbox may rewind too.",
		Example: "  sandbox events rewind alice-feature-x --to 10m\n" +
			"  sandbox events rewind alice-feature-x --to 2026-01-20T12:00:00Z\n" +
			"  sandbox events rewind alice-feature-x --to 1768910400123-0",
		Args: cobra.ExactArgs(1),
		RunE: a.onSandbox(func(ctx context.Context, c *Client, name string) error {
			res, err := c.Rewind(ctx, name, to)
			return printAnswer(a, res, err, func(res *apiwire.RewindResponse) error {
				a.writeRewind(name, res)
				return nil
			})
		}, func(*cobra.Command) error { return checkRewindTarget(to) }),
	}
	cmd.Flags().StringVar(&to, "to", "", "an entry id, an RFC 3339 time or a duration ago (10m, 2h, 1d) (required)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// checkRewindTarget refuses a --to that is neither an entry id, an RFC 3339 time nor a
// positive duration, before any request.
func checkRewindTarget(to string) error {
	if isStreamID(to) {
		return nil
	}
	if _, err := time.Parse(time.RFC3339Nano, to); err == nil {
		return nil
	}
	if _, err := parseDuration("to", to); err == nil {
		return nil
	}
	return &Error{Code: CodeUsage, Field: "to",
		Message: fmt.Sprintf("--to %q is neither an entry id (1718000000000-0), an RFC 3339 time (2026-01-20T12:00:00Z) nor a duration (10m, 2h, 1d)", to)}
}

// writeRewind says where the group was and is, and how far back the stream goes.
func (a *app) writeRewind(name string, res *apiwire.RewindResponse) {
	st, w, loc := a.outStyle(), a.env.Stdout, a.loc()
	r := &eventsPrinter{loc: loc}
	at := func(id string) string {
		if id == "" || id == "0-0" {
			return id
		}
		return id + " (" + r.idTime(id) + ")"
	}
	fmt.Fprintf(w, "%s the consumer group %s of sandbox %s: its workers' next XREADGROUP ... > delivers every event after %s again\n",
		st.green("Rewound"), res.Group, st.bold(name), res.Position)
	oldest := "empty: nothing to read again"
	if res.FirstID != "" {
		oldest = fmt.Sprintf("%s, oldest %s: a rewind goes back no further", plural(int(res.Length), "event", "events"), at(res.FirstID))
	}
	writeFields(w, st, "  ", [][2]string{
		{"Was at", at(res.PreviousID)},
		{"Now at", at(res.Position)},
		{"Stream", oldest},
		{"Pending", fmt.Sprintf("%d (delivered, not acknowledged: they stay pending)", res.Pending)},
	})
	if res.Clamped {
		fmt.Fprintf(w, "%s %s is older than the oldest event the stream holds: the events before %s were trimmed and are gone, so the group starts again at %s\n",
			st.yellow("Clamped:"), res.To, res.FirstID, res.FirstID)
	}
}
