#!/usr/bin/python3
"""Seeded, randomised differential test of shape_router.matching_shapes().

Oracle: PostgreSQL itself.  Each predicate is evaluated per row, as written:
`SELECT (<predicate>) FROM diff.t WHERE id = k` (AND / OR left to right,
after the planner's constant folding, which add_shape's validation does
too), giving per (predicate, row) true / false / null / error(SQLSTATE).
The fast path is one set query per predicate with the predicate in the
target list (`SELECT id, (p) FROM (... OFFSET 0)`, never in a WHERE clause,
whose top-level conjuncts the planner may reorder); a set query fails as a
whole when one row raises, and then a per-row evaluation takes over (a
plpgsql function with the predicate compiled into it: a cursor over the rows
in id order, one row per FETCH; on an error, the row after the last one
fetched is evaluated alone with `SELECT (p) FROM diff.t WHERE id = k` inside
BEGIN ... EXCEPTION, which records its SQLSTATE, and the cursor reopens after
it).
Engine under test: `shape_router.matching_shapes('diff.t', to_jsonb(t))`.

For one seed the script creates a table with columns of many types, fills it
with R random rows (NULLs, edge values, unicode, numeric text, ...),
generates P random WHERE clauses from the grammar below plus E clauses that
contain at least one atom that can raise (division or modulo by a column
that can be 0, integer / float overflow, casts of text / jsonb / numeric /
float values that can fail, functions outside their domain: sqrt, ln, log,
power, exp, asin, factorial, substr, chr, lpad, make_date, date and
timestamp subtraction of infinities, invalid regular expressions and LIKE
patterns taken from a column), and evaluates all of them in the oracle.

"Clean" predicates (the oracle raises on no row) are registered on diff.t
with add_shapes() and compared, for every (predicate, row) pair, exactly:
"the oracle answers true" against "matching_shapes() lists the shape".  The
same seed always gives the same rows and predicates, so a failure reproduces
with --seed.  Besides the main pass (row = to_jsonb(t)) two variants of the
row document are checked, both within the contract ("keys of row are column
names, values as jsonb_populate_record reads them"):
  * sparse:  top-level keys whose value is null are left out (a missing key
             reads as NULL);
  * strings: every number and boolean of a non-jsonb column is given as a JSON
             string ("3", "true"), which jsonb_populate_record reads through the
             type's input function.
and three more phases with the main documents:
  * nostats: before them, with only the shapes registered before ANALYZE
             (below);
  * removed: after remove_shape() of a third of the shapes; removed ids must
             never come back;
  * readded: after add_shapes() of the removed clauses again (new ids).
"pairs" counts the main pass; "variant_pairs" the five others.

Access paths.  The engine files each shape under the conjunct of least
estimated cost (selectivity, from pg_statistic when the table has been
analyzed, else a fixed ranking by operator, times one plus the shapes
already under the same key; ties by a fingerprint; a posting list that
becomes crowded moves old shapes to other paths: docs/predicate-index.md,
"Choosing the path").  The answers must never depend on that choice, so the
predicates also include (all registered in one order, which is the order of
their shape ids; the calling backend builds its router from the catalog in
id order at the first matching_shapes() after a registration):
  * permutation groups: conjunctions of 2-4 indexable conjuncts (equality,
    IN, = ANY, ranges, BETWEEN, the two bounds of a range as two conjuncts,
    LIKE prefixes, LIKE / ILIKE substrings, booleans, IS [NOT] NULL, array
    @> / &&, ORs of those; sometimes with a residual atom), and a share of
    the usual grammar's conjunctions, each also registered with its
    conjuncts in other orders, flat and nested (a AND (b AND c)), at later
    positions (so with other loads around them).  Every order that raises
    on no row must give the same answer on every row, in every phase
    (PERMUTATION MISMATCH otherwise); PostgreSQL must agree first (exit 2);
  * crowded groups: 50-150 shapes sharing one unselective conjunct
    (e = 'mid', b, i4 IS NOT NULL, t LIKE 'a%', i4 > -4, ia && ...), in
    stages: conjunctions with selective conjuncts (the first ones may be
    filed under the still empty crowded key), then shapes whose only
    indexable conjunct is the crowded one, in two blocks (its posting list
    passes 16, 32, ...: the rebalance moves older shapes), then more of
    both.  Printed: per group and stage, how many shapes the backend's
    router files under the crowded key, without and with statistics;
  * statistics: the shapes of the first part of the order are registered
    and matched (phase nostats) while diff.t has no statistics
    (autovacuum is off for the script's tables); then ANALYZE diff.t, the
    rest are registered, and the later phases use statistics for all of
    them.  Every second error table is analyzed too.  Printed: how many
    shapes' chosen paths were costed from statistics, before and after.
The new forms are evaluated by the oracle in batches (32 predicates as
columns of one set query, split in halves when it raises).

Erroring predicates (the oracle raises on at least one row) go to "error
tables" diff.e1, diff.e2, ... (copies of diff.t, same rows), a few per
table, packed so that on most rows none of a table's erroring predicates
raises, together with a sample of clean predicates.  matching_shapes() has
no on_error handler, so on a row where PostgreSQL raises for one of the
table's predicates it may raise (counted as errors_expected, not a
mismatch) or return an answer (that predicate's answer on that row is not
checked: counted as answered_despite_error); on a row where PostgreSQL
raises for none of the table's predicates it must not raise and must give
exactly PostgreSQL's answer for every shape; where it returns an answer,
every shape whose predicate does not raise on that row must be exactly
PostgreSQL's answer.  The error tables' rows are matched in one plpgsql
loop (BEGIN ... EXCEPTION per row), so a raising call is followed by others
in the same session.  "error_pairs" counts the compared pairs there.

Run (needs the extension installed):
  pg_virtualenv -o wal_level=logical \
      -o "output_plugin_libraries=pgoutput, test_decoding, wal2json, shape_router" \
      /usr/bin/python3 test/diff/matching_diff.py --seed 1
As root, pg_virtualenv always creates the system cluster 15/regress and
refuses to run while another one exists; `runuser -u postgres -- pg_virtualenv
...` gets a private cluster in a temporary directory instead.

Without the extension, --oracle-only runs only the generator and the oracle
(plus --check-immutable, which asks PostgreSQL, through an expression index or
a generated column on an empty copy of the table, whether every predicate is
immutable).

Exit status: 0 = no mismatch, refusal, unexpected engine error or crash, and
pairs >= --min-pairs; 1 = any of those; 2 = harness problem (the per-row
oracle disagrees with itself, or a row document does not read back as the
row).
"""

import argparse
import itertools
import json
import random
import sys
import time

import psycopg2

from grammar import CrowdedKeys

# --------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------

ENUM_LABELS = ['zeta', 'alpha', 'mid', 'Beta', 'beta']  # order != text order

SETUP_SQL = """
DROP SCHEMA IF EXISTS diff CASCADE;
CREATE SCHEMA diff;
CREATE TYPE diff.mood AS ENUM (%(labels)s);
CREATE DOMAIN diff.dint AS int4 CHECK (VALUE >= -1000000 AND VALUE <= 1000000);
CREATE COLLATION diff.ci (%(ci)s);
CREATE TABLE diff.t (
    id  int PRIMARY KEY,
    i2  int2,
    i4  int4,
    i8  int8,
    n   numeric,
    f4  float4,
    f8  float8,
    t   text,
    vc  varchar(20),
    tc  text COLLATE "C",
    tci text COLLATE diff.ci,
    b   bool,
    d   date,
    ts  timestamp,
    tz  timestamptz,
    u   uuid,
    j   jsonb,
    ia  int4[],
    ta  text[],
    e   diff.mood,
    dm  diff.dint
);
ALTER TABLE diff.t REPLICA IDENTITY FULL;
-- statistics only from the script's own ANALYZE
ALTER TABLE diff.t SET (autovacuum_enabled = false);
"""

# tci has a case-insensitive, nondeterministic ICU collation: equality is not
# byte equality there (a hash of the bytes is no index key for it).  LIKE and
# regular expressions are refused by PostgreSQL under such collations, so the
# grammar only compares tci.  Without ICU it falls back to a deterministic
# libc collation and the test still runs.
CI_ICU = "provider = icu, locale = 'und-u-ks-level2', deterministic = false"
CI_FALLBACK = "locale = 'C'"


def setup_sql(icu):
    return SETUP_SQL % {'labels': ', '.join("'%s'" % l for l in ENUM_LABELS),
                        'ci': CI_ICU if icu else CI_FALLBACK}

COLUMNS = ['i2', 'i4', 'i8', 'n', 'f4', 'f8', 't', 'vc', 'tc', 'tci', 'b', 'd',
           'ts', 'tz', 'u', 'j', 'ia', 'ta', 'e', 'dm']


def q(s):
    """SQL string literal (standard_conforming_strings is on)."""
    return "'" + s.replace("'", "''") + "'"


# --------------------------------------------------------------------------
# Value pools.  Small domains, so that predicates match a fair share of rows,
# plus edge values.  Each pool entry is an SQL literal.
# --------------------------------------------------------------------------

INT_EDGES = {
    'int2': ['32767', '-32768'],
    'int4': ['2147483647', '-2147483648'],
    'int8': ['9223372036854775807', '-9223372036854775808'],
}

NUMERICS = ['0', '1', '-1', '2', '3', '1.5', '2.50', '-0.5', '0.000', '3.0',
            '10', "'NaN'", "'Infinity'", "'-Infinity'", '1e20',
            '123456789.123456789', '-5', '5', '0.1']

FLOATS = ['0', '1', '-1', '2', '3', '-3', '0.5', '1.5', '0.1', '-2.5',
          "'NaN'", "'Infinity'", "'-Infinity'", "'-0'", '5', '-5']
F4_EDGES = ["'3.4e38'", "'-3.4e38'", "'1e-30'", "'1.17549435e-38'"]
F8_EDGES = ["'1.7976931348623157e308'", "'-1.7976931348623157e308'",
            "'5e-324'", "'1e-300'"]

TEXTS = ['', 'a', 'A', 'ab', 'abc', 'ABC', 'Abc', 'abc ', 'abc  ', ' abc',
         'abd', 'abcdef', 'b', 'B', 'ba', 'z', 'Z', 'héllo', 'HÉLLO', 'Héllo',
         'straße', 'STRASSE', 'ß', '日本語', '😀', 'a%c', 'a_c', 'a\\c', "it's",
         'NULL', 'zeta', 'alpha', 'abc\n', 'ǅ', 'x y', '0', '10', '9', 'hello',
         'strasse', 'ǆ', 'Ǆ', 'xABCDy', 'la abc la', 'ta tb 10', 'é1lo Ǆ']

DATES = ['2020-01-01', '2020-01-02', '2020-01-03', '2019-12-31', '2020-02-29',
         '2000-02-29', '1999-12-31', '2038-01-19', '0044-03-15 BC', 'infinity',
         '-infinity']

TIMESTAMPS = ['2020-01-01 00:00:00', '2020-01-01 00:00:00.000001',
              '2020-01-01 12:30:00', '2020-01-02 00:00:00',
              '2019-12-31 23:59:59.999999', '2020-01-03 08:00:00',
              '2000-02-29 00:00:00', '2038-01-19 03:14:07',
              '0044-03-15 10:00:00 BC', 'infinity', '-infinity']

TIMESTAMPTZS = ['2020-01-01 00:00:00+00', '2020-01-01 01:00:00+01',
                '2019-12-31 19:00:00-05', '2020-01-01 00:00:00.5+00',
                '2020-01-01 12:00:00+00', '2020-01-02 00:00:00+14',
                '2019-12-31 23:59:59.999999+00', '2020-06-01 00:00:00+02',
                '0044-03-15 10:00:00+00 BC', 'infinity', '-infinity']

UUIDS = ['00000000-0000-0000-0000-000000000000',
         'ffffffff-ffff-ffff-ffff-ffffffffffff',
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
         'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12',
         '123e4567-e89b-12d3-a456-426614174000']

JSON_KEYS = ['a', 'b', 'c', 'A', 'é']
JSON_STRINGS = ['', 'x', 'X', '1', 'abc', 'é']

REGEXES = ['^a', '^ab', 'c$', '^[a-c]+$', '^$', 'É', 'é', '[[:upper:]]',
           '^.{3}$', 'b|z', ' ', '^[0-9]+$', 'ß', 'a.c',
           # literal runs (n-gram index): quantified, optional and
           # repeated atoms and groups, escapes, brackets, multibyte
           # characters, and what must stay on the scan list
           'abc', 'bc', 'ab+c', 'ab*c', 'a(bc)?d', 'l(lo)+', 'hel|wor',
           '^hello$', 'll.', 'é*l', 'b\\.c', '[abc]bc', 'l{2}o', 'l{0,2}o',
           '\\x41', '(?:ab|bc)c', '(ab)*c', 'ab\\dc', '日本', 'ß+',
           'a{1,}bc', 'x?abc', '\\mab', 'c\\y', 'straße', 'é+l', '(?:ll)o',
           'A(BC)+D', 'a\\%c', "it's", 'ta tb', 'x(y|z)?y']

LIKES = ['ab%', 'abc%', 'a%', '%c', '%c %', 'a_c', '%', '', 'A%', 'h%',
         'H_LLO', '%ß%', 'a\\%c', 'a\\_c', 'abc', '_', '__', '%é%', 'z%',
         'abc _',
         # infixes (n-gram index): runs of 1, 2, 3+ bytes, escapes, case,
         # multibyte characters whose lower() changes bytes
         '%bc%', '%abc%', '%ABC%', '%bcd%', '%b_d%', '%é_lo%', '%HÉL%', '%ll%',
         '%LLO', '%a\\%c%', '%a\\_c%', '%\\\\%', '%STRA%E%', '%日本%',
         '%本語', '%ǅ%', '%ǆ%', '%c  %', "%'s%", '%😀%', '_b%c%', '%ta%', '%0%',
         '%1_%']

