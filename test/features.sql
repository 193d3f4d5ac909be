-- Feature specs against an independent reference (test/ref/features.py): a model trained
-- from Adult-style rows fits the spec as numpy/pandas does, scores held-out rows (NULLs,
-- unseen values) as it scores the arrays the reference encodes; a PyTorch model with an
-- embedding bag, fed by the documented Python helper, scores as recsys.predict(model, row);
-- the embedding bag's training gradient matches nn.EmbeddingBag(mode='mean').
\set QUIET 1
SET client_min_messages = warning;
\ir ref/out/features_ref.sql

SELECT plan(34);

-- the lines of EXPLAIN (ANALYZE) of a query: the plan and the workers it launched
CREATE FUNCTION pg_temp.explain_lines(q text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	l text;
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
		RETURN NEXT l;
	END LOOP;
END
$$;

-- max abs difference of two arrays (NULL when lengths differ)
CREATE FUNCTION pg_temp.max_abs_diff(a float8[], b float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN cardinality(a) = cardinality(b)
		THEN (SELECT coalesce(max(abs(x - y)), 0) FROM unnest(a, b) u(x, y)) END
$$;

-- largest relative difference of the numeric statistics of two fitted specs
CREATE FUNCTION pg_temp.stats_diff(a jsonb, b jsonb) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
	SELECT max(abs((x.e ->> k)::float8 - (y.e ->> k)::float8) / greatest(1, abs((y.e ->> k)::float8)))
	FROM jsonb_array_elements(a -> 'numeric') WITH ORDINALITY x(e, i)
	JOIN jsonb_array_elements(b -> 'numeric') WITH ORDINALITY y(e, j) ON i = j,
	unnest(ARRAY['mean', 'std', 'min', 'max']) k
$$;

-- a fitted spec without its numeric statistics (compared exactly)
CREATE FUNCTION pg_temp.exact_part(s jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT s - 'numeric' || jsonb_build_object('numeric',
		(SELECT jsonb_agg(e - 'mean' - 'std' - 'min' - 'max' ORDER BY i)
		 FROM jsonb_array_elements(s -> 'numeric') WITH ORDINALITY x(e, i)))
$$;

-- model A (numeric, categorical, vector columns) trained from rows
SELECT lives_ok($$SELECT count(*) FROM recsys.train_mmoe('fa', 'fx_train', NULL, '{clicked,income}',
	(SELECT config || jsonb_build_object('features', spec_a) FROM fx_ref), epochs => 3, batch_size => 64,
	learning_rate => 0.01, seed => 3)$$, 'train_mmoe fits a spec and trains from raw columns');
SELECT is(pg_temp.exact_part(m.config -> 'features'), pg_temp.exact_part(r.fit_a),
	'vocabularies (order, min_count), counts, NULLs, OOV counts and options equal the reference fit')
	FROM recsys.models m, fx_ref r WHERE m.name = 'fa';
SELECT cmp_ok(pg_temp.stats_diff(m.config -> 'features', r.fit_a), '<=', 1e-12::float8,
	'mean, std, min and max equal numpy''s (relative 1e-12)')
	FROM recsys.models m, fx_ref r WHERE m.name = 'fa';
SELECT is((SELECT m.config ->> 'input_dim' FROM recsys.models m WHERE m.name = 'fa'), NULL,
	'the stored config derives input_dim from the spec instead of storing it');

-- the held-out rows have what the test is about
SELECT ok((SELECT count(*) FROM fx_test WHERE workclass = 'Unseen-work') > 0
	AND (SELECT count(*) FROM fx_test WHERE workclass IS NULL) > 0
	AND (SELECT count(*) FROM fx_test WHERE age IS NULL AND hours IS NULL) >= 0
	AND (SELECT count(*) FROM fx_test WHERE emb IS NULL) > 0
	AND (SELECT count(*) FROM fx_test_arrays WHERE categorical[1] = 4) > 0,
	'held-out rows have unseen categories (OOV id 4 in the reference arrays), NULL categories and NULL vectors');

SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(recsys.predict('fa', t)::float8[],
		recsys.predict('fa', a.features, categorical => a.categorical)::float8[]))
	FROM fx_test t JOIN fx_test_arrays a USING (id)), '<=', 1e-6::float8,
	'predict(model, row) equals predict on the arrays the numpy reference encodes (1e-6), NULLs and unseen values included');
