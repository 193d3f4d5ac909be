/*
 * mmoe/table.c
 *		recsys.predict_table: score every row of a candidate table with a
 *		stored MMoE model, reading the table through an SPI cursor in blocks
 *		and scoring each block with one batched forward pass.
 *
 * Memory is bounded by the block: the cursor hands over PREDICT_TABLE_BLOCK
 * rows at a time, their values are read in a memory context reset per
 * block, and the results go into the function's tuplestore, which spills to
 * disk past work_mem.
 *
 * A model with a feature spec (features_column => NULL) reads a plain table
 * that SELECT would read as it is stored (no row-level security, no
 * inheritance children, readable by the caller, no Citus) with a direct scan
 * under the statement's snapshot: each tuple is deformed up to the last
 * column the spec reads and encoded from the buffer, with no executor
 * projection per row.  Anything else goes through the same SELECT by SPI,
 * which gives the rows and raises the errors that SELECT would.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "features/spec.h"
#include "store/arrays.h"
#include "mmoe/mmoe.h"
#include "store/spi_safe.h"
#include "store/values.h"

/* Rows fetched and scored at a time */
#define PREDICT_TABLE_BLOCK 1024

/*
 * predict_table(model, candidates, id_column, features_column,
 * categorical_column, context_column, display_position_column, version)
 */
#define ARG_MODEL 0
#define ARG_CANDIDATES 1
#define ARG_ID_COLUMN 2
#define ARG_FEATURES_COLUMN 3
#define ARG_CATEGORICAL_COLUMN 4
#define ARG_CONTEXT_COLUMN 5
#define ARG_DISPLAY_POSITION_COLUMN 6
#define ARG_VERSION 7

/* Columns of the cursor's query, 1-based as SPI numbers them */
#define COL_ID 1
#define COL_FEATURES 2
#define COL_CATEGORICAL 3
#define COL_CONTEXT 4
#define COL_DISPLAY_POSITION 5

/* The types each column may have (exact OIDs: see RecsysColumnType) */
static const Oid IdTypes[] = {INT2OID, INT4OID, INT8OID};
static const Oid FloatArrayTypes[] = {FLOAT4ARRAYOID, FLOAT8ARRAYOID};
static const Oid IntArrayTypes[] = {INT2ARRAYOID, INT4ARRAYOID, INT8ARRAYOID};

/*
 * Get the quoted name of a column of rel given as argument arg (NULL when
 * the argument is NULL), raising an error unless it is a column of one of
 * the accepted types; its type goes to *type when type is not NULL
 */
static const char *
ColumnArg(FunctionCallInfo fcinfo, int arg, Oid rel, const char *what,
		  const Oid *accepted, int naccepted, Oid *type)
{
	const char *col;
	Oid			t;

	if (PG_ARGISNULL(arg))
		return NULL;
	col = NameStr(*PG_GETARG_NAME(arg));
	t = RecsysColumnType(rel, col, what, accepted, naccepted);
	if (type)
		*type = t;
	return quote_identifier(col);
}

/* Get column col of a row as an array, or NULL when the value is NULL */
static ArrayType *
ArrayColumn(HeapTuple tuple, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d;

	if (col > desc->natts)
		return NULL;
	d = SPI_getbinval(tuple, desc, col, &isnull);
	return isnull ? NULL : DatumGetArrayTypeP(d);
}

/*
 * What predict_table with the model's feature spec keeps while the query's
 * rows arrive: the rows are encoded straight from the executor's slot into
 * the scratch (no copy of the row into an SPI tuple table, no second
 * deform), and each full block is scored with one batched pass
 */
typedef struct RowsReceiver
{
	DestReceiver pub;			/* first: the executor calls through it */
	ReturnSetInfo *rsinfo;
	const MmoeModel *m;
	MmoeScratch *s;
	FeatureBinding *binding;	/* made at startup, from the query's columns */
	MemoryContext binding_cxt;
	const char *what;			/* the relation, for messages */
	MmoeBagInput bags;
	bool		takes_display_position;
	/* where the id, context and display position are in a row's values (0-based, -1: none) */
	int			id_att;
	int			context_att;
	int			display_position_att;
	Oid			id_type;		/* of the id and display position values */
	Oid			display_position_type;
	int			block;			/* rows a pass scores */
	int			n;				/* rows of the block so far */
	/* the categorical lookups of row n - 1 wait in probes[(n - 1) % 2] until row n is read */
	FeatureProbes probes[2];
	float	   *out;
	MemoryContext block_cxt;
	int64		ids[PREDICT_TABLE_BLOCK];
	bool		id_null[PREDICT_TABLE_BLOCK];
} RowsReceiver;

