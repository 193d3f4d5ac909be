/*
 * mmoe/topk.c
 *		recsys.predict_top_k: an aggregate that scores each group's candidate
 *		rows with a stored MMoE model and keeps the best k items.
 *
 * The transition function only buffers rows (features, categorical ids,
 * item id) in the bytea state; every PREDICT_TOP_K_BLOCK rows the buffer is
 * scored with one batched forward pass (sgemm per layer) and the scores go
 * into a bounded top-k list (src/topk.h: higher score first, ties to the
 * smaller item id).  The score of a row is the task_weights-weighted sum of
 * the task outputs (probabilities for binary tasks, values for regression).
 * Rows buffered when the final or combine function runs are scored there,
 * so a state may carry up to one block of unscored rows between processes.
 *
 * The kept list starts with room for a few items and doubles (up to k) when
 * a scoring could fill it, so a group of n rows holds at most about 2n kept
 * items, however large k is.
 *
 * The state records the model name and the version resolved when the group
 * began, and every later scoring uses that version, so that the workers and
 * the leader of a parallel plan score with one model.
 *
 * State layout (after RecsysStateHeader and PredictTopKState, 8-aligned):
 *	float	task_weights[ntasks]
 *	TopKItem kept[kept_capacity]		heap order (src/topk.h)
 *	int64	item_ids[capacity]
 *	float	features[capacity * input_dim]	dense features, then pooled bags
 *										(input_dim is StateWidth of the model)
 *	int32	categorical[capacity * ncategorical]
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "store/aggstate.h"
#include "store/arrays.h"
#include "mmoe/mmoe.h"
#include "store/model_store.h"
#include "settings.h"
#include "kernel/topk.h"

#define PREDICT_TOP_K_MAGIC 0x504b544d	/* "MTKP" */
#define PREDICT_TOP_K_VERSION 2
#define PREDICT_TOP_K_WHAT "predict_top_k"

/* Rows buffered before a block is scored (the state grows to this) */
#define PREDICT_TOP_K_BLOCK 128
/* Rows of the first buffer and items of the first kept list: small groups keep small states */
#define PREDICT_TOP_K_FIRST_CAPACITY 8
/* Largest k: the kept list is 16 bytes an item */
#define PREDICT_TOP_K_MAX_K 100000

/* predict_top_k_step(state, model, features, [categorical,] item_id, k, task_weights) */
#define STEP_ARG_STATE 0
#define STEP_ARG_MODEL 1
#define STEP_ARG_FEATURES 2
typedef struct StepArgs
{
	int			categorical;	/* -1 when the form has none */
	int			item_id;
	int			k;
	int			task_weights;
	bool		row;			/* "features" is a row, encoded by the model's spec */
} StepArgs;
static const StepArgs StepPlain = {-1, 3, 4, 5, false};
static const StepArgs StepCategorical = {3, 4, 5, 6, false};
static const StepArgs StepRow = {-1, 3, 4, 5, true};

/*
 * Floats a buffered row holds: the dense features, then the pooled
 * embedding bags of a model that reads rows (at least 1, so that a model
 * whose inputs are all categorical still has a valid state)
 */
static int
StateWidth(const MmoeModel *m)
{
	return Max(1, m->input_dim + (m->in_width - m->bag_offset));
}

typedef struct PredictTopKState
{
	RecsysStateHeader hdr;
	int32		k;
	int32		ntasks;
	int32		input_dim;
	int32		ncategorical;
	int32		model_version;	/* resolved when the group began */
	int32		capacity;		/* rows the buffer holds */
	int32		nbuf;			/* rows buffered, not yet scored */
	int32		nkept;			/* items in the kept list */
	int32		namelen;
	char		name[MODEL_NAME_MAX + 1];	/* NUL-terminated */
	int32		kept_capacity;	/* items the kept list holds, 1 to k */
} PredictTopKState;

/* Where the arrays of a state start */
typedef struct StateParts
{
	float	   *weights;
	TopKItem   *kept;
	int64	   *item_ids;
	float	   *features;
	int32	   *categorical;
} StateParts;

/* Round n up to a multiple of 8 */
#define ALIGN8(n) (((n) + 7) & ~(Size) 7)

