-- Stored MMoE models: a hand-checkable model, then every bad input with its SQLSTATE
SET extra_float_digits = 0;

-- run a statement, give 'ok' or its error as psql prints it with VERBOSITY verbose
-- (SQLSTATE, message, DETAIL, HINT; no source location)
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

-- safetensors bytes: 8-byte little-endian header length, header, data
CREATE FUNCTION pg_temp.st(header text, data bytea DEFAULT '') RETURNS bytea
LANGUAGE sql AS $$
	SELECT decode(string_agg(lpad(to_hex((octet_length(convert_to(header, 'UTF8'))::bigint >> (8 * i)) & 255), 2, '0'),
		'' ORDER BY i), 'hex') || convert_to(header, 'UTF8') || data
	FROM generate_series(0, 7) i
$$;

-- little-endian float32 bytes of a real[]
CREATE FUNCTION pg_temp.f32(v real[]) RETURNS bytea
LANGUAGE sql AS $$
	SELECT coalesce(string_agg(substr(b, 4, 1) || substr(b, 3, 1) || substr(b, 2, 1) || substr(b, 1, 1),
		''::bytea ORDER BY o), '')
	FROM unnest(v) WITH ORDINALITY u(x, o), LATERAL (SELECT float4send(x) AS b) s
$$;

-- a file from rows (name, dtype, shape, data), offsets in row order
CREATE FUNCTION pg_temp.build(tensors jsonb, meta jsonb DEFAULT NULL) RETURNS bytea
LANGUAGE plpgsql AS $$
DECLARE
	h jsonb := '{}';
	d bytea := '';
	t jsonb;
	b bytea;
BEGIN
	IF meta IS NOT NULL THEN
		h := jsonb_build_object('__metadata__', meta);
	END IF;
	FOR t IN SELECT * FROM jsonb_array_elements(tensors) LOOP
		b := decode(t ->> 'hex', 'hex');
		h := h || jsonb_build_object(t ->> 'name', jsonb_build_object('dtype', t ->> 'dtype',
			'shape', t -> 'shape', 'data_offsets', jsonb_build_array(octet_length(d), octet_length(d) + octet_length(b))));
		d := d || b;
	END LOOP;
	RETURN pg_temp.st(h::text, d);
END
$$;

-- A tiny model: one identity expert, one regression task with tower weights (1, 2) and bias 0.5,
-- so predict(x) = relu(x1) + 2 relu(x2) + 0.5
CREATE TEMP TABLE tiny (o int, name text, dtype text, shape jsonb, data bytea);
INSERT INTO tiny VALUES
	(1, 'experts.0.0.weight', 'F32', '[2, 2]', pg_temp.f32('{1,0,0,1}')),
	(2, 'experts.0.0.bias', 'F32', '[2]', pg_temp.f32('{0,0}')),
	(3, 'gates.0.weight', 'F32', '[1, 2]', pg_temp.f32('{0.3,-0.7}')),
	(4, 'gates.0.bias', 'F32', '[1]', pg_temp.f32('{0.1}')),
	(5, 'towers.0.0.weight', 'F32', '[1, 2]', pg_temp.f32('{1,2}')),
	(6, 'towers.0.0.bias', 'F32', '[1]', pg_temp.f32('{0.5}'));
CREATE FUNCTION pg_temp.tensors(skip text DEFAULT '') RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jsonb_agg(jsonb_build_object('name', name, 'dtype', dtype, 'shape', shape, 'hex', encode(data, 'hex'))
		ORDER BY o) FROM tiny WHERE name <> skip
$$;
CREATE FUNCTION pg_temp.cfg() RETURNS jsonb
LANGUAGE sql AS $$
	SELECT '{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]},
		"tasks": [{"name": "y", "type": "regression"}]}'::jsonb
