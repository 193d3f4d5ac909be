-- Report of the embeddings benchmark (after bench.sql)
\pset footer off
\echo '== data'
SELECT (SELECT count(*) FROM bench_interactions) AS interactions,
	(SELECT count(DISTINCT user_id) FROM bench_interactions) AS users,
	(SELECT count(DISTINCT item_id) FROM bench_interactions) AS items,
	(SELECT count(*) FROM bench_train) AS train, (SELECT sum(cardinality(items)) FROM bench_test) AS test;
\echo '== per epoch: seconds (this epoch), cumulative seconds, loss, Recall@20, NDCG@20'
SELECT method, epoch, round(seconds::numeric, 3) AS seconds, round(cumulative::numeric, 2) AS cumulative,
	round(setup::numeric, 2) AS setup_s, round(loss::numeric, 1) AS loss,
	round(recall::numeric, 4) AS recall_20, round(ndcg::numeric, 4) AS ndcg_20
FROM bench_results ORDER BY method = 'popularity' DESC, method, epoch;
\echo '== als: seconds per epoch on all interactions'
SELECT interactions, epochs, round(seconds_per_epoch::numeric, 3) AS seconds_per_epoch,
	round(fastest::numeric, 3) AS fastest FROM bench_speed;
\echo '== mean seconds per epoch'
SELECT method, round(avg(seconds)::numeric, 3) AS seconds_per_epoch, round(avg(setup)::numeric, 2) AS setup_seconds
FROM bench_results WHERE method <> 'popularity' GROUP BY method ORDER BY method;
\echo '== sogram vs sampled at equal epochs (ratio of Recall@20 and NDCG@20)'
SELECT a.epoch, round(a.recall::numeric, 4) AS sogram_recall, round(b.recall::numeric, 4) AS sampled_recall,
	round((a.recall / b.recall)::numeric, 3) AS recall_ratio, round((a.ndcg / b.ndcg)::numeric, 3) AS ndcg_ratio
FROM bench_results a JOIN bench_results b ON b.epoch = a.epoch AND b.method = 'sampled'
WHERE a.method = 'sogram' ORDER BY a.epoch;
\echo '== sogram vs sampled at equal time (sampled: its last epoch finished within sogram''s cumulative time)'
SELECT a.epoch AS sogram_epoch, round(a.cumulative::numeric, 2) AS seconds, b.epoch AS sampled_epoch,
	round(a.recall::numeric, 4) AS sogram_recall, round(b.recall::numeric, 4) AS sampled_recall,
	round((a.recall / b.recall)::numeric, 3) AS recall_ratio, round((a.ndcg / b.ndcg)::numeric, 3) AS ndcg_ratio
FROM bench_results a
CROSS JOIN LATERAL (SELECT * FROM bench_results b WHERE b.method = 'sampled' AND b.cumulative <= a.cumulative
	ORDER BY b.epoch DESC LIMIT 1) b
WHERE a.method = 'sogram' ORDER BY a.epoch;
\echo '== best Recall@20 of each method over popularity'
SELECT r.method, round(max(r.recall)::numeric, 4) AS best_recall,
	round((max(r.recall) / (SELECT recall FROM bench_results WHERE method = 'popularity'))::numeric, 2) AS over_popularity
FROM bench_results r WHERE r.method <> 'popularity' GROUP BY r.method ORDER BY r.method;
