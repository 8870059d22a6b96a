package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// forEachNode runs fn on every node of a cluster client (primaries and replicas: ACL users
// exist per node, and a worker may read from a replica), or on the client itself otherwise,
// and returns how many nodes it ran on.
func forEachNode(ctx context.Context, rdb redis.UniversalClient, fn func(ctx context.Context, node redis.UniversalClient) error) (int, error) {
	return onNodes(ctx, rdb, false, fn)
}

// forEveryNode is forEachNode for an ACL change that must reach every node the cluster knows:
// a deleted user, or a password replaced, left on one node is a credential that still works
// there. CLUSTER SLOTS, the client's topology, leaves out a replica the other nodes flag as
// failed, and that replica keeps what it had when it comes back. So each node reached also
// says which nodes it knows (CLUSTER NODES), and a node known but not reached fails the call
// with an unavailable error after fn ran on the others; the caller's next attempt, once the
// node is back, completes the change.
func forEveryNode(ctx context.Context, rdb redis.UniversalClient, fn func(ctx context.Context, node redis.UniversalClient) error) (int, error) {
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		return forEachNode(ctx, rdb, fn)
	}
	var mu sync.Mutex
	reached := map[string]bool{} // node ids
	known := map[string]string{} // node id -> its address and flags, as a node reached says
	n, err := forEachNode(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		id, err := node.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return fmt.Errorf("CLUSTER MYID: %w", err)
		}
		nodes, err := node.ClusterNodes(ctx).Result()
		if err != nil {
			return fmt.Errorf("CLUSTER NODES: %w", err)
		}
		mu.Lock()
		reached[id] = true
		for line := range strings.Lines(nodes) {
			// <id> <ip:port@cport[,hostname]> <flags> ...; a node in handshake is not a
			// member yet, and has no user to keep.
			if f := strings.Fields(line); len(f) >= 3 && !strings.Contains(f[2], "handshake") {
				known[f[0]] = f[1] + " " + f[2]
			}
		}
		mu.Unlock()
		return fn(ctx, node)
	})
	if err != nil {
		return n, err
	}
	var missed []string
	for id, what := range known {
		if !reached[id] {
			missed = append(missed, what)
		}
	}
	if len(missed) > 0 {
		slices.Sort(missed)
		return n, sandbox.Errorf(sandbox.CodeUnavailable,
			"%d Redis cluster node(s) the cluster knows were not reached (%s): the ACL change is not on them yet; it is completed when they are back",
			len(missed), strings.Join(missed, "; "))
	}
	return n, nil
}

// ForEachPrimary runs fn on every primary of a cluster client, concurrently, or on the client
// itself otherwise, and returns how many primaries it ran on. fn must be safe for concurrent
// use. Cleanup scans and unlinks keys with it: keys live on the primaries only.
func ForEachPrimary(ctx context.Context, rdb redis.UniversalClient, fn func(ctx context.Context, node redis.UniversalClient) error) (int, error) {
	return onNodes(ctx, rdb, true, fn)
}

// onNodes is ForEachPrimary when primariesOnly is set, forEachNode otherwise.
func onNodes(ctx context.Context, rdb redis.UniversalClient, primariesOnly bool,
	fn func(ctx context.Context, node redis.UniversalClient) error) (int, error) {
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return 1, fn(ctx, rdb)
	}
	var n atomic.Int32
	counted := func(ctx context.Context, node *redis.Client) error {
		n.Add(1)
		return fn(ctx, node)
	}
	var err error
	if primariesOnly {
		err = cluster.ForEachMaster(ctx, counted)
	} else {
		err = cluster.ForEachShard(ctx, counted)
	}
	return int(n.Load()), err
}

// redisDB is the logical database the suite works on: 0 but in tests (a cluster has no other).
func (p *Provisioner) redisDB() int {
	if c, ok := p.rdb.(*redis.Client); ok {
		return c.Options().DB
	}
	return 0
}

// RedisUserName returns the name of the sandbox's Redis ACL user (keys.ACLUser).
func (p *Provisioner) RedisUserName(id string) string { return keys.ACLUser(id, p.redisDB()) }

// allowSelect is whether sandbox users may SELECT: only when the suite itself works on a
// logical database other than 0, which happens in tests alone, so that a sandbox's keys never
// leave the database teardown cleans.
func (p *Provisioner) allowSelect() bool { return p.redisDB() != 0 }

