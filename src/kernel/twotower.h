/*
 * kernel/twotower.h
 *		Two-tower models over features (doc/two-tower.md): each tower is an
 *		MLP over [dense input | mean-pooled embeddings of id bags], scored by
 *		the dot product of the two towers' outputs, trained with Adam on
 *
 *	  L = (1/B) sum_b c_b l(s_b) + w <G_u, G_v>_F + lambda |theta|^2
 *
 *		with entity Gramians as means (G_u = (1/|U|) sum_u u u^T) whose
 *		gradient is estimated (stop-gradient) by one of four methods: exact,
 *		sogram, sagram, sampled.
 *
 * Plain C with no PostgreSQL headers: float64 throughout, so that one step
 * is checked against a PyTorch float64 reference (test/kernels/).  The
 * caller hands in every buffer: TtTowerBytes / TtTrainerBytes say how much.
 */
#ifndef TWOTOWER_H
#define TWOTOWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TT_MAX_BAGS 64			/* id bags (embedding tables) per tower */
#define TT_MAX_HIDDEN 8			/* hidden layers per tower */
#define TT_MAX_WIDTH 65536		/* widest layer or input */
#define TT_MAX_VOCAB 100000000	/* rows of one embedding table */

typedef enum TtActivation
{
	TT_RELU,
	TT_TANH,
	TT_LINEAR
} TtActivation;

typedef enum TtMethod
{
	TT_EXACT,
	TT_SOGRAM,
	TT_SAGRAM,
	TT_SAMPLED
} TtMethod;

typedef enum TtLoss
{
	TT_LOSS_SQUARED,			/* c (s - 1)^2 */
	TT_LOSS_LOGISTIC			/* c log(1 + e^-s) */
} TtLoss;

/* The shape of one tower */
typedef struct TtTowerConfig
{
	int			dense_dim;
	int			nbags;
	int			vocab[TT_MAX_BAGS];	/* rows of each embedding table */
	int			emb_dim[TT_MAX_BAGS];
	int			nhidden;
	int			hidden[TT_MAX_HIDDEN];
	TtActivation activation;	/* of the hidden layers; the output is linear */
	int			out_dim;
	bool		normalize;		/* output divided by max(|o|, 1e-12) */
} TtTowerConfig;

/*
 * The inputs of n entities (rows of one feature table): dense values and,
 * per bag, a list of ids (a categorical column is a bag of one id; an empty
 * bag pools to zeros).
 */
typedef struct TtInputs
{
	int64_t		n;
	int			dense_dim;
	int			nbags;
	const float *dense;			/* [n, dense_dim] */
	const int64_t *bag_start;	/* [n, nbags] offset into bag_ids */
	const int32_t *bag_len;		/* [n, nbags] */
	const int32_t *bag_ids;
} TtInputs;

/* One tower: layout of its parameters and its activations for up to maxrows rows */
typedef struct TtTower
{
	TtTowerConfig cfg;
	int			in_dim;			/* dense_dim + sum of emb_dim */
	int			nlayers;		/* nhidden + 1 linear layers */
	int			width[TT_MAX_HIDDEN + 2];	/* width[0] = in_dim ... width[nlayers] = out_dim */
	int			maxwidth;
	size_t		nparams;
	size_t		emb_off[TT_MAX_BAGS];	/* [vocab, emb_dim] */
	size_t		w_off[TT_MAX_HIDDEN + 1];	/* [width[l+1], width[l]] (PyTorch layout) */
	size_t		b_off[TT_MAX_HIDDEN + 1];
	int			maxrows;
	const int64_t *rows;		/* the rows of the last forward pass */
	int			nrows;
	double	   *act[TT_MAX_HIDDEN + 2];	/* act[0] input, act[l] layer l output */
	double	   *out;			/* [maxrows, out_dim] (normalized when asked) */
	double	   *norm;			/* [maxrows] |o| before normalization */
	double	   *work_a;			/* [maxrows, maxwidth] */
	double	   *work_b;
	void		(*check) (void);	/* called per block of rows in long loops (cancel) */
} TtTower;

