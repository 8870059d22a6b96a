package cleanup

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
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
