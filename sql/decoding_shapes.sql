--
-- decoding_shapes: shapes added and removed while the stream runs
-- (design.md section 2): S added / S removed in the transaction that made
-- the change, in WAL order; a shape routes exactly the changes of the
-- transactions that commit after the one that added it and before the one
-- that removed it; filtered transactions and logical messages write nothing.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
CREATE EXTENSION IF NOT EXISTS dblink;
DROP SCHEMA IF EXISTS sr_dshp CASCADE;
RESET client_min_messages;
CREATE SCHEMA sr_dshp;
SET search_path = sr_dshp, public;

-- Shape ids go on from where earlier files left the sequence: records show
-- them relative to this file's start (1 = the first shape added here), and
-- B/C records with their xid and LSN replaced.
CREATE TABLE id_base AS
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base
    FROM shape_router.shapes_shape_id_seq;
\i sql/include/show.sql

CREATE TABLE todos (id int PRIMARY KEY, owner int, title text);
ALTER TABLE todos REPLICA IDENTITY FULL;
CREATE TABLE notes (id int PRIMARY KEY, body text);
ALTER TABLE notes REPLICA IDENTITY FULL;
CREATE TABLE unshaped (id int PRIMARY KEY);

-- shape 1 sees every todo; shape 2 is on another table
SELECT shape_router.add_shape('todos') - base AS s1 FROM id_base;
SELECT shape_router.add_shape('notes') - base AS s2 FROM id_base;
SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_decoding_shapes', 'shape_router');

-- A shape added mid-stream: S added where add_shape() stands in the WAL of
-- its transaction.  The shape routes nothing of that transaction, not even
-- changes made after add_shape(); it routes the next transaction.
BEGIN;
INSERT INTO todos VALUES (1, 7, 'before add');
SELECT shape_router.add_shape('todos', 'owner = 7') - base AS s3 FROM id_base;
INSERT INTO todos VALUES (2, 7, 'after add, same transaction');
UPDATE todos SET title = 'updated, same transaction' WHERE id = 1;
COMMIT;
INSERT INTO todos VALUES (3, 7, 'next transaction');
UPDATE todos SET title = 'next transaction too' WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_shapes', NULL, NULL);

-- A transaction that only adds a shape writes B, S, C
SELECT shape_router.add_shape('todos', 'owner = 8') - base AS s4 FROM id_base;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_shapes', NULL, NULL);

-- A shape removed mid-stream: S removed where remove_shape() stands; the
-- shape routes nothing of the removing transaction (it does not commit
-- before the removal), before or after the call, nor anything later.
INSERT INTO todos VALUES (4, 8, 'routed to 4');
BEGIN;
INSERT INTO todos VALUES (5, 8, 'removing transaction, before the removal');
SELECT shape_router.remove_shape(shape_id) FROM shape_router.shapes
 WHERE shape_id = (SELECT base + 4 FROM id_base);
INSERT INTO todos VALUES (6, 8, 'removing transaction, after the removal');
COMMIT;
INSERT INTO todos VALUES (7, 8, 'after the removal');
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_shapes', NULL, NULL);

-- add_shapes(): one S added per shape, ascending, in one transaction
SELECT array_length(shape_router.add_shapes('todos',
         ARRAY['owner = 9', 'owner = 9 AND id > 100', 'title LIKE ''x%''']), 1) AS added;
INSERT INTO todos VALUES (101, 9, 'xylophone'), (8, 9, 'nine');
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_shapes', NULL, NULL);

-- A transaction that adds and removes the same shape: both S records, in
-- WAL order; the shape never routes anything
BEGIN;
SELECT shape_router.add_shape('todos', 'owner = 10') - base AS s8 FROM id_base;
INSERT INTO todos VALUES (9, 10, 'ten');
SELECT shape_router.remove_shape(shape_id) FROM shape_router.shapes
 WHERE shape_id = (SELECT base + 8 FROM id_base);
COMMIT;
INSERT INTO todos VALUES (10, 10, 'ten again');
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_shapes', NULL, NULL);

-- A shape added in a rolled back (sub)transaction never existed
BEGIN;
SAVEPOINT sp;
SELECT shape_router.add_shape('todos', 'owner = 11') - base AS s9 FROM id_base;
ROLLBACK TO SAVEPOINT sp;
INSERT INTO todos VALUES (11, 11, 'eleven');
COMMIT;
BEGIN;
SELECT shape_router.add_shape('todos', 'owner = 11') - base AS s10 FROM id_base;
ROLLBACK;
INSERT INTO todos VALUES (12, 11, 'eleven again');
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_shapes', NULL, NULL);

-- A shape on another table does not see this table's changes, and changes
-- rolled back are never routed
INSERT INTO notes VALUES (1, 'a note');
UPDATE todos SET title = 'seen by 1 only' WHERE id = 2;
BEGIN;
INSERT INTO notes VALUES (2, 'rolled back');
ROLLBACK;
BEGIN;
INSERT INTO notes VALUES (3, 'savepoint');
SAVEPOINT sp;
INSERT INTO notes VALUES (4, 'rolled back to savepoint');
ROLLBACK TO SAVEPOINT sp;
COMMIT;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_shapes', NULL, NULL);

