-- The predicate index: every access path, named by explain_shape, and
-- matching through it agreeing with PostgreSQL's own evaluation.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
RESET client_min_messages;
CREATE SCHEMA pidx;
SET search_path = pidx, public;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE items (
	id int PRIMARY KEY,
	n int,
	b bigint,
	f float8,
	num numeric,
	t text,
	v varchar(20),
	flag bool,
	d date,
	u uuid,
	m mood,
	arr int[],
	tags text[]
);
ALTER TABLE items REPLICA IDENTITY FULL;

CREATE TABLE clauses (label text PRIMARY KEY, clause text, shape_id bigint);
INSERT INTO clauses (label, clause) VALUES
	('eq int',          'n = 3'),
	('eq commuted',     '3 = n'),
	('eq cross-type',   'n = 3::bigint'),
	('in list',         'n IN (1, 2, 3)'),
	('any array',       'b = ANY (''{5,6}'')'),
	('eq numeric',      'num = 1.50'),
	('eq float -0',     'f = -0.0'),
	('eq text',         't = ''abc'''),
	('eq varchar',      'v = ''abc'''),
	('eq uuid',         'u = ''00000000-0000-0000-0000-000000000001'''),
	('eq enum',         'm = ''ok'''),
	('eq date',         'd = ''2024-01-02'''),
	('eq C collation',  't = ''ABC'' COLLATE "C"'),
	('and picks eq',    'n > 0 AND t = ''abc'' AND flag'),
	('or of eqs',       'n = 1 OR t = ''zzz'''),
	('or of mixed',     'n = 1 OR f > 2.5'),
	('prefix',          't LIKE ''ab%'''),
	('prefix escape',   't LIKE ''a\_%'''),
	('lower bound',     'n > 2'),
	('upper bound',     'n <= 2'),
	('commuted range',  '2 < n'),
	('between',         'n BETWEEN 2 AND 4'),
	('date range',      'd >= ''2024-01-02'' AND d < ''2024-02-01'''),
	('float range',     'f > 1.5'),
	('text range',      't > ''b'''),
	('bool true',       'flag'),
	('bool false',      'NOT flag'),
	('is true',         'flag IS TRUE'),
	('is false',        'flag IS FALSE'),
	('is null',         't IS NULL'),
	('is not null',     't IS NOT NULL'),
	('array contains',  'arr @> ''{2,3}'''),
	('array overlaps',  'tags && ''{x,y}'''),
	('overlap commuted', '''{7}'' && arr'),
	('array has null',  'arr @> ''{NULL,3}'''),
	('scan: contains empty', 'arr @> ''{}'''),
	('infix ilike 1',   't ILIKE ''%b%'''),
	('infix like',      't LIKE ''%bc%'''),
	('infix ilike',     't ILIKE ''%AB_%'''),
	('infix runs',      't LIKE ''%é_lo%x'''),
	('infix escape',    't LIKE ''%a\_b%'''),
	('infix unicode',   't ILIKE ''%HÉL%'''),
	('infix varchar',   'v ILIKE ''_b%'''),
	('infix C',         't LIKE ''%bc'' COLLATE "C"'),
	('or eq, ilike',    'n = 1 OR t ILIKE ''%b%'''),
	('scan: wildcards', 't LIKE ''%_%'''),
	('regex',           't ~ ''b'''),
	('regex runs',      't ~ ''^ab+c(de)?fgh'''),
	('or eq, regex',    'n = 1 OR t ~ ''b'''),
	('scan: regex alternatives', 't ~ ''ab|cd'''),
	('scan: regex icase', 't ~* ''abc'''),
	('scan: regex code escape', 't ~ ''\x41bc'''),
	('scan: or',        'n = 1 OR t ~* ''b'''),
	('scan: not eq',    'n <> 3'),
	('scan: expr',      'n + 1 = 4');
