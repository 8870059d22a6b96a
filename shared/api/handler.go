package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Sandboxes is what the API needs of the control plane (controlplane.Manager).
type Sandboxes interface {
	Create(ctx context.Context, actor string, in controlplane.CreateInput) (*sandbox.Sandbox, error)
	Get(ctx context.Context, id string) (*sandbox.Sandbox, error)
	GetByName(ctx context.Context, name string) (*sandbox.Sandbox, error)
	List(ctx context.Context, f controlplane.ListFilter) (controlplane.ListPage, error)
	ExtendExpiry(ctx context.Context, actor, id string, by time.Duration) (controlplane.Extension, error)
	WhileRunning(ctx context.Context, id, what string, fn func() error) error
	RequestDestroy(ctx context.Context, actor, id string) (*sandbox.Sandbox, bool, error)
	AddGuild(ctx context.Context, actor, id, guildID string, admin bool) error
	RemoveGuild(ctx context.Context, actor, id, guildID string) error
	LookupRoutes(ctx context.Context, guildIDs []string) (map[string]sandbox.Route, error)
	Parked(ctx context.Context, guildID string) (controlplane.ParkedGuild, error)
	ListParked(ctx context.Context, owner string) ([]controlplane.ParkedGuild, error)
	ReleaseGuild(ctx context.Context, actor, guildID, sandboxID string) error
	// Test guilds (testguilds.go): the only guilds a sandbox may map.
	TestGuilds(ctx context.Context) ([]controlplane.TestGuild, error)
	RegisterTestGuild(ctx context.Context, actor, guildID, note string) (controlplane.TestGuild, bool, error)
	UnregisterTestGuild(ctx context.Context, actor, guildID string) (controlplane.TestGuild, error)
	// Protected guilds (protected.go): production guilds no sandbox may map.
	ProtectedGuilds(ctx context.Context) ([]controlplane.ProtectedGuild, error)
	ProtectGuild(ctx context.Context, actor, guildID, reason string) (controlplane.ProtectedGuild, bool, error)
	UnprotectGuild(ctx context.Context, actor, guildID string) (controlplane.ProtectedGuild, error)
	Audit(ctx context.Context, actor, action, sandboxID string, details map[string]any) error
	Limits() sandbox.Limits
	// Shares (shares.go): who besides its owner may act on a sandbox, and with which role.
	ShareSandbox(ctx context.Context, actor, id, principal string, role sandbox.ShareRole) (controlplane.ShareChange, error)
	UnshareSandbox(ctx context.Context, actor, id, principal string) (controlplane.Share, error)
	HasConnected(ctx context.Context, id, principal string) (bool, error)
	Shares(ctx context.Context, id string) ([]controlplane.Share, error)
	ShareRole(ctx context.Context, id, principal string) (sandbox.ShareRole, error)
	ShareRoles(ctx context.Context, principal string, ids []string) (map[string]sandbox.ShareRole, error)
	// Templates (templates.go): the registry of the templates sandboxes are created from.
	Templates(ctx context.Context, includeRetired bool) ([]sandbox.Template, error)
	AddTemplate(ctx context.Context, actor string, in controlplane.TemplateInput) (sandbox.Template, error)
	UpdateTemplate(ctx context.Context, actor, name string, in controlplane.TemplateUpdate) (sandbox.Template, error)
	RetireTemplate(ctx context.Context, actor, name string) (sandbox.Template, bool, error)
}

// Resources is what the API needs of the per-sandbox resources (provision.Provisioner).
type Resources interface {
	RotateCredentials(ctx context.Context, id string, validUntil time.Time, hold provision.Hold) (provision.Credentials, error)
	EndSessions(ctx context.Context, id string) (provision.SessionsEnded, error)
	Inspect(ctx context.Context, id string) (provision.Resources, error)
	InspectStream(ctx context.Context, id string) (provision.Stream, error)
	ReadStream(ctx context.Context, id, after string, count, budget int) (provision.StreamPage, error)
	RewindGroup(ctx context.Context, id string, to provision.RewindTarget) (provision.Rewind, error)
	// Consumer-group reads (consume.go).
	ReadGroup(ctx context.Context, id string, a provision.GroupReadArgs) (provision.GroupPage, error)
	ClaimGroup(ctx context.Context, id string, a provision.GroupClaimArgs) (provision.GroupPage, error)
	AckGroup(ctx context.Context, id, group string, ids []string) (int64, error)
	RedisUserStateOf(ctx context.Context, id string) (provision.RedisUserState, error)
	RedisUserName(id string) string
	RedisAccess() sandbox.RedisAccess
	// Templates and usage (templates.go, usage.go).
	TemplateSchema() string
	CheckTemplateSource(ctx context.Context, schema string) (provision.TemplateSource, error)
	RedisUsage(ctx context.Context, ids []string) (map[string]provision.RedisUsage, error)
	RelationSizes(ctx context.Context, ids []string) (map[string]int64, error)
}

