/*
 * rng.h
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
typedef struct NormalRng
{
	uint64		s[4];
	double		spare;
	bool		has_spare;
} NormalRng;

extern void NormalRngInit(NormalRng *rng, uint64 seed);
extern uint64 NormalRngNext64(NormalRng *rng);
extern double NormalRngNormal(NormalRng *rng);
extern double NormalRngUniform(NormalRng *rng);

#endif
