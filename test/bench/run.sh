#!/usr/bin/env bash
# Decoding benchmark of shape_router against test_decoding, pgoutput (with
# and without a row filter) and wal2json, on one throwaway cluster.  See
# test/bench/README.md.
#
#   test/bench/run.sh --quick         # ~100,000 changes, 10,000 shapes
#   test/bench/run.sh                 # 1,000,000 changes, 100,000 shapes, then
#                                     # the stream start at 1,000,000 shapes
#   test/bench/run.sh --no-build ...  # skip make && make install
#
# Every other option goes to test/bench/bench.py (--help lists them).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

sr_bench_prepare "$@"

# Settings for measuring decoding, not durability: a large WAL budget and
# reorder buffer, no checkpoints or autovacuum in the middle of the timed
# decodes, no fsync (the cluster is thrown away).
bench_gucs=(
	-o shared_buffers=512MB
	-o fsync=off
	-o full_page_writes=off
)

echo "== benchmark cluster (pg_virtualenv)"
sr_virtualenv "${SR_BENCH_GUCS[@]}" "${bench_gucs[@]}" /usr/bin/python3 test/bench/bench.py ${SR_BENCH_ARGS[@]+"${SR_BENCH_ARGS[@]}"}
