/*
 * embeddings/sgd.c
 *		SGD training of Gramian-regularized embeddings (Krichene et al., ICLR
 *		2019) over the interactions loaded by interactions.c:
 *
 *		sogram   Gramian estimates as a moving average (rate alpha) of batch
 *				 Gramians of entities drawn by the sampling distribution
 *		sagram   cached per-entity vectors and their outer-product sums,
 *				 corrected by a drawn batch (beta = sag or saga)
 *		sampled  no Gramian estimate: sampled negatives with inverse-
 *				 probability weights, the baseline the paper beats
 *
 * All three minimise the objective of train_embeddings (doc/embeddings.md)
 *
 *		L = sum_S [c (<x,y> - 1)^2 - w <x,y>^2] + w <X^T X, Y^T Y>_F
 *			+ sum_u lambda_u |x_u|^2 + sum_i lambda_i |y_i|^2,
 *
 * with entity Gramians (each user and item counted once).  One example
 * (u, i, c) contributes the surrogate gradient
 *
 *		d/dx_u = r y_i + (2 w G_Y x_u + 2 lambda_u x_u) / n_u
 *		d/dy_i = r x_u + (2 w G_X y_i + 2 lambda_i y_i) / n_i,
 *		r = 2 (c (<x_u,y_i> - 1) - w <x_u,y_i>),
 *
 * where G is replaced by its estimate (held constant, stop-gradient), so
 * that one epoch over the examples sums to the exact gradient.
 *
 * Memory: besides the loaded interactions and the caller's vectors, a user
 * index per example (4 bytes), sagram's cached copy of both tables and one
 * float per row for Adagrad, in one memory context deleted when the
 * function returns (or fails, or is cancelled).
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "embeddings/init.h"
#include "embeddings/interactions.h"
#include "kernel/linalg.h"
#include "settings.h"
#include "kernel/rng.h"
#include "embeddings/sgd.h"
#include "store/progress.h"
#include "embeddings/train_options.h"

#define SGD_GRAM_ROWS 256

/* Settings of one run, from the resolved options */
typedef struct SgdConfig
{
	SgdMethod	method;
	int			dim;
	int			epochs;
	double		gramian_weight;
	int64		seed;
	double		init_scale;
	double		learning_rate;
	int			batch_size;
	bool		adagrad;
	double		alpha;			/* sogram */
	bool		saga;			/* sagram: beta = 1 (else sag) */
	int			negatives;		/* sampled */
	SgdSampling sampling;		/* sogram, sampled */
} SgdConfig;

/* Walker/Vose alias table: draws index j with probability q[j] in O(1) */
typedef struct AliasTable
{
	int			n;
	double	   *q;				/* probabilities */
	double	   *prob;
	int32	   *alias;
} AliasTable;

/* One side of the model (users or items) */
typedef struct SgdSide
{
	const char *what;			/* "user" or "item" */
	int			n;
	int64	   *ids;
	int32	   *count;			/* examples per entity */
	double	   *lam;			/* l2 weight per entity */
	float	   *x;				/* n x dim */
	float	   *acc;			/* Adagrad accumulator per row */
	float	   *cache;			/* sagram: cached vectors */
	double	   *s_hat;			/* sagram: sum of cached outer products */
	double	   *g_hat;			/* the Gramian estimate used in the step */
	AliasTable	sampler;
	int64	   *stamp;			/* last batch that drew each entity */
	int32	   *drawn;			/* entities drawn for this step's Gramian batch */
	int			ndrawn;
} SgdSide;

/* Scratch space of one batch */
typedef struct SgdBatch
{
	double	   *ub;				/* B x k user rows */
	double	   *vb;				/* B x k item rows */
	double	   *pu;				/* B x k: G_V x_u */
	double	   *pv;				/* B x k: G_U y_i */
	double	   *gu;				/* B x k user gradients */
	double	   *gv;				/* B x k item gradients */
	double	   *rows;			/* Gramian batch rows (B x k) */
	double	   *rows2;			/* cached rows (B x k) */
	double	   *delta;			/* k x k */
	double	   *weights;		/* B importance weights */
	double	   *neg_g;			/* sampled: (B * negatives) x k gradients */
	int32	   *neg_j;			/* sampled: their items */
	double	   *psd_work;		/* saga: dsyevd workspace */
	size_t		psd_lwork;
	int		   *psd_iwork;
	size_t		psd_liwork;
} SgdBatch;

