/*
 * kernel/topk.h
 *		Bounded top-k selection of (score, id) pairs: the best k by score,
 *		ties broken by the smaller id, so every result is deterministic.
 *
 * A TopK is a min-heap with the worst kept candidate on top: pushing n
 * candidates costs O(n log k) and memory stays k.  Two lists merge by
 * pushing one into the other, which is what an aggregate's combine needs.
 * NaN scores are never kept.  No PostgreSQL in here.
 */
#ifndef TOPK_H
#define TOPK_H

#include <stdbool.h>
#include <stdint.h>

typedef struct TopKItem
{
	int64_t		id;
	float		score;
} TopKItem;

typedef struct TopK
{
	int			k;				/* capacity */
	int			n;				/* items held (<= k) */
	TopKItem   *items;			/* heap order; caller provides k slots */
} TopK;

/* Is (a) ranked before (b): higher score, then smaller id */
static inline bool
TopKBetter(float sa, int64_t ia, float sb, int64_t ib)
{
	return sa > sb || (sa == sb && ia < ib);
}

extern void TopKInit(TopK *t, int k, TopKItem *slots);
extern void TopKPush(TopK *t, int64_t id, float score);
extern void TopKPushBlock(TopK *t, const int64_t *ids, const float *scores, int n);
extern int	TopKSorted(TopK *t);
extern bool TopKValid(const TopK *t);

#endif
