-- pgTAP on Citus: the model store as reference tables.  After a plain CREATE
-- EXTENSION on the coordinator the store is four reference tables; models
-- trained or imported on the coordinator are scored inside worker queries
-- (predict, gate_weights, predict_batch, predict_mc, recommend,
-- recommend_all, fold_in, recommend_for_items, user_embeddings) with exactly
-- the answers the same query gives over a local table on the coordinator; a new version or a drop is seen by the next
-- statement on every node; a rolled-back or cancelled import or training
-- leaves nothing on any node; ownership and privileges hold on the workers;
-- the touch trigger bumps the revision on every placement; and after
-- recsys.citus_detach_store() DROP EXTENSION leaves no store relation on any
-- node.  The suite ends by creating the extension again (converted again).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
SELECT plan(108);

DROP SCHEMA IF EXISTS store_tap CASCADE;
CREATE SCHEMA store_tap;
SET citus.shard_count = 4;

SET client_min_messages = error;
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
-- does the query run the function inside the worker (shard) query?
CREATE FUNCTION pg_temp.on_workers(q text, fn text) RETURNS boolean LANGUAGE sql AS $$
	-- a task's query names a shard of a store_tap table and calls the function
	SELECT p ~ 'Task Count: [1-9]' AND p ~ ('Query: SELECT [^\n]*' || fn || '\(')
		AND p ~ 'Query: SELECT [^\n]*store_tap\.[a-z_]+_[0-9]+'
	FROM pg_temp.plan(q) p
$$;
-- rows of the query over the distributed table that the same query over the
-- local table (%1$s) does not give, and the other way round (exact, as text)
CREATE FUNCTION pg_temp.differ(q text, dist text, loc text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE format('SELECT count(*) FROM ((SELECT r::text FROM (%1$s) r EXCEPT ALL SELECT r::text FROM (%2$s) r)'
		' UNION ALL (SELECT r::text FROM (%2$s) r EXCEPT ALL SELECT r::text FROM (%1$s) r)) d',
		format(q, dist), format(q, loc)) INTO n;
	RETURN n;
END
$$;
-- the answers of every node to a query, as text, in node order
CREATE FUNCTION pg_temp.all_nodes(q text) RETURNS text[] LANGUAGE sql AS $$
	SELECT array_agg(coalesce(result, 'NULL') ORDER BY nodeid) FROM run_command_on_all_nodes(q)
$$;
-- run a statement as a role: the first column of its first row as text, or
-- its SQLSTATE (and message for the SQLSTATEs of refusals)
CREATE FUNCTION pg_temp.as_role(r text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	res text;
BEGIN
	EXECUTE format('SET LOCAL ROLE %I', r);
	BEGIN
		EXECUTE q INTO res;
	EXCEPTION WHEN OTHERS THEN
		res := CASE WHEN SQLSTATE = '42501' AND SQLERRM NOT LIKE 'new row violates%'
			THEN SQLSTATE || ': ' || SQLERRM ELSE SQLSTATE END;
	END;
	RESET ROLE;
	RETURN res;
END
$$;
-- the number of nodes that give this answer
CREATE FUNCTION pg_temp.nodes_saying(q text, answer text) RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM run_command_on_all_nodes(q) WHERE success AND result = answer
$$;
SET client_min_messages = warning;

SELECT is((SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND isactive), 3::bigint,
	'a coordinator and two workers');

-- 1. CREATE EXTENSION on the coordinator made the store reference tables
SELECT is(array_agg(logicalrelid::text || ':' || partmethod::text || ':' || repmodel::text ORDER BY logicalrelid::text),
	'{recsys.item_vectors:n:t,recsys.model_aliases:n:t,recsys.model_events:n:t,recsys.model_names:n:t,recsys.models:n:t,recsys.user_vectors:n:t}',
	'the six store tables are reference tables')
FROM pg_dist_partition WHERE logicalrelid::text LIKE 'recsys.%';
SELECT is((SELECT count(DISTINCT p.groupid) FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)
	WHERE s.logicalrelid = 'recsys.models'::regclass), 3::bigint, 'models has a placement on each of the 3 nodes');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM pg_constraint
	WHERE connamespace = 'recsys'::regnamespace AND contype = 'f'$$, '4'), 3::bigint,
	'every node: the 2 foreign keys on its tables and on its placements');
SELECT is(pg_temp.nodes_saying($$SELECT recsys.store_relation('models') <> 'recsys.models'::regclass$$, 't'),
	3::bigint, 'every node reads its own placement of models');
