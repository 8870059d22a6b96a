package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The headers `sandbox forward` sends with each event's payload (docs/cli.md, forward).
const (
	HeaderEventType = "X-Sandbox-Event-Type"
	HeaderGuildID   = "X-Sandbox-Guild-Id"
	HeaderSeq       = "X-Sandbox-Seq"
	HeaderStreamID  = "X-Sandbox-Stream-Id"
	HeaderMessageID = "X-Sandbox-Message-Id"
	HeaderGroupID   = "X-Sandbox-Group-Id"
	HeaderSandbox   = "X-Sandbox-Name"
	HeaderAttempt   = "X-Sandbox-Attempt"
)

const (
	// forwardPageSize is the entries asked for per read: the API's maximum.
	forwardPageSize = 100
	// defaultForwardGroup is the sandbox's own consumer group.
	defaultForwardGroup = "workers"
	// backoffFirst and backoffMax bound the wait between two attempts of one entry (and
	// between two failed API calls): doubling from the first to the maximum.
	backoffFirst = 250 * time.Millisecond
	backoffMax   = 30 * time.Second
	// ackAttempts bounds the tries of one acknowledgement.
	ackAttempts = 5
)

func (a *app) forwardCommand() *cobra.Command {
	var (
		to, group, consumer string
		print               bool
		maxAttempts         int
	)
	wait, claimIdle, postTimeout := 10*time.Second, time.Minute, 30*time.Second
	cmd := &cobra.Command{
		Use:   "forward NAME (--to URL | --print)",
		Short: "Forward a sandbox's events to a local URL (or stdout), from anywhere",
		Long: "forward consumes a sandbox's event stream through the API as a consumer of a consumer\n" +
			"group, from anywhere the API is reachable (no Redis access needed), and POSTs each event's\n" +
			"raw gateway payload to --to, with headers " + HeaderEventType + ", " + HeaderGuildID + ",\n" +
			HeaderSeq + ", " + HeaderStreamID + " and " + HeaderMessageID + ".\n\n" +
			"A 2xx answer acknowledges the entry; anything else is retried with backoff, and reported.\n" +
			"Entries are forwarded in stream order, at least once: on start it forwards first the\n" +
			"entries left pending on its consumer (a previous run that crashed), then takes over\n" +
			"entries pending on other consumers of the group for longer than --claim-idle. Two\n" +
			"forwarders with different --consumer names in one group share the entries.\n\n" +
			"One line per event (time, type, guild, status, latency, entry id); --json prints JSON\n" +
			"lines. --print writes the payloads to stdout instead, one per line. Ctrl-C stops after\n" +
			"the entry in flight.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			if err := checkName(name); err != nil {
				return err
			}
			f := &forwarder{
				name: name, group: group, consumer: consumer, print: print, json: a.json,
				wait: wait, claimIdle: claimIdle, postTimeout: postTimeout, maxAttempts: maxAttempts,
				out: a.env.Stdout, notes: a.env.Stderr, st: a.outStyle(), est: a.errStyle(), loc: a.loc(), now: a.now,
			}
			if err := f.check(to); err != nil {
				return err
			}
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			f.api = c
			f.http = &http.Client{Transport: http.DefaultTransport, CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect is an answer like any other: not 2xx
			}}
			work := a.env.forwardWork
			if work == nil {
				// Ctrl-C stops reading and retrying, but the entry in flight is finished.
				work = context.WithoutCancel(cmd.Context())
			}
			return f.run(cmd.Context(), work)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&to, "to", "", "the URL to POST each event's payload to, e.g. http://localhost:3000/events")
	fl.BoolVar(&print, "print", false, "write the payloads to stdout, one per line, instead of POSTing them")
	fl.StringVar(&group, "group", defaultForwardGroup, "the consumer group (created at the start of the stream if missing)")
	fl.StringVar(&consumer, "consumer", "", "the consumer's name within the group (default: forward-<hostname>)")
	fl.Var(durationFlag{&wait, "wait"}, "wait", "how long each read waits for new events, at most 20s")
	fl.Var(durationFlag{&claimIdle, "claim-idle"}, "claim-idle", "take over entries pending on other consumers for longer than this")
	fl.Var(durationFlag{&postTimeout, "post-timeout"}, "post-timeout", "bound on each POST to --to")
	fl.IntVar(&maxAttempts, "max-attempts", 0, "give up on an entry after this many failed attempts, leaving it pending (0: retry until Ctrl-C)")
	return cmd
}

