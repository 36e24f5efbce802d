#!/usr/bin/python3
"""Differential test of shape_router.add_shape_concurrently() and the
consumer's first-rows recipe, under concurrent writers.

What it proves.  After `CALL shape_router.add_shape_concurrently(...)`
returns shape N, a consumer runs, in a connection of its own,

    BEGIN ISOLATION LEVEL REPEATABLE READ;
    SELECT pg_current_snapshot();
    SELECT <key and columns>, (<clause>) FROM t;      -- the shape's rows
    COMMIT;

and replays, on top of those rows, the stream's records for shape N from
the transactions after N's `S added` record, skipping every transaction
whose xid (of its B record) is visible in that snapshot (xid < xmin, or
xid < xmax and not in xip; 32-bit, with wraparound).  The replayed state
must be PostgreSQL's own evaluation of the shape at every checkpoint (the
writers paused, the stream read to the current position) and at the end;
and the replay is strict at every record: an I (plain or "move":"in") for
a key the consumer has, or a U / D (plain or "move":"out") for a key it
lacks, is a mismatch, and so is a "new" whose columns are not the shape's
columns plus the key, in table order (design.md section 2).

(The recipe's SELECT computes the clause in the target list, as written,
for every row, instead of in a WHERE clause, whose conjuncts the planner
may reorder: where no atom raises the two agree; where the clause as
written raises on a row, that row is evaluated alone, by a plpgsql
function that catches the error, and the row's membership is "unknown" to
the consumer: its first record for the shape decides it, and at a
checkpoint a row that no longer raises must not be a member without such
a record.)

The workload (seeded; the seed is printed; threads make the interleaving
differ from run to run, the statements and clauses of each thread do not):
  * table cd.t: int primary key + 9 typed columns (those of decoding_diff:
    int, bigint, text, bool, numeric, timestamptz, jsonb, int[], text; and
    its n_txt, generated from n, which the grammar's IS NULL atoms name;
    big is never TOASTed here: an unchanged TOASTed value and its
    invalidations are decoding_diff's business), rows that predate every
    shape, an index on a (the search may use it), and two logical slots
    with the plugin
    created before any shape: `cd_often`, read every few hundred ms during
    the run (sometimes with upto_nchanges: each call is a stream restart
    that loads the slot's saved state), and `cd_rare`, read only at
    checkpoints (with include-old).  Both streams are replayed and checked.
  * --identity default (the primary key), index (no primary key, a unique
    index on id as the replica identity) or full;
  * W writer threads (--writers, own connections, autocommit off): INSERT
    (plain, ON CONFLICT DO NOTHING / DO UPDATE, multi-row), UPDATEs of
    random columns by id, by id list and by a random predicate (rows move
    in and out of shapes), UPDATEs of the primary key, no-op UPDATEs,
    DELETEs; short transactions, multi-statement ones (with savepoints,
    some rolled back), some rolled back whole, and now and then one kept
    open for 50-500 ms (add_shape_concurrently waits for it);
  * 2 adder threads (--adders) calling add_shape_concurrently() at once
    with random predicates of decoding_diff's grammar (its Gen, imported
    from decoding_diff.py, built on grammar.py's CrowdedKeys; including
    atoms that raise on some rows), sometimes with a
    column list, each followed at once by the consumer recipe.  A CALL that
    raises (the initial-members search raises on an existing row) must
    leave no shape in the catalog, and the streams must have its
    `S removed` with the reason "add_shape_concurrently() did not finish"
    and no `S added`.  A shape that gets `S invalidated` is accepted only if
    PostgreSQL itself raises evaluating its clause on some committed row
    version (every image a committed change wrote, and the rows before the
    workload), with the reason "evaluation failed: ..." or, for a row
    changed while the shape was pending, "... could not be evaluated on a
    row changed while add_shape_concurrently() was adding it ...", and its
    replay stops there.
  * checkpoints (--checkpoints): every thread stops at a barrier, both
    slots are read to the current position, and every added shape's
    replayed state is compared with PostgreSQL's evaluation then; once more
    at the end.

--sabotage breaks the recipe on purpose (the test must then fail):
`noskip` applies the transactions visible in the snapshot too,
`early-snapshot` takes the consumer's snapshot and rows before the CALL,
`xmin-only` skips only the transactions below the snapshot's xmin (those
that committed between xmin and xmax are applied too), and `drop-move-in`
(a stand-in for a plugin that loses records) ignores every I "move":"in".

Exit 0 with a one-line summary; 1 with MISMATCH lines (shape id, clause,
key, stream, xid); 2 for a harness problem.
"""

import argparse
import json
import os
import random
import re
import sys
import threading
import time
import traceback
from decimal import Decimal

import psycopg2
import psycopg2.extras

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grammar                      # noqa: E402,F401  (Gen's CrowdedKeys)
from decoding_diff import Gen, q, BIG_PREFIXES   # noqa: E402

TABLE = 'cd.t'
COLUMNS = [
    ('id', 'int'),
    ('a', 'int'),
    ('b', 'bigint'),
    ('t', 'text'),
    ('f', 'bool'),
    ('n', 'numeric'),
    ('ts', 'timestamptz'),
    ('j', 'jsonb'),
    ('arr', 'int[]'),
    ('big', 'text'),
    ('n_txt', 'text'),
]
# n_txt as in decoding_diff (its grammar's IS NULL atoms name it)
GENERATED = {'n_txt': 'text GENERATED ALWAYS AS (n::text) STORED'}
COLNAMES = [c for c, _ in COLUMNS]
COLTYPE = dict(COLUMNS)
NONKEY = [c for c in COLNAMES[1:] if c not in GENERATED]   # DML writes these
KEY = ('id',)
IDMAX = 300
RET = ' RETURNING ' + ', '.join('%s::text' % c for c in COLNAMES)
PENDING_REASON = 'add_shape_concurrently() did not finish'
# the invalidation of a shape whose clause raised on a row changed while it
# was pending (no TOASTed values here: only an error)
PENDING_EVAL_REASON = ('could not be evaluated on a row changed while '
                       'add_shape_concurrently() was adding it')

