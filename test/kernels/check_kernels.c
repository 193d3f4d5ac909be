/*
 * check_kernels.c
 *		Standalone tests of every kernel in src/kernel/ (no PostgreSQL, no
 *		server): `make check-kernels` builds this file with the kernels and
 *		OpenBLAS and runs it.
 *
 * Each check compares a kernel with an independent reference: a closed form
 * worked out by hand (in the comment next to it), values computed with
 * Python/numpy and written here, or a naive double-precision recomputation
 * in this file that follows the documented formula rather than the
 * kernel's code (no BLAS, no buffering, no blocking).  Tolerances are
 * explicit.  The program prints one line per failed check and a final
 * "N passed, N failed" line, and exits 1 when a check failed.
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* before aggkernel.h, whose AlsGramian(s) macro would rename als_engine.h's AlsGramian() */
#include "kernel/als_engine.h"
#include "kernel/aggkernel.h"
#include "kernel/ease.h"
#include "kernel/features.h"
#include "kernel/foldin.h"
#include "kernel/linalg.h"
#include "kernel/mmoe_backward.h"
#include "kernel/mmoe_model.h"
#include "kernel/parallel.h"
#include "kernel/rankbuffer.h"
#include "kernel/rng.h"
#include "kernel/topk.h"
#include "blas_lock.h"

static int	Passed = 0;
static int	Failed = 0;

/* Count one check; print what failed */
static void
Check(int ok, const char *fmt,...)
{
	va_list		ap;

	if (ok)
	{
		Passed++;
		return;
	}
	Failed++;
	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Check |got - want| <= tol * max(1, |want|) */
static void
Near(double got, double want, double tol, const char *what)
{
	double		err = fabs(got - want) / fmax(1.0, fabs(want));

	Check(err <= tol && !isnan(got), "%s: got %.17g, want %.17g (error %.3g > %.3g)",
		  what, got, want, err, tol);
}

/* Check n values elementwise with Near */
static void
NearAll(const double *got, const double *want, int n, double tol, const char *what)
{
	double		worst = 0.0;
	int			at = 0;

	for (int i = 0; i < n; i++)
	{
		double		err = fabs(got[i] - want[i]) / fmax(1.0, fabs(want[i]));

		if (!(err <= worst))
		{
			worst = err;
			at = i;
		}
	}
	Check(worst <= tol, "%s: element %d: got %.17g, want %.17g (error %.3g > %.3g)",
		  what, at, got[at], want[at], worst, tol);
}

/* Solve the n x n system a x = b (row-major, copied) by Gaussian elimination with pivoting */
static void
NaiveSolve(int n, const double *a_in, const double *b_in, double *x)
{
	double		a[64 * 64];
	double		b[64];

	memcpy(a, a_in, sizeof(double) * n * n);
	memcpy(b, b_in, sizeof(double) * n);
	for (int c = 0; c < n; c++)
	{
		int			p = c;

		for (int r = c + 1; r < n; r++)
			if (fabs(a[r * n + c]) > fabs(a[p * n + c]))
				p = r;
		for (int j = 0; j < n; j++)
		{
			double		t = a[c * n + j];

			a[c * n + j] = a[p * n + j];
			a[p * n + j] = t;
		}
		{
			double		t = b[c];

			b[c] = b[p];
			b[p] = t;
		}
		for (int r = c + 1; r < n; r++)
		{
			double		f = a[r * n + c] / a[c * n + c];

			for (int j = c; j < n; j++)
				a[r * n + j] -= f * a[c * n + j];
			b[r] -= f * b[c];
		}
	}
	for (int r = n - 1; r >= 0; r--)
	{
		double		s = b[r];

		for (int j = r + 1; j < n; j++)
			s -= a[r * n + j] * x[j];
		x[r] = s / a[r * n + r];
	}
}

/* A deterministic pseudo-random value in [-1, 1) for test data (not the kernel's generator) */
static double
TestValue(unsigned *state)
{
	*state = *state * 1103515245u + 12345u;
	return ((*state >> 8) & 0xffff) / 32768.0 - 1.0;
}

/* ---------------- linalg ---------------- */

static void
TestLinalg(void)
{
	/* R = [[1,2],[3,4],[5,6]]: R^T R = [[35,44],[44,56]] */
	double		rows[] = {1, 2, 3, 4, 5, 6};
	double		c[4] = {0};
	double		want[4] = {35, 44, 44, 56};
	double		x[3] = {1, 2, 3};
	double		y[3] = {4, 5, 6};
	float		xf[3] = {1, 2, 3};
	float		yf[3] = {4, 5, 6};

	LinalgSyrkRows(2, 3, rows, 1.0, c);
	LinalgSymmetrize(2, c);
	NearAll(c, want, 4, 0, "linalg: R^T R");
	/* alpha = -1 takes it back to zero */
	LinalgSyrkRows(2, 3, rows, -1.0, c);
	LinalgSymmetrize(2, c);
	Check(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 0, "linalg: R^T R - R^T R = 0");

	Near(LinalgDot(3, x, y), 32, 0, "linalg: dot");
	Near(LinalgSdot(3, xf, yf), 32, 0, "linalg: sdot");
	LinalgAxpy(3, 2.0, x, y);
	{
		double		w[3] = {6, 9, 12};

		NearAll(y, w, 3, 0, "linalg: axpy");
	}

	/* A = [[1,2],[3,4]]: A [1,1] = [3,7]; A B^T with B = [[1,0],[1,1]] = [[1,3],[3,7]] */
	{
		double		a[4] = {1, 2, 3, 4};
		double		b[4] = {1, 0, 1, 1};
		double		v[2] = {1, 1};
		double		out[2];
		double		ab[4];
		double		wv[2] = {3, 7};
		double		wab[4] = {1, 3, 3, 7};
		double		watb[4] = {4, 3, 6, 4};	/* A^T B = [[1+3, 3],[2+4, 4]] */

		LinalgDgemv(2, 2, 1.0, a, v, 0.0, out);
		NearAll(out, wv, 2, 0, "linalg: dgemv");
		LinalgDgemm(2, 2, 2, 1.0, a, 0, b, 1, 0.0, ab);
		NearAll(ab, wab, 4, 0, "linalg: dgemm A B^T");
		LinalgDgemm(2, 2, 2, 1.0, a, 1, b, 0, 0.0, ab);
		NearAll(ab, watb, 4, 0, "linalg: dgemm A^T B");
	}

	/* [[4,2],[2,3]] x = [2,1]: inverse [[3,-2],[-2,4]]/8, x = [0.5, 0] */
	{
		double		a[4] = {4, 2, 2, 3};
		double		b[2] = {2, 1};
		double		work[4];
		double		wx[2] = {0.5, 0};
		int			retries = -1;
		int			info = LinalgCholeskySolve(2, a, b, 1, work, &retries);

		Check(info == 0 && retries == 0, "linalg: cholesky info %d retries %d", info, retries);
		NearAll(b, wx, 2, 1e-15, "linalg: cholesky solve");
	}
	/* singular [[1,1],[1,1]]: solved with jitter after at least one retry */
	{
		double		a[4] = {1, 1, 1, 1};
		double		b[2] = {1, 1};
		double		work[4];
		int			retries = 0;
		int			info = LinalgCholeskySolve(2, a, b, 1, work, &retries);

		Check(info == 0 && retries >= 1 && isfinite(b[0]) && isfinite(b[1]),
			  "linalg: singular matrix solved with jitter (info %d, retries %d)", info, retries);
	}
	/* indefinite [[1,0],[0,-1]]: no jitter of 1e-10 trace/k scale helps: refused */
	{
		double		a[4] = {1, 0, 0, -1};
		double		b[2] = {1, 1};
		double		work[4];
		int			retries = 0;

		Check(LinalgCholeskySolve(2, a, b, 1, work, &retries) != 0 && retries == LINALG_JITTER_RETRIES,
			  "linalg: indefinite matrix refused after %d retries", LINALG_JITTER_RETRIES);
	}
	/* [[0.5,1.5],[1.5,0.5]] has eigenvalues 2 (1,1)/sqrt2 and -1 (1,-1)/sqrt2: PSD part [[1,1],[1,1]] */
	{
		double		a[4] = {0.5, 1.5, 1.5, 0.5};
		double		want_psd[4] = {1, 1, 1, 1};
		size_t		liwork;
		size_t		lwork = LinalgPsdProjectWorkSize(2, &liwork);
		double	   *work = malloc(sizeof(double) * lwork);
		int		   *iwork = malloc(sizeof(int) * liwork);

		Check(LinalgPsdProject(2, a, work, lwork, iwork, liwork) == 0, "linalg: psd projection info");
		NearAll(a, want_psd, 4, 1e-14, "linalg: psd projection");
		free(work);
		free(iwork);
	}
}

/* ---------------- rankbuffer ---------------- */

/*
 * Rows (1,2) of weight 2 and (3,1) of weight -0.5:
 * 2 [[1,2],[2,4]] - 0.5 [[9,3],[3,1]] = [[-2.5,2.5],[2.5,7.5]].
 * A sign error in the negative fold gives [[6.5,5.5],[5.5,8.5]].
 */
static void
TestRankBuffer(void)
{
	RankBuffer	b = {2, 4, 0, 0};
	double		rows[8];
	double		m[4] = {0};
	double		want[4] = {-2.5, 2.5, 2.5, 7.5};
	const double vals[2][2] = {{1, 2}, {3, 1}};
	const double w[2] = {2, -0.5};

	Check(RankBufferValid(&b, 8, 16), "rankbuffer: a fresh header is valid");
	for (int r = 0; r < 2; r++)
	{
		double	   *slot = RankBufferSlot(&b, rows, w[r]);

		for (int i = 0; i < 2; i++)
			slot[i] = vals[r][i] * RankBufferScale(w[r]);
		Check(!RankBufferCommit(&b, w[r]), "rankbuffer: not full after %d rows", r + 1);
	}
	Check(b.n_pos == 1 && b.n_neg == 1, "rankbuffer: one row at each end");
	Check(RankBufferFinite(&b, rows), "rankbuffer: finite rows");
	RankBufferFlush(&b, rows, m);
	LinalgSymmetrize(2, m);
	NearAll(m, want, 4, 1e-15, "rankbuffer: signed fold");
	Check(b.n_pos == 0 && b.n_neg == 0, "rankbuffer: flush empties the buffer");
	/* zero weight leaves the slot free; cap - 1 rows fill it */
	Check(!RankBufferCommit(&b, 0.0) && b.n_pos == 0 && b.n_neg == 0, "rankbuffer: weight 0 takes no slot");
	(void) RankBufferCommit(&b, 1.0);
	(void) RankBufferCommit(&b, -1.0);
	(void) RankBufferCommit(&b, 1.0);
	Check(RankBufferCommit(&b, 1.0), "rankbuffer: the cap-th row asks for a flush");
	{
		RankBuffer	bad1 = {0, 4, 0, 0};
		RankBuffer	bad2 = {2, 4, 2, 2};
		RankBuffer	bad3 = {9, 4, 0, 0};
		RankBuffer	bad4 = {2, 4, -1, 0};

		Check(!RankBufferValid(&bad1, 8, 16) && !RankBufferValid(&bad2, 8, 16) &&
			  !RankBufferValid(&bad3, 8, 16) && !RankBufferValid(&bad4, 8, 16),
			  "rankbuffer: headers with dim 0, a full buffer, dim > max or a negative count are refused");
	}
	Check(RankBufferRows(4, 1 << 20, 1, 100) == 100 && RankBufferRows(4, 64, 8, 100) == 8 &&
		  RankBufferRows(4, 320, 1, 100) == 10, "rankbuffer: buffer lengths within bounds");
}

/* ---------------- aggkernel ---------------- */

#define NROWS 37

/* The test rows: k = 3 values and a weight of either sign (some zero) */
static void
AggRows(double rows[NROWS][3], double *w)
{
	unsigned	st = 7;

	for (int r = 0; r < NROWS; r++)
	{
		for (int i = 0; i < 3; i++)
			rows[r][i] = TestValue(&st) * 4.0;
		w[r] = r % 9 == 4 ? 0.0 : r % 5 == 2 ? -0.25 - 0.5 * (r % 3) : 0.5 + (r % 4);
	}
}

/* Get a Gramian state with rows [from, to) added one by one */
static GramianState *
GramianOf(double rows[NROWS][3], const double *w, int from, int to, int cap)
{
	GramianState *s = calloc(1, GramianStateSize(3, cap));

	GramianStateInit(s, 3, cap);
	for (int r = from; r < to; r++)
	{
		double	   *slot = GramianStateSlot(s, w[r]);

		for (int i = 0; i < 3; i++)
			slot[i] = rows[r][i] * RankBufferScale(w[r]);
		GramianStateCommit(s, w[r]);
	}
	return s;
}

static void
TestGramianState(void)
{
	double		rows[NROWS][3];
	double		w[NROWS];
	double		want[9] = {0};
	double		got[9];
	GramianState *all;
	GramianState *a;
	GramianState *b;

	AggRows(rows, w);
	/* naive sum_r w_r x_r x_r^T */
	for (int r = 0; r < NROWS; r++)
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 3; j++)
				want[i * 3 + j] += w[r] * rows[r][i] * rows[r][j];

	all = GramianOf(rows, w, 0, NROWS, 5);
	Check(GramianStateCheck(all, GramianStateSize(3, 5), 8) == NULL &&
		  GramianStateCheckValues(all) == NULL, "gramian: a built state is valid");
	Check(all->count == NROWS, "gramian: count %lld", (long long) all->count);
	GramianStateResult(all, got);
	NearAll(got, want, 9, 1e-13, "gramian: sequential equals sum w x x^T");

	/* combine (either buffer length, either side) equals sequential */
	for (int split = 0; split <= NROWS; split += 6)
	{
		a = GramianOf(rows, w, 0, split, 4);
		b = GramianOf(rows, w, split, NROWS, 7);
		Check(GramianStateCombine(a, b) == AGG_OK, "gramian: combine");
		Check(a->count == NROWS, "gramian: combined count");
		GramianStateResult(a, got);
		NearAll(got, want, 9, 1e-13, "gramian: combine equals sequential");
		free(a);
		free(b);
	}
	/* a dimension mismatch is refused */
	a = GramianOf(rows, w, 0, 3, 4);
	b = calloc(1, GramianStateSize(2, 4));
	GramianStateInit(b, 2, 4);
	Check(GramianStateCombine(a, b) == AGG_DIM_MISMATCH, "gramian: combine of k = 3 and k = 2 refused");
	free(b);

	/* validators refuse crafted headers */
	{
		size_t		size = GramianStateSize(3, 4);
		GramianState *t = malloc(size);

#define CRAFT(field, value, what) \
		do { \
			memcpy(t, a, size); \
			t->field = value; \
			Check(GramianStateCheck(t, size, 8) != NULL, "gramian: validator refuses %s", what); \
		} while (0)
		CRAFT(hdr.magic, ALS_MAGIC, "another state's magic");
		CRAFT(hdr.version, 2, "version 2");
		CRAFT(buf.dim, 0, "k = 0");
		CRAFT(buf.dim, 9, "k above max_dim");
		CRAFT(buf.cap, 5, "a buffer longer than the bytes");
		CRAFT(buf.n_pos, 4, "a full buffer");
		CRAFT(buf.n_neg, -1, "a negative row count");
		CRAFT(count, -1, "a negative count");
#undef CRAFT
		memcpy(t, a, size);
		Check(GramianStateCheck(t, size - 8, 8) != NULL, "gramian: validator refuses a state cut short");
		Check(GramianStateCheck(t, size + 8, 8) != NULL, "gramian: validator refuses a state too long");
		Check(GramianStateCheck(t, 6, 8) != NULL, "gramian: validator refuses a partial header");
		GramianMatrix(t)[1] = NAN;
		Check(GramianStateCheckValues(t) != NULL, "gramian: value check refuses NaN");
		free(t);
	}
	free(a);
	free(all);
}