# Row values of t / vc / tc that some casts and functions accept and others
# refuse: integers (with spaces and signs), decimals, too large for int4,
# NaN / Infinity (numeric and float8 only), booleans; and text that is an
# invalid regular expression or LIKE pattern.
TEXT_NUMS = ['7', '-3', '42', '3', '0', '1.5', ' 5 ', '+8', '0010',
             '99999999999', '1e3', 'NaN', 'Infinity', '-0', '12a', 'true', 'f',
             'yes', 'off', 'a(', 'x\\', '[b', 'a{2']

OPS = ['=', '<>', '<', '<=', '>', '>=']


class Gen(CrowdedKeys):
    """The grammar.  All randomness comes from self.r (seeded)."""

    def __init__(self, seed, icu_collation):
        self.r = random.Random(seed)
        self.icu = icu_collation
        # weight of a_erroring among the atoms (err_pred raises it)
        self.err_weight = 1.5
        self.n_err = 0          # a_erroring() calls so far
        self.last_parts = None  # the conjuncts of pred()'s last conjunction

    # ---- small helpers ----------------------------------------------------

    def chance(self, p):
        return self.r.random() < p

    def pick(self, seq):
        return self.r.choice(seq)

    def op(self):
        return self.pick(OPS)

    def int_lit(self, typ):
        r = self.r.random()
        if r < 0.85:
            return str(self.r.randint(-5, 5))
        if r < 0.93:
            return self.pick(['0', '-1', '1', '100', '-100'])
        return self.pick(INT_EDGES[typ])

    def text_val(self):
        return self.pick(TEXTS)

    def text_lit(self):
        return q(self.text_val())

    def date_lit(self):
        return q(self.pick(DATES))

    def ts_lit(self):
        return q(self.pick(TIMESTAMPS))

    def tz_lit(self):
        return q(self.pick(TIMESTAMPTZS))

    def uuid_lit(self):
        return q(self.pick(UUIDS))

    def enum_lit(self):
        return q(self.pick(ENUM_LABELS))

    def num_lit(self):
        return self.pick(NUMERICS)

    def float_lit(self, col):
        if self.chance(0.1):
            return self.pick(F4_EDGES if col == 'f4' else F8_EDGES)
        return self.pick(FLOATS)

    def dom_lit(self):
        if self.chance(0.1):
            return self.pick(['-1000000', '1000000', '0'])
        return str(self.r.randint(-5, 5))

    # A constant of the given column's type (as an SQL literal that the
    # parser resolves against the column).
    def const_for(self, col):
        return {
            'i2': lambda: self.int_lit('int2'),
            'i4': lambda: self.int_lit('int4'),
            'i8': lambda: self.int_lit('int8'),
            'n': self.num_lit,
            'f4': lambda: self.float_lit('f4'),
            'f8': lambda: self.float_lit('f8'),
            't': self.text_lit,
            'vc': self.text_lit,
            'tc': self.text_lit,
            'tci': self.text_lit,
            'b': lambda: self.pick(['true', 'false']),
            'd': self.date_lit,
            'ts': self.ts_lit,
            'tz': self.tz_lit,
            'u': self.uuid_lit,
            'e': self.enum_lit,
            'dm': self.dom_lit,
        }[col]()

    # element type of an ARRAY[...] of constants for a column
    SQL_TYPE = {'i2': 'int2', 'i4': 'int4', 'i8': 'int8', 'n': 'numeric',
                'f4': 'float4', 'f8': 'float8', 't': 'text', 'vc': 'varchar',
                'tc': 'text', 'tci': 'text', 'b': 'bool', 'd': 'date',
                'ts': 'timestamp', 'tz': 'timestamptz', 'u': 'uuid',
                'e': 'diff.mood', 'dm': 'int4'}

    SCALAR_ORDERED = ['i2', 'i4', 'i8', 'n', 'f4', 'f8', 't', 'vc', 'tc', 'tci',
                      'b', 'd', 'ts', 'tz', 'u', 'e', 'dm']

    # ---- rows -------------------------------------------------------------

    def json_value(self, depth=0):
        r = self.r.random()
        if depth < 2 and r < 0.25:
            return {self.pick(JSON_KEYS): self.json_value(depth + 1)
                    for _ in range(self.r.randint(0, 3))}
        if depth < 2 and r < 0.4:
            return [self.json_value(depth + 1)
                    for _ in range(self.r.randint(0, 3))]
        return self.json_scalar()

    def json_scalar(self):
        return self.pick([0, 1, 2, -1, 1.5, 10 ** 20, True, False, None,
                          self.pick(JSON_STRINGS), self.pick(JSON_STRINGS)])

    def row_json(self):
        # Never a top-level JSON null: to_jsonb() writes an SQL NULL jsonb
        # column as null too, and jsonb_populate_record reads both as SQL
        # NULL, so a jsonb 'null' value cannot round-trip through the row
        # document the contract defines.  Nested nulls are fine.
        r = self.r.random()
        if r < 0.6:
            v = {k: self.json_value(1) for k in
                 self.r.sample(JSON_KEYS, self.r.randint(0, 4))}
        elif r < 0.8:
            v = [self.json_value(1) for _ in range(self.r.randint(0, 3))]
        else:
            v = self.json_scalar()
            if v is None:
                v = {}
        return q(json.dumps(v, ensure_ascii=False)) + '::jsonb'

    def int_array_lit(self, with_null=True, lo=-3, hi=3, maxlen=4):
        n = self.r.randint(0, maxlen)
        elems = []
        for _ in range(n):
            if with_null and self.chance(0.12):
                elems.append('NULL')
            else:
                elems.append(str(self.r.randint(lo, hi)))
        return "'{%s}'" % ','.join(elems)

    def text_array_lit(self, with_null=True, maxlen=4):
        n = self.r.randint(0, maxlen)
        elems = []
        for _ in range(n):
            if with_null and self.chance(0.12):
                elems.append('NULL')
            else:
                elems.append(q(self.pick(TEXTS[:20])))
        if not elems:
            return 'ARRAY[]::text[]'
        return 'ARRAY[%s]::text[]' % ', '.join(elems)

    def row_values(self):
        vals = {}
        for col in COLUMNS:
            if self.chance(0.1):
                vals[col] = 'NULL'
            elif col == 'j':
                vals[col] = self.row_json()
            elif col == 'ia':
                vals[col] = self.int_array_lit()
            elif col == 'ta':
                vals[col] = self.text_array_lit()
            elif col in ('t', 'vc', 'tc') and self.chance(0.3):
                # numeric-looking text: casts succeed on some rows and fail
                # on others
                vals[col] = q(self.pick(TEXT_NUMS))
            else:
                vals[col] = self.const_for(col)
                if col == 'e':
                    vals[col] += '::diff.mood'
        return vals

    # ---- predicate grammar -------------------------------------------------
    #
    # pred(depth): a boolean expression.  Composite forms (AND / OR / NOT,
    # boolean tests, CASE / COALESCE over sub-predicates) recurse; atoms are
    # one grammar function per expression kind (a_*).
    #
    # Left out on purpose, because the contract refuses them or because
    # PostgreSQL itself would raise an error on some row (every predicate
    # must evaluate without error on every row):
    #  * stable or volatile calls, refused by design: now(), random(),
    #    timestamptz +/- interval, date or timestamp vs timestamptz,
    #    extract()/date_trunc() of timestamptz, casts of timestamptz or enums
    #    to text, concat()/format(), text || non-text, casts of text to
    #    date / timestamp / enums (their input functions are stable);
    #  * LIKE and regular expressions on tci: PostgreSQL refuses them under a
    #    nondeterministic collation;
    #  * comparing t with tc without COLLATE: an indeterminate collation is
    #    a runtime error;
    #  * a top-level jsonb 'null' value in j (see row_json).
    # Expressions that raise on some rows (division, overflow, failing casts,
    # functions outside their domain) come only from a_erroring(), so that
    # every other atom stays clean; see ERR_FORMS.

    def pred(self, depth=0, max_depth=4):
        if depth == 0:
            self.last_parts = None
            k = self.r.random()
            if k < 0.01:
                return self.wide_pred()
            if k < 0.3:
                return self.indexable_pred()
        p_atom = [0.35, 0.5, 0.65, 0.85][min(depth, 3)]
        if depth >= max_depth or self.chance(p_atom):
            return self.atom()
        k = self.r.random()
        if k < 0.35:
            return '(%s)' % ' AND '.join(
                self.pred(depth + 1) for _ in range(self.r.randint(2, 3)))
        if k < 0.7:
            return '(%s)' % ' OR '.join(
                self.pred(depth + 1) for _ in range(self.r.randint(2, 3)))
        if k < 0.8:
            return 'NOT (%s)' % self.pred(depth + 1)
        if k < 0.88:
            return '(%s) IS %s%s' % (self.pred(depth + 1),
                                     self.pick(['', 'NOT ']),
                                     self.pick(['TRUE', 'FALSE', 'UNKNOWN']))
        if k < 0.95:
            return '(CASE WHEN %s THEN %s ELSE %s END)' % (
                self.pred(depth + 1), self.pred(depth + 1),
                self.pick([self.pred(depth + 1), 'NULL::bool', 'true', 'false']))
        return 'COALESCE(%s, %s)' % (self.pred(depth + 1),
                                     self.pick(['true', 'false']))

    # Top-level shapes the predicate index can route (a conjunction with an
    # equality / IN / range / LIKE prefix / boolean / NULL-test conjunct, or
    # an OR of such), so that many shapes share index groups and the engine's
    # candidates, not only its full scan, are checked.
    def indexable_pred(self):
        if self.chance(0.25):
            return '(%s)' % ' OR '.join(
                self.keyable_atom() if self.chance(0.7) else
                '(%s AND %s)' % (self.keyable_atom(), self.atom())
                for _ in range(self.r.randint(2, 4)))
        parts = [self.keyable_atom() for _ in range(self.r.randint(1, 3))]
        if self.chance(0.3):
            parts.append(self.pred(2))
        self.r.shuffle(parts)
        if len(parts) > 1:
            self.last_parts = parts     # (build_predicates: other orders)
        return ' AND '.join(parts) if len(parts) > 1 else parts[0]

    def keyable_atom(self):
        return self.pick([
            self.a_compare, self.a_compare, self.a_compare_flipped,
            self.a_cross_int, self.a_in_list, self.a_any_all, self.a_between,
            self.a_null_test, self.a_bool_col, self.a_like,
            self.a_nondeterministic, self.a_enum, self.a_domain, self.a_uuid,
            self.a_collate, self.a_range_pair])()

    # two one-sided bounds on one column (an interval for the index)
    def a_range_pair(self):
        col = self.pick(self.SCALAR_ORDERED)
        return '%s %s %s AND %s %s %s' % (
            col, self.pick(['>', '>=']), self.const_for(col),
            col, self.pick(['<', '<=']), self.const_for(col))

    # An OR of 66..80 two-atom ANDs: more AND/OR nodes than a small fixed
    # buffer of per-node state might hold.
    def wide_pred(self):
        return '(%s)' % ' OR '.join(
            '(%s AND %s)' % (self.atom(), self.atom())
            for _ in range(self.r.randint(66, 80)))

    def atom(self):
        forms = [
            (1, self.a_constant),
            (3, self.a_nondeterministic),
            (10, self.a_compare),
            (4, self.a_compare_flipped),
            (3, self.a_col_col),
            (4, self.a_cross_int),
            (5, self.a_in_list),
            (4, self.a_any_all),
            (3, self.a_between),
            (3, self.a_null_test),
            (3, self.a_bool_col),
            (2, self.a_bool_test),
            (3, self.a_distinct),
            (2, self.a_nullif),
            (2, self.a_coalesce),
            (2, self.a_case_value),
            (3, self.a_like),
            (2, self.a_regex),
            (3, self.a_collate),
            (3, self.a_text_func),
            (3, self.a_arith),
            (4, self.a_datetime),
            (2, self.a_uuid),
            (4, self.a_jsonb),
            (4, self.a_array),
            (3, self.a_enum),
            (3, self.a_domain),
            (2, self.a_greatest_least),
            (3, self.a_row_compare),
            (self.err_weight, self.a_erroring),
        ]
        total = sum(w for w, _ in forms)
        x = self.r.uniform(0, total)
        for w, f in forms:
            x -= w
            if x <= 0:
                return f()
        return forms[-1][1]()

    # column <op> constant (sometimes a NULL constant)
    def a_compare(self):
        col = self.pick(self.SCALAR_ORDERED)
        if self.chance(0.04):
            return '%s %s NULL' % (col, self.op())
        return '%s %s %s' % (col, self.op(), self.const_for(col))

    # constant predicates
    def a_constant(self):
        return self.pick(['true', 'false', 'NULL', 'NULL::bool', '1 = 1',
                          "'a' < 'b'", 'NOT true', '(1 = NULL)'])

    # tci: case-insensitive nondeterministic collation (comparisons only)
    def a_nondeterministic(self):
        w = self.text_val()
        k = self.r.randint(0, 8)
        if k == 0:
            return 'tci = %s' % q(self.pick([w, w.upper(), w.lower()]))
        if k == 1:
            return 'tci <> %s' % q(w.upper())
        if k == 2:
            return 'tci %s %s' % (self.op(), q(w))
        if k == 3:
            return 'tci %sIN (%s)' % (self.pick(['', 'NOT ']), ', '.join(
                q(self.pick([self.text_val(), self.text_val().upper()]))
                for _ in range(self.r.randint(1, 25))))
        if k == 4:
            return 'tci = ANY(ARRAY[%s]::text[])' % ', '.join(
                q(self.text_val().upper()) for _ in range(self.r.randint(1, 4)))
        if k == 5:
            return 'tci IS %sDISTINCT FROM %s' % (self.pick(['', 'NOT ']),
                                                  q(w.upper()))
        if k == 6:
            return '%s = tci' % q(w.lower())
        if k == 7:  # a deterministic collation over the nondeterministic column
            return 'tci COLLATE "C" %s %s' % (self.pick(['=', '<>', '<', '>=']),
                                              q(w))
        # and the nondeterministic collation over deterministic columns
        return '%s COLLATE diff.ci %s %s' % (
            self.pick(['t', 'vc', 'tc']), self.pick(['=', '=', '<>', '<', '>=']),
            q(self.pick([w, w.upper()])))

    # constant <op> column
    def a_compare_flipped(self):
        col = self.pick(self.SCALAR_ORDERED)
        return '%s %s %s' % (self.const_for(col), self.op(), col)

    # column <op> column of a comparable type
    def a_col_col(self):
        a, b = self.pick([
            ('i2', 'i4'), ('i4', 'i8'), ('i2', 'i8'), ('i4', 'dm'),
            ('i2', 'dm'), ('n', 'i4'), ('f4', 'f8'), ('f8', 'i4'),
            ('n', 'f8'), ('t', 'vc'), ('d', 'ts'), ('i4', 'i4'),
            ('t', 'tc COLLATE "default"'), ('tc', 't COLLATE "C"'),
        ])
        if self.chance(0.5):
            a, b = b, a
        return '%s %s %s' % (a, self.op(), b)

    # integer columns against integer literals of other widths
    def a_cross_int(self):
        col = self.pick(['i2', 'i4', 'i8', 'dm'])
        typ = self.pick(['int2', 'int4', 'int8'])
        v = self.int_lit(typ)
        if typ == 'int2' and v in INT_EDGES['int4'] + INT_EDGES['int8']:
            v = '1'
        form = self.r.randint(0, 3)
        if form == 0:
            return '%s %s (%s)::%s' % (col, self.op(), v, typ)
        if form == 1:
            return '(%s)::%s %s %s' % (v, typ, self.op(), col)
        if form == 2:
            # a literal beyond the column's range
            big = self.pick(['70000', '-70000', '3000000000', '-3000000000'])
            return '%s %s %s::int8' % (col, self.op(), big)
        return '%s %s %s' % (col, self.op(), self.pick(['3.0', '2.5', '-0.0',
                                                        '1e3']))

    def _list_elems(self, col, n, null_p):
        out = []
        for _ in range(n):
            if self.chance(null_p):
                out.append('NULL')
            elif col in ('i2', 'i4', 'i8', 'dm') and n >= 20:
                out.append(str(self.r.randint(-30, 30)))
            else:
                out.append(self.const_for(col))
        return out

    # x [NOT] IN (...), short and long lists, sometimes with NULL
    def a_in_list(self):
        col = self.pick(['i2', 'i4', 'i8', 'n', 'f8', 't', 'vc', 'tc', 'tci', 'd',
                         'ts', 'tz', 'u', 'e', 'dm', 'b', 'f4'])
        n = self.r.randint(20, 40) if self.chance(0.3) else self.r.randint(1, 5)
        elems = self._list_elems(col, n, 0.08 if self.chance(0.3) else 0)
        neg = 'NOT ' if self.chance(0.3) else ''
        return '%s %sIN (%s)' % (col, neg, ', '.join(elems))

    # x op ANY / ALL ('{...}') and ARRAY[...]
    def a_any_all(self):
        col = self.pick(['i2', 'i4', 'i8', 'n', 't', 'tc', 'tci', 'e', 'dm', 'f8',
                         'd', 'u'])
        op = self.pick(['=', '=', '<>', '<', '>=', '<=', '>'])
        quant = self.pick(['ANY', 'ALL'])
        n = self.r.randint(20, 30) if self.chance(0.25) else self.r.randint(0, 5)
        if col in ('i2', 'i4', 'i8', 'dm'):
            elems = [('NULL' if self.chance(0.06) else
                      str(self.r.randint(-30, 30) if n >= 20 else
                          self.r.randint(-5, 5))) for _ in range(n)]
            if self.chance(0.5):
                arr = "'{%s}'" % ','.join(elems)
            else:
                arr = "'{%s}'::int8[]" % ','.join(elems)
            return '%s %s %s(%s)' % (col, op, quant, arr)
        elems = self._list_elems(col, n, 0.06)
        if not elems:
            return '%s %s %s(%s)' % (col, op, quant, "'{}'")
        return '%s %s %s(ARRAY[%s]::%s[])' % (col, op, quant, ', '.join(elems),
                                              self.SQL_TYPE[col])

    # [NOT] BETWEEN [SYMMETRIC]
    def a_between(self):
        col = self.pick(['i2', 'i4', 'i8', 'n', 'f4', 'f8', 't', 'd', 'ts',
                         'tz', 'e', 'dm', 'u'])
        lo, hi = self.const_for(col), self.const_for(col)
        neg = 'NOT ' if self.chance(0.25) else ''
        sym = 'SYMMETRIC ' if self.chance(0.25) else ''
        return '%s %sBETWEEN %s%s AND %s' % (col, neg, sym, lo, hi)

    # IS [NOT] NULL
    def a_null_test(self):
        col = self.pick(COLUMNS)
        return '%s IS %sNULL' % (col, self.pick(['', 'NOT ']))

    # bare boolean column, NOT col, col = true ...
    def a_bool_col(self):
        return self.pick(['b', 'NOT b', 'b = true', 'b = false', 'b <> true',
                          'b AND b', 'NOT NOT b', 'b = (i4 > 0)',
                          'b < true', 'b >= false'])

    # IS [NOT] TRUE / FALSE / UNKNOWN
    def a_bool_test(self):
        arg = self.pick(['b', 'b', '(i4 > 0)', '(t = %s)' % self.text_lit(),
                         '(n < 1)'])
        return '%s IS %s%s' % (arg, self.pick(['', 'NOT ']),
                               self.pick(['TRUE', 'FALSE', 'UNKNOWN']))

    # IS [NOT] DISTINCT FROM
    def a_distinct(self):
        neg = self.pick(['', 'NOT '])
        if self.chance(0.3):
            a, b = self.pick([('i4', 'i2'), ('t', 'vc'), ('i8', 'dm'),
                              ('f4', 'f8'), ('d', 'ts')])
            return '%s IS %sDISTINCT FROM %s' % (a, neg, b)
        col = self.pick(self.SCALAR_ORDERED)
        v = 'NULL' if self.chance(0.2) else self.const_for(col)
        return '%s IS %sDISTINCT FROM %s' % (col, neg, v)

    # NULLIF(a, b)
    def a_nullif(self):
        col = self.pick(['i2', 'i4', 'n', 't', 'd', 'e', 'dm'])
        inner = 'NULLIF(%s, %s)' % (col, self.const_for(col))
        k = self.r.randint(0, 2)
        if k == 0:
            return '%s IS %sNULL' % (inner, self.pick(['', 'NOT ']))
        return '%s %s %s' % (inner, self.op(), self.const_for(col))

    # COALESCE(...)
    def a_coalesce(self):
        k = self.r.randint(0, 4)
        if k == 0:
            return 'COALESCE(i4, i2, %s) %s %s' % (
                self.int_lit('int2'), self.op(), self.int_lit('int4'))
        if k == 1:
            return 'COALESCE(b, %s)' % self.pick(['true', 'false'])
        if k == 2:
            return 'COALESCE(t, vc, %s) %s %s' % (self.text_lit(), self.op(),
                                                  self.text_lit())
        if k == 3:
            return 'COALESCE(d, %s) %s %s' % (self.date_lit(), self.op(),
                                              self.date_lit())
        return 'COALESCE(n, f8::numeric, 0) %s %s' % (self.op(), self.num_lit())

    # CASE producing a value that is then compared
    def a_case_value(self):
        k = self.r.randint(0, 2)
        if k == 0:
            return 'CASE WHEN i4 > %s THEN t ELSE vc END %s %s' % (
                self.int_lit('int4'), self.op(), self.text_lit())
        if k == 1:
            return ('CASE i2 WHEN %s THEN b WHEN %s THEN NOT b END' %
                    (self.int_lit('int2'), self.int_lit('int2')))
        return ('CASE WHEN n IS NULL THEN -1 WHEN n > %s THEN 1 ELSE 0 END %s %s'
                % (self.num_lit(), self.op(), self.pick(['-1', '0', '1'])))

    # [NOT] LIKE / ILIKE
    def a_like(self):
        col = self.pick(['t', 'vc', 'tc'])
        op = self.pick(['LIKE', 'LIKE', 'NOT LIKE', 'ILIKE', 'NOT ILIKE'])
        if self.chance(0.15):
            pat = self.pick(['a#%c', 'ab#_%', 'a#%%', '#%', 'abc#%', 'a\\c%'])
            return "%s %s %s ESCAPE '#'" % (col, op, q(pat))
        return '%s %s %s' % (col, op, q(self.pick(LIKES)))

    # ~ ~* !~ !~*
    def a_regex(self):
        col = self.pick(['t', 'vc', 'tc'])
        op = self.pick(['~', '~', '~*', '!~', '!~*'])
        return '%s %s %s' % (col, op, q(self.pick(REGEXES)))

    # regular expressions the n-gram index has no key for
    def a_regex_scan(self):
        col = self.pick(['t', 'vc', 'tc'])
        if self.chance(0.5):
            return '%s %s %s' % (col, self.pick(['~*', '!~', '!~*']),
                                 q(self.pick(REGEXES)))
        return '%s ~ %s' % (col, q(self.pick(['^.{3}$', 'b|z', '[[:upper:]]',
                                              '\\x41', '(?:ab|bc)c', '.'])))

    # comparisons under explicit or column collations
    def a_collate(self):
        k = self.r.randint(0, 4)
        if k == 0:
            return 'tc %s %s' % (self.op(), self.text_lit())
        if k == 1:
            return 't COLLATE "C" %s %s' % (self.op(), self.text_lit())
        if k == 2:
            return 't %s %s COLLATE "%s"' % (self.op(), self.text_lit(),
                                             self.icu)
        if k == 3:
            return 'tc COLLATE "%s" %s %s' % (self.icu, self.op(),
                                              self.text_lit())
        return 'vc COLLATE "POSIX" %s %s' % (self.op(), self.text_lit())

    # immutable text functions; the constant is usually the function applied
    # (in Python) to a pool value, so that some rows match
    def a_text_func(self):
        col = self.pick(['t', 'vc', 'tc'])
        k = self.r.randint(0, 8)
        w = self.text_val()
        v = q(w) if self.chance(0.3) else None
        if k == 0:
            return 'lower(%s) %s %s' % (col, self.op(), v or q(w.lower()))
        if k == 1:
            return 'upper(%s) = %s' % (col, v or q(w.upper()))
        if k == 2:
            return 'length(%s) %s %d' % (col, self.op(), self.r.randint(0, 6))
        if k == 3:
            s, n = self.r.randint(1, 3), self.r.randint(0, 3)
            return 'substr(%s, %d, %d) = %s' % (col, s, n,
                                                v or q(w[s - 1:s - 1 + n]))
        if k == 4:
            return 'btrim(%s) = %s' % (col, v or q(w.strip(' ')))
        if k == 5:
            return 'starts_with(%s, %s)' % (col, v or q(w[:2]))
        if k == 6:
            return "%s || 'x' %s %s" % (col, self.op(), q(w + 'x'))
        if k == 7:
            return 'left(%s, 2) = %s' % (col, v or q(w[:2]))
        return 'octet_length(%s) > %d' % (col, self.r.randint(0, 5))

    # arithmetic that cannot overflow or divide
    def a_arith(self):
        k = self.r.randint(0, 8)
        c = self.r.randint(-3, 3)
        if k == 0:
            return 'n + %d %s %s' % (c, self.op(), self.num_lit())
        if k == 1:
            return 'i2 + %d %s %d' % (c, self.op(), self.r.randint(-5, 5))
        if k == 2:  # int4 + int8 is int8: no overflow for any int4
            return 'i4 + %d::int8 %s %d' % (c, self.op(), self.r.randint(-5, 5))
        if k == 3:
            return 'i8::numeric * 2 %s %d' % (self.op(), self.r.randint(-8, 8))
        if k == 4:  # float + small constant never overflows
            return 'f8 + %d %s %s' % (c, self.op(), self.float_lit('f8'))
        if k == 5:
            return 'f4 - 1 %s %s' % (self.op(), self.float_lit('f4'))
        if k == 6:
            return 'n * n %s %s' % (self.op(), self.num_lit())
        if k == 7:
            return '-n %s %s' % (self.op(), self.num_lit())
        return 'i2::int4 * i2 + i4::int8 %s %d' % (self.op(),
                                                  self.r.randint(-5, 20))

    # date / timestamp / timestamptz
    def a_datetime(self):
        k = self.r.randint(0, 8)
        if k == 0:
            return 'd %s %s' % (self.op(), self.date_lit())
        if k == 1:
            return 'ts %s %s' % (self.op(), self.ts_lit())
        if k == 2:
            return 'tz %s %s' % (self.op(), self.tz_lit())
        if k == 3:  # date vs timestamp is immutable (vs timestamptz is not)
            return 'd %s %s::timestamp' % (self.op(), self.ts_lit())
        if k == 4:
            return 'd + %d %s %s' % (self.r.randint(-2, 2), self.op(),
                                     self.date_lit())
        if k == 5:
            return "ts + interval '%d hours' %s %s" % (
                self.r.randint(-24, 24), self.op(), self.ts_lit())
        if k == 6:
            return 'extract(year from ts) %s %s' % (
                self.op(), self.pick(['2020', '2019', '2000', "'Infinity'"]))
        if k == 7:
            return 'extract(dow from d) = %d' % self.r.randint(0, 6)
        return "date_trunc('day', ts) = %s" % self.ts_lit()

    def a_uuid(self):
        k = self.r.randint(0, 2)
        if k == 0:
            return 'u = %s' % self.uuid_lit()
        if k == 1:
            return 'u %s %s' % (self.op(), self.uuid_lit())
        return 'u IN (%s, %s)' % (self.uuid_lit(), self.uuid_lit())

    def json_const(self):
        r = self.r.random()
        if r < 0.6:
            v = {k: self.json_scalar() for k in
                 self.r.sample(JSON_KEYS, self.r.randint(0, 2))}
        elif r < 0.8:
            v = [self.json_scalar() for _ in range(self.r.randint(0, 2))]
        else:
            v = self.json_scalar()
        return q(json.dumps(v, ensure_ascii=False))

    # jsonb operators
    def a_jsonb(self):
        k = self.r.randint(0, 11)
        key = q(self.pick(JSON_KEYS))
        if k == 0:
            return 'j ->> %s = %s' % (key, q(self.pick(
                JSON_STRINGS + ['true', '0', '1', '2', '1.5'])))
        if k == 1:
            return 'j -> %s = %s' % (key, q(json.dumps(self.json_scalar())))
        if k == 2:
            return 'j @> %s' % self.json_const()
        if k == 3:
            return 'j <@ %s' % self.json_const()
        if k == 4:
            return 'j ? %s' % key
        if k == 5:
            return 'j ?| ARRAY[%s, %s]' % (key, q(self.pick(JSON_KEYS)))
        if k == 6:
            return 'j ?& ARRAY[%s, %s]' % (key, q(self.pick(JSON_KEYS)))
        if k == 7:
            return 'j %s %s' % (self.op(), self.json_const())
        if k == 8:
            return 'jsonb_typeof(j) = %s' % q(self.pick(
                ['object', 'array', 'string', 'number', 'boolean', 'null']))
        if k == 9:
            return "j #>> '{a,b}' IS NOT NULL"
        if k == 10:
            return 'j -> %d = %s' % (self.r.randint(0, 2),
                                     q(json.dumps(self.json_scalar())))
        return "j @? '$.%s ? (@ > 0)'" % self.pick(['a', 'b', 'c'])

    # array operators
    def a_array(self):
        k = self.r.randint(0, 11)
        if k == 0:
            return 'ia @> %s' % self.int_array_lit(with_null=self.chance(0.2),
                                                   maxlen=2)
        if k == 1:
            return 'ia <@ %s' % self.int_array_lit(with_null=False, maxlen=5)
        if k == 2:
            return 'ia && %s' % self.int_array_lit(with_null=self.chance(0.2))
        if k == 3:
            return '%s = ANY(ia)' % self.int_lit('int4')
        if k == 4:
            return 'i4 = ANY(ia)'
        if k == 5:
            return 'ia %s %s' % (self.op(), self.int_array_lit())
        if k == 6:
            return 'cardinality(ia) %s %d' % (self.op(), self.r.randint(0, 3))
        if k == 7:
            return 'ia[%d] = %d' % (self.r.randint(1, 2), self.r.randint(-3, 3))
        if k == 8:
            return 'ta @> %s' % self.text_array_lit(with_null=False, maxlen=2)
        if k == 9:
            return '%s = ANY(ta)' % q(self.pick(TEXTS[:20]))
        if k == 10:
            return 't = ANY(ta)'
        return 'ta && %s' % self.text_array_lit(with_null=False)

    # enums order by declaration
    def a_enum(self):
        k = self.r.randint(0, 4)
        if k == 0:
            return 'e %s %s' % (self.op(), self.enum_lit())
        if k == 1:
            return 'e IN (%s, %s)' % (self.enum_lit(), self.enum_lit())
        if k == 2:
            return 'e BETWEEN %s AND %s' % (self.enum_lit(), self.enum_lit())
        if k == 3:
            return '%s %s e' % (self.enum_lit(), self.op())
        return "e = ANY(%s::diff.mood[])" % q(
            '{%s}' % ','.join(self.r.sample(ENUM_LABELS, 2)))

    # domain over int4
    def a_domain(self):
        k = self.r.randint(0, 5)
        if k == 0:
            return 'dm %s %s' % (self.op(), self.dom_lit())
        if k == 1:
            return 'dm = i4'
        if k == 2:
            return 'dm + 1 %s %d' % (self.op(), self.r.randint(-5, 5))
        if k == 3:
            return 'dm BETWEEN %d AND %d' % (self.r.randint(-5, 0),
                                             self.r.randint(0, 5))
        if k == 4:  # a constant coerced to the domain (CoerceToDomain)
            return 'dm %s (%d)::diff.dint' % (self.op(), self.r.randint(-5, 5))
        return 'dm::int8 %s %s' % (self.op(), self.int_lit('int8'))

    # GREATEST / LEAST (NULL arguments are ignored)
    def a_greatest_least(self):
        f = self.pick(['GREATEST', 'LEAST'])
        k = self.r.randint(0, 4)
        if k == 0:
            return '%s(i2, i4) %s %s' % (f, self.op(), self.int_lit('int4'))
        if k == 1:
            return '%s(i4, %s) = i4' % (f, self.int_lit('int4'))
        if k == 2:
            return '%s(t, %s) %s %s' % (f, self.text_lit(), self.op(),
                                        self.text_lit())
        if k == 3:
            return '%s(f8, 0) %s %s' % (f, self.op(), self.float_lit('f8'))
        return '%s(d, %s) %s %s' % (f, self.date_lit(), self.op(),
                                    self.date_lit())

    # row constructors
    def a_row_compare(self):
        k = self.r.randint(0, 5)
        op = self.op()
        if k == 0:
            return '(i2, i4) %s (%s, %s)' % (op, self.int_lit('int2'),
                                             self.int_lit('int4'))
        if k == 1:
            return '(i4, t) %s (%s, %s)' % (op, self.int_lit('int4'),
                                            self.text_lit())
        if k == 2:
            return '(i2, i8) %s ((%s)::int8, %s)' % (op, self.int_lit('int4'),
                                                   self.int_lit('int4'))
        if k == 3:
            return '(d, ts) %s (%s, %s)' % (op, self.date_lit(), self.ts_lit())
        if k == 4:
            return '(i4, i2) IS %sDISTINCT FROM (%s, %s)' % (
                self.pick(['', 'NOT ']), self.int_lit('int4'),
                self.pick(['NULL', self.int_lit('int2')]))
        return '(e, dm, tc) %s (%s, %s, %s)' % (op, self.enum_lit(),
                                                self.dom_lit(), self.text_lit())


    # ---- expressions that raise on some rows ----------------------------
    #
    # Each form gives (expression, guard): the expression raises on some
    # rows (the row generator makes sure of that) and is true on others;
    # the guard is a condition under which it (mostly) does not raise.
    # a_erroring() writes the expression alone, guarded before it (AND,
    # CASE, OR NOT: PostgreSQL evaluates left to right, so these rarely
    # raise) or guarded after it (raises as written).

    def err_form(self):
        g = self
        op = g.op()
        c = g.r.randint(-3, 5)
        key = q(g.pick(JSON_KEYS))
        forms = [
            # division and modulo by a column that can be 0; int4 / -1 and
            # int8 / -1 overflow on the smallest values
            lambda: ('i4 / i2 %s %d' % (op, c), 'i2 <> 0'),
            lambda: ('i8 %% i4 = %d' % g.r.randint(0, 2), 'i4 <> 0'),
            lambda: ('i2 / i2 = 1', 'i2 <> 0'),
            lambda: ('n / n = 1', 'n <> 0'),
            lambda: ('n %% i2 %s %s' % (op, g.num_lit()), 'i2 <> 0'),
            lambda: ('f8 / f4 %s %s' % (op, g.float_lit('f8')), 'f4 <> 0'),
            lambda: ('1 / f8 %s %d' % (op, c), 'f8 <> 0'),
            lambda: ('i4 / ia[1] %s %d' % (op, c), 'ia[1] <> 0'),
            lambda: ('div(n, i2) %s %d' % (op, c), 'i2 <> 0'),
            lambda: ('mod(i8, i2) = 0', 'i2 <> 0'),
            lambda: ('i8 / (i2 - %d) %s %d' % (c, op, c), 'i2 <> %d' % c),
            lambda: ('dm / i2 %s %d' % (op, c), 'i2 <> 0'),
            lambda: ('ia[1] / ia[2] %s %d' % (op, c), 'ia[2] <> 0'),
            # overflow
            lambda: ('i4 * 2 %s %d' % (op, c), 'i4 BETWEEN -1000 AND 1000'),
            lambda: ('i2 + i2 %s %d' % (op, c), 'i2 BETWEEN -100 AND 100'),
            lambda: ('-i8 %s %d' % (op, c), 'i8 > -9223372036854775808'),
            lambda: ('abs(i4) %s %d' % (op, c), 'i4 > -2147483648'),
            lambda: ('f8 * 10 %s %s' % (op, g.float_lit('f8')),
                     'abs(f8) < 1e300'),
            # casts that can fail
            lambda: ('t::int4 %s %d' % (op, c), "t ~ '^ *[-+]?[0-9]+ *$'"),
            lambda: ('vc::int8 %s %d' % (op, c), "vc ~ '^[0-9]+$'"),
            lambda: ('tc::numeric %s %s' % (op, g.num_lit()),
                     "tc ~ '^[-+]?[0-9.]+$'"),
            lambda: ('t::float8 %s %s' % (op, g.float_lit('f8')),
                     "t ~ '^[-+]?[0-9.]+$'"),
            lambda: ('t::bool', "t IN ('t', 'f', 'true', 'yes', 'off', '0')"),
            lambda: ('vc::int2 = %d' % c, "vc ~ '^[0-9]{1,4}$'"),
            lambda: ("t::jsonb = '7'", "t ~ '^[0-9]+$'"),
            lambda: ('(j ->> %s)::int4 %s %d' % (key, op, c),
                     "(j ->> %s) ~ '^-?[0-9]+$'" % key),
            lambda: ('(j -> %s)::int4 %s %d' % (key, op, c),
                     "jsonb_typeof(j -> %s) = 'number'" % key),
            lambda: ('(j ->> %s)::numeric %s %s' % (key, op, g.num_lit()),
                     "jsonb_typeof(j -> %s) = 'number'" % key),
            lambda: ('(j ->> %s)::bool' % key,
                     "jsonb_typeof(j -> %s) = 'boolean'" % key),
            lambda: ('(j -> %s)::bool' % key,
                     "jsonb_typeof(j -> %s) = 'boolean'" % key),
            lambda: ('jsonb_array_length(j) %s %d' % (op, g.r.randint(0, 3)),
                     "jsonb_typeof(j) = 'array'"),
            # numeric NaN / Infinity to integer raise 0A000, not a data
            # exception; 1e20 raises 22003
            lambda: ('n::int4 %s %d' % (op, c), 'n BETWEEN -1000 AND 1000'),
            lambda: ('n::int8 %s %d' % (op, c), 'n BETWEEN -1000 AND 1000'),
            lambda: ('f8::int4 %s %d' % (op, c), 'abs(f8) < 1e9'),
            lambda: ('f8::float4 %s %s' % (op, g.float_lit('f4')),
                     'abs(f8) < 1e30'),
            lambda: ('i4::int2 %s %d' % (op, c),
                     'i4 BETWEEN -32768 AND 32767'),
            lambda: ('i8::int4 %s %d' % (op, c),
                     'i8 BETWEEN -2147483648 AND 2147483647'),
            lambda: ('i4::diff.dint %s %d' % (op, c),
                     'i4 BETWEEN -1000000 AND 1000000'),
            lambda: ('ta[1]::int4 = %d' % c, "ta[1] ~ '^[0-9]+$'"),
            # functions outside their domain
            lambda: ('sqrt(n) %s %s' % (op, g.num_lit()), 'n >= 0'),
            lambda: ('sqrt(f8) %s %s' % (op, g.float_lit('f8')), 'f8 >= 0'),
            lambda: ('ln(n) %s %s' % (op, g.num_lit()), 'n > 0'),
            lambda: ('log(n) %s %s' % (op, g.num_lit()), 'n > 0'),
            lambda: ('ln(f8) %s %s' % (op, g.float_lit('f8')), 'f8 > 0'),
            lambda: ('log(i2) %s %d' % (op, c), 'i2 > 0'),
            lambda: ('power(n, 0.5) %s %s' % (op, g.num_lit()), 'n >= 0'),
            lambda: ('power(f8, -1) %s %s' % (op, g.float_lit('f8')),
                     'f8 <> 0'),
            lambda: ('power(i2, i4) %s %d' % (op, c),
                     'i2 <> 0 AND i4 BETWEEN -10 AND 10'),
            lambda: ('exp(n) %s %s' % (op, g.num_lit()), 'n < 100'),
            lambda: ('exp(f8) %s %s' % (op, g.float_lit('f8')), 'f8 < 700'),
            lambda: ('asin(f8) %s %s' % (op, g.float_lit('f8')),
                     'f8 BETWEEN -1 AND 1'),
            lambda: ('factorial(i2) %s %d' % (op, c), 'i2 >= 0'),
            lambda: ('substr(t, 1, i2) = %s' % g.text_lit(), 'i2 >= 0'),
            lambda: ('lpad(t, i4) = %s' % g.text_lit(), 'i4 < 1000'),
            lambda: ("chr(i2) = 'a'", 'i2 > 0'),
            lambda: ("'abc' ~ t", "t !~ '[\\\\([{]'"),
            lambda: ('vc ~* t', "t !~ '[\\\\([{]'"),
            lambda: ("'x' LIKE t", "right(t, 1) <> '\\'"),
            lambda: ("make_date(i2, 1, 1) %s date '0001-01-01'" % op,
                     'i2 <> 0'),
            lambda: ("d - date '2020-01-01' %s %d" % (op, c), 'isfinite(d)'),
            lambda: ('d + i4 %s %s' % (op, g.date_lit()),
                     'i4 BETWEEN -100000 AND 100000'),
            lambda: ("ts - timestamp '2020-01-01 00:00:00' %s interval '%d "
                     "days'" % (op, c), 'isfinite(ts)'),
        ]
        return g.pick(forms)()

    def a_erroring(self):
        self.n_err += 1
        expr, guard = self.err_form()
        k = self.r.random()
        if k < 0.55:
            return expr
        if k < 0.7:
            return '(%s AND %s)' % (guard, expr)
        if k < 0.8:
            return '(NOT (%s) OR %s)' % (guard, expr)
        if k < 0.88:
            return '(CASE WHEN %s THEN %s END)' % (guard, expr)
        return '(%s AND %s)' % (expr, guard)

    # a predicate of the usual grammar with erroring atoms far more likely
    def err_pred(self):
        saved = self.err_weight
        self.err_weight = 30
        try:
            while True:
                before = self.n_err
                p = self.pred()
                if self.n_err > before:
                    return p
        finally:
            self.err_weight = saved

    # ---- conjunctions in every order, crowded keys -------------------------
    #
    # The plugin files a shape under its conjunct of least estimated cost
    # (selectivity, from pg_statistic or a fixed ranking by operator, times
    # one plus the shapes already under the key), ties by a fingerprint,
    # and moves old shapes out of posting lists that become crowded.  None
    # of that may change an answer.  These forms never contain an erroring
    # atom: AND is commutative only where nothing raises.

    LIKE_PREFIXES = ['a%', 'ab%', 'abc%', 'A%', 'h%', 'H%', 'z%', 'x%', 'é%',
                     '日%', 'la%', 'ta%', 'st%', '1%', 'a\\%%', '%']
    LIKE_INFIXES = ['%bc%', '%abc%', '%b%', '%ll%', '%é%', '%ß%', '%本%',
                    '%ta%', '%a_c%', '%0%', '%c %', '%STRA%']
    EQ_COLS = ['i2', 'i4', 'i8', 'n', 'f4', 'f8', 't', 'vc', 'tc', 'tci', 'b',
               'd', 'ts', 'tz', 'u', 'e', 'dm']
    RANGE_COLS = ['i2', 'i4', 'i8', 'n', 'f4', 'f8', 't', 'vc', 'tc', 'd',
                  'ts', 'tz', 'u', 'e', 'dm']

    def clean_atom(self):
        saved = self.err_weight
        self.err_weight = 0
        try:
            return self.atom()
        finally:
            self.err_weight = saved

    # a conjunct the predicate index routes on: a few atoms, rarely two
    # bounds of one column (the pair of a bounded range)
    def ix_conjuncts(self, avoid=()):
        if self.chance(0.08):
            col = self.pick([c for c in self.RANGE_COLS if c not in avoid])
            return ['%s %s %s' % (col, self.pick(['>', '>=']),
                                  self.const_for(col)),
                    '%s %s %s' % (col, self.pick(['<', '<=']),
                                  self.const_for(col))]
        if self.chance(0.12):
            return ['(%s)' % ' OR '.join(self.ix_atom(avoid)
                                         for _ in range(self.r.randint(2, 3)))]
        return [self.ix_atom(avoid)]

    def ix_atom(self, avoid=()):
        k = self.r.randint(0, 12)
        eq = [c for c in self.EQ_COLS if c not in avoid]
        rng = [c for c in self.RANGE_COLS if c not in avoid]
        txt = [c for c in ('t', 'vc', 'tc') if c not in avoid] or ['t']
        if k <= 2:
            col = self.pick(eq)
            if self.chance(0.15):
                return '%s = %s' % (self.const_for(col), col)
            return '%s = %s' % (col, self.const_for(col))
        if k == 3:
            col = self.pick(eq)
            elems = self._list_elems(col, self.r.randint(1, 4), 0)
            if self.chance(0.6):
                return '%s IN (%s)' % (col, ', '.join(elems))
            return '%s = ANY(ARRAY[%s]::%s[])' % (col, ', '.join(elems),
                                                  self.SQL_TYPE[col])
        if k == 4:
            col = self.pick(rng)
            if self.chance(0.2):
                return '%s %s %s' % (self.const_for(col),
                                     self.pick(['<', '<=', '>', '>=']), col)
            return '%s %s %s' % (col, self.pick(['<', '<=', '>', '>=']),
                                 self.const_for(col))
        if k == 5:
            col = self.pick(rng)
            return '%s BETWEEN %s%s AND %s' % (
                col, 'SYMMETRIC ' if self.chance(0.2) else '',
                self.const_for(col), self.const_for(col))
        if k == 6:
            return '%s LIKE %s' % (self.pick(txt),
                                   q(self.pick(self.LIKE_PREFIXES)))
        if k == 7:
            return '%s %s %s' % (self.pick(txt), self.pick(['LIKE', 'ILIKE']),
                                 q(self.pick(self.LIKE_INFIXES)))
        if k == 8 and 'b' not in avoid:
            return self.pick(['b', 'NOT b', 'b IS TRUE', 'b IS FALSE',
                              'b = true', 'b = false'])
        if k == 9:
            return '%s IS %sNULL' % (self.pick([c for c in COLUMNS
                                                if c not in avoid]),
                                     self.pick(['', 'NOT ']))
        if k == 10 and 'ia' not in avoid:
            lit = self.int_array_lit(with_null=False, maxlen=3)
            return self.pick(['ia @> %s', 'ia && %s', '%s && ia']) % lit
        if k == 11 and 'ta' not in avoid:
            lit = self.text_array_lit(with_null=False, maxlen=2)
            return self.pick(['ta @> %s', 'ta && %s']) % lit
        if k == 12 and self.chance(0.5):
            # literal runs of a regular expression (n-gram index)
            return '%s ~ %s' % (self.pick(txt), q(self.pick(REGEXES[14:])))
        col = self.pick([c for c in ('e', 'u', 'dm') if c not in avoid] or eq)
        return '%s = %s' % (col, self.const_for(col))

    # a conjunct whose fixed estimate (without statistics) is above
    # equality's: a one-sided range, IS NULL, a boolean, a substring, a LIKE
    # prefix, array elements
    def weak_atom(self, avoid=()):
        k = self.r.randint(0, 5)
        if k == 0:
            col = self.pick([c for c in self.RANGE_COLS if c not in avoid])
            return '%s %s %s' % (col, self.pick(['<', '<=', '>', '>=']),
                                 self.const_for(col))
        if k == 1:
            return '%s IS NULL' % self.pick([c for c in COLUMNS
                                             if c not in avoid])
        if k == 2 and 'b' not in avoid:
            return self.pick(['b', 'NOT b', 'b IS FALSE'])
        txt = [c for c in ('t', 'vc', 'tc') if c not in avoid]
        if k == 3 and txt:
            return '%s %s %s' % (self.pick(txt), self.pick(['LIKE', 'ILIKE']),
                                 q(self.pick(self.LIKE_INFIXES)))
        if k == 4 and txt:
            return '%s LIKE %s' % (self.pick(txt),
                                   q(self.pick(self.LIKE_PREFIXES[:-1])))
        if 'ia' not in avoid:
            return 'ia && %s' % self.int_array_lit(with_null=False, maxlen=3)
        return 'ta && %s' % self.text_array_lit(with_null=False, maxlen=2)

    # A conjunction written with random nesting: a AND (b AND c), ...
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

    def permutations(self, parts, limit, every=False):
        """The conjunction as written, then up to limit others: its
        conjuncts permuted, flat or nested; every: all the orders of up to
        3 conjuncts."""
        out = [' AND '.join(parts)]
        if every and len(parts) <= 3:
            perms = list(itertools.permutations(parts))[1:]
            self.r.shuffle(perms)
            for perm in perms:
                t = self.conj_text(list(perm),
                                   len(perm) > 2 and self.chance(0.5))
                if t not in out:
                    out.append(t)
            return out
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
    def perm_group(self, parts=None):
        if parts is None:
            n = self.r.randint(2, 4)
            parts = []
            while len(parts) < n:
                c = self.ix_conjuncts()
                if len(parts) + len(c) > n:
                    c = [self.ix_atom()]
                parts += c
            if self.chance(0.2):
                parts.append(self.clean_atom())
        return self.permutations(parts, self.r.randint(3, 5), every=True)

    # An atom the predicate index does not route on (for shapes whose only
    # indexable conjunct is the crowded one).
    def nonindex_atom(self):
        while True:
            a = self.pick([self.a_text_func, self.a_jsonb, self.a_arith,
                           self.a_col_col, self.a_coalesce, self.a_case_value,
                           self.a_greatest_least,
                           self.a_regex_scan, self.a_nullif])()
            # j <op> constant is a range on an ordered type
            if not a.startswith(tuple('j %s ' % op for op in OPS)):
                return a

    # The unselective conjuncts many shapes share: (conjunct, its column)
    CROWD_KEYS = [
        ("e = 'mid'", 'e'), ("e = 'alpha'", 'e'), ('i2 = 0', 'i2'),
        ('b', 'b'), ('NOT b', 'b'), ('b IS TRUE', 'b'),
        ('i4 IS NOT NULL', 'i4'), ('t IS NOT NULL', 't'),
        ('d IS NOT NULL', 'd'), ('j IS NULL', 'j'),
        ("t LIKE 'a%'", 't'), ("vc LIKE 'ab%'", 'vc'), ("tc LIKE '%b%'", 'tc'),
        ("t ILIKE '%A%'", 't'),
        ('i4 > -4', 'i4'), ('i8 BETWEEN -5 AND 5', 'i8'),
        ("d >= '2000-01-01'", 'd'), ('n >= -1', 'n'),
        ("ia && '{0,1,2}'", 'ia'), ("ta @> ARRAY['a']", 'ta'),
    ]


