package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/term"
)

// isTerminal reports whether v is a file descriptor attached to a terminal.
func isTerminal(v any) bool {
	if s, ok := v.(*stickyWriter); ok {
		v = s.w
	}
	f, ok := v.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// ANSI sequences for redrawing in place.
const (
	cursorHome      = "\x1b[H"
	clearLineRight  = "\x1b[K"
	clearScreenDown = "\x1b[J"
	hideCursor      = "\x1b[?25l"
	showCursor      = "\x1b[?25h"
)

// spinnerFrames are drawn in turn while a request is in flight.
var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// spinnerInterval is how often the spinner advances (a visual rate, not a timeout).
const spinnerInterval = 100 * time.Millisecond

// spinner shows progress on a terminal. The zero of its writer (nil) makes every method a
// no-op, so callers start one unconditionally and the terminal rules live in one place.
type spinner struct {
	w    io.Writer
	msg  string
	stop chan struct{}
	done sync.WaitGroup
}

// startSpinner draws the first frame at once and keeps turning until stop; w nil: no spinner.
func startSpinner(w io.Writer, st style, msg string) *spinner {
	s := &spinner{w: w, msg: msg, stop: make(chan struct{})}
	if w == nil {
		return s
	}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(spinnerInterval)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(w, "\r%s %s%s", st.yellow(spinnerFrames[i%len(spinnerFrames)]), msg, clearLineRight)
			select {
			case <-s.stop:
				fmt.Fprint(w, "\r"+clearLineRight)
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop erases the spinner's line; safe to call once.
func (s *spinner) Stop() {
	if s.w == nil {
		return
	}
	close(s.stop)
	s.done.Wait()
}
