--
-- decoding_ddl: shapes and table DDL while the stream runs (design.md
-- section 2): a shape whose table stops fitting it (referenced column
-- dropped or retyped, table dropped, replica identity no longer FULL) gets
-- S invalidated, with a reason, in the transaction of the DDL, and no
-- further records; the table's other shapes keep routing, with the new
-- column layout.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_dddl CASCADE;
RESET client_min_messages;
CREATE SCHEMA sr_dddl;
SET search_path = sr_dddl, public;

-- Shape ids go on from where earlier files left the sequence: records show
-- them relative to this file's start (1 = the first shape added here), B/C
-- records with their xid and LSN replaced, and the free-form reason of
-- S invalidated records as "...".
CREATE TABLE id_base AS
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base
    FROM shape_router.shapes_shape_id_seq;
SET sr_regress.hide_reason = on;
\i sql/include/show.sql

CREATE TABLE t1 (id int PRIMARY KEY, a int, b int, c text);
ALTER TABLE t1 REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('t1', 'a > 0') - base AS s1 FROM id_base;
SELECT shape_router.add_shape('t1', 'b > 0') - base AS s2 FROM id_base;
SELECT shape_router.add_shape('t1', NULL, ARRAY['c']) - base AS s3 FROM id_base;
SELECT shape_router.add_shape('t1', 'a > 0 AND b > 0') - base AS s4 FROM id_base;
SELECT shape_router.add_shape('t1') - base AS s5 FROM id_base;
CREATE TABLE t2 (id int PRIMARY KEY, n int, s text);
ALTER TABLE t2 REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('t2', 'n > 10') - base AS s6 FROM id_base;
SELECT shape_router.add_shape('t2', 's = ''a''') - base AS s7 FROM id_base;
CREATE TABLE t3 (id int PRIMARY KEY, v int);
ALTER TABLE t3 REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('t3', 'v > 0') - base AS s8 FROM id_base;
SELECT shape_router.add_shape('t3') - base AS s9 FROM id_base;
CREATE TABLE t4 (id int PRIMARY KEY, v int);
ALTER TABLE t4 REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('t4', 'v > 0') - base AS s10 FROM id_base;
SELECT shape_router.add_shape('t4') - base AS s11 FROM id_base;
CREATE TABLE t5 (id int PRIMARY KEY, v int);
ALTER TABLE t5 REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('t5', 'v > 0') - base AS s12 FROM id_base;

SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_decoding_ddl', 'shape_router');

--
-- DROP COLUMN of a column shapes 2 and 4 read: both invalidated in the
-- ALTER's transaction; shapes 1, 3 and 5 go on without the column
--
INSERT INTO t1 VALUES (1, 1, 1, 'x');
ALTER TABLE t1 DROP COLUMN b;
INSERT INTO t1 VALUES (2, 2, 'y');
UPDATE t1 SET a = 5 WHERE id = 1;
DELETE FROM t1 WHERE id = 2;
-- S invalidated names the shape's table and gives a reason
SELECT data::jsonb->'shape' = to_jsonb(base + 2) OR data::jsonb->'shape' = to_jsonb(base + 4) AS shape_2_or_4,
       data::jsonb->'schema' AS schema, data::jsonb->'table' AS table,
       jsonb_typeof(data::jsonb->'reason') AS reason_type,
       length(data::jsonb->>'reason') > 0 AS has_reason
  FROM pg_logical_slot_peek_changes('regression_slot_decoding_ddl', NULL, NULL), id_base
 WHERE data LIKE '{"action":"S"%';
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_ddl', NULL, NULL);

-- ADD COLUMN and RENAME COLUMN of columns no shape reads, RENAME of the
-- table: every shape keeps routing, and records show the new layout; a row
-- written before ADD COLUMN ... DEFAULT shows the default in "old"/"new"
ALTER TABLE t1 ADD COLUMN d int DEFAULT 7;
INSERT INTO t1 VALUES (3, 3, 'z', 4);
UPDATE t1 SET c = 'x!' WHERE id = 1;
ALTER TABLE t1 RENAME COLUMN d TO dd;
ALTER TABLE t1 RENAME TO t1_renamed;
UPDATE t1_renamed SET dd = 8 WHERE id = 3;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_ddl', NULL, NULL,
  'include-old', '1');

-- DROP COLUMN of a column shape 3 only sends (its columns argument) and
-- no predicate reads: shape 3 goes on, sending what is left of it, the key
ALTER TABLE t1_renamed DROP COLUMN c;
UPDATE t1_renamed SET a = 6 WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_ddl', NULL, NULL);

-- the invalidated shapes stay silent in a later stream too (restarting the
-- stream changes nothing), and are not reported again
INSERT INTO t1_renamed VALUES (4, 4, 1);
TRUNCATE t1_renamed;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_ddl', NULL, NULL);

--
-- ALTER COLUMN ... TYPE of a column shape 6 reads, between two changes of
-- one transaction: S invalidated stands between them in WAL order; the
-- table rewrite itself writes nothing; shape 7 goes on
--
BEGIN;
INSERT INTO t2 VALUES (1, 11, 'a');
ALTER TABLE t2 ALTER COLUMN n TYPE bigint;
INSERT INTO t2 VALUES (2, 22, 'a');
COMMIT;
UPDATE t2 SET n = 33 WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_ddl', NULL, NULL);

--
-- DROP TABLE: every shape of the table invalidated, in the DROP's
-- transaction, with the table's names
--
BEGIN;
INSERT INTO t3 VALUES (1, 1);
DROP TABLE t3;
COMMIT;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_ddl', NULL, NULL);

--
-- FULL -> DEFAULT: UPDATE and DELETE no longer log the old row, and the
-- shapes were added under FULL, so the stream has no members of them: they
-- are unsynced (once per slot) and route nothing while DEFAULT; under FULL
-- again they route from the old row (docs/default-identity.md)
--
INSERT INTO t4 VALUES (1, 1);
ALTER TABLE t4 REPLICA IDENTITY DEFAULT;
INSERT INTO t4 VALUES (2, 2);
UPDATE t4 SET v = 3 WHERE id = 1;
ALTER TABLE t4 REPLICA IDENTITY FULL;
INSERT INTO t4 VALUES (3, 3);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_ddl', NULL, NULL);
INSERT INTO t4 VALUES (4, 4);
DELETE FROM t4 WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_ddl', NULL, NULL);

--
-- the same for ALTER COLUMN ... TYPE there and back: shape 12 was
-- invalidated, and a later stream does not revive it
--
INSERT INTO t5 VALUES (1, 1);
ALTER TABLE t5 ALTER COLUMN v TYPE bigint;
ALTER TABLE t5 ALTER COLUMN v TYPE int;
INSERT INTO t5 VALUES (2, 2);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_ddl', NULL, NULL);
INSERT INTO t5 VALUES (3, 3);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_ddl', NULL, NULL);

-- cleanup
SELECT pg_drop_replication_slot('regression_slot_decoding_ddl');
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(shape_id)) AS not_removed
  FROM shape_router.shapes;
SET client_min_messages = warning;
DROP SCHEMA sr_dddl CASCADE;
