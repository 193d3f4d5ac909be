-- pgTAP: training and batch scoring on several threads (recsys.max_workers)
-- give the results of one thread: ALS vectors bit for bit (each entity is
-- solved alone) but for the Gramians' summation order (1e-5), recommend_all
-- row for row; the threads' scratch counts in recsys.training_memory.
-- Runs with 2 threads whatever the machine's CPUs (max_workers set).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
BEGIN;
SELECT plan(25);

-- largest |a - b| relative to max |b|
CREATE FUNCTION pg_temp.rel_err(a float8[], b float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN a IS NULL OR b IS NULL OR array_dims(a) IS DISTINCT FROM array_dims(b) THEN 'Infinity'::float8
		ELSE (SELECT max(abs(x - y)) / nullif(max(abs(y)), 0) FROM unnest(a, b) AS u(x, y)) END
$$;
-- all vectors of a model, users then items, in id order
CREATE FUNCTION pg_temp.flat(m text) RETURNS float8[] LANGUAGE sql AS $$
	SELECT array_agg(x ORDER BY s, id, o) FROM
		(SELECT 1 AS s, id, embedding FROM recsys.user_vectors WHERE model = m
		 UNION ALL SELECT 2, id, embedding FROM recsys.item_vectors WHERE model = m) v,
		unnest(v.embedding) WITH ORDINALITY AS u(x, o)
$$;

-- 3,000 users x 2,500 items (more than two Gramian chunks on each side), skewed items
CREATE TEMP TABLE par_rows AS
	SELECT u, (abs(hashint4(u * 31 + j)) % 2500) * (1 + (j % 3)) % 2500 AS i, 1 + (j % 4) AS w
	FROM generate_series(1, 3000) u, generate_series(1, 12) j;

SET recsys.max_workers = 1;
SELECT count(*) FROM recsys.train_embeddings('par_cg1', 'par_rows', 'u', 'i', 'w', dim => 16, epochs => 3);
SELECT count(*) FROM recsys.train_embeddings('par_ch1', 'par_rows', 'u', 'i', 'w', dim => 16, epochs => 3,
	options => '{"solver": "cholesky"}');
SET recsys.max_workers = 2;
SELECT count(*) FROM recsys.train_embeddings('par_cg2', 'par_rows', 'u', 'i', 'w', dim => 16, epochs => 3);
SELECT count(*) FROM recsys.train_embeddings('par_ch2', 'par_rows', 'u', 'i', 'w', dim => 16, epochs => 3,
	options => '{"solver": "cholesky"}');

SELECT results_eq($$SELECT name, (metrics->>'workers')::int, (SELECT array_agg(DISTINCT (e->>'workers')::int) FROM jsonb_array_elements(metrics->'log') e)
		FROM recsys.models WHERE name LIKE 'par\_%' ORDER BY name$$,
	$$VALUES ('par_cg1', 1, '{1}'::int[]), ('par_cg2', 2, '{2}'), ('par_ch1', 1, '{1}'), ('par_ch2', 2, '{2}')$$,
	'the model and each epoch record the threads used: recsys.max_workers');
SELECT cmp_ok(pg_temp.rel_err(pg_temp.flat('par_cg2'), pg_temp.flat('par_cg1')), '<', 1e-5::float8,
	'cg on 2 threads gives the vectors of 1 thread (to 1e-5: the Gramians sum in another order)');
SELECT cmp_ok(pg_temp.rel_err(pg_temp.flat('par_ch2'), pg_temp.flat('par_ch1')), '<', 1e-5::float8,
	'cholesky on 2 threads gives the vectors of 1 thread (to 1e-5)');
SELECT cmp_ok((SELECT max(abs((a.e->>'loss')::float8 - (b.e->>'loss')::float8) / abs((b.e->>'loss')::float8))
		FROM jsonb_array_elements((SELECT metrics->'log' FROM recsys.models WHERE name = 'par_cg2')) WITH ORDINALITY a(e, n)
		JOIN jsonb_array_elements((SELECT metrics->'log' FROM recsys.models WHERE name = 'par_cg1')) WITH ORDINALITY b(e, n) USING (n)),
	'<', 1e-9::float8, 'the epochs'' losses on 2 threads equal those of 1 thread (to 1e-9)');
SELECT ok(pg_temp.rel_err(pg_temp.flat('par_ch2'), pg_temp.flat('par_cg2')) > 1e-4,
	'the two solvers differ (the comparisons above can fail)');

-- the Gramians alone: the stored item Gramian of a model with fewer than
-- 2,048 rows per side is summed by one thread, so vectors are bit for bit
CREATE TEMP TABLE par_small AS SELECT u, i FROM par_rows WHERE u <= 1500 AND i < 1500;
SET recsys.max_workers = 1;
SELECT count(*) FROM recsys.train_embeddings('sm1', 'par_small', 'u', 'i', dim => 8, epochs => 2);
SET recsys.max_workers = 2;
SELECT count(*) FROM recsys.train_embeddings('sm2', 'par_small', 'u', 'i', dim => 8, epochs => 2);
SELECT ok(pg_temp.flat('sm1') = pg_temp.flat('sm2') AND (SELECT metrics->>'workers' FROM recsys.models WHERE name = 'sm2') = '2',
	'without a parallel Gramian, 2 threads give the vectors of 1 thread bit for bit');

-- recommend_all: 3,000 users in groups of 64 scored by 2 threads, the same rows
SET recsys.max_workers = 1;
CREATE TEMP TABLE rec1 AS SELECT * FROM recsys.recommend_all('par_cg2', 7);
CREATE TEMP TABLE rec1s AS SELECT * FROM recsys.recommend_all('par_cg2', 5, exclude_seen => false);
SET recsys.max_workers = 2;
CREATE TEMP TABLE rec2 AS SELECT * FROM recsys.recommend_all('par_cg2', 7);
CREATE TEMP TABLE rec2s AS SELECT * FROM recsys.recommend_all('par_cg2', 5, exclude_seen => false);
SELECT is((SELECT count(*) FROM rec1), 21000::bigint, 'recommend_all on 1 thread: 7 rows for each of 3,000 users');
SELECT is((SELECT count(*) FROM (SELECT * FROM rec1 EXCEPT ALL SELECT * FROM rec2) d)
	+ (SELECT count(*) FROM (SELECT * FROM rec2 EXCEPT ALL SELECT * FROM rec1) d), 0::bigint,
	'recommend_all on 2 threads returns the rows of 1 thread (seen items left out)');
SELECT is((SELECT count(*) FROM (SELECT * FROM rec1s EXCEPT ALL SELECT * FROM rec2s) d)
	+ (SELECT count(*) FROM (SELECT * FROM rec2s EXCEPT ALL SELECT * FROM rec1s) d), 0::bigint,
	'recommend_all on 2 threads returns the rows of 1 thread (seen items kept)');

-- recommend_all_for_items: users folded in from their rows, scored by the
-- threads while the next users are read; the same rows as on 1 thread
CREATE TEMP TABLE par_recent AS SELECT u, i, w FROM par_rows WHERE u % 3 = 0;
SET recsys.max_workers = 1;
CREATE TEMP TABLE fi1 AS SELECT * FROM recsys.recommend_all_for_items('par_cg2', 'par_recent', 'u', 'i', 'w', 6);
SET recsys.max_workers = 2;
CREATE TEMP TABLE fi2 AS SELECT * FROM recsys.recommend_all_for_items('par_cg2', 'par_recent', 'u', 'i', 'w', 6);
SELECT is((SELECT count(*) FROM fi1), 6000::bigint, 'recommend_all_for_items on 1 thread: 6 rows for each of 1,000 users');
SELECT is((SELECT count(*) FROM (SELECT * FROM fi1 EXCEPT ALL SELECT * FROM fi2) d)
	+ (SELECT count(*) FROM (SELECT * FROM fi2 EXCEPT ALL SELECT * FROM fi1) d), 0::bigint,
	'recommend_all_for_items on 2 threads returns the rows of 1 thread');

-- a cancel while the threads score one set and this thread reads the next
-- or writes rows: the other thread is stopped before the error unwinds, the
-- backend goes on (60,000 users: about 60 sets of 1,024)
CREATE TEMP TABLE par_many AS SELECT u, (u * 7 + j * 13) % 2000 AS i FROM generate_series(1, 60000) u, generate_series(1, 3) j;
SELECT count(*) FROM recsys.train_embeddings('par_many', 'par_many', 'u', 'i', dim => 16, epochs => 1);
CREATE FUNCTION pg_temp.cancelled(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'finished';
EXCEPTION WHEN query_canceled THEN
	RETURN SQLSTATE;
END
$$;
SET statement_timeout = 150;
CREATE TEMP TABLE par_cancel AS SELECT pg_temp.cancelled(
	$$SELECT count(*) FROM (SELECT * FROM recsys.recommend_all('par_many', 50, exclude_seen => false) r ORDER BY 1, 4) s$$) AS state;
RESET statement_timeout;
SELECT is((SELECT state FROM par_cancel), '57014', 'a cancel of recommend_all on 2 threads ends it with query_canceled');
SELECT is((SELECT count(*) FROM recsys.recommend_all('par_many', 2, users => '{1,2,59999}')), 6::bigint,
	'the backend serves again after the cancel');

-- the threads' scratch counts in recsys.training_memory: the loaded data
-- (indexes, confidences, factors, one lambda per entity) plus one thread's
-- scratch fits a budget where two threads' scratch does not: one thread.
-- At dim 256 each thread's scratch (Cholesky and Gramian buffers, ~3 MB)
-- passes the loader's peak over the data, so the budgets below decide.
SET recsys.max_workers = 1;
SELECT count(*) FROM recsys.train_embeddings('mem1', 'par_rows', 'u', 'i', 'w', dim => 256, epochs => 1);
SET recsys.max_workers = 2;
SELECT count(*) FROM recsys.train_embeddings('mem2', 'par_rows', 'u', 'i', 'w', dim => 256, epochs => 1);
CREATE TEMP TABLE par_need AS
	SELECT (metrics->>'memory_bytes')::bigint - 16 + 8 * ((config->>'n_users')::bigint + (config->>'n_items')::bigint) AS data,
		(SELECT (metrics->>'scratch_bytes')::bigint FROM recsys.models WHERE name = 'mem1') AS one,
		(metrics->>'scratch_bytes')::bigint AS two
	FROM recsys.models WHERE name = 'mem2';
SELECT ok((SELECT two > one + 2048 AND one > 2048 * 1024 FROM par_need), 'two threads need more scratch than one, one over 2 MB');
SELECT set_config('recsys.training_memory', ((SELECT data + one FROM par_need) / 1024 + 1)::text, true);
SELECT count(*) FROM recsys.train_embeddings('mem_b1', 'par_rows', 'u', 'i', 'w', dim => 256, epochs => 1);
SELECT set_config('recsys.training_memory', ((SELECT data + two FROM par_need) / 1024 + 1)::text, true);
SELECT count(*) FROM recsys.train_embeddings('mem_b2', 'par_rows', 'u', 'i', 'w', dim => 256, epochs => 1);
SELECT set_config('recsys.training_memory', ((SELECT data + one FROM par_need) / 1024 - 1)::text, true);
SELECT count(*) FROM recsys.train_embeddings('mem_b0', 'par_rows', 'u', 'i', 'w', dim => 256, epochs => 1);
RESET recsys.training_memory;
SELECT results_eq($$SELECT name, config->>'engine', metrics->>'workers' FROM recsys.models WHERE name LIKE 'mem\_b%' ORDER BY name$$,
	$$VALUES ('mem_b0', 'aggregate', NULL), ('mem_b1', 'memory', '1'), ('mem_b2', 'memory', '2')$$,
	'a budget for the data and one thread''s scratch trains on one thread, one for two threads'' on two, less falls back');
SELECT ok((SELECT bool_and((m.metrics->>'memory_bytes')::bigint - 16 + 8 * ((m.config->>'n_users')::bigint + (m.config->>'n_items')::bigint)
		+ (m.metrics->>'scratch_bytes')::bigint <= 1024 * (CASE m.name WHEN 'mem_b1' THEN (SELECT data + one FROM par_need) / 1024 + 1
			ELSE (SELECT data + two FROM par_need) / 1024 + 1 END))
	FROM recsys.models m WHERE m.name IN ('mem_b1', 'mem_b2')), 'data and scratch stay within the budget');

-- the loader reads a plain table with a direct scan and anything else
-- through SQL: both give the same rows, and what SELECT would hide or refuse
-- stays hidden or refused
CREATE TABLE dscan (u int2, i int4, w numeric, f real, n int8);
INSERT INTO dscan SELECT (g % 97)::int2, (g * 7) % 61, (g % 5)::numeric / 2, (g % 3)::real, g % 4
	FROM generate_series(1, 3000) g;
INSERT INTO dscan VALUES (1, 1, 1e-300, 1, 1);
DELETE FROM dscan WHERE i = 3;
CREATE VIEW dscan_view AS SELECT * FROM dscan;
SET recsys.max_workers = 1;
SELECT count(*) FROM recsys.train_embeddings('ds_t', 'dscan', 'u', 'i', 'w', dim => 4, epochs => 2);
SELECT count(*) FROM recsys.train_embeddings('ds_v', 'dscan_view', 'u', 'i', 'w', dim => 4, epochs => 2);
SELECT count(*) FROM recsys.train_embeddings('ds_tf', 'dscan', 'u', 'i', 'f', dim => 4, epochs => 2);
SELECT count(*) FROM recsys.train_embeddings('ds_vf', 'dscan_view', 'u', 'i', 'f', dim => 4, epochs => 2);
SELECT count(*) FROM recsys.train_embeddings('ds_tn', 'dscan', 'u', 'i', 'n', dim => 4, epochs => 2);
SELECT count(*) FROM recsys.train_embeddings('ds_vn', 'dscan_view', 'u', 'i', 'n', dim => 4, epochs => 2);
SELECT ok(pg_temp.flat('ds_t') = pg_temp.flat('ds_v') AND pg_temp.flat('ds_tf') = pg_temp.flat('ds_vf')
	AND pg_temp.flat('ds_tn') = pg_temp.flat('ds_vn') AND pg_temp.flat('ds_t') <> pg_temp.flat('ds_tf'),
	'a table read directly gives the vectors of the same rows read through a view (int2/int4 ids; numeric, real, bigint weights)');
SELECT results_eq($$SELECT (config->>'n_rows')::int, (config->>'n_interactions')::int FROM recsys.models WHERE name = 'ds_t'$$,
	$$SELECT count(*)::int, count(DISTINCT (u, i)) FILTER (WHERE w > 0)::int FROM dscan$$,
	'the direct scan sees the statement''s rows: deleted ones gone, this transaction''s inserts in');

-- inheritance: SELECT reads the children too
CREATE TABLE dscan_child () INHERITS (dscan);
INSERT INTO dscan_child VALUES (500, 500, 1, 1, 1), (501, 500, 2, 1, 1);
SELECT count(*) FROM recsys.train_embeddings('ds_inh', 'dscan', 'u', 'i', 'w', dim => 4, epochs => 1);
SELECT is((SELECT (config->>'n_rows')::bigint FROM recsys.models WHERE name = 'ds_inh'), (SELECT count(*) FROM dscan),
	'a table with inheritance children: their rows are read too');
DROP TABLE dscan_child;

-- row-level security: a role sees only its policy's rows; without SELECT it is refused
CREATE ROLE dscan_reader;
CREATE ROLE dscan_cols;
CREATE ROLE dscan_none;
GRANT USAGE ON SCHEMA recsys TO dscan_reader, dscan_cols, dscan_none;
GRANT USAGE, CREATE ON SCHEMA public TO dscan_reader, dscan_cols, dscan_none;
GRANT SELECT ON dscan TO dscan_reader;
GRANT SELECT (u, i) ON dscan TO dscan_cols;
GRANT SELECT ON ALL TABLES IN SCHEMA recsys TO dscan_reader, dscan_cols, dscan_none;
GRANT INSERT, UPDATE, DELETE ON recsys.model_names, recsys.models, recsys.user_vectors, recsys.item_vectors,
	recsys.model_aliases, recsys.model_events TO dscan_reader, dscan_cols, dscan_none;
ALTER TABLE dscan ENABLE ROW LEVEL SECURITY;
CREATE POLICY dscan_few ON dscan FOR SELECT TO dscan_reader USING (u < 10);
CREATE POLICY dscan_all ON dscan FOR SELECT TO dscan_cols USING (true);
SET ROLE dscan_reader;
SELECT lives_ok($$SELECT count(*) FROM recsys.train_embeddings('ds_rls', 'dscan', 'u', 'i', dim => 4, epochs => 1)$$,
	'a role under row-level security trains');
SELECT is((SELECT (config->>'n_rows')::bigint FROM recsys.models WHERE name = 'ds_rls'), (SELECT count(*) FROM dscan),
	'under row-level security only the policy''s rows are read');
RESET ROLE;
ALTER TABLE dscan DISABLE ROW LEVEL SECURITY;
SET ROLE dscan_cols;
SELECT lives_ok($$SELECT count(*) FROM recsys.train_embeddings('ds_cols', 'dscan', 'u', 'i', dim => 4, epochs => 1)$$,
	'SELECT on the columns read is enough');
RESET ROLE;
SET ROLE dscan_none;
SELECT throws_ok($$SELECT count(*) FROM recsys.train_embeddings('ds_none', 'dscan', 'u', 'i', dim => 4, epochs => 1)$$,
	'42501', NULL, 'without SELECT on the table or its columns the training is refused');
RESET ROLE;

-- the setting: -1 derives it from max_parallel_maintenance_workers (+1, at most the CPUs)
SELECT is(current_setting('recsys.max_workers'), '1', 'recsys.max_workers is set per session');
RESET recsys.max_workers;
SELECT is(current_setting('recsys.max_workers'), '-1', 'recsys.max_workers defaults to -1 (derived)');

SELECT * FROM finish();
ROLLBACK;
