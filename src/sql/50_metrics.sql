-- Evaluation functions and aggregates (doc/math.md §6)

CREATE FUNCTION recsys.recall_at_k(recommended bigint[], relevant bigint[], k int) RETURNS double precision
	AS 'MODULE_PATHNAME', 'recall_at_k' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.recall_at_k(bigint[], bigint[], int) IS
	'Recall@k: distinct relevant ids among the first k recommended, divided by min(k, |relevant|); a NULL recommended list counts as empty, NULL elements of it as misses; NULL when relevant (or k) is NULL or empty';

CREATE FUNCTION recsys.ndcg_at_k(recommended bigint[], relevant bigint[], k int) RETURNS double precision
	AS 'MODULE_PATHNAME', 'ndcg_at_k' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.ndcg_at_k(bigint[], bigint[], int) IS
	'NDCG@k with binary relevance (a repeated id counts at its first position) and log2 discounts, normalised by the ideal DCG over min(k, |relevant|) items; a NULL recommended list counts as empty, NULL elements of it as misses; NULL when relevant (or k) is NULL or empty';

-- Support functions of recsys.auc.  The state is a bytea of (score,
-- positives, negatives) entries, 16 bytes per distinct score, compacted as it
-- fills; the combine function appends, the final function sorts and sweeps.
CREATE FUNCTION recsys.auc_accum(state bytea, score double precision, label boolean) RETURNS bytea
	AS 'MODULE_PATHNAME', 'auc_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.auc_accum(bytea, double precision, boolean) IS 'transition function of recsys.auc';

CREATE FUNCTION recsys.auc_combine(state1 bytea, state2 bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'auc_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.auc_combine(bytea, bytea) IS 'combine function of recsys.auc (appends the scores of the second state)';

CREATE FUNCTION recsys.auc_final(state bytea) RETURNS double precision
	AS 'MODULE_PATHNAME', 'auc_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.auc_final(bytea) IS 'final function of recsys.auc (NULL unless both labels occur)';

CREATE AGGREGATE recsys.auc(score double precision, label boolean) (
	SFUNC = recsys.auc_accum, STYPE = bytea,
	COMBINEFUNC = recsys.auc_combine, FINALFUNC = recsys.auc_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.auc(double precision, boolean) IS
	'exact ROC AUC (ties count one half, as scikit-learn); memory 16 bytes per distinct score; NULL unless both labels occur; rows with a NULL skipped';

-- Support functions of recsys.log_loss: row count and compensated loss sum.
CREATE FUNCTION recsys.log_loss_accum(state bytea, p double precision, label boolean) RETURNS bytea
	AS 'MODULE_PATHNAME', 'log_loss_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.log_loss_accum(bytea, double precision, boolean) IS 'transition function of recsys.log_loss';

CREATE FUNCTION recsys.log_loss_combine(state1 bytea, state2 bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'log_loss_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.log_loss_combine(bytea, bytea) IS 'combine function of recsys.log_loss (sum of partial states)';

CREATE FUNCTION recsys.log_loss_final(state bytea) RETURNS double precision
	AS 'MODULE_PATHNAME', 'log_loss_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.log_loss_final(bytea) IS 'final function of recsys.log_loss (mean loss, NULL for no rows)';

CREATE AGGREGATE recsys.log_loss(p double precision, label boolean) (
	SFUNC = recsys.log_loss_accum, STYPE = bytea,
	COMBINEFUNC = recsys.log_loss_combine, FINALFUNC = recsys.log_loss_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.log_loss(double precision, boolean) IS
	'mean binary cross-entropy -[y log p + (1 - y) log(1 - p)], p clipped to [1e-15, 1 - 1e-15]; rows with a NULL skipped';

CREATE FUNCTION recsys.precision_at_k(recommended bigint[], relevant bigint[], k int) RETURNS double precision
	AS 'MODULE_PATHNAME', 'precision_at_k' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.precision_at_k(bigint[], bigint[], int) IS
	'Precision@k: distinct relevant ids among the first k recommended, divided by k (a shorter list counts its missing positions as misses); NULL rules as recall_at_k';

CREATE FUNCTION recsys.map_at_k(recommended bigint[], relevant bigint[], k int) RETURNS double precision
	AS 'MODULE_PATHNAME', 'map_at_k' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.map_at_k(bigint[], bigint[], int) IS
	'AP@k (its mean over users is MAP@k): the sum over hit positions p <= k of (hits in the first p) / p, divided by min(k, |relevant|); NULL rules as recall_at_k';
