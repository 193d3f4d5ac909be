-- pgTAP on Citus: train_embeddings (als) over a distributed interactions
-- table runs its epochs on the workers, over distributed work tables, and
-- stores the same vectors as the same training over an identical local table.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
SELECT plan(38);

DROP SCHEMA IF EXISTS train_tap CASCADE;
CREATE SCHEMA train_tap;
SET citus.shard_count = 8;

SET client_min_messages = error;
-- the largest |a - b| over the vectors of two models (matched by id), for one side;
-- infinite when the ids differ
CREATE FUNCTION pg_temp.vec_diff(side text, m1 text, m2 text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	res float8;
BEGIN
	EXECUTE format($q$
		SELECT CASE WHEN count(*) FILTER (WHERE a.id IS NULL OR b.id IS NULL
				OR cardinality(a.embedding) <> cardinality(b.embedding)) > 0 THEN 'Infinity'::float8
			ELSE max((SELECT max(abs(x - y)) FROM unnest(a.embedding, b.embedding) u(x, y))) END
		FROM (SELECT * FROM recsys.%1$I WHERE model = %2$L) a
		FULL JOIN (SELECT * FROM recsys.%1$I WHERE model = %3$L) b ON a.id = b.id$q$, side, m1, m2) INTO res;
	RETURN res;
END
$$;
-- EXPLAIN VERBOSE as one text
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
-- how many nodes (coordinator and workers) give this answer
CREATE FUNCTION pg_temp.nodes_saying(q text, answer text) RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM run_command_on_all_nodes(q) WHERE success AND result = answer
$$;
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
SET client_min_messages = warning;

-- interactions: 300 users, 120 items, repeated pairs summed, a few zero weights
CREATE TABLE train_tap.loc (user_id bigint, item_id bigint, w float8);
SELECT setseed(0.31);
INSERT INTO train_tap.loc
SELECT u, 1 + (u * 17 + j * j * 7 + j) % 120, CASE WHEN j % 11 = 0 THEN 0 ELSE 1 + (u + j) % 4 END
FROM generate_series(1, 300) u, generate_series(1, 3 + u % 9) j;
INSERT INTO train_tap.loc SELECT user_id, item_id, 2 FROM train_tap.loc WHERE user_id % 5 = 0 AND w > 0;
CREATE TABLE train_tap.dist (LIKE train_tap.loc);
SELECT create_distributed_table('train_tap.dist', 'user_id') \g /dev/null
INSERT INTO train_tap.dist SELECT * FROM train_tap.loc;
-- distributed by item too (its pairs are repartitioned by user)
CREATE TABLE train_tap.dist_by_item (u int, i int, w real);
SELECT create_distributed_table('train_tap.dist_by_item', 'i') \g /dev/null
INSERT INTO train_tap.dist_by_item SELECT user_id, item_id, w FROM train_tap.loc;

-- 1. the same vectors as on one node
SELECT is(count(*), 5::bigint, 'aggregate engine on the local table')
FROM recsys.train_embeddings('tr_loc', 'train_tap.loc', weight_column => 'w', dim => 6, epochs => 5,
	gramian_weight => 0.2, l2 => 0.05, options => '{"engine": "aggregate", "seed": 3}');
SELECT is(count(*), 5::bigint, 'distributed table, engine auto')
FROM recsys.train_embeddings('tr_dist', 'train_tap.dist', weight_column => 'w', dim => 6, epochs => 5,
	gramian_weight => 0.2, l2 => 0.05, options => '{"seed": 3}');
SELECT is((SELECT config->>'engine' || ' ' || (config->>'distributed') FROM recsys.models WHERE name = 'tr_dist'),
	'aggregate true', 'auto chose the aggregate engine on the workers');
SELECT cmp_ok(pg_temp.vec_diff('user_vectors', 'tr_dist', 'tr_loc'), '<', 1e-5::float8,
	'user vectors equal the local training within 1e-5');
SELECT cmp_ok(pg_temp.vec_diff('item_vectors', 'tr_dist', 'tr_loc'), '<', 1e-5::float8,
	'item vectors equal the local training within 1e-5');
SELECT is((SELECT count(*) FROM recsys.user_vectors a JOIN recsys.user_vectors b USING (id)
	WHERE a.model = 'tr_dist' AND b.model = 'tr_loc' AND a.seen = b.seen),
	(SELECT count(DISTINCT user_id) FROM train_tap.loc WHERE w > 0), 'the same seen items for every user');
SELECT cmp_ok((SELECT max(abs((a.e->>'loss')::float8 / (b.e->>'loss')::float8 - 1))
	FROM jsonb_array_elements((SELECT metrics->'log' FROM recsys.models WHERE name = 'tr_dist')) WITH ORDINALITY a(e, n)
	JOIN jsonb_array_elements((SELECT metrics->'log' FROM recsys.models WHERE name = 'tr_loc')) WITH ORDINALITY b(e, n)
	USING (n)), '<', 1e-6::float8, 'the same loss at every epoch');
SELECT is((SELECT config->'n_users' || config->'n_items' || config->'n_interactions' FROM recsys.models WHERE name = 'tr_dist'),
	(SELECT config->'n_users' || config->'n_items' || config->'n_interactions' FROM recsys.models WHERE name = 'tr_loc'),
	'the same counts in the config');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM recsys.item_vectors WHERE model = 'tr_dist'$$,
	(SELECT count(*) FROM recsys.item_vectors WHERE model = 'tr_loc')::text), 3::bigint, 'item vectors on every node');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'recsys\_train\_%'$$, '0'),
	3::bigint, 'no work schema left on any node');
