-- recsys: recommender training and scoring in SQL
-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION recsys" to load this file. \quit

COMMENT ON SCHEMA recsys IS 'recsys: Gramian embeddings, stored MMoE models, uncertainty-weighted losses';
-- The model store shared by embeddings and MMoE models

CREATE TABLE recsys.models (
	name		text NOT NULL CHECK (name <> ''),
	version		int NOT NULL CHECK (version >= 1),
	kind		text NOT NULL CHECK (kind IN ('embeddings', 'mmoe')),
	config		jsonb NOT NULL DEFAULT '{}',
	weights		bytea,
	metrics		jsonb NOT NULL DEFAULT '{}',
	created_by	name NOT NULL DEFAULT current_user,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (name, version)
);
COMMENT ON TABLE recsys.models IS
	'stored models, one row per (name, version): kind, config, weights (safetensors for mmoe), training log and metrics, provenance';
SELECT pg_catalog.pg_extension_config_dump('recsys.models', '');

-- Get the next version number of a model name, holding a transaction-level
-- lock on the name so that concurrent imports or trainings number distinctly.
CREATE FUNCTION recsys.next_model_version(model_name text) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
	IF model_name IS NULL OR model_name = '' THEN
		RAISE EXCEPTION 'model name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('recsys.models:' || model_name, 0));
	RETURN coalesce((SELECT max(m.version) FROM recsys.models m WHERE m.name = model_name), 0) + 1;
END
$$;
COMMENT ON FUNCTION recsys.next_model_version(text) IS
	'next version number for a model name (locks the name until the transaction ends)';

-- Get the stored version to use: the one named, else the newest.
CREATE FUNCTION recsys.resolve_model_version(model_name text, model_version int DEFAULT NULL) RETURNS int
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE AS $$
DECLARE
	v int;
BEGIN
	SELECT max(m.version) INTO v FROM recsys.models m
		WHERE m.name = model_name AND (model_version IS NULL OR m.version = model_version);
	IF v IS NULL THEN
		IF model_version IS NULL THEN
			RAISE EXCEPTION 'model "%" does not exist', model_name USING ERRCODE = 'undefined_object';
		END IF;
		RAISE EXCEPTION 'model "%" has no version %', model_name, model_version USING ERRCODE = 'undefined_object';
	END IF;
	RETURN v;
END
$$;
COMMENT ON FUNCTION recsys.resolve_model_version(text, int) IS
	'the version of a model to use: the one given, else the newest; error if none';

CREATE FUNCTION recsys.drop_model(model_name text, model_version int DEFAULT NULL) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
DECLARE
	n int;
BEGIN
	DELETE FROM recsys.models m
		WHERE m.name = model_name AND (model_version IS NULL OR m.version = model_version);
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n = 0 THEN
		IF model_version IS NULL THEN
			RAISE EXCEPTION 'model "%" does not exist', model_name USING ERRCODE = 'undefined_object';
		END IF;
		RAISE EXCEPTION 'model "%" has no version %', model_name, model_version USING ERRCODE = 'undefined_object';
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.drop_model(text, int) IS
	'delete one version of a model, or all its versions when version is NULL; returns the number deleted';
