-- Limits and NULLs at the edges: NULL model names, sums that overflow,
-- predict_top_k's state for large k, repeated interaction pairs
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

-- a NULL model name is 22004 wherever a name is required (not "model <NULL> does not exist")
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT recsys.drop_model(NULL)$$,
	$$SELECT recsys.drop_model(NULL, 1)$$,
	$$SELECT recsys.resolve_model_version(NULL)$$,
	$$SELECT recsys.resolve_model_version(NULL, 1)$$,
	$$SELECT recsys.check_model_name(NULL)$$,
	$$SELECT recsys.next_model_version(NULL)$$,
	$$SELECT recsys.embedding_model_version(NULL)$$,
	$$SELECT * FROM recsys.user_embeddings(NULL)$$,
	$$SELECT * FROM recsys.recommend(NULL, 1)$$,
	$$SELECT * FROM recsys.recommend_all(NULL)$$,
	$$SELECT * FROM recsys.fold_in(NULL, '{1}')$$,
	$$SELECT * FROM recsys.recommend_for_items(NULL, '{1}')$$,
	$$SELECT * FROM recsys.train_embeddings(NULL, 'pg_class')$$,
	$$SELECT * FROM recsys.import_model(NULL, '\x00', '{}')$$,
	$$SELECT recsys.predict_top_k(NULL, '{1}'::real[], 1, 1, '{1}')$$,
	$$SELECT * FROM recsys.predict_table(NULL, 'pg_class', 'oid', 'relacl')$$,
	$$SELECT * FROM recsys.train_mmoe(NULL, 'pg_class', 'a', '{a}', '{}')$$
]) q;

-- als_solve: confidences or vectors whose sums overflow double precision are
-- 22003 at the row that overflows (not 22P03 "invalid als_solve state")
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT recsys.als_solve('{1,1}'::real[], 1e308, '{{1,0},{0,1}}', 0.1, 0.01) FROM generate_series(1, 2)$$,
	$$SELECT recsys.als_solve_objective('{1,1}'::real[], 1e308, '{{1,0},{0,1}}', 0.1, 0.01) FROM generate_series(1, 2)$$,
	$$SELECT recsys.als_solve(v, 1e300, '{{1,0},{0,1}}', 0.1, 0.01) FROM (VALUES ('{1e30,1}'::float8[])) t(v)$$,
	$$SELECT recsys.als_solve('{1e30,1}'::real[], 1e300, '{{1,0},{0,1}}', 0.1, 0.01)$$,
	$$SELECT recsys.als_solve(v, 1e200, '{{1,0},{0,1}}', 0.1, 0.01) FROM (VALUES ('{1e100,1}'::float8[])) t(v), generate_series(1, 300)$$
]) q;
-- large but finite sums still solve
SELECT recsys.als_solve('{1,1}'::real[], 1e300, '{{1,0},{0,1}}', 0.1, 0.01) FROM generate_series(1, 2);

-- predict_top_k keeps what a group holds, not k: a state for k = 100000
-- holding one row is a few hundred bytes (0.2.0: 1.6 MB each, 16 bytes per k)
CREATE TABLE el_rows (g int, item bigint, f real[], click float8);
INSERT INTO el_rows SELECT n % 3, n, ARRAY[sin(n), cos(n * 0.7)]::real[], (n % 2)::float8
	FROM generate_series(1, 700) n;
SELECT count(*) AS epochs FROM recsys.train_mmoe('el_mmoe', 'el_rows', 'f', '{click}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 2, "hidden": [3]},
	  "tasks": [{"name": "click", "type": "regression"}]}', epochs => 1);
SELECT pg_column_size(recsys.predict_top_k_step(NULL, 'el_mmoe', '{1,2}'::real[], 7, 100000, '{1}')) AS bytes_k_100000,
	pg_column_size(recsys.predict_top_k_step(NULL, 'el_mmoe', '{1,2}'::real[], 7, 3, '{1}')) AS bytes_k_3;
-- a growing kept list ranks as ORDER BY does: ~233 rows per group, k below,
-- at and above the group's size, and through the combine function
CREATE TEMP TABLE el_ref AS
	SELECT g, item, (recsys.predict('el_mmoe', f))[1] AS score FROM el_rows;
SELECT k, bool_and(got = want) AS same_ranking, sum(cardinality(got)) AS items
FROM (VALUES (1), (5), (9), (100), (233), (100000)) ks(k),
LATERAL (
	SELECT g, (SELECT array_agg(u.item_id ORDER BY u.ord) FROM unnest(recsys.predict_top_k('el_mmoe', f, item, k, '{1}'))
			WITH ORDINALITY u(item_id, score, ord)) AS got
	FROM el_rows GROUP BY g) a