SETUP = {
    'full': """
CREATE TABLE cd.t (%(cols)s, PRIMARY KEY (id));
ALTER TABLE cd.t REPLICA IDENTITY FULL;
""",
    'default': """
CREATE TABLE cd.t (%(cols)s, PRIMARY KEY (id));
""",
    'index': """
CREATE TABLE cd.t (%(cols)s);
ALTER TABLE cd.t ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX t_id ON cd.t (id);
ALTER TABLE cd.t REPLICA IDENTITY USING INDEX t_id;
"""}

# a row's clause, as written, alone; errors caught (SQLSTATE)
EVAL_FN = """
CREATE FUNCTION pg_temp.cd_eval(clause text)
RETURNS TABLE (k int, v bool, err text) LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT id FROM cd.t ORDER BY id LOOP
    k := r.id;
    BEGIN
      EXECUTE format('SELECT (%s)::bool FROM cd.t WHERE id = $1', clause)
        INTO v USING r.id;
      err := NULL;
    EXCEPTION WHEN OTHERS THEN
      v := NULL;
      err := SQLSTATE;
    END;
    RETURN NEXT;
  END LOOP;
END $$;
"""

SLOTS = {
    'cd_often': "'include-lsn', 'true', 'include-xid', 'true'",
    'cd_rare': "'include-lsn', 'true', 'include-xid', 'true', "
               "'include-old', 'true'",
}


def harness_fail(msg):
    print('concurrent_diff: HARNESS PROBLEM: %s' % msg, flush=True)
    os._exit(2)


def connect(name, autocommit):
    conn = psycopg2.connect('', application_name='concurrent_diff_' + name)
    conn.autocommit = autocommit
    return conn


# --------------------------------------------------------------------------
# Values: PostgreSQL's text (the consumer's SELECT) and the stream's JSON
# mapped to one comparable form
# --------------------------------------------------------------------------

def canon_pg(col, text):
    if text is None:
        return None
    ty = COLTYPE[col]
    if ty in ('int', 'bigint'):
        return int(text)
    if ty == 'bool':
        return text == 'true' or text == 't'
    if ty == 'jsonb':
        # a jsonb JSON null is written as null, like SQL NULL (contract)
        v = json.loads(text, parse_float=Decimal)
        return None if v is None else ('json', v)
    return text


def canon_stream(col, v):
    if v is None:
        return None
    ty = COLTYPE[col]
    if ty in ('int', 'bigint'):
        return v if isinstance(v, int) and not isinstance(v, bool) \
            else ('bad', v)
    if ty == 'bool':
        return v if isinstance(v, bool) else ('bad', v)
    if ty == 'jsonb':
        return ('json', v)
    if ty == 'numeric':
        if isinstance(v, bool):
            return ('bad', v)
        if isinstance(v, (int, Decimal)):
            return str(v)
        return v        # NaN, Infinity, -Infinity as strings
    return v if isinstance(v, str) else ('bad', v)


def shape_columns(cols):
    """The columns of a shape's "new": its columns plus the key, in table
    order."""
    if cols is None:
        return list(COLNAMES)
    return [c for c in COLNAMES if c in KEY or c in cols]


# --------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------

M32 = 0xffffffff


def parse_snapshot(text):
    xmin, xmax, xip = text.split(':')
    return (int(xmin) & M32, int(xmax) & M32,
            frozenset(int(x) & M32 for x in xip.split(',') if x))


def precedes(a, b):
    """TransactionIdPrecedes for normal 32-bit xids."""
    return ((a - b) & M32) >= 0x80000000


def visible(xid, snap, sabotage=None):
    xmin, xmax, xip = snap
    xid &= M32
    if precedes(xid, xmin):
        return True
    if sabotage == 'xmin-only':
        return False
    if not precedes(xid, xmax):
        return False
    return xid not in xip


# --------------------------------------------------------------------------
# PostgreSQL's evaluation of a clause on the table, now (in cur's snapshot)
# --------------------------------------------------------------------------

def table_rows(cur):
    cur.execute('SELECT %s FROM cd.t' % ', '.join(
        '%s::text' % c for c in COLNAMES))
    out = {}
    for r in cur.fetchall():
        row = {c: canon_pg(c, v) for c, v in zip(COLNAMES, r)}
        out[(row['id'],)] = row
    return out


def evaluate(cur, clause):
    """-> (members, raising): the keys the clause is true on, and those
    it raises on (as written, per row).  In a transaction."""
    if clause is None:
        cur.execute('SELECT id FROM cd.t')
        return set((r[0],) for r in cur.fetchall()), {}
    cur.execute('SAVEPOINT cd_eval')
    try:
        cur.execute('SELECT id, (%s)::bool FROM cd.t' % clause)
        rows = cur.fetchall()
        cur.execute('RELEASE SAVEPOINT cd_eval')
        return set((k,) for k, v in rows if v), {}
    except psycopg2.Error:
        cur.execute('ROLLBACK TO SAVEPOINT cd_eval')
    cur.execute('SELECT k, v, err FROM pg_temp.cd_eval(%s)', (clause,))
    members, raising = set(), {}
    for k, v, err in cur.fetchall():
        if err is not None:
            raising[(k,)] = err
        elif v:
            members.add((k,))
    cur.execute('RELEASE SAVEPOINT cd_eval')
    return members, raising


def project(row, cols):
    return {c: row[c] for c in shape_columns(cols)}


# --------------------------------------------------------------------------
# Shared state
# --------------------------------------------------------------------------

class Shared:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.shapes = {}        # sid -> {'clause', 'cols', 'thread'}
        self.recipes = {}       # sid -> {'snap', 'rows', 'unknown', ...}
        self.failed = {}        # sid -> (sqlstate, message)
        self.failed_noid = []   # (clause, sqlstate, message)
        self.images = set()     # committed row versions (tuples of text)
        self.mismatches = []
        self.categories = {}    # kind of mismatch -> count
        self.stats = {'txns': 0, 'commits': 0, 'rollbacks': 0,
                      'txn_errors': 0, 'stmts': 0, 'stmt_errors': 0,
                      'long_txns': 0, 'multi_txns': 0, 'key_changes': 0,
                      'calls': 0, 'call_seconds': 0.0,
                      'recipe_unknown_rows': 0, 'recipe_raising_shapes': 0}

    def mismatch(self, text):
        if 'for a key the consumer' in text or 'changes the key' in text:
            cat = 'replay'
        elif ' at checkpoint ' in text or ' at the end' in text:
            cat = 'state'
        elif 'S invalidated' in text:
            cat = 'invalidation'
        else:
            cat = 'other'
        with self.lock:
            self.mismatches.append(text)
            self.categories[cat] = self.categories.get(cat, 0) + 1
            n = len(self.mismatches)
        if n <= self.args.max_report:
            print('MISMATCH: %s' % text, flush=True)

    def bump(self, k, n=1):
        with self.lock:
            self.stats[k] += n


