package api_test

import (
	"fmt"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// BenchmarkCreateFromTemplate measures POST /v1/sandboxes with a template of 4 tables and
// 10,000 seed rows (testenv.SeedTemplate: identity, serial and generated columns, a check,
// an index, foreign keys between the tables and to itself) through the Lambda adapter on
// local PostgreSQL and Redis: the row, mappings and audit, the clone, the copy of the rows,
// the foreign keys checked over them, the sequences moved past them, the role and its
// grants, the stream. docs/performance.md quotes it.
func BenchmarkCreateFromTemplate(b *testing.B) {
	limits := sandbox.DefaultLimits()
	limits.OwnerQuota = 1 << 30
	limits.DBReservedConnections = -1
	e := newEnv(b, envOptions{limits: limits, discardOutput: true})
	seed := testenv.SeedTemplate(b, e.workers, "tmpl_bench", 10000)
	registerTemplate(b, e, "bench-seed", "tmpl_bench", true)
	durations := benchCreate(b, e, "bench-seed")
	// One check that the rows came along: the benchmark measures a real copy.
	var got int
	if err := e.workers.QueryRow(b.Context(), fmt.Sprintf(`SELECT count(*) FROM %s.actions`,
		"sb_"+decodeID(b, e, "bench-1"))).Scan(&got); err != nil || got != seed["actions"] {
		b.Fatalf("the first sandbox holds %d actions (%v), want %d", got, err, seed["actions"])
	}
	reportPercentiles(b, durations)
}

// decodeID is the id of the sandbox named name.
func decodeID(b *testing.B, e *env, name string) string {
	b.Helper()
	sb, err := e.manager.GetByName(b.Context(), name)
	if err != nil {
		b.Fatal(err)
	}
	return sb.ID
}
