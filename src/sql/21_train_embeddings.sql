-- Training Gramian-regularized embeddings: the option table and train_embeddings
--
-- Objective of every method (Hu et al. with a Gramian-weighted unobserved term):
--   L = sum_{(u,i) observed} c_ui (<x_u, y_i> - 1)^2
--     + gramian_weight * sum_{(u,i) not observed} <x_u, y_i>^2
--     + sum_u lambda_u |x_u|^2 + sum_i lambda_i |y_i|^2,
--   lambda_u = l2 * (n_u + gramian_weight * |I|)^nu  (Rendle's frequency scaling; nu = 0: plain l2)
-- written as observed_loss + gramian_loss + l2_loss with
--   observed_loss = sum_observed [c (<x,y> - 1)^2 - gramian_weight <x,y>^2]
--   gramian_loss  = gramian_weight * <X^T X, Y^T Y>_F      (the Gramian penalty)
-- The driver is C (src/embeddings/train.c): prepare, epochs, store.

CREATE FUNCTION recsys.embedding_options()
RETURNS TABLE(name text, methods text[], type text, default_value jsonb, min_value double precision,
	min_exclusive boolean, max_value double precision, allowed text[], description text)
	AS 'MODULE_PATHNAME', 'embedding_options_table' LANGUAGE C IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.embedding_options() IS
	'the options of train_embeddings: one row per option with the methods that take it, its type, default and range (the table the trainers validate with)';

CREATE FUNCTION recsys.embedding_options(method text, options jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'embedding_options_resolve' LANGUAGE C IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.embedding_options(text, jsonb) IS
	'the options of a train_embeddings method with defaults filled in; unknown keys, wrong types and out-of-range values are errors';

-- SET: als_solve keeps k x k per group, so the aggregate engine always
-- aggregates sorted groups; the cost of its plans is in the aggregate, not
-- in anything JIT compiles.
CREATE FUNCTION recsys.train_embeddings(model text, interactions regclass,
	user_column name DEFAULT 'user_id', item_column name DEFAULT 'item_id',
	weight_column name DEFAULT NULL, dim int DEFAULT 64, method text DEFAULT 'als',
	epochs int DEFAULT 15, gramian_weight double precision DEFAULT 0.1,
	l2 double precision DEFAULT 0.01, options jsonb DEFAULT '{}')
RETURNS TABLE(epoch int, loss double precision, observed_loss double precision,
	gramian_loss double precision, l2_loss double precision, seconds double precision)
	AS 'MODULE_PATHNAME', 'train_embeddings' LANGUAGE C VOLATILE
	SET search_path = pg_catalog, pg_temp
	SET enable_hashagg = off
	SET jit = off;
COMMENT ON FUNCTION recsys.train_embeddings(text, regclass, name, name, name, int, text, int, double precision, double precision, jsonb) IS
	'train user and item embeddings over an interactions table (method als, sogram, sagram or sampled; als on the memory or the aggregate engine), or the item-item model of method ease, and store them as a new version of the model; one row (and NOTICE) per epoch';

-- Running trainings (train_embeddings, train_mmoe) of the whole cluster, from
-- shared memory: needs recsys in shared_preload_libraries (else an error
-- that says so).  As pg_stat_progress_*: pid, database and role for every
-- row, the rest only with the privileges of the training's role or of
-- pg_read_all_stats.
CREATE FUNCTION recsys.training_progress()
	RETURNS TABLE(pid int, datid oid, userid oid, function text, model text, method text,
		phase text, epoch int, epochs int, done bigint, total bigint, unit text,
		started_at timestamptz, phase_started_at timestamptz, updated_at timestamptz,
		phase_seconds_left double precision)
	AS 'MODULE_PATHNAME', 'training_progress' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.training_progress() IS
	'the trainings running in the cluster: function, model, method, phase, epoch of epochs, work done of total (unit), times, and an estimate of the phase''s remaining seconds; needs recsys in shared_preload_libraries';
