/*
 * embeddings/ease_train.c
 *		train_embeddings(method => 'ease'): EASE (Steck, WWW 2019),
 *
 *			B = I - P diag(1/diag P),   P = (X^T X + lambda I)^-1,
 *
 *		X the users x items matrix of the interactions' confidences (the
 *		weight column summed over repeated rows, 1 per row without one: the
 *		classic binary EASE when every pair occurs once), lambda options.l2.
 *
 * Steps: the one loader (interactions.c), the Gramian and the inverse in
 * the kernel (kernel/ease.c: a sparse accumulation, a blocked Cholesky and
 * a column-blocked inverse with interrupt checks between blocks), then one
 * new version in the store:
 *
 *	models			config.method = 'ease', config.l2 = lambda; weights NULL
 *					(there is no Gramian of item vectors to keep)
 *	item_vectors	item t -> row t of B over the items in id order (the
 *					ids of the rows are the item ids: the mapping of B's rows
 *					and columns to items is the store's own)
 *	user_vectors	user u -> seen = their items (ascending), embedding =
 *					the confidences of those items, in the same order: the
 *					sparse row x_u, so that recommend scores x_u B
 *
 * B lives in item_vectors rather than in one safetensors tensor of
 * models.weights: a row is n floats, so no single value approaches
 * PostgreSQL's 1 GB limit (B of a 16,000-item catalog would), and the rows
 * carry their item ids.  The catalog must fit recsys.training_memory:
 * 8 n^2 bytes for the n x n matrix (Gramian, factor and inverse share it)
 * plus one column block of the inverse and the loaded interactions.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "embeddings/ease_train.h"
#include "kernel/ease.h"
#include "store/arrays.h"
#include "store/model_row.h"
#include "store/progress.h"

/* Floats of B written per INSERT */
#define EASE_WRITE_FLOATS (4 * 1024 * 1024)
/* Users written per INSERT */
#define EASE_WRITE_USERS 4096

/* The kernel's callback between blocks of work */
static void
EaseCheckInterrupts(void *arg)
{
	ProgressTick();
	CHECK_FOR_INTERRUPTS();
}

/* Get the seconds since a start time */
static double
EaseSecondsSince(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}

/* Format a byte count for messages */
static char *
EaseBytes(Size n)
{
	return n >= 10 * 1024 * 1024 ? psprintf("%zu MB", n / (1024 * 1024)) :
		psprintf("%zu kB", (n + 1023) / 1024);
}

/* Append "key": number to JSON text (null when not finite) */
static void
AppendNumber(StringInfo s, const char *key, double x)
{
	escape_json(s, key);
	appendStringInfoString(s, ": ");
	if (isnan(x) || isinf(x))
		appendStringInfoString(s, "null");
	else
		appendStringInfoString(s, float8out_internal(x));
}

/* Append "key": "string" (or null) to JSON text */
static void
AppendString(StringInfo s, const char *key, const char *value)
{
	escape_json(s, key);
	appendStringInfoString(s, ": ");
	if (value)
		escape_json(s, value);
	else
		appendStringInfoString(s, "null");
}

/* Write the models row of the version */
static void
StoreEaseModel(const EaseTrainArgs *a, const Interactions *data, const char *metrics)
{
	StringInfoData c;

	initStringInfo(&c);
	appendStringInfoChar(&c, '{');
	AppendString(&c, "method", "ease");
	appendStringInfoString(&c, ", ");
	AppendNumber(&c, "l2", a->lambda);
	appendStringInfo(&c, ", \"options\": %s, ", a->options_json);
	AppendString(&c, "model", "B = I - P diag(1/diag P), P = (X^T X + l2 I)^-1; scores x_u B");
	appendStringInfoString(&c, ", ");
	AppendString(&c, "x", "confidences: the weight column summed over repeated rows, 1 per row without one");
	appendStringInfoString(&c, ", ");
	AppendString(&c, "storage", "item_vectors: row t of B over items in id order; user_vectors: embedding = confidences of seen");
	appendStringInfoString(&c, ", \"source\": {");
	AppendString(&c, "table", a->source_name);
	appendStringInfoString(&c, ", ");
	AppendString(&c, "user_column", a->src->user_column);
	appendStringInfoString(&c, ", ");
	AppendString(&c, "item_column", a->src->item_column);
	appendStringInfoString(&c, ", ");
	AppendString(&c, "weight_column", a->src->weight_column);
	appendStringInfo(&c, "}, \"n_users\": %d, \"n_items\": %d, \"n_interactions\": " INT64_FORMAT
					 ", \"n_rows\": " INT64_FORMAT "}",
					 data->n_users, data->n_items, data->nnz, data->n_rows);

	ModelRowWrite(a->model, a->version, "embeddings", c.data, NULL, metrics, false);
}

/*
 * Write the rows of B as item vectors, in INSERTs of at most
 * EASE_WRITE_FLOATS floats (RETURNING: every store write stays an INSERT on
 * Citus, as train.c's writers do)
 */