SELECT is((SELECT count(*) FROM pg_depend WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'recsys')
	AND deptype = 'e' AND objid IN (SELECT recsys.store_relation(t) FROM unnest(
		ARRAY['model_names', 'models', 'user_vectors', 'item_vectors']) t)), 0::bigint,
	'no placement is a member of the extension');
SELECT lives_ok('SELECT recsys.citus_attach_store()', 'citus_attach_store again does nothing');
SELECT is((SELECT count(*) FROM run_command_on_workers('SELECT recsys.citus_attach_store()')
	WHERE NOT success AND result LIKE '%must run on the Citus coordinator%'), 2::bigint,
	'citus_attach_store on a worker: refused');

-- 2. models made on the coordinator: an embeddings model trained from a
-- local table, the tiny MMoE model of the regress tests
-- (predict(x) = relu(x1) + 2 relu(x2) + 0.5)
CREATE TABLE store_tap.plays (user_id bigint, item_id bigint);
INSERT INTO store_tap.plays SELECT u, i FROM generate_series(1, 40) u, generate_series(1, 16) i
	WHERE (u * 7 + i * 3) % 5 < 2;
SELECT is((SELECT count(*) FROM recsys.train_embeddings('st_emb', 'store_tap.plays', dim => 4, epochs => 3))::int,
	3, 'train_embeddings on the coordinator');
SELECT is(recsys.import_model('st_mmoe', decode('d8010000000000007b2267617465732e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b315d2c2022646174615f6f666673657473223a205b33322c2033365d7d2c202267617465732e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b312c20325d2c2022646174615f6f666673657473223a205b32342c2033325d7d2c2022746f776572732e302e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b315d2c2022646174615f6f666673657473223a205b34342c2034385d7d2c2022657870657274732e302e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b325d2c2022646174615f6f666673657473223a205b31362c2032345d7d2c2022746f776572732e302e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b312c20325d2c2022646174615f6f666673657473223a205b33362c2034345d7d2c2022657870657274732e302e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b322c20325d2c2022646174615f6f666673657473223a205b302c2031365d7d7d0000803f00000000000000000000803f00000000000000009a99993e333333bfcdcccc3d0000803f000000400000003f', 'hex'),
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}'),
	1, 'import_model on the coordinator');
SELECT is(pg_temp.nodes_saying($$SELECT string_agg(name || ':' || version || ':' || kind, ',' ORDER BY name)
	FROM recsys.models$$, 'st_emb:1:embeddings,st_mmoe:1:mmoe'), 3::bigint, 'both models on every node');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM recsys.user_vectors WHERE model = 'st_emb'$$,
	(SELECT count(DISTINCT user_id) FROM store_tap.plays)::text), 3::bigint, 'every node has every user vector');

-- distributed tables to score, and local copies on the coordinator
CREATE TABLE store_tap.cand_l (id bigint, x real[]);
INSERT INTO store_tap.cand_l SELECT i, ARRAY[(i % 7 - 3)::real, ((i % 5) - 2)::real / 2] FROM generate_series(1, 200) i;
CREATE TABLE store_tap.cand_d (LIKE store_tap.cand_l);
INSERT INTO store_tap.cand_d SELECT * FROM store_tap.cand_l;
SELECT create_distributed_table('store_tap.cand_d', 'id');
SELECT truncate_local_data_after_distributing_table('store_tap.cand_d');
CREATE TABLE store_tap.users_l (u bigint);
INSERT INTO store_tap.users_l SELECT generate_series(1, 45);
CREATE TABLE store_tap.users_d (LIKE store_tap.users_l);
INSERT INTO store_tap.users_d SELECT * FROM store_tap.users_l;
SELECT create_distributed_table('store_tap.users_d', 'u');
SELECT truncate_local_data_after_distributing_table('store_tap.users_d');
SELECT is((SELECT count(DISTINCT nodeport) FROM pg_dist_shard_placement
	WHERE shardid IN (SELECT shardid FROM pg_dist_shard WHERE logicalrelid = 'store_tap.users_d'::regclass)),
	2::bigint, 'the users'' shards are on both workers');

-- 3. scoring inside worker queries: the coordinator's answers, exactly
\set q_predict 'SELECT id, recsys.predict(''st_mmoe'', x) AS p FROM %s'
SELECT ok(pg_temp.on_workers(format(:'q_predict', 'store_tap.cand_d'), 'recsys.predict'),
	'predict runs inside the worker queries');
SELECT ok(NOT pg_temp.on_workers(format(:'q_predict', 'store_tap.cand_l'), 'recsys.predict'),
	'(the same check is false over the local table)');
SELECT is(pg_temp.differ(:'q_predict', 'store_tap.cand_d', 'store_tap.cand_l'), 0::bigint,
	'predict on the workers = on the coordinator');
