/*
 * twotower_parity.c
 *		Runs the two-tower kernel (src/kernel/twotower.c) on small random
 *		problems and prints, as JSON, everything a reference needs to redo
 *		the same steps: the data, the initial parameters, the batches, the
 *		negatives drawn, and the kernel's losses, gradients and parameters
 *		after each Adam step.  test/kernels/twotower_parity.py recomputes
 *		them in PyTorch float64 and compares (`make check-twotower`).
 *
 * Cases: three tower shapes (relu MLP over dense + categorical + multi-
 * valued + id bags; tanh with normalized outputs and the logistic loss;
 * linear id-only towers, i.e. matrix factorization) times the four methods,
 * two steps each on batches drawn with repeats; and per shape one exact
 * step over every pair, which the reference checks against brute force
 * over all user-item pairs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/twotower.h"

/*
 * The test's own generator (splitmix64), so that this file needs no
 * PostgreSQL header and draws its data independently of kernel/rng.c.
 */
typedef struct Rng
{
	uint64_t	x;
} Rng;

/* Seed the generator */
static void
RngInit(Rng *r, uint64_t seed)
{
	r->x = seed;
}

/* Next 64 random bits */
static uint64_t
RngNext(Rng *r)
{
	uint64_t	z = (r->x += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* Uniform integer below n (modulo bias is irrelevant here) */
static uint64_t
RngBelow(Rng *r, uint64_t n)
{
	return RngNext(r) % n;
}

/* A standard normal (Box-Muller, cosine only) */
static double
RngNormal(Rng *r)
{
	double		u1 = ((RngNext(r) >> 11) + 1.0) / 9007199254740993.0;
	double		u2 = (RngNext(r) >> 11) / 9007199254740992.0;

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

#define NUSERS 6
#define NITEMS 5
#define NPAIRS 14
#define STEPS 2

static const char *const method_names[] = {"exact", "sogram", "sagram", "sampled"};

/* One side's generated inputs */
typedef struct Side
{
	TtInputs	in;
	float		dense[16 * 8];
	int64_t		start[16 * 8];
	int32_t		len[16 * 8];
	int32_t		ids[16 * 8 * 4];
} Side;

/* Print n doubles as a JSON array */
static void
PrintArray(const char *name, const double *x, size_t n, const char *sep)
{
	printf("\"%s\": [", name);
	for (size_t j = 0; j < n; j++)
		printf("%s%.17g", j ? ", " : "", x[j]);
	printf("]%s", sep);
}

/* Make n rows of inputs for a tower config: ids within vocab, bags of 0..3 ids (one for categorical) */
static void
MakeSide(Side *s, const TtTowerConfig *cfg, int n, const int *multi, Rng *rng)
{
	int64_t		nid = 0;

	memset(s, 0, sizeof(Side));
	for (int r = 0; r < n; r++)
	{
		for (int d = 0; d < cfg->dense_dim; d++)
			s->dense[r * cfg->dense_dim + d] = (float) RngNormal(rng);
		for (int f = 0; f < cfg->nbags; f++)
		{
			int			len;

			if (multi[f] == 2)		/* the entity's own id */
				len = 1;
			else if (multi[f] == 1)
				len = (int) RngBelow(rng, 4);
			else
				len = 1;
			s->start[r * cfg->nbags + f] = nid;
			s->len[r * cfg->nbags + f] = len;
			for (int j = 0; j < len; j++)
				s->ids[nid++] = multi[f] == 2 ? r : (int32_t) RngBelow(rng, cfg->vocab[f]);
		}
	}
	s->in.n = n;
	s->in.dense_dim = cfg->dense_dim;
	s->in.nbags = cfg->nbags;
	s->in.dense = s->dense;
	s->in.bag_start = s->start;
	s->in.bag_len = s->len;
	s->in.bag_ids = s->ids;
}

/* Print a side's inputs and config */
static void
PrintSide(const char *name, const Side *s, const TtTowerConfig *cfg, const char *sep)
{
	printf("\"%s\": {\"n\": %d, \"dense_dim\": %d, \"dense\": [", name, (int) s->in.n, cfg->dense_dim);
	for (int j = 0; j < s->in.n * cfg->dense_dim; j++)
		printf("%s%.17g", j ? ", " : "", (double) s->dense[j]);
	printf("], \"bags\": [");
	for (int r = 0; r < s->in.n; r++)
	{
		printf("%s[", r ? ", " : "");
		for (int f = 0; f < cfg->nbags; f++)
		{
			printf("%s[", f ? ", " : "");
			for (int j = 0; j < s->len[r * cfg->nbags + f]; j++)
				printf("%s%d", j ? ", " : "", s->ids[s->start[r * cfg->nbags + f] + j]);
			printf("]");
		}
		printf("]");
	}
	printf("], \"vocab\": [");
	for (int f = 0; f < cfg->nbags; f++)
		printf("%s%d", f ? ", " : "", cfg->vocab[f]);
	printf("], \"emb_dim\": [");
	for (int f = 0; f < cfg->nbags; f++)
		printf("%s%d", f ? ", " : "", cfg->emb_dim[f]);
	printf("], \"hidden\": [");
	for (int l = 0; l < cfg->nhidden; l++)
		printf("%s%d", l ? ", " : "", cfg->hidden[l]);
	printf("], \"activation\": \"%s\", \"out_dim\": %d, \"normalize\": %s}%s",
		   cfg->activation == TT_RELU ? "relu" : cfg->activation == TT_TANH ? "tanh" : "linear",
		   cfg->out_dim, cfg->normalize ? "true" : "false", sep);
}

/* Run one case: a method, its steps, and print it */
static void
RunCase(int shape, TtMethod method, bool full, const TtTowerConfig *ucfg, const TtTowerConfig *icfg,
		const TtData *data, const Side *us, const Side *is, TtOptions opt, bool first)
{
	TtTrainer	t;
	void	   *mem;
	int			nsteps = full ? 1 : STEPS;
	Rng			rng;

	opt.method = method;
	if (full)
		opt.batch_size = NPAIRS;
	mem = calloc(1, TtTrainerBytes(ucfg, icfg, &opt, NUSERS, NITEMS));
	TtTrainerInit(&t, ucfg, icfg, &opt, data, mem);
	TtTrainerStart(&t);
	RngInit(&rng, 1000 + shape * 10 + method);

	printf("%s{\"shape\": %d, \"method\": \"%s\", \"full\": %s, ", first ? "" : ",\n", shape,
		   method_names[method], full ? "true" : "false");
	printf("\"loss\": \"%s\", \"gramian_weight\": %.17g, \"l2\": %.17g, \"lr\": %.17g, "
		   "\"beta1\": %.17g, \"beta2\": %.17g, \"eps\": %.17g, \"alpha\": %.17g, "
		   "\"popularity\": %s, \"user_nparams\": %zu,\n",
		   opt.loss == TT_LOSS_SQUARED ? "squared" : "logistic", opt.gramian_weight, opt.l2,
		   opt.learning_rate, opt.beta1, opt.beta2, opt.eps, opt.alpha,
		   opt.popularity ? "true" : "false", t.user.nparams);
	PrintArray("params0", t.params, t.nparams, ",\n");
	printf("\"steps\": [");
	for (int s = 0; s < nsteps; s++)
	{
		int64_t		batch[NPAIRS];
		int			B = full ? NPAIRS : opt.batch_size;
		TtStepStats st;

		for (int b = 0; b < B; b++)
			batch[b] = full ? b : (int64_t) RngBelow(&rng, NPAIRS);
		TtTrainStep(&t, batch, B, &st);
		printf("%s{\"batch\": [", s ? ",\n" : "");
		for (int b = 0; b < B; b++)
			printf("%s%lld", b ? ", " : "", (long long) batch[b]);
		printf("], \"negatives\": [");
		if (method == TT_SAMPLED)
			for (int j = 0; j < opt.negatives; j++)
				printf("%s%d", j ? ", " : "", t.neg[j]);
		printf("], \"stats\": [%.17g, %.17g, %.17g, %.17g],\n", st.loss, st.observed,
			   st.penalty, st.l2);
		PrintArray("grad", t.grad, t.nparams, ",\n");
		TtAdamStep(&t);
		PrintArray("params", t.params, t.nparams, "}");
	}
	printf("]}");
	free(mem);
}

int
main(void)
{
	int			first = 1;

	printf("{\"cases\": [\n");
	for (int shape = 0; shape < 3; shape++)
	{
		TtTowerConfig ucfg,
					icfg;
		int			umulti[TT_MAX_BAGS] = {0},
					imulti[TT_MAX_BAGS] = {0};
		Side	   *us = calloc(1, sizeof(Side)),
				   *is = calloc(1, sizeof(Side));
		int32_t		pu[NPAIRS],
					pi[NPAIRS],
					ucount[NUSERS] = {0},
					icount[NITEMS] = {0};
		float		conf[NPAIRS];
		TtData		data;
		TtOptions	opt;
		Rng			rng;

		RngInit(&rng, 77 + shape);
		memset(&ucfg, 0, sizeof(ucfg));
		memset(&icfg, 0, sizeof(icfg));
		ucfg.out_dim = icfg.out_dim = 4;
		if (shape == 0)
		{
			/* relu MLPs over dense, a categorical, a multi-valued bag and the id */
			ucfg.dense_dim = 3;
			ucfg.nbags = 3;
			ucfg.vocab[0] = 5, ucfg.emb_dim[0] = 3;
			ucfg.vocab[1] = 7, ucfg.emb_dim[1] = 2, umulti[1] = 1;
			ucfg.vocab[2] = NUSERS, ucfg.emb_dim[2] = 4, umulti[2] = 2;
			ucfg.nhidden = 2, ucfg.hidden[0] = 8, ucfg.hidden[1] = 6;
			ucfg.activation = TT_RELU;
			icfg.dense_dim = 2;
			icfg.nbags = 2;
			icfg.vocab[0] = 6, icfg.emb_dim[0] = 3, imulti[0] = 1;
			icfg.vocab[1] = NITEMS, icfg.emb_dim[1] = 2, imulti[1] = 2;
			icfg.nhidden = 1, icfg.hidden[0] = 7;
			icfg.activation = TT_RELU;
		}
		else if (shape == 1)
		{
			/* tanh, normalized outputs */
			ucfg.dense_dim = 4;
			ucfg.nbags = 1;
			ucfg.vocab[0] = 4, ucfg.emb_dim[0] = 3, umulti[0] = 1;
			ucfg.nhidden = 1, ucfg.hidden[0] = 5;
			ucfg.activation = TT_TANH;
			ucfg.normalize = true;
			icfg.dense_dim = 3;
			icfg.nbags = 0;
			icfg.nhidden = 1, icfg.hidden[0] = 6;
			icfg.activation = TT_TANH;
			icfg.normalize = true;
		}
		else
		{
			/* linear id-only towers: matrix factorization */
			ucfg.nbags = 1;
			ucfg.vocab[0] = NUSERS, ucfg.emb_dim[0] = 4, umulti[0] = 2;
			ucfg.activation = TT_LINEAR;
			icfg.nbags = 1;
			icfg.vocab[0] = NITEMS, icfg.emb_dim[0] = 4, imulti[0] = 2;
			icfg.activation = TT_LINEAR;
		}
		MakeSide(us, &ucfg, NUSERS, umulti, &rng);
		MakeSide(is, &icfg, NITEMS, imulti, &rng);

		/* distinct pairs covering every user and item, then random ones */
		for (int p = 0; p < NPAIRS; p++)
		{
			bool		dup;

			do
			{
				pu[p] = p < NUSERS ? p : (int32_t) RngBelow(&rng, NUSERS);
				pi[p] = p < NITEMS ? (p + 1) % NITEMS : (int32_t) RngBelow(&rng, NITEMS);
				if (p == NITEMS)
					pi[p] = 0;
				dup = false;
				for (int q = 0; q < p; q++)
					dup |= pu[q] == pu[p] && pi[q] == pi[p];
			} while (dup);
			conf[p] = (float) (1.0 + RngBelow(&rng, 4));
			ucount[pu[p]]++;
			icount[pi[p]]++;
		}
		data.npairs = NPAIRS;
		data.pu = pu;
		data.pi = pi;
		data.conf = conf;
		data.users = &us->in;
		data.items = &is->in;
		data.user_count = ucount;
		data.item_count = icount;

		memset(&opt, 0, sizeof(opt));
		opt.loss = shape == 1 ? TT_LOSS_LOGISTIC : TT_LOSS_SQUARED;
		opt.gramian_weight = shape == 1 ? 0.7 : 0.3;
		opt.l2 = shape == 2 ? 0.0 : 0.01;
		opt.learning_rate = 0.05;
		opt.beta1 = 0.9;
		opt.beta2 = 0.999;
		opt.eps = 1e-8;
		opt.alpha = 0.3;
		opt.batch_size = 5;
		opt.negatives = 3;
		opt.popularity = shape == 1;
		opt.seed = 5 + shape;

		if (first)
			first = 0;
		else
			printf(",\n");
		printf("{\"pairs\": {\"pu\": [");
		for (int p = 0; p < NPAIRS; p++)
			printf("%s%d", p ? ", " : "", pu[p]);
		printf("], \"pi\": [");
		for (int p = 0; p < NPAIRS; p++)
			printf("%s%d", p ? ", " : "", pi[p]);
		printf("], \"conf\": [");
		for (int p = 0; p < NPAIRS; p++)
			printf("%s%.17g", p ? ", " : "", (double) conf[p]);
		printf("]},\n");
		PrintSide("user", us, &ucfg, ",\n");
		PrintSide("item", is, &icfg, ",\n");
		printf("\"runs\": [");
		for (int m = 0; m < 4; m++)
			RunCase(shape, (TtMethod) m, false, &ucfg, &icfg, &data, us, is, opt, m == 0);
		RunCase(shape, TT_EXACT, true, &ucfg, &icfg, &data, us, is, opt, false);
		printf("]}");
		free(us);
		free(is);
	}
	printf("\n]}\n");
	return 0;
}
