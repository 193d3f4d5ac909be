#!/usr/bin/env bash
# Install recsys, start a throwaway Citus cluster (a coordinator and two workers
# on 127.0.0.1), run the pgTAP suites in test/citus/ on the coordinator, stop it.
# Usage: with_citus.sh test [suite.sql...]   (default: every test/citus/*.sql, then
#                                             doc/citus.md's examples)
#        with_citus.sh run COMMAND...          (PGHOST/PGPORT/PGDATABASE: the coordinator;
#                                               CITUS_WORKER_PORTS: the workers' ports)
#
# Citus itself must be installed in the machine-wide PostgreSQL 15; when it is
# not, CITUS_INSTALL (default ../shared/citus/install.sh, beside the checkout)
# builds it.  Users install Citus from its own packages instead.
set -euo pipefail
mode=${1:?usage: with_citus.sh test|run [args...]}
shift
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
syslib=$(pg_config --pkglibdir)
sysshare=$(pg_config --sharedir)

if [ ! -f "$syslib/citus.so" ]; then
	installer=${CITUS_INSTALL:-$top/../shared/citus/install.sh}
	if [ ! -f "$installer" ]; then
		echo "with_citus.sh: Citus is not installed in $syslib and $installer does not exist" >&2
		echo "with_citus.sh: install Citus 13 for PostgreSQL 15, or set CITUS_INSTALL" >&2
		exit 1
	fi
	# one build at a time on this machine
	(flock 8; bash "$installer") 8>/tmp/recsys-citus-install.lock
fi

PGBIN=/usr/lib/postgresql/15/bin
if [ -n "${RECSYS_PG_ROOT:-}" ]; then
	# A private copy of PostgreSQL (see with_cluster.sh).  A copy made before
	# Citus was installed lacks Citus's files: bring them over (again when the
	# machine-wide ones changed).
	bash test/harness/private_root.sh "$RECSYS_PG_ROOT"
	PGBIN=$RECSYS_PG_ROOT/usr/lib/postgresql/15/bin
	exec 9>"$RECSYS_PG_ROOT/.lock"
	flock 9
	find "$syslib" "$sysshare/extension" -path "$syslib/bitcode" -prune -o -type f \
		\( -name 'citus*' -o -name 'columnar*' -o -path '*/citus_decoders/*' \) -print |
	while read -r f; do
		dest=$RECSYS_PG_ROOT$f
		if ! cmp -s "$f" "$dest"; then
			mkdir -p "$(dirname "$dest")"
			cp -p "$f" "$dest"
		fi
	done
	make -s install DESTDIR="$RECSYS_PG_ROOT" >/dev/null
else
	exec 9>/tmp/recsys-cluster.lock
	flock 9
	make -s install >/dev/null
fi
export PATH="$PGBIN:$PATH"
if [ ! -f "$(pg_config --pkglibdir)/citus.so" ]; then
	echo "with_citus.sh: citus.so is missing from $(pg_config --pkglibdir)" >&2
	exit 1
fi

tmp=$(mktemp -d /tmp/recsys-citus.XXXXXX)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$tmp"
	as_pg=(runuser -u postgres --)
fi
nodes=(coordinator worker1 worker2)
declare -A port
cleanup() {
	for n in "${nodes[@]}"; do
		[ -d "$tmp/$n" ] && "${as_pg[@]}" pg_ctl -D "$tmp/$n" -m immediate stop >/dev/null 2>&1 || true
	done
	if [ "${KEEP_CLUSTER_LOG:-}" = 1 ]; then
		for n in "${nodes[@]}"; do cp "$tmp/$n.log" "$top/citus-$n.log" 2>/dev/null || true; done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# a free TCP port on 127.0.0.1 (nothing answers a connect)
free_port() {
	local p
	while :; do
		p=$(( 20000 + RANDOM % 20000 ))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

export OPENBLAS_NUM_THREADS=1
for n in "${nodes[@]}"; do
	port[$n]=$(free_port)
	"${as_pg[@]}" initdb -D "$tmp/$n" -U postgres -A trust --no-sync >/dev/null
	# trust only on the Unix socket and loopback; nothing else may connect
	cat >"$tmp/$n/pg_hba.conf" <<-EOF
		local all all trust
		host  all all 127.0.0.1/32 trust
	EOF
	opts=(-p "${port[$n]}" -k "$tmp" -c listen_addresses=127.0.0.1
		-c shared_preload_libraries=citus -c max_prepared_transactions=100
		-c "citus.node_conninfo='sslmode=disable'"
		-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
	"${as_pg[@]}" pg_ctl -D "$tmp/$n" -l "$tmp/$n.log" -w -t 60 start -o "${opts[*]}" >/dev/null
done

db=recsys_citus
psql_on() {
	local n=$1
	shift
	psql -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "${port[$n]}" -U postgres "$@"
}
for n in "${nodes[@]}"; do
	psql_on "$n" -d postgres -c "CREATE DATABASE $db" >/dev/null
	psql_on "$n" -d "$db" -c 'CREATE EXTENSION citus' >/dev/null
done
psql_on coordinator -d "$db" >/dev/null <<-EOF
	SELECT citus_set_coordinator_host('127.0.0.1', ${port[coordinator]});
	SELECT citus_add_node('127.0.0.1', ${port[worker1]});
	SELECT citus_add_node('127.0.0.1', ${port[worker2]});
	-- forwarded to the workers by Citus
	CREATE EXTENSION recsys;
	CREATE EXTENSION pgtap;
EOF
echo "citus: coordinator 127.0.0.1:${port[coordinator]}, workers :${port[worker1]} :${port[worker2]}"

export PGHOST=$tmp PGPORT=${port[coordinator]} PGUSER=postgres PGDATABASE=$db
export CITUS_WORKER_PORTS="${port[worker1]} ${port[worker2]}"
export RECSYS_TOP=$top
status=0
case "$mode" in
	test)
		cd test/citus
		all=$#
		[ $# -eq 0 ] && set -- *.sql
		pg_prove -d "$db" "$@" || status=$?
		cd "$top"
		if [ "$all" -eq 0 ]; then
			# doc/citus.md's examples, on a fresh database with Citus on every node
			echo "== documentation examples (Citus)"
			"${PYTHON:-/usr/bin/python3}" test/harness/doc_examples.py --citus doc/citus.md || status=1
		fi
		;;
	run)
		"$@" || status=$?
		;;
	*) echo "with_citus.sh: unknown mode '$mode'" >&2; status=2 ;;
esac
exit $status
