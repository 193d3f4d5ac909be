-- Privileges and ownership.  Every function is SECURITY INVOKER, so a role
-- sees and changes only what its grants allow; a model name belongs to the
-- role that created it, and row-level security holds the functions and
-- direct DML on the store to the same rule.
SET client_min_messages = warning;
\set VERBOSITY default
\set SHOW_CONTEXT never
-- no function runs with its owner's rights
SELECT count(*) AS security_definer_functions
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON d.refobjid = e.oid AND e.extname = 'recsys'
WHERE p.prosecdef;
-- every SQL and PL/pgSQL function runs with a fixed, safe search_path
SELECT p.oid::regprocedure AS without_fixed_search_path
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON d.refobjid = e.oid AND e.extname = 'recsys'
JOIN pg_language l ON l.oid = p.prolang
WHERE l.lanname IN ('sql', 'plpgsql')
	AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
ORDER BY 1;
-- the store's tables enforce ownership for direct DML too
SELECT c.relname, c.relrowsecurity AS rls, count(pol.polname) AS policies
FROM pg_class c LEFT JOIN pg_policy pol ON pol.polrelid = c.oid
WHERE c.relnamespace = 'recsys'::regnamespace AND c.relkind = 'r'
GROUP BY 1, 2 ORDER BY 1;

-- The worked example of the documentation: an owner, a second trainer, a
-- scorer, and a member of the owner's role.
CREATE TABLE sec_plays (user_id bigint, item_id bigint);
INSERT INTO sec_plays SELECT u, i FROM generate_series(1, 20) u, generate_series(1, 10) i WHERE (u + i) % 3 = 0;
DROP ROLE IF EXISTS sec_owner, sec_trainer, sec_scorer, sec_member, sec_nobody;
CREATE ROLE sec_owner;
CREATE ROLE sec_trainer;
CREATE ROLE sec_scorer;
CREATE ROLE sec_member IN ROLE sec_owner;
CREATE ROLE sec_nobody;
GRANT USAGE ON SCHEMA recsys TO sec_owner, sec_trainer, sec_scorer, sec_member, sec_nobody;
GRANT SELECT ON ALL TABLES IN SCHEMA recsys TO sec_owner, sec_trainer, sec_scorer, sec_member;
GRANT INSERT, UPDATE, DELETE ON recsys.model_names, recsys.models, recsys.user_vectors, recsys.item_vectors,
	recsys.model_aliases, recsys.model_events
	TO sec_owner, sec_trainer, sec_member;
GRANT SELECT ON sec_plays TO sec_owner, sec_trainer, sec_member;

-- without USAGE on the schema nothing is reachable
CREATE ROLE sec_outsider;
SET ROLE sec_outsider;
SELECT recsys.dot('{1}'::real[], '{1}'::real[]);
RESET ROLE;
DROP ROLE sec_outsider;

-- the owner trains; the name is now hers, the version records who made it
SET ROLE sec_owner;
SELECT count(*) AS epochs FROM recsys.train_embeddings('sec_model', 'sec_plays', dim => 2, epochs => 1);
RESET ROLE;
SELECT n.name, n.owner, m.version, m.created_by
FROM recsys.model_names n JOIN recsys.models m USING (name) WHERE n.name = 'sec_model';

-- another trainer can neither add a version nor drop it, through the
-- functions or directly
SET ROLE sec_trainer;
SELECT count(*) FROM recsys.train_embeddings('sec_model', 'sec_plays', dim => 2, epochs => 1);
SELECT recsys.drop_model('sec_model');
SELECT recsys.next_model_version('sec_model');
DELETE FROM recsys.models WHERE name = 'sec_model';
UPDATE recsys.models SET metrics = '{}' WHERE name = 'sec_model';
DELETE FROM recsys.item_vectors WHERE model = 'sec_model';
UPDATE recsys.model_names SET owner = 'sec_trainer' WHERE name = 'sec_model';
INSERT INTO recsys.models (name, version, kind) VALUES ('sec_model', 7, 'embeddings');
INSERT INTO recsys.item_vectors (model, version, id, embedding) VALUES ('sec_model', 1, 1000, '{1,1}');
-- it cannot take the name's lock either: the row is not visible to FOR UPDATE
SELECT count(*) AS lockable FROM (SELECT 1 FROM recsys.model_names WHERE name = 'sec_model' FOR UPDATE) s;
-- its own model records its own name, which it cannot forge
SELECT count(*) AS epochs FROM recsys.train_embeddings('sec_trainer_model', 'sec_plays', dim => 2, epochs => 1);
BEGIN;
SELECT recsys.next_model_version('sec_trainer_model');
INSERT INTO recsys.models (name, version, kind, created_by) VALUES ('sec_trainer_model', 2, 'mmoe', 'sec_owner');
ROLLBACK;
RESET ROLE;
SELECT count(*) AS versions FROM recsys.models WHERE name = 'sec_model';
SELECT count(*) AS vectors FROM recsys.item_vectors WHERE model = 'sec_model';

