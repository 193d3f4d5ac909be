/*
 * features/fit.c
 *		Read the rows of a relation into model inputs with a feature spec,
 *		fitting the spec first when it was not fitted: in ONE scan.
 *
 * Fitting needs statistics and vocabularies before any row can be
 * encoded, and encoding needs them; a second scan is avoided by keeping
 * each row in a compact raw form while the scan counts: numeric values as
 * float8, categorical values as provisional ids (the order values were
 * first met), vectors as floats.  When the scan ends the statistics are
 * final, the vocabularies are ordered (src/features/vocab.c) and the raw
 * rows are encoded in memory.  The raw form takes about what the encoded
 * rows take (8 bytes per numeric value instead of 4), and both are counted
 * against the caller's memory budget as rows arrive, so a relation that
 * does not fit stops with an error at the row where it stopped fitting.
 *
 * A fitted spec is applied to each row as it arrives (encode.c).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/memutils.h"

#include "features/internal.h"
#include "features/spec.h"
#include "settings.h"

struct FeatureBuilder
{
	FeatureSpec *spec;
	const FeatureBinding *b;
	bool		fitting;
	char	   *relname;
	MemoryContext cxt;
	double		budget;
	double		reserved;		/* bytes the caller holds beside ours */
	int64		n;
	int64		cap;
	/* fitting */
	double	   *raw;			/* [cap, nnumeric]; NaN = NULL */
	FeatureStats *stats;		/* [ncolumns] of the values statistics are taken over */
	double	   *raw_min;		/* [ncolumns] */
	double	   *raw_max;
	int64	   *nulls;			/* [ncolumns] */
	int64	   *vec_at;			/* [cap, nvector] start in vec, -1 = NULL */
	float	   *vec;
	int64		vec_len;
	int64		vec_cap;
	/* applying (dense) and both (ids, bags) */
	float	   *dense;			/* [cap, dense_dim] */
	int32	   *ids;			/* [cap, ncategorical], provisional while fitting; -1 = NULL */
	int64	   *bag_start;		/* [cap, nmulti] */
	int32	   *bag_len;
	FeatureIdList bag_ids;
};

/* Get the bytes a row's fixed part takes, and the bytes the builder holds */
static double
Bytes(const FeatureBuilder *fb, int64 rows, int64 bag_ids, int64 vec)
{
	const FeatureSpec *s = fb->spec;
	double		per = sizeof(int32) * s->ncategorical + (sizeof(int64) + sizeof(int32)) * s->nmulti;
	double		total;

	if (fb->fitting)
		per += sizeof(double) * s->nnumeric + sizeof(int64) * s->nvector +
			sizeof(float) * s->nnumeric;	/* encoded at the end */
	else
		per += sizeof(float) * s->dense_dim;
	total = per * rows + sizeof(int32) * (double) bag_ids + sizeof(float) * (double) vec * (fb->fitting ? 2 : 1);
	if (fb->fitting)
		for (int i = 0; i < s->ncolumns; i++)
			if (s->columns[i].vocab)
				total += FeatureVocabBytes(s->columns[i].vocab);
	return total;
}

/* Raise the error for rows past the budget */
static void
CheckBudget(const FeatureBuilder *fb, int64 rows, int64 bag_ids, int64 vec)
{
	double		need = Bytes(fb, rows, bag_ids, vec);

	if (need + fb->reserved > fb->budget)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training rows of %s do not fit in recsys.training_memory (%d kB)",
						fb->relname, recsys_training_memory),
				 errdetail("Reading stopped at row " INT64_FORMAT ": the feature columns need %.0f kB so far and the other columns %.0f kB.",
						   rows, need / 1024.0, fb->reserved / 1024.0),
				 errhint("Raise recsys.training_memory for this session, or train on a sample.")));
}

/* Grow the per-row arrays to hold need rows */
static void
Grow(FeatureBuilder *fb, int64 need)
{
	const FeatureSpec *s = fb->spec;
	int64		cap = fb->cap ? fb->cap : 1024;
	MemoryContext old = MemoryContextSwitchTo(fb->cxt);

	while (cap < need)
		cap *= 2;
#define GROW(field, type, width) \
	if ((width) > 0) \
		fb->field = fb->field ? repalloc_huge(fb->field, sizeof(type) * (width) * cap) \
			: MemoryContextAllocHuge(fb->cxt, sizeof(type) * (width) * cap)
	if (fb->fitting)
	{
		GROW(raw, double, s->nnumeric);
		GROW(vec_at, int64, s->nvector);
	}
	else
		GROW(dense, float, s->dense_dim);
	GROW(ids, int32, s->ncategorical);
	GROW(bag_start, int64, s->nmulti);
	GROW(bag_len, int32, s->nmulti);
#undef GROW
	fb->cap = cap;
	MemoryContextSwitchTo(old);
}

