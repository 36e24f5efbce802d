--
-- decoding_default: tables without REPLICA IDENTITY FULL (design.md
-- sections 1-3).  The old side of UPDATE and DELETE comes from the
-- stream's membership index, fed by the initial members add_shape writes
-- into the WAL: the records are those a FULL table gives.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_ddef CASCADE;
RESET client_min_messages;
CREATE SCHEMA sr_ddef;
SET search_path = sr_ddef, public;
CREATE TABLE id_base AS
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base
    FROM shape_router.shapes_shape_id_seq;
\i sql/include/show.sql

SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_decoding_default', 'shape_router');

--
-- todos: REPLICA IDENTITY DEFAULT (the primary key).  Rows exist before
-- the shapes that match them.
--
CREATE TABLE todos (id bigint PRIMARY KEY, user_id int, status text, title text);
INSERT INTO todos VALUES (1, 1, 'open', 'a'), (2, 1, 'done', 'b'),
                         (3, 2, 'open', 'c'), (4, 3, 'open', 'd');
SELECT shape_router.add_shape('todos', 'user_id = 1') - base AS s1 FROM id_base;
SELECT shape_router.add_shape('todos', 'status = ''open''') - base AS s2 FROM id_base;
SELECT shape_router.add_shape('todos', 'user_id = 1', ARRAY['title']) - base AS s3 FROM id_base;
SELECT shape_router.add_shapes('todos', ARRAY['user_id = 2', NULL]) AS s45 \gset
-- U to shapes both rows are in, I move-in, D move-out: every kind
UPDATE todos SET title = 'a2' WHERE id = 1;
UPDATE todos SET status = 'open' WHERE id = 2;
UPDATE todos SET user_id = 2 WHERE id = 1;
UPDATE todos SET status = 'done', user_id = 3 WHERE id = 3;
DELETE FROM todos WHERE id = 4;
-- a key change: D of the old key, I of the new row
UPDATE todos SET id = 10 WHERE id = 2;
INSERT INTO todos VALUES (5, 1, 'open', 'e');
DELETE FROM todos WHERE id = 5;
DELETE FROM todos WHERE id = 404;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL);

-- "old" holds what PostgreSQL logged: the key, or nothing
UPDATE todos SET title = 'a3' WHERE id = 1;
UPDATE todos SET id = 11 WHERE id = 10;
DELETE FROM todos WHERE id = 11;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL,
                                                   'include-old', 'on');

-- peeking twice gives the same records; then get gives them again
INSERT INTO todos VALUES (6, 1, 'open', 'f');
UPDATE todos SET user_id = 9 WHERE id = 6;
CREATE TABLE peek1 AS SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_default', NULL, NULL);
CREATE TABLE peek2 AS SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_default', NULL, NULL);
SELECT (SELECT array_agg(data) FROM peek1) = (SELECT array_agg(data) FROM peek2) AS same_peeks,
       (SELECT count(*) FROM peek1) AS records;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL);

-- TRUNCATE: T to every shape, and every key leaves every shape
TRUNCATE todos;
INSERT INTO todos VALUES (1, 1, 'open', 'z');
DELETE FROM todos WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL);

--
-- keys: composite, uuid, text (USING INDEX), numeric of several scales
--
CREATE TABLE comp (a int, b text, v int, PRIMARY KEY (a, b));
INSERT INTO comp VALUES (1, 'x', 1), (1, 'y', 2), (2, 'x', 1);
CREATE TABLE uu (id uuid PRIMARY KEY, v int);
INSERT INTO uu VALUES ('00000000-0000-0000-0000-000000000001', 1),
                      ('00000000-0000-0000-0000-000000000002', 2);