SELECT cmp_ok((SELECT max(abs(recsys.predict('fa', t, 'income') - (recsys.predict('fa', t))[2]))
	FROM fx_test t), '=', 0::real, 'the one-task row form gives the task''s output');
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(p.scores::float8[], recsys.predict('fa', t)::float8[]))
	FROM recsys.predict_table('fa', 'fx_test', 'id', NULL) p JOIN fx_test t ON t.id = p.id), '<=', 1e-6::float8,
	'predict_table with features_column => NULL equals predict(model, row)');
SELECT is((SELECT count(*) FROM recsys.predict_table('fa', 'fx_test', 'id', NULL)), 200::bigint,
	'predict_table scores every row');
-- 2,600 rows: two full blocks of 1,024 and a last partial one, each scored as the row's arrays
CREATE TEMP TABLE fx_big AS SELECT k * 100000 + t.id AS big_id, t.* FROM fx_test t, generate_series(0, 12) k;
SELECT is((SELECT count(*) || ' rows, max diff <= 1e-6: ' || (max(pg_temp.max_abs_diff(p.scores::float8[],
		recsys.predict('fa', a.features, categorical => a.categorical)::float8[])) <= 1e-6)
	FROM recsys.predict_table('fa', 'fx_big', 'big_id', NULL) p JOIN fx_test_arrays a ON a.id = p.id % 100000),
	'2600 rows, max diff <= 1e-6: true',
	'predict_table with features_column => NULL over several blocks scores each row as its reference arrays');
SELECT is(
	(SELECT array_agg(r.item_id) FROM (SELECT (unnest(recsys.predict_top_k('fa', t, t.id, 10, '{0.5,0.5}'))).* FROM fx_test t) r),
	(SELECT array_agg(r.item_id) FROM (SELECT (unnest(recsys.predict_top_k('fa', a.features, a.categorical, a.id, 10, '{0.5,0.5}'))).*
		FROM fx_test_arrays a) r),
	'predict_top_k over rows ranks as predict_top_k over the reference arrays');
SELECT is(
	(SELECT array_agg(g ORDER BY g) FROM (SELECT t.id % 5 AS g, recsys.predict_top_k('fa', t, t.id, 3, '{1,0}') AS k
		FROM fx_test t GROUP BY 1) s WHERE k IS NOT NULL),
	ARRAY[0, 1, 2, 3, 4], 'predict_top_k over rows, grouped');

-- vocabulary lookups through both index layouts: text values of up to 22 bytes are compared in
-- the index slots, a vocabulary with a longer one uses separate entries; values of more than 32
-- bytes are looked up at once where the rest wait a row (predict_table).  Each row's score must
-- equal the array form's with the id the stored vocabulary gives (OOV n, NULL n + 1).
CREATE TABLE fx_voc_train AS SELECT i AS id, 1.0::float8 AS x, (ARRAY['a', 'bb', repeat('x', 22), repeat('x', 21) || 'y',
	repeat('z', 21), 'c'])[1 + i % 6] AS short_tag, (ARRAY['a', repeat('l', 23), repeat('l', 22) || 'm', repeat('q', 40),
	repeat('q', 39) || 'r', 'bb'])[1 + i % 6] AS long_tag, i % 2 = 0 AS clicked, (i % 7)::float8 AS income
	FROM generate_series(1, 600) i;
CREATE TABLE fx_voc_test AS SELECT i AS id, 1.0::float8 AS x, t AS short_tag, t AS long_tag
	FROM unnest(ARRAY['a', 'bb', 'c', repeat('x', 22), repeat('x', 21) || 'y', repeat('x', 21) || 'z', repeat('z', 21),
		repeat('x', 23), repeat('l', 23), repeat('l', 22) || 'm', repeat('l', 22) || 'n', repeat('q', 40), repeat('q', 39) || 'r',
		repeat('q', 39) || 's', repeat('q', 41), '', NULL]) WITH ORDINALITY u(t, i);