/* Get an als_solve state (G = g, w, l2) with pairs [from, to) of rows and confidences c */
static AlsState *
AlsOf(double rows[NROWS][3], const double *c, int from, int to, int cap, const double *g,
	  double gw, double l2)
{
	AlsState   *s = calloc(1, AlsStateSize(3, cap));

	s->hdr.magic = ALS_MAGIC;
	s->hdr.version = ALS_VERSION;
	s->buf.dim = 3;
	s->buf.cap = cap;
	s->gramian_weight = gw;
	s->l2 = l2;
	memcpy(AlsGramian(s), g, sizeof(double) * 9);
	for (int r = from; r < to; r++)
	{
		double	   *slot = AlsStateSlot(s, c[r]);

		memcpy(slot, rows[r], sizeof(double) * 3);
		AlsStateCommit(s, c[r]);
	}
	return s;
}

static void
TestAlsState(void)
{
	double		rows[NROWS][3];
	double		w[NROWS];
	double		c[NROWS];
	double		g[9] = {2.0, 0.3, -0.1, 0.3, 1.5, 0.2, -0.1, 0.2, 1.0};
	double		gw = 0.75,
				l2 = 0.05;
	double		a[9],
				b[3] = {0},
				want[3],
				x[4],
				m[9],
				work[9],
				ax[3];
	double		conf_sum = 0.0;
	double		want_obj;
	int			retries;
	AlsState   *all;

	AggRows(rows, w);
	/* confidences around w (= 0.75): c - w of both signs, and c = w exactly */
	for (int r = 0; r < NROWS; r++)
		c[r] = r % 7 == 3 ? gw : fabs(w[r]) + 0.1;
	/* naive: A = w G + sum (c - w) v v^T + l2 I, b = sum c v */
	for (int i = 0; i < 9; i++)
		a[i] = gw * g[i];
	for (int i = 0; i < 3; i++)
		a[i * 3 + i] += l2;
	for (int r = 0; r < NROWS; r++)
	{
		for (int i = 0; i < 3; i++)
		{
			b[i] += c[r] * rows[r][i];
			for (int j = 0; j < 3; j++)
				a[i * 3 + j] += (c[r] - gw) * rows[r][i] * rows[r][j];
		}
		conf_sum += c[r];
	}
	NaiveSolve(3, a, b, want);

	all = AlsOf(rows, c, 0, NROWS, 6, g, gw, l2);
	Check(AlsStateCheck(all, AlsStateSize(3, 6), 8) == NULL && AlsStateCheckValues(all) == NULL,
		  "als_solve: a built state is valid");
	Check(AlsStateSolve(all, x, m, work, &retries) == 0, "als_solve: solve");
	NearAll(x, want, 3, 1e-12, "als_solve: sequential equals the normal equations' solution");

	/* objective x^T (sum (c - w) v v^T) x - 2 x^T b + sum c at the solution */
	want_obj = conf_sum;
	for (int r = 0; r < NROWS; r++)
	{
		double		d = rows[r][0] * want[0] + rows[r][1] * want[1] + rows[r][2] * want[2];

		want_obj += (c[r] - gw) * d * d - 2.0 * c[r] * d;
	}
	Near(AlsStateObjective(all, x, m, ax), want_obj, 1e-11, "als_solve: objective");

	for (int split = 0; split <= NROWS; split += 9)
	{
		AlsState   *p = AlsOf(rows, c, 0, split, 5, g, gw, l2);
		AlsState   *q = AlsOf(rows, c, split, NROWS, 8, g, gw, l2);

		Check(AlsStateCombine(p, q) == AGG_OK, "als_solve: combine");
		Check(AlsStateSolve(p, x, m, work, &retries) == 0, "als_solve: solve after combine");
		NearAll(x, want, 3, 1e-12, "als_solve: combine equals sequential");
		Check(p->count == NROWS, "als_solve: combined count");
		free(p);
		free(q);
	}
	/* combine refuses states of other parameters */
	{
		AlsState   *p = AlsOf(rows, c, 0, 3, 5, g, gw, l2);
		AlsState   *q = AlsOf(rows, c, 3, 6, 5, g, gw, l2 * 2);

		Check(AlsStateCombine(p, q) == AGG_PARAM_MISMATCH, "als_solve: combine with another l2 refused");
		free(q);
		q = AlsOf(rows, c, 3, 6, 5, g, gw * 2, l2);
		Check(AlsStateCombine(p, q) == AGG_PARAM_MISMATCH, "als_solve: combine with another w refused");
		free(q);
		free(p);
	}
	/* crafted headers */
	{
		size_t		size = AlsStateSize(3, 6);
		AlsState   *t = malloc(size);

#define CRAFT(field, value, what) \
		do { \
			memcpy(t, all, size); \
			t->field = value; \
			Check(AlsStateCheck(t, size, 8) != NULL || AlsStateCheckValues(t) != NULL, \
				  "als_solve: validators refuse %s", what); \
		} while (0)
		CRAFT(hdr.magic, GRAMIAN_MAGIC, "another state's magic");
		CRAFT(hdr.version, 0, "version 0");
		CRAFT(buf.dim, 4, "k that does not fit the bytes");
		CRAFT(buf.n_neg, 6, "a full buffer");
		CRAFT(count, -3, "a negative count");
		CRAFT(l2, NAN, "a NaN l2");
		CRAFT(gramian_weight, INFINITY, "an infinite gramian_weight");
#undef CRAFT
		free(t);
	}
	free(all);
}

/* Compare two AUC entries by score (for the kernel's sort callback) */
static int
CompareEntries(const void *a, const void *b)
{
	return AucScoreCompare(((const AucEntry *) a)->score, ((const AucEntry *) b)->score);
}

/* Sort AUC entries by score */
static void
SortEntries(AucEntry *e, size_t n)
{
	qsort(e, n, sizeof(AucEntry), CompareEntries);
}

/* Get an AUC state holding rows [from, to), grown as auc_accum grows it */
static AucState *
AucOf(const double *score, const bool *label, int from, int to)
{
	AucState   *s = calloc(1, AucStateSize(2));

	s->hdr.magic = AUC_MAGIC;
	s->hdr.version = AUC_VERSION;
	s->capacity = 2;
	for (int r = from; r < to; r++)
	{
		AucEntry   *scratch = malloc(sizeof(AucEntry) * (s->nused - s->nsorted + 1));
		int32_t		cap = AucStateMakeRoom(s, scratch, SortEntries);

		free(scratch);
		if (cap > 0)
		{
			AucState   *g = calloc(1, AucStateSize(cap));

			AucStateGrowInto(g, s, cap);
			free(s);
			s = g;
		}
		AucStateAppend(s, score[r], label[r]);
	}
	return s;
}

/* Get the AUC of a state as auc_final does (compact, then count) */
static double
AucFinal(AucState *s)
{
	AucEntry   *scratch = malloc(sizeof(AucEntry) * (s->nused - s->nsorted + 1));

	AucStateCompact(s, scratch, SortEntries);
	free(scratch);
	Check(AucStateCheck(s, AucStateSize(s->capacity), true) == NULL, "auc: compacted state is valid");
	return AucStateResult(s);
}

static void
TestAucState(void)
{
	double		score[NROWS];
	bool		label[NROWS];
	double		num = 0.0;
	int			npos = 0,
				nneg = 0;
	double		want;

	/* scores on a coarse grid, so that many tie */
	for (int r = 0; r < NROWS; r++)
	{
		score[r] = (double) ((r * 7) % 11) / 10.0;
		label[r] = (r * 5) % 3 == 0;
	}
	/* Mann-Whitney: pairs (pos, neg) ordered correctly, ties count one half */
	for (int i = 0; i < NROWS; i++)
		for (int j = 0; j < NROWS; j++)
			if (label[i] && !label[j])
				num += score[i] > score[j] ? 1.0 : score[i] == score[j] ? 0.5 : 0.0;
	for (int i = 0; i < NROWS; i++)
		label[i] ? npos++ : nneg++;
	want = num / ((double) npos * nneg);

	{
		AucState   *s = AucOf(score, label, 0, NROWS);

		Near(AucFinal(s), want, 1e-15, "auc: sequential equals Mann-Whitney");
		free(s);
	}
	for (int split = 1; split < NROWS; split += 8)
	{
		AucState   *a = AucOf(score, label, 0, split);
		AucState   *b = AucOf(score, label, split, NROWS);
		int32_t		left = b->nused;
		const AucEntry *e = b->entries;

		Check(AucStateAddTotals(a, b) == AGG_OK, "auc: totals add");
		while (left > 0)
		{
			AucEntry   *scratch = malloc(sizeof(AucEntry) * (a->nused - a->nsorted + 1));
			int32_t		cap = AucStateMakeRoom(a, scratch, SortEntries);
			int32_t		chunk;

			free(scratch);
			if (cap > 0)
			{
				AucState   *g = calloc(1, AucStateSize(cap));

				AucStateGrowInto(g, a, cap);
				free(a);
				a = g;
			}
			chunk = AucStateAppendEntries(a, e, left);
			e += chunk;
			left -= chunk;
		}
		Near(AucFinal(a), want, 1e-15, "auc: combine equals sequential");
		free(a);
		free(b);
	}
	/* crafted headers */
	{
		AucState   *s = AucOf(score, label, 0, 5);
		size_t		size = AucStateSize(s->capacity);
		AucState   *t = malloc(size);

		memcpy(t, s, size);
		t->nused = t->capacity + 1;
		Check(AucStateCheck(t, size, false) != NULL, "auc: validator refuses more entries than room");
		memcpy(t, s, size);
		t->total_pos += 1;
		Check(AucStateCheck(t, size, true) != NULL, "auc: deep check refuses totals that differ from the entries");
		memcpy(t, s, size);
		t->nsorted = t->nused + 1;
		Check(AucStateCheck(t, size, false) != NULL, "auc: validator refuses nsorted > nused");
		free(t);
		free(s);
	}
}

