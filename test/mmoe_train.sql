-- recsys.train_mmoe against PyTorch (test/ref/mmoe_train.py): one training step with
-- every option on (loss, every gradient, the Adam update), several steps (the loss
-- curve), serving the trained model, then each option, determinism, validation metrics,
-- early stopping, provenance and cancellation.
\set QUIET 1
SET client_min_messages = warning;
\ir ref/out/mmoe_train_ref.sql

SELECT plan(38);

-- max abs error between two arrays (infinite if the lengths differ, so that max() over rows sees it)
CREATE FUNCTION pg_temp.max_abs_diff(a float8[], b float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN cardinality(a) = cardinality(b)
		THEN (SELECT coalesce(max(abs(x - y)), 0) FROM unnest(a, b) u(x, y)) ELSE 'Infinity' END
$$;

-- one F32 tensor of a safetensors file, decoded from its bits (NULL if absent)
CREATE FUNCTION pg_temp.st_tensor(b bytea, tensor text) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	n bigint := 0;
	hdr jsonb;
	info jsonb;
	base int;
	cnt int;
	bits bigint;
	e int;
	mant bigint;
	v float8;
	res float8[] := '{}';
BEGIN
	FOR i IN 0..7 LOOP
		n := n + (get_byte(b, i)::bigint << (8 * i));
	END LOOP;
	hdr := convert_from(substring(b FROM 9 FOR n::int), 'UTF8')::jsonb;
	info := hdr -> tensor;
	IF info IS NULL THEN
		RETURN NULL;
	END IF;
	IF info ->> 'dtype' <> 'F32' THEN
		RAISE EXCEPTION 'tensor % is %', tensor, info ->> 'dtype';
	END IF;
	base := 8 + n::int + (info -> 'data_offsets' ->> 0)::int;
	cnt := ((info -> 'data_offsets' ->> 1)::int - (info -> 'data_offsets' ->> 0)::int) / 4;
	FOR j IN 0..cnt - 1 LOOP
		bits := get_byte(b, base + 4 * j)::bigint | (get_byte(b, base + 4 * j + 1)::bigint << 8)
			| (get_byte(b, base + 4 * j + 2)::bigint << 16) | (get_byte(b, base + 4 * j + 3)::bigint << 24);
		e := ((bits >> 23) & 255)::int;
		mant := bits & 8388607;
		v := CASE WHEN e = 0 THEN mant * power(2::float8, -149)
			ELSE (1 + mant / 8388608.0::float8) * power(2::float8, e - 127) END;
		res := res || CASE WHEN (bits >> 31) = 1 THEN -v ELSE v END;
	END LOOP;
	RETURN res;
END
$$;

-- train model 'p' from version 1 (the PyTorch initial weights) as reference run r does
CREATE TEMP TABLE run_out (run text, version int, epoch int, loss float8, task_losses float8[],
	log_vars float8[], validation jsonb, seconds float8);
CREATE FUNCTION pg_temp.train_run(r text, epochs int, extra jsonb DEFAULT '{}') RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	o jsonb;
	w text;
BEGIN
	SELECT options, weighting INTO o, w FROM mt_runs WHERE run = r;
	INSERT INTO run_out
		SELECT r, (SELECT max(version) + 1 FROM recsys.models WHERE name = 'p'), t.*
		FROM recsys.train_mmoe('p', 'mt_rows', 'f', '{y1,y2}', NULL, epochs => epochs, batch_size => 64,
			learning_rate => (SELECT lr FROM mt_ref), loss_weighting => w, categorical_column => 'cat',
			context_column => 'ctx', display_position_column => 'pos',
			options => o || '{"init_version": 1}' || extra, seed => (SELECT seed FROM mt_ref)) t;
	RETURN (SELECT max(version) FROM recsys.models WHERE name = 'p');
END
$$;

SELECT is(recsys.import_model('p', weights, config), 1, 'PyTorch initial weights imported as version 1')
	FROM mt_ref;

-- One step, every option on
SELECT is(pg_temp.train_run('all', 1, '{"record_gradients": true}'), 2, 'one training step stored as version 2');
SELECT cmp_ok(abs(o.loss - s.loss), '<', 1e-5::float8, 'one step: loss matches PyTorch (uncertainty weighting, balance loss)')
	FROM run_out o JOIN mt_steps s USING (run, epoch) WHERE o.version = 2;
SELECT cmp_ok(pg_temp.max_abs_diff(o.task_losses, s.task_losses), '<', 1e-5::float8,
	'one step: per-task losses (NULL labels left out) match PyTorch')
	FROM run_out o JOIN mt_steps s USING (run, epoch) WHERE o.version = 2;
SELECT is((SELECT count(*)::int FROM jsonb_object_keys((SELECT metrics -> 'first_step_gradients'
		FROM recsys.models WHERE name = 'p' AND version = 2))),
	(SELECT count(*)::int FROM mt_grads WHERE run = 'all'), 'one step: a gradient for every tensor');
SELECT is((SELECT count(*)::int FROM mt_grads g, recsys.models m
		WHERE g.run = 'all' AND m.name = 'p' AND m.version = 2
		AND pg_temp.max_abs_diff(g.grad, ARRAY(SELECT jsonb_array_elements_text(
			m.metrics -> 'first_step_gradients' -> g.name)::float8)) < 1e-5),
	(SELECT count(*)::int FROM mt_grads WHERE run = 'all'),
	'one step: every gradient (experts, gates, noise, towers, embeddings, latent cross, shallow tower, log variances) matches PyTorch to 1e-5');
SELECT cmp_ok((SELECT max(abs(x)) FROM recsys.models m,
		LATERAL jsonb_each(m.metrics -> 'first_step_gradients') g(name, v),
		LATERAL jsonb_array_elements_text(g.v) x0, LATERAL CAST(x0 AS float8) x
		WHERE m.name = 'p' AND m.version = 2 AND g.name LIKE 'gates.%.noise.weight'), '>', 1e-6::float8,
	'one step: the noise weights of the gates get gradients');
SELECT is((SELECT count(*)::int FROM mt_params p, recsys.models m
		WHERE p.run = 'all' AND p.after_epoch = 1 AND m.name = 'p' AND m.version = 2
		AND pg_temp.max_abs_diff(p.value, pg_temp.st_tensor(m.weights, p.name)) < 1e-5),
	(SELECT count(*)::int FROM mt_params WHERE run = 'all' AND after_epoch = 1),
	'one step: every stored tensor after the Adam update matches PyTorch to 1e-5');
SELECT cmp_ok(pg_temp.max_abs_diff(o.log_vars, s.log_vars), '<', 1e-5::float8,
	'one step: log variances after the update match PyTorch')
	FROM run_out o JOIN mt_steps s USING (run, epoch) WHERE o.version = 2;

-- Several steps: the loss curve and the final weights
SELECT is(pg_temp.train_run('all', 6), 3, 'six steps stored as version 3');
SELECT cmp_ok((SELECT CASE WHEN count(*) = 6 THEN max(abs(o.loss - s.loss)) END FROM run_out o JOIN mt_steps s USING (run, epoch)
		WHERE o.version = 3), '<', 1e-5::float8, 'six steps follow PyTorch''s loss curve');
SELECT is((SELECT count(*)::int FROM run_out WHERE version = 3), 6, 'one row per epoch');
SELECT cmp_ok((SELECT max(pg_temp.max_abs_diff(p.value, pg_temp.st_tensor(m.weights, p.name)))
		FROM mt_params p, recsys.models m
		WHERE p.run = 'all' AND p.after_epoch = 6 AND m.name = 'p' AND m.version = 3), '<', 1e-4::float8,
	'six steps: stored tensors match PyTorch''s');
SELECT cmp_ok((SELECT CASE WHEN count(*) = 40 THEN max(pg_temp.max_abs_diff(recsys.predict('p', r.f, r.cat, r.ctx, r.pos, version => 3)::float8[],
		s.scores)) END FROM mt_rows r JOIN mt_scores s ON s.i = r.i AND s.run = 'all'), '<', 1e-4::float8,
	'the trained model serves through predict like PyTorch''s trained module');

-- The trained model is an ordinary stored model
SELECT cmp_ok((SELECT CASE WHEN count(*) = 80 THEN max(greatest(abs(m.mean - c.mean[m.t]), abs(m.variance - c.variance[m.t]))) END
		FROM mt_rows r JOIN mt_mc c ON c.i = r.i,
		LATERAL recsys.predict_mc('p', r.f, 16, 1, r.cat, r.ctx, r.pos, version => 3) WITH ORDINALITY m(task, mean, variance, t)),
	'<', 1e-4::float8, 'predict_mc of the trained model matches PyTorch''s with the same dropout masks (16 samples, two tasks per row)');
SELECT cmp_ok((SELECT max(abs(s - 1)) FROM mt_rows r, LATERAL (SELECT sum(x) AS s
		FROM unnest(recsys.gate_weights('p', r.f, 'click', r.cat, version => 3)) x) g), '<', 1e-5::float8,
	'gate_weights of the trained model sum to 1');
SELECT is(recsys.import_model('p_copy', recsys.export_model('p', 3)), 1, 'the exported trained model imports again');
SELECT is(recsys.export_model('p_copy'), recsys.export_model('p', 3), '... and exports to the same bytes');

-- Fixed weighting
SELECT is(pg_temp.train_run('fixed', 3, '{"record_gradients": true}'), 4, 'fixed weighting stored as version 4');
SELECT cmp_ok((SELECT max(abs(o.loss - s.loss)) FROM run_out o JOIN mt_steps s USING (run, epoch)
		WHERE o.version = 4 AND o.epoch = 1), '<', 1e-5::float8, 'fixed weighting: loss matches PyTorch');
SELECT is((SELECT count(*)::int FROM mt_grads g, recsys.models m
		WHERE g.run = 'fixed' AND m.name = 'p' AND m.version = 4 AND g.name <> 'log_vars'
		AND pg_temp.max_abs_diff(g.grad, ARRAY(SELECT jsonb_array_elements_text(
			m.metrics -> 'first_step_gradients' -> g.name)::float8)) < 1e-5),
	(SELECT count(*)::int FROM mt_grads WHERE run = 'fixed' AND name <> 'log_vars'),
	'fixed weighting: every gradient matches PyTorch');
SELECT cmp_ok((SELECT max(abs(o.loss - s.loss)) FROM run_out o JOIN mt_steps s USING (run, epoch)
		WHERE o.version = 4), '<', 1e-5::float8, 'fixed weighting: loss curve matches PyTorch');
SELECT ok((SELECT bool_and(log_vars IS NULL) FROM run_out WHERE version = 4), 'fixed weighting reports no log variances');

-- Options one at a time (fresh weights, same seed)
CREATE TEMP TABLE opt_runs (name text, version int, loss1 float8);
CREATE FUNCTION pg_temp.opt_run(label text, o jsonb, s bigint DEFAULT 3) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO opt_runs
		SELECT label, (SELECT max(version) FROM recsys.models WHERE name = 'o'),
			(array_agg(t.loss ORDER BY t.epoch))[1]
		FROM recsys.train_mmoe('o', 'mt_rows', 'f', '{y1,y2}', (SELECT config FROM mt_ref), epochs => 3,
			batch_size => 16, learning_rate => 0.01, categorical_column => 'cat', context_column => 'ctx',
			display_position_column => 'pos', options => o, seed => s) t;
	UPDATE opt_runs SET version = (SELECT max(version) FROM recsys.models WHERE name = 'o') WHERE name = label;
END
$$;
SELECT pg_temp.opt_run('base', '{}');
SELECT pg_temp.opt_run('base_again', '{}');
SELECT pg_temp.opt_run('other_seed', '{}', 4);
SELECT pg_temp.opt_run('no_noise', '{"gate_noise": false}');
SELECT pg_temp.opt_run('balance0', '{"balance_weight": 0}');
SELECT pg_temp.opt_run('balance1', '{"balance_weight": 1}');
SELECT pg_temp.opt_run('all_experts_dropped', '{"expert_dropout": 0.99}');
SELECT pg_temp.opt_run('positions_dropped', '{"position_dropout": 1}');

CREATE FUNCTION pg_temp.w(label text) RETURNS bytea LANGUAGE sql AS $$
	SELECT m.weights FROM recsys.models m JOIN opt_runs o ON o.version = m.version
	WHERE m.name = 'o' AND o.name = label
$$;
SELECT ok(pg_temp.w('base') = pg_temp.w('base_again'), 'the same seed gives byte-identical weights');
SELECT ok(pg_temp.w('base') <> pg_temp.w('other_seed'), 'another seed gives other weights');
SELECT ok(pg_temp.w('base') <> pg_temp.w('no_noise'), 'gate noise changes training (options.gate_noise)');
SELECT cmp_ok((SELECT loss1 FROM opt_runs WHERE name = 'balance1') - (SELECT loss1 FROM opt_runs WHERE name = 'balance0'),
	'>', 1e-6::float8, 'the load-balancing loss adds to the objective (options.balance_weight)');
SELECT ok((SELECT bool_and(x = x AND abs(x) < 1e30) FROM mt_rows r,
		unnest(recsys.predict('o', r.f, r.cat, r.ctx, r.pos,
			version => (SELECT version FROM opt_runs WHERE name = 'all_experts_dropped'))) x),
	'expert dropout that drops every expert of a row keeps the gate (finite model)');
SELECT is(pg_temp.max_abs_diff(
		(pg_temp.st_tensor(pg_temp.w('positions_dropped'), 'shallow.position.weight'))[1:10],
		ARRAY(SELECT 0::float8 FROM generate_series(1, 10))), 0::float8,
	'position_dropout 1 sends every position to the missing bucket: position rows stay untrained');
SELECT cmp_ok((SELECT max(abs(x)) FROM unnest((pg_temp.st_tensor(pg_temp.w('positions_dropped'),
		'shallow.position.weight'))[11:12]) x), '>', 1e-4::float8, '... and the missing bucket trains');

-- Validation metrics against SQL over predict, early stopping keeps the best epoch
CREATE TEMP TABLE mt_val AS SELECT i, f, cat, ctx, pos, 1 - y1 AS y1, -y2 AS y2 FROM mt_rows;
CREATE TEMP TABLE val_out AS
	SELECT * FROM recsys.train_mmoe('v', 'mt_rows', 'f', '{y1,y2}', (SELECT config FROM mt_ref),
		epochs => 40, batch_size => 8, learning_rate => 0.02, categorical_column => 'cat',
		context_column => 'ctx', display_position_column => 'pos', validation => 'mt_val',
		options => '{"patience": 2}', seed => 1);
CREATE TEMP TABLE val_scores AS
	SELECT v.y1, v.y2, recsys.predict('v', v.f, v.cat, v.ctx, v.pos) AS p FROM mt_val v;
SELECT ok((SELECT count(*) FROM val_out) < 40 AND (SELECT count(*) FROM val_out) =
		(SELECT (metrics -> 'training' ->> 'best_epoch')::int + 2 FROM recsys.models WHERE name = 'v'),
	'patience stops two epochs after the best validation loss');
SELECT cmp_ok(abs((SELECT (validation -> 'click' ->> 'auc')::float8 FROM val_out
		WHERE epoch = (SELECT (metrics -> 'training' ->> 'best_epoch')::int FROM recsys.models WHERE name = 'v'))
	- (SELECT avg(CASE WHEN a.p[1] > b.p[1] THEN 1 WHEN a.p[1] = b.p[1] THEN 0.5 ELSE 0 END)
		FROM val_scores a, val_scores b WHERE a.y1 = 1 AND b.y1 = 0)), '<', 1e-6::float8,
	'the stored model is the best epoch''s: its AUC over predict equals that epoch''s reported AUC');
SELECT cmp_ok(abs((SELECT (validation -> 'rating' ->> 'rmse')::float8 FROM val_out
		WHERE epoch = (SELECT (metrics -> 'training' ->> 'best_epoch')::int FROM recsys.models WHERE name = 'v'))
	- (SELECT sqrt(avg((p[2] - y2) ^ 2)) FROM val_scores WHERE y2 IS NOT NULL)), '<', 1e-5::float8,
	'reported validation RMSE equals RMSE over predict');
SELECT cmp_ok(abs((SELECT (validation -> 'click' ->> 'log_loss')::float8 FROM val_out
		WHERE epoch = (SELECT (metrics -> 'training' ->> 'best_epoch')::int FROM recsys.models WHERE name = 'v'))
	- (SELECT avg(-(y1 * ln(p[1]) + (1 - y1) * ln(1 - p[1]))) FROM val_scores WHERE y1 IS NOT NULL)), '<', 1e-5::float8,
	'reported validation log loss equals log loss over predict');

-- Provenance and log
SELECT is((SELECT metrics -> 'training' ->> 'source' FROM recsys.models WHERE name = 'v'),
	(SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = 'mt_rows'::regclass), 'metrics name the schema-qualified source');
SELECT is((SELECT jsonb_array_length(metrics -> 'log') FROM recsys.models WHERE name = 'v'),
	(SELECT count(*)::int FROM val_out), 'metrics keep the log of every epoch');

-- Cancellation leaves the previous versions
CREATE TEMP TABLE big AS SELECT f, cat, ctx, pos, y1, y2 FROM mt_rows, generate_series(1, 500);
CREATE FUNCTION pg_temp.cancelled_run() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM count(*) FROM recsys.train_mmoe('p', 'big', 'f', '{y1,y2}', NULL, epochs => 1000,
		categorical_column => 'cat', context_column => 'ctx', display_position_column => 'pos',
		options => '{"init_version": 1}');
	RETURN 'finished';
EXCEPTION WHEN query_canceled THEN
	RETURN SQLSTATE;
END
$$;
SET statement_timeout = '300ms';
SELECT is(pg_temp.cancelled_run(), '57014', 'a run is cancelled by statement_timeout (query_canceled)');
RESET statement_timeout;
SELECT is((SELECT max(version) FROM recsys.models WHERE name = 'p'), 4, 'a cancelled run stores no version');

SELECT * FROM finish();
