package controlplane

// This file: creating a sandbox (the quota, the guilds, the creation lease, provisioning and
// its failure).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// CreationLockClass is the first key of the session advisory lock a creation holds on its
// sandbox id ("sbcr"; the second is hashtext(id)) from before the row exists until it is
// running or failed: the creation lease. A sandbox in creating whose lease is free has lost
// its creator.
const CreationLockClass int32 = 0x73626372

// creationLease is the connection that holds a creation lease: a connection of its own,
// outside the pool, so that concurrent creations never wait for each other's connections,
// and so that a creator that dies (or loses its network) frees the lease with its session.
type creationLease struct {
	conn *pgx.Conn
	id   string
}

func (m *Manager) takeCreationLease(ctx context.Context, id string) (*creationLease, error) {
	conn, err := pgx.ConnectConfig(ctx, m.db.Config().ConnConfig)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, hashtext($2))", CreationLockClass, id); err != nil {
		_ = conn.Close(context.Background())
		return nil, err
	}
	return &creationLease{conn: conn, id: id}, nil
}

// release ends the lease by closing its session (which releases the lock either way).
func (l *creationLease) release() {
	_ = l.conn.Close(context.Background())
}

// CreateInput is what a caller asks for.
type CreateInput struct {
	Name     string
	Owner    string
	TTL      time.Duration // zero means the default TTL
	Guilds   []string
	Metadata map[string]string
	// Template names the template to clone; "" is sandbox.DefaultTemplate. Its default TTL
	// applies when TTL is zero.
	Template string
	// Admin says the actor is an admin, who may map a guild parked by a sandbox of another
	// owner than Owner; anyone else is refused it (forbidden, unpark).
	Admin bool
}

// Validate checks the input and returns the normalized guilds and TTL, and the template.
func (m *Manager) validateCreate(ctx context.Context, in CreateInput) ([]string, time.Duration, sandbox.Template, error) {
	var none sandbox.Template
	if err := sandbox.ValidateName(in.Name); err != nil {
		return nil, 0, none, err
	}
	if err := sandbox.ValidateOwner(in.Owner); err != nil {
		return nil, 0, none, err
	}
	if in.TTL != 0 {
		if _, err := m.limits.ResolveTTL(in.TTL); err != nil {
			return nil, 0, none, err
		}
	}
	guilds, err := m.limits.NormalizeGuilds(in.Guilds)
	if err != nil {
		return nil, 0, none, err
	}
	if err := m.limits.ValidateMetadata(in.Metadata); err != nil {
		return nil, 0, none, err
	}
	tmpl, err := m.templateFor(ctx, in.Template)
	if err != nil {
		return nil, 0, none, err
	}
	ttl := in.TTL
	if ttl == 0 {
		ttl = tmpl.DefaultTTL // zero for the deployment's default
	}
	ttl, err = m.limits.ResolveTTL(ttl)
	if err != nil {
		return nil, 0, none, err
	}
	return guilds, ttl, tmpl, nil
}

// lockRow locks the row name of sandbox_control.locks until tx ends: a lock no sandbox's role
// can take, for it has no right on the table (migration 0015). The upsert locks the row
// whether it inserts it or finds it.
func lockRow(ctx context.Context, tx pgx.Tx, name string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO sandbox_control.locks (name) VALUES ($1)
		ON CONFLICT (name) DO UPDATE SET name = excluded.name`, name); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	return nil
}

// checkConnections refuses a creation whose role, with those of every sandbox not destroyed
// (each may open sandbox.RoleConnectionLimit sessions), could take connections the database
// server of the sandboxes' roles keeps for the control plane (Limits.DBReservedConnections):
// sandboxes' workers, of any owners, that together filled the server would shut the
// functions out. Every creation takes the one lock row "sandboxes" after its owner's, so the
// count and the insert are atomic across owners. server is what sandboxServerConnections read.
func (m *Manager) checkConnections(ctx context.Context, tx pgx.Tx, server int) error {
	if m.limits.DBReservedConnections < 0 {
		return nil
	}
	if err := lockRow(ctx, tx, "sandboxes"); err != nil {
		return err
	}
	var live int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM sandbox_control.sandboxes WHERE status <> 'destroyed'`).Scan(&live); err != nil {
		return fmt.Errorf("count the sandboxes' connections: %w", err)
	}
	if need := (live + 1) * sandbox.RoleConnectionLimit; need > server-m.limits.DBReservedConnections {
		return sandbox.Errorf(sandbox.CodeQuotaExceeded,
			"the database server has no connections left for another sandbox: %d sandboxes are not destroyed, each allowed %d sessions, and of the server's %d connections %d are kept for the control plane (SANDBOX_DB_RESERVED_CONNECTIONS)",
			live, sandbox.RoleConnectionLimit, server, m.limits.DBReservedConnections)
	}
	return nil
}

