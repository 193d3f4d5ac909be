/*
 * embeddings/train_options.h
 *		The one table of train_embeddings options (name, methods, type,
 *		default, range): validation, the resolved settings the trainers
 *		read, and recsys.embedding_options() that shows the table in SQL.
 */
#ifndef TRAIN_OPTIONS_H
#define TRAIN_OPTIONS_H

#include "postgres.h"

#include "utils/jsonb.h"

/* Training methods, as bits so that an option can name the methods it has */
typedef enum TrainMethod
{
	TRAIN_ALS = 1 << 0,
	TRAIN_SOGRAM = 1 << 1,
	TRAIN_SAGRAM = 1 << 2,
	TRAIN_SAMPLED = 1 << 3,
	TRAIN_EASE = 1 << 4
} TrainMethod;

typedef enum TrainEngine
{
	TRAIN_ENGINE_AUTO,			/* memory when it fits recsys.training_memory */
	TRAIN_ENGINE_MEMORY,
	TRAIN_ENGINE_AGGREGATE
} TrainEngine;

/* Every option of every method, resolved (defaults filled in) */
typedef struct TrainOptions
{
	TrainMethod method;
	int64		seed;
	double		init_scale;
	double		nu;
	/* sgd methods */
	double		learning_rate;
	int			batch_size;
	int			optimizer;		/* index into "adagrad, sgd" */
	double		alpha;			/* sogram */
	int			sampling;		/* index into "uniform, sqrt, linear" */
	int			beta;			/* sagram: index into "sag, saga" */
	int			negatives;		/* sampled */
	/* als */
	TrainEngine engine;
	int			solver;			/* index into "cholesky, cg" */
	int			cg_steps;
	/* ease */
	double		ease_l2;		/* lambda of X^T X + lambda I */
	/* the resolved options as a JSON object (text), for the model's config */
	char	   *json;
} TrainOptions;

/* Word indexes of the word-valued options */
#define TRAIN_OPTIMIZER_ADAGRAD 0
#define TRAIN_OPTIMIZER_SGD 1
#define TRAIN_BETA_SAGA 1
#define TRAIN_SOLVER_CHOLESKY 0
#define TRAIN_SOLVER_CG 1

extern TrainMethod TrainMethodFromName(const char *name);
extern const char *TrainMethodName(TrainMethod method);
extern void TrainOptionsResolve(TrainMethod method, Jsonb *options, TrainOptions *out);

#endif
