#!/usr/bin/env bash
# Run every benchmark in test/bench/*/run.sh (or only those named) against $PGHOST.
set -euo pipefail
cd "${RECSYS_TOP:?run through with_cluster.sh}"
mkdir -p test/bench/out
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for d in test/bench/*/run.sh; do names+=("$(basename "$(dirname "$d")")"); done
fi
for name in "${names[@]}"; do
	echo "== bench $name"
	PGOPTIONS='-c client_min_messages=warning' psql -X -q -c "DROP DATABASE IF EXISTS bench_$name" -c "CREATE DATABASE bench_$name" >/dev/null
	psql -X -q -d "bench_$name" -c 'CREATE EXTENSION recsys' >/dev/null
	PGDATABASE="bench_$name" bash "test/bench/$name/run.sh"
done
