package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

func (a *app) cleanupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Admin: run the cleanup now, or report orphaned resources",
	}
	var runRemove, orphansRemove bool
	runCmd := &cobra.Command{
		Use:   "run",
		Short: "Tear down expired sandboxes now (with --remove, also remove orphaned resources)",
		Args:  cobra.NoArgs,
		RunE: a.withAPI(func(ctx context.Context, c *Client) error {
			res, err := c.Cleanup(ctx, runRemove)
			return printAnswer(a, res, err, func(res *apiwire.CleanupResponse) error {
				st, w := a.outStyle(), a.env.Stdout
				fmt.Fprintln(w, st.bold("Cleanup run:"))
				writeRecord(w, st, "  ", res.Run)
				if res.Orphans != nil {
					fmt.Fprintln(w, st.bold("Orphans after removal:"))
					writeRecord(w, st, "  ", res.Orphans)
				}
				return nil
			})
		}),
	}
	runCmd.Flags().BoolVar(&runRemove, "remove", false, "also remove orphaned resources after the run")
	orphansCmd := &cobra.Command{
		Use:   "orphans",
		Short: "Report orphaned resources (with --remove, run the cleanup and remove them)",
		Args:  cobra.NoArgs,
		RunE: a.withAPI(func(ctx context.Context, c *Client) error {
			st, w := a.outStyle(), a.env.Stdout
			if !orphansRemove {
				report, err := c.Orphans(ctx)
				return printAnswer(a, report, err, func(report *apiwire.OrphansResponse) error {
					fmt.Fprintln(w, st.bold("Orphaned resources:"))
					writeRecord(w, st, "  ", report)
					return nil
				})
			}
			res, err := c.Cleanup(ctx, true)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, res.Orphans)
			}
			fmt.Fprintln(w, st.bold("Cleanup run (removing orphans runs the cleanup first):"))
			writeRecord(w, st, "  ", res.Run)
			fmt.Fprintln(w, st.bold("Orphaned resources after removal:"))
			writeRecord(w, st, "  ", res.Orphans)
			return nil
		}),
	}
	orphansCmd.Flags().BoolVar(&orphansRemove, "remove", false, "remove them (only names that match the sandbox patterns, older than the grace period)")
	cmd.AddCommand(runCmd, orphansCmd)
	return cmd
}
