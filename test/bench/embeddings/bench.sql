-- Benchmark of recsys.train_embeddings (driven by run.sh; psql variables:
-- epochs, dim, methods).  Expects bench_interactions(user_id, item_id, ts).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- each user's most recent 20% of interactions is the test set
CREATE TABLE bench_ranked AS
	SELECT user_id, item_id, row_number() OVER (PARTITION BY user_id ORDER BY ts DESC) AS rn,
		count(*) OVER (PARTITION BY user_id) AS n
	FROM bench_interactions;
CREATE TABLE bench_train AS SELECT user_id, item_id FROM bench_ranked WHERE rn > ceil(0.2 * n);
CREATE TABLE bench_test AS
	SELECT user_id::bigint AS user_id, array_agg(item_id::bigint) AS items
	FROM bench_ranked WHERE rn <= ceil(0.2 * n) GROUP BY user_id;
DROP TABLE bench_ranked;
ANALYZE bench_train;
ANALYZE bench_test;

CREATE TABLE bench_results (method text, epoch int, seconds double precision, cumulative double precision,
	setup double precision, loss double precision, recall double precision, ndcg double precision);

-- Recall@20 and NDCG@20 of a model over the test users
CREATE FUNCTION bench_eval(model text, OUT recall double precision, OUT ndcg double precision)
LANGUAGE sql AS $$
	SELECT avg(recsys.recall_at_k(r.rec, t.items, 20)), avg(recsys.ndcg_at_k(r.rec, t.items, 20))
	FROM bench_test t,
		LATERAL (SELECT array_agg(x.item_id ORDER BY x.score DESC, x.item_id) AS rec
			FROM recsys.recommend(model, t.user_id, 20) x) r
$$;

-- popularity baseline: the 20 most frequent training items the user has not seen
CREATE TABLE bench_pop AS SELECT item_id::bigint AS item_id, count(*) AS c FROM bench_train GROUP BY 1;
CREATE INDEX ON bench_pop (c DESC, item_id);
CREATE TABLE bench_seen AS SELECT DISTINCT user_id::bigint AS user_id, item_id::bigint AS item_id FROM bench_train;
CREATE INDEX ON bench_seen (user_id, item_id);
ANALYZE bench_pop;
ANALYZE bench_seen;
INSERT INTO bench_results (method, epoch, recall, ndcg)
SELECT 'popularity', 0, avg(recsys.recall_at_k(r.rec, t.items, 20)), avg(recsys.ndcg_at_k(r.rec, t.items, 20))
FROM bench_test t,
	LATERAL (SELECT array_agg(x.item_id ORDER BY x.c DESC, x.item_id) AS rec
		FROM (SELECT p.item_id, p.c FROM bench_pop p
			WHERE NOT EXISTS (SELECT 1 FROM bench_seen s WHERE s.user_id = t.user_id AND s.item_id = p.item_id)
			ORDER BY p.c DESC, p.item_id LIMIT 20) x) r;

-- Train each method for 1..epochs epochs (a seed gives the same first e
-- epochs whatever the total, so the e-epoch model is the state after epoch e
-- of a longer run) and evaluate each.  sampled, the cheapest per epoch, runs
-- twice as many epochs so that it covers SOGram's time for the equal-time
-- comparison.
CREATE PROCEDURE bench_run(methods text[], max_epochs int, dim int)
LANGUAGE plpgsql AS $$
DECLARE
	m text;
	e int;
	ver int;
	rec record;
	log jsonb;
BEGIN
	FOREACH m IN ARRAY methods LOOP
		FOR e IN 1..(CASE WHEN m = 'sampled' THEN 2 * max_epochs ELSE max_epochs END) LOOP
			PERFORM * FROM recsys.train_embeddings('bench_' || m, 'bench_train', dim => dim,
				method => m, epochs => e);
			SELECT mo.version, mo.metrics INTO ver, log FROM recsys.models mo
				WHERE mo.name = 'bench_' || m ORDER BY mo.version DESC LIMIT 1;
			SELECT * INTO rec FROM bench_eval('bench_' || m);
			INSERT INTO bench_results
			SELECT m, e, (log->'log'->(e - 1)->>'seconds')::float8,
				(SELECT sum((l->>'seconds')::float8) FROM jsonb_array_elements(log->'log') l),
				(log->>'train_seconds')::float8
					- (SELECT sum((l->>'seconds')::float8) FROM jsonb_array_elements(log->'log') l),
				(log->'log'->(e - 1)->>'loss')::float8, rec.recall, rec.ndcg;
			PERFORM recsys.drop_model('bench_' || m, ver);
			COMMIT;
		END LOOP;
	END LOOP;
END
$$;
CALL bench_run(string_to_array(:'methods', ' '), :epochs, :dim);

-- speed of one als epoch on every interaction (train and test together), at the bench's dim
CREATE TABLE bench_speed AS
	SELECT count(*) AS epochs, avg(seconds) AS seconds_per_epoch, min(seconds) AS fastest,
		(SELECT count(*) FROM bench_interactions) AS interactions
	FROM recsys.train_embeddings('bench_speed', 'bench_interactions', dim => :dim, epochs => 3);
