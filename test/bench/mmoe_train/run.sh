#!/usr/bin/env bash
# Benchmark of recsys.train_mmoe beside PyTorch (one thread), same models, data and
# initial weights (bench_torch.py):
#  1. Ma et al. (2018) synthetic regression at task correlations 1, 0.5, 0.1: MMoE
#     against shared-bottom (the same parameter budget), test MSE per task, and
#     seconds per epoch of recsys and PyTorch from the same initial weights; then
#     recsys's MMoE and shared-bottom averaged over three fresh initialisations;
#  2. a two-task binary set with known structure: test AUC per task of recsys and
#     PyTorch, uncertainty against fixed weighting, the Bayes AUC as the ceiling;
#  3. the trained model exported, loaded into the documented PyTorch module and scored.
# Run through `make bench` or `bash test/harness/with_cluster.sh bench mmoe_train`.
set -euo pipefail
cd "${RECSYS_TOP:?run through with_cluster.sh}"
out=test/bench/out/mmoe_train
mkdir -p "$out"
py() { nice -n 10 /usr/bin/python3 test/bench/mmoe_train/bench_torch.py "$@"; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

core=$(/usr/bin/python3 -c "import ctypes; l = ctypes.CDLL('/usr/lib/x86_64-linux-gnu/openblas-serial/libopenblas.so.0'); l.openblas_get_corename.restype = ctypes.c_char_p; print(l.openblas_get_corename().decode())" 2>/dev/null || echo unknown)
echo "mmoe_train bench: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), serial OpenBLAS core $core"
py gen "$out"
t0=$(date +%s)
py train "$out" >/dev/null
echo "pytorch: $(( $(date +%s) - t0 )) s"

cfg() { /usr/bin/python3 -c "import json,sys; print(json.dumps(json.load(open('$out/configs.json'))[sys.argv[1]]))" "$1"; }
epochs_syn=$(/usr/bin/python3 -c "import json; print(json.load(open('$out/configs.json'))['epochs_syn'])")
epochs_bin=$(/usr/bin/python3 -c "import json; print(json.load(open('$out/configs.json'))['epochs_bin'])")
lr=$(/usr/bin/python3 -c "import json; print(json.load(open('$out/configs.json'))['lr'])")

load() {  # table csv
	psql_q -c "CREATE TABLE $1 (i int, f real[], y1 float8, y2 float8)" \
		-c "\\copy $1 FROM '$PWD/$out/$2' WITH (FORMAT csv)"
}

t0=$(date +%s)
for p in 1 0.5 0.1; do
	load "syn_train" "syn_${p}_train.csv"
	load "syn_test" "syn_${p}_test.csv"
	for model in mmoe sb; do
		name="syn_${p}_${model}"
		c=$(cfg "syn_$model")
		psql_q -c "SELECT recsys.import_model('$name', pg_read_binary_file('$PWD/$out/$name.safetensors'), '$c')" >/dev/null
		psql_q <<SQL
SET client_min_messages = warning;
CREATE TEMP TABLE r AS SELECT * FROM recsys.train_mmoe('$name', 'syn_train', 'f', '{y1,y2}', NULL,
	epochs => $epochs_syn, batch_size => 256, learning_rate => $lr, loss_weighting => 'fixed',
	options => '{"init_version": 1}', seed => 1);
SELECT format('recsys  %-16s test mse %s / %s, %s s per epoch', '$name',
	round(avg((p[1] - y1) ^ 2)::numeric, 4), round(avg((p[2] - y2) ^ 2)::numeric, 4),
	(SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)::numeric, 4) FROM r))
FROM (SELECT y1, y2, recsys.predict('$name', f)::float8[] AS p FROM syn_test) s;
SQL
	done
	# MMoE against shared-bottom over three fresh initialisations (seeds), recsys only
	for model in mmoe sb; do
		c=$(cfg "syn_$model")
		for seed in 11 12 13; do
			psql_q -c "SET client_min_messages = warning" -c "SELECT count(*) FROM recsys.train_mmoe('seeds_${p}_$model', 'syn_train', 'f', '{y1,y2}', '$c', epochs => $epochs_syn, batch_size => 256, learning_rate => $lr, loss_weighting => 'fixed', seed => $seed)" >/dev/null
		done
		psql_q <<SQL
SELECT format('recsys  %-16s mean over 3 seeds: test mse %s / %s (sd of the sum %s)', 'syn_${p}_$model',
	round(avg(m1)::numeric, 4), round(avg(m2)::numeric, 4), round(stddev_samp(m1 + m2)::numeric, 4))
