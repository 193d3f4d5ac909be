/*
 * kernel/linalg.h
 *		Dense kernels over OpenBLAS/LAPACK. Nothing here knows PostgreSQL,
 *		so the kernels can be unit-tested, fuzzed and benchmarked alone.
 *
 * Matrices are dense and row-major unless a name says otherwise.  Symmetric
 * k x k accumulators are stored as full k x k arrays whose upper triangle
 * (in column-major terms, i.e. the lower triangle read row-major) is live
 * until LinalgSymmetrize fills the other half.
 */
#ifndef LINALG_H
#define LINALG_H

#include <stddef.h>

/* Jitter policy of Cholesky solves (doc/math.md §7) */
#define LINALG_JITTER_START 1e-10
#define LINALG_JITTER_GROWTH 10.0
#define LINALG_JITTER_RETRIES 6

/*
 * Work between two calls of the check callback, in flops (or element
 * operations): about 10-20 ms of serial BLAS.  Every kernel call here that
 * could run longer is split into pieces of about this much work (row blocks,
 * column strips, Cholesky panels), so that a cancel is seen within about a
 * piece at every size.
 */
#define LINALG_CHECK_WORK 2.0e8

extern void LinalgSetThreads(int nthreads);
extern int	LinalgGetThreads(void);

extern void LinalgSetCheck(void (*check) (void *arg), void *arg);
extern void LinalgWork(double work);

extern void LinalgSyrkRows(int k, int nrows, const double *rows, double alpha, double *c);
extern void LinalgSymmetrize(int k, double *c);
extern double LinalgDot(int n, const double *x, const double *y);
extern float LinalgSdot(int n, const float *x, const float *y);
extern void LinalgAxpy(int n, double alpha, const double *x, double *y);

extern void LinalgDgemv(int m, int n, double alpha, const double *a, const double *x,
						double beta, double *y);
extern void LinalgSgemv(int m, int n, float alpha, const float *a, const float *x,
						float beta, float *y);
extern void LinalgDgemm(int m, int n, int k, double alpha, const double *a, int transa,
						const double *b, int transb, double beta, double *c);
extern void LinalgSgemm(int m, int n, int k, float alpha, const float *a, int transa,
						const float *b, int transb, float beta, float *c);

extern int	LinalgCholeskySolve(int k, const double *a, double *b, int nrhs,
								double *work, int *jitter_retries);
extern int	LinalgCholeskyBlocked(int n, double *a, int nb, void (*check) (void *), void *arg);
extern void LinalgCholeskyInverseColumns(int n, const double *l, int j0, int w, double *out);
extern void LinalgSaxpy(int n, float alpha, const float *x, float *y);
extern int	LinalgPsdProject(int k, double *a, double *work, size_t lwork,
							 int *iwork, size_t liwork);
extern size_t LinalgPsdProjectWorkSize(int k, size_t *liwork);

#endif