/*
 * Start reading rows bound by b (FeatureBindPositions or FeatureBindNames)
 * with spec: fitting it when not fitted, else applying it.  budget_bytes
 * bounds what the builder holds; relname names the relation in errors.
 * Everything is allocated in CurrentMemoryContext.
 */
FeatureBuilder *
FeatureBuilderStart(FeatureSpec *spec, const FeatureBinding *b, double budget_bytes,
					const char *relname)
{
	FeatureBuilder *fb = palloc0(sizeof(FeatureBuilder));
	int			nc = spec->ncolumns;

	fb->spec = spec;
	fb->b = b;
	fb->fitting = !spec->fitted;
	fb->relname = pstrdup(relname);
	fb->cxt = CurrentMemoryContext;
	fb->budget = budget_bytes;
	if (fb->fitting)
	{
		fb->stats = palloc(sizeof(FeatureStats) * nc);
		fb->raw_min = palloc(sizeof(double) * nc);
		fb->raw_max = palloc(sizeof(double) * nc);
		fb->nulls = palloc0(sizeof(int64) * nc);
		for (int i = 0; i < nc; i++)
		{
			FeatureColumn *c = &spec->columns[i];

			FeatureStatsInit(&fb->stats[i]);
			fb->raw_min[i] = INFINITY;
			fb->raw_max[i] = -INFINITY;
			if (c->kind == FEATURE_KIND_CATEGORICAL || c->kind == FEATURE_KIND_MULTI)
			{
				c->vtype = FeatureTypeValues(b->atttype[i]);
				c->vocab = FeatureVocabCreate(c->vtype, 64);
			}
			if (c->kind == FEATURE_KIND_VECTOR)
				c->length = 0;
		}
	}
	FeatureIdListReserve(&fb->bag_ids, 1024);
	return fb;
}

/* Tell the builder how many bytes the caller holds beside it (counted against the budget) */
void
FeatureBuilderReserve(FeatureBuilder *fb, double other_bytes)
{
	fb->reserved = other_bytes;
}

/* Make room for n more vector floats */
static void
ReserveVec(FeatureBuilder *fb, int64 n)
{
	if (fb->vec_len + n <= fb->vec_cap)
		return;
	fb->vec_cap = Max(fb->vec_cap * 2, fb->vec_len + n + 1024);
	fb->vec = fb->vec ? repalloc_huge(fb->vec, sizeof(float) * fb->vec_cap)
		: MemoryContextAllocHuge(fb->cxt, sizeof(float) * fb->vec_cap);
}

/* Count one value into a vocabulary being fitted; returns its provisional id */
static int32
CountValue(FeatureColumn *c, Oid type, Datum d)
{
	int64		ival;
	const char *s;
	int			len;
	int32		id;

	FeatureReadKey(type, d, &ival, &s, &len);
	id = FeatureVocabAdd(c->vocab, ival, s, len);
	FeatureVocabIncrement(c->vocab, id, 1);
	return id;
}

