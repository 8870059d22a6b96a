package controlplane_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const (
	alice  = "arn:aws:iam::123456789012:user/alice"
	bob    = "arn:aws:iam::123456789012:user/bob"
	guild1 = "80351110224678912"
	guild2 = "80351110224678913"
	guild3 = "80351110224678914"
	guild4 = "80351110224678915"
)

// migrated returns a pool on a fresh, migrated database whose registered test guilds are
// guild1 to guild4.
func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, _ := testenv.Postgres(t)
	if _, err := controlplane.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	testenv.RegisterTestGuilds(t, pool, guild1, guild2, guild3, guild4)
	return pool
}

func newManager(t *testing.T, opts controlplane.Options) (*controlplane.Manager, *pgxpool.Pool) {
	t.Helper()
	pool := migrated(t)
	if opts.Limits == (sandbox.Limits{}) {
		opts.Limits = sandbox.DefaultLimits()
	}
	return controlplane.NewManager(pool, opts), pool
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// audited counts the audit entries of action.
func audited(t *testing.T, pool *pgxpool.Pool, action string) int {
	t.Helper()
	return count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log WHERE action = $1`, action)
}

func mustCreate(t *testing.T, m *controlplane.Manager, in controlplane.CreateInput) *sandbox.Sandbox {
	t.Helper()
	sb, err := m.Create(context.Background(), in.Owner, in)
	if err != nil {
		t.Fatalf("create %s: %v", in.Name, err)
	}
	return sb
}

// setStatus forces a status for transition tests, bypassing the machine on purpose.
func setStatus(t *testing.T, pool *pgxpool.Pool, id string, s sandbox.Status) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `UPDATE sandbox_control.sandboxes SET status = $2,
		destroyed_at = CASE WHEN $2 = 'destroyed' THEN now() END WHERE id = $1`, id, string(s))
	if err != nil {
		t.Fatal(err)
	}
}

// mappingBeforeCommit does what a mapping of guild to the sandbox does before its commit: the
// check of the registration (checkRegistered, which holds it FOR SHARE) and the insert.
func mappingBeforeCommit(guild string) func(pgx.Tx, *sandbox.Sandbox) error {
	return func(tx pgx.Tx, sb *sandbox.Sandbox) error {
		ctx := context.Background()
		if _, err := tx.Exec(ctx, `SELECT 1 FROM sandbox_control.test_guilds WHERE guild_id = $1 FOR SHARE`, guild); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO sandbox_control.guild_mappings (guild_id, sandbox_id, created_by) VALUES ($1, $2, 'test')`, guild, sb.ID)
		return err
	}
}

// crossing forces one order of two operations on the same rows: first does in a transaction
// what the first operation does before its commit, second runs the other operation through
// the Manager meanwhile, and once second waits for a lock (waits matches its statement in
// pg_stat_activity) the first commits.
type crossing struct {
	name   string
	first  func(pgx.Tx, *sandbox.Sandbox) error
	second func(*controlplane.Manager, *sandbox.Sandbox) error
	waits  string
	// want is what second returns once the first committed.
	want error
}

// run forces the order on a fresh Manager with one sandbox of alice's, checks what second
// returned, and returns the pool for the checks of what is left.
func (c crossing) run(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	m, pool := newManager(t, controlplane.Options{})
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "mapper", Owner: alice})
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // after the commit: ErrTxClosed
	if err := c.first(tx, sb); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.second(m, sb) }()
	testenv.WaitForLockWait(t, pool, "the second operation waits for the first", c.waits)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, c.want) {
		t.Fatalf("the second operation after the first committed: %v, want %v", err, c.want)
	}
	return pool
}
