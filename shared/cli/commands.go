package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// checkName validates a sandbox name with the API's own rule before it becomes a path.
func checkName(name string) error {
	return fromDomain(sandbox.ValidateName(name), "name")
}

// checkGuild validates a guild id with the API's own rule before it becomes a path.
func checkGuild(id string) error {
	return fromDomain(sandbox.ValidateGuildID(id), "guild_id")
}

// fromDomain turns a validation error of the sandbox package into a CLI error.
func fromDomain(err error, field string) error {
	if err == nil {
		return nil
	}
	var de *sandbox.Error
	if errors.As(err, &de) {
		return &Error{Code: de.Code, Message: de.Message, Field: firstNonEmpty(de.Field, field)}
	}
	return &Error{Code: sandbox.CodeInvalidInput, Message: err.Error(), Field: field}
}

// generatedName is a fresh sandbox name for `create` without one: the user's name (as far
// as it fits the name rule) and a random suffix.
func generatedName(user string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(user) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	prefix := strings.Trim(b.String(), "-")
	if prefix == "" || prefix[0] < 'a' || prefix[0] > 'z' {
		prefix = "sandbox"
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix) // crypto/rand.Read never returns an error
	for i := range suffix {
		suffix[i] = alphabet[int(suffix[i])%len(alphabet)]
	}
	prefix = strings.TrimRight(prefix[:min(len(prefix), 32-1-len(suffix))], "-")
	return prefix + "-" + string(suffix)
}

func (a *app) createCommand() *cobra.Command {
	var (
		ttl    string
		guilds []string
		meta   []string
	)
	cmd := &cobra.Command{
		Use:   "create [NAME]",
		Short: "Create a sandbox (a generated name when NAME is omitted)",
		Example: "  sandbox create alice-feature-x --ttl 24h --guild 1234567890123456789\n" +
			"  sandbox create --ttl 2d --meta branch=feature-x --json",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			req := CreateRequest{Guilds: guilds}
			if len(argv) == 1 {
				req.Name = argv[0]
			} else {
				req.Name = generatedName(firstNonEmpty(a.lookup("USER"), a.lookup("USERNAME")))
			}
			if err := checkName(req.Name); err != nil {
				return err
			}
			if ttl != "" {
				if _, err := parseDuration("ttl", ttl); err != nil {
					return err
				}
				req.TTL = ttl
			}
			for _, g := range guilds {
				if err := checkGuild(g); err != nil {
					return err
				}
			}
			for _, kv := range meta {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return &Error{Code: CodeUsage, Field: "meta", Message: fmt.Sprintf("--meta %q is not key=value", kv)}
				}
				if req.Metadata == nil {
					req.Metadata = map[string]string{}
				}
				req.Metadata[k] = v
			}
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			started := a.now()
			spin := startSpinner(a.spinnerWriter(), a.errStyle(), "Creating sandbox "+req.Name+" (schema, role, event stream)…")
			sb, err := c.Create(cmd.Context(), req)
			spin.Stop()
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, sb)
			}
			st, w := a.outStyle(), a.env.Stdout
			fmt.Fprintf(w, "%s sandbox %s (id %s) in %s\n", st.green("Created"), st.bold(sb.Name), sb.ID,
				a.now().Sub(started).Round(time.Millisecond))
			writeFields(w, st, "  ", [][2]string{
				{"Status", st.status(sb.Status)},
				{"Owner", sb.Owner},
				{"Expires", fmt.Sprintf("%s (in %s)", formatTime(sb.ExpiresAt, a.loc()), humanDuration(sb.TimeLeft()))},
				{"Guilds", guildList(sb.Guilds)},
				{"Schema", sb.Schema},
				{"Stream", sb.Stream},
			})
			fmt.Fprintf(w, "\nConnect a worker to it:\n  eval \"$(sandbox connect %s)\"\n", sb.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ttl, "ttl", "", "time to live, e.g. 90m, 24h, 7d (default: the API's, 24h)")
	f.StringArrayVar(&guilds, "guild", nil, "map this Discord guild id to the sandbox (repeatable)")
	f.StringArrayVar(&meta, "meta", nil, "attach metadata key=value (repeatable)")
	return cmd
}