/* Get the settings of a run from the resolved options */
static void
MakeSgdConfig(SgdConfig *cfg, const TrainOptions *opts, int dim, int epochs, double gramian_weight)
{
	memset(cfg, 0, sizeof(SgdConfig));
	cfg->method = opts->method == TRAIN_SOGRAM ? SGD_SOGRAM :
		opts->method == TRAIN_SAGRAM ? SGD_SAGRAM : SGD_SAMPLED;
	cfg->dim = dim;
	cfg->epochs = epochs;
	cfg->gramian_weight = gramian_weight;
	cfg->seed = opts->seed;
	cfg->init_scale = opts->init_scale;
	cfg->learning_rate = opts->learning_rate;
	cfg->batch_size = opts->batch_size;
	cfg->adagrad = opts->optimizer == TRAIN_OPTIMIZER_ADAGRAD;
	cfg->alpha = opts->alpha;
	cfg->saga = opts->beta == TRAIN_BETA_SAGA;
	cfg->negatives = opts->negatives;
	cfg->sampling = (SgdSampling) opts->sampling;
}

/* Allocate n elements of size sz, zeroed, allowing more than 1 GB */
static void *
HugeAlloc0(Size n, Size sz)
{
	if (n > 0 && sz > MaxAllocHugeSize / n)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("sgd training data is too large")));
	return MemoryContextAllocExtended(CurrentMemoryContext, Max(n * sz, 1),
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
}

/* Build an alias table for weights w[0..n-1] (all positive) */
static void
AliasBuild(AliasTable *t, int n, const double *w)
{
	double		sum = 0.0;
	int32	   *small = palloc(sizeof(int32) * n);
	int32	   *large = palloc(sizeof(int32) * n);
	double	   *p = palloc(sizeof(double) * n);
	int			ns = 0,
				nl = 0;

	t->n = n;
	t->q = HugeAlloc0(n, sizeof(double));
	t->prob = HugeAlloc0(n, sizeof(double));
	t->alias = HugeAlloc0(n, sizeof(int32));
	for (int j = 0; j < n; j++)
		sum += w[j];
	for (int j = 0; j < n; j++)
	{
		t->q[j] = w[j] / sum;
		p[j] = t->q[j] * n;
		if (p[j] < 1.0)
			small[ns++] = j;
		else
			large[nl++] = j;
	}
	while (ns > 0 && nl > 0)
	{
		int32		s = small[--ns];
		int32		l = large[--nl];

		t->prob[s] = p[s];
		t->alias[s] = l;
		p[l] = (p[l] + p[s]) - 1.0;
		if (p[l] < 1.0)
			small[ns++] = l;
		else
			large[nl++] = l;
	}
	while (nl > 0)
		t->prob[large[--nl]] = 1.0;
	while (ns > 0)
		t->prob[small[--ns]] = 1.0;
	pfree(small);
	pfree(large);
	pfree(p);
}

/* Draw one index from an alias table */
static inline int
AliasDraw(const AliasTable *t, Rng *rng)
{
	int			j = (int) RngBelow(rng, (uint64) t->n);

	return RngUniform(rng) < t->prob[j] ? j : t->alias[j];
}

/* Build a side's sampler for a distribution over its entities */
static void
BuildSampler(SgdSide *side, SgdSampling sampling)
{
	double	   *w = palloc(sizeof(double) * side->n);

	for (int j = 0; j < side->n; j++)
		w[j] = sampling == SGD_SAMPLE_UNIFORM ? 1.0 :
			sampling == SGD_SAMPLE_SQRT ? sqrt((double) side->count[j]) : (double) side->count[j];
	AliasBuild(&side->sampler, side->n, w);
	pfree(w);
}

/* Compute out = sum_j x_j x_j^T over all rows of a float table (k x k, full) */
static void
TableGramian(const float *x, int n, int k, double *out, double *buf)
{
	memset(out, 0, sizeof(double) * k * k);
	for (int r0 = 0; r0 < n; r0 += SGD_GRAM_ROWS)
	{
		int			rows = Min(SGD_GRAM_ROWS, n - r0);

		for (size_t t = 0; t < (size_t) rows * k; t++)
			buf[t] = x[(size_t) r0 * k + t];
		LinalgSyrkRows(k, rows, buf, 1.0, out);
		CHECK_FOR_INTERRUPTS();
	}
	LinalgSymmetrize(k, out);
}

