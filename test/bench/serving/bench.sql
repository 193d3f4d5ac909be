-- Serving benchmark (driven by run.sh; psql variables: dir, users, items,
-- dim, per_user, k, dump).  Loads the generated model as 'serving_big',
-- times recommend_all over every user, fold_in and recommend_for_items.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE TABLE srv_results (what text, n bigint, seconds double precision, per_unit_ms double precision);

-- the generated vectors, loaded into the store
CREATE TABLE srv_u (id bigint, embedding real[]);
CREATE TABLE srv_i (id bigint, embedding real[]);
\set ucsv :dir '/serving_users.csv'
\set icsv :dir '/serving_items.csv'
COPY srv_u FROM :'ucsv' CSV;
COPY srv_i FROM :'icsv' CSV;
INSERT INTO recsys.model_names (name) VALUES ('serving_big');
INSERT INTO recsys.models (name, version, kind, config)
	VALUES ('serving_big', 1, 'embeddings', jsonb_build_object('method', 'als', 'dim', :dim,
		'gramian_weight', 0.1, 'l2', 0.01, 'options', jsonb_build_object('nu', 1), 'n_items', :items));
INSERT INTO recsys.item_vectors SELECT 'serving_big', 1, id, embedding FROM srv_i;
INSERT INTO recsys.user_vectors
	SELECT 'serving_big', 1, u.id, u.embedding,
		ARRAY(SELECT (u.id * 7919 + j * 104729) % :items + 1 FROM generate_series(0, :per_user - 1) j ORDER BY 1)
	FROM srv_u u;
-- a 10,000-item model for recommend_for_items (the first 10,000 items)
INSERT INTO recsys.model_names (name) VALUES ('serving_10k');
INSERT INTO recsys.models (name, version, kind, config)
	VALUES ('serving_10k', 1, 'embeddings', jsonb_build_object('method', 'als', 'dim', :dim,
		'gramian_weight', 0.1, 'l2', 0.01, 'options', jsonb_build_object('nu', 1), 'n_items', 10000));
INSERT INTO recsys.item_vectors SELECT 'serving_10k', 1, id, embedding FROM srv_i WHERE id <= 10000;
DROP TABLE srv_u, srv_i;
VACUUM ANALYZE recsys.user_vectors;
VACUUM ANALYZE recsys.item_vectors;

-- fold-in histories: 100 items per user, 2,000 users
CREATE TABLE srv_hist AS
	SELECT u AS id, ARRAY(SELECT (u * 7919 + j * 104729) % 10000 + 1 FROM generate_series(0, 99) j)::bigint[] AS items
	FROM generate_series(1, 2000) u;

CREATE PROCEDURE srv_time(what text, q text, n bigint) LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	s double precision;
BEGIN
	EXECUTE q;
	s := extract(epoch FROM clock_timestamp() - t0);
	INSERT INTO srv_results VALUES (what, n, s, 1000 * s / n);
END
$$;

-- the first statement of a session loads the model (item matrix, Gramian)
CALL srv_time('load serving_big (first recommend)', $$SELECT count(*) FROM recsys.recommend('serving_big', 1, 20)$$, 1);
CALL srv_time('load serving_10k (first fold_in)', $$SELECT recsys.fold_in('serving_10k', '{1}')$$, 1);
CALL srv_time('recommend_all, every user, k = ' || :k,
	format('SELECT count(*) FROM recsys.recommend_all(%L, %s)', 'serving_big', :k), :users);
CALL srv_time('recommend per user (1,000 users), k = ' || :k,
	format('SELECT count(*) FROM generate_series(1, 1000) u, LATERAL recsys.recommend(%L, u, %s) r', 'serving_big', :k), 1000);
CALL srv_time('fold_in, 100 items, dim ' || :dim || ', 27k-item model',
	$$SELECT count(recsys.fold_in('serving_big', items)) FROM srv_hist$$, 2000);
CALL srv_time('fold_in, 100 items, dim ' || :dim || ', 10k-item model',
	$$SELECT count(recsys.fold_in('serving_10k', items)) FROM srv_hist$$, 2000);
CALL srv_time('recommend_for_items, 100 items, 10k-item model, k = 20',
	$$SELECT count(*) FROM srv_hist h, LATERAL recsys.recommend_for_items('serving_10k', h.items, 20) r$$, 2000);
CALL srv_time('recommend_for_items, 100 items, 27k-item model, k = 20',
	$$SELECT count(*) FROM srv_hist h, LATERAL recsys.recommend_for_items('serving_big', h.items, 20) r$$, 2000);
CREATE TABLE srv_hist_rows AS SELECT id AS user_id, unnest(items) AS item_id FROM srv_hist;
CALL srv_time('recommend_all_for_items, 2,000 users x 100 items, 10k-item model, k = 20',
	$$SELECT count(*) FROM recsys.recommend_all_for_items('serving_10k', 'srv_hist_rows', k => 20)$$, 2000);

-- the first users' top k, for the exactness check against numpy
\set dumpcsv :dir '/serving_pg_top.csv'
COPY (SELECT user_id, item_id, rank FROM recsys.recommend_all('serving_big', :k,
	users => ARRAY(SELECT generate_series(1, :dump)::bigint))) TO :'dumpcsv' CSV;
