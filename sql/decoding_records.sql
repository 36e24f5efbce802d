--
-- decoding_records: the records of the shape_router output plugin
-- (design.md section 2): I, D, U, I move-in, D move-out, key changes, T,
-- keys (primary, composite, none), column projections, value encoding and
-- unchanged TOASTed values.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_drec CASCADE;
RESET client_min_messages;
CREATE SCHEMA sr_drec;
SET search_path = sr_drec, public;
SET DateStyle = ISO;
SET TimeZone = 'UTC';

-- Shape ids go on from where earlier files left the sequence: records show
-- them relative to this file's start (1 = the first shape added here), and
-- B/C records with their xid and LSN replaced.
CREATE TABLE id_base AS
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base
    FROM shape_router.shapes_shape_id_seq;
\i sql/include/show.sql

--
-- todos: a single-column primary key; shapes 1, 2 and 4 send every column,
-- shape 3 only title (plus the key)
--
CREATE TABLE todos (
    id bigint PRIMARY KEY,
    user_id int,
    status text,
    title text
);
ALTER TABLE todos REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('todos', 'user_id = 1') - base AS s1 FROM id_base;
SELECT shape_router.add_shape('todos', 'status = ''open''') - base AS s2 FROM id_base;
SELECT shape_router.add_shape('todos', 'user_id = 1', ARRAY['title']) - base AS s3 FROM id_base;
SELECT shape_router.add_shape('todos', 'user_id = 2') - base AS s4 FROM id_base;

-- Shapes added before the slot exists are routed without S records.
SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_decoding_records', 'shape_router');

-- INSERT: I to the shapes the new row matches, one record per projection
INSERT INTO todos VALUES (1, 1, 'open', 'first');
-- matches no shape: no record, and no B/C either
INSERT INTO todos VALUES (2, 3, 'done', 'second');
-- two rows in one transaction: one B/C pair around both
INSERT INTO todos VALUES (3, 2, 'done', 'third'), (4, 9, 'open', 'fourth');
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

-- UPDATE, key unchanged, both rows match: U with the key and the new row
UPDATE todos SET title = 'first!' WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

-- UPDATE moving the row: old matches 1, 2, 3; new matches 2, 4.
-- U to 2, I move-in to 4, D move-out to 1 and 3 (two projections), in
-- this order.
UPDATE todos SET user_id = 2 WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

-- old matches 2, 4; new matches 1, 3: no U, I move-in to 1 and 3, D
-- move-out to 2 and 4
UPDATE todos SET user_id = 1, status = 'done' WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

-- an UPDATE that changes nothing the shapes read still sends U to the
-- shapes both rows match
UPDATE todos SET status = 'done' WHERE id = 1;
-- an UPDATE of a row no shape sees, before or after: nothing
UPDATE todos SET title = 'second!' WHERE id = 2;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

-- UPDATE changing the primary key: D of the old key to the shapes the old
-- row matches, then I of the new row to the shapes the new row matches,
-- without "move"
UPDATE todos SET id = 10 WHERE id = 1;
-- key change and membership change at once: old matches 4, new matches 1, 3
UPDATE todos SET id = 30, user_id = 1 WHERE id = 3;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

-- DELETE: D with the key to the shapes the old row matches
DELETE FROM todos WHERE id = 10;
DELETE FROM todos WHERE id = 2;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

-- Several changes in one transaction come in WAL order in one B/C pair;
-- a routed and a filtered transaction: B and C only around the routed one
BEGIN;
INSERT INTO todos VALUES (5, 1, 'open', 'fifth');
UPDATE todos SET status = 'done' WHERE id = 5;
DELETE FROM todos WHERE id = 5;
COMMIT;
BEGIN;
INSERT INTO todos VALUES (6, 7, 'done', 'sixth');
UPDATE todos SET title = 'sixth!' WHERE id = 6;
DELETE FROM todos WHERE id = 6;
COMMIT;
SELECT show(data) FROM pg_logical_slot_peek_changes('regression_slot_decoding_records', NULL, NULL);
SELECT count(*) FILTER (WHERE data LIKE '{"action":"B"%') AS b,
       count(*) FILTER (WHERE data LIKE '{"action":"C"%') AS c,
       count(*) AS all_records,
       count(DISTINCT xid::text) AS transactions
  FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

-- B and C carry the transaction's xid and its commit LSN, which lies after
-- the transaction's changes and before the end of its commit record
INSERT INTO todos VALUES (7, 1, 'open', 'seventh');
CREATE TEMP TABLE peeked AS
  SELECT * FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);
SELECT show(data) FROM peeked;
SELECT data::jsonb->>'action' AS action,
       (data::jsonb->>'xid') = xid::text AS xid_ok,
       (data::jsonb->>'lsn')::pg_lsn > (SELECT max(lsn) FROM peeked WHERE data LIKE '{"action":"I"%') AS after_changes,
       (data::jsonb->>'lsn')::pg_lsn < (SELECT max(lsn) FROM peeked WHERE data LIKE '{"action":"C"%') AS before_end
  FROM peeked
 WHERE data LIKE '{"action":"B"%' OR data LIKE '{"action":"C"%'
 ORDER BY 1;

