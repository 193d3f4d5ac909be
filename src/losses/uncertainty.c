/*
 * losses/uncertainty.c
 *		Uncertainty-weighted multi-task losses (Kendall, Gal & Cipolla, CVPR
 *		2018) and aleatoric/epistemic uncertainty (Kendall & Gal, NIPS 2017)
 *		over tables of predictions.
 *
 * With s = log sigma^2 per task, a regression task contributes
 * 0.5 exp(-s) L + 0.5 s and a classification task exp(-s) L + 0.5 s.  For
 * fixed losses the optimum is s = ln L (regression) or ln 2L
 * (classification), which is what the aggregates compute from the mean
 * per-row losses, clamped to [-20, 20] because s -> -inf as a loss -> 0.
 *
 * Aggregate states are bytea values with a checked header (see gramian.c),
 * updated in place when called as an aggregate, combined for parallel and
 * distributed aggregation.  A state that has to grow, or one that is not
 * ours to modify, is rebuilt in the current (per-call) memory context: the
 * executor copies a returned value that is not the old state into the
 * aggregate context and frees the old one.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "store/arrays.h"
#include "store/aggstate.h"
#include "settings.h"
#include "kernel/rng.h"
#include "losses/uncertainty.h"

/* ---------------------------------------------------------------------
 * Kernels (no PostgreSQL in here)
 * ---------------------------------------------------------------------
 */

/*
 * Get one task's term of Kendall's loss at log variance s; a zero loss
 * contributes 0.5 s even where exp(-s) overflows
 */
double
UncertaintyTerm(UncertaintyTask type, double loss, double log_var)
{
	double		scale = type == TASK_CLASSIFICATION ? 1.0 : 0.5;

	if (loss == 0.0)
		return 0.5 * log_var;
	return scale * exp(-log_var) * loss + 0.5 * log_var;
}

/* Get the clamped minimiser s of a task's term for a fixed (mean) loss */
double
UncertaintyOptimalLogVar(UncertaintyTask type, double mean_loss)
{
	double		s = log(type == TASK_CLASSIFICATION ? 2.0 * mean_loss : mean_loss);

	/* log(0) = -inf clamps to the lower bound, as it should */
	return Min(Max(s, UNCERTAINTY_LOG_VAR_MIN), UNCERTAINTY_LOG_VAR_MAX);
}

/*
 * Get Kendall & Gal's classification loss over samples Monte Carlo draws:
 * log T - logsumexp_t ell_t, where ell_t is the log-softmax of the label's
 * logit after corrupting every logit c with sigmas[c] times a standard
 * normal draw (drawn in class order).  noisy is scratch space for nclasses
 * values.  Returns NaN when a noisy logit overflows, +Infinity when every
 * draw gives the label a probability that underflows to 0.
 */
double
SampledSoftmaxNll(int nclasses, const double *logits, const double *sigmas,
				  int label, int samples, Rng *rng, double *noisy)
{
	double		best = -INFINITY;
	double		acc = 0.0;

	for (int t = 0; t < samples; t++)
	{
		double		m = -INFINITY;
		double		s = 0.0;
		double		ell;
		bool		bad = false;

		for (int c = 0; c < nclasses; c++)
		{
			noisy[c] = logits[c] + sigmas[c] * RngNormal(rng);
			bad |= !isfinite(noisy[c]);
			m = Max(m, noisy[c]);
		}
		if (bad)
			return NAN;
		for (int c = 0; c < nclasses; c++)
			s += exp(noisy[c] - m);
		ell = (noisy[label] - m) - log(s);

		/* running logsumexp over the samples, rescaled when the maximum moves */
		if (ell > best)
		{
			acc = acc * exp(best - ell) + 1.0;
			best = ell;
		}
		else if (ell > -INFINITY)
			acc += exp(ell - best);
	}
	if (best == -INFINITY)
		return INFINITY;
	return log((double) samples) - (best + log(acc));
}

/* ---------------------------------------------------------------------
 * Argument checks
 * ---------------------------------------------------------------------
 */

/* Check that every loss is non-negative */
static void
CheckLosses(const double *losses, int n)
{
	for (int i = 0; i < n; i++)
		if (losses[i] < 0.0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("losses must not be negative"),
					 errdetail("Task %d has loss %g.", i + 1, losses[i])));
}

/*
 * Get the task types of a text[] (regression, classification or its alias
 * binary) into types[0..ntasks-1]; a NULL array means all regression
 */