// listResult is the --json document of `list`.
type listResult struct {
	Sandboxes []Sandbox `json:"sandboxes"`
	Total     int       `json:"total"`
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

func (a *app) extendCommand() *cobra.Command {
	var by string
	cmd := &cobra.Command{
		Use:     "extend NAME --by DURATION",
		Short:   "Move a sandbox's expiry later",
		Example: "  sandbox extend alice-feature-x --by 12h",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			if err := checkName(name); err != nil {
				return err
			}
			if _, err := parseDuration("by", by); err != nil {
				return err
			}
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Extend(cmd.Context(), name, by)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, res)
			}
			// The real extension, which the cap may have made shorter than --by.
			st, w := a.outStyle(), a.env.Stdout
			extended := exactDuration(time.Duration(res.ExtendedBySeconds) * time.Second)
			if res.Capped {
				extended += st.yellow(" (capped at the maximum lifetime of " +
					exactDuration(res.MaxExpiresAt.Sub(res.Sandbox.CreatedAt).Round(time.Second)) + ")")
			}
			fmt.Fprintf(w, "%s %s by %s: expires %s (in %s)\n", st.green("Extended"), st.bold(name), extended,
				formatTime(res.ExpiresAt, a.loc()), humanDuration(res.Sandbox.TimeLeft()))
			return nil
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "how much later, e.g. 90m, 12h, 2d (required)")
	_ = cmd.MarkFlagRequired("by")
	return cmd
}

func (a *app) destroyCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "destroy NAME",
		Short: "Destroy a sandbox: its guild mappings, Redis keys, schema and role",
		Long: "destroy tears a sandbox down and shows the teardown record. On a terminal it asks for\n" +
			"confirmation; elsewhere it needs --yes.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			if err := checkName(name); err != nil {
				return err
			}
			if !yes && !a.canPrompt() {
				return &Error{Code: CodeConfirmationRequired,
					Message: "destroy needs confirmation: pass --yes (stdin is not a terminal, so nobody can be asked)"}
			}
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			if !yes {
				sb, err := c.Get(cmd.Context(), name)
				if err != nil {
					return err
				}
				question := fmt.Sprintf("Destroy sandbox %s (%s, owner %s, guilds: %s)? Its schema, role and Redis data are deleted. [y/N] ",
					sb.Name, sb.Status, sb.Owner, guildList(sb.Guilds))
				ok, err := a.confirm(cmd.Context(), question)
				if err != nil {
					return err
				}
				if !ok {
					return errorf(CodeAborted, "not destroyed: the answer was not yes")
				}
			}
			res, completed, err := c.Destroy(cmd.Context(), name)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, res)
			}
			st, w := a.outStyle(), a.env.Stdout
			sb := &res.Sandbox
			switch {
			case completed && res.Changed:
				fmt.Fprintf(w, "%s sandbox %s (id %s)\n", st.green("Destroyed"), st.bold(sb.Name), sb.ID)
			case completed && sb.Status == statusDestroyed:
				// Already destroyed, or destroying until this request resumed the teardown.
				at := ""
				if sb.DestroyedAt != nil {
					at = " since " + formatTime(*sb.DestroyedAt, a.loc())
				}
				fmt.Fprintf(w, "Sandbox %s (id %s) is destroyed%s\n", st.bold(sb.Name), sb.ID, at)
			default:
				fmt.Fprintf(w, "Sandbox %s (id %s) is %s: the teardown did not finish in this request; the scheduled cleanup resumes it\n",
					st.bold(sb.Name), sb.ID, st.status(sb.Status))
			}
			if res.TeardownError != "" {
				fmt.Fprintf(w, "%s %s\n", st.red("teardown error:"), res.TeardownError)
			}
			if hasRecord(sb.Teardown) {
				fmt.Fprintln(w, "Teardown record:")
				writeRecord(w, st, "  ", sb.Teardown)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// confirm asks question on stderr and reads the answer from stdin; only "y" or "yes" agree.
// Ctrl-C while waiting interrupts.
func (a *app) confirm(ctx context.Context, question string) (bool, error) {
	fmt.Fprint(a.env.Stderr, question)
	answer := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(a.env.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			line = ""
		}
		answer <- line
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(a.env.Stderr)
		return false, errorf(CodeInterrupted, "interrupted at the confirmation")
	case line := <-answer:
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			return true, nil
		}
		return false, nil
	}
}

func (a *app) connectCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connect NAME",
		Short: "Print a worker's connection settings as shell exports (rotates the passwords)",
		Long: "connect prints `export KEY=\"value\"` lines on stdout, and only those, so that\n\n" +
			"  eval \"$(sandbox connect NAME)\"\n\n" +
			"sets them in the current shell; comments for people go to stderr. Every call rotates the\n" +
			"sandbox role's password and its Redis user's password: the previous ones stop working.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			if err := checkName(name); err != nil {
				return err
			}
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			conn, err := c.Connect(cmd.Context(), name)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, conn)
			}
			e := a.env.Stderr
			fmt.Fprintf(e, "# sandbox %s (id %s): worker connection settings; guilds: %s\n", conn.Name, conn.SandboxID, guildList(conn.GuildIDs))
			fmt.Fprintf(e, "# new database password, valid until %s; the previous one no longer works\n",
				formatTime(conn.Database.PasswordExpiresAt, a.loc()))
			if conn.Redis.Username != "" {
				fmt.Fprintf(e, "# new password of Redis user %s, which reaches %s* only; the previous one no longer works\n",
					conn.Redis.Username, conn.Redis.Namespace)
			}
			if conn.Redis.Warning != "" {
				fmt.Fprintf(e, "# warning: %s\n", conn.Redis.Warning)
			}
			skipped, err := writeExports(a.env.Stdout, conn.Env)
			if err != nil {
				return err
			}
			for _, k := range skipped {
				fmt.Fprintf(e, "# skipped %q: not a shell variable name\n", k)
			}
			if isTerminal(a.env.Stdout) {
				fmt.Fprintf(e, "# to set these in your shell: eval \"$(sandbox connect %s)\"\n", conn.Name)
			}
			return nil
		},
	}
	return cmd
}

