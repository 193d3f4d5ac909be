-- The first hour of a new user (issue 22): errors that say what went wrong and
-- what to do, and serving NOTICEs summed per statement, not per call
SET extra_float_digits = 0;

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

-- A tiny MMoE file (2 inputs, one expert, one regression task) and its config
SELECT decode('d8010000000000007b2267617465732e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b315d2c2022646174615f6f666673657473223a205b33322c2033365d7d2c202267617465732e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b312c20325d2c2022646174615f6f666673657473223a205b32342c2033325d7d2c2022746f776572732e302e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b315d2c2022646174615f6f666673657473223a205b34342c2034385d7d2c2022657870657274732e302e302e62696173223a207b226474797065223a2022463332222c20227368617065223a205b325d2c2022646174615f6f666673657473223a205b31362c2032345d7d2c2022746f776572732e302e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b312c20325d2c2022646174615f6f666673657473223a205b33362c2034345d7d2c2022657870657274732e302e302e776569676874223a207b226474797065223a2022463332222c20227368617065223a205b322c20325d2c2022646174615f6f666673657473223a205b302c2031365d7d7d0000803f00000000000000000000803f00000000000000009a99993e333333bfcdcccc3d0000803f000000400000003f', 'hex') AS file \gset
\set cfg '{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "y", "type": "regression"}]}'

