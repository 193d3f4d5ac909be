/*
 * kernel/ease.h
 *		EASE (Steck, WWW 2019): the item-item model B = I - P diag(1/diag(P)),
 *		P = (X^T X + lambda I)^-1, from the interactions' rows by user, and the
 *		scores x_u B of a user.  No PostgreSQL in here.
 *
 * Storage: the Gramian and P are n x n doubles, column-major, lower triangle
 * live (P is symmetric).  B is produced one row at a time as floats: row t of
 * B is how item t adds to the score of every item, so a user's scores are
 * the confidence-weighted sum of the rows of the items they have.
 */
#ifndef EASE_H
#define EASE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of the n x n double matrix (Gramian, factor and P, in place) */
extern size_t EaseMatrixBytes(int n);
/* Column block of the inverse: about 4e9 flops between two checks */
extern int	EaseInverseBlock(int n);
/* Bytes of the inverse's workspace (one column block) */
extern size_t EaseWorkBytes(int n);

extern void EaseGramian(int n, int n_users, const int64_t *user_ptr, const int32_t *user_items,
						const float *user_conf, double lambda, double *g,
						void (*check) (void *), void *arg);
extern int	EaseInvert(int n, double *a, double *work, void (*check) (void *), void *arg);
extern void EaseLoss(int n, const double *p, double lambda, double *norms, double *observed,
					 double *l2);
extern void EaseRow(int n, const double *p, int t, float *out);
extern void EaseScoreUser(int n, const float *b, int nin, const int *rows, const float *conf,
						  float *scores);

#endif