$$;
-- sql/embeddings.sql stored and dropped an embeddings model 'tiny': its
-- history would continue the numbering (versions are never given twice);
-- a superuser purges it, so that this one starts again at 1
DELETE FROM recsys.model_events WHERE model = 'tiny';
SELECT recsys.import_model('tiny', pg_temp.build(pg_temp.tensors()), pg_temp.cfg());
SELECT recsys.predict('tiny', '{1,2}'::real[]);
SELECT recsys.predict('tiny', '{-1,3}'::real[], 'y');
SELECT recsys.predict('tiny', '{1,2}'::float8[]);
SELECT recsys.gate_weights('tiny', '{1,2}'::real[], 'y');
SELECT * FROM recsys.predict_batch('tiny', '{{1,2},{-1,3},{0,0}}'::real[]);
SELECT * FROM recsys.predict_mc('tiny', '{1,2}'::real[], 4);
SELECT recsys.import_model('tiny_copy', recsys.export_model('tiny'));
SELECT recsys.export_model('tiny_copy') = recsys.export_model('tiny') AS same_bytes;
SELECT name, version, kind, config FROM recsys.models WHERE name LIKE 'tiny%' ORDER BY name;

-- Malformed files: INVALID_BINARY_REPRESENTATION (22P03), PROGRAM_LIMIT_EXCEEDED (54000)
SELECT pg_temp.try($$SELECT recsys.import_model('bad', NULL, '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', '', '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', '\x01020304050607', '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', '\x0000000000000010' || pg_temp.st('{}'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', '\x2000000000000000'::bytea || convert_to('{}', 'UTF8'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('[]'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st(' {}'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": '), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": 1} x'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', '\x05000000000000007b22ff227d'::bytea, '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"shape": [[1]]}}'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": [1]}'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"__metadata__": {"k": 1}}'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"__metadata__": []}'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"__metadata__": {"k": "v", "k": "w"}}'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 4]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [1]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 99999999999999999999]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [1,1,1,1,1,1,1,1,1], "data_offsets": [0, 4]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 4]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [1000000000], "data_offsets": [0, 4000000000]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', '\x00000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', '\x0000000000000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}', '\x000000000000000000000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', '\x0000000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', '\x0000000000000000'), '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{}', '\x00'), '{}')$$);
-- what torch.save writes (a ZIP archive; a protocol-2 pickle before PyTorch 1.6) is not a safetensors file
SELECT pg_temp.try($$SELECT recsys.import_model('bad', '\x504b0304000008080000000000000000000000000000'::bytea, '{}')$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', '\x80028a0a6cfc9c46f9206aa85019'::bytea, '{}')$$);
-- __metadata__.recsys given as a JSON object instead of a string, shallow and deep
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"__metadata__": {"recsys": {"kind": "mmoe"}}}'))$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.st('{"__metadata__": {"recsys": {"kind": "mmoe", "experts": {"hidden": [2]}}}}'))$$);
-- truncated and corrupted copies of the tiny model
SELECT pg_temp.try($$SELECT recsys.import_model('bad', substr(recsys.export_model('tiny'), 1, octet_length(recsys.export_model('tiny')) - 1))$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', substr(recsys.export_model('tiny'), 1, 100))$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', set_byte(recsys.export_model('tiny'), 0, 255))$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', set_byte(recsys.export_model('tiny'), 20, 0))$$);

-- Tensors that do not match the config: DATA_EXCEPTION (22000), naming the tensor
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.build(pg_temp.tensors('towers.0.0.bias')), pg_temp.cfg())$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.build(pg_temp.tensors() || '[{"name": "extra.weight", "dtype": "F32", "shape": [1], "hex": "00000000"}]'), pg_temp.cfg())$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.build(jsonb_set(pg_temp.tensors(), '{0,name}', '"experts.0.1.weight"')), pg_temp.cfg())$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.build(jsonb_set(pg_temp.tensors(), '{0,shape}', '[1, 4]')), pg_temp.cfg())$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.build(jsonb_set(pg_temp.tensors(), '{1,shape}', '[2, 1]')), pg_temp.cfg())$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.build(jsonb_set(pg_temp.tensors(), '{0,dtype}', '"I32"')), pg_temp.cfg())$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.build(jsonb_set(pg_temp.tensors(), '{5,hex}', '"0000c07f"')), pg_temp.cfg())$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.build(jsonb_set(pg_temp.tensors(), '{5,hex}', '"0000807f"')), pg_temp.cfg())$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.build(pg_temp.tensors()), jsonb_set(pg_temp.cfg(), '{experts,hidden}', '[3]'))$$);

