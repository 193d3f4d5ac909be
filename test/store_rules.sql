-- pgTAP: vectors belong to a row of recsys.models, kept by statement-level
-- triggers (recsys.vectors_touch_models, recsys.models_vectors_rules,
-- recsys.model_names_release) in place of the foreign keys of 0.2.0: a
-- write of vectors whose (model, version) has no models row fails with
-- 23503, whatever row of a statement it is; deleting models rows deletes
-- exactly their vectors, also through recsys.drop_model and a direct delete
-- of the name by its owner under row-level security; changing the key of a
-- row that has vectors fails (NO ACTION); TRUNCATE of models fails while
-- vectors remain; and a writer of vectors holds its models rows against a
-- concurrent DELETE until it commits (two sessions, through dblink where
-- the server has it).
BEGIN;
SELECT plan(31);
SET client_min_messages = warning;

-- a statement as a role: 'ok', or its SQLSTATE and message
CREATE FUNCTION pg_temp.as_role(r text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	res text := 'ok';
BEGIN
	EXECUTE format('SET LOCAL ROLE %I', r);
	BEGIN
		EXECUTE q;
	EXCEPTION WHEN OTHERS THEN
		res := SQLSTATE || ': ' || SQLERRM;
	END;
	RESET ROLE;
	RETURN res;
END
$$;
-- the vectors of a model, per table and version
CREATE FUNCTION pg_temp.vectors(m text) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(t || ':' || version || ':' || n, ',' ORDER BY t, version), '')
	FROM (SELECT 'u' AS t, version, count(*) AS n FROM recsys.user_vectors WHERE model = m GROUP BY version
		UNION ALL SELECT 'i', version, count(*) FROM recsys.item_vectors WHERE model = m GROUP BY version) s
$$;
-- a model name with versions 1 .. n, each with 3 user and 4 item vectors
CREATE FUNCTION pg_temp.make(m text, n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	FOR v IN 1 .. n LOOP
		PERFORM recsys.next_model_version(m);
		INSERT INTO recsys.models (name, version, kind) VALUES (m, v, 'embeddings');
		INSERT INTO recsys.user_vectors SELECT m, v, g, ARRAY[g::real], '{}' FROM generate_series(1, 3) g;
		INSERT INTO recsys.item_vectors SELECT m, v, g, ARRAY[g::real] FROM generate_series(1, 4) g;
	END LOOP;
END
$$;

SELECT is((SELECT count(*) FROM pg_constraint WHERE conrelid IN ('recsys.user_vectors'::regclass,
	'recsys.item_vectors'::regclass) AND contype = 'f'), 0::bigint,
	'the vectors have no foreign key (the triggers hold the rule)');

-- 0. two sessions (first, while this transaction holds no lock of the
-- store): a writer of vectors holds their models rows until it ends, and a
-- write after a committed delete fails.  The second session is
-- a dblink connection (skipped where dblink cannot be created or connect:
-- it needs a superuser and a local socket without a password).
CREATE FUNCTION pg_temp.peer() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	CREATE EXTENSION IF NOT EXISTS dblink;
	PERFORM dblink_connect('sr_peer', format('dbname=%s host=%s port=%s user=%s', current_database(),
		split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user));
	RETURN true;
EXCEPTION WHEN OTHERS THEN
	RETURN false;
END
$$;
SELECT pg_temp.peer() AS have_peer \gset
\if :have_peer
SELECT dblink_exec('sr_peer', $$SET lock_timeout = '300ms'$$) \g /dev/null
-- the peer's model is committed (this session's transaction sees it, READ COMMITTED)
SELECT * FROM dblink('sr_peer', $$SELECT recsys.next_model_version('sr_c')$$) AS t(v int) \g /dev/null
SELECT dblink_exec('sr_peer', $$INSERT INTO recsys.models (name, version, kind) VALUES ('sr_c', 1, 'embeddings')$$) \g /dev/null
SAVEPOINT sr_writer;
INSERT INTO recsys.item_vectors VALUES ('sr_c', 1, 1, '{1}');
SELECT dblink_exec('sr_peer', $$DELETE FROM recsys.models WHERE name = 'sr_c'$$, false) || ': '
	|| dblink_error_message('sr_peer') AS peer_delete \gset
ROLLBACK TO SAVEPOINT sr_writer;
SELECT matches(:'peer_delete'::text, '^ERROR: .*canceling statement due to lock timeout',
	'while this session''s insert of vectors is not committed, the other session cannot delete the models row');
