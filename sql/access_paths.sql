--
-- access_paths: a shape's access path is chosen by estimated cost, never by
-- the position of its conjuncts (design.md section 3).  The cost is the
-- conjunct's selectivity (statistics if the table has them, else a fixed
-- ranking by operator) times one plus the shapes already under the key.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_ap CASCADE;
RESET client_min_messages;
CREATE SCHEMA sr_ap;
SET search_path = sr_ap, public;

CREATE TABLE todos (id int PRIMARY KEY, user_id int, status text,
                    priority int, done bool);
ALTER TABLE todos REPLICA IDENTITY FULL;
CREATE FUNCTION access(id bigint) RETURNS text LANGUAGE sql AS
  $$ SELECT split_part(shape_router.explain_shape(id), E'\n', 1) $$;

-- Without statistics: equal estimates, so the index's load decides.  The
-- first shape's two paths tie (broken by the keys' fingerprints, not by
-- position); from the second on, "status = 'open'" is crowded and user_id
-- is chosen.  todos2 gets the same shapes with the conjuncts reversed:
-- shape for shape, the same access path.
CREATE TABLE todos2 (LIKE todos INCLUDING ALL);
ALTER TABLE todos2 REPLICA IDENTITY FULL;
CREATE TABLE s (k int, fwd bigint, rev bigint);
INSERT INTO s
  SELECT k, shape_router.add_shape('todos', format('status = ''open'' AND user_id = %s', k)),
            shape_router.add_shape('todos2', format('user_id = %s AND status = ''open''', k))
    FROM generate_series(1, 40) k;
SELECT count(*) AS pairs, count(*) FILTER (WHERE access(fwd) = access(rev)) AS same_path
  FROM s;
SELECT access(fwd) AS path, count(*) FROM s GROUP BY 1 ORDER BY 1;
SELECT regexp_replace(shape_router.explain_shape(fwd), 'cost [0-9.e-]+', 'cost C', 'g')
  FROM s WHERE k = 40;

-- A crowded key makes later shapes choose their other conjunct: 20 shapes
-- on "done" alone crowd it, so "done AND priority = k" goes to priority
CREATE TABLE crowd AS
  SELECT shape_router.add_shape('todos', 'done') AS id FROM generate_series(1, 20);
SELECT access(shape_router.add_shape('todos', 'done AND priority = 3'));
SELECT access(shape_router.add_shape('todos', 'priority = 4 AND done'));

-- A shape filed early under a key that later becomes crowded moves to its
-- other conjunct: "status = 'late'" is the first shape's key (a tie), then
-- 20 shapes on "status = 'late'" alone crowd it; when its posting list
-- reaches 16, its oldest shapes are looked at again
CREATE TABLE early AS
  SELECT shape_router.add_shape('todos', 'status = ''late'' AND user_id = 1000') AS id;
SELECT access(id) AS before FROM early;
SELECT count(shape_router.add_shape('todos', 'status = ''late''')) FROM generate_series(1, 20);
SELECT access(id) AS after FROM early;

-- Ranges in both orders
SELECT access(shape_router.add_shape('todos', 'priority > 3 AND user_id < 100')) AS fwd,
       access(shape_router.add_shape('todos', 'user_id < 100 AND priority > 3')) AS rev;

-- With statistics: ANALYZE shows 'open' is a third of the rows and user_id
-- nearly unique; a new stream (here: a new router, after the relcache
-- invalidation ANALYZE sends) files every shape under user_id, whatever
-- was crowded first
INSERT INTO todos
  SELECT i, i, (ARRAY['open', 'done', 'archived'])[1 + i % 3], i % 7, i % 2 = 0
    FROM generate_series(1, 3000) i;
ANALYZE todos;
SELECT access(shape_router.add_shape('todos', 'status = ''open'' AND user_id = 77')) AS stats_fwd,
       access(shape_router.add_shape('todos', 'user_id = 77 AND status = ''open''')) AS stats_rev;
SELECT regexp_replace(regexp_replace(shape_router.explain_shape(
         shape_router.add_shape('todos', 'status = ''open'' AND user_id = 78')),
         'selectivity [0-9.e-]+', 'selectivity S', 'g'), 'cost [0-9.e-]+', 'cost C', 'g');
-- a wide range against a narrow one, by the histogram
SELECT access(shape_router.add_shape('todos', 'priority > 0 AND user_id < 50')) AS fwd,
       access(shape_router.add_shape('todos', 'user_id < 50 AND priority > 0')) AS rev;
-- IS NOT NULL (every row) against a bounded range
SELECT access(shape_router.add_shape('todos', 'status IS NOT NULL AND user_id BETWEEN 5 AND 9'));

-- the answers never depend on the path
SELECT count(*) FILTER (WHERE shape_router.matching_shapes('todos', to_jsonb(t)) IS NULL) AS null_answers,
       count(*) AS rows
  FROM todos t;
SELECT bool_and(
         (SELECT array_agg(id ORDER BY id) FROM unnest(shape_router.matching_shapes('todos', to_jsonb(t))) id
           WHERE id IN (SELECT fwd FROM s)) IS NOT DISTINCT FROM
         (SELECT array_agg(fwd ORDER BY fwd) FROM s WHERE t.status = 'open' AND t.user_id = s.k))
       AS same_answers
  FROM todos t;

-- cleanup
SELECT count(*) FILTER (WHERE NOT shape_router.remove_shape(shape_id)) AS not_removed
  FROM shape_router.shapes;
SET client_min_messages = warning;
DROP SCHEMA sr_ap CASCADE;
