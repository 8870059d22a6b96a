package cleanup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Dropper drops a sandbox's schema and role and its Redis user, and lists the Redis users
// of sandboxes for orphan reconciliation (provision.Provisioner).
type Dropper interface {
	Drop(ctx context.Context, id string, lockTimeout time.Duration) (provision.DropResult, error)
	DeleteRedisUsers(ctx context.Context, ids []string) (map[string]provision.RedisUserResult, error)
	SandboxRedisUsers(ctx context.Context) ([]string, error)
	RedisUserName(id string) string
}

// DefaultActor is the audit actor of scheduled runs.
const DefaultActor = "cleanup"

// Options configures a Service. Manager, Resources and Redis are required; zero durations
// and counts take the defaults of config.go.
type Options struct {
	Manager   *controlplane.Manager
	Resources Dropper
	Redis     redis.UniversalClient
	// Publisher delivers expiry warnings; nil logs them.
	Publisher Publisher
	Logger    *slog.Logger
	// Now is the clock of every policy decision (expiry, grace periods); the deadline of a
	// run is always measured on the real clock.
	Now func() time.Time
	// Actor is the audit actor of scheduled runs (DefaultActor).
	Actor string

	StuckCreatingAfter  time.Duration
	OrphanGrace         time.Duration
	DeadlineMargin      time.Duration
	ExpiryWarningWindow time.Duration
	// DropLockTimeout bounds the wait for locks when dropping a schema and a role, so a busy
	// schema fails the step instead of hanging the run.
	DropLockTimeout time.Duration
	// Concurrency is how many sandboxes one run tears down at once. The pool needs that many
	// connections for the run not to queue; the claims use one connection of their own.
	Concurrency int
	// ScanCount is the COUNT hint of every SCAN.
	ScanCount int64
	// BatchLimit caps the candidates one run considers; the rest wait for the next run.
	BatchLimit int
	// ClaimLease is how long a claim on a sandbox's teardown lasts without renewal
	// (config.DefaultClaimLease); a run renews its claims every third of it.
	ClaimLease time.Duration
}

// Service tears sandboxes down, warns owners before expiry and reconciles orphans.
type Service struct {
	m *controlplane.Manager
	// writes is m Deferred: a teardown's writes leave their route changes for its cache step,
	// which publishes those of the whole batch at once (engine.go).
	writes    *controlplane.Manager
	db        *pgxpool.Pool
	resources Dropper
	rdb       redis.UniversalClient
	publisher Publisher
	log       *slog.Logger
	clock     func() time.Time
	actor     string

	stuckAfter  time.Duration
	grace       time.Duration
	margin      time.Duration
	warnWindow  time.Duration
	lockTimeout time.Duration
	concurrency int
	scanCount   int64
	batchLimit  int
	claimLease  time.Duration

	// inject, set only by tests, fails the teardown at a chosen point (see fault).
	inject func(ctx context.Context, point string, step Step, sandboxID string) error
}

