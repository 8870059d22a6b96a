package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// columnsOf is the select list that scanSandbox reads, in order, qualified by alias.
func columnsOf(alias string) string {
	return fmt.Sprintf(`%[1]sid, %[1]sname, %[1]sowner, %[1]sstatus, %[1]sschema_name, %[1]sdb_role, %[1]screated_at,
	%[1]supdated_at, %[1]sexpires_at, %[1]sdestroyed_at, %[1]smetadata, %[1]steardown, %[1]scleanup_attempts,
	coalesce(%[1]slast_error, ''), %[1]sexpiry_warned_at, %[1]stemplate`, alias)
}

// sandboxColumns is the unqualified select list of scanSandbox.
var sandboxColumns = columnsOf("")

// queryer is what both a pool and a transaction offer.
type queryer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// queryList runs sql and collects every row with scan; no rows make an empty list, not nil,
// so that a listing encodes as [] rather than null.
func queryList[T any](ctx context.Context, q queryer, scan pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, scan)
	if out == nil {
		out = []T{}
	}
	return out, err
}

// sandboxFound is err, except that no row (the lookup of sandbox id found none) becomes
// CodeNotFound.
func sandboxFound(err error, id string) error {
	if isNoRows(err) {
		return sandbox.Errorf(sandbox.CodeNotFound, "sandbox %s not found", id)
	}
	return err
}

// scanSandbox reads a row of columnsOf, after any leading extra columns.
func scanSandbox(row pgx.Row, extra ...any) (*sandbox.Sandbox, error) {
	var (
		sb       sandbox.Sandbox
		status   string
		metadata []byte
		teardown []byte
	)
	dest := append(extra, &sb.ID, &sb.Name, &sb.Owner, &status, &sb.SchemaName, &sb.DBRole, &sb.CreatedAt,
		&sb.UpdatedAt, &sb.ExpiresAt, &sb.DestroyedAt, &metadata, &teardown, &sb.CleanupAttempts,
		&sb.LastError, &sb.ExpiryWarnedAt, &sb.Template)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	sb.Status = sandbox.Status(status)
	if err := json.Unmarshal(metadata, &sb.Metadata); err != nil {
		return nil, fmt.Errorf("decode metadata of %s: %w", sb.ID, err)
	}
	sb.Teardown = json.RawMessage(teardown)
	return &sb, nil
}

func collectSandboxes(rows pgx.Rows) ([]*sandbox.Sandbox, error) {
	defer rows.Close()
	var out []*sandbox.Sandbox
	for rows.Next() {
		sb, err := scanSandbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sb)
	}
	return out, rows.Err()
}

// Audit actions: the one list of what the audit log records.
const (
	ActionCreate           = "sandbox.create"
	ActionRunning          = "sandbox.running"
	ActionFailed           = "sandbox.failed"
	ActionExtend           = "sandbox.extend"
	ActionDestroyRequested = "sandbox.destroy_requested"
	ActionTransition       = "sandbox.transition"
	ActionGuildAdd         = "guild.add"
	ActionGuildRemove      = "guild.remove"
	// ActionGuildProtect and ActionGuildUnprotect record an admin's changes of the protected
	// guilds (protected.go).
	ActionGuildProtect   = "guild.protect"
	ActionGuildUnprotect = "guild.unprotect"
	// ActionConnect records a connect: who asked and which credentials were rotated.
	ActionConnect = "sandbox.connect"
	// The template registry's changes (templates.go), with no sandbox.
	ActionTemplateAdd    = "template.add"
	ActionTemplateUpdate = "template.update"
	ActionTemplateRetire = "template.retire"
)

// audit appends one entry; callers pass the transaction of the change it records.
func audit(ctx context.Context, q queryer, actor, action, sandboxID string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	b, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("audit: encode details: %w", err)
	}
	var sid any
	if sandboxID != "" {
		sid = sandboxID
	}
	_, err = q.Exec(ctx, `INSERT INTO sandbox_control.audit_log (actor, action, sandbox_id, details) VALUES ($1, $2, $3, $4)`,
		actor, action, sid, b)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID        int64
	At        time.Time
	Actor     string
	Action    string
	SandboxID string
	Details   json.RawMessage
}

// uniqueViolation returns the constraint name when err is a unique violation.
func uniqueViolation(err error) (string, bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName, true
	}
	return "", false
}

func sandboxIDs(sbs []*sandbox.Sandbox) []string {
	ids := make([]string, len(sbs))
	for i, sb := range sbs {
		ids[i] = sb.ID
	}
	return ids
}

// withOp adds the operation to a store error, so that a log line says what failed ("extend
// sandbox 0abc: ...: connection refused"). Errors of the domain (sandbox.Error, whose message
// is the answer a caller shows) pass as they are. Deferred by every exported method of the
// Manager.
func withOp(err *error, format string, args ...any) {
	var domain *sandbox.Error
	if *err == nil || errors.As(*err, &domain) {
		return
	}
	*err = fmt.Errorf(format+": %w", append(args, *err)...)
}
