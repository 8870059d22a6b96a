package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Provisioner creates a sandbox's per-sandbox resources (schema, role, stream). The Manager
// calls it after the sandbox row exists in status creating.
type Provisioner interface {
	Provision(ctx context.Context, id string) error
}

// RoutePublisher makes route changes of guilds visible to every router: it bumps the route
// generation and forgets the guilds' cached routes, returning which of them had an entry
// (routecache.Cache).
type RoutePublisher interface {
	Publish(ctx context.Context, guildIDs ...string) (existed []bool, err error)
}

// quotaLockClass is the first key of the per-owner advisory transaction lock that makes the
// quota check and the insert atomic.
const quotaLockClass int32 = 0x73627100

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

// Options configures a Manager. Provisioner and Routes may be nil in tests of the
// lifecycle alone: then a create goes straight to running and nothing is invalidated.
type Options struct {
	Limits          sandbox.Limits
	ProtectedGuilds []string
	Provisioner     Provisioner
	Routes          RoutePublisher
	Now             func() time.Time
	Logger          *slog.Logger
	// CursorKey signs List's cursors (at least MinCursorKeyBytes). Every instance serving one
	// API must share it; empty: a random key of this Manager's own.
	CursorKey []byte
}

// Manager runs the sandbox lifecycle on the control plane.
type Manager struct {
	db          *pgxpool.Pool
	limits      sandbox.Limits
	protected   map[string]bool
	provisioner Provisioner
	routes      RoutePublisher
	now         func() time.Time
	log         *slog.Logger
	cursors     cursorSigner
	// deferred: writes leave their route changes in route_changes for the caller to publish
	// (Deferred).
	deferred bool
}

