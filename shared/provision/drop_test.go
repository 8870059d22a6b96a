package provision_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// createRole makes a cluster-wide role with a comment ("" for none), dropped when the test
// ends (roles outlive the test database).
func createRole(t *testing.T, e env, name, comment string) {
	t.Helper()
	ctx := context.Background()
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := e.pool.Exec(ctx, "CREATE ROLE "+ident+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = e.pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+ident) })
	if comment != "" {
		if _, err := e.pool.Exec(ctx, "COMMENT ON ROLE "+ident+" IS '"+comment+"'"); err != nil {
			t.Fatal(err)
		}
	}
}

func roleExists(t *testing.T, e env, name string) bool {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_roles WHERE rolname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// A role named like a sandbox's that is not this database's (another database's sandbox, or
// nobody's) is never altered, ended or dropped, whichever path asks; its schema namesake is
// left alone by the teardown's drop too, which refuses as a whole.
func TestForeignRolesAreNeverTouched(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	var database string
	if err := e.pool.QueryRow(ctx, `SELECT current_database()`).Scan(&database); err != nil {
		t.Fatal(err)
	}
	foreign, bare := sandbox.NewID(), sandbox.NewID()
	createRole(t, e, sandbox.RoleName(foreign), provision.RoleCommentFor("some_other_database"))
	createRole(t, e, sandbox.RoleName(bare), "")
	if _, err := e.pool.Exec(ctx, "CREATE SCHEMA "+sandbox.SchemaName(foreign)); err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{foreign, bare} {
		role := sandbox.RoleName(id)
		if _, err := e.p.Drop(ctx, id, time.Second); err == nil || !strings.Contains(err.Error(), "refusing role") {
			t.Errorf("Drop of %s: %v, want a refusal", role, err)
		}
		if _, err := e.p.DropRole(ctx, id, time.Second); err == nil || !strings.Contains(err.Error(), "refusing role") {
			t.Errorf("DropRole of %s: %v, want a refusal", role, err)
		}
		if _, err := e.p.EndSessions(ctx, id); err == nil || !strings.Contains(err.Error(), "refusing role") {
			t.Errorf("EndSessions of %s: %v, want a refusal", role, err)
		}
		_, err := e.p.RotateCredentials(ctx, id, time.Now().Add(time.Hour), nil)
		if err == nil || errors.Is(err, sandbox.ErrNotFound) || !strings.Contains(err.Error(), "refusing role") {
			t.Errorf("RotateCredentials of %s: %v, want a refusal", role, err)
		}
		var validUntilSet bool
		if err := e.pool.QueryRow(ctx, `SELECT rolvaliduntil IS NOT NULL FROM pg_roles WHERE rolname = $1`, role).Scan(&validUntilSet); err != nil || validUntilSet {
			t.Errorf("role %s altered (valid until set: %v, %v)", role, validUntilSet, err)
		}
		if !roleExists(t, e, role) {
			t.Errorf("role %s dropped", role)
		}
		if res, err := e.p.Inspect(ctx, id); err != nil || res.RoleExists {
			t.Errorf("Inspect of %s: %+v %v: another database's role is not the sandbox's", role, res, err)
		}
	}
	if res, _ := e.p.Inspect(ctx, foreign); !res.SchemaExists {
		t.Fatal("the refused Drop dropped the schema")
	}
	roles, err := e.p.SandboxRoles(ctx)
	if err != nil || slices.Contains(roles, foreign) || slices.Contains(roles, bare) {
		t.Errorf("SandboxRoles = %v, %v: lists roles that are not this database's", roles, err)
	}
	// Its schema namesake above the disk share is this database's, the role is not: the run's
	// switch-off passes over it, and fails nothing else.
	if _, err := e.pool.Exec(ctx, "CREATE TABLE "+sandbox.SchemaName(foreign)+".rows AS SELECT 1 AS v"); err != nil {
		t.Fatal(err)
	}
	if res, err := e.p.SwitchOffOversizedRoles(ctx, 1, time.Second); err != nil || len(res.SwitchedOff) != 0 {
		t.Errorf("SwitchOffOversizedRoles over a foreign role's namesake: %+v %v", res, err)
	}
	// Nor is its namesake's table, which the control user owns, given to it.
	if n, err := e.p.HandOverTables(ctx, []string{foreign, bare}, time.Second); err != nil || n != 0 {
		t.Errorf("HandOverTables of a foreign role's namesake = %d, %v; want nothing done", n, err)
	}
	var owner string
	if err := e.pool.QueryRow(ctx, `SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = $1::regclass`,
		sandbox.SchemaName(foreign)+".rows").Scan(&owner); err != nil || owner == sandbox.RoleName(foreign) {
		t.Errorf("the foreign role's namesake's table is owned by %q (%v)", owner, err)
	}
	// The schema is this database's whatever the role: orphan reconciliation may drop it alone.
	if res, err := e.p.DropSchema(ctx, foreign, time.Second); err != nil || !res.SchemaExisted || res.RoleExisted {
		t.Fatalf("DropSchema: %+v %v", res, err)
	}
	if !roleExists(t, e, sandbox.RoleName(foreign)) {
		t.Fatal("DropSchema dropped the role")
	}
}

// DropRole and DropSchema each drop one object of a sandbox, idempotently; the listings see
// exactly the sandbox's names.
func TestDropSchemaAndDropRoleDropOneObjectEach(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, pw, other := provisionedPair(t, e)
	e.session(t, id, pw)
	for _, s := range []string{"sb_short", "sbx_" + sandbox.NewID(), "sb_" + sandbox.NewID() + "_x"} {
		if _, err := e.pool.Exec(ctx, "CREATE SCHEMA "+s); err != nil {
			t.Fatal(err)
		}
	}
	schemas, err := e.p.SandboxSchemas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roles, err := e.p.SandboxRoles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{id, other}
	slices.Sort(want)
	if !slices.Equal(schemas, want) || !slices.Equal(roles, want) {
		t.Fatalf("schemas %v, roles %v, want %v for both", schemas, roles, want)
	}

	res, err := e.p.DropRole(ctx, id, 2*time.Second)
	if err != nil || !res.RoleExisted || res.SchemaExisted || res.SessionsTerminated != 1 {
		t.Fatalf("DropRole: %+v %v", res, err)
	}
	if after, err := e.p.Inspect(ctx, id); err != nil || after.RoleExists || !after.SchemaExists {
		t.Fatalf("after DropRole: %+v %v", after, err)
	}
	if res, err := e.p.DropRole(ctx, id, 2*time.Second); err != nil || res.RoleExisted {
		t.Fatalf("second DropRole: %+v %v", res, err)
	}
	res, err = e.p.DropSchema(ctx, id, 2*time.Second)
	if err != nil || !res.SchemaExisted || res.RoleExisted {
		t.Fatalf("DropSchema: %+v %v", res, err)
	}
	if res, err := e.p.DropSchema(ctx, id, 2*time.Second); err != nil || res.SchemaExisted {
		t.Fatalf("second DropSchema: %+v %v", res, err)
	}
	if after, err := e.p.Inspect(ctx, id); err != nil || after.SchemaExists || after.RoleExists {
		t.Fatalf("after both: %+v %v", after, err)
	}
	if still, err := e.p.Inspect(ctx, other); err != nil || !still.SchemaExists || !still.RoleExists {
		t.Fatalf("other sandbox touched: %+v %v", still, err)
	}
	for _, bad := range []string{"", "sb_x", "abc; DROP TABLE", "ABCDEFGHIJKLMN"} {
		if _, err := e.p.DropSchema(ctx, bad, time.Second); err == nil {
			t.Errorf("DropSchema(%q) accepted", bad)
		}
		if _, err := e.p.DropRole(ctx, bad, time.Second); err == nil {
			t.Errorf("DropRole(%q) accepted", bad)
		}
	}
}

// InspectStream reports the stream, its length, its groups and the workers' group's pending
// entries, and a missing stream or group without an error.
func TestInspectStream(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, _ := provisioned(t, e)
	stream := keys.EventStream(id)

	s, err := e.p.InspectStream(ctx, id)
	if err != nil || !s.Exists || !s.EventsGroup || s.Groups != 1 || s.Length != 0 || s.Key != stream {
		t.Fatalf("fresh stream: %+v %v", s, err)
	}
	for range 2 {
		if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"t", "x"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: keys.EventsGroup, Consumer: "w", Streams: []string{stream, ">"}, Count: 1, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	if s, err = e.p.InspectStream(ctx, id); err != nil || s.Length != 2 || s.Pending != 1 {
		t.Fatalf("after two entries, one read: %+v %v", s, err)
	}
	if err := e.rdb.XGroupDestroy(ctx, stream, keys.EventsGroup).Err(); err != nil {
		t.Fatal(err)
	}
	if s, err = e.p.InspectStream(ctx, id); err != nil || !s.Exists || s.EventsGroup || s.Groups != 0 {
		t.Fatalf("without the group: %+v %v", s, err)
	}
	if err := e.rdb.Del(ctx, stream).Err(); err != nil {
		t.Fatal(err)
	}
	if s, err = e.p.InspectStream(ctx, id); err != nil || s.Exists {
		t.Fatalf("without the stream: %+v %v", s, err)
	}
	if _, err := e.p.InspectStream(ctx, "BAD*"); err == nil {
		t.Fatal("an invalid id was inspected")
	}
}

// A sandbox's role may create objects without end, and a transaction holds a lock on every
// object it drops until it ends, in the lock table the whole server shares (sized for
// max_locks_per_transaction, 64, per connection: 300 here). 6,000 tables, which the worker
// creates in seconds, made DROP SCHEMA ... CASCADE fail with "out of shared memory" at every
// attempt, after filling the lock table for every other session. The drop takes them, with
// objects of every kind and large objects, in batches first, and completes.
func TestDropOfASchemaOfManyObjects(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, pw := provisioned(t, e)
	e.allowLargeObjects(t)
	conn := e.session(t, id, pw)
	defer func() { _ = conn.Close(ctx) }()
	const tables = 6000
	for _, sql := range []string{
		fmt.Sprintf(`DO $$ BEGIN FOR i IN 1..%d LOOP
			EXECUTE format('CREATE TABLE t%%s (x text PRIMARY KEY)', i);
			IF i %% 500 = 0 THEN COMMIT; END IF;
		END LOOP; END $$`, tables),
		`DO $$ BEGIN FOR i IN 1..50 LOOP
			EXECUTE format('CREATE FUNCTION f%s(int) RETURNS int LANGUAGE sql AS ''SELECT 1''', i);
			EXECUTE format('CREATE TYPE e%s AS ENUM (''a'')', i);
			EXECUTE format('CREATE DOMAIN d%s AS int CHECK (VALUE > 0)', i);
			EXECUTE format('CREATE VIEW v%s AS SELECT 1 AS a', i);
			EXECUTE format('CREATE SEQUENCE s%s', i);
			EXECUTE format('CREATE FUNCTION g%s(int, e%s) RETURNS bool LANGUAGE sql AS ''SELECT true''', i, i);
			EXECUTE format('CREATE OPERATOR === (LEFTARG = int, RIGHTARG = e%s, FUNCTION = g%s)', i, i);
			PERFORM pg_catalog.lo_create(0);
		END LOOP; END $$`,
		`CREATE TYPE r AS RANGE (SUBTYPE = int4)`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("as the sandbox's role: %v", err)
		}
	}
	_ = conn.Close(ctx)

	res, err := e.p.Drop(ctx, id, 5*time.Second)
	if err != nil {
		t.Fatalf("drop a schema of %d tables and more: %v", tables, err)
	}
	if !res.SchemaExisted || !res.RoleExisted || res.DroppedInBatches < tables {
		t.Errorf("drop: %+v, want the schema, the role and at least %d objects in batches", res, tables)
	}
	var schemas, roles, largeObjects int
	err = e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1),
		(SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = $2), (SELECT count(*) FROM pg_catalog.pg_largeobject_metadata)`,
		sandbox.SchemaName(id), sandbox.RoleName(id)).Scan(&schemas, &roles, &largeObjects)
	if err != nil || schemas+roles+largeObjects != 0 {
		t.Fatalf("left: %d schemas, %d roles, %d large objects (%v)", schemas, roles, largeObjects, err)
	}
}
