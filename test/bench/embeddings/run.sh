#!/usr/bin/env bash
# Benchmark of recsys.train_embeddings: a MovieLens-like implicit data set
# (gen.py), each user's most recent 20% held out; per method and epoch the
# seconds, loss, Recall@20 and NDCG@20, a popularity baseline, SOGram against
# sampled negatives at equal epochs and equal time, and a plot of Recall@20
# against training time (test/bench/out/embeddings_recall.png).
#
# Then tune.sh: the solvers (cholesky and cg at dim 64 and 128) and a tuning
# grid of gramian_weight, l2 with nu, and dim (EMB_TUNE=0 skips it); then
# scale.sh: als at 5M and 20M interactions (memory engine with cholesky
# and cg, the aggregate engine, the BLAS floor in numpy); EMB_SCALE=0 skips
# it, EMB_QUALITY=0 skips the first part.
#
# Size knobs (environment): EMB_USERS, EMB_ITEMS, EMB_INTERACTIONS,
# EMB_EPOCHS, EMB_DIM, EMB_METHODS (and scale.sh's).  Run through
# with_cluster.sh (PGDATABASE).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../out"
mkdir -p "$out"
users=${EMB_USERS:-6040}
items=${EMB_ITEMS:-3706}
interactions=${EMB_INTERACTIONS:-1000000}
epochs=${EMB_EPOCHS:-6}
dim=${EMB_DIM:-64}
methods=${EMB_METHODS:-als sogram sagram sampled}

if [ "${EMB_QUALITY:-1}" = 1 ]; then
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "data: $users users, $items items, ~$interactions interactions; dim $dim; epochs 1..$epochs (sampled 1..$((2 * epochs))); methods: $methods"
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE TABLE bench_interactions (user_id int, item_id int, ts bigint)'
/usr/bin/python3 "$here/gen.py" --users "$users" --items "$items" --interactions "$interactions" |
	psql -X -q -v ON_ERROR_STOP=1 -c '\copy bench_interactions FROM STDIN CSV HEADER'
start=$(date +%s)
psql -X -q -v ON_ERROR_STOP=1 -v epochs="$epochs" -v dim="$dim" -v methods="$methods" -f "$here/bench.sql"
echo "benchmark ran $(( $(date +%s) - start )) s"
psql -X -v ON_ERROR_STOP=1 -f "$here/report.sql" | tee "$out/embeddings.txt"
echo "== reference: EASE in numpy on the same split" | tee -a "$out/embeddings.txt"
psql -X -q -v ON_ERROR_STOP=1 -c "\\copy bench_train TO '$out/embeddings_train.csv' CSV" \
	-c "\\copy (SELECT user_id, unnest(items) FROM bench_test) TO '$out/embeddings_test.csv' CSV"
/usr/bin/python3 "$here/ease.py" "$out/embeddings_train.csv" "$out/embeddings_test.csv" | tee -a "$out/embeddings.txt"
psql -X -q -A -F ' ' -t -v ON_ERROR_STOP=1 \
	-c "SELECT method, cumulative, recall FROM bench_results WHERE method <> 'popularity' ORDER BY method, epoch" \
	> "$out/embeddings_recall.dat"
pop=$(psql -X -q -A -t -c "SELECT recall FROM bench_results WHERE method = 'popularity'")
if command -v gnuplot >/dev/null; then
	gnuplot -e "datafile='$out/embeddings_recall.dat'; outfile='$out/embeddings_recall.png'; pop=$pop; methods='$methods'" \
		"$here/plot.gp"
	echo "plot: $out/embeddings_recall.png"
else
	echo "gnuplot not installed (deps.sh bench): no plot"
fi
fi
if [ "${EMB_TUNE:-1}" = 1 ]; then
	bash "$here/tune.sh"
fi
if [ "${EMB_SCALE:-1}" = 1 ]; then
	bash "$here/scale.sh"
fi
