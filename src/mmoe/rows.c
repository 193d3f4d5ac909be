/*
 * mmoe/rows.c
 *		Inputs of MMoE models that read table rows: a row (a composite
 *		value, the named column values of predict_columns, or the columns of
 *		a cursor's tuple) is encoded with the model's fitted feature spec
 *		(src/features/) into the dense features, categorical ids and pooled
 *		embedding bags of one scratch row.
 *
 * The binding of the spec to a row type or list of columns (attribute
 * numbers, checked types) is made once per statement and kept in fn_extra,
 * so a row costs a tuple deform (up to the last column the spec reads; none
 * for named values), the transforms and hash lookups: no SPI, no catalog
 * access.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "nodes/primnodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "features/spec.h"
#include "mmoe/mmoe.h"

/* What a call keeps to encode rows of one row type with one loaded model */
typedef struct MmoeRowCache
{
	MemoryContext cxt;			/* holds this cache: deleted when it is made again */
	uint64		load_id;
	Oid			typid;
	int32		typmod;
	TupleDesc	desc;
	FeatureBinding *binding;
	TupleTableSlot *slot;		/* deforms the rows, caching column offsets */
	int			last;			/* the last column the spec reads */
	MmoeBagInput bags;
} MmoeRowCache;

/* What a call of predict_columns keeps to encode its values with one loaded model */
typedef struct MmoeColumnsCache
{
	MemoryContext cxt;			/* holds this cache: deleted when it is made again */
	uint64		load_id;
	Oid			row_type;
	text	   *names;			/* a copy of the names the binding was made for */
	bool		names_const;	/* the names are a constant of the call: not compared */
	FeatureBinding *binding;	/* to the values: attribute k is argument first + k - 1 */
	MmoeBagInput bags;
} MmoeColumnsCache;

/*
 * Get a new context for the encoding cache of a call site, under mcxt, and
 * delete the previous cache's: a call site whose row type or column names
 * change from row to row makes its cache again each time, and must not
 * keep the old ones until the statement ends
 */
static MemoryContext
CacheContext(MemoryContext mcxt, MemoryContext previous)
{
	if (previous)
		MemoryContextDelete(previous);
	return AllocSetContextCreate(mcxt, "recsys row encoding", ALLOCSET_SMALL_SIZES);
}

/* Raise the error for a model without a feature spec given a row */
void
MmoeRequireFeatures(const MmoeModel *m)
{
	if (m->features == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the model has no feature spec, so it scores arrays, not rows"),
				 errhint("Pass the features array, or train the model with a \"features\" spec in its config.")));
}

/* Raise the error for an array input given to a model with embedding bags */
void
MmoeRejectBags(const MmoeModel *m)
{
	if (m->nbags > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the model has multi_categorical features, which only rows can give"),
				 errhint("Pass the row instead of arrays, e.g. recsys.predict(model, c) FROM candidates c.")));
}

/* Set up the bag buffers of a model (in CurrentMemoryContext) */
void
MmoeBagInputInit(const MmoeModel *m, MmoeBagInput *b)
{
	b->start = palloc(sizeof(int64) * Max(m->nbags, 1));
	b->len = palloc(sizeof(int32) * Max(m->nbags, 1));
	memset(&b->ids, 0, sizeof(b->ids));
	FeatureIdListReserve(&b->ids, 256);
}

/* Write the mean of each bag's embeddings at bagx */
static void
PoolBags(const MmoeModel *m, const MmoeBagInput *bags, float *bagx)
{
	for (int k = 0; k < m->nbags; k++)
	{
		MmoeBagMean(&m->bags[k], bags->ids.ids + bags->start[k], bags->len[k], bagx);
		bagx += m->bags[k].dim;
	}
}

/*
 * Encode one row's values (by the binding) into dense features and ids,
 * and write the mean of each bag's embeddings at bagx; with pending, the
 * lookups of the categorical values are left there for FeatureResolve
 * (FeatureEncodeDeferred)
 */
