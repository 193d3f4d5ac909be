/*
 * mmoe/train.c
 *		recsys.train_mmoe: train an MMoE model from a table and store it as
 *		the next version of a model (kind mmoe), with its training log.
 *
 * Rows are read once through an SPI cursor into memory (features, ids,
 * context, display position, labels as float32/int32), checked as they come, then
 * trained on with minibatch Adam by the plain C kernel of
 * src/mmoe_backward.c.  The data must fit in recsys.training_memory (the
 * error says how much it needs); the model, its gradient and two Adam
 * moments take 16 bytes per parameter on top, and the activations of one
 * batch are bounded as the scoring scratch is.
 *
 * Everything happens in the caller's transaction: a cancelled or failed run
 * inserts nothing, so the previous versions stay as they were.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "features/spec.h"
#include "mmoe/load.h"
#include "mmoe/mmoe.h"
#include "kernel/mmoe_backward.h"
#include "store/model_store.h"
#include "settings.h"
#include "store/spi_safe.h"
#include "kernel/rng.h"
#include "store/options.h"
#include "store/safetensors.h"
#include "store/progress.h"

/* Largest model whose first-step gradients options.record_gradients keeps in metrics */
#define MAX_RECORDED_PARAMS 100000

/* Rows fetched from the cursor at a time */
#define TRAIN_FETCH_ROWS 1000

/* Argument positions of recsys.train_mmoe */
enum
{
	ARG_MODEL,
	ARG_SOURCE,
	ARG_FEATURES,
	ARG_LABELS,
	ARG_CONFIG,
	ARG_EPOCHS,
	ARG_BATCH,
	ARG_LR,
	ARG_WEIGHTING,
	ARG_CATEGORICAL,
	ARG_CONTEXT,
	ARG_DISPLAY_POSITION,
	ARG_VALIDATION,
	ARG_OPTIONS,
	ARG_SEED,
	NARGS
};

/* The columns to read (NULL = none) */
typedef struct TrainColumns
{
	char	   *features;
	char	   *labels[MMOE_MAX_TASKS];
	char	   *categorical;
	char	   *context;
	char	   *display_position;
} TrainColumns;

/* Rows held in memory */
typedef struct TrainData
{
	int64		n;
	int64		cap;
	double		budget;			/* bytes the rows may take */
	Size		per_row;		/* bytes a row takes (with the run's per-row arrays) */
	float	   *x;				/* [n, input_dim] */
	int32	   *ids;			/* [n, ncategorical] */
	float	   *context;		/* [n, context_dim] */
	int32	   *display_position;	/* [n], -1 = missing */
	float	   *labels;			/* [n, ntasks] */
	uint8	   *has_label;		/* [n, ntasks] */
	/* read with a feature spec: x and ids are the encoded rows; bags */
	int64	   *bag_start;		/* [n, nbags] */
	int32	   *bag_len;		/* [n, nbags] */
	int32	   *bag_ids;
} TrainData;

/* Counts of bad rows by kind, for one error after the scan */
typedef struct BadRows
{
	int64		null_features;
	int64		features_len;
	int64		features_nan;
	int64		label_binary[MMOE_MAX_TASKS];
	int64		label_nan[MMOE_MAX_TASKS];
	int64		cat_null;
	int64		cat_len;
	int64		cat_range;
	int64		ctx_null;
	int64		ctx_len;
	int64		ctx_nan;
	int64		display_position_range;
} BadRows;

typedef struct TrainSettings
{
	int			epochs;
	int			batch_size;
	double		lr;
	int			patience;		/* 0 = none */
	int			init_version;	/* 0 = fresh weights */
	bool		record_gradients;
	MmoeTrainOptions opt;
	OptionNumbers task_weights; /* as given: checked against the tasks */
	bool		promote;		/* the store's (read by SQL) */
	bool		allow_contract_change;
} TrainSettings;

/* The options of train_mmoe, by index into their table */
enum
{
	MOPT_PATIENCE,
	MOPT_INIT_VERSION,
	MOPT_TASK_WEIGHTS,
	MOPT_EXPERT_DROPOUT,
	MOPT_POSITION_DROPOUT,
	MOPT_BALANCE_WEIGHT,
	MOPT_GATE_NOISE,
	MOPT_RECORD_GRADIENTS,
	MOPT_PROMOTE,
	MOPT_ALLOW_CONTRACT_CHANGE,
	MOPT_COUNT
};

#define MOPT(f) offsetof(TrainSettings, f)

/*
 * The options of train_mmoe, through the parser every trainer shares
 * (src/store/options.c).  Options without a default here keep what
 * ReadSettings sets from the config first.  promote and
 * allow_contract_change are the store's (begin_model_version checks them).
 */
static const OptionDef mmoe_option_defs[MOPT_COUNT] = {
	[MOPT_PATIENCE] = {"patience", 1, OPT_INTEGER, NULL, 1, 100000, false, NULL, MOPT(patience),
	"epochs without a better validation loss before training stops (needs validation)"},
	[MOPT_INIT_VERSION] = {"init_version", 1, OPT_INTEGER, NULL, 1, PG_INT32_MAX, false, NULL, MOPT(init_version),
	"start from the weights (and config) of this version of the model"},
	[MOPT_TASK_WEIGHTS] = {"task_weights", 1, OPT_NUMBERS, NULL, 0.0, 1e6, false, NULL, MOPT(task_weights),
	"fixed loss weights, one per task (loss_weighting fixed)"},
	[MOPT_EXPERT_DROPOUT] = {"expert_dropout", 1, OPT_NUMBER, "0", 0.0, 0.99, false, NULL, MOPT(opt.expert_dropout),
	"probability of dropping an expert from a row's mixture"},
	[MOPT_POSITION_DROPOUT] = {"position_dropout", 1, OPT_NUMBER, NULL, 0.0, 1.0, false, NULL, MOPT(opt.position_dropout),
	"probability of hiding a row's display position from the shallow tower"},
	[MOPT_BALANCE_WEIGHT] = {"balance_weight", 1, OPT_NUMBER, NULL, 0.0, 1e6, false, NULL, MOPT(opt.balance_weight),
	"weight of the load-balancing loss of the gates"},
	[MOPT_GATE_NOISE] = {"gate_noise", 1, OPT_BOOL, NULL, 0, 0, false, NULL, MOPT(opt.gate_noise),
	"noisy_top_k gates train with noise"},
	[MOPT_RECORD_GRADIENTS] = {"record_gradients", 1, OPT_BOOL, "false", 0, 0, false, NULL, MOPT(record_gradients),
	"keep the first step's gradients in the metrics"},
	[MOPT_PROMOTE] = {"promote", 1, OPT_BOOL, NULL, 0, 0, false, NULL, MOPT(promote),
	"make the new version the serving one"},
	[MOPT_ALLOW_CONTRACT_CHANGE] = {"allow_contract_change", 1, OPT_BOOL, NULL, 0, 0, false, NULL, MOPT(allow_contract_change),
	"store a version whose input contract differs from the serving one"},
};

static const OptionTable mmoe_options = {mmoe_option_defs, lengthof(mmoe_option_defs)};

