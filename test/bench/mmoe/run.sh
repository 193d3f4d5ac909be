#!/usr/bin/env bash
# Benchmark: rows/s of recsys.predict (per row) and recsys.predict_batch (per request
# of 1000 candidates) over BENCH_ROWS candidate rows (default 1M) for a realistic
# MMoE (input 128, 8 experts of [256, 128], 2 tasks with towers [64]), beside
# PyTorch's batched forward of the same model on one thread.
# Run through `make bench` or `bash test/harness/with_cluster.sh bench mmoe`.
set -euo pipefail
cd "${RECSYS_TOP:?run through with_cluster.sh}"
rows=${BENCH_ROWS:-1000000}
per_request=1000
out=test/bench/out
mkdir -p "$out"
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

echo "mmoe bench: $rows candidate rows, $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<auto>}"
torch_json=$(/usr/bin/python3 test/bench/mmoe/bench_torch.py "$out" "$(( rows < 200000 ? rows : 200000 ))")
echo "pytorch: $torch_json"

psql_q -c "SELECT recsys.import_model('bench', pg_read_binary_file('$PWD/$out/mmoe_bench.safetensors'))" >/dev/null
psql_q <<SQL >/dev/null
CREATE TABLE candidates AS
	SELECT i AS item_id, (i - 1) / $per_request + 1 AS request_id,
		(SELECT array_agg(((hashint8(i * 128 + j) % 2000) / 1000.0)::real) FROM generate_series(1, 128) j) AS features
	FROM generate_series(1, $rows) i;
CREATE INDEX ON candidates (request_id);
VACUUM ANALYZE candidates;
SQL

# time one statement in the server (best of 2 runs for small sizes), in seconds
runs=$(( rows <= 100000 ? 2 : 1 ))
timed() {
	psql_q <<SQL
SET max_parallel_workers_per_gather = 0;
CREATE FUNCTION pg_temp.t(q text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; best float8 := 'Infinity';
BEGIN
	FOR k IN 1..$runs LOOP
		t0 := clock_timestamp();
		EXECUTE q;
		best := least(best, extract(epoch FROM clock_timestamp() - t0));
	END LOOP;
	RETURN best;
END \$\$;
SELECT pg_temp.t(\$q\$$1\$q\$);
SQL
}

# warm up: load the model, bring the table into the OS cache
psql_q -c "SELECT count(features), sum((recsys.predict('bench', features))[1]) FILTER (WHERE item_id <= 1000) FROM candidates" >/dev/null
scan=$(timed "SELECT count(features) FROM candidates")
per_row=$(timed "SELECT sum(p[1] + p[2]) FROM (SELECT recsys.predict('bench', features) p FROM candidates) s")
batched=$(timed "SELECT sum(s.scores[1] + s.scores[2]) FROM generate_series(1, $(( (rows + per_request - 1) / per_request ))) r,
	LATERAL recsys.predict_batch('bench', ARRAY(SELECT c.features FROM candidates c WHERE c.request_id = r ORDER BY c.item_id)) s")
# both paths give the same scores
psql_q <<SQL
SELECT 'max |per-row - batched| over 2000 rows: ' || max(abs(p.v - b.v))
FROM (SELECT row_number() OVER (ORDER BY item_id) k, u.v FROM candidates c,
	LATERAL unnest(recsys.predict('bench', c.features)) WITH ORDINALITY u(v, t) WHERE c.request_id <= 2 AND u.t = 1) p
JOIN (SELECT (r - 1) * $per_request + s.i AS k, s.scores[1] AS v FROM generate_series(1, 2) r,
	LATERAL recsys.predict_batch('bench', ARRAY(SELECT c.features FROM candidates c WHERE c.request_id = r ORDER BY c.item_id)) s) b
USING (k);
SQL

/usr/bin/python3 - "$rows" "$scan" "$per_row" "$batched" "$torch_json" "$out/mmoe.json" <<'PY'
import json, sys
rows, scan, per_row, batched = int(sys.argv[1]), *map(float, sys.argv[2:5])
torch = json.loads(sys.argv[5])
best = torch["rows_per_s_best"]
import os
r = {"openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "auto"), "rows": rows, "seconds_scan_only": scan, "seconds_per_row": per_row, "seconds_batched": batched,
     "rows_per_s_per_row": rows / per_row, "rows_per_s_batched": rows / batched,
     "rows_per_s_pytorch_best": best, "pytorch": torch}
r["ratio_per_row_vs_pytorch"] = r["rows_per_s_per_row"] / best
r["ratio_batched_vs_pytorch"] = r["rows_per_s_batched"] / best
json.dump(r, open(sys.argv[6], "w"), indent=1)
with open(sys.argv[6].replace(".json", ".txt"), "a") as f:
    f.write("%s rows=%d coretype=%s per_row=%.0f batched=%.0f pytorch=%.0f ratio_per_row=%.2f ratio_batched=%.2f\n" % (
        __import__("time").strftime("%Y-%m-%d %H:%M"), rows, r["openblas_coretype"], r["rows_per_s_per_row"],
        r["rows_per_s_batched"], best, r["ratio_per_row_vs_pytorch"], r["ratio_batched_vs_pytorch"]))
print("seq scan alone          %8.2f s" % scan)
print("recsys.predict          %8.0f rows/s  (%.2fx PyTorch)" % (r["rows_per_s_per_row"], r["ratio_per_row_vs_pytorch"]))
print("recsys.predict_batch    %8.0f rows/s  (%.2fx PyTorch)" % (r["rows_per_s_batched"], r["ratio_batched_vs_pytorch"]))
print("PyTorch batched (best)  %8.0f rows/s  (1 thread)" % best)
print("PyTorch one row a call  %8.0f rows/s" % torch["rows_per_s_module_batch_1"])
PY
