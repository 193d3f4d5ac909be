-- Strong against weak generalization (driven by run.sh; psql variables: dim,
-- epochs).  Expects srv_interactions(user_id, item_id, ts) from the
-- embeddings bench generator.  Every tenth user is held out: weak
-- generalization trains on everything but the held-out users' most recent
-- 20 % and recommends for them from their trained vectors; strong
-- generalization trains without the held-out users at all, folds in 80 % of
-- each one's history (recommend_all_for_items) and tests on the same 20 %.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE TABLE srv_ranked AS
	SELECT user_id, item_id, row_number() OVER (PARTITION BY user_id ORDER BY ts DESC) AS rn,
		count(*) OVER (PARTITION BY user_id) AS n, user_id % 10 = 0 AS heldout
	FROM srv_interactions;
CREATE TABLE srv_weak_train AS SELECT user_id, item_id FROM srv_ranked WHERE NOT heldout OR rn > ceil(0.2 * n);
CREATE TABLE srv_strong_train AS SELECT user_id, item_id FROM srv_ranked WHERE NOT heldout;
CREATE TABLE srv_foldin AS SELECT user_id, item_id FROM srv_ranked WHERE heldout AND rn > ceil(0.2 * n);
CREATE TABLE srv_test AS SELECT user_id::bigint AS user_id, array_agg(item_id::bigint) AS items
	FROM srv_ranked WHERE heldout AND rn <= ceil(0.2 * n) GROUP BY user_id;
ANALYZE srv_weak_train;
ANALYZE srv_strong_train;
ANALYZE srv_foldin;

CREATE TABLE srv_gen (protocol text, users bigint, recall double precision, ndcg double precision,
	train_seconds double precision, serve_seconds double precision);
CREATE PROCEDURE srv_eval(protocol text, q text, train_seconds double precision) LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	s double precision;
BEGIN
	EXECUTE 'CREATE TEMP TABLE srv_recs AS ' || q;
	s := extract(epoch FROM clock_timestamp() - t0);
	-- a test user without recommendations counts as a miss (NULL list = empty)
	INSERT INTO srv_gen
	SELECT protocol, count(*), avg(recsys.recall_at_k(r.rec, t.items, 20)), avg(recsys.ndcg_at_k(r.rec, t.items, 20)),
		train_seconds, s
	FROM srv_test t LEFT JOIN (SELECT user_id, array_agg(item_id ORDER BY rank) AS rec FROM srv_recs GROUP BY user_id) r
		USING (user_id);
	DROP TABLE srv_recs;
END
$$;

CREATE FUNCTION srv_train(model text, tab regclass, d int, e int) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	PERFORM * FROM recsys.train_embeddings(model, tab, dim => d, epochs => e);
	RETURN extract(epoch FROM clock_timestamp() - t0);
END
$$;
CALL srv_eval('weak (trained users)',
	$$SELECT * FROM recsys.recommend_all('srv_weak', 20, users => ARRAY(SELECT user_id FROM srv_test))$$,
	srv_train('srv_weak', 'srv_weak_train', :dim, :epochs));
CALL srv_eval('strong (fold-in of 80 %)',
	$$SELECT * FROM recsys.recommend_all_for_items('srv_strong', 'srv_foldin', k => 20)$$,
	srv_train('srv_strong', 'srv_strong_train', :dim, :epochs));
