-- 20M-interaction training with the cg solver (driven by scale.sh; psql
-- variables: dim, epochs).  Expects big_interactions(user_id, item_id, ts).
-- Prints seconds per epoch, the engine memory, the backend's peak resident
-- memory (VmHWM), and how long a statement_timeout in the middle of an epoch
-- takes to stop the training.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
ANALYZE big_interactions;
SELECT pg_backend_pid() AS pid \gset
CREATE TABLE big_results AS
	SELECT count(*) AS epochs, avg(seconds) AS sec_per_epoch, min(seconds) AS fastest
	FROM recsys.train_embeddings('big_cg', 'big_interactions', dim => :dim, epochs => :epochs,
		options => '{"solver": "cg"}');
\pset footer off
SELECT r.epochs, round(r.sec_per_epoch::numeric, 3) AS s_per_epoch, round(r.fastest::numeric, 3) AS fastest,
	round((SELECT avg((l->>'cpu_seconds')::numeric) FROM jsonb_array_elements(m.metrics->'log') l), 3) AS cpu_s_per_epoch,
	round((m.metrics->>'load_seconds')::numeric, 2) AS load_s, round((m.metrics->>'train_seconds')::numeric, 2) AS total_s,
	round((m.metrics->>'memory_bytes')::numeric / 1048576, 1) AS engine_mb,
	m.config->'n_users' AS users, m.config->'n_items' AS items, m.config->'n_interactions' AS pairs
FROM big_results r, recsys.models m WHERE m.name = 'big_cg';
\echo backend peak memory:
\setenv BACKEND_PID :pid
\! grep -E 'VmHWM|VmRSS' /proc/$BACKEND_PID/status
-- cancel: a statement_timeout that falls in the second epoch
SELECT ceil(1000 * ((m.metrics->>'load_seconds')::float8 + 1.5 * r.sec_per_epoch)) AS timeout_ms
FROM big_results r, recsys.models m WHERE m.name = 'big_cg' \gset
CREATE FUNCTION big_cancel(timeout_ms int, dim int, OUT state text, OUT late_seconds float8) LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	PERFORM * FROM recsys.train_embeddings('big_cancel', 'big_interactions', dim => dim, epochs => 100,
		options => '{"solver": "cg"}');
	state := 'not cancelled';
EXCEPTION WHEN query_canceled THEN
	state := 'cancelled';
	late_seconds := extract(epoch FROM clock_timestamp() - t0) - timeout_ms / 1000.0;
END
$$;
SET statement_timeout = :timeout_ms;
SELECT :timeout_ms AS statement_timeout_ms, state, round(late_seconds::numeric, 3) AS seconds_after_deadline
FROM big_cancel(:timeout_ms, :dim);
RESET statement_timeout;
SELECT count(*) AS versions_left_by_the_cancelled_run FROM recsys.models WHERE name = 'big_cancel';
