/*
 * kernel/rankbuffer.h
 *		Rows waiting to be folded into a symmetric k x k accumulator with one
 *		blocked rank update (dsyrk) instead of one rank-1 update per row.
 *
 * Rows of positive weight w fill the buffer from the front, scaled by
 * sqrt(w); rows of negative weight fill it from the back, scaled by
 * sqrt(-w), and are folded with alpha = -1.  The header lives inside the
 * aggregate states that use it (gramian, als_solve); the rows follow it
 * wherever the state puts them.  No PostgreSQL in here.
 */
#ifndef RANKBUFFER_H
#define RANKBUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct RankBuffer
{
	int32_t		dim;			/* k */
	int32_t		cap;			/* rows the buffer holds */
	int32_t		n_pos;			/* rows at the front (weight > 0) */
	int32_t		n_neg;			/* rows at the back (weight < 0) */
} RankBuffer;

extern int	RankBufferRows(int dim, size_t bytes, int min_rows, int max_rows);
extern bool RankBufferValid(const RankBuffer *b, int max_dim, int max_cap);
extern double *RankBufferSlot(const RankBuffer *b, double *rows, double w);
extern double RankBufferScale(double w);
extern bool RankBufferCommit(RankBuffer *b, double w);
extern bool RankBufferFinite(const RankBuffer *b, const double *rows);
extern void RankBufferFold(const RankBuffer *b, const double *rows, double *m);
extern void RankBufferFlush(RankBuffer *b, const double *rows, double *m);

#endif