class Control:
    """A barrier for the checkpoints: threads call safe_point() between
    transactions / calls."""

    def __init__(self):
        self.cv = threading.Condition()
        self.pause_req = False
        self.paused = 0
        self.done = 0
        self.stop = False
        self.crashes = []

    def safe_point(self):
        with self.cv:
            if not self.pause_req:
                return
            self.paused += 1
            self.cv.notify_all()
            while self.pause_req and not self.stop:
                self.cv.wait()
            self.paused -= 1

    def pause(self, nthreads, timeout):
        with self.cv:
            self.pause_req = True
            self.cv.notify_all()
            return self.cv.wait_for(
                lambda: self.paused + self.done >= nthreads, timeout)

    def resume(self):
        with self.cv:
            self.pause_req = False
            self.cv.notify_all()

    def finish(self):
        with self.cv:
            self.stop = True
            self.pause_req = False
            self.cv.notify_all()

    def exited(self):
        with self.cv:
            self.done += 1
            self.cv.notify_all()


def run_thread(ctl, name, fn):
    def body():
        try:
            fn()
        except Exception:
            ctl.crashes.append('%s:\n%s' % (name, traceback.format_exc()))
        finally:
            ctl.exited()
    t = threading.Thread(target=body, name=name, daemon=True)
    t.start()
    return t


# --------------------------------------------------------------------------
# The grammar, without TOASTed values (an unchanged TOASTed value has no old
# row under DEFAULT: its invalidations are decoding_diff's business)
# --------------------------------------------------------------------------

class CGen(Gen):
    def big_lit(self):
        if self.r.random() < 0.45:
            return 'NULL'
        return q(self.pick(BIG_PREFIXES) + self.pick(['', 'a', 'short', '1']))


# --------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------

class Writer:
    def __init__(self, sh, ctl, k, seed, end_time):
        self.sh, self.ctl, self.k = sh, ctl, k
        self.gen = CGen(seed)
        self.gen.id_hint = IDMAX
        self.r = self.gen.r
        self.end_time = end_time
        self.conn = connect('writer%d' % k, False)
        cur = self.conn.cursor()
        cur.execute("SET deadlock_timeout = '50ms'")
        cur.execute("SET lock_timeout = '20s'")
        self.conn.commit()

    def rid(self):
        return self.r.randint(1, IDMAX)

    def stmt(self):
        """-> (sql, returns rows)"""
        g, r = self.gen, self.r
        k = r.random()
        if k < 0.25:
            n = 1 if r.random() < 0.8 else r.randint(2, 3)
            ids = r.sample(range(1, IDMAX + 1), n)
            vals = ', '.join(g.row_values(i) for i in ids)
            x = r.random()
            if x < 0.5:
                conflict = ' ON CONFLICT (id) DO NOTHING'
            elif x < 0.8:
                cols = r.sample(NONKEY, r.randint(1, 3))
                conflict = ' ON CONFLICT (id) DO UPDATE SET %s' % ', '.join(
                    '%s = EXCLUDED.%s' % (c, c) for c in cols)
            else:
                conflict = ''       # may raise unique_violation
            return ('INSERT INTO cd.t (%s) VALUES %s%s%s' % (
                ', '.join(['id'] + NONKEY), vals, conflict, RET), True)
        if k < 0.55:
            cols = r.sample(NONKEY, r.randint(1, 3))
            sets = ', '.join('%s = %s' % (c, g.set_expr(c)) for c in cols)
            return ('UPDATE cd.t SET %s WHERE id = %d%s' % (
                sets, self.rid(), RET), True)
        if k < 0.61:
            cols = r.sample(NONKEY, r.randint(1, 2))
            sets = ', '.join('%s = %s' % (c, g.set_expr(c)) for c in cols)
            ids = sorted(r.sample(range(1, IDMAX + 1), r.randint(2, 6)))
            return ('UPDATE cd.t SET %s WHERE id IN (%s)%s' % (
                sets, ', '.join(map(str, ids)), RET), True)
        if k < 0.65:
            cols = r.sample(NONKEY, r.randint(1, 2))
            sets = ', '.join('%s = %s' % (c, g.set_expr(c)) for c in cols)
            return ('UPDATE cd.t SET %s WHERE id IN (SELECT id FROM cd.t '
                    'WHERE %s ORDER BY id LIMIT %d)%s' % (
                        sets, g.clean_pred(), r.randint(1, 8), RET), True)
        if k < 0.76:
            self.sh.bump('key_changes')
            extra = ''
            if r.random() < 0.4:
                c = r.choice(NONKEY)
                extra = ', %s = %s' % (c, g.set_expr(c))
            return ('UPDATE cd.t SET id = %d%s WHERE id = %d%s' % (
                self.rid(), extra, self.rid(), RET), True)
        if k < 0.78:
            c = r.choice(NONKEY)
            return ('UPDATE cd.t SET %s = %s WHERE id = %d%s' % (
                c, c, self.rid(), RET), True)
        if r.random() < 0.85:
            return ('DELETE FROM cd.t WHERE id = %d' % self.rid(), False)
        ids = sorted(r.sample(range(1, IDMAX + 1), r.randint(2, 4)))
        return ('DELETE FROM cd.t WHERE id IN (%s)' % ', '.join(
            map(str, ids)), False)

    def txn(self):
        r, cur = self.r, self.conn.cursor()
        nst = 1 if r.random() < 0.6 else r.randint(2, 5)
        if nst > 1:
            self.sh.bump('multi_txns')
        use_sp = nst > 1 and r.random() < 0.5
        long_at = r.randrange(nst) if r.random() < 0.05 else None
        images = []
        self.sh.bump('txns')
        try:
            for i in range(nst):
                sql, returns = self.stmt()
                self.sh.bump('stmts')
                if use_sp:
                    cur.execute('SAVEPOINT w')
                try:
                    cur.execute(sql)
                    got = cur.fetchall() if returns else []
                    if use_sp and r.random() < 0.15:
                        cur.execute('ROLLBACK TO SAVEPOINT w')
                        got = []
                    elif use_sp:
                        cur.execute('RELEASE SAVEPOINT w')
                    images += got
                except psycopg2.Error:
                    self.sh.bump('stmt_errors')
                    if not use_sp:
                        raise
                    cur.execute('ROLLBACK TO SAVEPOINT w')
                if long_at == i:
                    self.sh.bump('long_txns')
                    time.sleep(r.uniform(0.05, 0.5))
            if r.random() < 0.03:
                self.conn.rollback()
                self.sh.bump('rollbacks')
                return
            self.conn.commit()
            self.sh.bump('commits')
            with self.sh.lock:
                self.sh.images.update(tuple(x) for x in images)
        except psycopg2.Error:
            self.sh.bump('txn_errors')
            self.conn.rollback()

    def run(self):
        while not self.ctl.stop and time.time() < self.end_time:
            self.ctl.safe_point()
            if self.ctl.stop:
                break
            self.txn()
            time.sleep(self.r.uniform(0, 0.012))
        self.conn.close()