/* Read options (every key checked), loss weighting and the scalar arguments */
static void
ReadSettings(FunctionCallInfo fcinfo, const MmoeModel *m, TrainSettings *s)
{
	Jsonb	   *opts = PG_GETARG_JSONB_P(ARG_OPTIONS);
	char	   *weighting = text_to_cstring(PG_GETARG_TEXT_PP(ARG_WEIGHTING));
	bool		given[lengthof(mmoe_option_defs)];

	memset(s, 0, sizeof(*s));
	s->epochs = PG_GETARG_INT32(ARG_EPOCHS);
	s->batch_size = PG_GETARG_INT32(ARG_BATCH);
	s->lr = PG_GETARG_FLOAT8(ARG_LR);
	if (s->epochs < 1 || s->epochs > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("epochs must be in [1, 100000], not %d", s->epochs)));
	if (s->batch_size < 1 || s->batch_size > 65536)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be in [1, 65536], not %d", s->batch_size)));
	if (!(s->lr > 0.0 && s->lr <= 10.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("learning_rate must be in (0, 10], not %g", s->lr)));
	if (strcmp(weighting, "uncertainty") == 0)
		s->opt.uncertainty = true;
	else if (strcmp(weighting, "fixed") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("loss_weighting must be \"uncertainty\" or \"fixed\", not \"%s\"", weighting)));

	/* the defaults that depend on the model */
	s->opt.position_dropout = m->positions > 0 ? 0.1 : 0.0;
	s->opt.balance_weight = m->gate == MMOE_GATE_NOISY_TOP_K ? 0.01 : 0.0;
	s->opt.gate_noise = m->gate == MMOE_GATE_NOISY_TOP_K;
	s->opt.dropout = m->dropout;
	s->opt.seed = (uint64) PG_GETARG_INT64(ARG_SEED);
	s->opt.beta1 = 0.9;
	s->opt.beta2 = 0.999;
	s->opt.eps = 1e-8;
	for (int t = 0; t < m->ntasks; t++)
		s->opt.task_weights[t] = 1.0;

	OptionsParse(&mmoe_options, 1, "train_mmoe", "train_mmoe", opts, s, given, NULL);

	/* what the model allows */
	if (given[MOPT_POSITION_DROPOUT] && m->positions == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options.position_dropout needs a shallow_tower in the config")));
	if (given[MOPT_GATE_NOISE] && s->opt.gate_noise && m->gate != MMOE_GATE_NOISY_TOP_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options.gate_noise needs a noisy_top_k gate in the config")));
	if (given[MOPT_TASK_WEIGHTS])
	{
		if (s->task_weights.n != m->ntasks)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("options.task_weights must be an array of %d numbers, one per task", m->ntasks)));
		for (int t = 0; t < m->ntasks; t++)
			s->opt.task_weights[t] = s->task_weights.x[t];
		if (s->opt.uncertainty)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("options.task_weights apply to loss_weighting \"fixed\", not \"uncertainty\"")));
	}
	if (s->patience > 0 && PG_ARGISNULL(ARG_VALIDATION))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options.patience needs a validation table")));
}

/* Get config with its "features" replaced by a fitted spec */
static Jsonb *
ConfigWithSpec(Jsonb *config, const FeatureSpec *spec)
{
	char	   *json = psprintf("{\"features\": %s}", FeatureSpecJson(spec));
	Datum		fitted = DirectFunctionCall1(jsonb_in, CStringGetDatum(json));

	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(config), fitted));
}

/* Get a name argument as a C string, or NULL */
static char *
NameArg(FunctionCallInfo fcinfo, int arg)
{
	if (PG_ARGISNULL(arg))
		return NULL;
	return pstrdup(NameStr(*PG_GETARG_NAME(arg)));
}

/* The types each column may have (exact OIDs: see RecsysColumnType) */
static const Oid FloatArrayTypes[] = {FLOAT4ARRAYOID, FLOAT8ARRAYOID};
static const Oid IntArrayTypes[] = {INT2ARRAYOID, INT4ARRAYOID, INT8ARRAYOID};
static const Oid IntTypes[] = {INT2OID, INT4OID, INT8OID};
static const Oid LabelTypes[] = {BOOLOID, INT2OID, INT4OID, INT8OID, FLOAT4OID, FLOAT8OID, NUMERICOID};

/* Check one optional column argument of a relation */
static void
CheckColumnArg(FunctionCallInfo fcinfo, int arg, Oid relid, const char *what,
			   const Oid *accepted, int naccepted)
{
	if (!PG_ARGISNULL(arg))
		RecsysColumnType(relid, NameStr(*PG_GETARG_NAME(arg)), what, accepted, naccepted);
}

/*
 * Check, before any work, that a relation to read exists and that every
 * column argument names a column of it of an accepted type (NULL labels
 * are left to ReadColumns)
 */
static void
CheckColumnTypes(FunctionCallInfo fcinfo, Oid relid)
{
	ArrayType  *labels = PG_GETARG_ARRAYTYPE_P(ARG_LABELS);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	RecsysCheckRelation(relid);
	CheckColumnArg(fcinfo, ARG_FEATURES, relid, "features_column", FloatArrayTypes,
				   lengthof(FloatArrayTypes));
	deconstruct_array(labels, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &elems, &nulls, &n);
	for (int t = 0; t < n; t++)
		if (!nulls[t])
		{
			const char *col = quote_identifier(NameStr(*DatumGetName(elems[t])));

			RecsysColumnTypeHinted(relid, NameStr(*DatumGetName(elems[t])), "label column",
								   LabelTypes, lengthof(LabelTypes),
								   psprintf("Compute numeric labels in a view of your own and train on the view, e.g. SELECT ..., (%s = '<positive value>')::int AS %s FROM ....", col, col));
		}
	CheckColumnArg(fcinfo, ARG_CATEGORICAL, relid, "categorical_column", IntArrayTypes,
				   lengthof(IntArrayTypes));
	CheckColumnArg(fcinfo, ARG_CONTEXT, relid, "context_column", FloatArrayTypes,
				   lengthof(FloatArrayTypes));
	CheckColumnArg(fcinfo, ARG_DISPLAY_POSITION, relid, "display_position_column", IntTypes,
				   lengthof(IntTypes));
}

