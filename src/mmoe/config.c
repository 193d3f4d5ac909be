/*
 * mmoe/config.c
 *		Check an MMoE config (jsonb) and build the model skeleton it
 *		describes: every size, no weights yet (src/mmoe_load.c adds them).
 *
 * Config keys: kind ("mmoe"), input_dim, experts {count, hidden, activation},
 * gate {type, k}, tasks [{name, type, tower}], categorical [{name, vocab,
 * dim}], latent_cross {context_dim}, shallow_tower {position_buckets},
 * dropout.  Numbers are read through PostgreSQL's numeric type, so any JSON
 * number is compared exactly against the limits.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "features/spec.h"
#include "mmoe/load.h"
#include "mmoe/mmoe.h"
#include "settings.h"

/* Raise an error about a config entry */
#define ConfigError(code, ...) \
	ereport(ERROR, (errcode(code), errmsg(__VA_ARGS__)))

/* Get the entry key of object obj, or false when absent or JSON null */
static bool
ConfigGet(JsonbContainer *obj, const char *key, JsonbValue *out)
{
	if (getKeyJsonValueFromContainer(obj, key, strlen(key), out) == NULL)
		return false;
	return out->type != jbvNull;
}

/* Get the container of a JSON object value, or raise an error naming path */
static JsonbContainer *
ConfigObject(const JsonbValue *v, const char *path)
{
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" must be an object", path);
	return v->val.binary.data;
}

/* Get the container of a JSON array value and its length */
static JsonbContainer *
ConfigArray(const JsonbValue *v, const char *path, int *n)
{
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" must be an array", path);
	*n = JsonContainerSize(v->val.binary.data);
	return v->val.binary.data;
}

/* Raise an error for a key of obj that is not in allowed (NULL-terminated) */
static void
ConfigCheckKeys(JsonbContainer *obj, const char *path, const char *const *allowed)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		ok = false;

		if (tok != WJB_KEY)
			continue;
		for (int i = 0; allowed[i]; i++)
			if (strlen(allowed[i]) == (size_t) v.val.string.len &&
				memcmp(allowed[i], v.val.string.val, v.val.string.len) == 0)
				ok = true;
		if (!ok)
			ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
						"mmoe config: unknown key \"%.*s\" %s",
						Min(v.val.string.len, 64), v.val.string.val,
						path[0] ? psprintf("in \"%s\"", path) : "at the top level");
	}
}

/* Get an integer in [min, max] (min, max within int), or raise an error naming path */
static int
ConfigInt(const JsonbValue *v, const char *path, int64 min, int64 max)
{
	Numeric		num;
	char	   *shown;
	bool		error = false;
	int32		x;

	if (v->type != jbvNumeric)
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" must be an integer", path);
	num = v->val.numeric;
	shown = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
	/* a display scale of 0 means no fraction digits: 1.0 is refused like 1.5 */
	if (numeric_is_nan(num) || numeric_is_inf(num) ||
		DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(num))) != 0)
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" must be an integer, not %s", path, shown);
	if (DatumGetBool(DirectFunctionCall2(numeric_lt, NumericGetDatum(num),
										 NumericGetDatum(int64_to_numeric(min)))))
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" must be at least " INT64_FORMAT ", not %s", path, min, shown);
	if (DatumGetBool(DirectFunctionCall2(numeric_gt, NumericGetDatum(num),
										 NumericGetDatum(int64_to_numeric(max)))))
		ConfigError(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
					"mmoe config: \"%s\" is %s, more than the limit " INT64_FORMAT, path, shown, max);
	x = numeric_int4_opt_error(num, &error);
	Assert(!error);
	return x;
}

/* Get a string of 1..maxlen bytes, or raise an error naming path */
static char *
ConfigString(const JsonbValue *v, const char *path, int maxlen)
{
	if (v->type != jbvString)
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" must be a string", path);
	if (v->val.string.len < 1 || v->val.string.len > maxlen)
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" must have 1 to %d bytes", path, maxlen);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Get a required entry, or raise an error naming it */
static void
ConfigRequire(JsonbContainer *obj, const char *key, const char *path, JsonbValue *out)
{
	if (!ConfigGet(obj, key, out))
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" is required", path);
}

