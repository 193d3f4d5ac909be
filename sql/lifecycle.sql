-- Versions in production: monotonic numbering, aliases and the serving
-- version of every serving function, promote and rollback (also under
-- concurrent scoring), the history, guarded contracts and kinds, retention,
-- the registry view, exclusions, the epoch whose weights are stored.
SET client_min_messages = warning;
SET extra_float_digits = 0;
\set SHOW_CONTEXT never

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

CREATE TABLE lc_plays AS
SELECT u AS user_id, (u * 7 + j * j) % 40 AS item_id, (u + j) % 5 + 1 AS rating
FROM generate_series(1, 60) u, generate_series(1, 8) j;
CREATE TABLE lc_rows AS
SELECT i, ARRAY[sin(i), cos(i)]::real[] AS x, (i % 3 = 0) AS click, ARRAY[i % 3]::int[] AS cat
FROM generate_series(1, 80) i;
CREATE TABLE lc_cfg AS SELECT
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 2, "hidden": [4]},
	  "tasks": [{"name": "click", "type": "binary", "tower": [2]}]}'::jsonb AS plain,
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 2, "hidden": [4]},
	  "categorical": [{"name": "dev", "vocab": 3, "dim": 2}],
	  "tasks": [{"name": "click", "type": "binary", "tower": [2]}]}'::jsonb AS with_cat;

-- 1. Monotonic versions: never given twice, dropped or not
SELECT count(*) FROM recsys.train_embeddings('lc_e', 'lc_plays', dim => 4, epochs => 1);
SELECT count(*) FROM recsys.train_embeddings('lc_e', 'lc_plays', dim => 8, epochs => 1);
SELECT recsys.drop_model('lc_e', 2);
SELECT count(*) FROM recsys.train_embeddings('lc_e', 'lc_plays', dim => 2, epochs => 1);
SELECT version, config->'dim' AS dim FROM recsys.models WHERE name = 'lc_e' ORDER BY version;
SELECT recsys.drop_model('lc_e');
SELECT count(*) FROM recsys.train_embeddings('lc_e', 'lc_plays', dim => 3, epochs => 1);
SELECT version, config->'dim' AS dim FROM recsys.models WHERE name = 'lc_e' ORDER BY version;
SELECT last_version FROM recsys.model_names WHERE name = 'lc_e';
-- a rolled-back training gives its number back (nothing was stored under it)
BEGIN;
SELECT count(*) FROM recsys.train_embeddings('lc_e', 'lc_plays', dim => 3, epochs => 1);
ROLLBACK;
BEGIN;
SELECT recsys.next_model_version('lc_e') AS next;
ROLLBACK;
-- nobody moves the counter back
SELECT pg_temp.try($$UPDATE recsys.model_names SET last_version = 1 WHERE name = 'lc_e'$$);

-- 2. Aliases: calls without a version serve the alias serving, else the newest
SELECT count(*) FROM recsys.train_embeddings('lc_e', 'lc_plays', dim => 5, epochs => 2);
SELECT recsys.resolve_model_version('lc_e') AS newest;
SELECT recsys.promote('lc_e', 4);
SELECT recsys.resolve_model_version('lc_e') AS serving, recsys.embedding_model_version('lc_e') AS embedding_serving;
SELECT recsys.set_alias('lc_e', 'canary', 5);
SELECT recsys.alias_version('lc_e', 'canary') AS canary;
-- every embeddings serving function: no version = the serving one, not the newest
CREATE TABLE lc_new AS SELECT u AS user_id, i AS item_id FROM generate_series(1, 3) u, generate_series(u, u + 4) i;
SELECT
	(SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend('lc_e', 7, 5))
		= (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend('lc_e', 7, 5, version => 4)) AS recommend,
	(SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend('lc_e', 7, 5))
		<> (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend('lc_e', 7, 5, version => 5)) AS not_newest,
	(SELECT array_agg(array[user_id, item_id] ORDER BY user_id, rank) FROM recsys.recommend_all('lc_e', 3))
		= (SELECT array_agg(array[user_id, item_id] ORDER BY user_id, rank) FROM recsys.recommend_all('lc_e', 3, version => 4)) AS recommend_all,
	recsys.fold_in('lc_e', '{1,2,3}') = recsys.fold_in('lc_e', '{1,2,3}', version => 4)
		AND array_length(recsys.fold_in('lc_e', '{1,2,3}'), 1) = 3 AS fold_in,
	(SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend_for_items('lc_e', '{1,2,3}', 5))
		= (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend_for_items('lc_e', '{1,2,3}', 5, version => 4)) AS recommend_for_items,
	(SELECT array_agg(array[user_id, item_id] ORDER BY user_id, rank) FROM recsys.recommend_all_for_items('lc_e', 'lc_new', k => 3))
		= (SELECT array_agg(array[user_id, item_id] ORDER BY user_id, rank) FROM recsys.recommend_all_for_items('lc_e', 'lc_new', k => 3, version => 4)) AS recommend_all_for_items,
	(SELECT array_length(embedding, 1) FROM recsys.user_embeddings('lc_e') LIMIT 1) = 3 AS user_embeddings,
	(SELECT array_length(embedding, 1) FROM recsys.item_embeddings('lc_e') LIMIT 1) = 3 AS item_embeddings,
	(SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend('lc_e', 7, 5, version => recsys.alias_version('lc_e', 'canary')))
		= (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend('lc_e', 7, 5, version => 5)) AS canary;

