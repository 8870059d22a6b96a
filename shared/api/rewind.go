package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// rewind answers POST /v1/sandboxes/{name}/events/rewind: it moves the sandbox's consumer
// group back (provision.RewindGroup), so that its workers read again the entries since a time
// or after an entry id. The stream keeps its newest ROUTER_STREAM_MAXLEN entries: a target
// older than its first entry, once entries were trimmed, is clamped to that entry and the
// answer says so (clamped, first_id), as extend caps an expiry rather than refusing it.
func (h *Handler) rewind(w http.ResponseWriter, r *http.Request, c caller) error {
	var req apiwire.RewindRequest
	var target provision.RewindTarget
	sb, err := h.addressed(r, c, &req, func() (err error) {
		target, err = h.rewindTarget(req.To)
		return err
	})
	if err != nil {
		return err
	}
	if err := sb.CheckRunning(h.now(), "rewind"); err != nil {
		return err
	}
	ctx := r.Context()
	rw, err := h.deps.Resources.RewindGroup(ctx, sb.ID, target)
	var ahead *provision.AheadError
	switch {
	case errors.As(err, &ahead):
		return sandbox.InvalidField("to", "%s is after the last entry the group %s delivered (%s): a rewind moves the group back, never past entries its workers have not read",
			ahead.Position, keys.EventsGroup, ahead.Delivered)
	case errors.Is(err, provision.ErrNoStream), errors.Is(err, provision.ErrNotAStream):
		return sandbox.Errorf(sandbox.CodeInvalidTransition, "sandbox %q has no event stream any more (its worker deleted or replaced it): there is nothing to rewind", sb.Name)
	case errors.Is(err, provision.ErrNoGroup):
		return sandbox.Errorf(sandbox.CodeInvalidTransition, "the stream of sandbox %q has no consumer group %s any more (its workers deleted it): there is nothing to rewind",
			sb.Name, keys.EventsGroup)
	case err != nil:
		return err
	}
	// The group has moved: an audit entry that fails now is logged, and the answer is the
	// failure, so the caller knows the record is missing (a retry rewinds again and records).
	if err := h.deps.Sandboxes.Audit(ctx, c.principal, controlplane.ActionRewind, sb.ID, map[string]any{
		"to": req.To, "position": rw.Position, "previous_id": rw.Previous, "clamped": rw.Clamped, "first_id": rw.FirstID,
	}); err != nil {
		h.log.ErrorContext(ctx, "the consumer group was rewound but the audit entry failed", logkey.Sandbox, sb.ID, logkey.Error, err)
		return err
	}
	out := apiwire.RewindResponse{
		Stream: rw.Key, Group: rw.Group, To: req.To, PreviousID: rw.Previous, Position: rw.Position,
		Clamped: rw.Clamped, FirstID: rw.FirstID, Length: rw.Length, Pending: rw.Pending,
	}
	if first, ok := keys.ParseStreamID(rw.FirstID); ok && first.MS <= maxJSONMillis {
		at := time.UnixMilli(int64(first.MS)).UTC()
		out.Earliest = &at
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// rewindTarget reads the body's "to": an entry id, an RFC 3339 time, or a duration (that long
// ago). A time in the future is refused: no entry is there to read again.
func (h *Handler) rewindTarget(to string) (provision.RewindTarget, error) {
	const forms = "an entry id (1718000000000-0), an RFC 3339 time (2026-01-20T12:00:00Z) or a duration (10m, 2h, 1d)"
	if to == "" {
		return provision.RewindTarget{}, sandbox.InvalidField("to", `"to" is required: %s`, forms)
	}
	if id, ok := keys.ParseStreamID(to); ok {
		return provision.RewindTarget{ID: id}, nil
	}
	now := h.now()
	at, err := time.Parse(time.RFC3339Nano, to)
	if err != nil {
		d, derr := sandbox.ParseDuration(to)
		if derr != nil || d <= 0 {
			return provision.RewindTarget{}, sandbox.InvalidField("to", "%q is none of %s", truncate(to, 60), forms)
		}
		at = now.Add(-d)
	}
	if at.After(now) {
		return provision.RewindTarget{}, sandbox.InvalidField("to", "%s is in the future: a rewind goes back to entries already appended", at.UTC().Format(time.RFC3339))
	}
	return provision.RewindTarget{Time: at, ByTime: true}, nil
}
