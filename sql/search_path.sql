-- Nothing recsys runs resolves through the caller's search_path.  A role
-- that may create objects in a schema on a superuser's search_path plants
-- look-alike operators, functions and aggregates there (every signature that
-- an implicit cast could reach), each raising an error when called; the
-- superuser then runs every entry point, and none of them fires.
SET client_min_messages = warning;
SET extra_float_digits = -3;
\set VERBOSITY terse
CREATE TABLE sp_plays (user_id bigint, item_id bigint, w double precision);
INSERT INTO sp_plays SELECT u, i, 1 + (u * i) % 3 FROM generate_series(1, 30) u, generate_series(1, 12) i WHERE (u + i) % 3 = 0;
CREATE TABLE sp_rows (x real[], y double precision, c boolean);
INSERT INTO sp_rows SELECT ARRAY[i % 5, i % 3]::real[], (i % 5) * 0.5, i % 2 = 0 FROM generate_series(1, 40) i;
CREATE TABLE sp_cands (x real[], y bigint);
INSERT INTO sp_cands SELECT ARRAY[i, 10 - i]::real[], i FROM generate_series(1, 10) i;
CREATE TABLE sp_scores (s double precision, p double precision, y boolean, l double precision[]);
INSERT INTO sp_scores SELECT i / 10.0, i / 20.0, i % 3 = 0, ARRAY[i / 7.0, i / 9.0] FROM generate_series(1, 10) i;
DROP ROLE IF EXISTS sp_planter;
CREATE ROLE sp_planter;
CREATE SCHEMA sp_public AUTHORIZATION sp_planter;
SET ROLE sp_planter;
CREATE FUNCTION sp_public.fired() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'planted object fired';
END
$$;
DO $plant$
DECLARE
	types text[] := ARRAY['text', 'name', 'integer', 'bigint', 'real', 'double precision',
		'numeric', 'oid', 'regclass', 'regtype', 'jsonb'];
	-- functions also planted with every pair of argument types
	funcs2 text[] := ARRAY['format', 'jsonb_build_object', 'power', 'round', 'trunc', 'hashtextextended',
		'set_config', 'pg_has_role', 'generate_series', 'array_length', 'array_to_string', 'date_part',
		'jsonb_extract_path_text', 'current_setting'];
	ops text[] := ARRAY['=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '||', '~', '?', '->', '->>', '#>>'];
	funcs text[] := ARRAY['format', 'jsonb_build_object', 'jsonb_typeof', 'jsonb_object_keys', 'jsonb_each',
		'to_jsonb', 'power', 'round', 'trunc', 'abs', 'sqrt', 'exp', 'ln', 'lower', 'upper', 'length',
		'octet_length', 'btrim', 'array_length', 'array_to_string', 'unnest', 'generate_series',
		'to_regclass', 'hashtextextended', 'pg_advisory_xact_lock', 'pg_has_role', 'quote_ident',
		'date_part', 'now', 'clock_timestamp', 'current_setting', 'set_config', 'textin', 'int4',
		'int8', 'float8', 'float4', 'text', 'jsonb_array_length', 'jsonb_extract_path_text'];
	aggs text[] := ARRAY['count', 'sum', 'max', 'min', 'avg', 'array_agg', 'string_agg', 'bool_and'];
	a text;
	b text;
	n int := 0;
	fn text;
BEGIN
	FOREACH a IN ARRAY types LOOP
		FOREACH b IN ARRAY types LOOP
			fn := format('sp_public.op_%s', n);
			n := n + 1;
			EXECUTE format('CREATE FUNCTION %s(%s, %s) RETURNS boolean LANGUAGE plpgsql AS '
				'$f$ BEGIN PERFORM sp_public.fired(); RETURN NULL; END $f$', fn, a, b);
			FOREACH fn IN ARRAY ops LOOP
				EXECUTE format('CREATE OPERATOR sp_public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = sp_public.op_%s)',
					fn, a, b, n - 1);
			END LOOP;
		END LOOP;
	END LOOP;
	FOREACH fn IN ARRAY funcs LOOP
		EXECUTE format('CREATE FUNCTION sp_public.%I() RETURNS text LANGUAGE plpgsql AS '
			'$f$ BEGIN PERFORM sp_public.fired(); RETURN NULL; END $f$', fn);
		FOREACH a IN ARRAY types LOOP
			EXECUTE format('CREATE FUNCTION sp_public.%I(%s) RETURNS text LANGUAGE plpgsql AS '
				'$f$ BEGIN PERFORM sp_public.fired(); RETURN NULL; END $f$', fn, a);
			FOREACH b IN ARRAY types LOOP
				EXECUTE format('CREATE FUNCTION sp_public.%I(%s, %s) RETURNS text LANGUAGE plpgsql AS '
					'$f$ BEGIN PERFORM sp_public.fired(); RETURN NULL; END $f$', fn, a, b);
			END LOOP;
		END LOOP;
	END LOOP;
	-- the call the review saw: jsonb_build_object(text, int, text, numeric, text, numeric)
	CREATE FUNCTION sp_public.jsonb_build_object(text, int, text, numeric, text, numeric) RETURNS jsonb
		LANGUAGE plpgsql AS $f$ BEGIN PERFORM sp_public.fired(); RETURN NULL; END $f$;
	CREATE FUNCTION sp_public.agg_step(text, anyelement) RETURNS text LANGUAGE plpgsql AS
		$f$ BEGIN PERFORM sp_public.fired(); RETURN NULL; END $f$;
	FOREACH fn IN ARRAY aggs LOOP
		FOREACH a IN ARRAY types LOOP
			EXECUTE format('CREATE AGGREGATE sp_public.%I(%s) (SFUNC = sp_public.agg_step, STYPE = text)', fn, a);
		END LOOP;
		EXECUTE format('CREATE AGGREGATE sp_public.%I(real[]) (SFUNC = sp_public.agg_step, STYPE = text)', fn);
		EXECUTE format('CREATE AGGREGATE sp_public.%I(double precision[]) (SFUNC = sp_public.agg_step, STYPE = text)', fn);
	END LOOP;
END
$plant$;
RESET ROLE;
SELECT count(*) > 2000 AS planted_functions FROM pg_proc WHERE pronamespace = 'sp_public'::regnamespace;
SELECT count(*) > 1500 AS planted_operators FROM pg_operator WHERE oprnamespace = 'sp_public'::regnamespace;

-- the superuser puts the planter's schema first
SET search_path = sp_public, public, pg_catalog;
-- control: the planted objects do fire in ordinary SQL
SELECT 2.0::double precision * 3::bigint;
SELECT format('%s', 'x'::name);

-- every entry point, as the superuser
SELECT count(*) AS als_epochs FROM recsys.train_embeddings('sp_als', 'public.sp_plays', weight_column => 'w', dim => 3, epochs => 2);
SELECT count(*) AS sogram_epochs FROM recsys.train_embeddings('sp_sogram', 'public.sp_plays', dim => 3, epochs => 1, method => 'sogram');
SELECT count(*) AS sagram_epochs FROM recsys.train_embeddings('sp_sogram', 'public.sp_plays', dim => 3, epochs => 1, method => 'sagram');
SELECT count(*) AS sampled_epochs FROM recsys.train_embeddings('sp_sogram', 'public.sp_plays', dim => 3, epochs => 1, method => 'sampled');
SELECT count(*) AS users FROM recsys.user_embeddings('sp_als');
SELECT count(*) AS items FROM recsys.item_embeddings('sp_als');
SELECT count(*) AS recommended FROM recsys.recommend('sp_als', 3, 4);
SELECT recsys.resolve_model_version('sp_als') AS version;
SELECT recsys.import_model('sp_mmoe', decode('d8010000000000007b2267617465732e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b315d2c2022646174615f6f666673657473223a205b33322c2033365d7d2c202267617465732e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b312c20325d2c2022646174615f6f666673657473223a205b32342c2033325d7d2c2022746f776572732e302e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b315d2c2022646174615f6f666673657473223a205b34342c2034385d7d2c2022657870657274732e302e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b325d2c2022646174615f6f666673657473223a205b31362c2032345d7d2c2022746f776572732e302e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b312c20325d2c2022646174615f6f666673657473223a205b33362c2034345d7d2c2022657870657274732e302e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b322c20325d2c2022646174615f6f666673657473223a205b302c2031365d7d7d0000803f00000000000000000000803f00000000000000009a99993e333333bfcdcccc3d0000803f000000400000003f', 'hex'),
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}') AS mmoe_version;
SELECT recsys.predict('sp_mmoe', '{1,2}'::real[]) AS predicted;
SELECT recsys.predict('sp_mmoe', '{1,2}'::real[], 'y') AS predicted_y;
SELECT recsys.gate_weights('sp_mmoe', '{1,2}'::real[], 'y') AS gates;
SELECT count(*) AS mc_rows FROM recsys.predict_mc('sp_mmoe', '{1,2}'::real[], 4);
SELECT count(*) AS batch_rows FROM recsys.predict_batch('sp_mmoe', '{{1,2},{3,4}}'::real[]);
SELECT recsys.export_model('sp_mmoe') IS NOT NULL AS exported;
SELECT recsys.predict_top_k('sp_mmoe', x, y::bigint, 2, '{1}') AS top_2 FROM public.sp_cands;
SELECT count(*) AS table_rows FROM recsys.predict_table('sp_mmoe', 'public.sp_cands', 'y', 'x');
SELECT count(*) AS train_mmoe_epochs FROM recsys.train_mmoe('sp_trained', 'public.sp_rows', 'x', '{y,c}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 2, "hidden": [3]}, "gate": {"type": "noisy_top_k", "k": 1},
	  "tasks": [{"name": "y", "type": "regression"}, {"name": "c", "type": "binary"}]}', epochs => 2, batch_size => 8,
	validation => 'public.sp_rows');