-- Configs: INVALID_PARAMETER_VALUE (22023), PROGRAM_LIMIT_EXCEEDED (54000)
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.build(pg_temp.tensors()))$$);
SELECT pg_temp.try($$SELECT recsys.import_model('bad', pg_temp.build(pg_temp.tensors(), '{"recsys": "{not json"}'))$$);
SELECT pg_temp.try(format($$SELECT recsys.import_model('bad', pg_temp.build(pg_temp.tensors()), %L)$$, c))
FROM unnest(ARRAY[
	'[]',
	'{"input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "als", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}], "towers": 1}',
	'{"kind": "mmoe", "input_dim": 0, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 1.5, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": "2", "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 100000, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 1e40, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": -123456789012345678901234567890, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 2.0, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 0, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 5000, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": []}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2], "activation": "tanh"}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "gate": {"type": "sparse"}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "gate": {"type": "noisy_top_k", "k": 2}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "gate": {"type": "softmax", "k": 1}, "tasks": [{"name": "y", "type": "regression"}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": []}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}, {"name": "y", "type": "binary"}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "ranking"}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression", "tower": [0]}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}], "categorical": [{"name": "a.b", "vocab": 3, "dim": 1}]}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}], "latent_cross": {"context_dim": "x"}}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}], "shallow_tower": {"position_buckets": 0}}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}], "dropout": 1}'
]) c;

-- A model with every input: categorical (vocab 3), latent cross (context 1), shallow tower (2 positions)
INSERT INTO tiny VALUES
	(7, 'embeddings.device.weight', 'F32', '[3, 1]', pg_temp.f32('{0.1,0.2,0.3}')),
	(8, 'latent_cross.weight', 'F32', '[2, 1]', pg_temp.f32('{0.5,-0.5}')),
	(9, 'latent_cross.bias', 'F32', '[2]', pg_temp.f32('{0,0}')),
	(10, 'shallow.position.weight', 'F32', '[3, 1]', pg_temp.f32('{1,2,3}'));
SELECT recsys.import_model('tiny_all', pg_temp.build(pg_temp.tensors()),
	'{"kind": "mmoe", "input_dim": 1, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}],
	  "categorical": [{"name": "device", "vocab": 3, "dim": 1}], "latent_cross": {"context_dim": 1},
	  "shallow_tower": {"position_buckets": 2}}');
-- x = (1, emb[2] = 0.3); h = relu(x) * (1 + (0.5, -0.5) * 2) = (2, 0); y = 2 + 0.5 + shallow[1] = 4.5
SELECT recsys.predict('tiny_all', '{1}'::real[], '{2}', '{2}', 1);
-- missing position: shallow[2] = 3
SELECT recsys.predict('tiny_all', '{1}'::real[], categorical => '{2}', context => '{2}');