// forwarder is one run of `sandbox forward`.
type forwarder struct {
	api  *Client
	http *http.Client

	name, group, consumer string
	to                    *url.URL
	print, json           bool
	wait, claimIdle       time.Duration
	postTimeout           time.Duration
	maxAttempts           int

	out, notes io.Writer
	st, est    style
	loc        *time.Location
	now        func() time.Time

	// stop is cancelled by Ctrl-C: no new read, attempt or retry starts. work carries the
	// entry in flight (its POST and acknowledgement) to its end.
	stop, work context.Context

	seen      bool
	forwarded int
}

// check validates the flags that need no API.
func (f *forwarder) check(to string) error {
	switch {
	case to == "" && !f.print:
		return usageError{errors.New("give --to URL (where to POST the events) or --print (write them to stdout)")}
	case to != "" && f.print:
		return usageError{errors.New("--to and --print exclude each other")}
	case f.print && f.json:
		return usageError{errors.New("--print writes the payloads to stdout: not with --json")}
	case f.maxAttempts < 0:
		return usageError{errors.New("--max-attempts must be 0 (no limit) or more")}
	case f.wait > 20*time.Second:
		return &Error{Code: CodeUsage, Field: "wait", Message: "--wait must be at most 20s (the API's bound)"}
	case f.claimIdle < time.Second || f.claimIdle > 24*time.Hour:
		return &Error{Code: CodeUsage, Field: "claim-idle", Message: "--claim-idle must be between 1s and 1d"}
	}
	if to != "" {
		u, err := url.Parse(to)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{Code: CodeUsage, Field: "to", Message: fmt.Sprintf("--to %q is not an http or https URL with a host", to)}
		}
		f.to = u
	}
	if f.group == "" {
		f.group = defaultForwardGroup
	}
	if err := fromDomain(sandbox.ValidateConsumerName("group", f.group), "group"); err != nil {
		return usageOf(err)
	}
	if f.consumer == "" {
		f.consumer = defaultConsumer()
	}
	return usageOf(fromDomain(sandbox.ValidateConsumerName("consumer", f.consumer), "consumer"))
}

// usageOf makes a flag's validation error a usage error.
func usageOf(err error) error {
	if err == nil {
		return nil
	}
	e := asError(err)
	e.Code = CodeUsage
	return e
}

// defaultConsumer is forward-<hostname>, with what a consumer name cannot hold replaced: a
// forwarder restarted on the same machine is the same consumer and finds its pending entries.
func defaultConsumer() string {
	host, _ := os.Hostname()
	b := []byte("forward-" + host)
	for i, c := range b {
		if !consumerByte(c) {
			b[i] = '-'
		}
	}
	return strings.TrimRight(string(b[:min(len(b), 64)]), ".-")
}

