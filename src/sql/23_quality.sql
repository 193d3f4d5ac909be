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
-- nu is fixed at 1: then lambda_u = l2 (n_u + w |I|) weighs each user's
-- (item's) penalty like its terms of the loss, so one l2 range fits users
-- and items of every activity; with nu < 1 the useful l2 grows as
-- (n_u + w |I|)^(1 - nu), a data-dependent scale no fixed range covers.
-- At l2 >= 1 / (1 + w) the zero model is optimal, and the personalised
-- directions are cut off well below that, so the range stops at 0.1
-- (doc/math.md section 2).  Larger dims cost more but lose nothing once l2
-- is tuned (Rendle et al. 2022), so 32 is left out.
CREATE FUNCTION recsys.tune_space() RETURNS jsonb
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
