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
