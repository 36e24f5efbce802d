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

echo "== starting a throwaway PostgreSQL (wal_level=logical, output_plugin_libraries includes shape_router)"
sr_virtualenv test/client/demo_session.sh
