// Package scheduleadapter connects the cleanup job to its EventBridge schedule: it turns the
// scheduled event Lambda delivers into one run of the job (cleanup.Job.Run), as sqsadapter
// does for the router. The AWS event types stop here: package cleanup knows none, and the
// cleanup function's local runs call the job directly, without an event.
package scheduleadapter

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/botplatform/discord-sandboxes/shared/cleanup"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// FunctionName names the cleanup function in logs.
const FunctionName = "cleanup"

// Job runs cleanup once (cleanup.Job).
type Job interface {
	Run(ctx context.Context, rec *metrics.Recorder) (cleanup.RunReport, error)
}

// Handler returns the cleanup function's Lambda handler: one run of job per scheduled event.
// The event carries nothing the run needs; it is logged (through log) so that a run can be
// matched to its schedule.
func Handler(job Job, log *slog.Logger) lambdakit.MeteredHandler[events.EventBridgeEvent, cleanup.RunReport] {
	return func(ctx context.Context, rec *metrics.Recorder, ev events.EventBridgeEvent) (cleanup.RunReport, error) {
		log.InfoContext(ctx, "scheduled event received", "event_id", ev.ID, "detail_type", ev.DetailType,
			"scheduled_at", ev.Time, "resources", ev.Resources)
		return job.Run(ctx, rec)
	}
}
