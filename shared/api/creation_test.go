package api_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/cleanup"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// provisionerFunc adapts a function to controlplane.Provisioner.
type provisionerFunc func(ctx context.Context, id string) error

func (f provisionerFunc) Provision(ctx context.Context, id string) error { return f(ctx, id) }

// teardownOf is the real teardown (shared/cleanup) over the env's stores.
func teardownOf(e *env) *cleanup.Service {
	s, err := cleanup.New(cleanup.Options{Manager: e.manager, Resources: e.resources, Redis: e.control, WorkerRedis: e.rdb, DropLockTimeout: time.Second})
	if err != nil {
		panic(err)
	}
	return s
}

// PostgreSQL becomes unreachable in the middle of a creation (after the row exists, while the
// schema is provisioned): the API answers 503 with Retry-After, and nothing stays in creating:
// the creation's lease went with its connection, so the next cleanup run takes it at once,
// not 30 minutes later.
func TestCreateCutMidwayAnswers503AndLeavesNothingCreating(t *testing.T) {
	e := newEnv(t, envOptions{
		proxy:    true,
		teardown: func(e *env) api.Teardown { return teardownOf(e) },
		provisioner: func(e *env, p controlplane.Provisioner) controlplane.Provisioner {
			return provisionerFunc(func(ctx context.Context, id string) error {
				e.proxy.Cut() // the database goes away between the row and the schema
				return p.Provision(ctx, id)
			})
		},
	})
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes", body: `{"name":"cut-short","ttl":"1h","guilds":["` + guild1 + `"]}`, principal: alice})
	wantProblem(t, r, 503, sandbox.CodeUnavailable, "")
	if r.headers["Retry-After"] == "" {
		t.Errorf("a 503 without Retry-After: %v", r.headers)
	}
	e.proxy.Restore()

	ctx := context.Background()
	var id, status string
	if err := e.direct.QueryRow(ctx, `SELECT id, status FROM sandbox_control.sandboxes WHERE name = 'cut-short'`).Scan(&id, &status); err != nil {
		t.Fatal(err)
	}
	// The server ends the cut session, and with it the creation lease, as soon as it sees the
	// connection gone; on a busy machine that can take a moment. Wait for it (the next
	// scheduled run would simply find it then).
	lease, err := pgx.ConnectConfig(ctx, e.direct.Config().ConnConfig.Copy())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lease.Close(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var free bool
		if err := lease.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, controlplane.CreationLockClass, id).Scan(&free); err != nil {
			t.Fatal(err)
		}
		if free {
			if _, err := lease.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, controlplane.CreationLockClass, id); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cut creation's lease is still held 10 s after the cut")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A fresh cleanup run (its own stores, as the scheduled function has) reclaims it now.
	m := controlplane.NewManager(e.direct, controlplane.Options{Limits: sandbox.DefaultLimits(), Routes: e.cache})
	svc, err := cleanup.New(cleanup.Options{Manager: m, Resources: provision.New(e.direct, e.rdb, "sandbox_template"), Redis: e.control, WorkerRedis: e.rdb})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := svc.Run(ctx, cleanup.RunOptions{})
	if err != nil {
		t.Fatalf("cleanup run: %v (%+v)", err, rep)
	}
	var after string
	if err := e.direct.QueryRow(ctx, `SELECT status FROM sandbox_control.sandboxes WHERE id = $1`, id).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != string(sandbox.StatusDestroyed) {
		t.Fatalf("after the cut (%s) and one cleanup run the sandbox is %s, want destroyed (report %+v)", status, after, rep)
	}
	var mappings, creating int
	_ = e.direct.QueryRow(ctx, `SELECT count(*) FROM sandbox_control.guild_mappings`).Scan(&mappings)
	_ = e.direct.QueryRow(ctx, `SELECT count(*) FROM sandbox_control.sandboxes WHERE status = 'creating'`).Scan(&creating)
	if mappings != 0 || creating != 0 {
		t.Fatalf("left behind: %d mappings, %d creating", mappings, creating)
	}
}

// A provisioning failure with the database up is compensated within the request: the answer
// carries the sandbox as the teardown left it, destroyed, and nothing of it remains.
func TestFailedCreationIsCompensatedAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{
		teardown: func(e *env) api.Teardown { return teardownOf(e) },
		provisioner: func(e *env, p controlplane.Provisioner) controlplane.Provisioner {
			return provisionerFunc(func(ctx context.Context, id string) error {
				if err := p.Provision(ctx, id); err != nil {
					return err
				}
				return errors.New("the stream's consumer group could not be created")
			})
		},
	})
	r := e.do(t, call{method: "POST", path: "/v1/sandboxes", body: `{"name":"doomed","ttl":"1h","guilds":["` + guild1 + `"]}`, principal: alice})
	p := wantProblem(t, r, 500, sandbox.CodeProvisioningFailed, "")
	if p.Sandbox == nil || p.Sandbox.Status != string(sandbox.StatusDestroyed) {
		t.Fatalf("the answer's sandbox: %+v", p.Sandbox)
	}
	res, err := e.resources.Inspect(context.Background(), p.Sandbox.ID)
	if err != nil || res.SchemaExists || res.RoleExists || res.StreamExists || res.RedisUserExists {
		t.Fatalf("left behind: %+v %v", res, err)
	}
}
