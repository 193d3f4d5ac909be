#!/usr/bin/env bash
# Feature specs: fitting on 1M Adult-style rows (one scan, vocabulary sizes, memory), and
# scoring rows against scoring the same model's pre-packed arrays (per row, predict_table,
# predict_top_k): the target is rows within 1.2x of arrays.  Run by `make bench`, or
# bash test/harness/with_cluster.sh bench features.  FEATURES_ROWS and SCORE_ROWS size it;
# scoring is timed in CPU seconds of the backend, best of BENCH_ROUNDS (5) interleaved rounds.
set -euo pipefail
rows=${FEATURES_ROWS:-1000000}
score=${SCORE_ROWS:-200000}
PGOPTIONS="${PGOPTIONS:-} -c bench.rounds=${BENCH_ROUNDS:-5}" \
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
-- the same inputs pre-packed (as a caller of the array form keeps them): the exact encoding
-- of each row under the stored spec, computed here in SQL from the stored statistics and
-- vocabularies, so that both forms run the same forward pass on the same inputs (checked
-- below: every score equal bit for bit)
CREATE TEMP TABLE spec AS SELECT config -> 'features' AS f FROM recsys.models WHERE name = 'score';
-- the transform of each numeric column as SQL (float8, then real, as the C code rounds)
CREATE FUNCTION pg_temp.num(e jsonb, x float8) RETURNS real LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN e ->> 'transform' = 'minmax' THEN
			CASE WHEN (e ->> 'max')::float8 > (e ->> 'min')::float8
				THEN ((coalesce(x, (e ->> 'mean')::float8) - (e ->> 'min')::float8) / ((e ->> 'max')::float8 - (e ->> 'min')::float8))::real
				ELSE 0 END
		WHEN x IS NULL THEN 0
		ELSE (((CASE WHEN e ->> 'transform' = 'log1p_standardize' THEN ln(1 + x) ELSE x END) - (e ->> 'mean')::float8)
			/ CASE WHEN (e ->> 'std')::float8 > 0 THEN (e ->> 'std')::float8 ELSE 1 END)::real END
$$;
-- per numeric column the transform's result for each distinct value, per categorical column
-- the id of each value (NULL: n + 1; a value not kept would be n, but every value here is kept)
CREATE TEMP TABLE nums AS SELECT e ->> 'column' AS col, e FROM spec, jsonb_array_elements(f -> 'numeric') e;
CREATE TEMP TABLE voc AS SELECT e ->> 'column' AS col, v.value, (v.i - 1)::int AS id, jsonb_array_length(e -> 'vocab') AS n
	FROM spec, jsonb_array_elements(f -> 'categorical') e, jsonb_array_elements_text(e -> 'vocab') WITH ORDINALITY v(value, i);
CREATE TEMP TABLE vocn AS SELECT col, max(n) AS n FROM voc GROUP BY col;
CREATE TABLE cand_arr AS SELECT c.id,
	ARRAY[pg_temp.num(n1.e, c.age), pg_temp.num(n2.e, c.gain), pg_temp.num(n3.e, c.hours), pg_temp.num(n4.e, c.weight)]
		|| coalesce(c.emb, array_fill(0::real, ARRAY[8])) AS features,
	ARRAY[coalesce(v1.id, CASE WHEN c.workclass IS NULL THEN w1.n + 1 ELSE w1.n END),
		coalesce(v2.id, CASE WHEN c.city IS NULL THEN w2.n + 1 ELSE w2.n END),
		coalesce(v3.id, CASE WHEN c.education IS NULL THEN w3.n + 1 ELSE w3.n END),
		coalesce(v4.id, CASE WHEN c.married IS NULL THEN w4.n + 1 ELSE w4.n END)] AS categorical
