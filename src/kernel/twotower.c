/*
 * kernel/twotower.c
 *		Two-tower models: the towers' forward and backward passes, the four
 *		estimates of the Gramian term's gradient and Adam (doc/two-tower.md).
 *
 * One step over a batch B of training pairs (b = 1..|B|, user u_b, item i_b,
 * confidence c_b, score s_b = <u_b, v_b>):
 *
 *	observed	(1/|B|) sum_b c_b (s_b - 1)^2, or c_b log(1 + e^-s_b)
 *	penalty		w <G_u, G_v>_F with G_u = (1/|U|) sum_u u u^T (entities
 *				counted once, as ALS), whose gradient w.r.t. u is
 *				(2w/|U|) G_v u.  A pair's user stands for all users with the
 *				importance weight rho_b = |S| / (|U| n_u) (n_u = pairs of
 *				the user), so that (1/|B|) sum_b rho_b 2w G_v u_b is unbiased
 *				for it.  G_v is replaced by an estimate held constant in the
 *				step (stop-gradient):
 *		exact	recomputed over every user and item at the start of every step
 *		sogram	G <- (1 - alpha) G + alpha (1/|B|) sum_b rho_b u_b u_b^T,
 *				started from the exact Gramians
 *		sagram	a cached output per entity and S = (1/|U|) sum of the cached
 *				outer products; G = S + (1/|B|) sum_b rho_b (u_b u_b^T -
 *				c_b c_b^T) (SAGA), projected onto the PSD cone; then the
 *				batch's entities replace their cache entries
 *		sampled	no estimate: m items j drawn per batch (uniform, or by
 *				pair count) and the penalty estimated by
 *				(w/(|B| m)) sum_b sum_j rho_b s_bj^2 / (|I| q_j)
 *	l2			lambda times the squared norm of every weight and embedding
 *
 * The reported penalty is w <G_u_hat, G_v_hat>_F (sampled: its estimate);
 * the gradient is that of observed + surrogate + l2 where the surrogate is
 * (w/|B|) sum_b [rho_b <u_b, G_v_hat u_b> + rho'_b <v_b, G_u_hat v_b>],
 * whose value (about twice the penalty) is never reported.
 */
#include <math.h>
#include <string.h>

#include "kernel/linalg.h"
#include "kernel/rng.h"
#include "kernel/twotower.h"

#define TT_NORM_EPS 1e-12

/* Walker/Vose alias table over n outcomes */
typedef struct TtAlias
{
	int64_t		n;
	double	   *prob;
	int32_t    *alias;
	int32_t    *small;
	int32_t    *large;
	double	   *p;
} TtAlias;

/* A bump allocator: counts bytes when base is NULL */
typedef struct TtArena
{
	char	   *base;
	size_t		used;
} TtArena;

/* Take bytes (16-aligned) from the arena */
static void *
ArenaTake(TtArena *a, size_t bytes)
{
	size_t		off = (a->used + 15) & ~(size_t) 15;

	a->used = off + bytes;
	return a->base ? a->base + off : NULL;
}

/* Lay out a tower's parameters; returns how many there are */
size_t
TtTowerLayout(TtTower *t, const TtTowerConfig *cfg)
{
	size_t		off = 0;

	memset(t, 0, sizeof(TtTower));
	t->cfg = *cfg;
	t->in_dim = cfg->dense_dim;
	for (int f = 0; f < cfg->nbags; f++)
	{
		t->emb_off[f] = off;
		off += (size_t) cfg->vocab[f] * cfg->emb_dim[f];
		t->in_dim += cfg->emb_dim[f];
	}
	t->nlayers = cfg->nhidden + 1;
	t->width[0] = t->in_dim;
	for (int l = 0; l < cfg->nhidden; l++)
		t->width[l + 1] = cfg->hidden[l];
	t->width[t->nlayers] = cfg->out_dim;
	t->maxwidth = 1;
	for (int l = 0; l <= t->nlayers; l++)
		if (t->width[l] > t->maxwidth)
			t->maxwidth = t->width[l];
	for (int l = 0; l < t->nlayers; l++)
	{
		t->w_off[l] = off;
		off += (size_t) t->width[l + 1] * t->width[l];
		t->b_off[l] = off;
		off += t->width[l + 1];
	}
	t->nparams = off;
	return off;
}

