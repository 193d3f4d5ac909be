-- Stored MMoE models: import/export (safetensors) and scoring (src/mmoe/sql.c)

CREATE FUNCTION recsys.mmoe_validate(weights bytea, config jsonb DEFAULT NULL)
	RETURNS TABLE(valid_config jsonb, safetensors bytea)
	AS 'MODULE_PATHNAME', 'mmoe_validate' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.mmoe_validate(bytea, jsonb) IS
	'check a safetensors file against an MMoE config (argument, else __metadata__.recsys); returns the config and the canonical file with the config embedded';

CREATE FUNCTION recsys.import_model(model text, weights bytea, config jsonb DEFAULT NULL) RETURNS int
LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
	SELECT recsys.import_model($1, $2, $3, '{}'::jsonb)
$$;
COMMENT ON FUNCTION recsys.import_model(text, bytea, jsonb) IS
	'import an MMoE model from safetensors bytes (config from the argument or __metadata__.recsys) as the next version of model; returns the version';

-- options are the store's: promote, allow_contract_change (a fourth
-- argument without default, so that the three-argument calls keep naming
-- the form above)
CREATE FUNCTION recsys.import_model(model text, weights bytea, config jsonb, options jsonb) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v int;
	checked record;
BEGIN
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'model name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF $4 IS NOT NULL AND pg_catalog.jsonb_typeof($4) OPERATOR(pg_catalog.=) 'object' THEN
		IF EXISTS (SELECT FROM pg_catalog.jsonb_object_keys($4) k
				WHERE k OPERATOR(pg_catalog.<>) ALL (ARRAY['promote', 'allow_contract_change'])) THEN
			RAISE EXCEPTION 'unknown option "%"', (SELECT k FROM pg_catalog.jsonb_object_keys($4) k
					WHERE k OPERATOR(pg_catalog.<>) ALL (ARRAY['promote', 'allow_contract_change']) LIMIT 1)
				USING ERRCODE = 'invalid_parameter_value',
					HINT = 'Options of import_model are promote and allow_contract_change.';
		END IF;
	END IF;
	SELECT c.valid_config, c.safetensors INTO checked FROM recsys.mmoe_validate($2, $3) c;
	v := recsys.begin_model_version($1, 'mmoe', checked.valid_config, $4);
	INSERT INTO recsys.models (name, version, kind, config, weights)
		VALUES ($1, v, 'mmoe', checked.valid_config, checked.safetensors);
	PERFORM recsys.finish_model_version($1, v, 'imported', $4);
	RETURN v;
END
$$;
COMMENT ON FUNCTION recsys.import_model(text, bytea, jsonb, jsonb) IS
	'import an MMoE model from safetensors bytes (config from the argument, or NULL for __metadata__.recsys) as the next version of model, with options promote and allow_contract_change; returns the version';

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
	-- a two-tower model's weights carry their config (__metadata__.recsys): doc/two-tower.md
	IF m.kind = 'embeddings' AND m.config ->> 'method' = 'two_tower' AND m.weights IS NOT NULL THEN
		RETURN m.weights;
	END IF;
	IF m.kind <> 'mmoe' THEN
		RAISE EXCEPTION 'model "%" version % is of kind "%", not "mmoe"', $1, v, m.kind
			USING ERRCODE = 'wrong_object_type',
			HINT = 'export_model exports MMoE models and two-tower models (recsys.train_two_tower).';
	END IF;
	RETURN (SELECT c.safetensors FROM recsys.mmoe_validate(m.weights, m.config) c);
END
$$;
COMMENT ON FUNCTION recsys.export_model(text, int) IS
	'a stored MMoE or two-tower model (the serving version, else the newest, unless one is named) as safetensors bytes, with its config in __metadata__.recsys';

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

-- Batched scoring of candidate sets (src/mmoe/topk.c, src/mmoe/table.c)
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
	'score every row of a candidate table (read through a cursor in blocks of 1024 rows, each scored with sgemm): the id and the outputs per task; features_column NULL reads the columns the model''s feature spec names';

-- predict(model, row) in a plan: the planner support function passes a
-- table's whole row (or a ROW() constructor) as its columns, named, to
-- predict_columns, so that no composite value is built per row
-- (src/mmoe/row_support.c); callable directly with any named values
CREATE FUNCTION recsys.predict_row_support(internal)
	RETURNS internal
	AS 'MODULE_PATHNAME', 'mmoe_predict_row_support' LANGUAGE C STRICT;
COMMENT ON FUNCTION recsys.predict_row_support(internal) IS
	'planner support of recsys.predict(model, row): a whole-row reference or ROW() becomes recsys.predict_columns of its columns';

CREATE FUNCTION recsys.predict_columns(model text, row_type regtype, columns text[],
	context real[], display_position int, version int, VARIADIC "values" "any")
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'mmoe_predict_columns' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict_columns(text, regtype, text[], real[], int, int, "any") IS
	'score one row given as column values named by columns (what recsys.predict(model, row) becomes in a plan) with a stored MMoE model that has a feature spec: one output per task; row_type only names the row in messages';

CREATE FUNCTION recsys.predict_task_columns(model text, row_type regtype, columns text[], task text,
	context real[], display_position int, version int, VARIADIC "values" "any")
	RETURNS real
	AS 'MODULE_PATHNAME', 'mmoe_predict_columns_task' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict_task_columns(text, regtype, text[], text, real[], int, int, "any") IS
	'score one row given as column values named by columns, for one task (what recsys.predict(model, row, task) becomes in a plan)';

-- Models with a feature spec score table rows: the row's columns are read by
-- the names in the spec (src/features/, doc/features.md)
CREATE FUNCTION recsys.predict(model text, "row" record, context real[] DEFAULT NULL,
	display_position int DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'mmoe_predict_row' LANGUAGE C STABLE PARALLEL SAFE
	SUPPORT recsys.predict_row_support;
COMMENT ON FUNCTION recsys.predict(text, record, real[], int, int) IS
	'score one table row (a composite value) with a stored MMoE model that has a feature spec: one output per task in config order';

CREATE FUNCTION recsys.predict(model text, "row" record, task text, context real[] DEFAULT NULL,
	display_position int DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real
	AS 'MODULE_PATHNAME', 'mmoe_predict_row_task' LANGUAGE C STABLE PARALLEL SAFE
	SUPPORT recsys.predict_row_support;
COMMENT ON FUNCTION recsys.predict(text, record, text, real[], int, int) IS
	'score one table row with a stored MMoE model that has a feature spec, for one task';

CREATE FUNCTION recsys.predict_top_k_step(state bytea, model text, candidate record, item_id bigint,
	k int, task_weights real[])
	RETURNS bytea
	AS 'MODULE_PATHNAME', 'mmoe_predict_top_k_step_row' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict_top_k_step(bytea, text, record, bigint, int, real[]) IS
	'transition function of recsys.predict_top_k over table rows (models with a feature spec)';

CREATE AGGREGATE recsys.predict_top_k(model text, candidate record, item_id bigint, k int,
	task_weights real[]) (
	SFUNC = recsys.predict_top_k_step,
	STYPE = bytea,
	SSPACE = 65536,
	FINALFUNC = recsys.predict_top_k_final,
	COMBINEFUNC = recsys.predict_top_k_combine,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.predict_top_k(text, record, bigint, int, real[]) IS
	'the k items of a group with the highest score under a stored MMoE model with a feature spec, reading each candidate row''s columns by name, best first, ties to the smaller item_id';
