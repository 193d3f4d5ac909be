/*
 * store/sql_version.c
 *		The check that the installed SQL objects are recent enough (see
 *		sql_version.h).
 *
 * The installed version is pg_extension.extversion of recsys, read through
 * the catalog (an index lookup, no SPI, so it works in any context) and kept
 * for the rest of the transaction.  An answer that is too old is read again
 * before it becomes an error, so ALTER EXTENSION recsys UPDATE earlier in
 * the same transaction counts.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "compat.h"
#include "store/sql_version.h"

#ifndef RECSYS_LIBRARY_VERSION
#error "RECSYS_LIBRARY_VERSION must be defined (the Makefile passes EXTVERSION)"
#endif

/* The installed version read in transaction CachedLxid (0: none read yet) */
static LocalTransactionId CachedLxid = InvalidLocalTransactionId;
static int	CachedVersion = 0;
static char CachedText[64];

/* Get "a.b.c" as RECSYS_VERSION(a, b, c), or -1 when it is not of that form */
static int
ParseVersion(const char *s)
{
	int			major,
				minor,
				patch,
				len = 0;

	if (sscanf(s, "%d.%d.%d%n", &major, &minor, &patch, &len) != 3 || s[len] != '\0' ||
		major < 0 || minor < 0 || minor > 99 || patch < 0 || patch > 99 || major > 9999)
		return -1;
	return RECSYS_VERSION(major, minor, patch);
}

/* Read recsys's extversion from pg_extension into CachedText/CachedVersion */
static void
ReadInstalledVersion(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	CachedVersion = 0;
	strlcpy(CachedText, "(not installed)", sizeof(CachedText));
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("recsys"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			char	   *version = TextDatumGetCString(d);

			strlcpy(CachedText, version, sizeof(CachedText));
			CachedVersion = ParseVersion(version);
			pfree(version);
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	CachedLxid = RecsysLocalXid();
}

/*
 * Get the installed version of recsys's SQL objects (RECSYS_VERSION form; 0
 * when recsys is not installed, -1 when its version string is not a.b.c);
 * *version, when not NULL, gets the string
 */
int
RecsysInstalledSqlVersion(char **version)
{
	if (CachedLxid != RecsysLocalXid() || CachedLxid == InvalidLocalTransactionId)
		ReadInstalledVersion();
	if (version)
		*version = pstrdup(CachedText);
	return CachedVersion;
}

/*
 * Raise 55000 unless the installed SQL objects are at least version since:
 * the library was replaced and ALTER EXTENSION recsys UPDATE has not run yet
 */
void
RecsysRequireSqlVersion(int since)
{
	if (RecsysInstalledSqlVersion(NULL) >= since)
		return;
	/* not cached as an error: an update earlier in this transaction counts */
	ReadInstalledVersion();
	if (CachedVersion >= since)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("recsys %s library needs ALTER EXTENSION recsys UPDATE",
					RECSYS_LIBRARY_VERSION),
			 errdetail("The recsys SQL objects installed in this database are version %s; this call needs version %d.%d.%d or later.",
					   CachedText, since / 10000, since / 100 % 100, since % 100),
			 errhint("Run ALTER EXTENSION recsys UPDATE.")));
}

/*
 * Raise the update error unless the calling SQL declaration passes at least
 * nargs arguments: a declaration of a version before since, whose C symbol
 * gained arguments in since
 */
void
RecsysRequireArgs(FunctionCallInfo fcinfo, int nargs, int since)
{
	if (PG_NARGS() >= nargs)
		return;
	RecsysRequireSqlVersion(since);
	elog(ERROR, "function %u was called with %d arguments, not %d",
		 fcinfo->flinfo ? fcinfo->flinfo->fn_oid : InvalidOid, PG_NARGS(), nargs);
}