/* Carve a tower's activations out of the arena */
static void
TowerTake(TtTower *t, const TtTowerConfig *cfg, int maxrows, TtArena *a)
{
	TtTowerLayout(t, cfg);
	t->maxrows = maxrows;
	for (int l = 0; l <= t->nlayers; l++)
		t->act[l] = ArenaTake(a, sizeof(double) * maxrows * t->width[l]);
	t->out = ArenaTake(a, sizeof(double) * maxrows * cfg->out_dim);
	t->norm = ArenaTake(a, sizeof(double) * maxrows);
	t->work_a = ArenaTake(a, sizeof(double) * maxrows * t->maxwidth);
	t->work_b = ArenaTake(a, sizeof(double) * maxrows * t->maxwidth);
	t->rows = ArenaTake(a, sizeof(int64_t) * maxrows);
}

/* Bytes of a tower's activations for maxrows rows (not its parameters) */
size_t
TtTowerBytes(const TtTowerConfig *cfg, int maxrows)
{
	TtArena		a = {NULL, 0};
	TtTower		t;

	TowerTake(&t, cfg, maxrows, &a);
	return a.used + 16;
}

/* Lay out a tower in mem (TtTowerBytes bytes); its parameters live elsewhere */
void
TtTowerInit(TtTower *t, const TtTowerConfig *cfg, int maxrows, void *mem)
{
	TtArena		a = {(char *) mem, 0};

	TowerTake(t, cfg, maxrows, &a);
}

/*
 * Draw initial parameters: embeddings N(0, 1/dim), hidden weights
 * N(0, gain/in) (gain 2 for relu, else 1), the output layer N(0, 0.01/in)
 * so that first scores are small; biases 0.
 */
void
TtTowerInitParams(const TtTower *t, double *params, uint64_t seed)
{
	Rng			rng;

	RngInit(&rng, seed);
	memset(params, 0, sizeof(double) * t->nparams);
	for (int f = 0; f < t->cfg.nbags; f++)
	{
		double		sd = 1.0 / sqrt((double) t->cfg.emb_dim[f]);
		size_t		n = (size_t) t->cfg.vocab[f] * t->cfg.emb_dim[f];

		for (size_t j = 0; j < n; j++)
			params[t->emb_off[f] + j] = sd * RngNormal(&rng);
	}
	for (int l = 0; l < t->nlayers; l++)
	{
		double		gain = (l < t->nlayers - 1) ?
			(t->cfg.activation == TT_RELU ? 2.0 : 1.0) : 0.01;
		double		sd = sqrt(gain / t->width[l]);
		size_t		n = (size_t) t->width[l + 1] * t->width[l];

		for (size_t j = 0; j < n; j++)
			params[t->w_off[l] + j] = sd * RngNormal(&rng);
	}
}

/* Run the tower on rows[0..n-1] of in; outputs in t->out, activations kept for backward */
void
TtTowerForward(TtTower *t, const double *params, const TtInputs *in,
			   const int64_t *rows, int n)
{
	const TtTowerConfig *cfg = &t->cfg;
	int			in_dim = t->in_dim;
	int			k = cfg->out_dim;

	if (rows != t->rows)
		memcpy((int64_t *) t->rows, rows, sizeof(int64_t) * n);
	t->nrows = n;

	/* input: dense values, then each bag's mean embedding */
	for (int r = 0; r < n; r++)
	{
		double	   *x = t->act[0] + (size_t) r * in_dim;
		int64_t		row = rows[r];
		int			off = cfg->dense_dim;

		for (int d = 0; d < cfg->dense_dim; d++)
			x[d] = in->dense[row * cfg->dense_dim + d];
		for (int f = 0; f < cfg->nbags; f++)
		{
			int			e = cfg->emb_dim[f];
			int32_t		len = in->bag_len[row * cfg->nbags + f];
			const int32_t *ids = in->bag_ids + in->bag_start[row * cfg->nbags + f];
			const double *emb = params + t->emb_off[f];

			memset(x + off, 0, sizeof(double) * e);
			for (int32_t j = 0; j < len; j++)
			{
				const double *ev = emb + (size_t) ids[j] * e;

				for (int d = 0; d < e; d++)
					x[off + d] += ev[d];
			}
			if (len > 1)
				for (int d = 0; d < e; d++)
					x[off + d] /= len;
			off += e;
		}
	}

	/* layers: act[l+1] = act[l] W^T + b, activation on hidden layers */
	for (int l = 0; l < t->nlayers; l++)
	{
		int			wi = t->width[l];
		int			wo = t->width[l + 1];
		double	   *y = t->act[l + 1];
		const double *b = params + t->b_off[l];

		for (int r = 0; r < n; r++)
			memcpy(y + (size_t) r * wo, b, sizeof(double) * wo);
		LinalgDgemm(n, wo, wi, 1.0, t->act[l], 0, params + t->w_off[l], 1, 1.0, y);
		if (l < t->nlayers - 1 && cfg->activation != TT_LINEAR)
		{
			size_t		m = (size_t) n * wo;

			if (cfg->activation == TT_RELU)
				for (size_t j = 0; j < m; j++)
					y[j] = y[j] > 0.0 ? y[j] : 0.0;
			else
				for (size_t j = 0; j < m; j++)
					y[j] = tanh(y[j]);
		}
	}

	/* output, normalized as torch.nn.functional.normalize does */
	for (int r = 0; r < n; r++)
	{
		const double *o = t->act[t->nlayers] + (size_t) r * k;
		double	   *u = t->out + (size_t) r * k;
		double		s = 0.0;

		if (!cfg->normalize)
		{
			memcpy(u, o, sizeof(double) * k);
			continue;
		}
		for (int d = 0; d < k; d++)
			s += o[d] * o[d];
		t->norm[r] = sqrt(s);
		s = t->norm[r] > TT_NORM_EPS ? t->norm[r] : TT_NORM_EPS;
		for (int d = 0; d < k; d++)
			u[d] = o[d] / s;
	}
}

