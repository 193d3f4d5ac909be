/*
 * twotower/train.c
 *		recsys.train_two_tower: two-tower models over feature tables, trained
 *		in this backend with the kernel of src/kernel/twotower.c
 *		(doc/two-tower.md), stored as an embeddings model (every user of the
 *		user table and every item of the item table gets its tower's output)
 *		plus the towers themselves (safetensors) and the fitted feature specs.
 *
 * prepare: arguments and config checked (the option table below), the
 *		relations' columns checked, the model's next version taken as
 *		train_embeddings takes it (recsys.begin_model_version: a name of
 *		another kind is refused here, numbers are never reused);
 * load:	interactions (embeddings/interactions.c), then each feature table
 *		(inputs.c, fitting its spec in the same scan), all counted against
 *		recsys.training_memory before the trainer is allocated;
 * epochs:	shuffled minibatches, one kernel step and one Adam update each,
 *		CHECK_FOR_INTERRUPTS per step and per block of a Gramian pass;
 *		after each epoch the exact penalty and, with a validation relation,
 *		Recall@k and NDCG@k over every item of the item table; patience
 *		keeps the best epoch's parameters;
 * store:	towers rounded to float32 (what is stored), then the vectors they
 *		give, written to the store in the caller's transaction, logged as
 *		'trained' and promoted when the config says so
 *		(recsys.finish_model_version).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "embeddings/interactions.h"
#include "embeddings/vector_rows.h"
#include "kernel/rng.h"
#include "kernel/topk.h"
#include "settings.h"
#include "store/arrays.h"
#include "store/model_row.h"
#include "store/model_store.h"
#include "store/options.h"
#include "store/safetensors.h"
#include "store/spi_safe.h"
#include "twotower/twotower.h"

#define ARG_MODEL 0
#define ARG_INTERACTIONS 1
#define ARG_USERS 2
#define ARG_ITEMS 3
#define ARG_CONFIG 4
#define ARG_VALIDATION 5
#define ARG_USER_COLUMN 6
#define ARG_ITEM_COLUMN 7
#define ARG_WEIGHT_COLUMN 8
#define RESULT_COLUMNS 8
#define TT_MAX_EPOCHS 100000
#define TT_WRITE_ROWS 1000
#define TT_SERVE_ROWS 256

/* Everything a run reads from its config */
typedef struct TwoTowerConfig
{
	int			dim;
	bool		normalize;
	int			method;
	int			loss;
	double		gramian_weight;
	double		l2;
	double		learning_rate;
	int			batch_size;
	int			epochs;
	int64		seed;
	double		alpha;
	int			negatives;
	int			sampling;
	double		beta1;
	double		beta2;
	double		eps;
	int			k;
	int			patience;
	bool		promote;		/* the store's (finish_model_version), not the model's */
	/* per tower: user 0, item 1 */
	Jsonb	   *tower[2];		/* its object in the config */
	Jsonb	   *spec[2];
	int			id_dim[2];
	int			nhidden[2];
	int			hidden[2][TT_MAX_HIDDEN];
	int			activation[2];
} TwoTowerConfig;

static const char *const method_words[] = {"exact", "sogram", "sagram", "sampled", NULL};
static const char *const loss_words[] = {"squared", "logistic", NULL};
static const char *const sampling_words[] = {"uniform", "popularity", NULL};
static const char *const activation_words[] = {"relu", "tanh", "linear", NULL};

#define OFF(f) offsetof(TwoTowerConfig, f)

/*
 * The options of train_two_tower, through the parser every trainer shares
 * (src/store/options.c): names, types, defaults, ranges
 * (recsys.two_tower_options()).  promote is the store's
 * (finish_model_version), not in the model's options; user and item are
 * the towers' objects, each read with tower_defs.
 */
static const OptionDef option_defs[] = {
	{"dim", 1, OPT_INTEGER, "32", 1, 4096, false, NULL, OFF(dim), "output width of both towers (the vectors' length)"},
	{"normalize", 1, OPT_BOOL, "false", 0, 0, false, NULL, OFF(normalize), "divide each tower's output by its norm"},
	{"method", 1, OPT_WORD, "\"sogram\"", 0, 0, false, method_words, OFF(method),
	"estimate of the Gramian term's gradient: exact (every user and item each step), sogram, sagram, sampled"},
	{"loss", 1, OPT_WORD, "\"logistic\"", 0, 0, false, loss_words, OFF(loss),
	"observed term: c (s - 1)^2 (as ALS) or c log(1 + e^-s)"},
	{"gramian_weight", 1, OPT_NUMBER, "1", 0, 1e6, false, NULL, OFF(gramian_weight),
	"w of w <G_u, G_v>_F, the mean of <u, v>^2 over all user-item pairs"},
	{"l2", 1, OPT_NUMBER, "0", 0, 1e6, false, NULL, OFF(l2), "lambda times the squared norm of every weight and embedding"},
	{"learning_rate", 1, OPT_NUMBER, "0.002", 1e-12, 1e3, false, NULL, OFF(learning_rate), "Adam step size"},
	{"batch_size", 1, OPT_INTEGER, "256", 1, 8192, false, NULL, OFF(batch_size), "training pairs per step"},
	{"epochs", 1, OPT_INTEGER, "10", 1, TT_MAX_EPOCHS, false, NULL, OFF(epochs), "passes over the training pairs"},
	{"seed", 1, OPT_INT64, "42", -9.2e18, 9.2e18, false, NULL, OFF(seed), "initial weights, shuffling and negatives"},
	{"alpha", 1, OPT_NUMBER, "0.1", 1e-9, 1, false, NULL, OFF(alpha), "sogram: rate of the moving average"},
	{"negatives", 1, OPT_INTEGER, "64", 1, 4096, false, NULL, OFF(negatives), "sampled: items drawn per step"},
	{"sampling", 1, OPT_WORD, "\"uniform\"", 0, 0, false, sampling_words, OFF(sampling),
	"sampled: negatives uniform over items or by their pair count"},
	{"beta1", 1, OPT_NUMBER, "0.9", 0, 0.999999, false, NULL, OFF(beta1), "Adam"},
	{"beta2", 1, OPT_NUMBER, "0.999", 0, 0.999999999, false, NULL, OFF(beta2), "Adam"},
	{"eps", 1, OPT_NUMBER, "1e-8", 1e-30, 1, false, NULL, OFF(eps), "Adam"},
	{"k", 1, OPT_INTEGER, "20", 1, 10000, false, NULL, OFF(k), "validation: Recall@k and NDCG@k"},
	{"patience", 1, OPT_INTEGER, "0", 0, TT_MAX_EPOCHS, false, NULL, OFF(patience),
	"validation: stop after this many epochs without a better NDCG@k (0: run every epoch) and keep the best"},
	{"promote", 1, OPT_BOOL, "false", 0, 0, false, NULL, OFF(promote),
	"point the alias serving at the new version (doc/deploying.md)", true},
	{"user", 1, OPT_OBJECT, NULL, 0, 0, false, NULL, OFF(tower[0]), "the user tower"},
	{"item", 1, OPT_OBJECT, NULL, 0, 0, false, NULL, OFF(tower[1]), "the item tower"},
};

