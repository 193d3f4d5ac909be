/*
 * kernel/foldin.c
 *		Fold-in solves and block scoring over BLAS (see foldin.h).
 */
#include "kernel/foldin.h"

#include <math.h>
#include <string.h>

#include "kernel/linalg.h"

/* Get the number of doubles of scratch a fold-in of max_rows items needs */
size_t
FoldInWorkSize(int dim, int max_rows)
{
	/* A, the Cholesky copy, gathered rows and their scaled copy */
	return 2 * (size_t) dim * dim + 2 * (size_t) (max_rows > 0 ? max_rows : 1) * dim;
}

/* Get the regularization lambda = l2 (n + w N)^nu of an entity with n items */
double
FoldInLambda(const FoldInModel *m, int n)
{
	double		base = (double) n + m->gramian_weight * m->n_train_items;

	if (m->nu == 0.0)
		return m->l2;
	return m->l2 * pow(base, m->nu);
}

/*
 * Solve the fold-in system of one user whose n items are rows[] of the item
 * matrix with confidences conf[] (distinct rows, conf > 0), writing the
 * dim-long solution to x.  work holds FoldInWorkSize(dim, n) doubles.  The
 * observed part is one gemm over the gathered rows (D^T diag(c - w) D), not
 * n rank-1 updates.  Returns 0, or the LAPACK info of a failed Cholesky.
 */
int
FoldInSolve(const FoldInModel *m, int n, const int *rows, const double *conf,
			double *work, double *x, int *jitter_retries)
{
	int			k = m->dim;
	double		w = m->gramian_weight;
	double		lambda = FoldInLambda(m, n);
	double	   *a = work;
	double	   *chol = a + (size_t) k * k;
	double	   *d = chol + (size_t) k * k;
	double	   *e = d + (size_t) (n > 0 ? n : 1) * k;

	for (size_t i = 0; i < (size_t) k * k; i++)
		a[i] = w * m->gramian[i];
	for (int i = 0; i < k; i++)
		a[(size_t) i * k + i] += lambda;
	memset(x, 0, sizeof(double) * k);
	for (int j = 0; j < n; j++)
	{
		const float *v = m->items + (size_t) rows[j] * k;
		double		s = conf[j] - w;

		for (int t = 0; t < k; t++)
		{
			d[(size_t) j * k + t] = v[t];
			e[(size_t) j * k + t] = s * v[t];
			x[t] += conf[j] * (double) v[t];
		}
	}
	if (n > 0)
		LinalgDgemm(k, k, n, 1.0, d, 1, e, 0, 1.0, a);
	return LinalgCholeskySolve(k, a, x, 1, chol, jitter_retries);
}

/*
 * Score a block of users (nusers x dim, row-major) against every item:
 * scores (nusers x n_items) = U Y^T, one sgemm.  Single users go through the
 * same call, so one user's scores never depend on the block it came in.
 */
void
FoldInScoreBlock(const FoldInModel *m, int nusers, const float *users, float *scores)
{
	if (nusers <= 0 || m->n_items <= 0)
		return;
	LinalgSgemm(nusers, m->n_items, m->dim, 1.0f, users, 0, m->items, 1, 0.0f, scores);
}
