--
-- monitoring: shape_router.slot_stats(), slot_path_stats() and
-- slot_table_stats() (docs/monitoring.md), after a known workload decoded
-- with pg_logical_slot_get_changes (the backend's decoding context writes
-- the slot's statistics file when it ends).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_mon CASCADE;
RESET client_min_messages;
CREATE SCHEMA sr_mon;
SET search_path = sr_mon, public;

CREATE TABLE id_base AS
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base
    FROM shape_router.shapes_shape_id_seq;
\i sql/include/show.sql

-- Only this file's shapes: the next 30 ids (other files' shapes stay in
-- the catalog, on tables of their own).
CREATE VIEW opts AS
  SELECT string_agg((base + i)::text, ',') AS ids
    FROM id_base, generate_series(1, 30) AS i;
CREATE FUNCTION changes() RETURNS SETOF text LANGUAGE sql AS $$
  SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_monitoring',
    NULL, NULL, 'shapes', (SELECT ids FROM opts))
$$;
CREATE FUNCTION peek() RETURNS SETOF text LANGUAGE sql AS $$
  SELECT show(data) FROM pg_logical_slot_peek_changes('regression_slot_monitoring',
    NULL, NULL, 'shapes', (SELECT ids FROM opts))
$$;
CREATE VIEW stats AS
  SELECT changes_decoded, changes_routed, changes_skipped, changes_no_shapes,
         records_written, transactions, transactions_written, streams,
         shapes, shapes_routing, shapes_unsynced, shapes_pending,
         shapes_invalidated, membership_keys, tables
    FROM shape_router.slot_stats('regression_slot_monitoring');
CREATE VIEW paths AS
  SELECT * FROM shape_router.slot_path_stats('regression_slot_monitoring')
   WHERE candidates > 0 OR evaluations > 0;

-- one shape per kind of access path, on a REPLICA IDENTITY FULL table
CREATE TABLE t (id int PRIMARY KEY, k int, v text, flag bool, tags int[]);
ALTER TABLE t REPLICA IDENTITY FULL;
CREATE TABLE plain (id int PRIMARY KEY);
SELECT shape_router.add_shape('t', 'k = 1') - base AS s1 FROM id_base;
SELECT shape_router.add_shape('t', 'k IN (2, 3)') - base AS s2 FROM id_base;
SELECT shape_router.add_shape('t', 'k BETWEEN 10 AND 20') - base AS s3 FROM id_base;
SELECT shape_router.add_shape('t', 'v LIKE ''ab%''') - base AS s4 FROM id_base;
SELECT shape_router.add_shape('t', 'v LIKE ''%xyz%''') - base AS s5 FROM id_base;
SELECT shape_router.add_shape('t', 'flag') - base AS s6 FROM id_base;
SELECT shape_router.add_shape('t', 'v IS NULL') - base AS s7 FROM id_base;
SELECT shape_router.add_shape('t', 'tags @> ''{7}''') - base AS s8 FROM id_base;
SELECT shape_router.add_shape('t', 'k + 0 = 5') - base AS s9 FROM id_base;
SELECT shape_router.add_shape('t', 'k = 100 OR v LIKE ''zz%''') - base AS s10 FROM id_base;
SELECT s.shape_id - base AS shape, split_part(shape_router.explain_shape(s.shape_id), E'\n', 1) AS path
  FROM shape_router.shapes s, id_base
 WHERE s.relid = 't'::regclass ORDER BY 1;

-- a REPLICA IDENTITY DEFAULT table: a shape added before the slot has no
-- members in it (unsynced), one added after has (routing)
CREATE TABLE d (id int PRIMARY KEY, val int);
INSERT INTO d VALUES (1, 5), (2, -5);
SELECT shape_router.add_shape('d', 'val > 0') - base AS s11 FROM id_base;

