package api

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const (
	// checkTimeout bounds each health check, so one hung store cannot hang the answer.
	checkTimeout = 3 * time.Second
	// slowThreshold is the latency above which a store that answered is reported degraded.
	slowThreshold = 250 * time.Millisecond
)

// probe is one health check: it returns status and detail; runChecks times it.
type probe struct {
	name string
	run  func(ctx context.Context) (status, detail string)
}

// runChecks runs the probes concurrently, each within checkTimeout, in the given order.
func runChecks(ctx context.Context, probes []probe) []apiwire.Check {
	out := make([]apiwire.Check, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			start := time.Now()
			status, detail := p.run(cctx)
			elapsed := time.Since(start)
			if status == CheckOK && elapsed > slowThreshold {
				status = CheckWarn
				detail += fmt.Sprintf(" (slow: %s, above %s)", elapsed.Round(time.Millisecond), slowThreshold)
			}
			out[i] = apiwire.Check{Name: p.name, Status: status, LatencyMS: millis(elapsed), Detail: detail}
		})
	}
	wg.Wait()
	return out
}

// millis is a duration in milliseconds with two decimals.
func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*100) / 100
}

// unreachable is the caller-safe detail of a store error: the error's text may carry
// addresses or SQL, so it goes to the log and the check says what failed.
func (h *Handler) unreachable(ctx context.Context, what string, err error) string {
	h.log.WarnContext(ctx, "health check failed", "check", what, logkey.Error, err)
	if ctx.Err() != nil {
		return what + " did not answer within " + checkTimeout.String()
	}
	return what + " failed (see the logs for the error)"
}

// selectOne is a database's check: it answers a query.
func (h *Handler) selectOne(ctx context.Context, db *pgxpool.Pool) (string, string) {
	var one int
	if err := db.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return CheckFail, h.unreachable(ctx, "SELECT 1", err)
	}
	return CheckOK, "SELECT 1 answered"
}

// ping is a Redis server's check: it answers PING.
func (h *Handler) ping(ctx context.Context, rdb redis.UniversalClient) (string, string) {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return CheckFail, h.unreachable(ctx, "PING", err)
	}
	return CheckOK, "PING answered"
}

// leftBehind warns of sandbox users on the route cache's server while the sandboxes have a
// Redis of their own: made before the move, they still let their workers in there.
func (h *Handler) leftBehind(ctx context.Context, detail string) (string, string) {
	ids, err := h.deps.LeftBehind.SandboxRedisUsers(ctx)
	if err != nil {
		return CheckWarn, detail + "; " + h.unreachable(ctx, "ACL USERS", err)
	}
	if len(ids) > 0 {
		return CheckWarn, fmt.Sprintf("%s; %d sandbox users are on this server, made before the sandboxes had a Redis of their own (WORKER_REDIS_ADDR): their credentials still open it; delete them (runbook, RB-SB-010)", detail, len(ids))
	}
	return CheckOK, detail
}

func (h *Handler) serviceHealth(w http.ResponseWriter, r *http.Request, c caller) error {
	if _, err := decodeRequest(r, nil); err != nil {
		return err
	}
	probes := []probe{
		{name: "database", run: func(ctx context.Context) (string, string) { return h.selectOne(ctx, h.deps.DB) }},
		{name: "redis", run: func(ctx context.Context) (string, string) {
			status, detail := h.ping(ctx, h.deps.Redis)
			if status == CheckOK && h.deps.LeftBehind != nil {
				return h.leftBehind(ctx, detail)
			}
			return status, detail
		}},
	}
	if h.deps.WorkerDB != h.deps.DB {
		probes = append(probes, probe{name: "worker_database", run: func(ctx context.Context) (string, string) {
			return h.selectOne(ctx, h.deps.WorkerDB)
		}})
	}
	if h.deps.WorkerRedis != h.deps.Redis {
		probes = append(probes, probe{name: "worker_redis", run: func(ctx context.Context) (string, string) {
			return h.ping(ctx, h.deps.WorkerRedis)
		}})
	}
	checks := runChecks(r.Context(), probes)
	out := apiwire.ServiceHealth{Overall: overall(checks), CheckedAt: h.now().UTC(), Checks: checks}
	status := http.StatusOK
	if out.Overall == Unhealthy {
		status = http.StatusServiceUnavailable
	}
	writeUncached(w, status, out)
	return nil
}

