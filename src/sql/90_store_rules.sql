-- Rules of the model store, enforced for the functions and for direct DML alike
-- (in forms Citus accepts on reference tables: policies without subqueries,
-- triggers that touch only this node's relations):
--  * ownership: a model name belongs to the role that created it; only members
--    of that role add versions, change or drop them (row-level security; roles
--    that bypass RLS, such as superusers, are not limited);
--  * ownership lives in the catalog: each name has a sequence
--    recsys_names.<name> owned by the owner role, created, moved and dropped
--    with the name, so that DROP ROLE, DROP OWNED and REASSIGN OWNED treat
--    models as the role's objects;
--  * provenance: created_by and created_at are the role that inserted the
--    row and the time; nobody changes them afterwards;
--  * a name holds models of one kind;
--  * cache identity: any write to a model's vectors touches its models row.
-- Every trigger here is ENABLE ALWAYS, so session_replication_role = replica
-- does not skip it; the model cache checks the touch triggers per statement
-- (src/store/model_store.c) and reads afresh when one is missing or disabled.

ALTER TABLE recsys.model_names ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.models ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.user_vectors ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.item_vectors ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS model_names_read ON recsys.model_names;
DROP POLICY IF EXISTS model_names_owner ON recsys.model_names;
CREATE POLICY model_names_read ON recsys.model_names FOR SELECT USING (true);
CREATE POLICY model_names_owner ON recsys.model_names FOR ALL
	USING (recsys.model_owned(name)) WITH CHECK (recsys.model_owned(name));

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

-- Aliases are moved only by members of the owner role; the history is
-- appended to by them (in their own name, see model_events_rules) and never
-- changed: no UPDATE or DELETE policy, so only roles that bypass row-level
-- security (a superuser restoring a dump) delete events.
ALTER TABLE recsys.model_aliases ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.model_events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS model_aliases_read ON recsys.model_aliases;
DROP POLICY IF EXISTS model_aliases_owner ON recsys.model_aliases;
CREATE POLICY model_aliases_read ON recsys.model_aliases FOR SELECT USING (true);
CREATE POLICY model_aliases_owner ON recsys.model_aliases FOR ALL
	USING (recsys.model_owned(model)) WITH CHECK (recsys.model_owned(model));
DROP POLICY IF EXISTS model_events_read ON recsys.model_events;
DROP POLICY IF EXISTS model_events_insert ON recsys.model_events;
CREATE POLICY model_events_read ON recsys.model_events FOR SELECT USING (true);
CREATE POLICY model_events_insert ON recsys.model_events FOR INSERT
	WITH CHECK (actor OPERATOR(pg_catalog.=) CURRENT_USER AND recsys.model_owned(model));

-- Touch the models rows of the vectors a statement wrote (see the table
-- comment), and check that the rows an INSERT or UPDATE wrote belong to a
-- models row: in place of foreign keys, whose per-row checks (a query and a
-- row lock per vector) took about half of the time of storing a model.  The
-- UPDATE that touches a models row also locks it until the transaction ends
-- (as the foreign key's FOR KEY SHARE did, and more: FOR NO KEY UPDATE), so a
-- concurrent DELETE of the model waits for this transaction and then deletes
-- these vectors too (recsys.models_vectors_rules), and a write after a
-- committed DELETE finds no row to touch and fails.  On Citus the trigger
-- fires on each node's placement of the vectors and touches that node's
-- placement of models (every placement gets the same writes, so every node
-- bumps and checks its own copy); on one node it touches recsys.models.
CREATE FUNCTION recsys.vectors_touch_models() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	models regclass := recsys.store_relation('models');
	-- the table's own name, also where TG_TABLE_NAME is a Citus placement's
	tbl text := CASE WHEN TG_TABLE_NAME LIKE 'user%' THEN 'user_vectors' ELSE 'item_vectors' END;
	lost_model text;
	lost_version int;
	present boolean;
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		EXECUTE format('UPDATE %s m SET revision = m.revision OPERATOR(pg_catalog.+) 1'
			' WHERE m.kind OPERATOR(pg_catalog.=) ''embeddings''', models);
		RETURN NULL;
	END IF;
	IF TG_OP <> 'INSERT' THEN
		-- UPDATE and DELETE: the rows' old models (an UPDATE may move rows)
		EXECUTE format('UPDATE %s m SET revision = m.revision OPERATOR(pg_catalog.+) 1'
			' FROM (SELECT DISTINCT c.model, c.version FROM old_rows c) c'
			' WHERE m.name OPERATOR(pg_catalog.=) c.model AND m.version OPERATOR(pg_catalog.=) c.version', models);
	END IF;
	IF TG_OP = 'DELETE' THEN
		RETURN NULL;
	END IF;
	-- INSERT and UPDATE: touch the models of the new rows (of an UPDATE,
	-- those it moved rows to) and name one that had no row to touch.
	-- Row-level security filters this UPDATE of models as it filtered the
	-- rows written (both policies test recsys.model_owned of the same name),
	-- and roles that bypass it see every row: a models row is missed only
	-- when it is absent.
	EXECUTE format('WITH c AS (SELECT DISTINCT c.model, c.version FROM new_rows c%s),'
		' t AS (UPDATE %s m SET revision = m.revision OPERATOR(pg_catalog.+) 1 FROM c'
		' WHERE m.name OPERATOR(pg_catalog.=) c.model AND m.version OPERATOR(pg_catalog.=) c.version'
		' RETURNING m.name, m.version)'
		' SELECT c.model, c.version FROM c WHERE NOT EXISTS (SELECT FROM t'
		' WHERE t.name OPERATOR(pg_catalog.=) c.model AND t.version OPERATOR(pg_catalog.=) c.version) LIMIT 1',
		CASE WHEN TG_OP = 'UPDATE' THEN ' EXCEPT SELECT o.model, o.version FROM old_rows o' ELSE '' END, models)
		INTO lost_model, lost_version;
	IF lost_model IS NULL THEN
		RETURN NULL;
	END IF;
	-- a row this role may read but not update (a policy added to models alone)
	EXECUTE format('SELECT EXISTS (SELECT FROM %s m WHERE m.name OPERATOR(pg_catalog.=) $1'
		' AND m.version OPERATOR(pg_catalog.=) $2)', models) INTO present USING lost_model, lost_version;
	IF present THEN
		RAISE EXCEPTION 'permission denied to write vectors of model "%" version %', lost_model, lost_version
			USING ERRCODE = 'insufficient_privilege', SCHEMA = 'recsys', TABLE = tbl,
				DETAIL = format('A write to recsys.%s updates the model''s row of recsys.models, which row-level security hides from role %s.', tbl, CURRENT_USER);
	END IF;
	RAISE EXCEPTION 'insert or update on table "%" refers to model "%" version %, which does not exist', tbl, lost_model, lost_version
		USING ERRCODE = 'foreign_key_violation', SCHEMA = 'recsys', TABLE = tbl,
			DETAIL = format('Key (model, version)=(%s, %s) is not present in table "models".', lost_model, lost_version),
			HINT = 'Vectors belong to a stored model version: insert its row of recsys.models first.';
END
$$;
COMMENT ON FUNCTION recsys.vectors_touch_models() IS
	'internal trigger: any write to user_vectors or item_vectors bumps models.revision of the models written, so cached vectors are never served after a change; vectors inserted or moved must belong to a models row (23503 otherwise), which stays locked until the transaction ends';

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
ALTER TABLE recsys.user_vectors ENABLE ALWAYS TRIGGER touch_models_insert;
ALTER TABLE recsys.user_vectors ENABLE ALWAYS TRIGGER touch_models_update;
ALTER TABLE recsys.user_vectors ENABLE ALWAYS TRIGGER touch_models_delete;
ALTER TABLE recsys.user_vectors ENABLE ALWAYS TRIGGER touch_models_truncate;
ALTER TABLE recsys.item_vectors ENABLE ALWAYS TRIGGER touch_models_insert;
ALTER TABLE recsys.item_vectors ENABLE ALWAYS TRIGGER touch_models_update;
ALTER TABLE recsys.item_vectors ENABLE ALWAYS TRIGGER touch_models_delete;
ALTER TABLE recsys.item_vectors ENABLE ALWAYS TRIGGER touch_models_truncate;

-- Whether this database is a Citus worker: there the store's tables are
-- placements of the coordinator's reference tables, and the coordinator
-- acts for the whole store.
CREATE FUNCTION recsys.citus_worker() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	g int := 0;
BEGIN
	-- by the catalog, not the extension: this also runs inside CREATE
	-- EXTENSION citus (the guard event trigger), before the catalog exists
	IF pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL THEN
		EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO g;
	END IF;
	RETURN g OPERATOR(pg_catalog.<>) 0;
END
$$;
COMMENT ON FUNCTION recsys.citus_worker() IS
	'internal: whether this database is a Citus worker (where the store tables are placements of the coordinator''s)';

-- Rules of a model_names row.  A new name gets its sequence
-- recsys_names.<name>, owned by the row's owner (a sequence left by a dump
-- is taken when its owner is the row's); an owner change moves the sequence
-- with ALTER SEQUENCE ... OWNER TO, so PostgreSQL's rule for changing owners
-- holds (recsys.transfer_model); created_at is recsys's.  On Citus it fires
-- on every node's placement, so every node has the same sequences.
CREATE FUNCTION recsys.model_names_rules() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	own regrole := recsys.model_owner(NEW.name);
BEGIN
	IF TG_OP = 'INSERT' THEN
		-- the time is checked where the statement runs: a Citus worker's
		-- transaction started at another time
		IF pg_catalog.row_security_active(TG_RELID) AND NOT recsys.citus_worker()
				AND NEW.created_at IS DISTINCT FROM pg_catalog.now() THEN
			RAISE EXCEPTION 'created_at of model name "%" is set by recsys', NEW.name
				USING ERRCODE = 'insufficient_privilege',
					HINT = 'Leave created_at to its default.';
		END IF;
		IF own IS NULL THEN
			IF EXISTS (SELECT FROM pg_catalog.pg_class c
					WHERE c.relnamespace OPERATOR(pg_catalog.=) 'recsys_names'::pg_catalog.regnamespace
						AND c.relname OPERATOR(pg_catalog.=) NEW.name) THEN
				RAISE EXCEPTION 'model name "%" is taken by relation recsys_names.%', NEW.name, pg_catalog.quote_ident(NEW.name)
					USING ERRCODE = 'duplicate_object';
			END IF;
			EXECUTE format('CREATE SEQUENCE recsys_names.%I', NEW.name);
			IF NEW.owner IS DISTINCT FROM CURRENT_USER::pg_catalog.regrole THEN
				EXECUTE format('ALTER SEQUENCE recsys_names.%I OWNER TO %s', NEW.name, NEW.owner);
			END IF;
		ELSIF own IS DISTINCT FROM NEW.owner THEN
			RAISE EXCEPTION 'model name "%" is taken', NEW.name
				USING ERRCODE = 'duplicate_object',
					DETAIL = format('Its sequence recsys_names.%I belongs to role %s.', NEW.name, own);
		END IF;
		RETURN NEW;
	END IF;
	IF NEW.name IS DISTINCT FROM OLD.name THEN
		RAISE EXCEPTION 'model name "%" cannot be renamed', OLD.name
			USING ERRCODE = 'feature_not_supported';
	END IF;
	IF NEW.created_at IS DISTINCT FROM OLD.created_at THEN
		RAISE EXCEPTION 'created_at of model name "%" cannot be changed', OLD.name
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	IF NEW.last_version OPERATOR(pg_catalog.<) OLD.last_version THEN
		RAISE EXCEPTION 'last_version of model name "%" cannot go back', OLD.name
			USING ERRCODE = 'insufficient_privilege',
				DETAIL = 'Version numbers of a model are never given twice.';
	END IF;
	IF NEW.owner IS DISTINCT FROM own THEN
		-- PostgreSQL checks that the role may give the sequence away
		EXECUTE format('ALTER SEQUENCE recsys_names.%I OWNER TO %s', NEW.name, NEW.owner);
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION recsys.model_names_rules() IS
	'internal trigger: a new model name gets its sequence recsys_names.<name> owned by its owner; an owner change moves it (ALTER SEQUENCE OWNER TO''s rule); created_at and the name never change, last_version never goes back';

-- A deleted name's sequence and vectors go with it (on every node).
CREATE FUNCTION recsys.model_names_release() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s record;
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		FOR s IN SELECT c.relname FROM pg_catalog.pg_class c
				WHERE c.relnamespace OPERATOR(pg_catalog.=) 'recsys_names'::pg_catalog.regnamespace
					AND c.relkind OPERATOR(pg_catalog.=) 'S' LOOP
			EXECUTE format('DROP SEQUENCE recsys_names.%I', s.relname);
		END LOOP;
	ELSE
		-- the name's vectors first, while its sequence still says who owns
		-- them: the foreign key's cascade deleted its models rows as the
		-- table owner, but recsys.models_vectors_rules fires after this
		-- trigger, as the caller, whom row-level security would then hide
		-- them from
		EXECUTE format('DELETE FROM %s x WHERE x.model OPERATOR(pg_catalog.=) $1',
			recsys.store_relation('user_vectors')) USING OLD.name;
		EXECUTE format('DELETE FROM %s x WHERE x.model OPERATOR(pg_catalog.=) $1',
			recsys.store_relation('item_vectors')) USING OLD.name;
		IF recsys.model_owner(OLD.name) IS NOT NULL THEN
			EXECUTE format('DROP SEQUENCE recsys_names.%I', OLD.name);
		END IF;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION recsys.model_names_release() IS
	'internal trigger: dropping a model name drops its sequence recsys_names.<name> and its vectors';

CREATE TRIGGER model_names_rules BEFORE INSERT OR UPDATE ON recsys.model_names
	FOR EACH ROW EXECUTE FUNCTION recsys.model_names_rules();
CREATE TRIGGER model_names_release AFTER DELETE ON recsys.model_names
	FOR EACH ROW EXECUTE FUNCTION recsys.model_names_release();
CREATE TRIGGER model_names_release_all AFTER TRUNCATE ON recsys.model_names
	FOR EACH STATEMENT EXECUTE FUNCTION recsys.model_names_release();
ALTER TABLE recsys.model_names ENABLE ALWAYS TRIGGER model_names_rules;
ALTER TABLE recsys.model_names ENABLE ALWAYS TRIGGER model_names_release;
ALTER TABLE recsys.model_names ENABLE ALWAYS TRIGGER model_names_release_all;

-- Rules of a models row: provenance (created_by, created_at) is written by
-- recsys: a role under row-level security inserts only its own name and the
-- current time, and nobody changes them later; a name holds models of one
-- kind.  Roles that bypass row-level security (superusers restoring a dump)
-- may insert any provenance.
CREATE FUNCTION recsys.models_rules() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	other text;
BEGIN
	IF TG_OP = 'INSERT' THEN
		IF pg_catalog.row_security_active(TG_RELID) THEN
			IF NEW.created_by IS DISTINCT FROM CURRENT_USER THEN
				RAISE EXCEPTION 'created_by of model "%" version % must be the inserting role', NEW.name, NEW.version
					USING ERRCODE = 'insufficient_privilege',
						DETAIL = format('The row names %s, the role inserting it is %s.', NEW.created_by, CURRENT_USER),
						HINT = 'Leave created_by and created_at to their defaults.';
			END IF;
			-- the time is checked where the statement runs (see model_names_rules)
			IF NEW.created_at IS DISTINCT FROM pg_catalog.now() AND NOT recsys.citus_worker() THEN
				RAISE EXCEPTION 'created_at of model "%" version % is set by recsys', NEW.name, NEW.version
					USING ERRCODE = 'insufficient_privilege',
						HINT = 'Leave created_by and created_at to their defaults.';
			END IF;
		END IF;
	ELSE
		IF NEW.created_by IS DISTINCT FROM OLD.created_by OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
			RAISE EXCEPTION 'provenance of model "%" version % cannot be changed', OLD.name, OLD.version
				USING ERRCODE = 'insufficient_privilege',
					DETAIL = 'created_by and created_at record who stored a version and when.';
		END IF;
		IF NEW.kind IS DISTINCT FROM OLD.kind THEN
			RAISE EXCEPTION 'kind of model "%" version % cannot be changed', OLD.name, OLD.version
				USING ERRCODE = 'wrong_object_type',
					HINT = 'Store a model of another kind under another name.';
		END IF;
		IF NEW.name IS NOT DISTINCT FROM OLD.name THEN
			RETURN NEW;
		END IF;
	END IF;
	-- this node's placement on Citus (see recsys.store_relation)
	EXECUTE format('SELECT m.kind FROM %s m WHERE m.name OPERATOR(pg_catalog.=) $1'
		' AND m.kind OPERATOR(pg_catalog.<>) $2 AND ($3 IS NULL OR NOT (m.name OPERATOR(pg_catalog.=) $3'
		' AND m.version OPERATOR(pg_catalog.=) $4)) LIMIT 1', recsys.store_relation('models'))
		INTO other USING NEW.name, NEW.kind,
			CASE WHEN TG_OP = 'UPDATE' THEN OLD.name END, CASE WHEN TG_OP = 'UPDATE' THEN OLD.version END;
	IF other IS NOT NULL THEN
		RAISE EXCEPTION 'model "%" holds % models, not %', NEW.name, other, NEW.kind
			USING ERRCODE = 'wrong_object_type',
				DETAIL = format('Every version of a model name is of one kind; "%s" has versions of kind %s.', NEW.name, other),
				HINT = 'Store the new model under another name.';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION recsys.models_rules() IS
	'internal trigger: created_by and created_at are recsys''s (set on insert, never changed); every version of a name is of one kind';

CREATE TRIGGER models_rules BEFORE INSERT OR UPDATE ON recsys.models
	FOR EACH ROW EXECUTE FUNCTION recsys.models_rules();
ALTER TABLE recsys.models ENABLE ALWAYS TRIGGER models_rules;

-- The models side of the rule that vectors belong to a models row (in place
-- of the foreign keys' ON DELETE CASCADE and NO ACTION): a DELETE of models
-- rows deletes their vectors; an UPDATE that changes the key (name, version)
-- of a row whose vectors remain fails, as NO ACTION did, at the end of the
-- statement (an old key that another row now has is fine); a TRUNCATE of
-- models fails unless the vectors are empty at its end (truncated with it).
-- Runs as the caller: deleting vectors needs DELETE on them, and row-level
-- security lets the caller delete the vectors of the models it may delete
-- (the same recsys.model_owned test); rows it still cannot delete fail the
-- statement rather than stay behind.  On Citus it fires on each node's
-- placement of models and acts on that node's placements of the vectors.
CREATE FUNCTION recsys.models_vectors_rules() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t text;
	rel regclass;
	lost_model text;
	lost_version int;
	held boolean;
BEGIN
	FOREACH t IN ARRAY ARRAY['user_vectors', 'item_vectors'] LOOP
		rel := recsys.store_relation(t);
		IF TG_OP = 'DELETE' THEN
			EXECUTE format('DELETE FROM %s x USING (SELECT DISTINCT o.name, o.version FROM old_rows o) o'
				' WHERE x.model OPERATOR(pg_catalog.=) o.name AND x.version OPERATOR(pg_catalog.=) o.version', rel);
			EXECUTE format('SELECT o.name, o.version FROM old_rows o WHERE EXISTS (SELECT FROM %s x'
				' WHERE x.model OPERATOR(pg_catalog.=) o.name AND x.version OPERATOR(pg_catalog.=) o.version) LIMIT 1', rel)
				INTO lost_model, lost_version;
			IF lost_model IS NOT NULL THEN
				RAISE EXCEPTION 'permission denied to delete the vectors of model "%" version %', lost_model, lost_version
					USING ERRCODE = 'insufficient_privilege', SCHEMA = 'recsys', TABLE = t,
						DETAIL = format('Deleting a row of recsys.models deletes its vectors in recsys.%s, some of which row-level security hides from role %s.', t, CURRENT_USER);
			END IF;
		ELSIF TG_OP = 'UPDATE' THEN
			-- FOR EACH ROW, fired only when the key changed
			EXECUTE format('SELECT EXISTS (SELECT FROM %s x WHERE x.model OPERATOR(pg_catalog.=) $1'
				' AND x.version OPERATOR(pg_catalog.=) $2) AND NOT EXISTS (SELECT FROM %s m'
				' WHERE m.name OPERATOR(pg_catalog.=) $1 AND m.version OPERATOR(pg_catalog.=) $2)',
				rel, recsys.store_relation('models')) INTO held USING OLD.name, OLD.version;
			IF held THEN
				RAISE EXCEPTION 'update on table "models" changes the key of model "%" version %, which vectors in table "%" refer to', OLD.name, OLD.version, t
					USING ERRCODE = 'foreign_key_violation', SCHEMA = 'recsys', TABLE = 'models',
						DETAIL = format('Key (name, version)=(%s, %s) is still referenced from table "%s".', OLD.name, OLD.version, t),
						HINT = 'Store a new version instead (recsys.train_embeddings), or drop this one (recsys.drop_model).';
			END IF;
		ELSE
			EXECUTE format('SELECT EXISTS (SELECT FROM %s x)', rel) INTO held;
			IF held THEN
				RAISE EXCEPTION 'cannot truncate table "models" while table "%" holds vectors', t
					USING ERRCODE = 'foreign_key_violation', SCHEMA = 'recsys', TABLE = 'models',
						DETAIL = format('The rows of recsys.%s belong to rows of recsys.models.', t),
						HINT = 'Truncate recsys.user_vectors and recsys.item_vectors in the same statement.';
			END IF;
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION recsys.models_vectors_rules() IS
	'internal trigger: deleting models rows deletes their vectors; changing the key of a row with vectors, or truncating models while vectors remain, fails (23503)';

CREATE TRIGGER vectors_delete AFTER DELETE ON recsys.models
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION recsys.models_vectors_rules();
CREATE TRIGGER vectors_key_update AFTER UPDATE ON recsys.models FOR EACH ROW
	WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.version IS DISTINCT FROM NEW.version)
	EXECUTE FUNCTION recsys.models_vectors_rules();
CREATE TRIGGER vectors_truncate AFTER TRUNCATE ON recsys.models
	FOR EACH STATEMENT EXECUTE FUNCTION recsys.models_vectors_rules();
ALTER TABLE recsys.models ENABLE ALWAYS TRIGGER vectors_delete;
ALTER TABLE recsys.models ENABLE ALWAYS TRIGGER vectors_key_update;
ALTER TABLE recsys.models ENABLE ALWAYS TRIGGER vectors_truncate;

-- Rules of the history: an event is written in the name of the role
-- writing it, at the time it is written, and never changed afterwards (by
-- anyone: roles that bypass row-level security may only delete events).
CREATE FUNCTION recsys.model_events_rules() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		RAISE EXCEPTION 'events of model "%" cannot be changed', OLD.model
			USING ERRCODE = 'insufficient_privilege',
				DETAIL = 'recsys.model_events is the history of the model store.';
	END IF;
	IF pg_catalog.row_security_active(TG_RELID) THEN
		IF NEW.actor IS DISTINCT FROM CURRENT_USER THEN
			RAISE EXCEPTION 'actor of an event of model "%" must be the inserting role', NEW.model
				USING ERRCODE = 'insufficient_privilege';
		END IF;
		-- the time is checked where the statement runs (see model_names_rules)
		IF NEW.at IS DISTINCT FROM pg_catalog.now() AND NOT recsys.citus_worker() THEN
			RAISE EXCEPTION 'time of an event of model "%" is set by recsys', NEW.model
				USING ERRCODE = 'insufficient_privilege';
		END IF;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION recsys.model_events_rules() IS
	'internal trigger: an event''s actor and time are the inserting role''s and the transaction''s; events are never updated';

CREATE TRIGGER model_events_rules BEFORE INSERT OR UPDATE ON recsys.model_events
	FOR EACH ROW EXECUTE FUNCTION recsys.model_events_rules();
ALTER TABLE recsys.model_events ENABLE ALWAYS TRIGGER model_events_rules;

-- A dropped sequence of recsys_names (DROP OWNED BY the owner, DROP SEQUENCE)
-- drops its model name and every version.  The coordinator deletes through
-- Citus for every node; a role under row-level security cannot delete rows
-- whose sequence is gone, so the DROP is refused for it (drop the models with
-- recsys.drop_model first, or drop as a superuser).
CREATE FUNCTION recsys.model_names_dropped() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	gone text[];
	present text[];
BEGIN
	SELECT pg_catalog.array_agg(d.object_name) INTO gone FROM pg_catalog.pg_event_trigger_dropped_objects() d
		WHERE d.object_type OPERATOR(pg_catalog.=) 'sequence' AND d.schema_name OPERATOR(pg_catalog.=) 'recsys_names';
	-- nothing of recsys is named before this (plpgsql resolves names when it
	-- first runs an expression): a role without USAGE on schema recsys drops
	-- its own objects undisturbed
	IF gone IS NULL THEN
		RETURN;
	END IF;
	IF recsys.citus_worker() THEN
		RETURN;
	END IF;
	EXECUTE format('SELECT pg_catalog.array_agg(n.name) FROM %s n WHERE n.name OPERATOR(pg_catalog.=) ANY ($1)',
		recsys.store_relation('model_names')) INTO present USING gone;
	IF present IS NULL THEN
		RETURN;
	END IF;
	DELETE FROM recsys.model_names n WHERE n.name OPERATOR(pg_catalog.=) ANY (present);
	IF EXISTS (SELECT FROM recsys.model_names n WHERE n.name OPERATOR(pg_catalog.=) ANY (present)) THEN
		RAISE EXCEPTION 'cannot drop the sequence of model "%"', present[1]
			USING ERRCODE = 'dependent_objects_still_exist',
				DETAIL = 'Dropping the sequence recsys_names.<name> drops the model, and this role may not delete it.',
				HINT = 'Drop the model with recsys.drop_model first, or drop as a superuser.';
	END IF;
END
$$;
COMMENT ON FUNCTION recsys.model_names_dropped() IS
	'internal event trigger: dropping the sequence recsys_names.<name> of a model name (DROP OWNED BY its owner) drops the model';

-- recsys_names holds only the sequences of model names: a role may create
-- one only if it may insert model names, nothing else may be created in or
-- moved into the schema, and a model name's sequence keeps its name and
-- schema.
CREATE FUNCTION recsys.model_names_guard() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	c record;
	lost text;
BEGIN
	-- runs for every role's DDL: recsys objects are named only in dynamic SQL
	-- reached for sequences, so roles without USAGE on schema recsys are not
	-- disturbed
	FOR c IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
		IF c.schema_name OPERATOR(pg_catalog.=) 'recsys_names' THEN
			IF c.object_type OPERATOR(pg_catalog.<>) 'sequence' THEN
				RAISE EXCEPTION 'schema recsys_names holds only the sequences of model names'
					USING ERRCODE = 'insufficient_privilege', DETAIL = format('%s %s was refused.', c.command_tag, c.object_identity);
			END IF;
			IF c.command_tag OPERATOR(pg_catalog.=) 'CREATE SEQUENCE'
					AND NOT pg_catalog.has_table_privilege('recsys.model_names', 'INSERT') THEN
				RAISE EXCEPTION 'permission denied to create %', c.object_identity
					USING ERRCODE = 'insufficient_privilege',
						DETAIL = 'Sequences in recsys_names stand for model names; creating one needs INSERT on recsys.model_names.';
			END IF;
		END IF;
		-- a renamed or moved sequence: every model name must still have its
		-- own (checked where the role may read the names; a role that may
		-- not, and renames its name's sequence, leaves a name nobody but a
		-- superuser can use or drop)
		IF c.object_type OPERATOR(pg_catalog.=) 'sequence' AND c.command_tag OPERATOR(pg_catalog.<>) 'CREATE SEQUENCE'
				AND pg_catalog.has_schema_privilege('recsys', 'USAGE')
				AND pg_catalog.has_table_privilege('recsys.model_names', 'SELECT') THEN
			EXECUTE 'SELECT CASE WHEN NOT recsys.citus_worker() THEN (SELECT n.name FROM recsys.model_names n'
				' WHERE recsys.model_owner(n.name) IS NULL LIMIT 1) END' INTO lost;
			IF lost IS NOT NULL THEN
				RAISE EXCEPTION 'the sequence of model "%" must keep its name and schema', lost
					USING ERRCODE = 'object_in_use',
						DETAIL = format('recsys_names.%I stands for the model name and its owner.', lost);
			END IF;
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION recsys.model_names_guard() IS
	'internal event trigger: recsys_names holds only model names'' sequences, created by roles that may insert model names, never renamed or moved';

CREATE EVENT TRIGGER recsys_model_names_dropped ON sql_drop
	EXECUTE FUNCTION recsys.model_names_dropped();
CREATE EVENT TRIGGER recsys_model_names_guard ON ddl_command_end
	EXECUTE FUNCTION recsys.model_names_guard();
ALTER EVENT TRIGGER recsys_model_names_dropped ENABLE ALWAYS;
ALTER EVENT TRIGGER recsys_model_names_guard ENABLE ALWAYS;