static void
GetTaskTypes(ArrayType *a, int ntasks, uint8 *types)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (a == NULL)
	{
		memset(types, TASK_REGRESSION, ntasks);
		return;
	}
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("task_types must be a 1-D array")));
	deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n != ntasks)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("task_types has %d elements but losses has %d", n, ntasks)));
	for (int i = 0; i < n; i++)
	{
		text	   *t;
		const char *s;
		int			len;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("task_types must not contain nulls")));
		t = DatumGetTextPP(elems[i]);
		s = VARDATA_ANY(t);
		len = VARSIZE_ANY_EXHDR(t);
		if (len == 10 && memcmp(s, "regression", 10) == 0)
			types[i] = TASK_REGRESSION;
		else if ((len == 14 && memcmp(s, "classification", 14) == 0) ||
				 (len == 6 && memcmp(s, "binary", 6) == 0))
			types[i] = TASK_CLASSIFICATION;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown task type \"%s\"", text_to_cstring(t)),
					 errhint("Task types are regression and classification (or binary).")));
	}
}

/* The task types of the last text[] a transition function parsed */
typedef struct TaskTypesCache
{
	Size		nbytes;			/* VARSIZE of the array */
	int			ntasks;
	char	   *array;			/* a copy of the array */
	uint8	   *types;
} TaskTypesCache;

/*
 * Get the task types of a text[] argument through a per-call-site cache:
 * aggregates see the same array on every row, so it is parsed once
 */
static void
GetTaskTypesCached(FunctionCallInfo fcinfo, ArrayType *a, int ntasks, uint8 *types)
{
	TaskTypesCache *cache = (TaskTypesCache *) fcinfo->flinfo->fn_extra;

	if (a == NULL)
	{
		GetTaskTypes(NULL, ntasks, types);
		return;
	}
	if (cache != NULL && cache->ntasks == ntasks && cache->nbytes == VARSIZE(a) &&
		memcmp(cache->array, a, cache->nbytes) == 0)
	{
		memcpy(types, cache->types, ntasks);
		return;
	}
	GetTaskTypes(a, ntasks, types);
	if (cache == NULL)
		cache = fcinfo->flinfo->fn_extra =
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(TaskTypesCache));
	if (cache->array)
		pfree(cache->array);
	if (cache->types)
		pfree(cache->types);
	cache->array = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, VARSIZE(a));
	memcpy(cache->array, a, VARSIZE(a));
	cache->types = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, ntasks);
	memcpy(cache->types, types, ntasks);
	cache->nbytes = VARSIZE(a);
	cache->ntasks = ntasks;
}

/* Check that a loss value did not overflow */
static double
CheckLossResult(double x, const char *what)
{
	if (!isfinite(x))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s is out of range", what),
				 errhint("exp(-log_var) overflows for log variances far below the log of the loss.")));
	return x;
}

/* ---------------------------------------------------------------------
 * Row-wise losses
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(uncertainty_loss);
/* Get Kendall's uncertainty-weighted sum of task losses at log variances s */
Datum
uncertainty_loss(PG_FUNCTION_ARGS)
{
	double	   *losses,
			   *log_vars;
	int			n,
				nv;
	uint8	   *types;
	double		total = 0.0;

	/* NULL task_types means all regression; any other NULL gives NULL */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	losses = VectorGetDoubles(PG_GETARG_ARRAYTYPE_P(0), "losses", &n);
	log_vars = VectorGetDoubles(PG_GETARG_ARRAYTYPE_P(1), "log_vars", &nv);
	if (n != nv)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("losses has %d elements but log_vars has %d", n, nv)));
	CheckLosses(losses, n);
	types = palloc(n);
	GetTaskTypesCached(fcinfo, PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2), n, types);

	for (int i = 0; i < n; i++)
		total += UncertaintyTerm((UncertaintyTask) types[i], losses[i], log_vars[i]);
	PG_RETURN_FLOAT8(CheckLossResult(total, "uncertainty loss"));
}

PG_FUNCTION_INFO_V1(gaussian_nll);
/* Get the heteroscedastic regression loss 0.5 exp(-s) (y - mean)^2 + 0.5 s */
Datum
gaussian_nll(PG_FUNCTION_ARGS)
{
	double		y = PG_GETARG_FLOAT8(0);
	double		mean = PG_GETARG_FLOAT8(1);
	double		log_var = PG_GETARG_FLOAT8(2);
	double		r;

	CheckFiniteDouble(y, "y");
	CheckFiniteDouble(mean, "mean");
	CheckFiniteDouble(log_var, "log_var");
	r = y - mean;
	PG_RETURN_FLOAT8(CheckLossResult(UncertaintyTerm(TASK_REGRESSION, r * r, log_var),
									 "gaussian_nll"));
}