SELECT is((SELECT count(*) FROM store_tap.cand_d
	WHERE abs((recsys.predict('st_mmoe', x))[1] - (greatest(x[1], 0) + 2 * greatest(x[2], 0) + 0.5)) > 1e-6),
	0::bigint, 'predict on the workers = relu(x1) + 2 relu(x2) + 0.5');
SELECT is((SELECT count(*) FROM store_tap.users_d WHERE recsys.resolve_model_version('st_mmoe') = 1), 45::bigint,
	'resolve_model_version inside worker queries');
\set q_gate 'SELECT id, recsys.gate_weights(''st_mmoe'', x, ''y'') AS g FROM %s'
SELECT ok(pg_temp.on_workers(format(:'q_gate', 'store_tap.cand_d'), 'recsys.gate_weights'),
	'gate_weights runs inside the worker queries');
SELECT is(pg_temp.differ(:'q_gate', 'store_tap.cand_d', 'store_tap.cand_l'), 0::bigint,
	'gate_weights on the workers = on the coordinator');
\set q_batch 'SELECT id, b.* FROM %s, LATERAL recsys.predict_batch(''st_mmoe'', ARRAY[x]) b'
SELECT ok(pg_temp.on_workers(format(:'q_batch', 'store_tap.cand_d'), 'recsys.predict_batch'),
	'predict_batch runs inside the worker queries');
SELECT is(pg_temp.differ(:'q_batch', 'store_tap.cand_d', 'store_tap.cand_l'), 0::bigint,
	'predict_batch on the workers = on the coordinator');
-- predict_top_k: partial top-k lists on the workers, merged on the coordinator
SET citus.coordinator_aggregation_strategy TO 'disabled';
\set q_topk 'SELECT recsys.predict_top_k(''st_mmoe'', x, id, 7, ''{1}'') AS t FROM %s'
SELECT ok(pg_temp.plan(format(:'q_topk', 'store_tap.cand_d')) LIKE '%worker_partial_agg(%predict_top_k%',
	'predict_top_k runs as a partial aggregate on the workers');
SELECT is(pg_temp.differ(:'q_topk', 'store_tap.cand_d', 'store_tap.cand_l'), 0::bigint,
	'predict_top_k on the workers = on the coordinator');
\set q_topk_g 'SELECT mod(id, 4) AS g, recsys.predict_top_k(''st_mmoe'', x, id, 3, ''{1}'') AS t FROM %s GROUP BY 1'
SELECT is(pg_temp.differ(:'q_topk_g', 'store_tap.cand_d', 'store_tap.cand_l'), 0::bigint,
	'predict_top_k per group on the workers = on the coordinator');
RESET citus.coordinator_aggregation_strategy;
\set q_mc 'SELECT id, m.* FROM %s, LATERAL recsys.predict_mc(''st_mmoe'', x, 4) m'
SELECT ok(pg_temp.on_workers(format(:'q_mc', 'store_tap.cand_d'), 'recsys.predict_mc'),
	'predict_mc runs inside the worker queries');
SELECT is(pg_temp.differ(:'q_mc', 'store_tap.cand_d', 'store_tap.cand_l'), 0::bigint,
	'predict_mc on the workers = on the coordinator');
\set q_rec 'SELECT u, array_agg(r.item_id ORDER BY r.score DESC, r.item_id) AS items, array_agg(r.score ORDER BY r.score DESC, r.item_id) AS scores FROM %s, LATERAL recsys.recommend(''st_emb'', u, 5) r GROUP BY u'
SELECT ok(pg_temp.on_workers(format(:'q_rec', 'store_tap.users_d'), 'recsys.recommend'),
	'recommend runs inside the worker queries');
SELECT is(pg_temp.differ(:'q_rec', 'store_tap.users_d', 'store_tap.users_l'), 0::bigint,
	'recommend on the workers = on the coordinator');
SELECT is((SELECT count(DISTINCT u) FROM store_tap.users_d, LATERAL recsys.recommend('st_emb', u, 5)), 40::bigint,
	'recommend on the workers: every stored user, no row for unknown ones');
\set q_all 'SELECT u, r.item_id, r.score, r.rank FROM %s, LATERAL recsys.recommend_all(''st_emb'', 4, ARRAY[u]) r'
SELECT ok(pg_temp.on_workers(format(:'q_all', 'store_tap.users_d'), 'recsys.recommend_all'),
	'recommend_all runs inside the worker queries');
SELECT is(pg_temp.differ(:'q_all', 'store_tap.users_d', 'store_tap.users_l'), 0::bigint,
	'recommend_all on the workers = on the coordinator');
