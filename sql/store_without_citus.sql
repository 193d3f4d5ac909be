-- The store on a server without the citus extension in the database (its
-- files may well be installed, as on CI): ordinary tables with their foreign
-- keys, read directly, and the ownership test of the row-level security
-- policies, recsys.model_owned.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT count(*) AS citus_created FROM pg_extension WHERE extname = 'citus';
-- every store table is read as itself
SELECT t, recsys.store_relation(t) FROM unnest(ARRAY['model_names', 'models', 'user_vectors', 'item_vectors']) t;
SELECT recsys.store_relation('pg_class');
SELECT recsys.store_relation(NULL) IS NULL AS null_gives_null;
-- the foreign keys of a fresh install
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE connamespace = 'recsys'::regnamespace AND contype = 'f' ORDER BY 1, 2;
-- attaching and detaching need Citus
SELECT recsys.citus_attach_store();
SELECT recsys.citus_detach_store();

-- model_owned: the MEMBER test of the owner role, false for unknown names
DROP ROLE IF EXISTS own_a, own_b, own_member;
CREATE ROLE own_a;
CREATE ROLE own_b;
CREATE ROLE own_member IN ROLE own_a;
GRANT USAGE ON SCHEMA recsys TO own_a, own_b, own_member;
GRANT SELECT, INSERT, UPDATE, DELETE ON recsys.model_names, recsys.models, recsys.user_vectors, recsys.item_vectors,
	recsys.model_aliases, recsys.model_events
	TO own_a, own_b, own_member;
SET ROLE own_a;
SELECT recsys.next_model_version('own_model') AS version;
INSERT INTO recsys.models (name, version, kind) VALUES ('own_model', 1, 'embeddings');
-- a bulk insert: one answer per statement, every row checked
INSERT INTO recsys.item_vectors SELECT 'own_model', 1, g, ARRAY[g::real] FROM generate_series(1, 1000) g;
SELECT revision FROM recsys.models WHERE name = 'own_model';
RESET ROLE;
CREATE TEMP TABLE who (r text);
INSERT INTO who VALUES ('own_a'), ('own_b'), ('own_member');
CREATE FUNCTION pg_temp.owned_as(r text, model text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	res boolean;
BEGIN
	EXECUTE format('SET LOCAL ROLE %I', r);
	res := recsys.model_owned(model);
	RESET ROLE;
	RETURN res;
END
$$;
SELECT r, pg_temp.owned_as(r, 'own_model') AS owned, pg_temp.owned_as(r, 'no such model') AS unknown
FROM who ORDER BY r;
SELECT recsys.model_owned('own_model') AS superuser_owns, recsys.model_owned(NULL) AS null_name,
	recsys.model_owned(repeat('x', 64)) AS too_long;
-- one statement, several roles: the cached answer is keyed on the role
SELECT array_agg(pg_temp.owned_as(r, 'own_model') ORDER BY n) AS alternating
FROM (SELECT n, CASE WHEN n % 2 = 0 THEN 'own_a' ELSE 'own_b' END AS r FROM generate_series(1, 6) n) s;
-- the policies: another role's writes are refused or see nothing
SET ROLE own_b;
INSERT INTO recsys.item_vectors VALUES ('own_model', 1, 5000, '{1}');
DELETE FROM recsys.item_vectors WHERE model = 'own_model';
UPDATE recsys.models SET metrics = '{"b": 1}' WHERE name = 'own_model';
SET ROLE own_member;
DELETE FROM recsys.item_vectors WHERE model = 'own_model' AND id <= 10;
RESET ROLE;
SELECT count(*) AS vectors_left, (SELECT metrics FROM recsys.models WHERE name = 'own_model') AS metrics
FROM recsys.item_vectors WHERE model = 'own_model';
-- a change of owner is seen by the next statement (the answer is kept per statement only)
CREATE FUNCTION pg_temp.insert_as(r text, id int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('SET LOCAL ROLE %I', r);
	INSERT INTO recsys.item_vectors VALUES ('own_model', 1, id, '{1}');
	RESET ROLE;
	RETURN 'inserted';
EXCEPTION WHEN insufficient_privilege THEN
	RETURN 'refused';
END
$$;
SELECT pg_temp.insert_as('own_a', 6001) AS a_before, pg_temp.insert_as('own_b', 6002) AS b_before;
UPDATE recsys.model_names SET owner = 'own_b' WHERE name = 'own_model';
SELECT pg_temp.insert_as('own_a', 6003) AS a_after, pg_temp.insert_as('own_b', 6004) AS b_after;
SELECT recsys.drop_model('own_model');
DROP OWNED BY own_a, own_b, own_member;
DROP ROLE own_a, own_b, own_member;
