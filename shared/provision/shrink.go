package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// dropBatch is how many of a sandbox's objects one transaction of a drop takes at most. A
// transaction holds a lock on every object it drops (and on what goes with it: a table's
// row type, TOAST table and indexes) until it ends, and PostgreSQL's lock table is shared by
// the whole server and sized for max_locks_per_transaction (64) per connection: a schema of
// 8,000 tables, which a worker creates in seconds, made DROP SCHEMA fail with "out of shared
// memory" (300 connections), after filling the table for every other session, at every
// attempt. A drop therefore takes a schema larger than this down in batches first (shrink).
const dropBatch = 200

// dropKeywords are the kinds of objects a batch drops, as pg_identify_object names them, with
// their DROP keyword; a kind not listed is left to DROP SCHEMA ... CASCADE.
var dropKeywords = map[string]string{
	"table": "TABLE", "view": "VIEW", "materialized view": "MATERIALIZED VIEW", "sequence": "SEQUENCE",
	"foreign table": "FOREIGN TABLE", "function": "FUNCTION", "procedure": "PROCEDURE",
	"aggregate": "AGGREGATE", "type": "TYPE", "domain": "DOMAIN", "operator": "OPERATOR",
	"operator class": "OPERATOR CLASS", "operator family": "OPERATOR FAMILY", "collation": "COLLATION",
	"conversion": "CONVERSION", "statistics object": "STATISTICS",
	"text search configuration": "TEXT SEARCH CONFIGURATION", "text search dictionary": "TEXT SEARCH DICTIONARY",
	"text search parser": "TEXT SEARCH PARSER", "text search template": "TEXT SEARCH TEMPLATE",
}

// schemaObject is an object of a sandbox's schema a batch drops.
type schemaObject struct {
	classID, objID uint32
	kind, identity string
}

// shrink drops the objects of the sandbox's schema (those that depend on the schema alone:
// a table's indexes and row type go with it), and with role its role's large objects,
// dropBatch at a time, each batch in a transaction of its own behind the same checks as the
// drop, until no more than dropBatch are left for the drop's own transaction. It runs no
// code a sandbox can define: DROP fires no trigger a non-superuser can make. An object whose
// DROP fails is left to the drop's CASCADE (after dropBatch such failures, the rest too); a
// lock timeout fails the shrink. With role, the control user makes sure it is a member of
// the role, as dropRole does; the drop ended the role's sessions before (lockOut). It returns
// how many objects it dropped.
func (p *Provisioner) shrink(ctx context.Context, id string, lockTimeout time.Duration, schema, role bool) (dropped int, err error) {
	schemaName, roleName := sandbox.SchemaName(id), sandbox.RoleName(id)
	if !schema {
		schemaName = "" // no schema's objects: its large objects only
	}
	var skip []string // "classid/objid" of objects whose DROP failed
	for {
		var batch []schemaObject
		var largeObjects []uint32
		err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
			if err := setLockTimeout(ctx, tx, lockTimeout); err != nil {
				return err
			}
			var roleOID *uint32
			if role {
				st, err := ourRoleOf(ctx, tx, roleName)
				if err != nil {
					return err
				}
				if st.exists {
					roleOID = &st.oid
				}
			}
			var total int
			var err error
			batch, largeObjects, total, err = nextBatch(ctx, tx, schemaName, roleOID, skip)
			if err != nil || total <= dropBatch {
				batch, largeObjects = nil, nil
				return err
			}
			if roleOID != nil {
				// Membership, which dropping the role's objects by name needs.
				if err := grantMembership(ctx, tx, roleName); err != nil {
					return err
				}
			}
			for _, o := range batch {
				if _, err := tx.Exec(ctx, o.dropStatement()); err != nil {
					return &objectError{o, err}
				}
			}
			if len(largeObjects) > 0 {
				_, err = tx.Exec(ctx, `SELECT pg_catalog.lo_unlink(l) FROM pg_catalog.unnest($1::oid[]) AS l
					WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata WHERE oid = l)`, largeObjects)
			}
			return err
		})
		var failed *objectError
		switch {
		// A lock timeout is a busy object: it fails this attempt, as it would fail the drop's
		// own transaction.
		case errors.As(err, &failed) && pgCode(err) != pgLockNotAvailable:
			skip = append(skip, failed.key()) // the drop's CASCADE will take it
			if len(skip) >= dropBatch {
				return dropped, nil // past a batch of failures, the drop's own attempt
			}
			continue
		case err != nil:
			return dropped, fmt.Errorf("drop the objects of %s in batches: %w", sandbox.SchemaName(id), err)
		case len(batch)+len(largeObjects) == 0:
			return dropped, nil
		}
		dropped += len(batch) + len(largeObjects)
	}
}

