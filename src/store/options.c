/*
 * store/options.c
 *		The one parser of trainers' JSON options (train_embeddings,
 *		train_mmoe, train_two_tower): a JSON object checked key by key against
 *		the trainer's table (src/embeddings/train_options.c, src/mmoe/train.c,
 *		src/twotower/train.c), every value against its type and range,
 *		defaults filled in.  One wording of the errors for every trainer.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "store/options.h"

/* Get the name a type has in messages and option listings */
const char *
OptionTypeName(OptionType type)
{
	static const char *const names[] = {"integer", "integer", "number", "word", "boolean", "numbers",
	"integers", "object"};

	return names[type];
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
	if (d->type == OPT_INTEGER || d->type == OPT_INTEGERS)
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

/*
 * Get a number (a JSON number in the option's range, an integer unless the
 * option is OPT_NUMBER or OPT_NUMBERS) and append its JSON text to json;
 * name is the option's name in errors
 */
static double
OptionNumber(const OptionDef *d, const char *name, const JsonbValue *v, StringInfo json)
{
	char	   *text;
	double		x;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a number, not %s", name, JsonTypeName(v))));
	text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	x = numeric_is_nan(v->val.numeric) ? NAN :
		DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (!(d->min_open ? x > d->min : x >= d->min) || !(x <= d->max) ||
		(d->type != OPT_NUMBER && d->type != OPT_NUMBERS && x != trunc(x)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" is out of range: %s", name, text),
				 errhint("%s", RangeHint(d))));
	appendStringInfoString(json, text);
	return x;
}

/*
 * Check one value against its definition and store it at field; appends it
 * to json; name is the option's name in errors
 */
static void
SetOption(const OptionDef *d, const char *name, const JsonbValue *v, char *field, StringInfo json)
{
	switch (d->type)
	{
		case OPT_WORD:
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
					 errmsg("option \"%s\" must be one of %s", name, WordList(d->words))));
			break;
		case OPT_BOOL:
			if (v->type != jbvBool)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" must be true or false, not %s", name, JsonTypeName(v))));
			*(bool *) field = v->val.boolean;
			appendStringInfoString(json, v->val.boolean ? "true" : "false");
			break;
		case OPT_NUMBERS:
		case OPT_INTEGERS:
			{
				OptionNumbers *nums = (OptionNumbers *) field;
				JsonbContainer *arr;
				int			n;

				if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"%s\" must be an array of numbers, not %s",
									name, JsonTypeName(v))));
				arr = v->val.binary.data;
				n = JsonContainerSize(arr);
				if (n > OPTION_MAX_NUMBERS)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("option \"%s\" has %d numbers, more than %d",
									name, n, OPTION_MAX_NUMBERS)));
				appendStringInfoChar(json, '[');
				for (int i = 0; i < n; i++)
				{
					if (i > 0)
						appendStringInfoString(json, ", ");
					nums->x[i] = OptionNumber(d, name, getIthJsonbValueFromContainer(arr, i), json);
				}
				appendStringInfoChar(json, ']');
				nums->n = n;
			}
			break;
		case OPT_INT64:
			*(int64 *) field = (int64) OptionNumber(d, name, v, json);
			break;
		case OPT_INTEGER:
			*(int *) field = (int) OptionNumber(d, name, v, json);
			break;
		case OPT_NUMBER:
			*(double *) field = OptionNumber(d, name, v, json);
			break;
		case OPT_OBJECT:
			if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" must be an object, not %s", name, JsonTypeName(v))));
			*(Jsonb **) field = JsonbValueToJsonb((JsonbValue *) v);
			break;
	}
}

/* Raise the error for a key that no option of the scope has, listing those it has */
static void
UnknownOption(const OptionTable *table, int scope, const char *owner, const char *owner_phrase,
			  const char *key)
{
	StringInfoData names;
	const char **sorted = palloc(sizeof(char *) * table->ndefs);
	int			n = 0;

	for (int t = 0; t < table->ndefs; t++)
		if (table->defs[t].scopes & scope)
			sorted[n++] = table->defs[t].name;
	qsort(sorted, n, sizeof(char *), pg_qsort_strcmp);
	initStringInfo(&names);
	for (int t = 0; t < n; t++)
		appendStringInfo(&names, "%s%s", t > 0 ? ", " : "", sorted[t]);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown option \"%s%s\" for %s", table->prefix ? table->prefix : "", key, owner_phrase),
			 errhint("Options of %s: %s.", owner, names.data)));
}

/*
 * Check options (a JSON object, NULL for none) against the options of table
 * that scope has, and store each in out at its offset: the given value, else
 * the default (parsed the same way); an option without a default keeps what
 * out holds when not given.  Errors name the trainer: "unknown option for
 * <owner_phrase>", "Options of <owner>".  given (table->ndefs entries, or
 * NULL) says which were given; json (or NULL) gets the resolved options as
 * a JSON object, in table order, less the unlisted ones and the objects (an
 * object is the trainer's to read, e.g. with a table of its own whose
 * prefix names it in errors).
 */
void
OptionsParse(const OptionTable *table, int scope, const char *owner, const char *owner_phrase,
			 Jsonb *options, void *out, bool *given, StringInfo json)
{
	JsonbValue **values = palloc0(sizeof(JsonbValue *) * table->ndefs);
	StringInfoData discard;
	StringInfoData unlisted;
	int			start;

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
			for (o = 0; o < table->ndefs; o++)
				if ((table->defs[o].scopes & scope) && strcmp(table->defs[o].name, key) == 0)
					break;
			if (o == table->ndefs)
				UnknownOption(table, scope, owner, owner_phrase, key);
			tok = JsonbIteratorNext(&it, &v, true);
			Assert(tok == WJB_VALUE);
			values[o] = palloc(sizeof(JsonbValue));
			*values[o] = v;
		}
	}

	/* every option of the scope: given, else the default */
	if (json == NULL)
	{
		initStringInfo(&discard);
		json = &discard;
	}
	initStringInfo(&unlisted);
	start = json->len;
	appendStringInfoChar(json, '{');
	for (int o = 0; o < table->ndefs; o++)
	{
		const OptionDef *d = &table->defs[o];
		const char *name = table->prefix ? psprintf("%s%s", table->prefix, d->name) : d->name;
		/* options the resolved JSON leaves out are checked all the same */
		StringInfo	to = d->unlisted || d->type == OPT_OBJECT ? &unlisted : json;
		JsonbValue	dv;

		if (given)
			given[o] = values[o] != NULL;
		if (!(d->scopes & scope) || (values[o] == NULL && d->def == NULL))
			continue;
		if (to == json)
		{
			if (json->len > start + 1)
				appendStringInfoString(json, ", ");
			escape_json(json, d->name);
			appendStringInfoString(json, ": ");
		}
		if (values[o] == NULL)
		{
			Jsonb	   *jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(d->def)));

			if (!JsonbExtractScalar(&jb->root, &dv))
				elog(ERROR, "default of option \"%s\" is not a scalar", d->name);
			SetOption(d, name, &dv, (char *) out + d->offset, to);
		}
		else
			SetOption(d, name, values[o], (char *) out + d->offset, to);
	}
	appendStringInfoChar(json, '}');
}
