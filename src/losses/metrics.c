/*
 * losses/metrics.c
 *		Evaluation functions and aggregates: Recall@k and NDCG@k per user,
 *		exact ROC AUC and log loss over rows.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/memutils.h"

#include "store/arrays.h"
#include "store/aggstate.h"
#include "settings.h"

/*
 * Recall@k and NDCG@k share one definition of a hit (see doc/metrics.md):
 *
 * - recommended is a ranked list; only its first k positions count.  A NULL
 *   list counts as empty (a user the recommender does not know is a miss,
 *   not a user left out of the average).  A NULL element occupies its
 *   position and is never a hit.  An id repeated in the list is a hit at
 *   most once, at its first position; later repeats occupy their positions.
 * - relevant is a set: repeats count once; NULL elements are an error; a
 *   NULL or empty set gives NULL (nothing to find: the user is not
 *   evaluated, and avg() skips them).
 * - The order of the list is the recommender's: ties of score were broken
 *   there (recsys breaks them by the smaller id), never here.
 *
 * De-duplication sorts (O(n log n)) instead of comparing pairs, and checks
 * for interrupts, so lists of millions of ids stay cheap and cancellable.
 */

/* Every this many elements a loop checks for interrupts */
#define METRIC_INTERRUPT_EVERY 65536

/* An id of the recommended list with its position */
typedef struct RankedId
{
	int64		id;
	int			pos;
} RankedId;

