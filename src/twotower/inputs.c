/*
 * twotower/inputs.c
 *		The one place where two-tower models read features: a feature table
 *		(an id column and the columns of a spec, src/features/) becomes tower
 *		inputs (kernel/twotower.h), and a row value given at serving becomes
 *		the input of one entity.
 *
 * A tower's id bags are, in order: one bag of one id per categorical
 * column, one bag per multi_categorical column, then (when the tower has
 * an id embedding) the entity's own training index, or an empty bag for an
 * entity that had no training interactions (it pools to zeros, as any row
 * given by features only).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "features/spec.h"
#include "store/spi_safe.h"
#include "twotower/twotower.h"

#define INPUTS_FETCH_ROWS 1000

/* A fitted spec that reads no column (a tower over the entity's id only) */
FeatureSpec *
TwoTowerEmptySpec(void)
{
	FeatureSpec *spec = palloc0(sizeof(FeatureSpec));

	spec->fitted = true;
	return spec;
}

/* Fill a tower shape's input part (dense width, bags) from a fitted spec */
void
TwoTowerShapeInputs(const FeatureSpec *spec, int id_vocab, int id_dim, TtTowerConfig *cfg)
{
	int			nb = 0;

	cfg->dense_dim = spec->dense_dim;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < spec->ncolumns; i++)
		{
			const FeatureColumn *c = &spec->columns[i];

			if (c->kind != (pass == 0 ? FEATURE_KIND_CATEGORICAL : FEATURE_KIND_MULTI))
				continue;
			if (nb >= TT_MAX_BAGS - 1)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("a tower reads at most %d categorical and multi_categorical columns",
								TT_MAX_BAGS - 1)));
			cfg->vocab[nb] = FeatureVocabSize(c);
			cfg->emb_dim[nb] = c->dim;
			nb++;
		}
	if (id_dim > 0)
	{
		cfg->vocab[nb] = Max(id_vocab, 1);
		cfg->emb_dim[nb] = id_dim;
		nb++;
	}
	cfg->nbags = nb;
}

/* Embedding tensor names of a tower's bags, in bag order (column names, then "id") */
const char *
TwoTowerBagName(const FeatureSpec *spec, int bag)
{
	int			nb = 0;

	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < spec->ncolumns; i++)
		{
			const FeatureColumn *c = &spec->columns[i];

			if (c->kind != (pass == 0 ? FEATURE_KIND_CATEGORICAL : FEATURE_KIND_MULTI))
				continue;
			if (nb++ == bag)
				return c->column;
		}
	return "id";
}

/* Compare (id, row) pairs by id */
static int
CompareIdRow(const void *a, const void *b)
{
	int64		x = ((const int64 *) a)[0];
	int64		y = ((const int64 *) b)[0];

	return x < y ? -1 : x > y;
}

/*
 * Check a feature table's columns (the id column and every column of the
 * spec, exact types) before any work; get the id column's type
 */
Oid
TwoTowerCheckTable(Oid relid, const char *id_column, const FeatureSpec *spec, const char *what)
{
	static const Oid id_types[] = {INT2OID, INT4OID, INT8OID};
	Oid			id_type;

	id_type = RecsysColumnType(relid, id_column, psprintf("id column of %s", what), id_types,
							   lengthof(id_types));
	if (spec->ncolumns > 0)
		FeatureCheckRelation(spec, relid);
	return id_type;
}

/*
 * Read a feature table: the id column and the spec's columns, fitting the
 * spec when it is not fitted (one scan, features/fit.c).  budget: bytes
 * the rows may take besides reserved (what the caller already holds).
 */
