-- Crafted aggregate states: every header field of every state type driven
-- through boundary values, and the state cut short or extended, then fed to
-- every transition, combine (with a valid partner on either side) and final
-- function.  Each call must give a result or a clean error of class 22
-- (data exception), 54 (program limit) or XX; a backend crash would lose the
-- connection here.  The cases are generated, so the counts below are what
-- is checked.
SET extra_float_digits = 0;

-- the outcome of one call: 'ok' with the md5 of the result, or the SQLSTATE
CREATE FUNCTION pg_temp.try(q text, s bytea, partner bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	EXECUTE q INTO r USING s, partner;
	RETURN 'ok:' || coalesce(md5(r), 'null');
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;

-- bytes of b in reverse order
CREATE FUNCTION pg_temp.rev(b bytea) RETURNS bytea LANGUAGE sql AS $$
	SELECT coalesce(string_agg(substring(b FROM i FOR 1), ''::bytea ORDER BY i DESC), ''::bytea)
	FROM generate_series(1, length(b)) i
$$;

-- v as a w-byte little-endian two's complement integer
CREATE FUNCTION pg_temp.le(v numeric, w int) RETURNS bytea LANGUAGE sql AS $$
	SELECT pg_temp.rev(substring(decode(lpad(to_hex(v::bigint), 16, '0'), 'hex') FROM 9 - w FOR w))
$$;

-- the w-byte little-endian integer at byte offset off of b
CREATE FUNCTION pg_temp.read_le(b bytea, off int, w int) RETURNS bigint LANGUAGE sql AS $$
	SELECT CASE w WHEN 8 THEN ('x' || encode(pg_temp.rev(substring(b FROM off + 1 FOR 8)), 'hex'))::bit(64)::bigint
		WHEN 4 THEN ('x' || encode(pg_temp.rev(substring(b FROM off + 1 FOR 4)), 'hex'))::bit(32)::int
		ELSE get_byte(b, off) + 256 * get_byte(b, off + 1) END
$$;

-- one valid state of each type, and the number its counters are measured against
-- (rank-buffer rows, AUC capacity, tasks)
CREATE TEMP TABLE valid_states (kind text PRIMARY KEY, state bytea, cap int);
INSERT INTO valid_states
SELECT 'gramian', recsys.gramian_accum(recsys.gramian_accum(recsys.gramian_accum(NULL,
	'{1,2}'::real[]), '{3,4}'::real[]), '{0.5,-1}'::real[], -0.5::float8), 2048;
INSERT INTO valid_states
SELECT 'als_solve', s, 128 FROM (
	SELECT recsys.als_solve_accum(recsys.als_solve_accum(recsys.als_solve_accum(NULL,
		v1, 2.0::float8, g, 0.5::float8, 5::float8), v2, 0.4::float8, g, 0.5::float8, 5::float8),
		v1, 0.5::float8, g, 0.5::float8, 5::float8) AS s
	FROM (SELECT array_fill(0.01::float8, ARRAY[64, 64]) AS g,
		(SELECT array_agg(sin(i)::real) FROM generate_series(1, 64) i) AS v1,
		(SELECT array_agg(cos(i)::real) FROM generate_series(1, 64) i) AS v2) c) t;
INSERT INTO valid_states
SELECT 'auc', recsys.auc_accum(recsys.auc_accum(recsys.auc_accum(NULL, 0.9::float8, true),
	0.2::float8, false), 0.9::float8, false), 64;
INSERT INTO valid_states
SELECT 'log_loss', recsys.log_loss_accum(recsys.log_loss_accum(NULL, 0.8::float8, true),
	0.3::float8, false), 2;
INSERT INTO valid_states
SELECT 'uncertainty_weights', recsys.uncertainty_weights_accum(recsys.uncertainty_weights_accum(NULL,
	'{0.5,2}'::float8[], '{regression,classification}'::text[]), '{1.5,1}'::float8[],
	'{regression,classification}'::text[]), 2;
INSERT INTO valid_states
SELECT 'predictive_variance', recsys.predictive_variance_accum(recsys.predictive_variance_accum(NULL,
	1.0::float8, 0.5::float8), 3.0::float8, 0.25::float8), 2;
SELECT kind, octet_length(state) AS bytes, cap FROM valid_states ORDER BY kind;

-- header fields: byte offset in the bytea, width, integer (i) or float8 (f)
CREATE TEMP TABLE fields (kind text, field text, off int, width int, typ char);
INSERT INTO fields VALUES
	('*', 'magic', 0, 4, 'i'), ('*', 'version', 4, 2, 'i'), ('*', 'flags', 6, 2, 'i'),
	('gramian', 'dim', 8, 4, 'i'), ('gramian', 'cap', 12, 4, 'i'),
	('gramian', 'n_pos', 16, 4, 'i'), ('gramian', 'n_neg', 20, 4, 'i'),
	('gramian', 'count', 28, 8, 'i'), ('gramian', 'sum[0]', 36, 8, 'f'),
	('als_solve', 'dim', 8, 4, 'i'), ('als_solve', 'cap', 12, 4, 'i'),
	('als_solve', 'n_pos', 16, 4, 'i'), ('als_solve', 'n_neg', 20, 4, 'i'),
	('als_solve', 'count', 28, 8, 'i'), ('als_solve', 'gramian_weight', 36, 8, 'f'),
	('als_solve', 'l2', 44, 8, 'f'), ('als_solve', 'conf_sum', 52, 8, 'f'),
	('auc', 'capacity', 8, 4, 'i'), ('auc', 'nsorted', 12, 4, 'i'), ('auc', 'nused', 16, 4, 'i'),
	('auc', 'reserved', 20, 4, 'i'), ('auc', 'total_pos', 28, 8, 'i'), ('auc', 'total_neg', 36, 8, 'i'),
	('auc', 'entry[0].score', 44, 8, 'f'), ('auc', 'entry[0].npos', 52, 4, 'i'),
	('auc', 'entry[0].nneg', 56, 4, 'i'),
	('log_loss', 'count', 12, 8, 'i'), ('log_loss', 'sum', 20, 8, 'f'), ('log_loss', 'comp', 28, 8, 'f'),
	('uncertainty_weights', 'ntasks', 8, 4, 'i'), ('uncertainty_weights', 'reserved', 12, 4, 'i'),
	('uncertainty_weights', 'count', 20, 8, 'i'), ('uncertainty_weights', 'sum[0]', 28, 8, 'f'),
	('uncertainty_weights', 'type[1]', 61, 1, 'b'),
	('predictive_variance', 'count', 12, 8, 'i'), ('predictive_variance', 'mean', 20, 8, 'f'),
	('predictive_variance', 'm2', 28, 8, 'f'), ('predictive_variance', 'var_mean', 36, 8, 'f');

-- the layout above matches the states (header fields read back as built)
SELECT v.kind, f.field, pg_temp.read_le(v.state, f.off, f.width) AS value
FROM valid_states v JOIN fields f ON f.kind = v.kind
WHERE f.typ = 'i' AND f.field NOT LIKE 'entry%' ORDER BY v.kind, f.off;

-- boundary values of each field: 0, 1, cap - 1, cap, cap + 1, its own value +- 1,
-- the largest and most negative integers of its width, -1; non-finite and
-- out-of-range floats; the state cut short or extended
CREATE TEMP TABLE cases AS
SELECT DISTINCT v.kind, f.field || '=' || x.val AS label,
	overlay(v.state PLACING pg_temp.le(x.val, f.width) FROM f.off + 1 FOR f.width) AS state
FROM valid_states v
JOIN fields f ON f.kind IN (v.kind, '*') AND f.typ = 'i'
CROSS JOIN LATERAL (
	SELECT DISTINCT val FROM unnest(ARRAY[0, 1, v.cap - 1, v.cap, v.cap + 1, -1,
		pg_temp.read_le(v.state, f.off, f.width) - 1, pg_temp.read_le(v.state, f.off, f.width) + 1,
		2::numeric ^ (8 * f.width - 1) - 1, -(2::numeric ^ (8 * f.width - 1))]) val
	WHERE f.width > 2 OR val BETWEEN -32768 AND 32767) x
UNION ALL
SELECT v.kind, f.field || '=' || x.val,
	overlay(v.state PLACING pg_temp.rev(float8send(x.val)) FROM f.off + 1 FOR 8)
FROM valid_states v
JOIN fields f ON f.kind = v.kind AND f.typ = 'f'
CROSS JOIN unnest('{0,-1,1e308,-1e308,NaN,Infinity,-Infinity}'::float8[]) x(val)
UNION ALL
SELECT v.kind, f.field || '=' || x.val, set_byte(v.state, f.off, x.val)
FROM valid_states v
JOIN fields f ON f.kind = v.kind AND f.typ = 'b'
CROSS JOIN unnest('{0,1,2,255}'::int[]) x(val)
UNION ALL
SELECT v.kind, 'length=' || n, substring(v.state FROM 1 FOR n)
FROM valid_states v
CROSS JOIN LATERAL unnest(ARRAY[0, 1, 3, 7, 8, 11, 12, 27, 35, 36,
	octet_length(v.state) - 8, octet_length(v.state) - 1]) n
UNION ALL
SELECT v.kind, 'length+' || n, v.state || decode(repeat('00', n), 'hex')
FROM valid_states v CROSS JOIN unnest('{1,8,16}'::int[]) n
-- the report's case: a full rank buffer whose next row went past the end
UNION ALL
SELECT 'gramian', 'issue: n_pos=cap=count',
	overlay(overlay(recsys.gramian_accum(NULL, '{1,2}'::real[])
	PLACING '\x00080000'::bytea FROM 17 FOR 4) PLACING '\x0008000000000000'::bytea FROM 29 FOR 8);

SELECT kind, count(*) AS cases, count(*) FILTER (WHERE c.state = v.state) AS unchanged
FROM cases c JOIN valid_states v USING (kind) GROUP BY kind ORDER BY kind;

-- every support function: $1 is the crafted state, $2 a valid state of the same kind
CREATE TEMP TABLE calls (kind text, fn text, q text);
INSERT INTO calls VALUES
	('gramian', 'accum', 'SELECT recsys.gramian_accum($1, ''{1,2}''::real[])'),
	('gramian', 'accum w<0', 'SELECT recsys.gramian_accum($1, ''{1,2}''::float8[], -2::float8)'),
	('gramian', 'accum NULL row', 'SELECT recsys.gramian_accum($1, NULL::real[])'),
	('gramian', 'combine(s, valid)', 'SELECT recsys.gramian_combine($1, $2)'),
	('gramian', 'combine(valid, s)', 'SELECT recsys.gramian_combine($2, $1)'),
	('gramian', 'combine(NULL, s)', 'SELECT recsys.gramian_combine(NULL, $1)'),
	('gramian', 'final', 'SELECT recsys.gramian_final($1)'),
	('als_solve', 'accum c>w', 'SELECT recsys.als_solve_accum($1, (SELECT array_agg(sin(i)::real) FROM generate_series(1, 64) i), 3::float8, array_fill(0.01::float8, ARRAY[64, 64]), 0.5::float8, 5::float8)'),
	('als_solve', 'accum c<w', 'SELECT recsys.als_solve_accum($1, (SELECT array_agg(cos(i)::real) FROM generate_series(1, 64) i), 0::float8, array_fill(0.01::float8, ARRAY[64, 64]), 0.5::float8, 5::float8)'),
	('als_solve', 'combine(s, valid)', 'SELECT recsys.als_solve_combine($1, $2)'),
	('als_solve', 'combine(valid, s)', 'SELECT recsys.als_solve_combine($2, $1)'),
	('als_solve', 'combine(NULL, s)', 'SELECT recsys.als_solve_combine(NULL, $1)'),
	('als_solve', 'final', 'SELECT recsys.als_solve_final($1)'),
	('als_solve', 'objective_final', 'SELECT recsys.als_solve_objective_final($1)'),
	('auc', 'accum', 'SELECT recsys.auc_accum($1, 0.5::float8, true)'),
	('auc', 'combine(s, valid)', 'SELECT recsys.auc_combine($1, $2)'),
	('auc', 'combine(valid, s)', 'SELECT recsys.auc_combine($2, $1)'),
	('auc', 'final', 'SELECT recsys.auc_final($1)'),
	('log_loss', 'accum', 'SELECT recsys.log_loss_accum($1, 0.5::float8, true)'),
	('log_loss', 'combine(s, valid)', 'SELECT recsys.log_loss_combine($1, $2)'),
	('log_loss', 'combine(valid, s)', 'SELECT recsys.log_loss_combine($2, $1)'),
	('log_loss', 'final', 'SELECT recsys.log_loss_final($1)'),
	('uncertainty_weights', 'accum', 'SELECT recsys.uncertainty_weights_accum($1, ''{1,2}''::float8[], ''{regression,classification}''::text[])'),
	('uncertainty_weights', 'combine(s, valid)', 'SELECT recsys.uncertainty_weights_combine($1, $2)'),
	('uncertainty_weights', 'combine(valid, s)', 'SELECT recsys.uncertainty_weights_combine($2, $1)'),
	('uncertainty_weights', 'final', 'SELECT recsys.uncertainty_weights_final($1)'),
	('uncertainty_weights', 'loss_final', 'SELECT recsys.uncertainty_weighted_loss_final($1)'),
	('predictive_variance', 'accum', 'SELECT recsys.predictive_variance_accum($1, 2::float8, 1::float8)'),
	('predictive_variance', 'combine(s, valid)', 'SELECT recsys.predictive_variance_combine($1, $2)'),
	('predictive_variance', 'combine(valid, s)', 'SELECT recsys.predictive_variance_combine($2, $1)'),
	('predictive_variance', 'final', 'SELECT recsys.predictive_variance_final($1)');

CREATE TEMP TABLE outcomes AS
SELECT c.kind, k.fn, c.label, c.state = v.state AS unchanged,
	pg_temp.try(k.q, c.state, v.state) AS outcome,
	pg_temp.try(k.q, v.state, v.state) AS reference
FROM cases c JOIN valid_states v USING (kind) JOIN calls k USING (kind);

-- per function: results, errors by SQLSTATE
SELECT kind, fn, count(*) AS calls,
	count(*) FILTER (WHERE outcome LIKE 'ok:%') AS n_ok,
	string_agg(DISTINCT outcome || ' x' || n, ', ') FILTER (WHERE outcome NOT LIKE 'ok:%') AS errors
FROM (SELECT *, count(*) OVER (PARTITION BY kind, fn, outcome) AS n FROM outcomes) o
GROUP BY kind, fn ORDER BY kind, fn;

-- the valid states themselves pass every function
SELECT kind, fn, reference FROM outcomes WHERE reference NOT LIKE 'ok:%' GROUP BY 1, 2, 3;

-- as the initial state of an aggregate, whose transition updates it in place
CREATE TEMP TABLE agg_calls (kind text, args text, sfunc text, finalfunc text, q text);
INSERT INTO agg_calls VALUES
	('gramian', 'real[]', 'recsys.gramian_accum', 'recsys.gramian_final',
	 'SELECT pg_temp.crafted(v)::text FROM (VALUES (''{1,2}''::real[]), (''{3,4}'')) t(v)'),
	('als_solve', 'real[], float8, float8[], float8, float8', 'recsys.als_solve_accum', 'recsys.als_solve_final',
	 'SELECT pg_temp.crafted(v, c, array_fill(0.01::float8, ARRAY[64, 64]), 0.5, 5)::text FROM (SELECT (SELECT array_agg(sin(i * j)::real) FROM generate_series(1, 64) i), j::float8 FROM generate_series(0, 2) j) t(v, c)'),
	('auc', 'float8, bool', 'recsys.auc_accum', 'recsys.auc_final',
	 'SELECT pg_temp.crafted(x, x > 0.3)::text FROM (VALUES (0.1::float8), (0.5), (0.7)) t(x)'),
	('log_loss', 'float8, bool', 'recsys.log_loss_accum', 'recsys.log_loss_final',
	 'SELECT pg_temp.crafted(x, x > 0.3)::text FROM (VALUES (0.1::float8), (0.5), (0.7)) t(x)'),
	('uncertainty_weights', 'float8[], text[]', 'recsys.uncertainty_weights_accum', 'recsys.uncertainty_weights_final',
	 'SELECT pg_temp.crafted(l, ''{regression,classification}'')::text FROM (VALUES (''{1,2}''::float8[]), (''{3,1}'')) t(l)'),
	('predictive_variance', 'float8, float8', 'recsys.predictive_variance_accum', 'recsys.predictive_variance_final',
	 'SELECT pg_temp.crafted(x, 1)::text FROM (VALUES (0.1::float8), (0.5), (0.7)) t(x)');

-- the outcome of running an aggregate whose INITCOND is s
CREATE FUNCTION pg_temp.try_agg(a agg_calls, s bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	EXECUTE format('CREATE AGGREGATE pg_temp.crafted(%s) (SFUNC = %s, STYPE = bytea, FINALFUNC = %s, INITCOND = %L)',
		a.args, a.sfunc, a.finalfunc, s::text);
	EXECUTE a.q INTO r;
	EXECUTE format('DROP AGGREGATE pg_temp.crafted(%s)', a.args);
	RETURN 'ok:' || coalesce(md5(r), 'null');
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;

INSERT INTO outcomes
SELECT c.kind, 'aggregate with INITCOND', c.label, c.state = v.state,
	pg_temp.try_agg(a, c.state), pg_temp.try_agg(a, v.state)
FROM cases c JOIN valid_states v USING (kind) JOIN agg_calls a USING (kind);
SELECT kind, count(*) AS calls, count(*) FILTER (WHERE outcome LIKE 'ok:%') AS n_ok,
	count(*) FILTER (WHERE outcome LIKE '22%') AS n_class_22,
	count(*) FILTER (WHERE reference NOT LIKE 'ok:%') AS reference_failed
FROM outcomes WHERE fn = 'aggregate with INITCOND' GROUP BY kind ORDER BY kind;

-- nothing but class 22, 54 or XX errors; an unchanged state gives the reference result
SELECT count(*) AS bad_sqlstate FROM outcomes
WHERE outcome NOT LIKE 'ok:%' AND left(outcome, 2) NOT IN ('22', '54', 'XX');
SELECT count(*) AS unchanged_but_different FROM outcomes WHERE unchanged AND outcome <> reference;
SELECT count(*) AS issue_case_accepted FROM outcomes WHERE label LIKE 'issue:%' AND outcome LIKE 'ok:%';

-- the report's query itself
SELECT recsys.gramian_accum(overlay(overlay(recsys.gramian_accum(NULL, '{1,2}'::real[])
  PLACING '\x00080000'::bytea FROM 17 FOR 4) PLACING '\x0008000000000000'::bytea FROM 29 FOR 8),
  '{1,2}'::real[]);