static const OptionTable option_table = {option_defs, lengthof(option_defs)};

/* What a tower's object gives */
typedef struct TowerOptions
{
	Jsonb	   *features;
	int			id_dim;
	OptionNumbers hidden;
	int			activation;
} TowerOptions;

#define TOFF(f) offsetof(TowerOptions, f)

/* The options of a tower ("user" or "item" of the config) */
static const OptionDef tower_defs[] = {
	{"features", 1, OPT_OBJECT, NULL, 0, 0, false, NULL, TOFF(features), "the feature spec"},
	{"id_dim", 1, OPT_INTEGER, "0", 0, 4096, false, NULL, TOFF(id_dim), "width of the id embedding (0: none)"},
	{"hidden", 1, OPT_INTEGERS, NULL, 1, 16384, false, NULL, TOFF(hidden), "widths of the hidden layers"},
	{"activation", 1, OPT_WORD, "\"relu\"", 0, 0, false, activation_words, TOFF(activation),
	"activation of the hidden layers"},
};

/* The tower tables, user 0 and item 1: the same options, named with the tower in errors */
static const OptionTable tower_tables[2] = {
	{tower_defs, lengthof(tower_defs), "user."},
	{tower_defs, lengthof(tower_defs), "item."},
};

typedef struct TwoTowerRun
{
	char	   *model;
	int32		version;
	TwoTowerConfig cfg;
	InteractionSource src;
	Oid			relid[2];		/* feature tables */
	Oid			validation;
	char	   *config_json;	/* resolved scalar options */
	Jsonb	   *config;			/* the config argument, for the store (promote) */
	ReturnSetInfo *rsinfo;
	StringInfoData log;
	instr_time	start;
	double		load_seconds;
	Size		memory;
	int			best_epoch;
	double		best_ndcg;
} TwoTowerRun;

/* Get the seconds since a start time */
static double
SecondsSince(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}

/* The kernel's cancel hook */
static void
CheckInterrupts(void)
{
	CHECK_FOR_INTERRUPTS();
}

/* Read one tower's object ("user" or "item") */
static void
ParseTower(TwoTowerConfig *cfg, int side)
{
	const char *name = side == 0 ? "user" : "item";
	TowerOptions t;

	if (cfg->tower[side] == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("two-tower config: \"%s\" is missing", name),
				 errhint("Give each tower an object, e.g. \"%s\": {\"features\": {\"numeric\": [\"age\"]}, \"hidden\": [64]}.", name)));
	memset(&t, 0, sizeof(t));
	OptionsParse(&tower_tables[side], 1, "a tower", "train_two_tower", cfg->tower[side], &t, NULL, NULL);
	if (t.hidden.n > TT_MAX_HIDDEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s.hidden\" has %d layers, more than %d", name, t.hidden.n, TT_MAX_HIDDEN)));
	if (t.features == NULL && t.id_dim == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("two-tower config: the %s tower has no input", name),
				 errhint("Give it \"features\", or \"id_dim\" > 0 for an id embedding, or both.")));
	cfg->spec[side] = t.features;
	cfg->id_dim[side] = t.id_dim;
	cfg->nhidden[side] = t.hidden.n;
	for (int l = 0; l < t.hidden.n; l++)
		cfg->hidden[side][l] = (int) t.hidden.x[l];
	cfg->activation[side] = t.activation;
}

/* Check the config: every key known, values in range; resolved options as JSON */
static void
ParseConfig(Jsonb *config, TwoTowerConfig *cfg, char **json)
{
	StringInfoData s;

	memset(cfg, 0, sizeof(TwoTowerConfig));
	if (!JB_ROOT_IS_OBJECT(config))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("two-tower config must be a JSON object")));
	initStringInfo(&s);
	OptionsParse(&option_table, 1, "train_two_tower", "train_two_tower", config, cfg, NULL, &s);
	*json = s.data;
	if (cfg->dim > recsys_max_dim)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dim %d is more than recsys.max_dim (%d)", cfg->dim, recsys_max_dim)));
	ParseTower(cfg, 0);
	ParseTower(cfg, 1);
}

/* Get the feature spec of a tower (an empty spec when it has none) */
static FeatureSpec *
TowerSpec(const TwoTowerConfig *cfg, int side, bool allow_unfitted)
{
	JsonbValue	v;

	if (cfg->spec[side] == NULL)
		return TwoTowerEmptySpec();
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &cfg->spec[side]->root;
		v.val.binary.len = VARSIZE(cfg->spec[side]) - VARHDRSZ;
	}
	return FeatureSpecParse(&v, allow_unfitted);
}

/* Fill a tower's shape */
static void
TowerShape(const TwoTowerConfig *cfg, int side, const FeatureSpec *spec, int id_vocab,
		   TtTowerConfig *t)
{
	memset(t, 0, sizeof(TtTowerConfig));
	TwoTowerShapeInputs(spec, id_vocab, cfg->id_dim[side], t);
	t->nhidden = cfg->nhidden[side];
	memcpy(t->hidden, cfg->hidden[side], sizeof(int) * TT_MAX_HIDDEN);
	t->activation = (TtActivation) cfg->activation[side];
	t->out_dim = cfg->dim;
	t->normalize = cfg->normalize;
}

