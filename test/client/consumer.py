#!/usr/bin/python3
"""A shape_router replication client on psycopg2's LogicalReplicationConnection.

Streams the records of a logical slot that uses the shape_router plugin,
prints them (or hands them to a callback), and acknowledges each transaction
once its C record has been handled, so a restarted client resumes right after
the last transaction it finished.  Between transactions it also acknowledges
the position of the server's keepalives, so the slot moves on over
transactions that route to no shape.

    consumer.py --slot shapes [--option include-old=1 ...] [--idle-exit 5]
"""
import argparse
import json
import select
import sys
import time

import psycopg2
import psycopg2.extras


def stream(dsn, slot, options=None, on_record=print, idle_exit=None,
           stop_after_commits=None):
    """Stream records until idle for idle_exit seconds or enough commits.

    Returns the number of transactions acknowledged.
    """
    options = dict(options or {})
    transactional = options.get('include-transaction', 'true').lower() not in (
        '0', 'false', 'off', 'no')
    conn = psycopg2.connect(
        dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    cur = conn.cursor()
    cur.start_replication(slot_name=slot, decode=True, options=options)
    commits = 0
    acked = 0
    in_txn = False
    last = time.monotonic()
    try:
        while True:
            msg = cur.read_message()
            if msg is None:
                # Between transactions, everything the server sent before its
                # last keepalive (whose position is cur.wal_end) has been
                # handled: acknowledge that position too, so that the slot
                # moves on over transactions that route to no shape (they
                # send nothing) instead of keeping their WAL.
                if not in_txn and cur.wal_end > acked:
                    acked = cur.wal_end
                    cur.send_feedback(flush_lsn=acked, force=True)
                if idle_exit is not None and time.monotonic() - last > idle_exit:
                    break
                select.select([cur], [], [], 0.2)
                continue
            last = time.monotonic()
            record = json.loads(msg.payload)
            in_txn = transactional and record['action'] != 'C'
            on_record(record)
            # Acknowledge whole transactions only: the server resends from
            # the last acknowledged commit after a reconnect.
            if not transactional or record['action'] == 'C':
                acked = max(acked, msg.data_start)
                cur.send_feedback(flush_lsn=msg.data_start, reply=True,
                                  force=True)
                commits += 1
                if stop_after_commits and commits >= stop_after_commits:
                    break
    finally:
        # Let the walsender read the last feedback before we hang up.
        time.sleep(0.2)
        conn.close()
    return commits


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--dsn', default='', help='libpq connection string')
    ap.add_argument('--slot', required=True)
    ap.add_argument('--option', action='append', default=[],
                    help='plugin option name=value (repeatable)')
    ap.add_argument('--idle-exit', type=float, default=None,
                    help='exit after this many idle seconds')
    args = ap.parse_args()
    options = dict(o.split('=', 1) for o in args.option)

    def show(record):
        print(json.dumps(record, separators=(',', ':')), flush=True)

    stream(args.dsn, args.slot, options, show, args.idle_exit)


if __name__ == '__main__':
    sys.exit(main())
