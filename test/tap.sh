#!/usr/bin/env bash
# TAP tests of the shape_router output plugin (test/t/*.pl), with
# PostgreSQL::Test::Cluster from Debian's postgresql-server-dev-15.
#
# The extension must already be installed (test/run-all.sh does `make
# install` first): the throwaway clusters load it from the system install.
#
# initdb refuses to run as root, so as root the tests are copied to a fresh
# temporary directory and run by an unprivileged user (SR_TAP_USER, default
# sr_tap, created if missing).  Otherwise prove runs directly.
#
#   bash test/tap.sh                 # every test
#   bash test/tap.sh 003_shards.pl   # some of them (names in test/t)
#
# Logs (regress_log_*, server logs) stay in the printed directory when a
# test fails, or always with SR_TAP_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh    # SR_LOCALE: the locale of the tests and of their clusters

PGBIN=/usr/lib/postgresql/15/bin
PGXS_DIR=/usr/lib/postgresql/15/lib/pgxs
PERL_LIB=$PGXS_DIR/src/test/perl
TAP_USER=${SR_TAP_USER:-sr_tap}

if [ ! -x "$PGBIN/pg_recvlogical" ] || [ ! -f "$PERL_LIB/PostgreSQL/Test/Cluster.pm" ]; then
	echo "tap.sh: needs postgresql-15 and postgresql-server-dev-15" >&2
	exit 2
fi
if ! perl -MIPC::Run -e 1 2>/dev/null; then
	echo "tap.sh: needs libipc-run-perl" >&2
	exit 2
fi
if [ ! -f "$("$PGBIN/pg_config" --pkglibdir)/shape_router.so" ]; then
	echo "tap.sh: shape_router is not installed (run make install first)" >&2
	exit 2
fi

tests=()
if [ $# -gt 0 ]; then
	for t in "$@"; do tests+=("t/$(basename "$t")"); done
else
	for t in test/t/*.pl; do tests+=("t/$(basename "$t")"); done
fi

work=$(mktemp -d /tmp/sr_tap.XXXXXX)
chmod 755 "$work"
cp -r test/t "$work/t"
# Port reservations shared by runs side by side (PostgreSQL::Test::Cluster)
portdir=/tmp/sr_tap_portlock
mkdir -p "$portdir" && chmod 1777 "$portdir" 2>/dev/null || true

run_prove=(env
	"PATH=$PGBIN:$PATH"
	"SR_LOCALE=$SR_LOCALE" "LANG=$SR_LOCALE" "LC_ALL=$SR_LOCALE"
	"TESTDIR=$work"
	"PG_TEST_PORT_DIR=$portdir"
	"PG_REGRESS=$PGXS_DIR/src/test/regress/pg_regress"
	prove --timer -I "$PERL_LIB" -I "$work/t" "${tests[@]}")

status=0
if [ "$(id -u)" -eq 0 ]; then
	if ! id -u "$TAP_USER" >/dev/null 2>&1; then
		useradd -m "$TAP_USER"
	fi
	chown -R "$TAP_USER:" "$work"
	(cd "$work" && runuser -u "$TAP_USER" -- "${run_prove[@]}") || status=$?
else
	(cd "$work" && "${run_prove[@]}") || status=$?
fi

if [ $status -ne 0 ] || [ "${SR_TAP_KEEP:-0}" = 1 ]; then
	echo "tap.sh: logs kept in $work/tmp_check/log" >&2
else
	rm -rf "$work"
fi
exit $status