static void
WriteItems(const EaseTrainArgs *a, const Interactions *data, const double *p)
{
	int			n = data->n_items;
	int			per = Max(1, EASE_WRITE_FLOATS / n);
	Oid			types[6] = {TEXTOID, INT4OID, INT8ARRAYOID, FLOAT4ARRAYOID, INT4OID, INT4OID};
	SPIPlanPtr	plan;
	MemoryContext block = AllocSetContextCreate(CurrentMemoryContext, "recsys ease rows",
												ALLOCSET_DEFAULT_SIZES);

	plan = SPI_prepare("INSERT INTO recsys.item_vectors (model, version, id, embedding)"
					   " SELECT $1, $2, $3[g], $4[(g - 1) * $5 + 1 : g * $5]"
					   " FROM pg_catalog.generate_series(1, $6) g RETURNING 1", 6, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	for (int r0 = 0; r0 < n; r0 += per)
	{
		MemoryContext old = MemoryContextSwitchTo(block);
		int			rows = Min(per, n - r0);
		float	   *b = palloc(sizeof(float) * (Size) rows * n);
		Datum	   *ids = palloc(sizeof(Datum) * rows);
		Datum		args[6];

		for (int r = 0; r < rows; r++)
		{
			EaseRow(n, p, r0 + r, b + (Size) r * n);
			ids[r] = Int64GetDatum(data->item_ids[r0 + r]);
		}
		args[0] = CStringGetTextDatum(a->model);
		args[1] = Int32GetDatum(a->version);
		args[2] = PointerGetDatum(construct_array(ids, rows, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[3] = PointerGetDatum(FloatsToArray(b, rows * n));
		args[4] = Int32GetDatum(n);
		args[5] = Int32GetDatum(rows);
		MemoryContextSwitchTo(old);
		if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "writing the rows of B failed");
		SPI_freetuptable(SPI_tuptable);
		MemoryContextReset(block);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_freeplan(plan);
	MemoryContextDelete(block);
}

/* Write every user's items (seen) and their confidences (embedding) */
static void
WriteUsers(const EaseTrainArgs *a, const Interactions *data)
{
	Oid			types[6] = {TEXTOID, INT4OID, INT8ARRAYOID, FLOAT4ARRAYOID, INT8ARRAYOID, INT4ARRAYOID};
	SPIPlanPtr	plan;
	MemoryContext block = AllocSetContextCreate(CurrentMemoryContext, "recsys ease users",
												ALLOCSET_DEFAULT_SIZES);

	/* $6 holds each user's first position and, last, one past the end */
	plan = SPI_prepare("INSERT INTO recsys.user_vectors (model, version, id, embedding, seen)"
					   " SELECT $1, $2, $3[g], $4[$6[g]:$6[g + 1] - 1], $5[$6[g]:$6[g + 1] - 1]"
					   " FROM pg_catalog.generate_series(1, pg_catalog.cardinality($3)) g RETURNING 1",
					   6, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	for (int r0 = 0; r0 < data->n_users; r0 += EASE_WRITE_USERS)
	{
		MemoryContext old = MemoryContextSwitchTo(block);
		int			rows = Min(EASE_WRITE_USERS, data->n_users - r0);
		int64		base = data->user_ptr[r0];
		int64		end = data->user_ptr[r0 + rows];
		Datum	   *ids = palloc(sizeof(Datum) * rows);
		Datum	   *starts = palloc(sizeof(Datum) * (rows + 1));
		Datum	   *seen = palloc(sizeof(Datum) * Max(end - base, 1));
		Datum		args[6];

		for (int r = 0; r <= rows; r++)
		{
			if (r < rows)
				ids[r] = Int64GetDatum(data->user_ids[r0 + r]);
			starts[r] = Int32GetDatum((int32) (data->user_ptr[r0 + r] - base + 1));
		}
		for (int64 j = base; j < end; j++)
			seen[j - base] = Int64GetDatum(data->item_ids[data->user_items[j]]);
		args[0] = CStringGetTextDatum(a->model);
		args[1] = Int32GetDatum(a->version);
		args[2] = PointerGetDatum(construct_array(ids, rows, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[3] = PointerGetDatum(FloatsToArray(data->user_conf + base, (int) (end - base)));
		args[4] = PointerGetDatum(construct_array(seen, (int) (end - base), INT8OID, 8,
												  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[5] = PointerGetDatum(construct_array(starts, rows + 1, INT4OID, 4, true, TYPALIGN_INT));
		MemoryContextSwitchTo(old);
		if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "writing the users of an ease model failed");
		SPI_freetuptable(SPI_tuptable);
		MemoryContextReset(block);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_freeplan(plan);
	MemoryContextDelete(block);
}

/*
 * Train EASE over the source and store it as version a->version; one
 * result row (epoch 1: loss = |X - XB|^2 + lambda |B|^2 and its two terms).
 * SPI is connected.
 */
void
EaseTrain(const EaseTrainArgs *a)
{
	Interactions data;
	Size		needed;
	Size		loaded;
	Size		matrix;
	double	   *p;
	double	   *work;
	double		observed,
				l2;
	double		load_seconds,
				gramian_seconds,
				inverse_seconds,
				seconds;
	instr_time	t0,
				t1;
	int			info;
	int			n;
	StringInfoData metrics;

	INSTR_TIME_SET_CURRENT(t0);
	if (!InteractionsLoad(a->src, &data, a->budget, 0, &needed))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("interactions of %s do not fit in recsys.training_memory", a->source_name),
				 errdetail("Training needs at least %s; recsys.training_memory is %s.",
						   EaseBytes(needed), EaseBytes(a->budget)),
				 errhint("Raise recsys.training_memory.")));
	load_seconds = EaseSecondsSince(t0);
	n = data.n_items;
	loaded = needed;
	matrix = EaseMatrixBytes(n) + EaseWorkBytes(n);
	if (matrix > a->budget || loaded > a->budget - matrix || matrix >= MaxAllocHugeSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("ease of %d items does not fit in recsys.training_memory", n),
				 errdetail("EASE needs %zu bytes (the %d x %d item matrix of doubles, %zu bytes, its workspace and the interactions); recsys.training_memory is %zu bytes.",
						   matrix + loaded, n, n, EaseMatrixBytes(n), a->budget),
				 errhint("Raise recsys.training_memory, train on fewer items, or use method als.")));
	ereport(NOTICE,
			(errmsg("loaded " INT64_FORMAT " interactions (%d users, %d items) from " INT64_FORMAT
					" rows; ease memory %s (item matrix %s)",
					data.nnz, data.n_users, n, data.n_rows, EaseBytes(matrix + loaded),
					EaseBytes(EaseMatrixBytes(n))),
			 errdetail("Reading and checking took %.3f s.", load_seconds)));

	INSTR_TIME_SET_CURRENT(t1);
	p = MemoryContextAllocHuge(CurrentMemoryContext, EaseMatrixBytes(n));
	work = MemoryContextAllocHuge(CurrentMemoryContext, EaseWorkBytes(n));
	ProgressPhase("gramian", 1, data.n_users, "users");
	EaseGramian(n, data.n_users, data.user_ptr, data.user_items, data.user_conf, a->lambda, p,
				EaseCheckInterrupts, NULL);
	gramian_seconds = EaseSecondsSince(t1);
	INSTR_TIME_SET_CURRENT(t1);
	ProgressSet(data.n_users);
	ProgressPhase("inverse", 1, n, "items");
	info = EaseInvert(n, p, work, EaseCheckInterrupts, NULL);
	if (info != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("ease system X^T X + l2 I of %s is not positive definite", a->source_name),
				 errdetail("The Cholesky factorization failed (LAPACK info %d).", info),
				 errhint("Use a larger options.l2.")));
	inverse_seconds = EaseSecondsSince(t1);
	ProgressSet(n);
	EaseLoss(n, p, a->lambda, work, &observed, &l2);
	seconds = EaseSecondsSince(t0);

	ereport(NOTICE,
			(errmsg("ease: loss %.4f (observed %.4f, l2 %.4f)", observed + l2, observed, l2),
			 errdetail("The Gramian took %.3f s, the inverse %.3f s.", gramian_seconds, inverse_seconds)));
	{
		Datum		values[6];
		bool		nulls[6] = {false};

		values[0] = Int32GetDatum(1);
		values[1] = Float8GetDatum(observed + l2);
		values[2] = Float8GetDatum(observed);
		values[3] = Float8GetDatum(0.0);
		values[4] = Float8GetDatum(l2);
		values[5] = Float8GetDatum(seconds);
		tuplestore_putvalues(a->rsinfo->setResult, a->rsinfo->setDesc, values, nulls);
	}

	initStringInfo(&metrics);
	appendStringInfoString(&metrics, "{\"log\": [{\"epoch\": 1, ");
	AppendNumber(&metrics, "loss", observed + l2);
	appendStringInfoString(&metrics, ", ");
	AppendNumber(&metrics, "observed_loss", observed);
	appendStringInfoString(&metrics, ", \"gramian_loss\": 0, ");
	AppendNumber(&metrics, "l2_loss", l2);
	appendStringInfoString(&metrics, ", ");
	AppendNumber(&metrics, "seconds", seconds);
	appendStringInfoString(&metrics, "}], ");
	AppendNumber(&metrics, "train_seconds", seconds);
	appendStringInfoString(&metrics, ", ");
	AppendNumber(&metrics, "load_seconds", load_seconds);
	appendStringInfoString(&metrics, ", ");
	AppendNumber(&metrics, "gramian_seconds", gramian_seconds);
	appendStringInfoString(&metrics, ", ");
	AppendNumber(&metrics, "inverse_seconds", inverse_seconds);
	appendStringInfo(&metrics, ", \"engine\": \"memory\", \"memory_bytes\": %zu}", matrix + loaded);

	StoreEaseModel(a, &data, metrics.data);
	ProgressPhase("writing", 0, (int64) data.n_users + data.n_items, "vectors");
	WriteUsers(a, &data);
	ProgressSet(data.n_users);
	WriteItems(a, &data, p);
	ProgressSet((int64) data.n_users + data.n_items);
}