\set q_fold 'SELECT u, recsys.fold_in(''st_emb'', ARRAY[mod(u, 16) + 1, mod(u * 3, 16) + 1]::bigint[]) AS v FROM %s'
SELECT ok(pg_temp.on_workers(format(:'q_fold', 'store_tap.users_d'), 'recsys.fold_in'),
	'fold_in runs inside the worker queries');
SELECT is(pg_temp.differ(:'q_fold', 'store_tap.users_d', 'store_tap.users_l'), 0::bigint,
	'fold_in on the workers = on the coordinator');
\set q_items 'SELECT u, r.item_id, r.score FROM %s, LATERAL recsys.recommend_for_items(''st_emb'', ARRAY[mod(u, 16) + 1]::bigint[], 3) r'
SELECT ok(pg_temp.on_workers(format(:'q_items', 'store_tap.users_d'), 'recsys.recommend_for_items'),
	'recommend_for_items runs inside the worker queries');
SELECT is(pg_temp.differ(:'q_items', 'store_tap.users_d', 'store_tap.users_l'), 0::bigint,
	'recommend_for_items on the workers = on the coordinator');
\set q_emb 'SELECT u, e.embedding FROM %s, LATERAL recsys.user_embeddings(''st_emb'') e WHERE e.id = u'
SELECT is(pg_temp.differ(:'q_emb', 'store_tap.users_d', 'store_tap.users_l'), 0::bigint,
	'user_embeddings inside worker queries = on the coordinator');
SELECT is((SELECT count(*) FROM recsys.user_embeddings('st_emb')), 40::bigint,
	'user_embeddings on the coordinator (PL/pgSQL over a reference table)');
SELECT is((SELECT count(*) FROM recsys.item_embeddings('st_emb')), 16::bigint, 'item_embeddings on the coordinator');
SELECT is((SELECT array_agg(id ORDER BY id) FROM recsys.item_embeddings('st_emb')),
	(SELECT array_agg(id ORDER BY id) FROM recsys.item_vectors WHERE model = 'st_emb'), 'item_embeddings: the stored ids');

-- the alias serving reaches every node: worker queries without a version
-- serve the promoted version, not the newest
SELECT is((SELECT count(*) FROM recsys.train_embeddings('st_alias', 'store_tap.plays', dim => 4, epochs => 2))::int, 2,
	'st_alias version 1');
SELECT is((SELECT count(*) FROM recsys.train_embeddings('st_alias', 'store_tap.plays', dim => 2, epochs => 2,
	options => '{"promote": true}'))::int, 2, 'st_alias version 2, promoted');
SELECT recsys.promote('st_alias', 1);
SELECT is(pg_temp.nodes_saying($$SELECT version FROM recsys.model_aliases WHERE model = 'st_alias' AND alias = 'serving'$$, '1'),
	3::bigint, 'every node has the alias');
SELECT is((SELECT count(*) FROM (
		(SELECT u, r.item_id FROM store_tap.users_d, LATERAL recsys.recommend('st_alias', u, 3) r
		EXCEPT SELECT u, r.item_id FROM store_tap.users_l, LATERAL recsys.recommend('st_alias', u, 3, version => 1) r)
		UNION ALL
		(SELECT u, r.item_id FROM store_tap.users_l, LATERAL recsys.recommend('st_alias', u, 3, version => 1) r
		EXCEPT SELECT u, r.item_id FROM store_tap.users_d, LATERAL recsys.recommend('st_alias', u, 3) r)) d), 0::bigint,
	'recommend on the workers serves the promoted version');
SELECT is((SELECT count(*) FROM recsys.model_events WHERE model = 'st_alias'), 4::bigint,
	'the history on the coordinator: trained, trained, promoted, promoted');
SELECT is(recsys.drop_model('st_alias'), 2, 'st_alias dropped with its alias');

