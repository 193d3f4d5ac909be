-- Privileges: every function is SECURITY INVOKER, so a role sees and changes
-- only what its grants allow.
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- no function runs with its owner's rights
SELECT count(*) AS security_definer_functions
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON d.refobjid = e.oid AND e.extname = 'recsys'
WHERE p.prosecdef;
-- a store with one model, and an interactions table the role may not read
CREATE TABLE sec_plays (user_id bigint, item_id bigint);
INSERT INTO sec_plays SELECT u, i FROM generate_series(1, 20) u, generate_series(1, 10) i WHERE (u + i) % 3 = 0;
SELECT epoch FROM recsys.train_embeddings('sec_model', 'sec_plays', dim => 2, epochs => 1);
DROP ROLE IF EXISTS recsys_reader;
CREATE ROLE recsys_reader;
SET ROLE recsys_reader;
-- without USAGE on the schema nothing is reachable
SELECT pg_temp.err($$SELECT recsys.dot('{1}'::real[], '{1}'::real[])$$);
RESET ROLE;
GRANT USAGE ON SCHEMA recsys TO recsys_reader;
SET ROLE recsys_reader;
-- pure functions work; the model store does not, without SELECT on it
SELECT recsys.dot('{1,2}'::real[], '{3,4}'::real[]);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('sec_model', 3, 2)$$);
SELECT pg_temp.err($$SELECT count(*) FROM recsys.item_embeddings('sec_model')$$);
SELECT pg_temp.err($$SELECT recsys.drop_model('sec_model')$$);
RESET ROLE;
GRANT SELECT ON recsys.models, recsys.user_vectors, recsys.item_vectors TO recsys_reader;
SET ROLE recsys_reader;
-- read grants allow reading, not changing
SELECT count(*) AS items FROM recsys.item_embeddings('sec_model');
SELECT count(*) AS recommended FROM recsys.recommend('sec_model', 3, 2);
SELECT pg_temp.err($$SELECT recsys.drop_model('sec_model')$$);
RESET ROLE;
-- with write grants on the store, training still reads the interactions with
-- the caller's rights
GRANT INSERT ON recsys.models, recsys.user_vectors, recsys.item_vectors TO recsys_reader;
SET ROLE recsys_reader;
SELECT pg_temp.err($$SELECT * FROM recsys.train_embeddings('sec_model2', 'sec_plays', dim => 2, epochs => 1)$$);
RESET ROLE;
GRANT SELECT ON sec_plays TO recsys_reader;
SET ROLE recsys_reader;
SELECT count(*) AS epochs FROM recsys.train_embeddings('sec_model2', 'sec_plays', dim => 2, epochs => 1);
RESET ROLE;
SELECT recsys.drop_model('sec_model2');
SELECT recsys.drop_model('sec_model');
REVOKE ALL ON recsys.models, recsys.user_vectors, recsys.item_vectors FROM recsys_reader;
REVOKE USAGE ON SCHEMA recsys FROM recsys_reader;
DROP TABLE sec_plays;
DROP ROLE recsys_reader;