/*
 * Get the next version of the model, as train_embeddings does: checks the
 * name, refuses a name of another kind, locks the name (the config is the
 * store's options: it reads promote only)
 */
static int32
NextVersion(const char *model, Jsonb *config)
{
	Oid			types[2] = {TEXTOID, JSONBOID};
	Datum		args[2] = {CStringGetTextDatum(model), PointerGetDatum(config)};
	bool		isnull;
	Datum		d;

	if (SPI_execute_with_args("SELECT recsys.begin_model_version($1, 'embeddings', NULL, $2)",
							  2, types, args, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "recsys.begin_model_version failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "recsys.begin_model_version returned NULL");
	return DatumGetInt32(d);
}

/* Log the stored version in the store's history (with its sources); promote it when asked */
static void
FinishVersion(const TwoTowerRun *run)
{
	Oid			types[3] = {TEXTOID, INT4OID, JSONBOID};
	Datum		args[3] = {CStringGetTextDatum(run->model), Int32GetDatum(run->version),
	PointerGetDatum(run->config)};

	if (SPI_execute_with_args("SELECT recsys.finish_model_version($1, $2, 'trained', $3)",
							  3, types, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "recsys.finish_model_version failed");
}

/* Format a byte count for messages */
static char *
Bytes(double n)
{
	return n >= 10.0 * 1024 * 1024 ? psprintf("%.0f MB", n / (1024.0 * 1024.0)) :
		psprintf("%.0f kB", ceil(n / 1024.0));
}

/* Refuse a run whose memory passes recsys.training_memory, before allocating it */
static void
CheckBudget(const TwoTowerRun *run, double bytes, const char *what)
{
	double		budget = (double) recsys_training_memory * 1024.0;

	if (bytes > budget)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("two-tower training of model \"%s\" does not fit in recsys.training_memory", run->model),
				 errdetail("%s needs %s; recsys.training_memory is %s.", what, Bytes(bytes), Bytes(budget)),
				 errhint("Raise recsys.training_memory, or use smaller towers, batch_size or vocabularies.")));
}

/* Per validation user: its user-table row and training index, and its relevant items */
typedef struct Validation
{
	int32		n;				/* users evaluated */
	int64	   *row;			/* user-table row */
	int32	   *train;			/* training user index, -1 if none */
	int64	   *rel_ptr;		/* n + 1 */
	int64	   *rel;			/* item ids */
	int64		skipped;		/* validation users with no row in the user table */
} Validation;

/* Serving pass: the tower output of every row of inputs into out [n, k] */
static void
ServeRows(TtTower *t, const double *params, const TtInputs *in, float *out)
{
	int			k = t->cfg.out_dim;
	int64	   *rows = palloc(sizeof(int64) * t->maxrows);

	for (int64 s = 0; s < in->n; s += t->maxrows)
	{
		int			n = (int) Min((int64) t->maxrows, in->n - s);

		for (int r = 0; r < n; r++)
			rows[r] = s + r;
		TtTowerForward(t, params, in, rows, n);
		for (size_t j = 0; j < (size_t) n * k; j++)
			out[(size_t) s * k + j] = (float) t->out[j];
		CHECK_FOR_INTERRUPTS();
	}
	pfree(rows);
}

/* Compare int64 */
static int
CompareInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a,
				y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

/*
 * Recall@k and NDCG@k (as recsys.recall_at_k and recsys.ndcg_at_k) of the
 * validation users, ranking every item of the item table without the
 * user's training items; means over the users evaluated
 */
static void
Evaluate(const Validation *val, const float *uvec, const float *ivec, int64 nitems,
		 const int64 *item_ids, const Interactions *data, const int64 *item_row_of_train,
		 int dim, int k, double *recall, double *ndcg)
{
	float	   *scores = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * Max(nitems, 1));
	TopKItem   *slots = palloc(sizeof(TopKItem) * k);
	double		rsum = 0.0,
				nsum = 0.0;
	int64		counted = 0;

	for (int32 v = 0; v < val->n; v++)
	{
		const float *u = uvec + (size_t) v * dim;
		TopK		top;
		int			got;
		int64		nrel = val->rel_ptr[v + 1] - val->rel_ptr[v];
		const int64 *rel = val->rel + val->rel_ptr[v];
		int			hits = 0;
		double		dcg = 0.0,
					idcg = 0.0;
		int			ideal;

		if (nrel == 0)
			continue;
		for (int64 i = 0; i < nitems; i++)
		{
			const float *y = ivec + (size_t) i * dim;
			float		s = 0.0f;

			for (int d = 0; d < dim; d++)
				s += u[d] * y[d];
			scores[i] = s;
		}
		if (val->train[v] >= 0)
			for (int64 j = data->user_ptr[val->train[v]]; j < data->user_ptr[val->train[v] + 1]; j++)
				scores[item_row_of_train[data->user_items[j]]] = -INFINITY;
		TopKInit(&top, k, slots);
		TopKPushBlock(&top, item_ids, scores, (int) Min(nitems, (int64) INT_MAX));
		got = TopKSorted(&top);
		for (int r = 0; r < got; r++)
			if (top.items[r].score > -INFINITY &&
				bsearch(&top.items[r].id, rel, nrel, sizeof(int64), CompareInt64))
			{
				hits++;
				dcg += 1.0 / log2(r + 2.0);
			}
		ideal = (int) Min((int64) k, nrel);
		for (int r = 0; r < ideal; r++)
			idcg += 1.0 / log2(r + 2.0);
		rsum += (double) hits / ideal;
		nsum += dcg / idcg;
		counted++;
		if ((v & 63) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	*recall = counted ? rsum / counted : 0.0;
	*ndcg = counted ? nsum / counted : 0.0;
	pfree(scores);
	pfree(slots);
}

/* Read the validation relation: its users found in the user table and their items */
static void
LoadValidation(TwoTowerRun *run, const TwoTowerTable *users, const Interactions *data,
			   Validation *val)
{
	InteractionSource src = run->src;
	Interactions vd;
	Size		needed;

	src.relid = run->validation;
	src.weight_column = NULL;
	InteractionsCheckSource(&src);
	if (!InteractionsLoad(&src, &vd, MaxAllocHugeSize, 0, &needed))
		elog(ERROR, "loading the validation relation failed");
	memset(val, 0, sizeof(Validation));
	val->row = palloc(sizeof(int64) * Max(vd.n_users, 1));
	val->train = palloc(sizeof(int32) * Max(vd.n_users, 1));
	val->rel_ptr = palloc(sizeof(int64) * (vd.n_users + 1));
	val->rel = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * Max(vd.nnz, 1));
	val->rel_ptr[0] = 0;
	for (int32 u = 0; u < vd.n_users; u++)
	{
		int64		row = TwoTowerFindRow(users, vd.user_ids[u]);
		int64	   *at;
		int64		n = 0;

		if (row < 0)
		{
			val->skipped++;
			continue;
		}
		at = bsearch(&vd.user_ids[u], data->user_ids, data->n_users, sizeof(int64), CompareInt64);
		val->row[val->n] = row;
		val->train[val->n] = at ? (int32) (at - data->user_ids) : -1;
		for (int64 j = vd.user_ptr[u]; j < vd.user_ptr[u + 1]; j++)
			val->rel[val->rel_ptr[val->n] + n++] = vd.item_ids[vd.user_items[j]];
		/* item ids ascend within a user: bsearch-able */
		val->rel_ptr[val->n + 1] = val->rel_ptr[val->n] + n;
		val->n++;
	}
	if (val->skipped > 0)
		ereport(NOTICE,
				(errmsg(INT64_FORMAT " validation users have no row in the user table and are not evaluated",
						val->skipped)));
}

/* Append a double to JSON */
static void
JsonDouble(StringInfo s, double x)
{
	if (isfinite(x))
		appendStringInfoString(s, float8out_internal(x));
	else
		appendStringInfoString(s, "null");
}

/* Emit one epoch's row and log entry */
static void
EmitEpoch(TwoTowerRun *run, int epoch, double loss, double obs, double pen, double l2,
		  bool has_val, double recall, double ndcg, double seconds)
{
	Datum		values[RESULT_COLUMNS];
	bool		nulls[RESULT_COLUMNS] = {false};

	ereport(NOTICE,
			(errmsg("epoch %d/%d: loss %.4f (observed %.4f, penalty %.4f, l2 %.4f)%s",
					epoch, run->cfg.epochs, loss, obs, pen, l2,
					has_val ? psprintf(", recall@%d %.4f, ndcg@%d %.4f", run->cfg.k, recall,
									   run->cfg.k, ndcg) : ""),
			 errdetail("The epoch trained for %.3f s.", seconds)));
	values[0] = Int32GetDatum(epoch);
	values[1] = Float8GetDatum(loss);
	values[2] = Float8GetDatum(obs);
	values[3] = Float8GetDatum(pen);
	values[4] = Float8GetDatum(l2);
	values[5] = Float8GetDatum(recall);
	nulls[5] = !has_val;
	values[6] = Float8GetDatum(ndcg);
	nulls[6] = !has_val;
	values[7] = Float8GetDatum(seconds);
	tuplestore_putvalues(run->rsinfo->setResult, run->rsinfo->setDesc, values, nulls);
	if (run->log.len > 1)
		appendStringInfoString(&run->log, ", ");
	appendStringInfo(&run->log, "{\"epoch\": %d, \"loss\": ", epoch);
	JsonDouble(&run->log, loss);
	appendStringInfoString(&run->log, ", \"observed\": ");
	JsonDouble(&run->log, obs);
	appendStringInfoString(&run->log, ", \"penalty\": ");
	JsonDouble(&run->log, pen);
	appendStringInfoString(&run->log, ", \"l2\": ");
	JsonDouble(&run->log, l2);
	if (has_val)
	{
		appendStringInfoString(&run->log, ", \"recall\": ");
		JsonDouble(&run->log, recall);
		appendStringInfoString(&run->log, ", \"ndcg\": ");
		JsonDouble(&run->log, ndcg);
	}
	appendStringInfoString(&run->log, ", \"seconds\": ");
	JsonDouble(&run->log, seconds);
	appendStringInfoChar(&run->log, '}');
}

/* Add one tower's tensors (float32) to a safetensors file being built */
static void
AddTowerTensors(const TtTower *t, const FeatureSpec *spec, const double *params, const char *prefix,
				SafetensorsTensor *tensors, int *nt, float *data, uint64 *off)
{
	for (int f = 0; f < t->cfg.nbags; f++)
	{
		SafetensorsTensor *x = &tensors[(*nt)++];
		uint64		n = (uint64) t->cfg.vocab[f] * t->cfg.emb_dim[f];

		x->name = psprintf("%s.embeddings.%s.weight", prefix, TwoTowerBagName(spec, f));
		x->dtype = ST_F32;
		x->ndim = 2;
		x->shape[0] = t->cfg.vocab[f];
		x->shape[1] = t->cfg.emb_dim[f];
		x->nelem = n;
		x->begin = *off * sizeof(float);
		for (uint64 j = 0; j < n; j++)
			data[(*off)++] = (float) params[t->emb_off[f] + j];
		x->end = *off * sizeof(float);
	}
	for (int l = 0; l < t->nlayers; l++)
	{
		for (int b = 0; b < 2; b++)
		{
			SafetensorsTensor *x = &tensors[(*nt)++];
			uint64		n = b ? (uint64) t->width[l + 1] : (uint64) t->width[l + 1] * t->width[l];
			size_t		at = b ? t->b_off[l] : t->w_off[l];

			x->name = psprintf("%s.layers.%d.%s", prefix, l, b ? "bias" : "weight");
			x->dtype = ST_F32;
			x->ndim = b ? 1 : 2;
			x->shape[0] = t->width[l + 1];
			x->shape[1] = t->width[l];
			x->nelem = n;
			x->begin = *off * sizeof(float);
			for (uint64 j = 0; j < n; j++)
				data[(*off)++] = (float) params[at + j];
			x->end = *off * sizeof(float);
		}
	}
}

/*
 * The towers as a safetensors file (float32; names in doc/two-tower.md),
 * with the model's "two_tower" config in __metadata__.recsys so that the
 * file alone rebuilds the towers (recsys.export_model returns it as is)
 */
static bytea *
TowerWeights(const TtTrainer *t, FeatureSpec *const *spec, const char *tt_json)
{
	SafetensorsFile file;
	SafetensorsTensor *tensors = palloc0(sizeof(SafetensorsTensor) * (2 * TT_MAX_BAGS + 4 * (TT_MAX_HIDDEN + 1)));
	float	   *data = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * Max(t->nparams, 1));
	uint64		off = 0;
	int			nt = 0;
	const char *keys[2] = {"format", "recsys"};
	const char *values[2] = {"recsys two_tower", tt_json};

	AddTowerTensors(&t->user, spec[0], t->params, "user", tensors, &nt, data, &off);
	AddTowerTensors(&t->item, spec[1], t->params + t->user.nparams, "item", tensors, &nt, data, &off);
	memset(&file, 0, sizeof(file));
	file.data = (const unsigned char *) data;
	file.data_len = off * sizeof(float);
	file.ntensors = nt;
	file.tensors = tensors;
	return SafetensorsWrite(&file, 2, keys, values);
}

