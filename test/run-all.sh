#!/usr/bin/env bash
# Every test of shape_router, from a fresh Debian machine: installs what is
# missing, builds, installs, then runs the pg_regress suites and the
# differential test against throwaway clusters.  .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

sr_install_packages
sr_build_install

echo "== pg_regress suites"
if ! sr_virtualenv make -s installcheck PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config; then
	[ -f regression.diffs ] && cat regression.diffs
	exit 1
fi

echo "== differential test: matching_shapes against SELECT ... WHERE"
sr_virtualenv /usr/bin/python3 test/diff/matching_diff.py ${SR_DIFF_SEED:+--seed "$SR_DIFF_SEED"}

echo "== all tests passed"