-- every MMoE serving function
SELECT count(*) FROM recsys.train_mmoe('lc_m', 'lc_rows', 'x', '{click}', (SELECT plain FROM lc_cfg), epochs => 2, seed => 1);
SELECT count(*) FROM recsys.train_mmoe('lc_m', 'lc_rows', 'x', '{click}', (SELECT plain FROM lc_cfg), epochs => 2, seed => 2,
	options => '{"promote": true}');
SELECT count(*) FROM recsys.train_mmoe('lc_m', 'lc_rows', 'x', '{click}', (SELECT plain FROM lc_cfg), epochs => 2, seed => 3);
SELECT version, aliases, serving FROM recsys.model_versions WHERE model = 'lc_m' ORDER BY version;
CREATE TABLE lc_cands AS SELECT i AS id, x, (i % 4) AS grp FROM lc_rows WHERE i <= 12;
CREATE FUNCTION pg_temp.mmoe_answers(v int) RETURNS text[] LANGUAGE sql AS $$
	SELECT ARRAY[
		(SELECT array_agg(recsys.predict('lc_m', x, version => v) ORDER BY id)::text FROM lc_cands),
		(SELECT array_agg(recsys.predict('lc_m', x::float8[], version => v) ORDER BY id)::text FROM lc_cands),
		(SELECT array_agg(recsys.predict('lc_m', x, 'click', version => v) ORDER BY id)::text FROM lc_cands),
		(SELECT array_agg(recsys.predict('lc_m', x::float8[], 'click', version => v) ORDER BY id)::text FROM lc_cands),
		(SELECT array_agg(recsys.gate_weights('lc_m', x, 'click', version => v) ORDER BY id)::text FROM lc_cands),
		(SELECT array_agg(s.scores ORDER BY s.i)::text FROM recsys.predict_batch('lc_m',
			(SELECT array_agg(x ORDER BY id) FROM lc_cands), version => v) s),
		(SELECT array_agg(s.mean ORDER BY s.task)::text FROM recsys.predict_mc('lc_m', '{0.5,0.5}'::real[], 4, version => v) s),
		(SELECT array_agg(t.scores ORDER BY t.id)::text FROM recsys.predict_table('lc_m', 'lc_cands', 'id', 'x', version => v) t),
		encode(sha256(recsys.export_model('lc_m', v)), 'hex')]
$$;
SELECT a.n, a.x = b.x AS serving, a.x <> c.x AS not_newest
FROM unnest(ARRAY[
		(SELECT array_agg(recsys.predict('lc_m', x) ORDER BY id)::text FROM lc_cands),
		(SELECT array_agg(recsys.predict('lc_m', x::float8[]) ORDER BY id)::text FROM lc_cands),
		(SELECT array_agg(recsys.predict('lc_m', x, 'click') ORDER BY id)::text FROM lc_cands),
		(SELECT array_agg(recsys.predict('lc_m', x::float8[], 'click') ORDER BY id)::text FROM lc_cands),
		(SELECT array_agg(recsys.gate_weights('lc_m', x, 'click') ORDER BY id)::text FROM lc_cands),
		(SELECT array_agg(s.scores ORDER BY s.i)::text FROM recsys.predict_batch('lc_m',
			(SELECT array_agg(x ORDER BY id) FROM lc_cands)) s),
		(SELECT array_agg(s.mean ORDER BY s.task)::text FROM recsys.predict_mc('lc_m', '{0.5,0.5}'::real[], 4) s),
		(SELECT array_agg(t.scores ORDER BY t.id)::text FROM recsys.predict_table('lc_m', 'lc_cands', 'id', 'x') t),
		encode(sha256(recsys.export_model('lc_m')), 'hex')])
	WITH ORDINALITY a(x, n)
