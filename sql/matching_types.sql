--
-- matching_types: matching_shapes() against PostgreSQL's own evaluation of
-- the same predicate on the same row (built by jsonb_populate_record), for
-- many column types, operators and collations
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_mt CASCADE;
RESET client_min_messages;

CREATE SCHEMA sr_mt;
SET search_path = sr_mt, public;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, MDY';
SET extra_float_digits = 0;

-- the shapes under test
CREATE TABLE sut (label text PRIMARY KEY, rel regclass NOT NULL, clause text NOT NULL, id bigint);

-- reg: register a shape; 'ok' or the error
CREATE FUNCTION pg_temp.reg(rel regclass, label text, clause text)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sr_mt.sut VALUES (label, rel, clause, shape_router.add_shape(rel, clause));
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    DECLARE
        s text; m text; d text;
    BEGIN
        GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
        RETURN s || ': ' || m || coalesce(' | ' || nullif(d, ''), '');
    END;
END $$;

-- check: the labels of the shapes the engine says the row matches, the
-- labels PostgreSQL says it matches (the clause as written, evaluated on
-- jsonb_populate_record of the row), whether they agree, and the labels of
-- the shapes whose stored normalised text (shapes.where_clause) evaluates
-- differently from the clause as written (none, if normalisation is exact)
CREATE FUNCTION pg_temp.check(target regclass, r jsonb,
                              OUT engine text, OUT postgres text,
                              OUT agree bool, OUT normalised_differs text)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    sh record;
    ok bool;
    ok_norm bool;
    e text[] := '{}';
    p text[] := '{}';
    n text[] := '{}';
    rname text;
BEGIN
    ids := shape_router.matching_shapes(target, r);
    IF ids IS DISTINCT FROM (SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM unnest(ids) x) THEN
        RAISE EXCEPTION 'matching_shapes result % is not ascending', ids;
    END IF;
    SELECT c.relname INTO rname FROM pg_class c WHERE c.oid = target;
    FOR sh IN SELECT u.label, u.clause, u.id, s.where_clause
                FROM sr_mt.sut u LEFT JOIN shape_router.shapes s ON s.shape_id = u.id
               WHERE u.rel = target AND u.id IS NOT NULL
               ORDER BY u.label
    LOOP
        IF sh.id = ANY(ids) THEN
            e := e || sh.label;
        END IF;
        EXECUTE format('SELECT (%s) IS TRUE FROM jsonb_populate_record(NULL::%s, $1) AS %I',
                       sh.clause, target, rname) USING r INTO ok;
        IF ok THEN
            p := p || sh.label;
        END IF;
        BEGIN
            EXECUTE format('SELECT (%s) IS TRUE FROM jsonb_populate_record(NULL::%s, $1) AS %I',
                           coalesce(sh.where_clause, 'true'), target, rname) USING r INTO ok_norm;
        EXCEPTION WHEN OTHERS THEN
            ok_norm := NULL;    -- the normalised text does not even evaluate
        END;
        IF ok_norm IS DISTINCT FROM ok THEN
            n := n || sh.label;
        END IF;
    END LOOP;
    engine := array_to_string(e, ' ');
    postgres := array_to_string(p, ' ');
    agree := e = p;
    normalised_differs := array_to_string(n, ' ');
END $$;

-- try: 'ok' or the error of a statement
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

------------------------------------------------------------------------
-- integers, numeric, floats
------------------------------------------------------------------------
CREATE TABLE nums (id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, n numeric, f4 float4, f8 float8);
ALTER TABLE nums REPLICA IDENTITY FULL;