// RouteCache is what the API reads of the Redis route cache (routecache.Cache).
type RouteCache interface {
	Get(ctx context.Context, guild string) (r sandbox.Route, ttl time.Duration, ok bool, err error)
	GetMany(ctx context.Context, guilds []string) (map[string]sandbox.Route, error)
}

// Teardown runs the teardown (docs/architecture.md, "Cleanup") on one sandbox, the same the
// scheduled cleanup
// runs, and returns the sandbox as it left it.
type Teardown interface {
	Destroy(ctx context.Context, actor, sandboxID string) (*sandbox.Sandbox, error)
}

// CleanupAdmin is the cleanup service as the admin routes use it, answering in their wire
// types. RunNow records the run's metrics in rec, the invocation's Recorder, which the API
// flushes with its own metrics.
type CleanupAdmin interface {
	RunNow(ctx context.Context, rec *metrics.Recorder) (apiwire.RunReport, error)
	Orphans(ctx context.Context, remove bool) (apiwire.OrphansResponse, error)
}

// Deps are the services and stores the handler works with. Teardown and Cleanup are
// optional: without a Teardown, destroy leaves the sandbox destroying for the scheduled
// cleanup; without Cleanup, the admin routes answer unavailable.
type Deps struct {
	Sandboxes Sandboxes
	Resources Resources
	Routes    RouteCache
	Teardown  Teardown
	Cleanup   CleanupAdmin
	// DB is the control plane's database; WorkerDB the sandboxes' when they live apart
	// (config.WorkerDatabase; nil: DB). connect hands out WorkerDB's address, and the service
	// health check asks both.
	DB       *pgxpool.Pool
	WorkerDB *pgxpool.Pool
	// Redis is the control plane's (the route cache); WorkerRedis the sandboxes' when they
	// have a server of their own (WORKER_REDIS_ADDR; nil: Redis). The service health check
	// asks both.
	Redis       redis.UniversalClient
	WorkerRedis redis.UniversalClient
	// LeftBehind lists the sandbox users on Redis (the route cache's server) when the
	// sandboxes have one of their own: users of sandboxes made before WORKER_REDIS_ADDR was
	// set, whose credentials still open the route cache's server. The service health check
	// warns of them. Nil: not checked.
	LeftBehind RedisUsers
	Logger     *slog.Logger
	Now        func() time.Time
}

// RedisUsers lists the sandboxes' Redis users of one server (provision.Provisioner).
type RedisUsers interface {
	SandboxRedisUsers(ctx context.Context) ([]string, error)
}

// Handler is the API's http.Handler.
type Handler struct {
	mux      *http.ServeMux
	patterns map[string]bool
	deps     Deps
	admins   principals
	// local are the principals of API_LOCAL_TOKENS, which a share may name (shares.go).
	local   map[string]bool
	connect connectTarget
	log     *slog.Logger
	now     func() time.Time
	// idleAfter is SANDBOX_IDLE_AFTER (usage.go).
	idleAfter time.Duration
}

// New builds the handler from the configuration and its dependencies.
func New(cfg Config, deps Deps) (*Handler, error) {
	if deps.Sandboxes == nil || deps.Resources == nil || deps.Routes == nil || deps.DB == nil || deps.Redis == nil {
		return nil, errors.New("api: Sandboxes, Resources, Routes, DB and Redis are required")
	}
	if deps.WorkerDB == nil {
		deps.WorkerDB = deps.DB
	}
	if deps.WorkerRedis == nil {
		deps.WorkerRedis = deps.Redis
	}
	target, err := connectTargetOf(cfg, deps.WorkerDB)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		mux:      http.NewServeMux(),
		patterns: map[string]bool{},
		deps:     deps,
		admins:   newPrincipals(cfg),
		local:    localPrincipals(cfg),
		connect:  target,
		log:      deps.Logger,
		now:      deps.Now,
	}
	h.idleAfter = cfg.IdleAfter
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if err := h.routes(); err != nil {
		return nil, err
	}
	return h, nil
}

// route is one entry of the route table; docs/api.md lists the same. Who may use it is
// routeAccess's.
type route struct {
	pattern string
	serve   func(w http.ResponseWriter, r *http.Request, caller caller) error
}

