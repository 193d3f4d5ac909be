/*
 * embeddings/train_options.c
 *		The option table of train_embeddings and everything that reads it:
 *		validation of a method's options (defaults filled in), the resolved
 *		settings of the trainers, and the SQL functions that show the table
 *		and resolve options.  The documentation's option table is this one
 *		(doc/embeddings.md shows SELECT * FROM recsys.embedding_options()).
 *		The parser is the one every trainer shares (src/store/options.c).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"

#include "embeddings/train_options.h"
#include "store/options.h"

#define ALL_METHODS (TRAIN_ALS | TRAIN_SOGRAM | TRAIN_SAGRAM | TRAIN_SAMPLED)
#define SGD_METHODS (TRAIN_SOGRAM | TRAIN_SAGRAM | TRAIN_SAMPLED)

static const char *const optimizer_words[] = {"adagrad", "sgd", NULL};
static const char *const sampling_words[] = {"uniform", "sqrt", "linear", NULL};
static const char *const beta_words[] = {"sag", "saga", NULL};
static const char *const engine_words[] = {"auto", "memory", "aggregate", NULL};
static const char *const solver_words[] = {"cholesky", "cg", NULL};

#define OPT(f) offsetof(TrainOptions, f)

/* The options of train_embeddings: the one definition of names, methods, types, defaults and ranges */
static const OptionDef option_defs[] = {
	{"seed", ALL_METHODS, OPT_INT64, "42", -9.2e18, 9.2e18, false, NULL, OPT(seed),
	"seed of the initial vectors and of the SGD draws"},
	{"init_scale", ALL_METHODS, OPT_NUMBER, "0.1", 0.0, 1e6, true, NULL, OPT(init_scale),
	"initial vectors are N(0, (init_scale / sqrt(dim))^2)"},
	{"nu", ALL_METHODS, OPT_NUMBER, "1.0", 0.0, 4.0, false, NULL, OPT(nu),
	"frequency scaling of l2: lambda = l2 * (n + gramian_weight * N_other)^nu"},
	{"engine", TRAIN_ALS, OPT_WORD, "\"auto\"", 0, 0, false, engine_words, OPT(engine),
	"memory: compressed rows in the backend; aggregate: the als_solve aggregate over SQL work tables; auto: aggregate over a Citus distributed table, else memory when it fits recsys.training_memory"},
	{"solver", TRAIN_ALS, OPT_WORD, "\"cg\"", 0, 0, false, solver_words, OPT(solver),
	"memory engine: exact Cholesky solves, or cg_steps conjugate-gradient steps per entity"},
	{"cg_steps", TRAIN_ALS, OPT_INTEGER, "3", 1, 100, false, NULL, OPT(cg_steps),
	"conjugate-gradient steps per entity and sweep (solver cg)"},
	{"learning_rate", SGD_METHODS, OPT_NUMBER, "0.05", 0.0, 1e6, true, NULL, OPT(learning_rate),
	"step size (Adagrad: initial step size)"},
	{"batch_size", SGD_METHODS, OPT_INTEGER, "128", 1, 65536, false, NULL, OPT(batch_size),
	"examples per step"},
	{"optimizer", SGD_METHODS, OPT_WORD, "\"adagrad\"", 0, 0, false, optimizer_words, OPT(optimizer),
	"adagrad (one accumulator per row) or plain sgd"},
	{"alpha", TRAIN_SOGRAM, OPT_NUMBER, "0.1", 0.0, 1.0, true, NULL, OPT(alpha),
	"rate of the moving average of the Gramian estimates"},
	{"sampling", TRAIN_SOGRAM | TRAIN_SAMPLED, OPT_WORD, "\"uniform\"", 0, 0, false, sampling_words, OPT(sampling),
	"distribution entities are drawn from: uniform, sqrt or linear in their frequency"},
	{"beta", TRAIN_SAGRAM, OPT_WORD, "\"sag\"", 0, 0, false, beta_words, OPT(beta),
	"sag (biased, lower variance) or saga (unbiased) correction"},
	{"negatives", TRAIN_SAMPLED, OPT_INTEGER, "4", 1, 1000, false, NULL, OPT(negatives),
	"sampled negatives per example"},
	{"l2", TRAIN_EASE, OPT_NUMBER, "500", 0.0, 1e12, true, NULL, OPT(ease_l2),
	"lambda of EASE: B = I - P diag(1/diag P), P = (X^T X + lambda I)^-1"},
};