// NewManager returns a Manager over db.
func NewManager(db *pgxpool.Pool, opts Options) *Manager {
	m := &Manager{
		db:          db,
		limits:      opts.Limits,
		protected:   map[string]bool{},
		provisioner: opts.Provisioner,
		routes:      opts.Routes,
		now:         opts.Now,
		log:         opts.Logger,
		cursors:     newCursorSigner(opts.CursorKey),
	}
	for _, g := range opts.ProtectedGuilds {
		m.protected[g] = true
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	return m
}

// Deferred returns a Manager over the same pool and publisher whose writes record their
// route changes (route_changes, written by the database's triggers) without publishing them:
// for a caller that writes for many sandboxes and then publishes every change at once with
// PublishRoutes (a cleanup run: one publication per batch, not one per write). Nothing is
// lost when that caller dies first: every router publishes what waits every
// ROUTER_PUBLISH_INTERVAL.
func (m *Manager) Deferred() *Manager {
	d := *m
	d.deferred = true
	return &d
}

// Limits returns the limits the Manager enforces.
func (m *Manager) Limits() sandbox.Limits { return m.limits }

// DB returns the pool, for packages that own further control-plane queries (cleanup).
func (m *Manager) DB() *pgxpool.Pool { return m.db }

// CreateInput is what a caller asks for.
type CreateInput struct {
	Name     string
	Owner    string
	TTL      time.Duration // zero means the default TTL
	Guilds   []string
	Metadata map[string]string
}

// Validate checks the input and returns the normalized guilds and TTL.
func (m *Manager) validateCreate(in CreateInput) ([]string, time.Duration, error) {
	if err := sandbox.ValidateName(in.Name); err != nil {
		return nil, 0, err
	}
	if err := sandbox.ValidateOwner(in.Owner); err != nil {
		return nil, 0, err
	}
	ttl, err := m.limits.ResolveTTL(in.TTL)
	if err != nil {
		return nil, 0, err
	}
	guilds, err := m.limits.NormalizeGuilds(in.Guilds)
	if err != nil {
		return nil, 0, err
	}
	if err := m.limits.ValidateMetadata(in.Metadata); err != nil {
		return nil, 0, err
	}
	return guilds, ttl, nil
}

// Create validates the input, records the sandbox in status creating together with its guild
// mappings and an audit entry (atomically, within the owner's quota), then provisions its
// resources and marks it running. When provisioning fails the sandbox ends failed with the
// error recorded, nothing is dropped here (teardown belongs to cleanup), and the returned
// error wraps sandbox.ErrProvisioningFailed alongside the failed sandbox.
func (m *Manager) Create(ctx context.Context, actor string, in CreateInput) (*sandbox.Sandbox, error) {
	guilds, ttl, err := m.validateCreate(in)
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

	err = pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", quotaLockClass, in.Owner); err != nil {
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
		if err := m.checkGuildsFree(ctx, tx, guilds); err != nil {
			return err
		}
		row := tx.QueryRow(ctx, `
			INSERT INTO sandbox_control.sandboxes (id, name, owner, status, schema_name, db_role, created_at, updated_at, expires_at, metadata)
			VALUES ($1, $2, $3, 'creating', $4, $5, $6, $6, $7, $8)
			RETURNING `+sandboxColumns,
			id, in.Name, in.Owner, sandbox.SchemaName(id), sandbox.RoleName(id), now, now.Add(ttl), metadata)
		if _, err := scanSandbox(row); err != nil {
			if c, ok := uniqueViolation(err); ok && c == "sandboxes_live_name" {
				return sandbox.Errorf(sandbox.CodeNameTaken, "a sandbox named %q already exists", in.Name)
			}
			return err
		}
		if err := insertMappings(ctx, tx, id, actor, guilds); err != nil {
			return err
		}
		unparked, err := unpark(ctx, tx, guilds)
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, ActionCreate, id, map[string]any{
			"name": in.Name, "owner": in.Owner, "ttl_seconds": int64(ttl / time.Second), "guilds": guilds, "expires_at": now.Add(ttl),
			"unparked": unparked,
		})
	})
	if err != nil {
		return nil, err
	}
	m.publishRouteChanges(ctx)

	if m.provisioner != nil {
		if perr := m.provisioner.Provision(ctx, id); perr != nil {
			// The failure must be recorded even when the caller has gone away.
			failed, ferr := m.MarkFailed(context.WithoutCancel(ctx), actor, id, perr.Error())
			if ferr != nil {
				return nil, errors.Join(fmt.Errorf("provision sandbox %s: %w", id, perr), ferr)
			}
			failed.Guilds = guilds
			return failed, &provisioningError{cause: perr}
		}
	}
	running, err := m.transition(ctx, actor, id, nil, sandbox.StatusRunning, ActionRunning, nil)
	if err != nil {
		// Provisioned but not running: leave it failed, for the teardown to take at once.
		if _, ferr := m.MarkFailed(context.WithoutCancel(ctx), actor, id, "creation did not complete: "+err.Error()); ferr != nil {
			m.log.WarnContext(ctx, "a creation that failed could not be marked failed; cleanup reclaims it once its lease is free",
				"sandbox", id, "error", ferr)
		}
		return nil, err
	}
	running.Guilds = guilds // the transition published the route change
	return running, nil
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