-- Filtered transactions (no record) write no B and no C: four routed
-- transactions, three filtered ones (a table without shapes, a row no
-- shape of a shaped table matches, a shape-less table truncated)
SELECT shape_router.remove_shape(shape_id) FROM shape_router.shapes
 WHERE shape_id = (SELECT base + 1 FROM id_base);
INSERT INTO unshaped VALUES (1);
INSERT INTO todos VALUES (13, 12, 'no shape matches');
TRUNCATE unshaped;
INSERT INTO todos VALUES (14, 7, 'routed');
INSERT INTO notes VALUES (5, 'routed');
SELECT shape_router.add_shape('todos', 'owner = 12') - base AS s11 FROM id_base;
SELECT show(data) FROM pg_logical_slot_peek_changes('regression_slot_decoding_shapes', NULL, NULL);
SELECT count(*) FILTER (WHERE data LIKE '{"action":"B"%') AS b,
       count(*) FILTER (WHERE data LIKE '{"action":"C"%') AS c,
       count(DISTINCT xid::text) AS transactions
  FROM pg_logical_slot_get_changes('regression_slot_decoding_shapes', NULL, NULL);

-- Logical messages belong to no table: nothing, transactional or not, and
-- a transaction with only a message writes no B/C
SELECT 'msg' FROM pg_logical_emit_message(true, 'sr', 'transactional');
SELECT 'msg' FROM pg_logical_emit_message(false, 'sr', 'not transactional');
BEGIN;
SELECT 'msg' FROM pg_logical_emit_message(true, 'sr', 'with a change');
INSERT INTO todos VALUES (15, 7, 'with a message');
COMMIT;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_shapes', NULL, NULL);

-- Decoding follows commit order.  A transaction that began before a shape
-- was added but commits after it is routed to the shape; one that commits
-- before the removal is routed to it even though the removal began first.
SELECT dblink_connect('sr_other',
         format('dbname=%s port=%s host=%s', current_database(), current_setting('port'),
                split_part(current_setting('unix_socket_directories'), ',', 1))) AS connected;
SELECT dblink_exec('sr_other', 'BEGIN');
SELECT dblink_exec('sr_other', 'INSERT INTO sr_dshp.todos VALUES (16, 13, ''began first, commits last'')');
SELECT shape_router.add_shape('todos', 'owner = 13') - base AS s12 FROM id_base;
SELECT dblink_exec('sr_other', 'COMMIT');
BEGIN;
SELECT shape_router.remove_shape(shape_id) FROM shape_router.shapes
 WHERE shape_id = (SELECT base + 12 FROM id_base);
SELECT dblink_exec('sr_other', 'INSERT INTO sr_dshp.todos VALUES (17, 13, ''commits before the removal'')');
COMMIT;
SELECT dblink_exec('sr_other', 'BEGIN');
SELECT dblink_exec('sr_other', 'INSERT INTO sr_dshp.todos VALUES (18, 7, ''began before the removal'')');
SELECT shape_router.remove_shape(shape_id) FROM shape_router.shapes
 WHERE shape_id = (SELECT base + 3 FROM id_base);
SELECT dblink_exec('sr_other', 'COMMIT');
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_shapes', NULL, NULL);
SELECT dblink_disconnect('sr_other');

-- A removing transaction large enough to spill to disk: its changes are
-- not all in memory when it is replayed, so its removals are found in the
-- catalog (rows whose xmax is the transaction's) instead of in its change
-- list.  Same answer: the shape routes nothing of the transaction (its
-- 2,000 rows go to shape 7, title LIKE 'x%', only).
SELECT shape_router.add_shape('todos', 'owner = 14') - base AS s13 FROM id_base;
BEGIN;
INSERT INTO todos SELECT g, 14, repeat('x', 200) FROM generate_series(1000, 2999) g;
SELECT shape_router.remove_shape(shape_id) FROM shape_router.shapes
 WHERE shape_id = (SELECT base + 13 FROM id_base);
COMMIT;
INSERT INTO todos VALUES (3000, 14, 'after the removal');
SET logical_decoding_work_mem = '64kB';
SELECT count(*) FILTER (WHERE data LIKE '{"action":"I"%') AS inserts,
       count(*) FILTER (WHERE '13' = ANY (string_to_array(
         substring(show(data) from '"shapes":\[([0-9,]*)\]'), ','))) AS routed_to_13,
       string_agg(show(data), E'\n') FILTER (WHERE data LIKE '{"action":"S"%') AS s_records
  FROM pg_logical_slot_get_changes('regression_slot_decoding_shapes', NULL, NULL);
RESET logical_decoding_work_mem;

-- cleanup
SELECT pg_drop_replication_slot('regression_slot_decoding_shapes');
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(shape_id)) AS not_removed
  FROM shape_router.shapes;
SET client_min_messages = warning;
DROP SCHEMA sr_dshp CASCADE;
DROP EXTENSION dblink;
