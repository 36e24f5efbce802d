#!/usr/bin/python3
"""Writer throughput while shapes are added: add_shape against add_shape_concurrently.

Run by test/bench/concurrent.sh inside one throwaway cluster (pg_virtualenv
sets PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE), fsync on as in
identity.sh.  On a REPLICA IDENTITY DEFAULT table, add_shape() holds a SHARE
lock from its search to its commit, so writers queue behind every call;
CALL add_shape_concurrently() holds no lock that writers wait for.  This
measures what writers see in both cases.

Setup (once):

  * t(id bigint PRIMARY KEY, v int NOT NULL, pad int, payload text), REPLICA
    IDENTITY DEFAULT, --rows rows (1,000,000; 200,000 with --quick), v
    uniform in 0..rows/--per-shape - 1 (so a shape `v = k` matches
    --per-shape rows, 50 by default, ~10-100 in practice), an index on v;
    a sequence t_ins for the writers' inserts;
  * a logical slot sr_conc (plugin shape_router), created before any shape,
    so add_shape and add_shape_concurrently really write the initial members
    into the WAL and the stream really follows them.

One run (mode a, b or c), each the same:

  * before: every shape on t removed, the rows the previous run inserted
    deleted and the sequence reset, VACUUM ANALYZE t and the shape catalog,
    CHECKPOINT; then pg_recvlogical (--slot sr_conc, -s 1 -F 1, output to
    /dev/null) starts and the bench waits until its walsender has decoded
    up to the current WAL position (pg_stat_replication.sent_lsn), so no
    backlog is decoded during the run, and every run starts with 0 shapes;
  * writers: pgbench -n -c --clients -j --jobs -T --duration -l with a
    script that updates a random row by primary key to a random v (a move
    out of one shape value and into another), or, with probability
    --insert-pct %, inserts a new row; every statement in autocommit;
  * adder, started at the same moment, -T the same: nothing (a), or a second
    pgbench -n -R --rate -c --adder-clients -l running
    `SELECT shape_router.add_shape('t', 'v = ' || k)` (b) or
    `CALL shape_router.add_shape_concurrently('t', 'v = ' || k)` (c), k
    uniform over the values of v;
  * meanwhile and after: WAL written (and pg_stat_wal's records, FPIs,
    writes, fsyncs), the walsender's CPU time and its fsync / fdatasync /
    write / pwrite64 calls (perf stat on tracepoints, when run as root),
    how long the stream took to decode up to the run's last WAL position
    after it ended (catch-up), the shapes on t (any still pending, and any
    the adder completed that are missing), CPU time of the writers' and the
    adder's backends and what they wait for (pg_stat_activity and /proc,
    every 0.1 s; also whether the adder's backends hold an xmin), the
    machine's busy CPU (/proc/stat: other users' processes count too),
    server log lines with ERROR, FATAL, PANIC or "terminated by signal".

Diagnostics: --no-stream (no pg_recvlogical during the runs: separates the
walsender's CPU from the adder's own cost; the stream decodes each run
afterwards), --profile [MODES] (one more run of each mode under perf record
-a -g, after the table: the machine by process, the walsender, the adder's
and the writers' backends by symbol), --adder-clients, --rate, --modes.

Runs go round robin over the modes, --runs rounds (3), each round in a
rotated order (abc, bca, cab), so a noisy moment on a shared machine falls on
every mode.  The table shows every run and the medians per mode.

Per run, from pgbench's per-transaction logs: writer tps (pgbench's own,
without connection time), latency mean / p50 / p99 / p99.9 / max, the
number of writer transactions that took more than 10 ms, and the worst
one-second tps; for the adder, shapes added per second (its successful
transactions / duration, and the shapes left in the catalog), its call
latency (mean, p99, max) and pgbench's schedule lag (mean, max: how far
behind --rate it fell).

Targets (mode c against mode a, medians): writer tps within 10 %
(tps(c)/tps(a) >= 0.90), and no writer waiting more than 10 ms longer
because of a shape (max(c) - max(a) <= 10 ms and p99.9(c) - p99.9(a) <=
10 ms).  The same figures are shown for b, which is expected to miss them.
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg2

BIN = "/usr/lib/postgresql/15/bin"
SLOT = "sr_conc"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MODES = {
    "a": "no shapes added",
    "b": "add_shape (SHARE lock)",
    "c": "add_shape_concurrently",
}


def log(msg):
    print(msg, flush=True)


def fail(msg):
    print("concurrent_bench: ERROR: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def connect():
    conn = psycopg2.connect("")
    conn.autocommit = True
    return conn


def q(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


def q1(cur, sql, args=None):
    return q(cur, sql, args)[0][0]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def pct(sorted_xs, p):
    """The p-th percentile (nearest rank) of an ascending list."""
    if not sorted_xs:
        return None
    k = max(0, min(len(sorted_xs) - 1, int(round(p / 100.0 * len(sorted_xs) + 0.5)) - 1))
    return sorted_xs[k]


def installed_build():
    """mtime and size of the shape_router.so that new backends load."""
    try:
        lib = subprocess.run([BIN + "/pg_config", "--pkglibdir"],
                             capture_output=True, text=True).stdout.strip()
        st = os.stat(os.path.join(lib, "shape_router.so"))
        return "%s, %d bytes" % (time.strftime("%Y-%m-%d %H:%M:%S",
                                               time.gmtime(st.st_mtime)), st.st_size)
    except OSError as e:
        return str(e)


# --------------------------------------------------------------------------
# /proc


def proc_cpu(pid):
    """utime + stime of pid in seconds, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_io(pid):
    vals = {}
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                vals[k] = int(v)
    except OSError:
        pass
    return vals


