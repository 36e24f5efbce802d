/* shape_router--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION shape_router" to load this file. \quit

-- The shape catalog.  A user_catalog_table, so that the output plugin can
-- read it under the historic snapshot of the change being decoded.  Rows are
-- written only by add_shape()/add_shapes()/remove_shape().
CREATE TABLE shape_router.shapes (
	shape_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	relid oid NOT NULL,
	where_clause text,
	qual pg_node_tree,
	columns int2[],
	owner oid NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
) WITH (user_catalog_table = true);

CREATE INDEX shapes_relid_idx ON shape_router.shapes (relid);

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
