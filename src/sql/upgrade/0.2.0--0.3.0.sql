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

-- 0.3.0: versions in production (issue 21): monotonic versions, aliases,
-- promote and rollback, the store's history, guarded input contracts,
-- retention, the registry view, exclusions.  Models stored by 0.2.0 get no
-- alias: the newest version of each keeps serving.

-- version numbers are never given twice: the highest given so far
ALTER TABLE recsys.model_names ADD COLUMN last_version int NOT NULL DEFAULT 0 CHECK (last_version >= 0);
UPDATE recsys.model_names n SET last_version = coalesce((SELECT max(m.version) FROM recsys.models m
	WHERE m.name OPERATOR(pg_catalog.=) n.name), 0);

-- Named pointers to versions (serving, canary, ...): a call without a
-- version serves the version under the alias serving, else the newest.
-- Written by recsys.set_alias, promote and rollback (06_lifecycle.sql).
CREATE TABLE recsys.model_aliases (
	model		text NOT NULL,
	alias		text NOT NULL CHECK (alias ~ '^[A-Za-z0-9_.-]+$' AND octet_length(alias) <= 63),
	version		int NOT NULL,
	PRIMARY KEY (model, alias)
);
COMMENT ON TABLE recsys.model_aliases IS
	'aliases of model versions (serving, canary, ...): calls without a version serve the version under serving, else the newest';
SELECT pg_catalog.pg_extension_config_dump('recsys.model_aliases', '');

-- The store's history: every version stored, alias moved and version
-- dropped, with who, when and from which source.  Kept after the versions
-- it names are dropped (numbering and rollback read it).
CREATE TABLE recsys.model_events (
	model		text NOT NULL,
	seq			int NOT NULL CHECK (seq >= 1),
	event		text NOT NULL CHECK (event IN ('trained', 'imported', 'promoted', 'alias_set',
		'alias_dropped', 'rolled_back', 'dropped')),
	version		int,
	alias		text,
	actor		name NOT NULL DEFAULT current_user,
	at			timestamptz NOT NULL DEFAULT now(),
	detail		jsonb NOT NULL DEFAULT '{}',
	PRIMARY KEY (model, seq)
);
COMMENT ON TABLE recsys.model_events IS
	'history of the model store, one row per event of a model name in order (seq): trained, imported, promoted, alias_set, alias_dropped, rolled_back, dropped; who (actor), when (at) and details (source, previous version)';
SELECT pg_catalog.pg_extension_config_dump('recsys.model_events', '');

DO $$
BEGIN
	IF NOT recsys.citus_worker() THEN
		ALTER TABLE recsys.model_aliases ADD CONSTRAINT model_aliases_model_version_fkey
			FOREIGN KEY (model, version) REFERENCES recsys.models (name, version) ON DELETE CASCADE;
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION recsys.next_model_version(model text) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	o regrole;
	v int;
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
	-- numbers are never reused: past the highest ever given, also to a
	-- dropped name of the same spelling (its history stays in model_events)
	v := GREATEST(
		(SELECT n.last_version FROM recsys.model_names n WHERE n.name OPERATOR(pg_catalog.=) p_model),
		(SELECT max(m.version) FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model),
		(SELECT max(e.version) FROM recsys.model_events e WHERE e.model OPERATOR(pg_catalog.=) p_model), 0)
		OPERATOR(pg_catalog.+) 1;
	UPDATE recsys.model_names n SET last_version = v WHERE n.name OPERATOR(pg_catalog.=) p_model;
	RETURN v;
END
$$;
COMMENT ON FUNCTION recsys.next_model_version(text) IS
	'next version number of a model, never one given before (creates the name owned by the current role if new; requires ownership otherwise; locks the name until the transaction ends)';

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
	-- no version: the one under the alias serving (a foreign key keeps it
	-- stored), else the newest; this node's placements on Citus (see
	-- recsys.store_relation)
	IF p_version IS NULL THEN
		EXECUTE format('SELECT a.version FROM %s a WHERE a.model OPERATOR(pg_catalog.=) $1'
			' AND a.alias OPERATOR(pg_catalog.=) ''serving''', recsys.store_relation('model_aliases'))
			INTO v USING p_model;
		IF v IS NOT NULL THEN
			RETURN v;
		END IF;
	END IF;
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
	'the version of a model to use: the one given, else the one under the alias serving, else the newest; error if none';

-- Versions in production: aliases (serving, canary, ...), promote and
-- rollback, the event history, retention, the input contract of a name and
-- the registry view.  The tables are in 01_tables.sql, their rules in
-- 90_store_rules.sql; version numbering and resolution in 05_models.sql.
--
-- Every function that writes an alias or an event first locks the name's
-- model_names row (FOR UPDATE: only members of the owner role can, by
-- row-level security), so alias moves, trainers and drops of one name are
-- serialized and the history is in the order things happened.

