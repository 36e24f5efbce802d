#!/usr/bin/env bash
# The demo's session, run by ../../demo.sh inside a throwaway cluster
# (libpq environment set): shapes, DML, and the routed records streaming
# through the Python consumer.
set -euo pipefail
here=$(dirname "$0")
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

q <<'SQL'
CREATE EXTENSION shape_router;
-- the default replica identity (the primary key): no ALTER TABLE needed
CREATE TABLE todos (id int PRIMARY KEY, user_id int, status text, title text);
-- a row from before the shapes: add_shape finds it (its initial members)
INSERT INTO todos VALUES (10, 42, 'open', 'file report');
SELECT 'slot created' FROM pg_create_logical_replication_slot('demo', 'shape_router');
\echo == registering shapes
SELECT shape_router.add_shape('todos', 'user_id = 42 AND status IN (''open'', ''done'')') AS shape_1;
SELECT shape_router.add_shape('todos', 'user_id = 7') AS shape_2;
SELECT shape_router.add_shape('todos', 'title ILIKE ''%urgent%''', ARRAY['title']) AS shape_3;
SELECT shape_id, where_clause, columns FROM shape_router.shapes ORDER BY shape_id;
SELECT shape_router.matching_shapes('todos', '{"id": 1, "user_id": 42, "status": "open"}') AS "a row for user 42 matches";
SQL

echo "== streaming slot 'demo' through test/client/consumer.py (psycopg2 LogicalReplicationConnection)"
/usr/bin/python3 "$here/consumer.py" --slot demo --idle-exit 3 | sed 's/^/   stream> /' &
consumer=$!
sleep 1

echo "== DML"
q <<'SQL'
\echo INSERT three todos (one per shape, one for nobody)
INSERT INTO todos VALUES (1, 42, 'open', 'buy milk'), (2, 7, 'open', 'walk'), (3, 9, 'open', 'URGENT taxes'), (4, 9, 'open', 'nobody');
\echo UPDATE todo 1 to done (stays in shape 1: U)
UPDATE todos SET status = 'done' WHERE id = 1;
\echo UPDATE todo 1 to archived (leaves shape 1: D move-out)
UPDATE todos SET status = 'archived' WHERE id = 1;
\echo UPDATE todo 4 to user 7 (enters shape 2: I move-in)
UPDATE todos SET user_id = 7 WHERE id = 4;
\echo a transaction that matches no shape (no records, not even B/C)
INSERT INTO todos SELECT g, 1000 + g, 'open', 'bulk' FROM generate_series(100, 10100) g;
\echo DELETE todo 2
DELETE FROM todos WHERE id = 2;
\echo DELETE todo 10, which predates the shapes (D to shape 1, from its initial members)
DELETE FROM todos WHERE id = 10;
\echo remove shape 3 mid-stream, then TRUNCATE
SELECT shape_router.remove_shape(3);
TRUNCATE todos;
SQL
wait "$consumer"
echo "== done"
