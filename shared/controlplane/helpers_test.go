package controlplane_test

import (
	"context"
	"testing"

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
