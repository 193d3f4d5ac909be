-- recsys.gramian, recsys.dot, recsys.frobenius: edge cases with exact output
SET extra_float_digits = 0;
-- Run a statement; show 'ok', or its error as SQLSTATE: message with DETAIL and HINT
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	d text;
	h text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	RETURN SQLSTATE || ': ' || SQLERRM || coalesce(E'\nDETAIL:  ' || nullif(d, ''), '')
		|| coalesce(E'\nHINT:  ' || nullif(h, ''), '');
END
$$;

-- basic sums, real[] and double precision[]
SELECT recsys.gramian(v) FROM (VALUES ('{1,2}'::real[]), ('{3,4}')) t(v);
SELECT recsys.gramian(v) FROM (VALUES ('{1,2}'::float8[]), ('{3,4}')) t(v);
SELECT recsys.gramian(v) FROM (VALUES ('{0.5,-1.5,2}'::float8[])) t(v);
-- k = 1
SELECT recsys.gramian(ARRAY[i]::real[]) FROM generate_series(1, 10) i;
-- empty input and all-NULL input give NULL
SELECT recsys.gramian(v) IS NULL AS empty_is_null FROM (SELECT '{1}'::real[] v WHERE false) t;
SELECT recsys.gramian(v) IS NULL AS nulls_is_null FROM (VALUES (NULL::real[]), (NULL)) t(v);
-- NULL rows are skipped
SELECT recsys.gramian(v) FROM (VALUES ('{1,1}'::real[]), (NULL), ('{2,0}')) t(v);
-- more rows than one buffer (512 rows at k = 2), with a flush in the middle
SELECT recsys.gramian(ARRAY[1, i % 3]::real[]) FROM generate_series(1, 2000) i;
-- k = 1024: a zero vector gives zeros; the identity rows give the identity
SELECT array_dims(g), g[1][1] AS g11, g[1024][1024] AS gkk, g[1][2] AS g12,
	(SELECT sum(x) FROM unnest(g) x) AS total
FROM (SELECT recsys.gramian(array_fill(0::real, ARRAY[1024])) AS g) s;
SELECT array_dims(g), g[1][1] AS g11, g[512][512] AS g512, g[1024][1024] AS gkk, g[3][700] AS g3_700,
	(SELECT sum(x) FROM unnest(g) x) AS total
FROM (SELECT recsys.gramian((SELECT array_agg(CASE WHEN j = i THEN 1 ELSE 0 END)
		FROM generate_series(1, 1024) j)::real[]) AS g
	FROM generate_series(1, 1024) i) s;

-- weights: Σ w v vᵀ, zero and negative weights, NULL weight skips the row
SELECT recsys.gramian(v, w) FROM (VALUES ('{1,2}'::real[], 2.0::float8), ('{3,4}', 0.5)) t(v, w);
SELECT recsys.gramian(v, w) FROM (VALUES ('{1,2}'::real[], 0::float8)) t(v, w);
SELECT recsys.gramian(v, w) FROM (VALUES ('{1,2}'::real[], 1::float8), ('{1,1}', -1)) t(v, w);
SELECT recsys.gramian(v, w) FROM (VALUES ('{1,2}'::float8[], -4::float8), ('{3,4}', NULL)) t(v, w);
SELECT recsys.gramian(v, w) IS NULL AS null_weights_is_null FROM (VALUES ('{1,2}'::real[], NULL::float8)) t(v, w);
-- many negative and positive weights interleaved across buffer flushes
SELECT recsys.gramian(ARRAY[1, i % 5]::real[], CASE WHEN i % 2 = 0 THEN 1.0 ELSE -0.5 END)
FROM generate_series(1, 3001) i;

