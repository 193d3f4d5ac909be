/*
 * embeddings/train.c
 *		recsys.train_embeddings: the driver of every embeddings training, in
 *		three pieces.
 *
 *		prepare  arguments and options checked (the option table of
 *				 train_options.c), the model's next version taken (which
 *				 checks and locks the name) before any work, the source's
 *				 columns checked;
 *		epochs   als on the memory engine (als_engine.c over the rows read
 *				 by interactions.c), als on the aggregate engine (the
 *				 recsys.als_solve aggregate over SQL work tables: the path
 *				 that scales out; over a Citus distributed table its work
 *				 tables are distributed and the solves run on the workers),
 *				 or an SGD method (sgd.c, same loader);
 *		store    one new version: the models row (config, provenance, the
 *				 training log and memory, and a safetensors file holding the
 *				 item Gramian Y^T Y), user vectors with their seen items,
 *				 item vectors.
 *
 * Everything happens in the caller's transaction: a failed or cancelled
 * training leaves the stored versions as they were.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>
#include <time.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "kernel/als_engine.h"
#include "store/arrays.h"
#include "embeddings/init.h"
#include "embeddings/interactions.h"
#include "embeddings/vector_rows.h"
#include "kernel/linalg.h"
#include "store/model_row.h"
#include "store/model_store.h"
#include "store/progress.h"
#include "settings.h"
#include "store/spi_safe.h"
#include "store/safetensors.h"
#include "embeddings/sgd.h"
#include "embeddings/ease_train.h"
#include "embeddings/train_options.h"

/* Arguments of recsys.train_embeddings */
#define ARG_MODEL 0
#define ARG_INTERACTIONS 1
#define ARG_USER_COLUMN 2
#define ARG_ITEM_COLUMN 3
#define ARG_WEIGHT_COLUMN 4
#define ARG_DIM 5
#define ARG_METHOD 6
#define ARG_EPOCHS 7
#define ARG_GRAMIAN_WEIGHT 8
#define ARG_L2 9
#define ARG_OPTIONS 10

/* Columns of its result */
#define RESULT_COLUMNS 6

#define TRAIN_MAX_EPOCHS 100000
/* Vectors written per INSERT */
#define TRAIN_WRITE_ROWS 4096
/* Vectors per INSERT .. SELECT from distributed work tables into the store */
#define TRAIN_DIST_WRITE_ROWS 16384

/* One training run */
typedef struct TrainRun
{
	char	   *model;
	int32		version;
	InteractionSource src;
	char	   *source_name;	/* schema-qualified, quoted */
	int			dim;
	int			epochs;
	double		gramian_weight;
	double		l2;
	TrainOptions opts;
	Jsonb	   *store_options;	/* the options argument, for the store (promote) */
	TrainEngine engine;			/* the engine used: memory or aggregate */
	bool		distributed;	/* aggregate engine over distributed work tables (Citus) */
	/* what was read */
	int64		n_rows;
	int64		nnz;
	int32		n_users;
	int32		n_items;
	/* memory of the memory engine (0 for the aggregate engine) */
	Size		mem_indexes;
	Size		mem_confidences;
	Size		mem_factors;
	int			workers;		/* threads of the memory engine's loops */
	int64		max_rows;		/* most rows of one user or item */
	Size		mem_scratch;	/* their workspaces (counted in the budget too) */
	double		load_seconds;
	double	   *item_gramian;	/* k x k after training */
	double		epoch_cpu;		/* CPU seconds at the start of the epoch (< 0: none) */
	StringInfoData log;			/* JSON array of the epochs */
	ReturnSetInfo *rsinfo;
	instr_time	start;
	MemoryContext context;		/* the run's memory */
	MemoryContext spi_context;	/* SPI's procedure context of the run */
} TrainRun;


/* Get the seconds since a start time */
static double
SecondsSince(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}

/* Get the CPU seconds this backend has used (BLAS runs in it: one thread) */
static double
CpuSeconds(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return 0.0;
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Get a text argument as a C string, raising an error for NULL */
static char *
RequiredText(FunctionCallInfo fcinfo, int arg, const char *what)
{
	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	return text_to_cstring(PG_GETARG_TEXT_PP(arg));
}

/* Check a double argument: not NULL, finite, not negative */
static double
RequiredDouble(FunctionCallInfo fcinfo, int arg, const char *what)
{
	double		x;

	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	x = PG_GETARG_FLOAT8(arg);
	if (isnan(x) || isinf(x))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be finite", what)));
	if (x < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", what)));
	return x;
}

/*
 * Get the next version of the model (checks the name, its kind and the
 * store's options, and locks the name)
 */
static int32
NextVersion(const char *model, Jsonb *options)
{
	Oid			types[2] = {TEXTOID, JSONBOID};
	Datum		args[2] = {CStringGetTextDatum(model), PointerGetDatum(options)};
	char		nulls[2] = {' ', options ? ' ' : 'n'};
	bool		isnull;
	Datum		d;

	/* 0.2.0's SQL (before ALTER EXTENSION UPDATE) numbers as it did */
	if (SPI_execute_with_args(ModelStoreHasLifecycle() ?
							  "SELECT recsys.begin_model_version($1, 'embeddings', NULL, $2)" :
							  "SELECT recsys.next_model_version($1)",
							  ModelStoreHasLifecycle() ? 2 : 1, types, args, nulls, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "recsys.begin_model_version failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "recsys.begin_model_version returned NULL");
	return DatumGetInt32(d);
}

/* Log the stored version in the store's history; promote it when asked */
static void
FinishVersion(TrainRun *run)
{
	Oid			types[3] = {TEXTOID, INT4OID, JSONBOID};
	Datum		args[3] = {CStringGetTextDatum(run->model), Int32GetDatum(run->version),
	PointerGetDatum(run->store_options)};
	char		nulls[3] = {' ', ' ', run->store_options ? ' ' : 'n'};

	if (!ModelStoreHasLifecycle())
		return;
	if (SPI_execute_with_args("SELECT recsys.finish_model_version($1, $2, 'trained', $3)",
							  3, types, args, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "recsys.finish_model_version failed");
}

/*
 * prepare: check every argument and option, take the model's next version,
 * check the source's columns.  SPI is connected.
 */
static void
PrepareRun(FunctionCallInfo fcinfo, TrainRun *run)
{
	TrainMethod method;

	memset(run, 0, sizeof(TrainRun));
	INSTR_TIME_SET_CURRENT(run->start);
	run->epoch_cpu = -1.0;
	run->model = RequiredText(fcinfo, ARG_MODEL, "model");
	ModelStoreCheckName(run->model, strlen(run->model));
	if (PG_ARGISNULL(ARG_INTERACTIONS))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("interactions must not be NULL")));
	run->src.relid = PG_GETARG_OID(ARG_INTERACTIONS);
	if (PG_ARGISNULL(ARG_USER_COLUMN))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("user column must not be NULL")));
	if (PG_ARGISNULL(ARG_ITEM_COLUMN))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("item column must not be NULL")));
	run->src.user_column = pstrdup(NameStr(*PG_GETARG_NAME(ARG_USER_COLUMN)));
	run->src.item_column = pstrdup(NameStr(*PG_GETARG_NAME(ARG_ITEM_COLUMN)));
	run->src.weight_column = PG_ARGISNULL(ARG_WEIGHT_COLUMN) ? NULL :
		pstrdup(NameStr(*PG_GETARG_NAME(ARG_WEIGHT_COLUMN)));

	if (PG_ARGISNULL(ARG_DIM))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("dim must not be NULL")));
	run->dim = PG_GETARG_INT32(ARG_DIM);
	if (run->dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dim must be at least 1")));
	method = TrainMethodFromName(RequiredText(fcinfo, ARG_METHOD, "method"));
	/* ease has no embedding dimension: dim is ignored, so the bound on it is too */
	if (method != TRAIN_EASE && run->dim > recsys_max_dim)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dim %d is more than recsys.max_dim (%d)", run->dim, recsys_max_dim)));
	if (PG_ARGISNULL(ARG_EPOCHS))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("epochs must not be NULL")));
	run->epochs = PG_GETARG_INT32(ARG_EPOCHS);
	if (run->epochs < 1 || run->epochs > TRAIN_MAX_EPOCHS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("epochs must be between 1 and %d", TRAIN_MAX_EPOCHS)));
	run->gramian_weight = RequiredDouble(fcinfo, ARG_GRAMIAN_WEIGHT, "gramian_weight");
	run->l2 = RequiredDouble(fcinfo, ARG_L2, "l2");
	/* promote is the store's option (recsys.finish_model_version), of every method */
	run->store_options = PG_ARGISNULL(ARG_OPTIONS) ? NULL : PG_GETARG_JSONB_P(ARG_OPTIONS);
	TrainOptionsResolve(method, run->store_options == NULL || !JB_ROOT_IS_OBJECT(run->store_options) ||
						JB_ROOT_IS_SCALAR(run->store_options) ? run->store_options :
						DatumGetJsonbP(DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(run->store_options),
														   CStringGetTextDatum("promote"))),
						&run->opts);

	/* the source and its columns before any work (the relation stays locked) */
	run->source_name = RecsysRelationSqlName(run->src.relid);
	InteractionsCheckSource(&run->src);

	/* numbers the version, checks the name and locks it until the transaction ends */
	run->version = NextVersion(run->model, run->store_options);
	initStringInfo(&run->log);
	appendStringInfoChar(&run->log, '[');
}

