package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// defaultWatchInterval is how often `status --watch` refreshes unless told otherwise.
const defaultWatchInterval = 5 * time.Second

func (a *app) statusCommand() *cobra.Command {
	var watch bool
	interval := defaultWatchInterval
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show a sandbox, its timing, guilds, usage and health checks",
		Long: "status shows a sandbox: timing (created, expires, time left or EXPIRED), guilds, what it\n" +
			"used (events routed, last event, stream length and pending entries, schema size, key count,\n" +
			"idle or not), each health check with its latency, the overall health and when it was checked.\n\n" +
			"--watch refreshes every --interval until Ctrl-C, redrawing in place on a terminal (one JSON\n" +
			"document per line with --json); it ends with exit code 0 when the sandbox is gone.",
		Args: cobra.ExactArgs(1),
		RunE: a.onSandbox(func(ctx context.Context, c *Client, name string) error {
			if watch {
				return a.watchStatus(ctx, c, name, interval)
			}
			view, err := fetchStatus(ctx, c, name)
			return printAnswer(a, view, err, func(view *StatusView) error {
				renderStatus(a.env.Stdout, a.outStyle(), view, a.now(), a.loc())
				return nil
			})
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&watch, "watch", "w", false, "refresh until Ctrl-C or until the sandbox is gone")
	f.Var(durationFlag{&interval, "interval"}, "interval", "refresh interval of --watch, e.g. 2s, 1m")
	return cmd
}

// StatusView is what `status` shows: the sandbox and its health checks (nil for a destroyed
// sandbox: there is nothing left to check).
type StatusView struct {
	Sandbox apiwire.Sandbox        `json:"sandbox"`
	Health  *apiwire.SandboxHealth `json:"health"`
}

// fetchStatus reads the sandbox and, unless it is destroyed, runs its health checks.
func fetchStatus(ctx context.Context, c *Client, name string) (*StatusView, error) {
	sb, err := c.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	view := &StatusView{Sandbox: *sb}
	if sb.Status != statusDestroyed {
		if view.Health, err = c.SandboxHealth(ctx, name); err != nil {
			return nil, err
		}
	}
	return view, nil
}

// renderStatus writes the status of a sandbox for people.
func renderStatus(w io.Writer, st style, v *StatusView, now time.Time, loc *time.Location) {
	sb := &v.Sandbox
	fields := [][2]string{
		{"Sandbox", fmt.Sprintf("%s (id %s)", st.bold(sb.Name), sb.ID)},
		{"Status", st.status(sb.Status)},
		{"Owner", ownerField(sb.Owner)},
	}
	if sb.SharedRole != "" {
		fields = append(fields, [2]string{"Shared", "with you as a " + string(sb.SharedRole)})
	}
	fields = append(fields, [][2]string{
		{"Created", fmt.Sprintf("%s (%s)", formatTime(sb.CreatedAt, loc), ago(sb.CreatedAt, now))},
		{"Expires", formatTime(sb.ExpiresAt, loc)},
	}...)
	switch {
	case sb.DestroyedAt != nil:
		fields = append(fields, [2]string{"Destroyed", fmt.Sprintf("%s (%s)", formatTime(*sb.DestroyedAt, loc), ago(*sb.DestroyedAt, now))})
	case sb.Status == statusExpired:
		fields = append(fields, [2]string{"Time left", st.red("EXPIRED")})
	default:
		fields = append(fields, [2]string{"Time left", timeLeft(sb)})
	}
	fields = append(fields,
		[2]string{"Guilds", guildList(sb.Guilds)},
		[2]string{"Schema", sb.Schema},
		[2]string{"Stream", sb.Stream})
	if len(sb.Metadata) > 0 {
		fields = append(fields, [2]string{"Metadata", metadataLine(sb.Metadata)})
	}
	if sb.CleanupAttempts > 0 {
		fields = append(fields, [2]string{"Cleanups", fmt.Sprintf("%d attempts", sb.CleanupAttempts)})
	}
	if sb.LastError != "" {
		text := printable(sb.LastError)
		if sb.LastErrorCode != "" {
			text += " [" + string(sb.LastErrorCode) + "]"
		}
		fields = append(fields, [2]string{"Last error", st.red(text)})
	}
	writeFields(w, st, "", fields)

	if u := sb.Usage; u != nil {
		fmt.Fprintf(w, "\n%s\n", st.bold("Usage"))
		writeFields(w, st, "  ", usageFields(st, u, now, loc))
	}
	if h := v.Health; h != nil {
		fmt.Fprintf(w, "\n%s  %s (checked at %s)\n", st.bold("Health"), st.status(h.Overall), formatTime(h.CheckedAt, loc))
		rows := make([][]cell, 0, len(h.Checks))
		for _, c := range h.Checks {
			rows = append(rows, []cell{
				plain(c.Name),
				{text: c.Status, paint: st.status},
				plain(fmt.Sprintf("%.2f ms", c.LatencyMS)),
				plain(c.Detail),
			})
		}
		writeTable(w, st, "  ", []string{"CHECK", "STATUS", "LATENCY", "DETAIL"}, rows)
	}
	if hasRecord(sb.Teardown) {
		fmt.Fprintf(w, "\n%s\n", st.bold("Teardown record"))
		writeRecord(w, st, "  ", sb.Teardown)
	}
}

func metadataLine(md map[string]string) string {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = printable(k) + "=" + printable(md[k])
	}
	return strings.Join(parts, " ")
}