-- Scoring inputs: UNDEFINED_OBJECT (42704), DATA_EXCEPTION (22000), NULL_VALUE_NOT_ALLOWED (22004), ...
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT recsys.predict('nope', '{1,2}'::real[])$$,
	$$SELECT recsys.predict('tiny', '{1,2}'::real[], version => 7)$$,
	$$SELECT recsys.predict('tiny', '{1,2}'::real[], version => 0)$$,
	$$SELECT recsys.predict('', '{1,2}'::real[])$$,
	$$SELECT recsys.predict('tiny', '{1,2,3}'::real[])$$,
	$$SELECT recsys.predict('tiny', '{1,NULL}'::real[])$$,
	$$SELECT recsys.predict('tiny', '{1,NaN}'::real[])$$,
	$$SELECT recsys.predict('tiny', '{1,Infinity}'::real[])$$,
	$$SELECT recsys.predict('tiny', '{1,1e300}'::float8[])$$,
	$$SELECT recsys.predict('tiny', '{{1,2}}'::real[])$$,
	$$SELECT recsys.predict('tiny', '{}'::real[])$$,
	$$SELECT recsys.predict('tiny', '{1,2}'::real[], 'z')$$,
	$$SELECT recsys.predict('tiny', '{1,2}'::real[], categorical => '{1}')$$,
	$$SELECT recsys.predict('tiny', '{1,2}'::real[], context => '{1}')$$,
	$$SELECT recsys.predict('tiny', '{1,2}'::real[], display_position => 0)$$,
	$$SELECT recsys.predict('tiny_all', '{1}'::real[], context => '{2}')$$,
	$$SELECT recsys.predict('tiny_all', '{1}'::real[], categorical => '{3}', context => '{2}')$$,
	$$SELECT recsys.predict('tiny_all', '{1}'::real[], categorical => '{-1}', context => '{2}')$$,
	$$SELECT recsys.predict('tiny_all', '{1}'::real[], categorical => '{NULL}', context => '{2}')$$,
	$$SELECT recsys.predict('tiny_all', '{1}'::real[], categorical => '{1,1}', context => '{2}')$$,
	$$SELECT recsys.predict('tiny_all', '{1}'::real[], categorical => '{{1}}', context => '{2}')$$,
	$$SELECT recsys.predict('tiny_all', '{1}'::real[], categorical => '{1}')$$,
	$$SELECT recsys.predict('tiny_all', '{1}'::real[], categorical => '{1}', context => '{2,3}')$$,
	$$SELECT recsys.predict('tiny_all', '{1}'::real[], categorical => '{1}', context => '{NaN}')$$,
	$$SELECT recsys.predict('tiny_all', '{1}'::real[], categorical => '{1}', context => '{2}', display_position => 2)$$,
	$$SELECT recsys.predict('tiny_all', '{1}'::real[], categorical => '{1}', context => '{2}', display_position => -1)$$,
	$$SELECT recsys.gate_weights('tiny', '{1,2}'::real[], 'z')$$,
	$$SELECT recsys.predict_mc('tiny', '{1,2}'::real[], 0)$$,
	$$SELECT recsys.predict_mc('tiny', '{1,2}'::real[], 1000000)$$,
	$$SELECT recsys.predict_batch('tiny', '{1,2}'::real[])$$,
	$$SELECT recsys.predict_batch('tiny', '{{1,2,3}}'::real[])$$,
	$$SELECT recsys.predict_batch('tiny', '{{1,2},{3,NULL}}'::real[])$$,
	$$SELECT recsys.predict_batch('tiny', '{{1,2},{3,NaN}}'::real[])$$,
	$$SELECT recsys.predict_batch('tiny', '{{1,2}}'::real[], display_positions => '{1}')$$,
	$$SELECT recsys.predict_batch('tiny_all', '{{1},{2}}'::real[], '{{1}}', '{{1},{1}}')$$,
	$$SELECT recsys.predict_batch('tiny_all', '{{1},{2}}'::real[], '{{1},{5}}', '{{1},{1}}')$$,
	$$SELECT recsys.predict_batch('tiny_all', '{{1},{2}}'::real[], '{{1},{1}}', '{{1},{1}}', '{1}')$$,
	$$SELECT recsys.predict_batch('tiny_all', '{{1},{2}}'::real[], '{{1},{1}}', '{{1}}')$$,
	$$SELECT recsys.predict_batch('tiny_all', '{{1},{2}}'::real[], '{{1},{1}}')$$,
	$$SELECT recsys.export_model('nope')$$,
	$$SELECT recsys.export_model('tiny', 9)$$,
	$$SELECT recsys.drop_model('nope')$$
]) q;
-- NULL in means NULL out
SELECT recsys.predict(NULL, '{1,2}'::real[]) IS NULL AS a, recsys.predict('tiny', NULL::real[]) IS NULL AS b,
	recsys.predict('tiny', '{1,2}'::real[], NULL::text) IS NULL AS c,
	(SELECT count(*) FROM recsys.predict_mc('tiny', NULL::real[])) AS d, recsys.export_model(NULL) IS NULL AS e;