/* Append one tower's config (fitted spec included) to the model's config JSON */
static void
TowerJson(StringInfo s, const TwoTowerConfig *cfg, int side, const FeatureSpec *spec, int id_vocab)
{
	appendStringInfo(s, "{\"features\": %s, \"id_dim\": %d, \"id_vocab\": %d, \"hidden\": [",
					 spec->ncolumns > 0 ? FeatureSpecJson(spec) : "null", cfg->id_dim[side],
					 cfg->id_dim[side] ? id_vocab : 0);
	for (int l = 0; l < cfg->nhidden[side]; l++)
		appendStringInfo(s, "%s%d", l ? ", " : "", cfg->hidden[side][l]);
	appendStringInfo(s, "], \"activation\": \"%s\"}", activation_words[cfg->activation[side]]);
}

/* Get a name argument as a C string, raising an error for NULL */
static char *
NameArg(FunctionCallInfo fcinfo, int arg, const char *what)
{
	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	return pstrdup(NameStr(*PG_GETARG_NAME(arg)));
}

/* Get a regclass argument, raising an error for NULL */
static Oid
RelArg(FunctionCallInfo fcinfo, int arg, const char *what)
{
	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	RecsysCheckRelation(PG_GETARG_OID(arg));
	return PG_GETARG_OID(arg);
}

