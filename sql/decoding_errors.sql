--
-- decoding_errors: a shape whose predicate raises on a row (division by
-- zero, a failing cast, a function outside its domain) gets S invalidated
-- with the error, in the transaction of the change, and nothing more; every
-- other shape still gets the change (design.md section 3: "an evaluation
-- error in one shape invalidates that shape alone").  Shapes added after
-- the error route the same row normally.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_derr CASCADE;
RESET client_min_messages;
CREATE SCHEMA sr_derr;
SET search_path = sr_derr, public;

-- Shape ids relative to this file's start; B/C xids and LSNs hidden.
CREATE TABLE id_base AS
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base
    FROM shape_router.shapes_shape_id_seq;
\i sql/include/show.sql

CREATE TABLE t (id int PRIMARY KEY, a int, b int, s text);
ALTER TABLE t REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('t', 'a / b > 0') - base AS s1 FROM id_base;
SELECT shape_router.add_shape('t', 'a > 0') - base AS s2 FROM id_base;
SELECT shape_router.add_shape('t') - base AS s3 FROM id_base;
SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_decoding_errors', 'shape_router');

-- The review's repro: shape 1 raises on (1, 5, 0); shapes 2 and 3 get I
INSERT INTO t VALUES (1, 5, 0, 'x');
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_errors', NULL, NULL);

-- The stream goes on: shape 1 stays silent, also on rows it would match,
-- and in a later stream (it was invalidated at a commit before this one)
INSERT INTO t VALUES (2, 4, 2, 'y');
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_errors', NULL, NULL);

-- Several shapes raising on one change, in between shapes that don't:
-- each is invalidated with its own error, the others route
SELECT shape_router.add_shape('t', 's::int > 0') - base AS s4 FROM id_base;
SELECT shape_router.add_shape('t', 'b >= 0') - base AS s5 FROM id_base;
SELECT shape_router.add_shape('t', 'sqrt(b - a) > 1') - base AS s6 FROM id_base;
SELECT shape_router.add_shape('t', 'a % b = 0') - base AS s7 FROM id_base;
SELECT shape_router.add_shape('t', 'ln(b) > 0') - base AS s8 FROM id_base;
SELECT shape_router.add_shape('t', 's IS NOT NULL') - base AS s9 FROM id_base;
INSERT INTO t VALUES (3, 1, 0, 'not a number');
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_errors', NULL, NULL);

-- UPDATE: the old row matches shape 10, the new row raises: no U for it,
-- nor a move-out; shape 11 (the same columns, no error) gets its U
SELECT shape_router.add_shape('t', '100 / a > 0') - base AS s10 FROM id_base;
SELECT shape_router.add_shape('t', 'a <> 0') - base AS s11 FROM id_base;
UPDATE t SET a = 0, b = 1 WHERE id = 2;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_errors', NULL, NULL);

-- Shapes added after the error route the same rows: UPDATE and DELETE of
-- the rows the errors happened on
-- (shape 12 guards its division as written: b <> 0 is evaluated first)
SELECT shape_router.add_shape('t', 'b <> 0 AND a / b > 0') - base AS s12 FROM id_base;
SELECT shape_router.add_shape('t', 'b = 0') - base AS s13 FROM id_base;
UPDATE t SET b = 1 WHERE id = 1;
DELETE FROM t WHERE id = 3;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_errors', NULL, NULL);

-- A numeric NaN cast to integer raises 0A000, not a data exception: the
-- same, one shape invalidated, the others routed
CREATE TABLE r (id int PRIMARY KEY, n numeric, a int);
ALTER TABLE r REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('r', 'a > 0') - base AS s14 FROM id_base;
SELECT shape_router.add_shape('r', 'n::int > 0') - base AS s15 FROM id_base;
INSERT INTO r VALUES (1, 5, 1), (2, 'NaN', 1), (3, 2, 3);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_errors', NULL, NULL);

-- matching_shapes raises PostgreSQL's own error (it has no stream to
-- invalidate the shape in)
SELECT shape_router.matching_shapes('t', '{"id": 9, "a": 1, "b": 0}');

-- cleanup
SELECT pg_drop_replication_slot('regression_slot_decoding_errors');
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(shape_id)) AS not_removed
  FROM shape_router.shapes;
SET client_min_messages = warning;
DROP SCHEMA sr_derr CASCADE;
