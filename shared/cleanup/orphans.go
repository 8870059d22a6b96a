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

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// ResourceType is a kind of resource orphan reconciliation looks at. The values are the
// ResourceType dimension of the OrphanedResources metric.
type ResourceType string

// The resource types, in report order.
const (
	ResourceSchema     ResourceType = "schema"
	ResourceRole       ResourceType = "role"
	ResourceRedis      ResourceType = "redis"
	ResourceRedisUser  ResourceType = "redis_user"
	ResourceMapping    ResourceType = "mapping"
	ResourceRouteCache ResourceType = "route_cache"
)

// ResourceTypes lists every resource type in report order.
func ResourceTypes() []ResourceType {
	return []ResourceType{ResourceSchema, ResourceRole, ResourceRedis, ResourceRedisUser, ResourceMapping, ResourceRouteCache}
}

// Orphan is a resource named like a sandbox's whose sandbox does not exist or cannot use it.
type Orphan struct {
	Type ResourceType `json:"type"`
	// Name is the schema or role name, the namespace prefix (sandbox:{id}:), the Redis ACL
	// user's name, the guild id of a mapping, or the route cache key.
	Name      string `json:"name"`
	SandboxID string `json:"sandbox_id"`
	// SandboxStatus is the status of the sandbox it belongs to, empty when there is none.
	SandboxStatus sandbox.Status `json:"sandbox_status,omitempty"`
	// Since is when it became an orphan as far as the control plane knows: when its sandbox
	// was destroyed or left running, or when cleanup first saw it without a sandbox.
	Since time.Time `json:"since"`
	// Keys is how many keys of a Redis namespace were seen.
	Keys int `json:"keys,omitempty"`
	// Value is the route cache entry's value.
	Value string `json:"value,omitempty"`
}

// OrphanReport is what FindOrphans found.
type OrphanReport struct {
	CheckedAt    time.Time `json:"checked_at"`
	GraceSeconds int64     `json:"grace_seconds"`
	Orphans      []Orphan  `json:"orphans"`
	// Young counts resources that look orphaned but became so within the grace period.
	Young int `json:"young"`
}

// Count returns how many orphans of type t the report holds.
func (r OrphanReport) Count(t ResourceType) int {
	n := 0
	for _, o := range r.Orphans {
		if o.Type == t {
			n++
		}
	}
	return n
}

// FindOrphans reports, without touching any of them, the resources named like a sandbox's
// that no live sandbox owns: schemas and roles sb_<id> (roles only with this database's
// comment: roles are cluster-wide), Redis namespaces, guild mappings of sandboxes that are
// neither running nor being created, and route cache entries pointing at sandboxes that are
// gone. Resources that became orphans within the grace period are counted as young, not
// reported. It records first sightings of resources that have no sandbox row at all (see
// the package doc); that bookkeeping is its only write.
func (s *Service) FindOrphans(ctx context.Context) (OrphanReport, error) {
	return s.findOrphans(ctx, true)
}

// candidate is a resource that no live sandbox owns, before the grace period applies.
type candidate struct {
	Orphan
	unowned bool // no sandbox row: aged by its first sighting
}