/* Get an array of layer widths (each 1..recsys.max_dim) */
static int *
ConfigWidths(const JsonbValue *v, const char *path, int minlen, int *n)
{
	JsonbContainer *arr = ConfigArray(v, path, n);
	int		   *w = palloc(sizeof(int) * Max(*n, 1));

	if (*n < minlen)
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" must have at least %d element(s)", path, minlen);
	if (*n > MMOE_MAX_LAYERS)
		ConfigError(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
					"mmoe config: \"%s\" has %d layers, more than %d", path, *n, MMOE_MAX_LAYERS);
	for (int i = 0; i < *n; i++)
		w[i] = ConfigInt(getIthJsonbValueFromContainer(arr, i),
						 psprintf("%s[%d]", path, i), 1, recsys_max_dim);
	return w;
}

/* Set up a layer's sizes (weights come later) */
static void
InitLayer(MmoeLayer *l, int in, int out)
{
	l->in = in;
	l->out = out;
	l->w = NULL;
	l->b = NULL;
}

/*
 * Take the inputs of a model that reads rows from its feature spec: dense
 * width, one embedding per categorical column and one embedding bag per
 * multi_categorical column, named by their columns.  An unfitted spec (for
 * train_mmoe, before it fits) gives vocabularies of 2 and vectors of 0.
 */
static int64
SpecInputs(MmoeModel *m, const FeatureSpec *spec)
{
	int64		width = spec->dense_dim;

	m->features = spec;
	m->input_dim = spec->dense_dim;
	m->ncategorical = spec->ncategorical;
	m->categorical = palloc0(sizeof(MmoeCategorical) * Max(spec->ncategorical, 1));
	m->nbags = spec->nmulti;
	m->bags = palloc0(sizeof(MmoeCategorical) * Max(spec->nmulti, 1));
	for (int i = 0; i < spec->ncolumns; i++)
	{
		const FeatureColumn *c = &spec->columns[i];
		MmoeCategorical *e;

		if (c->kind == FEATURE_KIND_CATEGORICAL)
			e = &m->categorical[c->index];
		else if (c->kind == FEATURE_KIND_MULTI)
			e = &m->bags[c->index];
		else
			continue;
		if (strlen(c->column) > MMOE_MAX_NAME)
			ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
						"mmoe config: categorical column name \"%s\" is longer than %d bytes",
						c->column, MMOE_MAX_NAME);
		e->name = c->column;
		e->vocab = FeatureVocabSize(c);
		e->dim = c->dim;
	}
	for (int c = 0; c < m->ncategorical; c++)
		width += m->categorical[c].dim;
	m->bag_offset = (int) width;
	for (int c = 0; c < m->nbags; c++)
		width += m->bags[c].dim;
	return width;
}

/* Read the inputs: a "features" spec, else input_dim; get the input width so far */
static int64
ConfigInputs(MmoeModel *m, JsonbContainer *root, bool allow_unfitted)
{
	JsonbValue	v;

	if (ConfigGet(root, "features", &v))
	{
		JsonbValue	other;

		if (ConfigGet(root, "input_dim", &other) || ConfigGet(root, "categorical", &other))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("mmoe config: \"input_dim\" and \"categorical\" come from \"features\"; leave them out"),
					 errdetail("A model with a feature spec takes its input sizes and vocabularies from the fitted spec.")));
		return SpecInputs(m, FeatureSpecParse(&v, allow_unfitted));
	}
	ConfigRequire(root, "input_dim", "input_dim", &v);
	m->input_dim = ConfigInt(&v, "input_dim", 1, recsys_max_dim);
	return m->input_dim;
}

