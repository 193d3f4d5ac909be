-- recsys.als_solve, recsys.train_embeddings, recsys.recommend: edge cases and errors
SET extra_float_digits = 0;
-- progress NOTICEs carry timings; keep the expected output stable
SET client_min_messages = warning;
-- show the SQLSTATE and message of a statement that fails
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- als_solve closed forms: (w G + sum (c - w) v v^T + l2 I) x = sum c v
-- k = 1: (0.5*4 + 0.5*4 + 1) x = 2
SELECT recsys.als_solve(v, c, '{{4}}', 0.5, 1) FROM (VALUES ('{2}'::real[], 1::float8)) t(v, c);
-- two orthogonal rows, w = 0: (I + I) x = (1, 1)
SELECT recsys.als_solve(v, c, '{{1,0},{0,1}}', 0, 1) FROM (VALUES ('{1,0}'::real[], 1::float8), ('{0,1}', 1)) t(v, c);
-- double precision[] rows
SELECT recsys.als_solve(v, c, '{{1,0},{0,1}}', 0, 1) FROM (VALUES ('{1,0}'::float8[], 1::float8), ('{0,1}', 1)) t(v, c);
-- c = w: the pair adds to the right-hand side only: (0.5 + 0.5) x = 0.5
SELECT recsys.als_solve(v, c, '{{1}}', 0.5, 0.5) FROM (VALUES ('{1}'::real[], 0.5::float8)) t(v, c);
-- c < w (a negative rank-1 term): (1.0 - 0.4 + 0.1) x = 0.1
SELECT round(x[1]::numeric, 6) FROM (SELECT recsys.als_solve(v, c, '{{2}}', 0.5, 0.1) AS x
	FROM (VALUES ('{1}'::real[], 0.1::float8)) t(v, c)) s;
-- grouped: one solve per group
SELECT g, recsys.als_solve(v, c, '{{1}}', 0, 1) FROM (VALUES (1, '{1}'::real[], 1::float8), (1, '{1}', 1),
	(2, '{3}', 2)) t(g, v, c) GROUP BY g ORDER BY g;
-- NULL vectors and NULL confidences skip the row; no rows or only skipped rows give NULL
SELECT recsys.als_solve(v, c, '{{1}}', 0, 1) FROM (VALUES ('{1}'::real[], 1::float8), (NULL, 5), ('{7}', NULL)) t(v, c);
SELECT recsys.als_solve(v, c, '{{1}}', 0, 1) IS NULL AS empty_is_null FROM (SELECT '{1}'::real[] v, 1::float8 c WHERE false) t;
SELECT recsys.als_solve(v, c, '{{1}}', 0, 1) IS NULL AS nulls_is_null FROM (VALUES (NULL::real[], 1::float8)) t(v, c);
-- the objective variant: {x, sum [c (v.x - 1)^2 - w (v.x)^2]} = {0.4, (0.8 - 1)^2 - 0.5 * 0.64}
SELECT round(r[1]::numeric, 6) AS x, round(r[2]::numeric, 6) AS part
FROM (SELECT recsys.als_solve_objective(v, c, '{{4}}', 0.5, 1) AS r FROM (VALUES ('{2}'::real[], 1::float8)) t(v, c)) s;

