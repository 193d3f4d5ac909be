-- Feature specs (src/features/): spec checks, column types checked exactly before any
-- row is read, NULL / unseen / bad values at scoring, the memory budget, and that every
-- existing array call still resolves to its array form.
SET client_min_messages = warning;
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
CREATE FUNCTION pg_temp.r(a real[]) RETURNS numeric[] LANGUAGE sql AS
$$ SELECT array_agg(round(x::numeric, 5) ORDER BY i) FROM unnest(a) WITH ORDINALITY u(x, i) $$;

-- training rows: every kind, NULLs, a rare value
CREATE TABLE people (id int, age int, gain float8, hours numeric, job text, level bigint, member bool,
	tags text[], emb real[], clicked bool, spend float8);
INSERT INTO people SELECT i, 20 + i % 40, CASE WHEN i % 9 = 0 THEN NULL ELSE (i % 13) * 100.0 END,
	(i % 50)::numeric, CASE WHEN i % 10 = 0 THEN NULL WHEN i = 1 THEN 'rare' ELSE (ARRAY['a', 'b', 'c'])[1 + i % 3] END,
	i % 4, i % 3 = 0, CASE WHEN i % 7 = 0 THEN NULL ELSE ARRAY[(ARRAY['x', 'y', 'z'])[1 + i % 3], 'x'] END,
	ARRAY[i % 5, i % 3]::real[], i % 2 = 0, (i % 11)::float8 / 10
FROM generate_series(1, 300) i;
CREATE TEMP TABLE cfg AS SELECT '{"kind": "mmoe", "experts": {"count": 2, "hidden": [4]},
	"tasks": [{"name": "click", "type": "binary"}, {"name": "spend", "type": "regression"}]}'::jsonb AS base;
CREATE FUNCTION pg_temp.train(name text, spec jsonb, rel regclass DEFAULT 'people') RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.try(format($q$SELECT count(*) FROM recsys.train_mmoe(%L, %L, NULL, '{clicked,spend}', %L, epochs => 1)$q$,
		name, rel, (SELECT base FROM cfg) || jsonb_build_object('features', spec)))
$$;

-- bad specs
SELECT pg_temp.train('bad', s) FROM (VALUES
	('[]'::jsonb),
	('{}'),
	('{"numeric": []}'),
	('{"numerics": ["age"]}'),
	('{"numeric": "age"}'),
	('{"numeric": [1]}'),
	('{"numeric": [""]}'),
	('{"numeric": [{"column": "age", "transform": "log"}]}'),
	('{"numeric": [{"column": "age", "scale": 2}]}'),
	('{"numeric": [{"column": "age", "mean": 2}]}'),
	('{"numeric": [{"transform": "minmax"}]}'),
	('{"numeric": [{"column": "age", "null_value": "x"}]}'),
	('{"numeric": [{"column": "gain", "transform": "log1p_standardize", "null_value": -1}]}'),
	('{"numeric": ["age", "age"]}'),
	('{"categorical": ["job"], "multi_categorical": ["job"]}'),
	('{"categorical": [{"column": "job", "dim": 0}]}'),
	('{"categorical": [{"column": "job", "min_count": 1.5}]}'),
	('{"categorical": [{"column": "job", "max_size": 20000000}]}'),
	('{"categorical": ["my job"]}'),
	('{"numeric": ["age"], "fitted": {"rows": 0}}'),
	('{"numeric": ["age"], "fitted": {"rows": 3}}')
) v(s);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('bad', 'people', NULL, '{clicked,spend}',
	(SELECT base || '{"input_dim": 3, "features": {"numeric": ["age"]}}' FROM cfg))$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('bad', 'people', 'emb', '{clicked,spend}',
	(SELECT base || '{"features": {"numeric": ["age"]}}' FROM cfg))$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('bad', 'people', NULL, '{clicked,spend}', (SELECT base || '{"input_dim": 2}' FROM cfg))$$);
SELECT pg_temp.try($$SELECT recsys.mmoe_validate('\x00'::bytea, (SELECT base || '{"features": {"numeric": ["age"]}}' FROM cfg))$$);

