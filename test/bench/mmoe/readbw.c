/*
 * readbw.c
 *		Read bandwidth of one core over an array of N bytes, read again and
 *		again as a one-row forward pass reads a model's weights: the bound
 *		for scoring one row at a time is this rate divided by the model's
 *		bytes.  Eight independent vector accumulators, so that the loop is
 *		bound by loads, not by the latency of the adds.
 *
 * Usage: readbw BYTES   (prints bytes per second, best of 5 runs)
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Get the time in seconds */
static double
Now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Get the sum of n floats (n a multiple of 64), reading each once */
__attribute__((target("avx2")))
static float
Sweep(const float *a, size_t n)
{
	__m256		acc[8];
	float		lanes[8];
	float		sum = 0;

	for (int k = 0; k < 8; k++)
		acc[k] = _mm256_setzero_ps();
	for (size_t i = 0; i < n; i += 64)
		for (int k = 0; k < 8; k++)
			acc[k] = _mm256_add_ps(acc[k], _mm256_loadu_ps(a + i + 8 * k));
	for (int k = 1; k < 8; k++)
		acc[0] = _mm256_add_ps(acc[0], acc[k]);
	_mm256_storeu_ps(lanes, acc[0]);
	for (int k = 0; k < 8; k++)
		sum += lanes[k];
	return sum;
}

int
main(int argc, char **argv)
{
	size_t		bytes = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;
	size_t		n = (bytes / 4 + 63) / 64 * 64;
	float	   *a = aligned_alloc(64, n * 4);
	double		best = 1e30;
	volatile float sink = 0;
	int			reps;

	if (a == NULL || n == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		a[i] = 1.0f;
	reps = (int) (2e9 / (n * 4.0)) + 1;
	for (int run = 0; run < 5; run++)
	{
		double		t0 = Now();

		for (int r = 0; r < reps; r++)
			sink += Sweep(a, n);
		if ((Now() - t0) / reps < best)
			best = (Now() - t0) / reps;
	}
	printf("%.0f\n", n * 4.0 / best);
	free(a);
	return 0;
}