/* Append a double to JSON text (shortest exact form) */
static void
AppendJsonDouble(StringInfo s, double x)
{
	if (isnan(x) || isinf(x))
		appendStringInfoString(s, "null");
	else
		appendStringInfoString(s, float8out_internal(x));
}

/* Report one epoch: a NOTICE, a result row, an entry of the log */
static void
EmitEpoch(void *arg, int epoch, double loss, double observed, double gramian, double l2,
		  double seconds)
{
	TrainRun   *run = (TrainRun *) arg;
	Datum		values[RESULT_COLUMNS];
	bool		nulls[RESULT_COLUMNS] = {false};

	/* the time in the detail: a terse report stays the same from run to run */
	ereport(NOTICE,
			(errmsg("epoch %d/%d: loss %.4f (observed %.4f, gramian %.4f, l2 %.4f)",
					epoch, run->epochs, loss, observed, gramian, l2),
			 errdetail("The epoch took %.3f s on %d worker%s.", seconds, Max(run->workers, 1),
					   run->workers > 1 ? "s" : "")));
	values[0] = Int32GetDatum(epoch);
	values[1] = Float8GetDatum(loss);
	values[2] = Float8GetDatum(observed);
	values[3] = Float8GetDatum(gramian);
	values[4] = Float8GetDatum(l2);
	values[5] = Float8GetDatum(seconds);
	tuplestore_putvalues(run->rsinfo->setResult, run->rsinfo->setDesc, values, nulls);
	RecsysReportMemory("epoch", run->context, run->spi_context);

	if (run->log.len > 1)
		appendStringInfoString(&run->log, ", ");
	appendStringInfo(&run->log, "{\"epoch\": %d, \"loss\": ", epoch);
	AppendJsonDouble(&run->log, loss);
	appendStringInfoString(&run->log, ", \"observed_loss\": ");
	AppendJsonDouble(&run->log, observed);
	appendStringInfoString(&run->log, ", \"gramian_loss\": ");
	AppendJsonDouble(&run->log, gramian);
	appendStringInfoString(&run->log, ", \"l2_loss\": ");
	AppendJsonDouble(&run->log, l2);
	appendStringInfoString(&run->log, ", \"seconds\": ");
	AppendJsonDouble(&run->log, seconds);
	appendStringInfo(&run->log, ", \"workers\": %d", Max(run->workers, 1));
	/* CPU time too: wall time on a busy machine says little about the work */
	if (run->epoch_cpu >= 0.0)
	{
		appendStringInfoString(&run->log, ", \"cpu_seconds\": ");
		AppendJsonDouble(&run->log, CpuSeconds() - run->epoch_cpu);
	}
	appendStringInfoChar(&run->log, '}');
}

/* Compute lambda_e = l2 (n_e + w N_other)^nu for each entity of a side */
static double *
Lambdas(const TrainRun *run, int32 n, const int64 *ptr, int32 n_other)
{
	double	   *lam = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * Max(n, 1));

	for (int32 e = 0; e < n; e++)
	{
		lam[e] = run->l2 * pow((double) (ptr[e + 1] - ptr[e]) + run->gramian_weight * n_other,
							   run->opts.nu);
		if ((e & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	return lam;
}

/* Allocate and fill a side's initial vectors (EmbeddingInitVector of each id) */
static float *
InitialVectors(const TrainRun *run, int32 n, const int64 *ids, int64 seed)
{
	float	   *x = MemoryContextAllocHuge(CurrentMemoryContext,
										   sizeof(float) * Max((Size) n * run->dim, 1));

	/* dim normals per entity: a check each (dim 4096, 1M entities: ~1 minute) */
	for (int32 e = 0; e < n; e++)
	{
		EmbeddingInitVector(seed, ids[e], run->dim, run->opts.init_scale, x + (size_t) e * run->dim);
		CHECK_FOR_INTERRUPTS();
	}
	return x;
}

/* Raise the error of a failed sweep */
static void
SweepFailed(const AlsSweep *s, AlsStatus status, const char *what, const int64 *ids)
{
	if (status == ALS_SINGULAR)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("als system of %s " INT64_FORMAT " is singular", what, ids[s->failed_entity]),
				 errdetail("The Cholesky factorization failed (LAPACK info %d) after %d jitter retries.",
						   s->lapack_info, s->jitter_retries),
				 errhint("Use a positive l2.")));
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("als solution of %s " INT64_FORMAT " is out of range for real", what,
					ids[s->failed_entity]),
			 errhint("Use a larger l2.")));
}

/*
 * epochs of als on the memory engine: users from items, then items from
 * users, each sweep and Gramian on run->workers threads
 */
static void
EpochsMemory(TrainRun *run, const Interactions *data, float *x, float *y)
{
	int			k = run->dim;
	int			nw = Max(run->workers, 1);
	AlsRows		by_user = {data->n_users, data->user_ptr, data->user_items, data->user_conf};
	AlsRows		by_item = {data->n_items, data->item_ptr, data->item_users, data->item_conf};
	double	   *lam_u = Lambdas(run, data->n_users, data->user_ptr, data->n_items);
	double	   *lam_i = Lambdas(run, data->n_items, data->item_ptr, data->n_users);
	double	   *work = MemoryContextAllocHuge(CurrentMemoryContext,
											  sizeof(double) * AlsWorkDoubles(k, run->max_rows) * nw);
	double	   *gwork = MemoryContextAllocHuge(CurrentMemoryContext,
											   sizeof(double) * AlsGramianWorkDoubles(k, nw));
	double	   *g_users = palloc(sizeof(double) * k * k);
	double	   *g_items = palloc(sizeof(double) * k * k);
	AlsSweep	s;

	memset(&s, 0, sizeof(s));
	s.dim = k;
	s.gramian_weight = run->gramian_weight;
	s.solver = run->opts.solver == TRAIN_SOLVER_CG ? ALS_SOLVER_CG : ALS_SOLVER_CHOLESKY;
	s.cg_steps = run->opts.cg_steps;
	s.nworkers = nw;
	s.max_rows = run->max_rows;
	s.entity_loss = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * Max(data->n_items, 1));

	AlsGramianParallel(y, data->n_items, k, g_items, gwork, nw);
	for (int ep = 1; ep <= run->epochs; ep++)
	{
		instr_time	t0;
		AlsStatus	st;
		double		observed,
					gramian,
					l2;

		INSTR_TIME_SET_CURRENT(t0);
		run->epoch_cpu = CpuSeconds();
		ProgressPhase("users", ep, data->n_users, "users");
		ProgressWatch(&s.done, 0);
		st = AlsSolveSide(&s, &by_user, lam_u, y, g_items, x, work);
		if (st != ALS_OK)
			SweepFailed(&s, st, "user", data->user_ids);
		AlsGramianParallel(x, data->n_users, k, g_users, gwork, nw);
		/* the item sweep also sums the observed loss at the new vectors */
		s.want_observed = 1;
		s.observed = 0.0;
		ProgressPhase("items", ep, data->n_items, "items");
		ProgressWatch(&s.done, 0);
		st = AlsSolveSide(&s, &by_item, lam_i, x, g_users, y, work);
		s.want_observed = 0;
		if (st != ALS_OK)
			SweepFailed(&s, st, "item", data->item_ids);
		AlsGramianParallel(y, data->n_items, k, g_items, gwork, nw);
		observed = s.observed;
		gramian = 0.0;
		for (size_t t = 0; t < (size_t) k * k; t++)
			gramian += g_users[t] * g_items[t];
		gramian *= run->gramian_weight;
		l2 = AlsL2Loss(x, data->n_users, k, lam_u) + AlsL2Loss(y, data->n_items, k, lam_i);
		EmitEpoch(run, ep, observed + gramian + l2, observed, gramian, l2, SecondsSince(t0));
	}
	run->item_gramian = g_items;
	pfree(work);
	pfree(gwork);
	pfree(s.entity_loss);
}