JOIN unnest(pg_temp.mmoe_answers(2)) WITH ORDINALITY b(x, n) USING (n)
JOIN unnest(pg_temp.mmoe_answers(3)) WITH ORDINALITY c(x, n) USING (n)
ORDER BY n;
-- predict_top_k (no version argument): the serving version's ranking
SELECT (SELECT array_agg((r).item_id ORDER BY ord) FROM (SELECT recsys.predict_top_k('lc_m', x, id, 3, '{1}') AS t
		FROM lc_cands) s, unnest(s.t) WITH ORDINALITY r(item_id, score, ord))
	= (SELECT array_agg(id::bigint ORDER BY p DESC, id) FROM (SELECT id, (recsys.predict('lc_m', x, version => 2))[1] AS p
		FROM lc_cands ORDER BY 2 DESC, 1 LIMIT 3) s) AS predict_top_k_serves_version_2;
-- without the alias, the newest serves again
SELECT recsys.drop_alias('lc_m', 'serving');
SELECT (SELECT array_agg(recsys.predict('lc_m', x) ORDER BY id)::text FROM lc_cands) = (pg_temp.mmoe_answers(3))[1] AS newest_serves;
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT recsys.drop_alias('lc_m', 'serving')$$,
	$$SELECT recsys.alias_version('lc_m', 'serving')$$,
	$$SELECT recsys.set_alias('lc_m', 'bad alias', 1)$$,
	$$SELECT recsys.set_alias('lc_m', NULL, 1)$$,
	$$SELECT recsys.set_alias('lc_m', 'canary', NULL)$$,
	$$SELECT recsys.set_alias('lc_m', 'canary', 9)$$,
	$$SELECT recsys.promote('lc_nope', 1)$$,
	$$SELECT recsys.rollback('lc_m')$$]) q;

-- 3. promote and rollback: back along the serving history, skipping dropped versions
SELECT recsys.promote('lc_m', 1);
SELECT recsys.promote('lc_m', 2);
SELECT recsys.promote('lc_m', 3);
SELECT recsys.rollback('lc_m') AS back_to;
SELECT recsys.rollback('lc_m') AS back_to;
-- before version 1, version 2 served (until the alias was dropped)
SELECT recsys.rollback('lc_m') AS back_to;
SELECT pg_temp.try($$SELECT recsys.rollback('lc_m')$$);
SELECT recsys.promote('lc_m', 3);
SELECT recsys.rollback('lc_m') AS back_to;
SELECT recsys.promote('lc_m', 2);
SELECT recsys.promote('lc_m', 3);
-- a version under an alias is not dropped alone
SELECT pg_temp.try($$SELECT recsys.drop_model('lc_m', 3)$$);
SELECT recsys.set_alias('lc_m', 'serving', 2);
SELECT recsys.drop_model('lc_m', 3);
SELECT pg_temp.try($$SELECT recsys.rollback('lc_m')$$);
-- the history: who, what, which version, from which source
SELECT seq, event, version, alias, actor = current_user AS by_me, at <= now() AS at, detail
FROM recsys.model_events WHERE model = 'lc_m' ORDER BY seq;
-- nobody changes it, a superuser neither
SELECT pg_temp.try($$UPDATE recsys.model_events SET actor = 'nobody' WHERE model = 'lc_m'$$);

