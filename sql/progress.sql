-- Progress of trainings: the setting, the phases each engine and method
-- reports (recsys.debug_progress records them with the work done of the
-- total at each phase's end), and recsys.training_progress() without
-- shared_preload_libraries (test/harness/progress.sh runs a preloaded
-- cluster with two sessions)
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
	-- a setting's range as PostgreSQL 15 words it (17 on: "(0 s .. 86400 s)")
	msg := regexp_replace(msg, '\((-?[0-9]+) s \.\. (-?[0-9]+) s\)$', '(\1 .. \2)');
	RETURN 'ERROR:  ' || SQLSTATE || ': ' || msg
		|| CASE WHEN detail <> '' THEN E'\nDETAIL:  ' || detail ELSE '' END
		|| CASE WHEN hint <> '' THEN E'\nHINT:  ' || hint ELSE '' END;
END
$$;

-- the setting: seconds, 0 = off
SELECT recsys.dot('{1}'::real[], '{1}'::real[]) AS library_loaded;
SHOW recsys.progress_interval;
SET recsys.progress_interval = '1min';
SHOW recsys.progress_interval;
SELECT pg_temp.try($$SET recsys.progress_interval = -1$$);
RESET recsys.progress_interval;

-- without shared_preload_libraries other sessions cannot be seen: a clear error
SELECT pg_temp.try($$SELECT * FROM recsys.training_progress()$$);

-- the phases of each engine and method, with the work done of the total at their end
CREATE TABLE pr_plays (user_id bigint, item_id bigint);
INSERT INTO pr_plays SELECT u, i FROM generate_series(1, 30) u, generate_series(1, 12) i WHERE (u * 7 + i * 3) % 5 < 2;
SELECT count(DISTINCT user_id) AS users, count(DISTINCT item_id) AS items, count(*) AS rows FROM pr_plays;
SET recsys.debug_progress = on;
CREATE FUNCTION pg_temp.phases(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
	SET recsys.debug_progress_report = '';
	EXECUTE q;
	RETURN QUERY SELECT unnest(string_to_array(current_setting('recsys.debug_progress_report'), ','));
END
$$;
SELECT pg_temp.phases($$SELECT * FROM recsys.train_embeddings('pr_emb', 'pr_plays', dim => 3, epochs => 2)$$) AS als_memory_cg;
SELECT pg_temp.phases($$SELECT * FROM recsys.train_embeddings('pr_emb', 'pr_plays', dim => 3, epochs => 1, options => '{"solver": "cholesky"}')$$) AS als_memory_cholesky;
SELECT pg_temp.phases($$SELECT * FROM recsys.train_embeddings('pr_emb', 'pr_plays', dim => 3, epochs => 2, options => '{"engine": "aggregate"}')$$) AS als_aggregate;
SELECT pg_temp.phases($$SELECT * FROM recsys.train_embeddings('pr_emb', 'pr_plays', dim => 3, method => 'sogram', epochs => 2)$$) AS sogram;
SELECT pg_temp.phases($$SELECT * FROM recsys.train_embeddings('pr_emb', 'pr_plays', dim => 3, method => 'sagram', epochs => 1)$$) AS sagram;
SELECT pg_temp.phases($$SELECT * FROM recsys.train_embeddings('pr_emb', 'pr_plays', dim => 3, method => 'sampled', epochs => 1)$$) AS sampled;
SELECT pg_temp.phases($$SELECT * FROM recsys.train_embeddings('pr_ease', 'pr_plays', method => 'ease', options => '{"l2": 10}')$$) AS ease;
CREATE TABLE pr_rows AS SELECT ARRAY[sin(g), cos(g)]::real[] AS f, (g % 2)::float8 AS click FROM generate_series(1, 40) g;
CREATE TABLE pr_val AS SELECT ARRAY[sin(g), cos(g)]::real[] AS f, (g % 2)::float8 AS click FROM generate_series(41, 50) g;
SELECT pg_temp.phases($$SELECT * FROM recsys.train_mmoe('pr_mmoe', 'pr_rows', 'f', '{click}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "click", "type": "binary"}]}',
	epochs => 2, batch_size => 16, validation => 'pr_val')$$) AS mmoe;
-- a training that fails leaves nothing behind; the next one starts afresh
SELECT pg_temp.try($$SELECT * FROM recsys.train_embeddings('pr_emb', 'pr_plays', dim => 3, epochs => 1, options => '{"bogus": 1}')$$);
SELECT pg_temp.phases($$SELECT * FROM recsys.train_embeddings('pr_emb', 'pr_plays', dim => 2, epochs => 1)$$) AS after_error;
RESET recsys.debug_progress;
SELECT recsys.drop_model('pr_emb') AS dropped, recsys.drop_model('pr_mmoe') AS dropped_mmoe,
	recsys.drop_model('pr_ease') AS dropped_ease;
