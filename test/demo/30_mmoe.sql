-- Demo part 3: a PyTorch MMoE ranker stored in the database, scoring candidate rows
\pset footer off
SET client_min_messages = warning;
-- the client uploads the file: psql reads it (base64) into a variable, the
-- server decodes it; a driver would pass the bytes as a bytea parameter
\set weights `base64 -w0 test/demo/ranker.safetensors`

\echo '== import a PyTorch MMoE (safetensors, config in __metadata__.recsys) as model "ranker"'
SELECT recsys.import_model('ranker', decode(:'weights', 'base64')) AS version;
SELECT name, version, kind, config -> 'experts' AS experts, config -> 'gate' AS gate,
       jsonb_path_query_array(config, '$.tasks[*].name') AS tasks, octet_length(weights) AS bytes
FROM recsys.models WHERE name = 'ranker';

\echo '== 200 candidate items for each of 3 users (8 dense features, a device id)'
CREATE TABLE demo_candidates AS
	SELECT u AS user_id, i AS item_id, (u + i) % 3 AS device,
		(SELECT array_agg(round(sin(u * 13 + i * 7 + j)::numeric, 3)::real) FROM generate_series(1, 8) j) AS features
	FROM generate_series(1, 3) u, generate_series(1, 200) i;

\echo '== top 5 for user 2 by 0.7 * p(click) + 0.3 * watch_time, scored row by row'
SELECT item_id, round(p[1]::numeric, 3) AS p_click, round(p[2]::numeric, 3) AS watch_time,
       round((p[1] * 0.7 + p[2] * 0.3)::numeric, 3) AS score
FROM (SELECT item_id, recsys.predict('ranker', features, ARRAY[device]) AS p
      FROM demo_candidates WHERE user_id = 2) s
ORDER BY score DESC LIMIT 5;

\echo '== the same ranking through the batched path (one call scores the 200 candidates with sgemm)'
SELECT b.ids[s.i] AS item_id, round((s.scores[1] * 0.7 + s.scores[2] * 0.3)::numeric, 3) AS score
FROM (SELECT array_agg(item_id ORDER BY item_id) AS ids, array_agg(features ORDER BY item_id) AS f,
             array_agg(ARRAY[device] ORDER BY item_id) AS d
      FROM demo_candidates WHERE user_id = 2) b,
     LATERAL recsys.predict_batch('ranker', b.f, b.d) s
ORDER BY score DESC LIMIT 5;

\echo '== which experts the click gate picks (noisy top-2, no noise at serving) for item 1'
SELECT recsys.gate_weights('ranker', features, 'click', ARRAY[device]) AS click_gate,
       recsys.gate_weights('ranker', features, 'watch_time', ARRAY[device]) AS watch_gate
FROM demo_candidates WHERE user_id = 2 AND item_id = 1;

\echo '== position bias: the shallow tower at position 0, position 9 and unknown (serving)'
SELECT round(recsys.predict('ranker', features, 'click', ARRAY[device], NULL, 0)::numeric, 4) AS at_pos_0,
       round(recsys.predict('ranker', features, 'click', ARRAY[device], NULL, 9)::numeric, 4) AS at_pos_9,
       round(recsys.predict('ranker', features, 'click', ARRAY[device])::numeric, 4) AS unknown
FROM demo_candidates WHERE user_id = 2 AND item_id = 1;

\echo '== MC-dropout uncertainty (dropout 0.1 from the config, 64 passes)'
SELECT task, round(mean::numeric, 4) AS mean, variance
FROM demo_candidates c, recsys.predict_mc('ranker', c.features, 64, 1, ARRAY[c.device])
WHERE user_id = 2 AND item_id = 1;

\echo '== export and re-import: version 2 scores exactly like version 1'
SELECT recsys.import_model('ranker', recsys.export_model('ranker', 1)) AS version;
SELECT count(*) AS candidates,
       count(*) FILTER (WHERE recsys.predict('ranker', features, ARRAY[device], version => 1)
                            = recsys.predict('ranker', features, ARRAY[device], version => 2)) AS identical
FROM demo_candidates;
SELECT name, version, bytes > 0 AS cached FROM recsys.model_cache() ORDER BY version;

\echo '== top 3 per user by 0.7 * p(click) + 0.3 * watch_time, scored in blocks (predict_top_k)'
SELECT user_id, (t).item_id, round((t).score::numeric, 4) AS score
FROM (SELECT user_id, unnest(recsys.predict_top_k('ranker', features, ARRAY[device], item_id::bigint, 3, '{0.7,0.3}')) AS t
	FROM demo_candidates GROUP BY user_id) s
ORDER BY user_id, score DESC;

\echo '== train a small MMoE in SQL on labels derived from the stored ranker (uncertainty weighting)'
CREATE TABLE demo_labels AS
	SELECT c.features, ARRAY[c.device] AS device,
		(recsys.predict('ranker', c.features, 'click', ARRAY[c.device]) > 0.5)::int AS click,
		recsys.predict('ranker', c.features, 'watch_time', ARRAY[c.device]) AS watch_time
	FROM demo_candidates c;
SELECT epoch, round(loss::numeric, 4) AS loss,
       (SELECT array_agg(round(x::numeric, 3)) FROM unnest(log_vars) x) AS log_vars
FROM recsys.train_mmoe('demo_trained', 'demo_labels', 'features', '{click,watch_time}',
	'{"kind": "mmoe", "input_dim": 8, "experts": {"count": 4, "hidden": [16]},
	  "tasks": [{"name": "click", "type": "binary", "tower": [8]}, {"name": "watch_time", "type": "regression"}],
	  "categorical": [{"name": "device", "vocab": 3, "dim": 2}]}',
	epochs => 5, batch_size => 32, learning_rate => 0.01, categorical_column => 'device');
