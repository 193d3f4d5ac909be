#!/usr/bin/env bash
# Threads (recsys.max_workers) on one machine: seconds per cg epoch and of
# recommend_all (top-20 for every user) with 1 and 2 threads, interleaved,
# PAR_REPS repetitions (medians), the load average before each run, and the
# ratios of the medians.  Data: the embeddings bench generator (gen.py),
# PAR_USERS x PAR_ITEMS, ~PAR_INTERACTIONS; dim PAR_DIM.  Also the serial
# fraction f of an epoch (1-thread time t1, 2-thread time t2: f = 2 t2 / t1 - 1,
# Amdahl) and the bound 1 / (f + (1 - f) / n) it gives at 32 and 64 threads.
# Per-epoch CPU seconds (all threads) come with the wall seconds: on a shared
# VM the second thread often waits for a core, which CPU = 2 x wall rules out.
# Run through with_cluster.sh (PGDATABASE); writes test/bench/out/parallel.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../out"
mkdir -p "$out"
users=${PAR_USERS:-60000}; items=${PAR_ITEMS:-20000}; n=${PAR_INTERACTIONS:-5000000}
dim=${PAR_DIM:-64}; epochs=${PAR_EPOCHS:-3}; reps=${PAR_REPS:-3}; threads=${PAR_THREADS:-2}
report="$out/parallel.txt"
{
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "data: $users users x $items items, ~$n interactions, dim $dim, $epochs cg epochs per run, $reps repetitions"
} | tee "$report"
# first without PostgreSQL: how much of a second core the machine gives now,
# and one ALS half-step on 1 and 2 threads (kernel_scaling.c)
top=$(cd "$here/../../.." && pwd)
blas_dir=/usr/lib/x86_64-linux-gnu/openblas-serial
cc -std=gnu11 -O2 -I"$top/src" -I/usr/include/x86_64-linux-gnu/openblas-serial "$here/kernel_scaling.c" \
	"$top/src/kernel/als_engine.c" "$top/src/kernel/linalg.c" "$top/src/kernel/parallel.c" "$top/src/blas_lock.c" \
	-L"$blas_dir" -Wl,-rpath,"$blas_dir" -lopenblas -lm -pthread -o "$out/kernel_scaling"
"$out/kernel_scaling" | tee -a "$report"
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE TABLE par_interactions (user_id int, item_id int, ts bigint)'
/usr/bin/python3 "$here/../embeddings/gen.py" --users "$users" --items "$items" --interactions "$n" |
	psql -X -q -v ON_ERROR_STOP=1 -c '\copy par_interactions FROM STDIN CSV HEADER'
psql -X -q -v ON_ERROR_STOP=1 -c 'VACUUM ANALYZE par_interactions' \
	-c 'CREATE TABLE par_times (rep int, what text, workers int, seconds float8, load1 float8)'

# one timed statement; the load average (1 min) read just before
timed() {
	local rep=$1 what=$2 workers=$3 sql=$4
	local load
	load=$(cut -d' ' -f1 /proc/loadavg)
	psql -X -q -v ON_ERROR_STOP=1 -At <<SQL
SET client_min_messages = warning;
SET recsys.max_workers = $workers;
$sql
INSERT INTO par_times SELECT $rep, '$what', $workers, seconds, $load FROM par_last;
SQL
}

for rep in $(seq 1 "$reps"); do
	for w in 1 "$threads"; do
		timed "$rep" cg_epoch "$w" "DROP TABLE IF EXISTS par_last;
CREATE TABLE par_last AS SELECT avg(seconds) AS seconds FROM recsys.train_embeddings('par_m$w', 'par_interactions',
	dim => $dim, epochs => $epochs, options => '{\"solver\": \"cg\"}');"
		timed "$rep" cg_epoch_cpu "$w" "DROP TABLE IF EXISTS par_last;
CREATE TABLE par_last AS SELECT avg((l->>'cpu_seconds')::float8) AS seconds FROM recsys.models m, jsonb_array_elements(m.metrics->'log') l
	WHERE m.name = 'par_m$w' AND m.version = (SELECT max(version) FROM recsys.models WHERE name = 'par_m$w');"
		timed "$rep" load "$w" "DROP TABLE IF EXISTS par_last;
CREATE TABLE par_last AS SELECT (metrics->>'load_seconds')::float8 AS seconds FROM recsys.models WHERE name = 'par_m$w' ORDER BY version DESC LIMIT 1;"
	done
	for w in 1 "$threads"; do
		timed "$rep" recommend_all "$w" "DROP TABLE IF EXISTS par_last;
CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS t;
SELECT count(*) FROM recsys.recommend_all('par_m1', 20) \\g /dev/null
CREATE TABLE par_last AS SELECT extract(epoch FROM clock_timestamp() - t) AS seconds FROM t0;"
	done
done

psql -X -q -v ON_ERROR_STOP=1 <<SQL | tee -a "$report"
\pset footer off
SELECT what, workers, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)::numeric, 3) AS median_s,
	round(min(seconds)::numeric, 3) AS min_s, round(max(seconds)::numeric, 3) AS max_s,
	round(avg(load1)::numeric, 1) AS load1, count(*) AS runs
FROM par_times GROUP BY 1, 2 ORDER BY 1, 2;
WITH m AS (SELECT what, workers, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS s FROM par_times GROUP BY 1, 2),
r AS (SELECT a.what, b.s / a.s AS ratio, 2 * b.s / a.s - 1 AS f FROM m a JOIN m b ON a.what = b.what AND a.workers = 1 AND b.workers = $threads
	WHERE a.what NOT IN ('load', 'cg_epoch_cpu'))
SELECT what, round(ratio::numeric, 3) AS "ratio ${threads}:1", round(greatest(f, 0)::numeric, 3) AS serial_fraction,
	round((1 / (greatest(f, 0.001) + (1 - greatest(f, 0.001)) / 32))::numeric, 1) AS amdahl_32,
	round((1 / (greatest(f, 0.001) + (1 - greatest(f, 0.001)) / 64))::numeric, 1) AS amdahl_64
FROM r ORDER BY 1;
SQL
