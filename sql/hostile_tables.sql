-- Hostile relations: regclass arguments that name no relation, and tables whose
-- owner planted casts that would run as whoever reads them (doc/security.md,
-- "A caller's relation runs none of its owner's code")
SET extra_float_digits = 0;
SET client_min_messages = warning;

-- run a statement, give 'ok' or its SQLSTATE, message, DETAIL and HINT
CREATE FUNCTION pg_temp.try(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	msg text;
	detail text;
	hint text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RETURN 'ERROR:  ' || SQLSTATE || ': ' || msg
		|| CASE WHEN detail <> '' THEN E'\nDETAIL:  ' || detail ELSE '' END
		|| CASE WHEN hint <> '' THEN E'\nHINT:  ' || hint ELSE '' END;
END
$$;

-- a clean table and a trained model to score with, so that only the hostile
-- relation can stop a call
CREATE TABLE ht_rows (f real[], click float8, cat int[], pos int, u bigint, i bigint, w real);
INSERT INTO ht_rows SELECT ARRAY[sin(g), cos(g)]::real[], (g % 2)::float8, ARRAY[g % 3], g % 4,
	g % 7, g % 5, 1 + g % 3 FROM generate_series(1, 40) g;
SELECT count(*) AS epochs FROM recsys.train_mmoe('ht_mmoe', 'ht_rows', 'f', '{click}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 2, "hidden": [3]},
	  "tasks": [{"name": "click", "type": "binary"}]}', epochs => 1);
SELECT count(*) AS epochs FROM recsys.train_embeddings('ht_emb', 'ht_rows', 'u', 'i', 'w', dim => 2, epochs => 1);

-- 1. A regclass that names no relation (any number, or a dropped table) is
-- 42P01 before any work, in every function that takes one (0.2.0 crashed the
-- server in recommend_all_for_items)
CREATE TABLE ht_dropped (u bigint, i bigint);
SELECT 'ht_dropped'::regclass::oid AS dropped_oid \gset
DROP TABLE ht_dropped;
SELECT replace(pg_temp.try(q), :'dropped_oid', '<dropped>') FROM unnest(ARRAY[
	$$SELECT * FROM recsys.recommend_all_for_items('ht_emb', 99999::regclass)$$,
	format($$SELECT * FROM recsys.recommend_all_for_items('ht_emb', %s::regclass)$$, :'dropped_oid'),
	$$SELECT * FROM recsys.recommend_all_for_items('ht_emb', 0::regclass)$$,
	$$SELECT * FROM recsys.train_embeddings('ht_x', 99999::regclass)$$,
	format($$SELECT * FROM recsys.train_embeddings('ht_x', %s::regclass, 'u', 'i')$$, :'dropped_oid'),
	$$SELECT * FROM recsys.predict_table('ht_mmoe', 99999::regclass, 'u', 'f')$$,
	format($$SELECT * FROM recsys.predict_table('ht_mmoe', %s::regclass, 'u', 'f')$$, :'dropped_oid'),
	$$SELECT * FROM recsys.train_mmoe('ht_x', 99999::regclass, 'f', '{click}', '{}')$$,
	$$SELECT * FROM recsys.train_mmoe('ht_x', 'ht_rows', 'f', '{click}', '{}', validation => 99999::regclass)$$
]) q;
-- nothing was created by the failed trainings
SELECT count(*) AS names FROM recsys.model_names WHERE name = 'ht_x';

-- 2. A table owner plants casts from a type of its own to every type recsys
-- casts to; the function records who ran it, tries to make its owner a
-- superuser, and raises a WARNING (which a rolled-back call still shows).
-- The superuser then reads the table with every function that reads a
-- caller's relation: each call must refuse the column before reading a row,
-- and the cast function must never run.
DROP ROLE IF EXISTS ht_owner;
CREATE ROLE ht_owner;
CREATE SCHEMA ht AUTHORIZATION ht_owner;
GRANT SELECT ON ht_rows TO ht_owner;
SET ROLE ht_owner;
CREATE TABLE ht.fired (who text, what text);
GRANT INSERT ON ht.fired TO PUBLIC;
CREATE TYPE ht.evil AS (x int);
CREATE FUNCTION ht.hook(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE WARNING 'cast to % ran as %', what, current_user;
	INSERT INTO ht.fired VALUES (current_user, what);
	BEGIN
		ALTER ROLE ht_owner SUPERUSER;
	EXCEPTION WHEN OTHERS THEN
		NULL;
	END;
END
$$;
CREATE FUNCTION ht.to_int8(ht.evil) RETURNS bigint LANGUAGE plpgsql AS $$BEGIN PERFORM ht.hook('int8'); RETURN 1; END$$;
CREATE FUNCTION ht.to_int4(ht.evil) RETURNS int LANGUAGE plpgsql AS $$BEGIN PERFORM ht.hook('int4'); RETURN 1; END$$;
CREATE FUNCTION ht.to_float8(ht.evil) RETURNS float8 LANGUAGE plpgsql AS $$BEGIN PERFORM ht.hook('float8'); RETURN 1; END$$;
CREATE FUNCTION ht.to_int4s(ht.evil) RETURNS int[] LANGUAGE plpgsql AS $$BEGIN PERFORM ht.hook('int4[]'); RETURN '{0}'; END$$;
CREATE FUNCTION ht.to_float4s(ht.evil) RETURNS real[] LANGUAGE plpgsql AS $$BEGIN PERFORM ht.hook('float4[]'); RETURN '{0,0}'; END$$;
CREATE CAST (ht.evil AS bigint) WITH FUNCTION ht.to_int8(ht.evil);
CREATE CAST (ht.evil AS int) WITH FUNCTION ht.to_int4(ht.evil);
CREATE CAST (ht.evil AS float8) WITH FUNCTION ht.to_float8(ht.evil);
CREATE CAST (ht.evil AS int[]) WITH FUNCTION ht.to_int4s(ht.evil);
CREATE CAST (ht.evil AS real[]) WITH FUNCTION ht.to_float4s(ht.evil);
CREATE TABLE ht.t (e ht.evil, f real[], click float8, cat int[], pos int, u bigint, i bigint);
INSERT INTO ht.t SELECT ROW(1)::ht.evil, f, click, cat, pos, u, i FROM (SELECT * FROM ht_rows) r;
-- a validation table whose label column has the planted type
CREATE TABLE ht.v (f real[], click ht.evil);
INSERT INTO ht.v SELECT f, ROW(1)::ht.evil FROM (SELECT * FROM ht_rows) r;
-- a cast on the table's own row type: its name as a column would read the whole row
CREATE TABLE ht.whole (f real[], click float8, u bigint);
INSERT INTO ht.whole SELECT f, click, u FROM (SELECT * FROM ht_rows) r;
CREATE FUNCTION ht.whole_to_int8(ht.whole) RETURNS bigint LANGUAGE plpgsql AS $$BEGIN PERFORM ht.hook('whole int8'); RETURN 1; END$$;
CREATE FUNCTION ht.whole_to_float8(ht.whole) RETURNS float8 LANGUAGE plpgsql AS $$BEGIN PERFORM ht.hook('whole float8'); RETURN 1; END$$;
CREATE CAST (ht.whole AS bigint) WITH FUNCTION ht.whole_to_int8(ht.whole);
CREATE CAST (ht.whole AS float8) WITH FUNCTION ht.whole_to_float8(ht.whole);
-- a domain over an accepted type
CREATE DOMAIN ht.id8 AS bigint;
CREATE TABLE ht.dom (u ht.id8, i bigint, f real[], click float8);
INSERT INTO ht.dom SELECT u, i, f, click FROM (SELECT * FROM ht_rows) r;
-- the cast works for anyone who reads the column with "::"
SELECT (e)::bigint AS cast_result FROM ht.t LIMIT 1;
SELECT who, what FROM ht.fired;
TRUNCATE ht.fired;
RESET ROLE;
GRANT USAGE ON SCHEMA ht TO PUBLIC;
GRANT SELECT ON ht.t, ht.v, ht.whole, ht.dom TO PUBLIC;

-- every reader of a caller's relation, every column it casts, as the superuser
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	-- predict_table: id, categorical and position columns (cast), features and context (read as is)
	$$SELECT * FROM recsys.predict_table('ht_mmoe', 'ht.t', 'e', 'f')$$,
	$$SELECT * FROM recsys.predict_table('ht_mmoe', 'ht.t', 'u', 'e')$$,
	$$SELECT * FROM recsys.predict_table('ht_mmoe', 'ht.t', 'u', 'f', categorical_column => 'e')$$,
	$$SELECT * FROM recsys.predict_table('ht_mmoe', 'ht.t', 'u', 'f', context_column => 'e')$$,
	$$SELECT * FROM recsys.predict_table('ht_mmoe', 'ht.t', 'u', 'f', display_position_column => 'e')$$,
	-- train_mmoe: every column, of the source and of the validation table
	$$SELECT * FROM recsys.train_mmoe('ht_mmoe', 'ht.t', 'e', '{click}', NULL, options => '{"init_version": 1}')$$,
	$$SELECT * FROM recsys.train_mmoe('ht_mmoe', 'ht.t', 'f', '{e}', NULL, options => '{"init_version": 1}')$$,
	$$SELECT * FROM recsys.train_mmoe('ht_mmoe', 'ht_rows', 'f', '{click}', NULL, validation => 'ht.v',
		options => '{"init_version": 1}')$$,
	$$SELECT * FROM recsys.train_mmoe('ht_mmoe', 'ht.t', 'f', '{click}', NULL, categorical_column => 'e',
		options => '{"init_version": 1}')$$,
	$$SELECT * FROM recsys.train_mmoe('ht_mmoe', 'ht.t', 'f', '{click}', NULL, context_column => 'e',
		options => '{"init_version": 1}')$$,
	$$SELECT * FROM recsys.train_mmoe('ht_mmoe', 'ht.t', 'f', '{click}', NULL, display_position_column => 'e',
		options => '{"init_version": 1}')$$,
	-- train_embeddings and recommend_all_for_items: user, item and weight columns
	$$SELECT * FROM recsys.train_embeddings('ht_emb', 'ht.t', 'e', 'i', dim => 2, epochs => 1)$$,
	$$SELECT * FROM recsys.train_embeddings('ht_emb', 'ht.t', 'u', 'e', dim => 2, epochs => 1)$$,
	$$SELECT * FROM recsys.train_embeddings('ht_emb', 'ht.t', 'u', 'i', 'e', dim => 2, epochs => 1)$$,
	$$SELECT * FROM recsys.recommend_all_for_items('ht_emb', 'ht.t', 'e', 'i')$$,
	$$SELECT * FROM recsys.recommend_all_for_items('ht_emb', 'ht.t', 'u', 'e')$$,
	$$SELECT * FROM recsys.recommend_all_for_items('ht_emb', 'ht.t', 'u', 'i', 'e')$$
]) q;

