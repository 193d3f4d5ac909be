#!/usr/bin/env bash
# Run pg_regress (sql/, expected/), the pgTAP suites (test/*.sql), then every
# example of README.md and doc/*.md (doc_examples.py) against $PGHOST.
# Usage: run_tests.sh [none | suite.sql ...]   (none: pg_regress only; named
# suites: pg_regress and those suites, without the documentation's examples)
set -euo pipefail
cd "${RECSYS_TOP:?run through with_cluster.sh}"

echo "== PostgreSQL $(psql -X -A -t -d postgres -c "SHOW server_version")"
echo "== pg_regress"
if ! make -s installcheck; then
	[ -f regression.diffs ] && head -c 20000 regression.diffs
	exit 1
fi

[ "${1:-}" = none ] && exit 0

status=0
bash test/harness/run_pgtap.sh "$@" || status=$?
if [ $# -eq 0 ]; then
	# last: the examples' roles (doc/security.md) are cluster-wide
	echo "== documentation examples"
	python=${PYTHON:-/usr/bin/python3}
	[ -x "$python" ] || python=python3
	"$python" test/harness/doc_examples.py || status=1
fi
exit $status
