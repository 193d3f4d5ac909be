-- pgTAP: recsys.train_two_tower end to end (the kernel's steps are checked against
-- PyTorch by `make check-twotower`): every method trains and lowers its objective,
-- stored vectors are what the towers give (cold rows through two_tower_*_vector),
-- serving through recommend, the same seed gives the same model, validation and
-- patience, configuration errors, the memory budget, cancellation, transactions.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
BEGIN;
SELECT plan(24);

-- largest |a - b| over two equally long vectors (NULL if lengths differ)
CREATE FUNCTION pg_temp.max_abs_diff(a real[], b real[]) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN cardinality(a) = cardinality(b)
		THEN (SELECT max(abs(x - y)) FROM unnest(a, b) u(x, y)) END
$$;

-- users in 4 groups, items in 4 genres; a user likes the items of its group's genre.
-- items 41..48 never appear in the interactions: cold items.
CREATE TABLE tt_users AS
	SELECT u AS user_id, (u % 4)::int AS grp, (u % 7)::float8 / 7 AS age FROM generate_series(1, 60) u;
CREATE TABLE tt_items AS
	SELECT i AS item_id, 'g' || (i % 4) AS genre, ARRAY['t' || (i % 3), 't' || (i % 5)] AS tags
	FROM generate_series(1, 48) i;
CREATE TABLE tt_train AS
	SELECT u AS user_id, i AS item_id FROM generate_series(1, 60) u, generate_series(1, 40) i
	WHERE u % 4 = i % 4 AND (u * 7 + i * 3) % 5 <> 0;
CREATE TABLE tt_valid AS
	SELECT u AS user_id, i AS item_id FROM generate_series(1, 60) u, generate_series(41, 48) i
	WHERE u % 4 = i % 4;

CREATE FUNCTION pg_temp.cfg(method text, extra jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object(
		'user', '{"features": {"categorical": ["grp"], "numeric": ["age"]}, "hidden": [16]}'::jsonb,
		'item', '{"features": {"categorical": ["genre"], "multi_categorical": ["tags"]}, "hidden": [16], "activation": "tanh"}'::jsonb,
		'dim', 8, 'epochs', 8, 'method', method, 'loss', 'squared', 'learning_rate', 0.02, 'batch_size', 64,
		'negatives', 16, 'k', 4) || extra
$$;

CREATE TEMP TABLE runs AS SELECT 'none'::text AS method, 0 AS epoch, 0::float8 AS loss, 0::float8 AS ndcg LIMIT 0;
INSERT INTO runs SELECT 'exact', epoch, loss, ndcg FROM recsys.train_two_tower('tt_exact', 'tt_train', 'tt_users', 'tt_items', pg_temp.cfg('exact'), 'tt_valid');
INSERT INTO runs SELECT 'sogram', epoch, loss, ndcg FROM recsys.train_two_tower('tt_sogram', 'tt_train', 'tt_users', 'tt_items', pg_temp.cfg('sogram'), 'tt_valid');
INSERT INTO runs SELECT 'sagram', epoch, loss, ndcg FROM recsys.train_two_tower('tt_sagram', 'tt_train', 'tt_users', 'tt_items', pg_temp.cfg('sagram'), 'tt_valid');
INSERT INTO runs SELECT 'sampled', epoch, loss, ndcg FROM recsys.train_two_tower('tt_sampled', 'tt_train', 'tt_users', 'tt_items', pg_temp.cfg('sampled', '{"sampling": "popularity"}'), 'tt_valid');

-- 1. every method runs every epoch, and its exact objective ends below where it started
SELECT is((SELECT count(*) FROM runs), 32::bigint, 'four methods x 8 epochs');
SELECT results_eq($$SELECT method FROM runs r WHERE epoch = 8
		AND loss < (SELECT loss FROM runs f WHERE f.method = r.method AND f.epoch = 1) ORDER BY 1$$,
	$$VALUES ('exact'), ('sagram'), ('sampled'), ('sogram')$$,
	'every method lowers the loss from epoch 1 to epoch 8');
-- cold items (never trained on) are found from their genre: NDCG@4 well above chance (~0.25)
SELECT results_eq($$SELECT method FROM runs WHERE epoch = 8 AND ndcg > 0.6 AND method <> 'sampled' ORDER BY 1$$,
	$$VALUES ('exact'), ('sagram'), ('sogram')$$,
	'Gramian methods rank held-out cold items of the right genre first (NDCG@4 > 0.6)');

-- 2. stored vectors: every row of both feature tables, as the towers give them
SELECT is((SELECT count(*) FROM recsys.item_vectors WHERE model = 'tt_sogram'), 48::bigint,
	'an item vector for every row of item_features, cold items included');
SELECT is((SELECT count(*) FROM recsys.user_vectors WHERE model = 'tt_sogram'), 60::bigint,
	'a user vector for every row of user_features');
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(recsys.two_tower_item_vector('tt_sogram', i), v.embedding))
	FROM tt_items i JOIN recsys.item_vectors v ON v.model = 'tt_sogram' AND v.id = i.item_id), '<=', 1e-6::float8,
	'two_tower_item_vector of each row gives its stored vector');
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(recsys.two_tower_user_vector('tt_sogram', u), v.embedding))
	FROM tt_users u JOIN recsys.user_vectors v ON v.model = 'tt_sogram' AND v.id = u.user_id), '<=', 1e-6::float8,
	'two_tower_user_vector of each row gives its stored vector');
