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
// GET /v1/admin/orphans). The service's reports are the API's wire types already.
type Admin struct {
	Service *Service
}

// RunNow runs cleanup once (without removing orphans) and returns its report. The run
// records the metrics of a scheduled run in rec, the API invocation's Recorder (nil: none),
// so that a run started by an operator counts in the alarms like a scheduled one. It sends no
// expiry warnings: the API has no topic, and a warning it claimed would reach no owner.
func (a Admin) RunNow(ctx context.Context, rec *metrics.Recorder) (apiwire.RunReport, error) {
	report, err := a.Service.Run(ctx, RunOptions{DeadlineMargin: AdminDeadlineMargin, Metrics: rec, SkipExpiryWarnings: true})
	return report, err
}

// Orphans reports the orphans and, when remove is set, removes them.
func (a Admin) Orphans(ctx context.Context, remove bool) (apiwire.OrphansResponse, error) {
	report, err := a.Service.FindOrphans(ctx)
	if err != nil {
		return apiwire.OrphansResponse{}, err
	}
	res := apiwire.OrphansResponse{Report: report}
	if remove {
		removal, err := a.Service.RemoveOrphans(ctx, report)
		res.Removal = &removal
		if err != nil {
			return res, err
		}
	}
	return res, nil
}
