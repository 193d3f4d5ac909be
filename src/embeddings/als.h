/*
 * embeddings/als.h
 *		The recsys.als_solve aggregate: the closed-form implicit-ALS update of
 *		one entity, (w G + sum_j (c_j - w) v_j v_j^T + l2 I) x = sum_j c_j v_j.
 */
#ifndef ALS_H
#define ALS_H

/* The state layout, its validator and kernels are in aggkernel.h */

#endif
