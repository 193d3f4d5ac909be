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

echo "== reference data (numpy / PyTorch / scikit-learn)"
rm -rf test/ref/out
mkdir -p test/ref/out
for script in test/ref/*.py; do
	[ -e "$script" ] || continue
	/usr/bin/python3 "$script" test/ref/out
done

echo "== pgTAP"
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE DATABASE recsys_tap' >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d recsys_tap \
	-c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION recsys' >/dev/null
cd test
pg_prove -d recsys_tap --ext .sql ${1:-*.sql}
