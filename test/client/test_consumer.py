#!/usr/bin/python3
"""Stream, acknowledge, disconnect, resume: a real replication client loses
and repeats nothing.  Runs against the cluster in the libpq environment."""
import sys
import time

import psycopg2

sys.path.insert(0, __import__('os').path.dirname(__file__))
from consumer import stream  # noqa: E402

SLOT = 'consumer_test'


def sql(conn, q, *args):
    with conn.cursor() as cur:
        cur.execute(q, args)
        return cur.fetchall() if cur.description else None


def main():
    conn = psycopg2.connect('')
    conn.autocommit = True
    sql(conn, 'CREATE EXTENSION IF NOT EXISTS shape_router')
    sql(conn, 'DROP TABLE IF EXISTS consumer_t')
    sql(conn, 'CREATE TABLE consumer_t (id int PRIMARY KEY, user_id int)')
    sql(conn, 'ALTER TABLE consumer_t REPLICA IDENTITY FULL')
    sql(conn, "SELECT pg_create_logical_replication_slot(%s, 'shape_router')", SLOT)
    shape = sql(conn, "SELECT shape_router.add_shape('consumer_t', 'user_id = 42')")[0][0]

    for i in range(1, 11):
        sql(conn, 'INSERT INTO consumer_t VALUES (%s, 42), (%s, 7)', i, 1000 + i)

    seen = []

    def collect(record):
        if record['action'] == 'I':
            assert record['shapes'] == [shape], record
            seen.append(record['new']['id'])

    # First session: five transactions (the shape's S record is the first).
    stream('', SLOT, {'include-xid': '1'}, collect, stop_after_commits=6)
    first = list(seen)
    # Wait until the server has recorded the acknowledgement.
    for _ in range(50):
        lsn = sql(conn, 'SELECT confirmed_flush_lsn FROM pg_replication_slots '
                  'WHERE slot_name = %s', SLOT)[0][0]
        if lsn is not None:
            break
        time.sleep(0.1)

    for i in range(11, 16):
        sql(conn, 'INSERT INTO consumer_t VALUES (%s, 42), (%s, 7)', i, 1000 + i)

    # Second session resumes after the last acknowledged transaction.
    stream('', SLOT, {}, collect, idle_exit=2)
    second = seen[len(first):]

    ok = first == list(range(1, 6)) and second == list(range(6, 16))
    print('consumer: first session %s, second session %s: %s'
          % (first, second, 'ok' if ok else 'FAILED'))
    # The walsender of the last session may still be exiting.
    for _ in range(100):
        if not sql(conn, 'SELECT active FROM pg_replication_slots '
                   'WHERE slot_name = %s', SLOT)[0][0]:
            break
        time.sleep(0.1)
    sql(conn, 'SELECT pg_drop_replication_slot(%s)', SLOT)
    sql(conn, 'DROP TABLE consumer_t')
    sql(conn, 'SELECT shape_router.remove_shape(%s)', shape)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