--
-- lines: a composite primary key, not leading the table
--
CREATE TABLE lines (
    sku text,
    order_id int,
    line_no int,
    qty int,
    PRIMARY KEY (order_id, line_no)
);
ALTER TABLE lines REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('lines', 'qty > 0') - base AS s5 FROM id_base;
SELECT shape_router.add_shape('lines', 'order_id = 1', ARRAY['qty']) - base AS s6 FROM id_base;
INSERT INTO lines VALUES ('a', 1, 1, 5), ('b', 1, 2, 0), ('c', 2, 1, 3);
UPDATE lines SET qty = qty + 1 WHERE order_id = 1;
UPDATE lines SET line_no = 3 WHERE order_id = 1 AND line_no = 2;
DELETE FROM lines WHERE order_id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

--
-- tags: no primary key (a unique constraint is not a primary key, and
-- REPLICA IDENTITY FULL has no identity index), so the key is every column
-- and an UPDATE that changes a value changes the key: D, then I
--
CREATE TABLE tags (name text, n int UNIQUE, note text);
ALTER TABLE tags REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('tags', 'n < 10') - base AS s7 FROM id_base;
SELECT shape_router.add_shape('tags', 'name <> ''x''') - base AS s8 FROM id_base;
INSERT INTO tags VALUES ('x', 1, NULL), ('y', 20, 'twenty');
UPDATE tags SET note = 'one' WHERE n = 1;
-- an UPDATE that sets the same values leaves the key unchanged: U
UPDATE tags SET note = 'one' WHERE n = 1;
-- old matches 8, new matches 7 and 8: D to 8, then I to 7 and 8
UPDATE tags SET n = 2 WHERE n = 20;
DELETE FROM tags WHERE n = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

--
-- items: column projections.  Records are split per distinct projection and
-- ordered by each group's smallest id; the same columns listed in another
-- order, or twice, are the same projection.  "new" shows the projected
-- columns plus the key, in table order.
--
CREATE TABLE items (c text, id int PRIMARY KEY, a int, b text);
ALTER TABLE items REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('items', 'a > 0', ARRAY['b', 'c']) - base AS s9 FROM id_base;
SELECT shape_router.add_shape('items', 'a > 0') - base AS s10 FROM id_base;
SELECT shape_router.add_shape('items', 'a > 0', ARRAY['a']) - base AS s11 FROM id_base;
SELECT shape_router.add_shape('items', 'a > 0', ARRAY['c', 'b']) - base AS s12 FROM id_base;
SELECT shape_router.add_shape('items', 'a > 1', ARRAY['a', 'a']) - base AS s13 FROM id_base;
SELECT shape_router.add_shape('items', 'a > 0', ARRAY['c', 'b', 'c']) - base AS s14 FROM id_base;
INSERT INTO items VALUES ('see', 1, 1, 'bee');
-- a move: U to 9..12 and 14, I move-in to 13
UPDATE items SET a = 2 WHERE id = 1;
-- a move out of every shape
UPDATE items SET a = 0 WHERE id = 1;
INSERT INTO items VALUES ('sea', 2, 5, NULL);
DELETE FROM items WHERE id = 2;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

--
-- TRUNCATE: one T per truncated table, to every shape on it whatever its
-- predicate; tables without shapes write nothing
--
CREATE TABLE plain (x int);
TRUNCATE todos;
TRUNCATE lines, plain, tags;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);
-- a TRUNCATE of only tables without shapes is a filtered transaction
TRUNCATE plain;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);

--
-- value encoding: numbers as JSON numbers (NaN and infinities as strings),
-- bool, json/jsonb embedded, NULL as null, everything else as the string of
-- the type's output function, escaped; a domain as its base type
--
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE vals (
    id int PRIMARY KEY,
    i2 int2, i4 int4, i8 int8, o oid,
    f4 float4, f8 float8, num numeric,
    flag bool, j json, jb jsonb,
    t text, "we""ird col" varchar(10),
    ts timestamptz, d date, u uuid, arr int[], tarr text[], m mood, by bytea,
    dom posint
);
ALTER TABLE vals REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('vals') - base AS s15 FROM id_base;
INSERT INTO vals VALUES
  (1, -32768, 2147483647, -9223372036854775808, 4294967295,
   1.5, -2.25e-300, 12345678901234567890.000123,
   true, '{"a": [1, 2], "b": null}', '{"b": {"c": true}, "a": 1}',
   'quote " backslash \ tab	slash /', 'é',
   '2024-02-29 12:34:56.789+00', '2024-02-29',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '{"x y","z,\""}', 'happy',
   '\x00ff', 42),
  (2, 0, 0, 0, 0, 'NaN', 'Infinity', 'NaN', false, 'null', '"str"', '', '',
   'infinity', '-infinity', NULL, '{}', '{}', 'sad', '', NULL),
  (3, NULL, NULL, NULL, NULL, '-Infinity', '-Infinity', 'Infinity', NULL,
   NULL, 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 1, 1, 1, 1, '1e30', '-0', '-Infinity', true, '[]', '[]',
   E'line\nbreak\r\u0001\u001f', 'x', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1);