/* Read "experts": their count and activation; get the hidden widths (m->nlayers of them) */
static int *
ConfigExperts(MmoeModel *m, JsonbContainer *root)
{
	static const char *const expert_keys[] = {"count", "hidden", "activation", NULL};
	JsonbContainer *obj;
	JsonbValue	v;
	int		   *hidden;

	ConfigRequire(root, "experts", "experts", &v);
	obj = ConfigObject(&v, "experts");
	ConfigCheckKeys(obj, "experts", expert_keys);
	ConfigRequire(obj, "count", "experts.count", &v);
	m->nexperts = ConfigInt(&v, "experts.count", 1, MMOE_MAX_EXPERTS);
	ConfigRequire(obj, "hidden", "experts.hidden", &v);
	hidden = ConfigWidths(&v, "experts.hidden", 1, &m->nlayers);
	if (ConfigGet(obj, "activation", &v))
	{
		char	   *act = ConfigString(&v, "experts.activation", 64);

		if (strcmp(act, "relu") != 0)
			ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
						"mmoe config: \"experts.activation\" must be \"relu\", not \"%s\"", act);
	}
	return hidden;
}

/* Read "categorical" (a model without a spec): get the input width widened by the embeddings */
static int64
ConfigCategorical(MmoeModel *m, JsonbContainer *root, int64 width)
{
	static const char *const cat_keys[] = {"name", "vocab", "dim", NULL};
	JsonbContainer *arr;
	JsonbValue	v;
	int			n;

	if (!ConfigGet(root, "categorical", &v))
		return width;
	arr = ConfigArray(&v, "categorical", &n);
	if (n > MMOE_MAX_CATEGORICAL)
		ConfigError(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
					"mmoe config: \"categorical\" has %d entries, more than %d",
					n, MMOE_MAX_CATEGORICAL);
	m->ncategorical = n;
	m->categorical = palloc0(sizeof(MmoeCategorical) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		MmoeCategorical *c = &m->categorical[i];
		char	   *path = psprintf("categorical[%d]", i);
		JsonbValue *e = getIthJsonbValueFromContainer(arr, i);
		JsonbContainer *obj = ConfigObject(e, path);

		ConfigCheckKeys(obj, path, cat_keys);
		ConfigRequire(obj, "name", psprintf("%s.name", path), &v);
		c->name = ConfigString(&v, psprintf("%s.name", path), MMOE_MAX_NAME);
		if (strspn(c->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(c->name))
			ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
						"mmoe config: categorical name \"%s\" may only have letters, digits and _",
						c->name);
		for (int j = 0; j < i; j++)
			if (strcmp(m->categorical[j].name, c->name) == 0)
				ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
							"mmoe config: categorical name \"%s\" appears twice", c->name);
		ConfigRequire(obj, "vocab", psprintf("%s.vocab", path), &v);
		c->vocab = ConfigInt(&v, psprintf("%s.vocab", path), 1, PG_INT32_MAX);
		ConfigRequire(obj, "dim", psprintf("%s.dim", path), &v);
		c->dim = ConfigInt(&v, psprintf("%s.dim", path), 1, recsys_max_dim);
		width += c->dim;
	}
	return width;
}

/* Set up the expert layers; get the next dropout site after their units */
static int
ExpertLayers(MmoeModel *m, const int *hidden)
{
	int			site = 0;

	m->experts = palloc0(sizeof(MmoeLayer) * m->nexperts * m->nlayers);
	m->expert_site = palloc(sizeof(int) * m->nexperts * m->nlayers);
	m->max_width = 1;
	for (int i = 0; i < m->nexperts; i++)
		for (int l = 0; l < m->nlayers; l++)
		{
			InitLayer(&m->experts[i * m->nlayers + l], l == 0 ? m->in_width : hidden[l - 1], hidden[l]);
			m->expert_site[i * m->nlayers + l] = site;
			site += hidden[l];
			m->max_width = Max(m->max_width, hidden[l]);
		}
	m->expert_out = hidden[m->nlayers - 1];
	return site;
}