func (h *Handler) routes() error {
	for _, rt := range []route{
		{pattern: "GET /health", serve: h.serviceHealth},
		{pattern: "POST /v1/sandboxes", serve: h.create},
		{pattern: "GET /v1/sandboxes", serve: h.list},
		{pattern: "GET /v1/sandboxes/{name}", serve: h.get},
		{pattern: "POST /v1/sandboxes/{name}/extend", serve: h.extend},
		{pattern: "DELETE /v1/sandboxes/{name}", serve: h.destroy},
		{pattern: "PUT /v1/sandboxes/{name}/guilds/{guild_id}", serve: h.addGuild},
		{pattern: "DELETE /v1/sandboxes/{name}/guilds/{guild_id}", serve: h.removeGuild},
		{pattern: "POST /v1/sandboxes/{name}/connect", serve: h.connectSandbox},
		{pattern: "GET /v1/sandboxes/{name}/health", serve: h.sandboxHealth},
		{pattern: "GET /v1/sandboxes/{name}/events", serve: h.events},
		{pattern: "POST /v1/sandboxes/{name}/events/read", serve: h.consumeRead},   // consume.go
		{pattern: "POST /v1/sandboxes/{name}/events/claim", serve: h.consumeClaim}, // consume.go
		{pattern: "POST /v1/sandboxes/{name}/events/ack", serve: h.consumeAck},     // consume.go
		{pattern: "GET /v1/routes/{guild_id}", serve: h.explainRoute},
		{pattern: "GET /v1/guilds/parked", serve: h.listParked},
		{pattern: "POST /v1/guilds/{guild_id}/release", serve: h.releaseGuild},
		{pattern: "GET /v1/test-guilds", serve: h.listTestGuilds},                          // testguilds.go
		{pattern: "PUT /v1/admin/test-guilds/{guild_id}", serve: h.registerTestGuild},      // testguilds.go
		{pattern: "DELETE /v1/admin/test-guilds/{guild_id}", serve: h.unregisterTestGuild}, // testguilds.go
		{pattern: "GET /v1/admin/protected-guilds", serve: h.listProtectedGuilds},          // protected.go
		{pattern: "PUT /v1/admin/protected-guilds/{guild_id}", serve: h.protectGuild},      // protected.go
		{pattern: "DELETE /v1/admin/protected-guilds/{guild_id}", serve: h.unprotectGuild}, // protected.go
		{pattern: "POST /v1/admin/cleanup", serve: h.adminCleanup},
		{pattern: "GET /v1/admin/orphans", serve: h.adminOrphans},
		{pattern: "GET /v1/sandboxes/{name}/shares", serve: h.listShares},
		{pattern: "POST /v1/sandboxes/{name}/shares", serve: h.share},
		{pattern: "DELETE /v1/sandboxes/{name}/shares", serve: h.unshare},
		{pattern: "POST /v1/sandboxes/{name}/events/rewind", serve: h.rewind},
		{pattern: "GET /v1/templates", serve: h.listTemplates},
		{pattern: "POST /v1/admin/templates", serve: h.addTemplate},
		{pattern: "PATCH /v1/admin/templates/{template}", serve: h.updateTemplate},
		{pattern: "DELETE /v1/admin/templates/{template}", serve: h.retireTemplate},
	} {
		h.patterns[rt.pattern] = true
		need := routeAccess[rt.pattern]
		h.mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			c := h.callerOf(r.Context())
			c.need = need
			if need == accessAdmin && !c.admin {
				h.writeError(w, r, sandbox.Errorf(sandbox.CodeForbidden, "this route is for admins only"))
				return
			}
			if err := rt.serve(w, r, c); err != nil {
				h.writeError(w, r, err)
			}
		})
	}
	return checkRouteAccess(slices.Collect(maps.Keys(h.patterns)), routeAccess)
}