/* Read and check the column arguments against the config */
static void
ReadColumns(FunctionCallInfo fcinfo, const MmoeModel *m, TrainColumns *c)
{
	ArrayType  *labels = PG_GETARG_ARRAYTYPE_P(ARG_LABELS);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	memset(c, 0, sizeof(*c));
	c->features = NameArg(fcinfo, ARG_FEATURES);
	c->categorical = NameArg(fcinfo, ARG_CATEGORICAL);
	c->context = NameArg(fcinfo, ARG_CONTEXT);
	c->display_position = NameArg(fcinfo, ARG_DISPLAY_POSITION);
	if (ARR_NDIM(labels) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("label_columns must be a one-dimensional array")));
	deconstruct_array(labels, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &elems, &nulls, &n);
	if (n != m->ntasks)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("label_columns has %d columns, but the config has %d task(s)", n, m->ntasks),
				 errhint("Give one label column per task, in the config's task order.")));
	for (int t = 0; t < n; t++)
	{
		if (nulls[t])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("label_columns must not contain NULL")));
		c->labels[t] = pstrdup(NameStr(*DatumGetName(elems[t])));
	}
	if (m->features)
	{
		if (c->features || c->categorical)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the config has a feature spec, so features_column and categorical_column must be NULL"),
					 errdetail("The spec names the columns the model reads.")));
	}
	else if (c->features == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("features_column must not be NULL unless the config has a \"features\" spec")));
	if (m->ncategorical > 0 && c->categorical == NULL && m->features == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the config has %d categorical feature(s), so categorical_column must be given",
						m->ncategorical)));
	if (m->ncategorical == 0 && c->categorical != NULL && m->features == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the config has no categorical features, so categorical_column must be NULL")));
	if (m->context_dim > 0 && c->context == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the config has a latent cross, so context_column must be given")));
	if (m->context_dim == 0 && c->context != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the config has no latent cross, so context_column must be NULL")));
	if (m->positions == 0 && c->display_position != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the config has no shallow tower, so display_position_column must be NULL")));
}

/*
 * Get the SELECT that reads the columns of a relation: the casts are
 * built-in casts between the types CheckColumnTypes accepts
 */
static char *
SelectSql(Oid relid, const MmoeModel *m, const TrainColumns *c)
{
	StringInfoData q;

	initStringInfo(&q);
	if (m->features)
		appendStringInfoString(&q, "SELECT NULL::pg_catalog.float4[]");
	else
		appendStringInfo(&q, "SELECT (%s)::pg_catalog.float4[]", quote_identifier(c->features));
	for (int t = 0; t < m->ntasks; t++)
	{
		Oid			type = RecsysColumnType(relid, c->labels[t], "label column", LabelTypes,
											lengthof(LabelTypes));

		/* boolean labels have no cast to float8: go through int4 (false 0, true 1) */
		appendStringInfo(&q, ", (%s)%s::pg_catalog.float8", quote_identifier(c->labels[t]),
						 type == BOOLOID ? "::pg_catalog.int4" : "");
	}
	appendStringInfo(&q, ", %s", c->categorical ? psprintf("(%s)::pg_catalog.int4[]", quote_identifier(c->categorical)) : "NULL::pg_catalog.int4[]");
	appendStringInfo(&q, ", %s", c->context ? psprintf("(%s)::pg_catalog.float4[]", quote_identifier(c->context)) : "NULL::pg_catalog.float4[]");
	appendStringInfo(&q, ", %s", c->display_position ? psprintf("(%s)::pg_catalog.int4", quote_identifier(c->display_position)) : "NULL::pg_catalog.int4");
	/* the spec's columns as they are: FeatureCheckRelation checked their types */
	if (m->features)
		appendStringInfo(&q, ", %s", FeatureSelectList(m->features));
	appendStringInfo(&q, " FROM %s", RecsysRelationSqlName(relid));
	return q.data;
}

/* Get the elements of a 1-D array without NULLs (float4 or int4), or NULL when it has NULLs */
static const void *
ArrayElems(Datum d, int *n)
{
	ArrayType  *a = DatumGetArrayTypeP(d);

	*n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		return NULL;
	if (ARR_NDIM(a) > 1)
		*n = -1;
	return ARR_DATA_PTR(a);
}

/* Raise the error for the first kind of bad row found, naming the column and the count */
static void
ReportBadRows(const BadRows *b, const MmoeModel *m, const TrainColumns *c, const char *rel)
{
#define BAD(cnt, col, what, ...) \
	if ((cnt) > 0) \
		ereport(ERROR, \
				(errcode(ERRCODE_DATA_EXCEPTION), \
				 errmsg("column \"%s\" of %s has " INT64_FORMAT " row(s) with " what, \
						(col), rel, (int64) (cnt), ##__VA_ARGS__)))
	BAD(b->null_features, c->features, "NULL features or NULL elements");
	BAD(b->features_len, c->features, "a length other than the config's input_dim %d", m->input_dim);
	BAD(b->features_nan, c->features, "NaN or infinite features");
	for (int t = 0; t < m->ntasks; t++)
	{
		BAD(b->label_binary[t], c->labels[t], "labels other than 0, 1 or NULL for binary task \"%s\"",
			m->tasks[t].name);
		BAD(b->label_nan[t], c->labels[t], "NaN or infinite labels");
	}
	BAD(b->cat_null, c->categorical, "NULL categorical ids");
	BAD(b->cat_len, c->categorical, "a number of ids other than the config's %d categorical features",
		m->ncategorical);
	BAD(b->cat_range, c->categorical, "categorical ids outside their vocabularies");
	BAD(b->ctx_null, c->context, "NULL context or NULL elements");
	BAD(b->ctx_len, c->context, "a length other than the config's context_dim %d", m->context_dim);
	BAD(b->ctx_nan, c->context, "NaN or infinite context values");
	BAD(b->display_position_range, c->display_position, "display positions outside [0, %d) (NULL = missing)", m->positions);
#undef BAD
}

/* Format a byte count for messages */
static char *
ByteCount(double n)
{
	return n >= 10.0 * 1024 * 1024 ? psprintf("%.0f MB", n / (1024.0 * 1024.0)) :
		psprintf("%.0f kB", ceil(n / 1024.0));
}

/*
 * Grow the row arrays to hold at least n rows, within d->budget: the part of
 * recsys.training_memory the model and the rows read before left; give the
 * bytes the arrays then hold
 */
static double
GrowData(TrainData *d, const MmoeModel *m, int64 need, const char *rel)
{
	Size		per_row = d->per_row;
	int64		cap = d->cap ? d->cap : 1024;
	double		budget = d->budget;

	while (cap < need)
		cap *= 2;
	if ((double) need * per_row > budget)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training rows of %s do not fit in recsys.training_memory (%d kB)",
						rel, recsys_training_memory),
				 errdetail("Rows take %zu bytes each here and %s is left for them beside the model; reading stopped at row " INT64_FORMAT ".",
						   per_row, ByteCount(Max(budget, 0.0)), need),
				 errhint("Raise recsys.training_memory for this session, or train on a sample.")));
	if ((double) cap * per_row > budget)
		cap = Max(need, (int64) (budget / per_row));
#define GROW(field, type, width) \
	d->field = d->field ? repalloc_huge(d->field, sizeof(type) * Max((width), 1) * cap) \
		: MemoryContextAllocHuge(CurrentMemoryContext, sizeof(type) * Max((width), 1) * cap)
	if (m->features == NULL)
	{
		GROW(x, float, m->input_dim);
		GROW(ids, int32, m->ncategorical);
	}
	GROW(context, float, m->context_dim);
	GROW(display_position, int32, 1);
	GROW(labels, float, m->ntasks);
	GROW(has_label, uint8, m->ntasks);
#undef GROW
	d->cap = cap;
	return (double) cap * per_row;
}

/*
 * Check row d->n of a fetch (vals, nulls as SelectSql reads them) into d, or
 * into the feature builder; count what is wrong with it in bad
 */
static void
ReadRow(TrainData *d, const MmoeModel *m, FeatureBuilder *fb, Datum *vals, bool *nulls, BadRows *bad)
{
	int			T = m->ntasks;
	int64		i = d->n;
	bool		ok = true;
	int			len;
	const void *p;

	/* features: from the spec's columns, or the array */
	if (fb)
		FeatureBuilderAdd(fb, vals, nulls);
	else if (nulls[0] || (p = ArrayElems(vals[0], &len)) == NULL)
	{
		bad->null_features++;
		ok = false;
	}
	else if (len != m->input_dim)
	{
		bad->features_len++;
		ok = false;
	}
	else
	{
		const float *f = p;

		for (int j = 0; j < len; j++)
			if (!isfinite(f[j]))
			{
				bad->features_nan++;
				ok = false;
				break;
			}
		if (ok)
			memcpy(d->x + i * m->input_dim, f, sizeof(float) * len);
	}
	/* labels */
	for (int t = 0; t < T; t++)
	{
		double		y = nulls[1 + t] ? 0.0 : DatumGetFloat8(vals[1 + t]);

		d->has_label[i * T + t] = !nulls[1 + t];
		d->labels[i * T + t] = (float) y;
		if (nulls[1 + t])
			continue;
		if (!isfinite(y) || !isfinite((float) y))
		{
			bad->label_nan[t]++;
			ok = false;
		}
		else if (m->tasks[t].type == MMOE_BINARY && y != 0.0 && y != 1.0)
		{
			bad->label_binary[t]++;
			ok = false;
		}
	}
	/* categorical ids */
	if (m->ncategorical > 0 && fb == NULL)
	{
		if (nulls[T + 1] || (p = ArrayElems(vals[T + 1], &len)) == NULL)
			bad->cat_null++;
		else if (len != m->ncategorical)
			bad->cat_len++;
		else
		{
			const int32 *ids = p;
			bool		in_range = true;

			for (int k = 0; k < len && in_range; k++)
				in_range = ids[k] >= 0 && ids[k] < m->categorical[k].vocab;
			if (in_range)
				memcpy(d->ids + i * m->ncategorical, ids, sizeof(int32) * len);
			else
				bad->cat_range++;
		}
	}
	/* context */
	if (m->context_dim > 0)
	{
		if (nulls[T + 2] || (p = ArrayElems(vals[T + 2], &len)) == NULL)
			bad->ctx_null++;
		else if (len != m->context_dim)
			bad->ctx_len++;
		else
		{
			const float *f = p;

			for (int j = 0; j < len; j++)
				if (!isfinite(f[j]))
				{
					bad->ctx_nan++;
					break;
				}
			memcpy(d->context + i * m->context_dim, f, sizeof(float) * len);
		}
	}
	/* display position: NULL = missing */
	d->display_position[i] = -1;
	if (m->positions > 0 && !nulls[T + 3])
	{
		int32		display_position = DatumGetInt32(vals[T + 3]);

		if (display_position < 0 || display_position >= m->positions)
			bad->display_position_range++;
		else
			d->display_position[i] = display_position;
	}
}

/*
 * Read every row of a relation into d (in context), checking each, within
 * budget bytes, extra_per_row of them per row for the run's own arrays;
 * error on bad rows or none
 */
static void
LoadRows(Oid relid, const MmoeModel *m, const TrainColumns *c, TrainData *d, MemoryContext context,
		 double budget, Size extra_per_row)
{
	char	   *rel = RecsysRelationSqlName(relid);
	char	   *sql;
	SPIPlanPtr	plan;
	Portal		portal;
	BadRows		bad;
	int			T = m->ntasks;
	MemoryContext rows_cxt = AllocSetContextCreate(context, "recsys train_mmoe rows",
												   ALLOCSET_DEFAULT_SIZES);
	FeatureBuilder *fb = NULL;
	Datum	   *vals;
	bool	   *nulls;

	memset(&bad, 0, sizeof(bad));
	memset(d, 0, sizeof(*d));
	/* the spec's columns and types, before any row is read */
	if (m->features)
		FeatureCheckRelation(m->features, relid);
	d->budget = budget;
	/* with a feature spec, the builder holds features and ids (src/features/fit.c) */
	d->per_row = sizeof(float) * ((m->features ? 0 : m->input_dim) + m->context_dim + m->ntasks) +
		sizeof(int32) * ((m->features ? 0 : m->ncategorical) + 1) + m->ntasks + extra_per_row;
	sql = SelectSql(relid, m, c);
	plan = SPI_prepare(sql, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	MemoryContextSwitchTo(context);
	vals = palloc(sizeof(Datum) * portal->tupDesc->natts);
	nulls = palloc(sizeof(bool) * portal->tupDesc->natts);
	if (m->features)
		fb = FeatureBuilderStart((FeatureSpec *) m->features,
								 FeatureBindPositions(m->features, portal->tupDesc, T + 5,
													  psprintf("relation %s", rel)),
								 (double) recsys_training_memory * 1024.0, rel);
	for (;;)
	{
		MemoryContext old;

		SPI_cursor_fetch(portal, true, TRAIN_FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		old = MemoryContextSwitchTo(context);
		if (d->n + (int64) SPI_processed > d->cap)
		{
			double		held = GrowData(d, m, d->n + SPI_processed, rel);

			if (fb)
				FeatureBuilderReserve(fb, held);
		}
		/* detoasted arrays of this fetch go away with it */
		MemoryContextSwitchTo(rows_cxt);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;

			heap_deform_tuple(tup, desc, vals, nulls);
			ReadRow(d, m, fb, vals, nulls, &bad);
			d->n++;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rows_cxt);
		SPI_freetuptable(SPI_tuptable);
		ProgressSet(d->n);
		ProgressTick();
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(rows_cxt);
	ReportBadRows(&bad, m, c, rel);
	if (d->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s has no rows", rel),
				 errhint("Training and validation need at least one row.")));
	if (d->n > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has more than %d rows", rel, PG_INT32_MAX)));
	if (fb)
	{
		MemoryContext old = MemoryContextSwitchTo(context);
		FeatureRows *rows = FeatureBuilderFinish(fb);

		d->x = rows->dense;
		d->ids = rows->ids;
		d->bag_start = rows->bag_start;
		d->bag_len = rows->bag_len;
		d->bag_ids = rows->bag_ids;
		MemoryContextSwitchTo(old);
	}
}

/* Copy row i of the data into batch row r of the trainer */
static void
SetBatchRow(MmoeTrainer *t, const TrainData *d, int r, int64 i, uint64 key)
{
	const MmoeModel *m = t->m;

	memcpy(t->z + (size_t) r * m->in_width, d->x + i * m->input_dim, sizeof(float) * m->input_dim);
	if (m->ncategorical > 0)
		memcpy(t->ids + (size_t) r * m->ncategorical, d->ids + i * m->ncategorical,
			   sizeof(int32) * m->ncategorical);
	if (m->nbags > 0)
	{
		/* the trainer pools (and differentiates) the bags from the data's id lists */
		t->bag_ids = d->bag_ids;
		memcpy(t->bag_start + (size_t) r * m->nbags, d->bag_start + i * m->nbags, sizeof(int64) * m->nbags);
		memcpy(t->bag_len + (size_t) r * m->nbags, d->bag_len + i * m->nbags, sizeof(int32) * m->nbags);
	}
	if (m->context_dim > 0)
		memcpy(t->context + (size_t) r * m->context_dim, d->context + i * m->context_dim,
			   sizeof(float) * m->context_dim);
	t->display_position[r] = d->display_position[i];
	memcpy(t->labels + (size_t) r * m->ntasks, d->labels + i * m->ntasks, sizeof(float) * m->ntasks);
	memcpy(t->has_label + (size_t) r * m->ntasks, d->has_label + i * m->ntasks, m->ntasks);
	t->key[r] = key;
}

/* Fill parameters as PyTorch initialises them (nn.Linear, nn.Embedding); noise, cross, shallow at 0 */
static void
InitParams(MmoeTrainer *t, uint64 seed)
{
	Rng			rng;

	RngInit(&rng, RngHash64(seed ^ UINT64CONST(0x6d6d6f65)));
	for (int k = 0; k < t->ntensors; k++)
	{
		MmoeTensor *x = &t->tensors[k];
		float	   *p = t->params + x->offset;
		const char *name = x->name;

		if (strncmp(name, "embeddings.", 11) == 0)
			for (size_t j = 0; j < x->size; j++)
			{
				p[j] = (float) RngNormal(&rng);
				if ((j & 65535) == 65535)
					CHECK_FOR_INTERRUPTS();
			}
		else if (strncmp(name, "experts.", 8) == 0 || strncmp(name, "towers.", 7) == 0 ||
				 (strncmp(name, "gates.", 6) == 0 && strstr(name, ".noise.") == NULL))
		{
			/* bound 1/sqrt(fan_in): the weight before it has the same fan-in */
			int			fan_in = x->ndim == 2 ? x->dims[1] : t->tensors[k - 1].dims[1];
			double		bound = 1.0 / sqrt((double) fan_in);

			for (size_t j = 0; j < x->size; j++)
			{
				p[j] = (float) ((2.0 * RngUniform(&rng) - 1.0) * bound);
				if ((j & 65535) == 65535)
					CHECK_FOR_INTERRUPTS();
			}
		}
	}
}

/* Copy the tensors of a stored version into the parameters (checked by the loader first) */
static void
InitFromVersion(MmoeTrainer *t, Jsonb *config, bytea *weights)
{
	SafetensorsFile file;
	const unsigned char *data = (const unsigned char *) VARDATA_ANY(weights);
	uint64		len = VARSIZE_ANY_EXHDR(weights);

	/* the store's own checks: every tensor, shape and value */
	(void) MmoeModelLoad(config, data, len);
	MmoeParseFile(data, len, &file);
	for (int k = 0; k < t->ntensors; k++)
	{
		MmoeTensor *x = &t->tensors[k];
		const SafetensorsTensor *st = x->exported ? SafetensorsFind(&file, x->name) : NULL;

		if (st == NULL)
			continue;			/* noise weights may be absent: they start at 0 */
		if (st->nelem != x->size)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("tensor \"%s\" of the initial version has " UINT64_FORMAT " values, not %zu",
							x->name, st->nelem, x->size)));
		if (SafetensorsToFloats(&file, st, t->params + x->offset) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("tensor \"%s\" has NaN or infinite values (as float32)", x->name)));
	}
	SafetensorsFree(&file);
}

/* Get the safetensors file of the exported tensors, config in __metadata__.recsys */
static bytea *
WriteWeights(const MmoeTrainer *t, Jsonb *config)
{
	SafetensorsFile file;
	size_t		total = 0;
	int			n = 0;
	char	   *cfg = JsonbToCString(NULL, &config->root, VARSIZE(config));
	const char *keys[1] = {"recsys"};
	const char *vals[1];
	unsigned char *buf;

	vals[0] = cfg;
	memset(&file, 0, sizeof(file));
	for (int k = 0; k < t->ntensors; k++)
		if (t->tensors[k].exported)
			total += t->tensors[k].size * sizeof(float);
	buf = MemoryContextAllocHuge(CurrentMemoryContext, Max(total, 1));
	file.tensors = palloc0(sizeof(SafetensorsTensor) * t->ntensors);
	total = 0;
	for (int k = 0; k < t->ntensors; k++)
	{
		const MmoeTensor *x = &t->tensors[k];
		SafetensorsTensor *st;

		if (!x->exported)
			continue;
		st = &file.tensors[n++];
		st->name = (char *) x->name;
		st->dtype = ST_F32;
		st->ndim = x->ndim;
		st->shape[0] = x->dims[0];
		st->shape[1] = x->dims[1];
		st->nelem = x->size;
		st->begin = total;
		st->end = total + x->size * sizeof(float);
		memcpy(buf + total, t->params + x->offset, x->size * sizeof(float));
		total = st->end;
	}
	file.ntensors = n;
	file.data = buf;
	file.data_len = total;
	return SafetensorsWrite(&file, 1, keys, vals);
}

/* Append a double as JSON (null when not finite) */
static void
AppendNumber(StringInfo s, double x)
{
	if (isfinite(x))
		appendStringInfo(s, "%.17g", x);
	else
		appendStringInfoString(s, "null");
}

/* Get the area under the ROC curve of scores against 0/1 labels (ties count half), NaN without both */
static double
Auc(int64 n, const float *score, const float *label, int64 *order)
{
	int64		pos = 0;
	double		rank_sum = 0.0;
	int64		i = 0;

	for (int64 k = 0; k < n; k++)
		pos += label[order[k]] > 0.5f;
	if (pos == 0 || pos == n)
		return NAN;
	while (i < n)
	{
		int64		j = i;
		int64		npos = 0;

		while (j < n && score[order[j]] == score[order[i]])
		{
			npos += label[order[j]] > 0.5f;
			j++;
		}
		/* ranks i+1 .. j share their mean */
		rank_sum += npos * (i + 1 + j) / 2.0;
		i = j;
	}
	return (rank_sum - pos * (pos + 1) / 2.0) / ((double) pos * (n - pos));
}

static const float *SortScores;

/* Order row numbers by score (ascending), then number */
static int
CompareByScore(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	if (SortScores[x] != SortScores[y])
		return SortScores[x] < SortScores[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

/*
 * Score the validation rows and append their metrics as JSON to s; returns
 * the validation loss (sum over tasks of log loss or MSE, times the fixed
 * weights under fixed weighting)
 */
static double
Validate(MmoeTrainer *t, const TrainData *v, MmoeScratch *sc, float *out, int64 *order,
		 float *col, float *lab, float *stack_w, float *stack_b, StringInfo s)
{
	MmoeModel  *m = t->m;
	double		total = 0.0;

	/* the forward kernel reads first layers from a stacked copy of the current weights */
	MmoeStackFirstLayers(m, stack_w, stack_b);

	for (int64 start = 0; start < v->n; start += sc->maxrows)
	{
		int			rows = (int) Min((int64) sc->maxrows, v->n - start);

		for (int r = 0; r < rows; r++)
		{
			int64		i = start + r;

			memcpy(sc->x + (size_t) r * m->in_width, v->x + i * m->input_dim, sizeof(float) * m->input_dim);
			if (m->ncategorical > 0)
				memcpy(sc->ids + (size_t) r * m->ncategorical, v->ids + i * m->ncategorical,
					   sizeof(int32) * m->ncategorical);
			for (int b = 0, off = m->bag_offset; b < m->nbags; off += m->bags[b].dim, b++)
				MmoeBagMean(&m->bags[b], v->bag_ids + v->bag_start[i * m->nbags + b],
							v->bag_len[i * m->nbags + b], sc->x + (size_t) r * m->in_width + off);
			if (m->context_dim > 0)
				memcpy(sc->context + (size_t) r * m->context_dim, v->context + i * m->context_dim,
					   sizeof(float) * m->context_dim);
			sc->display_position[r] = v->display_position[i];
		}
		MmoeForward(m, sc, rows, NULL, out + start * m->ntasks);
		CHECK_FOR_INTERRUPTS();
	}
	m->fused.w = NULL;			/* stale as soon as the next step changes the weights */
	appendStringInfoChar(s, '{');
	for (int tk = 0; tk < m->ntasks; tk++)
	{
		int64		n = 0;
		double		sum = 0.0;
		double		task_loss;

		for (int64 i = 0; i < v->n; i++)
		{
			double		p = out[i * m->ntasks + tk];
			double		y = v->labels[i * m->ntasks + tk];

			if (!v->has_label[i * m->ntasks + tk])
				continue;
			if (m->tasks[tk].type == MMOE_BINARY)
			{
				double		pc = Min(Max(p, 1e-7), 1.0 - 1e-7);

				sum += -(y * log(pc) + (1.0 - y) * log(1.0 - pc));
			}
			else
				sum += (p - y) * (p - y);
			col[n] = (float) p;
			lab[n] = (float) y;
			order[n] = n;
			n++;
		}
		task_loss = n > 0 ? sum / n : 0.0;
		total += (t->opt.uncertainty ? 1.0 : t->opt.task_weights[tk]) * task_loss;
		if (tk > 0)
			appendStringInfoString(s, ", ");
		escape_json(s, m->tasks[tk].name);
		if (m->tasks[tk].type == MMOE_BINARY)
		{
			SortScores = col;
			qsort(order, n, sizeof(int64), CompareByScore);
			appendStringInfoString(s, ": {\"auc\": ");
			AppendNumber(s, Auc(n, col, lab, order));
			appendStringInfoString(s, ", \"log_loss\": ");
			AppendNumber(s, n > 0 ? task_loss : NAN);
		}
		else
		{
			appendStringInfoString(s, ": {\"rmse\": ");
			AppendNumber(s, n > 0 ? sqrt(task_loss) : NAN);
		}
		appendStringInfo(s, ", \"rows\": " INT64_FORMAT "}", n);
	}
	appendStringInfoString(s, ", \"loss\": ");
	AppendNumber(s, total);
	appendStringInfoChar(s, '}');
	return total;
}

/* Get a jsonb Datum from JSON text */
static Datum
JsonbFromText(const char *s)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s));
}

/* Get a float8[] with NULL where a value is not finite */
static Datum
DoubleArrayDatum(const double *x, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);
	bool	   *nulls = palloc(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		nulls[i] = !isfinite(x[i]);
		d[i] = Float8GetDatum(nulls[i] ? 0.0 : x[i]);
	}
	return PointerGetDatum(construct_md_array(d, nulls, 1, dims, lbs, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Append a JSON array of doubles */
static void
AppendArray(StringInfo s, const double *x, int n)
{
	appendStringInfoChar(s, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(s, ", ");
		AppendNumber(s, x[i]);
	}
	appendStringInfoChar(s, ']');
}

/* Append the gradients of the trainer as a JSON object name -> flat array */
static void
AppendGradients(StringInfo s, const MmoeTrainer *t)
{
	appendStringInfoChar(s, '{');
	for (int k = 0; k < t->ntensors; k++)
	{
		const MmoeTensor *x = &t->tensors[k];

		if (k > 0)
			appendStringInfoString(s, ", ");
		escape_json(s, x->name);
		appendStringInfoString(s, ": [");
		for (size_t j = 0; j < x->size; j++)
			appendStringInfo(s, "%s%.9g", j ? ", " : "", t->grad[x->offset + j]);
		appendStringInfoChar(s, ']');
	}
	appendStringInfoChar(s, '}');
}

/* Run one SQL statement with arguments through SPI, raising on failure; returns SPI_processed */
static uint64
RunSql(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, bool read_only)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Get the bytes a run holds besides its rows, counted before any of them is
 * allocated (in double: a config at the limits asks for more than size_t
 * arithmetic should be trusted with): the trainer (weights, gradients and
 * two Adam moments, 16 bytes a parameter, and one batch's activations), the
 * best weights kept for patience, the validation scratch, and the two copies
 * of the weights the store write makes.  Raises program_limit_exceeded when
 * they alone pass recsys.training_memory.
 */
static double
ModelBytes(const MmoeModel *m, const TrainSettings *set, int maxrows, bool have_val)
{
	double		params = (double) MmoeTrainerParams(m, &set->opt);
	double		trainer = (double) MmoeTrainerBytes(m, &set->opt, maxrows);
	double		activations = trainer - 16.0 * params;
	double		extra = 8.0 * params;
	double		budget = (double) recsys_training_memory * 1024.0;

	if (have_val)
	{
		extra += (double) MmoeScratchBytes(m, MmoeScratchRows(m, MMOE_CHUNK_ROWS)) +
			sizeof(float) * ((double) MmoeFusedRows(m) * m->in_width + MmoeFusedRows(m));
		if (set->patience > 0)
			extra += 4.0 * params;
	}
	if (trainer + extra > budget)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("model of train_mmoe does not fit in recsys.training_memory (%d kB)",
						recsys_training_memory),
				 errdetail("Training needs %s before reading any row: %.0f parameters at 16 bytes each (weights, gradients, two Adam moments), %s of activations for a batch of %d rows, and %s more to store the weights (and for validation and early stopping when asked).",
						   ByteCount(trainer + extra), params, ByteCount(Max(activations, 0.0)),
						   maxrows, ByteCount(extra)),
				 errhint("Raise recsys.training_memory for this session, or use fewer or narrower experts and layers.")));
	return trainer + extra;
}

/* One run of train_mmoe: what its phases hand each other */
typedef struct TrainRun
{
	text	   *model_name;
	Oid			source;
	bool		have_val;
	Jsonb	   *config;			/* the stored config (with a fitted spec) */
	Jsonb	   *options;
	MmoeModel  *m;
	int			T;
	int			version;
	TrainSettings set;
	TrainColumns cols;
	MemoryContext context;
	double		budget;			/* bytes of recsys.training_memory not yet spoken for */
	int			maxrows;
	MmoeTrainer tr;
	TrainData	data;
	bool		loaded;			/* data read already (to fit the feature spec) */
	bytea	   *init_weights;	/* options.init_version's weights, or NULL */
	/* validation scratch */
	TrainData	val;
	MmoeScratch *sc;
	float	   *vout;
	float	   *vstack_w;
	float	   *vstack_b;
	int64	   *vorder;
	float	   *vcol;
	float	   *vlab;
	/* early stopping */
	float	   *best;
	double		best_loss;
	int			best_epoch;
	int			since_best;
	int			epochs_run;
	/* the log */
	StringInfoData log;
	char	   *gradients;
} TrainRun;

/* What one epoch gives its output row and the log */
typedef struct EpochResult
{
	double		objective;
	double		task_loss[MMOE_MAX_TASKS];
	double		log_vars[MMOE_MAX_TASKS];
	double		seconds;
	StringInfoData vjson;		/* validation metrics (empty without validation) */
} EpochResult;

/* Check the arguments that need no model: NULLs, the name, the relations' columns */
static void
CheckArguments(FunctionCallInfo fcinfo, TrainRun *run)
{
	for (int a = 0; a < NARGS; a++)
		if (PG_ARGISNULL(a) && a != ARG_CONFIG && a != ARG_CATEGORICAL && a != ARG_CONTEXT &&
			a != ARG_DISPLAY_POSITION && a != ARG_VALIDATION && a != ARG_FEATURES)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d of train_mmoe must not be NULL", a + 1)));
	InitMaterializedSRF(fcinfo, 0);
	run->model_name = PG_GETARG_TEXT_PP(ARG_MODEL);
	ModelStoreCheckName(VARDATA_ANY(run->model_name), VARSIZE_ANY_EXHDR(run->model_name));
	run->source = PG_GETARG_OID(ARG_SOURCE);
	run->have_val = !PG_ARGISNULL(ARG_VALIDATION);
	CheckColumnTypes(fcinfo, run->source);
	if (run->have_val)
		CheckColumnTypes(fcinfo, PG_GETARG_OID(ARG_VALIDATION));
	run->options = PG_GETARG_JSONB_P(ARG_OPTIONS);
}

/*
 * Get the config to train: the argument, else options.init_version's (whose
 * weights go to run->init_weights); the options are checked in full later
 */
static Jsonb *
ReadConfig(FunctionCallInfo fcinfo, TrainRun *run)
{
	JsonbValue	iv;
	int			init = 0;
	Jsonb	   *init_config = NULL;
	Oid			types[2];
	Datum		values[2];

	/* options that are no object are refused by ReadSettings below */
	if (JB_ROOT_IS_OBJECT(run->options) &&
		getKeyJsonValueFromContainer(&run->options->root, "init_version", 12, &iv) != NULL &&
		iv.type == jbvNumeric)
	{
		double		x = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(iv.val.numeric)));

		if (x >= 1 && x <= PG_INT32_MAX && x == floor(x))
			init = (int) x;
	}
	if (init > 0)
	{
		bool		isnull;
		char	   *kind;

		types[0] = TEXTOID;
		values[0] = PointerGetDatum(run->model_name);
		types[1] = INT4OID;
		values[1] = Int32GetDatum(init);
		if (RunSql("SELECT m.kind, m.config, m.weights FROM recsys.models m "
				   "WHERE m.name OPERATOR(pg_catalog.=) $1 AND m.version OPERATOR(pg_catalog.=) $2",
				   2, types, values, NULL, true) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model \"%s\" has no version %d (options.init_version)",
							text_to_cstring(run->model_name), init)));
		kind = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContextSwitchTo(run->context);
		if (strcmp(kind, "mmoe") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("model \"%s\" version %d is of kind \"%s\", not \"mmoe\"",
							text_to_cstring(run->model_name), init, kind)));
		init_config = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		{
			Datum		w = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);

			if (isnull)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("model \"%s\" version %d has no weights", text_to_cstring(run->model_name), init)));
			run->init_weights = DatumGetByteaPCopy(w);
		}
		if (!PG_ARGISNULL(ARG_CONFIG) &&
			compareJsonbContainers(&PG_GETARG_JSONB_P(ARG_CONFIG)->root, &init_config->root) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("config differs from the config of model \"%s\" version %d",
							text_to_cstring(run->model_name), init),
					 errhint("Pass config => NULL to fine-tune with the stored config.")));
	}
	else if (PG_ARGISNULL(ARG_CONFIG))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("config must not be NULL unless options.init_version is given")));
	return init_config ? init_config : PG_GETARG_JSONB_P(ARG_CONFIG);
}

