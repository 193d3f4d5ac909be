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
-- 0.3.0: the model store's integrity (issue 18: items 3, 6, 8, 9, 11)

-- Ownership in the catalog: a sequence recsys_names.<name> per model name,
-- owned by the name's owner (see 01_tables.sql and 90_store_rules.sql).
CREATE SCHEMA recsys_names;
COMMENT ON SCHEMA recsys_names IS
	'recsys: one sequence per model name, owned by the name''s owner role (see recsys.model_names)';
GRANT USAGE, CREATE ON SCHEMA recsys_names TO PUBLIC;

-- The owner role of a model name: the owner of its sequence
-- recsys_names.<name> (NULL for an unknown name).  Ownership lives there, in
-- the catalog, so that PostgreSQL's DROP ROLE, DROP OWNED and REASSIGN OWNED
-- treat models as the role's objects.
CREATE FUNCTION recsys.model_owner(model text) RETURNS regrole
LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
	SELECT c.relowner::pg_catalog.regrole FROM pg_catalog.pg_class c
	WHERE c.relnamespace OPERATOR(pg_catalog.=) 'recsys_names'::pg_catalog.regnamespace
		AND c.relname OPERATOR(pg_catalog.=) $1 AND c.relkind OPERATOR(pg_catalog.=) 'S'
$$;
COMMENT ON FUNCTION recsys.model_owner(text) IS
	'the owner role of a model name (the owner of its sequence recsys_names.<name>), NULL for an unknown name';

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

-- The sequences of the names stored by 0.2.0, owned by their owners.  They
-- belong to the name, not to the extension (a fresh install's names are
-- created outside the install script).  A name whose owner role no longer
-- exists (0.2.0 kept the OID of a dropped role) goes to the role running the
-- update, which can give it away with recsys.transfer_model.
DO $$
DECLARE
	n record;
BEGIN
	FOR n IN SELECT m.name, m.owner, r.rolname FROM recsys.model_names m
			LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) m.owner
			ORDER BY m.name LOOP
		EXECUTE format('CREATE SEQUENCE recsys_names.%I', n.name);
		EXECUTE format('ALTER EXTENSION recsys DROP SEQUENCE recsys_names.%I', n.name);
		IF n.rolname IS NULL THEN
			UPDATE recsys.model_names m SET owner = CURRENT_USER::pg_catalog.regrole
				WHERE m.name OPERATOR(pg_catalog.=) n.name;
		ELSIF n.rolname OPERATOR(pg_catalog.<>) CURRENT_USER THEN
			EXECUTE format('ALTER SEQUENCE recsys_names.%I OWNER TO %I', n.name, n.rolname);
		END IF;
	END LOOP;
END
$$;

-- Get the next version number of a model, holding a lock on its name row
-- until the transaction ends, so that concurrent writers number distinctly.
-- A new name is created owned by the current role; an existing name may be
-- extended only by members of its owner role.  Locking the row needs UPDATE
-- on recsys.model_names and ownership: a role without store grants cannot
-- block anyone's imports.
CREATE OR REPLACE FUNCTION recsys.next_model_version(model text) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	o regrole;
BEGIN
	PERFORM recsys.check_model_name(p_model);
	-- an existing name is never inserted again: its trigger would try to
	-- take the name's sequence
	IF NOT EXISTS (SELECT FROM recsys.model_names n WHERE n.name OPERATOR(pg_catalog.=) p_model) THEN
		INSERT INTO recsys.model_names AS n (name) VALUES (p_model) ON CONFLICT (name) DO NOTHING;
	END IF;
	SELECT n.owner INTO o FROM recsys.model_names n WHERE n.name OPERATOR(pg_catalog.=) p_model FOR UPDATE;
	IF o IS NULL THEN
		-- row-level security hid the row from FOR UPDATE: someone else owns it
		RAISE EXCEPTION 'permission denied for model "%"', p_model
			USING ERRCODE = 'insufficient_privilege',
				DETAIL = format('Model "%s" belongs to role %s.', p_model, recsys.model_owner(p_model)),
				HINT = 'Only members of the owner role add versions to a model or drop it; choose another name.';
	END IF;
	-- the owner column follows the name's sequence (REASSIGN OWNED moves the
	-- sequence only)
	IF o IS DISTINCT FROM recsys.model_owner(p_model) THEN
		UPDATE recsys.model_names n SET owner = recsys.model_owner(p_model) WHERE n.name OPERATOR(pg_catalog.=) p_model;
	END IF;
	RETURN coalesce((SELECT max(m.version) FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model), 0)
		OPERATOR(pg_catalog.+) 1;
END
$$;
COMMENT ON FUNCTION recsys.next_model_version(text) IS
	'next version number of a model (creates the name owned by the current role if new; requires ownership otherwise; locks the name until the transaction ends)';

