/*
 * store/spi_safe.h
 *		SPI connections that run their SQL with a fixed, safe search_path,
 *		and the checks on a caller's relation and columns before recsys
 *		reads them.
 *
 * SQL that recsys runs through SPI must not resolve functions or operators
 * through the caller's search_path: a role that can create objects in a
 * schema on a superuser's path could otherwise plant look-alikes (an
 * "=(text, text)" earlier on the path wins over pg_catalog's).  Besides
 * schema-qualifying what it names, every SPI use goes through these two
 * calls, which set search_path to "pg_catalog, pg_temp" for the connection
 * and restore it afterwards (on error the transaction's abort restores it).
 *
 * A caller's relation is another way in: a column of a type its owner
 * made can carry a cast (CREATE CAST ... WITH FUNCTION) that runs as whoever
 * reads it through "::".  Every column recsys reads from a caller's relation
 * is checked with RecsysColumnType first: a real column of the relation
 * (no system column, no whole-row reference), of one of the exact built-in
 * types the caller accepts (no domain); the relation stays locked until
 * the transaction ends, so its columns cannot change in between.
 */
#ifndef SPI_SAFE_H
#define SPI_SAFE_H

#include "utils/relcache.h"

extern int	RecsysSpiConnect(void);
extern void RecsysSpiFinish(int guc_level);
extern void RecsysCheckRelation(Oid relid);
extern char *RecsysRelationSqlName(Oid relid);
extern Oid	RecsysColumnType(Oid relid, const char *column, const char *what,
							 const Oid *accepted, int naccepted);
extern Oid	RecsysColumnTypeHinted(Oid relid, const char *column, const char *what,
								   const Oid *accepted, int naccepted,
								   const char *text_hint);
extern AttrNumber RecsysColumnNumber(Relation rel, const char *column);
extern bool RecsysDirectScanAllowed(Relation rel, const AttrNumber *atts, int natts);

/*
 * The memory discipline of every SPI loop (per fetched batch of rows, per
 * epoch): work in a batch context made once (AllocSetContextCreate), end
 * each batch with RecsysSpiBatchEnd (the last result freed, the context
 * reset), so that nothing grows with rows or epochs.  RecsysReportMemory is the test hook
 * that shows it (recsys.debug_memory).
 */
extern void RecsysSpiFreeResult(void);
extern void RecsysSpiBatchEnd(MemoryContext batch);
extern void RecsysReportMemory(const char *what, MemoryContext a, MemoryContext b);

#endif
