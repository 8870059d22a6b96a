package cleanup

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// Job is the scheduled cleanup (EventBridge, every 15 minutes); the Lambda handler and the
// local loop share it.
type Job struct {
	Service *Service
	// RemoveOrphans is CLEANUP_ORPHANED.
	RemoveOrphans bool
}

// Handle runs once for a scheduled event. The event carries nothing the run needs; it is
// logged so that a run can be matched to its schedule. Wrap it with lambdakit.Wrap.
func (j *Job) Handle(ctx context.Context, rec *metrics.Recorder, ev events.EventBridgeEvent) (RunReport, error) {
	slog.InfoContext(ctx, "cleanup run starting", "event_id", ev.ID, "detail_type", ev.DetailType,
		"scheduled_at", ev.Time, "resources", ev.Resources, "remove_orphans", j.RemoveOrphans)
	return j.Service.Run(ctx, RunOptions{RemoveOrphans: j.RemoveOrphans, Metrics: rec})
}
