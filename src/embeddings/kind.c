/*
 * embeddings/kind.c
 *		The "embeddings" kind of the model store: the loader that turns a stored
 *		version into the item matrix (ids ascending) and the item Gramian
 *		that serving and fold-in use.
 *
 * The store keys entries on the models row; writes to the vectors tables
 * touch that row, so whatever the loader derives from the vectors is valid
 * exactly as long as the entry.  The Gramian comes from models.weights (a
 * safetensors file with an F64 [dim, dim] tensor "item_gramian") when the
 * trainer stored one, else it is computed here as Y^T Y.
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
#include "utils/jsonb.h"

#include "store/arrays.h"
#include "store/model_kind.h"
#include "embeddings/kind.h"
#include "kernel/linalg.h"
#include "settings.h"
#include "kernel/rng.h"
#include "store/safetensors.h"
#include "twotower/twotower.h"

#define EMBEDDING_FETCH_ROWS 4096

/* Compare int64 ids for bsearch */
static int
CompareId(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* Get the row of an item id in the model's item matrix, or -1 */
int
EmbeddingItemRow(const EmbeddingModel *m, int64 id)
{
	int64	   *hit;

	if (m->n_items == 0)
		return -1;
	if (m->dense_ids)
		return (id >= m->item_ids[0] &&
				(uint64) id - (uint64) m->item_ids[0] < (uint64) m->n_items) ?
			(int) ((uint64) id - (uint64) m->item_ids[0]) : -1;
	hit = bsearch(&id, m->item_ids, m->n_items, sizeof(int64), CompareId);
	return hit ? (int) (hit - m->item_ids) : -1;
}

/* Get a number of a JSON object (or of its "options" member); false if absent */
static bool
ConfigNumber(Jsonb *config, const char *key, bool in_options, double *out)
{
	JsonbValue	buf;
	JsonbValue *v;
	JsonbContainer *obj = &config->root;

	if (!JsonContainerIsObject(obj))
		return false;
	if (in_options)
	{
		JsonbValue	obuf;
		JsonbValue *o = getKeyJsonValueFromContainer(obj, "options", strlen("options"), &obuf);

		if (o == NULL || o->type != jbvBinary || !JsonContainerIsObject(o->val.binary.data))
			return false;
		obj = o->val.binary.data;
	}
	v = getKeyJsonValueFromContainer(obj, key, strlen(key), &buf);
	if (v == NULL || v->type != jbvNumeric)
		return false;
	*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	return !isnan(*out) && !isinf(*out);
}

/* Get whether a config's method is the given one */
static bool
ConfigMethodIs(Jsonb *config, const char *method)
{
	JsonbValue	buf;
	JsonbValue *v;

	if (!JsonContainerIsObject(&config->root))
		return false;
	v = getKeyJsonValueFromContainer(&config->root, "method", strlen("method"), &buf);
	return v != NULL && v->type == jbvString && v->val.string.len == strlen(method) &&
		strncmp(v->val.string.val, method, v->val.string.len) == 0;
}

/*
 * Get the length of a row of B of an ease model: one value per item, so
 * recsys.max_dim (a bound on embedding dimensions) does not apply; the
 * loader checks it against the number of items
 */
static int
EaseRowLength(const EmbeddingModel *m, ArrayType *a, int64 id)
{
	if (ARR_ELEMTYPE(a) != FLOAT4OID || ARR_NDIM(a) != 1 || ARR_DIMS(a)[0] < 1 ||
		(ARR_HASNULL(a) && array_contains_nulls(a)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("row of item " INT64_FORMAT " of ease model \"%s\" version %d is malformed",
						id, m->name, m->version),
				 errdetail("A row of B is a real[] of one value per item, without NULLs.")));
	return ARR_DIMS(a)[0];
}

/*
 * Read the item vectors of a model version (ids ascending) into m, in the
 * current memory context (SPI calls switch contexts: they are switched back)
 */
static void
LoadItemVectors(EmbeddingModel *m)
{
	static StorePlan plan = {InvalidOid, NULL};
	Oid			types[2] = {TEXTOID, INT4OID};
	MemoryContext cxt = CurrentMemoryContext;
	Datum		args[2];
	Portal		portal;
	Size		cap = 1024;

	ModelStorePlan(&plan, STORE_ITEM_VECTORS,
				   "SELECT v.id, v.embedding FROM %s v"
				   " WHERE v.model OPERATOR(pg_catalog.=) $1"
				   " AND v.version OPERATOR(pg_catalog.=) $2"
				   " ORDER BY v.id", 2, types);
	args[0] = CStringGetTextDatum(m->name);
	args[1] = Int32GetDatum(m->version);
	m->item_ids = MemoryContextAlloc(cxt, sizeof(int64) * cap);
	portal = SPI_cursor_open(NULL, plan.plan, args, NULL, true);
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
			int			dim = m->ease ? EaseRowLength(m, a, id) : VectorDim(a);

			if (m->n_items == 0)
			{
				m->dim = dim;
				m->items = MemoryContextAllocHuge(cxt, sizeof(float) * cap * dim);
			}
			else if (dim != m->dim)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("item vectors of model \"%s\" version %d have different lengths",
								m->name, m->version),
						 errdetail("Item " INT64_FORMAT " has %d values, the first item %d.",
								   id, dim, m->dim)));
			if ((Size) m->n_items == cap)
			{
				if (cap * 2 * dim * sizeof(float) >= MaxAllocHugeSize / 2 || cap * 2 > INT_MAX / 2)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("item matrix of model \"%s\" is too large", m->name)));
				cap *= 2;
				m->item_ids = repalloc_huge(m->item_ids, sizeof(int64) * cap);
				m->items = repalloc_huge(m->items, sizeof(float) * cap * dim);
			}
			m->item_ids[m->n_items] = id;
			VectorToFloats(a, m->items + (Size) m->n_items * dim);
			m->n_items++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	MemoryContextSwitchTo(cxt);
}