/* Score the rows of the block so far, store their results, and start a new block */
static void
FlushRows(RowsReceiver *r)
{
	const MmoeModel *m = r->m;
	MemoryContext old;

	if (r->n == 0)
		return;
	FeatureResolve(m->features, &r->probes[(r->n - 1) % 2]);
	old = MemoryContextSwitchTo(r->block_cxt);
	MmoeForward(m, r->s, r->n, NULL, r->out);
	for (int i = 0; i < r->n; i++)
	{
		Datum		v[2];
		bool		vn[2] = {r->id_null[i], false};

		v[0] = Int64GetDatum(r->ids[i]);
		v[1] = PointerGetDatum(FloatsToArray(r->out + (size_t) i * m->ntasks, m->ntasks));
		tuplestore_putvalues(r->rsinfo->setResult, r->rsinfo->setDesc, v, vn);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->block_cxt);
	r->n = 0;
	CHECK_FOR_INTERRUPTS();
}

/*
 * Encode one row's values (by attribute, 0-based) into the next scratch
 * row; score the block when full
 */
static void
EncodeRow(RowsReceiver *r, const Datum *values, const bool *nulls)
{
	const MmoeModel *m = r->m;
	MmoeScratch *s = r->s;
	float	   *x = s->x + (size_t) r->n * m->in_width;
	MmoeRowInput in = {0};
	MemoryContext old;
	bool		id_null = r->id_att < 0 || nulls[r->id_att];

	old = MemoryContextSwitchTo(r->block_cxt);
	MmoeEncodeValues(m, r->binding, values, nulls, x, s->ids + (size_t) r->n * m->ncategorical,
					 x + m->bag_offset, &r->bags, &r->probes[r->n % 2]);
	if (r->n > 0)
		FeatureResolve(m->features, &r->probes[(r->n - 1) % 2]);
	in.encoded = true;
	in.takes_context = true;
	if (r->context_att >= 0 && !nulls[r->context_att])
		in.context = DatumGetArrayTypeP(values[r->context_att]);
	in.takes_display_position = r->takes_display_position;
	in.display_position_null = r->display_position_att < 0 || nulls[r->display_position_att];
	if (!in.display_position_null)
	{
		int64		pos = RecsysIntValue(values[r->display_position_att], r->display_position_type);

		/* as the cast to int4 of the SELECT that reads other relations */
		if (pos < PG_INT32_MIN || pos > PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("integer out of range")));
		in.display_position = (int32) pos;
	}
	MmoeSetRow(m, s, r->n, &in);
	MemoryContextSwitchTo(old);
	r->id_null[r->n] = id_null;
	r->ids[r->n] = id_null ? 0 : RecsysIntValue(values[r->id_att], r->id_type);
	if (++r->n == r->block)
		FlushRows(r);
}

/* Encode one row of the query into the next scratch row (the SPI path's receiver) */
static bool
ReceiveRow(TupleTableSlot *slot, DestReceiver *self)
{
	slot_getallattrs(slot);
	EncodeRow((RowsReceiver *) self, slot->tts_values, slot->tts_isnull);
	return true;
}

/*
 * Score the rows of a plain table with a direct scan (see the file's
 * comment); returns false, having read nothing, when RecsysDirectScanAllowed says
 * no.  The id and display position columns are raw names, NULL when not given.
 */
