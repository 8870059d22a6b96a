package cleanup

import (
	"context"

	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// Job is the scheduled cleanup run (every 15 minutes): the Lambda adapter of the EventBridge
// schedule (package scheduleadapter) and the local loop of the cleanup function both call
// Run. It knows nothing of AWS events.
type Job struct {
	Service *Service
	// RemoveOrphans is CLEANUP_ORPHANED.
	RemoveOrphans bool
}

// Run runs cleanup once, removing orphans when the job says so, and records the run's
// metrics in rec (nil: none).
func (j *Job) Run(ctx context.Context, rec *metrics.Recorder) (RunReport, error) {
	j.Service.log.DebugContext(ctx, "cleanup run starting", "remove_orphans", j.RemoveOrphans)
	return j.Service.Run(ctx, RunOptions{RemoveOrphans: j.RemoveOrphans, Metrics: rec})
}
