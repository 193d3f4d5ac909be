/*
 * kernel/topk.c
 *		Bounded top-k selection with deterministic ties (see topk.h).
 */
#include "kernel/topk.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Set up an empty list of capacity k over caller-provided slots */
void
TopKInit(TopK *t, int k, TopKItem *slots)
{
	t->k = k;
	t->n = 0;
	t->items = slots;
}

/* Is the item at heap position a worse than the one at b (heap order) */
static inline bool
Worse(const TopKItem *h, int a, int b)
{
	return TopKBetter(h[b].score, h[b].id, h[a].score, h[a].id);
}

/* Restore heap order below position i */
static void
SiftDown(TopKItem *h, int n, int i)
{
	for (;;)
	{
		int			worst = i;
		int			l = 2 * i + 1;
		int			r = l + 1;
		TopKItem	tmp;

		if (l < n && Worse(h, l, worst))
			worst = l;
		if (r < n && Worse(h, r, worst))
			worst = r;
		if (worst == i)
			return;
		tmp = h[i];
		h[i] = h[worst];
		h[worst] = tmp;
		i = worst;
	}
}

/* Offer one candidate */
void
TopKPush(TopK *t, int64_t id, float score)
{
	TopKItem   *h = t->items;

	if (isnan(score) || t->k <= 0)
		return;
	if (t->n < t->k)
	{
		int			c = t->n++;

		h[c].id = id;
		h[c].score = score;
		while (c > 0)
		{
			int			p = (c - 1) / 2;
			TopKItem	tmp;

			if (!Worse(h, c, p))
				break;
			tmp = h[p];
			h[p] = h[c];
			h[c] = tmp;
			c = p;
		}
	}
	else if (TopKBetter(score, id, h[0].score, h[0].id))
	{
		h[0].id = id;
		h[0].score = score;
		SiftDown(h, t->n, 0);
	}
}

/* Four floats in one vector (GCC's generic vectors: one SSE register) */
typedef float TopKFloat4 __attribute__((vector_size(16)));
typedef int32_t TopKMask4 __attribute__((vector_size(16)));

/* Does any of scores[0..15] reach worst?  (false for NaN, as one at a time) */
static inline bool
AnyReaches16(const float *scores, float worst)
{
	TopKFloat4	a,
				b,
				c,
				d,
				w = {worst, worst, worst, worst};
	TopKMask4	m;
	uint64_t	lanes[2];

	memcpy(&a, scores, sizeof(a));
	memcpy(&b, scores + 4, sizeof(b));
	memcpy(&c, scores + 8, sizeof(c));
	memcpy(&d, scores + 12, sizeof(d));
	m = (a >= w) | (b >= w) | (c >= w) | (d >= w);
	memcpy(lanes, &m, sizeof(lanes));
	return (lanes[0] | lanes[1]) != 0;
}

/* Offer scores[i] .. scores[end - 1] to a full list whose worst kept score is *worst */
static inline void
PushRange(TopK *t, const int64_t *ids, const float *scores, int i, int end, float *worst)
{
	for (; i < end; i++)
	{
		float		s = scores[i];

		/* false for NaN too: NaN is never kept */
		if (!(s >= *worst))
			continue;
		if (TopKBetter(s, ids[i], t->items[0].score, t->items[0].id))
		{
			TopKPush(t, ids[i], s);
			*worst = t->items[0].score;
		}
	}
}

/*
 * Offer n candidates.  Once the list is full, the common case (below the
 * kept worst, or NaN) is filtered 16 at a time with vector compares against
 * a threshold held in a local: only a run of 16 with a candidate at or
 * above it is offered one by one, in order, so the list is the one that
 * offering each would give.
 */
void
TopKPushBlock(TopK *t, const int64_t *ids, const float *scores, int n)
{
	int			i = 0;
	float		worst;

	for (; i < n && t->n < t->k; i++)
		TopKPush(t, ids[i], scores[i]);
	if (t->k <= 0 || i == n)
		return;
	worst = t->items[0].score;
	for (; i + 16 <= n; i += 16)
		if (AnyReaches16(scores + i, worst))
			PushRange(t, ids, scores, i, i + 16, &worst);
	PushRange(t, ids, scores, i, n, &worst);
}

/* Compare two items best first, for qsort */
static int
CompareBestFirst(const void *a, const void *b)
{
	const TopKItem *x = a;
	const TopKItem *y = b;

	if (TopKBetter(x->score, x->id, y->score, y->id))
		return -1;
	if (TopKBetter(y->score, y->id, x->score, x->id))
		return 1;
	return 0;
}

/*
 * Sort the kept items best first in place and return how many there are.
 * The list is no longer a heap afterwards: only read it.
 */
int
TopKSorted(TopK *t)
{
	qsort(t->items, t->n, sizeof(TopKItem), CompareBestFirst);
	return t->n;
}

/* Check the invariants a list read from outside must meet (heap order, no NaN) */
bool
TopKValid(const TopK *t)
{
	if (t->k < 0 || t->n < 0 || t->n > t->k)
		return false;
	for (int i = 0; i < t->n; i++)
	{
		if (isnan(t->items[i].score))
			return false;
		if (i > 0 && Worse(t->items, i, (i - 1) / 2))
			return false;
	}
	return true;
}
