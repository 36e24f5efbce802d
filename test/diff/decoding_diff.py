#!/usr/bin/python3
"""Seeded, randomised, end-to-end differential test of the shape_router
logical decoding output plugin.

(This describes the default mode, dd.t with REPLICA IDENTITY FULL; for
--identity default / index see "Replica identity DEFAULT / USING INDEX"
below.)

Anchor: wal2json (format version 2) decodes the same WAL from a slot created
at the same point.  From its stream the script takes, for every committed
change, the old row ("identity", the whole row under REPLICA IDENTITY FULL)
and the new row (unchanged TOASTed values, which wal2json leaves out, are
taken from the old row), and, from the changes to shape_router.shapes, which
shapes exist when each transaction commits.  PostgreSQL itself is the oracle
for the predicates: every distinct old/new row image goes into a scratch
table dd.img (image_id + the table's columns), and PostgreSQL evaluates each
predicate per image, as written: `SELECT (<predicate>) FROM dd.img WHERE
image_id = k` (AND / OR left to right, after the planner's constant folding,
which add_shape's validation does too), giving per (shape, image) true /
false / null / error(SQLSTATE).  The fast path is one set query per shape
with the predicate in the target list (`SELECT image_id, (p) FROM (...
OFFSET 0)`, never in a WHERE clause, whose top-level conjuncts the planner
may reorder).  A set query fails as a whole when one image raises; such a
shape is then evaluated per image by a plpgsql function with the predicate
compiled into it: a cursor over dd.img in image_id order, one row per FETCH;
on an error, the image after the last one fetched is the one that raised
(checked for the first errors and every 16th by evaluating it alone,
`SELECT (p) FROM dd.img WHERE image_id = k`, in BEGIN ... EXCEPTION: same
SQLSTATE), and the cursor reopens after it.  That evaluation is lazy, in
image order (the stream's order), as far as the comparison needs it.  The
routing rules of design.md section 2 then give the records shape_router
must write for each change, and the script compares them, per change (keyed
by the change LSN, include-lsn), with what the shape_router slots wrote:
the (action, move, shapes) of every record, in order; the S records; B/C
framing, xids and commit LSNs; commit order; and the "new" / "key" values of
every record.

Evaluation errors (the grammar has atoms that raise on some rows: division
and modulo by a column that can be 0, integer overflow, casts of text /
jsonb / bigint / numeric values that can fail, sqrt / ln / log / power /
exp / factorial / substr / chr outside their domain, a column used as a
regular expression or LIKE pattern; usually behind a guard that lets a few
values through; and the workload's "error episodes" give rows such values
on purpose, then add shapes, then update and delete the same rows):
  * a shape is "needed" on the rows of a change the routing rules read: the
    new row of an INSERT, the old row of a DELETE, both of an UPDATE;
  * where PostgreSQL raises for a shape on a needed row, the plugin may
    write {"action":"S","event":"invalidated","shape":N,...,"reason":
    "evaluation failed: ..."} at that change (in that transaction), and then
    nothing more for that shape in that stream: no record of any later
    change, no T, no second S invalidated, also after restarts (the `sr`
    slot is read in batches, and an invalidation persists; an S removed of
    the shape is still written); records for it at the invalidating change
    itself are accepted if they fit some answer on the raising rows;
  * or it may route the change without invalidating the shape (the engine
    may not have needed to evaluate it: not an index candidate, or an
    UPDATE that did not change the shape's columns): the shape's records at
    that change must fit some true/false answer on the raising rows and
    PostgreSQL's answer on the others;
  * where PostgreSQL does not raise, the records of the shape are exactly
    the ones of the routing rules; in particular every other shape gets
    exactly its records on a change where some shape raised (the plugin
    once dropped the change for every shape after one raised), and shapes
    added after an invalidation on a row route that row's later changes
    normally;
  * if the plugin itself raises (the slot cannot get past the change), the
    run fails with DECODING FAILED, the change and the shapes PostgreSQL
    raises for on its rows.
Printed: the shapes that raise in the oracle and the erroring (shape,
image) pairs by SQLSTATE; per stream the invalidations observed, the changes
with a raising shape (invalidated there / routed without invalidation), the
other shapes checked exactly on them, and the later changes of rows an
invalidation happened on, for shapes added after it.

Access paths.  The plugin files each shape under the conjunct of least
estimated cost (selectivity, from pg_statistic when the table has been
analyzed, read in the walsender under the historic snapshot when the shape
is compiled: at its addition or at a stream start; else a fixed ranking by
operator; times one plus the shapes already under the same key; ties by a
fingerprint; a posting list that becomes crowded moves old shapes to other
paths: docs/predicate-index.md, "Choosing the path").  No record may depend
on that choice, so the workload also has:
  * permutation groups: conjunctions of 2-4 indexable conjuncts (equality,
    IN, = ANY, ranges, BETWEEN, the two bounds of a range as two conjuncts,
    LIKE prefixes, LIKE / ILIKE substrings, booleans, IS [NOT] NULL, array
    @> / &&, ORs of those; sometimes with a residual atom), and a share of
    the usual grammar's conjunctions, each also added with its conjuncts in
    other orders, flat and nested (a AND (b AND c)), by later shape
    additions (so at other loads).  On every change of dd.t, the orders
    that raise on no image and are active (and not invalidated) must get
    exactly the same records (PERMUTATION MISMATCH otherwise); PostgreSQL
    must agree first, on the images of both lives (exit 2);
  * crowded groups: 50-150 shapes sharing one unselective conjunct (f,
    a IS NOT NULL, t LIKE 'a%', a > -4, a IN (0, 1, 2), arr && ...), added
    in stages while the stream runs: conjunctions with selective conjuncts
    (the first ones may be filed under the still empty crowded key), then
    shapes whose only indexable conjunct is the crowded one in 2-4
    transactions (its posting list passes 16, 32, ...: the rebalance moves
    older shapes mid-stream), then more of both in 1-3, then half of its
    stage 1 and a fifth of the rest removed (and a few more added) in one,
    with DML between them (a crowd transaction sometimes has a DML
    statement too);
  * statistics: ANALYZE dd.t twice at set points (one in each half of the
    workload; maintenance may add more; autovacuum is off for dd.t), so
    shapes compiled before it use the fixed ranking and those after it (and
    every shape at a later start of the batched slot) statistics.
Printed: the groups, their shapes and transactions, the compared (change,
other order) pairs, and the shapes added before and after the first
ANALYZE (from the WAL).

The oracle evaluates each shape on the images its life names (the
transactions from the one after its addition to the one that removed it;
a column of dd.img gives each image's first and last naming transaction);
the new forms in batches (32 predicates as columns of one set query, split
in halves when it raises).

Contract applied (design.md section 2):
  * a shape routes exactly the changes of transactions that commit after the
    one that added it and before the one that removed it; so in the
    transaction that removes a shape, that shape routes nothing;
  * INSERT -> I to the shapes new matches; DELETE -> D to the shapes old
    matches; UPDATE, key unchanged -> U (both), I move in (new only), D move
    out (old only), in that order; UPDATE changing the key -> D (old) then I
    (new) without "move"; TRUNCATE -> one T to every shape on the table;
  * B/C only around transactions with at least one record, "lsn" = commit
    LSN; S added / removed in the transaction that made the catalog change,
    at its place in the WAL.
Mismatches fully explained by applying a removal at the remove's place in
the WAL instead of at commit (the plugin's behaviour before a009784) are
counted separately as "removal-timing deviations"; they fail the run only
with --strict-removal.

The workload (all randomness from --seed): multi-row INSERTs, INSERT ... ON
CONFLICT DO UPDATE / DO NOTHING (speculative insertions), UPDATEs of random
columns by id list or by a random predicate, no-op UPDATEs, key changes
(UPDATE ... SET id = ...), large incompressible (TOASTed) text values and
UPDATEs that leave them unchanged, DELETEs, TRUNCATE of one or two tables,
error episodes (above), changes to dd.u (a table without shapes),
savepoints rolled back or released, aborted transactions, ANALYZE / VACUUM
[FULL] / CLUSTER / REINDEX / ALTER TABLE SET / COMMENT (relation cache
invalidations, table rewrites) often followed by shape changes, shape
add/remove in transactions of their own, inside DML transactions and in
subtransactions, and a second session whose transactions stay open across
other sessions' commits (including shape additions and removals).
logical_decoding_work_mem is small (--work-mem), so transactions spill.

Two shape_router slots are created at the same point as the wal2json one:
`sr` is read in batches of random size (--sr-batch), so that the plugin
restarts from the slot's confirmed position many times, and `sr1` is read
in one call.  Both streams are compared; a mismatch in `sr` only is a
restart problem.  The slots are created (before the workload) and read from
the main session (--fresh-connections: one new connection per decoding
call).

Harness notes: wal2json writes numeric NaN/Infinity as null, so the table
has n_txt, generated as n::text, from which the harness takes n.  The
contract writes a jsonb JSON null as null, like SQL NULL; the value check
accepts that.

Replica identity DEFAULT / USING INDEX (--identity default / index; the
default is full, everything above).  dd.t keeps its primary key as its
replica identity (default), or has no primary key and a unique index on id
as its identity (index); dd.u is DEFAULT too.  The WAL then has the old
rows' keys only, and the plugin answers the old side of UPDATE and DELETE
from each stream's membership index (design.md sections 1-3); the records
must be those the same workload gives on a FULL table.  What changes:
  * old rows: a replica the harness keeps from the stream itself: the
    rows that exist when the slots are created (read then: nothing writes
    meanwhile), then wal2json's new rows of INSERT and UPDATE (an
    unchanged TOASTed value, in neither row of the WAL, is taken from the
    row it replaces); the old row of a change is the replica's row of its
    key (wal2json's "identity").  At the end the replica must be dd.t
    (else exit 2).  An image is also named while it is a row of the table
    (from the change that wrote it to the one that replaces it, the
    TRUNCATE that empties the table, or the end), and a shape's life starts
    at the transaction that adds it, for its initial members;
  * membership: the comparison keeps, per stream, what the plugin's
    membership must be: a shape's initial members are the rows its clause
    is true on (PostgreSQL's answer on their images) when the transaction
    that added it commits (add_shape's search sees every committed row and
    the transaction's own, under a SHARE lock held to commit), then every
    INSERT / UPDATE sets the key's shapes from the new row, DELETE removes
    it, TRUNCATE empties it.  The old side of UPDATE / DELETE is that
    membership, never an evaluation;
  * rows before the shapes: rows are loaded before the slots and before
    the shapes added before the slots, and every shape added later
    searches the rows that exist by then; error episodes give rows
    raising values before shapes are added over them;
  * shapes without members: the shapes added before the slots, and those
    of a transaction that changes dd.t after adding them (main
    transactions with a shape operation before a statement), route nothing
    (no record, no T) until a resync_shapes() transaction; the stream must
    write {"action":"S","event":"unsynced",...} once per slot: for the
    former in the first transaction with a change of dd.t (reason "...no
    members of the shape..."), for the latter in the adding transaction
    (reason "...changed the table..."); and S synced in the resync
    transaction, after which the shape routes from the re-sent members.
    The workload calls resync_shapes() in transactions of its own (planned
    early, so that the first shapes start routing, mid-workload, and now
    and then): the NULL form, all the shapes in one call, or one call per
    shape, each call in a savepoint, followed by a marker message (prefix
    dd_resync: the ids, or * for the NULL form) that tells the comparison
    what was re-sent; its return value must be the number of shapes asked
    for;
  * locks and snapshots: add_shape and resync_shapes take a SHARE lock,
    so the second session commits first when it has written dd.t (also in
    the middle of a main transaction that then adds a shape), and commits
    right after adding a shape itself.  A fifth of the main, shape and
    resync transactions are REPEATABLE READ (main ones sometimes
    SERIALIZABLE) with their snapshot taken before that commit: the search
    must still see those rows ("correct under every isolation level");
  * errors: add_shape / add_shapes / resync_shapes fail when the clause
    raises on an existing row (each call is in a savepoint; add_shapes
    falling back to each clause alone; a failed shape does not exist).  A
    failure must carry the CONTEXT "finding the rows of table ... (its
    initial members)" and an evaluation error's SQLSTATE, and some clause
    must raise on a row of dd.t then (as written, or in the search's own
    query, whose WHERE conjuncts the planner may reorder; in the
    transaction's view or, from a connection of its own, the latest
    committed rows): SEARCH MISMATCH otherwise.  A search that succeeds although the clause as written
    raises on a row (the plan did not evaluate it there) leaves that key's
    membership unknown to the harness: either answer is accepted at its
    next UPDATE / DELETE.  A DEFAULT-table UPDATE needs only the new row,
    a DELETE nothing: where PostgreSQL raises on the new row the shape may
    be invalidated ("evaluation failed") or routed by some answer, and the
    answer its records show is then its membership;
  * unchanged TOAST (big): the new row lacks the value and there is no old
    row.  The oracle is Kleene's logic over the predicate's boolean
    skeleton (bool_skeleton(): AND / OR / NOT over atoms; an atom is any
    other boolean expression, e.g. a comparison, (p) IS TRUE, COALESCE,
    CASE, BETWEEN) with a fourth value, unknown, for every atom that reads
    big: if the answer is still determined (true / false / null) the shape
    must route by it (PostgreSQL's answer on the whole row agrees, which is
    checked), else it must get {"action":"S","event":"invalidated",...,
    "reason":"column \"big\" was left out ..."} (shapes without members:
    may), unless the answer does not depend on the value at all (the
    predicate on the row with a dozen other values of big, none NULL:
    routing by PostgreSQL's answer is then accepted too; where it depends
    on the value, routing would be a guess, a mismatch even if right).
    An atom that raises on the row alone is unknown too, and allows
    an invalidation for the evaluation error.  An invalidation naming big
    where the answer is determined is a TOAST OVER-INVALIDATION mismatch
    (--lenient-toast, for triage, accepts them and counts them);
  * values: "new" lacks an unchanged TOASTed column and "unchanged_toast"
    lists it; the single-call slot sr1 is read with include-old: "old" is
    the key alone on a DELETE and on the D of a key change, absent
    elsewhere (what PostgreSQL logged).
Printed (keyed line per stream): the old sides answered from membership
(and how many of them the harness could not know), initial member keys,
S unsynced / synced, re-sent and tainted shapes, invalidations by cause,
the unchanged-TOAST pairs (determined / undetermined), and per run the
add_shape / resync_shapes errors by SQLSTATE.  Removal-timing deviations
are not looked for in this mode.

Run (as root, from the repository):
  make -s && make -s install && . test/lib.sh && \
  sr_virtualenv /usr/bin/python3 test/diff/decoding_diff.py --seed 1
  (... decoding_diff.py --seed 1 --identity default)

Exit status: 0 = no mismatch and enough changes and shapes; 1 = mismatches
(or too few changes / shapes, or the plugin raised); 2 = harness problem.
--no-nan-int-casts (triage) leaves numeric-to-integer casts out of the
grammar: numeric NaN and Infinity raise SQLSTATE 0A000 (feature not
supported) there, not a data exception.
"""

import argparse
import json
import random
import re
import sys
import time
from decimal import Decimal

import psycopg2

from grammar import CrowdedKeys

TABLE = 'dd.t'

# The table: id + 9 columns (+ n_txt, see below).  big is sometimes large
# and incompressible, so that it is stored out of line (TOAST) and UPDATEs
# leave it unchanged.
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
COLNAMES = [c for c, _ in COLUMNS]
COLTYPE = dict(COLUMNS)
NONKEY = COLNAMES[1:-1]         # the columns DML writes

# wal2json writes numeric NaN and infinities as null; n_txt, generated from
# n, gives the harness n's exact text.
GENERATED = {'n_txt': 'text GENERATED ALWAYS AS (n::text) STORED'}

SETUP_SQL = """
DROP SCHEMA IF EXISTS dd CASCADE;
CREATE SCHEMA dd;
CREATE TABLE dd.t (%s, PRIMARY KEY (id));
ALTER TABLE dd.t REPLICA IDENTITY FULL;
-- statistics only from the workload's own ANALYZE
ALTER TABLE dd.t SET (autovacuum_enabled = false);
CREATE TABLE dd.u (id int PRIMARY KEY, a int);
ALTER TABLE dd.u REPLICA IDENTITY FULL;
""" % ', '.join('%s %s' % (c, GENERATED.get(c, t)) for c, t in COLUMNS)

W2J_OPTIONS = ("'format-version', '2', 'include-transaction', 'true', "
               "'include-lsn', 'true', 'include-types', 'false', "
               "'add-tables', 'dd.t,dd.u,shape_router.shapes'")
SR_OPTIONS = "'include-lsn', 'true', 'include-xid', 'true'"

# --identity default / index: dd.t keeps PostgreSQL's default replica
# identity (its primary key), or has no primary key and a unique index on
# id as its identity (USING INDEX); the old rows come from the harness'
# replica (below).  wal2json leaves shape_router's initial-members messages
# out (binary); the harness' own markers (prefix dd_resync) stay in.
SETUP_SQL_KEYED = {
    'default': """
DROP SCHEMA IF EXISTS dd CASCADE;
CREATE SCHEMA dd;
CREATE TABLE dd.t (%s, PRIMARY KEY (id));
ALTER TABLE dd.t SET (autovacuum_enabled = false);
CREATE TABLE dd.u (id int PRIMARY KEY, a int);
""",
    'index': """
DROP SCHEMA IF EXISTS dd CASCADE;
CREATE SCHEMA dd;
CREATE TABLE dd.t (%s);
ALTER TABLE dd.t ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX t_id ON dd.t (id);
ALTER TABLE dd.t REPLICA IDENTITY USING INDEX t_id;
ALTER TABLE dd.t SET (autovacuum_enabled = false);
CREATE TABLE dd.u (id int PRIMARY KEY, a int);
"""}
KEY_INDEX = {'full': 't_pkey', 'default': 't_pkey', 'index': 't_id'}
IDENTITY_STMT = {'full': 'ALTER TABLE dd.t REPLICA IDENTITY FULL',
                 'default': 'ALTER TABLE dd.t REPLICA IDENTITY DEFAULT',
                 'index': 'ALTER TABLE dd.t REPLICA IDENTITY USING INDEX t_id'}
W2J_KEYED_OPTIONS = W2J_OPTIONS + ", 'filter-msg-prefixes', 'shape_router'"
# the slot read in one call also writes "old" (the key columns only)
SR1_KEYED_OPTIONS = SR_OPTIONS + ", 'include-old', 'on'"
RESYNC_PREFIX = 'dd_resync'
# the column that is sometimes stored out of line (TOAST)
TOAST_COL = 'big'

MAIN_ID_BASE = 1
SIDE_ID_BASE = 1000000       # the second session's rows


def q(s):
    """SQL string literal (standard_conforming_strings is on)."""
    return "'" + s.replace("'", "''") + "'"


def lsn_int(s):
    hi, lo = s.split('/')
    return (int(hi, 16) << 32) | int(lo, 16)


def fail_harness(msg):
    print('decoding_diff: HARNESS PROBLEM: %s' % msg, flush=True)
    sys.exit(2)


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------

TEXTS = ['', 'a', 'A', 'ab', 'abc', 'Abc', 'abd', 'abcdef', 'b', 'ba', 'z',
         'héllo', 'HÉLLO', '日本語', '😀', 'a%c', 'a_c', "it's", 'x y', '0',
         '10', 'p1', 'p2x', 'null']
NUMERICS = ['0', '1', '-1', '2', '3', '1.5', '1.50', '-0.5', '0.000', '10',
            "'NaN'", "'Infinity'", "'-Infinity'", '1e20', '-5', '5', '0.1',
            '123456789.123456789']
TIMESTAMPTZS = ['2020-01-01 00:00:00+00', '2020-01-01 01:00:00+01',
                '2019-12-31 19:00:00-05', '2020-01-01 00:00:00.5+00',
                '2020-01-01 12:00:00+00', '2020-01-02 00:00:00+14',
                '2019-12-31 23:59:59.999999+00', '2020-06-01 00:00:00+02',
                'infinity', '-infinity']
JSON_KEYS = ['a', 'b', 'c', 'é']
JSON_STRS = ['', 'x', 'y', '1', 'é']
# t values that some casts and functions accept and others refuse: integers
# (with spaces and signs), decimals, too large for int4, NaN, booleans; and
# text that is an invalid regular expression or LIKE pattern.
ERR_TEXTS = ['7', '-3', '42', '3', '1.5', ' 5 ', '+8', '99999999999', 'NaN',
             '1e3', 'true', 'f', 'a(', 'x\\', '[b']
BIG_PREFIXES = ['p1', 'p2', 'q', 'P1']
ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
OPS = ['=', '<>', '<', '<=', '>', '>=']


