/*
 * twotower/serving.c
 *		Cold start with a stored two-tower model: the vector of a user or an
 *		item given by a row of features (never trained on, or not in the
 *		feature tables at all), and recommendations for a user given by a
 *		row.  Stored users and items are served by recommend, recommend_all
 *		and the metrics as for any embeddings model.
 *
 * The towers are built once per cached model: the embeddings kind of the
 * model store (embeddings/kind.c) calls TwoTowerLoadServed for a version
 * whose config says "two_tower", so a version is read through the store
 * (this node's placement on Citus, privileges checked per statement) and
 * parsed once per backend.  A row gets an empty id bag, i.e. no id
 * embedding.  recommend_for_features scores with the block scorer of
 * recommend (FoldInScoreBlock over the cached item matrix) and the same
 * bounded top-k.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "embeddings/kind.h"
#include "kernel/foldin.h"
#include "kernel/topk.h"
#include "store/arrays.h"
#include "store/model_kind.h"
#include "store/model_store.h"
#include "store/safetensors.h"
#include "store/spi_safe.h"
#include "twotower/twotower.h"

/* Most k served, as recommend */
#define TT_SERVE_MAX_K 1000000

/* Get a key of a jsonb container, or raise a corrupted-model error */
static JsonbValue *
StoredKey(JsonbContainer *c, const char *key, const char *model)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = c ? findJsonbValueFromContainer(c, JB_FOBJECT, &k) : NULL;
	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" is not a two-tower model", model),
				 errdetail("Its config has no \"%s\".", key),
				 errhint("Train it with recsys.train_two_tower.")));
	return v;
}

/* Get a number of a stored config */
static int
StoredInt(JsonbContainer *c, const char *key, const char *model)
{
	JsonbValue *v = StoredKey(c, key, model);

	if (v->type != jbvNumeric)
		elog(ERROR, "two-tower config key \"%s\" of model \"%s\" is not a number", key, model);
	return DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(v->val.numeric)));
}

/* Copy a stored F32 tensor into params, checking its size */
static void
ReadTensor(const SafetensorsFile *f, const char *name, double *dst, size_t n, const char *model)
{
	const SafetensorsTensor *t = SafetensorsFind(f, name);
	const float *src;

	if (t == NULL || t->dtype != ST_F32 || t->nelem != n || t->end - t->begin != n * sizeof(float))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("tensor \"%s\" of model \"%s\" is missing or has the wrong shape", name, model)));
	src = (const float *) (f->data + t->begin);
	for (size_t j = 0; j < n; j++)
		dst[j] = src[j];
}