/* The state of one train_two_tower call, passed through its phases */
typedef struct TwoTowerWork
{
	TwoTowerRun run;
	MemoryContext context;
	Interactions data;
	Size		needed;
	TwoTowerTable tables[2];
	FeatureSpec *spec[2];
	TtTowerConfig tcfg[2];
	int64	   *train_row[2];	/* training entity -> table row */
	int32	   *id_index[2];	/* table row -> training entity, or -1 */
	TtInputs   *train_in[2];
	TtInputs   *serve_in[2];
	int64	   *order;
	TtData		td;
	TtOptions	opt;
	TtTrainer	trainer;
	double		bytes;
	double	   *best;
	Validation	val;
	bool		has_val;
	float	   *uvec,
			   *ivec;
	Rng			rng;
	int			epochs_run;
	int64		nvec[2];
} TwoTowerWork;

/* Check every argument, resolve the config, number the version: before any row is read */
static void
ReadArguments(FunctionCallInfo fcinfo, TwoTowerWork *w)
{
	TwoTowerConfig *cfg = &w->run.cfg;

	/* prepare: every argument before any work */
	memset(&w->run, 0, sizeof(w->run));
	INSTR_TIME_SET_CURRENT(w->run.start);
	w->run.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (PG_ARGISNULL(ARG_MODEL))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model must not be NULL")));
	w->run.model = text_to_cstring(PG_GETARG_TEXT_PP(ARG_MODEL));
	ModelStoreCheckName(w->run.model, strlen(w->run.model));
	w->run.src.relid = RelArg(fcinfo, ARG_INTERACTIONS, "interactions");
	w->run.relid[0] = RelArg(fcinfo, ARG_USERS, "user_features");
	w->run.relid[1] = RelArg(fcinfo, ARG_ITEMS, "item_features");
	if (PG_ARGISNULL(ARG_CONFIG))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("config must not be NULL")));
	w->run.validation = PG_ARGISNULL(ARG_VALIDATION) ? InvalidOid : RelArg(fcinfo, ARG_VALIDATION, "validation");
	w->run.src.user_column = NameArg(fcinfo, ARG_USER_COLUMN, "user column");
	w->run.src.item_column = NameArg(fcinfo, ARG_ITEM_COLUMN, "item column");
	w->run.src.weight_column = PG_ARGISNULL(ARG_WEIGHT_COLUMN) ? NULL :
		pstrdup(NameStr(*PG_GETARG_NAME(ARG_WEIGHT_COLUMN)));
	w->run.config = PG_GETARG_JSONB_P(ARG_CONFIG);
	ParseConfig(w->run.config, cfg, &w->run.config_json);
	if (cfg->patience > 0 && !OidIsValid(w->run.validation))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("two-tower config: \"patience\" needs a validation relation")));
	w->spec[0] = TowerSpec(cfg, 0, true);
	w->spec[1] = TowerSpec(cfg, 1, true);
	/* every relation's columns, exact types, before any row is read */
	InteractionsCheckSource(&w->run.src);
	TwoTowerCheckTable(w->run.relid[0], w->run.src.user_column, w->spec[0], "user_features");
	TwoTowerCheckTable(w->run.relid[1], w->run.src.item_column, w->spec[1], "item_features");
	if (OidIsValid(w->run.validation))
	{
		InteractionSource vsrc = w->run.src;

		vsrc.relid = w->run.validation;
		vsrc.weight_column = NULL;
		InteractionsCheckSource(&vsrc);
	}
	/* numbers the version, refuses another kind, locks the name: before any row is read */
	w->run.version = NextVersion(w->run.model, w->run.config);
	MemoryContextSwitchTo(w->context);
	initStringInfo(&w->run.log);
	appendStringInfoChar(&w->run.log, '[');

}

