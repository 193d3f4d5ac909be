#!/usr/bin/env bash
# Explicit ratings as implicit feedback: what to pass as weight_column.
# Trains the same als model on the same ratings four ways (unweighted,
# rating as confidence, binarized at rating >= 4, confidence 1 + alpha r) and
# reports Recall@20 / NDCG@20 of held-out items rated 4 or more, counting
# every test user (unknown ones as misses).  Knobs: RAT_USERS, RAT_ITEMS,
# RAT_PER_USER, RAT_DIM, RAT_EPOCHS.  Run through with_cluster.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../out"
mkdir -p "$out"
work=$(mktemp -d /tmp/recsys-ratings.XXXXXX)
chmod 777 "$work"
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$here/gen.py" "$work" "${RAT_USERS:-4000}" "${RAT_ITEMS:-1500}" "${RAT_PER_USER:-60}" | tee "$out/ratings.txt"
chmod 644 "$work/ratings.csv"
dim=${RAT_DIM:-32}
epochs=${RAT_EPOCHS:-8}
psql -X -q -v ON_ERROR_STOP=1 -v csv="$work/ratings.csv" -v dim="$dim" -v epochs="$epochs" <<'SQL' | tee -a "$out/ratings.txt"
SET client_min_messages = warning;
CREATE TABLE ratings (user_id bigint, item_id bigint, rating int, t int);
COPY ratings FROM :'csv' CSV;
-- the last 20 % of each user's ratings are held out
CREATE TABLE split AS SELECT r.*, t >= (0.8 * count(*) OVER (PARTITION BY user_id))::int AS test FROM ratings r;
CREATE TABLE train AS SELECT user_id, item_id, rating FROM split WHERE NOT test;
CREATE TABLE test AS SELECT user_id, array_agg(item_id) AS items FROM split WHERE test AND rating >= 4 GROUP BY user_id;
CREATE VIEW train_liked AS SELECT user_id, item_id FROM train WHERE rating >= 4;
CREATE VIEW train_conf AS SELECT user_id, item_id, 1 + 0.5 * rating AS c FROM train;
CREATE TABLE results (scheme text, recall float8, ndcg float8);
CREATE FUNCTION evaluate(scheme text, m text) RETURNS void LANGUAGE sql AS $$
	INSERT INTO results
	SELECT scheme, avg(recsys.recall_at_k(r.rec, t.items, 20)), avg(recsys.ndcg_at_k(r.rec, t.items, 20))
	FROM test t LEFT JOIN (SELECT user_id, array_agg(item_id ORDER BY rank) AS rec
		FROM recsys.recommend_all(m, 20) GROUP BY user_id) r USING (user_id)
$$;
SELECT count(*) FROM recsys.train_embeddings('r_plain', 'train', dim => :dim, epochs => :epochs) \g /dev/null
SELECT evaluate('every rating, unweighted', 'r_plain');
SELECT count(*) FROM recsys.train_embeddings('r_weight', 'train', weight_column => 'rating', dim => :dim, epochs => :epochs) \g /dev/null
SELECT evaluate('weight_column => rating', 'r_weight');
SELECT count(*) FROM recsys.train_embeddings('r_liked', 'train_liked', dim => :dim, epochs => :epochs) \g /dev/null
SELECT evaluate('binarized: rating >= 4 only', 'r_liked');
SELECT count(*) FROM recsys.train_embeddings('r_conf', 'train_conf', weight_column => 'c', dim => :dim, epochs => :epochs) \g /dev/null
SELECT evaluate('confidence 1 + 0.5 rating', 'r_conf');
SELECT (SELECT count(*) FROM test) AS test_users, (SELECT count(*) FROM train) AS train_ratings;
SELECT scheme, round(recall::numeric, 4) AS recall_20, round(ndcg::numeric, 4) AS ndcg_20 FROM results;
SQL
