/*
 * kernel/aggkernel.c
 *		Validators and update kernels of the bytea aggregate states.
 *
 * The validators check, against the actual byte size, everything the
 * kernels below rely on: header fields, sizes (computed without overflow),
 * room for the next row at both ends of a rank buffer, counts that are
 * non-negative, consistent and below 2^63 - 1 (so the next row cannot
 * overflow them), dimensions within the caller's maximum, and finite values
 * where the kernels need them.  The kernels themselves check what only
 * shows up when two valid states meet (different dimensions, counts or sums
 * that would overflow).
 */
#include <string.h>

#include "kernel/aggkernel.h"
#include "kernel/linalg.h"

/* Get a + b * c, or SIZE_MAX when that overflows */
static size_t
SizeMulAdd(size_t a, size_t b, size_t c)
{
	size_t		prod,
				sum;

	if (a == SIZE_MAX || __builtin_mul_overflow(b, c, &prod) ||
		__builtin_add_overflow(a, prod, &sum))
		return SIZE_MAX;
	return sum;
}

/* Get the largest dimension a validator accepts: the caller's max_dim, within AGG_MAX_DIM */
static int
ClampMaxDim(int max_dim)
{
	return max_dim > AGG_MAX_DIM ? AGG_MAX_DIM : max_dim;
}

/* Get NULL when every one of n doubles is finite, else the reason */
static const char *
CheckFinite(const double *x, size_t n)
{
	bool		bad = false;

	for (size_t i = 0; i < n; i++)
		bad |= !isfinite(x[i]);
	return bad ? "The state holds a non-finite value." : NULL;
}

/* Get NULL when every one of n doubles is zero, else the reason */
static const char *
CheckZero(const double *x, size_t n)
{
	bool		bad = false;

	for (size_t i = 0; i < n; i++)
		bad |= (x[i] != 0.0);
	return bad ? "The state has no rows but holds sums." : NULL;
}

/* Get NULL when a state of size bytes starts with the header of magic and version */
const char *
AggHeaderCheck(const void *state, size_t size, uint32_t magic, uint16_t version)
{
	const RecsysStateHeader *h = state;

	if (size < sizeof(RecsysStateHeader) || h->magic != magic)
		return "The state does not belong to this aggregate.";
	if (h->version != version)
		return "The state has an unsupported version.";
	return NULL;
}

/* ---------------------------------------------------------------------
 * gramian
 * ---------------------------------------------------------------------
 */

/* Get the byte size of a Gramian state for k and buf_cap rows (SIZE_MAX if absurd) */
size_t
GramianStateSize(int dim, int buf_cap)
{
	if (dim < 1 || buf_cap < 1)
		return SIZE_MAX;
	return SizeMulAdd(offsetof(GramianState, data), sizeof(double),
					  SizeMulAdd((size_t) dim * dim, (size_t) buf_cap, (size_t) dim));
}

/* Fill in the header of a zeroed Gramian state */
void
GramianStateInit(GramianState *s, int dim, int buf_cap)
{
	s->hdr.magic = GRAMIAN_MAGIC;
	s->hdr.version = GRAMIAN_VERSION;
	s->buf.dim = dim;
	s->buf.cap = buf_cap;
}

/* Get NULL when state (size bytes) is a Gramian state the kernels may use */
const char *
GramianStateCheck(const void *state, size_t size, int max_dim)
{
	const GramianState *s = state;
	const char *bad = AggHeaderCheck(state, size, GRAMIAN_MAGIC, GRAMIAN_VERSION);

	if (bad)
		return bad;
	if (size < offsetof(GramianState, data))
		return "The state is shorter than its header.";
	if (!RankBufferValid(&s->buf, ClampMaxDim(max_dim), GRAMIAN_MAX_BUFFER))
		return "The row buffer header is inconsistent or has no room for the next row.";
	if (s->count < (int64_t) s->buf.n_pos + s->buf.n_neg || s->count == INT64_MAX)
		return "The row count is inconsistent.";
	if (size != GramianStateSize(s->buf.dim, s->buf.cap))
		return "The header does not match the size of the state.";
	return NULL;
}

/*
 * Get NULL when every value of a checked Gramian state is finite and a state
 * without rows holds no sum; O(k^2 + buffer), for states from outside
 */
