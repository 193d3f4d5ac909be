/*
 * mmoe/sql.c
 *		SQL functions that score rows with stored MMoE models: predict (all
 *		tasks or one; of arrays, of a row, of named column values),
 *		gate_weights, predict_mc (MC dropout), predict_batch,
 *		and mmoe_validate, which import_model and export_model use.
 *
 * Argument positions are named below, one set per SQL signature (see
 * src/sql/30_mmoe.sql); NO_ARG marks an input a function does not take.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "store/arrays.h"
#include "mmoe/load.h"
#include "mmoe/mmoe.h"
#include "store/model_store.h"
#include "store/safetensors.h"

/* Every scoring function takes the model name first */
#define ARG_MODEL 0
/* An input the function does not take */
#define NO_ARG (-1)

/* Where a function takes the inputs of one row, and the model version */
typedef struct RowArgs
{
	int			features;
	int			categorical;
	int			context;
	int			display_position;
	int			version;
} RowArgs;

/* predict(model, features, categorical, context, display_position, version) */
static const RowArgs PredictArgs = {1, 2, 3, 4, 5};

/* predict(model, features, task, categorical, context, display_position, version) */
#define PREDICT_TASK_ARG_TASK 2
static const RowArgs PredictTaskArgs = {1, 3, 4, 5, 6};

/* gate_weights(model, features, task, categorical, version) */
#define GATE_ARG_TASK 2
static const RowArgs GateArgs = {1, 3, NO_ARG, NO_ARG, 4};

/* predict_mc(model, features, samples, seed, categorical, context, display_position, version) */
#define MC_ARG_SAMPLES 2
#define MC_ARG_SEED 3
static const RowArgs McArgs = {1, 4, 5, 6, 7};

/* predict_batch(model, features, categorical, context, display_positions, version): 2-D arrays */
static const RowArgs BatchArgs = {1, 2, 3, 4, 5};

/* mmoe_validate(weights, config) */
#define VALIDATE_ARG_WEIGHTS 0
#define VALIDATE_ARG_CONFIG 1

/* What a scoring call keeps in fn_extra for the rest of the statement */
typedef struct MmoeCall
{
	ModelRef	ref;
	uint64		load_id;		/* model the scratch was made for */
	int			rows_asked;		/* rows the scratch was asked for */
	MemoryContext scratch_cxt;
	MmoeScratch *scratch;
	void	   *rows;			/* the row encoding cache of src/mmoe/rows.c */
} MmoeCall;

/*
 * Get a model (version 0: serving, else newest) and scratch buffers for
 * passes of up to maxrows rows, both kept in fn_extra across the calls of a
 * statement.
 */
const MmoeModel *
MmoeAcquire(FunctionCallInfo fcinfo, text *model, int version, int maxrows,
			MmoeScratch **scratch, uint64 *model_id, int *found_version)
{
	MmoeCall   *call = (MmoeCall *) fcinfo->flinfo->fn_extra;
	MemoryContext mcxt = fcinfo->flinfo->fn_mcxt;
	const MmoeModel *m;
	uint64		load_id;

	if (call == NULL)
	{
		call = MemoryContextAllocZero(mcxt, sizeof(MmoeCall));
		fcinfo->flinfo->fn_extra = call;
	}
	m = ModelStoreAcquire(&call->ref, mcxt, &MmoeModelKind, model, version,
						  &load_id, found_version);
	if (call->scratch == NULL || call->load_id != load_id || call->rows_asked < maxrows)
	{
		MemoryContext old;

		if (call->scratch_cxt)
			MemoryContextDelete(call->scratch_cxt);
		call->scratch = NULL;
		call->scratch_cxt = AllocSetContextCreate(mcxt, "recsys mmoe scratch",
												  ALLOCSET_DEFAULT_SIZES);
		old = MemoryContextSwitchTo(call->scratch_cxt);
		call->scratch = MmoeScratchCreate(m, maxrows);
		MemoryContextSwitchTo(old);
		call->load_id = load_id;
		call->rows_asked = maxrows;
	}
	*scratch = call->scratch;
	if (model_id)
		*model_id = load_id;
	return m;
}

