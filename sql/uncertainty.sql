-- recsys uncertainty-weighted losses and predictive variance: edge cases and
-- every error with its SQLSTATE
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

-- uncertainty_loss: 0.5 exp(-s) L + 0.5 s (regression), exp(-s) L + 0.5 s (classification)
SELECT recsys.uncertainty_loss('{1,2}', '{0,0}');
SELECT recsys.uncertainty_loss('{1,2}', '{0,0}', '{regression,classification}');
SELECT recsys.uncertainty_loss('{1,2}', '{0,0}', '{regression,binary}');
SELECT recsys.uncertainty_loss('{4}', ARRAY[ln(4)]) = 0.5 + 0.5 * ln(4) AS at_optimum;
SELECT recsys.uncertainty_loss('{1,2}', '{0,0}', NULL);
SELECT recsys.uncertainty_loss(NULL, '{0,0}') IS NULL AS null_losses,
       recsys.uncertainty_loss('{1,2}', NULL) IS NULL AS null_log_vars;
SELECT recsys.uncertainty_loss('{1.5,2}'::real[], '{0,1}'::real[]);
-- a zero loss costs 0.5 s even where exp(-s) overflows
SELECT recsys.uncertainty_loss('{0}', '{-800}');
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{1,2}', '{0}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{1,NULL}', '{0,0}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{1,NaN}', '{0,0}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{1,2}', '{0,Infinity}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{1,-2}', '{0,0}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{}', '{}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{{1,2}}', '{{0,0}}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{1,2}', '{0,0}', '{regression,ranking}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{1,2}', '{0,0}', '{regression}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{1,2}', '{0,0}', '{regression,NULL}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{1,2}', '{0,0}', '{{regression,regression}}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{1,2}', '{0,0}', '{Regression,regression}')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_loss('{1}', '{-800}')$$);

-- gaussian_nll: 0.5 exp(-s) (y - mean)^2 + 0.5 s
SELECT recsys.gaussian_nll(3, 1, 0), recsys.gaussian_nll(3, 1, ln(4)), recsys.gaussian_nll(1, 1, -2);
SELECT recsys.gaussian_nll(NULL, 1, 0) IS NULL AS strict;
SELECT pg_temp.err($$SELECT recsys.gaussian_nll('NaN', 1, 0)$$);
SELECT pg_temp.err($$SELECT recsys.gaussian_nll(1, 'Infinity', 0)$$);
SELECT pg_temp.err($$SELECT recsys.gaussian_nll(1, 0, '-Infinity')$$);
SELECT pg_temp.err($$SELECT recsys.gaussian_nll(1e200, 0, 0)$$);

-- sampled_softmax_nll: labels count from 0; one class costs nothing
SELECT recsys.sampled_softmax_nll('{5}', '{3}', 0);
SELECT round(recsys.sampled_softmax_nll('{1,2,3}', '{-60}', 0)::numeric, 12) AS no_noise,
       round((ln(exp(1) + exp(2) + exp(3)) - 1)::numeric, 12) AS cross_entropy;
SELECT round(recsys.sampled_softmax_nll('{1000,0,-1000}', '{-60}', 2)::numeric, 9) AS stable;
SELECT recsys.sampled_softmax_nll('{0.5,-1,2}', '{0.3,0.1,-0.2}', 1, 50, -7)
     = recsys.sampled_softmax_nll('{0.5,-1,2}', '{0.3,0.1,-0.2}', 1, 50, -7) AS deterministic;
SELECT recsys.sampled_softmax_nll('{1,2}', NULL, 0) IS NULL AS strict;
SELECT pg_temp.err($$SELECT recsys.sampled_softmax_nll('{1,2,3}', '{0,0}', 0)$$);
SELECT pg_temp.err($$SELECT recsys.sampled_softmax_nll('{1,2,3}', '{0}', 3)$$);
SELECT pg_temp.err($$SELECT recsys.sampled_softmax_nll('{1,2,3}', '{0}', -1)$$);
SELECT pg_temp.err($$SELECT recsys.sampled_softmax_nll('{1,2,3}', '{0}', 0, 0)$$);
SELECT pg_temp.err($$SELECT recsys.sampled_softmax_nll('{1,2,3}', '{0}', 0, 1000001)$$);
SELECT pg_temp.err($$SELECT recsys.sampled_softmax_nll('{1,NaN,3}', '{0}', 0)$$);
SELECT pg_temp.err($$SELECT recsys.sampled_softmax_nll('{1,NULL,3}', '{0}', 0)$$);
SELECT pg_temp.err($$SELECT recsys.sampled_softmax_nll('{1,2,3}', '{1500}', 0)$$);
SELECT pg_temp.err($$SELECT recsys.sampled_softmax_nll('{1.7e308,0}', '{1413}', 0)$$);
SELECT pg_temp.err($$SELECT recsys.sampled_softmax_nll('{1.7e308,-1.7e308}', '{-50}', 1)$$);

-- uncertainty_weights / uncertainty_weighted_loss: s = ln(mean L), ln(2 mean L), clamped to [-20, 20]
CREATE TABLE task_losses (id int, losses float8[]);
INSERT INTO task_losses VALUES (1, '{1,4,0,1e12}'), (2, '{3,2,0,1e12}'), (3, NULL), (4, '{2,3,0,1e12}');
SELECT recsys.uncertainty_weights(losses) FROM task_losses;
SELECT recsys.uncertainty_weights(losses, '{regression,classification,regression,classification}') FROM task_losses;
SELECT recsys.uncertainty_weighted_loss(losses, '{regression,classification,regression,classification}') FROM task_losses;
SELECT recsys.uncertainty_loss(ARRAY[2, 3, 0, 1e12], recsys.uncertainty_weights(losses, '{regression,classification,regression,classification}'),
	'{regression,classification,regression,classification}') FROM task_losses;
