/*
 * kernel/als_engine.c
 *		Sweeps of the in-memory implicit-ALS engine (see als_engine.h).
 *
 * cholesky: the entity's rows are gathered (as doubles scaled by
 * sqrt(|c_j - w|)) in chunks and folded into its normal matrix with one
 * dsyrk per chunk and sign, then solved with LinalgCholeskySolve (the
 * jitter policy of every Cholesky solve in recsys).  Rows with c_j = w add
 * to the right-hand side only, as in the aggregate.
 *
 * cg: cg_steps conjugate-gradient steps from the entity's current vector
 * (Takacs et al. 2011).  The product A p = (w G + lambda I) p
 * + sum_j (c_j - w) (v_j . p) v_j never forms A: w G p is one sgemv with
 * the shared Gramian (as float), the row part two sgemv over the gathered
 * float rows (gathered once per sweep when the entity's rows fit the gather
 * buffer of ALS_CG_GATHER_BYTES); the iterates stay in double.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cblas.h>

#include "kernel/als_engine.h"
#include "kernel/linalg.h"
#include "kernel/parallel.h"

/* The larger of two sizes */
#define Max2(a, b) ((a) > (b) ? (a) : (b))

/* Entities a thread takes at a time */
#define ALS_ENTITY_BATCH 8

/* Rows ahead whose vector is prefetched while gathering (random reads) */
#define ALS_PREFETCH_AHEAD 4

/* Ask the cache for the k floats of a row we will read soon */
static inline void
PrefetchRow(const float *v, int k)
{
	for (int t = 0; t < k; t += 16)
		__builtin_prefetch(v + t);
}

/* Pieces of the workspace of one sweep */
typedef struct AlsWork
{
	double	   *m;				/* k x k normal matrix */
	double	   *chol;			/* k x k Cholesky work */
	float	   *wgf;			/* k x k: w G as float (cg; aliases chol) */
	double	   *b;				/* k: right-hand side, then solution */
	double	   *r;				/* k: cg residual */
	double	   *p;				/* k: cg direction */
	double	   *ap;				/* k: A p */
	double	   *pos;			/* chunk x k rows of c - w > 0 */
	double	   *neg;			/* chunk x k rows of c - w < 0 */
	float	   *rows;			/* chunk x k float rows (cg; aliases pos) */
	float	   *coef;			/* chunk: c - w (cg) */
	float	   *vp;				/* chunk: v_j . p (cg) */
	float	   *cf;				/* chunk: c (cg) */
	float	   *pf;				/* k: p as float */
	float	   *apf;			/* k: row part of A p */
	size_t		chol_rows;		/* rows cholesky gathers at a time */
	size_t		cg_rows;		/* rows cg gathers at a time */
	double		conf_sum;		/* sum_j c_j of the entity */
} AlsWork;

/*
 * Get the rows cholesky gathers at a time (ALS_CHUNK_ROWS, fewer when no
 * entity has that many; max_rows <= 0: not known)
 */
static size_t
CholChunkRows(int64_t max_rows)
{
	return max_rows > 0 && max_rows < ALS_CHUNK_ROWS ? (size_t) max_rows : ALS_CHUNK_ROWS;
}

/*
 * Get the rows cg gathers at a time at dimension k: ALS_CG_GATHER_BYTES of
 * floats (at least 4 x ALS_CHUNK_ROWS), fewer when no entity has that many
 */
static size_t
CgChunkRows(int dim, int64_t max_rows)
{
	size_t		rows = ALS_CG_GATHER_BYTES / (sizeof(float) * (size_t) dim);

	if (rows < 4 * ALS_CHUNK_ROWS)
		rows = 4 * ALS_CHUNK_ROWS;
	if (max_rows > 0 && (int64_t) rows > max_rows)
		rows = (size_t) max_rows;
	/* cholesky's right-hand side coefficients live in the same place */
	return Max2(rows, CholChunkRows(max_rows));
}

