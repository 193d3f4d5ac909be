-- recsys.gramian, recsys.dot, recsys.frobenius: edge cases with exact output
SET extra_float_digits = 0;
SELECT recsys.gramian(v) FROM (VALUES ('{1,2}'::real[]), ('{3,4}')) t(v);
