-- ALTER EXTENSION recsys UPDATE from 0.1.0 keeps every stored model, scores
-- it identically, and leaves the same objects as a fresh install of the
-- current version.
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set VERBOSITY terse

-- everything the extension defines, as text, in the fresh install
SELECT current_database() AS regress_db \gset
SELECT $ddl$CREATE FUNCTION public.recsys_objects() RETURNS SETOF text LANGUAGE sql AS $f$
	SELECT pg_describe_object(d.classid, d.objid, 0)
		|| coalesce(' (' || pg_get_function_arguments(p.oid) || ') -> ' || pg_get_function_result(p.oid)
			|| ' ' || p.provolatile::text || p.proparallel::text || p.proisstrict::text || p.prosecdef::text
			|| ' ' || coalesce(array_to_string(p.proconfig, ';'), '') || ' ' || p.prosrc || ' ' || p.prosupport::text, '')
		|| coalesce(' -- ' || obj_description(d.objid, d.classid::regclass::name), '')
	FROM pg_depend d LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
	WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'recsys') AND d.deptype = 'e'
	UNION ALL
	SELECT format('column %s.%s %s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
		a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid))
	FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
	WHERE c.relnamespace = 'recsys'::regnamespace AND c.relkind = 'r'
	UNION ALL
	SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
	-- NOT NULL is attnotnull above: from 18 it is also a named constraint, and
	-- a renamed column keeps the constraint name it was created with
	FROM pg_constraint WHERE connamespace = 'recsys'::regnamespace AND contype <> 'n'
	UNION ALL
	SELECT format('policy %s %s %s %s %s', polrelid::regclass, polname, polcmd,
		pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
	FROM pg_policy WHERE polrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'recsys'::regnamespace)
	UNION ALL
	SELECT format('trigger %s', pg_get_triggerdef(oid)) FROM pg_trigger
	WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'recsys'::regnamespace) AND NOT tgisinternal
	UNION ALL
	SELECT format('rls %s %s', relname, relrowsecurity) FROM pg_class
	WHERE relnamespace = 'recsys'::regnamespace AND relkind = 'r'
	UNION ALL
	SELECT format('index %s', pg_get_indexdef(indexrelid)) FROM pg_index
	WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'recsys'::regnamespace)