/*
 * Get the number of doubles of workspace one thread of a sweep needs at
 * dimension k when no entity has more than max_rows rows (<= 0: any number)
 */
size_t
AlsWorkDoubles(int dim, int64_t max_rows)
{
	size_t		k = (size_t) dim;
	size_t		cg_rows = CgChunkRows(dim, max_rows);
	size_t		rows_area = Max2(2 * CholChunkRows(max_rows) * k, (cg_rows * k + 1) / 2);

	return 2 * k * k + 4 * k + rows_area + 2 * cg_rows + 2 * k + 8;
}

/* Carve one thread's workspace into its pieces */
static void
SplitWork(AlsWork *w, int dim, int64_t max_rows, double *work)
{
	size_t		k = (size_t) dim;
	double	   *p = work;

	w->m = p;
	p += k * k;
	w->chol = p;
	w->wgf = (float *) p;
	p += k * k;
	w->b = p;
	p += k;
	w->r = p;
	p += k;
	w->p = p;
	p += k;
	w->ap = p;
	p += k;
	/* cholesky's double rows and cg's float rows share one area */
	w->chol_rows = CholChunkRows(max_rows);
	w->cg_rows = CgChunkRows(dim, max_rows);
	w->pos = p;
	w->neg = p + w->chol_rows * k;
	w->rows = (float *) p;
	p += Max2(2 * w->chol_rows * k, (w->cg_rows * k + 1) / 2);
	/* floats: coef, vp and cf (cg_rows each, cholesky's b coefficients there too), pf and apf */
	w->coef = (float *) p;
	w->vp = w->coef + w->cg_rows;
	w->cf = w->vp + w->cg_rows;
	p += 2 * w->cg_rows;
	w->pf = (float *) p;
	w->apf = w->pf + k;
}

/*
 * Build the entity's normal matrix (upper triangle, column-major terms) and
 * right-hand side: m = w G + sum (c - w) v v^T + lambda I, b = sum c v
 */
static void
BuildNormal(const AlsSweep *s, AlsWork *w, const AlsRows *rows, int32_t e, double lambda,
			const float *other, const double *g)
{
	int			k = s->dim;
	double		gw = s->gramian_weight;
	int64_t		j0 = rows->ptr[e];
	int64_t		j1 = rows->ptr[e + 1];

	memset(w->m, 0, sizeof(double) * (size_t) k * k);
	memset(w->b, 0, sizeof(double) * k);
	w->conf_sum = 0.0;
	while (j0 < j1)
	{
		int			npos = 0,
					nneg = 0;
		int64_t		end = j1 - j0 > (int64_t) w->chol_rows ? j0 + (int64_t) w->chol_rows : j1;
		/* b's coefficient of each scaled row: c / sqrt(|c - w|) */
		double	   *bpos = (double *) w->coef;
		double	   *bneg = bpos + w->chol_rows;

		for (int64_t j = j0; j < end; j++)
		{
			const float *v = other + (size_t) rows->idx[j] * k;
			double		c = rows->conf[j];
			double		d = c - gw;
			double		sc;
			double	   *dst;

			if (j + ALS_PREFETCH_AHEAD < j1)
				PrefetchRow(other + (size_t) rows->idx[j + ALS_PREFETCH_AHEAD] * k, k);

			w->conf_sum += c;
			if (d == 0.0)
			{
				/* c = w: the pair adds to b only */
				for (int t = 0; t < k; t++)
					w->b[t] += c * (double) v[t];
				continue;
			}
			/* the same scaling as the aggregate's rank buffer */
			sc = d == 1.0 ? 1.0 : sqrt(fabs(d));
			if (d > 0.0)
			{
				bpos[npos] = c / sc;
				dst = w->pos + (size_t) npos++ * k;
			}
			else
			{
				bneg[nneg] = c / sc;
				dst = w->neg + (size_t) nneg++ * k;
			}
			for (int t = 0; t < k; t++)
				dst[t] = sc * (double) v[t];
		}
		LinalgWork((double) (end - j0) * k);
		LinalgSyrkRows(k, npos, w->pos, 1.0, w->m);
		LinalgSyrkRows(k, nneg, w->neg, -1.0, w->m);
		if (npos > 0)
			cblas_dgemv(CblasRowMajor, CblasTrans, npos, k, 1.0, w->pos, k, bpos, 1, 1.0, w->b, 1);
		if (nneg > 0)
			cblas_dgemv(CblasRowMajor, CblasTrans, nneg, k, 1.0, w->neg, k, bneg, 1, 1.0, w->b, 1);
		LinalgWork(4.0 * (npos + nneg) * k);
		j0 = end;
	}
	for (int c = 0; c < k; c++)
		for (int r = 0; r <= c; r++)
			w->m[(size_t) c * k + r] += gw * g[(size_t) c * k + r];
	for (int t = 0; t < k; t++)
		w->m[(size_t) t * k + t] += lambda;
	LinalgWork((double) k * k);
}

