/*
 * embeddings.h
 *		Helpers shared by the embedding trainers (als, sgd) and scoring:
 *		a seeded random generator, deterministic initial vectors, and
 *		recsys.recommend.
 */
#ifndef EMBEDDINGS_H
#define EMBEDDINGS_H

#include "postgres.h"

/* State of the xoshiro256** generator (seeded through splitmix64) */
typedef struct EmbeddingRng
{
	uint64		s[4];
} EmbeddingRng;

extern uint64 EmbeddingHash64(uint64 x);
extern void EmbeddingRngSeed(EmbeddingRng *rng, uint64 seed);
extern uint64 EmbeddingRngNext(EmbeddingRng *rng);
extern double EmbeddingRngUniform(EmbeddingRng *rng);
extern uint64 EmbeddingRngBelow(EmbeddingRng *rng, uint64 n);
extern void EmbeddingInitVector(int64 seed, int64 id, int dim, double scale, float *out);

#endif
