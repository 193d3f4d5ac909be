/*
 * sgd.c
 *		SGD training of Gramian-regularized embeddings (algorithms.md section 1,
 *		Krichene et al., ICLR 2019) over arrays loaded through SPI:
 *
 *		sogram   Gramian estimates as a moving average (rate alpha) of batch
 *				 Gramians of entities drawn by the sampling distribution
 *		sagram   cached per-entity vectors and their outer-product sums,
 *				 corrected by a drawn batch (beta = sag or saga)
 *		sampled  no Gramian estimate: sampled negatives with inverse-
 *				 probability weights, the baseline the paper beats
 *
 * All three minimise the objective of train_embeddings (see 20_embeddings.sql)
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
 * Memory: the examples (16 bytes each), the user and item tables
 * (n x dim floats each; sagram keeps a cached copy of both) and one float
 * per row for Adagrad.  Everything lives in one memory context that is
 * deleted when the function returns (or fails, or is cancelled).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "arrays.h"
#include "embeddings.h"
#include "linalg.h"
#include "recsys.h"
#include "spi_safe.h"
#include "rng.h"
#include "sgd.h"

#define SGD_FETCH_ROWS 8192
#define SGD_WRITE_ROWS 1024
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

/* Get the value of an option (the driver passes them all, resolved) */
static JsonbValue *
OptionValue(Jsonb *opts, const char *key, JsonbValue *buf)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&opts->root, key, strlen(key), buf);

	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" is missing", key)));
	return v;
}

/* Get a numeric option within [lo, hi] */
static double
OptionNumber(Jsonb *opts, const char *key, double lo, double hi)
{
	JsonbValue	buf;
	JsonbValue *v = OptionValue(opts, key, &buf);
	double		x;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a number", key)));
	x = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (!(x >= lo && x <= hi))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" is out of range: %g", key, x)));
	return x;
}

/* Get a string option that must be one of two or three words; returns its index */
static int
OptionWord(Jsonb *opts, const char *key, const char *const *words, int nwords)
{
	JsonbValue	buf;
	JsonbValue *v = OptionValue(opts, key, &buf);

	if (v->type == jbvString)
		for (int i = 0; i < nwords; i++)
			if (strlen(words[i]) == (size_t) v->val.string.len &&
				strncmp(words[i], v->val.string.val, v->val.string.len) == 0)
				return i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("option \"%s\" has an invalid value", key)));
	return -1;					/* keep compiler quiet */
}

