-- Recommendation quality: EASE training and serving edge cases,
-- evaluate / tune_embeddings arguments, precision_at_k and map_at_k;
-- every error with its SQLSTATE
SET extra_float_digits = 0;

-- Run a statement; show 'ok' or the SQLSTATE, message, detail and hint of its error
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	detail text;
	hint text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RETURN SQLSTATE || ': ' || SQLERRM || coalesce(nullif(' (' || detail || ')', ' ()'), '')
		|| coalesce(nullif(' [' || hint || ']', ' []'), '');
END $$;

-- precision_at_k and map_at_k by hand: hits at positions 1 and 3 of 4, 3 relevant
SELECT recsys.precision_at_k('{1,9,2,8}', '{1,2,3}', 4) AS p4, recsys.map_at_k('{1,9,2,8}', '{1,2,3}', 4) AS ap4;
-- (1/1 + 2/3) / min(4, 3) = 0.5556; k = 2: (1/1) / 2
SELECT recsys.precision_at_k('{1,9,2,8}', '{1,2,3}', 2) AS p2, recsys.map_at_k('{1,9,2,8}', '{1,2,3}', 2) AS ap2;
-- a short list: precision divides by k; a repeat is a hit once; NULL list = empty; empty relevant = NULL
SELECT recsys.precision_at_k('{1}', '{1,2}', 10) AS short, recsys.map_at_k('{1,1,2}', '{1,2}', 3) AS repeat,
	recsys.precision_at_k(NULL, '{1}', 3) AS null_list, recsys.map_at_k('{1}', '{}', 3) AS no_relevant;
SELECT pg_temp.err($$SELECT recsys.map_at_k('{1}', '{1}', 0)$$);
SELECT pg_temp.err($$SELECT recsys.precision_at_k('{1}', '{1,NULL}', 1)$$);

-- EASE on 4 users x 3 items, by hand
CREATE TABLE q_tiny (user_id int, item_id int, w real);
INSERT INTO q_tiny VALUES (1, 10, 1), (1, 20, 1), (2, 20, 1), (2, 30, 1), (3, 10, 1), (3, 30, 1), (4, 10, 1), (4, 10, 1);
SET client_min_messages = warning;  -- the training NOTICEs carry timings
SELECT epoch, round(loss::numeric, 6) AS loss, round(observed_loss::numeric, 6) AS observed,
	gramian_loss, round(l2_loss::numeric, 6) AS l2 FROM recsys.train_embeddings('q_tiny_ease', 'q_tiny', method => 'ease',
	options => '{"l2": 1}');
RESET client_min_messages;
SELECT id, embedding FROM recsys.item_embeddings('q_tiny_ease');
SELECT u.id, u.embedding, v.seen FROM recsys.user_embeddings('q_tiny_ease') u JOIN recsys.user_vectors v ON v.id = u.id AND v.model = 'q_tiny_ease';
SELECT * FROM recsys.recommend('q_tiny_ease', 1, 3);
SELECT * FROM recsys.recommend('q_tiny_ease', 1, 3, exclude_seen => false);
SELECT * FROM recsys.recommend_all('q_tiny_ease', 1);
SELECT * FROM recsys.recommend_for_items('q_tiny_ease', '{10,99}', 2, '{2,1}');
SELECT config->>'method' AS method, config->'options' AS options, weights IS NULL AS no_weights
	FROM recsys.models WHERE name = 'q_tiny_ease';