/* store: the user vectors (with their seen items), then the item vectors, of the loaded ids */
static void
WriteVectors(const TrainRun *run, const Interactions *data, const float *x, const float *y)
{
	VectorRows	w = {run->model, run->version, true, run->dim, data->n_users, data->user_ids, x,
	data, TRAIN_WRITE_ROWS, 0};

	ProgressPhase("writing", 0, (int64) data->n_users + data->n_items, "vectors");
	VectorRowsWrite(&w);
	w.users = false;
	w.n = data->n_items;
	w.ids = data->item_ids;
	w.x = y;
	w.progress_base = data->n_users;
	VectorRowsWrite(&w);
}

/* Get the weights of an embeddings model: a safetensors file with item_gramian F64 [k, k] */
static bytea *
GramianWeights(const TrainRun *run)
{
	SafetensorsFile file;
	SafetensorsTensor t;
	uint64		nbytes = sizeof(double) * (uint64) run->dim * run->dim;
	const char *keys[1] = {"format"};
	const char *values[1] = {"recsys embeddings"};

	memset(&file, 0, sizeof(file));
	memset(&t, 0, sizeof(t));
	t.name = "item_gramian";
	t.dtype = ST_F64;
	t.ndim = 2;
	t.shape[0] = run->dim;
	t.shape[1] = run->dim;
	t.nelem = (uint64) run->dim * run->dim;
	t.begin = 0;
	t.end = nbytes;
	file.data = (const unsigned char *) run->item_gramian;
	file.data_len = nbytes;
	file.ntensors = 1;
	file.tensors = &t;
	return SafetensorsWrite(&file, 1, keys, values);
}

/* Append "key": "string" (or null) to JSON text */
static void
AppendJsonString(StringInfo s, const char *key, const char *value)
{
	escape_json(s, key);
	appendStringInfoString(s, ": ");
	if (value)
		escape_json(s, value);
	else
		appendStringInfoString(s, "null");
}

/* Get the models row's config and metrics (JSON text) */
static void
ModelRowValues(TrainRun *run, char **config_json, char **metrics_json)
{
	StringInfoData config;
	StringInfoData metrics;
	const char *engine = run->engine == TRAIN_ENGINE_AGGREGATE ? "aggregate" : "memory";
	bool		als = run->opts.method == TRAIN_ALS;
	const char *solver = !als ? NULL : run->engine == TRAIN_ENGINE_AGGREGATE ? "cholesky" :
		run->opts.solver == TRAIN_SOLVER_CG ? "cg" : "cholesky";
	Size		total = run->mem_indexes + run->mem_confidences + run->mem_factors;

	initStringInfo(&config);
	appendStringInfoChar(&config, '{');
	AppendJsonString(&config, "method", TrainMethodName(run->opts.method));
	appendStringInfo(&config, ", \"dim\": %d, \"epochs\": %d, \"gramian_weight\": ", run->dim, run->epochs);
	AppendJsonDouble(&config, run->gramian_weight);
	appendStringInfoString(&config, ", \"l2\": ");
	AppendJsonDouble(&config, run->l2);
	appendStringInfo(&config, ", \"options\": %s, ", run->opts.json);
	AppendJsonString(&config, "engine", engine);
	appendStringInfoString(&config, ", ");
	AppendJsonString(&config, "solver", solver);
	appendStringInfoString(&config, ", \"source\": {");
	AppendJsonString(&config, "table", run->source_name);
	appendStringInfoString(&config, ", ");
	AppendJsonString(&config, "user_column", run->src.user_column);
	appendStringInfoString(&config, ", ");
	AppendJsonString(&config, "item_column", run->src.item_column);
	appendStringInfoString(&config, ", ");
	AppendJsonString(&config, "weight_column", run->src.weight_column);
	appendStringInfoString(&config, "}, ");
	if (run->distributed)
		appendStringInfoString(&config, "\"distributed\": true, ");
	AppendJsonString(&config, "objective",
					 "sum_observed c (<x,y> - 1)^2 + gramian_weight * sum_unobserved <x,y>^2 + sum lambda |x|^2");
	appendStringInfoString(&config, ", ");
	AppendJsonString(&config, "regularization", "lambda = l2 * (n + gramian_weight * N_other)^nu");
	appendStringInfoString(&config, ", ");
	AppendJsonString(&config, "gramian", "entity (each user and item counted once: X^T X, Y^T Y)");
	appendStringInfo(&config, ", \"n_users\": %d, \"n_items\": %d, \"n_interactions\": " INT64_FORMAT
					 ", \"n_rows\": " INT64_FORMAT "}",
					 run->n_users, run->n_items, run->nnz, run->n_rows);

	initStringInfo(&metrics);
	appendStringInfo(&metrics, "{\"log\": %s], \"train_seconds\": ", run->log.data);
	AppendJsonDouble(&metrics, SecondsSince(run->start));
	appendStringInfoString(&metrics, ", \"load_seconds\": ");
	AppendJsonDouble(&metrics, run->load_seconds);
	appendStringInfoString(&metrics, ", ");
	AppendJsonString(&metrics, "engine", engine);
	if (run->engine != TRAIN_ENGINE_AGGREGATE)
		appendStringInfo(&metrics, ", \"memory_bytes\": %zu, \"memory\": {\"indexes\": %zu,"
						 " \"confidences\": %zu, \"factors\": %zu}, \"workers\": %d, \"scratch_bytes\": %zu",
						 total, run->mem_indexes, run->mem_confidences, run->mem_factors,
						 Max(run->workers, 1), run->mem_scratch);
	appendStringInfoChar(&metrics, '}');

	*config_json = config.data;
	*metrics_json = metrics.data;
}

/*
 * store: the models row of the new version (config, weights, metrics), or
 * with update the final ones of a models row stored first
 */
static void
StoreModel(TrainRun *run, bool update)
{
	char	   *config;
	char	   *metrics;

	ModelRowValues(run, &config, &metrics);
	ModelRowWrite(run->model, run->version, "embeddings", config, GramianWeights(run), metrics, update);
}

/* Record the memory of the loaded structures and the factors */
static void
CountMemory(TrainRun *run, const Interactions *data, int factor_copies)
{
	run->n_users = data->n_users;
	run->n_items = data->n_items;
	run->nnz = data->nnz;
	run->n_rows = data->n_rows;
	run->mem_indexes = (Size) (data->n_users + data->n_items) * (2 * sizeof(int64))
		+ 2 * sizeof(int64) + (Size) data->nnz * 2 * sizeof(int32);
	run->mem_confidences = (Size) data->nnz * 2 * sizeof(float);
	run->mem_factors = (Size) factor_copies * (data->n_users + data->n_items) * run->dim * sizeof(float);
}

/*
 * Bytes per entity the trainer adds to the loaded rows: factors (copies of
 * them), lambda, and the SGD state
 */
static Size
PerEntityBytes(const TrainRun *run)
{
	Size		factors = (Size) run->dim * sizeof(float);

	if (run->opts.method == TRAIN_ALS)
		return factors + sizeof(double);
	return (run->opts.method == TRAIN_SAGRAM ? 2 : 1) * factors + sizeof(double)
		+ sizeof(float) + sizeof(int64) + sizeof(int32);
}

/* Get the training memory budget in bytes (recsys.training_memory) */
static Size
TrainingBudget(void)
{
	return (Size) recsys_training_memory * 1024;
}

/* Format a byte count for messages */
static char *
Bytes(Size n)
{
	return n >= 10 * 1024 * 1024 ? psprintf("%zu MB", n / (1024 * 1024)) : psprintf("%zu kB", (n + 1023) / 1024);
}

/*
 * Get the bytes the memory engine's ALS loops add for w threads: each
 * thread's workspace, the Gramian's partial sums and row buffers, one loss
 * per entity
 */
static Size
AlsScratchBytes(const TrainRun *run, const Interactions *data, int w)
{
	return sizeof(double) * (AlsWorkDoubles(run->dim, run->max_rows) * w
							 + AlsGramianWorkDoubles(run->dim, w)
							 + (Size) Max(data->n_items, 1));
}

