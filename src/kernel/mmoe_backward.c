/*
 * kernel/mmoe_backward.c
 *		Training kernel of MMoE models (see mmoe_backward.h): forward pass
 *		with saved activations, backward pass through every tensor with one
 *		sgemm per layer and batch, losses and Adam.  No PostgreSQL and no
 *		allocation here.
 *
 * Gradients are exact for the function computed (the top-k selection and
 * the ReLU kinks are treated as PyTorch's autograd treats them: the
 * selection is a constant, the threshold values of the load estimate carry
 * gradient to the noisy logits they came from).
 */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernel/linalg.h"
#include "kernel/mmoe_backward.h"

#define TRAIN_ALIGN 64
#define NOISE_FLOOR 1e-2
#define CV_EPS 1e-10

#define Max(a, b) ((a) > (b) ? (a) : (b))

/* Get the bytes of n elements of size elem, rounded up to a cache line */
static size_t
Aligned(size_t n, size_t elem)
{
	return (n * elem + TRAIN_ALIGN - 1) / TRAIN_ALIGN * TRAIN_ALIGN;
}

/* Get the number of tensors the trainer keeps for a model */
static int
CountTensors(const MmoeModel *m, const MmoeTrainOptions *opt)
{
	int			n = m->nexperts * m->nlayers * 2;

	for (int t = 0; t < m->ntasks; t++)
		n += 2 + (m->gate == MMOE_GATE_NOISY_TOP_K ? 1 : 0) + 2 * (m->tasks[t].nhidden + 1);
	n += m->ncategorical + m->nbags;
	if (m->context_dim > 0)
		n += 2;
	if (m->positions > 0)
		n++;
	return n + 1;				/* log variances */
}

/* Append one tensor to the list; returns the next free offset */
static size_t
AddTensor(MmoeTensor *list, int *n, size_t off, int ndim, int d0, int d1, bool exported,
		  const char *fmt, int a, int b)
{
	MmoeTensor *x;
	size_t		size = (size_t) d0 * (ndim == 2 ? (size_t) d1 : 1);

	if (list == NULL)
	{
		(*n)++;
		return off + (size + 15) / 16 * 16;
	}
	x = &list[(*n)++];
	snprintf(x->name, sizeof(x->name), fmt, a, b);
	x->ndim = ndim;
	x->dims[0] = d0;
	x->dims[1] = ndim == 2 ? d1 : 0;
	x->size = (size_t) d0 * (ndim == 2 ? (size_t) d1 : 1);
	x->offset = off;
	x->exported = exported;
	/* keep every tensor on its own 16-float boundary */
	return off + (x->size + 15) / 16 * 16;
}

/* Fill the tensor list of a model (names, shapes, offsets); returns the floats needed */
static size_t
ListTensors(const MmoeModel *m, const MmoeTrainOptions *opt, MmoeTensor *list)
{
	size_t		off = 0;
	int			n = 0;

	for (int i = 0; i < m->nexperts; i++)
		for (int l = 0; l < m->nlayers; l++)
		{
			const MmoeLayer *ly = &m->experts[i * m->nlayers + l];

			off = AddTensor(list, &n, off, 2, ly->out, ly->in, true, "experts.%d.%d.weight", i, l);
			off = AddTensor(list, &n, off, 1, ly->out, 0, true, "experts.%d.%d.bias", i, l);
		}
	for (int t = 0; t < m->ntasks; t++)
	{
		const MmoeTask *task = &m->tasks[t];

		off = AddTensor(list, &n, off, 2, m->nexperts, m->in_width, true, "gates.%d.weight", t, 0);
		off = AddTensor(list, &n, off, 1, m->nexperts, 0, true, "gates.%d.bias", t, 0);
		if (m->gate == MMOE_GATE_NOISY_TOP_K)
			off = AddTensor(list, &n, off, 2, m->nexperts, m->in_width, true,
							"gates.%d.noise.weight", t, 0);
		for (int l = 0; l <= task->nhidden; l++)
		{
			off = AddTensor(list, &n, off, 2, task->tower[l].out, task->tower[l].in, true,
							"towers.%d.%d.weight", t, l);
			off = AddTensor(list, &n, off, 1, task->tower[l].out, 0, true, "towers.%d.%d.bias", t, l);
		}
	}
	for (int c = 0; c < m->ncategorical; c++)
	{
		off = AddTensor(list, &n, off, 2, m->categorical[c].vocab, m->categorical[c].dim, true,
						"embeddings.%.*s.weight", MMOE_MAX_NAME, 0);
		/* the name is a string, not a number: write it again */
		if (list)
			snprintf(list[n - 1].name, sizeof(list[n - 1].name), "embeddings.%s.weight",
				 m->categorical[c].name);
	}
	for (int c = 0; c < m->nbags; c++)
	{
		off = AddTensor(list, &n, off, 2, m->bags[c].vocab, m->bags[c].dim, true,
						"embeddings.%.*s.weight", MMOE_MAX_NAME, 0);
		if (list)
			snprintf(list[n - 1].name, sizeof(list[n - 1].name), "embeddings.%s.weight",
					 m->bags[c].name);
	}
	if (m->context_dim > 0)
	{
		off = AddTensor(list, &n, off, 2, m->expert_out, m->context_dim, true, "latent_cross.weight", 0, 0);
		off = AddTensor(list, &n, off, 1, m->expert_out, 0, true, "latent_cross.bias", 0, 0);
	}
	if (m->positions > 0)
		off = AddTensor(list, &n, off, 2, m->positions + 1, m->ntasks, true,
						"shallow.position.weight", 0, 0);
	off = AddTensor(list, &n, off, 1, m->ntasks, 0, false, "log_vars", 0, 0);
	assert(n == CountTensors(m, opt));
	return off;
}

