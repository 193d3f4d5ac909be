/*
 * losses/uncertainty.h
 *		Kendall et al.'s uncertainty-weighted multi-task loss, Kendall & Gal's
 *		aleatoric and epistemic uncertainty.
 *
 * The kernels (task terms, the sampled softmax loss) know nothing of
 * PostgreSQL.
 */
#ifndef UNCERTAINTY_H
#define UNCERTAINTY_H

#include "postgres.h"

#include <math.h>

#include "fmgr.h"

#include "kernel/rng.h"

/* Bounds of the closed-form log variances s_k (doc/math.md §5) */
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

extern double UncertaintyTerm(UncertaintyTask type, double loss, double log_var);
extern double UncertaintyOptimalLogVar(UncertaintyTask type, double mean_loss);
extern double SampledSoftmaxNll(int nclasses, const double *logits, const double *sigmas,
								int label, int samples, Rng *rng, double *noisy);

#endif
