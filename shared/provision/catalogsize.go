package provision

// This file: the bytes a schema's objects take in the system catalogs, which its relations'
// sizes do not show. A sandbox's role stores text there as freely as in a table: a function
// body or a comment of 32 MB, a role setting of 3 MB, or tables of 1,600 columns grew the
// database while the schema's relations stayed at 0 bytes.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// keySet names a set of objects of the measured schemas, as a CTE of catalogSizeSQL with the
// columns key (an object's OID, or a name) and nsp (the schema's OID).
type keySet string

const (
	bySchema   keySet = "s"     // the schemas themselves
	byName     keySet = "names" // the schemas' names
	byRelation keySet = "rels"  // their relations (pg_class)
	byType     keySet = "types" // their types
	byProc     keySet = "procs" // their functions
	byRole     keySet = "roles" // the role named like each schema
	byObject   keySet = "objs"  // any object above, with its catalog (classoid)
)

// catalogPart is a catalog whose rows describe objects of the measured schemas: those whose
// key column is in keys.
type catalogPart struct {
	table, key string
	keys       keySet
	// class names the catalog column with the object's catalog, for keys byObject.
	class string
	// object: its rows are objects of their own (an OID that a comment or a dependency
	// names); a column's comment is its relation's (objsubid), and rows of pg_attribute,
	// pg_index and the like are none.
	object bool
}

// catalogParts are the catalogs a sandbox's role can add rows to with its rights (it owns its
// schema and nothing else; it cannot create a schema, an extension, an event trigger or a
// publication, nor comment on a role). pg_statistic_ext_data, the extended statistics, is not
// counted: only a superuser may read it, and its view (pg_stats_ext) rebuilds every value.
var catalogParts = slices.Concat(
	// The schema and its objects with an OID of their own.
	catalogPartsOf(bySchema, true, "pg_namespace.oid", "pg_class.relnamespace", "pg_type.typnamespace",
		"pg_proc.pronamespace", "pg_constraint.connamespace", "pg_operator.oprnamespace", "pg_opclass.opcnamespace",
		"pg_opfamily.opfnamespace", "pg_collation.collnamespace", "pg_conversion.connamespace",
		"pg_statistic_ext.stxnamespace", "pg_ts_config.cfgnamespace", "pg_ts_dict.dictnamespace"),
	catalogPartsOf(byRelation, true, "pg_attrdef.adrelid", "pg_rewrite.ev_class", "pg_trigger.tgrelid", "pg_policy.polrelid"),
	// Rows that are part of an object: its columns, its index, its partitioning, its labels.
	catalogPartsOf(byRelation, false, "pg_attribute.attrelid", "pg_index.indexrelid", "pg_partitioned_table.partrelid",
		"pg_inherits.inhrelid", "pg_sequence.seqrelid"),
	catalogPartsOf(byType, false, "pg_enum.enumtypid", "pg_range.rngtypid"),
	catalogPartsOf(byProc, false, "pg_aggregate.aggfnoid"),
	// The role's own settings and default privileges, and the record of what it owns.
	catalogPartsOf(byRole, false, "pg_db_role_setting.setrole", "pg_default_acl.defaclrole", "pg_shdepend.refobjid"),
	[]catalogPart{
		{table: "pg_description", key: "objoid", keys: byObject, class: "classoid"},
		{table: "pg_depend", key: "objid", keys: byObject, class: "classid"},
		// The statistics ANALYZE keeps of the schema's columns, through the view that shows
		// them to a member of the owner (the control user is one of every sandbox role;
		// pg_statistic is a superuser's): up to 10,000 values of up to 1 kB a column, and
		// they stay when the table is truncated.
		{table: "pg_stats", key: "schemaname", keys: byName},
	},
)

// catalogPartsOf returns a part for each "table.key" of columns, keyed by keys.
func catalogPartsOf(keys keySet, object bool, columns ...string) []catalogPart {
	out := make([]catalogPart, len(columns))
	for i, column := range columns {
		table, key, _ := strings.Cut(column, ".")
		out[i] = catalogPart{table: table, key: key, keys: keys, object: object}
	}
	return out
}

// tupleOverhead is what PostgreSQL adds to each row of a table: its header (23 bytes, aligned
// to 24) and its line pointer (4).
const tupleOverhead = 28