/*
 * Pick the threads of als on the memory engine: recsys.max_workers, fewer
 * when their scratch would pass the budget; returns false when not even
 * one thread's fits
 */
static bool
PlanWorkers(TrainRun *run, const Interactions *data, Size budget, Size needed)
{
	int			w = RecsysWorkers();

	run->max_rows = 0;
	for (int32 u = 0; u < data->n_users; u++)
		run->max_rows = Max(run->max_rows, data->user_ptr[u + 1] - data->user_ptr[u]);
	for (int32 i = 0; i < data->n_items; i++)
		run->max_rows = Max(run->max_rows, data->item_ptr[i + 1] - data->item_ptr[i]);
	while (w > 1 && needed + AlsScratchBytes(run, data, w) > budget)
		w--;
	run->workers = w;
	run->mem_scratch = AlsScratchBytes(run, data, w);
	return needed + run->mem_scratch <= budget;
}

/* Free what InteractionsLoad kept */
static void
FreeInteractions(Interactions *data)
{
	pfree(data->user_ids);
	pfree(data->item_ids);
	pfree(data->user_ptr);
	pfree(data->user_items);
	pfree(data->user_conf);
	pfree(data->item_ptr);
	pfree(data->item_users);
	pfree(data->item_conf);
}

/*
 * Load the interactions for the memory engine or an SGD method; returns
 * false (the rows read and checked, nothing kept) when they do not fit
 * the budget
 */
static bool
LoadForMemory(TrainRun *run, Interactions *data, Size budget)
{
	instr_time	t0;
	Size		needed;
	bool		fits;

	INSTR_TIME_SET_CURRENT(t0);
	fits = InteractionsLoad(&run->src, data, budget, PerEntityBytes(run), &needed);
	run->load_seconds = SecondsSince(t0);
	run->n_rows = data->n_rows;
	if (fits && run->opts.method == TRAIN_ALS && !PlanWorkers(run, data, budget, needed))
	{
		needed += run->mem_scratch;
		FreeInteractions(data);
		fits = false;
	}
	if (fits)
	{
		CountMemory(run, data, run->opts.method == TRAIN_SAGRAM ? 2 : 1);
		ereport(NOTICE,
				(errmsg("loaded " INT64_FORMAT " interactions (%d users, %d items) from " INT64_FORMAT
						" rows; engine memory %s (indexes %s, confidences %s, factors %s)",
						data->nnz, data->n_users, data->n_items, data->n_rows,
						Bytes(run->mem_indexes + run->mem_confidences + run->mem_factors),
						Bytes(run->mem_indexes), Bytes(run->mem_confidences), Bytes(run->mem_factors)),
				 errdetail("Reading and checking took %.3f s.", run->load_seconds)));
	}
	else if (run->opts.method != TRAIN_ALS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("interactions of %s do not fit in recsys.training_memory", run->source_name),
				 errdetail("Training needs at least %s; recsys.training_memory is %s.",
						   Bytes(needed), Bytes(budget)),
				 errhint("Raise recsys.training_memory.")));
	else
		ereport(NOTICE,
				(errmsg("interactions of %s do not fit in recsys.training_memory (%s): using the aggregate engine",
						run->source_name, Bytes(budget)),
				 errdetail("The memory engine needs at least %s.", Bytes(needed)),
				 errhint("Raise recsys.training_memory, or set options.engine.")));
	return fits;
}

/*
 * Run one statement of the aggregate engine; returns SPI_processed.  The
 * caller's memory context stays current (SPI would leave its own, where
 * an epoch's allocations would outlive the epoch); a SELECT's result is
 * freed by the caller once read (RecsysSpiFreeResult).
 */
static uint64
Exec(const char *sql, int nargs, Oid *types, Datum *args, int expect)
{
	MemoryContext caller = CurrentMemoryContext;
	int			rc;

	rc = nargs > 0 ? SPI_execute_with_args(sql, nargs, types, args, NULL, false, 0)
		: SPI_execute(sql, false, 0);
	MemoryContextSwitchTo(caller);
	if (rc != expect)
		elog(ERROR, "SPI_execute failed (%s) for \"%s\"", SPI_result_code_string(rc), sql);
	return SPI_processed;
}

/* Get column 1 of the single row of the last query as a copied Datum (NULL: isnull) */
static Datum
FirstValue(int col, bool *isnull, MemoryContext context)
{
	Datum		d;
	MemoryContext old;

	if (SPI_processed != 1)
		elog(ERROR, "expected one row, got " UINT64_FORMAT, SPI_processed);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, isnull);
	if (*isnull)
		return (Datum) 0;
	/* datumCopy, not SPI_datumTransfer: that copies into SPI's caller's context */
	old = MemoryContextSwitchTo(context);
	d = datumCopy(d, TupleDescAttr(SPI_tuptable->tupdesc, col - 1)->attbyval,
				  TupleDescAttr(SPI_tuptable->tupdesc, col - 1)->attlen);
	MemoryContextSwitchTo(old);
	return d;
}

/*
 * Fill the item-vector work table `into` with the deterministic initial
 * vectors of the ids in `from` (the memory engine's), and get their Gramian
 * (a float8[][] Datum in context)
 */
static Datum
SeedItemVectors(const TrainRun *run, const char *into, const char *from, bool analyze,
				MemoryContext context)
{
	Oid			types[3] = {INT4OID, INT8OID, FLOAT8OID};
	Datum		args[3];
	bool		isnull;
	Datum		g;

	args[0] = Int32GetDatum(run->dim);
	args[1] = Int64GetDatum(run->opts.seed * 2 + 1);
	args[2] = Float8GetDatum(run->opts.init_scale);
	Exec(psprintf("INSERT INTO %s (id, v) SELECT e.id, recsys.embedding_init(e.id, $1, $2, $3)"
				  " FROM %s e", into, from), 3, types, args, SPI_OK_INSERT);
	if (analyze)
		Exec(psprintf("ANALYZE %s (id)", into), 0, NULL, NULL, SPI_OK_UTILITY);
	Exec(psprintf("SELECT recsys.gramian(t.v) FROM %s t", into), 0, NULL, NULL, SPI_OK_SELECT);
	g = FirstValue(1, &isnull, context);
	RecsysSpiFreeResult();
	return g;
}

/*
 * Close an epoch of an aggregate engine: the Gramian term w <Gu, Gi>_F from
 * the two sides' Gramians, the item Gramian kept for the model, the epoch row
 */
static void
FinishAggregateEpoch(TrainRun *run, int epoch, Datum g_users, Datum g_items, double observed,
					 double l2, instr_time t0)
{
	int			rows,
				cols;
	double	   *gu = MatrixGetDoubles(DatumGetArrayTypeP(g_users), &rows, &cols);
	double	   *gi = MatrixGetDoubles(DatumGetArrayTypeP(g_items), &rows, &cols);
	double		gramian = run->gramian_weight * LinalgDot(rows * cols, gu, gi);

	if (rows != run->dim || cols != run->dim)
		elog(ERROR, "item gramian is %d x %d, not %d x %d", rows, cols, run->dim, run->dim);
	/* into the run's own k x k buffer: nothing of an epoch outlives it */
	memcpy(run->item_gramian, gi, sizeof(double) * rows * cols);
	pfree(gu);
	pfree(gi);
	EmitEpoch(run, epoch, observed + gramian + l2, observed, gramian, l2, SecondsSince(t0));
}

/* Get a count of distinct users or items, raising an error past the dense index range */
static int32
EntityCount(uint64 n, const char *what)
{
	if (n > (uint64) INTERACTIONS_MAX_ENTITIES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct %ss for training: " UINT64_FORMAT, what, n),
				 errdetail("At most " INT64_FORMAT " are supported.", INTERACTIONS_MAX_ENTITIES)));
	return (int32) n;
}

/*
 * End an epoch of an aggregate engine: keep its item Gramian (the next
 * epoch's argument) in keep, free everything else the epoch made; returns
 * the kept Gramian, and leaves the run's context current
 */
static Datum
NextEpoch(Datum g_items, MemoryContext keep, MemoryContext epoch, MemoryContext context)
{
	Datum		kept;

	MemoryContextReset(keep);
	MemoryContextSwitchTo(keep);
	kept = datumCopy(g_items, false, -1);
	MemoryContextSwitchTo(context);
	RecsysSpiBatchEnd(epoch);
	return kept;
}