SELECT label, pg_temp.reg('nums', label, clause) FROM (VALUES
    ('i2_eq',      'i2 = 1'),
    ('i2_lt_big',  'i2 < 70000'),
    ('i2_in',      'i2 IN (1, 2, 3)'),
    ('i2_min',     'i2 = -32768'),
    ('i4_between', 'i4 BETWEEN -5 AND 5'),
    ('i4_ne',      'i4 <> 0'),
    ('i4_num_eq',  'i4 = 1.5'),
    ('i4_num_lt',  'i4 < 2.5'),
    ('i4_num_eq2', 'i4 = 2.0'),
    ('i4_gt_i8',   'i4 > 3000000000'),
    ('i4_in_i8',   'i4 IN (1, 3000000000)'),
    ('i4_mod',     'i4 % 2 = 0'),
    ('i4_ge',      'i4 >= 2147483647'),
    ('i8_eq',      'i8 = 9007199254740993'),
    ('i8_min',     'i8 = -9223372036854775808'),
    ('i8_any',     'i8 = ANY(''{1,2,9223372036854775807}'')'),
    ('i8_le',      'i8 <= 9007199254740992'),
    ('n_eq',       'n = 1'),
    ('n_in',       'n IN (1.5, 2)'),
    ('n_nan',      'n = ''NaN'''),
    ('n_gt',       'n > 1e20'),
    ('n_inf',      'n = ''Infinity'''),
    ('n_sum',      'n = 0.1 + 0.2'),
    ('n_lt0',      'n < 0'),
    ('f8_eq0',     'f8 = 0'),
    ('f8_in0',     'f8 IN (0, 1.5)'),
    ('f8_nan',     'f8 = ''NaN'''),
    ('f8_gt',      'f8 > 1e308'),
    ('f8_lt0',     'f8 < 0'),
    ('f8_inf',     'f8 = ''Infinity'''),
    ('f8_ne_nan',  'f8 <> ''NaN'''),
    ('f8_ge_nan',  'f8 >= ''NaN'''),
    ('f8_pos',     'f8 > 0'),
    ('f8_sum',     'f8 = 0.1 + 0.2'),
    ('f4_eq',      'f4 = 0.1'),
    ('f4_eq4',     'f4 = 0.1::real'),
    ('f4_nan',     'f4 = ''NaN'''),
    ('f4_big',     'f4 > 3e38'),
    ('f4_negzero', 'f4 = -0.0'),
    ('mixed',      'i2::int8 + i4 > 10 AND f8 < i8'),
    ('f8_eq_f4',   'f8 = 0.1::real'),
    ('i4_eq_f8',   'i4 = 1.5::float8'),
    ('i4_lt_f4',   'i4 < 2.5::float4'),
    ('i8_eq_f8',   'i8 = 9007199254740993::float8'),
    ('i2_in_i4',   'i2 IN (1, 100000)'),
    -- long IN lists (an engine may hash them)
    ('i2_in_long', 'i2 IN (' || (SELECT string_agg(g::text, ', ') FROM generate_series(100, 140) g) || ')'),
    ('i4_in_long', 'i4 IN (-2147483648, ' || (SELECT string_agg(g::text, ', ') FROM generate_series(2, 60) g) || ', NULL)'),
    ('i8_in_long', 'i8 IN (9007199254740993, ' || (SELECT string_agg(g::text, ', ') FROM generate_series(100, 140) g) || ')'),
    ('n_in_long',  'n IN (1, ' || (SELECT string_agg(g::text || '.5', ', ') FROM generate_series(100, 140) g) || ', ''NaN'')'),
    ('f8_in_long', 'f8 IN (0, ''NaN'', ' || (SELECT string_agg(g::text || '.25', ', ') FROM generate_series(100, 140) g) || ')'),
    ('f4_in_long', 'f4 IN (0.1, ' || (SELECT string_agg(g::text, ', ') FROM generate_series(100, 140) g) || ')')
) AS v(label, clause);

