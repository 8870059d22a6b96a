package api_test

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// catalogCleanup answers the admin routes from real queries: a run reports the control
// plane's gauges, the orphan report lists sandbox schemas without a sandbox row.
type catalogCleanup struct{ e *env }

func (c catalogCleanup) RunNow(ctx context.Context, _ *metrics.Recorder) (apiwire.RunReport, error) {
	stats, err := c.e.manager.Stats(ctx)
	if err != nil {
		return apiwire.RunReport{}, err
	}
	return apiwire.RunReport{ActiveSandboxes: stats.Active, GuildMappings: stats.GuildMappings}, nil
}

func (c catalogCleanup) Orphans(ctx context.Context, remove bool) (apiwire.OrphansResponse, error) {
	rows, err := c.e.pool.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sb\_%'
		AND nspname NOT IN (SELECT schema_name FROM sandbox_control.sandboxes) ORDER BY nspname`)
	if err != nil {
		return apiwire.OrphansResponse{}, err
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return apiwire.OrphansResponse{}, err
	}
	var out apiwire.OrphansResponse
	for _, s := range schemas {
		out.Report.Orphans = append(out.Report.Orphans, apiwire.Orphan{Type: "schema", Name: s})
	}
	if remove {
		out.Removal = &apiwire.OrphanRemoval{}
		for _, o := range out.Report.Orphans {
			if _, err := c.e.pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{o.Name}.Sanitize()+" CASCADE"); err != nil {
				return out, err
			}
			out.Removal.Removed = append(out.Removal.Removed, o)
		}
	}
	return out, nil
}