/* Read "gate" (softmax when absent) */
static void
ConfigGate(MmoeModel *m, JsonbContainer *root)
{
	static const char *const gate_keys[] = {"type", "k", NULL};
	JsonbContainer *obj;
	JsonbValue	v;
	char	   *type;

	m->gate = MMOE_GATE_SOFTMAX;
	if (!ConfigGet(root, "gate", &v))
		return;
	obj = ConfigObject(&v, "gate");
	ConfigCheckKeys(obj, "gate", gate_keys);
	ConfigRequire(obj, "type", "gate.type", &v);
	type = ConfigString(&v, "gate.type", 64);
	if (strcmp(type, "softmax") == 0)
	{
		if (ConfigGet(obj, "k", &v))
			ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
						"mmoe config: \"gate.k\" only applies to \"noisy_top_k\" gates");
	}
	else if (strcmp(type, "noisy_top_k") == 0)
	{
		m->gate = MMOE_GATE_NOISY_TOP_K;
		ConfigRequire(obj, "k", "gate.k", &v);
		m->top_k = ConfigInt(&v, "gate.k", 1, PG_INT32_MAX);
		if (m->top_k > m->nexperts)
			ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
						"mmoe config: \"gate.k\" is %d, more than \"experts.count\" (%d)",
						m->top_k, m->nexperts);
	}
	else
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"gate.type\" must be \"softmax\" or \"noisy_top_k\", not \"%s\"", type);
}

/* Read task t of "tasks" (element e): name, type, tower layers */
static void
ConfigTask(MmoeModel *m, int t, JsonbValue *e)
{
	static const char *const task_keys[] = {"name", "type", "tower", NULL};
	MmoeTask   *task = &m->tasks[t];
	char	   *path = psprintf("tasks[%d]", t);
	JsonbContainer *obj = ConfigObject(e, path);
	JsonbValue	v;
	char	   *type;
	int		   *tower = NULL;
	int			prev;

	ConfigCheckKeys(obj, path, task_keys);
	ConfigRequire(obj, "name", psprintf("%s.name", path), &v);
	task->name = ConfigString(&v, psprintf("%s.name", path), MMOE_MAX_NAME);
	for (int j = 0; j < t; j++)
		if (strcmp(m->tasks[j].name, task->name) == 0)
			ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
						"mmoe config: task name \"%s\" appears twice", task->name);
	ConfigRequire(obj, "type", psprintf("%s.type", path), &v);
	type = ConfigString(&v, psprintf("%s.type", path), 64);
	if (strcmp(type, "binary") == 0)
		task->type = MMOE_BINARY;
	else if (strcmp(type, "regression") == 0)
		task->type = MMOE_REGRESSION;
	else
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s.type\" must be \"binary\" or \"regression\", not \"%s\"",
					path, type);
	task->nhidden = 0;
	if (ConfigGet(obj, "tower", &v))
		tower = ConfigWidths(&v, psprintf("%s.tower", path), 0, &task->nhidden);
	InitLayer(&task->gate, m->in_width, m->nexperts);
	task->tower = palloc0(sizeof(MmoeLayer) * (task->nhidden + 1));
	task->dropout_site = palloc(sizeof(int) * Max(task->nhidden, 1));
	prev = m->expert_out;
	for (int l = 0; l < task->nhidden; l++)
	{
		InitLayer(&task->tower[l], prev, tower[l]);
		prev = tower[l];
		m->max_width = Max(m->max_width, tower[l]);
	}
	InitLayer(&task->tower[task->nhidden], prev, 1);
}

/* Read "tasks"; their towers' dropout units come after site, the experts' units */
static void
ConfigTasks(MmoeModel *m, JsonbContainer *root, int site)
{
	JsonbContainer *arr;
	JsonbValue	v;
	int			n;

	ConfigRequire(root, "tasks", "tasks", &v);
	arr = ConfigArray(&v, "tasks", &n);
	if (n < 1)
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"tasks\" must have at least 1 task");
	if (n > MMOE_MAX_TASKS)
		ConfigError(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
					"mmoe config: \"tasks\" has %d tasks, more than %d", n, MMOE_MAX_TASKS);
	m->ntasks = n;
	m->tasks = palloc0(sizeof(MmoeTask) * n);
	for (int t = 0; t < n; t++)
		ConfigTask(m, t, getIthJsonbValueFromContainer(arr, t));
	/* tower dropout units come after all expert units */
	for (int t = 0; t < m->ntasks; t++)
		for (int l = 0; l < m->tasks[t].nhidden; l++)
		{
			m->tasks[t].dropout_site[l] = site;
			site += m->tasks[t].tower[l].out;
		}
	m->dropout_units = site;
}

