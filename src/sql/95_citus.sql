-- The model store on a Citus cluster: its four tables as reference tables
-- (a copy on every node, written through Citus's two-phase commit), so that
-- functions running on the workers read models where the query runs.  The
-- install script converts the store itself on a coordinator
-- (99_citus_install.sql); these functions are for a cluster where Citus came
-- after recsys, and for DROP EXTENSION.  See doc/citus.md.

-- Citus functions are called by their pg_catalog names: they exist only
-- where the citus extension is created, which both functions check first.

-- Raise an error unless this database is a Citus coordinator
CREATE FUNCTION recsys.citus_check_coordinator(caller text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	g int;
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
		RAISE EXCEPTION '% needs the citus extension in this database', caller
			USING ERRCODE = 'object_not_in_prerequisite_state',
				HINT = 'Without Citus the store is a set of ordinary tables; there is nothing to attach or detach.';
	END IF;
	EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO g;
	IF g IS DISTINCT FROM 0 THEN
		RAISE EXCEPTION '% must run on the Citus coordinator', caller
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
END
$$;
COMMENT ON FUNCTION recsys.citus_check_coordinator(text) IS
	'internal: raise an error unless this database is a Citus coordinator';

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
CREATE FUNCTION recsys.citus_attach_store() RETURNS void
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

-- A placement created while the install script runs (the coordinator's)
-- becomes a member of the extension; Citus could then not drop it.  Take the
-- placements out of the extension.
CREATE FUNCTION recsys.citus_release_placements() RETURNS void
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

-- Empty the store on every node and drop its placements: required before
-- DROP EXTENSION recsys on Citus, which would leave the placements (and the
-- weights in them) on the nodes.
CREATE FUNCTION recsys.citus_detach_store() RETURNS void
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
