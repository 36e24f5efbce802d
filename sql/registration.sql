--
-- registration: add_shape, add_shapes, remove_shape, explain_shape and the
-- shape_router.shapes catalog
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_reg CASCADE;
DROP ROLE IF EXISTS regress_sr_reg_user;
RESET client_min_messages;

CREATE SCHEMA sr_reg;
SET search_path = sr_reg, public;

-- the catalog and the functions have the contract's signatures
SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull
  FROM pg_attribute
 WHERE attrelid = 'shape_router.shapes'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;
SELECT reloptions FROM pg_class WHERE oid = 'shape_router.shapes'::regclass;
SELECT p.proname, pg_get_function_arguments(p.oid) AS args,
       pg_get_function_result(p.oid) AS result
  FROM pg_proc p
 WHERE p.pronamespace = 'shape_router'::regnamespace
 ORDER BY p.proname;
-- PUBLIC may read the catalog, but not write it
SELECT has_table_privilege('public', 'shape_router.shapes', 'SELECT') AS sel,
       has_table_privilege('public', 'shape_router.shapes', 'INSERT') AS ins,
       has_table_privilege('public', 'shape_router.shapes', 'UPDATE') AS upd,
       has_table_privilege('public', 'shape_router.shapes', 'DELETE') AS del,
       has_table_privilege('public', 'shape_router.shapes', 'TRUNCATE') AS trunc;

-- the contract's example
CREATE TABLE todos (
    id bigint PRIMARY KEY,
    user_id int NOT NULL,
    status text,
    title text,
    done_at date
);
ALTER TABLE todos REPLICA IDENTITY FULL;

-- labels for the shapes this test creates, so that no id is printed
CREATE TABLE reg_shapes (label text PRIMARY KEY, id bigint NOT NULL UNIQUE);

INSERT INTO reg_shapes
SELECT 'example', shape_router.add_shape('todos', 'user_id = 42 AND status IN (''open'',''done'')');

SELECT s.relid::regclass, s.where_clause, s.qual IS NOT NULL AS has_qual, s.columns,
       s.owner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS owner_is_me,
       s.created_at IS NOT NULL AS has_created_at
  FROM shape_router.shapes s JOIN reg_shapes r ON r.id = s.shape_id
 WHERE r.label = 'example';

-- a matching and a non-matching row
SELECT shape_router.matching_shapes('todos', '{"id": 1, "user_id": 42, "status": "open", "title": "x"}')
       = ARRAY[(SELECT id FROM reg_shapes WHERE label = 'example')] AS matches;
SELECT shape_router.matching_shapes('todos', '{"id": 1, "user_id": 42, "status": "closed", "title": "x"}') AS no_match;
SELECT shape_router.matching_shapes('todos', '{"id": 1, "user_id": 7, "status": "open"}') AS no_match;

-- without a where clause: every row; the catalog stores NULL
INSERT INTO reg_shapes SELECT 'all', shape_router.add_shape('todos');
INSERT INTO reg_shapes SELECT 'all_null', shape_router.add_shape('todos', NULL);
-- with a column list: stored as attribute numbers (int2[])
INSERT INTO reg_shapes SELECT 'cols', shape_router.add_shape('todos', 'user_id = 7', ARRAY['id', 'title']);
INSERT INTO reg_shapes SELECT 'cols_all_rows', shape_router.add_shape('todos', NULL, '{status,user_id}');
-- a schema-qualified relation, a boolean constant, a normalised clause
INSERT INTO reg_shapes SELECT 'qualified', shape_router.add_shape('sr_reg.todos', 'todos.status = ''open''');
INSERT INTO reg_shapes SELECT 'true', shape_router.add_shape('todos', 'true');
INSERT INTO reg_shapes SELECT 'folded', shape_router.add_shape('todos', 'user_id BETWEEN 1 + 1 AND 2 * 5 AND title LIKE ''a%''');

SELECT r.label, s.relid::regclass, s.where_clause, s.qual IS NOT NULL AS has_qual,
       s.columns, pg_typeof(s.columns) AS columns_type,
       s.owner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS owner_is_me
  FROM shape_router.shapes s JOIN reg_shapes r ON r.id = s.shape_id
 ORDER BY s.shape_id;

