package provision

// This file: a template's source schema and its seed rows. A template names a schema the
// operator owns; provisioning clones its tables and, when the template says so, copies their
// rows into the new sandbox's tables (provisionDatabase). The copy is the one statement of
// this package that reads rows of a relation, so what it reads is checked first, in the
// provisioning transaction (checkTemplateSource): never a schema a sandbox's code could have
// defined anything in.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// TemplateSource is what the catalog says of a template's source schema.
type TemplateSource struct {
	Schema string
	// Tables are the tables a sandbox clones from it.
	Tables []string
	// Bytes is its whole size, relations and catalog rows (SchemaSize.Bytes): about what a
	// sandbox that copies its rows starts with.
	Bytes int64
}

// CheckTemplateSource checks a schema a template names, as provisioning will before it clones
// or copies anything: its name follows sandbox.ValidateTemplateSchema, it exists, and no role
// named like a sandbox's (sb_...) owns it, nor any of its tables, nor any table their rows
// are read from (partitions, inheritance children). The registry's routes run it before they
// register a schema; an invalid one is invalid_input, field source_schema. It also reads the
// schema's size, which the routes hold against the disk share of a sandbox that copies its
// rows.
func (p *Provisioner) CheckTemplateSource(ctx context.Context, schema string) (TemplateSource, error) {
	var src TemplateSource
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		var err error
		if src, err = checkTemplateSource(ctx, tx, schema); err != nil {
			return err
		}
		if src.Tables, err = templateTables(ctx, tx, schema); err != nil {
			return err
		}
		if err := setLockTimeout(ctx, tx, sizeLockTimeout); err != nil {
			return err
		}
		sizes, err := schemaSizes(ctx, tx, []string{schema}, true)
		src.Bytes = sizes[schema].Bytes()
		return err
	})
	return src, err
}

// checkTemplateSource is CheckTemplateSource in the caller's transaction.
func checkTemplateSource(ctx context.Context, tx pgx.Tx, schema string) (TemplateSource, error) {
	src := TemplateSource{Schema: schema}
	if err := sandbox.ValidateTemplateSchema("source_schema", schema); err != nil {
		return src, err
	}
	var (
		exists bool
		owners []string
	)
	err := tx.QueryRow(ctx, `
		WITH RECURSIVE read_from AS (
			SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
			UNION
			SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN read_from r ON i.inhparent = r.oid
		)
		SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1),
			ARRAY(SELECT pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace WHERE nspname = $1
				UNION SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM read_from JOIN pg_catalog.pg_class c ON c.oid = read_from.oid)`,
		schema).Scan(&exists, &owners)
	if err != nil {
		return src, fmt.Errorf("read template schema %q: %w", schema, err)
	}
	if !exists {
		return src, sandbox.InvalidField("source_schema", "template schema %q does not exist", schema)
	}
	for _, o := range owners {
		// Any name of the sandbox pattern, not only exact ones: refusing too much is safe.
		if strings.HasPrefix(o, "sb_") {
			return src, sandbox.InvalidField("source_schema",
				"template schema %q is not the operator's: role %q, named like a sandbox's, owns it or one of its tables", schema, o)
		}
	}
	// The walk's estimated cost passes PostgreSQL's jit_above_cost, and compiling it would
	// take ~37 ms of a ~40 ms query (its execution takes ~2 ms): no JIT for this transaction.
	if _, err := tx.Exec(ctx, "SET LOCAL jit = off"); err != nil {
		return src, fmt.Errorf("check template schema %q: %w", schema, err)
	}
	var foreign string
	err = tx.QueryRow(ctx, sandboxDependencySQL, schema).Scan(&foreign)
	switch {
	case err == nil:
		return src, sandbox.InvalidField("source_schema",
			"template schema %q uses %s, which a sandbox defined: cloning or copying it could run that sandbox's code", schema, foreign)
	case !errors.Is(err, pgx.ErrNoRows):
		return src, fmt.Errorf("read the dependencies of template schema %q: %w", schema, err)
	}
	return src, nil
}

