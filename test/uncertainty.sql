-- pgTAP: uncertainty-weighted losses and predictive variance against
-- numpy / PyTorch references (test/ref/uncertainty.py), and serial versus
-- forced-parallel aggregation.
BEGIN;
SELECT plan(35);

\ir ref/out/uncertainty.sql

-- Relative error, absolute for values below 1
CREATE FUNCTION pg_temp.relerr(got float8, want float8) RETURNS float8
	LANGUAGE sql IMMUTABLE AS $$ SELECT abs(got - want) / greatest(abs(want), 1.0) $$;

-- EXPLAIN ANALYZE output of a query, as one text
-- largest |a - b| and largest relerr(a, b) over two arrays; infinite when
-- the lengths differ or a value is NULL, so that no comparison passes on
-- missing elements
CREATE FUNCTION pg_temp.max_abs_diff(a float8[], b float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN a IS NULL OR b IS NULL OR array_dims(a) IS DISTINCT FROM array_dims(b)
			OR EXISTS (SELECT FROM unnest(a) x WHERE x IS NULL) OR EXISTS (SELECT FROM unnest(b) x WHERE x IS NULL)
		THEN 'Infinity'::float8
		ELSE (SELECT max(abs(x - y)) FROM unnest(a, b) u(x, y)) END
$$;
CREATE FUNCTION pg_temp.max_relerr(a float8[], b float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN a IS NULL OR b IS NULL OR array_dims(a) IS DISTINCT FROM array_dims(b)
			OR EXISTS (SELECT FROM unnest(a) x WHERE x IS NULL) OR EXISTS (SELECT FROM unnest(b) x WHERE x IS NULL)
		THEN 'Infinity'::float8
		ELSE (SELECT max(pg_temp.relerr(x, y)) FROM unnest(a, b) u(x, y)) END
$$;
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

-- ---------------------------------------------------------------------------
-- Kendall et al.'s two-task example: sigma = exp(s/2) from the per-row
-- squared residuals of the jointly trained model
-- ---------------------------------------------------------------------------
CREATE TABLE kendall_fit AS
	SELECT recsys.uncertainty_weights(losses) AS s,
	       recsys.uncertainty_weighted_loss(losses) AS total,
	       ARRAY[avg(losses[1]), avg(losses[2])] AS mean_loss
	FROM ref_kendall;

SELECT cmp_ok(max(pg_temp.relerr(exp(f.s[e.task] / 2), e.rmse)), '<', 1e-12::float8,
	'Kendall example: exp(s/2) equals the residual RMSE (numpy) of both tasks')
FROM kendall_fit f, ref_kendall_expected e;
SELECT cmp_ok(max(pg_temp.relerr(exp(f.s[e.task] / 2), e.torch_sigma)), '<', 1e-6::float8,
	'Kendall example: exp(s/2) equals the sigma PyTorch learned with the notebook loss')
FROM kendall_fit f, ref_kendall_expected e;
SELECT cmp_ok(pg_temp.relerr(exp(f.s[1] / 2), 10), '<', 0.05::float8,
	'Kendall example: task 1 (noise sigma 10) gives sigma ~ 10')
FROM kendall_fit f;
SELECT cmp_ok(pg_temp.relerr(exp(f.s[2] / 2), 1), '<', 0.05::float8,
	'Kendall example: task 2 (noise sigma 1) gives sigma ~ 1')
FROM kendall_fit f;
SELECT cmp_ok(pg_temp.relerr(exp(f.s[1] / 2) / exp(f.s[2] / 2), 10), '<', 0.05::float8,
	'Kendall example: the noisy task is down-weighted ~100x (sigma ratio ~ 10)')
FROM kendall_fit f;
SELECT cmp_ok(pg_temp.relerr(f.total, recsys.uncertainty_loss(f.mean_loss, f.s)), '<', 1e-12::float8,
	'uncertainty_weighted_loss = uncertainty_loss(mean losses, uncertainty_weights)')
FROM kendall_fit f;
SELECT cmp_ok(pg_temp.relerr(f.total, 1.0 + 0.5 * (ln(f.mean_loss[1]) + ln(f.mean_loss[2]))), '<', 1e-12::float8,
	'at the optimum the regression total is sum_k (1/2 + ln(L_k)/2)')
FROM kendall_fit f;

-- ---------------------------------------------------------------------------
-- Mixed task sets: closed form against L-BFGS on the paper objective
-- ---------------------------------------------------------------------------
CREATE TABLE mtl_fit AS
	SELECT r.set_id,
	       recsys.uncertainty_weights(r.losses, e.types) AS s,
	       recsys.uncertainty_weighted_loss(r.losses, e.types) AS total
	FROM ref_mtl_rows r JOIN ref_mtl_expected e USING (set_id)
	GROUP BY r.set_id, e.types;

SELECT is((SELECT count(*) FROM mtl_fit), 4::bigint, 'four mixed task sets aggregated');
SELECT cmp_ok(max(abs(f.s[j] - e.log_vars[j])), '<', 1e-6::float8,
	'uncertainty_weights equals the L-BFGS minimiser (regression ln L, classification ln 2L)')
FROM mtl_fit f JOIN ref_mtl_expected e USING (set_id), generate_series(1, 4) j
WHERE j <= cardinality(e.log_vars);
SELECT cmp_ok(max(pg_temp.relerr(f.total, e.total)), '<', 1e-9::float8,
	'uncertainty_weighted_loss equals the minimum PyTorch reached')
FROM mtl_fit f JOIN ref_mtl_expected e USING (set_id);
SELECT cmp_ok(max(abs(f.s[1] - ln(2 * (SELECT avg(losses[1]) FROM ref_mtl_rows WHERE set_id = 3)))), '<', 1e-12::float8,
	'binary is an alias of classification (s = ln 2L)')
FROM mtl_fit f WHERE set_id = 3;

-- ---------------------------------------------------------------------------
-- Closed forms at random points
-- ---------------------------------------------------------------------------
SELECT cmp_ok(max(pg_temp.relerr(recsys.uncertainty_loss(losses, log_vars, types), expected)), '<', 1e-12::float8,
	'uncertainty_loss matches numpy at 60 random points (NULL task_types = regression)')
FROM ref_unc_loss;
SELECT cmp_ok(max(pg_temp.relerr(recsys.uncertainty_loss(losses::real[], log_vars::real[], types),
                  recsys.uncertainty_loss(losses::real[]::float8[], log_vars::real[]::float8[], types))), '=', 0::float8,
	'uncertainty_loss accepts real[] losses')
FROM ref_unc_loss;
SELECT cmp_ok(max(pg_temp.relerr(recsys.gaussian_nll(y, mean, log_var), expected)), '<', 1e-12::float8,
	'gaussian_nll matches torch.nn.GaussianNLLLoss at 80 random points')
FROM ref_gauss;

-- ---------------------------------------------------------------------------
-- sampled_softmax_nll
-- ---------------------------------------------------------------------------
SELECT is(count(*) FILTER (WHERE abs(recsys.sampled_softmax_nll(logits, log_vars, label, samples, seed) - expected) >= tol),
	0::bigint, 'sampled_softmax_nll equals the re-implemented splitmix64/xoshiro256**/Box-Muller stream (25 cases)')
FROM ref_ssnll WHERE kind = 'exact';
SELECT is(count(*) FILTER (WHERE abs(recsys.sampled_softmax_nll(logits, log_vars, label, samples, seed) - expected) >= tol),
	0::bigint, 'sampled_softmax_nll agrees with a 400000-sample numpy Monte Carlo within 6 standard errors')
FROM ref_ssnll WHERE kind = 'monte carlo';
SELECT is(count(*) FILTER (WHERE abs(recsys.sampled_softmax_nll(logits, log_vars, label, samples, seed) - expected) >= tol),
	0::bigint, 'sampled_softmax_nll tends to torch cross_entropy as the noise vanishes, also at logits of 1e3 and 5e4')
FROM ref_ssnll WHERE kind = 'cross entropy';
SELECT is(recsys.sampled_softmax_nll('{0.5,-1,2}', '{0.3,0.1,-0.2}', 2, 1000, 77),
          recsys.sampled_softmax_nll('{0.5,-1,2}', '{0.3,0.1,-0.2}', 2, 1000, 77),
	'sampled_softmax_nll is deterministic for a seed');
SELECT isnt(recsys.sampled_softmax_nll('{0.5,-1,2}', '{0.3,0.1,-0.2}', 2, 1000, 77),
            recsys.sampled_softmax_nll('{0.5,-1,2}', '{0.3,0.1,-0.2}', 2, 1000, 78),
	'sampled_softmax_nll changes with the seed');
SELECT is(recsys.sampled_softmax_nll('{0.5,-1,2}', '{0.3}', 2),
          recsys.sampled_softmax_nll('{0.5,-1,2}', '{0.3,0.3,0.3}', 2, 100, 0),
	'one log variance is shared by all classes; samples default to 100 and seed to 0');
SELECT cmp_ok(recsys.sampled_softmax_nll('{2,0,0}', '{1,1,1}', 0, 20000, 5), '>',
              recsys.sampled_softmax_nll('{2,0,0}', '{-30,-30,-30}', 0, 20000, 5),
	'logit noise raises the loss of a confident correct prediction (loss attenuation)');

-- ---------------------------------------------------------------------------
-- predictive_variance against numpy
-- ---------------------------------------------------------------------------
CREATE TABLE predvar_fit AS
	SELECT item, recsys.predictive_variance(mean, variance) AS v
	FROM ref_predvar GROUP BY item;
SELECT is(count(*) FILTER (WHERE pg_temp.relerr(f.v[1], e.epistemic) >= e.tol
                            OR pg_temp.relerr(f.v[2], e.aleatoric) >= e.tol
                            OR pg_temp.relerr(f.v[3], e.total) >= e.tol), 0::bigint,
	'predictive_variance = {np.var(means), np.mean(variances), sum} for 30 items (offset 1e6 included)')
FROM predvar_fit f JOIN ref_predvar_expected e USING (item);
SELECT is(count(*), 30::bigint, 'predictive_variance gives one row per item') FROM predvar_fit;
SELECT cmp_ok(max(pg_temp.relerr(f.v[1], e.epistemic)), '<', 1e-11::float8,
	'Welford keeps all the digits numpy''s two-pass variance has without an offset')
FROM predvar_fit f JOIN ref_predvar_expected e USING (item) WHERE e.tol < 1e-10;

-- ---------------------------------------------------------------------------
-- Combine functions called directly, on partial states of 7 slices
-- ---------------------------------------------------------------------------
CREATE AGGREGATE pg_temp.task_loss_state(float8[], text[]) (SFUNC = recsys.uncertainty_weights_accum, STYPE = bytea);
CREATE AGGREGATE pg_temp.task_loss_merge(bytea) (SFUNC = recsys.uncertainty_weights_combine, STYPE = bytea);
CREATE AGGREGATE pg_temp.predvar_state(float8, float8) (SFUNC = recsys.predictive_variance_accum, STYPE = bytea);
CREATE AGGREGATE pg_temp.predvar_merge(bytea) (SFUNC = recsys.predictive_variance_combine, STYPE = bytea);

SELECT cmp_ok(pg_temp.max_abs_diff(
		(SELECT recsys.uncertainty_weights_final(pg_temp.task_loss_merge(st)) FROM (
			SELECT pg_temp.task_loss_state(r.losses, e.types) st
			FROM ref_mtl_rows r JOIN ref_mtl_expected e USING (set_id)
			WHERE set_id = 1 GROUP BY r.i % 7) p),
		(SELECT s FROM mtl_fit WHERE set_id = 1)), '<', 1e-13::float8,
	'uncertainty_weights_combine over 7 partial states equals the serial aggregate');
SELECT cmp_ok(pg_temp.max_abs_diff(
		(SELECT recsys.predictive_variance_final(pg_temp.predvar_merge(st)) FROM (
			SELECT pg_temp.predvar_state(mean, variance) st FROM ref_predvar WHERE item = 6 GROUP BY t % 7) p),
		(SELECT v FROM predvar_fit WHERE item = 6)), '<', 1e-12::float8,
	'predictive_variance_combine (Chan merge) over 7 partial states equals Welford');

-- ---------------------------------------------------------------------------
-- Serial versus forced-parallel plans
-- ---------------------------------------------------------------------------
CREATE TABLE unc_par AS
	SELECT i, i % 8 AS g,
	       ARRAY[((i * 7919) % 1000) / 100.0, ((i * 104729) % 977) / 977.0 * 3, 0.001 * (i % 13)]::float8[] AS losses,
	       sin(i) * 3 + (i % 5) AS mean, (i % 11) / 10.0 AS variance
	FROM generate_series(1::bigint, 200000) i;
ANALYZE unc_par;

SELECT recsys.uncertainty_weights(losses, '{regression,classification,regression}') AS ser_w,
       recsys.uncertainty_weighted_loss(losses, '{regression,classification,regression}') AS ser_t,
       recsys.uncertainty_weights(losses) AS ser_w1,
       recsys.predictive_variance(mean, variance) AS ser_v
FROM unc_par \gset
CREATE TABLE unc_ser_g AS
	SELECT g, recsys.uncertainty_weights(losses) AS w, recsys.predictive_variance(mean, variance) AS v
	FROM unc_par GROUP BY g;

SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL parallel_leader_participation = off;

SELECT matches(pg_temp.explain($$SELECT recsys.uncertainty_weights(losses, '{regression,classification,regression}'),
		recsys.uncertainty_weighted_loss(losses, '{regression,classification,regression}'),
		recsys.uncertainty_weights(losses), recsys.predictive_variance(mean, variance) FROM unc_par$$),
	'Partial Aggregate.*Workers Launched: [1-9]|Workers Launched: [1-9].*Partial Aggregate',
	'the four aggregates run as partial aggregates in parallel workers');
SELECT matches(pg_temp.explain('SELECT g, recsys.uncertainty_weights(losses), recsys.predictive_variance(mean, variance) FROM unc_par GROUP BY g'),
	'Partial (Hash|Group)Aggregate', 'grouped aggregation runs partial aggregates too');

SELECT recsys.uncertainty_weights(losses, '{regression,classification,regression}') AS par_w,
       recsys.uncertainty_weighted_loss(losses, '{regression,classification,regression}') AS par_t,
       recsys.uncertainty_weights(losses) AS par_w1,
       recsys.predictive_variance(mean, variance) AS par_v
FROM unc_par \gset
CREATE TABLE unc_par_g AS
	SELECT g, recsys.uncertainty_weights(losses) AS w, recsys.predictive_variance(mean, variance) AS v
	FROM unc_par GROUP BY g;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;

SELECT cmp_ok(pg_temp.max_abs_diff(:'ser_w'::float8[], :'par_w'::float8[]), '<', 1e-12::float8,
	'uncertainty_weights: parallel equals serial');
SELECT cmp_ok(pg_temp.relerr(:'par_t'::float8, :'ser_t'::float8), '<', 1e-12::float8,
	'uncertainty_weighted_loss: parallel equals serial');
SELECT cmp_ok(pg_temp.max_abs_diff(:'ser_w1'::float8[], :'par_w1'::float8[]), '<', 1e-12::float8,
	'uncertainty_weights (regression only): parallel equals serial');
SELECT cmp_ok(pg_temp.max_relerr(:'ser_v'::float8[], :'par_v'::float8[]), '<', 1e-10::float8,
	'predictive_variance: parallel equals serial');
SELECT cmp_ok((SELECT CASE WHEN count(*) = 8 * 3 THEN max(coalesce(pg_temp.relerr(p.w[j], s.w[j])
			+ pg_temp.relerr(p.v[j], s.v[j]), 'Infinity')) END
		FROM unc_ser_g s JOIN unc_par_g p USING (g), generate_series(1, 3) j), '<', 1e-10::float8,
	'grouped aggregates: parallel equals serial in all 8 groups');
SELECT cmp_ok(pg_temp.max_relerr(:'ser_v'::float8[],
		(SELECT ARRAY[var_pop(mean), avg(variance), var_pop(mean) + avg(variance)] FROM unc_par)), '<', 1e-10::float8,
	'predictive_variance equals PostgreSQL''s own var_pop and avg on 200000 rows');
SELECT cmp_ok(pg_temp.max_abs_diff(:'ser_w1'::float8[],
		(SELECT ARRAY[ln(avg(losses[1])), ln(avg(losses[2])), ln(avg(losses[3]))] FROM unc_par)), '<', 1e-12::float8,
	'uncertainty_weights equals ln(avg(loss)) per task on 200000 rows');

SELECT * FROM finish();
ROLLBACK;