/*
 * The aggregate engine's work: its work tables (in pg_temp, or distributed
 * in a schema of this call) and the statements of an epoch over them.  The
 * epoch body (AggregateEpochs) is the same for both; only these differ.
 * Side 0 is users, side 1 items.
 */
typedef struct AggregateWork
{
	char	   *pre;			/* prefix of the work tables' names */
	char	   *schema;			/* the schema to drop at the end (distributed), or NULL */
	char	   *vectors[2];		/* the work tables of each side's vectors (id, v, part) */
	char	   *entities[2];	/* those of each side's entities (id, n, lam) */
	char	   *truncate[2];	/* empty a side's work tables before its solves */
	char	   *move[2];		/* bring the other side's vectors to the pairs, or NULL */
	char	   *solve[2];		/* one als_solve per entity into the side's vectors */
	char	   *analyze[2];		/* statistics of the new vectors, or NULL */
	char	   *gramian[2];		/* their Gramian (items: and the observed loss) */
	char	   *l2[2];			/* the side's sum of lambda |v|^2 */
	char	   *drop;			/* drop the work tables */
	/* an epoch's memory, and the item Gramian it hands to the next */
	MemoryContext epoch;
	MemoryContext keep;
} AggregateWork;

/* Name the work tables: pre followed by the names of each side's vectors and entities */
static void
WorkNames(AggregateWork *w, char *pre, const char *xu, const char *yi, const char *eu, const char *ei)
{
	w->pre = pre;
	w->vectors[0] = psprintf("%s%s", pre, xu);
	w->vectors[1] = psprintf("%s%s", pre, yi);
	w->entities[0] = psprintf("%s%s", pre, eu);
	w->entities[1] = psprintf("%s%s", pre, ei);
}

/* Get the SQL expression of a source row's weight (1 without a weight column) */
static char *
WeightExpr(const TrainRun *run)
{
	if (run->src.weight_column == NULL)
		return pstrdup("CAST(1 AS pg_catalog.float8)");
	return psprintf("CAST(%s AS pg_catalog.float8)", quote_identifier(run->src.weight_column));
}

/*
 * Set each entity's lambda (l2 * (n + gramian_weight * N_other)^nu) in the
 * entity work tables
 */
static void
SetLambdas(const TrainRun *run, const AggregateWork *w)
{
	Oid			types[3] = {FLOAT8OID, FLOAT8OID, FLOAT8OID};
	Datum		args[3];

	args[0] = Float8GetDatum(run->l2);
	args[2] = Float8GetDatum(run->opts.nu);
	args[1] = Float8GetDatum(run->gramian_weight * run->n_items);
	Exec(psprintf("UPDATE %s e SET lam = $1 OPERATOR(pg_catalog.*)"
				  " pg_catalog.power(e.n OPERATOR(pg_catalog.+) $2, $3)", w->entities[0]),
		 3, types, args, SPI_OK_UPDATE);
	args[1] = Float8GetDatum(run->gramian_weight * run->n_users);
	Exec(psprintf("UPDATE %s e SET lam = $1 OPERATOR(pg_catalog.*)"
				  " pg_catalog.power(e.n OPERATOR(pg_catalog.+) $2, $3)", w->entities[1]),
		 3, types, args, SPI_OK_UPDATE);
}

/*
 * Fill a side's solve: one als_solve per entity (key) over the rows of
 * from, with args the aggregate's arguments; items also keep each solve's
 * part of the observed loss
 */
static void
SolveStatement(AggregateWork *w, int side, const char *key, const char *args, const char *from)
{
	if (side == 0)
		w->solve[0] = psprintf("INSERT INTO %s (id, v) SELECT %s, recsys.als_solve(%s) FROM %s GROUP BY %s",
							   w->vectors[0], key, args, from, key);
	else
		w->solve[1] = psprintf("INSERT INTO %s (id, v, part) SELECT s.i, CAST(s.r[1:$3] AS pg_catalog.float4[]), s.r[$4]"
							   " FROM (SELECT %s, recsys.als_solve_objective(%s) AS r FROM %s GROUP BY %s) s",
							   w->vectors[1], key, args, from, key);
}

/* Fill the statements every engine words alike: a side's Gramian and l2 sum */
static void
CommonStatements(AggregateWork *w)
{
	w->gramian[0] = psprintf("SELECT recsys.gramian(t.v) FROM %s t", w->vectors[0]);
	w->gramian[1] = psprintf("SELECT recsys.gramian(t.v), pg_catalog.sum(t.part) FROM %s t", w->vectors[1]);
	for (int side = 0; side < 2; side++)
		w->l2[side] = psprintf("SELECT pg_catalog.sum(e.lam OPERATOR(pg_catalog.*) recsys.dot(t.v, t.v))"
							   " FROM %s t JOIN %s e ON e.id OPERATOR(pg_catalog.=) t.id",
							   w->vectors[side], w->entities[side]);
}

/*
 * prepare of the local aggregate engine: work tables in pg_temp whose names
 * are unique to this call (backend pid and a counter), dropped at the end;
 * the pairs, entities with their lambda, and two copies of the pairs
 * clustered by each side
 */
static void
AggregateSetupLocal(TrainRun *run, AggregateWork *w)
{
	static uint32 calls = 0;
	char	   *pre = psprintf("pg_temp.recsys_train_%d_%u_", MyProcPid, ++calls);
	char	   *plain = pre + strlen("pg_temp.");

	WorkNames(w, pre, "u", "v", "users", "items");
	/* distinct pairs of positive weight; entities with their lambda */
	Exec(psprintf("CREATE TEMP TABLE %spairs ON COMMIT DROP AS"
				  " SELECT s.u AS u, s.i AS i, pg_catalog.sum(s.w) AS c"
				  " FROM (SELECT CAST(%s AS pg_catalog.int8) AS u, CAST(%s AS pg_catalog.int8) AS i,"
				  " %s AS w FROM %s) s GROUP BY 1, 2 HAVING pg_catalog.sum(s.w) OPERATOR(pg_catalog.>) 0",
				  plain, quote_identifier(run->src.user_column), quote_identifier(run->src.item_column),
				  WeightExpr(run), run->source_name), 0, NULL, NULL, SPI_OK_UTILITY);
	run->nnz = (int64) SPI_processed;
	Exec(psprintf("CREATE TEMP TABLE %susers ON COMMIT DROP AS"
				  " SELECT p.u AS id, CAST(pg_catalog.count(*) AS pg_catalog.float8) AS n,"
				  " CAST(NULL AS pg_catalog.float8) AS lam FROM %spairs p GROUP BY p.u",
				  plain, pre), 0, NULL, NULL, SPI_OK_UTILITY);
	run->n_users = EntityCount(SPI_processed, "user");
	Exec(psprintf("CREATE TEMP TABLE %sitems ON COMMIT DROP AS"
				  " SELECT p.i AS id, CAST(pg_catalog.count(*) AS pg_catalog.float8) AS n,"
				  " CAST(NULL AS pg_catalog.float8) AS lam FROM %spairs p GROUP BY p.i",
				  plain, pre), 0, NULL, NULL, SPI_OK_UTILITY);
	run->n_items = EntityCount(SPI_processed, "item");
	SetLambdas(run, w);

	/*
	 * Two copies of the pairs, clustered and indexed by each side, each
	 * carrying that side's lambda (a constant of its group): an index scan
	 * then feeds als_solve its groups in order through a memoized lookup of
	 * the other side's vectors, with no sort of the joined rows.
	 */
	Exec(psprintf("CREATE TEMP TABLE %sby_user ON COMMIT DROP AS"
				  " SELECT p.u, p.i, p.c, us.lam AS lu FROM %spairs p JOIN %susers us"
				  " ON us.id OPERATOR(pg_catalog.=) p.u ORDER BY p.u, p.i", plain, pre, pre),
		 0, NULL, NULL, SPI_OK_UTILITY);
	Exec(psprintf("CREATE INDEX ON %sby_user (u)", pre), 0, NULL, NULL, SPI_OK_UTILITY);
	Exec(psprintf("ANALYZE %sby_user", pre), 0, NULL, NULL, SPI_OK_UTILITY);
	Exec(psprintf("CREATE TEMP TABLE %sby_item ON COMMIT DROP AS"
				  " SELECT p.i, p.u, p.c, it.lam AS li FROM %spairs p JOIN %sitems it"
				  " ON it.id OPERATOR(pg_catalog.=) p.i ORDER BY p.i, p.u", plain, pre, pre),
		 0, NULL, NULL, SPI_OK_UTILITY);
	Exec(psprintf("CREATE INDEX ON %sby_item (i)", pre), 0, NULL, NULL, SPI_OK_UTILITY);
	Exec(psprintf("ANALYZE %sby_item", pre), 0, NULL, NULL, SPI_OK_UTILITY);
	Exec(psprintf("CREATE TEMP TABLE %su (id pg_catalog.int8 PRIMARY KEY, v pg_catalog.float4[],"
				  " part pg_catalog.float8) ON COMMIT DROP", plain), 0, NULL, NULL, SPI_OK_UTILITY);
	Exec(psprintf("CREATE TEMP TABLE %sv (id pg_catalog.int8 PRIMARY KEY, v pg_catalog.float4[],"
				  " part pg_catalog.float8) ON COMMIT DROP", plain), 0, NULL, NULL, SPI_OK_UTILITY);

	/* users from items, then items from users (als_solve per sorted group) */
	for (int side = 0; side < 2; side++)
	{
		w->truncate[side] = psprintf("TRUNCATE %s", w->vectors[side]);
		w->analyze[side] = psprintf("ANALYZE %s (id)", w->vectors[side]);
	}
	SolveStatement(w, 0, "p.u", "t.v, p.c, $1, $2, p.lu",
				   psprintf("%sby_user p JOIN %s t ON t.id OPERATOR(pg_catalog.=) p.i", pre, w->vectors[1]));
	SolveStatement(w, 1, "p.i", "t.v, p.c, $1, $2, p.li",
				   psprintf("%sby_item p JOIN %s t ON t.id OPERATOR(pg_catalog.=) p.u", pre, w->vectors[0]));
	CommonStatements(w);
	w->drop = psprintf("DROP TABLE %spairs, %susers, %sitems, %sby_user, %sby_item, %su, %sv",
					   pre, pre, pre, pre, pre, pre, pre);
}

