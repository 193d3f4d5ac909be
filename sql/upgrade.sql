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
			|| ' ' || coalesce(array_to_string(p.proconfig, ';'), '') || ' ' || p.prosrc, '')
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
	FROM pg_constraint WHERE connamespace = 'recsys'::regnamespace
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

ALTER EXTENSION recsys UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'recsys';

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

-- the same objects as a fresh install
SELECT x AS only_after_upgrade FROM public.recsys_objects() x
EXCEPT SELECT unnest(string_to_array(:'fresh_objects', chr(30))) ORDER BY 1;
SELECT x AS only_in_fresh_install FROM unnest(string_to_array(:'fresh_objects', chr(30))) x
EXCEPT SELECT * FROM public.recsys_objects() ORDER BY 1;
\c :regress_db
DROP DATABASE recsys_upgrade;
DROP FUNCTION public.recsys_objects();
