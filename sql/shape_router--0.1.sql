/* shape_router--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION shape_router" to load this file. \quit

-- The shape catalog.  A user_catalog_table, so that the output plugin can
-- read it under the historic snapshot of the change being decoded.  Rows are
-- written only by add_shape()/add_shapes()/remove_shape().
CREATE TABLE shape_router.shapes (
	shape_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	relid oid NOT NULL,
	-- registered by add_shape_concurrently(), which has not finished yet
	pending boolean NOT NULL DEFAULT false,
	where_clause text,
	qual pg_node_tree,
	columns int2[],
	owner oid NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
) WITH (user_catalog_table = true);

CREATE INDEX shapes_relid_idx ON shape_router.shapes (relid);
-- not partial: the catalog tuple routines that write the catalog keep
-- every index of a row, predicate or not (deduplication keeps it small)
CREATE INDEX shapes_pending_idx ON shape_router.shapes (pending);

REVOKE ALL ON shape_router.shapes FROM PUBLIC;
GRANT SELECT ON shape_router.shapes TO PUBLIC;
GRANT USAGE ON SCHEMA shape_router TO PUBLIC;

CREATE FUNCTION shape_router.add_shape(rel regclass,
									   where_clause text DEFAULT NULL,
									   columns text[] DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'add_shape'
LANGUAGE C VOLATILE;

CREATE FUNCTION shape_router.add_shapes(rel regclass, where_clauses text[])
RETURNS bigint[]
AS 'MODULE_PATHNAME', 'add_shapes'
LANGUAGE C VOLATILE;

CREATE FUNCTION shape_router.remove_shape(shape_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'remove_shape'
LANGUAGE C VOLATILE STRICT;

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

CREATE FUNCTION shape_router.matching_shapes(rel regclass, "row" jsonb)
RETURNS bigint[]
AS 'MODULE_PATHNAME', 'matching_shapes'
LANGUAGE C STABLE STRICT;

CREATE FUNCTION shape_router.explain_shape(shape_id bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'explain_shape'
LANGUAGE C STABLE STRICT;

-- TRUNCATE of the catalog is refused, also for superusers and whatever
-- session_replication_role says (ENABLE ALWAYS): it discards the files
-- that streams behind it read the catalog's past from under historic
-- snapshots.  Shapes are removed with remove_shape().
CREATE FUNCTION shape_router.refuse_truncate()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'cannot truncate shape_router.shapes'
		USING ERRCODE = 'feature_not_supported',
			  DETAIL = 'Replication slots decoding with shape_router read this catalog as of earlier positions in the WAL.',
			  HINT = 'Remove shapes with shape_router.remove_shape(shape_id).';
END $$;

CREATE TRIGGER shapes_no_truncate
	BEFORE TRUNCATE ON shape_router.shapes
	FOR EACH STATEMENT EXECUTE FUNCTION shape_router.refuse_truncate();
ALTER TABLE shape_router.shapes ENABLE ALWAYS TRIGGER shapes_no_truncate;

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
