/*
 * embeddings/init.h
 *		Seeded initial vectors of the embedding trainers: the same entity
 *		starts from the same vector whatever the order rows are read in.
 */
#ifndef EMBEDDINGS_INIT_H
#define EMBEDDINGS_INIT_H

#include "postgres.h"

extern void EmbeddingInitVector(int64 seed, int64 id, int dim, double scale, float *out);

#endif
