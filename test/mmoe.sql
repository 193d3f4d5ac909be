-- Stored MMoE models against the PyTorch reference (test/ref/mmoe.py): outputs,
-- gates, batches, MC dropout, export/import round trips, versions and the cache.
\set QUIET 1
SET client_min_messages = warning;
\ir ref/out/mmoe_ref.sql

SELECT plan(53);

-- the lines of EXPLAIN (COSTS OFF) for a query
CREATE FUNCTION pg_temp.explain_lines(q text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	l text;
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		RETURN NEXT l;
	END LOOP;
END
$$;

-- import a reference variant under a name (config passed unless in the file)
CREATE FUNCTION pg_temp.ref_import(name text, v text) RETURNS int
LANGUAGE sql AS $$
	SELECT recsys.import_model(name, f.weights, CASE WHEN f.config_in_metadata THEN NULL ELSE f.config END)
	FROM mmoe_ref_files f WHERE f.variant = v
$$;

-- max abs error between two arrays (infinite if the lengths differ, so that max() over rows sees it)
CREATE FUNCTION pg_temp.max_abs_diff(a float8[], b float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN cardinality(a) = cardinality(b)
		THEN (SELECT max(abs(x - y)) FROM unnest(a, b) u(x, y)) ELSE 'Infinity' END
$$;

-- Import: each variant becomes version 1 of m_<variant>
SELECT is((SELECT array_agg(recsys.import_model('m_' || variant, weights,
		CASE WHEN config_in_metadata THEN NULL ELSE config END) ORDER BY variant) FROM mmoe_ref_files),
	'{1,1,1,1,1,1,1}'::int[], 'import_model gives version 1 for each new name');
SELECT is((SELECT count(*)::int FROM recsys.models WHERE name LIKE 'm\_%' AND kind = 'mmoe'), 7,
	'recsys.models lists the imported models');
SELECT is((SELECT config FROM recsys.models WHERE name = 'm_full'),
	(SELECT config FROM mmoe_ref_files WHERE variant = 'full'),
	'config taken from __metadata__.recsys when not given');

-- Per-row outputs against PyTorch (float64 forward from the stored weights)
CREATE TEMP TABLE mmoe_err AS
	SELECT r.variant, max(pg_temp.max_abs_diff(
		recsys.predict('m_' || r.variant, r.features, r.categorical, r.context, r.pos)::float8[],
		r.expected)) AS err, count(*) AS n
	FROM mmoe_ref_rows r WHERE r.variant <> 'softmax_v2' GROUP BY r.variant;
SELECT cmp_ok(err, '<', 1e-5::float8, format('predict matches PyTorch: %s (%s rows)', variant, n))
	FROM mmoe_err ORDER BY variant;

SELECT cmp_ok((SELECT max(abs(recsys.predict('m_' || r.variant, r.features, t.task ->> 'name',
		r.categorical, r.context, r.pos) - r.expected[t.k]))
	FROM mmoe_ref_rows r JOIN mmoe_ref_files f USING (variant),
	LATERAL jsonb_array_elements(f.config -> 'tasks') WITH ORDINALITY t(task, k)
	WHERE r.variant <> 'softmax_v2'), '<', 1e-5::float8,
	'predict(model, features, task) matches PyTorch for every task');

SELECT cmp_ok((SELECT max(greatest(abs(p[1] - e[1]), abs(p[2] - e[2]), abs(p[1] * 0.7 + p[2] * 0.3 - (e[1] * 0.7 + e[2] * 0.3))))
	FROM (SELECT recsys.predict('m_softmax', features) AS p, expected AS e
		  FROM mmoe_ref_rows WHERE variant = 'softmax') s), '<', 1e-5::float8,
	'a flattened subquery that uses the result several times gets the same scores');

SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(
		recsys.predict('m_' || variant, features::float8[], categorical, context::float8[], pos)::float8[],
		expected)) FROM mmoe_ref_rows WHERE variant <> 'softmax_v2'), '<', 1e-5::float8,
	'double precision[] inputs give the same outputs');

-- Gate weights of the first task
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(recsys.gate_weights('m_' || r.variant, r.features,
		f.config #>> '{tasks,0,name}', r.categorical)::float8[], r.gates))
	FROM mmoe_ref_rows r JOIN mmoe_ref_files f USING (variant)), '<', 1e-6::float8,
	'gate_weights match PyTorch for every variant');