WS_EVENTS = ["syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync",
             "syscalls:sys_enter_write", "syscalls:sys_enter_pwrite64"]


def start_syscall_count(pid, out):
    """perf stat counting pid's fsync/fdatasync/write/pwrite64 calls, or None."""
    if not pid or not shutil.which("perf") or os.geteuid() != 0:
        return None
    return subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-p", str(pid)] +
                            sum((["-e", e] for e in WS_EVENTS), []),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_syscall_count(p, out):
    if p is None:
        return None
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    res = {}
    try:
        with open(out) as f:
            for line in f:
                x = line.strip().split(",")
                if len(x) > 2 and x[0].isdigit():
                    res[x[2].split(":")[-1].replace("sys_enter_", "")] = int(x[0])
    except OSError:
        return None
    return res


def machine_cpu():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals) - idle, sum(vals)


class Sampler(threading.Thread):
    """Every interval seconds: the CPU time of the backends whose
    application_name is one of names (each one's last value is kept; a
    backend that exits loses at most its last interval), and what each
    active one is waiting for (pg_stat_activity wait_event_type:wait_event,
    "CPU" when it waits for nothing)."""

    def __init__(self, names, interval=0.1):
        super().__init__(daemon=True)
        self.names = list(names)
        self.interval = interval
        self.last = {}              # pid -> (name, cpu seconds)
        self.first = {}             # pid -> cpu seconds when first seen
        self.waits = {n: {} for n in names}     # name -> {wait: samples}
        self.xmin = {n: 0 for n in names}       # name -> active samples holding an xmin
        self.xmin_waiting = {n: 0 for n in names}   # ... while waiting for a lock
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            conn = connect()
            cur = conn.cursor()
            while not self.stop.is_set():
                for pid, name, wtype, wev, state, hasxmin in q(
                        cur, "SELECT pid, application_name, wait_event_type, wait_event, "
                        "state, backend_xmin IS NOT NULL FROM pg_stat_activity "
                        "WHERE application_name = ANY(%s)", (self.names,)):
                    c = proc_cpu(pid)
                    if c is not None:
                        self.first.setdefault(pid, c)
                        self.last[pid] = (name, c)
                    if state == "active":
                        w = "%s:%s" % (wtype, wev) if wtype else "CPU"
                        self.waits[name][w] = self.waits[name].get(w, 0) + 1
                        self.xmin[name] += bool(hasxmin)
                        self.xmin_waiting[name] += bool(hasxmin and wtype == "Lock")
                self.stop.wait(self.interval)
            conn.close()
        except psycopg2.Error as e:
            self.error = str(e).strip()

    def total(self, name):
        return sum(c - self.first.get(pid, 0) for pid, (n, c) in self.last.items()
                   if n == name)

    def xmin_share(self, name):
        """Share of the active samples holding an xmin, and of them waiting
        for a heavyweight lock."""
        tot = sum(self.waits[name].values())
        return (self.xmin[name] / tot if tot else None,
                self.xmin_waiting[name] / tot if tot else None)

    def pids(self, name):
        return [pid for pid, (n, _) in self.last.items() if n == name]

    def wait_share(self, name):
        """{wait: share of the active samples}, largest first."""
        w = self.waits[name]
        tot = sum(w.values())
        return dict(sorted(((k, v / tot) for k, v in w.items()), key=lambda kv: -kv[1])) \
            if tot else {}


# --------------------------------------------------------------------------
# setup


SCHEMA_SQL = """
CREATE EXTENSION shape_router;
CREATE TABLE t (
    id bigint PRIMARY KEY,
    v int NOT NULL,
    pad int NOT NULL DEFAULT 0,
    payload text
);
ALTER TABLE t REPLICA IDENTITY DEFAULT;
"""

WRITER_SQL = r"""\set id random(1, :rows)
\set nv random(0, :nvals - 1)
\if random(1, 100) <= :ins_pct
INSERT INTO t (id, v, payload) VALUES (nextval('t_ins'), :nv, md5(:id::text));
\else
UPDATE t SET v = :nv, pad = pad + 1 WHERE id = :id;
\endif
"""

ADDER_SQL = {
    "b": "\\set k random(0, :nvals - 1)\n"
         "SELECT shape_router.add_shape('t', 'v = ' || :k);\n",
    "c": "\\set k random(0, :nvals - 1)\n"
         "CALL shape_router.add_shape_concurrently('t', 'v = ' || :k);\n",
}


def setup(a, cur):
    q(cur, SCHEMA_SQL)
    q(cur, "SELECT setseed(0.4242)")
    t0 = time.perf_counter()
    q(cur, "INSERT INTO t (id, v, payload) SELECT g, floor(random() * %s)::int, md5(g::text) "
      "FROM generate_series(1, %s) g", (a.nvals, a.rows))
    q(cur, "CREATE INDEX t_v ON t (v)")
    q(cur, "CREATE SEQUENCE t_ins START %s" % (a.rows + 1))
    q(cur, "VACUUM (FREEZE, ANALYZE) t")
    per = q(cur, "SELECT min(n), percentile_cont(0.5) WITHIN GROUP (ORDER BY n), max(n) "
            "FROM (SELECT count(*) n FROM t GROUP BY v) x")[0]
    log("== loaded %d rows in %.1fs (%s); %d values of v, rows per value min %d, "
        "median %d, max %d" % (a.rows, time.perf_counter() - t0,
                                q1(cur, "SELECT pg_size_pretty(pg_table_size('t'))"),
                                a.nvals, per[0], per[1], per[2]))
    q(cur, "SELECT pg_create_logical_replication_slot(%s, 'shape_router')", (SLOT,))
    log("== slot %s (shape_router) created before any shape" % SLOT)


