#!/usr/bin/env bash
# Default replica identity benchmark (issue 11): the same update/delete-heavy
# workload on a REPLICA IDENTITY DEFAULT table and on an identical FULL one
# (WAL written, decode time, walsender memory per member key), and
# add_shape's latency and lock time on a 1M-row DEFAULT table.  One
# throwaway cluster; see the docstring of test/bench/identity_bench.py.
#
#   test/bench/identity.sh --no-build            # ~6 minutes
#   test/bench/identity.sh --no-build --quick    # ~1 minute
#   test/bench/identity.sh --no-build --profile  # plus perf profiles
#
# Every other option goes to test/bench/identity_bench.py (--help).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

sr_bench_prepare "$@"

# Unlike run.sh, fsync stays ON (and full_page_writes, synchronous_commit at
# their defaults): the membership redo log's fsync, once per decoded
# transaction that changes membership, is part of the DEFAULT decode's cost,
# and full-page images are part of the WAL both tables write (the bench
# splits them out with pg_waldump).  The bench also repeats the decodes
# with fsync=off (a reload) to show what the plugin's own fsyncs cost.
bench_gucs=(
	-o shared_buffers=1GB
	-o fsync=on
	-o full_page_writes=on
)

echo "== identity benchmark cluster (pg_virtualenv, fsync=on)"
sr_virtualenv "${SR_BENCH_GUCS[@]}" "${bench_gucs[@]}" /usr/bin/python3 test/bench/identity_bench.py ${SR_BENCH_ARGS[@]+"${SR_BENCH_ARGS[@]}"}