SELECT round(exp(-s)::numeric, 6) AS task_weight
FROM unnest((SELECT recsys.uncertainty_weights(losses[1:2]) FROM task_losses)) s;
SELECT recsys.uncertainty_weights(losses) IS NULL AS no_rows, recsys.uncertainty_weighted_loss(losses) IS NULL AS no_rows
FROM task_losses WHERE false;
SELECT recsys.uncertainty_weights(losses) IS NULL AS all_null FROM task_losses WHERE id = 3;
SELECT id, recsys.uncertainty_weights(ARRAY[id::float8]) FROM task_losses GROUP BY id ORDER BY id;
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights(ARRAY[1, 2]::float8[] || CASE WHEN i = 3 THEN ARRAY[3::float8] ELSE '{}' END) FROM generate_series(1, 4) i$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights('{1,2}', CASE WHEN i = 3 THEN '{regression,binary}'::text[] ELSE '{regression,regression}' END) FROM generate_series(1, 4) i$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights(ARRAY[1, -i]) FROM generate_series(0, 2) i$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights('{1,NaN}') FROM generate_series(1, 2)$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights('{1,2}', '{regression}') FROM generate_series(1, 2)$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights(ARRAY[1e308, 1]) FROM generate_series(1, 2)$$);

-- predictive_variance: {var_pop(means), avg(variances), sum}
CREATE TABLE mc (item int, t int, mean float8, variance float8);
INSERT INTO mc VALUES (1, 1, 0.2, 0.01), (1, 2, 0.4, 0.03), (1, 3, 0.3, 0.02), (1, 4, NULL, 0.5),
	(2, 1, 5, 0), (3, 1, 1e9 + 1, 1), (3, 2, 1e9 + 3, 1), (3, 3, 1e9 + 2, 1);
SELECT item, recsys.predictive_variance(mean, variance) FROM mc GROUP BY item ORDER BY item;
SELECT recsys.predictive_variance(mean, variance) IS NULL AS no_rows FROM mc WHERE false;
SELECT recsys.predictive_variance(mean::real, variance::real) FROM mc WHERE item = 2;
SELECT pg_temp.err($$SELECT recsys.predictive_variance(1, -0.5)$$);
SELECT pg_temp.err($$SELECT recsys.predictive_variance('NaN', 0.5)$$);
SELECT pg_temp.err($$SELECT recsys.predictive_variance(1, 'Infinity')$$);
SELECT pg_temp.err($$SELECT recsys.predictive_variance(x, 0) FROM (VALUES (1e300), (-1e300)) v(x)$$);

-- aggregate states are checked wherever they come from
CREATE TABLE unc_states AS SELECT
	recsys.uncertainty_weights_accum(recsys.uncertainty_weights_accum(NULL, '{1,2}', '{regression,classification}'),
		'{3,4}', '{regression,classification}') AS tl,
	recsys.predictive_variance_accum(recsys.predictive_variance_accum(NULL, 1, 0.5), 2, 0.5) AS pv;
SELECT recsys.uncertainty_weights_final(tl), recsys.predictive_variance_final(pv) FROM unc_states;
SELECT octet_length(tl) AS tl_bytes, octet_length(pv) AS pv_bytes FROM unc_states;
-- a direct call copies its input instead of updating it
SELECT recsys.uncertainty_weights_final(recsys.uncertainty_weights_accum(tl, '{10,10}', '{regression,classification}')) AS plus_one_row,
       recsys.uncertainty_weights_final(tl) AS unchanged FROM unc_states;
SELECT recsys.predictive_variance_final(recsys.predictive_variance_combine(pv, pv)) AS combined,
       recsys.predictive_variance_final(pv) AS unchanged FROM unc_states;
SELECT recsys.uncertainty_weights_final(recsys.uncertainty_weights_combine(tl, NULL)),
       recsys.uncertainty_weights_final(recsys.uncertainty_weights_combine(NULL, tl)) FROM unc_states;
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights_final('\x00')$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights_final(pv) FROM unc_states$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights_final(substring(tl from 1 for octet_length(tl) - 1)) FROM unc_states$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights_final(set_byte(tl, 4, 7)) FROM unc_states$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights_final(set_byte(tl, 8, 3)) FROM unc_states$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights_final(set_byte(set_byte(tl, 35, 127), 34, 248)) FROM unc_states$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights_final(set_byte(tl, octet_length(tl) - 1, 9)) FROM unc_states$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights_combine(tl, recsys.uncertainty_weights_accum(NULL, '{1,2}')) FROM unc_states$$);
SELECT pg_temp.err($$SELECT recsys.uncertainty_weights_accum(tl, '{1,2,3}') FROM unc_states$$);
SELECT pg_temp.err($$SELECT recsys.predictive_variance_final(tl) FROM unc_states$$);
SELECT pg_temp.err($$SELECT recsys.predictive_variance_final(set_byte(pv, 35, 128 | get_byte(pv, 35))) FROM unc_states$$);
SELECT pg_temp.err($$SELECT recsys.predictive_variance_combine(pv, set_byte(pv, 19, 128)) FROM unc_states$$);
SELECT pg_temp.err($$SELECT recsys.predictive_variance_accum(substring(pv from 1 for 20), 1, 1) FROM unc_states$$);

DROP TABLE task_losses, mc, unc_states;
