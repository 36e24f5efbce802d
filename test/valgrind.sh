#!/usr/bin/env bash
# The pg_regress suites (make installcheck) and one differential test
# (test/diff/decoding_diff.py) against a throwaway cluster
# whose postmaster, and so every backend it forks, runs under valgrind
# memcheck.  Prints a summary of the valgrind error reports; those with a
# shape_router.so frame in a stack come first, in full.
#
#   bash test/valgrind.sh
#
# Exit status: 0 = no valgrind error in a shape_router frame (errors
# elsewhere, and test failures, are reported but do not fail the run);
# 1 = at least one error with a shape_router frame; 2 = harness problem.
#
# Environment (all optional):
#   SR_VG_KEEP=1         keep the work directory (logs) even on success
#   SR_VG_DIFF_ARGS=...  decoding_diff.py arguments
#                        (default: --seed 1, its default workload: about
#                        20,000 changes, 200 shapes; 5-10 minutes here)
#   SR_VG_NO_DIFF=1      pg_regress suites only
#   SR_VG_REGRESS=...    only these pg_regress tests (names in sql/)
#   SR_VG_ORIGINS=0      without --track-origins (about twice as fast)
#   SR_VG_EXITCODE=0     errors do not end the process that made them (see
#                        below; for collecting every report in one run)
#   SR_VG_USER=...       the user that owns the cluster when run as root
#                        (default postgres, as with pg_virtualenv)
#
# Debian's PostgreSQL is not built with USE_VALGRIND: memcheck does not see
# palloc chunks, only malloc'd blocks (a palloc'd chunk's overrun stays
# inside its block), so what it finds is reads and writes outside malloc'd
# blocks and shared memory, uses of uninitialised values, bad frees and bad
# syscall arguments.  Leak checking is off: palloc memory is freed with its
# context, not with free(), so malloc leak reports would say nothing.
#
# pg_virtualenv starts the postmaster itself (pg_ctlcluster), with no way
# to put valgrind in front of it: the cluster is made by hand (initdb
# refuses root, so as root it belongs to SR_VG_USER), with test/lib.sh's
# GUCs, a free port and its socket in the work directory.
#
# The server is a copy of Debian's postgres binary in a private tree of the
# work directory, which PostgreSQL then takes as its installation (share
# and lib directories are found relative to the binary; Debian's files are
# symlinked in), and shape_router is installed there (make install
# DESTDIR=...), not into the system: the run tests this tree's build even
# while someone else runs make install, and leaves the system install alone.
#
# valgrind runs with --error-exitcode=128, as PostgreSQL's own valgrind
# buildfarm animal does: a backend that had an error exits, when its session
# ends, with 128, which the postmaster treats as a crash (restart, every
# other session ended).  So an error shows in the server log, and the tests
# running at that moment fail as a consequence.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
. test/lib.sh

PGBIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PGBIN/pg_config
VG_USER=${SR_VG_USER:-postgres}
DIFF_ARGS=${SR_VG_DIFF_ARGS:---seed 1}

SR_PACKAGES="$SR_PACKAGES valgrind"
sr_install_packages

work=$(mktemp -d /tmp/sr_vg.XXXXXX)
chmod 755 "$work"
mkdir "$work/vg" "$work/sock"
port=$(sr_free_port)

echo "== building shape_router, installing it in $work/inst"
make -s PG_CONFIG="$PG_CONFIG"
inst=$work/inst
sysshare=$("$PG_CONFIG" --sharedir)
syslib=$("$PG_CONFIG" --pkglibdir)
mkdir -p "$inst$PGBIN" "$inst$sysshare" "$inst$syslib"
cp -as "$sysshare/." "$inst$sysshare/"
cp -as "$syslib/." "$inst$syslib/"
rm -rf "$inst$sysshare"/extension/shape_router[.-]* "$inst$syslib"/shape_router.so \
	"$inst$syslib"/bitcode/shape_router*
cp "$PGBIN/postgres" "$inst$PGBIN/postgres"	# a copy: a symlink would be resolved
make -s install PG_CONFIG="$PG_CONFIG" DESTDIR="$inst" >/dev/null
cp "$PG_CONFIG" "$inst$PGBIN/pg_config"	# finds its paths as postgres does
if [ "$("$inst$PGBIN/pg_config" --pkglibdir)" != "$inst$syslib" ]; then
	echo "valgrind.sh: this PostgreSQL does not take its installation from the binary's place" >&2
	exit 2
fi

as_user() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$VG_USER" -- "$@"
	else
		"$@"
	fi
}
if [ "$(id -u)" -eq 0 ]; then
	id -u "$VG_USER" >/dev/null 2>&1 || useradd -m "$VG_USER"
	chown "$VG_USER:" "$work" "$work/vg" "$work/sock"
fi