SELECT show(data) FROM pg_logical_slot_peek_changes('regression_slot_decoding_records', NULL, NULL)
 WHERE data NOT LIKE '{"action":"B"%' AND data NOT LIKE '{"action":"C"%';
-- every record is valid JSON, and the values read back as inserted
SELECT data::jsonb->'new'->'id' AS id,
       data::jsonb->'new'->>'t' = v.t AS t_ok,
       data::jsonb->'new'->'jb' = v.jb AS jb_ok,
       data::jsonb->'new'->'j' = v.j::jsonb AS j_ok,
       (data::jsonb->'new'->>'num')::numeric = v.num AS num_ok,
       (data::jsonb->'new'->>'f8')::float8 = v.f8 AS f8_ok
  FROM pg_logical_slot_peek_changes('regression_slot_decoding_records', NULL, NULL)
  JOIN vals v ON v.id = (data::jsonb->'new'->>'id')::int
 WHERE data LIKE '{"action":"I"%'
 ORDER BY 1;
SELECT count(*) > 0 AS consumed FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL);
-- json is embedded, yet a record stays one line (pg_recvlogical writes one
-- record per line): a json value's own line breaks must not leak into it
INSERT INTO vals (id, j) VALUES (5, E'{\r\n  "multi":\t"line"\n}');
SELECT data::jsonb->>'action' AS action, position(E'\n' IN data) = 0 AS one_line,
       position(E'\r' IN data) = 0 AS no_cr,
       (data::jsonb->'new'->'j') = '{"multi": "line"}'::jsonb AS j_ok
  FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL)
 WHERE data NOT LIKE '{"action":"B"%' AND data NOT LIKE '{"action":"C"%';

--
-- TOAST: a value stored out of line, left unchanged by an UPDATE of another
-- column, is taken from the old row (REPLICA IDENTITY FULL logs it whole)
--
CREATE TABLE docs (id int PRIMARY KEY, rev int, big text);
ALTER TABLE docs REPLICA IDENTITY FULL;
SELECT shape_router.add_shape('docs', 'rev >= 1') - base AS s16 FROM id_base;
SELECT shape_router.add_shape('docs', 'rev >= 1', ARRAY['rev']) - base AS s17 FROM id_base;
INSERT INTO docs
  SELECT 1, 1, string_agg(md5(i::text), '') FROM generate_series(1, 200) i;
SELECT reltoastrelid::regclass AS docs_toast FROM pg_class WHERE oid = 'docs'::regclass \gset
-- really out of line
SELECT count(*) > 1 AS toasted FROM :docs_toast;
UPDATE docs SET rev = 2 WHERE id = 1;
-- an UPDATE of the TOASTed value itself
UPDATE docs SET big = big || 'x', rev = 3 WHERE id = 1;
DELETE FROM docs WHERE id = 1;
SELECT left(show(data), 120) AS record,
       octet_length(data::jsonb->'new'->>'big') AS big_len,
       (data::jsonb->'new'->>'big') =
         (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i) AS big_ok,
       (data::jsonb->'new'->>'big') =
         (SELECT string_agg(md5(i::text), '') || 'x' FROM generate_series(1, 200) i) AS big_x_ok,
       data::jsonb ? 'unchanged_toast' AS has_unchanged_toast
  FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL)
 WHERE data NOT LIKE '{"action":"B"%' AND data NOT LIKE '{"action":"C"%';
-- with include-old, "old" carries the whole old row too
INSERT INTO docs
  SELECT 2, 1, string_agg(md5(i::text), '') FROM generate_series(1, 200) i;
UPDATE docs SET rev = 5 WHERE id = 2;
SELECT data::jsonb->>'action' AS action,
       (data::jsonb->'new'->>'big') = (data::jsonb->'old'->>'big') AS same_big,
       octet_length(data::jsonb->'old'->>'big') AS old_big_len,
       data::jsonb->'old'->'rev' AS old_rev, data::jsonb->'new'->'rev' AS new_rev
  FROM pg_logical_slot_get_changes('regression_slot_decoding_records', NULL, NULL,
                                   'include-old', 'true')
 WHERE data LIKE '{"action":"U"%';

-- cleanup
SELECT pg_drop_replication_slot('regression_slot_decoding_records');
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(shape_id)) AS not_removed
  FROM shape_router.shapes;
SET client_min_messages = warning;
DROP SCHEMA sr_drec CASCADE;
