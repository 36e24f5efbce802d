--
-- decoding_churn: the plugin's predicate index maintained one shape at a
-- time under churn.  Thousands of equality, range and ILIKE shapes are
-- added, most of them removed, and new ones added, while one stream decodes
-- all of it; hash tables fill with tombstones and are rehashed, the range
-- treap loses most of its nodes, freed program chunks are reused.  The
-- records of the rows inserted at the end must list exactly the shapes
-- whose WHERE clause PostgreSQL finds true for the row.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_churn CASCADE;
RESET client_min_messages;
CREATE SCHEMA sr_churn;
SET search_path = sr_churn, public;

CREATE TABLE t (id int PRIMARY KEY, n int, s text);
ALTER TABLE t REPLICA IDENTITY FULL;

SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_churn', 'shape_router');

-- 2,000 equality, 300 range and 200 ILIKE shapes
SELECT count(*) AS added FROM unnest(shape_router.add_shapes('t',
  ARRAY(SELECT format('n = %s', k) FROM generate_series(1, 2000) k))) AS a;
SELECT count(*) AS added FROM unnest(shape_router.add_shapes('t',
  ARRAY(SELECT format('n BETWEEN %s AND %s', k * 7, k * 7 + 20)
          FROM generate_series(0, 299) k))) AS a;
SELECT count(*) AS added FROM unnest(shape_router.add_shapes('t',
  ARRAY(SELECT format('s ILIKE %L', '%w' || k || 'z%')
          FROM generate_series(0, 199) k))) AS a;
-- and 600 on one value: one posting list, long enough to be a bitmap
SELECT count(*) AS added FROM unnest(shape_router.add_shapes('t',
  ARRAY(SELECT format('n = 7 AND id > %s', 1000 + k)
          FROM generate_series(1, 600) k))) AS a;
INSERT INTO t SELECT g, g, 'aW' || (g % 200) || 'Zb' FROM generate_series(1, 100) g;

-- remove three quarters of each kind, one transaction per hundred shapes
DO $$
DECLARE
	ids bigint[];
BEGIN
	-- by rank, not by id: ids go on from earlier test files
	SELECT array_agg(shape_id ORDER BY shape_id) INTO ids
	  FROM (SELECT shape_id, row_number() OVER (ORDER BY shape_id) AS rank
			  FROM shape_router.shapes
			 WHERE relid = 'sr_churn.t'::regclass) s
	 WHERE rank % 4 <> 0;
	FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
		PERFORM shape_router.remove_shape(ids[i]);
		IF i % 100 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
END $$;
INSERT INTO t SELECT g, g, 'aw' || (g % 200) || 'zb' FROM generate_series(101, 200) g;

-- 1,500 new equality shapes (some of them on values still taken), 100
-- ranges, 50 ILIKE
SELECT count(*) AS added FROM unnest(shape_router.add_shapes('t',
  ARRAY(SELECT format('n = %s', k) FROM generate_series(1500, 2999) k))) AS a;
SELECT count(*) AS added FROM unnest(shape_router.add_shapes('t',
  ARRAY(SELECT format('n >= %s AND n < %s', k * 13, k * 13 + 30)
          FROM generate_series(0, 99) k))) AS a;
SELECT count(*) AS added FROM unnest(shape_router.add_shapes('t',
  ARRAY(SELECT format('s ILIKE %L', '%w' || k || 'z%')
          FROM generate_series(150, 199) k))) AS a;

-- the rows whose records are checked
INSERT INTO t
SELECT g, CASE WHEN g % 3 = 0 THEN g - 1000 ELSE (g * 37) % 3200 END,
	   CASE WHEN g % 2 = 0 THEN 'xW' || (g % 230) || 'zY' ELSE 'plain' END
  FROM generate_series(1001, 1600) g;
INSERT INTO t SELECT g, 7, 'seven' FROM generate_series(1601, 1700) g;

CREATE TABLE decoded AS
SELECT data::jsonb AS r
  FROM pg_logical_slot_get_changes('regression_slot_churn', NULL, NULL);

-- PostgreSQL's answer: each remaining shape's clause run on the last rows
CREATE TABLE oracle (shape_id bigint, id int);
DO $$
DECLARE
	sh record;
BEGIN
	FOR sh IN SELECT shape_id, where_clause FROM shape_router.shapes
			   WHERE relid = 'sr_churn.t'::regclass LOOP
		EXECUTE format('INSERT INTO sr_churn.oracle SELECT %s, id FROM sr_churn.t '
					   'WHERE id > 1000 AND (%s)', sh.shape_id, sh.where_clause);
	END LOOP;
END $$;

-- every inserted row of the last batch, with the shapes its record lists
-- (none if it has no record) and the shapes PostgreSQL says it is in
WITH got AS (
	SELECT (r -> 'new' ->> 'id')::int AS id,
		   ARRAY(SELECT jsonb_array_elements_text(r -> 'shapes')::bigint
				  ORDER BY 1) AS shapes
	  FROM decoded
	 WHERE r ->> 'action' = 'I' AND (r -> 'new' ->> 'id')::int > 1000
),
want AS (
	SELECT t.id, ARRAY(SELECT o.shape_id FROM oracle o WHERE o.id = t.id
						ORDER BY 1) AS shapes
	  FROM t WHERE t.id > 1000
)
SELECT count(*) AS rows_checked,
	   count(*) FILTER (WHERE cardinality(w.shapes) > 0) AS rows_in_some_shape,
	   sum(cardinality(w.shapes)) AS routes,
	   count(*) FILTER (WHERE coalesce(g.shapes, '{}') IS DISTINCT FROM w.shapes)
		 AS mismatches
  FROM want w LEFT JOIN got g USING (id);

-- and no record names a removed shape
SELECT count(*) AS records_naming_removed_shapes
  FROM decoded d,
	   LATERAL jsonb_array_elements_text(d.r -> 'shapes') AS e(id)
 WHERE d.r ->> 'action' IN ('I', 'U', 'D')
   AND (d.r -> 'new' ->> 'id')::int > 1000
   AND NOT EXISTS (SELECT 1 FROM shape_router.shapes s
					WHERE s.shape_id = e.id::bigint);

SELECT pg_drop_replication_slot('regression_slot_churn');
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(shape_id)) AS not_removed
  FROM shape_router.shapes WHERE relid = 'sr_churn.t'::regclass;
SET client_min_messages = warning;
DROP SCHEMA sr_churn CASCADE;
