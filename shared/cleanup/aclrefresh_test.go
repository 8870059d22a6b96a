package cleanup

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// A sandbox's Redis user made under older rules (here: Lua allowed, as it was) gets today's
// rules at the next scheduled run, keeping its password and its open connection; the user of
// a destroyed sandbox is not set again (teardown removed it; the orphan finder owns what is
// left), and a dry run changes nothing.
func TestRunSetsOlderRedisUsersRulesAgain(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	sb := e.create(t, "acl-refresh", time.Hour)
	worker, creds := e.worker(t, sb.ID)
	user := e.p.RedisUserName(sb.ID)
	// The older rules, on every node (ACL users are per node).
	nodes := testenv.RedisNodes(t, e.rdb)
	for _, node := range nodes {
		if err := node.Do(ctx, "ACL", "SETUSER", user, "+@scripting", "+@hyperloglog").Err(); err != nil {
			t.Fatal(err)
		}
	}
	own := []string{keys.Namespace(sb.ID) + "k"}
	if err := worker.Eval(ctx, "return 1", own).Err(); err != nil {
		t.Fatalf("the older rules allow Lua: %v", err)
	}
	if err := worker.PFAdd(ctx, own[0], "a").Err(); err != nil {
		t.Fatalf("the older rules allow HyperLogLog: %v", err)
	}
	// luaOn runs Lua as the sandbox's user on each node by itself: Redis checks the rules before
	// it redirects, so a node refuses with NOPERM, or serves or redirects (MOVED) the call.
	luaOn := func(node *redis.Client) error {
		c := redis.NewClient(&redis.Options{Addr: node.Options().Addr, DB: node.Options().DB,
			Username: creds.RedisUser, Password: creds.RedisPassword, MaxRetries: -1})
		defer func() { _ = c.Close() }()
		return c.Eval(ctx, "return 1", own).Err()
	}
	for _, node := range nodes {
		if err := luaOn(node); redis.HasErrorPrefix(err, "NOPERM") {
			t.Fatalf("node %s: the older rules allow Lua: %v", node.Options().Addr, err)
		}
	}

	gone := e.create(t, "acl-refresh-gone", time.Hour)
	if _, err := e.s.Destroy(ctx, "test", gone.ID); err != nil {
		t.Fatal(err)
	}

	if _, err := e.s.Run(ctx, RunOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if err := worker.Eval(ctx, "return 1", own).Err(); err != nil {
		t.Fatalf("a dry run changed the rules: %v", err)
	}
	if _, err := e.s.Run(ctx, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := worker.Eval(ctx, "return 1", own).Err(); !redis.HasErrorPrefix(err, "NOPERM") {
		t.Fatalf("after the run, Lua: %v, want NOPERM", err)
	}
	if err := worker.PFCount(ctx, own[0]).Err(); !redis.HasErrorPrefix(err, "NOPERM") {
		t.Fatalf("after the run, PFCOUNT: %v, want NOPERM", err)
	}
	for _, node := range nodes {
		if err := luaOn(node); !redis.HasErrorPrefix(err, "NOPERM") {
			t.Errorf("after the run, Lua on node %s: %v, want NOPERM", node.Options().Addr, err)
		}
	}
	if err := worker.XAdd(ctx, &redis.XAddArgs{Stream: keys.EventStream(sb.ID), Values: []string{"t", "x"}}).Err(); err != nil {
		t.Errorf("the open connection lost its stream: %v", err)
	}
	fresh := testenv.RedisClientLike(t, e.rdb, redis.UniversalOptions{
		Username: creds.RedisUser, Password: creds.RedisPassword, MaxRetries: -1})
	defer func() { _ = fresh.Close() }()
	if err := fresh.Ping(ctx).Err(); err != nil {
		t.Errorf("the password no longer authenticates: %v", err)
	}
	if exists, err := e.p.RedisUserExists(ctx, gone.ID); err != nil || exists {
		t.Errorf("the destroyed sandbox's user: exists %v, %v", exists, err)
	}
}

// A sandbox role made before the log settings (sandbox.RoleQuietLogSettings) gets them at the
// next run, not at a dry run.
func TestRunGivesOlderRolesTheLogSettings(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	sb := e.create(t, "log-settings", time.Hour)
	role := pgx.Identifier{sandbox.RoleName(sb.ID)}.Sanitize()
	for _, name := range sandbox.RoleQuietLogSettings {
		if _, err := e.workers.Exec(ctx, "ALTER ROLE "+role+" RESET "+name); err != nil { // as an older role was made
			t.Fatal(err)
		}
	}
	settings := func() []string {
		var config []string
		if err := e.workers.QueryRow(ctx, `SELECT coalesce(rolconfig, '{}') FROM pg_catalog.pg_roles WHERE rolname = $1`,
			sandbox.RoleName(sb.ID)).Scan(&config); err != nil {
			t.Fatal(err)
		}
		return config
	}
	if got := settings(); len(got) != 0 {
		t.Fatalf("the older role has settings %v", got)
	}
	if _, err := e.s.Run(ctx, RunOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if got := settings(); len(got) != 0 {
		t.Fatalf("a dry run set %v", got)
	}
	if _, err := e.s.Run(ctx, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	got := settings()
	for _, name := range sandbox.RoleQuietLogSettings {
		if !slices.Contains(got, name+"=panic") {
			t.Errorf("after the run the role's settings are %v, want %s=panic", got, name)
		}
	}
}

// A sandbox provisioned while the control user kept its tables gets them at the next run, not
// at a dry run (provision.HandOverTables).
func TestRunHandsOlderSandboxesTheirTables(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	sb := e.create(t, "older-tables", time.Hour)
	schema := pgx.Identifier{sandbox.SchemaName(sb.ID)}.Sanitize()
	if _, err := e.workers.Exec(ctx, "ALTER TABLE "+schema+".guild_settings OWNER TO CURRENT_USER"); err != nil { // as it was made
		t.Fatal(err)
	}
	owner := func() string {
		var who string
		if err := e.workers.QueryRow(ctx, `SELECT pg_catalog.pg_get_userbyid(relowner) FROM pg_catalog.pg_class WHERE oid = $1::regclass`,
			schema+".guild_settings").Scan(&who); err != nil {
			t.Fatal(err)
		}
		return who
	}
	if _, err := e.s.Run(ctx, RunOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if got := owner(); got == sandbox.RoleName(sb.ID) {
		t.Fatal("a dry run handed the table over")
	}
	if _, err := e.s.Run(ctx, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := owner(); got != sandbox.RoleName(sb.ID) {
		t.Errorf("after the run the table is owned by %s, want the sandbox's role", got)
	}
}
