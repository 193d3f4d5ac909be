/*
 * embeddings/vector_rows.h
 *		The one writer of trained user and item vectors into the store.
 */
#ifndef VECTOR_ROWS_H
#define VECTOR_ROWS_H

#include "postgres.h"

#include "embeddings/interactions.h"

/* What one side's write stores: the vectors of ids, users with their seen items */
typedef struct VectorRows
{
	const char *model;
	int32		version;
	bool		users;			/* user_vectors (with seen), else item_vectors */
	int			dim;
	int64		n;				/* rows */
	const int64 *ids;			/* n ids */
	const float *x;				/* n x dim, row-major */
	const Interactions *data;	/* users: the seen items of each id (none for an id it lacks) */
	int			batch;			/* rows per INSERT */
	int64		progress_base;	/* progress counter before the first row */
} VectorRows;

extern void VectorRowsWrite(const VectorRows *w);

#endif
