#!/usr/bin/env bash
# Benchmark: scoring candidate tables with stored MMoE models, in one run beside PyTorch on one
# thread, for two models: "bench" (input 128, 8 experts of [256, 128], 2 tasks with towers
# [64]) and "small" (input 32, 4 experts of [64, 32], 2 tasks with towers [16]).
#
# Over BENCH_ROWS candidates (default 1M = 10k users x 100):
#   top 10 per user   recsys.predict_top_k serial and with 2 parallel workers, against PyTorch
#                     batched scoring plus numpy argpartition per user
#   whole table       recsys.predict_table, against PyTorch batched scoring
#   per row           recsys.predict, against PyTorch batched, with the read-bandwidth bound
#                     (weights bytes per row over one core's read bandwidth, readbw.c)
#   predict_batch     requests of 1000 candidates as real[][] (bench model only)
# Figures land in test/bench/out/mmoe.json and are appended to test/bench/out/mmoe.txt.
# Run through `make bench` or `bash test/harness/with_cluster.sh bench mmoe`.
set -euo pipefail
cd "${RECSYS_TOP:?run through with_cluster.sh}"
rows=${BENCH_ROWS:-1000000}
per_user=100
users=$(( rows / per_user ))
rows=$(( users * per_user ))
torch_rows=$(( rows < 200000 ? rows : 200000 ))
out=test/bench/out
mkdir -p "$out"
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

coretype=$(OPENBLAS_VERBOSE=2 /usr/bin/python3 -c "import numpy as n; a=n.ones((64,64),n.float32); a@a" 2>&1 | sed -n 's/^Core: //p' | head -1)
echo "mmoe bench: $rows candidates ($users users x $per_user), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), OpenBLAS core ${coretype:-unknown} (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<auto>})"
gcc -O3 -o "$out/readbw" test/bench/mmoe/readbw.c

# time one statement in the server, in seconds; extra settings first
timed() {
	psql_q <<SQL
$2
CREATE FUNCTION pg_temp.t(q text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz;
BEGIN
	t0 := clock_timestamp();
	EXECUTE q;
	RETURN extract(epoch FROM clock_timestamp() - t0);
END \$\$;
SELECT pg_temp.t(\$q\$$1\$q\$);
SQL
}
serial="SET max_parallel_workers_per_gather = 0;"
parallel2="SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET parallel_leader_participation = off;"

results=()
for model in bench small; do
	torch_json=$(/usr/bin/python3 test/bench/mmoe/bench_torch.py "$out" "$torch_rows" "$model")
	echo "pytorch $model: $torch_json"
	weight_bytes=$(/usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])['weight_bytes_per_row'])" "$torch_json")
	read_bw=$("$out/readbw" "$weight_bytes")
	dim=$([ "$model" = bench ] && echo 128 || echo 32)

	psql_q -c "SELECT recsys.import_model('$model', pg_read_binary_file('$PWD/$out/mmoe_$model.safetensors'))" >/dev/null
	# 1000 distinct feature vectors spread over the candidates (consecutive rows differ),
	# stored user by user as a candidate generator writes them, with an index on the user
	psql_q <<SQL >/dev/null
DROP TABLE IF EXISTS candidates;
CREATE TEMP TABLE base AS
	SELECT b, (SELECT array_agg(((hashint8(b * $dim + j) % 2000) / 1000.0)::real) FROM generate_series(1, $dim) j) AS features
	FROM generate_series(0, 999) b;
CREATE TABLE candidates AS
	SELECT (i - 1) / $per_user + 1 AS user_id, i::bigint AS item_id, base.features
	FROM generate_series(1, $rows) i JOIN base ON base.b = (i::bigint * 7919) % 1000
	ORDER BY i;