/* Get the slot where the row encoding of this call site is cached (after MmoeAcquire) */
void	  **
MmoeCallRowCache(FunctionCallInfo fcinfo)
{
	MmoeCall   *call = (MmoeCall *) fcinfo->flinfo->fn_extra;

	if (call == NULL)
		elog(ERROR, "MmoeCallRowCache called before MmoeAcquire");
	return &call->rows;
}

/* Get a version argument: 0 (serving, else newest) for NULL, else a positive version */
int
MmoeVersionArg(FunctionCallInfo fcinfo, int arg)
{
	int			version;

	if (arg == NO_ARG || PG_ARGISNULL(arg))
		return 0;
	version = PG_GETARG_INT32(arg);
	if (version < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model version must be positive")));
	return version;
}

/*
 * Get the model named by argument ARG_MODEL (version from argument
 * version_arg, NULL = serving, else newest) and scratch buffers for it,
 * both kept across calls of the statement.
 */
static const MmoeModel *
GetModel(FunctionCallInfo fcinfo, int version_arg, int maxrows, MmoeScratch **scratch,
		 uint64 *model_id)
{
	int			version = MmoeVersionArg(fcinfo, version_arg);

	return MmoeAcquire(fcinfo, PG_GETARG_TEXT_PP(ARG_MODEL), version, maxrows, scratch,
					   model_id, NULL);
}

/* Get the index of a task by name, or raise an error */
static int
TaskIndex(const MmoeModel *m, text *task, text *model)
{
	char	   *name = text_to_cstring(task);

	for (int t = 0; t < m->ntasks; t++)
		if (strcmp(m->tasks[t].name, name) == 0)
			return t;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("model \"%s\" has no task \"%s\"", text_to_cstring(model), name)));
	return -1;
}

/* Check categorical ids against the vocabularies and store them for row r */
void
MmoeSetIds(const MmoeModel *m, MmoeScratch *s, int r, const int32 *ids)
{
	for (int c = 0; c < m->ncategorical; c++)
	{
		if (ids[c] < 0 || ids[c] >= m->categorical[c].vocab)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("categorical id %d for \"%s\" is out of range [0, %d)",
							ids[c], m->categorical[c].name, m->categorical[c].vocab)));
		s->ids[r * m->ncategorical + c] = ids[c];
	}
}

/* Check a display position (or NULL = missing) and store it for row r */
static void
SetDisplayPosition(const MmoeModel *m, MmoeScratch *s, int r, bool isnull, int32 pos)
{
	if (isnull)
	{
		s->display_position[r] = -1;
		return;
	}
	if (m->positions == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the model has no shallow tower, so display_position must be null")));
	if (pos < 0 || pos >= m->positions)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("display_position %d is out of range [0, %d)", pos, m->positions)));
	s->display_position[r] = pos;
}

/* Raise the error for a NULL optional input that the model needs */
static void
CheckNeeded(const MmoeModel *m, bool cat_null, bool ctx_null)
{
	if (cat_null && m->ncategorical > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the model has %d categorical feature(s), so categorical must not be null",
						m->ncategorical)));
	if (ctx_null && m->context_dim > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the model has a latent cross, so context must not be null")));
}

/*
 * Check one row's inputs against the model and store them as row r of the
 * scratch.  NULL arrays are NULL inputs; takes_context and takes_display_position
 * say whether the caller has such inputs at all.
 */
