-- pgTAP: recsys.gramian against independent references (numpy; exact SQL sums),
-- under serial and forced-parallel plans, and with crafted states.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
SELECT plan(15);

-- relative Frobenius error ||A - B||_F / ||B||_F; infinite when the shapes differ or a value is NULL
CREATE FUNCTION pg_temp.rel_err(a float8[], b float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN a IS NULL OR b IS NULL OR array_dims(a) IS DISTINCT FROM array_dims(b)
			OR EXISTS (SELECT FROM unnest(a) x WHERE x IS NULL) OR EXISTS (SELECT FROM unnest(b) x WHERE x IS NULL)
		THEN 'Infinity'::float8
		ELSE (SELECT sqrt(sum((x - y) ^ 2)) / nullif(sqrt(sum(y ^ 2)), 0) FROM unnest(a, b) AS u(x, y)) END
$$;
\ir lib/plan_has.sql

-- 1. numpy reference (700 x 16 float32 vectors, weights of both signs)
\ir ref/out/gramian.sql
SELECT cmp_ok(pg_temp.rel_err((SELECT recsys.gramian(v) FROM ref_vectors), (SELECT g FROM ref_gramian)),
	'<', 1e-12::float8, 'gramian(real[]) equals numpy X^T X');
SELECT cmp_ok(pg_temp.rel_err((SELECT recsys.gramian(v, w) FROM ref_vectors), (SELECT gw FROM ref_gramian)),
	'<', 1e-12::float8, 'gramian(real[], w) equals numpy X^T diag(w) X');
SELECT cmp_ok(pg_temp.rel_err((SELECT recsys.gramian(v::float8[]) FROM ref_vectors), (SELECT g FROM ref_gramian)),
	'<', 1e-12::float8, 'gramian(double precision[]) equals numpy X^T X');
SELECT is((SELECT array_dims(recsys.gramian(v)) FROM ref_vectors), '[1:16][1:16]', 'k x k result');
SELECT ok((SELECT bool_and(g[i][j] = g[j][i]) FROM (SELECT recsys.gramian(v) g FROM ref_vectors) s,
	generate_series(1, 16) i, generate_series(1, 16) j), 'result is exactly symmetric');

-- 2. 1M rows, k = 8, against plain SQL sums of the exact float8 products
-- (a regular table: parallel workers cannot read temporary tables)
DROP SCHEMA IF EXISTS gramian_tap CASCADE;
CREATE SCHEMA gramian_tap;
CREATE TABLE gramian_tap.big AS
	SELECT i, ARRAY(SELECT (random() * 2 - 1)::real FROM generate_series(1, 8) d WHERE i > 0) AS v,
		(random() * 4 - 1)::float8 AS w
	FROM (SELECT setseed(0.42)) s, generate_series(1, 1000000) i;
ANALYZE gramian_tap.big;
-- one scan computing all 64 sums sum(v[a] * v[b]) (and weighted ones), row-major
CREATE FUNCTION pg_temp.sql_gramian(weighted boolean) RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE
	q text;
	r float8[];
BEGIN
	SELECT 'SELECT ARRAY[' || string_agg(format('sum(v[%s]::float8 * v[%s]::float8%s)', a, b,
		CASE WHEN weighted THEN ' * w' ELSE '' END), ', ' ORDER BY a, b) || '] FROM gramian_tap.big'
	INTO q FROM generate_series(1, 8) a, generate_series(1, 8) b;
	EXECUTE q INTO r;
	RETURN r;
END
$$;
CREATE TEMP TABLE big_ref AS SELECT pg_temp.sql_gramian(false) AS g, pg_temp.sql_gramian(true) AS gw;
CREATE TEMP TABLE big_serial AS
	SELECT recsys.gramian(v) AS g, recsys.gramian(v, w) AS gw FROM gramian_tap.big;
SELECT cmp_ok(pg_temp.rel_err((SELECT array_agg(x) FROM big_serial, unnest(g) x),
	(SELECT g FROM big_ref)), '<', 1e-9::float8, '1M-row gramian equals SQL sums to 1e-9');
SELECT cmp_ok(pg_temp.rel_err((SELECT array_agg(x) FROM big_serial, unnest(gw) x),
	(SELECT gw FROM big_ref)), '<', 1e-9::float8, '1M-row weighted gramian equals SQL sums to 1e-9');

-- 3. forced parallel plan: partial aggregates in 2 workers, combined in the leader
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
SELECT ok(pg_temp.plan_has('SELECT recsys.gramian(v) FROM gramian_tap.big', 'Partial Aggregate'),
	'EXPLAIN shows Partial Aggregate');
SELECT ok(pg_temp.plan_has('SELECT recsys.gramian(v, w) FROM gramian_tap.big', 'Gather'),
	'weighted gramian runs under Gather');
CREATE TEMP TABLE big_parallel AS
	SELECT recsys.gramian(v) AS g, recsys.gramian(v, w) AS gw FROM gramian_tap.big;
SELECT cmp_ok(pg_temp.rel_err((SELECT g FROM big_parallel), (SELECT g FROM big_serial)),
	'<', 1e-9::float8, 'parallel gramian equals serial to 1e-9');
SELECT cmp_ok(pg_temp.rel_err((SELECT gw FROM big_parallel), (SELECT gw FROM big_serial)),
	'<', 1e-9::float8, 'parallel weighted gramian equals serial to 1e-9');
-- grouped partial aggregation (each group state crosses the worker boundary)
SELECT cmp_ok((SELECT max(pg_temp.rel_err(p.g, s.g))
	FROM (SELECT i % 3 AS grp, recsys.gramian(v) AS g FROM gramian_tap.big GROUP BY 1) p
	JOIN (SELECT grp, g FROM (SELECT i % 3 AS grp FROM generate_series(0, 2) i) x,
		LATERAL (SELECT recsys.gramian(v) AS g FROM gramian_tap.big b WHERE b.i % 3 = x.grp) y) s
	USING (grp)), '<', 1e-9::float8, 'grouped parallel gramian equals per-group results');
RESET parallel_leader_participation;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;
RESET max_parallel_workers_per_gather;

-- 4. crafted states are errors, and this backend survives them
SELECT pg_backend_pid() AS tap_pid \gset
SELECT throws_ok($$SELECT recsys.gramian_final('\x00112233'::bytea)$$, '22P03', 'invalid gramian state',
	'gramian_final refuses a crafted state');
SELECT throws_ok($$SELECT recsys.gramian_combine(recsys.gramian_accum(NULL, '{1,2}'::real[]),
	substring(recsys.gramian_accum(NULL, '{1,2}'::real[]) FROM 1 FOR 60))$$, '22P03', 'invalid gramian state',
	'gramian_combine refuses a truncated state');
SELECT is(pg_backend_pid(), :tap_pid, 'the same backend answers after the crafted states');

DROP SCHEMA gramian_tap CASCADE;
SELECT * FROM finish();