-- import_model given the text of an encoded file, not its bytes: base64 (as
-- encode() writes it, with line breaks), hex with and without bytea's \x, and
-- \x escaped once more; each says how to pass bytes
SELECT pg_temp.try(format($$SELECT recsys.import_model('fh_mmoe', convert_to(encode(%L::bytea, 'base64'), 'UTF8'), %L)$$, :'file', :'cfg'));
SELECT pg_temp.try(format($$SELECT recsys.import_model('fh_mmoe', convert_to(%L, 'UTF8'), %L)$$, :'file', :'cfg'));
SELECT pg_temp.try(format($$SELECT recsys.import_model('fh_mmoe', convert_to(encode(%L::bytea, 'hex'), 'UTF8'), %L)$$, :'file', :'cfg'));
SELECT pg_temp.try(format($$SELECT recsys.import_model('fh_mmoe', convert_to('\' || %L, 'UTF8'), %L)$$, :'file', :'cfg'));
-- bytes that are no text encoding keep the safetensors hint
SELECT pg_temp.try($$SELECT recsys.import_model('fh_mmoe', '\x0102030405060708ff'::bytea, '{}')$$);
-- decoded, the same text imports
SELECT recsys.import_model('fh_mmoe', decode(encode(:'file'::bytea, 'base64'), 'base64'), :'cfg') AS version;

-- a NULL element names the argument and its position
SELECT pg_temp.try($$SELECT recsys.predict('fh_mmoe', '{1,NULL}'::real[])$$);
SELECT pg_temp.try($$SELECT recsys.predict('fh_mmoe', '[0:1]={1,NULL}'::real[])$$);
SELECT pg_temp.try($$SELECT recsys.predict_batch('fh_mmoe', '{{1,2},{3,NULL}}'::real[])$$);
SELECT pg_temp.try($$SELECT recsys.dot('{1,2}'::real[], '{NULL,2}'::real[])$$);
SELECT pg_temp.try($$SELECT recsys.gramian(v) FROM (VALUES ('{1,2,NULL}'::real[])) t(v)$$);
SELECT pg_temp.try($$SELECT recsys.uncertainty_loss('{1,2}', '{0,NULL}')$$);
SELECT pg_temp.try($$SELECT recsys.frobenius('{{1,2},{NULL,4}}', '{{1,2},{3,4}}')$$);

-- train_mmoe with a text label column: the column, the accepted types, how to convert
CREATE TABLE fh_adult (features real[], income text, age_group varchar);
INSERT INTO fh_adult SELECT ARRAY[g, g % 3]::real[], CASE WHEN g % 4 = 0 THEN '>50K' ELSE '<=50K' END, 'x'
FROM generate_series(1, 20) g;
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('fh_adult', 'fh_adult', 'features', '{income}', $c${"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "income", "type": "binary"}]}$c$)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_mmoe('fh_adult', 'fh_adult', 'features', '{"Income"}', $c${"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "income", "type": "binary"}]}$c$)$$);
-- the hint's view trains (its per-epoch NOTICE shows a time)
SET client_min_messages = warning;
CREATE VIEW fh_adult_labels AS SELECT features, (income = '>50K')::int AS income FROM fh_adult;
SELECT count(*) AS epochs FROM recsys.train_mmoe('fh_adult', 'fh_adult_labels', 'features', '{income}',
	'{"kind": "mmoe", "input_dim": 2, "experts": {"count": 1, "hidden": [2]}, "tasks": [{"name": "income", "type": "binary"}]}', epochs => 1);
RESET client_min_messages;

-- train_embeddings with text ids points to the text-id recipe
CREATE TABLE fh_events (login text, sku text, user_id int, item_id varchar);
INSERT INTO fh_events VALUES ('alice', 'SKU-3', 1, '3');
SELECT pg_temp.try($$SELECT * FROM recsys.train_embeddings('fh_shop', 'fh_events', 'login', 'sku')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.train_embeddings('fh_shop', 'fh_events', 'user_id', 'item_id')$$);
-- a wrong type that is not text gets no such hint
SELECT pg_temp.try($$SELECT * FROM recsys.train_embeddings('fh_shop', 'fh_adult', 'features', 'income')$$);

-- a hand-made embeddings model: 3 items in 2 dimensions, users 1 and 2
INSERT INTO recsys.model_names (name) VALUES ('fh_ranker');
INSERT INTO recsys.models (name, version, kind, config) VALUES
	('fh_ranker', 1, 'embeddings', '{"gramian_weight": 0.5, "l2": 0.1, "options": {"nu": 0}}');
INSERT INTO recsys.item_vectors VALUES ('fh_ranker', 1, 10, '{1,0}'), ('fh_ranker', 1, 20, '{0,1}'), ('fh_ranker', 1, 30, '{1,1}');
INSERT INTO recsys.user_vectors VALUES ('fh_ranker', 1, 1, '{2,1}', '{10}'), ('fh_ranker', 1, 2, '{-1,3}', '{}');

-- a misspelt model name: the nearest names (C and SQL paths alike)
SELECT pg_temp.try($$SELECT * FROM recsys.recommend('fh_rnker', 1)$$);
SELECT pg_temp.try($$SELECT recsys.predict('fh_mmo', '{1,2}'::real[])$$);
SELECT pg_temp.try($$SELECT recsys.export_model('FH_MMOE')$$);
SELECT pg_temp.try($$SELECT recsys.resolve_model_version('fh_rankers', 1)$$);
SELECT pg_temp.try($$SELECT recsys.drop_model('fh_rankr')$$);
SELECT pg_temp.try($$SELECT recsys.transfer_model('fh_mmoee', current_user::regrole)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.user_embeddings('fh_ranke')$$);
-- two names equally near
INSERT INTO recsys.model_names (name) VALUES ('fh_rankes');
INSERT INTO recsys.models (name, version, kind, config) VALUES ('fh_rankes', 1, 'embeddings', '{}');
SELECT pg_temp.try($$SELECT * FROM recsys.recommend('fh_rankex', 1)$$);
SELECT recsys.drop_model('fh_rankes') AS dropped;
-- nothing near, an existing name without the version, a version of a misspelt name
SELECT pg_temp.try($$SELECT * FROM recsys.recommend('completely different', 1)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.recommend('fh_ranker', 1, version => 7)$$);
SELECT pg_temp.try($$SELECT recsys.export_model('fh_mmoee', 1)$$);
-- a role that may not read the names gets no suggestion (only what it may see)
DROP ROLE IF EXISTS fh_reader;
CREATE ROLE fh_reader;
GRANT USAGE ON SCHEMA recsys TO fh_reader;
GRANT SELECT ON recsys.models, recsys.model_aliases TO fh_reader;
SET ROLE fh_reader;
SELECT pg_temp.try($$SELECT recsys.export_model('fh_mmoee')$$);
RESET ROLE;
REVOKE ALL ON recsys.models, recsys.model_aliases FROM fh_reader;
REVOKE ALL ON SCHEMA recsys FROM fh_reader;
DROP ROLE fh_reader;

-- recommend for a user the model does not know: one NOTICE per statement
SELECT count(*) AS rows FROM recsys.recommend('fh_ranker', 42);
SELECT u, count(r.item_id) AS rows
FROM unnest('{1,42,2,43,44}'::bigint[]) u LEFT JOIN LATERAL recsys.recommend('fh_ranker', u, 2) r ON true
GROUP BY u ORDER BY u;
-- known users only: no NOTICE
SELECT count(*) AS rows FROM unnest('{1,2}'::bigint[]) u, LATERAL recsys.recommend('fh_ranker', u) r;
-- a statement that fails reports only its error
SELECT r.item_id, 1 / (u - 1) AS boom
FROM unnest('{42,1}'::bigint[]) u, LATERAL recsys.recommend('fh_ranker', u) r;

-- fold_in over 50 users in a LATERAL: one NOTICE for the statement, with the count
CREATE TABLE fh_hist AS
SELECT u, CASE WHEN u % 2 = 0 THEN ARRAY[10, 20]::bigint[] WHEN u % 5 = 0 THEN ARRAY[999]::bigint[]
	ELSE ARRAY[10, 900 + u]::bigint[] END AS items
FROM generate_series(1, 50) u;
SELECT count(*) AS users, count(x) AS folded
FROM fh_hist h, LATERAL (SELECT recsys.fold_in('fh_ranker', h.items) AS x) f;
SELECT count(*) AS rows
FROM fh_hist h, LATERAL recsys.recommend_for_items('fh_ranker', h.items, 1) r;
-- one call keeps the plain message
SELECT recsys.fold_in('fh_ranker', '{10,999}') AS one_unknown;
-- in PL/pgSQL: a statement run through SPI reports when it ends; a simple
-- expression (whose state lives until commit) when the transaction commits
CREATE FUNCTION pg_temp.fold_loop(n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	x real[];
	c int := 0;
BEGIN
	FOR i IN 1 .. n LOOP
		x := recsys.fold_in('fh_ranker', ARRAY[10, 990 + i]::bigint[]);
		c := c + 1;
	END LOOP;
	RETURN c;
END
$$;
SELECT pg_temp.fold_loop(3) AS calls;
BEGIN;
SELECT pg_temp.fold_loop(2) AS calls;
SELECT 'before commit' AS step;
COMMIT;
-- a rolled-back transaction reports nothing
BEGIN;
SELECT pg_temp.fold_loop(2) AS calls;
ROLLBACK;

SELECT recsys.drop_model('fh_ranker') + recsys.drop_model('fh_mmoe') + recsys.drop_model('fh_adult') AS dropped;
