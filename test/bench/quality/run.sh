#!/usr/bin/env bash
# Recommendation quality on generated implicit data (gen.py: Zipf item
# popularity, lognormal user activity, latent topics; 20,000 users x 5,000
# items, about 500,000 interactions, a random 20 % of each user's items held
# out for test and 10 % of the rest for validation).  Reports Recall@20,
# NDCG@20 and seconds of popularity, default als, als tuned by
# tune_embeddings on the validation split (then retrained on train +
# validation with the winner's parameters), and EASE with its l2 chosen on
# the validation split the same way.  Every test user counts.
# Knobs: QB_USERS, QB_ITEMS, QB_MEAN, QB_TRIALS.  Run through with_cluster.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../out"
mkdir -p "$out"
work=$(mktemp -d /tmp/recsys-quality.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
{
	echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
	/usr/bin/python3 -c "import ctypes, glob; l = ctypes.CDLL(glob.glob('/usr/lib/x86_64-linux-gnu/openblas-serial/libopenblas*.so*')[0]); l.openblas_get_config.restype = ctypes.c_char_p; print('openblas:', l.openblas_get_config().decode())" 2>/dev/null || true
	/usr/bin/python3 "$here/gen.py" "$work" "${QB_USERS:-20000}" "${QB_ITEMS:-5000}" "${QB_MEAN:-25}" 7
} | tee "$out/quality.txt"
chmod 644 "$work"/*.csv
psql -X -q -v ON_ERROR_STOP=1 -v dir="$work" -v trials="${QB_TRIALS:-12}" <<'SQL' | tee -a "$out/quality.txt"
SET client_min_messages = warning;
SET recsys.training_memory = '2GB';
\set f_train :dir '/train.csv'
\set f_val :dir '/validation.csv'
\set f_test :dir '/test.csv'
CREATE TABLE train (user_id bigint, item_id bigint);
CREATE TABLE validation (user_id bigint, item_id bigint);
CREATE TABLE test (user_id bigint, item_id bigint);
COPY train FROM :'f_train' CSV;
COPY validation FROM :'f_val' CSV;
COPY test FROM :'f_test' CSV;
CREATE TABLE train_full AS SELECT * FROM train UNION ALL SELECT * FROM validation;
ANALYZE;
CREATE TABLE results (model text, recall_20 float8, ndcg_20 float8, seconds float8, note text);

-- popularity: the 20 most frequent training items the user has not seen
DO $$
DECLARE t0 timestamptz := clock_timestamp(); r record;
BEGIN
	-- set-based: every user x the 300 most popular items, minus the seen pairs, first 20 by rank
	WITH pop AS MATERIALIZED (SELECT item_id, row_number() OVER (ORDER BY count(*) DESC, item_id) AS rk
			FROM train_full GROUP BY item_id ORDER BY 2 LIMIT 300),
		rel AS MATERIALIZED (SELECT user_id, array_agg(item_id) AS items FROM test GROUP BY user_id),
		cand AS (SELECT u.user_id, p.item_id, p.rk FROM (SELECT DISTINCT user_id FROM train_full) u CROSS JOIN pop p
			WHERE NOT EXISTS (SELECT FROM train_full s WHERE s.user_id = u.user_id AND s.item_id = p.item_id)),
		rec AS MATERIALIZED (SELECT user_id, (array_agg(item_id ORDER BY rk))[1:20] AS rec FROM cand GROUP BY user_id)
	SELECT avg(recsys.recall_at_k(rec.rec, rel.items, 20)) AS recall, avg(recsys.ndcg_at_k(rec.rec, rel.items, 20)) AS ndcg
		INTO r FROM rel LEFT JOIN rec USING (user_id);
	INSERT INTO results VALUES ('popularity', r.recall, r.ndcg, extract(epoch FROM clock_timestamp() - t0), 'top 20 unseen');
END $$;

CREATE FUNCTION timed(name text, sql text, note text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); secs float8; r record;
BEGIN
	EXECUTE sql;
	secs := extract(epoch FROM clock_timestamp() - t0);
	SELECT * INTO r FROM recsys.evaluate(name, 'test', 20);
	INSERT INTO results VALUES (name, r.recall_at_k, r.ndcg_at_k, secs, note);
END $$;

SELECT timed('als_default', $$SELECT count(*) FROM recsys.train_embeddings('als_default', 'train_full')$$,
	'dim 64, 15 epochs, cg (3 steps), l2 0.01, gramian_weight 0.1, nu 1');

-- tuned als: tune_embeddings on (train, validation), the winner's parameters retrained on train_full
CREATE TABLE tune_als AS SELECT * FROM recsys.tune_embeddings('tune_als', 'train', 'validation', trials => :trials, seed => 1);
CREATE TABLE tune_seconds AS SELECT sum(seconds) AS s FROM tune_als;
SELECT timed('als_tuned', format($f$SELECT count(*) FROM recsys.train_embeddings('als_tuned', 'train_full',
	dim => %s, epochs => 15, l2 => %s, gramian_weight => %s,
	options => jsonb_build_object('solver', 'cg', 'nu', %s, 'seed', 1))$f$,
	p->>'dim', p->>'l2', p->>'gramian_weight', p->>'nu'),
	format('tuned %s (tuning: %s trainings, %s s)', p::text, (SELECT count(*) FROM tune_als), round((SELECT s FROM tune_seconds)::numeric, 1)))
FROM (SELECT params AS p FROM tune_als WHERE kept ORDER BY rung DESC LIMIT 1) w;

-- EASE: l2 chosen on (train, validation) by the same search, then trained on train_full
CREATE TABLE tune_ease AS SELECT * FROM recsys.tune_embeddings('tune_ease', 'train', 'validation',
	trials => 6, space => '{"method": ["ease"], "ease_l2": {"min": 10, "max": 3000, "log": true}}', seed => 1);
SELECT timed('ease', format($f$SELECT count(*) FROM recsys.train_embeddings('ease', 'train_full',
	method => 'ease', options => jsonb_build_object('l2', %s))$f$, p->>'l2'),
	format('l2 %s (tuned: %s trainings, %s s)', p->>'l2', (SELECT count(*) FROM tune_ease WHERE rung = 1),
		round((SELECT sum(seconds) FROM tune_ease)::numeric, 1)))
FROM (SELECT params AS p FROM tune_ease WHERE kept ORDER BY rung DESC LIMIT 1) w;

\echo
\echo tune_embeddings trials (als):
SELECT trial, rung, epochs, params::text, round(recall_at_k::numeric, 4) AS recall, round(ndcg_at_k::numeric, 4) AS ndcg,
	round(seconds::numeric, 1) AS seconds, kept FROM tune_als ORDER BY rung, trial;
\echo
\echo Results on test (Recall@20, NDCG@20, seconds to train):
SELECT model, round(recall_20::numeric, 4) AS recall_20, round(ndcg_20::numeric, 4) AS ndcg_20,
	round(seconds::numeric, 1) AS seconds, note FROM results;
SELECT round(((SELECT recall_20 FROM results WHERE model = 'als_tuned') /
	(SELECT recall_20 FROM results WHERE model = 'ease'))::numeric, 4) AS "tuned als / ease (Recall@20)";
SQL