FROM cand c
	CROSS JOIN (SELECT e FROM nums WHERE col = 'age') n1 CROSS JOIN (SELECT e FROM nums WHERE col = 'gain') n2
	CROSS JOIN (SELECT e FROM nums WHERE col = 'hours') n3 CROSS JOIN (SELECT e FROM nums WHERE col = 'weight') n4
	CROSS JOIN (SELECT n FROM vocn WHERE col = 'workclass') w1 CROSS JOIN (SELECT n FROM vocn WHERE col = 'city') w2
	CROSS JOIN (SELECT n FROM vocn WHERE col = 'education') w3 CROSS JOIN (SELECT n FROM vocn WHERE col = 'married') w4
	LEFT JOIN voc v1 ON v1.col = 'workclass' AND v1.value = c.workclass
	LEFT JOIN voc v2 ON v2.col = 'city' AND v2.value = c.city
	LEFT JOIN voc v3 ON v3.col = 'education' AND v3.value = c.education::text
	LEFT JOIN voc v4 ON v4.col = 'married' AND v4.value = c.married::text
ORDER BY c.id;
ANALYZE cand; ANALYZE cand_arr;
SELECT count(*) AS rows, count(*) FILTER (WHERE recsys.predict('score', c) = recsys.predict('score', a.features, categorical => a.categorical))
	AS equal_bit_for_bit
FROM cand c JOIN cand_arr a USING (id) \gset
\echo scores of the row form and of the packed arrays equal bit for bit: :equal_bit_for_bit of :rows rows
SELECT :equal_bit_for_bit = :rows AS ok \gset
\if :ok
\else
\echo the packed arrays are not the encoding of the rows: no timing
\quit
\endif
-- CPU time of this backend (/proc/self/schedstat: nanoseconds on a CPU), which load from
-- other jobs on the machine inflates far less than wall-clock time
CREATE FUNCTION pg_temp.cpu_ns() RETURNS bigint LANGUAGE sql AS $$
	SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint
$$;
CREATE FUNCTION pg_temp.cpu_s(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 bigint := pg_temp.cpu_ns();
BEGIN
	EXECUTE q;
	RETURN (pg_temp.cpu_ns() - t0) / 1e9;
END
$$;
CREATE TEMP TABLE forms (what text, o int, rq text, aq text);
INSERT INTO forms VALUES
	('predict_table', 1, $q$SELECT count(*) FROM recsys.predict_table('score', 'cand', 'id', NULL)$q$,
	 $q$SELECT count(*) FROM recsys.predict_table('score', 'cand_arr', 'id', 'features', 'categorical')$q$),
	('predict, per row', 2, $q$SELECT sum((recsys.predict('score', c))[1]) FROM cand c$q$,
	 $q$SELECT sum((recsys.predict('score', a.features, categorical => a.categorical))[1]) FROM cand_arr a$q$),
	('predict_top_k, groups of 100', 3, $q$SELECT count(*) FROM (SELECT recsys.predict_top_k('score', c, c.id, 10, '{1,0}') FROM cand c GROUP BY c.id / 100) s$q$,
	 $q$SELECT count(*) FROM (SELECT recsys.predict_top_k('score', a.features, a.categorical, a.id, 10, '{1,0}') FROM cand_arr a GROUP BY a.id / 100) s$q$);
-- best of :rounds rounds, the forms interleaved within each round (rows, then arrays)
CREATE TEMP TABLE timing (what text, form text, round int, cpu_s float8);
-- a warm-up round: model caches, table pages
SELECT count(pg_temp.cpu_s(rq)) + count(pg_temp.cpu_s(aq)) AS warm FROM forms \gset
DO $$
BEGIN
	FOR r IN 1..current_setting('bench.rounds')::int LOOP
		INSERT INTO timing SELECT what, 'rows', r, pg_temp.cpu_s(rq) FROM forms ORDER BY o;
		INSERT INTO timing SELECT what, 'arrays', r, pg_temp.cpu_s(aq) FROM forms ORDER BY o;
	END LOOP;
END
$$;
SELECT f.what, round(:score / min(cpu_s) FILTER (WHERE form = 'rows')) AS rows_per_cpu_s,
	round(:score / min(cpu_s) FILTER (WHERE form = 'arrays')) AS arrays_per_cpu_s,
	round((min(cpu_s) FILTER (WHERE form = 'rows') / min(cpu_s) FILTER (WHERE form = 'arrays'))::numeric, 3) AS ratio_rows_to_arrays
FROM timing t JOIN forms f USING (what) GROUP BY f.what, f.o ORDER BY f.o;
SQL
