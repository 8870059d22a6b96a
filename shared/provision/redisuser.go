package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
)

// forEachNode runs fn on every node of a cluster client (primaries and replicas: ACL users
// exist per node, and a worker may read from a replica), or on the client itself otherwise,
// and returns how many nodes it ran on.
func forEachNode(ctx context.Context, rdb redis.UniversalClient, fn func(ctx context.Context, node redis.UniversalClient) error) (int, error) {
	if cluster, ok := rdb.(*redis.ClusterClient); ok {
		var n atomic.Int32
		err := cluster.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
			n.Add(1)
			return fn(ctx, node)
		})
		return int(n.Load()), err
	}
	return 1, fn(ctx, rdb)
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
	_, err = forEachNode(ctx, p.rdb, func(ctx context.Context, node redis.UniversalClient) error {
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

// RedisUserExists reports whether the sandbox's Redis ACL user exists (on the node a plain
// command reaches). Always false in shared Redis mode.
func (p *Provisioner) RedisUserExists(ctx context.Context, id string) (bool, error) {
	if !p.redisUsers() {
		return false, nil
	}
	err := p.rdb.Do(ctx, "ACL", "GETUSER", p.RedisUserName(id)).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil
	}
	return false, fmt.Errorf("ACL GETUSER %s: %w", p.RedisUserName(id), err)
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

// DeleteRedisUsers deletes the ACL users of the sandboxes ids on every node, whatever their
// number, with one ACL USERS (to say which existed) and one ACL DELUSER per delUserBatch users
// per node, and returns what it found per id. ACL DELUSER also closes every connection
// authenticated as a user, so a worker still connected loses its session at once. Every name
// is deleted, listed or not, so a user created after the listing goes too. Idempotent: a
// user already gone counts as deleted nowhere. On an error the users may be deleted on some
// nodes only; calling it again completes the job.
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
	nodes, err := forEachNode(ctx, p.rdb, func(ctx context.Context, node redis.UniversalClient) error {
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

// RefreshRedisUserRules sets the rules of the sandboxes' existing ACL users again on every
// node, without "reset" and without a password, so each user keeps its password and its
// connections and gets exactly keys.SandboxACLRules ("-@all" first). It brings a user made
// under older rules in line (a rule refused later, such as Lua, must not stay allowed until
// the sandbox's next connect). One pipeline per node; it returns how many users it set.
// Called with the users ACL USERS listed: one deleted meanwhile (a teardown) comes back
// "off", without a password, nobody able to use it, and the orphan finder removes it.
func (p *Provisioner) RefreshRedisUserRules(ctx context.Context, ids []string) (int, error) {
	if !p.redisUsers() || len(ids) == 0 {
		return 0, nil
	}
	cmds := make([][]any, 0, len(ids))
	for _, id := range ids {
		args, err := appendRules([]any{"ACL", "SETUSER", p.RedisUserName(id)}, id, p.allowSelect())
		if err != nil {
			return 0, err
		}
		cmds = append(cmds, args)
	}
	_, err := forEachNode(ctx, p.rdb, func(ctx context.Context, node redis.UniversalClient) error {
		pipe := node.Pipeline()
		for _, args := range cmds {
			pipe.Do(ctx, args...)
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("ACL SETUSER (refresh %d users): %w", len(ids), err)
	}
	return len(ids), nil
}
