// Package provision is the one home of every statement that creates, alters, inspects or
// drops a sandbox's own objects: schema sb_<id> cloned from a template schema (tables with
// their indexes, defaults, constraints, identity sequences and the foreign keys between
// template tables), role sb_<id> that can use only that schema, the sandbox's Redis event
// stream with its consumer group, and (in ACL mode) the Redis ACL user sb_<id> that can reach
// only the sandbox's namespace. Provisioning, connect, the health check, the teardown and
// orphan reconciliation all go through it, so every such statement passes the same checks
// (checks.go).
//
// Provisioning the database objects is one transaction: PostgreSQL DDL is transactional,
// so a failure leaves nothing half-created. Dropping is the teardown's and orphan
// reconciliation's (cleanup) business; Drop, DropSchema and DropRole are here so that the
// knowledge of what a sandbox owns, and of what may be dropped, has one home.
//
// ACL users exist per node of a Redis Cluster, so every ACL command runs on every primary and
// replica (redisuser.go); the scheduled refresh (RefreshRedisUserRules) also gives a node that
// lacks a live sandbox's user the user as another node has it.
//
// Everything here runs with the control user's rights over objects a sandbox role may have
// changed, so none of it reads, writes or plans over a sandbox's relations: inspection reads
// the catalogs only, and dropping runs no code a sandbox can define (docs/security.md).
package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// LockDatabaseACL serialises the statements that rewrite the database's ACL row in
// pg_database (GRANT CONNECT ON DATABASE, DROP OWNED BY): two sessions doing either at once
// fail with "tuple concurrently updated", so parallel creates and drops would fail. It locks,
// until the transaction ends, the control plane's table for it,
// sandbox_control.database_acl_lock (migration 0015): a lock no sandbox's role can take,
// unlike an advisory key, which any session may hold. A table lock, not a row lock: once it
// is granted, the session reads the catalogs anew, so it never rewrites the ACL as it was
// before the session it waited for changed it. Take it just before the statement, so it is
// held briefly.
func LockDatabaseACL(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "LOCK TABLE sandbox_control.database_acl_lock IN EXCLUSIVE MODE"); err != nil {
		return fmt.Errorf("lock the database's ACL (sandbox_control.database_acl_lock, migration 0015): %w", err)
	}
	return nil
}

// Provisioner creates and drops per-sandbox resources.
type Provisioner struct {
	db          *pgxpool.Pool
	rdb         redis.UniversalClient
	template    string
	redisAccess sandbox.RedisAccess
}

// Option configures a Provisioner.
type Option func(*Provisioner)

// WithRedisAccess sets how sandboxes reach Redis (SANDBOX_REDIS_ACCESS); the default is
// sandbox.RedisAccessACL, a Redis user per sandbox.
func WithRedisAccess(a sandbox.RedisAccess) Option {
	return func(p *Provisioner) {
		if a.Valid() {
			p.redisAccess = a
		}
	}
}

// New returns a Provisioner cloning from the template schema. rdb may be nil when only the
// database part is wanted (tests of the clone, tools).
func New(db *pgxpool.Pool, rdb redis.UniversalClient, templateSchema string, opts ...Option) *Provisioner {
	p := &Provisioner{db: db, rdb: rdb, template: templateSchema, redisAccess: sandbox.RedisAccessACL}
	for _, o := range opts {
		o(p)
	}
	return p
}

// RedisAccess returns the Redis mode sandboxes are provisioned in.
func (p *Provisioner) RedisAccess() sandbox.RedisAccess { return p.redisAccess }

// Ready reports whether the sandboxes' Redis answers, asked before a creation is recorded: a
// server that is down, or full of one worker's connections, then refuses the creation as
// unavailable instead of failing it halfway.
func (p *Provisioner) Ready(ctx context.Context) error {
	if p.rdb == nil {
		return nil
	}
	if err := p.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("the sandboxes' Redis: %w", err)
	}
	return nil
}

