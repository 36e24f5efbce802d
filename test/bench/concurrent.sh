#!/usr/bin/env bash
# Writers while shapes are added: writer throughput and latency on a
# REPLICA IDENTITY DEFAULT table while shapes are added at 100 per second
# with add_shape (SHARE lock until commit) and with CALL
# add_shape_concurrently (no lock writers wait for), against a run that adds
# none.  pgbench writers, a second pgbench adding shapes at -R 100, a live
# pg_recvlogical stream; one throwaway cluster.  See the docstring of
# test/bench/concurrent_bench.py.
#
#   test/bench/concurrent.sh --no-build            # ~7 minutes (3 rounds of 25 s runs)
#   test/bench/concurrent.sh --no-build --quick    # ~1 minute
#   test/bench/concurrent.sh --no-build --runs 5 --json /tmp/concurrent.json
#
# Every other option goes to test/bench/concurrent_bench.py (--help).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

sr_bench_prepare "$@"

# The settings of identity.sh: fsync ON (and full_page_writes,
# synchronous_commit at their defaults), since writer commit latency is
# what is measured.  max_connections leaves room for the writers, the
# adder's clients, the bench's own sessions and the walsender.
bench_gucs=(
	-o shared_buffers=1GB
	-o fsync=on
	-o full_page_writes=on
	-o max_connections=100
)

echo "== concurrent add_shape benchmark cluster (pg_virtualenv, fsync=on)"
sr_virtualenv "${SR_BENCH_GUCS[@]}" "${bench_gucs[@]}" /usr/bin/python3 test/bench/concurrent_bench.py ${SR_BENCH_ARGS[@]+"${SR_BENCH_ARGS[@]}"}
