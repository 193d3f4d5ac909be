-- pgTAP: evaluation functions and aggregates against scikit-learn and plain
-- Python references (test/ref/metrics.py), SQL rank formulas, and serial
-- versus forced-parallel aggregation.
BEGIN;
SELECT plan(29);

\ir ref/out/metrics.sql

-- EXPLAIN ANALYZE output of a query, as one text
CREATE FUNCTION pg_temp.explain(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	acc text := '';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
		acc := acc || line || E'\n';
	END LOOP;
	RETURN acc;
END $$;

-- Exact AUC by the Mann-Whitney statistic with average ranks for ties (numeric)
CREATE FUNCTION pg_temp.rank_auc(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	result float8;
BEGIN
	EXECUTE format($f$
		WITH r AS (
			SELECT label, rank() OVER (ORDER BY score)
			              + (count(*) OVER (PARTITION BY score) - 1) / 2.0 AS avg_rank
			FROM (%s) d(score, label))
		SELECT ((sum(avg_rank) FILTER (WHERE label)
		         - count(*) FILTER (WHERE label) * (count(*) FILTER (WHERE label) + 1) / 2.0)
		        / (count(*) FILTER (WHERE label) * count(*) FILTER (WHERE NOT label)))::float8
		FROM r $f$, q) INTO result;
	RETURN result;
END $$;

-- ---------------------------------------------------------------------------
-- AUC against scikit-learn
-- ---------------------------------------------------------------------------
CREATE TABLE auc_fit AS
	SELECT set_id, recsys.auc(score, label) AS auc,
	       recsys.auc(score, label ORDER BY i DESC) AS auc_reversed
	FROM ref_auc GROUP BY set_id;

SELECT is((SELECT count(*) FROM auc_fit f JOIN ref_auc_expected e USING (set_id)), 9::bigint,
	'nine AUC data sets');
SELECT is((SELECT string_agg(e.name || ': ' || f.auc || ' vs ' || e.auc, '; ')
		FROM auc_fit f JOIN ref_auc_expected e USING (set_id) WHERE abs(f.auc - e.auc) > 1e-14),
	NULL, 'auc equals sklearn roc_auc_score on all sets (ties, all tied, signed zeros, 20000 rows, 1 decimal)');
SELECT is((SELECT count(*) FROM auc_fit WHERE auc <> auc_reversed), 0::bigint,
	'auc does not depend on the row order');
SELECT is((SELECT recsys.auc(score::real, label) FROM ref_auc WHERE set_id = 0), (SELECT auc FROM auc_fit WHERE set_id = 0),
	'auc accepts real scores (ties at 1 decimal survive the cast)');
SELECT is((SELECT recsys.auc(score, true) FROM ref_auc WHERE set_id = 1), NULL,
	'auc is NULL when only one label occurs');
SELECT is((SELECT recsys.auc(score, label) FROM ref_auc WHERE false), NULL,
	'auc is NULL for no rows');
SELECT is((SELECT recsys.auc(CASE WHEN i % 3 = 0 THEN NULL ELSE score END, CASE WHEN i % 5 = 0 THEN NULL ELSE label END)
		FROM ref_auc WHERE set_id = 1),
	(SELECT recsys.auc(score, label) FROM ref_auc WHERE set_id = 1 AND i % 3 <> 0 AND i % 5 <> 0),
	'auc skips rows with a NULL score or label');

-- a running AUC compacts its state in the final function between rows
SELECT is((SELECT count(*) FROM (
		SELECT i, recsys.auc(score, label) OVER (ORDER BY i) AS running FROM ref_auc WHERE set_id = 0 AND i < 300) w
		WHERE running IS DISTINCT FROM (SELECT recsys.auc(score, label) FROM ref_auc WHERE set_id = 0 AND i <= w.i)),
	0::bigint, 'auc as a running window aggregate equals the aggregate over each prefix');

-- ---------------------------------------------------------------------------
-- Log loss against scikit-learn
-- ---------------------------------------------------------------------------
SELECT is((SELECT string_agg(e.name || ': ' || f.ll || ' vs ' || e.log_loss, '; ')
		FROM (SELECT set_id, recsys.log_loss(p, label) ll FROM ref_logloss GROUP BY set_id) f
		JOIN ref_logloss_expected e USING (set_id)
		WHERE abs(f.ll - e.log_loss) > 1e-12 * e.log_loss),
	NULL, 'log_loss equals sklearn log_loss (eps 1e-15) on all sets, 0 and 1 included');
SELECT is((SELECT count(*) FROM ref_logloss_expected), 3::bigint, 'three log-loss data sets');
SELECT is((SELECT recsys.log_loss(p, label) FROM ref_logloss WHERE false), NULL, 'log_loss is NULL for no rows');
SELECT cmp_ok(abs((SELECT recsys.log_loss(0.0, true)) - 34.538776394910684), '<', 1e-12::float8,
	'log_loss clips p = 0 to 1e-15: -ln(1e-15)');

-- ---------------------------------------------------------------------------
-- Recall@k and NDCG@k against Python and scikit-learn
-- ---------------------------------------------------------------------------
SELECT is((SELECT count(*) FROM ref_rank
		WHERE recsys.recall_at_k(recommended, relevant, k) IS DISTINCT FROM recall
		  AND NOT abs(recsys.recall_at_k(recommended, relevant, k) - recall) < 1e-14),
	0::bigint, 'recall_at_k equals the Python reference on 360 lists (duplicates, empty sets, k past the end)');
SELECT is((SELECT count(*) FROM ref_rank
		WHERE recsys.ndcg_at_k(recommended, relevant, k) IS DISTINCT FROM ndcg
		  AND NOT abs(recsys.ndcg_at_k(recommended, relevant, k) - ndcg) < 1e-12),
	0::bigint, 'ndcg_at_k equals the Python reference (300 lists) and sklearn ndcg_score (60 full rankings)');
SELECT is((SELECT count(*) FROM ref_rank WHERE source = 'sklearn'), 60::bigint, 'sixty sklearn ndcg cases');

-- ---------------------------------------------------------------------------
-- Large tables: rank formula, state memory, combine, parallel plans
-- ---------------------------------------------------------------------------
CREATE TABLE auc_par AS
	SELECT i, i % 8 AS g,
	       ((i * 2654435761) % 4294967296 / 4294967296.0)::float8 AS s_distinct,
	       (((i * 7919) % 1000) / 1000.0)::float8 AS s_tied,
	       ((i * 7919) % 1000 + (i * 104729) % 700) > 1000 AS label
	FROM generate_series(1::bigint, 200000) i;
ANALYZE auc_par;
CREATE AGGREGATE pg_temp.auc_state(float8, boolean) (SFUNC = recsys.auc_accum, STYPE = bytea);
CREATE AGGREGATE pg_temp.auc_merge(bytea) (SFUNC = recsys.auc_combine, STYPE = bytea);
CREATE AGGREGATE pg_temp.log_loss_state(float8, boolean) (SFUNC = recsys.log_loss_accum, STYPE = bytea);
CREATE AGGREGATE pg_temp.log_loss_merge(bytea) (SFUNC = recsys.log_loss_combine, STYPE = bytea);

SELECT recsys.auc(s_distinct, label) AS ser_auc_d, recsys.auc(s_tied, label) AS ser_auc_t,
       recsys.log_loss(s_tied, label) AS ser_ll
FROM auc_par \gset
CREATE TABLE auc_ser_g AS
	SELECT g, recsys.auc(s_distinct, label) AS a, recsys.auc(s_tied, label) AS t, recsys.log_loss(s_tied, label) AS ll
	FROM auc_par GROUP BY g;

SELECT cmp_ok(abs(:'ser_auc_d'::float8 - pg_temp.rank_auc('SELECT s_distinct, label FROM auc_par')), '<', 1e-14::float8,
	'auc equals the Mann-Whitney rank formula on 200000 distinct scores');
SELECT cmp_ok(abs(:'ser_auc_t'::float8 - pg_temp.rank_auc('SELECT s_tied, label FROM auc_par')), '<', 1e-14::float8,
	'auc equals the Mann-Whitney rank formula with average ranks on 200000 rows of 1000 tied scores');
SELECT cmp_ok((SELECT octet_length(pg_temp.auc_state(s_tied, label)) FROM auc_par), '<=', 16 * 2048 + 64,
	'the state of 200000 rows with 1000 distinct scores stays under 2048 entries of 16 bytes');
SELECT cmp_ok((SELECT octet_length(pg_temp.auc_state(s_distinct, label)) FROM auc_par), '<=', 16 * 262144 + 64,
	'the state of 200000 distinct scores stays under 2 x 16 bytes per row');
SELECT is((SELECT recsys.auc_final(pg_temp.auc_merge(st)) FROM (
		SELECT pg_temp.auc_state(s_tied, label) st FROM auc_par GROUP BY i % 7) p), :'ser_auc_t'::float8,
	'auc_combine over 7 partial states equals the serial aggregate');
SELECT cmp_ok(abs((SELECT recsys.log_loss_final(pg_temp.log_loss_merge(st)) FROM (
		SELECT pg_temp.log_loss_state(s_tied, label) st FROM auc_par GROUP BY i % 7) p) - :'ser_ll'::float8), '<', 1e-14::float8,
	'log_loss_combine over 7 partial states equals the serial aggregate');
SELECT cmp_ok(abs(:'ser_ll'::float8 - (SELECT avg(CASE WHEN label THEN -ln(greatest(s_tied, 1e-15)) ELSE -ln(1 - least(s_tied, 1 - 1e-15)) END)
		FROM auc_par)), '<', 1e-12::float8,
	'log_loss equals avg() of the clipped cross-entropy on 200000 rows');

SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL parallel_leader_participation = off;
SELECT matches(pg_temp.explain('SELECT recsys.auc(s_distinct, label), recsys.auc(s_tied, label), recsys.log_loss(s_tied, label) FROM auc_par'),
	'Partial Aggregate.*Workers Launched: [1-9]|Workers Launched: [1-9].*Partial Aggregate',
	'auc and log_loss run as partial aggregates in parallel workers');
SELECT matches(pg_temp.explain('SELECT g, recsys.auc(s_distinct, label) FROM auc_par GROUP BY g'),
	'Partial (Hash|Group)Aggregate', 'grouped auc runs partial aggregates too');
SELECT recsys.auc(s_distinct, label) AS par_auc_d, recsys.auc(s_tied, label) AS par_auc_t,
       recsys.log_loss(s_tied, label) AS par_ll
FROM auc_par \gset
CREATE TABLE auc_par_g AS
	SELECT g, recsys.auc(s_distinct, label) AS a, recsys.auc(s_tied, label) AS t, recsys.log_loss(s_tied, label) AS ll
	FROM auc_par GROUP BY g;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;

SELECT is(:'par_auc_d'::float8, :'ser_auc_d'::float8, 'auc, distinct scores: parallel equals serial (exactly)');
SELECT is(:'par_auc_t'::float8, :'ser_auc_t'::float8, 'auc, tied scores: parallel equals serial (exactly)');
SELECT cmp_ok(abs(:'par_ll'::float8 - :'ser_ll'::float8), '<', 1e-14::float8, 'log_loss: parallel equals serial');
SELECT is((SELECT count(*) FROM auc_ser_g s JOIN auc_par_g p USING (g)
		WHERE s.a <> p.a OR s.t <> p.t OR abs(s.ll - p.ll) > 1e-14), 0::bigint,
	'grouped auc and log_loss: parallel equals serial in all 8 groups');
SELECT is((SELECT count(*) FROM auc_par_g), 8::bigint, 'eight groups');

SELECT * FROM finish();
ROLLBACK;
