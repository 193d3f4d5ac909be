/*
 * kernel/mmoe_forward.c
 *		The float32 forward kernel of MMoE models (see mmoe_model.h): dense
 *		layers for blocks of rows through BLAS sgemm, a single row through a
 *		matrix-vector product (an AVX2/FMA kernel chosen at run time where
 *		the CPU has it, else BLAS sgemv), gate weights and MC dropout.  No
 *		PostgreSQL and no allocation here: the caller hands in the scratch
 *		memory (MmoeScratchBytes, MmoeScratchInit).
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
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_KERNEL 1
#endif

#include "kernel/linalg.h"
#include "kernel/mmoe_model.h"

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
	CARVE(display_position, int32_t, r);
	CARVE(fused_out, float, r * MmoeFusedRows(m));
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

#ifdef HAVE_AVX2_KERNEL
/* Get the sum of the 8 lanes of v */
__attribute__((target("avx2,fma")))
static inline float
SumLanes(__m256 v)
{
	__m128		s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/*
 * Compute y = W x + b with AVX2 and FMA, four rows of W at a time so that
 * each load of x serves four rows.  A single row is bound by reading W
 * once, which OpenBLAS's generic (Prescott) sgemv does at SSE width.
 */
__attribute__((target("avx2,fma")))
static void
GemvAvx2(int out, int in, const float *restrict w, const float *restrict x,
		 const float *restrict b, float *restrict y)
{
	int			o = 0;

	for (; o + 4 <= out; o += 4)
	{
		const float *w0 = w + (size_t) o * in;
		const float *w1 = w0 + in;
		const float *w2 = w1 + in;
		const float *w3 = w2 + in;
		__m256		a0 = _mm256_setzero_ps();
		__m256		a1 = _mm256_setzero_ps();
		__m256		a2 = _mm256_setzero_ps();
		__m256		a3 = _mm256_setzero_ps();
		float		s0,
					s1,
					s2,
					s3;
		int			i = 0;

		for (; i + 8 <= in; i += 8)
		{
			__m256		xv = _mm256_loadu_ps(x + i);

			a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), xv, a0);
			a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + i), xv, a1);
			a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + i), xv, a2);
			a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + i), xv, a3);
		}
		s0 = SumLanes(a0);
		s1 = SumLanes(a1);
		s2 = SumLanes(a2);
		s3 = SumLanes(a3);
		for (; i < in; i++)
		{
			s0 += w0[i] * x[i];
			s1 += w1[i] * x[i];
			s2 += w2[i] * x[i];
			s3 += w3[i] * x[i];
		}
		y[o] = b[o] + s0;
		y[o + 1] = b[o + 1] + s1;
		y[o + 2] = b[o + 2] + s2;
		y[o + 3] = b[o + 3] + s3;
	}
	for (; o < out; o++)
	{
		const float *wo = w + (size_t) o * in;
		__m256		a = _mm256_setzero_ps();
		float		sum;
		int			i = 0;

		for (; i + 8 <= in; i += 8)
			a = _mm256_fmadd_ps(_mm256_loadu_ps(wo + i), _mm256_loadu_ps(x + i), a);
		sum = SumLanes(a);
		for (; i < in; i++)
			sum += wo[i] * x[i];
		y[o] = b[o] + sum;
	}
}

/* Tell whether the CPU runs AVX2 and FMA (checked once) */
static bool
HaveAvx2(void)
{
	static int	have = -1;

	if (have < 0)
	{
		__builtin_cpu_init();
		have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	}
	return have;
}
#endif

/* Compute y = W x + b for one row x (AVX2 where the CPU has it, else BLAS sgemv) */
void
MmoeGemv(const MmoeLayer *l, const float *x, float *y)
{
#ifdef HAVE_AVX2_KERNEL
	if (HaveAvx2())
	{
		GemvAvx2(l->out, l->in, l->w, x, l->b, y);
		return;
	}
#endif
	memcpy(y, l->b, sizeof(float) * l->out);
	LinalgSgemv(l->out, l->in, 1.0f, l->w, x, 1.0f, y);
}

/* Compute y = x W^T + b for rows of x (one matrix-vector product for one row, sgemm for more) */
static void
Dense(int rows, const MmoeLayer *l, const float *x, float *y)
{
	if (rows == 1)
	{
		MmoeGemv(l, x, y);
		return;
	}
	for (int r = 0; r < rows; r++)
		memcpy(y + (size_t) r * l->out, l->b, sizeof(float) * l->out);
	LinalgSgemm(rows, l->out, l->in, 1.0f, x, 0, l->w, 1, 1.0f, y);
}

/* Get the rows of the stacked first-layer matrix: every expert's first layer, then every gate */
int
MmoeFusedRows(const MmoeModel *m)
{
	return m->nexperts * m->experts[0].out + m->ntasks * m->nexperts;
}

/*
 * Move the first expert layers and the gates into one stacked matrix w
 * (MmoeFusedRows x in_width floats) and bias b, and point the layers at
 * their rows; the caller frees the layers' old arrays if it wants.
 */
