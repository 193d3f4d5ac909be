-- pgTAP: recommendation quality.  EASE against numpy (B, loss, top k of
-- stored and new users), evaluate against the documented LEFT JOIN recipe
-- (1e-12) and against textbook metrics computed in python, and
-- tune_embeddings (deterministic for a seed, nothing left behind but the
-- winner, cancellable).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
BEGIN;
SELECT plan(26);

\ir ref/out/quality.sql

-- 1. EASE equals numpy's closed form
CREATE TEMP TABLE q_train AS SELECT * FROM ref_q_rows;
SELECT * INTO TEMP q_log FROM recsys.train_embeddings('q_ease', 'q_train', weight_column => 'weight',
	method => 'ease', options => jsonb_build_object('l2', (SELECT l2 FROM ref_q_const)));
SELECT cmp_ok((SELECT max(abs(x - y)) / (SELECT max(abs(v)) FROM ref_q_b, unnest(b) v)
		FROM recsys.item_embeddings('q_ease') e JOIN ref_q_b r ON r.item_id = e.id,
		unnest(e.embedding::float8[], r.b) AS u(x, y)),
	'<', 1e-5::float8, 'B (the item vectors of an ease model) equals numpy''s I - P diag(1/diag P) to 1e-5');
SELECT is((SELECT count(*) FROM recsys.item_embeddings('q_ease')), (SELECT count(*) FROM ref_q_b),
	'one row of B per item');
SELECT cmp_ok((SELECT greatest(abs(l.observed_loss / r.observed - 1), abs(l.l2_loss / r.l2 - 1))
		FROM q_log l, ref_q_loss r), '<', 1e-9::float8,
	'the loss terms |X - XB|^2 and l2 |B|^2 equal numpy''s direct ones');
SELECT is((SELECT config->>'method' || ' ' || (config->>'l2') FROM recsys.models WHERE name = 'q_ease'),
	'ease 3', 'config records the method and lambda');
SELECT ok((SELECT bool_and(cardinality(u.embedding) = cardinality(v.seen)) FROM recsys.user_embeddings('q_ease') u
		JOIN recsys.user_vectors v ON v.model = 'q_ease' AND v.id = u.id),
	'users are stored as their seen items with one confidence each');
SELECT is((SELECT array_agg(u.embedding[3] ORDER BY u.id) FILTER (WHERE u.id = 7) FROM recsys.user_embeddings('q_ease') u),
	(SELECT array_agg(s.w::real) FROM (SELECT sum(weight) AS w FROM ref_q_rows WHERE user_id = 7
		GROUP BY item_id ORDER BY item_id OFFSET 2 LIMIT 1) s),
	'a repeated pair''s confidences add up');

-- 2. serving: recommend, recommend_all, recommend_for_items score x_u B
CREATE TEMP TABLE q_all AS SELECT * FROM recsys.recommend_all('q_ease', (SELECT k FROM ref_q_const));
SELECT is((SELECT count(*) FROM q_all a FULL JOIN ref_q_top t USING (user_id, rank)
		WHERE a.item_id IS DISTINCT FROM t.item_id), 0::bigint, 'recommend_all gives numpy''s top k of x_u B');
SELECT cmp_ok((SELECT max(abs(a.score - t.score)) FROM q_all a JOIN ref_q_top t USING (user_id, rank)),
	'<', 1e-5::float8, 'scores equal numpy''s to 1e-5');
SELECT is((SELECT count(*) FROM ref_q_top t WHERE t.user_id = 3 AND (t.item_id, t.rank) NOT IN
		(SELECT r.item_id, r.n FROM recsys.recommend('q_ease', 3, 5) WITH ORDINALITY r(item_id, score, n))), 0::bigint,
	'recommend gives the same list for one user');
SELECT is((SELECT count(*) FROM ref_q_new n WHERE n.top IS DISTINCT FROM
		(SELECT array_agg(r.item_id) FROM recsys.recommend_for_items('q_ease', n.items, 5, n.weights) r)), 0::bigint,
	'recommend_for_items of new users equals numpy (weights add, unknown items skipped)');
