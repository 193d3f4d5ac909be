/*
 * store/spi_safe.h
 *		SPI connections that run their SQL with a fixed, safe search_path.
 *
 * SQL that recsys runs through SPI must not resolve functions or operators
 * through the caller's search_path: a role that can create objects in a
 * schema on a superuser's path could otherwise plant look-alikes (an
 * "=(text, text)" earlier on the path wins over pg_catalog's).  Besides
 * schema-qualifying what it names, every SPI use goes through these two
 * calls, which set search_path to "pg_catalog, pg_temp" for the connection
 * and restore it afterwards (on error the transaction's abort restores it).
 */
#ifndef SPI_SAFE_H
#define SPI_SAFE_H

extern int	RecsysSpiConnect(void);
extern void RecsysSpiFinish(int guc_level);
extern char *RecsysRelationSqlName(Oid relid);

#endif
