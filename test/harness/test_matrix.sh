#!/usr/bin/env bash
# `make test` on every supported PostgreSQL major, one after the other:
# 15 from Debian's packages, 17 and 18 from /opt/recsys-pg/MAJOR (built by
# build_pg.sh when missing).  Every version runs even when one fails; the
# exit status is non-zero if any did.
# Usage: test_matrix.sh        (RECSYS_PG_MAJORS="15 17 18" by default)
set -uo pipefail
cd "$(dirname "$0")/../.."
majors=${RECSYS_PG_MAJORS:-15 17 18}

# Build what is missing first, so that a build failure reads as one.
for m in $majors; do
	[ "$m" = 15 ] && continue
	start=$(date +%s)
	if ! bash test/harness/build_pg.sh "$m"; then
		echo "test_matrix.sh: PostgreSQL $m could not be built" >&2
		exit 1
	fi
	echo "== PostgreSQL $m in /opt/recsys-pg/$m: $(( $(date +%s) - start ))s"
done

summary=()
failed=0
for m in $majors; do
	if [ "$m" = 15 ]; then pg_config=pg_config; else pg_config=/opt/recsys-pg/$m/bin/pg_config; fi
	echo "==== make test on PostgreSQL $m"
	start=$(date +%s)
	if make test PG_CONFIG="$pg_config"; then
		result=ok
	else
		result=FAILED
		failed=$((failed + 1))
	fi
	summary+=("PostgreSQL $m: $result ($(( $(date +%s) - start ))s)")
done
echo "==== test matrix"
printf '%s\n' "${summary[@]}"
[ "$failed" -eq 0 ]