SELECT r, c.* FROM (VALUES
    ('{"id": 1, "i2": 1, "i4": 1, "i8": 9007199254740992, "n": 1.000, "f4": 0.1, "f8": "-0"}'::jsonb),
    ('{"id": 2, "i2": -32768, "i4": 2, "i8": 9007199254740993, "n": "NaN", "f4": "NaN", "f8": "NaN"}'),
    ('{"id": 3, "i2": 32767, "i4": -2147483648, "i8": -9223372036854775808, "n": "Infinity", "f4": "Infinity", "f8": "Infinity"}'),
    ('{"id": 4, "i2": 3, "i4": 2147483647, "i8": 9223372036854775807, "n": 0.3, "f4": "-Infinity", "f8": "-Infinity"}'),
    ('{"id": 5, "i4": 0, "n": 1.50, "f8": 1.5}'),
    ('{"id": 6, "f4": "-0", "f8": "-0", "n": "-0.0"}'),
    ('{"id": 7, "f8": "4.9e-324", "n": "-1e-30"}'),
    ('{"id": 8, "i2": "2", "i4": "5", "n": "1e3", "f8": "0.30000000000000004"}'),
    ('{"id": 9, "i2": 20, "i4": 20, "i8": 100, "f8": 99.5}'),
    ('{"id": 11, "i2": 120, "i4": 1, "i8": 9007199254740993, "n": 1.0, "f4": 0.1, "f8": 0.10000000149011612}'),
    ('{"id": 12, "i2": 100, "i4": 2, "i8": 9007199254740991, "n": 140, "f4": 140, "f8": 0.1}'),
    ('{"id": 10}')
) AS v(r), pg_temp.check('nums', r) AS c;

------------------------------------------------------------------------
-- text, varchar, char(n), name with collations
------------------------------------------------------------------------
CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE texts (
    id int PRIMARY KEY,
    s text,
    sc text COLLATE "C",
    v varchar(10),
    c char(5),
    ci text COLLATE ci,
    nm name
);
ALTER TABLE texts REPLICA IDENTITY FULL;

SELECT label, pg_temp.reg('texts', label, clause) FROM (VALUES
    ('s_eq',        's = ''abc'''),
    ('s_in',        's IN (''abc'', ''Straße'')'),
    ('s_ne',        's <> ''abc'''),
    ('s_lt_C',      's < ''b'' COLLATE "C"'),
    ('s_lt_icu',    's < ''b'' COLLATE "und-x-icu"'),
    ('s_gt_posix',  's > ''Z'' COLLATE "POSIX"'),
    ('s_ge_C',      's COLLATE "C" >= ''a'''),
    ('s_like',      's LIKE ''ab%'''),
    ('s_like_esc',  's LIKE ''a\_c'''),
    ('s_like_any',  's LIKE ''a_c'''),
    ('s_like_mid',  's LIKE ''%b%'''),
    ('s_like_all',  's LIKE ''%'''),
    ('s_ilike',     's ILIKE ''AB%'''),
    ('s_not_like',  's NOT LIKE ''a%'''),
    ('s_regex',     's ~ ''^a.c$'''),
    ('s_iregex',    's ~* ''^abc$'''),
    ('s_similar',   's SIMILAR TO ''(a|b)%'''),
    ('s_length',    'length(s) = 6'),
    ('s_octets',    'octet_length(s) = 7'),
    ('s_upper',     'upper(s) = ''ABC'''),
    ('s_lower_icu', 'lower(s COLLATE "und-x-icu") = ''straße'''),
    ('s_starts',    'starts_with(s, ''St'')'),
    ('s_concat',    's || ''!'' = ''abc!'''),
    ('s_empty',     's = '''''),
    ('sc_lt',       'sc < ''b'''),
    ('sc_eq',       'sc = ''ABC'''),
    ('sc_icu',      'sc COLLATE "und-x-icu" < ''b'''),
    ('sc_in',       'sc IN (''ABC'', ''bcd'')'),
    ('v_eq',        'v = ''abc'''),
    ('v_in',        'v IN (''abc'', ''a_c'')'),
    ('v_like',      'v LIKE ''a%'''),
    ('c_eq',        'c = ''ab'''),
    ('c_eq_sp',     'c = ''ab   '''),
    ('c_in',        'c IN (''ab'', ''zz'')'),
    ('c_text',      'c::text = ''ab'''),
    ('c_like',      'c LIKE ''ab'''),
    ('c_lt',        'c < ''ab!'''),
    ('ci_eq',       'ci = ''abc'''),
    ('ci_in',       'ci IN (''abc'', ''x'')'),
    ('ci_ne',       'ci <> ''abc'''),
    ('ci_eq_C',     'ci = ''abc'' COLLATE "C"'),
    ('ci_strasse',  'ci = ''strasse'''),
    ('ci_e_acute',  'ci = ''é'''),
    ('nm_eq',       'nm = ''abc'''),
    ('nm_in',       'nm IN (''abc'', ''ABC'')'),
    ('nm_lt',       'nm < ''b'''),
    -- long IN lists (an engine may hash them)
    ('s_in_long',   's IN (''abc'', ' || (SELECT string_agg(quote_literal('v' || g), ', ') FROM generate_series(1, 40) g) || ')'),
    ('ci_in_long',  'ci IN (''abc'', ''strasse'', ''é'', ' || (SELECT string_agg(quote_literal('v' || g), ', ') FROM generate_series(1, 40) g) || ')'),
    ('c_in_long',   'c IN (''ab'', ' || (SELECT string_agg(quote_literal('v' || g), ', ') FROM generate_series(1, 40) g) || ')'),
    ('v_in_long',   'v IN (''a_c'', ' || (SELECT string_agg(quote_literal('v' || g), ', ') FROM generate_series(1, 40) g) || ')'),
    ('nm_in_long',  'nm IN (''abc '', ' || (SELECT string_agg(quote_literal('v' || g), ', ') FROM generate_series(1, 40) g) || ')'),
    ('sc_in_long',  'sc IN (''B'', ' || (SELECT string_agg(quote_literal('v' || g), ', ') FROM generate_series(1, 40) g) || ', NULL)')
) AS v(label, clause);