-- column types: checked exactly, before any row is read (a domain is refused even with a cast)
CREATE DOMAIN pg_temp.jobname AS text;
CREATE TABLE typed (id int, job pg_temp.jobname, age text, tags int[], emb int[], clicked bool, spend float8);
INSERT INTO typed VALUES (1, 'a', '3', '{1}', '{1}', true, 1);
SELECT pg_temp.train('bad', s, 'typed') FROM (VALUES
	('{"categorical": ["job"]}'::jsonb),
	('{"numeric": ["age"]}'),
	('{"categorical": ["tags"]}'),
	('{"vector": ["emb"]}'),
	('{"numeric": ["nope"]}')
) v(s);
-- bad values in training rows name the column
CREATE TABLE badvals (id int, x float8, v real[], clicked bool, spend float8);
INSERT INTO badvals VALUES (1, 'NaN', '{1,2}', true, 1), (2, 1, '{1,NULL}', false, 2);
SELECT pg_temp.train('bad', '{"numeric": ["x"]}', 'badvals');
SELECT pg_temp.train('bad', '{"numeric": [{"column": "id", "transform": "log1p_standardize"}], "vector": ["v"]}', 'badvals');
UPDATE badvals SET x = NULL;
SELECT pg_temp.train('bad', '{"numeric": ["x"]}', 'badvals');
UPDATE badvals SET v = '{1,2,3}' WHERE id = 2;
SELECT pg_temp.train('bad', '{"vector": ["v"]}', 'badvals');

-- a model over every kind
SELECT pg_temp.train('p', '{"numeric": ["age", {"column": "gain", "transform": "log1p_standardize"},
	{"column": "hours", "transform": "minmax", "null_value": 10}],
	"categorical": [{"column": "job", "min_count": 2, "dim": 2}, "level", {"column": "member", "dim": 1}],
	"multi_categorical": [{"column": "tags", "dim": 2}], "vector": ["emb"]}');
SELECT c -> 'column' AS col, c -> 'vocab' AS vocab, c -> 'count' AS n, c -> 'nulls' AS nulls, c -> 'oov' AS oov
FROM recsys.models, jsonb_array_elements((config -> 'features' -> 'categorical') || (config -> 'features' -> 'multi_categorical')) c
WHERE name = 'p';
SELECT c ->> 'column' AS col, c ->> 'transform' AS transform, round((c ->> 'mean')::numeric, 6) AS mean,
	round((c ->> 'std')::numeric, 6) AS std, c -> 'min' AS min, c -> 'max' AS max, c -> 'nulls' AS nulls
FROM recsys.models, jsonb_array_elements(config -> 'features' -> 'numeric') c WHERE name = 'p';
SELECT config -> 'features' -> 'vector', config -> 'features' -> 'fitted' FROM recsys.models WHERE name = 'p';

-- export -> import keeps the fitted spec
SELECT recsys.import_model('arr', recsys.export_model('p')) AS reimported;
SELECT (SELECT config FROM recsys.models WHERE name = 'arr') = (SELECT config FROM recsys.models WHERE name = 'p') AS same_config;

-- scoring rows: NULLs, unseen values
CREATE TEMP TABLE q AS SELECT * FROM people WHERE false;
INSERT INTO q (id) VALUES (1);                                     -- every column NULL
INSERT INTO q SELECT 2, age, gain, hours, 'never seen', 99, member, '{never,NULL}', emb FROM people WHERE id = 5;
INSERT INTO q SELECT 3, age, gain, hours, 'also unseen', 77, member, '{unseen,NULL}', emb FROM people WHERE id = 5;
INSERT INTO q SELECT 4, age, gain, hours, job, level, member, tags, emb FROM people WHERE id = 5;
INSERT INTO q SELECT 5, age, gain, hours, job, level, member, '{}', emb FROM people WHERE id = 5;
SELECT id, pg_temp.r(recsys.predict('p', q)) FROM q ORDER BY id;
-- an unseen value is the OOV id, like any other unseen value; an empty bag is not the NULL bag
SELECT (SELECT recsys.predict('p', q) FROM q WHERE id = 2) = (SELECT recsys.predict('p', q) FROM q WHERE id = 3) AS oov_same,
	(SELECT recsys.predict('p', q) FROM q WHERE id = 4) <> (SELECT recsys.predict('p', q) FROM q WHERE id = 5) AS empty_bag_differs;
