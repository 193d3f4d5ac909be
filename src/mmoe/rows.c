/*
 * mmoe/rows.c
 *		Inputs of MMoE models that read table rows: a row (a composite
 *		value, or the columns of a cursor's tuple) is encoded with the
 *		model's fitted feature spec (src/features/) into the dense features,
 *		categorical ids and pooled embedding bags of one scratch row.
 *
 * The binding of the spec to a row type (attribute numbers, checked types)
 * is made once per statement and row type and kept in fn_extra, so a row
 * costs a tuple deform (up to the last column the spec reads), the
 * transforms and hash lookups: no SPI, no catalog access.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "features/spec.h"
#include "mmoe/mmoe.h"

/* What a call keeps to encode rows of one row type with one loaded model */
typedef struct MmoeRowCache
{
	uint64		load_id;
	Oid			typid;
	int32		typmod;
	TupleDesc	desc;
	FeatureBinding *binding;
	TupleTableSlot *slot;		/* deforms the rows, caching column offsets */
	int			last;			/* the last column the spec reads */
	MmoeBagInput bags;
} MmoeRowCache;

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
	for (int k = 0; k < m->nbags; k++)
	{
		MmoeBagMean(&m->bags[k], bags->ids.ids + bags->start[k], bags->len[k], bagx);
		bagx += m->bags[k].dim;
	}
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
		MemoryContext old = MemoryContextSwitchTo(mcxt);
		TupleDesc	desc = lookup_rowtype_tupdesc(typid, typmod);
		char	   *what = typid == RECORDOID ? "the row" : psprintf("row type %s", format_type_be(typid));

		/* one cache per call site: the previous one is small, and goes with the statement */
		rc = palloc0(sizeof(MmoeRowCache));
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