-- Lock a model name for a change of its aliases or versions, or raise the
-- error for an unknown name or one the current role does not own.
CREATE FUNCTION recsys.lock_model(model text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
BEGIN
	IF p_model IS NULL THEN
		RAISE EXCEPTION 'model name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM FROM recsys.model_names n WHERE n.name OPERATOR(pg_catalog.=) p_model FOR UPDATE;
	IF NOT FOUND THEN
		IF recsys.model_owner(p_model) IS NULL THEN
			RAISE EXCEPTION 'model "%" does not exist', p_model USING ERRCODE = 'undefined_object';
		END IF;
		-- row-level security hid the row from FOR UPDATE: someone else owns it
		RAISE EXCEPTION 'permission denied for model "%"', p_model
			USING ERRCODE = 'insufficient_privilege',
				DETAIL = format('Model "%s" belongs to role %s.', p_model, recsys.model_owner(p_model)),
				HINT = 'Only members of the owner role move the aliases of a model or drop its versions.';
	END IF;
END
$$;
COMMENT ON FUNCTION recsys.lock_model(text) IS
	'internal: lock a model name until the transaction ends (error unless it exists and the current role is a member of its owner)';

-- Append an event to the history of a model name (the caller holds the
-- name's lock, so seq is the next number); returns its seq.
CREATE FUNCTION recsys.log_model_event(model text, event text, version int, alias text, detail jsonb)
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s int;
BEGIN
	SELECT coalesce(max(e.seq), 0) OPERATOR(pg_catalog.+) 1 INTO s
		FROM recsys.model_events e WHERE e.model OPERATOR(pg_catalog.=) $1;
	INSERT INTO recsys.model_events (model, seq, event, version, alias, detail)
		VALUES ($1, s, $2, $3, $4, coalesce($5, '{}'));
	RETURN s;
END
$$;
COMMENT ON FUNCTION recsys.log_model_event(text, text, int, text, jsonb) IS
	'internal: append an event to the history of a model name (recsys.model_events); returns its sequence number';

-- The serving history is a chain: each event of the alias serving names in
-- detail.previous_event the serving event it replaced, so rollback walks
-- back without replaying the history.  Get the newest one.
CREATE FUNCTION recsys.serving_event(model text) RETURNS int
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
	SELECT max(e.seq) FROM recsys.model_events e
	WHERE e.model OPERATOR(pg_catalog.=) $1 AND e.alias OPERATOR(pg_catalog.=) 'serving'
$$;
COMMENT ON FUNCTION recsys.serving_event(text) IS
	'internal: the sequence number of the newest event of a model''s alias serving, NULL if none';

-- Point an alias at a version (the caller holds the name's lock and checked
-- its arguments); logs event unless the alias already points there.
CREATE FUNCTION recsys.move_alias(model text, alias text, version int, event text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_alias text := $2;
	p_version int := $3;
	old int;
	detail jsonb;
BEGIN
	IF NOT EXISTS (SELECT FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model
			AND m.version OPERATOR(pg_catalog.=) p_version) THEN
		RAISE EXCEPTION 'model "%" has no version %', p_model, p_version USING ERRCODE = 'undefined_object';
	END IF;
	SELECT a.version INTO old FROM recsys.model_aliases a
		WHERE a.model OPERATOR(pg_catalog.=) p_model AND a.alias OPERATOR(pg_catalog.=) p_alias;
	IF old OPERATOR(pg_catalog.=) p_version THEN
		RETURN;
	END IF;
	-- one row per alias: a concurrent reader sees the old or the new version
	UPDATE recsys.model_aliases a SET version = p_version
		WHERE a.model OPERATOR(pg_catalog.=) p_model AND a.alias OPERATOR(pg_catalog.=) p_alias;
	IF NOT FOUND THEN
		INSERT INTO recsys.model_aliases (model, alias, version) VALUES (p_model, p_alias, p_version);
	END IF;
	detail := pg_catalog.jsonb_build_object('from', old);
	IF p_alias OPERATOR(pg_catalog.=) 'serving' THEN
		detail := detail OPERATOR(pg_catalog.||)
			pg_catalog.jsonb_build_object('previous_event', recsys.serving_event(p_model));
	END IF;
	PERFORM recsys.log_model_event(p_model, event, p_version, p_alias, detail);
END
$$;
COMMENT ON FUNCTION recsys.move_alias(text, text, int, text) IS
	'internal: point an alias of a model at a version and log the event (the caller holds the name''s lock)';

-- Raise an error unless the text is a usable alias name
CREATE FUNCTION recsys.check_alias_name(alias text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'alias must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF $1 OPERATOR(pg_catalog.!~) '^[A-Za-z0-9_.-]+$' OR pg_catalog.octet_length($1) OPERATOR(pg_catalog.>) 63 THEN
		RAISE EXCEPTION 'invalid alias "%"', $1
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'An alias is 1 to 63 letters, digits, underscores, dots or hyphens.';
	END IF;
END
$$;
COMMENT ON FUNCTION recsys.check_alias_name(text) IS
	'internal: raise an error unless the text is a usable alias (1 to 63 letters, digits, _ . -)';

CREATE FUNCTION recsys.set_alias(model text, alias text, version int) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM recsys.check_alias_name($2);
	IF $3 IS NULL THEN
		RAISE EXCEPTION 'version must not be NULL' USING ERRCODE = 'null_value_not_allowed',
			HINT = 'recsys.drop_alias removes an alias.';
	END IF;
	PERFORM recsys.lock_model($1);
	PERFORM recsys.move_alias($1, $2, $3, 'alias_set');
END
$$;
COMMENT ON FUNCTION recsys.set_alias(text, text, int) IS
	'point an alias of a model (serving, canary, ...) at a version, in one transaction; only members of the owner role may';

CREATE FUNCTION recsys.drop_alias(model text, alias text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_alias text := $2;
	old int;
BEGIN
	PERFORM recsys.check_alias_name(p_alias);
	PERFORM recsys.lock_model(p_model);
	DELETE FROM recsys.model_aliases a
		WHERE a.model OPERATOR(pg_catalog.=) p_model AND a.alias OPERATOR(pg_catalog.=) p_alias
		RETURNING a.version INTO old;
	IF old IS NULL THEN
		RAISE EXCEPTION 'model "%" has no alias "%"', p_model, p_alias USING ERRCODE = 'undefined_object';
	END IF;
	PERFORM recsys.log_model_event(p_model, 'alias_dropped', old, p_alias,
		CASE WHEN p_alias OPERATOR(pg_catalog.=) 'serving'
			THEN pg_catalog.jsonb_build_object('previous_event', recsys.serving_event(p_model)) END);
END
$$;
COMMENT ON FUNCTION recsys.drop_alias(text, text) IS
	'remove an alias of a model (without serving, the newest version serves); only members of the owner role may';

CREATE FUNCTION recsys.alias_version(model text, alias text) RETURNS int
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v int;
BEGIN
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'model name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM recsys.check_alias_name($2);
	-- this node's placement on Citus (see recsys.store_relation)
	EXECUTE format('SELECT a.version FROM %s a WHERE a.model OPERATOR(pg_catalog.=) $1'
		' AND a.alias OPERATOR(pg_catalog.=) $2', recsys.store_relation('model_aliases'))
		INTO v USING $1, $2;
	-- never NULL: version => NULL would quietly serve another version
	IF v IS NULL THEN
		RAISE EXCEPTION 'model "%" has no alias "%"', $1, $2 USING ERRCODE = 'undefined_object';
	END IF;
	RETURN v;
END
$$;
COMMENT ON FUNCTION recsys.alias_version(text, text) IS
	'the version an alias of a model points at (error if the alias does not exist), e.g. version => recsys.alias_version(''m'', ''canary'')';

CREATE FUNCTION recsys.promote(model text, version int) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF $2 IS NULL THEN
		RAISE EXCEPTION 'version must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM recsys.lock_model($1);
	PERFORM recsys.move_alias($1, 'serving', $2, 'promoted');
END
$$;
COMMENT ON FUNCTION recsys.promote(text, int) IS
	'serve a version of a model: point its alias serving at it (calls without a version then use it); only members of the owner role may';

CREATE FUNCTION recsys.rollback(model text) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	cur int;
	p int;
	e record;
BEGIN
	PERFORM recsys.lock_model(p_model);
	SELECT a.version INTO cur FROM recsys.model_aliases a
		WHERE a.model OPERATOR(pg_catalog.=) p_model AND a.alias OPERATOR(pg_catalog.=) 'serving';
	IF cur IS NULL THEN
		RAISE EXCEPTION 'model "%" has no serving version to roll back', p_model
			USING ERRCODE = 'object_not_in_prerequisite_state',
				HINT = 'recsys.promote sets the serving version.';
	END IF;
	-- back along the chain of serving events: the first one that served
	-- another version that is still stored
	SELECT (e.detail OPERATOR(pg_catalog.->>) 'previous_event')::int INTO p FROM recsys.model_events e
		WHERE e.model OPERATOR(pg_catalog.=) p_model AND e.seq OPERATOR(pg_catalog.=) recsys.serving_event(p_model);
	LOOP
		IF p IS NULL THEN
			RAISE EXCEPTION 'model "%" has no earlier serving version to roll back to', p_model
				USING ERRCODE = 'object_not_in_prerequisite_state',
					DETAIL = format('Version %s serves; no version that served before it is still stored.', cur);
		END IF;
		SELECT e.* INTO e FROM recsys.model_events e
			WHERE e.model OPERATOR(pg_catalog.=) p_model AND e.seq OPERATOR(pg_catalog.=) p;
		EXIT WHEN e.event OPERATOR(pg_catalog.<>) 'alias_dropped' AND e.version OPERATOR(pg_catalog.<>) cur
			AND EXISTS (SELECT FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model
				AND m.version OPERATOR(pg_catalog.=) e.version);
		p := (e.detail OPERATOR(pg_catalog.->>) 'previous_event')::int;
	END LOOP;
	UPDATE recsys.model_aliases a SET version = e.version
		WHERE a.model OPERATOR(pg_catalog.=) p_model AND a.alias OPERATOR(pg_catalog.=) 'serving';
	-- the new event stands where e stood in the chain: a second rollback
	-- goes further back
	PERFORM recsys.log_model_event(p_model, 'rolled_back', e.version, 'serving',
		pg_catalog.jsonb_build_object('from', cur, 'previous_event',
			(e.detail OPERATOR(pg_catalog.->>) 'previous_event')::int));
	RETURN e.version;
END
$$;
COMMENT ON FUNCTION recsys.rollback(text) IS
	'point the alias serving of a model back at the version that served before (by the history in recsys.model_events, skipping dropped versions) and return it; repeated calls go further back';

-- Delete the versions of a name that are stored and listed, after logging
-- them (the event needs the name's owner, which a released name has not);
-- a name left without versions is released.  The caller holds the lock.
CREATE FUNCTION recsys.delete_versions(model text, versions int[], detail jsonb) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v int;
	n int;
BEGIN
	FOREACH v IN ARRAY versions LOOP
		PERFORM recsys.log_model_event($1, 'dropped', v, NULL, $3);
	END LOOP;
	DELETE FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) $1
		AND m.version OPERATOR(pg_catalog.=) ANY ($2);
	GET DIAGNOSTICS n = ROW_COUNT;
	DELETE FROM recsys.model_names mn WHERE mn.name OPERATOR(pg_catalog.=) $1
		AND NOT EXISTS (SELECT 1 FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) $1);
	RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.delete_versions(text, int[], jsonb) IS
	'internal: log and delete versions of a model (the caller holds the name''s lock); a name left without versions is released';

CREATE FUNCTION recsys.prune_versions(model text, keep int) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_keep int := $2;
	gone int[];
BEGIN
	IF p_keep IS NULL THEN
		RAISE EXCEPTION 'keep must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF p_keep OPERATOR(pg_catalog.<) 0 THEN
		RAISE EXCEPTION 'keep must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM recsys.lock_model(p_model);
	-- all but the newest keep, never a version under an alias
	SELECT coalesce(pg_catalog.array_agg(m.version ORDER BY m.version), '{}') INTO gone
	FROM (SELECT m.version, pg_catalog.row_number() OVER (ORDER BY m.version DESC) AS r
		FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model) m
	WHERE m.r OPERATOR(pg_catalog.>) p_keep
		AND NOT EXISTS (SELECT FROM recsys.model_aliases a WHERE a.model OPERATOR(pg_catalog.=) p_model
			AND a.version OPERATOR(pg_catalog.=) m.version);
	RETURN recsys.delete_versions(p_model, gone, pg_catalog.jsonb_build_object('pruned', true, 'keep', p_keep));
END
$$;
COMMENT ON FUNCTION recsys.prune_versions(text, int) IS
	'drop all but the newest keep versions of a model, never one under an alias; returns how many were dropped; only members of the owner role may';

-- The input contract of an MMoE config: what callers pass (dense width,
-- categorical features and their vocabularies, context width, position
-- buckets, the tasks they read back).  With a feature spec, callers pass
-- table columns: the columns of each kind take the place of the dense width
-- and the vocabularies, which fitting derives (and which the spec maps).
CREATE FUNCTION recsys.mmoe_contract(config jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN $1 OPERATOR(pg_catalog.?) 'features' THEN
		pg_catalog.jsonb_build_object('features', coalesce((SELECT pg_catalog.jsonb_object_agg(k.key,
				(SELECT coalesce(pg_catalog.jsonb_agg(CASE WHEN pg_catalog.jsonb_typeof(c.e) OPERATOR(pg_catalog.=) 'string'
						THEN c.e ELSE c.e OPERATOR(pg_catalog.->) 'column' END ORDER BY c.o), '[]')
					FROM pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof(k.value) OPERATOR(pg_catalog.=) 'array'
						THEN k.value ELSE '[]' END) WITH ORDINALITY c(e, o)))
			FROM pg_catalog.jsonb_each(CASE WHEN pg_catalog.jsonb_typeof($1 OPERATOR(pg_catalog.->) 'features')
				OPERATOR(pg_catalog.=) 'object' THEN $1 OPERATOR(pg_catalog.->) 'features' ELSE '{}' END) k
			WHERE k.key OPERATOR(pg_catalog.<>) 'fitted'), '{}'))
	ELSE pg_catalog.jsonb_build_object(
		'input_dim', $1 OPERATOR(pg_catalog.->) 'input_dim',
		'categorical', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
				'name', c.e OPERATOR(pg_catalog.->) 'name', 'vocab', c.e OPERATOR(pg_catalog.->) 'vocab') ORDER BY c.o)
			FROM pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof($1 OPERATOR(pg_catalog.->) 'categorical')
				OPERATOR(pg_catalog.=) 'array' THEN $1 OPERATOR(pg_catalog.->) 'categorical' ELSE '[]' END)
				WITH ORDINALITY c(e, o)), '[]')) END
	OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
		'context_dim', coalesce($1 OPERATOR(pg_catalog.#>) '{latent_cross,context_dim}', '0'),
		'position_buckets', coalesce($1 OPERATOR(pg_catalog.#>) '{shallow_tower,position_buckets}', '0'),
		'tasks', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
				'name', t.e OPERATOR(pg_catalog.->) 'name', 'type', t.e OPERATOR(pg_catalog.->) 'type') ORDER BY t.o)
			FROM pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof($1 OPERATOR(pg_catalog.->) 'tasks')
				OPERATOR(pg_catalog.=) 'array' THEN $1 OPERATOR(pg_catalog.->) 'tasks' ELSE '[]' END)
				WITH ORDINALITY t(e, o)), '[]'))
