/*
 * kernel/rng.h
 *		A seeded, platform-independent random generator (no PostgreSQL).
 */
#ifndef RNG_H
#define RNG_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Seeded generator: splitmix64 expands the seed into the state of
 * xoshiro256**, whose outputs feed Box-Muller (both outputs used, cosine
 * first).  Self-contained so that results do not depend on the platform's
 * random() and are reproducible outside PostgreSQL.
 */
typedef struct Rng
{
	uint64_t		s[4];
	double		spare;
	bool		has_spare;
} Rng;

extern void RngInit(Rng *rng, uint64_t seed);
extern uint64_t RngNext64(Rng *rng);
extern double RngNormal(Rng *rng);
extern double RngUniform(Rng *rng);
extern uint64_t RngBelow(Rng *rng, uint64_t n);
extern uint64_t RngHash64(uint64_t x);

/* The splitmix64 increment (2^64 / golden ratio) */
#define RNG_GOLDEN UINT64_C(0x9E3779B97F4A7C15)

#endif