/* Read and check the settings of a run */
static void
ReadSgdConfig(SgdConfig *cfg, text *method, int dim, int epochs, double gramian_weight,
			  Jsonb *opts)
{
	static const char *const optimizers[] = {"adagrad", "sgd"};
	static const char *const samplings[] = {"uniform", "sqrt", "linear"};
	static const char *const betas[] = {"sag", "saga"};
	char	   *m = text_to_cstring(method);

	memset(cfg, 0, sizeof(SgdConfig));
	if (strcmp(m, "sogram") == 0)
		cfg->method = SGD_SOGRAM;
	else if (strcmp(m, "sagram") == 0)
		cfg->method = SGD_SAGRAM;
	else if (strcmp(m, "sampled") == 0)
		cfg->method = SGD_SAMPLED;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown sgd method \"%s\"", m)));
	if (dim < 1 || dim > recsys_max_dim)
		ereport(ERROR,
				(errcode(dim < 1 ? ERRCODE_INVALID_PARAMETER_VALUE : ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dim must be between 1 and recsys.max_dim (%d)", recsys_max_dim)));
	if (epochs < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("epochs must be at least 1")));
	CheckFiniteDouble(gramian_weight, "gramian_weight");
	if (gramian_weight < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gramian_weight must not be negative")));
	cfg->dim = dim;
	cfg->epochs = epochs;
	cfg->gramian_weight = gramian_weight;
	cfg->seed = (int64) OptionNumber(opts, "seed", -9.2e18, 9.2e18);
	cfg->init_scale = OptionNumber(opts, "init_scale", 1e-300, 1e6);
	cfg->learning_rate = OptionNumber(opts, "learning_rate", 1e-300, 1e6);
	cfg->batch_size = (int) OptionNumber(opts, "batch_size", 1, 65536);
	cfg->adagrad = OptionWord(opts, "optimizer", optimizers, 2) == 0;
	if (cfg->method == SGD_SOGRAM)
		cfg->alpha = OptionNumber(opts, "alpha", 1e-300, 1.0);
	if (cfg->method == SGD_SAGRAM)
		cfg->saga = OptionWord(opts, "beta", betas, 2) == 1;
	if (cfg->method == SGD_SAMPLED)
		cfg->negatives = (int) OptionNumber(opts, "negatives", 1, 1000);
	if (cfg->method != SGD_SAGRAM)
		cfg->sampling = (SgdSampling) OptionWord(opts, "sampling", samplings, 3);
}

/* Get the quoted, schema-qualified name of a relation */
static char *
RelationSqlName(Oid relid)
{
	char	   *name = get_rel_name(relid);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), name);
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

/*
 * Load one side's entities (idx 0..n-1 in order, id, number of examples,
 * l2 weight) from a relation with columns idx, id, n, lam.
 */
static void
LoadSide(SgdSide *side, Oid relid, MemoryContext context)
{
	char	   *sql = psprintf("SELECT idx, id, n, lam FROM %s ORDER BY idx", RelationSqlName(relid));
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);
	Portal		portal;
	int			cap = 1024;
	int			n = 0;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	side->ids = MemoryContextAllocHuge(context, sizeof(int64) * cap);
	side->count = MemoryContextAllocHuge(context, sizeof(int32) * cap);
	side->lam = MemoryContextAllocHuge(context, sizeof(double) * cap);
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, SGD_FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		n1,
						n2,
						n3,
						n4;
			int32		idx = DatumGetInt32(SPI_getbinval(tup, desc, 1, &n1));
			int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &n2));
			int32		cnt = DatumGetInt32(SPI_getbinval(tup, desc, 3, &n3));
			double		lam = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &n4));

			if (n1 || n2 || n3 || n4 || idx != n || cnt < 1 || !isfinite(lam) || lam < 0.0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("malformed %s table for sgd training at row %d", side->what, n)));
			if (n == cap)
			{
				if (cap >= INT_MAX / 2)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("too many %ss for sgd training", side->what)));
				cap *= 2;
				side->ids = repalloc_huge(side->ids, sizeof(int64) * cap);
				side->count = repalloc_huge(side->count, sizeof(int32) * cap);
				side->lam = repalloc_huge(side->lam, sizeof(double) * cap);
			}
			side->ids[n] = id;
			side->count[n] = cnt;
			side->lam[n] = lam;
			n++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("no %ss to train", side->what)));
	side->n = n;
}

/*
 * Load the examples (user index, item index, confidence) from the pairs
 * relation (u, i, c), mapped through the two entity relations, in a fixed
 * order so that a seed gives the same run.
 */
