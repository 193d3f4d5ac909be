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
-- the row of a table is all its columns: planned as predict_columns, it still needs SELECT on each
SELECT pg_temp.try($$SELECT recsys.predict('p', t) FROM people_cols t$$);
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

-- predict(model, row) of a table's row is planned as predict_columns of the row's columns,
-- named (no composite value built per row), and scores as the composite value does. The
-- reference hides the row from the planner in a subquery's column; pg_temp.form tells
-- which form a query's plan calls
CREATE FUNCTION pg_temp.form(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	l text;
	p text := '';
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
		p := p || l;
	END LOOP;
	RETURN CASE WHEN p ~ 'recsys\.predict_(task_)?columns\(' THEN 'columns'
		WHEN p ~ 'recsys\.predict\(' THEN 'row' ELSE p END;
END
$$;
CREATE FUNCTION pg_temp.explain_text(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q;
END
$$;
CREATE TEMP TABLE ref AS SELECT r.id, recsys.predict('p', r.t) AS s, recsys.predict('p', r.t, 'spend') AS spend
	FROM (SELECT t.id, t FROM people t OFFSET 0) r;
SELECT pg_temp.form($$SELECT recsys.predict('p', r.t) FROM (SELECT t.id, t FROM people t OFFSET 0) r$$) AS reference_form;
CREATE VIEW people_v AS SELECT * FROM people;
CREATE TABLE people_parent (LIKE people);
CREATE TABLE people_kid () INHERITS (people_parent);
INSERT INTO people_parent SELECT * FROM people WHERE id > 100;
INSERT INTO people_kid SELECT * FROM people WHERE id <= 100;
CREATE TABLE people_part (LIKE people) PARTITION BY RANGE (id);
CREATE TABLE people_part1 PARTITION OF people_part FOR VALUES FROM (MINVALUE) TO (150);
CREATE TABLE people_part2 (spend float8, clicked bool, emb real[], tags text[], member bool, level bigint,
	job text, hours numeric, gain float8, age int, id int);
ALTER TABLE people_part ATTACH PARTITION people_part2 FOR VALUES FROM (150) TO (MAXVALUE);
INSERT INTO people_part SELECT * FROM people;
-- a dropped column, a column added with a default (not stored in the old rows), a stored generated column
CREATE TABLE people_alt AS SELECT 0 AS gone, * FROM people;
ALTER TABLE people_alt DROP COLUMN gone, DROP COLUMN age;
ALTER TABLE people_alt ADD COLUMN age int DEFAULT 33, ADD COLUMN twice int GENERATED ALWAYS AS (level * 2) STORED;
CREATE TEMP TABLE ref_alt AS SELECT r.id, recsys.predict('p', r.t) AS s FROM (SELECT t.id, t FROM people_alt t OFFSET 0) r;
CREATE TYPE pg_temp.feats AS (age int, gain float8, hours numeric, job text, level bigint, member bool, tags text[], emb real[]);
CREATE TEMP TABLE forms (n int, q text, reference text DEFAULT 'ref');
INSERT INTO forms (n, q) VALUES
	(1, $$SELECT t.id, recsys.predict('p', t) FROM people t$$),
	(2, $$SELECT t.id, recsys.predict('p', t, version => 1) FROM people t$$),
	(3, $$SELECT t.id, recsys.predict('p', t) FROM people t LEFT JOIN people u ON u.id = t.id + 1000$$),
	(4, $$SELECT u.id, recsys.predict('p', t) FROM people u LEFT JOIN people t ON t.id = u.id AND t.id <= 100$$),
	(5, $$SELECT u.id, recsys.predict('p', t) FROM people u FULL JOIN people t ON t.id = u.id AND t.id <= 100$$),
	(6, $$SELECT s.id, recsys.predict('p', s) FROM (SELECT * FROM people) s$$),
	(7, $$SELECT v.id, recsys.predict('p', v) FROM people_v v$$),
	(8, $$SELECT t.id, recsys.predict('p', t) FROM people_parent t$$),
	(9, $$SELECT t.id, recsys.predict('p', t) FROM people_part t$$),
	(10, $$SELECT t.id, recsys.predict('p', ROW(t.age, t.gain, t.hours, t.job, t.level, t.member, t.tags, t.emb)::pg_temp.feats) FROM people t$$),
	(11, $$SELECT s.id, recsys.predict('p', s) FROM (SELECT id, age, gain, hours, job, level, member, tags, emb, 0 AS job FROM people) s$$),
	(12, $$SELECT t.id, (SELECT recsys.predict('p', t)) FROM people t$$),
	(13, $$UPDATE people SET id = id WHERE recsys.predict('p', people) IS NOT NULL RETURNING id, recsys.predict('p', people)$$);
INSERT INTO forms VALUES (14, $$SELECT t.id, recsys.predict('p', t) FROM people_alt t$$, 'ref_alt');
CREATE FUNCTION pg_temp.same(q text, reference text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	EXECUTE format('WITH x(id, s) AS (%s) SELECT count(*) AS n, count(*) FILTER (WHERE x.s IS NULL) AS nulls,
		count(*) FILTER (WHERE x.s = r.s) AS same FROM x LEFT JOIN %I r USING (id)', q, reference) INTO r;
	RETURN format('%s rows, %s NULL, %s equal bit for bit', r.n, r.nulls, r.same);
END
$$;
SELECT n, pg_temp.form(q), pg_temp.same(q, reference) FROM forms ORDER BY n;
-- a generated column, stored or (from 18) virtual, computed when read: the row scores with
-- the computed value either way
DO $$
BEGIN
	EXECUTE 'CREATE TABLE people_gen AS SELECT id, gain, hours, job, level, member, tags, emb FROM people';
	EXECUTE format('ALTER TABLE people_gen ADD COLUMN age int GENERATED ALWAYS AS (level * 3) %s',
		CASE WHEN current_setting('server_version_num')::int >= 180000 THEN 'VIRTUAL' ELSE 'STORED' END);
END
$$;
SELECT count(*) FILTER (WHERE recsys.predict('p', t) = recsys.predict_columns('p', NULL, '{age,gain,hours,job,level,member,tags,emb}',
	NULL, NULL, NULL, (t.level * 3)::int, t.gain, t.hours, t.job, t.level, t.member, t.tags, t.emb)) AS generated_equal
FROM people_gen t;
DROP TABLE people_gen;
-- under a parallel plan each worker scores its rows with the same planned call
ANALYZE people;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT pg_temp.form($$SELECT t.id, recsys.predict('p', t) FROM people t$$) AS parallel_form,
	(SELECT count(*) FROM pg_temp.explain_text($$SELECT t.id, recsys.predict('p', t) FROM people t$$) l WHERE l ~ 'Gather') AS gathers,
	pg_temp.same($$SELECT t.id, recsys.predict('p', t) FROM people t$$, 'ref') AS parallel_same;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
-- one task
SELECT pg_temp.form($$SELECT recsys.predict('p', t, 'spend') FROM people t$$) AS task_form,
	(SELECT count(*) FROM people t JOIN ref USING (id) WHERE recsys.predict('p', t, 'spend') = ref.spend) AS task_equal;
-- grouping sets can make the row NULL: left as the row form
SELECT pg_temp.form($$SELECT recsys.predict('p', t) FROM people t GROUP BY ROLLUP (t)$$) AS rollup_form,
	(SELECT count(*) FILTER (WHERE p IS NULL) FROM (SELECT recsys.predict('p', t) p FROM people t GROUP BY ROLLUP (t)) s) AS rollup_nulls;

-- a prepared statement's generic plan outlives a promote to a version whose spec reads other
-- columns: every column of the row is passed, so the new spec finds its own
SELECT pg_temp.train('p2', '{"numeric": ["age"], "categorical": ["job"]}');
SET plan_cache_mode = force_generic_plan;
PREPARE two AS SELECT t.id, recsys.predict('p2', t) FROM people t;
SELECT pg_temp.form('EXECUTE two') AS prepared_form;
CREATE TEMP TABLE v1 AS EXECUTE two;
SELECT count(*) FROM recsys.train_mmoe('p2', 'people', NULL, '{clicked,spend}',
	(SELECT base FROM cfg) || '{"features": {"numeric": ["gain"], "categorical": ["level"], "multi_categorical": ["tags"]}}',
	epochs => 1, options => '{"allow_contract_change": true}');
SELECT recsys.promote('p2', 2);
CREATE TEMP TABLE v2 AS EXECUTE two;
SELECT count(*) AS rows, count(*) FILTER (WHERE v2.predict = recsys.predict('p2', r.t, version => 2)) AS as_version_2,
	count(*) FILTER (WHERE v1.predict = recsys.predict('p2', r.t, version => 1)) AS v1_as_version_1
FROM v1 JOIN v2 USING (id) JOIN (SELECT t.id, t FROM people t OFFSET 0) r USING (id);
DEALLOCATE two;
RESET plan_cache_mode;
-- values stored apart (TOAST, uncompressed) and compressed in the row
CREATE TABLE people_toast AS SELECT * FROM people;
ALTER TABLE people_toast ALTER COLUMN job SET STORAGE EXTERNAL, ALTER COLUMN tags SET STORAGE MAIN;
UPDATE people_toast SET job = repeat('j', 5000) WHERE id = 5;
UPDATE people_toast SET tags = array_fill('x'::text, ARRAY[2000]) WHERE id = 6;
SELECT reltoastrelid::regclass AS toast FROM pg_class WHERE oid = 'people_toast'::regclass \gset
SELECT (SELECT count(DISTINCT chunk_id) FROM :toast) >= 1 AS values_apart,
	(SELECT pg_column_compression(tags) IS NOT NULL FROM people_toast WHERE id = 6) AS tags_compressed;
SELECT pg_temp.form($$SELECT recsys.predict('p', t) FROM people_toast t$$) AS toast_form,
	(SELECT count(*) FROM people_toast t JOIN (SELECT t.id, t FROM people_toast t OFFSET 0) r USING (id)
	 WHERE recsys.predict('p', t) = recsys.predict('p', r.t)) AS toast_equal;
DROP TABLE people_toast, people_alt, people_part, people_kid, people_parent;
DROP VIEW people_v;

-- predict_columns called directly: values named by a text[], in any order, extra values ignored
SELECT count(*) FILTER (WHERE recsys.predict_columns('p', NULL, '{emb,tags,member,level,job,hours,gain,age,other}',
	NULL, NULL, NULL, t.emb, t.tags, t.member, t.level, t.job, t.hours, t.gain, t.age, 'x'::text) = ref.s) AS direct_equal
FROM people t JOIN ref USING (id);
-- names that change from row to row are bound again (they are compared unless constant)
SELECT count(*) FILTER (WHERE recsys.predict_columns('p', NULL,
	CASE WHEN t.id % 2 = 0 THEN '{age,gain,other,hours,job,level,member,tags,emb}'::text[] ELSE '{age,other,gain,hours,job,level,member,tags,emb}' END,
	NULL, NULL, NULL, t.age, t.gain, t.gain * 2, t.hours, t.job, t.level, t.member, t.tags, t.emb)
	= CASE WHEN t.id % 2 = 0 THEN ref.s ELSE recsys.predict_columns('p', NULL, '{age,gain,hours,job,level,member,tags,emb}',
		NULL, NULL, NULL, t.age, t.gain * 2, t.hours, t.job, t.level, t.member, t.tags, t.emb) END) AS rebound_equal
FROM people t JOIN ref USING (id);
SELECT recsys.predict_task_columns('p', 'people', '{age,gain,hours,job,level,member,tags,emb}', 'spend', NULL, NULL, NULL,
	t.age, t.gain, t.hours, t.job, t.level, t.member, t.tags, t.emb) = ref.spend AS task_direct_equal
FROM people t JOIN ref USING (id) WHERE id = 7;
SELECT recsys.predict_columns(NULL, NULL, '{age}', NULL, NULL, NULL, 1) IS NULL AS null_model,
	recsys.predict_task_columns('p', NULL, '{age}', NULL, NULL, NULL, NULL, 1) IS NULL AS null_task;
SELECT pg_temp.try(s) FROM (VALUES
	($$SELECT recsys.predict_columns('p', NULL, '{age,gain}', NULL, NULL, NULL, 1)$$),
	($$SELECT recsys.predict_columns('p', NULL, NULL, NULL, NULL, NULL, 1)$$),
	($$SELECT recsys.predict_columns('p', NULL, '{age,NULL}', NULL, NULL, NULL, 1, 2)$$),
	($$SELECT recsys.predict_columns('p', NULL, '{age,age}', NULL, NULL, NULL, 1, 2)$$),
	($$SELECT recsys.predict_columns('p', NULL, '{{age},{gain}}', NULL, NULL, NULL, 1, 2)$$),
	($$SELECT recsys.predict_columns('p', NULL, '{age,gain}', NULL, NULL, NULL, VARIADIC ARRAY[1, 2])$$),
	($$SELECT recsys.predict_columns('p', NULL, '{age,gain}', NULL, NULL, NULL, 1, 2.5::float8)$$),
	($$SELECT recsys.predict_columns('p', 'people', '{age,job}', NULL, NULL, NULL, 1, 'a')$$),
	($$SELECT recsys.predict_columns('p', NULL, '{age,gain,hours,job,level,member,tags,emb}', NULL, NULL, NULL,
		1, 2.0::float8, 3::numeric, 'a', 1::bigint, true, '{x}'::text[], '{1,2}'::real[])$$),
	($$SELECT recsys.predict_columns('p', 'record', '{age,job}', NULL, NULL, NULL, 1, 'a'::text)$$),
	($$SELECT recsys.predict_columns('p', NULL, '{age,gain,hours,job,level,member,tags,emb}', NULL, NULL, NULL,
		1, 'NaN'::float8, 3::numeric, 'a'::text, 1::bigint, true, '{x}'::text[], '{1,2}'::real[])$$),
	($$SELECT recsys.predict_columns('p', NULL, '{age,gain,hours,job,level,member,tags,emb}', NULL, NULL, NULL,
		1, 2::float8, 3::numeric, 'a'::text, 1::bigint, true, '{x}'::text[], '{1,2,3}'::real[])$$),
	($$SELECT recsys.predict_columns('p', NULL, '{age,gain,hours,job,level,member,tags,emb}', NULL, NULL, NULL,
		1, 2::float8, 3::numeric, 'a'::text, 1::bigint, true, '{x}'::text[], '{1,NULL}'::real[])$$),
	($$SELECT recsys.predict_columns('p', NULL, '{age,gain,hours,job,level,member,tags,emb}', NULL, NULL, NULL,
		1, 2::float8, 3::numeric, 'a'::text, 1::bigint, true, '{x}'::text[], '{Infinity,2}'::real[])$$),
	($$SELECT recsys.predict_columns('p', 99999::oid::regtype, '{age}', NULL, NULL, NULL, 1)$$),
	($$SELECT recsys.predict_columns('plain0', NULL, '{age}', NULL, NULL, NULL, 1)$$),
	($$SELECT recsys.predict_task_columns('p', NULL, '{age}', 'nope', NULL, NULL, NULL, 1)$$)
) v(s);

-- vocabulary lookups: text longer than 22 bytes (entries apart from the index), integers in a
-- narrow range (looked up by value), spread out or at both ends of bigint (hashed), booleans;
-- seen, unseen (inside and outside the narrow range) and NULL values score as the ids the
-- stored vocabularies give. 'v0039542' is unseen and has the index hash of 'v0000941' (a
-- collision found offline): only comparing the bytes tells them apart
CREATE TABLE vk (id int, long_text text, near int, far bigint, edge bigint, flag bool, code text, emb real[], clicked bool, spend float8);
INSERT INTO vk SELECT i, 'a long categorical value, number ' || (i % 7), CASE WHEN i % 11 = 7 THEN 0 ELSE -3 + i % 11 END,
	(i % 5) * 1000000000000 - 2000000000000, (ARRAY[-9223372036854775808, 0, 9223372036854775807])[1 + i % 3],
	i % 3 = 0, CASE WHEN i % 2 = 0 THEN 'v0000941' ELSE 'v' || lpad(i::text, 7, '0') END, ARRAY[i % 5, i % 2]::real[], i % 2 = 0, i % 7
FROM generate_series(1, 200) i;
SELECT pg_temp.train('vk', '{"categorical": ["long_text", "near", "far", "edge", "flag", "code"], "vector": ["emb"]}', 'vk');
CREATE TEMP TABLE vk_q AS SELECT * FROM vk WHERE id <= 20;
INSERT INTO vk_q VALUES
	(101, 'a long categorical value, number 99', 4, 7, -9223372036854775807, NULL, 'v0039542', '{1,1}'),
	(102, NULL, -100, NULL, 9223372036854775807, true, 'v0000941', '{1,1}'),
	(103, 'short', 1000000, -9223372036854775808, NULL, false, NULL, '{1,1}'),
	(104, 'a long categorical value, number 3', NULL, 2000000000000, 0, true, 'v0039542', '{0,1}');
CREATE FUNCTION pg_temp.vocab_id(model text, col text, v text) RETURNS int LANGUAGE sql AS $$
	SELECT coalesce((SELECT (i - 1)::int FROM jsonb_array_elements_text(c -> 'vocab') WITH ORDINALITY x(value, i) WHERE x.value = v),
		jsonb_array_length(c -> 'vocab') + CASE WHEN v IS NULL THEN 1 ELSE 0 END)
	FROM recsys.models, jsonb_array_elements(config -> 'features' -> 'categorical') c
	WHERE name = model AND c ->> 'column' = col
$$;
SELECT jsonb_agg(c ->> 'column' || ' ' || jsonb_array_length(c -> 'vocab')) AS vocab_sizes
FROM recsys.models, jsonb_array_elements(config -> 'features' -> 'categorical') c WHERE name = 'vk';
SELECT count(*) AS rows, count(*) FILTER (WHERE recsys.predict('vk', q) = recsys.predict('vk', features => q.emb,
	categorical => ARRAY[pg_temp.vocab_id('vk', 'long_text', q.long_text), pg_temp.vocab_id('vk', 'near', q.near::text),
		pg_temp.vocab_id('vk', 'far', q.far::text), pg_temp.vocab_id('vk', 'edge', q.edge::text),
		pg_temp.vocab_id('vk', 'flag', q.flag::text), pg_temp.vocab_id('vk', 'code', q.code)])) AS as_vocabulary_ids
FROM vk_q q;

-- a vocabulary index and an embedding table of several megabytes (lookup tables, aligned to
-- and advised onto huge pages): every value of a 40,000-value vocabulary scores as its id
CREATE TABLE wide_vocab AS SELECT i AS id, 'w' || i AS word, ARRAY[i % 3, 1]::real[] AS emb,
	i % 2 = 0 AS clicked, (i % 5)::float8 AS spend FROM generate_series(1, 40000) i;
SELECT pg_temp.train('wide', '{"categorical": [{"column": "word", "dim": 16}], "vector": ["emb"]}', 'wide_vocab');
CREATE TEMP TABLE wide_ids AS SELECT x.value AS word, (x.i - 1)::int AS id
FROM recsys.models, jsonb_array_elements(config -> 'features' -> 'categorical') c,
	jsonb_array_elements_text(c -> 'vocab') WITH ORDINALITY x(value, i) WHERE name = 'wide';
SELECT count(*) AS rows, count(*) FILTER (WHERE recsys.predict('wide', w) = recsys.predict('wide', features => w.emb,
	categorical => ARRAY[coalesce(i.id, 40000)])) AS as_vocabulary_ids
FROM (SELECT * FROM wide_vocab UNION ALL SELECT 0, 'never', '{1,1}', true, 0) w LEFT JOIN wide_ids i USING (word);
SELECT recsys.drop_model('wide');
DROP TABLE wide_vocab;
