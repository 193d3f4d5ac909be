/*
 * kernel/linalg.c
 *		Every dense kernel of recsys: thin wrappers over OpenBLAS and LAPACK.
 */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "kernel/linalg.h"

/* LAPACK (Fortran ABI); hidden string lengths are passed for gfortran builds */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda,
					int *info, size_t uplo_len);
extern void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a,
					const int *lda, double *b, const int *ldb, int *info, size_t uplo_len);
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a,
					const int *lda, double *w, double *work, const int *lwork, int *iwork,
					const int *liwork, int *info, size_t jobz_len, size_t uplo_len);

/* Set the number of OpenBLAS threads (a no-op in the serial build) */
void
LinalgSetThreads(int nthreads)
{
	openblas_set_num_threads(nthreads);
}

/* Get the number of threads OpenBLAS will use */
int
LinalgGetThreads(void)
{
	return openblas_get_num_threads();
}

/*
 * Add alpha * R^T R to the upper triangle of the column-major k x k matrix c,
 * where R is nrows x k row-major (one vector per row): one blocked rank-nrows
 * update instead of nrows rank-1 updates.
 */
void
LinalgSyrkRows(int k, int nrows, const double *rows, double alpha, double *c)
{
	if (nrows <= 0)
		return;
	/* Row-major R (nrows x k) is column-major R^T (k x nrows): C += R^T (R^T)^T */
	cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, k, nrows,
				alpha, rows, k, 1.0, c, k);
}

/* Copy the live (column-major upper) triangle of c onto the other half */
void
LinalgSymmetrize(int k, double *c)
{
	for (int j = 0; j < k; j++)
		for (int i = 0; i < j; i++)
			c[(size_t) i * k + j] = c[(size_t) j * k + i];
}

/* Get the inner product of two double vectors */
double
LinalgDot(int n, const double *x, const double *y)
{
	return cblas_ddot(n, x, 1, y, 1);
}

/* Get the inner product of two float vectors */
float
LinalgSdot(int n, const float *x, const float *y)
{
	return cblas_sdot(n, x, 1, y, 1);
}

/* Compute y += alpha x */
void
LinalgAxpy(int n, double alpha, const double *x, double *y)
{
	cblas_daxpy(n, alpha, x, 1, y, 1);
}

/* Compute y = alpha A x + beta y for row-major A (m x n) */
void
LinalgDgemv(int m, int n, double alpha, const double *a, const double *x,
			double beta, double *y)
{
	cblas_dgemv(CblasRowMajor, CblasNoTrans, m, n, alpha, a, n, x, 1, beta, y, 1);
}

/* Compute y = alpha A x + beta y for row-major float A (m x n) */
void
LinalgSgemv(int m, int n, float alpha, const float *a, const float *x,
			float beta, float *y)
{
	cblas_sgemv(CblasRowMajor, CblasNoTrans, m, n, alpha, a, n, x, 1, beta, y, 1);
}

/*
 * Compute C = alpha op(A) op(B) + beta C, row-major, C m x n, inner size k;
 * op(X) = X^T when trans* is nonzero.
 */
void
LinalgDgemm(int m, int n, int k, double alpha, const double *a, int transa,
			const double *b, int transb, double beta, double *c)
{
	cblas_dgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans,
				transb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
				a, transa ? m : k, b, transb ? k : n, beta, c, n);
}

/* Float version of LinalgDgemm */
void
LinalgSgemm(int m, int n, int k, float alpha, const float *a, int transa,
			const float *b, int transb, float beta, float *c)
{
	cblas_sgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans,
				transb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
				a, transa ? m : k, b, transb ? k : n, beta, c, n);
}

/*
 * Solve A X = B for symmetric positive definite A (k x k, upper triangle in
 * column-major terms read), overwriting b (k x nrhs, column-major) with X.
 * work must hold k*k doubles.  When the factorisation fails, retry with
 * jitter delta = 1e-10 * trace(A)/k on the diagonal, x10 per retry, at most
 * six times.  Returns 0 on success, else the LAPACK info of the last try.
 */
int
LinalgCholeskySolve(int k, const double *a, double *b, int nrhs, double *work,
					int *jitter_retries)
{
	double		trace = 0.0;
	double		jitter = 0.0;
	int			info = 0;

	for (int i = 0; i < k; i++)
		trace += a[(size_t) i * k + i];

	for (int attempt = 0; attempt <= LINALG_JITTER_RETRIES; attempt++)
	{
		memcpy(work, a, sizeof(double) * k * k);
		if (attempt > 0)
		{
			jitter = (attempt == 1) ? LINALG_JITTER_START * fabs(trace) / k
				: jitter * LINALG_JITTER_GROWTH;
			if (jitter == 0.0)
				jitter = LINALG_JITTER_START;
			for (int i = 0; i < k; i++)
				work[(size_t) i * k + i] += jitter;
		}
		dpotrf_("U", &k, work, &k, &info, 1);
		if (info == 0)
		{
			dpotrs_("U", &k, &nrhs, work, &k, b, &k, &info, 1);
			if (jitter_retries)
				*jitter_retries = attempt;
			return info;
		}
		if (info < 0)
			break;
	}
	if (jitter_retries)
		*jitter_retries = LINALG_JITTER_RETRIES;
	return info;
}

