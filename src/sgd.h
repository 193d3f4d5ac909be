/*
 * sgd.h
 *		SGD epochs for Gramian-regularized embeddings (algorithms.md section 1):
 *		SOGram (moving-average Gramian estimates), SAGram (cached per-entity
 *		outer products) and the sampled-negatives baseline.
 */
#ifndef SGD_H
#define SGD_H

#include "postgres.h"

/* Which estimate of the Gramian term a method uses */
typedef enum SgdMethod
{
	SGD_SOGRAM,
	SGD_SAGRAM,
	SGD_SAMPLED
} SgdMethod;

/* How entities are drawn for Gramian batches and negatives */
typedef enum SgdSampling
{
	SGD_SAMPLE_UNIFORM,
	SGD_SAMPLE_SQRT,
	SGD_SAMPLE_LINEAR
} SgdSampling;

/* Rows of training data an SGD run may hold (32-bit example indices) */
#define SGD_MAX_PAIRS ((int64) 0x7FFFFFFF)

#endif