-- the relation's name (a whole-row reference) and system columns are not columns
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT * FROM recsys.predict_table('ht_mmoe', 'ht.whole', 'whole', 'f')$$,
	$$SELECT * FROM recsys.train_mmoe('ht_mmoe', 'ht.whole', 'f', '{whole}', NULL, options => '{"init_version": 1}')$$,
	$$SELECT * FROM recsys.train_embeddings('ht_emb', 'ht.whole', 'whole', 'u', dim => 2, epochs => 1)$$,
	$$SELECT * FROM recsys.recommend_all_for_items('ht_emb', 'ht.whole', 'whole', 'u')$$,
	$$SELECT * FROM recsys.predict_table('ht_mmoe', 'ht.whole', 'ctid', 'f')$$,
	$$SELECT * FROM recsys.predict_table('ht_mmoe', 'ht.whole', 'xmin', 'f')$$,
	$$SELECT * FROM recsys.train_mmoe('ht_mmoe', 'ht.whole', 'f', '{tableoid}', NULL, options => '{"init_version": 1}')$$,
	$$SELECT * FROM recsys.train_embeddings('ht_emb', 'ht.whole', 'u', 'cmax', dim => 2, epochs => 1)$$,
	$$SELECT * FROM recsys.predict_table('ht_mmoe', 'ht.whole', 'U', 'f')$$
]) q;

-- a domain is refused even over an accepted type
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT * FROM recsys.predict_table('ht_mmoe', 'ht.dom', 'u', 'f')$$,
	$$SELECT * FROM recsys.train_embeddings('ht_emb', 'ht.dom', 'u', 'i', dim => 2, epochs => 1)$$,
	$$SELECT * FROM recsys.recommend_all_for_items('ht_emb', 'ht.dom', 'u', 'i')$$
]) q;

-- the cast functions never ran, and the owner is no superuser
SELECT count(*) AS fired FROM ht.fired;
SELECT rolsuper FROM pg_roles WHERE rolname = 'ht_owner';

-- the accepted types still work, through the same calls
SELECT count(*) AS scored FROM recsys.predict_table('ht_mmoe', 'ht.t', 'u', 'f');
SELECT count(DISTINCT user_id) AS users FROM recsys.recommend_all_for_items('ht_emb', 'ht.t', 'u', 'i', exclude_seen => false);

DROP SCHEMA ht CASCADE;
DROP TABLE ht_rows;
DROP ROLE ht_owner;
SELECT recsys.drop_model('ht_mmoe') + recsys.drop_model('ht_emb') AS dropped;
