/*
 * losses/gramian.c
 *		The Gramian aggregate: G = sum_i w_i v_i v_i^T over table rows.
 *
 * The state is a bytea (not internal) so that PostgreSQL's parallel query
 * and Citus can ship partial states between processes; the transition
 * function updates it in place when called as an aggregate.  Rows are
 * buffered in the state and folded into the float64 k x k accumulator with
 * one blocked rank-b update (dsyrk) per buffer, which is what makes the
 * aggregate cost little more than reading the rows.
 *
 * Negative weights are folded with a second dsyrk of alpha = -1 (see
 * rankbuffer.h).
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/array.h"
#include "utils/memutils.h"
#include "utils/builtins.h"

#include "store/aggstate.h"
#include "store/arrays.h"
#include "kernel/rankbuffer.h"
#include "settings.h"

/*
 * Allocate an empty state for k-dimensional vectors in the current context
 * (the layout is in aggkernel.h)
 */
static GramianState *
InitGramianState(int dim)
{
	int			buf_cap = RankBufferRows(dim, 256 * 1024, 16, 2048);
	Size		size = GramianStateSize(dim, buf_cap);
	GramianState *state;

	if (!AllocSizeIsValid(size))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("gramian of dimension %d is too large", dim)));
	state = (GramianState *) palloc0(size);
	SET_VARSIZE(state, size);
	GramianStateInit(state, dim, buf_cap);
	return state;
}

/*
 * Check a Gramian state of at most recsys.max_dim dimensions; with deep, also
 * every stored value (O(k^2), for states that did not come from our own
 * transition)
 */
static const char *
CheckGramianState(const void *state, size_t size, bool deep)
{
	const char *bad = GramianStateCheck(state, size, recsys_max_dim);

	if (bad == NULL && deep)
		bad = GramianStateCheckValues(state);
	return bad;
}

static const StateType GramianStateType = {"gramian", GRAMIAN_MAGIC, GRAMIAN_VERSION, CheckGramianState};

/*
 * Get the state to update: the argument itself when called as an aggregate
 * (in-place update), else a copy, so that a direct SQL call cannot scribble
 * on a value it does not own.  Allocates a new state for the first row.
 */
static GramianState *
GetWritableState(FunctionCallInfo fcinfo, int dim)
{
	MemoryContext aggcontext;
	GramianState *state;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		aggcontext = NULL;

	if (PG_ARGISNULL(0))
	{
		MemoryContext old = MemoryContextSwitchTo(aggcontext ? aggcontext : CurrentMemoryContext);

		state = InitGramianState(dim);
		MemoryContextSwitchTo(old);
		return state;
	}

	state = StateGetChecked(fcinfo, 0, &GramianStateType, false);
	if (aggcontext == NULL || (Pointer) state != DatumGetPointer(PG_GETARG_DATUM(0)))
	{
		MemoryContext old = MemoryContextSwitchTo(aggcontext ? aggcontext : CurrentMemoryContext);
		GramianState *copy = palloc(VARSIZE(state));

		memcpy(copy, state, VARSIZE(state));
		MemoryContextSwitchTo(old);
		state = copy;
	}
	CheckSameDims(state->buf.dim, dim);
	return state;
}

/* Add one vector, scaled by the weight w, to the state */
static Datum
GramianAddRow(FunctionCallInfo fcinfo, Datum vdatum, double w)
{
	VectorData	v;
	int			dim;
	GramianState *state;

	GetVectorData(vdatum, "v", &v);
	dim = v.dim;
	state = GetWritableState(fcinfo, dim);

	/* a zero weight adds nothing, but the vector must still be valid */
	VectorDataToScaledDoubles(&v, RankBufferScale(w), GramianStateSlot(state, w));
	GramianStateCommit(state, w);

	PG_RETURN_BYTEA_P((bytea *) state);
}

PG_FUNCTION_INFO_V1(gramian_accum);
/* Get the state with one more vector (unweighted transition) */
Datum
gramian_accum(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P((bytea *) StateGetChecked(fcinfo, 0, &GramianStateType, false));
	}
	return GramianAddRow(fcinfo, PG_GETARG_DATUM(1), 1.0);
}

PG_FUNCTION_INFO_V1(gramian_weighted_accum);
/* Get the state with one more weighted vector (weighted transition) */
Datum
gramian_weighted_accum(PG_FUNCTION_ARGS)
{
	double		w;

	/* a row without vector or without weight is skipped, like NULL rows */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P((bytea *) StateGetChecked(fcinfo, 0, &GramianStateType, false));
	}
	w = PG_GETARG_FLOAT8(2);
	CheckFiniteDouble(w, "weight");
	return GramianAddRow(fcinfo, PG_GETARG_DATUM(1), w);
}

PG_FUNCTION_INFO_V1(gramian_combine);
/* Get the sum of two partial states (parallel and distributed aggregation) */
Datum
gramian_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	GramianState *state1;
	GramianState *state2;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		aggcontext = NULL;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P((bytea *) StateGetChecked(fcinfo, 0, &GramianStateType, false));
	}
	state2 = StateGetChecked(fcinfo, 1, &GramianStateType, true);

	if (PG_ARGISNULL(0))
	{
		/* the result must live in the aggregate context, not in state2's */
		MemoryContext old = MemoryContextSwitchTo(aggcontext ? aggcontext : CurrentMemoryContext);

		state1 = palloc(VARSIZE(state2));
		memcpy(state1, state2, VARSIZE(state2));
		MemoryContextSwitchTo(old);
		GramianStateFlush(state1);
		PG_RETURN_BYTEA_P((bytea *) state1);
	}

	state1 = StateGetChecked(fcinfo, 0, &GramianStateType, true);
	if (aggcontext == NULL || (Pointer) state1 != DatumGetPointer(PG_GETARG_DATUM(0)))
	{
		GramianState *copy = palloc(VARSIZE(state1));

		memcpy(copy, state1, VARSIZE(state1));
		state1 = copy;
	}
	switch (GramianStateCombine(state1, state2))
	{
		case AGG_OK:
			break;
		case AGG_DIM_MISMATCH:
			CheckSameDims(state1->buf.dim, state2->buf.dim);
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("gramian is out of range")));
	}
	PG_RETURN_BYTEA_P((bytea *) state1);
}

PG_FUNCTION_INFO_V1(gramian_final);
/* Get the k x k Gramian as double precision[][], or NULL for no rows */
Datum
gramian_final(PG_FUNCTION_ARGS)
{
	GramianState *state;
	double	   *m;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = StateGetChecked(fcinfo, 0, &GramianStateType, true);
	if (state->count == 0)
		PG_RETURN_NULL();

	/* the final function must not change the state: fold into a copy */
	m = palloc(sizeof(double) * state->buf.dim * state->buf.dim);
	GramianStateResult(state, m);
	PG_RETURN_ARRAYTYPE_P(DoublesToMatrix(m, state->buf.dim, state->buf.dim));
}