-- NULLs are the spec's NULL values: a row of NULLs scores as these arrays would (standardized
-- numerics 0, minmax hours (10 - 0) / 49, the NULL ids n + 1, a bag of the NULL id, zeros)
SELECT pg_temp.train('pn', '{"numeric": ["age", {"column": "gain", "transform": "log1p_standardize"},
	{"column": "hours", "transform": "minmax", "null_value": 10}],
	"categorical": [{"column": "job", "min_count": 2, "dim": 2}, "level", {"column": "member", "dim": 1}], "vector": ["emb"]}');
SELECT recsys.predict('pn', features => ARRAY[0, 0, 10 / 49.0, 0, 0]::real[], categorical => '{4,5,3}')
	= (SELECT recsys.predict('pn', q) FROM q WHERE id = 1) AS nulls_as_documented;
-- row forms read columns by name, in any order, from any row type; extra columns are ignored
CREATE TEMP VIEW shuffled AS SELECT emb, tags, 'x' AS other, member, level, job, hours, gain, age, id FROM q;
SELECT (SELECT array_agg(recsys.predict('p', s) ORDER BY id) FROM shuffled s) = (SELECT array_agg(recsys.predict('p', q) ORDER BY id) FROM q) AS by_name;
-- bad rows name the column
SELECT pg_temp.try(s) FROM (VALUES
	($$SELECT recsys.predict('p', ROW(1, 2))$$),
	($$SELECT recsys.predict('p', t) FROM typed t$$),
	($$SELECT recsys.predict('p', r) FROM (SELECT age, gain, hours, job, level, member::int AS member, tags, emb FROM people LIMIT 1) r$$),
	($$SELECT recsys.predict('p', r) FROM (SELECT age, 'NaN'::float8 AS gain, hours, job, level, member, tags, emb FROM people LIMIT 1) r$$),
	($$SELECT recsys.predict('p', r) FROM (SELECT age, -1::float8 AS gain, hours, job, level, member, tags, emb FROM people LIMIT 1) r$$),
	($$SELECT recsys.predict('p', r) FROM (SELECT age, gain, hours, job, level, member, tags, '{1}'::real[] AS emb FROM people LIMIT 1) r$$),
	($$SELECT recsys.predict('p', r) FROM (SELECT age, gain, hours, job, level, member, '{{a}}'::text[] AS tags, emb FROM people LIMIT 1) r$$),
	($$SELECT recsys.predict('p', r) FROM (SELECT age, gain, hours, job, level::int AS level, member, tags, emb FROM people LIMIT 1) r$$),
	($$SELECT recsys.predict('p', r) FROM (SELECT age, gain, hours, job::varchar AS job, level, member, tags::varchar[] AS tags, emb::float8[] AS emb FROM people LIMIT 1) r$$),
	($$SELECT recsys.predict('p', '{1,2}'::real[])$$),
	($$SELECT * FROM recsys.predict_batch('p', '{{1,2}}'::real[])$$),
	($$SELECT recsys.predict_top_k('p', '{1,2}'::real[], 1, 3, '{1,0}')$$),
	($$SELECT * FROM recsys.predict_table('p', 'typed', 'id', NULL, categorical_column => 'tags')$$),
	($$SELECT * FROM recsys.predict_table('p', 'typed', 'id', NULL)$$)
) v(s);
SELECT recsys.predict('p', NULL::record) IS NULL AS null_row, recsys.predict(NULL, q) IS NULL AS null_model FROM q WHERE id = 1;
-- rows, table and top-k agree
SELECT max(abs(p.scores[1] - (recsys.predict('p', t))[1])) < 1e-6 AS table_matches
FROM recsys.predict_table('p', 'people', 'id', NULL) p JOIN people t USING (id);
SELECT (SELECT array_agg(item_id) FROM (SELECT (unnest(recsys.predict_top_k('p', t, t.id, 5, '{1,0}'))).* FROM people t) s)
	= (SELECT array_agg(id::bigint) FROM (SELECT id FROM people t ORDER BY (recsys.predict('p', t))[1] DESC, id LIMIT 5) s) AS top_k_matches;
