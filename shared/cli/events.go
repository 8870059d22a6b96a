package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const (
	// followInterval is the tick of `events --follow`: it asks for new entries every tick,
	// or every few ticks once idle (idleTicks).
	followInterval = time.Second
	// eventsPageSize is the entries asked for per request: the API's maximum, so that
	// reading a whole stream takes few requests.
	eventsPageSize = 1000
)

func (a *app) eventsCommand() *cobra.Command {
	var (
		follow, payload bool
		since           string
		start           EventsOptions // from --since, before any request
	)
	cmd := &cobra.Command{
		Use:   "events NAME",
		Short: "Show the events in a sandbox's stream (with --follow, as they arrive)",
		Long: "events prints the entries of a sandbox's event stream, oldest first, one line each: when\n" +
			"the router appended it, the event type, the guild, the payload's size, the gateway\n" +
			"sequence number and the entry id. It reads through the API (GET /v1/sandboxes/{name}/events),\n" +
			"as the owner, a collaborator or an admin, and never touches the workers' consumer group\n" +
			"(sandbox events rewind NAME --to TIME|ID moves it back).\n\n" +
			"Without --since it starts at the oldest entry the stream holds (it keeps the newest\n" +
			"ROUTER_STREAM_MAXLEN, 10000 by default); --since 10m starts ten minutes ago, --since <id>\n" +
			"after that entry (the id a previous run printed last). When entries after the start were\n" +
			"trimmed, it says so once.\n\n" +
			"--follow then keeps asking for new entries every second (less often while nothing\n" +
			"arrives) until Ctrl-C, or until the sandbox is destroyed. --json prints each entry as one\n" +
			"JSON line (the API's event object); --payload adds the gateway payload.",
		Args: cobra.ExactArgs(1),
		RunE: a.onSandbox(func(ctx context.Context, c *Client, name string) error {
			start.Limit, start.IncludePayload = eventsPageSize, payload
			r := &eventsPrinter{
				w: a.env.Stdout, notes: a.env.Stderr, st: a.outStyle(), loc: a.loc(),
				name: name, json: a.json, payload: payload, since: since,
			}
			return a.showEvents(ctx, c, r, start, follow)
		}, func(*cobra.Command) (err error) {
			start, err = eventsStart(since)
			return err
		}),
	}
	cmd.AddCommand(a.eventsRewindCommand()) // rewind.go
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events until Ctrl-C (or until the sandbox is destroyed)")
	f.StringVar(&since, "since", "", "start at now minus a duration (10m, 2h, 1d) or after an entry id (1718000000000-0)")
	f.BoolVar(&payload, "payload", false, "print each event's gateway payload too")
	return cmd
}

// eventsStart reads --since: an entry id (the entries after it), a duration (the entries of
// that last stretch of time), or nothing (from the oldest entry).
func eventsStart(since string) (EventsOptions, error) {
	switch {
	case since == "":
		return EventsOptions{}, nil
	case isStreamID(since):
		return EventsOptions{After: since}, nil
	}
	if _, err := parseDuration("since", since); err != nil {
		e := asError(err)
		e.Message = fmt.Sprintf("--since %q is neither a duration (%s) nor a stream entry id (1718000000000-0)", since, sandbox.DurationForms)
		return EventsOptions{}, e
	}
	return EventsOptions{Since: since}, nil
}

