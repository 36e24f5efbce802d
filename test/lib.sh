# Shared by demo.sh and test/run-all.sh: Debian packages, build, throwaway
# clusters.  Source it; it changes nothing by itself but the locale (below).

# A UTF-8 locale for everything the scripts run, whatever the caller's: with
# LANG unset (most containers) initdb makes SQL_ASCII clusters, and with LANG
# naming a locale that is not generated (common over ssh) the perl tools
# (pg_createcluster, pg_virtualenv's helpers) die at once.  C.UTF-8 is always
# there on Debian 12 (libc-bin); SR_LOCALE chooses another.  The clusters are
# also made UTF8 explicitly (sr_virtualenv, test/t/SrTap.pm).
sr_utf8_locale() {
	local all
	all=$(locale -a 2>/dev/null)
	if grep -qix 'c\.utf-\?8' <<<"$all"; then
		echo C.UTF-8
	elif grep -qix 'en_US\.utf-\?8' <<<"$all"; then
		echo en_US.UTF-8
	else
		grep -i -m1 '\.utf-\?8$' <<<"$all" || echo C.UTF-8
	fi
}
SR_LOCALE=${SR_LOCALE:-$(LC_ALL=C sr_utf8_locale)}
export SR_LOCALE LANG="$SR_LOCALE" LC_ALL="$SR_LOCALE"
unset LANGUAGE

SR_PACKAGES="make gcc postgresql-15 postgresql-server-dev-15 postgresql-15-wal2json
libxxhash-dev libroaring-dev libipc-run-perl python3 python3-psycopg2"

# Logical decoding, and our plugin allowed by PostgreSQL 15.20's
# output_plugin_libraries (without it slots using shape_router are refused).
# That setting is a patch of some builds: sr_virtualenv adds it only when the
# installed server has it (a server without it refuses to start with it, and
# allows every plugin).
SR_PLUGINS="pgoutput, test_decoding, wal2json, shape_router"
SR_GUCS=(-o wal_level=logical -o max_replication_slots=20 -o max_wal_senders=20)

# sr_has_guc NAME: whether the installed PostgreSQL 15 server has the setting.
# grep reads to the end (no -q): under pipefail, a grep that quits at its
# match can kill the writers with SIGPIPE and fail the pipeline.
sr_has_guc() {
	/usr/lib/postgresql/15/bin/postgres --describe-config 2>/dev/null | cut -f1 | grep -x "$1" >/dev/null
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

sr_install_packages() {
	local missing=()
	for p in $SR_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing Debian packages: ${missing[*]}"
		echo "   apt-get update"
		as_root apt-get update -qq
		sr_apt_install "${missing[@]}"
	fi
}

# apt-get install, reporting apt's summary and then a line at each tenth of
# the download and of the installation (with what apt is doing then), instead
# of a page per package.  apt's whole output goes to a log, shown on failure.
sr_apt_install() {
	local - log
	set -o pipefail
	log=$(mktemp /tmp/sr_apt.XXXXXX)
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y \
			-o APT::Status-Fd=1 -o Dpkg::Progress-Fancy=0 "$@" 2>&1 | tee "$log" | awk -F: '
		/newly installed/ { planned = 1 }
		/newly installed|^Need to get|^After this operation/ { print "   " $0; fflush() }
		/^(E|W):/ { print "   " $0; fflush() }
		planned && ($1 == "dlstatus" || $1 == "pmstatus") {
			phase = ($1 == "dlstatus") ? "downloading" : "installing "
			step = int($3 / 10) * 10
			if (phase != last_phase || step > last_step) {
				desc = $4; for (i = 5; i <= NF; i++) desc = desc ":" $i
				printf "   %s %3d%%  %s\n", phase, step, desc; fflush()
				last_phase = phase; last_step = step
			}
		}'; then
		echo "apt-get install failed; the end of its output ($log):" >&2
		tail -n 30 "$log" >&2
		return 1
	fi
	rm -f "$log"
	echo "   installed"
}

# sr_build_install [make arguments]: build and install
sr_build_install() {
	echo "== building shape_router"
	make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config "$@"
	as_root make -s install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
}

# Run a command against a throwaway cluster (pg_virtualenv works as root;
# -t keeps its files in a temporary directory, so runs never collide).
# A port of its own, so that runs side by side never collide.
sr_free_port() {
	local port
	while :; do
		port=$(( 20000 + RANDOM % 20000 ))
		[ -e "/var/run/postgresql/.s.PGSQL.$port" ] || [ -e "/tmp/.s.PGSQL.$port" ] || break
	done
	echo "$port"
}

# UTF8 clusters in SR_LOCALE, whatever initdb would take from the environment.
sr_virtualenv() {
	local gucs=("${SR_GUCS[@]}")
	if sr_has_guc output_plugin_libraries; then
		gucs+=(-o "output_plugin_libraries=$SR_PLUGINS")
	fi
	pg_virtualenv -t -v 15 -c "-p $(sr_free_port) --locale=$SR_LOCALE --encoding=UTF8" \
		"${gucs[@]}" "$@"
}

# The benchmarks' common start (test/bench/*.sh): packages, the build
# unless --no-build is among the arguments, and the other arguments, for
# the bench's own driver, in SR_BENCH_ARGS.  SR_BENCH_GUCS: the settings
# every benchmark cluster shares (a large WAL budget and reorder buffer, no
# checkpoint or autovacuum in the middle of a measurement); each script adds
# its own (shared_buffers, fsync).
SR_BENCH_GUCS=(
	-o max_wal_size=8GB
	-o checkpoint_timeout=30min
	-o logical_decoding_work_mem=256MB
	-o autovacuum=off
	-o max_replication_slots=20
)

sr_bench_prepare() {
	local build=1 a
	SR_BENCH_ARGS=()
	for a in "$@"; do
		case "$a" in
			--no-build) build=0 ;;
			*) SR_BENCH_ARGS+=("$a") ;;
		esac
	done
	sr_install_packages
	if [ "$build" = 1 ]; then
		sr_build_install
	fi
}
