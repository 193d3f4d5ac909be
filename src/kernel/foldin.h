/*
 * kernel/foldin.h
 *		Fold-in and block scoring of embeddings models: the closed-form user
 *		vector of the training objective against fixed item vectors, and the
 *		scores of a block of users against every item.  No PostgreSQL in here.
 *
 * The fold-in of a user with items j (vectors v_j, confidences c_j) solves
 *
 *		(w G + sum_j (c_j - w) v_j v_j^T + lambda I) x = sum_j c_j v_j,
 *		lambda = l2 (n + w N)^nu,
 *
 * where G = Y^T Y is the item Gramian, w the Gramian weight, n the number of
 * distinct items of positive confidence and N the number of items of the
 * model: one user half-step of implicit ALS.
 */
#ifndef FOLDIN_H
#define FOLDIN_H

#include <stddef.h>
#include <stdint.h>

/* What a fold-in needs of a model (all borrowed, never freed here) */
typedef struct FoldInModel
{
	int			dim;
	int			n_items;		/* rows of items */
	const float *items;			/* n_items x dim, row-major */
	const double *gramian;		/* dim x dim, symmetric */
	double		gramian_weight; /* w */
	double		l2;
	double		nu;
	double		n_train_items;	/* N of the regularization */
} FoldInModel;

/* Scratch of a fold-in for at most max_rows items (FoldInWorkSize doubles) */
extern size_t FoldInWorkSize(int dim, int max_rows);

extern double FoldInLambda(const FoldInModel *m, int n);
extern int	FoldInSolve(const FoldInModel *m, int n, const int *rows,
						const double *conf, double *work, double *x,
						int *jitter_retries);
extern void FoldInScoreBlock(const FoldInModel *m, int nusers, const float *users,
							 float *scores);

#endif