def reset_table(a, cur):
    """Every run starts from the same state: no shapes, --rows rows, vacuumed."""
    removed = q1(cur, "SELECT count(*) FILTER (WHERE shape_router.remove_shape(shape_id)) "
                 "FROM shape_router.shapes WHERE relid = 't'::regclass")
    q(cur, "DELETE FROM t WHERE id > %s", (a.rows,))
    q(cur, "SELECT setval('t_ins', %s, false)", (a.rows + 1,))
    q(cur, "VACUUM (ANALYZE) t")
    q(cur, "VACUUM shape_router.shapes")
    q(cur, "CHECKPOINT")
    return removed


# --------------------------------------------------------------------------
# the stream


def stat_wal(cur):
    """pg_stat_wal's counters (records, full-page images, bytes, XLogWrite
    calls, WAL fsyncs)."""
    r = q(cur, "SELECT wal_records, wal_fpi, wal_bytes, wal_write, wal_sync FROM pg_stat_wal")[0]
    return dict(zip(("records", "fpi", "bytes", "write", "sync"), map(int, r)))


def walsender(cur):
    r = q(cur, "SELECT pid, sent_lsn FROM pg_stat_replication WHERE application_name = "
          "'pg_recvlogical'")
    return r[0] if r else (None, None)


def wait_decoded(cur, lsn, recv, timeout):
    """Seconds until the walsender has decoded up to lsn (sent_lsn >= lsn),
    or None after timeout or if pg_recvlogical exited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if recv.poll() is not None:
            return None
        ok = q1(cur, "SELECT sent_lsn >= %s FROM pg_stat_replication "
                "WHERE application_name = 'pg_recvlogical'", (lsn,))
        if ok:
            return time.perf_counter() - t0
        time.sleep(0.05)
    return None


def start_recv(workdir, tag):
    err = open(os.path.join(workdir, "recv_%s.err" % tag), "w")
    p = subprocess.Popen([BIN + "/pg_recvlogical", "-d", os.environ.get("PGDATABASE", "postgres"),
                          "--slot", SLOT, "--start", "-s", "1", "-F", "1", "-f", "-"],
                         stdout=subprocess.DEVNULL, stderr=err)
    p.errfile = err
    return p


def stop_recv(p):
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    p.errfile.close()
    with open(p.errfile.name) as f:
        return f.read().strip()


# --------------------------------------------------------------------------
# pgbench


def pgbench(args, appname, workdir, tag):
    env = dict(os.environ, PGAPPNAME=appname)
    out = open(os.path.join(workdir, "%s.out" % tag), "w")
    err = open(os.path.join(workdir, "%s.err" % tag), "w")
    p = subprocess.Popen([BIN + "/pgbench"] + args, env=env, stdout=out, stderr=err,
                         cwd=workdir)
    p.files = (out, err)
    return p


def pgbench_wait(p, timeout):
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    for f in p.files:
        f.close()
    with open(p.files[0].name) as f:
        out = f.read()
    with open(p.files[1].name) as f:
        err = f.read()
    return rc, out, err


def parse_summary(out):
    res = {}
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    if m:
        res["tps"] = float(m.group(1))
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    if m:
        res["processed"] = int(m.group(1))
    m = re.search(r"number of failed transactions: (\d+)", out)
    if m:
        res["failed"] = int(m.group(1))
    m = re.search(r"number of transactions skipped: (\d+)", out)
    if m:
        res["skipped"] = int(m.group(1))
    m = re.search(r"rate limit schedule lag: avg ([\d.]+) \(max ([\d.]+)\) ms", out)
    if m:
        res["lag_avg_ms"], res["lag_max_ms"] = float(m.group(1)), float(m.group(2))
    m = re.search(r"latency average = ([\d.]+) ms", out)
    if m:
        res["latency_avg_ms"] = float(m.group(1))
    return res


def read_log(prefix):
    """(latency ms (from the scheduled start with -R), completion epoch
    seconds, schedule lag ms or None) of every
    completed transaction in pgbench's -l files prefix.*; and the number of
    lines that were not a completed transaction (failed, skipped)."""
    rows, other = [], 0
    for fn in glob.glob(prefix + ".*"):
        with open(fn) as f:
            for line in f:
                x = line.split()
                if len(x) < 6 or not x[2].isdigit():
                    other += 1
                    continue
                lag = int(x[6]) / 1000.0 if len(x) > 6 and x[6].isdigit() else None
                rows.append((int(x[2]) / 1000.0, int(x[4]) + int(x[5]) / 1e6, lag))
    return rows, other


def latency_stats(rows, slow_ms):
    lat = sorted(r[0] for r in rows)
    if not lat:
        return {"n": 0}
    return {"n": len(lat), "mean": statistics.fmean(lat), "p50": pct(lat, 50),
            "p99": pct(lat, 99), "p999": pct(lat, 99.9), "max": lat[-1],
            "slow": sum(1 for x in lat if x > slow_ms)}


def worst_second(rows):
    """Transactions completed in the slowest whole second (the first and last
    second of the run, partial, left out)."""
    if not rows:
        return None
    t0 = min(r[1] for r in rows)
    buckets = {}
    for r in rows:
        b = int(r[1] - t0)
        buckets[b] = buckets.get(b, 0) + 1
    full = [buckets.get(b, 0) for b in range(1, max(buckets))]
    return min(full) if full else None


# --------------------------------------------------------------------------
# one run


def one_run(a, cur, mode, rnd, workdir, logfile, profile=False):
    tag = "%s%d" % (mode, rnd) if not profile else "%sprof" % mode
    removed = reset_table(a, cur)
    recv = start_recv(workdir, tag)
    lsn0 = q1(cur, "SELECT pg_current_wal_lsn()")
    t0 = time.perf_counter()
    while walsender(cur)[0] is None:
        if recv.poll() is not None or time.perf_counter() - t0 > 30:
            fail("pg_recvlogical did not start: %s" % stop_recv(recv))
        time.sleep(0.05)
    w = wait_decoded(cur, lsn0, recv, a.timeout)
    if w is None:
        fail("the stream did not decode up to %s before run %s: %s"
             % (lsn0, tag, stop_recv(recv)))
    if a.no_stream:
        # diagnostics only: the slot is current, but nothing decodes during the run
        stop_recv(recv)
        recv = None
    time.sleep(0.5)
    ws_pid = walsender(cur)[0] if recv else None
    ws_cpu0 = proc_cpu(ws_pid) if ws_pid else None
    ws_io0 = proc_io(ws_pid) if ws_pid else {}
    sysc_out = os.path.join(workdir, "ws_syscalls_%s.csv" % tag)
    sysc = start_syscall_count(ws_pid, sysc_out)
    log_pos = os.path.getsize(logfile) if logfile else 0
    m0 = machine_cpu()
    lsn_start = q1(cur, "SELECT pg_current_wal_lsn()")
    statwal0 = stat_wal(cur)
    sampler = Sampler(["sr_writer", "sr_adder"])
    sampler.start()
    perf = None
    if profile:
        perf_data = os.path.join(workdir, "perf_%s.data" % tag)
        perf = subprocess.Popen(["perf", "record", "-q", "-a", "-g", "-F", "499", "-o",
                                 perf_data], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    wprefix = os.path.join(workdir, "w_" + tag)
    wargs = ["-n", "-f", os.path.join(workdir, "writer.sql"), "-c", str(a.clients),
             "-j", str(a.jobs), "-T", str(a.duration), "-l", "--log-prefix", wprefix,
             "-D", "rows=%d" % a.rows, "-D", "nvals=%d" % a.nvals,
             "-D", "ins_pct=%d" % a.insert_pct]
    procs = [pgbench(wargs, "sr_writer", workdir, "w_" + tag)]
    aprefix = os.path.join(workdir, "a_" + tag)
    if mode != "a":
        aargs = ["-n", "-f", os.path.join(workdir, "adder_%s.sql" % mode),
                 "-c", str(a.adder_clients), "-j", "1", "-R", str(a.rate),
                 "-T", str(a.duration), "-l", "--log-prefix", aprefix,
                 "-D", "nvals=%d" % a.nvals]
        procs.append(pgbench(aargs, "sr_adder", workdir, "a_" + tag))
    t_start = time.time()
    results = [pgbench_wait(p, a.duration + 120) for p in procs]
    t_end = time.time()
    lsn_end = q1(cur, "SELECT pg_current_wal_lsn()")
    statwal = {k: v - statwal0[k] for k, v in stat_wal(cur).items()}
    m1 = machine_cpu()
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    sampler.stop.set()
    sampler.join()
    ws_sys = stop_syscall_count(sysc, sysc_out)
    ws_io1 = proc_io(ws_pid) if ws_pid else {}
    if recv is None:
        recv = start_recv(workdir, tag + "_after")
        t0 = time.perf_counter()
        while walsender(cur)[0] is None and recv.poll() is None \
                and time.perf_counter() - t0 < 30:
            time.sleep(0.05)
        ws_pid = walsender(cur)[0]
        ws_cpu0 = proc_cpu(ws_pid) if ws_pid else None
        ws_cpu_run = None
    else:
        ws_cpu_run = (proc_cpu(ws_pid) or 0) - (ws_cpu0 or 0)
    catchup = wait_decoded(cur, lsn_end, recv, a.timeout)
    ws_cpu_all = (proc_cpu(ws_pid) or 0) - (ws_cpu0 or 0) if ws_pid else None
    recv_alive = recv.poll() is None
    recv_err = stop_recv(recv)
    shapes = q(cur, "SELECT count(*) FILTER (WHERE NOT pending), count(*) FILTER (WHERE pending) "
               "FROM shape_router.shapes WHERE relid = 't'::regclass")[0]
    wal = int(q1(cur, "SELECT pg_wal_lsn_diff(%s, %s)", (lsn_end, lsn_start)))

    problems = []
    server_log = []
    if logfile:
        with open(logfile, errors="replace") as f:
            f.seek(log_pos)
            for line in f:
                if re.search(r"\b(ERROR|FATAL|PANIC)\b|terminated by signal|TRAP", line):
                    server_log.append(line.rstrip())
    if not recv_alive:
        problems.append("run %s: pg_recvlogical exited during the run: %s" % (tag, recv_err))
    if catchup is None and recv_alive:
        problems.append("run %s: the stream did not decode up to %s within %ss"
                        % (tag, lsn_end, a.timeout))
    if shapes[1]:
        problems.append("run %s: %d shapes still pending after the run" % (tag, shapes[1]))
    if sampler.error:
        problems.append("run %s: CPU sampler: %s" % (tag, sampler.error))

    res = {"mode": mode, "round": rnd, "tag": tag, "removed_before": removed,
           "wal_bytes": wal, "walsender_cpu": ws_cpu_run, "walsender_cpu_with_catchup":
           ws_cpu_all, "catchup_s": catchup, "machine_busy": (m1[0] - m0[0]) /
           max(1, m1[1] - m0[1]), "wall_s": t_end - t_start,
           "walsender_syscalls": ws_sys, "stat_wal": statwal,
           "walsender_write_bytes": ws_io1.get("write_bytes", 0) - ws_io0.get("write_bytes", 0)
           if ws_io0 else None,
           "writer_backend_cpu": sampler.total("sr_writer"),
           "adder_backend_cpu": sampler.total("sr_adder"),
           "writer_waits": sampler.wait_share("sr_writer"),
           "adder_waits": sampler.wait_share("sr_adder"),
           "adder_xmin": sampler.xmin_share("sr_adder"),
           "writer_lock_wait": sum(v for k, v in sampler.wait_share("sr_writer").items()
                                   if k.startswith("Lock:")),
           "shapes_after": shapes[0], "server_log": server_log[:50]}
    names = ["writer", "adder"]
    for name, p, (rc, out, err) in zip(names, procs, results):
        summ = parse_summary(out)
        rows, other = read_log(wprefix if name == "writer" else aprefix)
        if name == "adder":
            # with -R, pgbench's latency counts from the scheduled start: the
            # call itself is that minus the schedule lag
            rows = [(l - (g or 0), t, g) for l, t, g in rows]
        st = latency_stats(rows, a.slow_ms)
        lags = sorted(r[2] for r in rows if r[2] is not None)
        st.update({"rc": rc, "summary": summ, "other_lines": other,
                   "worst_second": worst_second(rows), "lag_mean": statistics.fmean(lags)
                   if lags else None, "lag_max": lags[-1] if lags else None,
                   "stderr": [l for l in err.splitlines()
                              if l.strip() and not l.startswith("pgbench (")][:20]})
        st["rate"] = st["n"] / a.duration
        res[name] = st
        if rc != 0:
            problems.append("run %s: %s pgbench exited %d: %s"
                            % (tag, name, rc, " | ".join(
                                [l for l in st["stderr"] if "NOTICE" not in l][:5])))
    if mode != "a":
        ad = res["adder"]
        ad["removed_notices"] = sum(1 for l in results[1][2].splitlines()
                                    if "left pending" in l)
        ad["errors"] = sorted({m.group(1) for l in results[1][2].splitlines()
                               for m in [re.search(r"ERROR:\s+(.*)", l)] if m})
        ad["lost"] = ad["n"] - shapes[0]
        if ad["lost"]:
            problems.append("run %s: the adder's calls completed %d times but %d shapes are on t "
                            "(%d NOTICEs 'removed shape ..., which an add_shape_concurrently() "
                            "that did not finish left pending'); errors: %s"
                            % (tag, ad["n"], shapes[0], ad["removed_notices"],
                               "; ".join(ad["errors"]) or "none"))
    res["problems"] = problems
    wr = res["writer"]
    ad = res.get("adder")
    log("   run %-3s %-24s writers %7.1f tps  lat mean %6.2f p99 %6.2f p99.9 %7.2f max %7.2f ms"
        "  >%gms %5d  worst s %5s%s  | walsender %.1fs cpu, catch-up %s, busy %.0f %%"
        % (tag, MODES[mode], wr["summary"].get("tps", 0), wr["mean"], wr["p99"], wr["p999"],
           wr["max"], a.slow_ms, wr["slow"], wr["worst_second"],
           "  | adder %d ok (%.1f/s), call mean %.1f p99 %.1f max %.1f ms, lag mean %.1f "
           "max %.1f ms, %d shapes" % (ad["n"], ad["rate"], ad.get("mean", 0),
                                       ad.get("p99", 0), ad.get("max", 0),
                                       ad["lag_mean"] or 0, ad["lag_max"] or 0,
                                       shapes[0]) if ad else "",
           ws_cpu_run or 0, "%.2fs" % catchup if catchup is not None else "-",
           100 * res["machine_busy"]))
    log("      WAL during the run: %.1f MB, %d records, %d FPIs, %d writes, %d fsyncs "
        "(pg_stat_wal)" % (statwal["bytes"] / 1e6, statwal["records"], statwal["fpi"],
                           statwal["write"], statwal["sync"]))
    if ws_sys:
        log("      walsender during the run: %s; %.1f MB written to storage"
            % (", ".join("%s %d" % kv for kv in sorted(ws_sys.items())),
               (res["walsender_write_bytes"] or 0) / 1e6))
    log("      writers' wait events (share of active samples): %s"
        % ", ".join("%s %.0f %%" % (k, 100 * v)
                    for k, v in list(res["writer_waits"].items())[:5]))
    if ad:
        xs, xw = res["adder_xmin"]
        log("      adder's wait events: %s; holding an xmin in %s of its active samples "
            "(%s while waiting for a lock)"
            % (", ".join("%s %.0f %%" % (k, 100 * v)
                         for k, v in list(res["adder_waits"].items())[:5]),
               "%.0f %%" % (100 * xs) if xs is not None else "-",
               "%.0f %%" % (100 * xw) if xw is not None else "-"))
    for line in server_log[:10]:
        log("      server log: " + line)
    if perf:
        res["perf_report"] = perf_report(perf_data, mode, ws_pid, sampler.pids("sr_adder"),
                                         sampler.pids("sr_writer"))
    for pr in problems:
        log("      PROBLEM: " + pr)
    return res


def perf_report(data, mode, ws_pid, adder_pids, writer_pids):
    """perf's self-time tables of a profiled run, as text."""
    lines = ["", "== perf profile of a mode %s run, %s (perf record -a -g, 499 Hz; %s, kept with --keep)"
             % (mode, MODES[mode], data)]

    def show(title, extra, sort, limit, children=False):
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio",
                              "--children" if children else "--no-children",
                              "--percentage", "relative", "-g", "none",
                              "--percent-limit", str(limit), "--sort", sort] + extra,
                             capture_output=True, text=True)
        lines.append("-- %s" % title)
        for line in rep.stdout.splitlines():
            if line.strip() and not line.startswith("#") and "[.] 0x0000" not in line:
                lines.append(line)

    show("the whole machine, by process name (other users' processes too)", [], "comm", 1.0)
    if ws_pid:
        show("the walsender (pid %d), self" % ws_pid, ["--pid", str(ws_pid)], "dso,symbol", 1.5)
        show("the walsender, inclusive (with callees)", ["--pid", str(ws_pid)], "dso,symbol",
             4.0, children=True)
    if adder_pids:
        show("the adder's backends, self", ["--pid", ",".join(map(str, adder_pids))],
             "dso,symbol", 1.5)
        show("the adder's backends, inclusive", ["--pid", ",".join(map(str, adder_pids))],
             "dso,symbol", 5.0, children=True)
    if writer_pids:
        show("the writers' backends, self", ["--pid", ",".join(map(str, writer_pids))],
             "dso,symbol", 1.5)
    return "\n".join(lines)


