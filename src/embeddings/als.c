/*
 * embeddings/als.c
 *		The recsys.als_solve aggregate: the closed-form implicit-ALS update of
 *		one entity (doc/math.md §2),
 *
 *			(w G + sum_j (c_j - w) v_j v_j^T + l2 I) x = sum_j c_j v_j,
 *
 *		used as "GROUP BY user_id" over the join of interactions and item
 *		vectors, where G is the Gramian of all item vectors, w the Gramian
 *		(unobserved) weight and c_j the confidence of each observed pair.
 *
 * The state is a bytea (not internal), updated in place, with a combine
 * function, so that the aggregate runs under parallel query and on Citus.
 * It holds G (k x k), the observed part A = sum_j (c_j - w) v_j v_j^T (k x k),
 * the right-hand side b (k) and a buffer of rows that is folded into A with
 * one blocked rank-b update (dsyrk) when full.  That is k x k doubles twice
 * per group: the driver must feed sorted groups (GroupAggregate), never a
 * hash aggregate over millions of entities.
 *
 * G, w and l2 are taken from the first row of each group: w and l2 are
 * checked on every row (two comparisons), G only when partial states are
 * combined, because comparing k x k values per row would cost more than the
 * update itself.  They are meant to be constants of the query.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "store/aggstate.h"
#include "embeddings/als.h"
#include "store/arrays.h"
#include "kernel/rankbuffer.h"
#include "settings.h"

/* Check that gramian_weight and l2 are usable numbers */
static void
CheckAlsScalars(double gramian_weight, double l2)
{
	CheckFiniteDouble(gramian_weight, "gramian_weight");
	CheckFiniteDouble(l2, "l2");
	if (gramian_weight < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gramian_weight must not be negative")));
	if (l2 < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must not be negative")));
}

/*
 * Allocate a state for k-dimensional vectors in the current context, with
 * the Gramian g (k x k, symmetric) and the two scalars of the group.
 */
static AlsState *
InitAlsState(int dim, ArrayType *g, double gramian_weight, double l2)
{
	int			buf_cap = RankBufferRows(dim, 64 * 1024, 8, 256);
	Size		size = AlsStateSize(dim, buf_cap);
	int			rows,
				cols;
	double	   *gm;
	double		scale = 0.0;
	AlsState   *state;

	CheckAlsScalars(gramian_weight, l2);
	gm = MatrixGetDoubles(g, &rows, &cols);
	if (rows != dim || cols != dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("gramian must be %d x %d to match the vectors, not %d x %d",
						dim, dim, rows, cols)));
	for (int i = 0; i < dim * dim; i++)
		scale = Max(scale, fabs(gm[i]));
	for (int i = 0; i < dim; i++)
		for (int j = 0; j < i; j++)
			if (fabs(gm[(size_t) i * dim + j] - gm[(size_t) j * dim + i]) > 1e-9 * scale)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("gramian must be symmetric"),
						 errdetail("Entries [%d][%d] and [%d][%d] differ.", i + 1, j + 1, j + 1, i + 1)));

	if (!AllocSizeIsValid(size))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("als_solve state of dimension %d is too large", dim)));
	/*
	 * Zeroed as a whole, the row buffer too: a state can leave the function
	 * (as a value, a parallel worker's partial state or a Citus partial
	 * aggregate), and must not carry stale backend memory with it.
	 */
	state = (AlsState *) palloc0(size);
	SET_VARSIZE(state, size);
	state->hdr.magic = ALS_MAGIC;
	state->hdr.version = ALS_VERSION;
	state->buf.dim = dim;
	state->buf.cap = buf_cap;
	state->gramian_weight = gramian_weight;
	state->l2 = l2;
	memcpy(AlsGramian(state), gm, sizeof(double) * dim * dim);
	pfree(gm);
	return state;
}

/*
 * Check an als_solve state of at most recsys.max_dim dimensions; with deep,
 * also every stored value (O(k^2), for states that did not come from our own
 * transition)
 */
static const char *
CheckAlsState(const void *state, size_t size, bool deep)
{
	const char *bad = AlsStateCheck(state, size, recsys_max_dim);

	if (bad == NULL && deep)
		bad = AlsStateCheckValues(state);
	return bad;
}