static void
TestSmallStates(void)
{
	const double p[6] = {0.1, 0.8, 0.5, 1e-20, 1.0, 0.35};
	const bool	y[6] = {false, true, true, false, true, false};
	double		want = 0.0;
	LogLossState all = {{0, LOGLOSS_MAGIC, LOGLOSS_VERSION, 0}, 0, {0, 0}};
	LogLossState a = all,
				b = all;

	/* -[y ln p + (1 - y) ln(1 - p)], p clipped to [1e-15, 1 - 1e-15] */
	for (int i = 0; i < 6; i++)
	{
		double		q = fmin(fmax(p[i], 1e-15), 1.0 - 1e-15);

		want += y[i] ? -log(q) : -log(1.0 - q);
		Check(LogLossStateAdd(&all, p[i], y[i]) == AGG_OK, "log_loss: add");
		Check(LogLossStateAdd(i < 2 ? &a : &b, p[i], y[i]) == AGG_OK, "log_loss: add");
	}
	want /= 6;
	Near(LogLossStateResult(&all), want, 1e-12, "log_loss: sequential");
	Check(LogLossStateCombine(&a, &b) == AGG_OK, "log_loss: combine");
	Near(LogLossStateResult(&a), want, 1e-12, "log_loss: combine equals sequential");
	Check(LogLossStateCheck(&all, sizeof(all)) == NULL, "log_loss: valid state");
	all.count = -1;
	Check(LogLossStateCheck(&all, sizeof(all)) != NULL, "log_loss: validator refuses a negative count");
	Check(LogLossStateCheck(&a, sizeof(a) - 1) != NULL, "log_loss: validator refuses a short state");

	/* uncertainty_weights: per-task means of the losses */
	{
		const double losses[4][2] = {{1.0, 0.25}, {3.0, 0.75}, {2.0, 1.0}, {6.0, 0.0}};
		double		means[2];
		double		wantm[2] = {3.0, 0.5};
		size_t		size = TaskLossStateSize(2);
		TaskLossState *s = calloc(1, size);
		TaskLossState *t1 = calloc(1, size);
		TaskLossState *t2 = calloc(1, size);
		int			bad;

		for (TaskLossState **x = (TaskLossState *[]) {s, t1, t2}, **end = x + 3; x < end; x++)
		{
			(*x)->hdr.magic = TASKLOSS_MAGIC;
			(*x)->hdr.version = TASKLOSS_VERSION;
			(*x)->ntasks = 2;
			TaskLossTypes(*x)[1] = 1;
		}
		for (int r = 0; r < 4; r++)
		{
			Check(TaskLossStateAdd(s, losses[r], &bad) == AGG_OK, "uncertainty_weights: add");
			Check(TaskLossStateAdd(r < 1 ? t1 : t2, losses[r], &bad) == AGG_OK, "uncertainty_weights: add");
		}
		TaskLossStateMeans(s, means);
		NearAll(means, wantm, 2, 1e-15, "uncertainty_weights: sequential means");
		Check(TaskLossStateCombine(t1, t2, &bad) == AGG_OK, "uncertainty_weights: combine");
		TaskLossStateMeans(t1, means);
		NearAll(means, wantm, 2, 1e-15, "uncertainty_weights: combine equals sequential");
		Check(TaskLossStateCheck(s, size, 8) == NULL, "uncertainty_weights: valid state");
		s->ntasks = 3;
		Check(TaskLossStateCheck(s, size, 8) != NULL, "uncertainty_weights: validator refuses a task count the bytes do not hold");
		s->ntasks = 2;
		TaskLossTypes(t2)[1] = 0;
		Check(TaskLossStateCombine(t1, t2, &bad) == AGG_TASK_MISMATCH, "uncertainty_weights: combine of other task types refused");
		free(s);
		free(t1);
		free(t2);
	}

	/* predictive_variance: population variance of the means, mean of the variances */
	{
		const double mean[5] = {1.0, 2.0, 4.0, 7.0, 11.0};
		const double var[5] = {0.5, 0.25, 1.0, 0.0, 2.0};
		PredVarState s = {{0, PREDVAR_MAGIC, PREDVAR_VERSION, 0}, 0, 0, 0, 0};
		PredVarState a2 = s,
					b2 = s;
		double		out[3];
		/* mean 5, squared deviations 16+9+1+4+36 = 66: 13.2; variances 3.75 / 5 = 0.75 */
		double		wantv[3] = {13.2, 0.75, 13.95};

		for (int i = 0; i < 5; i++)
		{
			Check(PredVarStateAdd(&s, mean[i], var[i]) == AGG_OK, "predictive_variance: add");
			Check(PredVarStateAdd(i < 3 ? &a2 : &b2, mean[i], var[i]) == AGG_OK, "predictive_variance: add");
		}
		PredVarStateResult(&s, out);
		NearAll(out, wantv, 3, 1e-15, "predictive_variance: sequential");
		Check(PredVarStateCombine(&a2, &b2) == AGG_OK, "predictive_variance: combine");
		PredVarStateResult(&a2, out);
		NearAll(out, wantv, 3, 1e-14, "predictive_variance: combine equals sequential");
		s.m2 = -1.0;
		Check(PredVarStateCheck(&s, sizeof(s)) != NULL, "predictive_variance: validator refuses a negative sum of squares");
		s.m2 = 0;
		s.hdr.magic = AUC_MAGIC;
		Check(PredVarStateCheck(&s, sizeof(s)) != NULL, "predictive_variance: validator refuses another magic");
	}
}

/* ---------------- topk ---------------- */

static void
TestTopK(void)
{
	const int64_t ids[8] = {5, 3, 9, 1, 7, 2, 8, 4};
	const float scores[8] = {1.0f, 2.0f, 2.0f, NAN, 2.0f, 0.5f, 3.0f, 1.0f};
	TopKItem	slots[16];
	TopK		t;

	/* k = 3: 8 (3.0), then the ties at 2.0 by smaller id: 3, 7 */
	TopKInit(&t, 3, slots);
	for (int i = 0; i < 8; i++)
		TopKPush(&t, ids[i], scores[i]);
	Check(TopKValid(&t), "topk: heap valid");
	Check(TopKSorted(&t) == 3 && t.items[0].id == 8 && t.items[1].id == 3 && t.items[2].id == 7,
		  "topk: k = 3 keeps 8, 3, 7 (ties by smaller id), got %lld %lld %lld",
		  (long long) t.items[0].id, (long long) t.items[1].id, (long long) t.items[2].id);

	/* the same in any push order, and through the block path */
	{
		const int	order[8] = {7, 6, 5, 4, 3, 2, 1, 0};
		TopKItem	s2[3];
		TopK		t2;

		TopKInit(&t2, 3, s2);
		for (int i = 0; i < 8; i++)
			TopKPush(&t2, ids[order[i]], scores[order[i]]);
		TopKSorted(&t2);
		Check(t2.items[0].id == 8 && t2.items[1].id == 3 && t2.items[2].id == 7, "topk: push order does not matter");
		TopKInit(&t2, 3, s2);
		TopKPushBlock(&t2, ids, scores, 8);
		TopKSorted(&t2);
		Check(t2.items[0].id == 8 && t2.items[1].id == 3 && t2.items[2].id == 7, "topk: the block path keeps the same");
	}
	/* k = 1 */
	TopKInit(&t, 1, slots);
	TopKPushBlock(&t, ids, scores, 8);
	Check(TopKSorted(&t) == 1 && t.items[0].id == 8 && t.items[0].score == 3.0f, "topk: k = 1");
	/* k > n: every non-NaN candidate, best first: 8, 3, 7, 9, 4, 5, 2 */
	{
		const int64_t want[7] = {8, 3, 7, 9, 4, 5, 2};
		int			n;
		bool		same = true;

		TopKInit(&t, 16, slots);
		TopKPushBlock(&t, ids, scores, 8);
		n = TopKSorted(&t);
		for (int i = 0; i < 7 && n == 7; i++)
			same &= t.items[i].id == want[i];
		Check(n == 7 && same, "topk: k > n gives all 7 non-NaN candidates in order (got %d)", n);
	}
	/*
	 * the block path (16 at a time through vector compares) against one push
	 * at a time: random scores with ties, NaNs and runs of equal values,
	 * lengths around multiples of 16, k from 1 to past n
	 */
	{
		unsigned	seed = 17;
		bool		same = true;
		int			cases = 0;

		for (int n = 1; n <= 700 && same; n += (n < 40 ? 1 : 37))
			for (int k = 1; k <= n + 3 && same; k += (k < 8 ? 1 : 29))
			{
				int64_t    *rid = malloc(sizeof(int64_t) * n);
				float	   *rs = malloc(sizeof(float) * n);
				TopKItem   *sa = malloc(sizeof(TopKItem) * k);
				TopKItem   *sb = malloc(sizeof(TopKItem) * k);
				TopK		ta,
							tb;
				int			na,
							nb;

				for (int i = 0; i < n; i++)
				{
					int			r = rand_r(&seed) % 1000;

					rid[i] = (int64_t) (rand_r(&seed) % 5000) - 100;
					rs[i] = r < 30 ? NAN : r < 200 ? 0.25f : (float) (rand_r(&seed) % 97) / 7.0f - 5.0f;
				}
				TopKInit(&ta, k, sa);
				TopKInit(&tb, k, sb);
				TopKPushBlock(&ta, rid, rs, n);
				for (int i = 0; i < n; i++)
					TopKPush(&tb, rid[i], rs[i]);
				na = TopKSorted(&ta);
				nb = TopKSorted(&tb);
				same = na == nb;
				for (int i = 0; i < na && same; i++)
					same = sa[i].id == sb[i].id && sa[i].score == sb[i].score;
				cases++;
				free(rid);
				free(rs);
				free(sa);
				free(sb);
			}
		Check(same, "topk: the block path keeps what one push at a time keeps (%d cases)", cases);
	}
	/* k = 0 keeps nothing */
	TopKInit(&t, 0, slots);
	TopKPush(&t, 1, 1.0f);
	Check(t.n == 0, "topk: k = 0 keeps nothing");
	/* a heap out of order is refused */
	TopKInit(&t, 2, slots);
	TopKPush(&t, 1, 1.0f);
	TopKPush(&t, 2, 5.0f);
	{
		TopKItem	tmp = t.items[0];

		t.items[0] = t.items[1];
		t.items[1] = tmp;
	}
	Check(!TopKValid(&t), "topk: validator refuses a heap out of order");
}

/* ---------------- foldin and als_engine ---------------- */

/* Items of a tiny model: 4 items x k = 2 */
static const float Items[8] = {1.0f, 0.5f, -0.5f, 1.0f, 0.25f, -1.0f, 2.0f, 0.0f};

/* Solve (w G + sum_j (c_j - w) v_j v_j^T + lambda I) x = sum_j c_j v_j naively */
static void
NaiveUserSolve(const float *items, const double *g, double w, double lambda, int n,
			   const int *rows, const double *conf, double *x)
{
	double		a[4];
	double		b[2] = {0, 0};

	for (int i = 0; i < 4; i++)
		a[i] = w * g[i];
	a[0] += lambda;
	a[3] += lambda;
	for (int j = 0; j < n; j++)
	{
		const float *v = items + rows[j] * 2;

		for (int p = 0; p < 2; p++)
		{
			b[p] += conf[j] * v[p];
			for (int q = 0; q < 2; q++)
				a[p * 2 + q] += (conf[j] - w) * v[p] * v[q];
		}
	}
	NaiveSolve(2, a, b, x);
}