void
MmoeSetRow(const MmoeModel *m, MmoeScratch *s, int r, const MmoeRowInput *in)
{
	int			dim;

	if (!in->encoded)
	{
		MmoeRejectBags(m);
		dim = VectorDimOf(in->features, "features");
		if (dim != m->input_dim)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("features have %d elements, but the model takes %d", dim, m->input_dim)));
		VectorToFloats(in->features, s->x + (size_t) r * m->in_width);
	}
	/* gate_weights has no context argument: gates do not use it */
	CheckNeeded(m, in->categorical == NULL && !in->encoded, in->takes_context && in->context == NULL);
	if (in->categorical && !in->encoded)
	{
		int			n;
		int32	   *ids = IntVectorGet(in->categorical, "categorical", &n);

		if (n != m->ncategorical)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("categorical has %d ids, but the model has %d categorical feature(s)",
							n, m->ncategorical)));
		MmoeSetIds(m, s, r, ids);
		pfree(ids);
	}
	if (in->context)
	{
		if (m->context_dim == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the model has no latent cross, so context must be null")));
		dim = VectorDimOf(in->context, "context");
		if (dim != m->context_dim)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("context has %d elements, but the model takes %d", dim, m->context_dim)));
		VectorToFloats(in->context, s->context + (size_t) r * m->context_dim);
	}
	if (in->takes_display_position)
		SetDisplayPosition(m, s, r, in->display_position_null, in->display_position);
	else
		s->display_position[r] = -1;
}

/*
 * Read one row's inputs from the arguments at the positions in args (NO_ARG
 * when the function has no such argument) into row r of the scratch.
 */
static void
ReadRow(FunctionCallInfo fcinfo, const MmoeModel *m, MmoeScratch *s, int r,
		const RowArgs *args)
{
	MmoeRowInput in = {0};

	in.features = PG_GETARG_ARRAYTYPE_P(args->features);
	if (args->categorical != NO_ARG && !PG_ARGISNULL(args->categorical))
		in.categorical = PG_GETARG_ARRAYTYPE_P(args->categorical);
	in.takes_context = args->context != NO_ARG;
	if (in.takes_context && !PG_ARGISNULL(args->context))
		in.context = PG_GETARG_ARRAYTYPE_P(args->context);
	in.takes_display_position = args->display_position != NO_ARG;
	if (in.takes_display_position)
	{
		in.display_position_null = PG_ARGISNULL(args->display_position);
		if (!in.display_position_null)
			in.display_position = PG_GETARG_INT32(args->display_position);
	}
	MmoeSetRow(m, s, r, &in);
}

/*
 * The last row predict scored in this backend.  A query that uses the
 * result several times, like the usual
 *	SELECT p[1] * 0.7 + p[2] * 0.3 FROM (SELECT recsys.predict(...) p ...) s
 * calls predict once per use after the planner flattens the subquery (each
 * use becomes its own call); those calls find the row here and skip the
 * forward pass.  Keyed by the parsed model and the exact inputs.
 */
static struct
{
	uint64		model_id;
	int			nkey;
	int			capacity;
	float	   *key;
	float	   *probe;
	float		out[MMOE_MAX_TASKS];
}			LastRow;

/* Score row 0 of the scratch, reusing the previous result for identical inputs */
static void
ScoreRow(const MmoeModel *m, MmoeScratch *s, uint64 model_id, float *out)
{
	int			nbag = m->in_width - m->bag_offset;	/* pooled bags: part of the input */
	int			nkey = m->input_dim + nbag + m->ncategorical + m->context_dim + 1;
	float	   *k;

	if (LastRow.capacity < nkey)
	{
		if (LastRow.key)
		{
			pfree(LastRow.key);
			pfree(LastRow.probe);
		}
		LastRow.model_id = 0;
		LastRow.key = MemoryContextAlloc(TopMemoryContext, sizeof(float) * nkey);
		LastRow.probe = MemoryContextAlloc(TopMemoryContext, sizeof(float) * nkey);
		LastRow.capacity = nkey;
	}
	k = LastRow.probe;
	memcpy(k, s->x, sizeof(float) * m->input_dim);
	k += m->input_dim;
	memcpy(k, s->x + m->bag_offset, sizeof(float) * nbag);
	k += nbag;
	memcpy(k, s->ids, sizeof(int32) * m->ncategorical);
	k += m->ncategorical;
	memcpy(k, s->context, sizeof(float) * m->context_dim);
	k += m->context_dim;
	memcpy(k, &s->display_position[0], sizeof(int32));

	if (LastRow.model_id == model_id && LastRow.nkey == nkey &&
		memcmp(LastRow.probe, LastRow.key, sizeof(float) * nkey) == 0)
	{
		memcpy(out, LastRow.out, sizeof(float) * m->ntasks);
		return;
	}
	MmoeForward(m, s, 1, NULL, out);
	memcpy(LastRow.out, out, sizeof(float) * m->ntasks);
	k = LastRow.key;
	LastRow.key = LastRow.probe;
	LastRow.probe = k;
	LastRow.nkey = nkey;
	LastRow.model_id = model_id;
}

