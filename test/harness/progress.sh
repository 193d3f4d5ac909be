#!/usr/bin/env bash
# recsys.training_progress() seen from other sessions while trainings run, on
# a cluster with recsys in shared_preload_libraries:
#   RECSYS_PRELOAD=1 bash test/harness/with_cluster.sh run bash test/harness/progress.sh
# A training reads its rows through a view that waits, after the first fetch,
# for an advisory lock another session holds: the training is then known to
# be in its reading phase with exactly one fetch done, whatever the machine's
# speed, so every check below is exact (no timing is asserted).
set -euo pipefail
db=recsys_progress
work=$(mktemp -d /tmp/recsys-progress.XXXXXX)
chmod 777 "$work"
holder=
cleanup() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
export PGDATABASE=$db
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
fail() { echo "progress.sh: FAILED: $*" >&2; exit 1; }
check() { # check NAME EXPECTED ACTUAL
	if [ "$2" != "$3" ]; then fail "$1: expected '$2', got '$3'"; fi
	echo "ok - $1"
}

q <<'SQL'
CREATE EXTENSION recsys;
CREATE TABLE plays AS SELECT u AS user_id, (u * 7 + k * k) % 100 AS item_id
FROM generate_series(1, 2000) u, generate_series(1, 10) k;
CREATE TABLE rows AS SELECT ARRAY[sin(g), cos(g)]::real[] AS f, (g % 2)::float8 AS click
FROM generate_series(1, 3000) g;
-- row n waits for advisory lock 7 (shared) when n is the first row of the second fetch
CREATE FUNCTION gate(n bigint, at bigint) RETURNS boolean LANGUAGE sql VOLATILE AS $$
	SELECT CASE WHEN n = at THEN (SELECT true FROM pg_advisory_lock_shared(7)) ELSE true END
$$;
CREATE VIEW gated_plays AS SELECT user_id, item_id
FROM (SELECT p.*, row_number() OVER () AS n FROM plays p) s WHERE gate(n, 10001);
CREATE VIEW gated_rows AS SELECT f, click
FROM (SELECT r.*, row_number() OVER () AS n FROM rows r) s WHERE gate(n, 1001);
CREATE ROLE progress_other LOGIN;
CREATE ROLE progress_stats LOGIN IN ROLE pg_read_all_stats;
GRANT USAGE ON SCHEMA recsys TO progress_other, progress_stats;
SQL

# the holder session takes lock 7 and keeps it until told
mkfifo "$work/holder"
psql -X -q -At <"$work/holder" >/dev/null &
holder=$!
exec 3>"$work/holder"
hold() {
	echo "SELECT pg_advisory_lock(7);" >&3
	for _ in $(seq 300); do
		[ "$(q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7 AND granted")" = 1 ] && return
		sleep 0.1
	done
	fail "the holder did not get the lock"
}
release() { echo "SELECT pg_advisory_unlock(7);" >&3; }
# wait until a training of model $1 is blocked at the gate
wait_blocked() {
	for _ in $(seq 600); do
		[ "$(q -c "SELECT count(*) FROM recsys.training_progress() p JOIN pg_locks l ON l.pid = p.pid
			WHERE p.model = '$1' AND l.locktype = 'advisory' AND NOT l.granted")" = 1 ] && return
		sleep 0.1
	done
	fail "no training of $1 waited at the gate"
}

check "no training runs" 0 "$(q -c "SELECT count(*) FROM recsys.training_progress()")"

# 1. train_embeddings: seen in its reading phase, one fetch (10000 rows) done
hold
q -c "SET recsys.progress_interval = 1" \
	-c "SELECT count(*) FROM recsys.train_embeddings('p_emb', 'gated_plays', dim => 4, epochs => 3)" \
	>"$work/emb.out" 2>"$work/emb.err" &
trainer=$!
wait_blocked p_emb
check "train_embeddings as another session sees it" \
	"train_embeddings|p_emb|als|reading||3|10000||rows|$db|postgres|t|t" \
	"$(q -c "SELECT p.function, p.model, p.method, p.phase, p.epoch, p.epochs, p.done, p.total, p.unit,
		d.datname, r.rolname, p.started_at <= p.updated_at, p.phase_seconds_left IS NULL
		FROM recsys.training_progress() p JOIN pg_database d ON d.oid = p.datid JOIN pg_roles r ON r.oid = p.userid")"