class Gen(CrowdedKeys):
    """Rows, predicates and statements.  All randomness comes from self.r."""

    def __init__(self, seed, nan_int_casts=True):
        self.r = random.Random(seed)
        # weight of a_erroring among the atoms
        self.err_weight = 4
        self.nan_int_casts = nan_int_casts
        self.perm_share = 0.05      # shapes that are perm_group()s
        self.perm_usual = 0.25      # conjunctive pred()s also reordered
        self.perm_queue = []        # (clause, tag) still to add
        self.n_perm_groups = 0
        self.last_parts = None      # the conjuncts of pred()'s last AND
        self.id_hint = 400          # ids in use (the workload updates it)

    def chance(self, p):
        return self.r.random() < p

    def pick(self, seq):
        return self.r.choice(seq)

    # ---- constants ---------------------------------------------------------

    def int_lit(self, wide=False):
        x = self.r.random()
        if x < 0.88:
            return str(self.r.randint(-5, 5))
        if x < 0.95:
            return self.pick(['100', '-100', '0'])
        if wide:
            return self.pick(['9223372036854775807', '-9223372036854775808',
                              '1099511627776'])
        return self.pick(['2147483647', '-2147483648'])

    def text_lit(self):
        return q(self.pick(TEXTS))

    def num_lit(self):
        return self.pick(NUMERICS)

    def ts_lit(self):
        return q(self.pick(TIMESTAMPTZS))

    def json_scalar(self):
        return self.pick([0, 1, 2, -1, 1.5, True, False, None,
                          self.pick(JSON_STRS)])

    def json_value(self, depth=0):
        x = self.r.random()
        if depth < 2 and x < 0.2:
            return {self.pick(JSON_KEYS): self.json_value(depth + 1)
                    for _ in range(self.r.randint(0, 2))}
        if depth < 2 and x < 0.3:
            return [self.json_value(depth + 1)
                    for _ in range(self.r.randint(0, 3))]
        return self.json_scalar()

    def json_doc(self):
        x = self.r.random()
        if x < 0.65:
            v = {k: self.json_value(1) for k in
                 self.r.sample(JSON_KEYS, self.r.randint(0, 3))}
        elif x < 0.8:
            v = [self.json_value(1) for _ in range(self.r.randint(0, 3))]
        else:
            v = self.json_scalar()      # top-level scalars, JSON null too
        return q(json.dumps(v, ensure_ascii=False)) + '::jsonb'

    def arr_lit(self, maxlen=4):
        elems = []
        for _ in range(self.r.randint(0, maxlen)):
            elems.append('NULL' if self.chance(0.1)
                         else str(self.r.randint(-3, 3)))
        return "'{%s}'::int[]" % ','.join(elems)

    def big_lit(self):
        x = self.r.random()
        if x < 0.45:
            return 'NULL'
        pre = self.pick(BIG_PREFIXES)
        if x < 0.75:
            return q(pre + self.pick(['', 'a', 'short', '1']))
        # incompressible and larger than the TOAST threshold: out of line
        n = self.r.randint(2500, 4500)
        return q(pre + ''.join(self.r.choice(ALNUM) for _ in range(n)))

    def value(self, col):
        if col != 'big' and self.chance(0.1):
            return 'NULL'
        return {
            'a': lambda: self.int_lit(),
            'b': lambda: self.int_lit(wide=True),
            't': lambda: (q(self.pick(ERR_TEXTS)) if self.chance(0.25)
                          else self.text_lit()),
            'f': lambda: self.pick(['true', 'false']),
            'n': self.num_lit,
            'ts': self.ts_lit,
            'j': self.json_doc,
            'arr': self.arr_lit,
            'big': self.big_lit,
        }[col]()

    def row_values(self, rid):
        return '(%d, %s)' % (rid, ', '.join(self.value(c) for c in NONKEY))

    # a value for SET: a literal or a simple expression of the old value
    # that cannot raise an error
    def set_expr(self, col):
        if self.chance(0.7):
            return self.value(col)
        return self.pick({
            'a': ['a % 3', 'abs(a % 7)', 'COALESCE(a, 0) % 5 + 1', 'NULL'],
            'b': ['b % 4', 'COALESCE(b % 1000, 7)', 'a'],
            't': ["t || 'x'", 'upper(t)', "left(t, 1)", "COALESCE(t, 'a')"],
            'f': ['NOT f', 'f IS NULL', 'COALESCE(a > 0, f)'],
            'n': ['n + 1', "n * 2", 'round(n, 0)', "a::numeric"],
            'ts': ["ts + interval '1 hour'", "ts - interval '1 day'"],
            'j': ["j || '{\"c\": 1}'",
                  "CASE WHEN jsonb_typeof(j) = 'object' THEN j - 'a' END",
                  "jsonb_build_object('a', a)",
                  "'null'::jsonb"],
            'arr': ["arr[1:2]", "COALESCE(arr, '{}') || a",
                    "ARRAY[a, a]"],
            'big': ["big || 'z'", "left(big, 3)", "'p1' || repeat('x', 5)"],
        }[col])

    # ---- predicate grammar ---------------------------------------------------

    def pred(self, depth=0):
        if depth == 0:
            self.last_parts = None
        p_atom = [0.4, 0.55, 0.7, 0.9][min(depth, 3)]
        if depth >= 4 or self.chance(p_atom):
            return self.atom()
        k = self.r.random()
        if k < 0.38:
            parts = [self.pred(depth + 1) for _ in range(self.r.randint(2, 3))]
            if depth == 0:
                self.last_parts = parts     # (shape(): the same, reordered)
            return '(%s)' % ' AND '.join(parts)
        if k < 0.76:
            return '(%s)' % ' OR '.join(
                self.pred(depth + 1) for _ in range(self.r.randint(2, 3)))
        if k < 0.88:
            return 'NOT (%s)' % self.pred(depth + 1)
        if k < 0.94:
            return '(%s) IS %s%s' % (self.pred(depth + 1),
                                     self.pick(['', 'NOT ']),
                                     self.pick(['TRUE', 'FALSE', 'UNKNOWN']))
        return 'COALESCE(%s, %s)' % (self.pred(depth + 1),
                                     self.pick(['true', 'false']))

    def atom(self):
        forms = [
            (10, self.a_compare),
            (3, self.a_compare_flipped),
            (5, self.a_in_list),
            (3, self.a_any_all),
            (4, self.a_between),
            (4, self.a_null_test),
            (3, self.a_bool),
            (3, self.a_like),
            (6, self.a_jsonb),
            (5, self.a_array),
            (5, self.a_id),
            (2, self.a_col_col),
            (2, self.a_distinct),
            (3, self.a_big),
            (1, self.a_constant),
            (self.err_weight, self.a_erroring),
        ]
        total = sum(w for w, _ in forms)
        x = self.r.uniform(0, total)
        for w, f in forms:
            x -= w
            if x <= 0:
                return f()
        return forms[-1][1]()

    def const_for(self, col):
        return {
            'id': lambda: str(self.r.randint(0, 400)),
            'a': self.int_lit,
            'b': lambda: self.int_lit(wide=True),
            't': self.text_lit,
            'f': lambda: self.pick(['true', 'false']),
            'n': self.num_lit,
            'ts': self.ts_lit,
        }[col]()

    SCALARS = ['id', 'a', 'b', 't', 'f', 'n', 'ts']

    def a_compare(self):
        col = self.pick(self.SCALARS[1:])
        if self.chance(0.03):
            return '%s %s NULL' % (col, self.pick(OPS))
        return '%s %s %s' % (col, self.pick(OPS), self.const_for(col))

    def a_compare_flipped(self):
        col = self.pick(self.SCALARS)
        return '%s %s %s' % (self.const_for(col), self.pick(OPS), col)

    def a_in_list(self):
        col = self.pick(['a', 'b', 't', 'n', 'ts', 'f', 'id'])
        n = self.r.randint(15, 30) if self.chance(0.2) else self.r.randint(1, 5)
        elems = []
        for _ in range(n):
            if self.chance(0.05):
                elems.append('NULL')
            else:
                elems.append(self.const_for(col))
        return '%s %sIN (%s)' % (col, 'NOT ' if self.chance(0.3) else '',
                                 ', '.join(elems))

    def a_any_all(self):
        col = self.pick(['a', 'b', 'id'])
        elems = ['NULL' if self.chance(0.06) else str(self.r.randint(-5, 5))
                 for _ in range(self.r.randint(0, 5))]
        return "%s %s %s('{%s}'%s)" % (
            col, self.pick(['=', '=', '<>', '<', '>=']),
            self.pick(['ANY', 'ALL']), ','.join(elems),
            self.pick(['', '::int8[]']))

    def a_between(self):
        col = self.pick(['a', 'b', 'n', 'ts', 't', 'id'])
        lo, hi = self.const_for(col), self.const_for(col)
        return '%s %sBETWEEN %s%s AND %s' % (
            col, 'NOT ' if self.chance(0.25) else '',
            'SYMMETRIC ' if self.chance(0.25) else '', lo, hi)

    def a_null_test(self):
        return '%s IS %sNULL' % (self.pick(COLNAMES[1:]),
                                 self.pick(['', 'NOT ']))

    def a_bool(self):
        return self.pick(['f', 'NOT f', 'f = true', 'f = false', 'f <> true',
                          'f IS TRUE', 'f IS NOT TRUE', 'f IS FALSE',
                          'f IS NOT FALSE', 'f IS UNKNOWN', 'f IS NOT UNKNOWN',
                          'f = (a > 0)'])

    def a_like(self):
        col = self.pick(['t', 't', 'big'])
        op = self.pick(['LIKE', 'LIKE', 'LIKE', 'NOT LIKE', 'ILIKE'])
        pat = self.pick(['a%', 'ab%', 'abc%', 'p1%', 'p2%', 'h%', 'A%', '%c',
                         'a_c', '%', '', 'x%', 'q%', '日%', 'a\\%%',
                         # infixes (n-gram index)
                         '%bc%', '%ABC%', '%b_d%', '%1s%', '%hort%', '%本%',
                         '%Hé%', '%x%'])
        return '%s %s %s' % (col, op, q(pat))

    def a_jsonb(self):
        k = self.r.randint(0, 9)
        key = self.pick(JSON_KEYS)
        if k == 0:
            return "j ->> %s = %s" % (q(key), q(str(self.pick(
                [0, 1, 2, 'x', 'y', '', 'true', 'false', '1.5']))))
        if k == 1:
            return "j ->> %s IS %sNULL" % (q(key), self.pick(['', 'NOT ']))
        if k == 2:
            doc = {key: self.json_scalar()} if self.chance(0.8) else {}
            return "j @> %s" % q(json.dumps(doc, ensure_ascii=False))
        if k == 3:
            return "j ? %s" % q(key)
        if k == 4:
            return "j -> %s = %s::jsonb" % (q(key), q(json.dumps(
                self.json_scalar())))
        if k == 5:
            return "jsonb_typeof(j) = %s" % q(self.pick(
                ['object', 'array', 'number', 'string', 'boolean', 'null']))
        if k == 6:
            return "j = %s::jsonb" % q(self.pick(
                ['{}', '[]', 'null', '1', '"x"', '{"a": 1}', 'true']))
        if k == 7:
            return "j @> %s" % q(json.dumps([self.json_scalar()]))
        if k == 8:
            return "j ?| %s" % q('{%s}' % ','.join(
                self.r.sample(JSON_KEYS, 2)))
        return "j <@ %s" % q(json.dumps(
            {kk: self.json_scalar() for kk in self.r.sample(JSON_KEYS, 3)}))

    def a_array(self):
        k = self.r.randint(0, 7)
        lit = self.arr_lit(3).replace('::int[]', '')
        if k == 0:
            return 'arr @> %s' % lit
        if k == 1:
            return 'arr && %s' % lit
        if k == 2:
            return 'arr <@ %s' % lit
        if k == 3:
            return '%d = ANY(arr)' % self.r.randint(-3, 3)
        if k == 4:
            return "arr = '{}'"
        if k == 5:
            return 'cardinality(arr) %s %d' % (self.pick(OPS),
                                               self.r.randint(0, 3))
        if k == 6:
            return 'arr[1] %s %d' % (self.pick(OPS), self.r.randint(-3, 3))
        return 'arr %s %s' % (self.pick(OPS), lit)

    def a_id(self):
        k = self.r.randint(0, 4)
        if k == 0:
            return 'id %% %d = %d' % (self.pick([2, 3, 5, 7]),
                                      self.r.randint(0, 1))
        if k == 1:
            return 'id %s %d' % (self.pick(['<', '>', '<=', '>=']),
                                 self.r.randint(0, 600))
        if k == 2:
            lo = self.r.randint(0, 500)
            return 'id BETWEEN %d AND %d' % (lo, lo + self.r.randint(0, 200))
        if k == 3:
            return 'id >= %d' % SIDE_ID_BASE
        return 'id % 10 = COALESCE(a, 0)'

    def a_col_col(self):
        return self.pick(['a < b', 'a = b', 'a::bigint <> b', 'a >= id % 5',
                          'a IS DISTINCT FROM b', 'n > a', "t = big",
                          'b = id'])

    def a_distinct(self):
        col = self.pick(['a', 'b', 't', 'n', 'f'])
        v = 'NULL' if self.chance(0.2) else self.const_for(col)
        return '%s IS %sDISTINCT FROM %s' % (col, self.pick(['', 'NOT ']), v)

    def a_big(self):
        return self.pick(['length(big) > 3000', 'length(big) < 10',
                          'big IS NULL', 'big IS NOT NULL', "big > 'p2'",
                          "big = 'p1short'", "big LIKE 'p1%'",
                          "left(big, 1) = 'q'", "big ~ '^P'"])

    def a_constant(self):
        return self.pick(['true', 'false', 'NULL::bool', '1 = 1'])

    # ---- expressions that raise on some rows ------------------------------
    #
    # Each form gives (expression, guard): the expression raises on some
    # rows (a = 0, t not a number, n < 0, ...) and is true on others; the
    # guard is a condition under which it (mostly) does not raise.
    # a_erroring() writes the expression alone, guarded before it (AND, OR
    # NOT, CASE: PostgreSQL evaluates left to right, so these rarely raise)
    # or guarded after it (raises as written).

    def err_form(self):
        """-> (expression, guard, window): the guard keeps the expression
        from raising (mostly); the window lets it raise on a few values."""
        g = self
        op = g.pick(OPS)
        c = g.r.randint(-3, 5)
        key = q(g.pick(JSON_KEYS))
        forms = [
            # division and modulo by a column that can be 0
            lambda: ('b / a %s %d' % (op, c), 'a <> 0', None),
            lambda: ('b %% a = %d' % g.r.randint(0, 2), 'a <> 0', None),
            lambda: ('id / a %s %d' % (op, g.r.randint(0, 100)), 'a <> 0',
                     None),
            lambda: ('n / a %s %s' % (op, g.num_lit()), 'a <> 0', None),
            lambda: ('n / n = 1', 'n <> 0', None),
            lambda: ('mod(b, a) = 0', 'a <> 0', None),
            lambda: ('a / arr[1] %s %d' % (op, c), 'arr[1] <> 0', None),
            lambda: ('100 / (a - %d) %s %d' % (c, op, c), 'a <> %d' % c,
                     None),
            # overflow
            lambda: ('a * 2 %s %d' % (op, c), 'a BETWEEN -1000 AND 1000',
                     None),
            lambda: ('b + b %s %d' % (op, c), 'b BETWEEN -1000 AND 1000',
                     None),
            lambda: ('-a %s %d' % (op, c), 'a > -2147483648', None),
            # casts that can fail
            lambda: ('t::int %s %d' % (op, c), "t ~ '^ *[-+]?[0-9]+ *$'",
                     "t ~ '^[-+ 0-9.e]+$'"),
            lambda: ('t::numeric %s %s' % (op, g.num_lit()),
                     "t ~ '^[-+]?[0-9.]+$'", "t ~ '^[-+ 0-9.eNa]+$'"),
            lambda: ('t::bool', "t IN ('t', 'f', 'true', 'yes', 'off', '0')",
                     "t ~ '^[tfyno0-9]'"),
            lambda: ('(j ->> %s)::int %s %d' % (key, op, c),
                     "(j ->> %s) ~ '^-?[0-9]+$'" % key,
                     "jsonb_typeof(j -> %s) <> 'string'" % key),
            lambda: ('(j -> %s)::int %s %d' % (key, op, c),
                     "jsonb_typeof(j -> %s) = 'number'" % key,
                     "jsonb_typeof(j -> %s) IN ('number', 'null')" % key),
            lambda: ('(j ->> %s)::numeric %s %s' % (key, op, g.num_lit()),
                     "jsonb_typeof(j -> %s) = 'number'" % key,
                     "jsonb_typeof(j -> %s) <> 'string'" % key),
            lambda: ('(j -> %s)::bool' % key,
                     "jsonb_typeof(j -> %s) = 'boolean'" % key,
                     "jsonb_typeof(j -> %s) IN ('boolean', 'null')" % key),
            lambda: ('jsonb_array_length(j) %s %d' % (op, g.r.randint(0, 3)),
                     "jsonb_typeof(j) = 'array'",
                     "jsonb_typeof(j) IN ('array', 'string')"),
            lambda: ('b::int %s %d' % (op, c),
                     'b BETWEEN -2147483648 AND 2147483647', None),
            lambda: ('a::int2 %s %d' % (op, c), 'a BETWEEN -32768 AND 32767',
                     None),
            # functions outside their domain
            lambda: ('sqrt(n) %s %s' % (op, g.num_lit()), 'n >= 0',
                     'n >= -0.5'),
            lambda: ('ln(n) %s %s' % (op, g.num_lit()), 'n > 0', 'n >= 0'),
            lambda: ('log(n) %s %s' % (op, g.num_lit()), 'n > 0', 'n >= 0'),
            lambda: ('power(n, 0.5) %s %s' % (op, g.num_lit()), 'n >= 0',
                     'n >= -0.5'),
            lambda: ('exp(n) %s %s' % (op, g.num_lit()), 'n < 100', None),
            lambda: ('sqrt(a) %s %d' % (op, c), 'a >= 0', 'a >= -1'),
            lambda: ('ln(b) %s %d' % (op, c), 'b > 0', 'b >= 0'),
            lambda: ('log(a) %s %d' % (op, c), 'a > 0', 'a >= 0'),
            lambda: ('power(a, -1) %s 0.5' % op, 'a <> 0', None),
            lambda: ('factorial(a) %s %d' % (op, c * 10),
                     'a BETWEEN 0 AND 20', 'a BETWEEN -1 AND 20'),
            lambda: ('substr(t, 1, a) = %s' % g.text_lit(), 'a >= 0',
                     'a >= -1'),
            lambda: ("chr(a) = 'a'", 'a > 0', 'a >= 0'),
            lambda: ("'abc' ~ t", "t !~ '[\\\\([]'", None),
            lambda: ("'x' LIKE t", "right(t, 1) <> '\\'", None),
        ]
        if g.nan_int_casts:
            # numeric NaN / Infinity to integer raise SQLSTATE 0A000, not a
            # data exception
            forms += [
                lambda: ('n::int %s %d' % (op, c), 'n BETWEEN -1000 AND 1000',
                         'n < 1000'),
                lambda: ('n::bigint %s %d' % (op, c),
                         'n BETWEEN -1000 AND 1000', "n <> 'NaN'"),
            ]
        return g.pick(forms)()

    def a_erroring(self):
        # Every shape that raises somewhere is invalidated at its first
        # evaluation error, so the useful ones raise on few rows: mostly
        # behind a window that lets a few values through.
        expr, guard, window = self.err_form()
        k = self.r.random()
        if window is not None and k < 0.5:
            if self.chance(0.7):
                return '(%s AND %s)' % (window, expr)
            return '(CASE WHEN %s THEN %s ELSE false END)' % (window, expr)
        k = self.r.random()
        if k < 0.4:
            return expr
        if k < 0.55:
            return '(%s AND %s)' % (guard, expr)
        if k < 0.65:
            return '(NOT (%s) OR %s)' % (guard, expr)
        if k < 0.75:
            return '(CASE WHEN %s THEN %s END)' % (guard, expr)
        return '(%s AND %s)' % (expr, guard)

    # a predicate that never raises (for the workload's own statements)
    def clean_pred(self, depth=0):
        saved = self.err_weight
        self.err_weight = 0
        try:
            return self.pred(depth)
        finally:
            self.err_weight = saved

    # a shape: (where clause or None for "every row")
    def shape(self):
        """-> (where clause, or None for "every row"; tag): ('perm', group)
        for a conjunction that is also added in other orders (by later
        calls, so with other shapes around), else None."""
        if self.perm_queue and self.chance(0.5):
            return self.perm_queue.pop(0)
        if self.chance(0.02):
            return None, None
        if self.chance(self.perm_share):
            variants = self.perm_group()
        else:
            p = self.pred()
            parts = self.last_parts
            if parts is None or not self.chance(self.perm_usual):
                return p, None
            # the usual grammar: its atoms may raise, and then the orders
            # are not compared
            variants = [p] + self.permutations(parts, self.r.randint(1, 2))[1:]
        gid = self.n_perm_groups
        self.n_perm_groups += 1
        self.perm_queue += [(v, ('perm', gid)) for v in variants[1:]]
        return variants[0], ('perm', gid)

    # ---- conjunctions in every order, crowded keys -------------------------
    #
    # The plugin files a shape under its conjunct of least estimated cost
    # (selectivity, from pg_statistic or a fixed ranking by operator, times
    # one plus the shapes already under the key), ties by a fingerprint,
    # and moves old shapes out of posting lists that become crowded.  None
    # of that may change a record.  These forms never contain an erroring
    # atom: AND is commutative only where nothing raises.

    def clean_atom(self):
        saved = self.err_weight
        self.err_weight = 0
        try:
            return self.atom()
        finally:
            self.err_weight = saved

    def id_lit(self):
        # ids in use: the main session's are below next_id (set by the
        # workload), the side session's from SIDE_ID_BASE
        if self.chance(0.1):
            return str(SIDE_ID_BASE + self.r.randint(0, 300))
        return str(self.r.randint(0, max(400, self.id_hint)))

    # an indexable conjunct: equality / IN / = ANY, a range or BETWEEN, LIKE
    # prefix, LIKE / ILIKE substring, a boolean, IS [NOT] NULL, array @> /
    # &&; sometimes an OR of those, or the two bounds of one column
    def ix_conjuncts(self, avoid=()):
        if self.chance(0.08):
            col = self.pick([c for c in ('id', 'a', 'b', 'n', 'ts', 't')
                             if c not in avoid])
            c = self.id_lit if col == 'id' else lambda: self.const_for(col)
            return ['%s %s %s' % (col, self.pick(['>', '>=']), c()),
                    '%s %s %s' % (col, self.pick(['<', '<=']), c())]
        if self.chance(0.12):
            return ['(%s)' % ' OR '.join(self.ix_atom(avoid)
                                         for _ in range(self.r.randint(2, 3)))]
        return [self.ix_atom(avoid)]

    def ix_atom(self, avoid=()):
        k = self.r.randint(0, 11)
        sc = [c for c in self.SCALARS if c not in avoid]
        txt = [c for c in ('t', 'big') if c not in avoid] or ['t']

        def const(col):
            return self.id_lit() if col == 'id' else self.const_for(col)
        if k <= 2:
            col = self.pick(sc)
            if self.chance(0.15):
                return '%s = %s' % (const(col), col)
            return '%s = %s' % (col, const(col))
        if k == 3:
            col = self.pick([c for c in sc if c != 'f'] or sc)
            elems = ', '.join(const(col) for _ in range(self.r.randint(1, 4)))
            if col in ('a', 'b', 'id') and self.chance(0.4):
                return "%s = ANY('{%s}'%s)" % (col, elems,
                                               self.pick(['', '::int8[]']))
            return '%s IN (%s)' % (col, elems)
        if k == 4:
            col = self.pick([c for c in sc if c != 'f'] or sc)
            if self.chance(0.2):
                return '%s %s %s' % (const(col),
                                     self.pick(['<', '<=', '>', '>=']), col)
            return '%s %s %s' % (col, self.pick(['<', '<=', '>', '>=']),
                                 const(col))
        if k == 5:
            col = self.pick([c for c in sc if c != 'f'] or sc)
            return '%s BETWEEN %s%s AND %s' % (
                col, 'SYMMETRIC ' if self.chance(0.2) else '', const(col),
                const(col))
        if k == 6:
            return '%s LIKE %s' % (self.pick(txt), q(self.pick(
                ['a%', 'ab%', 'abc%', 'p1%', 'p2%', 'q%', 'h%', 'A%', '1%',
                 '日%', 'x%', 'P1%'])))
        if k == 7:
            return '%s %s %s' % (self.pick(txt), self.pick(['LIKE', 'ILIKE']),
                                 q(self.pick(['%bc%', '%ABC%', '%b%', '%1s%',
                                              '%hort%', '%本%', '%Hé%', '%x%',
                                              '%p1%'])))
        if k == 8 and self.chance(0.5):
            # regular expressions with literal runs (n-gram index)
            return '%s ~ %s' % (self.pick(txt), q(self.pick(
                ['bc', 'ab+c', 'hor?t', 'p1', '(?:p1|p2)x', '本', 'Hé+',
                 '^ab', 'x(yz)?1', 'b\\.', '[ab]c'])))
        if k == 8 and 'f' not in avoid:
            return self.pick(['f', 'NOT f', 'f IS TRUE', 'f IS FALSE',
                              'f = true', 'f = false'])
        if k == 9:
            return '%s IS %sNULL' % (self.pick([c for c in COLNAMES[1:-1]
                                                if c not in avoid]),
                                     self.pick(['', 'NOT ']))
        if k == 10 and 'arr' not in avoid:
            lit = self.arr_lit(3).replace('::int[]', '')
            return self.pick(['arr @> %s', 'arr && %s', '%s && arr']) % lit
        col = self.pick([c for c in ('id', 'b') if c not in avoid] or sc)
        return '%s = %s' % (col, const(col))

    # a conjunct whose fixed estimate (without statistics) is above
    # equality's: a one-sided range, IS NULL, a boolean, a substring, a LIKE
    # prefix, array elements
    def weak_atom(self, avoid=()):
        k = self.r.randint(0, 5)
        if k == 0:
            col = self.pick([c for c in ('id', 'a', 'b', 'n', 'ts', 't')
                             if c not in avoid])
            c = self.id_lit() if col == 'id' else self.const_for(col)
            return '%s %s %s' % (col, self.pick(['<', '<=', '>', '>=']), c)
        if k == 1:
            return '%s IS NULL' % self.pick([c for c in COLNAMES[1:-1]
                                             if c not in avoid])
        if k == 2 and 'f' not in avoid:
            return self.pick(['f', 'NOT f', 'f IS FALSE'])
        txt = [c for c in ('t', 'big') if c not in avoid]
        if k == 3 and txt:
            return '%s %s %s' % (self.pick(txt), self.pick(['LIKE', 'ILIKE']),
                                 q(self.pick(['%bc%', '%b%', '%1s%', '%hort%',
                                              '%本%', '%x%', '%p1%'])))
        if k == 4 and txt:
            return '%s LIKE %s' % (self.pick(txt), q(self.pick(
                ['a%', 'ab%', 'p1%', 'p2%', 'q%', 'h%', 'x%'])))
        if 'arr' not in avoid:
            return 'arr && %s' % self.arr_lit(3).replace('::int[]', '')
        return 'a IS NULL'

    # a conjunction written with random nesting: a AND (b AND c), ...
    def conj_text(self, parts, nest):
        if len(parts) == 1:
            return parts[0]
        if not nest or len(parts) == 2 and self.chance(0.5):
            return ' AND '.join(parts)
        i = self.r.randint(1, len(parts) - 1)
        sides = []
        for side in (parts[:i], parts[i:]):
            t = self.conj_text(side, self.chance(0.5))
            sides.append('(%s)' % t if len(side) > 1 else t)
        return ' AND '.join(sides)

    def permutations(self, parts, limit):
        """The conjunction as written, then up to limit others: its
        conjuncts permuted, flat or nested."""
        out = [' AND '.join(parts)]
        for _ in range(limit * 4):
            if len(out) > limit:
                break
            perm = list(parts)
            self.r.shuffle(perm)
            t = self.conj_text(perm, len(perm) > 2 and self.chance(0.5))
            if t not in out:
                out.append(t)
        return out

    # 2-4 indexable conjuncts (sometimes with a residual atom), and the same
    # conjunction in other orders
    def perm_group(self):
        n = self.r.randint(2, 4)
        parts = []
        while len(parts) < n:
            c = self.ix_conjuncts()
            if len(parts) + len(c) > n:
                c = [self.ix_atom()]
            parts += c
        if self.chance(0.2):
            parts.append(self.clean_atom())
        return self.permutations(parts, self.r.randint(1, 3))

    # an atom the predicate index does not route on
    def nonindex_atom(self):
        return self.pick([
            "j ->> %s = %s" % (q(self.pick(JSON_KEYS)),
                               q(self.pick(['x', 'y', '1', '0', '']))),
            "j ? %s" % q(self.pick(JSON_KEYS)),
            "jsonb_typeof(j) = %s" % q(self.pick(['object', 'array',
                                                  'number'])),
            'cardinality(arr) %s %d' % (self.pick(OPS), self.r.randint(0, 3)),
            'id %% %d = %d' % (self.pick([2, 3, 5]), self.r.randint(0, 1)),
            'a < b', 'a IS DISTINCT FROM b', 'n > a',
            'length(t) %s %d' % (self.pick(OPS), self.r.randint(0, 3)),
            "upper(t) = %s" % q(self.pick(['ABC', 'A', 'HÉLLO', 'P1'])),
            "left(big, 1) = 'q'", 'length(big) > 3000',
            "COALESCE(a, 0) %% 3 = %d" % self.r.randint(0, 2)])

    # the unselective conjuncts many shapes share: (conjunct, its column)
    CROWD_KEYS = [
        ('f', 'f'), ('NOT f', 'f'), ('f IS TRUE', 'f'),
        ('a IS NOT NULL', 'a'), ('t IS NOT NULL', 't'), ('big IS NULL', 'big'),
        ('ts IS NOT NULL', 'ts'),
        ("t LIKE 'a%'", 't'), ("big LIKE 'p1%'", 'big'), ("t LIKE '%b%'", 't'),
        ("t ILIKE '%A%'", 't'),
        ('a > -4', 'a'), ('b BETWEEN -5 AND 100', 'b'), ('n >= -1', 'n'),
        ("ts > '2000-01-01 00:00:00+00'", 'ts'),
        ('a = 1', 'a'), ('a IN (0, 1, 2)', 'a'), ('b = 0', 'b'),
        ("arr && '{0,1,2}'", 'arr'), ("arr @> '{1}'", 'arr'),
    ]