// sandboxServerConnections reads how many connections the server of the sandboxes' roles
// takes (max_connections less the superuser's): the workers' server (WorkerServer) when the
// sandboxes live apart. It is read before the creation's transaction, which then holds no
// connection while another is acquired.
func (m *Manager) sandboxServerConnections(ctx context.Context) (int, error) {
	if m.limits.DBReservedConnections < 0 {
		return 0, nil
	}
	var server int
	if err := m.workers.QueryRow(ctx, `SELECT pg_catalog.current_setting('max_connections')::int -
		pg_catalog.current_setting('superuser_reserved_connections')::int`).Scan(&server); err != nil {
		return 0, fmt.Errorf("read the connections of the sandboxes' database server: %w", err)
	}
	return server, nil
}

// Create validates the input, records the sandbox in status creating together with its guild
// mappings and an audit entry (atomically, within the owner's quota), then provisions its
// resources and marks it running. When provisioning fails the sandbox ends failed with the
// error recorded, nothing is dropped here (teardown belongs to cleanup), and the returned
// error wraps sandbox.ErrProvisioningFailed alongside the failed sandbox.
func (m *Manager) Create(ctx context.Context, actor string, in CreateInput) (_ *sandbox.Sandbox, err error) {
	defer withOp(&err, "create sandbox %q", in.Name)
	guilds, ttl, tmpl, err := m.validateCreate(ctx, in)
	if err != nil {
		return nil, err
	}
	if in.Metadata == nil {
		in.Metadata = map[string]string{}
	}
	metadata, err := json.Marshal(in.Metadata)
	if err != nil {
		return nil, sandbox.InvalidField("metadata", "metadata is not encodable")
	}
	id := sandbox.NewID()
	now := m.now().UTC()

	// The creation lease: taken before the row exists, held until creation ends. Cleanup
	// reclaims a sandbox left in creating as soon as the lease is free (its creator is gone),
	// whatever its age.
	lease, err := m.takeCreationLease(ctx, id)
	if err != nil {
		return nil, err
	}
	defer lease.release()

	server, err := m.sandboxServerConnections(ctx)
	if err != nil {
		return nil, err
	}
	if r, ok := m.provisioner.(readiness); ok {
		if err := r.Ready(ctx); err != nil {
			return nil, err
		}
	}
	err = pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		// The owner's lock row makes the quota check and the insert atomic.
		if err := lockRow(ctx, tx, "owner:"+in.Owner); err != nil {
			return err
		}
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM sandbox_control.sandboxes WHERE owner = $1 AND status <> 'destroyed'`,
			in.Owner).Scan(&live); err != nil {
			return err
		}
		if live >= m.limits.OwnerQuota {
			return sandbox.Errorf(sandbox.CodeQuotaExceeded, "owner already has %d sandboxes that are not destroyed (quota %d)", live, m.limits.OwnerQuota)
		}
		if err := m.checkConnections(ctx, tx, server); err != nil {
			return err
		}
		if err := m.checkGuildsFree(ctx, tx, guilds); err != nil {
			return err
		}
		row := tx.QueryRow(ctx, `
			INSERT INTO sandbox_control.sandboxes (id, name, owner, status, schema_name, db_role, created_at, updated_at, expires_at, metadata, template)
			VALUES ($1, $2, $3, 'creating', $4, $5, $6, $6, $7, $8, $9)
			RETURNING `+sandboxColumns,
			id, in.Name, in.Owner, sandbox.SchemaName(id), sandbox.RoleName(id), now, now.Add(ttl), metadata, tmpl.Name)
		if _, err := scanSandbox(row); err != nil {
			if c, ok := uniqueViolation(err); ok && c == "sandboxes_live_name" {
				return sandbox.Errorf(sandbox.CodeNameTaken, "a sandbox named %q already exists", in.Name)
			}
			return err
		}
		if err := insertMappings(ctx, tx, id, actor, guilds); err != nil {
			return err
		}
		unparked, err := unpark(ctx, tx, in.Owner, in.Admin, guilds)
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, ActionCreate, id, map[string]any{
			"name": in.Name, "owner": in.Owner, "ttl_seconds": int64(ttl / time.Second), "guilds": guilds, "expires_at": now.Add(ttl),
			"unparked": unparked, "template": tmpl.Name,
		})
	})
	if err != nil {
		return nil, err
	}
	m.publishRouteChanges(ctx)

	var running map[string]any
	if m.provisioner != nil {
		rows, perr := m.provisionFrom(ctx, id, tmpl)
		if perr != nil {
			// The failure must be recorded even when the caller has gone away.
			failed, ferr := m.MarkFailed(context.WithoutCancel(ctx), actor, id, perr.Error())
			if ferr != nil {
				return nil, errors.Join(fmt.Errorf("provision sandbox %s: %w", id, perr), ferr)
			}
			failed.Guilds = guilds
			return failed, &provisioningError{cause: perr}
		}
		if !tmpl.Builtin {
			running = map[string]any{"template": tmpl.Name, "source_schema": tmpl.SourceSchema, "seed_rows": rows}
		}
	}
	sb, err := m.transition(ctx, actor, id, nil, sandbox.StatusRunning, ActionRunning, running)
	if err != nil {
		// Provisioned but not running: leave it failed, for the teardown to take at once.
		if _, ferr := m.MarkFailed(context.WithoutCancel(ctx), actor, id, "creation did not complete: "+err.Error()); ferr != nil {
			m.log.WarnContext(ctx, "a creation that failed could not be marked failed; cleanup reclaims it once its lease is free",
				logkey.Sandbox, id, logkey.Error, ferr)
		}
		return nil, err
	}
	sb.Guilds = guilds // the transition published the route change
	return sb, nil
}

// provisioningError keeps the cause for logs while the code and message stay caller-safe.
type provisioningError struct{ cause error }

func (e *provisioningError) Error() string {
	return "provisioning_failed: the sandbox's resources could not be created; it is marked failed and will be torn down"
}

func (e *provisioningError) Unwrap() []error { return []error{sandbox.ErrProvisioningFailed, e.cause} }

// ProvisioningCause returns the underlying provisioning error, for logs only.
func ProvisioningCause(err error) error {
	var pe *provisioningError
	if errors.As(err, &pe) {
		return pe.cause
	}
	return nil
}

// checkGuildsFree refuses protected guilds, guilds that are not registered test guilds
// (checkRegistered) and guilds mapped elsewhere with a clear message; the primary key still
// settles races between concurrent mappings.
func (m *Manager) checkGuildsFree(ctx context.Context, tx pgx.Tx, guilds []string) error {
	if len(guilds) == 0 {
		return nil
	}
	if err := m.checkUnprotected(ctx, tx, guilds); err != nil {
		return err
	}
	if err := checkRegistered(ctx, tx, guilds); err != nil {
		return err
	}
	var guild, name string
	err := tx.QueryRow(ctx, `
		SELECT m.guild_id, s.name FROM sandbox_control.guild_mappings m
		JOIN sandbox_control.sandboxes s ON s.id = m.sandbox_id
		WHERE m.guild_id = ANY($1) ORDER BY m.guild_id LIMIT 1`, guilds).Scan(&guild, &name)
	if err == nil {
		return sandbox.Errorf(sandbox.CodeGuildAlreadyMapped, "guild %s is already mapped to sandbox %q", guild, name)
	} else if !isNoRows(err) {
		return err
	}
	return nil
}

// checkUnprotected refuses (guild_protected) a guild of the configuration's protected set or
// of sandbox_control.protected_guilds: it belongs to production, and no sandbox may map it
// nor an admin register it.
func (m *Manager) checkUnprotected(ctx context.Context, tx pgx.Tx, guilds []string) error {
	for _, g := range guilds {
		if m.protected[g] {
			return protectedGuild(g)
		}
	}
	var protected string
	err := tx.QueryRow(ctx, `SELECT guild_id FROM sandbox_control.protected_guilds WHERE guild_id = ANY($1) ORDER BY guild_id LIMIT 1`, guilds).Scan(&protected)
	switch {
	case err == nil:
		return protectedGuild(protected)
	case isNoRows(err):
		return nil
	}
	return err
}

func insertMappings(ctx context.Context, tx pgx.Tx, id, actor string, guilds []string) error {
	if len(guilds) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO sandbox_control.guild_mappings (guild_id, sandbox_id, created_by)
		SELECT g, $2, $3 FROM unnest($1::text[]) AS g`, guilds, id, actor)
	if c, ok := uniqueViolation(err); ok && c == "guild_mappings_pkey" {
		return sandbox.Errorf(sandbox.CodeGuildAlreadyMapped, "one of the guilds %v was mapped to another sandbox meanwhile", guilds)
	}
	return err
}

// MarkFailed moves a creating sandbox to failed, recording reason as its last error.
func (m *Manager) MarkFailed(ctx context.Context, actor, id, reason string) (_ *sandbox.Sandbox, err error) {
	defer withOp(&err, "mark sandbox %s failed", id)
	return m.transition(ctx, actor, id, nil, sandbox.StatusFailed, ActionFailed, map[string]any{"error": reason})
}
