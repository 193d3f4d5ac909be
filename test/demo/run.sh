#!/usr/bin/env bash
# The demo job: runs every test/demo/*.sql in name order against $PGHOST.
set -euo pipefail
cd "${RECSYS_TOP:?run through with_cluster.sh}"
PGOPTIONS='-c client_min_messages=warning' psql -X -q -c 'DROP DATABASE IF EXISTS recsys_demo' -c 'CREATE DATABASE recsys_demo' >/dev/null
psql -X -q -d recsys_demo -c 'CREATE EXTENSION recsys'
for f in test/demo/*.sql; do
	psql -X -v ON_ERROR_STOP=1 -d recsys_demo -f "$f"
done