/* Get the total width of a task's hidden tower layers */
static int
TowerWidth(const MmoeTask *task)
{
	int			w = 0;

	for (int l = 0; l < task->nhidden; l++)
		w += task->tower[l].out;
	return w;
}

/* Get the total width of one expert's layers */
static int
ExpertWidth(const MmoeModel *m)
{
	int			w = 0;

	for (int l = 0; l < m->nlayers; l++)
		w += m->experts[l].out;
	return w;
}

/* Lay out the trainer in base (NULL: only count); returns the bytes needed */
static size_t
Layout(const MmoeModel *m, const MmoeTrainOptions *opt, int rows, MmoeTrainer *t, char *base)
{
	size_t		off = 0;
	size_t		B = (size_t) (rows > 0 ? rows : 1);
	size_t		n = (size_t) m->nexperts;
	size_t		h = (size_t) m->expert_out;
	size_t		nt = (size_t) CountTensors(m, opt);
	size_t		np;
	size_t		tw = 1;
	size_t		work = (size_t) Max(Max(m->expert_out, m->max_width), m->in_width);
	for (int k = 0; k < m->ntasks; k++)
		tw = Max(tw, (size_t) TowerWidth(&m->tasks[k]));

#define CARVE(field, type, count) \
	do { \
		if (t) \
			t->field = (type *) (base + off); \
		off += Aligned((count), sizeof(type)); \
	} while (0)

	/* the tensor list first: its size gives the parameter count */
	CARVE(tensors, MmoeTensor, nt);
	np = ListTensors(m, opt, t ? t->tensors : NULL);
	np = Max(np, 1);
	CARVE(params, float, np);
	CARVE(grad, float, np);
	CARVE(adam_m, float, np);
	CARVE(adam_v, float, np);
	CARVE(noise_w, float *, (size_t) m->ntasks);

	CARVE(z, float, B * m->in_width);
	CARVE(ids, int32_t, B * Max(m->ncategorical, 1));
	CARVE(bag_start, int64_t, B * Max(m->nbags, 1));
	CARVE(bag_len, int32_t, B * Max(m->nbags, 1));
	CARVE(context, float, B * Max(m->context_dim, 1));
	CARVE(display_position, int32_t, B);
	CARVE(labels, float, B * m->ntasks);
	CARVE(has_label, uint8_t, B * m->ntasks);
	CARVE(key, uint64_t, B);

	CARVE(eout, float, B * n * ExpertWidth(m));
	CARVE(dE, float, B * n * h);
	CARVE(cross, float, B * h);
	CARVE(dcross, float, B * h);
	CARVE(dz, float, B * m->in_width);
	CARVE(clean, float, B * n);
	CARVE(raw, float, B * n);
	CARVE(sigma, float, B * n);
	CARVE(noise, float, B * n);
	CARVE(noisy, float, B * n);
	CARVE(g, float, B * n);
	CARVE(gp, float, B * n);
	CARVE(dg, float, B * n);
	CARVE(dlog, float, B * n);
	CARVE(draw, float, B * n);
	CARVE(keep, uint8_t, B * n);
	CARVE(sel, uint8_t, B * n);
	CARVE(thr, int32_t, B * 2);
	CARVE(renorm, uint8_t, B);
	CARVE(display_position_row, int32_t, B);
	CARVE(mix0, float, B * h);
	CARVE(mix, float, B * h);
	CARVE(tout, float, B * tw);
	CARVE(logit, float, B);
	CARVE(dlogit, float, B);
	CARVE(work_a, float, B * work);
	CARVE(work_b, float, B * work);
	CARVE(imp, double, n);
	CARVE(load, double, n);
	CARVE(dimp, double, n);
	CARVE(dload, double, n);
#undef CARVE
	if (t)
		t->nparams = np;
	return off;
}

/* Get the bytes MmoeTrainerInit needs for batches of up to maxrows rows */
size_t
MmoeTrainerBytes(const MmoeModel *m, const MmoeTrainOptions *opt, int maxrows)
{
	return Layout(m, opt, maxrows, NULL, NULL) + TRAIN_ALIGN;
}

/* Get the number of parameters (floats, tensors padded) a trainer keeps for a model */
size_t
MmoeTrainerParams(const MmoeModel *m, const MmoeTrainOptions *opt)
{
	size_t		np = ListTensors(m, opt, NULL);

	return np > 0 ? np : 1;
}

/*
 * Lay out a trainer in mem (MmoeTrainerBytes bytes) and point the model's
 * layers into its parameter vector; parameters and Adam moments start at
 * zero (the caller initialises the parameters).
 */
