-- pgTAP: serving embeddings (recommend, recommend_all, fold_in,
-- recommend_for_items, recommend_all_for_items) against numpy references,
-- one more ALS half-step through als_solve, forced parallel plans, and the
-- cache rules (rolled-back writes, privileges per statement).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
BEGIN;
SELECT plan(27);

\ir ref/out/serving.sql
\ir lib/plan_has.sql

-- largest |a - b| relative to max |b|; infinite when the shapes differ or a value is NULL
CREATE FUNCTION pg_temp.rel_err(a float8[], b float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN a IS NULL OR b IS NULL OR array_dims(a) IS DISTINCT FROM array_dims(b)
			OR EXISTS (SELECT FROM unnest(a) x WHERE x IS NULL) OR EXISTS (SELECT FROM unnest(b) x WHERE x IS NULL)
		THEN 'Infinity'::float8
		ELSE (SELECT max(abs(x - y)) / nullif(max(abs(y)), 0) FROM unnest(a, b) AS u(x, y)) END
$$;

-- 1. recommend and recommend_all against numpy's top k (ties: smaller id)
CREATE TEMP TABLE srv_one AS
	SELECT e.exclude, u.id AS user_id, r.item_id, r.score, r.rank
	FROM (VALUES (true), (false)) e(exclude), recsys.user_embeddings('srv', 1) u,
		LATERAL recsys.recommend('srv', u.id, 7, e.exclude, 1) WITH ORDINALITY r(item_id, score, rank);
SELECT is((SELECT count(*) FROM srv_one o FULL JOIN ref_srv_top t USING (exclude, user_id, rank)
		WHERE o.item_id IS DISTINCT FROM t.item_id), 0::bigint,
	'recommend gives numpy''s top 7 ids in numpy''s order (with and without seen items)');
SELECT cmp_ok((SELECT max(abs(o.score - t.score)) FROM srv_one o JOIN ref_srv_top t USING (exclude, user_id, rank)),
	'<', 1e-5::float8, 'recommend scores equal numpy''s U Y^T to 1e-5');
SELECT ok((SELECT bool_and(o.rank = p.rank - 1 AND o.score = p.score) AND count(*) > 0
		FROM srv_one o JOIN srv_one p USING (exclude, user_id) WHERE o.item_id = 110 AND p.item_id = 111),
	'items with equal scores come out smaller id first');
CREATE TEMP TABLE srv_all AS
	SELECT true AS exclude, * FROM recsys.recommend_all('srv', 7, version => 1)
	UNION ALL SELECT false, * FROM recsys.recommend_all('srv', 7, exclude_seen => false, version => 1);
SELECT is((SELECT count(*) FROM srv_all a FULL JOIN srv_one o USING (exclude, user_id, rank)
		WHERE a.item_id IS DISTINCT FROM o.item_id OR a.score IS DISTINCT FROM o.score), 0::bigint,
	'recommend_all equals per-user recommend exactly (ids, order and scores)');
SELECT is((SELECT count(*) FROM srv_all a FULL JOIN ref_srv_top t USING (exclude, user_id, rank)
		WHERE a.item_id IS DISTINCT FROM t.item_id), 0::bigint, 'recommend_all gives numpy''s top 7');
SELECT results_eq($$SELECT user_id, item_id, rank FROM recsys.recommend_all('srv', 3, '{5,2,999,2}', version => 1)$$,
	$$SELECT user_id, item_id, rank::int FROM srv_one WHERE exclude AND user_id IN (2, 5) AND rank <= 3 ORDER BY user_id, rank$$,
	'recommend_all for listed users: each once, in id order, unknown ones skipped');
SELECT is((SELECT count(*) FROM recsys.recommend_all('srv', 1000, exclude_seen => false)), 30 * 40::bigint,
	'a k past the item count gives every item to every user');

-- 2. fold_in against numpy: repeats add weights, unknown and zero-weight items leave
CREATE TEMP TABLE srv_fold AS
	SELECT f.hist, recsys.fold_in('srv', f.items, f.weights, 1) AS x,
		recsys.fold_in('srv', f.items, version => 1) AS x_unit,
		recsys.fold_in('srv', f.items, f.weights) AS x_stored FROM ref_srv_fold f;
SELECT cmp_ok((SELECT max(pg_temp.rel_err(s.x::float8[], f.x)) FROM srv_fold s JOIN ref_srv_fold f USING (hist)),
	'<', 1e-5::float8, 'fold_in equals numpy''s closed form to 1e-5 (12 histories)');
SELECT cmp_ok((SELECT max(pg_temp.rel_err(s.x_unit::float8[], f.x)) FROM srv_fold s JOIN ref_srv_fold_unit f USING (hist)),
	'<', 1e-5::float8, 'fold_in without weights uses confidence 1');
SELECT cmp_ok((SELECT max(pg_temp.rel_err(s.x_stored::float8[], f.x_stored)) FROM srv_fold s JOIN ref_srv_fold f USING (hist)),
	'<', 1e-5::float8, 'fold_in of version 2 uses the Gramian stored in its weights');
SELECT ok((SELECT bool_and(pg_temp.rel_err(s.x_stored::float8[], f.x) > 1e-3) FROM srv_fold s JOIN ref_srv_fold f USING (hist)),
	'the stored Gramian changes the answer (the test can tell them apart)');
SELECT is(recsys.fold_in('srv', '{99999,5}'), NULL, 'no known item: NULL');

-- 3. recommend_for_items = fold_in + scoring; recommend_all_for_items = recommend_for_items per user
CREATE TEMP TABLE srv_for AS
	SELECT f.hist AS user_id, r.item_id, r.score, r.rank
	FROM ref_srv_fold f, LATERAL recsys.recommend_for_items('srv', f.items, 7, f.weights, version => 1)
		WITH ORDINALITY r(item_id, score, rank);
SELECT is((SELECT count(*) FROM srv_for s FULL JOIN ref_srv_fold_top t USING (user_id, rank)
		WHERE s.item_id IS DISTINCT FROM t.item_id), 0::bigint,
	'recommend_for_items gives numpy''s top 7 of the folded-in user, without the given items');
SELECT cmp_ok((SELECT max(abs(s.score - recsys.dot(x.x, i.embedding))) FROM srv_for s
		JOIN srv_fold x ON x.hist = s.user_id JOIN recsys.item_embeddings('srv', 1) i ON i.id = s.item_id),
	'<', 1e-6::float8, 'recommend_for_items scores are <fold_in(items), y_i>');
CREATE TEMP TABLE srv_batch AS
	SELECT * FROM recsys.recommend_all_for_items('srv', 'ref_srv_interactions', 'uid', 'iid', 'wt', 7, version => 1);
SELECT is((SELECT count(*) FROM srv_batch b FULL JOIN srv_for s USING (user_id, rank)
		WHERE b.item_id IS DISTINCT FROM s.item_id OR b.score IS DISTINCT FROM s.score), 0::bigint,
	'recommend_all_for_items equals recommend_for_items per user exactly');

-- 4. fold_in of a training user is one more ALS user step (als_solve) against the final items
CREATE TEMP TABLE srv_train (uid int, iid int, wt real);
INSERT INTO srv_train SELECT u, i, ((u * 7 + i * 3) % 5) * 0.5
	FROM generate_series(1, 40) u, generate_series(1, 25) i WHERE (u * 13 + i * 7) % 4 = 0;
INSERT INTO srv_train VALUES (1, 1, 1.5), (1, 1, 0.5), (2, 3, 0);
DO $$ BEGIN PERFORM * FROM recsys.train_embeddings('srv_als', 'srv_train', 'uid', 'iid', 'wt', dim => 6, epochs => 3,
	gramian_weight => 0.2, l2 => 0.03, options => '{"nu": 1, "seed": 5}'); END $$;
CREATE TEMP TABLE srv_pairs AS SELECT uid::bigint AS u, iid::bigint AS i, sum(wt::float8) AS c
	FROM srv_train GROUP BY 1, 2 HAVING sum(wt::float8) > 0;
CREATE TEMP TABLE srv_step AS
	SELECT p.u, recsys.als_solve(v.embedding, p.c,
		(SELECT recsys.gramian(embedding) FROM recsys.item_embeddings('srv_als')), 0.2,
		0.03 * ((SELECT count(*) FROM srv_pairs q WHERE q.u = p.u) + 0.2 * (SELECT count(DISTINCT i) FROM srv_pairs))) AS x
	FROM srv_pairs p JOIN recsys.item_embeddings('srv_als') v ON v.id = p.i GROUP BY p.u;
SELECT cmp_ok((SELECT max(pg_temp.rel_err(recsys.fold_in('srv_als', h.items, h.weights)::float8[], s.x::float8[]))
		FROM (SELECT uid AS u, array_agg(iid::bigint) AS items, array_agg(wt) AS weights FROM srv_train GROUP BY uid) h
		JOIN srv_step s USING (u)),
	'<', 1e-5::float8, 'fold_in of each training user (raw rows, repeats, zero weights) equals als_solve''s next user step to 1e-5');

-- 5. forced parallel plans: the PARALLEL SAFE functions run in workers and agree
CREATE SCHEMA srv_tap;
CREATE TABLE srv_tap.users AS SELECT u AS id FROM generate_series(1, 30) u, generate_series(1, 200) r;
CREATE TABLE srv_tap.hist AS SELECT hist, items, weights FROM ref_srv_fold, generate_series(1, 300) r;
ANALYZE srv_tap.users;
ANALYZE srv_tap.hist;
CREATE TEMP TABLE par_serial AS
	SELECT u.id, sum(r.score::float8) AS s, count(*) AS n FROM srv_tap.users u,
		LATERAL recsys.recommend('srv', u.id, 5, version => 1) r GROUP BY u.id;
CREATE TEMP TABLE par_fold_serial AS
	SELECT hist, sum(recsys.dot(recsys.fold_in('srv', items, weights, 1), recsys.fold_in('srv', items, weights, 1))) AS s
	FROM srv_tap.hist GROUP BY hist;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
SELECT ok(pg_temp.plan_has($$SELECT u.id, sum(r.score::float8) FROM srv_tap.users u,
		LATERAL recsys.recommend('srv', u.id, 5, version => 1) r GROUP BY u.id$$, 'Gather'),
	'EXPLAIN shows recommend under a Gather');
CREATE TEMP TABLE par_parallel AS
	SELECT u.id, sum(r.score::float8) AS s, count(*) AS n FROM srv_tap.users u,
		LATERAL recsys.recommend('srv', u.id, 5, version => 1) r GROUP BY u.id;
SELECT ok(pg_temp.plan_has($$SELECT hist, recsys.fold_in('srv', items, weights, 1) FROM srv_tap.hist$$, 'Gather'),
	'EXPLAIN shows fold_in under a Gather');
CREATE TEMP TABLE par_fold_parallel AS
	SELECT hist, sum(recsys.dot(recsys.fold_in('srv', items, weights, 1), recsys.fold_in('srv', items, weights, 1))) AS s
	FROM srv_tap.hist GROUP BY hist;
RESET parallel_leader_participation;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;
RESET max_parallel_workers_per_gather;
SELECT is((SELECT count(*) FROM par_parallel p FULL JOIN par_serial s USING (id)
		WHERE p.n IS DISTINCT FROM s.n OR abs(p.s - s.s) > 1e-9 * abs(s.s)), 0::bigint,
	'recommend in parallel workers equals the serial plan');
SELECT is((SELECT count(*) FROM par_fold_parallel p FULL JOIN par_fold_serial s USING (hist)
		WHERE abs(p.s - s.s) > 1e-9 * abs(s.s) OR p.s IS NULL OR s.s IS NULL), 0::bigint,
	'fold_in in parallel workers equals the serial plan');

-- 6. the cache never changes an answer (needs the store triggers that touch the
--    models row on every write to the vectors tables)
CREATE TEMP TABLE srv_before AS SELECT * FROM recsys.recommend('srv', 1, 7, version => 1);
-- TODO until the store triggers exist: without them the cache keeps the
-- matrix it loaded, and the two checks marked below fail.
SAVEPOINT change;
UPDATE recsys.item_vectors SET embedding = (SELECT array_agg(100 * e) FROM recsys.user_vectors u, unnest(u.embedding) e
	WHERE u.model = 'srv' AND u.version = 1 AND u.id = 1) WHERE model = 'srv' AND version = 1 AND id = 139;
SELECT is((SELECT item_id FROM recsys.recommend('srv', 1, 1, false, 1)),
	(SELECT r.item_id FROM recsys.user_embeddings('srv', 1) u, recsys.item_embeddings('srv', 1) i,
		LATERAL (SELECT i.id AS item_id, recsys.dot(u.embedding, i.embedding) AS s) r
	WHERE u.id = 1 ORDER BY r.s DESC, r.item_id LIMIT 1),
	'an updated item vector is served inside the updating transaction');
ROLLBACK TO SAVEPOINT change;
SELECT results_eq($$SELECT * FROM recsys.recommend('srv', 1, 7, version => 1)$$, $$SELECT * FROM srv_before$$,
	'after ROLLBACK the original vectors are served again');
SAVEPOINT gone;
DELETE FROM recsys.item_vectors WHERE model = 'srv' AND version = 1;
SELECT is((SELECT count(*) FROM recsys.recommend('srv', 1, 7, version => 1)), 0::bigint,
	'with every item vector deleted recommend returns no rows');
ROLLBACK TO SAVEPOINT gone;
SELECT results_eq($$SELECT * FROM recsys.recommend('srv', 1, 7, version => 1)$$, $$SELECT * FROM srv_before$$,
	'after ROLLBACK of the delete the original answer again');

-- privileges are checked per statement, cached or not
CREATE ROLE srv_no_items;
GRANT USAGE ON SCHEMA recsys TO srv_no_items;
GRANT SELECT ON recsys.models, recsys.user_vectors TO srv_no_items;
CREATE FUNCTION pg_temp.as_role(r text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	res text := 'ok';
BEGIN
	EXECUTE format('SET LOCAL ROLE %I', r);
	BEGIN
		EXECUTE q;
	EXCEPTION WHEN OTHERS THEN
		res := SQLSTATE;
	END;
	RESET ROLE;
	RETURN res;
END
$$;
SELECT is(pg_temp.as_role('srv_no_items', $$SELECT * FROM recsys.recommend('srv', 1, 7, version => 1)$$), '42501',
	'a role without SELECT on item_vectors gets a permission error from a cached model');
SELECT is(pg_temp.as_role('srv_no_items', $$SELECT recsys.fold_in('srv', '{100}')$$), '42501',
	'the same for fold_in');
SELECT is(pg_temp.as_role('srv_no_items', $$SELECT * FROM recsys.recommend_all('srv', 2)$$), '42501',
	'the same for recommend_all');

SELECT * FROM finish();
ROLLBACK;