CREATE TEMP TABLE q_again AS SELECT * FROM recsys.recommend_all_for_items('q_ease', 'ref_q_rows', weight_column => 'weight', k => 5);
SELECT is((SELECT count(*) FROM q_again a FULL JOIN q_all b USING (user_id, rank)
		WHERE a.item_id IS DISTINCT FROM b.item_id OR a.score IS DISTINCT FROM b.score), 0::bigint,
	'recommend_all_for_items of the training rows equals recommend_all exactly');

-- 3. evaluate: the recipe, and textbook metrics
SELECT * INTO TEMP q_eval FROM recsys.evaluate('q_ease', 'ref_q_test', 5, 'uid', 'iid');
SELECT cmp_ok((SELECT greatest(abs(e.recall_at_k - r.recall), abs(e.ndcg_at_k - r.ndcg),
		abs(e.precision_at_k - r.prec), abs(e.map_at_k - r.map), abs(e.coverage - r.coverage))
		FROM q_eval e, ref_q_eval r), '<', 1e-12::float8,
	'evaluate of ease equals Recall, NDCG, Precision, MAP and coverage computed in python');
SELECT results_eq($$SELECT users, unknown_users FROM q_eval$$, $$SELECT users, unknown FROM ref_q_eval$$,
	'every test user counts, the unknown one too');
CREATE TEMP TABLE q_test AS SELECT uid AS user_id, array_agg(iid::bigint) AS items FROM ref_q_test GROUP BY uid;
SELECT count(*) FROM recsys.train_embeddings('q_als', 'q_train', dim => 4, epochs => 3) \g /dev/null
SELECT cmp_ok((SELECT greatest(abs(e.recall_at_k - r.recall), abs(e.ndcg_at_k - r.ndcg))
		FROM recsys.evaluate('q_als', 'ref_q_test', 5, 'uid', 'iid') e,
		(SELECT avg(recsys.recall_at_k(r.rec, t.items, 5)) AS recall, avg(recsys.ndcg_at_k(r.rec, t.items, 5)) AS ndcg
		 FROM q_test t LEFT JOIN (SELECT user_id, array_agg(item_id ORDER BY rank) AS rec
			FROM recsys.recommend_all('q_als', 5) GROUP BY user_id) r USING (user_id)) r),
	'<', 1e-12::float8, 'evaluate of als equals the documented LEFT JOIN recipe to 1e-12');
SELECT cmp_ok((SELECT e.recall_at_k FROM recsys.evaluate('q_als', 'ref_q_test', 5, 'uid', 'iid') e), '<',
	(SELECT avg(recsys.recall_at_k(r.rec, t.items, 5)) FROM q_test t JOIN (SELECT user_id, array_agg(item_id ORDER BY rank) AS rec
		FROM recsys.recommend_all('q_als', 5) GROUP BY user_id) r USING (user_id)),
	'an inner join (unknown users left out) would report more: evaluate does not');
SELECT is((SELECT (metrics->'evaluation'->>'recall_at_k')::float8 FROM recsys.models WHERE name = 'q_als'), NULL,
	'nothing is stored unless asked');
SELECT recall_at_k FROM recsys.evaluate('q_als', 'ref_q_test', 5, 'uid', 'iid', store => true) \g /dev/null
SELECT is((SELECT (metrics->'evaluation'->>'recall_at_k')::float8 FROM recsys.models WHERE name = 'q_als'),
	(SELECT recall_at_k FROM recsys.evaluate('q_als', 'ref_q_test', 5, 'uid', 'iid')),
	'store => true writes the numbers into metrics.evaluation');

-- 4. tune_embeddings: deterministic for a seed, only the winner stays
CREATE TEMP TABLE q_val AS SELECT uid AS user_id, iid AS item_id FROM ref_q_test WHERE uid <> 999;
CREATE TEMP TABLE q_tune1 AS SELECT * FROM recsys.tune_embeddings('q_tuned', 'q_train', 'q_val', k => 5, trials => 5,
	space => '{"method": ["als", "ease", "sogram"], "dim": [2, 4], "epochs": 4, "ease_l2": [1, 3, 10]}', seed => 3);