typedef struct TtOptions
{
	TtMethod	method;
	TtLoss		loss;
	double		gramian_weight;
	double		l2;				/* on every weight and embedding (not biases) */
	double		learning_rate;
	double		beta1;
	double		beta2;
	double		eps;
	double		alpha;			/* sogram */
	int			batch_size;
	int			negatives;		/* sampled: items per batch */
	bool		popularity;		/* sampled: negatives by count, else uniform */
	uint64_t	seed;
} TtOptions;

/* Training pairs (distinct (user, item), summed confidences) and their entities */
typedef struct TtData
{
	int64_t		npairs;
	const int32_t *pu;			/* user row of each pair */
	const int32_t *pi;			/* item row of each pair */
	const float *conf;
	const TtInputs *users;		/* every row appears in at least one pair */
	const TtInputs *items;
	const int32_t *user_count;	/* pairs per user row */
	const int32_t *item_count;
} TtData;

typedef struct TtStepStats
{
	double		loss;			/* observed + penalty + l2 */
	double		observed;
	double		penalty;		/* w <G_u_hat, G_v_hat>_F (sampled: its estimate) */
	double		l2;
} TtStepStats;

struct Rng;
struct TtAlias;

typedef struct TtTrainer
{
	TtOptions	opt;
	TtTower		user;
	TtTower		item;
	const TtData *data;
	size_t		nparams;		/* user tower's, then item tower's */
	double	   *params;
	double	   *grad;
	double	   *adam_m;
	double	   *adam_v;
	int64_t		steps;
	int			k;
	double	   *gu_hat;			/* [k, k] estimates used by the last step */
	double	   *gv_hat;
	double	   *su;				/* sagram: mean of cached outer products */
	double	   *sv;
	double	   *cache_u;		/* sagram: [nusers, k] */
	double	   *cache_v;		/* [nitems, k] */
	int64_t    *stamp_u;		/* sagram: last step an entity's cache moved */
	int64_t    *stamp_v;
	double	   *psd_work;
	int		   *psd_iwork;
	size_t		psd_lwork;
	size_t		psd_liwork;
	struct Rng *rng;
	struct TtAlias *alias;		/* sampled: the negatives' distribution */
	double	   *neg_q;			/* [nitems] probability of each item */
	int64_t    *urows;			/* [B] */
	int64_t    *irows;			/* [max(B, negatives)] */
	int32_t    *neg;			/* [negatives] the last step's draws */
	double	   *u;				/* [B, k] copies of the batch's outputs */
	double	   *v;
	double	   *du;
	double	   *dv;
	double	   *scores;			/* [B, negatives] */
	double	   *wu;				/* [B] importance weights of the batch's users */
	double	   *wv;
	double	   *batch_g;		/* [k, k] */
	double	   *tmp_g;
} TtTrainer;

extern size_t TtTowerLayout(TtTower *t, const TtTowerConfig *cfg);
extern size_t TtTowerBytes(const TtTowerConfig *cfg, int maxrows);
extern void TtTowerInit(TtTower *t, const TtTowerConfig *cfg, int maxrows, void *mem);
extern void TtTowerInitParams(const TtTower *t, double *params, uint64_t seed);
extern void TtTowerForward(TtTower *t, const double *params, const TtInputs *in,
						   const int64_t *rows, int n);
extern void TtTowerBackward(TtTower *t, const double *params, double *grad,
							const TtInputs *in, const double *dout);
extern void TtTowerGramian(TtTower *t, const double *params, const TtInputs *in,
						   double *g, double *cache);

extern size_t TtTrainerBytes(const TtTowerConfig *ucfg, const TtTowerConfig *icfg,
							 const TtOptions *opt, int64_t nusers, int64_t nitems);
extern void TtTrainerInit(TtTrainer *t, const TtTowerConfig *ucfg, const TtTowerConfig *icfg,
						  const TtOptions *opt, const TtData *data, void *mem);
extern void TtTrainerStart(TtTrainer *t);
extern void TtTrainStep(TtTrainer *t, const int64_t *pairs, int B, TtStepStats *stats);
extern void TtAdamStep(TtTrainer *t);
extern double TtExactPenalty(TtTrainer *t);

#endif