-- a two-tower model: its cold-start functions read the cached model through the store
-- (this node's placement), inside worker queries as on the coordinator
CREATE TABLE store_tap.tt_users AS SELECT u AS user_id, (u % 3)::int AS grp FROM generate_series(1, 45) u;
CREATE TABLE store_tap.tt_items AS SELECT i AS item_id, 'g' || (i % 4) AS genre FROM generate_series(1, 20) i;
SELECT is((SELECT count(*) FROM recsys.train_two_tower('st_tt', 'store_tap.plays', 'store_tap.tt_users', 'store_tap.tt_items',
	'{"user": {"features": {"categorical": ["grp"]}, "hidden": [4]}, "item": {"features": {"categorical": ["genre"]}},
	  "dim": 3, "epochs": 2, "batch_size": 16}'))::int, 2, 'train_two_tower on the coordinator');
CREATE TABLE store_tap.tt_rows_l (id bigint, grp int, genre text);
INSERT INTO store_tap.tt_rows_l SELECT i, i % 5, 'g' || (i % 6) FROM generate_series(1, 60) i;
CREATE TABLE store_tap.tt_rows_d (LIKE store_tap.tt_rows_l);
INSERT INTO store_tap.tt_rows_d SELECT * FROM store_tap.tt_rows_l;
SELECT create_distributed_table('store_tap.tt_rows_d', 'id');
SELECT truncate_local_data_after_distributing_table('store_tap.tt_rows_d');
\set q_ttv 'SELECT r.id, recsys.two_tower_user_vector(''st_tt'', r) AS u, recsys.two_tower_item_vector(''st_tt'', r) AS v FROM %s r'
SELECT ok(pg_temp.on_workers(format(:'q_ttv', 'store_tap.tt_rows_d'), 'recsys.two_tower_user_vector'),
	'two_tower_user_vector runs inside the worker queries');
SELECT is(pg_temp.differ(:'q_ttv', 'store_tap.tt_rows_d', 'store_tap.tt_rows_l'), 0::bigint,
	'two_tower_user_vector and two_tower_item_vector on the workers = on the coordinator');
\set q_ttr 'SELECT r.id, f.item_id, f.score FROM %s r, LATERAL recsys.recommend_for_features(''st_tt'', r, 3) f'
SELECT ok(pg_temp.on_workers(format(:'q_ttr', 'store_tap.tt_rows_d'), 'recsys.recommend_for_features'),
	'recommend_for_features runs inside the worker queries');
SELECT is(pg_temp.differ(:'q_ttr', 'store_tap.tt_rows_d', 'store_tap.tt_rows_l'), 0::bigint,
	'recommend_for_features on the workers = on the coordinator');
SELECT is((SELECT count(*) FROM store_tap.tt_rows_d r, LATERAL recsys.recommend_for_features('st_tt', r, 3) f), 180::bigint,
	'recommend_for_features on the workers: 3 items for every row');

-- an MMoE model with a feature spec scores the rows of a distributed table inside the
-- worker queries (each worker's planner passes a shard's row as its columns)
CREATE TABLE store_tap.fr_l AS SELECT i::bigint AS id, (i % 7)::float8 AS x, 'g' || (i % 4) AS g, i % 2 = 0 AS y
	FROM generate_series(1, 60) i;
SELECT is((SELECT count(*) FROM recsys.train_mmoe('st_rows', 'store_tap.fr_l', NULL, '{y}',
	'{"kind": "mmoe", "experts": {"count": 2, "hidden": [4]}, "tasks": [{"name": "y", "type": "binary"}],
	  "features": {"numeric": ["x"], "categorical": ["g"]}}', epochs => 1))::int, 1, 'train_mmoe from rows on the coordinator');
CREATE TABLE store_tap.fr_d (LIKE store_tap.fr_l);
INSERT INTO store_tap.fr_d SELECT * FROM store_tap.fr_l;
SELECT create_distributed_table('store_tap.fr_d', 'id');
SELECT truncate_local_data_after_distributing_table('store_tap.fr_d');
\set q_rows 'SELECT r.id, recsys.predict(''st_rows'', r) AS p, recsys.predict(''st_rows'', r, ''y'') AS py FROM %s r'
SELECT ok(pg_temp.on_workers(format(:'q_rows', 'store_tap.fr_d'), 'recsys.predict(_columns|_task_columns)?'),
	'predict of a row runs inside the worker queries');
SELECT is(pg_temp.differ(:'q_rows', 'store_tap.fr_d', 'store_tap.fr_l'), 0::bigint,
	'predict of a row on the workers = on the coordinator');
SELECT is((SELECT count(*) FROM store_tap.fr_d r WHERE (recsys.predict('st_rows', r))[1] = recsys.predict('st_rows', r, 'y')), 60::bigint,
	'predict of a row on the workers: all tasks and one task agree');

-- 4. the touch trigger fires on every placement, and every node's cache sees it
SELECT pg_temp.all_nodes($$SELECT revision FROM recsys.models WHERE name = 'st_emb'$$) AS rev0 \gset
SELECT is(pg_temp.nodes_saying($$SELECT revision FROM recsys.models WHERE name = 'st_emb'$$, (:'rev0'::int[])[1]::text),
	3::bigint, 'the same revision on every node');
INSERT INTO recsys.item_vectors VALUES ('st_emb', 1, 1000, '{0.5,0.5,0.5,0.5}');
SELECT is(pg_temp.nodes_saying($$SELECT revision FROM recsys.models WHERE name = 'st_emb'$$,
	((:'rev0'::int[])[1] + 1)::text), 3::bigint, 'inserting a vector bumped the revision on every placement');
SELECT is((SELECT count(DISTINCT u) FROM store_tap.users_d, LATERAL recsys.recommend('st_emb', u, 100) r
	WHERE r.item_id = 1000), 40::bigint, 'the new item is served on the workers by the next statement');
DELETE FROM recsys.item_vectors WHERE model = 'st_emb' AND id = 1000;
SELECT is(pg_temp.nodes_saying($$SELECT revision FROM recsys.models WHERE name = 'st_emb'$$,
	((:'rev0'::int[])[1] + 2)::text), 3::bigint, 'deleting it bumped the revision on every placement again');
SELECT is((SELECT count(*) FROM store_tap.users_d, LATERAL recsys.recommend('st_emb', u, 100) r
	WHERE r.item_id = 1000), 0::bigint, 'and it is gone from the workers'' answers');
SELECT is(pg_temp.differ(:'q_rec', 'store_tap.users_d', 'store_tap.users_l'), 0::bigint,
	'recommend on the workers = on the coordinator again');
-- vectors belong to a models row on every placement (triggers, not foreign keys)
SELECT throws_ok($$INSERT INTO recsys.item_vectors VALUES ('st_emb', 9, 1001, '{0.5,0.5,0.5,0.5}')$$, '23503',
	'insert or update on table "item_vectors" refers to model "st_emb" version 9, which does not exist',
	'a vector of a version that does not exist: refused (23503)');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM recsys.item_vectors WHERE model = 'st_emb' AND version = 9$$, '0'),
	3::bigint, '... on every node');
SELECT throws_ok($$UPDATE recsys.models SET version = 9 WHERE name = 'st_emb' AND version = 1$$, '23503', NULL,
	'renumbering a version that has vectors: refused (23503)');

-- 5. a new version and a drop are seen by the next statement on every node
CREATE TEMP TABLE fold_v1 AS SELECT * FROM (SELECT u, recsys.fold_in('st_emb', ARRAY[mod(u, 16) + 1, mod(u * 3, 16) + 1]::bigint[]) AS v
	FROM store_tap.users_l) s;
SELECT is((SELECT count(*) FROM recsys.train_embeddings('st_emb', 'store_tap.plays', dim => 3, epochs => 2))::int, 2,
	'version 2 trained on the coordinator');
SELECT is((SELECT array_agg(DISTINCT array_length(recsys.fold_in('st_emb', ARRAY[mod(u, 16) + 1]::bigint[]), 1))
	FROM store_tap.users_d), '{3}'::int[], 'the next statement on the workers folds in with version 2 (dim 3)');
SELECT is(pg_temp.differ(:'q_fold', 'store_tap.users_d', 'store_tap.users_l'), 0::bigint,
	'fold_in with version 2 on the workers = on the coordinator');
SELECT is(pg_temp.differ(:'q_rec', 'store_tap.users_d', 'store_tap.users_l'), 0::bigint,
	'recommend with version 2 on the workers = on the coordinator');
SELECT is(pg_temp.nodes_saying($$SELECT max(version) FROM recsys.models WHERE name = 'st_emb'$$, '2'), 3::bigint,
	'every node has version 2');
SELECT is(recsys.drop_model('st_emb', 2), 1, 'version 2 dropped');
SELECT is((SELECT count(*) FROM (SELECT u, recsys.fold_in('st_emb', ARRAY[mod(u, 16) + 1, mod(u * 3, 16) + 1]::bigint[]) AS v
	FROM store_tap.users_d EXCEPT SELECT * FROM fold_v1) d), 0::bigint,
	'the next statement on the workers folds in with version 1 again');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM recsys.user_vectors WHERE model = 'st_emb' AND version = 2$$, '0'),
	3::bigint, 'version 2''s vectors are gone from every node');

-- 6. ownership and privileges on the workers
CREATE ROLE store_alice LOGIN;
CREATE ROLE store_bob LOGIN;
CREATE ROLE store_carol LOGIN;
GRANT USAGE ON SCHEMA recsys, store_tap TO store_alice, store_bob, store_carol;
GRANT SELECT, INSERT, UPDATE, DELETE ON recsys.model_names, recsys.models, recsys.user_vectors, recsys.item_vectors,
	recsys.model_aliases, recsys.model_events
	TO store_alice, store_bob;
GRANT SELECT ON recsys.model_names, recsys.models TO store_carol;
GRANT SELECT ON store_tap.plays, store_tap.users_d TO store_alice, store_bob, store_carol;
SELECT is(pg_temp.as_role('store_alice', $$SELECT count(*) FROM recsys.train_embeddings('st_alice', 'store_tap.plays',
	dim => 2, epochs => 1)$$), '1', 'a role without superuser trains a model on Citus');
SELECT is(pg_temp.nodes_saying($$SELECT owner::text FROM recsys.model_names WHERE name = 'st_alice'$$, 'store_alice'),
	3::bigint, 'owned by it on every node');
SELECT is(pg_temp.nodes_saying($$SELECT recsys.model_owner('st_alice')::text$$, 'store_alice'),
	3::bigint, 'every node has the name''s sequence recsys_names.st_alice, owned by it');
GRANT store_bob TO store_alice;
SELECT is(pg_temp.as_role('store_alice', $$SELECT recsys.transfer_model('st_alice', 'store_bob')::text$$), '',
	'the owner gives the name to a role it is a member of');
SELECT is(pg_temp.nodes_saying($$SELECT recsys.model_owner('st_alice')::text || ' ' || owner::text
	FROM recsys.model_names WHERE name = 'st_alice'$$, 'store_bob store_bob'), 3::bigint,
	'the sequence and the owner column moved on every node');
REVOKE store_bob FROM store_alice;
REASSIGN OWNED BY store_bob TO store_alice;
SELECT is(pg_temp.nodes_saying($$SELECT recsys.model_owner('st_alice')::text$$, 'store_alice'), 3::bigint,
	'REASSIGN OWNED moves the name back on every node');
SELECT is(pg_temp.as_role('store_alice', $$SELECT recsys.next_model_version('st_alice')$$), '2',
	'the new owner may add a version');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM recsys.user_vectors WHERE model = 'st_alice'$$, '40'), 3::bigint,
	'its vectors on every node');
