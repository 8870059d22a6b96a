package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

// protectionChange is the --json document of `guilds protect`.
type protectionChange struct {
	apiwire.ProtectedGuild
	// Created is false when the guild was protected already (its reason was replaced).
	Created bool `json:"created"`
}

func (a *app) guildsProtectedCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "protected",
		Short: "Admin: list the protected guilds, which no sandbox may map",
		Long: "protected lists the production guilds no sandbox may map (GET /v1/admin/protected-guilds):\n" +
			"those of the deployment's configuration (SANDBOX_PROTECTED_GUILDS, shown as configured) and\n" +
			"those admins protected at run time, with their reason.",
		Args: cobra.NoArgs,
		RunE: a.withAPI(func(ctx context.Context, c *Client) error {
			out, err := c.ProtectedGuilds(ctx)
			return printAnswer(a, out, err, func(out *apiwire.ProtectedGuilds) error {
				st, w := a.outStyle(), a.env.Stdout
				if len(out.Guilds) == 0 {
					fmt.Fprintln(w, "No protected guilds: an admin protects one with sandbox guilds protect GUILD_ID.")
					return nil
				}
				rows := make([][]cell, 0, len(out.Guilds))
				for _, g := range out.Guilds {
					since, by := "-", "-"
					if !g.ProtectedAt.IsZero() {
						since, by = formatTime(g.ProtectedAt, a.loc()), shortOwner(g.ProtectedBy)
					}
					rows = append(rows, []cell{plain(g.GuildID), plain(yesNo(g.Configured)), plain(since), plain(by), plain(g.Reason)})
				}
				writeTable(w, st, "", []string{"GUILD", "CONFIGURED", "PROTECTED", "BY", "REASON"}, rows)
				fmt.Fprintf(w, "%s.\n", plural(len(out.Guilds), "protected guild", "protected guilds"))
				return nil
			})
		}),
	}
}

func (a *app) guildsProtectCommand() *cobra.Command {
	return guildPutCommand(a, guildPut[apiwire.ProtectedGuild]{
		use:   "protect GUILD_ID [--reason TEXT]",
		short: "Admin: protect a production guild now: no sandbox may map it, its events go to production",
		long: "protect records a guild as a production guild (PUT /v1/admin/protected-guilds/{guild_id}),\n" +
			"from the router's next batch on: no sandbox may map it, no admin may register it, and its\n" +
			"events go to production whatever else is recorded. The guild leaves the test guilds and its\n" +
			"parking. A mapped guild is refused: remove the mapping first. Protecting a guild again\n" +
			"replaces its reason.",
		example: "  sandbox guilds protect 112233445566778899 --reason \"the main community guild\"",
		flag:    "reason", flagUsage: "why the guild is protected (at most 200 characters)",
		put: (*Client).ProtectGuild, created: "Protected",
		doc: func(g *apiwire.ProtectedGuild, created bool) any {
			return protectionChange{ProtectedGuild: *g, Created: created}
		},
		done: func(g *apiwire.ProtectedGuild) string {
			return fmt.Sprintf("guild %s: no sandbox may map it, its events go to production", g.GuildID)
		},
	})
}

func (a *app) guildsUnprotectCommand() *cobra.Command {
	return guildCommand(a, "unprotect GUILD_ID", "Admin: take a run-time protection away (not the configuration's)",
		(*Client).UnprotectGuild, func(out *apiwire.ProtectedGuild) error {
			st := a.outStyle()
			fmt.Fprintf(a.env.Stdout, "%s guild %s: an ordinary guild again (its events go to production; no sandbox may map it unless registered)\n",
				st.green("Unprotected"), printable(out.GuildID))
			return nil
		})
}

// guildPut describes an admin's PUT of one guild with one text flag, whose answer says
// whether the record is new: `guilds register` and `guilds protect`.
type guildPut[T any] struct {
	use, short, long, example string
	flag, flagUsage           string
	put                       func(c *Client, ctx context.Context, guild, text string) (*T, bool, error)
	// doc is the --json document; done ends the line that starts with created (the verb of
	// a new record: "Registered") or "Updated".
	doc     func(g *T, created bool) any
	created string
	done    func(g *T) string
}

func guildPutCommand[T any](a *app, p guildPut[T]) *cobra.Command {
	var text string
	cmd := &cobra.Command{
		Use: p.use, Short: p.short, Long: p.long, Example: p.example,
		Args: cobra.ExactArgs(1),
		RunE: a.onArg(checkGuild, func(ctx context.Context, c *Client, guild string) error {
			g, created, err := p.put(c, ctx, guild, text)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, p.doc(g, created))
			}
			verb := "Updated"
			if created {
				verb = p.created
			}
			fmt.Fprintf(a.env.Stdout, "%s %s\n", a.outStyle().green(verb), p.done(g))
			return nil
		}),
	}
	cmd.Flags().StringVar(&text, p.flag, "", p.flagUsage)
	return cmd
}