// checkGuildsFree refuses protected guilds and guilds mapped elsewhere with a clear message;
// the primary key still settles races between concurrent transactions.
func (m *Manager) checkGuildsFree(ctx context.Context, tx pgx.Tx, guilds []string) error {
	if len(guilds) == 0 {
		return nil
	}
	for _, g := range guilds {
		if m.protected[g] {
			return sandbox.Errorf(sandbox.CodeGuildProtected, "guild %s is protected and may never be mapped to a sandbox", g)
		}
	}
	var protected string
	err := tx.QueryRow(ctx, `SELECT guild_id FROM sandbox_control.protected_guilds WHERE guild_id = ANY($1) ORDER BY guild_id LIMIT 1`, guilds).Scan(&protected)
	if err == nil {
		return sandbox.Errorf(sandbox.CodeGuildProtected, "guild %s is protected and may never be mapped to a sandbox", protected)
	} else if !isNoRows(err) {
		return err
	}
	var guild, name string
	err = tx.QueryRow(ctx, `
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

// publishRouteChanges publishes the route changes just committed (and any left over by an
// earlier failure), unless the Manager is Deferred. A failure is logged, not returned: the
// change is committed, and its record in route_changes waits for the next publication
// (docs/streams.md).
func (m *Manager) publishRouteChanges(ctx context.Context) {
	if m.routes == nil || m.deferred {
		return
	}
	if _, err := m.PublishRouteChanges(context.WithoutCancel(ctx)); err != nil {
		m.log.WarnContext(ctx, "publishing route changes failed; the next publication retries them", "error", err)
	}
}

// publishPage bounds the route_changes rows one publication step reads.
const publishPage = 10000

// PublishRouteChanges publishes every route change recorded in route_changes and returns how
// many rows it published (PublishRoutes without guilds of its own).
func (m *Manager) PublishRouteChanges(ctx context.Context) (int, error) {
	n, _, err := m.PublishRoutes(ctx, nil)
	return n, err
}

// PublishRoutes publishes the route changes of guilds together with every change recorded
// in route_changes. It reads the rows a page at a time; every distinct guild of a page (and,
// with the first page, of guilds) is published once, routecache.MaxPublish guilds per Publish (the
// route generation bumped and their cache entries deleted, in one atomic Redis step), and
// only then are the page's rows deleted, so a change is never forgotten before it is
// published. Once per page is enough: every row read was committed before the read, so a
// router's write-back computed before that commit is refused by the generation bumped after
// it, or deleted with the entry. Concurrent publishers may publish the same rows twice, which
// is harmless. It returns how many rows it published and the guilds whose cache entry existed.
func (m *Manager) PublishRoutes(ctx context.Context, guilds []string) (published int, existed map[string]bool, err error) {
	if m.routes == nil {
		return 0, nil, errors.New("controlplane: no route publisher configured")
	}
	existed = map[string]bool{}
	extra := guilds
	for {
		var ids []int64
		page := slices.Clone(extra)
		extra = nil
		var id int64
		var guild string
		rows, err := m.db.Query(ctx, `SELECT id, guild_id FROM sandbox_control.route_changes ORDER BY id LIMIT $1`, publishPage)
		if err != nil {
			return published, existed, err
		}
		if _, err := pgx.ForEachRow(rows, []any{&id, &guild}, func() error {
			ids, page = append(ids, id), append(page, guild)
			return nil
		}); err != nil {
			return published, existed, err
		}
		if len(page) == 0 {
			return published, existed, nil
		}
		page = slices.Compact(slices.Sorted(slices.Values(page)))
		for chunk := range slices.Chunk(page, routecache.MaxPublish) {
			had, err := m.routes.Publish(ctx, chunk...)
			if err != nil {
				return published, existed, err
			}
			for i, g := range chunk {
				if had[i] {
					existed[g] = true
				}
			}
		}
		if len(ids) > 0 {
			if _, err := m.db.Exec(ctx, `DELETE FROM sandbox_control.route_changes WHERE id = ANY($1)`, ids); err != nil {
				return published, existed, err
			}
		}
		published += len(ids)
		if len(ids) < publishPage {
			return published, existed, nil
		}
	}
}

// MarkFailed moves a creating sandbox to failed, recording reason as its last error.
func (m *Manager) MarkFailed(ctx context.Context, actor, id, reason string) (*sandbox.Sandbox, error) {
	return m.transition(ctx, actor, id, nil, sandbox.StatusFailed, ActionFailed, map[string]any{"error": reason})
}

// Transition moves a sandbox to `to` when its current status allows it (DESIGN §3.2),
// with one conditional update and an audit entry in the same transaction. It returns
// sandbox.ErrInvalidTransition when the current status does not allow the move and
// sandbox.ErrNotFound when there is no such sandbox.
func (m *Manager) Transition(ctx context.Context, actor, id string, to sandbox.Status, details map[string]any) (*sandbox.Sandbox, error) {
	return m.transition(ctx, actor, id, nil, to, ActionTransition, details)
}

// TransitionFrom is Transition restricted to some of the legal source statuses (for
// example: cleanup reclaims only the creating sandboxes it selected as stuck).
func (m *Manager) TransitionFrom(ctx context.Context, actor, id string, from []sandbox.Status, to sandbox.Status, details map[string]any) (*sandbox.Sandbox, error) {
	if len(from) == 0 {
		return nil, fmt.Errorf("controlplane: TransitionFrom needs at least one source status")
	}
	return m.transition(ctx, actor, id, from, to, ActionTransition, details)
}

// transition moves id to `to` from one of `from` (all legal sources when nil); every
// source must be legal for `to`.
func (m *Manager) transition(ctx context.Context, actor, id string, from []sandbox.Status, to sandbox.Status, action string, details map[string]any) (*sandbox.Sandbox, error) {
	return m.fencedTransition(ctx, nil, actor, id, from, to, action, details)
}

// fencedTransition is transition written only while claim is current (ErrClaimLost
// otherwise); a nil claim fences nothing.
func (m *Manager) fencedTransition(ctx context.Context, claim *TeardownClaim, actor, id string, from []sandbox.Status, to sandbox.Status,
	action string, details map[string]any) (*sandbox.Sandbox, error) {
	if !to.Valid() {
		return nil, sandbox.InvalidField("status", "unknown status %q", to)
	}
	if from == nil {
		from = sandbox.Sources(to)
	}
	for _, f := range from {
		if !sandbox.CanTransition(f, to) {
			return nil, fmt.Errorf("controlplane: %s -> %s is not a legal transition", f, to)
		}
	}
	var out *sandbox.Sandbox
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		if err := checkClaim(ctx, tx, claim); err != nil {
			return err
		}
		var lastError any
		if reason, ok := details["error"].(string); ok && to == sandbox.StatusFailed {
			lastError = reason
		}
		row := tx.QueryRow(ctx, `
			WITH prev AS (SELECT id, status FROM sandbox_control.sandboxes WHERE id = $1 FOR UPDATE)
			UPDATE sandbox_control.sandboxes s SET
				status = $2, updated_at = $3,
				destroyed_at = CASE WHEN $2 = 'destroyed' THEN $3 ELSE s.destroyed_at END,
				last_error = coalesce($5, s.last_error)
			FROM prev WHERE s.id = prev.id AND prev.status = ANY($4)
			RETURNING prev.status, `+columnsOf("s."),
			id, string(to), m.now().UTC(), statusStrings(from), lastError)
		var prev string
		sb, err := scanSandbox(row, &prev)
		if isNoRows(err) {
			return m.transitionError(ctx, tx, id, to)
		}
		if err != nil {
			return err
		}
		d := map[string]any{"from": prev, "to": string(to)}
		for k, v := range details {
			d[k] = v
		}
		out = sb
		return audit(ctx, tx, actor, action, id, d)
	})
	if err == nil {
		m.publishRouteChanges(ctx)
	}
	return out, err
}

func (m *Manager) transitionError(ctx context.Context, q queryer, id string, to sandbox.Status) error {
	var current string
	err := q.QueryRow(ctx, `SELECT status FROM sandbox_control.sandboxes WHERE id = $1`, id).Scan(&current)
	if isNoRows(err) {
		return sandbox.Errorf(sandbox.CodeNotFound, "sandbox %s not found", id)
	}
	if err != nil {
		return err
	}
	return sandbox.Errorf(sandbox.CodeInvalidTransition, "sandbox %s cannot move from %s to %s", id, current, to)
}

// RequestDestroy moves a running or failed sandbox to destroying, so that the teardown
// (cleanup) takes it. It is idempotent: for a sandbox already destroying or destroyed it
// returns that sandbox with changed false. A sandbox still creating cannot be destroyed
// until creation ends (cleanup reclaims creations stuck past their limit).
func (m *Manager) RequestDestroy(ctx context.Context, actor, id string) (sb *sandbox.Sandbox, changed bool, err error) {
	// A user may destroy what runs or failed; creating -> destroying is cleanup's, for
	// creations stuck past their limit.
	sb, err = m.transition(ctx, actor, id, []sandbox.Status{sandbox.StatusRunning, sandbox.StatusFailed},
		sandbox.StatusDestroying, ActionDestroyRequested, nil)
	if errors.Is(err, sandbox.ErrInvalidTransition) {
		current, gerr := m.Get(ctx, id)
		if gerr != nil {
			return nil, false, gerr
		}
		switch current.Status {
		case sandbox.StatusDestroying, sandbox.StatusDestroyed:
			return current, false, nil
		case sandbox.StatusCreating:
			return nil, false, sandbox.Errorf(sandbox.CodeInvalidTransition, "sandbox %q is still being created; destroy it once it is running or failed", current.Name)
		}
		return nil, false, err
	}
	if err != nil {
		return nil, false, err
	}
	if err := m.loadGuilds(ctx, []*sandbox.Sandbox{sb}); err != nil {
		return nil, false, err
	}
	return sb, true, nil
}

// Extension is what an extension did: the expiry before and after, and by how much it really
// moved, which is less than asked when the cap applied.
type Extension struct {
	Sandbox *sandbox.Sandbox
	// From and To are the expiry before and after.
	From, To time.Time
	// By is To - From: the real extension.
	By time.Duration
	// Requested is the extension asked for.
	Requested time.Duration
	// Capped reports that To is the cap, MaxExpiresAt (created_at + the maximum lifetime),
	// reached before Requested.
	Capped       bool
	MaxExpiresAt time.Time
}

// Extend moves a running, unexpired sandbox's expiry by `by`, capped at its maximum
// lifetime. capped reports whether the cap applied. ExtendExpiry says more.
func (m *Manager) Extend(ctx context.Context, actor, id string, by time.Duration) (sb *sandbox.Sandbox, capped bool, err error) {
	ext, err := m.ExtendExpiry(ctx, actor, id, by)
	return ext.Sandbox, ext.Capped, err
}

// ExtendExpiry moves a running, unexpired sandbox's expiry by `by`, capped at created_at plus
// the maximum lifetime (sandbox.Limits.ExtendedExpiry), and returns what it did. A sandbox
// already at the cap is invalid_transition.
func (m *Manager) ExtendExpiry(ctx context.Context, actor, id string, by time.Duration) (Extension, error) {
	var ext Extension
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		cur, err := scanSandbox(tx.QueryRow(ctx, `SELECT `+sandboxColumns+` FROM sandbox_control.sandboxes WHERE id = $1 FOR UPDATE`, id))
		if isNoRows(err) {
			return sandbox.Errorf(sandbox.CodeNotFound, "sandbox %s not found", id)
		}
		if err != nil {
			return err
		}
		now := m.now().UTC()
		if cur.Status != sandbox.StatusRunning || !now.Before(cur.ExpiresAt) {
			return sandbox.Errorf(sandbox.CodeInvalidTransition, "sandbox %q is %s; only a running sandbox that has not expired can be extended",
				cur.Name, cur.DisplayStatus(now))
		}
		next, capped, err := m.limits.ExtendedExpiry(cur.CreatedAt, cur.ExpiresAt, by)
		if err != nil {
			return err
		}
		sb, err := scanSandbox(tx.QueryRow(ctx, `
			UPDATE sandbox_control.sandboxes SET expires_at = $2, updated_at = $3, expiry_warned_at = NULL
			WHERE id = $1 AND status = 'running'
			RETURNING `+sandboxColumns, id, next, now))
		if err != nil {
			return err
		}
		ext = Extension{Sandbox: sb, From: cur.ExpiresAt, To: sb.ExpiresAt, By: sb.ExpiresAt.Sub(cur.ExpiresAt),
			Requested: by, Capped: capped, MaxExpiresAt: cur.CreatedAt.Add(m.limits.MaxLifetime)}
		return audit(ctx, tx, actor, ActionExtend, id, map[string]any{
			"by_seconds": int64(by / time.Second), "extended_by_seconds": int64(ext.By / time.Second),
			"from": cur.ExpiresAt, "to": next, "capped": capped,
		})
	})
	if err != nil {
		return Extension{}, err
	}
	m.publishRouteChanges(ctx) // the routes carry the expiry
	return ext, m.loadGuilds(ctx, []*sandbox.Sandbox{ext.Sandbox})
}

// AddGuild maps a guild to a running sandbox.
func (m *Manager) AddGuild(ctx context.Context, actor, id, guildID string) error {
	if err := sandbox.ValidateGuildID(guildID); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		// FOR SHARE keeps the sandbox from leaving running until this mapping commits.
		var status, name string
		var count int
		err := tx.QueryRow(ctx, `
			SELECT s.status, s.name, (SELECT count(*) FROM sandbox_control.guild_mappings m WHERE m.sandbox_id = s.id)
			FROM sandbox_control.sandboxes s WHERE s.id = $1 FOR SHARE OF s`, id).Scan(&status, &name, &count)
		if isNoRows(err) {
			return sandbox.Errorf(sandbox.CodeNotFound, "sandbox %s not found", id)
		}
		if err != nil {
			return err
		}
		if sandbox.Status(status) != sandbox.StatusRunning {
			return sandbox.Errorf(sandbox.CodeInvalidTransition, "sandbox %q is %s; guilds can be added only to a running sandbox", name, status)
		}
		if count >= m.limits.MaxGuilds {
			return sandbox.InvalidField("guild_id", "sandbox %q already has %d guilds (limit %d)", name, count, m.limits.MaxGuilds)
		}
		if err := m.checkGuildsFree(ctx, tx, []string{guildID}); err != nil {
			return err
		}
		if err := insertMappings(ctx, tx, id, actor, []string{guildID}); err != nil {
			return err
		}
		unparked, err := unpark(ctx, tx, []string{guildID})
		if err != nil {
			return err
		}
		details := map[string]any{"guild_id": guildID}
		if len(unparked) > 0 {
			details["unparked"] = true
		}
		return audit(ctx, tx, actor, ActionGuildAdd, id, details)
	})
	if err != nil {
		return err
	}
	m.publishRouteChanges(ctx)
	return nil
}

// RemoveGuild removes a guild's mapping from a sandbox.
func (m *Manager) RemoveGuild(ctx context.Context, actor, id, guildID string) error {
	if err := sandbox.ValidateGuildID(guildID); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM sandbox_control.guild_mappings WHERE guild_id = $1 AND sandbox_id = $2`, guildID, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return sandbox.Errorf(sandbox.CodeNotFound, "guild %s is not mapped to this sandbox", guildID)
		}
		return audit(ctx, tx, actor, ActionGuildRemove, id, map[string]any{"guild_id": guildID})
	})
	if err != nil {
		return err
	}
	m.publishRouteChanges(ctx)
	return nil
}