-- a long pattern keeps 32 of its n-grams; values longer than 4 KB skip the
-- per-shape n-gram check and go to the shape's own ILIKE
INSERT INTO clauses (label, clause)
SELECT 'infix long', format('t ILIKE %L',
		 '%' || string_agg(md5(g::text), '' ORDER BY g) || '%')
  FROM generate_series(1, 200) g;
UPDATE clauses SET shape_id = shape_router.add_shape('items', clause);

SELECT label, split_part(shape_router.explain_shape(shape_id), E'\n', 1) AS access
FROM clauses ORDER BY label;

INSERT INTO items VALUES
	(1, 3, 5, 2.0, 1.5, 'abc', 'abc', true, '2024-01-02', '00000000-0000-0000-0000-000000000001', 'ok', '{1,2,3}', '{x}'),
	(2, 1, 6, -0.0, 1.50, 'ABC', 'x', false, '2024-01-15', NULL, 'sad', '{3,3,2,NULL}', '{y,y,x}'),
	(3, 2, NULL, 'NaN', NULL, 'a_b', NULL, NULL, '2023-12-31', NULL, 'happy', '{}', '{}'),
	(4, 4, 7, 1.5, 2, 'zzz', 'abc', true, NULL, NULL, NULL, '{7,NULL}', '{NULL}'),
	(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(6, 10, 5, 'Infinity', 'NaN', 'b', 'ab', false, '2024-02-01', '00000000-0000-0000-0000-000000000002', 'ok', '{2}', '{X}'),
	(7, 0, 0, 0, 0, 'xHéllox', 'AB', NULL, NULL, NULL, NULL, NULL, NULL),
	(8, 0, 0, 0, 0, 'ΣHÉLLO abc', 'Ab', NULL, NULL, NULL, NULL, NULL, NULL),
	(9, 0, 0, 0, 0, 'zz a_b zz', 'XBC', NULL, NULL, NULL, NULL, NULL, NULL),
	(10, 0, 0, 0, 0, 'éxloabcx', 'abc', NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO items (id, n, t)
SELECT 11, 0, 'head ' || upper(string_agg(md5(g::text), '' ORDER BY g)) || ' tail'
  FROM generate_series(1, 200) g
UNION ALL
SELECT 12, 0, string_agg(md5(g::text), '' ORDER BY g)
  FROM generate_series(1, 199) g;

-- For every row, the shapes matched through the index and the shapes
-- PostgreSQL's own WHERE selects must be the same.
CREATE FUNCTION pidx.expected(row_id int) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
	c record;
	ok bool;
	ids bigint[] := '{}';
BEGIN
	FOR c IN SELECT * FROM pidx.clauses ORDER BY shape_id LOOP
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM pidx.items WHERE id = $1 AND (%s))', c.clause)
			INTO ok USING row_id;
		IF ok THEN
			ids := ids || c.shape_id;
		END IF;
	END LOOP;
	RETURN ids;
END $$;

SELECT i.id,
	   shape_router.matching_shapes('items', to_jsonb(i)) = pidx.expected(i.id) AS agrees,
	   (SELECT array_agg(c.label ORDER BY c.label) FROM clauses c
		 WHERE c.shape_id = ANY (shape_router.matching_shapes('items', to_jsonb(i)))) AS matched
FROM items i ORDER BY i.id;

-- Removing shapes takes them out of the index.
SELECT shape_router.remove_shape(shape_id) FROM clauses WHERE label IN ('eq int', 'in list', 'between', 'prefix', 'bool true', 'is null', 'infix like', 'infix ilike 1', 'infix unicode');
DELETE FROM clauses WHERE label IN ('eq int', 'in list', 'between', 'prefix', 'bool true', 'is null', 'infix like', 'infix ilike 1', 'infix unicode');
SELECT i.id, shape_router.matching_shapes('items', to_jsonb(i)) = pidx.expected(i.id) AS agrees
FROM items i ORDER BY i.id;

SELECT shape_router.remove_shape(shape_id) FROM clauses;
DROP SCHEMA pidx CASCADE;
RESET search_path;
