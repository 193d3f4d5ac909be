/*
 * blas_lock.c
 *		The lock the serial OpenBLAS leaves out, so that several threads of
 *		one backend may call it at once (kernel/parallel.h).  No PostgreSQL
 *		in here: the kernels' tests link it too.
 *
 * OpenBLAS hands each level-3 call (and each LAPACK factorization, and each
 * level-2 call on more than a few hundred elements) one of 128 preallocated
 * buffers.  Debian's libopenblas0-serial 0.3.21 is built without
 * USE_LOCKING: blas_memory_alloc takes its lock only around its first-call
 * initialization and picks a free buffer with an unlocked test-and-set, so
 * two threads can get the same buffer and corrupt each other's results
 * (test/kernels: concurrent dsyrk and dpotrf at k = 12..64 differ from the
 * serial results).  Every allocation and release inside the library goes
 * through its PLT, so defining both functions here puts them under one
 * mutex (the library's own functions do the work, found with
 * dlsym(RTLD_NEXT)); BlasLockActive() says whether the library's calls
 * really reach this file, and parallel loops run on one thread otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include <cblas.h>

#include "blas_lock.h"

static pthread_mutex_t blas_alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static void *(*real_alloc) (int) = NULL;
static void (*real_free) (void *) = NULL;
static atomic_long wrapped_calls = 0;
static int	lock_state = -1;	/* -1: not probed; 0: not in effect; 1: in effect */

/*
 * Exported whatever the build's default: PostgreSQL 16 and later build
 * modules with -fvisibility=hidden, and a hidden definition is one the
 * library's PLT never finds.
 */
#define BLAS_LOCK_EXPORT __attribute__((visibility("default")))

extern BLAS_LOCK_EXPORT void *blas_memory_alloc(int procpos);
extern BLAS_LOCK_EXPORT void blas_memory_free(void *buffer);

/* Find the library's own functions (under the lock: once) */
static int
FindReal(void)
{
	if (real_alloc == NULL || real_free == NULL)
	{
		real_alloc = (void *(*) (int)) dlsym(RTLD_NEXT, "blas_memory_alloc");
		real_free = (void (*) (void *)) dlsym(RTLD_NEXT, "blas_memory_free");
	}
	return real_alloc != NULL && real_free != NULL;
}

/* OpenBLAS's buffer allocation, under the lock */
BLAS_LOCK_EXPORT void *
blas_memory_alloc(int procpos)
{
	void	   *p = NULL;

	pthread_mutex_lock(&blas_alloc_lock);
	if (FindReal())
		p = real_alloc(procpos);
	pthread_mutex_unlock(&blas_alloc_lock);
	atomic_fetch_add(&wrapped_calls, 1);
	return p;
}

/* OpenBLAS's buffer release, under the lock */
BLAS_LOCK_EXPORT void
blas_memory_free(void *buffer)
{
	pthread_mutex_lock(&blas_alloc_lock);
	if (FindReal())
		real_free(buffer);
	pthread_mutex_unlock(&blas_alloc_lock);
}

/*
 * Does the library allocate its buffers through this file?  Probed once
 * with a small dsyrk (which always takes a buffer); a library linked so
 * that its calls stay inside it, or another copy loaded first, says no.
 */
int
BlasLockActive(void)
{
	if (lock_state < 0)
	{
		double		a[4] = {1.0, 2.0, 3.0, 4.0};
		double		c[4] = {0.0, 0.0, 0.0, 0.0};
		long		before = atomic_load(&wrapped_calls);

		cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, 2, 2, 1.0, a, 2, 0.0, c, 2);
		lock_state = atomic_load(&wrapped_calls) > before && FindReal() ? 1 : 0;
	}
	return lock_state;
}
