package cleanup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// ResourceType is a kind of resource orphan reconciliation looks at. The values are the
// ResourceType dimension of the OrphanedResources metric, and the orphans' type in the
// reports (apiwire).
type ResourceType = apiwire.ResourceType

// The resource types, in report order.
const (
	ResourceSchema     ResourceType = "schema"
	ResourceRole       ResourceType = "role"
	ResourceRedis      ResourceType = "redis"
	ResourceRedisUser  ResourceType = "redis_user"
	ResourceRedisUsage ResourceType = "redis_usage" // a usage hash (keys.Usage), outside the namespace
	ResourceMapping    ResourceType = "mapping"
	ResourceRouteCache ResourceType = "route_cache"
)

// ResourceTypes lists every resource type in report order.
func ResourceTypes() []ResourceType {
	return []ResourceType{ResourceSchema, ResourceRole, ResourceRedis, ResourceRedisUser, ResourceRedisUsage, ResourceMapping, ResourceRouteCache}
}

// The orphan reports are the API's wire types (apiwire), like the run's.
type (
	// Orphan is a resource named like a sandbox's whose sandbox does not exist or cannot use it.
	Orphan = apiwire.Orphan
	// OrphanReport is what FindOrphans found.
	OrphanReport = apiwire.OrphanReport
	// OrphanRemoval is what RemoveOrphans did.
	OrphanRemoval = apiwire.OrphanRemoval
	// OrphanFailure is an orphan that could not be removed.
	OrphanFailure = apiwire.OrphanFailure
)

// FindOrphans reports, without touching any of them, the resources named like a sandbox's
// that no live sandbox owns: schemas and roles sb_<id> (roles only with this database's
// comment: roles are cluster-wide), Redis namespaces and usage hashes, guild mappings of
// sandboxes that are neither running nor being created, and route cache entries pointing at
// sandboxes that are gone. Resources that became orphans within the grace period are counted
// as young, not reported. It records first sightings of resources that have no sandbox row
// at all (see the package doc) and, from the same keyspace pass, each live sandbox's key
// count and memory in its usage hash (recordNamespaceUse); those are its only writes.
func (s *Service) FindOrphans(ctx context.Context) (OrphanReport, error) {
	rep, _, err := s.findOrphans(ctx, true)
	return rep, err
}

// candidate is a resource that no live sandbox owns, before the grace period applies.
type candidate struct {
	Orphan
	unowned bool // no sandbox row: aged by its first sighting
}