SELECT r, c.* FROM (VALUES
    ('{"id": 1, "s": "abc", "sc": "abc", "v": "abc", "c": "ab", "ci": "abc", "nm": "abc"}'::jsonb),
    ('{"id": 2, "s": "ABC", "sc": "ABC", "v": "ABC", "c": "ab   ", "ci": "ABC", "nm": "ABC"}'),
    ('{"id": 3, "s": "bcd", "sc": "bcd", "v": "a_c", "c": "zz", "ci": "Abc", "nm": "abc "}'),
    ('{"id": 4, "s": "Straße", "sc": "Straße", "v": "Straße", "c": "ab!", "ci": "Straße", "nm": "Straße"}'),
    ('{"id": 5, "s": "a_c", "sc": "B", "v": "axc", "c": "a", "ci": "STRASSE"}'),
    ('{"id": 6, "s": "axc", "sc": "é", "ci": "é", "nm": "b"}'),
    ('{"id": 7, "s": "B", "sc": "é", "ci": "e\u0301"}'),
    ('{"id": 8, "s": "", "sc": "", "v": "", "c": "", "ci": "", "nm": ""}'),
    ('{"id": 9, "s": "abc!", "ci": "ABC "}'),
    ('{"id": 10}')
) AS v(r), pg_temp.check('texts', r) AS c;

------------------------------------------------------------------------
-- bool, date, timestamp, timestamptz, interval, uuid, ranges, inet, bytea
------------------------------------------------------------------------
CREATE TABLE misc (
    id int PRIMARY KEY,
    b bool,
    d date,
    ts timestamp,
    tz timestamptz,
    iv interval,
    u uuid,
    r int4range,
    ip inet,
    by bytea
);
ALTER TABLE misc REPLICA IDENTITY FULL;

