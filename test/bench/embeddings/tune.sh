#!/usr/bin/env bash
# The solvers of als (cholesky and cg at dim 64 and 128) and a starting grid
# for gramian_weight, l2 with nu, and dim (cg), on gen.py's MovieLens-like data
# (the embeddings benchmark's, smaller by default): Recall@20, NDCG@20 and
# seconds per run.  The figures in doc/embeddings.md ("Tuning") come from it.
# Knobs: TUNE_USERS, TUNE_ITEMS, TUNE_INTERACTIONS, TUNE_EPOCHS.
# Run through with_cluster.sh (PGDATABASE); writes test/bench/out/embeddings_tune.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../out"
mkdir -p "$out"
users=${TUNE_USERS:-6040}; items=${TUNE_ITEMS:-3706}; n=${TUNE_INTERACTIONS:-1000000}; epochs=${TUNE_EPOCHS:-15}
export OPENBLAS_NUM_THREADS=1
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" | tee "$out/embeddings_tune.txt"
echo "data: $users users, $items items, ~$n interactions; $epochs epochs" | tee -a "$out/embeddings_tune.txt"
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION IF NOT EXISTS recsys' -c 'CREATE TABLE tune_interactions (user_id int, item_id int, ts bigint)'
/usr/bin/python3 "$here/gen.py" --users "$users" --items "$items" --interactions "$n" |
	psql -X -q -v ON_ERROR_STOP=1 -c '\copy tune_interactions FROM STDIN CSV HEADER'
psql -X -q -v ON_ERROR_STOP=1 -v epochs="$epochs" -f "$here/tune.sql" | tee -a "$out/embeddings_tune.txt"