/* Copy rows idx[0..m-1] of a float table into doubles scaled by sqrt(scale[t]) */
static void
GatherRows(const float *x, int k, const int32 *idx, int m, const double *scale, double *out)
{
	for (int t = 0; t < m; t++)
	{
		const float *src = x + (size_t) idx[t] * k;
		double		s = scale ? sqrt(scale[t]) : 1.0;

		for (int j = 0; j < k; j++)
			out[(size_t) t * k + j] = s * src[j];
	}
}

/*
 * Draw up to m distinct entities uniformly (all of them when m >= n) into
 * drawn[]; returns how many.  stamp[] remembers the batch that drew each.
 */
static int
DrawDistinct(SgdSide *side, int m, int64 batch_stamp, int32 *drawn, Rng *rng)
{
	int			got = 0;

	if (m >= side->n)
	{
		for (int j = 0; j < side->n; j++)
			drawn[j] = j;
		return side->n;
	}
	while (got < m)
	{
		int			j = (int) RngBelow(rng, (uint64) side->n);

		if (side->stamp[j] == batch_stamp)
			continue;
		side->stamp[j] = batch_stamp;
		drawn[got++] = j;
	}
	return got;
}

/* SOGram: G_hat <- (1 - alpha) G_hat + alpha * (batch estimate of the Gramian) */
static void
SogramUpdate(SgdSide *side, const SgdConfig *cfg, SgdBatch *b, Rng *rng)
{
	int			k = cfg->dim;
	int			m = cfg->batch_size;

	/* importance weights 1 / (m q_j) make the batch sum unbiased for sum_j x_j x_j^T */
	for (int t = 0; t < m; t++)
	{
		side->drawn[t] = AliasDraw(&side->sampler, rng);
		b->weights[t] = 1.0 / ((double) m * side->sampler.q[side->drawn[t]]);
	}
	side->ndrawn = m;
	GatherRows(side->x, k, side->drawn, m, b->weights, b->rows);
	memset(b->delta, 0, sizeof(double) * k * k);
	LinalgSyrkRows(k, m, b->rows, 1.0, b->delta);
	LinalgSymmetrize(k, b->delta);
	for (size_t t = 0; t < (size_t) k * k; t++)
		side->g_hat[t] = (1.0 - cfg->alpha) * side->g_hat[t] + cfg->alpha * b->delta[t];
}

/*
 * SAGram step (1): G_hat = S_hat + coef * sum_{j drawn} (x_j x_j^T - xc_j xc_j^T)
 * with coef 1 (sag: the drawn entities' terms refreshed, PSD) or n / m
 * (saga: unbiased, projected onto the PSD cone).
 */
static void
SagramEstimate(SgdSide *side, const SgdConfig *cfg, SgdBatch *b, int64 stamp, Rng *rng)
{
	int			k = cfg->dim;
	int			m = DrawDistinct(side, cfg->batch_size, stamp, side->drawn, rng);
	double		coef = cfg->saga ? (double) side->n / m : 1.0;

	side->ndrawn = m;
	GatherRows(side->x, k, side->drawn, m, NULL, b->rows);
	GatherRows(side->cache, k, side->drawn, m, NULL, b->rows2);
	memset(b->delta, 0, sizeof(double) * k * k);
	LinalgSyrkRows(k, m, b->rows, 1.0, b->delta);
	LinalgSyrkRows(k, m, b->rows2, -1.0, b->delta);
	LinalgSymmetrize(k, b->delta);
	for (size_t t = 0; t < (size_t) k * k; t++)
		side->g_hat[t] = side->s_hat[t] + coef * b->delta[t];
	if (cfg->saga && coef != 1.0)
	{
		int			info = LinalgPsdProject(k, side->g_hat, b->psd_work, b->psd_lwork,
											b->psd_iwork, b->psd_liwork);

		if (info != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("PSD projection of the %s Gramian estimate failed (LAPACK info %d)",
							side->what, info)));
	}
}

/*
 * SAGram step (3): refresh the cache of the drawn entities at the new
 * parameters, S_hat += sum (x_j x_j^T - xc_j xc_j^T), xc_j <- x_j.
 */
