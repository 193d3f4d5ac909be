#!/usr/bin/env bash
# Benchmark the uncertainty and evaluation aggregates against plain SQL that
# computes the same numbers.  Size knob: BENCH_ROWS (default 2000000).
# Run with: make all && bash test/harness/with_cluster.sh bench uncertainty
set -euo pipefail
rows=${BENCH_ROWS:-2000000}
reps=${BENCH_REPS:-3}
out=test/bench/out/uncertainty.txt
mkdir -p test/bench/out

psql -X -q -v ON_ERROR_STOP=1 -v rows="$rows" -v reps="$reps" <<'SQL' | tee "$out"
\pset footer off
SET max_parallel_workers_per_gather = 0;
CREATE TABLE bench AS
	SELECT i,
	       (((i * 2654435761) % 4294967296) / 4294967296.0)::float8 AS score,      -- distinct
	       round(((i * 7919) % 100003) / 100003.0, 3)::float8 AS score3,          -- 1001 levels
	       ((i * 7919) % 100003 + (i * 104729) % 70001) > 100003 AS label,
	       ARRAY[((i * 31) % 1000) / 100.0, ((i * 17) % 977) / 977.0]::float8[] AS losses,
	       sin(i::float8) AS mean, ((i % 11) / 10.0)::float8 AS variance
	FROM generate_series(1::bigint, :rows) i;
VACUUM ANALYZE bench;

-- best wall time in ms of reps runs of a query
CREATE FUNCTION pg_temp.best_ms(q text, reps int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	best float8 := 'Infinity';
BEGIN
	FOR r IN 1..reps LOOP
		t0 := clock_timestamp();
		EXECUTE q;
		best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1000);
	END LOOP;
	RETURN best;
END $$;

CREATE TEMP TABLE cases (id int, name text, recsys_q text, sql_q text);
INSERT INTO cases VALUES
 (1, 'scan baseline: count(*)', 'SELECT count(*) FROM bench', NULL),
 (2, 'auc, distinct scores vs rank formula',
  'SELECT recsys.auc(score, label) FROM bench',
  $q$WITH r AS (SELECT label, rank() OVER (ORDER BY score) + (count(*) OVER (PARTITION BY score) - 1) / 2.0 AS rk FROM bench)
     SELECT (sum(rk) FILTER (WHERE label) - count(*) FILTER (WHERE label) * (count(*) FILTER (WHERE label) + 1) / 2.0)
            / (count(*) FILTER (WHERE label) * count(*) FILTER (WHERE NOT label)) FROM r$q$),
 (3, 'auc, 1001 tied levels vs rank formula',
  'SELECT recsys.auc(score3, label) FROM bench',
  $q$WITH r AS (SELECT label, rank() OVER (ORDER BY score3) + (count(*) OVER (PARTITION BY score3) - 1) / 2.0 AS rk FROM bench)
     SELECT (sum(rk) FILTER (WHERE label) - count(*) FILTER (WHERE label) * (count(*) FILTER (WHERE label) + 1) / 2.0)
            / (count(*) FILTER (WHERE label) * count(*) FILTER (WHERE NOT label)) FROM r$q$),
 (4, 'log_loss vs avg(CASE ... ln ...)',
  'SELECT recsys.log_loss(score, label) FROM bench',
  $q$SELECT avg(CASE WHEN label THEN -ln(greatest(score, 1e-15)) ELSE -ln(1 - least(score, 1 - 1e-15)) END) FROM bench$q$),
 (5, 'uncertainty_weights (2 tasks) vs ln(avg(...))',
  $q$SELECT recsys.uncertainty_weights(losses, '{regression,classification}') FROM bench$q$,
  $q$SELECT ARRAY[greatest(least(ln(avg(losses[1])), 20), -20), greatest(least(ln(2 * avg(losses[2])), 20), -20)] FROM bench$q$),
 (6, 'predictive_variance vs var_pop + avg',
  'SELECT recsys.predictive_variance(mean, variance) FROM bench',
  'SELECT ARRAY[var_pop(mean), avg(variance), var_pop(mean) + avg(variance)] FROM bench');

\echo == serial (max_parallel_workers_per_gather = 0), :rows rows, best of :reps
CREATE TEMP TABLE serial AS
	SELECT id, name, pg_temp.best_ms(recsys_q, :reps) AS recsys_ms,
	       CASE WHEN sql_q IS NULL THEN NULL ELSE pg_temp.best_ms(sql_q, :reps) END AS sql_ms
	FROM cases;
SELECT name, round(recsys_ms::numeric, 1) AS recsys_ms, round(sql_ms::numeric, 1) AS plain_sql_ms,
       round((sql_ms / recsys_ms)::numeric, 2) AS speedup
FROM serial ORDER BY id;

\echo == parallel (2 workers), recsys aggregates only
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT s.name, round(s.recsys_ms::numeric, 1) AS serial_ms,
       round(p.ms::numeric, 1) AS parallel_ms, round((s.recsys_ms / p.ms)::numeric, 2) AS speedup
FROM serial s, LATERAL (SELECT pg_temp.best_ms(c.recsys_q, :reps) AS ms FROM cases c WHERE c.id = s.id) p
ORDER BY s.id;

\echo == state size of recsys.auc (bytes)
RESET max_parallel_workers_per_gather;
CREATE AGGREGATE pg_temp.auc_state(float8, boolean) (SFUNC = recsys.auc_accum, STYPE = bytea);
SELECT pg_size_pretty(octet_length(pg_temp.auc_state(score, label))::bigint) AS distinct_scores,
       pg_size_pretty(octet_length(pg_temp.auc_state(score3, label))::bigint) AS tied_1001_levels
FROM bench;
SQL