CREATE TABLE tk (name text NOT NULL, v int);
CREATE UNIQUE INDEX tk_name ON tk (name);
ALTER TABLE tk REPLICA IDENTITY USING INDEX tk_name;
INSERT INTO tk VALUES ('alpha', 1), ('beta', 2);
CREATE TABLE nk (n numeric PRIMARY KEY, v int);
INSERT INTO nk VALUES (1.5, 1), (2.50, 2);
SELECT shape_router.add_shape('comp', 'v = 1') - base AS s6 FROM id_base;
SELECT shape_router.add_shape('uu', 'v = 1') - base AS s7 FROM id_base;
SELECT shape_router.add_shape('tk', 'v = 1') - base AS s8 FROM id_base;
SELECT shape_router.add_shape('nk', 'v = 1') - base AS s9 FROM id_base;
UPDATE comp SET v = 2 WHERE a = 1 AND b = 'x';
DELETE FROM comp WHERE a = 2;
UPDATE comp SET b = 'z', v = 1 WHERE a = 1 AND b = 'y';
DELETE FROM uu WHERE v = 1;
UPDATE uu SET v = 1;
DELETE FROM tk WHERE name = 'alpha';
UPDATE tk SET name = 'gamma', v = 1 WHERE name = 'beta';
DELETE FROM tk;
UPDATE nk SET n = 1.50 WHERE n = 1.5;
DELETE FROM nk WHERE n = 1.500;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL);

--
-- unchanged TOASTed values: the new row lacks them and there is no old
-- row.  A shape that reads one is evaluated with it unknown: it routes if
-- the answer is determined, and is invalidated if not.
--
CREATE TABLE docs (id int PRIMARY KEY, status text, body text);
ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO docs VALUES (1, 'open', repeat('x', 5000)), (2, 'open', repeat('y', 5000));
SELECT shape_router.add_shape('docs', 'status = ''open''') - base AS s10 FROM id_base;
SELECT shape_router.add_shape('docs', 'status = ''open'' AND body LIKE ''x%''') - base AS s11 FROM id_base;
SELECT shape_router.add_shape('docs', 'status = ''open'' OR body LIKE ''y%''') - base AS s12 FROM id_base;
-- status leaves 'open': s11 is false whatever body is; s12 is undetermined
UPDATE docs SET status = 'done' WHERE id = 2;
-- status stays: s11 now depends on body, s12 is true whatever body is
UPDATE docs SET status = 'open' WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL);

--
-- add_shape under REPEATABLE READ and SERIALIZABLE: the search sees every
-- committed row; the members hold
--
CREATE TABLE iso (id int PRIMARY KEY, v int);
INSERT INTO iso SELECT g, g % 3 FROM generate_series(1, 9) g;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM iso;
SELECT shape_router.add_shape('iso', 'v = 1') - base AS s13 FROM id_base;
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT shape_router.add_shape('iso', 'v = 2') - base AS s14 FROM id_base;
COMMIT;
DELETE FROM iso WHERE id <= 5;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL);

--
-- a transaction that changes the table after add_shape: the members it
-- sent are stale, so the shape is unsynced until a resync
--
BEGIN;
SELECT shape_router.add_shape('iso', 'v = 0') - base AS s15 FROM id_base;
INSERT INTO iso VALUES (30, 0);
COMMIT;
DELETE FROM iso WHERE id = 6;
SELECT shape_router.resync_shapes(ARRAY[(SELECT base + 15 FROM id_base)]);
DELETE FROM iso WHERE id = 9;
DELETE FROM iso WHERE id = 30;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL);

--
-- switching identity: DEFAULT -> FULL keeps routing (the index is kept up
-- to date from the whole rows), and so does FULL -> DEFAULT afterwards
--
CREATE TABLE sw (id int PRIMARY KEY, v int);
INSERT INTO sw VALUES (1, 1), (2, 1), (3, 2);
SELECT shape_router.add_shape('sw', 'v = 1') - base AS s16 FROM id_base;
ALTER TABLE sw REPLICA IDENTITY FULL;
UPDATE sw SET v = 2 WHERE id = 1;
INSERT INTO sw VALUES (4, 1);
ALTER TABLE sw REPLICA IDENTITY DEFAULT;
DELETE FROM sw;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL);

--
-- a slot created after the shapes has no members: S unsynced once, nothing
-- routed, until resync_shapes(), then S synced
--
INSERT INTO sw VALUES (1, 1), (2, 2);
SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_decoding_default2', 'shape_router');
UPDATE sw SET v = 1;
DELETE FROM sw WHERE id = 1;
SELECT shape_router.resync_shapes(ARRAY[(SELECT base + 16 FROM id_base)]);
DELETE FROM sw WHERE id = 2;
INSERT INTO sw VALUES (5, 1);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default2', NULL, NULL);
-- the first slot already had the members: it routes through the resync
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL);