/* Get the size of a state with these dimensions, and the offsets of its arrays */
static Size
StateLayout(int kept_capacity, int ntasks, int input_dim, int ncategorical, int capacity,
			Size *offsets)
{
	Size		off = ALIGN8(sizeof(PredictTopKState));

	offsets[0] = off;
	off = ALIGN8(off + sizeof(float) * ntasks);
	offsets[1] = off;
	off = ALIGN8(off + sizeof(TopKItem) * (Size) kept_capacity);
	offsets[2] = off;
	off = ALIGN8(off + sizeof(int64) * (Size) capacity);
	offsets[3] = off;
	off = ALIGN8(off + sizeof(float) * (Size) capacity * input_dim);
	offsets[4] = off;
	off = ALIGN8(off + sizeof(int32) * (Size) capacity * ncategorical);
	return off;
}

/* Get pointers to the arrays of a state whose header is known good */
static StateParts
Parts(PredictTopKState *st)
{
	Size		off[5];
	StateParts p;

	StateLayout(st->kept_capacity, st->ntasks, st->input_dim, st->ncategorical, st->capacity, off);
	p.weights = (float *) ((char *) st + off[0]);
	p.kept = (TopKItem *) ((char *) st + off[1]);
	p.item_ids = (int64 *) ((char *) st + off[2]);
	p.features = (float *) ((char *) st + off[3]);
	p.categorical = (int32 *) ((char *) st + off[4]);
	return p;
}

/*
 * The validator of predict_top_k states (StateType.check): NULL when the
 * size bytes at state hold a valid state, else the reason.  Always the
 * fixed-size part and that the size matches the dimensions (every call
 * checks these before it trusts an offset); deep, for a state read from
 * outside before it is scored or merged, also finite weights, a valid kept
 * heap, finite buffered features and non-negative categorical ids
 * (vocabularies are checked against the model when the rows are scored).
 */
static const char *
CheckPredictTopKState(const void *state, size_t size, bool deep)
{
	PredictTopKState *st = (PredictTopKState *) state;
	Size		off[5];
	StateParts	p;
	TopK		t;

	if (size < sizeof(PredictTopKState))
		return "The state is shorter than its header.";
	if (st->k < 1 || st->k > PREDICT_TOP_K_MAX_K ||
		st->ntasks < 1 || st->ntasks > MMOE_MAX_TASKS ||
		st->input_dim < 1 || st->input_dim > RECSYS_MAX_DIM_LIMIT ||
		st->ncategorical < 0 || st->ncategorical > MMOE_MAX_CATEGORICAL ||
		st->model_version < 1 ||
		st->capacity < 1 || st->capacity > PREDICT_TOP_K_BLOCK ||
		st->nbuf < 0 || st->nbuf > st->capacity ||
		st->kept_capacity < 1 || st->kept_capacity > st->k ||
		st->nkept < 0 || st->nkept > st->kept_capacity)
		return "A count is out of range.";
	if (st->namelen < 1 || st->namelen > MODEL_NAME_MAX ||
		st->name[st->namelen] != '\0' || strlen(st->name) != (size_t) st->namelen)
		return "The model name is malformed.";
	if (size != StateLayout(st->kept_capacity, st->ntasks, st->input_dim, st->ncategorical,
							st->capacity, off))
		return "The size does not match the dimensions.";
	if (!deep)
		return NULL;
	p = Parts(st);
	for (int i = 0; i < st->ntasks; i++)
		if (!isfinite(p.weights[i]))
			return "A task weight is not finite.";
	t.k = st->k;
	t.n = st->nkept;
	t.items = p.kept;
	if (!TopKValid(&t))
		return "The kept items are not a valid top-k heap.";
	for (Size i = 0; i < (Size) st->nbuf * st->input_dim; i++)
		if (!isfinite(p.features[i]))
			return "A buffered feature is not finite.";
	for (Size i = 0; i < (Size) st->nbuf * st->ncategorical; i++)
		if (p.categorical[i] < 0)
			return "A buffered categorical id is negative.";
	return NULL;
}

static const StateType PredictTopKStateType = {
	PREDICT_TOP_K_WHAT, PREDICT_TOP_K_MAGIC, PREDICT_TOP_K_VERSION, CheckPredictTopKState
};

/*
 * Get argument argno as a predict_top_k state: deep for a state read from
 * outside before it is scored or merged (combine, final), else the header
 */
static PredictTopKState *
GetState(FunctionCallInfo fcinfo, int argno, bool deep)
{
	return (PredictTopKState *) StateGetChecked(fcinfo, argno, &PredictTopKStateType, deep);
}