-- unknown slot; a slot without a file yet: zeros, and NULL for what only
-- a stream can tell
SELECT * FROM shape_router.slot_stats('no_such_slot');
SELECT * FROM shape_router.slot_path_stats('no_such_slot');
SELECT * FROM shape_router.slot_table_stats('no_such_slot');
SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_monitoring', 'shape_router');
SELECT * FROM stats;
SELECT last_start_ms IS NULL AS no_start, memory_bytes IS NULL AS no_memory,
       updated_at IS NULL AS never_written
  FROM shape_router.slot_stats('regression_slot_monitoring');
SELECT count(*) FROM shape_router.slot_path_stats('regression_slot_monitoring');
SELECT count(*) FROM shape_router.slot_table_stats('regression_slot_monitoring');

SELECT shape_router.add_shape('d', 'val < 0') - base AS s12 FROM id_base;
SELECT shape_router.add_shape('d', '100 / (val - 7) > 0') - base AS s13 FROM id_base;

-- the workload: 9 changes, one transaction each (after the 2 catalog rows
-- of the add_shape calls)
INSERT INTO t VALUES (1, 1, 'abc', false, '{7}');	-- s1 s4 s8 (and s9 evaluated)
INSERT INTO t VALUES (2, 15, 'qxyzq', true, NULL);	-- s3 s5 s6 (s9)
INSERT INTO t VALUES (3, 5, NULL, NULL, '{}');	-- s7 s9
INSERT INTO plain VALUES (1);						-- a table without shapes
UPDATE t SET k = 2 WHERE id = 1;					-- U s4 s8, I in s2, D out s1
DELETE FROM t WHERE id = 3;							-- s7 s9
INSERT INTO t VALUES (4, 99, 'nothing', false, '{1}');	-- a candidate, no match
TRUNCATE plain;
INSERT INTO d VALUES (3, 7);						-- s13 fails: invalidated
SELECT * FROM changes();
SELECT * FROM stats;
SELECT * FROM paths;
SELECT relid, shapes, shapes_routing, shapes_unsynced, shapes_pending,
       shapes_invalidated, membership_keys, membership_bytes > 0 AS has_bytes
  FROM shape_router.slot_table_stats('regression_slot_monitoring') ORDER BY relid::text;
SELECT last_start_ms >= 0 AS started, memory_bytes > 0 AS memory,
       peak_memory_bytes >= memory_bytes AS peak,
       stream_started_at <= updated_at AS order, updated_at <= now() AS written
  FROM shape_router.slot_stats('regression_slot_monitoring');

-- the next stream adds to the totals (streams 2); peek decodes without
-- consuming, so the same change is counted by every peek (streams 3, 4)
UPDATE t SET flag = true WHERE id = 4;				-- I in s6
SELECT * FROM changes();
SELECT changes_decoded, changes_routed, records_written, transactions, streams FROM stats;
INSERT INTO t VALUES (5, 1, NULL, NULL, NULL);		-- s1 s7
SELECT * FROM peek();
SELECT * FROM peek();
SELECT changes_decoded, changes_routed, records_written, transactions, streams FROM stats;
SELECT * FROM paths;

-- a resync: s11 gets its members in this slot and routes
SELECT shape_router.resync_shapes(ARRAY[(SELECT base + 11 FROM id_base)]);
SELECT * FROM changes();
SELECT relid, shapes, shapes_routing, shapes_unsynced, shapes_invalidated, membership_keys
  FROM shape_router.slot_table_stats('regression_slot_monitoring') ORDER BY relid::text;

-- readable by pg_monitor, not by PUBLIC
CREATE ROLE sr_mon_nobody;
CREATE ROLE sr_mon_monitor IN ROLE pg_monitor;
SET ROLE sr_mon_nobody;
SELECT streams FROM shape_router.slot_stats('regression_slot_monitoring');
SET ROLE sr_mon_monitor;
SELECT streams FROM shape_router.slot_stats('regression_slot_monitoring');
SELECT count(*) FROM shape_router.slot_path_stats('regression_slot_monitoring');
RESET ROLE;
DROP ROLE sr_mon_nobody;
DROP ROLE sr_mon_monitor;

-- the file goes with the slot
SELECT pg_drop_replication_slot('regression_slot_monitoring');
SELECT * FROM shape_router.slot_stats('regression_slot_monitoring');