static bool
ScanRowsDirect(RowsReceiver *r, Oid relid, const char *id_col, Oid id_type,
			   const char *context_col, const char *display_position_col,
			   Oid display_position_type)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	const FeatureSpec *spec = r->m->features;
	AttrNumber *atts = palloc(sizeof(AttrNumber) * (spec->ncolumns + 3));
	int			natts = 0;
	int			last = 1;
	TableScanDesc scan;
	TupleTableSlot *slot;

	r->binding = FeatureBindNames(spec, RelationGetDescr(rel), r->what);
	for (int i = 0; i < spec->ncolumns; i++)
		atts[natts++] = r->binding->attnum[i];
	atts[natts++] = RecsysColumnNumber(rel, id_col);
	r->id_att = atts[natts - 1] - 1;
	r->id_type = id_type;
	r->context_att = r->display_position_att = -1;
	if (context_col)
	{
		atts[natts++] = RecsysColumnNumber(rel, context_col);
		r->context_att = atts[natts - 1] - 1;
	}
	if (display_position_col)
	{
		atts[natts++] = RecsysColumnNumber(rel, display_position_col);
		r->display_position_att = atts[natts - 1] - 1;
		r->display_position_type = display_position_type;
	}
	/* a distributed table's rows are in its shards: with Citus, always SELECT */
	if (!RecsysDirectScanAllowed(rel, atts, natts) || OidIsValid(get_extension_oid("citus", true)))
	{
		relation_close(rel, NoLock);
		return false;
	}
	/* a tuple is deformed no further than the last column read */
	for (int i = 0; i < natts; i++)
		last = Max(last, atts[i]);
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		slot_getsomeattrs(slot, last);
		EncodeRow(r, slot->tts_values, slot->tts_isnull);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	relation_close(rel, NoLock);
	return true;
}

