-- Training Gramian-regularized embeddings: options, checks and the train_embeddings driver
--
-- Objective of every method (Hu et al. with a Gramian-weighted unobserved term):
--   L = sum_{(u,i) observed} c_ui (<x_u, y_i> - 1)^2
--     + gramian_weight * sum_{(u,i) not observed} <x_u, y_i>^2
--     + sum_u lambda_u |x_u|^2 + sum_i lambda_i |y_i|^2,
--   lambda_u = l2 * (n_u + gramian_weight * |I|)^nu  (Rendle's frequency scaling; nu = 0: plain l2)
-- written as observed_loss + gramian_loss + l2_loss with
--   observed_loss = sum_observed [c (<x,y> - 1)^2 - gramian_weight <x,y>^2]
--   gramian_loss  = gramian_weight * <X^T X, Y^T Y>_F      (the Gramian penalty)

-- Validate the options of a training method and fill in the defaults.
CREATE FUNCTION recsys.embedding_options(method text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SECURITY INVOKER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	defaults jsonb;
	key text;
	val jsonb;
	num double precision;
BEGIN
	IF method IS NULL THEN
		RAISE EXCEPTION 'method must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF options IS NULL THEN
		options := '{}';
	END IF;
	IF jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'options must be a JSON object, not %', jsonb_typeof(options)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	defaults := jsonb_build_object('seed', 42, 'init_scale', 0.1, 'nu', 1.0);
	CASE method
	WHEN 'als' THEN
		NULL;
	WHEN 'sogram' THEN
		defaults := defaults || jsonb_build_object('learning_rate', 0.05, 'batch_size', 128,
			'optimizer', 'adagrad', 'alpha', 0.1, 'sampling', 'uniform');
	WHEN 'sagram' THEN
		defaults := defaults || jsonb_build_object('learning_rate', 0.05, 'batch_size', 128,
			'optimizer', 'adagrad', 'beta', 'sag');
	WHEN 'sampled' THEN
		defaults := defaults || jsonb_build_object('learning_rate', 0.05, 'batch_size', 128,
			'optimizer', 'adagrad', 'negatives', 4, 'sampling', 'uniform');
	ELSE
		RAISE EXCEPTION 'unknown method "%"', method
			USING ERRCODE = 'invalid_parameter_value',
				HINT = 'Use one of als, sogram, sagram, sampled.';
	END CASE;

	FOR key, val IN SELECT o.key, o.value FROM jsonb_each(options) o LOOP
		IF NOT defaults ? key THEN
			RAISE EXCEPTION 'unknown option "%" for method "%"', key, method
				USING ERRCODE = 'invalid_parameter_value',
					HINT = format('Options of %s: %s.', method,
						(SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(defaults) k));
		END IF;
		IF key IN ('optimizer', 'sampling', 'beta') THEN
			IF jsonb_typeof(val) <> 'string' OR NOT (val #>> '{}') = ANY (CASE key
					WHEN 'optimizer' THEN ARRAY['adagrad', 'sgd']
					WHEN 'sampling' THEN ARRAY['uniform', 'sqrt', 'linear']
					ELSE ARRAY['sag', 'saga'] END) THEN
				RAISE EXCEPTION 'option "%" must be one of %', key, CASE key
					WHEN 'optimizer' THEN 'adagrad, sgd'
					WHEN 'sampling' THEN 'uniform, sqrt, linear'
					ELSE 'sag, saga' END
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			CONTINUE;
		END IF;
		IF jsonb_typeof(val) <> 'number' THEN
			RAISE EXCEPTION 'option "%" must be a number, not %', key, jsonb_typeof(val)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		num := (val #>> '{}')::double precision;
		IF (key IN ('seed', 'batch_size', 'negatives') AND num <> trunc(num))
			OR (key = 'seed' AND (num < -9.2e18 OR num > 9.2e18))
			OR (key = 'batch_size' AND (num < 1 OR num > 65536))
			OR (key = 'negatives' AND (num < 1 OR num > 1000))
			OR (key IN ('init_scale', 'learning_rate') AND (num <= 0 OR num > 1e6))
			OR (key = 'nu' AND (num < 0 OR num > 4))
			OR (key = 'alpha' AND (num <= 0 OR num > 1)) THEN
			RAISE EXCEPTION 'option "%" is out of range: %', key, val
				USING ERRCODE = 'invalid_parameter_value',
					HINT = CASE key
						WHEN 'seed' THEN 'Use an integer.'
						WHEN 'batch_size' THEN 'Use an integer from 1 to 65536.'
						WHEN 'negatives' THEN 'Use an integer from 1 to 1000.'
						WHEN 'nu' THEN 'Use a number from 0 to 4.'
						WHEN 'init_scale' THEN 'Use a positive number.'
						WHEN 'learning_rate' THEN 'Use a positive number.'
						ELSE 'Use a number in (0, 1].' END;
		END IF;
	END LOOP;
	RETURN defaults || options;
END
$$;
COMMENT ON FUNCTION recsys.embedding_options(text, jsonb) IS
	'the options of a train_embeddings method with defaults filled in; unknown keys, wrong types and out-of-range values are errors';

-- Check that a column of the training table exists and has one of the
-- accepted types; get its type name.
CREATE FUNCTION recsys.embedding_check_column(rel regclass, col name, what text, accepted regtype[])
RETURNS regtype LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	typ regtype;
BEGIN
	IF col IS NULL THEN
		RAISE EXCEPTION '% must not be NULL', what USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT a.atttypid::regtype INTO typ FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
	IF typ IS NULL THEN
		RAISE EXCEPTION 'column "%" of relation % does not exist', col, rel
			USING ERRCODE = 'undefined_column', DETAIL = format('It was given as the %s.', what);
	END IF;
	IF NOT typ = ANY (accepted) THEN
		RAISE EXCEPTION '% "%" must be of type %, not %', what, col,
			array_to_string(accepted::text[], ', '), typ
			USING ERRCODE = 'datatype_mismatch';
	END IF;
	RETURN typ;
END
$$;
COMMENT ON FUNCTION recsys.embedding_check_column(regclass, name, text, regtype[]) IS
	'internal: check that a column of a training table exists with an accepted type';

CREATE FUNCTION recsys.sgd_train(method text, dim int, epochs int, gramian_weight double precision,
	options jsonb, pairs regclass, users regclass, items regclass, out_users regclass, out_items regclass)
RETURNS TABLE(epoch int, loss double precision, observed_loss double precision,
	gramian_loss double precision, l2_loss double precision, seconds double precision)
	AS 'MODULE_PATHNAME', 'sgd_train' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.sgd_train(text, int, int, double precision, jsonb, regclass, regclass, regclass, regclass, regclass) IS
	'internal: SGD epochs (sogram, sagram, sampled) of train_embeddings over arrays loaded from its work tables';

CREATE FUNCTION recsys.train_embeddings(model_name text, interactions regclass,
	user_column name DEFAULT 'user_id', item_column name DEFAULT 'item_id',
	weight_column name DEFAULT NULL, dim int DEFAULT 64, method text DEFAULT 'als',
	epochs int DEFAULT 15, gramian_weight double precision DEFAULT 0.1,
	l2 double precision DEFAULT 0.01, options jsonb DEFAULT '{}')
RETURNS TABLE(epoch int, loss double precision, observed_loss double precision,
	gramian_loss double precision, l2_loss double precision, seconds double precision)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
-- als_solve keeps k x k per group: always aggregate sorted groups
SET enable_hashagg = off
-- the cost of these plans is in the aggregate, not in anything JIT compiles
SET jit = off
AS $$
#variable_conflict error
DECLARE
	n_written bigint;
	p_name text := model_name;
	p_dim int := dim;
	p_method text := method;
	p_epochs int := epochs;
	gw double precision := gramian_weight;
	p_l2 double precision := l2;
	opts jsonb;
	nu double precision;
	seed bigint;
	init_scale double precision;
	ver int;
	weight_expr text;
	n_rows bigint;
	n_null_user bigint;
	n_null_item bigint;
	n_null_weight bigint;
	n_bad_weight bigint;
	n_neg_weight bigint;
	n_pairs bigint;
	n_users bigint;
	n_items bigint;
	g_users double precision[];
	g_items double precision[];
	obs double precision;
	reg double precision;
	t0 timestamptz;
	t_start timestamptz := clock_timestamp();
	log jsonb[] := '{}';
	r record;
	tmp text;
BEGIN
	-- arguments
	IF p_name IS NULL OR p_name = '' THEN
		RAISE EXCEPTION 'model name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF interactions IS NULL THEN
		RAISE EXCEPTION 'interactions must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF p_dim IS NULL OR p_epochs IS NULL OR gw IS NULL OR p_l2 IS NULL THEN
		RAISE EXCEPTION '% must not be NULL', CASE WHEN p_dim IS NULL THEN 'dim'
			WHEN p_epochs IS NULL THEN 'epochs' WHEN gw IS NULL THEN 'gramian_weight' ELSE 'l2' END
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- checks dim against 1 and recsys.max_dim (and loads the library that defines it)
	PERFORM recsys.embedding_init(0, p_dim, 0, 1.0);
	IF p_epochs < 1 OR p_epochs > 100000 THEN
		RAISE EXCEPTION 'epochs must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF gw = 'NaN' OR gw = 'Infinity' OR p_l2 = 'NaN' OR p_l2 = 'Infinity' THEN
		RAISE EXCEPTION '% must be finite', CASE WHEN gw = 'NaN' OR gw = 'Infinity' THEN 'gramian_weight' ELSE 'l2' END
			USING ERRCODE = 'data_exception';
	END IF;
	IF gw < 0 OR p_l2 < 0 THEN
		RAISE EXCEPTION '% must not be negative', CASE WHEN gw < 0 THEN 'gramian_weight' ELSE 'l2' END
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	opts := recsys.embedding_options(p_method, options);
	nu := (opts->>'nu')::double precision;
	seed := (opts->>'seed')::bigint;
	init_scale := (opts->>'init_scale')::double precision;

	PERFORM recsys.embedding_check_column(interactions, user_column, 'user column',
		'{smallint,integer,bigint}'::regtype[]);
	PERFORM recsys.embedding_check_column(interactions, item_column, 'item column',
		'{smallint,integer,bigint}'::regtype[]);
	IF weight_column IS NULL THEN
		weight_expr := '1::double precision';
	ELSE
		PERFORM recsys.embedding_check_column(interactions, weight_column, 'weight column',
			'{smallint,integer,bigint,real,double precision,numeric}'::regtype[]);
		weight_expr := format('%I::double precision', weight_column);
	END IF;

	-- numbers the version and locks the name until the transaction ends
	ver := recsys.next_model_version(p_name);

	-- one pass of checks over the source rows
	EXECUTE format('SELECT count(*), count(*) FILTER (WHERE s.u IS NULL), count(*) FILTER (WHERE s.i IS NULL),'
		' count(*) FILTER (WHERE s.w IS NULL), count(*) FILTER (WHERE s.w = ''NaN'' OR s.w IN (''Infinity'', ''-Infinity'')),'
		' count(*) FILTER (WHERE s.w < 0)'
		' FROM (SELECT %I AS u, %I AS i, %s AS w FROM %s) s',
		user_column, item_column, weight_expr, interactions)
		INTO n_rows, n_null_user, n_null_item, n_null_weight, n_bad_weight, n_neg_weight;
	IF n_null_user > 0 OR n_null_item > 0 THEN
		RAISE EXCEPTION '% column "%" of % is NULL in % row(s)',
			CASE WHEN n_null_user > 0 THEN 'user' ELSE 'item' END,
			CASE WHEN n_null_user > 0 THEN user_column ELSE item_column END, interactions,
			CASE WHEN n_null_user > 0 THEN n_null_user ELSE n_null_item END
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF n_null_weight > 0 THEN
		RAISE EXCEPTION 'weight column "%" of % is NULL in % row(s)', weight_column, interactions, n_null_weight
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF n_bad_weight > 0 THEN
		RAISE EXCEPTION 'weight column "%" of % is NaN or infinite in % row(s)', weight_column, interactions, n_bad_weight
			USING ERRCODE = 'data_exception';
	END IF;
	IF n_neg_weight > 0 THEN
		RAISE EXCEPTION 'weight column "%" of % is negative in % row(s)', weight_column, interactions, n_neg_weight
			USING ERRCODE = 'data_exception', HINT = 'Weights are confidences and must be zero or more.';
	END IF;

	-- distinct observed pairs; repeated pairs add their weights, zero-weight pairs are dropped
	-- leftovers of an earlier training in this transaction
	FOREACH tmp IN ARRAY ARRAY['recsys_emb_pairs', 'recsys_emb_users', 'recsys_emb_items',
			'recsys_emb_u', 'recsys_emb_v', 'recsys_emb_by_user', 'recsys_emb_by_item'] LOOP
		IF to_regclass('pg_temp.' || tmp) IS NOT NULL THEN
			EXECUTE format('DROP TABLE pg_temp.%I', tmp);
		END IF;
	END LOOP;
	EXECUTE format('CREATE TEMP TABLE recsys_emb_pairs ON COMMIT DROP AS'
		' SELECT s.u::bigint AS u, s.i::bigint AS i, sum(s.w) AS c'
		' FROM (SELECT %I AS u, %I AS i, %s AS w FROM %s) s GROUP BY 1, 2 HAVING sum(s.w) > 0',
		user_column, item_column, weight_expr, interactions);
	GET DIAGNOSTICS n_pairs = ROW_COUNT;
	IF n_pairs = 0 THEN
		RAISE EXCEPTION 'interactions table % has no rows with a positive weight', interactions
			USING ERRCODE = 'data_exception';
	END IF;
	CREATE TEMP TABLE recsys_emb_users ON COMMIT DROP AS
		SELECT p.u AS id, (row_number() OVER (ORDER BY p.u) - 1)::int AS idx, count(*)::int AS n
		FROM pg_temp.recsys_emb_pairs p GROUP BY p.u;
	GET DIAGNOSTICS n_users = ROW_COUNT;
	CREATE TEMP TABLE recsys_emb_items ON COMMIT DROP AS
		SELECT p.i AS id, (row_number() OVER (ORDER BY p.i) - 1)::int AS idx, count(*)::int AS n
		FROM pg_temp.recsys_emb_pairs p GROUP BY p.i;
	GET DIAGNOSTICS n_items = ROW_COUNT;
	-- frequency-scaled regularization of each entity (Rendle et al.)
	ALTER TABLE pg_temp.recsys_emb_users ADD COLUMN lam double precision;
	ALTER TABLE pg_temp.recsys_emb_items ADD COLUMN lam double precision;
	UPDATE pg_temp.recsys_emb_users e SET lam = p_l2 * power(e.n + gw * n_items, nu);
	UPDATE pg_temp.recsys_emb_items e SET lam = p_l2 * power(e.n + gw * n_users, nu);
	CREATE TEMP TABLE recsys_emb_u (id bigint PRIMARY KEY, v real[], part double precision) ON COMMIT DROP;
	CREATE TEMP TABLE recsys_emb_v (id bigint PRIMARY KEY, v real[], part double precision) ON COMMIT DROP;

	IF p_method = 'als' THEN
		-- Two copies of the pairs, clustered and indexed by each side, each carrying
		-- that side's lambda (a constant of its group): an index scan then feeds
		-- als_solve its groups in order through a memoized lookup of the other
		-- side's vectors, with no sort of the joined rows.
		CREATE TEMP TABLE recsys_emb_by_user ON COMMIT DROP AS
			SELECT p.u, p.i, p.c, us.lam AS lu
			FROM pg_temp.recsys_emb_pairs p JOIN pg_temp.recsys_emb_users us ON us.id = p.u
			ORDER BY p.u, p.i;
		CREATE INDEX ON pg_temp.recsys_emb_by_user (u);
		ANALYZE pg_temp.recsys_emb_by_user;
		CREATE TEMP TABLE recsys_emb_by_item ON COMMIT DROP AS
			SELECT p.i, p.u, p.c, it.lam AS li
			FROM pg_temp.recsys_emb_pairs p JOIN pg_temp.recsys_emb_items it ON it.id = p.i
			ORDER BY p.i, p.u;
		CREATE INDEX ON pg_temp.recsys_emb_by_item (i);
		ANALYZE pg_temp.recsys_emb_by_item;
		INSERT INTO pg_temp.recsys_emb_v (id, v)
			SELECT it.id, recsys.embedding_init(it.id, p_dim, seed * 2 + 1, init_scale)
			FROM pg_temp.recsys_emb_items it;
		ANALYZE pg_temp.recsys_emb_v (id);
		SELECT recsys.gramian(t.v) INTO g_items FROM pg_temp.recsys_emb_v t;
		FOR ep IN 1..p_epochs LOOP
			t0 := clock_timestamp();
			-- users from items, then items from users (als_solve per sorted group)
			TRUNCATE pg_temp.recsys_emb_u;
			INSERT INTO pg_temp.recsys_emb_u (id, v)
				SELECT p.u, recsys.als_solve(t.v, p.c, g_items, gw, p.lu)
				FROM pg_temp.recsys_emb_by_user p JOIN pg_temp.recsys_emb_v t ON t.id = p.i
				GROUP BY p.u;
			ANALYZE pg_temp.recsys_emb_u (id);
			SELECT recsys.gramian(t.v) INTO g_users FROM pg_temp.recsys_emb_u t;
			TRUNCATE pg_temp.recsys_emb_v;
			INSERT INTO pg_temp.recsys_emb_v (id, v, part)
				SELECT s.i, s.r[1:p_dim]::real[], s.r[p_dim + 1]
				FROM (SELECT p.i, recsys.als_solve_objective(t.v, p.c, g_users, gw, p.li) AS r
					FROM pg_temp.recsys_emb_by_item p JOIN pg_temp.recsys_emb_u t ON t.id = p.u
					GROUP BY p.i) s;
			ANALYZE pg_temp.recsys_emb_v (id);
			SELECT recsys.gramian(t.v), sum(t.part) INTO g_items, obs FROM pg_temp.recsys_emb_v t;
			SELECT coalesce((SELECT sum(e.lam * recsys.dot(t.v, t.v)) FROM pg_temp.recsys_emb_u t
					JOIN pg_temp.recsys_emb_users e ON e.id = t.id), 0)
				+ coalesce((SELECT sum(e.lam * recsys.dot(t.v, t.v)) FROM pg_temp.recsys_emb_v t
					JOIN pg_temp.recsys_emb_items e ON e.id = t.id), 0)
				INTO reg;
			epoch := ep;
			observed_loss := obs;
			gramian_loss := gw * recsys.frobenius(g_users, g_items);
			l2_loss := reg;
			loss := observed_loss + gramian_loss + l2_loss;
			seconds := extract(epoch FROM clock_timestamp() - t0);
			RAISE NOTICE 'epoch %/%: loss % (observed %, gramian %, l2 %) in % s', ep, p_epochs,
				round(loss::numeric, 4), round(observed_loss::numeric, 4), round(gramian_loss::numeric, 4),
				round(l2_loss::numeric, 4), round(seconds::numeric, 3);
			log := log || jsonb_build_object('epoch', epoch, 'loss', loss, 'observed_loss', observed_loss,
				'gramian_loss', gramian_loss, 'l2_loss', l2_loss, 'seconds', seconds);
			RETURN NEXT;
		END LOOP;
		DROP TABLE pg_temp.recsys_emb_by_user, pg_temp.recsys_emb_by_item;
	ELSE
		FOR r IN SELECT * FROM recsys.sgd_train(p_method, p_dim, p_epochs, gw, opts,
				'pg_temp.recsys_emb_pairs'::regclass, 'pg_temp.recsys_emb_users'::regclass,
				'pg_temp.recsys_emb_items'::regclass, 'pg_temp.recsys_emb_u'::regclass,
				'pg_temp.recsys_emb_v'::regclass) LOOP
			epoch := r.epoch;
			loss := r.loss;
			observed_loss := r.observed_loss;
			gramian_loss := r.gramian_loss;
			l2_loss := r.l2_loss;
			seconds := r.seconds;
			log := log || jsonb_build_object('epoch', epoch, 'loss', loss, 'observed_loss', observed_loss,
				'gramian_loss', gramian_loss, 'l2_loss', l2_loss, 'seconds', seconds);
			RETURN NEXT;
		END LOOP;
	END IF;

	-- store the model: one new version, all in this transaction
	INSERT INTO recsys.models (name, version, kind, config, weights, metrics)
	VALUES (p_name, ver, 'embeddings',
		jsonb_build_object('method', p_method, 'dim', p_dim, 'epochs', p_epochs,
			'gramian_weight', gw, 'l2', p_l2, 'options', opts,
			'source', jsonb_build_object('table', interactions::text, 'user_column', user_column,
				'item_column', item_column, 'weight_column', weight_column),
			'objective', 'sum_observed c (<x,y> - 1)^2 + gramian_weight * sum_unobserved <x,y>^2 + sum lambda |x|^2',
			'regularization', 'lambda = l2 * (n + gramian_weight * N_other)^nu',
			'gramian', 'entity (each user and item counted once: X^T X, Y^T Y)',
			'n_users', n_users, 'n_items', n_items, 'n_interactions', n_pairs, 'n_rows', n_rows),
		NULL,
		jsonb_build_object('log', to_jsonb(log), 'train_seconds', extract(epoch FROM clock_timestamp() - t_start)));
	-- RETURNING: on Citus an INSERT .. SELECT into a reference table without
	-- it is a COPY into the placements, which row-level security refuses
	-- (doc/citus.md); with it, INSERT statements
	WITH w AS (
		INSERT INTO recsys.user_vectors (model, version, id, embedding, seen)
		SELECT p_name, ver, t.id, t.v, s.seen
		FROM pg_temp.recsys_emb_u t
		JOIN (SELECT p.u, array_agg(p.i ORDER BY p.i) AS seen FROM pg_temp.recsys_emb_pairs p GROUP BY p.u) s
			ON s.u = t.id
		RETURNING 1)
	SELECT count(*) INTO n_written FROM w;
	WITH w AS (
		INSERT INTO recsys.item_vectors (model, version, id, embedding)
		SELECT p_name, ver, t.id, t.v FROM pg_temp.recsys_emb_v t
		RETURNING 1)
	SELECT count(*) INTO n_written FROM w;
	DROP TABLE pg_temp.recsys_emb_pairs, pg_temp.recsys_emb_users, pg_temp.recsys_emb_items,
		pg_temp.recsys_emb_u, pg_temp.recsys_emb_v;
	RETURN;
END
$$;
COMMENT ON FUNCTION recsys.train_embeddings(text, regclass, name, name, name, int, text, int, double precision, double precision, jsonb) IS
	'train user and item embeddings over an interactions table (method als, sogram, sagram or sampled) and store them as a new version of the model; one row (and NOTICE) per epoch';

