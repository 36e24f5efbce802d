--
-- refusals: bad and hostile WHERE clauses, relations and column lists.
-- Every refusal is an ERROR with an SQLSTATE, never a crash.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_ref CASCADE;
RESET client_min_messages;

CREATE SCHEMA sr_ref;
SET search_path = sr_ref, public;

-- try_shape: 'accepted', or SQLSTATE: message | detail | hint: hint
CREATE FUNCTION pg_temp.try_shape(rel regclass, clause text, cols text[] DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM shape_router.add_shape(rel, clause, cols);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    DECLARE
        s text; m text; d text; h text;
    BEGIN
        GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
                                d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
        RETURN s || ': ' || m || coalesce(' | ' || nullif(d, ''), '')
                 || coalesce(' | hint: ' || nullif(h, ''), '');
    END;
END $$;
-- try_state: only the SQLSTATE, for errors whose text names a setting
CREATE FUNCTION pg_temp.try_state(rel regclass, clause text)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM shape_router.add_shape(rel, clause);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    DECLARE
        s text;
    BEGIN
        GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE;
        RETURN s;
    END;
END $$;

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (a int, b int);
CREATE TYPE floatrange AS RANGE (subtype = float8);
CREATE DOMAIN pairdom AS pair;
CREATE FUNCTION plus_one(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 + 1';
CREATE FUNCTION plpgsql_imm(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS 'BEGIN RETURN $1; END';
CREATE FUNCTION user_eq(int, int) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT $1 = $2';
CREATE OPERATOR === (leftarg = int, rightarg = int, function = int4eq);
CREATE OPERATOR ==== (leftarg = int, rightarg = int, function = user_eq);
CREATE FUNCTION volatile_check(int) RETURNS bool VOLATILE LANGUAGE sql AS 'SELECT random() >= 0';
CREATE DOMAIN evil_int AS int CHECK (volatile_check(VALUE));
CREATE DOMAIN udf_int AS int CHECK (plus_one(VALUE) > 0);
CREATE SEQUENCE seq;

CREATE TABLE t (
    id int PRIMARY KEY,
    x int,
    y int,
    b bool,
    s text,
    ts timestamptz,
    tsl timestamp,
    d date,
    m mood,
    p pair,
    fr floatrange,
    arr int[],
    j jsonb
);
ALTER TABLE t REPLICA IDENTITY FULL;
CREATE TABLE other (col int, x int);

-- a syntax error, plainly: the cursor points into the clause
SELECT shape_router.add_shape('t', 'x = = 1');
SELECT shape_router.add_shape('t', 'x > 1 AND AND y < 2');
SELECT shape_router.add_shape('t', 'x = 1) OR (1 = 1');
-- an unknown column, plainly, with its position
SELECT shape_router.add_shape('t', 'x = 1 AND nope = 2');

-- syntax errors and attempts to escape the expression
SELECT clause, pg_temp.try_shape('t', clause) FROM (VALUES
    ('x = = 1'),
    ('x ='),
    ('(x = 1'),
    ('x = 1)'),
    ('1=1; DROP TABLE other'),
    ('x = 1; SELECT 1'),
    ('1=1) OR (1=1'),
    ('x = 1) --'),
    ('x = 1 /*'),
    ('x = ''unterminated'),
    ('x = 1 ORDER BY 1'),
    ('x = 1 GROUP BY x'),
    ('x = 1 HAVING true'),
    ('x = 1 WHERE true'),
    ('x = 1 LIMIT 1'),
    ('x = 1 OFFSET 1'),
    ('x = 1 FOR UPDATE'),
    ('x = 1 WINDOW w AS ()'),
    ('x = 1 UNION SELECT true'),
    ('x = 1 INTO y'),
    ('DISTINCT x = 1'),
    ('x = 1, y = 2'),
    ('x AS y'),
    ('x = 1 AS ok'),
    ('x = 1 ok'),
    ('x = DEFAULT'),
    (''),
    ('   '),
    ('-- only a comment'),
    ('/* only a comment */')
) AS v(clause);

-- comments are whitespace: accepted, and normalised away
SELECT pg_temp.try_shape('t', 'x = 1 -- a comment');
SELECT pg_temp.try_shape('t', 'x /* a comment */ = 2');
SELECT where_clause FROM shape_router.shapes WHERE relid = 't'::regclass ORDER BY shape_id;

-- not boolean, unknown names
SELECT clause, pg_temp.try_shape('t', clause) FROM (VALUES
    ('x'),
    ('x + 1'),
    ('s'),
    ('1'),
    ('arr'),
    ('j -> ''a'''),
    ('NULL::int'),
    ('''not a boolean'''),
    ('nope = 1'),
    ('t.nope = 1'),
    ('"X" = 1'),
    ('x = nope'),
    ('nosuchfunction(x)'),
    ('x = 1 COLLATE "C"'),
    ('s = ''a'' COLLATE "no such collation"'),
    ('s COLLATE "C" = s COLLATE "POSIX"'),
    ('x.y = 1'),
    ('x = 1/0')
) AS v(clause);

-- system columns and whole-row references
SELECT clause, pg_temp.try_shape('t', clause) FROM (VALUES
    ('ctid = ''(0,1)'''),
    ('xmin = ''1''::xid'),
    ('xmax <> ''0''::xid'),
    ('cmin = ''0''::cid'),
    ('tableoid = ''t''::regclass'),
    ('t.ctid IS NOT NULL'),
    ('x = 1 AND tableoid > 0'),
    ('t IS NOT NULL'),
    ('t.* IS NOT NULL'),
    ('row(t.*) IS NOT NULL'),
    ('t = t'),
    ('*')
) AS v(clause);

-- other tables, subqueries, aggregates, window functions, set-returning
-- functions, parameters
SELECT clause, pg_temp.try_shape('t', clause) FROM (VALUES
    ('other.col = 1'),
    ('sr_ref.other.col = 1'),
    ('x = other.x'),
    ('x = 1 FROM other'),
    ('x = 1 FROM other WHERE other.col = t.x'),
    ('(SELECT true)'),
    ('x = (SELECT 1)'),
    ('EXISTS (SELECT 1 FROM other)'),
    ('x IN (SELECT col FROM other)'),
    ('x = ANY (SELECT col FROM other)'),
    ('ARRAY(SELECT 1) IS NOT NULL'),
    ('x = 1 OR (SELECT pg_sleep(1)) IS NULL'),
    ('count(*) > 0'),
    ('max(x) > 1'),
    ('x = max(x)'),
    ('sum(x) FILTER (WHERE true) > 0'),
    ('string_agg(s, '','') = ''a'''),
    ('count(DISTINCT x) > 1'),
    ('percentile_cont(0.5) WITHIN GROUP (ORDER BY x) > 1'),
    ('GROUPING(x) = 0'),
    ('row_number() OVER () = 1'),
    ('rank() OVER (ORDER BY x) = 1'),
    ('sum(x) OVER (PARTITION BY y) > 1'),
    ('generate_series(1,2) = x'),
    ('x = generate_series(1,2)'),
    ('unnest(arr) = 1'),
    ('jsonb_array_elements(j) IS NOT NULL'),
    ('regexp_matches(s, ''a'') IS NOT NULL'),
    ('CASE WHEN x = 1 THEN generate_series(1,2) = 1 END'),
    ('$1'),
    ('x = $1'),
    ('x = $1::int')
) AS v(clause);

-- volatile and stable functions, SQL value functions
SELECT clause, pg_temp.try_shape('t', clause) FROM (VALUES
    ('random() > 0.5'),
    ('x = (random() * 10)::int'),
    ('nextval(''seq'') > 0'),
    ('x = ANY(ARRAY[1, currval(''seq'')::int])'),
    ('clock_timestamp() > ts'),
    ('x = 1 AND pg_sleep(10) IS NULL'),
    ('gen_random_uuid() IS NOT NULL'),
    ('set_config(''a.b'', ''c'', false) IS NOT NULL'),
    ('pg_read_file(''/etc/passwd'') IS NOT NULL'),
    ('txid_current() > 0'),
    ('x IN (1, 2, random()::int)'),
    ('CASE WHEN x = 1 THEN random() > 0.5 ELSE false END'),
    ('coalesce(x, nextval(''seq'')::int) > 0'),
    ('now() > ts'),
    ('ts > now() - interval ''1 day'''),
    ('statement_timestamp() > ts'),
    ('current_setting(''work_mem'') = ''4MB'''),
    ('pg_backend_pid() = x'),
    ('to_char(ts, ''YYYY'') = ''2020'''),
    ('to_char(x, ''999'') = ''  1'''),
    ('ts::date = ''2020-01-01'''),
    ('tsl > ''2020-01-01''::timestamptz'),
    ('ts > tsl'),
    ('d > ts'),
    ('s::regclass IS NOT NULL'),
    ('x::regclass::text = ''t'''),
    ('m::text = ''ok'''),
    ('s::mood = ''ok'''),
    ('current_user = ''alice'''),
    ('s = current_user'),
    ('session_user = s'),
    ('current_date > d'),
    ('CURRENT_TIMESTAMP > ts'),
    ('localtimestamp > tsl'),
    ('current_schema = ''public''')
) AS v(clause);

-- user-defined functions, operators and types
SELECT clause, pg_temp.try_shape('t', clause) FROM (VALUES
    ('plus_one(x) = 2'),
    ('sr_ref.plus_one(x) = 2'),
    ('plpgsql_imm(x) = 2'),
    ('user_eq(x, 1)'),
    ('x === 1'),
    ('x ==== 1'),
    ('x::evil_int > 0'),
    ('x::udf_int > 0'),
    ('p IS NULL'),
    ('(p).a = 1'),
    ('p.a = 1'),
    ('p = ROW(1, 2)::pair'),
    ('ROW(x, y)::pair IS NOT NULL'),
    ('p::pairdom IS NULL'),
    ('fr @> 1.5::float8'),
    ('fr IS NULL'),
    ('x = ANY(ARRAY[(ROW(1, 2)::pair).a])'),
    ('xmlparse(content s) IS NOT NULL'),
    ('s::xml IS DOCUMENT')
) AS v(clause);

-- a user operator "=" and a user function shadowing a built-in one, found
-- first on the search_path
CREATE OPERATOR sr_ref.= (leftarg = int, rightarg = int, function = user_eq);
CREATE FUNCTION sr_ref.int4eq(int, int) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT $1 = $2';
SET search_path = sr_ref, pg_catalog;
SELECT pg_temp.try_shape('t', 'x = 1') AS user_equals;
SELECT pg_temp.try_shape('t', 'int4eq(x, 1)') AS user_int4eq;
SELECT pg_temp.try_shape('t', 'x OPERATOR(pg_catalog.=) 1') AS builtin_equals;
SELECT pg_temp.try_shape('t', 'pg_catalog.int4eq(x, 3)') AS builtin_int4eq;
SET search_path = sr_ref, public;
DROP OPERATOR sr_ref.= (int, int);
DROP FUNCTION sr_ref.int4eq(int, int);

-- deep nesting and huge clauses: errors, not crashes
SELECT label, length(clause) AS bytes, pg_temp.try_state('t', clause) FROM (VALUES
    ('100000 parentheses', repeat('(', 100000) || 'x = 1' || repeat(')', 100000)),
    ('50000 NOTs', repeat('NOT ', 50000) || 'b'),
    ('20000 nested abs()', repeat('abs(', 20000) || 'x' || repeat(')', 20000) || ' = 1'),
    ('1 MB of OR', 'x = 1' || repeat(' OR x = 1', 100000)),
    ('30000 parentheses', repeat('(', 30000) || 'x = 1' || repeat(')', 30000)),
    ('16000 NOTs', repeat('NOT ', 16000) || 'b'),
    ('13000 nested abs()', repeat('abs(', 13000) || 'x' || repeat(')', 13000) || ' = 1'),
    ('16000 additions', 'x' || repeat(' + 1', 16000) || ' > 0'),
    ('8000 casts', 'x' || repeat('::int', 8000) || ' > 0'),
    ('64 KiB exactly', 'x = 1' || repeat(' ', 65536 - 5)),
    ('64 KiB + 1', 'x = 1' || repeat(' ', 65536 - 4)),
    ('64 KiB string constant', 's = ''' || repeat('a', 65000) || '''')
) AS v(label, clause);

-- the length limit, with its message
SELECT pg_temp.try_shape('t', 'x = 1' || repeat(' OR x = 1', 100000));

-- a short clause whose folded constants exceed the stored-qual limit
SELECT pg_temp.try_shape('t', 's = repeat(''x'', 10000000)');

-- big, but within limits: accepted or refused, and matching still works
SELECT label, length(clause) AS bytes, pg_temp.try_state('t', clause) FROM (VALUES
    ('6000-way OR', 'x = -1' || repeat(' OR x = -1', 6000)),
    ('10000-element IN', 'x IN (' || (SELECT string_agg(g::text, ',') FROM generate_series(1000, 10999) g) || ')'),
    ('1000 nested abs()', repeat('abs(', 1000) || 'x' || repeat(')', 1000) || ' = -7'),
    ('1000 alternating AND/OR', repeat('(x = -2 OR (y = -2 AND ', 1000) || 'b' || repeat('))', 1000)),
    ('3000 NOTs', repeat('NOT ', 3000) || 'b')
) AS v(label, clause);
SELECT shape_router.matching_shapes('t', '{"id": 1, "x": 5, "y": 5, "b": false}') IS NOT NULL AS evaluated;
SELECT cardinality(shape_router.matching_shapes('t', '{"id": 1, "x": -1, "y": 5, "b": false}')) >= 0 AS evaluated;
SELECT cardinality(shape_router.matching_shapes('t', '{"id": 1, "x": 7, "y": -2, "b": true}')) >= 0 AS evaluated;

-- relations
CREATE VIEW v AS SELECT * FROM t;
CREATE MATERIALIZED VIEW mv AS SELECT * FROM t;
CREATE TABLE parted (id int, x int, PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
ALTER TABLE parted_1 REPLICA IDENTITY FULL;
CREATE TEMP TABLE tmp (id int PRIMARY KEY, x int);
ALTER TABLE tmp REPLICA IDENTITY FULL;
CREATE UNLOGGED TABLE unlogged (id int PRIMARY KEY, x int);
ALTER TABLE unlogged REPLICA IDENTITY FULL;
CREATE TABLE ri_default (id int PRIMARY KEY, x int);
CREATE TABLE ri_index (id int NOT NULL, x int);
CREATE UNIQUE INDEX ri_index_id ON ri_index (id);
ALTER TABLE ri_index REPLICA IDENTITY USING INDEX ri_index_id;
CREATE TABLE ri_nothing (id int, x int);
ALTER TABLE ri_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE no_key (id int, x int);

SELECT pg_temp.try_shape(NULL, 'x = 1') AS null_relation;
SELECT pg_temp.try_shape(NULL, NULL) AS null_relation_null_clause;
SELECT pg_temp.try_shape(999999::oid::regclass, 'x = 1') AS dropped_relation;
SELECT pg_temp.try_shape('v', 'x = 1') AS view;
SELECT pg_temp.try_shape('mv', 'x = 1') AS matview;
SELECT pg_temp.try_shape('seq', 'true') AS sequence;
SELECT pg_temp.try_shape('t_pkey', 'id = 1') AS index;
SELECT pg_temp.try_shape('pair', 'a = 1') AS composite_type;
SELECT pg_temp.try_shape('parted', 'x = 1') AS partitioned;
SELECT pg_temp.try_shape('parted_1', 'x = 1') AS partition;
SELECT pg_temp.try_shape('tmp', 'x = 1') AS temp_table;
SELECT pg_temp.try_shape('unlogged', 'x = 1') AS unlogged_table;
SELECT pg_temp.try_shape('pg_class', 'relname = ''t''') AS system_catalog;
SELECT pg_temp.try_shape('pg_catalog.pg_proc', 'true') AS system_catalog_null;
SELECT pg_temp.try_shape('information_schema.sql_features', 'true') AS information_schema_table;
SELECT pg_temp.try_shape('shape_router.shapes', 'shape_id > 0') AS shapes_catalog;
SELECT pg_temp.try_shape('shape_router.shapes', NULL) AS shapes_catalog_null;
-- DEFAULT with a primary key and USING INDEX are accepted (membership)
SELECT pg_temp.try_shape('ri_default', 'x = 1') AS replica_identity_default;
SELECT pg_temp.try_shape('ri_default', NULL) AS replica_identity_default_null;
SELECT pg_temp.try_shape('ri_index', 'x = 1') AS replica_identity_index;
SELECT pg_temp.try_shape('ri_nothing', 'x = 1') AS replica_identity_nothing;
SELECT pg_temp.try_shape('no_key', 'x = 1') AS no_key_default_identity;
-- plainly, to show the hints in full
SELECT shape_router.add_shape('ri_nothing', 'x = 1');
SELECT shape_router.add_shape('no_key', 'x = 1');
-- an identity index dropped after ALTER TABLE ... USING INDEX
CREATE TABLE ri_gone (id int NOT NULL, x int);
CREATE UNIQUE INDEX ri_gone_id ON ri_gone (id);
ALTER TABLE ri_gone REPLICA IDENTITY USING INDEX ri_gone_id;
DROP INDEX ri_gone_id;
SELECT shape_router.add_shape('ri_gone', 'x = 1');

-- column lists
SELECT cols, pg_temp.try_shape('t', 'x = 1', cols) FROM (VALUES
    ('{nope}'::text[]),
    ('{x,nope}'),
    ('{ctid}'),
    ('{x,xmin}'),
    ('{tableoid}'),
    ('{""}'),
    ('{NULL}'),
    ('{X}')
) AS v(cols);

-- no shape was stored by any refusal above
SELECT count(*) AS refused_but_stored FROM shape_router.shapes
 WHERE relid IN ('v'::regclass, 'mv'::regclass, 'seq'::regclass, 't_pkey'::regclass,
                 'parted'::regclass, 'ri_gone'::regclass,
                 'ri_nothing'::regclass, 'no_key'::regclass, 'pg_class'::regclass,
                 'pg_proc'::regclass, 'shape_router.shapes'::regclass);

-- the shapes accepted above on t
SELECT left(where_clause, 60) AS where_clause, length(where_clause) AS length
  FROM shape_router.shapes WHERE relid = 't'::regclass
 ORDER BY shape_id;

-- clean up
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(shape_id)) AS not_removed
  FROM shape_router.shapes
 WHERE relid IN (SELECT c.oid FROM pg_class c
                  WHERE c.relnamespace IN ('sr_ref'::regnamespace, pg_my_temp_schema()));
SET client_min_messages = warning;
DROP SCHEMA sr_ref CASCADE;
DROP TABLE tmp;
RESET client_min_messages;
RESET search_path;
