/*
 * kernel_scaling.c
 *		Threads without PostgreSQL (test/bench/parallel/run.sh): one ALS
 *		half-step (60,000 entities x 83 rows over 20,000 others, dim 64) with
 *		cg and with cholesky on 1 and 2 threads, and a calibration: the same
 *		arithmetic loop run twice on one thread and once on each of two, which
 *		says how much of a second core the machine gives right now (a shared
 *		2-core VM often gives far less than one).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>

#include "kernel/als_engine.h"
#include "kernel/linalg.h"

/* Seconds of a monotonic clock */
static double
Now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static volatile double Sink;

/* A dependent chain of multiply-adds, the calibration's unit of work */
static int
Spin(void *arg)
{
	double		x = 1.0;

	for (long i = 0; i < 200000000L; i++)
		x = x * 1.0000001 + 1e-9;
	Sink = x;
	return 0;
}

int
main(void)
{
	int			n = 60000,
				m = 20000,
				k = 64,
				per = 83;
	unsigned	seed = 1;
	int64_t    *ptr = malloc(sizeof(int64_t) * (n + 1));
	int32_t    *idx = malloc(sizeof(int32_t) * (size_t) n * per);
	float	   *conf = malloc(sizeof(float) * (size_t) n * per);
	float	   *other = malloc(sizeof(float) * (size_t) m * k);
	float	   *x = malloc(sizeof(float) * (size_t) n * k);
	double	   *lambda = malloc(sizeof(double) * n);
	double	   *loss = malloc(sizeof(double) * n);
	double	   *g = malloc(sizeof(double) * k * k);
	double	   *gw = malloc(sizeof(double) * ALS_CHUNK_ROWS * k);
	AlsRows		rows;
	double		t0,
				t1,
				t2;
	thrd_t		a,
				b;

	ptr[0] = 0;
	for (int e = 0; e < n; e++)
	{
		ptr[e + 1] = ptr[e] + per;
		for (int j = 0; j < per; j++)
		{
			idx[ptr[e] + j] = (int32_t) (rand_r(&seed) % m);
			conf[ptr[e] + j] = 1.0f + (float) (rand_r(&seed) % 4);
		}
	}
	rows.n = n;
	rows.ptr = ptr;
	rows.idx = idx;
	rows.conf = conf;
	for (size_t t = 0; t < (size_t) m * k; t++)
		other[t] = (float) (rand_r(&seed) % 1000) / 1000.0f - 0.5f;
	for (int e = 0; e < n; e++)
		lambda[e] = 0.1;
	AlsGramian(other, m, k, g, gw);

	t0 = Now();
	Spin(NULL);
	Spin(NULL);
	t1 = Now();
	thrd_create(&a, Spin, NULL);
	thrd_create(&b, Spin, NULL);
	thrd_join(a, NULL);
	thrd_join(b, NULL);
	t2 = Now();
	printf("calibration: two units of pure arithmetic on 1 thread %.2f s, on 2 threads %.2f s (ratio %.2f)\n",
		   t1 - t0, t2 - t1, (t2 - t1) / (t1 - t0));

	for (int solver = 0; solver < 2; solver++)
	{
		double		best[3] = {0, 1e30, 1e30};

		for (int rep = 0; rep < 3; rep++)
			for (int nw = 1; nw <= 2; nw++)
			{
				double	   *work = malloc(sizeof(double) * AlsWorkDoubles(k, per) * nw);
				AlsSweep	s;
				double		s0;

				memset(&s, 0, sizeof(s));
				s.dim = k;
				s.gramian_weight = 0.1;
				s.solver = solver == 0 ? ALS_SOLVER_CG : ALS_SOLVER_CHOLESKY;
				s.cg_steps = 3;
				s.nworkers = nw;
				s.max_rows = per;
				s.entity_loss = loss;
				memset(x, 0, sizeof(float) * (size_t) n * k);
				s0 = Now();
				AlsSolveSide(&s, &rows, lambda, other, g, x, work);
				if (Now() - s0 < best[nw])
					best[nw] = Now() - s0;
				free(work);
			}
		printf("%s half-step (%d entities): 1 thread %.3f s, 2 threads %.3f s (ratio %.2f; best of 3, interleaved)\n",
			   solver == 0 ? "cg" : "cholesky", n, best[1], best[2], best[2] / best[1]);
	}
	return 0;
}
