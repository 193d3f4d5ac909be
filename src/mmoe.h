/*
 * mmoe.h
 *		Multi-gate mixture-of-experts models (Ma et al., KDD 2018) with the
 *		YouTube ranker's additions: categorical embeddings, noisy top-k gates
 *		(served without noise), latent cross and a shallow position tower.
 *
 * A model is built from a validated config (jsonb) and a safetensors file
 * whose tensors follow PyTorch's nn.Linear layout (weight [out, in], bias
 * [out]).  Weights are held as float32 and the dense layers run through
 * float32 BLAS (src/linalg.c), one row (sgemv) or many rows (sgemm) at once.
 */
#ifndef MMOE_H
#define MMOE_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "safetensors.h"

/* Limits on a config (widths are also bounded by recsys.max_dim) */
#define MMOE_MAX_EXPERTS 1024
#define MMOE_MAX_LAYERS 64
#define MMOE_MAX_TASKS 64
#define MMOE_MAX_CATEGORICAL 64
#define MMOE_MAX_NAME 63
#define MMOE_MAX_POSITIONS 10000000

/* Most rows one forward pass takes (the batch paths work in chunks of this) */
#define MMOE_CHUNK_ROWS 256

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
	int			context_dim;	/* 0 without latent cross */
	MmoeLayer	latent;
	int			positions;		/* P, or 0 without a shallow tower */
	float	   *shallow;		/* [P + 1, ntasks]; row P = missing position */
	double		dropout;
	int			dropout_units;	/* hidden units that MC dropout masks */
	int			max_width;		/* widest hidden layer */
} MmoeModel;

/* Per-call buffers for forward passes of up to maxrows rows */
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
	int32	   *ids;			/* [maxrows, ncategorical] */
	int32	   *position;		/* [maxrows]; -1 = missing */
} MmoeScratch;

/* MC dropout: row r of a pass is sample first_sample + r */
typedef struct MmoeDropout
{
	double		rate;
	uint64		seed;
	int64		first_sample;
} MmoeDropout;

/* The model store's kind for MMoE models (registered by _PG_init) */
struct ModelKind;
extern const struct ModelKind MmoeModelKind;

extern MmoeModel *MmoeModelLoad(Jsonb *config, const unsigned char *data, uint64 len);
extern MmoeScratch *MmoeScratchCreate(const MmoeModel *model, int maxrows);
extern void MmoeForward(const MmoeModel *model, MmoeScratch *s, int rows,
						const MmoeDropout *dropout, float *out);
extern void MmoeGateWeights(const MmoeModel *model, MmoeScratch *s, int rows,
							int task, float *out);
extern double MmoeDropoutUniform(uint64 seed, uint64 n);

#endif