CREATE INDEX ON candidates (user_id);
VACUUM ANALYZE candidates;
SQL
	# warm up: load the model, bring the table into the OS cache
	psql_q -c "SELECT count(features), sum((recsys.predict('$model', features))[1]) FILTER (WHERE item_id <= 1000) FROM candidates" >/dev/null

	topk_q="SELECT sum(cardinality(t)) FROM (SELECT user_id, recsys.predict_top_k('$model', features, item_id, 10, '{0.7,0.3}') t FROM candidates GROUP BY user_id) s"
	plan_serial=$(psql_q -c "$serial EXPLAIN (COSTS OFF) $topk_q" | tr '\n' ';')
	plan_parallel=$(psql_q -c "$parallel2 EXPLAIN (COSTS OFF) $topk_q" | tr '\n' ';')
	scan=$(timed "SELECT count(features) FROM candidates" "$serial")
	topk_serial=$(timed "$topk_q" "$serial")
	topk_par=$(timed "$topk_q" "$parallel2")
	table=$(timed "SELECT sum(scores[1] + scores[2]) FROM recsys.predict_table('$model', 'candidates', 'item_id', 'features')" "$serial")
	per_row=$(timed "SELECT sum(p[1] + p[2]) FROM (SELECT recsys.predict('$model', features) p FROM candidates) s" "$serial")
	batched=0
	if [ "$model" = bench ]; then
		# requests of 10 users (1000 candidates), fetched through the index on user_id
		batched=$(timed "SELECT sum(s.scores[1] + s.scores[2]) FROM generate_series(1, $(( users / 10 ))) r,
	LATERAL recsys.predict_batch('$model', ARRAY(SELECT c.features FROM candidates c WHERE c.user_id > (r - 1) * 10 AND c.user_id <= r * 10 ORDER BY c.item_id)) s" "$serial")
	fi
	# the paths agree: top 10 of the first 20 users against per-row predict, and table vs per row
	parity=$(psql_q <<SQL
$serial
WITH pr AS (SELECT user_id, item_id, (0.7::float8 * p[1] + 0.3::float8 * p[2])::real AS s
	FROM (SELECT user_id, item_id, recsys.predict('$model', features) p FROM candidates WHERE user_id <= 20) a),
want AS (SELECT user_id, array_agg(item_id ORDER BY s DESC, item_id) ids FROM
	(SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY s DESC, item_id) rn FROM pr) x WHERE rn <= 10 GROUP BY user_id),
got AS (SELECT user_id, recsys.predict_top_k('$model', features, item_id, 10, '{0.7,0.3}') t FROM candidates WHERE user_id <= 20 GROUP BY user_id)
SELECT (SELECT count(*) FROM got JOIN want USING (user_id) WHERE (SELECT array_agg(item_id ORDER BY o) FROM unnest(t) WITH ORDINALITY u(item_id, score, o)) = ids)
	|| ' ' || (SELECT max(abs(u.score - p.s)) FROM got, LATERAL unnest(t) u JOIN pr p USING (item_id))
	|| ' ' || (SELECT max(greatest(abs(t.scores[1] - (recsys.predict('$model', c.features))[1]), abs(t.scores[2] - (recsys.predict('$model', c.features))[2])))
		FROM recsys.predict_table('$model', 'candidates', 'item_id', 'features') t JOIN candidates c ON c.item_id = t.id WHERE c.user_id <= 20);
SQL
)
	results+=("$(/usr/bin/python3 - "$model" "$rows" "$scan" "$topk_serial" "$topk_par" "$table" "$per_row" "$batched" "$read_bw" "$parity" "$plan_parallel" "$torch_json" <<'PY'
import json, sys
model, rows = sys.argv[1], int(sys.argv[2])
scan, topk_s, topk_p, table, per_row, batched, read_bw = map(float, sys.argv[3:10])
same_users, topk_diff, table_diff = sys.argv[10].split()
torch = json.loads(sys.argv[12])
best = torch["rows_per_s_best"]
r = {"model": model, "rows": rows, "seconds_scan_only": scan,
     "rows_per_s_top10_serial": rows / topk_s, "rows_per_s_top10_parallel2": rows / topk_p,
     "rows_per_s_predict_table": rows / table, "rows_per_s_per_row": rows / per_row,
     "rows_per_s_predict_batch": rows / batched if batched else None,
     "read_bytes_per_s": read_bw, "weight_bytes_per_row": torch["weight_bytes_per_row"],
     "rows_per_s_read_bound": read_bw / torch["weight_bytes_per_row"],
     "parity_top10_users_identical_of_20": int(same_users), "parity_top10_max_abs_score_diff": float(topk_diff),
     "parity_table_max_abs_diff": float(table_diff), "plan_parallel": sys.argv[11], "pytorch": torch}
r["ratio_top10_serial"] = r["rows_per_s_top10_serial"] / torch["rows_per_s_top10_per_user"]
r["ratio_top10_parallel2"] = r["rows_per_s_top10_parallel2"] / torch["rows_per_s_top10_per_user"]
r["ratio_predict_table"] = r["rows_per_s_predict_table"] / best
r["ratio_per_row"] = r["rows_per_s_per_row"] / best
r["per_row_of_read_bound"] = r["rows_per_s_per_row"] / r["rows_per_s_read_bound"]
print(json.dumps(r))
PY
)")
	psql_q -c "DROP TABLE candidates" -c "SELECT recsys.drop_model('$model')" >/dev/null
