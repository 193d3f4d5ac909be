/*
 * embeddings/train_options.c
 *		The option table of train_embeddings and everything that reads it:
 *		validation of a method's options (defaults filled in), the resolved
 *		settings of the trainers, and the SQL functions that show the table
 *		and resolve options.  The documentation's option table is this one
 *		(doc/embeddings.md shows SELECT * FROM recsys.embedding_options()).
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/tuplestore.h"

#include "embeddings/train_options.h"

#define ALL_METHODS (TRAIN_ALS | TRAIN_SOGRAM | TRAIN_SAGRAM | TRAIN_SAMPLED)
#define SGD_METHODS (TRAIN_SOGRAM | TRAIN_SAGRAM | TRAIN_SAMPLED)

typedef enum OptionType
{
	OPT_INT64,					/* stored as int64 */
	OPT_INTEGER,				/* stored as int */
	OPT_NUMBER,					/* stored as double */
	OPT_WORD					/* stored as int: the index of the word */
} OptionType;

typedef struct OptionDef
{
	const char *name;
	int			methods;		/* TrainMethod bits */
	OptionType	type;
	const char *def;			/* default, as JSON */
	double		min;
	double		max;
	bool		min_open;		/* the range excludes min */
	const char *const *words;	/* OPT_WORD: the allowed words, NULL-terminated */
	size_t		offset;			/* where TrainOptions keeps it */
	const char *description;
} OptionDef;

static const char *const optimizer_words[] = {"adagrad", "sgd", NULL};
static const char *const sampling_words[] = {"uniform", "sqrt", "linear", NULL};
static const char *const beta_words[] = {"sag", "saga", NULL};
static const char *const engine_words[] = {"auto", "memory", "aggregate", NULL};
static const char *const solver_words[] = {"cholesky", "cg", NULL};

#define OPT(f) offsetof(TrainOptions, f)

/* The options of train_embeddings: the one definition of names, methods, types, defaults and ranges */
static const OptionDef option_table[] = {
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

/* Get the words of a word option as "a, b, c" */
static char *
WordList(const char *const *words)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int w = 0; words[w]; w++)
		appendStringInfo(&s, "%s%s", w > 0 ? ", " : "", words[w]);
	return s.data;
}

/* Get the hint that states an option's range */
static char *
RangeHint(const OptionDef *d)
{
	if (d->type == OPT_INT64)
		return pstrdup("Use an integer.");
	if (d->type == OPT_INTEGER)
		return psprintf("Use an integer from %g to %g.", d->min, d->max);
	if (d->min_open && d->min == 0.0 && d->max >= 1e6)
		return pstrdup("Use a positive number.");
	if (d->min_open)
		return psprintf("Use a number in (%g, %g].", d->min, d->max);
	return psprintf("Use a number from %g to %g.", d->min, d->max);
}

/* Get the JSON type name of a value (as jsonb_typeof names it) */
static const char *
JsonTypeName(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "string";
		case jbvNumeric:
			return "number";
		case jbvBool:
			return "boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "array" : "object";
		default:
			return "object";
	}
}

/* Check one given value against its definition and store it; appends it to json */
static void
SetOption(const OptionDef *d, const JsonbValue *v, TrainOptions *out, StringInfo json)
{
	char	   *field = (char *) out + d->offset;

	if (d->type == OPT_WORD)
	{
		if (v->type == jbvString)
			for (int w = 0; d->words[w]; w++)
				if (strlen(d->words[w]) == (size_t) v->val.string.len &&
					strncmp(d->words[w], v->val.string.val, v->val.string.len) == 0)
				{
					*(int *) field = w;
					escape_json(json, d->words[w]);
					return;
				}
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be one of %s", d->name, WordList(d->words))));
	}
	else
	{
		char	   *text;
		double		x;

		if (v->type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" must be a number, not %s", d->name, JsonTypeName(v))));
		text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		x = numeric_is_nan(v->val.numeric) ? NAN :
			DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
		if (!(d->min_open ? x > d->min : x >= d->min) || !(x <= d->max) ||
			(d->type != OPT_NUMBER && x != trunc(x)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" is out of range: %s", d->name, text),
					 errhint("%s", RangeHint(d))));
		if (d->type == OPT_INT64)
			*(int64 *) field = (int64) x;
		else if (d->type == OPT_INTEGER)
			*(int *) field = (int) x;
		else
			*(double *) field = x;
		appendStringInfoString(json, text);
	}
}

