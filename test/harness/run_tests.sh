#!/usr/bin/env bash
# Run pg_regress (sql/, expected/) then the pgTAP suites (test/*.sql) against $PGHOST.
set -euo pipefail
cd "${RECSYS_TOP:?run through with_cluster.sh}"

echo "== pg_regress"
if ! make -s installcheck; then
	[ -f regression.diffs ] && head -c 20000 regression.diffs
	exit 1
fi

[ "${1:-}" = none ] && exit 0

bash test/harness/run_pgtap.sh "$@"