// guildChange is the --json document of `guilds add|remove`.
type guildChange struct {
	Sandbox Sandbox `json:"sandbox"`
	GuildID string  `json:"guild_id"`
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
			var sb *Sandbox
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

func (a *app) guildsParkedCommand() *cobra.Command {
	return &cobra.Command{
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
			w := a.env.Stdout
			if len(out.Guilds) == 0 {
				fmt.Fprintln(w, "No parked guilds.")
				return nil
			}
			fmt.Fprintf(w, "%-20s  %-20s  %-18s  %-20s  %s\n", "GUILD", "PARKED SINCE", "REASON", "SANDBOX", "OWNER")
			for _, p := range out.Guilds {
				fmt.Fprintf(w, "%-20s  %-20s  %-18s  %-20s  %s\n", p.GuildID, formatTime(p.ParkedAt, a.loc()), p.Reason, p.SandboxName, p.Owner)
			}
			fmt.Fprintln(w, "Their events are dropped, never sent to production: map one again, or release it with sandbox guilds release GUILD_ID.")
			return nil
		},
	}
}

func (a *app) guildsReleaseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "release GUILD_ID",
		Short: "Release a parked guild: its events go to the production bot again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			guild := argv[0]
			if err := checkGuild(guild); err != nil {
				return err
			}
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.ReleaseGuild(cmd.Context(), guild)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, out)
			}
			st := a.outStyle()
			fmt.Fprintf(a.env.Stdout, "%s guild %s (parked since %s by sandbox %s): its events go to production from now on\n",
				st.green("Released"), guild, formatTime(out.Released.ParkedAt, a.loc()), out.Released.SandboxName)
			return nil
		},
	}
}

func (a *app) routeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "route GUILD_ID",
		Short: "Explain where a guild's events go now, and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			guild := argv[0]
			if err := checkGuild(guild); err != nil {
				return err
			}
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			r, err := c.Route(cmd.Context(), guild)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, r)
			}
			st, w := a.outStyle(), a.env.Stdout
			fmt.Fprintf(w, "Guild %s → %s (source: %s)\n", r.GuildID, st.status(r.Destination), r.Source)
			fmt.Fprintf(w, "  %s\n", r.Reason)
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
		},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (a *app) cleanupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Admin: run the cleanup now, or report orphaned resources",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("cleanup needs a subcommand: run or orphans")}
		},
	}
	var runRemove, orphansRemove bool
	runCmd := &cobra.Command{
		Use:   "run",
		Short: "Tear down expired sandboxes now (with --remove, also remove orphaned resources)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Cleanup(cmd.Context(), runRemove)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, res)
			}
			st, w := a.outStyle(), a.env.Stdout
			fmt.Fprintln(w, st.bold("Cleanup run:"))
			writeRecord(w, st, "  ", res.Run)
			if len(res.Orphans) > 0 {
				fmt.Fprintln(w, st.bold("Orphans after removal:"))
				writeRecord(w, st, "  ", res.Orphans)
			}
			return nil
		},
	}
	runCmd.Flags().BoolVar(&runRemove, "remove", false, "also remove orphaned resources after the run")
	orphansCmd := &cobra.Command{
		Use:   "orphans",
		Short: "Report orphaned resources (with --remove, run the cleanup and remove them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			st, w := a.outStyle(), a.env.Stdout
			if !orphansRemove {
				report, err := c.Orphans(cmd.Context())
				if err != nil {
					return err
				}
				if a.json {
					return writeJSONDoc(a.env.Stdout, report)
				}
				fmt.Fprintln(w, st.bold("Orphaned resources:"))
				writeRecord(w, st, "  ", report)
				return nil
			}
			res, err := c.Cleanup(cmd.Context(), true)
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
		},
	}
	orphansCmd.Flags().BoolVar(&orphansRemove, "remove", false, "remove them (only names that match the sandbox patterns, older than the grace period)")
	cmd.AddCommand(runCmd, orphansCmd)
	return cmd
}
