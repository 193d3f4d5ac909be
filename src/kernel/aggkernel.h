/*
 * kernel/aggkernel.h
 *		Layouts, validators and update kernels of every bytea aggregate state
 *		(gramian, als_solve, auc, log_loss, uncertainty_weights,
 *		predictive_variance).
 *
 * A state arrives from outside (a partial state shipped between processes,
 * an INITCOND, a direct call with any bytea), so each state type has one
 * validator that checks every invariant its writers rely on, against the
 * actual byte size, and the SQL support functions call it before any
 * kernel touches the state.  No PostgreSQL in here, so that the validators
 * and kernels can be fuzzed alone (test/fuzz/fuzz_aggstates.c).
 *
 * Validators return NULL for a good state, else the reason (an error
 * detail).  Kernels that can fail return an AggError.
 */
#ifndef AGGKERNEL_H
#define AGGKERNEL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/rankbuffer.h"

/* Ways a kernel can refuse an update of valid states */
typedef enum AggError
{
	AGG_OK = 0,
	AGG_DIM_MISMATCH,			/* the states have different dimensions */
	AGG_PARAM_MISMATCH,			/* gramian_weight, l2 or G differ (als_solve) */
	AGG_TASK_MISMATCH,			/* task counts or types differ */
	AGG_COUNT_OVERFLOW,			/* a row count would pass 2^63 - 1 */
	AGG_VALUE_OVERFLOW			/* a sum would become infinite */
} AggError;

/* Neumaier-compensated sum: value = sum + comp */
typedef struct CompensatedSum
{
	double		sum;
	double		comp;
} CompensatedSum;

/* Add x to a compensated sum */
static inline void
CompensatedAdd(CompensatedSum *acc, double x)
{
	double		t = acc->sum + x;

	if (fabs(acc->sum) >= fabs(x))
		acc->comp += (acc->sum - t) + x;
	else
		acc->comp += (x - t) + acc->sum;
	acc->sum = t;
}

/* Add a second compensated sum into the first */
static inline void
CompensatedMerge(CompensatedSum *acc, const CompensatedSum *other)
{
	CompensatedAdd(acc, other->sum);
	acc->comp += other->comp;
}

/* Get the value of a compensated sum */
static inline double
CompensatedValue(const CompensatedSum *acc)
{
	return acc->sum + acc->comp;
}

/*
 * Every state starts with this header (the first field is PostgreSQL's
 * varlena length word, which only the SQL layer reads or writes).
 */
typedef struct RecsysStateHeader
{
	int32_t		vl_len_;		/* varlena header (do not touch directly) */
	uint32_t	magic;			/* one per aggregate */
	uint16_t	version;
	uint16_t	flags;			/* aggregate-specific */
} RecsysStateHeader;

/*
 * The largest k (or task count) a validator accepts whatever limit its
 * caller passes: a k x k float64 matrix then fits in 512 MB.  Callers pass
 * their own limit (recsys.max_dim), which may only be lower.
 */
#define AGG_MAX_DIM 8192

extern const char *AggHeaderCheck(const void *state, size_t size, uint32_t magic,
								  uint16_t version);

/* ---------------- gramian ---------------- */

#define GRAMIAN_MAGIC 0x52534730	/* "RSG0" */
#define GRAMIAN_VERSION 1
#define GRAMIAN_MAX_BUFFER 4096

typedef struct GramianState
{
	RecsysStateHeader hdr;		/* GRAMIAN_MAGIC, GRAMIAN_VERSION */
	RankBuffer	buf;			/* k, buffer length, buffered rows */
	int64_t		count;			/* rows aggregated, buffered ones included */
	double		data[];			/* k x k sum, then buf_cap x k rows */
} GramianState;

#define GramianMatrix(s) ((s)->data)
#define GramianBuffer(s) ((s)->data + (size_t) (s)->buf.dim * (s)->buf.dim)

extern size_t GramianStateSize(int dim, int buf_cap);
extern void GramianStateInit(GramianState *s, int dim, int buf_cap);
extern const char *GramianStateCheck(const void *state, size_t size, int max_dim);
extern const char *GramianStateCheckValues(const GramianState *s);
extern double *GramianStateSlot(GramianState *s, double w);
extern void GramianStateCommit(GramianState *s, double w);
extern AggError GramianStateCombine(GramianState *s1, const GramianState *s2);
extern void GramianStateFlush(GramianState *s);
extern void GramianStateResult(const GramianState *s, double *m);

/* ---------------- als_solve ---------------- */

#define ALS_MAGIC 0x52534130	/* "RSA0" */
#define ALS_VERSION 1
#define ALS_MAX_BUFFER 4096

typedef struct AlsState
{
	RecsysStateHeader hdr;		/* ALS_MAGIC, ALS_VERSION */
	RankBuffer	buf;			/* k, buffer length, rows of c - w > 0 / < 0 */
	int64_t		count;			/* rows aggregated, buffered ones included */
	double		gramian_weight; /* w */
	double		l2;				/* lambda of this entity */
	double		conf_sum;		/* sum_j c_j */
	double		data[];			/* G, A, b, buffer */
} AlsState;

#define AlsGramian(s) ((s)->data)
#define AlsMatrix(s) ((s)->data + (size_t) (s)->buf.dim * (s)->buf.dim)
#define AlsRhs(s) ((s)->data + 2 * (size_t) (s)->buf.dim * (s)->buf.dim)
#define AlsBuffer(s) (AlsRhs(s) + (s)->buf.dim)