/* Add the gradient of the last forward pass's rows, given d loss / d out, to grad */
void
TtTowerBackward(TtTower *t, const double *params, double *grad,
				const TtInputs *in, const double *dout)
{
	const TtTowerConfig *cfg = &t->cfg;
	int			n = t->nrows;
	int			k = cfg->out_dim;
	double	   *g = t->work_a;
	double	   *h = t->work_b;

	/* through the normalization: (I - u u^T) dout / |o| */
	for (int r = 0; r < n; r++)
	{
		const double *du = dout + (size_t) r * k;
		double	   *go = g + (size_t) r * k;

		if (!cfg->normalize)
		{
			memcpy(go, du, sizeof(double) * k);
			continue;
		}
		if (t->norm[r] > TT_NORM_EPS)
		{
			const double *u = t->out + (size_t) r * k;
			double		p = 0.0;

			for (int d = 0; d < k; d++)
				p += u[d] * du[d];
			for (int d = 0; d < k; d++)
				go[d] = (du[d] - u[d] * p) / t->norm[r];
		}
		else
			for (int d = 0; d < k; d++)
				go[d] = du[d] / TT_NORM_EPS;
	}

	for (int l = t->nlayers - 1; l >= 0; l--)
	{
		int			wi = t->width[l];
		int			wo = t->width[l + 1];
		double	   *db = grad + t->b_off[l];
		double	   *tmp;

		/* dW += g^T act[l], db += column sums of g */
		LinalgDgemm(wo, wi, n, 1.0, g, 1, t->act[l], 0, 1.0, grad + t->w_off[l]);
		for (int r = 0; r < n; r++)
			for (int j = 0; j < wo; j++)
				db[j] += g[(size_t) r * wo + j];
		if (l == 0 && cfg->nbags == 0)
			break;
		/* d act[l] = g W */
		LinalgDgemm(n, wi, wo, 1.0, g, 0, params + t->w_off[l], 0, 0.0, h);
		if (l > 0 && cfg->activation != TT_LINEAR)
		{
			const double *a = t->act[l];
			size_t		m = (size_t) n * wi;

			if (cfg->activation == TT_RELU)
				for (size_t j = 0; j < m; j++)
					h[j] = a[j] > 0.0 ? h[j] : 0.0;
			else
				for (size_t j = 0; j < m; j++)
					h[j] *= 1.0 - a[j] * a[j];
		}
		tmp = g;
		g = h;
		h = tmp;
	}
	if (cfg->nbags == 0)
		return;

	/* g holds d input: spread each bag's part over its ids */
	for (int r = 0; r < n; r++)
	{
		int64_t		row = t->rows[r];
		int			off = cfg->dense_dim;
		const double *dx = g + (size_t) r * t->in_dim;

		for (int f = 0; f < cfg->nbags; f++)
		{
			int			e = cfg->emb_dim[f];
			int32_t		len = in->bag_len[row * cfg->nbags + f];
			const int32_t *ids = in->bag_ids + in->bag_start[row * cfg->nbags + f];
			double	   *ge = grad + t->emb_off[f];
			double		scale = len > 1 ? 1.0 / len : 1.0;

			for (int32_t j = 0; j < len; j++)
			{
				double	   *gv = ge + (size_t) ids[j] * e;

				for (int d = 0; d < e; d++)
					gv[d] += scale * dx[off + d];
			}
			off += e;
		}
	}
}