# --------------------------------------------------------------------------
# report


def summarize(a, runs):
    by = {m: [r for r in runs if r["mode"] == m] for m in a.modes}

    def mw(m, key):
        return med([r["writer"].get(key) for r in by[m]])

    def mtps(m):
        return med([r["writer"]["summary"].get("tps") for r in by[m]])

    def ma(m, key):
        return med([r["adder"].get(key) for r in by[m] if r.get("adder")])

    summary = {}
    for m in a.modes:
        if not by[m]:
            continue
        s = {"runs": len(by[m]), "tps": mtps(m), "mean": mw(m, "mean"), "p50": mw(m, "p50"),
             "p99": mw(m, "p99"), "p999": mw(m, "p999"), "max": mw(m, "max"),
             "slow": mw(m, "slow"), "worst_second": mw(m, "worst_second"),
             "walsender_cpu": med([r["walsender_cpu"] for r in by[m]]),
             "walsender_fsyncs": med([(r["walsender_syscalls"] or {}).get("fsync", 0) +
                                      (r["walsender_syscalls"] or {}).get("fdatasync", 0)
                                      for r in by[m] if r["walsender_syscalls"]]),
             "adder_lost": med([r["adder"]["lost"] for r in by[m] if r.get("adder")]),
             "catchup_s": med([r["catchup_s"] for r in by[m]]),
             "wal_mb": med([r["wal_bytes"] / 1e6 for r in by[m]]),
             "wal_fsyncs": med([r["stat_wal"]["sync"] for r in by[m]]),
             "machine_busy": med([r["machine_busy"] for r in by[m]]),
             "writer_backend_cpu": med([r["writer_backend_cpu"] for r in by[m]]),
             "adder_backend_cpu": med([r["adder_backend_cpu"] for r in by[m]]),
             "writer_lock_wait": med([r["writer_lock_wait"] for r in by[m]])}
        if m != "a":
            s.update({"added_per_s": ma(m, "rate"),
                      "shapes_after": med([r["shapes_after"] for r in by[m]]),
                      "add_mean": ma(m, "mean"), "add_p99": ma(m, "p99"),
                      "add_max": ma(m, "max"), "lag_mean": ma(m, "lag_mean"),
                      "lag_max": ma(m, "lag_max")})
        summary[m] = s
    # per-round ratios too: each round's modes ran back to back
    rounds = {}
    for r in runs:
        rounds.setdefault(r["round"], {})[r["mode"]] = r
    comp = {}
    base = summary.get("a")
    for m in ("b", "c"):
        if m not in summary or not base:
            continue
        s = summary[m]
        per_round = [rd[m]["writer"]["summary"].get("tps") / rd["a"]["writer"]["summary"]["tps"]
                     for rd in rounds.values() if m in rd and "a" in rd
                     and rd["a"]["writer"]["summary"].get("tps")]
        comp[m] = {"tps_ratio": s["tps"] / base["tps"] if base["tps"] else None,
                   "tps_ratio_per_round": per_round,
                   "max_minus_base_ms": s["max"] - base["max"],
                   "p999_minus_base_ms": s["p999"] - base["p999"],
                   "p99_minus_base_ms": s["p99"] - base["p99"]}
        c = comp[m]
        c["tps_target_met"] = c["tps_ratio"] is not None and c["tps_ratio"] >= 1 - a.tps_target
        c["wait_target_met"] = (c["max_minus_base_ms"] <= a.wait_target_ms
                                and c["p999_minus_base_ms"] <= a.wait_target_ms)
        c["rate_kept"] = (s["added_per_s"] or 0) >= 0.95 * a.rate
    return summary, comp