PG_FUNCTION_INFO_V1(mmoe_predict);
/* Score one row: one output per task, in config order */
Datum
mmoe_predict(PG_FUNCTION_ARGS)
{
	const MmoeModel *m;
	MmoeScratch *s;
	float		out[MMOE_MAX_TASKS];
	uint64		model_id;

	if (PG_ARGISNULL(ARG_MODEL) || PG_ARGISNULL(PredictArgs.features))
		PG_RETURN_NULL();
	m = GetModel(fcinfo, PredictArgs.version, 1, &s, &model_id);
	ReadRow(fcinfo, m, s, 0, &PredictArgs);
	ScoreRow(m, s, model_id, out);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(out, m->ntasks));
}

PG_FUNCTION_INFO_V1(mmoe_predict_task);
/* Score one row for one task */
Datum
mmoe_predict_task(PG_FUNCTION_ARGS)
{
	const MmoeModel *m;
	MmoeScratch *s;
	float		out[MMOE_MAX_TASKS];
	int			t;
	uint64		model_id;

	if (PG_ARGISNULL(ARG_MODEL) || PG_ARGISNULL(PredictTaskArgs.features) ||
		PG_ARGISNULL(PREDICT_TASK_ARG_TASK))
		PG_RETURN_NULL();
	m = GetModel(fcinfo, PredictTaskArgs.version, 1, &s, &model_id);
	t = TaskIndex(m, PG_GETARG_TEXT_PP(PREDICT_TASK_ARG_TASK), PG_GETARG_TEXT_PP(ARG_MODEL));
	ReadRow(fcinfo, m, s, 0, &PredictTaskArgs);
	ScoreRow(m, s, model_id, out);
	PG_RETURN_FLOAT4(out[t]);
}

/* predict(model, row, context, display_position, version) */
static const RowArgs PredictRowArgs = {1, NO_ARG, 2, 3, 4};

/* predict(model, row, task, context, display_position, version) */
#define PREDICT_ROW_TASK_ARG_TASK 2
static const RowArgs PredictRowTaskArgs = {1, NO_ARG, 3, 4, 5};

/*
 * Complete row 0 of the scratch, whose features and ids a feature spec has
 * encoded, with the context and display position arguments
 */
static void
SetEncodedRow(FunctionCallInfo fcinfo, const MmoeModel *m, MmoeScratch *s, const RowArgs *args)
{
	MmoeRowInput in = {0};

	in.encoded = true;
	in.takes_context = true;
	if (!PG_ARGISNULL(args->context))
		in.context = PG_GETARG_ARRAYTYPE_P(args->context);
	in.takes_display_position = true;
	in.display_position_null = PG_ARGISNULL(args->display_position);
	if (!in.display_position_null)
		in.display_position = PG_GETARG_INT32(args->display_position);
	MmoeSetRow(m, s, 0, &in);
}

/*
 * Read one row value (argument args->features) with the model's feature
 * spec into row 0 of the scratch, with the context and display position
 * arguments
 */
