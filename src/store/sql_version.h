/*
 * store/sql_version.h
 *		The one check that the SQL objects installed in this database are
 *		recent enough for the C code that is about to depend on them.
 *
 * Between installing new binaries and ALTER EXTENSION recsys UPDATE, the
 * SQL definitions of the installed version call the new library.  Code that
 * relies on an SQL object (a table, column, function or type) that appeared
 * or changed in version V calls RecsysRequireSqlVersion(RECSYS_VERSION(V))
 * before it touches that object; an older installation then gets one clear
 * error (55000, "recsys X library needs ALTER EXTENSION recsys UPDATE")
 * instead of whatever the missing object would cause.  Code that works with
 * every installed version's SQL calls nothing.  An entry point whose SQL
 * declaration gained arguments in version V calls RecsysRequireArgs first:
 * an older declaration passes fewer, and reading past them reads garbage.
 */
#ifndef SQL_VERSION_H
#define SQL_VERSION_H

#include "postgres.h"

#include "fmgr.h"

/* A version as one comparable number: RECSYS_VERSION(0, 3, 0) */
#define RECSYS_VERSION(major, minor, patch) ((major) * 10000 + (minor) * 100 + (patch))

/*
 * The version that introduced what each part of the C code needs of the
 * SQL objects; raise one when that part starts to depend on a newer object.
 *
 * The model store: recsys.model_names and the models/vectors columns of
 * 0.2.0 (0.1.0 kept owners in created_by and named the columns otherwise).
 */
#define RECSYS_SQL_STORE RECSYS_VERSION(0, 2, 0)

extern void RecsysRequireSqlVersion(int since);
extern void RecsysRequireArgs(FunctionCallInfo fcinfo, int nargs, int since);
extern int	RecsysInstalledSqlVersion(char **version);

#endif
