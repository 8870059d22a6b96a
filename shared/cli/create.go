package cli

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

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
		ttl      time.Duration
		guilds   []string
		meta     []string
		template string
	)
	cmd := &cobra.Command{
		Use:   "create [NAME]",
		Short: "Create a sandbox (a generated name when NAME is omitted)",
		Example: "  sandbox create alice-feature-x --ttl 24h --guild 1234567890123456789\n" +
			"  sandbox create --ttl 2d --meta branch=feature-x --json\n" +
			"  sandbox create alice-xp --template guild-xp",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			req := apiwire.CreateRequest{Guilds: guilds, Template: template}
			if len(argv) == 1 {
				req.Name = argv[0]
			} else {
				req.Name = generatedName(firstNonEmpty(a.lookup("USER"), a.lookup("USERNAME")))
			}
			if err := checkName(req.Name); err != nil {
				return err
			}
			if ttl != 0 {
				req.TTL = sandbox.FormatDuration(ttl)
			}
			if template != "" {
				if err := checkTemplate(template); err != nil {
					return err
				}
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
			what := "schema, role, event stream"
			if template != "" {
				what = "template " + template + ", " + what
			}
			spin := startSpinner(a.spinnerWriter(), a.errStyle(), "Creating sandbox "+req.Name+" ("+what+")…")
			sb, err := c.Create(cmd.Context(), req)
			spin.Stop()
			return printAnswer(a, sb, err, func(sb *apiwire.Sandbox) error {
				st, w := a.outStyle(), a.env.Stdout
				fmt.Fprintf(w, "%s sandbox %s (id %s) in %s\n", st.green("Created"), st.bold(sb.Name), sb.ID,
					a.now().Sub(started).Round(time.Millisecond))
				fields := [][2]string{
					{"Status", st.status(sb.Status)},
					{"Owner", ownerField(sb.Owner)},
					{"Expires", fmt.Sprintf("%s (in %s)", formatTime(sb.ExpiresAt, a.loc()), humanDuration(sb.TimeLeft()))},
					{"Guilds", guildList(sb.Guilds)},
				}
				if sb.Template != "" && sb.Template != sandbox.DefaultTemplate { // the default one goes without saying
					fields = append(fields, [2]string{"Template", sb.Template})
				}
				fields = append(fields, [][2]string{{"Schema", sb.Schema}, {"Stream", sb.Stream}}...)
				writeFields(w, st, "  ", fields)
				fmt.Fprintf(w, "\nConnect a worker to it:\n  eval \"$(sandbox connect %s)\"\n", sb.Name)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.Var(durationFlag{&ttl, "ttl"}, "ttl", "time to live, e.g. 90m, 24h, 7d, 1d12h (default: the API's, 24h)")
	f.StringArrayVar(&guilds, "guild", nil, "map this Discord guild id to the sandbox (repeatable)")
	f.StringArrayVar(&meta, "meta", nil, "attach metadata key=value (repeatable)")
	f.StringVar(&template, "template", "", "clone this template, with its seed rows if it has some (sandbox templates lists them; default: the deployment's)")
	return cmd
}