void
MmoeTrainerInit(MmoeTrainer *t, MmoeModel *m, const MmoeTrainOptions *opt, int maxrows, void *mem)
{
	uintptr_t	p = ((uintptr_t) mem + TRAIN_ALIGN - 1) & ~(uintptr_t) (TRAIN_ALIGN - 1);
	int			k = 0;

	memset(t, 0, sizeof(*t));
	t->m = m;
	t->opt = *opt;
	t->maxrows = maxrows;
	t->ntensors = CountTensors(m, opt);
	Layout(m, opt, maxrows, t, (char *) p);
	memset(t->params, 0, sizeof(float) * t->nparams);
	memset(t->adam_m, 0, sizeof(float) * t->nparams);
	memset(t->adam_v, 0, sizeof(float) * t->nparams);

	/* bind the layers in the order ListTensors gave */
#define NEXT() (t->params + t->tensors[k++].offset)
	for (int i = 0; i < m->nexperts; i++)
		for (int l = 0; l < m->nlayers; l++)
		{
			m->experts[i * m->nlayers + l].w = NEXT();
			m->experts[i * m->nlayers + l].b = NEXT();
		}
	for (int tk = 0; tk < m->ntasks; tk++)
	{
		MmoeTask   *task = &m->tasks[tk];

		task->gate.w = NEXT();
		task->gate.b = NEXT();
		t->noise_w[tk] = m->gate == MMOE_GATE_NOISY_TOP_K ? NEXT() : NULL;
		for (int l = 0; l <= task->nhidden; l++)
		{
			task->tower[l].w = NEXT();
			task->tower[l].b = NEXT();
		}
	}
	for (int c = 0; c < m->ncategorical; c++)
		m->categorical[c].table = NEXT();
	for (int c = 0; c < m->nbags; c++)
		m->bags[c].table = NEXT();
	if (m->context_dim > 0)
	{
		m->latent.w = NEXT();
		m->latent.b = NEXT();
	}
	if (m->positions > 0)
		m->shallow = NEXT();
	t->log_vars = NEXT();
#undef NEXT
	m->fused.w = NULL;			/* scoring through the trainer's model takes the batch path */
	t->slots = m->dropout_units + m->nexperts + 1 + 2 * m->ntasks * m->nexperts;
}

/* Get the largest batch (<= maxrows) whose trainer fits in MMOE_SCRATCH_MAX_BYTES of activations */
int
MmoeTrainerMaxRows(const MmoeModel *m, const MmoeTrainOptions *opt, int maxrows)
{
	size_t		fixed = Layout(m, opt, 1, NULL, NULL);
	size_t		per = Layout(m, opt, 2, NULL, NULL) - fixed;
	size_t		cap;

	if (per == 0)
		per = 1;
	cap = 4 * (size_t) MMOE_SCRATCH_MAX_BYTES / per;
	if (maxrows < 1)
		maxrows = 1;
	if ((size_t) maxrows > cap)
		maxrows = cap > 0 ? (int) cap : 1;
	return maxrows;
}

