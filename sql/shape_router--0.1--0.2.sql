/* shape_router--0.1--0.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION shape_router UPDATE TO '0.2'" to load this file. \quit

-- 0.2 is also what CREATE EXTENSION installs: this script on top of
-- shape_router--0.1.sql, so a new and an updated catalog are the same.

-- Registered by add_shape_concurrently(), which has not finished yet.  The
-- last column; with a constant default no row is rewritten, so streams that
-- decode across the update see no change to any shape.
ALTER TABLE shape_router.shapes
	ADD COLUMN pending boolean NOT NULL DEFAULT false;
-- not partial: the catalog tuple routines that write the catalog keep
-- every index of a row, predicate or not (deduplication keeps it small)
CREATE INDEX shapes_pending_idx ON shape_router.shapes (pending);

CREATE FUNCTION shape_router.resync_shapes(shape_ids bigint[] DEFAULT NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'resync_shapes'
LANGUAGE C VOLATILE;

-- Adds a shape without blocking writers (docs/concurrent.md): registers it,
-- waits for the transactions that could not see the registration, finds its
-- initial members, and waits again, committing in between.  Not inside a
-- transaction block.
CREATE PROCEDURE shape_router.add_shape_concurrently(rel regclass,
													 where_clause text DEFAULT NULL,
													 columns text[] DEFAULT NULL,
													 INOUT shape_id bigint DEFAULT NULL)
AS 'MODULE_PATHNAME', 'add_shape_concurrently'
LANGUAGE C;

-- pg_dump and pg_restore (docs/sql-api.md, "Dump and restore").  The
-- catalog cannot go into a dump as it is (qual is a pg_node_tree, which
-- nothing can read back, and relid, columns and owner are numbers of this
-- database), so the dump holds shapes_dump: empty but for shapes a restore
-- could not register, it is dumped with what shapes_for_dump() returns,
-- every shape deparsed with today's names; restoring a row registers the
-- shape again (restore_shape()).
CREATE TABLE shape_router.shapes_dump (
	shape_id bigint NOT NULL,
	table_name text NOT NULL,	-- schema-qualified, quoted as needed
	where_clause text,			-- NULL = every row
	columns text[],				-- NULL = all columns
	owner text,					-- role name
	created_at timestamptz,
	-- why a restore could not register the shape (it stays here); NULL in
	-- the dump's rows
	error text
);
REVOKE ALL ON shape_router.shapes_dump FROM PUBLIC;

-- pg_dump runs this with an empty search_path: pg_get_expr() then
-- qualifies every name that needs it, as the restore reads it.
CREATE FUNCTION shape_router.shapes_for_dump()
RETURNS SETOF shape_router.shapes_dump
LANGUAGE sql STABLE
AS $$
	SELECT s.shape_id,
		   pg_catalog.format('%I.%I', n.nspname, c.relname),
		   pg_catalog.pg_get_expr(s.qual, s.relid),
		   CASE WHEN s.columns IS NOT NULL THEN
			   ARRAY(SELECT a.attname::text
					   FROM pg_catalog.unnest(s.columns) WITH ORDINALITY AS u(attnum, i)
					   JOIN pg_catalog.pg_attribute a
						 ON a.attrelid = s.relid AND a.attnum = u.attnum
					  ORDER BY u.i)
		   END,
		   pg_catalog.pg_get_userbyid(s.owner)::text,
		   s.created_at,
		   NULL::text
	  FROM shape_router.shapes s
	  JOIN pg_catalog.pg_class c ON c.oid = s.relid
	  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	 -- an unfinished add_shape_concurrently() is not a shape yet
	 WHERE NOT s.pending
	 ORDER BY s.shape_id
$$;

CREATE FUNCTION shape_router.restore_shape()
RETURNS trigger
AS 'MODULE_PATHNAME', 'restore_shape'
LANGUAGE C;

CREATE TRIGGER shapes_dump_restore
	BEFORE INSERT ON shape_router.shapes_dump
	FOR EACH ROW EXECUTE FUNCTION shape_router.restore_shape();

-- pg_dump reads "SELECT <columns> FROM shape_router.shapes_dump <filter>":
-- the rows a restore could not register, and the filter appends the shapes
-- themselves.  The identity sequence goes
-- along, so that add_shape() continues after the restored ids.
SELECT pg_catalog.pg_extension_config_dump('shape_router.shapes_dump',
	'WHERE error IS NOT NULL UNION ALL SELECT * FROM shape_router.shapes_for_dump()');
SELECT pg_catalog.pg_extension_config_dump('shape_router.shapes_shape_id_seq', '');

-- monitoring (slot_stats)
-- A slot's statistics, from the file its streams write into the slot's
-- directory (docs/monitoring.md).  Like pg_stat_replication, for pg_monitor.
CREATE FUNCTION shape_router.slot_stats(slot_name name,
	OUT changes_decoded bigint, OUT changes_routed bigint,
	OUT changes_skipped bigint, OUT changes_no_shapes bigint,
	OUT records_written bigint, OUT transactions bigint,
	OUT transactions_written bigint, OUT streams bigint,
	OUT shapes bigint, OUT shapes_routing bigint, OUT shapes_unsynced bigint,
	OUT shapes_pending bigint, OUT shapes_invalidated bigint,
	OUT membership_keys bigint, OUT membership_bytes bigint, OUT tables bigint,
	OUT last_start_ms float8, OUT memory_bytes bigint,
	OUT peak_memory_bytes bigint, OUT stream_started_at timestamptz,
	OUT updated_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'slot_stats'
LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION shape_router.slot_path_stats(slot_name name,
	OUT access_path text, OUT candidates bigint, OUT evaluations bigint,
	OUT matches bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'slot_path_stats'
LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION shape_router.slot_table_stats(slot_name name,
	OUT relid regclass, OUT shapes bigint, OUT shapes_routing bigint,
	OUT shapes_unsynced bigint, OUT shapes_pending bigint,
	OUT shapes_invalidated bigint, OUT membership_keys bigint,
	OUT membership_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'slot_table_stats'
LANGUAGE C VOLATILE STRICT;

REVOKE ALL ON FUNCTION shape_router.slot_stats(name),
	shape_router.slot_path_stats(name),
	shape_router.slot_table_stats(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shape_router.slot_stats(name),
	shape_router.slot_path_stats(name),
	shape_router.slot_table_stats(name) TO pg_monitor;
-- end of monitoring (slot_stats)