FROM (SELECT v, avg((p[1] - y1) ^ 2) AS m1, avg((p[2] - y2) ^ 2) AS m2
	FROM generate_series(1, 3) v, LATERAL (SELECT y1, y2, recsys.predict('seeds_${p}_$model', f, version => v)::float8[] AS p
		FROM syn_test) s GROUP BY v) q;
SQL
	done
	psql_q -c "DROP TABLE syn_train, syn_test"
done
echo "recsys synthetic: $(( $(date +%s) - t0 )) s"

load bin_train bin_train.csv
load bin_test bin_test.csv
c=$(cfg bin)
psql_q <<SQL
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.auc(s float8[], y float8[]) RETURNS float8 LANGUAGE sql AS \$\$
	SELECT (sum(r) FILTER (WHERE l = 1) - count(*) FILTER (WHERE l = 1) * (count(*) FILTER (WHERE l = 1) + 1) / 2.0)
		/ (count(*) FILTER (WHERE l = 1) * count(*) FILTER (WHERE l = 0))
	FROM (SELECT l, rank() OVER (ORDER BY v) + (count(*) OVER (PARTITION BY v) - 1) / 2.0 AS r
		FROM unnest(s, y) u(v, l)) q
\$\$;
SELECT recsys.import_model('bin_u', pg_read_binary_file('$PWD/$out/bin.safetensors'), '$c') AS v \gset
SELECT recsys.import_model('bin_f', pg_read_binary_file('$PWD/$out/bin.safetensors'), '$c') AS v \gset
CREATE TEMP TABLE ru AS SELECT * FROM recsys.train_mmoe('bin_u', 'bin_train', 'f', '{y1,y2}', NULL,
	epochs => $epochs_bin, batch_size => 256, learning_rate => $lr, validation => 'bin_test',
	options => '{"init_version": 1}', seed => 2);
CREATE TEMP TABLE rf AS SELECT * FROM recsys.train_mmoe('bin_f', 'bin_train', 'f', '{y1,y2}', NULL,
	epochs => $epochs_bin, batch_size => 256, learning_rate => $lr, loss_weighting => 'fixed',
	validation => 'bin_test', options => '{"init_version": 1}', seed => 2);
SELECT format('recsys  binary %-11s test auc %s / %s, %s s per epoch%s', w,
	round((v -> 'click' ->> 'auc')::numeric, 4), round((v -> 'like' ->> 'auc')::numeric, 4), round(s::numeric, 4),
	CASE WHEN w = 'uncertainty' THEN ', log variances ' || lv::text ELSE '' END)
FROM (SELECT 'uncertainty' AS w, (SELECT validation FROM ru ORDER BY epoch DESC LIMIT 1) AS v,
		(SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FROM ru) AS s,
		(SELECT log_vars FROM ru ORDER BY epoch DESC LIMIT 1)::numeric(8,3)[] AS lv
	UNION ALL SELECT 'fixed', (SELECT validation FROM rf ORDER BY epoch DESC LIMIT 1),
		(SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FROM rf), NULL) q;
SELECT format('recsys  binary auc over predict (check): %s / %s',
	round(pg_temp.auc(array_agg(p[1]), array_agg(y1))::numeric, 4), round(pg_temp.auc(array_agg(p[2]), array_agg(y2))::numeric, 4))
FROM (SELECT y1, y2, recsys.predict('bin_u', f)::float8[] AS p FROM bin_test) s;
\copy (SELECT i, recsys.predict('bin_u', f) FROM bin_test ORDER BY i LIMIT 1000) TO '$PWD/$out/db_scores.csv' WITH (FORMAT csv)
SQL
psql_q -c "COPY (SELECT encode(recsys.export_model('bin_u'), 'hex')) TO STDOUT" |
	/usr/bin/python3 -c "import sys, binascii; open(sys.argv[1], 'wb').write(binascii.unhexlify(sys.stdin.read().strip()))" "$out/bin_trained.safetensors"
echo "exported model in PyTorch: $(py check "$out")"

/usr/bin/python3 - "$out/torch_results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for k, v in r.items():
    if k.startswith("syn_"):
        print("pytorch %-16s test mse %.4f / %.4f, %.4f s per epoch" % (k, v["test_mse"][0], v["test_mse"][1], v["seconds_per_epoch"]))
for w in ("uncertainty", "fixed"):
    v = r["bin_" + w]
    print("pytorch binary %-11s test auc %.4f / %.4f, %.4f s per epoch" % (w, v["auc"][0], v["auc"][1], v["seconds_per_epoch"]))
print("bayes   binary test auc %.4f / %.4f" % tuple(r["bin_bayes_auc"]))
PY
