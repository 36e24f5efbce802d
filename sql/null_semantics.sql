--
-- null_semantics: three-valued logic; a predicate that is NULL does not
-- match; missing keys of the row mean NULL; unknown keys are ignored (as
-- jsonb_populate_record does)
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_null CASCADE;
RESET client_min_messages;

CREATE SCHEMA sr_null;
SET search_path = sr_null, public;

CREATE TABLE sut (label text PRIMARY KEY, clause text NOT NULL, id bigint NOT NULL);

CREATE TABLE n (id int PRIMARY KEY, x int, y int, b bool, c bool, s text, "Mixed Case" int);
ALTER TABLE n REPLICA IDENTITY FULL;

-- the engine's matches, PostgreSQL's matches, and the value PostgreSQL
-- computes for every shape (t, f or null) on the row
CREATE FUNCTION pg_temp.check(r jsonb, OUT engine text, OUT postgres text, OUT agree bool)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    sh record;
    ok bool;
    e text[] := '{}';
    p text[] := '{}';
BEGIN
    ids := shape_router.matching_shapes('sr_null.n', r);
    FOR sh IN SELECT * FROM sr_null.sut ORDER BY label LOOP
        IF sh.id = ANY(ids) THEN
            e := e || sh.label;
        END IF;
        EXECUTE format('SELECT (%s) IS TRUE FROM jsonb_populate_record(NULL::sr_null.n, $1) AS n',
                       sh.clause) USING r INTO ok;
        IF ok THEN
            p := p || sh.label;
        END IF;
    END LOOP;
    engine := array_to_string(e, ' ');
    postgres := array_to_string(p, ' ');
    agree := e = p;
END $$;

-- one shape per predicate, and the predicate's value on each row
INSERT INTO sut (label, clause, id)
SELECT label, clause, shape_router.add_shape('n', clause) FROM (VALUES
    ('eq',               'x = 1'),
    ('ne',               'x <> 1'),
    ('lt',               'x < 1'),
    ('in_null',          'x IN (1, NULL)'),
    ('not_in_null',      'x NOT IN (1, NULL)'),
    ('not_in',           'x NOT IN (1, 2)'),
    ('any_null',         'x = ANY(''{1,NULL}'')'),
    ('all_null',         'x <> ALL(''{1,NULL}'')'),
    ('is_null',          'x IS NULL'),
    ('is_not_null',      'x IS NOT NULL'),
    ('distinct',         'x IS DISTINCT FROM 1'),
    ('not_distinct',     'x IS NOT DISTINCT FROM 1'),
    ('not_distinct_nul', 'x IS NOT DISTINCT FROM NULL'),
    ('distinct_y',       'x IS DISTINCT FROM y'),
    ('eq_y',             'x = y'),
    ('not_eq',           'NOT (x = 1)'),
    ('b',                'b'),
    ('not_b',            'NOT b'),
    ('b_is_true',        'b IS TRUE'),
    ('b_is_not_true',    'b IS NOT TRUE'),
    ('b_is_false',       'b IS FALSE'),
    ('b_is_not_false',   'b IS NOT FALSE'),
    ('b_is_unknown',     'b IS UNKNOWN'),
    ('b_is_not_unknown', 'b IS NOT UNKNOWN'),
    ('and',              'x = 1 AND b'),
    ('or',               'x = 1 OR b'),
    ('not_and',          'NOT (x = 1 AND b)'),
    ('not_or',           'NOT (x = 1 OR b)'),
    ('and3',             'b AND c AND x > 0'),
    ('or3',              'b OR c OR x > 0'),
    ('not_not',          'NOT NOT b'),
    ('b_and_not_b',      'b AND NOT b'),
    ('b_or_not_b',       'b OR NOT b'),
    ('nested',           '(b OR x = 1) AND NOT (c AND y = 2)'),
    ('case',             'CASE WHEN x > 0 THEN true ELSE false END'),
    ('case_no_else',     'CASE WHEN x IS NULL THEN true END'),
    ('case_null_result', 'CASE WHEN b THEN NULL ELSE true END'),
    ('case_simple',      'CASE x WHEN 1 THEN b WHEN 2 THEN true END'),
    ('coalesce',         'coalesce(x, 0) = 0'),
    ('coalesce_b',       'coalesce(b, true)'),
    ('coalesce_2',       'coalesce(x, y) = 2'),
    ('nullif',           'nullif(x, 1) IS NULL'),
    ('greatest',         'greatest(x, 0) = 0'),
    ('least',            'least(x, y) = 1'),
    ('s_eq',             's = ''null'''),
    ('s_empty',          's = '''''),
    ('s_is_null',        's IS NULL'),
    ('s_concat',         's || ''x'' IS NULL'),
    ('row_is_null',      'ROW(x, y) IS NULL'),
    ('row_not_null',     'ROW(x, y) IS NOT NULL'),
    ('row_eq',           'ROW(x, y) = ROW(1, 2)'),
    ('row_lt',           'ROW(x, y) < ROW(1, 3)'),
    ('mixed_case',       '"Mixed Case" = 5'),
    ('null_const',       'NULL::bool'),
    ('null_and_false',   'NULL AND false'),
    ('null_or_true',     'NULL OR true'),
    ('every_row',        'true'),
    ('no_row',           'false'),
    ('not_in_set_null',  'NOT (x IN (1, NULL))'),
    ('not_any_null',     'NOT (x = ANY(''{1,NULL}''))'),
    ('not_all_null',     'NOT (x <> ALL(''{1,NULL}''))'),
    ('in_long_null',     'x IN (' || (SELECT string_agg(g::text, ', ') FROM generate_series(1, 40) g) || ', NULL)'),
    ('not_in_long_null', 'x NOT IN (' || (SELECT string_agg(g::text, ', ') FROM generate_series(1, 40) g) || ', NULL)'),
    ('not_in_long',      'x NOT IN (' || (SELECT string_agg(g::text, ', ') FROM generate_series(1, 40) g) || ')'),
    ('s_in_null',        's IN (''a'', NULL)'),
    ('s_not_in_null',    's NOT IN (''a'', NULL)'),
    ('expr_is_unknown',  '(x = 1) IS UNKNOWN'),
    ('expr_not_false',   '(x = 1) IS NOT FALSE'),
    ('and_is_null',      '(b AND c) IS NULL'),
    ('not_isnull',       'NOT (b IS NULL)'),
    ('bool_eq',          '(x > 0) = b'),
    ('between',          'x BETWEEN y AND 5'),
    ('between_sym',      'x BETWEEN SYMMETRIC 5 AND y'),
    ('or5',              'x = 1 OR y = 2 OR b OR c OR s = ''a'''),
    ('and_of_ors',       '(x = 1 OR y = 2) AND (b OR c)'),
    ('not_and_not_or',   'NOT (b AND NOT (c OR x = 1))'),
    ('case_in_and',      'CASE WHEN b THEN c END AND x IS NOT NULL')
) AS v(label, clause);