void
TwoTowerLoadTable(TwoTowerTable *t, Oid relid, const char *id_column, FeatureSpec *spec,
				  double budget, double reserved, const char *what)
{
	char	   *rel = RecsysRelationSqlName(relid);
	char	   *sql;
	Oid			id_type;
	SPIPlanPtr	plan;
	Portal		portal;
	FeatureBuilder *fb;
	MemoryContext cxt = CurrentMemoryContext;
	Datum	   *vals;
	bool	   *nulls;
	int64		cap = 1024;

	memset(t, 0, sizeof(TwoTowerTable));
	t->spec = spec;
	t->relid = relid;
	/* every column's type before any row */
	id_type = TwoTowerCheckTable(relid, id_column, spec, what);
	if (spec->ncolumns > 0)
		sql = psprintf("SELECT %s, %s FROM %s", quote_identifier(id_column),
					   FeatureSelectList(spec), rel);
	else
		sql = psprintf("SELECT %s FROM %s", quote_identifier(id_column), rel);
	plan = SPI_prepare(sql, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	MemoryContextSwitchTo(cxt);
	vals = palloc(sizeof(Datum) * portal->tupDesc->natts);
	nulls = palloc(sizeof(bool) * portal->tupDesc->natts);
	/* a spec with no column has nothing to fit or encode */
	fb = spec->ncolumns == 0 ? NULL :
		FeatureBuilderStart(spec, FeatureBindPositions(spec, portal->tupDesc, 2,
													   psprintf("%s %s", what, rel)),
							budget, rel);
	if (fb)
		FeatureBuilderReserve(fb, reserved);
	t->ids = palloc(sizeof(int64) * cap);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, INPUTS_FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		MemoryContextSwitchTo(cxt);
		if (t->n + (int64) SPI_processed > cap)
		{
			while (cap < t->n + (int64) SPI_processed)
				cap *= 2;
			t->ids = repalloc_huge(t->ids, sizeof(int64) * cap);
			if (fb)
				FeatureBuilderReserve(fb, reserved + sizeof(int64) * 3 * (double) cap);
		}
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			heap_deform_tuple(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, vals, nulls);
			if (nulls[0])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("%s %s has a NULL %s", what, rel, quote_identifier(id_column)),
						 errhint("Every row of a feature table needs its entity id.")));
			t->ids[t->n++] = id_type == INT8OID ? DatumGetInt64(vals[0]) :
				id_type == INT4OID ? DatumGetInt32(vals[0]) : DatumGetInt16(vals[0]);
			if (fb)
				FeatureBuilderAdd(fb, vals, nulls);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	MemoryContextSwitchTo(cxt);
	if (t->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s %s has no rows", what, rel)));
	t->rows = fb ? FeatureBuilderFinish(fb) : palloc0(sizeof(FeatureRows));
	t->rows->n = t->n;

	/* ids sorted with their rows, for lookups; a repeated id is an error */
	t->sorted = MemoryContextAllocHuge(cxt, sizeof(int64) * 2 * t->n);
	for (int64 i = 0; i < t->n; i++)
	{
		t->sorted[2 * i] = t->ids[i];
		t->sorted[2 * i + 1] = i;
	}
	qsort(t->sorted, t->n, sizeof(int64) * 2, CompareIdRow);
	for (int64 i = 1; i < t->n; i++)
		if (t->sorted[2 * i] == t->sorted[2 * i - 2])
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("%s %s has more than one row for id " INT64_FORMAT, what, rel,
							t->sorted[2 * i]),
					 errhint("A feature table has one row per entity.")));
}

/* Get the row of an id in a loaded table, or -1 */
int64
TwoTowerFindRow(const TwoTowerTable *t, int64 id)
{
	int64		lo = 0,
				hi = t->n - 1;

	while (lo <= hi)
	{
		int64		mid = lo + (hi - lo) / 2;
		int64		v = t->sorted[2 * mid];

		if (v == id)
			return t->sorted[2 * mid + 1];
		if (v < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/*
 * Make the tower inputs of n entities: entity e is row rows[e] of the
 * table, with id bag id_index[e] (-1: an empty bag) when with_id.
 */
TtInputs *
TwoTowerInputs(const TwoTowerTable *t, const int64 *rows, int64 n, const int32 *id_index,
			   bool with_id)
{
	const FeatureSpec *spec = t->spec;
	const FeatureRows *fr = t->rows;
	int			nc = spec->ncategorical;
	int			nm = spec->nmulti;
	int			nb = nc + nm + (with_id ? 1 : 0);
	int			dd = spec->dense_dim;
	TtInputs   *in = palloc0(sizeof(TtInputs));
	float	   *dense = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * Max(n * dd, 1));
	int64_t    *start = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64_t) * Max(n * nb, 1));
	int32_t    *len = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int32_t) * Max(n * nb, 1));
	int64		nids = 0;
	int32_t    *ids;

	for (int64 e = 0; e < n; e++)
	{
		int64		r = rows[e];

		nids += nc + (with_id ? 1 : 0);
		for (int j = 0; j < nm; j++)
			nids += fr->bag_len[r * nm + j];
	}
	ids = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int32_t) * Max(nids, 1));
	nids = 0;
	for (int64 e = 0; e < n; e++)
	{
		int64		r = rows[e];
		int			b = 0;

		if (dd > 0)
			memcpy(dense + e * dd, fr->dense + r * dd, sizeof(float) * dd);
		for (int j = 0; j < nc; j++, b++)
		{
			start[e * nb + b] = nids;
			len[e * nb + b] = 1;
			ids[nids++] = fr->ids[r * nc + j];
		}
		for (int j = 0; j < nm; j++, b++)
		{
			int32		l = fr->bag_len[r * nm + j];

			start[e * nb + b] = nids;
			len[e * nb + b] = l;
			memcpy(ids + nids, fr->bag_ids + fr->bag_start[r * nm + j], sizeof(int32) * l);
			nids += l;
		}
		if (with_id)
		{
			/* the slot is always there, so that a caller may fill it */
			start[e * nb + b] = nids;
			len[e * nb + b] = (id_index && id_index[e] >= 0) ? 1 : 0;
			ids[nids++] = len[e * nb + b] ? id_index[e] : 0;
		}
	}
	in->n = n;
	in->dense_dim = dd;
	in->nbags = nb;
	in->dense = dense;
	in->bag_start = start;
	in->bag_len = len;
	in->bag_ids = ids;
	return in;
}

