-- pgTAP on Citus: recsys created before Citus.  In a database of its own, a
-- model is trained while the database is a plain PostgreSQL one; then Citus
-- is created and the workers are added, and recsys.citus_attach_store()
-- makes the store reference tables: the existing rows reach every node, the
-- workers score the model as the coordinator did, a new version reaches every
-- node, and detach + DROP EXTENSION leave no store relation anywhere.
-- (The scenario runs in that database first, its answers kept in psql
-- variables; the tests run after reconnecting to the suite's database.)
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
\getenv wports CITUS_WORKER_PORTS
SELECT current_database() AS suite_db, current_setting('port') AS cport,
	split_part(:'wports', ' ', 1) AS w1, split_part(:'wports', ' ', 2) AS w2 \gset
SET citus.enable_create_database_propagation = off;
DROP DATABASE IF EXISTS recsys_late;
CREATE DATABASE recsys_late;
\c postgres - - :w1
SET client_min_messages = warning;
DROP DATABASE IF EXISTS recsys_late;
CREATE DATABASE recsys_late;
\c recsys_late - - :w1
SET client_min_messages = warning;
CREATE EXTENSION citus;
\c postgres - - :w2
SET client_min_messages = warning;
DROP DATABASE IF EXISTS recsys_late;
CREATE DATABASE recsys_late;
\c recsys_late - - :w2
SET client_min_messages = warning;
CREATE EXTENSION citus;
\c recsys_late - - :cport
SET client_min_messages = warning;

-- plain PostgreSQL: recsys and a model
CREATE EXTENSION recsys;
CREATE TABLE plays (user_id bigint, item_id bigint);
INSERT INTO plays SELECT u, i FROM generate_series(1, 40) u, generate_series(1, 16) i WHERE (u * 7 + i * 3) % 5 < 2;
SELECT count(*) FROM recsys.train_embeddings('late_m', 'plays', dim => 4, epochs => 2) \g /dev/null
CREATE TABLE rec_before AS SELECT u, array_agg(r.item_id ORDER BY r.score DESC, r.item_id) AS items,
	array_agg(r.score ORDER BY r.score DESC, r.item_id) AS scores
FROM generate_series(1, 40) u, LATERAL recsys.recommend('late_m', u, 3) r GROUP BY u;

-- then Citus, the nodes, and the attach
CREATE EXTENSION citus;
SELECT citus_set_coordinator_host('127.0.0.1', :cport) \g /dev/null
SELECT citus_add_node('127.0.0.1', :w1) \g /dev/null
SELECT citus_add_node('127.0.0.1', :w2) \g /dev/null
SELECT recsys.store_relation('models')::text = 'recsys.models' AS local_before \gset
SELECT recsys.citus_attach_store() \g /dev/null
SELECT count(*) AS refs FROM pg_dist_partition WHERE logicalrelid::text LIKE 'recsys.%' AND repmodel = 't' \gset
SELECT count(*) AS users_everywhere FROM run_command_on_all_nodes(
	$$SELECT count(*) FROM recsys.user_vectors WHERE model = 'late_m'$$) WHERE result = '40' \gset
SELECT count(*) AS fkeys_everywhere FROM run_command_on_all_nodes(
	$$SELECT count(*) FROM pg_constraint WHERE connamespace = 'recsys'::regnamespace AND contype = 'f'$$)
	WHERE result = '4' \gset
CREATE TABLE users_d (u bigint);
SELECT create_distributed_table('users_d', 'u') \g /dev/null
INSERT INTO users_d SELECT generate_series(1, 40);
SELECT count(*) AS mismatches FROM (
	SELECT u, array_agg(r.item_id ORDER BY r.score DESC, r.item_id), array_agg(r.score ORDER BY r.score DESC, r.item_id)
	FROM users_d, LATERAL recsys.recommend('late_m', u, 3) r GROUP BY u
	EXCEPT SELECT * FROM rec_before) d \gset
SELECT count(*) FROM recsys.train_embeddings('late_m', 'plays', dim => 3, epochs => 1) \g /dev/null
SELECT count(*) AS v2_everywhere FROM run_command_on_all_nodes(
	$$SELECT max(version) FROM recsys.models WHERE name = 'late_m'$$) WHERE result = '2' \gset
SELECT array_agg(DISTINCT array_length(recsys.fold_in('late_m', ARRAY[u % 16 + 1]::bigint[]), 1))::text AS v2_dims
FROM users_d \gset
-- after the attach, the triggers that keep vectors with their models rows
-- fire on every placement
\set ON_ERROR_STOP 0
INSERT INTO recsys.item_vectors VALUES ('late_m', 9, 1, '{1,1,1}');
\set ON_ERROR_STOP 1
SELECT :'LAST_ERROR_SQLSTATE' AS orphan_state \gset
SELECT recsys.drop_model('late_m', 1) \g /dev/null
SELECT count(*) AS v1_gone FROM run_command_on_all_nodes(
	$$SELECT (SELECT count(*) FROM recsys.user_vectors WHERE model = 'late_m' AND version = 1)
		+ (SELECT count(*) FROM recsys.item_vectors WHERE model = 'late_m' AND version = 1)$$) WHERE result = '0' \gset
SELECT recsys.citus_detach_store() \g /dev/null
DROP EXTENSION recsys;
SELECT count(*) AS clean_nodes FROM run_command_on_all_nodes($$SELECT count(*) FROM pg_class
	WHERE relname ~ '^(model_names|models|user_vectors|item_vectors|model_aliases|model_events)(_[0-9]+)?$'$$) WHERE result = '0' \gset

-- drop the scenario's database on every node, back to the suite's database
\c postgres - - :cport
DROP DATABASE recsys_late WITH (FORCE);
\c postgres - - :w1
SET client_min_messages = warning;
DROP DATABASE recsys_late WITH (FORCE);
\c postgres - - :w2
SET client_min_messages = warning;
DROP DATABASE recsys_late WITH (FORCE);
\c :suite_db - - :cport
SET client_min_messages = warning;
SELECT plan(10);
SELECT ok(:'local_before'::boolean, 'before the attach, the store is read as ordinary tables');
SELECT is(:'refs'::int, 6, 'citus_attach_store made the six store tables reference tables');
SELECT is(:'users_everywhere'::int, 3, 'the model''s vectors trained before Citus are on every node');
SELECT is(:'fkeys_everywhere'::int, 3, 'every node has the 2 foreign keys on its tables and placements');
SELECT is(:'mismatches'::int, 0, 'the workers recommend exactly what the coordinator did before Citus');
SELECT is(:'v2_everywhere'::int, 3, 'a version trained after the attach is on every node');
SELECT is(:'v2_dims'::text, '{3}', 'and the workers fold in with it');
SELECT is(:'orphan_state'::text, '23503', 'after the attach, a vector of a version that does not exist is refused');
SELECT is(:'v1_gone'::int, 3, 'dropping version 1 deleted its vectors on every node');
SELECT is(:'clean_nodes'::int, 3, 'detach and DROP EXTENSION leave no store relation on any node');
SELECT * FROM finish();
