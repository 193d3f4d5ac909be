/*
 * features/spec.c
 *		Parse and check a feature spec (jsonb), and write a fitted spec back
 *		as JSON.  Every key is checked: unknown keys, and fitted keys in a
 *		spec that was not fitted, are errors, so typos do not pass silently.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "features/internal.h"
#include "features/spec.h"
#include "settings.h"

/* Raise an error about a spec entry */
#define SpecError(...) \
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg(__VA_ARGS__)))

static const char *const KindKeys[] = {"numeric", "categorical", "multi_categorical", "vector"};

/* Get the name of a kind as the spec writes it */
const char *
FeatureKindName(FeatureKind kind)
{
	return KindKeys[kind];
}

/* Get the entry key of object obj, or false when absent or JSON null */
static bool
Get(JsonbContainer *obj, const char *key, JsonbValue *out)
{
	if (getKeyJsonValueFromContainer(obj, key, strlen(key), out) == NULL)
		return false;
	return out->type != jbvNull;
}

/* Raise an error for a key of obj outside allowed and fitted (fitted keys only when fitted) */
static void
CheckKeys(JsonbContainer *obj, const char *path, const char *const *allowed,
		  const char *const *fitted_keys, bool fitted)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		ok = false;
		bool		is_fitted = false;

		if (tok != WJB_KEY)
			continue;
		for (int i = 0; allowed[i]; i++)
			if (strlen(allowed[i]) == (size_t) v.val.string.len &&
				memcmp(allowed[i], v.val.string.val, v.val.string.len) == 0)
				ok = true;
		for (int i = 0; fitted_keys && fitted_keys[i]; i++)
			if (strlen(fitted_keys[i]) == (size_t) v.val.string.len &&
				memcmp(fitted_keys[i], v.val.string.val, v.val.string.len) == 0)
				is_fitted = true;
		if (is_fitted && !fitted)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature spec: \"%.*s\" in \"%s\" is written by fitting",
							Min(v.val.string.len, 64), v.val.string.val, path),
					 errhint("A spec without \"fitted\" names columns and options only; training fits it.")));
		if (!ok && !is_fitted)
			SpecError("feature spec: unknown key \"%.*s\" in \"%s\"",
					  Min(v.val.string.len, 64), v.val.string.val, path);
	}
}

/* Get a number as float8, or raise an error naming path */
static double
Number(const JsonbValue *v, const char *path)
{
	double		x;

	if (v->type != jbvNumeric)
		SpecError("feature spec: \"%s\" must be a number", path);
	x = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (!isfinite(x))
		SpecError("feature spec: \"%s\" must be finite", path);
	return x;
}

/* Get an integer in [min, max], or raise an error naming path */
static int64
Integer(const JsonbValue *v, const char *path, int64 min, int64 max)
{
	Datum		n;
	int64		x;

	if (v->type != jbvNumeric || numeric_is_nan(v->val.numeric) || numeric_is_inf(v->val.numeric) ||
		DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(v->val.numeric))) != 0)
		SpecError("feature spec: \"%s\" must be an integer", path);
	/* compared as numerics: every bigint, to its ends, is a value a vocabulary may hold */
	n = NumericGetDatum(v->val.numeric);
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, n, NumericGetDatum(int64_to_numeric(PG_INT64_MIN)))) < 0 ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, n, NumericGetDatum(int64_to_numeric(PG_INT64_MAX)))) > 0)
		SpecError("feature spec: \"%s\" must be in [" INT64_FORMAT ", " INT64_FORMAT "]", path, min, max);
	x = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
	if (x < min || x > max)
		SpecError("feature spec: \"%s\" must be in [" INT64_FORMAT ", " INT64_FORMAT "]", path, min, max);
	return x;
}

/* Get a required entry, or raise an error naming it */
static void
Require(JsonbContainer *obj, const char *key, const char *path, JsonbValue *out)
{
	if (!Get(obj, key, out))
		SpecError("feature spec: \"%s.%s\" is required", path, key);
}

