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
	'the version of an embeddings model to serve: the one given, else the one under the alias serving, else the newest; error if none or of another kind';

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
	'user vectors of a version of an embeddings model (default: the serving one, else the newest), in id order';

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
	'item vectors of a version of an embeddings model (default: the serving one, else the newest), in id order';

CREATE FUNCTION recsys.recommend(model text, user_id bigint, k int DEFAULT 10,
	exclude_seen boolean DEFAULT true, version int DEFAULT NULL)
RETURNS TABLE(item_id bigint, score real)
	AS 'MODULE_PATHNAME', 'embedding_recommend' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION recsys.recommend(text, bigint, int, boolean, int) IS
	'top-k items of a stored user by <x_u, y_i> under a version of an embeddings model (default: the serving one, else the newest), best first (ties: smaller id), without the user''s training items when exclude_seen; no rows for an unknown or NULL user';

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

-- The forms with exclusions (doc/embeddings.md, explicit ratings): every
-- argument of the plain form, then exclude, none with a default.  A call
-- without exclude can match only the plain form, whatever its argument
-- types (NULL, untyped parameters of a driver), so it resolves as in 0.2.0.
CREATE FUNCTION recsys.recommend(model text, user_id bigint, k int, exclude_seen boolean, version int,
	exclude bigint[])
RETURNS TABLE(item_id bigint, score real)
	AS 'MODULE_PATHNAME', 'embedding_recommend_exclude' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION recsys.recommend(text, bigint, int, boolean, int, bigint[]) IS
	'recommend, also leaving out the items of exclude (NULL: none; unknown ids ignored)';

CREATE FUNCTION recsys.recommend_all(model text, k int, users bigint[], exclude_seen boolean, version int,
	exclude regclass)
RETURNS TABLE(user_id bigint, item_id bigint, score real, rank int)
	AS 'MODULE_PATHNAME', 'embedding_recommend_all_exclude' LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100000;
COMMENT ON FUNCTION recsys.recommend_all(text, int, bigint[], boolean, int, regclass) IS
	'recommend_all, also leaving out the (user_id, item_id) pairs of the relation exclude (integer columns user_id and item_id; NULL: none)';

CREATE FUNCTION recsys.recommend_for_items(model text, items bigint[], k int, weights real[],
	exclude_seen boolean, version int, exclude bigint[])
RETURNS TABLE(item_id bigint, score real)
	AS 'MODULE_PATHNAME', 'embedding_recommend_for_items_exclude' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION recsys.recommend_for_items(text, bigint[], int, real[], boolean, int, bigint[]) IS
	'recommend_for_items, also leaving out the items of exclude (NULL: none; unknown ids ignored)';

CREATE FUNCTION recsys.recommend_all_for_items(model text, interactions regclass, user_column name,
	item_column name, weight_column name, k int, exclude_seen boolean, version int, exclude regclass)
RETURNS TABLE(user_id bigint, item_id bigint, score real, rank int)
	AS 'MODULE_PATHNAME', 'embedding_recommend_all_for_items_exclude' LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100000;
COMMENT ON FUNCTION recsys.recommend_all_for_items(text, regclass, name, name, name, int, boolean, int, regclass) IS
	'recommend_all_for_items, also leaving out the (user_id, item_id) pairs of the relation exclude (integer columns user_id and item_id; NULL: none)';