func (h *Handler) sandboxHealth(w http.ResponseWriter, r *http.Request, c caller) error {
	sb, err := h.addressed(r, c, nil, nil)
	if err != nil {
		return err
	}
	now := h.now()
	checks := runChecks(r.Context(), []probe{
		{name: "status", run: func(context.Context) (string, string) { return statusCheck(sb, now) }},
		{name: "database", run: func(ctx context.Context) (string, string) { return h.databaseCheck(ctx, sb) }},
		{name: "redis", run: func(ctx context.Context) (string, string) { return h.redisCheck(ctx, sb) }},
		{name: "routes", run: func(ctx context.Context) (string, string) { return h.routesCheck(ctx, sb) }},
	})
	writeUncached(w, http.StatusOK, apiwire.SandboxHealth{
		SandboxID: sb.ID, Name: sb.Name, Status: sb.DisplayStatus(now),
		Overall: overall(checks), CheckedAt: now.UTC(), Checks: checks,
	})
	return nil
}

func statusCheck(sb *sandbox.Sandbox, now time.Time) (string, string) {
	status := sb.DisplayStatus(now)
	if status != string(sandbox.StatusRunning) {
		return CheckFail, status + ": only a running sandbox receives events"
	}
	return CheckOK, fmt.Sprintf("running, %s left", sandbox.FormatDuration(sandbox.RoundDuration(sb.TimeLeft(now))))
}

// databaseCheck proves the schema and role exist, the role may use its schema and owns its
// tables. It reads the catalogs only (provision.Inspect): a query over a sandbox's relation
// would run, with the API's rights, whatever view, rule, policy or function the sandbox's
// role put behind it. The schema's size is its relations' now and its catalog rows' as the
// last cleanup run counted them (the usage hash): read live, those took a pass over some
// thirty catalogs, which made the check slow under load.
func (h *Handler) databaseCheck(ctx context.Context, sb *sandbox.Sandbox) (string, string) {
	res, err := h.deps.Resources.Inspect(ctx, sb.ID)
	if err != nil {
		return CheckFail, h.unreachable(ctx, "inspecting the schema", err)
	}
	var missing []string
	if !res.SchemaExists {
		missing = append(missing, "schema "+sb.SchemaName)
	}
	if !res.RoleExists {
		missing = append(missing, "role "+sb.DBRole)
	}
	if len(missing) > 0 {
		return CheckFail, strings.Join(missing, " and ") + " missing"
	}
	if !res.RoleUsage {
		return CheckFail, fmt.Sprintf("role %s may not use schema %s", sb.DBRole, sb.SchemaName)
	}
	bytes := res.Bytes
	if u, err := h.deps.Resources.RedisUsage(ctx, []string{sb.ID}); err == nil && u[sb.ID].Catalog != nil {
		bytes += *u[sb.ID].Catalog
	}
	if bytes > sandbox.SchemaSizeLimit {
		return CheckFail, fmt.Sprintf("schema %s holds %d bytes, more than the %d MiB a sandbox may: the cleanup takes role %s's password away and ends its sessions at every run until it holds less; sandbox connect sets a new password, then truncate or drop tables (a DELETE leaves a table's size until VACUUM FULL) and drop what else holds bytes: sequences, function bodies, views, comments, the role's own settings (ALTER ROLE CURRENT_USER RESET ALL)",
			sb.SchemaName, bytes, sandbox.SchemaSizeLimit>>20, sb.DBRole)
	}
	if len(res.NotHandedOver) > 0 {
		return CheckWarn, fmt.Sprintf("role %s does not own %s yet, as a sandbox made before the tables were handed to their roles: the next cleanup run hands them over",
			sb.DBRole, strings.Join(res.NotHandedOver, ", "))
	}
	return CheckOK, fmt.Sprintf("schema %s present, %d tables, %d bytes, role %s may use them",
		sb.SchemaName, len(res.Tables), bytes, sb.DBRole)
}