// consumerByte reports whether a consumer name may hold c (sandbox.ConsumerNamePattern).
func consumerByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// run forwards until stop is cancelled (exit 0), or the sandbox is gone, or a failure a retry
// cannot fix.
func (f *forwarder) run(stop, work context.Context) error {
	f.stop, f.work = stop, work
	dest := "stdout"
	if f.to != nil {
		dest = f.to.String()
	}
	f.note("Forwarding the events of sandbox %s (group %s, consumer %s) to %s; Ctrl-C to stop.", f.name, f.group, f.consumer, dest)
	after := "0-0" // this consumer's pending entries first: a previous run's
	claimDue := false
	lastClaim := time.Time{}
	failures := 0
	for f.stop.Err() == nil {
		var page *apiwire.ConsumePage
		var err error
		switch {
		case after != "":
			page, err = f.api.ReadEvents(f.stop, f.name, apiwire.ConsumeReadRequest{Group: f.group, Consumer: f.consumer, Count: ptr(forwardPageSize), After: after})
		case claimDue || lastClaim.IsZero():
			var more bool
			more, err = f.claim()
			if err == nil {
				claimDue, lastClaim = false, time.Now()
				if more {
					after = "0-0" // claimed entries the answers left out
				}
				continue
			}
		default:
			req := apiwire.ConsumeReadRequest{Group: f.group, Consumer: f.consumer, Count: ptr(forwardPageSize)}
			if f.wait > 0 {
				req.Wait = sandbox.FormatDuration(f.wait)
			}
			page, err = f.api.ReadEvents(f.stop, f.name, req)
		}
		if f.stop.Err() != nil {
			break
		}
		if err != nil {
			failures++
			if done, err := f.failed(err, failures); done {
				return err
			}
			continue
		}
		failures, f.seen = 0, true
		if !f.forwardPage(page) {
			break
		}
		switch {
		case page.More:
			after = page.Next
		case after != "":
			after = "" // the pending entries are done: on to new ones
		case len(page.Entries) == 0 && time.Since(lastClaim) >= f.claimIdle:
			claimDue = true
		}
	}
	f.note("Stopped: %s forwarded.", plural(f.forwarded, "event", "events"))
	return nil
}

func ptr[T any](v T) *T { return &v }

// claim takes over, page by page, the entries pending on other consumers past claimIdle, and
// forwards them. more: claimed entries were left out of the answers (they are pending now).
func (f *forwarder) claim() (more bool, err error) {
	start := "0-0"
	for f.stop.Err() == nil {
		page, err := f.api.ClaimEvents(f.stop, f.name, apiwire.ConsumeClaimRequest{
			Group: f.group, Consumer: f.consumer, MinIdle: sandbox.FormatDuration(f.claimIdle), Start: start, Count: ptr(forwardPageSize),
		})
		if err != nil {
			if errors.Is(err, &Error{Code: sandbox.CodeNotFound}) && f.sandboxExists() {
				return false, nil // the group does not exist yet: the first read creates it
			}
			return more, err
		}
		f.seen = true
		more = more || page.More
		if !f.forwardPage(page) {
			return more, nil
		}
		if page.Next == "0-0" || page.Next == "" {
			return more, nil
		}
		start = page.Next
	}
	return more, nil
}

// sandboxExists tells a missing group (the claim's 404) from a missing sandbox.
func (f *forwarder) sandboxExists() bool {
	_, err := f.api.Get(f.stop, f.name)
	return err == nil
}

// failed handles a failed API call: done when forwarding is over (with the error to end
// with, nil for a sandbox that is gone), else it waited its backoff and the call is retried.
func (f *forwarder) failed(err error, failures int) (done bool, _ error) {
	e := asError(err)
	switch {
	case e.Code == sandbox.CodeInvalidTransition:
		f.note("Sandbox %s is not running (%s); stopped forwarding.", f.name, e.Message)
		return true, f.endWith(e)
	case f.seen && e.Code == sandbox.CodeNotFound:
		f.note("Sandbox %s or its event stream no longer exists; stopped forwarding.", f.name)
		return true, nil
	case !transient(err):
		return true, err
	}
	d := backoff(failures)
	if f.json {
		_ = writeJSONLine(f.out, newErrorDocument(e))
	} else {
		fmt.Fprintf(f.notes, "%s %s (retrying in %s)\n", f.errStyle().red("error:"), printable(e.Message), d)
	}
	f.sleep(d)
	return false, nil
}

// endWith is nil for a sandbox forwarding saw running (it ended since), the error otherwise.
func (f *forwarder) endWith(e *Error) error {
	if f.seen {
		return nil
	}
	return e
}

func (f *forwarder) errStyle() style { return f.est }

