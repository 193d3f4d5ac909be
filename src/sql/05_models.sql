-- The model store shared by embeddings and MMoE models: versions, resolution, drop


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
