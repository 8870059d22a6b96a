package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

// testGuildChange is the --json document of `guilds register`.
type testGuildChange struct {
	apiwire.TestGuild
	// Created is false when the guild was registered already (its note was replaced).
	Created bool `json:"created"`
}

func (a *app) guildsRegisteredCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "registered",
		Short: "List the registered test guilds: the only guilds a sandbox may map",
		Long: "registered lists the guilds an admin registered as test guilds (GET /v1/test-guilds), with\n" +
			"whether each is free, mapped to a sandbox or parked. A guild that is not on the list cannot be\n" +
			"mapped: ask an admin to register it (sandbox guilds register GUILD_ID).",
		Args: cobra.NoArgs,
		RunE: a.withAPI(func(ctx context.Context, c *Client) error {
			out, err := c.TestGuilds(ctx)
			return printAnswer(a, out, err, func(out *apiwire.TestGuilds) error {
				st, w := a.outStyle(), a.env.Stdout
				if len(out.Guilds) == 0 {
					fmt.Fprintln(w, "No registered test guilds: an admin registers them with sandbox guilds register GUILD_ID.")
					return nil
				}
				rows := make([][]cell, 0, len(out.Guilds))
				free := 0
				for _, g := range out.Guilds {
					if g.State == "free" {
						free++
					}
					rows = append(rows, []cell{plain(g.GuildID), plain(g.State), plain(formatTime(g.RegisteredAt, a.loc())),
						plain(shortOwner(g.RegisteredBy)), plain(g.Note)})
				}
				writeTable(w, st, "", []string{"GUILD", "STATE", "REGISTERED", "BY", "NOTE"}, rows)
				fmt.Fprintf(w, "%s, %d free.\n", plural(len(out.Guilds), "test guild", "test guilds"), free)
				return nil
			})
		}),
	}
}

func (a *app) guildsRegisterCommand() *cobra.Command {
	return guildPutCommand(a, guildPut[apiwire.TestGuild]{
		use:   "register GUILD_ID [--note TEXT]",
		short: "Admin: register a test guild, which sandboxes may then map",
		long: "register records a guild as one of the platform's test guilds (PUT\n" +
			"/v1/admin/test-guilds/{guild_id}): sandboxes map only registered test guilds, so that no\n" +
			"developer can take a production guild's events. Registering a guild again replaces its note.\n" +
			"A protected guild is refused.",
		example: "  sandbox guilds register 112233445566778899 --note \"QA guild of the payments team\"",
		flag:    "note", flagUsage: "what the guild is for (at most 200 characters)",
		put: (*Client).RegisterTestGuild, created: "Registered",
		doc: func(g *apiwire.TestGuild, created bool) any { return testGuildChange{TestGuild: *g, Created: created} },
		done: func(g *apiwire.TestGuild) string {
			return fmt.Sprintf("test guild %s (%s): sandboxes may map it", g.GuildID, printable(g.State))
		},
	})
}

func (a *app) guildsUnregisterCommand() *cobra.Command {
	return guildCommand(a, "unregister GUILD_ID", "Admin: take a guild off the test guilds: no sandbox may map it any more",
		(*Client).UnregisterTestGuild, func(out *apiwire.TestGuild) error {
			st := a.outStyle()
			fmt.Fprintf(a.env.Stdout, "%s test guild %s: no sandbox may map it any more\n", st.green("Unregistered"), printable(out.GuildID))
			return nil
		})
}
