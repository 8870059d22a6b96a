package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// EndedSession is a session of a sandbox's role that EndLongTransactions ended.
type EndedSession struct {
	SandboxID string    `json:"sandbox_id"`
	PID       int32     `json:"pid"`
	XactStart time.Time `json:"xact_start"`
	// State is pg_stat_activity's: "idle in transaction" for a forgotten BEGIN, "active" for
	// a statement that runs that long.
	State string `json:"state"`
}

// EndLongTransactions ends the sessions of this database's sandbox roles whose transaction
// has been open for longer than maxAge, idle or running, and returns them. An open
// transaction holds back the database's xmin horizon: while it lasts, vacuum removes no dead
// row of any table, the control plane's included, so one worker's forgotten BEGIN would
// bloat every table for as long as its sandbox lives. The role's own settings cannot bound
// it (idle_in_transaction_session_timeout and statement_timeout are each session's to
// change), so the scheduled cleanup does. A role is a sandbox's of this database only as
// sandbox.IDOfName and ownRole say; a session is ended only if it is still the one listed
// (its pid and its start), never a backend that took the pid over meanwhile.
func (p *Provisioner) EndLongTransactions(ctx context.Context, maxAge time.Duration) ([]EndedSession, error) {
	type session struct {
		EndedSession
		role, comment, database string
		started                 time.Time
	}
	rows, err := p.db.Query(ctx, `SELECT a.usename, coalesce(pg_catalog.shobj_description(a.usesysid, 'pg_authid'), ''),
		pg_catalog.current_database(), a.pid, a.backend_start, a.xact_start, coalesce(a.state, '')
		FROM pg_catalog.pg_stat_activity a
		WHERE a.datname = pg_catalog.current_database() AND a.usename LIKE 'sb\_%'
			AND a.xact_start < pg_catalog.clock_timestamp() - $1::interval`, maxAge)
	if err != nil {
		return nil, fmt.Errorf("list long transactions of sandbox roles: %w", err)
	}
	listed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (session, error) {
		var s session
		return s, row.Scan(&s.role, &s.comment, &s.database, &s.PID, &s.started, &s.XactStart, &s.State)
	})
	if err != nil {
		return nil, fmt.Errorf("list long transactions of sandbox roles: %w", err)
	}
	var pids []int32
	var starts []time.Time
	byPID := map[int32]EndedSession{}
	for _, s := range listed {
		id, ok := sandbox.IDOfName(s.role)
		if !ok || !ownRole(s.comment, s.database) {
			continue
		}
		s.SandboxID = id
		pids, starts = append(pids, s.PID), append(starts, s.started)
		byPID[s.PID] = s.EndedSession
	}
	if len(pids) == 0 {
		return nil, nil
	}
	// MATERIALIZED: the sessions are matched first, and only they are ended (a condition on
	// the view alone could be applied to every backend it scans).
	rows, err = p.db.Query(ctx, `WITH still AS MATERIALIZED (
			SELECT a.pid FROM pg_catalog.pg_stat_activity a
			JOIN ROWS FROM (pg_catalog.unnest($1::int4[]), pg_catalog.unnest($2::timestamptz[])) AS listed (pid, started)
				ON a.pid = listed.pid AND a.backend_start = listed.started)
		SELECT pid FROM still WHERE pg_catalog.pg_terminate_backend(pid)`, pids, starts)
	if err != nil {
		return nil, fmt.Errorf("end long transactions of sandbox roles: %w", err)
	}
	ended, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("end long transactions of sandbox roles: %w", err)
	}
	out := make([]EndedSession, 0, len(ended))
	for _, pid := range ended {
		out = append(out, byPID[pid])
	}
	return out, nil
}

// SessionsEnded counts what EndSessions ended.
type SessionsEnded struct {
	// Database is how many sessions of the sandbox's role were ended.
	Database int
	// Redis is how many connections authenticated as the sandbox's Redis user were closed,
	// on every node (always 0 in shared Redis mode: there is no such user).
	Redis int
}

