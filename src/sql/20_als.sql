-- The implicit-ALS building blocks: the als_solve aggregate and deterministic initial vectors

-- The als_solve aggregate: closed-form implicit-ALS update of one entity.
CREATE FUNCTION recsys.als_solve_accum(state bytea, v real[], confidence double precision,
	gramian double precision[], gramian_weight double precision, l2 double precision) RETURNS bytea
	AS 'MODULE_PATHNAME', 'als_solve_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_accum(bytea, real[], double precision, double precision[], double precision, double precision) IS
	'transition function of recsys.als_solve';

CREATE FUNCTION recsys.als_solve_accum(state bytea, v double precision[], confidence double precision,
	gramian double precision[], gramian_weight double precision, l2 double precision) RETURNS bytea
	AS 'MODULE_PATHNAME', 'als_solve_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_accum(bytea, double precision[], double precision, double precision[], double precision, double precision) IS
	'transition function of recsys.als_solve';

CREATE FUNCTION recsys.als_solve_combine(state1 bytea, state2 bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'als_solve_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_combine(bytea, bytea) IS
	'combine function of recsys.als_solve (sum of partial states of one group)';

CREATE FUNCTION recsys.als_solve_final(state bytea) RETURNS real[]
	AS 'MODULE_PATHNAME', 'als_solve_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_final(bytea) IS
	'final function of recsys.als_solve (Cholesky solve with jitter retries; NULL for no rows)';

CREATE FUNCTION recsys.als_solve_objective_final(state bytea) RETURNS double precision[]
	AS 'MODULE_PATHNAME', 'als_solve_objective_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_objective_final(bytea) IS
	'final function of recsys.als_solve_objective (solution and the group''s observed loss)';

-- SSPACE tells the planner a state is large (k x k twice), so that it sorts
-- rather than hashes groups.
CREATE AGGREGATE recsys.als_solve(v real[], confidence double precision, gramian double precision[],
	gramian_weight double precision, l2 double precision) (
	SFUNC = recsys.als_solve_accum, STYPE = bytea, SSPACE = 131072,
	COMBINEFUNC = recsys.als_solve_combine, FINALFUNC = recsys.als_solve_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.als_solve(real[], double precision, double precision[], double precision, double precision) IS
	'implicit-ALS update of one entity: solves (w G + sum (c_j - w) v_j v_j^T + l2 I) x = sum c_j v_j over the group''s rows (G, w, l2 constant per group); rows with a NULL vector or confidence skipped';

CREATE AGGREGATE recsys.als_solve(v double precision[], confidence double precision, gramian double precision[],
	gramian_weight double precision, l2 double precision) (
	SFUNC = recsys.als_solve_accum, STYPE = bytea, SSPACE = 131072,
	COMBINEFUNC = recsys.als_solve_combine, FINALFUNC = recsys.als_solve_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.als_solve(double precision[], double precision, double precision[], double precision, double precision) IS
	'implicit-ALS update of one entity: solves (w G + sum (c_j - w) v_j v_j^T + l2 I) x = sum c_j v_j over the group''s rows (G, w, l2 constant per group); rows with a NULL vector or confidence skipped';

CREATE AGGREGATE recsys.als_solve_objective(v real[], confidence double precision, gramian double precision[],
	gramian_weight double precision, l2 double precision) (
	SFUNC = recsys.als_solve_accum, STYPE = bytea, SSPACE = 131072,
	COMBINEFUNC = recsys.als_solve_combine, FINALFUNC = recsys.als_solve_objective_final,
	PARALLEL = SAFE);
COMMENT ON AGGREGATE recsys.als_solve_objective(real[], double precision, double precision[], double precision, double precision) IS
	'recsys.als_solve plus the group''s observed loss: {x_1..x_k, sum_j [c_j (v_j.x - 1)^2 - w (v_j.x)^2]} at the (real-rounded) solution x';

CREATE FUNCTION recsys.embedding_init(id bigint, dim int, seed bigint, init_scale double precision) RETURNS real[]
	AS 'MODULE_PATHNAME', 'embedding_init' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.embedding_init(bigint, int, bigint, double precision) IS
	'initial vector of an entity: dim values N(0, (init_scale/sqrt(dim))^2) that depend on (seed, id) only';