PG_FUNCTION_INFO_V1(sampled_softmax_nll);
/*
 * Get Kendall & Gal's classification loss with Gaussian logit noise:
 * -log (1/T) sum_t softmax(f + sigma eps_t)[label], with sigma =
 * exp(log_var / 2) per class (or one log_var for all), label counted from 0
 */
Datum
sampled_softmax_nll(PG_FUNCTION_ARGS)
{
	int			nclasses,
				nvars;
	double	   *logits = VectorGetDoubles(PG_GETARG_ARRAYTYPE_P(0), "logits", &nclasses);
	double	   *log_vars = VectorGetDoubles(PG_GETARG_ARRAYTYPE_P(1), "log_vars", &nvars);
	int32		label = PG_GETARG_INT32(2);
	int32		samples = PG_GETARG_INT32(3);
	int32		seed = PG_GETARG_INT32(4);
	double	   *sigmas;
	double	   *noisy;
	Rng	rng;
	double		best = -INFINITY;
	double		acc = 0.0;
	double		result;

	if (nvars != nclasses && nvars != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("log_vars has %d elements but logits has %d", nvars, nclasses),
				 errhint("Pass one log variance per class, or one for all classes.")));
	if (label < 0 || label >= nclasses)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("label %d is out of range for %d classes", label, nclasses),
				 errhint("Labels count from 0 to the number of classes minus 1.")));
	if (samples < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("samples must be at least 1")));
	if (samples > UNCERTAINTY_MAX_SAMPLES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("samples must be at most %d", UNCERTAINTY_MAX_SAMPLES)));

	sigmas = palloc(sizeof(double) * nclasses);
	noisy = palloc(sizeof(double) * nclasses);
	for (int c = 0; c < nclasses; c++)
	{
		sigmas[c] = exp(0.5 * log_vars[nvars == 1 ? 0 : c]);
		if (!isfinite(sigmas[c]))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("noise scale exp(log_var / 2) overflows for log_var %g",
							log_vars[nvars == 1 ? 0 : c])));
	}

	/* the seed is sign-extended to 64 bits, as the reference script does */
	RngInit(&rng, (uint64) (int64) seed);

	/* blocks of samples between interrupt checks, merged by logsumexp */
	for (int done = 0; done < samples;)
	{
		int			block = Min(samples - done, Max(1, 65536 / nclasses));
		double		nll = SampledSoftmaxNll(nclasses, logits, sigmas, label, block,
											&rng, noisy);
		double		lse;

		if (isnan(nll))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("noisy logits overflow"),
					 errhint("The log variances are too large.")));
		/* the block's logsumexp_t ell_t; -inf adds nothing */
		lse = log((double) block) - nll;
		if (lse > best)
		{
			acc = acc * exp(best - lse) + 1.0;
			best = lse;
		}
		else if (lse > -INFINITY)
			acc += exp(lse - best);
		done += block;
		CHECK_FOR_INTERRUPTS();
	}
	if (best == -INFINITY)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("sampled softmax loss is out of range"),
				 errdetail("The label's probability underflows to 0 in every sample.")));
	result = log((double) samples) - (best + log(acc));
	/* rounding can leave -1e-16 where the loss is 0 */
	PG_RETURN_FLOAT8(Max(result, 0.0));
}

/* ---------------------------------------------------------------------
 * Multi-task aggregates: uncertainty_weights, uncertainty_weighted_loss
 * ---------------------------------------------------------------------
 */

#define TASKLOSS_WHAT "uncertainty_weights"

/* Check a multi-task loss state (in full), at most recsys.max_dim tasks */
static const char *
CheckTaskLossState(const void *state, size_t size, bool deep)
{
	return TaskLossStateCheck(state, size, recsys_max_dim);
}

static const StateType TaskLossStateType = {TASKLOSS_WHAT, TASKLOSS_MAGIC, TASKLOSS_VERSION, CheckTaskLossState};

/* Raise the error for a multi-task loss update that failed with err */
static void
TaskLossError(AggError err, int task)
{
	if (err == AGG_COUNT_OVERFLOW)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("uncertainty_weights row count is out of range")));
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("sum of losses of task %d is out of range", task + 1)));
}