// watcher redraws the status of one sandbox on every tick.
type watcher struct {
	w        io.Writer
	st       style
	name     string
	interval time.Duration
	// inPlace redraws over the previous frame (a terminal); otherwise frames follow each other.
	inPlace bool
	// jsonLines writes one JSON document per refresh instead of frames.
	jsonLines bool
	now       func() time.Time
	loc       *time.Location
	frames    int
	seen      bool
}

// transient reports whether a failed refresh is worth retrying on the next tick.
func transient(err error) bool {
	code := asError(err).Code
	return code == sandbox.CodeUnavailable || code == CodeUnreachable || code == sandbox.CodeInternal
}

// step draws one refresh from its outcome and reports whether watching is over: the sandbox
// is destroyed, or no longer exists after having been seen. Errors that retrying cannot fix
// (a sandbox never seen, no permission) end the watch with that error.
func (wa *watcher) step(view *StatusView, fetchErr error) (done bool, err error) {
	gone := false
	switch {
	case fetchErr == nil:
		wa.seen = true
		gone = view.Sandbox.Status == statusDestroyed
	case wa.seen && errors.Is(fetchErr, &Error{Code: sandbox.CodeNotFound}):
		gone = true
	case !transient(fetchErr):
		return true, fetchErr
	}

	if wa.jsonLines {
		var doc any
		switch {
		case view != nil:
			doc = view
		case !gone:
			doc = newErrorDocument(asError(fetchErr))
		}
		if doc != nil {
			if err := writeJSONLine(wa.w, doc); err != nil {
				return true, err
			}
		}
		return gone, nil
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", wa.st.dim(fmt.Sprintf("Every %s: sandbox status %s    %s    Ctrl-C to stop",
		sandbox.FormatDuration(wa.interval), wa.name, formatTime(wa.now(), wa.loc))))
	switch {
	case view != nil:
		renderStatus(&b, wa.st, view, wa.now(), wa.loc)
	case gone:
		fmt.Fprintf(&b, "Sandbox %s no longer exists\n", wa.name)
	default:
		fmt.Fprintf(&b, "%s %s (retrying in %s)\n", wa.st.red("error:"), printable(asError(fetchErr).Message), sandbox.FormatDuration(wa.interval))
	}
	if gone {
		fmt.Fprintf(&b, "\nSandbox %s is gone; stopped watching.\n", wa.name)
	}
	wa.writeFrame(b.String())
	return gone, nil
}