// forwardPage forwards a page's entries in order and acknowledges its deleted ids; false when
// stop ended it (the entries not forwarded stay pending on the consumer).
func (f *forwarder) forwardPage(page *apiwire.ConsumePage) bool {
	for i := range page.Entries {
		if f.stop.Err() != nil {
			return false
		}
		f.forward(&page.Entries[i])
	}
	if len(page.Deleted) > 0 {
		for _, id := range page.Deleted {
			f.record(forwardRecord{ID: id, Status: "deleted", Error: "the stream no longer holds this entry (trimmed or deleted)"}, nil)
		}
		_ = f.ack(page.Deleted...)
	}
	return f.stop.Err() == nil
}

// forward delivers one entry until a 2xx (then acknowledges it), stop, or maxAttempts.
func (f *forwarder) forward(en *apiwire.ConsumedEntry) {
	base := forwardRecord{ID: en.ID, Type: en.Type, GuildID: en.GuildID, Seq: en.Seq, MessageID: en.MessageID}
	if en.PayloadOmitted {
		rec := base
		rec.Status, rec.Error = "skipped", fmt.Sprintf("the payload (%d bytes) is larger than an API answer carries; acknowledged without forwarding", en.Size)
		f.record(rec, en)
		_ = f.ack(en.ID)
		return
	}
	for attempt := 1; ; attempt++ {
		rec := base
		rec.Attempt = attempt
		start := time.Now()
		status, err := f.deliver(en, attempt)
		rec.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
		rec.HTTPStatus = status
		if err == nil && status/100 == 2 {
			rec.Status = "delivered"
			if aerr := f.ack(en.ID); aerr != nil {
				rec.Status, rec.Error = "unacknowledged", "delivered, but the acknowledgement failed: it will be delivered again: "+asError(aerr).Message
			}
			f.forwarded++
			f.record(rec, en)
			return
		}
		rec.Status = "failed"
		if err != nil {
			rec.Error = err.Error()
		}
		giveUp := f.maxAttempts > 0 && attempt >= f.maxAttempts
		switch {
		case f.stop.Err() != nil:
			rec.Error = strings.TrimPrefix(rec.Error+"; stopped: left pending", "; ")
		case giveUp:
			rec.Status = "gave_up"
			rec.Error = strings.TrimPrefix(rec.Error+fmt.Sprintf("; gave up after %d attempts: left pending", attempt), "; ")
		default:
			rec.RetryInMS = backoff(attempt).Milliseconds()
		}
		f.record(rec, en)
		if f.stop.Err() != nil || giveUp {
			return
		}
		f.sleep(backoff(attempt))
		if f.stop.Err() != nil {
			return
		}
	}
}

