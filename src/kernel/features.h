/*
 * kernel/features.h
 *		The numeric part of a feature spec (src/features/spec.h): running
 *		statistics of a column (Welford, float64) and the transform that
 *		turns a raw value into a model input.  Plain C with no PostgreSQL
 *		headers, so that fitting and scoring share one definition and the
 *		Python helper of doc/features.md can mirror it line by line.
 *
 * Transforms (std = population standard deviation of the fitted values):
 *	standardize			(x - mean) / std
 *	log1p_standardize	(log1p(x) - mean) / std, mean and std of log1p(x)
 *	minmax				(x - min) / (max - min)
 * A std of 0 divides by 1 and max = min gives 0, so a constant column
 * becomes 0 rather than NaN.
 */
#ifndef KERNEL_FEATURES_H
#define KERNEL_FEATURES_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum FeatureTransform
{
	FEATURE_STANDARDIZE,
	FEATURE_MINMAX,
	FEATURE_LOG1P_STANDARDIZE
} FeatureTransform;

/* Running statistics of the non-NULL values of a column */
typedef struct FeatureStats
{
	int64_t		count;
	double		mean;
	double		m2;				/* sum of squared deviations (Welford) */
	double		min;
	double		max;
} FeatureStats;

/* A fitted numeric transform */
typedef struct FeatureNumeric
{
	FeatureTransform transform;
	double		mean;			/* of the values statistics are taken over */
	double		std;
	double		min;			/* of the raw values */
	double		max;
	float		null_out;		/* what a NULL becomes */
} FeatureNumeric;

extern void FeatureStatsInit(FeatureStats *s);
extern void FeatureStatsAdd(FeatureStats *s, double x);
extern double FeatureStatsStd(const FeatureStats *s);
extern double FeatureStatValue(FeatureTransform transform, double x);

/*
 * The two functions every numeric value of every scored row goes through,
 * inline: a call each was 1.5 % of per-row predict
 */

/* Tell whether a raw value is one the transform takes: finite, and > -1 under log1p */
static inline bool
FeatureValueValid(FeatureTransform transform, double x)
{
	if (!isfinite(x))
		return false;
	return transform != FEATURE_LOG1P_STANDARDIZE || x > -1.0;
}

/* Transform a valid raw value into the model's input */
static inline float
FeatureNumericApply(const FeatureNumeric *f, double x)
{
	switch (f->transform)
	{
		case FEATURE_MINMAX:
			return f->max > f->min ? (float) ((x - f->min) / (f->max - f->min)) : 0.0f;
		case FEATURE_LOG1P_STANDARDIZE:
			x = log1p(x);
			break;
		case FEATURE_STANDARDIZE:
			break;
	}
	return (float) ((x - f->mean) / (f->std > 0.0 ? f->std : 1.0));
}

#endif
