--
-- decoding_options: the options of the shape_router output plugin
-- (design.md section 2): shapes, shard, include-transaction, include-old,
-- include-lsn, include-xid, options without a value, and every error.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_dopt CASCADE;
RESET client_min_messages;
CREATE SCHEMA sr_dopt;
SET search_path = sr_dopt, public;

-- Shape ids go on from where earlier files left the sequence: records show
-- them relative to this file's start (1 = the first shape added here), and
-- B/C records with their xid and LSN replaced; so do "lsn" and "xid" of
-- change records.
CREATE TABLE id_base AS
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base
    FROM shape_router.shapes_shape_id_seq;
\i sql/include/show.sql
-- (shape id, record without its shape ids): a record routed to n shapes
-- gives n rows, so that differently split streams can be compared
CREATE FUNCTION per_shape(data text, OUT shape_id bigint, OUT rec jsonb)
RETURNS SETOF record LANGUAGE sql AS $$
  SELECT s::bigint, data::jsonb - 'shapes'
    FROM jsonb_array_elements_text(data::jsonb->'shapes') s
   WHERE data::jsonb ? 'shapes'
  UNION ALL
  SELECT (data::jsonb->>'shape')::bigint, data::jsonb - 'shape'
   WHERE data::jsonb ? 'shape'
$$;

CREATE TABLE orders (id int PRIMARY KEY, region text, amount int, note text);
ALTER TABLE orders REPLICA IDENTITY FULL;
CREATE TABLE other (id int PRIMARY KEY, v int);
ALTER TABLE other REPLICA IDENTITY FULL;

SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_decoding_options', 'shape_router');

SELECT shape_router.add_shape('orders', 'region = ''eu''') AS s1 \gset
SELECT shape_router.add_shape('orders', 'region = ''us''') AS s2 \gset
SELECT shape_router.add_shape('orders', 'amount > 100') AS s3 \gset
SELECT shape_router.add_shape('orders', 'amount > 100', ARRAY['amount']) AS s4 \gset
SELECT shape_router.add_shape('orders', 'region = ''eu'' AND amount > 100') AS s5 \gset
SELECT shape_router.add_shape('orders', NULL, ARRAY['region']) AS s6 \gset
SELECT shape_router.add_shape('other', 'v > 0') AS s7 \gset
SELECT :s7 - base AS s7_relative FROM id_base;

INSERT INTO orders VALUES (1, 'eu', 50, 'a'), (2, 'us', 500, 'b'),
                          (3, 'eu', 200, 'c'), (4, 'ap', 10, 'd');
UPDATE orders SET amount = 150 WHERE id = 1;
UPDATE orders SET region = 'us' WHERE id = 3;
UPDATE orders SET id = 20 WHERE id = 2;
DELETE FROM orders WHERE id = 4;
INSERT INTO other VALUES (1, 1);
TRUNCATE orders, other;

-- the defaults: every shape, B/C, no "old", "lsn" or "xid"
SELECT show(data) FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL);

-- include-transaction: 0 leaves out B and C, 1 is the default
SELECT show(data) FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'include-transaction', '0');
SELECT count(*) AS records,
       count(*) FILTER (WHERE data ~ '^\{"action":"[BC]"') AS bc
  FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
    'include-transaction', '1');
-- booleans are PostgreSQL's: on/off, true/false, yes/no, 1/0
SELECT count(*) FILTER (WHERE data ~ '^\{"action":"[BC]"') AS bc_off
  FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
    'include-transaction', 'off');
SELECT count(*) FILTER (WHERE data ~ '^\{"action":"[BC]"') AS bc_yes
  FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
    'include-transaction', 'yes');

-- shapes: only these shapes, in records and S records alike; an id that
-- names no shape routes nothing
SELECT show(data) FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'shapes', :'s3' || ',' || :'s1' || ',' || '999999999');
-- a shape of another table
SELECT show(data) FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'shapes', :'s7');

-- include-old: "old" on U and D records (move-out D included), limited to
-- the shape's columns plus the key; never on I
SELECT show(data) FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'include-old', 'true', 'include-transaction', 'false')
 WHERE data !~ '^\{"action":"S"';
-- include-old off: no record has "old"
SELECT count(*) FILTER (WHERE data::jsonb ? 'old') AS with_old
  FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
    'include-old', 'false');

-- include-lsn and include-xid: on every I, U, D and T record, the LSN of
-- the change and the xid of its transaction; not on B, C and S
SELECT show(data) FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'include-lsn', 'on', 'include-xid', 'on', 'shapes', :'s1' || ',' || :'s7');
SELECT data::jsonb->>'action' AS action,
       count(*) AS records,
       count(*) FILTER (WHERE (data::jsonb->>'lsn')::pg_lsn = lsn) AS lsn_is_change_lsn,
       count(*) FILTER (WHERE (data::jsonb->>'xid') = xid::text) AS xid_is_txn_xid,
       count(*) FILTER (WHERE data::jsonb ? 'lsn' AND data !~ '^\{"action":"[BC]"') AS with_lsn,
       count(*) FILTER (WHERE data::jsonb ? 'xid' AND data !~ '^\{"action":"[BC]"') AS with_xid
  FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
    'include-lsn', '1', 'include-xid', '1')
 GROUP BY 1 ORDER BY 1;

