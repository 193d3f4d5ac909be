SELECT plan(1);
SELECT is(recsys.dot('{1,2}'::real[], '{3,4}'::real[]), 11::float8, 'dot');
SELECT * FROM finish();