-- 4. Guarded contracts and kinds, checked before any work
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT * FROM recsys.train_mmoe('lc_m', 'lc_rows', 'x', '{click}', (SELECT with_cat FROM lc_cfg), epochs => 1, categorical_column => 'cat')$$,
	$$SELECT * FROM recsys.train_mmoe('lc_e', 'lc_rows', 'x', '{click}', (SELECT plain FROM lc_cfg), epochs => 1)$$,
	$$SELECT recsys.import_model('lc_e', recsys.export_model('lc_m', 1))$$,
	$$SELECT * FROM recsys.train_embeddings('lc_m', 'lc_plays', dim => 2)$$,
	$$SELECT * FROM recsys.train_mmoe('lc_m', 'lc_rows', 'x', '{click}', (SELECT plain FROM lc_cfg), epochs => 1, options => '{"promote": 1}')$$,
	$$SELECT * FROM recsys.train_embeddings('lc_e', 'lc_plays', dim => 2, options => '{"allow_contract_change": true}')$$,
	$$SELECT recsys.import_model('lc_m', recsys.export_model('lc_m', 1), NULL, '{"promot": true}')$$]) q;
SELECT max(version) AS unchanged FROM recsys.models WHERE name = 'lc_m';
-- forced: stored, yet the serving version keeps serving until promoted
SELECT count(*) FROM recsys.train_mmoe('lc_m', 'lc_rows', 'x', '{click}', (SELECT with_cat FROM lc_cfg), epochs => 1,
	categorical_column => 'cat', options => '{"allow_contract_change": true}');
SELECT version, serving, summary FROM recsys.model_versions WHERE model = 'lc_m' ORDER BY version;
SELECT pg_temp.try($$SELECT recsys.import_model('lc_m', recsys.export_model('lc_m', 4))$$);
SELECT recsys.import_model('lc_m', recsys.export_model('lc_m', 2), NULL, '{"promote": true}') AS imported;
SELECT recsys.resolve_model_version('lc_m') AS serving;

-- 5. Retention: the newest keep versions and every aliased one stay
SELECT count(*) FROM recsys.train_embeddings('lc_e', 'lc_plays', dim => 2, epochs => 1);
SELECT count(*) FROM recsys.train_embeddings('lc_e', 'lc_plays', dim => 2, epochs => 1);
SELECT count(*) FROM recsys.train_embeddings('lc_e', 'lc_plays', dim => 2, epochs => 1);
SELECT recsys.set_alias('lc_e', 'canary', 6);
SELECT version, aliases FROM recsys.model_versions WHERE model = 'lc_e' ORDER BY version;
SELECT recsys.prune_versions('lc_e', 1) AS pruned;
SELECT version, aliases FROM recsys.model_versions WHERE model = 'lc_e' ORDER BY version;
SELECT recsys.prune_versions('lc_e', 0) AS pruned;
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT recsys.prune_versions('lc_e', -1)$$,
	$$SELECT recsys.prune_versions('lc_e', NULL)$$,
	$$SELECT recsys.prune_versions('lc_nope', 1)$$]) q;
SELECT event, version, detail FROM recsys.model_events WHERE model = 'lc_e' AND event = 'dropped' ORDER BY seq;

-- owner rules: another role may read the registry, but neither move an
-- alias nor prune
DROP ROLE IF EXISTS lc_other;
CREATE ROLE lc_other;
GRANT USAGE ON SCHEMA recsys TO lc_other;
GRANT SELECT ON ALL TABLES IN SCHEMA recsys TO lc_other;
GRANT INSERT, UPDATE, DELETE ON recsys.model_names, recsys.models, recsys.user_vectors, recsys.item_vectors,
	recsys.model_aliases, recsys.model_events TO lc_other;
SET ROLE lc_other;
SELECT count(*) > 0 AS reads_registry FROM recsys.model_versions WHERE model = 'lc_e';
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT recsys.promote('lc_e', 6)$$,
	$$SELECT recsys.set_alias('lc_e', 'mine', 6)$$,
	$$SELECT recsys.drop_alias('lc_e', 'canary')$$,
	$$SELECT recsys.rollback('lc_e')$$,
	$$SELECT recsys.prune_versions('lc_e', 0)$$,
	$$SELECT recsys.log_model_event('lc_e', 'promoted', 6, 'serving', NULL)$$,
	$$INSERT INTO recsys.model_aliases VALUES ('lc_e', 'mine', 6)$$]) q;