// redisCheck reads the sandbox's event stream and its consumer group (provision.InspectStream:
// its error is XINFO GROUPS's once the stream answered), then its Redis user.
func (h *Handler) redisCheck(ctx context.Context, sb *sandbox.Sandbox) (string, string) {
	st, err := h.deps.Resources.InspectStream(ctx, sb.ID)
	stream := st.Key
	switch {
	case err != nil && st.Exists:
		return CheckFail, h.unreachable(ctx, "XINFO GROUPS "+stream, err)
	case err != nil:
		return CheckFail, h.unreachable(ctx, "XINFO STREAM "+stream, err)
	case !st.Exists:
		return CheckFail, "stream " + stream + " missing"
	case st.Unusable != "":
		return CheckFail, fmt.Sprintf("stream %s takes no event: %s; the router drops this sandbox's events until its code mends it (DEL %s, then XGROUP CREATE %s %s 0 MKSTREAM)",
			stream, st.Unusable, stream, stream, keys.EventsGroup)
	}
	detail := fmt.Sprintf("stream %s: length %d, groups %d", stream, st.Length, st.Groups)
	if !st.EventsGroup {
		return CheckWarn, fmt.Sprintf("%s; consumer group %s missing: workers cannot read with XREADGROUP", detail, keys.EventsGroup)
	}
	detail = fmt.Sprintf("%s, group %s pending %d", detail, keys.EventsGroup, st.Pending)
	if h.deps.Resources.RedisAccess() == sandbox.RedisAccessShared {
		return CheckWarn, detail + "; " + sandbox.SharedRedisWarning
	}
	user := h.deps.Resources.RedisUserName(sb.ID)
	state, err := h.deps.Resources.RedisUserStateOf(ctx, sb.ID)
	switch {
	case err != nil:
		return CheckFail, h.unreachable(ctx, "ACL GETUSER "+user, err)
	case state == provision.RedisUserMissing:
		return CheckFail, fmt.Sprintf("%s; Redis user %s missing: workers cannot authenticate", detail, user)
	case state == provision.RedisUserOff:
		return CheckFail, fmt.Sprintf("%s; Redis user %s switched off by the cleanup: its workers held more than %d connections on one node, or its keys more than %d MiB (sandbox status shows their memory), which would keep other clients out of the server or fill it; sandbox connect switches it on again, with new passwords",
			detail, user, sandbox.RedisConnectionLimit, sandbox.RedisMemoryLimit>>20)
	}
	return CheckOK, fmt.Sprintf("%s, user %s limited to %s*", detail, user, keys.Namespace(sb.ID))
}

// routesCheck proves every mapped guild routes here, in the database and in the cache.
func (h *Handler) routesCheck(ctx context.Context, sb *sandbox.Sandbox) (string, string) {
	if len(sb.Guilds) == 0 {
		return CheckOK, "no guilds mapped: no events arrive until one is"
	}
	db, err := h.deps.Sandboxes.LookupRoutes(ctx, sb.Guilds)
	if err != nil {
		return CheckFail, h.unreachable(ctx, "looking up routes", err)
	}
	var problems []string
	for _, g := range sb.Guilds {
		r := db[g]
		switch {
		case r.SandboxID != sb.ID:
			problems = append(problems, fmt.Sprintf("guild %s is not mapped here", g))
		case r.Destination(h.now()) != DestinationSandbox:
			problems = append(problems, fmt.Sprintf("events of guild %s are %s (sandbox %s)", g, r.Destination(h.now()), sb.DisplayStatus(h.now())))
		}
	}
	if len(problems) > 0 {
		return CheckFail, strings.Join(problems, "; ")
	}
	cached, err := h.deps.Routes.GetMany(ctx, sb.Guilds)
	if err != nil {
		h.log.WarnContext(ctx, "route cache read failed", logkey.Error, err)
		return CheckWarn, fmt.Sprintf("mapped guilds routing to this sandbox in the database: %d; route cache unreadable (the router falls back to the database)", len(sb.Guilds))
	}
	var stale []string
	for _, g := range sb.Guilds {
		c, ok := cached[g]
		if r := db[g]; ok && routecache.Encode(c) != routecache.Encode(r) {
			stale = append(stale, fmt.Sprintf("guild %s cached as %s", g, c.Destination(h.now())))
		}
	}
	detail := fmt.Sprintf("mapped guilds routing to this sandbox: %d (database: %d, cache: %d cached, %d stale)",
		len(sb.Guilds), len(sb.Guilds), len(cached), len(stale))
	if len(stale) > 0 {
		return CheckWarn, detail + ": " + strings.Join(stale, "; ")
	}
	return CheckOK, detail
}