/* Get the standard normal draw of slot pair n, n + 1 of a seeded stream (Box-Muller) */
double
MmoeGateNoise(uint64_t seed, uint64_t n)
{
	double		u1 = MmoeDropoutUniform(seed, n);
	double		u2 = MmoeDropoutUniform(seed, n + 1);

	return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

/* Get the gradient slot of a parameter pointer */
static inline float *
Grad(MmoeTrainer *t, const float *param)
{
	return t->grad + (param - t->params);
}

/* Compute y = x W^T + b for rows of x with one sgemm */
static void
DenseForward(int rows, const MmoeLayer *l, const float *x, float *y)
{
	for (int r = 0; r < rows; r++)
		memcpy(y + (size_t) r * l->out, l->b, sizeof(float) * l->out);
	LinalgSgemm(rows, l->out, l->in, 1.0f, x, 0, l->w, 1, 1.0f, y);
}

/*
 * Accumulate the gradients of layer l for output gradients dy [rows, out]
 * and inputs x: dW += dy^T x, db += column sums of dy, and dx = dy W (added
 * to dx when accumulate, skipped when dx is NULL)
 */
static void
DenseBackward(MmoeTrainer *t, int rows, const MmoeLayer *l, const float *dy, const float *x,
			  float *dx, bool accumulate)
{
	float	   *gw = Grad(t, l->w);
	float	   *gb = l->b ? Grad(t, l->b) : NULL;

	LinalgSgemm(l->out, l->in, rows, 1.0f, dy, 1, x, 0, 1.0f, gw);
	if (gb)
		for (int r = 0; r < rows; r++)
			for (int o = 0; o < l->out; o++)
				gb[o] += dy[(size_t) r * l->out + o];
	if (dx)
		LinalgSgemm(rows, l->in, l->out, 1.0f, dy, 0, l->w, 0, accumulate ? 1.0f : 0.0f, dx);
}

/* Apply ReLU then inverted dropout (keyed masks) to rows x width activations at a unit site */
static void
ReluDropout(MmoeTrainer *t, float *y, int rows, int width, int site)
{
	double		rate = t->opt.dropout;
	float		scale = rate > 0.0 ? (float) (1.0 / (1.0 - rate)) : 1.0f;

	for (int r = 0; r < rows; r++)
	{
		float	   *v = y + (size_t) r * width;
		uint64_t	base = t->key[r] * (uint64_t) t->slots + (uint64_t) site;

		for (int j = 0; j < width; j++)
		{
			if (v[j] < 0.0f)
				v[j] = 0.0f;
			if (rate > 0.0)
				v[j] = MmoeDropoutUniform(t->opt.seed, base + j) >= rate ? v[j] * scale : 0.0f;
		}
	}
}

/* Turn output gradients of ReLU+dropout units into pre-activation gradients, in place */
static void
ReluDropoutBackward(const MmoeTrainer *t, float *dy, const float *y, size_t n)
{
	double		rate = t->opt.dropout;
	float		scale = rate > 0.0 ? (float) (1.0 / (1.0 - rate)) : 1.0f;

	/* a unit is live iff its output is positive: dropped units output 0 */
	for (size_t j = 0; j < n; j++)
		dy[j] = y[j] > 0.0f ? dy[j] * scale : 0.0f;
}

/* Get the start of expert i's layer l outputs ([rows, out_l]) */
static float *
ExpertOut(MmoeTrainer *t, int rows, int i, int l)
{
	const MmoeModel *m = t->m;
	size_t		off = (size_t) i * rows * ExpertWidth(m);

	for (int k = 0; k < l; k++)
		off += (size_t) rows * m->experts[k].out;
	return t->eout + off;
}

/* Get the start of task's hidden layer l outputs */
static float *
TowerOut(MmoeTrainer *t, int rows, const MmoeTask *task, int l)
{
	size_t		off = 0;

	for (int k = 0; k < l; k++)
		off += (size_t) rows * task->tower[k].out;
	return t->tout + off;
}

/* Get cv^2 = population variance / (mean^2 + 1e-10) of x[n] and its gradient into d (or NULL) */
static double
CvSquared(int n, const double *x, double *d)
{
	double		mean = 0.0;
	double		var = 0.0;
	double		den;

	if (n < 2)
	{
		if (d)
			memset(d, 0, sizeof(double) * n);
		return 0.0;
	}
	for (int i = 0; i < n; i++)
		mean += x[i];
	mean /= n;
	for (int i = 0; i < n; i++)
		var += (x[i] - mean) * (x[i] - mean);
	var /= n;
	den = mean * mean + CV_EPS;
	if (d)
		for (int i = 0; i < n; i++)
			d[i] = (2.0 / n * (x[i] - mean) * den - var * 2.0 * mean / n) / (den * den);
	return var / den;
}

/*
 * Select the top k of one row of logits into sel (ties to the lower index)
 * and note the experts holding the k-th and (k+1)-th values (k < n)
 */
static void
TopK(const float *v, int n, int k, uint8_t *sel, int32_t *thr)
{
	bool		taken[MMOE_MAX_EXPERTS];

	memset(taken, 0, sizeof(bool) * n);
	memset(sel, 0, n);
	for (int j = 0; j <= k && j < n; j++)
	{
		int			best = -1;

		for (int i = 0; i < n; i++)
			if (!taken[i] && (best < 0 || v[i] > v[best]))
				best = i;
		taken[best] = true;
		if (j < k)
			sel[best] = 1;
		if (j == k - 1)
			thr[0] = best;
		if (j == k)
			thr[1] = best;
	}
}

/* Get softplus(x) = log(1 + e^x) without overflow */
static inline double
Softplus(double x)
{
	return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/*
 * A task's gate forward: logits of the inputs (with noise for a noisy gate in
 * training), the top-k selection and the softmax over it into g
 */
static void
GateForward(MmoeTrainer *t, int rows, int tk, bool noisy, int k)
{
	MmoeModel  *m = t->m;
	const MmoeTask *task = &m->tasks[tk];
	int			n = m->nexperts;
	uint64_t	noise_slot = (uint64_t) m->dropout_units + n + 1 + 2 * (uint64_t) tk * n;
	const float *logits;

	/* gate logits */
	DenseForward(rows, &task->gate, t->z, t->clean);
	logits = t->clean;
	if (noisy)
	{
		LinalgSgemm(rows, n, m->in_width, 1.0f, t->z, 0, t->noise_w[tk], 1, 0.0f, t->raw);
		for (int r = 0; r < rows; r++)
		{
			uint64_t	base = t->key[r] * (uint64_t) t->slots + noise_slot;

			for (int i = 0; i < n; i++)
			{
				size_t		ri = (size_t) r * n + i;

				t->sigma[ri] = (float) (Softplus(t->raw[ri]) + NOISE_FLOOR);
				t->noise[ri] = (float) MmoeGateNoise(t->opt.seed, base + 2 * (uint64_t) i);
				t->noisy[ri] = t->clean[ri] + t->noise[ri] * t->sigma[ri];
			}
		}
		logits = t->noisy;
	}

	/* selection and softmax over it */
	for (int r = 0; r < rows; r++)
	{
		const float *lg = logits + (size_t) r * n;
		uint8_t    *sel = t->sel + (size_t) r * n;
		float	   *g = t->g + (size_t) r * n;
		double		mx = -DBL_MAX;
		double		sum = 0.0;

		if (k < n)
			TopK(lg, n, k, sel, t->thr + 2 * r);
		else
			memset(sel, 1, n);
		for (int i = 0; i < n; i++)
			if (sel[i] && lg[i] > mx)
				mx = lg[i];
		for (int i = 0; i < n; i++)
			if (sel[i])
				sum += exp((double) lg[i] - mx);
		for (int i = 0; i < n; i++)
			g[i] = sel[i] ? (float) (exp((double) lg[i] - mx) / sum) : 0.0f;
	}
}

/*
 * The balance loss of a gate: importance and load (the load differentiable
 * only with noise and k < n), their cv^2 gradients into dimp and dload
 */
static void
GateBalance(MmoeTrainer *t, int rows, bool noisy, int k, MmoeStepStats *st)
{
	int			n = t->m->nexperts;
	double		bw = t->opt.balance_weight;
	double		cv_imp;
	double		cv_load;

	memset(t->imp, 0, sizeof(double) * n);
	memset(t->load, 0, sizeof(double) * n);
	for (int r = 0; r < rows; r++)
		for (int i = 0; i < n; i++)
		{
			size_t		ri = (size_t) r * n + i;

			t->imp[i] += t->g[ri];
			if (noisy && k < n)
			{
				float		thr_in = t->noisy[(size_t) r * n + t->thr[2 * r + 1]];
				float		thr_out = t->noisy[(size_t) r * n + t->thr[2 * r]];
				double		th = t->noisy[ri] > thr_in ? thr_in : thr_out;
				double		den = M_SQRT2 * t->sigma[ri] + 1e-20;

				t->load[i] += 0.5 * (1.0 + erf((t->clean[ri] - th) / den));
			}
			else
				t->load[i] += t->g[ri] > 0.0f ? 1.0 : 0.0;
		}
	cv_imp = CvSquared(n, t->imp, t->dimp);
	cv_load = CvSquared(n, t->load, t->dload);
	st->balance += bw * (cv_imp + cv_load);
	st->objective += bw * (cv_imp + cv_load);
}

/*
 * The gate weights after expert dropout (gp): renormalized over the kept
 * experts, unless that leaves no weight; then the mixture of the last expert
 * layer (mix0) and its latent cross (mix)
 */
static void
MixtureForward(MmoeTrainer *t, int rows)
{
	MmoeModel  *m = t->m;
	int			n = m->nexperts;
	int			h = m->expert_out;
	size_t		bh = (size_t) rows * h;

	/* expert dropout: renormalize over kept experts, unless that leaves no weight */
	for (int r = 0; r < rows; r++)
	{
		const float *g = t->g + (size_t) r * n;
		float	   *gp = t->gp + (size_t) r * n;
		const uint8_t *keep = t->keep + (size_t) r * n;
		double		s = 0.0;

		t->renorm[r] = 0;
		if (t->opt.expert_dropout > 0.0)
			for (int i = 0; i < n; i++)
				s += keep[i] ? g[i] : 0.0;
		if (s > 0.0)
		{
			t->renorm[r] = 1;
			for (int i = 0; i < n; i++)
				gp[i] = keep[i] ? (float) (g[i] / s) : 0.0f;
		}
		else
			memcpy(gp, g, sizeof(float) * n);
	}

	/* mixture, latent cross */
	memset(t->mix0, 0, sizeof(float) * bh);
	for (int r = 0; r < rows; r++)
		for (int i = 0; i < n; i++)
		{
			float		gi = t->gp[(size_t) r * n + i];
			const float *e = ExpertOut(t, rows, i, m->nlayers - 1) + (size_t) r * h;
			float	   *mx = t->mix0 + (size_t) r * h;

			if (gi != 0.0f)
				for (int j = 0; j < h; j++)
					mx[j] += gi * e[j];
		}
	for (size_t j = 0; j < bh; j++)
		t->mix[j] = m->context_dim > 0 ? t->mix0[j] * t->cross[j] : t->mix0[j];
}

/* A task's tower forward from the mixture into logit, plus its shallow tower */
static void
TowerForward(MmoeTrainer *t, int rows, int tk)
{
	MmoeModel  *m = t->m;
	const MmoeTask *task = &m->tasks[tk];
	const float *src = t->mix;

	for (int l = 0; l < task->nhidden; l++)
	{
		float	   *dst = TowerOut(t, rows, task, l);

		DenseForward(rows, &task->tower[l], src, dst);
		ReluDropout(t, dst, rows, task->tower[l].out, task->dropout_site[l]);
		src = dst;
	}
	DenseForward(rows, &task->tower[task->nhidden], src, t->logit);
	if (m->positions > 0)
		for (int r = 0; r < rows; r++)
			t->logit[r] += m->shallow[(size_t) t->display_position_row[r] * m->ntasks + tk];
}

/*
 * A task's loss over its labelled rows into stats, and the gradient of the
 * objective with respect to each row's logit into dlogit (the weighting's
 * coefficient over the count; the log variance's gradient under uncertainty)
 */
static void
TaskLoss(MmoeTrainer *t, int rows, int tk, MmoeStepStats *st)
{
	MmoeModel  *m = t->m;
	const MmoeTask *task = &m->tasks[tk];
	double		coef = 0.0;
	double		loss_sum = 0.0;
	int64_t		count = 0;

	/* loss: per-row gradient into dlogit, scaled below */
	for (int r = 0; r < rows; r++)
	{
		double		zl = t->logit[r];
		double		y = t->labels[(size_t) r * m->ntasks + tk];

		t->dlogit[r] = 0.0f;
		if (!t->has_label[(size_t) r * m->ntasks + tk])
			continue;
		count++;
		if (task->type == MMOE_BINARY)
		{
			loss_sum += Max(zl, 0.0) - zl * y + log1p(exp(-fabs(zl)));
			t->dlogit[r] = (float) (1.0 / (1.0 + exp(-zl)) - y);
		}
		else
		{
			loss_sum += (zl - y) * (zl - y);
			t->dlogit[r] = (float) (2.0 * (zl - y));
		}
	}
	st->loss_sum[tk] += loss_sum;
	st->count[tk] += count;
	if (count > 0)
	{
		double		L = loss_sum / count;

		if (t->opt.uncertainty)
		{
			double		s = t->log_vars[tk];
			double		a = (task->type == MMOE_BINARY ? 1.0 : 0.5) * exp(-s);

			coef = a;
			st->objective += a * L + 0.5 * s;
			Grad(t, t->log_vars)[tk] += (float) (-a * L + 0.5);
		}
		else
		{
			coef = t->opt.task_weights[tk];
			st->objective += coef * L;
		}
		for (int r = 0; r < rows; r++)
			t->dlogit[r] = (float) (t->dlogit[r] * coef / count);
	}
}

/*
 * A task's backward from dlogit through the shallow tower, the tower and the
 * latent cross; get the gradient of the mixture before the cross (d mix0)
 */
static float *
TowerBackward(MmoeTrainer *t, int rows, int tk)
{
	MmoeModel  *m = t->m;
	const MmoeTask *task = &m->tasks[tk];
	size_t		bh = (size_t) rows * m->expert_out;
	float	   *dcur;
	float	   *dnext;

	/* backward: shallow tower, tower */
	if (m->positions > 0)
	{
		float	   *gs = Grad(t, m->shallow);

		for (int r = 0; r < rows; r++)
			gs[(size_t) t->display_position_row[r] * m->ntasks + tk] += t->dlogit[r];
	}
	dcur = t->dlogit;
	dnext = t->work_a;
	for (int l = task->nhidden; l >= 0; l--)
	{
		const float *x = l > 0 ? TowerOut(t, rows, task, l - 1) : t->mix;

		DenseBackward(t, rows, &task->tower[l], dcur, x, dnext, false);
		if (l > 0)
			ReluDropoutBackward(t, dnext, x, (size_t) rows * task->tower[l - 1].out);
		dcur = dnext;
		dnext = dcur == t->work_a ? t->work_b : t->work_a;
	}
	/* dcur = d mix; through the latent cross to d mix0 */
	if (m->context_dim > 0)
		for (size_t j = 0; j < bh; j++)
		{
			t->dcross[j] += dcur[j] * t->mix0[j];
			dcur[j] *= t->cross[j];
		}
	return dcur;
}

/*
 * The mixture's backward from d mix0 (dmix): into the experts' outputs (dE)
 * and through the gate weights, expert dropout's renormalization, the
 * importance term and the softmax over the selection to the logits (dlog)
 */
static void
MixtureBackward(MmoeTrainer *t, int rows, const float *dmix)
{
	MmoeModel  *m = t->m;
	int			n = m->nexperts;
	int			h = m->expert_out;
	double		bw = t->opt.balance_weight;

	/* mixture: into dE and the gate weights after expert dropout */
	for (int r = 0; r < rows; r++)
	{
		const float *dm = dmix + (size_t) r * h;

		for (int i = 0; i < n; i++)
		{
			const float *e = ExpertOut(t, rows, i, m->nlayers - 1) + (size_t) r * h;
			float	   *de = t->dE + ((size_t) i * rows + r) * h;
			float		gi = t->gp[(size_t) r * n + i];
			double		dot = 0.0;

			for (int j = 0; j < h; j++)
			{
				dot += (double) dm[j] * e[j];
				de[j] += gi * dm[j];
			}
			t->dg[(size_t) r * n + i] = (float) dot;
		}
	}

	/* expert dropout renormalization, importance, softmax over the selection */
	for (int r = 0; r < rows; r++)
	{
		float	   *dg = t->dg + (size_t) r * n;
		const float *g = t->g + (size_t) r * n;
		const float *gp = t->gp + (size_t) r * n;
		const uint8_t *keep = t->keep + (size_t) r * n;
		const uint8_t *sel = t->sel + (size_t) r * n;
		float	   *dl = t->dlog + (size_t) r * n;
		double		dot = 0.0;

		if (t->renorm[r])
		{
			double		s = 0.0;

			for (int i = 0; i < n; i++)
			{
				s += keep[i] ? g[i] : 0.0;
				dot += (double) dg[i] * gp[i];
			}
			for (int i = 0; i < n; i++)
				dg[i] = keep[i] ? (float) ((dg[i] - dot) / s) : 0.0f;
		}
		if (bw > 0.0)
			for (int i = 0; i < n; i++)
				dg[i] += (float) (bw * t->dimp[i]);
		dot = 0.0;
		for (int i = 0; i < n; i++)
			if (sel[i])
				dot += (double) g[i] * dg[i];
		for (int i = 0; i < n; i++)
			dl[i] = sel[i] ? (float) (g[i] * (dg[i] - dot)) : 0.0f;
	}
}

/*
 * A task's gate backward from dlog: for a noisy gate, the load term and the
 * noise (d clean, then d sigma to d raw); the gate's and noise weights'
 * gradients and dz
 */
static void
GateBackward(MmoeTrainer *t, int rows, int tk, bool noisy, int k)
{
	MmoeModel  *m = t->m;
	const MmoeTask *task = &m->tasks[tk];
	int			n = m->nexperts;
	size_t		bn = (size_t) rows * n;
	double		bw = t->opt.balance_weight;

	if (!noisy)
	{
		DenseBackward(t, rows, &task->gate, t->dlog, t->z, t->dz, true);
		return;
	}
	/* dg becomes d clean, draw d sigma then d raw */
	memset(t->draw, 0, sizeof(float) * bn);
	memset(t->dg, 0, sizeof(float) * bn);
	if (bw > 0.0 && k < n)
		for (int r = 0; r < rows; r++)
			for (int i = 0; i < n; i++)
			{
				size_t		ri = (size_t) r * n + i;
				int			in_j = t->thr[2 * r + 1];
				int			out_j = t->thr[2 * r];
				bool		is_in = t->noisy[ri] > t->noisy[(size_t) r * n + in_j];
				int			j = is_in ? in_j : out_j;
				double		th = t->noisy[(size_t) r * n + j];
				double		den = M_SQRT2 * t->sigma[ri] + 1e-20;
				double		u = (t->clean[ri] - th) / den;
				double		dp = bw * t->dload[i] * exp(-u * u) / sqrt(M_PI);

				t->dg[ri] += (float) (dp / den);
				t->dlog[(size_t) r * n + j] -= (float) (dp / den);
				t->draw[ri] += (float) (-dp * u * M_SQRT2 / den);
			}
	for (size_t ri = 0; ri < bn; ri++)
	{
		double		sg = 1.0 / (1.0 + exp(-(double) t->raw[ri]));

		t->dg[ri] += t->dlog[ri];
		t->draw[ri] = (float) ((t->draw[ri] + t->dlog[ri] * t->noise[ri]) * sg);
	}
	DenseBackward(t, rows, &task->gate, t->dg, t->z, t->dz, true);
	{
		MmoeLayer	nl = {m->in_width, n, t->noise_w[tk], NULL};

		DenseBackward(t, rows, &nl, t->draw, t->z, t->dz, true);
	}
}

/*
 * One task's forward and backward pass, after the shared experts: gate,
 * mixture, tower, loss, then gradients into the task's tensors, dE, dcross
 * and dz.  Adds the task's loss and balance terms to stats.
 */
static void
TaskStep(MmoeTrainer *t, int rows, int tk, MmoeStepStats *st)
{
	MmoeModel  *m = t->m;
	bool		noisy = m->gate == MMOE_GATE_NOISY_TOP_K && t->opt.gate_noise;
	int			k = m->gate == MMOE_GATE_NOISY_TOP_K ? m->top_k : m->nexperts;

	GateForward(t, rows, tk, noisy, k);
	if (t->opt.balance_weight > 0.0)
		GateBalance(t, rows, noisy, k, st);
	MixtureForward(t, rows);
	TowerForward(t, rows, tk);
	TaskLoss(t, rows, tk, st);
	MixtureBackward(t, rows, TowerBackward(t, rows, tk));
	GateBackward(t, rows, tk, noisy, k);
}

/*
 * Run one training step on rows 0..rows-1 of the batch inputs: forward,
 * losses into stats, gradients of every tensor into grad (overwritten)
 */
void
MmoeTrainStep(MmoeTrainer *t, int rows, MmoeStepStats *st)
{
	MmoeModel  *m = t->m;
	int			n = m->nexperts;
	int			h = m->expert_out;
	size_t		bh = (size_t) rows * h;

	assert(rows >= 1 && rows <= t->maxrows);
	memset(st, 0, sizeof(*st));
	memset(t->grad, 0, sizeof(float) * t->nparams);
	memset(t->dE, 0, sizeof(float) * (size_t) n * bh);
	memset(t->dz, 0, sizeof(float) * (size_t) rows * m->in_width);
	if (m->context_dim > 0)
		memset(t->dcross, 0, sizeof(float) * bh);

	/* embeddings after the dense features */
	for (int r = 0; r < rows; r++)
	{
		float	   *x = t->z + (size_t) r * m->in_width + m->input_dim;

		for (int c = 0; c < m->ncategorical; c++)
		{
			const MmoeCategorical *cat = &m->categorical[c];
			int32_t		id = t->ids[r * m->ncategorical + c];

			memcpy(x, cat->table + (size_t) id * cat->dim, sizeof(float) * cat->dim);
			x += cat->dim;
		}
		for (int b = 0; b < m->nbags; b++)
		{
			size_t		k = (size_t) r * m->nbags + b;

			MmoeBagMean(&m->bags[b], t->bag_ids + t->bag_start[k], t->bag_len[k], x);
			x += m->bags[b].dim;
		}
	}

	/* experts */
	for (int i = 0; i < n; i++)
	{
		const float *src = t->z;

		for (int l = 0; l < m->nlayers; l++)
		{
			float	   *dst = ExpertOut(t, rows, i, l);

			DenseForward(rows, &m->experts[i * m->nlayers + l], src, dst);
			ReluDropout(t, dst, rows, m->experts[i * m->nlayers + l].out,
						m->expert_site[i * m->nlayers + l]);
			src = dst;
		}
	}

	/* expert dropout masks and shallow-tower positions, per row */
	for (int r = 0; r < rows; r++)
	{
		uint64_t	base = t->key[r] * (uint64_t) t->slots + (uint64_t) m->dropout_units;

		for (int i = 0; i < n; i++)
			t->keep[(size_t) r * n + i] = t->opt.expert_dropout <= 0.0 ||
				MmoeDropoutUniform(t->opt.seed, base + i) >= t->opt.expert_dropout;
		if (m->positions > 0)
		{
			bool		drop = t->opt.position_dropout > 0.0 &&
				MmoeDropoutUniform(t->opt.seed, base + n) < t->opt.position_dropout;

			t->display_position_row[r] = t->display_position[r] < 0 || drop ? m->positions : t->display_position[r];
		}
	}

	/* latent cross factors 1 + W c + b */
	if (m->context_dim > 0)
	{
		DenseForward(rows, &m->latent, t->context, t->cross);
		for (size_t j = 0; j < bh; j++)
			t->cross[j] += 1.0f;
	}

	for (int tk = 0; tk < m->ntasks; tk++)
		TaskStep(t, rows, tk, st);

	/* experts backward */
	for (int i = 0; i < n; i++)
	{
		float	   *dcur = t->dE + (size_t) i * bh;
		float	   *dnext = t->work_a;

		for (int l = m->nlayers - 1; l >= 0; l--)
		{
			const MmoeLayer *layer = &m->experts[i * m->nlayers + l];
			const float *x = l > 0 ? ExpertOut(t, rows, i, l - 1) : t->z;

			ReluDropoutBackward(t, dcur, ExpertOut(t, rows, i, l), (size_t) rows * layer->out);
			if (l > 0)
				DenseBackward(t, rows, layer, dcur, x, dnext, false);
			else
				DenseBackward(t, rows, layer, dcur, x, t->dz, true);
			dcur = dnext;
			dnext = dcur == t->work_a ? t->work_b : t->work_a;
		}
	}

	/* latent cross and embeddings */
	if (m->context_dim > 0)
		DenseBackward(t, rows, &m->latent, t->dcross, t->context, NULL, false);
	for (int r = 0; r < rows; r++)
	{
		const float *dx = t->dz + (size_t) r * m->in_width + m->input_dim;

		for (int c = 0; c < m->ncategorical; c++)
		{
			const MmoeCategorical *cat = &m->categorical[c];
			float	   *gt = Grad(t, cat->table) + (size_t) t->ids[r * m->ncategorical + c] * cat->dim;

			for (int j = 0; j < cat->dim; j++)
				gt[j] += dx[j];
			dx += cat->dim;
		}
		/* a bag's mean sends dz / len to each of its ids (repeated ids add up) */
		for (int b = 0; b < m->nbags; b++)
		{
			const MmoeCategorical *bag = &m->bags[b];
			size_t		k = (size_t) r * m->nbags + b;
			const int32_t *ids = t->bag_ids + t->bag_start[k];
			float		len = (float) t->bag_len[k];

			for (int i = 0; i < t->bag_len[k]; i++)
			{
				float	   *gt = Grad(t, bag->table) + (size_t) ids[i] * bag->dim;

				for (int j = 0; j < bag->dim; j++)
					gt[j] += dx[j] / len;
			}
			dx += bag->dim;
		}
	}
}

/*
 * Take one Adam step (PyTorch's form: bias-corrected moments,
 * eps added to the corrected root) with learning rate lr
 */
void
MmoeAdamStep(MmoeTrainer *t, double lr)
{
	double		b1 = t->opt.beta1;
	double		b2 = t->opt.beta2;
	double		bc1;
	double		bc2;
	double		step;
	double		root_bc2;

	t->steps++;
	bc1 = 1.0 - pow(b1, (double) t->steps);
	bc2 = 1.0 - pow(b2, (double) t->steps);
	step = lr / bc1;
	root_bc2 = sqrt(bc2);
	for (size_t j = 0; j < t->nparams; j++)
	{
		double		gr = t->grad[j];
		double		mj = b1 * t->adam_m[j] + (1.0 - b1) * gr;
		double		vj = b2 * t->adam_v[j] + (1.0 - b2) * gr * gr;

		t->adam_m[j] = (float) mj;
		t->adam_v[j] = (float) vj;
		t->params[j] = (float) (t->params[j] - step * mj / (sqrt(vj) / root_bc2 + t->opt.eps));
		if ((j & 65535) == 65535)
			LinalgWork(10.0 * 65536);
	}
}
