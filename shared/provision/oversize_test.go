package provision_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// BenchmarkSwitchOffOversizedRoles is the cost of the disk share in a cleanup run: the read of
// every sandbox schema's size, none above the limit, against listing the schemas alone (the
// baseline), over 0 and 500 schemas of two tables each (with an index each: what the size
// query sums over); and the read of one schema's whole size among them, a template check's.
func BenchmarkSwitchOffOversizedRoles(b *testing.B) {
	for _, schemas := range []int{0, 500} {
		b.Run(fmt.Sprintf("schemas=%d", schemas), func(b *testing.B) {
			e := setup(b)
			ctx := context.Background()
			var one []string // the id of one of the schemas, for a template check's read
			for range schemas {
				id := sandbox.NewID()
				one = []string{id}
				s := sandbox.SchemaName(id)
				if _, err := e.pool.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA %[1]s;
					CREATE TABLE %[1]s.a (id int PRIMARY KEY, v text); CREATE TABLE %[1]s.b (id int PRIMARY KEY, v text);
					INSERT INTO %[1]s.a SELECT g, 'x' FROM generate_series(1, 10) g`, s)); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("list", func(b *testing.B) {
				for b.Loop() {
					if ids, err := e.p.SandboxSchemas(ctx); err != nil || len(ids) != schemas {
						b.Fatalf("%d schemas, %v", len(ids), err)
					}
				}
			})
			b.Run("one", func(b *testing.B) {
				for b.Loop() {
					if sizes, err := e.p.SchemaSizes(ctx, one); err != nil || len(sizes) != len(one) {
						b.Fatalf("%v %v", sizes, err)
					}
				}
			})
			b.Run("measure", func(b *testing.B) {
				for b.Loop() {
					res, err := e.p.SwitchOffOversizedRoles(ctx, sandbox.SchemaSizeLimit, time.Second)
					if err != nil || len(res.SwitchedOff)+len(res.Unmeasured) != 0 {
						b.Fatalf("%+v %v", res, err)
					}
				}
			})
		})
	}
}