/*
 * Get the model of a state at the version it was started with, checking
 * that it fits.  The transition function asks for the newest version (as
 * when it started the group, so that one call site makes one request per
 * statement) and checks that it is still the state's; the final and combine
 * functions ask for the state's version.
 */
static const MmoeModel *
StateModel(FunctionCallInfo fcinfo, const PredictTopKState *st, bool newest,
		   MmoeScratch **scratch, uint64 *load_id)
{
	text	   *name = cstring_to_text(st->name);
	int			found;
	const MmoeModel *m = MmoeAcquire(fcinfo, name, newest ? 0 : st->model_version,
									 PREDICT_TOP_K_BLOCK, scratch, load_id, &found);

	if (found != st->model_version)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model \"%s\" is at version %d, but the predict_top_k state was started with version %d",
						st->name, found, st->model_version)));
	if (StateWidth(m) != st->input_dim || m->ntasks != st->ntasks ||
		m->ncategorical != st->ncategorical)
		StateInvalid(PREDICT_TOP_K_WHAT, "The state does not fit the model it names.");
	pfree(name);
	return m;
}

/*
 * Score rows [0, n) of a buffer and push them into t: one forward pass per
 * chunk of the scratch's rows
 */
static void
ScoreRows(const MmoeModel *m, MmoeScratch *s, const float *weights, const int64 *item_ids,
		  const float *features, const int32 *categorical, int n, TopK *t)
{
	float		out[PREDICT_TOP_K_BLOCK * MMOE_MAX_TASKS];
	float		scores[PREDICT_TOP_K_BLOCK];
	int			width = StateWidth(m);

	if (m->context_dim > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("predict_top_k does not take a context, but the model has a latent cross"),
				 errhint("Score the rows with recsys.predict(..., context => ...) and rank them in SQL.")));
	for (int first = 0, rows; first < n; first += rows)
	{
		rows = Min(n - first, Min(s->maxrows, PREDICT_TOP_K_BLOCK));

		for (int r = 0; r < rows; r++)
		{
			const float *f = features + (size_t) (first + r) * width;

			memcpy(s->x + (size_t) r * m->in_width, f, sizeof(float) * m->input_dim);
			memcpy(s->x + (size_t) r * m->in_width + m->bag_offset, f + m->input_dim,
				   sizeof(float) * (m->in_width - m->bag_offset));
			if (m->ncategorical > 0)
				MmoeSetIds(m, s, r, categorical + (size_t) (first + r) * m->ncategorical);
			s->display_position[r] = -1;
		}
		MmoeForward(m, s, rows, NULL, out);
		for (int r = 0; r < rows; r++)
		{
			double		score = 0.0;

			for (int k = 0; k < m->ntasks; k++)
				score += (double) weights[k] * out[(size_t) r * m->ntasks + k];
			scores[r] = (float) score;
		}
		TopKPushBlock(t, item_ids + first, scores, rows);
	}
}

/*
 * Get a copy of a state (in the current memory context) whose buffer holds
 * capacity rows and whose kept list holds kept_capacity items
 */
static PredictTopKState *
Resize(PredictTopKState *st, int capacity, int kept_capacity)
{
	Size		off[5];
	PredictTopKState *big;
	StateParts from = Parts(st);
	StateParts to;

	big = (PredictTopKState *) StateAlloc(StateLayout(kept_capacity, st->ntasks, st->input_dim,
													  st->ncategorical, capacity, off),
										  PREDICT_TOP_K_MAGIC, PREDICT_TOP_K_VERSION,
										  PREDICT_TOP_K_WHAT);
	memcpy((char *) big + sizeof(RecsysStateHeader), (char *) st + sizeof(RecsysStateHeader),
		   sizeof(PredictTopKState) - sizeof(RecsysStateHeader));
	big->capacity = capacity;
	big->kept_capacity = kept_capacity;
	to = Parts(big);
	memcpy(to.weights, from.weights, sizeof(float) * st->ntasks);
	memcpy(to.kept, from.kept, sizeof(TopKItem) * st->nkept);
	memcpy(to.item_ids, from.item_ids, sizeof(int64) * st->nbuf);
	memcpy(to.features, from.features, sizeof(float) * st->nbuf * st->input_dim);
	memcpy(to.categorical, from.categorical, sizeof(int32) * st->nbuf * st->ncategorical);
	return big;
}

/*
 * Get the state with room in its kept list for items more items (as many
 * as k allows): the same state when it has that, else a copy whose kept
 * list doubled until it does (so a group pays for what it keeps, not for k)
 */