SELECT lives_ok($$SELECT count(*) FROM (VALUES ('fv_short', 'short_tag'), ('fv_long', 'long_tag')) v(m, c),
	recsys.train_mmoe(v.m, 'fx_voc_train', NULL, '{clicked,income}',
	(SELECT config FROM fx_ref) || jsonb_build_object('features', jsonb_build_object('numeric', '["x"]'::jsonb,
		'categorical', jsonb_build_array(jsonb_build_object('column', v.c, 'dim', 3)))), epochs => 1)$$,
	'models with short and with long text vocabulary values train');
CREATE TEMP TABLE fx_voc_ids AS
	SELECT v.m, t.id, coalesce((SELECT (i - 1)::int FROM recsys.models, jsonb_array_elements_text(config -> 'features' -> 'categorical' -> 0 -> 'vocab')
		WITH ORDINALITY e(value, i) WHERE name = v.m AND e.value = t.short_tag),
		(SELECT jsonb_array_length(config -> 'features' -> 'categorical' -> 0 -> 'vocab') + CASE WHEN t.short_tag IS NULL THEN 1 ELSE 0 END
			FROM recsys.models WHERE name = v.m)) AS expected_id
	FROM (VALUES ('fv_short'), ('fv_long')) v(m), fx_voc_test t;
SELECT is((SELECT string_agg(m || ' ' || n_vocab || ' kept, ' || n_oov || ' OOV, ' || n_null || ' NULL', '; ' ORDER BY m)
	FROM (SELECT m, count(*) FILTER (WHERE expected_id < 6) AS n_vocab, count(*) FILTER (WHERE expected_id = 6) AS n_oov,
		count(*) FILTER (WHERE expected_id = 7) AS n_null FROM fx_voc_ids GROUP BY m) s),
	'fv_long 6 kept, 10 OOV, 1 NULL; fv_short 6 kept, 10 OOV, 1 NULL', 'both vocabularies keep their six values');
SELECT is((SELECT count(*) FILTER (WHERE recsys.predict(i.m, t) = recsys.predict(i.m, '{0}'::real[], categorical => ARRAY[i.expected_id]))
	FROM fx_voc_ids i JOIN fx_voc_test t USING (id)), 34::bigint,
	'predict(model, row) looks every value up as the stored vocabulary orders it (inline and entry layouts)');
-- (a batched pass's last bits depend on the rows it holds: the same rows, packed, in the same order)
CREATE TABLE fx_voc_short AS SELECT id, '{0}'::real[] AS features, ARRAY[expected_id] AS categorical
	FROM fx_voc_ids WHERE m = 'fv_short' ORDER BY id;
CREATE TABLE fx_voc_long AS SELECT id, '{0}'::real[] AS features, ARRAY[expected_id] AS categorical
	FROM fx_voc_ids WHERE m = 'fv_long' ORDER BY id;
SELECT is((SELECT count(*) FILTER (WHERE p.scores = a.scores)
	FROM (VALUES ('fv_short', 'fx_voc_short'), ('fv_long', 'fx_voc_long')) v(m, arrays)
	CROSS JOIN LATERAL recsys.predict_table(v.m, 'fx_voc_test', 'id', NULL) WITH ORDINALITY p
	JOIN LATERAL recsys.predict_table(v.m, v.arrays::regclass, 'id', 'features', 'categorical') WITH ORDINALITY a
		ON a.ordinality = p.ordinality AND a.id = p.id), 34::bigint,
	'predict_table''s deferred lookups give the same ids, values over 32 bytes included');

-- model B (with an embedding bag) made in PyTorch on the reference fit, imported
SELECT is(recsys.import_model('fb', weights_b), 1, 'a PyTorch model with a fitted spec and an embedding bag imports') FROM fx_ref;
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(recsys.predict('fb', t)::float8[], r.scores))
	FROM fx_test t JOIN fx_test_torch r USING (id)), '<=', 1e-6::float8,
	'the documented Python helper + the PyTorch module reproduce predict(model, row) within 1e-6');
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(p.scores::float8[], r.scores))
	FROM recsys.predict_table('fb', 'fx_test', 'id', NULL) p JOIN fx_test_torch r USING (id)), '<=', 1e-6::float8,
	'predict_table over rows with an embedding bag matches PyTorch');