// setRedisUser creates or redefines the sandbox's ACL user on every node, in one ACL SETUSER
// each: "reset" first, so the rules are exactly keys.SandboxACLRules whatever the user had,
// and the password as its SHA-256 hash ("#<hex>"), so the password is never sent. An empty
// password leaves the user without one: it exists, but nobody can authenticate as it.
func (p *Provisioner) setRedisUser(ctx context.Context, id, password string) error {
	args, err := setUserArgs(p.RedisUserName(id), id, password, p.allowSelect())
	if err != nil {
		return err
	}
	// A new user (no password) may miss a node flagged as failed: the scheduled refresh copies
	// it there later. A password must replace the old one on every node (forEveryNode).
	each := forEveryNode
	if password == "" {
		each = forEachNode
	}
	_, err = each(ctx, p.rdb, func(ctx context.Context, node redis.UniversalClient) error {
		return node.Do(ctx, args...).Err()
	})
	return err
}

// setUserArgs is the ACL SETUSER command of a sandbox's user; the password appears only as
// its SHA-256 hash.
func setUserArgs(user, id, password string, allowSelect bool) ([]any, error) {
	args := []any{"ACL", "SETUSER", user, "reset", "on"}
	if password != "" {
		sum := sha256.Sum256([]byte(password))
		args = append(args, "#"+hex.EncodeToString(sum[:]))
	}
	return appendRules(args, id, allowSelect)
}

// appendRules appends the sandbox user's rules (keys.SandboxACLRules) to an ACL SETUSER.
func appendRules(args []any, id string, allowSelect bool) ([]any, error) {
	rules, err := keys.SandboxACLRules(id, allowSelect)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		args = append(args, r)
	}
	return args, nil
}

// RedisUserExists reports whether the sandbox's Redis ACL user exists, on or off (on the
// node a plain command reaches). Always false in shared Redis mode.
func (p *Provisioner) RedisUserExists(ctx context.Context, id string) (bool, error) {
	st, err := p.RedisUserStateOf(ctx, id)
	return st != RedisUserMissing, err
}

// RedisUserState is what the node a plain command reaches says of a sandbox's Redis user.
type RedisUserState int

const (
	// RedisUserMissing: no such user (always in shared Redis mode).
	RedisUserMissing RedisUserState = iota
	// RedisUserOn: its worker may authenticate.
	RedisUserOn
	// RedisUserOff: switched off by the cleanup (SwitchOffRedisUser: too many connections or too
	// much memory); connect switches it on again.
	RedisUserOff
)

// RedisUserStateOf reads the state of the sandbox's Redis user (ACL GETUSER).
func (p *Provisioner) RedisUserStateOf(ctx context.Context, id string) (RedisUserState, error) {
	if !p.redisUsers() {
		return RedisUserMissing, nil
	}
	if err := checkID(id); err != nil {
		return RedisUserMissing, err
	}
	v, err := p.rdb.Do(ctx, "ACL", "GETUSER", p.RedisUserName(id)).Result()
	if errors.Is(err, redis.Nil) {
		return RedisUserMissing, nil
	}
	u, err := parseACLUser(v, err)
	if err != nil {
		return RedisUserMissing, fmt.Errorf("ACL GETUSER %s: %w", p.RedisUserName(id), err)
	}
	if !u.on {
		return RedisUserOff, nil
	}
	return RedisUserOn, nil
}

// RedisUserResult says what DeleteRedisUsers found for one sandbox.
type RedisUserResult struct {
	// Deleted counts the nodes on which the user existed.
	Deleted int `json:"deleted"`
	// Nodes counts the nodes asked.
	Nodes int `json:"nodes"`
	// Skipped is true in shared Redis mode, where there are no sandbox users.
	Skipped bool `json:"skipped,omitempty"`
}

// delUserBatch bounds the users one ACL DELUSER names.
const delUserBatch = 1000