static PredictTopKState *
ReserveKept(PredictTopKState *st, int64 items)
{
	int64		need = Min((int64) st->k, (int64) st->nkept + items);
	int64		cap = st->kept_capacity;

	if (need <= cap)
		return st;
	while (cap < need)
		cap *= 2;
	return Resize(st, st->capacity, (int) Min(cap, (int64) st->k));
}

/*
 * Score the buffered rows of a state into its kept list and empty the
 * buffer; returns the state, a larger copy when the kept list had to grow
 */
static PredictTopKState *
Flush(FunctionCallInfo fcinfo, PredictTopKState *st, bool newest)
{
	StateParts p;
	TopK		t;
	MmoeScratch *s;
	const MmoeModel *m;

	if (st->nbuf == 0)
		return st;
	m = StateModel(fcinfo, st, newest, &s, NULL);
	st = ReserveKept(st, st->nbuf);
	p = Parts(st);
	t.k = st->k;
	t.n = st->nkept;
	t.items = p.kept;
	ScoreRows(m, s, p.weights, p.item_ids, p.features, p.categorical, st->nbuf, &t);
	st->nkept = t.n;
	st->nbuf = 0;
	return st;
}

/* Get the task weights argument as floats, checked against the model's tasks */
static void
ReadWeights(ArrayType *a, int ntasks, float *out)
{
	int			n = VectorDimOf(a, "task_weights");

	if (n != ntasks)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("task_weights has %d elements, but the model has %d task(s)", n, ntasks)));
	VectorToFloats(a, out);
}

/* Start a state for a group: resolve the model, check k and the weights */
static PredictTopKState *
NewState(FunctionCallInfo fcinfo, const StepArgs *args, text *model)
{
	int			k = PG_GETARG_INT32(args->k);
	int			version;
	MmoeScratch *s;
	const MmoeModel *m;
	PredictTopKState *st;
	Size		off[5];
	int			namelen = VARSIZE_ANY_EXHDR(model);

	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be at least 1")));
	if (k > PREDICT_TOP_K_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("k must be at most %d", PREDICT_TOP_K_MAX_K)));
	m = MmoeAcquire(fcinfo, model, 0, PREDICT_TOP_K_BLOCK, &s, NULL, &version);
	if (args->row)
		MmoeRequireFeatures(m);
	else
		MmoeRejectBags(m);
	if (args->categorical < 0 && m->ncategorical > 0 && !args->row)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the model has %d categorical feature(s), so categorical must not be null",
						m->ncategorical)));
	if (m->context_dim > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("predict_top_k does not take a context, but the model has a latent cross"),
				 errhint("Score the rows with recsys.predict(..., context => ...) and rank them in SQL.")));
	st = (PredictTopKState *) StateAlloc(StateLayout(Min(k, PREDICT_TOP_K_FIRST_CAPACITY), m->ntasks,
													 StateWidth(m), m->ncategorical,
													 PREDICT_TOP_K_FIRST_CAPACITY, off),
										 PREDICT_TOP_K_MAGIC, PREDICT_TOP_K_VERSION,
										 PREDICT_TOP_K_WHAT);
	st->k = k;
	st->ntasks = m->ntasks;
	st->input_dim = StateWidth(m);
	st->ncategorical = m->ncategorical;
	st->model_version = version;
	st->capacity = PREDICT_TOP_K_FIRST_CAPACITY;
	st->kept_capacity = Min(k, PREDICT_TOP_K_FIRST_CAPACITY);
	st->namelen = namelen;
	memcpy(st->name, VARDATA_ANY(model), namelen);
	ReadWeights(PG_GETARG_ARRAYTYPE_P(args->task_weights), m->ntasks, Parts(st).weights);
	return st;
}

/* Raise the error for an argument that must be the same in every row of a group */
static void
NotConstant(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s must be the same in every row of a group", what)));
}

