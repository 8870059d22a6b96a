package cleanup

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// A sandbox's session whose transaction has been open longer than the limit
// (CLEANUP_MAX_SANDBOX_TRANSACTION) is ended by the scheduled run, idle in its transaction or
// running a statement: an open transaction keeps vacuum from the whole database, the control
// plane's tables included, and the role's own settings cannot bound it. The sandbox's other
// sessions, the control plane's own long transaction, and a dry run end nothing.
func TestRunEndsLongSandboxTransactions(t *testing.T) {
	e := setup(t, envConfig{options: func(o *Options) { o.MaxTransaction = time.Nanosecond }})
	ctx := context.Background()
	sb := e.create(t, "long-xact", time.Hour)
	creds, err := e.p.RotateCredentials(ctx, sb.ID, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	worker := func() *pgx.Conn {
		conn, err := testenv.ConnectAs(t, e.workerURL, sandbox.RoleName(sb.ID), creds.DatabasePassword)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	idle, running, quiet := worker(), worker(), worker()
	if _, err := idle.Exec(ctx, "BEGIN; SELECT 1"); err != nil {
		t.Fatal(err)
	}
	pid := running.PgConn().PID()
	slept := make(chan error, 1)
	go func() { _, err := running.Exec(ctx, "SELECT pg_sleep(120)"); slept <- err }()
	deadline := time.Now().Add(30 * time.Second)
	for state := ""; state != "active"; {
		if time.Now().After(deadline) {
			t.Fatalf("the sleeping session is %q after 30 s, want active", state)
		}
		if err := e.workers.QueryRow(ctx, `SELECT coalesce(state, '') FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&state); err != nil {
			t.Fatal(err)
		}
	}
	control, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = control.Rollback(ctx) }()
	if _, err := control.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}

	if rep, err := e.s.Run(ctx, RunOptions{DryRun: true}); err != nil || rep.TransactionsEnded != 0 {
		t.Fatalf("dry run: ended %d, %v", rep.TransactionsEnded, err)
	}
	if _, err := idle.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("the dry run ended the idle transaction: %v", err)
	}
	rep, err := e.s.Run(ctx, RunOptions{})
	if err != nil || rep.TransactionsEnded != 2 {
		t.Fatalf("run: ended %d, %v; want the idle and the running session", rep.TransactionsEnded, err)
	}
	if _, err := idle.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the session idle in its transaction still answers")
	}
	if err := <-slept; err == nil {
		t.Error("the running statement completed")
	}
	if _, err := quiet.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("the session without a transaction was ended: %v", err)
	}
	if _, err := control.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("the control plane's own transaction was ended: %v", err)
	}
}

// A sandbox's Redis user that holds more connections on one node than a sandbox may
// (sandbox.RedisConnectionLimit) is switched off by the scheduled run and its connections
// closed: Redis bounds connections per server only, so one worker could otherwise keep every
// other client out of the sandboxes' server. A user at the limit, another sandbox's user and
// a dry run are left alone; later runs keep the user off; the sandbox's next connect switches
// it on again.
func TestRunSwitchesOffARedisUserThatCrowdsTheServer(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	crowd := e.create(t, "crowd", time.Hour)
	quiet := e.create(t, "quiet", time.Hour)
	_, crowdCreds := e.worker(t, crowd.ID)
	quietWorker, _ := e.worker(t, quiet.ID)
	conns := e.workerConnections(t, crowd.ID, crowdCreds, sandbox.RedisConnectionLimit)
	if err := quietWorker.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if rep := e.run(t, RunOptions{}); len(rep.RedisUsersSwitchedOff) != 0 {
		t.Fatalf("at the limit (%d connections): switched off %v", sandbox.RedisConnectionLimit, rep.RedisUsersSwitchedOff)
	}
	conns = append(conns, e.workerConnections(t, crowd.ID, crowdCreds, 1)...)
	if rep := e.run(t, RunOptions{DryRun: true}); len(rep.RedisUsersSwitchedOff) != 0 {
		t.Fatalf("a dry run switched off %v", rep.RedisUsersSwitchedOff)
	}
	if err := conns[0].Ping(ctx).Err(); err != nil {
		t.Fatalf("the dry run closed a connection: %v", err)
	}

	rep := e.run(t, RunOptions{})
	if !slices.Equal(rep.RedisUsersSwitchedOff, []string{crowd.ID}) {
		t.Fatalf("switched off %v, want only %s (%d connections, more than %d)", rep.RedisUsersSwitchedOff, crowd.ID,
			len(conns), sandbox.RedisConnectionLimit)
	}
	for i, c := range conns {
		if err := c.Ping(ctx).Err(); err == nil {
			t.Fatalf("connection %d of the crowding user still answers", i)
		}
	}
	if err := testenv.RedisClientLike(t, e.rdb, redis.UniversalOptions{
		Username: crowdCreds.RedisUser, Password: crowdCreds.RedisPassword, MaxRetries: -1}).Ping(ctx).Err(); err == nil {
		t.Fatal("a new connection authenticated as the switched-off user")
	}
	if err := quietWorker.Ping(ctx).Err(); err != nil {
		t.Errorf("the other sandbox's worker lost its connection: %v", err)
	}
	wantState := func(want provision.RedisUserState) {
		t.Helper()
		if st, err := e.p.RedisUserStateOf(ctx, crowd.ID); err != nil || st != want {
			t.Fatalf("the crowding sandbox's Redis user is in state %d (%v), want %d", st, err, want)
		}
	}
	wantState(provision.RedisUserOff)
	// The next run sets every user's rules again (RefreshRedisUserRules): the user stays off.
	if rep := e.run(t, RunOptions{}); len(rep.RedisUsersSwitchedOff) != 0 {
		t.Fatalf("the next run switched off %v", rep.RedisUsersSwitchedOff)
	}
	wantState(provision.RedisUserOff)

	// Connect switches it on again, with new passwords.
	again, creds := e.worker(t, crowd.ID)
	wantState(provision.RedisUserOn)
	if err := again.Ping(ctx).Err(); err != nil {
		t.Fatalf("after connect, the worker cannot authenticate as %s: %v", creds.RedisUser, err)
	}
}

// A sandbox whose schema takes more disk than a sandbox may (Options.SchemaSizeLimit; here
// 1 MiB) has its role's password taken away and its sessions ended by the scheduled run:
// PostgreSQL has no quota per schema, so one worker's rows could otherwise fill the disk every
// sandbox writes to. A sandbox under the limit keeps its session. A worker that keeps its
// large table locked (ACCESS EXCLUSIVE, in a transaction it keeps open), which keeps every
// size read from that table, keeps neither itself nor the others from being measured: the
// locking session is ended, and its schema read and switched off too. A dry run does
// nothing; the next run takes the password again while the schema is still above; connect
// sets a new one, and after a TRUNCATE the next run leaves the role alone.
func TestRunTakesThePasswordOfARoleWhoseSchemaTakesTooMuchDisk(t *testing.T) {
	e, big, small := setupShare(t, "disk", func(o *Options) { o.SchemaSizeLimit = shareLimit })
	ctx := context.Background()
	locker := e.create(t, "disk-locker", time.Hour)
	exec := func(conn *pgx.Conn, sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	bigWorker, bigPassword := e.login(t, big)
	exec(bigWorker, "CREATE TABLE "+big.SchemaName+".rows AS SELECT repeat('x', 1000) AS v FROM generate_series(1, 3000)")
	smallWorker, _ := e.login(t, small)
	exec(smallWorker, "CREATE TABLE "+small.SchemaName+".rows AS SELECT 1 AS v")
	lockerWorker, _ := e.login(t, locker)
	exec(lockerWorker, "CREATE TABLE "+locker.SchemaName+".rows AS SELECT repeat('x', 1000) AS v FROM generate_series(1, 3000)")
	exec(lockerWorker, "BEGIN")
	exec(lockerWorker, "LOCK TABLE "+locker.SchemaName+".rows IN ACCESS EXCLUSIVE MODE")

	if rep := e.run(t, RunOptions{DryRun: true}); len(rep.DatabaseRolesSwitchedOff) != 0 {
		t.Fatalf("a dry run switched off %v", rep.DatabaseRolesSwitchedOff)
	}
	exec(bigWorker, "SELECT 1")
	exec(lockerWorker, "SELECT 1")
	rep := e.run(t, RunOptions{})
	want := []string{big.ID, locker.ID}
	slices.Sort(want)
	if !slices.Equal(rep.DatabaseRolesSwitchedOff, want) {
		t.Fatalf("switched off %v, want %v (the big and the locking sandbox)", rep.DatabaseRolesSwitchedOff, want)
	}
	if _, err := lockerWorker.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the session that kept its table locked still answers")
	}
	if _, err := bigWorker.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the big sandbox's session still answers")
	}
	if _, err := testenv.ConnectAs(t, e.workerURL, big.DBRole, bigPassword); err == nil {
		t.Error("a login with the big sandbox's password still succeeds")
	}
	exec(smallWorker, "SELECT 1")
	if rep := e.run(t, RunOptions{}); !slices.Equal(rep.DatabaseRolesSwitchedOff, want) {
		t.Fatalf("the next run switched off %v, want %v again (their schemas are still above)", rep.DatabaseRolesSwitchedOff, want)
	}

	again, _ := e.login(t, big) // connect sets a new password
	exec(again, "TRUNCATE "+big.SchemaName+".rows")
	e.workerExec(t, "DROP TABLE "+locker.SchemaName+".rows")
	if rep := e.run(t, RunOptions{}); len(rep.DatabaseRolesSwitchedOff) != 0 {
		t.Fatalf("after the truncate: switched off %v", rep.DatabaseRolesSwitchedOff)
	}
	exec(again, "SELECT 1")
}

// What a sandbox's objects take in the system catalogs counts in its disk share, and the run
// records it in the usage hash, where a page of usage reads it (it does not read the catalogs
// live). A function body of 1.5 MB, which no relation holds, takes the role's password at a
// limit of 1 MiB; a small sandbox gets its few kB recorded; a dry run records nothing.
func TestRunCountsAndRecordsWhatSchemasTakeInTheCatalogs(t *testing.T) {
	e, big, small := setupShare(t, "catalog", func(o *Options) { o.SchemaSizeLimit = shareLimit })
	ctx := context.Background()
	worker, _ := e.login(t, big)
	if _, err := worker.Exec(ctx, `DO $$ BEGIN EXECUTE format('CREATE FUNCTION body() RETURNS int LANGUAGE sql AS %L',
		'SELECT 1 /*' || (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 50000) g) || '*/'); END $$`); err != nil {
		t.Fatal(err)
	}
	usage := func() map[string]provision.RedisUsage {
		t.Helper()
		u, err := e.p.RedisUsage(ctx, []string{big.ID, small.ID})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}

	if rep := e.run(t, RunOptions{DryRun: true}); len(rep.DatabaseRolesSwitchedOff) != 0 || usage()[big.ID].Catalog != nil {
		t.Fatalf("a dry run switched off %v or recorded %v", rep.DatabaseRolesSwitchedOff, usage()[big.ID].Catalog)
	}
	if rep := e.run(t, RunOptions{}); !slices.Equal(rep.DatabaseRolesSwitchedOff, []string{big.ID}) {
		t.Fatalf("switched off %v, want only the sandbox whose function body takes 1.5 MB", rep.DatabaseRolesSwitchedOff)
	}
	u := usage()
	if c := u[big.ID].Catalog; c == nil || *c < 1_500_000 || u[big.ID].CatalogCountedAt == nil {
		t.Errorf("recorded for the big sandbox: %v at %v, want at least 1.5 MB", c, u[big.ID].CatalogCountedAt)
	}
	if c := u[small.ID].Catalog; c == nil || *c <= 0 || *c >= shareLimit {
		t.Errorf("recorded for the small sandbox: %v, want its few kB", c)
	}
}
