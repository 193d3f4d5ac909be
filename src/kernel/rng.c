/*
 * kernel/rng.c
 *		splitmix64-seeded xoshiro256** with Box-Muller normals: results are
 *		reproducible for a seed on every platform and outside PostgreSQL.
 */
#include <math.h>

#include "kernel/rng.h"

/* Get the splitmix64 output for counter x: mix(x + golden) */
uint64_t
RngHash64(uint64_t x)
{
	uint64_t		z = x + RNG_GOLDEN;

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* Get the next output of splitmix64, advancing *x */
static uint64_t
SplitMix64(uint64_t *x)
{
	uint64_t		z = RngHash64(*x);

	*x += RNG_GOLDEN;
	return z;
}

/* Get x rotated left by k bits */
static inline uint64_t
Rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* Seed the generator: four splitmix64 outputs become the xoshiro256** state */
void
RngInit(Rng *rng, uint64_t seed)
{
	uint64_t		x = seed;

	for (int i = 0; i < 4; i++)
		rng->s[i] = SplitMix64(&x);
	rng->spare = 0.0;
	rng->has_spare = false;
}

/* Get the next 64 random bits of xoshiro256** */
uint64_t
RngNext64(Rng *rng)
{
	uint64_t	   *s = rng->s;
	uint64_t		result = Rotl64(s[1] * 5, 7) * 9;
	uint64_t		t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = Rotl64(s[3], 45);
	return result;
}

/*
 * Get a standard normal draw (Box-Muller on u1 in (0, 1], u2 in [0, 1), both
 * from the top 53 bits; the sine half is kept for the next call)
 */
double
RngNormal(Rng *rng)
{
	double		u1,
				u2,
				r;

	if (rng->has_spare)
	{
		rng->has_spare = false;
		return rng->spare;
	}
	u1 = ((RngNext64(rng) >> 11) + 1) * 0x1.0p-53;
	u2 = (RngNext64(rng) >> 11) * 0x1.0p-53;
	r = sqrt(-2.0 * log(u1));
	rng->spare = r * sin(2.0 * M_PI * u2);
	rng->has_spare = true;
	return r * cos(2.0 * M_PI * u2);
}

/* Get a uniform double in (0, 1), never 0 or 1 (safe for logarithms) */
double
RngUniform(Rng *rng)
{
	return ((double) (RngNext64(rng) >> 11) + 0.5) * 0x1.0p-53;
}

/* Get a uniform integer in [0, n) without modulo bias (Lemire's method) */
uint64_t
RngBelow(Rng *rng, uint64_t n)
{
	uint64_t		x = RngNext64(rng);
	__uint128_t m = (__uint128_t) x * n;
	uint64_t		l = (uint64_t) m;

	if (l < n)
	{
		uint64_t		t = -n % n;

		while (l < t)
		{
			x = RngNext64(rng);
			m = (__uint128_t) x * n;
			l = (uint64_t) m;
		}
	}
	return (uint64_t) (m >> 64);
}
