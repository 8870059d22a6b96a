package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// stepTeardown runs the teardown steps of DESIGN §5 on the real stores, recording each in
// the teardown record, so destroy's wiring is tested end to end until shared/cleanup's
// teardown replaces it in the function.
type stepTeardown struct {
	e           *env
	lockTimeout time.Duration
}

func (s stepTeardown) Destroy(ctx context.Context, actor, id string) (*sandbox.Sandbox, error) {
	e := s.e
	sb, err := e.manager.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	steps := map[string]any{}
	for _, g := range sb.Guilds {
		if err := e.manager.RemoveGuild(ctx, actor, id, g); err != nil {
			return nil, err
		}
	}
	steps["mappings_removed"] = sb.Guilds
	pattern, err := keys.NamespacePattern(id)
	if err != nil {
		return nil, err
	}
	var unlinked int64
	iter := e.rdb.Scan(ctx, 0, pattern, 100).Iterator()
	for iter.Next(ctx) {
		n, err := e.rdb.Unlink(ctx, iter.Val()).Result()
		if err != nil {
			return nil, err
		}
		unlinked += n
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	steps["redis_keys_deleted"] = unlinked
	dropped, err := e.resources.Drop(ctx, id, s.lockTimeout)
	if err != nil {
		steps["failed_step"] = "drop"
		steps["error"] = "schema busy"
		if rerr := s.record(ctx, id, steps); rerr != nil {
			return nil, rerr
		}
		return nil, fmt.Errorf("teardown of %s: %w", id, err)
	}
	steps["schema_dropped"] = dropped.SchemaExisted
	steps["role_dropped"] = dropped.RoleExisted
	if err := s.record(ctx, id, steps); err != nil {
		return nil, err
	}
	return e.manager.Transition(ctx, actor, id, sandbox.StatusDestroyed, nil)
}

func (s stepTeardown) record(ctx context.Context, id string, steps map[string]any) error {
	b, err := json.Marshal(steps)
	if err != nil {
		return err
	}
	_, err = s.e.pool.Exec(ctx, `UPDATE sandbox_control.sandboxes SET teardown = $2, cleanup_attempts = cleanup_attempts + 1 WHERE id = $1`, id, b)
	return err
}

// catalogCleanup answers the admin routes from real queries: a run reports the control
// plane's gauges, the orphan report lists sandbox schemas without a sandbox row.
type catalogCleanup struct{ e *env }

func (c catalogCleanup) RunNow(ctx context.Context) (any, error) {
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
