#!/usr/bin/python3
"""Default replica identity benchmark (issue 11): DEFAULT against FULL.

Run by test/bench/identity.sh inside one throwaway cluster (pg_virtualenv
sets PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE), with fsync ON: the
membership redo log's fsync, once per decoded transaction that changes
membership, is part of what is measured.

Part 1, the same update/delete-heavy workload on two identical tables,
t_def (REPLICA IDENTITY DEFAULT, primary key) and t_full (REPLICA IDENTITY
FULL), each workload in its own WAL range of the same cluster:

  * --rows rows per table (1,000,000), user_id uniform in 1..2*--shapes,
    score uniform in [0, 1,000,000); an index on user_id;
  * --shapes shapes `user_id = k` (k = 1..1000: half the rows are members)
    and --ranges shapes `score BETWEEN a AND a+19999` (2 % of scores each),
    on each table, all over rows that predate them; registered after every
    slot exists, so the DEFAULT slots get the initial members;
  * "multi": --changes changes in transactions of --txn-min..--txn-max
    (uniform), each 10 % INSERT, 20 % UPDATE of user_id (moves in and out of
    the equality shapes), 10 % UPDATE of score (moves in and out of the
    ranges), 50 % UPDATE of title (members stay members), 10 % DELETE
    (oldest rows); "single": --single transactions of one change each, same
    mix.  Seeded: both tables get exactly the same changes (checked: the
    tables are equal afterwards, and the DEFAULT decode's records equal the
    FULL decode's, shape ids mapped and table names aside).
  * Four slots, one per (table, workload), each positioned at its workload's
    first LSN: the DEFAULT ones by decoding everything before it with the
    plugin (so their membership is current), the FULL ones by
    pg_replication_slot_advance.  The DEFAULT slots are created before the
    shapes (they get the initial members), the FULL ones after them (they
    hold no membership of t_def, which every stream would otherwise load).  A CHECKPOINT precedes each workload, so
    each starts with the same full-page-write state.
  * WAL: pg_current_wal_lsn() difference over each workload, split by
    pg_waldump --stats into record bytes and full-page images.
  * Decode: --runs timed `SELECT count(*) FROM pg_logical_slot_peek_changes(
    slot, end, NULL)` per slot, round robin, a fresh backend each (so each
    run also loads the slot's saved membership); medians.  Per run: wall
    time, the backend's CPU time (/proc/<pid>/stat), its write() calls and
    bytes (/proc/<pid>/io), peak RssAnon and RssFile (sampled every 10 ms)
    and VmHWM.  Then --fsync-off-runs more of each with fsync=off (reload).
  * Memory per member key: (DEFAULT peak - FULL peak) / member keys, for
    RssAnon, RssFile (the loaded segment is mmap'ed) and VmHWM; plus the
    slot's segment file size per key.

Part 2, add_shape on a --lock-rows DEFAULT table t_lock (g100: 100 rows per
value, g100k: 100,000 rows per value), shapes of ~100 and ~100,000 rows,
without and then with an index on the column: --lock-reps transactions
`BEGIN; SELECT add_shape(...); COMMIT` each, the add_shape call and the
COMMIT timed on the client (the SHARE lock is held from the call to the end
of COMMIT), while a writer thread updates random rows of t_lock one
statement at a time and records how long each statement took: its longest
wait inside each add_shape transaction is the lock time a writer sees.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

import psycopg2

SCORE_SPAN = 1_000_000
RANGE_WIDTH = 20_000            # 2 % of scores per range shape
TABLES = ("t_def", "t_full")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, flush=True)


def fail(msg):
    print("identity_bench: ERROR: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def connect(autocommit=True):
    conn = psycopg2.connect("")
    conn.autocommit = autocommit
    return conn


def q(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


def q1(cur, sql, args=None):
    return q(cur, sql, args)[0][0]


def med(xs):
    return statistics.median(xs) if xs else None


# --------------------------------------------------------------------------
# schema and workload

ROW_EXPR = """1 + floor(random() * %(pool)d)::int,
       (ARRAY['open', 'done', 'archived'])[1 + floor(random() * 3)::int],
       'task ' || substr(md5(random()::text), 1, 16),
       floor(random() * %(span)d)::int,
       '2026-01-01'::timestamptz + floor(random() * 31536000) * interval '1 second'"""

SCHEMA_SQL = """
CREATE EXTENSION shape_router;
CREATE TABLE t_def (
    id bigint PRIMARY KEY,
    user_id int NOT NULL,
    status text,
    title text,
    score int,
    updated_at timestamptz
);
CREATE INDEX t_def_user_id ON t_def (user_id);
CREATE TABLE t_full (LIKE t_def INCLUDING ALL);
ALTER TABLE t_full REPLICA IDENTITY FULL;
CREATE TABLE idb_marker (x int);