SELECT dblink_exec('sr_peer', 'BEGIN') \g /dev/null
SELECT dblink_exec('sr_peer', $$DELETE FROM recsys.models WHERE name = 'sr_c'$$) \g /dev/null
SET LOCAL lock_timeout = '300ms';
SELECT throws_ok($$INSERT INTO recsys.item_vectors VALUES ('sr_c', 1, 1, '{1}')$$, '55P03', NULL,
	'while the other session''s delete is not committed, an insert of its vectors waits');
SET LOCAL lock_timeout = 0;
SELECT dblink_exec('sr_peer', 'COMMIT') \g /dev/null
SELECT throws_ok($$INSERT INTO recsys.item_vectors VALUES ('sr_c', 1, 1, '{1}')$$, '23503', NULL,
	'once it committed, the insert is refused');
SELECT dblink_exec('sr_peer', $$DELETE FROM recsys.model_names WHERE name = 'sr_c'$$) \g /dev/null
SELECT dblink_disconnect('sr_peer') \g /dev/null
\else
SELECT skip('no second session (dblink)', 3);
\endif

SELECT pg_temp.make('sr_m', 2) \g /dev/null

-- 1. the referencing side: every row written needs its models row
SELECT throws_ok($$INSERT INTO recsys.user_vectors VALUES ('sr_m', 9, 1, '{1}', '{}')$$, '23503',
	'insert or update on table "user_vectors" refers to model "sr_m" version 9, which does not exist',
	'a user vector of a version that does not exist: refused');
SELECT throws_ok($$INSERT INTO recsys.item_vectors VALUES ('sr_none', 1, 1, '{1}')$$, '23503',
	'insert or update on table "item_vectors" refers to model "sr_none" version 1, which does not exist',
	'an item vector of a model that does not exist: refused');
SELECT throws_ok($$INSERT INTO recsys.item_vectors SELECT 'sr_m', CASE WHEN g = 5000 THEN 3 ELSE 1 END, 100 + g, '{1}'
	FROM generate_series(1, 5000) g$$, '23503',
	'insert or update on table "item_vectors" refers to model "sr_m" version 3, which does not exist',
	'5000 rows of which the last has no models row: the statement is refused');
SELECT is(pg_temp.vectors('sr_m'), 'i:1:4,i:2:4,u:1:3,u:2:3', '... and none of its rows stays');
SELECT throws_ok($$UPDATE recsys.user_vectors SET version = 7 WHERE model = 'sr_m' AND version = 2 AND id = 1$$,
	'23503', 'insert or update on table "user_vectors" refers to model "sr_m" version 7, which does not exist',
	'an update that moves a vector to a version that does not exist: refused');
SELECT throws_ok($$UPDATE recsys.item_vectors SET model = 'sr_other' WHERE model = 'sr_m' AND version = 1$$,
	'23503', NULL, 'an update that moves vectors to a model that does not exist: refused');
SELECT lives_ok($$UPDATE recsys.item_vectors SET embedding = '{2}' WHERE model = 'sr_m' AND id = 1$$,
	'an update that keeps the key: accepted');
SELECT lives_ok($$INSERT INTO recsys.item_vectors VALUES ('sr_m', 1, 50, '{1}'), ('sr_m', 2, 50, '{1}')$$,
	'vectors of two existing versions in one statement: accepted');
DELETE FROM recsys.item_vectors WHERE model = 'sr_m' AND id = 50;

-- 2. the referenced side: a delete takes exactly the rows' vectors
DELETE FROM recsys.models WHERE name = 'sr_m' AND version = 1;
SELECT is(pg_temp.vectors('sr_m'), 'i:2:4,u:2:3', 'deleting version 1 deleted its vectors, not version 2''s');
SELECT pg_temp.make('sr_n', 1) \g /dev/null
SELECT is(recsys.drop_model('sr_m'), 1, 'drop_model drops the version left');
SELECT is(pg_temp.vectors('sr_m') || '|' || pg_temp.vectors('sr_n'), '|i:1:4,u:1:3',
	'drop_model deleted its vectors, and no other model''s');
DELETE FROM recsys.model_names WHERE name = 'sr_n';
SELECT is(pg_temp.vectors('sr_n'), '', 'deleting the name deleted its versions'' vectors (through the cascade to models)');