// EndSessions ends every session opened with the sandbox's credentials: the role's database
// sessions and, in ACL mode, the connections authenticated as its Redis user on every node
// the cluster knows. Rotating credentials leaves open sessions open, so whoever was handed
// the previous ones (a collaborator whose share has ended, a leaked environment file) keeps
// what they opened until this runs; rotate first (RotateCredentials), so that no session can
// be opened again with what it ended. A role named like the sandbox's that is not this
// database's is refused, and then nothing is ended.
func (p *Provisioner) EndSessions(ctx context.Context, id string) (SessionsEnded, error) {
	var out SessionsEnded
	if err := checkID(id); err != nil {
		return out, err
	}
	role := sandbox.RoleName(id)
	var roleOID uint32
	var ended []int32
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		st, err := ourRoleOf(ctx, tx, role)
		if err != nil || !st.exists {
			return err
		}
		roleOID = st.oid
		ended, err = endSessions(ctx, tx, st.oid, nil)
		return err
	})
	out.Database = len(ended)
	if err != nil {
		return out, fmt.Errorf("end the database sessions of %s: %w", id, err)
	}
	if p.redisUsers() {
		out.Redis, err = p.closeRedisConnections(ctx, p.RedisUserName(id))
		if err != nil {
			return out, fmt.Errorf("close the Redis connections of %s: %w", id, err)
		}
	}
	if roleOID == 0 {
		return out, nil
	}
	// Again, by the role's OID: a login whose password check passed just before the rotation
	// committed shows in pg_stat_activity only once its backend has started, which may be
	// after the first pass. A session opened with the new password cannot be among them: the
	// caller has not handed it out yet.
	late, err := endSessions(ctx, p.db, roleOID, ended)
	out.Database += len(late)
	if err != nil {
		return out, fmt.Errorf("end the database sessions of %s: %w", id, err)
	}
	return out, nil
}

// CrowdingUser is a sandbox's Redis user that SwitchOffCrowdingRedisUsers switched off.
type CrowdingUser struct {
	SandboxID string `json:"sandbox_id"`
	// Connections is the most connections the user held on one node when they were counted,
	// and Node that node's address.
	Connections int    `json:"connections"`
	Node        string `json:"node,omitempty"`
	// Closed counts the connections closed, on every node.
	Closed int `json:"closed"`
}

// SwitchOffCrowdingRedisUsers switches off the Redis user of every sandbox of this database
// that holds more than limit connections on one node, closes every connection authenticated
// as it, and returns those users, in sandbox id order.
//
// Redis bounds connections per server (maxclients), never per user: a sandbox's worker that
// leaks connections would in time keep every other client out of the server, other sandboxes'
// workers, the router and the API alike. This bounds that to one cleanup interval; a worker
// that fills the server at once keeps this call out too (docs/security.md). The user is
// switched off on every node first (ACL SETUSER off: no connection may authenticate as it any
// more), then its connections are closed, so none comes back. It keeps its password and its
// rules, and the scheduled refresh keeps it off (RefreshRedisUserRules sets no flag); the
// sandbox's next connect (RotateCredentials) switches it on again, with new passwords
// (SwitchOffRedisUser).
//
// Round trips: one CLIENT LIST per node, then for each user switched off one ACL SETUSER and
// one CLIENT KILL per node. The functions' user needs +client|list for the count
// (scripts/redis-control-user.rules).
func (p *Provisioner) SwitchOffCrowdingRedisUsers(ctx context.Context, limit int) ([]CrowdingUser, error) {
	if !p.redisUsers() {
		return nil, nil
	}
	if limit < 1 {
		return nil, fmt.Errorf("switch off crowding Redis users: limit %d is not positive", limit)
	}
	var mu sync.Mutex
	most := map[string]CrowdingUser{} // sandbox id -> its most connections on one node
	_, err := forEachNode(ctx, p.rdb, func(ctx context.Context, node redis.UniversalClient) error {
		list, err := node.ClientList(ctx).Result()
		if err != nil {
			return fmt.Errorf("CLIENT LIST on %q: %w", nodeAddr(node), err)
		}
		counts := connectionsByUser(list)
		mu.Lock()
		defer mu.Unlock()
		for user, n := range counts {
			id, ok := keys.ParseACLUser(user, p.redisDB())
			if ok && n > most[id].Connections {
				most[id] = CrowdingUser{SandboxID: id, Connections: n, Node: nodeAddr(node)}
			}
		}
		return nil
	})
	if err != nil {
		if redis.HasErrorPrefix(err, "NOPERM") {
			err = fmt.Errorf("%w (the functions' Redis user needs +client|list: docs/deploy.md)", err)
		}
		return nil, fmt.Errorf("count the sandboxes' Redis connections: %w", err)
	}
	var out []CrowdingUser
	for _, u := range most {
		if u.Connections > limit {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b CrowdingUser) int { return strings.Compare(a.SandboxID, b.SandboxID) })
	for i := range out {
		user := p.RedisUserName(out[i].SandboxID)
		if err := p.switchOffRedisUser(ctx, user); err != nil {
			return out[:i], fmt.Errorf("switch off the Redis user of %s: %w", out[i].SandboxID, err)
		}
		closed, err := p.closeRedisConnections(ctx, user)
		out[i].Closed = closed
		if err != nil { // switched off all the same: reported with the error
			return out[:i+1], fmt.Errorf("close the Redis connections of %s: %w", out[i].SandboxID, err)
		}
	}
	return out, nil
}