/* Read one row while fitting: statistics, counts, the raw form */
static void
AddFitting(FeatureBuilder *fb, const Datum *values, const bool *nulls)
{
	FeatureSpec *spec = fb->spec;
	int64		r = fb->n;
	int			vec_k = 0;

	for (int i = 0; i < spec->ncolumns; i++)
	{
		FeatureColumn *c = &spec->columns[i];
		int			a = fb->b->attnum[i] - 1;
		Oid			type = fb->b->atttype[i];
		bool		isnull = nulls[a];

		if (isnull)
			fb->nulls[i]++;
		switch (c->kind)
		{
			case FEATURE_KIND_NUMERIC:
				{
					double		x = NAN;

					if (!isnull)
					{
						x = FeatureReadNumber(c, type, values[a]);
						FeatureStatsAdd(&fb->stats[i], FeatureStatValue(c->num.transform, x));
						fb->raw_min[i] = Min(fb->raw_min[i], x);
						fb->raw_max[i] = Max(fb->raw_max[i], x);
					}
					fb->raw[r * spec->nnumeric + c->index] = x;
					break;
				}
			case FEATURE_KIND_CATEGORICAL:
				fb->ids[r * spec->ncategorical + c->index] = isnull ? -1 : CountValue(c, type, values[a]);
				break;
			case FEATURE_KIND_MULTI:
				{
					int64		k = r * spec->nmulti + c->index;

					fb->bag_start[k] = fb->bag_ids.len;
					if (isnull)
					{
						fb->bag_ids.ids[fb->bag_ids.len++] = -1;
						fb->bag_len[k] = 1;
					}
					else
					{
						Datum	   *elems;
						bool	   *enulls;
						int			n = FeatureReadArray(c, type, values[a], &elems, &enulls);
						Oid			etype = type == TEXTARRAYOID ? TEXTOID : type == VARCHARARRAYOID ? VARCHAROID
							: type == INT2ARRAYOID ? INT2OID : type == INT4ARRAYOID ? INT4OID
							: type == INT8ARRAYOID ? INT8OID : BOOLOID;

						FeatureIdListReserve(&fb->bag_ids, n);
						for (int e = 0; e < n; e++)
						{
							if (enulls[e])
								fb->nulls[i]++;
							fb->bag_ids.ids[fb->bag_ids.len++] = enulls[e] ? -1 : CountValue(c, etype, elems[e]);
						}
						fb->bag_len[k] = n;
					}
					FeatureIdListReserve(&fb->bag_ids, 1);
					break;
				}
			case FEATURE_KIND_VECTOR:
				{
					int64		k = r * spec->nvector + vec_k++;

					fb->vec_at[k] = -1;
					if (!isnull)
					{
						ArrayType  *arr = DatumGetArrayTypeP(values[a]);
						int			n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
						int			len;
						const float *v;

						ReserveVec(fb, n);
						v = FeatureReadVector(c, type, PointerGetDatum(arr), &len, fb->vec + fb->vec_len, n);
						if (v != fb->vec + fb->vec_len)
							memcpy(fb->vec + fb->vec_len, v, sizeof(float) * len);
						if (c->length == 0)
						{
							/* the first value fixes the length; FeatureReadVector checks the rest */
							if (len < 1 || len > recsys_max_dim)
								ereport(ERROR,
										(errcode(ERRCODE_DATA_EXCEPTION),
										 errmsg("vector feature \"%s\" has %d elements; vectors need 1 to recsys.max_dim (%d)",
												c->column, len, recsys_max_dim)));
							c->length = len;
						}
						fb->vec_at[k] = fb->vec_len;
						fb->vec_len += len;
					}
					break;
				}
		}
	}
}

/* Add one row (values indexed by attribute number - 1, as the binding says) */
void
FeatureBuilderAdd(FeatureBuilder *fb, const Datum *values, const bool *nulls)
{
	const FeatureSpec *s = fb->spec;

	if (fb->n == fb->cap)
	{
		CheckBudget(fb, fb->n * 2 > 1024 ? fb->n * 2 : 1024, fb->bag_ids.len, fb->vec_len);
		Grow(fb, fb->n + 1);
	}
	if (fb->fitting)
		AddFitting(fb, values, nulls);
	else
		FeatureEncode(fb->b, values, nulls, fb->dense + fb->n * s->dense_dim,
					  fb->ids + fb->n * s->ncategorical, fb->bag_start + fb->n * s->nmulti,
					  fb->bag_len + fb->n * s->nmulti, &fb->bag_ids);
	fb->n++;
	if ((fb->n & 1023) == 0)
		CheckBudget(fb, fb->cap, fb->bag_ids.len, fb->vec_len);
}

