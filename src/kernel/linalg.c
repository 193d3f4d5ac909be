/*
 * kernel/linalg.c
 *		Every dense kernel of recsys: thin wrappers over OpenBLAS and LAPACK.
 */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "kernel/linalg.h"
#include "kernel/parallel.h"

/* LAPACK (Fortran ABI); hidden string lengths are passed for gfortran builds */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda,
					int *info, size_t uplo_len);
extern void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a,
					const int *lda, double *b, const int *ldb, int *info, size_t uplo_len);
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a,
					const int *lda, double *w, double *work, const int *lwork, int *iwork,
					const int *liwork, int *info, size_t jobz_len, size_t uplo_len);

/* Least rows a blocked rank update takes at a time, and least strip width */
#define LINALG_MIN_BLOCK_ROWS 256
#define LINALG_MIN_STRIP 16
/* Panel width of the blocked Cholesky factorization */
#define LINALG_PANEL 128
/* Least rows (then least columns) of a gemm tile */
#define LINALG_MIN_TILE 64

/*
 * The check callback (the SQL side checks for interrupts there; it may not
 * return) and the work counted since its last call.  One per process: a
 * backend runs one kernel at a time, and only its own thread calls back
 * (the other threads of a parallel loop count their work in parallel.c).
 */
static void (*check_callback) (void *arg) = NULL;
static void *check_callback_arg = NULL;
static double check_work = 0.0;

/* Set the callback that LinalgWork calls every LINALG_CHECK_WORK of work */
void
LinalgSetCheck(void (*check) (void *arg), void *arg)
{
	check_callback = check;
	check_callback_arg = arg;
	check_work = 0.0;
}

/*
 * Count work done (flops, or element operations of a plain loop); once
 * LINALG_CHECK_WORK has accumulated, call the check callback.  Kernels call
 * this between pieces of work, never inside BLAS, so a callback that jumps
 * out (an error) leaves only caller-owned memory behind.  On the other
 * threads of a parallel loop the work is counted there instead, where a
 * stopped loop unwinds (parallel.c).
 */
void
LinalgWork(double work)
{
	if (ParallelInWorker())
	{
		ParallelWorkerWork(work);
		return;
	}
	check_work += work;
	if (check_work >= LINALG_CHECK_WORK)
	{
		check_work = 0.0;
		if (check_callback)
			check_callback(check_callback_arg);
	}
}

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
 * Add alpha op(A) op(A)^T to the upper triangle of the column-major m x m
 * matrix c (leading dimension ldc), where op(A) = A (m x n, trans = 0) or
 * A^T (A n x m, trans != 0), column-major with leading dimension lda, in
 * column strips of about LINALG_CHECK_WORK flops each: strip j0..j1 is one
 * dgemm for rows 0..j0 and one dsyrk for its diagonal block
 */
static void
SyrkStrips(int m, int n, double alpha, const double *a, int lda, int trans, double *c, int ldc)
{
	double		total = (double) m * m * n;
	int			w;

	if (total <= LINALG_CHECK_WORK)
	{
		cblas_dsyrk(CblasColMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, m, n,
					alpha, a, lda, 1.0, c, ldc);
		LinalgWork(total);
		return;
	}
	w = (int) (LINALG_CHECK_WORK / (2.0 * m * n));
	if (w < LINALG_MIN_STRIP)
		w = LINALG_MIN_STRIP;
	for (int j0 = 0; j0 < m; j0 += w)
	{
		int			wj = m - j0 < w ? m - j0 : w;
		const double *aj = trans ? a + (size_t) j0 * lda : a + j0;
		double	   *cj = c + (size_t) j0 * ldc;

		if (j0 > 0)
			cblas_dgemm(CblasColMajor, trans ? CblasTrans : CblasNoTrans,
						trans ? CblasNoTrans : CblasTrans, j0, wj, n, alpha, a, lda, aj, lda,
						1.0, cj, ldc);
		cblas_dsyrk(CblasColMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, wj, n,
					alpha, aj, lda, 1.0, cj + j0, ldc);
		LinalgWork((2.0 * j0 + wj) * wj * n);
	}
}

/*
 * SyrkStrips over blocks of the n inner rows (at least
 * LINALG_MIN_BLOCK_ROWS), so that no single call does much more than
 * LINALG_CHECK_WORK flops however large n is.  A small update stays one
 * dsyrk, with the rounding it always had.
 */
