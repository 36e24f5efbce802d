#!/usr/bin/env bash
# A second real replication client: Node.js with the npm package
# pg-logical-replication streams a shape_router slot, acknowledges whole
# transactions, resumes after a client stop and a server restart
# (test/client/node/shape_client.test.js).  Run inside a throwaway cluster:
#   . test/lib.sh; sr_virtualenv bash test/client/node_client.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "== installing Debian packages: nodejs npm"
	as_root apt-get update -qq
	sr_apt_install nodejs npm
fi

cd test/client/node
# the versions in package-lock.json, into node_modules/ (not committed);
# pg-logical-replication 2.5 asks for node 20 and runs on Debian 12's 18
npm ci --no-audit --no-fund --engine-strict=false --loglevel=error >/dev/null
node shape_client.test.js