def build_predicates(gen, args):
    """The predicates in registration order (shape ids follow it, and a
    backend's router files its shapes in id order), then the erroring ones.
    -> (preds, number registered before ANALYZE, permutation groups [[pred
    index]], crowded groups [{'conj', 'col', 'stages': [[pred index]]}])

    Each item gets a position in [0, 1): the usual predicates evenly, the
    other orders of a conjunction anywhere after the original (so that they
    are filed with other loads around them), the stages of a crowded group
    at increasing positions (stage 2 in two blocks).  Items before the
    split position are registered before ANALYZE."""
    items = []                  # (position, seq, text, tag)

    def put(pos, text, tag):
        items.append((pos, len(items), text, tag))

    n = args.predicates
    groups = 0
    for j in range(n):
        pos = j / n
        p = gen.pred()
        parts = gen.last_parts
        if parts is not None and gen.chance(args.perm_usual):
            # the same conjunction in other orders (its atoms may raise:
            # then only the orders that raise nowhere are compared)
            put(pos, p, ('perm', groups))
            for v in gen.permutations(parts, gen.r.randint(1, 3))[1:]:
                put(gen.r.uniform(pos, 1), v, ('perm', groups))
            groups += 1
        else:
            put(pos, p, None)
    for _ in range(args.perm_groups):
        pos = gen.r.uniform(0, 0.95)
        variants = gen.perm_group()
        put(pos, variants[0], ('perm', groups))
        for v in variants[1:]:
            put(gen.r.uniform(pos, 1), v, ('perm', groups))
        groups += 1
    # every regular expression alone on a text column: the n-gram index's
    # keys of each pattern meet every row value
    for pat in REGEXES:
        put(gen.r.uniform(0, 1), '%s ~ %s' % (gen.pick(['t', 'vc']), q(pat)),
            None)
    crowd_meta = []
    for g in range(args.crowd_groups):
        size = gen.r.randint(args.crowd_min, args.crowd_max)
        conj, col, stages = gen.crowd_group(size)
        crowd_meta.append((conj, col))
        marks = sorted(gen.r.uniform(0, 1) for _ in range(4))
        half = len(stages[1]) // 2
        blocks = [(marks[0], 0, stages[0]), (marks[1], 1, stages[1][:half]),
                  (marks[2], 1, stages[1][half:]), (marks[3], 2, stages[2])]
        for pos, stage, texts in blocks:
            for t in texts:
                put(pos, t, ('crowd', g, stage))
    split = gen.r.uniform(0.35, 0.65)
    items.sort(key=lambda it: (it[0], it[1]))
    preds = [it[2] for it in items]
    pre = sum(1 for it in items if it[0] < split)
    perm_groups = [[] for _ in range(groups)]
    crowd_groups = [{'conj': c, 'col': col, 'stages': [[], [], []]}
                    for c, col in crowd_meta]
    for i, it in enumerate(items):
        tag = it[3]
        if tag is None:
            continue
        if tag[0] == 'perm':
            perm_groups[tag[1]].append(i)
        else:
            crowd_groups[tag[1]]['stages'][tag[2]].append(i)
    preds += [gen.err_pred() for _ in range(args.error_predicates)]
    return preds, pre, perm_groups, crowd_groups


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