SELECT * FROM recsys.predict_batch('tiny', '{{1,2},{3,4}}'::real[], display_positions => NULL);
SELECT * FROM recsys.predict_batch('tiny_all', '{{1},{1}}'::real[], '{{2},{2}}', '{{2},{2}}', '{1,NULL}');

-- Rows that are not MMoE models, or were damaged after import
INSERT INTO recsys.model_names (name) VALUES ('emb');
INSERT INTO recsys.models (name, version, kind) VALUES ('emb', 1, 'embeddings');
SELECT pg_temp.try($$SELECT recsys.predict('emb', '{1,2}'::real[])$$);
SELECT pg_temp.try($$SELECT recsys.export_model('emb')$$);
SELECT recsys.import_model('damaged', recsys.export_model('tiny'));
UPDATE recsys.models SET weights = substr(weights, 1, 50) WHERE name = 'damaged';
SELECT pg_temp.try($$SELECT recsys.predict('damaged', '{1,2}'::real[])$$);
UPDATE recsys.models SET config = '{"kind": "mmoe"}' WHERE name = 'damaged';
SELECT pg_temp.try($$SELECT recsys.predict('damaged', '{1,2}'::real[])$$);
UPDATE recsys.models SET weights = NULL WHERE name = 'damaged';
SELECT pg_temp.try($$SELECT recsys.predict('damaged', '{1,2}'::real[])$$);
SELECT recsys.drop_model('damaged'), recsys.drop_model('emb');
-- still serving
SELECT recsys.predict('tiny', '{1,2}'::real[]);
SELECT name, version FROM recsys.model_cache() ORDER BY name, version;

-- predict_top_k: tiny scores relu(x1) + 2 relu(x2) + 0.5; equal scores rank by the smaller item_id
SELECT g, recsys.predict_top_k('tiny', f, id, 3, '{1}')
FROM (VALUES (1, '{1,2}'::real[], 10::bigint), (1, '{5,0}', 4), (1, '{0,2.5}', 3), (1, '{-1,-1}', 1),
	(1, NULL, 2), (2, '{0,0}', 7), (2, '{0,0}', 5), (3, '{1,1}', NULL)) v(g, f, id)
GROUP BY g ORDER BY g;
-- more rows than one block (128): the best 2 of 300 are the largest x1
SELECT recsys.predict_top_k('tiny', ARRAY[i, 0]::real[], i, 2, '{1}') FROM generate_series(1, 300) i;
SELECT (unnest(recsys.predict_top_k('tiny', ARRAY[i, 0]::real[], i, 2, '{2}'))).* FROM generate_series(1, 3) i;
-- double precision features score as real ones
SELECT recsys.predict_top_k('tiny', ARRAY[i, 1]::float8[], i, 2, '{1}') FROM generate_series(1, 3) i;
-- the categorical form on a model without categorical features takes NULL ids
SELECT recsys.predict_top_k('tiny', '{1,2}'::real[], NULL::int[], 1, 1, '{1}');
-- Bad input: INVALID_PARAMETER_VALUE (22023), DATA_EXCEPTION (22000), NULL_VALUE_NOT_ALLOWED (22004), ...
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT recsys.predict_top_k('nope', '{1,2}'::real[], 1, 3, '{1}')$$,
	$$SELECT recsys.predict_top_k('tiny', '{1,2}'::real[], 1, 0, '{1}')$$,
	$$SELECT recsys.predict_top_k('tiny', '{1,2}'::real[], 1, 1000000, '{1}')$$,
	$$SELECT recsys.predict_top_k('tiny', '{1,2}'::real[], 1, NULL, '{1}')$$,
	$$SELECT recsys.predict_top_k('tiny', '{1,2}'::real[], 1, 3, NULL)$$,
	$$SELECT recsys.predict_top_k(NULL, '{1,2}'::real[], 1, 3, '{1}')$$,
	$$SELECT recsys.predict_top_k('tiny', '{1,2}'::real[], 1, 3, '{1,1}')$$,
	$$SELECT recsys.predict_top_k('tiny', '{1,2}'::real[], 1, 3, '{NaN}')$$,
	$$SELECT recsys.predict_top_k('tiny', '{1,2,3}'::real[], 1, 3, '{1}')$$,
	$$SELECT recsys.predict_top_k('tiny', '{1,NaN}'::real[], 1, 3, '{1}')$$,
	$$SELECT recsys.predict_top_k('tiny', '{1,2}'::real[], '{1}'::int[], 1, 3, '{1}')$$,
	$$SELECT recsys.predict_top_k('tiny_all', '{1}'::real[], '{1}'::int[], 1, 3, '{1}')$$,
	$$SELECT recsys.predict_top_k(m, '{1,2}'::real[], 1, 3, '{1}') FROM (VALUES ('tiny'), ('tiny_copy')) v(m)$$,
	$$SELECT recsys.predict_top_k('tiny', '{1,2}'::real[], 1, k, '{1}') FROM (VALUES (3), (4)) v(k)$$,
	$$SELECT recsys.predict_top_k('tiny', '{1,2}'::real[], 1, 3, w) FROM (VALUES ('{1}'::real[]), ('{2}')) v(w)$$
]) q;

