package cli

import (
	"context"
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

// guildsOf is the --json document of `guilds list`.
type guildsOf struct {
	Sandbox   string   `json:"sandbox"`
	SandboxID string   `json:"sandbox_id"`
	Status    string   `json:"status"`
	Guilds    []string `json:"guilds"`
}

func (a *app) guildsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "guilds",
		Short: "List, map and unmap a sandbox's Discord guilds; parked, registered test and protected guilds",
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
		a.guildsListCommand(),
		&cobra.Command{Use: "add NAME GUILD_ID", Short: "Map a guild to a sandbox", Args: cobra.ExactArgs(2), RunE: run(true)},
		&cobra.Command{Use: "remove NAME GUILD_ID", Short: "Unmap a guild from a sandbox", Args: cobra.ExactArgs(2), RunE: run(false)},
		a.guildsParkedCommand(),
		a.guildsReleaseCommand(),
		a.guildsRegisteredCommand(),
		a.guildsRegisterCommand(),
		a.guildsUnregisterCommand(),
		a.guildsProtectedCommand(),
		a.guildsProtectCommand(),
		a.guildsUnprotectCommand(),
	)
	return cmd
}

func (a *app) guildsListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list NAME",
		Short: "List the guilds mapped to a sandbox",
		Long: "list shows the guilds mapped to a sandbox (GET /v1/sandboxes/{name}): one id per row and\n" +
			"their count. The API records no mapping time; `sandbox route GUILD_ID` explains where one\n" +
			"guild's events go.",
		Args: cobra.ExactArgs(1),
		RunE: a.onSandbox(func(ctx context.Context, c *Client, name string) error {
			sb, err := c.Get(ctx, name)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, guildsOf{Sandbox: sb.Name, SandboxID: sb.ID, Status: sb.Status, Guilds: sb.Guilds})
			}
			st, w := a.outStyle(), a.env.Stdout
			if len(sb.Guilds) > 0 {
				rows := make([][]cell, len(sb.Guilds))
				for i, g := range sb.Guilds {
					rows[i] = []cell{plain(g)}
				}
				writeTable(w, st, "", []string{"GUILD"}, rows)
				fmt.Fprintf(w, "%s mapped to sandbox %s (%s)\n", plural(len(sb.Guilds), "guild", "guilds"), st.bold(sb.Name), st.status(sb.Status))
				return nil
			}
			fmt.Fprintf(w, "No guilds mapped to sandbox %s (%s)", st.bold(sb.Name), st.status(sb.Status))
			switch sb.Status {
			case statusDestroyed:
				fmt.Fprint(w, ": its test guilds were parked when it was torn down, see sandbox guilds parked")
			case statusRunning:
				fmt.Fprintf(w, ": map one with sandbox guilds add %s GUILD_ID", sb.Name)
			}
			fmt.Fprintln(w)
			return nil
		}),
	}
}