static void
ReadRecord(FunctionCallInfo fcinfo, const MmoeModel *m, MmoeScratch *s, uint64 model_id,
		   const RowArgs *args)
{
	MmoeEncodeRow(m, model_id, MmoeCallRowCache(fcinfo), fcinfo->flinfo->fn_mcxt,
				  PG_GETARG_HEAPTUPLEHEADER(args->features), s->x, s->ids, s->x + m->bag_offset);
	SetEncodedRow(fcinfo, m, s, args);
}

PG_FUNCTION_INFO_V1(mmoe_predict_row);
/* Score one table row with a model's feature spec: one output per task */
Datum
mmoe_predict_row(PG_FUNCTION_ARGS)
{
	const MmoeModel *m;
	MmoeScratch *s;
	float		out[MMOE_MAX_TASKS];
	uint64		model_id;

	if (PG_ARGISNULL(ARG_MODEL) || PG_ARGISNULL(PredictRowArgs.features))
		PG_RETURN_NULL();
	m = GetModel(fcinfo, PredictRowArgs.version, 1, &s, &model_id);
	ReadRecord(fcinfo, m, s, model_id, &PredictRowArgs);
	ScoreRow(m, s, model_id, out);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(out, m->ntasks));
}

PG_FUNCTION_INFO_V1(mmoe_predict_row_task);
/* Score one table row for one task */
Datum
mmoe_predict_row_task(PG_FUNCTION_ARGS)
{
	const MmoeModel *m;
	MmoeScratch *s;
	float		out[MMOE_MAX_TASKS];
	int			t;
	uint64		model_id;

	if (PG_ARGISNULL(ARG_MODEL) || PG_ARGISNULL(PredictRowTaskArgs.features) ||
		PG_ARGISNULL(PREDICT_ROW_TASK_ARG_TASK))
		PG_RETURN_NULL();
	m = GetModel(fcinfo, PredictRowTaskArgs.version, 1, &s, &model_id);
	t = TaskIndex(m, PG_GETARG_TEXT_PP(PREDICT_ROW_TASK_ARG_TASK), PG_GETARG_TEXT_PP(ARG_MODEL));
	ReadRecord(fcinfo, m, s, model_id, &PredictRowTaskArgs);
	ScoreRow(m, s, model_id, out);
	PG_RETURN_FLOAT4(out[t]);
}

/*
 * predict_columns(model, row_type, columns, context, display_position,
 * version, VARIADIC values): what the planner makes of predict(model, row)
 * (src/mmoe/row_support.c)
 */
#define COLUMNS_ARG_ROW_TYPE 1
#define COLUMNS_ARG_NAMES 2
static const RowArgs PredictColumnsArgs = {NO_ARG, NO_ARG, 3, 4, 5};
#define PREDICT_COLUMNS_FIRST 6

/* predict_task_columns(model, row_type, columns, task, context, display_position, version, VARIADIC values) */
#define PREDICT_COLUMNS_TASK_ARG_TASK 3
static const RowArgs PredictColumnsTaskArgs = {NO_ARG, NO_ARG, 4, 5, 6};
#define PREDICT_COLUMNS_TASK_FIRST 7

/* Read the named column values of a predict_columns call into row 0 of the scratch */
static void
ReadColumns(FunctionCallInfo fcinfo, const MmoeModel *m, MmoeScratch *s, uint64 model_id,
			const RowArgs *args, int first)
{
	Oid			row_type = PG_ARGISNULL(COLUMNS_ARG_ROW_TYPE) ? InvalidOid
		: PG_GETARG_OID(COLUMNS_ARG_ROW_TYPE);

	MmoeEncodeColumns(m, model_id, MmoeCallRowCache(fcinfo), fcinfo->flinfo->fn_mcxt, fcinfo,
					  COLUMNS_ARG_NAMES, row_type, first, s->x, s->ids, s->x + m->bag_offset);
	SetEncodedRow(fcinfo, m, s, args);
}