/* Load the interactions and both feature tables; map training entities to feature rows */
static void
LoadData(TwoTowerWork *w)
{
	TwoTowerConfig *cfg = &w->run.cfg;

	/* load: interactions, then both feature tables, counted as they come */
	if (!InteractionsLoad(&w->run.src, &w->data, (Size) recsys_training_memory * 1024, 0, &w->needed))
		CheckBudget(&w->run, (double) w->needed, "Loading the interactions");
	MemoryContextSwitchTo(w->context);
	if (w->data.nnz == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("interactions of %s have no pair of positive weight", RecsysRelationSqlName(w->run.src.relid))));
	w->bytes = (double) w->needed;
	for (int side = 0; side < 2; side++)
	{
		TwoTowerLoadTable(&w->tables[side], w->run.relid[side],
						  side == 0 ? w->run.src.user_column : w->run.src.item_column, w->spec[side],
						  (double) recsys_training_memory * 1024.0, w->bytes,
						  side == 0 ? "user_features" : "item_features");
		MemoryContextSwitchTo(w->context);
		w->bytes += (double) w->tables[side].n * (3 * sizeof(int64) + sizeof(float) * w->spec[side]->dense_dim
											+ sizeof(int32) * (w->spec[side]->ncategorical + 2 * w->spec[side]->nmulti));
	}
	w->run.load_seconds = SecondsSince(w->run.start);

	/* training entities -> feature rows; a trained entity without features is an error */
	for (int side = 0; side < 2; side++)
	{
		int32		n = side == 0 ? w->data.n_users : w->data.n_items;
		const int64 *ids = side == 0 ? w->data.user_ids : w->data.item_ids;

		w->train_row[side] = MemoryContextAllocHuge(w->context, sizeof(int64) * n);
		w->id_index[side] = MemoryContextAllocHuge(w->context, sizeof(int32) * w->tables[side].n);
		for (int64 r = 0; r < w->tables[side].n; r++)
			w->id_index[side][r] = -1;
		for (int32 e = 0; e < n; e++)
		{
			w->train_row[side][e] = TwoTowerFindRow(&w->tables[side], ids[e]);
			if (w->train_row[side][e] < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s " INT64_FORMAT " of the interactions has no row in %s",
								side == 0 ? "user" : "item", ids[e],
								RecsysRelationSqlName(w->run.relid[side])),
						 errhint("Every user and item of the interactions needs a row of features.")));
			w->id_index[side][w->train_row[side][e]] = e;
		}
		TowerShape(cfg, side, w->spec[side], n, &w->tcfg[side]);
	}

}

