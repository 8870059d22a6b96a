package controlplane

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

//go:embed migrations/*.sql worker_migrations/*.sql
var migrationFiles embed.FS

// workerMigrationFiles are the worker database's migrations, in the order they apply, when
// the sandboxes live apart from the control plane (config.WorkerDatabase): its lock on the
// database's ACL, and the default template, the very file the control database applies. A
// migration that changes what provisioning or teardown need there joins this list too.
var workerMigrationFiles = []string{
	"worker_migrations/0001_worker_database.sql",
	"migrations/0002_default_template.sql",
}

// Migration is one embedded SQL file.
type Migration struct {
	Version  string // the file name without .sql, e.g. "0001_control_plane"
	SQL      string
	Checksum string
}

// Migrations returns the control database's migrations in the order they apply.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return readMigrations(names)
}

// WorkerMigrations returns the worker database's migrations in the order they apply.
func WorkerMigrations() ([]Migration, error) { return readMigrations(workerMigrationFiles) }

func readMigrations(names []string) ([]Migration, error) {
	out := make([]Migration, 0, len(names))
	for _, name := range names {
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{
			Version:  strings.TrimSuffix(path.Base(name), ".sql"),
			SQL:      string(b),
			Checksum: hex.EncodeToString(sum[:]),
		})
	}
	return out, nil
}

// SchemaVersion is the version this build needs of the control database: its last migration.
func SchemaVersion() (string, error) { return lastVersion(Migrations) }

// WorkerSchemaVersion is the version this build needs of a worker database.
func WorkerSchemaVersion() (string, error) { return lastVersion(WorkerMigrations) }

func lastVersion(set func() ([]Migration, error)) (string, error) {
	migrations, err := set()
	if err != nil {
		return "", fmt.Errorf("read embedded migrations: %w", err)
	}
	if len(migrations) == 0 {
		return "", errors.New("no embedded migrations")
	}
	return migrations[len(migrations)-1].Version, nil
}

// Migrate applies every embedded migration not yet recorded in
// sandbox_control.schema_migrations, each in its own transaction, and returns the versions it
// applied. A recorded migration whose file changed is an error: migrations are append-only.
//
// Concurrent callers apply each migration exactly once: each transaction first locks
// schema_migrations against the others (SHARE ROW EXCLUSIVE conflicts with itself, not with
// readers), then reads whether its version is recorded. The lock is on a table of the
// control plane's schema, on which no sandbox's role has any right; an advisory lock, which
// served before, is a number that any session of the database may take, a sandbox's own
// among them, and one holding it would have stalled every deployment.
//
// The functions never call it: it is the migrate step of a deployment (MigrateStep), run
// once per deploy as the database's owner; at cold start they only check the schema
// (CheckSchema).
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	return migrateSet(ctx, pool, Migrations)
}

// MigrateWorkers applies the worker database's migrations (WorkerMigrations) as Migrate
// applies the control database's: a deployment whose sandboxes live apart runs both.
func MigrateWorkers(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	return migrateSet(ctx, pool, WorkerMigrations)
}

func migrateSet(ctx context.Context, pool *pgxpool.Pool, set func() ([]Migration, error)) ([]string, error) {
	var done []string
	err := withConn(ctx, pool, func(conn *pgxpool.Conn) error {
		var err error
		done, err = migrate(ctx, conn, set)
		return err
	})
	return done, err
}

// withConn runs fn on one connection of the pool.
func withConn(ctx context.Context, pool *pgxpool.Pool, fn func(conn *pgxpool.Conn) error) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	return fn(conn)
}

func migrate(ctx context.Context, conn *pgxpool.Conn, set func() ([]Migration, error)) ([]string, error) {
	migrations, err := set()
	if err != nil {
		return nil, fmt.Errorf("migrate: read embedded migrations: %w", err)
	}
	if err := createMigrationsTable(ctx, conn); err != nil {
		return nil, err
	}
	var done []string
	for _, m := range migrations {
		var recorded *string // the checksum recorded for m, if any
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := lockMigrations(ctx, tx); err != nil {
				return err
			}
			err := tx.QueryRow(ctx, "SELECT checksum FROM sandbox_control.schema_migrations WHERE version = $1", m.Version).Scan(&recorded)
			if !isNoRows(err) {
				return err
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "INSERT INTO sandbox_control.schema_migrations (version, checksum) VALUES ($1, $2)", m.Version, m.Checksum)
			return err
		})
		switch {
		case err != nil:
			return done, fmt.Errorf("migrate: apply %s: %w", m.Version, err)
		case recorded == nil:
			done = append(done, m.Version)
		case *recorded != m.Checksum:
			return done, fmt.Errorf("migrate: migration %s changed after it was applied (checksum %s, now %s)", m.Version, short(*recorded), short(m.Checksum))
		}
	}
	return done, nil
}

