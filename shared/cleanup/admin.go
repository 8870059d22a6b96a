package cleanup

import (
	"context"
	"time"
)

// AdminDeadlineMargin is the deadline margin of runs started through the API, whose
// invocations are short (API Gateway waits 30 seconds at most).
const AdminDeadlineMargin = 3 * time.Second

// Admin adapts the Service to the API's admin routes (POST /v1/admin/cleanup,
// GET /v1/admin/orphans).
type Admin struct {
	Service *Service
}

// RunNow runs cleanup once (without removing orphans) and returns its RunReport.
func (a Admin) RunNow(ctx context.Context) (any, error) {
	return a.Service.Run(ctx, RunOptions{DeadlineMargin: AdminDeadlineMargin})
}

// OrphansResult is the answer of Orphans.
type OrphansResult struct {
	Report  OrphanReport   `json:"report"`
	Removal *OrphanRemoval `json:"removal,omitempty"`
}

// Orphans reports the orphans and, when remove is set, removes them.
func (a Admin) Orphans(ctx context.Context, remove bool) (any, error) {
	report, err := a.Service.FindOrphans(ctx)
	if err != nil {
		return nil, err
	}
	res := OrphansResult{Report: report}
	if remove {
		removal, err := a.Service.RemoveOrphans(ctx, report)
		res.Removal = &removal
		if err != nil {
			return res, err
		}
	}
	return res, nil
}