// SwitchOffRedisUser switches off the Redis user of sandbox id on every node (ACL SETUSER
// off: no connection may authenticate as it any more), then closes every connection
// authenticated as it, so that none comes back, and returns how many it closed. The user
// keeps its password, its rules and its keys; the sandbox's next connect switches it on
// again. In shared Redis mode there is no user to switch off: it does nothing. A user that a
// teardown deleted just before comes back switched off, with no password and no rule: nothing
// authenticates as it, and the orphan finder removes it.
func (p *Provisioner) SwitchOffRedisUser(ctx context.Context, id string) (int, error) {
	if !p.redisUsers() {
		return 0, nil
	}
	if err := checkID(id); err != nil {
		return 0, err
	}
	user := p.RedisUserName(id)
	if err := p.switchOffRedisUser(ctx, user); err != nil {
		return 0, fmt.Errorf("switch off the Redis user of %s: %w", id, err)
	}
	closed, err := p.closeRedisConnections(ctx, user)
	if err != nil {
		return closed, fmt.Errorf("close the Redis connections of %s: %w", id, err)
	}
	return closed, nil
}

// switchOffRedisUser sets user off on every node the cluster knows (ACL SETUSER off).
func (p *Provisioner) switchOffRedisUser(ctx context.Context, user string) error {
	_, err := forEveryNode(ctx, p.rdb, func(ctx context.Context, node redis.UniversalClient) error {
		return node.Do(ctx, "ACL", "SETUSER", user, "off").Err()
	})
	return err
}

// closeRedisConnections closes every connection authenticated as user, on every node the
// cluster knows (CLIENT KILL USER), and returns how many it closed. A node without the user
// has nothing authenticated as it.
func (p *Provisioner) closeRedisConnections(ctx context.Context, user string) (int, error) {
	var closed atomic.Int64
	_, err := forEveryNode(ctx, p.rdb, func(ctx context.Context, node redis.UniversalClient) error {
		n, err := node.ClientKillByFilter(ctx, "USER", user).Result()
		if redis.HasErrorPrefix(err, "No such user") {
			return nil
		}
		closed.Add(n)
		return err
	})
	return int(closed.Load()), err
}

// connectionsByUser counts the connections of a CLIENT LIST reply by their user: one line a
// connection, its fields space-separated name=value pairs. A client's name and library name
// hold no space, so no value can pass for a field of its own.
func connectionsByUser(list string) map[string]int {
	counts := map[string]int{}
	for line := range strings.Lines(list) {
		for field := range strings.FieldsSeq(line) {
			if user, ok := strings.CutPrefix(field, "user="); ok {
				counts[user]++
				break
			}
		}
	}
	return counts
}