-- predict_table reads a plain table with a direct scan, anything else through SELECT:
-- a view, a parent with an inheritance child, an int8 display position out of int4's range
CREATE TEMP TABLE direct AS SELECT id, scores FROM recsys.predict_table('p', 'people', 'id', NULL);
CREATE VIEW people_v AS SELECT * FROM people;
CREATE TABLE people_parent (LIKE people);
CREATE TABLE people_kid () INHERITS (people_parent);
INSERT INTO people_parent SELECT * FROM people WHERE id > 100;
INSERT INTO people_kid SELECT * FROM people WHERE id <= 100;
SELECT rel, count(*) AS scored, bool_and(p.scores = d.scores) AS same_scores
FROM unnest(ARRAY['people_v', 'people_parent']) rel, recsys.predict_table('p', rel::regclass, 'id', NULL) p
	JOIN direct d USING (id) GROUP BY rel ORDER BY rel;
SELECT (SELECT array_agg(id || ' ' || scores::text ORDER BY id, scores::text) FROM recsys.predict_table('p', 'people', 'level', NULL))
	= (SELECT array_agg(id || ' ' || scores::text ORDER BY id, scores::text) FROM recsys.predict_table('p', 'people_v', 'level', NULL))
	AS bigint_ids_same;
ALTER TABLE people_parent ADD COLUMN pos bigint;
UPDATE people_parent SET pos = 5000000000 WHERE id = 150;
SELECT pg_temp.try($$SELECT * FROM recsys.predict_table('p', 'people_parent', 'id', NULL, display_position_column => 'pos')$$);
CREATE TABLE people_pos AS SELECT * FROM people_parent;
SELECT pg_temp.try($$SELECT * FROM recsys.predict_table('p', 'people_pos', 'id', NULL, display_position_column => 'pos')$$);
-- a role under row-level security gets the rows its policy shows; one with the columns' privileges
-- only reads them; one without gets SELECT's error
DROP ROLE IF EXISTS feat_reader;
CREATE ROLE feat_reader;
GRANT USAGE ON SCHEMA recsys TO feat_reader;
GRANT SELECT ON recsys.models, recsys.model_aliases TO feat_reader;
CREATE TABLE people_rls AS SELECT * FROM people;
ALTER TABLE people_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY even ON people_rls FOR SELECT USING (id % 2 = 0);
GRANT SELECT ON people_rls TO feat_reader;
CREATE TABLE people_cols AS SELECT * FROM people;
GRANT SELECT (id, age, gain, hours, job, level, member, tags, emb) ON people_cols TO feat_reader;
CREATE TABLE people_none AS SELECT * FROM people;
GRANT SELECT (id, age) ON people_none TO feat_reader;
SET ROLE feat_reader;
SELECT count(*) AS scored, count(*) FILTER (WHERE p.id % 2 = 0) AS even FROM recsys.predict_table('p', 'people_rls', 'id', NULL) p;
SELECT count(*) AS scored FROM recsys.predict_table('p', 'people_cols', 'id', NULL);
SELECT pg_temp.try($$SELECT * FROM recsys.predict_table('p', 'people_none', 'id', NULL)$$);
RESET ROLE;
SELECT count(*) AS scored, count(*) FILTER (WHERE p.id % 2 = 0) AS even FROM recsys.predict_table('p', 'people_rls', 'id', NULL) p;
ALTER TABLE people_rls FORCE ROW LEVEL SECURITY;
ALTER TABLE people_rls OWNER TO feat_reader;
SET ROLE feat_reader;
SELECT count(*) AS scored FROM recsys.predict_table('p', 'people_rls', 'id', NULL) p;
RESET ROLE;
DROP TABLE people_rls, people_cols, people_none, people_pos, people_kid, people_parent;
DROP VIEW people_v;
REVOKE ALL ON recsys.models, recsys.model_aliases FROM feat_reader;
REVOKE ALL ON SCHEMA recsys FROM feat_reader;
DROP ROLE feat_reader;