/* Read the optional parts: "latent_cross", "shallow_tower", "dropout" */
static void
ConfigExtras(MmoeModel *m, JsonbContainer *root)
{
	static const char *const cross_keys[] = {"context_dim", NULL};
	static const char *const shallow_keys[] = {"position_buckets", NULL};
	JsonbContainer *obj;
	JsonbValue	v;

	if (ConfigGet(root, "latent_cross", &v))
	{
		obj = ConfigObject(&v, "latent_cross");
		ConfigCheckKeys(obj, "latent_cross", cross_keys);
		ConfigRequire(obj, "context_dim", "latent_cross.context_dim", &v);
		m->context_dim = ConfigInt(&v, "latent_cross.context_dim", 1, recsys_max_dim);
		InitLayer(&m->latent, m->context_dim, m->expert_out);
	}
	if (ConfigGet(root, "shallow_tower", &v))
	{
		obj = ConfigObject(&v, "shallow_tower");
		ConfigCheckKeys(obj, "shallow_tower", shallow_keys);
		ConfigRequire(obj, "position_buckets", "shallow_tower.position_buckets", &v);
		m->positions = ConfigInt(&v, "shallow_tower.position_buckets", 1, MMOE_MAX_POSITIONS);
	}
	if (ConfigGet(root, "dropout", &v))
	{
		double		r;

		if (v.type != jbvNumeric)
			ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
						"mmoe config: \"dropout\" must be a number");
		r = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v.val.numeric)));
		if (!(r >= 0.0 && r < 1.0))
			ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
						"mmoe config: \"dropout\" must be in [0, 1)");
		m->dropout = r;
	}
}

/* Build a model skeleton (sizes, no weights) from a config, checking it all */
MmoeModel *
MmoeConfigToModel(Jsonb *config)
{
	return MmoeConfigToSkeleton(config, false);
}

/*
 * Build a model skeleton from a config; with allow_unfitted, a "features"
 * spec that was not fitted yet gives placeholder input sizes (train_mmoe
 * rebuilds the model after fitting).  The parts are read in a fixed order, so
 * that a config with several faults always reports the same one.
 */
MmoeModel *
MmoeConfigToSkeleton(Jsonb *config, bool allow_unfitted)
{
	static const char *const top_keys[] = {"kind", "input_dim", "experts", "gate", "tasks",
		"categorical", "latent_cross", "shallow_tower", "dropout", "features", NULL};
	MmoeModel  *m = palloc0(sizeof(MmoeModel));
	JsonbContainer *root;
	JsonbValue	v;
	int		   *hidden;
	int			site;
	int64		width;

	if (!JB_ROOT_IS_OBJECT(config) || JB_ROOT_IS_SCALAR(config))
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE, "mmoe config must be a JSON object");
	root = &config->root;
	ConfigCheckKeys(root, "", top_keys);

	ConfigRequire(root, "kind", "kind", &v);
	if (v.type != jbvString || v.val.string.len != 4 || memcmp(v.val.string.val, "mmoe", 4) != 0)
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"kind\" must be \"mmoe\"");

	width = ConfigInputs(m, root, allow_unfitted);
	hidden = ConfigExperts(m, root);
	/* categorical features widen the input */
	if (m->features == NULL)
	{
		width = ConfigCategorical(m, root, width);
		m->bag_offset = (int) width;
	}
	if (width > recsys_max_dim)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("mmoe config: input width " INT64_FORMAT " (input_dim plus embedding dims) is more than recsys.max_dim (%d)",
						width, recsys_max_dim)));
	m->in_width = (int) width;

	site = ExpertLayers(m, hidden);
	ConfigGate(m, root);
	ConfigTasks(m, root, site);
	ConfigExtras(m, root);
	return m;
}