/* Build one tower (side "user" or "item") from a stored config and weights */
static void
ParseServedTower(const char *model, Jsonb *config, bytea *weights, const char *side, ServedTower *st)
{
	JsonbContainer *tt,
			   *tw,
			   *opts;
	JsonbValue *v;
	TtTowerConfig cfg;
	SafetensorsFile file;
	SafetensorsError err;
	MemoryContext cxt = CurrentMemoryContext;

	v = StoredKey(&config->root, "two_tower", model);
	tt = v->type == jbvBinary ? v->val.binary.data : NULL;
	v = StoredKey(tt, side, model);
	tw = v->type == jbvBinary ? v->val.binary.data : NULL;
	v = StoredKey(tt, "options", model);
	opts = v->type == jbvBinary ? v->val.binary.data : NULL;
	v = StoredKey(tw, "features", model);
	st->spec = v->type == jbvNull ? TwoTowerEmptySpec() : FeatureSpecParse(v, false);

	memset(&cfg, 0, sizeof(cfg));
	TwoTowerShapeInputs(st->spec, StoredInt(tw, "id_vocab", model), StoredInt(tw, "id_dim", model), &cfg);
	v = StoredKey(tw, "hidden", model);
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data) ||
		JsonContainerSize(v->val.binary.data) > TT_MAX_HIDDEN)
		elog(ERROR, "two-tower config \"hidden\" of model \"%s\" is not a list of widths", model);
	cfg.nhidden = JsonContainerSize(v->val.binary.data);
	for (int l = 0; l < cfg.nhidden; l++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(v->val.binary.data, l);

		if (e->type != jbvNumeric)
			elog(ERROR, "two-tower config \"hidden\" of model \"%s\" is not a list of widths", model);
		cfg.hidden[l] = DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(e->val.numeric)));
		if (cfg.hidden[l] < 1 || cfg.hidden[l] > TT_MAX_WIDTH)
			elog(ERROR, "two-tower config \"hidden\" of model \"%s\" has a bad width", model);
	}
	v = StoredKey(tw, "activation", model);
	cfg.activation = (v->type == jbvString && v->val.string.len == 4 &&
					  strncmp(v->val.string.val, "tanh", 4) == 0) ? TT_TANH :
		(v->type == jbvString && v->val.string.len == 6 &&
		 strncmp(v->val.string.val, "linear", 6) == 0) ? TT_LINEAR : TT_RELU;
	cfg.out_dim = StoredInt(opts, "dim", model);
	if (cfg.out_dim < 1 || cfg.out_dim > TT_MAX_WIDTH)
		elog(ERROR, "two-tower config \"dim\" of model \"%s\" is out of range", model);
	v = StoredKey(opts, "normalize", model);
	cfg.normalize = v->type == jbvBool && v->val.boolean;

	st->params = NULL;
	TtTowerInit(&st->tower, &cfg, 1, palloc0(TtTowerBytes(&cfg, 1)));
	st->params = MemoryContextAllocHuge(cxt, sizeof(double) * Max(st->tower.nparams, 1));
	if (weights == NULL ||
		!SafetensorsParse((const unsigned char *) VARDATA_ANY(weights), VARSIZE_ANY_EXHDR(weights),
						  &file, &err))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("weights of model \"%s\" are not a valid safetensors file", model)));
	for (int f = 0; f < cfg.nbags; f++)
		ReadTensor(&file, psprintf("%s.embeddings.%s.weight", side, TwoTowerBagName(st->spec, f)),
				   st->params + st->tower.emb_off[f], (size_t) cfg.vocab[f] * cfg.emb_dim[f], model);
	for (int l = 0; l < st->tower.nlayers; l++)
	{
		ReadTensor(&file, psprintf("%s.layers.%d.weight", side, l), st->params + st->tower.w_off[l],
				   (size_t) st->tower.width[l + 1] * st->tower.width[l], model);
		ReadTensor(&file, psprintf("%s.layers.%d.bias", side, l), st->params + st->tower.b_off[l],
				   (size_t) st->tower.width[l + 1], model);
	}
	SafetensorsFree(&file);
}

/*
 * Both towers of a two-tower models row (the embeddings kind's loader calls
 * it in the cache entry's memory context)
 */
TwoTowerServed *
TwoTowerLoadServed(const ModelStoreRow *row)
{
	TwoTowerServed *t = palloc0(sizeof(TwoTowerServed));

	ParseServedTower(row->name, row->config, row->weights, "user", &t->side[0]);
	ParseServedTower(row->name, row->config, row->weights, "item", &t->side[1]);
	return t;
}

/* Get the cached embeddings model of a call (model arg 0), checked to have towers */
static const EmbeddingModel *
GetTwoTowerModel(FunctionCallInfo fcinfo, int version_arg)
{
	ModelRef   *ref = (ModelRef *) fcinfo->flinfo->fn_extra;
	int			version = 0;
	uint64		load_id;
	const EmbeddingModel *m;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model must not be NULL")));
	if (!PG_ARGISNULL(version_arg))
	{
		version = PG_GETARG_INT32(version_arg);
		if (version < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("version must be at least 1")));
	}
	if (ref == NULL)
	{
		ref = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ModelRef));
		fcinfo->flinfo->fn_extra = ref;
	}
	m = ModelStoreAcquire(ref, fcinfo->flinfo->fn_mcxt, &EmbeddingModelKind,
						  PG_GETARG_TEXT_PP(0), version, &load_id, NULL);
	if (m->towers == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" version %d is not a two-tower model", m->name, m->version),
				 errdetail("Its config has no \"two_tower\"."),
				 errhint("Train it with recsys.train_two_tower.")));
	return m;
}