/*
 * Take the version number before any work: begin_model_version checks the
 * name, its kind and input contract, and takes the name's lock
 */
static int
BeginVersion(TrainRun *run)
{
	Oid			types[3];
	Datum		values[3];
	bool		isnull;

	types[0] = TEXTOID;
	values[0] = PointerGetDatum(run->model_name);
	types[1] = JSONBOID;
	values[1] = JsonbPGetDatum(run->config);
	types[2] = JSONBOID;
	values[2] = JsonbPGetDatum(run->options);
	if (ModelStoreHasLifecycle())
		RunSql("SELECT recsys.begin_model_version($1, 'mmoe', $2, $3)", 3, types, values, NULL, false);
	else						/* 0.2.0's SQL, before ALTER EXTENSION UPDATE */
		RunSql("SELECT recsys.next_model_version($1)", 1, types, values, NULL, false);
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Settings and columns against the model, the model (fitted on the rows when
 * its spec is unfitted) and the trainer, counted in the budget and initialised
 */
static void
PrepareModel(FunctionCallInfo fcinfo, TrainRun *run)
{
	MemoryContext context = run->context;

	run->T = run->m->ntasks;
	ReadSettings(fcinfo, run->m, &run->set);
	ProgressBegin("train_mmoe", text_to_cstring(run->model_name),
				  run->set.opt.uncertainty ? "uncertainty" : "fixed", run->set.epochs, context);
	ReadColumns(fcinfo, run->m, &run->cols);

	/*
	 * An unfitted feature spec is fitted in the scan that reads the rows
	 * (src/features/fit.c); the stored config then holds the fitted spec, and
	 * the model's sizes come from it.
	 */
	if (run->m->features && !run->m->features->fitted)
	{
		ProgressPhase("reading", 0, 0, "rows");
		LoadRows(run->source, run->m, &run->cols, &run->data, context, run->budget, sizeof(int64));
		run->loaded = true;
		run->config = ConfigWithSpec(run->config, run->m->features);
		run->m = MmoeConfigToModel(run->config);
	}

	run->maxrows = MmoeTrainerMaxRows(run->m, &run->set.opt, run->set.batch_size);
	/* the model in the budget before any of it is allocated */
	run->budget -= ModelBytes(run->m, &run->set, run->maxrows, run->have_val);
	MmoeTrainerInit(&run->tr, run->m, &run->set.opt, run->maxrows,
					MemoryContextAllocHuge(context, MmoeTrainerBytes(run->m, &run->set.opt, run->maxrows)));
	if (run->set.record_gradients && run->tr.nparams > MAX_RECORDED_PARAMS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("options.record_gradients is for models of at most %d parameters; this one has %zu",
						MAX_RECORDED_PARAMS, run->tr.nparams)));
	if (run->init_weights)
		InitFromVersion(&run->tr, run->config, run->init_weights);
	else
		InitParams(&run->tr, run->set.opt.seed);
}