const char *
GramianStateCheckValues(const GramianState *s)
{
	size_t		n = (size_t) s->buf.dim * s->buf.dim;

	if (!RankBufferFinite(&s->buf, GramianBuffer(s)))
		return "The state holds a non-finite value.";
	if (s->count == 0)
		return CheckZero(GramianMatrix(s), n);
	return CheckFinite(GramianMatrix(s), n);
}

/* Get the buffer slot for the next row of weight w (scaled by RankBufferScale(w)) */
double *
GramianStateSlot(GramianState *s, double w)
{
	return RankBufferSlot(&s->buf, GramianBuffer(s), w);
}

/* Count the row just written to the slot of weight w, folding a full buffer */
void
GramianStateCommit(GramianState *s, double w)
{
	s->count++;
	if (RankBufferCommit(&s->buf, w))
		RankBufferFlush(&s->buf, GramianBuffer(s), GramianMatrix(s));
}

/* Fold the buffered rows of a state into its matrix */
void
GramianStateFlush(GramianState *s)
{
	RankBufferFlush(&s->buf, GramianBuffer(s), GramianMatrix(s));
}

/* Add the checked state s2 to s1 (both value-checked); s2 is not changed */
AggError
GramianStateCombine(GramianState *s1, const GramianState *s2)
{
	size_t		n = (size_t) s1->buf.dim * s1->buf.dim;
	double	   *m = GramianMatrix(s1);
	bool		bad = false;

	if (s1->buf.dim != s2->buf.dim)
		return AGG_DIM_MISMATCH;
	/* the sum must leave room for one more row */
	if (s2->count >= INT64_MAX - s1->count)
		return AGG_COUNT_OVERFLOW;
	GramianStateFlush(s1);
	RankBufferFold(&s2->buf, GramianBuffer(s2), m);
	for (size_t i = 0; i < n; i++)
	{
		m[i] += GramianMatrix(s2)[i];
		bad |= !isfinite(m[i]);
	}
	s1->count += s2->count;
	return bad ? AGG_VALUE_OVERFLOW : AGG_OK;
}

/* Get the symmetric k x k Gramian of a checked state into m */
void
GramianStateResult(const GramianState *s, double *m)
{
	memcpy(m, GramianMatrix(s), sizeof(double) * s->buf.dim * s->buf.dim);
	RankBufferFold(&s->buf, GramianBuffer(s), m);
	LinalgSymmetrize(s->buf.dim, m);
}

/* ---------------------------------------------------------------------
 * als_solve
 * ---------------------------------------------------------------------
 */

/* Get the byte size of an als_solve state for k and buf_cap rows (SIZE_MAX if absurd) */
size_t
AlsStateSize(int dim, int buf_cap)
{
	size_t		n;

	if (dim < 1 || buf_cap < 1)
		return SIZE_MAX;
	n = SizeMulAdd((size_t) dim, 2 * (size_t) dim, (size_t) dim);
	n = SizeMulAdd(n, (size_t) buf_cap, (size_t) dim);
	return SizeMulAdd(offsetof(AlsState, data), sizeof(double), n);
}

/* Get NULL when state (size bytes) is an als_solve state the kernels may use */
const char *
AlsStateCheck(const void *state, size_t size, int max_dim)
{
	const AlsState *s = state;
	const char *bad = AggHeaderCheck(state, size, ALS_MAGIC, ALS_VERSION);

	if (bad)
		return bad;
	if (size < offsetof(AlsState, data))
		return "The state is shorter than its header.";
	if (!RankBufferValid(&s->buf, ClampMaxDim(max_dim), ALS_MAX_BUFFER))
		return "The row buffer header is inconsistent or has no room for the next row.";
	if (s->count < (int64_t) s->buf.n_pos + s->buf.n_neg || s->count == INT64_MAX)
		return "The row count is inconsistent.";
	if (size != AlsStateSize(s->buf.dim, s->buf.cap))
		return "The header does not match the size of the state.";
	if (!isfinite(s->gramian_weight) || s->gramian_weight < 0.0 ||
		!isfinite(s->l2) || s->l2 < 0.0 || !isfinite(s->conf_sum) || s->conf_sum < 0.0)
		return "The state holds an invalid gramian_weight, l2 or confidence sum.";
	return NULL;
}

/*
 * Get NULL when every value of a checked als_solve state is finite and a
 * state without rows holds no sums; O(k^2 + buffer)
 */