# PostgreSQL's suppressions name the function that writes padding (XLogWrite
# and so on); Debian's postgres binary keeps no symbols of static functions,
# so where such a function is static its frame is "???" and the suppression
# misses.  These say the same things by the exported callers.
cat >"$work/debian.supp" <<'SUPP'
{
	debian_stripped_padding_XLogWrite
	Memcheck:Param
	pwrite64(buf)
	fun:pwrite*
	obj:*/bin/postgres
	...
	fun:XLog*
}
{
	debian_stripped_padding_XLogRecordAssemble_CRC
	Memcheck:Value8
	fun:pg_comp_crc32c*
	obj:*/bin/postgres
	fun:XLogInsert
}
{
	debian_stripped_padding_relcache_init_file
	Memcheck:Param
	write(buf)
	...
	fun:RelationCacheInitializePhase3
}
{
	debian_stripped_padding_pgstat_write_statsfile
	Memcheck:Param
	write(buf)
	...
	fun:pgstat_before_server_shutdown
}
{
	debian_stripped_padding_reorderbuffer_serialize
	Memcheck:Param
	write(buf)
	fun:write
	obj:*/bin/postgres
	obj:*/bin/postgres
	...
	fun:LogicalDecodingProcessRecord
}
SUPP
# And false reports of valgrind 3.19 with Debian 12's glibc, not about
# PostgreSQL's code: __memmove_chk taken for __memcpy_chk (regexp.c's
# cache calls memmove, which finds overlap by design), and ld.so's strncmp
# reading whole words past a string's end.
cat >>"$work/debian.supp" <<'SUPP'
{
	valgrind_memmove_chk_reported_as_memcpy_chk
	Memcheck:Overlap
	fun:__memcpy_chk
	fun:RE_compile_and_cache
}
{
	valgrind_ld_so_strncmp_overread
	Memcheck:Addr8
	fun:strncmp
	fun:is_dst
}
SUPP
vg_opts=(--tool=memcheck --trace-children=yes
	--suppressions="$repo/test/valgrind.supp"
	--suppressions="$work/debian.supp"
	--error-exitcode="${SR_VG_EXITCODE:-128}" --error-limit=no --leak-check=no
	--num-callers=30 --read-var-info=yes --read-inline-info=yes --fullpath-after=
	--show-error-list=yes
	--log-file="$work/vg/%p.log")
[ "${SR_VG_ORIGINS:-1}" = 1 ] && vg_opts+=(--track-origins=yes)

# The GUCs of test/lib.sh (SR_GUCS, as -o options of pg_virtualenv), as -c.
pg_opts=(-D "$work/data" -p "$port" -k "$work/sock"
	-c listen_addresses= -c huge_pages=off -c fsync=off
	-c log_connections=on -c "log_line_prefix=%m [%p] %a "
	-c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20)
if sr_has_guc output_plugin_libraries; then
	pg_opts+=(-c "output_plugin_libraries=$SR_PLUGINS")
fi

pm_pid=
stop_server() {
	if [ -n "$pm_pid" ] && kill -0 "$pm_pid" 2>/dev/null; then
		as_user "$PGBIN/pg_ctl" -D "$work/data" stop -m fast -t 900 >/dev/null || true
		wait "$pm_pid" 2>/dev/null || true
	fi
	pm_pid=
}
trap 'stop_server' EXIT

echo "== valgrind: cluster in $work (port $port)"
as_user "$PGBIN/initdb" -D "$work/data" -U postgres -A trust --no-sync >"$work/initdb.log" 2>&1 || {
	cat "$work/initdb.log" >&2
	exit 2
}
start=$(date +%s)
# PGUSER: the user of libpq connections made by the server (dblink)
as_user env PGUSER=postgres valgrind "${vg_opts[@]}" "$inst$PGBIN/postgres" "${pg_opts[@]}" \
	>"$work/postmaster.log" 2>&1 &
pm_pid=$!

export PGHOST=$work/sock PGPORT=$port PGUSER=postgres PGDATABASE=postgres
for _ in $(seq 600); do
	"$PGBIN/pg_isready" -q && break
	kill -0 "$pm_pid" 2>/dev/null || break
	sleep 1
done
if ! "$PGBIN/pg_isready" -q; then
	echo "valgrind.sh: the server did not start; $work/postmaster.log:" >&2
	tail -20 "$work/postmaster.log" >&2
	exit 2
fi
echo "== valgrind: server up after $(( $(date +%s) - start ))s"

failed=()
t0=$(date +%s)
echo "== valgrind: pg_regress suites"
if ! make -s installcheck PG_CONFIG="$PG_CONFIG" ${SR_VG_REGRESS:+REGRESS="$SR_VG_REGRESS"}; then
	failed+=("make installcheck")
	[ -f regression.diffs ] && cp regression.diffs "$work/regression.diffs"
fi
echo "== valgrind: pg_regress took $(( $(date +%s) - t0 ))s"

if [ "${SR_VG_NO_DIFF:-0}" != 1 ]; then
	t0=$(date +%s)
	echo "== valgrind: decoding_diff.py $DIFF_ARGS"
	# shellcheck disable=SC2086
	/usr/bin/python3 test/diff/decoding_diff.py $DIFF_ARGS || failed+=("decoding_diff.py $DIFF_ARGS")
	echo "== valgrind: decoding_diff took $(( $(date +%s) - t0 ))s"
fi