/* G = Y^T Y of the test items */
static void
ItemGramian(double *g)
{
	memset(g, 0, sizeof(double) * 4);
	for (int i = 0; i < 4; i++)
		for (int p = 0; p < 2; p++)
			for (int q = 0; q < 2; q++)
				g[p * 2 + q] += (double) Items[i * 2 + p] * Items[i * 2 + q];
}

static void
TestFoldIn(void)
{
	double		g[4];
	FoldInModel m;
	int			rows[3] = {0, 2, 3};
	double		conf[3] = {1.0, 3.0, 0.05};
	double		x[2],
				want[2];
	double	   *work = malloc(sizeof(double) * FoldInWorkSize(2, 3));
	int			retries;
	double		lambda;

	ItemGramian(g);
	m.dim = 2;
	m.n_items = 4;
	m.items = Items;
	m.gramian = g;
	m.gramian_weight = 0.1;
	m.l2 = 0.2;
	m.nu = 1.0;
	m.n_train_items = 4;
	/* lambda = l2 (n + w N)^nu = 0.2 (3 + 0.4) = 0.68 */
	lambda = FoldInLambda(&m, 3);
	Near(lambda, 0.68, 1e-15, "foldin: lambda = l2 (n + w N)^nu");
	m.nu = 0.0;
	Near(FoldInLambda(&m, 3), 0.2, 0, "foldin: nu = 0 gives l2");
	m.nu = 1.0;
	Check(FoldInSolve(&m, 3, rows, conf, work, x, &retries) == 0, "foldin: solve");
	NaiveUserSolve(Items, g, 0.1, 0.68, 3, rows, conf, want);
	NearAll(x, want, 2, 1e-12, "foldin: solution of the fold-in system");
	/* no items: b = 0, x = 0 */
	Check(FoldInSolve(&m, 0, rows, conf, work, x, &retries) == 0 && x[0] == 0 && x[1] == 0,
		  "foldin: a user with no items folds in to 0");

	/* scores U Y^T */
	{
		float		users[4] = {1.0f, 2.0f, -1.0f, 0.5f};
		float		scores[8];
		double		got[8],
					wants[8];

		FoldInScoreBlock(&m, 2, users, scores);
		for (int u = 0; u < 2; u++)
			for (int i = 0; i < 4; i++)
			{
				got[u * 4 + i] = scores[u * 4 + i];
				wants[u * 4 + i] = (double) users[u * 2] * Items[i * 2] + (double) users[u * 2 + 1] * Items[i * 2 + 1];
			}
		NearAll(got, wants, 8, 1e-7, "foldin: block scores U Y^T");
	}
	free(work);
}

static int	CheckCalls = 0;

/* Count calls of the sweep's interrupt callback */
static void
CountCheck(void *arg)
{
	CheckCalls++;
}

/*
 * Large kernels are split into pieces of about LINALG_CHECK_WORK flops and
 * call the check callback between them (the backend's interrupt check): a
 * blocked rank update (row blocks and column strips), the panel Cholesky and
 * a tiled gemm give the naive sums, and the callback runs about once per
 * LINALG_CHECK_WORK of work
 */
static void
TestLinalgChecks(void)
{
	int			k = 900,
				n = 300;
	double	   *r = malloc(sizeof(double) * k * n);
	double	   *c = calloc((size_t) k * k, sizeof(double));
	double	   *full = malloc(sizeof(double) * k * k);
	double	   *work = malloc(sizeof(double) * k * k);
	double	   *b = malloc(sizeof(double) * k);
	double	   *ax = malloc(sizeof(double) * k);
	double		worst = 0.0;
	int			info,
				retries;
	int			m = 300,
				nn = 900,
				kk = 500;
	double	   *ga = malloc(sizeof(double) * m * kk);
	double	   *gb = malloc(sizeof(double) * nn * kk);
	double	   *gc = malloc(sizeof(double) * m * nn);

	for (size_t i = 0; i < (size_t) k * n; i++)
		r[i] = sin(0.37 * i) + 0.01 * (i % 7);
	CheckCalls = 0;
	LinalgSetCheck(CountCheck, NULL);
	/* 900^2 x 300 = 2.4e8 flops: two row blocks, the first in three strips */
	LinalgSyrkRows(k, n, r, 1.0, c);
	Check(CheckCalls >= 1, "linalg: a 2.4e8-flop rank update calls the check callback (got %d)", CheckCalls);
	for (int j = 0; j < k; j++)
		for (int i = 0; i <= j; i++)
		{
			double		want = 0.0;

			for (int t = 0; t < n; t++)
				want += r[(size_t) t * k + i] * r[(size_t) t * k + j];
			worst = fmax(worst, fabs(c[(size_t) j * k + i] - want) / fmax(1.0, fabs(want)));
		}
	Check(worst < 1e-12, "linalg: the blocked rank update equals the naive sum (worst %g)", worst);

	/* panel Cholesky of A = R^T R + k I (2.4e8 flops) */
	for (int i = 0; i < k; i++)
	{
		c[(size_t) i * k + i] += k;
		b[i] = cos(0.1 * i);
	}
	memcpy(full, c, sizeof(double) * k * k);
	LinalgSymmetrize(k, full);
	CheckCalls = 0;
	info = LinalgCholeskySolve(k, c, b, 1, work, &retries);
	Check(info == 0 && retries == 0, "linalg: the panel Cholesky succeeds (info %d)", info);
	Check(CheckCalls >= 1, "linalg: a k = 900 Cholesky calls the check callback (got %d)", CheckCalls);
	for (int i = 0; i < k; i++)
	{
		double		s = 0.0;

		for (int j = 0; j < k; j++)
			s += full[(size_t) i * k + j] * b[j];
		ax[i] = s;
	}
	worst = 0.0;
	for (int i = 0; i < k; i++)
		worst = fmax(worst, fabs(ax[i] - cos(0.1 * i)));
	Check(worst < 1e-10, "linalg: the panel Cholesky solves A x = b (residual %g)", worst);

	/* tiled gemm, both operands transposed: C = A^T B^T with A kk x m, B nn x kk stored */
	for (size_t i = 0; i < (size_t) m * kk; i++)
		ga[i] = cos(0.011 * i);
	for (size_t i = 0; i < (size_t) nn * kk; i++)
		gb[i] = sin(0.013 * i);
	CheckCalls = 0;
	LinalgDgemm(m, nn, kk, 1.0, ga, 1, gb, 1, 0.0, gc);
	Check(CheckCalls >= 1, "linalg: a 2.7e8-flop gemm calls the check callback (got %d)", CheckCalls);
	worst = 0.0;
	for (int i = 0; i < m; i++)
		for (int j = 0; j < nn; j++)
		{
			double		want = 0.0;

			for (int t = 0; t < kk; t++)
				want += ga[(size_t) t * m + i] * gb[(size_t) j * kk + t];
			worst = fmax(worst, fabs(gc[(size_t) i * nn + j] - want));
		}
	Check(worst < 1e-10, "linalg: the tiled gemm equals the naive product (worst %g)", worst);
	LinalgSetCheck(NULL, NULL);
	free(r);
	free(c);
	free(full);
	free(work);
	free(b);
	free(ax);
	free(ga);
	free(gb);
	free(gc);
}

static void
TestAlsEngine(void)
{
	/* 3 users over the 4 items; user 1 has one row with c = w (right-hand side only) */
	const int64_t ptr[4] = {0, 3, 5, 8};
	const int32_t idx[8] = {0, 1, 3, 2, 3, 0, 1, 2};
	const float conf[8] = {2.0f, 1.0f, 0.5f, 4.0f, 0.25f, 1.0f, 1.0f, 3.0f};
	const double lambda[3] = {0.1, 0.3, 0.05};
	AlsRows rows = {3, ptr, idx, conf};
	double		g[4];
	double	   *work = malloc(sizeof(double) * AlsWorkDoubles(2, 0));
	double		entity_loss[3];
	float		x[6] = {0};
	double		got[6],
				want[6];
	double		want_obs = 0.0;
	double		w = 0.25;
	AlsSweep	s;

	ItemGramian(g);
	for (int e = 0; e < 3; e++)
	{
		int			r[4];
		double		c[4];
		int			n = (int) (ptr[e + 1] - ptr[e]);

		for (int j = 0; j < n; j++)
		{
			r[j] = idx[ptr[e] + j];
			c[j] = conf[ptr[e] + j];
		}
		NaiveUserSolve(Items, g, w, lambda[e], n, r, c, want + 2 * e);
	}

	memset(&s, 0, sizeof(s));
	s.dim = 2;
	s.gramian_weight = w;
	s.solver = ALS_SOLVER_CHOLESKY;
	s.want_observed = 1;
	s.entity_loss = entity_loss;
	Check(AlsSolveSide(&s, &rows, lambda, Items, g, x, work) == ALS_OK, "als_engine: cholesky sweep");
	for (int i = 0; i < 6; i++)
		got[i] = x[i];
	NearAll(got, want, 6, 1e-6, "als_engine: cholesky sweep equals the closed-form ALS solution");

	/* observed loss at the stored (float) vectors: sum_j c (x.v - 1)^2 - w (x.v)^2 */
	for (int e = 0; e < 3; e++)
		for (int64_t j = ptr[e]; j < ptr[e + 1]; j++)
		{
			double		d = (double) x[2 * e] * Items[2 * idx[j]] + (double) x[2 * e + 1] * Items[2 * idx[j] + 1];

			want_obs += conf[j] * (d - 1.0) * (d - 1.0) - w * d * d;
		}
	Near(s.observed, want_obs, 1e-9, "als_engine: observed loss (cholesky)");

	/* cg: k steps of conjugate gradient solve a k x k system */
	memset(x, 0, sizeof(x));
	memset(&s, 0, sizeof(s));
	s.dim = 2;
	s.gramian_weight = w;
	s.solver = ALS_SOLVER_CG;
	s.cg_steps = 4;
	s.want_observed = 1;
	s.entity_loss = entity_loss;
	Check(AlsSolveSide(&s, &rows, lambda, Items, g, x, work) == ALS_OK, "als_engine: cg sweep");
	for (int i = 0; i < 6; i++)
		got[i] = x[i];
	NearAll(got, want, 6, 1e-5, "als_engine: cg sweep equals the closed-form ALS solution");
	Near(s.observed, want_obs, 1e-5, "als_engine: observed loss (cg)");

	/* Gramian of the solved side and the l2 term */
	{
		double		gx[4],
					wantg[4] = {0},
					wl = 0.0;

		(AlsGramian) (x, 3, 2, gx, work);
		for (int e = 0; e < 3; e++)
		{
			for (int p = 0; p < 2; p++)
				for (int q = 0; q < 2; q++)
					wantg[p * 2 + q] += (double) x[2 * e + p] * x[2 * e + q];
			wl += lambda[e] * ((double) x[2 * e] * x[2 * e] + (double) x[2 * e + 1] * x[2 * e + 1]);
		}
		NearAll(gx, wantg, 4, 1e-14, "als_engine: Gramian X^T X");
		Near(AlsL2Loss(x, 3, 2, lambda), wl, 1e-14, "als_engine: l2 loss");
	}
	free(work);
}

/* ---------------- parallel loops ---------------- */

/* A random side: n entities over m others, 0..maxr rows each, confidences 0.5..8.5 */
static AlsRows
RandomRows(int32_t n, int32_t m, int maxr, unsigned *seed)
{
	int64_t    *ptr = malloc(sizeof(int64_t) * (n + 1));
	int32_t    *idx = malloc(sizeof(int32_t) * (size_t) n * maxr + 1);
	float	   *conf = malloc(sizeof(float) * (size_t) n * maxr + 1);
	AlsRows		r;

	ptr[0] = 0;
	for (int32_t e = 0; e < n; e++)
	{
		int			cnt = (int) (rand_r(seed) % (unsigned) (maxr + 1));

		ptr[e + 1] = ptr[e];
		for (int j = 0; j < cnt; j++)
		{
			idx[ptr[e + 1]] = (int32_t) ((e * 7 + j * 13 + (int) (rand_r(seed) % 5)) % m);
			conf[ptr[e + 1]] = 0.5f + (float) (rand_r(seed) % 17) * 0.5f;
			ptr[e + 1]++;
		}
	}
	r.n = n;
	r.ptr = ptr;
	r.idx = idx;
	r.conf = conf;
	return r;
}

