/*
 * fuzz_aggstates.c
 *		libFuzzer target for the bytea aggregate states (src/aggkernel.c, with
 *		src/rankbuffer.c and src/linalg.c; no PostgreSQL).
 *
 * Each input names a state type and gives either raw state bytes, or the
 * parameters of a valid state plus byte patches laid over it (which reaches
 * deep into the layouts quickly).  Whatever the validator accepts is then put
 * through what the SQL support functions do with it: the transition (with
 * the shallow check an aggregate's own state gets, and with the full one),
 * combine with a valid partner on either side and with itself, and the
 * final function.  A state the validator accepts must survive all of them;
 * the sanitizers catch out-of-bounds access, leaks and undefined behaviour,
 * and a transition of an accepted state must give an accepted state.
 *
 * Differential oracle: for the gramian and als_solve states (whose
 * buffered, signed rank updates are the subtle part) the sums after the
 * transitions must equal the sums before plus a naive recomputation of the
 * rows' terms, and the sums of a combined state the sum of both sides', to
 * a tolerance relative to the magnitudes involved; log_loss's combine must
 * add its sums.  A kernel that computes something wrong without touching
 * bad memory stops the fuzzer too.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel/aggkernel.h"
#include "kernel/linalg.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DIM 8192			/* recsys.max_dim at its hard limit */

/* A reader over the fuzzer's bytes that yields zeros once they run out */
typedef struct Input
{
	const uint8_t *p;
	size_t		n;
} Input;

/* Get the next byte of the input (0 past its end) */
static uint8_t
Byte(Input *in)
{
	uint8_t		b = 0;

	if (in->n > 0)
	{
		b = *in->p++;
		in->n--;
	}
	return b;
}

/* Get a copy of size bytes in a buffer of exactly that size (for ASan) */
static void *
Copy(const void *src, size_t size)
{
	void	   *p = malloc(size ? size : 1);

	memcpy(p, src, size);
	return p;
}

/* Stop the fuzzer: an accepted state misbehaved */
static void
Fail(void)
{
	abort();
}

/*
 * Get whether a counter is far from 2^63 - 1: validators refuse a counter at
 * the limit (the next row would overflow it), so a transition may take a
 * state just below the limit to one the next call refuses, cleanly
 */
static bool
Roomy(int64_t count)
{
	return count < ((int64_t) 1 << 62);
}

/* Get a row value from the input: small, large, negative or zero */
static double
Value(Input *in)
{
	static const double values[] = {0.0, 1.0, -1.0, 0.5, 3.0, -2.5, 1e3, -1e6, 1e150, 1e-300};

	return values[Byte(in) % (sizeof(values) / sizeof(values[0]))];
}

/* ---------------- differential oracle ---------------- */

/*
 * Stop the fuzzer unless got[i] equals want[i] within 1e-9 of scale[i] (the
 * sum of the magnitudes that went into it) for every i; skipped where the
 * naive value is not finite or too large to tell
 */
static void
Oracle(const double *got, const double *want, const double *scale, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(want[i]) || !isfinite(scale[i]) || scale[i] > 1e250)
			return;
	for (size_t i = 0; i < n; i++)
		if (!(fabs(got[i] - want[i]) <= 1e-9 * scale[i] + 1e-280))
			Fail();
}

/* Rows a transition added (naive copy: weight or confidence and values) */
typedef struct Rows
{
	int			n;
	double		w[8];
	double	   *x;				/* n x k */
} Rows;

/*
 * Get the magnitude of what went into each element of a rank-buffered
 * accumulator (k x k, both halves): |the live triangle| plus |x_i x_j| of
 * every buffered row, so that a sum that cancels (1e300 - 1e300) does not
 * make the tolerance vanish
 */
static double *
RankScale(const RankBuffer *b, const double *matrix, const double *rows)
{
	int			k = b->dim;
	double	   *scale = malloc(sizeof(double) * k * k);
	const double *neg = rows + (size_t) (b->cap - b->n_neg) * k;

	for (int i = 0; i < k; i++)
		for (int j = 0; j < k; j++)
		{
			int			lo = i < j ? i : j;
			int			hi = i < j ? j : i;
			double		s = fabs(matrix[(size_t) hi * k + lo]);

			for (int r = 0; r < b->n_pos; r++)
				s += fabs(rows[(size_t) r * k + i] * rows[(size_t) r * k + j]);
			for (int r = 0; r < b->n_neg; r++)
				s += fabs(neg[(size_t) r * k + i] * neg[(size_t) r * k + j]);
			scale[(size_t) i * k + j] = s;
		}
	return scale;
}