# --------------------------------------------------------------------------
# Adders: add_shape_concurrently, then the consumer's first rows
# --------------------------------------------------------------------------

class Adder:
    def __init__(self, sh, ctl, k, seed, end_time):
        self.sh, self.ctl, self.k = sh, ctl, k
        self.gen = CGen(seed)
        self.gen.id_hint = IDMAX
        self.r = self.gen.r
        self.end_time = end_time
        self.conn = connect('adder%d' % k, True)
        self.conn.cursor().execute("SET statement_timeout = '60s'")
        self.cconn = connect('consumer%d' % k, True)
        c = self.cconn.cursor()
        c.execute("SET statement_timeout = '60s'")
        c.execute(EVAL_FN)

    def first_rows(self, cur):
        """The recipe's start, in cur (autocommit): BEGIN ISOLATION LEVEL
        REPEATABLE READ, the snapshot, every row (the caller evaluates the
        clause in the same transaction, then commits) -> (snapshot,
        {key: row})."""
        cur.execute('BEGIN ISOLATION LEVEL REPEATABLE READ')
        cur.execute('SELECT pg_current_snapshot()::text')
        snap = parse_snapshot(cur.fetchone()[0])
        rows = table_rows(cur)
        return snap, rows

    def one(self):
        sh, r = self.sh, self.r
        clause, _ = self.gen.shape()
        cols = None
        if r.random() < 0.3:
            pick = set(r.sample(COLNAMES, r.randint(1, 4)))
            cols = [c for c in COLNAMES if c in pick]
        early = None
        ccur = self.cconn.cursor()
        if sh.args.sabotage == 'early-snapshot':
            early = self.first_rows(ccur)
        cur = self.conn.cursor()
        t0 = time.time()
        try:
            cur.execute('CALL shape_router.add_shape_concurrently('
                        '%s::regclass, %s, %s::text[])', (TABLE, clause, cols))
            sid = cur.fetchone()[0]
        except psycopg2.Error as ex:
            sh.bump('calls')
            if early:
                ccur.execute('ROLLBACK')
            ctx = ex.diag.context or ''
            m = re.search(r'in shape (\d+)', ctx)
            msg = (ex.diag.message_primary or str(ex)).strip()
            if m is None:
                with sh.lock:
                    sh.failed_noid.append((clause, ex.pgcode, msg))
                return
            sid = int(m.group(1))
            with sh.lock:
                sh.failed[sid] = (clause, ex.pgcode, msg)
            cur.execute('SELECT count(*) FROM shape_router.shapes '
                        'WHERE shape_id = %s', (sid,))
            if cur.fetchone()[0] != 0:
                sh.mismatch('shape %d (%s): its add_shape_concurrently() '
                            'raised (%s %s) but the shape is in the catalog'
                            % (sid, clause, ex.pgcode, msg))
            return
        sh.bump('calls')
        sh.bump('call_seconds', time.time() - t0)
        with sh.lock:
            sh.shapes[sid] = {'clause': clause, 'cols': cols,
                              'thread': self.k}
        # the consumer's first rows, at once
        if early:
            snap, rows = early
        else:
            snap, rows = self.first_rows(ccur)
        members, raising = evaluate(ccur, clause)
        ccur.execute('COMMIT')
        cur.execute('SELECT pending FROM shape_router.shapes '
                    'WHERE shape_id = %s', (sid,))
        pend = cur.fetchall()
        if pend != [(False,)]:
            sh.mismatch('shape %d (%s): after its CALL returned the catalog '
                        'has pending = %s' % (sid, clause, pend))
        state = {k: project(rows[k], cols) for k in members}
        if raising:
            sh.bump('recipe_raising_shapes')
            sh.bump('recipe_unknown_rows', len(raising))
        with sh.lock:
            sh.recipes[sid] = {'snap': snap, 'state': state,
                               'unknown': set(raising)}

    def run(self):
        while not self.ctl.stop and time.time() < self.end_time:
            self.ctl.safe_point()
            if self.ctl.stop or len(self.sh.shapes) + len(self.sh.failed) \
                    >= self.sh.args.max_shapes:
                break
            self.one()
            time.sleep(self.r.uniform(*self.sh.args.add_pause))
        self.conn.close()
        self.cconn.close()


# --------------------------------------------------------------------------
# Streams and the replay
# --------------------------------------------------------------------------

class Replay:
    """One shape's consumer state in one stream."""

    def __init__(self, sid, info, recipe):
        self.sid = sid
        self.clause = info['clause']
        self.cols = info['cols']
        self.expect_cols = shape_columns(info['cols'])
        self.snap = recipe['snap']
        self.state = {k: dict(v) for k, v in recipe['state'].items()}
        self.unknown = set(recipe['unknown'])
        self.pos = 0            # into the stream's records of the shape
        self.dead = False
        self.skipped_txns = set()   # visible in the snapshot: skipped
        self.inflight_txns = set()  # in its xip: applied
        self.applied = 0