/*
 * Read the training rows (unless fitting read them) and the validation rows in
 * what the model left of the budget, with the validation scratch
 */
static void
LoadData(FunctionCallInfo fcinfo, TrainRun *run)
{
	MemoryContext context = run->context;
	MmoeModel  *m = run->m;
	int			T = run->T;

	/* the rows in what is left; per row also the shuffled order (perm) */
	if (!run->loaded)
	{
		ProgressPhase("reading", 0, 0, "rows");
		LoadRows(run->source, m, &run->cols, &run->data, context, run->budget, sizeof(int64));
	}
	else if ((double) run->data.cap * run->data.per_row > run->budget)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training rows of %s do not fit in recsys.training_memory (%d kB) beside the model",
						RecsysRelationSqlName(run->source), recsys_training_memory),
				 errdetail("The rows take %s and the model leaves %s for them.",
						   ByteCount((double) run->data.cap * run->data.per_row),
						   ByteCount(Max(run->budget, 0.0))),
				 errhint("Raise recsys.training_memory for this session, or train on a sample.")));
	run->budget -= (double) run->data.cap * run->data.per_row;
	if (run->have_val)
	{
		TrainData  *val = &run->val;

		/* per validation row also its scores, order, column and labels */
		ProgressPhase("reading validation", 0, 0, "rows");
		LoadRows(PG_GETARG_OID(ARG_VALIDATION), m, &run->cols, val, context, run->budget,
				 sizeof(float) * (T + 2) + sizeof(int64));
		MemoryContextSwitchTo(context);
		run->sc = MmoeScratchCreate(m, MMOE_CHUNK_ROWS);
		run->vout = MemoryContextAllocHuge(context, sizeof(float) * val->n * T);
		run->vstack_w = MemoryContextAllocHuge(context, sizeof(float) * (size_t) MmoeFusedRows(m) * m->in_width);
		run->vstack_b = MemoryContextAllocHuge(context, sizeof(float) * (size_t) MmoeFusedRows(m));
		run->vorder = MemoryContextAllocHuge(context, sizeof(int64) * val->n);
		run->vcol = MemoryContextAllocHuge(context, sizeof(float) * val->n);
		run->vlab = MemoryContextAllocHuge(context, sizeof(float) * val->n);
		if (run->set.patience > 0)
			run->best = MemoryContextAllocHuge(context, sizeof(float) * run->tr.nparams);
	}
	MemoryContextSwitchTo(context);
}