$f$$ddl$ AS objects_ddl \gset
-- the outcome of one query: the md5 of its rows, or its error with SQLSTATE, DETAIL and HINT
SELECT $ddl$CREATE FUNCTION public.try_call(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
	r text;
	st text;
	msg text;
	det text;
	hnt text;
BEGIN
	EXECUTE format('SELECT md5(coalesce(string_agg(t::text, %L), %L)) FROM (%s) t', '|', '', q) INTO r;
	RETURN 'result ' || r;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	RETURN st || ': ' || msg || coalesce(' DETAIL: ' || nullif(det, ''), '') || coalesce(' HINT: ' || nullif(hnt, ''), '');
END
$f$$ddl$ AS try_ddl \gset
\set ECHO none
SET check_function_bodies = off;
SELECT :'objects_ddl' \gexec
RESET check_function_bodies;
\set ECHO all
SELECT string_agg(x, chr(30) ORDER BY x) AS fresh_objects FROM public.recsys_objects() x \gset

DROP DATABASE IF EXISTS recsys_upgrade;
CREATE DATABASE recsys_upgrade;
\c recsys_upgrade
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set ECHO none
SET check_function_bodies = off;
SELECT :'objects_ddl' \gexec
SELECT :'try_ddl' \gexec
RESET check_function_bodies;
\set ECHO all
CREATE EXTENSION recsys VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'recsys';
-- models of both kinds, made by 0.1.0, two versions of one of them
CREATE TABLE up_plays (user_id bigint, item_id bigint);
INSERT INTO up_plays SELECT u, i FROM generate_series(1, 30) u, generate_series(1, 12) i WHERE (u * 7 + i * 3) % 5 < 2;
SELECT count(*) AS epochs FROM recsys.train_embeddings('up_emb', 'up_plays', dim => 3, epochs => 2);
SELECT count(*) AS epochs FROM recsys.train_embeddings('up_emb', 'up_plays', dim => 4, epochs => 2);
SELECT recsys.import_model('up_mmoe', decode('d8010000000000007b2267617465732e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b315d2c2022646174615f6f666673657473223a205b33322c2033365d7d2c202267617465732e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b312c20325d2c2022646174615f6f666673657473223a205b32342c2033325d7d2c2022746f776572732e302e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b315d2c2022646174615f6f666673657473223a205b34342c2034385d7d2c2022657870657274732e302e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b325d2c2022646174615f6f666673657473223a205b31362c2032345d7d2c2022746f776572732e302e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b312c20325d2c2022646174615f6f666673657473223a205b33362c2034345d7d2c2022657870657274732e302e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b322c20325d2c2022646174615f6f666673657473223a205b302c2031365d7d7d0000803f00000000000000000000803f00000000000000009a99993e333333bfcdcccc3d0000803f000000400000003f', 'hex'),
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}') AS version;
CREATE TABLE up_before AS
SELECT name, version, kind, md5(config::text) AS config, md5(weights) AS weights, md5(metrics::text) AS metrics,
	created_by, created_at,
	(SELECT md5(string_agg(u.id || ':' || u.embedding::text || ':' || u.seen::text, ',' ORDER BY u.id))
		FROM recsys.user_vectors u WHERE u.model_name = m.name AND u.model_version = m.version) AS users,
	(SELECT md5(string_agg(i.id || ':' || i.embedding::text, ',' ORDER BY i.id))
		FROM recsys.item_vectors i WHERE i.model_name = m.name AND i.model_version = m.version) AS items
FROM recsys.models m;

-- The new library under 0.1.0's SQL (new binaries installed, ALTER EXTENSION
-- UPDATE not run yet): what reads the store, and recommend, whose 0.1.0
-- declaration passes no version, raise one clear error that asks for the
-- update; what needs nothing of the store keeps working.
SELECT q, public.try_call(q) FROM (VALUES
	($$SELECT * FROM recsys.recommend('up_emb', 1, 3, false)$$),
	($$SELECT recsys.predict('up_mmoe', ARRAY[1, 2]::real[])$$),
	($$SELECT * FROM recsys.predict_mc('up_mmoe', ARRAY[1, 2]::real[], 4)$$),
	($$SELECT * FROM recsys.predict_batch('up_mmoe', ARRAY[[1, 2]]::real[])$$),
	($$SELECT recsys.gate_weights('up_mmoe', ARRAY[1, 2]::real[], 'y')$$),
	($$SELECT count(*) FROM recsys.model_cache()$$),
	($$SELECT recsys.dot(ARRAY[1, 2]::real[], ARRAY[3, 4]::real[])$$)) v(q);

-- a role that scores
DROP ROLE IF EXISTS up_reader;
CREATE ROLE up_reader;
GRANT USAGE ON SCHEMA recsys TO up_reader;
GRANT SELECT ON recsys.models, recsys.user_vectors, recsys.item_vectors TO up_reader;

ALTER EXTENSION recsys UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'recsys';

-- no model has an alias: the newest version of each keeps serving; the
-- numbering goes on past every version stored
SELECT count(*) AS aliases FROM recsys.model_aliases;
SELECT model, version, aliases, serving FROM recsys.model_versions ORDER BY model, version;
SELECT name, last_version FROM recsys.model_names ORDER BY name;
-- the scoring role keeps scoring without a version (it may read the aliases)
SET ROLE up_reader;
SELECT count(*) AS recommended FROM recsys.recommend('up_emb', 1, 2);
RESET ROLE;

-- every model, version and vector kept byte for byte; owners from created_by
SELECT count(*) AS models, count(*) FILTER (WHERE b.config = md5(m.config::text) AND b.weights IS NOT DISTINCT FROM md5(m.weights)
		AND b.metrics = md5(m.metrics::text) AND b.created_by = m.created_by AND b.created_at = m.created_at
		AND b.users IS NOT DISTINCT FROM (SELECT md5(string_agg(u.id || ':' || u.embedding::text || ':' || u.seen::text, ',' ORDER BY u.id))
			FROM recsys.user_vectors u WHERE u.model = m.name AND u.version = m.version)
		AND b.items IS NOT DISTINCT FROM (SELECT md5(string_agg(i.id || ':' || i.embedding::text, ',' ORDER BY i.id))
			FROM recsys.item_vectors i WHERE i.model = m.name AND i.version = m.version)) AS identical
