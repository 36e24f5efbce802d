#!/usr/bin/env bash
# The demo, from a fresh Debian machine: installs what is missing, builds,
# starts a throwaway PostgreSQL with wal_level=logical, registers shapes and
# shows which shapes rows go to.
set -euo pipefail
cd "$(dirname "$0")"
. test/lib.sh

sr_install_packages
sr_build_install

echo "== starting a throwaway cluster"
sr_virtualenv bash -c '
set -e
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION shape_router;
CREATE TABLE todos (id int PRIMARY KEY, user_id int, status text, title text);
ALTER TABLE todos REPLICA IDENTITY FULL;
\echo
\echo == registering shapes
SELECT shape_router.add_shape('"'"'todos'"'"', '"'"'user_id = 42 AND status IN ('"''"'open'"''"', '"''"'done'"''"')'"'"') AS shape_a;
SELECT shape_router.add_shape('"'"'todos'"'"', '"'"'user_id = 7'"'"') AS shape_b;
SELECT shape_router.add_shape('"'"'todos'"'"', '"'"'title ILIKE '"''"'%urgent%'"''"''"'"', ARRAY['"'"'title'"'"']) AS shape_c;
SELECT shape_id, where_clause, columns FROM shape_router.shapes ORDER BY shape_id;
\echo == which shapes does each row go to?
SELECT r AS "row", shape_router.matching_shapes('"'"'todos'"'"', r) AS shapes
FROM (VALUES
  ('"'"'{"id": 1, "user_id": 42, "status": "open", "title": "buy milk"}'"'"'::jsonb),
  ('"'"'{"id": 2, "user_id": 42, "status": "archived", "title": "URGENT: taxes"}'"'"'),
  ('"'"'{"id": 3, "user_id": 7, "status": "open", "title": "walk"}'"'"'),
  ('"'"'{"id": 4, "user_id": 9, "status": null, "title": null}'"'"')) v(r);
\echo == how shape 1 is evaluated
SELECT shape_router.explain_shape(1);
SQL
'