-- Give a model name to another role, by PostgreSQL's rule for ALTER ... OWNER
-- TO (checked by PostgreSQL itself on the name's sequence): the caller must
-- have the privileges of the current owner and be a member of the new owner,
-- or be a superuser.  On Citus the UPDATE reaches every node, whose trigger
-- moves that node's sequence.
CREATE FUNCTION recsys.transfer_model(model text, new_owner regrole) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_owner regrole := $2;
	n int;
BEGIN
	PERFORM recsys.check_model_name(p_model);
	IF p_owner IS NULL THEN
		RAISE EXCEPTION 'new owner must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF recsys.model_owner(p_model) IS NULL THEN
		RAISE EXCEPTION 'model "%" does not exist', p_model USING ERRCODE = 'undefined_object';
	END IF;
	UPDATE recsys.model_names m SET owner = p_owner WHERE m.name OPERATOR(pg_catalog.=) p_model;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n OPERATOR(pg_catalog.=) 0 THEN
		RAISE EXCEPTION 'permission denied for model "%"', p_model
			USING ERRCODE = 'insufficient_privilege',
				DETAIL = format('Model "%s" belongs to role %s.', p_model, recsys.model_owner(p_model)),
				HINT = 'Only a role with the privileges of the owner role, and a member of the new owner, gives a model away.';
	END IF;
END
$$;
COMMENT ON FUNCTION recsys.transfer_model(text, regrole) IS
	'give a model name (all its versions) to another role; the caller must have the privileges of the current owner and be a member of the new one (PostgreSQL''s rule for ALTER ... OWNER TO), or be a superuser';

-- Delete one version of a model, or all of them (and the name) when version
-- is NULL.  Only members of the owner role may.
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
			o := recsys.model_owner(p_model);
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

-- Ownership tests read the name's sequence.
ALTER POLICY model_names_owner ON recsys.model_names
	USING (recsys.model_owned(name)) WITH CHECK (recsys.model_owned(name));

-- Triggers of the store on Citus reference tables need this (as in
-- recsys.citus_attach_store); a no-op without Citus.
SELECT pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
ALTER TABLE recsys.user_vectors ENABLE ALWAYS TRIGGER touch_models_insert;
ALTER TABLE recsys.user_vectors ENABLE ALWAYS TRIGGER touch_models_update;
ALTER TABLE recsys.user_vectors ENABLE ALWAYS TRIGGER touch_models_delete;
ALTER TABLE recsys.user_vectors ENABLE ALWAYS TRIGGER touch_models_truncate;
ALTER TABLE recsys.item_vectors ENABLE ALWAYS TRIGGER touch_models_insert;
ALTER TABLE recsys.item_vectors ENABLE ALWAYS TRIGGER touch_models_update;
ALTER TABLE recsys.item_vectors ENABLE ALWAYS TRIGGER touch_models_delete;
ALTER TABLE recsys.item_vectors ENABLE ALWAYS TRIGGER touch_models_truncate;

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
	IF NEW.owner IS DISTINCT FROM own THEN
		-- PostgreSQL checks that the role may give the sequence away
		EXECUTE format('ALTER SEQUENCE recsys_names.%I OWNER TO %s', NEW.name, NEW.owner);
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION recsys.model_names_rules() IS
	'internal trigger: a new model name gets its sequence recsys_names.<name> owned by its owner; an owner change moves it (ALTER SEQUENCE OWNER TO''s rule); created_at and the name never change';

-- A deleted name's sequence goes with it (on every node).
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
	ELSIF recsys.model_owner(OLD.name) IS NOT NULL THEN
		EXECUTE format('DROP SEQUENCE recsys_names.%I', OLD.name);
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION recsys.model_names_release() IS
	'internal trigger: dropping a model name drops its sequence recsys_names.<name>';

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

-- Citus: a store attached after names were stored gives the workers' names
-- their sequences.
-- Give every model name of this node's store its sequence recsys_names.<name>
-- (owned by the owner the row records) where it has none: a worker whose
-- copy of the store arrived by citus_attach_store, not through the trigger.
CREATE FUNCTION recsys.citus_name_sequences() RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	n int := 0;
BEGIN
	FOR r IN EXECUTE format('SELECT m.name, m.owner FROM %s m WHERE recsys.model_owner(m.name) IS NULL',
			recsys.store_relation('model_names')) LOOP
		EXECUTE format('CREATE SEQUENCE recsys_names.%I', r.name);
		EXECUTE format('ALTER SEQUENCE recsys_names.%I OWNER TO %s', r.name, r.owner);
		n := n OPERATOR(pg_catalog.+) 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.citus_name_sequences() IS
	'internal: create the missing sequences recsys_names.<name> of this node''s model names, owned by their recorded owners';

-- Make the store's tables Citus reference tables (idempotent).
CREATE OR REPLACE FUNCTION recsys.citus_attach_store() RETURNS void
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
	-- the workers' copies of the names came without their sequences
	FOR r IN EXECUTE 'SELECT w.nodename, w.nodeport, w.success, w.result'
			' FROM pg_catalog.run_command_on_workers($1) w'
			USING 'SELECT recsys.citus_name_sequences()' LOOP
		IF NOT r.success THEN
			RAISE EXCEPTION 'could not create the model names'' sequences on worker %:%', r.nodename, r.nodeport
				USING ERRCODE = 'external_routine_exception', DETAIL = r.result;
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION recsys.citus_attach_store() IS
	'on a Citus coordinator: make the model store (model_names, models, user_vectors, item_vectors) reference tables, copied to every node; CREATE EXTENSION does it by itself where Citus was there first (idempotent)';
-- Feature specs: models that read table rows (issue 23)
-- Models with a feature spec score table rows: the row's columns are read by
-- the names in the spec (src/features/, doc/features.md)
CREATE FUNCTION recsys.predict(model text, "row" record, context real[] DEFAULT NULL,
	display_position int DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real[]
	AS 'MODULE_PATHNAME', 'mmoe_predict_row' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.predict(text, record, real[], int, int) IS
	'score one table row (a composite value) with a stored MMoE model that has a feature spec: one output per task in config order';

CREATE FUNCTION recsys.predict(model text, "row" record, task text, context real[] DEFAULT NULL,
	display_position int DEFAULT NULL, version int DEFAULT NULL)
	RETURNS real
	AS 'MODULE_PATHNAME', 'mmoe_predict_row_task' LANGUAGE C STABLE PARALLEL SAFE;
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

COMMENT ON FUNCTION recsys.predict_table(text, regclass, name, name, name, name, name, int) IS
	'score every row of a candidate table (read through a cursor in blocks of 1024 rows, each scored with sgemm): the id and the outputs per task; features_column NULL reads the columns the model''s feature spec names';

-- 0.3.0: recommendation quality (issue 26): method ease (its comment), Precision@k and MAP@k,
-- recsys.evaluate and recsys.tune_embeddings (src/sql/23_quality.sql, new objects)
COMMENT ON FUNCTION recsys.train_embeddings(text, regclass, name, name, name, int, text, int, double precision, double precision, jsonb) IS
	'train user and item embeddings over an interactions table (method als, sogram, sagram or sampled; als on the memory or the aggregate engine), or the item-item model of method ease, and store them as a new version of the model; one row (and NOTICE) per epoch';

CREATE FUNCTION recsys.precision_at_k(recommended bigint[], relevant bigint[], k int) RETURNS double precision
	AS 'MODULE_PATHNAME', 'precision_at_k' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.precision_at_k(bigint[], bigint[], int) IS
	'Precision@k: distinct relevant ids among the first k recommended, divided by k (a shorter list counts its missing positions as misses); NULL rules as recall_at_k';

CREATE FUNCTION recsys.map_at_k(recommended bigint[], relevant bigint[], k int) RETURNS double precision
	AS 'MODULE_PATHNAME', 'map_at_k' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.map_at_k(bigint[], bigint[], int) IS
	'AP@k (its mean over users is MAP@k): the sum over hit positions p <= k of (hits in the first p) / p, divided by min(k, |relevant|); NULL rules as recall_at_k';

-- Recommendation quality: recsys.evaluate (the documented LEFT JOIN recipe
-- as one call) and recsys.tune_embeddings (successive halving over a search
-- space, each trial trained and evaluated in a subtransaction that is rolled
-- back, the winner stored).  doc/embeddings.md#evaluate and #tune_embeddings.

-- Check that a column of a relation exists and holds smallint, integer or
-- bigint ids (the type OID is checked before anything reads the column, so no
-- cast of the caller's type runs); what names the argument in messages.
CREATE FUNCTION recsys.check_id_column(rel regclass, col name, what text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t oid;
BEGIN
	IF col IS NULL THEN
		RAISE EXCEPTION '% must not be NULL', what USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT a.atttypid INTO t FROM pg_catalog.pg_attribute a
		WHERE a.attrelid OPERATOR(pg_catalog.=) rel AND a.attname OPERATOR(pg_catalog.=) col
			AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
	IF t IS NULL THEN
		RAISE EXCEPTION 'column "%" of relation % does not exist', col, rel
			USING ERRCODE = 'undefined_column', DETAIL = format('It was given as the %s.', what);
	END IF;
	IF t OPERATOR(pg_catalog.<>) ALL (ARRAY['int2'::regtype, 'int4'::regtype, 'int8'::regtype]::oid[]) THEN
		RAISE EXCEPTION '% "%" must be of type smallint, integer, bigint, not %', what, col, t::regtype
			USING ERRCODE = 'datatype_mismatch';
	END IF;
END
$$;
COMMENT ON FUNCTION recsys.check_id_column(regclass, name, text) IS
	'error unless the column exists and is smallint, integer or bigint (used by evaluate and tune_embeddings)';

-- Evaluate an embeddings model version on held-out (user, item) rows: every
-- distinct test user counts (one the model does not know, or who gets no
-- recommendation, is a miss), relevant = the user's distinct test items.
CREATE FUNCTION recsys.evaluate(model text, test regclass, k int DEFAULT 20,
	user_column name DEFAULT 'user_id', item_column name DEFAULT 'item_id',
	exclude_seen boolean DEFAULT true, store boolean DEFAULT false, version int DEFAULT NULL)
RETURNS TABLE(recall_at_k double precision, ndcg_at_k double precision, precision_at_k double precision,
	map_at_k double precision, coverage double precision, users bigint, unknown_users bigint)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_k int := $3;
	p_exclude boolean := $6;
	v int;
	kind text;
	n_items bigint;
	nulls bigint;
	res record;
	n int;
BEGIN
	IF p_model IS NULL OR test IS NULL OR p_k IS NULL OR p_exclude IS NULL OR store IS NULL THEN
		RAISE EXCEPTION '% must not be NULL',
			CASE WHEN p_model IS NULL THEN 'model' WHEN test IS NULL THEN 'test' WHEN p_k IS NULL THEN 'k'
				WHEN p_exclude IS NULL THEN 'exclude_seen' ELSE 'store' END
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF p_k OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'k must be at least 1' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM recsys.check_id_column(test, user_column, 'user column');
	PERFORM recsys.check_id_column(test, item_column, 'item column');
	v := recsys.resolve_model_version(p_model, $8);
	EXECUTE format('SELECT m.kind FROM %s m WHERE m.name OPERATOR(pg_catalog.=) $1'
		' AND m.version OPERATOR(pg_catalog.=) $2', recsys.store_relation('models'))
		INTO kind USING p_model, v;
	IF kind OPERATOR(pg_catalog.<>) 'embeddings' THEN
		RAISE EXCEPTION 'model "%" version % is of kind %, not embeddings', p_model, v, kind
			USING ERRCODE = 'wrong_object_type';
	END IF;
	EXECUTE format('SELECT pg_catalog.count(*) FROM %s s WHERE s.%I IS NULL OR s.%I IS NULL',
		test, user_column, item_column) INTO nulls;
	IF nulls OPERATOR(pg_catalog.>) 0 THEN
		RAISE EXCEPTION 'test rows must not have NULL users or items'
			USING ERRCODE = 'null_value_not_allowed',
			DETAIL = format('%s rows of %s have a NULL %I or %I.', nulls, test, user_column, item_column);
	END IF;
	EXECUTE format('SELECT pg_catalog.count(*) FROM %s i WHERE i.model OPERATOR(pg_catalog.=) $1'
		' AND i.version OPERATOR(pg_catalog.=) $2', recsys.store_relation('item_vectors'))
		INTO n_items USING p_model, v;

	-- the recipe of doc/embeddings.md#evaluation, with the test users listed
	EXECUTE format($q$
		WITH t AS (SELECT CAST(s.%1$I AS pg_catalog.int8) AS user_id,
				pg_catalog.array_agg(DISTINCT CAST(s.%2$I AS pg_catalog.int8)) AS items
			FROM %3$s s GROUP BY 1),
		a AS (SELECT * FROM recsys.recommend_all($1, $2, (SELECT pg_catalog.array_agg(t.user_id) FROM t), $3, $4)),
		r AS (SELECT a.user_id, pg_catalog.array_agg(a.item_id ORDER BY a.rank) AS rec FROM a GROUP BY a.user_id)
		SELECT pg_catalog.avg(recsys.recall_at_k(r.rec, t.items, $2)) AS recall,
			pg_catalog.avg(recsys.ndcg_at_k(r.rec, t.items, $2)) AS ndcg,
			pg_catalog.avg(recsys.precision_at_k(r.rec, t.items, $2)) AS prec,
			pg_catalog.avg(recsys.map_at_k(r.rec, t.items, $2)) AS map,
			(SELECT pg_catalog.count(DISTINCT a.item_id) FROM a) AS recommended,
			pg_catalog.count(*) AS users,
			pg_catalog.count(*) FILTER (WHERE NOT EXISTS (SELECT FROM %4$s uv
				WHERE uv.model OPERATOR(pg_catalog.=) $1 AND uv.version OPERATOR(pg_catalog.=) $4
				AND uv.id OPERATOR(pg_catalog.=) t.user_id)) AS unknown
		FROM t LEFT JOIN r ON r.user_id OPERATOR(pg_catalog.=) t.user_id
		$q$, user_column, item_column, test, recsys.store_relation('user_vectors'))
		INTO res USING p_model, p_k, p_exclude, v;

	recall_at_k := res.recall;
	ndcg_at_k := res.ndcg;
	precision_at_k := res.prec;
	map_at_k := res.map;
	coverage := CASE WHEN n_items OPERATOR(pg_catalog.>) 0
		THEN res.recommended::float8 OPERATOR(pg_catalog./) n_items END;
	users := res.users;
	unknown_users := res.unknown;
	IF store THEN
		UPDATE recsys.models m SET metrics = pg_catalog.jsonb_set(m.metrics, '{evaluation}',
			pg_catalog.jsonb_build_object('test', test::text, 'k', p_k, 'exclude_seen', p_exclude,
				'recall_at_k', recall_at_k, 'ndcg_at_k', ndcg_at_k, 'precision_at_k', precision_at_k,
				'map_at_k', map_at_k, 'coverage', coverage, 'users', users, 'unknown_users', unknown_users,
				'at', pg_catalog.now()))
			WHERE m.name OPERATOR(pg_catalog.=) p_model AND m.version OPERATOR(pg_catalog.=) v;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n OPERATOR(pg_catalog.=) 0 THEN
			RAISE EXCEPTION 'permission denied to store metrics of model "%"', p_model
				USING ERRCODE = 'insufficient_privilege',
				HINT = 'Only members of the model''s owner role may write its versions.';
		END IF;
	END IF;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION recsys.evaluate(text, regclass, int, name, name, boolean, boolean, int) IS
	'Recall@k, NDCG@k, Precision@k, MAP@k (means over every distinct test user; unknown users are misses), coverage (distinct recommended items / items of the model), users and unknown users of an embeddings model on (user, item) test rows; store => true writes them into the version''s metrics.evaluation';

-- The default search space of tune_embeddings (doc/embeddings.md#tune_embeddings).
-- A scalar is fixed, an array is a choice, {"min", "max", "log"} a range
-- (log: log-uniform); dim and cg_steps ranges are rounded to integers.
CREATE FUNCTION recsys.tune_space() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT '{"method": ["als"], "solver": "cg", "cg_steps": 3,
		"dim": [32, 64, 128, 256],
		"l2": {"min": 0.001, "max": 1, "log": true},
		"nu": [0, 0.5, 1],
		"gramian_weight": {"min": 0.01, "max": 1, "log": true},
		"epochs": 15,
		"ease_l2": {"min": 10, "max": 10000, "log": true}}'::pg_catalog.jsonb
$$;
COMMENT ON FUNCTION recsys.tune_space() IS
	'the default search space of tune_embeddings; a space argument replaces its keys';

-- Draw one value of a search-space entry for trial `trial` of `trials`: a
-- Latin hypercube over the space (each key's [0, 1) is cut into `trials`
-- strata, dealt to the trials in an order drawn from (seed, key), with a
-- drawn offset inside the stratum), so that even a few trials cover every
-- key's range and a list's values evenly.  Deterministic in (seed, trials,
-- trial, key) alone.
CREATE FUNCTION recsys.tune_draw(spec jsonb, key text, trial int, trials int, seed bigint) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	h bigint := pg_catalog.hashtextextended(format('%s/%s', key, trial), seed);
	stratum bigint;
	-- the offset inside the stratum, uniform in [0, 1) from a hash's 53 high bits
	v float8 := ((pg_catalog.hashtextextended(format('%s#%s', key, trial), seed) OPERATOR(pg_catalog.>>) 11)
		OPERATOR(pg_catalog.&) 9007199254740991)::float8 OPERATOR(pg_catalog./) 9007199254740992.0;
	u float8;
	lo float8;
	hi float8;
	x float8;
	n int;
BEGIN
	-- the trial's stratum: the rank of its hash among the trials' hashes
	SELECT pg_catalog.count(*) INTO stratum FROM (SELECT j, pg_catalog.hashtextextended(format('%s/%s', key, j), seed) AS hj
		FROM pg_catalog.generate_series(1, trials) j) s
		WHERE s.hj OPERATOR(pg_catalog.<) h OR (s.hj OPERATOR(pg_catalog.=) h AND s.j OPERATOR(pg_catalog.<) trial);
	u := (stratum::float8 OPERATOR(pg_catalog.+) v) OPERATOR(pg_catalog./) trials;
	CASE pg_catalog.jsonb_typeof(spec)
	WHEN 'array' THEN
		n := pg_catalog.jsonb_array_length(spec);
		IF n OPERATOR(pg_catalog.=) 0 THEN
			RAISE EXCEPTION 'space key "%" is an empty list', key USING ERRCODE = 'invalid_parameter_value';
		END IF;
		RETURN spec OPERATOR(pg_catalog.->) floor(u OPERATOR(pg_catalog.*) n)::int;
	WHEN 'object' THEN
		IF NOT (spec OPERATOR(pg_catalog.?&) '{min,max}') OR
			pg_catalog.jsonb_typeof(spec OPERATOR(pg_catalog.->) 'min') OPERATOR(pg_catalog.<>) 'number' OR
			pg_catalog.jsonb_typeof(spec OPERATOR(pg_catalog.->) 'max') OPERATOR(pg_catalog.<>) 'number' THEN
			RAISE EXCEPTION 'space key "%" must be a number, a list or {"min": number, "max": number, "log": boolean}', key
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		lo := (spec OPERATOR(pg_catalog.->>) 'min')::float8;
		hi := (spec OPERATOR(pg_catalog.->>) 'max')::float8;
		IF lo OPERATOR(pg_catalog.>) hi THEN
			RAISE EXCEPTION 'space key "%" has min above max', key USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF COALESCE((spec OPERATOR(pg_catalog.->>) 'log')::boolean, false) THEN
			IF lo OPERATOR(pg_catalog.<=) 0 THEN
				RAISE EXCEPTION 'space key "%" is log-uniform and needs min > 0', key
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			x := exp(ln(lo) OPERATOR(pg_catalog.+) (u OPERATOR(pg_catalog.*) (ln(hi) OPERATOR(pg_catalog.-) ln(lo))));
		ELSE
			x := lo OPERATOR(pg_catalog.+) (u OPERATOR(pg_catalog.*) (hi OPERATOR(pg_catalog.-) lo));
		END IF;
		IF key OPERATOR(pg_catalog.=) ANY ('{dim,cg_steps,epochs}') THEN
			RETURN pg_catalog.to_jsonb(round(x)::int);
		END IF;
		IF x OPERATOR(pg_catalog.=) 0 THEN
			RETURN '0';
		END IF;
		-- four significant digits: readable parameters, the same for a seed
		RETURN pg_catalog.to_jsonb(round(x::numeric, 3 OPERATOR(pg_catalog.-) floor(log(x::numeric))::int));
	ELSE
		RETURN spec;
	END CASE;
END
$$;
COMMENT ON FUNCTION recsys.tune_draw(jsonb, text, int, int, bigint) IS
	'one value of a tune_embeddings search-space entry (number, list or range) for trial of trials and a seed: a Latin hypercube over the space';

-- Tune an embeddings model by successive halving: trials configurations are
-- drawn from the space; rung r trains the survivors for epochs / eta^(R-1-r)
-- epochs (each in a subtransaction that is rolled back: no version, vector or
-- name is left behind), evaluates them on validation and keeps the best
-- 1/eta (by metric, ties to the lower trial); the last rung has one
-- configuration, trained for the full epochs and stored as the model's next
-- version.  One row per training.
CREATE FUNCTION recsys.tune_embeddings(model text, train regclass, validation regclass,
	user_column name DEFAULT 'user_id', item_column name DEFAULT 'item_id',
	weight_column name DEFAULT NULL, k int DEFAULT 20, trials int DEFAULT 12,
	space jsonb DEFAULT '{}', seed bigint DEFAULT 0, metric text DEFAULT 'recall_at_k',
	eta int DEFAULT 3)
RETURNS TABLE(trial int, params jsonb, rung int, epochs int, recall_at_k double precision,
	ndcg_at_k double precision, seconds double precision, kept boolean)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning AS $$
#variable_conflict use_variable
DECLARE
	p_model text := $1;
	p_k int := $7;
	sp jsonb;
	key text;
	max_epochs int;
	sizes int[] := '{}';
	n_rungs int;
	alive int[];
	par jsonb[] := '{}';
	score float8[];
	rec float8[];
	nd float8[];
	secs float8[];
	ep int;
	t int;
	p jsonb;
	opts jsonb;
	last boolean;
	t0 timestamptz;
	r_rec float8;
	r_nd float8;
	keep int[];
	best_version int;
	ease_rec float8[] := '{}';	-- an ease trial's result by trial: EASE has no epochs to add
	ease_nd float8[] := '{}';
BEGIN
	IF p_model IS NULL OR train IS NULL OR validation IS NULL OR p_k IS NULL OR trials IS NULL
		OR space IS NULL OR seed IS NULL OR metric IS NULL OR eta IS NULL THEN
		RAISE EXCEPTION 'arguments of tune_embeddings other than weight_column must not be NULL'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF trials OPERATOR(pg_catalog.<) 1 OR trials OPERATOR(pg_catalog.>) 1000 THEN
		RAISE EXCEPTION 'trials must be between 1 and 1000' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF eta OPERATOR(pg_catalog.<) 2 THEN
		RAISE EXCEPTION 'eta must be at least 2' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF metric OPERATOR(pg_catalog.<>) ALL ('{recall_at_k,ndcg_at_k}') THEN
		RAISE EXCEPTION 'metric must be recall_at_k or ndcg_at_k' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF pg_catalog.jsonb_typeof(space) OPERATOR(pg_catalog.<>) 'object' THEN
		RAISE EXCEPTION 'space must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR key IN SELECT pg_catalog.jsonb_object_keys(space) LOOP
		IF NOT (recsys.tune_space() OPERATOR(pg_catalog.?) key) THEN
			RAISE EXCEPTION 'unknown space key "%"', key USING ERRCODE = 'invalid_parameter_value',
				HINT = 'Keys: method, solver, cg_steps, dim, l2, nu, gramian_weight, epochs, ease_l2.';
		END IF;
	END LOOP;
	sp := recsys.tune_space() OPERATOR(pg_catalog.||) space;
	IF pg_catalog.jsonb_typeof(sp OPERATOR(pg_catalog.->) 'epochs') OPERATOR(pg_catalog.<>) 'number' THEN
		RAISE EXCEPTION 'space key "epochs" must be a number: the epochs of the last rung'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	max_epochs := (sp OPERATOR(pg_catalog.->>) 'epochs')::int;
	IF max_epochs OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'space key "epochs" must be at least 1' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM recsys.check_id_column(train, user_column, 'user column');
	PERFORM recsys.check_id_column(train, item_column, 'item column');
	PERFORM recsys.check_id_column(validation, user_column, 'user column');
	PERFORM recsys.check_id_column(validation, item_column, 'item column');

	-- the rungs: trials, trials / eta, ... down to one configuration
	t := trials;
	LOOP
		sizes := sizes OPERATOR(pg_catalog.||) t;
		EXIT WHEN t OPERATOR(pg_catalog.=) 1;
		t := greatest(1, t OPERATOR(pg_catalog./) eta);
	END LOOP;
	n_rungs := pg_catalog.cardinality(sizes);

	-- every trial's parameters, drawn from (seed, trial, key)
	FOR i IN 1..trials LOOP
		p := pg_catalog.jsonb_build_object('method', recsys.tune_draw(sp OPERATOR(pg_catalog.->) 'method', 'method', i, trials, seed));
		IF p OPERATOR(pg_catalog.->>) 'method' OPERATOR(pg_catalog.=) 'ease' THEN
			p := p OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('l2',
				recsys.tune_draw(sp OPERATOR(pg_catalog.->) 'ease_l2', 'ease_l2', i, trials, seed));
		ELSE
			FOREACH key IN ARRAY ARRAY['dim', 'l2', 'nu', 'gramian_weight'] LOOP
				p := p OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(key,
					recsys.tune_draw(sp OPERATOR(pg_catalog.->) key, key, i, trials, seed));
			END LOOP;
			IF p OPERATOR(pg_catalog.->>) 'method' OPERATOR(pg_catalog.=) 'als' THEN
				p := p OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
					'solver', recsys.tune_draw(sp OPERATOR(pg_catalog.->) 'solver', 'solver', i, trials, seed),
					'cg_steps', recsys.tune_draw(sp OPERATOR(pg_catalog.->) 'cg_steps', 'cg_steps', i, trials, seed));
			END IF;
		END IF;
		par := par OPERATOR(pg_catalog.||) p;
	END LOOP;

	alive := ARRAY(SELECT pg_catalog.generate_series(1, trials));
	FOR r IN 1..n_rungs LOOP
		last := r OPERATOR(pg_catalog.=) n_rungs;
		ep := greatest(1, round(max_epochs OPERATOR(pg_catalog./)
			power(eta, n_rungs OPERATOR(pg_catalog.-) r)::float8)::int);
		score := '{}';
		rec := '{}';
		nd := '{}';
		secs := '{}';
		FOREACH t IN ARRAY alive LOOP
			p := par[t];
			IF p OPERATOR(pg_catalog.->>) 'method' OPERATOR(pg_catalog.=) 'ease' THEN
				opts := pg_catalog.jsonb_build_object('l2', p OPERATOR(pg_catalog.->) 'l2');
			ELSE
				opts := pg_catalog.jsonb_build_object('seed', seed, 'nu', p OPERATOR(pg_catalog.->) 'nu');
				IF p OPERATOR(pg_catalog.->>) 'method' OPERATOR(pg_catalog.=) 'als' THEN
					opts := opts OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
						'solver', p OPERATOR(pg_catalog.->) 'solver', 'cg_steps', p OPERATOR(pg_catalog.->) 'cg_steps');
				END IF;
			END IF;
			t0 := pg_catalog.clock_timestamp();
			IF NOT last AND ease_rec[t] IS NOT NULL THEN
				r_rec := ease_rec[t];
				r_nd := ease_nd[t];
			ELSIF last THEN
				PERFORM recsys.tune_train(p_model, train, user_column, item_column, weight_column, p, ep, opts);
				SELECT e.recall_at_k, e.ndcg_at_k INTO r_rec, r_nd
					FROM recsys.evaluate(p_model, validation, p_k, user_column, item_column) e;
			ELSE
				-- a subtransaction rolled back on purpose: the trial leaves nothing
				BEGIN
					PERFORM recsys.tune_train(p_model, train, user_column, item_column, weight_column, p, ep, opts);
					SELECT e.recall_at_k, e.ndcg_at_k INTO r_rec, r_nd
						FROM recsys.evaluate(p_model, validation, p_k, user_column, item_column) e;
					RAISE EXCEPTION USING ERRCODE = 'RSTUN';
				EXCEPTION WHEN SQLSTATE 'RSTUN' THEN
					NULL;
				END;
			END IF;
			IF p OPERATOR(pg_catalog.->>) 'method' OPERATOR(pg_catalog.=) 'ease' THEN
				ease_rec[t] := r_rec;
				ease_nd[t] := r_nd;
			END IF;
			rec := rec OPERATOR(pg_catalog.||) r_rec;
			nd := nd OPERATOR(pg_catalog.||) r_nd;
			score := score OPERATOR(pg_catalog.||) CASE WHEN metric OPERATOR(pg_catalog.=) 'recall_at_k' THEN r_rec ELSE r_nd END;
			secs := secs OPERATOR(pg_catalog.||) extract(epoch FROM pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) t0)::float8;
		END LOOP;
		-- the best of the rung go on (NULL scores last, ties to the lower trial)
		keep := CASE WHEN last THEN alive ELSE ARRAY(
			SELECT s.t FROM unnest(alive, score) WITH ORDINALITY s(t, sc, o)
			ORDER BY s.sc DESC NULLS LAST, s.t LIMIT sizes[r OPERATOR(pg_catalog.+) 1]) END;
		FOR i IN 1..pg_catalog.cardinality(alive) LOOP
			trial := alive[i];
			params := par[alive[i]];
			rung := r;
			epochs := CASE WHEN params OPERATOR(pg_catalog.->>) 'method' OPERATOR(pg_catalog.=) 'ease' THEN NULL ELSE ep END;
			recall_at_k := rec[i];
			ndcg_at_k := nd[i];
			seconds := secs[i];
			kept := alive[i] OPERATOR(pg_catalog.=) ANY (keep);
			RETURN NEXT;
		END LOOP;
		alive := ARRAY(SELECT x FROM unnest(keep) x ORDER BY x);
	END LOOP;

	-- the tuning, recorded with the stored version
	best_version := recsys.resolve_model_version(p_model);
	UPDATE recsys.models m SET metrics = pg_catalog.jsonb_set(m.metrics, '{tuning}',
		pg_catalog.jsonb_build_object('space', sp, 'trials', trials, 'eta', eta, 'seed', seed,
			'metric', metric, 'k', p_k, 'validation', validation::text, 'params', par[alive[1]],
			'recall_at_k', recall_at_k, 'ndcg_at_k', ndcg_at_k))
		WHERE m.name OPERATOR(pg_catalog.=) p_model AND m.version OPERATOR(pg_catalog.=) best_version;
END
$$;
COMMENT ON FUNCTION recsys.tune_embeddings(text, regclass, regclass, name, name, name, int, int, jsonb, bigint, text, int) IS
	'tune train_embeddings by successive halving over a search space (recsys.tune_space(), overridden by space), evaluated on validation; stores the best as the model''s next version; one row per training';

-- Train one tune_embeddings configuration (params: method, dim, l2, nu,
-- gramian_weight, solver, cg_steps) for the given epochs.
CREATE FUNCTION recsys.tune_train(model text, train regclass, user_column name, item_column name,
	weight_column name, params jsonb, epochs int, options jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF params OPERATOR(pg_catalog.->>) 'method' OPERATOR(pg_catalog.=) 'ease' THEN
		PERFORM recsys.train_embeddings(model, train, user_column, item_column, weight_column,
			method => 'ease', options => options);
	ELSE
		PERFORM recsys.train_embeddings(model, train, user_column, item_column, weight_column,
			dim => (params OPERATOR(pg_catalog.->>) 'dim')::int,
			method => params OPERATOR(pg_catalog.->>) 'method', epochs => epochs,
			gramian_weight => (params OPERATOR(pg_catalog.->>) 'gramian_weight')::float8,
			l2 => (params OPERATOR(pg_catalog.->>) 'l2')::float8, options => options);
	END IF;
END
$$;
COMMENT ON FUNCTION recsys.tune_train(text, regclass, name, name, name, jsonb, int, jsonb) IS
	'train one tune_embeddings configuration (internal to tune_embeddings)';