void
MmoeFuseFirstLayers(MmoeModel *m, float *w, float *b)
{
	size_t		row = 0;

	for (int i = 0; i < m->nexperts + m->ntasks; i++)
	{
		MmoeLayer  *l = i < m->nexperts ? &m->experts[i * m->nlayers] : &m->tasks[i - m->nexperts].gate;

		memcpy(w + row * m->in_width, l->w, sizeof(float) * l->out * m->in_width);
		memcpy(b + row, l->b, sizeof(float) * l->out);
		l->w = w + row * m->in_width;
		l->b = b + row;
		row += l->out;
	}
	m->fused.in = m->in_width;
	m->fused.out = (int) row;
	m->fused.w = w;
	m->fused.b = b;
}

/*
 * Copy the first expert layers and the gates into a stacked matrix w and
 * bias b without moving them, for a model whose layers live elsewhere (the
 * trainer's parameters); the copy must be refreshed after they change.
 */
void
MmoeStackFirstLayers(MmoeModel *m, float *w, float *b)
{
	size_t		row = 0;

	for (int i = 0; i < m->nexperts + m->ntasks; i++)
	{
		const MmoeLayer *l = i < m->nexperts ? &m->experts[i * m->nlayers] : &m->tasks[i - m->nexperts].gate;

		memcpy(w + row * m->in_width, l->w, sizeof(float) * l->out * m->in_width);
		memcpy(b + row, l->b, sizeof(float) * l->out);
		row += l->out;
	}
	m->fused.in = m->in_width;
	m->fused.out = (int) row;
	m->fused.w = w;
	m->fused.b = b;
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

/*
 * Write the mean of the embedding rows ids[0..n) of a bag table into out
 * (dim floats), as nn.EmbeddingBag(mode='mean') does: summed in order,
 * divided by n; an empty list gives zeros.  Ids must be in range.
 */
void
MmoeBagMean(const MmoeCategorical *bag, const int32_t *ids, int n, float *out)
{
	memset(out, 0, sizeof(float) * bag->dim);
	if (n == 0)
		return;
	for (int k = 0; k < n; k++)
		AddScaled(bag->dim, 1.0f, bag->table + (size_t) ids[k] * bag->dim, out);
	for (int j = 0; j < bag->dim; j++)
		out[j] /= (float) n;
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
 * Compute every expert's output for rows of x.  The first layers of all
 * experts and all gates run as one product over the stacked matrix (one
 * sgemm, or one matrix-vector product for a single row), which leaves the
 * gate logits in fused_out for StackedGates; later expert layers run one
 * product per expert.
 */
static void
Experts(const MmoeModel *m, MmoeScratch *s, int rows, const MmoeDropout *dropout)
{
	int			h = m->expert_out;
	int			h1 = m->experts[0].out;
	int			f = m->fused.out;

	Dense(rows, &m->fused, s->x, s->fused_out);
	for (int i = 0; i < m->nexperts; i++)
	{
		float	   *first;
		const float *src;

		/* one row reads its slice in place; more rows gather theirs contiguously */
		if (rows == 1)
			first = s->fused_out + (size_t) i * h1;
		else
		{
			first = s->buf_a;
			for (int r = 0; r < rows; r++)
				memcpy(first + (size_t) r * h1, s->fused_out + (size_t) r * f + (size_t) i * h1,
					   sizeof(float) * h1);
		}
		Relu(first, (size_t) rows * h1);
		Dropout(m, dropout, first, rows, h1, m->expert_site[i * m->nlayers]);
		src = first;
		for (int l = 1; l < m->nlayers; l++)
		{
			const MmoeLayer *layer = &m->experts[i * m->nlayers + l];
			float	   *dst = l == m->nlayers - 1 ? s->experts + (size_t) i * rows * h
				: (l % 2 == 1 ? s->buf_b : s->buf_a);

			Dense(rows, layer, src, dst);
			Relu(dst, (size_t) rows * layer->out);
			Dropout(m, dropout, dst, rows, layer->out, m->expert_site[i * m->nlayers + l]);
			src = dst;
		}
		if (m->nlayers == 1)
			memcpy(s->experts + (size_t) i * rows * h, src, sizeof(float) * rows * h);
	}
}

/* Turn task t's gate logits that Experts left in fused_out into weights, row by row */
static void
StackedGates(const MmoeModel *m, MmoeScratch *s, int rows, int t)
{
	size_t		first = (size_t) m->nexperts * m->experts[0].out + (size_t) t * m->nexperts;

	for (int r = 0; r < rows; r++)
	{
		float	   *g = s->gates + (size_t) r * m->nexperts;

		memcpy(g, s->fused_out + (size_t) r * m->fused.out + first, sizeof(float) * m->nexperts);
		GateWeights(m, g);
	}
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
	Experts(m, s, rows, dropout);

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

		StackedGates(m, s, rows, t);

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
				int			p = s->display_position[r] < 0 ? m->positions : s->display_position[r];

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