/*
 * One pass over the training rows in a seeded order (perm), minibatch Adam;
 * raises when the loss diverges
 */
static void
TrainEpoch(TrainRun *run, Rng *rng, int64 *perm, int ep, EpochResult *res)
{
	const TrainData *data = &run->data;
	MmoeTrainer *tr = &run->tr;
	int			maxrows = run->maxrows;
	instr_time	start,
				duration;
	MmoeStepStats total;
	int64		batches = 0;

	INSTR_TIME_SET_CURRENT(start);
	memset(&total, 0, sizeof(total));
	res->objective = 0.0;
	/* seeded order: Fisher-Yates over the row numbers */
	for (int64 i = 0; i < data->n; i++)
		perm[i] = i;
	for (int64 i = data->n - 1; i > 0; i--)
	{
		int64		j = (int64) RngBelow(rng, (uint64) i + 1);
		int64		tmp = perm[i];

		perm[i] = perm[j];
		perm[j] = tmp;
	}
	ProgressPhase("rows", ep, data->n, "rows");
	for (int64 b0 = 0; b0 < data->n; b0 += maxrows)
	{
		int			rows = (int) Min((int64) maxrows, data->n - b0);
		MmoeStepStats st;

		ProgressSet(b0);
		ProgressTick();
		CHECK_FOR_INTERRUPTS();
		for (int r = 0; r < rows; r++)
			SetBatchRow(tr, data, r, perm[b0 + r], (uint64) (ep - 1) * data->n + perm[b0 + r]);
		MmoeTrainStep(tr, rows, &st);
		if (run->set.record_gradients && run->gradients == NULL)
		{
			StringInfoData g;

			initStringInfo(&g);
			AppendGradients(&g, tr);
			run->gradients = g.data;
		}
		MmoeAdamStep(tr, run->set.lr);
		res->objective += st.objective;
		batches++;
		for (int tk = 0; tk < run->T; tk++)
		{
			total.loss_sum[tk] += st.loss_sum[tk];
			total.count[tk] += st.count[tk];
		}
	}
	ProgressSet(data->n);
	res->objective /= batches;
	if (!isfinite(res->objective))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("training diverged: the loss is not finite in epoch %d", ep),
				 errhint("Lower learning_rate, or check the scale of the features and labels.")));
	for (int tk = 0; tk < run->T; tk++)
	{
		res->task_loss[tk] = total.count[tk] > 0 ? total.loss_sum[tk] / total.count[tk] : NAN;
		res->log_vars[tk] = tr->log_vars[tk];
	}
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	res->seconds = INSTR_TIME_GET_DOUBLE(duration);
	run->epochs_run = ep;
}