/* Run one sweep of the given solver with nworkers threads; returns the status */
static AlsStatus
SweepWith(AlsSolver solver, int nworkers, const AlsRows *rows, int k, const double *lambda,
		  const float *other, const double *g, const float *x0, float *x, double *observed,
		  int64_t max_rows)
{
	AlsSweep	s;
	double	   *work = malloc(sizeof(double) * AlsWorkDoubles(k, max_rows) * nworkers);
	double	   *loss = malloc(sizeof(double) * rows->n);
	AlsStatus	st;

	memset(&s, 0, sizeof(s));
	s.dim = k;
	s.gramian_weight = 0.1;
	s.solver = solver;
	s.cg_steps = 3;
	s.want_observed = 1;
	s.nworkers = nworkers;
	s.max_rows = max_rows;
	s.entity_loss = loss;
	memcpy(x, x0, sizeof(float) * (size_t) rows->n * k);
	st = AlsSolveSide(&s, rows, lambda, other, g, x, work);
	*observed = s.observed;
	free(work);
	free(loss);
	return st;
}

/*
 * A check callback that stops the running loop once (an interrupt that
 * returns); until a loop runs it asks to be called again at the next work
 */
static int	StopsLeft = 0;
static void
StopOnce(void *arg)
{
	if (StopsLeft > 0)
	{
		if (ParallelStop())
			StopsLeft--;
		else
			LinalgWork(LINALG_CHECK_WORK - 1);
	}
}

/* Items of the stop test: slow, counted, their result written at the end */
typedef struct SlowRun
{
	atomic_int	in_item;		/* another thread is inside an item */
	atomic_int	runs[64];
	int64_t		out[64];
	int			stopped;
} SlowRun;

static SlowRun Slow;

static void
SlowItem(void *arg, int worker, int64_t item)
{
	atomic_fetch_add(&Slow.runs[item], 1);
	if (worker != 0)
		atomic_store(&Slow.in_item, 1);
	for (int t = 0; t < 10; t++)
	{
		struct timespec ts = {0, 1000000};

		nanosleep(&ts, NULL);
		LinalgWork(LINALG_CHECK_WORK);
	}
	if (worker != 0)
		atomic_store(&Slow.in_item, 0);
	Slow.out[item] = item * item + 1;
}

/* Stop the loop once another thread is inside an item */
static void
StopInItem(void *arg)
{
	if (!Slow.stopped && atomic_load(&Slow.in_item))
		Slow.stopped = ParallelStop();
}

/*
 * A stopped abortable loop: the other threads unwind out of their items,
 * which the caller reruns; every item ends with its result
 */
static void
TestParallelStop(void)
{
	ParallelLoop loop;
	int			reruns = 0,
				ok = 1;

	memset(&Slow, 0, sizeof(Slow));
	LinalgSetCheck(StopInItem, NULL);
	memset(&loop, 0, sizeof(loop));
	loop.nworkers = 3;
	loop.n = 64;
	loop.batch = 1;
	loop.abortable = 1;
	loop.fn = SlowItem;
	loop.arg = NULL;
	ParallelRun(&loop);
	LinalgSetCheck(NULL, NULL);
	for (int i = 0; i < 64; i++)
	{
		ok &= Slow.out[i] == (int64_t) i * i + 1;
		reruns += atomic_load(&Slow.runs[i]) - 1;
	}
	Check(Slow.stopped, "parallel: the slow loop was stopped");
	Check(ok, "parallel: every item of a stopped loop has its result");
	Check(reruns >= 1, "parallel: an item left half done by a stopped thread was rerun (%d reruns)", reruns);
}

/* Each item: dgemm, dsyrk, Cholesky solve and sgemv of its own matrices */
typedef struct BlasRun
{
	int			k;
	double	   *a;				/* per item: k x k */
	double	   *out;			/* per item: 3 k x k + k */
	float	   *fout;			/* per item: k */
	double	   *work;			/* per worker: k x k */
} BlasRun;

static void
BlasItem(void *arg, int worker, int64_t item)
{
	BlasRun    *r = (BlasRun *) arg;
	int			k = r->k;
	size_t		kk = (size_t) k * k;
	const double *a = r->a + (size_t) item * kk;
	double	   *o = r->out + (size_t) item * (3 * kk + k);
	float		fa[64 * 64],
				fx[64];

	LinalgDgemm(k, k, k, 1.0, a, 0, a, 1, 0.0, o);
	memset(o + kk, 0, sizeof(double) * kk);
	LinalgSyrkRows(k, k, a, 1.0, o + kk);
	/* A A^T + k I is positive definite */
	memcpy(o + 2 * kk, o, sizeof(double) * kk);
	for (int i = 0; i < k; i++)
		o[2 * kk + (size_t) i * k + i] += k;
	for (int i = 0; i < k; i++)
		o[3 * kk + i] = a[i];
	LinalgCholeskySolve(k, o + 2 * kk, o + 3 * kk, 1, r->work + (size_t) worker * kk, NULL);
	for (size_t t = 0; t < kk; t++)
		fa[t] = (float) a[t];
	for (int i = 0; i < k; i++)
		fx[i] = (float) i;
	LinalgSgemv(k, k, 1.0f, fa, fx, 0.0f, r->fout + (size_t) item * k);
}

/*
 * The serial OpenBLAS called from several threads at once: each item's
 * results equal the same items run alone, bit for bit (the library's
 * buffer pool is shared between threads)
 */
static void
TestConcurrentBlas(void)
{
	int			k = 48,
				items = 96;
	size_t		kk = (size_t) k * k;
	BlasRun		r;
	double	   *serial = malloc(sizeof(double) * items * (3 * kk + k));
	float	   *fserial = malloc(sizeof(float) * items * k);
	ParallelLoop loop;
	unsigned	seed = 11;

	Check(BlasLockActive(), "parallel: OpenBLAS allocates its buffers under blas_lock.c's mutex");

	r.k = k;
	r.a = malloc(sizeof(double) * items * kk);
	r.out = malloc(sizeof(double) * items * (3 * kk + k));
	r.fout = malloc(sizeof(float) * items * k);
	r.work = malloc(sizeof(double) * 8 * kk);
	for (size_t t = 0; t < items * kk; t++)
		r.a[t] = (double) (rand_r(&seed) % 2001) / 1000.0 - 1.0;
	for (int64_t i = 0; i < items; i++)
		BlasItem(&r, 0, i);
	memcpy(serial, r.out, sizeof(double) * items * (3 * kk + k));
	memcpy(fserial, r.fout, sizeof(float) * items * k);
	for (int rep = 0; rep < 5; rep++)
	{
		memset(r.out, 0, sizeof(double) * items * (3 * kk + k));
		memset(&loop, 0, sizeof(loop));
		loop.nworkers = 8;
		loop.n = items;
		loop.batch = 1;
		loop.fn = BlasItem;
		loop.arg = &r;
		Check(ParallelRun(&loop) >= 2, "parallel: threads start");
		Check(memcmp(serial, r.out, sizeof(double) * items * (3 * kk + k)) == 0 &&
			  memcmp(fserial, r.fout, sizeof(float) * items * k) == 0,
			  "parallel: dgemm, dsyrk, dpotrf/dpotrs and sgemv on 8 threads at once equal the serial results bit for bit (rep %d)", rep);
	}
	/*
	 * Begun, then the caller does its own BLAS work while the others run,
	 * then ended: the same results, and the caller's own work is right too
	 */
	for (int rep = 0; rep < 3; rep++)
	{
		double		own[16 * 16],
					own_ref[16 * 16];
		double		src[16 * 16];

		for (int t = 0; t < 256; t++)
			src[t] = (double) ((t * 37) % 101) / 50.0 - 1.0;
		cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, 16, 16, 16, 1.0, src, 16, src, 16,
					0.0, own_ref, 16);
		memset(r.out, 0, sizeof(double) * items * (3 * kk + k));
		memset(&loop, 0, sizeof(loop));
		loop.nworkers = 3;
		loop.n = items;
		loop.batch = 1;
		loop.fn = BlasItem;
		loop.arg = &r;
		ParallelBegin(&loop);
		for (int t = 0; t < 200; t++)
			cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, 16, 16, 16, 1.0, src, 16, src, 16,
						0.0, own, 16);
		Check(ParallelEnd(&loop) >= 2, "parallel: a begun loop runs on threads");
		Check(memcmp(serial, r.out, sizeof(double) * items * (3 * kk + k)) == 0 &&
			  memcmp(own, own_ref, sizeof(own)) == 0,
			  "parallel: a loop begun while the caller runs its own dgemm, then ended, equals the serial results bit for bit (rep %d)", rep);
	}
	/* one worker: nothing starts at the beginning, everything runs at the end */
	memset(r.out, 0, sizeof(double) * items * (3 * kk + k));
	memset(&loop, 0, sizeof(loop));
	loop.nworkers = 1;
	loop.n = items;
	loop.batch = 1;
	loop.fn = BlasItem;
	loop.arg = &r;
	ParallelBegin(&loop);
	Check(r.out[0] == 0.0, "parallel: a one-worker loop does nothing when begun");
	Check(ParallelEnd(&loop) == 1 && memcmp(serial, r.out, sizeof(double) * items * (3 * kk + k)) == 0,
		  "parallel: a one-worker loop runs alone when ended, as serial");
	free(serial);
	free(fserial);
	free(r.a);
	free(r.out);
	free(r.fout);
	free(r.work);
}

/*
 * ALS sweeps and Gramians on 1, 2 and 5 threads: the same vectors and
 * losses bit for bit (each entity is solved alone; losses summed in entity
 * order), Gramians equal to rounding; also when the loop is stopped by an
 * interrupt that returns (the caller finishes alone)
 */
static void
TestParallelAls(void)
{
	int			k = 12;
	int32_t		n = 3000,
				m = 400;
	unsigned	seed = 5;
	AlsRows		rows = RandomRows(n, m, 40, &seed);
	float	   *other = malloc(sizeof(float) * m * k);
	float	   *x0 = malloc(sizeof(float) * n * k);
	float	   *x1 = malloc(sizeof(float) * n * k);
	float	   *xn = malloc(sizeof(float) * n * k);
	double	   *lambda = malloc(sizeof(double) * n);
	double		g[144],
				g1[144],
				gn[144];
	double	   *gwork = malloc(sizeof(double) * AlsGramianWorkDoubles(k, 5));
	int64_t		max_rows = 0;

	for (int32_t e = 0; e < n; e++)
		if (rows.ptr[e + 1] - rows.ptr[e] > max_rows)
			max_rows = rows.ptr[e + 1] - rows.ptr[e];
	for (int t = 0; t < m * k; t++)
		other[t] = (float) (rand_r(&seed) % 1001) / 1000.0f - 0.5f;
	for (int t = 0; t < n * k; t++)
		x0[t] = (float) (rand_r(&seed) % 1001) / 2000.0f - 0.25f;
	for (int32_t e = 0; e < n; e++)
		lambda[e] = 0.05 + 0.01 * (e % 7);
	(AlsGramian) (other, m, k, g, gwork);

	for (int solver = 0; solver < 2; solver++)
	{
		AlsSolver	sv = solver == 0 ? ALS_SOLVER_CHOLESKY : ALS_SOLVER_CG;
		const char *name = solver == 0 ? "cholesky" : "cg";
		double		o1,
					on;

		Check(SweepWith(sv, 1, &rows, k, lambda, other, g, x0, x1, &o1, max_rows) == ALS_OK,
			  "parallel: %s sweep on 1 thread", name);
		for (int nw = 2; nw <= 5; nw += 3)
		{
			Check(SweepWith(sv, nw, &rows, k, lambda, other, g, x0, xn, &on, max_rows) == ALS_OK,
				  "parallel: %s sweep on %d threads", name, nw);
			Check(memcmp(x1, xn, sizeof(float) * n * k) == 0 && o1 == on,
				  "parallel: %s sweep on %d threads equals 1 thread bit for bit (vectors, observed loss)", name, nw);
		}
		/* the workspace sized for unknown row counts gives the same solves */
		SweepWith(sv, 2, &rows, k, lambda, other, g, x0, xn, &on, 0);
		Check(memcmp(x1, xn, sizeof(float) * n * k) == 0 && o1 == on,
			  "parallel: %s sweep with the largest workspace equals the fitted one", name);
		/* a stop that returns: the caller reruns what the others left */
		LinalgSetCheck(StopOnce, NULL);
		LinalgWork(LINALG_CHECK_WORK - 1);
		StopsLeft = 1;
		SweepWith(sv, 2, &rows, k, lambda, other, g, x0, xn, &on, max_rows);
		Check(StopsLeft == 0, "parallel: the %s sweep was stopped", name);
		Check(memcmp(x1, xn, sizeof(float) * n * k) == 0 && o1 == on,
			  "parallel: a %s sweep stopped midway and finished alone equals 1 thread", name);
		LinalgSetCheck(NULL, NULL);
	}

	/* a singular entity: the lowest one is reported, whatever the threads */
	{
		double	   *bad = malloc(sizeof(double) * n);
		AlsSweep	s;
		double	   *work = malloc(sizeof(double) * AlsWorkDoubles(k, max_rows) * 4);
		double	   *loss = malloc(sizeof(double) * n);
		int32_t		first = -1;

		for (int32_t e = 0; e < n; e++)
			bad[e] = lambda[e];
		/* lambda far below zero makes an entity's system indefinite */
		for (int32_t e = 0; e < n; e++)
			if (e % 997 == 500)
			{
				bad[e] = -1e6;
				if (first < 0)
					first = e;
			}
		for (int nw = 1; nw <= 4; nw += 3)
		{
			memset(&s, 0, sizeof(s));
			s.dim = k;
			s.gramian_weight = 0.1;
			s.solver = ALS_SOLVER_CHOLESKY;
			s.nworkers = nw;
			s.max_rows = max_rows;
			s.entity_loss = loss;
			memcpy(xn, x0, sizeof(float) * n * k);
			AlsStatus	st = AlsSolveSide(&s, &rows, bad, other, g, xn, work);

			Check(st == ALS_SINGULAR && s.failed_entity == first,
				  "parallel: the lowest singular entity (%d) is reported on %d threads (got %d, status %d)", first, nw, s.failed_entity, (int) st);
		}
		free(bad);
		free(work);
		free(loss);
	}

	/* Gramians: row ranges summed apart, equal to rounding */
	(AlsGramian) (x0, n, k, g1, gwork);
	for (int nw = 2; nw <= 5; nw += 3)
	{
		AlsGramianParallel(x0, n, k, gn, gwork, nw);
		NearAll(gn, g1, k * k, 1e-10, nw == 2 ? "parallel: Gramian on 2 threads equals 1 thread to rounding"
				: "parallel: Gramian on 5 threads equals 1 thread to rounding");
	}
	AlsGramianParallel(x0, n, k, gn, gwork, 1);
	Check(memcmp(gn, g1, sizeof(g1)) == 0, "parallel: Gramian on 1 thread is AlsGramian");

	free((void *) rows.ptr);
	free((void *) rows.idx);
	free((void *) rows.conf);
	free(other);
	free(x0);
	free(x1);
	free(xn);
	free(lambda);
	free(gwork);
}

