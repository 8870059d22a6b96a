package controlplane_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
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

// The cold-start check reads the schema's version and says what to do when it is not this
// build's; a newer schema (a rollback runs on it) passes.
func TestCheckSchema(t *testing.T) {
	pool, _ := testenv.Postgres(t)
	ctx := t.Context()
	all, err := controlplane.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	latest, previous := all[len(all)-1].Version, all[len(all)-2].Version
	want, err := controlplane.SchemaVersion()
	if err != nil || want != latest {
		t.Fatalf("SchemaVersion() = %q, %v; want %q", want, err, latest)
	}
	wantError := func(step, contains string) {
		t.Helper()
		err := controlplane.CheckSchema(ctx, pool)
		if !errors.Is(err, controlplane.ErrSchemaOutdated) || !strings.Contains(err.Error(), contains) {
			t.Errorf("%s: CheckSchema = %v; want ErrSchemaOutdated saying %q", step, err, contains)
		}
	}

	wantError("never migrated", "database schema is at version none (no migration applied), this build needs "+latest+": run the migrate step")
	if _, err := controlplane.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := controlplane.CheckSchema(ctx, pool); err != nil {
		t.Fatalf("after the migrations: %v", err)
	}

	exec(t, pool, `DELETE FROM sandbox_control.schema_migrations WHERE version = $1`, latest)
	wantError("one behind", "database schema is at version "+previous+", this build needs "+latest+": run the migrate step")
	exec(t, pool, `INSERT INTO sandbox_control.schema_migrations (version, checksum) VALUES ($1, $2)`, latest, all[len(all)-1].Checksum)

	exec(t, pool, `INSERT INTO sandbox_control.schema_migrations (version, checksum) VALUES ('9999_from_a_newer_release', 'x')`)
	if err := controlplane.CheckSchema(ctx, pool); err != nil {
		t.Errorf("a schema a newer release migrated: %v, want nil (migrations are backward compatible)", err)
	}

	exec(t, pool, `DELETE FROM sandbox_control.schema_migrations WHERE version = $1`, all[0].Version)
	wantError("a gap", "lacks "+all[0].Version)
	exec(t, pool, `INSERT INTO sandbox_control.schema_migrations (version, checksum) VALUES ($1, 'deadbeefdeadbeef')`, all[0].Version)
	wantError("a changed migration", "applied migration "+all[0].Version+" changed after it was applied")
}

// CheckSchema only reads: it changes nothing in a database it finds empty.
func TestCheckSchemaRunsNoDDL(t *testing.T) {
	pool, _ := testenv.Postgres(t)
	if err := controlplane.CheckSchema(t.Context(), pool); !errors.Is(err, controlplane.ErrSchemaOutdated) {
		t.Fatalf("CheckSchema on an empty database: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM pg_namespace WHERE nspname = 'sandbox_control'`); n != 0 {
		t.Fatal("CheckSchema created the sandbox_control schema")
	}
}

// The gate checks until the schema is current, then no more.
func TestSchemaGate(t *testing.T) {
	pool, _ := testenv.Postgres(t)
	ctx := t.Context()
	gate := controlplane.NewSchemaGate(pool, nil)
	if err := gate.Check(ctx); !errors.Is(err, controlplane.ErrSchemaOutdated) {
		t.Fatalf("before the migrate step: %v", err)
	}
	if _, err := controlplane.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := gate.Check(ctx); err != nil {
		t.Fatalf("after the migrate step: %v", err)
	}
	exec(t, pool, `DELETE FROM sandbox_control.schema_migrations`)
	if err := gate.Check(ctx); err != nil {
		t.Errorf("the gate checked again once the schema was current: %v", err)
	}
}

// The migrate step applies what is pending, grants the router's role, reports the version,
// and does nothing new the second time.
func TestMigrateStep(t *testing.T) {
	pool, dbURL := testenv.Postgres(t)
	ctx := t.Context()
	role := testenv.RouterRole(t)
	all, _ := controlplane.Migrations()
	req := controlplane.MigrateRequest{Migrate: true, RouterRole: role}
	report, err := controlplane.MigrateStep(ctx, pool, nil, req)
	if err != nil || len(report.Applied) != len(all) || report.Version != all[len(all)-1].Version || report.RouterRole != role {
		t.Fatalf("first step: %+v, %v", report, err)
	}
	report, err = controlplane.MigrateStep(ctx, pool, nil, req)
	if err != nil || len(report.Applied) != 0 || report.Version != all[len(all)-1].Version {
		t.Fatalf("second step: %+v, %v", report, err)
	}
	b, _ := json.Marshal(report)
	if !strings.Contains(string(b), `"applied":[]`) {
		t.Errorf("report %s: an empty step must say applied: []", b)
	}
	// The tests' server is set as docs/deploy.md asks (scripts/services.sh).
	if len(report.Warnings) != 0 {
		t.Errorf("warnings on the tests' server: %q", report.Warnings)
	}
	// A database whose PUBLIC may still make large objects is one a sandbox can fill beyond
	// its disk share: the step says so. The rights are the database's, so the next test's
	// fresh database has them taken again.
	testenv.AdminExec(t, dbURL, "GRANT EXECUTE ON FUNCTION pg_catalog.lo_from_bytea(oid, bytea) TO PUBLIC")
	report, err = controlplane.MigrateStep(ctx, pool, nil, req)
	if err != nil || len(report.Warnings) != 1 || !strings.Contains(report.Warnings[0], "large objects") {
		t.Errorf("with PUBLIC's lo_from_bytea: warnings %q (%v), want the large objects'", report.Warnings, err)
	}

	// The router's role may now read the schema's version: the functions' cold-start check.
	router, err := pgxpool.New(ctx, testenv.RouterURL(t, dbURL))
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	if err := controlplane.CheckSchema(ctx, router); err != nil {
		t.Fatalf("CheckSchema as the router's role: %v", err)
	}

	if _, err := controlplane.MigrateStep(ctx, pool, nil, controlplane.MigrateRequest{Migrate: true, RouterRole: "no_such_role_" + role}); err == nil ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Errorf("granting a role that does not exist: %v", err)
	}
}

