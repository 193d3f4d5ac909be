/*
 * kernel/mmoe_model.h
 *		The in-memory form of an MMoE model and its float32 forward kernel.
 *
 * Plain C with no PostgreSQL headers: the kernel (src/mmoe_forward.c) runs
 * over BLAS (src/linalg.h) and allocates nothing, so it can be tested and
 * benchmarked alone and reused by a training pass.  The PostgreSQL side
 * (src/mmoe.h) builds models from a config and a safetensors file.
 *
 * Forward pass for task t:
 *	z = [features, embedding of each categorical id in config order,
 *		 mean of the embeddings of each multi-categorical id list]
 *	E_i = expert_i(z)						every expert layer followed by ReLU
 *	g = softmax(gates.t(z))					noisy_top_k: softmax over the top k
 *											logits, zeros elsewhere, no noise
 *	h = sum_i g_i E_i
 *	h = (1 + latent_cross(context)) * h		with a latent cross
 *	logit = tower_t(h) + shallow.position[display_position, t]  (row P when missing)
 *	output = sigmoid(logit) (binary) or logit (regression)
 *
 * Layers follow PyTorch's nn.Linear layout (weight [out, in] row-major,
 * bias [out]).
 */
#ifndef MMOE_MODEL_H
#define MMOE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on a config (widths are also bounded by recsys.max_dim) */
#define MMOE_MAX_EXPERTS 1024
#define MMOE_MAX_LAYERS 64
#define MMOE_MAX_TASKS 64
#define MMOE_MAX_CATEGORICAL 64
#define MMOE_MAX_NAME 63
#define MMOE_MAX_POSITIONS 10000000

/* Most rows one forward pass takes (the batch paths work in chunks of this) */
#define MMOE_CHUNK_ROWS 256

/* Most bytes of scratch buffers (fewer rows per pass for huge models) */
#define MMOE_SCRATCH_MAX_BYTES (64 * 1024 * 1024)

typedef enum MmoeTaskType
{
	MMOE_BINARY,
	MMOE_REGRESSION
} MmoeTaskType;

typedef enum MmoeGateType
{
	MMOE_GATE_SOFTMAX,
	MMOE_GATE_NOISY_TOP_K
} MmoeGateType;

/* One nn.Linear: y = W x + b, W [out, in] row-major */
typedef struct MmoeLayer
{
	int			in;
	int			out;
	float	   *w;
	float	   *b;
} MmoeLayer;

typedef struct MmoeTask
{
	char	   *name;
	MmoeTaskType type;
	int			nhidden;		/* hidden tower layers; a last layer gives 1 output */
	MmoeLayer	gate;
	MmoeLayer  *tower;			/* nhidden + 1 layers */
	int		   *dropout_site;	/* first dropout unit of each hidden layer */
} MmoeTask;

typedef struct MmoeCategorical
{
	char	   *name;
	int			vocab;
	int			dim;
	float	   *table;			/* [vocab, dim] */
} MmoeCategorical;

/* The feature spec of a model that reads table rows (src/features/spec.h) */
struct FeatureSpec;

typedef struct MmoeModel
{
	int			input_dim;		/* dense features */
	int			in_width;		/* input_dim + sum of embedding dims */
	int			nexperts;
	int			nlayers;		/* linear layers per expert */
	int			expert_out;		/* width of the last expert layer */
	MmoeLayer  *experts;		/* [nexperts * nlayers] */
	int		   *expert_site;	/* first dropout unit of each expert layer */
	MmoeGateType gate;
	int			top_k;
	int			ntasks;
	MmoeTask   *tasks;
	int			ncategorical;
	MmoeCategorical *categorical;

	/*
	 * Multi-valued categorical features (embedding bags, mean-pooled as
	 * PyTorch's nn.EmbeddingBag(mode='mean')): their pooled embeddings sit
	 * at z[bag_offset ..] after the categorical embeddings.  The caller of
	 * MmoeForward pools them into x (MmoeBagMean); the trainer pools them
	 * itself from id lists, for their gradient.
	 */
	int			nbags;
	MmoeCategorical *bags;
	int			bag_offset;		/* input_dim + sum of categorical dims */

	/* the fitted feature spec of a model that reads rows, else NULL; kernels ignore it */
	const struct FeatureSpec *features;

	int			context_dim;	/* 0 without latent cross */
	MmoeLayer	latent;
	int			positions;		/* P, or 0 without a shallow tower */
	float	   *shallow;		/* [P + 1, ntasks]; row P = missing position */
	double		dropout;
	int			dropout_units;	/* hidden units that MC dropout masks */
	int			max_width;		/* widest hidden layer */

	/*
	 * Every expert's first layer and every gate read the same input, so
	 * their weights are kept stacked in one matrix (expert 0 .. n-1 rows,
	 * then gate 0 .. T-1 rows): a block of rows is one sgemm over it, a
	 * single row one matrix-vector product.  The layers' own w and b point
	 * into it.
	 */
	MmoeLayer	fused;			/* [nexperts * h1 + ntasks * nexperts, in_width] */
} MmoeModel;

/*
 * Buffers for forward passes of up to maxrows rows.  The caller fills x
 * (dense features at the start of each in_width row, pooled bag embeddings
 * at bag_offset), ids, context and display_position for the rows it scores; the
 * rest is the kernel's.
 */
typedef struct MmoeScratch
{
	int			maxrows;
	float	   *x;				/* [maxrows, in_width] */
	float	   *buf_a;			/* [maxrows, max_width] */
	float	   *buf_b;
	float	   *experts;		/* [nexperts, maxrows, expert_out] */
	float	   *gates;			/* [maxrows, nexperts] */
	float	   *mix;			/* [maxrows, expert_out] */
	float	   *cross;			/* [maxrows, expert_out] */
	float	   *context;		/* [maxrows, context_dim] */
	float	   *tower_out;		/* [maxrows] */
	int32_t    *ids;			/* [maxrows, ncategorical] */
	int32_t    *display_position;	/* [maxrows]; -1 = missing */
	float	   *fused_out;		/* [maxrows, fused.out] */
} MmoeScratch;

/* MC dropout: row r of a pass is sample first_sample + r */
typedef struct MmoeDropout
{
	double		rate;
	uint64_t	seed;
	int64_t		first_sample;
} MmoeDropout;

/* MmoeFuseFirstLayers must have run on a model before any forward pass */
extern int	MmoeFusedRows(const MmoeModel *model);
extern void MmoeFuseFirstLayers(MmoeModel *model, float *w, float *b);
extern void MmoeStackFirstLayers(MmoeModel *model, float *w, float *b);
extern int	MmoeScratchRows(const MmoeModel *model, int maxrows);
extern size_t MmoeScratchBytes(const MmoeModel *model, int rows);
extern void MmoeScratchInit(const MmoeModel *model, int rows, void *mem, MmoeScratch *s);
extern void MmoeForward(const MmoeModel *model, MmoeScratch *s, int rows,
						const MmoeDropout *dropout, float *out);
extern void MmoeGateWeights(const MmoeModel *model, MmoeScratch *s, int rows,
							int task, float *out);
extern double MmoeDropoutUniform(uint64_t seed, uint64_t n);
extern void MmoeGemv(const MmoeLayer *layer, const float *x, float *y);
extern void MmoeBagMean(const MmoeCategorical *bag, const int32_t *ids, int n, float *out);

#endif
