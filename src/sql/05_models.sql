-- The model store shared by embeddings and MMoE models: names and owners,
-- version numbering, resolution and drop.  The tables are in 01_tables.sql,
-- their rules (ownership, provenance, cache identity) in 90_store_rules.sql.

CREATE FUNCTION recsys.check_model_name(model text) RETURNS void
	AS 'MODULE_PATHNAME', 'model_check_name' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.check_model_name(text) IS
	'raise an error unless the text is a usable model name (not NULL, not blank, at most 63 bytes)';

-- The one error for an unknown model (42704), also raised by the C code:
-- for a name without versions it suggests the nearest names the caller can
-- read, as PostgreSQL does for a misspelt column.
CREATE FUNCTION recsys.raise_model_missing(model text, version int DEFAULT NULL) RETURNS void
	AS 'MODULE_PATHNAME', 'model_raise_missing' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.raise_model_missing(text, int) IS
	'raise "model does not exist" (or "has no version", when a version is given) with the nearest visible model names as a hint';

-- Ownership test of the row-level security policies (90_store_rules.sql):
-- a function rather than a subquery, because Citus refuses policies with
-- subqueries on its tables; it reads this node's placement of model_names
-- on Citus, and keeps its answer per statement for a bulk write.
CREATE FUNCTION recsys.model_owned(model text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'model_owned' LANGUAGE C STABLE STRICT PARALLEL SAFE SECURITY INVOKER;
COMMENT ON FUNCTION recsys.model_owned(text) IS
	'whether the current role is a member of the owner role of a model name (false for an unknown name); the store''s row-level security test';

-- Which relation this node reads for a store table: its Citus placement
-- (recsys.models_<shardid>) where there is one, else the table.
CREATE FUNCTION recsys.store_relation(store_table text) RETURNS regclass
	AS 'MODULE_PATHNAME', 'model_store_relation' LANGUAGE C STABLE STRICT PARALLEL SAFE SECURITY INVOKER;
COMMENT ON FUNCTION recsys.store_relation(text) IS
	'the relation this node reads for a store table (model_names, models, user_vectors, item_vectors): its Citus placement on this node when there is one, else the table';

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

-- Get the next version number of a model, holding a lock on its name row
-- until the transaction ends, so that concurrent writers number distinctly.
-- A new name is created owned by the current role; an existing name may be
-- extended only by members of its owner role.  Locking the row needs UPDATE
-- on recsys.model_names and ownership: a role without store grants cannot
-- block anyone's imports.
CREATE FUNCTION recsys.next_model_version(model text) RETURNS int
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
COMMENT ON FUNCTION recsys.transfer_model(text, regrole) IS
	'give a model name (all its versions) to another role; the caller must have the privileges of the current owner and be a member of the new one (PostgreSQL''s rule for ALTER ... OWNER TO), or be a superuser';

-- Get the stored version to use: the one named, else the one under the
-- alias serving, else the newest.  The C functions resolve the same way
-- (src/store/model_store.c).
CREATE FUNCTION recsys.resolve_model_version(model text, version int DEFAULT NULL) RETURNS int
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
COMMENT ON FUNCTION recsys.resolve_model_version(text, int) IS
	'the version of a model to use: the one given, else the one under the alias serving, else the newest; error if none';

-- Delete one version of a model, or all of them (and the name) when version
-- is NULL.  Only members of the owner role may.
CREATE FUNCTION recsys.drop_model(model text, version int DEFAULT NULL) RETURNS int
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
COMMENT ON FUNCTION recsys.drop_model(text, int) IS
	'delete one version of a model (not one under an alias), or all its versions, aliases and its name when version is NULL; returns the number deleted; only members of the owner role may; the history stays';

CREATE FUNCTION recsys.model_cache()
	RETURNS TABLE(name text, version int, bytes bigint, lookups bigint, pins int, loaded_at timestamptz, kind text)
	AS 'MODULE_PATHNAME', 'model_cache' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.model_cache() IS
	'the models of every kind this backend caches: memory, statement-level lookups served, statements pinning it, load time, kind';