-- shard k/n: only shapes with shape_id % n = k.  Shards 0/2 and 1/2
-- together are exactly the unsharded stream: the same (shape, record)
-- pairs, each once.
CREATE TABLE unsharded AS
  SELECT p.* FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
                    'include-transaction', '0'), per_shape(data) p;
CREATE TABLE sharded AS
  SELECT 0 AS k, p.* FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
                           'include-transaction', '0', 'shard', '0/2'), per_shape(data) p
  UNION ALL
  SELECT 1 AS k, p.* FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
                           'include-transaction', '0', 'shard', '1/2'), per_shape(data) p;
SELECT (SELECT count(*) FROM unsharded) AS unsharded_pairs,
       (SELECT count(*) FROM sharded) AS sharded_pairs,
       (SELECT count(*) FROM (SELECT shape_id, rec FROM unsharded
                              EXCEPT ALL SELECT shape_id, rec FROM sharded) x) AS missing,
       (SELECT count(*) FROM (SELECT shape_id, rec FROM sharded
                              EXCEPT ALL SELECT shape_id, rec FROM unsharded) x) AS extra,
       (SELECT count(*) FROM sharded WHERE shape_id % 2 <> k) AS wrong_shard,
       (SELECT count(DISTINCT k) FROM sharded) AS shards_used;
-- shard 0/1 is everything; shard and shapes together intersect
SELECT (SELECT count(*) FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL, 'shard', '0/1')) =
       (SELECT count(*) FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL)) AS shard_0_of_1_is_all;
SELECT count(DISTINCT p.shape_id) AS shapes_seen,
       bool_and(p.shape_id % 2 = :s3 % 2) AS in_shard,
       bool_and(p.shape_id IN (:s3, :s4)) AS in_list
  FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
         'shapes', :'s3' || ',' || :'s4', 'shard', (:s3 % 2) || '/2'), per_shape(data) p;
-- the same records per shape as without the shard option: a record's
-- "new", "key" and "old" do not depend on how the stream is sharded
SELECT count(*) AS differing FROM (
  SELECT shape_id, rec FROM unsharded WHERE shape_id = :s4
  EXCEPT ALL
  SELECT shape_id, rec FROM sharded WHERE shape_id = :s4) x;

-- every bad option is an error naming it; the slot stays usable
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'no-such-option', '1');
\echo :LAST_ERROR_SQLSTATE
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'include-old', 'maybe');
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'include-transaction', '');
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'shard', '3/2');
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'shard', 'x');
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'shard', '1/0');
\echo :LAST_ERROR_SQLSTATE
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'shard', '-1/2');
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'shard', '1/2/3');
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'shapes', '');
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'shapes', 'a');
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'shapes', '-1');
\echo :LAST_ERROR_SQLSTATE
SELECT data FROM pg_logical_slot_peek_changes('regression_slot_decoding_options', NULL, NULL,
  'shapes', '1x');
SELECT count(*) > 0 AS still_usable
  FROM pg_logical_slot_get_changes('regression_slot_decoding_options', NULL, NULL);
SELECT count(*) AS nothing_left
  FROM pg_logical_slot_get_changes('regression_slot_decoding_options', NULL, NULL);

-- An option given without a value means true.  SQL functions cannot pass
-- one (they refuse NULL values); the replication protocol can, as
-- pg_recvlogical -o name does.
CREATE TABLE recv (n serial, data text);
INSERT INTO orders VALUES (7, 'eu', 700, 'g');
UPDATE orders SET amount = 1 WHERE id = 7;
SELECT pg_current_wal_insert_lsn() AS endpos \gset
\setenv SR_ENDPOS :endpos
\setenv SR_DB :DBNAME
\setenv SR_SHAPES :s1,:s3
\! rm -f results/decoding_options.recv
\! timeout 120 pg_recvlogical -d "$SR_DB" -S regression_slot_decoding_options --start -E "$SR_ENDPOS" -o include-old -o include-lsn -o include-xid -o include-transaction -o shapes="$SR_SHAPES" -f results/decoding_options.recv
\copy recv (data) FROM 'results/decoding_options.recv' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')
SELECT show(data) FROM recv ORDER BY n;
-- and pg_recvlogical -o name=value works as in SQL
TRUNCATE recv;
INSERT INTO orders VALUES (8, 'eu', 800, 'h');
SELECT pg_current_wal_insert_lsn() AS endpos \gset
\setenv SR_ENDPOS :endpos
\! rm -f results/decoding_options.recv
\! timeout 120 pg_recvlogical -d "$SR_DB" -S regression_slot_decoding_options --start -E "$SR_ENDPOS" -o include-transaction=off -o shapes="$SR_SHAPES" -f results/decoding_options.recv
\copy recv (data) FROM 'results/decoding_options.recv' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')
SELECT show(data) FROM recv ORDER BY n;
\! rm -f results/decoding_options.recv

-- cleanup
SELECT pg_drop_replication_slot('regression_slot_decoding_options');
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(shape_id)) AS not_removed
  FROM shape_router.shapes;
SET client_min_messages = warning;
DROP SCHEMA sr_dopt CASCADE;