// New returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Manager == nil || opts.Resources == nil || opts.Redis == nil {
		return nil, errors.New("cleanup: Manager, Resources and Redis are required")
	}
	s := &Service{
		m:           opts.Manager,
		writes:      opts.Manager.Deferred(),
		db:          opts.Manager.DB(),
		resources:   opts.Resources,
		rdb:         opts.Redis,
		publisher:   opts.Publisher,
		log:         opts.Logger,
		clock:       opts.Now,
		actor:       opts.Actor,
		stuckAfter:  orDefault(opts.StuckCreatingAfter, config.DefaultStuckCreatingAfter),
		grace:       orDefault(opts.OrphanGrace, config.DefaultOrphanGrace),
		margin:      orDefault(opts.DeadlineMargin, DefaultDeadlineMargin),
		warnWindow:  orDefault(opts.ExpiryWarningWindow, DefaultExpiryWarningWindow),
		lockTimeout: orDefault(opts.DropLockTimeout, config.DefaultDropLockTimeout),
		concurrency: orDefault(opts.Concurrency, DefaultConcurrency),
		scanCount:   orDefault(opts.ScanCount, DefaultScanCount),
		batchLimit:  orDefault(opts.BatchLimit, DefaultBatchLimit),
		claimLease:  orDefault(opts.ClaimLease, config.DefaultClaimLease),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.actor == "" {
		s.actor = DefaultActor
	}
	if s.publisher == nil {
		s.publisher = LogPublisher{Logger: s.log}
	}
	return s, nil
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// now is the policy clock at PostgreSQL's precision, so a time written and compared later
// (expiry_warned_at) round-trips exactly.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// fault lets tests fail the teardown before or after a step of one sandbox.
func (s *Service) fault(ctx context.Context, point string, step Step, id string) error {
	if s.inject == nil {
		return nil
	}
	return s.inject(ctx, point, step, id)
}

// claimLockClass is the first key of the session advisory locks that claim sandboxes
// ("sbtd"); the second is hashtext(id).
const claimLockClass int32 = 0x73627464

// claimsApplicationName is the application_name of the claims session, for operators (and
// tests) to find it in pg_stat_activity.
const claimsApplicationName = "sandbox-cleanup-claims"

// claims holds session advisory locks on a connection of its own, outside the pool: closing
// it (or the process dying) releases every claim at once, and no pooled connection ever
// carries a lock to its next user. pgx connections are not safe for concurrent use, hence
// the mutex; each call is one short statement.
//
// The advisory locks are only a fast pre-filter: they vanish with the session (a connection
// killed while the process lives on), so a second run may then pass them. What makes a
// claim exclusive is its lease (leases below): a fencing token that every write of the
// teardown checks.
type claims struct {
	mu   sync.Mutex
	conn *pgx.Conn
}

func (s *Service) openClaims(ctx context.Context) (*claims, error) {
	cfg := s.db.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = claimsApplicationName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cleanup: open the claims session: %w", err)
	}
	return &claims{conn: conn}, nil
}

// try claims a sandbox without waiting; false means another run or a destroy holds it. A
// hash collision between two ids only makes one wait for the next run.
func (c *claims) try(ctx context.Context, id string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ok bool
	err := c.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, claimLockClass, id).Scan(&ok)
	return ok, err
}