FROM up_before b JOIN recsys.models m USING (name, version, kind);
SELECT name, owner FROM recsys.model_names ORDER BY name;

-- recommend on the kept vectors ranks exactly as their inner products do
SELECT count(*) AS users_checked, bool_and(ok) AS same_ranking FROM (
	SELECT u.id, (SELECT array_agg(r.item_id ORDER BY r.score DESC, r.item_id) FROM recsys.recommend('up_emb', u.id, 3, exclude_seen => false) r)
		= (SELECT array_agg(i.id ORDER BY recsys.dot(u.embedding, i.embedding)::real DESC, i.id)
			FROM (SELECT i.id, i.embedding FROM recsys.item_vectors i WHERE i.model = 'up_emb' AND i.version = 2
				ORDER BY recsys.dot(u.embedding, i.embedding)::real DESC, i.id LIMIT 3) i) AS ok
	FROM recsys.user_vectors u WHERE u.model = 'up_emb' AND u.version = 2) s;
-- the kept MMoE model scores as the same bytes imported by this version
SELECT recsys.import_model('up_fresh', recsys.export_model('up_mmoe')) AS version;
SELECT bool_and(recsys.predict('up_mmoe', ARRAY[x, y]::real[]) = recsys.predict('up_fresh', ARRAY[x, y]::real[])) AS same_scores
FROM generate_series(-3, 3) x, generate_series(-2, 2) y;
-- the upgraded store follows this version's rules: a new version, a drop
SELECT count(*) AS epochs FROM recsys.train_embeddings('up_emb', 'up_plays', dim => 2, epochs => 1);
SELECT recsys.drop_model('up_emb', 1) AS dropped;
SELECT recsys.resolve_model_version('up_emb') AS newest;
SELECT recsys.drop_model('up_emb', 3) AS dropped;
SELECT recsys.next_model_version('up_emb') AS never_reused;

-- the same objects as a fresh install
SELECT x AS only_after_upgrade FROM public.recsys_objects() x
EXCEPT SELECT unnest(string_to_array(:'fresh_objects', chr(30))) ORDER BY 1;
SELECT x AS only_in_fresh_install FROM unnest(string_to_array(:'fresh_objects', chr(30))) x
EXCEPT SELECT * FROM public.recsys_objects() ORDER BY 1;
SELECT encode(recsys.export_model('up_mmoe'), 'hex') AS mmoe_hex \gset
\c :regress_db
DROP DATABASE recsys_upgrade;
DROP ROLE up_reader;

-- ALTER EXTENSION recsys UPDATE from 0.2.0 keeps users' objects that depend
-- on recsys (a view over recommend and dot, a function returning a recsys
-- type), their REVOKE and GRANT on a recsys function, and every model;
-- before the update, every 0.2.0 routine called through its 0.2.0 SQL
-- definition with the new library either does what it does after the update
-- or raises the one error that asks for the update.
DROP DATABASE IF EXISTS recsys_upgrade2;
CREATE DATABASE recsys_upgrade2;
\c recsys_upgrade2
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set ECHO none
SET check_function_bodies = off;
SELECT :'objects_ddl' \gexec
SELECT :'try_ddl' \gexec
RESET check_function_bodies;
\set ECHO all
CREATE EXTENSION recsys VERSION '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'recsys';
CREATE TABLE up2_plays (user_id bigint, item_id bigint, w real);
INSERT INTO up2_plays SELECT u, i, 1 + (u + i) % 3 FROM generate_series(1, 30) u, generate_series(1, 12) i WHERE (u * 7 + i * 3) % 5 < 2;
CREATE TABLE up2_rows (id bigint, f real[], y double precision);
INSERT INTO up2_rows SELECT i, ARRAY[(i % 7) / 7.0, (i % 5) / 5.0]::real[], (i % 3) / 3.0 FROM generate_series(1, 40) i;
-- models of both kinds and of every trainer, made through 0.2.0's SQL
SELECT count(*) AS epochs FROM recsys.train_embeddings('up2_emb', 'up2_plays', weight_column => 'w', dim => 3, epochs => 2);
SELECT count(*) AS epochs FROM recsys.train_embeddings('up2_sgd', 'up2_plays', dim => 3, method => 'sogram', epochs => 2);
SELECT recsys.import_model('up2_mmoe', decode(:'mmoe_hex', 'hex')) AS version;
SELECT count(*) AS epochs FROM recsys.train_mmoe('up2_trained', 'up2_rows', 'f', '{y}',
	'{"kind": "mmoe", "input_dim": 2, "dropout": 0.25, "experts": {"count": 2, "hidden": [3]}, "tasks": [{"name": "y", "type": "regression"}]}',
	epochs => 2, batch_size => 8, seed => 7);