// lockMigrations serialises the transaction against every other migrate step's until it ends.
func lockMigrations(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "LOCK TABLE sandbox_control.schema_migrations IN SHARE ROW EXCLUSIVE MODE")
	return err
}

// createMigrationsTable creates the control plane's schema and its schema_migrations table
// where they are missing. Two first deployments at once may race to create them: the one that
// loses gets a unique violation once the other has committed, and then finds them.
func createMigrationsTable(ctx context.Context, conn *pgxpool.Conn) error {
	create := func() error {
		_, err := conn.Exec(ctx, `
			CREATE SCHEMA IF NOT EXISTS sandbox_control;
			CREATE TABLE IF NOT EXISTS sandbox_control.schema_migrations (
				version    text        PRIMARY KEY,
				checksum   text        NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`)
		return err
	}
	err := create()
	if _, lost := uniqueViolation(err); lost { // the catalog's index on the schema's or the table's name
		err = create()
	}
	if err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	return nil
}

// querier is what reading schema_migrations needs: a pool or one of its connections.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// appliedMigrations reads schema_migrations: version -> checksum.
func appliedMigrations(ctx context.Context, q querier) (map[string]string, error) {
	rows, err := q.Query(ctx, "SELECT version, checksum FROM sandbox_control.schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read sandbox_control.schema_migrations: %w", err)
	}
	applied := map[string]string{}
	var version, sum string
	if _, err := pgx.ForEachRow(rows, []any{&version, &sum}, func() error {
		applied[version] = sum
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read sandbox_control.schema_migrations: %w", err)
	}
	return applied, nil
}

// short abbreviates a checksum for messages.
func short(sum string) string { return sum[:min(12, len(sum))] }

// ErrSchemaOutdated matches every SchemaError: the database's schema is not the one this
// build needs, and the migrate step is what changes that.
var ErrSchemaOutdated = errors.New("database schema is not the one this build needs")

// SchemaError says how the database's schema differs from the one this build needs.
type SchemaError struct {
	// Have is the latest migration applied ("" when none is); Want is this build's last one.
	Have, Want string
	// Missing are the embedded migrations not applied; Changed the applied ones whose file
	// changed since (migrations are append-only: the migrate step refuses them too).
	Missing, Changed []string
}

func (e *SchemaError) Error() string {
	have := e.Have
	if have == "" {
		have = "none (no migration applied)"
	}
	if len(e.Changed) > 0 {
		return fmt.Sprintf("database schema: applied migration %s changed after it was applied (migrations are append-only: restore the file, and fix forward with a new migration)",
			strings.Join(e.Changed, ", "))
	}
	if len(e.Missing) > 0 && e.Have >= e.Want {
		// A migration older than the latest applied one is missing (two branches merged).
		return fmt.Sprintf("database schema is at version %s but lacks %s, this build needs %s: run the migrate step",
			have, strings.Join(e.Missing, ", "), e.Want)
	}
	return fmt.Sprintf("database schema is at version %s, this build needs %s: run the migrate step", have, e.Want)
}

// Is makes errors.Is(err, ErrSchemaOutdated) true for every SchemaError.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaOutdated }

// CheckSchema is the functions' cold-start check: one read of schema_migrations, no DDL and
// no lock. It returns a *SchemaError when an embedded migration is not applied or an applied
// one changed; migrations applied by a newer build are fine (they are backward compatible:
// that is what a rollback runs on).
func CheckSchema(ctx context.Context, db *pgxpool.Pool) error {
	return checkSchema(ctx, db, Migrations)
}

// CheckWorkerSchema is CheckSchema for a worker database (WorkerMigrations); its errors say
// that they are the worker database's.
func CheckWorkerSchema(ctx context.Context, db *pgxpool.Pool) error {
	if err := checkSchema(ctx, db, WorkerMigrations); err != nil {
		return fmt.Errorf("worker database: %w", err)
	}
	return nil
}

// CheckSchemas checks the control database and, when the sandboxes live apart (workerDB is
// neither nil nor db), the worker database: the cold-start check of the functions that reach
// both (clients.SchemaCheck).
func CheckSchemas(ctx context.Context, db, workerDB *pgxpool.Pool) error {
	if err := CheckSchema(ctx, db); err != nil {
		return err
	}
	if workerDB == nil || workerDB == db {
		return nil
	}
	return CheckWorkerSchema(ctx, workerDB)
}