# The row documents given to matching_shapes(), as SQL over the row alias r.
DOC_MAIN = "to_jsonb(r)"
DOC_SPARSE = """to_jsonb(r) - coalesce((SELECT array_agg(k)
                 FROM jsonb_each(to_jsonb(r)) AS x(k, v) WHERE v = 'null'),
                 '{}')"""
DOC_STRINGS = """(SELECT jsonb_object_agg(k,
                    CASE WHEN k <> 'j' AND jsonb_typeof(v) IN ('number', 'boolean')
                         THEN to_jsonb(v #>> '{}') ELSE v END)
                  FROM jsonb_each(to_jsonb(r)) AS x(k, v))"""


def clip(text, limit=3000):
    if text is not None and len(text) > limit:
        return text[:limit] + ' ... (%d chars; --print-predicates shows all)' \
            % len(text)
    return text


class Db:
    """The connection, re-opened after the server lost it (a backend crash
    makes the postmaster restart every session)."""

    def __init__(self):
        self.conn = None
        self.cur = None
        self.connect()

    def connect(self, wait=60):
        deadline = time.time() + wait
        while True:
            try:
                self.conn = psycopg2.connect('', application_name='matching_diff')
                break
            except psycopg2.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        self.conn.autocommit = True
        self.cur = self.conn.cursor()
        self.cur.execute("SET client_min_messages = warning")

    def lost(self):
        """After an exception: was it the connection (a crash)?  Reconnect."""
        if self.conn.closed == 0:
            try:
                self.cur.execute('SELECT 1')
                return False
            except psycopg2.Error:
                pass
        self.connect()
        return True