/*
 * Get whether the interactions are a hash-distributed Citus table (read
 * from Citus's catalog through SPI, only when the extension exists: no
 * link-time dependency on Citus)
 */
static bool
IsDistributedSource(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};

	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension"
					" WHERE extname OPERATOR(pg_catalog.=) 'citus'", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading pg_extension failed");
	if (SPI_processed == 0)
		return false;
	if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_dist_partition"
							  " WHERE CAST(logicalrelid AS pg_catalog.oid) OPERATOR(pg_catalog.=) $1"
							  " AND partmethod OPERATOR(pg_catalog.=) 'h'",
							  1, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading pg_dist_partition failed");
	return SPI_processed > 0;
}

/* Get a count from column col of the single row of the last query */
static int64
CountValue(int col, MemoryContext context)
{
	bool		isnull;
	Datum		d = FirstValue(col, &isnull, context);

	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * Create a work table of the distributed engine, hash-distributed by its
 * first column (int8: every work table lands in one colocation group)
 */
static void
DistributedWorkTable(const char *pre, const char *name, const char *key, const char *columns)
{
	char	   *qualified = psprintf("%s%s", pre, name);

	Exec(psprintf("CREATE TABLE %s (%s pg_catalog.int8, %s)", qualified, key, columns),
		 0, NULL, NULL, SPI_OK_UTILITY);
	Exec(psprintf("SELECT pg_catalog.create_distributed_table(%s, %s)",
				  quote_literal_cstr(qualified), quote_literal_cstr(key)),
		 0, NULL, NULL, SPI_OK_SELECT);
}

/* The loader's checks of the source's rows, counted on the workers (distributed engine) */
static void
DistributedChecks(TrainRun *run, const char *ucol, const char *icol, const char *wexpr,
				  MemoryContext context)
{
	RowChecks	checks;
	int64		positive;

	Exec(psprintf("SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE s.u IS NULL),"
				  " pg_catalog.count(*) FILTER (WHERE s.i IS NULL),"
				  " pg_catalog.count(*) FILTER (WHERE s.w IS NULL),"
				  " pg_catalog.count(*) FILTER (WHERE s.w OPERATOR(pg_catalog.=) ANY"
				  " (CAST('{NaN,Infinity,-Infinity}' AS pg_catalog.float8[]))),"
				  " pg_catalog.count(*) FILTER (WHERE s.w OPERATOR(pg_catalog.<) 0),"
				  " pg_catalog.count(*) FILTER (WHERE s.w OPERATOR(pg_catalog.>) 0"
				  " AND s.u IS NOT NULL AND s.i IS NOT NULL)"
				  " FROM (SELECT %s AS u, %s AS i, %s AS w FROM %s) s",
				  ucol, icol, wexpr, run->source_name), 0, NULL, NULL, SPI_OK_SELECT);
	run->n_rows = CountValue(1, context);
	checks.null_user = CountValue(2, context);
	checks.null_item = CountValue(3, context);
	checks.null_weight = CountValue(4, context);
	checks.bad_weight = CountValue(5, context);
	checks.neg_weight = CountValue(6, context);
	positive = CountValue(7, context);
	InteractionsReportBadRows(&run->src, &checks, positive);
}

/*
 * prepare of the aggregate engine over distributed interactions (Citus):
 * work tables distributed in a schema this call creates and drops
 * (temporary tables cannot be distributed; a rollback removes the schema
 * and its shards on every node).  Pairs and entities are distributed by
 * user and, in a copy, by item, all in one colocation group; each half
 * epoch moves the other side's vectors to the pairs (a repartitioned
 * INSERT .. SELECT), solves per entity with als_solve GROUP BY the
 * distribution column (whole on the workers), and sums the k x k Gramian
 * through Citus's partial aggregation.  The coordinator keeps the Gramians
 * and the loop.  Every statement runs unprepared (SPI_execute*): Citus's
 * cached plans of repartitioned INSERT .. SELECT can insert stale rows.
 */
static void
AggregateSetupDistributed(TrainRun *run, AggregateWork *w, MemoryContext context)
{
	static uint32 calls = 0;
	char	   *schema = psprintf("recsys_train_%d_%u", MyProcPid, ++calls);
	char	   *pre = psprintf("%s.", quote_identifier(schema));
	const char *ucol = quote_identifier(run->src.user_column);
	const char *icol = quote_identifier(run->src.item_column);
	char	   *wexpr = WeightExpr(run);

	WorkNames(w, pre, "xu", "yi", "eu", "ei");
	w->schema = schema;

	/*
	 * The models row first: Citus refuses to write a reference table that
	 * others reference once a parallel operation ran in the transaction.
	 * Its weights and metrics are updated at the end.
	 */
	StoreModel(run, false);
	/* the schema before any parallel operation too (Citus's rule for schema DDL) */
	Exec(psprintf("CREATE SCHEMA %s", quote_identifier(schema)), 0, NULL, NULL, SPI_OK_UTILITY);
	DistributedChecks(run, ucol, icol, wexpr, context);

	DistributedWorkTable(pre, "raw", "u", "i pg_catalog.int8, c pg_catalog.float8");
	DistributedWorkTable(pre, "pu", "u", "i pg_catalog.int8, c pg_catalog.float8");
	DistributedWorkTable(pre, "pi", "i", "u pg_catalog.int8, c pg_catalog.float8");
	DistributedWorkTable(pre, "eu", "id", "n pg_catalog.float8, lam pg_catalog.float8");
	DistributedWorkTable(pre, "ei", "id", "n pg_catalog.float8, lam pg_catalog.float8");
	DistributedWorkTable(pre, "xu", "id", "v pg_catalog.float4[], part pg_catalog.float8");
	DistributedWorkTable(pre, "yi", "id", "v pg_catalog.float4[], part pg_catalog.float8");
	DistributedWorkTable(pre, "ru", "u", "c pg_catalog.float8, v pg_catalog.float4[]");
	DistributedWorkTable(pre, "ri", "i", "c pg_catalog.float8, v pg_catalog.float4[]");

	/* distinct pairs of positive weight, by user and by item; entities with their lambda */
	Exec(psprintf("INSERT INTO %sraw (u, i, c) SELECT CAST(%s AS pg_catalog.int8),"
				  " CAST(%s AS pg_catalog.int8), %s FROM %s",
				  pre, ucol, icol, wexpr, run->source_name), 0, NULL, NULL, SPI_OK_INSERT);
	Exec(psprintf("INSERT INTO %spu (u, i, c) SELECT r.u, r.i, pg_catalog.sum(r.c) FROM %sraw r"
				  " GROUP BY r.u, r.i HAVING pg_catalog.sum(r.c) OPERATOR(pg_catalog.>) 0", pre, pre),
		 0, NULL, NULL, SPI_OK_INSERT);
	Exec(psprintf("TRUNCATE %sraw", pre), 0, NULL, NULL, SPI_OK_UTILITY);
	Exec(psprintf("INSERT INTO %spi (i, u, c) SELECT p.i, p.u, p.c FROM %spu p", pre, pre),
		 0, NULL, NULL, SPI_OK_INSERT);
	Exec(psprintf("INSERT INTO %seu (id, n) SELECT p.u, CAST(pg_catalog.count(*) AS pg_catalog.float8)"
				  " FROM %spu p GROUP BY p.u", pre, pre), 0, NULL, NULL, SPI_OK_INSERT);
	Exec(psprintf("INSERT INTO %sei (id, n) SELECT p.i, CAST(pg_catalog.count(*) AS pg_catalog.float8)"
				  " FROM %spi p GROUP BY p.i", pre, pre), 0, NULL, NULL, SPI_OK_INSERT);
	Exec(psprintf("SELECT (SELECT pg_catalog.count(*) FROM %spu), (SELECT pg_catalog.count(*) FROM %seu),"
				  " (SELECT pg_catalog.count(*) FROM %sei)", pre, pre, pre), 0, NULL, NULL, SPI_OK_SELECT);
	run->nnz = CountValue(1, context);
	run->n_users = EntityCount((uint64) CountValue(2, context), "user");
	run->n_items = EntityCount((uint64) CountValue(3, context), "item");
	SetLambdas(run, w);

	/* item vectors to the pairs by user (repartitioned), then per-user solves */
	w->truncate[0] = psprintf("TRUNCATE %sru, %sxu", pre, pre);
	w->move[0] = psprintf("INSERT INTO %sru (u, c, v) SELECT p.u, p.c, t.v FROM %spi p JOIN %syi t"
						  " ON t.id OPERATOR(pg_catalog.=) p.i", pre, pre, pre);
	SolveStatement(w, 0, "r.u", "r.v, r.c, $1, $2, e.lam",
				   psprintf("%sru r JOIN %s e ON e.id OPERATOR(pg_catalog.=) r.u", pre, w->entities[0]));
	/* user vectors to the pairs by item, then per-item solves with their observed loss */
	w->truncate[1] = psprintf("TRUNCATE %sri, %syi", pre, pre);
	w->move[1] = psprintf("INSERT INTO %sri (i, c, v) SELECT p.i, p.c, t.v FROM %spu p JOIN %sxu t"
						  " ON t.id OPERATOR(pg_catalog.=) p.u", pre, pre, pre);
	SolveStatement(w, 1, "r.i", "r.v, r.c, $1, $2, e.lam",
				   psprintf("%sri r JOIN %s e ON e.id OPERATOR(pg_catalog.=) r.i", pre, w->entities[1]));
	CommonStatements(w);
	/* by name: DROP SCHEMA CASCADE would list every table in a NOTICE */
	w->drop = psprintf("DROP TABLE %sraw, %spu, %spi, %seu, %sei, %sxu, %syi, %sru, %sri",
					   pre, pre, pre, pre, pre, pre, pre, pre, pre);
}

/* Get a side's l2 sum of the last epoch (an empty side sums to NULL: 0) */
static double
SideL2(const AggregateWork *w, int side)
{
	bool		isnull;
	Datum		d;

	Exec(w->l2[side], 0, NULL, NULL, SPI_OK_SELECT);
	d = FirstValue(1, &isnull, w->epoch);
	RecsysSpiFreeResult();
	return isnull ? 0.0 : DatumGetFloat8(d);
}

/*
 * epochs of the aggregate engine, local or distributed: per side, users
 * from items then items from users, the work tables emptied, the other
 * side's vectors moved to the pairs where the engine needs it, one
 * als_solve per entity, the side's Gramian read back; then the l2 term.
 * g_items is the initial item vectors' Gramian.
 */
static void
AggregateEpochs(TrainRun *run, const AggregateWork *w, Datum g_items, MemoryContext context)
{
	Oid			types[4] = {FLOAT8ARRAYOID, FLOAT8OID, INT4OID, INT4OID};
	Datum		args[4];
	bool		isnull;

	args[1] = Float8GetDatum(run->gramian_weight);
	args[2] = Int32GetDatum(run->dim);
	args[3] = Int32GetDatum(run->dim + 1);
	for (int ep = 1; ep <= run->epochs; ep++)
	{
		instr_time	t0;
		Datum		g[2] = {0, 0};
		double		observed = 0.0;
		double		l2;

		MemoryContextSwitchTo(w->epoch);
		INSTR_TIME_SET_CURRENT(t0);
		run->epoch_cpu = CpuSeconds();
		for (int side = 0; side < 2; side++)
		{
			ProgressPhase(side == 0 ? "users" : "items", ep, side == 0 ? run->n_users : run->n_items,
						  side == 0 ? "users" : "items");
			Exec(w->truncate[side], 0, NULL, NULL, SPI_OK_UTILITY);
			if (w->move[side])
				Exec(w->move[side], 0, NULL, NULL, SPI_OK_INSERT);
			/* $1 the other side's Gramian, $2 its weight; items: $3, $4 split the objective */
			args[0] = side == 0 ? g_items : g[0];
			Exec(w->solve[side], side == 0 ? 2 : 4, types, args, SPI_OK_INSERT);
			if (w->analyze[side])
				Exec(w->analyze[side], 0, NULL, NULL, SPI_OK_UTILITY);
			Exec(w->gramian[side], 0, NULL, NULL, SPI_OK_SELECT);
			g[side] = FirstValue(1, &isnull, w->epoch);
			if (side == 1)
				observed = DatumGetFloat8(FirstValue(2, &isnull, w->epoch));
			RecsysSpiFreeResult();
			if (side == 0)
				ProgressSet(run->n_users);
		}
		l2 = SideL2(w, 0);
		l2 += SideL2(w, 1);
		ProgressSet(run->n_items);
		FinishAggregateEpoch(run, ep, g[0], g[1], observed, l2, t0);
		g_items = NextEpoch(g[1], w->keep, w->epoch, context);
	}
}

/* store of the local aggregate engine: the models row, the vectors from the work tables */
static void
AggregateStoreLocal(TrainRun *run, const AggregateWork *w)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		args[2];
	const char *pre = w->pre;

	ProgressPhase("writing", 0, (int64) run->n_users + run->n_items, "vectors");
	args[0] = CStringGetTextDatum(run->model);
	args[1] = Int32GetDatum(run->version);
	StoreModel(run, false);
	/* RETURNING: see vector_rows.c */
	Exec(psprintf("INSERT INTO recsys.user_vectors (model, version, id, embedding, seen)"
				  " SELECT $1, $2, t.id, t.v, s.seen FROM %su t"
				  " JOIN (SELECT p.u, pg_catalog.array_agg(p.i ORDER BY p.i) AS seen FROM %spairs p GROUP BY p.u) s"
				  " ON s.u OPERATOR(pg_catalog.=) t.id RETURNING 1", pre, pre), 2, types, args,
		 SPI_OK_INSERT_RETURNING);
	RecsysSpiFreeResult();
	Exec(psprintf("INSERT INTO recsys.item_vectors (model, version, id, embedding)"
				  " SELECT $1, $2, t.id, t.v FROM %sv t RETURNING 1", pre), 2, types, args,
		 SPI_OK_INSERT_RETURNING);
	RecsysSpiFreeResult();
	ProgressSet((int64) run->n_users + run->n_items);
}

