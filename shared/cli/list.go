package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

// listResult is the --json document of `list`.
type listResult struct {
	Sandboxes []apiwire.Sandbox `json:"sandboxes"`
	Total     int               `json:"total"`
}

func (a *app) listCommand() *cobra.Command {
	var (
		o    ListOptions
		wide bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List sandboxes (yours and those shared with you, unless --owner or --all)",
		Long: "list shows a table of sandboxes and their total. Owners are shown short (the user name of\n" +
			"an IAM user, role/session of an assumed role); --wide shows them in full, with each\n" +
			"sandbox's id and every guild. Destroyed sandboxes (--include-destroyed) show their id and\n" +
			"when they were destroyed. Without --owner or --all the sandboxes shared with you are\n" +
			"listed too, with your role on each in a SHARED column.\n\n" +
			"A running sandbox without an event for SANDBOX_IDLE_AFTER (6h by default) is idle: an IDLE\n" +
			"column says for how long, so that its owner can destroy it. --wide adds what each used:\n" +
			"events routed, the last one, stream length and pending entries, schema size and key count\n" +
			"(counted by the cleanup's last run).",
		Args: cobra.NoArgs,
		RunE: a.withAPI(func(ctx context.Context, c *Client) error {
			o.Limit = 200
			all, err := c.ListAll(ctx, o)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, listResult{Sandboxes: all, Total: len(all)})
			}
			a.writeList(all, wide)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.Owner, "owner", "", "list this owner's sandboxes (admins only for others)")
	f.StringVar(&o.Status, "status", "", "only this status: creating, running, expired, failed, destroying, destroyed")
	f.BoolVar(&o.All, "all", false, "every owner's sandboxes (admins only)")
	f.BoolVar(&o.IncludeDestroyed, "include-destroyed", false, "include destroyed sandboxes")
	f.BoolVar(&wide, "wide", false, "show ids, owners in full and every guild")
	cmd.MarkFlagsMutuallyExclusive("owner", "all")
	return cmd
}

// writeList writes the table of `list`. A destroyed sandbox's name may have been reused, so
// as soon as one is listed the table shows ids, and when each was destroyed.
func (a *app) writeList(all []apiwire.Sandbox, wide bool) {
	st, w, now := a.outStyle(), a.env.Stdout, a.now()
	destroyed := slices.ContainsFunc(all, func(sb apiwire.Sandbox) bool { return sb.DestroyedAt != nil })
	// Sandboxes shared with the caller are marked with its role (share.go).
	shared := slices.ContainsFunc(all, func(sb apiwire.Sandbox) bool { return sb.SharedRole != "" })
	// Idle sandboxes are flagged so their owners can destroy them (docs/api.md, "Usage").
	idle := slices.ContainsFunc(all, func(sb apiwire.Sandbox) bool { return sb.Usage != nil && sb.Usage.Idle })
	showID := wide || destroyed
	if len(all) > 0 {
		header := []string{"NAME", "STATUS", "OWNER", "EXPIRES IN", "GUILDS"}
		if showID {
			header = slices.Insert(header, 1, "ID")
		}
		if wide {
			header = append(header, "EVENTS", "LAST EVENT", "STREAM", "PENDING", "SCHEMA", "KEYS")
		}
		if idle {
			header = append(header, "IDLE")
		}
		if shared {
			header = append(header, "SHARED")
		}
		if destroyed {
			header = append(header, "DESTROYED")
		}
		rows := make([][]cell, 0, len(all))
		for i := range all {
			sb := &all[i]
			owner, guilds := shortOwner(sb.Owner), shortGuilds(sb.Guilds)
			if wide {
				owner, guilds = sb.Owner, strings.Join(sb.Guilds, ",")
				if guilds == "" {
					guilds = "-"
				}
			}
			row := []cell{
				{text: sb.Name, paint: st.bold},
				{text: sb.Status, paint: st.status},
				plain(owner),
				{text: timeLeft(sb), paint: st.status},
				plain(guilds),
			}
			if showID {
				row = slices.Insert(row, 1, plain(sb.ID))
			}
			if wide {
				row = append(row, usageCells(sb.Usage, now)...)
			}
			if idle {
				mark := "-"
				if u := sb.Usage; u != nil && u.Idle {
					mark = humanDuration(time.Duration(u.IdleSeconds) * time.Second)
				}
				row = append(row, cell{text: mark, paint: st.yellow})
			}
			if shared {
				row = append(row, plain(sharedMark(sb)))
			}
			if destroyed {
				at := "-"
				if sb.DestroyedAt != nil {
					at = ago(*sb.DestroyedAt, now)
				}
				row = append(row, plain(at))
			}
			rows = append(rows, row)
		}
		writeTable(w, st, "", header, rows)
	}
	fmt.Fprintf(w, "%s\n", plural(len(all), "sandbox", "sandboxes"))
	if idle {
		n := 0
		after := int64(0)
		for _, sb := range all {
			if u := sb.Usage; u != nil && u.Idle {
				n, after = n+1, u.IdleAfterSeconds
			}
		}
		fmt.Fprintf(w, "%s idle (no event for %s or more): sandbox destroy NAME the ones no longer needed.\n",
			plural(n, "sandbox is", "sandboxes are"), humanDuration(time.Duration(after)*time.Second))
	}
}

// usageCells are the usage columns of list --wide: events routed, the last one (ago), stream
// length, pending entries, schema size, key count; "-" for a sandbox without usage (a
// destroyed one) or a figure not known yet.
func usageCells(u *apiwire.Usage, now time.Time) []cell {
	if u == nil {
		return []cell{plain("-"), plain("-"), plain("-"), plain("-"), plain("-"), plain("-")}
	}
	last, keys := "-", "-"
	if u.LastEventAt != nil {
		last = ago(*u.LastEventAt, now)
	}
	if u.Keys != nil {
		keys = strconv.FormatInt(*u.Keys, 10)
	}
	return []cell{
		plain(strconv.FormatInt(u.EventsRouted, 10)), plain(last),
		plain(strconv.FormatInt(u.StreamLength, 10)), plain(strconv.FormatInt(u.StreamPending, 10)),
		plain(formatBytes(u.SchemaBytes)), plain(keys),
	}
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