CREATE TEMP TABLE q_tune2 AS SELECT * FROM recsys.tune_embeddings('q_tuned', 'q_train', 'q_val', k => 5, trials => 5,
	space => '{"method": ["als", "ease", "sogram"], "dim": [2, 4], "epochs": 4, "ease_l2": [1, 3, 10]}', seed => 3);
SELECT results_eq($$SELECT trial, params, rung, epochs, recall_at_k, ndcg_at_k, kept FROM q_tune1$$,
	$$SELECT trial, params, rung, epochs, recall_at_k, ndcg_at_k, kept FROM q_tune2$$,
	'the same seed gives the same trials, metrics and winner');
SELECT results_eq($$SELECT rung, count(*)::int, count(*) FILTER (WHERE kept)::int FROM q_tune1 GROUP BY rung ORDER BY rung$$,
	$$VALUES (1, 5, 1), (2, 1, 1)$$, 'successive halving: 5 trials, the best 5/3 = 1 goes on');
SELECT is((SELECT array_agg(DISTINCT params->>'method' ORDER BY params->>'method') FROM q_tune1),
	'{als,ease,sogram}', 'the Latin hypercube draws every listed method in 5 trials');
SELECT results_eq($$SELECT version FROM recsys.models WHERE name = 'q_tuned' ORDER BY version$$,
	$$VALUES (1), (2)$$, 'each tuning stores one version (the trials are rolled back)');
SELECT is((SELECT (m.metrics->'tuning'->'params') = t.params FROM recsys.models m, q_tune1 t
		WHERE m.name = 'q_tuned' AND m.version = 1 AND t.rung = 2), true,
	'the stored version records the winner''s parameters');
SELECT is((SELECT count(DISTINCT version) FROM recsys.user_vectors WHERE model = 'q_tuned'), 2::bigint,
	'no vectors of the trials are left');
-- every trial of a tuning is evaluated under the same (rolled back, reused) version number, so
-- each trial's cached model replaces the last: the backend's cache holds one entry per stored
-- version, not one per trial (an ease trial's entry is its n x n B)
SELECT results_eq($$SELECT version FROM recsys.model_cache() WHERE name = 'q_tuned' ORDER BY version$$,
	$$VALUES (1), (2)$$, 'the model cache keeps one entry per stored version after two tunings of 5 trials');

-- 5. statement_timeout stops ease (a 2,500-item inverse) and tune_embeddings; nothing is left
-- (query_canceled is caught by name: WHEN OTHERS and throws_ok do not catch it)
CREATE TEMP TABLE q_big AS SELECT u AS user_id, (u * 37 + j * 101) % 2500 AS item_id
	FROM generate_series(1, 3000) u, generate_series(1, 30) j;
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'none';
EXCEPTION WHEN query_canceled THEN
	RETURN '57014';
END
$$;
CREATE TEMP TABLE q_cancels (what text, sqlstate text);
SET statement_timeout = '300ms';
INSERT INTO q_cancels SELECT 'ease', pg_temp.try($$SELECT count(*) FROM recsys.train_embeddings('q_big', 'q_big',
	method => 'ease', options => '{"l2": 10}')$$);
INSERT INTO q_cancels SELECT 'tune', pg_temp.try($$SELECT count(*) FROM recsys.tune_embeddings('q_big', 'q_big', 'q_big',
	trials => 50, space => '{"epochs": 1000}')$$);
RESET statement_timeout;
SELECT results_eq($$SELECT what, sqlstate FROM q_cancels$$, $$VALUES ('ease', '57014'), ('tune', '57014')$$,
	'statement_timeout cancels an ease training and a tuning');
SELECT is((SELECT count(*) FROM recsys.models WHERE name = 'q_big'), 0::bigint, 'a cancelled tuning leaves no version');

ROLLBACK;