/*
 * Score the validation rows after an epoch (their metrics into res->vjson)
 * and keep the best epoch's weights for early stopping
 */
static void
ValidateEpoch(TrainRun *run, int ep, EpochResult *res)
{
	double		vloss;

	initStringInfo(&res->vjson);
	if (!run->have_val)
		return;
	ProgressPhase("validation", ep, run->val.n, "rows");
	vloss = Validate(&run->tr, &run->val, run->sc, run->vout, run->vorder, run->vcol, run->vlab,
					 run->vstack_w, run->vstack_b, &res->vjson);
	ProgressSet(run->val.n);
	if (vloss < run->best_loss)
	{
		run->best_loss = vloss;
		run->best_epoch = ep;
		run->since_best = 0;
		if (run->best)
			memcpy(run->best, run->tr.params, sizeof(float) * run->tr.nparams);
	}
	else
		run->since_best++;
}

/* Report an epoch: a NOTICE, the function's output row, an entry of the log */
static void
ReportEpoch(ReturnSetInfo *rsinfo, TrainRun *run, int ep, EpochResult *res)
{
	int			T = run->T;
	bool		have_val = run->have_val;
	StringInfo	log = &run->log;
	Datum		row[6];
	bool		rownull[6] = {false, false, false, false, !have_val, false};

	ereport(NOTICE,
			(errmsg("epoch %d/%d: loss %.6g%s%s in %.3f s", ep, run->set.epochs, res->objective,
					have_val ? ", validation " : "", have_val ? res->vjson.data : "",
					res->seconds)));

	row[0] = Int32GetDatum(ep);
	row[1] = Float8GetDatum(res->objective);
	row[2] = DoubleArrayDatum(res->task_loss, T);
	row[3] = DoubleArrayDatum(res->log_vars, T);
	rownull[3] = !run->set.opt.uncertainty;
	if (have_val)
		row[4] = JsonbFromText(res->vjson.data);
	row[5] = Float8GetDatum(res->seconds);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, rownull);

	appendStringInfo(log, "%s{\"epoch\": %d, \"loss\": ", ep > 1 ? ", " : "", ep);
	AppendNumber(log, res->objective);
	appendStringInfoString(log, ", \"task_losses\": ");
	AppendArray(log, res->task_loss, T);
	if (run->set.opt.uncertainty)
	{
		appendStringInfoString(log, ", \"log_vars\": ");
		AppendArray(log, res->log_vars, T);
	}
	if (have_val)
		appendStringInfo(log, ", \"validation\": %s", res->vjson.data);
	appendStringInfo(log, ", \"seconds\": %.6f}", res->seconds);
}

