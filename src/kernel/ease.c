/*
 * kernel/ease.c
 *		EASE: the Gramian of sparse user rows, its regularized inverse by a
 *		blocked Cholesky with checks between blocks, the closed-form B and
 *		its loss, and the scores of a user.  Every BLAS/LAPACK call goes
 *		through linalg.c.
 *
 * Cost: the Gramian is sum_u n_u^2 / 2 multiply-adds (a sparse
 * accumulation: dense blocks of users would cost |U| n^2); the Cholesky
 * n^3 / 3 flops and the inverse 2 n^3 / 3 (as LAPACK's dpotrf + dpotri).
 * The inverse is computed in column blocks of EaseInverseBlock(n) columns,
 * each two triangular solves of at most about 4e9 flops, so the caller's
 * check runs at least that often.
 */
#include <math.h>
#include <string.h>

#include "kernel/ease.h"
#include "kernel/linalg.h"

/* Column block of the Cholesky factorisation */
#define EASE_FACTOR_BLOCK 128
/* Gramian updates between two checks */
#define EASE_GRAMIAN_CHECK 50000000

/* Get the bytes of the n x n double matrix */
size_t
EaseMatrixBytes(int n)
{
	return sizeof(double) * (size_t) n * (size_t) n;
}

/* Get the column block of the inverse: 2 n^2 w flops at most about 4e9 */
int
EaseInverseBlock(int n)
{
	double		w = 2e9 / ((double) n * (double) n);

	if (w > 256.0)
		return 256;
	if (w < 8.0)
		return 8;
	return (int) w;
}

/* Get the bytes of the inverse's workspace */
size_t
EaseWorkBytes(int n)
{
	int			nb = EaseInverseBlock(n);

	return sizeof(double) * (size_t) n * (size_t) (nb < n ? nb : n);
}

/*
 * Set g (n x n, column-major lower) to X^T X + lambda I, X the users'
 * rows (items ascending within a user, confidences as the values)
 */
void
EaseGramian(int n, int n_users, const int64_t *user_ptr, const int32_t *user_items,
			const float *user_conf, double lambda, double *g,
			void (*check) (void *), void *arg)
{
	size_t		since = 0;

	memset(g, 0, EaseMatrixBytes(n));
	for (int u = 0; u < n_users; u++)
	{
		int64_t		lo = user_ptr[u];
		int64_t		hi = user_ptr[u + 1];

		/* items ascending: (row b, column a) with b >= a is the lower triangle */
		for (int64_t p = lo; p < hi; p++)
		{
			double	   *col = g + (size_t) user_items[p] * n;
			double		ca = user_conf[p];

			for (int64_t q = p; q < hi; q++)
				col[user_items[q]] += ca * (double) user_conf[q];
		}
		since += (size_t) (hi - lo) * (size_t) (hi - lo + 1) / 2;
		if (since >= EASE_GRAMIAN_CHECK && check)
		{
			check(arg);
			since = 0;
		}
	}
	for (int i = 0; i < n; i++)
		g[(size_t) i * n + i] += lambda;
}

/*
 * Replace a (n x n, column-major lower: X^T X + lambda I) by the lower
 * triangle of its inverse P.  work holds EaseWorkBytes(n).  Returns 0, or
 * the LAPACK info of a failed factorisation (a is then undefined).
 */
int
EaseInvert(int n, double *a, double *work, void (*check) (void *), void *arg)
{
	int			info = LinalgCholeskyBlocked(n, a, EASE_FACTOR_BLOCK, check, arg);
	int			nb = EaseInverseBlock(n);

	if (info != 0)
		return info;
	/* left to right: block j0 reads columns >= j0 of L, then overwrites its own */
	for (int j0 = 0; j0 < n; j0 += nb)
	{
		int			w = n - j0 < nb ? n - j0 : nb;
		int			m = n - j0;

		LinalgCholeskyInverseColumns(n, a, j0, w, work);
		for (int c = 0; c < w; c++)
			memcpy(a + (size_t) (j0 + c) * n + j0 + c, work + (size_t) c * m + c,
				   sizeof(double) * (size_t) (m - c));
		if (check)
			check(arg);
	}
	return 0;
}

/* Get P[i, j] from the lower triangle */
static inline double
PAt(int n, const double *p, int i, int j)
{
	return i >= j ? p[(size_t) j * n + i] : p[(size_t) i * n + j];
}

/*
 * Compute the two terms of EASE's objective at the closed-form B:
 * observed = |X - X B|_F^2 and l2 = lambda |B|_F^2.  With I - B = P D^-1
 * (D = diag P) and P X^T X = I - lambda P,
 *		|X - X B|^2 = sum_j (1 / P_jj - lambda |P_:j|^2 / P_jj^2),
 *		lambda |B|^2 = lambda sum_j (|P_:j|^2 / P_jj^2 - 1),
 * so only column norms of P are needed (n^2, no pass over the users).
 * norms is scratch of n doubles.
 */
void
EaseLoss(int n, const double *p, double lambda, double *norms, double *observed, double *l2)
{
	double		obs = 0.0,
				reg = 0.0;

	/* squared column norms from the lower triangle, read column by column */
	memset(norms, 0, sizeof(double) * (size_t) n);
	for (int j = 0; j < n; j++)
	{
		const double *col = p + (size_t) j * n;

		norms[j] += col[j] * col[j];
		for (int i = j + 1; i < n; i++)
		{
			double		x2 = col[i] * col[i];

			norms[j] += x2;
			norms[i] += x2;
		}
	}
	for (int j = 0; j < n; j++)
	{
		double		d = p[(size_t) j * n + j];

		obs += 1.0 / d - lambda * norms[j] / (d * d);
		reg += lambda * (norms[j] / (d * d) - 1.0);
	}
	*observed = obs;
	*l2 = reg;
}

/* Compute row t of B = I - P diag(1/diag P) as floats: B_tj = -P_tj / P_jj, B_tt = 0 */
void
EaseRow(int n, const double *p, int t, float *out)
{
	for (int j = 0; j < n; j++)
		out[j] = j == t ? 0.0f : (float) (-PAt(n, p, t, j) / p[(size_t) j * n + j]);
}

/*
 * Compute the scores x B of a user with items rows[] (confidences conf[],
 * NULL for 1) against B (n x n floats, row t = item t's row)
 */
void
EaseScoreUser(int n, const float *b, int nin, const int *rows, const float *conf,
			  float *scores)
{
	memset(scores, 0, sizeof(float) * (size_t) n);
	for (int i = 0; i < nin; i++)
		LinalgSaxpy(n, conf ? conf[i] : 1.0f, b + (size_t) rows[i] * n, scores);
}
