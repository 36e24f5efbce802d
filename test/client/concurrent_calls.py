"""Calls of CALL shape_router.add_shape_concurrently() side by side never
remove each other's shapes (docs/concurrent.md).

A finished call lets its session lock go a moment after its shape stops
being pending; another call's clean-up of abandoned shapes must not take
that for a session that died.  4 sessions x 150 calls on a 20,000-row
REPLICA IDENTITY DEFAULT table with a slot: every id a call returned must
be in the catalog, not pending, and no call may fail or report a removed
shape.  (Before the fix, about 1 in 10 was removed, with a NOTICE, and a
call now and then failed with "tuple concurrently deleted".)

Run inside a throwaway cluster: sr_virtualenv python3 test/client/concurrent_calls.py
"""
import collections
import re
import sys
import threading

import psycopg2

SESSIONS, CALLS = 4, 150


def main():
    c = psycopg2.connect("")
    c.autocommit = True
    cur = c.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS shape_router")
    cur.execute("DROP TABLE IF EXISTS cc_t")
    cur.execute("CREATE TABLE cc_t (id bigint PRIMARY KEY, v int NOT NULL)")
    cur.execute("INSERT INTO cc_t SELECT g, g % 400 FROM generate_series(1, 20000) g")
    cur.execute("CREATE INDEX ON cc_t (v)")
    cur.execute("SELECT pg_create_logical_replication_slot('cc_slot', 'shape_router')")
    returned, errors, notices = [], [], []
    lock = threading.Lock()

    def worker(k):
        conn = psycopg2.connect("")
        conn.autocommit = True
        cu = conn.cursor()
        for i in range(CALLS):
            try:
                cu.execute("CALL shape_router.add_shape_concurrently('cc_t', %s)",
                           ("v = %d" % ((k * CALLS + i) % 400),))
                with lock:
                    returned.append(cu.fetchone()[0])
            except psycopg2.Error as e:
                with lock:
                    errors.append(str(e).strip().splitlines()[0])
            with lock:
                notices.extend(n.strip() for n in conn.notices)
                del conn.notices[:]
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cur.execute("SELECT shape_id FROM shape_router.shapes"
                " WHERE relid = 'cc_t'::regclass AND NOT pending")
    present = {r[0] for r in cur.fetchall()}
    removed = [n for n in notices if re.search(r"removed shape \d+", n)]
    lost = sorted(set(returned) - present)
    cur.execute("SELECT pg_drop_replication_slot('cc_slot')")
    print("concurrent_calls: calls=%d returned=%d errors=%d %s lost=%d %s removed_notices=%d"
          % (SESSIONS * CALLS, len(returned), len(errors),
             dict(collections.Counter(errors)), len(lost), lost[:10], len(removed)))
    ok = len(returned) == SESSIONS * CALLS and not errors and not lost and not removed
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
