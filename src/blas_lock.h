/*
 * blas_lock.h
 *		The serial OpenBLAS made safe to call from several threads (see
 *		blas_lock.c).
 */
#ifndef BLAS_LOCK_H
#define BLAS_LOCK_H

extern int	BlasLockActive(void);

#endif