/*
 * Encode one row value with a fitted spec into the inputs of one entity
 * (no id: an empty id bag when the tower has one)
 */
TtInputs *
TwoTowerRowInputs(const FeatureSpec *spec, HeapTupleHeader row, bool with_id, const char *what)
{
	Oid			typid = HeapTupleHeaderGetTypeId(row);
	int32		typmod = HeapTupleHeaderGetTypMod(row);
	TupleDesc	desc = lookup_rowtype_tupdesc(typid, typmod);
	TupleDesc	copy = CreateTupleDescCopy(desc);
	FeatureBinding *b;
	HeapTupleData tuple;
	Datum	   *values = palloc(sizeof(Datum) * Max(copy->natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(copy->natts, 1));
	int			nc = spec->ncategorical;
	int			nm = spec->nmulti;
	int			nb = nc + nm + (with_id ? 1 : 0);
	float	   *dense = palloc0(sizeof(float) * Max(spec->dense_dim, 1));
	int32	   *cat = palloc0(sizeof(int32) * Max(nc, 1));
	int64	   *bstart = palloc0(sizeof(int64) * Max(nm, 1));
	int32	   *blen = palloc0(sizeof(int32) * Max(nm, 1));
	FeatureIdList list;
	TtInputs   *in = palloc0(sizeof(TtInputs));
	int64_t    *start = palloc0(sizeof(int64_t) * Max(nb, 1));
	int32_t    *len = palloc0(sizeof(int32_t) * Max(nb, 1));
	int32_t    *ids;
	int64		nids = 0;

	ReleaseTupleDesc(desc);
	b = spec->ncolumns > 0 ? FeatureBindNames(spec, copy, what) : NULL;
	tuple.t_len = HeapTupleHeaderGetDatumLength(row);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = row;
	heap_deform_tuple(&tuple, copy, values, nulls);
	memset(&list, 0, sizeof(list));
	FeatureIdListReserve(&list, 16);
	if (b)
		FeatureEncode(b, values, nulls, dense, cat, bstart, blen, &list);

	ids = palloc(sizeof(int32_t) * Max(nc + list.len, 1));
	for (int j = 0; j < nc; j++)
	{
		start[j] = nids;
		len[j] = 1;
		ids[nids++] = cat[j];
	}
	for (int j = 0; j < nm; j++)
	{
		start[nc + j] = nids;
		len[nc + j] = blen[j];
		memcpy(ids + nids, list.ids + bstart[j], sizeof(int32) * blen[j]);
		nids += blen[j];
	}
	if (with_id)
	{
		start[nc + nm] = nids;
		len[nc + nm] = 0;
	}
	in->n = 1;
	in->dense_dim = spec->dense_dim;
	in->nbags = nb;
	in->dense = dense;
	in->bag_start = start;
	in->bag_len = len;
	in->bag_ids = ids;
	return in;
}
