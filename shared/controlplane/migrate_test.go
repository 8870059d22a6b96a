package controlplane_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
)

func TestMigrateTwiceIsANoOp(t *testing.T) {
	pool, _ := testenv.Postgres(t)
	ctx := context.Background()
	all, err := controlplane.Migrations()
	if err != nil || len(all) < 2 {
		t.Fatalf("migrations: %v %v", all, err)
	}
	first, err := controlplane.Migrate(ctx, pool)
	if err != nil || len(first) != len(all) {
		t.Fatalf("first run applied %v, %v", first, err)
	}
	second, err := controlplane.Migrate(ctx, pool)
	if err != nil || len(second) != 0 {
		t.Fatalf("second run applied %v, %v", second, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.schema_migrations`); n != len(all) {
		t.Fatalf("recorded %d migrations, want %d", n, len(all))
	}
}

func TestMigrateConcurrently(t *testing.T) {
	_, url := testenv.Postgres(t)
	ctx := context.Background()
	const workers = 6
	var wg sync.WaitGroup
	applied := make([][]string, workers)
	errs := make([]error, workers)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A pool each: separate processes in production.
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			applied[i], errs[i] = controlplane.Migrate(ctx, pool)
		}()
	}
	wg.Wait()
	total := 0
	for i := range errs {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	all, _ := controlplane.Migrations()
	if total != len(all) {
		t.Fatalf("applied %d migrations in all, want each of %d exactly once", total, len(all))
	}
}

func TestMigrateRefusesAChangedMigration(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE sandbox_control.schema_migrations SET checksum = 'deadbeefdeadbeefdeadbeef' WHERE version = '0001_control_plane'`); err != nil {
		t.Fatal(err)
	}
	_, err := controlplane.Migrate(ctx, pool)
	if err == nil || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("want a changed-migration error, got %v", err)
	}
}

func TestAuditLogIsAppendOnly(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO sandbox_control.audit_log (actor, action) VALUES ('t', 'test')`); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE sandbox_control.audit_log SET actor = 'x'`,
		`DELETE FROM sandbox_control.audit_log`,
		`TRUNCATE sandbox_control.audit_log`,
	} {
		if _, err := pool.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: want append-only error, got %v", sql, err)
		}
	}
}