/* Check that two states (or a state and a row) agree on the tasks */
static void
CheckSameTasks(const TaskLossState *state, int ntasks, const uint8 *types)
{
	if (state->ntasks != ntasks)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("losses has %d elements but earlier rows have %d",
						ntasks, state->ntasks)));
	if (memcmp(TaskLossTypes(state), types, ntasks) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("task_types differ between rows")));
}

PG_FUNCTION_INFO_V1(uncertainty_weights_accum);
/* Get the multi-task loss state with one more row of per-task losses */
Datum
uncertainty_weights_accum(PG_FUNCTION_ARGS)
{
	TaskLossState *state = NULL;
	double	   *losses;
	uint8	   *types;
	int			n;
	int			task = 0;
	AggError	err;

	if (!PG_ARGISNULL(0))
		state = StateGetChecked(fcinfo, 0, &TaskLossStateType, true);
	/* rows without losses are skipped, like NULL rows in avg() */
	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P((bytea *) state);
	}

	losses = VectorGetDoubles(PG_GETARG_ARRAYTYPE_P(1), "losses", &n);
	CheckLosses(losses, n);
	types = palloc(n);
	GetTaskTypesCached(fcinfo, PG_NARGS() < 3 || PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2),
					   n, types);

	if (state == NULL)
	{
		state = (TaskLossState *) StateAlloc(TaskLossStateSize(n), TASKLOSS_MAGIC,
											 TASKLOSS_VERSION, TASKLOSS_WHAT);
		state->ntasks = n;
		memcpy(TaskLossTypes(state), types, n);
	}
	else
	{
		CheckSameTasks(state, n, types);
		state = (TaskLossState *) StateGetWritable(fcinfo, 0, &state->hdr);
	}

	err = TaskLossStateAdd(state, losses, &task);
	if (err != AGG_OK)
		TaskLossError(err, task);
	PG_RETURN_BYTEA_P((bytea *) state);
}

PG_FUNCTION_INFO_V1(uncertainty_weights_combine);
/* Get the union of two multi-task loss states (parallel aggregation) */
Datum
uncertainty_weights_combine(PG_FUNCTION_ARGS)
{
	TaskLossState *state1 = PG_ARGISNULL(0) ? NULL : StateGetChecked(fcinfo, 0, &TaskLossStateType, true);
	TaskLossState *state2 = PG_ARGISNULL(1) ? NULL : StateGetChecked(fcinfo, 1, &TaskLossStateType, true);
	Datum		result;
	int			task = 0;
	AggError	err;

	if (StateCombineTrivial(fcinfo, state1 ? &state1->hdr : NULL,
							state2 ? &state2->hdr : NULL, &result))
		return result;
	CheckSameTasks(state1, state2->ntasks, TaskLossTypes(state2));
	state1 = (TaskLossState *) StateGetWritable(fcinfo, 0, &state1->hdr);
	err = TaskLossStateCombine(state1, state2, &task);
	if (err != AGG_OK)
		TaskLossError(err, task);
	PG_RETURN_BYTEA_P((bytea *) state1);
}

/* Get the per-task mean losses and optimal log variances of a state */
static void
TaskLossOptimum(const TaskLossState *state, double *means, double *log_vars)
{
	TaskLossStateMeans(state, means);
	for (int i = 0; i < state->ntasks; i++)
	{
		log_vars[i] = UncertaintyOptimalLogVar((UncertaintyTask) TaskLossTypes(state)[i],
											   means[i]);
	}
}

PG_FUNCTION_INFO_V1(uncertainty_weights_final);
/* Get the optimal log variances s_k as double precision[], NULL for no rows */
Datum
uncertainty_weights_final(PG_FUNCTION_ARGS)
{
	TaskLossState *state;
	double	   *means,
			   *log_vars;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = StateGetChecked(fcinfo, 0, &TaskLossStateType, true);
	if (state->count == 0)
		PG_RETURN_NULL();
	means = palloc(sizeof(double) * state->ntasks);
	log_vars = palloc(sizeof(double) * state->ntasks);
	TaskLossOptimum(state, means, log_vars);
	PG_RETURN_ARRAYTYPE_P(DoublesToArray(log_vars, state->ntasks));
}