// routeAccess is the least role of every route (authz.go), the one table of who may do what:
// docs/api.md's route table shows the same, and TestDocumentedRoutesMatchTheHandler keeps the
// doc, this table and the mux identical. A sandbox route ({name}) declares viewer, developer
// or owner, enforced once its sandbox is known (address); admin routes are checked before
// they run; "any caller" routes narrow what they answer themselves.
var routeAccess = map[string]access{
	"GET /health":                                   accessAnyCaller,
	"POST /v1/sandboxes":                            accessAnyCaller,
	"GET /v1/sandboxes":                             accessAnyCaller,
	"GET /v1/sandboxes/{name}":                      accessViewer,
	"POST /v1/sandboxes/{name}/extend":              accessDeveloper,
	"DELETE /v1/sandboxes/{name}":                   accessOwner,
	"PUT /v1/sandboxes/{name}/guilds/{guild_id}":    accessDeveloper,
	"DELETE /v1/sandboxes/{name}/guilds/{guild_id}": accessDeveloper,
	"POST /v1/sandboxes/{name}/connect":             accessDeveloper,
	"GET /v1/sandboxes/{name}/health":               accessViewer,
	"GET /v1/sandboxes/{name}/events":               accessViewer,
	"GET /v1/routes/{guild_id}":                     accessAnyCaller,
	"GET /v1/guilds/parked":                         accessAnyCaller,
	"POST /v1/guilds/{guild_id}/release":            accessAnyCaller,
	"GET /v1/test-guilds":                           accessAnyCaller,
	"PUT /v1/admin/test-guilds/{guild_id}":          accessAdmin,
	"DELETE /v1/admin/test-guilds/{guild_id}":       accessAdmin,
	"GET /v1/admin/protected-guilds":                accessAdmin,
	"PUT /v1/admin/protected-guilds/{guild_id}":     accessAdmin,
	"DELETE /v1/admin/protected-guilds/{guild_id}":  accessAdmin,
	"POST /v1/admin/cleanup":                        accessAdmin,
	"GET /v1/admin/orphans":                         accessAdmin,
	"GET /v1/sandboxes/{name}/shares":               accessOwner,
	"POST /v1/sandboxes/{name}/shares":              accessOwner,
	"DELETE /v1/sandboxes/{name}/shares":            accessOwner,
	"POST /v1/sandboxes/{name}/events/rewind":       accessDeveloper,
	"POST /v1/sandboxes/{name}/events/read":         accessDeveloper,
	"POST /v1/sandboxes/{name}/events/claim":        accessDeveloper,
	"POST /v1/sandboxes/{name}/events/ack":          accessDeveloper,
	"GET /v1/templates":                             accessAnyCaller,
	"POST /v1/admin/templates":                      accessAdmin,
	"PATCH /v1/admin/templates/{template}":          accessAdmin,
	"DELETE /v1/admin/templates/{template}":         accessAdmin,
}

// Routes returns the route patterns the handler serves ("METHOD /path"), sorted.
func (h *Handler) Routes() []string {
	out := make([]string, 0, len(h.patterns))
	for p := range h.patterns {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// unmatchedRoute is the Route dimension of requests no route matched.
const unmatchedRoute = "unmatched"

// ServeHTTP authenticates, routes, bounds the body, recovers panics into a problem, and
// records ApiRequests and ApiLatency per route pattern.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if requestID(r.Context()) == "" {
		r = r.WithContext(lambdakit.NewLocalContext(r.Context()))
	}
	w.Header().Set("X-Request-Id", requestID(r.Context()))
	_, pattern := h.mux.Handler(r)
	routeDim := pattern
	if !h.patterns[pattern] {
		routeDim = unmatchedRoute
	}
	defer func() {
		if p := recover(); p != nil {
			h.log.ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			h.writeError(w, r, fmt.Errorf("panic: %v", p))
		}
		rec := recorderFrom(r.Context())
		rec.Count(metrics.ApiRequests, 1, metrics.DimRoute, routeDim)
		rec.Milliseconds(metrics.ApiLatency, time.Since(start), metrics.DimRoute, routeDim)
	}()

	if PrincipalFrom(r.Context()) == "" {
		h.writeError(w, r, sandbox.Errorf(sandbox.CodeUnauthenticated, "the request carries no caller identity"))
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	}
	if routeDim == unmatchedRoute {
		h.writeError(w, r, h.unmatched(r))
		return
	}
	h.mux.ServeHTTP(w, r)
}

// unmatched tells a wrong method on a known path (405) from an unknown path (404).
func (h *Handler) unmatched(r *http.Request) error {
	var allowed []string
	for p := range h.patterns {
		method, _, _ := strings.Cut(p, " ")
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, got := h.mux.Handler(probe); got == p {
			allowed = append(allowed, method)
		}
	}
	if len(allowed) > 0 {
		slices.Sort(allowed)
		allowed = slices.Compact(allowed)
		return &httpError{status: http.StatusMethodNotAllowed, allow: strings.Join(allowed, ", "),
			err: sandbox.Errorf(sandbox.CodeInvalidInput, "method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", "))}
	}
	return sandbox.Errorf(sandbox.CodeNotFound, "no route %s %s", r.Method, truncate(r.URL.Path, 100))
}

// caller is the authenticated principal of a request, and what the request's route needs.
type caller struct {
	principal string
	admin     bool
	// need is the route's least role (routeAccess).
	need access
	// grants are the shares the request found the caller holds (authorize).
	grants grants
}

func (h *Handler) callerOf(ctx context.Context) caller {
	p := PrincipalFrom(ctx)
	return caller{principal: p, admin: h.admins.admin(p), grants: grants{}}
}

// requestID returns the invocation's request id.
func requestID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}