// redisUsers reports whether this Provisioner manages per-sandbox Redis users.
func (p *Provisioner) redisUsers() bool {
	return p.rdb != nil && p.redisAccess == sandbox.RedisAccessACL
}

// TemplateSchema returns the schema sandboxes are cloned from.
func (p *Provisioner) TemplateSchema() string { return p.template }

// Provision creates the schema, its tables (cloned from the configured template schema,
// without rows) and the role in one transaction, then the event stream with its consumer
// group.
func (p *Provisioner) Provision(ctx context.Context, id string) error {
	_, err := p.ProvisionFrom(ctx, id, sandbox.TemplateSource{Schema: p.template})
	return err
}

// ProvisionFrom is Provision from the source schema of a template, copying its rows (the seed
// rows) when src says so (seed.go); it returns how many rows it copied.
func (p *Provisioner) ProvisionFrom(ctx context.Context, id string, src sandbox.TemplateSource) (int64, error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	var copied int64
	if err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) (err error) {
		copied, err = p.provisionDatabase(ctx, tx, id, src)
		return err
	}); err != nil {
		return 0, fmt.Errorf("provision schema and role of %s: %w", id, err)
	}
	return copied, p.provisionRedis(ctx, id)
}

// provisionRedis creates the event stream with its consumer group and, in ACL mode, the
// sandbox's Redis user.
func (p *Provisioner) provisionRedis(ctx context.Context, id string) error {
	if p.rdb != nil {
		err := p.rdb.XGroupCreateMkStream(ctx, keys.EventStream(id), keys.EventsGroup, "0").Err()
		if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") { // the group exists: provisioned before
			return fmt.Errorf("provision event stream of %s: %w", id, err)
		}
	}
	if p.redisUsers() {
		// No password until connect hands one out: the user exists but nobody can log in.
		if err := p.setRedisUser(ctx, id, ""); err != nil {
			return fmt.Errorf("provision Redis user of %s: %w", id, err)
		}
	}
	return nil
}

// provisionDatabase creates the schema, its tables and the role, and then gives the tables to
// the role. The seed rows are copied before the foreign keys are added (which then check every
// row at once, whatever the order of the tables) and before the role exists: while they are
// copied the control user owns every table of the new schema and no other role can reach it,
// so no code a sandbox could define runs (docs/security.md).
func (p *Provisioner) provisionDatabase(ctx context.Context, tx pgx.Tx, id string, src sandbox.TemplateSource) (int64, error) {
	schema := pgx.Identifier{sandbox.SchemaName(id)}.Sanitize()
	role := pgx.Identifier{sandbox.RoleName(id)}.Sanitize()
	tmpl := pgx.Identifier{src.Schema}.Sanitize()

	if _, err := checkTemplateSource(ctx, tx, src.Schema); err != nil {
		return 0, err
	}
	tables, err := templateTables(ctx, tx, src.Schema)
	if err != nil {
		return 0, err
	}
	stmts := []string{"CREATE SCHEMA " + schema}
	for _, t := range tables {
		name := pgx.Identifier{t}.Sanitize()
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE %s.%s (LIKE %s.%s INCLUDING ALL)", schema, name, tmpl, name))
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return 0, err
		}
	}
	var copied int64
	if src.CopyRows {
		if copied, err = copyRows(ctx, tx, src.Schema, sandbox.SchemaName(id)); err != nil {
			return 0, err
		}
	}
	if err := cloneForeignKeys(ctx, tx, src.Schema, sandbox.SchemaName(id)); err != nil {
		return 0, err
	}
	if err := ownSequences(ctx, tx, sandbox.SchemaName(id)); err != nil {
		return 0, err
	}
	if src.CopyRows {
		if err := advanceSequences(ctx, tx, sandbox.SchemaName(id)); err != nil {
			return 0, err
		}
	}
	var db string
	if err := tx.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		return 0, err
	}
	dbIdent := pgx.Identifier{db}.Sanitize()
	if err := LockDatabaseACL(ctx, tx); err != nil {
		return 0, err
	}
	stmts = []string{
		// No password until connect hands one out; NOINHERIT so that no grant to PUBLIC-like
		// roles widens it; no other attribute.
		fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %d PASSWORD NULL",
			role, sandbox.RoleConnectionLimit),
		fmt.Sprintf("COMMENT ON ROLE %s IS %s", role, quoteLiteral(RoleCommentFor(db))),
		// The control user becomes a member of the role (never the other way round): a
		// non-superuser needs it to DROP OWNED BY the role at teardown.
		fmt.Sprintf("GRANT %s TO CURRENT_USER", role),
		fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", dbIdent, role),
		fmt.Sprintf("GRANT USAGE, CREATE ON SCHEMA %s TO %s", schema, role),
		fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET search_path TO %s", role, dbIdent, schema),
	}
	quiet, err := canQuietLogs(ctx, tx)
	if err != nil {
		return 0, err
	}
	if quiet {
		stmts = append(stmts, quietLogStatements(role)...)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return 0, err
		}
	}
	// The role owns its tables and their sequences (which go with them), so that no foreign
	// key's check or action on them runs as the control user (handover.go). One round trip.
	owners := &pgx.Batch{}
	for _, t := range tables {
		owners.Queue(fmt.Sprintf("ALTER TABLE %s.%s OWNER TO %s", schema, pgx.Identifier{t}.Sanitize(), role))
	}
	if err := tx.SendBatch(ctx, owners).Close(); err != nil {
		return 0, err
	}
	return copied, nil
}

