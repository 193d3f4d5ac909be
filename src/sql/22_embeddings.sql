-- Serving trained embeddings: vectors and recommendations

-- Get the newest version of an embeddings model (errors for unknown or other kinds).
CREATE FUNCTION recsys.embedding_model_version(model_name text) RETURNS int
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
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
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT u.id, u.embedding FROM recsys.user_vectors u
	WHERE u.model = $1
		AND u.version = recsys.embedding_model_version($1)
	ORDER BY u.id
$$;
COMMENT ON FUNCTION recsys.user_embeddings(text) IS 'user vectors of the newest version of an embeddings model';

CREATE FUNCTION recsys.item_embeddings(model_name text) RETURNS TABLE(id bigint, embedding real[])
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
	SELECT v.id, v.embedding FROM recsys.item_vectors v
	WHERE v.model = $1
		AND v.version = recsys.embedding_model_version($1)
	ORDER BY v.id
$$;
COMMENT ON FUNCTION recsys.item_embeddings(text) IS 'item vectors of the newest version of an embeddings model';

CREATE FUNCTION recsys.recommend(model_name text, user_id bigint, k int DEFAULT 10,
	exclude_seen boolean DEFAULT true) RETURNS TABLE(item_id bigint, score real)
	AS 'MODULE_PATHNAME', 'embedding_recommend' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION recsys.recommend(text, bigint, int, boolean) IS
	'top-k items of a user by <x_u, y_i> under the newest version of an embeddings model, best first (ties: smaller id), without the user''s training items when exclude_seen; no rows for an unknown user';
