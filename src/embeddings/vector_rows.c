/*
 * embeddings/vector_rows.c
 *		The one writer of trained vectors into the store's user_vectors and
 *		item_vectors (train_embeddings' memory engine and SGD methods,
 *		train_two_tower): rows in batches, each batch one prepared INSERT ..
 *		SELECT over arrays (ids, the vectors sliced per row, and for users
 *		their seen items sliced likewise).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "embeddings/vector_rows.h"
#include "store/arrays.h"
#include "store/progress.h"
#include "store/spi_safe.h"

/* Order int64 ids */
static int
CompareId(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Get an int4[] of n Datums */
static Datum
Int4Array(Datum *d, int n)
{
	return PointerGetDatum(construct_array(d, n, INT4OID, 4, true, TYPALIGN_INT));
}

/* Get an int8[] of n Datums */
static Datum
Int8Array(Datum *d, int n)
{
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Fill args[6..8] with the seen items of rows r0 .. r0 + rows - 1 of a
 * users write: the item ids of every row, and where each row's slice starts
 * and ends (an id the interactions lack has none)
 */
static void
SeenArgs(const VectorRows *w, int64 r0, int rows, Datum *args)
{
	const Interactions *data = w->data;
	int32	   *user = palloc(sizeof(int32) * rows);
	Datum	   *slo = palloc(sizeof(Datum) * rows);
	Datum	   *shi = palloc(sizeof(Datum) * rows);
	Datum	   *seen;
	int64		nseen = 0;

	for (int r = 0; r < rows; r++)
	{
		const int64 *at = w->ids == data->user_ids ? &data->user_ids[r0 + r] :
			bsearch(&w->ids[r0 + r], data->user_ids, data->n_users, sizeof(int64), CompareId);

		user[r] = at ? (int32) (at - data->user_ids) : -1;
		if (at)
			nseen += data->user_ptr[user[r] + 1] - data->user_ptr[user[r]];
	}
	if (nseen > (int64) (MaxAllocSize / sizeof(Datum)))
		elog(ERROR, "too many seen items in one write: " INT64_FORMAT, nseen);
	seen = palloc(sizeof(Datum) * Max(nseen, 1));
	nseen = 0;
	for (int r = 0; r < rows; r++)
	{
		slo[r] = Int32GetDatum((int32) nseen + 1);
		if (user[r] >= 0)
			for (int64 j = data->user_ptr[user[r]]; j < data->user_ptr[user[r] + 1]; j++)
				seen[nseen++] = Int64GetDatum(data->item_ids[data->user_items[j]]);
		shi[r] = Int32GetDatum((int32) nseen);
	}
	args[6] = Int8Array(seen, (int) nseen);
	args[7] = Int4Array(slo, rows);
	args[8] = Int4Array(shi, rows);
}

/*
 * Write one side's vectors.  Long rows (a heavy user's seen items) are
 * compressed as they are written: with lz4 where the server has it, not
 * pglz, which took about 40% of the write (20M interactions: 138k users,
 * 145 seen items each on average); restored when the write ends (an error
 * restores it too).  RETURNING keeps every store write an INSERT on Citus
 * too, which would otherwise run INSERT .. SELECT into a reference table as
 * a COPY, and PostgreSQL refuses COPY into a table under row-level security.
 */
void
VectorRowsWrite(const VectorRows *w)
{
	int			k = w->dim;
	const char *sql = w->users ?
		"INSERT INTO recsys.user_vectors (model, version, id, embedding, seen)"
		" SELECT $1, $2, $3[g], $4[$5[g]:$6[g]], $7[$8[g]:$9[g]]"
		" FROM pg_catalog.generate_series(1, $10) g RETURNING 1" :
		"INSERT INTO recsys.item_vectors (model, version, id, embedding)"
		" SELECT $1, $2, $3[g], $4[$5[g]:$6[g]]"
		" FROM pg_catalog.generate_series(1, $7) g RETURNING 1";
	Oid			types[10] = {TEXTOID, INT4OID, INT8ARRAYOID, FLOAT4ARRAYOID, INT4ARRAYOID,
	INT4ARRAYOID, INT8ARRAYOID, INT4ARRAYOID, INT4ARRAYOID, INT4OID};
	int			nargs = w->users ? 10 : 7;
	SPIPlanPtr	plan;
	int			guc_level;
	MemoryContext block = AllocSetContextCreate(CurrentMemoryContext, "recsys vectors",
												ALLOCSET_DEFAULT_SIZES);

	if (!w->users)
		types[6] = INT4OID;
	guc_level = NewGUCNestLevel();
	(void) set_config_option("default_toast_compression", "lz4", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, DEBUG1, false);
	plan = SPI_prepare(sql, nargs, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	for (int64 r0 = 0; r0 < w->n; r0 += w->batch)
	{
		MemoryContext old = MemoryContextSwitchTo(block);
		int			rows = (int) Min((int64) w->batch, w->n - r0);
		Datum	   *idd = palloc(sizeof(Datum) * rows);
		Datum	   *lo = palloc(sizeof(Datum) * rows);
		Datum	   *hi = palloc(sizeof(Datum) * rows);
		Datum		args[10];

		for (int r = 0; r < rows; r++)
		{
			idd[r] = Int64GetDatum(w->ids[r0 + r]);
			lo[r] = Int32GetDatum(r * k + 1);
			hi[r] = Int32GetDatum((r + 1) * k);
		}
		args[0] = CStringGetTextDatum(w->model);
		args[1] = Int32GetDatum(w->version);
		args[2] = Int8Array(idd, rows);
		args[3] = PointerGetDatum(FloatsToArray(w->x + (size_t) r0 * k, rows * k));
		args[4] = Int4Array(lo, rows);
		args[5] = Int4Array(hi, rows);
		if (w->users)
		{
			SeenArgs(w, r0, rows, args);
			args[9] = Int32GetDatum(rows);
		}
		else
			args[6] = Int32GetDatum(rows);
		MemoryContextSwitchTo(old);
		if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "writing %s vectors failed", w->users ? "user" : "item");
		RecsysSpiFreeResult();
		MemoryContextReset(block);
		ProgressSet(w->progress_base + r0 + rows);
		ProgressTick();
		CHECK_FOR_INTERRUPTS();
	}
	SPI_freeplan(plan);
	MemoryContextDelete(block);
	AtEOXact_GUC(true, guc_level);
}
