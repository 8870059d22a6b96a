package cleanup

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// What cleanup consumes, by concern. The control plane's part is controlplane.Manager's
// (ControlPlane); the resources' part is provision.Provisioner's (Resources). Redis keys are
// cleanup's own work (redis.go), over the layout package keys defines.

// Candidates finds the sandboxes due for teardown and re-reads them once claimed.
type Candidates interface {
	TeardownCandidates(ctx context.Context, now, stuckBefore time.Time, limit int) ([]controlplane.TeardownCandidate, error)
	TeardownDue(ctx context.Context, id string, now, stuckBefore time.Time) (*sandbox.Sandbox, controlplane.TeardownReason, error)
	Get(ctx context.Context, id string) (*sandbox.Sandbox, error)
}

// TeardownWrites are a teardown's control-plane writes, each fenced by its claim but the
// destroy request that precedes the claim, and the one read its first step needs.
type TeardownWrites interface {
	RequestDestroy(ctx context.Context, actor, id string) (*sandbox.Sandbox, bool, error)
	TransitionClaimed(ctx context.Context, claim *controlplane.TeardownClaim, actor string, to sandbox.Status, details map[string]any) (*sandbox.Sandbox, error)
	RemoveMappingsForTeardownClaimed(ctx context.Context, claim *controlplane.TeardownClaim, actor, reason string,
		record func(removed []string) (rec []byte, details map[string]any, err error)) ([]string, error)
	SaveTeardownClaimed(ctx context.Context, claim *controlplane.TeardownClaim, actor string, record []byte, action string, details map[string]any) error
	RecordTeardownFailureClaimed(ctx context.Context, claim *controlplane.TeardownClaim, actor string, record []byte, reason string, details map[string]any) (int, error)
	StatusBeforeDestroying(ctx context.Context, id string) (from sandbox.Status, ok bool, err error)
}

// Claims are the leases on teardowns (the fence of their writes).
type Claims interface {
	ClaimTeardown(ctx context.Context, id, holder string, lease time.Duration) (*controlplane.TeardownClaim, error)
	RenewTeardownClaims(ctx context.Context, claims []*controlplane.TeardownClaim, lease time.Duration) ([]*controlplane.TeardownClaim, error)
	TeardownClaimCurrent(ctx context.Context, claim *controlplane.TeardownClaim) (bool, error)
	ReleaseTeardownClaim(ctx context.Context, claim *controlplane.TeardownClaim) error
}

// RoutePublications publish route changes: those waiting in the control plane, or those of
// given guilds together with every change waiting.
type RoutePublications interface {
	PublishRouteChanges(ctx context.Context) (int, error)
	PublishRoutes(ctx context.Context, guilds []string) (published int, existed map[string]bool, err error)
}

// ExpiryWarnings are the marks that make each expiry warning go out once.
type ExpiryWarnings interface {
	ExpiringUnwarned(ctx context.Context, now, until time.Time, limit int) ([]*sandbox.Sandbox, error)
	ClaimExpiryWarning(ctx context.Context, id string, now, until time.Time) (*sandbox.Sandbox, bool, error)
	ReleaseExpiryWarning(ctx context.Context, id string, claimedAt time.Time) error
}

// OrphanBookkeeping is what orphan reconciliation reads and writes of the control plane:
// who owns what, first sightings of what nobody owns, and stale mappings.
type OrphanBookkeeping interface {
	SandboxStates(ctx context.Context, ids []string) (map[string]controlplane.SandboxState, error)
	StaleMappings(ctx context.Context) ([]controlplane.StaleMapping, error)
	RecordOrphanSightings(ctx context.Context, seen []controlplane.OrphanResource, now time.Time) (map[controlplane.OrphanResource]time.Time, error)
	OrphanFirstSeen(ctx context.Context, resources []controlplane.OrphanResource) (map[controlplane.OrphanResource]time.Time, error)
	RemoveOrphanMapping(ctx context.Context, actor, guildID, sandboxID string, details map[string]any) (bool, error)
}

// Auditor appends audit entries of changes made outside the control plane.
type Auditor interface {
	Audit(ctx context.Context, actor, action, sandboxID string, details map[string]any) error
}

// Gauges reads the numbers a run reports.
type Gauges interface {
	Stats(ctx context.Context) (controlplane.Stats, error)
}

// ControlPlane is all cleanup asks of the control plane (controlplane.Manager).
type ControlPlane interface {
	Candidates
	TeardownWrites
	Claims
	RoutePublications
	ExpiryWarnings
	OrphanBookkeeping
	Auditor
	Gauges
}