const char *
AlsStateCheckValues(const AlsState *s)
{
	size_t		nk = (size_t) s->buf.dim * s->buf.dim;
	const char *bad;

	if (!RankBufferFinite(&s->buf, AlsBuffer(s)))
		return "The state holds a non-finite value.";
	if ((bad = CheckFinite(s->data, 2 * nk + s->buf.dim)) != NULL)
		return bad;
	if (s->count == 0)
	{
		if (s->conf_sum != 0.0)
			return "The state has no rows but holds sums.";
		return CheckZero(AlsMatrix(s), nk + s->buf.dim);
	}
	return NULL;
}

/* Get the buffer slot for the next pair of confidence c (unscaled vector goes there) */
double *
AlsStateSlot(AlsState *s, double c)
{
	return RankBufferSlot(&s->buf, AlsBuffer(s), c - s->gramian_weight);
}

/*
 * Count the pair of confidence c whose vector was just written to its slot:
 * add it to b, scale it by sqrt(|c - w|) and fold a full buffer.  Returns
 * AGG_VALUE_OVERFLOW when a sum, the scaled row or A became infinite (large
 * finite confidences and vectors can overflow double precision): the state
 * must then not be used.
 */
AggError
AlsStateCommit(AlsState *s, double c)
{
	double		w = c - s->gramian_weight;
	double	   *row = AlsStateSlot(s, c);
	double	   *b = AlsRhs(s);
	double		scale = RankBufferScale(w);
	int			dim = s->buf.dim;
	bool		bad = false;

	for (int i = 0; i < dim; i++)
	{
		b[i] += c * row[i];
		bad |= !isfinite(b[i]);
	}
	s->conf_sum += c;
	s->count++;
	/* c == w: the pair adds to b only; the slot stays free */
	if (scale != 1.0)
		for (int i = 0; i < dim; i++)
		{
			row[i] *= scale;
			bad |= !isfinite(row[i]);
		}
	if (bad || !isfinite(s->conf_sum))
		return AGG_VALUE_OVERFLOW;
	if (RankBufferCommit(&s->buf, w))
	{
		RankBufferFlush(&s->buf, AlsBuffer(s), AlsMatrix(s));
		/* one pass over k x k per flush of many rows */
		if (CheckFinite(AlsMatrix(s), (size_t) dim * dim) != NULL)
			return AGG_VALUE_OVERFLOW;
	}
	return AGG_OK;
}

/* Fold the buffered rows of a state into A */
void
AlsStateFlush(AlsState *s)
{
	RankBufferFlush(&s->buf, AlsBuffer(s), AlsMatrix(s));
}

/* Add the checked state s2 of the same group to s1 (both value-checked) */
AggError
AlsStateCombine(AlsState *s1, const AlsState *s2)
{
	size_t		n = (size_t) s1->buf.dim * s1->buf.dim;
	bool		bad = false;

	if (s1->buf.dim != s2->buf.dim)
		return AGG_DIM_MISMATCH;
	if (s1->gramian_weight != s2->gramian_weight || s1->l2 != s2->l2 ||
		memcmp(AlsGramian(s1), AlsGramian(s2), sizeof(double) * n) != 0)
		return AGG_PARAM_MISMATCH;
	if (s2->count >= INT64_MAX - s1->count)
		return AGG_COUNT_OVERFLOW;
	AlsStateFlush(s1);
	RankBufferFold(&s2->buf, AlsBuffer(s2), AlsMatrix(s1));
	for (size_t i = 0; i < n; i++)
	{
		AlsMatrix(s1)[i] += AlsMatrix(s2)[i];
		bad |= !isfinite(AlsMatrix(s1)[i]);
	}
	for (int i = 0; i < s1->buf.dim; i++)
	{
		AlsRhs(s1)[i] += AlsRhs(s2)[i];
		bad |= !isfinite(AlsRhs(s1)[i]);
	}
	s1->conf_sum += s2->conf_sum;
	s1->count += s2->count;
	return bad || !isfinite(s1->conf_sum) ? AGG_VALUE_OVERFLOW : AGG_OK;
}

/*
 * Solve the normal equations (w G + A + l2 I) x = b of a checked state; m
 * and work are k x k scratch.  Returns LAPACK's info (0 on success).
 */