\set q_owned 'SELECT count(*) FILTER (WHERE recsys.model_owned(''st_alice'')) FROM store_tap.users_d'
SELECT ok(pg_temp.on_workers(:'q_owned', 'recsys.model_owned'), 'model_owned runs inside the worker queries');
SELECT is(pg_temp.as_role('store_alice', :'q_owned'), '45', 'model_owned on the workers: true for the owner');
SELECT is(pg_temp.as_role('store_bob', :'q_owned'), '0', 'model_owned on the workers: false for another role');
SELECT is(pg_temp.as_role('store_bob', $$SELECT recsys.drop_model('st_alice')$$),
	'42501: permission denied for model "st_alice"', 'another role cannot drop it');
SELECT is(pg_temp.as_role('store_bob', $$INSERT INTO recsys.item_vectors VALUES ('st_alice', 1, 999, '{1,1}')$$),
	'42501', 'another role cannot add vectors to it (refused by the placements'' policy)');
SELECT is(pg_temp.as_role('store_bob', $$WITH d AS (DELETE FROM recsys.user_vectors WHERE model = 'st_alice' RETURNING 1)
	SELECT count(*) FROM d$$), '0', 'another role''s DELETE of its vectors deletes nothing');
SELECT is(pg_temp.as_role('store_bob', $$WITH d AS (UPDATE recsys.models SET metrics = '{"bob": true}'
	WHERE name = 'st_alice' RETURNING 1) SELECT count(*) FROM d$$), '0', 'another role''s UPDATE of it changes nothing');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM recsys.user_vectors WHERE model = 'st_alice'$$, '40'), 3::bigint,
	'every vector still on every node');