SELECT is((SELECT count(*)::int FROM mmoe_ref_rows r JOIN mmoe_ref_files f USING (variant),
		LATERAL (SELECT recsys.gate_weights('m_' || r.variant, r.features, f.config #>> '{tasks,0,name}',
			r.categorical) g) s
	WHERE f.config #>> '{gate,type}' = 'noisy_top_k'
	  AND (SELECT count(*) FROM unnest(s.g) x WHERE x > 0) <> (f.config #>> '{gate,k}')::int), 0,
	'noisy_top_k gates keep exactly k experts');
SELECT cmp_ok((SELECT max(abs(1 - (SELECT sum(x) FROM unnest(recsys.gate_weights('m_' || variant,
		features, 'click', categorical)) x))) FROM mmoe_ref_rows), '<', 1e-6::float8,
	'gate weights sum to 1');

-- Batched scoring (sgemm over chunks of rows)
CREATE TEMP TABLE mmoe_batch AS
	SELECT variant, array_agg(features ORDER BY row_id) AS f,
		array_agg(categorical ORDER BY row_id) FILTER (WHERE categorical IS NOT NULL) AS c,
		array_agg(context ORDER BY row_id) FILTER (WHERE context IS NOT NULL) AS x,
		array_agg(pos ORDER BY row_id) AS p, array_agg(expected ORDER BY row_id) AS e
	FROM mmoe_ref_rows GROUP BY variant;
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(s.scores::float8[],
		(SELECT r.expected FROM mmoe_ref_rows r WHERE r.variant = b.variant AND r.row_id = s.i)))
	FROM mmoe_batch b, LATERAL recsys.predict_batch('m_' || b.variant, b.f,
		b.c, b.x, b.p) s
	WHERE b.variant <> 'softmax_v2'), '<', 1e-5::float8, 'predict_batch matches PyTorch for every variant');
SELECT is((SELECT count(*)::int FROM mmoe_batch b,
		LATERAL recsys.predict_batch('m_' || b.variant, b.f,
			b.c, b.x, b.p) s
	WHERE b.variant <> 'softmax_v2'), 6 * 200, 'predict_batch returns one row per input row');
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(s.scores::float8[],
		recsys.predict('m_softmax', r.features)::float8[]))
	FROM mmoe_batch b, LATERAL recsys.predict_batch('m_softmax', b.f) s
	JOIN mmoe_ref_rows r ON r.variant = 'softmax' AND r.row_id = s.i
	WHERE b.variant = 'softmax'), '<', 1e-6::float8, 'predict_batch agrees with per-row predict');
SELECT is((SELECT count(*)::int FROM recsys.predict_batch('m_softmax', '{}'::real[])), 0,
	'an empty batch gives no rows');

-- MC dropout with the documented mask generator, against PyTorch with the same masks
SELECT cmp_ok((SELECT CASE WHEN count(*) = 9 THEN max(greatest(abs(s.mean - m.mean), abs(s.variance - m.variance))) END
	FROM mmoe_ref_mc m JOIN mmoe_ref_rows r USING (variant, row_id),
	LATERAL recsys.predict_mc('m_' || m.variant, r.features, m.samples, m.seed, r.categorical,
		r.context, r.pos) s WHERE s.task = m.task), '<', 1e-5::float8,
	'predict_mc mean and variance match PyTorch with the same dropout masks');
SELECT is((SELECT count(*)::int FROM mmoe_ref_mc), 9, 'MC reference has 3 rows x 3 tasks');
SELECT is((SELECT array_agg(mean || '/' || variance) FROM recsys.predict_mc('m_full',
		(SELECT features FROM mmoe_ref_rows WHERE variant = 'full' AND row_id = 5), 16, 42,
		'{1}', '{0,0,0,0,0}')),
	(SELECT array_agg(mean || '/' || variance) FROM recsys.predict_mc('m_full',
		(SELECT features FROM mmoe_ref_rows WHERE variant = 'full' AND row_id = 5), 16, 42,
		'{1}', '{0,0,0,0,0}')),
	'predict_mc is reproducible for a seed');
SELECT isnt((SELECT array_agg(mean) FROM recsys.predict_mc('m_full',
		(SELECT features FROM mmoe_ref_rows WHERE variant = 'full' AND row_id = 5), 16, 42,
		'{1}', '{0,0,0,0,0}')),
	(SELECT array_agg(mean) FROM recsys.predict_mc('m_full',
		(SELECT features FROM mmoe_ref_rows WHERE variant = 'full' AND row_id = 5), 16, 43,
		'{1}', '{0,0,0,0,0}')),
	'another seed draws other masks');
