-- Install script only (not part of upgrades): on a Citus coordinator with
-- nodes, the store becomes reference tables at once, so that CREATE
-- EXTENSION on the coordinator is all a cluster needs.  Workers (whose
-- copies of this script Citus runs) and servers without Citus skip it.
DO $$
DECLARE
	g int;
	nodes int;
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
		EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO g;
		EXECUTE 'SELECT count(*) FROM pg_catalog.pg_dist_node WHERE noderole OPERATOR(pg_catalog.=) ''primary'''
			INTO nodes;
		IF g OPERATOR(pg_catalog.=) 0 AND nodes OPERATOR(pg_catalog.>) 0 THEN
			PERFORM recsys.citus_attach_store();
		END IF;
	END IF;
END
$$;
