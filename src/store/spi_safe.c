/*
 * store/spi_safe.c
 *		SPI connections with a fixed, safe search_path (see spi_safe.h).
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/heap.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "parser/parse_coerce.h"
#include "parser/parse_relation.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "settings.h"
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

/*
 * Open a caller's relation (given as regclass) with AccessShareLock, raising
 * undefined_table when the OID names none: a regclass can be any number, or
 * name a relation dropped since
 */
static Relation
OpenCallerRelation(Oid relid)
{
	Relation	rel = OidIsValid(relid) ? try_relation_open(relid, AccessShareLock) : NULL;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return rel;
}

/*
 * Check that a caller's relation exists, and keep it locked (AccessShareLock,
 * as reading it would) until the transaction ends, so that it is neither
 * dropped nor altered between the checks and the reads
 */
void
RecsysCheckRelation(Oid relid)
{
	relation_close(OpenCallerRelation(relid), NoLock);
}

/* Get the quoted, schema-qualified name of a relation, for SQL run through SPI */
char *
RecsysRelationSqlName(Oid relid)
{
	Relation	rel = OpenCallerRelation(relid);
	char	   *name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												  RelationGetRelationName(rel));

	relation_close(rel, NoLock);
	return name;
}

/*
 * Get the type of a column that recsys reads from a caller's relation,
 * given as argument "what": it must be a column of the relation (not a
 * system column, not the relation's name, which SQL would read as the
 * whole row) and its type exactly one of the accepted built-in types.  A
 * domain is refused even over an accepted type: only types whose casts and
 * operators no role but the bootstrap superuser can define are read.
 * Raises undefined_column or datatype_mismatch naming the column; a
 * column of a string type (text, varchar, ...) gets text_hint, when given,
 * which says how to turn such a column into an accepted one.
 */
Oid
RecsysColumnTypeHinted(Oid relid, const char *column, const char *what,
					   const Oid *accepted, int naccepted, const char *text_hint)
{
	Relation	rel = OpenCallerRelation(relid);
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			nsp = RelationGetNamespace(rel);
	/* for messages: this session's temporary schema as SQL names it, not pg_temp_N */
	char	   *relname = quote_qualified_identifier(isTempNamespace(nsp) ? "pg_temp" :
													 get_namespace_name(nsp),
													 RelationGetRelationName(rel));
	Form_pg_attribute found = NULL;
	StringInfoData similar;
	StringInfoData names;
	Oid			type;

	initStringInfo(&similar);
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (att->attisdropped)
			continue;
		if (strcmp(NameStr(att->attname), column) == 0)
			found = att;
		else if (pg_strcasecmp(NameStr(att->attname), column) == 0)
			appendStringInfo(&similar, "%s%s", similar.len > 0 ? ", " : "",
							 quote_identifier(NameStr(att->attname)));
	}
	if (found == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation %s does not exist", column, relname),
				 errdetail("It was given as the %s.", what),
				 similar.len > 0 ?
				 errhint("Column names are case-sensitive; the relation has %s.", similar.data) :
				 SystemAttributeByName(column) != NULL ?
				 errhint("System columns are not read; give a column of the relation.") :
				 strcmp(column, RelationGetRelationName(rel)) == 0 ?
				 errhint("The relation's name is not a column (SQL would read it as the whole row); give a column of the relation.") : 0));
	type = found->atttypid;
	relation_close(rel, NoLock);
	for (int t = 0; t < naccepted; t++)
		if (type == accepted[t])
			return type;
	initStringInfo(&names);
	for (int t = 0; t < naccepted; t++)
		appendStringInfo(&names, "%s%s", t > 0 ? ", " : "", format_type_be(accepted[t]));
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("%s \"%s\" must be of type %s, not %s", what, column, names.data,
					format_type_be(type)),
			 get_typtype(type) == TYPTYPE_DOMAIN ?
			 errdetail("Domains are not read, not even over an accepted type; select the column cast to its base type in a view of your own.") : 0,
			 text_hint != NULL && TypeCategory(type) == TYPCATEGORY_STRING ?
			 errhint("%s", text_hint) : 0));
	return InvalidOid;
}

/* Free the result of the last SPI statement, if it had one and it is still held */
void
RecsysSpiFreeResult(void)
{
	if (SPI_tuptable != NULL)
	{
		SPI_freetuptable(SPI_tuptable);
		SPI_tuptable = NULL;
	}
}

/* End one batch (or epoch) of an SPI loop: free the last result, reset the batch's memory */
void
RecsysSpiBatchEnd(MemoryContext batch)
{
	RecsysSpiFreeResult();
	MemoryContextReset(batch);
}

/*
 * With recsys.debug_memory on, append "what=bytes" (the memory held by
 * contexts a and b, children included; b may be NULL) to the setting
 * recsys.debug_memory_report, where a test reads it after the call
 */
void
RecsysReportMemory(const char *what, MemoryContext a, MemoryContext b)
{
	Size		bytes;
	const char *old;

	if (!recsys_debug_memory)
		return;
	bytes = MemoryContextMemAllocated(a, true) + (b ? MemoryContextMemAllocated(b, true) : 0);
	old = GetConfigOption("recsys.debug_memory_report", false, false);
	SetConfigOption("recsys.debug_memory_report",
					psprintf("%s%s%s=%zu", old ? old : "", old && old[0] ? "," : "", what, bytes),
					PGC_USERSET, PGC_S_SESSION);
}

/* RecsysColumnTypeHinted without a hint */
Oid
RecsysColumnType(Oid relid, const char *column, const char *what,
				 const Oid *accepted, int naccepted)
{
	return RecsysColumnTypeHinted(relid, column, what, accepted, naccepted, NULL);
}

/* Get the attribute number of a column of an open relation, checked to exist before */
AttrNumber
RecsysColumnNumber(Relation rel, const char *column)
{
	AttrNumber	att = attnameAttNum(rel, column, false);

	if (att <= 0)
		elog(ERROR, "column \"%s\" of relation \"%s\" is missing", column,
			 RelationGetRelationName(rel));
	return att;
}

/*
 * May a caller's relation be read with a direct table scan, giving exactly
 * the rows and checks that SELECT of columns atts would?  A plain table
 * without inheritance children, not under row-level security for this role
 * now, readable by it (the table, or each column read), and no executor
 * permission hook (a security label provider would be bypassed).  Citus is
 * the caller's to check (a distributed table's rows are in its shards).
 * Anything else is read through SPI, which also raises SELECT's errors.
 */
bool
RecsysDirectScanAllowed(Relation rel, const AttrNumber *atts, int natts)
{
	Oid			relid = RelationGetRelid(rel);

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relhassubclass ||
		ExecutorCheckPerms_hook != NULL)
		return false;
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return false;
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		for (int i = 0; i < natts; i++)
			if (pg_attribute_aclcheck(relid, atts[i], GetUserId(), ACL_SELECT) != ACLCHECK_OK)
				return false;
	return true;
}
