-- Uncertainty-weighted multi-task losses and predictive uncertainty (doc/math.md §5)
--
-- s = log sigma^2 per task.  Regression: 0.5 exp(-s) L + 0.5 s; classification:
-- exp(-s) L + 0.5 s (Kendall, Gal & Cipolla, CVPR 2018).

CREATE FUNCTION recsys.uncertainty_loss(losses double precision[], log_vars double precision[],
		task_types text[] DEFAULT NULL) RETURNS double precision
	AS 'MODULE_PATHNAME', 'uncertainty_loss' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.uncertainty_loss(double precision[], double precision[], text[]) IS
	'Kendall''s uncertainty-weighted total: sum over tasks of 0.5 exp(-s) L + 0.5 s (regression) or exp(-s) L + 0.5 s (classification or binary); task_types NULL means all regression; NULL losses or log_vars give NULL';

CREATE FUNCTION recsys.gaussian_nll(y double precision, mean double precision, log_var double precision)
	RETURNS double precision
	AS 'MODULE_PATHNAME', 'gaussian_nll' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.gaussian_nll(double precision, double precision, double precision) IS
	'heteroscedastic regression loss 0.5 exp(-log_var) (y - mean)^2 + 0.5 log_var (Kendall & Gal 2017); avg() over rows gives the training loss';

CREATE FUNCTION recsys.sampled_softmax_nll(logits double precision[], log_vars double precision[],
		label int, samples int DEFAULT 100, seed int DEFAULT 0) RETURNS double precision
	AS 'MODULE_PATHNAME', 'sampled_softmax_nll' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.sampled_softmax_nll(double precision[], double precision[], int, int, int) IS
	'Kendall & Gal classification loss with Gaussian logit noise: -log (1/T) sum_t softmax(logits + exp(log_vars/2) eps_t)[label], label counted from 0, one log variance per class or one for all, computed as log T - logsumexp_t; deterministic for a seed (splitmix64/xoshiro256** + Box-Muller)';

-- Support functions of the multi-task aggregates.  The state is a bytea
-- (per-task compensated loss sums, row count, task types) updated in place.
CREATE FUNCTION recsys.uncertainty_weights_accum(state bytea, losses double precision[]) RETURNS bytea
	AS 'MODULE_PATHNAME', 'uncertainty_weights_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.uncertainty_weights_accum(bytea, double precision[]) IS
	'transition function of recsys.uncertainty_weights and recsys.uncertainty_weighted_loss (all tasks regression)';

CREATE FUNCTION recsys.uncertainty_weights_accum(state bytea, losses double precision[], task_types text[])
	RETURNS bytea
	AS 'MODULE_PATHNAME', 'uncertainty_weights_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.uncertainty_weights_accum(bytea, double precision[], text[]) IS
	'transition function of recsys.uncertainty_weights and recsys.uncertainty_weighted_loss';

CREATE FUNCTION recsys.uncertainty_weights_combine(state1 bytea, state2 bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'uncertainty_weights_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.uncertainty_weights_combine(bytea, bytea) IS
	'combine function of recsys.uncertainty_weights and recsys.uncertainty_weighted_loss (sum of partial states)';

CREATE FUNCTION recsys.uncertainty_weights_final(state bytea) RETURNS double precision[]
	AS 'MODULE_PATHNAME', 'uncertainty_weights_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.uncertainty_weights_final(bytea) IS
	'final function of recsys.uncertainty_weights (optimal log variances, NULL for no rows)';

CREATE FUNCTION recsys.uncertainty_weighted_loss_final(state bytea) RETURNS double precision
	AS 'MODULE_PATHNAME', 'uncertainty_weighted_loss_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.uncertainty_weighted_loss_final(bytea) IS
	'final function of recsys.uncertainty_weighted_loss (total loss at the optimal log variances, NULL for no rows)';

CREATE AGGREGATE recsys.uncertainty_weights(losses double precision[]) (
	SFUNC = recsys.uncertainty_weights_accum, STYPE = bytea,
	COMBINEFUNC = recsys.uncertainty_weights_combine, FINALFUNC = recsys.uncertainty_weights_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.uncertainty_weights(double precision[]) IS
	'optimal log variances s_k = ln(mean L_k) of regression tasks, clamped to [-20, 20]; task weights are exp(-s_k); NULL rows skipped';

CREATE AGGREGATE recsys.uncertainty_weights(losses double precision[], task_types text[]) (
	SFUNC = recsys.uncertainty_weights_accum, STYPE = bytea,
	COMBINEFUNC = recsys.uncertainty_weights_combine, FINALFUNC = recsys.uncertainty_weights_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.uncertainty_weights(double precision[], text[]) IS
	'optimal log variances s_k: ln(mean L_k) for regression, ln(2 mean L_k) for classification, clamped to [-20, 20]; task weights are exp(-s_k); NULL rows skipped';

CREATE AGGREGATE recsys.uncertainty_weighted_loss(losses double precision[]) (
	SFUNC = recsys.uncertainty_weights_accum, STYPE = bytea,
	COMBINEFUNC = recsys.uncertainty_weights_combine, FINALFUNC = recsys.uncertainty_weighted_loss_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.uncertainty_weighted_loss(double precision[]) IS
	'Kendall''s total loss of regression tasks at the optimal log variances: uncertainty_loss(mean losses, uncertainty_weights(losses))';

CREATE AGGREGATE recsys.uncertainty_weighted_loss(losses double precision[], task_types text[]) (
	SFUNC = recsys.uncertainty_weights_accum, STYPE = bytea,
	COMBINEFUNC = recsys.uncertainty_weights_combine, FINALFUNC = recsys.uncertainty_weighted_loss_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.uncertainty_weighted_loss(double precision[], text[]) IS
	'Kendall''s total loss at the optimal log variances: uncertainty_loss(mean losses, uncertainty_weights(losses, task_types), task_types)';

-- Support functions of recsys.predictive_variance: count, Welford mean and
-- M2 of the means, running mean of the variances (Chan et al.'s merge).
CREATE FUNCTION recsys.predictive_variance_accum(state bytea, mean double precision, variance double precision)
	RETURNS bytea
	AS 'MODULE_PATHNAME', 'predictive_variance_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predictive_variance_accum(bytea, double precision, double precision) IS
	'transition function of recsys.predictive_variance (Welford update)';

CREATE FUNCTION recsys.predictive_variance_combine(state1 bytea, state2 bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'predictive_variance_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predictive_variance_combine(bytea, bytea) IS
	'combine function of recsys.predictive_variance (Chan et al. parallel merge)';

CREATE FUNCTION recsys.predictive_variance_final(state bytea) RETURNS double precision[]
	AS 'MODULE_PATHNAME', 'predictive_variance_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predictive_variance_final(bytea) IS
	'final function of recsys.predictive_variance ({epistemic, aleatoric, total}, NULL for no rows)';

CREATE AGGREGATE recsys.predictive_variance(mean double precision, variance double precision) (
	SFUNC = recsys.predictive_variance_accum, STYPE = bytea,
	COMBINEFUNC = recsys.predictive_variance_combine, FINALFUNC = recsys.predictive_variance_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.predictive_variance(double precision, double precision) IS
	'predictive uncertainty over MC-dropout samples: {epistemic, aleatoric, total} = {population variance of the means, mean of the variances, their sum}; rows with a NULL skipped';