-- errors
SELECT pg_temp.err($$SELECT recsys.gramian(v) FROM (VALUES ('{1,2}'::real[]), ('{1,2,3}')) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.gramian(v) FROM (VALUES ('{1,NULL}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.gramian(v) FROM (VALUES ('{1,NaN}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.gramian(v) FROM (VALUES ('{1,Infinity}'::float8[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.gramian(v) FROM (VALUES ('{-Infinity,1}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.gramian(v) FROM (VALUES ('{{1,2},{3,4}}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.gramian(v) FROM (VALUES ('{}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.gramian(v, 'NaN') FROM (VALUES ('{1,2}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.gramian(v, '-Infinity') FROM (VALUES ('{1,2}'::real[])) t(v)$$);
SELECT pg_temp.err($$SELECT recsys.gramian(array_fill(1::real, ARRAY[4097]))$$);
SET recsys.max_dim = 3;
SELECT pg_temp.err($$SELECT recsys.gramian('{1,2,3,4}'::real[])$$);
SELECT recsys.gramian('{1,2,3}'::real[]);
RESET recsys.max_dim;
SELECT pg_temp.err($$SET recsys.max_dim = 100000$$);

-- crafted and truncated states are refused
SELECT pg_temp.err($$SELECT recsys.gramian_final('\x00'::bytea)$$);
SELECT pg_temp.err($$SELECT recsys.gramian_final(substring(recsys.gramian_accum(NULL, '{1,2}'::real[]) FROM 1 FOR 40))$$);
SELECT pg_temp.err($$SELECT recsys.gramian_combine(recsys.gramian_accum(NULL, '{1,2}'::real[]), '\xdeadbeef'::bytea)$$);
SELECT pg_temp.err($$SELECT recsys.gramian_accum('\x0123456789abcdef0123456789abcdef0123456789abcdef'::bytea, '{1,2}'::real[])$$);
-- a well-formed header with a huge dimension, a dimension that does not match
-- the size, a negative row count, and a NaN planted in the accumulator
SELECT pg_temp.err($$SELECT recsys.gramian_final(overlay(recsys.gramian_accum(NULL, '{1,2}'::real[])
	PLACING '\xffffff7f'::bytea FROM 9 FOR 4))$$);
SELECT pg_temp.err($$SELECT recsys.gramian_final(overlay(recsys.gramian_accum(NULL, '{1,2}'::real[])
	PLACING '\x03000000'::bytea FROM 9 FOR 4))$$);
SELECT pg_temp.err($$SELECT recsys.gramian_final(overlay(recsys.gramian_accum(NULL, '{1,2}'::real[])
	PLACING '\xffffffffffffffff'::bytea FROM 29 FOR 8))$$);
SELECT pg_temp.err($$SELECT recsys.gramian_final(overlay(recsys.gramian_accum(NULL, '{1,2}'::real[])
	PLACING '\x000000000000f87f'::bytea FROM 37 FOR 8))$$);
SELECT pg_temp.err($$SELECT recsys.gramian_combine(recsys.gramian_accum(NULL, '{1,2}'::real[]),
	overlay(recsys.gramian_accum(NULL, '{1,2}'::real[]) PLACING '\x000000000000f07f'::bytea FROM 37 FOR 8))$$);
-- different dimensions in combine
SELECT pg_temp.err($$SELECT recsys.gramian_combine(recsys.gramian_accum(NULL, '{1,2}'::real[]),
	recsys.gramian_accum(NULL, '{1,2,3}'::real[]))$$);
-- direct calls work on copies and give the right answer
SELECT recsys.gramian_final(recsys.gramian_combine(recsys.gramian_accum(NULL, '{1,2}'::real[]),
	recsys.gramian_accum(recsys.gramian_accum(NULL, '{3,4}'::real[]), '{0,1}'::real[])));
SELECT recsys.gramian_final(recsys.gramian_combine(NULL, recsys.gramian_accum(NULL, '{1,2}'::real[])));
SELECT recsys.gramian_combine(NULL, NULL) IS NULL AS null_combine;
SELECT 1 AS server_still_up;

-- dot
SELECT recsys.dot('{1,2,3}'::real[], '{4,5,6}'::real[]);
SELECT recsys.dot('{0.1,0.2}'::float8[], '{10,10}'::float8[]);
SELECT recsys.dot('{1,2}'::real[], '{3,4}'::float8[]);
SELECT recsys.dot(NULL::real[], '{1}'::real[]) IS NULL AS strict_null;
SELECT pg_temp.err($$SELECT recsys.dot('{1,2}'::real[], '{1,2,3}'::real[])$$);
SELECT pg_temp.err($$SELECT recsys.dot('{1,NULL}'::real[], '{1,2}'::real[])$$);
SELECT pg_temp.err($$SELECT recsys.dot('{NaN,1}'::float8[], '{1,2}'::float8[])$$);

-- frobenius
SELECT recsys.frobenius('{{1,2},{3,4}}', '{{1,0},{0,1}}');
SELECT recsys.frobenius('{{1,2,3}}', '{{4,5,6}}');
SELECT recsys.frobenius(g, g) FROM (SELECT recsys.gramian(v) g FROM (VALUES ('{1,2}'::real[]), ('{3,4}')) t(v)) s;
SELECT pg_temp.err($$SELECT recsys.frobenius('{{1,2},{3,4}}', '{{1,2,3},{4,5,6}}')$$);
SELECT pg_temp.err($$SELECT recsys.frobenius('{1,2}', '{1,2}')$$);
SELECT pg_temp.err($$SELECT recsys.frobenius('{{1,NULL}}', '{{1,2}}')$$);
SELECT pg_temp.err($$SELECT recsys.frobenius('{{1,NaN}}', '{{1,2}}')$$);