$$;
COMMENT ON FUNCTION recsys.mmoe_contract(jsonb) IS
	'the input contract of an MMoE config: input_dim and the categorical features with vocabulary sizes (with a feature spec instead: its columns of each kind), context_dim, position_buckets, tasks with their types';

-- Begin storing a new version: check the options the store reads (promote,
-- allow_contract_change), number the version (locks the name), refuse
-- another kind, and refuse an MMoE input contract other than the one that
-- serves unless options.allow_contract_change.  Trainers call it before
-- any work.
CREATE FUNCTION recsys.begin_model_version(model text, kind text, config jsonb, options jsonb)
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_kind text := $2;
	p_config jsonb := $3;
	p_options jsonb := coalesce($4, '{}');
	k text;
	v int;
	ref int;
	aliased boolean;
	old jsonb;
	new jsonb;
	diff text;
BEGIN
	IF pg_catalog.jsonb_typeof(p_options) OPERATOR(pg_catalog.<>) 'object' THEN
		RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOREACH k IN ARRAY ARRAY['promote', 'allow_contract_change'] LOOP
		IF p_options OPERATOR(pg_catalog.?) k
				AND pg_catalog.jsonb_typeof(p_options OPERATOR(pg_catalog.->) k) OPERATOR(pg_catalog.<>) 'boolean' THEN
			RAISE EXCEPTION 'options.% must be true or false', k USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	v := recsys.next_model_version(p_model);
	SELECT m.kind INTO k FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model LIMIT 1;
	IF k OPERATOR(pg_catalog.<>) p_kind THEN
		RAISE EXCEPTION 'model "%" holds % models, not %', p_model, k, p_kind
			USING ERRCODE = 'wrong_object_type',
				DETAIL = format('Every version of a model name is of one kind; "%s" has versions of kind %s.', p_model, k),
				HINT = 'Store the new model under another name.';
	END IF;
	IF p_kind OPERATOR(pg_catalog.=) 'mmoe' AND p_config IS NOT NULL AND k IS NOT NULL
			AND NOT coalesce((p_options OPERATOR(pg_catalog.->>) 'allow_contract_change')::boolean, false) THEN
		ref := recsys.resolve_model_version(p_model);
		aliased := EXISTS (SELECT FROM recsys.model_aliases a WHERE a.model OPERATOR(pg_catalog.=) p_model
			AND a.alias OPERATOR(pg_catalog.=) 'serving');
		SELECT recsys.mmoe_contract(m.config) INTO old FROM recsys.models m
			WHERE m.name OPERATOR(pg_catalog.=) p_model AND m.version OPERATOR(pg_catalog.=) ref;
		new := recsys.mmoe_contract(p_config);
		IF old IS DISTINCT FROM new THEN
			SELECT pg_catalog.string_agg(format('%s %s -> %s', x.key, coalesce(old OPERATOR(pg_catalog.->) x.key, 'null'),
					coalesce(new OPERATOR(pg_catalog.->) x.key, 'null')), '; ' ORDER BY x.key) INTO diff
			FROM (SELECT pg_catalog.jsonb_object_keys(old) AS key UNION SELECT pg_catalog.jsonb_object_keys(new)) x
			WHERE (old OPERATOR(pg_catalog.->) x.key) IS DISTINCT FROM (new OPERATOR(pg_catalog.->) x.key);
			RAISE EXCEPTION 'input contract of model "%" would change', p_model
				USING ERRCODE = 'invalid_object_definition',
					DETAIL = format('Version %s (%s) and the new version differ: %s.', ref,
						CASE WHEN aliased THEN 'serving' ELSE 'newest' END, diff),
					HINT = 'Callers pass inputs by this contract. Store the new model under another name, or pass options {"allow_contract_change": true} and promote it when the callers are ready.';
		END IF;
	END IF;
	RETURN v;