static const StateType AlsStateType = {"als_solve", ALS_MAGIC, ALS_VERSION, CheckAlsState};

/* Get a private copy of a state in the given context */
static AlsState *
CopyAlsState(AlsState *state, MemoryContext context)
{
	MemoryContext old = MemoryContextSwitchTo(context);
	AlsState   *copy = palloc(VARSIZE(state));

	memcpy(copy, state, VARSIZE(state));
	MemoryContextSwitchTo(old);
	return copy;
}

/*
 * Get the state to update for a row of k-dimensional vectors: the argument
 * itself when called as an aggregate (in-place update), else a copy, so that
 * a direct SQL call cannot scribble on a value it does not own.  Allocates a
 * new state for the first row of a group.
 */
static AlsState *
GetWritableAlsState(FunctionCallInfo fcinfo, int dim, double gramian_weight, double l2)
{
	MemoryContext aggcontext;
	AlsState   *state;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		aggcontext = NULL;

	if (PG_ARGISNULL(0))
	{
		MemoryContext old = MemoryContextSwitchTo(aggcontext ? aggcontext : CurrentMemoryContext);

		/* only the first row of a group reads (and detoasts) the Gramian */
		state = InitAlsState(dim, PG_GETARG_ARRAYTYPE_P(3), gramian_weight, l2);
		MemoryContextSwitchTo(old);
		return state;
	}

	state = StateGetChecked(fcinfo, 0, &AlsStateType, false);
	if (aggcontext == NULL || (Pointer) state != DatumGetPointer(PG_GETARG_DATUM(0)))
		state = CopyAlsState(state, aggcontext ? aggcontext : CurrentMemoryContext);
	CheckSameDims(state->buf.dim, dim);
	if (state->gramian_weight != gramian_weight)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gramian_weight must be the same for every row of a group")));
	if (state->l2 != l2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be the same for every row of a group")));
	return state;
}

PG_FUNCTION_INFO_V1(als_solve_accum);
/* Get the state with one more observed pair (vector v, confidence c) */
Datum
als_solve_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *v;
	AlsState   *state;
	double		c,
				gramian_weight,
				l2;
	int			dim;

	/* the group's constants must be given even on rows that are skipped */
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("gramian must not be NULL")));
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("gramian_weight must not be NULL")));
	if (PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("l2 must not be NULL")));

	/* a row without vector or confidence is skipped, like NULL rows in gramian */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P((bytea *) StateGetChecked(fcinfo, 0, &AlsStateType, false));
	}

	v = PG_GETARG_ARRAYTYPE_P(1);
	c = PG_GETARG_FLOAT8(2);
	gramian_weight = PG_GETARG_FLOAT8(4);
	l2 = PG_GETARG_FLOAT8(5);
	CheckFiniteDouble(c, "confidence");
	if (c < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("confidence must not be negative")));
	dim = VectorDimOf(v, "v");
	state = GetWritableAlsState(fcinfo, dim, gramian_weight, l2);

	/* convert into the next free buffer slot; the kernel scales it there */
	VectorToDoubles(v, AlsStateSlot(state, c));
	if (AlsStateCommit(state, c) != AGG_OK)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("als_solve sums are out of range at confidence %g", c),
				 errdetail("The group's sums of confidences and confidence-weighted vector products overflow double precision."),
				 errhint("Scale the confidences or the vectors down.")));

	PG_RETURN_BYTEA_P((bytea *) state);
}