/*
 * g = (1/n) sum over every row of in of out out^T (full k x k); the outputs
 * are also copied to cache ([n, k]) when it is not NULL.  Uses the tower's
 * activations, so call it only between steps.
 */
void
TtTowerGramian(TtTower *t, const double *params, const TtInputs *in,
			   double *g, double *cache)
{
	int			k = t->cfg.out_dim;
	int64_t    *rows = (int64_t *) t->rows;

	memset(g, 0, sizeof(double) * k * k);
	for (int64_t start = 0; start < in->n; start += t->maxrows)
	{
		int			n = (int) ((in->n - start) < t->maxrows ? (in->n - start) : t->maxrows);
		for (int r = 0; r < n; r++)
			rows[r] = start + r;
		if (t->check)
			t->check();
		TtTowerForward(t, params, in, rows, n);
		LinalgDgemm(k, k, n, 1.0 / (double) in->n, t->out, 1, t->out, 0, 1.0, g);
		if (cache)
			memcpy(cache + (size_t) start * k, t->out, sizeof(double) * n * k);
	}
}

/* Fill the alias table for weights w[0..n-1] (positive) */
static void
AliasBuild(TtAlias *t, const double *q)
{
	int64_t		n = t->n;
	int64_t		ns = 0,
				nl = 0;

	for (int64_t j = 0; j < n; j++)
	{
		t->p[j] = q[j] * n;
		if (t->p[j] < 1.0)
			t->small[ns++] = (int32_t) j;
		else
			t->large[nl++] = (int32_t) j;
	}
	while (ns > 0 && nl > 0)
	{
		int32_t		s = t->small[--ns];
		int32_t		l = t->large[--nl];

		t->prob[s] = t->p[s];
		t->alias[s] = l;
		t->p[l] = (t->p[l] + t->p[s]) - 1.0;
		if (t->p[l] < 1.0)
			t->small[ns++] = l;
		else
			t->large[nl++] = l;
	}
	while (nl > 0)
		t->prob[t->large[--nl]] = 1.0;
	while (ns > 0)
		t->prob[t->small[--ns]] = 1.0;
}

/* Draw an outcome of the alias table */
static int32_t
AliasDraw(const TtAlias *t, Rng *rng)
{
	int32_t		j = (int32_t) RngBelow(rng, (uint64_t) t->n);

	return RngUniform(rng) < t->prob[j] ? j : t->alias[j];
}

/* Carve a trainer out of the arena */
static void
TrainerTake(TtTrainer *t, const TtTowerConfig *ucfg, const TtTowerConfig *icfg,
			const TtOptions *opt, int64_t nusers, int64_t nitems, TtArena *a)
{
	int			k = ucfg->out_dim;
	int			B = opt->batch_size;
	int			m = opt->method == TT_SAMPLED ? opt->negatives : 0;
	int			rows = B > m ? B : m;

	memset(t, 0, sizeof(TtTrainer));
	t->opt = *opt;
	t->k = k;
	TowerTake(&t->user, ucfg, B, a);
	TowerTake(&t->item, icfg, rows, a);
	t->nparams = t->user.nparams + t->item.nparams;
	t->params = ArenaTake(a, sizeof(double) * t->nparams);
	t->grad = ArenaTake(a, sizeof(double) * t->nparams);
	t->adam_m = ArenaTake(a, sizeof(double) * t->nparams);
	t->adam_v = ArenaTake(a, sizeof(double) * t->nparams);
	t->gu_hat = ArenaTake(a, sizeof(double) * k * k);
	t->gv_hat = ArenaTake(a, sizeof(double) * k * k);
	t->batch_g = ArenaTake(a, sizeof(double) * k * k);
	t->tmp_g = ArenaTake(a, sizeof(double) * k * k);
	t->rng = ArenaTake(a, sizeof(Rng));
	t->urows = ArenaTake(a, sizeof(int64_t) * B);
	t->irows = ArenaTake(a, sizeof(int64_t) * rows);
	t->u = ArenaTake(a, sizeof(double) * B * k);
	t->v = ArenaTake(a, sizeof(double) * rows * k);
	t->du = ArenaTake(a, sizeof(double) * B * k);
	t->dv = ArenaTake(a, sizeof(double) * rows * k);
	t->wu = ArenaTake(a, sizeof(double) * B);
	t->wv = ArenaTake(a, sizeof(double) * B);
	if (opt->method == TT_SAGRAM)
	{
		t->su = ArenaTake(a, sizeof(double) * k * k);
		t->sv = ArenaTake(a, sizeof(double) * k * k);
		t->cache_u = ArenaTake(a, sizeof(double) * nusers * k);
		t->cache_v = ArenaTake(a, sizeof(double) * nitems * k);
		t->stamp_u = ArenaTake(a, sizeof(int64_t) * nusers);
		t->stamp_v = ArenaTake(a, sizeof(int64_t) * nitems);
		t->psd_lwork = LinalgPsdProjectWorkSize(k, &t->psd_liwork);
		t->psd_work = ArenaTake(a, sizeof(double) * t->psd_lwork);
		t->psd_iwork = ArenaTake(a, sizeof(int) * t->psd_liwork);
	}
	if (opt->method == TT_SAMPLED)
	{
		t->neg = ArenaTake(a, sizeof(int32_t) * m);
		t->scores = ArenaTake(a, sizeof(double) * B * m);
		t->neg_q = ArenaTake(a, sizeof(double) * nitems);
		t->alias = ArenaTake(a, sizeof(TtAlias));
		if (a->base)
			t->alias->n = nitems;
		{
			double	   *prob = ArenaTake(a, sizeof(double) * nitems);
			int32_t    *alias = ArenaTake(a, sizeof(int32_t) * nitems);
			int32_t    *small = ArenaTake(a, sizeof(int32_t) * nitems);
			int32_t    *large = ArenaTake(a, sizeof(int32_t) * nitems);
			double	   *p = ArenaTake(a, sizeof(double) * nitems);

			if (a->base)
			{
				t->alias->prob = prob;
				t->alias->alias = alias;
				t->alias->small = small;
				t->alias->large = large;
				t->alias->p = p;
			}
		}
	}
}

