-- Evaluation functions and aggregates (api.md section 2)

CREATE FUNCTION recsys.recall_at_k(recommended bigint[], relevant bigint[], k int) RETURNS double precision
	AS 'MODULE_PATHNAME', 'recall_at_k' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.recall_at_k(bigint[], bigint[], int) IS
	'Recall@k: relevant items among the first k recommended, divided by min(k, |relevant|); NULL when relevant is empty';

CREATE FUNCTION recsys.ndcg_at_k(recommended bigint[], relevant bigint[], k int) RETURNS double precision
	AS 'MODULE_PATHNAME', 'ndcg_at_k' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.ndcg_at_k(bigint[], bigint[], int) IS
	'NDCG@k with binary relevance and log2 discounts, normalised by the ideal DCG over min(k, |relevant|) items; NULL when relevant is empty';