/* ---------------- rng ---------------- */

/*
 * Golden values computed in Python from the published algorithms
 * (splitmix64: Steele et al.; xoshiro256**: Blackman and Vigna), seeded as
 * rng.h documents.  splitmix64's first output for seed 0 is the published
 * 0xe220a8397b1dcdaf.
 */
static void
TestRng(void)
{
	const uint64_t seed0[4] = {UINT64_C(0x99ec5f36cb75f2b4), UINT64_C(0xbf6e1f784956452a),
	UINT64_C(0x1a5f849d4933e6e0), UINT64_C(0x6aa594f1262d2d2c)};
	const uint64_t seed42[3] = {UINT64_C(0x15780b2e0c2ec716), UINT64_C(0x6104d9866d113a7e),
	UINT64_C(0xae17533239e499a1)};
	const double normals7[3] = {-0.15157274547711355, 0.8298970879692569, 0.5870995807125802};
	const double unif7[2] = {0.7005764821796896, 0.27875122947378433};
	const uint64_t below9[8] = {0, 2, 1, 7, 9, 7, 6, 5};
	Rng			r;
	bool		same = true;

	Check(RngHash64(0) == UINT64_C(0xe220a8397b1dcdaf) && RngHash64(12345) == UINT64_C(0x22118258a9d111a0),
		  "rng: splitmix64 outputs");
	RngInit(&r, 0);
	for (int i = 0; i < 4; i++)
		same &= RngNext64(&r) == seed0[i];
	Check(same, "rng: xoshiro256** sequence for seed 0");
	RngInit(&r, 42);
	same = true;
	for (int i = 0; i < 3; i++)
		same &= RngNext64(&r) == seed42[i];
	Check(same, "rng: xoshiro256** sequence for seed 42");
	RngInit(&r, 7);
	for (int i = 0; i < 3; i++)
		Near(RngNormal(&r), normals7[i], 1e-15, "rng: Box-Muller normals for seed 7");
	RngInit(&r, 7);
	for (int i = 0; i < 2; i++)
		Near(RngUniform(&r), unif7[i], 0, "rng: uniforms for seed 7");
	RngInit(&r, 9);
	same = true;
	for (int i = 0; i < 8; i++)
		same &= RngBelow(&r, 10) == below9[i];
	Check(same, "rng: Lemire's bounded integers for seed 9");

	/* MMoE's keyed uniforms (MmoeDropoutUniform: splitmix64 at n, top 24 bits) */
	Near(MmoeDropoutUniform(0, 0), 0.8833107948303223, 0, "rng: MmoeDropoutUniform(0, 0)");
	Near(MmoeDropoutUniform(7, 12345), 0.6101730465888977, 0, "rng: MmoeDropoutUniform(7, 12345)");
	Near(MmoeDropoutUniform(UINT64_MAX - 2, 5), 0.03193652629852295, 0, "rng: MmoeDropoutUniform(2^64 - 3, 5)");
}

/* ---------------- mmoe_forward and mmoe_backward ---------------- */

/*
 * A small model with every part: input_dim 3, one categorical (vocab 3,
 * dim 2), 2 experts of layers [3, 2], 2 tasks (binary with tower [2],
 * regression without), latent cross (context 2), shallow tower (2
 * positions).  Dropout units: experts 0..9, tower 10..11.
 */
typedef struct TinyModel
{
	MmoeModel	m;
	MmoeLayer	experts[4];
	int			expert_site[4];
	MmoeTask	tasks[2];
	MmoeLayer	tower0[2];
	MmoeLayer	tower1[1];
	int			dsite0[1];
	int			dsite1[1];
	MmoeCategorical cat;
	float		store[512];		/* the weights when the trainer does not own them */
} TinyModel;

/* Fill in the skeleton (dimensions, sites); weights are bound later */
static void
TinySkeleton(TinyModel *t)
{
	MmoeModel  *m = &t->m;

	memset(t, 0, sizeof(*t));
	m->input_dim = 3;
	m->ncategorical = 1;
	t->cat.name = "c";
	t->cat.vocab = 3;
	t->cat.dim = 2;
	m->categorical = &t->cat;
	m->in_width = 5;
	m->nexperts = 2;
	m->nlayers = 2;
	m->experts = t->experts;
	m->expert_site = t->expert_site;
	for (int i = 0; i < 2; i++)
	{
		t->experts[i * 2] = (MmoeLayer) {5, 3, NULL, NULL};
		t->experts[i * 2 + 1] = (MmoeLayer) {3, 2, NULL, NULL};
		t->expert_site[i * 2] = i * 5;
		t->expert_site[i * 2 + 1] = i * 5 + 3;
	}
	m->expert_out = 2;
	m->gate = MMOE_GATE_SOFTMAX;
	m->top_k = 2;
	m->ntasks = 2;
	m->tasks = t->tasks;
	t->tasks[0] = (MmoeTask) {"y0", MMOE_BINARY, 1, {5, 2, NULL, NULL}, t->tower0, t->dsite0};
	t->tower0[0] = (MmoeLayer) {2, 2, NULL, NULL};
	t->tower0[1] = (MmoeLayer) {2, 1, NULL, NULL};
	t->dsite0[0] = 10;
	t->tasks[1] = (MmoeTask) {"y1", MMOE_REGRESSION, 0, {5, 2, NULL, NULL}, t->tower1, t->dsite1};
	t->tower1[0] = (MmoeLayer) {2, 1, NULL, NULL};
	m->context_dim = 2;
	m->latent = (MmoeLayer) {2, 2, NULL, NULL};
	m->positions = 2;
	m->dropout_units = 12;
	m->max_width = 3;
}

/* Point every layer at weights in t->store, filled with test values */
static void
TinyWeights(TinyModel *t)
{
	MmoeModel  *m = &t->m;
	float	   *p = t->store;
	unsigned	st = 11;
	MmoeLayer  *layers[] = {&t->experts[0], &t->experts[1], &t->experts[2], &t->experts[3],
		&t->tasks[0].gate, &t->tasks[1].gate, &t->tower0[0], &t->tower0[1], &t->tower1[0], &m->latent};

	for (size_t i = 0; i < sizeof(t->store) / sizeof(float); i++)
		t->store[i] = (float) TestValue(&st);
	for (size_t l = 0; l < sizeof(layers) / sizeof(layers[0]); l++)
	{
		layers[l]->w = p;
		p += layers[l]->in * layers[l]->out;
		layers[l]->b = p;
		p += layers[l]->out;
	}
	t->cat.table = p;
	p += 6;
	m->shallow = p;
	p += 6;
}

/* One Linear in double: y = W x + b */
static void
NaiveLinear(const MmoeLayer *l, const double *x, double *y)
{
	for (int o = 0; o < l->out; o++)
	{
		y[o] = l->b[o];
		for (int i = 0; i < l->in; i++)
			y[o] += (double) l->w[o * l->in + i] * x[i];
	}
}

/*
 * The documented forward pass (mmoe_model.h) of one row in double, with
 * MC-dropout sample number `sample` at `rate` (0: none)
 */
static void
NaiveForward(const MmoeModel *m, const float *features, int id, const float *ctx, int pos,
			 double rate, uint64_t seed, int64_t sample, double *out)
{
	double		z[5],
				h[2][3],
				e[2][2],
				g[2],
				mix[2],
				cross[2],
				c[2],
				t1[2],
				logit;

#define DROP(v, site) \
	((rate) > 0 ? (MmoeDropoutUniform(seed, (uint64_t) sample * m->dropout_units + (site)) >= (rate) \
				   ? (v) / (1.0 - (rate)) : 0.0) : (v))

	for (int i = 0; i < 3; i++)
		z[i] = features[i];
	z[3] = m->categorical[0].table[id * 2];
	z[4] = m->categorical[0].table[id * 2 + 1];
	for (int i = 0; i < 2; i++)
	{
		NaiveLinear(&m->experts[i * 2], z, h[i]);
		for (int j = 0; j < 3; j++)
			h[i][j] = DROP(fmax(h[i][j], 0.0), m->expert_site[i * 2] + j);
		NaiveLinear(&m->experts[i * 2 + 1], h[i], e[i]);
		for (int j = 0; j < 2; j++)
			e[i][j] = DROP(fmax(e[i][j], 0.0), m->expert_site[i * 2 + 1] + j);
	}
	for (int j = 0; j < 2; j++)
		c[j] = ctx[j];
	NaiveLinear(&m->latent, c, cross);
	for (int t = 0; t < 2; t++)
	{
		const MmoeTask *task = &m->tasks[t];
		double		mx;
		const double *src = mix;

		NaiveLinear(&task->gate, z, g);
		mx = fmax(g[0], g[1]);
		g[0] = exp(g[0] - mx);
		g[1] = exp(g[1] - mx);
		for (int j = 0; j < 2; j++)
			mix[j] = (g[0] * e[0][j] + g[1] * e[1][j]) / (g[0] + g[1]) * (1.0 + cross[j]);
		if (task->nhidden == 1)
		{
			NaiveLinear(&task->tower[0], mix, t1);
			for (int j = 0; j < 2; j++)
				t1[j] = DROP(fmax(t1[j], 0.0), task->dropout_site[0] + j);
			src = t1;
		}
		NaiveLinear(&task->tower[task->nhidden], src, &logit);
		logit += m->shallow[(pos < 0 ? m->positions : pos) * m->ntasks + t];
		out[t] = task->type == MMOE_BINARY ? 1.0 / (1.0 + exp(-logit)) : logit;
	}
#undef DROP
}

/* The test rows of the MMoE checks */
static const float MFeat[4][3] = {{0.5f, -1.0f, 2.0f}, {1.5f, 0.25f, -0.5f}, {-2.0f, 1.0f, 0.0f}, {0.1f, 0.2f, 0.3f}};
static const int MIds[4] = {2, 0, 1, 2};
static const float MCtx[4][2] = {{1.0f, -0.5f}, {0.0f, 0.0f}, {-1.0f, 2.0f}, {0.5f, 0.5f}};
static const int MPos[4] = {1, -1, 0, 1};

