-- Demo part 4: uncertainty-weighted multi-task losses, MC-dropout uncertainty,
-- and the evaluation aggregates next to them
\pset footer off
\set QUIET on
SELECT setseed(0.42) \gset

\echo '== a predictions table: per impression, watch time (regression, noise sd 1 + 2|x|) and click (classification)'
CREATE TABLE demo_predictions AS
	SELECT i AS impression_id, x,
	       3 + 2 * x + (1 + 2 * abs(x)) * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS watch_minutes,
	       3 + 2 * x AS predicted_minutes,
	       2 * ln(1 + 2 * abs(x)) AS predicted_log_var,
	       random() < 1 / (1 + exp(-x)) AS clicked,
	       1 / (1 + exp(-x)) AS p_click
	FROM (SELECT i, 2 * random() - 1 AS x FROM generate_series(1, 5000) i) s;
SELECT impression_id, round(watch_minutes::numeric, 2) AS watch_minutes,
       round(predicted_minutes::numeric, 2) AS predicted, clicked, round(p_click::numeric, 3) AS p_click
FROM demo_predictions ORDER BY impression_id LIMIT 3;

\echo '== per-row task losses: squared error and cross-entropy'
CREATE VIEW demo_task_losses AS
	SELECT impression_id,
	       ARRAY[(watch_minutes - predicted_minutes) ^ 2,
	             CASE WHEN clicked THEN -ln(p_click) ELSE -ln(1 - p_click) END] AS losses
	FROM demo_predictions;

\echo '== uncertainty_weights: the optimal log variances s_k, task weights exp(-s_k), sigma = exp(s_k / 2)'
SELECT task, round(s::numeric, 4) AS log_var, round(exp(-s)::numeric, 4) AS task_weight,
       round(exp(s / 2)::numeric, 4) AS sigma
FROM unnest((SELECT recsys.uncertainty_weights(losses, '{regression,classification}') FROM demo_task_losses),
            '{watch_minutes,clicked}'::text[]) u(s, task);

\echo '== the weighted total, by the aggregate and by uncertainty_loss at those weights'
SELECT round(recsys.uncertainty_weighted_loss(losses, '{regression,classification}')::numeric, 6) AS aggregate,
       round(recsys.uncertainty_loss(ARRAY[avg(losses[1]), avg(losses[2])],
                                     recsys.uncertainty_weights(losses, '{regression,classification}'),
                                     '{regression,classification}')::numeric, 6) AS uncertainty_loss
FROM demo_task_losses;

\echo '== evaluation of the click task: exact AUC and log loss'
SELECT round(recsys.auc(p_click, clicked)::numeric, 4) AS auc,
       round(recsys.log_loss(p_click, clicked)::numeric, 4) AS log_loss
FROM demo_predictions;

\echo '== heteroscedastic regression: avg(gaussian_nll) with unit, one shared and a per-row predicted log variance'
SELECT round(avg(recsys.gaussian_nll(watch_minutes, predicted_minutes, 0))::numeric, 4) AS unit_variance,
       round(avg(recsys.gaussian_nll(watch_minutes, predicted_minutes,
                 (SELECT s[1] FROM (SELECT recsys.uncertainty_weights(losses) s FROM demo_task_losses) w)))::numeric, 4) AS shared_variance,
       round(avg(recsys.gaussian_nll(watch_minutes, predicted_minutes, predicted_log_var))::numeric, 4) AS per_row_variance
FROM demo_predictions;

\echo '== Kendall & Gal classification loss with noisy logits (deterministic for a seed)'
SELECT log_var, round(recsys.sampled_softmax_nll('{2.0,0.5,-1.0}', ARRAY[log_var], 0, 1000, 7)::numeric, 4) AS nll
FROM unnest('{-20,0,2}'::float8[]) log_var;

\echo '== MC dropout: 32 stochastic passes per item (mean and variance head)'
CREATE TABLE demo_mc AS
	SELECT item_id, t,
	       item_id * 0.1 + (item_id % 3) * 0.05 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS mean,
	       0.01 * item_id AS variance
	FROM generate_series(1, 5) item_id, generate_series(1, 32) t;
SELECT item_id, round(v[1]::numeric, 5) AS epistemic, round(v[2]::numeric, 5) AS aleatoric,
       round(v[3]::numeric, 5) AS total
FROM (SELECT item_id, recsys.predictive_variance(mean, variance) AS v FROM demo_mc GROUP BY item_id) s
ORDER BY item_id;
