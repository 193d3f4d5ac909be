/*
 * mmoe_forward.c
 *		The float32 forward kernel of MMoE models (see mmoe_model.h): dense
 *		layers through BLAS, one row (sgemv) or many rows (sgemm) at once,
 *		gate weights and MC dropout.  No PostgreSQL and no allocation here:
 *		the caller hands in the scratch memory.
 *
 * MC dropout (predict_mc) masks every hidden unit after its activation
 * (expert layers and hidden tower layers) with inverted dropout.  Masks come
 * from a counter-based generator so they do not depend on batching and can
 * be reproduced outside the database: unit u of sample s is kept when
 * MmoeDropoutUniform(seed, s * U + u) >= rate, U being the number of hidden
 * units, numbered experts first (expert, layer, unit), then the hidden tower
 * layers (task, layer, unit).
 */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "linalg.h"
#include "mmoe_model.h"

/* The golden-ratio increment of SplitMix64 (as in src/rng.c) */
#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)

/* Scratch buffers start on cache lines (BLAS reads them whole) */
#define SCRATCH_ALIGN 64

/* Get the bytes of n elements of size elem, rounded up to a cache line */
static size_t
AlignedBytes(size_t n, size_t elem)
{
	return (n * elem + SCRATCH_ALIGN - 1) / SCRATCH_ALIGN * SCRATCH_ALIGN;
}

/* Get the bytes one scratch of rows rows takes, without the alignment slack */
static size_t
ScratchLayout(const MmoeModel *m, int rows, MmoeScratch *s, char *base)
{
	size_t		off = 0;
	size_t		r = (size_t) (rows > 0 ? rows : 1);

#define CARVE(field, type, n) \
	do { \
		if (s) \
			s->field = (type *) (base + off); \
		off += AlignedBytes((n), sizeof(type)); \
	} while (0)

	CARVE(x, float, r * m->in_width);
	CARVE(buf_a, float, r * m->max_width);
	CARVE(buf_b, float, r * m->max_width);
	CARVE(experts, float, r * m->nexperts * m->expert_out);
	CARVE(gates, float, r * m->nexperts);
	CARVE(mix, float, r * m->expert_out);
	CARVE(cross, float, r * m->expert_out);
	CARVE(context, float, r * (m->context_dim > 0 ? m->context_dim : 1));
	CARVE(tower_out, float, r);
	CARVE(ids, int32_t, r * (m->ncategorical > 0 ? m->ncategorical : 1));
	CARVE(position, int32_t, r);
#undef CARVE
	return off;
}

/* Get the rows a scratch may hold: maxrows, fewer when that passes the byte cap */
int
MmoeScratchRows(const MmoeModel *m, int maxrows)
{
	size_t		per_row = ScratchLayout(m, 1, NULL, NULL);
	size_t		cap = MMOE_SCRATCH_MAX_BYTES / per_row;

	if (maxrows < 1)
		maxrows = 1;
	if ((size_t) maxrows > cap)
		maxrows = cap > 0 ? (int) cap : 1;
	return maxrows;
}

/* Get the bytes of memory MmoeScratchInit needs for rows rows */
size_t
MmoeScratchBytes(const MmoeModel *m, int rows)
{
	return ScratchLayout(m, rows, NULL, NULL) + SCRATCH_ALIGN;
}

/* Lay out a scratch of rows rows in mem (MmoeScratchBytes(m, rows) bytes) */
void
MmoeScratchInit(const MmoeModel *m, int rows, void *mem, MmoeScratch *s)
{
	uintptr_t	p = ((uintptr_t) mem + SCRATCH_ALIGN - 1) & ~(uintptr_t) (SCRATCH_ALIGN - 1);

	memset(s, 0, sizeof(*s));
	s->maxrows = rows;
	ScratchLayout(m, rows, s, (char *) p);
}

