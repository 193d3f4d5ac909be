/*
 * spi_safe.c
 *		SPI connections with a fixed, safe search_path (see spi_safe.h).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/guc.h"

#include "spi_safe.h"

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
