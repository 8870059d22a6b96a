package cli

import (
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.ParkedGuilds(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, out)
			}
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
		},
	}
	cmd.Flags().BoolVar(&wide, "wide", false, "show owners in full")
	return cmd
}

func (a *app) guildsReleaseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "release GUILD_ID",
		Short: "Release a parked guild: its events go to the production bot again",
		Args:  cobra.ExactArgs(1),
		RunE: guildCall(a, (*Client).ReleaseGuild, func(out *apiwire.ReleasedGuild) {
			st := a.outStyle()
			fmt.Fprintf(a.env.Stdout, "%s guild %s (parked since %s by sandbox %s): its events go to production from now on\n",
				st.green("Released"), out.GuildID, formatTime(out.Released.ParkedAt, a.loc()), out.Released.SandboxName)
		}),
	}
}