-- a member of the owner role may add versions and drop them
SET ROLE sec_member;
SELECT count(*) AS epochs FROM recsys.train_embeddings('sec_model', 'sec_plays', dim => 2, epochs => 1);
SELECT recsys.drop_model('sec_model', 2);
RESET ROLE;

-- a scorer reads and recommends, and cannot write
SET ROLE sec_scorer;
SELECT count(*) AS items FROM recsys.item_embeddings('sec_model');
SELECT count(*) AS recommended FROM recsys.recommend('sec_model', 3, 2);
SELECT recsys.drop_model('sec_model');
SELECT count(*) FROM recsys.train_embeddings('sec_scorer_model', 'sec_plays', dim => 2, epochs => 1);
RESET ROLE;

-- a role without store grants cannot lock a name (0.1.0 used an advisory
-- lock that any role could take to block every import of a name)
SET ROLE sec_nobody;
SELECT recsys.next_model_version('sec_model');
SELECT count(*) FROM (SELECT 1 FROM recsys.model_names WHERE name = 'sec_model' FOR UPDATE) s;
RESET ROLE;

-- the cache never answers whom a query would not: without SELECT on the
-- vectors, recommend fails even right after a cached call in this session
SELECT count(*) AS recommended FROM recsys.recommend('sec_model', 3, 2);
REVOKE SELECT ON recsys.item_vectors FROM sec_scorer;
SET ROLE sec_scorer;
SELECT count(*) FROM recsys.recommend('sec_model', 3, 2);
RESET ROLE;
-- nor serves vectors that changed or were rolled back
CREATE TEMP TABLE sec_before AS SELECT * FROM recsys.recommend('sec_model', 3, 5, exclude_seen => false);
BEGIN;
UPDATE recsys.item_vectors SET embedding = ARRAY[-embedding[1], -embedding[2]] WHERE model = 'sec_model';
SELECT count(*) AS changed FROM (SELECT * FROM recsys.recommend('sec_model', 3, 5, exclude_seen => false)
	EXCEPT SELECT * FROM sec_before) c;
DELETE FROM recsys.item_vectors WHERE model = 'sec_model';
SELECT count(*) AS after_delete FROM recsys.recommend('sec_model', 3, 5, exclude_seen => false);
ROLLBACK;
SELECT count(*) AS changed_after_rollback FROM (SELECT * FROM recsys.recommend('sec_model', 3, 5, exclude_seen => false)
	EXCEPT SELECT * FROM sec_before) c;

-- names are checked before any work
SELECT count(*) FROM recsys.train_embeddings(repeat('x', 64), 'sec_plays', dim => 2, epochs => 1);
SELECT count(*) FROM recsys.train_embeddings(' ', 'sec_plays', dim => 2, epochs => 1);
SELECT recsys.next_model_version(NULL);

-- recsys.max_dim bounds every k x k state; only superusers change it
SET ROLE sec_scorer;
SET recsys.max_dim = 8000;
RESET ROLE;

-- dropping the last version releases the name
SELECT recsys.drop_model('sec_model');
SELECT recsys.drop_model('sec_trainer_model');
SELECT count(*) AS names_left FROM recsys.model_names WHERE name LIKE 'sec%';
DROP OWNED BY sec_owner, sec_trainer, sec_scorer, sec_member, sec_nobody;
DROP TABLE sec_plays;
DROP ROLE sec_owner, sec_trainer, sec_scorer, sec_member, sec_nobody;
