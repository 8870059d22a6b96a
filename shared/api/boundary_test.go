package api_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/cleanup"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
)

// The health check's attack of the boundary issue: the sandbox's role swaps its first table
// for a view over a function, adds a row-level security policy over it and triggers on the
// provisioned tables, and the owner asks for the health check again and again. The function
// never runs as anyone but the role, and nothing it would grant itself appears.
func TestSandboxHealthRunsNoSandboxCode(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.create(t, alice, "alpha", guild1)
	c := decode[apiwire.ConnectResponse](t, e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", principal: alice}))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	traps := testenv.ArmTraps(t, conn, c.Database.Schema, c.Database.Role)

	for range 10 {
		r := e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha/health", principal: alice})
		wantStatus(t, r, 200)
		h := decode[apiwire.SandboxHealth](t, r)
		for _, check := range h.Checks {
			if check.Name == "database" && !fine(check) {
				t.Fatalf("database check %+v", check)
			}
		}
	}
	// The API's other reads of the sandbox (status, list, route explanation) too.
	wantStatus(t, e.do(t, call{method: "GET", path: "/v1/sandboxes/alpha", principal: alice}), 200)
	wantStatus(t, e.do(t, call{method: "GET", path: "/v1/sandboxes", principal: alice}), 200)
	traps.RequireNotSprung(t, e.pool)
	if seen := traps.Seen(t); len(seen) != 0 {
		t.Fatalf("the spy ran %d times", len(seen))
	}
}

// connect hands out a Redis user of the sandbox's own, confined to its namespace, and
// records who rotated which credentials, without a secret.
func TestConnectHandsOutAConfinedRedisUserAndIsAudited(t *testing.T) {
	e := newEnv(t, envOptions{})
	sb := e.create(t, alice, "alpha", guild1)
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", principal: alice})
	wantStatus(t, r, 200)
	c := decode[apiwire.ConnectResponse](t, r)
	rd := c.Redis
	if rd.Access != "acl" || rd.Username != e.resources.RedisUserName(sb.ID) || len(rd.Password) < 32 || rd.Warning != "" ||
		c.Env["SANDBOX_REDIS_USERNAME"] != rd.Username || c.Env["SANDBOX_REDIS_PASSWORD"] != rd.Password {
		t.Fatalf("connect redis: %+v env %v", rd, c.Env)
	}
	ctx := context.Background()
	// On a Redis Cluster the worker needs a cluster client (the answer does not say so yet):
	// testenv's, on the Redis in use, whose nodes the answer's address must be one of.
	if !slices.Contains(testenv.RedisAddrsOf(t, e.rdb), rd.Addr) {
		t.Errorf("connect redis address %s, want one of %v", rd.Addr, testenv.RedisAddrsOf(t, e.rdb))
	}
	worker := testenv.RedisClientLike(t, e.rdb, redis.UniversalOptions{Username: rd.Username, Password: rd.Password})
	if _, err := worker.XReadGroup(ctx, &redis.XReadGroupArgs{Group: rd.ConsumerGroup, Consumer: "w", Streams: []string{rd.Stream, ">"}, Count: 1, Block: -1}).Result(); err != nil && err != redis.Nil {
		t.Fatalf("the worker cannot read its stream: %v", err)
	}
	if err := worker.Set(ctx, keys.RouteCache(guild3), "sandbox:"+sb.ID+":running", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("the worker wrote the route cache: %v", err)
	}

	entries, err := e.manager.AuditLog(ctx, sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, en := range entries {
		if en.Action != controlplane.ActionConnect {
			continue
		}
		found = true
		var d map[string]any
		if err := json.Unmarshal(en.Details, &d); err != nil {
			t.Fatal(err)
		}
		rotated, _ := d["rotated"].([]any)
		if en.Actor != alice || len(rotated) != 2 || d["redis_access"] != "acl" {
			t.Errorf("connect audit entry: actor %s details %s", en.Actor, en.Details)
		}
		for _, secret := range []string{c.Database.Password, rd.Password} {
			if strings.Contains(string(en.Details), secret) {
				t.Error("the audit entry holds a password")
			}
		}
	}
	if !found {
		t.Fatalf("no %s audit entry: %v", controlplane.ActionConnect, actions(entries))
	}
}

// rotationHooks runs start at the start of a credential rotation, and held where the
// rotation has the sandbox held (provision.Hold) and sets the Redis user, each once.
type rotationHooks struct {
	api.Resources
	start, held *func()
}

func (r rotationHooks) RotateCredentials(ctx context.Context, id string, validUntil time.Time, hold provision.Hold) (provision.Credentials, error) {
	once(r.start)
	spy := func(ctx context.Context, set func() error) error {
		return hold(ctx, func() error {
			once(r.held)
			return set()
		})
	}
	return r.Resources.RotateCredentials(ctx, id, validUntil, spy)
}

// once runs *f and forgets it.
func once(f *func()) {
	if h := *f; h != nil {
		*f = nil
		h()
	}
}

// A teardown that begins while a connect rotates the credentials must not leave what the
// connect made behind it. Connect checked the status and then rotated: a teardown that went
// past deleting the Redis user in between had the rotation set the user again on every node,
// with a password the caller held, in the namespace of a destroyed sandbox (keys written
// there outlive it, and only an admin's orphan removal took the user away). Here the teardown
// starts at one of two points of the rotation and runs until it waits: at its drop, held by a
// table lock after the Redis user is gone, or on the sandbox's row, which the rotation holds
// while it sets the user. Whatever connect answers, nothing of the sandbox is left afterwards.
func TestConnectCannotOutliveATeardownThatOvertakesIt(t *testing.T) {
	for _, c := range []struct {
		name       string
		insideHold bool
		want       int // connect's answer
	}{
		{"the teardown starts before the rotation", false, 409},
		{"the teardown starts while the rotation holds the sandbox", true, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			var start, held func()
			e := newEnv(t, envOptions{resources: func(e *env, r api.Resources) api.Resources {
				return rotationHooks{Resources: r, start: &start, held: &held}
			}})
			sb := e.create(t, alice, "alpha", guild1)
			teardown, err := cleanup.New(cleanup.Options{Manager: e.manager, Resources: e.resources, Redis: e.control, WorkerRedis: e.rdb, DropLockTimeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			// The drop waits for this lock, after the Redis user is gone.
			locked, err := e.workers.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			release := func() { _ = locked.Rollback(ctx) }
			t.Cleanup(release)
			if _, err := locked.Exec(ctx, "LOCK TABLE "+pgx.Identifier{sb.Schema, "members"}.Sanitize()+" IN ACCESS SHARE MODE"); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			started := false
			runTeardown := func() {
				started = true
				go func() {
					_, err := teardown.Destroy(ctx, admin, sb.ID)
					done <- err
				}()
				// The drop waits in the sandboxes' database, the row in the control plane's.
				testenv.WaitUntil(t, "the teardown waits, at its drop or for the sandbox's row", func() bool {
					return testenv.LockWaits(e.workers, "query LIKE 'DROP SCHEMA%'") ||
						testenv.LockWaits(e.direct, "query LIKE '%sandbox_control.sandboxes%'")
				})
			}
			if c.insideHold {
				held = runTeardown
			} else {
				start = runTeardown
			}
			r := e.do(t, call{method: "POST", path: "/v1/sandboxes/alpha/connect", principal: alice})
			release()
			if !started {
				t.Fatalf("the rotation never reached the point where the teardown starts (connect answered %d): this test proves nothing", r.status)
			}
			if err := <-done; err != nil {
				t.Fatalf("teardown: %v", err)
			}
			user := e.resources.RedisUserName(sb.ID)
			for _, node := range testenv.RedisNodes(t, e.rdb) {
				users, err := node.Do(ctx, "ACL", "USERS").StringSlice()
				if err != nil {
					t.Fatal(err)
				}
				if slices.Contains(users, user) {
					t.Fatalf("the Redis user %s of the destroyed sandbox is on %s after its teardown (connect answered %d)",
						user, node.Options().Addr, r.status)
				}
			}
			wantStatus(t, r, c.want)
			if r.status == 200 {
				rd := decode[apiwire.ConnectResponse](t, r).Redis
				worker := testenv.RedisClientLike(t, e.rdb, redis.UniversalOptions{Username: rd.Username, Password: rd.Password})
				if err := worker.Ping(ctx).Err(); err == nil {
					t.Fatal("the credentials connect handed out still open Redis after the teardown")
				}
			}
		})
	}
}

func actions(entries []controlplane.AuditEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Action)
	}
	return slices.Compact(out)
}
