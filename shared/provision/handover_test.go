package provision_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// asProvisionedBefore gives the sandbox's tables back to the control user with the rights its
// role had on them, as provisioning left them before it handed them over.
func asProvisionedBefore(t *testing.T, e env, id string) {
	t.Helper()
	s, r := pgx.Identifier{sandbox.SchemaName(id)}.Sanitize(), pgx.Identifier{sandbox.RoleName(id)}.Sanitize()
	rows, err := e.pool.Query(t.Context(), `SELECT quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r'`, sandbox.SchemaName(id))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		if _, err := e.pool.Exec(t.Context(), fmt.Sprintf("ALTER TABLE %s.%s OWNER TO CURRENT_USER", s, table)); err != nil {
			t.Fatal(err)
		}
	}
	for _, stmt := range []string{
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA %s TO %s", s, r),
		fmt.Sprintf("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %s TO %s", s, r),
	} {
		if _, err := e.pool.Exec(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	if len(notOwnedByTheRole(t, e, id)) == 0 {
		t.Fatal("the control user owns none of the older sandbox's relations")
	}
}

// A sandbox provisioned while the control user kept its tables gets them at HandOverTables,
// even while a session of its role keeps one locked: that session is ended. From then on its
// hooks on foreign keys run as itself. One not handed over is the control experiment: the
// same hooks still run as the control user there. A second call has nothing to do.
func TestHandOverGivesOlderSandboxesTheirTables(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	older, olderPW := provisioned(t, e)
	kept, keptPW := provisioned(t, e)
	for _, id := range []string{older, kept} {
		asProvisionedBefore(t, e, id)
	}
	olderConn := e.session(t, older, olderPW)
	olderTraps := testenv.ArmTraps(t, olderConn, sandbox.SchemaName(older), sandbox.RoleName(older))
	locker := e.session(t, older, olderPW)
	for _, stmt := range []string{"BEGIN", "LOCK TABLE guild_settings IN ACCESS SHARE MODE"} {
		if _, err := locker.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}

	n, err := e.p.HandOverTables(ctx, []string{older}, 200*time.Millisecond)
	if err != nil || n != 1 {
		t.Fatalf("HandOverTables = %d, %v; want 1 sandbox changed", n, err)
	}
	if _, err := locker.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the session that kept a table locked is still there")
	}
	if foreign := notOwnedByTheRole(t, e, older); len(foreign) > 0 {
		t.Errorf("after the hand-over its role does not own %v", foreign)
	}
	if len(notOwnedByTheRole(t, e, kept)) == 0 {
		t.Error("a sandbox not named was handed its tables")
	}
	if n, err := e.p.HandOverTables(ctx, []string{older}, 200*time.Millisecond); err != nil || n != 0 {
		t.Errorf("a second HandOverTables = %d, %v; want nothing to do", n, err)
	}
	fireForeignKeyHooks(t, olderConn, olderTraps, older)
	olderTraps.RequireNotSprung(t, e.pool)

	keptConn := e.session(t, kept, keptPW)
	keptTraps := testenv.ArmTraps(t, keptConn, sandbox.SchemaName(kept), sandbox.RoleName(kept))
	fireForeignKeyHooks(t, keptConn, keptTraps, kept)
	if seen := keptTraps.Seen(t); !slices.ContainsFunc(seen, func(who string) bool { return who != sandbox.RoleName(kept) }) {
		t.Fatalf("the hooks of the sandbox not handed over ran only as %v: this test proves nothing", seen)
	}
}