-- Crafted predict_top_k states: every invariant is checked before a state is trusted (22P03)
CREATE TEMP TABLE st AS SELECT recsys.predict_top_k_step(NULL, 'tiny', '{1,2}'::real[], 7, 3, '{1}') AS s;
-- a state with two kept items and one buffered row
CREATE TEMP TABLE st2 AS SELECT recsys.predict_top_k_step(recsys.predict_top_k_combine(
	recsys.predict_top_k_step(NULL, 'tiny', '{1,2}'::real[], 7, 3, '{1}'),
	recsys.predict_top_k_step(NULL, 'tiny', '{4,0}'::real[], 8, 3, '{1}')), 'tiny', '{0,1}'::real[], 9, 3, '{1}') AS s;
SELECT recsys.predict_top_k_final(s) FROM st;
SELECT recsys.predict_top_k_final(s) FROM st2;
-- little-endian int32 bytes
CREATE FUNCTION pg_temp.le32(v int) RETURNS bytea LANGUAGE sql AS $$
	SELECT decode(lpad(to_hex(v & 255), 2, '0') || lpad(to_hex((v >> 8) & 255), 2, '0')
		|| lpad(to_hex((v >> 16) & 255), 2, '0') || lpad(to_hex((v >> 24) & 255), 2, '0'), 'hex')
