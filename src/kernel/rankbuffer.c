/*
 * kernel/rankbuffer.c
 *		Buffered, signed rank-b updates of symmetric accumulators.
 */
#include <math.h>

#include "kernel/linalg.h"
#include "kernel/rankbuffer.h"

/* Get the buffer length for k: about bytes of rows, within [min_rows, max_rows] */
int
RankBufferRows(int dim, size_t bytes, int min_rows, int max_rows)
{
	size_t		rows = bytes / sizeof(double) / (size_t) dim;

	if (rows < (size_t) min_rows)
		return min_rows;
	return rows > (size_t) max_rows ? max_rows : (int) rows;
}

/*
 * Check that a header read from outside is consistent and leaves room for
 * the next row at either end: RankBufferSlot writes row n_pos (w > 0) or
 * row cap - n_neg - 1 (w < 0), so both must lie in [0, cap)
 */
bool
RankBufferValid(const RankBuffer *b, int max_dim, int max_cap)
{
	return b->dim >= 1 && b->dim <= max_dim &&
		b->cap >= 1 && b->cap <= max_cap &&
		b->n_pos >= 0 && b->n_neg >= 0 &&
		(int64_t) b->n_pos + b->n_neg < (int64_t) b->cap;
}

/*
 * Get the slot for the next row of weight w (front for w >= 0, back for
 * w < 0); the buffer is never full between calls, so a slot is always free
 */
double *
RankBufferSlot(const RankBuffer *b, double *rows, double w)
{
	if (w < 0.0)
		return rows + (size_t) (b->cap - b->n_neg - 1) * b->dim;
	return rows + (size_t) b->n_pos * b->dim;
}

/* Get the factor a row of weight w is scaled by in its slot: sqrt(|w|) */
double
RankBufferScale(double w)
{
	return w == 1.0 ? 1.0 : sqrt(fabs(w));
}

/*
 * Count the row just written to the slot of weight w (a zero weight leaves
 * the slot free); returns true when the buffer is full and must be flushed
 */
bool
RankBufferCommit(RankBuffer *b, double w)
{
	if (w > 0.0)
		b->n_pos++;
	else if (w < 0.0)
		b->n_neg++;
	return b->n_pos + b->n_neg >= b->cap;
}

/* Check that every buffered value is finite */
bool
RankBufferFinite(const RankBuffer *b, const double *rows)
{
	const double *neg = rows + (size_t) (b->cap - b->n_neg) * b->dim;
	bool		bad = false;

	for (size_t i = 0; i < (size_t) b->n_pos * b->dim; i++)
		bad |= !isfinite(rows[i]);
	for (size_t i = 0; i < (size_t) b->n_neg * b->dim; i++)
		bad |= !isfinite(neg[i]);
	return !bad;
}

/* Fold the buffered rows into the accumulator m (k x k), leaving the buffer as is */
void
RankBufferFold(const RankBuffer *b, const double *rows, double *m)
{
	LinalgSyrkRows(b->dim, b->n_pos, rows, 1.0, m);
	LinalgSyrkRows(b->dim, b->n_neg, rows + (size_t) (b->cap - b->n_neg) * b->dim, -1.0, m);
}

/* Fold the buffered rows into m and empty the buffer */
void
RankBufferFlush(RankBuffer *b, const double *rows, double *m)
{
	RankBufferFold(b, rows, m);
	b->n_pos = 0;
	b->n_neg = 0;
}
