-- recsys.train_mmoe: a small run, then every bad input with its SQLSTATE
SET extra_float_digits = 0;
-- the NOTICE of each epoch carries its time: not shown here
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

CREATE TABLE tm (f real[], click float8, rating float8, dev int[], ctx real[], pos int);
INSERT INTO tm SELECT ARRAY[sin(i), cos(i), sin(2 * i)]::real[], (i % 3 = 0)::int, cos(i) * 2,
	ARRAY[i % 4], ARRAY[sin(3 * i)]::real[], CASE WHEN i % 5 = 0 THEN NULL ELSE i % 4 END
	FROM generate_series(1, 60) i;
CREATE TABLE tm_empty (LIKE tm);
CREATE TEMP TABLE cfg AS SELECT
	'{"kind": "mmoe", "input_dim": 3, "experts": {"count": 2, "hidden": [4]},
	  "tasks": [{"name": "click", "type": "binary"}, {"name": "rating", "type": "regression"}]}'::jsonb AS plain,
	'{"kind": "mmoe", "input_dim": 3, "experts": {"count": 3, "hidden": [4]}, "gate": {"type": "noisy_top_k", "k": 2},
	  "tasks": [{"name": "click", "type": "binary"}, {"name": "rating", "type": "regression"}],
	  "categorical": [{"name": "dev", "vocab": 4, "dim": 2}], "latent_cross": {"context_dim": 1},
	  "shallow_tower": {"position_buckets": 4}}'::jsonb AS full_cfg;

-- a run: one row per epoch, losses going down, a stored version
SELECT epoch, round(loss::numeric, 1) < 3 AS loss_ok, cardinality(task_losses) AS tasks,
	cardinality(log_vars) AS log_vars, validation IS NULL AS no_validation, seconds >= 0 AS timed
	FROM recsys.train_mmoe('tm1', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), epochs => 3, batch_size => 16);
SELECT name, version, kind, metrics -> 'training' ->> 'source' AS source,
	metrics -> 'training' ->> 'rows' AS rows, jsonb_array_length(metrics -> 'log') AS epochs
	FROM recsys.models WHERE name = 'tm1';
SELECT cardinality(recsys.predict('tm1', ARRAY[0.1, 0.2, 0.3]::real[])) AS outputs;
SELECT recsys.export_model('tm1') IS NOT NULL AS exported;

-- every option with the full config
SELECT count(*) AS epochs FROM recsys.train_mmoe('tm2', 'tm', 'f', '{click,rating}', (SELECT full_cfg FROM cfg),
	epochs => 2, loss_weighting => 'fixed', categorical_column => 'dev', context_column => 'ctx',
	display_position_column => 'pos', validation => 'tm',
	options => '{"task_weights": [1, 0.5], "expert_dropout": 0.1, "position_dropout": 0.2, "balance_weight": 0.05, "gate_noise": true, "patience": 3}');
SELECT jsonb_object_keys(validation) AS validation_keys FROM recsys.train_mmoe('tm2', 'tm', 'f', '{click,rating}', NULL,
	epochs => 1, categorical_column => 'dev', context_column => 'ctx', display_position_column => 'pos',
	validation => 'tm', options => '{"init_version": 1}') ORDER BY 1;

-- boolean labels are read as 0 and 1
CREATE TABLE tm_bool AS SELECT f, click = 1 AS click, rating FROM tm;
SELECT count(*) AS epochs FROM recsys.train_mmoe('tm3', 'tm_bool', 'f', '{click,rating}', (SELECT plain FROM cfg), epochs => 2);

-- arguments
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg))$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', NULL, '{click,rating}', (SELECT plain FROM cfg))$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click}', (SELECT plain FROM cfg))$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,NULL}', (SELECT plain FROM cfg))$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', NULL)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', '{"kind": "mmoe"}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), epochs => 0)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), batch_size => 0)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), learning_rate => 'NaN')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), loss_weighting => 'equal')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '{"learning_rate": 1}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '[1]')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '{"expert_dropout": 1.5}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '{"expert_dropout": "a"}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '{"task_weights": [1, 1]}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), loss_weighting => 'fixed', options => '{"task_weights": [1]}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '{"patience": 2}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '{"patience": 1.5}', validation => 'tm')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '{"position_dropout": 0.1}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '{"gate_noise": true}')$$);
-- train_mmoe's options go through the one option parser (src/store/options.c): its wording for types and ranges
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '{"gate_noise": 1}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), loss_weighting => 'fixed', options => '{"task_weights": "a"}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), loss_weighting => 'fixed', options => '{"task_weights": [1, -1]}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '{"record_gradients": null}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), options => '{"init_version": 9}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('tm1', 'tm', 'f', '{click,rating}', (SELECT full_cfg FROM cfg), options => '{"init_version": 1}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT full_cfg FROM cfg))$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT full_cfg FROM cfg), categorical_column => 'dev')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), categorical_column => 'dev')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), context_column => 'ctx')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}', (SELECT plain FROM cfg), display_position_column => 'pos')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'nope', '{click,rating}', (SELECT plain FROM cfg))$$);