SELECT label, pg_temp.reg('misc', label, clause) FROM (VALUES
    ('b',           'b'),
    ('b_not',       'NOT b'),
    ('b_eq_false',  'b = false'),
    ('b_is_true',   'b IS TRUE'),
    ('b_not_false', 'b IS NOT FALSE'),
    ('b_ne',        'b <> true'),
    ('d_ge',        'd >= ''2024-01-01'''),
    ('d_between',   'd BETWEEN ''2024-01-01'' AND ''2024-12-31'''),
    ('d_inf',       'd = ''infinity'''),
    ('d_in',        'd IN (''2024-02-29'', ''2023-03-01'')'),
    ('d_plus',      'd + 1 = ''2024-03-01'''),
    ('ts_lt',       'ts < ''2024-01-01 00:00'''),
    ('ts_eq',       'ts = ''2024-02-29 12:00:00.000001'''),
    ('ts_date',     'ts::date = d'),
    ('ts_ge_date',  'ts >= d'),
    ('tz_ge',       'tz >= ''2024-01-01 00:00+00'''),
    ('tz_eq',       'tz = ''2024-06-01 12:00:00+02'''),
    ('tz_in',       'tz IN (''2024-06-01 10:00:00+00'', ''1999-12-31 23:59:59+00'')'),
    ('tz_ninf',     'tz = ''-infinity'''),
    ('iv_eq',       'iv = ''1 day'''),
    ('iv_in',       'iv IN (''1 day'', ''1 month'')'),
    ('iv_gt',       'iv > ''23 hours'''),
    ('u_eq',        'u = ''A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'''),
    ('u_in',        'u IN (''a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'', ''00000000-0000-0000-0000-000000000000'')'),
    ('u_lt',        'u < ''80000000-0000-0000-0000-000000000000'''),
    ('r_contains',  'r @> 5'),
    ('r_overlaps',  'r && ''[10,20)'''),
    ('r_eq',        'r = ''[1,5)'''),
    ('r_empty',     'isempty(r)'),
    ('ip_in_net',   'ip << ''10.0.0.0/8'''),
    ('ip_eq',       'ip = ''192.168.0.1'''),
    ('by_eq',       'by = ''\x0102''::bytea'),
    ('by_len',      'length(by) = 3'),
    -- long IN lists (an engine may hash them)
    ('iv_in_long',  'iv IN (''1 day'', ' || (SELECT string_agg(quote_literal(g || ' minutes'), ', ') FROM generate_series(1, 40) g) || ')'),
    ('u_in_long',   'u IN (''A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'', ' || (SELECT string_agg(quote_literal(md5(g::text)::uuid), ', ') FROM generate_series(1, 40) g) || ')'),
    ('tz_in_long',  'tz IN (''2024-06-01 12:00:00+02'', ' || (SELECT string_agg(quote_literal('2020-01-01 00:00:00+00'::timestamptz + g * interval '1 hour'), ', ') FROM generate_series(1, 40) g) || ')'),
    ('d_in_long',   'd IN (''infinity'', ' || (SELECT string_agg(quote_literal('2020-01-01'::date + g), ', ') FROM generate_series(1, 40) g) || ')'),
    ('by_in_long',  'by IN (''\x0102''::bytea, ' || (SELECT string_agg(quote_literal('\x' || lpad(to_hex(g), 4, '0')) || '::bytea', ', ') FROM generate_series(1000, 1040) g) || ')')
) AS v(label, clause);

SELECT r, c.* FROM (VALUES
    ('{"id": 1, "b": true, "d": "2024-02-29", "ts": "2024-02-29 12:00:00.000001", "tz": "2024-01-01 05:00+05", "iv": "24 hours", "u": "{a0eebc99-9c0b4ef8-bb6d6bb9bd380a11}", "r": "[1,4]", "ip": "10.1.2.3", "by": "\\x0102"}'::jsonb),
    ('{"id": 2, "b": false, "d": "2023-03-01", "ts": "2023-03-01 00:00", "tz": "2024-06-01T10:00:00Z", "iv": "30 days", "u": "00000000-0000-0000-0000-000000000000", "r": "[5,10)", "ip": "192.168.0.1", "by": "\\x010203"}'),
    ('{"id": 3, "d": "infinity", "ts": "infinity", "tz": "-infinity", "iv": "1 day 1 second", "r": "empty", "ip": "10.0.0.0/8"}'),
    ('{"id": 4, "b": "t", "d": "2024-12-31", "ts": "2024-12-31 00:00", "tz": "1999-12-31 23:59:59+00", "iv": "1 mon", "u": "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "r": "[19,30)", "ip": "::1"}'),
    ('{"id": 5, "b": "off", "d": "1999-01-01", "ts": "1999-01-01 00:00", "tz": "2024-06-01 14:00:00+04", "iv": "-1 day", "r": "(,)"}'),
    ('{"id": 6}')
) AS v(r), pg_temp.check('misc', r) AS c;