SELECT is((SELECT count(*) FROM (SELECT (unnest(recsys.predict_top_k('fb', t, t.id, 200, '{1,0}'))).* FROM fx_test t) s),
	200::bigint, 'predict_top_k over rows with an embedding bag keeps every row');
SELECT cmp_ok(pg_temp.max_abs_diff(
	(SELECT array_agg(score::float8) FROM (SELECT (unnest(recsys.predict_top_k('fb', t, t.id, 10, '{1,0}'))).* FROM fx_test t) s),
	(SELECT array_agg(scores[1]) FROM (SELECT scores FROM fx_test_torch ORDER BY scores[1] DESC LIMIT 10) s)), '<=', 1e-6::float8,
	'predict_top_k with an embedding bag gives PyTorch''s 10 best scores');
SELECT is(recsys.export_model('fb'), (SELECT c.safetensors FROM fx_ref, recsys.mmoe_validate(weights_b) c),
	'export_model carries the fitted spec (the canonical file of the imported one)');

-- the row form under a forced parallel plan: partial states (buffered encoded rows, pooled
-- bags included) made in workers, combined in the leader, equal to the serial plan's.  The
-- table is analyzed: without statistics the planner guesses one group per row, and a
-- partial aggregate that merges nothing costs more than gathering the rows (count(t) gets
-- the same serial GroupAggregate); a temporary table is never scanned in parallel.
CREATE TABLE fx_par AS SELECT t.id % 5 AS grp, t.* FROM fx_test t;
ANALYZE fx_par;
CREATE TEMP TABLE fx_serial AS
	SELECT grp, recsys.predict_top_k('fb', t, t.id, 7, '{0.6,0.4}') AS top FROM fx_par t GROUP BY grp
	UNION ALL SELECT -1, recsys.predict_top_k('fb', t, t.id, 9, '{0.6,0.4}') FROM fx_par t
	UNION ALL SELECT -2, recsys.predict_top_k('fa', s, s.id, 9, '{0.5,0.5}')
		FROM (SELECT id, age, capital_gain, hours, fnlwgt, workclass, education, sex, emb FROM fx_par) s;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
SET enable_hashagg = off;
SELECT matches((SELECT string_agg(l, E'\n') FROM pg_temp.explain_lines(
	$$SELECT grp, recsys.predict_top_k('fb', t, t.id, 7, '{0.6,0.4}') FROM fx_par t GROUP BY grp$$) l),
	'Finalize GroupAggregate.*Workers Launched: [12].*Partial GroupAggregate.*Parallel Seq Scan on fx_par',
	'predict_top_k over rows, grouped, runs as a partial aggregate in parallel workers');
SELECT matches((SELECT string_agg(l, E'\n') FROM pg_temp.explain_lines(
	$$SELECT recsys.predict_top_k('fb', t, t.id, 9, '{0.6,0.4}') FROM fx_par t$$) l),
	'Finalize Aggregate.*Workers Launched: [12].*Partial Aggregate.*Parallel Seq Scan on fx_par',
	'predict_top_k over rows, one group, runs as a partial aggregate in parallel workers');
SELECT matches((SELECT string_agg(l, E'\n') FROM pg_temp.explain_lines(
	$$SELECT recsys.predict_top_k('fa', s, s.id, 9, '{0.5,0.5}')
		FROM (SELECT id, age, capital_gain, hours, fnlwgt, workclass, education, sex, emb FROM fx_par) s$$) l),
	'Finalize Aggregate.*Workers Launched: [12].*Partial Aggregate.*Parallel Seq Scan on fx_par',
	'predict_top_k over an anonymous record (a subquery''s row) runs in parallel workers too');
CREATE TEMP TABLE fx_parallel AS
	SELECT grp, recsys.predict_top_k('fb', t, t.id, 7, '{0.6,0.4}') AS top FROM fx_par t GROUP BY grp
	UNION ALL SELECT -1, recsys.predict_top_k('fb', t, t.id, 9, '{0.6,0.4}') FROM fx_par t
	UNION ALL SELECT -2, recsys.predict_top_k('fa', s, s.id, 9, '{0.5,0.5}')
		FROM (SELECT id, age, capital_gain, hours, fnlwgt, workclass, education, sex, emb FROM fx_par) s;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
