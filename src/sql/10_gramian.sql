-- Vector products and the Gramian aggregate (doc/math.md §1)

CREATE FUNCTION recsys.dot(a real[], b real[]) RETURNS double precision
	AS 'MODULE_PATHNAME', 'vector_dot' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.dot(real[], real[]) IS 'inner product of two vectors, computed in double precision';

CREATE FUNCTION recsys.dot(a double precision[], b double precision[]) RETURNS double precision
	AS 'MODULE_PATHNAME', 'vector_dot' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.dot(double precision[], double precision[]) IS 'inner product of two vectors';

CREATE FUNCTION recsys.frobenius(a double precision[], b double precision[]) RETURNS double precision
	AS 'MODULE_PATHNAME', 'matrix_frobenius' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.frobenius(double precision[], double precision[]) IS
	'Frobenius inner product <A, B>_F of two matrices of the same shape (the Gramian penalty <G_u, G_v>_F)';

-- Support functions.  The state is a bytea updated in place, so that partial
-- aggregation works under parallel query and on Citus workers.
CREATE FUNCTION recsys.gramian_accum(state bytea, v real[]) RETURNS bytea
	AS 'MODULE_PATHNAME', 'gramian_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.gramian_accum(bytea, real[]) IS 'transition function of recsys.gramian';

CREATE FUNCTION recsys.gramian_accum(state bytea, v double precision[]) RETURNS bytea
	AS 'MODULE_PATHNAME', 'gramian_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.gramian_accum(bytea, double precision[]) IS 'transition function of recsys.gramian';

CREATE FUNCTION recsys.gramian_accum(state bytea, v real[], w double precision) RETURNS bytea
	AS 'MODULE_PATHNAME', 'gramian_weighted_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.gramian_accum(bytea, real[], double precision) IS 'transition function of the weighted recsys.gramian';

CREATE FUNCTION recsys.gramian_accum(state bytea, v double precision[], w double precision) RETURNS bytea
	AS 'MODULE_PATHNAME', 'gramian_weighted_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.gramian_accum(bytea, double precision[], double precision) IS 'transition function of the weighted recsys.gramian';

CREATE FUNCTION recsys.gramian_combine(state1 bytea, state2 bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'gramian_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.gramian_combine(bytea, bytea) IS 'combine function of recsys.gramian (sum of partial states)';

CREATE FUNCTION recsys.gramian_final(state bytea) RETURNS double precision[]
	AS 'MODULE_PATHNAME', 'gramian_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.gramian_final(bytea) IS 'final function of recsys.gramian (k x k matrix, NULL for no rows)';

CREATE AGGREGATE recsys.gramian(v real[]) (
	SFUNC = recsys.gramian_accum, STYPE = bytea,
	COMBINEFUNC = recsys.gramian_combine, FINALFUNC = recsys.gramian_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.gramian(real[]) IS 'Gramian sum of v v^T over rows (k x k, float64); NULL rows skipped';

CREATE AGGREGATE recsys.gramian(v double precision[]) (
	SFUNC = recsys.gramian_accum, STYPE = bytea,
	COMBINEFUNC = recsys.gramian_combine, FINALFUNC = recsys.gramian_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.gramian(double precision[]) IS 'Gramian sum of v v^T over rows (k x k, float64); NULL rows skipped';

CREATE AGGREGATE recsys.gramian(v real[], w double precision) (
	SFUNC = recsys.gramian_accum, STYPE = bytea,
	COMBINEFUNC = recsys.gramian_combine, FINALFUNC = recsys.gramian_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.gramian(real[], double precision) IS 'weighted Gramian sum of w v v^T over rows; rows with a NULL vector or weight skipped';

CREATE AGGREGATE recsys.gramian(v double precision[], w double precision) (
	SFUNC = recsys.gramian_accum, STYPE = bytea,
	COMBINEFUNC = recsys.gramian_combine, FINALFUNC = recsys.gramian_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.gramian(double precision[], double precision) IS 'weighted Gramian sum of w v v^T over rows; rows with a NULL vector or weight skipped';
