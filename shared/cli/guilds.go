package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

// guildChange is the --json document of `guilds add|remove`.
type guildChange struct {
	Sandbox apiwire.Sandbox `json:"sandbox"`
	GuildID string          `json:"guild_id"`
	// Changed is false when `add` found the guild already mapped to the sandbox.
	Changed bool `json:"changed"`
}

func (a *app) guildsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "guilds",
		Short: "Map Discord guilds to a sandbox, or unmap them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("guilds needs a subcommand: add, remove, parked or release")}
		},
	}
	run := func(add bool) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, argv []string) error {
			name, guild := argv[0], argv[1]
			if err := checkName(name); err != nil {
				return err
			}
			if err := checkGuild(guild); err != nil {
				return err
			}
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			var res guildChange
			res.GuildID = guild
			var sb *apiwire.Sandbox
			if add {
				sb, res.Changed, err = c.AddGuild(cmd.Context(), name, guild)
			} else {
				sb, err = c.RemoveGuild(cmd.Context(), name, guild)
				res.Changed = true
			}
			if err != nil {
				return err
			}
			res.Sandbox = *sb
			if a.json {
				return writeJSONDoc(a.env.Stdout, res)
			}
			st, w := a.outStyle(), a.env.Stdout
			switch {
			case add && res.Changed:
				fmt.Fprintf(w, "%s guild %s to sandbox %s: its events now go to the sandbox's stream\n", st.green("Mapped"), guild, st.bold(name))
			case add:
				fmt.Fprintf(w, "Guild %s was already mapped to sandbox %s\n", guild, st.bold(name))
			default:
				fmt.Fprintf(w, "%s guild %s from sandbox %s: its events go to production again\n", st.green("Unmapped"), guild, st.bold(name))
			}
			fmt.Fprintf(w, "Guilds of %s: %s\n", name, guildList(sb.Guilds))
			return nil
		}
	}
	cmd.AddCommand(
		&cobra.Command{Use: "add NAME GUILD_ID", Short: "Map a guild to a sandbox", Args: cobra.ExactArgs(2), RunE: run(true)},
		&cobra.Command{Use: "remove NAME GUILD_ID", Short: "Unmap a guild from a sandbox", Args: cobra.ExactArgs(2), RunE: run(false)},
		a.guildsParkedCommand(),
		a.guildsReleaseCommand(),
	)
	return cmd
}