SELECT ok((SELECT bool_and(s.variance = 0 AND abs(s.mean - p.v) < 1e-6)
	FROM mmoe_ref_rows r,
	LATERAL recsys.predict_mc('m_softmax', r.features, 8) WITH ORDINALITY s(task, mean, variance, k),
	LATERAL (SELECT (recsys.predict('m_softmax', r.features))[s.k]) p(v)
	WHERE r.variant = 'softmax' AND r.row_id <= 20),
	'without dropout every MC sample is the plain prediction');

-- Export and round trips
SELECT is((SELECT count(*)::int FROM mmoe_ref_files f
	WHERE recsys.export_model('m_' || f.variant) = f.canonical), 7,
	'export_model gives the canonical safetensors bytes the Python reader loads');
SELECT is((SELECT array_agg(recsys.import_model('rt_' || variant, recsys.export_model('m_' || variant))
		ORDER BY variant) FROM mmoe_ref_files), '{1,1,1,1,1,1,1}'::int[],
	'import_model reads export_model output back (config from metadata)');
SELECT is((SELECT count(*)::int FROM mmoe_ref_files
	WHERE recsys.export_model('rt_' || variant) = recsys.export_model('m_' || variant)), 7,
	'export -> import -> export is byte-identical');
SELECT is((SELECT count(*)::int FROM mmoe_ref_rows r
	WHERE recsys.predict('rt_' || r.variant, r.features, r.categorical, r.context, r.pos)
		IS DISTINCT FROM recsys.predict('m_' || r.variant, r.features, r.categorical, r.context, r.pos)),
	0, 'round-tripped models score exactly as the originals');
SELECT is((SELECT config FROM recsys.models WHERE name = 'rt_cross'),
	(SELECT config FROM recsys.models WHERE name = 'm_cross'), 'round trip keeps the config');
SELECT is(recsys.export_model('m_softmax', 1), recsys.export_model('m_softmax'),
	'export_model takes a version');

-- Versions and cache invalidation
SELECT is(pg_temp.ref_import('m_softmax', 'softmax_v2'),
	2, 'importing under an existing name adds version 2');
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(recsys.predict('m_softmax', v2.features)::float8[], v2.expected))
	FROM mmoe_ref_rows v2 WHERE v2.variant = 'softmax_v2'), '<', 1e-5::float8,
	'the next statement scores with the new version');
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(recsys.predict('m_softmax', r.features, version => 1)::float8[],
		r.expected)) FROM mmoe_ref_rows r WHERE r.variant = 'softmax'), '<', 1e-5::float8,
	'version => 1 still scores with the first version');
SELECT is(recsys.drop_model('m_softmax', 2), 1, 'drop_model drops version 2');
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(recsys.predict('m_softmax', r.features)::float8[], r.expected))
	FROM mmoe_ref_rows r WHERE r.variant = 'softmax'), '<', 1e-5::float8,
	'after the drop the next statement is back on version 1');
SELECT is(pg_temp.ref_import('m_softmax', 'softmax_v2'),
	3, 'version number 2 is not given again after the drop: the next is 3');
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(recsys.predict('m_softmax', v2.features)::float8[], v2.expected))
	FROM mmoe_ref_rows v2 WHERE v2.variant = 'softmax_v2'), '<', 1e-5::float8,
	'the new version is loaded and served');

-- The same call site inside PL/pgSQL (expression state kept across statements)
CREATE FUNCTION pg_temp.score_switch(f real[]) RETURNS float8[]
LANGUAGE plpgsql AS $$
DECLARE
	a real[];
	b real[];
BEGIN
	FOR i IN 1..2 LOOP
		b := recsys.predict('m_switch', f);
		IF i = 1 THEN
			a := b;
			PERFORM pg_temp.ref_import('m_switch', 'softmax_v2');
		END IF;
	END LOOP;
	RETURN ARRAY[a[1], b[1]];
END
$$;
SELECT is(pg_temp.ref_import('m_switch', 'softmax'), 1,
	'm_switch version 1');
SELECT ok((SELECT abs(s[1] - r.expected[1]) < 1e-5 AND abs(s[2] - v2.expected[1]) < 1e-5
	FROM mmoe_ref_rows r JOIN mmoe_ref_rows v2 ON v2.variant = 'softmax_v2' AND v2.row_id = r.row_id,
	LATERAL pg_temp.score_switch(r.features) s
	WHERE r.variant = 'softmax' AND r.row_id = 3),
	'a PL/pgSQL loop sees the version imported between its iterations');