/*
 * Get the stored item Gramian from models.weights into m->gramian; false
 * when the row has no weights or no such tensor.  A tensor of the wrong type
 * or shape is an error: it would silently change every fold-in.
 */
static bool
ReadStoredGramian(EmbeddingModel *m, bytea *weights)
{
	SafetensorsFile file;
	SafetensorsError err;
	const SafetensorsTensor *t;
	int			k = m->dim;

	if (weights == NULL)
		return false;
	if (!SafetensorsParse((const unsigned char *) VARDATA_ANY(weights),
						  VARSIZE_ANY_EXHDR(weights), &file, &err))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("weights of model \"%s\" version %d are not a valid safetensors file: %s",
						m->name, m->version, err.message),
				 err.detail[0] ? errdetail("%s", err.detail) : 0));
	t = SafetensorsFind(&file, EMBEDDING_GRAMIAN_TENSOR);
	if (t == NULL)
	{
		SafetensorsFree(&file);
		return false;
	}
	if (t->dtype != ST_F64 || t->ndim != 2 || t->shape[0] != (uint64) k ||
		t->shape[1] != (uint64) k || t->end - t->begin != sizeof(double) * (uint64) k * k)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("tensor \"%s\" of model \"%s\" version %d must be F64 [%d, %d]",
						EMBEDDING_GRAMIAN_TENSOR, m->name, m->version, k, k)));
	/* little-endian F64, as this platform stores doubles */
	memcpy(m->gramian, file.data + t->begin, sizeof(double) * (Size) k * k);
	SafetensorsFree(&file);
	for (Size i = 0; i < (Size) k * k; i++)
		if (!isfinite(m->gramian[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("tensor \"%s\" of model \"%s\" version %d holds NaN or infinite values",
							EMBEDDING_GRAMIAN_TENSOR, m->name, m->version)));
	return true;
}

/* Compute the item Gramian Y^T Y over blocks of rows widened to double */
static void
ComputeGramian(EmbeddingModel *m)
{
	int			k = m->dim;
	int			block = 1024;
	double	   *rows = palloc(sizeof(double) * (Size) block * k);

	memset(m->gramian, 0, sizeof(double) * (Size) k * k);
	for (int first = 0; first < m->n_items; first += block)
	{
		int			nb = Min(block, m->n_items - first);

		for (Size i = 0; i < (Size) nb * k; i++)
			rows[i] = m->items[(Size) first * k + i];
		LinalgSyrkRows(k, nb, rows, 1.0, m->gramian);
		CHECK_FOR_INTERRUPTS();
	}
	LinalgSymmetrize(k, m->gramian);
	pfree(rows);
}

/* Load an embeddings model version (the store's loader for this kind) */
static void *
EmbeddingStoreLoad(const ModelStoreRow *row)
{
	EmbeddingModel *m = palloc0(sizeof(EmbeddingModel));
	double		n_train = 0.0;

	m->name = pstrdup(row->name);
	m->version = row->version;
	m->ease = ConfigMethodIs(row->config, "ease");
	LoadItemVectors(m);
	m->dense_ids = m->n_items > 0 &&
		m->item_ids[m->n_items - 1] - m->item_ids[0] == (int64) m->n_items - 1;
	if (m->ease && m->n_items > 0 && m->dim != m->n_items)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ease model \"%s\" version %d has %d items with rows of %d values",
						m->name, m->version, m->n_items, m->dim),
				 errdetail("Row t of B must have one value per item.")));
	if (m->n_items > 0 && !m->ease)
	{
		m->gramian = palloc(sizeof(double) * (Size) m->dim * m->dim);
		m->gramian_stored = ReadStoredGramian(m, row->weights);
		if (!m->gramian_stored)
			ComputeGramian(m);
	}

	m->fold.dim = m->dim;
	m->fold.n_items = m->n_items;
	m->fold.items = m->items;
	m->fold.gramian = m->gramian;
	m->has_objective = ConfigNumber(row->config, "gramian_weight", false, &m->fold.gramian_weight) &&
		ConfigNumber(row->config, "l2", false, &m->fold.l2) &&
		m->fold.gramian_weight >= 0.0 && m->fold.l2 >= 0.0;
	/* nu: the trainer's option (default 1), or a top-level key */
	if (!ConfigNumber(row->config, "nu", true, &m->fold.nu) &&
		!ConfigNumber(row->config, "nu", false, &m->fold.nu))
		m->fold.nu = 1.0;
	if (m->fold.nu < 0.0 || m->ease)
		m->has_objective = false;
	/* a two-tower model's users are tower outputs: fold-in is refused (serving.c) */
	{
		JsonbValue	buf;
		JsonbValue *v = JsonContainerIsObject(&row->config->root) ?
			getKeyJsonValueFromContainer(&row->config->root, "method", strlen("method"), &buf) : NULL;

		m->two_tower = v != NULL && v->type == jbvString && v->val.string.len == 9 &&
			strncmp(v->val.string.val, "two_tower", 9) == 0;
		/* parsed once per cached version, for the cold-start functions */
		if (m->two_tower)
			m->towers = TwoTowerLoadServed(row);
	}
	/* N of the regularization: the training's item count, else the stored one */
	if (!ConfigNumber(row->config, "n_items", false, &n_train) || n_train < 1.0)
		n_train = m->n_items;
	m->fold.n_train_items = n_train;
	return m;
}

static const char *const EmbeddingTables[] = {"item_vectors", "user_vectors", NULL};

const ModelKind EmbeddingModelKind = {"embeddings", EmbeddingStoreLoad, EmbeddingTables};