-- Vector products and the Gramian aggregate

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
-- Gramian-regularized embeddings
--
-- Objective of every method (Hu et al. with a Gramian-weighted unobserved term):
--   L = sum_{(u,i) observed} c_ui (<x_u, y_i> - 1)^2
--     + gramian_weight * sum_{(u,i) not observed} <x_u, y_i>^2
--     + sum_u lambda_u |x_u|^2 + sum_i lambda_i |y_i|^2,
--   lambda_u = l2 * (n_u + gramian_weight * |I|)^nu  (Rendle's frequency scaling; nu = 0: plain l2)
-- written as observed_loss + gramian_loss + l2_loss with
--   observed_loss = sum_observed [c (<x,y> - 1)^2 - gramian_weight <x,y>^2]
--   gramian_loss  = gramian_weight * <X^T X, Y^T Y>_F      (the Gramian penalty)

-- Vectors of trained models, one row per entity and model version.
CREATE TABLE recsys.user_vectors (
	model_name	text NOT NULL,
	model_version int NOT NULL,
	id			bigint NOT NULL,
	embedding	real[] NOT NULL,
	seen		bigint[] NOT NULL,
	PRIMARY KEY (model_name, model_version, id),
	FOREIGN KEY (model_name, model_version) REFERENCES recsys.models (name, version) ON DELETE CASCADE
);
COMMENT ON TABLE recsys.user_vectors IS
	'user vectors of trained embeddings models, with the items each user had in the training table (sorted, for recommend''s exclude_seen)';
SELECT pg_catalog.pg_extension_config_dump('recsys.user_vectors', '');

CREATE TABLE recsys.item_vectors (
	model_name	text NOT NULL,
	model_version int NOT NULL,
	id			bigint NOT NULL,
	embedding	real[] NOT NULL,
	PRIMARY KEY (model_name, model_version, id),
	FOREIGN KEY (model_name, model_version) REFERENCES recsys.models (name, version) ON DELETE CASCADE
);
COMMENT ON TABLE recsys.item_vectors IS 'item vectors of trained embeddings models';
SELECT pg_catalog.pg_extension_config_dump('recsys.item_vectors', '');

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

-- Validate the options of a training method and fill in the defaults.
CREATE FUNCTION recsys.embedding_options(method text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SECURITY INVOKER PARALLEL SAFE AS $$
DECLARE
	defaults jsonb;
	key text;
	val jsonb;
	num double precision;
BEGIN
	IF method IS NULL THEN
		RAISE EXCEPTION 'method must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF options IS NULL THEN
		options := '{}';
	END IF;
	IF jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'options must be a JSON object, not %', jsonb_typeof(options)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	defaults := jsonb_build_object('seed', 42, 'init_scale', 0.1, 'nu', 1.0);
	CASE method
	WHEN 'als' THEN
		NULL;
	WHEN 'sogram' THEN
		defaults := defaults || jsonb_build_object('learning_rate', 0.05, 'batch_size', 128,
			'optimizer', 'adagrad', 'alpha', 0.1, 'sampling', 'uniform');
	WHEN 'sagram' THEN
		defaults := defaults || jsonb_build_object('learning_rate', 0.05, 'batch_size', 128,
			'optimizer', 'adagrad', 'beta', 'sag');
	WHEN 'sampled' THEN
		defaults := defaults || jsonb_build_object('learning_rate', 0.05, 'batch_size', 128,
			'optimizer', 'adagrad', 'negatives', 4, 'sampling', 'uniform');
	ELSE
		RAISE EXCEPTION 'unknown method "%"', method
			USING ERRCODE = 'invalid_parameter_value',
				HINT = 'Use one of als, sogram, sagram, sampled.';
	END CASE;

	FOR key, val IN SELECT o.key, o.value FROM jsonb_each(options) o LOOP
		IF NOT defaults ? key THEN
			RAISE EXCEPTION 'unknown option "%" for method "%"', key, method
				USING ERRCODE = 'invalid_parameter_value',
					HINT = format('Options of %s: %s.', method,
						(SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(defaults) k));
		END IF;
		IF key IN ('optimizer', 'sampling', 'beta') THEN
			IF jsonb_typeof(val) <> 'string' OR NOT (val #>> '{}') = ANY (CASE key
					WHEN 'optimizer' THEN ARRAY['adagrad', 'sgd']
					WHEN 'sampling' THEN ARRAY['uniform', 'sqrt', 'linear']
					ELSE ARRAY['sag', 'saga'] END) THEN
				RAISE EXCEPTION 'option "%" must be one of %', key, CASE key
					WHEN 'optimizer' THEN 'adagrad, sgd'
					WHEN 'sampling' THEN 'uniform, sqrt, linear'
					ELSE 'sag, saga' END
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			CONTINUE;
		END IF;
		IF jsonb_typeof(val) <> 'number' THEN
			RAISE EXCEPTION 'option "%" must be a number, not %', key, jsonb_typeof(val)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		num := (val #>> '{}')::double precision;
		IF (key IN ('seed', 'batch_size', 'negatives') AND num <> trunc(num))
			OR (key = 'seed' AND (num < -9.2e18 OR num > 9.2e18))
			OR (key = 'batch_size' AND (num < 1 OR num > 65536))
			OR (key = 'negatives' AND (num < 1 OR num > 1000))
			OR (key IN ('init_scale', 'learning_rate') AND (num <= 0 OR num > 1e6))
			OR (key = 'nu' AND (num < 0 OR num > 4))
			OR (key = 'alpha' AND (num <= 0 OR num > 1)) THEN
			RAISE EXCEPTION 'option "%" is out of range: %', key, val
				USING ERRCODE = 'invalid_parameter_value',
					HINT = CASE key
						WHEN 'seed' THEN 'Use an integer.'
						WHEN 'batch_size' THEN 'Use an integer from 1 to 65536.'
						WHEN 'negatives' THEN 'Use an integer from 1 to 1000.'
						WHEN 'nu' THEN 'Use a number from 0 to 4.'
						WHEN 'init_scale' THEN 'Use a positive number.'
						WHEN 'learning_rate' THEN 'Use a positive number.'
						ELSE 'Use a number in (0, 1].' END;
		END IF;
	END LOOP;
	RETURN defaults || options;
END
$$;
COMMENT ON FUNCTION recsys.embedding_options(text, jsonb) IS
	'the options of a train_embeddings method with defaults filled in; unknown keys, wrong types and out-of-range values are errors';

-- Check that a column of the training table exists and has one of the
-- accepted types; get its type name.
CREATE FUNCTION recsys.embedding_check_column(rel regclass, col name, what text, accepted regtype[])
RETURNS regtype LANGUAGE plpgsql STABLE SECURITY INVOKER AS $$
DECLARE
	typ regtype;
BEGIN
	IF col IS NULL THEN
		RAISE EXCEPTION '% must not be NULL', what USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT a.atttypid::regtype INTO typ FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
	IF typ IS NULL THEN
		RAISE EXCEPTION 'column "%" of relation % does not exist', col, rel
			USING ERRCODE = 'undefined_column', DETAIL = format('It was given as the %s.', what);
	END IF;
	IF NOT typ = ANY (accepted) THEN
		RAISE EXCEPTION '% "%" must be of type %, not %', what, col,
			array_to_string(accepted::text[], ', '), typ
			USING ERRCODE = 'datatype_mismatch';
	END IF;
	RETURN typ;
END
$$;
COMMENT ON FUNCTION recsys.embedding_check_column(regclass, name, text, regtype[]) IS
	'internal: check that a column of a training table exists with an accepted type';

CREATE FUNCTION recsys.sgd_train(method text, dim int, epochs int, gramian_weight double precision,
	options jsonb, pairs regclass, users regclass, items regclass, out_users regclass, out_items regclass)
RETURNS TABLE(epoch int, loss double precision, observed_loss double precision,
	gramian_loss double precision, l2_loss double precision, seconds double precision)
	AS 'MODULE_PATHNAME', 'sgd_train' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.sgd_train(text, int, int, double precision, jsonb, regclass, regclass, regclass, regclass, regclass) IS
	'internal: SGD epochs (sogram, sagram, sampled) of train_embeddings over arrays loaded from its work tables';

CREATE FUNCTION recsys.train_embeddings(model_name text, interactions regclass,
	user_column name DEFAULT 'user_id', item_column name DEFAULT 'item_id',
	weight_column name DEFAULT NULL, dim int DEFAULT 64, method text DEFAULT 'als',
	epochs int DEFAULT 15, gramian_weight double precision DEFAULT 0.1,
	l2 double precision DEFAULT 0.01, options jsonb DEFAULT '{}')
RETURNS TABLE(epoch int, loss double precision, observed_loss double precision,
	gramian_loss double precision, l2_loss double precision, seconds double precision)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
-- als_solve keeps k x k per group: always aggregate sorted groups
SET enable_hashagg = off
-- the cost of these plans is in the aggregate, not in anything JIT compiles
SET jit = off
AS $$
#variable_conflict error
DECLARE
	p_name text := model_name;
	p_dim int := dim;
	p_method text := method;
	p_epochs int := epochs;
	gw double precision := gramian_weight;
	p_l2 double precision := l2;
	opts jsonb;
	nu double precision;
	seed bigint;
	init_scale double precision;
	ver int;
	weight_expr text;
	n_rows bigint;
	n_null_user bigint;
	n_null_item bigint;
	n_null_weight bigint;
	n_bad_weight bigint;
	n_neg_weight bigint;
	n_pairs bigint;
	n_users bigint;
	n_items bigint;
	g_users double precision[];
	g_items double precision[];
	obs double precision;
	reg double precision;
	t0 timestamptz;
	t_start timestamptz := clock_timestamp();
	log jsonb[] := '{}';
	r record;
	tmp text;
BEGIN
	-- arguments
	IF p_name IS NULL OR p_name = '' THEN
		RAISE EXCEPTION 'model name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF interactions IS NULL THEN
		RAISE EXCEPTION 'interactions must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF p_dim IS NULL OR p_epochs IS NULL OR gw IS NULL OR p_l2 IS NULL THEN
		RAISE EXCEPTION '% must not be NULL', CASE WHEN p_dim IS NULL THEN 'dim'
			WHEN p_epochs IS NULL THEN 'epochs' WHEN gw IS NULL THEN 'gramian_weight' ELSE 'l2' END
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- checks dim against 1 and recsys.max_dim (and loads the library that defines it)
	PERFORM recsys.embedding_init(0, p_dim, 0, 1.0);
	IF p_epochs < 1 OR p_epochs > 100000 THEN
		RAISE EXCEPTION 'epochs must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF gw = 'NaN' OR gw = 'Infinity' OR p_l2 = 'NaN' OR p_l2 = 'Infinity' THEN
		RAISE EXCEPTION '% must be finite', CASE WHEN gw = 'NaN' OR gw = 'Infinity' THEN 'gramian_weight' ELSE 'l2' END
			USING ERRCODE = 'data_exception';
	END IF;
	IF gw < 0 OR p_l2 < 0 THEN
		RAISE EXCEPTION '% must not be negative', CASE WHEN gw < 0 THEN 'gramian_weight' ELSE 'l2' END
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	opts := recsys.embedding_options(p_method, options);
	nu := (opts->>'nu')::double precision;
	seed := (opts->>'seed')::bigint;
	init_scale := (opts->>'init_scale')::double precision;

	PERFORM recsys.embedding_check_column(interactions, user_column, 'user column',
		'{smallint,integer,bigint}'::regtype[]);
	PERFORM recsys.embedding_check_column(interactions, item_column, 'item column',
		'{smallint,integer,bigint}'::regtype[]);
	IF weight_column IS NULL THEN
		weight_expr := '1::double precision';
	ELSE
		PERFORM recsys.embedding_check_column(interactions, weight_column, 'weight column',
			'{smallint,integer,bigint,real,double precision,numeric}'::regtype[]);
		weight_expr := format('%I::double precision', weight_column);
	END IF;

	-- numbers the version and locks the name until the transaction ends
	ver := recsys.next_model_version(p_name);

	-- one pass of checks over the source rows
	EXECUTE format('SELECT count(*), count(*) FILTER (WHERE s.u IS NULL), count(*) FILTER (WHERE s.i IS NULL),'
		' count(*) FILTER (WHERE s.w IS NULL), count(*) FILTER (WHERE s.w = ''NaN'' OR s.w IN (''Infinity'', ''-Infinity'')),'
		' count(*) FILTER (WHERE s.w < 0)'
		' FROM (SELECT %I AS u, %I AS i, %s AS w FROM %s) s',
		user_column, item_column, weight_expr, interactions)
		INTO n_rows, n_null_user, n_null_item, n_null_weight, n_bad_weight, n_neg_weight;
	IF n_null_user > 0 OR n_null_item > 0 THEN
		RAISE EXCEPTION '% column "%" of % is NULL in % row(s)',
			CASE WHEN n_null_user > 0 THEN 'user' ELSE 'item' END,
			CASE WHEN n_null_user > 0 THEN user_column ELSE item_column END, interactions,
			CASE WHEN n_null_user > 0 THEN n_null_user ELSE n_null_item END
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF n_null_weight > 0 THEN
		RAISE EXCEPTION 'weight column "%" of % is NULL in % row(s)', weight_column, interactions, n_null_weight
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF n_bad_weight > 0 THEN
		RAISE EXCEPTION 'weight column "%" of % is NaN or infinite in % row(s)', weight_column, interactions, n_bad_weight
			USING ERRCODE = 'data_exception';
	END IF;
	IF n_neg_weight > 0 THEN
		RAISE EXCEPTION 'weight column "%" of % is negative in % row(s)', weight_column, interactions, n_neg_weight
			USING ERRCODE = 'data_exception', HINT = 'Weights are confidences and must be zero or more.';
	END IF;

	-- distinct observed pairs; repeated pairs add their weights, zero-weight pairs are dropped
	-- leftovers of an earlier training in this transaction
	FOREACH tmp IN ARRAY ARRAY['recsys_emb_pairs', 'recsys_emb_users', 'recsys_emb_items',
			'recsys_emb_u', 'recsys_emb_v', 'recsys_emb_by_user', 'recsys_emb_by_item'] LOOP
		IF to_regclass('pg_temp.' || tmp) IS NOT NULL THEN
			EXECUTE format('DROP TABLE pg_temp.%I', tmp);
		END IF;
	END LOOP;
	EXECUTE format('CREATE TEMP TABLE recsys_emb_pairs ON COMMIT DROP AS'
		' SELECT s.u::bigint AS u, s.i::bigint AS i, sum(s.w) AS c'
		' FROM (SELECT %I AS u, %I AS i, %s AS w FROM %s) s GROUP BY 1, 2 HAVING sum(s.w) > 0',
		user_column, item_column, weight_expr, interactions);
	GET DIAGNOSTICS n_pairs = ROW_COUNT;
	IF n_pairs = 0 THEN
		RAISE EXCEPTION 'interactions table % has no rows with a positive weight', interactions
			USING ERRCODE = 'data_exception';
	END IF;
	CREATE TEMP TABLE recsys_emb_users ON COMMIT DROP AS
		SELECT p.u AS id, (row_number() OVER (ORDER BY p.u) - 1)::int AS idx, count(*)::int AS n
		FROM pg_temp.recsys_emb_pairs p GROUP BY p.u;
	GET DIAGNOSTICS n_users = ROW_COUNT;
	CREATE TEMP TABLE recsys_emb_items ON COMMIT DROP AS
		SELECT p.i AS id, (row_number() OVER (ORDER BY p.i) - 1)::int AS idx, count(*)::int AS n
		FROM pg_temp.recsys_emb_pairs p GROUP BY p.i;
	GET DIAGNOSTICS n_items = ROW_COUNT;
	-- frequency-scaled regularization of each entity (Rendle et al.)
	ALTER TABLE pg_temp.recsys_emb_users ADD COLUMN lam double precision;
	ALTER TABLE pg_temp.recsys_emb_items ADD COLUMN lam double precision;
	UPDATE pg_temp.recsys_emb_users e SET lam = p_l2 * power(e.n + gw * n_items, nu);
	UPDATE pg_temp.recsys_emb_items e SET lam = p_l2 * power(e.n + gw * n_users, nu);
	CREATE TEMP TABLE recsys_emb_u (id bigint PRIMARY KEY, v real[], part double precision) ON COMMIT DROP;
	CREATE TEMP TABLE recsys_emb_v (id bigint PRIMARY KEY, v real[], part double precision) ON COMMIT DROP;

	IF p_method = 'als' THEN
		-- Two copies of the pairs, clustered and indexed by each side, each carrying
		-- that side's lambda (a constant of its group): an index scan then feeds
		-- als_solve its groups in order through a memoized lookup of the other
		-- side's vectors, with no sort of the joined rows.
		CREATE TEMP TABLE recsys_emb_by_user ON COMMIT DROP AS
			SELECT p.u, p.i, p.c, us.lam AS lu
			FROM pg_temp.recsys_emb_pairs p JOIN pg_temp.recsys_emb_users us ON us.id = p.u
			ORDER BY p.u, p.i;
		CREATE INDEX ON pg_temp.recsys_emb_by_user (u);
		ANALYZE pg_temp.recsys_emb_by_user;
		CREATE TEMP TABLE recsys_emb_by_item ON COMMIT DROP AS
			SELECT p.i, p.u, p.c, it.lam AS li
			FROM pg_temp.recsys_emb_pairs p JOIN pg_temp.recsys_emb_items it ON it.id = p.i
			ORDER BY p.i, p.u;
		CREATE INDEX ON pg_temp.recsys_emb_by_item (i);
		ANALYZE pg_temp.recsys_emb_by_item;
		INSERT INTO pg_temp.recsys_emb_v (id, v)
			SELECT it.id, recsys.embedding_init(it.id, p_dim, seed * 2 + 1, init_scale)
			FROM pg_temp.recsys_emb_items it;
		ANALYZE pg_temp.recsys_emb_v (id);
		SELECT recsys.gramian(t.v) INTO g_items FROM pg_temp.recsys_emb_v t;
		FOR ep IN 1..p_epochs LOOP
			t0 := clock_timestamp();
			-- users from items, then items from users (als_solve per sorted group)
			TRUNCATE pg_temp.recsys_emb_u;
			INSERT INTO pg_temp.recsys_emb_u (id, v)
				SELECT p.u, recsys.als_solve(t.v, p.c, g_items, gw, p.lu)
				FROM pg_temp.recsys_emb_by_user p JOIN pg_temp.recsys_emb_v t ON t.id = p.i
				GROUP BY p.u;
			ANALYZE pg_temp.recsys_emb_u (id);
			SELECT recsys.gramian(t.v) INTO g_users FROM pg_temp.recsys_emb_u t;
			TRUNCATE pg_temp.recsys_emb_v;
			INSERT INTO pg_temp.recsys_emb_v (id, v, part)
				SELECT s.i, s.r[1:p_dim]::real[], s.r[p_dim + 1]
				FROM (SELECT p.i, recsys.als_solve_objective(t.v, p.c, g_users, gw, p.li) AS r
					FROM pg_temp.recsys_emb_by_item p JOIN pg_temp.recsys_emb_u t ON t.id = p.u
					GROUP BY p.i) s;
			ANALYZE pg_temp.recsys_emb_v (id);
			SELECT recsys.gramian(t.v), sum(t.part) INTO g_items, obs FROM pg_temp.recsys_emb_v t;
			SELECT coalesce((SELECT sum(e.lam * recsys.dot(t.v, t.v)) FROM pg_temp.recsys_emb_u t
					JOIN pg_temp.recsys_emb_users e ON e.id = t.id), 0)
				+ coalesce((SELECT sum(e.lam * recsys.dot(t.v, t.v)) FROM pg_temp.recsys_emb_v t
					JOIN pg_temp.recsys_emb_items e ON e.id = t.id), 0)
				INTO reg;
			epoch := ep;
			observed_loss := obs;
			gramian_loss := gw * recsys.frobenius(g_users, g_items);
			l2_loss := reg;
			loss := observed_loss + gramian_loss + l2_loss;
			seconds := extract(epoch FROM clock_timestamp() - t0);
			RAISE NOTICE 'epoch %/%: loss % (observed %, gramian %, l2 %) in % s', ep, p_epochs,
				round(loss::numeric, 4), round(observed_loss::numeric, 4), round(gramian_loss::numeric, 4),
				round(l2_loss::numeric, 4), round(seconds::numeric, 3);
			log := log || jsonb_build_object('epoch', epoch, 'loss', loss, 'observed_loss', observed_loss,
				'gramian_loss', gramian_loss, 'l2_loss', l2_loss, 'seconds', seconds);
			RETURN NEXT;
		END LOOP;
		DROP TABLE pg_temp.recsys_emb_by_user, pg_temp.recsys_emb_by_item;
	ELSE
		FOR r IN SELECT * FROM recsys.sgd_train(p_method, p_dim, p_epochs, gw, opts,
				'pg_temp.recsys_emb_pairs'::regclass, 'pg_temp.recsys_emb_users'::regclass,
				'pg_temp.recsys_emb_items'::regclass, 'pg_temp.recsys_emb_u'::regclass,
				'pg_temp.recsys_emb_v'::regclass) LOOP
			epoch := r.epoch;
			loss := r.loss;
			observed_loss := r.observed_loss;
			gramian_loss := r.gramian_loss;
			l2_loss := r.l2_loss;
			seconds := r.seconds;
			log := log || jsonb_build_object('epoch', epoch, 'loss', loss, 'observed_loss', observed_loss,
				'gramian_loss', gramian_loss, 'l2_loss', l2_loss, 'seconds', seconds);
			RETURN NEXT;
		END LOOP;
	END IF;

	-- store the model: one new version, all in this transaction
	INSERT INTO recsys.models (name, version, kind, config, weights, metrics)
	VALUES (p_name, ver, 'embeddings',
		jsonb_build_object('method', p_method, 'dim', p_dim, 'epochs', p_epochs,
			'gramian_weight', gw, 'l2', p_l2, 'options', opts,
			'source', jsonb_build_object('table', interactions::text, 'user_column', user_column,
				'item_column', item_column, 'weight_column', weight_column),
			'objective', 'sum_observed c (<x,y> - 1)^2 + gramian_weight * sum_unobserved <x,y>^2 + sum lambda |x|^2',
			'regularization', 'lambda = l2 * (n + gramian_weight * N_other)^nu',
			'gramian', 'entity (each user and item counted once: X^T X, Y^T Y)',
			'n_users', n_users, 'n_items', n_items, 'n_interactions', n_pairs, 'n_rows', n_rows),
		NULL,
		jsonb_build_object('log', to_jsonb(log), 'train_seconds', extract(epoch FROM clock_timestamp() - t_start)));
	INSERT INTO recsys.user_vectors (model_name, model_version, id, embedding, seen)
		SELECT p_name, ver, t.id, t.v, s.seen
		FROM pg_temp.recsys_emb_u t
		JOIN (SELECT p.u, array_agg(p.i ORDER BY p.i) AS seen FROM pg_temp.recsys_emb_pairs p GROUP BY p.u) s
			ON s.u = t.id;
	INSERT INTO recsys.item_vectors (model_name, model_version, id, embedding)
		SELECT p_name, ver, t.id, t.v FROM pg_temp.recsys_emb_v t;
	DROP TABLE pg_temp.recsys_emb_pairs, pg_temp.recsys_emb_users, pg_temp.recsys_emb_items,
		pg_temp.recsys_emb_u, pg_temp.recsys_emb_v;
	RETURN;
END
$$;
COMMENT ON FUNCTION recsys.train_embeddings(text, regclass, name, name, name, int, text, int, double precision, double precision, jsonb) IS
	'train user and item embeddings over an interactions table (method als, sogram, sagram or sampled) and store them as a new version of the model; one row (and NOTICE) per epoch';

-- Get the newest version of an embeddings model (errors for unknown or other kinds).
CREATE FUNCTION recsys.embedding_model_version(model_name text) RETURNS int
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE AS $$
DECLARE
	v int := recsys.resolve_model_version(model_name);
	k text;
BEGIN
	SELECT m.kind INTO k FROM recsys.models m WHERE m.name = model_name AND m.version = v;
	IF k <> 'embeddings' THEN
		RAISE EXCEPTION 'model "%" is not an embeddings model but "%"', model_name, k
			USING ERRCODE = 'wrong_object_type';
	END IF;
	RETURN v;
END
$$;
COMMENT ON FUNCTION recsys.embedding_model_version(text) IS
	'the newest version of an embeddings model; error if the model does not exist or is of another kind';

CREATE FUNCTION recsys.user_embeddings(model_name text) RETURNS TABLE(id bigint, embedding real[])
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE AS $$
	SELECT u.id, u.embedding FROM recsys.user_vectors u
	WHERE u.model_name = $1
		AND u.model_version = recsys.embedding_model_version($1)
	ORDER BY u.id
$$;
COMMENT ON FUNCTION recsys.user_embeddings(text) IS 'user vectors of the newest version of an embeddings model';

CREATE FUNCTION recsys.item_embeddings(model_name text) RETURNS TABLE(id bigint, embedding real[])
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE AS $$
	SELECT v.id, v.embedding FROM recsys.item_vectors v
	WHERE v.model_name = $1
		AND v.model_version = recsys.embedding_model_version($1)
	ORDER BY v.id
$$;
COMMENT ON FUNCTION recsys.item_embeddings(text) IS 'item vectors of the newest version of an embeddings model';

CREATE FUNCTION recsys.recommend(model_name text, user_id bigint, k int DEFAULT 10,
	exclude_seen boolean DEFAULT true) RETURNS TABLE(item_id bigint, score real)
	AS 'MODULE_PATHNAME', 'embedding_recommend' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION recsys.recommend(text, bigint, int, boolean) IS
	'top-k items of a user by <x_u, y_i> under the newest version of an embeddings model, best first (ties: smaller id), without the user''s training items when exclude_seen; no rows for an unknown user';
-- Stored MMoE models: import/export (safetensors), scoring

CREATE FUNCTION recsys.mmoe_validate(weights bytea, config jsonb DEFAULT NULL)
	RETURNS TABLE(valid_config jsonb, safetensors bytea)
	AS 'MODULE_PATHNAME', 'mmoe_validate' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.mmoe_validate(bytea, jsonb) IS
	'check a safetensors file against an MMoE config (argument, else __metadata__.recsys); returns the config and the canonical file with the config embedded';

CREATE FUNCTION recsys.import_model(name text, weights bytea, config jsonb DEFAULT NULL) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
DECLARE
	v int;
	checked record;
BEGIN
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'model name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT c.valid_config, c.safetensors INTO checked FROM recsys.mmoe_validate($2, $3) c;
	v := recsys.next_model_version($1);
	INSERT INTO recsys.models (name, version, kind, config, weights)
		VALUES ($1, v, 'mmoe', checked.valid_config, checked.safetensors);
	RETURN v;
END
$$;
COMMENT ON FUNCTION recsys.import_model(text, bytea, jsonb) IS
	'import an MMoE model from safetensors bytes (config from the argument or __metadata__.recsys) as the next version of name; returns the version';

CREATE FUNCTION recsys.export_model(name text, version int DEFAULT NULL) RETURNS bytea
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE AS $$
DECLARE
	v int;
	m record;
BEGIN
	IF $1 IS NULL THEN
		RETURN NULL;
	END IF;
	v := recsys.resolve_model_version($1, $2);
	SELECT s.kind, s.config, s.weights INTO m FROM recsys.models s WHERE s.name = $1 AND s.version = v;
	IF m.kind <> 'mmoe' THEN
		RAISE EXCEPTION 'model "%" version % is of kind "%", not "mmoe"', $1, v, m.kind
			USING ERRCODE = 'wrong_object_type';
	END IF;
	RETURN (SELECT c.safetensors FROM recsys.mmoe_validate(m.weights, m.config) c);
END
$$;
COMMENT ON FUNCTION recsys.export_model(text, int) IS
	'a stored MMoE model (newest version unless one is named) as safetensors bytes, with its config in __metadata__.recsys';

-- Scoring.  Optional inputs are meant to be passed by name
-- (categorical => ..., context => ..., position => ..., version => ...).
CREATE FUNCTION recsys.predict(model text, features real[], categorical int[] DEFAULT NULL,
	context real[] DEFAULT NULL, "position" int DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'mmoe_predict' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict(text, real[], int[], real[], int, int) IS
	'score one row with a stored MMoE model: one output per task in config order (probability for binary tasks, value for regression)';

CREATE FUNCTION recsys.predict(model text, features double precision[], categorical int[] DEFAULT NULL,
	context double precision[] DEFAULT NULL, "position" int DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'mmoe_predict' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict(text, double precision[], int[], double precision[], int, int) IS
	'score one row with a stored MMoE model: one output per task in config order (probability for binary tasks, value for regression)';

CREATE FUNCTION recsys.predict(model text, features real[], task text, categorical int[] DEFAULT NULL,
	context real[] DEFAULT NULL, "position" int DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real
	AS 'MODULE_PATHNAME', 'mmoe_predict_task' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict(text, real[], text, int[], real[], int, int) IS
	'score one row with a stored MMoE model for one task';

CREATE FUNCTION recsys.predict(model text, features double precision[], task text, categorical int[] DEFAULT NULL,
	context double precision[] DEFAULT NULL, "position" int DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real
	AS 'MODULE_PATHNAME', 'mmoe_predict_task' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict(text, double precision[], text, int[], double precision[], int, int) IS
	'score one row with a stored MMoE model for one task';

CREATE FUNCTION recsys.gate_weights(model text, features real[], task text,
	categorical int[] DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'mmoe_gate_weights' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.gate_weights(text, real[], text, int[], int) IS
	'the weights a task''s gate gives each expert for one row (sum to 1; zeros outside the top k for noisy_top_k gates)';

CREATE FUNCTION recsys.gate_weights(model text, features double precision[], task text,
	categorical int[] DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'mmoe_gate_weights' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.gate_weights(text, double precision[], text, int[], int) IS
	'the weights a task''s gate gives each expert for one row (sum to 1; zeros outside the top k for noisy_top_k gates)';

CREATE FUNCTION recsys.predict_mc(model text, features real[], samples int DEFAULT 32, seed int DEFAULT 0,
	categorical int[] DEFAULT NULL, context real[] DEFAULT NULL, "position" int DEFAULT NULL,
	version int DEFAULT NULL)
	RETURNS TABLE(task text, mean real, variance real)
	AS 'MODULE_PATHNAME', 'mmoe_predict_mc' LANGUAGE C STABLE PARALLEL SAFE ROWS 4;
COMMENT ON FUNCTION recsys.predict_mc(text, real[], int, int, int[], real[], int, int) IS
	'MC-dropout uncertainty for one row: per task, mean and variance of the output over samples passes with the config''s dropout rate (reproducible for a seed)';

CREATE FUNCTION recsys.predict_mc(model text, features double precision[], samples int DEFAULT 32, seed int DEFAULT 0,
	categorical int[] DEFAULT NULL, context double precision[] DEFAULT NULL, "position" int DEFAULT NULL,
	version int DEFAULT NULL)
	RETURNS TABLE(task text, mean real, variance real)
	AS 'MODULE_PATHNAME', 'mmoe_predict_mc' LANGUAGE C STABLE PARALLEL SAFE ROWS 4;
COMMENT ON FUNCTION recsys.predict_mc(text, double precision[], int, int, int[], double precision[], int, int) IS
	'MC-dropout uncertainty for one row: per task, mean and variance of the output over samples passes with the config''s dropout rate (reproducible for a seed)';

CREATE FUNCTION recsys.predict_batch(model text, features real[], categorical int[] DEFAULT NULL,
	context real[] DEFAULT NULL, positions int[] DEFAULT NULL, version int DEFAULT NULL)
	RETURNS TABLE(i int, scores real[])
	AS 'MODULE_PATHNAME', 'mmoe_predict_batch' LANGUAGE C STABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION recsys.predict_batch(text, real[], int[], real[], int[], int) IS
	'score a batch (features real[][], one row per candidate; categorical int[][], context real[][], positions int[] with NULL = missing) with BLAS sgemm: row number i (1-based) and the outputs per task';

CREATE FUNCTION recsys.predict_batch(model text, features double precision[], categorical int[] DEFAULT NULL,
	context double precision[] DEFAULT NULL, positions int[] DEFAULT NULL, version int DEFAULT NULL)
	RETURNS TABLE(i int, scores real[])
	AS 'MODULE_PATHNAME', 'mmoe_predict_batch' LANGUAGE C STABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION recsys.predict_batch(text, double precision[], int[], double precision[], int[], int) IS
	'score a batch (features double precision[][], one row per candidate) with BLAS sgemm: row number i (1-based) and the outputs per task';

CREATE FUNCTION recsys.model_cache()
	RETURNS TABLE(name text, version int, bytes bigint, lookups bigint, pins int, loaded_at timestamptz)
	AS 'MODULE_PATHNAME', 'model_cache' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.model_cache() IS
	'the parsed MMoE models this backend caches: memory, statement-level lookups served, statements pinning it, load time';
-- Uncertainty-weighted multi-task losses and predictive uncertainty
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
-- Evaluation functions and aggregates

CREATE FUNCTION recsys.recall_at_k(recommended bigint[], relevant bigint[], k int) RETURNS double precision
	AS 'MODULE_PATHNAME', 'recall_at_k' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.recall_at_k(bigint[], bigint[], int) IS
	'Recall@k: relevant items among the first k recommended, divided by min(k, |relevant|); NULL when relevant is empty';

CREATE FUNCTION recsys.ndcg_at_k(recommended bigint[], relevant bigint[], k int) RETURNS double precision
	AS 'MODULE_PATHNAME', 'ndcg_at_k' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.ndcg_at_k(bigint[], bigint[], int) IS
	'NDCG@k with binary relevance and log2 discounts, normalised by the ideal DCG over min(k, |relevant|) items; NULL when relevant is empty';

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