/* Count the trainer's memory against the budget, build its inputs and pairs, start it */
static void
BuildTrainer(TwoTowerWork *w)
{
	TwoTowerConfig *cfg = &w->run.cfg;
	int32	   *pu,
			   *pi,
			   *ucount,
			   *icount;
	float	   *conf;
	void	   *mem;

	/* the trainer's memory, all of it counted before it is allocated */
	memset(&w->opt, 0, sizeof(w->opt));
	w->opt.method = (TtMethod) cfg->method;
	w->opt.loss = (TtLoss) cfg->loss;
	w->opt.gramian_weight = cfg->gramian_weight;
	w->opt.l2 = cfg->l2;
	w->opt.learning_rate = cfg->learning_rate;
	w->opt.beta1 = cfg->beta1;
	w->opt.beta2 = cfg->beta2;
	w->opt.eps = cfg->eps;
	w->opt.alpha = cfg->alpha;
	w->opt.batch_size = (int) Min((int64) cfg->batch_size, w->data.nnz);
	w->opt.negatives = cfg->negatives;
	w->opt.popularity = cfg->sampling == 1;
	w->opt.seed = (uint64) cfg->seed;
	{
		double		trainer_bytes = (double) TtTrainerBytes(&w->tcfg[0], &w->tcfg[1], &w->opt, w->data.n_users, w->data.n_items);
		double		inputs = 0.0;

		for (int side = 0; side < 2; side++)
		{
			int64		n = side == 0 ? w->data.n_users : w->data.n_items;
			const FeatureSpec *s = w->spec[side];
			double		per = sizeof(float) * s->dense_dim + (sizeof(int64) + 2 * sizeof(int32)) * w->tcfg[side].nbags;

			/* training and serving copies of the inputs (multi bags' ids counted at their mean length) */
			inputs += per * (n + w->tables[side].n) +
				2.0 * sizeof(int32) * (w->tables[side].rows ? w->tables[side].rows->nbag_ids : 0);
			inputs += sizeof(float) * (double) cfg->dim * w->tables[side].n;	/* served vectors */
		}
		w->bytes += trainer_bytes + inputs + (double) w->data.nnz * (2 * sizeof(int32) + sizeof(float) + sizeof(int64));
		if (cfg->patience > 0)
			w->bytes += sizeof(double) * (double) (trainer_bytes / 32.0);
		CheckBudget(&w->run, w->bytes, psprintf("Training %s users, %s items and " INT64_FORMAT " pairs",
										  psprintf("%d", w->data.n_users), psprintf("%d", w->data.n_items), w->data.nnz));
		w->run.memory = (Size) w->bytes;
	}

	for (int side = 0; side < 2; side++)
	{
		w->train_in[side] = TwoTowerInputs(&w->tables[side], w->train_row[side],
										side == 0 ? w->data.n_users : w->data.n_items,
										NULL, cfg->id_dim[side] > 0);
		/* training entities' id bags: their own index */
		if (cfg->id_dim[side] > 0)
		{
			int32_t    *ids = (int32_t *) w->train_in[side]->bag_ids;
			int			nb = w->train_in[side]->nbags;

			for (int64 e = 0; e < w->train_in[side]->n; e++)
			{
				((int32_t *) w->train_in[side]->bag_len)[e * nb + nb - 1] = 1;
				ids[w->train_in[side]->bag_start[e * nb + nb - 1]] = (int32_t) e;
			}
		}
	}

	/* the pairs, by user */
	pu = MemoryContextAllocHuge(w->context, sizeof(int32) * w->data.nnz);
	pi = MemoryContextAllocHuge(w->context, sizeof(int32) * w->data.nnz);
	conf = MemoryContextAllocHuge(w->context, sizeof(float) * w->data.nnz);
	w->order = MemoryContextAllocHuge(w->context, sizeof(int64) * w->data.nnz);
	ucount = MemoryContextAllocHuge(w->context, sizeof(int32) * w->data.n_users);
	icount = MemoryContextAllocHuge(w->context, sizeof(int32) * w->data.n_items);
	memset(icount, 0, sizeof(int32) * w->data.n_items);
	for (int32 u = 0; u < w->data.n_users; u++)
	{
		ucount[u] = (int32) (w->data.user_ptr[u + 1] - w->data.user_ptr[u]);
		for (int64 j = w->data.user_ptr[u]; j < w->data.user_ptr[u + 1]; j++)
		{
			pu[j] = u;
			pi[j] = w->data.user_items[j];
			conf[j] = w->data.user_conf[j];
			icount[pi[j]]++;
		}
	}
	w->td.npairs = w->data.nnz;
	w->td.pu = pu;
	w->td.pi = pi;
	w->td.conf = conf;
	w->td.users = w->train_in[0];
	w->td.items = w->train_in[1];
	w->td.user_count = ucount;
	w->td.item_count = icount;

	mem = MemoryContextAllocExtended(w->context, TtTrainerBytes(&w->tcfg[0], &w->tcfg[1], &w->opt, w->data.n_users, w->data.n_items),
									 MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	TtTrainerInit(&w->trainer, &w->tcfg[0], &w->tcfg[1], &w->opt, &w->td, mem);
	w->trainer.user.check = CheckInterrupts;
	w->trainer.item.check = CheckInterrupts;
	TtTrainerStart(&w->trainer);
	RngInit(&w->rng, RngHash64((uint64) cfg->seed + 2));

}

/* Build the serving inputs of every row, and the validation set */
static void
PrepareServing(TwoTowerWork *w)
{
	TwoTowerConfig *cfg = &w->run.cfg;

	/* serving inputs: every row of each table, trained ids where they have one */
	for (int side = 0; side < 2; side++)
	{
		int64	   *all = MemoryContextAllocHuge(w->context, sizeof(int64) * w->tables[side].n);

		for (int64 r = 0; r < w->tables[side].n; r++)
			all[r] = r;
		w->serve_in[side] = TwoTowerInputs(&w->tables[side], all, w->tables[side].n, w->id_index[side],
										cfg->id_dim[side] > 0);
		w->nvec[side] = w->tables[side].n;
	}
	w->has_val = OidIsValid(w->run.validation);
	if (w->has_val)
	{
		LoadValidation(&w->run, &w->tables[0], &w->data, &w->val);
		MemoryContextSwitchTo(w->context);
		w->uvec = MemoryContextAllocHuge(w->context, sizeof(float) * Max((Size) w->val.n * cfg->dim, 1));
	}
	w->ivec = MemoryContextAllocHuge(w->context, sizeof(float) * (Size) w->tables[1].n * cfg->dim);
	if (cfg->patience > 0)
		w->best = MemoryContextAllocHuge(w->context, sizeof(double) * w->trainer.nparams);
	w->run.best_ndcg = -1.0;

}

/* Run the epochs, one output row each, keeping the best parameters under patience */
static void
RunEpochs(TwoTowerWork *w)
{
	TwoTowerConfig *cfg = &w->run.cfg;
	int			since_best = 0;

	/* epochs */
	for (int epoch = 1; epoch <= cfg->epochs; epoch++)
	{
		instr_time	t0;
		double		obs = 0.0,
					pen = 0.0,
					l2 = 0.0,
					loss;
		double		recall = 0.0,
					ndcg = 0.0,
					seconds;
		int64		steps = 0;

		INSTR_TIME_SET_CURRENT(t0);
		for (int64 j = 0; j < w->data.nnz; j++)
			w->order[j] = j;
		for (int64 j = w->data.nnz - 1; j > 0; j--)
		{
			int64		r = (int64) RngBelow(&w->rng, (uint64) j + 1);
			int64		tmp = w->order[j];

			w->order[j] = w->order[r];
			w->order[r] = tmp;
		}
		for (int64 s = 0; s < w->data.nnz; s += w->opt.batch_size)
		{
			TtStepStats st;
			int			B = (int) Min((int64) w->opt.batch_size, w->data.nnz - s);

			CHECK_FOR_INTERRUPTS();
			TtTrainStep(&w->trainer, w->order + s, B, &st);
			TtAdamStep(&w->trainer);
			obs += st.observed;
			l2 += st.l2;
			steps++;
		}
		/* the epoch's training time: the exact penalty and validation are reports */
		seconds = SecondsSince(t0);
		obs /= steps;
		l2 /= steps;
		/* the penalty at the epoch's end, exact: the estimates drove the steps */
		pen = TtExactPenalty(&w->trainer);
		loss = obs + pen + l2;
		if (!isfinite(loss))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("two-tower training diverged at epoch %d (loss %g)", epoch, loss),
					 errhint("Lower learning_rate, or raise l2.")));
		if (w->has_val)
		{
			TtInputs   *vin = TwoTowerInputs(&w->tables[0], w->val.row, w->val.n, NULL, false);

			/* validation users' inputs with their training ids */
			if (cfg->id_dim[0] > 0)
			{
				pfree(vin);
				vin = NULL;
				{
					int32	   *vid = palloc(sizeof(int32) * Max(w->val.n, 1));

					for (int32 v = 0; v < w->val.n; v++)
						vid[v] = w->val.train[v];
					vin = TwoTowerInputs(&w->tables[0], w->val.row, w->val.n, vid, true);
				}
			}
			ServeRows(&w->trainer.user, w->trainer.params, vin, w->uvec);
			ServeRows(&w->trainer.item, w->trainer.params + w->trainer.user.nparams, w->serve_in[1], w->ivec);
			Evaluate(&w->val, w->uvec, w->ivec, w->tables[1].n, w->tables[1].ids, &w->data, w->train_row[1], cfg->dim,
					 cfg->k, &recall, &ndcg);
		}
		w->epochs_run = epoch;
		EmitEpoch(&w->run, epoch, loss, obs, pen, l2, w->has_val, recall, ndcg, seconds);
		if (cfg->patience > 0)
		{
			if (ndcg > w->run.best_ndcg)
			{
				w->run.best_ndcg = ndcg;
				w->run.best_epoch = epoch;
				memcpy(w->best, w->trainer.params, sizeof(double) * w->trainer.nparams);
				since_best = 0;
			}
			else if (++since_best >= cfg->patience)
				break;
		}
	}
	if (w->best)
		memcpy(w->trainer.params, w->best, sizeof(double) * w->trainer.nparams);

}