/*
 * Check m1 = m0 + sum_r (w_r - shift) x_r x_r^T (k x k, both halves); scale
 * (freed here) is the magnitude of the state m0 came from
 */
static void
OracleRank(int k, const double *m0, const double *m1, const Rows *rows, double shift, double *scale)
{
	size_t		kk = (size_t) k * k;
	double	   *want = malloc(sizeof(double) * kk);

	for (size_t i = 0; i < kk; i++)
		want[i] = m0[i];
	for (int r = 0; r < rows->n; r++)
	{
		double		coef = rows->w[r] - shift;
		const double *x = rows->x + (size_t) r * k;

		for (int i = 0; i < k; i++)
			for (int j = 0; j < k; j++)
			{
				want[(size_t) i * k + j] += coef * x[i] * x[j];
				scale[(size_t) i * k + j] += fabs(coef * x[i] * x[j]);
			}
	}
	Oracle(m1, want, scale, kk);
	free(want);
	free(scale);
}

/*
 * Check that each of n sums of a combined state is the sum of both sides';
 * sa and sb (freed here, or NULL for |a| and |b|) are the sides' magnitudes
 */
static void
OracleSum(const double *got, const double *a, const double *b, size_t n, double *sa, double *sb)
{
	double	   *want = malloc(sizeof(double) * n);
	double	   *scale = malloc(sizeof(double) * n);

	for (size_t i = 0; i < n; i++)
	{
		want[i] = a[i] + b[i];
		scale[i] = (sa ? sa[i] : fabs(a[i])) + (sb ? sb[i] : fabs(b[i]));
	}
	Oracle(got, want, scale, n);
	free(want);
	free(scale);
	free(sa);
	free(sb);
}

/* ---------------- gramian ---------------- */

/* Get a new valid Gramian state for k and buf_cap rows */
static GramianState *
NewGramian(int dim, int cap)
{
	size_t		size = GramianStateSize(dim, cap);
	GramianState *s = calloc(1, size);

	GramianStateInit(s, dim, cap);
	return s;
}

/* Put one checked Gramian state of size bytes through every support function */
static void
RunGramian(GramianState *s, size_t size, Input *in)
{
	bool		deep;
	GramianState *t;
	GramianState *p;
	Rows		rows = {0};
	size_t		kk;
	double	   *m0;
	double	   *m1;

	if (GramianStateCheck(s, size, MAX_DIM) != NULL)
		return;
	deep = GramianStateCheckValues(s) == NULL;
	kk = (size_t) s->buf.dim * s->buf.dim;
	m0 = malloc(sizeof(double) * kk);
	m1 = malloc(sizeof(double) * kk);
	rows.x = malloc(sizeof(double) * 8 * s->buf.dim);

	/* transitions: a few rows of either sign, then the header must still hold */
	t = Copy(s, size);
	for (int r = 0, nrows = 1 + Byte(in) % 8; r < nrows; r++)
	{
		double		w = Value(in);
		double	   *slot = GramianStateSlot(t, w);

		rows.w[r] = w;
		for (int i = 0; i < t->buf.dim; i++)
		{
			rows.x[(size_t) r * t->buf.dim + i] = Value(in);
			slot[i] = rows.x[(size_t) r * t->buf.dim + i] * RankBufferScale(w);
		}
		GramianStateCommit(t, w);
		rows.n = r + 1;
		/* each SQL call validates its state first */
		if (GramianStateCheck(t, size, MAX_DIM) != NULL)
		{
			if (Roomy(t->count))
				Fail();
			rows.n = -1;
			break;
		}
	}
	/* the oracle: the sums grew by sum_r w_r x_r x_r^T */
	if (deep && rows.n > 0)
	{
		GramianStateResult(s, m0);
		GramianStateResult(t, m1);
		OracleRank(s->buf.dim, m0, m1, &rows, 0.0,
				   RankScale(&s->buf, GramianMatrix(s), GramianBuffer(s)));
	}
	free(t);
	free(rows.x);
	if (!deep)
	{
		free(m0);
		free(m1);
		return;
	}

	/* combine with a valid partner on either side, and with itself */
	p = NewGramian(s->buf.dim, 1 + Byte(in) % 16);
	{
		double	   *slot = GramianStateSlot(p, 1.0);

		for (int i = 0; i < p->buf.dim; i++)
			slot[i] = Value(in);
		GramianStateCommit(p, 1.0);
	}
	t = Copy(s, size);
	if (GramianStateCombine(t, p) == AGG_OK)
	{
		double	   *mp = malloc(sizeof(double) * kk);

		/* the oracle: a combined state sums both sides */
		GramianStateResult(s, m0);
		GramianStateResult(p, mp);
		GramianStateResult(t, m1);
		OracleSum(m1, m0, mp, kk, RankScale(&s->buf, GramianMatrix(s), GramianBuffer(s)),
				  RankScale(&p->buf, GramianMatrix(p), GramianBuffer(p)));
		free(mp);
	}
	free(t);
	free(m0);
	free(m1);
	t = Copy(p, GramianStateSize(p->buf.dim, p->buf.cap));
	(void) GramianStateCombine(t, s);
	free(t);
	t = Copy(s, size);
	(void) GramianStateCombine(t, s);
	free(t);
	t = Copy(s, size);
	GramianStateFlush(t);
	free(t);
	free(p);

	/* final */
	{
		double	   *m = malloc(sizeof(double) * s->buf.dim * s->buf.dim);

		GramianStateResult(s, m);
		free(m);
	}
}

