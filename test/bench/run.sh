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

build=1
args=()
for a in "$@"; do
	case "$a" in
		--no-build) build=0 ;;
		*) args+=("$a") ;;
	esac
done

sr_install_packages
if [ "$build" = 1 ]; then
	sr_build_install
fi

# Settings for measuring decoding, not durability: a large WAL budget and
# reorder buffer, no checkpoints or autovacuum in the middle of the timed
# decodes, no fsync (the cluster is thrown away).
bench_gucs=(
	-o shared_buffers=512MB
	-o max_wal_size=8GB
	-o checkpoint_timeout=30min
	-o logical_decoding_work_mem=256MB
	-o autovacuum=off
	-o fsync=off
	-o full_page_writes=off
	-o max_replication_slots=20
)

echo "== benchmark cluster (pg_virtualenv)"
sr_virtualenv "${bench_gucs[@]}" /usr/bin/python3 test/bench/bench.py ${args[@]+"${args[@]}"}