/* Bytes a trainer needs: activations, parameters, Adam moments and the method's state */
size_t
TtTrainerBytes(const TtTowerConfig *ucfg, const TtTowerConfig *icfg,
			   const TtOptions *opt, int64_t nusers, int64_t nitems)
{
	TtArena		a = {NULL, 0};
	TtTrainer	t;

	TrainerTake(&t, ucfg, icfg, opt, nusers, nitems, &a);
	return a.used + 16;
}

/* Lay out a trainer in mem (TtTrainerBytes bytes); parameters are drawn from the seed */
void
TtTrainerInit(TtTrainer *t, const TtTowerConfig *ucfg, const TtTowerConfig *icfg,
			  const TtOptions *opt, const TtData *data, void *mem)
{
	TtArena		a = {(char *) mem, 0};

	TrainerTake(t, ucfg, icfg, opt, data->users->n, data->items->n, &a);
	t->data = data;
	RngInit(t->rng, opt->seed);
	TtTowerInitParams(&t->user, t->params, RngHash64(opt->seed));
	TtTowerInitParams(&t->item, t->params + t->user.nparams, RngHash64(opt->seed + 1));
	memset(t->grad, 0, sizeof(double) * t->nparams);
	memset(t->adam_m, 0, sizeof(double) * t->nparams);
	memset(t->adam_v, 0, sizeof(double) * t->nparams);
	t->steps = 0;
}

/*
 * Start training from the current parameters: the exact Gramians as the
 * first estimates (sogram, sagram: with every entity's output cached) and
 * the negatives' distribution (sampled).
 */
void
TtTrainerStart(TtTrainer *t)
{
	const TtData *d = t->data;
	double	   *pu = t->params;
	double	   *pv = t->params + t->user.nparams;

	if (t->opt.method == TT_SAGRAM)
	{
		TtTowerGramian(&t->user, pu, d->users, t->su, t->cache_u);
		TtTowerGramian(&t->item, pv, d->items, t->sv, t->cache_v);
		memcpy(t->gu_hat, t->su, sizeof(double) * t->k * t->k);
		memcpy(t->gv_hat, t->sv, sizeof(double) * t->k * t->k);
		memset(t->stamp_u, 0, sizeof(int64_t) * d->users->n);
		memset(t->stamp_v, 0, sizeof(int64_t) * d->items->n);
	}
	else if (t->opt.method != TT_SAMPLED)
	{
		TtTowerGramian(&t->user, pu, d->users, t->gu_hat, NULL);
		TtTowerGramian(&t->item, pv, d->items, t->gv_hat, NULL);
	}
	else
	{
		int64_t		n = d->items->n;
		double		total = 0.0;

		for (int64_t j = 0; j < n; j++)
		{
			t->neg_q[j] = t->opt.popularity ? (double) d->item_count[j] : 1.0;
			total += t->neg_q[j];
		}
		for (int64_t j = 0; j < n; j++)
			t->neg_q[j] /= total;
		AliasBuild(t->alias, t->neg_q);
	}
}

