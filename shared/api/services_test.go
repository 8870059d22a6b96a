package api_test

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// catalogCleanup answers the admin routes from real queries: a run reports the control
// plane's gauges, the orphan report lists sandbox schemas without a sandbox row.
type catalogCleanup struct{ e *env }

func (c catalogCleanup) RunNow(ctx context.Context, _ *metrics.Recorder) (any, error) {
	stats, err := c.e.manager.Stats(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]int{"active": stats.Active, "guild_mappings": stats.GuildMappings}, nil
}

func (c catalogCleanup) Orphans(ctx context.Context, remove bool) (any, error) {
	rows, err := c.e.pool.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sb\_%'
		AND nspname NOT IN (SELECT schema_name FROM sandbox_control.sandboxes) ORDER BY nspname`)
	if err != nil {
		return nil, err
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	if remove {
		for _, s := range schemas {
			if _, err := c.e.pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
				return nil, err
			}
		}
	}
	return map[string]any{"schemas": schemas, "removed": remove}, nil
}