// ProtectGuild records a guild that may never be mapped. A guild mapped now is refused.
func (m *Manager) ProtectGuild(ctx context.Context, actor, guildID, reason string) error {
	if err := sandbox.ValidateGuildID(guildID); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		// Lock the mapping row, if any, so a concurrent mapping cannot slip in unseen.
		var sandboxID string
		err := tx.QueryRow(ctx, `SELECT sandbox_id FROM sandbox_control.guild_mappings WHERE guild_id = $1 FOR SHARE`, guildID).Scan(&sandboxID)
		if err == nil {
			return sandbox.Errorf(sandbox.CodeGuildAlreadyMapped, "guild %s is mapped to sandbox %s; remove the mapping first", guildID, sandboxID)
		} else if !isNoRows(err) {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sandbox_control.protected_guilds (guild_id, reason, created_by) VALUES ($1, $2, $3)
			ON CONFLICT (guild_id) DO UPDATE SET reason = excluded.reason`, guildID, reason, actor); err != nil {
			return err
		}
		return audit(ctx, tx, actor, ActionGuildProtect, "", map[string]any{"guild_id": guildID, "reason": reason})
	})
	if err != nil {
		return err
	}
	// A cached route computed before the protection must not outlive it.
	m.publishRouteChanges(ctx)
	return nil
}

// Get returns a sandbox by id, with its guilds.
func (m *Manager) Get(ctx context.Context, id string) (*sandbox.Sandbox, error) {
	return m.getOne(ctx, `SELECT `+sandboxColumns+` FROM sandbox_control.sandboxes WHERE id = $1`, id, "sandbox %s not found")
}

// GetByName returns the live sandbox with that name or, when none is live, the most recently
// created destroyed one (so a destroyed sandbox can still be looked at by name).
func (m *Manager) GetByName(ctx context.Context, name string) (*sandbox.Sandbox, error) {
	if err := sandbox.ValidateName(name); err != nil {
		return nil, err
	}
	return m.getOne(ctx, `SELECT `+sandboxColumns+` FROM sandbox_control.sandboxes WHERE name = $1
		ORDER BY (status <> 'destroyed') DESC, created_at DESC LIMIT 1`, name, "sandbox %q not found")
}

// GetByGuild returns the sandbox a guild is mapped to.
func (m *Manager) GetByGuild(ctx context.Context, guildID string) (*sandbox.Sandbox, error) {
	if err := sandbox.ValidateGuildID(guildID); err != nil {
		return nil, err
	}
	return m.getOne(ctx, `SELECT `+columnsOf("s.")+` FROM sandbox_control.sandboxes s
		JOIN sandbox_control.guild_mappings g ON g.sandbox_id = s.id WHERE g.guild_id = $1`, guildID, "guild %s is not mapped to a sandbox")
}

func (m *Manager) getOne(ctx context.Context, sql, arg, notFound string) (*sandbox.Sandbox, error) {
	sb, err := scanSandbox(m.db.QueryRow(ctx, sql, arg))
	if isNoRows(err) {
		return nil, sandbox.Errorf(sandbox.CodeNotFound, notFound, arg)
	}
	if err != nil {
		return nil, err
	}
	return sb, m.loadGuilds(ctx, []*sandbox.Sandbox{sb})
}

// loadGuilds fills Guilds of each sandbox with one query.
func (m *Manager) loadGuilds(ctx context.Context, sbs []*sandbox.Sandbox) error {
	if len(sbs) == 0 {
		return nil
	}
	rows, err := m.db.Query(ctx, `SELECT sandbox_id, guild_id FROM sandbox_control.guild_mappings
		WHERE sandbox_id = ANY($1) ORDER BY guild_id`, sandboxIDs(sbs))
	if err != nil {
		return err
	}
	defer rows.Close()
	byID := map[string]*sandbox.Sandbox{}
	for _, sb := range sbs {
		sb.Guilds = []string{}
		byID[sb.ID] = sb
	}
	for rows.Next() {
		var sid, gid string
		if err := rows.Scan(&sid, &gid); err != nil {
			return err
		}
		byID[sid].Guilds = append(byID[sid].Guilds, gid)
	}
	return rows.Err()
}

// ListFilter selects sandboxes for List.
type ListFilter struct {
	Owner string // empty: every owner
	// Status filters by stored status; "expired" selects running sandboxes past expiry.
	Status           string
	IncludeDestroyed bool
	Limit            int    // 1-200, default 50
	Cursor           string // from a previous page's NextCursor
}

// ListPage is one page of sandboxes, newest first.
type ListPage struct {
	Sandboxes  []*sandbox.Sandbox
	NextCursor string // empty on the last page
}

// List returns sandboxes newest first, with keyset pagination through an opaque, signed cursor
// (cursor.go): a cursor this Manager's key did not sign is invalid_input (field cursor).
func (m *Manager) List(ctx context.Context, f ListFilter) (ListPage, error) {
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > 200 {
		return ListPage{}, sandbox.InvalidField("limit", "limit must be between 1 and 200")
	}
	var status any
	expired := false
	switch {
	case f.Status == "":
	case f.Status == sandbox.DisplayExpired:
		expired = true
	case sandbox.Status(f.Status).Valid():
		status = f.Status
	default:
		return ListPage{}, sandbox.InvalidField("status", "status %q is not one of creating, running, expired, failed, destroying, destroyed", f.Status)
	}
	var owner any
	if f.Owner != "" {
		owner = f.Owner
	}
	var after *cursor
	if f.Cursor != "" {
		c, err := m.cursors.decode(f.Cursor)
		if err != nil {
			return ListPage{}, err
		}
		after = &c
	}
	var afterAt, afterID any
	if after != nil {
		afterAt, afterID = after.CreatedAt, after.ID
	}
	rows, err := m.db.Query(ctx, `
		SELECT `+sandboxColumns+` FROM sandbox_control.sandboxes
		WHERE ($1::text IS NULL OR owner = $1)
		  AND ($2::text IS NULL OR status = $2)
		  AND (NOT $3 OR (status = 'running' AND expires_at <= $7))
		  AND ($4 OR status <> 'destroyed' OR $2::text = 'destroyed')
		  AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6::text))
		ORDER BY created_at DESC, id DESC
		LIMIT $8`,
		owner, status, expired, f.IncludeDestroyed, afterAt, afterID, m.now().UTC(), f.Limit+1)
	if err != nil {
		return ListPage{}, err
	}
	sbs, err := collectSandboxes(rows)
	if err != nil {
		return ListPage{}, err
	}
	var page ListPage
	if len(sbs) > f.Limit {
		sbs = sbs[:f.Limit]
		last := sbs[len(sbs)-1]
		page.NextCursor = m.cursors.encode(cursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	page.Sandboxes = sbs
	return page, m.loadGuilds(ctx, sbs)
}

// LookupRoutes resolves guilds to routes with one query: mapping, sandbox status and
// protection. Guilds with no row in any table come back unmapped.
func (m *Manager) LookupRoutes(ctx context.Context, guildIDs []string) (map[string]sandbox.Route, error) {
	out := make(map[string]sandbox.Route, len(guildIDs))
	if len(guildIDs) == 0 {
		return out, nil
	}
	rows, err := m.db.Query(ctx, `
		SELECT g.guild_id, coalesce(mp.sandbox_id, ''), coalesce(s.status, ''), s.expires_at, p.guild_id IS NOT NULL,
			coalesce(pk.sandbox_id, ''), pk.parked_at
		FROM unnest($1::text[]) AS g(guild_id)
		LEFT JOIN sandbox_control.guild_mappings mp ON mp.guild_id = g.guild_id
		LEFT JOIN sandbox_control.sandboxes s ON s.id = mp.sandbox_id
		LEFT JOIN sandbox_control.protected_guilds p ON p.guild_id = g.guild_id
		LEFT JOIN sandbox_control.parked_guilds pk ON pk.guild_id = g.guild_id`, guildIDs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r sandbox.Route
		var status string
		var expires, parked *time.Time
		if err := rows.Scan(&r.GuildID, &r.SandboxID, &status, &expires, &r.Protected, &r.ParkedBy, &parked); err != nil {
			return nil, err
		}
		if expires != nil {
			r.ExpiresAt = expires.UTC()
		}
		if parked != nil {
			r.ParkedAt = parked.UTC()
		}
		r.Status = sandbox.Status(status)
		r.Protected = r.Protected || m.protected[r.GuildID]
		out[r.GuildID] = r
	}
	return out, rows.Err()
}

// AuditLog returns the audit entries of one sandbox, oldest first.
func (m *Manager) AuditLog(ctx context.Context, sandboxID string) ([]AuditEntry, error) {
	rows, err := m.db.Query(ctx, `SELECT id, at, actor, action, coalesce(sandbox_id, ''), details
		FROM sandbox_control.audit_log WHERE sandbox_id = $1 ORDER BY id`, sandboxID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		var details []byte
		err := row.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.SandboxID, &details)
		e.Details = details
		return e, err
	})
}

// Stats are the control plane's gauges.
type Stats struct {
	Active        int // sandboxes that are not destroyed
	GuildMappings int
}

// Stats counts live sandboxes and guild mappings.
func (m *Manager) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := m.db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM sandbox_control.sandboxes WHERE status <> 'destroyed'),
		(SELECT count(*) FROM sandbox_control.guild_mappings)`).Scan(&s.Active, &s.GuildMappings)
	return s, err
}

func statusStrings(ss []sandbox.Status) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}
