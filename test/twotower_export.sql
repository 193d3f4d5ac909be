-- pgTAP: a two-tower model exported by recsys.export_model and loaded into the PyTorch
-- module of doc/two-tower.md (test/ref/twotower_export.py, run by the server through
-- COPY ... PROGRAM) gives every stored vector of both tables within 1e-6: every kind of
-- feature column (NULLs, out-of-vocabulary values, empty and NULL arrays, vectors),
-- every transform, an id embedding with cold rows, both activations, normalization.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
\getenv top RECSYS_TOP
BEGIN;
SELECT plan(12);
\ir ref/out/twotower_export_ref.sql

CREATE TEMP TABLE checks (config text, side text, n int, diff float8);
-- train, export, and let the reference rebuild every stored vector from the exported file
-- (written as CSV with separators JSON never holds: the text format would double backslashes)
CREATE FUNCTION pg_temp.export_check(model text, config jsonb, top text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	f text := format('/tmp/recsys_twotower_export_%s.json', pg_backend_pid());
BEGIN
	PERFORM * FROM recsys.train_two_tower(model, 'tx_train', 'tx_users', 'tx_items', config);
	EXECUTE format($q$COPY (SELECT json_build_object('model', encode(recsys.export_model(%1$L), 'base64'),
		'user', (SELECT json_agg(json_build_object('row', to_jsonb(u), 'vector', v.embedding,
			'index', (SELECT count(DISTINCT t.user_id) FROM tx_train t WHERE t.user_id < u.user_id)
				* (CASE WHEN EXISTS (SELECT 1 FROM tx_train t WHERE t.user_id = u.user_id) THEN 1 END)))
			FROM tx_users u JOIN recsys.user_vectors v ON v.model = %1$L AND v.id = u.user_id),
		'item', (SELECT json_agg(json_build_object('row', to_jsonb(i), 'vector', v.embedding,
			'index', (SELECT count(DISTINCT t.item_id) FROM tx_train t WHERE t.item_id < i.item_id)
				* (CASE WHEN EXISTS (SELECT 1 FROM tx_train t WHERE t.item_id = i.item_id) THEN 1 END)))
			FROM tx_items i JOIN recsys.item_vectors v ON v.model = %1$L AND v.id = i.item_id)))
		TO PROGRAM %2$L WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')$q$,
		model, 'cat > ' || f);
	CREATE TEMP TABLE IF NOT EXISTS check_out (side text, n int, diff float8);
	TRUNCATE check_out;
	EXECUTE format('COPY check_out FROM PROGRAM %L',
		format('/usr/bin/python3 %s/test/ref/twotower_export.py check %s', top, f));
	INSERT INTO checks SELECT model, c.side, c.n, c.diff FROM check_out c;
END
$$;

SELECT pg_temp.export_check('tx_a', '{
	"user": {"features": {"numeric": ["age", {"column": "income", "transform": "log1p_standardize"},
			{"column": "hours", "transform": "minmax", "null_value": 20}],
		"categorical": ["city", {"column": "level", "dim": 3}, {"column": "premium", "dim": 2}],
		"vector": ["emb"]}, "hidden": [12, 6], "id_dim": 4},
	"item": {"features": {"categorical": [{"column": "genre", "min_count": 4}],
		"multi_categorical": [{"column": "tags", "max_size": 5, "dim": 3}, "codes"],
		"numeric": [{"column": "year", "transform": "minmax"}]}, "hidden": [8], "activation": "tanh"},
	"dim": 5, "epochs": 2, "batch_size": 32, "learning_rate": 0.01}', :'top');
SELECT pg_temp.export_check('tx_b', '{
	"user": {"id_dim": 6, "hidden": []},
	"item": {"features": {"categorical": ["genre"]}, "id_dim": 3, "hidden": [4], "activation": "linear"},
	"dim": 4, "normalize": true, "epochs": 2, "batch_size": 64, "method": "sagram", "learning_rate": 0.05}', :'top');

SELECT is((SELECT n FROM checks WHERE config = 'tx_a' AND side = 'user'), 80, 'every user row is compared');
SELECT is((SELECT n FROM checks WHERE config = 'tx_a' AND side = 'item'), 50, 'every item row is compared');
SELECT cmp_ok((SELECT diff FROM checks WHERE config = 'tx_a' AND side = 'user'), '<=', 1e-6::float8,
	'features of every kind, id embedding and cold users: the exported user tower gives the stored vectors');
SELECT cmp_ok((SELECT diff FROM checks WHERE config = 'tx_a' AND side = 'item'), '<=', 1e-6::float8,
	'tanh, multi-categorical and minmax: the exported item tower gives the stored vectors');
SELECT cmp_ok((SELECT max(diff) FROM checks WHERE config = 'tx_b'), '<=', 1e-6::float8,
	'ids only, linear activation, normalized outputs: both towers give the stored vectors');
SELECT is((SELECT count(*)::int FROM checks WHERE config = 'tx_b'), 2, 'both towers of the second model are compared');
-- the comparison can fail: the towers are alive (every row its own vector)
SELECT is((SELECT count(DISTINCT embedding)::int FROM recsys.user_vectors WHERE model = 'tx_a'), 80,
	'every user of the first model has its own vector');
-- the comparison can fail: vectors of another model are far from this one's
SELECT ok((SELECT max(d.diff) > 1e-3 FROM (SELECT max(abs(x - y)) AS diff FROM recsys.user_vectors a
		JOIN recsys.user_vectors b ON b.id = a.id AND b.model = 'tx_b', unnest(a.embedding[1:4], b.embedding) u(x, y)
		WHERE a.model = 'tx_a') d), 'two models differ by more than the tolerance');

-- the exported file is the stored weights, with the config in __metadata__.recsys
SELECT is(recsys.export_model('tx_a'), (SELECT weights FROM recsys.models WHERE name = 'tx_a'),
	'export_model returns the stored towers');
SELECT ok(position(convert_to('"recsys":', 'UTF8') IN recsys.export_model('tx_a')) > 0,
	'the exported file carries its config');
SELECT is((SELECT count(*)::int FROM recsys.train_embeddings('tx_als', 'tx_train', dim => 4, epochs => 1)), 1, 'an ALS model');
SELECT throws_ok($$SELECT recsys.export_model('tx_als')$$, '42809',
	'model "tx_als" version 1 is of kind "embeddings", not "mmoe"', 'an embeddings model not trained by train_two_tower is not exported');

SELECT * FROM finish();
ROLLBACK;
