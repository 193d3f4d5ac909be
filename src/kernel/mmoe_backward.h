/*
 * kernel/mmoe_backward.h
 *		Training of MMoE models: forward pass with saved activations, the
 *		gradient of every tensor, multi-task losses (uncertainty or fixed
 *		weights), Shazeer's load-balancing loss and Adam.
 *
 * Plain C with no PostgreSQL headers (like src/mmoe_forward.c), so the
 * kernel can be tested and benchmarked alone.  The caller hands in every
 * buffer: MmoeTrainerBytes() says how much, MmoeTrainerInit() lays it out.
 *
 * One training step over a batch of B rows:
 *	z = [features, embeddings, mean-pooled bag embeddings]; E_i = experts (ReLU, inverted dropout at the
 *	config's rate on every hidden unit, the masks of predict_mc's numbering);
 *	per task t: clean logits c = W_t z + b_t; for noisy_top_k gates noisy
 *	logits n = c + eps * (softplus(W_noise z) + 0.01), eps ~ N(0, 1); gate g =
 *	softmax over the top k of n (all experts for softmax gates); expert
 *	dropout keeps expert i with probability 1 - p and renormalizes g over the
 *	kept experts (unchanged when that leaves no weight); h = sum_i g_i E_i,
 *	times (1 + latent_cross(context)); tower; plus the shallow tower's entry
 *	for the position, sent to the missing bucket with probability
 *	position_dropout.  Loss of task t: mean over rows with a label of the
 *	binary cross-entropy on the logit or the squared error; the objective is
 *	sum_t w_t(L_t) + balance_weight * sum_t (cv^2(importance_t) + cv^2(load_t))
 *	with w_t(L) = e^-s L + s/2 (binary) or (e^-s L + s)/2 (regression) under
 *	uncertainty weighting, fixed weight * L otherwise.
 *
 * Every random draw is MmoeDropoutUniform(seed, key * R + slot) for the
 * row's key (the caller's: epoch * rows + row number, so it does not depend
 * on batching) and the slots: hidden units [0, U), expert dropout [U, U+n),
 * position dropout U+n, then two uniforms per (task, expert) for the gate
 * noise (Box-Muller: sqrt(-2 ln(1 - u1)) cos(2 pi u2)).
 */
#ifndef MMOE_BACKWARD_H
#define MMOE_BACKWARD_H

#include "kernel/mmoe_model.h"

/* Longest tensor name the trainer builds */
#define MMOE_TENSOR_NAME 160

typedef struct MmoeTrainOptions
{
	bool		uncertainty;	/* learned log variances, else fixed weights */
	double		task_weights[MMOE_MAX_TASKS];	/* fixed weighting */
	double		expert_dropout;
	double		position_dropout;
	double		dropout;		/* hidden units (the config's rate) */
	double		balance_weight;
	bool		gate_noise;		/* noisy_top_k gates train with noise */
	uint64_t	seed;
	double		beta1;
	double		beta2;
	double		eps;
} MmoeTrainOptions;

/* One tensor of the flat parameter vector */
typedef struct MmoeTensor
{
	char		name[MMOE_TENSOR_NAME];
	int			ndim;
	int			dims[2];
	size_t		offset;			/* into params, grad, m and v */
	size_t		size;
	bool		exported;		/* part of the safetensors file */
} MmoeTensor;

/* What one step saw: per-row loss sums and counts per task, the objective */
typedef struct MmoeStepStats
{
	double		loss_sum[MMOE_MAX_TASKS];
	int64_t		count[MMOE_MAX_TASKS];
	double		objective;
	double		balance;
} MmoeStepStats;

typedef struct MmoeTrainer
{
	MmoeModel  *m;				/* layer pointers point into params */
	MmoeTrainOptions opt;
	int			maxrows;
	int			ntensors;
	MmoeTensor *tensors;
	size_t		nparams;
	float	   *params;
	float	   *grad;
	float	   *adam_m;
	float	   *adam_v;
	float	  **noise_w;		/* per task [n, in_width], NULL without */
	float	   *log_vars;		/* [ntasks] */
	int64_t		steps;			/* Adam steps taken */
	int			slots;			/* random draws per row (R) */

	/* batch inputs, filled by the caller: rows 0..B-1 */
	float	   *z;				/* [B, in_width], features first */
	int32_t    *ids;			/* [B, ncategorical] */
	const int32_t *bag_ids;		/* the caller's id lists of multi-categorical features */
	int64_t    *bag_start;		/* [B, nbags] first id of row r's bag b in bag_ids */
	int32_t    *bag_len;		/* [B, nbags] its length (0 = empty bag: zeros) */
	float	   *context;		/* [B, context_dim] */
	int32_t    *display_position;	/* [B], -1 = missing */
	float	   *labels;			/* [B, ntasks] */
	uint8_t    *has_label;		/* [B, ntasks] */
	uint64_t   *key;			/* [B] random stream key of each row */

	/* activations and work buffers */
	float	   *eout;			/* expert layer outputs, [n][l] blocks of [B, out_l] */
	float	   *dE;				/* [n, B, h] */
	float	   *cross;			/* [B, h] */
	float	   *dcross;			/* [B, h] */
	float	   *dz;				/* [B, in_width] */
	float	   *clean;			/* [B, n] */
	float	   *raw;			/* [B, n] */
	float	   *sigma;			/* [B, n] */
	float	   *noise;			/* [B, n] */
	float	   *noisy;			/* [B, n] */
	float	   *g;				/* [B, n] before expert dropout */
	float	   *gp;				/* [B, n] after */
	float	   *dg;				/* [B, n] */
	float	   *dlog;			/* [B, n] */
	float	   *draw;			/* [B, n] */
	uint8_t    *keep;			/* [B, n] expert kept (expert dropout) */
	uint8_t    *sel;			/* [B, n] in the top k */
	int32_t    *thr;			/* [B, 2] experts of the k-th and k+1-th noisy logits */
	uint8_t    *renorm;			/* [B] expert dropout renormalized this row */
	int32_t    *display_position_row;	/* [B] row of the shallow tower used (missing when dropped) */
	float	   *mix0;			/* [B, h] mixture before the latent cross */
	float	   *mix;			/* [B, h] tower input */
	float	   *tout;			/* tower layer outputs, [B, w_l] blocks */
	float	   *logit;			/* [B] */
	float	   *dlogit;			/* [B] */
	float	   *work_a;			/* [B, max(h, max_width, in_width)] */
	float	   *work_b;
	double	   *imp;			/* [n] */
	double	   *load;			/* [n] */
	double	   *dimp;			/* [n] */
	double	   *dload;			/* [n] */
} MmoeTrainer;

extern size_t MmoeTrainerBytes(const MmoeModel *m, const MmoeTrainOptions *opt, int maxrows);
extern size_t MmoeTrainerParams(const MmoeModel *m, const MmoeTrainOptions *opt);
extern void MmoeTrainerInit(MmoeTrainer *t, MmoeModel *m, const MmoeTrainOptions *opt,
							int maxrows, void *mem);
extern int	MmoeTrainerMaxRows(const MmoeModel *m, const MmoeTrainOptions *opt, int maxrows);
extern void MmoeTrainStep(MmoeTrainer *t, int rows, MmoeStepStats *stats);
extern void MmoeAdamStep(MmoeTrainer *t, double lr);
extern double MmoeGateNoise(uint64_t seed, uint64_t n);

#endif