/* Compute y = x W^T + b for rows of x (BLAS sgemv for one row, sgemm for more) */
static void
Dense(int rows, const MmoeLayer *l, const float *x, float *y)
{
	for (int r = 0; r < rows; r++)
		memcpy(y + (size_t) r * l->out, l->b, sizeof(float) * l->out);
	if (rows == 1)
		LinalgSgemv(l->out, l->in, 1.0f, l->w, x, 1.0f, y);
	else
		LinalgSgemm(rows, l->out, l->in, 1.0f, x, 0, l->w, 1, 1.0f, y);
}

/*
 * Apply ReLU in place.  Clearing the bits of values whose sign bit is set is
 * branch-free (a compare-and-select on floats compiles to a branch that
 * mispredicts on half the units), and blocks of 8 let gcc -O2 vectorize.
 */
static void
Relu(float *y, size_t n)
{
	uint32_t	   *u = (uint32_t *) y;
	size_t		i = 0;

	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			u[i + k] &= ~(uint32_t) ((int32_t) u[i + k] >> 31);
	for (; i < n; i++)
		u[i] &= ~(uint32_t) ((int32_t) u[i] >> 31);
}

/* Compute y += a x, in blocks of 8 that gcc -O2 vectorizes */
static void
AddScaled(size_t n, float a, const float *restrict x, float *restrict y)
{
	size_t		j = 0;

	for (; j + 8 <= n; j += 8)
		for (size_t k = 0; k < 8; k++)
			y[j + k] += a * x[j + k];
	for (; j < n; j++)
		y[j] += a * x[j];
}

/*
 * Get the uniform [0, 1) draw number n of the stream seeded by seed: the
 * n-th output of SplitMix64, top 24 bits.
 */
double
MmoeDropoutUniform(uint64_t seed, uint64_t n)
{
	uint64_t	z = seed + n * GOLDEN + GOLDEN;

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	z ^= z >> 31;
	return (double) (z >> 40) * (1.0 / 16777216.0);
}

/* Apply inverted dropout to rows x width activations whose first unit is site */
static void
Dropout(const MmoeModel *m, const MmoeDropout *d, float *y, int rows, int width, int site)
{
	float		scale;

	if (d == NULL || d->rate <= 0.0)
		return;
	scale = (float) (1.0 / (1.0 - d->rate));
	for (int r = 0; r < rows; r++)
	{
		uint64_t	base = (uint64_t) (d->first_sample + r) * (uint64_t) m->dropout_units + site;

		for (int j = 0; j < width; j++)
		{
			float	   *v = &y[(size_t) r * width + j];

			*v = MmoeDropoutUniform(d->seed, base + j) >= d->rate ? *v * scale : 0.0f;
		}
	}
}

/* Write the embeddings of each row's categorical ids after its dense features */
static void
FillEmbeddings(const MmoeModel *m, MmoeScratch *s, int rows)
{
	for (int r = 0; r < rows; r++)
	{
		float	   *x = s->x + (size_t) r * m->in_width + m->input_dim;

		for (int c = 0; c < m->ncategorical; c++)
		{
			const MmoeCategorical *cat = &m->categorical[c];
			int32_t		id = s->ids[r * m->ncategorical + c];

			memcpy(x, cat->table + (size_t) id * cat->dim, sizeof(float) * cat->dim);
			x += cat->dim;
		}
	}
}

/* Turn one row of gate logits into weights (softmax, or softmax over the top k) */
static void
GateWeights(const MmoeModel *m, float *g)
{
	int			n = m->nexperts;
	double		mx = -DBL_MAX;
	double		sum = 0.0;
	bool		keep[MMOE_MAX_EXPERTS];

	if (m->gate == MMOE_GATE_NOISY_TOP_K && m->top_k < n)
	{
		/* top k by value, ties to the lower index */
		memset(keep, 0, sizeof(bool) * n);
		for (int k = 0; k < m->top_k; k++)
		{
			int			best = -1;

			for (int i = 0; i < n; i++)
				if (!keep[i] && (best < 0 || g[i] > g[best]))
					best = i;
			keep[best] = true;
		}
	}
	else
		memset(keep, 1, sizeof(bool) * n);
	for (int i = 0; i < n; i++)
		if (keep[i] && g[i] > mx)
			mx = g[i];
	for (int i = 0; i < n; i++)
		if (keep[i])
			sum += exp((double) g[i] - mx);
	for (int i = 0; i < n; i++)
		g[i] = keep[i] ? (float) (exp((double) g[i] - mx) / sum) : 0.0f;
}