SELECT is(count(*), 5::bigint, 'integer columns distributed by item')
FROM recsys.train_embeddings('tr_dist_i', 'train_tap.dist_by_item', 'u', 'i', 'w', dim => 6, epochs => 5,
	gramian_weight => 0.2, l2 => 0.05, options => '{"engine": "aggregate", "seed": 3}');
SELECT cmp_ok(pg_temp.vec_diff('user_vectors', 'tr_dist_i', 'tr_loc'), '<', 1e-5::float8,
	'distributed by item: user vectors equal the local training within 1e-5');
SELECT is(count(*), 2::bigint, 'engine memory still reads the rows in this backend')
FROM recsys.train_embeddings('tr_mem', 'train_tap.dist', weight_column => 'w', dim => 6, epochs => 2,
	options => '{"engine": "memory"}');
SELECT is((SELECT (config->>'engine') || ' ' || coalesce(config->>'distributed', 'local') FROM recsys.models WHERE name = 'tr_mem'),
	'memory local', 'engine memory is not distributed');
CREATE TABLE train_tap.bad (LIKE train_tap.loc);
SELECT create_distributed_table('train_tap.bad', 'user_id') \g /dev/null
INSERT INTO train_tap.bad VALUES (1, 1, 1), (2, 1, -1), (3, 2, NULL);
SELECT throws_ok($$SELECT count(*) FROM recsys.train_embeddings('tr_bad', 'train_tap.bad', weight_column => 'w',
	dim => 2, epochs => 1)$$, '22004', 'weight column "w" of train_tap.bad is NULL in 1 row(s)',
	'NULL weights are refused, counted on the workers');
DELETE FROM train_tap.bad WHERE w IS NULL;
SELECT throws_ok($$SELECT count(*) FROM recsys.train_embeddings('tr_bad', 'train_tap.bad', weight_column => 'w',
	dim => 2, epochs => 1)$$, '22000', 'weight column "w" of train_tap.bad is negative in 1 row(s)',
	'negative weights are refused');
UPDATE train_tap.bad SET w = 0;
SELECT throws_ok($$SELECT count(*) FROM recsys.train_embeddings('tr_bad', 'train_tap.bad', weight_column => 'w',
	dim => 2, epochs => 1)$$, '22000', 'interactions table train_tap.bad has no rows with a positive weight',
	'no positive weight is refused');

-- 2. the statements' shapes: per-entity solves pushed down whole, Gramians
-- combined through worker_partial_agg, vectors moved by repartitioning
CREATE TABLE train_tap.ru (u bigint, c float8, v real[]);
CREATE TABLE train_tap.eu (id bigint, n float8, lam float8);
CREATE TABLE train_tap.xu (id bigint, v real[], part float8);
CREATE TABLE train_tap.pi (i bigint, u bigint, c float8);
CREATE TABLE train_tap.yi (id bigint, v real[], part float8);
SELECT create_distributed_table(t, c) FROM (VALUES ('train_tap.ru', 'u'), ('train_tap.eu', 'id'),
	('train_tap.xu', 'id'), ('train_tap.pi', 'i'), ('train_tap.yi', 'id')) v(t, c) \g /dev/null