-- 3. changing the key of a row that has vectors (NO ACTION)
SELECT pg_temp.make('sr_k', 2) \g /dev/null
SELECT throws_ok($$UPDATE recsys.models SET version = 5 WHERE name = 'sr_k' AND version = 2$$, '23503',
	'update on table "models" changes the key of model "sr_k" version 2, which vectors in table "user_vectors" refer to',
	'renumbering a version that has vectors: refused');
DELETE FROM recsys.user_vectors WHERE model = 'sr_k' AND version = 2;
SELECT throws_ok($$UPDATE recsys.models SET version = 5 WHERE name = 'sr_k' AND version = 2$$, '23503',
	'update on table "models" changes the key of model "sr_k" version 2, which vectors in table "item_vectors" refer to',
	'... also when only item vectors are left');
DELETE FROM recsys.item_vectors WHERE model = 'sr_k' AND version = 2;
SELECT lives_ok($$UPDATE recsys.models SET version = 5 WHERE name = 'sr_k' AND version = 2$$,
	'renumbering a version without vectors: accepted');

-- 4. row-level security: an owner's writes and deletes, and rows it cannot see
CREATE ROLE sr_owner;
GRANT USAGE ON SCHEMA recsys TO sr_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON recsys.model_names, recsys.models, recsys.user_vectors, recsys.item_vectors,
	recsys.model_aliases, recsys.model_events TO sr_owner;
SELECT is(pg_temp.as_role('sr_owner', $$SELECT pg_temp.make('sr_o', 2)$$), 'ok', 'a role stores its own model');
SELECT is(pg_temp.as_role('sr_owner', $$INSERT INTO recsys.item_vectors VALUES ('sr_o', 3, 1, '{1}')$$),
	'23503: insert or update on table "item_vectors" refers to model "sr_o" version 3, which does not exist',
	'its vectors of a version that does not exist: refused (23503)');
SELECT is(pg_temp.as_role('sr_owner', $$DELETE FROM recsys.models WHERE name = 'sr_o' AND version = 1$$), 'ok',
	'it deletes version 1');
SELECT is(pg_temp.vectors('sr_o'), 'i:2:4,u:2:3', '... and its vectors went with it');
SELECT is(pg_temp.as_role('sr_owner', $$DELETE FROM recsys.model_names WHERE name = 'sr_o'$$), 'ok',
	'it deletes the name directly');
SELECT is(pg_temp.vectors('sr_o'), '', '... and the vectors of every version went with it');
-- a policy that hides models rows from updates, or vectors from deletes
SELECT is(pg_temp.as_role('sr_owner', $$SELECT pg_temp.make('sr_p', 1)$$), 'ok', 'a second model of the role');
CREATE POLICY sr_no_update ON recsys.models AS RESTRICTIVE FOR UPDATE USING (name <> 'sr_p');
SELECT is(pg_temp.as_role('sr_owner', $$INSERT INTO recsys.item_vectors VALUES ('sr_p', 1, 10, '{1}')$$),
	'42501: permission denied to write vectors of model "sr_p" version 1',
	'a models row that row-level security hides from the touch: refused as a permission (42501), not a missing row');
DROP POLICY sr_no_update ON recsys.models;
CREATE POLICY sr_no_delete ON recsys.item_vectors AS RESTRICTIVE FOR DELETE USING (model <> 'sr_p');
SELECT is(pg_temp.as_role('sr_owner', $$DELETE FROM recsys.models WHERE name = 'sr_p'$$),
	'42501: permission denied to delete the vectors of model "sr_p" version 1',
	'vectors that row-level security hides from the delete: the models delete is refused, nothing is orphaned');
DROP POLICY sr_no_delete ON recsys.item_vectors;

-- 5. TRUNCATE, last (its locks stay to the end): refused while vectors
-- remain, accepted with them
SELECT throws_ok('TRUNCATE recsys.models, recsys.model_aliases', '23503', NULL,
	'TRUNCATE of models while vectors remain: refused');
SELECT throws_ok('TRUNCATE recsys.models CASCADE', '23503', NULL, 'TRUNCATE models CASCADE: refused too');
SELECT lives_ok('TRUNCATE recsys.models, recsys.model_aliases, recsys.user_vectors, recsys.item_vectors',
	'TRUNCATE of models with the vectors tables: accepted');

SELECT * FROM finish();
ROLLBACK;
