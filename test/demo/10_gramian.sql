-- Demo part 1: the Gramian of a small table of vectors
\pset footer off
\echo '== a small table of 3-d item vectors and its Gramian V^T V'
CREATE TABLE demo_items AS
	SELECT i AS item_id, ARRAY[sin(i), cos(i), (i % 7) / 7.0]::real[] AS v
	FROM generate_series(1, 1000) i;
SELECT round(g[1][1]::numeric, 3) AS g11, round(g[1][2]::numeric, 3) AS g12,
       round(g[2][2]::numeric, 3) AS g22, round(g[3][3]::numeric, 3) AS g33
FROM (SELECT recsys.gramian(v) AS g FROM demo_items) s;
\echo '== the Gramian penalty <G_u, G_v>_F between two halves'
SELECT round(recsys.frobenius(
	(SELECT recsys.gramian(v) FROM demo_items WHERE item_id <= 500),
	(SELECT recsys.gramian(v) FROM demo_items WHERE item_id > 500))::numeric, 3) AS penalty;