func checkSchema(ctx context.Context, db *pgxpool.Pool, set func() ([]Migration, error)) error {
	migrations, err := set()
	if err != nil {
		return fmt.Errorf("check schema: read embedded migrations: %w", err)
	}
	applied, err := appliedMigrations(ctx, db)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") {
		// undefined_table, invalid_schema_name: never migrated.
		applied, err = map[string]string{}, nil
	}
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	serr := &SchemaError{Want: migrations[len(migrations)-1].Version}
	for v := range applied {
		serr.Have = max(serr.Have, v)
	}
	for _, m := range migrations {
		switch sum, ok := applied[m.Version]; {
		case !ok:
			serr.Missing = append(serr.Missing, m.Version)
		case sum != m.Checksum:
			serr.Changed = append(serr.Changed, m.Version)
		}
	}
	if len(serr.Missing) > 0 || len(serr.Changed) > 0 {
		return serr
	}
	return nil
}

// SchemaGate runs CheckSchema until it passes once, then never again: for a function that
// starts with an outdated schema and waits for the migrate step (the api in Lambda, which
// receives that step itself). Safe for concurrent use.
type SchemaGate struct {
	db, workerDB *pgxpool.Pool
	current      atomic.Bool
}

// NewSchemaGate returns a gate on db's schema and, when the sandboxes live apart (workerDB
// is neither nil nor db), the worker database's.
func NewSchemaGate(db, workerDB *pgxpool.Pool) *SchemaGate {
	return &SchemaGate{db: db, workerDB: workerDB}
}

// Check returns nil once the schemas have been found current, else CheckSchemas' answer.
func (g *SchemaGate) Check(ctx context.Context) error {
	if g.current.Load() {
		return nil
	}
	if err := CheckSchemas(ctx, g.db, g.workerDB); err != nil {
		return err
	}
	g.current.Store(true)
	return nil
}

// MigrateRequest asks for the migrate step: the api function's direct invocation
// {"migrate": true}, or its -migrate flag.
type MigrateRequest struct {
	Migrate bool `json:"migrate"`
	// RouterRole, when set, is the router's database role: the step grants it what the
	// router needs (RouterGrants) after the migrations, so that a migration's new tables
	// reach it in the same deploy.
	RouterRole string `json:"router_role,omitempty"`
}

// MigrateReport is what the migrate step did.
type MigrateReport struct {
	// Applied are the migrations this run applied, oldest first (empty: none was pending).
	Applied []string `json:"applied"`
	// Version is the schema's version afterwards: this build's last migration.
	Version string `json:"version"`
	// WorkerApplied and WorkerVersion are the same of the worker database, when the
	// sandboxes live apart (config.WorkerDatabase).
	WorkerApplied []string `json:"worker_applied,omitempty"`
	WorkerVersion string   `json:"worker_version,omitempty"`
	// RouterRole is the role granted the router's privileges, if any.
	RouterRole string `json:"router_role,omitempty"`
	// Warnings name the server settings that are not as docs/deploy.md asks
	// (ServerSettingWarnings); the step succeeds regardless.
	Warnings []string `json:"warnings,omitempty"`
}

// MigrateStep is the migrate step of a deployment: it applies the pending migrations and
// grants the router's role its privileges (when req names one), then checks the schema as
// the functions' cold start will. When the sandboxes live apart (workers is neither nil nor
// pool) it migrates the worker database too, after the control database. It runs as the
// databases' owner. The server settings it warns about are read where the sandboxes' roles
// live.
func MigrateStep(ctx context.Context, pool, workers *pgxpool.Pool, req MigrateRequest) (MigrateReport, error) {
	report := MigrateReport{Applied: []string{}}
	err := withConn(ctx, pool, func(conn *pgxpool.Conn) error {
		applied, err := migrate(ctx, conn, Migrations)
		report.Applied = append(report.Applied, applied...)
		if err != nil {
			return err
		}
		if req.RouterRole != "" {
			if err := grantRouter(ctx, conn, req.RouterRole); err != nil {
				return err
			}
			report.RouterRole = req.RouterRole
		}
		return nil
	})
	if err != nil {
		return report, err
	}
	if workers == nil {
		workers = pool
	}
	if workers != pool {
		if err := refuseSandboxesLeftBehind(ctx, pool); err != nil {
			return report, err
		}
		report.WorkerApplied, err = MigrateWorkers(ctx, workers)
		if err != nil {
			return report, fmt.Errorf("worker database: %w", err)
		}
	}
	if err := CheckSchemas(ctx, pool, workers); err != nil {
		return report, fmt.Errorf("migrate: the schema is still not current after the migrations: %w", err)
	}
	var settings ServerSettings
	if err := workers.QueryRow(ctx, `SELECT pg_catalog.current_setting('temp_file_limit'),
		pg_catalog.current_setting('max_prepared_transactions')::int, (`+sandbox.QuietLogPrivilegeSQL+`),
		pg_catalog.current_setting('server_version_num')::int, (`+reservedForControlSQL+`), (`+publicMakesLargeObjectsSQL+`)`,
		sandbox.RoleQuietLogSettings, LargeObjectMakers).Scan(
		&settings.TempFileLimit, &settings.MaxPreparedTransactions, &settings.CanQuietSandboxLogs,
		&settings.ServerVersionNum, &settings.ReservedForControl, &settings.PublicMakesLargeObjects); err != nil {
		return report, fmt.Errorf("migrate: read the server's settings: %w", err)
	}
	report.Warnings = settings.Warnings()
	if report.Version, err = SchemaVersion(); err != nil || workers == pool {
		return report, err
	}
	report.WorkerVersion, err = WorkerSchemaVersion()
	return report, err
}

