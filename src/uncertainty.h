/*
 * uncertainty.h
 *		Kendall et al.'s uncertainty-weighted multi-task loss, Kendall & Gal's
 *		aleatoric and epistemic uncertainty, and the pieces the evaluation
 *		aggregates of metrics.c share with them.
 *
 * The kernels (task terms, the seeded normal generator, the sampled softmax
 * loss, compensated and Welford sums) know nothing of PostgreSQL; the
 * aggregate-state helpers at the end do.
 */
#ifndef UNCERTAINTY_H
#define UNCERTAINTY_H

#include "postgres.h"

#include <math.h>

#include "fmgr.h"

/* Bounds of the closed-form log variances s_k (algorithms.md section 4) */
#define UNCERTAINTY_LOG_VAR_MIN (-20.0)
#define UNCERTAINTY_LOG_VAR_MAX 20.0

/* Most Monte Carlo samples recsys.sampled_softmax_nll draws */
#define UNCERTAINTY_MAX_SAMPLES 1000000

/* Kinds of task in Kendall's loss */
typedef enum UncertaintyTask
{
	TASK_REGRESSION = 0,		/* 0.5 exp(-s) L + 0.5 s */
	TASK_CLASSIFICATION = 1		/* exp(-s) L + 0.5 s */
} UncertaintyTask;

/*
 * Seeded generator: splitmix64 expands the seed into the state of
 * xoshiro256**, whose outputs feed Box-Muller (both outputs used, cosine
 * first).  Self-contained so that results do not depend on the platform's
 * random() and are reproducible outside PostgreSQL.
 */
typedef struct NormalRng
{
	uint64		s[4];
	double		spare;
	bool		has_spare;
} NormalRng;

extern void NormalRngInit(NormalRng *rng, uint64 seed);
extern uint64 NormalRngNext64(NormalRng *rng);
extern double NormalRngNormal(NormalRng *rng);

extern double UncertaintyTerm(UncertaintyTask type, double loss, double log_var);
extern double UncertaintyOptimalLogVar(UncertaintyTask type, double mean_loss);
extern double SampledSoftmaxNll(int nclasses, const double *logits, const double *sigmas,
								int label, int samples, NormalRng *rng, double *noisy);

/* Neumaier-compensated sum: value = sum + comp */
typedef struct CompensatedSum
{
	double		sum;
	double		comp;
} CompensatedSum;

/* Add x to a compensated sum */
static inline void
CompensatedAdd(CompensatedSum *acc, double x)
{
	double		t = acc->sum + x;

	if (fabs(acc->sum) >= fabs(x))
		acc->comp += (acc->sum - t) + x;
	else
		acc->comp += (x - t) + acc->sum;
	acc->sum = t;
}

/* Add a second compensated sum into the first */
static inline void
CompensatedMerge(CompensatedSum *acc, const CompensatedSum *other)
{
	CompensatedAdd(acc, other->sum);
	acc->comp += other->comp;
}

/* Get the value of a compensated sum */
static inline double
CompensatedValue(const CompensatedSum *acc)
{
	return acc->sum + acc->comp;
}

/*
 * Aggregate states are bytea values that start with this header, so that one
 * set of helpers can check and copy them.
 */
typedef struct RecsysStateHeader
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint32		magic;			/* one per aggregate */
	uint16		version;
	uint16		flags;			/* aggregate-specific */
} RecsysStateHeader;

extern RecsysStateHeader *StateGetArg(FunctionCallInfo fcinfo, int argno, uint32 magic,
									  uint16 version, const char *what);
extern RecsysStateHeader *StateGetWritable(FunctionCallInfo fcinfo, int argno,
										   RecsysStateHeader *state);
extern RecsysStateHeader *StateAlloc(Size size, uint32 magic, uint16 version,
									 const char *what);
extern void StateInvalid(const char *what, const char *detail) pg_attribute_noreturn();

#endif
