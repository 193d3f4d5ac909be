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
 * Negative weights are folded with a second dsyrk of alpha = -1: rows of
 * positive weight fill the buffer from the front, scaled by sqrt(w); rows of
 * negative weight fill it from the back, scaled by sqrt(-w).
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/array.h"
#include "utils/memutils.h"
#include "utils/builtins.h"

#include "arrays.h"
#include "linalg.h"
#include "recsys.h"

#define GRAMIAN_MAGIC 0x52534730	/* "RSG0" */
#define GRAMIAN_VERSION 1
#define GRAMIAN_MAX_BUFFER 4096

typedef struct GramianState
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint32		magic;			/* GRAMIAN_MAGIC */
	uint16		version;		/* GRAMIAN_VERSION */
	uint16		reserved;
	int32		dim;			/* k */
	int32		buf_cap;		/* rows the buffer holds */
	int32		n_pos;			/* buffered rows at the front (weight > 0) */
	int32		n_neg;			/* buffered rows at the back (weight < 0) */
	int64		count;			/* rows aggregated, buffered ones included */
	double		data[FLEXIBLE_ARRAY_MEMBER];	/* k x k sum, then buf_cap x k rows */
} GramianState;

#define GRAMIAN_HDRSZ offsetof(GramianState, data)
#define GramianMatrix(s) ((s)->data)
#define GramianBuffer(s) ((s)->data + (size_t) (s)->dim * (s)->dim)
#define GramianNegRows(s) (GramianBuffer(s) + (size_t) ((s)->buf_cap - (s)->n_neg) * (s)->dim)

/* Get the byte size of a state for k and a buffer of buf_cap rows */
static Size
GramianStateSize(int dim, int buf_cap)
{
	return GRAMIAN_HDRSZ + sizeof(double) * ((Size) dim * dim + (Size) buf_cap * dim);
}

/* Get the buffer length for k: about 256 KB of rows, between 16 and 2048 rows */
static int
GramianBufferRows(int dim)
{
	int			rows = (256 * 1024 / (int) sizeof(double)) / dim;

	return Max(16, Min(2048, rows));
}

/* Allocate an empty state for k-dimensional vectors in the current context */
static GramianState *
InitGramianState(int dim)
{
	int			buf_cap = GramianBufferRows(dim);
	Size		size = GramianStateSize(dim, buf_cap);
	GramianState *state;

	if (!AllocSizeIsValid(size))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("gramian of dimension %d is too large", dim)));
	state = (GramianState *) palloc0(size);
	SET_VARSIZE(state, size);
	state->magic = GRAMIAN_MAGIC;
	state->version = GRAMIAN_VERSION;
	state->dim = dim;
	state->buf_cap = buf_cap;
	return state;
}

/* Check that a bytea is a well-formed Gramian state, raising an error if not */
static GramianState *
CheckGramianState(bytea *raw)
{
	GramianState *state = (GramianState *) raw;
	Size		size = VARSIZE_ANY(raw);

	if (VARATT_IS_SHORT(raw) || size < GRAMIAN_HDRSZ ||
		state->magic != GRAMIAN_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid gramian state")));
	if (state->version != GRAMIAN_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported gramian state version %d", state->version)));
	if (state->dim < 1 || state->dim > RECSYS_MAX_DIM_LIMIT ||
		state->buf_cap < 1 || state->buf_cap > GRAMIAN_MAX_BUFFER ||
		state->n_pos < 0 || state->n_neg < 0 ||
		state->n_pos > state->buf_cap - state->n_neg ||
		state->count < (int64) state->n_pos + state->n_neg ||
		size != GramianStateSize(state->dim, state->buf_cap))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid gramian state"),
				 errdetail("The header does not match the size of the state.")));
	return state;
}

/* Check that every accumulated and buffered value of a state is finite */
static void
CheckGramianValues(const GramianState *state)
{
	size_t		n = (size_t) state->dim * state->dim;
	const double *m = GramianMatrix(state);
	bool		bad = false;

	for (size_t i = 0; i < n; i++)
		bad |= !isfinite(m[i]);
	for (int r = 0; r < state->n_pos * state->dim; r++)
		bad |= !isfinite(GramianBuffer(state)[r]);
	for (int r = 0; r < state->n_neg * state->dim; r++)
		bad |= !isfinite(GramianNegRows(state)[r]);
	if (bad)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid gramian state"),
				 errdetail("The state holds a non-finite value.")));
}