-- data
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_empty', 'f', '{click,rating}', (SELECT plain FROM cfg))$$);
CREATE TABLE tm_bad AS SELECT * FROM tm;
UPDATE tm_bad SET click = 2 WHERE pos = 1;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_bad', 'f', '{click,rating}', (SELECT plain FROM cfg))$$);
UPDATE tm_bad SET click = 1, rating = 'Infinity' WHERE pos = 1;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_bad', 'f', '{click,rating}', (SELECT plain FROM cfg))$$);
UPDATE tm_bad SET rating = 0, f = ARRAY[1, 'NaN', 2]::real[] WHERE pos = 2;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_bad', 'f', '{click,rating}', (SELECT plain FROM cfg))$$);
UPDATE tm_bad SET f = ARRAY[1, 2]::real[] WHERE pos = 2;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_bad', 'f', '{click,rating}', (SELECT plain FROM cfg))$$);
UPDATE tm_bad SET f = NULL WHERE pos = 2;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_bad', 'f', '{click,rating}', (SELECT plain FROM cfg))$$);
UPDATE tm_bad SET f = ARRAY[1, NULL, 2]::real[] WHERE pos = 2;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_bad', 'f', '{click,rating}', (SELECT plain FROM cfg))$$);
TRUNCATE tm_bad;
INSERT INTO tm_bad SELECT * FROM tm;
UPDATE tm_bad SET dev = ARRAY[7] WHERE pos = 3;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_bad', 'f', '{click,rating}', (SELECT full_cfg FROM cfg), categorical_column => 'dev', context_column => 'ctx')$$);
UPDATE tm_bad SET dev = ARRAY[1, 2] WHERE pos = 3;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_bad', 'f', '{click,rating}', (SELECT full_cfg FROM cfg), categorical_column => 'dev', context_column => 'ctx')$$);
UPDATE tm_bad SET dev = ARRAY[1], ctx = ARRAY['Infinity']::real[] WHERE pos = 3;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_bad', 'f', '{click,rating}', (SELECT full_cfg FROM cfg), categorical_column => 'dev', context_column => 'ctx')$$);
UPDATE tm_bad SET ctx = ARRAY[1]::real[], pos = 9 WHERE pos = 3;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_bad', 'f', '{click,rating}', (SELECT full_cfg FROM cfg), categorical_column => 'dev', context_column => 'ctx', display_position_column => 'pos')$$);
-- rows with every label NULL train nothing but are accepted
UPDATE tm_bad SET click = NULL, rating = NULL, pos = 0 WHERE pos = 9;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_bad', 'f', '{click,rating}', (SELECT full_cfg FROM cfg), epochs => 1, categorical_column => 'dev', context_column => 'ctx', display_position_column => 'pos')$$);

-- memory bound
SET recsys.training_memory = '1MB';
CREATE TABLE tm_big AS SELECT f, click, rating FROM tm, generate_series(1, 700);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm_big', 'f', '{click,rating}', (SELECT plain FROM cfg), epochs => 1,
	options => '{"allow_contract_change": true}')$$);
-- the model counts too, and is refused before anything is allocated: 8 experts
-- [1024, 1024] (8.4M parameters, 16 bytes each) in 1 MB
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}',
	'{"kind": "mmoe", "input_dim": 3, "experts": {"count": 8, "hidden": [1024, 1024]},
	  "tasks": [{"name": "click", "type": "binary"}, {"name": "rating", "type": "regression"}]}', epochs => 1,
	options => '{"allow_contract_change": true}')$$);
RESET recsys.training_memory;
-- 1024 experts [4096, 4096]: 275 GB of weights, gradients and Adam moments, against the default 1 GB
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('x', 'tm', 'f', '{click,rating}',
	'{"kind": "mmoe", "input_dim": 3, "experts": {"count": 1024, "hidden": [4096, 4096]},
	  "tasks": [{"name": "click", "type": "binary"}, {"name": "rating", "type": "regression"}]}', epochs => 1,
	options => '{"allow_contract_change": true}')$$);

-- versions: tm1 1, tm2 2 (fresh, fine-tuned), tm3 1, x 1 (the run with unlabelled rows); nothing from failed runs
SELECT name, count(*) AS versions FROM recsys.models WHERE name IN ('tm1', 'tm2', 'tm3', 'x') GROUP BY name ORDER BY name;