CREATE TABLE up2_before AS
SELECT name, version, kind, md5(config::text) AS config, md5(weights) AS weights, md5(metrics::text) AS metrics, created_by, created_at,
	(SELECT md5(string_agg(u.id || ':' || u.embedding::text || ':' || u.seen::text, ',' ORDER BY u.id))
		FROM recsys.user_vectors u WHERE u.model = m.name AND u.version = m.version) AS users,
	(SELECT md5(string_agg(i.id || ':' || i.embedding::text, ',' ORDER BY i.id))
		FROM recsys.item_vectors i WHERE i.model = m.name AND i.version = m.version) AS items
FROM recsys.models m;
SELECT name, owner::regrole = current_user::regrole AS mine FROM recsys.model_names ORDER BY name;

-- users' objects over recsys
CREATE VIEW up2_top AS
SELECT u.id AS user_id, r.item_id, r.score, recsys.dot(u.embedding, u.embedding) AS norm2
FROM recsys.user_vectors u, recsys.recommend('up2_emb', u.id, 2, version => 1) r
WHERE u.model = 'up2_emb' AND u.version = 1;
CREATE FUNCTION up2_best(uid bigint) RETURNS recsys.ranked_item LANGUAGE sql STABLE
	AS $$ SELECT ROW(r.item_id, r.score)::recsys.ranked_item FROM recsys.recommend('up2_emb', uid, 1, version => 1) r $$;