# The per-row oracle: the predicate compiled into a plpgsql function (so
# that its plan is made once), a cursor over the table in key order with one
# row per FETCH (an index scan: the predicate is computed for the fetched row
# only); on an error, the row after the last one fetched is evaluated alone,
# as `SELECT (p) FROM table WHERE key = k`, inside BEGIN ... EXCEPTION, which
# gives its SQLSTATE ('inconsistent' if it does not raise alone), and the
# cursor reopens after it.  Returns the true keys, the null keys and the
# erroring keys with their SQLSTATEs.
ORACLE_FN = """
CREATE OR REPLACE FUNCTION pg_temp.sr_oracle(
    OUT sr_true int[], OUT sr_null int[], OUT sr_err int[],
    OUT sr_codes text[])
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off
AS $sr_oracle$
#variable_conflict use_column
DECLARE
    sr_last int := -2147483648;
    sr_k int;
    sr_v bool;
    sr_c refcursor;
    sr_done bool := false;
BEGIN
    sr_true := '{}'; sr_null := '{}'; sr_err := '{}'; sr_codes := '{}';
    WHILE NOT sr_done LOOP
        BEGIN
            sr_c := NULL;
            OPEN sr_c NO SCROLL FOR
                SELECT %(key)s, (%(pred)s)::bool FROM %(table)s
                WHERE %(key)s > sr_last ORDER BY %(key)s;
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
            SELECT min(%(key)s) INTO sr_k FROM %(table)s
            WHERE %(key)s > sr_last;
            IF sr_k IS NULL THEN
                RAISE EXCEPTION 'predicate raises with no row left: %%',
                    SQLERRM;
            END IF;
            BEGIN
                SELECT (%(pred)s)::bool INTO sr_v FROM %(table)s
                WHERE %(key)s = sr_k;
                sr_codes := sr_codes || 'inconsistent'::text;
            EXCEPTION WHEN OTHERS THEN
                sr_codes := sr_codes || SQLSTATE::text;
            END;
            sr_err := sr_err || sr_k;
            sr_last := sr_k;
        END;
    END LOOP;
END
$sr_oracle$"""


