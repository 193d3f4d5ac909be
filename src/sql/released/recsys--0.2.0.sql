-- recsys: recommender training and scoring in SQL
-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION recsys" to load this file. \quit

COMMENT ON SCHEMA recsys IS 'recsys: Gramian embeddings, stored MMoE models, uncertainty-weighted losses';
-- The model store's tables (install script only; upgrades alter them in
-- src/sql/upgrade/).  Every other part of the install script holds only
-- functions, aggregates and types, so that an upgrade can recreate them.

-- One row per model name: who owns it.  Versions of a name may be added or
-- dropped only by members of the owner role (row-level security in
-- 90_store_rules.sql); writers lock this row to number versions.
CREATE TABLE recsys.model_names (
	name		text PRIMARY KEY CHECK (name ~ '\S' AND octet_length(name) <= 63),
	owner		regrole NOT NULL DEFAULT current_user::regrole,
	created_at	timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recsys.model_names IS
	'model names and their owner roles: only members of the owner add versions to or drop a model';
SELECT pg_catalog.pg_extension_config_dump('recsys.model_names', '');

CREATE TABLE recsys.models (
	name		text NOT NULL,
	version		int NOT NULL CHECK (version >= 1),
	kind		text NOT NULL CHECK (kind IN ('embeddings', 'mmoe')),
	config		jsonb NOT NULL DEFAULT '{}',
	weights		bytea,
	metrics		jsonb NOT NULL DEFAULT '{}',
	created_by	name NOT NULL DEFAULT current_user,
	created_at	timestamptz NOT NULL DEFAULT now(),
	-- bumped by every write to the model's vectors, so that the row's
	-- identity (xmin, ctid), which keys every cache, changes with them
	revision	bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (name, version)
);
COMMENT ON TABLE recsys.models IS
	'stored models, one row per (name, version): kind, config, weights (safetensors for mmoe), training log and metrics, provenance';
SELECT pg_catalog.pg_extension_config_dump('recsys.models', '');

-- Vectors of trained models, one row per entity and model version.
CREATE TABLE recsys.user_vectors (
	model		text NOT NULL,
	version		int NOT NULL,
	id			bigint NOT NULL,
	embedding	real[] NOT NULL,
	seen		bigint[] NOT NULL,
	PRIMARY KEY (model, version, id)
);
COMMENT ON TABLE recsys.user_vectors IS
	'user vectors of trained embeddings models, with the items each user had in the training table (sorted, for recommend''s exclude_seen)';
SELECT pg_catalog.pg_extension_config_dump('recsys.user_vectors', '');

CREATE TABLE recsys.item_vectors (
	model		text NOT NULL,
	version		int NOT NULL,
	id			bigint NOT NULL,
	embedding	real[] NOT NULL,
	PRIMARY KEY (model, version, id)
);
COMMENT ON TABLE recsys.item_vectors IS 'item vectors of trained embeddings models';
SELECT pg_catalog.pg_extension_config_dump('recsys.item_vectors', '');

-- The foreign keys (names as PostgreSQL would choose them), except on a
-- Citus worker: there the tables are the shells of the coordinator's
-- reference tables, which get their foreign keys from the coordinator when
-- it converts the store (recsys.citus_attach_store); one of the worker's own
-- would collide with them.
DO $$
DECLARE
	g int := 0;
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
		EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO g;
	END IF;
	IF g OPERATOR(pg_catalog.=) 0 THEN
		ALTER TABLE recsys.models ADD CONSTRAINT models_name_fkey
			FOREIGN KEY (name) REFERENCES recsys.model_names (name) ON DELETE CASCADE;
		ALTER TABLE recsys.user_vectors ADD CONSTRAINT user_vectors_model_version_fkey
			FOREIGN KEY (model, version) REFERENCES recsys.models (name, version) ON DELETE CASCADE;
		ALTER TABLE recsys.item_vectors ADD CONSTRAINT item_vectors_model_version_fkey
			FOREIGN KEY (model, version) REFERENCES recsys.models (name, version) ON DELETE CASCADE;
	END IF;
END
$$;
-- The model store shared by embeddings and MMoE models: names and owners,
-- version numbering, resolution and drop.  The tables are in 01_tables.sql,
-- their rules (ownership, provenance, cache identity) in 90_store_rules.sql.

CREATE FUNCTION recsys.check_model_name(model text) RETURNS void
	AS 'MODULE_PATHNAME', 'model_check_name' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.check_model_name(text) IS
	'raise an error unless the text is a usable model name (not NULL, not blank, at most 63 bytes)';

-- Ownership test of the row-level security policies (90_store_rules.sql):
-- a function rather than a subquery, because Citus refuses policies with
-- subqueries on its tables; it reads this node's placement of model_names
-- on Citus, and keeps its answer per statement for a bulk write.
CREATE FUNCTION recsys.model_owned(model text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'model_owned' LANGUAGE C STABLE STRICT PARALLEL SAFE SECURITY INVOKER;
COMMENT ON FUNCTION recsys.model_owned(text) IS
	'whether the current role is a member of the owner role of a model name (false for an unknown name); the store''s row-level security test';

-- Which relation this node reads for a store table: its Citus placement
-- (recsys.models_<shardid>) where there is one, else the table.
CREATE FUNCTION recsys.store_relation(store_table text) RETURNS regclass
	AS 'MODULE_PATHNAME', 'model_store_relation' LANGUAGE C STABLE STRICT PARALLEL SAFE SECURITY INVOKER;
COMMENT ON FUNCTION recsys.store_relation(text) IS
	'the relation this node reads for a store table (model_names, models, user_vectors, item_vectors): its Citus placement on this node when there is one, else the table';

-- Get the next version number of a model, holding a lock on its name row
-- until the transaction ends, so that concurrent writers number distinctly.
-- A new name is created owned by the current role; an existing name may be
-- extended only by members of its owner role.  Locking the row needs UPDATE
-- on recsys.model_names and ownership: a role without store grants cannot
-- block anyone's imports.
CREATE FUNCTION recsys.next_model_version(model text) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	o regrole;
BEGIN
	PERFORM recsys.check_model_name(p_model);
	INSERT INTO recsys.model_names AS n (name) VALUES (p_model) ON CONFLICT (name) DO NOTHING;
	SELECT n.owner INTO o FROM recsys.model_names n WHERE n.name OPERATOR(pg_catalog.=) p_model FOR UPDATE;
	IF o IS NULL THEN
		-- row-level security hid the row from FOR UPDATE: someone else owns it
		SELECT n.owner INTO o FROM recsys.model_names n WHERE n.name OPERATOR(pg_catalog.=) p_model;
		RAISE EXCEPTION 'permission denied for model "%"', p_model
			USING ERRCODE = 'insufficient_privilege',
				DETAIL = format('Model "%s" belongs to role %s.', p_model, o),
				HINT = 'Only members of the owner role add versions to a model or drop it; choose another name.';
	END IF;
	RETURN coalesce((SELECT max(m.version) FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model), 0)
		OPERATOR(pg_catalog.+) 1;
END
$$;
COMMENT ON FUNCTION recsys.next_model_version(text) IS
	'next version number of a model (creates the name owned by the current role if new; requires ownership otherwise; locks the name until the transaction ends)';

-- Get the stored version to use: the one named, else the newest.
CREATE FUNCTION recsys.resolve_model_version(model text, version int DEFAULT NULL) RETURNS int
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_version int := $2;
	v int;
BEGIN
	-- this node's placement on Citus (see recsys.store_relation)
	EXECUTE format('SELECT max(m.version) FROM %s m WHERE m.name OPERATOR(pg_catalog.=) $1'
		' AND ($2 IS NULL OR m.version OPERATOR(pg_catalog.=) $2)', recsys.store_relation('models'))
		INTO v USING p_model, p_version;
	IF v IS NULL THEN
		IF p_version IS NULL THEN
			RAISE EXCEPTION 'model "%" does not exist', p_model USING ERRCODE = 'undefined_object';
		END IF;
		RAISE EXCEPTION 'model "%" has no version %', p_model, p_version USING ERRCODE = 'undefined_object';
	END IF;
	RETURN v;
END
$$;
COMMENT ON FUNCTION recsys.resolve_model_version(text, int) IS
	'the version of a model to use: the one given, else the newest; error if none';

-- Delete one version of a model, or all of them (and the name) when version
-- is NULL.  Only members of the owner role may.
CREATE FUNCTION recsys.drop_model(model text, version int DEFAULT NULL) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_version int := $2;
	n int;
	o regrole;
BEGIN
	DELETE FROM recsys.models m
		WHERE m.name OPERATOR(pg_catalog.=) p_model
			AND (p_version IS NULL OR m.version OPERATOR(pg_catalog.=) p_version);
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n OPERATOR(pg_catalog.=) 0 THEN
		IF EXISTS (SELECT 1 FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model
				AND (p_version IS NULL OR m.version OPERATOR(pg_catalog.=) p_version)) THEN
			SELECT nm.owner INTO o FROM recsys.model_names nm WHERE nm.name OPERATOR(pg_catalog.=) p_model;
			RAISE EXCEPTION 'permission denied for model "%"', p_model
				USING ERRCODE = 'insufficient_privilege',
					DETAIL = format('Model "%s" belongs to role %s.', p_model, o),
					HINT = 'Only members of the owner role drop a model.';
		END IF;
		IF p_version IS NULL THEN
			RAISE EXCEPTION 'model "%" does not exist', p_model USING ERRCODE = 'undefined_object';
		END IF;
		RAISE EXCEPTION 'model "%" has no version %', p_model, p_version USING ERRCODE = 'undefined_object';
	END IF;
	-- a name without versions is released
	DELETE FROM recsys.model_names mn WHERE mn.name OPERATOR(pg_catalog.=) p_model
		AND NOT EXISTS (SELECT 1 FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model);
	RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.drop_model(text, int) IS
	'delete one version of a model, or all its versions (and its name) when version is NULL; returns the number deleted; only members of the owner role may';

CREATE FUNCTION recsys.model_cache()
	RETURNS TABLE(name text, version int, bytes bigint, lookups bigint, pins int, loaded_at timestamptz, kind text)
	AS 'MODULE_PATHNAME', 'model_cache' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.model_cache() IS
	'the models of every kind this backend caches: memory, statement-level lookups served, statements pinning it, load time, kind';
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
-- The driver is C (src/train_embeddings.c): prepare, epochs, store.

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
	'train user and item embeddings over an interactions table (method als, sogram, sagram or sampled; als on the memory or the aggregate engine) and store them as a new version of the model; one row (and NOTICE) per epoch';
-- Serving trained embeddings: vectors, recommendations, fold-in of new users

-- Get the version of an embeddings model to serve: the one given, else the
-- newest (errors for unknown models and versions, and for other kinds).
CREATE FUNCTION recsys.embedding_model_version(model text, version int DEFAULT NULL) RETURNS int
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
	v int;
	k text;
BEGIN
	IF model IS NULL THEN
		RAISE EXCEPTION 'model must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF version < 1 THEN
		RAISE EXCEPTION 'version must be at least 1' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- the version (and its errors) as every model function resolves it
	v := recsys.resolve_model_version(model, version);
	-- this node's placement on Citus (see recsys.store_relation)
	EXECUTE format('SELECT m.kind FROM %s m WHERE m.name OPERATOR(pg_catalog.=) $1'
		' AND m.version OPERATOR(pg_catalog.=) $2', recsys.store_relation('models'))
		INTO k USING model, v;
	IF k OPERATOR(pg_catalog.<>) 'embeddings' THEN
		RAISE EXCEPTION 'model "%" version % is of kind "%", not "embeddings"', model, v, k
			USING ERRCODE = 'wrong_object_type';
	END IF;
	RETURN v;
END
$$;
COMMENT ON FUNCTION recsys.embedding_model_version(text, int) IS
	'the version of an embeddings model to serve: the one given, else the newest; error if none or of another kind';

CREATE FUNCTION recsys.user_embeddings(model text, version int DEFAULT NULL)
RETURNS TABLE(id bigint, embedding real[])
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	-- PL/pgSQL reading this node's placement on Citus, where a parameterized
	-- SQL function over a reference table cannot be planned
	RETURN QUERY EXECUTE format('SELECT u.id, u.embedding FROM %s u'
		' WHERE u.model OPERATOR(pg_catalog.=) $1 AND u.version OPERATOR(pg_catalog.=) $2'
		' ORDER BY u.id', recsys.store_relation('user_vectors'))
		USING $1, recsys.embedding_model_version($1, $2);
END
$$;
COMMENT ON FUNCTION recsys.user_embeddings(text, int) IS
	'user vectors of a version of an embeddings model (default: the newest), in id order';

CREATE FUNCTION recsys.item_embeddings(model text, version int DEFAULT NULL)
RETURNS TABLE(id bigint, embedding real[])
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	-- PL/pgSQL reading this node's placement on Citus, where a parameterized
	-- SQL function over a reference table cannot be planned
	RETURN QUERY EXECUTE format('SELECT v.id, v.embedding FROM %s v'
		' WHERE v.model OPERATOR(pg_catalog.=) $1 AND v.version OPERATOR(pg_catalog.=) $2'
		' ORDER BY v.id', recsys.store_relation('item_vectors'))
		USING $1, recsys.embedding_model_version($1, $2);
END
$$;
COMMENT ON FUNCTION recsys.item_embeddings(text, int) IS
	'item vectors of a version of an embeddings model (default: the newest), in id order';

CREATE FUNCTION recsys.recommend(model text, user_id bigint, k int DEFAULT 10,
	exclude_seen boolean DEFAULT true, version int DEFAULT NULL)
RETURNS TABLE(item_id bigint, score real)
	AS 'MODULE_PATHNAME', 'embedding_recommend' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION recsys.recommend(text, bigint, int, boolean, int) IS
	'top-k items of a stored user by <x_u, y_i> under a version of an embeddings model (default: the newest), best first (ties: smaller id), without the user''s training items when exclude_seen; no rows for an unknown or NULL user';

CREATE FUNCTION recsys.recommend_all(model text, k int DEFAULT 10, users bigint[] DEFAULT NULL,
	exclude_seen boolean DEFAULT true, version int DEFAULT NULL)
RETURNS TABLE(user_id bigint, item_id bigint, score real, rank int)
	AS 'MODULE_PATHNAME', 'embedding_recommend_all' LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100000;
COMMENT ON FUNCTION recsys.recommend_all(text, int, bigint[], boolean, int) IS
	'top-k items of every stored user of an embeddings model (or of the users listed), scored in blocks with sgemm: the rows recommend gives each user, with their rank, in user order';

CREATE FUNCTION recsys.fold_in(model text, items bigint[], weights real[] DEFAULT NULL,
	version int DEFAULT NULL) RETURNS real[]
	AS 'MODULE_PATHNAME', 'embedding_fold_in' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.fold_in(text, bigint[], real[], int) IS
	'user vector that the model''s training objective gives a user with these items (confidences: weights, default 1): one implicit-ALS user step against the stored item vectors and Gramian; unknown items skipped (NOTICE); NULL when none is known';

CREATE FUNCTION recsys.recommend_for_items(model text, items bigint[], k int DEFAULT 10,
	weights real[] DEFAULT NULL, exclude_seen boolean DEFAULT true, version int DEFAULT NULL)
RETURNS TABLE(item_id bigint, score real)
	AS 'MODULE_PATHNAME', 'embedding_recommend_for_items' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION recsys.recommend_for_items(text, bigint[], int, real[], boolean, int) IS
	'top-k items for a user given by items (fold_in, then scoring), best first (ties: smaller id), without the given items when exclude_seen; no rows when no item is known';

CREATE FUNCTION recsys.recommend_all_for_items(model text, interactions regclass,
	user_column name DEFAULT 'user_id', item_column name DEFAULT 'item_id',
	weight_column name DEFAULT NULL, k int DEFAULT 10, exclude_seen boolean DEFAULT true,
	version int DEFAULT NULL)
RETURNS TABLE(user_id bigint, item_id bigint, score real, rank int)
	AS 'MODULE_PATHNAME', 'embedding_recommend_all_for_items' LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100000;
COMMENT ON FUNCTION recsys.recommend_all_for_items(text, regclass, name, name, name, int, boolean, int) IS
	'top-k items for every user of an interactions table by fold-in of the user''s rows (repeated items add their weights), in user order with ranks; users with no known item get no rows (NOTICE)';
-- Stored MMoE models: import/export (safetensors) and scoring (src/mmoe_sql.c)

CREATE FUNCTION recsys.mmoe_validate(weights bytea, config jsonb DEFAULT NULL)
	RETURNS TABLE(valid_config jsonb, safetensors bytea)
	AS 'MODULE_PATHNAME', 'mmoe_validate' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.mmoe_validate(bytea, jsonb) IS
	'check a safetensors file against an MMoE config (argument, else __metadata__.recsys); returns the config and the canonical file with the config embedded';

CREATE FUNCTION recsys.import_model(model text, weights bytea, config jsonb DEFAULT NULL) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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
	'import an MMoE model from safetensors bytes (config from the argument or __metadata__.recsys) as the next version of model; returns the version';

CREATE FUNCTION recsys.export_model(model text, version int DEFAULT NULL) RETURNS bytea
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
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
-- (categorical => ..., context => ..., display_position => ..., version => ...).
-- The C functions set no search_path: they run no SQL but the model store's
-- schema-qualified lookup, and a SET clause would cost a GUC save and
-- restore on every row.
CREATE FUNCTION recsys.predict(model text, features real[], categorical int[] DEFAULT NULL,
	context real[] DEFAULT NULL, display_position int DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'mmoe_predict' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict(text, real[], int[], real[], int, int) IS
	'score one row with a stored MMoE model: one output per task in config order (probability for binary tasks, value for regression)';

CREATE FUNCTION recsys.predict(model text, features double precision[], categorical int[] DEFAULT NULL,
	context double precision[] DEFAULT NULL, display_position int DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'mmoe_predict' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict(text, double precision[], int[], double precision[], int, int) IS
	'score one row with a stored MMoE model: one output per task in config order (probability for binary tasks, value for regression)';

CREATE FUNCTION recsys.predict(model text, features real[], task text, categorical int[] DEFAULT NULL,
	context real[] DEFAULT NULL, display_position int DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real
	AS 'MODULE_PATHNAME', 'mmoe_predict_task' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict(text, real[], text, int[], real[], int, int) IS
	'score one row with a stored MMoE model for one task';

CREATE FUNCTION recsys.predict(model text, features double precision[], task text, categorical int[] DEFAULT NULL,
	context double precision[] DEFAULT NULL, display_position int DEFAULT NULL, version int DEFAULT NULL)
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
	categorical int[] DEFAULT NULL, context real[] DEFAULT NULL, display_position int DEFAULT NULL,
	version int DEFAULT NULL)
	RETURNS TABLE(task text, mean real, variance real)
	AS 'MODULE_PATHNAME', 'mmoe_predict_mc' LANGUAGE C STABLE PARALLEL SAFE ROWS 4;
COMMENT ON FUNCTION recsys.predict_mc(text, real[], int, int, int[], real[], int, int) IS
	'MC-dropout uncertainty for one row: per task, mean and variance of the output over samples passes with the config''s dropout rate (reproducible for a seed)';

CREATE FUNCTION recsys.predict_mc(model text, features double precision[], samples int DEFAULT 32, seed int DEFAULT 0,
	categorical int[] DEFAULT NULL, context double precision[] DEFAULT NULL, display_position int DEFAULT NULL,
	version int DEFAULT NULL)
	RETURNS TABLE(task text, mean real, variance real)
	AS 'MODULE_PATHNAME', 'mmoe_predict_mc' LANGUAGE C STABLE PARALLEL SAFE ROWS 4;
COMMENT ON FUNCTION recsys.predict_mc(text, double precision[], int, int, int[], double precision[], int, int) IS
	'MC-dropout uncertainty for one row: per task, mean and variance of the output over samples passes with the config''s dropout rate (reproducible for a seed)';

CREATE FUNCTION recsys.predict_batch(model text, features real[], categorical int[] DEFAULT NULL,
	context real[] DEFAULT NULL, display_positions int[] DEFAULT NULL, version int DEFAULT NULL)
	RETURNS TABLE(i int, scores real[])
	AS 'MODULE_PATHNAME', 'mmoe_predict_batch' LANGUAGE C STABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION recsys.predict_batch(text, real[], int[], real[], int[], int) IS
	'score a batch (features real[][], one row per candidate; categorical int[][], context real[][], display_positions int[] with NULL = missing) with BLAS sgemm: row number i (1-based) and the outputs per task';

CREATE FUNCTION recsys.predict_batch(model text, features double precision[], categorical int[] DEFAULT NULL,
	context double precision[] DEFAULT NULL, display_positions int[] DEFAULT NULL, version int DEFAULT NULL)
	RETURNS TABLE(i int, scores real[])
	AS 'MODULE_PATHNAME', 'mmoe_predict_batch' LANGUAGE C STABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION recsys.predict_batch(text, double precision[], int[], double precision[], int[], int) IS
	'score a batch (features double precision[][], one row per candidate) with BLAS sgemm: row number i (1-based) and the outputs per task';

-- Batched scoring of candidate sets (src/mmoe_topk.c, src/mmoe_table.c)
CREATE TYPE recsys.ranked_item AS (item_id bigint, score real);
COMMENT ON TYPE recsys.ranked_item IS
	'an item and its score, as recsys.predict_top_k returns them (best first)';

CREATE FUNCTION recsys.predict_top_k_step(state bytea, model text, features real[], item_id bigint,
	k int, task_weights real[])
	RETURNS bytea
	AS 'MODULE_PATHNAME', 'mmoe_predict_top_k_step' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict_top_k_step(bytea, text, real[], bigint, int, real[]) IS
	'transition function of recsys.predict_top_k: buffers the row, scores a full block with the model';

CREATE FUNCTION recsys.predict_top_k_step(state bytea, model text, features real[], categorical int[],
	item_id bigint, k int, task_weights real[])
	RETURNS bytea
	AS 'MODULE_PATHNAME', 'mmoe_predict_top_k_step_categorical' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict_top_k_step(bytea, text, real[], int[], bigint, int, real[]) IS
	'transition function of recsys.predict_top_k with categorical ids';

CREATE FUNCTION recsys.predict_top_k_step(state bytea, model text, features double precision[], item_id bigint,
	k int, task_weights real[])
	RETURNS bytea
	AS 'MODULE_PATHNAME', 'mmoe_predict_top_k_step' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict_top_k_step(bytea, text, double precision[], bigint, int, real[]) IS
	'transition function of recsys.predict_top_k (double precision features)';

CREATE FUNCTION recsys.predict_top_k_step(state bytea, model text, features double precision[], categorical int[],
	item_id bigint, k int, task_weights real[])
	RETURNS bytea
	AS 'MODULE_PATHNAME', 'mmoe_predict_top_k_step_categorical' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict_top_k_step(bytea, text, double precision[], int[], bigint, int, real[]) IS
	'transition function of recsys.predict_top_k with categorical ids (double precision features)';

CREATE FUNCTION recsys.predict_top_k_combine(state1 bytea, state2 bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'mmoe_predict_top_k_combine' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict_top_k_combine(bytea, bytea) IS
	'combine function of recsys.predict_top_k: scores both buffers and merges the kept lists';

CREATE FUNCTION recsys.predict_top_k_final(state bytea) RETURNS recsys.ranked_item[]
	AS 'MODULE_PATHNAME', 'mmoe_predict_top_k_final' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict_top_k_final(bytea) IS
	'final function of recsys.predict_top_k: scores the rows still buffered and returns the best k, best first';

CREATE AGGREGATE recsys.predict_top_k(model text, features real[], item_id bigint, k int, task_weights real[]) (
	SFUNC = recsys.predict_top_k_step,
	STYPE = bytea,
	SSPACE = 65536,
	FINALFUNC = recsys.predict_top_k_final,
	COMBINEFUNC = recsys.predict_top_k_combine,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.predict_top_k(text, real[], bigint, int, real[]) IS
	'the k items of a group with the highest score (task_weights-weighted sum of the task outputs) under a stored MMoE model, best first, ties to the smaller item_id; rows are scored in blocks with sgemm';

CREATE AGGREGATE recsys.predict_top_k(model text, features real[], categorical int[], item_id bigint, k int,
	task_weights real[]) (
	SFUNC = recsys.predict_top_k_step,
	STYPE = bytea,
	SSPACE = 65536,
	FINALFUNC = recsys.predict_top_k_final,
	COMBINEFUNC = recsys.predict_top_k_combine,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.predict_top_k(text, real[], int[], bigint, int, real[]) IS
	'the k items of a group with the highest score under a stored MMoE model with categorical features, best first, ties to the smaller item_id';

CREATE AGGREGATE recsys.predict_top_k(model text, features double precision[], item_id bigint, k int,
	task_weights real[]) (
	SFUNC = recsys.predict_top_k_step,
	STYPE = bytea,
	SSPACE = 65536,
	FINALFUNC = recsys.predict_top_k_final,
	COMBINEFUNC = recsys.predict_top_k_combine,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.predict_top_k(text, double precision[], bigint, int, real[]) IS
	'the k items of a group with the highest score under a stored MMoE model (double precision features), best first, ties to the smaller item_id';

CREATE AGGREGATE recsys.predict_top_k(model text, features double precision[], categorical int[], item_id bigint,
	k int, task_weights real[]) (
	SFUNC = recsys.predict_top_k_step,
	STYPE = bytea,
	SSPACE = 65536,
	FINALFUNC = recsys.predict_top_k_final,
	COMBINEFUNC = recsys.predict_top_k_combine,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.predict_top_k(text, double precision[], int[], bigint, int, real[]) IS
	'the k items of a group with the highest score under a stored MMoE model with categorical features (double precision features), best first, ties to the smaller item_id';

CREATE FUNCTION recsys.predict_table(model text, candidates regclass, id_column name, features_column name,
	categorical_column name DEFAULT NULL, context_column name DEFAULT NULL,
	display_position_column name DEFAULT NULL, version int DEFAULT NULL)
	RETURNS TABLE(id bigint, scores real[])
	AS 'MODULE_PATHNAME', 'mmoe_predict_table' LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100000;
COMMENT ON FUNCTION recsys.predict_table(text, regclass, name, name, name, name, name, int) IS
	'score every row of a candidate table (read through a cursor in blocks of 256 rows, each scored with sgemm): the id and the outputs per task';
-- Training MMoE models in the database (src/mmoe_train.c, src/mmoe_backward.c)

CREATE FUNCTION recsys.train_mmoe(model text, source regclass, features_column name,
	label_columns name[], config jsonb, epochs int DEFAULT 10, batch_size int DEFAULT 256,
	learning_rate double precision DEFAULT 0.001, loss_weighting text DEFAULT 'uncertainty',
	categorical_column name DEFAULT NULL, context_column name DEFAULT NULL,
	display_position_column name DEFAULT NULL, validation regclass DEFAULT NULL,
	options jsonb DEFAULT '{}', seed bigint DEFAULT 0)
	RETURNS TABLE(epoch int, loss double precision, task_losses double precision[],
		log_vars double precision[], validation jsonb, seconds double precision)
	AS 'MODULE_PATHNAME', 'mmoe_train' LANGUAGE C VOLATILE SECURITY INVOKER
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.train_mmoe(text, regclass, name, name[], jsonb, int, int,
	double precision, text, name, name, name, regclass, jsonb, bigint) IS
	'train an MMoE model (minibatch Adam, uncertainty-weighted or fixed multi-task loss) on the rows of source and store it as the next version of model; one row per epoch with the training loss, per-task losses, log variances and validation metrics';
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
-- Rules of the model store, enforced for the functions and for direct DML alike
-- (in forms Citus accepts on reference tables: policies without subqueries,
-- triggers that touch only this node's relations):
--  * ownership: a model name belongs to the role that created it; only members
--    of that role add versions, change or drop them (row-level security; roles
--    that bypass RLS, such as superusers, are not limited);
--  * provenance: created_by is the role that inserted the version;
--  * cache identity: any write to a model's vectors touches its models row.

ALTER TABLE recsys.model_names ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.models ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.user_vectors ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.item_vectors ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS model_names_read ON recsys.model_names;
DROP POLICY IF EXISTS model_names_owner ON recsys.model_names;
CREATE POLICY model_names_read ON recsys.model_names FOR SELECT USING (true);
CREATE POLICY model_names_owner ON recsys.model_names FOR ALL
	USING (pg_catalog.pg_has_role(owner, 'MEMBER'))
	WITH CHECK (pg_catalog.pg_has_role(owner, 'MEMBER'));

DROP POLICY IF EXISTS models_read ON recsys.models;
DROP POLICY IF EXISTS models_insert ON recsys.models;
DROP POLICY IF EXISTS models_update ON recsys.models;
DROP POLICY IF EXISTS models_delete ON recsys.models;
CREATE POLICY models_read ON recsys.models FOR SELECT USING (true);
CREATE POLICY models_insert ON recsys.models FOR INSERT
	WITH CHECK (created_by OPERATOR(pg_catalog.=) CURRENT_USER AND recsys.model_owned(name));
CREATE POLICY models_update ON recsys.models FOR UPDATE
	USING (recsys.model_owned(name));
CREATE POLICY models_delete ON recsys.models FOR DELETE
	USING (recsys.model_owned(name));

DROP POLICY IF EXISTS user_vectors_read ON recsys.user_vectors;
DROP POLICY IF EXISTS user_vectors_owner ON recsys.user_vectors;
CREATE POLICY user_vectors_read ON recsys.user_vectors FOR SELECT USING (true);
CREATE POLICY user_vectors_owner ON recsys.user_vectors FOR ALL
	USING (recsys.model_owned(model)) WITH CHECK (recsys.model_owned(model));

DROP POLICY IF EXISTS item_vectors_read ON recsys.item_vectors;
DROP POLICY IF EXISTS item_vectors_owner ON recsys.item_vectors;
CREATE POLICY item_vectors_read ON recsys.item_vectors FOR SELECT USING (true);
CREATE POLICY item_vectors_owner ON recsys.item_vectors FOR ALL
	USING (recsys.model_owned(model)) WITH CHECK (recsys.model_owned(model));

-- Touch the models rows of the vectors a statement wrote (see the table
-- comment).  On Citus the trigger fires on each node's placement of the
-- vectors and touches that node's placement of models (every placement gets
-- the same writes, so every node bumps its own copy); on one node it touches
-- recsys.models.
CREATE FUNCTION recsys.vectors_touch_models() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	models regclass := recsys.store_relation('models');
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		EXECUTE format('UPDATE %s m SET revision = m.revision OPERATOR(pg_catalog.+) 1'
			' WHERE m.kind OPERATOR(pg_catalog.=) ''embeddings''', models);
	ELSIF TG_OP = 'INSERT' THEN
		EXECUTE format('UPDATE %s m SET revision = m.revision OPERATOR(pg_catalog.+) 1'
			' FROM (SELECT DISTINCT c.model, c.version FROM new_rows c) c'
			' WHERE m.name OPERATOR(pg_catalog.=) c.model AND m.version OPERATOR(pg_catalog.=) c.version', models);
	ELSE
		-- UPDATE and DELETE: the rows' old models (an UPDATE may move rows)
		EXECUTE format('UPDATE %s m SET revision = m.revision OPERATOR(pg_catalog.+) 1'
			' FROM (SELECT DISTINCT c.model, c.version FROM old_rows c) c'
			' WHERE m.name OPERATOR(pg_catalog.=) c.model AND m.version OPERATOR(pg_catalog.=) c.version', models);
		IF TG_OP = 'UPDATE' THEN
			EXECUTE format('UPDATE %s m SET revision = m.revision OPERATOR(pg_catalog.+) 1'
				' FROM (SELECT DISTINCT c.model, c.version FROM new_rows c'
				' EXCEPT SELECT o.model, o.version FROM old_rows o) c'
				' WHERE m.name OPERATOR(pg_catalog.=) c.model AND m.version OPERATOR(pg_catalog.=) c.version', models);
		END IF;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION recsys.vectors_touch_models() IS
	'internal trigger: any write to user_vectors or item_vectors bumps models.revision of the models written, so cached vectors are never served after a change';

-- Transition tables are named, not schema-qualified: a relation of the
-- statement itself, which no object on any search_path can shadow.
CREATE OR REPLACE TRIGGER touch_models_insert AFTER INSERT ON recsys.user_vectors
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recsys.vectors_touch_models();
CREATE OR REPLACE TRIGGER touch_models_update AFTER UPDATE ON recsys.user_vectors
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recsys.vectors_touch_models();
CREATE OR REPLACE TRIGGER touch_models_delete AFTER DELETE ON recsys.user_vectors
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION recsys.vectors_touch_models();
CREATE OR REPLACE TRIGGER touch_models_truncate AFTER TRUNCATE ON recsys.user_vectors
	FOR EACH STATEMENT EXECUTE FUNCTION recsys.vectors_touch_models();
CREATE OR REPLACE TRIGGER touch_models_insert AFTER INSERT ON recsys.item_vectors
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recsys.vectors_touch_models();
CREATE OR REPLACE TRIGGER touch_models_update AFTER UPDATE ON recsys.item_vectors
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recsys.vectors_touch_models();
CREATE OR REPLACE TRIGGER touch_models_delete AFTER DELETE ON recsys.item_vectors
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION recsys.vectors_touch_models();
CREATE OR REPLACE TRIGGER touch_models_truncate AFTER TRUNCATE ON recsys.item_vectors
	FOR EACH STATEMENT EXECUTE FUNCTION recsys.vectors_touch_models();
-- The model store on a Citus cluster: its four tables as reference tables
-- (a copy on every node, written through Citus's two-phase commit), so that
-- functions running on the workers read models where the query runs.  The
-- install script converts the store itself on a coordinator
-- (99_citus_install.sql); these functions are for a cluster where Citus came
-- after recsys, and for DROP EXTENSION.  See doc/citus.md.

-- Citus functions are called by their pg_catalog names: they exist only
-- where the citus extension is created, which both functions check first.

-- Raise an error unless this database is a Citus coordinator
CREATE FUNCTION recsys.citus_check_coordinator(caller text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	g int;
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
		RAISE EXCEPTION '% needs the citus extension in this database', caller
			USING ERRCODE = 'object_not_in_prerequisite_state',
				HINT = 'Without Citus the store is a set of ordinary tables; there is nothing to attach or detach.';
	END IF;
	EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO g;
	IF g IS DISTINCT FROM 0 THEN
		RAISE EXCEPTION '% must run on the Citus coordinator', caller
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
END
$$;
COMMENT ON FUNCTION recsys.citus_check_coordinator(text) IS
	'internal: raise an error unless this database is a Citus coordinator';

-- Make the store's tables Citus reference tables (idempotent).
CREATE FUNCTION recsys.citus_attach_store() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	store regclass[] := ARRAY['recsys.model_names', 'recsys.models', 'recsys.user_vectors',
		'recsys.item_vectors']::regclass[];
	fkeys text[] := ARRAY['recsys.models', 'models_name_fkey',
		'recsys.user_vectors', 'user_vectors_model_version_fkey',
		'recsys.item_vectors', 'item_vectors_model_version_fkey'];
	n int;
	t regclass;
	r record;
BEGIN
	PERFORM recsys.citus_check_coordinator('recsys.citus_attach_store()');
	EXECUTE 'SELECT count(*) FROM pg_catalog.pg_dist_partition p'
		' WHERE p.logicalrelid OPERATOR(pg_catalog.=) ANY ($1)' INTO n USING store;
	IF n OPERATOR(pg_catalog.=) 4 THEN
		RETURN;
	ELSIF n OPERATOR(pg_catalog.<>) 0 THEN
		RAISE EXCEPTION 'only % of the 4 store tables are Citus tables', n
			USING ERRCODE = 'object_not_in_prerequisite_state',
				HINT = 'Undistribute them (undistribute_table) and call recsys.citus_attach_store() again.';
	END IF;
	-- the store's triggers (vectors_touch_models) fire per placement and
	-- compute nothing that could differ between nodes
	PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
	-- Citus cannot convert a table that a local table references, and would
	-- re-create on the workers the foreign keys that their copies of the
	-- extension's tables may already have: drop them everywhere first
	-- (run_command_on_workers commits on the workers at once; a failure
	-- below leaves the workers' tables without them, which is harmless: a
	-- worker's own store is never written while the coordinator's is local)
	FOR i IN 1 .. 3 LOOP
		EXECUTE format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', fkeys[2 * i - 1], fkeys[2 * i]);
		FOR r IN EXECUTE 'SELECT w.nodename, w.nodeport, w.success, w.result'
				' FROM pg_catalog.run_command_on_workers($1) w'
				USING format('ALTER TABLE IF EXISTS %s DROP CONSTRAINT IF EXISTS %I', fkeys[2 * i - 1], fkeys[2 * i]) LOOP
			IF NOT r.success THEN
				RAISE EXCEPTION 'could not prepare the store on worker %:%', r.nodename, r.nodeport
					USING ERRCODE = 'external_routine_exception', DETAIL = r.result;
			END IF;
		END LOOP;
	END LOOP;
	FOREACH t IN ARRAY store LOOP
		EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING t;
	END LOOP;
	-- Citus copies these to the workers' tables and to every placement
	ALTER TABLE recsys.models ADD CONSTRAINT models_name_fkey
		FOREIGN KEY (name) REFERENCES recsys.model_names (name) ON DELETE CASCADE;
	ALTER TABLE recsys.user_vectors ADD CONSTRAINT user_vectors_model_version_fkey
		FOREIGN KEY (model, version) REFERENCES recsys.models (name, version) ON DELETE CASCADE;
	ALTER TABLE recsys.item_vectors ADD CONSTRAINT item_vectors_model_version_fkey
		FOREIGN KEY (model, version) REFERENCES recsys.models (name, version) ON DELETE CASCADE;
	PERFORM recsys.citus_release_placements();
END
$$;
COMMENT ON FUNCTION recsys.citus_attach_store() IS
	'on a Citus coordinator: make the model store (model_names, models, user_vectors, item_vectors) reference tables, copied to every node; CREATE EXTENSION does it by itself where Citus was there first (idempotent)';

-- A placement created while the install script runs (the coordinator's)
-- becomes a member of the extension; Citus could then not drop it.  Take the
-- placements out of the extension.
CREATE FUNCTION recsys.citus_release_placements() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t text;
	rel regclass;
BEGIN
	-- by name (store_relation), not from pg_class: Citus hides placements
	-- from queries of pg_class
	FOREACH t IN ARRAY ARRAY['model_names', 'models', 'user_vectors', 'item_vectors'] LOOP
		rel := recsys.store_relation(t);
		IF rel OPERATOR(pg_catalog.<>) format('recsys.%I', t)::pg_catalog.regclass
			AND EXISTS (SELECT FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e
					ON e.oid OPERATOR(pg_catalog.=) d.refobjid
				WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
					AND d.objid OPERATOR(pg_catalog.=) rel AND d.deptype OPERATOR(pg_catalog.=) 'e'
					AND e.extname OPERATOR(pg_catalog.=) 'recsys') THEN
			EXECUTE format('ALTER EXTENSION recsys DROP TABLE %s', rel);
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION recsys.citus_release_placements() IS
	'internal: take this node''s Citus placements of the store tables out of the extension, so that Citus can drop them';

-- Empty the store on every node and drop its placements: required before
-- DROP EXTENSION recsys on Citus, which would leave the placements (and the
-- weights in them) on the nodes.
CREATE FUNCTION recsys.citus_detach_store() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	store regclass[] := ARRAY['recsys.item_vectors', 'recsys.user_vectors', 'recsys.models',
		'recsys.model_names']::regclass[];
	t regclass;
BEGIN
	PERFORM recsys.citus_check_coordinator('recsys.citus_detach_store()');
	PERFORM recsys.citus_release_placements();
	-- through Citus's two-phase commit: no weights remain on any node
	TRUNCATE recsys.item_vectors, recsys.user_vectors, recsys.models, recsys.model_names;
	FOREACH t IN ARRAY store LOOP
		EXECUTE 'SELECT pg_catalog.citus_drop_all_shards($1, $2, $3)'
			USING t, 'recsys', (SELECT c.relname::text FROM pg_catalog.pg_class c
				WHERE c.oid OPERATOR(pg_catalog.=) t);
	END LOOP;
END
$$;
COMMENT ON FUNCTION recsys.citus_detach_store() IS
	'on a Citus coordinator, before DROP EXTENSION recsys: delete every stored model on every node and drop the store''s placements (the store is unusable afterwards)';
-- Install script only (not part of upgrades): on a Citus coordinator with
-- nodes, the store becomes reference tables at once, so that CREATE
-- EXTENSION on the coordinator is all a cluster needs.  Workers (whose
-- copies of this script Citus runs) and servers without Citus skip it.
DO $$
DECLARE
	g int;
	nodes int;
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
		EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO g;
		EXECUTE 'SELECT count(*) FROM pg_catalog.pg_dist_node WHERE noderole OPERATOR(pg_catalog.=) ''primary'''
			INTO nodes;
		IF g OPERATOR(pg_catalog.=) 0 AND nodes OPERATOR(pg_catalog.>) 0 THEN
			PERFORM recsys.citus_attach_store();
		END IF;
	END IF;
END
$$;