static void
SagramRefresh(SgdSide *side, const SgdConfig *cfg, SgdBatch *b)
{
	int			k = cfg->dim;
	int			m = side->ndrawn;

	GatherRows(side->x, k, side->drawn, m, NULL, b->rows);
	GatherRows(side->cache, k, side->drawn, m, NULL, b->rows2);
	memset(b->delta, 0, sizeof(double) * k * k);
	LinalgSyrkRows(k, m, b->rows, 1.0, b->delta);
	LinalgSyrkRows(k, m, b->rows2, -1.0, b->delta);
	LinalgSymmetrize(k, b->delta);
	for (size_t t = 0; t < (size_t) k * k; t++)
		side->s_hat[t] += b->delta[t];
	for (int t = 0; t < m; t++)
		memcpy(side->cache + (size_t) side->drawn[t] * k, side->x + (size_t) side->drawn[t] * k,
			   sizeof(float) * k);
}

/* Apply one gradient to a row: Adagrad (one accumulator per row) or plain SGD */
static inline void
ApplyGradient(float *x, float *acc, const double *g, int k, const SgdConfig *cfg)
{
	double		step = cfg->learning_rate;

	if (cfg->adagrad)
	{
		double		ss = 0.0;

		for (int j = 0; j < k; j++)
			ss += g[j] * g[j];
		*acc += (float) (ss / k);
		step /= sqrt((double) *acc + 1e-12);
	}
	for (int j = 0; j < k; j++)
		x[j] -= (float) (step * g[j]);
}