static void
SyrkBlocked(int m, int n, double alpha, const double *a, int lda, int trans, double *c, int ldc)
{
	double		per_row = (double) m * m;
	int			nb;

	if (m <= 0 || n <= 0)
		return;
	nb = per_row * n <= LINALG_CHECK_WORK ? n : (int) (LINALG_CHECK_WORK / per_row);
	if (nb < LINALG_MIN_BLOCK_ROWS)
		nb = LINALG_MIN_BLOCK_ROWS;
	for (int r0 = 0; r0 < n; r0 += nb)
	{
		int			rows = n - r0 < nb ? n - r0 : nb;

		SyrkStrips(m, rows, alpha, trans ? a + r0 : a + (size_t) r0 * lda, lda, trans, c, ldc);
	}
}

/*
 * Add alpha * R^T R to the upper triangle of the column-major k x k matrix c,
 * where R is nrows x k row-major (one vector per row): one blocked rank-nrows
 * update instead of nrows rank-1 updates.
 */
void
LinalgSyrkRows(int k, int nrows, const double *rows, double alpha, double *c)
{
	/* Row-major R (nrows x k) is column-major R^T (k x nrows): C += R^T (R^T)^T */
	SyrkBlocked(k, nrows, alpha, rows, k, 0, c, k);
}

/*
 * Copy the live (column-major upper) triangle of c onto the other half, in
 * 64 x 64 tiles (a plain transpose misses the cache on every write at large
 * k), counting the work a band of tiles at a time
 */
void
LinalgSymmetrize(int k, double *c)
{
	const int	tile = 64;

	for (int j0 = 0; j0 < k; j0 += tile)
	{
		int			j1 = k - j0 < tile ? k : j0 + tile;

		for (int i0 = 0; i0 <= j0; i0 += tile)
		{
			int			i1 = i0 + tile;

			for (int j = j0; j < j1; j++)
				for (int i = i0; i < i1 && i < j; i++)
					c[(size_t) i * k + j] = c[(size_t) j * k + i];
		}
		LinalgWork(8.0 * tile * (double) j1);
	}
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

/* Get the rows of a gemv piece: about LINALG_CHECK_WORK flops */
static int
GemvRows(int m, int n)
{
	double		per_row = 2.0 * (n > 0 ? n : 1);
	double		rows = LINALG_CHECK_WORK / per_row;

	return rows >= m ? (m > 0 ? m : 1) : (rows < 1.0 ? 1 : (int) rows);
}

/* Compute y = alpha A x + beta y for row-major A (m x n), in pieces of rows */
void
LinalgDgemv(int m, int n, double alpha, const double *a, const double *x,
			double beta, double *y)
{
	int			mb = GemvRows(m, n);

	for (int i0 = 0; i0 < m; i0 += mb)
	{
		int			rows = m - i0 < mb ? m - i0 : mb;

		cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, n, alpha, a + (size_t) i0 * n, n, x, 1,
					beta, y + i0, 1);
		LinalgWork(2.0 * rows * n);
	}
}

/* Compute y = alpha A x + beta y for row-major float A (m x n), in pieces of rows */
void
LinalgSgemv(int m, int n, float alpha, const float *a, const float *x,
			float beta, float *y)
{
	int			mb = GemvRows(m, n);

	for (int i0 = 0; i0 < m; i0 += mb)
	{
		int			rows = m - i0 < mb ? m - i0 : mb;

		cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, n, alpha, a + (size_t) i0 * n, n, x, 1,
					beta, y + i0, 1);
		LinalgWork(2.0 * rows * n);
	}
}

/*
 * Get the tile of a gemm (C m x n, inner size k) that does about
 * LINALG_CHECK_WORK flops: whole rows while LINALG_MIN_TILE of them fit,
 * else LINALG_MIN_TILE rows by as many columns as fit
 */
static void
GemmTile(int m, int n, int k, int *mb, int *nb)
{
	double		per_row = 2.0 * n * (double) (k > 0 ? k : 1);

	*mb = m > 0 ? m : 1;
	*nb = n > 0 ? n : 1;
	if (per_row * m <= LINALG_CHECK_WORK)
		return;
	if (per_row * LINALG_MIN_TILE <= LINALG_CHECK_WORK)
	{
		*mb = (int) (LINALG_CHECK_WORK / per_row);
		return;
	}
	*mb = m < LINALG_MIN_TILE ? m : LINALG_MIN_TILE;
	*nb = (int) (LINALG_CHECK_WORK / (2.0 * (double) (k > 0 ? k : 1) * *mb));
	if (*nb < LINALG_MIN_TILE)
		*nb = LINALG_MIN_TILE;
	if (*nb > n)
		*nb = n;
}

/*
 * Compute C = alpha op(A) op(B) + beta C, row-major, C m x n, inner size k;
 * op(X) = X^T when trans* is nonzero.  Large products go in tiles of C
 * (GemmTile); each element is still one dot product over k.
 */