/* w * <A, B>_F of two full k x k matrices */
static double
Frobenius(int k, const double *a, const double *b)
{
	double		s = 0.0;

	for (int j = 0; j < k * k; j++)
		s += a[j] * b[j];
	return s;
}

/* g = (1/B) sum_b w_b x_b x_b^T */
static void
WeightedGramian(int k, int B, const double *x, const double *w, double *g)
{
	memset(g, 0, sizeof(double) * k * k);
	for (int b = 0; b < B; b++)
	{
		double		s = w[b] / B;

		for (int i = 0; i < k; i++)
			for (int j = 0; j < k; j++)
				g[i * k + j] += s * x[b * k + i] * x[b * k + j];
	}
}

/* dx_b += scale_b * G x_b for the B rows of x */
static void
AddGramianGradient(int k, int B, const double *g, const double *x, const double *scale,
				   double *dx)
{
	for (int b = 0; b < B; b++)
		for (int i = 0; i < k; i++)
		{
			double		s = 0.0;

			for (int j = 0; j < k; j++)
				s += g[i * k + j] * x[b * k + j];
			dx[b * k + i] += scale[b] * s;
		}
}

/* sagram: the batch's entities replace their cached outputs in S and the cache */
static void
SagramRefresh(int k, int B, int64_t n, const int64_t *rows, const double *x,
			  double *cache, double *s, int64_t *stamp, int64_t step)
{
	for (int b = 0; b < B; b++)
	{
		int64_t		e = rows[b];
		double	   *c = cache + e * k;
		const double *xb = x + (size_t) b * k;

		if (stamp[e] == step)
			continue;			/* an entity drawn twice moves once */
		stamp[e] = step;
		for (int i = 0; i < k; i++)
			for (int j = 0; j < k; j++)
				s[i * k + j] += (xb[i] * xb[j] - c[i] * c[j]) / (double) n;
		memcpy(c, xb, sizeof(double) * k);
	}
}

/* The step's forward pass: exact Gramians, the batch rows, both towers' outputs into t->u, t->v */
static void
StepForward(TtTrainer *t, const int64_t *pairs, int B)
{
	const TtData *d = t->data;
	const TtOptions *o = &t->opt;
	int			k = t->k;
	double	   *pu = t->params;
	double	   *pv = t->params + t->user.nparams;

	if (o->method == TT_EXACT)
	{
		TtTowerGramian(&t->user, pu, d->users, t->gu_hat, NULL);
		TtTowerGramian(&t->item, pv, d->items, t->gv_hat, NULL);
	}

	for (int b = 0; b < B; b++)
	{
		t->urows[b] = d->pu[pairs[b]];
		t->irows[b] = d->pi[pairs[b]];
	}
	TtTowerForward(&t->user, pu, d->users, t->urows, B);
	TtTowerForward(&t->item, pv, d->items, t->irows, B);
	memcpy(t->u, t->user.out, sizeof(double) * B * k);
	memcpy(t->v, t->item.out, sizeof(double) * B * k);
}

/* The observed term: its mean loss over the batch, its gradients into t->du, t->dv */
static double
ObservedTerm(TtTrainer *t, const int64_t *pairs, int B)
{
	const TtData *d = t->data;
	const TtOptions *o = &t->opt;
	int			k = t->k;
	double		obs = 0.0;

	for (int b = 0; b < B; b++)
	{
		const double *ub = t->u + (size_t) b * k;
		const double *vb = t->v + (size_t) b * k;
		double		c = d->conf[pairs[b]];
		double		s = 0.0,
					ds;

		for (int j = 0; j < k; j++)
			s += ub[j] * vb[j];
		if (o->loss == TT_LOSS_SQUARED)
		{
			obs += c * (s - 1.0) * (s - 1.0);
			ds = 2.0 * c * (s - 1.0) / B;
		}
		else
		{
			/* log(1 + e^-s) and its derivative -1/(1 + e^s), stably */
			obs += c * (s > 0 ? log1p(exp(-s)) : -s + log1p(exp(s)));
			ds = -c / (1.0 + exp(s)) / B;
		}
		for (int j = 0; j < k; j++)
		{
			t->du[b * k + j] = ds * vb[j];
			t->dv[b * k + j] = ds * ub[j];
		}
	}
	obs /= B;
	return obs;
}

/*
 * The Gramian term of the full-batch methods (exact, SOGram, SAGram): its
 * penalty, its gradients, and the item tower's backward pass
 */