int
AlsStateSolve(const AlsState *s, double *x, double *m, double *work, int *retries)
{
	int			k = s->buf.dim;
	const double *g = AlsGramian(s);

	/* column-major upper triangle live */
	memcpy(m, AlsMatrix(s), sizeof(double) * k * k);
	RankBufferFold(&s->buf, AlsBuffer(s), m);
	for (int j = 0; j < k; j++)
		for (int i = 0; i <= j; i++)
			m[(size_t) j * k + i] += s->gramian_weight * g[(size_t) j * k + i];
	for (int i = 0; i < k; i++)
		m[(size_t) i * k + i] += s->l2;
	memcpy(x, AlsRhs(s), sizeof(double) * k);
	*retries = 0;
	return LinalgCholeskySolve(k, m, x, 1, work, retries);
}

/*
 * Get the group's share of the observed objective at x,
 * x^T A x - 2 x^T b + sum_j c_j; m (k x k) and ax (k) are scratch
 */
double
AlsStateObjective(const AlsState *s, const double *x, double *m, double *ax)
{
	int			k = s->buf.dim;

	memcpy(m, AlsMatrix(s), sizeof(double) * k * k);
	RankBufferFold(&s->buf, AlsBuffer(s), m);
	LinalgSymmetrize(k, m);
	LinalgDgemv(k, k, 1.0, m, x, 0.0, ax);
	return LinalgDot(k, x, ax) - 2.0 * LinalgDot(k, x, AlsRhs(s)) + s->conf_sum;
}

/* ---------------------------------------------------------------------
 * auc
 * ---------------------------------------------------------------------
 */

/* Get the byte size of an AUC state of capacity entries */
size_t
AucStateSize(int32_t capacity)
{
	if (capacity < 0)
		return SIZE_MAX;
	return SizeMulAdd(offsetof(AucState, entries), sizeof(AucEntry), (size_t) capacity);
}

/*
 * Get NULL when state (size bytes) is an AUC state whose header the kernels
 * may rely on; with deep, also check every entry (finite, counted, sorted
 * prefix, totals), which is O(n) and needed whenever the state did not come
 * from our own transition
 */
const char *
AucStateCheck(const void *state, size_t size, bool deep)
{
	const AucState *s = state;
	const char *bad = AggHeaderCheck(state, size, AUC_MAGIC, AUC_VERSION);
	uint64_t	pos = 0,
				neg = 0;

	if (bad)
		return bad;
	if (size < offsetof(AucState, entries))
		return "The state is shorter than its header.";
	if (s->capacity < 1 || s->capacity > AUC_MAX_ENTRIES || s->nused < 0 ||
		s->nused > s->capacity || s->nsorted < 0 || s->nsorted > s->nused ||
		s->total_pos < 0 || s->total_neg < 0 ||
		s->total_pos == INT64_MAX || s->total_neg == INT64_MAX)
		return "The state header is inconsistent.";
	if (size != AucStateSize(s->capacity))
		return "The header does not match the size of the state.";
	if (!deep)
		return NULL;
	for (int32_t i = 0; i < s->nused; i++)
	{
		const AucEntry *e = &s->entries[i];

		if (!isfinite(e->score) || (e->npos == 0 && e->nneg == 0))
			return "The state holds an invalid entry.";
		if (i > 0 && i < s->nsorted && e->score < s->entries[i - 1].score)
			return "The sorted part of the state is not sorted.";
		pos += e->npos;
		neg += e->nneg;
	}
	if (pos != (uint64_t) s->total_pos || neg != (uint64_t) s->total_neg)
		return "The counts do not match the totals of the state.";
	return NULL;
}

/* Merge adjacent entries of equal score (counts permitting); get the new length */
static int32_t
DedupeAucEntries(AucEntry *e, int32_t n)
{
	int32_t		w = 0;

	if (n == 0)
		return 0;
	for (int32_t r = 1; r < n; r++)
	{
		/* a run of ties past 2^32 rows stays split over adjacent entries */
		if (e[r].score == e[w].score &&
			(uint64_t) e[w].npos + e[r].npos <= UINT32_MAX &&
			(uint64_t) e[w].nneg + e[r].nneg <= UINT32_MAX)
		{
			e[w].npos += e[r].npos;
			e[w].nneg += e[r].nneg;
		}
		else
			e[++w] = e[r];
	}
	return w + 1;
}

/*
 * Sort the unsorted tail of a checked state and merge it into the sorted
 * prefix; scratch holds nused - nsorted entries
 */