-- (until the update the store's touch triggers are 0.2.0's, not ENABLE ALWAYS:
-- the model cache is off, with one WARNING whose HINT asks for the update)
CREATE TABLE up2_top_before AS SELECT * FROM up2_top;
CREATE TABLE up2_best_before AS SELECT u, up2_best(u) AS best FROM generate_series(1, 30) u;
DROP ROLE IF EXISTS up2_reader;
DROP ROLE IF EXISTS up2_other;
CREATE ROLE up2_reader;
CREATE ROLE up2_other;
REVOKE EXECUTE ON FUNCTION recsys.recommend(text, bigint, int, boolean, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recsys.recommend(text, bigint, int, boolean, int) TO up2_reader;
CREATE TABLE up2_acl_before AS SELECT proacl FROM pg_proc WHERE oid = 'recsys.recommend(text, bigint, int, boolean, int)'::regprocedure;

-- one call of every 0.2.0 routine (the names it exercises, the query); the
-- calls name version 1 where the newest would change between the rounds
CREATE TABLE up2_calls (id serial, fns text[], q text, before text, after text);
INSERT INTO up2_calls (fns, q) VALUES
	('{check_model_name}', $$SELECT recsys.check_model_name('up2_emb')$$),
	('{model_owned}', $$SELECT recsys.model_owned('up2_emb')$$),
	('{store_relation}', $$SELECT recsys.store_relation('models')::text$$),
	('{next_model_version}', $$SELECT recsys.next_model_version('up2_emb') > 1$$),
	('{resolve_model_version}', $$SELECT recsys.resolve_model_version('up2_emb', 1)$$),
	('{import_model}', $$SELECT recsys.import_model('up2_tmp', decode('$$ || :'mmoe_hex' || $$', 'hex')) > 0$$),
	('{drop_model}', $$SELECT recsys.drop_model('up2_tmp')$$),
	('{model_cache}', $$SELECT count(*) >= 0 FROM recsys.model_cache()$$),
	('{dot}', $$SELECT recsys.dot(ARRAY[1, 2]::real[], ARRAY[3, 4]::real[]), recsys.dot(ARRAY[1, 2]::float8[], ARRAY[3, 5]::float8[])$$),
	('{frobenius}', $$SELECT recsys.frobenius(ARRAY[[1, 2], [3, 4]]::float8[], ARRAY[[1, 0], [0, 1]]::float8[])$$),
	('{gramian}', $$SELECT recsys.gramian(embedding), recsys.gramian(embedding::float8[]), recsys.gramian(embedding, 2.0), recsys.gramian(embedding::float8[], 0.5) FROM recsys.item_vectors WHERE model = 'up2_emb' AND version = 1$$),
	('{gramian_accum,gramian_combine,gramian_final}', $$SELECT recsys.gramian_final(recsys.gramian_combine(recsys.gramian_accum(recsys.gramian_accum(NULL, ARRAY[1, 2]::real[]), ARRAY[1, 2]::real[], 3.0), recsys.gramian_accum(recsys.gramian_accum(NULL, ARRAY[3, 4]::float8[]), ARRAY[3, 4]::float8[], -1.0)))$$),
	('{als_solve}', $$SELECT p.user_id, recsys.als_solve(i.embedding, p.w, (SELECT recsys.gramian(embedding) FROM recsys.item_vectors WHERE model = 'up2_emb' AND version = 1), 0.1, 0.01) FROM up2_plays p JOIN recsys.item_vectors i ON i.model = 'up2_emb' AND i.version = 1 AND i.id = p.item_id GROUP BY 1 ORDER BY 1$$),
	('{als_solve}', $$SELECT recsys.als_solve(ARRAY[1, 0.5]::float8[], 2.0, ARRAY[[1, 0], [0, 1]]::float8[], 0.1, 0.01)$$),
	('{als_solve_objective}', $$SELECT recsys.als_solve_objective(ARRAY[1, 0.5]::real[], 2.0, ARRAY[[1, 0], [0, 1]]::float8[], 0.1, 0.01)$$),
	('{als_solve_accum,als_solve_combine,als_solve_final,als_solve_objective_final}', $$SELECT recsys.als_solve_final(recsys.als_solve_combine(a, b)), recsys.als_solve_objective_final(recsys.als_solve_combine(a, b)) FROM (SELECT recsys.als_solve_accum(NULL, ARRAY[1, 2]::real[], 2.0, ARRAY[[1, 0], [0, 1]]::float8[], 0.1, 0.01) a, recsys.als_solve_accum(NULL, ARRAY[0.5, 1]::float8[], 1.0, ARRAY[[1, 0], [0, 1]]::float8[], 0.1, 0.01) b) s$$),
	('{embedding_init}', $$SELECT recsys.embedding_init(7, 4, 42, 0.1)$$),
	('{embedding_options}', $$SELECT count(*) FROM recsys.embedding_options()$$),
	('{embedding_options}', $$SELECT recsys.embedding_options('sogram', '{"batch_size": 16}')$$),
	('{train_embeddings,vectors_touch_models}', $$SELECT epoch, round(loss::numeric, 6) FROM recsys.train_embeddings('up2_emb', 'up2_plays', weight_column => 'w', dim => 3, epochs => 2)$$),
	('{train_embeddings}', $$SELECT epoch, round(loss::numeric, 6) FROM recsys.train_embeddings('up2_sgd', 'up2_plays', dim => 3, method => 'sampled', epochs => 2)$$),
	('{embedding_model_version}', $$SELECT recsys.embedding_model_version('up2_emb', 1)$$),
	('{user_embeddings}', $$SELECT * FROM recsys.user_embeddings('up2_emb', 1)$$),
	('{item_embeddings}', $$SELECT * FROM recsys.item_embeddings('up2_emb', 1)$$),
	('{recommend}', $$SELECT * FROM recsys.recommend('up2_emb', 3, 4, version => 1)$$),
	('{recommend_all}', $$SELECT * FROM recsys.recommend_all('up2_emb', 2, version => 1)$$),
	('{fold_in}', $$SELECT recsys.fold_in('up2_emb', ARRAY[1, 2, 3]::bigint[], version => 1)$$),
	('{recommend_for_items}', $$SELECT * FROM recsys.recommend_for_items('up2_emb', ARRAY[1, 2]::bigint[], 3, version => 1)$$),
	('{recommend_all_for_items}', $$SELECT * FROM recsys.recommend_all_for_items('up2_emb', 'up2_plays', k => 2, version => 1)$$),
	('{mmoe_validate}', $$SELECT * FROM recsys.mmoe_validate(recsys.export_model('up2_mmoe', 1))$$),
	('{export_model}', $$SELECT md5(recsys.export_model('up2_mmoe', 1))$$),
	('{predict}', $$SELECT recsys.predict('up2_mmoe', ARRAY[1, 2]::real[], version => 1), recsys.predict('up2_mmoe', ARRAY[1, 2]::float8[], version => 1), recsys.predict('up2_mmoe', ARRAY[1, 2]::real[], 'y', version => 1), recsys.predict('up2_mmoe', ARRAY[1, 2]::float8[], 'y', version => 1)$$),
	('{gate_weights}', $$SELECT recsys.gate_weights('up2_mmoe', ARRAY[1, 2]::real[], 'y', version => 1), recsys.gate_weights('up2_mmoe', ARRAY[1, 2]::float8[], 'y', version => 1)$$),
	('{predict_mc}', $$SELECT * FROM recsys.predict_mc('up2_trained', ARRAY[1, 2]::real[], 16, 3, version => 1)$$),
	('{predict_mc}', $$SELECT * FROM recsys.predict_mc('up2_trained', ARRAY[1, 2]::float8[], 16, 3, version => 1)$$),
	('{predict_batch}', $$SELECT * FROM recsys.predict_batch('up2_mmoe', ARRAY[[1, 2], [3, 4]]::real[], version => 1)$$),
	('{predict_batch}', $$SELECT * FROM recsys.predict_batch('up2_mmoe', ARRAY[[1, 2], [3, 4]]::float8[], version => 1)$$),
	('{predict_top_k}', $$SELECT recsys.predict_top_k('up2_mmoe', f, id, 3, ARRAY[1]::real[]), recsys.predict_top_k('up2_mmoe', f::float8[], id, 3, ARRAY[1]::real[]) FROM up2_rows$$),
	('{predict_top_k}', $$SELECT recsys.predict_top_k('up2_mmoe', f, ARRAY[1]::int[], id, 3, ARRAY[1]::real[]) FROM up2_rows$$),
	('{predict_top_k}', $$SELECT recsys.predict_top_k('up2_mmoe', f::float8[], ARRAY[1]::int[], id, 3, ARRAY[1]::real[]) FROM up2_rows$$),
	('{predict_top_k_step,predict_top_k_combine,predict_top_k_final}', $$SELECT recsys.predict_top_k_final(recsys.predict_top_k_combine(recsys.predict_top_k_step(NULL, 'up2_mmoe', ARRAY[1, 2]::real[], 1, 2, ARRAY[1]::real[]), recsys.predict_top_k_step(NULL, 'up2_mmoe', ARRAY[3, 1]::float8[], 2, 2, ARRAY[1]::real[])))$$),
	('{predict_table}', $$SELECT * FROM recsys.predict_table('up2_mmoe', 'up2_rows', 'id', 'f', version => 1)$$),
	('{train_mmoe}', $$SELECT epoch, round(loss::numeric, 6) FROM recsys.train_mmoe('up2_trained', 'up2_rows', 'f', '{y}', '{"kind": "mmoe", "input_dim": 2, "experts": {"count": 2, "hidden": [3]}, "tasks": [{"name": "y", "type": "regression"}]}', epochs => 2, batch_size => 8, seed => 7)$$),
	('{uncertainty_loss}', $$SELECT recsys.uncertainty_loss(ARRAY[0.5, 2]::float8[], ARRAY[0.1, -0.3]::float8[], ARRAY['regression', 'binary'])$$),
	('{gaussian_nll}', $$SELECT recsys.gaussian_nll(1.0, 0.5, 2.0)$$),
	('{sampled_softmax_nll}', $$SELECT recsys.sampled_softmax_nll(ARRAY[1, 2, 3]::float8[], ARRAY[0.5, 0.5, 0.5]::float8[], 1, 100, 7)$$),
	('{uncertainty_weights,uncertainty_weighted_loss}', $$SELECT recsys.uncertainty_weights(ARRAY[x, 2 * x]), recsys.uncertainty_weights(ARRAY[x, 2 * x], ARRAY['regression', 'binary']), recsys.uncertainty_weighted_loss(ARRAY[x, 2 * x]), recsys.uncertainty_weighted_loss(ARRAY[x, 2 * x], ARRAY['binary', 'binary']) FROM generate_series(1, 5) x$$),
	('{uncertainty_weights_accum,uncertainty_weights_combine,uncertainty_weights_final,uncertainty_weighted_loss_final}', $$SELECT recsys.uncertainty_weights_final(recsys.uncertainty_weights_combine(a, b)), recsys.uncertainty_weighted_loss_final(recsys.uncertainty_weights_combine(a, b)) FROM (SELECT recsys.uncertainty_weights_accum(NULL, ARRAY[1, 2]::float8[]) a, recsys.uncertainty_weights_accum(NULL, ARRAY[3, 1]::float8[], ARRAY['regression', 'regression']) b) s$$),
	('{predictive_variance}', $$SELECT recsys.predictive_variance(x, x / 10.0) FROM generate_series(1, 5) x$$),
	('{predictive_variance_accum,predictive_variance_combine,predictive_variance_final}', $$SELECT recsys.predictive_variance_final(recsys.predictive_variance_combine(recsys.predictive_variance_accum(NULL, 1, 0.5), recsys.predictive_variance_accum(NULL, 3, 0.25)))$$),
	('{recall_at_k}', $$SELECT recsys.recall_at_k(ARRAY[1, 2, 3]::bigint[], ARRAY[2, 5]::bigint[], 2)$$),
	('{ndcg_at_k}', $$SELECT recsys.ndcg_at_k(ARRAY[1, 2, 3]::bigint[], ARRAY[2, 5]::bigint[], 2)$$),
	('{auc,log_loss}', $$SELECT recsys.auc(x / 10.0, x % 2 = 0), recsys.log_loss(x / 10.0, x % 2 = 0) FROM generate_series(1, 9) x$$),
	('{auc_accum,auc_combine,auc_final}', $$SELECT recsys.auc_final(recsys.auc_combine(recsys.auc_accum(NULL, 0.2, false), recsys.auc_accum(NULL, 0.7, true)))$$),
	('{log_loss_accum,log_loss_combine,log_loss_final}', $$SELECT recsys.log_loss_final(recsys.log_loss_combine(recsys.log_loss_accum(NULL, 0.2, false), recsys.log_loss_accum(NULL, 0.7, true)))$$),
	('{citus_check_coordinator}', $$SELECT recsys.citus_check_coordinator('up2')$$),
	('{citus_attach_store}', $$SELECT recsys.citus_attach_store()$$),
	('{citus_release_placements}', $$SELECT recsys.citus_release_placements()$$),
	('{citus_detach_store}', $$SELECT recsys.citus_detach_store()$$);
-- every routine of 0.2.0 is called
SELECT p.proname AS not_called FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'recsys')
	AND NOT EXISTS (SELECT FROM up2_calls c WHERE p.proname = ANY (c.fns)) ORDER BY 1;