/* Get the dsyevd workspace sizes for LinalgPsdProject on k x k matrices */
size_t
LinalgPsdProjectWorkSize(int k, size_t *liwork)
{
	/* LAPACK's documented minimum for jobz = 'V', plus room for w and a copy */
	*liwork = 3 + 5 * (size_t) k;
	return 1 + 6 * (size_t) k + 2 * (size_t) k * k + (size_t) k + (size_t) k * k;
}

/*
 * Project the symmetric k x k matrix a (full storage) onto the PSD cone:
 * eigen-decompose, clamp negative eigenvalues to 0, rebuild.  Returns the
 * LAPACK info (0 on success).
 */
int
LinalgPsdProject(int k, double *a, double *work, size_t lwork, int *iwork, size_t liwork)
{
	double	   *w = work;
	double	   *v = w + k;
	double	   *lapack_work = v + (size_t) k * k;
	int			lw = (int) (lwork - (size_t) k - (size_t) k * k);
	int			liw = (int) liwork;
	int			info = 0;

	memcpy(v, a, sizeof(double) * k * k);
	dsyevd_("V", "U", &k, v, &k, w, lapack_work, &lw, iwork, &liw, &info, 1, 1);
	if (info != 0)
		return info;

	/* a = V diag(max(w,0)) V^T, V column-major: scale columns, then one gemm */
	memset(a, 0, sizeof(double) * k * k);
	for (int j = 0; j < k; j++)
	{
		double		s = w[j] > 0.0 ? sqrt(w[j]) : 0.0;

		for (int i = 0; i < k; i++)
			v[(size_t) j * k + i] *= s;
	}
	cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, k, k, 1.0, v, k, 0.0, a, k);
	LinalgSymmetrize(k, a);
	return 0;
}

/*
 * Factor the symmetric positive definite n x n matrix a (column-major, lower
 * triangle live) in place as L L^T, right-looking in column blocks of nb:
 * dpotrf of the diagonal block, dtrsm of the panel below it, then the
 * trailing update one column block at a time (dsyrk on the diagonal, dgemm
 * below), calling check(arg) after each, so that no call between two checks
 * does more than about 2 n nb^2 flops.  Returns 0, or the LAPACK info (the
 * 1-based column where the matrix is not positive definite).
 */
int
LinalgCholeskyBlocked(int n, double *a, int nb, void (*check) (void *), void *arg)
{
	size_t		lda = (size_t) n;

	for (int k0 = 0; k0 < n; k0 += nb)
	{
		int			w = n - k0 < nb ? n - k0 : nb;
		int			rest = n - k0 - w;
		int			info = 0;
		double	   *a11 = a + (size_t) k0 * lda + k0;

		dpotrf_("L", &w, a11, &n, &info, 1);
		if (info != 0)
			return info > 0 ? k0 + info : info;
		if (rest == 0)
			break;
		/* A21 := A21 L11^-T */
		cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit,
					rest, w, 1.0, a11, n, a11 + w, n);
		if (check)
			check(arg);
		/* A22 -= A21 A21^T, one column block at a time */
		for (int c0 = k0 + w; c0 < n; c0 += nb)
		{
			int			cw = n - c0 < nb ? n - c0 : nb;
			int			below = n - c0 - cw;
			const double *panel = a + (size_t) k0 * lda + c0;

			cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, cw, w, -1.0,
						panel, n, 1.0, a + (size_t) c0 * lda + c0, n);
			if (below > 0)
				cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, below, cw, w, -1.0,
							panel + cw, n, panel, n, 1.0, a + (size_t) c0 * lda + c0 + cw, n);
			if (check)
				check(arg);
		}
	}
	return 0;
}

/*
 * Compute rows j0..n-1 of columns j0..j0+w-1 of P = (L L^T)^-1 into out
 * ((n - j0) x w, column-major), from the Cholesky factor l (column-major,
 * lower): with L22 = L[j0:, j0:] and E the first w columns of the identity,
 * P[j0:, j0:j0+w] = L22^-T L22^-1 E (two dtrsm, 2 (n - j0)^2 w flops).
 * Columns left of j0 of l are not read, so a caller going left to right may
 * overwrite them with P.
 */
void
LinalgCholeskyInverseColumns(int n, const double *l, int j0, int w, double *out)
{
	int			m = n - j0;
	const double *l22 = l + (size_t) j0 * n + j0;

	memset(out, 0, sizeof(double) * (size_t) m * w);
	for (int c = 0; c < w; c++)
		out[(size_t) c * m + c] = 1.0;
	cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit,
				m, w, 1.0, l22, n, out, m);
	cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit,
				m, w, 1.0, l22, n, out, m);
}

/* Compute y += alpha x for float vectors */
void
LinalgSaxpy(int n, float alpha, const float *x, float *y)
{
	cblas_saxpy(n, alpha, x, 1, y, 1);
}