/* Gather rows j0..j1-1 of an entity as floats, with c and c - w */
static void
GatherFloat(int k, double gw, const AlsRows *rows, int64_t j0, int64_t j1,
			const float *other, AlsWork *w)
{
	for (int64_t j = j0; j < j1; j++)
	{
		if (j + ALS_PREFETCH_AHEAD < j1)
			PrefetchRow(other + (size_t) rows->idx[j + ALS_PREFETCH_AHEAD] * k, k);
		memcpy(w->rows + (size_t) (j - j0) * k, other + (size_t) rows->idx[j] * k,
			   sizeof(float) * k);
		w->cf[j - j0] = rows->conf[j];
		w->coef[j - j0] = (float) ((double) rows->conf[j] - gw);
	}
}

/* Get the rows of the entity's chunk at j0 into the workspace unless already there */
static int
GatherChunk(const AlsSweep *s, AlsWork *w, const AlsRows *rows, int32_t e, int64_t j0,
			const float *other, int *gathered)
{
	int64_t		j1 = rows->ptr[e + 1];
	int64_t		end = j1 - j0 > (int64_t) w->cg_rows ? j0 + (int64_t) w->cg_rows : j1;

	if (!*gathered)
		GatherFloat(s->dim, s->gramian_weight, rows, j0, end, other, w);
	/* an entity of one chunk keeps its rows there for the next products */
	if (j1 - rows->ptr[e] <= (int64_t) w->cg_rows)
		*gathered = 1;
	return (int) (end - j0);
}

/*
 * Compute out = A v = (w G + lambda I) v + sum_j (c_j - w) (v_j . v) v_j for
 * the entity, or with residual out = b - A v (b = sum_j c_j v_j); *gathered
 * says the rows of an entity that fits in one chunk are in the workspace
 */
static void
ApplyA(const AlsSweep *s, AlsWork *w, const AlsRows *rows, int32_t e, double lambda,
	   const float *other, const double *v, double *out, int *gathered, int residual)
{
	int			k = s->dim;
	int64_t		j0 = rows->ptr[e];
	int64_t		j1 = rows->ptr[e + 1];

	for (int t = 0; t < k; t++)
		w->pf[t] = (float) v[t];
	/* w G v in float: one sgemv over the full matrix (k^2 per product) */
	cblas_sgemv(CblasRowMajor, CblasNoTrans, k, k, 1.0f, w->wgf, k, w->pf, 1, 0.0f, w->apf, 1);
	for (int t = 0; t < k; t++)
		out[t] = residual ? -((double) w->apf[t] + lambda * v[t]) : (double) w->apf[t] + lambda * v[t];
	while (j0 < j1)
	{
		int			n = GatherChunk(s, w, rows, e, j0, other, gathered);

		cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w->rows, k, w->pf, 1, 0.0f, w->vp, 1);
		if (residual)
			for (int j = 0; j < n; j++)
				w->vp[j] = w->cf[j] - w->coef[j] * w->vp[j];
		else
			for (int j = 0; j < n; j++)
				w->vp[j] *= w->coef[j];
		cblas_sgemv(CblasRowMajor, CblasTrans, n, k, 1.0f, w->rows, k, w->vp, 1, 0.0f, w->apf, 1);
		for (int t = 0; t < k; t++)
			out[t] += (double) w->apf[t];
		LinalgWork(4.0 * n * k);
		j0 += n;
	}
	LinalgWork(2.0 * k * k);
}