// templateTables lists the tables of a template's source schema that are cloned.
func templateTables(ctx context.Context, q pgx.Tx, source string) ([]string, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		ORDER BY c.relname`, source)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// cloneForeignKeys adds to the clone the foreign keys between template tables, which
// LIKE ... INCLUDING ALL does not copy, pointing them at the clone's own tables.
func cloneForeignKeys(ctx context.Context, tx pgx.Tx, source, target string) error {
	rows, err := tx.Query(ctx, `
		SELECT format('ALTER TABLE %I.%I ADD CONSTRAINT %I FOREIGN KEY (%s) REFERENCES %I.%I (%s)%s%s%s',
			$2::text, cl.relname, c.conname,
			(SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
			   FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
			   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
			$2::text, rcl.relname,
			(SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
			   FROM unnest(c.confkey) WITH ORDINALITY k(attnum, ord)
			   JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum),
			CASE c.confmatchtype WHEN 'f' THEN ' MATCH FULL' ELSE '' END,
			CASE c.confdeltype WHEN 'c' THEN ' ON DELETE CASCADE' WHEN 'n' THEN ' ON DELETE SET NULL'
				WHEN 'd' THEN ' ON DELETE SET DEFAULT' WHEN 'r' THEN ' ON DELETE RESTRICT' ELSE '' END,
			CASE c.confupdtype WHEN 'c' THEN ' ON UPDATE CASCADE' WHEN 'n' THEN ' ON UPDATE SET NULL'
				WHEN 'd' THEN ' ON UPDATE SET DEFAULT' WHEN 'r' THEN ' ON UPDATE RESTRICT' ELSE '' END)
		FROM pg_constraint c
		JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
		JOIN pg_class rcl ON rcl.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = rcl.relnamespace
		WHERE c.contype = 'f' AND n.nspname = $1 AND rn.nspname = $1
		ORDER BY cl.relname, c.conname`, source, target)
	if err != nil {
		return err
	}
	stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// ownSequences gives every column of the clone whose default draws from a sequence outside
// the clone (serial columns of the template) a sequence of its own: the sandbox role has
// no access to the template's sequences, and sandboxes must not share counters.
func ownSequences(ctx context.Context, tx pgx.Tx, target string) error {
	rows, err := tx.Query(ctx, `
		SELECT c.relname, a.attname
		FROM pg_attrdef d
		JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
		JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'
		ORDER BY c.relname, a.attname`, target)
	if err != nil {
		return err
	}
	type column struct{ table, name string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		return c, r.Scan(&c.table, &c.name)
	})
	if err != nil {
		return err
	}
	for _, c := range cols {
		seq := pgx.Identifier{target, c.table + "_" + c.name + "_seq"}.Sanitize()
		tbl := pgx.Identifier{target, c.table}.Sanitize()
		col := pgx.Identifier{c.name}.Sanitize()
		for _, s := range []string{
			fmt.Sprintf("CREATE SEQUENCE %s OWNED BY %s.%s", seq, tbl, col),
			fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT nextval(%s::regclass)", tbl, col, quoteLiteral(seq)),
		} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// Credentials are a sandbox's fresh credentials, handed out once by connect.
type Credentials struct {
	DatabasePassword string
	// RedisUser and RedisPassword are empty in shared Redis mode.
	RedisUser     string
	RedisPassword string
}

// Rotated names the credentials a rotation replaced, for the audit log (never a secret).
func (c Credentials) Rotated() []string {
	out := []string{"database_password"}
	if c.RedisUser != "" {
		out = append(out, "redis_password")
	}
	return out
}

// Hold runs fn while it keeps the sandbox from its teardown (connect's is
// controlplane.Manager.WhileRunning), or fails without running it when the sandbox is
// already past that (a teardown begun).
type Hold func(ctx context.Context, fn func() error) error

// RotateCredentials gives the sandbox role a fresh random password valid until validUntil
// and, in ACL mode, its Redis user a fresh password, and returns them. Every call
// invalidates the previous passwords; sessions already open stay open. Neither password
// travels in plain text: PostgreSQL receives a SCRAM-SHA-256 verifier computed here, Redis
// a SHA-256 hash, so neither a statement log nor a command log holds one. A role named like
// the sandbox's that is not this database's is refused (checks.go).
//
// The Redis user is set inside hold, when there is one. ACL SETUSER makes a user it does not
// find, so a teardown that deleted the user before the rotation set it would leave it behind,
// live, with a password the caller holds. The role needs no hold: a teardown takes its LOGIN
// away before anything else (lockOut), and a rotation after that changes a role that can no
// longer log in.
func (p *Provisioner) RotateCredentials(ctx context.Context, id string, validUntil time.Time, hold Hold) (Credentials, error) {
	var c Credentials
	if err := checkID(id); err != nil {
		return c, err
	}
	c.DatabasePassword = randomPassword()
	verifier, err := scramVerifier(c.DatabasePassword)
	if err != nil {
		return Credentials{}, err
	}
	role := sandbox.RoleName(id)
	stmt := fmt.Sprintf("ALTER ROLE %s WITH PASSWORD %s VALID UNTIL %s",
		pgx.Identifier{role}.Sanitize(), quoteLiteral(verifier), quoteLiteral(validUntil.UTC().Format(time.RFC3339)))
	err = pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		st, err := ourRoleOf(ctx, tx, role)
		if err != nil {
			return err
		}
		if !st.exists {
			return errRoleMissing
		}
		_, err = tx.Exec(ctx, stmt)
		return err
	})
	if err != nil {
		// Missing when read, or dropped between the read and the statement.
		if errors.Is(err, errRoleMissing) || pgCode(err) == pgUndefinedObject {
			return Credentials{}, errors.Join(sandbox.Errorf(sandbox.CodeNotFound, "the database role of sandbox %s does not exist", id), err)
		}
		return Credentials{}, fmt.Errorf("rotate password of %s: %w", id, err)
	}
	if p.redisUsers() {
		c.RedisUser, c.RedisPassword = p.RedisUserName(id), randomPassword()
		set := func() error { return p.setRedisUser(ctx, id, c.RedisPassword) }
		if hold != nil {
			err = hold(ctx, set)
		} else {
			err = set()
		}
		if err != nil {
			return Credentials{}, fmt.Errorf("rotate Redis password of %s: %w", id, err)
		}
	}
	return c, nil
}

// errRoleMissing is a rotation of a role that does not exist.
var errRoleMissing = errors.New("role does not exist")

// randomPassword returns 24 random bytes as hex: ASCII, so SASLprep leaves it unchanged.
func randomPassword() string {
	buf := make([]byte, 24)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// quoteLiteral quotes a string as an SQL literal; only used for values this package made
// (hex passwords, timestamps, identifiers already sanitized) because DDL takes no parameters.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// The SQLSTATEs provision tells apart (pgCode).
const (
	// pgUndefinedObject: the role named by a statement does not exist.
	pgUndefinedObject = "42704"
	// pgLockNotAvailable: a lock_timeout (setLockTimeout) ran out.
	pgLockNotAvailable = "55P03"
)

// pgCode returns the SQLSTATE of a PostgreSQL error, "" for any other error.
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// canQuietLogs says whether the control user may keep a new role's messages out of the
// server's log (sandbox.RoleQuietLogSettings): the server's log is the server's disk, and a
// role writes to it what it likes. RAISE LOG of a 50 MB string, ten times in one statement of
// about 100 bytes, wrote 458 MB there (PostgreSQL 15, measured), and every failed statement
// is logged whole. Without the privilege the migrate step warns.
func canQuietLogs(ctx context.Context, tx pgx.Tx) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, sandbox.QuietLogPrivilegeSQL, sandbox.RoleQuietLogSettings).Scan(&ok)
	return ok, err
}

// quietLogLevel is the value of each of sandbox.RoleQuietLogSettings for a sandbox's role:
// PANIC leaves in the server's log only what ends the server.
const quietLogLevel = "panic"

// quietLogStatements are the statements that keep role's messages out of the server's log.
func quietLogStatements(role string) []string {
	out := make([]string, len(sandbox.RoleQuietLogSettings))
	for i, name := range sandbox.RoleQuietLogSettings {
		out[i] = fmt.Sprintf("ALTER ROLE %s SET %s = %s", role, name, quietLogLevel)
	}
	return out
}

// QuietRoleLogs gives the roles of the sandboxes ids that lack them the log settings of a new
// role (sandbox.RoleQuietLogSettings), so that a role made before them, or while the control
// user could not set them, keeps out of the server's log from the next cleanup run on; its
// sessions get them when they next connect. Only this database's sandbox roles are changed,
// each in a transaction of its own. It returns how many it changed: none when the control
// user may not set the settings.
func (p *Provisioner) QuietRoleLogs(ctx context.Context, ids []string) (int, error) {
	names, err := checkedNames(ids, sandbox.RoleName)
	if err != nil || len(names) == 0 {
		return 0, err
	}
	quiet := make([]string, len(sandbox.RoleQuietLogSettings))
	for i, name := range sandbox.RoleQuietLogSettings {
		quiet[i] = name + "=" + quietLogLevel // as pg_roles.rolconfig shows it
	}
	var loud []string
	err = pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		if ok, err := canQuietLogs(ctx, tx); err != nil || !ok {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT r.rolname FROM pg_catalog.pg_roles r
			WHERE r.rolname = ANY($1) AND NOT coalesce(r.rolconfig @> $2::text[], false)`, names, quiet)
		if err != nil {
			return err
		}
		loud, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("find the sandbox roles without the log settings: %w", err)
	}
	var errs []error
	changed := 0
	for _, role := range loud {
		exists := false
		err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
			st, err := ourRoleOf(ctx, tx, role)
			if exists = st.exists; err != nil || !exists {
				return err // gone meanwhile: nothing to do
			}
			for _, s := range quietLogStatements(pgx.Identifier{role}.Sanitize()) {
				if _, err := tx.Exec(ctx, s); err != nil {
					return err
				}
			}
			return nil
		})
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("set the log settings of role %s: %w", role, err))
		case exists:
			changed++
		}
	}
	return changed, errors.Join(errs...)
}