/* ---------------- als_solve ---------------- */

/* Get a new valid als_solve state for k, buf_cap rows, G = g (or identity) */
static AlsState *
NewAls(int dim, int cap, const double *g, double gw, double l2)
{
	size_t		size = AlsStateSize(dim, cap);
	AlsState   *s = calloc(1, size);

	s->hdr.magic = ALS_MAGIC;
	s->hdr.version = ALS_VERSION;
	s->buf.dim = dim;
	s->buf.cap = cap;
	s->gramian_weight = gw;
	s->l2 = l2;
	for (int i = 0; i < dim; i++)
		for (int j = 0; j < dim; j++)
			AlsGramian(s)[i * dim + j] = g ? g[i * dim + j] : (i == j);
	return s;
}

/*
 * Add a few pairs to a checked als_solve state; rows, when not NULL, gets
 * them (n = -1 when a check stopped the transitions)
 */
static void
AlsRows(AlsState *t, size_t size, Input *in, bool check, Rows *rows)
{
	for (int r = 0, nrows = 1 + Byte(in) % 8; r < nrows; r++)
	{
		double		c = Byte(in) / 16.0;
		double	   *slot = AlsStateSlot(t, c);

		for (int i = 0; i < t->buf.dim; i++)
		{
			slot[i] = Value(in);
			if (rows)
				rows->x[(size_t) r * t->buf.dim + i] = slot[i];
		}
		/* an overflow is an error in SQL: the state is not used again */
		if (AlsStateCommit(t, c) != AGG_OK)
		{
			if (rows)
				rows->n = -1;
			break;
		}
		if (rows)
		{
			rows->w[r] = c;
			rows->n = r + 1;
		}
		/* each SQL call validates its state first */
		if (check && AlsStateCheck(t, size, MAX_DIM) != NULL)
		{
			if (Roomy(t->count))
				Fail();
			if (rows)
				rows->n = -1;
			break;
		}
	}
}

/* Get the full k x k matrix sum_j (c_j - w) v_j v_j^T of an als_solve state, and b */
static void
AlsSums(const AlsState *s, double *m, double *b)
{
	int			k = s->buf.dim;

	memcpy(m, AlsMatrix(s), sizeof(double) * k * k);
	RankBufferFold(&s->buf, AlsBuffer(s), m);
	LinalgSymmetrize(k, m);
	memcpy(b, AlsRhs(s), sizeof(double) * k);
}