void
AucStateCompact(AucState *s, AucEntry *scratch, AucSortFunc sort)
{
	AucEntry   *e = s->entries;
	int32_t		n = s->nsorted;
	int32_t		t = s->nused - n;

	if (t == 0)
		return;
	sort(e + n, (size_t) t);
	t = DedupeAucEntries(e + n, t);
	if (n > 0 && AucScoreCompare(e[n - 1].score, e[n].score) > 0)
	{
		/* merge from the back, so only the tail needs scratch space */
		int32_t		i = n - 1,
					j = t - 1,
					k = n + t - 1;

		memcpy(scratch, e + n, sizeof(AucEntry) * t);
		while (j >= 0)
		{
			if (i >= 0 && AucScoreCompare(e[i].score, scratch[j].score) > 0)
				e[k--] = e[i--];
			else
				e[k--] = scratch[j--];
		}
	}
	s->nused = s->nsorted = DedupeAucEntries(e, n + t);
}

/*
 * Make room for one more entry in a checked state: compact a full one (scratch
 * holds nused - nsorted entries).  Returns 0 when there is room now, else the
 * capacity to move the state into (twice the old, up to AUC_MAX_ENTRIES),
 * or -1 when the state is full at AUC_MAX_ENTRIES.
 */
int32_t
AucStateMakeRoom(AucState *s, AucEntry *scratch, AucSortFunc sort)
{
	if (s->nused < s->capacity)
		return 0;
	AucStateCompact(s, scratch, sort);
	/* grow when compacting freed less than half */
	if (s->nused <= s->capacity / 2 ||
		(s->nused < s->capacity && s->capacity == AUC_MAX_ENTRIES))
		return 0;
	if (s->capacity == AUC_MAX_ENTRIES)
		return -1;
	return (int64_t) s->capacity * 2 > AUC_MAX_ENTRIES ? AUC_MAX_ENTRIES : s->capacity * 2;
}

/*
 * Copy a checked state into grown, AucStateSize(capacity) bytes with the
 * same header, as a state of that capacity (capacity >= s->nused)
 */
void
AucStateGrowInto(AucState *grown, const AucState *s, int32_t capacity)
{
	size_t		keep = AucStateSize(s->nused);

	memcpy((char *) grown + sizeof(int32_t), (const char *) s + sizeof(int32_t),
		   keep - sizeof(int32_t));
	grown->capacity = capacity;
}

/* Append up to n entries of a deep-checked state to s1; returns how many fitted */
int32_t
AucStateAppendEntries(AucState *s, const AucEntry *src, int32_t n)
{
	int32_t		room = s->capacity - s->nused;
	int32_t		chunk = n < room ? n : room;

	memcpy(s->entries + s->nused, src, sizeof(AucEntry) * chunk);
	s->nused += chunk;
	return chunk;
}

/* Append one (score, label) row to a checked state with a free entry */
void
AucStateAppend(AucState *s, double score, bool label)
{
	AucEntry   *e = &s->entries[s->nused++];

	e->score = score;
	e->npos = label ? 1 : 0;
	e->nneg = label ? 0 : 1;
	if (label)
		s->total_pos++;
	else
		s->total_neg++;
}

/* Add the totals of s2 to those of s1 (the entries are appended by the caller) */
AggError
AucStateAddTotals(AucState *s1, const AucState *s2)
{
	if (s2->total_pos >= INT64_MAX - s1->total_pos ||
		s2->total_neg >= INT64_MAX - s1->total_neg)
		return AGG_COUNT_OVERFLOW;
	s1->total_pos += s2->total_pos;
	s1->total_neg += s2->total_neg;
	return AGG_OK;
}

/*
 * Get the exact ROC AUC of a compacted, deep-checked state with both labels:
 * the share of (positive, negative) pairs in the right order, ties counting
 * one half
 */
double
AucStateResult(const AucState *s)
{
	const AucEntry *e = s->entries;
	__int128	num2 = 0;		/* twice the count of correctly ordered pairs */
	int64_t		neg_below = 0;

	for (int32_t i = 0; i < s->nused;)
	{
		double		score = e[i].score;
		int64_t		p = 0,
					q = 0;

		for (; i < s->nused && e[i].score == score; i++)
		{
			p += e[i].npos;
			q += e[i].nneg;
		}
		num2 += (__int128) p * (2 * neg_below + q);
		neg_below += q;
	}
	return (double) num2 / (2.0 * (double) s->total_pos * (double) s->total_neg);
}

/* ---------------------------------------------------------------------
 * log_loss
 * ---------------------------------------------------------------------
 */

