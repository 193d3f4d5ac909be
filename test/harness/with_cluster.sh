#!/usr/bin/env bash
# Install recsys, start a throwaway PostgreSQL cluster, run one job in it, stop it.
# Usage: with_cluster.sh demo|test|bench [args...] | with_cluster.sh run COMMAND [args...]
# The server is Debian's PostgreSQL 15, or the installation whose pg_config
# PG_CONFIG names (e.g. /opt/recsys-pg/17/bin/pg_config, see build_pg.sh):
# recsys is installed there and that version's binaries run the cluster.
set -euo pipefail
mode=${1:?usage: with_cluster.sh demo|test|bench}
shift
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
PGBIN=/usr/lib/postgresql/15/bin
if [ -n "${PG_CONFIG:-}" ] && [ "$PG_CONFIG" != pg_config ]; then
	# Another installation: its own binaries, one install-and-run at a time
	# in it (build_pg.sh takes the same lock for /opt/recsys-pg/MAJOR).
	# RECSYS_PG_ROOT is for Debian's PostgreSQL 15 only.
	PGBIN=$("$PG_CONFIG" --bindir) || { echo "with_cluster.sh: $PG_CONFIG does not work" >&2; exit 1; }
	major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
	case "$PG_CONFIG" in
		/opt/recsys-pg/*) lock=/opt/recsys-pg/$major.lock ;;
		*) lock=/tmp/recsys-cluster-$major.lock ;;
	esac
	export PG_CONFIG
	exec 9>"$lock"
	flock 9
	make -s install >/dev/null
elif [ -n "${RECSYS_PG_ROOT:-}" ]; then
	# A private copy of the PostgreSQL install (binaries find their share and
	# lib directories relative to themselves), so that several checkouts can
	# install and test at once without sharing the machine-wide extension
	# directory.
	bash test/harness/private_root.sh "$RECSYS_PG_ROOT"
	PGBIN=$RECSYS_PG_ROOT/usr/lib/postgresql/15/bin
	exec 9>"$RECSYS_PG_ROOT/.lock"
	flock 9
	make -s install DESTDIR="$RECSYS_PG_ROOT" >/dev/null
else
	# The extension directory is machine-wide: one install-and-run at a time.
	exec 9>/tmp/recsys-cluster.lock
	flock 9
	make -s install >/dev/null
fi
export PATH="$PGBIN:$PATH"

tmp=$(mktemp -d /tmp/recsys-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$tmp"
	as_pg=(runuser -u postgres --)
fi
port=$(( 20000 + RANDOM % 20000 ))
cleanup() {
	"${as_pg[@]}" pg_ctl -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
	if [ "${KEEP_CLUSTER_LOG:-}" = 1 ]; then cp "$tmp/log" "$top/cluster.log" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# OpenBLAS must not start threads inside backends; parallel query does parallelism.
export OPENBLAS_NUM_THREADS=1
"${as_pg[@]}" initdb -D "$tmp/data" -U postgres -A trust --no-sync >/dev/null
pgopts=(-p "$port" -k "$tmp" -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off)
# RECSYS_PRELOAD=1: recsys in shared_preload_libraries (recsys.training_progress())
if [ "${RECSYS_PRELOAD:-}" = 1 ]; then pgopts+=(-c shared_preload_libraries=recsys); fi
if [ "${RECSYS_VALGRIND:-}" = 1 ]; then
	# memcheck every backend; errors are counted from the log when the job ends
	"${as_pg[@]}" valgrind --quiet --trace-children=yes --error-exitcode=0 --leak-check=no \
		--num-callers=20 --suppressions="$top/test/harness/valgrind.supp" --log-file="$tmp/valgrind.%p.log" \
		postgres -D "$tmp/data" "${pgopts[@]}" >"$tmp/log" 2>&1 &
	for _ in $(seq 120); do pg_isready -q -h "$tmp" -p "$port" && break; sleep 1; done
else
	"${as_pg[@]}" pg_ctl -D "$tmp/data" -l "$tmp/log" -w -t 60 start -o "${pgopts[*]}" >/dev/null
fi
export PGHOST=$tmp PGPORT=$port PGUSER=postgres PGDATABASE=postgres
export RECSYS_TOP=$top

status=0
case "$mode" in
	demo)  bash test/demo/run.sh "$@" || status=$? ;;
	test)  bash test/harness/run_tests.sh "$@" || status=$? ;;
	bench) bash test/harness/run_bench.sh "$@" || status=$? ;;
	run)   "$@" || status=$? ;;
	*) echo "with_cluster.sh: unknown mode '$mode'" >&2; exit 2 ;;
esac
if [ "${RECSYS_VALGRIND:-}" = 1 ]; then
	"${as_pg[@]}" pg_ctl -D "$tmp/data" -m fast stop >/dev/null 2>&1 || true
	errors=$(cat "$tmp"/valgrind.*.log 2>/dev/null | grep -c 'Invalid \|uninitialised\|Mismatched\|overlap' || true)
	echo "valgrind: $errors memory errors in $(ls "$tmp"/valgrind.*.log 2>/dev/null | wc -l) processes"
	if [ "$errors" != 0 ]; then
		grep -h -A25 'Invalid \|uninitialised\|Mismatched\|overlap' "$tmp"/valgrind.*.log | head -200
		status=1
	fi
fi
exit $status