func (s *Service) findOrphans(ctx context.Context, recordSightings bool) (OrphanReport, error) {
	now := s.now()
	rep := OrphanReport{CheckedAt: now, GraceSeconds: int64(s.grace / time.Second), Orphans: []Orphan{}}

	// Resources are listed before the control plane is read: a sandbox's row is committed
	// before its resources exist, so a resource seen here has its row visible below.
	namespaces, routes, err := s.scanRedis(ctx)
	if err != nil {
		return rep, err
	}
	redisUsers, err := s.resources.SandboxRedisUsers(ctx)
	if err != nil {
		return rep, fmt.Errorf("cleanup: list sandbox Redis users: %w", err)
	}
	schemas, roles, err := s.databaseResources(ctx)
	if err != nil {
		return rep, err
	}
	mappings, err := s.orphanMappings(ctx)
	if err != nil {
		return rep, err
	}

	var ids []string
	for id := range namespaces {
		ids = append(ids, id)
	}
	for _, r := range routes {
		ids = append(ids, r.SandboxID)
	}
	ids = append(append(append(ids, schemas...), roles...), redisUsers...)
	states, err := s.sandboxStates(ctx, ids)
	if err != nil {
		return rep, err
	}

	var cands []candidate
	add := func(o Orphan) {
		st, ok := states[o.SandboxID]
		switch {
		case !ok:
			cands = append(cands, candidate{Orphan: o, unowned: true})
		case st.status == sandbox.StatusDestroyed:
			o.SandboxStatus, o.Since = st.status, st.since
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
		add(Orphan{Type: ResourceRedis, Name: keys.Namespace(id), SandboxID: id, Keys: n})
	}
	for _, id := range redisUsers {
		add(Orphan{Type: ResourceRedisUser, Name: s.resources.RedisUserName(id), SandboxID: id})
	}
	for key, r := range routes {
		add(Orphan{Type: ResourceRouteCache, Name: key, SandboxID: r.SandboxID, Value: routecache.Encode(r)})
	}
	for _, m := range mappings {
		cands = append(cands, candidate{Orphan: m})
	}

	if err := s.ageUnowned(ctx, cands, now, recordSightings); err != nil {
		return rep, err
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
	return rep, nil
}

// scanRedis lists the sandbox namespaces (id -> keys seen) and the route cache entries that
// point at a sandbox (key -> route), on every primary.
func (s *Service) scanRedis(ctx context.Context) (map[string]int, map[string]sandbox.Route, error) {
	var mu sync.Mutex
	namespaces := map[string]int{}
	_, err := scanKeys(ctx, s.rdb, keys.AllNamespacesPattern, s.scanCount, func(batch []string) error {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range batch {
			if id, ok := keys.ParseNamespaceKey(k); ok {
				namespaces[id]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cleanup: scan sandbox namespaces: %w", err)
	}
	guilds := map[string]bool{}
	_, err = scanKeys(ctx, s.rdb, keys.AllRoutesPattern, s.scanCount, func(batch []string) error {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range batch {
			if g, ok := keys.ParseRouteKey(k); ok {
				guilds[g] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cleanup: scan route cache: %w", err)
	}
	cache := routecache.New(s.rdb, 0, 0)
	routes := map[string]sandbox.Route{}
	for chunk := range slices.Chunk(slices.Sorted(maps.Keys(guilds)), 1000) {
		got, err := cache.GetMany(ctx, chunk)
		if err != nil {
			return nil, nil, fmt.Errorf("cleanup: read route cache: %w", err)
		}
		for g, r := range got {
			if r.Mapped() {
				routes[keys.RouteCache(g)] = r
			}
		}
	}
	return namespaces, routes, nil
}

// databaseResources lists the ids of schemas and of this database's roles named sb_<id>.
func (s *Service) databaseResources(ctx context.Context) (schemas, roles []string, err error) {
	var database string
	if err := s.db.QueryRow(ctx, `SELECT current_database()`).Scan(&database); err != nil {
		return nil, nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sb\_%' ORDER BY nspname`)
	if err != nil {
		return nil, nil, fmt.Errorf("cleanup: list schemas: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("cleanup: list schemas: %w", err)
	}
	schemas = sandboxIDsOf(names, sandbox.SchemaName)
	rows, err = s.db.Query(ctx, `SELECT rolname FROM pg_roles
		WHERE rolname LIKE 'sb\_%' AND shobj_description(oid, 'pg_authid') = $1 ORDER BY rolname`, provision.RoleCommentFor(database))
	if err != nil {
		return nil, nil, fmt.Errorf("cleanup: list roles: %w", err)
	}
	names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("cleanup: list roles: %w", err)
	}
	return schemas, sandboxIDsOf(names, sandbox.RoleName), nil
}

// sandboxIDsOf keeps the names that are exactly nameOf(id) for a valid id, and returns the ids.
func sandboxIDsOf(names []string, nameOf func(string) string) []string {
	var ids []string
	for _, n := range names {
		if id, ok := strings.CutPrefix(n, "sb_"); ok && sandbox.ValidID(id) && nameOf(id) == n {
			ids = append(ids, id)
		}
	}
	return ids
}

// orphanMappings lists mappings to sandboxes that are neither running nor being created,
// aged from the sandbox's last status change.
func (s *Service) orphanMappings(ctx context.Context) ([]Orphan, error) {
	rows, err := s.db.Query(ctx, `
		SELECT m.guild_id, m.sandbox_id, s.status, coalesce(s.destroyed_at, s.updated_at)
		FROM sandbox_control.guild_mappings m JOIN sandbox_control.sandboxes s ON s.id = m.sandbox_id
		WHERE s.status NOT IN ('running', 'creating') ORDER BY m.guild_id`)
	if err != nil {
		return nil, fmt.Errorf("cleanup: list mappings: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Orphan, error) {
		o := Orphan{Type: ResourceMapping}
		var status string
		err := row.Scan(&o.Name, &o.SandboxID, &status, &o.Since)
		o.SandboxStatus = sandbox.Status(status)
		return o, err
	})
}

type sandboxState struct {
	status sandbox.Status
	since  time.Time // destroyed_at of a destroyed sandbox
}

// sandboxStates returns the status of every sandbox in ids that has a row.
func (s *Service) sandboxStates(ctx context.Context, ids []string) (map[string]sandboxState, error) {
	out := map[string]sandboxState{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT id, status, coalesce(destroyed_at, updated_at)
		FROM sandbox_control.sandboxes WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("cleanup: read sandboxes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var st sandboxState
		if err := rows.Scan(&id, &status, &st.since); err != nil {
			return nil, err
		}
		st.status = sandbox.Status(status)
		out[id] = st
	}
	return out, rows.Err()
}

// ageUnowned sets Since of the candidates without a sandbox row to their first sighting.
// When record is set it also records sightings not seen before and forgets those of
// resources that are gone or owned now; otherwise a resource never seen before is as young
// as now.
func (s *Service) ageUnowned(ctx context.Context, cands []candidate, now time.Time, record bool) error {
	var types, names []string
	for _, c := range cands {
		if c.unowned {
			types = append(types, string(c.Type))
			names = append(names, c.Name)
		}
	}
	var rows pgx.Rows
	var err error
	if record {
		rows, err = s.db.Query(ctx, `
			WITH seen AS (SELECT * FROM unnest($1::text[], $2::text[]) AS s(resource_type, name)),
			forgotten AS (
				DELETE FROM sandbox_control.orphan_sightings o
				WHERE NOT EXISTS (SELECT 1 FROM seen WHERE seen.resource_type = o.resource_type AND seen.name = o.name))
			INSERT INTO sandbox_control.orphan_sightings AS o (resource_type, name, first_seen_at, last_seen_at)
			SELECT resource_type, name, $3, $3 FROM seen
			ON CONFLICT (resource_type, name) DO UPDATE SET last_seen_at = excluded.last_seen_at
			RETURNING o.resource_type, o.name, o.first_seen_at`, types, names, now)
	} else {
		rows, err = s.db.Query(ctx, `
			SELECT o.resource_type, o.name, o.first_seen_at FROM sandbox_control.orphan_sightings o
			JOIN unnest($1::text[], $2::text[]) AS s(resource_type, name) USING (resource_type, name)`, types, names)
	}
	if err != nil {
		return fmt.Errorf("cleanup: orphan sightings: %w", err)
	}
	firstSeen := map[[2]string]time.Time{}
	var typ, name string
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&typ, &name, &at}, func() error {
		firstSeen[[2]string{typ, name}] = at
		return nil
	})
	if err != nil {
		return fmt.Errorf("cleanup: orphan sightings: %w", err)
	}
	for i := range cands {
		if !cands[i].unowned {
			continue
		}
		cands[i].Since = now
		if at, ok := firstSeen[[2]string{string(cands[i].Type), cands[i].Name}]; ok {
			cands[i].Since = at
		}
	}
	return nil
}

// OrphanRemoval is what RemoveOrphans did.
type OrphanRemoval struct {
	Removed []Orphan `json:"removed"`
	// Kept lists reported orphans that were live or had changed by the time of removal.
	Kept   []Orphan        `json:"kept,omitempty"`
	Failed []OrphanFailure `json:"failed,omitempty"`
}

// OrphanFailure is an orphan that could not be removed.
type OrphanFailure struct {
	Orphan
	Error string `json:"error"`
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
// listed, not returned: the rest is still removed.
func (s *Service) RemoveOrphans(ctx context.Context, report OrphanReport) (OrphanRemoval, error) {
	rem := OrphanRemoval{Removed: []Orphan{}}
	for _, o := range report.Orphans {
		err := s.removeOrphan(ctx, o)
		switch {
		case err == nil:
			rem.Removed = append(rem.Removed, o)
			s.log.InfoContext(ctx, "orphan removed", "type", string(o.Type), "name", o.Name, "sandbox", o.SandboxID)
		case errors.Is(err, errKept):
			rem.Kept = append(rem.Kept, o)
		default:
			rem.Failed = append(rem.Failed, OrphanFailure{Orphan: o, Error: err.Error()})
			s.log.ErrorContext(ctx, "orphan not removed", "type", string(o.Type), "name", o.Name, "error", err)
		}
		if ctx.Err() != nil {
			return rem, ctx.Err()
		}
	}
	return rem, nil
}

func (s *Service) removeOrphan(ctx context.Context, o Orphan) error {
	if err := s.checkOrphanName(o); err != nil {
		return err
	}
	if o.Type == ResourceMapping {
		removed, err := s.m.RemoveOrphanMapping(ctx, s.actor, o.Name, o.SandboxID, map[string]any{"type": o.Type, "name": o.Name})
		if err != nil {
			return err
		}
		if !removed {
			return errKept
		}
		_, _, err = s.m.PublishRoutes(ctx, []string{o.Name})
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
		err = s.dropOrphanSchema(ctx, o.Name)
	case ResourceRole:
		err = s.dropOrphanRole(ctx, o.Name)
	case ResourceRedis:
		pattern, perr := keys.NamespacePattern(o.SandboxID)
		if perr != nil {
			return perr
		}
		_, _, err = unlinkMatching(ctx, s.rdb, pattern, s.scanCount)
	case ResourceRedisUser:
		_, err = s.resources.DeleteRedisUsers(ctx, []string{o.SandboxID})
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
	return s.m.Audit(ctx, s.actor, controlplane.ActionOrphanRemoved, o.SandboxID, map[string]any{"type": o.Type, "name": o.Name})
}

// checkOrphanName refuses anything whose name is not exactly what a sandbox would own: a
// report may come from elsewhere than FindOrphans.
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

func (s *Service) sandboxLive(ctx context.Context, id string) (bool, error) {
	var status string
	err := s.db.QueryRow(ctx, `SELECT status FROM sandbox_control.sandboxes WHERE id = $1`, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return sandbox.Status(status).Live(), nil
}

func (s *Service) lockTimeoutSQL() string {
	return fmt.Sprintf("SET LOCAL lock_timeout = %d", s.lockTimeout.Milliseconds())
}

func (s *Service) dropOrphanSchema(ctx context.Context, name string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.lockTimeoutSQL()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		return err
	})
}

// dropOrphanRole drops a role only while it carries this database's comment, after ending
// its sessions.
func (s *Service) dropOrphanRole(ctx context.Context, name string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error { return s.dropRoleTx(ctx, tx, name) })
}

func (s *Service) dropRoleTx(ctx context.Context, tx pgx.Tx, name string) error {
	if _, err := tx.Exec(ctx, s.lockTimeoutSQL()); err != nil {
		return err
	}
	var comment, database string
	err := tx.QueryRow(ctx, `SELECT coalesce(shobj_description(oid, 'pg_authid'), ''), current_database()
		FROM pg_roles WHERE rolname = $1`, name).Scan(&comment, &database)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if comment != provision.RoleCommentFor(database) {
		return fmt.Errorf("refusing role %q: it is not a role of database %s", name, database)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, name); err != nil {
		return err
	}
	return provision.DropRole(ctx, tx, name)
}