-- the columns are stored as the table's attribute numbers
SELECT r.label, array_agg(a.attname ORDER BY a.attnum) AS columns
  FROM shape_router.shapes s JOIN reg_shapes r ON r.id = s.shape_id
  CROSS JOIN LATERAL unnest(s.columns) AS c(attnum)
  JOIN pg_attribute a ON a.attrelid = s.relid AND a.attnum = c.attnum
 GROUP BY r.label ORDER BY r.label;

-- shape ids are ascending, and so is the result of matching_shapes
SELECT bool_and(id > 0) AS positive,
       array_agg(label ORDER BY id) AS in_creation_order
  FROM reg_shapes;
SELECT (SELECT array_agg(label ORDER BY label) FROM reg_shapes WHERE id = ANY(m)) AS matched,
       m = (SELECT array_agg(x ORDER BY x) FROM unnest(m) x) AS ascending
  FROM shape_router.matching_shapes('todos',
       '{"id": 2, "user_id": 42, "status": "open", "title": "abc"}') AS m;
SELECT (SELECT array_agg(label ORDER BY label) FROM reg_shapes WHERE id = ANY(m)) AS matched,
       m = (SELECT array_agg(x ORDER BY x) FROM unnest(m) x) AS ascending
  FROM shape_router.matching_shapes('todos',
       '{"id": 3, "user_id": 7, "status": "done", "title": "zzz"}') AS m;

-- explain_shape returns some text for every shape
SELECT r.label, shape_router.explain_shape(r.id) IS NOT NULL AS explained,
       length(shape_router.explain_shape(r.id)) > 0 AS nonempty
  FROM reg_shapes r ORDER BY r.id;
SELECT shape_router.explain_shape(id) FROM reg_shapes WHERE label = 'example';
SELECT shape_router.explain_shape(id) FROM reg_shapes WHERE label = 'all';
SELECT shape_router.explain_shape(id) FROM reg_shapes WHERE label = 'folded';
SELECT shape_router.explain_shape(NULL) IS NULL AS strict;

-- remove_shape: true once, then false; unknown ids are false
SELECT shape_router.remove_shape(id) AS removed FROM reg_shapes WHERE label = 'true';
SELECT shape_router.remove_shape(id) AS removed_again FROM reg_shapes WHERE label = 'true';
SELECT count(*) AS rows_left FROM shape_router.shapes s JOIN reg_shapes r ON r.id = s.shape_id WHERE r.label = 'true';
SELECT shape_router.remove_shape(-1) AS unknown, shape_router.remove_shape(0) AS zero,
       shape_router.remove_shape(9223372036854775807) AS max;
SELECT shape_router.remove_shape(NULL) IS NULL AS strict;
-- a removed shape no longer matches
SELECT (SELECT array_agg(label ORDER BY label) FROM reg_shapes WHERE id = ANY(m)) AS matched
  FROM shape_router.matching_shapes('todos', '{"id": 2, "user_id": 42, "status": "open", "title": "abc"}') AS m;
DELETE FROM reg_shapes WHERE label = 'true';

-- a removal rolled back leaves the shape
BEGIN;
SELECT shape_router.remove_shape(id) AS removed FROM reg_shapes WHERE label = 'all_null';
ROLLBACK;
SELECT count(*) AS still_there FROM shape_router.shapes s JOIN reg_shapes r ON r.id = s.shape_id WHERE r.label = 'all_null';

-- add_shapes: bulk, in order, all or nothing
CREATE TABLE bulk (id int PRIMARY KEY, x int, s text);
ALTER TABLE bulk REPLICA IDENTITY FULL;
CREATE TABLE bulk_ids (ids bigint[]);
INSERT INTO bulk_ids
SELECT shape_router.add_shapes('bulk', ARRAY['x = 1', 'x = 2', 's = ''a''', 'x > 1 AND s IS NOT NULL']);
SELECT cardinality(ids) AS n,
       ids = (SELECT array_agg(x ORDER BY x) FROM unnest(ids) x) AS ascending
  FROM bulk_ids;
SELECT s.where_clause, s.columns
  FROM bulk_ids b CROSS JOIN LATERAL unnest(b.ids) WITH ORDINALITY AS u(id, n)
  JOIN shape_router.shapes s ON s.shape_id = u.id
 ORDER BY u.n;
