-- Solvers and a tuning grid of als (driven by tune.sh; psql variable epochs).
-- Expects tune_interactions(user_id, item_id, ts): each user's most recent
-- 20% held out; every run is scored by Recall@20 and NDCG@20 over every test
-- user (recommend_all, unknown users count as misses) and timed (wall clock
-- of train_embeddings, and the sum of its epochs' seconds).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE TABLE tune_ranked AS
	SELECT user_id, item_id, row_number() OVER (PARTITION BY user_id ORDER BY ts DESC) AS rn,
		count(*) OVER (PARTITION BY user_id) AS n
	FROM tune_interactions;
CREATE TABLE tune_train AS SELECT user_id, item_id FROM tune_ranked WHERE rn > ceil(0.2 * n);
CREATE TABLE tune_test AS
	SELECT user_id::bigint AS user_id, array_agg(item_id::bigint) AS items
	FROM tune_ranked WHERE rn <= ceil(0.2 * n) GROUP BY user_id;
DROP TABLE tune_ranked;
ANALYZE tune_train;
ANALYZE tune_test;
CREATE TABLE tune_results (grid text, solver text, dim int, gramian_weight float8, l2 float8, nu float8,
	seconds float8, epoch_seconds float8, recall float8, ndcg float8);

CREATE PROCEDURE tune_run(grid text, solver text, dim int, gw float8, l2 float8, nu float8, epochs int)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	t1 timestamptz;
	es float8;
BEGIN
	SELECT sum(seconds) INTO es FROM recsys.train_embeddings('tune', 'tune_train', dim => dim, epochs => epochs,
		gramian_weight => gw, l2 => l2,
		options => jsonb_build_object('engine', 'memory', 'solver', solver, 'nu', nu));
	t1 := clock_timestamp();
	INSERT INTO tune_results
	SELECT grid, solver, dim, gw, l2, nu, extract(epoch FROM t1 - t0), es,
		avg(recsys.recall_at_k(r.rec, t.items, 20)), avg(recsys.ndcg_at_k(r.rec, t.items, 20))
	FROM tune_test t LEFT JOIN (SELECT user_id, array_agg(item_id ORDER BY rank) AS rec
		FROM recsys.recommend_all('tune', 20) GROUP BY user_id) r USING (user_id);
	PERFORM recsys.drop_model('tune');
	COMMIT;
END
$$;

-- 1. solvers at the defaults (gramian_weight 0.1, l2 0.01, nu 1)
CALL tune_run('solver', 'cholesky', 64, 0.1, 0.01, 1, :epochs);
CALL tune_run('solver', 'cg', 64, 0.1, 0.01, 1, :epochs);
CALL tune_run('solver', 'cholesky', 128, 0.1, 0.01, 1, :epochs);
CALL tune_run('solver', 'cg', 128, 0.1, 0.01, 1, :epochs);
-- 2. one knob at a time around the defaults (cg, dim 64)
CALL tune_run('dim', 'cg', 32, 0.1, 0.01, 1, :epochs);
CALL tune_run('dim', 'cg', 256, 0.1, 0.01, 1, :epochs);
SELECT format('CALL tune_run(%L, %L, 64, %s, 0.01, 1, %s)', 'gramian_weight', 'cg', w, :epochs)
FROM unnest('{0.01,0.03,0.3,1}'::float8[]) w \gexec
-- l2 and nu together: lambda = l2 (n + w |I|)^nu, so each nu has its own scale
-- of l2; 500^nu is about (n + w |I|) of a typical entity here
SELECT format('CALL tune_run(%L, %L, 64, 0.1, %s, %s, %s)', 'l2_nu', 'cg', round((0.01 * 500 ^ (1 - nu) * f)::numeric, 5), nu, :epochs)
FROM unnest('{0,0.5,1}'::float8[]) nu, unnest('{0.1,0.3,1,3,10}'::float8[]) f
WHERE NOT (nu = 1 AND f = 1) \gexec

\pset footer off
SELECT grid, solver, dim, gramian_weight, l2, nu, round(seconds::numeric, 1) AS seconds,
	round(epoch_seconds::numeric, 1) AS epoch_s, round(recall::numeric, 4) AS recall_20,
	round(ndcg::numeric, 4) AS ndcg_20
FROM tune_results ORDER BY grid, solver, dim, gramian_weight, nu, l2;
