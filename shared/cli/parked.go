package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

func (a *app) guildsParkedCommand() *cobra.Command {
	var wide bool
	cmd := &cobra.Command{
		Use:   "parked",
		Short: "List your parked guilds: test guilds of torn-down sandboxes, whose events are dropped",
		Args:  cobra.NoArgs,
		RunE: a.withAPI(func(ctx context.Context, c *Client) error {
			out, err := c.ParkedGuilds(ctx)
			return printAnswer(a, out, err, func(out *apiwire.ParkedGuilds) error {
				st, w := a.outStyle(), a.env.Stdout
				if len(out.Guilds) == 0 {
					fmt.Fprintln(w, "No parked guilds.")
					return nil
				}
				rows := make([][]cell, 0, len(out.Guilds))
				for _, p := range out.Guilds {
					owner := shortOwner(p.Owner)
					if wide {
						owner = p.Owner
					}
					rows = append(rows, []cell{plain(p.GuildID), plain(formatTime(p.ParkedAt, a.loc())), plain(p.Reason),
						{text: p.SandboxName, paint: st.bold}, plain(owner)})
				}
				writeTable(w, st, "", []string{"GUILD", "PARKED SINCE", "REASON", "SANDBOX", "OWNER"}, rows)
				fmt.Fprintln(w, "Their events are dropped, never sent to production: map one again, or release it with sandbox guilds release GUILD_ID.")
				return nil
			})
		}),
	}
	cmd.Flags().BoolVar(&wide, "wide", false, "show owners in full")
	return cmd
}

func (a *app) guildsReleaseCommand() *cobra.Command {
	return guildCommand(a, "release GUILD_ID", "Release a parked guild: its events go to the production bot again",
		(*Client).ReleaseGuild, func(out *apiwire.ReleasedGuild) error {
			st := a.outStyle()
			fmt.Fprintf(a.env.Stdout, "%s guild %s (parked since %s by sandbox %s): its events go to production from now on\n",
				st.green("Released"), out.GuildID, formatTime(out.Released.ParkedAt, a.loc()), out.Released.SandboxName)
			return nil
		})
}