SELECT recsys.gramian(ARRAY[s, p]) AS gramian FROM public.sp_scores;
SELECT recsys.auc(s, y) AS auc FROM public.sp_scores;
SELECT recsys.log_loss(p, y) AS log_loss FROM public.sp_scores;
SELECT recsys.uncertainty_weights(l) AS log_vars FROM public.sp_scores;
SELECT recsys.recall_at_k('{1,2,3}', '{1,5}', 3) AS recall;
SELECT recsys.ndcg_at_k('{1,2,3}', '{1,5}', 3) AS ndcg;
SELECT recsys.drop_model('sp_als') AS dropped;
SELECT recsys.drop_model('sp_sogram') AS dropped;
SELECT recsys.drop_model('sp_mmoe') AS dropped;
SELECT recsys.drop_model('sp_trained') AS dropped;
RESET search_path;
DROP TABLE sp_plays, sp_scores, sp_rows, sp_cands;
-- one object a transaction: thousands at once would exhaust the lock table;
-- in a new session, whose catalog caches do not hold the planted objects
-- (assert-enabled servers check every cached entry at each transaction end)
\set ECHO none
\c
\o /dev/null
SELECT format('DROP OPERATOR %s', o.oid::regoperator) FROM pg_operator o
WHERE o.oprnamespace = 'sp_public'::regnamespace \gexec
SELECT format('DROP %s %s', CASE p.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, p.oid::regprocedure)
FROM pg_proc p WHERE p.pronamespace = 'sp_public'::regnamespace ORDER BY p.prokind = 'a' DESC, p.proname = 'fired' \gexec
\o
\set ECHO all
DROP SCHEMA sp_public;
DROP ROLE sp_planter;
