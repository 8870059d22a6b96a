package api

import (
	"net/http"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// errNoCleanup answers the admin routes of a function the cleanup service is not wired into.
var errNoCleanup = sandbox.Errorf(sandbox.CodeUnavailable, "the cleanup service is not configured in this function")

func (h *Handler) adminCleanup(w http.ResponseWriter, r *http.Request, c caller) error {
	var req apiwire.CleanupRequest
	if _, err := decodeRequest(r, &req); err != nil {
		return err
	}
	if h.deps.Cleanup == nil {
		return errNoCleanup
	}
	h.log.InfoContext(r.Context(), "admin cleanup requested", "principal", c.principal, "remove_orphans", req.RemoveOrphans)
	// The run records the metrics of a scheduled run (CleanupRuns, OrphanedResources, the
	// gauges...) in this invocation's Recorder: a run started here counts like any other.
	run, err := h.deps.Cleanup.RunNow(r.Context(), recorderFrom(r.Context()))
	if err != nil {
		return err
	}
	out := apiwire.CleanupResponse{Run: run}
	if req.RemoveOrphans {
		orphans, err := h.deps.Cleanup.Orphans(r.Context(), true)
		if err != nil {
			return err
		}
		out.Orphans = &orphans
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) adminOrphans(w http.ResponseWriter, r *http.Request, c caller) error {
	if _, err := decodeRequest(r, nil); err != nil {
		return err
	}
	if h.deps.Cleanup == nil {
		return errNoCleanup
	}
	report, err := h.deps.Cleanup.Orphans(r.Context(), false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}
