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
