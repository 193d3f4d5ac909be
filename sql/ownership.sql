-- The model store's integrity: ownership lives in the catalog (DROP ROLE,
-- DROP OWNED, REASSIGN OWNED, transfers), provenance is recsys's, a name
-- holds one kind, the cache answers no role that the query would refuse, and
-- never serves vectors written while the store's triggers were bypassed.
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set SHOW_CONTEXT never

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
	-- ALTER OWNER's membership error as PostgreSQL 15 words it (16 on: "must be able to SET ROLE")
	msg := regexp_replace(msg, '^must be able to SET ROLE ', 'must be member of role ');
	RETURN 'ERROR:  ' || SQLSTATE || ': ' || msg
		|| CASE WHEN detail <> '' THEN E'\nDETAIL:  ' || detail ELSE '' END
		|| CASE WHEN hint <> '' THEN E'\nHINT:  ' || hint ELSE '' END;
END
$$;

CREATE TABLE own_plays (user_id bigint, item_id bigint);
INSERT INTO own_plays SELECT u, i FROM generate_series(1, 20) u, generate_series(1, 10) i WHERE (u + i) % 3 = 0;
CREATE TABLE own_tm (f real[], y float8);
INSERT INTO own_tm SELECT ARRAY[sin(i), cos(i)]::real[], cos(i) FROM generate_series(1, 20) i;
DROP ROLE IF EXISTS own_carol, own_dave, own_team, own_erin, own_reader, own_noread;
CREATE ROLE own_carol;
CREATE ROLE own_dave;
CREATE ROLE own_team;
CREATE ROLE own_erin IN ROLE own_team;
CREATE ROLE own_reader;
CREATE ROLE own_noread;
GRANT USAGE ON SCHEMA recsys TO own_carol, own_dave, own_team, own_erin, own_reader, own_noread;
GRANT SELECT ON ALL TABLES IN SCHEMA recsys TO own_carol, own_dave, own_team, own_erin, own_reader;
GRANT SELECT ON recsys.models, recsys.model_names TO own_noread;
GRANT INSERT, UPDATE, DELETE ON recsys.model_names, recsys.models, recsys.user_vectors, recsys.item_vectors,
	recsys.model_aliases, recsys.model_events
	TO own_carol, own_dave, own_team, own_erin;
GRANT SELECT ON own_plays, own_tm TO own_carol, own_dave, own_erin;

-- 1. Provenance (created_by, created_at) is written by recsys only.
SET ROLE own_carol;
SELECT count(*) AS epochs FROM recsys.train_embeddings('own_m', 'own_plays', dim => 2, epochs => 1);
SELECT pg_temp.try($$UPDATE recsys.models SET created_by = 'own_dave' WHERE name = 'own_m'$$);
SELECT pg_temp.try($$UPDATE recsys.models SET created_at = created_at - interval '1 day' WHERE name = 'own_m'$$);
SELECT pg_temp.try($$INSERT INTO recsys.models (name, version, kind) VALUES ('own_m', 1, 'embeddings')
	ON CONFLICT (name, version) DO UPDATE SET created_by = 'own_dave'$$);
SELECT pg_temp.try($$INSERT INTO recsys.models (name, version, kind, created_by) VALUES ('own_m', 2, 'embeddings', 'own_dave')$$);
SELECT pg_temp.try($$INSERT INTO recsys.models (name, version, kind, created_at) VALUES ('own_m', 2, 'embeddings', '2000-01-01')$$);
SELECT pg_temp.try($$UPDATE recsys.model_names SET created_at = '2000-01-01' WHERE name = 'own_m'$$);
SELECT pg_temp.try($$INSERT INTO recsys.model_names (name, created_at) VALUES ('own_x', '2000-01-01')$$);
-- other columns stay writable by the owner
SELECT pg_temp.try($$UPDATE recsys.models SET metrics = '{"note": 1}' WHERE name = 'own_m'$$);
RESET ROLE;
-- nobody changes provenance, a superuser neither; a superuser (or a role
-- with BYPASSRLS) may insert it, as a restore does
SELECT pg_temp.try($$UPDATE recsys.models SET created_by = 'own_dave' WHERE name = 'own_m'$$);
SELECT pg_temp.try($$INSERT INTO recsys.models (name, version, kind, created_by, created_at)
	VALUES ('own_m', 2, 'embeddings', 'own_dave', '2000-01-01')$$);
