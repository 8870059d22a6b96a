package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

func (a *app) routeCommand() *cobra.Command {
	return guildCommand(a, "route GUILD_ID", "Explain where a guild's events go now, and why",
		(*Client).Route, func(r *apiwire.RouteExplanation) error {
			st, w := a.outStyle(), a.env.Stdout
			fmt.Fprintf(w, "Guild %s → %s (source: %s)\n", r.GuildID, st.status(r.Destination), r.Source)
			fmt.Fprintf(w, "  %s\n", printable(r.Reason))
			fields := [][2]string{{"Protected", yesNo(r.Protected)}}
			if p := r.Parked; p != nil {
				fields = append(fields, [2]string{"Parked", fmt.Sprintf("since %s by sandbox %s (id %s, %s)",
					formatTime(p.ParkedAt, a.loc()), p.SandboxName, p.SandboxID, p.Reason)})
			}
			if m := r.Mapping; m != nil {
				fields = append(fields,
					[2]string{"Sandbox", fmt.Sprintf("%s (id %s), %s", m.SandboxName, m.SandboxID, st.status(m.Status))},
					[2]string{"Stream", m.Stream})
			} else {
				fields = append(fields, [2]string{"Sandbox", "none (not mapped)"})
			}
			cache := "no entry"
			if r.Cache.Error != "" {
				cache = st.red("unreadable: " + r.Cache.Error)
			}
			if r.Cache.Present {
				cache = r.Cache.Value
				if r.Cache.TTLSeconds != nil {
					cache += fmt.Sprintf(", expires in %s", humanDuration(time.Duration(*r.Cache.TTLSeconds)*time.Second))
				}
				if r.Cache.Agrees {
					cache += ", agrees with the database"
				} else {
					cache += ", " + st.yellow("disagrees with the database")
				}
			}
			fields = append(fields, [2]string{"Cache", cache})
			writeFields(w, st, "  ", fields)
			return nil
		})
}

// guildCommand is a command that makes one API call on its GUILD_ID argument and shows the
// answer: as the JSON document with --json, through show otherwise.
func guildCommand[T any](a *app, use, short string, call func(c *Client, ctx context.Context, guild string) (T, error), show func(T) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: a.onArg(checkGuild, func(ctx context.Context, c *Client, guild string) error {
			answer, err := call(c, ctx, guild)
			return printAnswer(a, answer, err, show)
		}),
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