// deferring is a control plane whose writes can leave their route changes waiting for one
// publication per batch (controlplane.Manager.Deferred).
type deferring interface {
	Deferred() *controlplane.Manager
}

// The Manager must keep offering its deferred view: without it every teardown write would
// publish its own route changes (correct, but a publication per write, not per batch).
var _ deferring = (*controlplane.Manager)(nil)

// TeardownResources drops what a sandbox owns outside the control plane, for the teardown.
type TeardownResources interface {
	DeleteRedisUsers(ctx context.Context, ids []string) (map[string]provision.RedisUserResult, error)
	Drop(ctx context.Context, id string, lockTimeout time.Duration) (provision.DropResult, error)
}

// OrphanResources lists the objects named like a sandbox's and drops those orphaned.
type OrphanResources interface {
	SandboxSchemas(ctx context.Context) ([]string, error)
	SandboxRoles(ctx context.Context) ([]string, error)
	SandboxRedisUsers(ctx context.Context) ([]string, error)
	RedisUserName(id string) string
	DropSchema(ctx context.Context, id string, lockTimeout time.Duration) (provision.DropResult, error)
	DropRole(ctx context.Context, id string, lockTimeout time.Duration) (provision.DropResult, error)
	DeleteRedisUsers(ctx context.Context, ids []string) (map[string]provision.RedisUserResult, error)
	RefreshRedisUserRules(ctx context.Context, ids []string) (int, error)
	QuietRoleLogs(ctx context.Context, ids []string) (int, error)
	HandOverTables(ctx context.Context, ids []string, lockTimeout time.Duration) (int, error)
}

// SessionResources ends what a sandbox's sessions hold of the shared database and Redis.
type SessionResources interface {
	EndLongTransactions(ctx context.Context, maxAge time.Duration) ([]provision.EndedSession, error)
	SwitchOffCrowdingRedisUsers(ctx context.Context, limit int) ([]provision.CrowdingUser, error)
	SwitchOffRedisUser(ctx context.Context, id string) (int, error)
	RedisUserStateOf(ctx context.Context, id string) (provision.RedisUserState, error)
	SwitchOffOversizedRoles(ctx context.Context, limit int64, lockTimeout time.Duration) (provision.OversizedRoles, error)
}

// Resources is all cleanup asks of the per-sandbox resources (provision.Provisioner), whose
// every statement passes provision's one set of checks.
type Resources interface {
	TeardownResources
	OrphanResources
	SessionResources
}

// DefaultActor is the audit actor of scheduled runs.
const DefaultActor = "cleanup"

// Options configures a Service. Manager, Resources and Redis are required (WorkerRedis is
// not: nil means Redis); zero durations and counts take the defaults of config.go.
type Options struct {
	// Manager is the control plane. When it can defer its writes' route publications
	// (controlplane.Manager.Deferred), the teardown's writes go through that, and a batch's
	// route changes are published at once (engine.go).
	Manager ControlPlane
	// Resources are the sandboxes' objects outside the control plane (provision.Provisioner).
	Resources Resources
	// Redis is the control plane's (the route cache); WorkerRedis the sandboxes' namespaces
	// and usage counters when they have a server of their own (WORKER_REDIS_ADDR; nil: Redis).
	Redis       redis.UniversalClient
	WorkerRedis redis.UniversalClient
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
	// connections for the run not to queue.
	Concurrency int
	// ScanCount is the COUNT hint of every SCAN.
	ScanCount int64
	// BatchLimit caps the candidates one run considers; the rest wait for the next run.
	BatchLimit int
	// ClaimLease is how long a claim on a sandbox's teardown lasts without renewal
	// (config.DefaultClaimLease); a run renews its claims every third of it.
	ClaimLease time.Duration
	// MaxTransaction is how long a sandbox's session may keep a transaction open before a
	// scheduled run ends it (DefaultMaxTransaction).
	MaxTransaction time.Duration
	// RedisMemoryLimit is the memory, in bytes, a sandbox's keys may hold before a scheduled
	// run switches off its Redis user (sandbox.RedisMemoryLimit); tests set less.
	RedisMemoryLimit int64
	// SchemaSizeLimit is the size, in bytes, a sandbox's schema may take before a scheduled
	// run takes its role's password away (sandbox.SchemaSizeLimit); tests set less.
	SchemaSizeLimit int64
}

