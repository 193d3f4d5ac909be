-- recsys evaluation functions and aggregates: edge cases and every error with
-- its SQLSTATE
-- 12 significant digits: libm may differ in the last bits between platforms
SET extra_float_digits = -3;

-- Run a statement; show 'ok', or its error as SQLSTATE: message with DETAIL and HINT
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	d text;
	h text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	RETURN SQLSTATE || ': ' || SQLERRM || coalesce(E'\nDETAIL:  ' || nullif(d, ''), '')
		|| coalesce(E'\nHINT:  ' || nullif(h, ''), '');
END
$$;

-- recall_at_k and ndcg_at_k
SELECT recsys.recall_at_k('{1,2,3,4}', '{2,4,9}', 2) AS recall_2,
       recsys.recall_at_k('{1,2,3,4}', '{2,4,9}', 4) AS recall_4,
       recsys.ndcg_at_k('{1,2,3,4}', '{2,4,9}', 4) AS ndcg_4;
-- a repeated recommendation counts once, repeated relevant ids once
SELECT recsys.recall_at_k('{2,2,2}', '{2,5,5}', 3), recsys.ndcg_at_k('{2,2,5}', '{2,5,5}', 3);
SELECT recsys.recall_at_k('{1,2}', '{}', 5) IS NULL AS no_relevant, recsys.ndcg_at_k('{}', '{1}', 5) AS no_recommended;
SELECT pg_temp.err($$SELECT recsys.recall_at_k('{1,2}', '{1}', 0)$$);
SELECT pg_temp.err($$SELECT recsys.ndcg_at_k('{1,NULL}', '{1}', 3)$$);
SELECT pg_temp.err($$SELECT recsys.ndcg_at_k('{1,2}', '{1}', 2000000)$$);
-- a NULL recommended list counts as empty (a miss, not a user left out of avg);
-- NULL elements are misses that keep their place
SELECT recsys.recall_at_k(NULL, '{1,2}', 5) AS null_list, recsys.ndcg_at_k(NULL, '{1}', 5) AS null_list_ndcg,
       recsys.recall_at_k('{NULL}', '{1}', 5) AS null_element,
       round(recsys.ndcg_at_k('{NULL,1}', '{1}', 5)::numeric, 6) AS hit_second;
-- no ground truth: a NULL or empty relevant set (or a NULL k) gives NULL
SELECT recsys.recall_at_k('{1}', NULL, 5) IS NULL AS null_relevant, recsys.ndcg_at_k('{1}', NULL, 5) IS NULL AS null_relevant_ndcg,
       recsys.recall_at_k('{1}', '{1}', NULL) IS NULL AS null_k;
SELECT pg_temp.err($$SELECT recsys.recall_at_k('{1}', '{1,NULL}', 3)$$);
SELECT pg_temp.err($$SELECT recsys.recall_at_k('{{1}}', '{1}', 3)$$);
-- recall's denominator is min(k, |relevant|)
SELECT round(recsys.recall_at_k('{1,2,3}', '{1,5,6,7,8}', 3)::numeric, 4) AS k3,
       recsys.recall_at_k('{1,2,3}', '{1,5,6,7,8}', 10) AS k10;
-- a repeat keeps its place and never hits twice: {5,5,1} hits at ranks 1 and 3
SELECT round(recsys.ndcg_at_k('{5,5,1}', '{1,5}', 3)::numeric, 6) AS ndcg, recsys.recall_at_k('{5,5,1}', '{1,5}', 2) AS recall_2;
-- a million ids de-duplicate by sorting (pairwise comparison would take hours)
SELECT recsys.recall_at_k(array_agg(i % 500000), array_agg(i), 1000000) AS million FROM generate_series(1, 1000000) i;

-- auc: exact, ties count one half
CREATE TABLE preds (id int, score float8, p float8, label boolean);
INSERT INTO preds VALUES
	(1, 0.9, 0.95, true), (2, 0.8, 0.7, false), (3, 0.8, 0.6, true), (4, 0.3, 0.2, false),
	(5, 0.1, 0.1, false), (6, NULL, 0.5, true), (7, 0.5, NULL, NULL), (8, -0.0, 0.0, false), (9, 0.0, 1.0, true);