/* Fit the spec from what the scan counted and encode the raw rows */
static void
FinishFitting(FeatureBuilder *fb)
{
	FeatureSpec *spec = fb->spec;
	int			dense = spec->nnumeric;
	int			vec_k = 0;
	int32	   *maps[FEATURE_MAX_COLUMNS];

	/* statistics and vocabularies */
	for (int i = 0; i < spec->ncolumns; i++)
	{
		FeatureColumn *c = &spec->columns[i];

		c->nulls = fb->nulls[i];
		switch (c->kind)
		{
			case FEATURE_KIND_NUMERIC:
				if (fb->stats[i].count == 0)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_EXCEPTION),
							 errmsg("numeric feature \"%s\" of %s has no non-NULL values", c->column, fb->relname),
							 errdetail("Fitting needs values to take its statistics from.")));
				c->count = fb->stats[i].count;
				c->num.mean = fb->stats[i].mean;
				c->num.std = FeatureStatsStd(&fb->stats[i]);
				c->num.min = fb->raw_min[i];
				c->num.max = fb->raw_max[i];
				FeatureColumnSetNullOut(c);
				break;
			case FEATURE_KIND_CATEGORICAL:
			case FEATURE_KIND_MULTI:
				{
					int32		nv = FeatureVocabCount(c->vocab);

					c->count = 0;
					for (int32 id = 0; id < nv; id++)
						c->count += FeatureVocabOccurrences(c->vocab, id);
					maps[i] = FeatureVocabFinish(&c->vocab, c->min_count, c->max_size, &c->oov);
					break;
				}
			case FEATURE_KIND_VECTOR:
				if (c->length == 0)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_EXCEPTION),
							 errmsg("vector feature \"%s\" of %s has no non-NULL values", c->column, fb->relname),
							 errdetail("Fitting takes the vector length from the values.")));
				c->index = dense;
				dense += c->length;
				break;
		}
		CHECK_FOR_INTERRUPTS();
	}
	spec->dense_dim = dense;
	spec->fitted = true;
	spec->rows = fb->n;

	/* encode the raw rows */
	fb->dense = MemoryContextAllocHuge(fb->cxt, sizeof(float) * Max(fb->n * dense, 1));
	for (int i = 0; i < spec->ncolumns; i++)
	{
		FeatureColumn *c = &spec->columns[i];

		if (c->kind == FEATURE_KIND_NUMERIC)
		{
			for (int64 r = 0; r < fb->n; r++)
			{
				double		x = fb->raw[r * spec->nnumeric + c->index];

				fb->dense[r * dense + c->index] = isnan(x) ? c->num.null_out : FeatureNumericApply(&c->num, x);
			}
		}
		else if (c->kind == FEATURE_KIND_VECTOR)
		{
			for (int64 r = 0; r < fb->n; r++)
			{
				int64		at = fb->vec_at[r * spec->nvector + vec_k];
				float	   *out = fb->dense + r * dense + c->index;

				if (at < 0)
					memset(out, 0, sizeof(float) * c->length);
				else
					memcpy(out, fb->vec + at, sizeof(float) * c->length);
			}
			vec_k++;
		}
		else
		{
			int32		oov = FeatureVocabCount(c->vocab);
			int32	   *map = maps[i];

			if (c->kind == FEATURE_KIND_CATEGORICAL)
				for (int64 r = 0; r < fb->n; r++)
				{
					int32	   *id = &fb->ids[r * spec->ncategorical + c->index];

					*id = *id < 0 ? oov + 1 : map[*id] < 0 ? oov : map[*id];
				}
			else
				for (int64 r = 0; r < fb->n; r++)
				{
					int64		k = r * spec->nmulti + c->index;

					for (int32 e = 0; e < fb->bag_len[k]; e++)
					{
						int32	   *id = &fb->bag_ids.ids[fb->bag_start[k] + e];

						*id = *id < 0 ? oov + 1 : map[*id] < 0 ? oov : map[*id];
					}
				}
			pfree(map);
		}
		CHECK_FOR_INTERRUPTS();
	}
	if (fb->raw)
		pfree(fb->raw);
	if (fb->vec)
		pfree(fb->vec);
	fb->raw = NULL;
	fb->vec = NULL;
}

/*
 * Finish reading: fit the spec if it was not fitted (in place: it is
 * fitted afterwards) and get the encoded rows
 */
FeatureRows *
FeatureBuilderFinish(FeatureBuilder *fb)
{
	FeatureRows *rows = palloc0(sizeof(FeatureRows));

	if (fb->fitting)
		FinishFitting(fb);
	rows->n = fb->n;
	rows->dense = fb->dense;
	rows->ids = fb->ids;
	rows->bag_start = fb->bag_start;
	rows->bag_len = fb->bag_len;
	rows->bag_ids = fb->bag_ids.ids;
	rows->nbag_ids = fb->bag_ids.len;
	return rows;
}