/*
 * Run cg_steps conjugate-gradient steps on the entity's system from x (its
 * current vector); the result is left in w->b
 */
static void
SolveCg(const AlsSweep *s, AlsWork *w, const AlsRows *rows, int32_t e, double lambda,
		const float *other, const float *x0)
{
	int			k = s->dim;
	int			gathered = 0;
	double		rs_old,
				rs_new;
	double	   *x = w->b;

	/* r = sum_j c_j v_j - A x */
	for (int t = 0; t < k; t++)
		x[t] = x0[t];
	ApplyA(s, w, rows, e, lambda, other, x, w->r, &gathered, 1);
	memcpy(w->p, w->r, sizeof(double) * k);
	rs_old = LinalgDot(k, w->r, w->r);
	for (int step = 0; step < s->cg_steps && rs_old > 1e-20; step++)
	{
		double		pap,
					alpha;

		ApplyA(s, w, rows, e, lambda, other, w->p, w->ap, &gathered, 0);
		pap = LinalgDot(k, w->p, w->ap);
		if (!(pap > 0.0))
			break;
		alpha = rs_old / pap;
		LinalgAxpy(k, alpha, w->p, x);
		LinalgAxpy(k, -alpha, w->ap, w->r);
		rs_new = LinalgDot(k, w->r, w->r);
		for (int t = 0; t < k; t++)
			w->p[t] = w->r[t] + (rs_new / rs_old) * w->p[t];
		rs_old = rs_new;
	}
}

/*
 * Get the entity's observed loss at its stored (float) vector from its
 * normal equations, as the aggregate does:
 * x^T (m - w G - lambda I) x - 2 x^T b + sum_j c_j, with m and b as built
 */
static double
NormalObserved(const AlsSweep *s, AlsWork *w, const double *g, double lambda, const float *xe)
{
	int			k = s->dim;
	double		quad;

	for (int t = 0; t < k; t++)
		w->p[t] = (double) xe[t];
	cblas_dsymv(CblasColMajor, CblasUpper, k, 1.0, w->m, k, w->p, 1, 0.0, w->ap, 1);
	quad = LinalgDot(k, w->p, w->ap) - lambda * LinalgDot(k, w->p, w->p);
	cblas_dsymv(CblasColMajor, CblasUpper, k, 1.0, g, k, w->p, 1, 0.0, w->ap, 1);
	quad -= s->gramian_weight * LinalgDot(k, w->p, w->ap);
	LinalgWork(4.0 * k * k);
	return quad - 2.0 * LinalgDot(k, w->p, w->r) + w->conf_sum;
}

/*
 * Get the entity's observed loss at its stored vector from its rows,
 * sum_j [c_j (x . v_j - 1)^2 - w (x . v_j)^2], the products by sgemv over
 * the gathered rows (still in the workspace when they fit one chunk)
 */
static double
RowsObserved(const AlsSweep *s, AlsWork *w, const AlsRows *rows, int32_t e, const float *other,
			 const float *xe)
{
	int			k = s->dim;
	int64_t		j0 = rows->ptr[e];
	int			gathered = rows->ptr[e + 1] - j0 <= (int64_t) w->cg_rows;
	double		total = 0.0;

	while (j0 < rows->ptr[e + 1])
	{
		int			n = GatherChunk(s, w, rows, e, j0, other, &gathered);

		cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w->rows, k, xe, 1, 0.0f, w->vp, 1);
		for (int j = 0; j < n; j++)
		{
			double		d = w->vp[j];

			total += w->cf[j] * (d - 1.0) * (d - 1.0) - s->gramian_weight * d * d;
		}
		LinalgWork(2.0 * n * k);
		j0 += n;
	}
	return total;
}