PG_FUNCTION_INFO_V1(als_solve_combine);
/* Get the sum of two partial states of one group (parallel aggregation) */
Datum
als_solve_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	AlsState   *state1;
	AlsState   *state2;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		aggcontext = NULL;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P((bytea *) StateGetChecked(fcinfo, 0, &AlsStateType, false));
	}
	state2 = StateGetChecked(fcinfo, 1, &AlsStateType, true);

	if (PG_ARGISNULL(0))
	{
		/* the result must live in the aggregate context, not in state2's */
		state1 = CopyAlsState(state2, aggcontext ? aggcontext : CurrentMemoryContext);
		AlsStateFlush(state1);
		PG_RETURN_BYTEA_P((bytea *) state1);
	}

	state1 = StateGetChecked(fcinfo, 0, &AlsStateType, true);
	CheckSameDims(state1->buf.dim, state2->buf.dim);
	if (state1->gramian_weight != state2->gramian_weight)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gramian_weight must be the same for every row of a group")));
	if (state1->l2 != state2->l2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be the same for every row of a group")));
	if (aggcontext == NULL || (Pointer) state1 != DatumGetPointer(PG_GETARG_DATUM(0)))
		state1 = CopyAlsState(state1, aggcontext ? aggcontext : CurrentMemoryContext);
	switch (AlsStateCombine(state1, state2))
	{
		case AGG_OK:
			break;
		case AGG_DIM_MISMATCH:
			CheckSameDims(state1->buf.dim, state2->buf.dim);
			break;
		case AGG_PARAM_MISMATCH:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("gramian must be the same for every row of a group")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("als_solve state is out of range")));
	}
	PG_RETURN_BYTEA_P((bytea *) state1);
}

/*
 * Solve the normal equations of a state into x (k doubles).  Raises an error
 * when the system stays singular after the jitter retries.
 */
static void
AlsSolveState(const AlsState *state, double *x)
{
	int			k = state->buf.dim;
	size_t		n = (size_t) k * k;
	double	   *m = palloc(sizeof(double) * n);
	double	   *work = palloc(sizeof(double) * n);
	int			retries = 0;
	int			info;

	/* m = w G + A (+ buffered rows) + l2 I */
	info = AlsStateSolve(state, x, m, work, &retries);
	if (info != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("als_solve system is singular"),
				 errdetail("The Cholesky factorization failed (LAPACK info %d) after %d jitter retries.",
						   info, retries),
				 errhint("Use a positive l2.")));
	for (int i = 0; i < k; i++)
		if (!isfinite(x[i]) || fabs(x[i]) > FLT_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("als_solve solution is out of range for real"),
					 errhint("Use a larger l2.")));
	pfree(work);
	pfree(m);
}

PG_FUNCTION_INFO_V1(als_solve_final);
/* Get the solution x as real[], or NULL for no rows */
Datum
als_solve_final(PG_FUNCTION_ARGS)
{
	AlsState   *state;
	double	   *x;
	float	   *xf;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = StateGetChecked(fcinfo, 0, &AlsStateType, true);
	if (state->count == 0)
		PG_RETURN_NULL();

	x = palloc(sizeof(double) * state->buf.dim);
	xf = palloc(sizeof(float) * state->buf.dim);
	AlsSolveState(state, x);
	for (int i = 0; i < state->buf.dim; i++)
		xf[i] = (float) x[i];
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(xf, state->buf.dim));
}

PG_FUNCTION_INFO_V1(als_solve_objective_final);
/*
 * Get {x..., objective part} as double precision[]: the solution and the
 * group's share of the observed terms at that solution,
 * x^T A x - 2 x^T b + sum_j c_j = sum_j [c_j (v_j.x - 1)^2 - w (v_j.x)^2].
 */
Datum
als_solve_objective_final(PG_FUNCTION_ARGS)
{
	AlsState   *state;
	double	   *x;
	double	   *m;
	double	   *ax;
	double		obj;
	int			k;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = StateGetChecked(fcinfo, 0, &AlsStateType, true);
	if (state->count == 0)
		PG_RETURN_NULL();

	k = state->buf.dim;
	x = palloc(sizeof(double) * (k + 1));
	AlsSolveState(state, x);
	/* round to what is stored (real[]) so the objective is that of the stored vector */
	for (int i = 0; i < k; i++)
		x[i] = (double) (float) x[i];

	m = palloc(sizeof(double) * (size_t) k * k);
	ax = palloc(sizeof(double) * k);
	obj = AlsStateObjective(state, x, m, ax);
	x[k] = obj;
	PG_RETURN_ARRAYTYPE_P(DoublesToArray(x, k + 1));
}