RESET enable_hashagg;
-- a batched pass's last bits depend on the rows it holds: items equal, scores within 1e-6
SELECT is((SELECT count(*) || ' groups, items equal: ' || bool_and(
		(SELECT array_agg(item_id ORDER BY o) FROM unnest(p.top) WITH ORDINALITY u(item_id, score, o))
		= (SELECT array_agg(item_id ORDER BY o) FROM unnest(s.top) WITH ORDINALITY u(item_id, score, o))
		AND pg_temp.max_abs_diff((SELECT array_agg(score::float8 ORDER BY o) FROM unnest(p.top) WITH ORDINALITY u(item_id, score, o)),
			(SELECT array_agg(score::float8 ORDER BY o) FROM unnest(s.top) WITH ORDINALITY u(item_id, score, o))) <= 1e-6)
	FROM fx_parallel p JOIN fx_serial s USING (grp) WHERE cardinality(p.top) IN (7, 9)),
	'7 groups, items equal: true', 'the parallel plans give the serial plans'' items, and their scores within 1e-6');

-- the embedding bag's gradient: one step on every training row (fixed weights 1)
CREATE TEMP TABLE fb_step AS SELECT * FROM recsys.train_mmoe('fb', 'fx_train', NULL, '{clicked,income}', NULL,
	epochs => 1, batch_size => 1000, loss_weighting => 'fixed',
	options => '{"init_version": 1, "record_gradients": true}');
CREATE TEMP TABLE fb_grads AS SELECT g.key AS tensor, ARRAY(SELECT jsonb_array_elements_text(g.value)::float8) AS grad
	FROM recsys.models m, jsonb_each(m.metrics -> 'first_step_gradients') g WHERE m.name = 'fb' AND m.version = 2;
SELECT cmp_ok((SELECT pg_temp.max_abs_diff(g.grad, r.grad) FROM fb_grads g JOIN fx_grad r USING (tensor)
	WHERE tensor = 'embeddings.genres.weight'), '<=', 1e-6::float8,
	'the embedding bag''s gradient equals nn.EmbeddingBag(mode=''mean'')''s (float64 autograd)');
SELECT cmp_ok((SELECT max(abs(x)) FROM fx_grad, unnest(grad) x WHERE tensor = 'embeddings.genres.weight'), '>', 1e-4::float8,
	'the bag gradient is not trivially zero');
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(g.grad, r.grad)) FROM fb_grads g JOIN fx_grad r USING (tensor)), '<=', 1e-6::float8,
	'every other tensor''s gradient matches too');
SELECT is((SELECT count(*) FROM fb_grads g JOIN fx_grad r USING (tensor)), (SELECT count(*) FROM fx_grad),
	'gradients of every PyTorch tensor were compared');
SELECT is((SELECT config -> 'features' FROM recsys.models WHERE name = 'fb' AND version = 2),
	(SELECT config_b -> 'features' FROM fx_ref), 'fine-tuning keeps the stored spec (no refit)');

-- model B trained from rows: the same fit as the reference's, bag vocabulary cut at max_size
SELECT lives_ok($$SELECT count(*) FROM recsys.train_mmoe('fc', 'fx_train', NULL, '{clicked,income}',
	(SELECT config || jsonb_build_object('features', spec_b) FROM fx_ref), epochs => 2, batch_size => 64,
	validation => 'fx_test')$$, 'train_mmoe with an embedding bag and a validation table of unseen values');
SELECT is(pg_temp.exact_part(m.config -> 'features'), pg_temp.exact_part(r.fit_b),
	'the multi_categorical vocabulary (max_size, NULL elements, OOV counts) equals the reference fit')
	FROM recsys.models m, fx_ref r WHERE m.name = 'fc';
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(recsys.predict('fc', t)::float8[], p.scores::float8[]))
	FROM fx_test t JOIN recsys.predict_table('fc', 'fx_test', 'id', NULL) p USING (id)), '<=', 1e-6::float8,
	'a model trained with a bag scores rows the same way per row and per table');

SELECT * FROM finish();