/* Put one checked als_solve state of size bytes through every support function */
static void
RunAls(AlsState *s, size_t size, Input *in)
{
	AlsState   *t;
	AlsState   *p;
	int			k;
	Rows		rows = {0};

	if (AlsStateCheck(s, size, MAX_DIM) != NULL)
		return;
	k = s->buf.dim;
	rows.x = malloc(sizeof(double) * 8 * k);
	t = Copy(s, size);
	AlsRows(t, size, in, true, &rows);
	/* the oracle: A grew by sum (c - w) v v^T and b by sum c v */
	if (AlsStateCheckValues(s) == NULL && rows.n > 0)
	{
		double	   *m0 = malloc(sizeof(double) * k * k);
		double	   *m1 = malloc(sizeof(double) * k * k);
		double	   *b0 = malloc(sizeof(double) * k);
		double	   *b1 = malloc(sizeof(double) * k);
		double	   *bw = malloc(sizeof(double) * k);
		double	   *bs = malloc(sizeof(double) * k);

		AlsSums(s, m0, b0);
		AlsSums(t, m1, b1);
		OracleRank(k, m0, m1, &rows, s->gramian_weight, RankScale(&s->buf, AlsMatrix(s), AlsBuffer(s)));
		for (int i = 0; i < k; i++)
		{
			bw[i] = b0[i];
			bs[i] = fabs(b0[i]);
			for (int r = 0; r < rows.n; r++)
			{
				bw[i] += rows.w[r] * rows.x[(size_t) r * k + i];
				bs[i] += fabs(rows.w[r] * rows.x[(size_t) r * k + i]);
			}
		}
		Oracle(b1, bw, bs, k);
		free(m0);
		free(m1);
		free(b0);
		free(b1);
		free(bw);
		free(bs);
	}
	free(t);
	free(rows.x);
	if (AlsStateCheckValues(s) != NULL)
		return;

	p = NewAls(k, 1 + Byte(in) % 16, AlsGramian(s), s->gramian_weight, s->l2);
	AlsRows(p, AlsStateSize(k, p->buf.cap), in, false, NULL);
	if (AlsStateCheckValues(p) == NULL)
	{
		t = Copy(s, size);
		if (AlsStateCombine(t, p) == AGG_OK)
		{
			double	   *ms = malloc(sizeof(double) * k * k);
			double	   *mp = malloc(sizeof(double) * k * k);
			double	   *mt = malloc(sizeof(double) * k * k);
			double	   *bs = malloc(sizeof(double) * k);
			double	   *bp = malloc(sizeof(double) * k);
			double	   *bt = malloc(sizeof(double) * k);

			/* the oracle: a combined state sums both sides */
			AlsSums(s, ms, bs);
			AlsSums(p, mp, bp);
			AlsSums(t, mt, bt);
			OracleSum(mt, ms, mp, (size_t) k * k, RankScale(&s->buf, AlsMatrix(s), AlsBuffer(s)),
					  RankScale(&p->buf, AlsMatrix(p), AlsBuffer(p)));
			OracleSum(bt, bs, bp, k, NULL, NULL);
			free(ms);
			free(mp);
			free(mt);
			free(bs);
			free(bp);
			free(bt);
		}
		free(t);
		t = Copy(p, AlsStateSize(k, p->buf.cap));
		(void) AlsStateCombine(t, s);
		free(t);
	}
	free(p);
	t = Copy(s, size);
	(void) AlsStateCombine(t, s);
	AlsStateFlush(t);
	free(t);

	/* final and objective final */
	{
		double	   *x = malloc(sizeof(double) * (k + 1));
		double	   *m = malloc(sizeof(double) * k * k);
		double	   *work = malloc(sizeof(double) * k * k);
		double	   *ax = malloc(sizeof(double) * k);
		int			retries;

		if (AlsStateSolve(s, x, m, work, &retries) == 0)
			(void) AlsStateObjective(s, x, m, ax);
		free(x);
		free(m);
		free(work);
		free(ax);
	}
}

/* ---------------- auc ---------------- */

/* Compare two entries by score for qsort */
static int
CompareEntries(const void *a, const void *b)
{
	return AucScoreCompare(((const AucEntry *) a)->score, ((const AucEntry *) b)->score);
}

/* Sort entries by score */
static void
SortEntries(AucEntry *e, size_t n)
{
	qsort(e, n, sizeof(AucEntry), CompareEntries);
}