static const OptionTable option_table = {option_defs, lengthof(option_defs)};

/* Names of the methods, in TrainMethod bit order */
static const char *const method_names[] = {"als", "sogram", "sagram", "sampled", "ease"};

/* Get the method of a name, raising an error for an unknown one */
TrainMethod
TrainMethodFromName(const char *name)
{
	for (int m = 0; m < lengthof(method_names); m++)
		if (strcmp(name, method_names[m]) == 0)
			return (TrainMethod) (1 << m);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown method \"%s\"", name),
			 errhint("Use one of als, sogram, sagram, sampled, ease.")));
	return TRAIN_ALS;			/* keep compiler quiet */
}

/* Get the name of a method */
const char *
TrainMethodName(TrainMethod method)
{
	for (int m = 0; m < lengthof(method_names); m++)
		if (method == (1 << m))
			return method_names[m];
	return "?";
}

/*
 * Validate a method's options (a JSON object, NULL for none) against the
 * table and fill out with every option of the method, defaults included
 */
void
TrainOptionsResolve(TrainMethod method, Jsonb *options, TrainOptions *out)
{
	StringInfoData json;

	memset(out, 0, sizeof(TrainOptions));
	out->method = method;
	initStringInfo(&json);
	OptionsParse(&option_table, method, TrainMethodName(method),
				 psprintf("method \"%s\"", TrainMethodName(method)), options, out, NULL, &json);
	out->json = json.data;
}

PG_FUNCTION_INFO_V1(embedding_options_resolve);
/* Get a method's options with the defaults filled in, as jsonb */
Datum
embedding_options_resolve(PG_FUNCTION_ARGS)
{
	TrainOptions opts;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("method must not be NULL")));
	TrainOptionsResolve(TrainMethodFromName(text_to_cstring(PG_GETARG_TEXT_PP(0))),
						PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1), &opts);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(opts.json)));
}

PG_FUNCTION_INFO_V1(embedding_options_table);
/*
 * Get the option table: one row per option (name, methods, type, default,
 * min, whether min is excluded, max, allowed words, description)
 */
Datum
embedding_options_table(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int o = 0; o < lengthof(option_defs); o++)
	{
		const OptionDef *d = &option_defs[o];
		Datum		values[9];
		bool		nulls[9] = {false};
		Datum		methods[lengthof(method_names)];
		int			nm = 0;

		for (int m = 0; m < lengthof(method_names); m++)
			if (d->scopes & (1 << m))
				methods[nm++] = CStringGetTextDatum(method_names[m]);
		values[0] = CStringGetTextDatum(d->name);
		values[1] = PointerGetDatum(construct_array(methods, nm, TEXTOID, -1, false, TYPALIGN_INT));
		values[2] = CStringGetTextDatum(OptionTypeName(d->type));
		values[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum(d->def));
		if (d->type == OPT_WORD)
		{
			Datum		words[8];
			int			nw = 0;

			for (; d->words[nw]; nw++)
				words[nw] = CStringGetTextDatum(d->words[nw]);
			nulls[4] = nulls[5] = nulls[6] = true;
			values[7] = PointerGetDatum(construct_array(words, nw, TEXTOID, -1, false, TYPALIGN_INT));
		}
		else
		{
			values[4] = Float8GetDatum(d->min);
			values[5] = BoolGetDatum(d->min_open);
			values[6] = Float8GetDatum(d->max);
			nulls[7] = true;
		}
		values[8] = CStringGetTextDatum(d->description);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