-- direct writes reach no row
UPDATE recsys.model_aliases SET version = 6 WHERE model = 'lc_e';
DELETE FROM recsys.model_events WHERE model = 'lc_e';
RESET ROLE;
SELECT alias, version FROM recsys.model_aliases WHERE model = 'lc_e' ORDER BY alias;
SELECT count(*) AS events FROM recsys.model_events WHERE model = 'lc_e';

-- 6. Exclusions in each form, against the unexcluded ranking filtered by hand
SELECT recsys.drop_alias('lc_e', 'canary');
CREATE TABLE lc_low AS SELECT user_id, item_id FROM lc_plays WHERE rating <= 2;
CREATE TABLE lc_high AS SELECT user_id, item_id FROM lc_plays WHERE rating > 2;
SELECT count(*) FROM recsys.train_embeddings('lc_x', 'lc_high', dim => 4, epochs => 3);
SELECT
	(SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend('lc_x', 7, 5, true, NULL, '{1,2,3,22}'))
		= (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM (SELECT * FROM recsys.recommend('lc_x', 7, 40)
			WHERE item_id NOT IN (1, 2, 3, 22) ORDER BY score DESC, item_id LIMIT 5) s) AS recommend,
	(SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend('lc_x', 7, 5, true, NULL, exclude => NULL))
		= (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend('lc_x', 7, 5)) AS recommend_null,
	(SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend_for_items('lc_x', '{1,2}', 5, NULL, true, NULL, '{3,4,5}'))
		= (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM (SELECT * FROM recsys.recommend_for_items('lc_x', '{1,2}', 40)
			WHERE item_id NOT IN (3, 4, 5) ORDER BY score DESC, item_id LIMIT 5) s) AS recommend_for_items;
-- recommend_all: instead of exclude_seen, and in addition to it
SELECT
	(SELECT array_agg(array[user_id, item_id] ORDER BY user_id, rank) FROM recsys.recommend_all('lc_x', 4, NULL, false, NULL, 'lc_low'))
		= (SELECT array_agg(array[user_id, item_id] ORDER BY user_id, score DESC, item_id) FROM (
			SELECT r.*, row_number() OVER (PARTITION BY r.user_id ORDER BY r.score DESC, r.item_id) AS n
			FROM recsys.recommend_all('lc_x', 40, exclude_seen => false) r
			WHERE NOT EXISTS (SELECT FROM lc_low l WHERE l.user_id = r.user_id AND l.item_id = r.item_id)) s WHERE n <= 4) AS instead,
	(SELECT array_agg(array[user_id, item_id] ORDER BY user_id, rank) FROM recsys.recommend_all('lc_x', 4, NULL, true, NULL, 'lc_low'))
		= (SELECT array_agg(array[user_id, item_id] ORDER BY user_id, score DESC, item_id) FROM (
			SELECT r.*, row_number() OVER (PARTITION BY r.user_id ORDER BY r.score DESC, r.item_id) AS n
			FROM recsys.recommend_all('lc_x', 40) r
			WHERE NOT EXISTS (SELECT FROM lc_low l WHERE l.user_id = r.user_id AND l.item_id = r.item_id)) s WHERE n <= 4) AS in_addition,
	NOT EXISTS (SELECT FROM recsys.recommend_all('lc_x', 40, NULL, false, NULL, 'lc_plays') r
		JOIN lc_plays p USING (user_id, item_id)) AS all_played_excluded,
	(SELECT array_agg(array[user_id, item_id] ORDER BY user_id, rank) FROM recsys.recommend_all('lc_x', 4, '{3,9}', true, NULL, 'lc_low'))
		= (SELECT array_agg(array[user_id, item_id] ORDER BY user_id, rank) FROM recsys.recommend_all('lc_x', 4, NULL, true, NULL, 'lc_low')
			WHERE user_id IN (3, 9)) AS listed_users;
SELECT
	(SELECT array_agg(array[user_id, item_id] ORDER BY user_id, rank)
		FROM recsys.recommend_all_for_items('lc_x', 'lc_high', 'user_id', 'item_id', NULL, 4, false, NULL, 'lc_low'))
		= (SELECT array_agg(array[user_id, item_id] ORDER BY user_id, score DESC, item_id) FROM (
			SELECT r.*, row_number() OVER (PARTITION BY r.user_id ORDER BY r.score DESC, r.item_id) AS n
			FROM recsys.recommend_all_for_items('lc_x', 'lc_high', k => 40, exclude_seen => false) r
			WHERE NOT EXISTS (SELECT FROM lc_low l WHERE l.user_id = r.user_id AND l.item_id = r.item_id)) s WHERE n <= 4) AS all_for_items;