PG_FUNCTION_INFO_V1(mmoe_predict_columns);
/* Score one row given as named column values: one output per task */
Datum
mmoe_predict_columns(PG_FUNCTION_ARGS)
{
	const MmoeModel *m;
	MmoeScratch *s;
	float		out[MMOE_MAX_TASKS];
	uint64		model_id;

	if (PG_ARGISNULL(ARG_MODEL))
		PG_RETURN_NULL();
	m = GetModel(fcinfo, PredictColumnsArgs.version, 1, &s, &model_id);
	ReadColumns(fcinfo, m, s, model_id, &PredictColumnsArgs, PREDICT_COLUMNS_FIRST);
	ScoreRow(m, s, model_id, out);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(out, m->ntasks));
}

PG_FUNCTION_INFO_V1(mmoe_predict_columns_task);
/* Score one row given as named column values, for one task */
Datum
mmoe_predict_columns_task(PG_FUNCTION_ARGS)
{
	const MmoeModel *m;
	MmoeScratch *s;
	float		out[MMOE_MAX_TASKS];
	int			t;
	uint64		model_id;

	if (PG_ARGISNULL(ARG_MODEL) || PG_ARGISNULL(PREDICT_COLUMNS_TASK_ARG_TASK))
		PG_RETURN_NULL();
	m = GetModel(fcinfo, PredictColumnsTaskArgs.version, 1, &s, &model_id);
	t = TaskIndex(m, PG_GETARG_TEXT_PP(PREDICT_COLUMNS_TASK_ARG_TASK), PG_GETARG_TEXT_PP(ARG_MODEL));
	ReadColumns(fcinfo, m, s, model_id, &PredictColumnsTaskArgs, PREDICT_COLUMNS_TASK_FIRST);
	ScoreRow(m, s, model_id, out);
	PG_RETURN_FLOAT4(out[t]);
}

PG_FUNCTION_INFO_V1(mmoe_gate_weights);
/* Get the gate weights of one task for one row */
Datum
mmoe_gate_weights(PG_FUNCTION_ARGS)
{
	const MmoeModel *m;
	MmoeScratch *s;
	float	   *out;
	int			t;

	if (PG_ARGISNULL(ARG_MODEL) || PG_ARGISNULL(GateArgs.features) || PG_ARGISNULL(GATE_ARG_TASK))
		PG_RETURN_NULL();
	m = GetModel(fcinfo, GateArgs.version, 1, &s, NULL);
	t = TaskIndex(m, PG_GETARG_TEXT_PP(GATE_ARG_TASK), PG_GETARG_TEXT_PP(ARG_MODEL));
	ReadRow(fcinfo, m, s, 0, &GateArgs);
	out = palloc(sizeof(float) * m->nexperts);
	MmoeGateWeights(m, s, 1, t, out);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(out, m->nexperts));
}

PG_FUNCTION_INFO_V1(mmoe_predict_mc);
/*
 * MC dropout for one row: mean and (population) variance of each task's
 * output over samples stochastic passes with the config's dropout rate.
 */
