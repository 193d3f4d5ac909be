/*
 * kernel/als_engine.h
 *		The in-memory implicit-ALS kernel: one sweep solves every entity of a
 *		side against the other side's vectors, held as compressed rows.  No
 *		PostgreSQL in here: the caller owns all memory and is called back
 *		between blocks of entities (to check for interrupts).  Entities are
 *		solved on up to nworkers threads (parallel.h), each with its own
 *		workspace; every entity's solve is the same whichever thread runs
 *		it, so the vectors do not depend on the number of threads.
 *
 * Each entity e of a side solves (doc/embeddings.md, "Implicit ALS")
 *
 *		(w G + sum_j (c_j - w) v_j v_j^T + lambda_e I) x = sum_j c_j v_j
 *
 * over its rows j (the other side's vectors v_j and confidences c_j), where
 * G = V^T V is the other side's Gramian and w the Gramian weight: exactly
 * the system of the recsys.als_solve aggregate.
 */
#ifndef ALS_ENGINE_H
#define ALS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* Compressed rows of one side: entity e has entries ptr[e] .. ptr[e + 1] - 1 */
typedef struct AlsRows
{
	int32_t		n;				/* entities of this side */
	const int64_t *ptr;			/* n + 1 offsets */
	const int32_t *idx;			/* the other side's index of each entry */
	const float *conf;			/* confidence of each entry (> 0) */
} AlsRows;

typedef enum AlsSolver
{
	ALS_SOLVER_CHOLESKY,		/* normal matrix per entity, LAPACK Cholesky */
	ALS_SOLVER_CG				/* warm-started conjugate gradient, matrix-free */
} AlsSolver;

/* Rows cholesky gathers at a time (per dsyrk); bounds the workspace */
#define ALS_CHUNK_ROWS 1024
/*
 * Bytes of float rows cg gathers at a time: an entity whose rows fit is
 * gathered once per sweep instead of once per product (popular items)
 */
#define ALS_CG_GATHER_BYTES ((size_t) 16 * 1024 * 1024)
/* Work counted per entity besides its flops: the calls and loops around them */
#define ALS_ENTITY_WORK 1.0e4

/* Outcome of a sweep */
typedef enum AlsStatus
{
	ALS_OK = 0,
	ALS_SINGULAR,				/* Cholesky failed after the jitter retries */
	ALS_OUT_OF_RANGE			/* a solution does not fit in float */
} AlsStatus;

typedef struct AlsSweep
{
	int			dim;
	double		gramian_weight; /* w */
	AlsSolver	solver;
	int			cg_steps;
	int			want_observed;	/* sum the observed loss into observed */
	int32_t		done;			/* entities of the side solved so far (progress) */
	double		observed;
	/*
	 * Threads a sweep may use, the caller's included (parallel.h), and the
	 * most rows of an entity on either side (sizes each thread's workspace;
	 * 0: not known, the largest workspace)
	 */
	int			nworkers;
	int64_t		max_rows;
	/* with want_observed: one double per entity of the side, summed in order */
	double	   *entity_loss;
	/* set on failure */
	int32_t		failed_entity;
	int			lapack_info;
	int			jitter_retries;
} AlsSweep;

extern size_t AlsWorkDoubles(int dim, int64_t max_rows);
extern AlsStatus AlsSolveSide(AlsSweep *s, const AlsRows *rows, const double *lambda,
							  const float *other, const double *other_gramian,
							  float *x, double *work);
extern void AlsGramian(const float *x, int32_t n, int dim, double *g, double *work);
extern size_t AlsGramianWorkDoubles(int dim, int nworkers);
extern void AlsGramianParallel(const float *x, int32_t n, int dim, double *g, double *work,
							   int nworkers);
extern double AlsL2Loss(const float *x, int32_t n, int dim, const double *lambda);

#endif