/* Make room for one entry as auc_accum does; get the state (moved if it grew) */
static AucState *
AucRoom(AucState *s, size_t *size)
{
	AucEntry   *scratch = malloc(sizeof(AucEntry) * (s->nused - s->nsorted + 1));
	int32_t		capacity = AucStateMakeRoom(s, scratch, SortEntries);
	AucState   *grown;

	free(scratch);
	if (capacity == 0)
		return s;
	if (capacity < 0 || capacity > 1 << 16)
	{
		/* the SQL function raises an error here */
		free(s);
		return NULL;
	}
	*size = AucStateSize(capacity);
	grown = calloc(1, *size);
	AucStateGrowInto(grown, s, capacity);
	free(s);
	return grown;
}

/* Append the entries of src to s as auc_combine does; get the state or NULL */
static AucState *
AucAppendAll(AucState *s, size_t *size, const AucState *src)
{
	const AucEntry *e = src->entries;
	int32_t		left = src->nused;

	if (AucStateAddTotals(s, src) != AGG_OK)
		return s;
	while (left > 0)
	{
		int32_t		chunk;

		if ((s = AucRoom(s, size)) == NULL)
			return NULL;
		chunk = AucStateAppendEntries(s, e, left);
		e += chunk;
		left -= chunk;
	}
	return s;
}

/* Get the AUC of a deep-checked state as auc_final does */
static void
AucFinal(const AucState *s, size_t size)
{
	AucState   *t;
	AucEntry   *scratch;

	if (s->total_pos == 0 || s->total_neg == 0)
		return;
	t = Copy(s, size);
	scratch = malloc(sizeof(AucEntry) * (t->nused - t->nsorted + 1));
	AucStateCompact(t, scratch, SortEntries);
	if (AucStateCheck(t, size, true) != NULL)
		Fail();
	(void) AucStateResult(t);
	free(scratch);
	free(t);
}

/* Put one AUC state of size bytes through every support function */
static void
RunAuc(const AucState *s, size_t size, Input *in)
{
	AucState   *t;
	AucState   *p;
	size_t		tsize = size;
	size_t		psize;
	bool		deep;

	if (AucStateCheck(s, size, false) != NULL)
		return;
	deep = AucStateCheck(s, size, true) == NULL;

	/* transitions, as an aggregate's own state (shallow check) */
	t = Copy(s, size);
	for (int r = 0, nrows = 1 + Byte(in) % 8; r < nrows && t; r++)
	{
		if ((t = AucRoom(t, &tsize)) == NULL)
			break;
		AucStateAppend(t, Value(in), Byte(in) & 1);
		/* each SQL call validates its state first */
		if (AucStateCheck(t, tsize, false) != NULL ||
			(deep && AucStateCheck(t, tsize, true) != NULL))
		{
			if (Roomy(t->total_pos) && Roomy(t->total_neg))
				Fail();
			break;
		}
	}
	free(t);
	if (!deep)
		return;

	/* combine with a valid partner on either side, and with itself */
	psize = AucStateSize(4);
	p = calloc(1, psize);
	p->hdr.magic = AUC_MAGIC;
	p->hdr.version = AUC_VERSION;
	p->capacity = 4;
	for (int r = 0; r < 3; r++)
		AucStateAppend(p, Value(in), r & 1);

	tsize = size;
	t = AucAppendAll(Copy(s, size), &tsize, p);
	if (t && AucStateCheck(t, tsize, true) != NULL)
		Fail();
	free(t);
	tsize = psize;
	t = AucAppendAll(Copy(p, psize), &tsize, s);
	if (t && AucStateCheck(t, tsize, true) != NULL)
		Fail();
	free(t);
	tsize = size;
	t = AucAppendAll(Copy(s, size), &tsize, s);
	free(t);
	free(p);

	AucFinal(s, size);
}

/* ---------------- log_loss, uncertainty_weights, predictive_variance ---------------- */