// deliver POSTs the payload to --to (or writes it to stdout with --print): the HTTP status,
// or an error when there was no answer.
func (f *forwarder) deliver(en *apiwire.ConsumedEntry, attempt int) (int, error) {
	if f.print {
		if _, err := f.out.Write(append(bytes.TrimRight(en.Payload, "\n"), '\n')); err != nil {
			return 0, err
		}
		return http.StatusOK, nil
	}
	ctx, cancel := context.WithTimeout(f.work, f.postTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.to.String(), bytes.NewReader(en.Payload))
	if err != nil {
		return 0, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "sandbox-forward")
	h.Set(HeaderEventType, headerValue(en.Type))
	h.Set(HeaderGuildID, headerValue(en.GuildID))
	h.Set(HeaderStreamID, en.ID)
	h.Set(HeaderMessageID, headerValue(en.MessageID))
	h.Set(HeaderSandbox, f.name)
	h.Set(HeaderAttempt, strconv.Itoa(attempt))
	if en.Seq != nil {
		h.Set(HeaderSeq, strconv.FormatInt(*en.Seq, 10))
	}
	if en.GroupID != "" {
		h.Set(HeaderGroupID, headerValue(en.GroupID))
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return 0, unwrapURLError(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// headerValue keeps a field the sandbox's own code may have written a valid header value:
// printable ASCII, anything else escaped.
func headerValue(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			q := strconv.QuoteToASCII(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// ack acknowledges ids, retrying what a retry can fix a few times, even after stop: it
// completes the entry in flight.
func (f *forwarder) ack(ids ...string) error {
	var err error
	for attempt := 1; attempt <= ackAttempts; attempt++ {
		_, err = f.api.AckEvents(f.work, f.name, apiwire.ConsumeAckRequest{Group: f.group, IDs: ids})
		if err == nil || !transient(err) || f.work.Err() != nil {
			return err
		}
		select {
		case <-f.work.Done():
			return err
		case <-time.After(backoff(attempt)):
		}
	}
	return err
}

// sleep waits d, or less when stop is cancelled.
func (f *forwarder) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.stop.Done():
	case <-f.work.Done():
	case <-t.C:
	}
}

// backoff is the wait after the n-th failure in a row.
func backoff(n int) time.Duration {
	d := backoffFirst
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// forwardRecord is the --json line of one attempt (docs/cli.md, forward).
type forwardRecord struct {
	// At is when the attempt ended.
	At        time.Time `json:"at"`
	ID        string    `json:"id"`
	Type      string    `json:"type,omitempty"`
	GuildID   string    `json:"guild_id,omitempty"`
	Seq       *int64    `json:"seq,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	// Status: delivered (2xx, acknowledged), failed (retried after retry_in_ms, or left
	// pending by Ctrl-C), gave_up (--max-attempts reached, left pending), unacknowledged
	// (delivered, the acknowledgement failed), skipped (a payload too large for the API,
	// acknowledged), deleted (an entry the stream no longer holds, acknowledged).
	Status     string  `json:"status"`
	HTTPStatus int     `json:"http_status,omitempty"`
	LatencyMS  float64 `json:"latency_ms"`
	Attempt    int     `json:"attempt,omitempty"`
	RetryInMS  int64   `json:"retry_in_ms,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// forwardLine is the line of one attempt for people.
const forwardLine = "%s  %-22s  %-19s  %s  %8s  %s%s\n"

// record reports one attempt: a line for people (on stderr with --print, whose stdout is the
// payloads), or a JSON line.
func (f *forwarder) record(rec forwardRecord, _ *apiwire.ConsumedEntry) {
	rec.At = f.now().UTC()
	if f.json {
		_ = writeJSONLine(f.out, rec)
		return
	}
	w := f.out
	if f.print {
		w = f.notes
	}
	st := f.st
	if f.print {
		st = f.est
	}
	status := strconv.Itoa(rec.HTTPStatus)
	switch {
	case rec.Status == "skipped" || rec.Status == "deleted":
		status = rec.Status
	case rec.HTTPStatus == 0:
		status = "error"
	case f.print:
		status = "printed"
	}
	status = fmt.Sprintf("%-7s", status) // padded before it is colored
	if rec.Status == "delivered" {
		status = st.green(status)
	} else {
		status = st.red(status)
	}
	extra := ""
	switch {
	case rec.Status == "failed" && rec.RetryInMS > 0:
		extra = fmt.Sprintf("  attempt %d, retrying in %s", rec.Attempt, time.Duration(rec.RetryInMS)*time.Millisecond)
	case rec.Error != "":
		extra = "  " + rec.Error
	}
	if rec.Status == "failed" && rec.Error != "" && rec.RetryInMS > 0 {
		extra += ": " + rec.Error
	}
	guild := printable(rec.GuildID)
	if guild == "" {
		guild = "-"
	}
	latency := fmt.Sprintf("%.1fms", rec.LatencyMS)
	fmt.Fprintf(w, forwardLine, st.dim(rec.At.In(f.loc).Format("15:04:05.000")), printable(rec.Type), guild, status, latency, rec.ID, printable(extra))
}

// note writes a line for people on stderr; --json keeps stderr empty.
func (f *forwarder) note(format string, args ...any) {
	if !f.json {
		fmt.Fprintf(f.notes, format+"\n", args...)
	}
}