SELECT ok(p LIKE '%Task Count: 8%' AND p LIKE '%Query: INSERT INTO train_tap.xu_%recsys.als_solve(%GROUP BY r.u%'
	AND p NOT LIKE '%coord_combine_agg%' AND p NOT LIKE '%repartition%', 'per-user solve: INSERT .. SELECT .. GROUP BY pushed down whole')
FROM pg_temp.plan($$INSERT INTO train_tap.xu (id, v) SELECT r.u, recsys.als_solve(r.v, r.c, '{{1,0},{0,1}}'::float8[], 0.1, e.lam)
	FROM train_tap.ru r JOIN train_tap.eu e ON e.id OPERATOR(pg_catalog.=) r.u GROUP BY r.u$$) p;
SELECT ok(p LIKE '%worker_partial_agg(''recsys.gramian(real[])''::regprocedure%' AND p LIKE '%coord_combine_agg(%',
	'Gramian: worker_partial_agg, combined on the coordinator')
FROM pg_temp.plan('SELECT recsys.gramian(t.v) FROM train_tap.xu t') p;
SELECT ok(p LIKE '%INSERT/SELECT method: repartition%', 'item vectors to the pairs by user: repartitioned')
FROM pg_temp.plan($$INSERT INTO train_tap.ru (u, c, v) SELECT p.u, p.c, t.v FROM train_tap.pi p JOIN train_tap.yi t
	ON t.id OPERATOR(pg_catalog.=) p.i$$) p;

-- 3. the work ran on the workers: scalar calls counted there (aggregates are
-- never counted by track_functions): embedding_init once per item, dot once
-- per user and item per epoch (the l2 term)
SELECT is(count(*), 2::bigint, 'track_functions = all on both workers')
FROM run_command_on_workers($$ALTER SYSTEM SET track_functions = 'all'$$) WHERE success;
SELECT is(count(*), 2::bigint, 'workers reloaded their configuration')
FROM run_command_on_workers('SELECT pg_reload_conf()') WHERE success AND result = 't';
SET citus.max_cached_conns_per_worker = 0;
SELECT is(count(*), 2::bigint, 'worker statistics reset') FROM run_command_on_workers('SELECT pg_stat_reset()') WHERE success;
BEGIN;
SET LOCAL track_functions = 'all';
SELECT count(*) FROM recsys.train_embeddings('tr_count', 'train_tap.dist', weight_column => 'w', dim => 4, epochs => 3,
	options => '{"seed": 5}') \g /dev/null
SELECT is((SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions
	WHERE funcid IN ('recsys.embedding_init(bigint,integer,bigint,double precision)'::regprocedure,
		'recsys.dot(real[],real[])'::regprocedure))::bigint, 0::bigint, 'no embedding_init or dot call on the coordinator');
COMMIT;
SELECT is(pg_temp.worker_calls('recsys.embedding_init(bigint,integer,bigint,double precision)',
	(SELECT (config->>'n_items')::bigint FROM recsys.models WHERE name = 'tr_count')),
	(SELECT (config->>'n_items')::bigint FROM recsys.models WHERE name = 'tr_count'),
	'one embedding_init call per item on the workers');
SELECT is(pg_temp.worker_calls('recsys.dot(real[],real[])',
	(SELECT 3 * ((config->>'n_items')::bigint + (config->>'n_users')::bigint) FROM recsys.models WHERE name = 'tr_count')),
	(SELECT 3 * ((config->>'n_items')::bigint + (config->>'n_users')::bigint) FROM recsys.models WHERE name = 'tr_count'),
	'one dot call per user and item per epoch on the workers');
SELECT is(count(*), 2::bigint, 'track_functions reset on the workers')
FROM run_command_on_workers('ALTER SYSTEM RESET track_functions') WHERE success;
SELECT is(count(*), 2::bigint, 'workers reloaded their configuration')
FROM run_command_on_workers('SELECT pg_reload_conf()') WHERE success AND result = 't';
RESET citus.max_cached_conns_per_worker;