Datum
mmoe_predict_mc(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const MmoeModel *m;
	MmoeScratch *s;
	int			samples;
	MmoeDropout d;
	double		mean[MMOE_MAX_TASKS] = {0};
	double		m2[MMOE_MAX_TASKS] = {0};
	float	   *out;
	int			done = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(ARG_MODEL) || PG_ARGISNULL(McArgs.features) ||
		PG_ARGISNULL(MC_ARG_SAMPLES) || PG_ARGISNULL(MC_ARG_SEED))
		return (Datum) 0;
	samples = PG_GETARG_INT32(MC_ARG_SAMPLES);
	if (samples < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("samples must be at least 1")));
	if (samples > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("samples must be at most 100000")));
	m = GetModel(fcinfo, McArgs.version, Min(samples, MMOE_CHUNK_ROWS), &s, NULL);
	ReadRow(fcinfo, m, s, 0, &McArgs);

	/* every row of a pass is the same input under its own dropout mask */
	for (int r = 1; r < Min(samples, s->maxrows); r++)
	{
		memcpy(s->x + (size_t) r * m->in_width, s->x, sizeof(float) * m->input_dim);
		memcpy(s->ids + (size_t) r * m->ncategorical, s->ids, sizeof(int32) * m->ncategorical);
		memcpy(s->context + (size_t) r * m->context_dim, s->context, sizeof(float) * m->context_dim);
		s->display_position[r] = s->display_position[0];
	}
	d.rate = m->dropout;
	d.seed = (uint64) (int64) PG_GETARG_INT32(MC_ARG_SEED);
	out = palloc(sizeof(float) * s->maxrows * m->ntasks);
	while (done < samples)
	{
		int			rows = Min(samples - done, s->maxrows);

		CHECK_FOR_INTERRUPTS();
		d.first_sample = done;
		MmoeForward(m, s, rows, &d, out);
		/* Welford's running mean and sum of squared deviations */
		for (int r = 0; r < rows; r++)
			for (int t = 0; t < m->ntasks; t++)
			{
				double		v = out[(size_t) r * m->ntasks + t];
				double		delta = v - mean[t];

				mean[t] += delta / (done + r + 1);
				m2[t] += delta * (v - mean[t]);
			}
		done += rows;
	}
	for (int t = 0; t < m->ntasks; t++)
	{
		Datum		values[3];
		bool		nulls[3] = {false};

		values[0] = CStringGetTextDatum(m->tasks[t].name);
		values[1] = Float4GetDatum((float) mean[t]);
		values[2] = Float4GetDatum((float) (m2[t] / samples));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(mmoe_predict_batch);
/*
 * Score a batch of rows given as 2-D arrays (one row per candidate) with
 * BLAS sgemm over chunks of rows: returns (row number, outputs per task).
 */
Datum
mmoe_predict_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const MmoeModel *m;
	MmoeScratch *s;
	ArrayType  *features;
	ArrayType  *context = NULL;
	const int32 *ids = NULL;
	int32	   *pos = NULL;
	bool	   *pos_null = NULL;
	int			rows;
	int			cols;
	float	   *out;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(ARG_MODEL) || PG_ARGISNULL(BatchArgs.features))
		return (Datum) 0;
	features = PG_GETARG_ARRAYTYPE_P(BatchArgs.features);
	if (ARR_NDIM(features) == 0)
		return (Datum) 0;
	BatchDims(features, "features", &rows, &cols);
	if (rows == 0)
		return (Datum) 0;
	m = GetModel(fcinfo, BatchArgs.version, MMOE_CHUNK_ROWS, &s, NULL);
	MmoeRejectBags(m);
	if (cols != m->input_dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("features rows have %d elements, but the model takes %d", cols, m->input_dim)));
	CheckNeeded(m, PG_ARGISNULL(BatchArgs.categorical), PG_ARGISNULL(BatchArgs.context));
	if (!PG_ARGISNULL(BatchArgs.categorical))
	{
		int			r2,
					c2;

		ids = IntMatrixData(PG_GETARG_ARRAYTYPE_P(BatchArgs.categorical), "categorical", &r2, &c2);
		if (r2 != rows || c2 != m->ncategorical)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("categorical is %d x %d, but the batch needs %d x %d",
							r2, c2, rows, m->ncategorical)));
	}
	if (!PG_ARGISNULL(BatchArgs.context))
	{
		int			r2,
					c2;

		if (m->context_dim == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the model has no latent cross, so context must be null")));
		context = PG_GETARG_ARRAYTYPE_P(BatchArgs.context);
		BatchDims(context, "context", &r2, &c2);
		if (r2 != rows || c2 != m->context_dim)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("context is %d x %d, but the batch needs %d x %d",
							r2, c2, rows, m->context_dim)));
	}
	if (!PG_ARGISNULL(BatchArgs.display_position))
	{
		int			n = IntVectorGetNullable(PG_GETARG_ARRAYTYPE_P(BatchArgs.display_position),
											 "display_positions", &pos, &pos_null);

		if (n != rows)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("display_positions has %d elements, but the batch has %d rows", n, rows)));
	}

	out = palloc(sizeof(float) * s->maxrows * m->ntasks);
	for (int first = 0; first < rows; first += s->maxrows)
	{
		int			n = Min(rows - first, s->maxrows);

		CHECK_FOR_INTERRUPTS();
		/* dense features land at the start of each row of x */
		if (m->in_width == m->input_dim)
			BatchRowsToFloats(features, first, n, s->x);
		else
		{
			BatchRowsToFloats(features, first, n, s->x);
			for (int r = n - 1; r >= 0; r--)
				memmove(s->x + (size_t) r * m->in_width, s->x + (size_t) r * m->input_dim,
						sizeof(float) * m->input_dim);
		}
		for (int r = 0; r < n; r++)
		{
			if (ids)
				MmoeSetIds(m, s, r, ids + (size_t) (first + r) * m->ncategorical);
			SetDisplayPosition(m, s, r, pos == NULL || pos_null[first + r], pos ? pos[first + r] : 0);
		}
		if (context)
			BatchRowsToFloats(context, first, n, s->context);
		MmoeForward(m, s, n, NULL, out);
		for (int r = 0; r < n; r++)
		{
			Datum		values[2];
			bool		nulls[2] = {false};

			values[0] = Int32GetDatum(first + r + 1);
			values[1] = PointerGetDatum(FloatsToArray(out + (size_t) r * m->ntasks, m->ntasks));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			pfree(DatumGetPointer(values[1]));
		}
	}
	return (Datum) 0;
}

