-- Serving embeddings: recommend, recommend_all, fold_in, recommend_for_items,
-- recommend_all_for_items: edge cases and every error with its SQLSTATE
SET extra_float_digits = 0;

-- Run a statement; show 'ok' or the SQLSTATE, message and detail of its error
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	detail text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
	RETURN SQLSTATE || ': ' || SQLERRM || coalesce(nullif(' (' || detail || ')', ' ()'), '');
END $$;

-- a hand-made model: 3 items in 2 dimensions, 2 users
INSERT INTO recsys.model_names (name) VALUES ('hand'), ('bare'), ('empty'), ('an mmoe');
INSERT INTO recsys.models (name, version, kind, config) VALUES
	('hand', 1, 'embeddings', '{"gramian_weight": 0.5, "l2": 0.1, "options": {"nu": 0}}'),
	('bare', 1, 'embeddings', '{}'),
	('empty', 1, 'embeddings', '{"gramian_weight": 0.5, "l2": 0.1}'),
	('an mmoe', 1, 'mmoe', '{}');
INSERT INTO recsys.item_vectors VALUES ('hand', 1, 10, '{1,0}'), ('hand', 1, 20, '{0,1}'), ('hand', 1, 30, '{1,1}'),
	('bare', 1, 10, '{1,0}');
INSERT INTO recsys.user_vectors VALUES ('hand', 1, 1, '{2,1}', '{10}'), ('hand', 1, 2, '{-1,3}', '{}'),
	('bare', 1, 1, '{1,0}', '{}');

SELECT * FROM recsys.recommend('hand', 1);
SELECT * FROM recsys.recommend('hand', 1, exclude_seen => false);
SELECT * FROM recsys.recommend('hand', 1, 1, false, 1);
SELECT count(*) AS unknown_user FROM recsys.recommend('hand', 42);
SELECT count(*) AS null_user FROM recsys.recommend('hand', NULL);
SELECT count(*) AS no_items FROM recsys.recommend('empty', 1);
SELECT * FROM recsys.recommend_all('hand', 2);
SELECT * FROM recsys.recommend_all('hand', 5, '{2}', false);
SELECT count(*) AS no_users FROM recsys.recommend_all('hand', 5, '{}');
SELECT id, embedding FROM recsys.item_embeddings('hand', 1);
SELECT id, embedding FROM recsys.user_embeddings('hand');

-- fold_in: (w G + sum (c - w) v v^T + l2 I) x = sum c v; here G = {{2,1},{1,2}}, w = 0.5, lambda = 0.1
SELECT recsys.fold_in('hand', '{10}') AS one_item, recsys.fold_in('hand', '{10,10}') AS repeated,
	recsys.fold_in('hand', '{10}', '{2}') AS weight_2;
SELECT recsys.fold_in('hand', '{10,999}') AS one_unknown;
SELECT recsys.fold_in('hand', '{999}') IS NULL AS none_known, recsys.fold_in('hand', '{10}', '{0}') IS NULL AS zero_weight;
SELECT * FROM recsys.recommend_for_items('hand', '{10}');
SELECT * FROM recsys.recommend_for_items('hand', '{10}', 3, exclude_seen => false);
SELECT count(*) AS none_known FROM recsys.recommend_for_items('hand', '{999}');
CREATE TABLE "Hist ""x""" ("who" int, "what;" bigint, w numeric, t text, f float8);
INSERT INTO "Hist ""x""" VALUES (7, 10, 1, 'a', 1), (7, 30, 0.5, 'b', 1), (8, 999, 1, 'c', 1), (9, 20, 2, 'd', 1);
SELECT * FROM recsys.recommend_all_for_items('hand', '"Hist ""x"""', 'who', 'what;', 'w', 2);
SELECT * FROM recsys.recommend_all_for_items('hand', '"Hist ""x"""', 'who', 'what;', k => 1, exclude_seen => false);

