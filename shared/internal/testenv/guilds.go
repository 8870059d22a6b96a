package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// RegisterTestGuilds registers guilds as test guilds in the migrated database of pool, as an
// admin does with `sandbox guilds register`: a sandbox may map only registered test guilds.
// Guilds registered already stay as they are.
func RegisterTestGuilds(t testing.TB, pool *pgxpool.Pool, guilds ...string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `INSERT INTO sandbox_control.test_guilds (guild_id, note, registered_by)
		SELECT g, 'registered by the test', 'test' FROM unnest($1::text[]) AS g ON CONFLICT (guild_id) DO NOTHING`, guilds)
	if err != nil {
		t.Fatalf("testenv: register test guilds %v: %v", guilds, err)
	}
}