// refuseSandboxesLeftBehind fails the migrate step of a deployment that moves the sandboxes
// to a worker database of their own while the control database still holds sandboxes'
// schemas: the functions would look for those in the worker database only, so no teardown
// would ever drop them, and their roles would keep their sessions on the control plane's
// server.
func refuseSandboxesLeftBehind(ctx context.Context, pool *pgxpool.Pool) error {
	rows, err := pool.Query(ctx, `SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname LIKE 'sb\_%'`)
	if err != nil {
		return fmt.Errorf("migrate: list the sandbox schemas of the control database: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("migrate: list the sandbox schemas of the control database: %w", err)
	}
	var left []string
	for _, name := range names {
		if _, ok := sandbox.IDOfName(name); ok {
			left = append(left, name)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("migrate: the control database still holds %d sandboxes' schemas (%s): the sandboxes move to the worker database only when none is left in the control database; destroy them first (docs/deploy.md, \"A database server for the sandboxes\")",
			len(left), strings.Join(left[:min(len(left), 5)], ", "))
	}
	return nil
}

// ServerSettings are what the migrate step reads of the server's settings that hold a
// sandbox's role back and that the role cannot change.
type ServerSettings struct {
	// TempFileLimit: -1 is none, and a sandbox's query may fill the disk with temporary files.
	TempFileLimit string
	// MaxPreparedTransactions: a prepared transaction would outlive the teardown's end of the
	// role's sessions and hold the drop of its schema for ever, since only its own role or a
	// superuser may end it.
	MaxPreparedTransactions int
	// CanQuietSandboxLogs: the control user may set the log settings that keep a sandbox's
	// messages out of the server's log, which is the server's disk (sandbox.RoleQuietLogSettings).
	CanQuietSandboxLogs bool
	// ServerVersionNum is server_version_num (150000 and up).
	ServerVersionNum int
	// ReservedForControl is how many of the server's connections the control user may take
	// that no sandbox's worker can (reservedForControlSQL). Connections that never
	// authenticate hold a slot each until authentication_timeout, whatever role they name,
	// so without a reserve a worker can keep the control plane out of the server.
	ReservedForControl int
	// PublicMakesLargeObjects: PUBLIC may call one of LargeObjectMakers in the sandboxes'
	// database, so a sandbox's role may store large objects, which live outside its schema
	// and out of the disk share's sight (the catalog does not say how large they are).
	PublicMakesLargeObjects bool
}

// LargeObjectMakers are the functions that make a large object (lo_import, the fourth, is a
// superuser's by default). docs/deploy.md ("Server settings") takes them from PUBLIC in the
// sandboxes' database, and scripts/services.sh does so for the tests and make dev.
var LargeObjectMakers = []string{"pg_catalog.lo_creat(integer)", "pg_catalog.lo_create(oid)", "pg_catalog.lo_from_bytea(oid, bytea)"}

// publicMakesLargeObjectsSQL answers whether PUBLIC may execute one of the functions $2
// names: a function whose proacl is NULL has its default rights, EXECUTE for PUBLIC (grantee 0).
const publicMakesLargeObjectsSQL = `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p,
	LATERAL pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
	WHERE p.oid = ANY ($2::pg_catalog.regprocedure[]) AND a.grantee = 0 AND a.privilege_type = 'EXECUTE')`

// reservedForControlSQL answers how many connections are reserved for the current user:
// superuser_reserved_connections for a superuser, reserved_connections (PostgreSQL 16 on) for
// a member of pg_use_reserved_connections, and 0 otherwise (on PostgreSQL 15 the setting and
// the role do not exist: CASE reaches pg_has_role only when the setting does).
const reservedForControlSQL = `SELECT CASE
	WHEN (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
		THEN pg_catalog.current_setting('superuser_reserved_connections')::int
	WHEN pg_catalog.current_setting('reserved_connections', true) IS NULL THEN 0
	WHEN pg_catalog.pg_has_role(current_user, 'pg_use_reserved_connections', 'MEMBER')
		THEN pg_catalog.current_setting('reserved_connections')::int
	ELSE 0 END`

// reservedConnectionsSince is the first server version with reserved_connections and
// pg_use_reserved_connections (PostgreSQL 16).
const reservedConnectionsSince = 160000

// Warnings says which settings are not as docs/deploy.md ("Server settings") asks.
func (s ServerSettings) Warnings() []string {
	var out []string
	if s.TempFileLimit == "-1" {
		out = append(out, "temp_file_limit is -1 (no limit): a sandbox's query may fill the server's disk with temporary files; set it (docs/deploy.md, Server settings)")
	}
	if s.MaxPreparedTransactions != 0 {
		out = append(out, fmt.Sprintf("max_prepared_transactions is %d: a sandbox's prepared transaction would outlive its teardown; set it to 0 (docs/deploy.md, Server settings)", s.MaxPreparedTransactions))
	}
	if !s.CanQuietSandboxLogs {
		out = append(out, "the control user may not set log_min_messages and log_min_error_statement: new sandboxes' roles may write the server's log, which is its disk, without bound; grant SET ON PARAMETER on both (docs/deploy.md, Server settings)")
	}
	if s.PublicMakesLargeObjects {
		out = append(out, "PUBLIC may make large objects in the sandboxes' database: a sandbox's role may store them outside its schema, beyond its disk share; revoke EXECUTE on "+strings.Join(LargeObjectMakers, ", ")+" from PUBLIC (docs/deploy.md, Server settings)")
	}
	// Before PostgreSQL 16 only a superuser has a reserve, and the control user should not be
	// one: docs/deploy.md says so, and there is nothing to set.
	if s.ServerVersionNum >= reservedConnectionsSince && s.ReservedForControl == 0 {
		out = append(out, "no connection of the server is reserved for the control user: a sandbox's worker may hold every connection, even ones that never authenticate, and creations, connect and teardowns then fail; set reserved_connections and grant pg_use_reserved_connections to the control user (docs/deploy.md, Server settings)")
	}
	return out
}

// RouterGrants are the privileges of the router's database role, the statements for role
// on database: what Manager.LookupRoutes reads (mappings, the status and expiry of their
// sandboxes, protected and parked guilds), what Manager.PublishRouteChanges reads and
// deletes (route_changes), and what CheckSchema reads. No DDL, no other write, and not the
// sandboxes' owners, metadata or records. docs/deploy.md shows them for sandbox_router.
func RouterGrants(role, database string) []string {
	r, db := pgx.Identifier{role}.Sanitize(), pgx.Identifier{database}.Sanitize()
	return []string{
		"GRANT CONNECT ON DATABASE " + db + " TO " + r,
		"GRANT USAGE ON SCHEMA sandbox_control TO " + r,
		"GRANT SELECT ON sandbox_control.schema_migrations, sandbox_control.guild_mappings, sandbox_control.protected_guilds, sandbox_control.parked_guilds TO " + r,
		"GRANT SELECT (id, status, expires_at) ON sandbox_control.sandboxes TO " + r,
		"GRANT SELECT, DELETE ON sandbox_control.route_changes TO " + r,
	}
}

// GrantRouter grants role the router's privileges (RouterGrants) on the database of pool,
// as its owner. Granting twice is a no-op.
func GrantRouter(ctx context.Context, pool *pgxpool.Pool, role string) error {
	return withConn(ctx, pool, func(conn *pgxpool.Conn) error {
		return grantRouter(ctx, conn, role)
	})
}

func grantRouter(ctx context.Context, conn *pgxpool.Conn, role string) error {
	var database string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&database); err != nil {
		return fmt.Errorf("grant the router role %q: %w", role, err)
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Two steps granting at once would rewrite the same ACLs ("tuple concurrently updated").
		if err := lockMigrations(ctx, tx); err != nil {
			return fmt.Errorf("grant the router role %q: %w", role, err)
		}
		for _, stmt := range RouterGrants(role, database) {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("grant the router role %q: %s: %w", role, stmt, err)
			}
		}
		return nil
	})
}

// errNoRows is pgx's "no rows" error, named for readability in this package.
var errNoRows = pgx.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
