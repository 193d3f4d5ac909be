-- Demo part 2: train embeddings on a generated implicit-feedback table, recommend, evaluate
\pset footer off
SET client_min_messages = notice;

\echo '== a generated interactions table: 2000 users, 600 items in 6 taste groups'
\echo '   (each user mostly picks popular items of their own group; 8 most recent picks held out)'
CREATE TABLE demo_picks AS
	SELECT u AS user_id,
		CASE WHEN random() < 0.8
			THEN (u % 6) + 6 * floor(100 * power(random(), 2))::int   -- own group, popular first
			ELSE floor(600 * random())::int END + 1 AS item_id,
		p AS ts
	FROM (SELECT setseed(0.42)) s, generate_series(1, 2000) u, generate_series(1, 40) p;
CREATE TABLE demo_train AS SELECT user_id, item_id FROM demo_picks WHERE ts <= 32;
CREATE TABLE demo_test AS
	SELECT user_id::bigint AS user_id, array_agg(DISTINCT item_id::bigint) AS items
	FROM demo_picks p WHERE ts > 32
		AND NOT EXISTS (SELECT 1 FROM demo_train t WHERE t.user_id = p.user_id AND t.item_id = p.item_id)
	GROUP BY user_id;
SELECT count(*) AS training_rows, count(DISTINCT (user_id, item_id)) AS distinct_pairs FROM demo_train;

\echo '== exact-Gramian ALS (the default method), dim 16, 6 epochs: one row (and NOTICE) per epoch'
SELECT epoch, round(loss::numeric, 1) AS loss, round(observed_loss::numeric, 1) AS observed,
	round(gramian_loss::numeric, 1) AS gramian, round(l2_loss::numeric, 1) AS l2
FROM recsys.train_embeddings('demo_als', 'demo_train', dim => 16, epochs => 6);

\echo '== SOGram (SGD with a moving-average Gramian estimate), 6 epochs'
SET client_min_messages = warning;
SELECT epoch, round(loss::numeric, 1) AS loss FROM recsys.train_embeddings('demo_sogram', 'demo_train',
	dim => 16, epochs => 6, method => 'sogram');
\echo '== and the sampled-negatives baseline, 6 epochs'
SELECT epoch, round(loss::numeric, 1) AS loss FROM recsys.train_embeddings('demo_sampled', 'demo_train',
	dim => 16, epochs => 6, method => 'sampled');

\echo '== the stored models (recsys.models) and their vectors'
SELECT name, version, config->>'method' AS method, config->'n_users' AS users, config->'n_items' AS items,
	round((metrics->>'train_seconds')::numeric, 2) AS seconds
FROM recsys.models WHERE name LIKE 'demo%' ORDER BY name;
SELECT id, embedding[1:4] AS first_dims FROM recsys.item_embeddings('demo_als') LIMIT 3;

\echo '== top 5 for users 1, 2 and 3 (user u likes group u % 6; item i is in group (i - 1) % 6)'
SELECT u AS user_id, r.item_id, (r.item_id - 1) % 6 AS item_group, round(r.score::numeric, 3) AS score
FROM generate_series(1, 3) u, LATERAL recsys.recommend('demo_als', u, 5) r;

\echo '== Recall@10 and NDCG@10 on the held-out picks, against popularity'
CREATE TABLE demo_pop AS SELECT item_id::bigint AS item_id, count(*) AS c FROM demo_train GROUP BY 1;
SELECT m AS model,
	round(avg(recsys.recall_at_k(r.rec, t.items, 10))::numeric, 3) AS recall_10,
	round(avg(recsys.ndcg_at_k(r.rec, t.items, 10))::numeric, 3) AS ndcg_10
FROM unnest(ARRAY['demo_als', 'demo_sogram', 'demo_sampled']) m, demo_test t,
	LATERAL (SELECT array_agg(item_id ORDER BY score DESC, item_id) AS rec FROM recsys.recommend(m, t.user_id, 10)) r
GROUP BY m
UNION ALL
SELECT 'popularity', round(avg(recsys.recall_at_k(r.rec, t.items, 10))::numeric, 3),
	round(avg(recsys.ndcg_at_k(r.rec, t.items, 10))::numeric, 3)
FROM demo_test t,
	LATERAL (SELECT array_agg(p.item_id ORDER BY p.c DESC, p.item_id) AS rec
		FROM (SELECT item_id, c FROM demo_pop d WHERE NOT EXISTS
			(SELECT 1 FROM demo_train x WHERE x.user_id = t.user_id AND x.item_id = d.item_id)
			ORDER BY c DESC, item_id LIMIT 10) p) r
ORDER BY recall_10 DESC;

\echo '== the same evaluation at once for every user with recommend_all (unknown users count as misses)'
SELECT round(avg(recsys.recall_at_k(r.rec, t.items, 10))::numeric, 3) AS recall_10
FROM demo_test t LEFT JOIN (SELECT user_id, array_agg(item_id ORDER BY rank) AS rec
	FROM recsys.recommend_all('demo_als', 10) GROUP BY user_id) r USING (user_id);

\echo '== a user the model has never seen: fold in three items of group 3, recommend'
SELECT item_id, round(score::numeric, 3) AS score, (item_id - 1) % 6 AS taste_group
FROM recsys.recommend_for_items('demo_als', '{4,10,16}', 5);
