-- recsys 0.2.0 -> 0.3.0, written by hand and append-only.
--
-- Rules for this file (and every later upgrade script):
--   * never DROP and re-CREATE an existing routine, type or table: use
--     CREATE OR REPLACE FUNCTION, ALTER TABLE/FUNCTION/TYPE, and CREATE for
--     new objects, so that grants on recsys objects and users' views and
--     functions over them survive ALTER EXTENSION UPDATE;
--   * every change made to src/sql/*.sql for this version appears here too:
--     sql/upgrade.sql compares an upgraded database with a fresh install,
--     object by object.
\echo Use "ALTER EXTENSION recsys UPDATE TO '0.3.0'" to load this file. \quit

-- a NULL model name is null_value_not_allowed (22004), not "model <NULL> does not exist"
CREATE OR REPLACE FUNCTION recsys.resolve_model_version(model text, version int DEFAULT NULL) RETURNS int
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_version int := $2;
	v int;
BEGIN
	IF p_model IS NULL THEN
		RAISE EXCEPTION 'model name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
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
CREATE OR REPLACE FUNCTION recsys.drop_model(model text, version int DEFAULT NULL) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_version int := $2;
	n int;
	o regrole;
BEGIN
	IF p_model IS NULL THEN
		RAISE EXCEPTION 'model name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
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
