package cleanup

import (
	"context"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// AdminDeadlineMargin is the deadline margin of runs started through the API, whose
// invocations are short (API Gateway waits 30 seconds at most).
const AdminDeadlineMargin = 3 * time.Second

// Admin adapts the Service to the API's admin routes (POST /v1/admin/cleanup,
// GET /v1/admin/orphans), answering in the API's wire types: the service's reports keep their
// domain types, the API's answers are the same JSON (TestAdminAnswersAreTheReportsJSON).
type Admin struct {
	Service *Service
}

// RunNow runs cleanup once (without removing orphans) and returns its report. The run
// records the metrics of a scheduled run in rec, the API invocation's Recorder (nil: none),
// so that a run started by an operator counts in the alarms like a scheduled one. It sends no
// expiry warnings: the API has no topic, and a warning it claimed would reach no owner.
func (a Admin) RunNow(ctx context.Context, rec *metrics.Recorder) (apiwire.RunReport, error) {
	report, err := a.Service.Run(ctx, RunOptions{DeadlineMargin: AdminDeadlineMargin, Metrics: rec, SkipExpiryWarnings: true})
	return runReportWire(report), err
}

// Orphans reports the orphans and, when remove is set, removes them.
func (a Admin) Orphans(ctx context.Context, remove bool) (apiwire.OrphansResponse, error) {
	report, err := a.Service.FindOrphans(ctx)
	if err != nil {
		return apiwire.OrphansResponse{}, err
	}
	res := apiwire.OrphansResponse{Report: orphanReportWire(report)}
	if remove {
		removal, err := a.Service.RemoveOrphans(ctx, report)
		wire := orphanRemovalWire(removal)
		res.Removal = &wire
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// The conversions below copy field by field; a nil slice stays nil, so that the JSON is the
// report's own (null and [] differ on the wire).

func runReportWire(r RunReport) apiwire.RunReport {
	out := apiwire.RunReport{
		StartedAt:       r.StartedAt,
		DurationMS:      r.DurationMS,
		DryRun:          r.DryRun,
		ExpiryWarnings:  expiryReportWire(r.ExpiryWarnings),
		CandidateCount:  r.CandidateCount,
		Candidates:      wireSlice(r.Candidates, candidateWire),
		Destroyed:       r.Destroyed,
		Failed:          wireSlice(r.Failed, sandboxFailureWire),
		Skipped:         r.Skipped,
		ClaimsLost:      r.ClaimsLost,
		LeftAtDeadline:  r.LeftAtDeadline,
		Remaining:       r.Remaining,
		OrphansSkipped:  r.OrphansSkipped,
		ActiveSandboxes: r.ActiveSandboxes,
		GuildMappings:   r.GuildMappings,
		Errors:          r.Errors,
	}
	if r.Orphans != nil {
		report := orphanReportWire(*r.Orphans)
		out.Orphans = &report
	}
	if r.OrphansRemoved != nil {
		removal := orphanRemovalWire(*r.OrphansRemoved)
		out.OrphansRemoved = &removal
	}
	return out
}

func expiryReportWire(r ExpiryReport) apiwire.ExpiryReport {
	return apiwire.ExpiryReport{Sent: r.Sent, Failed: r.Failed, Skipped: r.Skipped, Due: wireSlice(r.Due, expiryWarningWire)}
}

func expiryWarningWire(w ExpiryWarning) apiwire.ExpiryWarning {
	return apiwire.ExpiryWarning{SandboxID: w.SandboxID, Name: w.Name, Owner: w.Owner, ExpiresAt: w.ExpiresAt}
}

func candidateWire(c Candidate) apiwire.Candidate {
	return apiwire.Candidate{ID: c.ID, Name: c.Name, Status: c.Status, Reason: string(c.Reason)}
}

func sandboxFailureWire(f SandboxFailure) apiwire.SandboxFailure {
	return apiwire.SandboxFailure{SandboxID: f.SandboxID, Step: string(f.Step), Error: f.Error}
}

func orphanReportWire(r OrphanReport) apiwire.OrphanReport {
	return apiwire.OrphanReport{CheckedAt: r.CheckedAt, GraceSeconds: r.GraceSeconds, Orphans: wireSlice(r.Orphans, orphanWire), Young: r.Young}
}

func orphanWire(o Orphan) apiwire.Orphan {
	return apiwire.Orphan{Type: string(o.Type), Name: o.Name, SandboxID: o.SandboxID, SandboxStatus: o.SandboxStatus,
		Since: o.Since, Keys: o.Keys, Value: o.Value}
}

func orphanRemovalWire(r OrphanRemoval) apiwire.OrphanRemoval {
	return apiwire.OrphanRemoval{
		Removed: wireSlice(r.Removed, orphanWire),
		Kept:    wireSlice(r.Kept, orphanWire),
		Failed: wireSlice(r.Failed, func(f OrphanFailure) apiwire.OrphanFailure {
			return apiwire.OrphanFailure{Orphan: orphanWire(f.Orphan), Error: f.Error}
		}),
	}
}

func wireSlice[T, W any](in []T, convert func(T) W) []W {
	if in == nil {
		return nil
	}
	out := make([]W, len(in))
	for i, v := range in {
		out[i] = convert(v)
	}
	return out
}
