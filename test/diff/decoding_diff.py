#!/usr/bin/python3
"""Seeded, randomised, end-to-end differential test of the shape_router
logical decoding output plugin.

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

Run (as root, from the repository):
  make -s && make -s install && . test/lib.sh && \
  sr_virtualenv /usr/bin/python3 test/diff/decoding_diff.py --seed 1

Exit status: 0 = no mismatch and enough changes and shapes; 1 = mismatches
(or too few changes / shapes, or the plugin raised); 2 = harness problem.
--no-nan-int-casts (triage) leaves numeric-to-integer casts out of the
grammar: numeric NaN and Infinity raise SQLSTATE 0A000 (feature not
supported) there, not a data exception.
"""

import argparse
import json
import random
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
        self.stats = {k: 0 for k in [
            'txns', 'rollbacks', 'savepoint_rollbacks', 'inserts', 'upserts',
            'updates', 'key_changes', 'noop_updates', 'pred_updates',
            'deletes', 'truncates', 'shape_adds', 'shape_removes',
            'shape_ops_in_dml', 'side_txns', 'dml_errors',
            'savepoint_releases', 'other_table_stmts', 'maintenance',
            'error_episodes', 'analyzes', 'crowd_txns']}

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
        counter = [0]
        touched = set()
        protected = self.side_busy_shapes()
        self.stats['txns'] += 1
        try:
            cur.execute('BEGIN')
            nstmt = g.r.randint(1, 6)
            shape_at = g.r.randint(0, nstmt) if g.chance(0.04) else -1
            for i in range(nstmt + 1):
                if i == shape_at:
                    self.stats['shape_ops_in_dml'] += 1
                    before = set(live)
                    if g.chance(0.5):
                        self.add_shapes(cur, g.r.randint(1, 3), live)
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
                            self.add_shapes(cur, 1, live)
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
        self.live = live
        self.changes += counter[0]

    def shape_txn(self):
        """Shapes added or removed in a transaction of their own; sometimes
        aborted, sometimes in a rolled back subtransaction."""
        g = self.g
        cur = self.cur1
        live = set(self.live)
        protected = self.side_busy_shapes()
        cur.execute('BEGIN')
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
                'VACUUM FULL dd.t', 'CLUSTER dd.t USING t_pkey',
                'REINDEX TABLE dd.t',
                'ALTER TABLE dd.t REPLICA IDENTITY FULL']))
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
        plan.sort(key=lambda e: e[0])
        self.plan = plan

    def crowd_remove(self, k, items):
        """Remove about half of crowded group k's stage-1 shapes and a fifth
        of the others, add items, in one transaction."""
        g = self.g
        cur = self.cur1
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
                                 'touched': set()}
            self.stats['side_txns'] += 1
        p = self.side_pending
        x = g.r.random()
        try:
            if x < 0.55:
                self.stmt(2, cur, p['ids'], p['counter'])
            elif x < 0.6:
                live = set(self.live) - p['removed']
                new = set(self.add_shapes(cur, 1, live))
                p['added'] |= new
                p['touched'] |= new
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


def parse_w2j(rows):
    """-> list of transactions in commit order:
    {xid, commit_lsn, changes: [change]}, change = {lsn, kind, table, old,
    new, unchanged_toast}; old/new: {col: text or None}."""
    txns = []
    cur = None
    for lsn, xid, data in rows:
        rec = json.loads(data, parse_float=Decimal)
        act = rec['action']
        if act == 'B':
            cur = {'xid': xid, 'commit_lsn': rec['lsn'], 'changes': []}
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
        if tab == TABLE and act in ('I', 'U', 'D'):
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


def explain_decoding_failure(cur, message, w2j_rows, wl):
    """After the plugin raised: the change at the error's LSN, and which
    shapes PostgreSQL raises for on its rows (SQLSTATE, message)."""
    import re
    m = re.search(r'associated LSN ([0-9A-F]+/[0-9A-F]+)', message)
    if not m or not w2j_rows:
        return
    lsn = m.group(1)
    ch = None
    for tx in parse_w2j(w2j_rows):
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
    args = ap.parse_args()

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

    def decode_all(setup, partial):
        w2j_rows = decode_call(
            "SELECT lsn::text, xid::text::bigint, data FROM "
            "pg_logical_slot_get_changes('w2j', '%s', NULL, %s)"
            % (end_lsn, W2J_OPTIONS), setup)
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
                % (end_lsn, SR_OPTIONS), setup)
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
    cur.execute(SETUP_SQL)

    side_conn = connect('side')
    side_conn.autocommit = True
    side_conn.cursor().execute("SET lock_timeout = '60s'")
    wl = Workload(gen, main_conn, side_conn, args)

    # Half of the first shapes exist before the slots (loaded from the
    # catalog when decoding starts), half are added after.
    first = args.shapes // 2
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
        explain_decoding_failure(cur, str(ex), partial.get('w2j'), wl)
        sys.exit(1)
    t_decode = time.time() - t1
    print('decoding_diff: decoded: wal2json %d rows, shape_router %d rows '
          'in %d calls%s (%.1fs)' % (
              len(w2j_rows), sum(map(len, batches)), len(batches) + 1,
              ', and %d rows in one call' % len(sr1_rows) if single else '',
              t_decode), flush=True)

    w2j = parse_w2j(w2j_rows)
    del w2j_rows
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
        txn_info.append({'active': A, 'removed': removed,
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
    for ti, tx in enumerate(w2j):
        for ch in tx['changes']:
            if ch['table'] != TABLE:
                continue
            for side in ('old', 'new'):
                if ch[side] is not None:
                    key = tuple(ch[side][c] for c in COLNAMES)
                    i = image_of.get(key)
                    if i is None:
                        i = image_of[key] = len(images)
                        images.append(ch[side])
                        img_first.append(ti)
                        img_last.append(ti)
                    img_last[i] = ti
                    ch[side + '_img'] = i
                    nimg_refs += 1
    del image_of
    # A shape is compared on the changes of the transactions from the one
    # after it was added to the one that removed it (where a removal applied
    # at the remove, not at commit, is tried): its life.  The oracle
    # evaluates it on the images named in its life only.
    life = {}
    for sid in all_shapes:
        h = shape_life.get(sid, {})
        life[sid] = (h['added'][0] + 1 if 'added' in h else 0,
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

    t1 = time.time()
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
                print('    shape %d (%s): %s\n      %s\n      oracle: '
                      'old %s, new %s' % (
                          sid, 'invalidated in this stream at txn #%d %s'
                          % m['dead'][sid] if sid in m['dead'] else
                          'active' if sid in m['active'] else
                          'not active', wl.preds.get(sid),
                          shape_history(sid), oracle_str(o, sid),
                          oracle_str(n, sid)))

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
              ' '.join('invalidations_%s=%d' % (name, r['errors']
                                                ['invalidated'])
                       for name, r in results)))
    ok = total['mismatches'] == 0 and not total['framing'] and \
        not total['value_mismatches'] and not total['perm_mismatches']
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