/* Add one row to a group: the transition function of both forms */
static Datum
Step(FunctionCallInfo fcinfo, const StepArgs *args)
{
	PredictTopKState *st = NULL;
	StateParts p;
	text	   *model;
	float		weights[MMOE_MAX_TASKS];
	int			n;

	if (!PG_ARGISNULL(STEP_ARG_STATE))
		st = GetState(fcinfo, STEP_ARG_STATE, false);
	if (PG_ARGISNULL(STEP_ARG_MODEL) || PG_ARGISNULL(args->k) || PG_ARGISNULL(args->task_weights))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model, k and task_weights must not be null")));
	/* a row without features or item id cannot be ranked: skip it, as aggregates skip NULLs */
	if (PG_ARGISNULL(STEP_ARG_FEATURES) || PG_ARGISNULL(args->item_id))
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	model = PG_GETARG_TEXT_PP(STEP_ARG_MODEL);
	if (st == NULL)
		st = NewState(fcinfo, args, model);
	else
	{
		st = (PredictTopKState *) StateGetWritable(fcinfo, STEP_ARG_STATE, &st->hdr);
		if (VARSIZE_ANY_EXHDR(model) != st->namelen ||
			memcmp(VARDATA_ANY(model), st->name, st->namelen) != 0)
			NotConstant("model");
		if (PG_GETARG_INT32(args->k) != st->k)
			NotConstant("k");
		ReadWeights(PG_GETARG_ARRAYTYPE_P(args->task_weights), st->ntasks, weights);
		if (memcmp(weights, Parts(st).weights, sizeof(float) * st->ntasks) != 0)
			NotConstant("task_weights");
	}
	if (st->nbuf == st->capacity)
	{
		if (st->capacity < PREDICT_TOP_K_BLOCK)
			st = Resize(st, Min(st->capacity * 2, PREDICT_TOP_K_BLOCK), st->kept_capacity);
		else
			st = Flush(fcinfo, st, true);
	}

	p = Parts(st);
	if (args->row)
	{
		MmoeScratch *s;
		uint64		load_id;
		const MmoeModel *m = StateModel(fcinfo, st, true, &s, &load_id);
		float	   *f = p.features + (size_t) st->nbuf * st->input_dim;

		memset(f, 0, sizeof(float) * st->input_dim);
		MmoeEncodeRow(m, load_id, MmoeCallRowCache(fcinfo), fcinfo->flinfo->fn_mcxt,
					  PG_GETARG_HEAPTUPLEHEADER(STEP_ARG_FEATURES), f,
					  p.categorical + (size_t) st->nbuf * st->ncategorical, f + m->input_dim);
		p.item_ids[st->nbuf] = PG_GETARG_INT64(args->item_id);
		st->nbuf++;
		PG_RETURN_POINTER(st);
	}
	n = VectorDimOf(PG_GETARG_ARRAYTYPE_P(STEP_ARG_FEATURES), "features");
	if (n != st->input_dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("features have %d elements, but the model takes %d", n, st->input_dim)));
	VectorToFloats(PG_GETARG_ARRAYTYPE_P(STEP_ARG_FEATURES),
				   p.features + (size_t) st->nbuf * st->input_dim);
	if (args->categorical >= 0)
	{
		int32	   *ids;

		if (PG_ARGISNULL(args->categorical))
		{
			if (st->ncategorical > 0)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("the model has %d categorical feature(s), so categorical must not be null",
								st->ncategorical)));
		}
		else
		{
			if (st->ncategorical == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the model has no categorical features, so categorical must be null")));
			ids = IntVectorGet(PG_GETARG_ARRAYTYPE_P(args->categorical), "categorical", &n);
			if (n != st->ncategorical)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("categorical has %d ids, but the model has %d categorical feature(s)",
								n, st->ncategorical)));
			for (int c = 0; c < n; c++)
				if (ids[c] < 0)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_EXCEPTION),
							 errmsg("categorical id %d is negative", ids[c])));
			memcpy(p.categorical + (size_t) st->nbuf * st->ncategorical, ids, sizeof(int32) * n);
			pfree(ids);
		}
	}
	p.item_ids[st->nbuf] = PG_GETARG_INT64(args->item_id);
	st->nbuf++;
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(mmoe_predict_top_k_step);
/* Transition of predict_top_k(model, features, item_id, k, task_weights) */
Datum
mmoe_predict_top_k_step(PG_FUNCTION_ARGS)
{
	return Step(fcinfo, &StepPlain);
}

PG_FUNCTION_INFO_V1(mmoe_predict_top_k_step_categorical);
/* Transition of predict_top_k(model, features, categorical, item_id, k, task_weights) */
Datum
mmoe_predict_top_k_step_categorical(PG_FUNCTION_ARGS)
{
	return Step(fcinfo, &StepCategorical);
}