// catalogSizeSQL returns the query of the catalog part of schemaSizes: for each existing
// schema of $1 (rows nspname, bytes), the rows that describe its objects in the catalogs. A
// catalog row counts its overhead, its fixed-width columns and pg_column_size of each of its
// variable-width ones, which is their stored size (compressed, or in TOAST) read from the row
// without fetching the value. The columns come from the server's own pg_attribute, so the
// query fits its version: q is asked for them first. No row of a sandbox's relation is read.
func catalogSizeSQL(ctx context.Context, q querier) (string, error) {
	tables := make([]string, 0, len(catalogParts))
	for _, part := range catalogParts {
		tables = append(tables, part.table)
	}
	rows, err := q.Query(ctx, `
		SELECT c.relname::text, coalesce(pg_catalog.sum(a.attlen) FILTER (WHERE a.attlen > 0), 0)::bigint,
			coalesce(pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attlen = -1), '{}')
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
		WHERE c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace AND c.relname = ANY($1)
			AND a.attnum > 0 AND NOT a.attisdropped
		GROUP BY c.relname`, tables)
	if err != nil {
		return "", fmt.Errorf("read the catalogs' columns: %w", err)
	}
	type layout struct {
		fixed    int64
		variable []string
	}
	layouts := make(map[string]layout, len(tables))
	var (
		table string
		l     layout
	)
	if _, err := pgx.ForEachRow(rows, []any{&table, &l.fixed, &l.variable}, func() error {
		layouts[table] = l
		return nil
	}); err != nil {
		return "", fmt.Errorf("read the catalogs' columns: %w", err)
	}

	parts := make([]string, 0, len(catalogParts))
	for _, part := range catalogParts {
		l, ok := layouts[part.table]
		if !ok {
			return "", fmt.Errorf("read the catalogs' columns: the server has no %s", part.table)
		}
		bytes := fmt.Sprintf("%d", tupleOverhead+l.fixed)
		for _, column := range l.variable {
			bytes += " + coalesce(pg_catalog.pg_column_size(t." + pgx.Identifier{column}.Sanitize() + "), 0)"
		}
		on := "t." + part.key + " = k.key"
		if part.class != "" {
			on += " AND t." + part.class + " = k.classoid"
		}
		if part.keys == byName {
			// Said of the view itself, the names reach into its plan: joined only, pg_stats
			// read the statistics of every table of the database first (33 of 54 ms for
			// one schema among 500).
			on += " AND t." + part.key + " = ANY($1)"
		}
		parts = append(parts, fmt.Sprintf("SELECT k.nsp, pg_catalog.sum(%s) AS bytes FROM pg_catalog.%s t JOIN %s k ON %s GROUP BY k.nsp",
			bytes, part.table, part.keys, on))
	}
	// Each part is one pass over its catalog joined to the schemas, not a subquery per schema,
	// as for the relations (relationSizeSQL).
	return `
		WITH s AS (SELECT n.oid, n.oid AS key, n.oid AS nsp, n.nspname FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY($1)),
		names AS (SELECT s.nspname AS key, s.oid AS nsp FROM s),
		rels AS (SELECT c.oid AS key, c.relnamespace AS nsp FROM pg_catalog.pg_class c JOIN s ON c.relnamespace = s.oid),
		types AS (SELECT y.oid AS key, y.typnamespace AS nsp FROM pg_catalog.pg_type y JOIN s ON y.typnamespace = s.oid),
		procs AS (SELECT p.oid AS key, p.pronamespace AS nsp FROM pg_catalog.pg_proc p JOIN s ON p.pronamespace = s.oid),
		roles AS (SELECT r.oid AS key, s.oid AS nsp FROM pg_catalog.pg_roles r JOIN s ON s.nspname = r.rolname),
		objs AS (` + objectsSQL() + `)
		SELECT s.nspname::text, pg_catalog.sum(p.bytes)::bigint FROM s JOIN (
			` + strings.Join(parts, "\n\t\t\tUNION ALL ") + `) p ON p.nsp = s.oid GROUP BY s.nspname`, nil
}

// objectsSQL is the byObject set: every object of the schemas that may have a comment or a
// dependency of its own, with its catalog's OID.
func objectsSQL() string {
	var out []string
	for _, part := range catalogParts {
		if part.object {
			out = append(out, fmt.Sprintf("SELECT 'pg_catalog.%s'::pg_catalog.regclass::pg_catalog.oid AS classoid, t.oid AS key, k.nsp FROM pg_catalog.%s t JOIN %s k ON t.%s = k.key",
				part.table, part.table, part.keys, part.key))
		}
	}
	return strings.Join(out, " UNION ALL ")
}