-- shapes registered under other display settings: the stored normalised
-- text must still mean the same under the settings in force above
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'postgres_verbose';
SET extra_float_digits = -10;
SET TimeZone = 'Asia/Kolkata';
SELECT label, pg_temp.reg('misc', label, clause) FROM (VALUES
    ('ds_date',     'd = ''2024-02-01'''),
    ('ds_ts',       'ts < ''2024-02-01 10:00'''),
    ('ds_tz',       'tz = ''2024-06-01 10:00:00+00'''),
    ('ds_iv',       'iv > ''1 day 2 hours'''),
    ('ds_float',    '(extract(epoch FROM iv))::float8 > 86400.123456789')
) AS v(label, clause);
SET DateStyle = 'ISO, MDY';
RESET IntervalStyle;
SET extra_float_digits = 0;
SET TimeZone = 'UTC';
SELECT r, c.* FROM (VALUES
    ('{"id": 1, "d": "2024-02-01", "ts": "2024-02-01 09:00", "tz": "2024-06-01 10:00:00+00", "iv": "1 day 3 hours"}'::jsonb),
    ('{"id": 2, "d": "2024-01-02", "ts": "2024-01-02 11:00", "tz": "2024-06-01 10:00:00+05:30", "iv": "1 day 00:00:00.5"}')
) AS v(r), pg_temp.check('misc', r) AS c;

------------------------------------------------------------------------
-- json and jsonb operators
------------------------------------------------------------------------
CREATE TABLE js (id int PRIMARY KEY, j jsonb, jn json);
ALTER TABLE js REPLICA IDENTITY FULL;

SELECT label, pg_temp.reg('js', label, clause) FROM (VALUES
    ('j_text',     'j ->> ''k'' = ''v'''),
    ('j_contains', 'j @> ''{"a": 1}'''),
    ('j_exists',   'j ? ''k'''),
    ('j_any',      'j ?| array[''x'', ''y'']'),
    ('j_all',      'j ?& array[''k'', ''a'']'),
    ('j_num',      '(j ->> ''n'')::numeric > 10'),
    ('j_path',     'j #>> ''{o,p}'' = ''q'''),
    ('j_eq_1',     'j -> ''a'' = ''1'''),
    ('j_eq_whole', 'j = ''{"k": "v", "a": 1}'''),
    ('j_jsonpath', 'j @? ''$.a ? (@ > 0)'''),
    ('j_match',    'j @@ ''$.a > 0'''),
    ('j_type',     'jsonb_typeof(j) = ''array'''),
    ('j_null_key', 'j -> ''y'' = ''null'''),
    ('j_is_null',  'j IS NULL'),
    ('jn_text',    'jn ->> ''k'' = ''v'''),
    ('j_in',       'j -> ''a'' IN (''1'', ''"x"'')'),
    ('j_in_long',  'j -> ''a'' IN (''1'', ' || (SELECT string_agg(quote_literal(g), ', ') FROM generate_series(100, 140) g) || ')')
) AS v(label, clause);

SELECT r, c.* FROM (VALUES
    ('{"id": 1, "j": {"k": "v", "a": 1}, "jn": {"k": "v"}}'::jsonb),
    ('{"id": 2, "j": {"a": 1.0, "k": "v"}, "jn": {"k": "w"}}'),
    ('{"id": 3, "j": {"k": "w", "n": "11", "x": 0}}'),
    ('{"id": 4, "j": {"o": {"p": "q"}, "y": null}}'),
    ('{"id": 5, "j": ["k", "a"]}'),
    ('{"id": 6, "j": "k"}'),
    ('{"id": 7, "j": null, "jn": null}'),
    ('{"id": 8, "j": {"a": -1, "n": 9.5}}'),
    ('{"id": 9}')
) AS v(r), pg_temp.check('js', r) AS c;

------------------------------------------------------------------------
-- arrays: = ANY, <> ALL, @>, <@, &&, subscripts
------------------------------------------------------------------------
CREATE TABLE arr (id int PRIMARY KEY, i int, s text, ia int[], ta text[], fa float8[]);
ALTER TABLE arr REPLICA IDENTITY FULL;