PG_FUNCTION_INFO_V1(mmoe_predict_top_k_step_row);
/* Transition of predict_top_k(model, candidate record, item_id, k, task_weights) */
Datum
mmoe_predict_top_k_step_row(PG_FUNCTION_ARGS)
{
	return Step(fcinfo, &StepRow);
}

PG_FUNCTION_INFO_V1(mmoe_predict_top_k_combine);
/*
 * Merge two partial states (parallel workers, Citus shards): score both
 * buffers, then push the second kept list into the first
 */
Datum
mmoe_predict_top_k_combine(PG_FUNCTION_ARGS)
{
	PredictTopKState *a = PG_ARGISNULL(0) ? NULL : GetState(fcinfo, 0, true);
	PredictTopKState *b = PG_ARGISNULL(1) ? NULL : GetState(fcinfo, 1, true);
	Datum		result;
	StateParts pa;
	StateParts pb;
	TopK		t;
	MmoeScratch *s;
	const MmoeModel *m;

	if (StateCombineTrivial(fcinfo, a ? &a->hdr : NULL, b ? &b->hdr : NULL, &result))
		return result;
	if (a->namelen != b->namelen || strcmp(a->name, b->name) != 0 ||
		a->model_version != b->model_version || a->k != b->k || a->ntasks != b->ntasks ||
		a->input_dim != b->input_dim || a->ncategorical != b->ncategorical ||
		memcmp(Parts(a).weights, Parts(b).weights, sizeof(float) * a->ntasks) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot combine predict_top_k states of different models, versions, k or task_weights")));
	a = (PredictTopKState *) StateGetWritable(fcinfo, 0, &a->hdr);
	a = Flush(fcinfo, a, false);
	a = ReserveKept(a, (int64) b->nbuf + b->nkept);
	pa = Parts(a);
	pb = Parts(b);
	t.k = a->k;
	t.n = a->nkept;
	t.items = pa.kept;
	if (b->nbuf > 0)
	{
		m = StateModel(fcinfo, b, false, &s, NULL);
		ScoreRows(m, s, pb.weights, pb.item_ids, pb.features, pb.categorical, b->nbuf, &t);
	}
	for (int i = 0; i < b->nkept; i++)
		TopKPush(&t, pb.kept[i].id, pb.kept[i].score);
	a->nkept = t.n;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(mmoe_predict_top_k_final);
/* Get a group's best k items, best first, as recsys.ranked_item[] */
Datum
mmoe_predict_top_k_final(PG_FUNCTION_ARGS)
{
	PredictTopKState *st;
	StateParts p;
	TopK		t;
	TopKItem   *items;
	/* the declared result type: no call expression exists under Citus's coord_combine_agg */
	Oid			array_type = get_func_rettype(fcinfo->flinfo->fn_oid);
	Oid			item_type;
	TupleDesc	desc;
	Datum	   *elems;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = GetState(fcinfo, 0, true);
	item_type = get_element_type(array_type);
	if (!OidIsValid(item_type))
		elog(ERROR, "predict_top_k_final must return an array of recsys.ranked_item");
	desc = lookup_rowtype_tupdesc_copy(item_type, -1);
	if (desc->natts != 2 || TupleDescAttr(desc, 0)->atttypid != INT8OID ||
		TupleDescAttr(desc, 1)->atttypid != FLOAT4OID)
		elog(ERROR, "recsys.ranked_item must be (item_id bigint, score real)");

	/* the final function must leave the state as it is: work on a copy of the list */
	p = Parts(st);
	/* room for every item the list can end with: the kept ones and the buffered rows */
	items = palloc(sizeof(TopKItem) * Max(Min(st->k, st->nkept + st->nbuf), 1));
	memcpy(items, p.kept, sizeof(TopKItem) * st->nkept);
	t.k = st->k;
	t.n = st->nkept;
	t.items = items;
	if (st->nbuf > 0)
	{
		MmoeScratch *s;
		const MmoeModel *m = StateModel(fcinfo, st, false, &s, NULL);

		ScoreRows(m, s, p.weights, p.item_ids, p.features, p.categorical, st->nbuf, &t);
	}
	n = TopKSorted(&t);
	elems = palloc(sizeof(Datum) * Max(n, 1));
	desc = BlessTupleDesc(desc);
	for (int i = 0; i < n; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int64GetDatum(items[i].id);
		values[1] = Float4GetDatum(items[i].score);
		elems[i] = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
	}
	get_typlenbyvalalign(item_type, &typlen, &typbyval, &typalign);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, item_type, typlen, typbyval, typalign));
}
