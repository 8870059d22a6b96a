package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

func (a *app) extendCommand() *cobra.Command {
	var by time.Duration
	cmd := &cobra.Command{
		Use:     "extend NAME --by DURATION",
		Short:   "Move a sandbox's expiry later",
		Example: "  sandbox extend alice-feature-x --by 12h",
		Args:    cobra.ExactArgs(1),
		RunE: a.onSandbox(func(ctx context.Context, c *Client, name string) error {
			res, err := c.Extend(ctx, name, sandbox.FormatDuration(by))
			return printAnswer(a, res, err, func(res *apiwire.ExtendResponse) error {
				// The real extension, which the cap may have made shorter than --by.
				st, w := a.outStyle(), a.env.Stdout
				extended := sandbox.FormatDuration(time.Duration(res.ExtendedBySeconds) * time.Second)
				if res.Capped {
					extended += st.yellow(" (capped at the maximum lifetime of " +
						sandbox.FormatDuration(res.MaxExpiresAt.Sub(res.Sandbox.CreatedAt).Round(time.Second)) + ")")
				}
				fmt.Fprintf(w, "%s %s by %s: expires %s (in %s)\n", st.green("Extended"), st.bold(name), extended,
					formatTime(res.ExpiresAt, a.loc()), humanDuration(res.Sandbox.TimeLeft()))
				return nil
			})
		}),
	}
	cmd.Flags().Var(durationFlag{&by, "by"}, "by", "how much later, e.g. 90m, 12h, 2d, 1d12h (required)")
	_ = cmd.MarkFlagRequired("by")
	return cmd
}
