-- Batched scoring of candidate sets against per-row predict and the PyTorch reference
-- (test/ref/mmoe.py): predict_top_k (both forms, serial and under a forced parallel plan),
-- predict_table, and the stacked per-row path.
\set QUIET 1
SET client_min_messages = warning;
\ir ref/out/mmoe_ref.sql

SELECT plan(15);

-- the lines of EXPLAIN (COSTS OFF) for a query
CREATE FUNCTION pg_temp.explain_lines(q text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	l text;
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		RETURN NEXT l;
	END LOOP;
END
$$;

SELECT is((SELECT array_agg(recsys.import_model('s_' || variant, weights,
		CASE WHEN config_in_metadata THEN NULL ELSE config END) ORDER BY variant) FROM mmoe_ref_files),
	'{1,1,1,1,1,1,1}'::int[], 'imported the reference models');

-- Candidates: 10 copies of each reference row, item ids unique, 7 groups per variant
CREATE TEMP TABLE cand AS
	SELECT r.variant, (r.row_id + c * 1000)::bigint AS item_id, (r.row_id + c) % 7 AS grp,
		r.features, r.categorical, r.context, r.pos, r.expected
	FROM mmoe_ref_rows r, generate_series(0, 9) c WHERE r.variant <> 'softmax_v2';

-- The expected top 5 per group from PyTorch's float64 outputs: 0.7 task 1 + 0.3 task 2
-- (the softmax model has two tasks; the categorical model one, weight 1)
CREATE TEMP TABLE want AS
	SELECT variant, grp, array_agg(item_id ORDER BY s DESC, item_id) AS ids, array_agg(s ORDER BY s DESC, item_id) AS scores
	FROM (SELECT variant, grp, item_id, s, row_number() OVER (PARTITION BY variant, grp ORDER BY s DESC, item_id) AS rn
		  FROM (SELECT variant, grp, item_id, CASE variant WHEN 'softmax' THEN 0.7 * expected[1] + 0.3 * expected[2]
				ELSE expected[1] END AS s
				FROM cand WHERE variant IN ('softmax', 'categorical')) a) b
	WHERE rn <= 5 GROUP BY variant, grp;

CREATE TEMP TABLE got AS
	SELECT 'softmax' AS variant, grp, recsys.predict_top_k('s_softmax', features, item_id, 5, '{0.7,0.3}') AS top
	FROM cand WHERE variant = 'softmax' GROUP BY grp
	UNION ALL
	SELECT 'categorical', grp, recsys.predict_top_k('s_categorical', features, categorical, item_id, 5, '{1}')
	FROM cand WHERE variant = 'categorical' GROUP BY grp;

-- Each reference row appears 10 times (item ids r, r + 1000, ...), so copies tie in PyTorch's
-- float64 scores but may differ in the last float32 bit by their place in a block (sgemm edge
-- tiles sum in another order): rankings are compared as lists of reference rows (item_id % 1000),
-- and the tie rule is checked on each returned list
CREATE FUNCTION pg_temp.rows_of(top recsys.ranked_item[]) RETURNS bigint[] LANGUAGE sql AS $$
	SELECT array_agg(t.item_id % 1000 ORDER BY o) FROM unnest(top) WITH ORDINALITY t(item_id, score, o)
$$;
CREATE FUNCTION pg_temp.well_ordered(top recsys.ranked_item[]) RETURNS boolean LANGUAGE sql AS $$
	SELECT coalesce(bool_and(a.score > b.score OR (a.score = b.score AND a.item_id < b.item_id)), true)
	FROM unnest(top) WITH ORDINALITY a(item_id, score, o) JOIN unnest(top) WITH ORDINALITY b(item_id, score, o)
		ON b.o = a.o + 1
$$;
SELECT is((SELECT count(*)::int FROM got g JOIN want w USING (variant, grp)
	WHERE pg_temp.rows_of(g.top) = (SELECT array_agg(i % 1000 ORDER BY o) FROM unnest(w.ids) WITH ORDINALITY u(i, o))), 14,
	'predict_top_k keeps the PyTorch top 5 of every group (both forms)');
SELECT ok((SELECT bool_and(pg_temp.well_ordered(top) AND cardinality(top) = 5) FROM got),
	'every list is best first, equal scores by the smaller item_id');
SELECT cmp_ok((SELECT max(abs(t.score - w.scores[t.o])) FROM got g JOIN want w USING (variant, grp),
	LATERAL unnest(g.top) WITH ORDINALITY t(item_id, score, o)), '<', 1e-5::float8,
	'predict_top_k scores match PyTorch');

-- Parity with per-row predict: same ranking, float32 summation order is the only difference
CREATE TEMP TABLE per_row AS
	SELECT grp, item_id, (0.7::float8 * p[1] + 0.3::float8 * p[2])::real AS s
	FROM (SELECT grp, item_id, recsys.predict('s_softmax', features) AS p FROM cand WHERE variant = 'softmax') a;
SELECT is((SELECT count(*)::int FROM got g
	WHERE g.variant = 'softmax' AND pg_temp.rows_of(g.top)
		= (SELECT array_agg(item_id % 1000 ORDER BY s DESC, item_id) FROM (SELECT * FROM per_row p WHERE p.grp = g.grp
			ORDER BY s DESC, item_id LIMIT 5) x)), 7,
	'predict_top_k ranks as per-row predict does');
SELECT cmp_ok((SELECT CASE WHEN count(*) = (SELECT sum(cardinality(top)) FROM got WHERE variant = 'softmax')
		THEN max(abs(t.score::float8 - p.s)) END
	FROM got g, LATERAL unnest(g.top) t(item_id, score)
	JOIN per_row p USING (item_id) WHERE g.variant = 'softmax'), '<', 1e-6::float8,
	'predict_top_k scores agree with per-row predict within 1e-6');
SELECT diag('max |predict_top_k - per-row predict| score: ' || (SELECT max(abs(t.score::float8 - p.s))
	FROM got g, LATERAL unnest(g.top) t(item_id, score) JOIN per_row p USING (item_id) WHERE g.variant = 'softmax'));

-- A one-hot weight picks one task; k larger than a group (280 rows, three blocks) returns the whole group sorted
SELECT is((SELECT pg_temp.rows_of(top) FROM (SELECT recsys.predict_top_k('s_softmax', features, item_id, 1000, '{0,1}') AS top
		FROM cand WHERE variant = 'softmax' AND grp = 3) g),
	(SELECT array_agg(item_id % 1000 ORDER BY expected[2] DESC, item_id) FROM cand WHERE variant = 'softmax' AND grp = 3),
	'k above the group size gives every item, ordered by the one task weighted');

-- Forced parallel plan: partial states cross processes (combine merges buffers and lists)
CREATE TABLE scoring_par AS SELECT * FROM cand WHERE variant = 'softmax';
ANALYZE scoring_par;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
SET enable_hashagg = off;
SELECT ok((SELECT string_agg(l, E'\n') FROM pg_temp.explain_lines(
	$$SELECT grp, recsys.predict_top_k('s_softmax', features, item_id, 5, '{0.7,0.3}') FROM scoring_par GROUP BY grp$$) l)
	~ 'Partial GroupAggregate', 'predict_top_k runs under a parallel plan');
CREATE TEMP TABLE got_par AS
	SELECT grp, recsys.predict_top_k('s_softmax', features, item_id, 5, '{0.7,0.3}') AS top FROM scoring_par GROUP BY grp;
SELECT ok((SELECT string_agg(l, E'\n') FROM pg_temp.explain_lines(
	$$SELECT recsys.predict_top_k('s_softmax', features, item_id, 20, '{0.7,0.3}') FROM scoring_par$$) l)
	~ 'Partial Aggregate', 'a single group also runs under a parallel plan');
CREATE TEMP TABLE got_par1 AS
	SELECT recsys.predict_top_k('s_softmax', features, item_id, 20, '{0.7,0.3}') AS top FROM scoring_par;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
RESET enable_hashagg;
SELECT is((SELECT count(*)::int FROM got_par p JOIN got g ON g.variant = 'softmax' AND g.grp = p.grp
	WHERE pg_temp.rows_of(p.top) = pg_temp.rows_of(g.top) AND pg_temp.well_ordered(p.top)), 7,
	'the parallel plan gives the serial results for every group');
SELECT is((SELECT pg_temp.rows_of(top) FROM got_par1),
	(SELECT pg_temp.rows_of(recsys.predict_top_k('s_softmax', features, item_id, 20, '{0.7,0.3}')) FROM scoring_par),
	'one group over the whole table: parallel equals serial');
DROP TABLE scoring_par;

-- predict_table with every input (categorical, context, display position) against PyTorch and predict
CREATE TEMP TABLE full_cand AS SELECT row_id, features, categorical, context, pos, expected
	FROM mmoe_ref_rows WHERE variant = 'full';
CREATE TEMP TABLE full_scores AS
	SELECT * FROM recsys.predict_table('s_full', 'full_cand', 'row_id', 'features', 'categorical', 'context', 'pos');
SELECT is((SELECT count(*)::int FROM full_scores), 200, 'predict_table gives one row per candidate');
SELECT cmp_ok((SELECT CASE WHEN count(DISTINCT f.id) = 200 THEN max(CASE WHEN cardinality(f.scores) = cardinality(c.expected)
			THEN abs(s.v::float8 - e.v) ELSE 'Infinity' END) END
	FROM full_scores f JOIN full_cand c ON c.row_id = f.id,
	LATERAL unnest(f.scores, c.expected) AS u(v, w), LATERAL (SELECT u.v) s(v), LATERAL (SELECT u.w) e(v)),
	'<', 1e-5::float8, 'predict_table matches PyTorch (categorical, latent cross, display position)');
SELECT cmp_ok((SELECT CASE WHEN count(DISTINCT f.id) = 200 THEN max(coalesce(abs(u.a::float8 - u.b), 'Infinity')) END
	FROM full_scores f JOIN full_cand c ON c.row_id = f.id,
	LATERAL unnest(f.scores, recsys.predict('s_full', c.features, c.categorical, c.context, c.pos)) AS u(a, b)),
	'<', 1e-6::float8, 'predict_table agrees with per-row predict within 1e-6');

SELECT diag('max |predict_table - per-row predict| (full model): ' || (SELECT max(abs(u.a::float8 - u.b))
	FROM full_scores f JOIN full_cand c ON c.row_id = f.id,
	LATERAL unnest(f.scores, recsys.predict('s_full', c.features, c.categorical, c.context, c.pos)) AS u(a, b)));

-- More rows than one block of the cursor, and memory that does not grow with them
CREATE TEMP TABLE big_cand AS SELECT item_id, features FROM cand WHERE variant = 'softmax';
SELECT is((SELECT count(*)::int FROM recsys.predict_table('s_softmax', 'big_cand', 'item_id', 'features') t
	JOIN big_cand b ON b.item_id = t.id
	WHERE abs(t.scores[1] - (recsys.predict('s_softmax', b.features))[1]) < 1e-6), 2000,
	'predict_table over 2000 rows (8 blocks) agrees with predict row by row');

SELECT * FROM finish();