SELECT is((SELECT seen FROM recsys.user_vectors WHERE model = 'tt_sogram' AND id = 1),
	(SELECT array_agg(item_id::bigint ORDER BY item_id) FROM tt_train WHERE user_id = 1),
	'a stored user''s seen items are its training items');

-- 3. serving: recommend works unchanged; a user given only by features gets items
SELECT is((SELECT count(*) FROM recsys.recommend('tt_sogram', 5, 5)), 5::bigint, 'recommend serves a two-tower model');
SELECT cmp_ok((SELECT count(*) FROM recsys.recommend('tt_sogram', 5, 10, exclude_seen => false) r JOIN tt_items i ON i.item_id = r.item_id
	WHERE i.genre = 'g1'), '>=', 8::bigint, 'recommend ranks the user''s genre first');
SELECT is((SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend_for_features('tt_sogram',
		(SELECT u FROM (SELECT 2 AS grp, 0.5::float8 AS age) u), 4)),
	(SELECT array_agg(id ORDER BY s DESC, id) FROM (SELECT id, recsys.dot(embedding,
		recsys.two_tower_user_vector('tt_sogram', (SELECT u FROM (SELECT 2 AS grp, 0.5::float8 AS age) u)))::real s
		FROM recsys.item_vectors WHERE model = 'tt_sogram' ORDER BY 2 DESC, 1 LIMIT 4) t),
	'recommend_for_features ranks the stored items by the row''s user vector');
-- a stored user given by its feature row: recommend's block scorer, so exactly recommend's items and scores
SELECT is((SELECT array_agg(r.item_id::text || ':' || r.score::text ORDER BY r.score DESC, r.item_id)
		FROM tt_users u, recsys.recommend_for_features('tt_sogram', u, 12) r WHERE u.user_id = 5),
	(SELECT array_agg(r.item_id::text || ':' || r.score::text ORDER BY r.score DESC, r.item_id)
		FROM recsys.recommend('tt_sogram', 5, 12, exclude_seen => false) r),
	'recommend_for_features of a stored user''s row = recommend without exclusions (items and scores)');
SELECT cmp_ok((SELECT count(*) FROM recsys.recommend_for_features('tt_sogram',
		(SELECT u FROM (SELECT 3 AS grp, 0.1::float8 AS age) u), 10) r JOIN tt_items i USING (item_id)
	WHERE i.genre = 'g3'), '>=', 8::bigint, 'a new user''s features alone give the items of its group (cold start)');

-- 4. the same seed gives the same model
SELECT lives_ok($$SELECT count(*) FROM recsys.train_two_tower('tt_sogram', 'tt_train', 'tt_users', 'tt_items', pg_temp.cfg('sogram'), 'tt_valid')$$,
	'a second version trains');