// nextBatch lists at most dropBatch objects of the schema to drop, skipping those of skip,
// or, when there is none, at most dropBatch large objects of the role (roleOID, when it
// exists), with how many of both there are in all.
func nextBatch(ctx context.Context, tx pgx.Tx, schemaName string, roleOID *uint32, skip []string) ([]schemaObject, []uint32, int, error) {
	if skip == nil {
		skip = []string{} // not NULL, which ALL would make match nothing
	}
	var batch []schemaObject
	total := 0
	if schemaName != "" {
		var err error
		if batch, total, err = schemaBatch(ctx, tx, schemaName, skip); err != nil {
			return nil, nil, 0, err
		}
	}
	if roleOID == nil {
		return batch, nil, total, nil
	}
	var largeObjects []uint32
	var owned int
	err := tx.QueryRow(ctx, `SELECT coalesce(pg_catalog.array_agg(oid), '{}'), (SELECT pg_catalog.count(*)
		FROM pg_catalog.pg_largeobject_metadata WHERE lomowner = $1)
		FROM (SELECT oid FROM pg_catalog.pg_largeobject_metadata WHERE lomowner = $1 LIMIT $2) l`,
		*roleOID, dropBatch).Scan(&largeObjects, &owned)
	if len(batch) > 0 {
		largeObjects = nil // the schema's first
	}
	return batch, largeObjects, total + owned, err
}

// schemaBatch lists at most dropBatch objects of the schema, skipping those of skip, with how
// many there are in all.
func schemaBatch(ctx context.Context, tx pgx.Tx, schemaName string, skip []string) ([]schemaObject, int, error) {
	// Objects that depend on the schema alone: not those another object owns (a range
	// type's constructors, a multirange), which go with it.
	rows, err := tx.Query(ctx, `
		SELECT d.classid::pg_catalog.oid, d.objid, CASE WHEN t.typtype = 'd' THEN 'domain' ELSE o.type END, o.identity,
			pg_catalog.count(*) OVER ()
		FROM pg_catalog.pg_depend d
		CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classid, d.objid, 0) o
		LEFT JOIN pg_catalog.pg_type t ON d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = d.objid
		WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
			AND d.refobjid = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1) AND d.deptype = 'n'
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend i WHERE i.classid = d.classid AND i.objid = d.objid
				AND i.deptype IN ('i', 'e'))
			AND d.classid::pg_catalog.oid::pg_catalog.text || '/' || d.objid::pg_catalog.text <> ALL ($2::text[])
		LIMIT $3`, schemaName, skip, dropBatch)
	if err != nil {
		return nil, 0, err
	}
	var batch []schemaObject
	total := 0
	for rows.Next() {
		var o schemaObject
		if err := rows.Scan(&o.classID, &o.objID, &o.kind, &o.identity, &total); err != nil {
			rows.Close()
			return nil, 0, err
		}
		// Only the kinds a batch knows, and only in the schema: the identity is
		// pg_identify_object's, quoted by PostgreSQL, and names the schema first.
		if _, ok := dropKeywords[o.kind]; ok && strings.HasPrefix(o.identity, schemaName+".") {
			batch = append(batch, o)
		}
	}
	return batch, total, rows.Err()
}

func (o schemaObject) dropStatement() string {
	return "DROP " + dropKeywords[o.kind] + " IF EXISTS " + o.identity + " CASCADE"
}

func (o schemaObject) key() string { return fmt.Sprintf("%d/%d", o.classID, o.objID) }

// objectError is the failed DROP of one object of a batch.
type objectError struct {
	object schemaObject
	err    error
}

func (e *objectError) Error() string { return e.object.dropStatement() + ": " + e.err.Error() }
func (e *objectError) Unwrap() error { return e.err }
func (e *objectError) key() string   { return e.object.key() }