static void
TestMmoeForward(void)
{
	TinyModel	tm;
	MmoeModel  *m = &tm.m;
	float	   *fw;
	float	   *fb;
	MmoeScratch s;
	void	   *mem;
	float		out[8];
	double		got[8],
				want[8];

	TinySkeleton(&tm);
	TinyWeights(&tm);
	fw = malloc(sizeof(float) * MmoeFusedRows(m) * m->in_width);
	fb = malloc(sizeof(float) * MmoeFusedRows(m));
	MmoeFuseFirstLayers(m, fw, fb);
	Check(MmoeScratchRows(m, 4) == 4, "mmoe_forward: scratch for 4 rows");
	mem = malloc(MmoeScratchBytes(m, 4));
	MmoeScratchInit(m, 4, mem, &s);

	/* a block of 4 rows and the single-row path */
	for (int pass = 0; pass < 2; pass++)
	{
		int			rows = pass == 0 ? 4 : 1;

		for (int r0 = 0; r0 < 4; r0 += rows)
		{
			for (int r = 0; r < rows; r++)
			{
				memcpy(s.x + r * m->in_width, MFeat[r0 + r], sizeof(float) * 3);
				s.ids[r] = MIds[r0 + r];
				memcpy(s.context + r * 2, MCtx[r0 + r], sizeof(float) * 2);
				s.display_position[r] = MPos[r0 + r];
			}
			MmoeForward(m, &s, rows, NULL, out + r0 * 2);
		}
		for (int r = 0; r < 4; r++)
		{
			NaiveForward(m, MFeat[r], MIds[r], MCtx[r], MPos[r], 0, 0, 0, want + r * 2);
			got[r * 2] = out[r * 2];
			got[r * 2 + 1] = out[r * 2 + 1];
		}
		NearAll(got, want, 8, 2e-6, pass == 0 ? "mmoe_forward: block of rows equals the documented pass"
				: "mmoe_forward: single rows equal the documented pass");
	}

	/* gate weights: softmax of the gate logits, summing to 1 */
	{
		float		gates[8];
		double		gsum = 0;

		for (int r = 0; r < 4; r++)
		{
			memcpy(s.x + r * m->in_width, MFeat[r], sizeof(float) * 3);
			s.ids[r] = MIds[r];
		}
		MmoeGateWeights(m, &s, 4, 1, gates);
		for (int r = 0; r < 4; r++)
			gsum = fmax(gsum, fabs(gates[r * 2] + gates[r * 2 + 1] - 1.0));
		Check(gsum < 1e-6 && gates[0] > 0 && gates[1] > 0, "mmoe_forward: gate weights sum to 1");
	}

	/* MC dropout: row r is sample first_sample + r, masks keyed as documented */
	{
		MmoeDropout d = {0.3, 99, 5};

		for (int r = 0; r < 4; r++)
		{
			memcpy(s.x + r * m->in_width, MFeat[1], sizeof(float) * 3);
			s.ids[r] = MIds[1];
			memcpy(s.context + r * 2, MCtx[1], sizeof(float) * 2);
			s.display_position[r] = MPos[1];
		}
		MmoeForward(m, &s, 4, &d, out);
		for (int r = 0; r < 4; r++)
		{
			NaiveForward(m, MFeat[1], MIds[1], MCtx[1], MPos[1], 0.3, 99, 5 + r, want + r * 2);
			got[r * 2] = out[r * 2];
			got[r * 2 + 1] = out[r * 2 + 1];
		}
		NearAll(got, want, 8, 2e-6, "mmoe_forward: MC-dropout samples equal the documented masks");
		/* (task 0's tower units are all cut by ReLU on this row, so only task 1 varies) */
		Check(got[1] != got[3] || got[3] != got[5] || got[5] != got[7], "mmoe_forward: MC-dropout samples differ");
	}
	free(mem);
	free(fw);
	free(fb);
}

/* Get the objective of one step of the trainer's batch (also fills grad) */
static double
TrainObjective(MmoeTrainer *t, int rows)
{
	MmoeStepStats st;

	MmoeTrainStep(t, rows, &st);
	return st.objective;
}

static void
TestMmoeBackward(void)
{
	TinyModel	tm;
	MmoeModel  *m = &tm.m;
	MmoeTrainOptions opt;
	MmoeTrainer t;
	void	   *mem;
	float	   *grad;
	unsigned	st = 3;
	int			rows = 4;
	int			bad = 0;
	double		worst = 0.0;
	double		eps = 1e-2;

	TinySkeleton(&tm);
	memset(&opt, 0, sizeof(opt));
	opt.uncertainty = true;
	opt.expert_dropout = 0.3;
	opt.dropout = 0.2;
	opt.position_dropout = 0.0;
	opt.seed = 17;
	opt.beta1 = 0.9;
	opt.beta2 = 0.999;
	opt.eps = 1e-8;
	m->dropout = 0.2;
	mem = malloc(MmoeTrainerBytes(m, &opt, rows) + 64);
	MmoeTrainerInit(&t, m, &opt, rows, mem);
	for (size_t j = 0; j < t.nparams; j++)
		t.params[j] = (float) (0.8 * TestValue(&st));
	for (int r = 0; r < rows; r++)
	{
		memcpy(t.z + r * m->in_width, MFeat[r], sizeof(float) * 3);
		t.ids[r] = MIds[r];
		memcpy(t.context + r * 2, MCtx[r], sizeof(float) * 2);
		t.display_position[r] = MPos[r];
		t.labels[r * 2] = (float) (r % 2);
		t.labels[r * 2 + 1] = (float) (0.5 * r - 1.0);
		t.has_label[r * 2] = 1;
		t.has_label[r * 2 + 1] = r != 2;	/* one row without a label */
		t.key[r] = 100 + r;
	}

	(void) TrainObjective(&t, rows);
	grad = malloc(sizeof(float) * t.nparams);
	memcpy(grad, t.grad, sizeof(float) * t.nparams);

	/*
	 * Central differences in float32 parameters: the objective is a float32
	 * computation, so the step is large (1e-2) and the tolerance is
	 * 2e-2 relative to max(|gradient|, 0.05); a wrong sign, factor or index
	 * is off by far more.
	 */
	for (size_t j = 0; j < t.nparams; j++)
	{
		float		p0 = t.params[j];
		double		up,
					down,
					fd,
					err;

		t.params[j] = p0 + (float) eps;
		up = TrainObjective(&t, rows);
		t.params[j] = p0 - (float) eps;
		down = TrainObjective(&t, rows);
		t.params[j] = p0;
		fd = (up - down) / (((double) (p0 + (float) eps)) - ((double) (p0 - (float) eps)));
		err = fabs(fd - grad[j]) / fmax(fabs(fd), 0.05);
		if (err > worst)
			worst = err;
		if (err > 2e-2)
		{
			if (bad++ < 5)
				fprintf(stderr, "mmoe_backward: parameter %zu: gradient %.6g, finite difference %.6g\n",
						j, grad[j], fd);
		}
	}
	Check(bad == 0, "mmoe_backward: %d of %zu gradients differ from central differences (worst %.3g)",
		  bad, t.nparams, worst);
	Check(t.nparams > 80, "mmoe_backward: every tensor checked (%zu parameters)", t.nparams);

	/* one Adam step from zero moments moves each parameter by lr against its gradient's sign */
	{
		float	   *before = malloc(sizeof(float) * t.nparams);
		int			wrong = 0;

		(void) TrainObjective(&t, rows);
		memcpy(before, t.params, sizeof(float) * t.nparams);
		MmoeAdamStep(&t, 0.01);
		for (size_t j = 0; j < t.nparams; j++)
		{
			double		want = t.grad[j] == 0.0f ? 0.0 : -0.01 * t.grad[j] / (fabs(t.grad[j]) + 1e-8);

			if (fabs((t.params[j] - before[j]) - want) > 1e-6)
				wrong++;
		}
		Check(wrong == 0, "mmoe_backward: first Adam step is -lr sign(g) (%d parameters off)", wrong);
		free(before);
	}
	free(grad);
	free(mem);
}

/* ---------------- features (numeric transforms) and embedding bags ---------------- */

/*
 * Feature statistics and transforms against closed forms, and MmoeBagMean
 * against the mean of table rows worked out by hand
 */
static void
TestFeatures(void)
{
	FeatureStats st;
	FeatureNumeric f = {0};
	double		big[3] = {1e9 + 1, 1e9 + 2, 1e9 + 3};
	float		table[4 * 2] = {1, 2, 3, 4, 5, 6, 7, 8};
	MmoeCategorical bag = {"b", 4, 2, table};
	int32_t		ids[3] = {0, 3, 3};
	float		out[2];

	/* 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population std 2 */
	FeatureStatsInit(&st);
	for (int i = 0; i < 8; i++)
		FeatureStatsAdd(&st, (double[]) {2, 4, 4, 4, 5, 5, 7, 9}[i]);
	Near(st.mean, 5.0, 1e-15, "features: Welford mean");
	Near(FeatureStatsStd(&st), 2.0, 1e-15, "features: population std");
	Near(st.min, 2.0, 0, "features: min");
	Near(st.max, 9.0, 0, "features: max");
	/* a large offset: the std of 1e9 + {1,2,3} is sqrt(2/3) exactly as of {1,2,3} */
	FeatureStatsInit(&st);
	for (int i = 0; i < 3; i++)
		FeatureStatsAdd(&st, big[i]);
	Near(FeatureStatsStd(&st), sqrt(2.0 / 3.0), 1e-9, "features: std with a 1e9 offset");
	FeatureStatsInit(&st);
	FeatureStatsAdd(&st, 3.0);
	Near(FeatureStatsStd(&st), 0.0, 0, "features: std of one value");

	f.transform = FEATURE_STANDARDIZE;
	f.mean = 5;
	f.std = 2;
	Near(FeatureNumericApply(&f, 9), 2.0, 0, "features: standardize (9 - 5) / 2");
	f.std = 0;
	Near(FeatureNumericApply(&f, 9), 4.0, 0, "features: std 0 divides by 1");
	f.transform = FEATURE_LOG1P_STANDARDIZE;
	f.mean = log1p(1.0);
	f.std = 0.5;
	Near(FeatureNumericApply(&f, exp(1.0) * 2 - 1), 2.0, 1e-7, "features: (log1p(2e - 1) - log 2) / 0.5 = 2");
	f.transform = FEATURE_MINMAX;
	f.min = 10;
	f.max = 20;
	Near(FeatureNumericApply(&f, 12.5), 0.25, 0, "features: minmax (12.5 - 10) / 10");
	Near(FeatureNumericApply(&f, 30), 2.0, 0, "features: minmax does not clip");
	f.max = 10;
	Near(FeatureNumericApply(&f, 30), 0.0, 0, "features: minmax with max = min is 0");
	Check(!FeatureValueValid(FEATURE_LOG1P_STANDARDIZE, -1.0) && FeatureValueValid(FEATURE_LOG1P_STANDARDIZE, -0.5) &&
		  !FeatureValueValid(FEATURE_STANDARDIZE, NAN) && !FeatureValueValid(FEATURE_MINMAX, INFINITY) &&
		  FeatureValueValid(FEATURE_STANDARDIZE, -1e300), "features: valid values");

	/* rows 0, 3, 3 of [[1,2],[3,4],[5,6],[7,8]]: ((1+7+7)/3, (2+8+8)/3) = (5, 6) */
	MmoeBagMean(&bag, ids, 3, out);
	Near(out[0], 5.0, 0, "bag: mean of rows 0, 3, 3 (first)");
	Near(out[1], 6.0, 0, "bag: mean of rows 0, 3, 3 (second)");
	MmoeBagMean(&bag, ids, 0, out);
	Check(out[0] == 0.0f && out[1] == 0.0f, "bag: an empty bag is zeros");
}

/* ---------------- ease ---------------- */

/* Count the kernel's interrupt checks */
static void
CountEaseCheck(void *arg)
{
	(*(int *) arg)++;
}