void
LinalgDgemm(int m, int n, int k, double alpha, const double *a, int transa,
			const double *b, int transb, double beta, double *c)
{
	int			mb,
				nb;

	GemmTile(m, n, k, &mb, &nb);
	for (int i0 = 0; i0 < m; i0 += mb)
		for (int j0 = 0; j0 < n; j0 += nb)
		{
			int			mi = m - i0 < mb ? m - i0 : mb;
			int			nj = n - j0 < nb ? n - j0 : nb;

			cblas_dgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans,
						transb ? CblasTrans : CblasNoTrans, mi, nj, k, alpha,
						transa ? a + i0 : a + (size_t) i0 * k, transa ? m : k,
						transb ? b + (size_t) j0 * k : b + j0, transb ? k : n,
						beta, c + (size_t) i0 * n + j0, n);
			LinalgWork(2.0 * mi * nj * (double) k);
		}
}

/* Float version of LinalgDgemm */
void
LinalgSgemm(int m, int n, int k, float alpha, const float *a, int transa,
			const float *b, int transb, float beta, float *c)
{
	int			mb,
				nb;

	GemmTile(m, n, k, &mb, &nb);
	for (int i0 = 0; i0 < m; i0 += mb)
		for (int j0 = 0; j0 < n; j0 += nb)
		{
			int			mi = m - i0 < mb ? m - i0 : mb;
			int			nj = n - j0 < nb ? n - j0 : nb;

			cblas_sgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans,
						transb ? CblasTrans : CblasNoTrans, mi, nj, k, alpha,
						transa ? a + i0 : a + (size_t) i0 * k, transa ? m : k,
						transb ? b + (size_t) j0 * k : b + j0, transb ? k : n,
						beta, c + (size_t) i0 * n + j0, n);
			LinalgWork(2.0 * mi * nj * (double) k);
		}
}

/*
 * Factor the column-major k x k matrix a (upper triangle) in place as
 * U^T U: one dpotrf while that is at most LINALG_CHECK_WORK flops, else
 * right-looking by panels of LINALG_PANEL columns (dpotrf of the diagonal
 * block, dtrsm of the panel's row, a strip-split update of the trailing
 * matrix), so that a k = 4096 factorization (~23 Gflop) is seen by the
 * check callback every few milliseconds.  Returns LAPACK's info: 0, or the
 * order of the first leading minor that is not positive definite.
 */
static int
CholeskyFactor(int k, double *a)
{
	int			info = 0;

	if ((double) k * k * k / 3.0 <= LINALG_CHECK_WORK)
	{
		dpotrf_("U", &k, a, &k, &info, 1);
		LinalgWork((double) k * k * k / 3.0);
		return info;
	}
	for (int j = 0; j < k; j += LINALG_PANEL)
	{
		int			b = k - j < LINALG_PANEL ? k - j : LINALG_PANEL;
		int			rest = k - j - b;
		double	   *ajj = a + (size_t) j * k + j;

		dpotrf_("U", &b, ajj, &k, &info, 1);
		LinalgWork((double) b * b * b / 3.0);
		if (info != 0)
			return info > 0 ? info + j : info;
		if (rest > 0)
		{
			/* the panel's row: U12 = U11^-T A12 */
			double	   *a12 = a + (size_t) (j + b) * k + j;

			cblas_dtrsm(CblasColMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit,
						b, rest, 1.0, ajj, k, a12, k);
			LinalgWork((double) b * b * rest);
			/* the trailing matrix: A22 -= U12^T U12 */
			SyrkBlocked(rest, b, -1.0, a12, k, 1, a + (size_t) (j + b) * k + j + b, k);
		}
	}
	return 0;
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
		LinalgWork((double) k * k);
		if (attempt > 0)
		{
			jitter = (attempt == 1) ? LINALG_JITTER_START * fabs(trace) / k
				: jitter * LINALG_JITTER_GROWTH;
			if (jitter == 0.0)
				jitter = LINALG_JITTER_START;
			for (int i = 0; i < k; i++)
				work[(size_t) i * k + i] += jitter;
		}
		info = CholeskyFactor(k, work);
		if (info == 0)
		{
			dpotrs_("U", &k, &nrhs, work, &k, b, &k, &info, 1);
			LinalgWork(2.0 * k * k * nrhs);
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
	/*
	 * One LAPACK call that cannot be split: about 9 k^3 flops, so at k above
	 * about 500 the check callback waits longer than a piece (doc/internals.md)
	 */
	LinalgWork(LINALG_CHECK_WORK);
	dsyevd_("V", "U", &k, v, &k, w, lapack_work, &lw, iwork, &liw, &info, 1, 1);
	LinalgWork(9.0 * k * k * (double) k);
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
	SyrkBlocked(k, k, 1.0, v, k, 0, a, k);
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
