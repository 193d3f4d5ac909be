-- pgTAP: nothing grows per row or per epoch.  recsys.debug_memory makes the
-- SPI loops report the memory their contexts hold (children included) into
-- recsys.debug_memory_report: serving at its end, training after each epoch.
-- A per-user or per-epoch leak shows as growth from 1,000 to 10,000 users or
-- from epoch 3 to epoch 30 (0.2.0 grew by ~90 bytes a user and ~40 kB an
-- epoch at these sizes); the slack allowed is 64 kB.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
BEGIN;
SELECT plan(7);

-- the reports of one key, in order
CREATE FUNCTION pg_temp.reports(what text) RETURNS bigint[] LANGUAGE sql AS $$
	SELECT array_agg(split_part(r, '=', 2)::bigint ORDER BY o)
	FROM unnest(string_to_array(current_setting('recsys.debug_memory_report'), ',')) WITH ORDINALITY AS u(r, o)
	WHERE split_part(r, '=', 1) = what
$$;

-- 10,000 users with 3 items each among 50, dim 8 (short-header vectors)
CREATE TEMP TABLE inter AS SELECT u, (u * 7 + j * 13) % 50 AS i FROM generate_series(1, 10000) u, generate_series(1, 3) j;
SELECT lives_ok($$SELECT * FROM recsys.train_embeddings('mem', 'inter', 'u', 'i', dim => 8, epochs => 1)$$,
	'a model with 10,000 users');

SET recsys.debug_memory = on;
SET recsys.debug_memory_report = '';
SELECT is((SELECT count(*) FROM recsys.recommend_all('mem', 3, users => (SELECT array_agg(g) FROM generate_series(1, 1000) g))),
	3000::bigint, 'recommend_all of 1,000 users');
SELECT count(*) FROM recsys.recommend_all('mem', 3) \g /dev/null
SELECT cmp_ok((pg_temp.reports('serve'))[2] - (pg_temp.reports('serve'))[1], '<=', 65536::bigint,
	'recommend_all holds no more memory after 10,000 users than after 1,000');
SELECT diag(format('serve after 1,000 and 10,000 users: %s', pg_temp.reports('serve')));

-- the aggregate engine, 30 epochs at k = 32
SET recsys.debug_memory_report = '';
CREATE TEMP TABLE small AS SELECT u, (u * 7 + j * 13) % 40 AS i FROM generate_series(1, 200) u, generate_series(1, 4) j;
SELECT is((SELECT count(*) FROM recsys.train_embeddings('mem_agg', 'small', 'u', 'i', dim => 32, epochs => 30,
	options => '{"engine": "aggregate"}')), 30::bigint, 'the aggregate engine runs 30 epochs');
SELECT cmp_ok((pg_temp.reports('epoch'))[30] - (pg_temp.reports('epoch'))[3], '<=', 65536::bigint,
	'the aggregate engine holds no more memory after epoch 30 than after epoch 3');
SELECT diag(format('aggregate engine after each epoch: %s', pg_temp.reports('epoch')));

-- a call site of predict_columns whose column names change from call to call binds
-- again each time, and frees the binding it had: a PL/pgSQL loop keeps one call site
-- (and its memory) for the whole transaction
CREATE TEMP TABLE xy AS SELECT g::float8 AS x, (g % 7)::float8 AS y, g % 2 = 0 AS clicked FROM generate_series(1, 200) g;
SELECT lives_ok($$SELECT * FROM recsys.train_mmoe('mem_rows', 'xy', NULL, '{clicked}',
	'{"kind": "mmoe", "experts": {"count": 2, "hidden": [4]}, "tasks": [{"name": "c", "type": "binary"}],
	  "features": {"numeric": ["x", "y"]}}', epochs => 1)$$, 'a model with a feature spec');
CREATE FUNCTION pg_temp.rebinding(n int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v real[];
BEGIN
	FOR i IN 1..n LOOP
		v := recsys.predict_columns('mem_rows', NULL, CASE WHEN i % 2 = 0 THEN '{x,y}'::text[] ELSE '{y,x}' END,
			NULL, NULL, NULL, i::float8, (i % 7)::float8);
	END LOOP;
	RETURN (SELECT sum(total_bytes) FROM pg_backend_memory_contexts);
END
$$;
SELECT pg_temp.rebinding(2000) AS after_2000 \gset
SELECT pg_temp.rebinding(20000) AS after_20000 \gset
SELECT cmp_ok((:after_20000 - :after_2000)::numeric, '<=', 65536::numeric,
	'predict_columns binding 20,000 times holds no more memory than binding 2,000 times');
SELECT diag(format('backend memory after 2,000 and 20,000 more bindings: %s, %s', :after_2000, :after_20000));

SELECT * FROM finish();
ROLLBACK;