/* Run one epoch of minibatch steps over the examples in a fresh random order */
static void
SgdEpoch(const SgdConfig *cfg, SgdSide *us, SgdSide *it, int64 npairs, const int32 *pu,
		 const int32 *pi, const float *pc, int32 *perm, SgdBatch *b, Rng *rng,
		 int64 *stamp)
{
	int			k = cfg->dim;
	double		w = cfg->gramian_weight;

	/* Fisher-Yates shuffle of the example order */
	for (int64 t = npairs - 1; t > 0; t--)
	{
		int64		j = (int64) RngBelow(rng, (uint64) (t + 1));
		int32		tmp = perm[t];

		perm[t] = perm[j];
		perm[j] = tmp;
	}

	for (int64 b0 = 0; b0 < npairs; b0 += cfg->batch_size)
	{
		int			m = (int) Min((int64) cfg->batch_size, npairs - b0);
		const int32 *batch = perm + b0;

		ProgressSet(b0);
		ProgressTick();

		CHECK_FOR_INTERRUPTS();
		(*stamp)++;

		/* the batch's current vectors */
		for (int t = 0; t < m; t++)
		{
			const float *xu = us->x + (size_t) pu[batch[t]] * k;
			const float *yi = it->x + (size_t) pi[batch[t]] * k;

			for (int j = 0; j < k; j++)
			{
				b->ub[(size_t) t * k + j] = xu[j];
				b->vb[(size_t) t * k + j] = yi[j];
			}
		}

		/* Gramian estimates for this step, then G_Y x_u and G_X y_i for the batch */
		if (cfg->method == SGD_SOGRAM)
		{
			SogramUpdate(us, cfg, b, rng);
			SogramUpdate(it, cfg, b, rng);
		}
		else if (cfg->method == SGD_SAGRAM)
		{
			SagramEstimate(us, cfg, b, *stamp, rng);
			SagramEstimate(it, cfg, b, *stamp, rng);
		}
		if (cfg->method != SGD_SAMPLED)
		{
			LinalgDgemm(m, k, k, 1.0, b->ub, 0, it->g_hat, 0, 0.0, b->pu);
			LinalgDgemm(m, k, k, 1.0, b->vb, 0, us->g_hat, 0, 0.0, b->pv);
		}

		/* gradients at the current parameters */
		for (int t = 0; t < m; t++)
		{
			int32		e = batch[t];
			int32		u = pu[e];
			int32		i = pi[e];
			double	   *xu = b->ub + (size_t) t * k;
			double	   *yi = b->vb + (size_t) t * k;
			double	   *gu = b->gu + (size_t) t * k;
			double	   *gv = b->gv + (size_t) t * k;
			double		yhat = LinalgDot(k, xu, yi);
			double		r = 2.0 * (pc[e] * (yhat - 1.0) - w * yhat);
			double		au = 2.0 * us->lam[u] / us->count[u];
			double		ai = 2.0 * it->lam[i] / it->count[i];

			/* (negatives + 1) k work a row: large batches are checked inside */
			CHECK_FOR_INTERRUPTS();
			if (cfg->method == SGD_SAMPLED)
			{
				for (int j = 0; j < k; j++)
				{
					gu[j] = r * yi[j] + au * xu[j];
					gv[j] = r * xu[j] + ai * yi[j];
				}
				/* w sum_j <x_u, y_j>^2 estimated by negatives j ~ q, weights 1 / (M q_j) */
				for (int s = 0; s < cfg->negatives; s++)
				{
					int			slot = t * cfg->negatives + s;
					int			jn = AliasDraw(&it->sampler, rng);
					const float *yj = it->x + (size_t) jn * k;
					double		yuj = 0.0;
					double		f;
					double	   *gn = b->neg_g + (size_t) slot * k;

					for (int j = 0; j < k; j++)
						yuj += xu[j] * yj[j];
					f = 2.0 * w * yuj / (cfg->negatives * it->sampler.q[jn] * us->count[u]);
					for (int j = 0; j < k; j++)
					{
						gu[j] += f * yj[j];
						gn[j] = f * xu[j];
					}
					b->neg_j[slot] = jn;
				}
			}
			else
			{
				const double *p = b->pu + (size_t) t * k;
				const double *q = b->pv + (size_t) t * k;
				double		gu_s = 2.0 * w / us->count[u];
				double		gv_s = 2.0 * w / it->count[i];

				for (int j = 0; j < k; j++)
				{
					gu[j] = r * yi[j] + gu_s * p[j] + au * xu[j];
					gv[j] = r * xu[j] + gv_s * q[j] + ai * yi[j];
				}
			}
		}

		/* apply (repeated entities of a batch take their steps in turn) */
		for (int t = 0; t < m; t++)
		{
			int32		u = pu[batch[t]];
			int32		i = pi[batch[t]];

			ApplyGradient(us->x + (size_t) u * k, &us->acc[u], b->gu + (size_t) t * k, k, cfg);
			ApplyGradient(it->x + (size_t) i * k, &it->acc[i], b->gv + (size_t) t * k, k, cfg);
		}
		if (cfg->method == SGD_SAMPLED)
			for (int s = 0; s < m * cfg->negatives; s++)
			{
				ApplyGradient(it->x + (size_t) b->neg_j[s] * k, &it->acc[b->neg_j[s]],
							  b->neg_g + (size_t) s * k, k, cfg);
				CHECK_FOR_INTERRUPTS();
			}

		/* SAGram step (3) at the new parameters */
		if (cfg->method == SGD_SAGRAM)
		{
			SagramRefresh(us, cfg, b);
			SagramRefresh(it, cfg, b);
		}
	}
}

/*
 * Compute the exact objective at the current vectors: observed part
 * sum_S [c (<x,y> - 1)^2 - w <x,y>^2], Gramian part w <X^T X, Y^T Y>_F and
 * the l2 part.
 */
static void
SgdObjective(const SgdConfig *cfg, const SgdSide *us, const SgdSide *it, int64 npairs,
			 const int32 *pu, const int32 *pi, const float *pc, double *observed,
			 double *gramian, double *l2, double *buf, double *gu, double *gv)
{
	int			k = cfg->dim;
	double		w = cfg->gramian_weight;
	double		obs = 0.0;
	double		reg = 0.0;

	for (int64 e = 0; e < npairs; e++)
	{
		const float *xu = us->x + (size_t) pu[e] * k;
		const float *yi = it->x + (size_t) pi[e] * k;
		double		yhat = 0.0;

		for (int j = 0; j < k; j++)
			yhat += (double) xu[j] * yi[j];
		obs += pc[e] * (yhat - 1.0) * (yhat - 1.0) - w * yhat * yhat;
		/* 2k flops a pair: every pair at large k, never minutes between checks */
		CHECK_FOR_INTERRUPTS();
	}
	TableGramian(us->x, us->n, k, gu, buf);
	TableGramian(it->x, it->n, k, gv, buf);
	for (const SgdSide *s = us;; s = it)
	{
		for (int r = 0; r < s->n; r++)
		{
			const float *x = s->x + (size_t) r * k;
			double		sq = 0.0;

			for (int j = 0; j < k; j++)
				sq += (double) x[j] * x[j];
			reg += s->lam[r] * sq;
			CHECK_FOR_INTERRUPTS();
		}
		if (s == it)
			break;
	}
	*observed = obs;
	*gramian = w * LinalgDot(k * k, gu, gv);
	*l2 = reg;
}

