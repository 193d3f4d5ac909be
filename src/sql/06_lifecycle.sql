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

-- Finish storing a new version: log it with its sources (a two-tower
-- version's feature tables too), and promote it when options.promote.
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