UPDATE up2_calls SET before = public.try_call(q);

ALTER EXTENSION recsys UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'recsys';
\c recsys_upgrade2
SET client_min_messages = warning;
SET extra_float_digits = 0;
UPDATE up2_calls SET after = public.try_call(q);
-- no 0.2.0 definition did anything but what it does after the update or ask for the update
SELECT count(*) AS calls, count(*) FILTER (WHERE before = after) AS same_as_after_update,
	count(*) FILTER (WHERE before LIKE '55000: recsys % library needs ALTER EXTENSION recsys UPDATE%HINT: Run ALTER EXTENSION recsys UPDATE.') AS asked_for_update
FROM up2_calls;
SELECT id, fns, before, after FROM up2_calls
WHERE before IS DISTINCT FROM after AND before NOT LIKE '55000: recsys % library needs ALTER EXTENSION recsys UPDATE%HINT: Run ALTER EXTENSION recsys UPDATE.'
ORDER BY id;
-- the calls that returned rows did so after the update too (not every call failing alike)
SELECT count(*) FILTER (WHERE after LIKE 'result %') AS returned_rows FROM up2_calls;

-- the models of 0.2.0 kept byte for byte
SELECT count(*) AS models, count(*) FILTER (WHERE b.config = md5(m.config::text) AND b.weights IS NOT DISTINCT FROM md5(m.weights)
		AND b.metrics = md5(m.metrics::text) AND b.created_by = m.created_by AND b.created_at = m.created_at
		AND b.users IS NOT DISTINCT FROM (SELECT md5(string_agg(u.id || ':' || u.embedding::text || ':' || u.seen::text, ',' ORDER BY u.id))
			FROM recsys.user_vectors u WHERE u.model = m.name AND u.version = m.version)
		AND b.items IS NOT DISTINCT FROM (SELECT md5(string_agg(i.id || ':' || i.embedding::text, ',' ORDER BY i.id))
			FROM recsys.item_vectors i WHERE i.model = m.name AND i.version = m.version)) AS identical