static int64
LoadPairs(Oid pairs, Oid users, Oid items, int32 **pu, int32 **pi, double **pc,
		  MemoryContext context, int nu, int ni)
{
	char	   *sql = psprintf("SELECT us.idx, it.idx, p.c FROM %s p"
							   " JOIN %s us ON us.id = p.u JOIN %s it ON it.id = p.i"
							   " ORDER BY 1, 2",
							   RelationSqlName(pairs), RelationSqlName(users), RelationSqlName(items));
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);
	Portal		portal;
	int64		cap = 65536;
	int64		n = 0;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	*pu = MemoryContextAllocHuge(context, sizeof(int32) * cap);
	*pi = MemoryContextAllocHuge(context, sizeof(int32) * cap);
	*pc = MemoryContextAllocHuge(context, sizeof(double) * cap);
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, SGD_FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		n1,
						n2,
						n3;
			int32		u = DatumGetInt32(SPI_getbinval(tup, desc, 1, &n1));
			int32		i = DatumGetInt32(SPI_getbinval(tup, desc, 2, &n2));
			double		c = DatumGetFloat8(SPI_getbinval(tup, desc, 3, &n3));

			if (n1 || n2 || n3 || u < 0 || u >= nu || i < 0 || i >= ni || !isfinite(c) || c < 0.0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("malformed pairs table for sgd training at row " INT64_FORMAT, n)));
			if (n == cap)
			{
				if (cap >= SGD_MAX_PAIRS / 2)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("too many interactions for sgd training"),
							 errdetail("At most %lld pairs are supported.", (long long) SGD_MAX_PAIRS)));
				cap *= 2;
				*pu = repalloc_huge(*pu, sizeof(int32) * cap);
				*pi = repalloc_huge(*pi, sizeof(int32) * cap);
				*pc = repalloc_huge(*pc, sizeof(double) * cap);
			}
			(*pu)[n] = u;
			(*pi)[n] = i;
			(*pc)[n] = c;
			n++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("no interactions to train on")));
	return n;
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
		 const int32 *pi, const double *pc, int32 *perm, SgdBatch *b, Rng *rng,
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
				ApplyGradient(it->x + (size_t) b->neg_j[s] * k, &it->acc[b->neg_j[s]],
							  b->neg_g + (size_t) s * k, k, cfg);

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
			 const int32 *pu, const int32 *pi, const double *pc, double *observed,
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
		if ((e & 0xFFFF) == 0)
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
		}
		if (s == it)
			break;
	}
	*observed = obs;
	*gramian = w * LinalgDot(k * k, gu, gv);
	*l2 = reg;
}

/* Build a 1-D bigint[] */
static ArrayType *
Int64sToArray(const int64 *x, int n)
{
	Size		nbytes = ARR_OVERHEAD_NONULLS(1) + sizeof(int64) * (Size) n;
	ArrayType  *a = (ArrayType *) palloc0(nbytes);

	SET_VARSIZE(a, nbytes);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = INT8OID;
	ARR_DIMS(a)[0] = n;
	ARR_LBOUND(a)[0] = 1;
	memcpy(ARR_DATA_PTR(a), x, sizeof(int64) * (Size) n);
	return a;
}

/* Write a side's vectors into a relation with columns (id bigint, v real[]) */
static void
WriteSide(const SgdSide *side, int k, Oid relid)
{
	char	   *sql = psprintf("INSERT INTO %s (id, v)"
							   " SELECT $1[g], $2[(g - 1) * $3 + 1 : g * $3]"
							   " FROM pg_catalog.generate_series(1, $4) g",
							   RelationSqlName(relid));
	Oid			types[4] = {INT8ARRAYOID, FLOAT4ARRAYOID, INT4OID, INT4OID};
	SPIPlanPtr	plan = SPI_prepare(sql, 4, types);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	for (int r0 = 0; r0 < side->n; r0 += SGD_WRITE_ROWS)
	{
		int			rows = Min(SGD_WRITE_ROWS, side->n - r0);
		Datum		args[4];
		ArrayType  *ids = Int64sToArray(side->ids + r0, rows);
		ArrayType  *vals = FloatsToArray(side->x + (size_t) r0 * k, rows * k);

		args[0] = PointerGetDatum(ids);
		args[1] = PointerGetDatum(vals);
		args[2] = Int32GetDatum(k);
		args[3] = Int32GetDatum(rows);
		if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "writing %s vectors failed", side->what);
		pfree(ids);
		pfree(vals);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_freeplan(plan);
}