done

/usr/bin/python3 - "$out/mmoe.json" "$coretype" "${results[@]}" <<'PY'
import json, os, sys, time
path, coretype = sys.argv[1], sys.argv[2]
runs = [json.loads(a) for a in sys.argv[3:]]
json.dump({"openblas_core": coretype, "models": runs}, open(path, "w"), indent=1)
with open(path.replace(".json", ".txt"), "a") as f:
    for r in runs:
        f.write("%s model=%s rows=%d core=%s top10=%.0f (%.2fx) top10_par2=%.0f (%.2fx) table=%.0f (%.2fx) per_row=%.0f (%.2fx, %.2f of bound %.0f) torch_best=%.0f torch_top10=%.0f\n" % (
            time.strftime("%Y-%m-%d %H:%M"), r["model"], r["rows"], coretype, r["rows_per_s_top10_serial"], r["ratio_top10_serial"],
            r["rows_per_s_top10_parallel2"], r["ratio_top10_parallel2"], r["rows_per_s_predict_table"], r["ratio_predict_table"],
            r["rows_per_s_per_row"], r["ratio_per_row"], r["per_row_of_read_bound"], r["rows_per_s_read_bound"],
            r["pytorch"]["rows_per_s_best"], r["pytorch"]["rows_per_s_top10_per_user"]))
for r in runs:
    t = r["pytorch"]
    print("model %s (%d weight bytes a row), OpenBLAS core %s, %d rows" % (r["model"], r["weight_bytes_per_row"], coretype, r["rows"]))
    print("  top 10 per user, predict_top_k     %9.0f rows/s  (%.2fx PyTorch + argpartition %.0f)" % (r["rows_per_s_top10_serial"], r["ratio_top10_serial"], t["rows_per_s_top10_per_user"]))
    print("  same, 2 parallel workers          %9.0f rows/s  (%.2fx)" % (r["rows_per_s_top10_parallel2"], r["ratio_top10_parallel2"]))
    print("  predict_table                     %9.0f rows/s  (%.2fx PyTorch batched %.0f)" % (r["rows_per_s_predict_table"], r["ratio_predict_table"], t["rows_per_s_best"]))
    print("  predict, per row                  %9.0f rows/s  (%.2fx; read bound %.0f rows/s at %.1f GB/s: %.0f%%)" % (
        r["rows_per_s_per_row"], r["ratio_per_row"], r["rows_per_s_read_bound"], r["read_bytes_per_s"] / 1e9, 100 * r["per_row_of_read_bound"]))
    if r["rows_per_s_predict_batch"]:
        print("  predict_batch (requests of 1000)  %9.0f rows/s  (%.2fx)" % (r["rows_per_s_predict_batch"], r["rows_per_s_predict_batch"] / t["rows_per_s_best"]))
    print("  PyTorch one row a call            %9.0f rows/s" % t["rows_per_s_module_batch_1"])
    print("  parity: top 10 identical for %d of 20 users, max |score diff| %.2g; predict_table max |diff| %.2g" % (
        r["parity_top10_users_identical_of_20"], r["parity_top10_max_abs_score_diff"], r["parity_table_max_abs_diff"]))
PY