/* Invert the n x n matrix a (row-major, copied) by Gauss-Jordan elimination with pivoting */
static void
NaiveInverse(int n, const double *a_in, double *inv)
{
	double	   *a = malloc(sizeof(double) * n * n);

	memcpy(a, a_in, sizeof(double) * n * n);
	for (int i = 0; i < n * n; i++)
		inv[i] = i % (n + 1) == 0 ? 1.0 : 0.0;
	for (int c = 0; c < n; c++)
	{
		int			p = c;
		double		d;

		for (int r = c + 1; r < n; r++)
			if (fabs(a[r * n + c]) > fabs(a[p * n + c]))
				p = r;
		for (int j = 0; j < n; j++)
		{
			double		t = a[c * n + j];

			a[c * n + j] = a[p * n + j];
			a[p * n + j] = t;
			t = inv[c * n + j];
			inv[c * n + j] = inv[p * n + j];
			inv[p * n + j] = t;
		}
		d = a[c * n + c];
		for (int j = 0; j < n; j++)
		{
			a[c * n + j] /= d;
			inv[c * n + j] /= d;
		}
		for (int r = 0; r < n; r++)
		{
			double		f = a[r * n + c];

			if (r == c || f == 0.0)
				continue;
			for (int j = 0; j < n; j++)
			{
				a[r * n + j] -= f * a[c * n + j];
				inv[r * n + j] -= f * inv[c * n + j];
			}
		}
	}
	free(a);
}

/*
 * EASE on 2 and 3 items against closed forms and numpy, and on 300 items
 * (three factor blocks, two inverse blocks) against a naive recomputation
 * from the definition: dense X^T X + lambda I, a Gauss-Jordan inverse,
 * B = I - P diag(1/diag P) with a zero diagonal, and |X - X B|^2 summed
 * over the users' dense rows
 */
static void
TestEase(void)
{
	/*
	 * X = [[1, 1], [1, 0]], lambda 1: X^T X + I = [[3, 1], [1, 2]], P =
	 * [[2, -1], [-1, 3]] / 5, B_01 = -P_01 / P_11 = 1/3, B_10 = -P_10 / P_00
	 * = 1/2; X - X B = [[1/2, 2/3], [1, -1/3]]: observed 65/36, lambda |B|^2
	 * = 13/36
	 */
	{
		int64_t		ptr[3] = {0, 2, 3};
		int32_t		items[3] = {0, 1, 0};
		float		conf[3] = {1, 1, 1};
		double		p[4],
					work[4],
					norms[2],
					obs,
					l2;
		float		row[2];

		EaseGramian(2, 2, ptr, items, conf, 1.0, p, NULL, NULL);
		Near(p[0], 3.0, 0, "ease 2x2: gramian (0, 0) with lambda");
		Near(p[1], 1.0, 0, "ease 2x2: gramian (1, 0)");
		Near(p[3], 2.0, 0, "ease 2x2: gramian (1, 1) with lambda");
		Check(EaseInvert(2, p, work, NULL, NULL) == 0, "ease 2x2: invert");
		Near(p[0], 0.4, 1e-15, "ease 2x2: P_00 = 2/5");
		Near(p[1], -0.2, 1e-15, "ease 2x2: P_10 = -1/5");
		Near(p[3], 0.6, 1e-15, "ease 2x2: P_11 = 3/5");
		EaseRow(2, p, 0, row);
		Check(row[0] == 0.0f, "ease 2x2: B_00 is 0, got %g", row[0]);
		Near(row[1], 1.0 / 3.0, 1e-7, "ease 2x2: B_01 = 1/3");
		EaseRow(2, p, 1, row);
		Near(row[0], 0.5, 1e-7, "ease 2x2: B_10 = 1/2");
		Check(row[1] == 0.0f, "ease 2x2: B_11 is 0, got %g", row[1]);
		EaseLoss(2, p, 1.0, norms, &obs, &l2);
		Near(obs, 65.0 / 36.0, 1e-14, "ease 2x2: observed loss 65/36");
		Near(l2, 13.0 / 36.0, 1e-14, "ease 2x2: l2 loss 13/36");
	}

	/*
	 * users {0, 1}, {1, 2}, {0, 2}, {0 with confidence 2}, lambda 1 (the
	 * q_tiny model of sql/quality.sql); numpy: P = inv(X.T @ X + I), B = I -
	 * P / diag(P) = [[0, .1, .1], [.25, 0, .3], [.25, .3, 0]], observed
	 * 8.375, l2 0.325, and [1, 0, 0.5] @ B = [0.125, 0.25, 0.1]
	 */
	{
		int64_t		ptr[5] = {0, 2, 4, 6, 7};
		int32_t		items[7] = {0, 1, 1, 2, 0, 2, 0};
		float		conf[7] = {1, 1, 1, 1, 1, 1, 2};
		const double want_b[9] = {0, 0.1, 0.1, 0.25, 0, 0.3, 0.25, 0.3, 0};
		double		p[9],
					work[9],
					norms[3],
					obs,
					l2;
		float		b[9],
					scores[3];
		double		got[9];
		int			rows[2] = {0, 2};
		float		xconf[2] = {1, 0.5f};

		EaseGramian(3, 4, ptr, items, conf, 1.0, p, NULL, NULL);
		Near(p[0], 7.0, 0, "ease 3x3: gramian (0, 0) = 1 + 1 + 2^2 + lambda");
		Check(EaseInvert(3, p, work, NULL, NULL) == 0, "ease 3x3: invert");
		for (int t = 0; t < 3; t++)
			EaseRow(3, p, t, b + t * 3);
		for (int i = 0; i < 9; i++)
			got[i] = b[i];
		NearAll(got, want_b, 9, 1e-7, "ease 3x3: B against numpy");
		EaseLoss(3, p, 1.0, norms, &obs, &l2);
		Near(obs, 8.375, 1e-13, "ease 3x3: observed loss against numpy");
		Near(l2, 0.325, 1e-13, "ease 3x3: l2 loss against numpy");
		EaseScoreUser(3, b, 2, rows, xconf, scores);
		Near(scores[0], 0.125, 1e-7, "ease 3x3: scores of [1, 0, 0.5] (first)");
		Near(scores[1], 0.25, 1e-7, "ease 3x3: scores of [1, 0, 0.5] (second)");
		Near(scores[2], 0.1, 1e-7, "ease 3x3: scores of [1, 0, 0.5] (third)");
		EaseScoreUser(3, b, 2, rows, NULL, scores);
		Near(scores[1], 0.1 + 0.3, 1e-7, "ease 3x3: NULL confidences count 1");
	}

	/* 300 items, 400 users of about 5 to 35 items with confidences in [0.5, 3) */
	{
		enum
		{
			N = 300, U = 400
		};
		double		lambda = 5.0;
		int64_t    *ptr = malloc(sizeof(int64_t) * (U + 1));
		int32_t    *items = malloc(sizeof(int32_t) * U * N);
		float	   *conf = malloc(sizeof(float) * U * N);
		double	   *x = calloc((size_t) U * N, sizeof(double));
		double	   *g = calloc((size_t) N * N, sizeof(double));
		double	   *inv = malloc(sizeof(double) * N * N);
		double	   *bref = malloc(sizeof(double) * N * N);
		double	   *p = malloc(EaseMatrixBytes(N));
		double	   *work = malloc(EaseWorkBytes(N));
		float	   *b = malloc(sizeof(float) * N * N);
		double	   *got = malloc(sizeof(double) * N * N);
		float		scores[N];
		double		obs,
					l2,
					obs_ref = 0.0,
					l2_ref = 0.0,
					worst;
		unsigned	st = 2019;
		int			checks = 0,
					nnz = 0,
					at;

		ptr[0] = 0;
		for (int u = 0; u < U; u++)
		{
			int			want = 5 + (int) ((TestValue(&st) + 1.0) * 15.0);

			/* items ascending: each item with probability want / N */
			for (int i = 0; i < N; i++)
				if (TestValue(&st) < -1.0 + 2.0 * want / N)
				{
					items[nnz] = i;
					conf[nnz] = (float) (1.75 + 1.25 * TestValue(&st));
					x[(size_t) u * N + i] = conf[nnz];
					nnz++;
				}
			ptr[u + 1] = nnz;
		}
		for (int u = 0; u < U; u++)
			for (int i = 0; i < N; i++)
				for (int j = 0; j < N; j++)
					g[i * N + j] += x[(size_t) u * N + i] * x[(size_t) u * N + j];
		at = -1;
		for (int i = 0; i < N; i++)
			if (g[i * N + i] == 0.0)
				at = i;
		Check(at < 0, "ease 300: test data: item %d has no user", at);
		for (int i = 0; i < N; i++)
			g[i * N + i] += lambda;

		EaseGramian(N, U, ptr, items, conf, lambda, p, CountEaseCheck, &checks);
		worst = 0.0;
		for (int j = 0; j < N; j++)
			for (int i = j; i < N; i++)
				worst = fmax(worst, fabs(p[(size_t) j * N + i] - g[i * N + j]));
		Check(worst <= 1e-12, "ease 300: gramian lower triangle off by %g", worst);

		NaiveInverse(N, g, inv);
		for (int i = 0; i < N; i++)
			for (int j = 0; j < N; j++)
				bref[i * N + j] = i == j ? 0.0 : -inv[i * N + j] / inv[j * N + j];
		for (int u = 0; u < U; u++)
			for (int j = 0; j < N; j++)
			{
				double		r = x[(size_t) u * N + j];

				for (int i = 0; i < N; i++)
					r -= x[(size_t) u * N + i] * bref[i * N + j];
				obs_ref += r * r;
			}
		for (int i = 0; i < N * N; i++)
			l2_ref += lambda * bref[i] * bref[i];

		checks = 0;
		Check(EaseInvert(N, p, work, CountEaseCheck, &checks) == 0, "ease 300: invert");
		Check(checks >= (N + EaseInverseBlock(N) - 1) / EaseInverseBlock(N),
			  "ease 300: %d interrupt checks in the inverse", checks);
		worst = 0.0;
		for (int j = 0; j < N; j++)
			for (int i = j; i < N; i++)
				worst = fmax(worst, fabs(p[(size_t) j * N + i] - inv[i * N + j]) / fabs(inv[j * N + j]));
		Check(worst <= 1e-10, "ease 300: P off by %g (relative to the diagonal)", worst);
		for (int t = 0; t < N; t++)
			EaseRow(N, p, t, b + (size_t) t * N);
		for (int i = 0; i < N * N; i++)
			got[i] = b[i];
		NearAll(got, bref, N * N, 1e-6, "ease 300: B against the naive inverse");
		at = -1;
		for (int t = 0; t < N; t++)
			if (b[(size_t) t * N + t] != 0.0f)
				at = t;
		Check(at < 0, "ease 300: diagonal of B not zero at %d", at);
		EaseLoss(N, p, lambda, got, &obs, &l2);
		Near(obs, obs_ref, 1e-9, "ease 300: observed loss |X - XB|^2 against the definition");
		Near(l2, l2_ref, 1e-9, "ease 300: l2 loss against the definition");

		/* a user's scores: x_u B in double from the reference B */
		for (int u = 0; u < 3; u++)
		{
			double		want[N],
						have[N];
			int			rows[N];
			int			nin = 0;

			for (int64_t q = ptr[u]; q < ptr[u + 1]; q++)
				rows[nin++] = items[q];
			EaseScoreUser(N, b, nin, rows, conf + ptr[u], scores);
			for (int j = 0; j < N; j++)
			{
				want[j] = 0.0;
				for (int i = 0; i < N; i++)
					want[j] += x[(size_t) u * N + i] * bref[i * N + j];
				have[j] = scores[j];
			}
			NearAll(have, want, N, 1e-5, "ease 300: a user's scores x_u B");
		}

		/* lambda far below -min eigenvalue: not positive definite, the factorization's info */
		EaseGramian(N, U, ptr, items, conf, -1e6, p, NULL, NULL);
		Check(EaseInvert(N, p, work, NULL, NULL) > 0, "ease 300: an indefinite system is refused");

		free(ptr);
		free(items);
		free(conf);
		free(x);
		free(g);
		free(inv);
		free(bref);
		free(p);
		free(work);
		free(b);
		free(got);
	}
}

int
main(void)
{
	TestLinalg();
	TestRankBuffer();
	TestGramianState();
	TestAlsState();
	TestAucState();
	TestSmallStates();
	TestTopK();
	TestFoldIn();
	TestAlsEngine();
	TestConcurrentBlas();
	TestParallelAls();
	TestParallelStop();
	TestLinalgChecks();
	TestRng();
	TestMmoeForward();
	TestMmoeBackward();
	TestFeatures();
	TestEase();
	printf("check-kernels: %d passed, %d failed\n", Passed, Failed);
	return Failed == 0 ? 0 : 1;
}
