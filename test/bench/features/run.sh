#!/usr/bin/env bash
# Feature specs: fitting on 1M Adult-style rows (one scan, vocabulary sizes, memory), and
# scoring rows against scoring the same model's pre-packed arrays (per row, predict_table,
# predict_top_k): the target is rows within 1.2x of arrays.  Run by `make bench`, or
# bash test/harness/with_cluster.sh bench features.  FEATURES_ROWS and SCORE_ROWS size it.
set -euo pipefail
rows=${FEATURES_ROWS:-1000000}
score=${SCORE_ROWS:-200000}
psql -X -q -v ON_ERROR_STOP=1 -v rows="$rows" -v score="$score" <<'SQL'
SET client_min_messages = notice;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE people AS
SELECT i AS id, 17 + (i * 7919) % 74 AS age,
       CASE WHEN i % 5 = 0 THEN ((i * 31) % 20000)::float8 WHEN i % 97 = 0 THEN NULL ELSE 0 END AS gain,
       CASE WHEN i % 23 = 0 THEN NULL ELSE 1 + (i * 13) % 99 END::float8 AS hours,
       ((i * 104729) % 300000 + 10000)::float8 AS weight,
       CASE WHEN i % 17 = 0 THEN NULL ELSE 'job' || ((i * 7) % 9) END AS workclass,
       'city' || ((i * 2654435761) % 50000) AS city,
       (i % 16)::bigint AS education, i % 3 = 0 AS married,
       ARRAY['g' || (i % 40), 'g' || ((i / 40) % 40), 'g' || ((i * 7) % 300)] AS genres,
       ARRAY(SELECT ((i * k) % 1000) / 1000.0 FROM generate_series(1, 8) k)::real[] AS emb,
       (i * 7919) % 74 > 40 AS clicked, ((i * 13) % 99) / 10.0 AS minutes
FROM generate_series(1::bigint, :rows) i;
ANALYZE people;
\echo == fitting and training on :rows rows (one epoch), recsys.training_memory = 512MB
SET recsys.training_memory = '512MB';
\timing on
SELECT epoch, round(loss::numeric, 4) AS loss, round(seconds::numeric, 2) AS epoch_seconds
FROM recsys.train_mmoe('fit1m', 'people', NULL, '{clicked,minutes}',
	'{"kind": "mmoe", "experts": {"count": 4, "hidden": [32]},
	  "tasks": [{"name": "click", "type": "binary", "tower": [16]}, {"name": "minutes", "type": "regression", "tower": [16]}],
	  "features": {"numeric": ["age", {"column": "gain", "transform": "log1p_standardize"}, {"column": "hours", "transform": "minmax"}, "weight"],
	               "categorical": ["workclass", {"column": "city", "dim": 16}, {"column": "education", "dim": 4}, {"column": "married", "dim": 2}],
	               "multi_categorical": [{"column": "genres", "dim": 8}], "vector": ["emb"]}}',
	epochs => 1, batch_size => 1024, learning_rate => 0.01);
\timing off
RESET recsys.training_memory;
\echo vocabulary sizes (kept values + OOV + NULL):
SELECT c ->> 'column' AS col, jsonb_array_length(c -> 'vocab') + 2 AS vocab, c -> 'oov' AS oov_rows
FROM recsys.models, jsonb_array_elements((config -> 'features' -> 'categorical') || (config -> 'features' -> 'multi_categorical')) c
WHERE name = 'fit1m';
-- what fitting holds per row (features and ids: raw float8 + encoded float4 numerics,
-- ids, bags) and in vocabularies, against the budget
SELECT (metrics -> 'training' ->> 'rows')::bigint AS rows,
	pg_size_pretty((((4 * (8 + 4)) + 8 * 4 + 4 * 4 + 12 + 3 * 4) * (metrics -> 'training' ->> 'rows')::bigint)) AS feature_bytes_estimate
FROM recsys.models WHERE name = 'fit1m';

\echo == scoring :score rows: rows against pre-packed arrays, same model (no bag: arrays cannot carry one)
CREATE TABLE cand AS SELECT * FROM people WHERE id <= :score;
SELECT count(*) AS epochs FROM recsys.train_mmoe('score', 'cand', NULL, '{clicked,minutes}',
	'{"kind": "mmoe", "experts": {"count": 4, "hidden": [32]},
	  "tasks": [{"name": "click", "type": "binary", "tower": [16]}, {"name": "minutes", "type": "regression", "tower": [16]}],
	  "features": {"numeric": ["age", {"column": "gain", "transform": "log1p_standardize"}, {"column": "hours", "transform": "minmax"}, "weight"],
	               "categorical": ["workclass", {"column": "city", "dim": 16}, {"column": "education", "dim": 4}, {"column": "married", "dim": 2}],
	               "vector": ["emb"]}}', epochs => 1, batch_size => 1024);
-- the same inputs pre-packed (as a caller of the array form keeps them)
CREATE TABLE cand_arr AS SELECT id, (ARRAY[age, coalesce(gain, 0), coalesce(hours, 0), weight] || emb::float8[])::real[] AS features,
	ARRAY[id % 9, id % 1000, education, married::int]::int[] AS categorical FROM cand;
ANALYZE cand; ANALYZE cand_arr;
CREATE FUNCTION pg_temp.best(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	b float8 := 1e9;
BEGIN
	FOR i IN 1..3 LOOP
		t0 := clock_timestamp();
		EXECUTE q;
		b := least(b, extract(epoch FROM clock_timestamp() - t0));
	END LOOP;
	RETURN b;
END
$$;
CREATE TEMP TABLE timing AS
SELECT what, pg_temp.best(rq) AS rows_s, pg_temp.best(aq) AS arrays_s FROM (VALUES
	('predict, per row', $q$SELECT sum((recsys.predict('score', c))[1]) FROM cand c$q$,
	 $q$SELECT sum((recsys.predict('score', a.features, categorical => a.categorical))[1]) FROM cand_arr a$q$),
	('predict_table', $q$SELECT count(*) FROM recsys.predict_table('score', 'cand', 'id', NULL)$q$,
	 $q$SELECT count(*) FROM recsys.predict_table('score', 'cand_arr', 'id', 'features', 'categorical')$q$),
	('predict_top_k, groups of 100', $q$SELECT count(*) FROM (SELECT recsys.predict_top_k('score', c, c.id, 10, '{1,0}') FROM cand c GROUP BY c.id / 100) s$q$,
	 $q$SELECT count(*) FROM (SELECT recsys.predict_top_k('score', a.features, a.categorical, a.id, 10, '{1,0}') FROM cand_arr a GROUP BY a.id / 100) s$q$)
) v(what, rq, aq);
SELECT what, round(:score / rows_s) AS rows_per_s, round(:score / arrays_s) AS arrays_per_s,
	round((rows_s / arrays_s)::numeric, 3) AS ratio_rows_to_arrays FROM timing;
SQL