// writeFrame shows one frame: over the previous one on a terminal (cursor home, each line
// cleared to its end, the rest of the screen cleared), after a blank line otherwise.
func (wa *watcher) writeFrame(frame string) {
	defer func() { wa.frames++ }()
	if !wa.inPlace {
		if wa.frames > 0 {
			fmt.Fprintln(wa.w)
		}
		fmt.Fprint(wa.w, frame)
		return
	}
	var b strings.Builder
	b.WriteString(cursorHome)
	if wa.frames == 0 {
		b.WriteString(clearScreenDown)
	}
	b.WriteString(strings.ReplaceAll(frame, "\n", clearLineRight+"\n"))
	b.WriteString(clearScreenDown)
	fmt.Fprint(wa.w, b.String())
}

// watchStatus refreshes until the sandbox is gone (nil), Ctrl-C (nil) or an error that
// retrying cannot fix.
func (a *app) watchStatus(ctx context.Context, c *Client, name string, interval time.Duration) error {
	wa := &watcher{
		w: a.env.Stdout, st: a.outStyle(), name: name, interval: interval,
		inPlace: !a.json && a.stdoutIsTerminal(), jsonLines: a.json,
		now: a.now, loc: a.loc(),
	}
	if wa.inPlace {
		fmt.Fprint(wa.w, hideCursor)
		defer fmt.Fprint(wa.w, showCursor)
	}
	ticker := a.env.NewTicker(interval)
	defer ticker.Stop()
	for {
		view, err := fetchStatus(ctx, c, name)
		if ctx.Err() != nil {
			return nil // Ctrl-C is how a watch normally ends
		}
		done, err := wa.step(view, err)
		if done {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
	}
}

// usageFields are the lines of a sandbox's usage in status (docs/api.md, "Usage").
func usageFields(st style, u *apiwire.Usage, now time.Time, loc *time.Location) [][2]string {
	events := "none routed yet"
	if u.LastEventAt != nil {
		events = fmt.Sprintf("%d routed, the last at %s (%s)", u.EventsRouted, formatTime(*u.LastEventAt, loc), ago(*u.LastEventAt, now))
	}
	keys := "not counted yet (the cleanup counts them every run)"
	if u.Keys != nil {
		keys = fmt.Sprintf("%d", *u.Keys)
		if u.RedisBytes != nil {
			memory := fmt.Sprintf("%s of the %s a sandbox may hold", formatBytes(*u.RedisBytes), formatBytes(u.RedisBytesLimit))
			if u.RedisBytesLimit > 0 && *u.RedisBytes > u.RedisBytesLimit {
				memory = st.red(memory + ": over it, the cleanup switches off the sandbox's Redis user; sandbox connect switches it on, then delete keys")
			}
			keys += ", " + memory
		}
		if u.KeysCountedAt != nil {
			keys += " (counted by the cleanup " + ago(*u.KeysCountedAt, now) + ")"
		}
	}
	schema := formatBytes(u.SchemaBytes)
	if u.CatalogBytes != nil {
		schema += ", and " + formatBytes(*u.CatalogBytes) + " in the catalogs"
		if u.CatalogCountedAt != nil {
			schema += " (counted by the cleanup " + ago(*u.CatalogCountedAt, now) + ")"
		}
	}
	fields := [][2]string{
		{"Events", events},
		{"Stream", fmt.Sprintf("%d entries, %d pending", u.StreamLength, u.StreamPending)},
		{"Schema", schema},
		{"Keys", keys},
	}
	after := humanDuration(time.Duration(u.IdleAfterSeconds) * time.Second)
	if u.Idle {
		fields = append(fields, [2]string{"Idle", st.yellow(fmt.Sprintf("yes: no event for %s (idle after %s); destroy it if it is no longer needed",
			humanDuration(time.Duration(u.IdleSeconds)*time.Second), after))})
	} else {
		fields = append(fields, [2]string{"Idle", fmt.Sprintf("no (idle after %s without an event)", after)})
	}
	if len(u.Unavailable) > 0 {
		fields = append(fields, [2]string{"Unavailable", st.red(strings.Join(u.Unavailable, ", ") + ": those figures show zero")})
	}
	return fields
}

// formatBytes is a size for people: bytes, or kB, MB, GB (powers of 1024, one decimal).
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}