-- als_solve errors
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, NULL, 0.1, 0.1) FROM (VALUES ('{1}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1}}', NULL, 0.1) FROM (VALUES ('{1}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1}}', 0.1, NULL) FROM (VALUES ('{1}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, -1, '{{1}}', 0.1, 0.1) FROM (VALUES ('{1}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 'NaN', '{{1}}', 0.1, 0.1) FROM (VALUES ('{1}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1}}', 0.1, 0.1) FROM (VALUES ('{NaN}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1}}', 0.1, 0.1) FROM (VALUES ('{1,NULL}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1}}', 0.1, 0.1) FROM (VALUES ('{1}'::real[]), ('{1,2}')) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1,0},{0,1}}', 0.1, 0.1) FROM (VALUES ('{1}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{1,0}', 0.1, 0.1) FROM (VALUES ('{1,2}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1,2},{3,4}}', 0.1, 0.1) FROM (VALUES ('{1,2}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1,NaN},{NaN,4}}', 0.1, 0.1) FROM (VALUES ('{1,2}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1}}', -0.1, 0.1) FROM (VALUES ('{1}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1}}', 0.1, -0.1) FROM (VALUES ('{1}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1}}', 0.1, 'Infinity') FROM (VALUES ('{1}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1}}', w, 0.1) FROM (VALUES ('{1}'::real[], 0.1::float8), ('{2}', 0.2)) t(v, w)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1}}', 0.1, l2) FROM (VALUES ('{1}'::real[], 0.1::float8), ('{2}', 0.2)) t(v, l2)$$);
-- an indefinite system (c < w with G = 0 and l2 = 0) stays singular after the jitter retries
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 0, '{{0}}', 1, 0) FROM (VALUES ('{1}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.als_solve_final('\xdeadbeef'::bytea)$$);
SET recsys.max_dim = 2;
SELECT pg_temp.err($$SELECT recsys.als_solve(v, 1, '{{1}}', 0.1, 0.1) FROM (VALUES ('{1,2,3}'::real[])) t(v)$$);
RESET recsys.max_dim;

-- deterministic initial vectors
SELECT recsys.embedding_init(1, 3, 42, 0.1) = recsys.embedding_init(1, 3, 42, 0.1) AS same,
	recsys.embedding_init(1, 3, 42, 0.1) = recsys.embedding_init(2, 3, 42, 0.1) AS same_other_id,
	recsys.embedding_init(1, 3, 42, 0.1) = recsys.embedding_init(1, 3, 43, 0.1) AS same_other_seed,
	array_length(recsys.embedding_init(7, 64, 0, 1), 1) AS len;
SELECT pg_temp.err($$SELECT recsys.embedding_init(1, 0, 42, 0.1)$$);
SELECT pg_temp.err($$SELECT recsys.embedding_init(1, 5000, 42, 0.1)$$);
SELECT pg_temp.err($$SELECT recsys.embedding_init(1, 3, 42, 'NaN')$$);

-- a tiny training table; identifiers that need quoting are quoted, never pasted
CREATE TABLE "Odd ""Table""" ("user id" int, "item;id" bigint, "w" numeric, label text, f float8);
INSERT INTO "Odd ""Table""" VALUES (1, 10, 1.5, 'a', 1), (1, 11, 0.5, 'b', 1), (2, 10, 2, 'c', 1), (2, 12, 1, 'd', 1),
	(3, 11, 1, 'e', 1), (3, 12, 0.25, 'f', 1), (3, 12, 0.25, 'g', 1), (4, 10, 0, 'h', 1), (4, 12, 3, 'i', 1);
SELECT epoch FROM recsys.train_embeddings('tiny', '"Odd ""Table"""', 'user id', 'item;id', 'w', dim => 2, epochs => 3);
SELECT name, version, kind, config->>'method' AS method, config->'n_users' AS users, config->'n_items' AS items,
	config->'n_interactions' AS pairs, config->'n_rows' AS rows_read, jsonb_array_length(metrics->'log') AS epochs
FROM recsys.models WHERE name = 'tiny';
-- repeated pairs add their weights, zero-weight pairs are dropped: the seen items
SELECT id, seen, array_length(embedding, 1) AS dim FROM recsys.user_vectors WHERE model = 'tiny' ORDER BY id;
SELECT id, array_length(embedding, 1) AS dim FROM recsys.item_embeddings('tiny');
SELECT count(*) FROM recsys.user_embeddings('tiny');
-- retraining adds a version; the other methods train the same table
SELECT count(*) AS epochs FROM recsys.train_embeddings('tiny', '"Odd ""Table"""', 'user id', 'item;id', dim => 2,
	epochs => 2, method => 'sogram');
SELECT count(*) AS epochs FROM recsys.train_embeddings('tiny', '"Odd ""Table"""', 'user id', 'item;id', dim => 2,
	epochs => 2, method => 'sagram', options => '{"beta": "saga", "batch_size": 2}');
SELECT count(*) AS epochs FROM recsys.train_embeddings('tiny', '"Odd ""Table"""', 'user id', 'item;id', dim => 2,
	epochs => 2, method => 'sampled', options => '{"negatives": 3, "sampling": "sqrt", "optimizer": "sgd", "learning_rate": 0.01}');
SELECT version, config->>'method' AS method, config->'options' AS options FROM recsys.models WHERE name = 'tiny' ORDER BY version;
-- a view works as the interactions relation
CREATE VIEW tiny_view AS SELECT "user id" AS user_id, "item;id" AS item_id FROM "Odd ""Table""";
SELECT count(*) AS epochs FROM recsys.train_embeddings('tiny_view', 'tiny_view', dim => 2, epochs => 1);

-- recommend: best first, training items excluded unless asked
SELECT count(*) AS n, bool_and(item_id <> ALL ('{10,11}')) AS unseen_only FROM recsys.recommend('tiny_view', 1, 10);
SELECT count(*) FROM recsys.recommend('tiny_view', 1, 10, false);
SELECT count(*) FROM recsys.recommend('tiny_view', 1, 1, false);
SELECT count(*) FROM recsys.recommend('tiny_view', 42, 10);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('tiny_view', 1, 0)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('nothing', 1, 10)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.user_embeddings('nothing')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.item_embeddings('nothing')$$);
INSERT INTO recsys.model_names (name) VALUES ('an mmoe');
INSERT INTO recsys.models (name, version, kind) VALUES ('an mmoe', 1, 'mmoe');
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('an mmoe', 1, 10)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.user_embeddings('an mmoe')$$);
SELECT count(*) AS null_user_rows FROM recsys.recommend('tiny_view', NULL, 10);

