/*
 * embeddings.h
 *		Helpers shared by the embedding trainers (als, sgd) and scoring:
 *		deterministic initial vectors and
 *		recsys.recommend.
 */
#ifndef EMBEDDINGS_H
#define EMBEDDINGS_H

#include "postgres.h"

extern void EmbeddingInitVector(int64 seed, int64 id, int dim, double scale, float *out);

#endif