JOIN LATERAL (
	SELECT array_agg(item ORDER BY score DESC, item) AS want
	FROM (SELECT item, score FROM el_ref r WHERE r.g = a.g ORDER BY score DESC, item LIMIT k) l) b ON true
GROUP BY k ORDER BY k;
-- combine of two grown states, and of a small state with a grown one
CREATE AGGREGATE pg_temp.topk_state(text, real[], bigint, int, real[]) (
	SFUNC = recsys.predict_top_k_step, STYPE = bytea);
SELECT k, half, (SELECT array_agg(u.item_id ORDER BY u.ord) FROM unnest(recsys.predict_top_k_final(
		recsys.predict_top_k_combine(s1, s2))) WITH ORDINALITY u(item_id, score, ord))
	= (SELECT array_agg(item ORDER BY score DESC, item) FROM (SELECT item, score FROM el_ref WHERE g = 0
		ORDER BY score DESC, item LIMIT k) l) AS same_ranking
FROM (VALUES (50), (100000)) ks(k), (VALUES (2), (60)) h(half),
LATERAL (SELECT pg_temp.topk_state('el_mmoe', f, item, k, '{1}') FILTER (WHERE item % h.half = 0) AS s1,
		pg_temp.topk_state('el_mmoe', f, item, k, '{1}') FILTER (WHERE item % h.half <> 0) AS s2
	FROM el_rows WHERE g = 0) st
ORDER BY k, half;

-- train_embeddings: repeated (user, item) rows add their weights in double
-- precision, each pair's sum rounded to real once (0.2.0's memory engine
-- rounded each row first: at most one unit in the last place of real per
-- pair, below what trained vectors show, so this agreement also held then);
-- the memory engine (real confidences; its exact solver, not the default cg)
-- and the aggregate engine (double precision) train the same vectors
CREATE TABLE el_plays (u int, i int, w float8);
INSERT INTO el_plays SELECT u, i, w FROM generate_series(1, 30) u, generate_series(1, 12) i,
	generate_series(1, 1 + (u * i) % 7) r, LATERAL (SELECT (ARRAY[0.1, 1.0 / 3, 0.7, 1e-9, 2.2])[1 + (u + i + r) % 5] AS w) x
	WHERE (u + 2 * i) % 3 <> 0;
SELECT count(*) AS rows, count(DISTINCT (u, i)) AS pairs FROM el_plays;
SELECT count(*) AS epochs FROM recsys.train_embeddings('el_mem', 'el_plays', 'u', 'i', 'w', dim => 3, epochs => 4,
	options => '{"engine": "memory", "solver": "cholesky"}');
SELECT count(*) AS epochs FROM recsys.train_embeddings('el_agg', 'el_plays', 'u', 'i', 'w', dim => 3, epochs => 4,
	options => '{"engine": "aggregate"}');
SELECT count(*) AS vectors, max(abs(a.v - b.v)) < 1e-5 AS same_vectors
FROM (SELECT id, x.v, x.n FROM recsys.user_embeddings('el_mem') e, unnest(e.embedding) WITH ORDINALITY x(v, n)) a
JOIN (SELECT id, x.v, x.n FROM recsys.user_embeddings('el_agg') e, unnest(e.embedding) WITH ORDINALITY x(v, n)) b
	USING (id, n);
-- a pair whose weights add up past the range of real is 22003 naming the
-- pair on the memory engine (0.2.0 trained on an infinite confidence and
-- failed later, blaming l2)
CREATE TABLE el_big (u int, i int, w float8);
INSERT INTO el_big VALUES (1, 1, 1), (1, 2, 1), (2, 1, 1), (2, 2, 2e38), (2, 2, 2e38);
SELECT pg_temp.try($$SELECT * FROM recsys.train_embeddings('el_x', 'el_big', 'u', 'i', 'w', dim => 2, epochs => 1,
	options => '{"engine": "memory"}')$$);
INSERT INTO el_big VALUES (3, 1, 1e39);
DELETE FROM el_big WHERE w = 2e38;
SELECT pg_temp.try($$SELECT * FROM recsys.train_embeddings('el_x', 'el_big', 'u', 'i', 'w', dim => 2, epochs => 1,
	options => '{"engine": "memory"}')$$);

SELECT recsys.drop_model('el_mmoe') + recsys.drop_model('el_mem') + recsys.drop_model('el_agg') AS dropped;
DROP TABLE el_rows, el_plays, el_big;