def print_table(a, runs, summary, comp, hdr_info):
    print()
    print("Writers while shapes are added at -R %g/s: %s" % (a.rate, hdr_info))
    print()
    hdr = ("%-5s %-24s %8s %6s %6s %6s %7s %7s %6s %6s %5s | %7s %6s %6s %7s %7s %7s %6s "
           "| %6s %6s %5s" % (
               "run", "mode", "tps", "mean", "p50", "p99", "p99.9", "max", ">%gms" % a.slow_ms,
               "worst", "lock", "added/s", "shapes", "add", "add p99", "add max", "lag max",
               "ad cpu", "ws cpu", "catch", "busy"))
    print(hdr)
    print("-" * len(hdr))

    def fmt(x, f="%.2f"):
        return f % x if x is not None else "-"

    def row(label, mode, w, ad, tps, wscpu, catch, busy, added, shapes, adcpu, lock):
        print("%-5s %-24s %8s %6s %6s %6s %7s %7s %6s %6s %5s | %7s %6s %6s %7s %7s %7s %6s "
              "| %6s %6s %5s" % (
                  label, MODES[mode], fmt(tps, "%.1f"), fmt(w["mean"]), fmt(w["p50"]),
                  fmt(w["p99"]), fmt(w["p999"]), fmt(w["max"]), fmt(w["slow"], "%d"),
                  fmt(w["worst_second"], "%d"), fmt(100 * lock, "%.0f%%"),
                  fmt(added, "%.1f") if ad else "-", fmt(shapes, "%d") if ad else "-",
                  fmt(ad and ad["mean"], "%.1f") if ad else "-",
                  fmt(ad and ad["p99"], "%.1f") if ad else "-",
                  fmt(ad and ad["max"], "%.1f") if ad else "-",
                  fmt(ad and ad["lag_max"], "%.0f") if ad else "-",
                  fmt(adcpu, "%.1f") if ad else "-",
                  fmt(wscpu, "%.1f"), fmt(catch, "%.2f"), fmt(100 * busy, "%.0f%%")))

    for r in runs:
        ad = r.get("adder")
        row(r["tag"], r["mode"], r["writer"], ad and {"mean": ad.get("mean"),
            "p99": ad.get("p99"), "max": ad.get("max"), "lag_max": ad["lag_max"]},
            r["writer"]["summary"].get("tps"), r["walsender_cpu"], r["catchup_s"],
            r["machine_busy"], ad and ad["rate"], r["shapes_after"],
            r["adder_backend_cpu"], r["writer_lock_wait"])
    print("-" * len(hdr))
    for m, s in summary.items():
        ad = ({"mean": s["add_mean"], "p99": s["add_p99"], "max": s["add_max"],
               "lag_max": s["lag_max"]} if m != "a" else None)
        row("med", m, s, ad, s["tps"], s["walsender_cpu"], s["catchup_s"], s["machine_busy"],
            s.get("added_per_s"), s.get("shapes_after"), s["adder_backend_cpu"],
            s["writer_lock_wait"])
    print("tps: pgbench's (without connection time); mean/p50/p99/p99.9/max: writer latency, "
          "ms, from the -l logs; >%gms: writer transactions slower than that; worst: "
          "transactions completed in the slowest whole second; lock: share of the writers' "
          "active samples (pg_stat_activity, every 0.1 s) waiting for a heavyweight lock; "
          "added/s: the adder's "
          "completed calls / duration; shapes: shapes on t after the run; add, add p99, "
          "add max: the adder's call latency (pgbench's minus the schedule lag), ms; lag max: pgbench's schedule lag, ms "
          "(how far behind -R); ad cpu: CPU seconds of the adder's backends; ws cpu: the "
          "walsender's CPU seconds during the run; catch: seconds the stream needed "
          "after the run to decode up to its last WAL; busy: machine CPU busy (all "
          "processes, %d CPUs); med: medians per mode" % (a.slow_ms, os.cpu_count()))
    print()
    for m, c in comp.items():
        s = summary[m]
        print("%s vs %s: tps %.3f (per round %s; target >= %.2f: %s); writer max %+.2f ms, "
              "p99.9 %+.2f ms, p99 %+.2f ms against the baseline (target <= +%g ms: %s); "
              "adder %.1f shapes/s of %g (%s), %s shapes missing afterwards (median)"
              % (MODES[m], MODES["a"], c["tps_ratio"],
                 ", ".join("%.3f" % x for x in c["tps_ratio_per_round"]),
                 1 - a.tps_target, "met" if c["tps_target_met"] else "MISSED",
                 c["max_minus_base_ms"], c["p999_minus_base_ms"], c["p99_minus_base_ms"],
                 a.wait_target_ms, "met" if c["wait_target_met"] else "MISSED",
                 s["added_per_s"] or 0, a.rate,
                 "kept up" if c["rate_kept"] else "fell behind", s["adder_lost"]))
    print("targets apply to add_shape_concurrently; add_shape is shown for comparison.")