/* Bind the spec to the query's columns when the executor starts sending rows */
static void
StartupRows(DestReceiver *self, int operation, TupleDesc desc)
{
	RowsReceiver *r = (RowsReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(r->binding_cxt);

	r->binding = FeatureBindPositions(r->m->features, desc, COL_DISPLAY_POSITION + 1, r->what);
	r->id_att = COL_ID - 1;
	r->id_type = INT8OID;
	r->context_att = COL_CONTEXT - 1;
	r->display_position_att = COL_DISPLAY_POSITION - 1;
	r->display_position_type = INT4OID;
	MemoryContextSwitchTo(old);
}

/* Nothing to do when the executor stops: the caller scores the last block */
static void
ShutdownRows(DestReceiver *self)
{
}

/* The receiver is the caller's: nothing to free */
static void
DestroyRows(DestReceiver *self)
{
}

/*
 * Score every row of a table with the model's feature spec (predict_table
 * with features_column => NULL): the spec's columns are checked against the
 * table before the query runs, then read by position, without casts
 */
static Datum
PredictTableRows(FunctionCallInfo fcinfo, const MmoeModel *m, MmoeScratch *s, Oid rel,
				 const char *id_col, const char *ctx_col, const char *display_position_col,
				 const char *relname, Oid id_type, Oid display_position_type)
{
	StringInfoData query;
	int			spi_level;
	SPIPlanPtr	plan;
	SPIExecuteOptions options = {0};
	RowsReceiver *r;
	int			rc;

	MmoeRequireFeatures(m);
	FeatureCheckRelation(m->features, rel);
	if (ctx_col == NULL && m->context_dim > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the model has a latent cross, so context_column must not be null")));
	initStringInfo(&query);
	appendStringInfo(&query, "SELECT %s::pg_catalog.int8, NULL::pg_catalog.float4[], NULL::pg_catalog.int4[], %s, %s, %s FROM %s",
					 id_col, ctx_col ? ctx_col : "NULL::pg_catalog.float4[]",
					 display_position_col ? psprintf("%s::pg_catalog.int4", display_position_col) : "NULL::pg_catalog.int4",
					 FeatureSelectList(m->features), relname);
	r = palloc0(sizeof(RowsReceiver));
	r->pub.receiveSlot = ReceiveRow;
	r->pub.rStartup = StartupRows;
	r->pub.rShutdown = ShutdownRows;
	r->pub.rDestroy = DestroyRows;
	r->pub.mydest = DestNone;
	r->rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	r->m = m;
	r->s = s;
	r->takes_display_position = display_position_col != NULL;
	/* a huge model may get a scratch of fewer rows than a block */
	r->block = Min(PREDICT_TABLE_BLOCK, s->maxrows);
	r->out = palloc(sizeof(float) * PREDICT_TABLE_BLOCK * m->ntasks);
	MmoeBagInputInit(m, &r->bags);
	r->block_cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys predict_table block",
										 ALLOCSET_DEFAULT_SIZES);
	r->binding_cxt = CurrentMemoryContext;
	r->what = psprintf("relation %s", relname);

	if (ScanRowsDirect(r, rel, NameStr(*PG_GETARG_NAME(ARG_ID_COLUMN)), id_type,
					   ctx_col ? NameStr(*PG_GETARG_NAME(ARG_CONTEXT_COLUMN)) : NULL,
					   display_position_col ? NameStr(*PG_GETARG_NAME(ARG_DISPLAY_POSITION_COLUMN)) : NULL,
					   display_position_type))
	{
		FlushRows(r);
		MemoryContextDelete(r->block_cxt);
		return (Datum) 0;
	}
	spi_level = RecsysSpiConnect();
	plan = SPI_prepare(query.data, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", query.data,
			 SPI_result_code_string(SPI_result));
	options.read_only = true;
	options.dest = (DestReceiver *) r;
	rc = SPI_execute_plan_extended(plan, &options);
	/* SPI reports a SELECT whose rows go to a DestNone receiver as utility */
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
		elog(ERROR, "SPI_execute_plan_extended failed for \"%s\": %s", query.data,
			 SPI_result_code_string(rc));
	FlushRows(r);
	RecsysSpiFinish(spi_level);
	MemoryContextDelete(r->block_cxt);
	return (Datum) 0;
}

/*
 * Score the cursor's rows a block at a time into the result: features read
 * into the scratch, one forward pass per block, NULL scores for NULL features
 */
static void
ScoreBlocks(ReturnSetInfo *rsinfo, const MmoeModel *m, MmoeScratch *s, Portal portal, int block,
			MemoryContext block_cxt, float *out, const char *cat_col, const char *ctx_col,
			const char *display_position_col)
{
	MemoryContext old;
	int			slot[PREDICT_TABLE_BLOCK];	/* scratch row of each fetched row, -1 = NULL features */
	Datum		ids[PREDICT_TABLE_BLOCK];
	bool		id_null[PREDICT_TABLE_BLOCK];

	for (;;)
	{
		int			n;
		int			rows = 0;
		TupleDesc	desc;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, block);
		n = (int) Min(SPI_processed, (uint64) block);
		if (n == 0)
			break;
		desc = SPI_tuptable->tupdesc;
		old = MemoryContextSwitchTo(block_cxt);
		for (int i = 0; i < n; i++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[i];
			MmoeRowInput in = {0};
			bool		isnull;

			ids[i] = SPI_getbinval(tuple, desc, COL_ID, &id_null[i]);
			in.features = ArrayColumn(tuple, desc, COL_FEATURES);
			if (in.features == NULL)
			{
				slot[i] = -1;
				continue;
			}
			in.categorical = cat_col ? ArrayColumn(tuple, desc, COL_CATEGORICAL) : NULL;
			in.takes_context = true;
			in.context = ctx_col ? ArrayColumn(tuple, desc, COL_CONTEXT) : NULL;
			in.takes_display_position = display_position_col != NULL;
			if (display_position_col)
			{
				Datum		d = SPI_getbinval(tuple, desc, COL_DISPLAY_POSITION, &isnull);

				in.display_position_null = isnull;
				in.display_position = isnull ? 0 : DatumGetInt32(d);
			}
			MmoeSetRow(m, s, rows, &in);
			slot[i] = rows++;
		}
		if (rows > 0)
			MmoeForward(m, s, rows, NULL, out);
		for (int i = 0; i < n; i++)
		{
			Datum		values[2];
			bool		nulls[2];

			values[0] = ids[i];
			nulls[0] = id_null[i];
			nulls[1] = slot[i] < 0;
			values[1] = nulls[1] ? (Datum) 0 :
				PointerGetDatum(FloatsToArray(out + (size_t) slot[i] * m->ntasks, m->ntasks));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(block_cxt);
		SPI_freetuptable(SPI_tuptable);
	}
}

PG_FUNCTION_INFO_V1(mmoe_predict_table);
/*
 * Score every row of a table: returns (id, outputs per task) per row, in
 * the order the cursor reads them; a row with NULL features gets NULL
 * scores, as predict gives
 */
Datum
mmoe_predict_table(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			rel;
	char	   *relname;
	const char *id_col;
	const char *features_col;
	const char *cat_col;
	const char *ctx_col;
	const char *display_position_col;
	Oid			id_type = InvalidOid;
	Oid			display_position_type = InvalidOid;
	const MmoeModel *m;
	MmoeScratch *s;
	StringInfoData query;
	MemoryContext block_cxt;
	int			spi_level;
	Portal		portal;
	SPIPlanPtr	plan;
	float	   *out;
	int			block;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(ARG_MODEL) || PG_ARGISNULL(ARG_CANDIDATES) || PG_ARGISNULL(ARG_ID_COLUMN))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model, candidates and id_column must not be null")));
	rel = PG_GETARG_OID(ARG_CANDIDATES);
	relname = RecsysRelationSqlName(rel);
	id_col = ColumnArg(fcinfo, ARG_ID_COLUMN, rel, "id_column", IdTypes, lengthof(IdTypes),
					   &id_type);
	features_col = ColumnArg(fcinfo, ARG_FEATURES_COLUMN, rel, "features_column",
							 FloatArrayTypes, lengthof(FloatArrayTypes), NULL);
	cat_col = ColumnArg(fcinfo, ARG_CATEGORICAL_COLUMN, rel, "categorical_column",
						IntArrayTypes, lengthof(IntArrayTypes), NULL);
	ctx_col = ColumnArg(fcinfo, ARG_CONTEXT_COLUMN, rel, "context_column",
						FloatArrayTypes, lengthof(FloatArrayTypes), NULL);
	display_position_col = ColumnArg(fcinfo, ARG_DISPLAY_POSITION_COLUMN, rel,
									 "display_position_column", IdTypes, lengthof(IdTypes),
									 &display_position_type);

	m = MmoeAcquire(fcinfo, PG_GETARG_TEXT_PP(ARG_MODEL), MmoeVersionArg(fcinfo, ARG_VERSION),
					PREDICT_TABLE_BLOCK, &s, NULL, NULL);
	/* features_column => NULL: the model's feature spec reads the table's columns */
	if (features_col == NULL)
	{
		if (cat_col)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("categorical_column must be null when features_column is null"),
					 errdetail("The model's feature spec names the categorical columns it reads.")));
		return PredictTableRows(fcinfo, m, s, rel, id_col, ctx_col, display_position_col, relname,
								id_type, display_position_type);
	}
	if (cat_col == NULL && m->ncategorical > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the model has %d categorical feature(s), so categorical_column must not be null",
						m->ncategorical)));
	if (ctx_col == NULL && m->context_dim > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the model has a latent cross, so context_column must not be null")));

	/*
	 * only the columns asked for, in COL_* order; the casts give fixed types
	 * and are built-in casts between the checked types
	 */
	initStringInfo(&query);
	appendStringInfo(&query, "SELECT %s::pg_catalog.int8, %s", id_col, features_col);
	if (cat_col || ctx_col || display_position_col)
		appendStringInfo(&query, ", %s::pg_catalog.int4[]", cat_col ? cat_col : "NULL");
	if (ctx_col || display_position_col)
		appendStringInfo(&query, ", %s", ctx_col ? ctx_col : "NULL::pg_catalog.float4[]");
	if (display_position_col)
		appendStringInfo(&query, ", %s::pg_catalog.int4", display_position_col);
	appendStringInfo(&query, " FROM %s", relname);

	out = palloc(sizeof(float) * PREDICT_TABLE_BLOCK * m->ntasks);
	block_cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys predict_table block",
									  ALLOCSET_DEFAULT_SIZES);
	spi_level = RecsysSpiConnect();
	plan = SPI_prepare(query.data, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", query.data,
			 SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	/* a huge model may get a scratch of fewer rows than a block */
	block = Min(PREDICT_TABLE_BLOCK, s->maxrows);

	ScoreBlocks(rsinfo, m, s, portal, block, block_cxt, out, cat_col, ctx_col, display_position_col);
	SPI_cursor_close(portal);
	RecsysSpiFinish(spi_level);
	MemoryContextDelete(block_cxt);
	return (Datum) 0;
}