-- every shape was registered
SELECT count(*) AS shapes, count(DISTINCT id) AS ids FROM sut;

SELECT r, c.* FROM (VALUES
    ('{"id": 1, "x": null, "y": null, "b": null, "c": null, "s": null}'::jsonb),
    ('{"id": 2}'),
    ('{}'),
    ('{"id": 3, "x": 1, "y": 2, "b": true, "c": true, "s": "null"}'),
    ('{"id": 4, "x": 1, "b": null, "c": false}'),
    ('{"id": 5, "x": null, "b": false, "c": null}'),
    ('{"id": 6, "x": null, "b": true, "c": true, "y": 2}'),
    ('{"id": 7, "x": 2, "y": null, "b": false, "s": ""}'),
    ('{"id": 8, "x": 0, "y": 1, "b": true}'),
    ('{"id": 9, "x": 3, "y": 3, "c": true}'),
    -- unknown keys are ignored; keys are case sensitive
    ('{"id": 10, "x": 1, "nope": 1, "X": 2, "B": true}'),
    ('{"id": 11, "X": 1, "Mixed Case": 5}'),
    ('{"id": 12, "mixed case": 5, "b": true, "": 1, "x ": 1}'),
    -- JSON null and the string "null" differ
    ('{"id": 13, "s": "null", "b": "true"}'),
    ('{"id": 14, "x": "1", "b": "f", "c": "yes"}')
) AS v(r), pg_temp.check(r) AS c;

-- what PostgreSQL computes, per shape, on a row with only the key set:
-- the shapes whose value is NULL must not match
CREATE FUNCTION pg_temp.eval(clause text, r jsonb) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE v bool;
BEGIN
    EXECUTE format('SELECT (%s) FROM jsonb_populate_record(NULL::sr_null.n, $1) AS n', clause)
      USING r INTO v;
    RETURN v;
END $$;
SELECT s.label, s.clause, pg_temp.eval(s.clause, '{"id": 1}') AS value,
       s.id = ANY(m.ids) AS engine_matches,
       coalesce(pg_temp.eval(s.clause, '{"id": 1}'), false) = (s.id = ANY(m.ids)) AS agree
  FROM sut s, shape_router.matching_shapes('n', '{"id": 1}') AS m(ids)
 ORDER BY s.label;

-- the same with x = 1 and everything else NULL: only disagreements
SELECT s.label, pg_temp.eval(s.clause, '{"x": 1}') AS value,
       s.id = ANY(m.ids) AS engine_matches
  FROM sut s, shape_router.matching_shapes('n', '{"x": 1}') AS m(ids)
 WHERE coalesce(pg_temp.eval(s.clause, '{"x": 1}'), false) <> (s.id = ANY(m.ids))
 ORDER BY s.label;

-- matching_shapes itself is strict
SELECT shape_router.matching_shapes('n', NULL) IS NULL AS null_row;
SELECT shape_router.matching_shapes(NULL, '{}') IS NULL AS null_rel;
-- rows that are not JSON objects: as jsonb_populate_record does
CREATE FUNCTION pg_temp.try(stmt text, r jsonb)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt USING r;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    DECLARE
        s text; m text;
    BEGIN
        GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT;
        RETURN s || ': ' || m;
    END;
END $$;
SELECT r,
       pg_temp.try('SELECT shape_router.matching_shapes(''sr_null.n'', $1)', r) AS engine,
       pg_temp.try('SELECT jsonb_populate_record(NULL::sr_null.n, $1)', r) AS postgres
  FROM (VALUES ('null'::jsonb), ('[]'), ('"x"'), ('{"x": null}')) AS v(r);
SELECT shape_router.matching_shapes('n', 'null') AS json_null_row;

-- clean up
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(id)) AS not_removed FROM sut;
SET client_min_messages = warning;
DROP SCHEMA sr_null CASCADE;
RESET client_min_messages;
RESET search_path;
