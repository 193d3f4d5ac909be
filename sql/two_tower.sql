-- recsys.train_two_tower and its serving functions: a small run, then every bad input
-- with its SQLSTATE, message, DETAIL and HINT; each refused before any work (no version
-- is taken: the next run is version 2)
SET extra_float_digits = 0;
-- the NOTICE of each epoch carries its time: not shown here
SET client_min_messages = warning;

-- run a statement, give 'ok' or its SQLSTATE, message, DETAIL and HINT
CREATE FUNCTION pg_temp.try(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	msg text;
	detail text;
	hint text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RETURN 'ERROR:  ' || SQLSTATE || ': ' || msg
		|| CASE WHEN detail <> '' THEN E'\nDETAIL:  ' || detail ELSE '' END
		|| CASE WHEN hint <> '' THEN E'\nHINT:  ' || hint ELSE '' END;
END
$$;

CREATE TABLE tw_users AS SELECT u AS user_id, (u % 3)::int AS grp, (u % 5)::float8 AS age FROM generate_series(1, 12) u;
CREATE TABLE tw_items AS SELECT i AS item_id, 'g' || (i % 3) AS genre FROM generate_series(1, 9) i;
CREATE TABLE tw_train AS SELECT u AS user_id, i AS item_id FROM generate_series(1, 12) u, generate_series(1, 8) i
	WHERE u % 3 = i % 3;
CREATE TEMP TABLE cfg AS SELECT '{"user": {"features": {"categorical": ["grp"], "numeric": ["age"]}, "hidden": [4]},
	"item": {"features": {"categorical": ["genre"]}, "hidden": [4]}, "dim": 3, "epochs": 2, "batch_size": 8}'::jsonb AS c;
CREATE FUNCTION pg_temp.run(q text) RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.try(format($f$SELECT * FROM recsys.train_two_tower(%s)$f$, q))
$$;

SELECT count(*) AS epochs FROM recsys.train_two_tower('tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c FROM cfg));
SELECT name, "default", "range" FROM recsys.two_tower_options() ORDER BY name;

-- arguments
SELECT pg_temp.run($$NULL, 'tw_train', 'tw_users', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'', 'tw_train', 'tw_users', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', NULL, 'tw_users', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', NULL, 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', NULL$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c FROM cfg), user_column => NULL$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c FROM cfg), user_column => 'nope'$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c FROM cfg), validation => 0$$);

-- configs
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', '[1]'$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"lr": 1}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"dim": 0}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"dim": 8192}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"epochs": 1.5}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"learning_rate": "fast"}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"method": "adam"}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"normalize": 1}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"patience": 2}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c - 'item' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"item": [1]}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"item": {"hidden": [4]}}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"item": {"id_dim": 2, "layers": [4]}}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"item": {"id_dim": -1}}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"item": {"id_dim": 2, "hidden": [0]}}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"item": {"id_dim": 2, "hidden": [1.5]}}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"item": {"id_dim": 2, "hidden": [1,1,1,1,1,1,1,1,1]}}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"item": {"id_dim": 2, "activation": "gelu"}}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"item": {"features": ["genre"]}}' FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"item": {"features": {"categorical": ["nope"]}}}' FROM cfg)$$);

-- column types: exact built-in types only, checked before any row is read
CREATE DOMAIN tw_int AS int;
CREATE TABLE tw_users_text AS SELECT user_id::text AS user_id, grp, age FROM tw_users;
CREATE TABLE tw_users_numeric AS SELECT user_id::numeric AS user_id, grp, age FROM tw_users;
CREATE TABLE tw_users_domain AS SELECT user_id::tw_int AS user_id, grp, age FROM tw_users;
CREATE TABLE tw_users_agetext AS SELECT user_id, grp, age::text AS age FROM tw_users;
CREATE TABLE tw_users_grpfloat AS SELECT user_id, grp::float8 AS grp, age FROM tw_users;
CREATE TABLE tw_train_text AS SELECT user_id, item_id::text AS item_id FROM tw_train;
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users_text', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users_numeric', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users_domain', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users_agetext', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users_grpfloat', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train_text', 'tw_users', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c FROM cfg), validation => 'tw_train_text'$$);

-- NULL and repeated ids, empty tables, entities without features
CREATE TABLE tw_users_nullid AS SELECT * FROM tw_users UNION ALL SELECT NULL, 1, 1.0;
CREATE TABLE tw_users_twice AS SELECT * FROM tw_users UNION ALL SELECT 3, 1, 1.0;
CREATE TABLE tw_users_part AS SELECT * FROM tw_users WHERE user_id <> 5;
CREATE TABLE tw_train_nullid AS SELECT * FROM tw_train UNION ALL SELECT NULL, 1;
CREATE TABLE tw_users_empty AS SELECT * FROM tw_users LIMIT 0;
CREATE TABLE tw_train_empty AS SELECT * FROM tw_train LIMIT 0;
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users_nullid', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users_twice', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users_part', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train_nullid', 'tw_users', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users_empty', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw', 'tw_train_empty', 'tw_users', 'tw_items', (SELECT c FROM cfg)$$);