SELECT label, pg_temp.reg('arr', label, clause) FROM (VALUES
    ('i_any',        'i = ANY(''{1,2,3}'')'),
    ('i_any_arr',    'i = ANY(ARRAY[4, 5])'),
    ('i_all',        'i <> ALL(''{1,2}'')'),
    ('i_gt_any',     'i > ANY(''{10,20}'')'),
    ('i_lt_all',     'i < ALL(''{10,20}'')'),
    ('i_any_col',    'i = ANY(ia)'),
    ('s_any',        's = ANY(''{a,b}'')'),
    ('s_all',        's <> ALL(ARRAY[''a'', ''b''])'),
    ('s_like_some',  's LIKE ANY(''{a%,%z}'')'),
    ('ia_has_5',     '5 = ANY(ia)'),
    ('ia_contains',  'ia @> ''{1,2}'''),
    ('ia_cont_none', 'ia @> ''{}'''),
    ('ia_overlaps',  'ia && ''{2,9}'''),
    ('ia_ovl_none',  'ia && ''{}'''),
    ('ia_within',    'ia <@ ''{1,2,3}'''),
    ('ia_eq',        'ia = ''{1,2}'''),
    ('ia_card0',     'cardinality(ia) = 0'),
    ('ia_first',     'ia[1] = 1'),
    ('ia_len',       'array_length(ia, 1) > 2'),
    ('ta_contains',  'ta @> ''{b}'''),
    ('ta_has_a',     '''a'' = ANY(ta)'),
    ('ta_overlaps',  'ta && ARRAY[''x'', ''a'']'),
    ('fa_has_zero',  'fa @> ''{0}'''),
    ('fa_has_nan',   '''NaN''::float8 = ANY(fa)')
) AS v(label, clause);

SELECT r, c.* FROM (VALUES
    ('{"id": 1, "i": 1, "s": "a", "ia": [1, 2, 3], "ta": ["a", "b"], "fa": ["-0"]}'::jsonb),
    ('{"id": 2, "i": 5, "s": "b", "ia": [5, null], "ta": ["b", null], "fa": ["NaN"]}'),
    ('{"id": 3, "i": 15, "s": "xyz", "ia": [], "ta": [], "fa": []}'),
    ('{"id": 4, "i": 25, "s": "ab", "ia": [[1, 2], [3, 4]], "ta": ["x"], "fa": [0.5, 0]}'),
    ('{"id": 5, "i": 2, "s": "A", "ia": [2, 1], "ta": ["A"]}'),
    ('{"id": 6, "ia": [9], "ta": [null]}'),
    ('{"id": 7}')
) AS v(r), pg_temp.check('arr', r) AS c;

------------------------------------------------------------------------
-- enums (ordered by declaration, including values added later) and domains
------------------------------------------------------------------------
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok';
ALTER TYPE mood ADD VALUE 'ecstatic';
ALTER TYPE mood ADD VALUE 'miserable' BEFORE 'sad';
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN ctext AS text COLLATE "C";
CREATE DOMAIN moodd AS mood;
CREATE TABLE en (id int PRIMARY KEY, m mood, ma mood[], p posint, dt ctext, dm moodd);
ALTER TABLE en REPLICA IDENTITY FULL;

SELECT label, pg_temp.reg('en', label, clause) FROM (VALUES
    ('m_gt_ok',     'm > ''ok'''),
    ('m_lt_ok',     'm < ''ok'''),
    ('m_in',        'm IN (''sad'', ''meh'')'),
    ('m_eq_meh',    'm = ''meh'''),
    ('m_between',   'm BETWEEN ''meh'' AND ''happy'''),
    ('m_min',       'm <= ''miserable'''),
    ('ma_has_ok',   '''ok'' = ANY(ma)'),
    ('ma_contains', 'ma @> ''{happy}'''),
    ('p_gt',        'p > 5'),
    ('p_eq',        'p = 7'),
    ('p_in',        'p IN (1, 2)'),
    ('dt_lt',       'dt < ''b'''),
    ('dt_eq',       'dt = ''abc'''),
    ('dm_ge',       'dm::mood >= ''ok'''),
    ('dm_eq',       'dm::mood = ''ecstatic'''),
    ('m_in_long',   'm IN (''meh'', ''miserable'', ''ecstatic'', ''sad'', ''happy'') AND m NOT IN (''sad'', ''happy'')'),
    ('p_in_long',   'p IN (' || (SELECT string_agg(g::text, ', ') FROM generate_series(7, 60) g) || ')')
) AS v(label, clause);