// Service tears sandboxes down, warns owners before expiry and reconciles orphans.
type Service struct {
	candidates Candidates
	// writes go through the Manager's Deferred view when it has one: a teardown's writes leave
	// their route changes for its cache step, which publishes those of the whole batch at once
	// (engine.go).
	writes      TeardownWrites
	claims      Claims
	routes      RoutePublications
	expiry      ExpiryWarnings
	bookkeeping OrphanBookkeeping
	auditor     Auditor
	gauges      Gauges
	resources   Resources
	// rdb holds the route cache; sandboxRedis the namespaces and usage counters (rdb itself
	// unless the sandboxes have a Redis of their own).
	rdb          redis.UniversalClient
	sandboxRedis redis.UniversalClient
	publisher    Publisher
	log          *slog.Logger
	clock        func() time.Time
	actor        string

	stuckAfter  time.Duration
	grace       time.Duration
	margin      time.Duration
	warnWindow  time.Duration
	lockTimeout time.Duration
	concurrency int
	scanCount   int64
	batchLimit  int
	claimLease  time.Duration
	maxXact     time.Duration
	maxMemory   int64
	maxSchema   int64

	// inject, set only by tests, fails the teardown at a chosen point (see fault).
	inject func(ctx context.Context, point string, step Step, sandboxID string) error
}

// New returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Manager == nil || opts.Resources == nil || opts.Redis == nil {
		return nil, errors.New("cleanup: Manager, Resources and Redis are required")
	}
	cp := opts.Manager
	var writes TeardownWrites = cp
	if d, ok := cp.(deferring); ok {
		writes = d.Deferred()
	}
	s := &Service{
		candidates:   cp,
		writes:       writes,
		claims:       cp,
		routes:       cp,
		expiry:       cp,
		bookkeeping:  cp,
		auditor:      cp,
		gauges:       cp,
		resources:    opts.Resources,
		rdb:          opts.Redis,
		sandboxRedis: cmp.Or[redis.UniversalClient](opts.WorkerRedis, opts.Redis),
		publisher:    opts.Publisher,
		log:          opts.Logger,
		clock:        opts.Now,
		actor:        opts.Actor,
		stuckAfter:   orDefault(opts.StuckCreatingAfter, config.DefaultStuckCreatingAfter),
		grace:        orDefault(opts.OrphanGrace, config.DefaultOrphanGrace),
		margin:       orDefault(opts.DeadlineMargin, DefaultDeadlineMargin),
		warnWindow:   orDefault(opts.ExpiryWarningWindow, DefaultExpiryWarningWindow),
		lockTimeout:  orDefault(opts.DropLockTimeout, config.DefaultDropLockTimeout),
		concurrency:  orDefault(opts.Concurrency, DefaultConcurrency),
		scanCount:    orDefault(opts.ScanCount, DefaultScanCount),
		batchLimit:   orDefault(opts.BatchLimit, DefaultBatchLimit),
		claimLease:   orDefault(opts.ClaimLease, config.DefaultClaimLease),
		maxXact:      orDefault(opts.MaxTransaction, DefaultMaxTransaction),
		maxMemory:    orDefault(opts.RedisMemoryLimit, sandbox.RedisMemoryLimit),
		maxSchema:    orDefault(opts.SchemaSizeLimit, sandbox.SchemaSizeLimit),
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
				l.s.log.WarnContext(ctx, "teardown claims not renewed; retrying", logkey.Error, err)
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
	lostTCs, err := l.s.claims.RenewTeardownClaims(ctx, tcs, l.s.claimLease)
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
	tc, err := l.s.claims.ClaimTeardown(ctx, id, l.holder, l.s.claimLease)
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
	if err := l.s.claims.ReleaseTeardownClaim(context.WithoutCancel(ctx), h.TeardownClaim); err != nil {
		l.s.log.WarnContext(ctx, "teardown claim not released; its lease expires", logkey.Sandbox, h.SandboxID, logkey.Error, err)
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
		if _, err := s.routes.PublishRouteChanges(context.WithoutCancel(ctx)); err != nil {
			s.log.WarnContext(ctx, "publishing route changes failed; routers publish them within a second", logkey.Error, err)
		}
	}()
	if requested.Status == sandbox.StatusDestroyed {
		return requested, nil
	}
	current := func(err error) (*sandbox.Sandbox, error) {
		if sb, gerr := s.candidates.Get(context.WithoutCancel(ctx), sandboxID); gerr == nil {
			return sb, err
		}
		return requested, err
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
	sb, reason, err := s.candidates.TeardownDue(ctx, sandboxID, now, now.Add(-s.stuckAfter))
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