def oracle_set(cur, table, key, pred):
    """One set query, the predicate in the target list (computed as written
    for every row; a WHERE clause's conjuncts could be reordered).  None if
    it raises."""
    try:
        cur.execute('SELECT array_agg(k) FILTER (WHERE v), array_agg(k) '
                    'FILTER (WHERE v IS NULL) FROM (SELECT %s AS k, '
                    '(%s)::bool AS v FROM %s OFFSET 0) s' % (key, pred, table))
    except psycopg2.Error:
        return None
    t, n = cur.fetchone()
    return frozenset(t or ()), frozenset(n or ()), {}


def oracle_set_many(cur, table, key, plist, chunk=32):
    """oracle_set() of many predicates, chunk at a time in one query (each
    predicate a column of the target list: computed as written for every
    row, independently of the others).  A chunk that raises is split in
    halves, down to oracle_set() of single predicates (None if it raises)."""
    out = [None] * len(plist)

    def run(lo, hi):
        if hi - lo == 1:
            out[lo] = oracle_set(cur, table, key, plist[lo])
            return
        try:
            cur.execute('SELECT %s FROM (SELECT %s AS k, %s FROM %s OFFSET 0) s'
                        % (', '.join('array_agg(k) FILTER (WHERE v%d), '
                                     'array_agg(k) FILTER (WHERE v%d IS NULL)'
                                     % (j, j) for j in range(hi - lo)),
                           key, ', '.join('(%s)::bool AS v%d' % (plist[lo + j], j)
                                          for j in range(hi - lo)), table))
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


def oracle_rows(cur, table, key, pred):
    """The per-row evaluation (ORACLE_FN).  None if it fails itself."""
    try:
        cur.execute(ORACLE_FN % {'key': key, 'pred': pred, 'table': table})
        cur.execute('SELECT * FROM pg_temp.sr_oracle()')
    except psycopg2.Error as ex:
        print('oracle: per-row evaluation failed: %s' % str(ex).strip())
        return None
    t, n, e, c = cur.fetchone()
    return frozenset(t), frozenset(n), dict(zip(e, c))


# The engine on an error table: every row in one call, BEGIN ... EXCEPTION
# around each matching_shapes() (a raising call is followed by others in the
# same session and transaction).
MATCH_ALL_FN = """
CREATE OR REPLACE FUNCTION pg_temp.sr_match_all(sr_rel regclass,
    OUT sr_id int, OUT sr_ids bigint[], OUT sr_code text, OUT sr_msg text)
RETURNS SETOF record LANGUAGE plpgsql AS $sr_match$
DECLARE
    sr_r record;
BEGIN
    FOR sr_r IN EXECUTE format('SELECT id, to_jsonb(x) AS doc FROM %s x '
                               'ORDER BY id', sr_rel) LOOP
        sr_id := sr_r.id;
        sr_ids := NULL;
        sr_code := NULL;
        sr_msg := NULL;
        BEGIN
            sr_ids := shape_router.matching_shapes(sr_rel, sr_r.doc);
        EXCEPTION WHEN OTHERS THEN
            sr_code := SQLSTATE;
            sr_msg := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$sr_match$"""