void
MmoeEncodeValues(const MmoeModel *m, const FeatureBinding *b, const Datum *values,
				 const bool *nulls, float *dense, int32 *ids, float *bagx, MmoeBagInput *bags,
				 FeatureProbes *pending)
{
	bags->ids.len = 0;
	if (pending)
		FeatureEncodeDeferred(b, values, nulls, dense, ids, bags->start, bags->len, &bags->ids,
							  pending);
	else
		FeatureEncode(b, values, nulls, dense, ids, bags->start, bags->len, &bags->ids);
	PoolBags(m, bags, bagx);
}

/*
 * Encode a row value for a model with a feature spec: dense features at
 * dense (input_dim floats), ids, pooled bags at bagx.  The binding is kept
 * in *cache (allocated in mcxt) per loaded model and row type.
 */
void
MmoeEncodeRow(const MmoeModel *m, uint64 load_id, void **cache, MemoryContext mcxt,
			  HeapTupleHeader row, float *dense, int32 *ids, float *bagx)
{
	MmoeRowCache *rc = (MmoeRowCache *) *cache;
	Oid			typid = HeapTupleHeaderGetTypeId(row);
	int32		typmod = HeapTupleHeaderGetTypMod(row);
	HeapTupleData tuple;

	MmoeRequireFeatures(m);
	if (rc == NULL || rc->load_id != load_id || rc->typid != typid || rc->typmod != typmod)
	{
		MemoryContext cxt;
		MemoryContext old;
		TupleDesc	desc;
		char	   *what;

		*cache = NULL;
		cxt = CacheContext(mcxt, rc ? rc->cxt : NULL);
		old = MemoryContextSwitchTo(cxt);
		desc = lookup_rowtype_tupdesc(typid, typmod);
		what = typid == RECORDOID ? "the row" : psprintf("row type %s", format_type_be(typid));
		rc = palloc0(sizeof(MmoeRowCache));
		rc->cxt = cxt;
		rc->desc = CreateTupleDescCopy(desc);
		ReleaseTupleDesc(desc);
		rc->binding = FeatureBindNames(m->features, rc->desc, what);
		/* a slot deforms no further than the last column the spec reads */
		rc->slot = MakeSingleTupleTableSlot(rc->desc, &TTSOpsHeapTuple);
		rc->last = 1;
		for (int i = 0; i < m->features->ncolumns; i++)
			rc->last = Max(rc->last, rc->binding->attnum[i]);
		MmoeBagInputInit(m, &rc->bags);
		rc->load_id = load_id;
		rc->typid = typid;
		rc->typmod = typmod;
		*cache = rc;
		MemoryContextSwitchTo(old);
	}
	tuple.t_len = HeapTupleHeaderGetDatumLength(row);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = row;
	ExecStoreHeapTuple(&tuple, rc->slot, false);
	slot_getsomeattrs(rc->slot, rc->last);
	MmoeEncodeValues(m, rc->binding, rc->slot->tts_values, rc->slot->tts_isnull, dense, ids, bagx,
					 &rc->bags, NULL);
	ExecClearTuple(rc->slot);
}

/*
 * Bind a model's spec to the column names (a text[]) and value types of a
 * predict_columns call: one name per value, none NULL or repeated
 */