// docs/deploy.md shows the router's grants; they are the ones the migrate step makes.
func TestDeployDocShowsTheRouterGrants(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range controlplane.RouterGrants("sandbox_router", "sandbox") {
		if !strings.Contains(string(doc), stmt+";") {
			t.Errorf("docs/deploy.md does not show %s;", stmt)
		}
	}
}

// docs/deploy.md takes from PUBLIC the functions whose rights the migrate step checks.
func TestDeployDocTakesTheLargeObjectsFromPublic(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	stmt := "REVOKE EXECUTE ON FUNCTION " + strings.Join(controlplane.LargeObjectMakers, ", ") + " FROM PUBLIC;"
	if !strings.Contains(string(doc), stmt) {
		t.Errorf("docs/deploy.md does not show %s", stmt)
	}
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestServerSettingWarnings(t *testing.T) {
	for _, c := range []struct {
		settings controlplane.ServerSettings
		want     []string // a word of each warning, in order
	}{
		{controlplane.ServerSettings{TempFileLimit: "256MB", CanQuietSandboxLogs: true}, nil},
		{controlplane.ServerSettings{TempFileLimit: "0", CanQuietSandboxLogs: true}, nil}, // 0 allows no temporary file at all: bounded
		{controlplane.ServerSettings{TempFileLimit: "-1", CanQuietSandboxLogs: true}, []string{"temp_file_limit"}},
		{controlplane.ServerSettings{TempFileLimit: "256MB", MaxPreparedTransactions: 10, CanQuietSandboxLogs: true}, []string{"max_prepared_transactions is 10"}},
		{controlplane.ServerSettings{TempFileLimit: "256MB"}, []string{"log_min_messages"}},
		{controlplane.ServerSettings{TempFileLimit: "-1", MaxPreparedTransactions: 5}, []string{"temp_file_limit", "max_prepared_transactions is 5", "log_min_messages"}},
		// PostgreSQL 16 on may reserve connections for the control user; 15 has nothing to set.
		{controlplane.ServerSettings{TempFileLimit: "256MB", CanQuietSandboxLogs: true, ServerVersionNum: 160004}, []string{"reserved_connections"}},
		{controlplane.ServerSettings{TempFileLimit: "256MB", CanQuietSandboxLogs: true, ServerVersionNum: 160004, ReservedForControl: 5}, nil},
		{controlplane.ServerSettings{TempFileLimit: "256MB", CanQuietSandboxLogs: true, ServerVersionNum: 150013}, nil},
		{controlplane.ServerSettings{TempFileLimit: "256MB", CanQuietSandboxLogs: true, PublicMakesLargeObjects: true}, []string{"lo_from_bytea"}},
	} {
		got := c.settings.Warnings()
		if len(got) != len(c.want) {
			t.Errorf("%+v: %q, want %d warnings", c.settings, got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(got[i], w) || !strings.Contains(got[i], "docs/deploy.md") {
				t.Errorf("%+v: warning %d is %q, want it to name %q and docs/deploy.md", c.settings, i, got[i], w)
			}
		}
	}
}

// With the sandboxes apart (WORKER_DATABASE_URL), the migrate step migrates both databases:
// the worker database gets only what provisioning and teardown need there (the lock on its
// ACL and the default template), none of the control plane's tables; and the cold-start
// check refuses a worker database the step has not reached, saying which database it is.
func TestMigrateStepMigratesAnApartWorkerDatabase(t *testing.T) {
	pool, _ := testenv.Postgres(t)
	workers, _ := testenv.WorkerPostgres(t)
	ctx := t.Context()
	if err := controlplane.CheckSchemas(ctx, pool, workers); !errors.Is(err, controlplane.ErrSchemaOutdated) {
		t.Fatalf("CheckSchemas before any step: %v", err)
	}
	if _, err := controlplane.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	err := controlplane.CheckSchemas(ctx, pool, workers)
	if !errors.Is(err, controlplane.ErrSchemaOutdated) || !strings.HasPrefix(err.Error(), "worker database: ") {
		t.Errorf("CheckSchemas with the control database migrated only: %v; want the worker database's outdated schema", err)
	}
	gate := controlplane.NewSchemaGate(pool, workers)
	if err := gate.Check(ctx); !errors.Is(err, controlplane.ErrSchemaOutdated) {
		t.Errorf("the gate with the worker database not migrated: %v", err)
	}

	wantWorker, err := controlplane.WorkerMigrations()
	if err != nil || len(wantWorker) != 2 {
		t.Fatalf("worker migrations %v, %v", wantWorker, err)
	}
	report, err := controlplane.MigrateStep(ctx, pool, workers, controlplane.MigrateRequest{Migrate: true})
	if err != nil || len(report.Applied) != 0 || len(report.WorkerApplied) != len(wantWorker) || report.WorkerVersion != wantWorker[len(wantWorker)-1].Version {
		t.Fatalf("step: %+v, %v", report, err)
	}
	if err := gate.Check(ctx); err != nil {
		t.Errorf("the gate after the step: %v", err)
	}
	report, err = controlplane.MigrateStep(ctx, pool, workers, controlplane.MigrateRequest{Migrate: true})
	if err != nil || len(report.WorkerApplied) != 0 || report.WorkerVersion == "" {
		t.Errorf("second step: %+v, %v; want nothing applied", report, err)
	}

	var tables []string
	if err := workers.QueryRow(ctx, `SELECT pg_catalog.array_agg(schemaname || '.' || tablename ORDER BY schemaname, tablename) FROM pg_catalog.pg_tables
		WHERE schemaname IN ('sandbox_control', 'sandbox_template')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	want := []string{"sandbox_control.database_acl_lock", "sandbox_control.schema_migrations",
		"sandbox_template.guild_settings", "sandbox_template.members", "sandbox_template.moderation_cases", "sandbox_template.reminders"}
	if strings.Join(tables, " ") != strings.Join(want, " ") {
		t.Errorf("the worker database's tables: %v; want %v", tables, want)
	}
}

// A deployment that moves the sandboxes to a worker database of their own while the control
// database still holds a sandbox's schema fails its migrate step, naming the schema: no
// teardown would look for it there again.
func TestMigrateStepRefusesToLeaveSandboxesBehind(t *testing.T) {
	pool, _ := testenv.Postgres(t)
	workers, _ := testenv.WorkerPostgres(t)
	ctx := t.Context()
	if _, err := controlplane.MigrateStep(ctx, pool, nil, controlplane.MigrateRequest{Migrate: true}); err != nil {
		t.Fatal(err)
	}
	// A schema named like a sandbox's, as an earlier deployment made them, and one that is not.
	if _, err := pool.Exec(ctx, `CREATE SCHEMA sb_0123456789ab; CREATE SCHEMA sb_notasandbox_`); err != nil {
		t.Fatal(err)
	}
	_, err := controlplane.MigrateStep(ctx, pool, workers, controlplane.MigrateRequest{Migrate: true})
	if err == nil || !strings.Contains(err.Error(), "sb_0123456789ab") || strings.Contains(err.Error(), "sb_notasandbox_") {
		t.Fatalf("moving the sandboxes apart with one left behind: %v", err)
	}
	if err := controlplane.CheckWorkerSchema(ctx, workers); !errors.Is(err, controlplane.ErrSchemaOutdated) {
		t.Errorf("the refused step migrated the worker database: %v", err)
	}
	if _, err := pool.Exec(ctx, `DROP SCHEMA sb_0123456789ab`); err != nil {
		t.Fatal(err)
	}
	if _, err := controlplane.MigrateStep(ctx, pool, workers, controlplane.MigrateRequest{Migrate: true}); err != nil {
		t.Errorf("once the sandbox is gone: %v", err)
	}
}