def fail_harness(msg):
    print('matching_diff: HARNESS ERROR: ' + msg)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int, default=None,
                    help='default: random (printed first, to reproduce)')
    ap.add_argument('--rows', type=int, default=200)
    ap.add_argument('--predicates', type=int, default=600,
                    help='predicates of the usual grammar (a few of them '
                         'raise on some rows and go to the error tables)')
    ap.add_argument('--error-predicates', type=int, default=100,
                    help='more predicates, each with at least one atom '
                         'that can raise')
    ap.add_argument('--error-row-share', type=float, default=0.4,
                    help='error tables: at most this share of the rows may '
                         'raise for one of a table\'s predicates (unless one '
                         'predicate alone raises on more)')
    ap.add_argument('--error-group', type=int, default=8,
                    help='erroring predicates per error table, at most')
    ap.add_argument('--error-clean', type=int, default=10,
                    help='clean predicates registered on each error table')
    ap.add_argument('--perm-groups', type=int, default=30,
                    help='conjunctions of 2-4 indexable conjuncts, each '
                         'also registered with its conjuncts in other '
                         'orders (flat and nested)')
    ap.add_argument('--perm-usual', type=float, default=0.15,
                    help='share of the usual conjunctive predicates also '
                         'registered with their conjuncts in other orders')
    ap.add_argument('--crowd-groups', type=int, default=3,
                    help='groups of shapes sharing one unselective conjunct')
    ap.add_argument('--crowd-min', type=int, default=50)
    ap.add_argument('--crowd-max', type=int, default=150)
    ap.add_argument('--verbose-crowds', action='store_true',
                    help='print the access path of every crowded shape')
    ap.add_argument('--min-pairs', type=int, default=100000)
    ap.add_argument('--batch', type=int, default=100,
                    help='predicates per add_shapes() call')
    ap.add_argument('--max-report', type=int, default=20)
    ap.add_argument('--oracle-only', action='store_true',
                    help='do not use the extension (develop the grammar)')
    ap.add_argument('--check-immutable', action='store_true',
                    help='ask PostgreSQL (an expression index, else a '
                         'generated column) whether every predicate is '
                         'immutable')
    ap.add_argument('--print-predicates', action='store_true')
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else \
        random.SystemRandom().randrange(1, 2 ** 31)
    print('matching_diff: seed=%d' % seed, flush=True)
    t0 = time.time()

    db = Db()
    cur = db.cur

    cur.execute("SELECT collname FROM pg_collation "
                "WHERE collname = 'en-x-icu' AND collprovider = 'i'")
    icu = 'en-x-icu' if cur.fetchone() else 'C'

    # ---- schema and rows ----
    if not args.oracle_only:
        cur.execute("CREATE EXTENSION IF NOT EXISTS shape_router")
        # forget the shapes of a previous run's table
        cur.execute("SELECT to_regclass('diff.t')")
        if cur.fetchone()[0] is not None:
            cur.execute("SELECT shape_router.remove_shape(shape_id) "
                        "FROM shape_router.shapes "
                        "WHERE relid = 'diff.t'::regclass")
    cur.execute(setup_sql(icu != 'C'))

    gen = Gen(seed, icu)
    for rid in range(1, args.rows + 1):
        vals = gen.row_values()
        if rid == 1:        # one row of nothing but NULLs
            vals = {c: 'NULL' for c in COLUMNS}
        cur.execute('INSERT INTO diff.t (id, %s) VALUES (%d, %s)' % (
            ', '.join(COLUMNS), rid, ', '.join(vals[c] for c in COLUMNS)))
    preds, n_pre, perm_groups, crowd_groups = build_predicates(gen, args)
    tagged = set(i for g in perm_groups for i in g) | \
        set(i for g in crowd_groups for st in g['stages'] for i in st)
    if args.print_predicates:
        for i, p in enumerate(preds):
            print('P%d: %s' % (i, p))

    # ---- row documents ----
    # main: to_jsonb(t); sparse: without top-level null keys; strings:
    # numbers and booleans of non-jsonb columns as JSON strings.
    # (the table alias is r: a bare "t" would name the text column t).
    # Documents travel as text: psycopg2 would parse jsonb into Python
    # floats and lose numeric precision.
    cur.execute("""
        SELECT id, (%s)::text, (%s)::text, (%s)::text
        FROM diff.t r ORDER BY id""" % (
        DOC_MAIN, DOC_SPARSE, DOC_STRINGS))
    docs = cur.fetchall()
    row_ids = [r[0] for r in docs]
    row_json = {r[0]: r[1] for r in docs}
    variants = [('main', 1), ('sparse', 2), ('strings', 3)]

    # The contract reads rows as jsonb_populate_record does; check that every
    # row document reads back as the stored row, so that the oracle answers
    # for the very row the engine sees.
    cur.execute("""
        CREATE TEMP TABLE rt AS
        SELECT v.name, (jsonb_populate_record(NULL::diff.t, v.doc)).*
        FROM diff.t r,
             LATERAL (VALUES ('main', %s), ('sparse', %s), ('strings', %s))
                AS v(name, doc)""" % (DOC_MAIN, DOC_SPARSE, DOC_STRINGS))
    cur.execute("""
        SELECT rt.name, t.id FROM rt JOIN diff.t t USING (id)
        WHERE (%s) IS DISTINCT FROM (%s)
           OR rt.n::text IS DISTINCT FROM t.n::text
           OR rt.tci COLLATE "C" IS DISTINCT FROM t.tci COLLATE "C"
        """ % (
        ', '.join('rt.' + c for c in COLUMNS),
        ', '.join('t.' + c for c in COLUMNS)))
    bad = cur.fetchall()
    if bad:
        fail_harness('row documents do not round-trip: %r' % bad[:10])

    # ---- oracle ----
    # Per predicate: the rows where it is true, and the rows where it raises
    # (row id -> SQLSTATE).  PostgreSQL evaluates the predicate as written,
    # in the target list, per row (see the docstring).
    t_or = time.time()
    expected = []               # predicate -> frozenset of true row ids
    errs = []                   # predicate -> {row id: SQLSTATE}
    nulls = 0
    fallbacks = 0
    # the conjunctions in other orders and the crowded groups (nearly all
    # clean) in batches
    tagged_idx = sorted(tagged)
    batched = dict(zip(tagged_idx, oracle_set_many(
        cur, 'diff.t', 'id', [preds[i] for i in tagged_idx])))
    for i, p in enumerate(preds):
        res = batched[i] if i in batched else oracle_set(cur, 'diff.t', 'id', p)
        if res is None:
            fallbacks += 1
            res = oracle_rows(cur, 'diff.t', 'id', p)
            if res is None:
                fail_harness('predicate P%d raises in the per-row oracle '
                             'too (not a row\'s error?): %s' % (i, p))
            bad = [k for k, c in res[2].items() if c == 'inconsistent']
            if bad:
                fail_harness('predicate P%d raised in the cursor but not '
                             'alone on row id=%d: %s' % (i, bad[0], p))
        expected.append(res[0])
        nulls += len(res[1])
        errs.append(res[2])
    clean = [i for i in range(len(preds)) if not errs[i]]
    erroring = [i for i in range(len(preds)) if errs[i]]
    err_codes = {}
    for e in errs:
        for c in e.values():
            err_codes[c] = err_codes.get(c, 0) + 1
    n_err_pairs = sum(len(e) for e in errs)
    print('matching_diff: oracle: %d predicates: %d clean, %d raise on some '
          'row (%d set queries fell back to per-row evaluation); null '
          'answers=%d; erroring pairs=%d (%s); erroring predicates that are '
          'also true on some row: %d (%.1fs)' % (
              len(preds), len(clean), len(erroring), fallbacks, nulls,
              n_err_pairs,
              ' '.join('%s:%d' % kv for kv in sorted(err_codes.items())),
              sum(1 for i in erroring if expected[i]), time.time() - t_or),
          flush=True)
    # the oracle on the round-tripped rows must agree (e.g. float -0 -> 0);
    # the tagged predicates in batches (one of them raising: one by one)
    def check_rt(idx):
        if len(idx) > 1:
            try:
                cur.execute("SELECT name, %s FROM (SELECT name, id, %s FROM "
                            "rt t OFFSET 0) s GROUP BY name" % (
                                ', '.join('array_agg(id) FILTER (WHERE v%d)'
                                          % j for j in range(len(idx))),
                                ', '.join('(%s)::bool AS v%d' % (preds[i], j)
                                          for j, i in enumerate(idx))))
                rows = cur.fetchall()
            except psycopg2.Error:
                for i in idx:
                    check_rt([i])
                return
            got_rt = [{r[0]: frozenset(r[1 + j] or ()) for r in rows}
                      for j in range(len(idx))]
        else:
            p = preds[idx[0]]
            try:
                cur.execute("SELECT name, array_agg(id) FILTER (WHERE v) FROM "
                            "(SELECT name, id, (%s)::bool AS v FROM rt t "
                            "OFFSET 0) s GROUP BY name" % p)
                got_rt = [{name: frozenset(ids or ()) for name, ids in
                           cur.fetchall()}]
            except psycopg2.Error as ex:
                fail_harness('predicate P%d raises on the round-tripped row '
                             'documents: %s\n  %s' % (idx[0], p,
                                                       str(ex).strip()))
        for i, g in zip(idx, got_rt):
            for name, _ in variants:
                if g.get(name, frozenset()) != expected[i]:
                    fail_harness('predicate P%d answers differently on the %s '
                                 'row documents: %s' % (i, name, preds[i]))
    clean_tagged = [i for i in clean if i in tagged]
    for start in range(0, len(clean_tagged), 32):
        check_rt(clean_tagged[start:start + 32])
    for i in clean:
        if i not in tagged:
            check_rt([i])

    if args.check_immutable:
        # an empty copy: an erroring predicate must not raise on a row here
        cur.execute('CREATE TABLE diff.t_empty (LIKE diff.t)')
        mutable = inconclusive = 0
        for i, p in enumerate(preds):
            # index expressions must be immutable; an expression too long
            # for a catalog row (54000) is tried as a generation expression,
            # which must be immutable too
            err = None
            for ddl in ('CREATE INDEX ON diff.t_empty (((%s)::bool))',
                        'ALTER TABLE diff.t_empty ADD COLUMN immutable_check '
                        'bool GENERATED ALWAYS AS (%s) STORED'):
                cur.execute('BEGIN')
                try:
                    cur.execute(ddl % p)
                    err = None
                except psycopg2.Error as ex:
                    err = ex
                cur.execute('ROLLBACK')
                if err is None or err.pgcode != '54000':
                    break
            if err is not None and err.pgcode in ('54000', '42P22'):
                # too long for both, or a generation expression's constants
                # lacking a collation: the check cannot tell
                inconclusive += 1
            elif err is not None:
                mutable += 1
                print('not immutable P%d: %s\n  %s' % (i, p, str(err).strip()))
        print('check-immutable: %d of %d predicates refused, %d inconclusive'
              % (mutable, len(preds), inconclusive))
        if mutable:
            sys.exit(2)

    # The orders of one conjunction that raise nowhere must agree in
    # PostgreSQL too (AND is commutative where nothing raises)
    for gi, grp in enumerate(perm_groups):
        members = [i for i in grp if not errs[i]]
        for i in members[1:]:
            if expected[i] != expected[members[0]]:
                fail_harness('conjunctions in other orders answer differently '
                             'in PostgreSQL:\n  P%d: %s\n  P%d: %s' % (
                                 members[0], preds[members[0]], i, preds[i]))

    hist = sorted(len(expected[i]) for i in clean) or [0]
    print('matching_diff: oracle done: %d clean predicates, matched rows per '
          'predicate min=%d median=%d max=%d, never-matching=%d, '
          'always-matching=%d (%.1fs)' % (
              len(clean), hist[0], hist[len(hist) // 2], hist[-1],
              sum(1 for i in clean if not expected[i]),
              sum(1 for i in clean if len(expected[i]) == len(row_ids)),
              time.time() - t0), flush=True)

    if args.oracle_only:
        pairs = len(clean) * len(row_ids)
        print('matching_diff: seed=%d rows=%d predicates=%d clean=%d '
              'erroring=%d oracle_errors=%d pairs=%d mismatches=0 (oracle '
              'only, engine NOT tested)' % (
                  seed, len(row_ids), len(preds), len(clean), len(erroring),
                  n_err_pairs, pairs))
        sys.exit(0)

    # ---- registration ----
    shape_of = [None] * len(preds)      # predicate index -> shape id
    refusals = []
    crashes = []        # (what, detail): the server lost the connection

    def register(table, idx_all, out):
        """add_shapes() of preds[i] for i in idx_all on table, in batches;
        out[i] = shape id."""
        for start in range(0, len(idx_all), args.batch):
            idx = idx_all[start:start + args.batch]
            try:
                db.cur.execute("SELECT shape_router.add_shapes(%s, "
                               "%s::text[])",
                               (table, [preds[i] for i in idx]))
                ids = db.cur.fetchone()[0]
                if ids is None or len(ids) != len(idx):
                    print('add_shapes returned %r for %d clauses'
                          % (ids, len(idx)))
                    sys.exit(1)
                for i, sid in zip(idx, ids):
                    out[i] = sid
            except psycopg2.Error as ex:
                if db.lost():
                    crashes.append(('add_shapes on %s of P%d..P%d'
                                    % (table, idx[0], idx[-1]),
                                    str(ex).strip()))
                # all or nothing: find the refused clauses one by one and
                # register the others, so the rest of the run still tests
                # them
                for i in idx:
                    try:
                        db.cur.execute("SELECT shape_router.add_shape(%s, %s)",
                                       (table, preds[i]))
                        out[i] = db.cur.fetchone()[0]
                    except psycopg2.Error as ex:
                        if db.lost():
                            crashes.append(('add_shape on %s of P%d: %s'
                                            % (table, i, preds[i]),
                                            str(ex).strip()))
                        else:
                            refusals.append((i, preds[i], ex.pgcode,
                                             str(ex).strip()))

    # ---- engine ----
    # A phase: a label, the row documents (column of docs) and the active
    # shapes (predicate index -> shape id, None = not registered).
    t1 = time.time()
    phases = []                 # (label, doc column, shape_of)
    got = {}                    # (label, row id) -> frozenset, None = error
    engine_errors = []
    bad_arrays = []

    def run_engine(label, col, active):
        phases.append((label, col, list(active)))
        for r in docs:
            rid = r[0]
            try:
                db.cur.execute("SELECT shape_router.matching_shapes("
                               "'diff.t', %s::jsonb)", (r[col],))
                arr = db.cur.fetchone()[0]
            except psycopg2.Error as ex:
                if db.lost():
                    crashes.append(('matching_shapes of %s row id=%d: %s'
                                    % (label, rid, r[col]), str(ex).strip()))
                engine_errors.append((label, rid, str(ex).strip()))
                got[(label, rid)] = None     # not compared
                continue
            if arr is None:
                engine_errors.append((label, rid,
                                      'matching_shapes returned NULL'))
                got[(label, rid)] = None
                continue
            if list(arr) != sorted(set(arr)):
                bad_arrays.append((label, rid, arr))
            got[(label, rid)] = frozenset(arr)

    def explain_all():
        """shape id -> (access line, estimate source of the chosen path:
        'statistics', 'default for the operator' or None), as the calling
        backend's router (built from the catalog in id order) has them."""
        try:
            db.cur.execute(
                "SELECT shape_id, split_part(e, E'\\n', 1), substring(e from "
                "'\\nchosen: selectivity \\S+ \\(([a-z ]+)\\)') FROM "
                "(SELECT shape_id, shape_router.explain_shape(shape_id) AS e "
                "FROM shape_router.shapes WHERE relid = 'diff.t'::regclass) x")
            return {sid: (acc, src) for sid, acc, src in db.cur.fetchall()}
        except psycopg2.Error as ex:
            print('matching_diff: explain_shape failed: %s' % str(ex).strip())
            return {}

    def estimates(expl):
        n_stats = sum(1 for a, src in expl.values() if src == 'statistics')
        n_def = sum(1 for a, src in expl.values()
                    if src is not None and src != 'statistics')
        return 'statistics=%d default=%d scan/no estimate=%d' % (
            n_stats, n_def, len(expl) - n_stats - n_def)

    def crowd_report(expl, when):
        for k, grp in enumerate(crowd_groups):
            col = grp['col']
            parts = []
            for st, idx in enumerate(grp['stages']):
                sids = [shape_of[i] for i in idx if shape_of[i] in expl]
                under = sum(1 for sid in sids if expl[sid][0].startswith(
                    'access: index (%s ' % col))
                parts.append('stage%d %d/%d' % (st + 1, under, len(sids)))
                if args.verbose_crowds:
                    for i in idx:
                        if shape_of[i] in expl:
                            print('  stage%d P%d shape %d: %s\n    %s' % (
                                st + 1, i, shape_of[i], preds[i],
                                expl[shape_of[i]][0]))
            moved = ''
            if k in first_path:
                under0 = [sid for sid, acc in first_path[k][1].items()
                          if acc.startswith('access: index (%s ' % col)]
                gone = [sid for sid in under0 if sid in expl and
                        not expl[sid][0].startswith('access: index (%s ' % col)]
                moved = '; stage 1 right after its registration (%s): %d ' \
                    'under the key, %d of them moved off it since' % (
                        first_path[k][0], len(under0), len(gone))
            print('matching_diff: crowded group %d (%s) %s: under the crowded '
                  'key: %s%s' % (k + 1, grp['conj'], when, ' '.join(parts),
                                 moved))

    # Shapes registered before ANALYZE are matched once without statistics
    # (phase "nostats": the router is built at the first matching_shapes
    # after a registration, and reads pg_statistic then); then diff.t is
    # analyzed, the rest registered, and every later phase has them.
    # Where each crowded group's stage 1 is filed right after it is
    # registered (before the crowd): compared with the end, the shapes the
    # rebalance (or statistics) moved off the crowded key.
    stage1_end = {}             # last clean stage-1 predicate -> group
    for k, grp in enumerate(crowd_groups):
        st1 = [i for i in grp['stages'][0] if not errs[i]]
        if st1:
            stage1_end[max(st1)] = k
    first_path = {}             # group -> (when, {shape id: access line})

    def register_main(idx_all, when):
        seg = []
        for i in idx_all:
            seg.append(i)
            if i not in stage1_end:
                continue
            register('diff.t', seg, shape_of)
            seg = []
            k = stage1_end[i]
            sids = [shape_of[j] for j in crowd_groups[k]['stages'][0]
                    if shape_of[j] is not None]
            try:
                db.cur.execute("SELECT s, split_part(shape_router.explain_shape"
                               "(s), E'\\n', 1) FROM unnest(%s::bigint[]) s",
                               (sids,))
                first_path[k] = (when, dict(db.cur.fetchall()))
            except psycopg2.Error as ex:
                print('matching_diff: explain_shape failed: %s'
                      % str(ex).strip())
        if seg:
            register('diff.t', seg, shape_of)

    register_main([i for i in clean if i < n_pre], 'without statistics')
    run_engine('nostats', 1, shape_of)
    expl_pre = explain_all()
    crowd_report(expl_pre, 'without statistics')
    db.cur.execute('ANALYZE diff.t')
    n_before = sum(1 for sid in shape_of if sid is not None)
    register_main([i for i in clean if i >= n_pre], 'with statistics')
    n_after = sum(1 for sid in shape_of if sid is not None) - n_before
    ids_in_order = [sid for sid in shape_of if sid is not None]
    if ids_in_order != sorted(ids_in_order) or \
            len(set(ids_in_order)) != len(ids_in_order):
        print('matching_diff: shape ids not ascending/unique in '
              'registration order')
        sys.exit(1)

    # Which access paths the registered shapes got: the predicate index is
    # proven exact only for the kinds that actually occur.
    try:
        db.cur.execute(
            "SELECT regexp_replace(split_part(split_part("
            "shape_router.explain_shape(shape_id), E'\\n', 1), 'access: ', 2), "
            "'^index \\((\\S+) ([^, ]+( [A-Z]+)?)(, (prefix|substring))?.*', "
            "'index \\2 \\5') AS kind, count(*) "
            "FROM shape_router.shapes WHERE relid = 'diff.t'::regclass "
            "GROUP BY 1 ORDER BY 2 DESC")
        print('matching_diff: access paths: ' +
              '; '.join('%s: %d' % (k, n) for k, n in db.cur.fetchall()))
    except psycopg2.Error as ex:
        print('matching_diff: access paths unavailable: %s' % str(ex).strip())

    expl_post = explain_all()
    crowd_report(expl_post, 'with statistics')
    print('matching_diff: estimates of the chosen paths: before ANALYZE '
          '(%d shapes): %s; after (%d shapes): %s' % (
              len(expl_pre), estimates(expl_pre), len(expl_post),
              estimates(expl_post)))

    for name, col in variants:
        run_engine(name, col, shape_of)

    # Then remove a third of the shapes (remove_shape), check that the rest
    # still match and the removed ones never do, and register the removed
    # clauses again (new ids).  The choice has its own generator, so that it
    # does not change the rows and predicates of a seed.
    pick = random.Random(seed * 7919 + 1)
    removed = sorted(i for i, sid in enumerate(shape_of)
                     if sid is not None and pick.random() < 1 / 3)
    after_remove = list(shape_of)
    for i in removed:
        try:
            db.cur.execute("SELECT shape_router.remove_shape(%s)",
                           (shape_of[i],))
            ok_removed = db.cur.fetchone()[0]
        except psycopg2.Error as ex:
            if db.lost():
                crashes.append(('remove_shape(%d) of P%d' % (shape_of[i], i),
                                str(ex).strip()))
            engine_errors.append(('remove', shape_of[i], str(ex).strip()))
            ok_removed = None
        if ok_removed is not True:
            engine_errors.append(('remove', shape_of[i],
                                  'remove_shape returned %r' % ok_removed))
        after_remove[i] = None
    run_engine('removed', 1, after_remove)

    readded = list(after_remove)
    if removed:
        try:
            db.cur.execute("SELECT shape_router.add_shapes('diff.t', %s::text[])",
                           ([preds[i] for i in removed],))
            for i, sid in zip(removed, db.cur.fetchone()[0]):
                readded[i] = sid
        except psycopg2.Error as ex:
            if db.lost():
                crashes.append(('add_shapes of the removed clauses',
                                str(ex).strip()))
            engine_errors.append(('re-add', 0, str(ex).strip()))
    run_engine('readded', 1, readded)
    t_engine = time.time() - t1

    # ---- error tables ----
    # The erroring predicates, a few per copy of diff.t (first fit, largest
    # error sets first, so that on most rows of a table none of its
    # predicates raises), each table with a sample of clean predicates too.
    t2 = time.time()
    cap = max(1, int(args.error_row_share * len(row_ids)))
    groups = []                 # [members, union of erroring rows]
    for i in sorted(erroring, key=lambda i: (-len(errs[i]), i)):
        e = set(errs[i])
        for g in groups:
            if len(g[0]) < args.error_group and len(g[1] | e) <= cap:
                g[0].append(i)
                g[1] |= e
                break
        else:
            groups.append([[i], e])
    grand = random.Random(seed * 7919 + 2)
    err_tables = []             # (table, {pred index: shape id})
    for k, (members, _) in enumerate(groups):
        table = 'diff.e%d' % (k + 1)
        cur = db.cur
        cur.execute('CREATE TABLE %s (LIKE diff.t INCLUDING ALL); '
                    'ALTER TABLE %s REPLICA IDENTITY FULL, '
                    'SET (autovacuum_enabled = false); '
                    'INSERT INTO %s SELECT * FROM diff.t' % (table, table,
                                                             table))
        if k % 2:
            cur.execute('ANALYZE %s' % table)   # with statistics and without
        idx = list(members) + grand.sample(clean, min(args.error_clean,
                                                      len(clean)))
        grand.shuffle(idx)      # erroring shapes anywhere in id order
        sids = {}
        register(table, idx, sids)
        err_tables.append((table, sids))
    err_pairs = 0
    err_mismatches = []         # (table, i, sid, rid, expected)
    err_raised_wrongly = []     # (table, rid, code, msg): PG raises for none
    err_stray = []
    errors_expected = 0         # the engine raised, PG raises for a shape
    err_code_same = 0           # ... with a SQLSTATE PG raises on that row
    err_code_other = []         # ... with another one: (table, rid, code, pg)
    answered = {True: 0, False: 0}  # answers where PG raises for the shape
    rows_clear = 0              # (table, row)s where PG raises for none
    rows_raising = 0            # (table, row)s where PG raises for some
    for table, sids in err_tables:
        by_sid = {sid: i for i, sid in sids.items()}
        results = []
        try:
            db.cur.execute(MATCH_ALL_FN)
            db.cur.execute('SELECT * FROM pg_temp.sr_match_all(%s)', (table,))
            results = db.cur.fetchall()
        except psycopg2.Error as ex:
            lost = db.lost()
            if lost:
                crashes.append(('matching_shapes on %s (in sr_match_all)'
                                % table, str(ex).strip()))
            # one row at a time, to name the row
            for rid in row_ids:
                try:
                    db.cur.execute("SELECT shape_router.matching_shapes(%s, "
                                   "to_jsonb(x)) FROM " + table +
                                   " x WHERE id = %s", (table, rid))
                    results.append((rid, db.cur.fetchone()[0], None, None))
                except psycopg2.Error as ex2:
                    if db.lost():
                        crashes.append(('matching_shapes on %s row id=%d'
                                        % (table, rid), str(ex2).strip()))
                        continue
                    results.append((rid, None, ex2.pgcode, str(ex2).strip()))
        for rid, arr, code, msg in results:
            raising = {i: errs[i][rid] for i in sids if rid in errs[i]}
            if raising:
                rows_raising += 1
            else:
                rows_clear += 1
            if code is not None or arr is None:
                if not raising:
                    err_raised_wrongly.append((table, rid, code, msg))
                    continue
                errors_expected += 1
                if code in raising.values():
                    err_code_same += 1
                else:
                    err_code_other.append((table, rid, code, msg,
                                           sorted(set(raising.values()))))
                continue
            g = set(arr)
            if list(arr) != sorted(g):
                bad_arrays.append((table, rid, arr))
            for sid in g:
                if sid not in by_sid:
                    err_stray.append((table, rid, sid))
            for i, sid in sids.items():
                if i in raising:
                    answered[sid in g] += 1
                    continue
                err_pairs += 1
                exp = rid in expected[i]
                if exp != (sid in g):
                    err_mismatches.append((table, i, sid, rid, exp))
    t_err = time.time() - t2

    # ---- compare ----
    mismatches = {label: [] for label, _, _ in phases}
    unknown = []
    pairs = {label: 0 for label, _, _ in phases}
    for label, _, active in phases:
        ours = {sid: i for i, sid in enumerate(active) if sid is not None}
        for rid in row_ids:
            g = got[(label, rid)]
            if g is None:
                continue
            for sid in g:
                if sid not in ours:
                    unknown.append((label, rid, sid))
            for i, sid in enumerate(active):
                if sid is None:
                    continue
                pairs[label] += 1
                exp = rid in expected[i]
                if exp != (sid in g):
                    mismatches[label].append((i, sid, rid, exp))

    nmain = len(mismatches['main'])
    nvar = sum(len(v) for k, v in mismatches.items() if k != 'main')

    # ---- conjunctions in other orders: the same ids on every row ----
    perm_pairs = 0
    perm_compared = 0           # groups with 2+ orders that raise nowhere
    perm_shapes = 0
    perm_mismatches = []        # (phase, group, row id, ids in, ids out)
    for gi, grp in enumerate(perm_groups):
        members = [i for i in grp if not errs[i]]
        if len(members) < 2:
            continue
        perm_compared += 1
        perm_shapes += len(members)
        for label, _, active in phases:
            sids = [active[i] for i in members if active[i] is not None]
            if len(sids) < 2:
                continue
            for rid in row_ids:
                g = got[(label, rid)]
                if g is None:
                    continue
                perm_pairs += len(sids) - 1
                inn = [sid for sid in sids if sid in g]
                if inn and len(inn) != len(sids):
                    perm_mismatches.append((label, gi, rid, inn,
                                            [x for x in sids if x not in g]))

    # ---- report ----
    cur = db.cur
    for what, err in crashes[:args.max_report]:
        print('SERVER CONNECTION LOST (backend crash?) in %s\n  %s' % (
            what, err.replace('\n', '\n  ')))
    for i, p, code, err in refusals:
        print('REFUSED P%d (SQLSTATE %s): %s\n  %s' % (i, code, p,
                                                     err.replace('\n', '\n  ')))
    for label, rid, err in engine_errors[:args.max_report]:
        print('ENGINE ERROR (%s, id %d): %s\n  row: %s' % (
            label, rid, err, row_json.get(rid)))
    for label, rid, arr in bad_arrays[:args.max_report]:
        print('NOT ASCENDING/UNIQUE (%s row id=%d): %r' % (label, rid, arr))
    for label, rid, sid in unknown[:args.max_report]:
        print('SHAPE ID %d returned but not registered on diff.t in phase %s '
              '(row id=%d)%s' % (sid, label, rid,
                                 ' (a removed shape)' if sid in shape_of
                                 else ''))

    for table, rid, code, msg in err_raised_wrongly[:args.max_report]:
        print('ENGINE RAISED where PostgreSQL raises for none of the shapes '
              'on %s (row id=%d): SQLSTATE %s: %s\n  row: %s' % (
                  table, rid, code, msg, row_json.get(rid)))
    for table, rid, sid in err_stray[:args.max_report]:
        print('SHAPE ID %d returned but not registered on %s (row id=%d)'
              % (sid, table, rid))
    for table, rid, code, msg, pg in err_code_other[:5]:
        print('note: matching_shapes on %s row id=%d raised SQLSTATE %s (%s); '
              'PostgreSQL raises %s there' % (table, rid, code, msg,
                                             '/'.join(pg)))
    if err_mismatches:
        print('error tables: %d mismatching pairs over %d predicates' % (
            len(err_mismatches), len(set(m[1] for m in err_mismatches))))
    shown = {}
    for table, i, sid, rid, exp in err_mismatches:
        shown[i] = shown.get(i, 0) + 1
        if shown[i] > 2 or sum(shown.values()) > args.max_report:
            continue
        cur = db.cur
        cur.execute('SELECT (%s) FROM diff.t WHERE id = %d' % (preds[i], rid))
        val = cur.fetchone()[0]
        try:
            cur.execute('SELECT shape_router.explain_shape(%s)', (sid,))
            expl = cur.fetchone()[0]
        except psycopg2.Error as ex:
            expl = 'explain_shape failed: %s' % str(ex).strip()
        others = sorted(j for j in err_tables[[t for t, _ in err_tables]
                                               .index(table)][1]
                        if rid in errs[j])
        print('MISMATCH [%s] P%d shape=%d row id=%d\n'
              '  predicate:  %s\n'
              '  explain:    %s\n'
              '  row:        %s\n'
              '  expected %s (predicate evaluates to %s), got %s; '
              'predicates of the table raising on the row: %s' % (
                  table, i, sid, rid, clip(preds[i]),
                  '\n              '.join(str(expl).split('\n')[:40]),
                  row_json.get(rid), 'match' if exp else 'no match',
                  'NULL' if val is None else str(val).lower(),
                  'no match' if exp else 'match',
                  ', '.join('P%d (%s)' % (j, errs[j][rid]) for j in others)
                  or 'none'))

    reported = 0
    explained = {}
    for label, col, _ in phases:
        ms = mismatches[label]
        if ms:
            bad_preds = sorted(set(m[0] for m in ms))
            print('%s: %d mismatching pairs over %d predicates and %d rows' % (
                label, len(ms), len(bad_preds), len(set(m[2] for m in ms))))
        # the first two rows of each mismatching predicate, so that one
        # broken predicate does not hide the others
        per_pred = {}
        for i, sid, rid, exp in ms:
            per_pred[i] = per_pred.get(i, 0) + 1
            if reported >= args.max_report or per_pred[i] > 2:
                continue
            reported += 1
            cur.execute('SELECT (%s) FROM diff.t WHERE id = %d' % (preds[i], rid))
            val = cur.fetchone()[0]
            if sid not in explained:
                try:
                    cur.execute("SELECT shape_router.explain_shape(%s), "
                                "(SELECT where_clause FROM shape_router.shapes "
                                " WHERE shape_id = %s)", (sid, sid))
                    explained[sid] = cur.fetchone()
                except psycopg2.Error as ex:
                    explained[sid] = ('explain_shape failed: %s'
                                      % str(ex).strip(), None)
            doc = docs[row_ids.index(rid)][col]
            expl = str(explained[sid][0]).split('\n')
            if len(expl) > 40:
                expl = expl[:40] + ['... (%d more lines)' % (len(expl) - 40)]
            print('MISMATCH [%s] P%d shape=%d row id=%d\n'
                  '  predicate:  %s\n'
                  '  normalised: %s\n'
                  '  explain:    %s\n'
                  '  row:        %s\n'
                  '  expected %s (predicate evaluates to %s), got %s' % (
                      label, i, sid, rid, clip(preds[i]),
                      clip(explained[sid][1]), '\n              '.join(expl),
                      doc, 'match' if exp else 'no match',
                      'NULL' if val is None else str(val).lower(),
                      'no match' if exp else 'match'))

    shown_groups = set()
    for label, gi, rid, inn, out in perm_mismatches:
        if gi in shown_groups or len(shown_groups) >= args.max_report:
            continue
        shown_groups.add(gi)
        sid_pred = {shape_of[i]: i for i in perm_groups[gi]
                    if shape_of[i] is not None}
        sid_pred.update({readded[i]: i for i in perm_groups[gi]
                         if readded[i] is not None})
        print('PERMUTATION MISMATCH [%s] group %d row id=%d: the same '
              'conjunction in other orders, matched by %s, not by %s\n'
              '  row: %s' % (label, gi, rid, inn, out, row_json.get(rid)))
        for sid in inn + out:
            i = sid_pred.get(sid)
            print('  shape %d %s: %s\n    %s' % (
                sid, 'matches' if sid in inn else 'does not match',
                clip(preds[i]) if i is not None else '?',
                expl_post.get(sid, ('?',))[0]))
    if perm_mismatches:
        print('matching_diff: %d permutation mismatches in %d groups' % (
            len(perm_mismatches), len(set(m[1] for m in perm_mismatches))))

    total_pairs = pairs['main']
    print('matching_diff: new forms: permutation_groups=%d (of them with 2+ '
          'orders that raise nowhere: %d, %d shapes; compared pairs=%d, '
          'permutation_mismatches=%d) crowded_groups=%d (%s) '
          'shapes_before_analyze=%d shapes_after_analyze=%d nostats_pairs=%d '
          'nostats_mismatches=%d' % (
              len(perm_groups), perm_compared, perm_shapes, perm_pairs,
              len(perm_mismatches), len(crowd_groups),
              ', '.join('%s: %s' % (g['conj'], '/'.join(
                  str(sum(1 for i in st if shape_of[i] is not None))
                  for st in g['stages'])) for g in crowd_groups),
              n_before, n_after, pairs.get('nostats', 0),
              len(mismatches.get('nostats', []))))
    print('matching_diff: errors: erroring_predicates=%d oracle_errors=%d '
          '(%s) error_tables=%d rows_with_pg_error=%d rows_without=%d '
          'errors_expected=%d (same SQLSTATE as PostgreSQL: %d) '
          'answered_despite_error=%d (true=%d false=%d) error_pairs=%d '
          'error_mismatches=%d raised_without_pg_error=%d tables=%.2fs' % (
              len(erroring), n_err_pairs,
              ' '.join('%s:%d' % kv for kv in sorted(err_codes.items())),
              len(err_tables), rows_raising, rows_clear, errors_expected,
              err_code_same, answered[True] + answered[False],
              answered[True], answered[False], err_pairs, len(err_mismatches),
              len(err_raised_wrongly), t_err))
    print('matching_diff: seed=%d rows=%d predicates=%d pairs=%d '
          'mismatches=%d variant_pairs=%d variant_mismatches=%d refused=%d '
          'engine_errors=%d crashes=%d stray_ids=%d engine=%.2fs '
          'total=%.1fs' % (
              seed, len(row_ids), len(clean), total_pairs, nmain,
              sum(pairs.values()) - total_pairs, nvar, len(refusals),
              len(engine_errors), len(crashes),
              len(unknown) + len(bad_arrays) + len(err_stray),
              t_engine, time.time() - t0))
    ok = (nmain == 0 and nvar == 0 and not refusals and not engine_errors
          and not crashes and not bad_arrays and not unknown
          and not err_mismatches and not err_raised_wrongly and not err_stray
          and not perm_mismatches and total_pairs >= args.min_pairs)
    if total_pairs < args.min_pairs:
        print('matching_diff: only %d pairs, need %d' % (total_pairs,
                                                          args.min_pairs))
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