-- train_embeddings errors, each naming the problem
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'no_such_table')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('', 'tiny_view')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings(NULL, 'tiny_view')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', '"Odd ""Table"""')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', '"Odd ""Table"""', 'user id', 'nope')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', '"Odd ""Table"""', 'label', 'item;id')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', '"Odd ""Table"""', 'user id', 'f')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', '"Odd ""Table"""', 'user id', 'item;id', 'label')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', '"Odd ""Table"""', 'user id', 'item;id', 'nope')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', '"Odd ""Table"""', NULL, 'item;id')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', dim => 0)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', dim => 5000)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', dim => NULL)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', epochs => 0)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', gramian_weight => -1)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', l2 => 'NaN')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', method => 'svd')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', method => NULL)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '[1]')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '{"color": 1}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '{"alpha": 0.1}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '{"nu": "1"}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '{"nu": -1}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '{"seed": 1.5}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '{"init_scale": 0}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', method => 'sogram', options => '{"alpha": 2}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', method => 'sogram', options => '{"batch_size": 0}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', method => 'sogram', options => '{"optimizer": "adam"}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', method => 'sagram', options => '{"beta": 0.5}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', method => 'sampled', options => '{"negatives": 0}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', method => 'sampled', options => '{"sampling": "zipf"}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', method => 'sogram', options => '{"learning_rate": 1e7}')$$);
-- plain SGD with a huge step overflows: an error, not a model of infinities
SELECT regexp_replace(pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'tiny_view', method => 'sogram',
	options => '{"optimizer": "sgd", "learning_rate": 100000}')$$), 'epoch \d+', 'epoch N') AS err;