-- exclude relations: integer columns user_id and item_id; NULL pairs leave nothing out
CREATE TABLE lc_bad_ex (user_id text, item_id bigint);
CREATE TABLE lc_other_ex (uid bigint, iid bigint);
CREATE TABLE lc_null_ex AS SELECT NULL::int AS user_id, 1::smallint AS item_id;
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT * FROM recsys.recommend_all('lc_x', 4, NULL, true, NULL, 'lc_bad_ex')$$,
	$$SELECT * FROM recsys.recommend_all('lc_x', 4, NULL, true, NULL, 'lc_other_ex')$$,
	$$SELECT * FROM recsys.recommend_all('lc_x', 4, NULL, true, NULL, 'lc_nope_ex')$$,
	$$SELECT * FROM recsys.recommend('lc_x', 7, 5, true, NULL, '{1,NULL}')$$,
	$$SELECT * FROM recsys.recommend('lc_x', 7, 5, true, NULL, '{{1},{2}}')$$]) q;
SELECT (SELECT count(*) FROM recsys.recommend_all('lc_x', 4, NULL, true, NULL, 'lc_null_ex'))
	= (SELECT count(*) FROM recsys.recommend_all('lc_x', 4)) AS null_pairs_ignored;
-- the calls of 0.2.0 resolve as before, untyped arguments included
SELECT pg_temp.try($$SELECT * FROM recsys.recommend('lc_x', 1, NULL)$$);
PREPARE lc_untyped AS SELECT count(*) FROM recsys.recommend($1, $2, $3, $4, $5);
EXECUTE lc_untyped('lc_x', 7, 5, true, NULL);

-- 7. The stored weights are the reported epoch's: with patience the best one
CREATE TABLE lc_val AS SELECT i, x, NOT click AS click FROM lc_rows;
SELECT count(*) > 0 FROM recsys.train_mmoe('lc_p', 'lc_rows', 'x', '{click}', (SELECT plain FROM lc_cfg), epochs => 30,
	learning_rate => 0.05, batch_size => 8, validation => 'lc_val', options => '{"patience": 2}', seed => 4);
