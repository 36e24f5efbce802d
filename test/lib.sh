# Shared by demo.sh and test/run-all.sh: Debian packages, build, throwaway
# clusters.  Source it; it changes nothing by itself.

SR_PACKAGES="make gcc postgresql-15 postgresql-server-dev-15 postgresql-15-wal2json
libxxhash-dev libroaring-dev libipc-run-perl python3 python3-psycopg2"

# Logical decoding, and our plugin allowed by PostgreSQL 15.20's
# output_plugin_libraries (without it slots using shape_router are refused).
SR_PLUGINS="pgoutput, test_decoding, wal2json, shape_router"
SR_GUCS=(-o wal_level=logical -o "output_plugin_libraries=$SR_PLUGINS"
         -o max_replication_slots=20 -o max_wal_senders=20)

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

sr_install_packages() {
	local missing=()
	for p in $SR_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing Debian packages: ${missing[*]}"
		as_root apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
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

sr_virtualenv() {
	pg_virtualenv -t -v 15 -c "-p $(sr_free_port)" "${SR_GUCS[@]}" "$@"
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