SELECT is((SELECT count(*) FROM recsys.item_vectors a JOIN recsys.item_vectors b ON a.id = b.id
	WHERE a.model = 'tt_sogram' AND b.model = 'tt_sogram' AND a.version = 1 AND b.version = 2
		AND a.embedding = b.embedding), 48::bigint, 'the same seed and data give the same vectors');

-- 5. patience keeps the best epoch
SELECT cmp_ok((SELECT count(*) FROM recsys.train_two_tower('tt_pat', 'tt_train', 'tt_users', 'tt_items',
	pg_temp.cfg('sogram', '{"epochs": 60, "patience": 2, "learning_rate": 0.05}'), 'tt_valid')), '<', 60::bigint,
	'patience stops before the last epoch');
SELECT ok((SELECT (metrics ->> 'best_epoch')::int BETWEEN 1 AND (metrics ->> 'epochs')::int - 2 FROM recsys.models WHERE name = 'tt_pat'),
	'the stored model is the best epoch''s');

-- 6. errors, before any work
SELECT throws_ok($$SELECT * FROM recsys.train_two_tower('e', 'tt_train', 'tt_users', 'tt_items', pg_temp.cfg('sogram', '{"lr": 1}'))$$,
	'22023', 'unknown option "lr" for train_two_tower', 'an unknown option is an error');
SELECT throws_ok($$SELECT * FROM recsys.train_two_tower('e', 'tt_train', 'tt_users', 'tt_items', pg_temp.cfg('sogram', '{"patience": 2}'))$$,
	'22023', 'two-tower config: "patience" needs a validation relation', 'patience without validation is an error');
SELECT throws_ok($$SELECT * FROM recsys.train_two_tower('e', 'tt_train', 'tt_users', (SELECT 'tt_items'::regclass WHERE false) , pg_temp.cfg('sogram'))$$,
	'22004', 'item_features must not be NULL', 'NULL feature table');
CREATE TEMP TABLE tt_items_part AS SELECT * FROM tt_items WHERE item_id <> 7;
SELECT throws_ok($$SELECT * FROM recsys.train_two_tower('e', 'tt_train', 'tt_users', 'tt_items_part', pg_temp.cfg('sogram'))$$,
	'22023', NULL, 'an item of the interactions without features is an error');
SET LOCAL recsys.training_memory = '64kB';
SELECT throws_ok($$SELECT * FROM recsys.train_two_tower('e', 'tt_train', 'tt_users', 'tt_items', pg_temp.cfg('sogram', '{"user": {"id_dim": 512, "hidden": [2048]}}'))$$,
	'54000', NULL, 'a run past recsys.training_memory is refused');
RESET recsys.training_memory;

-- 7. cancellation: statement_timeout stops the exact method (a Gramian pass per step) quickly
CREATE TABLE tt_big_users AS SELECT u AS user_id, (u % 4)::int AS grp, 0.5::float8 AS age FROM generate_series(1, 20000) u;
CREATE TABLE tt_big_train AS SELECT u AS user_id, 1 + (u % 40) AS item_id FROM generate_series(1, 20000) u;
CREATE FUNCTION pg_temp.try_train(OUT state text, OUT seconds float8) LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	PERFORM * FROM recsys.train_two_tower('tt_cancel', 'tt_big_train', 'tt_big_users', 'tt_items',
		pg_temp.cfg('exact', '{"epochs": 100000, "batch_size": 16}'));
	state := 'none';
	seconds := extract(epoch FROM clock_timestamp() - t0);
EXCEPTION WHEN query_canceled THEN
	state := '57014';
	seconds := extract(epoch FROM clock_timestamp() - t0);
END
$$;
SET statement_timeout = '300ms';
CREATE TEMP TABLE cancels AS SELECT * FROM pg_temp.try_train();
RESET statement_timeout;
SELECT is((SELECT state FROM cancels), '57014', 'statement_timeout cancels a training');
SELECT is((SELECT count(*) FROM recsys.models WHERE name = 'tt_cancel'), 0::bigint,
	'a cancelled training stores nothing');

SELECT * FROM finish();
ROLLBACK;