/* Compare two int64 for qsort */
static int
CompareInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* Compare by id, then position, for qsort */
static int
CompareRankedId(const void *a, const void *b)
{
	const RankedId *x = a;
	const RankedId *y = b;

	if (x->id != y->id)
		return (x->id > y->id) - (x->id < y->id);
	return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Check that an id list is a 1-D bigint[] */
static void
CheckIdArray(ArrayType *a, const char *what)
{
	if (ARR_ELEMTYPE(a) != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be bigint[]", what)));
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a 1-D array", what)));
}

/*
 * Get the sorted distinct ids of the relevant set; NULL elements are an
 * error.  Returns the number of distinct ids.
 */
static int
RelevantSet(ArrayType *relevant, int64 **out)
{
	int			n;
	int			nuniq = 0;
	int64	   *rel;

	CheckIdArray(relevant, "relevant");
	if (ARR_HASNULL(relevant) && array_contains_nulls(relevant))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relevant must not contain nulls")));
	n = ARR_NDIM(relevant) == 0 ? 0 : ARR_DIMS(relevant)[0];
	rel = palloc(sizeof(int64) * Max(n, 1));
	memcpy(rel, ARR_DATA_PTR(relevant), sizeof(int64) * n);
	CHECK_FOR_INTERRUPTS();
	qsort(rel, n, sizeof(int64), CompareInt64);
	CHECK_FOR_INTERRUPTS();
	for (int i = 0; i < n; i++)
		if (nuniq == 0 || rel[nuniq - 1] != rel[i])
			rel[nuniq++] = rel[i];
	*out = rel;
	return nuniq;
}

/*
 * Mark which of the first min(k, |recommended|) positions are hits (see the
 * rules above); recommended may be NULL (empty).  Returns the number of
 * positions looked at.
 */
static int
RecommendedHits(ArrayType *recommended, int k, const int64 *rel, int nrel, bool *hits)
{
	int			n = 0;
	int			m;
	int			nr = 0;
	RankedId   *ranked;
	const char *data;
	bits8	   *bitmap;
	int			bitmask = 1;
	int			j = 0;

	if (recommended != NULL)
	{
		CheckIdArray(recommended, "recommended");
		n = ARR_NDIM(recommended) == 0 ? 0 : ARR_DIMS(recommended)[0];
	}
	m = Min(k, n);
	if (m == 0)
		return 0;
	ranked = palloc(sizeof(RankedId) * m);
	data = ARR_DATA_PTR(recommended);
	bitmap = ARR_NULLBITMAP(recommended);
	for (int i = 0; i < m; i++)
	{
		hits[i] = false;
		if (bitmap == NULL || (*bitmap & bitmask) != 0)
		{
			ranked[nr].id = *(const int64 *) data;
			ranked[nr].pos = i;
			nr++;
			data += sizeof(int64);
		}
		if (bitmap != NULL)
		{
			bitmask <<= 1;
			if (bitmask == 0x100)
			{
				bitmap++;
				bitmask = 1;
			}
		}
		if ((i & (METRIC_INTERRUPT_EVERY - 1)) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	qsort(ranked, nr, sizeof(RankedId), CompareRankedId);
	CHECK_FOR_INTERRUPTS();

	/* merge the two sorted lists; the first position of each id decides */
	for (int i = 0; i < nr; i++)
	{
		if (i > 0 && ranked[i].id == ranked[i - 1].id)
			continue;
		while (j < nrel && rel[j] < ranked[i].id)
			j++;
		if (j < nrel && rel[j] == ranked[i].id)
			hits[ranked[i].pos] = true;
		if ((i & (METRIC_INTERRUPT_EVERY - 1)) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(ranked);
	return m;
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

/*
 * Evaluate the hits of a recall_at_k/ndcg_at_k call; false when the result
 * is NULL (NULL k, NULL or empty relevant set)
 */
static bool
MetricHits(FunctionCallInfo fcinfo, bool **hits, int *npos, int *nrel)
{
	int			k;
	int64	   *rel;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return false;
	k = PG_GETARG_INT32(2);
	CheckK(k);
	*nrel = RelevantSet(PG_GETARG_ARRAYTYPE_P(1), &rel);
	if (*nrel == 0)
		return false;
	*hits = palloc(sizeof(bool) * k);
	*npos = RecommendedHits(PG_ARGISNULL(0) ? NULL : PG_GETARG_ARRAYTYPE_P(0), k, rel, *nrel, *hits);
	/* k is needed by the callers for the denominator */
	*nrel = Min(*nrel, k);
	return true;
}

PG_FUNCTION_INFO_V1(recall_at_k);
/* Get Recall@k = hits in the top k / min(k, |relevant|); NULL when nothing is relevant */
Datum
recall_at_k(PG_FUNCTION_ARGS)
{
	bool	   *hit;
	int			npos,
				denom,
				hits = 0;

	if (!MetricHits(fcinfo, &hit, &npos, &denom))
		PG_RETURN_NULL();
	for (int i = 0; i < npos; i++)
		hits += hit[i];
	PG_RETURN_FLOAT8((double) hits / denom);
}

PG_FUNCTION_INFO_V1(ndcg_at_k);
/*
 * Get NDCG@k with binary relevance and log2 discounts, normalised by the
 * ideal DCG over min(k, |relevant|) items; NULL when nothing is relevant
 */
Datum
ndcg_at_k(PG_FUNCTION_ARGS)
{
	bool	   *hit;
	int			npos,
				ideal;
	double		dcg = 0.0,
				idcg = 0.0;

	if (!MetricHits(fcinfo, &hit, &npos, &ideal))
		PG_RETURN_NULL();
	for (int i = 0; i < npos; i++)
		if (hit[i])
			dcg += 1.0 / log2(i + 2.0);
	for (int i = 0; i < ideal; i++)
		idcg += 1.0 / log2(i + 2.0);
	PG_RETURN_FLOAT8(dcg / idcg);
}

PG_FUNCTION_INFO_V1(precision_at_k);
/* Get Precision@k = hits in the top k / k; NULL when nothing is relevant */
Datum
precision_at_k(PG_FUNCTION_ARGS)
{
	bool	   *hit;
	int			npos,
				denom,
				hits = 0;

	if (!MetricHits(fcinfo, &hit, &npos, &denom))
		PG_RETURN_NULL();
	for (int i = 0; i < npos; i++)
		hits += hit[i];
	/* k itself, however short the list: a short list is a list with misses */
	PG_RETURN_FLOAT8((double) hits / PG_GETARG_INT32(2));
}

PG_FUNCTION_INFO_V1(map_at_k);
/*
 * Get AP@k = sum over hit positions p <= k of (hits in the first p) / p,
 * divided by min(k, |relevant|) (the mean over users is MAP@k); NULL when
 * nothing is relevant
 */
Datum
map_at_k(PG_FUNCTION_ARGS)
{
	bool	   *hit;
	int			npos,
				denom,
				hits = 0;
	double		sum = 0.0;

	if (!MetricHits(fcinfo, &hit, &npos, &denom))
		PG_RETURN_NULL();
	for (int i = 0; i < npos; i++)
		if (hit[i])
		{
			hits++;
			sum += (double) hits / (i + 1);
		}
	PG_RETURN_FLOAT8(sum / denom);
}

/* ---------------------------------------------------------------------
 * recsys.auc: exact ROC AUC
 *
 * Exact AUC needs every score, so the state holds them: entries of
 * (score, positives, negatives), 16 bytes each.  Rows are appended
 * unsorted; when the buffer is full the unsorted tail is sorted and merged
 * into the sorted prefix, equal scores collapsing into one entry, and the
 * buffer doubles only if that freed less than half of it.  Memory is thus
 * 16 bytes per distinct score (up to twice that before a compaction), and
 * tied or rounded scores cost nothing more than their count.  The combine
 * function appends one state's entries to the other's (compacting as it
 * goes); the final function sorts and sweeps the scores in ascending order,
 * giving tied positive/negative pairs half credit (as scikit-learn does).
 * ---------------------------------------------------------------------
 */

#define AUC_WHAT "auc"

#define ST_SORT SortAucEntries
#define ST_ELEMENT_TYPE AucEntry
#define ST_COMPARE(a, b) AucScoreCompare((a)->score, (b)->score)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

/* The AUC state: with deep, AucStateCheck checks every entry (states not from our own transition) */
static const StateType AucStateType = {AUC_WHAT, AUC_MAGIC, AUC_VERSION, AucStateCheck};

/* Sort the unsorted tail of a state and merge it into the sorted prefix */
static void
CompactAucState(AucState *state)
{
	AucEntry   *scratch;

	if (state->nused == state->nsorted)
		return;
	scratch = palloc(sizeof(AucEntry) * (state->nused - state->nsorted));
	AucStateCompact(state, scratch, SortAucEntries);
	pfree(scratch);
}

/*
 * Get a state with at least one free entry: compact a full one, and move it
 * into one twice the capacity if that freed less than half.  A state that is
 * replaced is freed unless it is keep (the caller's argument, which the
 * executor frees itself).
 */
static AucState *
AucMakeRoom(AucState *state, const AucState *keep)
{
	AucState   *grown;
	AucEntry   *scratch;
	int32		capacity;

	if (state->nused < state->capacity)
		return state;
	scratch = palloc(sizeof(AucEntry) * Max(state->nused - state->nsorted, 1));
	capacity = AucStateMakeRoom(state, scratch, SortAucEntries);
	pfree(scratch);
	if (capacity == 0)
		return state;
	if (capacity < 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("auc state would exceed 1 GB"),
				 errdetail("The state holds %d distinct scores.", state->nused),
				 errhint("Round the scores, or aggregate a sample of the rows.")));
	grown = (AucState *) StateAlloc(AucStateSize(capacity), AUC_MAGIC, AUC_VERSION,
									AUC_WHAT);
	AucStateGrowInto(grown, state, capacity);
	if (state != keep)
		pfree(state);
	return grown;
}

PG_FUNCTION_INFO_V1(auc_accum);
/* Get the AUC state with one more (score, label) row */
Datum
auc_accum(PG_FUNCTION_ARGS)
{
	AucState   *state = NULL;
	AucState   *arg = NULL;
	double		score;
	bool		label;

	/* a state from our own transition needs no O(n) check */
	if (!PG_ARGISNULL(0))
		state = arg = StateGetChecked(fcinfo, 0, &AucStateType, !AggCheckCallContext(fcinfo, NULL));
	/* rows with a NULL score or label are skipped */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P((bytea *) state);
	}
	score = PG_GETARG_FLOAT8(1);
	label = PG_GETARG_BOOL(2);
	CheckFiniteDouble(score, "score");

	if (state == NULL)
	{
		state = (AucState *) StateAlloc(AucStateSize(AUC_INITIAL_ENTRIES), AUC_MAGIC,
										AUC_VERSION, AUC_WHAT);
		state->capacity = AUC_INITIAL_ENTRIES;
	}
	else
		state = (AucState *) StateGetWritable(fcinfo, 0, &state->hdr);
	state = AucMakeRoom(state, arg);
	AucStateAppend(state, score, label);
	PG_RETURN_BYTEA_P((bytea *) state);
}

PG_FUNCTION_INFO_V1(auc_combine);
/* Get the union of two AUC states: the second's entries appended to the first */
Datum
auc_combine(PG_FUNCTION_ARGS)
{
	AucState   *state1 = PG_ARGISNULL(0) ? NULL : StateGetChecked(fcinfo, 0, &AucStateType, true);
	AucState   *state2 = PG_ARGISNULL(1) ? NULL : StateGetChecked(fcinfo, 1, &AucStateType, true);
	Datum		result;
	AucState   *arg = state1;
	const AucEntry *src;
	int32		left;

	if (StateCombineTrivial(fcinfo, state1 ? &state1->hdr : NULL,
							state2 ? &state2->hdr : NULL, &result))
		return result;
	state1 = (AucState *) StateGetWritable(fcinfo, 0, &state1->hdr);
	if (AucStateAddTotals(state1, state2) != AGG_OK)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("auc row count is out of range")));

	src = state2->entries;
	left = state2->nused;
	while (left > 0)
	{
		int32		chunk;

		state1 = AucMakeRoom(state1, arg);
		chunk = AucStateAppendEntries(state1, src, left);
		src += chunk;
		left -= chunk;
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_BYTEA_P((bytea *) state1);
}

PG_FUNCTION_INFO_V1(auc_final);
/*
 * Get the exact ROC AUC: the share of (positive, negative) pairs ranked in
 * the right order, ties counting one half; NULL unless both labels occur
 */
Datum
auc_final(PG_FUNCTION_ARGS)
{
	AucState   *state;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = StateGetChecked(fcinfo, 0, &AucStateType, true);
	if (state->total_pos == 0 || state->total_neg == 0)
		PG_RETURN_NULL();

	/*
	 * Compacting reorders entries without changing what the state means, so
	 * an aggregate's own state is compacted in place (later calls find it
	 * sorted); anything else is copied first.
	 */
	state = (AucState *) StateGetWritable(fcinfo, 0, &state->hdr);
	CompactAucState(state);

	PG_RETURN_FLOAT8(AucStateResult(state));
}

/* ---------------------------------------------------------------------
 * recsys.log_loss: mean binary cross-entropy
 * ---------------------------------------------------------------------
 */

#define LOGLOSS_WHAT "log_loss"

/* Check a log-loss state (in full: it has a fixed size) */
static const char *
CheckLogLossState(const void *state, size_t size, bool deep)
{
	return LogLossStateCheck(state, size);
}

static const StateType LogLossStateType = {LOGLOSS_WHAT, LOGLOSS_MAGIC, LOGLOSS_VERSION, CheckLogLossState};

/* Raise the error for a log-loss update that would overflow */
static void
LogLossOutOfRange(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("log_loss is out of range")));
}

PG_FUNCTION_INFO_V1(log_loss_accum);
/* Get the log-loss state with one more (probability, label) row */
Datum
log_loss_accum(PG_FUNCTION_ARGS)
{
	LogLossState *state = PG_ARGISNULL(0) ? NULL : StateGetChecked(fcinfo, 0, &LogLossStateType, true);
	double		p;

	/* rows with a NULL probability or label are skipped */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P((bytea *) state);
	}
	p = PG_GETARG_FLOAT8(1);
	CheckFiniteDouble(p, "probability");
	if (p < 0.0 || p > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("probability %g is outside [0, 1]", p)));
	if (state == NULL)
		state = (LogLossState *) StateAlloc(sizeof(LogLossState), LOGLOSS_MAGIC,
											LOGLOSS_VERSION, LOGLOSS_WHAT);
	else
		state = (LogLossState *) StateGetWritable(fcinfo, 0, &state->hdr);
	/* clipped like scikit-learn's eps = 1e-15, so certain mistakes stay finite */
	if (LogLossStateAdd(state, p, PG_GETARG_BOOL(2)) != AGG_OK)
		LogLossOutOfRange();
	PG_RETURN_BYTEA_P((bytea *) state);
}

PG_FUNCTION_INFO_V1(log_loss_combine);
/* Get the union of two log-loss states */
Datum
log_loss_combine(PG_FUNCTION_ARGS)
{
	LogLossState *state1 = PG_ARGISNULL(0) ? NULL : StateGetChecked(fcinfo, 0, &LogLossStateType, true);
	LogLossState *state2 = PG_ARGISNULL(1) ? NULL : StateGetChecked(fcinfo, 1, &LogLossStateType, true);
	Datum		result;

	if (StateCombineTrivial(fcinfo, state1 ? &state1->hdr : NULL,
							state2 ? &state2->hdr : NULL, &result))
		return result;
	state1 = (LogLossState *) StateGetWritable(fcinfo, 0, &state1->hdr);
	if (LogLossStateCombine(state1, state2) != AGG_OK)
		LogLossOutOfRange();
	PG_RETURN_BYTEA_P((bytea *) state1);
}

PG_FUNCTION_INFO_V1(log_loss_final);
/* Get the mean log loss, NULL for no rows */
Datum
log_loss_final(PG_FUNCTION_ARGS)
{
	LogLossState *state;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = StateGetChecked(fcinfo, 0, &LogLossStateType, true);
	if (state->count == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(LogLossStateResult(state));
}