static double
GramianTerm(TtTrainer *t, int B)
{
	const TtData *d = t->data;
	const TtOptions *o = &t->opt;
	int			k = t->k;
	double		w = o->gramian_weight;
	double	   *pv = t->params + t->user.nparams;
	double	   *gv = t->grad + t->user.nparams;
	double		pen;
	double		ratio_u = (double) d->npairs / (double) d->users->n;
	double		ratio_v = (double) d->npairs / (double) d->items->n;
	double	   *wu = t->wu;
	double	   *wv = t->wv;

	for (int b = 0; b < B; b++)
	{
		wu[b] = ratio_u / d->user_count[t->urows[b]];
		wv[b] = ratio_v / d->item_count[t->irows[b]];
	}
	if (o->method == TT_SOGRAM)
	{
		WeightedGramian(k, B, t->u, wu, t->batch_g);
		for (int j = 0; j < k * k; j++)
			t->gu_hat[j] = (1.0 - o->alpha) * t->gu_hat[j] + o->alpha * t->batch_g[j];
		WeightedGramian(k, B, t->v, wv, t->batch_g);
		for (int j = 0; j < k * k; j++)
			t->gv_hat[j] = (1.0 - o->alpha) * t->gv_hat[j] + o->alpha * t->batch_g[j];
	}
	else if (o->method == TT_SAGRAM)
	{
		for (int side = 0; side < 2; side++)
		{
			const double *x = side == 0 ? t->u : t->v;
			const int64_t *rows = side == 0 ? t->urows : t->irows;
			const double *cache = side == 0 ? t->cache_u : t->cache_v;
			double	   *s = side == 0 ? t->su : t->sv;
			double	   *ghat = side == 0 ? t->gu_hat : t->gv_hat;
			double	   *wts = side == 0 ? wu : wv;
			/* G = S + (1/B) sum_b rho_b (x x^T - c c^T) */
			memset(t->batch_g, 0, sizeof(double) * k * k);
			for (int b = 0; b < B; b++)
			{
				const double *xb = x + (size_t) b * k;
				const double *cb = cache + rows[b] * k;
				double		sc = wts[b] / B;

				for (int i = 0; i < k; i++)
					for (int j = 0; j < k; j++)
						t->batch_g[i * k + j] += sc * (xb[i] * xb[j] - cb[i] * cb[j]);
			}
			for (int j = 0; j < k * k; j++)
				ghat[j] = s[j] + t->batch_g[j];
			LinalgPsdProject(k, ghat, t->psd_work, t->psd_lwork, t->psd_iwork, t->psd_liwork);
		}
		SagramRefresh(k, B, d->users->n, t->urows, t->u, t->cache_u, t->su,
					  t->stamp_u, t->steps);
		SagramRefresh(k, B, d->items->n, t->irows, t->v, t->cache_v, t->sv,
					  t->stamp_v, t->steps);
	}
	pen = w * Frobenius(k, t->gu_hat, t->gv_hat);
	for (int b = 0; b < B; b++)
	{
		wu[b] *= 2.0 * w / B;
		wv[b] *= 2.0 * w / B;
	}
	AddGramianGradient(k, B, t->gv_hat, t->u, wu, t->du);
	AddGramianGradient(k, B, t->gu_hat, t->v, wv, t->dv);
	TtTowerBackward(&t->item, pv, gv, d->items, t->dv);
	return pen;
}

/* The sampled Gramian term: its penalty over drawn negatives, gradients, item backward passes */
static double
SampledTerm(TtTrainer *t, int B)
{
	const TtData *d = t->data;
	const TtOptions *o = &t->opt;
	int			k = t->k;
	double		w = o->gramian_weight;
	double	   *pv = t->params + t->user.nparams;
	double	   *gv = t->grad + t->user.nparams;
	double		pen = 0.0;
	double		ratio_u = (double) d->npairs / (double) d->users->n;
	int			m = o->negatives;
	double		nitems = (double) d->items->n;

	/* the batch's items first: their activations are about to be replaced */
	TtTowerBackward(&t->item, pv, gv, d->items, t->dv);
	for (int j = 0; j < m; j++)
	{
		t->neg[j] = AliasDraw(t->alias, t->rng);
		t->irows[j] = t->neg[j];
	}
	TtTowerForward(&t->item, pv, d->items, t->irows, m);
	LinalgDgemm(B, m, k, 1.0, t->u, 0, t->item.out, 1, 0.0, t->scores);
	memset(t->dv, 0, sizeof(double) * m * k);
	for (int b = 0; b < B; b++)
	{
		double		rb = ratio_u / d->user_count[t->urows[b]];

		for (int j = 0; j < m; j++)
		{
			double		s = t->scores[b * m + j];
			double		iw = rb / (nitems * t->neg_q[t->neg[j]]) / ((double) B * m);
			double		ds = 2.0 * w * iw * s;

			pen += w * iw * s * s;
			for (int i = 0; i < k; i++)
			{
				t->du[b * k + i] += ds * t->item.out[j * k + i];
				t->dv[j * k + i] += ds * t->u[b * k + i];
			}
		}
	}
	TtTowerBackward(&t->item, pv, gv, d->items, t->dv);
	return pen;
}

