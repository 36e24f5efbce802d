--
-- concurrent: CALL shape_router.add_shape_concurrently() (docs/concurrent.md)
-- in one session; the isolation spec concurrent_add has the writers.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS shape_router;
DROP SCHEMA IF EXISTS sr_conc CASCADE;
RESET client_min_messages;
CREATE SCHEMA sr_conc;
SET search_path = sr_conc, public;
CREATE TABLE id_base AS
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base
    FROM shape_router.shapes_shape_id_seq;
\i sql/include/show.sql
-- the shape id a CALL returned, relative
CREATE FUNCTION rel(id bigint) RETURNS bigint LANGUAGE sql
  AS $$ SELECT id - base FROM id_base $$;

SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_concurrent', 'shape_router');

CREATE TABLE todos (id bigint PRIMARY KEY, user_id int, title text);
INSERT INTO todos VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 2, 'c');
CREATE TABLE full_todos (id bigint PRIMARY KEY, user_id int);
ALTER TABLE full_todos REPLICA IDENTITY FULL;
INSERT INTO full_todos VALUES (1, 1), (2, 2);

-- the shape starts at the call's second commit, with the rows that
-- predate it as members
CALL shape_router.add_shape_concurrently('todos', 'user_id = 1', ARRAY['title'], NULL) \gset
SELECT rel(:shape_id) AS shape;
SELECT rel(shape_id), where_clause, pending FROM shape_router.shapes
 WHERE relid = 'todos'::regclass ORDER BY 1;
UPDATE todos SET user_id = 2 WHERE id = 1;
UPDATE todos SET user_id = 1 WHERE id = 3;
DELETE FROM todos WHERE id = 2;
-- FULL: registered routing at once (one commit), no members
CALL shape_router.add_shape_concurrently('full_todos', 'user_id = 1') \gset
SELECT rel(:shape_id) AS shape;
UPDATE full_todos SET user_id = 1 WHERE id = 2;
DELETE FROM full_todos WHERE id = 1;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_concurrent', NULL, NULL);

-- it commits between its steps: not inside a transaction block
BEGIN;
CALL shape_router.add_shape_concurrently('todos', 'user_id = 3');
ROLLBACK;
BEGIN;
DO $$ DECLARE id bigint;
  BEGIN CALL shape_router.add_shape_concurrently('todos', 'user_id = 3', NULL, id); END $$;
ROLLBACK;
-- nor in a function (a procedure called from one cannot commit)
CREATE FUNCTION in_function() RETURNS bigint LANGUAGE plpgsql
  AS $$ DECLARE id bigint;
  BEGIN CALL shape_router.add_shape_concurrently('todos', 'user_id = 3', NULL, id); RETURN id; END $$;
SELECT in_function();
-- a DO block outside one may (PL/pgSQL's CALL with a variable)
DO $$ DECLARE id bigint;
  BEGIN
    CALL shape_router.add_shape_concurrently('todos', 'user_id = 3', NULL, id);
    PERFORM shape_router.remove_shape(id);
  END $$;
-- what add_shape refuses, it refuses before registering anything
CALL shape_router.add_shape_concurrently(NULL, 'user_id = 3');
CALL shape_router.add_shape_concurrently('todos', 'nosuch = 3');
CALL shape_router.add_shape_concurrently('todos', 'user_id = random()');
CREATE TABLE no_key (a int);
CALL shape_router.add_shape_concurrently('no_key', 'a = 1');
CREATE ROLE regress_sr_conc_nosel;
GRANT USAGE ON SCHEMA sr_conc TO regress_sr_conc_nosel;
SET ROLE regress_sr_conc_nosel;
CALL shape_router.add_shape_concurrently('todos', 'user_id = 3');
RESET ROLE;

-- the search raises on an existing row: the error, and the shape that was
-- registered is removed again (S removed with the reason)
INSERT INTO todos VALUES (9, 0, 'zero');
\set VERBOSITY terse
CALL shape_router.add_shape_concurrently('todos', '10 / user_id > 1');
\set VERBOSITY default
SELECT count(*) AS pending_left FROM shape_router.shapes WHERE pending;
DELETE FROM todos WHERE id = 9;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_concurrent', NULL, NULL);

--
-- A shape left pending by a session that died (here: a row written by
-- hand, whose session lock nobody holds).  Streams track it and write
-- nothing for it; the next call removes it, with a NOTICE (not shown:
-- it names the absolute id) and S removed.  Each session looks for such
-- shapes at most once a second.
--
INSERT INTO shape_router.shapes (relid, where_clause, owner, pending)
  VALUES ('todos'::regclass, NULL, 10, true);
INSERT INTO todos VALUES (20, 5, 'tracked');
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_concurrent', NULL, NULL);
-- (a session looks at most once a second: a new one)
\c
SET search_path = sr_conc, public;
SET client_min_messages = warning;
CALL shape_router.add_shape_concurrently('todos', 'user_id = 5', NULL, NULL) \gset
RESET client_min_messages;
SELECT rel(:shape_id) AS shape;
SELECT rel(shape_id), pending FROM shape_router.shapes
 WHERE relid = 'todos'::regclass ORDER BY 1;
UPDATE todos SET title = 'moved' WHERE id = 20;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_concurrent', NULL, NULL);

--
-- A stream that did not see the registration (its slot came after it)
-- has no members for the shape when it starts: S added, then S unsynced;
-- resync_shapes() refuses a pending shape, and syncs it once started.
--
INSERT INTO shape_router.shapes (relid, where_clause, qual, owner, pending)
  SELECT relid, where_clause, qual, owner, true FROM shape_router.shapes
   WHERE relid = 'todos'::regclass AND where_clause = '(user_id = 5)';
SELECT 'init' FROM pg_create_logical_replication_slot('regression_slot_concurrent_late', 'shape_router');
-- (the error names the absolute id: its SQLSTATE)
DO $$ BEGIN
  PERFORM shape_router.resync_shapes(ARRAY[(SELECT max(shape_id) FROM shape_router.shapes)]);
EXCEPTION WHEN object_not_in_prerequisite_state THEN
  RAISE NOTICE 'refused: %', SQLSTATE;
END $$;
SELECT shape_router.resync_shapes(ARRAY(SELECT shape_id FROM shape_router.shapes
                                         WHERE relid = 'todos'::regclass AND NOT pending)) AS resynced;
UPDATE shape_router.shapes SET pending = false
 WHERE shape_id = (SELECT max(shape_id) FROM shape_router.shapes);
UPDATE todos SET title = 'moved again' WHERE id = 20;
SELECT shape_router.resync_shapes(ARRAY[(SELECT max(shape_id) FROM shape_router.shapes)]);
UPDATE todos SET title = 'synced' WHERE id = 20;
SET sr_regress.hide_reason = on;
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_concurrent_late', NULL, NULL);
RESET sr_regress.hide_reason;
-- the first slot saw the registration, but a start by hand sends no
-- members: unsynced there too
SELECT show(data) FROM pg_logical_slot_get_changes('regression_slot_concurrent', NULL, NULL);

SELECT 'stop' FROM pg_drop_replication_slot('regression_slot_concurrent');
SELECT 'stop' FROM pg_drop_replication_slot('regression_slot_concurrent_late');
REVOKE USAGE ON SCHEMA sr_conc FROM regress_sr_conc_nosel;
DROP ROLE regress_sr_conc_nosel;
