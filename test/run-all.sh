#!/usr/bin/env bash
# Every test of shape_router, from a fresh Debian machine: installs what is
# missing, builds, installs, then runs each suite against its own throwaway
# cluster.  .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

sr_install_packages
# warnings are errors here (not in the demo: a newer compiler may warn more);
# a clean build, so that every file is compiled with them
make -s clean PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
sr_build_install SR_WERROR=1

echo "== pg_regress suites, then the isolation specs (test/isolation)"
if ! sr_virtualenv make -s installcheck PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config; then
	[ -f regression.diffs ] && cat regression.diffs
	[ -f test/isolation/output_iso/regression.diffs ] && cat test/isolation/output_iso/regression.diffs
	exit 1
fi

echo "== unit tests (test/unit)"
bash test/unit/run.sh

echo "== mutation check: the unit tests fail on broken membership code"
bash test/unit/mutate.sh

echo "== differential test: matching_shapes against SELECT ... WHERE"
sr_virtualenv /usr/bin/python3 test/diff/matching_diff.py ${SR_DIFF_SEED:+--seed "$SR_DIFF_SEED"}

if [ -f test/diff/decoding_diff.py ]; then
	echo "== differential test: decoded records against PostgreSQL's evaluation"
	sr_virtualenv /usr/bin/python3 test/diff/decoding_diff.py ${SR_DIFF_SEED:+--seed "$SR_DIFF_SEED"}
	echo "== differential test: the same, REPLICA IDENTITY DEFAULT (membership index)"
	sr_virtualenv /usr/bin/python3 test/diff/decoding_diff.py --identity default ${SR_DIFF_SEED:+--seed "$SR_DIFF_SEED"}
	echo "== differential test: the same, REPLICA IDENTITY USING INDEX"
	sr_virtualenv /usr/bin/python3 test/diff/decoding_diff.py --identity index ${SR_DIFF_SEED:+--seed "$SR_DIFF_SEED"}
fi

echo "== differential test: add_shape_concurrently() and a consumer's first rows, under concurrent writers"
sr_virtualenv /usr/bin/python3 test/diff/concurrent_diff.py ${SR_DIFF_SEED:+--seed "$SR_DIFF_SEED"}
echo "== differential test: the same, REPLICA IDENTITY FULL"
sr_virtualenv /usr/bin/python3 test/diff/concurrent_diff.py --identity full ${SR_DIFF_SEED:+--seed "$SR_DIFF_SEED"}

echo "== replication client: stream, acknowledge, resume"
sr_virtualenv /usr/bin/python3 test/client/test_consumer.py
echo "== a second replication client: Node.js (pg-logical-replication) streams, acknowledges, resumes across a server restart"
sr_virtualenv bash test/client/node_client.sh

echo "== add_shape_concurrently() calls side by side remove nothing of each other's"
sr_virtualenv /usr/bin/python3 test/client/concurrent_calls.py

echo "== the demo: each statement's records under it, labels true to the rows"
sr_virtualenv bash test/client/demo_output.sh

if [ -f test/tap.sh ]; then
	echo "== TAP tests (test/t)"
	bash test/tap.sh
fi

echo "== all tests passed"
