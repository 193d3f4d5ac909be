/*
 * gramian.c
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

#include "aggstate.h"
#include "arrays.h"
#include "linalg.h"
#include "rankbuffer.h"
#include "recsys.h"

#define GRAMIAN_MAGIC 0x52534730	/* "RSG0" */
#define GRAMIAN_VERSION 1
#define GRAMIAN_MAX_BUFFER 4096

typedef struct GramianState
{
	RecsysStateHeader hdr;		/* varlena header, GRAMIAN_MAGIC, version */
	RankBuffer	buf;			/* k, buffer length, buffered rows */
	int64		count;			/* rows aggregated, buffered ones included */
	double		data[FLEXIBLE_ARRAY_MEMBER];	/* k x k sum, then buf_cap x k rows */
} GramianState;

#define GRAMIAN_HDRSZ offsetof(GramianState, data)
#define GramianMatrix(s) ((s)->data)
#define GramianBuffer(s) ((s)->data + (size_t) (s)->buf.dim * (s)->buf.dim)

/* Get the byte size of a state for k and a buffer of buf_cap rows */
static Size
GramianStateSize(int dim, int buf_cap)
{
	return GRAMIAN_HDRSZ + sizeof(double) * ((Size) dim * dim + (Size) buf_cap * dim);
}

/* Allocate an empty state for k-dimensional vectors in the current context */
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
	state->hdr.magic = GRAMIAN_MAGIC;
	state->hdr.version = GRAMIAN_VERSION;
	state->buf.dim = dim;
	state->buf.cap = buf_cap;
	return state;
}

/*
 * Get argument argno as a well-formed Gramian state, 8-byte aligned, raising
 * an error if it is not one
 */
static GramianState *
GetGramianState(FunctionCallInfo fcinfo, int argno)
{
	GramianState *state = (GramianState *)
		StateGetArg(fcinfo, argno, GRAMIAN_MAGIC, GRAMIAN_VERSION, "gramian");
	Size		size = VARSIZE(state);

	if (size < GRAMIAN_HDRSZ ||
		!RankBufferValid(&state->buf, RECSYS_MAX_DIM_LIMIT, GRAMIAN_MAX_BUFFER) ||
		state->count < (int64) state->buf.n_pos + state->buf.n_neg ||
		size != GramianStateSize(state->buf.dim, state->buf.cap))
		StateInvalid("gramian", "The header does not match the size of the state.");
	return state;
}

/* Check that every accumulated and buffered value of a state is finite */
static void
CheckGramianValues(const GramianState *state)
{
	size_t		n = (size_t) state->buf.dim * state->buf.dim;
	const double *m = GramianMatrix(state);
	bool		bad = !RankBufferFinite(&state->buf, GramianBuffer(state));

	for (size_t i = 0; i < n; i++)
		bad |= !isfinite(m[i]);
	if (bad)
		StateInvalid("gramian", "The state holds a non-finite value.");
}

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

	state = GetGramianState(fcinfo, 0);
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

	GetVectorData(vdatum, &v);
	dim = v.dim;
	state = GetWritableState(fcinfo, dim);

	/* a zero weight adds nothing, but the vector must still be valid */
	VectorDataToScaledDoubles(&v, RankBufferScale(w),
							  RankBufferSlot(&state->buf, GramianBuffer(state), w));
	state->count++;
	if (RankBufferCommit(&state->buf, w))
		RankBufferFlush(&state->buf, GramianBuffer(state), GramianMatrix(state));

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
		PG_RETURN_BYTEA_P((bytea *) GetGramianState(fcinfo, 0));
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
		PG_RETURN_BYTEA_P((bytea *) GetGramianState(fcinfo, 0));
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
	size_t		n;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		aggcontext = NULL;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P((bytea *) GetGramianState(fcinfo, 0));
	}
	state2 = GetGramianState(fcinfo, 1);
	CheckGramianValues(state2);

	if (PG_ARGISNULL(0))
	{
		/* the result must live in the aggregate context, not in state2's */
		MemoryContext old = MemoryContextSwitchTo(aggcontext ? aggcontext : CurrentMemoryContext);

		state1 = palloc(VARSIZE(state2));
		memcpy(state1, state2, VARSIZE(state2));
		MemoryContextSwitchTo(old);
		RankBufferFlush(&state1->buf, GramianBuffer(state1), GramianMatrix(state1));
		PG_RETURN_BYTEA_P((bytea *) state1);
	}

	state1 = GetGramianState(fcinfo, 0);
	CheckSameDims(state1->buf.dim, state2->buf.dim);
	if (aggcontext == NULL || (Pointer) state1 != DatumGetPointer(PG_GETARG_DATUM(0)))
	{
		GramianState *copy = palloc(VARSIZE(state1));

		memcpy(copy, state1, VARSIZE(state1));
		state1 = copy;
	}
	CheckGramianValues(state1);

	RankBufferFlush(&state1->buf, GramianBuffer(state1), GramianMatrix(state1));
	RankBufferFold(&state2->buf, GramianBuffer(state2), GramianMatrix(state1));
	n = (size_t) state1->buf.dim * state1->buf.dim;
	for (size_t i = 0; i < n; i++)
		GramianMatrix(state1)[i] += GramianMatrix(state2)[i];
	state1->count += state2->count;

	PG_RETURN_BYTEA_P((bytea *) state1);
}

PG_FUNCTION_INFO_V1(gramian_final);
/* Get the k x k Gramian as double precision[][], or NULL for no rows */
Datum
gramian_final(PG_FUNCTION_ARGS)
{
	GramianState *state;
	double	   *m;
	size_t		n;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = GetGramianState(fcinfo, 0);
	CheckGramianValues(state);
	if (state->count == 0)
		PG_RETURN_NULL();

	/* the final function must not change the state: fold into a copy */
	n = (size_t) state->buf.dim * state->buf.dim;
	m = palloc(sizeof(double) * n);
	memcpy(m, GramianMatrix(state), sizeof(double) * n);
	RankBufferFold(&state->buf, GramianBuffer(state), m);
	LinalgSymmetrize(state->buf.dim, m);

	PG_RETURN_ARRAYTYPE_P(DoublesToMatrix(m, state->buf.dim, state->buf.dim));
}