SELECT (metrics #>> '{training,stored_epoch}')::int = (metrics #>> '{training,best_epoch}')::int AS best_stored,
	(metrics #>> '{training,best_epoch}')::int < (metrics #>> '{training,epochs_run}')::int AS stopped_after_best,
	-- the stored model's validation log loss is the best epoch's
	abs((SELECT avg(-(CASE WHEN v.click THEN ln(p) ELSE ln(1 - p) END))
		FROM (SELECT v.click, (recsys.predict('lc_p', v.x))[1] AS p FROM lc_val v) v)
		- (metrics #> '{log}' -> ((metrics #>> '{training,best_epoch}')::int - 1) #>> '{validation,click,log_loss}')::float8) < 1e-5 AS same_loss
FROM recsys.models WHERE name = 'lc_p';
SELECT count(*) > 0 FROM recsys.train_mmoe('lc_p', 'lc_rows', 'x', '{click}', (SELECT plain FROM lc_cfg), epochs => 3,
	validation => 'lc_val', seed => 4);
SELECT (metrics #>> '{training,stored_epoch}')::int AS stored_epoch, (metrics #>> '{training,epochs_run}')::int AS epochs_run
FROM recsys.models WHERE name = 'lc_p' AND version = 2;

-- 8. The registry view
SELECT v.model, v.version, v.kind, v.aliases, v.serving, v.summary, v.epochs, v.final_loss > 0 AS loss, v.train_seconds >= 0 AS seconds,
	size_bytes = octet_length(m.weights) + (SELECT coalesce(sum(pg_column_size(u.embedding) + pg_column_size(u.seen)), 0)
		FROM recsys.user_vectors u WHERE u.model = v.model AND u.version = v.version)
		+ (SELECT coalesce(sum(pg_column_size(i.embedding)), 0) FROM recsys.item_vectors i
		WHERE i.model = v.model AND i.version = v.version) AS size, v.created_by = current_user AS by_me
FROM recsys.model_versions v JOIN recsys.models m ON m.name = v.model AND m.version = v.version
WHERE v.model LIKE 'lc\_%' ORDER BY v.model, v.version;

-- 9. Under concurrent scoring, a statement sees the old or the new version,
-- never a mix: pgbench scorers check every statement's answers while
-- another client promotes and rolls back (test/concurrency/alias_swap.sh)
SELECT count(*) FROM recsys.train_mmoe('lc_swap', 'lc_rows', 'x', '{click}', (SELECT plain FROM lc_cfg), epochs => 1, seed => 1);
SELECT count(*) FROM recsys.train_mmoe('lc_swap', 'lc_rows', 'x', '{click}', (SELECT plain FROM lc_cfg), epochs => 1, seed => 2);
SELECT count(*) FROM recsys.train_embeddings('lc_swap_emb', 'lc_plays', dim => 4, epochs => 1);
SELECT count(*) FROM recsys.train_embeddings('lc_swap_emb', 'lc_plays', dim => 6, epochs => 1);
SELECT recsys.promote('lc_swap', 1), recsys.promote('lc_swap_emb', 1);
CREATE TABLE public.lc_swap_answers AS
SELECT v, (SELECT array_agg((recsys.predict('lc_swap', x, version => v))[1] ORDER BY i) FROM lc_rows WHERE i <= 40) AS scores,
	(SELECT array_agg(item_id::real ORDER BY user_id, rank) FROM recsys.recommend_all('lc_swap_emb', 3, version => v)) AS recs
FROM generate_series(1, 2) v;
SELECT count(DISTINCT scores) = 2 AND count(DISTINCT recs) = 2 AS answers_differ FROM public.lc_swap_answers;
-- raise unless a statement's answers are all those of one version
CREATE FUNCTION public.lc_swap_match(s real[], answers real[][]) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	IF s IS DISTINCT FROM answers[1:1][:] AND s IS DISTINCT FROM answers[2:2][:] THEN
		RAISE EXCEPTION 'mixed answers';
	END IF;
	RETURN 1;
END
$$;
CREATE FUNCTION public.lc_swap_check() RETURNS int LANGUAGE sql AS $$
	SELECT public.lc_swap_match(ARRAY[s], (SELECT array_agg(a.scores ORDER BY a.v) FROM public.lc_swap_answers a))
	FROM (SELECT array_agg((recsys.predict('lc_swap', x))[1] ORDER BY i) AS s FROM public.lc_rows WHERE i <= 40) q
$$;
CREATE FUNCTION public.lc_swap_emb_check() RETURNS int LANGUAGE sql AS $$
	SELECT public.lc_swap_match(ARRAY[s], (SELECT array_agg(a.recs ORDER BY a.v) FROM public.lc_swap_answers a))
	FROM (SELECT array_agg(item_id::real ORDER BY user_id, rank) AS s FROM recsys.recommend_all('lc_swap_emb', 3)) q
$$;
SELECT public.lc_swap_check(), public.lc_swap_emb_check();
SELECT current_database() AS lc_db \gset
\setenv LC_DB :lc_db
\! bash test/concurrency/alias_swap.sh
SELECT count(*) > 4 AS moved FROM recsys.model_events WHERE model = 'lc_swap' AND alias = 'serving';
-- the checks do fail on a mix: a statement whose rows come from two versions
SELECT pg_temp.try($$SELECT public.lc_swap_match(ARRAY[s], (SELECT array_agg(a.scores ORDER BY a.v) FROM public.lc_swap_answers a))
	FROM (SELECT array_agg((recsys.predict('lc_swap', x, version => 1 + (i % 2)))[1] ORDER BY i) AS s FROM lc_rows WHERE i <= 40) q$$);

DROP FUNCTION public.lc_swap_check(), public.lc_swap_emb_check(), public.lc_swap_match(real[], real[][]);
DROP TABLE public.lc_swap_answers;
SELECT recsys.drop_model(name) FROM recsys.model_names WHERE name LIKE 'lc\_%' ORDER BY name;
REVOKE ALL ON ALL TABLES IN SCHEMA recsys FROM lc_other;
REVOKE ALL ON SCHEMA recsys FROM lc_other;
DROP ROLE lc_other;