/* Get NULL when state (size bytes) is a log-loss state the kernels may use */
const char *
LogLossStateCheck(const void *state, size_t size)
{
	const LogLossState *s = state;
	const char *bad = AggHeaderCheck(state, size, LOGLOSS_MAGIC, LOGLOSS_VERSION);

	if (bad)
		return bad;
	if (size != sizeof(LogLossState))
		return "The header does not match the size of the state.";
	if (s->count < 0 || s->count == INT64_MAX)
		return "The row count is inconsistent.";
	if (!isfinite(s->sum.sum) || !isfinite(s->sum.comp) ||
		!isfinite(CompensatedValue(&s->sum)) || CompensatedValue(&s->sum) < 0.0 ||
		(s->count == 0 && (s->sum.sum != 0.0 || s->sum.comp != 0.0)))
		return "The state holds an invalid loss sum.";
	return NULL;
}

/* Add the loss of one row (p in [0, 1], clipped to [eps, 1 - eps]) to a checked state */
AggError
LogLossStateAdd(LogLossState *s, double p, bool label)
{
	p = p < LOGLOSS_EPS ? LOGLOSS_EPS : p > 1.0 - LOGLOSS_EPS ? 1.0 - LOGLOSS_EPS : p;
	CompensatedAdd(&s->sum, label ? -log(p) : -log1p(-p));
	s->count++;
	return isfinite(CompensatedValue(&s->sum)) ? AGG_OK : AGG_VALUE_OVERFLOW;
}

/* Add the checked state s2 to s1 */
AggError
LogLossStateCombine(LogLossState *s1, const LogLossState *s2)
{
	if (s2->count >= INT64_MAX - s1->count)
		return AGG_COUNT_OVERFLOW;
	CompensatedMerge(&s1->sum, &s2->sum);
	s1->count += s2->count;
	return isfinite(s1->sum.sum) && isfinite(s1->sum.comp) &&
		isfinite(CompensatedValue(&s1->sum)) ? AGG_OK : AGG_VALUE_OVERFLOW;
}

/* Get the mean log loss of a checked state with rows */
double
LogLossStateResult(const LogLossState *s)
{
	double		v = CompensatedValue(&s->sum);

	return (v > 0.0 ? v : 0.0) / (double) s->count;
}

/* ---------------------------------------------------------------------
 * uncertainty_weights
 * ---------------------------------------------------------------------
 */

/* Get the byte size of a multi-task loss state for k tasks (SIZE_MAX if absurd) */
size_t
TaskLossStateSize(int ntasks)
{
	if (ntasks < 0)
		return SIZE_MAX;
	return SizeMulAdd(offsetof(TaskLossState, sums), sizeof(CompensatedSum) + 1,
					  (size_t) ntasks);
}

/* Get NULL when state (size bytes) is a multi-task loss state the kernels may use */
const char *
TaskLossStateCheck(const void *state, size_t size, int max_tasks)
{
	const TaskLossState *s = state;
	const char *bad = AggHeaderCheck(state, size, TASKLOSS_MAGIC, TASKLOSS_VERSION);

	if (bad)
		return bad;
	if (size < offsetof(TaskLossState, sums))
		return "The state is shorter than its header.";
	if (s->ntasks < 1 || s->ntasks > ClampMaxDim(max_tasks))
		return "The state has an invalid number of tasks.";
	if (s->count < 0 || s->count == INT64_MAX)
		return "The row count is inconsistent.";
	if (size != TaskLossStateSize(s->ntasks))
		return "The header does not match the size of the state.";
	for (int i = 0; i < s->ntasks; i++)
	{
		const CompensatedSum *c = &s->sums[i];

		if (!isfinite(c->sum) || !isfinite(c->comp) ||
			!isfinite(CompensatedValue(c)) || CompensatedValue(c) < 0.0 ||
			(s->count == 0 && (c->sum != 0.0 || c->comp != 0.0)))
			return "The state holds an invalid loss sum.";
		if (TaskLossTypes(s)[i] > 1)
			return "The state holds an unknown task type.";
	}
	return NULL;
}

/* Get AGG_OK when every task sum of s is finite, else the first task that is not */
static AggError
TaskLossFinite(const TaskLossState *s, int *bad_task)
{
	for (int i = 0; i < s->ntasks; i++)
		if (!isfinite(s->sums[i].sum) || !isfinite(s->sums[i].comp) ||
			!isfinite(CompensatedValue(&s->sums[i])))
		{
			*bad_task = i;
			return AGG_VALUE_OVERFLOW;
		}
	return AGG_OK;
}