/* Get the stored metrics as JSON: the run's provenance, settings and log */
static char *
MetricsJson(FunctionCallInfo fcinfo, const TrainRun *run)
{
	const TrainColumns *cols = &run->cols;
	int			T = run->T;
	StringInfoData metrics;

	initStringInfo(&metrics);
	appendStringInfoString(&metrics, "{\"training\": {\"source\": ");
	escape_json(&metrics, RecsysRelationSqlName(run->source));
	appendStringInfoString(&metrics, ", \"features_column\": ");
	if (cols->features)
		escape_json(&metrics, cols->features);
	else
		appendStringInfoString(&metrics, "null");
	appendStringInfoString(&metrics, ", \"label_columns\": [");
	for (int tk = 0; tk < T; tk++)
	{
		if (tk > 0)
			appendStringInfoString(&metrics, ", ");
		escape_json(&metrics, cols->labels[tk]);
	}
	appendStringInfoChar(&metrics, ']');
#define OPTIONAL_COLUMN(key, col) \
	if (col) \
	{ \
		appendStringInfoString(&metrics, ", \"" key "\": "); \
		escape_json(&metrics, col); \
	}
	OPTIONAL_COLUMN("categorical_column", cols->categorical);
	OPTIONAL_COLUMN("context_column", cols->context);
	OPTIONAL_COLUMN("display_position_column", cols->display_position);
#undef OPTIONAL_COLUMN
	if (run->have_val)
	{
		appendStringInfoString(&metrics, ", \"validation\": ");
		escape_json(&metrics, RecsysRelationSqlName(PG_GETARG_OID(ARG_VALIDATION)));
		appendStringInfo(&metrics, ", \"validation_rows\": " INT64_FORMAT ", \"best_epoch\": %d",
						 run->val.n, run->best_epoch);
	}
	/* the epoch whose weights are stored: the best one under patience, else the last */
	appendStringInfo(&metrics, ", \"rows\": " INT64_FORMAT ", \"epochs\": %d, \"epochs_run\": %d, "
					 "\"stored_epoch\": %d, "
					 "\"batch_size\": %d, \"batch_rows\": %d, \"learning_rate\": %.17g, \"loss_weighting\": \"%s\", "
					 "\"seed\": " INT64_FORMAT ", \"options\": %s, \"parameters\": %zu}",
					 run->data.n, run->set.epochs, run->epochs_run,
					 run->best && run->best_epoch > 0 ? run->best_epoch : run->epochs_run,
					 run->set.batch_size, run->maxrows, run->set.lr,
					 run->set.opt.uncertainty ? "uncertainty" : "fixed", PG_GETARG_INT64(ARG_SEED),
					 JsonbToCString(NULL, &run->options->root, VARSIZE(run->options)), run->tr.nparams);
	appendStringInfo(&metrics, ", \"log\": [%s]", run->log.data);
	if (run->set.opt.uncertainty)
	{
		double		lv[MMOE_MAX_TASKS];

		for (int tk = 0; tk < T; tk++)
			lv[tk] = run->tr.log_vars[tk];
		appendStringInfoString(&metrics, ", \"log_vars\": ");
		AppendArray(&metrics, lv, T);
	}
	if (run->gradients)
		appendStringInfo(&metrics, ", \"first_step_gradients\": %s", run->gradients);
	appendStringInfoChar(&metrics, '}');
	return metrics.data;
}

/* Insert the trained version with its metrics, and finish it in the lifecycle's log */
static void
StoreVersion(TrainRun *run, const char *metrics)
{
	Oid			types[5];
	Datum		values[5];

	types[0] = TEXTOID;
	values[0] = PointerGetDatum(run->model_name);
	types[1] = INT4OID;
	values[1] = Int32GetDatum(run->version);
	types[2] = JSONBOID;
	values[2] = JsonbPGetDatum(run->config);
	types[3] = BYTEAOID;
	values[3] = PointerGetDatum(WriteWeights(&run->tr, run->config));
	types[4] = JSONBOID;
	values[4] = JsonbFromText(metrics);
	ProgressPhase("writing", 0, 1, "models");
	RunSql("INSERT INTO recsys.models (name, version, kind, config, weights, metrics) "
		   "VALUES ($1, $2, 'mmoe', $3, $4, $5)", 5, types, values, NULL, false);
	types[2] = JSONBOID;
	values[2] = JsonbPGetDatum(run->options);
	if (ModelStoreHasLifecycle())
		RunSql("SELECT recsys.finish_model_version($1, $2, 'trained', $3)", 3, types, values, NULL, false);
	ProgressSet(1);
	ProgressEnd();
}

PG_FUNCTION_INFO_V1(mmoe_train);
/*
 * recsys.train_mmoe: train a model and store it as the next version; one
 * row per epoch (loss, per-task losses, log variances, validation metrics,
 * seconds).  Phases: arguments, config and version, model and trainer, rows,
 * epochs (with validation and early stopping), store.
 */
Datum
mmoe_train(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TrainRun	run;
	int			spi_level;
	MemoryContext old;
	Rng			rng;
	int64	   *perm;

	memset(&run, 0, sizeof(run));
	run.budget = (double) recsys_training_memory * 1024.0;
	run.best_loss = INFINITY;
	CheckArguments(fcinfo, &run);

	run.context = AllocSetContextCreate(CurrentMemoryContext, "recsys train_mmoe", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(run.context);
	spi_level = RecsysSpiConnect();

	/* config: the argument, else the initial version's */
	run.config = ReadConfig(fcinfo, &run);
	run.m = MmoeConfigToSkeleton(run.config, true);
	run.version = BeginVersion(&run);
	MemoryContextSwitchTo(run.context);
	PrepareModel(fcinfo, &run);
	LoadData(fcinfo, &run);

	perm = MemoryContextAllocHuge(run.context, sizeof(int64) * run.data.n);
	RngInit(&rng, (uint64) run.set.opt.seed);
	initStringInfo(&run.log);
	for (int ep = 1; ep <= run.set.epochs; ep++)
	{
		EpochResult res;

		TrainEpoch(&run, &rng, perm, ep, &res);
		ValidateEpoch(&run, ep, &res);
		ReportEpoch(rsinfo, &run, ep, &res);
		if (run.set.patience > 0 && run.since_best >= run.set.patience)
			break;
	}
	if (run.best && run.best_epoch > 0)
		memcpy(run.tr.params, run.best, sizeof(float) * run.tr.nparams);

	StoreVersion(&run, MetricsJson(fcinfo, &run));

	RecsysSpiFinish(spi_level);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(run.context);
	return (Datum) 0;
}