END
$$;
COMMENT ON FUNCTION recsys.begin_model_version(text, text, jsonb, jsonb) IS
	'internal: the next version of a model for a trainer or import (locks the name); refuses another kind, and an MMoE input contract other than the serving (else newest) version''s unless options.allow_contract_change';

-- Finish storing a new version: log it with its source, and promote it when
-- options.promote.
CREATE FUNCTION recsys.finish_model_version(model text, version int, event text, options jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	d jsonb;
BEGIN
	SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
			'kind', m.kind,
			'source', coalesce(m.config OPERATOR(pg_catalog.#>) '{source,table}',
				m.metrics OPERATOR(pg_catalog.#>) '{training,source}'),
			'method', m.config OPERATOR(pg_catalog.->) 'method',
			'dim', m.config OPERATOR(pg_catalog.->) 'dim',
			'bytes', pg_catalog.octet_length(m.weights)))
		INTO d FROM recsys.models m
		WHERE m.name OPERATOR(pg_catalog.=) $1 AND m.version OPERATOR(pg_catalog.=) $2;
	IF d IS NULL THEN
		RAISE EXCEPTION 'model "%" has no version %', $1, $2 USING ERRCODE = 'undefined_object';
	END IF;
	PERFORM recsys.log_model_event($1, $3, $2, NULL, d);
	IF coalesce(($4 OPERATOR(pg_catalog.->>) 'promote')::boolean, false) THEN
		PERFORM recsys.move_alias($1, 'serving', $2, 'promoted');
	END IF;
END
$$;
COMMENT ON FUNCTION recsys.finish_model_version(text, int, text, jsonb) IS
	'internal: log a version just stored (trained or imported, with its source) and promote it when options.promote';

-- One row per stored version: what it is, what serves, how it was trained
-- and what it weighs.  SECURITY INVOKER: the caller's privileges and
-- row-level security apply to every table it reads.
CREATE VIEW recsys.model_versions WITH (security_invoker = true) AS
SELECT m.name AS model, m.version, m.kind,
	coalesce((SELECT pg_catalog.array_agg(a.alias ORDER BY a.alias) FROM recsys.model_aliases a
		WHERE a.model OPERATOR(pg_catalog.=) m.name AND a.version OPERATOR(pg_catalog.=) m.version),
		'{}'::text[]) AS aliases,
	m.version OPERATOR(pg_catalog.=) coalesce(
		(SELECT a.version FROM recsys.model_aliases a WHERE a.model OPERATOR(pg_catalog.=) m.name
			AND a.alias OPERATOR(pg_catalog.=) 'serving'),
		(SELECT max(n.version) FROM recsys.models n WHERE n.name OPERATOR(pg_catalog.=) m.name)) AS serving,
	CASE WHEN m.kind OPERATOR(pg_catalog.=) 'mmoe' THEN recsys.mmoe_contract(m.config)
		ELSE pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('dim', m.config OPERATOR(pg_catalog.->) 'dim',
			'method', m.config OPERATOR(pg_catalog.->) 'method', 'n_users', m.config OPERATOR(pg_catalog.->) 'n_users',
			'n_items', m.config OPERATOR(pg_catalog.->) 'n_items')) END AS summary,
	CASE WHEN pg_catalog.jsonb_typeof(m.metrics OPERATOR(pg_catalog.->) 'log') OPERATOR(pg_catalog.=) 'array'
		THEN pg_catalog.jsonb_array_length(m.metrics OPERATOR(pg_catalog.->) 'log') END AS epochs,
	(m.metrics OPERATOR(pg_catalog.#>>) '{log,-1,loss}')::double precision AS final_loss,
	coalesce((m.metrics OPERATOR(pg_catalog.->>) 'train_seconds')::double precision,
		(SELECT sum((l.e OPERATOR(pg_catalog.->>) 'seconds')::double precision)
			FROM pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof(m.metrics OPERATOR(pg_catalog.->) 'log')
				OPERATOR(pg_catalog.=) 'array' THEN m.metrics OPERATOR(pg_catalog.->) 'log' ELSE '[]' END) l(e)))
		AS train_seconds,
	m.metrics,
	coalesce(pg_catalog.octet_length(m.weights), 0)
		OPERATOR(pg_catalog.+) coalesce((SELECT sum(pg_catalog.pg_column_size(u.embedding) OPERATOR(pg_catalog.+)
			pg_catalog.pg_column_size(u.seen))::bigint FROM recsys.user_vectors u
			WHERE u.model OPERATOR(pg_catalog.=) m.name AND u.version OPERATOR(pg_catalog.=) m.version), 0)
		OPERATOR(pg_catalog.+) coalesce((SELECT sum(pg_catalog.pg_column_size(i.embedding))::bigint FROM recsys.item_vectors i
			WHERE i.model OPERATOR(pg_catalog.=) m.name AND i.version OPERATOR(pg_catalog.=) m.version), 0)
		AS size_bytes,
	m.created_by, m.created_at
FROM recsys.models m;
COMMENT ON VIEW recsys.model_versions IS
	'one row per stored model version: kind, aliases, whether it serves calls without a version, dims or input contract, training summary (epochs, final loss, seconds), metrics, size in bytes (weights and vectors), provenance';

CREATE OR REPLACE FUNCTION recsys.drop_model(model text, version int DEFAULT NULL) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_version int := $2;
	n int := 0;
	o regrole;
	gone int[];
	held text;
BEGIN
	IF p_model IS NULL THEN
		RAISE EXCEPTION 'model name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- the name's lock orders the drop with trainers and alias moves; a role
	-- that does not own the name cannot take it (row-level security)
	PERFORM FROM recsys.model_names mn WHERE mn.name OPERATOR(pg_catalog.=) p_model FOR UPDATE;
	IF FOUND THEN
		SELECT pg_catalog.array_agg(m.version ORDER BY m.version) INTO gone FROM recsys.models m
			WHERE m.name OPERATOR(pg_catalog.=) p_model
				AND (p_version IS NULL OR m.version OPERATOR(pg_catalog.=) p_version);
		-- a version under an alias goes only with the whole name: dropping it
		-- alone would move its callers to another version unannounced
		SELECT pg_catalog.string_agg(a.alias, ', ' ORDER BY a.alias) INTO held FROM recsys.model_aliases a
			WHERE a.model OPERATOR(pg_catalog.=) p_model AND a.version OPERATOR(pg_catalog.=) p_version;
		IF held IS NOT NULL THEN
			RAISE EXCEPTION 'model "%" version % is under alias %', p_model, p_version, held
				USING ERRCODE = 'object_in_use',
					HINT = 'Point the alias at another version (recsys.promote, recsys.set_alias) or drop it (recsys.drop_alias) first.';
		END IF;
		n := recsys.delete_versions(p_model, coalesce(gone, '{}'),
			CASE WHEN p_version IS NULL THEN '{"all": true}'::jsonb END);
	END IF;
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
	RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.drop_model(text, int) IS
	'delete one version of a model (not one under an alias), or all its versions, aliases and its name when version is NULL; returns the number deleted; only members of the owner role may; the history stays';

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

CREATE OR REPLACE FUNCTION recsys.model_names_rules() RETURNS trigger
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

CREATE OR REPLACE FUNCTION recsys.import_model(model text, weights bytea, config jsonb DEFAULT NULL) RETURNS int
LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
	SELECT recsys.import_model($1, $2, $3, '{}'::jsonb)
$$;
COMMENT ON FUNCTION recsys.import_model(text, bytea, jsonb) IS
	'import an MMoE model from safetensors bytes (config from the argument or __metadata__.recsys) as the next version of model; returns the version';

-- options are the store's: promote, allow_contract_change
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

COMMENT ON FUNCTION recsys.export_model(text, int) IS
	'a stored MMoE model (the serving version, else the newest, unless one is named) as safetensors bytes, with its config in __metadata__.recsys';

COMMENT ON FUNCTION recsys.embedding_model_version(text, int) IS
	'the version of an embeddings model to serve: the one given, else the one under the alias serving, else the newest; error if none or of another kind';
COMMENT ON FUNCTION recsys.user_embeddings(text, int) IS
	'user vectors of a version of an embeddings model (default: the serving one, else the newest), in id order';
COMMENT ON FUNCTION recsys.item_embeddings(text, int) IS
	'item vectors of a version of an embeddings model (default: the serving one, else the newest), in id order';
COMMENT ON FUNCTION recsys.recommend(text, bigint, int, boolean, int) IS
	'top-k items of a stored user by <x_u, y_i> under a version of an embeddings model (default: the serving one, else the newest), best first (ties: smaller id), without the user''s training items when exclude_seen; no rows for an unknown or NULL user';

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

-- tune_embeddings scores the version it just trained, not the serving one
CREATE OR REPLACE FUNCTION recsys.tune_embeddings(model text, train regclass, validation regclass,
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
				-- the version just trained (the newest: the name is locked), not the serving one
				SELECT e.recall_at_k, e.ndcg_at_k INTO r_rec, r_nd
					FROM recsys.evaluate(p_model, validation, p_k, user_column, item_column,
						version => (SELECT max(m.version) FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model)) e;
			ELSE
				-- a subtransaction rolled back on purpose: the trial leaves nothing
				BEGIN
					PERFORM recsys.tune_train(p_model, train, user_column, item_column, weight_column, p, ep, opts);
					SELECT e.recall_at_k, e.ndcg_at_k INTO r_rec, r_nd
						FROM recsys.evaluate(p_model, validation, p_k, user_column, item_column,
							version => (SELECT max(m.version) FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model)) e;
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
	-- the version stored last (a serving alias may point elsewhere)
	best_version := (SELECT max(m.version) FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model);
	UPDATE recsys.models m SET metrics = pg_catalog.jsonb_set(m.metrics, '{tuning}',
		pg_catalog.jsonb_build_object('space', sp, 'trials', trials, 'eta', eta, 'seed', seed,
			'metric', metric, 'k', p_k, 'validation', validation::text, 'params', par[alive[1]],
			'recall_at_k', recall_at_k, 'ndcg_at_k', ndcg_at_k))
		WHERE m.name OPERATOR(pg_catalog.=) p_model AND m.version OPERATOR(pg_catalog.=) best_version;
END
$$;
COMMENT ON FUNCTION recsys.tune_embeddings(text, regclass, regclass, name, name, name, int, int, jsonb, bigint, text, int) IS
	'tune train_embeddings by successive halving over a search space (recsys.tune_space(), overridden by space), evaluated on validation; stores the best as the model''s next version; one row per training';

CREATE OR REPLACE FUNCTION recsys.citus_attach_store() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	store regclass[] := ARRAY['recsys.model_names', 'recsys.models', 'recsys.user_vectors',
		'recsys.item_vectors', 'recsys.model_aliases', 'recsys.model_events']::regclass[];
	fkeys text[] := ARRAY['recsys.models', 'models_name_fkey',
		'recsys.user_vectors', 'user_vectors_model_version_fkey',
		'recsys.item_vectors', 'item_vectors_model_version_fkey',
		'recsys.model_aliases', 'model_aliases_model_version_fkey'];
	n int;
	t regclass;
	r record;
	fresh boolean;
BEGIN
	PERFORM recsys.citus_check_coordinator('recsys.citus_attach_store()');
	EXECUTE 'SELECT count(*) FROM pg_catalog.pg_dist_partition p'
		' WHERE p.logicalrelid OPERATOR(pg_catalog.=) ANY ($1)' INTO n USING store;
	IF n OPERATOR(pg_catalog.=) 6 THEN
		RETURN;
	END IF;
	-- 4: a store attached by 0.2.0, whose new tables (model_aliases,
	-- model_events) an update added; they are converted below
	EXECUTE 'SELECT count(*) FROM pg_catalog.pg_dist_partition p'
		' WHERE p.logicalrelid OPERATOR(pg_catalog.=) ANY ($1)' INTO n USING store[1:4];
	IF n OPERATOR(pg_catalog.<>) 0 AND n OPERATOR(pg_catalog.<>) 4 THEN
		RAISE EXCEPTION 'only % of the 6 store tables are Citus tables', n
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
	FOR i IN 1 .. 4 LOOP
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
		EXECUTE 'SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p'
			' WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1)' INTO fresh USING t;
		IF fresh THEN
			EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING t;
		END IF;
	END LOOP;
	-- Citus copies these to the workers' tables and to every placement
	ALTER TABLE recsys.models ADD CONSTRAINT models_name_fkey
		FOREIGN KEY (name) REFERENCES recsys.model_names (name) ON DELETE CASCADE;
	ALTER TABLE recsys.user_vectors ADD CONSTRAINT user_vectors_model_version_fkey
		FOREIGN KEY (model, version) REFERENCES recsys.models (name, version) ON DELETE CASCADE;
	ALTER TABLE recsys.item_vectors ADD CONSTRAINT item_vectors_model_version_fkey
		FOREIGN KEY (model, version) REFERENCES recsys.models (name, version) ON DELETE CASCADE;
	ALTER TABLE recsys.model_aliases ADD CONSTRAINT model_aliases_model_version_fkey
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
	'on a Citus coordinator: make the model store (model_names, models, user_vectors, item_vectors, model_aliases, model_events) reference tables, copied to every node; CREATE EXTENSION does it by itself where Citus was there first (idempotent)';

CREATE OR REPLACE FUNCTION recsys.citus_release_placements() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t text;
	rel regclass;
BEGIN
	-- by name (store_relation), not from pg_class: Citus hides placements
	-- from queries of pg_class
	FOREACH t IN ARRAY ARRAY['model_names', 'models', 'user_vectors', 'item_vectors', 'model_aliases',
			'model_events'] LOOP
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

CREATE OR REPLACE FUNCTION recsys.citus_detach_store() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	store regclass[] := ARRAY['recsys.model_events', 'recsys.model_aliases', 'recsys.item_vectors',
		'recsys.user_vectors', 'recsys.models', 'recsys.model_names']::regclass[];
	t regclass;
BEGIN
	PERFORM recsys.citus_check_coordinator('recsys.citus_detach_store()');
	PERFORM recsys.citus_release_placements();
	-- through Citus's two-phase commit: no weights remain on any node
	TRUNCATE recsys.model_events, recsys.model_aliases, recsys.item_vectors, recsys.user_vectors,
		recsys.models, recsys.model_names;
	FOREACH t IN ARRAY store LOOP
		EXECUTE 'SELECT pg_catalog.citus_drop_all_shards($1, $2, $3)'
			USING t, 'recsys', (SELECT c.relname::text FROM pg_catalog.pg_class c
				WHERE c.oid OPERATOR(pg_catalog.=) t);
	END LOOP;
END
$$;
COMMENT ON FUNCTION recsys.citus_detach_store() IS
	'on a Citus coordinator, before DROP EXTENSION recsys: delete every stored model on every node and drop the store''s placements (the store is unusable afterwards)';

-- a Citus coordinator whose store 0.2.0 attached: the new tables become
-- reference tables too
DO $$
DECLARE
	n int;
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus')
			AND NOT recsys.citus_worker() THEN
		EXECUTE 'SELECT count(*) FROM pg_catalog.pg_dist_partition p'
			' WHERE p.logicalrelid OPERATOR(pg_catalog.=) ''recsys.models''::pg_catalog.regclass' INTO n;
		IF n OPERATOR(pg_catalog.>) 0 THEN
			PERFORM recsys.citus_attach_store();
		END IF;
	END IF;
END
$$;

-- Roles that read or wrote the store keep doing so: calls without a version
-- now read model_aliases, and trainers write model_events (and promote):
-- every role granted SELECT or INSERT on recsys.models gets the same on the
-- new tables.
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT DISTINCT a.privilege_type AS p,
			CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
				ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END AS who
		FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
		WHERE c.oid OPERATOR(pg_catalog.=) 'recsys.models'::pg_catalog.regclass
			AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
			AND a.privilege_type OPERATOR(pg_catalog.=) ANY (ARRAY['SELECT', 'INSERT']) LOOP
		IF r.p OPERATOR(pg_catalog.=) 'SELECT' THEN
			EXECUTE format('GRANT SELECT ON recsys.model_aliases, recsys.model_events, recsys.model_versions TO %s', r.who);
		ELSE
			EXECUTE format('GRANT INSERT, UPDATE, DELETE ON recsys.model_aliases TO %s', r.who);
			EXECUTE format('GRANT INSERT ON recsys.model_events TO %s', r.who);
		END IF;
	END LOOP;
END
$$;

-- Unknown model names: one error (recsys.raise_model_missing) that suggests
-- the nearest visible names, used by the functions that reported it themselves
-- The one error for an unknown model (42704), also raised by the C code:
-- for a name without versions it suggests the nearest names the caller can
-- read, as PostgreSQL does for a misspelt column.
CREATE FUNCTION recsys.raise_model_missing(model text, version int DEFAULT NULL) RETURNS void
	AS 'MODULE_PATHNAME', 'model_raise_missing' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.raise_model_missing(text, int) IS
	'raise "model does not exist" (or "has no version", when a version is given) with the nearest visible model names as a hint';

CREATE OR REPLACE FUNCTION recsys.transfer_model(model text, new_owner regrole) RETURNS void
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
		PERFORM recsys.raise_model_missing(p_model);
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
	-- no version: the one under the alias serving (a foreign key keeps it
	-- stored), else the newest; this node's placements on Citus (see
	-- recsys.store_relation)
	IF p_version IS NULL THEN
		EXECUTE format('SELECT a.version FROM %s a WHERE a.model OPERATOR(pg_catalog.=) $1'
			' AND a.alias OPERATOR(pg_catalog.=) ''serving''', recsys.store_relation('model_aliases'))
			INTO v USING p_model;
		IF v IS NOT NULL THEN
			RETURN v;
		END IF;
	END IF;
	EXECUTE format('SELECT max(m.version) FROM %s m WHERE m.name OPERATOR(pg_catalog.=) $1'
		' AND ($2 IS NULL OR m.version OPERATOR(pg_catalog.=) $2)', recsys.store_relation('models'))
		INTO v USING p_model, p_version;
	IF v IS NULL THEN
		PERFORM recsys.raise_model_missing(p_model, p_version);
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
	n int := 0;
	o regrole;
	gone int[];
	held text;
BEGIN
	IF p_model IS NULL THEN
		RAISE EXCEPTION 'model name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- the name's lock orders the drop with trainers and alias moves; a role
	-- that does not own the name cannot take it (row-level security)
	PERFORM FROM recsys.model_names mn WHERE mn.name OPERATOR(pg_catalog.=) p_model FOR UPDATE;
	IF FOUND THEN
		SELECT pg_catalog.array_agg(m.version ORDER BY m.version) INTO gone FROM recsys.models m
			WHERE m.name OPERATOR(pg_catalog.=) p_model
				AND (p_version IS NULL OR m.version OPERATOR(pg_catalog.=) p_version);
		-- a version under an alias goes only with the whole name: dropping it
		-- alone would move its callers to another version unannounced
		SELECT pg_catalog.string_agg(a.alias, ', ' ORDER BY a.alias) INTO held FROM recsys.model_aliases a
			WHERE a.model OPERATOR(pg_catalog.=) p_model AND a.version OPERATOR(pg_catalog.=) p_version;
		IF held IS NOT NULL THEN
			RAISE EXCEPTION 'model "%" version % is under alias %', p_model, p_version, held
				USING ERRCODE = 'object_in_use',
					HINT = 'Point the alias at another version (recsys.promote, recsys.set_alias) or drop it (recsys.drop_alias) first.';
		END IF;
		n := recsys.delete_versions(p_model, coalesce(gone, '{}'),
			CASE WHEN p_version IS NULL THEN '{"all": true}'::jsonb END);
	END IF;
	IF n OPERATOR(pg_catalog.=) 0 THEN
		IF EXISTS (SELECT 1 FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model
				AND (p_version IS NULL OR m.version OPERATOR(pg_catalog.=) p_version)) THEN
			o := recsys.model_owner(p_model);
			RAISE EXCEPTION 'permission denied for model "%"', p_model
				USING ERRCODE = 'insufficient_privilege',
					DETAIL = format('Model "%s" belongs to role %s.', p_model, o),
					HINT = 'Only members of the owner role drop a model.';
		END IF;
		PERFORM recsys.raise_model_missing(p_model, p_version);
	END IF;
	RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION recsys.lock_model(model text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
BEGIN
	IF p_model IS NULL THEN
		RAISE EXCEPTION 'model name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM FROM recsys.model_names n WHERE n.name OPERATOR(pg_catalog.=) p_model FOR UPDATE;
	IF NOT FOUND THEN
		IF recsys.model_owner(p_model) IS NULL THEN
			PERFORM recsys.raise_model_missing(p_model);
		END IF;
		-- row-level security hid the row from FOR UPDATE: someone else owns it
		RAISE EXCEPTION 'permission denied for model "%"', p_model
			USING ERRCODE = 'insufficient_privilege',
				DETAIL = format('Model "%s" belongs to role %s.', p_model, recsys.model_owner(p_model)),
				HINT = 'Only members of the owner role move the aliases of a model or drop its versions.';
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION recsys.move_alias(model text, alias text, version int, event text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	p_model text := $1;
	p_alias text := $2;
	p_version int := $3;
	old int;
	detail jsonb;
BEGIN
	IF NOT EXISTS (SELECT FROM recsys.models m WHERE m.name OPERATOR(pg_catalog.=) p_model
			AND m.version OPERATOR(pg_catalog.=) p_version) THEN
		PERFORM recsys.raise_model_missing(p_model, p_version);
	END IF;
	SELECT a.version INTO old FROM recsys.model_aliases a
		WHERE a.model OPERATOR(pg_catalog.=) p_model AND a.alias OPERATOR(pg_catalog.=) p_alias;
	IF old OPERATOR(pg_catalog.=) p_version THEN
		RETURN;
	END IF;
	-- one row per alias: a concurrent reader sees the old or the new version
	UPDATE recsys.model_aliases a SET version = p_version
		WHERE a.model OPERATOR(pg_catalog.=) p_model AND a.alias OPERATOR(pg_catalog.=) p_alias;
	IF NOT FOUND THEN
		INSERT INTO recsys.model_aliases (model, alias, version) VALUES (p_model, p_alias, p_version);
	END IF;
	detail := pg_catalog.jsonb_build_object('from', old);
	IF p_alias OPERATOR(pg_catalog.=) 'serving' THEN
		detail := detail OPERATOR(pg_catalog.||)
			pg_catalog.jsonb_build_object('previous_event', recsys.serving_event(p_model));
	END IF;
	PERFORM recsys.log_model_event(p_model, event, p_version, p_alias, detail);
END
$$;

CREATE OR REPLACE FUNCTION recsys.finish_model_version(model text, version int, event text, options jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	d jsonb;
BEGIN
	SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
			'kind', m.kind,
			'source', coalesce(m.config OPERATOR(pg_catalog.#>) '{source,table}',
				m.metrics OPERATOR(pg_catalog.#>) '{training,source}'),
			'method', m.config OPERATOR(pg_catalog.->) 'method',
			'dim', m.config OPERATOR(pg_catalog.->) 'dim',
			'bytes', pg_catalog.octet_length(m.weights)))
		INTO d FROM recsys.models m
		WHERE m.name OPERATOR(pg_catalog.=) $1 AND m.version OPERATOR(pg_catalog.=) $2;
	IF d IS NULL THEN
		PERFORM recsys.raise_model_missing($1, $2);
	END IF;
	PERFORM recsys.log_model_event($1, $3, $2, NULL, d);
	IF coalesce(($4 OPERATOR(pg_catalog.->>) 'promote')::boolean, false) THEN
		PERFORM recsys.move_alias($1, 'serving', $2, 'promoted');
	END IF;
END
$$;

-- Running trainings (train_embeddings, train_mmoe) of the whole cluster, from
-- shared memory: needs recsys in shared_preload_libraries (else an error
-- that says so).  As pg_stat_progress_*: pid, database and role for every
-- row, the rest only with the privileges of the training's role or of
-- pg_read_all_stats.
CREATE FUNCTION recsys.training_progress()
	RETURNS TABLE(pid int, datid oid, userid oid, function text, model text, method text,
		phase text, epoch int, epochs int, done bigint, total bigint, unit text,
		started_at timestamptz, phase_started_at timestamptz, updated_at timestamptz,
		phase_seconds_left double precision)
	AS 'MODULE_PATHNAME', 'training_progress' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.training_progress() IS
	'the trainings running in the cluster: function, model, method, phase, epoch of epochs, work done of total (unit), times, and an estimate of the phase''s remaining seconds; needs recsys in shared_preload_libraries';

-- tune_space: nu fixed at 1, l2 and gramian_weight re-centred, dims 64 to 256
-- (the definition of src/sql/23_quality.sql)
CREATE OR REPLACE FUNCTION recsys.tune_space() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
	SELECT '{"method": ["als"], "solver": "cg", "cg_steps": 3,
		"dim": [64, 128, 256],
		"l2": {"min": 0.003, "max": 0.1, "log": true},
		"nu": 1,
		"gramian_weight": {"min": 0.01, "max": 0.3, "log": true},
		"epochs": 15,
		"ease_l2": {"min": 10, "max": 10000, "log": true}}'::pg_catalog.jsonb
$$;
COMMENT ON FUNCTION recsys.tune_space() IS
	'the default search space of tune_embeddings; a space argument replaces its keys';

-- two-tower models (issue 24; src/sql/23_two_tower.sql)
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

-- export_model exports two-tower models (their weights, config in __metadata__.recsys)
CREATE OR REPLACE FUNCTION recsys.export_model(model text, version int DEFAULT NULL) RETURNS bytea
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

-- train_two_tower stores through begin/finish_model_version: its 'trained'
-- event names the feature tables as well as the interactions.
CREATE OR REPLACE FUNCTION recsys.finish_model_version(model text, version int, event text, options jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	d jsonb;
BEGIN
	SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
			'kind', m.kind,
			'source', coalesce(m.config OPERATOR(pg_catalog.#>) '{source,table}',
				m.metrics OPERATOR(pg_catalog.#>) '{training,source}'),
			'user_features', m.config OPERATOR(pg_catalog.#>) '{source,user_features}',
			'item_features', m.config OPERATOR(pg_catalog.#>) '{source,item_features}',
			'method', m.config OPERATOR(pg_catalog.->) 'method',
			'dim', m.config OPERATOR(pg_catalog.->) 'dim',
			'bytes', pg_catalog.octet_length(m.weights)))
		INTO d FROM recsys.models m
		WHERE m.name OPERATOR(pg_catalog.=) $1 AND m.version OPERATOR(pg_catalog.=) $2;
	IF d IS NULL THEN
		PERFORM recsys.raise_model_missing($1, $2);
	END IF;
	PERFORM recsys.log_model_event($1, $3, $2, NULL, d);
	IF coalesce(($4 OPERATOR(pg_catalog.->>) 'promote')::boolean, false) THEN
		PERFORM recsys.move_alias($1, 'serving', $2, 'promoted');
	END IF;
END
$$;

-- The vectors belong to their models rows by statement-level triggers
-- instead of the foreign keys user_vectors_model_version_fkey and
-- item_vectors_model_version_fkey, whose per-row checks cost about half of
-- storing a model (90_store_rules.sql).  On a Citus coordinator the drop
-- reaches every node's tables and placements; the triggers need
-- citus.enable_unsafe_triggers (as in recsys.citus_attach_store).
CREATE OR REPLACE FUNCTION recsys.vectors_touch_models() RETURNS trigger
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

CREATE OR REPLACE FUNCTION recsys.model_names_release() RETURNS trigger
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

SELECT pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
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

DO $$
BEGIN
	IF NOT recsys.citus_worker() THEN
		ALTER TABLE recsys.user_vectors DROP CONSTRAINT IF EXISTS user_vectors_model_version_fkey;
		ALTER TABLE recsys.item_vectors DROP CONSTRAINT IF EXISTS item_vectors_model_version_fkey;
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION recsys.citus_attach_store() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	store regclass[] := ARRAY['recsys.model_names', 'recsys.models', 'recsys.user_vectors',
		'recsys.item_vectors', 'recsys.model_aliases', 'recsys.model_events']::regclass[];
	fkeys text[] := ARRAY['recsys.models', 'models_name_fkey',
		'recsys.user_vectors', 'user_vectors_model_version_fkey',
		'recsys.item_vectors', 'item_vectors_model_version_fkey',
		'recsys.model_aliases', 'model_aliases_model_version_fkey'];
	n int;
	t regclass;
	r record;
	fresh boolean;
BEGIN
	PERFORM recsys.citus_check_coordinator('recsys.citus_attach_store()');
	EXECUTE 'SELECT count(*) FROM pg_catalog.pg_dist_partition p'
		' WHERE p.logicalrelid OPERATOR(pg_catalog.=) ANY ($1)' INTO n USING store;
	IF n OPERATOR(pg_catalog.=) 6 THEN
		RETURN;
	END IF;
	-- 4: a store attached by 0.2.0, whose new tables (model_aliases,
	-- model_events) an update added; they are converted below
	EXECUTE 'SELECT count(*) FROM pg_catalog.pg_dist_partition p'
		' WHERE p.logicalrelid OPERATOR(pg_catalog.=) ANY ($1)' INTO n USING store[1:4];
	IF n OPERATOR(pg_catalog.<>) 0 AND n OPERATOR(pg_catalog.<>) 4 THEN
		RAISE EXCEPTION 'only % of the 6 store tables are Citus tables', n
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
	FOR i IN 1 .. 4 LOOP
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
		EXECUTE 'SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p'
			' WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1)' INTO fresh USING t;
		IF fresh THEN
			EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING t;
		END IF;
	END LOOP;
	-- Citus copies these to the workers' tables and to every placement (the
	-- vectors' foreign keys of 0.2.0, dropped above, are triggers now)
	ALTER TABLE recsys.models ADD CONSTRAINT models_name_fkey
		FOREIGN KEY (name) REFERENCES recsys.model_names (name) ON DELETE CASCADE;
	ALTER TABLE recsys.model_aliases ADD CONSTRAINT model_aliases_model_version_fkey
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
	'on a Citus coordinator: make the model store (model_names, models, user_vectors, item_vectors, model_aliases, model_events) reference tables, copied to every node; CREATE EXTENSION does it by itself where Citus was there first (idempotent)';

-- Per-row predict over a table row without a composite value per row (issue 23)
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

ALTER FUNCTION recsys.predict(text, record, real[], int, int) SUPPORT recsys.predict_row_support;
ALTER FUNCTION recsys.predict(text, record, text, real[], int, int) SUPPORT recsys.predict_row_support;
