-- pgTAP: a cancel stops recsys within a bound at the largest dimension
-- (recsys.max_dim, 4096 by default): every long loop of training and the
-- aggregates checks for interrupts by work done, and single LAPACK/BLAS calls
-- are split (linalg.c), so statement_timeout (the same interrupt as
-- pg_cancel_backend) ends each case about a work piece (~10-20 ms) after it
-- fires.  The bound asserted, 3 s, leaves room for a loaded machine; 0.2.0
-- took 26-159 s at these sizes.  The measured latencies are printed (diag).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
BEGIN;
SELECT plan(4);

-- the library loaded (its settings defined) by a first call
DO $$ BEGIN PERFORM recsys.dot('{1}'::real[], '{1}'::real[]); END $$;
SELECT is(current_setting('recsys.max_dim'), '4096', 'the cases run at the default, largest recsys.max_dim');

-- tiny interactions: 12 users x 8 items (the solves dominate: one k = 4096
-- system is ~25 Gflop); many items: 2,500 items (the initial item Gramian,
-- ~40 Gflop, dominates)
CREATE TEMP TABLE tiny AS SELECT u, i FROM generate_series(1, 12) u, generate_series(1, 8) i WHERE (u + i) % 3 <> 0;
CREATE TEMP TABLE wide AS SELECT (i % 7) + 1 AS u, i FROM generate_series(1, 2500) i;
CREATE TEMP TABLE vecs AS SELECT array_agg(((g * 7 + t) % 11)::real - 5) AS v
	FROM generate_series(1, 1200) g, generate_series(1, 4096) t GROUP BY g;
CREATE TEMP TABLE mm_rows AS SELECT v AS f, (row_number() OVER () % 2)::int AS y FROM vecs LIMIT 600;

-- run a statement under the statement_timeout set before the calling
-- statement (a timeout set inside a statement arms nothing); get its SQLSTATE
-- and the seconds from the timeout to the error (query_canceled is caught by
-- name)
CREATE FUNCTION pg_temp.cancel_latency(sql text, OUT state text, OUT latency float8)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := statement_timestamp();
	timeout float8 := extract(epoch FROM current_setting('statement_timeout')::interval);
BEGIN
	EXECUTE sql;
	state := 'finished';
	latency := extract(epoch FROM clock_timestamp() - t0) - timeout;
EXCEPTION WHEN query_canceled THEN
	state := SQLSTATE;
	latency := extract(epoch FROM clock_timestamp() - t0) - timeout;
END
$$;

CREATE TEMP TABLE latencies (what text, state text, latency float8);
SET statement_timeout = 500;
INSERT INTO latencies SELECT 'als cholesky, tiny data', * FROM pg_temp.cancel_latency(
	$$SELECT * FROM recsys.train_embeddings('c', 'tiny', 'u', 'i', dim => 4096, epochs => 5, options => '{"solver": "cholesky"}')$$);
RESET statement_timeout;
SET statement_timeout = 500;
INSERT INTO latencies SELECT 'als cg, tiny data', * FROM pg_temp.cancel_latency(
	$$SELECT * FROM recsys.train_embeddings('c', 'tiny', 'u', 'i', dim => 4096, epochs => 5, options => '{"solver": "cg"}')$$);
RESET statement_timeout;
-- on two threads: the backend's thread stops the other before the error
SET recsys.max_workers = 2;
SET statement_timeout = 500;
INSERT INTO latencies SELECT 'als cholesky, tiny data, 2 threads', * FROM pg_temp.cancel_latency(
	$$SELECT * FROM recsys.train_embeddings('c', 'tiny', 'u', 'i', dim => 4096, epochs => 5, options => '{"solver": "cholesky"}')$$);
RESET statement_timeout;
SET statement_timeout = 500;
INSERT INTO latencies SELECT 'als cg, tiny data, 2 threads', * FROM pg_temp.cancel_latency(
	$$SELECT * FROM recsys.train_embeddings('c', 'tiny', 'u', 'i', dim => 4096, epochs => 5, options => '{"solver": "cg"}')$$);
RESET statement_timeout;
RESET recsys.max_workers;
SET statement_timeout = 300;
INSERT INTO latencies SELECT 'als, initial item Gramian of 2,500 items', * FROM pg_temp.cancel_latency(
	$$SELECT * FROM recsys.train_embeddings('c', 'wide', 'u', 'i', dim => 4096, epochs => 5)$$);
RESET statement_timeout;
SET statement_timeout = 800;
INSERT INTO latencies SELECT 'als aggregate engine', * FROM pg_temp.cancel_latency(
	$$SELECT * FROM recsys.train_embeddings('c', 'tiny', 'u', 'i', dim => 4096, epochs => 5, options => '{"engine": "aggregate"}')$$);
RESET statement_timeout;
SET statement_timeout = 500;
INSERT INTO latencies SELECT 'sogram', * FROM pg_temp.cancel_latency(
	$$SELECT * FROM recsys.train_embeddings('c', 'wide', 'u', 'i', dim => 4096, epochs => 5, method => 'sogram')$$);
RESET statement_timeout;
SET statement_timeout = 300;
INSERT INTO latencies SELECT 'gramian aggregate over 1,200 rows', * FROM pg_temp.cancel_latency(
	$$SELECT recsys.gramian(v) FROM vecs$$);
RESET statement_timeout;
SET statement_timeout = 1500;
INSERT INTO latencies SELECT 'train_mmoe, one [4096, 4096] expert', * FROM pg_temp.cancel_latency(
	$$SELECT * FROM recsys.train_mmoe('cm', 'mm_rows', 'f', '{y}',
		'{"kind": "mmoe", "input_dim": 4096, "experts": {"count": 1, "hidden": [4096, 4096]},
		  "tasks": [{"name": "y", "type": "binary"}]}', epochs => 3, batch_size => 512)$$);
RESET statement_timeout;

SELECT diag(format('%s: %s after %s s', what, state, round(latency::numeric, 3))) FROM latencies ORDER BY what;
SELECT results_eq($$SELECT count(*) FILTER (WHERE state = '57014') FROM latencies$$,
	$$SELECT count(*) FROM latencies$$, 'every case ends with query_canceled');
SELECT is((SELECT array_agg(what ORDER BY what) FROM latencies WHERE latency >= 3), NULL,
	'every case stops within 3 s of the timeout at dim 4096');
SELECT is((SELECT count(*) FROM recsys.models WHERE name IN ('c', 'cm')), 0::bigint,
	'a cancelled training stores nothing');

SELECT * FROM finish();
ROLLBACK;