/* The l2 term on weights and embeddings: its value, its gradient added to t->grad */
static double
L2Term(TtTrainer *t)
{
	const TtOptions *o = &t->opt;
	double	   *pu = t->params;
	double	   *pv = t->params + t->user.nparams;
	double	   *gu = t->grad;
	double	   *gv = t->grad + t->user.nparams;
	double		l2 = 0.0;

	if (o->l2 > 0.0)
	{
		for (int side = 0; side < 2; side++)
		{
			const TtTower *tw = side == 0 ? &t->user : &t->item;
			double	   *p = side == 0 ? pu : pv;
			double	   *g = side == 0 ? gu : gv;

			for (int f = 0; f < tw->cfg.nbags; f++)
			{
				size_t		n = (size_t) tw->cfg.vocab[f] * tw->cfg.emb_dim[f];

				for (size_t j = 0; j < n; j++)
				{
					double		x = p[tw->emb_off[f] + j];

					l2 += x * x;
					g[tw->emb_off[f] + j] += 2.0 * o->l2 * x;
				}
			}
			for (int l = 0; l < tw->nlayers; l++)
			{
				size_t		n = (size_t) tw->width[l + 1] * tw->width[l];

				for (size_t j = 0; j < n; j++)
				{
					double		x = p[tw->w_off[l] + j];

					l2 += x * x;
					g[tw->w_off[l] + j] += 2.0 * o->l2 * x;
				}
			}
		}
		l2 *= o->l2;
	}
	return l2;
}

/*
 * One step over the pairs pairs[0..B-1] (indices into the data): the loss
 * and the gradient in t->grad (Adam is TtAdamStep).  B <= batch_size.
 */
void
TtTrainStep(TtTrainer *t, const int64_t *pairs, int B, TtStepStats *stats)
{
	const TtData *d = t->data;
	double	   *pu = t->params;
	double	   *gu = t->grad;
	double		obs,
				pen,
				l2;

	memset(t->grad, 0, sizeof(double) * t->nparams);
	t->steps++;

	StepForward(t, pairs, B);
	obs = ObservedTerm(t, pairs, B);
	if (t->opt.method != TT_SAMPLED)
		pen = GramianTerm(t, B);
	else
		pen = SampledTerm(t, B);
	TtTowerBackward(&t->user, pu, gu, d->users, t->du);
	l2 = L2Term(t);
	stats->observed = obs;
	stats->penalty = pen;
	stats->l2 = l2;
	stats->loss = obs + pen + l2;
}

/* One Adam step (PyTorch's torch.optim.Adam, no weight decay) on t->grad */
void
TtAdamStep(TtTrainer *t)
{
	const TtOptions *o = &t->opt;
	double		bc1 = 1.0 - pow(o->beta1, (double) t->steps);
	double		bc2 = 1.0 - pow(o->beta2, (double) t->steps);
	double		step = o->learning_rate / bc1;
	double		sbc2 = sqrt(bc2);

	for (size_t j = 0; j < t->nparams; j++)
	{
		double		g = t->grad[j];

		t->adam_m[j] = o->beta1 * t->adam_m[j] + (1.0 - o->beta1) * g;
		t->adam_v[j] = o->beta2 * t->adam_v[j] + (1.0 - o->beta2) * g * g;
		t->params[j] -= step * t->adam_m[j] / (sqrt(t->adam_v[j]) / sbc2 + o->eps);
	}
}

/* The exact penalty w <G_u, G_v>_F at the current parameters (uses gu_hat's neighbours as scratch) */
double
TtExactPenalty(TtTrainer *t)
{
	TtTowerGramian(&t->user, t->params, t->data->users, t->batch_g, NULL);
	TtTowerGramian(&t->item, t->params + t->user.nparams, t->data->items, t->tmp_g, NULL);
	return t->opt.gramian_weight * Frobenius(t->k, t->batch_g, t->tmp_g);
}
