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