SELECT pg_temp.err($$SELECT recsys.fold_in('q_tiny_ease', '{10}')$$);
-- a row of B has one value per item: recsys.max_dim (a bound on embedding dimensions) does not apply,
-- nor to the ignored dim argument (its default 64 here, above the bound)
SET recsys.max_dim = 2;
SET client_min_messages = warning;
SELECT count(*) FROM recsys.train_embeddings('q_tiny_ease2', 'q_tiny', method => 'ease', options => '{"l2": 1}');
RESET client_min_messages;
SELECT * FROM recsys.recommend_all('q_tiny_ease2', 1);
RESET recsys.max_dim;
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('q_tiny_ease', 'q_tiny', method => 'ease', l2 => 5)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('q_tiny_ease', 'q_tiny', method => 'ease', options => '{"l2": 0}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('q_tiny_ease', 'q_tiny', method => 'ease', options => '{"seed": 1}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('q_tiny_ease', 'q_tiny', method => 'easy')$$);
SELECT recsys.embedding_options('ease', '{}');
-- a catalog whose item matrix does not fit recsys.training_memory (5,000 items: 200 MB)
CREATE TABLE q_wide AS SELECT 1 AS user_id, i AS item_id FROM generate_series(1, 5000) i;
SET recsys.training_memory = '64MB';
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('wide', 'q_wide', method => 'ease')$$);
RESET recsys.training_memory;
SELECT count(*) AS versions_left FROM recsys.models WHERE name = 'wide';

-- evaluate: by hand, and its argument errors
CREATE TABLE q_test (user_id bigint, item_id smallint, note text);
INSERT INTO q_test VALUES (1, 30, 'a'), (2, 10, 'b'), (2, 99, 'c'), (7, 10, 'unknown user');
SELECT * FROM recsys.evaluate('q_tiny_ease', 'q_test', 1);
SELECT * FROM recsys.evaluate('q_tiny_ease', 'q_test', 2, exclude_seen => false);
SELECT pg_temp.err($$SELECT * FROM recsys.evaluate('q_tiny_ease', 'q_test', 0)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.evaluate('q_tiny_ease', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.evaluate('q_tiny_ease', 'q_test', user_column => 'uid')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.evaluate('q_tiny_ease', 'q_test', item_column => 'note')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.evaluate('nosuch', 'q_test')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.evaluate('q_tiny_ease', 'q_test', version => 9)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.evaluate('q_tiny_ease', 'no_table')$$);
INSERT INTO recsys.model_names (name) VALUES ('q_mmoe');
INSERT INTO recsys.models (name, version, kind, config) VALUES ('q_mmoe', 1, 'mmoe', '{}');
SELECT pg_temp.err($$SELECT * FROM recsys.evaluate('q_mmoe', 'q_test')$$);
INSERT INTO q_test VALUES (NULL, 1, 'null user');
SELECT pg_temp.err($$SELECT * FROM recsys.evaluate('q_tiny_ease', 'q_test')$$);
DELETE FROM q_test WHERE user_id IS NULL;

-- tune_embeddings: argument errors (nothing trained)
SELECT pg_temp.err($$SELECT * FROM recsys.tune_embeddings('t', 'q_tiny', 'q_test', trials => 0)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.tune_embeddings('t', 'q_tiny', 'q_test', eta => 1)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.tune_embeddings('t', 'q_tiny', 'q_test', metric => 'auc')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.tune_embeddings('t', 'q_tiny', 'q_test', space => '{"dims": [8]}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.tune_embeddings('t', 'q_tiny', 'q_test', space => '{"epochs": [1, 2]}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.tune_embeddings('t', 'q_tiny', 'q_test', space => '{"dim": []}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.tune_embeddings('t', 'q_tiny', 'q_test', space => '{"l2": {"min": 0, "max": 1, "log": true}}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.tune_embeddings('t', 'q_tiny', 'q_test', space => '{"l2": {"min": 2, "max": 1}}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.tune_embeddings('t', 'q_tiny', 'q_test', space => '[1]')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.tune_embeddings('t', 'q_tiny', 'q_test', user_column => 'note')$$);
SELECT count(*) AS names_left FROM recsys.model_names WHERE name = 't';
-- one trial: trained once at the full epochs and stored
SELECT trial, params, rung, epochs, kept FROM recsys.tune_embeddings('t', 'q_tiny', 'q_test', k => 2, trials => 1,
	space => '{"method": ["ease"], "ease_l2": [2]}');
SELECT version, config->>'method' AS method, config->>'l2' AS l2 FROM recsys.models WHERE name = 't';
