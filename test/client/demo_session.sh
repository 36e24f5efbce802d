#!/usr/bin/env bash
# The demo's session, run by ../../demo.sh inside a throwaway cluster
# (libpq environment set): shapes, then DML, one statement at a time, each
# followed by the records the Python consumer streamed for it.
#
# The consumer (consumer.py) streams the whole time into a file and
# acknowledges what it has printed.  After each statement the session waits
# until the slot's confirmed position has reached the WAL position the
# statement ended at, so every record of that statement is in the file, and
# shows the new lines under the statement.  SR_DEMO_TIMEOUT (seconds, default
# 30) bounds each wait: a stuck consumer fails the demo with a message.
set -euo pipefail
here=$(dirname "$0")
timeout_s=${SR_DEMO_TIMEOUT:-30}
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
val() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

work=$(mktemp -d /tmp/sr_demo.XXXXXX)
consumer=
cleanup() {
	if [ -n "$consumer" ]; then
		kill "$consumer" 2>/dev/null || true
		wait "$consumer" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "== a table todos with one row (id 10) from before the shapes, and a slot 'demo' with plugin shape_router"
q <<'SQL'
CREATE EXTENSION shape_router;
-- the default replica identity (the primary key): no ALTER TABLE needed
CREATE TABLE todos (id int PRIMARY KEY, user_id int, status text, title text);
-- a row from before the shapes: add_shape finds it (its initial members)
INSERT INTO todos VALUES (10, 42, 'open', 'file report');
SELECT FROM pg_create_logical_replication_slot('demo', 'shape_router') \g /dev/null
SQL

echo "== streaming slot 'demo' through test/client/consumer.py (psycopg2 LogicalReplicationConnection)"
echo "   each statement below is followed by the records the consumer received for it (stream>)"
/usr/bin/python3 "$here/consumer.py" --slot demo >"$work/stream" 2>"$work/consumer.err" &
consumer=$!
shown=0    # lines of $work/stream shown so far

# Wait until the consumer has acknowledged WAL position $1 (it acknowledges a
# transaction after printing its records, and the position of the server's
# keepalives between transactions, so transactions without records count).
wait_acked() {
	local target=$1 deadline=$((SECONDS + timeout_s))
	until [ "$(val "SELECT confirmed_flush_lsn >= '$target' FROM pg_replication_slots WHERE slot_name = 'demo'")" = t ]; do
		if ! kill -0 "$consumer" 2>/dev/null; then
			echo "demo: the consumer exited; its errors:" >&2
			cat "$work/consumer.err" >&2
			exit 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "demo: after ${timeout_s}s the consumer has acknowledged only" \
				"$(val "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'demo'")," \
				"not $target; giving up (SR_DEMO_TIMEOUT sets the wait)" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# step LABEL SQL: the label, the statement and its result, then the records
# the consumer streamed for it.
step() {
	local n
	echo "-- $1"
	echo "   sql> $2"
	psql -X -v ON_ERROR_STOP=1 -P footer=off -c "$2" | sed '/^$/d; s/^/   /'
	wait_acked "$(val 'SELECT pg_current_wal_lsn()')"
	n=$(wc -l <"$work/stream")
	if [ "$n" -eq "$shown" ]; then
		echo "   (no records)"
	else
		sed -n "$((shown + 1)),${n}p" "$work/stream" | sed 's/^/   stream> /'
	fi
	shown=$n
}

echo "== registering shapes (each add_shape commits an S added record)"
step "add shape 1: user 42's todos that are open or done" \
	"SELECT shape_router.add_shape('todos', 'user_id = 42 AND status IN (''open'', ''done'')') AS shape_1;"
step "add shape 2: user 7's todos" \
	"SELECT shape_router.add_shape('todos', 'user_id = 7') AS shape_2;"
step "add shape 3: urgent todos, carrying only the title (and the key)" \
	"SELECT shape_router.add_shape('todos', 'title ILIKE ''%urgent%''', ARRAY['title']) AS shape_3;"

echo "== the shapes, as shape_router.shapes stores them (columns: the projected ones, by name)"
q <<'SQL'
SELECT s.shape_id, s.relid::regclass AS "table", s.where_clause,
       CASE WHEN s.columns IS NULL THEN 'all'
            ELSE coalesce((SELECT array_agg(a.attname ORDER BY a.attnum)
                             FROM pg_attribute a
                            WHERE a.attrelid = s.relid AND a.attnum = ANY (s.columns))::text,
                          '{}') END AS columns
  FROM shape_router.shapes s ORDER BY s.shape_id;
SELECT shape_router.matching_shapes('todos', '{"id": 1, "user_id": 42, "status": "open"}') AS "a row for user 42 matches";
SQL

echo "== DML, one statement (one transaction) at a time"
step "INSERT four todos: user 42's (shape 1), user 7's (shape 2), an urgent one (shape 3), one for nobody" \
	"INSERT INTO todos VALUES (1, 42, 'open', 'buy milk'), (2, 7, 'open', 'walk'), (3, 9, 'open', 'URGENT taxes'), (4, 9, 'open', 'nobody');"
step "UPDATE todo 1 to done: it stays in shape 1 (U)" \
	"UPDATE todos SET status = 'done' WHERE id = 1;"
step "UPDATE todo 1 to archived: it leaves shape 1 (D, move out)" \
	"UPDATE todos SET status = 'archived' WHERE id = 1;"
step "UPDATE todo 4 to user 7: it enters shape 2 (I, move in)" \
	"UPDATE todos SET user_id = 7 WHERE id = 4;"
step "INSERT 10001 todos of other users in one transaction: it matches no shape (no records, not even B/C)" \
	"INSERT INTO todos SELECT g, 1000 + g, 'open', 'bulk' FROM generate_series(100, 10100) g;"
step "DELETE todo 2: D to shape 2" \
	"DELETE FROM todos WHERE id = 2;"
step "DELETE todo 10, which predates the shapes: D to shape 1 (add_shape found it among the initial members)" \
	"DELETE FROM todos WHERE id = 10;"
step "remove shape 3 mid-stream (S removed)" \
	"SELECT shape_router.remove_shape(3);"
step "TRUNCATE todos: T to the shapes left on the table (1 and 2)" \
	"TRUNCATE todos;"
echo "== done"