/* Get a column name (1 .. NAMEDATALEN - 1 bytes) */
static char *
ColumnName(const JsonbValue *v, const char *path)
{
	if (v->type != jbvString)
		SpecError("feature spec: \"%s\" must be a column name (a string)", path);
	if (v->val.string.len < 1 || v->val.string.len >= NAMEDATALEN)
		SpecError("feature spec: \"%s\" must have 1 to %d bytes", path, NAMEDATALEN - 1);
	if (memchr(v->val.string.val, '\0', v->val.string.len))
		SpecError("feature spec: \"%s\" must not contain NUL", path);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Read the options and fitted values of one entry */
static void
ParseEntry(FeatureColumn *c, JsonbContainer *obj, const char *path, bool fitted)
{
	static const char *const numeric_keys[] = {"column", "transform", "null_value", NULL};
	static const char *const numeric_fitted[] = {"mean", "std", "min", "max", "count", "nulls", NULL};
	static const char *const cat_keys[] = {"column", "min_count", "max_size", "dim", NULL};
	static const char *const cat_fitted[] = {"type", "vocab", "count", "nulls", "oov", NULL};
	static const char *const vector_keys[] = {"column", NULL};
	static const char *const vector_fitted[] = {"length", NULL};
	JsonbValue	v;

	switch (c->kind)
	{
		case FEATURE_KIND_NUMERIC:
			CheckKeys(obj, path, numeric_keys, numeric_fitted, fitted);
			break;
		case FEATURE_KIND_CATEGORICAL:
		case FEATURE_KIND_MULTI:
			CheckKeys(obj, path, cat_keys, cat_fitted, fitted);
			break;
		case FEATURE_KIND_VECTOR:
			CheckKeys(obj, path, vector_keys, vector_fitted, fitted);
			break;
	}
	Require(obj, "column", path, &v);
	c->column = ColumnName(&v, psprintf("%s.column", path));

	if (c->kind == FEATURE_KIND_NUMERIC)
	{
		if (Get(obj, "transform", &v))
		{
			if (v.type != jbvString)
				SpecError("feature spec: \"%s.transform\" must be a string", path);
			if (v.val.string.len == 11 && memcmp(v.val.string.val, "standardize", 11) == 0)
				c->num.transform = FEATURE_STANDARDIZE;
			else if (v.val.string.len == 6 && memcmp(v.val.string.val, "minmax", 6) == 0)
				c->num.transform = FEATURE_MINMAX;
			else if (v.val.string.len == 17 && memcmp(v.val.string.val, "log1p_standardize", 17) == 0)
				c->num.transform = FEATURE_LOG1P_STANDARDIZE;
			else
				SpecError("feature spec: \"%s.transform\" must be \"standardize\", \"minmax\" or \"log1p_standardize\", not \"%.*s\"",
						  path, Min(v.val.string.len, 64), v.val.string.val);
		}
		if (Get(obj, "null_value", &v))
		{
			c->has_null_value = true;
			c->null_value = Number(&v, psprintf("%s.null_value", path));
			if (!FeatureValueValid(c->num.transform, c->null_value))
				SpecError("feature spec: \"%s.null_value\" must be more than -1 under log1p_standardize", path);
		}
		if (fitted)
		{
			Require(obj, "mean", path, &v);
			c->num.mean = Number(&v, psprintf("%s.mean", path));
			Require(obj, "std", path, &v);
			c->num.std = Number(&v, psprintf("%s.std", path));
			Require(obj, "min", path, &v);
			c->num.min = Number(&v, psprintf("%s.min", path));
			Require(obj, "max", path, &v);
			c->num.max = Number(&v, psprintf("%s.max", path));
			if (c->num.std < 0 || c->num.min > c->num.max)
				SpecError("feature spec: \"%s\" has a negative std or min above max", path);
			Require(obj, "count", path, &v);
			c->count = Integer(&v, psprintf("%s.count", path), 1, PG_INT64_MAX);
			Require(obj, "nulls", path, &v);
			c->nulls = Integer(&v, psprintf("%s.nulls", path), 0, PG_INT64_MAX);
		}
	}
	else if (c->kind == FEATURE_KIND_VECTOR)
	{
		if (fitted)
		{
			Require(obj, "length", path, &v);
			c->length = (int) Integer(&v, psprintf("%s.length", path), 1, recsys_max_dim);
		}
	}
	else
	{
		if (strspn(c->column, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(c->column))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature spec: categorical column \"%s\" may only have letters, digits and _ in its name",
							c->column),
					 errdetail("The column name is the name of its embedding tensor (embeddings.{name}.weight)."),
					 errhint("Rename the column, or select it under another name in a view.")));
		if (Get(obj, "min_count", &v))
			c->min_count = (int) Integer(&v, psprintf("%s.min_count", path), 1, PG_INT32_MAX);
		if (Get(obj, "max_size", &v))
			c->max_size = (int) Integer(&v, psprintf("%s.max_size", path), 1, FEATURE_MAX_VOCAB);
		if (Get(obj, "dim", &v))
			c->dim = (int) Integer(&v, psprintf("%s.dim", path), 1, recsys_max_dim);
		if (fitted)
		{
			JsonbContainer *arr;
			int			n;
			char	   *type;

			Require(obj, "type", path, &v);
			if (v.type != jbvString)
				SpecError("feature spec: \"%s.type\" must be a string", path);
			type = pnstrdup(v.val.string.val, v.val.string.len);
			if (strcmp(type, "text") == 0)
				c->vtype = FEATURE_VALUES_TEXT;
			else if (strcmp(type, "int") == 0)
				c->vtype = FEATURE_VALUES_INT;
			else if (strcmp(type, "bool") == 0)
				c->vtype = FEATURE_VALUES_BOOL;
			else
				SpecError("feature spec: \"%s.type\" must be \"text\", \"int\" or \"bool\"", path);
			Require(obj, "vocab", path, &v);
			if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
				SpecError("feature spec: \"%s.vocab\" must be an array", path);
			arr = v.val.binary.data;
			n = JsonContainerSize(arr);
			if (n > c->max_size)
				SpecError("feature spec: \"%s.vocab\" has %d values, more than max_size %d", path, n, c->max_size);
			c->vocab = FeatureVocabCreate(c->vtype, n);
			for (int i = 0; i < n; i++)
			{
				JsonbValue *e = getIthJsonbValueFromContainer(arr, i);
				char	   *epath = psprintf("%s.vocab[%d]", path, i);
				int32		before = FeatureVocabCount(c->vocab);

				if (c->vtype == FEATURE_VALUES_TEXT)
				{
					if (e->type != jbvString)
						SpecError("feature spec: \"%s\" must be a string", epath);
					FeatureVocabAdd(c->vocab, 0, e->val.string.val, e->val.string.len);
				}
				else if (c->vtype == FEATURE_VALUES_BOOL)
				{
					if (e->type != jbvBool)
						SpecError("feature spec: \"%s\" must be true or false", epath);
					FeatureVocabAdd(c->vocab, e->val.boolean ? 1 : 0, NULL, 0);
				}
				else
					FeatureVocabAdd(c->vocab, Integer(e, epath, PG_INT64_MIN, PG_INT64_MAX), NULL, 0);
				if (FeatureVocabCount(c->vocab) == before)
					SpecError("feature spec: \"%s\" repeats a value", epath);
			}
			/* the vocabulary is complete: index it for scoring */
			FeatureVocabFreeze(c->vocab);
			Require(obj, "count", path, &v);
			c->count = Integer(&v, psprintf("%s.count", path), 0, PG_INT64_MAX);
			Require(obj, "nulls", path, &v);
			c->nulls = Integer(&v, psprintf("%s.nulls", path), 0, PG_INT64_MAX);
			Require(obj, "oov", path, &v);
			c->oov = Integer(&v, psprintf("%s.oov", path), 0, PG_INT64_MAX);
		}
	}
}