FROM up2_before b JOIN recsys.models m USING (name, version, kind);
-- the user's view and function still work and give what they gave
SELECT (SELECT count(*) FROM up2_top) AS view_rows,
	(SELECT count(*) FROM (SELECT * FROM up2_top EXCEPT SELECT * FROM up2_top_before) d) AS view_rows_changed,
	(SELECT count(*) FROM up2_best_before b WHERE b.best IS DISTINCT FROM up2_best(b.u)) AS best_changed,
	(SELECT count(*) FROM up2_best_before WHERE best IS NOT NULL) AS users_with_best;
-- and still depend on the recsys objects they use
SELECT pg_describe_object(classid, objid, objsubid) AS dependent, pg_describe_object(refclassid, refobjid, refobjsubid) AS on_recsys
FROM pg_depend
WHERE refobjid IN ('recsys.recommend(text, bigint, int, boolean, int)'::regprocedure, 'recsys.dot(real[], real[])'::regprocedure, 'recsys.ranked_item'::regtype)
	AND deptype = 'n' AND classid IN ('pg_rewrite'::regclass, 'pg_proc'::regclass)
ORDER BY 1, 2;
-- the REVOKE and the GRANT are kept
SELECT (SELECT proacl FROM pg_proc WHERE oid = 'recsys.recommend(text, bigint, int, boolean, int)'::regprocedure) = (SELECT proacl FROM up2_acl_before) AS same_acl,
	has_function_privilege('up2_reader', 'recsys.recommend(text, bigint, int, boolean, int)', 'EXECUTE') AS reader_may,
	has_function_privilege('up2_other', 'recsys.recommend(text, bigint, int, boolean, int)', 'EXECUTE') AS other_may;

-- the same objects as a fresh install
SELECT x AS only_after_upgrade FROM public.recsys_objects() x
EXCEPT SELECT unnest(string_to_array(:'fresh_objects', chr(30))) ORDER BY 1;
SELECT x AS only_in_fresh_install FROM unnest(string_to_array(:'fresh_objects', chr(30))) x
EXCEPT SELECT * FROM public.recsys_objects() ORDER BY 1;
\c :regress_db
DROP DATABASE recsys_upgrade2;
DROP ROLE up2_reader;
DROP ROLE up2_other;
DROP FUNCTION public.recsys_objects();