/* Allocate a side's tables and initial vectors (the same as als's for items) */
static void
InitSide(SgdSide *side, const SgdConfig *cfg, int64 seed)
{
	int			k = cfg->dim;

	side->x = HugeAlloc0((Size) side->n * k, sizeof(float));
	side->acc = HugeAlloc0(side->n, sizeof(float));
	side->stamp = HugeAlloc0(side->n, sizeof(int64));
	side->drawn = HugeAlloc0(Max(cfg->batch_size, 1), sizeof(int32));
	side->g_hat = HugeAlloc0((Size) k * k, sizeof(double));
	for (int r = 0; r < side->n; r++)
		EmbeddingInitVector(seed, side->ids[r], k, cfg->init_scale, side->x + (size_t) r * k);
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

PG_FUNCTION_INFO_V1(sgd_train);
/*
 * Train embeddings by SGD and write them into two relations; get one row per
 * epoch (epoch, loss, observed_loss, gramian_loss, l2_loss, seconds), where
 * seconds counts the SGD steps, not the evaluation of the loss.
 *
 * Arguments: method, dim, epochs, gramian_weight, resolved options (jsonb),
 * and the relations: pairs (u, i, c), users and items (idx, id, n, lam),
 * and the outputs for users and items (id, v).
 */
Datum
sgd_train(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SgdConfig	cfg;
	SgdSide		us,
				it;
	SgdBatch	b;
	MemoryContext context;
	MemoryContext old;
	int32	   *pu,
			   *pi,
			   *perm;
	double	   *pc;
	int64		npairs;
	int64		stamp = 0;
	int			k;
	Rng rng;
	double	   *gram_buf;
	double	   *gu_full,
			   *gv_full;
	int			spi_level;

	for (int a = 0; a < 10; a++)
		if (PG_ARGISNULL(a))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("arguments of sgd_train must not be NULL")));
	ReadSgdConfig(&cfg, PG_GETARG_TEXT_PP(0), PG_GETARG_INT32(1), PG_GETARG_INT32(2),
				  PG_GETARG_FLOAT8(3), PG_GETARG_JSONB_P(4));
	k = cfg.dim;
	InitMaterializedSRF(fcinfo, 0);

	context = AllocSetContextCreate(CurrentMemoryContext, "recsys sgd", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(context);
	memset(&us, 0, sizeof(us));
	memset(&it, 0, sizeof(it));
	us.what = "user";
	it.what = "item";

	spi_level = RecsysSpiConnect();
	LoadSide(&us, PG_GETARG_OID(6), context);
	LoadSide(&it, PG_GETARG_OID(7), context);
	npairs = LoadPairs(PG_GETARG_OID(5), PG_GETARG_OID(6), PG_GETARG_OID(7), &pu, &pi, &pc,
					   context, us.n, it.n);
	MemoryContextSwitchTo(context);

	/* the same initial vectors as als (items: seed * 2 + 1), then a seeded order */
	InitSide(&us, &cfg, cfg.seed * 2);
	InitSide(&it, &cfg, cfg.seed * 2 + 1);
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
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		INSTR_TIME_SET_CURRENT(start);
		if (cfg.method == SGD_SAGRAM)
		{
			/* exact sums of the cached outer products, dropping rounding drift */
			TableGramian(us.cache, us.n, k, us.s_hat, gram_buf);
			TableGramian(it.cache, it.n, k, it.s_hat, gram_buf);
		}
		SgdEpoch(&cfg, &us, &it, npairs, pu, pi, pc, perm, &b, &rng, &stamp);
		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, start);

		SgdObjective(&cfg, &us, &it, npairs, pu, pi, pc, &observed, &gramian, &l2,
					 gram_buf, gu_full, gv_full);
		loss = observed + gramian + l2;
		CheckDiverged(loss, ep);
		ereport(NOTICE,
				(errmsg("epoch %d/%d: loss %.4f (observed %.4f, gramian %.4f, l2 %.4f) in %.3f s",
						ep, cfg.epochs, loss, observed, gramian, l2,
						INSTR_TIME_GET_DOUBLE(duration))));
		values[0] = Int32GetDatum(ep);
		values[1] = Float8GetDatum(loss);
		values[2] = Float8GetDatum(observed);
		values[3] = Float8GetDatum(gramian);
		values[4] = Float8GetDatum(l2);
		values[5] = Float8GetDatum(INSTR_TIME_GET_DOUBLE(duration));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	WriteSide(&us, k, PG_GETARG_OID(8));
	WriteSide(&it, k, PG_GETARG_OID(9));
	RecsysSpiFinish(spi_level);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(context);
	PG_RETURN_NULL();
}