-- 4. a cancelled training leaves nothing on any node
-- (a top-level statement: the cancel aborts the whole transaction, as a user's would)
\set ON_ERROR_STOP 0
SET statement_timeout = '1500ms';
SELECT count(*) FROM recsys.train_embeddings('tr_cancel', 'train_tap.dist', weight_column => 'w',
	dim => 4, epochs => 100000) \g /dev/null
\set ON_ERROR_STOP 1
RESET statement_timeout;
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '57014', 'statement_timeout cancelled a distributed training');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'recsys\_train\_%'$$, '0'),
	3::bigint, 'after the cancel: no work schema on any node');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'recsys\_train\_%'$$, '0'),
	3::bigint, 'after the cancel: no distributed work table in any node''s metadata');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM recsys.models WHERE name = 'tr_cancel'$$, '0'),
	3::bigint, 'after the cancel: no new version on any node');

-- two distributed trainings in one transaction, rolled back: nothing remains
BEGIN;
SELECT count(*) FROM recsys.train_embeddings('tr_tx1', 'train_tap.dist', weight_column => 'w', dim => 3, epochs => 1) \g /dev/null
SELECT count(*) FROM recsys.train_embeddings('tr_tx2', 'train_tap.dist', weight_column => 'w', dim => 3, epochs => 1) \g /dev/null
SELECT is((SELECT count(DISTINCT model) FROM recsys.item_vectors WHERE model IN ('tr_tx1', 'tr_tx2')), 2::bigint,
	'two distributed trainings in one transaction');
ROLLBACK;
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM recsys.model_names WHERE name IN ('tr_tx1', 'tr_tx2')$$, '0')
	+ pg_temp.nodes_saying($$SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'recsys\_train\_%'$$, '0'),
	6::bigint, 'after ROLLBACK: no model and no work schema on any node');

-- 5. a role without superuser trains on Citus (it needs CREATE on the
-- database for the work schema)
CREATE ROLE train_alice LOGIN;
GRANT USAGE ON SCHEMA recsys, train_tap TO train_alice;
GRANT SELECT, INSERT, UPDATE, DELETE ON recsys.model_names, recsys.models, recsys.user_vectors, recsys.item_vectors,
	recsys.model_aliases, recsys.model_events
	TO train_alice;
GRANT SELECT ON train_tap.dist TO train_alice;
SELECT format('GRANT CREATE ON DATABASE %I TO train_alice', current_database()) \gset q_
:q_format;
SELECT is(pg_temp.nodes_saying(format('SELECT has_database_privilege(%L, %L, %L)', 'train_alice', current_database(), 'CREATE'), 't'),
	3::bigint, 'CREATE on the database granted on every node');
SET ROLE train_alice;
SELECT is(count(*), 5::bigint, 'a role without superuser trains on the workers')
FROM recsys.train_embeddings('tr_alice', 'train_tap.dist', weight_column => 'w', dim => 6, epochs => 5,
	gramian_weight => 0.2, l2 => 0.05, options => '{"seed": 3}');
RESET ROLE;
SELECT cmp_ok(pg_temp.vec_diff('user_vectors', 'tr_alice', 'tr_loc'), '<', 1e-5::float8,
	'its vectors equal the local training within 1e-5');
SELECT is(pg_temp.nodes_saying($$SELECT owner::text FROM recsys.model_names WHERE name = 'tr_alice'$$, 'train_alice'),
	3::bigint, 'owned by it on every node');

SELECT recsys.drop_model(m) FROM unnest(ARRAY['tr_loc', 'tr_dist', 'tr_dist_i', 'tr_mem', 'tr_count', 'tr_alice']) m \g /dev/null
DROP SCHEMA train_tap CASCADE;
REVOKE ALL ON recsys.model_names, recsys.models, recsys.user_vectors, recsys.item_vectors,
	recsys.model_aliases, recsys.model_events FROM train_alice;
REVOKE ALL ON SCHEMA recsys FROM train_alice;
SELECT format('REVOKE CREATE ON DATABASE %I FROM train_alice', current_database()) \gset q_
:q_format;
DROP ROLE train_alice;
SELECT * FROM finish();