SELECT array_agg(n ORDER BY n) AS matched_positions
  FROM bulk_ids b CROSS JOIN LATERAL unnest(b.ids) WITH ORDINALITY AS u(id, n)
 WHERE u.id = ANY(shape_router.matching_shapes('bulk', '{"id": 1, "x": 2, "s": "a"}'));
-- one bad clause: an error, and no rows at all
SELECT count(*) AS before FROM shape_router.shapes WHERE relid = 'bulk'::regclass;
SELECT shape_router.add_shapes('bulk', ARRAY['x = 3', 'x = 4', 'x = = 5', 'x = 6']);
SELECT shape_router.add_shapes('bulk', ARRAY['x = 3', 'no_such_column = 4']);
SELECT shape_router.add_shapes('bulk', ARRAY['x = 3', 'random() > 0.5']);
SELECT count(*) AS after FROM shape_router.shapes WHERE relid = 'bulk'::regclass;
SELECT count(*) AS none_of_the_good_ones FROM shape_router.shapes
 WHERE relid = 'bulk'::regclass AND where_clause IN ('(x = 3)', 'x = 3', '(x = 4)', 'x = 4', '(x = 6)', 'x = 6');
-- an empty array adds nothing
SELECT shape_router.add_shapes('bulk', ARRAY[]::text[]) AS empty;
SELECT count(*) AS after_empty FROM shape_router.shapes WHERE relid = 'bulk'::regclass;
-- add_shape inside a transaction that rolls back leaves nothing
BEGIN;
SELECT shape_router.add_shape('bulk', 'x = 100') > 0 AS added;
ROLLBACK;
SELECT count(*) AS after_rollback FROM shape_router.shapes WHERE relid = 'bulk'::regclass;

-- a non-superuser: registers its own shapes, owner is that role; the
-- catalog is not writable directly
CREATE ROLE regress_sr_reg_user;
GRANT USAGE ON SCHEMA sr_reg TO regress_sr_reg_user;
GRANT SELECT ON todos TO regress_sr_reg_user;
SET ROLE regress_sr_reg_user;
SELECT current_user;
CREATE TEMP TABLE my_shape AS SELECT shape_router.add_shape('todos', 'user_id = 1') AS id;
SELECT s.where_clause,
       s.owner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS owner_is_me,
       s.owner = (SELECT oid FROM pg_roles WHERE rolname = 'regress_sr_reg_user') AS owner_is_role
  FROM shape_router.shapes s JOIN my_shape m ON m.id = s.shape_id;
-- direct writes to the catalog fail with 42501
\set VERBOSITY sqlstate
INSERT INTO shape_router.shapes (relid, where_clause, owner)
VALUES ('todos'::regclass, 'true', (SELECT oid FROM pg_roles WHERE rolname = current_user));
INSERT INTO shape_router.shapes (relid, where_clause, owner) OVERRIDING SYSTEM VALUE
VALUES ('todos'::regclass, 'true', 10);
UPDATE shape_router.shapes SET where_clause = 'true' WHERE shape_id = (SELECT id FROM my_shape);
UPDATE shape_router.shapes SET owner = 10;
DELETE FROM shape_router.shapes WHERE shape_id = (SELECT id FROM my_shape);
DELETE FROM shape_router.shapes;
TRUNCATE shape_router.shapes;
\set VERBOSITY default
-- its own shape, it may remove
SELECT shape_router.remove_shape(id) AS removed FROM my_shape;
DROP TABLE my_shape;
RESET ROLE;
SELECT current_user = session_user AS reset;

-- clean up this test's shapes and objects
SELECT bool_and(shape_router.remove_shape(id)) AS removed_all FROM reg_shapes;
SELECT bool_and(shape_router.remove_shape(u.id)) AS removed_bulk FROM bulk_ids, unnest(ids) AS u(id);
SELECT count(*) AS left_over FROM shape_router.shapes
 WHERE relid IN ('todos'::regclass, 'bulk'::regclass);
SET client_min_messages = warning;
DROP SCHEMA sr_reg CASCADE;
DROP ROLE regress_sr_reg_user;
RESET client_min_messages;
RESET search_path;