# --------------------------------------------------------------------------


def main():
    ncpu = os.cpu_count() or 2
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="200,000 rows, 8 s runs, 1 round (a smoke run)")
    ap.add_argument("--rows", type=int, help="rows of t (1,000,000; 200,000 with --quick)")
    ap.add_argument("--per-shape", type=int, default=50,
                    help="rows per value of v, so rows per shape (50)")
    ap.add_argument("--duration", type=int, help="-T of every pgbench, s (25; 8 with --quick)")
    ap.add_argument("--runs", type=int, help="rounds of the three modes (3; 1 with --quick)")
    ap.add_argument("--modes", default="abc", help="which modes (abc)")
    ap.add_argument("--clients", type=int, default=min(8, max(4, 2 * ncpu)),
                    help="writer clients (2 x nproc, 4..8: %(default)s here)")
    ap.add_argument("--jobs", type=int, default=min(4, ncpu),
                    help="writer pgbench threads (nproc, at most 4: %(default)s here)")
    ap.add_argument("--insert-pct", type=int, default=10,
                    help="share of writer transactions that insert (10)")
    ap.add_argument("--rate", type=float, default=100, help="shapes per second, -R (100)")
    ap.add_argument("--adder-clients", type=int, default=4,
                    help="adder pgbench clients sharing -R (4)")
    ap.add_argument("--slow-ms", type=float, default=10)
    ap.add_argument("--tps-target", type=float, default=0.10,
                    help="allowed writer tps loss of mode c (0.10)")
    ap.add_argument("--wait-target-ms", type=float, default=10)
    ap.add_argument("--timeout", type=float, default=300,
                    help="seconds to wait for the stream to catch up (300)")
    ap.add_argument("--no-stream", action="store_true",
                    help="diagnostics: no pg_recvlogical during the runs (the stream "
                    "decodes each run afterwards; catch is then the whole decode)")
    ap.add_argument("--keep", action="store_true", help="keep the pgbench logs")
    ap.add_argument("--profile", nargs="?", const="c", default=None, metavar="MODES",
                    help="after the rounds, one more run of each mode in MODES (c) under "
                    "perf record -a -g: the machine by process, the walsender, the adder's "
                    "and the writers' backends by symbol")
    ap.add_argument("--json", help="also write the results to this file")
    a = ap.parse_args()
    if a.quick:
        a.rows = a.rows or 200_000
        a.duration = a.duration or 8
        a.runs = a.runs or 1
    a.rows = a.rows or 1_000_000
    a.duration = a.duration or 25
    a.runs = a.runs or 3
    a.nvals = max(1, a.rows // a.per_shape)
    a.modes = [m for m in a.modes if m in MODES]
    a.profile_modes = [m for m in (a.profile or "") if m in MODES]
    if a.jobs > a.clients:
        a.jobs = a.clients
    t_all = time.perf_counter()
    build = installed_build()
    log("== installed shape_router.so: %s (UTC)" % build)

    conn = connect()
    cur = conn.cursor()
    ver = q1(cur, "SHOW server_version")
    gucs = dict(q(cur, "SELECT name, setting FROM pg_settings WHERE name IN "
                  "('fsync', 'full_page_writes', 'synchronous_commit', 'shared_buffers', "
                  "'max_connections', 'wal_level', 'autovacuum', 'max_wal_size', "
                  "'checkpoint_timeout')"))
    logfile = None
    root = os.environ.get("PG_CLUSTER_CONF_ROOT")
    if root:
        logs = glob.glob(os.path.join(os.path.dirname(root), "log", "*.log"))
        logfile = logs[0] if logs else None
    log("== server %s, %s; %d CPUs, load %s; server log %s"
        % (ver, ", ".join("%s=%s" % kv for kv in sorted(gucs.items())), ncpu,
           " ".join(open("/proc/loadavg").read().split()[:3]), logfile or "(not found)"))
    log("== %d rows, v in 0..%d (~%d rows per shape); writers -c %d -j %d -T %d, %d %% "
        "inserts; adder -R %g -c %d; %d round(s) of %s"
        % (a.rows, a.nvals - 1, a.per_shape, a.clients, a.jobs, a.duration, a.insert_pct,
           a.rate, a.adder_clients, a.runs, "".join(a.modes)))
    setup(a, cur)

    workdir = tempfile.mkdtemp(prefix="sr_concurrent_")
    with open(os.path.join(workdir, "writer.sql"), "w") as f:
        f.write(WRITER_SQL)
    for m, sql in ADDER_SQL.items():
        with open(os.path.join(workdir, "adder_%s.sql" % m), "w") as f:
            f.write(sql)
    log("== pgbench scripts and logs in %s" % workdir)

    runs = []
    for rnd in range(1, a.runs + 1):
        k = (rnd - 1) % len(a.modes)
        order = a.modes[k:] + a.modes[:k]
        log("== round %d: %s" % (rnd, " ".join(order)))
        for m in order:
            runs.append(one_run(a, cur, m, rnd, workdir, logfile))
    prof = []
    if a.profile:
        for m in a.profile_modes:
            log("== one more run of mode %s under perf (not in the table)" % m)
            prof.append(one_run(a, cur, m, 0, workdir, logfile, profile=True))
    reset_table(a, cur)
    q(cur, "SELECT pg_drop_replication_slot(%s)", (SLOT,))
    conn.close()

    summary, comp = summarize(a, runs)
    info = ("%d rows (REPLICA IDENTITY DEFAULT), ~%d rows per shape; writers -c %d -j %d, "
            "-T %d s, %d %% inserts; adder -c %d; fsync=%s, synchronous_commit=%s; "
            "%d round(s); server %s"
            % (a.rows, a.per_shape, a.clients, a.jobs, a.duration, a.insert_pct,
               a.adder_clients, gucs.get("fsync"), gucs.get("synchronous_commit"), a.runs,
               ver))
    print_table(a, runs, summary, comp, info)
    for pr in prof:
        print(pr.get("perf_report", ""))
    print("total bench time %.0fs" % (time.perf_counter() - t_all))
    now = installed_build()
    if now != build:
        print("WARNING: shape_router.so was reinstalled during the run (%s, now %s): "
              "later runs used another build" % (build, now))
    problems = [p for r in runs + prof for p in r["problems"]]
    if a.json:
        out = {"params": {k: v for k, v in vars(a).items()}, "server": ver, "gucs": gucs,
               "build": build, "build_after": now, "runs": runs, "summary": summary,
               "comparison": comp, "profile_run": prof, "problems": problems}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    if not a.keep:
        for fn in glob.glob(os.path.join(workdir, "*")):
            os.unlink(fn)
        os.rmdir(workdir)
    if problems:
        for pr in problems:
            print("concurrent_bench: ERROR: %s" % pr, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