/* Allocate a side's tables and initial vectors (the same as als's for items) */
static void
InitSide(SgdSide *side, const SgdConfig *cfg, int64 seed, float *x)
{
	int			k = cfg->dim;

	side->x = x;
	side->acc = HugeAlloc0(side->n, sizeof(float));
	side->stamp = HugeAlloc0(side->n, sizeof(int64));
	side->drawn = HugeAlloc0(Max(cfg->batch_size, 1), sizeof(int32));
	side->g_hat = HugeAlloc0((Size) k * k, sizeof(double));
	/* k normals per entity: a check each */
	for (int r = 0; r < side->n; r++)
	{
		EmbeddingInitVector(seed, side->ids[r], k, cfg->init_scale, side->x + (size_t) r * k);
		CHECK_FOR_INTERRUPTS();
	}
	if (cfg->method == SGD_SAGRAM)
	{
		side->cache = HugeAlloc0((Size) side->n * k, sizeof(float));
		side->s_hat = HugeAlloc0((Size) k * k, sizeof(double));
		memcpy(side->cache, side->x, sizeof(float) * (Size) side->n * k);
	}
}

/* Raise the error for a run whose loss is no longer finite */
static void
CheckDiverged(double loss, int epoch)
{
	if (!isfinite(loss) || fabs(loss) > 1e300)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("sgd training diverged at epoch %d", epoch),
				 errhint("Use a smaller learning_rate.")));
}

/* Set up one side from the loaded interactions */
static void
LoadSide(SgdSide *side, const char *what, int32 n, const int64 *ids, const int64 *ptr,
		 const double *lam)
{
	side->what = what;
	side->n = n;
	side->ids = (int64 *) ids;
	side->lam = (double *) lam;
	side->count = HugeAlloc0(n, sizeof(int32));
	for (int32 e = 0; e < n; e++)
		side->count[e] = (int32) (ptr[e + 1] - ptr[e]);
}

/*
 * Train embeddings by SGD over the loaded interactions into user_x and
 * item_x (n x dim floats each, owned by the caller); report each epoch to
 * report (epoch, loss, observed, gramian, l2 and the seconds of its SGD
 * steps, not counting the evaluation of the loss).  All scratch memory
 * lives in a context deleted before returning.
 */