-- a model without a spec refuses rows; its array calls resolve to the array forms as before
CREATE TEMP TABLE arrcfg AS SELECT (base || '{"input_dim": 2}') AS c FROM cfg;
SELECT count(*) FROM recsys.train_mmoe('plain', 'people', 'emb', '{clicked,spend}', (SELECT c FROM arrcfg), epochs => 1);
SELECT pg_temp.try($$SELECT recsys.predict('plain', p) FROM people p LIMIT 1$$);
SELECT pg_temp.try($$SELECT * FROM recsys.predict_table('plain', 'people', 'id', NULL)$$);
SELECT pg_temp.try($$SELECT recsys.predict_top_k('plain', p, p.id, 3, '{1,0}') FROM people p$$);
CREATE TEMP TABLE calls (n int, q text);
INSERT INTO calls VALUES
	(1, $$SELECT recsys.predict('plain', ARRAY[1, 2]::real[])$$),
	(2, $$SELECT recsys.predict('plain', ARRAY[1, 2]::float8[])$$),
	(3, $$SELECT recsys.predict('plain', ARRAY[1, 2])$$),
	(4, $$SELECT recsys.predict('plain', ARRAY[1.5, 2])$$),
	(5, $$SELECT recsys.predict('plain', '{1,2}')$$),
	(6, $$SELECT recsys.predict('plain', '{1,2}', 'click')$$),
	(7, $$SELECT recsys.predict('plain', ARRAY[1, 2]::real[], NULL::int[])$$),
	(8, $$SELECT recsys.predict('plain', ARRAY[1, 2]::real[], display_position => NULL)$$),
	(9, $$SELECT recsys.predict('plain', features => '{1,2}')$$),
	(10, $$SELECT recsys.predict('plain', emb, 'click') FROM people WHERE id = 1$$),
	(11, $$SELECT recsys.predict('plain', emb) FROM people WHERE id = 1$$),
	(12, $$SELECT recsys.predict('plain', NULL)$$),
	(13, $$SELECT recsys.predict_top_k('plain', emb, id, 2, '{1,0}') FROM people$$),
	(14, $$SELECT recsys.predict_top_k('plain', '{1,2}', 1, 2, '{1,0}')$$),
	(15, $$SELECT recsys.predict_top_k('plain', NULL, 1, 2, '{1,0}')$$),
	(16, $$SELECT recsys.predict_top_k('plain', emb, NULL::int[], id, 2, '{1,0}') FROM people$$);
CREATE FUNCTION pg_temp.resolve() RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(n || ': ' || pg_temp.try(q), E'\n' ORDER BY n) FROM calls
$$;
-- the same calls with the row forms removed, as before them (rolled back)
BEGIN;
ALTER EXTENSION recsys DROP FUNCTION recsys.predict(text, record, real[], int, int);
ALTER EXTENSION recsys DROP FUNCTION recsys.predict(text, record, text, real[], int, int);
ALTER EXTENSION recsys DROP AGGREGATE recsys.predict_top_k(text, record, bigint, int, real[]);
DROP FUNCTION recsys.predict(text, record, real[], int, int);
DROP FUNCTION recsys.predict(text, record, text, real[], int, int);
DROP AGGREGATE recsys.predict_top_k(text, record, bigint, int, real[]);
SELECT pg_temp.resolve() AS before \gset
ROLLBACK;
SELECT pg_temp.resolve() = :'before' AS same_resolution;
SELECT pg_temp.resolve();
-- the memory budget covers the raw rows and vocabularies of fitting
CREATE TABLE many AS SELECT i AS id, md5(i::text) AS word, i % 2 = 0 AS clicked, 1.0::float8 AS spend FROM generate_series(1, 20000) i;
SET recsys.training_memory = 1024;
SELECT pg_temp.train('big', '{"categorical": ["word"]}', 'many');
RESET recsys.training_memory;
