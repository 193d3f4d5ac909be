/*
 * twotower/serving.c
 *		Cold start with a stored two-tower model: the vector of a user or an
 *		item given by a row of features (never trained on, or not in the
 *		feature tables at all), and recommendations for a user given by a
 *		row.  Stored users and items are served by recommend, recommend_all
 *		and the metrics as for any embeddings model.
 *
 * The tower is rebuilt per call from the models row (the fitted spec in
 * its config, float32 tensors in its weights), read under the caller's
 * privileges; a row gets an empty id bag, i.e. no id embedding.
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

#include "store/arrays.h"
#include "store/model_store.h"
#include "store/safetensors.h"
#include "store/spi_safe.h"
#include "twotower/twotower.h"

/* A tower rebuilt from the store */
typedef struct ServedTower
{
	FeatureSpec *spec;
	TtTower		tower;
	double	   *params;
	int32		version;
} ServedTower;

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

/* Load one tower (side "user" or "item") of a stored two-tower model */
static void
LoadTower(const char *model, bool version_null, int32 version, const char *side, ServedTower *st)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	bool		isnull;
	Jsonb	   *config;
	bytea	   *weights;
	JsonbContainer *tt,
			   *tw,
			   *opts;
	JsonbValue *v;
	TtTowerConfig cfg;
	SafetensorsFile file;
	SafetensorsError err;
	MemoryContext cxt = CurrentMemoryContext;

	args[0] = CStringGetTextDatum(model);
	args[1] = Int32GetDatum(version);
	if (version_null)
		nulls[1] = 'n';
	if (SPI_execute_with_args("SELECT m.config, m.weights, m.version FROM recsys.models m"
							  " WHERE m.name OPERATOR(pg_catalog.=) $1"
							  " AND m.version OPERATOR(pg_catalog.=) recsys.embedding_model_version($1, $2)",
							  2, types, args, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading model \"%s\" failed", model);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", model)));
	MemoryContextSwitchTo(cxt);
	config = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	{
		Datum		w = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

		weights = isnull ? NULL : DatumGetByteaPCopy(w);
	}
	st->version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));

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

/* The tower output of one row value, as floats */
static float *
RowVector(FunctionCallInfo fcinfo, const char *side, int version_arg, int *dim)
{
	char	   *model;
	HeapTupleHeader row;
	ServedTower st;
	TtInputs   *in;
	int64		r0 = 0;
	float	   *out;
	int			spi_level;
	MemoryContext cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model must not be NULL")));
	model = text_to_cstring(PG_GETARG_TEXT_PP(0));
	row = PG_GETARG_HEAPTUPLEHEADER(1);
	spi_level = RecsysSpiConnect();
	MemoryContextSwitchTo(cxt);
	LoadTower(model, PG_ARGISNULL(version_arg), PG_ARGISNULL(version_arg) ? 0 : PG_GETARG_INT32(version_arg),
			  side, &st);
	MemoryContextSwitchTo(cxt);
	in = TwoTowerRowInputs(st.spec, row, st.tower.cfg.nbags > st.spec->ncategorical + st.spec->nmulti,
						   psprintf("the %s row", side));
	TtTowerForward(&st.tower, st.params, in, &r0, 1);
	*dim = st.tower.cfg.out_dim;
	out = palloc(sizeof(float) * *dim);
	for (int d = 0; d < *dim; d++)
		out[d] = (float) st.tower.out[d];
	RecsysSpiFinish(spi_level);
	MemoryContextSwitchTo(cxt);
	return out;
}

PG_FUNCTION_INFO_V1(two_tower_user_vector);
/* The user tower's vector of a row of user features (cold start) */
Datum
two_tower_user_vector(PG_FUNCTION_ARGS)
{
	int			dim;
	float	   *x;

	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	x = RowVector(fcinfo, "user", 2, &dim);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(x, dim));
}

PG_FUNCTION_INFO_V1(two_tower_item_vector);
/* The item tower's vector of a row of item features (cold start) */
Datum
two_tower_item_vector(PG_FUNCTION_ARGS)
{
	int			dim;
	float	   *x;

	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	x = RowVector(fcinfo, "item", 2, &dim);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(x, dim));
}

PG_FUNCTION_INFO_V1(two_tower_recommend);
/*
 * Top-k stored items for a user given by a row of user features: its tower
 * vector scored against every stored item vector (ties: smaller id)
 */
Datum
two_tower_recommend(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			dim;
	float	   *x;
	int			k;
	Oid			types[4] = {TEXTOID, INT4OID, FLOAT4ARRAYOID, INT4OID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			spi_level;
	MemoryContext cxt;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
		return (Datum) 0;
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k must not be NULL")));
	k = PG_GETARG_INT32(2);
	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be at least 1")));
	cxt = CurrentMemoryContext;
	x = RowVector(fcinfo, "user", 3, &dim);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_ARGISNULL(3) ? 0 : PG_GETARG_DATUM(3);
	if (PG_ARGISNULL(3))
		nulls[1] = 'n';
	args[2] = PointerGetDatum(FloatsToArray(x, dim));
	args[3] = Int32GetDatum(k);
	spi_level = RecsysSpiConnect();
	if (SPI_execute_with_args("SELECT v.id, pg_catalog.float4(recsys.dot(v.embedding, $3)) AS s"
							  " FROM recsys.item_vectors v"
							  " WHERE v.model OPERATOR(pg_catalog.=) $1"
							  " AND v.version OPERATOR(pg_catalog.=) recsys.embedding_model_version($1, $2)"
							  " ORDER BY s DESC, v.id LIMIT $4", 4, types, args, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "scoring items failed");
	MemoryContextSwitchTo(cxt);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Datum		values[2];
		bool		isnull[2];

		values[0] = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull[0]);
		values[1] = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull[1]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
	}
	RecsysSpiFinish(spi_level);
	MemoryContextSwitchTo(cxt);
	return (Datum) 0;
}