PG_FUNCTION_INFO_V1(uncertainty_weighted_loss_final);
/* Get Kendall's total loss at the optimal log variances, NULL for no rows */
Datum
uncertainty_weighted_loss_final(PG_FUNCTION_ARGS)
{
	TaskLossState *state;
	double	   *means,
			   *log_vars;
	double		total = 0.0;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = StateGetChecked(fcinfo, 0, &TaskLossStateType, true);
	if (state->count == 0)
		PG_RETURN_NULL();
	means = palloc(sizeof(double) * state->ntasks);
	log_vars = palloc(sizeof(double) * state->ntasks);
	TaskLossOptimum(state, means, log_vars);
	for (int i = 0; i < state->ntasks; i++)
		total += UncertaintyTerm((UncertaintyTask) TaskLossTypes(state)[i], means[i],
								 log_vars[i]);
	PG_RETURN_FLOAT8(CheckLossResult(total, "uncertainty weighted loss"));
}

/* ---------------------------------------------------------------------
 * predictive_variance: epistemic + aleatoric variance over MC samples
 * ---------------------------------------------------------------------
 */

#define PREDVAR_WHAT "predictive_variance"

/* Check a predictive-variance state (in full: it has a fixed size) */
static const char *
CheckPredVarState(const void *state, size_t size, bool deep)
{
	return PredVarStateCheck(state, size);
}

static const StateType PredVarStateType = {PREDVAR_WHAT, PREDVAR_MAGIC, PREDVAR_VERSION, CheckPredVarState};

/* Raise the error for a predictive-variance update that failed with err */
static void
PredVarError(AggError err)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg(err == AGG_COUNT_OVERFLOW ? "predictive_variance sample count is out of range" :
					"predictive variance is out of range")));
}

PG_FUNCTION_INFO_V1(predictive_variance_accum);
/* Get the state with one more MC sample (Welford's update) */
Datum
predictive_variance_accum(PG_FUNCTION_ARGS)
{
	PredVarState *state = PG_ARGISNULL(0) ? NULL : StateGetChecked(fcinfo, 0, &PredVarStateType, true);
	double		x,
				v;
	AggError	err;

	/* samples without a mean or a variance are skipped */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P((bytea *) state);
	}
	x = PG_GETARG_FLOAT8(1);
	v = PG_GETARG_FLOAT8(2);
	CheckFiniteDouble(x, "mean");
	CheckFiniteDouble(v, "variance");
	if (v < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("variance must not be negative")));

	if (state == NULL)
		state = (PredVarState *) StateAlloc(sizeof(PredVarState), PREDVAR_MAGIC,
											PREDVAR_VERSION, PREDVAR_WHAT);
	else
		state = (PredVarState *) StateGetWritable(fcinfo, 0, &state->hdr);

	err = PredVarStateAdd(state, x, v);
	if (err != AGG_OK)
		PredVarError(err);
	PG_RETURN_BYTEA_P((bytea *) state);
}

PG_FUNCTION_INFO_V1(predictive_variance_combine);
/* Get the union of two predictive-variance states (Chan et al.'s merge) */
Datum
predictive_variance_combine(PG_FUNCTION_ARGS)
{
	PredVarState *state1 = PG_ARGISNULL(0) ? NULL : StateGetChecked(fcinfo, 0, &PredVarStateType, true);
	PredVarState *state2 = PG_ARGISNULL(1) ? NULL : StateGetChecked(fcinfo, 1, &PredVarStateType, true);
	AggError	err;

	if (state2 == NULL || state2->count == 0)
	{
		if (state1 == NULL)
		{
			if (state2 == NULL)
				PG_RETURN_NULL();
			state1 = palloc(sizeof(PredVarState));
			memcpy(state1, state2, sizeof(PredVarState));
		}
		PG_RETURN_BYTEA_P((bytea *) state1);
	}
	if (state1 == NULL)
	{
		state1 = palloc(sizeof(PredVarState));
		memcpy(state1, state2, sizeof(PredVarState));
		PG_RETURN_BYTEA_P((bytea *) state1);
	}
	state1 = (PredVarState *) StateGetWritable(fcinfo, 0, &state1->hdr);

	err = PredVarStateCombine(state1, state2);
	if (err != AGG_OK)
		PredVarError(err);
	PG_RETURN_BYTEA_P((bytea *) state1);
}

PG_FUNCTION_INFO_V1(predictive_variance_final);
/* Get {epistemic, aleatoric, total}: var_pop of the means, mean variance, their sum */
Datum
predictive_variance_final(PG_FUNCTION_ARGS)
{
	PredVarState *state;
	double		out[3];

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = StateGetChecked(fcinfo, 0, &PredVarStateType, true);
	if (state->count == 0)
		PG_RETURN_NULL();
	PredVarStateResult(state, out);
	PG_RETURN_ARRAYTYPE_P(DoublesToArray(out, 3));
}