/*
 * Validate a method's options (a JSON object, NULL for none) against the
 * table and fill out with every option of the method, defaults included
 */
void
TrainOptionsResolve(TrainMethod method, Jsonb *options, TrainOptions *out)
{
	JsonbValue *given[lengthof(option_table)];
	StringInfoData json;

	memset(out, 0, sizeof(TrainOptions));
	memset(given, 0, sizeof(given));
	out->method = method;
	if (options != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;

		if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("options must be a JSON object, not %s",
							JB_ROOT_IS_SCALAR(options) ?
							text_to_cstring(DatumGetTextPP(DirectFunctionCall1(jsonb_typeof,
																			  JsonbPGetDatum(options)))) :
							"array")));
		it = JsonbIteratorInit(&options->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			char	   *key;
			int			o;

			if (tok != WJB_KEY)
				continue;
			key = pnstrdup(v.val.string.val, v.val.string.len);
			for (o = 0; o < lengthof(option_table); o++)
				if ((option_table[o].methods & method) && strcmp(option_table[o].name, key) == 0)
					break;
			if (o == lengthof(option_table))
			{
				StringInfoData names;
				const char *sorted[lengthof(option_table)];
				int			n = 0;

				for (int t = 0; t < lengthof(option_table); t++)
					if (option_table[t].methods & method)
						sorted[n++] = option_table[t].name;
				qsort(sorted, n, sizeof(char *), pg_qsort_strcmp);
				initStringInfo(&names);
				for (int t = 0; t < n; t++)
					appendStringInfo(&names, "%s%s", t > 0 ? ", " : "", sorted[t]);
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown option \"%s\" for method \"%s\"", key, TrainMethodName(method)),
						 errhint("Options of %s: %s.", TrainMethodName(method), names.data)));
			}
			tok = JsonbIteratorNext(&it, &v, true);
			Assert(tok == WJB_VALUE);
			given[o] = palloc(sizeof(JsonbValue));
			*given[o] = v;
		}
	}

	/* every option of the method: given, else the default (parsed the same way) */
	initStringInfo(&json);
	appendStringInfoChar(&json, '{');
	for (int o = 0; o < lengthof(option_table); o++)
	{
		const OptionDef *d = &option_table[o];
		JsonbValue	dv;

		if (!(d->methods & method))
			continue;
		if (json.len > 1)
			appendStringInfoString(&json, ", ");
		escape_json(&json, d->name);
		appendStringInfoString(&json, ": ");
		if (given[o] == NULL)
		{
			Jsonb	   *jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(d->def)));

			if (!JsonbExtractScalar(&jb->root, &dv))
				elog(ERROR, "default of option \"%s\" is not a scalar", d->name);
			given[o] = &dv;
			SetOption(d, given[o], out, &json);
			given[o] = NULL;
		}
		else
			SetOption(d, given[o], out, &json);
	}
	appendStringInfoChar(&json, '}');
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
	for (int o = 0; o < lengthof(option_table); o++)
	{
		const OptionDef *d = &option_table[o];
		Datum		values[9];
		bool		nulls[9] = {false};
		Datum		methods[lengthof(method_names)];
		int			nm = 0;
		static const char *const type_names[] = {"integer", "integer", "number", "word"};

		for (int m = 0; m < lengthof(method_names); m++)
			if (d->methods & (1 << m))
				methods[nm++] = CStringGetTextDatum(method_names[m]);
		values[0] = CStringGetTextDatum(d->name);
		values[1] = PointerGetDatum(construct_array(methods, nm, TEXTOID, -1, false, TYPALIGN_INT));
		values[2] = CStringGetTextDatum(type_names[d->type]);
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