-- pairs: positives {0.9, 0.8, 0.0} against negatives {0.8, 0.3, 0.1, -0.0}: 12 pairs,
-- 7 won (0.9: 4, 0.8: 3, 0.0: none), 2 tied (0.8 = 0.8, 0.0 = -0.0): 8 / 12
SELECT recsys.auc(score, label), 8 / 12.0 AS expected FROM preds;
SELECT recsys.auc(score::real, label) AS real_scores FROM preds;
SELECT recsys.auc(score, label) FILTER (WHERE id <= 3) AS three_rows FROM preds;
SELECT recsys.auc(score, label) IS NULL AS one_label FROM preds WHERE label;
SELECT recsys.auc(score, label) IS NULL AS no_rows FROM preds WHERE false;
SELECT recsys.auc(1, id % 2 = 0) AS all_tied FROM generate_series(1, 1000) id;
SELECT recsys.auc(id, id % 2 = 0) AS alternating FROM generate_series(1, 1000) id;
SELECT id, recsys.auc(score, label) OVER (ORDER BY id) AS running FROM preds ORDER BY id;
SELECT pg_temp.err($$SELECT recsys.auc('NaN', true)$$);
SELECT pg_temp.err($$SELECT recsys.auc('-Infinity', true)$$);

-- log_loss: mean cross-entropy, p clipped to [1e-15, 1 - 1e-15]
SELECT recsys.log_loss(p, label) FROM preds WHERE id <= 5;
SELECT recsys.log_loss(p, label) FROM preds;
SELECT recsys.log_loss(0.5, true) = ln(2) AS half, recsys.log_loss(1, true) AS certain_right,
       recsys.log_loss(1, false) AS certain_wrong;
SELECT recsys.log_loss(p, label) IS NULL AS no_rows FROM preds WHERE false;
SELECT pg_temp.err($$SELECT recsys.log_loss(1.5, true)$$);
SELECT pg_temp.err($$SELECT recsys.log_loss(-0.1, false)$$);
SELECT pg_temp.err($$SELECT recsys.log_loss('NaN', false)$$);

-- aggregate states are checked wherever they come from
CREATE AGGREGATE pg_temp.auc_state(float8, boolean) (SFUNC = recsys.auc_accum, STYPE = bytea);
CREATE TABLE metric_states AS SELECT
	(SELECT pg_temp.auc_state(score, label ORDER BY id) FROM preds) AS au,
	(SELECT pg_temp.auc_state(s, true ORDER BY s DESC) FROM (VALUES (0.9::float8), (0.1), (0.5)) v(s)) AS unsorted,
	recsys.log_loss_accum(recsys.log_loss_accum(NULL, 0.25, true), 0.5, false) AS ll;
SELECT octet_length(au) AS auc_bytes, octet_length(ll) AS log_loss_bytes FROM metric_states;
SELECT recsys.auc_final(au), recsys.log_loss_final(ll) FROM metric_states;
-- a direct call copies its input instead of updating it
SELECT recsys.auc_final(recsys.auc_accum(au, 2, false)) AS plus_one_row, recsys.auc_final(au) AS unchanged FROM metric_states;
SELECT recsys.auc_final(recsys.auc_combine(au, au)) AS doubled, recsys.auc_final(recsys.auc_combine(NULL, au)) AS copied,
       recsys.auc_final(recsys.auc_combine(au, NULL)) AS same FROM metric_states;
SELECT recsys.log_loss_final(recsys.log_loss_combine(ll, ll)) AS doubled, recsys.log_loss_final(ll) AS unchanged FROM metric_states;
SELECT pg_temp.err($$SELECT recsys.auc_final('\x00')$$);
SELECT pg_temp.err($$SELECT recsys.auc_final(ll) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.auc_final(substring(au from 1 for 100)) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.auc_final(set_byte(au, 4, 2)) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.auc_accum(set_byte(au, 16, 65), 1, true) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.auc_final(set_byte(au, 12, 255)) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.auc_final(set_byte(set_byte(au, 51, 127), 50, 248)) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.auc_final(set_byte(au, 52, 0)) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.auc_final(set_byte(au, 28, 9)) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.auc_final(set_byte(unsorted, 12, 3)) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.auc_combine(au, set_byte(au, 36, 0)) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.log_loss_final(au) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.log_loss_final(set_byte(ll, 19, 128)) FROM metric_states$$);
SELECT pg_temp.err($$SELECT recsys.log_loss_combine(ll, set_byte(set_byte(ll, 27, 255), 26, 240)) FROM metric_states$$);

DROP TABLE preds, metric_states;
