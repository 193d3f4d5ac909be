/*
 * embeddings/sgd.h
 *		SGD epochs for Gramian-regularized embeddings:
 *		SOGram (moving-average Gramian estimates), SAGram (cached per-entity
 *		outer products) and the sampled-negatives baseline.
 */
#ifndef SGD_H
#define SGD_H

#include "postgres.h"

#include "embeddings/interactions.h"
#include "embeddings/train_options.h"

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

/* Called after each epoch with its losses and the seconds of its steps */
typedef void (*SgdReport) (void *arg, int epoch, double loss, double observed,
						   double gramian, double l2, double seconds);

extern void SgdTrain(const TrainOptions *opts, int dim, int epochs, double gramian_weight,
					 const Interactions *data, const double *lam_user, const double *lam_item,
					 float *user_x, float *item_x, SgdReport report, void *report_arg);

#endif
