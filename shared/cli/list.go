package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

// listResult is the --json document of `list`.
type listResult struct {
	Sandboxes []apiwire.Sandbox `json:"sandboxes"`
	Total     int               `json:"total"`
}

func (a *app) listCommand() *cobra.Command {
	var o ListOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List sandboxes (yours unless --owner or --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			o.Limit = 200
			all, err := c.ListAll(cmd.Context(), o)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, listResult{Sandboxes: all, Total: len(all)})
			}
			st, w := a.outStyle(), a.env.Stdout
			if len(all) > 0 {
				rows := make([][]cell, 0, len(all))
				for i := range all {
					sb := &all[i]
					left := timeLeft(sb)
					rows = append(rows, []cell{
						{text: sb.Name, paint: st.bold},
						{text: sb.Status, paint: st.status},
						plain(sb.Owner),
						{text: left, paint: st.status},
						plain(shortGuilds(sb.Guilds)),
					})
				}
				writeTable(w, st, "", []string{"NAME", "STATUS", "OWNER", "EXPIRES IN", "GUILDS"}, rows)
			}
			fmt.Fprintf(w, "%s\n", plural(len(all), "sandbox", "sandboxes"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Owner, "owner", "", "list this owner's sandboxes (admins only for others)")
	f.StringVar(&o.Status, "status", "", "only this status: creating, running, expired, failed, destroying, destroyed")
	f.BoolVar(&o.All, "all", false, "every owner's sandboxes (admins only)")
	f.BoolVar(&o.IncludeDestroyed, "include-destroyed", false, "include destroyed sandboxes")
	cmd.MarkFlagsMutuallyExclusive("owner", "all")
	return cmd
}

// shortGuilds keeps the table narrow: two guild ids and a count of the rest.
func shortGuilds(g []string) string {
	switch {
	case len(g) == 0:
		return "-"
	case len(g) <= 2:
		return strings.Join(g, ",")
	}
	return fmt.Sprintf("%s,%s +%d", g[0], g[1], len(g)-2)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
