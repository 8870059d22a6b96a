package controlplane

// This file: reads of sandboxes, listings with signed cursors, the audit log and the gauges.

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Get returns a sandbox by id, with its guilds.
func (m *Manager) Get(ctx context.Context, id string) (_ *sandbox.Sandbox, err error) {
	defer withOp(&err, "get sandbox %s", id)
	return m.getOne(ctx, `SELECT `+sandboxColumns+` FROM sandbox_control.sandboxes WHERE id = $1`, id, "sandbox %s not found")
}

// GetByName returns the live sandbox with that name or, when none is live, the most recently
// created destroyed one (so a destroyed sandbox can still be looked at by name).
func (m *Manager) GetByName(ctx context.Context, name string) (_ *sandbox.Sandbox, err error) {
	defer withOp(&err, "get sandbox %q", name)
	if err := sandbox.ValidateName(name); err != nil {
		return nil, err
	}
	return m.getOne(ctx, `SELECT `+sandboxColumns+` FROM sandbox_control.sandboxes WHERE name = $1
		ORDER BY (status <> 'destroyed') DESC, created_at DESC LIMIT 1`, name, "sandbox %q not found")
}

// GetByGuild returns the sandbox a guild is mapped to.
func (m *Manager) GetByGuild(ctx context.Context, guildID string) (_ *sandbox.Sandbox, err error) {
	defer withOp(&err, "get the sandbox of guild %s", guildID)
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
	// SharedWith, with Owner, adds the sandboxes shared with this principal (sandbox_shares).
	SharedWith string
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
func (m *Manager) List(ctx context.Context, f ListFilter) (_ ListPage, err error) {
	defer withOp(&err, "list sandboxes")
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
	var sharedWith any
	if f.SharedWith != "" {
		sharedWith = f.SharedWith
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
		WHERE ($1::text IS NULL OR owner = $1
			OR id IN (SELECT sandbox_id FROM sandbox_control.sandbox_shares WHERE principal = $9::text))
		  AND ($2::text IS NULL OR status = $2)
		  AND (NOT $3 OR (status = 'running' AND expires_at <= $7))
		  AND ($4 OR status <> 'destroyed' OR $2::text = 'destroyed')
		  AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6::text))
		ORDER BY created_at DESC, id DESC
		LIMIT $8`,
		owner, status, expired, f.IncludeDestroyed, afterAt, afterID, m.now().UTC(), f.Limit+1, sharedWith)
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

// AuditLog returns the audit entries of one sandbox, oldest first.
func (m *Manager) AuditLog(ctx context.Context, sandboxID string) (_ []AuditEntry, err error) {
	defer withOp(&err, "read the audit log of sandbox %s", sandboxID)
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
func (m *Manager) Stats(ctx context.Context) (_ Stats, err error) {
	defer withOp(&err, "count sandboxes and guild mappings")
	var s Stats
	err = m.db.QueryRow(ctx, `SELECT
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
