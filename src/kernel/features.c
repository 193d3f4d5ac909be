/*
 * kernel/features.c
 *		Statistics and transforms of numeric features (see features.h).
 */
#include <math.h>

#include "kernel/features.h"

/* Start empty statistics */
void
FeatureStatsInit(FeatureStats *s)
{
	s->count = 0;
	s->mean = 0.0;
	s->m2 = 0.0;
	s->min = INFINITY;
	s->max = -INFINITY;
}

/* Add one value (Welford's update: stable for large offsets, one pass) */
void
FeatureStatsAdd(FeatureStats *s, double x)
{
	double		delta = x - s->mean;

	s->count++;
	s->mean += delta / (double) s->count;
	s->m2 += delta * (x - s->mean);
	if (x < s->min)
		s->min = x;
	if (x > s->max)
		s->max = x;
}

/* Get the population standard deviation (0 for fewer than 2 values) */
double
FeatureStatsStd(const FeatureStats *s)
{
	return s->count > 1 ? sqrt(s->m2 / (double) s->count) : 0.0;
}

/* Get the value statistics are taken over: log1p(x) under log1p_standardize, else x */
double
FeatureStatValue(FeatureTransform transform, double x)
{
	return transform == FEATURE_LOG1P_STANDARDIZE ? log1p(x) : x;
}
