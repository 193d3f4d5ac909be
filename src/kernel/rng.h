/*
 * kernel/rng.h
 *		A seeded, platform-independent random generator (no PostgreSQL).
 */
#ifndef RNG_H
#define RNG_H

#include "c.h"

/*
 * Seeded generator: splitmix64 expands the seed into the state of
 * xoshiro256**, whose outputs feed Box-Muller (both outputs used, cosine
 * first).  Self-contained so that results do not depend on the platform's
 * random() and are reproducible outside PostgreSQL.
 */
typedef struct Rng
{
	uint64		s[4];
	double		spare;
	bool		has_spare;
} Rng;

extern void RngInit(Rng *rng, uint64 seed);
extern uint64 RngNext64(Rng *rng);
extern double RngNormal(Rng *rng);
extern double RngUniform(Rng *rng);
extern uint64 RngBelow(Rng *rng, uint64 n);
extern uint64 RngHash64(uint64 x);

/* The splitmix64 increment (2^64 / golden ratio) */
#define RNG_GOLDEN UINT64CONST(0x9E3779B97F4A7C15)

#endif