$$;
-- offsets into the bytea (after the 4-byte varlena header): magic 0, version 4, k 8, ntasks 12,
-- input_dim 16, ncategorical 20, model_version 24, capacity 28, nbuf 32, nkept 36, namelen 40,
-- name 44, kept_capacity 108; then weights at 116, kept items (16 bytes each) at 124, item ids,
-- features
SELECT pg_temp.try(format('SELECT recsys.predict_top_k_final(%L::bytea)', b)) FROM (VALUES
	('\x00'::bytea),
	((SELECT overlay(s PLACING '\x00000000' FROM 1) FROM st)),
	((SELECT overlay(s PLACING '\x0900' FROM 5) FROM st)),
	((SELECT overlay(s PLACING pg_temp.le32(0) FROM 9) FROM st)),
	((SELECT overlay(s PLACING pg_temp.le32(4) FROM 9) FROM st)),
	((SELECT overlay(s PLACING pg_temp.le32(0) FROM 25) FROM st)),
	((SELECT overlay(s PLACING pg_temp.le32(9) FROM 33) FROM st)),
	((SELECT overlay(s PLACING pg_temp.le32(4) FROM 37) FROM st)),
	((SELECT overlay(s PLACING pg_temp.le32(3) FROM 41) FROM st)),
	((SELECT overlay(s PLACING '\x00' FROM 46) FROM st)),
	((SELECT s || '\x00'::bytea FROM st)),
	((SELECT overlay(s PLACING '\x0000c07f' FROM 117) FROM st)),
	((SELECT overlay(s PLACING '\x0000c07f' FROM 125 + 8) FROM st2)),
	((SELECT overlay(s PLACING '\xcaf24971' FROM 125 + 8) FROM st2)),
	((SELECT overlay(s PLACING '\x0000807f' FROM 125 + 48 + 64) FROM st2)),
	((SELECT overlay(s PLACING pg_temp.le32(0) FROM 109) FROM st)),
	((SELECT overlay(s PLACING pg_temp.le32(4) FROM 109) FROM st)),
	((SELECT overlay(s PLACING pg_temp.le32(1) FROM 109) FROM st2)),
	((SELECT overlay(s PLACING pg_temp.le32(2) FROM 109) FROM st)),
	((SELECT overlay(s PLACING pg_temp.le32(2) FROM 25) FROM st)),
	((SELECT overlay(overlay(s PLACING pg_temp.le32(8) FROM 41) PLACING 'tiny_all' FROM 45) FROM st))
) v(b);
SELECT pg_temp.try(format('SELECT recsys.predict_top_k_combine(%L::bytea, s) FROM st', b)) FROM (VALUES
	((SELECT overlay(s PLACING pg_temp.le32(0) FROM 9) FROM st)),
	((SELECT s FROM st2)),
	((SELECT overlay(s PLACING pg_temp.le32(2) FROM 9) FROM st))
) v(b);
SELECT pg_temp.try(format($$SELECT recsys.predict_top_k_step(%L::bytea, 'tiny', '{1,2}'::real[], 7, 3, '{1}')$$, b)) FROM (VALUES
	((SELECT overlay(s PLACING pg_temp.le32(0) FROM 9) FROM st)),
	((SELECT overlay(s PLACING pg_temp.le32(300) FROM 29) FROM st))
) v(b);

-- predict_table: the tiny model over a candidate table, then bad input
CREATE TEMP TABLE cands (cid int, x real[], xd float8[], t text, cat int[], pos int);
INSERT INTO cands VALUES (1, '{1,2}', '{1,2}', 'a', NULL, NULL), (2, '{-1,3}', '{-1,3}', 'b', NULL, NULL),
	(3, NULL, NULL, 'c', NULL, NULL);
SELECT * FROM recsys.predict_table('tiny', 'cands', 'cid', 'x') ORDER BY id;
SELECT * FROM recsys.predict_table('tiny', 'cands', 'cid', 'xd', version => 1) ORDER BY id;
SELECT pg_temp.try(q) FROM unnest(ARRAY[
	$$SELECT recsys.predict_table('tiny', 'cands', 'cid', 'nope')$$,
	$$SELECT recsys.predict_table('tiny', 'cands', 'cid', 't')$$,
	$$SELECT recsys.predict_table('tiny', 'cands', 't', 'x')$$,
	$$SELECT recsys.predict_table('tiny', 'nope', 'cid', 'x')$$,
	$$SELECT recsys.predict_table('tiny', NULL, 'cid', 'x')$$,
	$$SELECT recsys.predict_table('nope', 'cands', 'cid', 'x')$$,
	$$SELECT recsys.predict_table('tiny', 'cands', 'cid', 'x', version => 0)$$,
	$$SELECT recsys.predict_table('tiny', 'cands', 'cid', 'x', display_position_column => 'cid')$$,
	$$SELECT recsys.predict_table('tiny', 'cands', 'cid', 'x', context_column => 'x')$$,
	$$SELECT recsys.predict_table('tiny_all', 'cands', 'cid', 'x')$$,
	$$SELECT recsys.predict_table('tiny_all', 'cands', 'cid', 'x', categorical_column => 'cat')$$
]) q;