// sandboxDependencySQL finds one object that a template's tables use and a sandbox could have
// defined, described; no row when there is none. It starts from the tables whose rows the
// copy reads (partitions and inheritance children included) and everything that belongs to
// them (their constraints, indexes, column defaults, policies, triggers, sequences, row
// types: the auto and internal dependencies; a view or another table's foreign key over them
// is not theirs), then follows
// pg_depend to what those use (functions, operators, types, collations, other relations), and
// from a type to its domain constraints, as far as it leads. What is refused: an object
// owned by a role named like a sandbox's, or in a schema named like one, owned by one, or
// temporary. Without this, a check constraint, an index expression, a generated column, a
// domain or a policy of an operator's table that calls a sandbox's function would run that
// function as the control user during the copy. Catalog reads only.
const sandboxDependencySQL = `
	WITH RECURSIVE read_from AS (
		SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		UNION
		SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN read_from r ON i.inhparent = r.oid
	), used(classid, objid) AS (
		SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid, oid FROM read_from
		UNION
		SELECT d.classid, d.objid FROM pg_catalog.pg_depend d JOIN read_from r
			ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = r.oid AND d.deptype IN ('a', 'i')
		UNION
		SELECT x.classid, x.objid FROM used u CROSS JOIN LATERAL (
			SELECT d.refclassid, d.refobjid FROM pg_catalog.pg_depend d
			WHERE d.classid = u.classid AND d.objid = u.objid
			UNION ALL
			SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
			WHERE u.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.refclassid = u.classid AND d.refobjid = u.objid
				AND d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
		) x(classid, objid)
	)
	SELECT pg_catalog.pg_describe_object(u.classid, u.objid, 0)
	FROM used u
	LEFT JOIN pg_catalog.pg_proc p ON u.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = u.objid
	LEFT JOIN pg_catalog.pg_type t ON u.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = u.objid
	LEFT JOIN pg_catalog.pg_operator o ON u.classid = 'pg_catalog.pg_operator'::pg_catalog.regclass AND o.oid = u.objid
	LEFT JOIN pg_catalog.pg_class c ON u.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = u.objid
	LEFT JOIN pg_catalog.pg_collation co ON u.classid = 'pg_catalog.pg_collation'::pg_catalog.regclass AND co.oid = u.objid
	LEFT JOIN pg_catalog.pg_namespace ns ON ns.oid = coalesce(p.pronamespace, t.typnamespace, o.oprnamespace, c.relnamespace, co.collnamespace)
		OR (u.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND ns.oid = u.objid)
	WHERE pg_catalog.pg_get_userbyid(coalesce(p.proowner, t.typowner, o.oprowner, c.relowner, co.collowner)) LIKE 'sb\_%'
		OR ns.nspname LIKE 'sb\_%' OR ns.nspname LIKE 'pg\_temp\_%' OR ns.nspname LIKE 'pg\_toast\_temp\_%'
		OR pg_catalog.pg_get_userbyid(ns.nspowner) LIKE 'sb\_%'
	ORDER BY 1 LIMIT 1`

// copyRows copies every row of the source schema's tables into the tables of the same names
// in target, which provisioning has just created (same columns, empty, no triggers, no
// foreign keys yet) and which only the control user can reach. Identity columns keep their
// values (OVERRIDING SYSTEM VALUE), generated columns are computed again, and a plain
// table's rows are read without its inheritance children (ONLY), which are tables of their
// own in the clone. It returns how many rows it copied. One round trip.
func copyRows(ctx context.Context, tx pgx.Tx, source, target string) (int64, error) {
	rows, err := tx.Query(ctx, `
		SELECT c.relname, c.relkind = 'p', string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		GROUP BY c.relname, c.relkind ORDER BY c.relname`, source)
	if err != nil {
		return 0, fmt.Errorf("read the columns of %s: %w", source, err)
	}
	type table struct {
		name, columns string
		partitioned   bool
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		return t, r.Scan(&t.name, &t.partitioned, &t.columns)
	})
	if err != nil {
		return 0, fmt.Errorf("read the columns of %s: %w", source, err)
	}
	batch := &pgx.Batch{}
	for _, t := range tables {
		only := "ONLY "
		if t.partitioned { // its rows are in its partitions, which ONLY would leave out
			only = ""
		}
		batch.Queue(fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s%s",
			pgx.Identifier{target, t.name}.Sanitize(), t.columns, t.columns, only, pgx.Identifier{source, t.name}.Sanitize()))
	}
	results := tx.SendBatch(ctx, batch)
	var copied int64
	for _, t := range tables {
		tag, err := results.Exec()
		if err != nil {
			_ = results.Close()
			return 0, fmt.Errorf("copy the rows of %s.%s: %w", source, t.name, err)
		}
		copied += tag.RowsAffected()
	}
	return copied, results.Close()
}

// advanceSequences moves every sequence of the clone (identity columns' and those
// ownSequences made for serial columns) past the largest value the copy wrote in its column,
// so that the sandbox's first insert does not collide with a seed row. One round trip for the
// list, one for the moves.
func advanceSequences(ctx context.Context, tx pgx.Tx, target string) error {
	rows, err := tx.Query(ctx, `
		SELECT c.relname, a.attname, s.seq
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_serial_sequence(pg_catalog.format('%I.%I', n.nspname, c.relname), a.attname) AS seq) s
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND s.seq IS NOT NULL
		ORDER BY c.relname, a.attname`, target)
	if err != nil {
		return fmt.Errorf("list the sequences of %s: %w", target, err)
	}
	type column struct{ table, name, seq string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		return c, r.Scan(&c.table, &c.name, &c.seq)
	})
	if err != nil || len(cols) == 0 {
		return err
	}
	batch := &pgx.Batch{}
	for _, c := range cols {
		// setval(seq, max) makes the next value max + increment. A column whose largest value
		// lies below the sequence's start needs nothing; a descending sequence is left alone.
		batch.Queue(fmt.Sprintf(`SELECT pg_catalog.setval($1::regclass, x.m)
			FROM (SELECT pg_catalog.max(%s)::bigint AS m FROM %s) x, pg_catalog.pg_sequence s
			WHERE s.seqrelid = $1::regclass AND s.seqincrement > 0 AND x.m >= s.seqstart`,
			pgx.Identifier{c.name}.Sanitize(), pgx.Identifier{target, c.table}.Sanitize()), c.seq)
	}
	results := tx.SendBatch(ctx, batch)
	for _, c := range cols {
		if _, err := results.Exec(); err != nil {
			_ = results.Close()
			return fmt.Errorf("advance the sequence of %s.%s: %w", c.table, c.name, err)
		}
	}
	return results.Close()
}