class Stream:
    def __init__(self, sh, name, options):
        self.sh, self.name, self.options = sh, name, options
        self.lock = threading.Lock()
        self.txns = []          # {'xid', 'lsn', 'recs'}
        self.recs = {}          # sid -> [(txn index, rec)]
        self.added = {}         # sid -> txn index
        self.removed = {}       # sid -> (txn index, reason)
        self.invalidated = {}   # sid -> (txn index, reason)
        self.replays = {}       # sid -> Replay
        self.calls = 0
        self.nrecords = 0
        self.broken = False     # the plugin raised

    def problem(self, text):
        self.sh.mismatch('[%s] %s' % (self.name, text))

    def desc(self, sid):
        info = self.sh.shapes.get(sid) or {}
        if sid in self.sh.failed:
            return 'shape %d (%s, its CALL failed)' % (
                sid, self.sh.failed[sid][0])
        return 'shape %d (%s%s)' % (sid, info.get('clause'),
                                    '; columns %s' % info['cols']
                                    if info.get('cols') else '')

    def read(self, cur, upto=None):
        if self.broken:
            return 0
        try:
            cur.execute("SELECT data FROM pg_logical_slot_get_changes(%%s, "
                        "NULL, %%s, %s)" % self.options, (self.name, upto))
            rows = cur.fetchall()
        except psycopg2.Error as ex:
            # the plugin raised: the slot cannot get past this change
            self.broken = True
            self.problem('DECODING FAILED (%s): %s%s' % (
                ex.pgcode, (ex.diag.message_primary or str(ex)).strip(),
                '; context: %s' % ex.diag.context.strip()
                if ex.diag.context else ''))
            return 0
        self.calls += 1
        txn = None
        for (data,) in rows:
            try:
                rec = json.loads(data, parse_float=Decimal)
            except ValueError:
                self.problem('not JSON: %r' % data[:200])
                continue
            act = rec.get('action')
            if act == 'B':
                if txn is not None:
                    self.problem('B inside transaction %s' % txn['xid'])
                txn = {'xid': rec.get('xid'), 'lsn': rec.get('lsn'),
                       'recs': []}
                continue
            if txn is None:
                self.problem('record outside a transaction: %s' % data[:200])
                continue
            if act == 'C':
                if rec.get('xid') != txn['xid']:
                    self.problem('C of xid %s closes B of xid %s' % (
                        rec.get('xid'), txn['xid']))
                if not txn['recs']:
                    self.problem('empty transaction %s' % txn['xid'])
                self.add_txn(txn)
                txn = None
                continue
            txn['recs'].append(rec)
        if txn is not None:
            self.problem('a call ends inside transaction %s' % txn['xid'])
        return len(rows)

    def add_txn(self, txn):
        ti = len(self.txns)
        self.txns.append(txn)
        for rec in txn['recs']:
            self.nrecords += 1
            act = rec.get('action')
            if act == 'S':
                sid, ev = rec.get('shape'), rec.get('event')
                if ev == 'added':
                    if sid in self.added:
                        self.problem('%s: a second S added (xid %s)'
                                     % (self.desc(sid), txn['xid']))
                    self.added[sid] = ti
                elif ev == 'removed':
                    if sid in self.removed:
                        self.problem('%s: a second S removed' % self.desc(sid))
                    self.removed[sid] = (ti, rec.get('reason'))
                elif ev == 'invalidated':
                    if sid in self.invalidated:
                        self.problem('%s: a second S invalidated'
                                     % self.desc(sid))
                    self.invalidated.setdefault(sid, (ti, rec.get('reason')))
                else:
                    self.problem('%s: unexpected S %s: %s' % (
                        self.desc(sid), ev, json.dumps(rec, default=str)))
                continue
            if act not in ('I', 'U', 'D', 'T'):
                self.problem('unexpected record %s' % json.dumps(
                    rec, default=str)[:300])
                continue
            shapes = rec.get('shapes') or []
            if shapes != sorted(set(shapes)):
                self.problem('"shapes" not ascending / unique: %s' % shapes)
            for sid in shapes:
                if sid not in self.added or self.added[sid] >= ti:
                    self.problem('%s: a %s record before its S added '
                                 '(xid %s)' % (self.desc(sid), act,
                                               txn['xid']))
                    continue
                if sid in self.removed:
                    self.problem('%s: a %s record after its S removed '
                                 '(xid %s)' % (self.desc(sid), act,
                                               txn['xid']))
                    continue
                inv = self.invalidated.get(sid)
                if inv is not None and inv[0] < ti:
                    self.problem('%s: a %s record after its S invalidated '
                                 '(xid %s)' % (self.desc(sid), act,
                                               txn['xid']))
                    continue
                self.recs.setdefault(sid, []).append((ti, rec))

    # ---- the replay ----

    def advance_all(self):
        with self.sh.lock:
            ready = [(sid, self.sh.shapes[sid], self.sh.recipes[sid])
                     for sid in self.sh.recipes if sid not in self.replays]
        for sid, info, recipe in ready:
            if sid not in self.added:
                continue
            rp = Replay(sid, info, recipe)
            ti = self.added[sid]
            if not visible(self.txns[ti]['xid'], rp.snap):
                self.problem('%s: its S added transaction (xid %s) is not '
                             'visible in the consumer\'s snapshot %s, taken '
                             'after the CALL returned' % (
                                 self.desc(sid), self.txns[ti]['xid'],
                                 fmt_snap(rp.snap)))
            self.replays[sid] = rp
        for rp in self.replays.values():
            self.advance(rp)

    def advance(self, rp):
        if rp.dead:
            return
        recs = self.recs.get(rp.sid, [])
        inv = self.invalidated.get(rp.sid)
        sab = self.sh.args.sabotage
        while rp.pos < len(recs):
            ti, rec = recs[rp.pos]
            if inv is not None and ti >= inv[0]:
                rp.dead = True
                return
            rp.pos += 1
            xid = self.txns[ti]['xid']
            if sab != 'noskip' and visible(xid, rp.snap, sab):
                rp.skipped_txns.add(ti)
                continue
            if precedes(xid & M32, rp.snap[1]):
                # in progress when the snapshot was taken
                rp.inflight_txns.add(ti)
            if sab == 'drop-move-in' and rec.get('move') == 'in':
                continue
            self.apply(rp, rec, xid)
        if inv is not None:
            rp.dead = True

    def fail(self, rp, key, xid, text):
        self.problem('%s key %s %s: %s' % (
            self.desc(rp.sid), fmt_key(key),
            xid if isinstance(xid, str) else 'xid %s' % xid, text))

    def apply(self, rp, rec, xid):
        act = rec['action']
        move = rec.get('move')
        rp.applied += 1
        if act == 'T':
            rp.state.clear()
            rp.unknown.clear()
            return
        new = rec.get('new')
        if 'unchanged_toast' in rec:
            self.fail(rp, None, xid, 'unchanged_toast in %s' % json.dumps(
                rec, default=str)[:300])
        row = None
        if act in ('I', 'U'):
            if not isinstance(new, dict):
                self.fail(rp, None, xid, '%s without "new"' % act)
                return
            if list(new) != rp.expect_cols:
                self.fail(rp, None, xid, '"new" has columns %s, the shape\'s '
                          'are %s' % (list(new), rp.expect_cols))
            row = {c: canon_stream(c, new.get(c)) for c in rp.expect_cols}
        if act == 'I':
            key = tuple(new.get(c) for c in KEY)
            if move not in (None, 'in'):
                self.fail(rp, key, xid, 'I with "move":%r' % move)
            if key in rp.state and key not in rp.unknown:
                self.fail(rp, key, xid, 'I%s for a key the consumer already '
                          'has' % (' move in' if move else ''))
        else:
            k = rec.get('key')
            if not isinstance(k, dict) or list(k) != list(KEY):
                self.fail(rp, None, xid, '%s with "key" %r' % (act, k))
                return
            key = tuple(k[c] for c in KEY)
            if act == 'U' and move is not None:
                self.fail(rp, key, xid, 'U with "move":%r' % move)
            if act == 'D' and move not in (None, 'out'):
                self.fail(rp, key, xid, 'D with "move":%r' % move)
            if act == 'U' and tuple(new.get(c) for c in KEY) != key:
                self.fail(rp, key, xid, 'U changes the key to %s (must be D '
                          'then I)' % fmt_key(tuple(new.get(c) for c in KEY)))
            if key not in rp.state and key not in rp.unknown:
                self.fail(rp, key, xid, '%s%s for a key the consumer does not '
                          'have' % (act, ' move out' if move else ''))
        rp.unknown.discard(key)
        if act == 'D':
            rp.state.pop(key, None)
        else:
            rp.state[tuple(row[c] for c in KEY)] = row

    def compare(self, rp, rows, members, raising, where):
        """rp's state against PostgreSQL's evaluation now."""
        if rp.dead:
            return
        for key in sorted(members | set(rp.state) | rp.unknown):
            if key in raising:
                # the clause raises on the row as it is: either answer
                rp.state.pop(key, None)
                rp.unknown.add(key)
                continue
            if key in rp.unknown:
                rp.unknown.discard(key)
                if key in members:
                    self.fail(rp, key, where, 'a member now (the row does '
                              'not raise any more) but no record for it since '
                              'the first rows, where it raised')
                    rp.state[key] = project(rows[key], rp.cols)
                continue
            if key in members and key not in rp.state:
                self.fail(rp, key, where, 'missing: PostgreSQL has the row in '
                          'the shape (%s), the replay does not' % fmt_row(
                              project(rows[key], rp.cols)))
                rp.state[key] = project(rows[key], rp.cols)
            elif key not in members:
                self.fail(rp, key, where, 'extra: the replay has %s, '
                          'PostgreSQL %s' % (
                              fmt_row(rp.state[key]),
                              'has the row outside the shape (%s)' %
                              fmt_row(project(rows[key], rp.cols))
                              if key in rows else 'has no such row'))
                del rp.state[key]
            else:
                exp = project(rows[key], rp.cols)
                if rp.state[key] != exp:
                    diff = ['%s: replay %r, PostgreSQL %r' % (
                        c, rp.state[key].get(c), exp[c]) for c in exp
                        if rp.state[key].get(c) != exp[c]]
                    self.fail(rp, key, where, 'values differ: %s' % '; '.join(
                        diff))
                    rp.state[key] = exp