SELECT name, version, created_by, created_at = '2000-01-01' AS restored_time FROM recsys.models WHERE name = 'own_m' ORDER BY version;
DELETE FROM recsys.models WHERE name = 'own_m' AND version = 2;
-- the triggers fire under session_replication_role = replica too
SET session_replication_role = replica;
SELECT pg_temp.try($$UPDATE recsys.models SET created_by = 'own_dave' WHERE name = 'own_m'$$);
RESET session_replication_role;
SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'recsys'::regnamespace AND NOT t.tgisinternal ORDER BY 1, 2;
SELECT evtname, evtevent, evtenabled FROM pg_event_trigger WHERE evtname LIKE 'recsys%' ORDER BY 1;

-- 2. A name holds models of one kind: import_model, train_embeddings and
-- train_mmoe refuse a version of another kind.
SELECT recsys.import_model('own_mmoe', decode('d8010000000000007b2267617465732e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b315d2c2022646174615f6f666673657473223a205b33322c2033365d7d2c202267617465732e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b312c20325d2c2022646174615f6f666673657473223a205b32342c2033325d7d2c2022746f776572732e302e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b315d2c2022646174615f6f666673657473223a205b34342c2034385d7d2c2022657870657274732e302e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b325d2c2022646174615f6f666673657473223a205b31362c2032345d7d2c2022746f776572732e302e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b312c20325d2c2022646174615f6f666673657473223a205b33362c2034345d7d2c2022657870657274732e302e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b322c20325d2c2022646174615f6f666673657473223a205b302c2031365d7d7d0000803f00000000000000000000803f00000000000000009a99993e333333bfcdcccc3d0000803f000000400000003f', 'hex'),
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}') AS version;
SELECT pg_temp.try($$SELECT recsys.import_model('own_m', recsys.export_model('own_mmoe'))$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_embeddings('own_mmoe', 'own_plays', dim => 2, epochs => 1)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('own_m', 'own_tm', 'f', '{y}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	epochs => 1)$$);
SELECT pg_temp.try($$UPDATE recsys.models SET kind = 'mmoe' WHERE name = 'own_m'$$);
SELECT name, version, kind FROM recsys.models WHERE name IN ('own_m', 'own_mmoe') ORDER BY 1, 2;
-- and everyone still scores both
SELECT count(*) AS recommended FROM recsys.recommend('own_m', 3, 2);
SELECT recsys.predict('own_mmoe', '{1,2}'::real[]) IS NOT NULL AS scored;
SELECT recsys.drop_model('own_mmoe');

-- 3. Ownership is the catalog's: each name has a sequence recsys_names.<name>
-- owned by the owner role.
SELECT n.name, n.owner, recsys.model_owner(n.name) AS model_owner, c.relkind
FROM recsys.model_names n JOIN pg_class c ON c.relname = n.name AND c.relnamespace = 'recsys_names'::regnamespace
WHERE n.name LIKE 'own%';
-- DROP ROLE is refused while the role owns models
REVOKE ALL ON ALL TABLES IN SCHEMA recsys FROM own_carol;
REVOKE ALL ON SCHEMA recsys FROM own_carol;
REVOKE ALL ON own_plays, own_tm FROM own_carol;
SELECT pg_temp.try('DROP ROLE own_carol');
GRANT USAGE ON SCHEMA recsys TO own_carol;
GRANT SELECT ON ALL TABLES IN SCHEMA recsys TO own_carol;
GRANT INSERT, UPDATE, DELETE ON recsys.model_names, recsys.models, recsys.user_vectors, recsys.item_vectors,
	recsys.model_aliases, recsys.model_events TO own_carol;
-- REASSIGN OWNED moves the models: the new owner adds versions, the old
-- one no longer may
REASSIGN OWNED BY own_carol TO own_dave;
SELECT recsys.model_owner('own_m');
SET ROLE own_carol;
SELECT pg_temp.try($$SELECT * FROM recsys.train_embeddings('own_m', 'own_plays', dim => 2, epochs => 1)$$);
SELECT pg_temp.try($$SELECT recsys.drop_model('own_m')$$);
SET ROLE own_dave;
SELECT count(*) AS epochs FROM recsys.train_embeddings('own_m', 'own_plays', dim => 2, epochs => 1);
RESET ROLE;
SELECT name, owner, recsys.model_owner(name) FROM recsys.model_names WHERE name = 'own_m';
SELECT version, created_by FROM recsys.models WHERE name = 'own_m' ORDER BY version;
-- the name's sequence cannot be renamed or moved away from its name, and
-- recsys_names holds nothing else
SELECT pg_temp.try('ALTER SEQUENCE recsys_names.own_m RENAME TO own_other');
CREATE SCHEMA own_elsewhere;
SELECT pg_temp.try('ALTER SEQUENCE recsys_names.own_m SET SCHEMA own_elsewhere');
DROP SCHEMA own_elsewhere;
SELECT pg_temp.try('CREATE TABLE recsys_names.own_t (a int)');
SET ROLE own_noread;
SELECT pg_temp.try('CREATE SEQUENCE recsys_names.own_squat');
RESET ROLE;
-- a name whose sequence another role owns is taken
SET ROLE own_carol;
SELECT pg_temp.try($$INSERT INTO recsys.model_names (name) VALUES ('own_m')$$);
RESET ROLE;

-- 4. Transfers follow PostgreSQL's rule for ALTER ... OWNER TO: the
-- privileges of the current owner and membership in the new one.
-- not the owner
SET ROLE own_carol;
SELECT pg_temp.try($$SELECT recsys.transfer_model('own_m', 'own_carol')$$);
SELECT pg_temp.try($$UPDATE recsys.model_names SET owner = 'own_carol' WHERE name = 'own_m'$$);
RESET ROLE;
-- the owner, but not a member of the new owner
SET ROLE own_dave;
SELECT pg_temp.try($$SELECT recsys.transfer_model('own_m', 'own_team')$$);
SELECT pg_temp.try($$UPDATE recsys.model_names SET owner = 'own_team' WHERE name = 'own_m'$$);
RESET ROLE;
SELECT pg_temp.try($$SELECT recsys.transfer_model('own_m', NULL)$$);
SELECT pg_temp.try($$SELECT recsys.transfer_model('own_nothing', 'own_team')$$);
-- the owner and a member of the new owner
GRANT own_team TO own_dave;
SET ROLE own_dave;
SELECT pg_temp.try($$SELECT recsys.transfer_model('own_m', 'own_team')$$);
RESET ROLE;
REVOKE own_team FROM own_dave;
SELECT name, owner, recsys.model_owner(name) FROM recsys.model_names WHERE name = 'own_m';
-- a member of the team may not give the team's model to a role it is not a
-- member of, nor may the old owner take it back
SET ROLE own_erin;
SELECT pg_temp.try($$SELECT recsys.transfer_model('own_m', 'own_carol')$$);
SET ROLE own_dave;
SELECT pg_temp.try($$SELECT recsys.transfer_model('own_m', 'own_dave')$$);
RESET ROLE;
-- a superuser may
SELECT recsys.transfer_model('own_m', 'own_carol');
SELECT name, owner, recsys.model_owner(name) FROM recsys.model_names WHERE name = 'own_m';

-- 5. DROP OWNED drops the role's models (name, versions, vectors) with their
-- sequences; the role can then be dropped, and no dangling owner remains.
SELECT count(*) AS epochs FROM recsys.train_embeddings('own_keep', 'own_plays', dim => 2, epochs => 1);
DROP OWNED BY own_carol;
DROP ROLE own_carol;
SELECT name, owner FROM recsys.model_names WHERE name LIKE 'own%' ORDER BY 1;
SELECT count(*) AS versions FROM recsys.models WHERE name = 'own_m';
SELECT count(*) AS vectors FROM recsys.item_vectors WHERE model = 'own_m';
SELECT count(*) AS sequences FROM pg_class WHERE relnamespace = 'recsys_names'::regnamespace AND relname = 'own_m';
-- a role under row-level security may not drop a name's sequence (nor
-- DROP OWNED BY itself) while the name has models: it could not delete a
-- name whose sequence is gone; drop_model drops both
SET ROLE own_dave;
SELECT count(*) AS epochs FROM recsys.train_embeddings('own_d', 'own_plays', dim => 2, epochs => 1);
SELECT pg_temp.try('DROP SEQUENCE recsys_names.own_d');
SELECT recsys.drop_model('own_d');
SELECT count(*) AS sequences FROM pg_class WHERE relnamespace = 'recsys_names'::regnamespace AND relname = 'own_d';
RESET ROLE;

-- 6. The cache answers no role that the query would refuse: own_noread may
-- read recsys.models but not the vectors.
SELECT count(*) AS epochs FROM recsys.train_embeddings('own_c', 'own_plays', dim => 2, epochs => 1);
GRANT own_reader TO own_noread;
CREATE FUNCTION own_fold() RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	RETURN recsys.fold_in('own_c', '{1,2}') IS NOT NULL;
END
$$;
CREATE FUNCTION own_definer_fold() RETURNS boolean LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
	AS $$ SELECT public.own_fold() $$;
ALTER FUNCTION own_definer_fold() OWNER TO own_reader;
REVOKE own_reader FROM own_noread;
-- role switches inside one DO block (one snapshot for both calls)
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['own_reader', 'own_noread', 'own_reader'] LOOP
		EXECUTE format('SET ROLE %I', r);
		BEGIN
			RAISE WARNING '%: fold_in gives a vector: %', r, public.own_fold();
		EXCEPTION WHEN insufficient_privilege THEN
			RAISE WARNING '%: %', r, SQLERRM;
		END;
	END LOOP;
	RESET ROLE;
END
$$;
-- a SECURITY DEFINER caller, then a direct call, in one transaction
BEGIN;
SET ROLE own_noread;
SELECT own_definer_fold() AS through_definer;
SELECT pg_temp.try('SELECT public.own_fold()') AS direct;
ROLLBACK;
-- SET ROLE between statements of one transaction
BEGIN;
SET ROLE own_reader;
SELECT own_fold() AS reader;
SET ROLE own_noread;
SELECT pg_temp.try('SELECT public.own_fold()') AS noread;
SELECT pg_temp.try($$SELECT count(*) FROM recsys.recommend('own_c', 3, 2)$$) AS noread_recommend;
ROLLBACK;
-- and without SELECT on recsys.models nothing is read
REVOKE SELECT ON recsys.models FROM own_reader;
BEGIN;
SET ROLE own_reader;
SELECT pg_temp.try('SELECT public.own_fold()') AS without_models;
ROLLBACK;
GRANT SELECT ON recsys.models TO own_reader;

-- 7. Vectors written while the triggers were bypassed are never served.
CREATE TEMP TABLE own_before AS SELECT * FROM recsys.recommend('own_c', 3, 5, exclude_seen => false);
SELECT count(*) AS recommended FROM own_before;
-- session_replication_role = replica: the touch triggers fire (ENABLE ALWAYS)
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM recsys.item_vectors WHERE model = 'own_c';
SELECT count(*) AS after_replica_delete FROM recsys.recommend('own_c', 3, 5, exclude_seen => false);
ROLLBACK;
SELECT count(*) AS after_rollback FROM recsys.recommend('own_c', 3, 5, exclude_seen => false);
-- DISABLE TRIGGER: the cache is off (one WARNING) and every statement reads afresh
BEGIN;
ALTER TABLE recsys.item_vectors DISABLE TRIGGER touch_models_delete;
SET client_min_messages = notice;
SELECT count(*) AS cached_before_delete FROM recsys.recommend('own_c', 3, 5, exclude_seen => false);
DELETE FROM recsys.item_vectors WHERE model = 'own_c' AND id IN (SELECT item_id FROM own_before ORDER BY score DESC, item_id LIMIT 2);
SELECT count(*) AS after_delete FROM recsys.recommend('own_c', 3, 5, exclude_seen => false)
	WHERE item_id IN (SELECT item_id FROM own_before ORDER BY score DESC, item_id LIMIT 2);
SET client_min_messages = warning;
ROLLBACK;
-- triggers off, a write, triggers on again, with no recsys call in between:
-- the entry cached before is stale and not served
SELECT count(*) AS cached FROM recsys.recommend('own_c', 3, 5, exclude_seen => false);
ALTER TABLE recsys.item_vectors DISABLE TRIGGER touch_models_delete;
DELETE FROM recsys.item_vectors WHERE model = 'own_c';
ALTER TABLE recsys.item_vectors ENABLE ALWAYS TRIGGER touch_models_delete;
SELECT count(*) AS after_reenable FROM recsys.recommend('own_c', 3, 5, exclude_seen => false);
-- an ordinary ENABLE (not ALWAYS) is seen as a bypass too
ALTER TABLE recsys.item_vectors ENABLE TRIGGER touch_models_delete;
SET client_min_messages = notice;
SELECT count(*) AS enabled_origin FROM recsys.recommend('own_c', 3, 5, exclude_seen => false);
SET client_min_messages = warning;
ALTER TABLE recsys.item_vectors ENABLE ALWAYS TRIGGER touch_models_delete;

SELECT recsys.drop_model('own_c');
SELECT recsys.drop_model('own_keep');
SELECT count(*) AS names_left FROM recsys.model_names WHERE name LIKE 'own%';
SELECT count(*) AS sequences_left FROM pg_class WHERE relnamespace = 'recsys_names'::regnamespace AND relname LIKE 'own%';
DROP FUNCTION own_definer_fold(), own_fold();
DROP TABLE own_plays, own_tm;
DROP OWNED BY own_dave, own_team, own_erin, own_reader, own_noread;
DROP ROLE own_dave, own_team, own_erin, own_reader, own_noread;