SELECT r, c.* FROM (VALUES
    ('{"id": 1, "m": "sad", "ma": ["ok", "happy"], "p": 1, "dt": "abc", "dm": "ok"}'::jsonb),
    ('{"id": 2, "m": "meh", "ma": ["meh"], "p": 7, "dt": "B", "dm": "meh"}'),
    ('{"id": 3, "m": "ok", "ma": [], "p": 6, "dt": "b", "dm": "ecstatic"}'),
    ('{"id": 4, "m": "happy", "p": 2, "dt": "ABC"}'),
    ('{"id": 5, "m": "ecstatic"}'),
    ('{"id": 6, "m": "miserable"}'),
    ('{"id": 7}')
) AS v(r), pg_temp.check('en', r) AS c;

------------------------------------------------------------------------
-- values the table cannot hold: matching_shapes fails as
-- jsonb_populate_record does
------------------------------------------------------------------------
SELECT r,
       pg_temp.try('SELECT shape_router.matching_shapes(''sr_mt.nums'', $1)', r) AS engine,
       pg_temp.try('SELECT jsonb_populate_record(NULL::sr_mt.nums, $1)', r) AS postgres
  FROM (VALUES
    ('{"i4": "abc"}'::jsonb),
    ('{"i2": 70000}'),
    ('{"i4": 1.5}'),
    ('{"i8": 1e30}'),
    ('{"f8": "1e400"}'),
    ('{"i4": {"a": 1}}'),
    ('{"i4": [1]}')
  ) AS v(r);
SELECT r,
       pg_temp.try('SELECT shape_router.matching_shapes(''sr_mt.en'', $1)', r) AS engine,
       pg_temp.try('SELECT jsonb_populate_record(NULL::sr_mt.en, $1)', r) AS postgres
  FROM (VALUES
    ('{"p": -1}'::jsonb),
    ('{"m": "furious"}'),
    ('{"ma": "not an array"}')
  ) AS v(r);
SELECT r,
       pg_temp.try('SELECT shape_router.matching_shapes(''sr_mt.misc'', $1)', r) AS engine,
       pg_temp.try('SELECT jsonb_populate_record(NULL::sr_mt.misc, $1)', r) AS postgres
  FROM (VALUES
    ('{"u": "not-a-uuid"}'::jsonb),
    ('{"d": "2024-02-30"}'),
    ('{"r": "[5,1]"}')
  ) AS v(r);
-- a row that is not a JSON object
SELECT pg_temp.try('SELECT shape_router.matching_shapes(''sr_mt.nums'', $1)', '[1, 2]') AS engine,
       pg_temp.try('SELECT jsonb_populate_record(NULL::sr_mt.nums, $1)', '[1, 2]') AS postgres;
SELECT pg_temp.try('SELECT shape_router.matching_shapes(''sr_mt.nums'', $1)', '1') AS engine,
       pg_temp.try('SELECT jsonb_populate_record(NULL::sr_mt.nums, $1)', '1') AS postgres;

-- a table without shapes matches nothing
CREATE TABLE noshapes (id int PRIMARY KEY);
SELECT shape_router.matching_shapes('noshapes', '{"id": 1}') AS no_shapes;

-- clean up
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(id)) AS not_removed
  FROM sut WHERE id IS NOT NULL;
SET client_min_messages = warning;
DROP SCHEMA sr_mt CASCADE;
RESET client_min_messages;
RESET search_path;
RESET TimeZone;
RESET DateStyle;
RESET extra_float_digits;