// findOrphans is FindOrphans; with recordSightings it also returns what the keyspace pass
// found of each live sandbox's namespace, which it records (the scheduled run then bounds
// their memory), and without it writes nothing (a dry run).
func (s *Service) findOrphans(ctx context.Context, recordSightings bool) (OrphanReport, map[string]namespaceUse, error) {
	now := s.now()
	live := map[string]namespaceUse{}
	rep := OrphanReport{CheckedAt: now, GraceSeconds: int64(s.grace / time.Second), Orphans: []Orphan{}}

	// Resources are listed before the control plane is read: a sandbox's row is committed
	// before its resources exist, so a resource seen here has its row visible below.
	namespaces, usage, routes, err := s.scanRedis(ctx)
	if err != nil {
		return rep, nil, err
	}
	redisUsers, err := s.resources.SandboxRedisUsers(ctx)
	if err != nil {
		return rep, nil, fmt.Errorf("cleanup: list sandbox Redis users: %w", err)
	}
	schemas, err := s.resources.SandboxSchemas(ctx)
	if err != nil {
		return rep, nil, fmt.Errorf("cleanup: %w", err)
	}
	roles, err := s.resources.SandboxRoles(ctx)
	if err != nil {
		return rep, nil, fmt.Errorf("cleanup: %w", err)
	}
	mappings, err := s.orphanMappings(ctx)
	if err != nil {
		return rep, nil, err
	}

	var ids []string
	for id := range namespaces {
		ids = append(ids, id)
	}
	for id := range usage {
		ids = append(ids, id)
	}
	for _, r := range routes {
		ids = append(ids, r.SandboxID)
	}
	ids = append(append(append(ids, schemas...), roles...), redisUsers...)
	states, err := s.bookkeeping.SandboxStates(ctx, ids)
	if err != nil {
		return rep, nil, fmt.Errorf("cleanup: read sandboxes: %w", err)
	}

	var cands []candidate
	add := func(o Orphan) {
		st, ok := states[o.SandboxID]
		switch {
		case !ok:
			cands = append(cands, candidate{Orphan: o, unowned: true})
		case st.Status == sandbox.StatusDestroyed:
			o.SandboxStatus, o.Since = st.Status, st.Since
			cands = append(cands, candidate{Orphan: o})
		}
	}
	for _, id := range schemas {
		add(Orphan{Type: ResourceSchema, Name: sandbox.SchemaName(id), SandboxID: id})
	}
	for _, id := range roles {
		add(Orphan{Type: ResourceRole, Name: sandbox.RoleName(id), SandboxID: id})
	}
	for id, n := range namespaces {
		add(Orphan{Type: ResourceRedis, Name: keys.Namespace(id), SandboxID: id, Keys: n.keys})
	}
	for _, id := range redisUsers {
		add(Orphan{Type: ResourceRedisUser, Name: s.resources.RedisUserName(id), SandboxID: id})
	}
	for id := range usage {
		add(Orphan{Type: ResourceRedisUsage, Name: keys.Usage(id), SandboxID: id})
	}
	if recordSightings {
		// The key counts and memory of the live sandboxes (docs/api.md, "Usage"): the pass
		// that found the orphans counted and measured every namespace's keys.
		for _, id := range ids {
			if st, ok := states[id]; ok && st.Status.Live() {
				live[id] = namespaces[id]
			}
		}
		s.recordNamespaceUse(ctx, live)
		var liveUsers []string
		for _, id := range redisUsers {
			if st, ok := states[id]; ok && st.Status.Live() {
				liveUsers = append(liveUsers, id)
			}
		}
		s.refreshRedisUserRules(ctx, liveUsers)
		var liveRoles []string
		for _, id := range roles {
			if st, ok := states[id]; ok && st.Status.Live() {
				liveRoles = append(liveRoles, id)
			}
		}
		s.quietRoleLogs(ctx, liveRoles)
		s.handOverTables(ctx, liveRoles)
	}
	for key, r := range routes {
		add(Orphan{Type: ResourceRouteCache, Name: key, SandboxID: r.SandboxID, Value: routecache.Encode(r)})
	}
	for _, m := range mappings {
		cands = append(cands, candidate{Orphan: m})
	}

	if err := s.ageUnowned(ctx, cands, now, recordSightings); err != nil {
		return rep, nil, err
	}
	for _, c := range cands {
		if now.Sub(c.Since) >= s.grace {
			rep.Orphans = append(rep.Orphans, c.Orphan)
		} else {
			rep.Young++
		}
	}
	order := map[ResourceType]int{}
	for i, t := range ResourceTypes() {
		order[t] = i
	}
	slices.SortFunc(rep.Orphans, func(a, b Orphan) int {
		return cmp.Or(cmp.Compare(order[a.Type], order[b.Type]), strings.Compare(a.Name, b.Name))
	})
	return rep, live, nil
}

// namespaceUse is what a keyspace pass found of one sandbox's namespace.
type namespaceUse struct {
	keys  int
	bytes int64 // MEMORY USAGE of every key, summed
}