t0=$(date +%s)
stop_server
echo "== valgrind: server stopped after $(( $(date +%s) - t0 ))s; total $(( $(date +%s) - start ))s"

# The summary: valgrind error reports, grouped by stack, each with the
# processes that hit it and the sessions (application_name: pg_regress/TEST,
# decoding_diff_*) those processes served, from log_connections.
status=0
/usr/bin/python3 - "$work" "$repo" <<'EOF' || status=$?
import glob, os, re, sys
from collections import OrderedDict

work, repo = sys.argv[1], sys.argv[2]
# A frame of ours: a source file of this tree (--fullpath-after= prints
# whole paths), or the library itself when it has no debug information.
def ours_frame(line):
    return 'shape_router' in line or (repo + '/src/') in line
apps = {}
for line in open(os.path.join(work, 'postmaster.log'), errors='replace'):
    m = re.search(r'\[(\d+)\] .*connection authorized: .*application_name=(\S+)', line)
    if m:
        apps.setdefault(m.group(1), set()).add(m.group(2))

groups = OrderedDict()
nlogs = nerr_logs = nerrors = 0
used = {}
prefix = re.compile(r'^==(\d+)== ?(.*)$')
for path in sorted(glob.glob(os.path.join(work, 'vg', '*.log')),
                   key=lambda p: int(re.sub(r'\D', '', os.path.basename(p)) or 0)):
    nlogs += 1
    pid = os.path.basename(path)[:-4]
    blocks, cur = [], []
    for line in open(path, errors='replace'):
        m = prefix.match(line.rstrip('\n'))
        if not m:
            continue
        body = m.group(2)
        if body.strip() == '':
            if cur:
                blocks.append(cur)
            cur = []
        else:
            cur.append(body)
    if cur:
        blocks.append(cur)
    errs = [b for b in blocks
            if len(b) > 1 and re.match(r'\s+at 0x', b[1])
            and not b[0].startswith(('HEAP SUMMARY', 'LEAK SUMMARY'))]
    if errs:
        nerr_logs += 1
    for line in open(path, errors='replace'):
        m = re.search(r'ERROR SUMMARY: (\d+) errors', line)
        if m:
            nerrors += int(m.group(1))
        m = re.search(r'used_suppression:\s+(\d+) (\S+)', line)
        if m:
            used[m.group(2)] = used.get(m.group(2), 0) + int(m.group(1))
    for b in errs:
        # one group per message and stack (addresses and sizes vary)
        key = '\n'.join(re.sub(r'0x[0-9A-Fa-f]+', '0x', l) for l in b
                        if not l.lstrip().startswith('Address'))
        g = groups.setdefault(key, {'block': b, 'pids': []})
        if pid not in g['pids']:
            g['pids'].append(pid)

def who(pids):
    names = sorted({a for p in pids for a in apps.get(p, ())})
    return ', '.join(names) if names else 'no client session (postmaster or auxiliary process)'

ours = [g for g in groups.values() if any(ours_frame(l) for l in g['block'])]
others = [g for g in groups.values() if g not in ours]
print('== valgrind summary: %d process logs, %d with errors; %d errors, %d distinct reports '
      '(%d with a shape_router frame)' % (nlogs, nerr_logs, nerrors, len(groups), len(ours)))
if used:
    print('   suppressed: ' + ', '.join('%s %d' % (n, c) for n, c in
                                        sorted(used.items(), key=lambda x: -x[1])))
for title, gs, full in (('with a shape_router frame', ours, True),
                        ('elsewhere (PostgreSQL, libc, ...)', others, False)):
    if not gs:
        continue
    print('\n== valgrind errors %s' % title)
    for i, g in enumerate(gs, 1):
        print('\n-- #%d: in %d process(es) [pids %s]; sessions: %s'
              % (i, len(g['pids']), ' '.join(g['pids'][:8]) +
                 (' ...' if len(g['pids']) > 8 else ''), who(g['pids'])))
        print('\n'.join(g['block'] if full else g['block'][:12]))
sys.exit(1 if ours else 0)
EOF

crashes=$(grep -E 'was terminated by signal|exited with exit code 128|terminating any other active server processes' "$work/postmaster.log" || true)
if [ -n "$crashes" ]; then
	echo
	echo "== server log: processes that crashed or exited with valgrind's error code"
	echo "$crashes" | head -40
fi
if [ ${#failed[@]} -gt 0 ]; then
	echo
	echo "== tests that failed under valgrind: ${failed[*]}"
	[ -f "$work/regression.diffs" ] && echo "   (regression.diffs kept in $work)"
fi
if [ $status -eq 1 ]; then
	echo "== valgrind: errors in shape_router frames (logs in $work/vg, server log $work/postmaster.log)"
elif [ $status -ne 0 ]; then
	echo "valgrind.sh: the summary failed" >&2
	status=2
fi
if [ $status -ne 0 ] || [ ${#failed[@]} -gt 0 ] || [ "${SR_VG_KEEP:-0}" = 1 ]; then
	echo "valgrind.sh: logs kept in $work"
else
	rm -rf "$work"
fi
exit $status
