#!/usr/bin/python3
"""Decoding benchmark for shape_router.

Run by test/bench/run.sh inside a throwaway cluster (pg_virtualenv sets
PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE).  See test/bench/README.md for
what is measured and why the shape_router slots all decode the same WAL.

Outline:
  1. schema, preloaded rows, publications, every scenario's shapes (each
     scenario's ids in its own residue class modulo NSCEN), all before any
     slot exists;
  2. every slot, then a marker transaction, then the workload: all slots
     decode exactly the same WAL up to one end LSN;
  3. a verification pass (untimed): shape_router record counts are checked
     against counts computed here from the wal2json stream of the same WAL;
  4. timed passes, round robin over the decoders, each in a fresh backend
     whose memory (/proc/<pid>/status) is sampled while it decodes;
  5. the table;
  6. with --startup-shapes N (1,000,000 in a full run), the stream start
     with N equality shapes, in a database of its own.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

import psycopg2
import psycopg2.errors

# Scenario order = residue of their shape ids modulo NSCEN (the plugin's
# "shard" option then selects exactly one scenario's shapes).
SCENARIOS = ["none", "one", "eq", "mix", "exact", "eq2", "eq2rev", "rng2", "rng2rev",
             "rx"]
NSCEN = len(SCENARIOS)

BIG_USER = 1_000_000        # user ids of the 99% (no eq shape reaches them)
SCORE_SPAN = 1_000_000      # score is uniform in [0, SCORE_SPAN)


def log(msg):
    print(msg, flush=True)


def fail(msg):
    print("bench: ERROR: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


class Params:
    def __init__(self, a):
        self.changes = a.changes
        self.txn_size = a.txn_size
        self.shapes = a.shapes                  # S: pool size, eq/exact shape count
        self.hits = self.shapes // 100          # pool values inside 1..S
        self.nranges = a.shapes // 100          # range shapes of "mix"
        self.ntags = a.shapes // 100            # ILIKE shapes of "mix", regexes of "rx"
        self.range_step = SCORE_SPAN // self.nranges
        self.range_width = max(1, self.range_step // 100)   # 1% of scores
        self.preload = a.preload
        self.runs = a.runs
        self.timeout = a.timeout
        self.startup_shapes = a.startup_shapes
        if self.changes % self.txn_size:
            fail("--changes must be a multiple of --txn-size")
        if self.shapes < 100 or self.shapes % 100:
            fail("--shapes must be a positive multiple of 100")
        if 42 + 100 * (self.hits - 1) > self.shapes:
            fail("internal: hit user ids exceed the eq shape range")

    # the user id pool: S values, 1% of them (42, 142, ...) inside 1..S
    def pool(self):
        return [self.uid(p) for p in range(self.shapes)]

    def uid(self, p):
        return 42 + 100 * p if p < self.hits else BIG_USER + p


def connect(dbname=None):
    """A connection to the bench database (pg_virtualenv's PGDATABASE), or to
    dbname."""
    conn = psycopg2.connect("dbname=%s" % dbname if dbname else "")
    conn.autocommit = True
    return conn


def q(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


# --------------------------------------------------------------------------
# setup


SCHEMA_SQL = """
CREATE EXTENSION shape_router;
CREATE TABLE todos (
    id bigint PRIMARY KEY,
    user_id int,
    status text,
    title text,
    score int,
    updated_at timestamptz
);
ALTER TABLE todos REPLICA IDENTITY FULL;
CREATE TABLE bench_marker (x int);

-- p in [0, pool): 1% of the pool are user ids 42, 142, ... (<= pool), the
-- rest are BIG_USER + p
CREATE FUNCTION bench_uid(p int, pool int) RETURNS int
  LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN p < pool / 100 THEN 42 + 100 * p ELSE @BIG@ + p END $$;
CREATE FUNCTION bench_title(ntags int) RETURNS text
  LANGUAGE sql VOLATILE AS
  $$ SELECT 'task ' || substr(md5(random()::text), 1, 16)
            || CASE WHEN random() < 0.01
                    THEN ' #tag' || floor(random() * ntags)::int || '#'
                    ELSE '' END $$;

-- One transaction = txn_size changes: 40% inserts (new ids on top), 20%
-- updates of user_id, 20% updates of title, 20% deletes (oldest ids).
-- Updated ids are distinct within a statement (k * prime mod span), so the
-- number of changes is exact.
CREATE PROCEDURE bench_workload(ntxn int, txn_size int, pool int, ntags int,
                                first_id bigint, low_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
  n_ins int := txn_size * 4 / 10;
  n_uu int := txn_size * 2 / 10;
  n_ut int := txn_size * 2 / 10;
  n_del int := txn_size - n_ins - n_uu - n_ut;
  next_id bigint := first_id;
  lo bigint := low_id;
  span bigint;
  base bigint;
BEGIN
  FOR t IN 0 .. ntxn - 1 LOOP
    INSERT INTO todos
      SELECT next_id + g, bench_uid(floor(random() * pool)::int, pool),
             (ARRAY['open', 'done', 'archived'])[1 + floor(random() * 3)::int],
             bench_title(ntags), floor(random() * @SPAN@)::int, clock_timestamp()
        FROM generate_series(0, n_ins - 1) g;
    next_id := next_id + n_ins;
    base := lo + n_del;                  -- the oldest n_del rows get deleted
    span := next_id - base;
    IF span % 7919 = 0 OR span % 7927 = 0 THEN span := span - 1; END IF;
    UPDATE todos SET user_id = bench_uid(floor(random() * pool)::int, pool),
                     updated_at = clock_timestamp()
     WHERE id IN (SELECT base + (g::bigint * 7919 + t::bigint * 104729) % span
                    FROM generate_series(0, n_uu - 1) g);
    UPDATE todos SET title = bench_title(ntags), updated_at = clock_timestamp()
     WHERE id IN (SELECT base + (g::bigint * 7927 + t::bigint * 130363) % span
                    FROM generate_series(0, n_ut - 1) g);
    DELETE FROM todos WHERE id >= lo AND id < lo + n_del;
    lo := lo + n_del;
    COMMIT;
  END LOOP;
END $$;
"""


def scenario_clauses(p, name):
    """WHERE clauses of one scenario's shapes on todos."""
    if name == "none":
        return []
    if name == "one":
        return ["user_id = 42"]
    eq = ["user_id = %d" % k for k in range(1, p.shapes + 1)]
    if name == "eq":
        return eq
    if name == "mix":
        ranges = ["score BETWEEN %d AND %d" % (i * p.range_step,
                                              i * p.range_step + p.range_width - 1)
                  for i in range(p.nranges)]
        tags = ["title ILIKE '%%#TAG%d#%%'" % j for j in range(p.ntags)]
        return eq + ranges + tags
    if name == "exact":
        return ["user_id = %d" % v for v in p.pool()]
    # two conjuncts, the first unselective as written, and the same reversed
    # (issue 9): the open todos of user k; a wide score range and a narrow
    # user range
    if name == "eq2":
        return ["status = 'open' AND user_id = %d" % k for k in range(1, p.shapes + 1)]
    if name == "eq2rev":
        return ["user_id = %d AND status = 'open'" % k for k in range(1, p.shapes + 1)]
    if name == "rng2":
        return ["score > %d AND user_id < %d" % ((k % 7) * (SCORE_SPAN // 7), k)
                for k in range(1, p.nranges + 1)]
    if name == "rng2rev":
        return ["user_id < %d AND score > %d" % (k, (k % 7) * (SCORE_SPAN // 7))
                for k in range(1, p.nranges + 1)]
    if name == "rx":
        return ["title ~ '%s'" % pat for pat in rx_patterns(p)]
    raise ValueError(name)


# The regular expressions of "rx" (issue 13): pattern j matches the titles
# carrying " #tag<j>#", like mix's ILIKE shape j, written eight ways so that
# the literal-run reader (docs/predicate-index.md) meets plain runs, an
# anchor, optional and required groups, alternatives inside an optional
# group, a class escape, + and a bound.  Every pattern has literal runs (so
# an n-gram key) and a required literal '#': a title without '#' ("task "
# and 16 hex digits) matches none of them, which expected_counts relies on.
RX_FORMS = [
    "#tag%d#",
    "tag%d#$",
    "#tag%d(x)?#",
    r"\s#tag%d#",
    "#ta+g%d#",
    "(?:#tag%d)#",
    "#tag%d(x|yz)?#",
    "#tag%d#{1,2}",
]


def rx_patterns(p):
    return [RX_FORMS[j % len(RX_FORMS)] % j for j in range(p.ntags)]


def register_shapes(cur, p):
    """Register every scenario's shapes; scenario i gets ids = i (mod NSCEN).

    Returns {scenario: (count, seconds)}.
    """
    q(cur, "ALTER TABLE shape_router.shapes ALTER COLUMN shape_id SET INCREMENT BY %d"
      % NSCEN)
    res = {}
    next_base = NSCEN          # ids start above NSCEN, so no id is 0
    for i, name in enumerate(SCENARIOS):
        clauses = scenario_clauses(p, name)
        start = next_base + i
        q(cur, "ALTER TABLE shape_router.shapes ALTER COLUMN shape_id RESTART WITH %d"
          % start)
        t0 = time.perf_counter()
        batch = 10_000
        for off in range(0, len(clauses), batch):
            ids = q(cur, "SELECT shape_router.add_shapes('todos', %s)",
                    (clauses[off:off + batch],))[0][0]
            bad = [x for x in ids if x % NSCEN != i]
            if bad:
                fail("shape ids of scenario %s not in residue %d: %s" % (name, i, bad[:5]))
        res[name] = (len(clauses), time.perf_counter() - t0)
        mx = q(cur, "SELECT coalesce(max(shape_id), 0) FROM shape_router.shapes")[0][0]
        next_base = (mx // NSCEN + 1) * NSCEN
    # every scenario has exactly its shapes in its residue class
    counts = dict(q(cur, "SELECT (shape_id %% %d)::int, count(*) FROM shape_router.shapes "
                    "GROUP BY 1" % NSCEN))
    for i, name in enumerate(SCENARIOS):
        if counts.get(i, 0) != res[name][0]:
            fail("scenario %s: %d shapes in residue %d, expected %d"
                 % (name, counts.get(i, 0), i, res[name][0]))
    return res


def explain_samples(cur):
    """explain_shape of the first shape of each kind, and of rx's first shape
    of each form: shows the access path."""
    out = []
    for label, pat, n in [("equality", "%user_id%", 1), ("range", "%score%", 1),
                          ("ILIKE", "%~~*%", 1), ("regex", "% ~ %", len(RX_FORMS))]:
        for sid, clause in q(cur, "SELECT shape_id, where_clause FROM shape_router.shapes "
                             "WHERE where_clause LIKE %s ORDER BY shape_id LIMIT %s",
                             (pat, n)):
            txt = q(cur, "SELECT shape_router.explain_shape(%s)", (sid,))[0][0] or ""
            out.append((label, clause, " | ".join(txt.splitlines()[:2])))
    return out


# --------------------------------------------------------------------------
# decoders


class Decoder:
    def __init__(self, name, scenario, plugin, slot, binary, options, nshapes=None):
        self.name = name
        self.scenario = scenario
        self.plugin = plugin
        self.slot = slot
        self.binary = binary
        self.options = options
        self.nshapes = nshapes
        self.dbname = None      # None: the bench database
        self.times = []
        self.startup = []
        self.startup_anon = []  # peak RssAnon (kB) of each startup decode
        self.startup_hwm = []   # VmHWM (kB) after each startup decode
        self.anon = []          # peak RssAnon (kB) sampled during each run
        self.hwm = []           # VmHWM (kB) after each run
        self.base_anon = []     # RssAnon before the run
        self.records = None
        self.timed_out = False
        self.error = None
        self.timeout_s = None
        self.expected = None

    def sql(self, upto):
        fn = ("pg_logical_slot_peek_binary_changes" if self.binary
              else "pg_logical_slot_peek_changes")
        opts = "".join(", %s" % psycopg2.extensions.adapt(o).getquoted().decode()
                       for o in self.options)
        return "SELECT count(*) FROM %s('%s', '%s', NULL%s)" % (fn, self.slot, upto, opts)


def make_decoders(p, nshapes):
    ds = [
        Decoder("test_decoding", None, "test_decoding", "bench_td", False, []),
        Decoder("pgoutput (row filter user_id=42)", None, "pgoutput", "bench_pgo", True,
                ["proto_version", "1", "publication_names", "bench_pub"]),
        Decoder("pgoutput (no filter)", None, "pgoutput", "bench_pgo_all", True,
                ["proto_version", "1", "publication_names", "bench_pub_all"]),
        Decoder("wal2json v2", None, "wal2json", "bench_w2j", False,
                ["format-version", "2"]),
    ]
    for i, sc in enumerate(SCENARIOS):
        ds.append(Decoder("shape_router: " + sc, sc, "shape_router", "bench_sr_" + sc,
                          False, ["shard", "%d/%d" % (i, NSCEN)], nshapes[sc]))
    return ds


def read_status(pid):
    vals = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS", "RssAnon"):
                    vals[k] = int(v.split()[0])
    except OSError:
        pass
    return vals


class Sampler(threading.Thread):
    """Polls a backend's RssAnon while it decodes; keeps the peak."""

    def __init__(self, pid, interval=0.01):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, read_status(self.pid).get("RssAnon", 0))
            self.stop.wait(self.interval)


def run_once(d, upto, timeout, measure_memory):
    """One decode in a fresh backend.  Returns (seconds, count, peak_anon, hwm, base)."""
    conn = connect(d.dbname)
    try:
        cur = conn.cursor()
        pid = q(cur, "SELECT pg_backend_pid()")[0][0]
        q(cur, "SET statement_timeout = %d" % int(timeout * 1000))
        base = read_status(pid).get("RssAnon", 0)
        sampler = Sampler(pid) if measure_memory else None
        if sampler:
            sampler.start()
        t0 = time.perf_counter()
        try:
            n = q(cur, d.sql(upto))[0][0]
        finally:
            el = time.perf_counter() - t0
            if sampler:
                sampler.stop.set()
                sampler.join()
        st = read_status(pid)
        peak = max(sampler.peak, st.get("RssAnon", 0)) if sampler else 0
        return el, n, peak, st.get("VmHWM", 0), base
    finally:
        conn.close()


def profile_once(d, upto, timeout, what):
    """One decode of d with perf sampling its backend; prints perf's report."""
    out = "/tmp/sr_bench_perf_%s_%s.data" % (d.slot, what)
    conn = connect(d.dbname)
    try:
        cur = conn.cursor()
        pid = q(cur, "SELECT pg_backend_pid()")[0][0]
        q(cur, "SET statement_timeout = %d" % int(timeout * 1000))
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g", "-o", out,
                                 "-p", str(pid)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        t0 = time.perf_counter()
        q(cur, d.sql(upto))
        el = time.perf_counter() - t0
        perf.send_signal(signal.SIGINT)
        perf.wait()
    finally:
        conn.close()
    print()
    print("== perf profile of %s, %s decode (%.3fs under perf; %s)"
          % (d.name, what, el, out))
    for children, limit in ((False, 0.7), (True, 2.0)):
        rep = subprocess.run(["perf", "report", "-i", out, "--stdio",
                              "--children" if children else "--no-children",
                              "-g", "none", "--percent-limit", str(limit),
                              "--sort", "dso,symbol"],
                             capture_output=True, text=True)
        print("-- %s" % ("inclusive (with callees)" if children else "self"))
        for line in rep.stdout.splitlines():
            if line.strip() and not line.startswith("#") and "[.] 0x0000" not in line:
                print(line)


# --------------------------------------------------------------------------
# verification: expected shape_router record counts from the wal2json stream


def w2j_row(cols):
    return {c["name"]: c.get("value") for c in cols}


def expected_counts(p, upto):
    """I/U/D/B/C record counts each shape_router scenario must write, computed
    from the wal2json (format 2) stream of the same WAL with the routing
    rules of docs/output.md.  Also returns the changes to todos per action
    and the number of transactions wal2json saw."""
    eq_set = set(range(1, p.shapes + 1))
    pool_set = set(p.pool())

    def m_one(r):
        return {("u", 42)} if r["user_id"] == 42 else set()

    def m_eq(r):
        return {("u", r["user_id"])} if r["user_id"] in eq_set else set()

    def m_exact(r):
        return {("u", r["user_id"])} if r["user_id"] in pool_set else set()

    def m_mix(r):
        s = m_eq(r)
        sc = r["score"]
        if sc is not None:
            i, off = divmod(sc, p.range_step)
            if i < p.nranges and off < p.range_width:
                s.add(("r", i))
        t = (r["title"] or "").lower()
        pos = t.find("#tag")
        while pos >= 0:
            end = t.find("#", pos + 4)
            if end < 0:
                break
            num = t[pos + 4:end]
            if num.isdigit() and int(num) < p.ntags:
                s.add(("t", int(num)))
            pos = t.find("#tag", pos + 1)
        return s

    def m_eq2(r):
        return m_eq(r) if r["status"] == "open" else set()

    # rng2's matches as a bitmask over k = 1..nranges: user_id < k, and
    # score > (k % 7) * step, i.e. k % 7 below the number of steps under score
    nr = p.nranges
    step = SCORE_SPAN // 7
    all_k = (1 << (nr + 1)) - 2
    by_res = [0] * 8
    for c in range(8):
        by_res[c] = sum(1 << k for k in range(1, nr + 1) if k % 7 < c)

    def m_rng2(r):
        uid, sc = r["user_id"], r["score"]
        if uid is None or sc is None or uid >= nr:
            return 0
        c = min(7, sum(1 for res in range(7) if res * step < sc))
        return all_k & ~((1 << (uid + 1)) - 1) & by_res[c]

    # rx is counted after the pass (its matches come from PostgreSQL)
    matchers = {"none": lambda r: set(), "one": m_one, "eq": m_eq, "mix": m_mix,
                "exact": m_exact, "eq2": m_eq2, "eq2rev": m_eq2,
                "rng2": m_rng2, "rng2rev": m_rng2}
    exp = {sc: {"I": 0, "U": 0, "D": 0, "B": 0} for sc in SCENARIOS}
    rx_log = []     # (transaction, action, old title, new title) if one has '#'

    def account(e, a, m, old, new):
        """Adds one change's records to e; returns how many it writes."""
        if a == "I":
            n = 1 if m(new) else 0
            e["I"] += n
        elif a == "D":
            n = 1 if m(old) else 0
            e["D"] += n
        else:
            mo, mn = m(old), m(new)
            n = 0
            if mo & mn:
                e["U"] += 1
                n += 1
            if (mn & ~mo) if isinstance(mn, int) else (mn - mo):
                e["I"] += 1
                n += 1
            if (mo & ~mn) if isinstance(mo, int) else (mo - mn):
                e["D"] += 1
                n += 1
        return n

    changes = {"I": 0, "U": 0, "D": 0}
    ntxn = 0
    conn = connect()
    conn.autocommit = False
    cur = conn.cursor("w2j")
    cur.itersize = 50_000
    cur.execute("SELECT data FROM pg_logical_slot_peek_changes('bench_w2j', %s, NULL, "
                "'format-version', '2')", (upto,))
    txn_has = {sc: False for sc in SCENARIOS}
    for (data,) in cur:
        rec = json.loads(data)
        a = rec["action"]
        if a == "B":
            txn_has = {sc: False for sc in SCENARIOS}
            continue
        if a == "C":
            ntxn += 1
            for sc in SCENARIOS:
                if txn_has[sc]:
                    exp[sc]["B"] += 1
            continue
        if rec.get("table") != "todos":
            continue
        if a not in changes:
            fail("unexpected wal2json action %r" % a)
        changes[a] += 1
        new = w2j_row(rec["columns"]) if "columns" in rec else None
        old = w2j_row(rec["identity"]) if "identity" in rec else None
        for sc, m in matchers.items():
            if account(exp[sc], a, m, old, new):
                txn_has[sc] = True
        t_old = old and old["title"]
        t_new = new and new["title"]
        if (t_old and "#" in t_old) or (t_new and "#" in t_new):
            rx_log.append((ntxn, a, t_old, t_new))
    cur.close()
    conn.close()

    # rx: which titles each regular expression matches, as PostgreSQL's ~
    # decides it.  Only titles with a '#' can match (see RX_FORMS); each
    # pattern is compiled once and run over all of them (the correlated
    # subquery runs per pattern).
    titles = sorted({t for _, _, to, tn in rx_log for t in (to, tn) if t and "#" in t})
    pats = rx_patterns(p)
    rx_match = {}
    t0 = time.perf_counter()
    conn = connect()
    try:
        rows = q(conn.cursor(), """
            WITH t AS MATERIALIZED (
                SELECT k::int, title FROM unnest(%s::text[]) WITH ORDINALITY u(title, k))
            SELECT p.i::int, (SELECT array_agg(t.k) FROM t WHERE t.title ~ p.pat)
              FROM unnest(%s::text[]) WITH ORDINALITY p(pat, i)""", (titles, pats))
    finally:
        conn.close()
    for i, ks in rows:
        for k in ks or ():
            rx_match.setdefault(titles[k - 1], set()).add(i)
    log("   rx: %d distinct titles with '#' in the stream, %d of them matched by "
        "some pattern (PostgreSQL's ~, %d patterns, %.1fs)"
        % (len(titles), len(rx_match), len(pats), time.perf_counter() - t0))
    none = frozenset()

    def m_rx(r):
        return rx_match.get(r["title"], none)

    rx_txns = set()
    for txn, a, t_old, t_new in rx_log:
        if account(exp["rx"], a, m_rx, {"title": t_old}, {"title": t_new}):
            rx_txns.add(txn)
    exp["rx"]["B"] = len(rx_txns)
    for sc in SCENARIOS:
        exp[sc]["C"] = exp[sc]["B"]
    return changes, ntxn, exp


def check_actions(d, upto, timeout):
    """Decode once more, counting records per action; compare with d.expected.
    Returns a list of problems (empty when everything matches)."""
    conn = connect()
    try:
        cur = conn.cursor()
        q(cur, "SET statement_timeout = %d" % int(timeout * 1000))
        got = dict(q(cur, "SELECT data::json->>'action', count(*) FROM "
                     "pg_logical_slot_peek_changes(%s, %s, NULL, 'shard', %s) "
                     "GROUP BY 1", (d.slot, upto, d.options[1])))
    finally:
        conn.close()
    want = d.expected
    problems = ["%s: %d %s records, expected %d" % (d.name, got.get(k, 0), k, want.get(k, 0))
                for k in sorted(set(got) | set(want)) if got.get(k, 0) != want.get(k, 0)]
    log("   %-22s I=%d U=%d D=%d B=%d C=%d %s" % (
        d.name, got.get("I", 0), got.get("U", 0), got.get("D", 0), got.get("B", 0),
        got.get("C", 0), "as expected" if not problems else "MISMATCH"))
    return problems


# --------------------------------------------------------------------------
# stream start at scale (--startup-shapes): its own database


STARTUP_DB = "bench_startup"
STARTUP_SQL = """
CREATE EXTENSION shape_router;
CREATE TABLE todos (
    id bigint PRIMARY KEY,
    user_id int,
    status text,
    title text,
    score int,
    updated_at timestamptz
);
ALTER TABLE todos REPLICA IDENTITY FULL;
CREATE TABLE bench_marker (x int);
ALTER TABLE shape_router.shapes ALTER COLUMN shape_id SET INCREMENT BY 2;
ALTER TABLE shape_router.shapes ALTER COLUMN shape_id RESTART WITH 2;
"""


def startup_at_scale(n, runs, timeout):
    """Stream start with n equality shapes, in a database of its own (so the
    main scenarios' catalog does not grow, and the n shapes' catalog holds
    nothing else): n shapes user_id = k with even ids, registered in
    add_shapes calls of 10,000; then two slots, a marker transaction, and
    `runs` startup decodes of each slot, round robin: shard 0/2 selects the
    n shapes, shard 1/2 none (the same catalog read, nothing compiled)."""
    admin = connect()
    q(admin.cursor(), "CREATE DATABASE %s" % STARTUP_DB)
    admin.close()
    conn = connect(STARTUP_DB)
    cur = conn.cursor()
    q(cur, STARTUP_SQL)
    t0 = time.perf_counter()
    batch = 10_000
    for off in range(1, n + 1, batch):
        ids = q(cur, "SELECT shape_router.add_shapes('todos', %s)",
                (["user_id = %d" % k for k in range(off, min(n, off + batch - 1) + 1)],))[0][0]
        if any(x % 2 for x in ids):
            fail("startup database: odd shape ids")
    t_reg = time.perf_counter() - t0
    got = q(cur, "SELECT count(*), count(*) FILTER (WHERE shape_id % 2 = 0) "
            "FROM shape_router.shapes")[0]
    if tuple(got) != (n, n):
        fail("startup database: %s shapes (%s even), expected %d" % (got[0], got[1], n))
    q(cur, "VACUUM ANALYZE")
    q(cur, "CHECKPOINT")
    ds = []
    for label, shard in (("%d shapes" % n, "0/2"), ("no shape selected", "1/2")):
        d = Decoder("startup: " + label, None, "shape_router",
                    "bench_start_" + shard.replace("/", "_"), False, ["shard", shard], n)
        d.dbname = STARTUP_DB
        q(cur, "SELECT pg_create_logical_replication_slot(%s, 'shape_router')", (d.slot,))
        ds.append(d)
    q(cur, "SET synchronous_commit = on")
    q(cur, "INSERT INTO bench_marker VALUES (1)")
    marker = q(cur, "SELECT pg_current_wal_lsn()")[0][0]
    conn.close()
    for r in range(runs):
        for d in ds:
            try:
                el, cnt, peak, hwm, _ = run_once(d, marker, timeout, True)
            except psycopg2.Error as e:
                fail("%s: decode failed: %s" % (d.name, str(e).strip()))
            if cnt != 0:
                fail("%s: %d records up to the marker, expected 0" % (d.name, cnt))
            d.startup.append(el)
            d.startup_anon.append(peak)
            d.startup_hwm.append(hwm)
            log("   run %d %-34s %8.3fs  peak RssAnon %7.1f MB"
                % (r + 1, d.name, el, peak / 1024))
    # the slots hold back WAL and catalog rows: drop them
    conn = connect(STARTUP_DB)
    for d in ds:
        q(conn.cursor(), "SELECT pg_drop_replication_slot(%s)", (d.slot,))
    conn.close()
    return {"shapes": n, "register_seconds": t_reg,
            "selected": ds[0], "none": ds[1]}


def print_startup_at_scale(st):
    n = st["shapes"]
    sel, none = st["selected"], st["none"]
    t, t0 = statistics.median(sel.startup), statistics.median(none.startup)
    per = 100_000 / n
    print("stream start at %d equality shapes (database %s of its own, %d runs):"
          % (n, STARTUP_DB, len(sel.startup)))
    print("   add_shapes: %d shapes in %.1fs = %.0f shapes/s (calls of 10,000)"
          % (n, st["register_seconds"], n / st["register_seconds"]))
    print("   startup decode %.3fs = %.1f ms per 100,000 shapes (target <= 50 ms); "
          "runs %s" % (t, t * 1000 * per, " ".join("%.3f" % x for x in sel.startup)))
    print("   same catalog, shard selecting no shape: %.3fs (the catalog read); "
          "loading and compiling: %.1f ms per 100,000 shapes" % (t0, (t - t0) * 1000 * per))
    a, a0 = statistics.median(sel.startup_anon), statistics.median(none.startup_anon)
    print("   peak RssAnon %.1f MB (no shape selected: %.1f MB) = %.0f bytes per shape"
          % (a / 1024, a0 / 1024, (a - a0) * 1024 / n))


def fmt_s(d):
    if d.error:
        return "ERROR"
    if not d.times:
        return ">%ds" % d.timeout_s if d.timed_out else "-"
    m = "%.3f" % statistics.median(d.times)
    return m if len(d.times) >= 3 else "%s(n=%d)" % (m, len(d.times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="100,000 changes, 10,000 shapes (a smoke run)")
    ap.add_argument("--changes", type=int, help="workload changes (default 1,000,000)")
    ap.add_argument("--shapes", type=int,
                    help="user id pool size = equality shapes (multiple of 100; "
                    "default 100,000); range and ILIKE shapes are 1%% of it each")
    ap.add_argument("--txn-size", type=int, default=1000)
    ap.add_argument("--preload", type=int, help="rows inserted before the slots")
    ap.add_argument("--runs", type=int, default=3, help="timed decodes per decoder")
    ap.add_argument("--timeout", type=float,
                    help="seconds allowed per decode (statement_timeout)")
    ap.add_argument("--budget", type=float,
                    help="seconds of timed decoding per decoder: after the first "
                    "run, no further run that would exceed it (the table then "
                    "shows n=)")
    ap.add_argument("--check-limit", type=float, default=120,
                    help="per-action record check (one more decode) only for "
                    "decoders whose median is below this many seconds")
    ap.add_argument("--startup-shapes", type=int, metavar="N",
                    help="after the table, measure the stream start with N equality "
                    "shapes in a database of their own (default 1,000,000; 0 in "
                    "--quick; 0 = off)")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--profile", metavar="NAMES",
                    help="after the table, decode once more under 'perf record' for "
                    "each decoder whose name contains one of these comma-separated "
                    "words (e.g. eq,pgoutput) and print perf's top symbols; a word "
                    "prefixed with startup: profiles the startup decode instead")
    a = ap.parse_args()
    if a.quick:
        a.changes = a.changes or 100_000
        a.shapes = a.shapes or 10_000
        a.preload = a.preload or 20_000
        a.timeout = a.timeout or 120
        a.budget = a.budget or 60
        a.startup_shapes = a.startup_shapes or 0
    else:
        a.changes = a.changes or 1_000_000
        a.shapes = a.shapes or 100_000
        a.preload = a.preload or 200_000
        a.timeout = a.timeout or 1200
        a.budget = a.budget or 600
        if a.startup_shapes is None:
            a.startup_shapes = 1_000_000
    if a.runs < 1:
        fail("--runs must be at least 1")
    if a.startup_shapes < 0:
        fail("--startup-shapes must not be negative")
    p = Params(a)
    t_start = time.perf_counter()

    conn = connect()
    cur = conn.cursor()
    ver = q(cur, "SHOW server_version")[0][0]
    log("== server %s; %d changes in transactions of %d; %d-value user pool; %d runs"
        % (ver, p.changes, p.txn_size, p.shapes, p.runs))
    q(cur, SCHEMA_SQL.replace("@BIG@", str(BIG_USER)).replace("@SPAN@", str(SCORE_SPAN)))
    q(cur, "SELECT setseed(0.42)")
    t0 = time.perf_counter()
    q(cur, """INSERT INTO todos
              SELECT g, bench_uid(floor(random() * %(pool)s)::int, %(pool)s),
                     'open', bench_title(%(ntags)s), floor(random() * %(span)s)::int, now()
                FROM generate_series(1, %(n)s) g""",
      {"pool": p.shapes, "ntags": p.ntags, "span": SCORE_SPAN, "n": p.preload})
    log("== preloaded %d rows (before any slot) in %.1fs"
        % (p.preload, time.perf_counter() - t0))
    q(cur, "CREATE PUBLICATION bench_pub FOR TABLE todos WHERE (user_id = 42)")
    q(cur, "CREATE PUBLICATION bench_pub_all FOR TABLE todos")

    log("== registering shapes (before any slot), scenario i's ids = i mod %d" % NSCEN)
    reg = register_shapes(cur, p)
    for sc in SCENARIOS:
        n, s = reg[sc]
        log("   %-6s %7d shapes  %7.2fs%s" % (sc, n, s,
            ("  (%.0f shapes/s)" % (n / s)) if n and s > 0 else ""))
    nshapes = {sc: reg[sc][0] for sc in SCENARIOS}
    for label, clause, txt in explain_samples(cur):
        log("   explain_shape (%s: %s): %s" % (label, clause, txt))
    q(cur, "VACUUM ANALYZE")
    q(cur, "CHECKPOINT")

    decoders = make_decoders(p, nshapes)
    for d in decoders:
        q(cur, "SELECT pg_create_logical_replication_slot(%s, %s)", (d.slot, d.plugin))
    # A transaction on a table without shapes: decoding up to it measures
    # startup (for shape_router: loading and compiling the shapes).
    # Synchronous commits: pg_current_wal_lsn() is then past the commit.
    q(cur, "SET synchronous_commit = on")
    q(cur, "INSERT INTO bench_marker VALUES (1)")
    marker_lsn = q(cur, "SELECT pg_current_wal_lsn()")[0][0]
    t0 = time.perf_counter()
    q(cur, "SELECT setseed(0.4242)")
    ntxn = p.changes // p.txn_size
    q(cur, "CALL bench_workload(%s, %s, %s, %s, %s, %s)",
      (ntxn, p.txn_size, p.shapes, p.ntags, p.preload + 1, 1))
    t_work = time.perf_counter() - t0
    # a last synchronous commit: every workload commit is flushed before it
    q(cur, "INSERT INTO bench_marker VALUES (2)")
    end_lsn = q(cur, "SELECT pg_current_wal_lsn()")[0][0]
    if q(cur, "SELECT pg_current_wal_flush_lsn() < %s::pg_lsn", (end_lsn,))[0][0]:
        fail("end LSN %s is not flushed" % end_lsn)
    wal_bytes = int(q(cur, "SELECT %s::pg_lsn - %s::pg_lsn", (end_lsn, marker_lsn))[0][0])
    log("== workload: %d changes in %.1fs, %.0f MB of WAL (%s .. %s)"
        % (p.changes, t_work, wal_bytes / 1e6, marker_lsn, end_lsn))
    conn.close()

    problems = []
    log("== expected shape_router records, from the wal2json stream (untimed)")
    t0 = time.perf_counter()
    try:
        changes, w2j_txns, exp = expected_counts(p, end_lsn)
    except psycopg2.Error as e:
        fail("wal2json decode for the expected counts failed: %s" % str(e).strip())
    log("   changes to todos: %s in %d transactions (%.1fs)"
        % (changes, w2j_txns, time.perf_counter() - t0))
    if sum(changes.values()) != p.changes:
        problems.append("wal2json saw %d changes to todos, expected %d"
                        % (sum(changes.values()), p.changes))
    # the workload's transactions plus the two marker transactions
    txns = ntxn + 2
    if w2j_txns != txns:
        problems.append("wal2json saw %d transactions, expected %d" % (w2j_txns, txns))
    # every change, the two marker rows, B and C of every transaction
    expected_records = {"test_decoding": p.changes + 2 + 2 * txns,
                        "wal2json v2": p.changes + 2 + 2 * txns}
    for d in decoders:
        if d.plugin == "shape_router":
            d.expected = exp[d.scenario]
            expected_records[d.name] = sum(d.expected.values())
            e = d.expected
            log("   %-22s I=%d U=%d D=%d B=%d C=%d" % (d.name, e["I"], e["U"], e["D"],
                                                        e["B"], e["C"]))

    log("== startup: decode up to the marker transaction, %d runs" % p.runs)
    for r in range(p.runs):
        for d in decoders:
            try:
                el, _, peak, hwm, _ = run_once(d, marker_lsn, p.timeout, True)
            except psycopg2.Error as e:
                fail("%s: startup decode failed: %s" % (d.name, str(e).strip()))
            d.startup.append(el)
            d.startup_anon.append(peak)
            d.startup_hwm.append(hwm)

    log("== timed decodes of the workload: up to %d runs round robin, timeout %ds "
        "per decode, budget %ds per decoder" % (p.runs, p.timeout, a.budget))
    for r in range(p.runs):
        for d in decoders:
            if d.timed_out or d.error:
                continue
            if d.times and sum(d.times) + max(d.times) > a.budget:
                continue
            try:
                el, n, peak, hwm, base = run_once(d, end_lsn, p.timeout, True)
            except psycopg2.errors.QueryCanceled:
                d.timed_out = True
                d.timeout_s = p.timeout
                log("   run %d %-34s TIMEOUT after %ds" % (r + 1, d.name, p.timeout))
                continue
            except psycopg2.Error as e:
                d.error = str(e).strip()
                log("   run %d %-34s ERROR %s" % (r + 1, d.name, d.error))
                continue
            if d.records is not None and n != d.records:
                problems.append("%s: %d records in one run, %d in another"
                                % (d.name, d.records, n))
            d.records = n
            d.times.append(el)
            d.anon.append(peak)
            d.hwm.append(hwm)
            d.base_anon.append(base)
            log("   run %d %-34s %8.3fs %9d records  peak RssAnon %6.1f MB"
                % (r + 1, d.name, el, n, peak / 1024))

    for d in decoders:
        want = expected_records.get(d.name)
        if want is not None and d.records is not None and d.records != want:
            problems.append("%s: %d records, expected %d" % (d.name, d.records, want))

    log("== per-action check of shape_router records (one more decode each)")
    for d in decoders:
        if d.plugin != "shape_router" or not d.times:
            continue
        if statistics.median(d.times) > a.check_limit:
            log("   %-22s skipped (median above %ds); its total record count was "
                "checked" % (d.name, a.check_limit))
            continue
        try:
            problems += check_actions(d, end_lsn, p.timeout)
        except psycopg2.Error as e:
            problems.append("%s: check decode failed: %s" % (d.name, str(e).strip()))

    # ---- the table
    by = {d.name: d for d in decoders}
    pgo = by["pgoutput (row filter user_id=42)"]
    pgo_all = by["pgoutput (no filter)"]
    w2j = by["wal2json v2"]

    def med(d):
        return statistics.median(d.times) if d.times else None

    def ratio(d, ref):
        a_, b_ = med(d), med(ref)
        if a_ is None or b_ is None or b_ == 0:
            return "-"
        return "%.2f" % (a_ / b_)

    print()
    print("Decoding %d changes (%d transactions of %d, %.0f MB of WAL); "
          "median of %d runs unless n= says fewer"
          % (p.changes, ntxn, p.txn_size, wal_bytes / 1e6, p.runs))
    def steady(d):
        m = med(d)
        return None if m is None else m - statistics.median(d.startup)

    def steady_ratio(d, ref):
        a_, b_ = steady(d), steady(ref)
        if a_ is None or b_ is None or b_ <= 0:
            return "-"
        return "%.2f" % (a_ / b_)

    hdr = "%-34s %7s %13s %9s %9s %10s %10s %10s %9s %11s" % (
        "plugin / scenario", "shapes", "median s", "startup s", "records",
        "/pgoutput", "/pgo-all", "/wal2json", "-startup", "peak anonMB")
    print(hdr)
    print("-" * len(hdr))
    for d in decoders:
        print("%-34s %7s %13s %9.3f %9s %10s %10s %10s %9s %11s" % (
            d.name, "-" if d.nshapes is None else d.nshapes, fmt_s(d),
            statistics.median(d.startup), "-" if d.records is None else d.records,
            ratio(d, pgo), ratio(d, pgo_all), ratio(d, w2j), steady_ratio(d, pgo),
            "%.1f" % (statistics.median(d.anon) / 1024) if d.anon else "-"))
    print("/pgoutput, /pgo-all, /wal2json: median time / median time of pgoutput with "
          "the row filter (user_id = 42), of pgoutput without a filter, of wal2json.")
    print("startup: median time to decode only up to a marker transaction before the "
          "workload (shape_router: loads and compiles its shapes there).")
    print("-startup: (median - startup) / (median - startup) of pgoutput with the row "
          "filter: the decode without the one-time load at stream start.")
    print("peak anonMB: the decoding backend's peak RssAnon, sampled every 10 ms.")
    one, eq = by["shape_router: one"], by["shape_router: eq"]
    exact, rx = by["shape_router: exact"], by["shape_router: rx"]
    if med(one) and med(eq):
        print("100,000 shapes / 1 shape (eq / one): %.2f; without startup: %s"
              % (med(eq) / med(one), steady_ratio(eq, one)))
    print("targets: eq / pgoutput (row filter), stream start included: %s (<= 1.2; "
          "without startup %s); exact / pgoutput (no filter): %s (<= 1.0); "
          "rx / eq: %s (<= 2.0; without startup %s)"
          % (ratio(eq, pgo), steady_ratio(eq, pgo), ratio(exact, pgo_all),
             ratio(rx, eq), steady_ratio(rx, eq)))

    print()
    n, s = reg["eq"]
    print("add_shapes: %d equality shapes in %.2fs = %.0f shapes/s (calls of 10,000)"
          % (n, s, n / s))
    n, s = reg["mix"]
    print("add_shapes: %d eq + range + ILIKE shapes in %.2fs = %.0f shapes/s"
          % (n, s, n / s))
    n, s = reg["rx"]
    print("add_shapes: %d regular expressions in %.2fs = %.0f shapes/s"
          % (n, s, n / s))
    base = by["shape_router: one"]
    if base.startup_anon:
        # The startup decode loads and compiles the shapes and writes nothing:
        # its peak is the shapes' own memory.  The workload decode's peak also
        # holds the SQL interface's tuplestore of output rows (up to work_mem),
        # which a streaming walsender does not have.
        b_anon = statistics.median(base.startup_anon)
        b_hwm = statistics.median(base.startup_hwm)
        print("walsender memory per shape, from the startup decode (shapes loaded and "
              "compiled, no output), minus the 'one' scenario's (same catalog read):")
        for sc in ("eq", "mix", "exact"):
            d = by["shape_router: " + sc]
            n = d.nshapes - 1
            anon = statistics.median(d.startup_anon) - b_anon
            hwm = statistics.median(d.startup_hwm) - b_hwm
            print("   %-5s %6d shapes: peak RssAnon +%6.1f MiB = %4.0f bytes per shape; "
                  "VmHWM +%6.1f MiB = %4.0f bytes per shape"
                  % (sc, d.nshapes, anon / 1024, anon * 1024 / n,
                     hwm / 1024, hwm * 1024 / n))
    if base.anon:
        b_anon = statistics.median(base.anon)
        b_hwm = statistics.median(base.hwm)
        print("memory per 100,000 shapes during the workload decode (peak of the "
              "decoding backend, minus the 'one' scenario's; includes the output "
              "tuplestore):")
        for sc in ("eq", "mix", "exact"):
            d = by["shape_router: " + sc]
            if not d.anon:
                print("   %-5s no completed run" % sc)
                continue
            per = 100_000 / (d.nshapes - 1)
            print("   %-5s %6d shapes: RssAnon %7.1f MB (one: %.1f) -> %6.1f MB per 100,000;"
                  " VmHWM %7.1f MB (one: %.1f) -> %6.1f MB per 100,000"
                  % (sc, d.nshapes, statistics.median(d.anon) / 1024, b_anon / 1024,
                     (statistics.median(d.anon) - b_anon) / 1024 * per,
                     statistics.median(d.hwm) / 1024, b_hwm / 1024,
                     (statistics.median(d.hwm) - b_hwm) / 1024 * per))
    st = None
    if p.startup_shapes:
        print()
        log("== stream start at %d shapes, database %s (after the table: the main "
            "scenarios' catalog and numbers are not affected)" % (p.startup_shapes, STARTUP_DB))
        st = startup_at_scale(p.startup_shapes, p.runs, p.timeout)
        print_startup_at_scale(st)
    print("total bench time %.0fs" % (time.perf_counter() - t_start))

    if a.json:
        out = {
            "params": vars(a), "server": ver, "wal_bytes": wal_bytes,
            "workload_seconds": t_work, "changes": changes,
            "registration": {k: {"shapes": v[0], "seconds": v[1]} for k, v in reg.items()},
            "decoders": [{
                "name": d.name, "plugin": d.plugin, "scenario": d.scenario,
                "shapes": d.nshapes, "times": d.times, "startup": d.startup,
                "startup_peak_rss_anon_kb": d.startup_anon,
                "startup_vmhwm_kb": d.startup_hwm,
                "records": d.records, "expected": d.expected,
                "peak_rss_anon_kb": d.anon, "vmhwm_kb": d.hwm,
                "timed_out": d.timed_out, "error": d.error} for d in decoders],
            "problems": problems,
        }
        if st:
            out["startup_at_scale"] = {
                "shapes": st["shapes"], "register_seconds": st["register_seconds"],
                "startup": st["selected"].startup,
                "startup_peak_rss_anon_kb": st["selected"].startup_anon,
                "startup_vmhwm_kb": st["selected"].startup_hwm,
                "none_selected_startup": st["none"].startup,
                "none_selected_peak_rss_anon_kb": st["none"].startup_anon}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)

    if a.profile:
        words = [w for w in a.profile.split(",") if w]
        for d in decoders:
            for w in words:
                startup = w.startswith("startup:")
                if w[len("startup:"):] in d.name if startup else w in d.name:
                    profile_once(d, marker_lsn if startup else end_lsn, p.timeout,
                                 "startup" if startup else "workload")

    errors = [d for d in decoders if d.error]
    timeouts = [d for d in decoders if d.timed_out]
    if timeouts:
        print("WARNING: timed out (statement_timeout %ds): %s"
              % (p.timeout, ", ".join(d.name for d in timeouts)))
    if errors or problems:
        for d in errors:
            print("bench: ERROR: %s: %s" % (d.name, d.error), file=sys.stderr)
        for pr in problems:
            print("bench: ERROR: %s" % pr, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