def fmt_key(key):
    if key is None:
        return '-'
    return ','.join(str(x) for x in key)


def fmt_row(row):
    return json.dumps({c: (v[1] if isinstance(v, tuple) else v)
                       for c, v in row.items()}, default=str)[:300]


def fmt_snap(snap):
    return '%d:%d:%s' % (snap[0], snap[1], ','.join(map(str, sorted(snap[2]))))


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int)
    ap.add_argument('--identity', choices=('default', 'full', 'index'),
                    default='default')
    ap.add_argument('--duration', type=float, default=24.0,
                    help='seconds of workload')
    ap.add_argument('--writers', type=int, default=4)
    ap.add_argument('--adders', type=int, default=2)
    ap.add_argument('--checkpoints', type=int, default=3,
                    help='checkpoints during the run (one more at the end)')
    ap.add_argument('--rows', type=int, default=180,
                    help='rows before the slots and the shapes')
    ap.add_argument('--max-shapes', type=int, default=160)
    ap.add_argument('--add-pause', type=float, nargs=2, default=(0.05, 0.35),
                    metavar=('MIN', 'MAX'),
                    help='seconds an adder sleeps between its calls')
    ap.add_argument('--min-shapes', type=int, default=20,
                    help='fail if fewer shapes were added')
    ap.add_argument('--max-report', type=int, default=25)
    ap.add_argument('--dump', metavar='DIR',
                    help='triage: write the shapes, the committed row images '
                         'and both streams\' transactions as JSON into DIR')
    ap.add_argument('--sabotage',
                    choices=('noskip', 'early-snapshot', 'xmin-only',
                             'drop-move-in'),
                    help='break the consumer recipe on purpose (self-check: '
                         'the run must then fail)')
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else \
        random.SystemRandom().randrange(1, 2 ** 31)
    print('concurrent_diff: seed=%d identity=%s%s' % (
        seed, args.identity, ' sabotage=%s' % args.sabotage
        if args.sabotage else ''), flush=True)
    t0 = time.time()
    rnd = random.Random(seed)

    conn = connect('main', True)
    cur = conn.cursor()
    cur.execute('SET client_min_messages = warning')
    for slot in SLOTS:
        cur.execute('SELECT pg_drop_replication_slot(slot_name) FROM '
                    'pg_replication_slots WHERE slot_name = %s', (slot,))
    cur.execute('CREATE EXTENSION IF NOT EXISTS shape_router')
    cur.execute("SELECT to_regclass('cd.t')")
    if cur.fetchone()[0] is not None:
        cur.execute("SELECT shape_router.remove_shape(shape_id) FROM "
                    "shape_router.shapes WHERE relid = 'cd.t'::regclass")
    cur.execute('DROP SCHEMA IF EXISTS cd CASCADE')
    cur.execute('CREATE SCHEMA cd')
    cur.execute(SETUP[args.identity] % {'cols': ', '.join(
        '%s %s' % (c, GENERATED.get(c, t)) for c, t in COLUMNS)})
    cur.execute('CREATE INDEX t_a ON cd.t (a)')
    cur.execute('ALTER TABLE cd.t SET (autovacuum_enabled = false)')
    cur.execute(EVAL_FN)

    sh = Shared(args)
    # rows that predate every shape and the slots
    g0 = CGen(seed)
    ids = rnd.sample(range(1, IDMAX + 1), args.rows)
    cur.execute('INSERT INTO cd.t (%s) VALUES %s%s' % (
        ', '.join(['id'] + NONKEY), ', '.join(g0.row_values(i) for i in ids),
        RET))
    sh.images.update(tuple(x) for x in cur.fetchall())
    cur.execute('ANALYZE cd.t')
    for slot in SLOTS:
        cur.execute("SELECT 'x' FROM pg_create_logical_replication_slot(%s, "
                    "'shape_router')", (slot,))
    cur.execute('SELECT count(*) FROM shape_router.shapes')
    if cur.fetchone()[0] != 0:
        harness_fail('shapes exist before the slots')
    streams = {name: Stream(sh, name, opts) for name, opts in SLOTS.items()}
    often, rare = streams['cd_often'], streams['cd_rare']

    ctl = Control()
    end_time = time.time() + args.duration
    threads = []
    for k in range(args.writers):
        w = Writer(sh, ctl, k, seed * 1000 + k, end_time)
        threads.append(run_thread(ctl, 'writer%d' % k, w.run))
    for k in range(args.adders):
        a = Adder(sh, ctl, k, seed * 1000 + 500 + k, end_time)
        threads.append(run_thread(ctl, 'adder%d' % k, a.run))

    reader_stats = {'reads': 0, 'limited': 0}

    def reader():
        rconn = connect('reader', True)
        rcur = rconn.cursor()
        rr = random.Random(seed * 1000 + 999)
        while not ctl.stop:
            ctl.safe_point()
            if ctl.stop:
                break
            upto = None
            if rr.random() < 0.4:
                upto = rr.randint(20, 600)
                reader_stats['limited'] += 1
            with often.lock:
                often.read(rcur, upto)
                often.advance_all()
            reader_stats['reads'] += 1
            time.sleep(rr.uniform(0.15, 0.8))
        rconn.close()
    threads.append(run_thread(ctl, 'reader', reader))
    nthreads = len(threads)

    ccur = conn.cursor()

    def checkpoint(label):
        """Every thread at the barrier (or finished): both slots read to
        the end, every replay compared with PostgreSQL's evaluation."""
        for s in streams.values():
            with s.lock:
                while s.read(ccur) > 0:
                    pass
                s.advance_all()
        ccur.execute('BEGIN ISOLATION LEVEL REPEATABLE READ')
        rows = table_rows(ccur)
        with sh.lock:
            todo = sorted(sh.recipes)
            pending = set(sh.shapes) - set(sh.recipes)
        if pending:
            harness_fail('shapes without their first rows at a checkpoint: '
                         '%s' % sorted(pending))
        nshape = 0
        for sid in todo:
            info = sh.shapes[sid]
            for s in streams.values():
                if sid not in s.added:
                    s.problem('%s: no S added in the stream at %s (its CALL '
                              'returned)' % (s.desc(sid), label))
            if all(s.replays.get(sid) is None or s.replays[sid].dead
                   for s in streams.values()):
                continue
            members, raising = evaluate(ccur, info['clause'])
            nshape += 1
            for s in streams.values():
                rp = s.replays.get(sid)
                if rp is not None:
                    s.compare(rp, rows, members, raising, 'at ' + label)
        ccur.execute('COMMIT')
        return nshape

    # ---- the run, with its checkpoints ----
    ncp = 0
    for c in range(args.checkpoints):
        at = end_time - args.duration + args.duration * (c + 1) / \
            (args.checkpoints + 1)
        while time.time() < at and not ctl.crashes:
            time.sleep(0.05)
        if ctl.crashes:
            break
        tp = time.time()
        if not ctl.pause(nthreads, 120):
            harness_fail('threads did not reach the barrier in 120 s')
        n = checkpoint('checkpoint %d' % (c + 1))
        ncp += 1
        print('concurrent_diff: checkpoint %d at %.1fs: %d shapes compared, '
              '%d rows, %d mismatches so far (%.2fs paused)' % (
                  c + 1, time.time() - t0, n, len(rows_now(ccur)),
                  len(sh.mismatches), time.time() - tp), flush=True)
        ctl.resume()
    while time.time() < end_time and not ctl.crashes:
        time.sleep(0.05)
    ctl.finish()
    for t in threads:
        t.join(120)
        if t.is_alive():
            harness_fail('thread %s did not finish' % t.name)
    if ctl.crashes:
        for c in ctl.crashes:
            print('concurrent_diff: thread crashed: %s' % c)
        harness_fail('%d threads crashed' % len(ctl.crashes))
    t_work = time.time() - t0
    n = checkpoint('the end')
    ncp += 1
    print('concurrent_diff: end at %.1fs: %d shapes compared' % (
        time.time() - t0, n), flush=True)

    # ---- failed calls, removals, invalidations ----
    for s in streams.values():
        for sid, (ti, reason) in sorted(s.removed.items()):
            if sid not in sh.failed and not sh.failed_noid:
                s.problem('%s: S removed (%s), but no CALL of it failed' % (
                    s.desc(sid), reason))
            elif reason != PENDING_REASON:
                s.problem('%s: S removed with reason %r, not %r' % (
                    s.desc(sid), reason, PENDING_REASON))
        for sid in sorted(sh.failed):
            if sid in s.added:
                s.problem('%s: S added, but its CALL failed' % s.desc(sid))
            if sid not in s.removed:
                s.problem('%s: its CALL failed, no S removed in the stream'
                          % s.desc(sid))
        extra = set(s.removed) - set(sh.failed)
        if len(extra) > len(sh.failed_noid):
            s.problem('S removed for shapes %s: more than the %d failed calls '
                      'without a shape id' % (sorted(extra),
                                              len(sh.failed_noid)))
        for sid in set(s.added) - set(sh.shapes):
            s.problem('%s: S added, but no CALL returned it' % s.desc(sid))
    # invalidated shapes: PostgreSQL must raise on some committed row version
    inval = {}
    for s in streams.values():
        for sid, (ti, reason) in s.invalidated.items():
            inval.setdefault(sid, []).append((s.name, s.txns[ti]['xid'],
                                              reason))
    if inval:
        cur.execute('CREATE TABLE cd.img (LIKE cd.t)')
        psycopg2.extras.execute_values(
            cur, 'INSERT INTO cd.img (%s) VALUES %%s' % ', '.join(COLNAMES),
            sorted(sh.images, key=lambda r: [x or '' for x in r]),
            template='(%s)' % ', '.join('%%s::%s' % ty for _, ty in COLUMNS),
            page_size=500)
    n_inval_ok = 0
    for sid, where in sorted(inval.items()):
        clause = sh.shapes.get(sid, {}).get('clause')
        raised = None
        if clause is not None:
            try:
                # (v is used: an unused output of the subquery would not
                # be computed)
                cur.execute('SELECT count(v) FROM (SELECT (%s)::bool AS v '
                            'FROM cd.img OFFSET 0) s' % clause)
            except psycopg2.Error as ex:
                raised = '%s %s' % (ex.pgcode, ex.diag.message_primary)
        for name, xid, reason in where:
            if raised is None:
                sh.mismatch('[%s] shape %d (%s): S invalidated at xid %s '
                            '(%s), but PostgreSQL raises on no row version '
                            'of the run' % (name, sid, clause, xid, reason))
            elif not (reason or '').startswith('evaluation failed') and \
                    PENDING_EVAL_REASON not in (reason or ''):
                sh.mismatch('[%s] shape %d (%s): S invalidated with reason %r'
                            % (name, sid, clause, reason))
            else:
                n_inval_ok += 1

    if args.dump:
        os.makedirs(args.dump, exist_ok=True)
        with open(os.path.join(args.dump, 'shapes.json'), 'w') as fh:
            json.dump({'shapes': sh.shapes, 'failed': sh.failed,
                       'recipes': {sid: {'snap': fmt_snap(rc['snap']),
                                         'unknown': sorted(rc['unknown'])}
                                   for sid, rc in sh.recipes.items()}},
                      fh, default=str, indent=1)
        with open(os.path.join(args.dump, 'images.json'), 'w') as fh:
            json.dump(dict(zip(COLNAMES, zip(*sorted(
                sh.images, key=lambda r: [x or '' for x in r])))), fh)
        for s in streams.values():
            with open(os.path.join(args.dump, s.name + '.json'), 'w') as fh:
                json.dump(s.txns, fh, default=str)
        print('concurrent_diff: wrote %s' % args.dump)

    # ---- summary ----
    st = sh.stats
    replayed = sum(rp.applied for s in streams.values()
                   for rp in s.replays.values())
    skipped = sum(len(rp.skipped_txns) for s in streams.values()
                  for rp in s.replays.values())
    inflight = sum(len(rp.inflight_txns) for s in streams.values()
                   for rp in s.replays.values())
    skipped_txns = sum(len(set().union(*[rp.skipped_txns
                                         for rp in s.replays.values()]))
                       for s in streams.values())
    print('concurrent_diff: workload: %s; stream reads: cd_often=%d (%d with '
          'upto_nchanges) cd_rare=%d; stream transactions: %s; records: %s'
          % (' '.join('%s=%s' % (k, ('%.1f' % v) if isinstance(v, float)
                                 else v) for k, v in sorted(st.items())),
             often.calls, reader_stats['limited'], rare.calls,
             ' '.join('%s=%d' % (n, len(s.txns)) for n, s in streams.items()),
             ' '.join('%s=%d' % (n, s.nrecords) for n, s in streams.items())))
    if sh.failed_noid:
        print('concurrent_diff: %d calls refused before registering a shape: '
              '%s' % (len(sh.failed_noid), '; '.join(
                  '%s %s (%s)' % (c, m, cl) for cl, c, m in
                  sh.failed_noid[:5])))
    ok = not sh.mismatches
    if len(sh.shapes) < args.min_shapes:
        print('concurrent_diff: only %d shapes added, need %d' % (
            len(sh.shapes), args.min_shapes))
        ok = False
    print('concurrent_diff: %s seed=%d identity=%s shapes_added=%d '
          'failed_calls=%d records_replayed=%d skipped_by_snapshot=%d '
          '(%d distinct transactions) applied_in_flight_at_snapshot=%d '
          'checkpoints=%d invalidated=%d '
          'recipe_raising_shapes=%d mismatches=%d%s time=%.1fs (workload '
          '%.1fs)' % (
              'OK' if ok else 'FAILED', seed, args.identity, len(sh.shapes),
              len(sh.failed) + len(sh.failed_noid), replayed, skipped,
              skipped_txns, inflight, ncp, len(inval),
              st['recipe_raising_shapes'],
              len(sh.mismatches), ' (%s)' % ' '.join(
                  '%s=%d' % kv for kv in sorted(sh.categories.items()))
              if sh.mismatches else '', time.time() - t0, t_work), flush=True)
    conn.close()
    sys.exit(0 if ok else 1)


def rows_now(cur):
    cur.execute('SELECT id FROM cd.t')
    return cur.fetchall()


if __name__ == '__main__':
    main()
