package controlplane

// This file: the Manager, its options and its collaborators (the provisioner, the route
// publisher). The operations are in the files named after their concern.

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Provisioner creates a sandbox's per-sandbox resources (schema, role, stream). The Manager
// calls it after the sandbox row exists in status creating.
type Provisioner interface {
	Provision(ctx context.Context, id string) error
}

// readiness is a Provisioner that can say, before a creation is recorded, whether the stores
// it provisions into answer (provision.Provisioner: the sandboxes' Redis). One that does not
// refuses the creation as unavailable with nothing recorded, instead of a sandbox recorded and
// then failed (the worker database's answer is read then too: sandboxServerConnections).
type readiness interface {
	Ready(ctx context.Context) error
}

// RoutePublisher makes route changes of guilds visible to every router: it bumps the route
// generation and forgets the guilds' cached routes, returning which of them had an entry
// (routecache.Cache).
type RoutePublisher interface {
	Publish(ctx context.Context, guildIDs ...string) (existed []bool, err error)
}

// ServerSettingReader reads a database server's settings (a *pgxpool.Pool).
type ServerSettingReader interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Options configures a Manager. Provisioner and Routes may be nil in tests of the
// lifecycle alone: then a create goes straight to running and nothing is invalidated.
type Options struct {
	Limits          sandbox.Limits
	ProtectedGuilds []string
	Provisioner     Provisioner
	// WorkerServer is the database of the sandboxes' roles when they live apart from the
	// control plane (config.WorkerDatabase): a creation counts the connections of its server
	// (checkConnections). Nil: the Manager's own database.
	WorkerServer ServerSettingReader
	Routes       RoutePublisher
	Now          func() time.Time
	Logger       *slog.Logger
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
	workers     ServerSettingReader
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
		workers:     opts.WorkerServer,
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
	if m.workers == nil {
		m.workers = db
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