// isStreamID reports whether s is a complete Redis stream entry id, ms-seq, as the API takes
// it: two unsigned 64-bit decimals.
func isStreamID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok || ms == "" || seq == "" || strings.ContainsAny(s, "+") {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

// showEvents prints the pages from start on: until the stream's end, or with follow until
// Ctrl-C (exit 0), or until the sandbox is destroyed or gone. A follower retries failures a
// retry can fix; other failures end it with their error.
func (a *app) showEvents(ctx context.Context, c *Client, r *eventsPrinter, opts EventsOptions, follow bool) error {
	var ticker Ticker
	if follow {
		ticker = a.env.NewTicker(followInterval)
		defer ticker.Stop()
	}
	seen, idle := false, 0
	for {
		page, err := c.Events(ctx, r.name, opts)
		if follow && ctx.Err() != nil {
			return nil // Ctrl-C is how a follower normally ends
		}
		switch {
		case err == nil:
			seen = true
			if err := r.page(page); err != nil {
				return err
			}
			opts = EventsOptions{After: page.Next, Limit: opts.Limit, IncludePayload: opts.IncludePayload}
			if page.More {
				continue // the rest is there already
			}
			if !follow {
				r.summary(page)
				return nil
			}
			if page.Status == statusDestroyed {
				r.note("Sandbox %s is destroyed: no event arrives any more; stopped following.", r.name)
				return nil
			}
			r.following()
			idle++
			if len(page.Events) > 0 {
				idle = 0
			}
		case !follow:
			return err
		case seen && errors.Is(err, &Error{Code: sandbox.CodeNotFound}):
			r.note("Sandbox %s no longer exists; stopped following.", r.name)
			return nil
		case !transient(err):
			return err
		default:
			if err := r.retrying(asError(err)); err != nil {
				return err
			}
			idle++
		}
		for range idleTicks(idle) {
			select {
			case <-ctx.Done():
				return nil
			case <-ticker.C():
			}
		}
	}
}

// idleTicks is how many ticks a follower waits after idle requests in a row brought nothing:
// every tick at first, then every 2nd, then every 5th, so that a follower left running asks
// the API about every 5 seconds, and one that sees events asks every second.
func idleTicks(idle int) int {
	switch {
	case idle < 10:
		return 1
	case idle < 20:
		return 2
	}
	return 5
}

// eventsPrinter writes the events of one run: a line per event for people (a header first;
// notes on stderr, so that stdout is the events alone), or one JSON line per event.
type eventsPrinter struct {
	w, notes io.Writer
	st       style
	loc      *time.Location
	name     string
	json     bool
	payload  bool
	since    string

	shown      int
	header     bool
	trimmed    bool // the last page said trimmed: say it once per stretch of trimmed pages
	followSaid bool
}

// trimmedDocument is the --json line that says entries were trimmed.
type trimmedDocument struct {
	Trimmed trimmedNotice `json:"trimmed"`
}

type trimmedNotice struct {
	FirstID string `json:"first_id"`
	Message string `json:"message"`
}

// page prints one page: the trimming notice when it starts one, then its events.
func (r *eventsPrinter) page(p *apiwire.EventsPage) error {
	if p.Trimmed && !r.trimmed {
		msg := fmt.Sprintf("entries before %s (%s) were trimmed: the stream keeps only its newest entries, and older ones can no longer be read",
			p.FirstID, r.idTime(p.FirstID))
		if r.json {
			if err := writeJSONLine(r.w, trimmedDocument{trimmedNotice{FirstID: p.FirstID, Message: msg}}); err != nil {
				return err
			}
		} else {
			r.note("note: %s", msg)
		}
	}
	r.trimmed = p.Trimmed
	for i := range p.Events {
		if err := r.event(&p.Events[i]); err != nil {
			return err
		}
	}
	return nil
}

// eventLine is the line of one event for people, and of the header: the columns' widths
// (the first column, the time, is padded by timeColumn, so that it can be dimmed).
const (
	eventLine  = "%s  %-22s  %-19s  %9s  %6s  %s\n"
	timeColumn = "%-27s"
)

func (r *eventsPrinter) event(ev *apiwire.Event) error {
	r.shown++
	if r.json {
		return writeJSONLine(r.w, ev)
	}
	if !r.header {
		r.header = true
		header := fmt.Sprintf(eventLine, fmt.Sprintf(timeColumn, "TIME"), "TYPE", "GUILD", "SIZE", "SEQ", "ID")
		fmt.Fprintln(r.w, r.st.bold(strings.TrimRight(header, "\n")))
	}
	seq := "-"
	if ev.Seq != nil {
		seq = strconv.FormatInt(*ev.Seq, 10)
	}
	guild := printable(ev.GuildID)
	if guild == "" {
		guild = "-"
	}
	at := r.st.dim(fmt.Sprintf(timeColumn, formatEventTime(ev.Time, r.loc)))
	_, err := fmt.Fprintf(r.w, eventLine, at, printable(ev.Type), guild, strconv.Itoa(ev.Size)+" B", seq, ev.ID)
	if err != nil || !r.payload {
		return err
	}
	switch {
	case ev.PayloadOmitted:
		_, err = fmt.Fprintln(r.w, "    (payload left out: it is not JSON, or larger than one answer of the API carries)")
	case len(ev.Payload) > 0:
		_, err = fmt.Fprintf(r.w, "    %s\n", printable(string(ev.Payload)))
	}
	return err
}

// summary ends a run without --follow, on stderr: how many events, and what the stream holds.
func (r *eventsPrinter) summary(p *apiwire.EventsPage) {
	switch {
	case r.shown > 0:
		r.note("%s; the stream holds %d.", plural(r.shown, "event", "events"), p.Length)
	case p.Length == 0:
		r.note("No events: the stream of sandbox %s is empty.", r.name)
	case r.since != "":
		r.note("No events since %s; the stream holds %d.", r.since, p.Length)
	default:
		r.note("No events; the stream holds %d.", p.Length)
	}
}

// following says once, when a follower first waits, that it does.
func (r *eventsPrinter) following() {
	if !r.followSaid {
		r.followSaid = true
		r.note("Following the events of sandbox %s; Ctrl-C to stop.", r.name)
	}
}

// retrying shows a failure a follower retries: a line on stderr, or with --json the error
// document as a line of the stream (as `status --watch` does).
func (r *eventsPrinter) retrying(e *Error) error {
	if r.json {
		return writeJSONLine(r.w, newErrorDocument(e))
	}
	r.note("%s %s (retrying)", r.st.red("error:"), e.Message)
	return nil
}

// note writes a line for people on stderr; --json keeps stderr empty.
func (r *eventsPrinter) note(format string, args ...any) {
	if !r.json {
		fmt.Fprintf(r.notes, format+"\n", args...)
	}
}

// idTime is the time in an entry id, for people.
func (r *eventsPrinter) idTime(id string) string {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return "unknown time"
	}
	return formatEventTime(time.UnixMilli(n), r.loc)
}

// formatEventTime is an event's time for people, to the millisecond.
func formatEventTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04:05.000 MST")
}
