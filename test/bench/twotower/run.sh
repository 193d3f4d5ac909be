#!/usr/bin/env bash
# Benchmark of recsys.train_two_tower on data with a known structure (gen.py: features
# determine the latent vectors, long-tailed popularity, 10% of the items held out of
# training entirely):
#  1. Recall@20 / NDCG@20 on warm items (each user's held-out 20%) and on cold items, for
#     two-tower with each method, ALS (warm only: no vector for cold items; its defaults
#     and the best of a small grid) and popularity (warm: training counts; cold: the mean
#     count of the item's genre), all scored by eval.py (numpy);
#  2. the paper's comparison at equal time: validation Recall@20 (warm held-out pairs,
#     every item ranked) against cumulative training seconds, per method, plotted by
#     gnuplot into doc/two-tower-recall.png;
#  3. seconds per epoch of sogram against the same towers and estimator in PyTorch on one
#     thread (bench_torch.py, float32 and float64);
#  4. the memory recsys.training_memory counts and the epoch time at dim 64, at three data
#     sizes (bytes per user row and per pair), for the scale that fits one node.
# Size knobs: TT_USERS, TT_ITEMS, TT_INTERACTIONS, TT_EPOCHS.  Run through `make bench`
# or `bash test/harness/with_cluster.sh bench twotower`.
set -euo pipefail
cd "${RECSYS_TOP:?run through with_cluster.sh}"
here=test/bench/twotower
out=$PWD/test/bench/out/twotower
mkdir -p "$out"
epochs=${TT_EPOCHS:-10}
py() { /usr/bin/python3 "$@"; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

echo "twotower bench: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
py $here/gen.py "$out/data" --users "${TT_USERS:-5000}" --items "${TT_ITEMS:-2000}" \
	--interactions "${TT_INTERACTIONS:-100000}"
psql_q <<SQL
CREATE TABLE tt_users (user_id int, segment text, region int, age float8, activity float8);
CREATE TABLE tt_items (item_id int, genre text, tags text[], year float8, price float8);
CREATE TABLE tt_train (user_id int, item_id int);
CREATE TABLE tt_warm (user_id int, item_id int);
\copy tt_users FROM '$out/data/users.csv' CSV HEADER
\copy tt_items FROM '$out/data/items.csv' CSV HEADER
\copy tt_train FROM '$out/data/train.csv' CSV HEADER
\copy tt_warm FROM '$out/data/warm_test.csv' CSV HEADER
CREATE TABLE results (model text, method text, epoch int, seconds float8, recall float8);
SQL

config() {  # dim epochs method
	cat <<JSON
{"user": {"features": {"categorical": ["segment", "region"], "numeric": ["age", "activity"]}, "hidden": [64]},
 "item": {"features": {"categorical": ["genre"], "multi_categorical": ["tags"], "numeric": ["year", "price"]}, "hidden": [64]},
 "dim": $1, "epochs": $2, "method": "$3"}
JSON
}
vectors() {  # model -> eval.py's JSON
	psql_q -c "\\copy (SELECT id, embedding FROM recsys.user_vectors WHERE model = '$1') TO '$out/u_$1.csv' CSV" \
		-c "\\copy (SELECT id, embedding FROM recsys.item_vectors WHERE model = '$1') TO '$out/i_$1.csv' CSV"
	py $here/eval.py "$out/data" vectors "$out/u_$1.csv" "$out/i_$1.csv"
}
line() {  # label json
	py -c "import json, sys; r = json.loads(sys.argv[2]); print('%-26s warm recall@20 %.4f ndcg@20 %.4f   cold recall@20 %s ndcg@20 %s' % (sys.argv[1], r['warm_recall'], r['warm_ndcg'], '%.4f' % r['cold_recall'] if 'cold_recall' in r else '  -   ', '%.4f' % r['cold_ndcg'] if 'cold_ndcg' in r else '  -'))" "$1" "$2"
}

echo "== 1. quality (dim 32, hidden [64], $epochs epochs; defaults otherwise: $(psql_q -c "SELECT string_agg(name || ' ' || \"default\", ', ') FROM recsys.two_tower_options() WHERE name IN ('loss', 'learning_rate', 'batch_size', 'gramian_weight', 'alpha', 'negatives')"))"
report=()
for method in sogram sagram sampled exact; do
	e=$epochs
	[ "$method" = sampled ] && e=$((epochs * 3 / 2))
	psql_q -c "SET client_min_messages = warning" -c "INSERT INTO results SELECT 'tt_$method', '$method', epoch, seconds, recall
		FROM recsys.train_two_tower('tt_$method', 'tt_train', 'tt_users', 'tt_items', '$(config 32 $e $method)', validation => 'tt_warm')"
	report+=("$(line "two-tower $method" "$(vectors tt_$method)")")
	echo "${report[-1]}   ($(psql_q -c "SELECT round(sum(seconds)::numeric, 1) || ' s training, ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)::numeric, 3) || ' s per epoch' FROM results WHERE method = '$method'"))"