/* Order C strings */
static int
CompareStrings(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

PG_FUNCTION_INFO_V1(mmoe_validate);
/*
 * Check a safetensors file against an MMoE config (the argument, else the
 * file's __metadata__.recsys) and get the config and the canonical file:
 * the same tensors, laid out as the reference writer does, with the config
 * in __metadata__.recsys (other metadata kept).
 */
Datum
mmoe_validate(PG_FUNCTION_ARGS)
{
	bytea	   *weights;
	Jsonb	   *config;
	SafetensorsFile file;
	MmoeModel  *m;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false};
	const char **keys;
	const char **vals;
	int			nmeta = 0;
	char	   *config_text;

	if (PG_ARGISNULL(VALIDATE_ARG_WEIGHTS))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("weights must not be null")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	weights = PG_GETARG_BYTEA_PP(VALIDATE_ARG_WEIGHTS);
	MmoeParseFile((const unsigned char *) VARDATA_ANY(weights), VARSIZE_ANY_EXHDR(weights), &file);
	if (!PG_ARGISNULL(VALIDATE_ARG_CONFIG))
		config = PG_GETARG_JSONB_P(VALIDATE_ARG_CONFIG);
	else
	{
		const char *meta = SafetensorsGetMeta(&file, "recsys");

		if (meta == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("no config given, and the file has no __metadata__ entry \"recsys\"")));
		config = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(meta)));
	}
	m = MmoeConfigToModel(config);
	MmoeLoadTensors(m, &file);

	config_text = JsonbToCString(NULL, &config->root, VARSIZE(config));
	keys = palloc(sizeof(char *) * (file.nmeta + 1));
	vals = palloc(sizeof(char *) * (file.nmeta + 1));
	for (int i = 0; i < file.nmeta; i++)
		if (strcmp(file.meta_keys[i], "recsys") != 0)
			keys[nmeta++] = file.meta_keys[i];
	keys[nmeta++] = "recsys";
	qsort(keys, nmeta, sizeof(char *), CompareStrings);
	for (int i = 0; i < nmeta; i++)
		vals[i] = strcmp(keys[i], "recsys") == 0 ? config_text : SafetensorsGetMeta(&file, keys[i]);

	values[0] = JsonbPGetDatum(config);
	values[1] = PointerGetDatum(SafetensorsWrite(&file, nmeta, keys, vals));
	SafetensorsFree(&file);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