/*
 * store of the distributed engine: the vectors from the work tables
 * (RETURNING: see vector_rows.c), in slices of ids: Citus gathers each slice
 * on the coordinator to write the reference tables, and its memory grows
 * with the slice; then the final config, weights and metrics of the models
 * row stored first
 */
static void
AggregateStoreDistributed(TrainRun *run, const AggregateWork *w, MemoryContext context)
{
	Oid			types[4] = {TEXTOID, INT4OID, INT8OID, INT8OID};
	Datum		args[4];
	const char *pre = w->pre;

	args[0] = CStringGetTextDatum(run->model);
	args[1] = Int32GetDatum(run->version);
	ProgressPhase("writing", 0, (int64) run->n_users + run->n_items, "vectors");
	for (int side = 0; side < 2; side++)
	{
		int64		n = side == 0 ? run->n_users : run->n_items;
		int64		slices = Max(1, (n + TRAIN_DIST_WRITE_ROWS - 1) / TRAIN_DIST_WRITE_ROWS);
		char	   *sql = side == 0 ?
			psprintf("WITH w AS (INSERT INTO recsys.user_vectors (model, version, id, embedding, seen)"
					 " SELECT $1, $2, t.id, t.v, s.seen FROM %sxu t"
					 " JOIN (SELECT p.u, pg_catalog.array_agg(p.i ORDER BY p.i) AS seen FROM %spu p"
					 " WHERE pg_catalog.abs(p.u OPERATOR(pg_catalog.%%) $3) OPERATOR(pg_catalog.=) $4 GROUP BY p.u) s"
					 " ON s.u OPERATOR(pg_catalog.=) t.id"
					 " WHERE pg_catalog.abs(t.id OPERATOR(pg_catalog.%%) $3) OPERATOR(pg_catalog.=) $4"
					 " RETURNING 1) SELECT pg_catalog.count(*) FROM w", pre, pre) :
			psprintf("WITH w AS (INSERT INTO recsys.item_vectors (model, version, id, embedding)"
					 " SELECT $1, $2, t.id, t.v FROM %syi t"
					 " WHERE pg_catalog.abs(t.id OPERATOR(pg_catalog.%%) $3) OPERATOR(pg_catalog.=) $4"
					 " RETURNING 1) SELECT pg_catalog.count(*) FROM w", pre);
		int64		written = 0;

		args[2] = Int64GetDatum(slices);
		for (int64 b = 0; b < slices; b++)
		{
			args[3] = Int64GetDatum(b);
			Exec(sql, 4, types, args, SPI_OK_SELECT);
			written += CountValue(1, context);
			RecsysSpiFreeResult();
			ProgressSet((side == 0 ? 0 : run->n_users) + written);
			ProgressTick();
		}
		if (written != n)
			elog(ERROR, "wrote " INT64_FORMAT " of " INT64_FORMAT " %s vectors", written, n,
				 side == 0 ? "user" : "item");
	}
	StoreModel(run, true);
}