/* Set what a NULL numeric value becomes: the null_value option transformed, else the fitted mean transformed */
void
FeatureColumnSetNullOut(FeatureColumn *c)
{
	if (c->has_null_value)
		c->num.null_out = FeatureNumericApply(&c->num, c->null_value);
	else if (c->num.transform == FEATURE_MINMAX)
		c->num.null_out = c->num.max > c->num.min
			? (float) ((c->num.mean - c->num.min) / (c->num.max - c->num.min)) : 0.0f;
	else
		c->num.null_out = 0.0f;
}

/*
 * Parse a spec (the value of a config's "features" key).  A spec without
 * "fitted" is accepted only when allow_unfitted (training fits it); its
 * vector lengths and vocabularies are then unknown (0 and none).
 */
FeatureSpec *
FeatureSpecParse(const JsonbValue *v, bool allow_unfitted)
{
	static const char *const top_keys[] = {"numeric", "categorical", "multi_categorical", "vector", NULL};
	static const char *const top_fitted[] = {"fitted", NULL};
	static const char *const fitted_keys[] = {"rows", NULL};
	FeatureSpec *spec = palloc0(sizeof(FeatureSpec));
	JsonbContainer *root;
	JsonbValue	e;
	int			total = 0;
	int			n = 0;
	int			dense = 0;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		SpecError("feature spec: \"features\" must be an object");
	root = v->val.binary.data;
	spec->fitted = Get(root, "fitted", &e);
	CheckKeys(root, "features", top_keys, top_fitted, true);
	if (spec->fitted)
	{
		JsonbValue	r;

		if (e.type != jbvBinary || !JsonContainerIsObject(e.val.binary.data))
			SpecError("feature spec: \"features.fitted\" must be an object");
		CheckKeys(e.val.binary.data, "features.fitted", fitted_keys, NULL, true);
		Require(e.val.binary.data, "rows", "features.fitted", &r);
		spec->rows = Integer(&r, "features.fitted.rows", 1, PG_INT64_MAX);
	}
	else if (!allow_unfitted)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature spec has not been fitted"),
				 errhint("recsys.train_mmoe fits the spec on its source table and stores the fitted spec with the model.")));

	for (int k = 0; k < 4; k++)
		if (Get(root, KindKeys[k], &e))
		{
			if (e.type != jbvBinary || !JsonContainerIsArray(e.val.binary.data))
				SpecError("feature spec: \"features.%s\" must be an array", KindKeys[k]);
			total += JsonContainerSize(e.val.binary.data);
		}
	if (total == 0)
		SpecError("feature spec names no columns");
	if (total > FEATURE_MAX_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("feature spec names %d columns, more than %d", total, FEATURE_MAX_COLUMNS)));
	spec->columns = palloc0(sizeof(FeatureColumn) * total);

	for (int k = 0; k < 4; k++)
	{
		JsonbContainer *arr;
		int			len;

		if (!Get(root, KindKeys[k], &e))
			continue;
		arr = e.val.binary.data;
		len = JsonContainerSize(arr);
		for (int i = 0; i < len; i++)
		{
			FeatureColumn *c = &spec->columns[n];
			JsonbValue *item = getIthJsonbValueFromContainer(arr, i);
			char	   *path = psprintf("features.%s[%d]", KindKeys[k], i);

			c->kind = (FeatureKind) k;
			c->num.transform = FEATURE_STANDARDIZE;
			c->min_count = 1;
			c->max_size = FEATURE_DEFAULT_MAX_SIZE;
			c->dim = FEATURE_DEFAULT_DIM;
			if (item->type == jbvString)
			{
				if (spec->fitted)
					SpecError("feature spec: \"%s\" of a fitted spec must be an object", path);
				c->column = ColumnName(item, path);
			}
			else if (item->type == jbvBinary && JsonContainerIsObject(item->val.binary.data))
				ParseEntry(c, item->val.binary.data, path, spec->fitted);
			else
				SpecError("feature spec: \"%s\" must be a column name or an object", path);

			/* a column appears once per kind; embedding names are unique */
			for (int j = 0; j < n; j++)
			{
				const FeatureColumn *o = &spec->columns[j];
				bool		embedded = c->kind == FEATURE_KIND_CATEGORICAL || c->kind == FEATURE_KIND_MULTI;
				bool		o_embedded = o->kind == FEATURE_KIND_CATEGORICAL || o->kind == FEATURE_KIND_MULTI;

				if (strcmp(o->column, c->column) == 0 && (o->kind == c->kind || (embedded && o_embedded)))
					SpecError("feature spec: column \"%s\" appears twice in \"%s\"%s", c->column,
							  KindKeys[c->kind], o->kind == c->kind ? "" : " and another categorical kind");
			}
			switch (c->kind)
			{
				case FEATURE_KIND_NUMERIC:
					c->index = spec->nnumeric++;
					if (spec->fitted)
						FeatureColumnSetNullOut(c);
					break;
				case FEATURE_KIND_CATEGORICAL:
					c->index = spec->ncategorical++;
					break;
				case FEATURE_KIND_MULTI:
					c->index = spec->nmulti++;
					break;
				case FEATURE_KIND_VECTOR:
					spec->nvector++;
					break;
			}
			n++;
		}
	}
	spec->ncolumns = n;
	/* dense: numeric columns, then vectors */
	dense = spec->nnumeric;
	for (int i = 0; i < n; i++)
		if (spec->columns[i].kind == FEATURE_KIND_VECTOR)
		{
			spec->columns[i].index = dense;
			dense += spec->columns[i].length;
		}
	spec->dense_dim = dense;
	return spec;
}

