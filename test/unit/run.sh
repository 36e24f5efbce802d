#!/usr/bin/env bash
# Builds the membership module's unit tests (plain gcc, no PostgreSQL) and
# runs them through prove.  Exits non-zero if any test fails.
#   bash test/unit/run.sh            all tests (the MPH up to 10M keys)
#   bash test/unit/run.sh --quick    skips the 10M-key set
set -euo pipefail
cd "$(dirname "$0")"
make -s all
args=()
[ "${1:-}" = "--quick" ] && args=(:: --quick)
prove ./test_fuse ./test_mphf ./test_membership "${args[@]}"
