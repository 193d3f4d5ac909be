#!/usr/bin/env bash
# Benchmark of serving embeddings: recommend_all over every user of a
# MovieLens-20M-shaped model (random vectors written straight into the store:
# training a 20M model is the training bench's job) against the numpy floor
# (one thread, the same sgemm and top-k), with an exactness check on the
# first users; fold_in and recommend_for_items latency; and strong against
# weak generalization on the embeddings bench generator's data.
#
# Size knobs (environment): SRV_USERS, SRV_ITEMS, SRV_DIM, SRV_PER_USER,
# SRV_K, SRV_GEN_USERS, SRV_GEN_ITEMS, SRV_GEN_INTERACTIONS, SRV_GEN_DIM,
# SRV_GEN_EPOCHS.  Run through with_cluster.sh (PGDATABASE).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../out"
mkdir -p "$out"
users=${SRV_USERS:-138493}
items=${SRV_ITEMS:-27000}
dim=${SRV_DIM:-64}
per_user=${SRV_PER_USER:-145}
k=${SRV_K:-20}
dump=2000
report="$out/serving.txt"
work=$(mktemp -d /tmp/recsys-serving.XXXXXX)
chmod 777 "$work"
trap 'rm -rf "$work"' EXIT

{
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "OpenBLAS core: $(/usr/bin/python3 -c 'import numpy, ctypes.util, ctypes; l = ctypes.CDLL("/usr/lib/x86_64-linux-gnu/openblas-serial/libopenblas.so.0"); l.openblas_get_corename.restype = ctypes.c_char_p; print(l.openblas_get_corename().decode())' 2>/dev/null || echo unknown)"
echo "model: $users users x $items items, dim $dim, $per_user seen items per user ($((users * per_user)) interactions), k = $k"
} | tee "$report"
/usr/bin/python3 "$here/gen_model.py" --users "$users" --items "$items" --dim "$dim" --out "$work"
psql -X -q -v ON_ERROR_STOP=1 -v dir="$work" -v users="$users" -v items="$items" -v dim="$dim" \
	-v per_user="$per_user" -v k="$k" -v dump="$dump" -f "$here/bench.sql"
read -r np_secs np_gemm < <(OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$here/numpy_topk.py" "$work" "$k" "$per_user" "$dump")
psql -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO srv_results VALUES ('numpy floor: sgemm + top-k, every user, one thread', $users, $np_secs, 1000 * $np_secs / $users)" \
	-c "INSERT INTO srv_results VALUES ('numpy: the sgemm calls alone, every user', $users, $np_gemm, 1000 * $np_gemm / $users)"
{
psql -X -c "SELECT what, n, round(seconds::numeric, 3) AS seconds, round(per_unit_ms::numeric, 4) AS ms_each FROM srv_results"
psql -X -A -t -c "SELECT 'recommend_all / numpy floor: ' || round(((SELECT seconds FROM srv_results WHERE what LIKE 'recommend_all, every%') / (SELECT seconds FROM srv_results WHERE what LIKE 'numpy floor%'))::numeric, 2)
	|| '; recommend_all / numpy sgemm alone: ' || round(((SELECT seconds FROM srv_results WHERE what LIKE 'recommend_all, every%') / (SELECT seconds FROM srv_results WHERE what LIKE 'numpy: the sgemm%'))::numeric, 2)"
sort -t, -k1,1n -k3,3n "$work/serving_pg_top.csv" > "$work/a.csv"
sort -t, -k1,1n -k3,3n "$work/serving_numpy_top.csv" > "$work/b.csv"
echo "top-$k lists of the first $dump users equal to numpy's (ids and order): $(paste -d' ' "$work/a.csv" "$work/b.csv" | awk '$1 == $2 {s++} END {printf "%d of %d rows", s, NR}')"
} | tee -a "$report"

# strong against weak generalization
gu=${SRV_GEN_USERS:-6040}
gi=${SRV_GEN_ITEMS:-3706}
gn=${SRV_GEN_INTERACTIONS:-1000000}
gdim=${SRV_GEN_DIM:-64}
gep=${SRV_GEN_EPOCHS:-6}
echo "== strong vs weak generalization: $gu users, $gi items, ~$gn interactions (embeddings bench generator), dim $gdim, $gep als epochs; every 10th user held out, 80 % folded in, 20 % tested" | tee -a "$report"
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE TABLE srv_interactions (user_id int, item_id int, ts bigint)'
/usr/bin/python3 "$here/../embeddings/gen.py" --users "$gu" --items "$gi" --interactions "$gn" |
	psql -X -q -v ON_ERROR_STOP=1 -c '\copy srv_interactions FROM STDIN CSV HEADER'
psql -X -q -v ON_ERROR_STOP=1 -v dim="$gdim" -v epochs="$gep" -f "$here/strong.sql"
psql -X -c "SELECT protocol, users, round(recall::numeric, 4) AS recall_20, round(ndcg::numeric, 4) AS ndcg_20,
	round(train_seconds::numeric, 1) AS train_s, round(serve_seconds::numeric, 3) AS serve_s FROM srv_gen" | tee -a "$report"