-- One lookup per statement, one parse per row version
SELECT recsys.predict('m_topk', features) FROM mmoe_ref_rows WHERE variant = 'topk' LIMIT 1;
CREATE TEMP TABLE mmoe_cache0 AS SELECT * FROM recsys.model_cache() WHERE name = 'm_topk';
SELECT is((SELECT count(recsys.predict('m_topk', features))::int FROM mmoe_ref_rows WHERE variant = 'topk'),
	200, 'scored 200 rows');
SELECT is((SELECT c.lookups - c0.lookups FROM recsys.model_cache() c, mmoe_cache0 c0 WHERE c.name = 'm_topk'),
	1::bigint, 'a 200-row statement looks the model up once');
SELECT is((SELECT c.loaded_at FROM recsys.model_cache() c WHERE c.name = 'm_topk'),
	(SELECT loaded_at FROM mmoe_cache0), 'the parsed model is reused by later statements');
SELECT is((SELECT sum(pins)::int FROM recsys.model_cache()), 0, 'no entry stays pinned after its statement');
-- 17 more models, each scored by its own statement: the least recently used entries leave
SELECT is((SELECT array_agg(pg_temp.ref_import('ev_' || i, 'softmax')) FROM generate_series(1, 17) i),
	array_fill(1, ARRAY[17]), 'imported 17 models for the eviction test');
\o /dev/null
SELECT format($$SELECT recsys.predict(%L, features) FROM mmoe_ref_rows WHERE variant = 'softmax' AND row_id = 3$$,
	'ev_' || i) FROM generate_series(1, 17) i
\gexec
\o
SELECT is((SELECT count(*)::int FROM recsys.model_cache()), 16,
	'with no statement running the cache holds 16 entries');
SELECT is((SELECT array_agg(name ORDER BY substr(name, 4)::int) FROM recsys.model_cache() WHERE name LIKE 'ev\_%'),
	(SELECT array_agg('ev_' || i ORDER BY i) FROM generate_series(2, 17) i),
	'the least recently used entry (ev_1, and every older one) was evicted');

SELECT is(recsys.drop_model('m_topk'), 1, 'drop_model without a version drops them all');
SELECT throws_ok($$SELECT recsys.predict('m_topk', '{1,2,3,4,5,6,7,8,9,10}'::real[])$$, '42704',
	'model "m_topk" does not exist', 'a dropped model is gone for the next statement');
SELECT is((SELECT count(*)::int FROM recsys.model_cache() WHERE name = 'm_topk'), 0,
	'the dropped model left the cache');

-- Declared properties
SELECT is((SELECT count(*)::int FROM pg_proc
	WHERE pronamespace = 'recsys'::regnamespace
	  AND proname IN ('predict', 'gate_weights', 'predict_mc', 'predict_batch')
	  AND provolatile = 's' AND proparallel = 's' AND NOT prosecdef), 12,
	'scoring functions are STABLE, PARALLEL SAFE, SECURITY INVOKER');

-- Forced parallel plan: workers parse the model themselves and agree with the leader
CREATE TABLE mmoe_candidates AS
	SELECT g * 1000 + r.row_id AS item_id, r.features
	FROM mmoe_ref_rows r, generate_series(1, 10) g WHERE r.variant = 'softmax';
ANALYZE mmoe_candidates;
SELECT is(pg_temp.ref_import('m_par', 'softmax'), 1,
	'm_par version 1');
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
SELECT ok((SELECT string_agg(l, E'\n') FROM (SELECT * FROM pg_temp.explain_lines(
	$$SELECT sum((recsys.predict('m_par', features))[1]::float8) FROM mmoe_candidates$$)) e(l))
	~ 'Partial Aggregate', 'the scoring query runs under a parallel plan');
CREATE TEMP TABLE mmoe_par AS
	SELECT sum((recsys.predict('m_par', features))[1]::float8) AS s FROM mmoe_candidates;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
SELECT cmp_ok(abs((SELECT s FROM mmoe_par) -
	(SELECT sum((recsys.predict('m_par', features))[1]::float8) FROM mmoe_candidates)), '<', 1e-6::float8,
	'parallel and serial scoring agree');
DROP TABLE mmoe_candidates;

SELECT * FROM finish();