/* Fold the buffered rows of src into the accumulator m (k x k) */
static void
FoldBuffer(const GramianState *src, double *m)
{
	LinalgSyrkRows(src->dim, src->n_pos, GramianBuffer(src), 1.0, m);
	LinalgSyrkRows(src->dim, src->n_neg, GramianNegRows(src), -1.0, m);
}

/* Fold a state's own buffer into its accumulator and empty the buffer */
static void
FlushBuffer(GramianState *state)
{
	FoldBuffer(state, GramianMatrix(state));
	state->n_pos = 0;
	state->n_neg = 0;
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

	state = CheckGramianState(PG_GETARG_BYTEA_P(0));
	if (aggcontext == NULL || ((uintptr_t) state) % sizeof(double) != 0 ||
		(Pointer) state != DatumGetPointer(PG_GETARG_DATUM(0)))
	{
		MemoryContext old = MemoryContextSwitchTo(aggcontext ? aggcontext : CurrentMemoryContext);
		GramianState *copy = palloc(VARSIZE(state));

		memcpy(copy, state, VARSIZE(state));
		MemoryContextSwitchTo(old);
		state = copy;
	}
	CheckSameDims(state->dim, dim);
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

	state->count++;
	if (w > 0.0)
	{
		double	   *row = GramianBuffer(state) + (size_t) state->n_pos * dim;

		VectorDataToScaledDoubles(&v, w == 1.0 ? 1.0 : sqrt(w), row);
		state->n_pos++;
	}
	else if (w < 0.0)
	{
		state->n_neg++;
		VectorDataToScaledDoubles(&v, sqrt(-w), GramianNegRows(state));
	}
	else
	{
		/* a zero weight adds nothing, but the vector must still be valid */
		VectorDataToScaledDoubles(&v, 0.0, GramianBuffer(state) + (size_t) state->n_pos * dim);
	}

	if (state->n_pos + state->n_neg >= state->buf_cap)
		FlushBuffer(state);

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
		PG_RETURN_BYTEA_P((bytea *) CheckGramianState(PG_GETARG_BYTEA_P(0)));
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
		PG_RETURN_BYTEA_P((bytea *) CheckGramianState(PG_GETARG_BYTEA_P(0)));
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
		PG_RETURN_BYTEA_P((bytea *) CheckGramianState(PG_GETARG_BYTEA_P(0)));
	}
	state2 = CheckGramianState(PG_GETARG_BYTEA_P(1));
	CheckGramianValues(state2);

	if (PG_ARGISNULL(0))
	{
		/* the result must live in the aggregate context, not in state2's */
		MemoryContext old = MemoryContextSwitchTo(aggcontext ? aggcontext : CurrentMemoryContext);

		state1 = palloc(VARSIZE(state2));
		memcpy(state1, state2, VARSIZE(state2));
		MemoryContextSwitchTo(old);
		FlushBuffer(state1);
		PG_RETURN_BYTEA_P((bytea *) state1);
	}

	state1 = CheckGramianState(PG_GETARG_BYTEA_P(0));
	CheckSameDims(state1->dim, state2->dim);
	if (aggcontext == NULL || ((uintptr_t) state1) % sizeof(double) != 0 ||
		(Pointer) state1 != DatumGetPointer(PG_GETARG_DATUM(0)))
	{
		GramianState *copy = palloc(VARSIZE(state1));

		memcpy(copy, state1, VARSIZE(state1));
		state1 = copy;
	}
	CheckGramianValues(state1);

	FlushBuffer(state1);
	FoldBuffer(state2, GramianMatrix(state1));
	n = (size_t) state1->dim * state1->dim;
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
	state = CheckGramianState(PG_GETARG_BYTEA_P(0));
	CheckGramianValues(state);
	if (state->count == 0)
		PG_RETURN_NULL();

	/* the final function must not change the state: fold into a copy */
	n = (size_t) state->dim * state->dim;
	m = palloc(sizeof(double) * n);
	memcpy(m, GramianMatrix(state), sizeof(double) * n);
	FoldBuffer(state, m);
	LinalgSymmetrize(state->dim, m);

	PG_RETURN_ARRAYTYPE_P(DoublesToMatrix(m, state->dim, state->dim));
}