func (c *claims) release(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext($2))`, claimLockClass, id)
	return err
}

func (c *claims) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.conn.Close(context.Background())
}

// heldClaim is a lease on one sandbox's teardown held by this process; lost is set once the
// lease is known to be another holder's.
type heldClaim struct {
	*controlplane.TeardownClaim
	lost atomic.Bool
}

// leases holds the teardown claims (controlplane.TeardownClaim) of one run or destroy and
// renews them every third of the lease while it works, so that only a run that stopped
// (crashed, frozen, cut off from the database) loses them.
type leases struct {
	s      *Service
	holder string
	mu     sync.Mutex
	held   map[*heldClaim]struct{}
	stop   chan struct{}
	done   chan struct{}
}

func (s *Service) startLeases(ctx context.Context) *leases {
	var b [6]byte
	_, _ = rand.Read(b[:])
	l := &leases{s: s, holder: s.actor + "/" + hex.EncodeToString(b[:]), held: map[*heldClaim]struct{}{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.renewLoop(context.WithoutCancel(ctx))
	return l
}

func (l *leases) renewLoop(ctx context.Context) {
	defer close(l.done)
	tick := time.NewTicker(max(l.s.claimLease/3, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			if _, err := l.renew(ctx); err != nil {
				l.s.log.WarnContext(ctx, "teardown claims not renewed; retrying", "error", err)
			}
		}
	}
}

// renew extends every held lease and marks the lost ones; it returns those.
func (l *leases) renew(ctx context.Context) ([]*heldClaim, error) {
	l.mu.Lock()
	held := make([]*heldClaim, 0, len(l.held))
	for h := range l.held {
		held = append(held, h)
	}
	l.mu.Unlock()
	tcs := make([]*controlplane.TeardownClaim, len(held))
	for i, h := range held {
		tcs[i] = h.TeardownClaim
	}
	lostTCs, err := l.s.m.RenewTeardownClaims(ctx, tcs, l.s.claimLease)
	if err != nil {
		return nil, err
	}
	var lost []*heldClaim
	for _, tc := range lostTCs {
		for _, h := range held {
			if h.TeardownClaim == tc {
				h.lost.Store(true)
				lost = append(lost, h)
			}
		}
	}
	return lost, nil
}

// take claims a sandbox's teardown; nil means another holder's lease runs.
func (l *leases) take(ctx context.Context, id string) (*heldClaim, error) {
	tc, err := l.s.m.ClaimTeardown(ctx, id, l.holder, l.s.claimLease)
	if err != nil || tc == nil {
		return nil, err
	}
	h := &heldClaim{TeardownClaim: tc}
	l.mu.Lock()
	l.held[h] = struct{}{}
	l.mu.Unlock()
	return h, nil
}

func (l *leases) release(ctx context.Context, h *heldClaim) {
	l.mu.Lock()
	delete(l.held, h)
	l.mu.Unlock()
	if err := l.s.m.ReleaseTeardownClaim(context.WithoutCancel(ctx), h.TeardownClaim); err != nil {
		l.s.log.WarnContext(ctx, "teardown claim not released; its lease expires", "sandbox", h.SandboxID, "error", err)
	}
}

// close stops the renewals; claims not released expire with their lease.
func (l *leases) close() {
	close(l.stop)
	<-l.done
}

// Destroy destroys one sandbox now, for the API's destroy (and its compensation of a failed
// creation) or an operator: it requests the destroy (running or failed -> destroying, audited
// as a destroy request; a sandbox destroying or destroyed already is left as it is) and tears
// the sandbox down, and returns it with its teardown record. The request's route changes are
// published by the teardown's cache step, which so counts the cache entries it removes, or
// before returning when the teardown does not run.
//
// When another run holds the sandbox it returns the sandbox as it is (destroying), without
// waiting. A step that fails is recorded in the teardown record and in last_error; Destroy
// then returns the sandbox (still destroying: the next scheduled run resumes it) together
// with the *StepError, so that callers can tell "stopped at a failed step" from "held by
// another run". A sandbox is returned with any error once its destroy request is committed;
// an error without a sandbox means nothing changed: sandbox.ErrNotFound, or
// sandbox.ErrInvalidTransition for a sandbox still being created.
func (s *Service) Destroy(ctx context.Context, actor, sandboxID string) (*sandbox.Sandbox, error) {
	if !sandbox.ValidID(sandboxID) {
		return nil, sandbox.Errorf(sandbox.CodeNotFound, "sandbox %q not found", sandboxID)
	}
	requested, _, err := s.writes.RequestDestroy(ctx, actor, sandboxID)
	if err != nil {
		return nil, err
	}
	defer func() {
		if _, err := s.m.PublishRouteChanges(context.WithoutCancel(ctx)); err != nil {
			s.log.WarnContext(ctx, "publishing route changes failed; routers publish them within a second", "error", err)
		}
	}()
	if requested.Status == sandbox.StatusDestroyed {
		return requested, nil
	}
	current := func(err error) (*sandbox.Sandbox, error) {
		if sb, gerr := s.m.Get(context.WithoutCancel(ctx), sandboxID); gerr == nil {
			return sb, err
		}
		return requested, err
	}
	cl, err := s.openClaims(ctx)
	if err != nil {
		return requested, err
	}
	defer cl.close()
	ok, err := cl.try(ctx, sandboxID)
	if err != nil {
		return requested, fmt.Errorf("cleanup: claim %s: %w", sandboxID, err)
	}
	if !ok {
		return current(nil)
	}
	ls := s.startLeases(ctx)
	defer ls.close()
	claim, err := ls.take(ctx, sandboxID)
	if err != nil {
		return requested, fmt.Errorf("cleanup: claim %s: %w", sandboxID, err)
	}
	if claim == nil {
		return current(nil)
	}
	defer ls.release(ctx, claim)
	now := s.now()
	sb, reason, err := s.m.TeardownDue(ctx, sandboxID, now, now.Add(-s.stuckAfter))
	if err != nil {
		return requested, err
	}
	if sb.Status == sandbox.StatusDestroyed || reason == "" {
		return sb, nil // finished by another run meanwhile
	}
	t := s.newTeardown(ctx, actor, sb, reason, claim)
	terr := s.tearDown(ctx, ls, []*teardownRun{t}, nil)[0]
	switch {
	case terr == nil:
		t.logDone(ctx)
	case errors.Is(terr, controlplane.ErrClaimLost):
		terr = nil // another run took the sandbox over: it is that run's now
	}
	return current(terr)
}

// isForeignKeyViolation reports a claim of an id that has no sandbox row.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