/* One sweep over a side, shared by its threads */
typedef struct SideRun
{
	AlsSweep   *s;
	const AlsRows *rows;
	const double *lambda;
	const float *other;
	const double *g;
	float	   *x;
	AlsWork		w[PARALLEL_MAX_WORKERS];	/* each thread's workspace */
	int			jitter[PARALLEL_MAX_WORKERS];
	atomic_int	first_failed;	/* lowest failed entity so far (INT32_MAX: none) */
	/* the lowest failure each thread saw */
	int32_t		failed[PARALLEL_MAX_WORKERS];
	AlsStatus	status[PARALLEL_MAX_WORKERS];
	int			info[PARALLEL_MAX_WORKERS];
	int			failed_jitter[PARALLEL_MAX_WORKERS];
} SideRun;

/* Record a failed entity on its thread, and as the lowest failure if it is */
static void
SolveFailed(SideRun *run, int worker, int32_t e, AlsStatus st, int info)
{
	int			seen = atomic_load(&run->first_failed);

	if (e < run->failed[worker])
	{
		run->failed[worker] = e;
		run->status[worker] = st;
		run->info[worker] = info;
		run->failed_jitter[worker] = run->jitter[worker];
	}
	while (e < seen && !atomic_compare_exchange_weak(&run->first_failed, &seen, e))
		;
}

/*
 * Solve entity e on a thread (parallel.h: an item).  Its vector and loss
 * are written at the end, so a stopped solve reruns to the same result.
 */
static void
SolveEntity(void *arg, int worker, int64_t item)
{
	SideRun    *run = (SideRun *) arg;
	AlsSweep   *s = run->s;
	AlsWork    *w = &run->w[worker];
	int32_t		e = (int32_t) item;
	float	   *xe = run->x + (size_t) e * s->dim;
	int			k = s->dim;
	double		loss = 0.0;

	/* entities after a failure need no solve: the sweep fails anyway */
	if (e > atomic_load_explicit(&run->first_failed, memory_order_relaxed))
		return;
	/*
	 * progress, read by the check callback on the backend's thread: where
	 * that thread is (items are handed out in order, so about how many are
	 * done); the other threads leave it alone
	 */
	if (worker == 0)
		s->done = e;
	LinalgWork(ALS_ENTITY_WORK);
	if (s->solver == ALS_SOLVER_CHOLESKY)
	{
		int			info;

		BuildNormal(s, w, run->rows, e, run->lambda[e], run->other, run->g);
		if (s->want_observed)
			memcpy(w->r, w->b, sizeof(double) * k);
		info = LinalgCholeskySolve(k, w->m, w->b, 1, w->chol, &run->jitter[worker]);
		if (info != 0)
		{
			SolveFailed(run, worker, e, ALS_SINGULAR, info);
			return;
		}
	}
	else
		SolveCg(s, w, run->rows, e, run->lambda[e], run->other, xe);
	for (int t = 0; t < k; t++)
		if (!isfinite(w->b[t]) || fabs(w->b[t]) > FLT_MAX)
		{
			SolveFailed(run, worker, e, ALS_OUT_OF_RANGE, 0);
			return;
		}
	/* the new vector (and its loss) stays in the workspace until the end */
	for (int t = 0; t < k; t++)
		w->pf[t] = (float) w->b[t];
	if (s->want_observed)
		loss = s->solver == ALS_SOLVER_CHOLESKY ?
			NormalObserved(s, w, run->g, run->lambda[e], w->pf) :
			RowsObserved(s, w, run->rows, e, run->other, w->pf);
	memcpy(xe, w->pf, sizeof(float) * k);
	if (s->want_observed)
		s->entity_loss[e] = loss;
}