done
psql_q -c "SET client_min_messages = warning" -c "SELECT count(*) FROM recsys.train_embeddings('als', 'tt_train', dim => 32, epochs => 15)" >/dev/null
echo "$(line "als dim 32 (defaults)" "$(vectors als)")"
best=""
for a in "8 0.1" "16 0.1" "16 0.3" "32 0.3"; do
	set -- $a
	psql_q -c "SET client_min_messages = warning" -c "SELECT count(*) FROM recsys.train_embeddings('als_$1_$2', 'tt_train', dim => $1, epochs => 15, gramian_weight => $2, l2 => 0.01)" >/dev/null
	r=$(vectors "als_$1_$2")
	echo "$(line "als dim $1 w $2 l2 0.01" "$r")"
done
echo "$(line "popularity" "$(py $here/eval.py "$out/data" popularity)")"

echo "== 2. validation recall@20 against training seconds"
psql_q -F ' ' -c "SELECT method, sum(seconds) OVER (PARTITION BY method ORDER BY epoch), recall FROM results ORDER BY method, epoch" > "$out/curves.dat"
psql_q -c "SELECT method || ': ' || string_agg(format('%s s %s', round(c::numeric, 1), round(recall::numeric, 4)), ', ' ORDER BY epoch)
	FROM (SELECT method, epoch, recall, sum(seconds) OVER (PARTITION BY method ORDER BY epoch) AS c FROM results) q GROUP BY method ORDER BY method"
if command -v gnuplot >/dev/null; then
	gnuplot -e "datafile='$out/curves.dat'; outfile='$PWD/doc/two-tower-recall.png'" $here/plot.gp
	echo "plot: doc/two-tower-recall.png"
else
	echo "gnuplot not installed (deps.sh bench): no plot"
fi

echo "== 3. seconds per epoch: recsys sogram against PyTorch (one thread), same towers and estimator, back to back"
psql_q -c "SELECT config -> 'two_tower' FROM recsys.models WHERE name = 'tt_sogram'" > "$out/config.json"
for dtype in float32 float64; do
	psql_q -c "SET client_min_messages = warning" -c "SELECT 'recsys  sogram: median ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)::numeric, 3)
		|| ' s per epoch (float64; epochs ' || string_agg(round(seconds::numeric, 3)::text, ', ' ORDER BY epoch) || ')'
		FROM recsys.train_two_tower('speed_$dtype', 'tt_train', 'tt_users', 'tt_items', '$(config 32 3 sogram)')"
	py $here/bench_torch.py "$out/data" "$out/config.json" 3 $dtype |
		py -c "import json, sys; r = json.load(sys.stdin); s = sorted(r['seconds']); print('pytorch sogram: median %.3f s per epoch (%s; epochs %s)' % (s[len(s) // 2], r['dtype'], ', '.join('%.3f' % x for x in r['seconds'])))"
done

echo "== 4. dim 64: memory counted against recsys.training_memory and seconds per epoch"
# all pairs; every other user; half of each user's pairs: bytes per user row and per pair
psql_q -c "CREATE TABLE tt_half_users AS SELECT * FROM tt_users WHERE user_id % 2 = 0" \
	-c "CREATE TABLE tt_half AS SELECT * FROM tt_train WHERE user_id % 2 = 0" \
	-c "CREATE TABLE tt_pairhalf AS SELECT * FROM tt_train WHERE (user_id * 7 + item_id) % 2 = 0"
for d in "tt_train tt_users" "tt_half tt_half_users" "tt_pairhalf tt_users"; do
	set -- $d
	psql_q -c "SET client_min_messages = warning" -c "SELECT count(*) FROM recsys.train_two_tower('scale_$1', '$1', '$2', 'tt_items', '$(config 64 2 sogram)')" >/dev/null
	psql_q -c "SELECT format('%s: %s users, %s items, %s pairs, %s parameters: memory %s bytes, %s s per epoch (sogram)',
		'$1', config ->> 'n_user_rows', config ->> 'n_item_rows', config ->> 'n_interactions', octet_length(weights) / 4,
		metrics ->> 'memory_bytes', round((SELECT avg((e ->> 'seconds')::float8) FROM jsonb_array_elements(metrics -> 'log') e)::numeric, 3))
		FROM recsys.models WHERE name = 'scale_$1'"
done
