#!/usr/bin/env bash
# The 20M figures of issue 25 in one run (not part of make bench: minutes of
# generation): MovieLens-20M-shaped data (gen.py, BIG_USERS x BIG_ITEMS,
# ~BIG_INTERACTIONS), cg dim 64 on 1 and BIG_THREADS threads: load (read,
# check, build), seconds per epoch, store (the statement's time after the
# models row), recommend_all top-20 for every user, the backend's peak
# resident memory; and, for the load target, the CSR matrix (both sides)
# built from numpy arrays of the same pairs, as an implicit user builds it.
# Run through with_cluster.sh run; writes test/bench/out/parallel_big.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../out"
mkdir -p "$out"
users=${BIG_USERS:-138000}; items=${BIG_ITEMS:-27000}; n=${BIG_INTERACTIONS:-20000000}
epochs=${BIG_EPOCHS:-3}; threads=${BIG_THREADS:-2}
report="$out/parallel_big.txt"
work=$(mktemp -d /tmp/recsys-big.XXXXXX)
chmod 777 "$work"
trap 'rm -rf "$work"' EXIT
{
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $users users x $items items, ~$n interactions, dim 64, cg, $epochs epochs"
} | tee "$report"
/usr/bin/python3 "$here/../embeddings/gen.py" --users "$users" --items "$items" --interactions "$n" > "$work/all.csv"
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE TABLE big_interactions (user_id int, item_id int, ts bigint)' \
	-c "\\copy big_interactions FROM '$work/all.csv' CSV HEADER" -c 'VACUUM ANALYZE big_interactions'
/usr/bin/python3 - "$work/all.csv" <<'PY' | tee -a "$report"
import sys, time
import numpy as np
import scipy.sparse as sp
a = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, usecols=(0, 1), dtype=np.int64)
t0 = time.perf_counter()
uid, u = np.unique(a[:, 0], return_inverse=True)
iid, i = np.unique(a[:, 1], return_inverse=True)
m = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(len(uid), len(iid)))
m.sum_duplicates()
t = m.T.tocsr()
print("csr from numpy arrays (both sides, duplicates summed): %.3f s" % (time.perf_counter() - t0))
PY
for w in 1 "$threads"; do
	psql -X -q -v ON_ERROR_STOP=1 -At <<SQL | tee -a "$report"
SET client_min_messages = warning;
SET recsys.max_workers = $w;
SELECT pg_backend_pid() AS pid \gset
CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS t;
CREATE TEMP TABLE log AS SELECT * FROM recsys.train_embeddings('big$w', 'big_interactions', dim => 64, epochs => $epochs,
	options => '{"solver": "cg"}');
SELECT format('workers %s: load %s s, epoch %s s (median; CPU %s s), store %s s, engine memory %s MB',
	$w, round((m.metrics->>'load_seconds')::numeric, 2),
	round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FROM log)::numeric, 3),
	round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY (l->>'cpu_seconds')::float8) FROM jsonb_array_elements(m.metrics->'log') l)::numeric, 3),
	round((extract(epoch FROM clock_timestamp() - (SELECT t FROM t0)) - (m.metrics->>'train_seconds')::float8)::numeric, 2),
	round((m.metrics->>'memory_bytes')::numeric / 1048576, 1))
FROM recsys.models m WHERE m.name = 'big$w';
\setenv BACKEND_PID :pid
\! echo "  backend \$(grep VmHWM /proc/\$BACKEND_PID/status)"
UPDATE t0 SET t = clock_timestamp();
SELECT count(*) FROM recsys.recommend_all('big1', 20) \g /dev/null
SELECT format('workers %s: recommend_all top-20 for every user %s s', $w,
	round(extract(epoch FROM clock_timestamp() - (SELECT t FROM t0))::numeric, 2));
SQL
done
