package testenv

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Traps are the objects a hostile sandbox role sets up to make the control user run its code:
// a spy function that records current_user and, when it runs as anyone but the role, tries
// to escalate (create a table in public, grant the role the control plane's sandboxes table).
// It is reached through every hook a role can create on its own: a table turned into a view
// by an ON SELECT rule, a row-level security policy, triggers on the provisioned tables, a
// view, and functions named like built-ins in its schema.
type Traps struct {
	conn   *pgx.Conn
	schema string
	role   string
	// Marker is the table the spy creates in public when it escalates.
	Marker string
}

// ConnectAs opens a connection to the test database at dbURL as role with its password, a
// sandbox role's as its worker would; it is closed when the test ends.
func ConnectAs(t testing.TB, dbURL, role, password string) (*pgx.Conn, error) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, password)
	conn, err := pgx.Connect(context.Background(), u.String())
	if err == nil {
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	}
	return conn, err
}

// ArmTraps sets the traps up through conn, a session of the sandbox role itself.
func ArmTraps(t testing.TB, conn *pgx.Conn, schema, role string) *Traps {
	t.Helper()
	tr := &Traps{conn: conn, schema: schema, role: role, Marker: "pwned_" + strings.TrimPrefix(schema, "sb_")}
	rows, err := conn.Query(t.Context(), `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r'`, schema)
	if err != nil {
		t.Fatal(err)
	}
	provisioned, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	s := pgx.Identifier{schema}.Sanitize()
	r := pgx.Identifier{role}.Sanitize()
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE %s.seen (who text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`, s),
		fmt.Sprintf(`GRANT INSERT, SELECT ON %s.seen TO PUBLIC`, s),
		fmt.Sprintf(`CREATE FUNCTION %[1]s.spy() RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
	INSERT INTO %[1]s.seen (who) VALUES (current_user);
	IF current_user <> %[2]s THEN
		BEGIN EXECUTE 'CREATE TABLE public.%[3]s ()'; EXCEPTION WHEN OTHERS THEN NULL; END;
		BEGIN EXECUTE 'GRANT SELECT ON sandbox_control.sandboxes TO ' || quote_ident(%[2]s); EXCEPTION WHEN OTHERS THEN NULL; END;
	END IF;
	RETURN true;
END $f$`, s, quoteLit(role), tr.Marker),
		fmt.Sprintf(`GRANT EXECUTE ON FUNCTION %s.spy() TO PUBLIC`, s),
		fmt.Sprintf(`CREATE FUNCTION %[1]s.spy_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
	PERFORM %[1]s.spy();
	IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
	RETURN NEW; -- the write goes on: a spy is not seen
END $f$`, s),
		// Tables named to sort first, so "the first table" of the schema is a trap.
		fmt.Sprintf(`CREATE TABLE %s.aaa_policy (x int)`, s),
		fmt.Sprintf(`INSERT INTO %s.aaa_policy VALUES (1)`, s),
		fmt.Sprintf(`ALTER TABLE %s.aaa_policy ENABLE ROW LEVEL SECURITY`, s),
		// FORCE: the policy binds the owner's members too (the control user is one).
		fmt.Sprintf(`ALTER TABLE %s.aaa_policy FORCE ROW LEVEL SECURITY`, s),
		fmt.Sprintf(`CREATE POLICY spy ON %s.aaa_policy USING (%s.spy())`, s, s),
		fmt.Sprintf(`CREATE TABLE %s.aaa_rule (x int)`, s),
		fmt.Sprintf(`CREATE RULE "_RETURN" AS ON SELECT TO %s.aaa_rule DO INSTEAD SELECT 1 AS x WHERE %s.spy()`, s, s),
		fmt.Sprintf(`CREATE VIEW %s.aaa_view AS SELECT 1 AS x WHERE %s.spy()`, s, s),
		// Built-in names in its own schema, for a control session whose search_path lists it.
		fmt.Sprintf(`CREATE FUNCTION %s.pg_total_relation_size(regclass) RETURNS bigint LANGUAGE sql AS 'SELECT CASE WHEN %s.spy() THEN 0::bigint END'`, s, s),
		fmt.Sprintf(`CREATE FUNCTION %s.has_schema_privilege(text, text, text) RETURNS boolean LANGUAGE sql AS 'SELECT %s.spy()'`, s, s),
		fmt.Sprintf(`CREATE FUNCTION %s.lower(character varying) RETURNS text LANGUAGE sql AS 'SELECT CASE WHEN %s.spy() THEN $1::text END'`, s, s),
	}
	for _, stmt := range stmts {
		if _, err := conn.Exec(t.Context(), stmt); err != nil {
			t.Fatalf("arming trap: %s: %v", stmt, err)
		}
	}
	// Triggers on every table provisioning created.
	for _, table := range provisioned {
		tbl := pgx.Identifier{schema, table}.Sanitize()
		for _, stmt := range []string{
			fmt.Sprintf(`CREATE TRIGGER spy_row BEFORE INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s.spy_trigger()`, tbl, s),
			fmt.Sprintf(`CREATE TRIGGER spy_truncate BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s.spy_trigger()`, tbl, s),
		} {
			if _, err := conn.Exec(t.Context(), stmt); err != nil {
				t.Fatalf("arming trap: %s: %v", stmt, err)
			}
		}
	}
	// A role cannot plant anything where the control user looks by default.
	if _, err := conn.Exec(t.Context(), `CREATE FUNCTION public.lower(character varying) RETURNS text LANGUAGE sql AS 'SELECT $1::text'`); err == nil {
		t.Fatalf("role %s may create functions in schema public", r)
	}
	return tr
}

// Seen returns who ran the spy, in order (read through the role's own session).
func (tr *Traps) Seen(t testing.TB) []string {
	t.Helper()
	rows, err := tr.conn.Query(t.Context(), fmt.Sprintf(`SELECT who FROM %s.seen ORDER BY at`, pgx.Identifier{tr.schema}.Sanitize()))
	if err != nil {
		t.Fatal(err)
	}
	who, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return who
}

// RequireNotSprung fails the test when the spy ever ran as anyone but the role, or when any
// of its escalations took effect (checked through the control user's pool).
func (tr *Traps) RequireNotSprung(t testing.TB, control *pgxpool.Pool) {
	t.Helper()
	for _, who := range tr.Seen(t) {
		if who != tr.role {
			t.Fatalf("the sandbox's spy function ran as %q", who)
		}
	}
	tr.RequireNoEscalation(t, control)
}

// RequireNoEscalation fails the test when an escalation of the spy took effect.
func (tr *Traps) RequireNoEscalation(t testing.TB, control *pgxpool.Pool) {
	t.Helper()
	var marker bool
	var grant bool
	err := control.QueryRow(context.Background(), `SELECT to_regclass('public.'||$1) IS NOT NULL,
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AND has_table_privilege($2, 'sandbox_control.sandboxes', 'SELECT')`,
		tr.Marker, tr.role).Scan(&marker, &grant)
	if err != nil {
		t.Fatal(err)
	}
	if marker || grant {
		t.Fatalf("the sandbox escalated: table public.%s exists: %v; role may read sandbox_control.sandboxes: %v", tr.Marker, marker, grant)
	}
}

func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
