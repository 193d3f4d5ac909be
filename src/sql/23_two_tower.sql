-- Two-tower models over feature tables (doc/two-tower.md)

CREATE FUNCTION recsys.train_two_tower(model text, interactions regclass, user_features regclass,
	item_features regclass, config jsonb, validation regclass DEFAULT NULL,
	user_column name DEFAULT 'user_id', item_column name DEFAULT 'item_id',
	weight_column name DEFAULT NULL)
RETURNS TABLE(epoch int, loss double precision, observed double precision, penalty double precision,
	l2 double precision, recall double precision, ndcg double precision, seconds double precision)
	AS 'MODULE_PATHNAME', 'train_two_tower' LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.train_two_tower(text, regclass, regclass, regclass, jsonb, regclass, name, name, name) IS
	'train a two-tower model (an MLP per side over the feature spec of each feature table) with Adam on the observed loss + gramian_weight <G_u, G_v>_F + l2, the Gramian term estimated by config.method (exact, sogram, sagram, sampled); store it as a new version of an embeddings model with a vector for every row of both feature tables; one row per epoch';

CREATE FUNCTION recsys.two_tower_options()
RETURNS TABLE(name text, "default" text, "range" text, description text)
	AS 'MODULE_PATHNAME', 'two_tower_options' LANGUAGE C IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.two_tower_options() IS
	'the scalar options of a train_two_tower config, with defaults and ranges (besides the "user" and "item" tower objects)';

CREATE FUNCTION recsys.two_tower_user_vector(model text, user_row record, version int DEFAULT NULL)
RETURNS real[]
	AS 'MODULE_PATHNAME', 'two_tower_user_vector' LANGUAGE C STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.two_tower_user_vector(text, record, int) IS
	'the user tower''s vector of a row of user features (columns by the names of the stored spec; no id embedding): cold start for users';

CREATE FUNCTION recsys.two_tower_item_vector(model text, item_row record, version int DEFAULT NULL)
RETURNS real[]
	AS 'MODULE_PATHNAME', 'two_tower_item_vector' LANGUAGE C STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.two_tower_item_vector(text, record, int) IS
	'the item tower''s vector of a row of item features (columns by the names of the stored spec; no id embedding): cold start for items';

CREATE FUNCTION recsys.recommend_for_features(model text, user_row record, k int DEFAULT 10,
	version int DEFAULT NULL)
RETURNS TABLE(item_id bigint, score real)
	AS 'MODULE_PATHNAME', 'two_tower_recommend' LANGUAGE C STABLE PARALLEL SAFE ROWS 10
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.recommend_for_features(text, record, int, int) IS
	'top-k stored items of a two-tower model for a user given by a row of user features (cold start), best first (ties: smaller id)';