/* Put one log-loss state through every support function */
static void
RunLogLoss(const LogLossState *s, size_t size, Input *in)
{
	LogLossState *t;
	LogLossState p = {{0, LOGLOSS_MAGIC, LOGLOSS_VERSION, 0}, 0, {0, 0}};

	if (LogLossStateCheck(s, size) != NULL)
		return;
	t = Copy(s, size);
	if (LogLossStateAdd(t, Byte(in) / 255.0, Byte(in) & 1) == AGG_OK &&
		Roomy(t->count) && LogLossStateCheck(t, size) != NULL)
		Fail();
	free(t);
	(void) LogLossStateAdd(&p, 0.25, true);
	t = Copy(s, size);
	if (LogLossStateCombine(t, &p) == AGG_OK)
	{
		double		a = CompensatedValue(&s->sum);
		double		b = CompensatedValue(&p.sum);
		double		got = CompensatedValue(&t->sum);

		/* the oracle: counts and sums add */
		if (t->count != s->count + p.count)
			Fail();
		double	   *sa = malloc(sizeof(double));
		double	   *sb = malloc(sizeof(double));

		/* a compensated sum may cancel: its magnitude is |sum| + |comp| */
		*sa = fabs(s->sum.sum) + fabs(s->sum.comp);
		*sb = fabs(p.sum.sum) + fabs(p.sum.comp);
		OracleSum(&got, &a, &b, 1, sa, sb);
	}
	free(t);
	t = Copy(&p, sizeof(p));
	(void) LogLossStateCombine(t, s);
	free(t);
	if (s->count > 0)
		(void) LogLossStateResult(s);
}

/* Put one multi-task loss state through every support function */
static void
RunTaskLoss(const TaskLossState *s, size_t size, Input *in)
{
	TaskLossState *t;
	TaskLossState *p;
	double	   *losses;
	int			task;

	if (TaskLossStateCheck(s, size, MAX_DIM) != NULL)
		return;
	losses = malloc(sizeof(double) * s->ntasks);
	for (int i = 0; i < s->ntasks; i++)
		losses[i] = Byte(in) * 1e3;
	t = Copy(s, size);
	if (TaskLossStateAdd(t, losses, &task) == AGG_OK &&
		Roomy(t->count) && TaskLossStateCheck(t, size, MAX_DIM) != NULL)
		Fail();
	free(t);

	p = Copy(s, size);
	memset(p->sums, 0, sizeof(CompensatedSum) * s->ntasks);
	p->count = 0;
	(void) TaskLossStateAdd(p, losses, &task);
	t = Copy(s, size);
	(void) TaskLossStateCombine(t, p, &task);
	free(t);
	t = Copy(p, size);
	(void) TaskLossStateCombine(t, s, &task);
	free(t);
	free(p);
	free(losses);
	if (s->count > 0)
	{
		double	   *means = malloc(sizeof(double) * s->ntasks);

		TaskLossStateMeans(s, means);
		free(means);
	}
}

/* Put one predictive-variance state through every support function */
static void
RunPredVar(const PredVarState *s, size_t size, Input *in)
{
	PredVarState *t;
	PredVarState p = {{0, PREDVAR_MAGIC, PREDVAR_VERSION, 0}, 0, 0, 0, 0};
	double		out[3];

	if (PredVarStateCheck(s, size) != NULL)
		return;
	t = Copy(s, size);
	if (PredVarStateAdd(t, Value(in), Byte(in)) == AGG_OK && Roomy(t->count) &&
		PredVarStateCheck(t, size) != NULL)
		Fail();
	free(t);
	(void) PredVarStateAdd(&p, Value(in), 1.0);
	t = Copy(s, size);
	(void) PredVarStateCombine(t, &p);
	free(t);
	t = Copy(&p, sizeof(p));
	(void) PredVarStateCombine(t, s);
	free(t);
	if (s->count > 0)
		PredVarStateResult(s, out);
}

/* ---------------- driver ---------------- */