extern size_t AlsStateSize(int dim, int buf_cap);
extern const char *AlsStateCheck(const void *state, size_t size, int max_dim);
extern const char *AlsStateCheckValues(const AlsState *s);
extern double *AlsStateSlot(AlsState *s, double c);
extern AggError AlsStateCommit(AlsState *s, double c);
extern AggError AlsStateCombine(AlsState *s1, const AlsState *s2);
extern void AlsStateFlush(AlsState *s);
extern int	AlsStateSolve(const AlsState *s, double *x, double *m, double *work,
						  int *retries);
extern double AlsStateObjective(const AlsState *s, const double *x, double *m, double *ax);

/* ---------------- auc ---------------- */

#define AUC_MAGIC 0x52534155	/* "RSAU" */
#define AUC_VERSION 1
#define AUC_INITIAL_ENTRIES 64

typedef struct AucEntry
{
	double		score;
	uint32_t	npos;			/* rows with this score labelled true */
	uint32_t	nneg;			/* rows with this score labelled false */
} AucEntry;

typedef struct AucState
{
	RecsysStateHeader hdr;		/* AUC_MAGIC, AUC_VERSION */
	int32_t		capacity;		/* entries the state holds */
	int32_t		nsorted;		/* entries[0..nsorted) are sorted by score */
	int32_t		nused;			/* entries in use; the rest is free */
	int32_t		reserved;
	int64_t		total_pos;		/* rows labelled true */
	int64_t		total_neg;		/* rows labelled false */
	AucEntry	entries[];
} AucState;

/* entries of a state of at most 1 GB - 1 (PostgreSQL's largest allocation) */
#define AUC_MAX_ENTRIES ((int32_t) ((0x3fffffff - offsetof(AucState, entries)) / sizeof(AucEntry)))

/* Compare two scores in a total order (NaN last), for sorting */
static inline int
AucScoreCompare(double a, double b)
{
	if (isnan(a) || isnan(b))
		return (int) isnan(a) - (int) isnan(b);
	return (a > b) - (a < b);
}

/* sorts n entries by score (AucScoreCompare order) */
typedef void (*AucSortFunc) (AucEntry *e, size_t n);

extern size_t AucStateSize(int32_t capacity);
extern const char *AucStateCheck(const void *state, size_t size, bool deep);
extern void AucStateCompact(AucState *s, AucEntry *scratch, AucSortFunc sort);
extern int32_t AucStateMakeRoom(AucState *s, AucEntry *scratch, AucSortFunc sort);
extern void AucStateGrowInto(AucState *grown, const AucState *s, int32_t capacity);
extern void AucStateAppend(AucState *s, double score, bool label);
extern int32_t AucStateAppendEntries(AucState *s, const AucEntry *src, int32_t n);
extern AggError AucStateAddTotals(AucState *s1, const AucState *s2);
extern double AucStateResult(const AucState *s);

/* ---------------- log_loss ---------------- */

#define LOGLOSS_MAGIC 0x52534C4C	/* "RSLL" */
#define LOGLOSS_VERSION 1
#define LOGLOSS_EPS 1e-15

typedef struct LogLossState
{
	RecsysStateHeader hdr;		/* LOGLOSS_MAGIC, LOGLOSS_VERSION */
	int64_t		count;			/* rows */
	CompensatedSum sum;			/* sum of per-row losses */
} LogLossState;

extern const char *LogLossStateCheck(const void *state, size_t size);
extern AggError LogLossStateAdd(LogLossState *s, double p, bool label);
extern AggError LogLossStateCombine(LogLossState *s1, const LogLossState *s2);
extern double LogLossStateResult(const LogLossState *s);

/* ---------------- uncertainty_weights ---------------- */

#define TASKLOSS_MAGIC 0x5253544C	/* "RSTL" */
#define TASKLOSS_VERSION 1

typedef struct TaskLossState
{
	RecsysStateHeader hdr;		/* TASKLOSS_MAGIC, TASKLOSS_VERSION */
	int32_t		ntasks;			/* k */
	int32_t		reserved;
	int64_t		count;			/* rows aggregated */
	CompensatedSum sums[];		/* k sums, then k task types */
} TaskLossState;

#define TaskLossTypes(s) ((uint8_t *) ((s)->sums + (s)->ntasks))

extern size_t TaskLossStateSize(int ntasks);
extern const char *TaskLossStateCheck(const void *state, size_t size, int max_tasks);
extern AggError TaskLossStateAdd(TaskLossState *s, const double *losses, int *bad_task);
extern AggError TaskLossStateCombine(TaskLossState *s1, const TaskLossState *s2,
									 int *bad_task);
extern void TaskLossStateMeans(const TaskLossState *s, double *means);

/* ---------------- predictive_variance ---------------- */

#define PREDVAR_MAGIC 0x52535056	/* "RSPV" */
#define PREDVAR_VERSION 1

typedef struct PredVarState
{
	RecsysStateHeader hdr;		/* PREDVAR_MAGIC, PREDVAR_VERSION */
	int64_t		count;			/* samples */
	double		mean;			/* running mean of the predicted means */
	double		m2;				/* sum of squared deviations of the means */
	double		var_mean;		/* running mean of the predicted variances */
} PredVarState;

extern const char *PredVarStateCheck(const void *state, size_t size);
extern AggError PredVarStateAdd(PredVarState *s, double x, double v);
extern AggError PredVarStateCombine(PredVarState *s1, const PredVarState *s2);
extern void PredVarStateResult(const PredVarState *s, double *out);

#endif