/*
 * Solve every entity of a side into x (n x k floats; with cg also the
 * starting point), against the other side's vectors and Gramian (k x k,
 * full), on up to s->nworkers threads, each with AlsWorkDoubles(k,
 * s->max_rows) doubles of work.  With s->want_observed, adds the side's
 * observed loss at the new vectors to s->observed (summed in entity
 * order, whatever the threads).  Returns ALS_OK, or the failure of the
 * lowest failed entity with s->failed_entity set.
 */
AlsStatus
AlsSolveSide(AlsSweep *s, const AlsRows *rows, const double *lambda,
			 const float *other, const double *other_gramian, float *x, double *work)
{
	SideRun    *run;
	ParallelLoop loop;
	SideRun		local;
	int			k = s->dim;
	int			nworkers = s->nworkers < 1 ? 1 : s->nworkers > PARALLEL_MAX_WORKERS ?
		PARALLEL_MAX_WORKERS : s->nworkers;
	size_t		per_worker = AlsWorkDoubles(k, s->max_rows);
	int32_t		failed = INT32_MAX;
	int			fw = 0;

	run = &local;
	run->s = s;
	run->rows = rows;
	run->lambda = lambda;
	run->other = other;
	run->g = other_gramian;
	run->x = x;
	atomic_init(&run->first_failed, INT32_MAX);
	for (int t = 0; t < nworkers; t++)
	{
		SplitWork(&run->w[t], k, s->max_rows, work + (size_t) t * per_worker);
		run->jitter[t] = 0;
		run->failed[t] = INT32_MAX;
	}
	if (s->solver == ALS_SOLVER_CG)
	{
		for (size_t t = 0; t < (size_t) k * k; t++)
			run->w[0].wgf[t] = (float) (s->gramian_weight * other_gramian[t]);
		for (int t = 1; t < nworkers; t++)
			memcpy(run->w[t].wgf, run->w[0].wgf, sizeof(float) * (size_t) k * k);
		LinalgWork((double) k * k * nworkers);
	}

	memset(&loop, 0, offsetof(ParallelLoop, next));
	loop.nworkers = nworkers;
	loop.n = rows->n;
	loop.batch = ALS_ENTITY_BATCH;
	loop.abortable = 1;
	loop.fn = SolveEntity;
	loop.arg = run;
	ParallelRun(&loop);

	for (int t = 0; t < nworkers; t++)
		if (run->failed[t] < failed)
		{
			failed = run->failed[t];
			fw = t;
		}
	if (failed != INT32_MAX)
	{
		s->failed_entity = failed;
		s->lapack_info = run->info[fw];
		s->jitter_retries = run->failed_jitter[fw];
		return run->status[fw];
	}
	if (s->want_observed)
		for (int32_t e = 0; e < rows->n; e++)
			s->observed += s->entity_loss[e];
	s->done = rows->n;
	return ALS_OK;
}

/*
 * Compute g = X^T X (k x k, both halves) of n float rows; work holds
 * ALS_CHUNK_ROWS x k doubles
 */
void
AlsGramian(const float *x, int32_t n, int dim, double *g, double *work)
{
	memset(g, 0, sizeof(double) * (size_t) dim * dim);
	for (int32_t r0 = 0; r0 < n; r0 += ALS_CHUNK_ROWS)
	{
		int			m = n - r0 > ALS_CHUNK_ROWS ? ALS_CHUNK_ROWS : n - r0;

		for (size_t t = 0; t < (size_t) m * dim; t++)
			work[t] = (double) x[(size_t) r0 * dim + t];
		LinalgWork((double) m * dim);
		LinalgSyrkRows(dim, m, work, 1.0, g);
	}
	LinalgSymmetrize(dim, g);
}