// scanRedis lists the sandbox namespaces (id -> keys seen and their memory), the usage hashes (ids) and the
// route cache entries that point at a sandbox (key -> route), on every primary, with one
// SCAN pass over the suite's keys (keys.AllKeysPattern) per server: SCAN visits the whole
// keyspace whatever its pattern, so one pass costs a third of three. With the sandboxes on a
// Redis of their own, namespaces and usage hashes are read there and route entries on the
// control plane's server, each where the removal acts.
func (s *Service) scanRedis(ctx context.Context) (map[string]namespaceUse, map[string]bool, map[string]sandbox.Route, error) {
	var mu sync.Mutex
	namespaces := map[string]namespaceUse{}
	usage := map[string]bool{}
	guilds := map[string]bool{}
	apart := s.sandboxRedis != s.rdb
	scan := func(rdb redis.UniversalClient, sandboxKeys, routeKeys bool) error {
		measured := ""
		if sandboxKeys {
			measured = keys.NamespacesPrefix
		}
		_, err := scanKeys(ctx, rdb, keys.AllKeysPattern, measured, s.scanCount, func(batch []string, bytes []int64) error {
			mu.Lock()
			defer mu.Unlock()
			for i, k := range batch {
				if id, ok := keys.ParseNamespaceKey(k); ok && sandboxKeys {
					n := namespaces[id]
					n.keys++
					n.bytes += bytes[i]
					namespaces[id] = n
				} else if id, ok := keys.ParseUsageKey(k); ok && sandboxKeys {
					usage[id] = true
				} else if g, ok := keys.ParseRouteKey(k); ok && routeKeys {
					guilds[g] = true
				}
			}
			return nil
		})
		return err
	}
	if err := scan(s.sandboxRedis, true, !apart); err != nil {
		return nil, nil, nil, fmt.Errorf("cleanup: scan the sandboxes' keys: %w", err)
	}
	if apart {
		if err := scan(s.rdb, false, true); err != nil {
			return nil, nil, nil, fmt.Errorf("cleanup: scan the route cache: %w", err)
		}
	}
	cache := routecache.New(s.rdb, 0, 0)
	routes := map[string]sandbox.Route{}
	for chunk := range slices.Chunk(slices.Sorted(maps.Keys(guilds)), 1000) {
		got, err := cache.GetMany(ctx, chunk)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("cleanup: read route cache: %w", err)
		}
		for g, r := range got {
			if r.Mapped() {
				routes[keys.RouteCache(g)] = r
			}
		}
	}
	return namespaces, usage, routes, nil
}

// orphanMappings lists mappings to sandboxes that are neither running nor being created,
// aged from the sandbox's last status change.
func (s *Service) orphanMappings(ctx context.Context) ([]Orphan, error) {
	stale, err := s.bookkeeping.StaleMappings(ctx)
	if err != nil {
		return nil, fmt.Errorf("cleanup: list mappings: %w", err)
	}
	out := make([]Orphan, len(stale))
	for i, m := range stale {
		out[i] = Orphan{Type: ResourceMapping, Name: m.GuildID, SandboxID: m.SandboxID, SandboxStatus: m.State.Status, Since: m.State.Since}
	}
	return out, nil
}

// ageUnowned sets Since of the candidates without a sandbox row to their first sighting.
// When record is set it also records sightings not seen before and forgets those of
// resources that are gone or owned now; otherwise a resource never seen before is as young
// as now.
func (s *Service) ageUnowned(ctx context.Context, cands []candidate, now time.Time, record bool) error {
	var seen []controlplane.OrphanResource
	for _, c := range cands {
		if c.unowned {
			seen = append(seen, controlplane.OrphanResource{Type: string(c.Type), Name: c.Name})
		}
	}
	var firstSeen map[controlplane.OrphanResource]time.Time
	var err error
	if record {
		firstSeen, err = s.bookkeeping.RecordOrphanSightings(ctx, seen, now)
	} else {
		firstSeen, err = s.bookkeeping.OrphanFirstSeen(ctx, seen)
	}
	if err != nil {
		return fmt.Errorf("cleanup: orphan sightings: %w", err)
	}
	for i := range cands {
		if !cands[i].unowned {
			continue
		}
		cands[i].Since = now
		if at, ok := firstSeen[controlplane.OrphanResource{Type: string(cands[i].Type), Name: cands[i].Name}]; ok {
			cands[i].Since = at
		}
	}
	return nil
}

// errKept marks an orphan left alone because it is not an orphan any more.
var errKept = errors.New("no longer an orphan")