/* Store the version: float32 towers, config, metrics and served vectors */
static void
StoreVersion(TwoTowerWork *w)
{
	TwoTowerConfig *cfg = &w->run.cfg;
	StringInfoData config,
				tt_json,
				metrics;

	/* store: float32 towers, and the vectors exactly as they give them */
	for (size_t j = 0; j < w->trainer.nparams; j++)
		w->trainer.params[j] = (float) w->trainer.params[j];
	{
		float	   *x[2];

		for (int side = 0; side < 2; side++)
		{
			x[side] = side == 1 ? w->ivec :
				MemoryContextAllocHuge(w->context, sizeof(float) * (Size) w->nvec[0] * cfg->dim);
			ServeRows(side == 0 ? &w->trainer.user : &w->trainer.item,
					  w->trainer.params + (side == 0 ? 0 : w->trainer.user.nparams), w->serve_in[side], x[side]);
		}
		initStringInfo(&tt_json);
		appendStringInfo(&tt_json, "{\"options\": %s, \"user\": ", w->run.config_json);
		TowerJson(&tt_json, cfg, 0, w->spec[0], w->data.n_users);
		appendStringInfoString(&tt_json, ", \"item\": ");
		TowerJson(&tt_json, cfg, 1, w->spec[1], w->data.n_items);
		appendStringInfoString(&tt_json, ", \"objective\": \"(1/|B|) sum_B c l(<u,v>) + gramian_weight <G_u, G_v>_F + l2 |theta|^2, G = mean of u u^T over entities\"}");
		initStringInfo(&config);
		appendStringInfo(&config, "{\"method\": \"two_tower\", \"dim\": %d, \"two_tower\": %s",
						 cfg->dim, tt_json.data);
		appendStringInfoString(&config, ", \"source\": {\"table\": ");
		escape_json(&config, RecsysRelationSqlName(w->run.src.relid));
		appendStringInfoString(&config, ", \"user_features\": ");
		escape_json(&config, RecsysRelationSqlName(w->run.relid[0]));
		appendStringInfoString(&config, ", \"item_features\": ");
		escape_json(&config, RecsysRelationSqlName(w->run.relid[1]));
		appendStringInfoString(&config, ", \"user_column\": ");
		escape_json(&config, w->run.src.user_column);
		appendStringInfoString(&config, ", \"item_column\": ");
		escape_json(&config, w->run.src.item_column);
		appendStringInfoString(&config, "}");
		appendStringInfo(&config, ", \"n_users\": %d, \"n_items\": %d, \"n_interactions\": " INT64_FORMAT
						 ", \"n_user_rows\": " INT64_FORMAT ", \"n_item_rows\": " INT64_FORMAT "}",
						 w->data.n_users, w->data.n_items, w->data.nnz, w->nvec[0], w->nvec[1]);
		initStringInfo(&metrics);
		appendStringInfo(&metrics, "{\"log\": %s], \"epochs\": %d, \"train_seconds\": ", w->run.log.data, w->epochs_run);
		JsonDouble(&metrics, SecondsSince(w->run.start));
		appendStringInfoString(&metrics, ", \"load_seconds\": ");
		JsonDouble(&metrics, w->run.load_seconds);
		appendStringInfo(&metrics, ", \"memory_bytes\": %zu", w->run.memory);
		if (cfg->patience > 0)
			appendStringInfo(&metrics, ", \"best_epoch\": %d", w->run.best_epoch);
		appendStringInfoChar(&metrics, '}');
		ModelRowWrite(w->run.model, w->run.version, "embeddings", config.data,
					  TowerWeights(&w->trainer, w->spec, tt_json.data), metrics.data, false);
		MemoryContextSwitchTo(w->context);
		/* every row of each feature table; users with their training items */
		for (int side = 0; side < 2; side++)
		{
			VectorRows	rows = {w->run.model, w->run.version, side == 0, cfg->dim, w->nvec[side],
			w->tables[side].ids, x[side], &w->data, TT_WRITE_ROWS, side == 0 ? 0 : w->nvec[0]};

			VectorRowsWrite(&rows);
		}
	}
}

PG_FUNCTION_INFO_V1(train_two_tower);
/*
 * Train a two-tower model and store it as a new version; one row per epoch
 * (epoch, loss, observed, penalty, l2, recall, ndcg, seconds)
 */
Datum
train_two_tower(PG_FUNCTION_ARGS)
{
	TwoTowerWork w;
	MemoryContext old;
	int			spi_level;

	memset(&w, 0, sizeof(w));
	InitMaterializedSRF(fcinfo, 0);
	w.context = AllocSetContextCreate(CurrentMemoryContext, "recsys train_two_tower",
									  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(w.context);
	spi_level = RecsysSpiConnect();
	MemoryContextSwitchTo(w.context);

	ReadArguments(fcinfo, &w);
	LoadData(&w);
	BuildTrainer(&w);
	PrepareServing(&w);
	RunEpochs(&w);
	StoreVersion(&w);
	FinishVersion(&w.run);

	RecsysSpiFinish(spi_level);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(w.context);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(two_tower_options);
/* The option table of train_two_tower: name, type, default, range, description */
Datum
two_tower_options(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int j = 0; j < lengthof(option_defs); j++)
	{
		const OptionDef *o = &option_defs[j];
		Datum		values[4];
		bool		nulls[4] = {false};
		StringInfoData range;
		const char *def = o->def;

		/* the towers are objects of their own (doc/two-tower.md) */
		if (o->type == OPT_OBJECT)
			continue;
		initStringInfo(&range);
		if (o->type == OPT_WORD)
		{
			for (int w = 0; o->words[w]; w++)
				appendStringInfo(&range, "%s%s", w ? ", " : "", o->words[w]);
			/* the default without its JSON quotes */
			def = pnstrdup(def + 1, strlen(def) - 2);
		}
		else if (o->type == OPT_BOOL)
			appendStringInfoString(&range, "true, false");
		else
			appendStringInfo(&range, "[%g, %g]", o->min, o->max);
		values[0] = CStringGetTextDatum(o->name);
		values[1] = CStringGetTextDatum(def);
		values[2] = CStringGetTextDatum(range.data);
		values[3] = CStringGetTextDatum(o->description);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