/* Compute the gate weights of task t for rows whose input x is ready */
static void
ComputeGates(const MmoeModel *m, MmoeScratch *s, int rows, int t)
{
	Dense(rows, &m->tasks[t].gate, s->x, s->gates);
	for (int r = 0; r < rows; r++)
		GateWeights(m, s->gates + (size_t) r * m->nexperts);
}

/*
 * Score rows 0..rows-1 of the scratch inputs (features in x, ids, context,
 * position) into out[rows, ntasks]; dropout is NULL except for MC dropout.
 */
void
MmoeForward(const MmoeModel *m, MmoeScratch *s, int rows, const MmoeDropout *dropout,
			float *out)
{
	int			h = m->expert_out;
	size_t		hn = (size_t) rows * h;

	assert(rows <= s->maxrows);
	FillEmbeddings(m, s, rows);

	/* experts */
	for (int i = 0; i < m->nexperts; i++)
	{
		const float *src = s->x;

		for (int l = 0; l < m->nlayers; l++)
		{
			const MmoeLayer *layer = &m->experts[i * m->nlayers + l];
			float	   *dst = l == m->nlayers - 1 ? s->experts + (size_t) i * rows * h
				: (l % 2 == 0 ? s->buf_a : s->buf_b);

			Dense(rows, layer, src, dst);
			Relu(dst, (size_t) rows * layer->out);
			Dropout(m, dropout, dst, rows, layer->out, m->expert_site[i * m->nlayers + l]);
			src = dst;
		}
	}

	/* latent cross factors 1 + W c + b, shared by the tasks */
	if (m->context_dim > 0)
	{
		Dense(rows, &m->latent, s->context, s->cross);
		for (size_t j = 0; j < hn; j++)
			s->cross[j] += 1.0f;
	}

	for (int t = 0; t < m->ntasks; t++)
	{
		const MmoeTask *task = &m->tasks[t];
		const float *src;

		ComputeGates(m, s, rows, t);

		/* mixture of experts */
		memset(s->mix, 0, sizeof(float) * hn);
		for (int r = 0; r < rows; r++)
		{
			float	   *mix = s->mix + (size_t) r * h;

			for (int i = 0; i < m->nexperts; i++)
			{
				float		g = s->gates[(size_t) r * m->nexperts + i];
				const float *e = s->experts + ((size_t) i * rows + r) * h;

				if (g != 0.0f)
					AddScaled(h, g, e, mix);
			}
		}
		if (m->context_dim > 0)
			for (size_t j = 0; j < hn; j++)
				s->mix[j] *= s->cross[j];

		/* tower */
		src = s->mix;
		for (int l = 0; l < task->nhidden; l++)
		{
			float	   *dst = l % 2 == 0 ? s->buf_a : s->buf_b;

			Dense(rows, &task->tower[l], src, dst);
			Relu(dst, (size_t) rows * task->tower[l].out);
			Dropout(m, dropout, dst, rows, task->tower[l].out, task->dropout_site[l]);
			src = dst;
		}
		Dense(rows, &task->tower[task->nhidden], src, s->tower_out);

		for (int r = 0; r < rows; r++)
		{
			double		logit = s->tower_out[r];

			if (m->positions > 0)
			{
				int			p = s->position[r] < 0 ? m->positions : s->position[r];

				logit += m->shallow[(size_t) p * m->ntasks + t];
			}
			out[(size_t) r * m->ntasks + t] = task->type == MMOE_BINARY
				? (float) (1.0 / (1.0 + exp(-logit)))
				: (float) logit;
		}
	}
}

/* Compute the gate weights of task t into out[rows, nexperts] */
void
MmoeGateWeights(const MmoeModel *m, MmoeScratch *s, int rows, int task, float *out)
{
	FillEmbeddings(m, s, rows);
	ComputeGates(m, s, rows, task);
	memcpy(out, s->gates, sizeof(float) * rows * m->nexperts);
}