check "a role without its privileges sees the row, not the details" "t|t|t" \
	"$(PGUSER=progress_other q -c "SELECT p.pid IS NOT NULL, p.model IS NULL, p.phase IS NULL FROM recsys.training_progress() p")"
check "pg_read_all_stats sees the details" "p_emb|reading" \
	"$(PGUSER=progress_stats q -c "SELECT p.model, p.phase FROM recsys.training_progress() p")"
# the interval (1 s) passes while the training waits: its next fetch reports
sleep 1.2
release
wait "$trainer" || fail "train_embeddings failed: $(cat "$work/emb.err")"
check "train_embeddings finished its epochs" 3 "$(cat "$work/emb.out")"
grep -Eq '^NOTICE:  train_embeddings "p_emb": reading: [0-9]+ rows in [0-9.]+ s$' "$work/emb.err" \
	|| fail "no progress NOTICE in the training's session: $(cat "$work/emb.err")"
echo "ok - a progress NOTICE within the reading phase"
check "a finished training leaves no row" 0 "$(q -c "SELECT count(*) FROM recsys.training_progress()")"

# 2. train_mmoe, cancelled while it reads: its row goes with the error, while
#    its session lives on
hold
q -c "SELECT count(*) FROM recsys.train_mmoe('p_mmoe', 'gated_rows', 'f', '{click}',
		'{\"kind\": \"mmoe\", \"input_dim\": 2, \"experts\": {\"count\": 1, \"hidden\": [2]}, \"tasks\": [{\"name\": \"click\", \"type\": \"binary\"}]}', epochs => 2)" \
	>"$work/mmoe.out" 2>"$work/mmoe.err" &
trainer=$!
wait_blocked p_mmoe
check "train_mmoe as another session sees it" "train_mmoe|p_mmoe|uncertainty|reading|2|1000|rows" \
	"$(q -c "SELECT function, model, method, phase, epochs, done, unit FROM recsys.training_progress()")"
psql -X -q -At -c "SELECT pg_sleep(0.2)" >/dev/null
q -c "SELECT pg_cancel_backend(pid) FROM recsys.training_progress() WHERE model = 'p_mmoe'" >/dev/null
wait "$trainer" && fail "the cancelled training succeeded"
grep -q "canceling statement due to user request" "$work/mmoe.err" || fail "not cancelled: $(cat "$work/mmoe.err")"
release
echo "ok - train_mmoe cancelled"

# the slot is cleared by the error, not by the session's exit: a label of 2
# for a binary task stops the training after it read its rows
q -c "CREATE TABLE bad_rows AS SELECT f, click + 1 AS click FROM rows"
psql -X -q -At -c "SELECT count(*) FROM recsys.train_mmoe('p_mmoe', 'bad_rows', 'f', '{click}',
		'{\"kind\": \"mmoe\", \"input_dim\": 2, \"experts\": {\"count\": 1, \"hidden\": [2]}, \"tasks\": [{\"name\": \"click\", \"type\": \"binary\"}]}', epochs => 2)" \
	-c "SELECT pg_sleep(60)" >/dev/null 2>"$work/bad.err" &
trainer=$!
sleeper=
for _ in $(seq 300); do
	sleeper=$(q -c "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'")
	[ -n "$sleeper" ] && break
	sleep 0.1
done
[ -n "$sleeper" ] || fail "the failing training's session did not go on: $(cat "$work/bad.err")"
grep -q "ERROR" "$work/bad.err" || fail "the training did not fail"
check "a failed training leaves no row while its session lives" 0 \
	"$(q -c "SELECT count(*) FROM recsys.training_progress()")"
q -c "SELECT pg_terminate_backend($sleeper)" >/dev/null
wait "$trainer" || true

exec 3>&-
wait "$holder" || true
holder=
psql -X -q -d postgres -c "DROP DATABASE $db" -c "DROP ROLE progress_other" -c "DROP ROLE progress_stats" >/dev/null
echo "progress.sh: all checks passed"
