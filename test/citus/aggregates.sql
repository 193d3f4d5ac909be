-- pgTAP on Citus: every recsys aggregate on distributed tables runs on the
-- workers (worker_partial_agg, or whole per group when grouped by the
-- distribution column), and gives what the same query gives on an identical
-- local table (and, for some, a plain-SQL reference) within 1e-9 relative.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
SELECT plan(66);

DROP SCHEMA IF EXISTS citus_tap CASCADE;
CREATE SCHEMA citus_tap;
SET citus.shard_count = 6;
-- a query that would pull rows to the coordinator is an error, not a slow plan
SET citus.coordinator_aggregation_strategy TO 'disabled';

-- (the helpers are the coordinator's own: Citus need not try to propagate them)
SET client_min_messages = error;
-- largest |a - b| relative to max |b|; infinite when the shapes differ or a value is NULL
CREATE FUNCTION pg_temp.rel_err(a float8[], b float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN a IS NULL OR b IS NULL OR array_dims(a) IS DISTINCT FROM array_dims(b)
			OR EXISTS (SELECT FROM unnest(a) x WHERE x IS NULL) OR EXISTS (SELECT FROM unnest(b) x WHERE x IS NULL)
		THEN 'Infinity'::float8
		ELSE (SELECT max(abs(x - y)) / nullif(max(abs(y)), 0) FROM unnest(a, b) AS u(x, y)) END
$$;
-- every number in a query's rows (group keys, scalars, array elements), in row
-- order, from the rows' text (exact: shortest round-trip float output); a NULL
-- stays NULL
CREATE FUNCTION pg_temp.run(q text) RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE
	r record;
	res float8[] := '{}';
BEGIN
	FOR r IN EXECUTE q LOOP
		res := res || ARRAY(SELECT nullif(e, '')::float8
			FROM unnest(string_to_array(translate(r::text, '(){}" ', ''), ',')) WITH ORDINALITY u(e, o) ORDER BY o);
	END LOOP;
	RETURN res;
END
$$;
-- the query run on the distributed and on the local table (%1$s in q), relative difference
CREATE FUNCTION pg_temp.dist_vs_local(q text) RETURNS float8 LANGUAGE sql AS $$
	SELECT pg_temp.rel_err(pg_temp.run(format(q, 'citus_tap.dist')), pg_temp.run(format(q, 'citus_tap.loc')))
$$;
-- EXPLAIN VERBOSE (never ANALYZE: it fails for worker_partial_agg plans) as one text
CREATE FUNCTION pg_temp.plan(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	res text := '';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
		res := res || line || E'\n';
	END LOOP;
	RETURN res;
END
$$;
-- is the aggregate (given as its regprocedure text) partially aggregated on the
-- workers and combined on the coordinator?
CREATE FUNCTION pg_temp.partial_on_workers(q text, agg text) RETURNS boolean LANGUAGE sql AS $$
	SELECT p LIKE '%Query: SELECT %worker_partial_agg(' || quote_literal(agg) || '::regprocedure%'
		AND p LIKE '%coord_combine_agg(%'
	FROM pg_temp.plan(q) p
$$;

SET client_min_messages = warning;

-- One row per (id): every aggregate's inputs, with NULLs and tied scores.
CREATE TABLE citus_tap.loc (
	id bigint NOT NULL, grp int NOT NULL, v real[], vd float8[], w float8, c float8,
	score float8, label boolean, p float8, losses float8[], task_types text[],
	mean float8, variance float8);
INSERT INTO citus_tap.loc
SELECT i, i % 5,
	CASE WHEN i % 97 <> 0 THEN ARRAY(SELECT (random() * 2 - 1)::real FROM generate_series(1, 6) d WHERE i > 0) END,
	ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 6) d WHERE i > 0),
	CASE WHEN i % 89 <> 0 THEN random() * 3 - 0.5 END,
	1 + 4 * random(),
	CASE WHEN i % 83 <> 0 THEN round(random()::numeric, 2)::float8 END,
	random() < 0.3 + 0.4 * (i % 3) / 2.0,
	0.02 + 0.96 * random(),
	ARRAY[0.1 + random(), 2 * random() + 0.01, 0.5 * random() + 0.05],
	'{regression,classification,regression}',
	random() * 2, CASE WHEN i % 79 <> 0 THEN random() * 0.3 END
FROM (SELECT setseed(0.25)) s, generate_series(1, 20000) i;
CREATE TABLE citus_tap.dist (LIKE citus_tap.loc);
INSERT INTO citus_tap.dist SELECT * FROM citus_tap.loc;
SELECT create_distributed_table('citus_tap.dist', 'id');
SELECT truncate_local_data_after_distributing_table('citus_tap.dist');
ANALYZE citus_tap.loc;

SELECT is((SELECT count(*) FROM citus_tap.dist), 20000::bigint, 'distributed table has all rows');
SELECT is((SELECT count(DISTINCT nodeport) FROM pg_dist_shard_placement
	WHERE shardid IN (SELECT shardid FROM pg_dist_shard WHERE logicalrelid = 'citus_tap.dist'::regclass)),
	2::bigint, 'its shards are on both workers');

-- 1. ungrouped aggregates: worker_partial_agg, then equal to the local table
-- the Gramian argument of als_solve, as a literal for the query texts
\set G '{{2,0.5,0,0,0,0},{0.5,2,0,0,0,0},{0,0,2,0,0,0},{0,0,0,2,0,0},{0,0,0,0,2,0},{0,0,0,0,0,2}}'
SELECT quote_literal(:'G') || '::float8[]' AS gq \gset
CREATE TEMP TABLE cases (agg text, q text);
INSERT INTO cases VALUES
	('recsys.gramian(real[])', 'SELECT recsys.gramian(v) AS a FROM %1$s'),
	('recsys.gramian(double precision[])', 'SELECT recsys.gramian(vd) AS a FROM %1$s'),
	('recsys.gramian(real[],double precision)', 'SELECT recsys.gramian(v, w) AS a FROM %1$s'),
	('recsys.gramian(double precision[],double precision)', 'SELECT recsys.gramian(vd, w) AS a FROM %1$s'),
	('recsys.als_solve(real[],double precision,double precision[],double precision,double precision)',
		'SELECT recsys.als_solve(v, c, ' || :'gq' || ', 0.5, 3.0) AS a FROM %1$s'),
	('recsys.als_solve(double precision[],double precision,double precision[],double precision,double precision)',
		'SELECT recsys.als_solve(vd, c, ' || :'gq' || ', 0.5, 3.0) AS a FROM %1$s'),
	('recsys.als_solve_objective(real[],double precision,double precision[],double precision,double precision)',
		'SELECT recsys.als_solve_objective(v, c, ' || :'gq' || ', 0.5, 3.0) AS a FROM %1$s'),
	('recsys.auc(double precision,boolean)', 'SELECT recsys.auc(score, label) AS a FROM %1$s'),
	('recsys.log_loss(double precision,boolean)', 'SELECT recsys.log_loss(p, label) AS a FROM %1$s'),
	('recsys.uncertainty_weights(double precision[])', 'SELECT recsys.uncertainty_weights(losses) AS a FROM %1$s'),
	('recsys.uncertainty_weights(double precision[],text[])',
		'SELECT recsys.uncertainty_weights(losses, task_types) AS a FROM %1$s'),
	('recsys.uncertainty_weighted_loss(double precision[])',
		'SELECT recsys.uncertainty_weighted_loss(losses) AS a FROM %1$s'),
	('recsys.uncertainty_weighted_loss(double precision[],text[])',
		'SELECT recsys.uncertainty_weighted_loss(losses, task_types) AS a FROM %1$s'),
	('recsys.predictive_variance(double precision,double precision)',
		'SELECT recsys.predictive_variance(mean, variance) AS a FROM %1$s');

-- every aggregate of the extension has a case (a new one must be added here);
-- predict_top_k scores with a stored model, so it is tested with the store in
-- test/citus/store.sql
SELECT set_eq(
	$$SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass
		AND d.objid = p.oid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
		JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'recsys' WHERE p.prokind = 'a'
		AND p.proname <> 'predict_top_k'$$,
	$$SELECT agg FROM cases$$, 'the cases cover every recsys aggregate');

SELECT ok(pg_temp.partial_on_workers(format(q, 'citus_tap.dist'), agg), agg || ': worker_partial_agg on the workers')
FROM cases ORDER BY agg;
SELECT cmp_ok(pg_temp.dist_vs_local(q), '<', 1e-9::float8, agg || ': distributed equals local')
FROM cases ORDER BY agg;

-- 2. grouped by a column that is not the distribution column: partial states
-- per group on the workers, combined per group on the coordinator
SELECT ok(pg_temp.partial_on_workers(
	'SELECT grp, recsys.gramian(v, w) AS a FROM citus_tap.dist GROUP BY grp ORDER BY grp',
	'recsys.gramian(real[],double precision)'), 'gramian GROUP BY grp: worker_partial_agg');
SELECT cmp_ok(pg_temp.dist_vs_local('SELECT grp, recsys.gramian(v, w) AS a FROM %1$s GROUP BY grp ORDER BY grp'),
	'<', 1e-9::float8, 'gramian GROUP BY grp: distributed equals local');
SELECT ok(pg_temp.partial_on_workers(
	'SELECT grp, recsys.auc(score, label) AS a FROM citus_tap.dist GROUP BY grp ORDER BY grp',
	'recsys.auc(double precision,boolean)'), 'auc GROUP BY grp: worker_partial_agg');
SELECT cmp_ok(pg_temp.dist_vs_local('SELECT grp, recsys.auc(score, label) AS a FROM %1$s GROUP BY grp ORDER BY grp'),
	'<', 1e-9::float8, 'auc GROUP BY grp: distributed equals local');
SELECT cmp_ok(pg_temp.dist_vs_local('SELECT grp, recsys.als_solve_objective(v, c, ' || :'gq' || ', 0.5, 3.0) AS a FROM %1$s GROUP BY grp ORDER BY grp'),
	'<', 1e-9::float8, 'als_solve_objective GROUP BY grp: distributed equals local');
SELECT cmp_ok(pg_temp.dist_vs_local('SELECT grp, recsys.predictive_variance(mean, variance) AS a FROM %1$s GROUP BY grp ORDER BY grp'),
	'<', 1e-9::float8, 'predictive_variance GROUP BY grp: distributed equals local');

-- 3. the distributed results against plain SQL (independent of recsys's code)
SELECT cmp_ok(pg_temp.rel_err(pg_temp.run('SELECT recsys.gramian(vd, w) AS a FROM citus_tap.dist'),
	(SELECT array_agg(s ORDER BY i, j) FROM (SELECT i, j, sum(vd[i] * vd[j] * w) AS s
		FROM citus_tap.loc, generate_series(1, 6) i, generate_series(1, 6) j GROUP BY i, j) g)),
	'<', 1e-9::float8, 'distributed weighted gramian equals SQL sums');
SELECT cmp_ok(pg_temp.rel_err(pg_temp.run('SELECT recsys.log_loss(p, label) AS a FROM citus_tap.dist'),
	(SELECT ARRAY[avg(CASE WHEN label THEN -ln(p) ELSE -ln(1 - p) END)] FROM citus_tap.loc)),
	'<', 1e-9::float8, 'distributed log_loss equals the SQL mean of -log likelihoods');
SELECT cmp_ok(pg_temp.rel_err(pg_temp.run('SELECT recsys.predictive_variance(mean, variance) AS a FROM citus_tap.dist'),
	(SELECT ARRAY[var_pop(mean), avg(variance), var_pop(mean) + avg(variance)] FROM citus_tap.loc
		WHERE mean IS NOT NULL AND variance IS NOT NULL)),
	'<', 1e-9::float8, 'distributed predictive_variance equals var_pop and avg');
SELECT cmp_ok(pg_temp.rel_err(pg_temp.run('SELECT recsys.uncertainty_weights(losses) AS a FROM citus_tap.dist'),
	(SELECT ARRAY[ln(avg(losses[1])), ln(avg(losses[2])), ln(avg(losses[3]))] FROM citus_tap.loc)),
	'<', 1e-9::float8, 'distributed uncertainty_weights equals ln of the mean losses');
-- Mann-Whitney: (sum of the positives' mid-ranks - P(P+1)/2) / (P N)
SELECT cmp_ok(pg_temp.rel_err(pg_temp.run('SELECT recsys.auc(score, label) AS a FROM citus_tap.dist'),
	(SELECT ARRAY[(sum(r) FILTER (WHERE label) - count(*) FILTER (WHERE label) * (count(*) FILTER (WHERE label) + 1) / 2.0)
		/ (count(*) FILTER (WHERE label) * count(*) FILTER (WHERE NOT label))::float8]
	FROM (SELECT label, (rank() OVER (ORDER BY score) + (count(*) OVER (PARTITION BY score) - 1) / 2.0)::float8 AS r
		FROM citus_tap.loc WHERE score IS NOT NULL) s)),
	'<', 1e-9::float8, 'distributed auc equals the Mann-Whitney statistic');

-- 4. per-entity ALS solves grouped by the distribution column run whole on
-- the workers: no partial states, no combine on the coordinator
CREATE TABLE citus_tap.pairs_loc (u bigint NOT NULL, i bigint NOT NULL, c float8 NOT NULL, lam float8 NOT NULL);
INSERT INTO citus_tap.pairs_loc
SELECT u, i, 1 + 9 * random(), 0.5 + u % 3
FROM (SELECT setseed(0.75)) s, generate_series(1, 300) u, generate_series(1, 60) i
WHERE random() < 0.25;
CREATE TABLE citus_tap.pairs (LIKE citus_tap.pairs_loc);
INSERT INTO citus_tap.pairs SELECT * FROM citus_tap.pairs_loc;
SELECT create_distributed_table('citus_tap.pairs', 'u');
SELECT truncate_local_data_after_distributing_table('citus_tap.pairs');
ANALYZE citus_tap.pairs_loc;
SELECT format('SELECT u, recsys.als_solve(recsys.embedding_init(i, 6, 7, 1.0), c, %s, 0.5, lam) AS a FROM %%1$s GROUP BY u ORDER BY u',
	:'gq') AS q_user \gset
SELECT ok(p LIKE '%Query: SELECT u, recsys.als_solve(recsys.embedding_init(i, 6,%GROUP BY u%'
	AND p NOT LIKE '%worker_partial_agg%' AND p NOT LIKE '%coord_combine_agg%',
	'als_solve GROUP BY the distribution column runs whole in the worker query')
FROM pg_temp.plan(format(:'q_user', 'citus_tap.pairs')) p;
SELECT cmp_ok(pg_temp.rel_err(pg_temp.run(format(:'q_user', 'citus_tap.pairs')), pg_temp.run(format(:'q_user', 'citus_tap.pairs_loc'))),
	'<', 1e-9::float8, 'als_solve per user: distributed equals local');
SELECT is(cardinality(pg_temp.run(format(:'q_user', 'citus_tap.pairs'))), 7 * (SELECT count(DISTINCT u) FROM citus_tap.pairs_loc)::int,
	'one solution (id and 6 values) per user');
-- the item side, grouped by a column that is not the distribution column
SELECT format('SELECT i, recsys.als_solve_objective(recsys.embedding_init(u, 6, 9, 1.0), c, %s, 0.5, 2.0) AS a FROM %%1$s GROUP BY i ORDER BY i',
	:'gq') AS q_item \gset
SELECT ok(pg_temp.partial_on_workers(format(:'q_item', 'citus_tap.pairs'),
	'recsys.als_solve_objective(real[],double precision,double precision[],double precision,double precision)'),
	'als_solve_objective GROUP BY item: worker_partial_agg');
SELECT cmp_ok(pg_temp.rel_err(pg_temp.run(format(:'q_item', 'citus_tap.pairs')), pg_temp.run(format(:'q_item', 'citus_tap.pairs_loc'))),
	'<', 1e-9::float8, 'als_solve_objective per item: distributed equals local');

-- 5. the strategy really forbids pulling rows: an aggregate without a combine
-- function cannot run on a distributed table
CREATE AGGREGATE citus_tap.sum_no_combine(float8) (SFUNC = float8pl, STYPE = float8);
SELECT throws_like('SELECT citus_tap.sum_no_combine(p) FROM citus_tap.dist',
	'unsupported aggregate function sum_no_combine%', 'an aggregate without a combine function is refused');

-- 6. the rows are consumed on the workers: calls of the argument functions
-- counted there with track_functions = 'all', none on the coordinator
-- (PostgreSQL counts function calls in expressions only, never aggregate
-- support functions, so the count is of recsys.embedding_init and recsys.dot
-- computing the aggregates' inputs row by row)
SELECT is(count(*), 2::bigint, 'track_functions = all set on both workers')
FROM run_command_on_workers($$ALTER SYSTEM SET track_functions = 'all'$$) WHERE success;
SELECT is(count(*), 2::bigint, 'workers reloaded their configuration')
FROM run_command_on_workers('SELECT pg_reload_conf()') WHERE success AND result = 't';
-- a fresh connection per statement: worker backends exit, and flush their counts, after each
SET citus.max_cached_conns_per_worker = 0;
SELECT is(array_agg(result), '{all,all}', 'workers track every function call')
FROM run_command_on_workers('SHOW track_functions');
SET client_min_messages = error;
-- total calls of a function on the workers, once their count reaches at least
-- want (their backends report at exit), waiting up to 30 s
CREATE FUNCTION pg_temp.worker_calls(fn text, want bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	FOR attempt IN 1..300 LOOP
		SELECT sum(result::bigint) INTO n FROM run_command_on_workers(format(
			'SELECT coalesce(sum(calls), 0) FROM pg_catalog.pg_stat_user_functions WHERE funcid = %L::regprocedure', fn));
		EXIT WHEN n >= want;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN n;
END
$$;
CREATE FUNCTION pg_temp.reset_worker_stats() RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM run_command_on_workers('SELECT pg_stat_reset()') WHERE success
$$;
CREATE FUNCTION pg_temp.coordinator_calls(fn text) RETURNS bigint LANGUAGE sql AS $$
	SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions WHERE funcid = fn::regprocedure
$$;
SET client_min_messages = warning;

SELECT is(pg_temp.reset_worker_stats(), 2::bigint, 'worker statistics reset');
BEGIN;
SET LOCAL track_functions = 'all';
SELECT ok(pg_temp.partial_on_workers('SELECT recsys.gramian(recsys.embedding_init(id, 6, 7, 1.0)) FROM citus_tap.dist',
	'recsys.gramian(real[])'), 'gramian of generated vectors: worker_partial_agg');
CREATE TEMP TABLE g_dist AS SELECT recsys.gramian(recsys.embedding_init(id, 6, 7, 1.0)) AS g FROM citus_tap.dist;
SELECT is(pg_temp.coordinator_calls('recsys.embedding_init(bigint,integer,bigint,double precision)'), 0::bigint,
	'no embedding_init call on the coordinator');
COMMIT;
SELECT is(pg_temp.worker_calls('recsys.embedding_init(bigint,integer,bigint,double precision)', 20000), 20000::bigint,
	'20000 embedding_init calls on the workers, one per row');
SELECT cmp_ok(pg_temp.rel_err((SELECT g FROM g_dist),
	(SELECT recsys.gramian(recsys.embedding_init(id, 6, 7, 1.0)) FROM citus_tap.loc)), '<', 1e-9::float8,
	'gramian of generated vectors: distributed equals local');

SELECT is(pg_temp.reset_worker_stats(), 2::bigint, 'worker statistics reset');
BEGIN;
SET LOCAL track_functions = 'all';
CREATE TEMP TABLE auc_dist AS SELECT recsys.auc(recsys.dot(v, v), label) AS a FROM citus_tap.dist;
SELECT is(pg_temp.coordinator_calls('recsys.dot(real[],real[])'), 0::bigint, 'no dot call on the coordinator');
COMMIT;
SELECT is(pg_temp.worker_calls('recsys.dot(real[],real[])', (SELECT count(v) FROM citus_tap.loc)),
	(SELECT count(v) FROM citus_tap.loc), 'one dot call per non-NULL vector on the workers');
SELECT cmp_ok(pg_temp.rel_err(ARRAY[(SELECT a FROM auc_dist)],
	ARRAY[(SELECT recsys.auc(recsys.dot(v, v), label) FROM citus_tap.loc)]), '<', 1e-9::float8,
	'auc of scores computed on the workers equals local');

SELECT is(pg_temp.reset_worker_stats(), 2::bigint, 'worker statistics reset');
BEGIN;
SET LOCAL track_functions = 'all';
CREATE TEMP TABLE als_dist AS SELECT * FROM (SELECT u, recsys.als_solve(recsys.embedding_init(i, 6, 7, 1.0), c,
	:'G'::float8[], 0.5, lam) AS a FROM citus_tap.pairs GROUP BY u) s;
SELECT is(pg_temp.coordinator_calls('recsys.embedding_init(bigint,integer,bigint,double precision)'), 0::bigint,
	'per-user als_solve: no embedding_init call on the coordinator');
COMMIT;
SELECT is(pg_temp.worker_calls('recsys.embedding_init(bigint,integer,bigint,double precision)',
	(SELECT count(*) FROM citus_tap.pairs_loc)), (SELECT count(*) FROM citus_tap.pairs_loc),
	'per-user als_solve: one embedding_init call per interaction on the workers');
SELECT is((SELECT count(*) FROM als_dist), (SELECT count(DISTINCT u) FROM citus_tap.pairs_loc),
	'per-user als_solve: one row per user');

SELECT is(count(*), 2::bigint, 'track_functions reset on the workers')
FROM run_command_on_workers('ALTER SYSTEM RESET track_functions') WHERE success;
SELECT is(count(*), 2::bigint, 'workers reloaded their configuration')
FROM run_command_on_workers('SELECT pg_reload_conf()') WHERE success AND result = 't';
DROP SCHEMA citus_tap CASCADE;
SELECT * FROM finish();