-- memory: refused before the trainer is allocated
SET recsys.training_memory = '64kB';
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"user": {"id_dim": 512, "hidden": [2048]}}' FROM cfg)$$);
SET recsys.training_memory = '1MB';
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"user": {"id_dim": 512, "hidden": [2048]}}' FROM cfg)$$);
RESET recsys.training_memory;

-- nothing above took a version
SELECT count(*) AS epochs FROM recsys.train_two_tower('tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c FROM cfg));
SELECT version FROM recsys.models WHERE name = 'tw' ORDER BY version;

-- serving: cold-start functions
SELECT pg_temp.try($$SELECT recsys.two_tower_item_vector(NULL, i) FROM tw_items i LIMIT 1$$);
SELECT pg_temp.try($$SELECT recsys.two_tower_item_vector('nope', i) FROM tw_items i LIMIT 1$$);
SELECT pg_temp.try($$SELECT recsys.two_tower_item_vector('tw', i, 9) FROM tw_items i LIMIT 1$$);
SELECT recsys.two_tower_item_vector('tw', NULL::tw_items) IS NULL AS null_row;
SELECT pg_temp.try($$SELECT recsys.two_tower_user_vector('tw', i) FROM tw_items i LIMIT 1$$);
SELECT pg_temp.try($$SELECT recsys.two_tower_user_vector('tw', u) FROM (SELECT 1::int AS grp, 'old'::text AS age) u$$);
SELECT pg_temp.try($$SELECT recsys.two_tower_user_vector('tw', u) FROM (SELECT 1::numeric AS grp, 2.0::float8 AS age) u$$);
SELECT pg_temp.try($$SELECT * FROM recsys.recommend_for_features('tw', (SELECT u FROM (SELECT 1 AS grp, 2.0::float8 AS age) u), 0)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.recommend_for_features('tw', (SELECT u FROM (SELECT 1 AS grp, 2.0::float8 AS age) u), NULL)$$);
SELECT count(*) AS no_rows FROM recsys.recommend_for_features('tw', NULL::record, 3);
SELECT count(*) AS als FROM recsys.train_embeddings('tw_als', 'tw_train', dim => 3, epochs => 1);
SELECT pg_temp.try($$SELECT recsys.two_tower_item_vector('tw_als', i) FROM tw_items i LIMIT 1$$);

-- fold_in: a two-tower model's users come from the user tower, not from a fold-in
SELECT pg_temp.try($$SELECT recsys.fold_in('tw', ARRAY[1, 2]::bigint[])$$);
SELECT pg_temp.try($$SELECT recsys.fold_in('tw', ARRAY[999]::bigint[])$$);
SELECT pg_temp.try($$SELECT * FROM recsys.recommend_for_items('tw', ARRAY[1, 2]::bigint[], 3)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.recommend_all_for_items('tw', 'tw_train', k => 3)$$);

-- the store's lifecycle (doc/deploying.md), as train_embeddings: versions 1 and 2 above were
-- each logged 'trained' with their source relations; nothing promoted them
SELECT event, version, alias, detail - 'bytes' AS detail FROM recsys.model_events
WHERE model = 'tw' ORDER BY seq;
SELECT count(*) AS aliases FROM recsys.model_aliases WHERE model = 'tw';
-- promote: true points serving at the new version; it is the store's, not in the model's options
SELECT pg_temp.run($$'tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c || '{"promote": 1}' FROM cfg)$$);
SELECT count(*) AS epochs FROM recsys.train_two_tower('tw', 'tw_train', 'tw_users', 'tw_items',
	(SELECT c || '{"promote": true}' FROM cfg));
SELECT recsys.alias_version('tw', 'serving') AS serving;
SELECT event, version, alias FROM recsys.model_events WHERE model = 'tw' ORDER BY seq DESC LIMIT 2;
SELECT config #> '{two_tower,options}' ? 'promote' AS promote_stored FROM recsys.models
WHERE name = 'tw' AND version = 3;
-- monotonic: a dropped version's number is never given again
SELECT recsys.drop_alias('tw', 'serving');
SELECT recsys.drop_model('tw', 3) AS dropped;
SELECT count(*) AS epochs FROM recsys.train_two_tower('tw', 'tw_train', 'tw_users', 'tw_items', (SELECT c FROM cfg));
SELECT version FROM recsys.models WHERE name = 'tw' ORDER BY version;
-- a name of another kind is refused before any row is read (empty interactions would be
-- the error otherwise)
CREATE TABLE tw_impressions AS SELECT ARRAY[1, 0]::real[] AS x, (g % 2 = 0) AS clicked
FROM generate_series(1, 8) g;
SELECT count(*) AS epochs FROM recsys.train_mmoe('tw_ranker', 'tw_impressions', 'x', '{clicked}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]},
	  "tasks": [{"name": "click", "type": "binary", "tower": [2]}]}', epochs => 1);
SELECT pg_temp.run($$'tw_ranker', 'tw_train_empty', 'tw_users', 'tw_items', (SELECT c FROM cfg)$$);
SELECT pg_temp.run($$'tw_ranker', 'tw_train', 'tw_users', 'tw_items', (SELECT c FROM cfg)$$);
SELECT version, kind FROM recsys.models WHERE name = 'tw_ranker';
