--
-- decoding_catalog: names, the catalog and the extension itself changing
-- under a running stream.  Schema and table renames are seen by the next
-- record; a TRUNCATE of the catalog removes every shape (S removed, in the
-- TRUNCATE's transaction); DROP EXTENSION ends every shape with S removed
-- and a reason, and the slot goes on (it used to fail in every later
-- transaction); a later CREATE EXTENSION starts afresh, also in streams
-- started before the DROP and after it.
--
-- It drops the extension: run it last.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_dcat CASCADE;
DROP SCHEMA IF EXISTS sr_dcat2 CASCADE;
RESET client_min_messages;
CREATE SCHEMA sr_dcat;
SET search_path = sr_dcat, public;

CREATE TABLE id_base AS
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base
    FROM shape_router.shapes_shape_id_seq;
-- (the schema is renamed and back below: search_path names both)
SET search_path = sr_dcat, sr_dcat2, public;
\i sql/include/show.sql

CREATE TABLE t (id int PRIMARY KEY, a int);
ALTER TABLE t REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('t', 'a > 0') - base AS s1 FROM id_base;
SELECT shape_router.add_shape('t') - base AS s2 FROM id_base;
SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_decoding_catalog', 'shape_router');

--
-- Renames mid-stream: each record names the table as it is at that point
-- of the WAL, in one stream (one call) as in the next
--
BEGIN;
INSERT INTO t VALUES (1, 1);
ALTER SCHEMA sr_dcat RENAME TO sr_dcat2;
INSERT INTO sr_dcat2.t VALUES (2, 2);
COMMIT;
INSERT INTO sr_dcat2.t VALUES (3, 3);
ALTER TABLE sr_dcat2.t RENAME TO t2;
INSERT INTO sr_dcat2.t2 VALUES (4, 4);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_catalog', NULL, NULL);
ALTER SCHEMA sr_dcat2 RENAME TO sr_dcat;
ALTER TABLE sr_dcat.t2 RENAME TO t;
UPDATE t SET a = 5 WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_catalog', NULL, NULL);

--
-- TRUNCATE of the catalog is refused, to a superuser too, and whatever
-- session_replication_role says: streams behind it read the catalog's past
--
TRUNCATE shape_router.shapes;
SET session_replication_role = replica;
TRUNCATE shape_router.shapes;
RESET session_replication_role;
SELECT count(*) AS shapes FROM shape_router.shapes;

--
-- DROP EXTENSION.  A stream that decodes it (a walsender that is caught
-- up, test/t/004_long_stream.pl) writes S removed for every shape.  One
-- that starts before it after it committed (every SQL-interface call
-- does) cannot read the catalog's past any more, whose files the DROP
-- truncated: a clear error with a hint, not a wedge, and the slot goes on
-- once advanced past the DROP.
--
SELECT shape_router.add_shape('t', 'a < 0') - base AS s3 FROM id_base;
INSERT INTO t VALUES (13, -13);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_catalog', NULL, NULL);
BEGIN;
INSERT INTO t VALUES (14, 14);
DROP EXTENSION shape_router;
INSERT INTO t VALUES (15, 15);
COMMIT;
CREATE TABLE public.sr_dcat_lsn AS SELECT pg_current_wal_lsn() AS lsn;
INSERT INTO t VALUES (16, 16);
\set SHOW_CONTEXT never
SELECT show(data) FROM pg_logical_slot_peek_changes('regression_slot_decoding_catalog', NULL, NULL);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_catalog', NULL, NULL);
\set SHOW_CONTEXT errors
SELECT 'advanced' FROM pg_replication_slot_advance('regression_slot_decoding_catalog',
  (SELECT lsn FROM public.sr_dcat_lsn));
INSERT INTO t VALUES (17, 17);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_catalog', NULL, NULL);

--
-- CREATE EXTENSION again: shape ids start over at 1 and route.  Shape 2
-- is invalidated by an error; after the next DROP and CREATE, the new
-- shape 2 is not: the invalidation log names the catalog the id was from.
-- A shape added in the CREATE's own transaction is reported and routes.
--
SET client_min_messages = warning;
CREATE EXTENSION shape_router;
RESET client_min_messages;
UPDATE id_base SET base = 0;
SELECT shape_router.add_shape('t', 'a > 0') AS s1;
SELECT shape_router.add_shape('t', 'a / (a - 20) > 0') AS s2;
INSERT INTO t VALUES (20, 20);
INSERT INTO t VALUES (21, 21);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_catalog', NULL, NULL);
SET client_min_messages = warning;
DROP EXTENSION shape_router;
RESET client_min_messages;
UPDATE public.sr_dcat_lsn SET lsn = pg_current_wal_lsn();
SELECT 'advanced' FROM pg_replication_slot_advance('regression_slot_decoding_catalog',
  (SELECT lsn FROM public.sr_dcat_lsn));
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION shape_router;
SELECT shape_router.add_shape('t', 'a > 21') AS s1;
INSERT INTO t VALUES (22, 22);
COMMIT;
INSERT INTO t VALUES (23, 23);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_catalog', NULL, NULL);
SELECT shape_router.add_shape('t', 'a > 0') AS s2;
INSERT INTO t VALUES (24, 24);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_catalog', NULL, NULL);

-- cleanup
SELECT pg_drop_replication_slot('regression_slot_decoding_catalog');
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(shape_id)) AS not_removed
  FROM shape_router.shapes;
SET client_min_messages = warning;
DROP SCHEMA sr_dcat CASCADE;
DROP TABLE public.sr_dcat_lsn;
