/*
 * store/spi_safe.c
 *		SPI connections with a fixed, safe search_path (see spi_safe.h).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "store/spi_safe.h"

/* Connect to SPI with search_path = pg_catalog, pg_temp; get the GUC level to restore */
int
RecsysSpiConnect(void)
{
	int			level;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

/* Restore the search_path and close the SPI connection */
void
RecsysSpiFinish(int guc_level)
{
	AtEOXact_GUC(true, guc_level);
	SPI_finish();
}

/* Get the quoted, schema-qualified name of a relation, for SQL run through SPI */
char *
RecsysRelationSqlName(Oid relid)
{
	char	   *name = get_rel_name(relid);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), name);
}