-- One transaction = n changes, n uniform in tmin..tmax: 10 % inserts (new
-- ids on top), 20 % updates of user_id, 10 % of score, 50 % of title, 10 %
-- deletes (the oldest rows).  A transaction of one change picks its kind
-- with the same odds.  Updated ids are distinct within a statement
-- (base + (g * prime + salt) mod span), so every statement changes exactly
-- its count of rows, on either table.
CREATE PROCEDURE idb_workload(tbl regclass, ntxn int, tmin int, tmax int,
                              pool int, first_id bigint, low_id bigint,
                              INOUT counts bigint[] DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
  n int; n_ins int; n_del int; n_uu int; n_us int; n_ut int;
  r float8;
  next_id bigint := first_id;
  lo bigint := low_id;
  span bigint; base bigint;
  c bigint[] := ARRAY[0, 0, 0, 0, 0]::bigint[];
BEGIN
  FOR t IN 0 .. ntxn - 1 LOOP
    n := tmin + floor(random() * (tmax - tmin + 1))::int;
    IF n = 1 THEN
      r := random();
      n_ins := (r < 0.1)::int;
      n_del := (r >= 0.1 AND r < 0.2)::int;
      n_uu := (r >= 0.2 AND r < 0.4)::int;
      n_us := (r >= 0.4 AND r < 0.5)::int;
    ELSE
      n_ins := round(n * 0.1); n_del := round(n * 0.1);
      n_uu := round(n * 0.2); n_us := round(n * 0.1);
    END IF;
    n_ut := n - n_ins - n_del - n_uu - n_us;
    IF n_ins > 0 THEN
      EXECUTE format('INSERT INTO %s SELECT $1 + g, @ROW@
                        FROM generate_series(0, $2 - 1) g', tbl)
        USING next_id, n_ins;
      next_id := next_id + n_ins;
    END IF;
    base := lo + n_del;
    span := next_id - base;
    WHILE span % 7919 = 0 OR span % 7927 = 0 OR span % 7933 = 0 LOOP
      span := span - 1;
    END LOOP;
    IF n_uu > 0 THEN
      EXECUTE format('UPDATE %s SET user_id = 1 + floor(random() * $1)::int
                       WHERE id IN (SELECT $2 + (g::bigint * 7919 + $3::bigint * 104729) %% $4
                                      FROM generate_series(0, $5 - 1) g)', tbl)
        USING pool, base, t, span, n_uu;
    END IF;
    IF n_us > 0 THEN
      EXECUTE format('UPDATE %s SET score = floor(random() * @SPAN@)::int
                       WHERE id IN (SELECT $1 + (g::bigint * 7927 + $2::bigint * 130363) %% $3
                                      FROM generate_series(0, $4 - 1) g)', tbl)
        USING base, t, span, n_us;
    END IF;
    IF n_ut > 0 THEN
      EXECUTE format('UPDATE %s SET title = ''task '' || substr(md5(random()::text), 1, 16),
                                    updated_at = updated_at + interval ''1 second''
                       WHERE id IN (SELECT $1 + (g::bigint * 7933 + $2::bigint * 15485863) %% $3
                                      FROM generate_series(0, $4 - 1) g)', tbl)
        USING base, t, span, n_ut;
    END IF;
    IF n_del > 0 THEN
      EXECUTE format('DELETE FROM %s WHERE id >= $1 AND id < $2', tbl)
        USING lo, lo + n_del;
      lo := lo + n_del;
    END IF;
    c := ARRAY[c[1] + n_ins, c[2] + n_uu, c[3] + n_us, c[4] + n_ut, c[5] + n_del];
    COMMIT;
  END LOOP;
  counts := c || ARRAY[next_id, lo];
END $$;
"""


class Params:
    def __init__(self, a):
        self.rows = a.rows
        self.shapes = a.shapes
        self.pool = 2 * a.shapes            # half the rows are in an eq shape
        self.ranges = a.ranges
        self.changes = a.changes
        self.tmin = a.txn_min
        self.tmax = a.txn_max
        self.single = a.single
        self.runs = a.runs
        self.lock_rows = a.lock_rows
        self.lock_reps = a.lock_reps
        if self.ranges and SCORE_SPAN // self.ranges < RANGE_WIDTH:
            fail("--ranges: at most %d" % (SCORE_SPAN // RANGE_WIDTH))

    def clauses(self):
        eq = ["user_id = %d" % k for k in range(1, self.shapes + 1)]
        step = SCORE_SPAN // max(self.ranges, 1)
        rng = ["score BETWEEN %d AND %d" % (i * step, i * step + RANGE_WIDTH - 1)
               for i in range(self.ranges)]
        return eq + rng

    def member_pred(self):
        step = SCORE_SPAN // max(self.ranges, 1)
        parts = ["user_id BETWEEN 1 AND %d" % self.shapes]
        parts += ["score BETWEEN %d AND %d" % (i * step, i * step + RANGE_WIDTH - 1)
                  for i in range(self.ranges)]
        return " OR ".join(parts)


def row_sql(p):
    return ROW_EXPR % {"pool": p.pool, "span": SCORE_SPAN}


def sync_marker(cur):
    """A synchronous commit; returns pg_current_wal_lsn() after it (flushed)."""
    q(cur, "SET synchronous_commit = on")
    q(cur, "INSERT INTO idb_marker VALUES (1)")
    return q1(cur, "SELECT pg_current_wal_lsn()")


def waldump_stats(datadir, start, end):
    """Record bytes, FPI bytes and the heap UPDATE / DELETE record bytes (what
    the replica identity changes) of [start, end), from pg_waldump --stats."""
    try:
        out = subprocess.run(
            ["/usr/lib/postgresql/15/bin/pg_waldump", "--stats=record", "-p",
             os.path.join(datadir, "pg_wal"), "-s", start, "-e", end],
            capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    res = {"heap_upd_del_bytes": 0, "heap_upd_del": 0, "types": {}}
    for line in out.stdout.splitlines():
        # Type  N (p)  record size (p)  FPI size (p)  combined (p); Total has [p%]
        nums = [int(x) for x in re.sub(r"[(\[][^)\]]*[)\]]", " ", line).split()[1:]
                if x.isdigit()]
        name = line.split()[0] if line.split() else ""
        if name == "Total" and len(nums) >= 4:
            res.update({"records": nums[0], "record_bytes": nums[1],
                        "fpi_bytes": nums[2], "total": nums[3]})
        elif "/" in name and len(nums) >= 4:
            res["types"][name] = nums[:4]
            if re.match(r"Heap/(UPDATE|HOT_UPDATE|DELETE)", name):
                res["heap_upd_del_bytes"] += nums[1]
                res["heap_upd_del"] += nums[0]
    if "total" in res:
        return res, None
    return None, (out.stderr or out.stdout)[-500:]


def run_workload(p, cur, tbl, ntxn, tmin, tmax, first_id, low_id, seed):
    q(cur, "SELECT setseed(%s)", (seed,))
    q(cur, "SET synchronous_commit = off")
    t0 = time.perf_counter()
    counts = q1(cur, "CALL idb_workload(%s, %s, %s, %s, %s, %s, %s)",
                (tbl, ntxn, tmin, tmax, p.pool, first_id, low_id))
    return counts, time.perf_counter() - t0


# --------------------------------------------------------------------------
# decoding


def read_status(pid):
    vals = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    vals[k] = int(v.split()[0])
    except OSError:
        pass
    return vals


def read_cpu(pid):
    """utime + stime of pid, seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def read_io(pid):
    vals = {}
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                vals[k] = int(v)
    except OSError:
        pass
    return vals


class Sampler(threading.Thread):
    """Polls a backend's RssAnon and RssFile while it decodes; keeps the peaks."""

    def __init__(self, pid, interval=0.01):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.anon = 0
        self.file = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            st = read_status(self.pid)
            self.anon = max(self.anon, st.get("RssAnon", 0))
            self.file = max(self.file, st.get("RssFile", 0))
            self.stop.wait(self.interval)


class Decode:
    def __init__(self, name, table, kind, slot):
        self.name = name
        self.table = table
        self.kind = kind            # "multi" or "single"
        self.slot = slot
        self.start = None           # the slot's position: the workload's first LSN
        self.end = None
        self.wal = None             # bytes
        self.walstats = None
        self.changes = None
        self.txns = None
        self.members = None         # (before, after) member keys, DEFAULT only
        self.runs = []              # dicts, fsync on
        self.runs_off = []          # dicts, fsync off
        self.records = None

    def sql(self):
        return ("SELECT count(*) FROM pg_logical_slot_peek_changes('%s', '%s', NULL)"
                % (self.slot, self.end))


def decode_once(d, timeout):
    conn = connect()
    try:
        cur = conn.cursor()
        pid = q1(cur, "SELECT pg_backend_pid()")
        q(cur, "SET statement_timeout = %d" % int(timeout * 1000))
        io0, cpu0 = read_io(pid), read_cpu(pid)
        sampler = Sampler(pid)
        sampler.start()
        t0 = time.perf_counter()
        try:
            n = q1(cur, d.sql())
        finally:
            el = time.perf_counter() - t0
            sampler.stop.set()
            sampler.join()
        st, io1, cpu1 = read_status(pid), read_io(pid), read_cpu(pid)
        return {
            "seconds": el, "records": n, "cpu": cpu1 - cpu0,
            "anon_kb": max(sampler.anon, st.get("RssAnon", 0)),
            "file_kb": max(sampler.file, st.get("RssFile", 0)),
            "hwm_kb": st.get("VmHWM", 0),
            "syscw": io1.get("syscw", 0) - io0.get("syscw", 0),
            "wchar": io1.get("wchar", 0) - io0.get("wchar", 0),
        }
    finally:
        conn.close()


def profile_once(d, timeout, out_dir="/tmp"):
    out = os.path.join(out_dir, "sr_identity_perf_%s.data" % d.slot)
    conn = connect()
    try:
        cur = conn.cursor()
        pid = q1(cur, "SELECT pg_backend_pid()")
        q(cur, "SET statement_timeout = %d" % int(timeout * 1000))
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g", "-o", out,
                                 "-p", str(pid)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        t0 = time.perf_counter()
        q(cur, d.sql())
        el = time.perf_counter() - t0
        perf.send_signal(signal.SIGINT)
        perf.wait()
    finally:
        conn.close()
    print()
    print("== perf profile of %s (%.3fs under perf; %s)" % (d.name, el, out))
    for children, limit in ((False, 1.0), (True, 3.0)):
        rep = subprocess.run(["perf", "report", "-i", out, "--stdio",
                              "--children" if children else "--no-children",
                              "-g", "none", "--percent-limit", str(limit),
                              "--sort", "dso,symbol"],
                             capture_output=True, text=True)
        print("-- %s" % ("inclusive (with callees)" if children else "self"))
        for line in rep.stdout.splitlines():
            if line.strip() and not line.startswith("#") and "[.] 0x0000" not in line:
                print(line)


def compare_streams(dd, df, id_def, id_full, limit=3):
    """The DEFAULT decode's records against the FULL decode's, table names and
    shape ids mapped; B/C compared by count (their xid and lsn differ).
    Returns (records compared, list of problems)."""
    pos_def = {sid: i for i, sid in enumerate(id_def)}
    pos_full = {sid: i for i, sid in enumerate(id_full)}
    conns = [connect(False), connect(False)]
    curs = []
    for c, d in zip(conns, (dd, df)):
        cur = c.cursor("cmp_" + d.slot)
        cur.itersize = 20_000
        cur.execute("SELECT data FROM pg_logical_slot_peek_changes(%s, %s, NULL)",
                    (d.slot, d.end))
        curs.append(cur)

    def norm(it, pos, stats):
        for (data,) in it:
            rec = json.loads(data)
            a = rec["action"]
            stats[a] = stats.get(a, 0) + 1
            if a in ("B", "C"):
                continue
            rec.pop("table", None)
            if "shapes" in rec:
                rec["shapes"] = [pos.get(s, ("?", s)) for s in rec["shapes"]]
            if "shape" in rec:
                rec["shape"] = pos.get(rec["shape"], ("?", rec["shape"]))
            yield rec

    sd, sf = {}, {}
    problems = []
    n = 0
    it_d, it_f = norm(curs[0], pos_def, sd), norm(curs[1], pos_full, sf)
    sentinel = object()
    while True:
        a = next(it_d, sentinel)
        b = next(it_f, sentinel)
        if a is sentinel and b is sentinel:
            break
        n += 1
        if a != b and len(problems) < limit:
            problems.append("record %d: DEFAULT %s, FULL %s"
                            % (n, "(end)" if a is sentinel else json.dumps(a)[:300],
                               "(end)" if b is sentinel else json.dumps(b)[:300]))
        if (a is sentinel or b is sentinel) and len(problems) >= limit:
            break
    for cur in curs:
        cur.close()
    for c in conns:
        c.close()
    if sd != sf:
        problems.append("record counts per action: DEFAULT %s, FULL %s" % (sd, sf))
    return n, sd, problems


# --------------------------------------------------------------------------
# part 2: add_shape latency and lock time


class Writer(threading.Thread):
    """Updates random rows of t_lock, one autocommit statement at a time
    (2 ms apart), recording each statement's (start, end)."""

    def __init__(self, rows):
        super().__init__(daemon=True)
        self.rows = rows
        self.stop = threading.Event()
        self.spans = []
        self.error = None

    def run(self):
        import random
        rnd = random.Random(7)
        try:
            conn = connect()
            cur = conn.cursor()
            q(cur, "SET synchronous_commit = off")
            while not self.stop.is_set():
                i = rnd.randint(1, self.rows)
                t0 = time.perf_counter()
                cur.execute("UPDATE t_lock SET pad = pad + 1 WHERE id = %s", (i,))
                self.spans.append((t0, time.perf_counter()))
                self.stop.wait(0.002)
            conn.close()
        except psycopg2.Error as e:
            self.error = str(e).strip()

    def longest_in(self, t0, t1):
        """Longest writer statement that overlapped [t0, t1], in seconds."""
        return max((e - s for s, e in self.spans if e >= t0 and s <= t1), default=0.0)

    def baseline(self):
        return med([e - s for s, e in self.spans]) or 0.0


def lock_bench(p):
    conn = connect()
    cur = conn.cursor()
    nvals = max(1, p.lock_rows // 100)
    log("== part 2: t_lock, %d rows (REPLICA IDENTITY DEFAULT): g100 = %d values of "
        "~100 rows, g100k = %d values of ~100,000 rows"
        % (p.lock_rows, nvals, max(1, p.lock_rows // 100_000)))
    # (t_lock's 100,000-row values repeat: a second shape with the same
    # clause is a new shape with the same rows)
    q(cur, """CREATE TABLE t_lock (id bigint PRIMARY KEY, g100 int, g100k int,
                                   pad int, payload text)""")
    t0 = time.perf_counter()
    nk = max(1, p.lock_rows // 100_000)
    q(cur, """INSERT INTO t_lock SELECT g, (g::bigint * 7919) %% %(nv)s, g %% %(nk)s, 0,
                     md5(g::text) FROM generate_series(1, %(n)s) g""",
      {"nv": nvals, "nk": nk, "n": p.lock_rows})
    q(cur, "VACUUM ANALYZE t_lock")
    log("   loaded in %.1fs" % (time.perf_counter() - t0))
    writer = Writer(p.lock_rows)
    writer.start()
    a = connect(autocommit=False)
    acur = a.cursor()
    q(acur, "SET synchronous_commit = on")
    a.commit()
    results = []
    k100, k100k = [0], [0]

    def one(col, val):
        t0 = time.perf_counter()
        sid = q1(acur, "SELECT shape_router.add_shape('t_lock', %s)",
                 ("%s = %d" % (col, val),))
        t1 = time.perf_counter()
        a.commit()
        t2 = time.perf_counter()
        return sid, t1 - t0, t2 - t1, t2 - t0, (t0, t2)

    cases = [("g100", 100, False), ("g100k", 100_000, False),
             ("g100", 100, True), ("g100k", 100_000, True)]
    for col, nrows, indexed in cases:
        if indexed:
            q(cur, "CREATE INDEX IF NOT EXISTS t_lock_%s ON t_lock (%s)" % (col, col))
            q(cur, "ANALYZE t_lock")
        ctr, nv = (k100, nvals) if col == "g100" else (k100k, nk)
        # the matching rows, and the plan the search gets
        plan = q(cur, "EXPLAIN SELECT id FROM ONLY t_lock WHERE %s = %d"
                 % (col, ctr[0] % nv))
        plan = plan[0][0].strip()
        nmatch = q1(cur, "SELECT count(*) FROM t_lock WHERE %s = %d" % (col, ctr[0] % nv))
        time.sleep(0.3)
        one(col, ctr[0] % nv)   # warm-up, not counted
        ctr[0] += 1
        reps = []
        for _ in range(p.lock_reps):
            time.sleep(0.2)     # the writer runs unblocked between transactions
            reps.append(one(col, ctr[0] % nv))
            ctr[0] += 1
        time.sleep(0.1)         # the writer's last blocked statement is recorded
        r = {"column": col, "rows": nrows, "matched": nmatch, "index": indexed,
             "plan": plan,
             "call_ms": [x[1] * 1000 for x in reps],
             "commit_ms": [x[2] * 1000 for x in reps],
             "lock_ms": [x[3] * 1000 for x in reps],
             "writer_wait_ms": [writer.longest_in(*x[4]) * 1000 for x in reps]}
        results.append(r)
        log("   %-6s ~%-6d rows %-8s call %8.2f ms  commit %7.2f ms  lock %8.2f ms  "
            "writer waited %8.2f ms (medians of %d; plan: %s)"
            % (col, nrows, "index" if indexed else "no index", med(r["call_ms"]),
               med(r["commit_ms"]), med(r["lock_ms"]), med(r["writer_wait_ms"]),
               len(reps), plan.split("  ")[0]))
    writer.stop.set()
    writer.join()
    a.close()
    conn.close()
    if writer.error:
        fail("writer: %s" % writer.error)
    return results, writer.baseline() * 1000


# --------------------------------------------------------------------------


def installed_build():
    """mtime and size of the shape_router.so that new backends load."""
    try:
        lib = subprocess.run(["/usr/lib/postgresql/15/bin/pg_config", "--pkglibdir"],
                             capture_output=True, text=True).stdout.strip()
        st = os.stat(os.path.join(lib, "shape_router.so"))
        return "%s, %d bytes" % (time.strftime("%Y-%m-%d %H:%M:%S",
                                               time.gmtime(st.st_mtime)), st.st_size)
    except OSError as e:
        return str(e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="100,000 rows, 60,000 changes, 2,000 single-change "
                    "transactions, 3 runs (a smoke run)")
    ap.add_argument("--rows", type=int, help="rows per table (1,000,000)")
    ap.add_argument("--shapes", type=int, default=1000,
                    help="user_id = k shapes per table; user_id is uniform in "
                    "1..2*shapes, so half the rows are members")
    ap.add_argument("--ranges", type=int, default=5,
                    help="score BETWEEN shapes (2%% of rows each)")
    ap.add_argument("--changes", type=int,
                    help="changes of the multi workload (625,000: 500,000 updates)")
    ap.add_argument("--txn-min", type=int, default=10)
    ap.add_argument("--txn-max", type=int, default=100)
    ap.add_argument("--single", type=int,
                    help="single-change transactions (10,000)")
    ap.add_argument("--runs", type=int, help="timed decodes per slot (5)")
    ap.add_argument("--fsync-off-runs", type=int, default=2,
                    help="more decodes per slot with fsync=off (0: none)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--lock-rows", type=int, help="rows of t_lock (1,000,000)")
    ap.add_argument("--lock-reps", type=int, default=7)
    ap.add_argument("--no-lock", action="store_true", help="skip part 2")
    ap.add_argument("--no-check", action="store_true",
                    help="skip the DEFAULT = FULL record comparison")
    ap.add_argument("--profile", action="store_true",
                    help="after the table, one more decode of the two multi "
                    "workloads under perf record -g, with perf's top symbols")
    ap.add_argument("--json", help="also write the results to this file")
    a = ap.parse_args()
    if a.quick:
        a.rows = a.rows or 100_000
        a.changes = a.changes or 60_000
        a.single = a.single or 2_000
        a.runs = a.runs or 3
        a.lock_rows = a.lock_rows or 100_000
    a.rows = a.rows or 1_000_000
    a.changes = a.changes or 625_000
    a.single = a.single if a.single is not None else 10_000
    a.runs = a.runs or 5
    a.lock_rows = a.lock_rows or 1_000_000
    p = Params(a)
    t_start = time.perf_counter()
    build = installed_build()
    log("== installed shape_router.so: %s (UTC)" % build)

    conn = connect()
    cur = conn.cursor()
    ver = q1(cur, "SHOW server_version")
    datadir = q1(cur, "SHOW data_directory")
    gucs = dict(q(cur, "SELECT name, setting FROM pg_settings WHERE name IN "
                  "('fsync', 'full_page_writes', 'synchronous_commit', 'shared_buffers', "
                  "'wal_compression', 'logical_decoding_work_mem', 'checkpoint_timeout', "
                  "'max_wal_size')"))
    log("== server %s, %s; %d rows per table; %d + %d shapes per table; "
        "multi: %d changes in transactions of %d..%d; single: %d transactions; %d runs"
        % (ver, ", ".join("%s=%s" % kv for kv in sorted(gucs.items())), p.rows,
           p.shapes, p.ranges, p.changes, p.tmin, p.tmax, p.single, p.runs))
    q(cur, SCHEMA_SQL.replace("@ROW@", row_sql(p).replace("'", "''"))
      .replace("@SPAN@", str(SCORE_SPAN)))
    q(cur, "SELECT setseed(0.11)")
    t0 = time.perf_counter()
    q(cur, "INSERT INTO t_def SELECT g, %s FROM generate_series(1, %d) g"
      % (row_sql(p), p.rows))
    q(cur, "INSERT INTO t_full SELECT * FROM t_def ORDER BY id")
    q(cur, "VACUUM (FREEZE, ANALYZE) t_def")
    q(cur, "VACUUM (FREEZE, ANALYZE) t_full")
    log("== loaded %d rows into each table in %.1fs; t_def %s, t_full %s"
        % (p.rows, time.perf_counter() - t0,
           q1(cur, "SELECT pg_size_pretty(pg_table_size('t_def'))"),
           q1(cur, "SELECT pg_size_pretty(pg_table_size('t_full'))")))

    decs = [Decode("DEFAULT multi", "t_def", "multi", "idb_def"),
            Decode("FULL multi", "t_full", "multi", "idb_full"),
            Decode("DEFAULT single", "t_def", "single", "idb_def1"),
            Decode("FULL single", "t_full", "single", "idb_full1")]
    by = {(d.table, d.kind): d for d in decs}
    # The DEFAULT slots exist before the shapes, so they get the initial
    # members.  The FULL slots are created after them: a FULL table needs no
    # members, and every stream holds the membership of every non-FULL table
    # it has (t_def's too), so a FULL slot created earlier would carry
    # t_def's index as well and hide it from the memory difference.
    for d in decs:
        if d.table == "t_def":
            q(cur, "SELECT pg_create_logical_replication_slot(%s, 'shape_router')",
              (d.slot,))
    log("== DEFAULT slots created (before the shapes)")

    clauses = p.clauses()
    ids = {}
    for tbl in TABLES:
        t0 = time.perf_counter()
        ids[tbl] = q1(cur, "SELECT shape_router.add_shapes(%s, %s)", (tbl, clauses))
        log("   add_shapes(%s, %d clauses): %.2fs" % (tbl, len(clauses),
                                                      time.perf_counter() - t0))
    for d in decs:
        if d.table == "t_full":
            q(cur, "SELECT pg_create_logical_replication_slot(%s, 'shape_router')",
              (d.slot,))
    log("== FULL slots created (after the shapes: no members of t_def's shapes)")
    members0 = q1(cur, "SELECT count(*) FROM t_def WHERE %s" % p.member_pred())
    memberships0 = q1(cur, "SELECT sum((user_id <= %d)::int + (%s)::int) FROM t_def"
                      % (p.shapes, " OR ".join(p.member_pred().split(" OR ")[1:]) or "false"))
    log("   member keys on t_def: %d (%.2f shapes per member key)"
        % (members0, memberships0 / max(members0, 1)))

    # ---- the workloads, each after a CHECKPOINT, in its own WAL range
    first_id, low_id = p.rows + 1, 1
    avg = (p.tmin + p.tmax) / 2
    ntxn_multi = max(1, round(p.changes / avg))
    plan = [("multi", ntxn_multi, p.tmin, p.tmax, 0.4242),
            ("single", p.single, 1, 1, 0.4343)]
    for kind, ntxn, tmin, tmax, seed in plan:
        if ntxn == 0:
            continue
        counts = None
        for tbl in TABLES:
            d = by[(tbl, kind)]
            if tbl == "t_def":
                d.members = [q1(cur, "SELECT count(*) FROM t_def WHERE %s"
                                % p.member_pred()), None]
            q(cur, "CHECKPOINT")
            d.start = sync_marker(cur)
            c, secs = run_workload(p, cur, tbl, ntxn, tmin, tmax, first_id, low_id, seed)
            d.end = sync_marker(cur)
            d.wal = int(q1(cur, "SELECT pg_wal_lsn_diff(%s, %s)", (d.end, d.start)))
            d.changes = sum(c[:5])
            d.txns = ntxn
            if counts is not None and c != counts:
                fail("the workloads differ: %s %s, %s" % (kind, counts, c))
            counts = c
            if tbl == "t_def":
                d.members[1] = q1(cur, "SELECT count(*) FROM t_def WHERE %s"
                                  % p.member_pred())
            d.walstats, err = waldump_stats(datadir, d.start, d.end)
            if err:
                log("   pg_waldump: %s" % err)
            log("   %-15s %7d changes (ins %d, upd user_id %d, score %d, title %d, del %d) "
                "in %d transactions, %.1fs; WAL %.1f MB (%s .. %s)%s"
                % (d.name, d.changes, c[0], c[1], c[2], c[3], c[4], ntxn, secs,
                   d.wal / 1e6, d.start, d.end,
                   "; records %.1f MB + FPI %.1f MB" % (d.walstats["record_bytes"] / 1e6,
                                                       d.walstats["fpi_bytes"] / 1e6)
                   if d.walstats else ""))
        first_id, low_id = counts[5], counts[6]
    diff = q1(cur, "SELECT count(*) FROM ((TABLE t_def EXCEPT TABLE t_full) UNION ALL "
              "(TABLE t_full EXCEPT TABLE t_def)) x")
    log("== t_def and t_full after the workloads: %s"
        % ("identical" if diff == 0 else "%d rows differ" % diff))
    problems = []
    if diff:
        problems.append("t_def and t_full differ in %d rows after the same workloads" % diff)

    # ---- position each slot at its workload's first LSN
    t0 = time.perf_counter()
    for d in decs:
        q(cur, "SELECT count(*) FROM pg_logical_slot_get_changes(%s, %s, NULL)",
          (d.slot, decs[0].start))
    dd1 = by[("t_def", "single")]
    if dd1.start:
        # the DEFAULT single slot decodes the DEFAULT multi workload with the
        # plugin (its membership must follow it), then skips the FULL one
        q(cur, "SELECT count(*) FROM pg_logical_slot_get_changes(%s, %s, NULL)",
          (dd1.slot, by[("t_def", "multi")].end))
    for d in decs[1:]:
        if d.start:
            q(cur, "SELECT pg_replication_slot_advance(%s, %s)", (d.slot, d.start))
    log("== slots positioned at their workloads in %.1fs: %s"
        % (time.perf_counter() - t0,
           ", ".join("%s %s" % r for r in q(cur, "SELECT slot_name, confirmed_flush_lsn "
                                           "FROM pg_replication_slots ORDER BY 1"))))
    decs = [d for d in decs if d.start]

    # ---- checks (untimed): DEFAULT gives the FULL records
    if not a.no_check:
        log("== check: DEFAULT records = FULL records (shape ids mapped, B/C by count)")
        for kind in ("multi", "single"):
            dd, df = by[("t_def", kind)], by[("t_full", kind)]
            if not dd.start:
                continue
            t0 = time.perf_counter()
            n, stats, pr = compare_streams(dd, df, ids["t_def"], ids["t_full"])
            log("   %-6s %d records compared (%s) in %.1fs: %s"
                % (kind, n, " ".join("%s=%d" % kv for kv in sorted(stats.items())),
                   time.perf_counter() - t0, "equal" if not pr else "DIFFERENT"))
            for x in pr:
                log("      " + x)
            problems += ["%s: %s" % (kind, x) for x in pr]

    # ---- timed decodes, round robin
    log("== timed decodes: %d runs per slot, round robin, fresh backend each (fsync=on)"
        % p.runs)
    for r in range(p.runs):
        for d in decs:
            try:
                res = decode_once(d, a.timeout)
            except psycopg2.Error as e:
                fail("%s: decode failed: %s" % (d.name, str(e).strip()))
            if d.records is not None and res["records"] != d.records:
                problems.append("%s: %d records in one run, %d in another"
                                % (d.name, d.records, res["records"]))
            d.records = res["records"]
            d.runs.append(res)
            log("   run %d %-15s %8.3fs  cpu %7.3fs  %8d records  anon %6.1f MB  "
                "file %6.1f MB  hwm %6.1f MB  %6d writes %7.1f MB"
                % (r + 1, d.name, res["seconds"], res["cpu"], res["records"],
                   res["anon_kb"] / 1024, res["file_kb"] / 1024, res["hwm_kb"] / 1024,
                   res["syscw"], res["wchar"] / 1e6))
    if a.fsync_off_runs:
        q(cur, "ALTER SYSTEM SET fsync = off")
        q(cur, "SELECT pg_reload_conf()")
        time.sleep(0.5)
        c2 = connect()
        log("== %d more runs per slot with fsync=off (SHOW fsync: %s in a new session)"
            % (a.fsync_off_runs, q1(c2.cursor(), "SHOW fsync")))
        c2.close()
        for r in range(a.fsync_off_runs):
            for d in decs:
                res = decode_once(d, a.timeout)
                d.runs_off.append(res)
                log("   run %d %-15s %8.3fs  cpu %7.3fs  %6d writes"
                    % (r + 1, d.name, res["seconds"], res["cpu"], res["syscw"]))
        q(cur, "ALTER SYSTEM RESET fsync")
        q(cur, "SELECT pg_reload_conf()")

    # the slot's saved membership, on disk
    seg = {}
    for d in decs:
        if d.table != "t_def":
            continue
        files = q(cur, "SELECT name, size FROM pg_ls_dir(%s) name, "
                  "LATERAL (SELECT size FROM pg_stat_file(%s || '/' || name)) s "
                  "WHERE name LIKE 'shape_router.%%'",
                  ("pg_replslot/" + d.slot, "pg_replslot/" + d.slot))
        seg[d.kind] = files
    conn.close()

    lock = None
    writer_base = None
    if not a.no_lock:
        lock, writer_base = lock_bench(p)

    # ---- the table
    def m(d, key, runs=None):
        runs = d.runs if runs is None else runs
        return med([x[key] for x in runs]) if runs else None

    print()
    print("Default replica identity (issue 11): %d rows per table, %d shapes `user_id = k` "
          "+ %d range shapes per table; fsync=on, full_page_writes=%s; medians of %d runs"
          % (p.rows, p.shapes, p.ranges, gucs.get("full_page_writes"), p.runs))
    print()
    hdr = "%-16s %8s %6s %9s %9s %9s %9s %9s %8s %8s %8s %8s %8s" % (
        "workload", "changes", "txns", "WAL MB", "rec MB", "FPI MB", "decode s",
        "cpu s", "writes", "anon MB", "file MB", "hwm MB", "fsyncoff")
    print(hdr)
    print("-" * len(hdr))
    for d in decs:
        ws = d.walstats or {}
        print("%-16s %8d %6d %9.1f %9s %9s %9.3f %9.3f %8d %8.1f %8.1f %8.1f %8s" % (
            d.name, d.changes, d.txns, d.wal / 1e6,
            "%.1f" % (ws["record_bytes"] / 1e6) if ws else "-",
            "%.1f" % (ws["fpi_bytes"] / 1e6) if ws else "-",
            m(d, "seconds"), m(d, "cpu"), m(d, "syscw"), m(d, "anon_kb") / 1024,
            m(d, "file_kb") / 1024, m(d, "hwm_kb") / 1024,
            "%.3f" % m(d, "seconds", d.runs_off) if d.runs_off else "-"))
    print("decode s: median wall time of peek over exactly the workload's WAL; cpu s: "
          "the backend's user+system CPU in it; writes: its write() calls "
          "(/proc/pid/io syscw); anon/file MB: peak RssAnon / RssFile; hwm: VmHWM; "
          "fsyncoff: median decode with fsync=off (reload)")
    print()
    out = {"params": vars(a), "server": ver, "gucs": gucs, "problems": problems,
           "decodes": [], "ratios": {}, "lock": lock}
    print("ratios DEFAULT / FULL (target):")
    for kind in ("multi", "single"):
        dd, df = by[("t_def", kind)], by[("t_full", kind)]
        if not dd.runs or not df.runs:
            continue
        wal_r = dd.wal / df.wal
        rec_r = (dd.walstats["record_bytes"] / df.walstats["record_bytes"]
                 if dd.walstats and df.walstats else None)
        dec_r = m(dd, "seconds") / m(df, "seconds")
        cpu_r = m(dd, "cpu") / m(df, "cpu") if m(df, "cpu") else None
        off_r = (m(dd, "seconds", dd.runs_off) / m(df, "seconds", df.runs_off)
                 if dd.runs_off and df.runs_off else None)
        keys = max(dd.members)
        anon_pk = (m(dd, "anon_kb") - m(df, "anon_kb")) * 1024 / keys
        file_pk = (m(dd, "file_kb") - m(df, "file_kb")) * 1024 / keys
        hwm_pk = (m(dd, "hwm_kb") - m(df, "hwm_kb")) * 1024 / keys
        segs = [s for n, s in seg.get(kind, []) if n.endswith(".seg")]
        seg_pk = max(segs) / keys if segs else None
        redo = sum(s for n, s in seg.get(kind, []) if n.endswith(".redo"))
        hud_r = (dd.walstats["heap_upd_del_bytes"] / df.walstats["heap_upd_del_bytes"]
                 if dd.walstats and df.walstats and df.walstats["heap_upd_del_bytes"]
                 else None)
        print("  %-6s WAL %.3f (%.0f %% less; target >= 30 %% less)%s%s" % (
            kind, wal_r, (1 - wal_r) * 100,
            "; records without FPIs %.3f (%.0f %% less)" % (rec_r, (1 - rec_r) * 100)
            if rec_r else "",
            "; heap UPDATE/DELETE records alone %.3f (%.0f %% less; %.0f B against "
            "%.0f B per record)"
            % (hud_r, (1 - hud_r) * 100,
               dd.walstats["heap_upd_del_bytes"] / max(dd.walstats["heap_upd_del"], 1),
               df.walstats["heap_upd_del_bytes"] / max(df.walstats["heap_upd_del"], 1))
            if hud_r else ""))
        print("  %-6s decode %.2fx (target <= 1.0x); CPU %.2fx; with fsync=off %s; "
              "wall - CPU: DEFAULT %.3fs, FULL %.3fs"
              % (kind, dec_r, cpu_r or 0, "%.2fx" % off_r if off_r else "-",
                 m(dd, "seconds") - m(dd, "cpu"), m(df, "seconds") - m(df, "cpu")))
        print("  %-6s memory per member key (%d keys at the start, %d at the end; max "
              "used): RssAnon %+.1f B + RssFile %+.1f B (the mapped segment) = %+.1f B; "
              "VmHWM %+.1f B (target ~10-14 B); segment file %s B per key, redo log "
              "%.1f MB"
              % (kind, dd.members[0], dd.members[1], anon_pk, file_pk, anon_pk + file_pk,
                 hwm_pk, "%.1f" % seg_pk if seg_pk else "-", redo / 1e6))
        out["ratios"][kind] = {"wal": wal_r, "wal_records": rec_r,
                               "wal_heap_update_delete": hud_r, "decode": dec_r,
                               "cpu": cpu_r, "decode_fsync_off": off_r,
                               "anon_per_key": anon_pk, "file_per_key": file_pk,
                               "hwm_per_key": hwm_pk, "segment_per_key": seg_pk,
                               "member_keys": dd.members, "redo_bytes": redo}
    if lock:
        print()
        print("add_shape on t_lock (%d rows, DEFAULT), BEGIN; add_shape; COMMIT (synchronous), "
              "medians (max) of %d; a writer updating t_lock meanwhile (its statements "
              "take %.2f ms unblocked)" % (p.lock_rows, p.lock_reps, writer_base))
        hdr2 = "%-24s %9s %-30s %16s %16s %18s %18s" % (
            "shape", "matched", "search plan", "add_shape ms", "COMMIT ms",
            "lock held ms", "writer waited ms")
        print(hdr2)
        print("-" * len(hdr2))
        for r in lock:
            print("%-24s %9d %-30s %16s %16s %18s %18s" % (
                "%s = k, %s" % (r["column"], "index" if r["index"] else "no index"),
                r["matched"], r["plan"].split("  ")[0][:30],
                "%.2f (%.2f)" % (med(r["call_ms"]), max(r["call_ms"])),
                "%.2f (%.2f)" % (med(r["commit_ms"]), max(r["commit_ms"])),
                "%.2f (%.2f)" % (med(r["lock_ms"]), max(r["lock_ms"])),
                "%.2f (%.2f)" % (med(r["writer_wait_ms"]), max(r["writer_wait_ms"]))))
        print("lock held: from the add_shape call to the end of COMMIT (client side); "
              "writer waited: the writer's longest statement overlapping that transaction")
    print("total bench time %.0fs" % (time.perf_counter() - t_start))
    if installed_build() != build:
        print("WARNING: shape_router.so was reinstalled during the run (%s, now %s): "
              "later decodes used another build" % (build, installed_build()))

    for d in decs:
        out["decodes"].append({
            "name": d.name, "slot": d.slot, "start": d.start, "end": d.end,
            "wal_bytes": d.wal, "walstats": d.walstats, "changes": d.changes,
            "txns": d.txns, "members": d.members, "records": d.records,
            "runs": d.runs, "runs_fsync_off": d.runs_off})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)

    if a.profile:
        for d in decs:
            if d.kind == "multi":
                profile_once(d, a.timeout)

    if problems:
        for pr in problems:
            print("identity_bench: ERROR: %s" % pr, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