// compareAndDelete deletes a key only while it still holds the value that was reported.
var compareAndDelete = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// RemoveOrphans removes the orphans of a report, each only if its name matches the sandbox
// patterns exactly and its sandbox is still not live; removals are audited. Failures are
// listed, not returned: the rest is still removed. The ways in go first (removalOrder).
func (s *Service) RemoveOrphans(ctx context.Context, report OrphanReport) (OrphanRemoval, error) {
	rem := OrphanRemoval{Removed: []Orphan{}}
	for _, o := range removalOrder(report.Orphans) {
		err := s.removeOrphan(ctx, o)
		switch {
		case err == nil:
			rem.Removed = append(rem.Removed, o)
			s.log.InfoContext(ctx, "orphan removed", "type", string(o.Type), logkey.Name, o.Name, logkey.Sandbox, o.SandboxID)
		case errors.Is(err, errKept):
			rem.Kept = append(rem.Kept, o)
		default:
			rem.Failed = append(rem.Failed, OrphanFailure{Orphan: o, Error: err.Error()})
			s.log.ErrorContext(ctx, "orphan not removed", "type", string(o.Type), logkey.Name, o.Name, logkey.Error, err)
		}
		if ctx.Err() != nil {
			return rem, ctx.Err()
		}
	}
	return rem, nil
}

// removalOrder is the orphans in the order they are removed: the roles and Redis users first,
// then what they could write to, as a teardown does. An orphan's role or Redis user may still
// have a password its worker holds (a sandbox marked destroyed behind the teardown's back, a
// restored backup): a schema dropped while its role could log in waited for the worker's
// locks until the drop failed, and keys unlinked while its user could write were written
// again behind the removal. The order of a kind is the report's.
func removalOrder(orphans []Orphan) []Orphan {
	doorsFirst := func(t ResourceType) int {
		if t == ResourceRole || t == ResourceRedisUser {
			return 0
		}
		return 1
	}
	out := slices.Clone(orphans)
	slices.SortStableFunc(out, func(a, b Orphan) int { return cmp.Compare(doorsFirst(a.Type), doorsFirst(b.Type)) })
	return out
}

func (s *Service) removeOrphan(ctx context.Context, o Orphan) error {
	if err := s.checkOrphanName(o); err != nil {
		return err
	}
	if o.Type == ResourceMapping {
		removed, err := s.bookkeeping.RemoveOrphanMapping(ctx, s.actor, o.Name, o.SandboxID, map[string]any{"type": o.Type, "name": o.Name})
		if err != nil {
			return err
		}
		if !removed {
			return errKept
		}
		_, _, err = s.routes.PublishRoutes(ctx, []string{o.Name})
		return err
	}
	live, err := s.sandboxLive(ctx, o.SandboxID)
	if err != nil {
		return err
	}
	if live {
		return errKept
	}
	switch o.Type {
	case ResourceSchema:
		_, err = s.resources.DropSchema(ctx, o.SandboxID, s.lockTimeout)
	case ResourceRole:
		_, err = s.resources.DropRole(ctx, o.SandboxID, s.lockTimeout)
	case ResourceRedis:
		pattern, perr := keys.NamespacePattern(o.SandboxID)
		if perr != nil {
			return perr
		}
		_, _, err = unlinkMatching(ctx, s.sandboxRedis, pattern, s.scanCount)
	case ResourceRedisUser:
		_, err = s.resources.DeleteRedisUsers(ctx, []string{o.SandboxID})
	case ResourceRedisUsage:
		err = s.sandboxRedis.Unlink(ctx, keys.Usage(o.SandboxID)).Err()
	case ResourceRouteCache:
		var n int
		n, err = compareAndDelete.Run(ctx, s.rdb, []string{o.Name}, o.Value).Int()
		if err == nil && n == 0 {
			// Gone already (removing a mapping invalidates its guild's entry) or rewritten.
			if exists, xerr := s.rdb.Exists(ctx, o.Name).Result(); xerr != nil || exists == 1 {
				return cmp.Or(xerr, errKept)
			}
			return nil
		}
	}
	if err != nil {
		return err
	}
	return s.auditor.Audit(ctx, s.actor, controlplane.ActionOrphanRemoved, o.SandboxID, map[string]any{"type": o.Type, "name": o.Name})
}