# --------------------------------------------------------------------------
# The boolean skeleton of a predicate (for the unchanged-TOAST oracle)
# --------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
    | (?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)
    | (?P<punct>[(),\[\]])
    | (?P<op>::|[-+*/<>=~!@#%^&|`?.:]+)
    )""", re.X)


def sql_tokens(text):
    """-> [(kind, text, start, end)] of a predicate (the grammar's subset of
    SQL: standard strings, words, numbers, operators, brackets)."""
    out = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError('cannot tokenise %r at %d' % (text, pos))
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.start(kind), m.end()))
        pos = m.end()
    return out


def bool_skeleton(text):
    """The predicate as a tree of AND / OR / NOT over atoms:
    ('and', [..]) / ('or', [..]) / ('not', x) / ('atom', sql text).  An atom
    is any other boolean expression (a comparison, a test, (p) IS TRUE,
    COALESCE(p, b), CASE ..., BETWEEN x AND y): Kleene's logic applies to
    the connectives only."""
    toks = sql_tokens(text)
    n = len(toks)

    def kw(i, *words):
        return i < n and toks[i][0] == 'word' and toks[i][1].upper() in words

    def parse_or(i):
        parts = []
        node, i = parse_and(i)
        parts.append(node)
        while kw(i, 'OR'):
            node, i = parse_and(i + 1)
            parts.append(node)
        return (parts[0] if len(parts) == 1 else ('or', parts)), i

    def parse_and(i):
        parts = []
        node, i = parse_not(i)
        parts.append(node)
        while kw(i, 'AND'):
            node, i = parse_not(i + 1)
            parts.append(node)
        return (parts[0] if len(parts) == 1 else ('and', parts)), i

    def parse_not(i):
        if kw(i, 'NOT'):
            node, i = parse_not(i + 1)
            return ('not', node), i
        return parse_atom(i)

    def skip_group(i):
        # toks[i] is '(' or '[': the index after its match
        depth = 0
        while i < n:
            t = toks[i][1]
            if toks[i][0] == 'punct' and t in '([':
                depth += 1
            elif toks[i][0] == 'punct' and t in ')]':
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        raise ValueError('unbalanced brackets in %r' % text)

    def parse_atom(i):
        start = i
        between = 0
        while i < n:
            k, t = toks[i][0], toks[i][1]
            if k == 'punct' and t in '([':
                i = skip_group(i)
                continue
            if k == 'punct' and t in ')]':
                break
            if k == 'word':
                u = t.upper()
                if u == 'CASE':
                    depth = 1
                    i += 1
                    while i < n and depth:
                        if toks[i][0] == 'punct' and toks[i][1] in '([':
                            i = skip_group(i)
                            continue
                        if kw(i, 'CASE'):
                            depth += 1
                        elif kw(i, 'END'):
                            depth -= 1
                        i += 1
                    continue
                if u == 'BETWEEN':
                    between += 1
                elif u == 'AND' and between:
                    between -= 1
                elif u in ('AND', 'OR') and i > start:
                    break
                elif u == 'NOT' and i == start:
                    break
            i += 1
        if i == start:
            raise ValueError('empty atom in %r at token %d' % (text, i))
        # a parenthesised boolean expression alone: its own skeleton
        if toks[start][1] == '(' and skip_group(start) == i:
            node, j = parse_or(start + 1)
            if j != i - 1:
                raise ValueError('cannot parse %r' % text)
            return node, i
        return ('atom', text[toks[start][2]:toks[i - 1][3]]), i

    node, i = parse_or(0)
    if i != n:
        raise ValueError('trailing tokens in %r at %d' % (text, i))
    return node


def skeleton_atoms(node, out=None):
    if out is None:
        out = []
    if node[0] == 'atom':
        out.append(node[1])
    elif node[0] == 'not':
        skeleton_atoms(node[1], out)
    else:
        for x in node[1]:
            skeleton_atoms(x, out)
    return out


def reads_column(text, col):
    """Does the SQL text name column col (outside string literals)?"""
    return any(k == 'word' and t.lower() == col for k, t, _, _ in
               sql_tokens(text))


def kleene(node, val, pos=None):
    """Kleene's logic over the skeleton with a fourth value: 'T', 'F', 'N'
    (SQL NULL) and 'U' (unknown: could be any of them).  val(i) gives atom
    i's value (atoms numbered left to right, as skeleton_atoms())."""
    if pos is None:
        pos = [0]
    if node[0] == 'atom':
        v = val(pos[0])
        pos[0] += 1
        return v
    if node[0] == 'not':
        v = kleene(node[1], val, pos)
        return {'T': 'F', 'F': 'T'}.get(v, v)
    vals = [kleene(x, val, pos) for x in node[1]]
    stop, other = ('F', 'T') if node[0] == 'and' else ('T', 'F')
    if stop in vals:
        return stop
    if 'U' in vals:
        return 'U'
    if 'N' in vals:
        return 'N'
    return other


# --------------------------------------------------------------------------
# Database helpers
# --------------------------------------------------------------------------

# The per-row oracle: the predicate compiled into a plpgsql function of its
# own (so that its plans are made once), evaluating the keys [sr_lo, sr_hi):
# a cursor over the table in key order with one row per FETCH (an index
# scan: the predicate is computed for the fetched row only); on an error,
# the row after the last one fetched is evaluated alone, as
# `SELECT (p) FROM table WHERE key = k`, inside BEGIN ... EXCEPTION, which
# gives its SQLSTATE ('inconsistent' if it does not raise alone; checked for
# the first errors and then every 16th, the others take the cursor's), and
# the cursor reopens after it.  Returns the true keys, the null keys and the
# erroring keys with their SQLSTATEs.
ORACLE_FN = """
CREATE OR REPLACE FUNCTION pg_temp.%(name)s(sr_lo int, sr_hi int,
    OUT sr_true int[], OUT sr_null int[], OUT sr_err int[],
    OUT sr_codes text[])
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off
AS $sr_oracle$
#variable_conflict use_column
DECLARE
    sr_last int := sr_lo - 1;
    sr_k int;
    sr_v bool;
    sr_c refcursor;
    sr_done bool := false;
    sr_code text;
BEGIN
    sr_true := '{}'; sr_null := '{}'; sr_err := '{}'; sr_codes := '{}';
    WHILE NOT sr_done LOOP
        BEGIN
            sr_c := NULL;
            OPEN sr_c NO SCROLL FOR
                SELECT %(key)s, (%(pred)s)::bool FROM %(table)s
                WHERE %(key)s > sr_last AND %(key)s < sr_hi ORDER BY %(key)s;
            LOOP
                FETCH sr_c INTO sr_k, sr_v;
                EXIT WHEN NOT FOUND;
                IF sr_v THEN
                    sr_true := sr_true || sr_k;
                ELSIF sr_v IS NULL THEN
                    sr_null := sr_null || sr_k;
                END IF;
                sr_last := sr_k;
            END LOOP;
            CLOSE sr_c;
            sr_done := true;
        EXCEPTION WHEN OTHERS THEN
            sr_code := SQLSTATE;
            SELECT min(%(key)s) INTO sr_k FROM %(table)s
            WHERE %(key)s > sr_last AND %(key)s < sr_hi;
            IF sr_k IS NULL THEN
                RAISE EXCEPTION 'predicate raises with no row left: %%',
                    SQLERRM;
            END IF;
            IF cardinality(sr_err) < 4 OR cardinality(sr_err) %% 16 = 0 THEN
                BEGIN
                    SELECT (%(pred)s)::bool INTO sr_v FROM %(table)s
                    WHERE %(key)s = sr_k;
                    sr_code := 'inconsistent';
                EXCEPTION WHEN OTHERS THEN
                    IF SQLSTATE <> sr_code THEN
                        sr_code := 'inconsistent';
                    END IF;
                END;
            END IF;
            sr_codes := sr_codes || sr_code;
            sr_err := sr_err || sr_k;
            sr_last := sr_k;
        END;
    END LOOP;
END
$sr_oracle$"""


def oracle_set(cur, table, key, pred, where='true'):
    """One set query, the predicate in the target list (computed as written
    for every row; a WHERE clause's conjuncts could be reordered), on the
    rows where is true (the harness' own columns).  None if it raises."""
    try:
        cur.execute('SELECT array_agg(k) FILTER (WHERE v), array_agg(k) '
                    'FILTER (WHERE v IS NULL) FROM (SELECT %s AS k, '
                    '(%s)::bool AS v FROM %s WHERE %s OFFSET 0) s'
                    % (key, pred, table, where))
    except psycopg2.Error:
        return None
    t, n = cur.fetchone()
    return frozenset(t or ()), frozenset(n or ()), {}


def oracle_set_many(cur, table, key, plist, where='true', chunk=32):
    """oracle_set() of many predicates, chunk at a time in one query (each
    predicate a column of the target list: computed as written for every
    row, independently of the others).  A chunk that raises is split in
    halves, down to oracle_set() of single predicates (None if it raises)."""
    out = [None] * len(plist)

    def run(lo, hi):
        if hi - lo == 1:
            out[lo] = oracle_set(cur, table, key, plist[lo], where)
            return
        try:
            cur.execute('SELECT %s FROM (SELECT %s AS k, %s FROM %s WHERE %s '
                        'OFFSET 0) s'
                        % (', '.join('array_agg(k) FILTER (WHERE v%d), '
                                     'array_agg(k) FILTER (WHERE v%d IS NULL)'
                                     % (j, j) for j in range(hi - lo)),
                           key, ', '.join('(%s)::bool AS v%d' % (plist[lo + j], j)
                                          for j in range(hi - lo)), table,
                           where))
        except psycopg2.Error:
            mid = (lo + hi) // 2
            run(lo, mid)
            run(mid, hi)
            return
        row = cur.fetchone()
        for j in range(hi - lo):
            out[lo + j] = (frozenset(row[2 * j] or ()),
                           frozenset(row[2 * j + 1] or ()), {})

    for start in range(0, len(plist), chunk):
        run(start, min(start + chunk, len(plist)))
    return out


def oracle_rows(cur, table, key, pred, name, lo, hi, create):
    """The per-row evaluation (ORACLE_FN) of keys [lo, hi).  None if it
    fails itself."""
    try:
        if create:
            cur.execute(ORACLE_FN % {'key': key, 'pred': pred, 'table': table,
                                     'name': name})
        cur.execute('SELECT * FROM pg_temp.%s(%%s, %%s)' % name, (lo, hi))
    except psycopg2.Error as ex:
        print('oracle: per-row evaluation failed: %s' % str(ex).strip())
        return None
    t, n, e, c = cur.fetchone()
    return frozenset(t), frozenset(n), dict(zip(e, c))



def connect(name):
    conn = psycopg2.connect('', application_name='decoding_diff_' + name)
    return conn


def one_shot(sql, params=None, setup=None, fetch=True):
    """Run one statement in a fresh connection, closed right after.  Used for
    every logical decoding call with --fresh-connections)."""
    conn = connect('decode')
    conn.autocommit = True
    try:
        cur = conn.cursor()
        for s in setup or []:
            cur.execute(s)
        cur.execute(sql, params)
        return cur.fetchall() if fetch else None
    finally:
        conn.close()


def table_rows(cur):
    """dd.t now: {id: {column: text or None}}, the texts wal2json's values
    give (w2j_value_text())."""
    cur.execute('SELECT %s FROM dd.t' % ', '.join(
        '%s::text' % c for c in COLNAMES))
    out = {}
    for r in cur.fetchall():
        row = dict(zip(COLNAMES, r))
        row['n'] = row['n_txt']
        out[int(row['id'])] = row
    return out


class Workload:
    """Runs the DML and shape changes; keeps what each session believes."""

    def __init__(self, gen, main, side, args):
        self.g = gen
        self.args = args
        self.c1 = main
        self.c2 = side
        self.cur1 = main.cursor()
        self.cur2 = side.cursor()
        self.ids = {1: set(), 2: set()}        # committed rows per session
        self.next_id = {1: MAIN_ID_BASE, 2: SIDE_ID_BASE}
        self.preds = {}         # shape id -> where clause (None = all rows)
        self.tags = {}          # shape id -> ('perm', group) or
                                # ('crowd', group, stage)
        self.plan = []          # (changes, what): crowd stages, ANALYZE
        self.crowds = []        # [{'conj', 'col', 'size', 'txns'}]
        self.analyze_lsns = []  # WAL position after each ANALYZE of dd.t
        self.live = set()       # committed shapes (harness' view)
        self.changes = 0        # committed row changes (approximate)
        self.side_open = False
        self.side_pending = None     # (ids, live, changes) to apply at commit
        # --identity default / index
        self.keyed = args.identity != 'full'
        self.maybe_unsynced = set()  # live shapes a stream may lack members
                                     # of (added before the slots, or by a
                                     # transaction that then changed dd.t)
        self.search_errors = []      # add_shape / resync_shapes that raised
        self.search_mismatches = []  # ... where they should not have
        self.resync_counts = []      # (asked, returned) of resync_shapes()
        self.check_conn = None       # search_failed()'s own connection
        self.stats = {k: 0 for k in [
            'txns', 'rollbacks', 'savepoint_rollbacks', 'inserts', 'upserts',
            'updates', 'key_changes', 'noop_updates', 'pred_updates',
            'deletes', 'truncates', 'shape_adds', 'shape_removes',
            'shape_ops_in_dml', 'side_txns', 'dml_errors',
            'savepoint_releases', 'other_table_stmts', 'maintenance',
            'error_episodes', 'analyzes', 'crowd_txns']}
        if self.keyed:
            self.stats.update({k: 0 for k in [
                'resync_txns', 'resync_calls', 'resync_failures',
                'add_failures', 'snapshot_txns', 'side_commits_in_snapshot',
                'side_commits_in_txn']})

    # ---- one statement -------------------------------------------------

    def new_id(self, s):
        self.next_id[s] += 1 + (self.g.r.randint(0, 3) == 0)
        return self.next_id[s]

    def some_ids(self, ids, lo, hi):
        if not ids:
            return []
        k = min(len(ids), self.g.r.randint(lo, hi))
        return self.g.r.sample(sorted(ids), k)

    def stmt(self, s, cur, ids, counter):
        """One random DML statement of session s on its rows (ids: the
        session's working set, changed in place).  counter: list of one int,
        the changes done."""
        g = self.g
        x = g.r.random()
        if x < 0.25 or len(ids) < 20:
            n = g.r.randint(1, 40)
            rows = [g.row_values(self.new_id(s)) for _ in range(n)]
            cur.execute('INSERT INTO dd.t VALUES %s RETURNING id'
                        % ', '.join(rows))
            for (rid,) in cur.fetchall():
                ids.add(rid)
            counter[0] += n
            self.stats['inserts'] += 1
        elif x < 0.32:
            # upsert: existing and new keys
            keys = self.some_ids(ids, 1, 10) + \
                [self.new_id(s) for _ in range(g.r.randint(0, 5))]
            cols = g.r.sample(NONKEY, g.r.randint(1, 3))
            rows = [g.row_values(k) for k in keys]
            if g.chance(0.2):
                conflict = 'DO NOTHING'
            else:
                conflict = 'DO UPDATE SET %s' % ', '.join(
                    '%s = EXCLUDED.%s' % (c, c) for c in cols)
            cur.execute('INSERT INTO dd.t AS r VALUES %s ON CONFLICT (id) %s '
                        'RETURNING id' % (', '.join(rows), conflict))
            res = cur.fetchall()
            for (rid,) in res:
                ids.add(rid)
            counter[0] += len(res)
            self.stats['upserts'] += 1
        elif x < 0.55:
            targets = self.some_ids(ids, 1, 40)
            cols = g.r.sample(NONKEY, g.r.randint(1, 4))
            cur.execute('UPDATE dd.t SET %s WHERE id IN (%s) RETURNING id' % (
                ', '.join('%s = %s' % (c, g.set_expr(c)) for c in cols),
                ', '.join(map(str, targets))))
            counter[0] += len(cur.fetchall())
            self.stats['updates'] += 1
        elif x < 0.62:
            # UPDATE the rows a random predicate selects (bounded)
            cols = g.r.sample(NONKEY, g.r.randint(1, 3))
            lo = SIDE_ID_BASE if s == 2 else 0
            hi = SIDE_ID_BASE if s == 1 else 2 ** 31 - 1
            cur.execute(
                'UPDATE dd.t SET %s WHERE id IN (SELECT id FROM dd.t WHERE '
                'id >= %d AND id < %d AND (%s) ORDER BY id LIMIT %d) '
                'RETURNING id' % (
                    ', '.join('%s = %s' % (c, g.set_expr(c)) for c in cols),
                    lo, hi, g.clean_pred(1), g.r.randint(1, 40)))
            counter[0] += len(cur.fetchall())
            self.stats['pred_updates'] += 1
        elif x < 0.66:
            targets = self.some_ids(ids, 1, 20)
            col = g.pick(NONKEY)
            cur.execute('UPDATE dd.t SET %s = %s WHERE id IN (%s) RETURNING id'
                        % (col, col, ', '.join(map(str, targets))))
            counter[0] += len(cur.fetchall())
            self.stats['noop_updates'] += 1
        elif x < 0.78:
            # key change, sometimes with other columns
            targets = self.some_ids(ids, 1, 12)
            pairs = [(o, self.new_id(s)) for o in targets]
            extra = ''
            if g.chance(0.5):
                extra = ', ' + ', '.join(
                    '%s = %s' % (c, g.set_expr(c))
                    for c in g.r.sample(NONKEY, g.r.randint(1, 3)))
            cur.execute(
                'UPDATE dd.t AS r SET id = v.nid%s FROM (VALUES %s) AS '
                'v(oid_, nid) WHERE r.id = v.oid_ RETURNING v.oid_, r.id' % (
                    extra, ', '.join('(%d, %d)' % p for p in pairs)))
            for o, nid in cur.fetchall():
                ids.discard(o)
                ids.add(nid)
                counter[0] += 1
            self.stats['key_changes'] += 1
        elif x < 0.84:
            # update the big column, or columns of rows with a TOASTed big
            targets = self.some_ids(ids, 1, 15)
            if g.chance(0.5):
                sets = 'big = %s' % g.big_lit()
            else:
                sets = ', '.join('%s = %s' % (c, g.set_expr(c)) for c in
                                 g.r.sample(NONKEY[:-1], g.r.randint(1, 2)))
            cur.execute(
                'UPDATE dd.t SET %s WHERE id IN (%s) OR id IN (SELECT id FROM '
                'dd.t WHERE length(big) > 2000 AND id >= %d AND id < %d '
                'ORDER BY id LIMIT 5) RETURNING id' % (
                    sets, ', '.join(map(str, targets)),
                    SIDE_ID_BASE if s == 2 else 0,
                    SIDE_ID_BASE if s == 1 else 2 ** 31 - 1))
            counter[0] += len(cur.fetchall())
            self.stats['updates'] += 1
        else:
            targets = self.some_ids(ids, 1, 25)
            cur.execute('DELETE FROM dd.t WHERE id IN (%s) RETURNING id'
                        % ', '.join(map(str, targets)))
            for (rid,) in cur.fetchall():
                ids.discard(rid)
                counter[0] += 1
            self.stats['deletes'] += 1

    # ---- shapes ----------------------------------------------------------

    def add_shapes(self, cur, n, pending_live):
        return self.add_items(cur, [self.g.shape() for _ in range(n)],
                              pending_live)

    def add_items(self, cur, items, pending_live):
        """items: [(where clause or None, tag)]"""
        if self.keyed:
            return self.add_items_keyed(cur, items, pending_live)
        ids = []
        plain = [c for c, _ in items if c is not None]
        if plain:
            cur.execute("SELECT shape_router.add_shapes('dd.t', %s::text[])",
                        (plain,))
            ids = list(cur.fetchone()[0])
        out = []
        it = iter(ids)
        for c, tag in items:
            if c is None:
                cur.execute("SELECT shape_router.add_shape('dd.t')")
                sid = cur.fetchone()[0]
            else:
                sid = next(it)
            self.preds[sid] = c
            if tag is not None:
                self.tags[sid] = tag
            pending_live.add(sid)
            out.append(sid)
        self.stats['shape_adds'] += len(out)
        return out

    def add_items_keyed(self, cur, items, pending_live):
        """add_items() on a table without REPLICA IDENTITY FULL: add_shape
        takes a SHARE lock (the second session commits first if it has
        written dd.t) and finds the shape's initial members; a clause that
        raises on an existing row makes it fail (search_failed() checks
        that), so each call is in a savepoint: the bulk form first, then,
        if it failed, each clause alone.  Must run inside a transaction."""
        if cur is self.cur1:
            self.side_release()
        sids = [None] * len(items)
        plain = [(j, c) for j, (c, _) in enumerate(items) if c is not None]
        if plain:
            cur.execute('SAVEPOINT sr_add')
            try:
                cur.execute("SELECT shape_router.add_shapes('dd.t', "
                            "%s::text[])", ([c for _, c in plain],))
                for (j, _), sid in zip(plain, cur.fetchone()[0]):
                    sids[j] = sid
                cur.execute('RELEASE SAVEPOINT sr_add')
            except psycopg2.Error as ex:
                cur.execute('ROLLBACK TO SAVEPOINT sr_add')
                cur.execute('RELEASE SAVEPOINT sr_add')
                if not self.search_failed(cur, ex, 'add_shapes', None):
                    raise
                alone_failed = 0
                for j, c in plain:
                    cur.execute('SAVEPOINT sr_add')
                    try:
                        cur.execute("SELECT shape_router.add_shape('dd.t', "
                                    "%s)", (c,))
                        sids[j] = cur.fetchone()[0]
                        cur.execute('RELEASE SAVEPOINT sr_add')
                    except psycopg2.Error as ex2:
                        cur.execute('ROLLBACK TO SAVEPOINT sr_add')
                        cur.execute('RELEASE SAVEPOINT sr_add')
                        if not self.search_failed(cur, ex2, 'add_shape', c):
                            raise
                        alone_failed += 1
                        self.stats['add_failures'] += 1
                if not alone_failed:
                    self.search_mismatches.append(
                        'add_shapes() of %d clauses failed (%s: %s), but '
                        'each of them alone was added' % (
                            len(plain), ex.pgcode,
                            str(ex).strip().split('\n')[0]))
        out = []
        for j, (c, tag) in enumerate(items):
            if c is None:
                cur.execute("SELECT shape_router.add_shape('dd.t')")
                sids[j] = cur.fetchone()[0]
            sid = sids[j]
            if sid is None:
                continue
            self.preds[sid] = c
            if tag is not None:
                self.tags[sid] = tag
            pending_live.add(sid)
            out.append(sid)
        self.stats['shape_adds'] += len(out)
        return out

    def search_failed(self, cur, ex, what, clause, shapes=None):
        """add_shape / add_shapes / resync_shapes raised: legitimate if the
        error is an evaluation error (a data exception, 0A000: numeric NaN
        to integer, 54000: chr(0)) raised while finding the initial members (its CONTEXT says so), and a
        clause raises on a row of dd.t now (as written, or in the search's
        own plan: a WHERE clause, whose conjuncts the planner may reorder).
        clause None: one of shapes' (add_shapes, or resync_shapes of
        several; None: every live shape) clauses.  The transaction is back
        at the state before the call.  False if it is no such error (the
        caller raises it)."""
        code = ex.pgcode or ''
        first = str(ex).strip().split('\n')[0]
        # (data exceptions, 0A000, chr(0)'s 54000; not a lock timeout, a
        # deadlock, a syntax error, ...)
        if not code or code[:2] in ('08', '25', '40', '42', '53', '55', '57',
                                    '58', 'XX', 'P0'):
            return False
        context = getattr(ex.diag, 'context', None) or ''
        self.search_errors.append((what, code, first))
        if 'its initial members' not in context:
            self.search_mismatches.append(
                '%s raised %s (%s) without the CONTEXT "finding the rows of '
                'table ... (its initial members)": %r' % (
                    what, code, first, context))
        if clause is not None:
            clauses = [clause]
        elif shapes is not None:
            clauses = [self.preds[sid] for sid in shapes
                       if self.preds.get(sid) is not None]
        else:
            clauses = None      # add_shapes: its clauses are tried alone
        if clauses is None:
            return True
        # The search sees the transaction's own rows and every committed
        # one (a snapshot taken after its lock, whatever the isolation
        # level): the rows in the transaction's view, and those a new
        # connection sees (committed after a REPEATABLE READ snapshot)
        if self.check_conn is None:
            self.check_conn = connect('check')
            self.check_conn.autocommit = True
        for c in clauses:
            for sql in ('SELECT count(*) FROM (SELECT (%s)::bool FROM ONLY '
                        'dd.t OFFSET 0) s' % c,
                        # (the search's own query)
                        'SELECT id FROM ONLY dd.t WHERE %s' % c):
                cur.execute('SAVEPOINT sr_chk')
                try:
                    cur.execute(sql)
                    cur.fetchall()
                    raised = False
                except psycopg2.Error:
                    raised = True
                cur.execute('ROLLBACK TO SAVEPOINT sr_chk')
                cur.execute('RELEASE SAVEPOINT sr_chk')
                if not raised:
                    try:
                        cc = self.check_conn.cursor()
                        cc.execute(sql)
                        cc.fetchall()
                    except psycopg2.Error:
                        raised = True
                if raised:
                    return True
        self.search_mismatches.append(
            '%s raised %s (%s), but %s raises on no row of dd.t (as written '
            'or as a WHERE clause): %s' % (
                what, code, first, 'the clause' if clause is not None else
                'none of the %d clauses' % len(clauses),
                clause if clause is not None else
                '; '.join(clauses[:5])))
        return True

    def begin(self, cur, serializable=False):
        """BEGIN; --identity default / index: sometimes REPEATABLE READ (or
        SERIALIZABLE) with its snapshot taken at once, so that the second
        session's commit in side_release() falls after it: add_shape's and
        resync_shapes' search must still see those rows."""
        if not self.keyed or not self.g.chance(0.2):
            cur.execute('BEGIN')
            return
        cur.execute('BEGIN ISOLATION LEVEL %s' % (
            'SERIALIZABLE' if serializable and self.g.chance(0.3)
            else 'REPEATABLE READ'))
        cur.execute('SELECT count(*) FROM dd.t')
        self.stats['snapshot_txns'] += 1
        # the second session writes now, and commits before the next
        # add_shape / resync_shapes (side_release()): rows this snapshot
        # does not see
        if self.args.no_side:
            return
        if not self.side_open:
            self.cur2.execute('BEGIN')
            self.side_open = True
            self.side_pending = {'ids': set(self.ids[2]), 'counter': [0],
                                 'added': set(), 'removed': set(),
                                 'touched': set(), 'locked': False}
            self.stats['side_txns'] += 1
        p = self.side_pending
        try:
            p['locked'] = True
            self.stmt(2, self.cur2, p['ids'], p['counter'])
        except psycopg2.Error as ex:
            self.cur2.execute('ROLLBACK')
            self.side_open = False
            self.side_pending = None
            self.stats['dml_errors'] += 1
            print('decoding_diff: note: DML error in the side session '
                  '(rolled back): %s' % str(ex).strip().split('\n')[0])

    def side_release(self):
        """--identity default / index: a SHARE lock (add_shape,
        resync_shapes) waits for the second session if it has written
        dd.t: it commits first."""
        if self.keyed and self.side_open and self.side_pending['locked']:
            if self.c1.get_transaction_status() != \
                    psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                self.stats['side_commits_in_txn'] += 1
                self.cur1.execute('SHOW transaction_isolation')
                if self.cur1.fetchone()[0] != 'read committed':
                    self.stats['side_commits_in_snapshot'] += 1
            self.side_commit()

    def merge_live(self, live0, live):
        """The harness' view after a transaction that changed live0 into
        live, while the second session may have committed meanwhile
        (side_release()): its changes stay."""
        return (self.live - (live0 - live)) | (live - live0)

    def resync_txn(self):
        """shape_router.resync_shapes() in a transaction of its own, for
        the shapes a stream may lack the members of (and a few others,
        which it already has: no-ops), each call in a savepoint; a clause
        that raises on an existing row makes the call fail.  The NULL form
        (every shape on tables without FULL), all the shapes in one call,
        or one call per shape; after each call that succeeded, a marker
        message (prefix dd_resync: the ids, or *) tells the comparison
        which shapes it re-sent."""
        g = self.g
        cur = self.cur1
        self.begin(cur)
        self.side_release()
        live = sorted(self.live)
        targets = set(self.maybe_unsynced & self.live)
        targets |= set(g.r.sample(live, min(len(live), g.r.randint(0, 3))))
        targets = sorted(targets)
        if not targets:
            cur.execute('COMMIT')
            return
        self.stats['resync_txns'] += 1
        self.stats['txns'] += 1
        done = set()

        def call(ids):
            cur.execute('SAVEPOINT sr_rs')
            try:
                if ids is None:
                    # every shape on a table without FULL
                    cur.execute("SELECT count(*) FROM shape_router.shapes s "
                                "JOIN pg_class c ON c.oid = s.relid "
                                "WHERE c.relreplident <> 'f'")
                    asked = cur.fetchone()[0]
                    cur.execute('SELECT shape_router.resync_shapes()')
                else:
                    cur.execute('SELECT shape_router.resync_shapes('
                                '%s::bigint[])', (ids,))
                n = cur.fetchone()[0]
                cur.execute("SELECT 'x' FROM pg_logical_emit_message(true, "
                            "%s, %s)", (RESYNC_PREFIX, '*' if ids is None
                                        else ','.join(map(str, ids))))
                cur.execute('RELEASE SAVEPOINT sr_rs')
            except psycopg2.Error as ex:
                cur.execute('ROLLBACK TO SAVEPOINT sr_rs')
                cur.execute('RELEASE SAVEPOINT sr_rs')
                if not self.search_failed(cur, ex, 'resync_shapes', None,
                                          live if ids is None else ids):
                    raise
                self.stats['resync_failures'] += 1
                return False
            self.stats['resync_calls'] += 1
            self.resync_counts.append((asked if ids is None
                                       else len(ids), n))
            done.update(live if ids is None else ids)
            return True

        k = g.r.random()
        if k < 0.25:
            if not call(None):
                k = 1
        elif k < 0.55:
            if not call(targets):
                k = 1
        else:
            k = 1
        if k == 1:
            for sid in targets:
                call([sid])
        cur.execute('COMMIT')
        self.maybe_unsynced -= done

    def remove_shape(self, cur, pending_live, protected):
        cands = sorted(pending_live - protected)
        if not cands:
            return
        sid = self.g.pick(cands)
        cur.execute('SELECT shape_router.remove_shape(%s)', (sid,))
        if not cur.fetchone()[0]:
            fail_harness('remove_shape(%d) returned false' % sid)
        pending_live.discard(sid)
        self.stats['shape_removes'] += 1

    # ---- transactions ------------------------------------------------------

    def side_busy_shapes(self):
        """Shapes the open side transaction removed or may remove."""
        if self.side_pending is None:
            return set()
        return self.side_pending['touched']

    def main_txn(self):
        g = self.g
        cur = self.cur1
        ids = set(self.ids[1])
        live = set(self.live)
        live0 = set(live)
        added_here = set()      # (keyed) shapes added, then dd.t written
        counter = [0]
        touched = set()
        protected = self.side_busy_shapes()
        self.stats['txns'] += 1
        try:
            self.begin(cur, serializable=True)
            nstmt = g.r.randint(1, 6)
            shape_at = g.r.randint(0, nstmt) if g.chance(0.04) else -1
            for i in range(nstmt + 1):
                if i == shape_at:
                    self.stats['shape_ops_in_dml'] += 1
                    before = set(live)
                    if g.chance(0.5):
                        added_here.update(
                            self.add_shapes(cur, g.r.randint(1, 3), live))
                    else:
                        self.remove_shape(cur, live, protected)
                    touched |= before ^ live
                if i == nstmt:
                    break
                if g.chance(0.08):
                    # a subtransaction, rolled back (its changes never
                    # happened) or released (they are the transaction's)
                    cur.execute('SAVEPOINT s')
                    ids_sp, live_sp, cnt_sp = set(ids), set(live), counter[0]
                    self.stmt(1, cur, ids, counter)
                    if g.chance(0.3):
                        before = set(live)
                        if g.chance(0.5):
                            added_here.update(self.add_shapes(cur, 1, live))
                        else:
                            self.remove_shape(cur, live, protected)
                        touched |= before ^ live
                    if g.chance(0.6):
                        cur.execute('ROLLBACK TO SAVEPOINT s')
                        ids, live, counter[0] = ids_sp, live_sp, cnt_sp
                        self.stats['savepoint_rollbacks'] += 1
                    else:
                        cur.execute('RELEASE SAVEPOINT s')
                        self.stats['savepoint_releases'] += 1
                if g.chance(0.05):
                    self.other_table_stmt(cur)
                self.stmt(1, cur, ids, counter)
            if g.chance(0.04):
                cur.execute('ROLLBACK')
                self.stats['rollbacks'] += 1
                return
            cur.execute('COMMIT')
        except psycopg2.Error as ex:
            cur.execute('ROLLBACK')
            self.stats['dml_errors'] += 1
            if self.stats['dml_errors'] <= 5:
                print('decoding_diff: note: DML error (transaction rolled '
                      'back): %s' % str(ex).strip().split('\n')[0])
            return
        self.ids[1] = ids
        if self.keyed:
            self.live = self.merge_live(live0, live)
            # (a later statement of the transaction may have written dd.t)
            self.maybe_unsynced |= added_here & live
        else:
            self.live = live
        self.changes += counter[0]

    def shape_txn(self):
        """Shapes added or removed in a transaction of their own; sometimes
        aborted, sometimes in a rolled back subtransaction."""
        g = self.g
        cur = self.cur1
        self.begin(cur)
        self.side_release()
        live = set(self.live)
        protected = self.side_busy_shapes()
        for _ in range(g.r.randint(1, 3)):
            if g.chance(0.55) or len(live) < self.args.shapes:
                self.add_shapes(cur, g.r.randint(1, 5), live)
            else:
                self.remove_shape(cur, live, protected)
        if g.chance(0.15):
            cur.execute('SAVEPOINT s')
            live_sp = set(live)
            self.remove_shape(cur, live, protected)
            self.add_shapes(cur, 1, live)
            cur.execute('ROLLBACK TO SAVEPOINT s')
            live = live_sp
        if g.chance(0.05):
            cur.execute('ROLLBACK')
            return
        cur.execute('COMMIT')
        self.live = live

    def truncate_txn(self):
        self.side_commit()
        self.cur1.execute('BEGIN')
        # one table or two (dd.u has no shapes: no T for it)
        self.cur1.execute(self.g.pick(['TRUNCATE dd.t', 'TRUNCATE dd.t, dd.u',
                                       'TRUNCATE dd.u, dd.t']))
        if self.g.chance(0.5):
            # refill in the same transaction
            ids, counter = set(), [0]
            self.stmt(1, self.cur1, ids, counter)
        else:
            ids, counter = set(), [0]
        self.cur1.execute('COMMIT')
        self.ids = {1: ids, 2: set()}
        self.changes += 1 + counter[0]
        self.stats['truncates'] += 1
        self.stats['txns'] += 1

    def other_table_stmt(self, cur):
        """A change to dd.u, a table without shapes: routed nowhere."""
        k = self.g.r.randint(1, 200)
        cur.execute(self.g.pick([
            'INSERT INTO dd.u SELECT g, g FROM generate_series(%d, %d) g '
            'ON CONFLICT (id) DO UPDATE SET a = dd.u.a + 1' % (k, k + 5),
            'UPDATE dd.u SET a = a + 1 WHERE id %% 7 = %d' % (k % 7),
            'DELETE FROM dd.u WHERE id %% 11 = %d' % (k % 11)]))
        self.stats['other_table_stmts'] += 1

    def maintenance(self):
        """Relation cache invalidations of dd.t in the decoded WAL, often
        right before shapes are added or removed."""
        if self.g.chance(0.3):
            # rewrites, index builds, ACCESS EXCLUSIVE: they would wait for
            # the second session
            self.side_commit()
            self.cur1.execute(self.g.pick([
                'VACUUM FULL dd.t',
                'CLUSTER dd.t USING %s' % KEY_INDEX[self.args.identity],
                'REINDEX TABLE dd.t',
                IDENTITY_STMT[self.args.identity]]))
        else:
            sql = self.g.pick([
                'ANALYZE dd.t', 'VACUUM dd.t',
                'ALTER TABLE dd.t SET (fillfactor = %d)'
                % self.g.pick([90, 100]),
                'COMMENT ON TABLE dd.t IS %s' % q(str(self.g.r.random()))])
            if sql == 'ANALYZE dd.t':
                self.analyze()
            else:
                self.cur1.execute(sql)
        self.stats['maintenance'] += 1
        if self.g.chance(0.6):
            self.shape_txn()

    def analyze(self):
        """ANALYZE dd.t: shapes the plugin compiles after this point (added
        later, or all of them at a later stream start) are costed with
        statistics."""
        self.cur1.execute('ANALYZE dd.t')
        self.cur1.execute('SELECT pg_current_wal_lsn()::text')
        self.analyze_lsns.append(self.cur1.fetchone()[0])
        self.stats['analyzes'] += 1

    def plan_extras(self, target):
        """When (in committed changes) the crowded groups' stages are added
        and ANALYZE runs: stage 1 of a group, then stage 2 in 2-4
        transactions, then stage 3 in 1-3, with DML in between; ANALYZE
        twice, in the first half and in the second."""
        g = self.g
        plan = []
        for k in range(self.args.crowd_groups):
            size = g.r.randint(self.args.crowd_min, self.args.crowd_max)
            conj, col, stages = g.crowd_group(size)
            self.crowds.append({'conj': conj, 'col': col, 'size': size,
                                'txns': 0, 'removed': 0})
            blocks = [(0, stages[0])]
            for stage, parts in ((1, g.r.randint(2, 4)),
                                 (2, g.r.randint(1, 3))):
                texts = stages[stage]
                step = -(-len(texts) // parts)
                blocks += [(stage, texts[j:j + step])
                           for j in range(0, len(texts), step)]
            # then, in a transaction of its own, some of the group's shapes
            # are removed (stage 1 first: the ones the rebalance may have
            # moved) and a few more added
            blocks.append((3, [(t, ('crowd', k, 2)) for t in stages[2][:3]]))
            marks = sorted(g.r.uniform(0.02, 0.95) for _ in blocks)
            for m, (stage, texts) in zip(marks, blocks):
                if stage == 3:
                    plan.append((int(m * target), 'crowd_remove', (k, texts)))
                    continue
                plan.append((int(m * target), 'crowd',
                             [(t, ('crowd', k, stage)) for t in texts]))
        for lo, hi in ((0.2, 0.5), (0.55, 0.85)):
            plan.append((int(g.r.uniform(lo, hi) * target), 'analyze', None))
        if self.keyed:
            # the shapes added before the slots route nothing until then
            plan.append((int(g.r.uniform(0.02, 0.06) * target), 'resync',
                         None))
            plan.append((int(g.r.uniform(0.4, 0.6) * target), 'resync',
                         None))
        plan.sort(key=lambda e: e[0])
        self.plan = plan

    def crowd_remove(self, k, items):
        """Remove about half of crowded group k's stage-1 shapes and a fifth
        of the others, add items, in one transaction."""
        g = self.g
        cur = self.cur1
        self.side_release()
        live = set(self.live)
        protected = self.side_busy_shapes()
        gone = [sid for sid in sorted(live - protected)
                if self.tags.get(sid, ())[:2] == ('crowd', k) and
                g.chance(0.5 if self.tags[sid][2] == 0 else 0.2)]
        cur.execute('BEGIN')
        for sid in gone:
            cur.execute('SELECT shape_router.remove_shape(%s)', (sid,))
            if not cur.fetchone()[0]:
                fail_harness('remove_shape(%d) returned false' % sid)
            live.discard(sid)
        self.stats['shape_removes'] += len(gone)
        self.crowds[k]['removed'] += len(gone)
        self.add_items(cur, items, live)
        cur.execute('COMMIT')
        self.live = live
        self.stats['crowd_txns'] += 1
        self.stats['txns'] += 1
        self.crowds[k]['txns'] += 1

    def crowd_txn(self, items):
        """Shapes of a crowded group, in a transaction of their own (now and
        then with a DML statement in it)."""
        cur = self.cur1
        self.side_release()
        live = set(self.live)
        ids = set(self.ids[1])
        counter = [0]
        try:
            cur.execute('BEGIN')
            if self.g.chance(0.3):
                self.stmt(1, cur, ids, counter)
            self.add_items(cur, items, live)
            cur.execute('COMMIT')
        except psycopg2.Error as ex:
            cur.execute('ROLLBACK')
            self.stats['dml_errors'] += 1
            print('decoding_diff: note: DML error in a crowd transaction '
                  '(rolled back, shapes added alone): %s'
                  % str(ex).strip().split('\n')[0])
            live, ids, counter = set(self.live), set(self.ids[1]), [0]
            cur.execute('BEGIN')
            self.add_items(cur, items, live)
            cur.execute('COMMIT')
        self.live = live
        self.ids[1] = ids
        self.changes += counter[0]
        self.stats['crowd_txns'] += 1
        self.stats['txns'] += 1
        self.crowds[items[0][1][1]]['txns'] += 1

    def error_values(self):
        """SET clauses giving values that make some shapes raise."""
        g = self.g
        sets = {
            'a': ['0', '0', '-1', '2147483647', '-2147483648'],
            'b': ['0', '-9223372036854775808', '9223372036854775807'],
            't': [q(x) for x in ERR_TEXTS] + ["'x'", "'abc'"],
            'n': ['-1', '0', '-0.5', "'-Infinity'", '1e20'] +
                 (["'NaN'"] if g.nan_int_casts else []),
            'j': ['\'{"a": "x", "b": true, "c": 1.5}\'::jsonb',
                  "'[1, 2]'::jsonb", '\'"s"\'::jsonb',
                  '\'{"a": 1e20, "b": "1"}\'::jsonb'],
            'arr': ["'{0,1}'::int[]", "'{0}'::int[]"],
        }
        cols = g.r.sample(sorted(sets), g.r.randint(1, 3))
        return ', '.join('%s = %s' % (c, g.pick(sets[c])) for c in cols)

    def error_episode(self):
        """Rows get values on which some shapes raise (the plugin may
        invalidate them there), then new shapes are added in a transaction
        of their own, then the same rows change again and some are deleted:
        shapes added after an error on a row must route that row's later
        changes normally."""
        g = self.g
        cur = self.cur1
        self.side_release()
        ids = set(self.ids[1])
        counter = [0]
        self.stats['error_episodes'] += 1
        self.stats['txns'] += 3
        try:
            cur.execute('BEGIN')
            rows = self.some_ids(ids, 1, 6)
            new = [self.new_id(1) for _ in
                   range(g.r.randint(0 if rows else 1, 3))]
            if new:
                cur.execute('INSERT INTO dd.t VALUES %s' % ', '.join(
                    g.row_values(k) for k in new))
                ids |= set(new)
                counter[0] += len(new)
                rows += new
            for k in rows:
                cur.execute('UPDATE dd.t SET %s WHERE id = %d RETURNING id'
                            % (self.error_values(), k))
                counter[0] += len(cur.fetchall())
            cur.execute('COMMIT')
            self.ids[1] = set(ids)
            self.changes += counter[0]
            counter = [0]

            live = set(self.live)
            cur.execute('BEGIN')
            self.add_shapes(cur, g.r.randint(1, 4), live)
            cur.execute('COMMIT')
            self.live = live

            cur.execute('BEGIN')
            g.r.shuffle(rows)
            upd = rows[:max(1, len(rows) * 2 // 3)]
            cur.execute('UPDATE dd.t SET %s WHERE id IN (%s) RETURNING id' % (
                ', '.join('%s = %s' % (c, g.set_expr(c)) for c in
                          g.r.sample(NONKEY, g.r.randint(1, 3))),
                ', '.join(map(str, upd))))
            counter[0] += len(cur.fetchall())
            if g.chance(0.5):
                cur.execute('UPDATE dd.t SET %s WHERE id IN (%s) RETURNING id'
                            % (self.error_values(), ', '.join(map(str, upd))))
                counter[0] += len(cur.fetchall())
            gone = rows[len(upd):] + ([upd[0]] if g.chance(0.3) else [])
            if gone:
                cur.execute('DELETE FROM dd.t WHERE id IN (%s) RETURNING id'
                            % ', '.join(map(str, gone)))
                for (rid,) in cur.fetchall():
                    ids.discard(rid)
                    counter[0] += 1
            cur.execute('COMMIT')
        except psycopg2.Error as ex:
            cur.execute('ROLLBACK')
            self.stats['dml_errors'] += 1
            print('decoding_diff: note: DML error in an error episode '
                  '(rolled back): %s' % str(ex).strip().split('\n')[0])
            return
        self.ids[1] = ids
        self.changes += counter[0]

    def side_step(self):
        """The second session: transactions open across main commits."""
        g = self.g
        cur = self.cur2
        if not self.side_open:
            if self.args.no_side or not g.chance(0.2):
                return
            cur.execute('BEGIN')
            self.side_open = True
            self.side_pending = {'ids': set(self.ids[2]), 'counter': [0],
                                 'added': set(), 'removed': set(),
                                 'touched': set(), 'locked': False}
            self.stats['side_txns'] += 1
        p = self.side_pending
        x = g.r.random()
        try:
            if x < 0.55:
                p['locked'] = True
                self.stmt(2, cur, p['ids'], p['counter'])
            elif x < 0.6:
                live = set(self.live) - p['removed']
                new = set(self.add_shapes(cur, 1, live))
                p['added'] |= new
                p['touched'] |= new
                if self.keyed:
                    # its SHARE lock would hold the main session's writes
                    self.side_commit()
            elif x < 0.63:
                live = set(self.live) - p['removed'] - p['added']
                before = set(live)
                # never one the main session might remove meanwhile: the
                # main session's removals skip p['touched']
                self.remove_shape(cur, live, set())
                gone = before - live
                p['removed'] |= gone
                p['touched'] |= gone
            elif x < 0.83:
                self.side_commit()
            elif x < 0.86:
                cur.execute('ROLLBACK')
                self.side_open = False
                self.side_pending = None
        except psycopg2.Error as ex:
            cur.execute('ROLLBACK')
            self.side_open = False
            self.side_pending = None
            self.stats['dml_errors'] += 1
            print('decoding_diff: note: DML error in the side session '
                  '(rolled back): %s' % str(ex).strip().split('\n')[0])

    def side_commit(self):
        if not self.side_open:
            return
        p = self.side_pending
        self.cur2.execute('COMMIT')
        self.ids[2] = p['ids']
        self.live = (self.live - p['removed']) | p['added']
        self.changes += p['counter'][0]
        self.side_open = False
        self.side_pending = None

    def extra(self, what, items):
        if what == 'analyze':
            self.analyze()
        elif what == 'resync':
            self.resync_txn()
        elif what == 'crowd_remove':
            self.crowd_remove(*items)
        else:
            self.crowd_txn(items)

    def run(self, target):
        g = self.g
        while self.changes < target:
            while self.plan and self.plan[0][0] <= self.changes:
                self.extra(*self.plan.pop(0)[1:])
            g.id_hint = self.next_id[1]
            # the main session's removals avoid what the side txn touched
            self.side_step()
            if self.keyed and g.chance(0.012):
                self.resync_txn()
                continue
            x = g.r.random()
            if x < 0.05:
                self.shape_txn()
            elif x < 0.053:
                if self.args.no_truncate:
                    continue
                self.truncate_txn()
                if g.chance(0.5):
                    self.shape_txn()
            elif x < 0.075:
                if self.args.no_maintenance:
                    continue
                self.maintenance()
            elif x < 0.09:
                self.error_episode()
            else:
                self.main_txn()
        for _, what, items in self.plan:
            self.extra(what, items)
        self.plan = []
        self.side_commit()


# --------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------

def w2j_value_text(col, v):
    """A wal2json value as the text PostgreSQL's input function reads."""
    if v is None:
        return None
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, (int, Decimal)):
        return str(v)
    return v        # strings: text, timestamptz, int[], jsonb (as text)


def expected_json_value(col, text):
    """What shape_router writes for a value, given its text."""
    if text is None:
        return None
    typ = COLTYPE[col]
    if typ in ('int', 'bigint'):
        return int(text)
    if typ == 'numeric':
        if text in ('NaN', 'Infinity', '-Infinity'):
            return text
        return Decimal(text)
    if typ == 'bool':
        return text == 'true'
    if typ == 'jsonb':
        return json.loads(text, parse_float=Decimal)
    return text


def same_json_value(col, exp, got):
    if exp is None:
        # (a jsonb JSON null is written as null too: the same as SQL NULL)
        return got is None
    if COLTYPE[col] == 'numeric' and isinstance(exp, Decimal):
        # same digits, as numeric_out wrote them
        return isinstance(got, (Decimal, int)) and str(got) == str(exp)
    if COLTYPE[col] in ('int', 'bigint'):
        return type(got) is int and got == exp
    if COLTYPE[col] == 'bool':
        return got is exp
    if COLTYPE[col] == 'jsonb':
        return json.dumps(exp, sort_keys=True, default=str) == \
            json.dumps(got, sort_keys=True, default=str)
    return type(got) is str and got == exp


def parse_w2j(rows, replica=None):
    """-> list of transactions in commit order:
    {xid, commit_lsn, changes: [change], markers}, change = {lsn, kind,
    table, old, new, unchanged_toast}; old/new: {col: text or None};
    markers: the harness' dd_resync messages [(lsn, content)].

    replica (--identity default / index: {id: row} as the slots start):
    the old rows are not in the WAL (only their keys); they are the rows
    the harness keeps from the stream itself, from the initial contents
    and the new rows of INSERT and UPDATE (unchanged TOASTed values taken
    from the row they replace).  Updated in place: the rows at the end."""
    txns = []
    cur = None
    for lsn, xid, data in rows:
        rec = json.loads(data, parse_float=Decimal)
        act = rec['action']
        if act == 'B':
            cur = {'xid': xid, 'commit_lsn': rec['lsn'], 'changes': [],
                   'markers': []}
            continue
        if act == 'M':
            if cur is None or not rec.get('transactional'):
                fail_harness('wal2json message outside a transaction: %s'
                             % data[:200])
            if rec.get('prefix') == RESYNC_PREFIX:
                cur['markers'].append((rec['lsn'], rec.get('content')))
            continue
        if act == 'C':
            if cur is None or cur['xid'] != xid:
                fail_harness('wal2json C without B (xid %s)' % xid)
            txns.append(cur)
            cur = None
            continue
        if cur is None:
            fail_harness('wal2json change outside a transaction: %s' % data[:200])
        tab = '%s.%s' % (rec['schema'], rec['table'])
        ch = {'lsn': rec['lsn'], 'kind': act, 'table': tab, 'old': None,
              'new': None, 'unchanged_toast': []}
        if act in ('I', 'U'):
            ch['new'] = {c['name']: w2j_value_text(c['name'], c['value'])
                         for c in rec['columns']}
        if act in ('U', 'D'):
            ch['old'] = {c['name']: w2j_value_text(c['name'], c['value'])
                         for c in rec.get('identity', [])}
        if tab == TABLE and replica is not None:
            keyed_row(ch, replica, data)
        elif tab == TABLE and act in ('I', 'U', 'D'):
            if act in ('U', 'D') and set(ch['old']) != set(COLNAMES):
                fail_harness('wal2json old row lacks columns (replica '
                             'identity not FULL?): %s' % data[:300])
            if ch['new'] is not None:
                missing = [c for c in COLNAMES if c not in ch['new']]
                if missing and act == 'I':
                    fail_harness('wal2json INSERT lacks columns %s' % missing)
                for c in missing:
                    # unchanged TOASTed value: wal2json leaves it out
                    ch['new'][c] = ch['old'][c]
                    ch['unchanged_toast'].append(c)
            for side in ('old', 'new'):
                if ch[side] is not None:
                    ch[side]['n'] = ch[side]['n_txt']
        cur['changes'].append(ch)
    if cur is not None:
        fail_harness('wal2json stream ends inside a transaction')
    return txns


def keyed_row(ch, replica, data):
    """parse_w2j() of a change of dd.t without REPLICA IDENTITY FULL: its
    old row from the replica, which it then updates."""
    act = ch['kind']
    if act == 'T':
        replica.clear()
        return
    if act in ('U', 'D'):
        ident = ch['old']
        if set(ident) != {'id'}:
            fail_harness('wal2json identity is not the key alone (replica '
                         'identity FULL?): %s' % data[:300])
        old = replica.get(int(ident['id']))
        if old is None:
            fail_harness('%s of a key the replica does not have: %s'
                         % (act, data[:300]))
        ch['old'] = old
    if ch['new'] is not None:
        missing = [c for c in COLNAMES if c not in ch['new']]
        if missing and act == 'I':
            fail_harness('wal2json INSERT lacks columns %s' % missing)
        for c in missing:
            # unchanged TOASTed value: in neither row of the WAL
            ch['new'][c] = ch['old'][c]
            ch['unchanged_toast'].append(c)
        ch['new']['n'] = ch['new']['n_txt']
    if act in ('U', 'D'):
        del replica[int(ch['old']['id'])]
    if act in ('I', 'U'):
        k = int(ch['new']['id'])
        if k in replica:
            fail_harness('INSERT / UPDATE onto a key the replica has: %s'
                         % data[:300])
        replica[k] = ch['new']


def parse_sr(batches):
    """-> {xid: {'records': [(lsn column, rec)], 'batch': k}} in stream order,
    plus the xids in order and framing problems."""
    txns = {}
    order = []
    problems = []
    for k, rows in enumerate(batches):
        cur = None
        for lsn, xid, data in rows:
            try:
                rec = json.loads(data, parse_float=Decimal)
            except ValueError:
                problems.append('not JSON: %r' % data[:200])
                continue
            act = rec.get('action')
            if act == 'B':
                if cur is not None:
                    problems.append('B inside transaction %s' % cur['xid'])
                if xid in txns:
                    problems.append('transaction %s written twice' % xid)
                cur = {'xid': xid, 'begin': rec, 'records': [], 'batch': k,
                       'commit': None}
                continue
            if cur is None or cur['xid'] != xid:
                problems.append('record outside its transaction: %s'
                                % data[:200])
                continue
            if act == 'C':
                cur['commit'] = rec
                txns[xid] = cur
                order.append(xid)
                cur = None
                continue
            cur['records'].append((lsn, rec))
        if cur is not None:
            problems.append('batch %d ends inside transaction %s' % (k, cur['xid']))
    return txns, order, problems


def explain_decoding_failure(cur, message, w2j_rows, wl, replica=None):
    """After the plugin raised: the change at the error's LSN, and which
    shapes PostgreSQL raises for on its rows (SQLSTATE, message)."""
    import re
    m = re.search(r'associated LSN ([0-9A-F]+/[0-9A-F]+)', message)
    if not m or not w2j_rows:
        return
    lsn = m.group(1)
    ch = None
    for tx in parse_w2j(w2j_rows, replica):
        for c in tx['changes']:
            if c['lsn'] == lsn and c['table'] == TABLE:
                ch = c
    if ch is None:
        print('  (no change of %s at %s in the wal2json stream)'
              % (TABLE, lsn))
        return
    print('  the change at %s: %s %s; shapes of the run that PostgreSQL '
          'raises for on its rows:' % (lsn, ch['kind'], TABLE))
    casts = ', '.join('x.%s::%s AS %s' % (c, COLTYPE[c], c) for c in COLNAMES)
    rs_cols = ', '.join('%s text' % c for c in COLNAMES)
    for side in ('old', 'new'):
        row = ch[side]
        if row is None:
            continue
        print('  %s row: %s' % (side, json.dumps(
            {c: row[c] if c != 'big' or row[c] is None or len(row[c]) < 40
             else row[c][:12] + '...' for c in COLNAMES},
            ensure_ascii=False)))
        shown = 0
        for sid in sorted(wl.preds):
            p = wl.preds[sid]
            if p is None:
                continue
            try:
                cur.execute('SELECT (%s)::bool FROM (SELECT %s FROM '
                            'jsonb_to_record(%s::jsonb) AS x(%s)) AS t'
                            % (p, casts, q(json.dumps(row)), rs_cols))
            except psycopg2.Error as ex:
                if shown < 10:
                    print('    shape %d raises SQLSTATE %s (%s) on it: %s' % (
                        sid, ex.pgcode, str(ex).strip().split('\n')[0], p))
                shown += 1
        if shown > 10:
            print('    ... and %d more shapes' % (shown - 10))


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int)
    ap.add_argument('--min-changes', type=int, default=20000)
    ap.add_argument('--shapes', type=int, default=200,
                    help='shapes registered at the start (at least)')
    ap.add_argument('--sr-batch', type=int, default=800,
                    help='read the shape_router slot in batches of about '
                         'this many rows (random sizes up to twice it); '
                         '0 = in one call')
    ap.add_argument('--no-single', action='store_true',
                    help='without the second shape_router slot (sr1), read '
                         'in one call, that tells restart problems from '
                         'others')
    ap.add_argument('--work-mem', default='64kB',
                    help='logical_decoding_work_mem while decoding (small: '
                         'transactions spill to disk)')
    ap.add_argument('--strict-removal', action='store_true',
                    help='removal-timing deviations fail the run too')
    ap.add_argument('--fresh-connections', action='store_true',
                    help='create and read the slots in one new connection '
                         'per call instead of in the main session (which '
                         'then goes on with the workload)')
    ap.add_argument('--crowd-groups', type=int, default=2,
                    help='groups of shapes sharing one unselective conjunct, '
                         'added in several transactions during the workload')
    ap.add_argument('--crowd-min', type=int, default=50)
    ap.add_argument('--crowd-max', type=int, default=150)
    ap.add_argument('--perm-share', type=float, default=0.05,
                    help='share of the shapes that are conjunctions of 2-4 '
                         'indexable conjuncts, also added in other orders')
    ap.add_argument('--perm-usual', type=float, default=0.25,
                    help='share of the usual conjunctive shapes also added '
                         'in other orders')
    ap.add_argument('--max-report', type=int, default=20)
    # triage only: leave out a part of the workload (a different workload
    # for the same seed)
    ap.add_argument('--no-truncate', action='store_true',
                    help='triage: no TRUNCATE')
    ap.add_argument('--no-maintenance', action='store_true',
                    help='triage: no ANALYZE/VACUUM/CLUSTER/REINDEX/ALTER '
                         'TABLE/COMMENT')
    ap.add_argument('--no-side', action='store_true',
                    help='triage: no second session (no transaction open '
                         'across other commits)')
    ap.add_argument('--no-nan-int-casts', action='store_true',
                    help='triage: no casts of numeric to int / bigint in '
                         'the grammar (numeric NaN and Infinity raise '
                         'SQLSTATE 0A000 there, not a data exception)')
    ap.add_argument('--value-sample', type=float, default=1.0,
                    help='share of records whose "new"/"key" values are '
                         'compared')
    ap.add_argument('--identity', choices=('full', 'default', 'index'),
                    default='full',
                    help='replica identity of dd.t: FULL (the old rows in '
                         'the WAL), DEFAULT (its primary key) or USING '
                         'INDEX (a unique index on id, no primary key); '
                         'the last two test the membership index')
    ap.add_argument('--lenient-toast', action='store_true',
                    help='triage (--identity default / index): accept S '
                         'invalidated naming an unchanged TOASTed column '
                         'for every shape that reads it, also where the '
                         'predicate\'s answer is determined without it')
    args = ap.parse_args()
    keyed = args.identity != 'full'

    seed = args.seed if args.seed is not None else \
        random.SystemRandom().randrange(1, 2 ** 31)
    print('decoding_diff: seed=%d' % seed, flush=True)
    t0 = time.time()
    gen = Gen(seed, nan_int_casts=not args.no_nan_int_casts)
    gen.perm_share = args.perm_share
    gen.perm_usual = args.perm_usual

    main_conn = connect('main')
    main_conn.autocommit = True
    cur = main_conn.cursor()
    cur.execute('SET client_min_messages = warning')
    # a lock wait between the harness' own sessions is a harness bug: fail
    # rather than hang
    cur.execute("SET lock_timeout = '60s'")

    def decode_call(sql, setup=None):
        if not args.fresh_connections:
            for s in setup or []:
                cur.execute(s)
            cur.execute(sql)
            return cur.fetchall()
        return one_shot(sql, setup=setup)

    w2j_options = W2J_KEYED_OPTIONS if keyed else W2J_OPTIONS
    sr1_options = SR1_KEYED_OPTIONS if keyed else SR_OPTIONS

    def decode_all(setup, partial):
        w2j_rows = decode_call(
            "SELECT lsn::text, xid::text::bigint, data FROM "
            "pg_logical_slot_get_changes('w2j', '%s', NULL, %s)"
            % (end_lsn, w2j_options), setup)
        partial['w2j'] = w2j_rows
        batches = []
        brand = random.Random(seed * 7919 + 1)
        while True:
            n = brand.randint(1, 2 * args.sr_batch) if args.sr_batch > 0 \
                else None
            rows = decode_call(
                "SELECT lsn::text, xid::text::bigint, data FROM "
                "pg_logical_slot_get_changes('sr', '%s', %s, %s)"
                % (end_lsn, 'NULL' if n is None else n, SR_OPTIONS), setup)
            if not rows:
                break
            batches.append(rows)
            if n is None:
                break
        sr1_rows = None
        if single:
            sr1_rows = decode_call(
                "SELECT lsn::text, xid::text::bigint, data FROM "
                "pg_logical_slot_get_changes('sr1', '%s', NULL, %s)"
                % (end_lsn, sr1_options), setup)
        return w2j_rows, batches, sr1_rows

    # ---- setup ----
    single = args.sr_batch > 0 and not args.no_single
    for slot in ('sr', 'sr1', 'w2j'):
        cur.execute('SELECT pg_drop_replication_slot(slot_name) FROM '
                    'pg_replication_slots WHERE slot_name = %s', (slot,))
    cur.execute('CREATE EXTENSION IF NOT EXISTS shape_router')
    cur.execute("SELECT to_regclass('dd.t')")
    if cur.fetchone()[0] is not None:
        cur.execute("SELECT shape_router.remove_shape(shape_id) FROM "
                    "shape_router.shapes WHERE relid = 'dd.t'::regclass")
    if keyed:
        cur.execute(SETUP_SQL_KEYED[args.identity] % ', '.join(
            '%s %s' % (c, GENERATED.get(c, t)) for c, t in COLUMNS))
    else:
        cur.execute(SETUP_SQL)

    side_conn = connect('side')
    side_conn.autocommit = True
    side_conn.cursor().execute("SET lock_timeout = '60s'")
    wl = Workload(gen, main_conn, side_conn, args)

    # Half of the first shapes exist before the slots (loaded from the
    # catalog when decoding starts), half are added after.
    first = args.shapes // 2
    if keyed:
        # rows first: the shapes added before the slots search them (and
        # may fail on them); the slots lack those shapes' members (S
        # unsynced) until resync_shapes()
        cur.execute('BEGIN')
        ids, counter = set(), [0]
        for _ in range(6):
            wl.stmt(1, cur, ids, counter)
        cur.execute('COMMIT')
        wl.ids[1] = ids
        live = set()
        cur.execute('BEGIN')
        wl.add_shapes(cur, first, live)
        cur.execute('COMMIT')
        wl.live = live
        wl.maybe_unsynced = set(live)
    else:
        live = set()
        wl.add_shapes(cur, first, live)
        wl.live = live
        # some rows before the slots too
        cur.execute('BEGIN')
        ids, counter = set(), [0]
        for _ in range(3):
            wl.stmt(1, cur, ids, counter)
        cur.execute('COMMIT')
        wl.ids[1] = ids

    cur.execute("SELECT shape_id FROM shape_router.shapes "
                "WHERE relid = 'dd.t'::regclass")
    initial_shapes = set(r[0] for r in cur.fetchall())
    if initial_shapes != wl.live:
        fail_harness('catalog has %d shapes, the harness expects %d'
                     % (len(initial_shapes), len(wl.live)))

    decode_call("SELECT 'x' FROM pg_create_logical_replication_slot("
                "'sr', 'shape_router')")
    if single:
        decode_call("SELECT 'x' FROM pg_create_logical_replication_slot("
                    "'sr1', 'shape_router')")
    decode_call("SELECT 'x' FROM pg_create_logical_replication_slot("
                "'w2j', 'wal2json')")
    cur.execute("SELECT slot_name, confirmed_flush_lsn FROM "
                "pg_replication_slots WHERE slot_name IN ('sr', 'sr1', 'w2j')")
    print('decoding_diff: slots at %s' % dict(cur.fetchall()), flush=True)
    initial_rows = None
    if keyed:
        # the rows as the slots start (nothing writes meanwhile): the
        # replica's first contents
        initial_rows = table_rows(cur)
        print('decoding_diff: %d rows before the slots (the replica\'s '
              'initial contents), %d shapes before the slots'
              % (len(initial_rows), len(initial_shapes)), flush=True)

    live = set(wl.live)
    cur.execute('BEGIN')
    wl.add_shapes(cur, args.shapes - first, live)
    cur.execute('COMMIT')
    wl.live = live

    # ---- workload ----
    t1 = time.time()
    target = int(args.min_changes * 1.08) + 200
    wl.plan_extras(target)
    wl.run(target)
    cur.execute('SELECT pg_current_wal_lsn()')
    end_lsn = cur.fetchone()[0]
    t_work = time.time() - t1
    print('decoding_diff: workload: %s (%.1fs)' % (
        ' '.join('%s=%d' % kv for kv in sorted(wl.stats.items())), t_work),
        flush=True)
    side_conn.close()
    if wl.check_conn is not None:
        wl.check_conn.close()

    # ---- decode ----
    t1 = time.time()
    setup = ["SET logical_decoding_work_mem = '%s'" % args.work_mem]
    partial = {}
    try:
        w2j_rows, batches, sr1_rows = decode_all(setup, partial)
    except psycopg2.Error as ex:
        # the plugin raised: the slot cannot advance past that change
        print('DECODING FAILED (the slot cannot get past this change; a '
              'shape\'s evaluation error must invalidate that shape only):'
              '\n  %s' % str(ex).strip().replace('\n', '\n  '))
        explain_decoding_failure(cur, str(ex), partial.get('w2j'), wl,
                                 dict(initial_rows) if keyed else None)
        sys.exit(1)
    t_decode = time.time() - t1
    print('decoding_diff: decoded: wal2json %d rows, shape_router %d rows '
          'in %d calls%s (%.1fs)' % (
              len(w2j_rows), sum(map(len, batches)), len(batches) + 1,
              ', and %d rows in one call' % len(sr1_rows) if single else '',
              t_decode), flush=True)

    replica = dict(initial_rows) if keyed else None
    w2j = parse_w2j(w2j_rows, replica)
    del w2j_rows
    if keyed:
        # the replica kept from the stream must be the table
        now = table_rows(cur)
        if now != replica:
            diff = sorted(k for k in set(now) | set(replica)
                          if now.get(k) != replica.get(k))
            fail_harness('the replica kept from the wal2json stream differs '
                         'from dd.t at the end on %d keys (%s)'
                         % (len(diff), diff[:10]))
        del now
    sr, sr_order, sr_problems = parse_sr(batches)
    sr_single = parse_sr([sr1_rows]) if single else None

    # ---- shapes per transaction, from the WAL ----
    cur.execute("SELECT shape_id FROM shape_router.shapes "
                "WHERE relid = 'dd.t'::regclass")
    final_shapes = set(r[0] for r in cur.fetchall())
    active = set(initial_shapes)
    txn_info = []            # per w2j txn: active (contract), removed in txn
    shape_life = {}          # shape id -> {'added': (txn, lsn), 'removed': ..}
    all_shapes = set(initial_shapes)
    nchanges = 0
    nother = 0               # changes of dd.u, a table without shapes
    for tx in w2j:
        added, removed = {}, {}
        for ch in tx['changes']:
            if ch['table'] != 'shape_router.shapes':
                if ch['table'] == TABLE:
                    nchanges += 1
                else:
                    nother += 1
                continue
            if ch['kind'] == 'I':
                sid = int(ch['new']['shape_id'])
                if ch['new']['relid'] is not None:
                    added[sid] = ch['lsn']
            elif ch['kind'] == 'D':
                removed[int(ch['old']['shape_id'])] = ch['lsn']
            else:
                fail_harness('UPDATE of shape_router.shapes in the stream')
        # contract: neither the shapes this txn adds nor those it removes
        A = frozenset(active - set(removed))
        txn_info.append({'active': A, 'removed': removed, 'added': added,
                         'removed_active': {s: l for s, l in removed.items()
                                            if s in active}})
        active = (active | set(added)) - set(removed)
        all_shapes |= set(added)
        for sid, l in added.items():
            shape_life.setdefault(sid, {})['added'] = (len(txn_info) - 1, l)
        for sid, l in removed.items():
            shape_life.setdefault(sid, {})['removed'] = (len(txn_info) - 1, l)
    # how many earlier-committing transactions committed after this one's
    # first change (it was open across their commits)
    overlaps = []
    for ti, tx in enumerate(w2j):
        first = min((lsn_int(c['lsn']) for c in tx['changes']),
                    default=lsn_int(tx['commit_lsn']))
        k = 0
        for tj in range(ti - 1, -1, -1):
            if lsn_int(w2j[tj]['commit_lsn']) > first:
                k += 1
            elif ti - tj > 200:
                break
        overlaps.append(k)
    if active != final_shapes or final_shapes != wl.live:
        fail_harness('shapes after the stream (%d) != catalog (%d) != '
                     'harness (%d)' % (len(active), len(final_shapes),
                                       len(wl.live)))
    unknown_preds = [s for s in all_shapes if s not in wl.preds]
    if unknown_preds:
        fail_harness('shapes of unknown predicate: %s' % unknown_preds[:10])
    nshapes = len(all_shapes)

    # ---- oracle: every row image, every predicate ----
    # Identical images (the old row of a change is often the new row of the
    # one before) are evaluated once.
    t1 = time.time()
    images = []         # image id -> row (texts)
    image_of = {}       # row (texts) -> image id
    nimg_refs = 0
    img_first = []      # image id -> first and last txn naming it
    img_last = []

    def add_image(row, ti):
        key = tuple(row[c] for c in COLNAMES)
        i = image_of.get(key)
        if i is None:
            i = image_of[key] = len(images)
            images.append(row)
            img_first.append(ti)
            img_last.append(ti)
        img_last[i] = max(img_last[i], ti)
        return i
    # --identity default / index: an image is also named while it is a row
    # of the table (the initial members of a shape added meanwhile): from
    # the initial contents or its change to the change that replaces it,
    # the TRUNCATE that empties the table, or the end
    current = {}
    if keyed:
        for k in sorted(initial_rows):
            current[k] = add_image(initial_rows[k], 0)
    initial_img = dict(current)
    for ti, tx in enumerate(w2j):
        for ch in tx['changes']:
            if ch['table'] != TABLE:
                continue
            if keyed and ch['kind'] == 'T':
                for i in current.values():
                    img_last[i] = max(img_last[i], ti)
                current.clear()
            for side in ('old', 'new'):
                if ch[side] is not None:
                    ch[side + '_img'] = add_image(ch[side], ti)
                    nimg_refs += 1
            if keyed and ch['old'] is not None:
                current.pop(int(ch['old']['id']))
            if keyed and ch['new'] is not None:
                current[int(ch['new']['id'])] = ch['new_img']
    for i in current.values():
        img_last[i] = len(w2j) - 1
    del image_of, current
    # A shape is compared on the changes of the transactions from the one
    # after it was added to the one that removed it (where a removal applied
    # at the remove, not at commit, is tried): its life.  The oracle
    # evaluates it on the images named in its life only.
    # (--identity default / index: from the transaction that added it, for
    # its initial members)
    life = {}
    for sid in all_shapes:
        h = shape_life.get(sid, {})
        life[sid] = (h['added'][0] + (0 if keyed else 1) if 'added' in h
                     else 0,
                     h['removed'][0] if 'removed' in h else len(w2j) - 1)

    def in_life(i, sid):
        f, l = life[sid]
        return img_last[i] >= f and img_first[i] <= l

    def life_where(f, l):
        return 'img_last_txn >= %d AND img_first_txn <= %d' % (f, l)
    cur.execute('DROP TABLE IF EXISTS dd.img')
    cur.execute('CREATE TABLE dd.img (image_id int PRIMARY KEY, LIKE dd.t, '
                'img_first_txn int, img_last_txn int)')
    rs_cols = ', '.join('%s text' % c for c in COLNAMES)
    casts = ', '.join('x.%s::%s' % (c, COLTYPE[c]) for c in COLNAMES)
    step = 2000
    for start in range(0, len(images), step):
        docs = []
        for i in range(start, min(start + step, len(images))):
            d = dict(images[i])
            d['image_id'] = str(i)
            d['img_first_txn'] = img_first[i]
            d['img_last_txn'] = img_last[i]
            docs.append(d)
        cur.execute('INSERT INTO dd.img SELECT x.image_id::int, %s, '
                    'x.img_first_txn, x.img_last_txn FROM '
                    'jsonb_to_recordset(%%s::jsonb) AS x(image_id text, %s, '
                    'img_first_txn int, img_last_txn int)'
                    % (casts, rs_cols), (json.dumps(docs),))
    # the images must be the rows as stored: compare with what the slot saw
    cur.execute('ANALYZE dd.img')
    # Per shape: the images where it is true, and those where it raises
    # (image id -> SQLSTATE).  PostgreSQL evaluates the predicate as
    # written, in the target list, per row (see the docstring).  A shape
    # whose set query raises is evaluated per row, lazily, in image id order
    # (the order of the stream: a change never names an image of a later
    # one), as far as the comparison needs it: an erroring shape is mostly
    # invalidated at its first evaluation error, and nothing after that
    # point matters for it.
    img_shapes = [set() for _ in images]   # image id -> shapes true on it
    img_errs = [None] * len(images)    # image id -> {shape id: SQLSTATE}
    err_shapes = set()                 # shapes whose set query raised
    frontier = {}                      # erroring shape -> next image id
    lazy = {'calls': 0, 'rows': 0, 'time': 0.0}
    err_codes = {}
    # the crowded groups' and the reordered conjunctions' shapes (nearly
    # all clean) in batches, the others one by one
    # (by life: a batch is evaluated on the images of its lives' union)
    tagged = sorted((sid for sid in all_shapes if sid in wl.tags),
                    key=lambda sid: (life[sid], sid))
    batched = {}
    for start in range(0, len(tagged), 32):
        sids = tagged[start:start + 32]
        batched.update(zip(sids, oracle_set_many(
            cur, 'dd.img', 'image_id',
            ['true' if wl.preds[sid] is None else wl.preds[sid]
             for sid in sids],
            life_where(min(life[x][0] for x in sids),
                       max(life[x][1] for x in sids)))))
    true_imgs = {}                     # reordered shapes -> true images
    for sid in sorted(all_shapes):
        p = wl.preds[sid]
        res = batched[sid] if sid in batched else \
            oracle_set(cur, 'dd.img', 'image_id', 'true' if p is None else p,
                       life_where(*life[sid]))
        if sid in wl.tags and wl.tags[sid][0] == 'perm' and res is not None:
            true_imgs[sid] = res[0]
        if res is None:
            err_shapes.add(sid)
            frontier[sid] = 0
            continue
        for i in res[0]:
            img_shapes[i].add(sid)

    def evaluate(sid, upto):
        """Evaluate erroring shape sid on the images up to upto."""
        p = wl.preds[sid]
        t_start = time.time()
        while frontier[sid] <= upto:
            lo = frontier[sid]
            hi = min(len(images), max(lo + 512, upto + 1, 2 * lo))
            res = oracle_rows(cur, 'dd.img', 'image_id', p,
                              'sr_oracle_%d' % sid, lo, hi, lo == 0)
            if res is None:
                fail_harness('shape %d raises in the per-row oracle too '
                             '(not a row\'s error?): %s' % (sid, p))
            lazy['calls'] += 1
            lazy['rows'] += hi - lo
            for i in res[0]:
                img_shapes[i].add(sid)
            for i, code in res[2].items():
                if code == 'inconsistent':
                    fail_harness('shape %d raised in the cursor but not '
                                 'alone (or with another SQLSTATE) on image '
                                 '%d: %s' % (sid, i, p))
                if img_errs[i] is None:
                    img_errs[i] = {}
                img_errs[i][sid] = code
                err_codes[code] = err_codes.get(code, 0) + 1
            frontier[sid] = hi
        lazy['time'] += time.time() - t_start

    def ensure(ch, A):
        """The oracle's answers of the erroring shapes in A on the images of
        change ch."""
        top = max(ch[side + '_img'] for side in ('old', 'new')
                  if ch[side] is not None)
        for sid in err_shapes & A:
            if frontier[sid] <= top:
                evaluate(sid, top)

    # The conjunctions added in several orders: the orders that raise
    # nowhere are compared record for record; PostgreSQL must agree first
    # (AND is commutative where nothing raises)
    perm_groups = {}
    for sid in sorted(all_shapes):
        tag = wl.tags.get(sid)
        if tag is not None and tag[0] == 'perm' and sid not in err_shapes:
            perm_groups.setdefault(tag[1], []).append(sid)
    perm_groups = {g: m for g, m in perm_groups.items() if len(m) >= 2}
    perm_member = {sid: g for g, m in perm_groups.items() for sid in m}
    for g, m in sorted(perm_groups.items()):
        for sid in m[1:]:
            # on the images of both lives
            if set(i for i in true_imgs[sid]
                   if in_life(i, m[0]) and in_life(i, sid)) != \
                    set(i for i in true_imgs[m[0]]
                        if in_life(i, m[0]) and in_life(i, sid)):
                fail_harness('conjunctions in other orders answer differently '
                             'in PostgreSQL:\n  shape %d: %s\n  shape %d: %s'
                             % (m[0], wl.preds[m[0]], sid, wl.preds[sid]))
    del true_imgs

    t_oracle = time.time() - t1
    print('decoding_diff: oracle: %d images (%d distinct), %d shapes, %d of '
          'them raise on some image (evaluated per row, lazily) (%.1fs)' % (
              nimg_refs, len(images), len(all_shapes), len(err_shapes),
              t_oracle), flush=True)

    # ---- expected records ----
    def expect(ch, A):
        """[(action, move, (shape ids))] for one change and active shapes."""
        if ch['kind'] == 'T':
            return [('T', None, tuple(sorted(A)))] if A else []
        out = []

        def add(action, move, ids):
            if ids:
                out.append((action, move, tuple(sorted(ids))))
        old = img_shapes[ch['old_img']] & A if ch['old'] is not None else None
        new = img_shapes[ch['new_img']] & A if ch['new'] is not None else None
        if ch['kind'] == 'I':
            add('I', None, new)
        elif ch['kind'] == 'D':
            add('D', None, old)
        elif ch['old']['id'] != ch['new']['id']:
            add('D', None, old)
            add('I', None, new)
        else:
            add('U', None, old & new)
            add('I', 'in', new - old)
            add('D', 'out', old - new)
        return out

    def kinds_for(ch, o, n):
        """The (action, move) records of one shape, given its answers for
        the old and the new row (None: no such row)."""
        if ch['kind'] == 'I':
            return (('I', None),) if n else ()
        if ch['kind'] == 'D':
            return (('D', None),) if o else ()
        if ch['old']['id'] != ch['new']['id']:
            return ((('D', None),) if o else ()) + \
                ((('I', None),) if n else ())
        if o and n:
            return (('U', None),)
        if n:
            return (('I', 'in'),)
        if o:
            return (('D', 'out'),)
        return ()

    def possible_kinds(ch, sid, e):
        """Every record list a shape may get on a change where PostgreSQL
        raises for it on the rows named in e ('old' / 'new'): any answer
        for those rows, PostgreSQL's for the others."""
        sides = []
        for side in ('old', 'new'):
            if ch[side] is None:
                sides.append([None])
            elif side in e:
                sides.append([True, False])
            else:
                sides.append([sid in img_shapes[ch[side + '_img']]])
        return set(kinds_for(ch, o, n) for o in sides[0] for n in sides[1])

    def check_change(ch, A, got):
        """One change of dd.t against the records got at its LSN.  A: the
        shapes that must route it (active, not invalidated in this stream).
        Shapes for which PostgreSQL raises on a row the change needs (err)
        may get S invalidated here (V) and then nothing more, or records
        consistent with any answer on the raising rows; every other shape
        gets exactly its records.  -> (problems, V, err, per-shape records
        of err, expected records of the others, got records without err)"""
        err = {}
        if ch['kind'] != 'T':
            ensure(ch, A)
            for side in ('old', 'new'):
                if ch[side] is not None:
                    e = img_errs[ch[side + '_img']]
                    if e:
                        for sid, code in e.items():
                            if sid in A:
                                err.setdefault(sid, {})[side] = code
        exp = expect(ch, A - set(err))
        problems = []
        V = set()
        filt = []
        per_err = {sid: [] for sid in err}
        for item in got:
            if item[0] == 'S':
                if item[1] == 'invalidated' and item[2] in err and \
                        item[2] not in V and len(item) > 3 and \
                        str(item[3]).startswith('evaluation failed'):
                    V.add(item[2])
                else:
                    problems.append('unexpected %s' % (item,))
                    filt.append(item)
                continue
            keep = tuple(x for x in item[2] if x not in err)
            for x in item[2]:
                if x in err:
                    per_err[x].append(item[:2])
            if keep:
                filt.append((item[0], item[1], keep))
        if filt != exp:
            problems.append('records of the shapes without an error differ')
        for sid, kinds in sorted(per_err.items()):
            # invalidated here: nothing, or records as if not invalidated
            if not (sid in V and not kinds) and \
                    tuple(kinds) not in possible_kinds(ch, sid, err[sid]):
                problems.append('shape %d (PostgreSQL raises on the %s row) '
                                'got %s' % (sid, '/'.join(sorted(err[sid])),
                                            kinds))
        return problems, V, err, per_err, exp, filt

    # ---- compare ----
    def compare(sr, sr_order, sr_problems):
        """Compare one shape_router stream with the expectation."""
        mismatches = []          # real
        deviations = []          # removal timing
        value_mismatches = []
        framing = list(sr_problems)
        compared_pairs = 0
        value_checked = 0
        vrand = random.Random(seed + 17)
        w2j_xids = set()
        session_start = set()
        # the transaction after the last one each batch wrote starts a session
        last_of_batch = {}
        for xid in sr_order:
            last_of_batch[sr[xid]['batch']] = xid
        last_xids = set(last_of_batch.values())
        prev_last = True
        cov = {'unchanged_toast': 0, 'key_change': 0, 'move_in': 0,
               'move_out': 0, 'U': 0, 'I': 0, 'D': 0, 'T': 0, 'S': 0,
               'concurrent_txns': 0}
        # evaluation errors
        dead = {}                # shape -> (txn, lsn) of its invalidation
        perm_set = frozenset(perm_member)
        aeff_for = None          # (txn, len(dead)) Aeff and here are of
        perm_stats = {'pairs': 0, 'with_records': 0}
        perm_mismatches = []     # (xid, txn, lsn, group, {shape: records})
        err_rows = {}            # row id -> txn of an invalidation on it
        est = {'invalidated': 0, 'error_changes': 0, 'error_shape_pairs': 0,
               'routed_despite_error': 0, 'records_despite_error': 0,
               'records_at_invalidation': 0, 'others_on_error_changes': 0,
               'post_error_pairs': 0, 'post_error_records': 0,
               'invalidated_in_batch_start_txn': 0}

        for ti, tx in enumerate(w2j):
            xid = tx['xid']
            w2j_xids.add(xid)
            if prev_last:
                session_start.add(xid)
            prev_last = xid in last_xids
            info = txn_info[ti]
            A = info['active']
            got_tx = sr.get(xid)
            got_by_lsn = {}
            recs_by_lsn = {}
            if got_tx is not None:
                for lsncol, rec in got_tx['records']:
                    act = rec.get('action')
                    if act == 'S':
                        key = lsncol
                        item = ('S', rec.get('event'), rec.get('shape'))
                        if rec.get('reason'):
                            item = item + (rec['reason'],)
                    else:
                        key = rec.get('lsn', lsncol)
                        item = (act, rec.get('move'), tuple(rec.get('shapes', [])))
                    got_by_lsn.setdefault(key, []).append(item)
                    recs_by_lsn.setdefault(key, []).append(rec)
                if got_tx['begin'].get('lsn') != tx['commit_lsn'] or \
                        got_tx['commit'].get('lsn') != tx['commit_lsn']:
                    framing.append('xid %s: B/C lsn %s/%s, commit LSN is %s' % (
                        xid, got_tx['begin'].get('lsn'),
                        got_tx['commit'].get('lsn'), tx['commit_lsn']))
                if got_tx['begin'].get('xid') != xid or \
                        got_tx['commit'].get('xid') != xid:
                    framing.append('xid %s: B/C carry xid %s/%s' % (
                        xid, got_tx['begin'].get('xid'),
                        got_tx['commit'].get('xid')))
            if got_tx is not None and not got_tx['records']:
                framing.append('xid %s: B/C written around no record' % xid)

            # (a TRUNCATE of two tables is one change per table at one LSN)
            changes_by_lsn = {}
            for ch in tx['changes']:
                if ch['lsn'] not in changes_by_lsn or ch['table'] == TABLE:
                    changes_by_lsn[ch['lsn']] = ch
            any_expected = False
            for lsn in sorted(set(changes_by_lsn) | set(got_by_lsn),
                              key=lsn_int):
                got = got_by_lsn.get(lsn, [])
                for item in got:
                    if item[0] in cov:
                        cov[item[0]] += 1
                    if item[1] == 'in':
                        cov['move_in'] += 1
                    elif item[1] == 'out':
                        cov['move_out'] += 1
                ch = changes_by_lsn.get(lsn)
                entry = None
                if ch is not None and ch['table'] == TABLE:
                    # (A changes per transaction, dead rarely: cached)
                    if aeff_for != (ti, len(dead)):
                        aeff_for = (ti, len(dead))
                        Aeff = A - set(dead)
                        here = {}
                        for sid in perm_set & Aeff:
                            here.setdefault(perm_member[sid], []).append(sid)
                        here = [m for m in here.values() if len(m) > 1]
                    compared_pairs += len(Aeff)
                    if ch['unchanged_toast']:
                        cov['unchanged_toast'] += 1
                    if ch['kind'] == 'U' and \
                            ch['old']['id'] != ch['new']['id']:
                        cov['key_change'] += 1
                    problems, V, err, per_err, exp, filt = \
                        check_change(ch, Aeff, got)
                    # the same conjunction in other orders: the same records
                    if here:
                        pk = {}
                        for item in got:
                            if item[0] != 'S':
                                for x in item[2]:
                                    if x in perm_set:
                                        pk.setdefault(x, []).append(item[:2])
                        for m in here:
                            perm_stats['pairs'] += len(m) - 1
                            if not pk:
                                continue
                            first = pk.get(m[0], [])
                            if all(pk.get(x, []) == first for x in m[1:]):
                                if first:
                                    perm_stats['with_records'] += 1
                                continue
                            perm_mismatches.append((
                                xid, ti, lsn, perm_member[m[0]],
                                {x: tuple(pk.get(x, ())) for x in m}, ch))
                    any_expected = any_expected or bool(exp)
                    # coverage of the evaluation errors
                    if err:
                        est['error_changes'] += 1
                        est['error_shape_pairs'] += len(err)
                        est['others_on_error_changes'] += len(Aeff) - len(err)
                    for sid in err:
                        if sid in V:
                            if per_err[sid]:
                                est['records_at_invalidation'] += 1
                        else:
                            est['routed_despite_error'] += 1
                            if per_err[sid]:
                                est['records_despite_error'] += 1
                    rids = set(int(ch[side]['id']) for side in ('old', 'new')
                               if ch[side] is not None)
                    since = [err_rows[r] for r in rids if r in err_rows]
                    if since:
                        routed = set(x for item in got if item[0] != 'S'
                                     for x in item[2])
                        for sid in Aeff:
                            h = shape_life.get(sid, {}).get('added')
                            if h is not None and h[0] > min(since):
                                est['post_error_pairs'] += 1
                                if sid in routed:
                                    est['post_error_records'] += 1
                    for item in got:
                        # invalidated, legitimately or not: no more records
                        if item[0] == 'S' and item[1] == 'invalidated' and \
                                item[2] in A and item[2] not in dead:
                            dead[item[2]] = (ti, lsn)
                    if V:
                        est['invalidated'] += len(V)
                        if xid in session_start:
                            est['invalidated_in_batch_start_txn'] += len(V)
                        for r in rids:
                            err_rows.setdefault(r, ti)
                    if problems:
                        entry = {'xid': xid, 'txn': ti, 'lsn': lsn,
                                 'change': ch, 'expected': exp, 'got': filt,
                                 'got_raw': got, 'active': Aeff,
                                 'problems': problems, 'err': err,
                                 'dead': dict(dead),
                                 'session_start': xid in session_start,
                                 'batch': got_tx['batch'] if got_tx else None}
                        # explained by removals applied at the remove, not
                        # at commit?
                        if info['removed_active']:
                            alt = A | {s for s, l in
                                       info['removed_active'].items()
                                       if lsn_int(l) > lsn_int(lsn)}
                            if not check_change(ch, alt - set(dead), got)[0]:
                                deviations.append(entry)
                                continue
                else:
                    exp = []
                    if ch is not None and ch['table'] == 'shape_router.shapes':
                        exp = [('S', 'added' if ch['kind'] == 'I'
                                else 'removed',
                                int((ch['new'] if ch['kind'] == 'I'
                                     else ch['old'])['shape_id']))]
                    any_expected = any_expected or bool(exp)
                    if exp != got:
                        entry = {'xid': xid, 'txn': ti, 'lsn': lsn,
                                 'change': ch, 'expected': exp, 'got': got,
                                 'got_raw': got, 'active': A - set(dead),
                                 'problems': [], 'err': {},
                                 'dead': dict(dead),
                                 'session_start': xid in session_start,
                                 'batch': got_tx['batch'] if got_tx else None}
                if entry is not None:
                    mismatches.append(entry)
                    continue
                # values of the records ("new", "key")
                if ch is None or ch['table'] != TABLE or \
                        vrand.random() >= args.value_sample:
                    continue
                for rec in recs_by_lsn.get(lsn, []):
                    act = rec.get('action')
                    if act in ('I', 'U'):
                        value_checked += 1
                        newv = rec.get('new')
                        if not isinstance(newv, dict) or \
                                list(newv.keys()) != COLNAMES or \
                                any(not same_json_value(
                                    c, expected_json_value(c, ch['new'][c]),
                                    newv[c]) for c in COLNAMES):
                            value_mismatches.append((xid, lsn, act, 'new',
                                                     ch['new'], newv))
                        if 'unchanged_toast' in rec:
                            value_mismatches.append((xid, lsn, act,
                                                     'unchanged_toast', None,
                                                     rec['unchanged_toast']))
                    if act in ('U', 'D'):
                        value_checked += 1
                        keyv = rec.get('key')
                        if keyv != {'id': int(ch['old']['id'])}:
                            value_mismatches.append((xid, lsn, act, 'key',
                                                     {'id': ch['old']['id']},
                                                     keyv))
                    if act == 'D' and 'new' in rec or act == 'I' and 'key' in rec:
                        value_mismatches.append((xid, lsn, act, 'fields', None,
                                                 sorted(rec)))
            if got_tx is None and any_expected:
                framing.append('xid %s: expected records but no transaction '
                               'written' % xid)
            if got_tx is not None:
                keys = [k for k in got_by_lsn]
                if keys != sorted(keys, key=lsn_int):
                    framing.append('xid %s: records not in WAL order' % xid)
        for xid in sr:
            if xid not in w2j_xids:
                framing.append('xid %s written by shape_router only' % xid)
        if [x for x in sr_order] != [t['xid'] for t in w2j if t['xid'] in sr]:
            framing.append('transactions not in commit order')
        cov['concurrent_txns'] = wl.stats['side_txns']
        cov['other_table_changes'] = nother
        return {'mismatches': mismatches, 'deviations': deviations,
                'framing': framing, 'value_mismatches': value_mismatches,
                'compared_pairs': compared_pairs,
                'value_checked': value_checked, 'cov': cov, 'errors': est,
                'dead': dead, 'perm_mismatches': perm_mismatches,
                'perm_pairs': perm_stats['pairs'],
                'perm_with_records': perm_stats['with_records']}

    # ---- --identity default / index: the unchanged-TOAST oracle ----
    # An UPDATE that leaves a TOASTed value unchanged logs the new row
    # without it, and no old row: a shape whose predicate reads it is
    # evaluated with it unknown.  The oracle: the predicate's boolean
    # skeleton (AND / OR / NOT over atoms, bool_skeleton()), every atom that
    # reads the column unknown, the others PostgreSQL's answer on the new
    # row, Kleene's logic with a fourth value (unknown): determined -> the
    # shape routes by that answer; unknown -> S invalidated naming the
    # column.  An atom that raises alone is unknown too, and the plugin may
    # then invalidate it for the error instead.
    reads_toast = {}

    def toast_reader(sid):
        if sid not in reads_toast:
            p = wl.preds[sid]
            reads_toast[sid] = p is not None and reads_column(p, TOAST_COL)
        return reads_toast[sid]

    def atom_values(atoms, imgs):
        """{image: [atom value]}: 'T' / 'F' / 'N', 'E' where it raises."""
        out = {i: [None] * len(atoms) for i in imgs}

        def run(j, part):
            toast_cost['atom_queries'] += 1
            try:
                cur.execute('SELECT image_id, (%s)::bool FROM dd.img WHERE '
                            'image_id = ANY(%%s)'
                            % atoms[j].replace('%', '%%'), (part,))
            except psycopg2.Error as ex:
                if (ex.pgcode or '').startswith('42'):
                    fail_harness('atom %r of a skeleton is not SQL: %s'
                                 % (atoms[j], str(ex).strip()))
                if len(part) == 1:
                    out[part[0]][j] = 'E'
                    return
                run(j, part[:len(part) // 2])
                run(j, part[len(part) // 2:])
                return
            for i, v in cur.fetchall():
                out[i][j] = 'N' if v is None else 'T' if v else 'F'
        t = time.time()
        for j in range(len(atoms)):
            run(j, list(imgs))
        toast_cost['atoms'] += time.time() - t
        return out

    # Where Kleene's answer is unknown, the answer may still not depend on
    # the value (a TOASTed value is never NULL, say): the predicate on the
    # row with other values of the column (none NULL; short and long, of
    # the grammar's prefixes).  Routing is then accepted too; where the
    # answer changes with the value it would be a guess.
    alt_values = ['', 'a', 'abc', 'P1', 'p1short', 'p2', 'q', 'x y',
                  'p1' + 'x' * 3000, 'P1' + 'ab' * 1600, 'qz' * 1800,
                  '日本語' * 1200]

    def invariant(sid, imgs):
        """{image: True if the predicate's truth is the same for the row's
        own value and every alternative, False if not, None if one of
        them raises}"""
        p = wl.preds[sid]
        cols = ', '.join('%%s::text AS %s' % c if c == TOAST_COL else c
                         for c in COLNAMES)
        out = {}
        t = time.time()
        for i in imgs:
            vals = set()
            toast_cost['alt_queries'] += len(alt_values) + 1
            for v in [None] + alt_values:
                try:
                    if v is None:
                        cur.execute('SELECT (%s)::bool FROM dd.img WHERE '
                                    'image_id = %%s' % p.replace('%', '%%'),
                                    (i,))
                    else:
                        cur.execute(
                            'SELECT (%s)::bool FROM (SELECT %s FROM dd.img '
                            'WHERE image_id = %%s) dd_alt'
                            % (p.replace('%', '%%'), cols), (v, i))
                    vals.add(cur.fetchone()[0] is True)
                except psycopg2.Error as ex:
                    if (ex.pgcode or '').startswith('42'):
                        fail_harness('shape %d on other values of %s: %s'
                                     % (sid, TOAST_COL, str(ex).strip()))
                    vals = None
                    break
            out[i] = None if vals is None else len(vals) == 1
        toast_cost['alt'] += time.time() - t
        return out

    toast_k = {}            # (shape, image) -> (Kleene answer, an atom
                            # raises, answer independent of the value)
    toast_cost = {'atoms': 0.0, 'atom_queries': 0, 'alt': 0.0,
                  'alt_queries': 0}
    t_toast = time.time()
    if keyed:
        pairs = {}
        for ti, tx in enumerate(w2j):
            for ch in tx['changes']:
                if ch['table'] == TABLE and ch['kind'] == 'U' and \
                        TOAST_COL in ch['unchanged_toast']:
                    for sid in txn_info[ti]['active']:
                        if toast_reader(sid):
                            pairs.setdefault(sid, set()).add(ch['new_img'])
        for sid, imgs in sorted(pairs.items()):
            tree = bool_skeleton(wl.preds[sid])
            atoms = skeleton_atoms(tree)
            big = [reads_column(a, TOAST_COL) for a in atoms]
            vals = atom_values(atoms, sorted(imgs))
            for i in imgs:
                v = vals[i]
                known = kleene(tree, lambda j: 'U' if big[j] or v[j] == 'E'
                               else v[j])
                whole = kleene(tree, lambda j: 'U' if v[j] == 'E' else v[j])
                has_e = any(v[j] == 'E' for j in range(len(atoms))
                            if not big[j])
                # the skeleton with every atom known is PostgreSQL's answer
                if sid not in err_shapes and whole != 'U' and \
                        (whole == 'T') != (sid in img_shapes[i]):
                    fail_harness('the boolean skeleton of shape %d answers %s '
                                 'on image %d, PostgreSQL %s: %s' % (
                                     sid, whole, i, sid in img_shapes[i],
                                     wl.preds[sid]))
                if known != 'U' and whole != 'U' and known != whole:
                    fail_harness('Kleene\'s answer without %s (%s) is not the '
                                 'one with it (%s), shape %d image %d: %s'
                                 % (TOAST_COL, known, whole, sid, i,
                                    wl.preds[sid]))
                toast_k[(sid, i)] = [known, has_e, '?']
    t_toast = time.time() - t_toast

    def toast_answer(sid, i):
        """toast_k[(sid, i)], the value-independence computed on demand"""
        k = toast_k[(sid, i)]
        if k[2] == '?':
            k[2] = invariant(sid, [i])[i] if k[0] == 'U' else None
        return k

    def compare_keyed(sr, sr_order, sr_problems, with_old):
        """compare() for a table without REPLICA IDENTITY FULL (design.md
        section 2): the old side of UPDATE and DELETE is the stream's
        membership, which the harness keeps per stream like the plugin
        should: a shape's initial members (the rows its clause is true on
        when the transaction that added it, or re-sent them, commits), then
        each INSERT / UPDATE's new row (PostgreSQL's answer; where it raises
        and the shape was not invalidated, the answer the records show; a
        key whose answer the harness cannot know, because the clause raised
        on it at the initial search, may be either, once).  Shapes the
        stream has no members of (added before the slots, or by a
        transaction that then changed dd.t) route nothing, not even T,
        until a resync_shapes() transaction; S unsynced / synced are
        checked too.  with_old: the stream was read with include-old."""
        mismatches = []
        value_mismatches = []
        framing = list(sr_problems)
        compared_pairs = 0
        value_checked = 0
        vrand = random.Random(seed + 17)
        w2j_xids = set()
        session_start = set()
        last_of_batch = {}
        for xid in sr_order:
            last_of_batch[sr[xid]['batch']] = xid
        last_xids = set(last_of_batch.values())
        prev_last = True
        cov = {'unchanged_toast': 0, 'key_change': 0, 'move_in': 0,
               'move_out': 0, 'U': 0, 'I': 0, 'D': 0, 'T': 0, 'S': 0,
               'concurrent_txns': 0}
        est = {'invalidated_eval': 0, 'invalidated_toast': 0,
               'toast_pairs': 0, 'toast_determined': 0,
               'toast_undetermined': 0, 'toast_over_invalidated': 0,
               'toast_undetermined_routed': 0,
               'error_changes': 0, 'error_shape_pairs': 0,
               'routed_despite_error': 0, 'unknown_member_keys': 0,
               'unknown_member_uses': 0, 'initial_member_keys': 0,
               'member_old_sides': 0, 'unsynced_events': 0,
               'synced_events': 0, 'unsynced_pairs': 0, 'resynced': 0,
               'tainted': 0, 'invalidated_unsynced': 0,
               'old_checked': 0}
        over = []               # --lenient-toast: accepted over-invalidations
        dead = {}
        unsynced = set(initial_shapes)     # no members in this stream
        to_report = set(initial_shapes)    # S unsynced due at the next change
        reported = set()                   # had their S unsynced
        # the stream's membership, by key (as the plugin keeps it): key ->
        # the shapes the row is in / the shapes whose answer on it the
        # harness cannot know (the clause raised there at the search)
        mem = {}
        unk = {}
        rows = dict(initial_img)        # key -> image id, as of now
        perm_set = frozenset(perm_member)
        perm_stats = {'pairs': 0, 'with_records': 0}
        perm_mismatches = []
        toast_readers = frozenset(sid for sid in all_shapes
                                  if toast_reader(sid))
        EMPTY = frozenset()

        def members_now(sid):
            """sid's initial members as of now (rows): the keys its clause
            is true on, and those it raises on (unknown)."""
            if sid in err_shapes and rows:
                top = max(rows.values())
                if frontier[sid] <= top:
                    evaluate(sid, top)
            for k in list(mem):
                mem[k].discard(sid)
            for k in list(unk):
                unk[k].discard(sid)
            for k, i in rows.items():
                e = img_errs[i]
                if e and sid in e:
                    unk.setdefault(k, set()).add(sid)
                    est['unknown_member_keys'] += 1
                elif sid in img_shapes[i]:
                    mem.setdefault(k, set()).add(sid)
                    est['initial_member_keys'] += 1

        def check_change(ch, Aroute, Aquiet):
            """One change of dd.t.  Aroute: the shapes that must route it
            (active, synced, not invalidated); Aquiet: active shapes without
            members (no record; may be invalidated where the rules allow).
            -> (prep, expected records of the shapes known exactly); prep:
            (old key, new key, the old side's shapes, the new side's, spec
            of the other shapes: (olds, news, reasons, must invalidate))"""
            kind = ch['kind']
            if kind == 'T':
                exp = [('T', None, tuple(sorted(Aroute)))] if Aroute else []
                return None, exp
            oldk = int(ch['old']['id']) if ch['old'] is not None else None
            newk = int(ch['new']['id']) if ch['new'] is not None else None
            toast = kind == 'U' and TOAST_COL in ch['unchanged_toast']
            both = Aroute | Aquiet
            spec = {}
            oset = nset = EMPTY
            if kind in ('U', 'D'):
                oset = mem.get(oldk, EMPTY) & Aroute
                for sid in unk.get(oldk, EMPTY) & Aroute:
                    spec[sid] = [[True, False], None, set(), False]
            if kind != 'D':
                ensure(ch, both)
                ni = ch['new_img']
                nset = img_shapes[ni] & Aroute
                errs = img_errs[ni]
                errd = set(errs) & both if errs else EMPTY
                odd = set(errd)
                if toast:
                    odd |= toast_readers & both
                for sid in odd:
                    sp = spec.get(sid)
                    if sp is None:
                        sp = spec[sid] = [
                            [sid in oset] if kind == 'U' and sid in Aroute
                            else [None], None, set(), False]
                    e = sid in errd
                    if toast and sid in toast_readers:
                        known, has_e, inv = toast_answer(sid, ni)
                        if e or has_e:
                            sp[2].add('eval')
                        if known == 'U':
                            sp[2].add('toast')
                            if inv is False:
                                # it depends on the value: routing would
                                # be a guess
                                sp[1] = []
                                sp[3] = sid in Aroute
                            else:
                                sp[1] = [True, False] if e else \
                                    [sid in img_shapes[ni]]
                        else:
                            sp[1] = [True, False] if e else [known == 'T']
                            if args.lenient_toast:
                                sp[2].add('toast-lenient')
                    else:
                        sp[1] = [True, False]
                        sp[2].add('eval')
            for sid, sp in spec.items():
                if sp[1] is None:
                    sp[1] = [None] if kind == 'D' else [sid in nset]
            exact_o = oset - set(spec)
            exact_n = nset - set(spec)
            exp = []

            def add(action, move, ids):
                if ids:
                    exp.append((action, move, tuple(sorted(ids))))
            if kind == 'I':
                add('I', None, exact_n)
            elif kind == 'D':
                add('D', None, exact_o)
            elif oldk != newk:
                add('D', None, exact_o)
                add('I', None, exact_n)
            else:
                add('U', None, exact_o & exact_n)
                add('I', 'in', exact_n - exact_o)
                add('D', 'out', exact_o - exact_n)
            return (oldk, newk, oset, nset, spec), exp

        def judge(ch, prep, exp, got, Aroute, Aquiet):
            oldk, newk, oset, nset, spec = prep
            problems = []
            V = {}
            filt = []
            per = {sid: [] for sid in spec}
            for item in got:
                if item[0] == 'S':
                    sid = item[2]
                    reason = str(item[3]) if len(item) > 3 else ''
                    why = 'eval' if reason.startswith('evaluation failed') \
                        else 'toast' if 'column "%s"' % TOAST_COL in reason \
                        else None
                    allowed = spec[sid][2] if sid in spec else set()
                    if item[1] == 'invalidated' and sid not in V and \
                            why is not None and (
                                why in allowed or why == 'toast' and
                                'toast-lenient' in allowed):
                        V[sid] = why
                        if why == 'toast' and 'toast' not in allowed:
                            over.append((sid, ch))
                    elif item[1] == 'invalidated' and why == 'toast' and \
                            sid in spec and sid not in V:
                        known = toast_k.get((sid, ch.get('new_img')),
                                            ('-',))[0]
                        problems.append(
                            'TOAST OVER-INVALIDATION: shape %d invalidated '
                            'for the unchanged %s, but its answer is '
                            'determined without it (Kleene: %s)'
                            % (sid, TOAST_COL, {'T': 'true', 'F': 'false',
                                                'N': 'null'}.get(known,
                                                                 known)))
                        # (nothing else reported for it here)
                        V[sid] = 'toast'
                        est['toast_over_invalidated'] += 1
                    else:
                        problems.append('unexpected %s' % (item,))
                        filt.append(item)
                    continue
                keep = tuple(x for x in item[2] if x not in per)
                for x in item[2]:
                    if x in per:
                        per[x].append(item[:2])
                if keep:
                    filt.append((item[0], item[1], keep))
            if filt != exp:
                problems.append('records of the shapes known exactly differ')
            for sid, kinds in sorted(per.items()):
                olds, news, reasons, must = spec[sid]
                kinds = tuple(kinds)
                if sid in Aquiet:
                    allowed = {()}
                else:
                    allowed = set(kinds_for(ch, o, n) for o in olds
                                  for n in news)
                if sid in V:
                    if kinds and kinds not in allowed:
                        problems.append('shape %d (invalidated here) got %s'
                                        % (sid, kinds))
                    continue
                if must:
                    problems.append(
                        'shape %d not invalidated: its answer depends on the '
                        'unchanged %s (Kleene: unknown); got %s'
                        % (sid, TOAST_COL, list(kinds) or 'nothing'))
                elif kinds not in allowed:
                    problems.append('shape %d (%s) got %s, possible: %s' % (
                        sid, ', '.join(
                            x for x, c in (
                                ('without members', sid in Aquiet),
                                ('membership unknown', len(olds) > 1),
                                ('PostgreSQL raises on the new row',
                                 'eval' in reasons),
                                ('unchanged %s' % TOAST_COL,
                                 'toast' in reasons or
                                 'toast-lenient' in reasons)) if c),
                        list(kinds) or 'nothing',
                        sorted(str(list(a) or 'nothing') for a in allowed)))
            return problems, V, filt, per

        def apply_change(ch, prep, V, per, Aroute):
            kind = ch['kind']
            if kind == 'T':
                rows.clear()
                mem.clear()
                unk.clear()
                return
            oldk, newk, oset, nset, spec = prep
            if kind in ('U', 'D'):
                est['member_old_sides'] += len(Aroute)
                est['unknown_member_uses'] += sum(
                    1 for sp in spec.values() if len(sp[0]) > 1)
                mem.pop(oldk, None)
                unk.pop(oldk, None)
                rows.pop(oldk)
            if kind == 'D':
                return
            new = set(nset) - set(spec)
            for sid, sp in spec.items():
                if sid in V or sid not in Aroute:
                    continue
                if len(sp[1]) == 1:
                    n = sp[1][0]
                else:
                    n = any(k in (('U', None), ('I', 'in'), ('I', None))
                            for k in per.get(sid, ()))
                if n:
                    new.add(sid)
            if new:
                mem[newk] = new
            rows[newk] = ch['new_img']

        for ti, tx in enumerate(w2j):
            xid = tx['xid']
            w2j_xids.add(xid)
            if prev_last:
                session_start.add(xid)
            prev_last = xid in last_xids
            info = txn_info[ti]
            A = info['active']
            got_tx = sr.get(xid)
            got_by_lsn = {}
            recs_by_lsn = {}
            sync_events = []
            if got_tx is not None:
                for lsncol, rec in got_tx['records']:
                    act = rec.get('action')
                    if act == 'S' and rec.get('event') in ('unsynced',
                                                           'synced'):
                        sync_events.append((rec.get('event'),
                                            rec.get('shape'),
                                            rec.get('reason') or ''))
                        continue
                    if act == 'S':
                        key = lsncol
                        item = ('S', rec.get('event'), rec.get('shape'))
                        if rec.get('reason'):
                            item = item + (rec['reason'],)
                    else:
                        key = rec.get('lsn', lsncol)
                        item = (act, rec.get('move'),
                                tuple(rec.get('shapes', [])))
                    got_by_lsn.setdefault(key, []).append(item)
                    recs_by_lsn.setdefault(key, []).append(rec)
                if got_tx['begin'].get('lsn') != tx['commit_lsn'] or \
                        got_tx['commit'].get('lsn') != tx['commit_lsn']:
                    framing.append('xid %s: B/C lsn %s/%s, commit LSN is %s' % (
                        xid, got_tx['begin'].get('lsn'),
                        got_tx['commit'].get('lsn'), tx['commit_lsn']))
                if got_tx['begin'].get('xid') != xid or \
                        got_tx['commit'].get('xid') != xid:
                    framing.append('xid %s: B/C carry xid %s/%s' % (
                        xid, got_tx['begin'].get('xid'),
                        got_tx['commit'].get('xid')))
                if not got_tx['records']:
                    framing.append('xid %s: B/C written around no record'
                                   % xid)
            # S unsynced: once per slot, in the first transaction with a
            # change of dd.t, for the active shapes it has no members of
            exp_sync = {}       # shape -> 'no members' / 'tainted' / 'synced'
            optional = set()
            if any(ch['table'] == TABLE for ch in tx['changes']):
                for sid in sorted(to_report):
                    if sid in dead:
                        continue
                    if sid in A:
                        exp_sync[sid] = 'no members'
                    elif sid in info['removed']:
                        optional.add(sid)   # (removed by this transaction)
                to_report = set()

            changes_by_lsn = {}
            for ch in tx['changes']:
                if ch['lsn'] not in changes_by_lsn or ch['table'] == TABLE:
                    changes_by_lsn[ch['lsn']] = ch
            any_expected = bool(exp_sync)
            for lsn in sorted(set(changes_by_lsn) | set(got_by_lsn),
                              key=lsn_int):
                got = got_by_lsn.get(lsn, [])
                for item in got:
                    if item[0] in cov:
                        cov[item[0]] += 1
                    if item[1] == 'in':
                        cov['move_in'] += 1
                    elif item[1] == 'out':
                        cov['move_out'] += 1
                ch = changes_by_lsn.get(lsn)
                entry = None
                if ch is not None and ch['table'] == TABLE:
                    Aroute = A - set(dead) - unsynced
                    Aquiet = (A & unsynced) - set(dead)
                    compared_pairs += len(Aroute)
                    est['unsynced_pairs'] += len(Aquiet)
                    if ch['unchanged_toast']:
                        cov['unchanged_toast'] += 1
                    if ch['kind'] == 'U' and \
                            ch['old']['id'] != ch['new']['id']:
                        cov['key_change'] += 1
                    prep, exp = check_change(ch, Aroute, Aquiet)
                    if prep is None:
                        problems, V, filt, per = \
                            ([] if got == exp else
                             ['records of a TRUNCATE differ']), {}, got, {}
                    else:
                        problems, V, filt, per = judge(ch, prep, exp, got,
                                                       Aroute, Aquiet)
                        spec = prep[4]
                        errd = {sid for sid in spec if 'eval' in spec[sid][2]}
                        if errd:
                            est['error_changes'] += 1
                            est['error_shape_pairs'] += len(errd)
                            est['routed_despite_error'] += len(errd - set(V))
                        for sid in spec:
                            if ch['kind'] == 'U' and \
                                    TOAST_COL in ch['unchanged_toast'] and \
                                    toast_reader(sid):
                                est['toast_pairs'] += 1
                                if toast_k[(sid, ch['new_img'])][0] == 'U':
                                    est['toast_undetermined'] += 1
                                    if sid not in V:
                                        est['toast_undetermined_routed'] += 1
                                else:
                                    est['toast_determined'] += 1
                        for sid, why in V.items():
                            est['invalidated_' + why] += 1
                            if sid in Aquiet:
                                est['invalidated_unsynced'] += 1
                    any_expected = any_expected or bool(exp)
                    # the same conjunction in other orders: the same records
                    here = {}
                    for sid in perm_set & Aroute:
                        here.setdefault(perm_member[sid], []).append(sid)
                    here = [m for m in here.values() if len(m) > 1]
                    if here:
                        pk = {}
                        for item in got:
                            if item[0] != 'S':
                                for x in item[2]:
                                    if x in perm_set:
                                        pk.setdefault(x, []).append(item[:2])
                        for m in here:
                            perm_stats['pairs'] += len(m) - 1
                            if not pk:
                                continue
                            first = pk.get(m[0], [])
                            if all(pk.get(x, []) == first for x in m[1:]):
                                if first:
                                    perm_stats['with_records'] += 1
                                continue
                            perm_mismatches.append((
                                xid, ti, lsn, perm_member[m[0]],
                                {x: tuple(pk.get(x, ())) for x in m}, ch))
                    for item in got:
                        if item[0] == 'S' and item[1] == 'invalidated' and \
                                item[2] in A and item[2] not in dead:
                            dead[item[2]] = (ti, lsn)
                    if problems:
                        beliefs = {}
                        if prep is not None and ch['kind'] in ('U', 'D'):
                            oldk = prep[0]
                            for sid in Aquiet:
                                beliefs[sid] = 'no members in this stream'
                            for sid in Aroute:
                                beliefs[sid] = 'member' if sid in prep[2] \
                                    else 'not a member'
                            for sid, sp in prep[4].items():
                                if len(sp[0]) > 1:
                                    beliefs[sid] = 'unknown'
                        elif prep is not None:
                            for sid in Aquiet:
                                beliefs[sid] = 'no members in this stream'
                            for sid in Aroute:
                                beliefs[sid] = '-' 
                        entry = {'xid': xid, 'txn': ti, 'lsn': lsn,
                                 'change': ch, 'expected': exp, 'got': filt,
                                 'got_raw': got, 'active': Aroute,
                                 'problems': problems,
                                 'err': {sid: {'new': e[sid]} for sid in
                                         (prep[4] if prep else ())
                                         for e in [img_errs[ch['new_img']]
                                                   if 'new_img' in ch
                                                   else None]
                                         if e and sid in e},
                                 'dead': dict(dead), 'beliefs': beliefs,
                                 'unsynced': set(Aquiet),
                                 'session_start': xid in session_start,
                                 'batch': got_tx['batch'] if got_tx else None}
                    apply_change(ch, prep, V, per, Aroute)
                else:
                    exp = []
                    if ch is not None and ch['table'] == 'shape_router.shapes':
                        exp = [('S', 'added' if ch['kind'] == 'I'
                                else 'removed',
                                int((ch['new'] if ch['kind'] == 'I'
                                     else ch['old'])['shape_id']))]
                    any_expected = any_expected or bool(exp)
                    if exp != got:
                        entry = {'xid': xid, 'txn': ti, 'lsn': lsn,
                                 'change': ch, 'expected': exp, 'got': got,
                                 'got_raw': got, 'active': A - set(dead),
                                 'problems': [], 'err': {},
                                 'dead': dict(dead),
                                 'session_start': xid in session_start,
                                 'batch': got_tx['batch'] if got_tx else None}
                if entry is not None:
                    mismatches.append(entry)
                    continue
                # values of the records ("new", "key", "old")
                if ch is None or ch['table'] != TABLE or \
                        vrand.random() >= args.value_sample:
                    continue
                toasted = ch['unchanged_toast']
                cols = [c for c in COLNAMES if c not in toasted]
                for rec in recs_by_lsn.get(lsn, []):
                    act = rec.get('action')
                    if act in ('I', 'U'):
                        value_checked += 1
                        newv = rec.get('new')
                        if not isinstance(newv, dict) or \
                                list(newv.keys()) != cols or \
                                any(not same_json_value(
                                    c, expected_json_value(c, ch['new'][c]),
                                    newv[c]) for c in cols):
                            value_mismatches.append((xid, lsn, act, 'new',
                                                     ch['new'], newv))
                        if rec.get('unchanged_toast', []) != toasted:
                            value_mismatches.append((
                                xid, lsn, act, 'unchanged_toast', toasted,
                                rec.get('unchanged_toast')))
                    if act in ('U', 'D'):
                        value_checked += 1
                        keyv = rec.get('key')
                        if keyv != {'id': int(ch['old']['id'])}:
                            value_mismatches.append((xid, lsn, act, 'key',
                                                     {'id': ch['old']['id']},
                                                     keyv))
                    if with_old and act in ('I', 'U', 'D'):
                        # what PostgreSQL logged: the key of a DELETE or of
                        # an UPDATE that changed it, else nothing
                        value_checked += 1
                        est['old_checked'] += 1
                        logged = act == 'D' and (
                            ch['kind'] == 'D' or
                            ch['old']['id'] != ch['new']['id'])
                        want = {'id': int(ch['old']['id'])} if logged \
                            else None
                        if rec.get('old') != want:
                            value_mismatches.append((xid, lsn, act, 'old',
                                                     want, rec.get('old')))
                    if act == 'D' and 'new' in rec or act == 'I' and 'key' in rec:
                        value_mismatches.append((xid, lsn, act, 'fields', None,
                                                 sorted(rec)))

            # at commit: the shapes this transaction added get their initial
            # members, unless it changed dd.t after adding them (S unsynced,
            # "changed the table"); the shapes it re-sent (resync_shapes)
            # and that the stream lacked: S synced
            for sid, alsn in sorted(info['added'].items()):
                if any(ch['table'] == TABLE and
                       lsn_int(ch['lsn']) > lsn_int(alsn)
                       for ch in tx['changes']):
                    exp_sync[sid] = 'tainted'
            resent = set()
            for mlsn, content in tx['markers']:
                if any(ch['table'] == TABLE and
                       lsn_int(ch['lsn']) > lsn_int(mlsn)
                       for ch in tx['changes']):
                    fail_harness('a resync transaction changed dd.t after '
                                 'resync_shapes() (xid %s)' % xid)
                resent |= set(A) if content == '*' else \
                    set(int(x) for x in content.split(','))
            for sid in sorted(resent):
                if sid in unsynced and sid not in dead and sid in A:
                    exp_sync[sid] = 'synced'
            seen = set()
            for ev, sid, reason in sync_events:
                want = exp_sync.get(sid)
                ok_ = False
                if ev == 'unsynced':
                    est['unsynced_events'] += 1
                    if sid in reported or (sid, ev) in seen:
                        problem = 'a second S unsynced of shape %s in this ' \
                            'stream' % sid
                    elif want == 'no members' and \
                            'no members of the shape' in reason:
                        ok_ = True
                    elif want == 'tainted' and 'changed the table' in reason:
                        ok_ = True
                    elif sid in optional:
                        ok_ = True
                    else:
                        problem = 'S unsynced of shape %s (%s): %s' % (
                            sid, 'expected: %s' % want if want else
                            'not expected here', reason)
                    reported.add(sid)
                else:
                    est['synced_events'] += 1
                    if want == 'synced' and (sid, ev) not in seen:
                        ok_ = True
                    else:
                        problem = 'S synced of shape %s, not expected here' \
                            % sid
                seen.add((sid, ev))
                if not ok_:
                    mismatches.append({
                        'xid': xid, 'txn': ti, 'lsn': tx['commit_lsn'],
                        'change': None, 'expected': [], 'got': [],
                        'got_raw': [('S', ev, sid, reason)],
                        'active': A, 'problems': [problem], 'err': {},
                        'dead': dict(dead), 'sync': True,
                        'session_start': xid in session_start,
                        'batch': got_tx['batch'] if got_tx else None})
            for sid, want in sorted(exp_sync.items()):
                ev = 'synced' if want == 'synced' else 'unsynced'
                if (sid, ev) not in seen:
                    mismatches.append({
                        'xid': xid, 'txn': ti, 'lsn': tx['commit_lsn'],
                        'change': None, 'expected': [('S', ev, sid)],
                        'got': [], 'got_raw': [], 'active': A,
                        'problems': ['no S %s of shape %d (%s)' % (
                            ev, sid, want)], 'err': {},
                        'dead': dict(dead), 'sync': True,
                        'session_start': xid in session_start,
                        'batch': got_tx['batch'] if got_tx else None})
            for sid, want in exp_sync.items():
                if want == 'tainted':
                    est['tainted'] += 1
                    unsynced.add(sid)
                    reported.add(sid)
            for sid in info['added']:
                if exp_sync.get(sid) != 'tainted':
                    members_now(sid)
            for sid in sorted(resent):
                if exp_sync.get(sid) == 'synced':
                    est['resynced'] += 1
                    members_now(sid)
                    unsynced.discard(sid)
                    to_report.discard(sid)
            for sid in info['removed']:
                # (dropped from mem lazily: no record names a removed shape)
                unsynced.discard(sid)
                to_report.discard(sid)
            any_expected = any_expected or bool(exp_sync)
            if got_tx is None and any_expected:
                framing.append('xid %s: expected records but no transaction '
                               'written' % xid)
            if got_tx is not None:
                keys = [k for k in got_by_lsn]
                if keys != sorted(keys, key=lsn_int):
                    framing.append('xid %s: records not in WAL order' % xid)
        for xid in sr:
            if xid not in w2j_xids:
                framing.append('xid %s written by shape_router only' % xid)
        if [x for x in sr_order] != [t['xid'] for t in w2j if t['xid'] in sr]:
            framing.append('transactions not in commit order')
        cov['concurrent_txns'] = wl.stats['side_txns']
        cov['other_table_changes'] = nother
        est['over'] = over
        return {'mismatches': mismatches, 'deviations': [],
                'framing': framing, 'value_mismatches': value_mismatches,
                'compared_pairs': compared_pairs,
                'value_checked': value_checked, 'cov': cov, 'errors': est,
                'dead': dead, 'perm_mismatches': perm_mismatches,
                'perm_pairs': perm_stats['pairs'],
                'perm_with_records': perm_stats['with_records']}

    t1 = time.time()
    if keyed:
        results = [('batched' if sr_single is not None else 'stream',
                    compare_keyed(sr, sr_order, sr_problems, False))]
        if sr_single is not None:
            results.append(('single', compare_keyed(*sr_single,
                                                    with_old=True)))
    else:
        results = [('batched' if sr_single is not None else 'stream',
                    compare(sr, sr_order, sr_problems))]
        if sr_single is not None:
            results.append(('single', compare(*sr_single)))
    t_compare = time.time() - t1
    n_err_pairs = sum(err_codes.values())
    print('decoding_diff: oracle errors: %d shapes raise on some image; per '
          'row evaluation of %d (shape, image) pairs of them (of %d) in %d '
          'calls (%.1fs, in the comparison), as far as the comparison '
          'needed; erroring pairs=%d (%s)' % (
              len(err_shapes), lazy['rows'], len(err_shapes) * len(images),
              lazy['calls'], lazy['time'], n_err_pairs,
              ' '.join('%s:%d' % kv for kv in sorted(err_codes.items()))))

    # ---- report ----
    def show_row(r):
        if r is None:
            return 'none'
        return json.dumps({c: (r[c] if c != 'big' or r[c] is None or
                               len(r[c]) < 40 else
                               '%s...(%d chars)' % (r[c][:12], len(r[c])))
                           for c in COLNAMES}, ensure_ascii=False)

    def fmt_records(recs):
        out = []
        for r in recs:
            if r[0] == 'S':
                out.append('S %s %s' % (r[1], r[2]) +
                           (' (%s)' % r[3] if len(r) > 3 else ''))
            else:
                out.append('%s%s[%d shapes]' % (
                    r[0], ' ' + r[1] if r[1] else '', len(r[2])))
        return ', '.join(out) or 'nothing'

    def record_diff(exp, got):
        """per (action, move): shapes only expected / only got"""
        e = {}
        g = {}
        for r in exp:
            if r[0] != 'S':
                e.setdefault((r[0], r[1]), set()).update(r[2])
        for r in got:
            if r[0] != 'S':
                g.setdefault((r[0], r[1]), set()).update(r[2])
        out = []
        for k in sorted(set(e) | set(g), key=str):
            miss = sorted(e.get(k, set()) - g.get(k, set()))
            extra = sorted(g.get(k, set()) - e.get(k, set()))
            if miss or extra:
                out.append((k, miss, extra))
        return out

    def oracle_str(img, sid):
        if img is None:
            return '-'
        if sid not in life or not in_life(img, sid):
            return 'not evaluated (outside the shape\'s life)'
        if img_errs[img] and sid in img_errs[img]:
            return 'raises %s' % img_errs[img][sid]
        return str(sid in img_shapes[img])

    def shape_history(sid):
        h = shape_life.get(sid, {})
        parts = []
        if sid in initial_shapes:
            parts.append('existed before the slots')
        if 'added' in h:
            ti, l = h['added']
            parts.append('added by xid %s (txn #%d) at %s' % (
                w2j[ti]['xid'], ti, l))
        if 'removed' in h:
            ti, l = h['removed']
            parts.append('removed by xid %s (txn #%d) at %s' % (
                w2j[ti]['xid'], ti, l))
        return '; '.join(parts) or 'never committed'

    def report(title, entries):
        for m in entries[:args.max_report]:
            ch = m['change']
            ti = m['txn']
            print('%s xid=%s (txn #%d, commit %s, decoding batch %s%s%s) '
                  'lsn=%s' % (
                      title, m['xid'], ti, w2j[ti]['commit_lsn'], m['batch'],
                      ', first txn of a decoding session'
                      if m['session_start'] else '',
                      ', began before %d earlier txns committed' %
                      overlaps[ti] if overlaps[ti] else '', m['lsn']))
            if ch is not None:
                print('  change:   %s %s%s' % (
                    ch['kind'], ch['table'],
                    ' (unchanged TOAST: %s)' % ch['unchanged_toast']
                    if ch['unchanged_toast'] else ''))
                if ch['table'] == TABLE:
                    print('  old:      %s' % show_row(ch['old']))
                    print('  new:      %s' % show_row(ch['new']))
            print('  active:   %d shapes (not counting %d invalidated '
                  'earlier in this stream)' % (len(m['active']),
                                               len(m['dead'])))
            if m['err']:
                print('  PostgreSQL raises on this change for shapes %s'
                      % ', '.join('%d (%s)' % (sid, ', '.join(
                          '%s row: %s' % kv for kv in sorted(e.items())))
                          for sid, e in sorted(m['err'].items())))
                print('  (their records are taken out of "got" below and '
                      'checked on their own)')
            for pr in m['problems']:
                print('  problem:  %s' % pr)
            print('  expected: %s' % fmt_records(m['expected']))
            print('  got:      %s' % fmt_records(m['got']))
            if [r[:2] for r in m['expected']] != [r[:2] for r in m['got']] \
                    or any(r[0] == 'S' for r in m['expected'] + m['got']) \
                    or m['err']:
                print('  expected records: %s' % m['expected'])
                print('  got records:      %s' % m['got'])
                if m['got_raw'] != m['got']:
                    print('  got (raw):        %s' % m['got_raw'])
            diff = record_diff(m['expected'], m['got'])
            for (act, move), miss, extra in diff:
                print('  %s%s: missing %s, unexpected %s' % (
                    act, ' ' + move if move else '', miss, extra))
            shown = sorted(set(x for _, miss, extra in diff
                               for x in miss + extra) |
                           set(x for r in m['got_raw'] if r[0] == 'S'
                               for x in [r[2]]) |
                           set(m['err']))
            for sid in shown[:8]:
                o = ch.get('old_img') if ch else None
                n = ch.get('new_img') if ch else None
                if 'beliefs' in m:
                    # (keyed: the old side is the stream's membership)
                    olds = 'old row\'s membership %s (oracle on the old row: ' \
                        '%s)' % (m['beliefs'].get(sid, '-'),
                                 oracle_str(o, sid))
                else:
                    olds = 'old %s' % oracle_str(o, sid)
                extra = ''
                if ch is not None and (sid, n) in toast_k:
                    k = toast_answer(sid, n)
                    extra = '; new row without %s: Kleene %s%s%s' % (
                        TOAST_COL, k[0], ', an atom raises' if k[1] else '',
                        {True: ' (the answer does not depend on the value)',
                         False: ' (the answer depends on the value)'}.get(
                             k[2], ''))
                print('    shape %d (%s): %s\n      %s\n      oracle: '
                      '%s, new %s%s' % (
                          sid, 'invalidated in this stream at txn #%d %s'
                          % m['dead'][sid] if sid in m['dead'] else
                          'without members in this stream'
                          if sid in m.get('unsynced', ()) else
                          'active' if sid in m['active'] else
                          'not active', wl.preds.get(sid),
                          shape_history(sid), olds,
                          oracle_str(n, sid), extra))

    def summarise(title, entries):
        groups = {}
        for m in entries:
            g = groups.setdefault(m['xid'], {'n': 0, 'miss': set(),
                                             'extra': set(), 'm': m})
            g['n'] += 1
            for _, mi, ex in record_diff(m['expected'], m['got']):
                g['miss'].update(mi)
                g['extra'].update(ex)
            if not record_diff(m['expected'], m['got']):
                g['extra'].add('order/S/framing')
        # by shape: where it went missing or was routed unexpectedly
        shapes = {}
        for m in entries:
            for _, mi, ex in record_diff(m['expected'], m['got']):
                for sid, kind in [(x, 'missing') for x in mi] + \
                        [(x, 'unexpected') for x in ex]:
                    d = shapes.setdefault((sid, kind), {'n': 0, 'txns': set()})
                    d['n'] += 1
                    d['txns'].add(m['txn'])
        if shapes:
            print('decoding_diff: %s by shape:' % title)
        for (sid, kind), d in sorted(shapes.items())[:40]:
            print('  shape %d %s in %d changes of %d txns (#%d..#%d); %s' % (
                sid, kind, d['n'], len(d['txns']), min(d['txns']),
                max(d['txns']), shape_history(sid)))
        if groups:
            print('decoding_diff: %s by transaction:' % title)
        for xid, g in sorted(groups.items(),
                             key=lambda kv: kv[1]['m']['txn'])[:40]:
            m = g['m']
            print('  xid %s (txn #%d, batch %s%s%s): %d changes; shapes '
                  'missing %s, unexpected %s' % (
                      xid, m['txn'], m['batch'],
                      ', session start' if m['session_start'] else '',
                      ', open across %d commits' % overlaps[m['txn']]
                      if overlaps[m['txn']] else '', g['n'],
                      sorted(g['miss'], key=str)[:10],
                      sorted(g['extra'], key=str)[:10]))

    total = {'mismatches': 0, 'deviations': 0, 'framing': 0,
             'value_mismatches': 0, 'compared_pairs': 0, 'value_checked': 0,
             'perm_mismatches': 0}
    per_stream = []
    for name, r in results:
        tag = '' if len(results) == 1 else ' [%s]' % name
        report('MISMATCH' + tag, r['mismatches'])
        summarise('mismatches' + tag, r['mismatches'])
        if r['deviations']:
            print('decoding_diff:%s %d removal-timing deviations (a removed '
                  'shape still routed the changes its own removing '
                  'transaction made before the remove; the contract says: '
                  'none):' % (tag, len(r['deviations'])))
            report('REMOVAL-TIMING' + tag, r['deviations'][:5])
        for p in r['framing'][:args.max_report]:
            print('FRAMING%s: %s' % (tag, p))
        for xid, lsn, act, what, exp, got in \
                r['value_mismatches'][:args.max_report]:
            print('VALUE MISMATCH%s xid=%s lsn=%s %s %s\n  expected %s\n'
                  '  got      %s' % (
                      tag, xid, lsn, act, what,
                      show_row(exp) if isinstance(exp, dict) and 'a' in exp
                      else exp, json.dumps(got, default=str)[:600]))
        shown = set()
        for xid, ti, lsn, gid, kinds, ch in r['perm_mismatches']:
            if gid in shown or len(shown) >= args.max_report:
                continue
            shown.add(gid)
            print('PERMUTATION MISMATCH%s xid=%s (txn #%d) lsn=%s: the same '
                  'conjunction in other orders got different records\n'
                  '  change:   %s\n  old:      %s\n  new:      %s' % (
                      tag, xid, ti, lsn, ch['kind'], show_row(ch['old']),
                      show_row(ch['new'])))
            for sid, k in sorted(kinds.items()):
                print('  shape %d got %s: %s\n    %s; oracle: old %s, new %s'
                      % (sid, list(k) or 'nothing', wl.preds[sid],
                         shape_history(sid),
                         oracle_str(ch.get('old_img'), sid),
                         oracle_str(ch.get('new_img'), sid)))
        if r['perm_mismatches']:
            print('decoding_diff:%s %d permutation mismatches in %d groups'
                  % (tag, len(r['perm_mismatches']),
                     len(set(m[3] for m in r['perm_mismatches']))))
        for k in total:
            total[k] += r[k] if isinstance(r[k], int) else len(r[k])
        per_stream.append('mismatches_%s=%d' % (name, len(r['mismatches'])))

    print('decoding_diff: coverage: %s' % ' '.join(
        '%s=%d' % kv for kv in sorted(results[0][1]['cov'].items())))
    for name, r in results:
        e = r['errors']
        if keyed:
            print('decoding_diff: keyed [%s]: membership old sides=%d (of '
                  'them unknown to the harness: %d); initial member keys=%d '
                  '(unknown: %d); S unsynced=%d S synced=%d; shapes re-sent '
                  'to this stream=%d; tainted adds=%d; (change, shape '
                  'without members) pairs=%d; invalidations: evaluation '
                  'failed=%d, unchanged %s=%d (of shapes without members: '
                  '%d); unchanged-%s (change, shape) pairs=%d (determined '
                  '%d, undetermined %d, of which routed, the answer not '
                  'depending on the value: %d); TOAST over-invalidations=%d '
                  '(accepted with --lenient-toast: %d); changes with a '
                  'raising shape=%d, '
                  '(change, raising shape) pairs=%d, routed without '
                  'invalidation=%d; "old" checked=%d' % (
                      name, e['member_old_sides'], e['unknown_member_uses'],
                      e['initial_member_keys'], e['unknown_member_keys'],
                      e['unsynced_events'], e['synced_events'],
                      e['resynced'], e['tainted'], e['unsynced_pairs'],
                      e['invalidated_eval'], TOAST_COL,
                      e['invalidated_toast'], e['invalidated_unsynced'],
                      TOAST_COL, e['toast_pairs'], e['toast_determined'],
                      e['toast_undetermined'], e['toast_undetermined_routed'],
                      e['toast_over_invalidated'] + len(e['over']),
                      len(e['over']),
                      e['error_changes'], e['error_shape_pairs'],
                      e['routed_despite_error'], e['old_checked']))
            continue
        print('decoding_diff: errors [%s]: invalidations=%d (%d shapes; %d '
              'in the first txn of a decoding call); changes with a '
              'raising shape=%d, (change, raising shape) pairs=%d, of which '
              'routed without invalidation=%d (with records: %d); records '
              'at the invalidating change=%d; other shapes checked exactly '
              'on those changes=%d; later changes of a row an invalidation '
              'happened on, for shapes added after it=%d (routed: %d)' % (
                  name, e['invalidated'], len(r['dead']),
                  e['invalidated_in_batch_start_txn'], e['error_changes'],
                  e['error_shape_pairs'], e['routed_despite_error'],
                  e['records_despite_error'], e['records_at_invalidation'],
                  e['others_on_error_changes'], e['post_error_pairs'],
                  e['post_error_records']))
    # the new forms
    first_analyze = lsn_int(wl.analyze_lsns[0]) if wl.analyze_lsns else None
    after = [sid for sid, h in shape_life.items() if 'added' in h and
             first_analyze is not None and lsn_int(h['added'][1]) > first_analyze]
    crowd_shapes = [sid for sid in all_shapes
                    if wl.tags.get(sid, ('',))[0] == 'crowd']
    perm_all = set(wl.tags[sid][1] for sid in all_shapes
                   if wl.tags.get(sid, ('',))[0] == 'perm')
    print('decoding_diff: new forms: permutation_groups=%d (of them with 2+ '
          'orders that raise nowhere: %d, %d shapes; %s) '
          'crowded_groups=%d (%s) analyzes=%d shapes_added_after_analyze=%d '
          '(crowded: %d, reordered: %d) shapes_before_analyze=%d' % (
              len(perm_all), len(perm_groups), len(perm_member),
              ' '.join('[%s] compared (change, other order) pairs=%d, with '
                       'records=%d, permutation_mismatches=%d' % (
                           name, r['perm_pairs'], r['perm_with_records'],
                           len(r['perm_mismatches'])) for name, r in results),
              len(wl.crowds), ', '.join(
                  '%s: %d shapes in %d txns, %d removed in one' % (
                      c['conj'], sum(1 for sid in crowd_shapes
                                     if wl.tags[sid][1] == k), c['txns'],
                      c['removed'])
                  for k, c in enumerate(wl.crowds)),
              len(wl.analyze_lsns), len(after),
              sum(1 for sid in after if wl.tags.get(sid, ('',))[0] == 'crowd'),
              sum(1 for sid in after if wl.tags.get(sid, ('',))[0] == 'perm'),
              nshapes - len(after)))
    print('decoding_diff: timing: workload=%.1fs decode=%.1fs oracle=%.1fs '
          'compare=%.1fs total=%.1fs' % (t_work, t_decode, t_oracle,
                                         t_compare, time.time() - t0))
    print('decoding_diff: seed=%d changes=%d shapes=%d compared_pairs=%d '
          'mismatches=%d %s removal_timing_deviations=%d framing_errors=%d '
          'value_checked=%d value_mismatches=%d erroring_shapes=%d '
          'oracle_errors=%d %s' % (
              seed, nchanges, nshapes, total['compared_pairs'],
              total['mismatches'], ' '.join(per_stream), total['deviations'],
              total['framing'], total['value_checked'],
              total['value_mismatches'], len(err_shapes), n_err_pairs,
              ' '.join('invalidations_%s=%d' % (name, r['errors'].get(
                  'invalidated', r['errors'].get('invalidated_eval', 0) +
                  r['errors'].get('invalidated_toast', 0)))
                       for name, r in results)))
    ok = total['mismatches'] == 0 and not total['framing'] and \
        not total['value_mismatches'] and not total['perm_mismatches']
    if keyed:
        # add_shape / resync_shapes: their errors, their counts
        bad_counts = [(a, n) for a, n in wl.resync_counts if a != n]
        codes = {}
        for what, code, _ in wl.search_errors:
            codes[(what, code)] = codes.get((what, code), 0) + 1
        print('decoding_diff: keyed: add_shape / resync_shapes raised %d '
              'times (%s); resync_shapes() calls=%d failed=%d; search '
              'mismatches=%d; resync counts wrong=%d; unchanged-TOAST '
              'oracle %.1fs (atoms: %.1fs, %d queries; other values: %.1fs, '
              '%d queries)' % (
                  len(wl.search_errors), ' '.join(
                      '%s:%s:%d' % (w, c, n)
                      for (w, c), n in sorted(codes.items())),
                  wl.stats['resync_calls'], wl.stats['resync_failures'],
                  len(wl.search_mismatches), len(bad_counts), t_toast,
                  toast_cost['atoms'], toast_cost['atom_queries'],
                  toast_cost['alt'], toast_cost['alt_queries']))
        for m in wl.search_mismatches[:args.max_report]:
            print('SEARCH MISMATCH: %s' % m)
        for a, n in bad_counts[:args.max_report]:
            print('RESYNC COUNT MISMATCH: resync_shapes() of %d shapes '
                  'returned %s' % (a, n))
        if wl.search_mismatches or bad_counts:
            ok = False
    if args.strict_removal and total['deviations']:
        ok = False
    if nchanges < args.min_changes:
        print('decoding_diff: only %d changes, need %d' % (
            nchanges, args.min_changes))
        ok = False
    if nshapes < args.shapes:
        print('decoding_diff: only %d shapes, need %d' % (nshapes, args.shapes))
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
