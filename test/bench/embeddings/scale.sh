#!/usr/bin/env bash
# Training at scale, in one run (heavy: run it niced on a quiet machine):
#  1. SCALE_* (default 5M interactions, 60,000 users x 20,000 items, gen.py):
#     seconds per epoch of als on the memory engine (cholesky, cg) and on the
#     aggregate engine, the BLAS floor of an exact epoch on the same pairs
#     (floor.py: numpy, one thread), Recall@20 per solver on an 80% split;
#  2. BIG_* (default 20M interactions, 138,000 x 27,000): cg seconds per epoch,
#     engine and backend peak memory, cancellation latency.
# Run through with_cluster.sh (PGDATABASE); writes test/bench/out/embeddings_scale.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../out"
mkdir -p "$out"
dim=${EMB_DIM:-64}
su=${SCALE_USERS:-60000}; si=${SCALE_ITEMS:-20000}; sn=${SCALE_INTERACTIONS:-5000000}
se=${SCALE_EPOCHS:-5}; sa=${SCALE_AGG_EPOCHS:-2}
bu=${BIG_USERS:-138000}; bi=${BIG_ITEMS:-27000}; bn=${BIG_INTERACTIONS:-20000000}; be=${BIG_EPOCHS:-3}
export OPENBLAS_NUM_THREADS=1
{
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "openblas: $(readlink -f /usr/lib/x86_64-linux-gnu/libopenblas.so.0), core $(/usr/bin/python3 -c \
	'import ctypes; l = ctypes.CDLL("libopenblas.so.0"); l.openblas_get_corename.restype = ctypes.c_char_p; print(l.openblas_get_corename().decode())')"
echo "== scale: $su users, $si items, ~$sn interactions; dim $dim; $se epochs (aggregate $sa); quality on an 80% split"
} | tee "$out/embeddings_scale.txt"
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE TABLE scale_interactions (user_id int, item_id int, ts bigint)'
/usr/bin/python3 "$here/gen.py" --users "$su" --items "$si" --interactions "$sn" |
	psql -X -q -v ON_ERROR_STOP=1 -c '\copy scale_interactions FROM STDIN CSV HEADER'
psql -X -q -v ON_ERROR_STOP=1 -v dim="$dim" -v epochs="$se" -v agg_epochs="$sa" -f "$here/scale.sql" |
	tee -a "$out/embeddings_scale.txt"
psql -X -q -v ON_ERROR_STOP=1 -c "\\copy (SELECT user_id, item_id FROM scale_interactions GROUP BY 1, 2) TO '$out/scale_pairs.csv' CSV"
echo "== BLAS floor of one exact epoch on the same interactions (numpy, one thread)" | tee -a "$out/embeddings_scale.txt"
/usr/bin/python3 "$here/floor.py" "$out/scale_pairs.csv" "$dim" | tee -a "$out/embeddings_scale.txt"
rm -f "$out/scale_pairs.csv"
psql -X -q -c 'DROP TABLE scale_interactions, scale_train, scale_test'

echo "== big: $bu users, $bi items, ~$bn interactions; dim $dim; cg, $be epochs" | tee -a "$out/embeddings_scale.txt"
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE TABLE big_interactions (user_id int, item_id int, ts bigint)'
/usr/bin/python3 "$here/gen.py" --users "$bu" --items "$bi" --interactions "$bn" |
	psql -X -q -v ON_ERROR_STOP=1 -c '\copy big_interactions FROM STDIN CSV HEADER'
psql -X -q -v ON_ERROR_STOP=1 -v dim="$dim" -v epochs="$be" -f "$here/big.sql" | tee -a "$out/embeddings_scale.txt"
psql -X -q -c 'DROP TABLE big_interactions'