/* The tower output (side 0 user, 1 item) of the row argument, as floats */
static float *
RowVector(FunctionCallInfo fcinfo, const EmbeddingModel *m, int side, int *dim)
{
	ServedTower *st = &((TwoTowerServed *) m->towers)->side[side];
	HeapTupleHeader row = PG_GETARG_HEAPTUPLEHEADER(1);
	TtInputs   *in;
	int64		r0 = 0;
	float	   *out;

	in = TwoTowerRowInputs(st->spec, row, st->tower.cfg.nbags > st->spec->ncategorical + st->spec->nmulti,
						   side == 0 ? "the user row" : "the item row");
	TtTowerForward(&st->tower, st->params, in, &r0, 1);
	*dim = st->tower.cfg.out_dim;
	out = palloc(sizeof(float) * *dim);
	for (int d = 0; d < *dim; d++)
		out[d] = (float) st->tower.out[d];
	return out;
}

PG_FUNCTION_INFO_V1(two_tower_user_vector);
/* The user tower's vector of a row of user features (cold start) */
Datum
two_tower_user_vector(PG_FUNCTION_ARGS)
{
	const EmbeddingModel *m;
	int			dim;
	float	   *x;

	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	m = GetTwoTowerModel(fcinfo, 2);
	x = RowVector(fcinfo, m, 0, &dim);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(x, dim));
}

PG_FUNCTION_INFO_V1(two_tower_item_vector);
/* The item tower's vector of a row of item features (cold start) */
Datum
two_tower_item_vector(PG_FUNCTION_ARGS)
{
	const EmbeddingModel *m;
	int			dim;
	float	   *x;

	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	m = GetTwoTowerModel(fcinfo, 2);
	x = RowVector(fcinfo, m, 1, &dim);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(x, dim));
}

PG_FUNCTION_INFO_V1(two_tower_recommend);
/*
 * Top-k stored items for a user given by a row of user features: its tower
 * vector scored against the cached item matrix by recommend's block scorer,
 * best first (ties: smaller id)
 */
Datum
two_tower_recommend(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const EmbeddingModel *m;
	int			dim;
	float	   *x;
	float	   *scores;
	int			k;
	TopK		top;
	int			got;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k must not be NULL")));
	k = PG_GETARG_INT32(2);
	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be at least 1")));
	if (k > TT_SERVE_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("k must be at most %d", TT_SERVE_MAX_K)));
	if (PG_ARGISNULL(1))
		return (Datum) 0;
	m = GetTwoTowerModel(fcinfo, 3);
	x = RowVector(fcinfo, m, 0, &dim);
	if (m->n_items == 0)
		return (Datum) 0;
	if (dim != m->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("user tower of model \"%s\" version %d gives %d values, its item vectors %d",
						m->name, m->version, dim, m->dim)));
	k = Min(k, m->n_items);
	scores = palloc_extended(sizeof(float) * (Size) m->n_items, MCXT_ALLOC_HUGE);
	FoldInScoreBlock(&m->fold, 1, x, scores);
	TopKInit(&top, k, palloc(sizeof(TopKItem) * k));
	TopKPushBlock(&top, m->item_ids, scores, m->n_items);
	got = TopKSorted(&top);
	for (int r = 0; r < got; r++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int64GetDatum(top.items[r].id);
		values[1] = Float4GetDatum(top.items[r].score);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