void
SgdTrain(const TrainOptions *opts, int dim, int epochs, double gramian_weight,
		 const Interactions *data, const double *lam_user, const double *lam_item,
		 float *user_x, float *item_x, SgdReport report, void *report_arg)
{
	SgdConfig	cfg;
	SgdSide		us,
				it;
	SgdBatch	b;
	MemoryContext context;
	MemoryContext old;
	int32	   *pu,
			   *perm;
	const int32 *pi = data->user_items;
	const float *pc = data->user_conf;
	int64		npairs = data->nnz;
	int64		stamp = 0;
	int			k = dim;
	Rng			rng;
	double	   *gram_buf;
	double	   *gu_full,
			   *gv_full;

	if (npairs > SGD_MAX_PAIRS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many interactions for sgd training"),
				 errdetail("At most %lld pairs are supported.", (long long) SGD_MAX_PAIRS)));
	MakeSgdConfig(&cfg, opts, dim, epochs, gramian_weight);
	context = AllocSetContextCreate(CurrentMemoryContext, "recsys sgd", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(context);
	memset(&us, 0, sizeof(us));
	memset(&it, 0, sizeof(it));
	LoadSide(&us, "user", data->n_users, data->user_ids, data->user_ptr, lam_user);
	LoadSide(&it, "item", data->n_items, data->item_ids, data->item_ptr, lam_item);
	/* the examples in (user, item) order: a seed gives the same run */
	pu = HugeAlloc0(npairs, sizeof(int32));
	for (int32 u = 0; u < data->n_users; u++)
		for (int64 e = data->user_ptr[u]; e < data->user_ptr[u + 1]; e++)
			pu[e] = u;

	/* the same initial vectors as als (items: seed * 2 + 1), then a seeded order */
	InitSide(&us, &cfg, cfg.seed * 2, user_x);
	InitSide(&it, &cfg, cfg.seed * 2 + 1, item_x);
	RngInit(&rng, (uint64) cfg.seed);
	perm = HugeAlloc0(npairs, sizeof(int32));
	for (int64 e = 0; e < npairs; e++)
		perm[e] = (int32) e;

	memset(&b, 0, sizeof(b));
	b.ub = HugeAlloc0((Size) cfg.batch_size * k, sizeof(double));
	b.vb = HugeAlloc0((Size) cfg.batch_size * k, sizeof(double));
	b.pu = HugeAlloc0((Size) cfg.batch_size * k, sizeof(double));
	b.pv = HugeAlloc0((Size) cfg.batch_size * k, sizeof(double));
	b.gu = HugeAlloc0((Size) cfg.batch_size * k, sizeof(double));
	b.gv = HugeAlloc0((Size) cfg.batch_size * k, sizeof(double));
	b.rows = HugeAlloc0((Size) cfg.batch_size * k, sizeof(double));
	b.rows2 = HugeAlloc0((Size) cfg.batch_size * k, sizeof(double));
	b.delta = HugeAlloc0((Size) k * k, sizeof(double));
	b.weights = HugeAlloc0(cfg.batch_size, sizeof(double));
	if (cfg.method == SGD_SAMPLED)
	{
		b.neg_g = HugeAlloc0((Size) cfg.batch_size * cfg.negatives * k, sizeof(double));
		b.neg_j = HugeAlloc0((Size) cfg.batch_size * cfg.negatives, sizeof(int32));
		BuildSampler(&it, cfg.sampling);
	}
	if (cfg.method == SGD_SOGRAM)
	{
		BuildSampler(&us, cfg.sampling);
		BuildSampler(&it, cfg.sampling);
	}
	if (cfg.method == SGD_SAGRAM && cfg.saga)
	{
		b.psd_lwork = LinalgPsdProjectWorkSize(k, &b.psd_liwork);
		b.psd_work = HugeAlloc0(b.psd_lwork, sizeof(double));
		b.psd_iwork = HugeAlloc0(b.psd_liwork, sizeof(int));
	}
	gram_buf = HugeAlloc0((Size) SGD_GRAM_ROWS * k, sizeof(double));
	gu_full = HugeAlloc0((Size) k * k, sizeof(double));
	gv_full = HugeAlloc0((Size) k * k, sizeof(double));

	/*
	 * Gramian estimates start from the exact Gramians at the initial vectors
	 * (a full pass): SOGram's moving average is then unbiased from the first
	 * step instead of carrying the (1 - alpha)^t bias of a zero start.
	 */
	if (cfg.method == SGD_SOGRAM)
	{
		TableGramian(us.x, us.n, k, us.g_hat, gram_buf);
		TableGramian(it.x, it.n, k, it.g_hat, gram_buf);
	}

	for (int ep = 1; ep <= cfg.epochs; ep++)
	{
		instr_time	start,
					duration;
		double		observed,
					gramian,
					l2,
					loss;

		INSTR_TIME_SET_CURRENT(start);
		if (cfg.method == SGD_SAGRAM)
		{
			/* exact sums of the cached outer products, dropping rounding drift */
			TableGramian(us.cache, us.n, k, us.s_hat, gram_buf);
			TableGramian(it.cache, it.n, k, it.s_hat, gram_buf);
		}
		ProgressPhase("examples", ep, npairs, "examples");
		SgdEpoch(&cfg, &us, &it, npairs, pu, pi, pc, perm, &b, &rng, &stamp);
		ProgressSet(npairs);
		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, start);

		SgdObjective(&cfg, &us, &it, npairs, pu, pi, pc, &observed, &gramian, &l2,
					 gram_buf, gu_full, gv_full);
		loss = observed + gramian + l2;
		CheckDiverged(loss, ep);
		report(report_arg, ep, loss, observed, gramian, l2, INSTR_TIME_GET_DOUBLE(duration));
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(context);
}