// DeleteRedisUsers deletes the ACL users of the sandboxes ids on every node the cluster knows
// (forEveryNode: a node it cannot reach fails the call), whatever their number, with one ACL
// USERS (to say which existed) and one ACL DELUSER per delUserBatch users per node, and
// returns what it found per id. ACL DELUSER also closes every connection authenticated as a
// user, so a worker still connected loses its session at once. Every name is deleted, listed
// or not, so a user created after the listing goes too. Idempotent: a user already gone
// counts as deleted nowhere. On an error the users may be deleted on some nodes only; calling
// it again completes the job.
func (p *Provisioner) DeleteRedisUsers(ctx context.Context, ids []string) (map[string]RedisUserResult, error) {
	out := make(map[string]RedisUserResult, len(ids))
	names := make(map[string]string, len(ids)) // user name -> id
	for _, id := range ids {
		if err := checkID(id); err != nil {
			return nil, err
		}
		out[id] = RedisUserResult{Skipped: !p.redisUsers()}
		names[p.RedisUserName(id)] = id
	}
	if !p.redisUsers() || len(ids) == 0 {
		return out, nil
	}
	all := make([]any, 0, len(names))
	for name := range names {
		all = append(all, name)
	}
	var mu sync.Mutex
	deleted := map[string]int{}
	nodes, err := forEveryNode(ctx, p.rdb, func(ctx context.Context, node redis.UniversalClient) error {
		users, err := node.Do(ctx, "ACL", "USERS").StringSlice()
		if err != nil {
			return fmt.Errorf("ACL USERS: %w", err)
		}
		for start := 0; start < len(all); start += delUserBatch {
			batch := all[start:min(start+delUserBatch, len(all))]
			if err := node.Do(ctx, append([]any{"ACL", "DELUSER"}, batch...)...).Err(); err != nil {
				return fmt.Errorf("ACL DELUSER: %w", err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, u := range users {
			if id, ok := names[u]; ok {
				deleted[id]++
			}
		}
		return nil
	})
	for id := range out {
		out[id] = RedisUserResult{Deleted: deleted[id], Nodes: nodes}
	}
	if err != nil {
		return out, fmt.Errorf("delete the Redis users of %d sandboxes: %w", len(ids), err)
	}
	return out, nil
}

// SandboxRedisUsers lists the ids of the sandbox ACL users of this database (named
// keys.ACLUser) on every node; empty in shared Redis mode.
func (p *Provisioner) SandboxRedisUsers(ctx context.Context) ([]string, error) {
	if !p.redisUsers() {
		return nil, nil
	}
	seen := map[string]bool{}
	var mu sync.Mutex
	_, err := forEachNode(ctx, p.rdb, func(ctx context.Context, node redis.UniversalClient) error {
		users, err := node.Do(ctx, "ACL", "USERS").StringSlice()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, u := range users {
			if id, ok := keys.ParseACLUser(u, p.redisDB()); ok {
				seen[id] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ACL USERS: %w", err)
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	return ids, nil
}

// RefreshRedisUserRules sets the rules of the sandboxes' ACL users again on every node, so
// each user gets exactly keys.SandboxACLRules ("-@all" first) and a user made under older
// rules is brought in line (a rule refused later, such as Lua, must not stay allowed until the
// sandbox's next connect), and returns how many users it set.
//
// On a node that has the user it sets the rules without "reset" and without a password, so
// the user keeps its password and its connections. A node that lacks a user another node has
// (one that joined the cluster later: ACL users exist per node, and go-redis never copies
// them) gets the user as that node has it: its on/off flag and its password hashes (ACL
// GETUSER there), so the sandbox's worker authenticates on every node. A user no node has
// (deleted by a teardown since the caller listed it) is not created again.
//
// Round trips: one ACL USERS per node, one pipeline of ACL SETUSER per node; and when a node
// lacks users, one pipeline of ACL GETUSER on the nodes they are copied from, before and
// after. The one after closes the race with a teardown: a user deleted from its source while
// it was being copied is deleted again everywhere (DeleteRedisUsers). A teardown whose
// deletion straddles the copy on other nodes can still leave a copy behind; the orphan finder
// reports it (resource type redis_user).
func (p *Provisioner) RefreshRedisUserRules(ctx context.Context, ids []string) (int, error) {
	if !p.redisUsers() || len(ids) == 0 {
		return 0, nil
	}
	rules := make(map[string][]any, len(ids))  // id -> its rules, after the user's name
	names := make(map[string]string, len(ids)) // user name -> id
	for _, id := range ids {
		r, err := appendRules(nil, id, p.allowSelect())
		if err != nil {
			return 0, err
		}
		rules[id] = r
		names[p.RedisUserName(id)] = id
	}

	// Which node has which user.
	var mu sync.Mutex
	present := map[string]map[string]bool{} // node address -> ids of the users it has
	nodes := map[string]redis.UniversalClient{}
	_, err := forEachNode(ctx, p.rdb, func(ctx context.Context, node redis.UniversalClient) error {
		users, err := node.Do(ctx, "ACL", "USERS").StringSlice()
		if err != nil {
			return err
		}
		has := map[string]bool{}
		for _, u := range users {
			if id, ok := names[u]; ok {
				has[id] = true
			}
		}
		mu.Lock()
		defer mu.Unlock()
		present[nodeAddr(node)], nodes[nodeAddr(node)] = has, node
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ACL USERS (refresh %d users): %w", len(ids), err)
	}
	source := map[string]string{} // id -> the address of a node that has its user
	lacking := map[string]bool{}  // ids some node lacks
	for addr, has := range present {
		for _, id := range ids {
			if has[id] {
				source[id] = addr
			} else {
				lacking[id] = true
			}
		}
	}
	var copied map[string]aclUser
	if len(lacking) > 0 {
		if copied, err = p.readRedisUsers(ctx, nodes, source, lacking); err != nil {
			return 0, err
		}
	}

	_, err = forEachNode(ctx, p.rdb, func(ctx context.Context, node redis.UniversalClient) error {
		has := present[nodeAddr(node)] // nil for a node that joined since: copies only
		pipe := node.Pipeline()
		for id, r := range rules {
			user := p.RedisUserName(id)
			switch u, ok := copied[id]; {
			case has[id]:
				pipe.Do(ctx, append([]any{"ACL", "SETUSER", user}, r...)...)
			case ok:
				pipe.Do(ctx, append(u.setUserArgs(user), r...)...)
			}
		}
		if pipe.Len() == 0 {
			return nil
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("ACL SETUSER (refresh %d users): %w", len(ids), err)
	}
	if len(copied) > 0 {
		again, err := p.readRedisUsers(ctx, nodes, source, lacking)
		if err != nil {
			return 0, err
		}
		var gone []string
		for id := range copied {
			if _, ok := again[id]; !ok {
				gone = append(gone, id)
			}
		}
		if len(gone) > 0 {
			if _, err := p.DeleteRedisUsers(ctx, gone); err != nil {
				return 0, err
			}
		}
	}
	return len(source), nil
}

// nodeAddr names a node of forEachNode: its address, or "" for a client that is not a
// cluster node's.
func nodeAddr(node redis.UniversalClient) string {
	if c, ok := node.(*redis.Client); ok {
		return c.Options().Addr
	}
	return ""
}

// aclUser is what a node that has a sandbox's user says of it, for a node that lacks it.
type aclUser struct {
	on        bool
	passwords []string // SHA-256 hashes, hex
}

// setUserArgs is the ACL SETUSER that makes the user on another node as it is here, before
// its rules.
func (u aclUser) setUserArgs(name string) []any {
	args := []any{"ACL", "SETUSER", name, "reset", "off"}
	if u.on {
		args[4] = "on"
	}
	for _, h := range u.passwords {
		args = append(args, "#"+h)
	}
	return args
}

// readRedisUsers reads, with ACL GETUSER on the node source names, the users of ids that
// have a source, one pipeline per source node; a user the source no longer has is left out.
func (p *Provisioner) readRedisUsers(ctx context.Context, nodes map[string]redis.UniversalClient, source map[string]string, ids map[string]bool) (map[string]aclUser, error) {
	bySource := map[string][]string{}
	for id := range ids {
		if addr, ok := source[id]; ok {
			bySource[addr] = append(bySource[addr], id)
		}
	}
	out := map[string]aclUser{}
	for addr, group := range bySource {
		pipe := nodes[addr].Pipeline()
		cmds := make([]*redis.Cmd, len(group))
		for i, id := range group {
			cmds[i] = pipe.Do(ctx, "ACL", "GETUSER", p.RedisUserName(id))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("ACL GETUSER on %s: %w", addr, err)
		}
		for i, id := range group {
			v, err := cmds[i].Result()
			if errors.Is(err, redis.Nil) {
				continue // deleted since ACL USERS
			}
			u, err := parseACLUser(v, err)
			if err != nil {
				return nil, fmt.Errorf("ACL GETUSER %s on %s: %w", p.RedisUserName(id), addr, err)
			}
			out[id] = u
		}
	}
	return out, nil
}

// parseACLUser reads the flags and passwords of an ACL GETUSER reply: a map in RESP3, a flat
// list of names and values in RESP2.
func parseACLUser(v any, err error) (aclUser, error) {
	if err != nil {
		return aclUser{}, err
	}
	fields := map[string]any{}
	switch r := v.(type) {
	case map[any]any:
		for k, v := range r {
			if name, ok := k.(string); ok {
				fields[name] = v
			}
		}
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			if name, ok := r[i].(string); ok {
				fields[name] = r[i+1]
			}
		}
	default:
		return aclUser{}, fmt.Errorf("unexpected reply %T", v)
	}
	flags, ok1 := fields["flags"].([]any)
	passwords, ok2 := fields["passwords"].([]any)
	if !ok1 || !ok2 {
		return aclUser{}, errors.New("reply without flags or passwords")
	}
	var u aclUser
	for _, f := range flags {
		if f == "on" {
			u.on = true
		}
	}
	for _, h := range passwords {
		s, ok := h.(string)
		if !ok {
			return aclUser{}, fmt.Errorf("password hash of type %T", h)
		}
		u.passwords = append(u.passwords, s)
	}
	return u, nil
}