SELECT is(pg_temp.nodes_saying($$SELECT metrics ? 'bob' FROM recsys.models WHERE name = 'st_alice'$$, 'f'), 3::bigint,
	'the row unchanged on every node');
SELECT is(pg_temp.as_role('store_bob', $$SELECT count(DISTINCT u) FROM store_tap.users_d,
	LATERAL recsys.recommend('st_alice', u, 2)$$), '40', 'another role with SELECT scores the model on the workers');
SELECT is(pg_temp.as_role('store_carol', $$SELECT count(*) FROM store_tap.users_d, LATERAL recsys.recommend('st_alice', u, 2)$$),
	'42501: permission denied for table item_vectors', 'a role without SELECT on the vectors is refused on the workers');
SELECT is(pg_temp.as_role('store_alice', $$SELECT recsys.drop_model('st_alice')$$), '1', 'the owner drops it');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM recsys.user_vectors WHERE model = 'st_alice'$$, '0'), 3::bigint,
	'and its vectors are gone from every node');

-- 7. a rolled-back or cancelled import or training leaves nothing on any node
BEGIN;
SELECT count(*) FROM recsys.train_embeddings('st_tx', 'store_tap.plays', dim => 2, epochs => 1) \g /dev/null
SELECT recsys.import_model('st_tx_mmoe', recsys.export_model('st_mmoe')) \g /dev/null
ROLLBACK;
SELECT is(pg_temp.nodes_saying($$SELECT (SELECT count(*) FROM recsys.model_names WHERE name LIKE 'st_tx%')
	+ (SELECT count(*) FROM recsys.models WHERE name LIKE 'st_tx%')
	+ (SELECT count(*) FROM recsys.user_vectors WHERE model LIKE 'st_tx%')
	+ (SELECT count(*) FROM recsys.item_vectors WHERE model LIKE 'st_tx%')$$, '0'), 3::bigint,
	'rolled-back training and import: nothing on any node');