/*
 * epochs and store of als on the aggregate engine: the recsys.als_solve
 * aggregate over SQL work tables, local (pg_temp) or, over a Citus
 * distributed table, distributed (the solves run on the workers); one
 * epoch body for both
 */
static void
EpochsAggregate(TrainRun *run, MemoryContext context)
{
	AggregateWork w;
	Datum		g_items;

	memset(&w, 0, sizeof(w));
	w.epoch = AllocSetContextCreate(CurrentMemoryContext, "recsys train epoch", ALLOCSET_DEFAULT_SIZES);
	w.keep = AllocSetContextCreate(CurrentMemoryContext, "recsys train gramian", ALLOCSET_DEFAULT_SIZES);
	run->item_gramian = palloc0(sizeof(double) * run->dim * run->dim);
	if (run->distributed)
		AggregateSetupDistributed(run, &w, context);
	else
		AggregateSetupLocal(run, &w);

	/* the same initial item vectors as the memory engine (on the workers when distributed) */
	g_items = SeedItemVectors(run, w.vectors[1], w.entities[1], !run->distributed, w.keep);
	AggregateEpochs(run, &w, g_items, context);

	if (run->distributed)
		AggregateStoreDistributed(run, &w, context);
	else
		AggregateStoreLocal(run, &w);
	Exec(w.drop, 0, NULL, NULL, SPI_OK_UTILITY);
	if (w.schema)
		Exec(psprintf("DROP SCHEMA %s", quote_identifier(w.schema)), 0, NULL, NULL, SPI_OK_UTILITY);
}

PG_FUNCTION_INFO_V1(train_embeddings);
/*
 * Train user and item embeddings over an interactions relation and store
 * them as a new version of the model; one row per epoch (epoch, loss,
 * observed_loss, gramian_loss, l2_loss, seconds)
 */
Datum
train_embeddings(PG_FUNCTION_ARGS)
{
	TrainRun	run;
	Interactions data;
	MemoryContext context;
	MemoryContext old;
	bool		loaded = false;
	Size		unused;
	int			spi_level;
	MemoryContext spi_context;

	InitMaterializedSRF(fcinfo, 0);
	context = AllocSetContextCreate(CurrentMemoryContext, "recsys train_embeddings",
									ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(context);
	spi_level = RecsysSpiConnect();
	spi_context = CurrentMemoryContext;
	MemoryContextSwitchTo(context);

	/* prepare */
	PrepareRun(fcinfo, &run);
	ProgressBegin("train_embeddings", run.model, TextDatumGetCString(PG_GETARG_DATUM(ARG_METHOD)),
				  run.opts.method == TRAIN_EASE ? 1 : run.epochs, context);
	run.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	run.context = context;
	run.spi_context = spi_context;
	/* SPI calls leave SPI's context current: the run's memory lives in ours */
	MemoryContextSwitchTo(context);

	/* epochs, then store */
	if (run.opts.method == TRAIN_EASE)
	{
		EaseTrainArgs ease = {run.model, run.version, &run.src, run.source_name,
		run.opts.ease_l2, run.opts.json, TrainingBudget(), run.rsinfo};

		/* lambda of EASE is options.l2; the l2 argument is ALS's (0.01 would be no EASE) */
		if (run.l2 != 0.01)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("method ease takes its lambda from options.l2, not from the l2 argument"),
					 errhint("Pass options => '{\"l2\": %g}'.", run.l2)));
		EaseTrain(&ease);
	}
	else if (run.opts.method == TRAIN_ALS)
	{
		if (run.opts.engine != TRAIN_ENGINE_MEMORY && IsDistributedSource(run.src.relid))
		{
			if (run.opts.engine == TRAIN_ENGINE_AUTO)
				ereport(NOTICE,
						(errmsg("interactions of %s are a distributed table: using the aggregate engine on the workers",
								run.source_name),
						 errhint("Set options.engine to memory to train in this backend from rows read through the coordinator.")));
			run.distributed = true;
		}
		else if (run.opts.engine != TRAIN_ENGINE_AGGREGATE)
			loaded = LoadForMemory(&run, &data, run.opts.engine == TRAIN_ENGINE_MEMORY ?
								   MaxAllocHugeSize : TrainingBudget());
		else if (!run.distributed)
		{
			/* the aggregate engine reads the source in SQL, after the same checks */
			InteractionsLoad(&run.src, &data, 0, 0, &unused);
			run.n_rows = data.n_rows;
		}
		MemoryContextSwitchTo(context);
		if (loaded)
		{
			float	   *x = InitialVectors(&run, data.n_users, data.user_ids, run.opts.seed * 2);
			float	   *y = InitialVectors(&run, data.n_items, data.item_ids, run.opts.seed * 2 + 1);

			run.engine = TRAIN_ENGINE_MEMORY;
			EpochsMemory(&run, &data, x, y);
			StoreModel(&run, false);
			WriteVectors(&run, &data, x, y);
		}
		else
		{
			run.engine = TRAIN_ENGINE_AGGREGATE;
			EpochsAggregate(&run, context);
		}
	}
	else
	{
		float	   *x,
				   *y;
		double	   *lam_u,
				   *lam_i;

		LoadForMemory(&run, &data, TrainingBudget());
		MemoryContextSwitchTo(context);
		run.engine = TRAIN_ENGINE_MEMORY;
		x = MemoryContextAllocHuge(context, sizeof(float) * Max((Size) data.n_users * run.dim, 1));
		y = MemoryContextAllocHuge(context, sizeof(float) * Max((Size) data.n_items * run.dim, 1));
		lam_u = Lambdas(&run, data.n_users, data.user_ptr, data.n_items);
		lam_i = Lambdas(&run, data.n_items, data.item_ptr, data.n_users);
		SgdTrain(&run.opts, run.dim, run.epochs, run.gramian_weight, &data, lam_u, lam_i,
				 x, y, EmitEpoch, &run);
		run.item_gramian = palloc(sizeof(double) * run.dim * run.dim);
		AlsGramian(y, data.n_items, run.dim, run.item_gramian,
				   palloc(sizeof(double) * ALS_CHUNK_ROWS * run.dim));
		StoreModel(&run, false);
		WriteVectors(&run, &data, x, y);
	}
	FinishVersion(&run);

	ProgressEnd();
	RecsysSpiFinish(spi_level);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(context);
	return (Datum) 0;
}
