#!/usr/bin/env bash
# The demo, from a fresh Debian machine: installs what is missing, builds,
# starts a throwaway PostgreSQL with wal_level=logical, registers shapes,
# runs DML and shows the routed records streaming through a replication
# client.
set -euo pipefail
cd "$(dirname "$0")"
. test/lib.sh

sr_install_packages
sr_build_install

allowed=
if sr_has_guc output_plugin_libraries; then
	allowed=", output_plugin_libraries includes shape_router"
fi
echo "== starting a throwaway PostgreSQL (UTF8, $SR_LOCALE; wal_level=logical$allowed)"
sr_virtualenv test/client/demo_session.sh
