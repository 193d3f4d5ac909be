#!/usr/bin/env bash
# Run the pgTAP suites (test/*.sql) against the server that PGHOST/PGPORT/PGUSER
# name, after writing their numpy/PyTorch/scikit-learn reference data.
# Usage: run_pgtap.sh [suite.sql ...]   (default: every suite)
set -euo pipefail
cd "${RECSYS_TOP:?set RECSYS_TOP to the source tree}"

# Debian's python3 has the numpy/torch/sklearn packages; PYTHON overrides it
python=${PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=python3
echo "== reference data (numpy / PyTorch / scikit-learn)"
rm -rf test/ref/out
mkdir -p test/ref/out
for script in test/ref/*.py; do
	[ -e "$script" ] || continue
	"$python" "$script" test/ref/out
done

echo "== pgTAP"
db=${RECSYS_TAP_DB:-recsys_tap}
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION recsys' >/dev/null
cd test
if [ $# -gt 0 ]; then
	pg_prove -d "$db" --ext .sql "$@"
else
	pg_prove -d "$db" --ext .sql *.sql
fi
