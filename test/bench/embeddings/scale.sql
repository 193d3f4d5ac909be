-- Training at scale (driven by scale.sh; psql variables: dim, epochs, agg_epochs).
-- Expects scale_interactions(user_id, item_id, ts).  Speed: seconds per epoch
-- of the memory engine (cholesky, cg) and of the aggregate engine on every
-- interaction.  Quality: the same split as bench.sql (each user's latest 20%
-- held out), Recall@20 / NDCG@20 of each solver on every 20th test user.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE TABLE scale_ranked AS
	SELECT user_id, item_id, row_number() OVER (PARTITION BY user_id ORDER BY ts DESC) AS rn,
		count(*) OVER (PARTITION BY user_id) AS n
	FROM scale_interactions;
CREATE TABLE scale_train AS SELECT user_id, item_id FROM scale_ranked WHERE rn > ceil(0.2 * n);
CREATE TABLE scale_test AS
	SELECT user_id::bigint AS user_id, array_agg(item_id::bigint) AS items
	FROM scale_ranked WHERE rn <= ceil(0.2 * n) AND user_id % 20 = 0 GROUP BY user_id;
DROP TABLE scale_ranked;
ANALYZE scale_train;
ANALYZE scale_test;

CREATE TABLE scale_results (run text, epochs int, sec_per_epoch double precision, fastest_epoch double precision,
	cpu_per_epoch double precision,
	load_seconds double precision, memory_mb double precision, final_loss double precision,
	recall double precision, ndcg double precision);

-- train one configuration, record its epoch times and (optionally) its quality
CREATE PROCEDURE scale_run(run text, source regclass, opts jsonb, epochs int, dim int, evaluate boolean)
LANGUAGE plpgsql AS $$
DECLARE
	m jsonb;
	rec double precision;
	ndcg double precision;
BEGIN
	PERFORM * FROM recsys.train_embeddings('scale_' || run, source, dim => dim, epochs => epochs, options => opts);
	SELECT mo.metrics INTO m FROM recsys.models mo WHERE mo.name = 'scale_' || run ORDER BY mo.version DESC LIMIT 1;
	IF evaluate THEN
		SELECT avg(recsys.recall_at_k(r.rec, t.items, 20)) AS recall, avg(recsys.ndcg_at_k(r.rec, t.items, 20)) AS ndcg
		INTO rec, ndcg FROM scale_test t,
			LATERAL (SELECT array_agg(x.item_id ORDER BY x.score DESC, x.item_id) AS rec
				FROM recsys.recommend('scale_' || run, t.user_id, 20) x) r;
	END IF;
	INSERT INTO scale_results
	SELECT run, epochs, avg((l->>'seconds')::float8), min((l->>'seconds')::float8), avg((l->>'cpu_seconds')::float8),
		(m->>'load_seconds')::float8,
		(m->>'memory_bytes')::float8 / 1048576, (m->'log'->-1->>'loss')::float8,
		rec, ndcg
	FROM jsonb_array_elements(m->'log') l;
	COMMIT;
END
$$;

ANALYZE scale_interactions;
CALL scale_run('cholesky', 'scale_interactions', '{"engine": "memory"}', :epochs, :dim, false);
CALL scale_run('cg', 'scale_interactions', '{"engine": "memory", "solver": "cg"}', :epochs, :dim, false);
CALL scale_run('aggregate', 'scale_interactions', '{"engine": "aggregate"}', :agg_epochs, :dim, false);
CALL scale_run('cholesky (80% split)', 'scale_train', '{"engine": "memory"}', :epochs, :dim, true);
CALL scale_run('cg (80% split)', 'scale_train', '{"engine": "memory", "solver": "cg"}', :epochs, :dim, true);

\pset footer off
-- wall seconds (mean and fastest epoch) and CPU seconds of the backend per epoch: the machine is
-- shared, so the ratios use CPU time
SELECT run, epochs, round(sec_per_epoch::numeric, 3) AS s_per_epoch, round(fastest_epoch::numeric, 3) AS fastest,
	round(cpu_per_epoch::numeric, 3) AS cpu_s_per_epoch,
	round(load_seconds::numeric, 2) AS load_s, round(memory_mb::numeric, 1) AS memory_mb,
	round(final_loss::numeric, 1) AS loss, round(recall::numeric, 4) AS recall_20, round(ndcg::numeric, 4) AS ndcg_20
FROM scale_results ORDER BY recall IS NOT NULL, sec_per_epoch;
SELECT round(((SELECT cpu_per_epoch FROM scale_results WHERE run = 'aggregate')
		/ (SELECT cpu_per_epoch FROM scale_results WHERE run = 'cg'))::numeric, 1) AS cg_vs_aggregate_cpu,
	round(((SELECT cpu_per_epoch FROM scale_results WHERE run = 'cholesky')
		/ (SELECT cpu_per_epoch FROM scale_results WHERE run = 'cg'))::numeric, 1) AS cg_vs_cholesky_cpu,
	round((100 * ((SELECT recall FROM scale_results WHERE run = 'cg (80% split)')
		/ (SELECT recall FROM scale_results WHERE run = 'cholesky (80% split)') - 1))::numeric, 2) AS cg_recall_change_pct;