-- read with other shapes options, a slot's saved membership would be
-- stale for the shapes left out: it is discarded, and the shapes unsynced
INSERT INTO sw VALUES (6, 1);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL,
                                                   'shapes', (SELECT (base + 16)::text FROM id_base));

-- resync_shapes(): shapes that do not exist, and the NULL form
SELECT shape_router.resync_shapes(ARRAY[-1]::bigint[]);
SELECT shape_router.resync_shapes(ARRAY[NULL]::bigint[]);
CREATE TABLE fulltab (id int PRIMARY KEY, v int);
ALTER TABLE fulltab REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('fulltab', 'v = 1') - base AS s17 FROM id_base;
SELECT shape_router.resync_shapes(ARRAY[(SELECT base + 17 FROM id_base)]) AS full_not_counted;

-- unchanged TOAST again: expressions over the other columns stay known
-- (true OR unknown is true, false AND unknown is false)
SELECT shape_router.add_shape('docs', 'id % 2 = 1 OR body LIKE ''q%''') - base AS s18 FROM id_base;
SELECT shape_router.add_shape('docs', 'length(body) > 0 AND id % 2 = 0') - base AS s19 FROM id_base;
UPDATE docs SET status = 'open' WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default', NULL, NULL,
                                                   'shapes', (SELECT (base + 18)::text || ',' || (base + 19)::text FROM id_base));

-- a clause that raises on an existing row fails add_shape (its own SQLSTATE)
CREATE TABLE zd (id int PRIMARY KEY, d int);
INSERT INTO zd VALUES (1, 0), (2, 1);
-- (the context, "finding the rows of table "zd" in shape N (its initial
-- members)", names an id that depends on the files run before this one)
\set VERBOSITY sqlstate
SELECT shape_router.add_shape('zd', '10 / d > 1');
SELECT count(*) AS zd_shapes FROM shape_router.shapes WHERE relid = 'zd'::regclass;
-- resync_shapes of another role's shape
SELECT base + 16 AS sw_shape FROM id_base \gset
CREATE ROLE sr_ddef_other;
GRANT USAGE ON SCHEMA sr_ddef TO sr_ddef_other;
GRANT SELECT ON sw TO sr_ddef_other;
SET ROLE sr_ddef_other;
SELECT shape_router.resync_shapes(ARRAY[:sw_shape]::bigint[]);
\set VERBOSITY default
SELECT shape_router.resync_shapes() AS none_of_mine;
RESET ROLE;
-- a message with our prefix that is not ours (no valid signature) is ignored
SELECT count(*) >= 0 AS drained FROM pg_logical_slot_get_changes('regression_slot_decoding_default2', NULL, NULL);
SELECT 'emitted' FROM pg_logical_emit_message(true, 'shape_router', 'SRM1 forged');
INSERT INTO sw VALUES (7, 1);
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_default2', NULL, NULL);
REVOKE ALL ON sw FROM sr_ddef_other;
REVOKE USAGE ON SCHEMA sr_ddef FROM sr_ddef_other;
DROP ROLE sr_ddef_other;

-- a column renamed after add_shape: resync_shapes() and
-- add_shape_concurrently() search with today's names (the where_clause
-- column keeps the text as it was added)
CREATE TABLE rn (id int PRIMARY KEY, c int);
INSERT INTO rn VALUES (1, 5), (2, 6);
SELECT shape_router.add_shape('rn', 'c = 5') IS NOT NULL AS rn_added;
ALTER TABLE rn RENAME COLUMN c TO c2;
SELECT where_clause FROM shape_router.shapes WHERE relid = 'rn'::regclass;
SELECT count(*) >= 0 AS drained FROM pg_logical_slot_get_changes('regression_slot_decoding_default2', NULL, NULL);
SELECT shape_router.resync_shapes(ARRAY(SELECT shape_id FROM shape_router.shapes WHERE relid = 'rn'::regclass));
DELETE FROM rn WHERE id = 1;
-- (the id depends on the files run before this one)
SELECT regexp_replace(show(data), '"shapes":\[\d+\]', '"shapes":[rn]') AS rn_delete
  FROM pg_logical_slot_get_changes('regression_slot_decoding_default2', NULL, NULL)
 WHERE data NOT LIKE '{"action":"S"%';
DROP TABLE rn;

SELECT pg_drop_replication_slot('regression_slot_decoding_default');
SELECT pg_drop_replication_slot('regression_slot_decoding_default2');
