package api_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
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
			if check.Name == "database" && check.Status != api.CheckOK {
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
	if !slices.Contains(testenv.RedisAddrs(t), rd.Addr) {
		t.Errorf("connect redis address %s, want one of %v", rd.Addr, testenv.RedisAddrs(t))
	}
	worker := testenv.NewRedisClient(t, redis.UniversalOptions{DB: testenv.RedisDBOf(e.rdb), Username: rd.Username, Password: rd.Password})
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

func actions(entries []controlplane.AuditEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Action)
	}
	return slices.Compact(out)
}