/* Get a valid state of the given kind built from the input; *size gets its size */
static void *
BuildState(int kind, Input *in, size_t *size)
{
	int			dim = 1 + Byte(in) % 8;
	int			cap = 1 + Byte(in) % 32;

	switch (kind)
	{
		case 0:
			{
				GramianState *s = NewGramian(dim, cap);

				*size = GramianStateSize(dim, cap);
				for (int r = 0, n = Byte(in) % 8; r < n; r++)
				{
					double		w = Value(in);
					double	   *slot = GramianStateSlot(s, w);

					for (int i = 0; i < dim; i++)
						slot[i] = Value(in);
					GramianStateCommit(s, w);
				}
				return s;
			}
		case 1:
			{
				AlsState   *s = NewAls(dim, cap, NULL, Byte(in) / 64.0, Byte(in) / 32.0);

				*size = AlsStateSize(dim, cap);
				AlsRows(s, *size, in, false, NULL);
				return s;
			}
		case 2:
			{
				AucState   *s;

				*size = AucStateSize(cap);
				s = calloc(1, *size);
				s->hdr.magic = AUC_MAGIC;
				s->hdr.version = AUC_VERSION;
				s->capacity = cap;
				for (int r = 0, n = Byte(in) % (cap + 1); r < n && r < cap; r++)
					AucStateAppend(s, Value(in), Byte(in) & 1);
				s->nsorted = Byte(in) % (s->nused + 1);
				return s;
			}
		case 3:
			{
				LogLossState *s = calloc(1, sizeof(LogLossState));

				*size = sizeof(LogLossState);
				s->hdr.magic = LOGLOSS_MAGIC;
				s->hdr.version = LOGLOSS_VERSION;
				for (int r = 0, n = Byte(in) % 4; r < n; r++)
					(void) LogLossStateAdd(s, Byte(in) / 255.0, r & 1);
				return s;
			}
		case 4:
			{
				TaskLossState *s;
				double		losses[8];
				int			task;

				*size = TaskLossStateSize(dim);
				s = calloc(1, *size);
				s->hdr.magic = TASKLOSS_MAGIC;
				s->hdr.version = TASKLOSS_VERSION;
				s->ntasks = dim;
				for (int i = 0; i < dim; i++)
					TaskLossTypes(s)[i] = Byte(in) & 1;
				for (int r = 0, n = Byte(in) % 4; r < n; r++)
				{
					for (int i = 0; i < dim; i++)
						losses[i] = Byte(in) / 8.0;
					(void) TaskLossStateAdd(s, losses, &task);
				}
				return s;
			}
		default:
			{
				PredVarState *s = calloc(1, sizeof(PredVarState));

				*size = sizeof(PredVarState);
				s->hdr.magic = PREDVAR_MAGIC;
				s->hdr.version = PREDVAR_VERSION;
				for (int r = 0, n = Byte(in) % 4; r < n; r++)
					(void) PredVarStateAdd(s, Value(in), Byte(in) / 4.0);
				return s;
			}
	}
}

/* Get the magic number of a kind */
static uint32_t
KindMagic(int kind)
{
	static const uint32_t magic[] = {GRAMIAN_MAGIC, ALS_MAGIC, AUC_MAGIC, LOGLOSS_MAGIC,
	TASKLOSS_MAGIC, PREDVAR_MAGIC};

	return magic[kind];
}

/*
 * Input: byte 0 picks the state type (low bits) and the mode (bit 7).  Raw
 * mode: a 2-byte length, that many state bytes (magic and version set from
 * the type unless bit 6 is set), then the row bytes.  Patch mode: the
 * parameters of a valid state, then patches (offset, width 1/2/4/8, bytes)
 * laid over it, then the row bytes.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Input		in = {data, size};
	uint8_t		mode = Byte(&in);
	int			kind = (mode & 0x3f) % 6;
	void	   *state;
	size_t		ssize;

	if (mode & 0x80)
	{
		size_t		len = Byte(&in);

		len |= (size_t) Byte(&in) << 8;
		if (len > in.n)
			len = in.n;
		state = Copy(in.p, len);
		ssize = len;
		in.p += len;
		in.n -= len;
		if (!(mode & 0x40) && ssize >= sizeof(RecsysStateHeader))
		{
			((RecsysStateHeader *) state)->magic = KindMagic(kind);
			((RecsysStateHeader *) state)->version = 1;
		}
	}
	else
	{
		state = BuildState(kind, &in, &ssize);
		for (int npatch = Byte(&in) % 4; npatch > 0; npatch--)
		{
			size_t		off = Byte(&in);
			size_t		width = (size_t) 1 << (Byte(&in) % 4);

			if (mode & 0x40)
				off |= (size_t) Byte(&in) << 8;
			for (size_t i = 0; i < width; i++)
			{
				uint8_t		b = Byte(&in);

				if (off + i >= sizeof(int32_t) && off + i < ssize)
					((uint8_t *) state)[off + i] = b;
			}
		}
	}

	switch (kind)
	{
		case 0:
			RunGramian(state, ssize, &in);
			break;
		case 1:
			RunAls(state, ssize, &in);
			break;
		case 2:
			RunAuc(state, ssize, &in);
			break;
		case 3:
			RunLogLoss(state, ssize, &in);
			break;
		case 4:
			RunTaskLoss(state, ssize, &in);
			break;
		default:
			RunPredVar(state, ssize, &in);
			break;
	}
	free(state);
	return 0;
}