/* Add one row of ntasks finite, non-negative losses to a checked state */
AggError
TaskLossStateAdd(TaskLossState *s, const double *losses, int *bad_task)
{
	for (int i = 0; i < s->ntasks; i++)
		CompensatedAdd(&s->sums[i], losses[i]);
	s->count++;
	return TaskLossFinite(s, bad_task);
}

/* Add the checked state s2 to s1 */
AggError
TaskLossStateCombine(TaskLossState *s1, const TaskLossState *s2, int *bad_task)
{
	if (s1->ntasks != s2->ntasks ||
		memcmp(TaskLossTypes(s1), TaskLossTypes(s2), s1->ntasks) != 0)
		return AGG_TASK_MISMATCH;
	if (s2->count >= INT64_MAX - s1->count)
		return AGG_COUNT_OVERFLOW;
	for (int i = 0; i < s1->ntasks; i++)
		CompensatedMerge(&s1->sums[i], &s2->sums[i]);
	s1->count += s2->count;
	return TaskLossFinite(s1, bad_task);
}

/* Get the per-task mean losses of a checked state with rows */
void
TaskLossStateMeans(const TaskLossState *s, double *means)
{
	for (int i = 0; i < s->ntasks; i++)
	{
		double		v = CompensatedValue(&s->sums[i]);

		means[i] = (v > 0.0 ? v : 0.0) / (double) s->count;
	}
}

/* ---------------------------------------------------------------------
 * predictive_variance
 * ---------------------------------------------------------------------
 */

/* Get NULL when state (size bytes) is a predictive-variance state the kernels may use */
const char *
PredVarStateCheck(const void *state, size_t size)
{
	const PredVarState *s = state;
	const char *bad = AggHeaderCheck(state, size, PREDVAR_MAGIC, PREDVAR_VERSION);

	if (bad)
		return bad;
	if (size != sizeof(PredVarState))
		return "The header does not match the size of the state.";
	if (s->count < 0 || s->count == INT64_MAX)
		return "The sample count is inconsistent.";
	if (!isfinite(s->mean) || !isfinite(s->m2) || !isfinite(s->var_mean) ||
		s->m2 < 0.0 || s->var_mean < 0.0 ||
		(s->count == 0 && (s->mean != 0.0 || s->m2 != 0.0 || s->var_mean != 0.0)))
		return "The state holds an invalid moment.";
	return NULL;
}

/* Get AGG_OK when the moments of s are finite */
static AggError
PredVarFinite(const PredVarState *s)
{
	return isfinite(s->mean) && isfinite(s->m2) && isfinite(s->var_mean) ?
		AGG_OK : AGG_VALUE_OVERFLOW;
}

/* Add one sample (finite mean x, finite variance v >= 0) to a checked state (Welford) */
AggError
PredVarStateAdd(PredVarState *s, double x, double v)
{
	double		delta;

	s->count++;
	delta = x - s->mean;
	s->mean += delta / (double) s->count;
	s->m2 += delta * (x - s->mean);
	s->var_mean += (v - s->var_mean) / (double) s->count;
	return PredVarFinite(s);
}

/* Add the checked state s2 to s1 (Chan et al.'s merge) */
AggError
PredVarStateCombine(PredVarState *s1, const PredVarState *s2)
{
	double		n1,
				n2,
				n,
				delta;

	if (s2->count == 0)
		return AGG_OK;
	if (s2->count >= INT64_MAX - s1->count)
		return AGG_COUNT_OVERFLOW;
	n1 = (double) s1->count;
	n2 = (double) s2->count;
	n = n1 + n2;
	delta = s2->mean - s1->mean;
	s1->mean += delta * (n2 / n);
	s1->m2 += s2->m2 + delta * delta * (n1 * n2 / n);
	s1->var_mean += (s2->var_mean - s1->var_mean) * (n2 / n);
	s1->count += s2->count;
	return PredVarFinite(s1);
}

/* Get {epistemic, aleatoric, total} of a checked state with samples into out[3] */
void
PredVarStateResult(const PredVarState *s, double *out)
{
	out[0] = s->m2 / (double) s->count;
	out[1] = s->var_mean;
	out[2] = out[0] + out[1];
}