/* Get the vocabulary size of a fitted categorical column: kept values, OOV, NULL */
int
FeatureVocabSize(const FeatureColumn *c)
{
	return (c->vocab ? FeatureVocabCount(c->vocab) : 0) + 2;
}

/* Append a double as JSON (fitted values are always finite) */
static void
AppendDouble(StringInfo s, const char *key, double x)
{
	appendStringInfo(s, ", \"%s\": %.17g", key, x);
}

/* Get the JSON text of a fitted spec (every option written out) */
char *
FeatureSpecJson(const FeatureSpec *spec)
{
	StringInfoData s;
	static const char *const transforms[] = {"standardize", "minmax", "log1p_standardize"};
	static const char *const vtypes[] = {"text", "int", "bool"};

	Assert(spec->fitted);
	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	for (int k = 0; k < 4; k++)
	{
		bool		first = true;

		appendStringInfo(&s, "%s\"%s\": [", k ? ", " : "", KindKeys[k]);
		for (int i = 0; i < spec->ncolumns; i++)
		{
			const FeatureColumn *c = &spec->columns[i];

			if (c->kind != (FeatureKind) k)
				continue;
			appendStringInfoString(&s, first ? "{\"column\": " : ", {\"column\": ");
			first = false;
			escape_json(&s, c->column);
			switch (c->kind)
			{
				case FEATURE_KIND_NUMERIC:
					appendStringInfo(&s, ", \"transform\": \"%s\"", transforms[c->num.transform]);
					if (c->has_null_value)
						AppendDouble(&s, "null_value", c->null_value);
					AppendDouble(&s, "mean", c->num.mean);
					AppendDouble(&s, "std", c->num.std);
					AppendDouble(&s, "min", c->num.min);
					AppendDouble(&s, "max", c->num.max);
					break;
				case FEATURE_KIND_CATEGORICAL:
				case FEATURE_KIND_MULTI:
					{
						int32		nv = FeatureVocabCount(c->vocab);

						appendStringInfo(&s, ", \"dim\": %d, \"min_count\": %d, \"max_size\": %d, \"type\": \"%s\", \"vocab\": [",
										 c->dim, c->min_count, c->max_size, vtypes[c->vtype]);
						for (int32 id = 0; id < nv; id++)
						{
							int64		ival;
							const char *str;
							int			len;

							FeatureVocabValue(c->vocab, id, &ival, &str, &len);
							if (id > 0)
								appendStringInfoString(&s, ", ");
							if (c->vtype == FEATURE_VALUES_TEXT)
								escape_json(&s, pnstrdup(str, len));
							else if (c->vtype == FEATURE_VALUES_BOOL)
								appendStringInfoString(&s, ival ? "true" : "false");
							else
								appendStringInfo(&s, INT64_FORMAT, ival);
						}
						appendStringInfo(&s, "], \"oov\": " INT64_FORMAT, c->oov);
						break;
					}
				case FEATURE_KIND_VECTOR:
					appendStringInfo(&s, ", \"length\": %d", c->length);
					break;
			}
			if (c->kind != FEATURE_KIND_VECTOR)
				appendStringInfo(&s, ", \"count\": " INT64_FORMAT ", \"nulls\": " INT64_FORMAT,
								 c->count, c->nulls);
			appendStringInfoChar(&s, '}');
		}
		appendStringInfoChar(&s, ']');
	}
	appendStringInfo(&s, ", \"fitted\": {\"rows\": " INT64_FORMAT "}}", spec->rows);
	return s.data;
}