-- cancelled after the writes: an import and a training have written every
-- node's placement when statement_timeout cancels the statement (in pg_sleep,
-- evaluated last); PL/pgSQL cannot catch a cancel, so psql runs it and keeps
-- its SQLSTATE
\set ON_ERROR_STOP 0
SET statement_timeout = '3s';
SELECT recsys.import_model('st_cancel_mmoe', recsys.export_model('st_mmoe')),
	(SELECT count(*) FROM recsys.train_embeddings('st_cancel', 'store_tap.plays', dim => 2, epochs => 1)),
	pg_sleep(30);
\set ON_ERROR_STOP 1
RESET statement_timeout;
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '57014', 'an import and a training cancelled by statement_timeout');
SELECT is(pg_temp.nodes_saying($$SELECT (SELECT count(*) FROM recsys.model_names WHERE name LIKE 'st_cancel%')
	+ (SELECT count(*) FROM recsys.models WHERE name LIKE 'st_cancel%')
	+ (SELECT count(*) FROM recsys.user_vectors WHERE model LIKE 'st_cancel%')
	+ (SELECT count(*) FROM recsys.item_vectors WHERE model LIKE 'st_cancel%')$$, '0'), 3::bigint,
	'cancelled import and training: nothing on any node');
SELECT is(pg_temp.nodes_saying('SELECT count(*) FROM pg_prepared_xacts', '0'), 3::bigint,
	'no prepared transaction left on any node');

-- a drop of every version is seen by the next statement on every node
SELECT is(recsys.drop_model('st_emb'), 1, 'st_emb dropped');
SELECT throws_ok($$SELECT count(*) FROM store_tap.users_d, LATERAL recsys.recommend('st_emb', u, 2)$$, '42704',
	'model "st_emb" does not exist', 'the next statement on the workers: the model does not exist');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM recsys.user_vectors WHERE model = 'st_emb'$$, '0'), 3::bigint,
	'its vectors are gone from every node');

-- 8. detach, then DROP EXTENSION leaves no store relation on any node
SELECT array_agg(recsys.store_relation(t)::text ORDER BY t) AS placements
FROM unnest(ARRAY['model_names', 'models', 'user_vectors', 'item_vectors', 'model_aliases', 'model_events']) t \gset
SELECT is(pg_temp.nodes_saying(format($$SELECT count(to_regclass(p)) FROM unnest(%L::text[]) p$$, :'placements'), '6'),
	3::bigint, 'before: every node has the 6 placements');
SELECT lives_ok('SELECT recsys.citus_detach_store()', 'citus_detach_store');
SELECT is(pg_temp.nodes_saying(format($$SELECT count(to_regclass(p)) FROM unnest(%L::text[]) p$$, :'placements'), '0'),
	3::bigint, 'after detaching: no placement on any node');
DROP SCHEMA store_tap CASCADE;
DROP EXTENSION recsys;
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM pg_class
	WHERE relname ~ '^(model_names|models|user_vectors|item_vectors|model_aliases|model_events)(_[0-9]+)?$'$$, '0'), 3::bigint,
	'after DROP EXTENSION: no store table or placement on any node');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM pg_class WHERE relnamespace = to_regnamespace('recsys')$$, '0'),
	3::bigint, 'no relation left in schema recsys on any node');
SELECT is(pg_temp.nodes_saying($$SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::oid NOT IN (SELECT oid FROM pg_class)
	OR logicalrelid::text LIKE 'recsys.%'$$, '0'), 3::bigint, 'no Citus metadata of the store on any node');
CREATE EXTENSION recsys;
SELECT is((SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'recsys.%' AND repmodel = 't'), 6::bigint,
	'CREATE EXTENSION again: reference tables again');
DROP OWNED BY store_alice, store_bob, store_carol;
DROP ROLE store_alice, store_bob, store_carol;
SELECT * FROM finish();
