package provision_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// seeded provisions a sandbox from a seed template, with its rows, and returns its id and a
// session of its role.
func seeded(t *testing.T, e env, source string, copyRows bool) (string, int64, *pgx.Conn) {
	t.Helper()
	id := sandbox.NewID()
	copied, err := e.p.ProvisionFrom(context.Background(), id, sandbox.TemplateSource{Schema: source, CopyRows: copyRows})
	if err != nil {
		t.Fatal(err)
	}
	return id, copied, provisionedConn(t, e, id)
}

func count(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table string) int {
	t.Helper()
	var n int
	if err := q.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// The seed rows arrive whole: every row of every table, identity values kept, generated
// columns computed, foreign keys between the tables (in whatever order the tables sort, and
// to itself) valid and enforced in the clone, and every sequence past the copied values, so
// the sandbox's own first inserts just work.
func TestSeedRowsAreCopiedWithTheirKeysAndSequences(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	tables := testenv.SeedTemplate(t, e.pool, "seed_tmpl", 1000)

	id, copied, conn := seeded(t, e, "seed_tmpl", true)
	if copied != int64(tables.Total()) {
		t.Errorf("copied %d rows, the template holds %d", copied, tables.Total())
	}
	for table, n := range tables {
		if got := count(t, conn, table); got != n { // through the role, in its search_path
			t.Errorf("%s: %d rows, want %d", table, got, n)
		}
	}
	var same bool
	if err := e.pool.QueryRow(ctx, fmt.Sprintf(`SELECT
		(SELECT array_agg(a ORDER BY id)::text FROM %[1]s.actions a) = (SELECT array_agg(a ORDER BY id)::text FROM seed_tmpl.actions a)
		AND (SELECT array_agg(c ORDER BY id)::text FROM %[1]s.channels c) = (SELECT array_agg(c ORDER BY id)::text FROM seed_tmpl.channels c)`,
		pgx.Identifier{sandbox.SchemaName(id)}.Sanitize())).Scan(&same); err != nil || !same {
		t.Errorf("the clone's rows differ from the template's: %v %v", same, err)
	}

	// Sequences: GENERATED ALWAYS, BY DEFAULT and serial all continue after the seed rows.
	for _, c := range []struct{ sql, table string }{
		{`INSERT INTO guilds (name) VALUES ('new') RETURNING id`, "guilds"},
		{`INSERT INTO channels (guild_id, name) VALUES (1, 'New') RETURNING id`, "channels"},
		{`INSERT INTO actions (channel_id, body) VALUES (1, 'new') RETURNING id`, "actions"},
	} {
		var got int
		if err := conn.QueryRow(ctx, c.sql).Scan(&got); err != nil || got != tables[c.table]+1 {
			t.Errorf("%s: id %d (%v), want %d", c.sql, got, err, tables[c.table]+1)
		}
	}
	var slug string
	if err := conn.QueryRow(ctx, `SELECT slug FROM channels WHERE id = 1`).Scan(&slug); err != nil || slug != "channel-1" {
		t.Errorf("generated column: %q %v", slug, err)
	}
	// The foreign keys hold in the clone and point at its own tables.
	for _, bad := range []string{
		`INSERT INTO channels (guild_id, name) VALUES (999999, 'x')`,
		`INSERT INTO actions (channel_id, parent_id, body) VALUES (1, 999999, 'x')`,
		`DELETE FROM channels WHERE id = 1`, // actions reference it
	} {
		if _, err := conn.Exec(ctx, bad); err == nil {
			t.Errorf("%s: accepted, the foreign keys were not cloned", bad)
		}
	}
	var refs int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid
		JOIN pg_namespace n ON n.oid = r.relnamespace WHERE c.contype = 'f' AND n.nspname = $1 AND c.conrelid IN
		(SELECT oid FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1))`,
		sandbox.SchemaName(id)).Scan(&refs); err != nil || refs != 4 {
		t.Errorf("foreign keys of the clone pointing into it: %d (%v), want 4", refs, err)
	}

	// Without copy_rows the same template gives empty tables.
	_, copied, empty := seeded(t, e, "seed_tmpl", false)
	if copied != 0 {
		t.Errorf("copied %d rows without copy_rows", copied)
	}
	for table := range tables {
		if got := count(t, empty, table); got != 0 {
			t.Errorf("%s holds %d rows without copy_rows", table, got)
		}
	}
}

// The copy runs while the control user still owns every table of the new schema and before
// the sandbox's role exists, let alone has a grant or its tables: the server's statement log
// shows every copying INSERT before CREATE ROLE, before the first GRANT to the role and before
// the first table is handed to it. No code a sandbox could define can run then: there is no
// role to define it.
func TestSeedRowsAreCopiedBeforeTheRoleExists(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	testenv.SeedTemplate(t, e.pool, "seed_tmpl", 100)
	var database string
	if err := e.pool.QueryRow(ctx, "SELECT current_database()").Scan(&database); err != nil {
		t.Fatal(err)
	}
	testenv.AdminExec(t, e.url, "ALTER DATABASE "+database+" SET log_statement = 'all'")
	pool, err := pgxpool.New(ctx, e.url) // settings apply to new sessions
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	id := sandbox.NewID()
	if _, err := provision.New(pool, e.rdb, "sandbox_template").ProvisionFrom(ctx, id, sandbox.TemplateSource{Schema: "seed_tmpl", CopyRows: true}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(testenv.ServerLog(t))
	if err != nil {
		t.Fatal(err)
	}
	log := string(raw)
	schema, role := pgx.Identifier{sandbox.SchemaName(id)}.Sanitize(), pgx.Identifier{sandbox.RoleName(id)}.Sanitize()
	lastInsert := strings.LastIndex(log, "INSERT INTO "+schema+".")
	createRole := strings.Index(log, "CREATE ROLE "+role)
	firstGrant := strings.Index(log, "GRANT "+role+" TO CURRENT_USER")
	if lastInsert < 0 || createRole < 0 || firstGrant < 0 || strings.Count(log, "INSERT INTO "+schema+".") != 4 {
		t.Fatalf("the server log lacks the copy or the role's statements (insert at %d, role at %d, grant at %d): log_statement did not apply, and this test proves nothing",
			lastInsert, createRole, firstGrant)
	}
	if lastInsert > createRole || lastInsert > firstGrant {
		t.Errorf("a seed row was copied after the role was created or granted anything")
	}
	for _, stmt := range []string{"GRANT USAGE, CREATE ON SCHEMA " + schema + " TO " + role, " OWNER TO " + role} {
		if at := strings.Index(log, stmt); at < lastInsert {
			t.Errorf("%q at %d, before the copy ended at %d", stmt, at, lastInsert)
		}
	}
}

// A template's source schema is the operator's. Provisioning refuses one named like a
// sandbox's, the control plane's, one that does not exist, and one a sandbox role owns
// anything in, before it creates anything; and the hostile one is proven dangerous: a row
// level security policy of the sandbox's on the table would run its code for any reader
// (the control user's plain SELECT springs it), but the copy never read it.
func TestSeedSourceMustBeTheOperators(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	victim, traps := hostile(t, e)
	// An operator's mistake: a schema in which the victim's role owns a table, with a policy
	// that calls the role's spy.
	for _, stmt := range []string{
		`CREATE SCHEMA evil_tmpl`,
		`CREATE TABLE evil_tmpl.t (x int)`,
		`INSERT INTO evil_tmpl.t VALUES (1)`,
		`GRANT USAGE, CREATE ON SCHEMA evil_tmpl TO ` + sandbox.RoleName(victim),
		`ALTER TABLE evil_tmpl.t OWNER TO ` + sandbox.RoleName(victim),
	} {
		if _, err := e.pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	conn := provisionedConn(t, e, victim)
	for _, stmt := range []string{
		`ALTER TABLE evil_tmpl.t ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE evil_tmpl.t FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY spy ON evil_tmpl.t USING (` + sandbox.SchemaName(victim) + `.spy())`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	for _, source := range []string{sandbox.SchemaName(victim), "sandbox_control", "no_such_schema", "evil_tmpl", "pg_catalog", "Bad-Name"} {
		id := sandbox.NewID()
		_, err := e.p.ProvisionFrom(ctx, id, sandbox.TemplateSource{Schema: source, CopyRows: true})
		var domain *sandbox.Error
		if !errors.As(err, &domain) || domain.Code != sandbox.CodeInvalidInput || domain.Field != "source_schema" {
			t.Errorf("provisioning from %s: %v, want invalid_input on source_schema", source, err)
		}
		if _, cerr := e.p.CheckTemplateSource(ctx, source); !errors.As(cerr, &domain) || domain.Code != sandbox.CodeInvalidInput {
			t.Errorf("CheckTemplateSource(%s): %v", source, cerr)
		}
		res, err := e.p.Inspect(ctx, id)
		if err != nil || res.SchemaExists || res.RoleExists || res.StreamExists {
			t.Errorf("provisioning from %s left %+v (%v)", source, res, err)
		}
	}
	traps.RequireNotSprung(t, e.pool)

	// The control experiment: reading the table as the copy would have springs the trap.
	controlExperiment(t, e, traps, victim, `SELECT count(*) FROM evil_tmpl.t`)
}

// A template schema the operator owns may still use a sandbox's code: a check constraint, a
// domain or a row level security policy of its tables calling a function a sandbox defined.
// The copy would run that function as the control user (the trap proves it), so
// provisioning refuses such a source before it creates anything, and so does the registry's
// check.
func TestSeedSourceUsingSandboxCodeIsRefused(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	victim, traps := hostile(t, e)
	spy := sandbox.SchemaName(victim) + ".spy()"
	sources := map[string][]string{
		// NOT VALID: adding them runs nothing, so the traps stay armed for the copy.
		"dep_check": {
			`CREATE TABLE dep_check.t (x int)`,
			`INSERT INTO dep_check.t VALUES (1), (2)`,
			`ALTER TABLE dep_check.t ADD CONSTRAINT spying CHECK (` + spy + `) NOT VALID`,
		},
		"dep_domain": {
			`CREATE DOMAIN dep_domain.watched AS int`,
			`CREATE TABLE dep_domain.t (x dep_domain.watched)`,
			`INSERT INTO dep_domain.t VALUES (1)`,
			`ALTER DOMAIN dep_domain.watched ADD CONSTRAINT spying CHECK (` + spy + `) NOT VALID`,
		},
		"dep_policy": {
			`CREATE TABLE dep_policy.t (x int)`,
			`INSERT INTO dep_policy.t VALUES (1)`,
			`ALTER TABLE dep_policy.t ENABLE ROW LEVEL SECURITY`,
			`ALTER TABLE dep_policy.t FORCE ROW LEVEL SECURITY`,
			`CREATE POLICY spying ON dep_policy.t USING (` + spy + `)`,
		},
	}
	for source, stmts := range sources {
		for _, stmt := range append([]string{"CREATE SCHEMA " + source}, stmts...) {
			if _, err := e.pool.Exec(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	for source := range sources {
		id := sandbox.NewID()
		_, err := e.p.ProvisionFrom(ctx, id, sandbox.TemplateSource{Schema: source, CopyRows: true})
		var domain *sandbox.Error
		if !errors.As(err, &domain) || domain.Code != sandbox.CodeInvalidInput || domain.Field != "source_schema" ||
			!strings.Contains(domain.Message, "which a sandbox defined") {
			t.Errorf("provisioning from %s: %v, want invalid_input on source_schema", source, err)
		}
		if _, cerr := e.p.CheckTemplateSource(ctx, source); !errors.As(cerr, &domain) || domain.Code != sandbox.CodeInvalidInput {
			t.Errorf("CheckTemplateSource(%s): %v", source, cerr)
		}
		if res, err := e.p.Inspect(ctx, id); err != nil || res.SchemaExists || res.RoleExists || res.StreamExists {
			t.Errorf("provisioning from %s left %+v (%v)", source, res, err)
		}
	}
	traps.RequireNotSprung(t, e.pool)
	// The seed template, which uses only what the operator and PostgreSQL define, passes.
	testenv.SeedTemplate(t, e.pool, "seed_tmpl", 100)
	src, err := e.p.CheckTemplateSource(ctx, "seed_tmpl")
	if err != nil {
		t.Errorf("the seed template is refused: %v", err)
	}
	// Its size, for the disk share's check at registration: its relations' as the catalog
	// says, and the rows that describe its few tables in the catalogs (tens of kB).
	var relations int64
	if err := e.pool.QueryRow(ctx, `SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'seed_tmpl' AND c.relkind IN ('r', 'p', 'm', 'S')`).Scan(&relations); err != nil {
		t.Fatal(err)
	}
	if src.Bytes <= relations || src.Bytes > relations+256<<10 || relations == 0 {
		t.Errorf("the seed template's size: %d bytes, want its relations' %d and less than 256 kB of catalog rows", src.Bytes, relations)
	}

	// The control experiment: copying the rows as the copy would springs the trap.
	controlExperiment(t, e, traps, victim, `CREATE TABLE dep_check.copy (LIKE dep_check.t INCLUDING ALL)`,
		`INSERT INTO dep_check.copy SELECT * FROM dep_check.t`)
}