/* A Gramian split into row ranges, one per part */
typedef struct GramianRun
{
	const float *x;
	int32_t		n;
	int			dim;
	int			parts;
	double	   *g;				/* part 0's sum, then the total */
	double	   *sums;			/* parts 1..: k x k each */
	double	   *rows;			/* each thread's ALS_CHUNK_ROWS x k doubles */
} GramianRun;

/*
 * Sum X^T X over part p's rows (parallel.h: an item; it starts from zero,
 * so a stopped part reruns to the same sum)
 */
static void
GramianPart(void *arg, int worker, int64_t part)
{
	GramianRun *run = (GramianRun *) arg;
	size_t		kk = (size_t) run->dim * run->dim;
	int32_t		r0 = (int32_t) ((int64_t) run->n * part / run->parts);
	int32_t		r1 = (int32_t) ((int64_t) run->n * (part + 1) / run->parts);
	double	   *g = part == 0 ? run->g : run->sums + (size_t) (part - 1) * kk;
	double	   *rows = run->rows + (size_t) worker * ALS_CHUNK_ROWS * run->dim;

	memset(g, 0, sizeof(double) * kk);
	for (int32_t a = r0; a < r1; a += ALS_CHUNK_ROWS)
	{
		int			m = r1 - a > ALS_CHUNK_ROWS ? ALS_CHUNK_ROWS : r1 - a;

		for (size_t t = 0; t < (size_t) m * run->dim; t++)
			rows[t] = (double) run->x[(size_t) a * run->dim + t];
		LinalgWork((double) m * run->dim);
		LinalgSyrkRows(run->dim, m, rows, 1.0, g);
	}
}

/* Get the doubles of work AlsGramianParallel needs */
size_t
AlsGramianWorkDoubles(int dim, int nworkers)
{
	return (size_t) (nworkers - 1) * dim * dim + (size_t) nworkers * ALS_CHUNK_ROWS * dim;
}

/*
 * Compute g = X^T X (k x k, both halves) of n float rows on up to nworkers
 * threads: nworkers contiguous row ranges summed apart, then added in
 * order (with one, exactly AlsGramian); work holds
 * AlsGramianWorkDoubles(dim, nworkers) doubles
 */
void
AlsGramianParallel(const float *x, int32_t n, int dim, double *g, double *work, int nworkers)
{
	GramianRun	run;
	ParallelLoop loop;
	size_t		kk = (size_t) dim * dim;

	if (nworkers > PARALLEL_MAX_WORKERS)
		nworkers = PARALLEL_MAX_WORKERS;
	if (nworkers <= 1 || n < 2 * ALS_CHUNK_ROWS)
	{
		AlsGramian(x, n, dim, g, work);
		return;
	}
	run.x = x;
	run.n = n;
	run.dim = dim;
	run.parts = nworkers;
	run.g = g;
	run.sums = work;
	run.rows = work + (size_t) (nworkers - 1) * kk;
	memset(&loop, 0, offsetof(ParallelLoop, next));
	loop.nworkers = nworkers;
	loop.n = nworkers;
	loop.batch = 1;
	loop.abortable = 1;
	loop.fn = GramianPart;
	loop.arg = &run;
	ParallelRun(&loop);
	for (int p = 1; p < nworkers; p++)
	{
		const double *part = run.sums + (size_t) (p - 1) * kk;

		for (int c = 0; c < dim; c++)
			for (int r = 0; r <= c; r++)
				g[(size_t) c * dim + r] += part[(size_t) c * dim + r];
	}
	LinalgWork((double) kk * nworkers);
	LinalgSymmetrize(dim, g);
}

/* Get sum_e lambda_e |x_e|^2 */
double
AlsL2Loss(const float *x, int32_t n, int dim, const double *lambda)
{
	double		total = 0.0;

	for (int32_t e = 0; e < n; e++)
	{
		const float *xe = x + (size_t) e * dim;
		double		sq = 0.0;

		for (int t = 0; t < dim; t++)
			sq += (double) xe[t] * xe[t];
		total += lambda[e] * sq;
		LinalgWork(2.0 * dim);
	}
	return total;
}
