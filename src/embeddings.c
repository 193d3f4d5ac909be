/*
 * embeddings.c
 *		Seeded randomness and initial vectors for the embedding trainers, and
 *		recsys.recommend: top-k items for a user of a trained model, by one
 *		matrix-vector product (BLAS sgemv) over the item matrix and a bounded
 *		heap, never a sort of every item.
 *
 * recommend keeps a small per-backend cache of item matrices (the last
 * EMBEDDING_CACHE_SIZE models used, n_items x dim floats each), keyed by the
 * model row's name, version and tuple identity (xmin, ctid), so a retrained
 * or re-created model is never served from a stale copy.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "arrays.h"
#include "embeddings.h"
#include "linalg.h"
#include "recsys.h"
#include "spi_safe.h"
#include "rng.h"

#define EMBEDDING_CACHE_SIZE 4
#define EMBEDDING_FETCH_ROWS 4096

/* Get a uniform double in (0, 1) from a hash value */
static inline double
HashUniform(uint64 h)
{
	return ((double) (h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/*
 * Fill out[0..dim-1] with N(0, (scale / sqrt(dim))^2) values that depend on
 * (seed, id) only: the same entity starts from the same vector whatever the
 * order rows are read in.
 */
void
EmbeddingInitVector(int64 seed, int64 id, int dim, double scale, float *out)
{
	uint64		base = RngHash64(RngHash64((uint64) seed) ^ (uint64) id);
	double		sd = scale / sqrt((double) dim);

	for (int j = 0; j < dim; j++)
	{
		double		u1 = HashUniform(RngHash64(base + 2 * (uint64) j));
		double		u2 = HashUniform(RngHash64(base + 2 * (uint64) j + 1));

		out[j] = (float) (sd * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
	}
}

PG_FUNCTION_INFO_V1(embedding_init);
/* Get the deterministic initial vector of an entity as real[] */
Datum
embedding_init(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	int32		dim = PG_GETARG_INT32(1);
	int64		seed = PG_GETARG_INT64(2);
	double		scale = PG_GETARG_FLOAT8(3);
	float	   *v;

	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dim must be at least 1")));
	if (dim > recsys_max_dim)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dim %d is more than recsys.max_dim (%d)", dim, recsys_max_dim)));
	CheckFiniteDouble(scale, "init_scale");
	if (scale < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("init_scale must not be negative")));
	v = palloc(sizeof(float) * dim);
	EmbeddingInitVector(seed, id, dim, scale, v);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(v, dim));
}

/* One cached item matrix */
typedef struct ItemMatrix
{
	MemoryContext context;		/* owns everything below; NULL = empty slot */
	char	   *name;			/* model name */
	int32		version;
	char	   *tuple_id;		/* "xmin/ctid" of the models row */
	uint64		last_used;
	int			n;				/* items */
	int			dim;
	int64	   *ids;			/* ascending */
	float	   *v;				/* n x dim, row-major */
} ItemMatrix;

static ItemMatrix item_cache[EMBEDDING_CACHE_SIZE];
static uint64 item_cache_clock = 0;
static SPIPlanPtr plan_model = NULL;
static SPIPlanPtr plan_user = NULL;
static SPIPlanPtr plan_items = NULL;

/* Prepare and keep a plan for the life of the backend */
static SPIPlanPtr
KeepPlan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/* Prepare the three queries of recommend once per backend */
static void
PrepareRecommendPlans(void)
{
	Oid			types[3] = {TEXTOID, INT4OID, INT8OID};

	if (plan_model == NULL)
		plan_model = KeepPlan("SELECT m.version, m.kind, m.xmin::text || '/' || m.ctid::text"
							  " FROM recsys.models m WHERE m.name = $1"
							  " ORDER BY m.version DESC LIMIT 1", 1, types);
	if (plan_user == NULL)
		plan_user = KeepPlan("SELECT u.embedding, u.seen FROM recsys.user_vectors u"
							 " WHERE u.model = $1 AND u.version = $2 AND u.id = $3",
							 3, types);
	if (plan_items == NULL)
		plan_items = KeepPlan("SELECT v.id, v.embedding FROM recsys.item_vectors v"
							  " WHERE v.model = $1 AND v.version = $2 ORDER BY v.id",
							  2, types);
}

/*
 * Load the item matrix of a model version into a cache slot.  The matrix is
 * built in a context under the current one and moved under TopMemoryContext
 * only once complete, so an error (or cancel) while loading leaks nothing.
 */
static ItemMatrix *
LoadItemMatrix(const char *name, int32 version, const char *tuple_id)
{
	ItemMatrix	m;
	ItemMatrix *slot = &item_cache[0];
	Datum		args[2];
	Portal		portal;
	int			cap = 1024;
	MemoryContext old;

	memset(&m, 0, sizeof(m));
	m.context = AllocSetContextCreate(CurrentMemoryContext, "recsys item matrix",
									  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(m.context);
	m.name = pstrdup(name);
	m.tuple_id = pstrdup(tuple_id);
	m.version = version;
	m.ids = palloc(sizeof(int64) * cap);
	MemoryContextSwitchTo(old);

	args[0] = CStringGetTextDatum(name);
	args[1] = Int32GetDatum(version);
	portal = SPI_cursor_open(NULL, plan_items, args, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, EMBEDDING_FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			bool		isnull;
			int64		id = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
			ArrayType  *a = DatumGetArrayTypeP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
			int			dim = VectorDim(a);

			if (m.n == 0)
			{
				m.dim = dim;
				m.v = MemoryContextAllocHuge(m.context, sizeof(float) * (Size) cap * dim);
			}
			else if (dim != m.dim)
				elog(ERROR, "item vectors of model \"%s\" version %d have different lengths",
					 name, version);
			if (m.n == cap)
			{
				if ((Size) cap * 2 * dim * sizeof(float) >= MaxAllocHugeSize / 2)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("item matrix of model \"%s\" is too large", name)));
				cap *= 2;
				m.ids = repalloc_huge(m.ids, sizeof(int64) * cap);
				m.v = repalloc_huge(m.v, sizeof(float) * (Size) cap * dim);
			}
			m.ids[m.n] = id;
			VectorToFloats(a, m.v + (Size) m.n * dim);
			m.n++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);

	/* complete: evict the least recently used slot and keep the matrix */
	for (int i = 1; i < EMBEDDING_CACHE_SIZE; i++)
		if (slot->context != NULL &&
			(item_cache[i].context == NULL || item_cache[i].last_used < slot->last_used))
			slot = &item_cache[i];
	if (slot->context != NULL)
		MemoryContextDelete(slot->context);
	MemoryContextSetParent(m.context, TopMemoryContext);
	*slot = m;
	return slot;
}

/* Get the cached item matrix of a model version, loading it if needed */
static ItemMatrix *
GetItemMatrix(const char *name, int32 version, const char *tuple_id)
{
	ItemMatrix *slot = NULL;

	for (int i = 0; i < EMBEDDING_CACHE_SIZE; i++)
		if (item_cache[i].context != NULL && item_cache[i].version == version &&
			strcmp(item_cache[i].name, name) == 0 &&
			strcmp(item_cache[i].tuple_id, tuple_id) == 0)
			slot = &item_cache[i];
	if (slot == NULL)
		slot = LoadItemMatrix(name, version, tuple_id);
	slot->last_used = ++item_cache_clock;
	return slot;
}

/* Is candidate (score a, id ia) better than (b, ib): higher score, then smaller id */
static inline bool
Better(float a, int64 ia, float b, int64 ib)
{
	return a > b || (a == b && ia < ib);
}

/* Restore the min-heap (worst on top) below position i */
static void
SiftDown(int *heap, int size, int i, const float *score, const int64 *ids)
{
	for (;;)
	{
		int			worst = i;
		int			l = 2 * i + 1;
		int			r = l + 1;

		if (l < size && Better(score[heap[worst]], ids[heap[worst]], score[heap[l]], ids[heap[l]]))
			worst = l;
		if (r < size && Better(score[heap[worst]], ids[heap[worst]], score[heap[r]], ids[heap[r]]))
			worst = r;
		if (worst == i)
			return;
		{
			int			t = heap[i];

			heap[i] = heap[worst];
			heap[worst] = t;
		}
		i = worst;
	}
}

/* Compare ids for bsearch */
static int
CompareId(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

PG_FUNCTION_INFO_V1(embedding_recommend);
/*
 * Get the top-k items of a user of the newest version of a model, best
 * first (ties by smaller item id), optionally without the items the user
 * had in the training table.  An unknown user gets no rows.
 */
Datum
embedding_recommend(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *name_t = PG_GETARG_TEXT_PP(0);
	int64		user_id = PG_GETARG_INT64(1);
	int32		k = PG_GETARG_INT32(2);
	bool		exclude_seen = PG_GETARG_BOOL(3);
	char	   *name = text_to_cstring(name_t);
	Datum		args[3];
	bool		isnull;
	int32		version;
	char	   *kind;
	char	   *tuple_id;
	ItemMatrix *items;
	float	   *u = NULL;
	float	   *score;
	bool	   *skip;
	int		   *heap;
	int			size = 0;
	int64	   *seen = NULL;
	int			nseen = 0;
	bool		found_user;
	int			spi_level;

	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be at least 1")));
	InitMaterializedSRF(fcinfo, 0);

	spi_level = RecsysSpiConnect();
	PrepareRecommendPlans();

	args[0] = CStringGetTextDatum(name);
	if (SPI_execute_plan(plan_model, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "model lookup failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name)));
	version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	kind = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	tuple_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	if (strcmp(kind, "embeddings") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" is not an embeddings model but \"%s\"", name, kind)));

	/* the user's vector and seen items, copied out of SPI memory */
	args[1] = Int32GetDatum(version);
	args[2] = Int64GetDatum(user_id);
	if (SPI_execute_plan(plan_user, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "user lookup failed");
	found_user = SPI_processed > 0;
	if (found_user)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		ArrayType  *ua = DatumGetArrayTypeP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		Datum		sd = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull);
		int			udim;

		udim = VectorDim(ua);
		u = (float *) SPI_palloc(sizeof(float) * udim);
		VectorToFloats(ua, u);
		if (exclude_seen && !isnull)
		{
			ArrayType  *sa = DatumGetArrayTypeP(sd);

			if (ARR_ELEMTYPE(sa) != INT8OID || ARR_NDIM(sa) > 1 || ARR_HASNULL(sa))
				elog(ERROR, "seen items of user " INT64_FORMAT " are malformed", user_id);
			nseen = ARR_NDIM(sa) == 0 ? 0 : ARR_DIMS(sa)[0];
			seen = (int64 *) SPI_palloc(sizeof(int64) * Max(nseen, 1));
			memcpy(seen, ARR_DATA_PTR(sa), sizeof(int64) * nseen);
		}

		items = GetItemMatrix(name, version, tuple_id);
		if (items->n > 0 && items->dim != udim)
			elog(ERROR, "user and item vectors of model \"%s\" have different lengths", name);
	}
	else
		items = NULL;
	RecsysSpiFinish(spi_level);

	if (!found_user || items->n == 0)
		PG_RETURN_NULL();

	/* all scores in one gemv, then a heap of the k best */
	score = palloc(sizeof(float) * items->n);
	skip = palloc0(sizeof(bool) * items->n);
	LinalgSgemv(items->n, items->dim, 1.0f, items->v, u, 0.0f, score);
	for (int s = 0; s < nseen; s++)
	{
		int64	   *hit = bsearch(&seen[s], items->ids, items->n, sizeof(int64), CompareId);

		if (hit)
			skip[hit - items->ids] = true;
	}
	k = Min(k, items->n);
	heap = palloc(sizeof(int) * k);
	for (int i = 0; i < items->n; i++)
	{
		if (skip[i])
			continue;
		if (size < k)
		{
			/* sift up */
			int			c = size++;

			heap[c] = i;
			while (c > 0)
			{
				int			p = (c - 1) / 2;

				if (!Better(score[heap[p]], items->ids[heap[p]], score[heap[c]], items->ids[heap[c]]))
					break;
				{
					int			t = heap[p];

					heap[p] = heap[c];
					heap[c] = t;
				}
				c = p;
			}
		}
		else if (Better(score[i], items->ids[i], score[heap[0]], items->ids[heap[0]]))
		{
			heap[0] = i;
			SiftDown(heap, size, 0, score, items->ids);
		}
	}

	/* pop worst-first into the back of the output order */
	{
		int		   *order = palloc(sizeof(int) * Max(size, 1));
		int			n = size;

		for (int pos = n - 1; pos >= 0; pos--)
		{
			order[pos] = heap[0];
			heap[0] = heap[--size];
			SiftDown(heap, size, 0, score, items->ids);
		}
		for (int pos = 0; pos < n; pos++)
		{
			Datum		values[2];
			bool		nulls[2] = {false, false};

			values[0] = Int64GetDatum(items->ids[order[pos]]);
			values[1] = Float4GetDatum(score[order[pos]]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	PG_RETURN_NULL();
}