// checkOrphanName refuses anything whose name is not exactly what its sandbox id names: a
// report may come from elsewhere than FindOrphans. The drops themselves act on the id and
// pass provision's checks (the name is a sandbox's; a role is this database's).
func (s *Service) checkOrphanName(o Orphan) error {
	ok := sandbox.ValidID(o.SandboxID)
	switch o.Type {
	case ResourceSchema:
		ok = ok && o.Name == sandbox.SchemaName(o.SandboxID)
	case ResourceRole:
		ok = ok && o.Name == sandbox.RoleName(o.SandboxID)
	case ResourceRedis:
		ok = ok && o.Name == keys.Namespace(o.SandboxID)
	case ResourceRedisUser:
		ok = ok && o.Name == s.resources.RedisUserName(o.SandboxID)
	case ResourceRedisUsage:
		ok = ok && o.Name == keys.Usage(o.SandboxID)
	case ResourceMapping:
		ok = ok && sandbox.ValidGuildID(o.Name)
	case ResourceRouteCache:
		guild, isRoute := keys.ParseRouteKey(o.Name)
		r, decoded := routecache.Decode(guild, o.Value)
		ok = ok && isRoute && decoded && r.SandboxID == o.SandboxID
	default:
		ok = false
	}
	if !ok {
		return fmt.Errorf("refusing %s %q of sandbox %q: it does not match the sandbox naming pattern", o.Type, o.Name, o.SandboxID)
	}
	return nil
}

// sandboxLive reports whether the sandbox has a row in a live status.
func (s *Service) sandboxLive(ctx context.Context, id string) (bool, error) {
	states, err := s.bookkeeping.SandboxStates(ctx, []string{id})
	if err != nil {
		return false, err
	}
	st, ok := states[id]
	return ok && st.Status.Live(), nil
}

// refreshRedisUserRules sets the rules of the live sandboxes' Redis users again
// (provision.RefreshRedisUserRules), so a user made under older rules gets today's at the next
// run rather than at its sandbox's next connect (docs/security.md, "Redis"). Failures are
// logged: the next run sets them again.
func (s *Service) refreshRedisUserRules(ctx context.Context, ids []string) {
	n, err := s.resources.RefreshRedisUserRules(ctx, ids)
	if err != nil {
		s.log.WarnContext(ctx, "setting the sandbox Redis users' rules again failed; the next run tries again",
			"sandboxes", len(ids), logkey.Error, err)
		return
	}
	if n > 0 {
		s.log.DebugContext(ctx, "sandbox Redis users' rules set again", "sandboxes", n)
	}
}

// quietRoleLogs gives the live sandboxes' roles that lack them the log settings of a new role
// (provision.QuietRoleLogs), so a role made before them keeps out of the server's log from the
// next run on (docs/security.md, "PostgreSQL"). Failures are logged: the next run tries again.
func (s *Service) quietRoleLogs(ctx context.Context, ids []string) {
	n, err := s.resources.QuietRoleLogs(ctx, ids)
	if err != nil {
		s.log.WarnContext(ctx, "setting the sandbox roles' log settings failed; the next run tries again",
			"sandboxes", len(ids), logkey.Error, err)
	}
	if n > 0 {
		s.log.InfoContext(ctx, "sandbox roles given the log settings of new roles", "roles", n)
	}
}

// handOverTables gives the live sandboxes' roles the tables the control user still owns in
// their schemas (provision.HandOverTables), as provisioning left them before it handed them
// over, so that no foreign key of theirs runs a role's code as the control user from the next
// run on (docs/security.md, "PostgreSQL"). Failures are logged: the next run tries again.
func (s *Service) handOverTables(ctx context.Context, ids []string) {
	n, err := s.resources.HandOverTables(ctx, ids, s.lockTimeout)
	if err != nil {
		s.log.WarnContext(ctx, "handing the sandboxes' tables to their roles failed; the next run tries again",
			"sandboxes", len(ids), logkey.Error, err)
	}
	if n > 0 {
		s.log.InfoContext(ctx, "sandboxes' tables handed to their roles", "sandboxes", n)
	}
}