static FeatureBinding *
BindColumns(const MmoeModel *m, FunctionCallInfo fcinfo, ArrayType *names, int first,
			Oid row_type)
{
	int			n = PG_NARGS() - first;
	Datum	   *elems;
	bool	   *enulls;
	int			count;
	const char **cnames;
	Oid		   *types;

	if (ARR_NDIM(names) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("column names must be a one-dimensional array")));
	deconstruct_array(names, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &count);
	if (count != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d column names were given for %d values", count, n),
				 errhint("Pass one name per value, in the same order.")));
	if (OidIsValid(row_type) && !SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(row_type)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("type with OID %u does not exist", row_type),
				 errhint("row_type only names the row in messages: pass NULL for none.")));
	cnames = palloc(sizeof(char *) * Max(n, 1));
	types = palloc(sizeof(Oid) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (enulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("column names must not contain nulls")));
		cnames[i] = TextDatumGetCString(elems[i]);
		for (int j = 0; j < i; j++)
			if (strcmp(cnames[j], cnames[i]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column name \"%s\" is given twice", cnames[i])));
		types[i] = get_fn_expr_argtype(fcinfo->flinfo, first + i);
		if (!OidIsValid(types[i]))
			elog(ERROR, "could not determine the type of value %d", i + 1);
	}
	return FeatureBindList(m->features, n, cnames, types,
						   !OidIsValid(row_type) ? "the given columns"
						   : row_type == RECORDOID ? "the row"
						   : psprintf("row type %s", format_type_be(row_type)));
}

/*
 * Encode the values of a predict_columns call (arguments first, first + 1,
 * ..., named by the text[] argument names_arg; row_type names them in
 * messages, InvalidOid for none) for a model with a feature spec: dense
 * features at dense, ids, pooled bags at bagx, as MmoeEncodeRow does for
 * the row those values came from.  The binding is kept in *cache (in mcxt)
 * and made again when the model or the names change.
 */
void
MmoeEncodeColumns(const MmoeModel *m, uint64 load_id, void **cache, MemoryContext mcxt,
				  FunctionCallInfo fcinfo, int names_arg, Oid row_type, int first,
				  float *dense, int32 *ids, float *bagx)
{
	MmoeColumnsCache *cc = (MmoeColumnsCache *) *cache;
	text	   *names;

	MmoeRequireFeatures(m);

	/*
	 * The names are a constant where the planner wrote the call, and then
	 * need no reading per row; a call written by hand may give them from a
	 * column, and they are compared
	 */
	if (cc != NULL && cc->names_const && cc->load_id == load_id && cc->row_type == row_type)
		names = NULL;
	else
	{
		if (PG_ARGISNULL(names_arg))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("column names must not be null")));
		names = PG_GETARG_TEXT_PP(names_arg);
	}
	if (names != NULL &&
		(cc == NULL || cc->load_id != load_id || cc->row_type != row_type ||
		 VARSIZE_ANY(cc->names) != VARSIZE_ANY(names) ||
		 memcmp(cc->names, names, VARSIZE_ANY(names)) != 0))
	{
		FuncExpr   *expr = (FuncExpr *) fcinfo->flinfo->fn_expr;
		MemoryContext cxt;
		MemoryContext old;

		if (get_fn_expr_variadic(fcinfo->flinfo))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the column values must be separate arguments, not a VARIADIC array")));
		*cache = NULL;
		cxt = CacheContext(mcxt, cc ? cc->cxt : NULL);
		old = MemoryContextSwitchTo(cxt);
		cc = palloc0(sizeof(MmoeColumnsCache));
		cc->cxt = cxt;
		cc->binding = BindColumns(m, fcinfo, DatumGetArrayTypeP(PG_GETARG_DATUM(names_arg)),
								  first, row_type);
		cc->names = palloc(VARSIZE_ANY(names));
		memcpy(cc->names, names, VARSIZE_ANY(names));
		cc->names_const = expr != NULL && IsA(expr, FuncExpr) &&
			IsA(list_nth(expr->args, names_arg), Const);
		MmoeBagInputInit(m, &cc->bags);
		cc->load_id = load_id;
		cc->row_type = row_type;
		*cache = cc;
		MemoryContextSwitchTo(old);
	}
	/* the values are read where the executor put them */
	cc->bags.ids.len = 0;
	FeatureEncodeArgs(cc->binding, fcinfo->args + first, dense, ids, cc->bags.start, cc->bags.len,
					  &cc->bags.ids);
	PoolBags(m, &cc->bags, bagx);
}
