/*
 * metrics.c
 *		Evaluation functions and aggregates: Recall@k and NDCG@k per user.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"

#include "recsys.h"

/* Get the elements of a 1-D bigint[] without NULLs; NULL elements are an error */
static int64 *
IdArrayElements(ArrayType *a, const char *what, int *n)
{
	if (ARR_ELEMTYPE(a) != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be bigint[]", what)));
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a 1-D array", what)));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain nulls", what)));
	*n = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	return (int64 *) ARR_DATA_PTR(a);
}

/* Compare two int64 for qsort */
static int
CompareInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Get, for each of the first k recommended ids, whether it is relevant
 * (counting a repeated recommendation once); returns the relevant count
 * and fills hits[0..min(k,n)-1].
 */
static int
RelevantHits(ArrayType *recommended, ArrayType *relevant, int k, bool *hits,
			 int *nrec, int *nrel)
{
	int64	   *rec = IdArrayElements(recommended, "recommended", nrec);
	int64	   *rel_in = IdArrayElements(relevant, "relevant", nrel);
	int64	   *rel = palloc(sizeof(int64) * Max(*nrel, 1));
	int64	   *seen = palloc(sizeof(int64) * Max(Min(k, *nrec), 1));
	int			nseen = 0;
	int			nuniq = 0;

	/* a sorted, de-duplicated copy of the relevant set for binary search */
	memcpy(rel, rel_in, sizeof(int64) * *nrel);
	qsort(rel, *nrel, sizeof(int64), CompareInt64);
	for (int i = 0; i < *nrel; i++)
		if (nuniq == 0 || rel[nuniq - 1] != rel[i])
			rel[nuniq++] = rel[i];
	*nrel = nuniq;

	for (int i = 0; i < Min(k, *nrec); i++)
	{
		bool		dup = false;

		hits[i] = false;
		for (int j = 0; j < nseen; j++)
			dup |= (seen[j] == rec[i]);
		if (dup)
			continue;
		seen[nseen++] = rec[i];
		hits[i] = bsearch(&rec[i], rel, nuniq, sizeof(int64), CompareInt64) != NULL;
	}
	return nuniq;
}

/* Check k of a top-k metric */
static void
CheckK(int k)
{
	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be at least 1")));
	if (k > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("k must be at most 1000000")));
}

PG_FUNCTION_INFO_V1(recall_at_k);
/* Get Recall@k = hits in the top k / min(k, |relevant|); NULL when nothing is relevant */
Datum
recall_at_k(PG_FUNCTION_ARGS)
{
	int			k = PG_GETARG_INT32(2);
	int			nrec,
				nrel,
				hits = 0;
	bool	   *hit;

	CheckK(k);
	hit = palloc(sizeof(bool) * k);
	RelevantHits(PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_ARRAYTYPE_P(1), k, hit, &nrec, &nrel);
	if (nrel == 0)
		PG_RETURN_NULL();
	for (int i = 0; i < Min(k, nrec); i++)
		hits += hit[i];
	PG_RETURN_FLOAT8((double) hits / Min(k, nrel));
}

PG_FUNCTION_INFO_V1(ndcg_at_k);
/*
 * Get NDCG@k with binary relevance and log2 discounts, normalised by the
 * ideal DCG over min(k, |relevant|) items; NULL when nothing is relevant
 */
Datum
ndcg_at_k(PG_FUNCTION_ARGS)
{
	int			k = PG_GETARG_INT32(2);
	int			nrec,
				nrel;
	double		dcg = 0.0,
				idcg = 0.0;
	bool	   *hit;

	CheckK(k);
	hit = palloc(sizeof(bool) * k);
	RelevantHits(PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_ARRAYTYPE_P(1), k, hit, &nrec, &nrel);
	if (nrel == 0)
		PG_RETURN_NULL();
	for (int i = 0; i < Min(k, nrec); i++)
		if (hit[i])
			dcg += 1.0 / log2(i + 2.0);
	for (int i = 0; i < Min(k, nrel); i++)
		idcg += 1.0 / log2(i + 2.0);
	PG_RETURN_FLOAT8(dcg / idcg);
}