-- bad rows
CREATE TABLE bad (u bigint, i int, w float8);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'bad', 'u', 'i')$$);
INSERT INTO bad VALUES (1, 1, 0), (1, 2, 0);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'bad', 'u', 'i', 'w')$$);
INSERT INTO bad VALUES (NULL, 1, 1);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'bad', 'u', 'i', 'w')$$);
UPDATE bad SET u = 2 WHERE u IS NULL;
INSERT INTO bad VALUES (3, NULL, 1);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'bad', 'u', 'i', 'w')$$);
UPDATE bad SET i = 2 WHERE i IS NULL;
INSERT INTO bad VALUES (3, 3, NULL);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'bad', 'u', 'i', 'w')$$);
UPDATE bad SET w = 'NaN' WHERE w IS NULL;
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'bad', 'u', 'i', 'w')$$);
UPDATE bad SET w = '-Infinity' WHERE w = 'NaN';
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'bad', 'u', 'i', 'w')$$);
UPDATE bad SET w = -2 WHERE w = '-Infinity';
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('e', 'bad', 'u', 'i', 'w')$$);
UPDATE bad SET w = 2 WHERE w = -2;
SELECT count(*) AS epochs FROM recsys.train_embeddings('e', 'bad', 'u', 'i', 'w', dim => 1, epochs => 2);
-- failed trainings left no versions behind
SELECT name, count(*) FROM recsys.models WHERE name IN ('tiny', 'tiny_view', 'e', 'an mmoe') GROUP BY name ORDER BY name;
-- the SGD trainer has no SQL entry point: the driver reads (and checks) the interactions itself
SELECT count(*) AS sgd_train_functions FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'recsys' AND p.proname IN ('sgd_train', 'embedding_check_column');
-- every option of every method: one table that validation, the trainers and the docs share
SELECT name, methods, type, default_value, min_value, min_exclusive, max_value, allowed FROM recsys.embedding_options();
SELECT recsys.embedding_options('als', '{"solver": "cg"}') AS als_cg;
SELECT recsys.embedding_options('sampled', NULL) AS sampled_defaults;
-- the new errors, printed as PostgreSQL prints them (detail and hint), each with its SQLSTATE
\set VERBOSITY default
SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '{"solver": "lu"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '{"cg_steps": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '{"cg_steps": 2.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '{"engine": "gpu"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM recsys.train_embeddings('e', 'tiny_view', method => 'sogram', options => '{"solver": "cg"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM recsys.train_embeddings('e', 'tiny_view', options => '"cg"');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM recsys.train_embeddings(NULL, 'tiny_view');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM recsys.train_embeddings('  ', 'tiny_view');
\echo :LAST_ERROR_SQLSTATE
-- a name too long for the store fails before any work (the relation is not even looked at)
SELECT * FROM recsys.train_embeddings(repeat('x', 64), 'tiny_view', 'no such column');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM recsys.train_embeddings('e', 'tiny_view', epochs => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM recsys.train_embeddings('e', 'tiny_view', l2 => NULL);
\echo :LAST_ERROR_SQLSTATE
-- a column name that differs only in case gets a hint naming the columns that exist
CREATE TABLE "Mixed" ("UserId" int, "USERID" int, item_id int);
SELECT * FROM recsys.train_embeddings('e', '"Mixed"', 'userid', 'item_id');
\echo :LAST_ERROR_SQLSTATE
-- sgd methods have no aggregate engine to fall back to
SET recsys.training_memory = 64;
SELECT * FROM recsys.train_embeddings('e', 'tiny_view', dim => 2, method => 'sogram');
\echo :LAST_ERROR_SQLSTATE
-- als falls back to the aggregate engine and says so (terse: the epoch NOTICEs keep timings in their detail)
SET client_min_messages = notice;
\set VERBOSITY terse
SELECT epoch FROM recsys.train_embeddings('fallback', 'tiny_view', dim => 2, epochs => 1);
RESET recsys.training_memory;
SELECT epoch FROM recsys.train_embeddings('fallback', 'tiny_view', dim => 2, epochs => 1, options => '{"solver": "cg"}');
SET client_min_messages = warning;
\set VERBOSITY default
SELECT version, config->>'engine' AS engine, config->>'solver' AS solver, config->'source'->>'table' AS source,
	config->'n_users' AS users, config->'n_items' AS items, config->'n_interactions' AS pairs,
	metrics->>'memory_bytes' AS memory_bytes, length(weights) AS weight_bytes
FROM recsys.models WHERE name = 'fallback' ORDER BY version;
-- the work tables of the aggregate engine are gone, and none of the caller's tables was touched
CREATE TEMP TABLE recsys_emb_pairs AS SELECT 1 AS keep;
SELECT count(*) AS epochs FROM recsys.train_embeddings('fallback', 'tiny_view', dim => 2, epochs => 1,
	options => '{"engine": "aggregate"}');
SELECT keep FROM recsys_emb_pairs;
SELECT count(*) AS work_tables_left FROM pg_class WHERE relname LIKE 'recsys_train_%';

-- look-alikes planted on the caller's search_path never run inside train_embeddings
CREATE FUNCTION public.planted_num(a double precision, b bigint) RETURNS double precision LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'planted code ran'; END $$;
CREATE FUNCTION public.planted_int(a bigint, b integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'planted code ran'; END $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = public.planted_int);
CREATE OPERATOR public.> (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = public.planted_int);
CREATE OPERATOR public.* (LEFTARG = double precision, RIGHTARG = bigint, FUNCTION = public.planted_num);
CREATE OPERATOR public.+ (LEFTARG = double precision, RIGHTARG = bigint, FUNCTION = public.planted_num);
CREATE FUNCTION public.power(double precision, bigint) RETURNS double precision LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'planted code ran'; END $$;
CREATE FUNCTION public.generate_series(integer, bigint) RETURNS SETOF integer LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'planted code ran'; END $$;
SET search_path = public, pg_catalog;
-- the plants work: unqualified SQL of the caller runs them
SELECT pg_temp.err($$SELECT 1.5::float8 * 2::bigint$$) AS control_1, pg_temp.err($$SELECT 2::bigint = 2$$) AS control_2;
SELECT count(*) AS epochs FROM recsys.train_embeddings('planted', '"Odd ""Table"""', 'user id', 'item;id', 'w', dim => 2, epochs => 1);
SELECT count(*) AS epochs FROM recsys.train_embeddings('planted', '"Odd ""Table"""', 'user id', 'item;id', 'w', dim => 2, epochs => 1,
	options => '{"engine": "aggregate"}');
SELECT count(*) AS epochs FROM recsys.train_embeddings('planted', '"Odd ""Table"""', 'user id', 'item;id', 'w', dim => 2, epochs => 1,
	method => 'sampled');
RESET search_path;
DROP OPERATOR public.= (bigint, integer);
DROP OPERATOR public.> (bigint, integer);
DROP OPERATOR public.* (double precision, bigint);
DROP OPERATOR public.+ (double precision, bigint);
DROP FUNCTION public.planted_num(double precision, bigint), public.planted_int(bigint, integer),
	public.power(double precision, bigint), public.generate_series(integer, bigint);
SELECT recsys.drop_model('planted');

-- the vectors go with their model
SELECT recsys.drop_model('tiny');
SELECT count(*) FROM recsys.user_vectors WHERE model = 'tiny';
SELECT count(*) FROM recsys.item_vectors WHERE model = 'tiny';
-- leave no models behind for the suites that follow
SELECT recsys.drop_model(n) FROM unnest(ARRAY['tiny_view', 'e', 'an mmoe', 'fallback']) n;
SELECT count(*) FROM recsys.user_vectors;