-- errors
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('hand', 1, 0)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('hand', 1, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('hand', 1, 2000000)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend(NULL, 1)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('hand', 1, exclude_seen => NULL)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('nothing', 1)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('hand', 1, version => 7)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('hand', 1, version => 0)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('an mmoe', 1)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('', 1)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all('hand', 2, '{{1}}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all('hand', 2, '{1,NULL}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.user_embeddings('hand', 0)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.item_embeddings('hand', 3)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.item_embeddings('an mmoe')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.item_embeddings(NULL)$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('hand', NULL)$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('hand', '{}')$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('hand', '{10,NULL}')$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('hand', '{{10}}')$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('hand', '{10,20}', '{1}')$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('hand', '{10,20}', '{1,NULL}')$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('hand', '{10,20}', '{1,-1}')$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('hand', '{10,20}', '{1,NaN}')$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('hand', '{10,20}', '{1,Infinity}')$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('bare', '{10}')$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('an mmoe', '{10}')$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('nothing', '{10}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_for_items('hand', '{}')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_for_items('hand', '{10}', 0)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all_for_items('hand', 'no_such_table')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all_for_items('hand', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all_for_items('hand', '"Hist ""x"""')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all_for_items('hand', '"Hist ""x"""', 'who', 't')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all_for_items('hand', '"Hist ""x"""', 'who', 'what;', 't')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all_for_items('hand', '"Hist ""x"""', 'who', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all_for_items('bare', '"Hist ""x"""', 'who', 'what;')$$);
INSERT INTO "Hist ""x""" VALUES (9, 20, -1, 'e', 1);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all_for_items('hand', '"Hist ""x"""', 'who', 'what;', 'w')$$);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all_for_items('hand', '"Hist ""x"""', 'who', 'what;', 'f')$$);
UPDATE "Hist ""x""" SET f = 'NaN' WHERE t = 'e';
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all_for_items('hand', '"Hist ""x"""', 'who', 'what;', 'f')$$);
INSERT INTO "Hist ""x""" VALUES (NULL, 20, 1, 'f', 1);
SELECT pg_temp.err($$SELECT * FROM recsys.recommend_all_for_items('hand', '"Hist ""x"""', 'who', 'what;')$$);
-- a broken store is reported, not served
INSERT INTO recsys.model_names (name) VALUES ('ragged');
INSERT INTO recsys.models (name, version, kind, config) VALUES ('ragged', 1, 'embeddings', '{}');
INSERT INTO recsys.item_vectors VALUES ('ragged', 1, 1, '{1,0}'), ('ragged', 1, 2, '{1,0,0}');
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('ragged', 1)$$);
INSERT INTO recsys.model_names (name) VALUES ('badgram');
INSERT INTO recsys.models (name, version, kind, config, weights) VALUES ('badgram', 1, 'embeddings', '{}', '\x00');
INSERT INTO recsys.item_vectors VALUES ('badgram', 1, 1, '{1,0}');
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('badgram', 1)$$);
INSERT INTO recsys.user_vectors VALUES ('hand', 1, 3, '{1,2,3}', '{}');
SELECT pg_temp.err($$SELECT * FROM recsys.recommend('hand', 3)$$);
-- a stored Gramian must be F64 [dim, dim] and finite; a file without one means "compute it"
INSERT INTO recsys.model_names (name) VALUES ('gram32'), ('gramnan'), ('gramnone');
INSERT INTO recsys.models (name, version, kind, config, weights) VALUES
	('gram32', 1, 'embeddings', '{"gramian_weight": 0.5, "l2": 0.1}', '\x50000000000000007b226974656d5f6772616d69616e223a207b226474797065223a2022463332222c20227368617065223a205b322c20325d2c2022646174615f6f666673657473223a205b302c2031365d7d7d202020200000803f00000000000000000000803f'),
	('gramnan', 1, 'embeddings', '{"gramian_weight": 0.5, "l2": 0.1}', '\x50000000000000007b226974656d5f6772616d69616e223a207b226474797065223a2022463634222c20227368617065223a205b322c20325d2c2022646174615f6f666673657473223a205b302c2033325d7d7d20202020000000000000f03f000000000000f87f0000000000000000000000000000f03f'),
	('gramnone', 1, 'embeddings', '{"gramian_weight": 0.5, "l2": 0.1, "options": {"nu": 0}}', '\x48000000000000007b226f74686572223a207b226474797065223a2022463634222c20227368617065223a205b322c20325d2c2022646174615f6f666673657473223a205b302c2033325d7d7d202020000000000000f03f00000000000000000000000000000000000000000000f03f');
INSERT INTO recsys.item_vectors SELECT m, 1, id, embedding FROM recsys.item_vectors, unnest('{gram32,gramnan,gramnone}'::text[]) m
	WHERE model = 'hand' AND version = 1;
SELECT pg_temp.err($$SELECT recsys.fold_in('gram32', '{10}')$$);
SELECT pg_temp.err($$SELECT recsys.fold_in('gramnan', '{10}')$$);
SELECT recsys.fold_in('gramnone', '{10}') = recsys.fold_in('hand', '{10}') AS computed_gramian;
