/*
 * mmoe.c
 *		MMoE models: config validation, tensor checks against the config,
 *		the float32 forward pass (per row and batched), gate weights and MC
 *		dropout, and the SQL functions that score rows with stored models.
 *
 * Forward pass for task t (algorithms.md sections 3, 5 and 6):
 *	z = [features, embedding of each categorical id in config order]
 *	E_i = expert_i(z)						every expert layer followed by ReLU
 *	g = softmax(gates.t(z))					noisy_top_k: softmax over the top k
 *											logits, zeros elsewhere, no noise
 *	h = sum_i g_i E_i
 *	h = (1 + latent_cross(context)) * h		with a latent cross
 *	logit = tower_t(h) + shallow.position[position, t]  (row P when missing)
 *	output = sigmoid(logit) (binary) or logit (regression)
 *
 * MC dropout (predict_mc) masks every hidden unit after its activation
 * (expert layers and hidden tower layers) with inverted dropout.  Masks come
 * from a counter-based generator so they do not depend on batching and can
 * be reproduced outside the database: unit u of sample s is kept when
 * MmoeDropoutUniform(seed, s * U + u) >= rate, U being the number of hidden
 * units, numbered experts first (expert, layer, unit), then the hidden tower
 * layers (task, layer, unit).
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "arrays.h"
#include "linalg.h"
#include "mmoe.h"
#include "model_store.h"
#include "recsys.h"
#include "rng.h"
#include "safetensors.h"

/* ---------------------------------------------------------------------
 * Config
 * ---------------------------------------------------------------------
 */

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

/* Get an integer in [min, max], or raise an error naming path */
static int
ConfigInt(const JsonbValue *v, const char *path, int64 min, int64 max)
{
	char	   *s;
	char	   *p;
	int64		x = 0;
	bool		neg = false;

	if (v->type != jbvNumeric)
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" must be an integer", path);
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	p = s;
	if (*p == '-')
	{
		neg = true;
		p++;
	}
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p))
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" must be an integer, not %s", path, s);
	if (strlen(p) > 12)
		x = PG_INT64_MAX / 2;
	else
		x = strtoll(p, NULL, 10);
	if (neg)
		x = -x;
	if (x < min)
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"%s\" must be at least " INT64_FORMAT ", not %s", path, min, s);
	if (x > max)
		ConfigError(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
					"mmoe config: \"%s\" is %s, more than the limit " INT64_FORMAT, path, s, max);
	return (int) x;
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

/* Build a model skeleton (sizes, no weights) from a config, checking it all */
static MmoeModel *
ConfigToModel(Jsonb *config)
{
	static const char *const top_keys[] = {"kind", "input_dim", "experts", "gate", "tasks",
		"categorical", "latent_cross", "shallow_tower", "dropout", NULL};
	static const char *const expert_keys[] = {"count", "hidden", "activation", NULL};
	static const char *const gate_keys[] = {"type", "k", NULL};
	static const char *const task_keys[] = {"name", "type", "tower", NULL};
	static const char *const cat_keys[] = {"name", "vocab", "dim", NULL};
	static const char *const cross_keys[] = {"context_dim", NULL};
	static const char *const shallow_keys[] = {"position_buckets", NULL};
	MmoeModel  *m = palloc0(sizeof(MmoeModel));
	JsonbContainer *root;
	JsonbContainer *obj;
	JsonbContainer *arr;
	JsonbValue	v;
	int		   *hidden;
	int			n;
	int			site = 0;
	int64		width;

	if (!JB_ROOT_IS_OBJECT(config) || JB_ROOT_IS_SCALAR(config))
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE, "mmoe config must be a JSON object");
	root = &config->root;
	ConfigCheckKeys(root, "", top_keys);

	ConfigRequire(root, "kind", "kind", &v);
	if (v.type != jbvString || v.val.string.len != 4 || memcmp(v.val.string.val, "mmoe", 4) != 0)
		ConfigError(ERRCODE_INVALID_PARAMETER_VALUE,
					"mmoe config: \"kind\" must be \"mmoe\"");

	ConfigRequire(root, "input_dim", "input_dim", &v);
	m->input_dim = ConfigInt(&v, "input_dim", 1, recsys_max_dim);

	/* experts */
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

	/* categorical features widen the input */
	width = m->input_dim;
	if (ConfigGet(root, "categorical", &v))
	{
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

			obj = ConfigObject(e, path);
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
	}
	if (width > recsys_max_dim)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("mmoe config: input width " INT64_FORMAT " (input_dim plus embedding dims) is more than recsys.max_dim (%d)",
						width, recsys_max_dim)));
	m->in_width = (int) width;

	/* expert layers */
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

	/* gate */
	m->gate = MMOE_GATE_SOFTMAX;
	if (ConfigGet(root, "gate", &v))
	{
		char	   *type;

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

	/* tasks */
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
	{
		MmoeTask   *task = &m->tasks[t];
		char	   *path = psprintf("tasks[%d]", t);
		JsonbValue *e = getIthJsonbValueFromContainer(arr, t);
		char	   *type;
		int		   *tower = NULL;
		int			prev;

		obj = ConfigObject(e, path);
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
	/* tower dropout units come after all expert units */
	for (int t = 0; t < m->ntasks; t++)
		for (int l = 0; l < m->tasks[t].nhidden; l++)
		{
			m->tasks[t].dropout_site[l] = site;
			site += m->tasks[t].tower[l].out;
		}
	m->dropout_units = site;

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
	return m;
}

/* ---------------------------------------------------------------------
 * Tensors
 * ---------------------------------------------------------------------
 */

/* One tensor the config asks for */
typedef struct ExpectedTensor
{
	char	   *name;
	int			ndim;
	int64		dims[2];
	float	  **dest;			/* where to keep the floats; NULL = check only */
	bool		optional;
} ExpectedTensor;

typedef struct ExpectedList
{
	ExpectedTensor *items;
	int			n;
	int			cap;
} ExpectedList;

/* Add a tensor to the expected list */
static void
Expect(ExpectedList *list, char *name, int ndim, int64 d0, int64 d1, float **dest, bool optional)
{
	ExpectedTensor *e;

	if (list->n == list->cap)
	{
		list->cap = list->cap ? list->cap * 2 : 64;
		list->items = list->items ? repalloc(list->items, sizeof(ExpectedTensor) * list->cap)
			: palloc(sizeof(ExpectedTensor) * list->cap);
	}
	e = &list->items[list->n++];
	e->name = name;
	e->ndim = ndim;
	e->dims[0] = d0;
	e->dims[1] = d1;
	e->dest = dest;
	e->optional = optional;
}

/* Add the weight and bias of a linear layer */
static void
ExpectLinear(ExpectedList *list, const char *prefix, MmoeLayer *l)
{
	Expect(list, psprintf("%s.weight", prefix), 2, l->out, l->in, &l->w, false);
	Expect(list, psprintf("%s.bias", prefix), 1, l->out, 0, &l->b, false);
}

/* Order expected tensors by name */
static int
CompareExpected(const void *a, const void *b)
{
	return strcmp(((const ExpectedTensor *) a)->name, ((const ExpectedTensor *) b)->name);
}

/* Tell whether a sorted expected list has a tensor of that name */
static bool
IsExpected(const ExpectedList *list, const char *name)
{
	ExpectedTensor key;

	key.name = (char *) name;
	return bsearch(&key, list->items, list->n, sizeof(ExpectedTensor), CompareExpected) != NULL;
}

/* Format a tensor shape as [a, b, ...] */
static char *
ShapeString(int ndim, const uint64 *shape)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '[');
	for (int i = 0; i < ndim; i++)
		appendStringInfo(&s, "%s" UINT64_FORMAT, i ? ", " : "", shape[i]);
	appendStringInfoChar(&s, ']');
	return s.data;
}

/* Raise the error for a file the safetensors parser rejected */
static void
ReportSafetensorsError(const SafetensorsError *err)
{
	ereport(ERROR,
			(errcode(err->status == ST_TOO_LARGE ? ERRCODE_PROGRAM_LIMIT_EXCEEDED
					 : ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("%s", err->message),
			 err->detail[0] ? errdetail("%s", err->detail) : 0));
}

/*
 * Check every tensor of file against the model's config (names, shapes,
 * dtypes, finite values; nothing missing, nothing extra) and keep the
 * weights as float32 in the model.
 */
static void
LoadTensors(MmoeModel *m, const SafetensorsFile *file)
{
	ExpectedList list = {0};
	bool	   *used = palloc0(sizeof(bool) * Max(file->ntensors, 1));
	int			j;

	for (int i = 0; i < m->nexperts; i++)
		for (int l = 0; l < m->nlayers; l++)
			ExpectLinear(&list, psprintf("experts.%d.%d", i, l), &m->experts[i * m->nlayers + l]);
	for (int t = 0; t < m->ntasks; t++)
	{
		MmoeTask   *task = &m->tasks[t];

		ExpectLinear(&list, psprintf("gates.%d", t), &task->gate);
		if (m->gate == MMOE_GATE_NOISY_TOP_K)
			Expect(&list, psprintf("gates.%d.noise.weight", t), 2, m->nexperts, m->in_width,
				   NULL, true);
		for (int l = 0; l <= task->nhidden; l++)
			ExpectLinear(&list, psprintf("towers.%d.%d", t, l), &task->tower[l]);
	}
	for (int c = 0; c < m->ncategorical; c++)
		Expect(&list, psprintf("embeddings.%s.weight", m->categorical[c].name), 2,
			   m->categorical[c].vocab, m->categorical[c].dim, &m->categorical[c].table, false);
	if (m->context_dim > 0)
		ExpectLinear(&list, "latent_cross", &m->latent);
	if (m->positions > 0)
		Expect(&list, pstrdup("shallow.position.weight"), 2, (int64) m->positions + 1,
			   m->ntasks, &m->shallow, false);

	/* Match the sorted expected names against the sorted file */
	qsort(list.items, list.n, sizeof(ExpectedTensor), CompareExpected);
	j = 0;
	for (int i = 0; i < list.n; i++)
	{
		const SafetensorsTensor *t = SafetensorsFind(file, list.items[i].name);

		if (t)
			used[t - file->tensors] = true;
		else if (!list.items[i].optional)
		{
			/* point at a tensor the file has instead, which is often the cause */
			const char *extra = NULL;
			char		shown[80];

			for (j = 0; j < file->ntensors && extra == NULL; j++)
				if (!IsExpected(&list, file->tensors[j].name))
					extra = file->tensors[j].name;
			if (extra)
				SafetensorsPrintable(extra, shown, sizeof(shown));
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("missing tensor \"%s\"", list.items[i].name),
					 extra ? errdetail("The file has tensor \"%s\", which the config does not ask for.", shown) : 0,
					 errhint("Tensor names follow the config: experts.{i}.{layer}, gates.{task}, towers.{task}.{layer}, embeddings.{name}, latent_cross, shallow.position.")));
		}
	}
	for (j = 0; j < file->ntensors; j++)
		if (!used[j])
		{
			char		shown[80];

			SafetensorsPrintable(file->tensors[j].name, shown, sizeof(shown));
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("unexpected tensor \"%s\"", shown),
					 errdetail("The config does not ask for this tensor.")));
		}

	/* Shapes, dtypes and values */
	for (int i = 0; i < list.n; i++)
	{
		ExpectedTensor *e = &list.items[i];
		const SafetensorsTensor *t = SafetensorsFind(file, e->name);
		uint64		want[2] = {(uint64) e->dims[0], (uint64) e->dims[1]};
		float	   *out;

		if (t == NULL)
			continue;
		CHECK_FOR_INTERRUPTS();
		if (!SafetensorsDtypeIsFloat(t->dtype))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("tensor \"%s\" has dtype %s; expected F32, F64, F16 or BF16",
							e->name, SafetensorsDtypeName(t->dtype))));
		if (t->ndim != e->ndim || t->shape[0] != want[0] || (e->ndim == 2 && t->shape[1] != want[1]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("tensor \"%s\" has shape %s; the config needs %s",
							e->name, ShapeString(t->ndim, t->shape), ShapeString(e->ndim, want))));
		out = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * Max(t->nelem, 1));
		if (SafetensorsToFloats(file, t, out) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("tensor \"%s\" has NaN or infinite values (as float32)", e->name)));
		if (e->dest)
			*e->dest = out;
		else
			pfree(out);
	}
	for (int i = 0; i < list.n; i++)
		pfree(list.items[i].name);
	if (list.items)
		pfree(list.items);
	pfree(used);
}

/* Parse a safetensors file, raising the error it has if any */
static void
ParseFile(const unsigned char *data, uint64 len, SafetensorsFile *file)
{
	SafetensorsError err;

	if (!SafetensorsParse(data, len, file, &err))
		ReportSafetensorsError(&err);
}

/*
 * Build a model from its config and safetensors bytes, checking both; the
 * model is allocated in CurrentMemoryContext.
 */
MmoeModel *
MmoeModelLoad(Jsonb *config, const unsigned char *data, uint64 len)
{
	MmoeModel  *m = ConfigToModel(config);
	SafetensorsFile file;

	ParseFile(data, len, &file);
	LoadTensors(m, &file);
	SafetensorsFree(&file);
	return m;
}

/* Load a models row of kind mmoe (the model store's loader) */
static void *
MmoeStoreLoad(const ModelStoreRow *row)
{
	if (row->weights == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model \"%s\" version %d has no weights", row->name, row->version)));
	return MmoeModelLoad(row->config, (const unsigned char *) VARDATA_ANY(row->weights),
						 VARSIZE_ANY_EXHDR(row->weights));
}

const ModelKind MmoeModelKind = {"mmoe", MmoeStoreLoad, NULL};

/* ---------------------------------------------------------------------
 * Forward pass
 * ---------------------------------------------------------------------
 */

/* Get scratch buffers for passes of up to maxrows rows (fewer if huge) */
MmoeScratch *
MmoeScratchCreate(const MmoeModel *m, int maxrows)
{
	MmoeScratch *s = palloc0(sizeof(MmoeScratch));
	Size		per_row;

	/* floats per row across all buffers; keep the whole under 64 MB */
	per_row = (Size) m->in_width + 2 * (Size) m->max_width +
		(Size) m->nexperts * m->expert_out + m->nexperts + 2 * (Size) m->expert_out +
		m->context_dim + 1 + m->ncategorical + 1;
	maxrows = Max(1, Min(maxrows, (int) ((64 * 1024 * 1024) / (per_row * sizeof(float)))));
	s->maxrows = maxrows;
	s->x = palloc(sizeof(float) * maxrows * m->in_width);
	s->buf_a = palloc(sizeof(float) * maxrows * m->max_width);
	s->buf_b = palloc(sizeof(float) * maxrows * m->max_width);
	s->experts = palloc(sizeof(float) * maxrows * m->nexperts * m->expert_out);
	s->gates = palloc(sizeof(float) * maxrows * m->nexperts);
	s->mix = palloc(sizeof(float) * maxrows * m->expert_out);
	s->cross = palloc(sizeof(float) * maxrows * m->expert_out);
	s->context = palloc(sizeof(float) * maxrows * Max(m->context_dim, 1));
	s->tower_out = palloc(sizeof(float) * maxrows);
	s->ids = palloc(sizeof(int32) * maxrows * Max(m->ncategorical, 1));
	s->position = palloc(sizeof(int32) * maxrows);
	return s;
}

/* Compute y = x W^T + b for rows of x (BLAS sgemv for one row, sgemm for more) */
static void
Dense(int rows, const MmoeLayer *l, const float *x, float *y)
{
	for (int r = 0; r < rows; r++)
		memcpy(y + (size_t) r * l->out, l->b, sizeof(float) * l->out);
	if (rows == 1)
		LinalgSgemv(l->out, l->in, 1.0f, l->w, x, 1.0f, y);
	else
		LinalgSgemm(rows, l->out, l->in, 1.0f, x, 0, l->w, 1, 1.0f, y);
}

/*
 * Apply ReLU in place.  Clearing the bits of values whose sign bit is set is
 * branch-free (a compare-and-select on floats compiles to a branch that
 * mispredicts on half the units), and blocks of 8 let gcc -O2 vectorize.
 */
static void
Relu(float *y, size_t n)
{
	uint32	   *u = (uint32 *) y;
	size_t		i = 0;

	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			u[i + k] &= ~(uint32) ((int32) u[i + k] >> 31);
	for (; i < n; i++)
		u[i] &= ~(uint32) ((int32) u[i] >> 31);
}

/* Compute y += a x, in blocks of 8 that gcc -O2 vectorizes */
static void
AddScaled(size_t n, float a, const float *restrict x, float *restrict y)
{
	size_t		j = 0;

	for (; j + 8 <= n; j += 8)
		for (size_t k = 0; k < 8; k++)
			y[j + k] += a * x[j + k];
	for (; j < n; j++)
		y[j] += a * x[j];
}

/*
 * Get the uniform [0, 1) draw number n of the stream seeded by seed: the
 * n-th output of SplitMix64, top 24 bits.
 */
double
MmoeDropoutUniform(uint64 seed, uint64 n)
{
	return (double) (RngHash64(seed + n * RNG_GOLDEN) >> 40) * (1.0 / 16777216.0);
}

/* Apply inverted dropout to rows x width activations whose first unit is site */
static void
Dropout(const MmoeModel *m, const MmoeDropout *d, float *y, int rows, int width, int site)
{
	float		scale;

	if (d == NULL || d->rate <= 0.0)
		return;
	scale = (float) (1.0 / (1.0 - d->rate));
	for (int r = 0; r < rows; r++)
	{
		uint64		base = (uint64) (d->first_sample + r) * (uint64) m->dropout_units + site;

		for (int j = 0; j < width; j++)
		{
			float	   *v = &y[(size_t) r * width + j];

			*v = MmoeDropoutUniform(d->seed, base + j) >= d->rate ? *v * scale : 0.0f;
		}
	}
}

/* Write the embeddings of each row's categorical ids after its dense features */
static void
FillEmbeddings(const MmoeModel *m, MmoeScratch *s, int rows)
{
	for (int r = 0; r < rows; r++)
	{
		float	   *x = s->x + (size_t) r * m->in_width + m->input_dim;

		for (int c = 0; c < m->ncategorical; c++)
		{
			const MmoeCategorical *cat = &m->categorical[c];
			int32		id = s->ids[r * m->ncategorical + c];

			memcpy(x, cat->table + (size_t) id * cat->dim, sizeof(float) * cat->dim);
			x += cat->dim;
		}
	}
}

/* Turn one row of gate logits into weights (softmax, or softmax over the top k) */
static void
GateWeights(const MmoeModel *m, float *g)
{
	int			n = m->nexperts;
	double		mx = -DBL_MAX;
	double		sum = 0.0;
	bool		keep[MMOE_MAX_EXPERTS];

	if (m->gate == MMOE_GATE_NOISY_TOP_K && m->top_k < n)
	{
		/* top k by value, ties to the lower index */
		memset(keep, 0, sizeof(bool) * n);
		for (int k = 0; k < m->top_k; k++)
		{
			int			best = -1;

			for (int i = 0; i < n; i++)
				if (!keep[i] && (best < 0 || g[i] > g[best]))
					best = i;
			keep[best] = true;
		}
	}
	else
		memset(keep, 1, sizeof(bool) * n);
	for (int i = 0; i < n; i++)
		if (keep[i] && g[i] > mx)
			mx = g[i];
	for (int i = 0; i < n; i++)
		if (keep[i])
			sum += exp((double) g[i] - mx);
	for (int i = 0; i < n; i++)
		g[i] = keep[i] ? (float) (exp((double) g[i] - mx) / sum) : 0.0f;
}

/* Compute the gate weights of task t for rows whose input x is ready */
static void
ComputeGates(const MmoeModel *m, MmoeScratch *s, int rows, int t)
{
	Dense(rows, &m->tasks[t].gate, s->x, s->gates);
	for (int r = 0; r < rows; r++)
		GateWeights(m, s->gates + (size_t) r * m->nexperts);
}

/*
 * Score rows 0..rows-1 of the scratch inputs (features in x, ids, context,
 * position) into out[rows, ntasks]; dropout is NULL except for MC dropout.
 */
void
MmoeForward(const MmoeModel *m, MmoeScratch *s, int rows, const MmoeDropout *dropout,
			float *out)
{
	int			h = m->expert_out;
	size_t		hn = (size_t) rows * h;

	Assert(rows <= s->maxrows);
	FillEmbeddings(m, s, rows);

	/* experts */
	for (int i = 0; i < m->nexperts; i++)
	{
		const float *src = s->x;

		for (int l = 0; l < m->nlayers; l++)
		{
			const MmoeLayer *layer = &m->experts[i * m->nlayers + l];
			float	   *dst = l == m->nlayers - 1 ? s->experts + (size_t) i * rows * h
				: (l % 2 == 0 ? s->buf_a : s->buf_b);

			Dense(rows, layer, src, dst);
			Relu(dst, (size_t) rows * layer->out);
			Dropout(m, dropout, dst, rows, layer->out, m->expert_site[i * m->nlayers + l]);
			src = dst;
		}
	}

	/* latent cross factors 1 + W c + b, shared by the tasks */
	if (m->context_dim > 0)
	{
		Dense(rows, &m->latent, s->context, s->cross);
		for (size_t j = 0; j < hn; j++)
			s->cross[j] += 1.0f;
	}

	for (int t = 0; t < m->ntasks; t++)
	{
		const MmoeTask *task = &m->tasks[t];
		const float *src;

		ComputeGates(m, s, rows, t);

		/* mixture of experts */
		memset(s->mix, 0, sizeof(float) * hn);
		for (int r = 0; r < rows; r++)
		{
			float	   *mix = s->mix + (size_t) r * h;

			for (int i = 0; i < m->nexperts; i++)
			{
				float		g = s->gates[(size_t) r * m->nexperts + i];
				const float *e = s->experts + ((size_t) i * rows + r) * h;

				if (g != 0.0f)
					AddScaled(h, g, e, mix);
			}
		}
		if (m->context_dim > 0)
			for (size_t j = 0; j < hn; j++)
				s->mix[j] *= s->cross[j];

		/* tower */
		src = s->mix;
		for (int l = 0; l < task->nhidden; l++)
		{
			float	   *dst = l % 2 == 0 ? s->buf_a : s->buf_b;

			Dense(rows, &task->tower[l], src, dst);
			Relu(dst, (size_t) rows * task->tower[l].out);
			Dropout(m, dropout, dst, rows, task->tower[l].out, task->dropout_site[l]);
			src = dst;
		}
		Dense(rows, &task->tower[task->nhidden], src, s->tower_out);

		for (int r = 0; r < rows; r++)
		{
			double		logit = s->tower_out[r];

			if (m->positions > 0)
			{
				int			p = s->position[r] < 0 ? m->positions : s->position[r];

				logit += m->shallow[(size_t) p * m->ntasks + t];
			}
			out[(size_t) r * m->ntasks + t] = task->type == MMOE_BINARY
				? (float) (1.0 / (1.0 + exp(-logit)))
				: (float) logit;
		}
	}
}

/* Compute the gate weights of task t into out[rows, nexperts] */
void
MmoeGateWeights(const MmoeModel *m, MmoeScratch *s, int rows, int task, float *out)
{
	FillEmbeddings(m, s, rows);
	ComputeGates(m, s, rows, task);
	memcpy(out, s->gates, sizeof(float) * rows * m->nexperts);
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/* What a scoring call keeps in fn_extra for the rest of the statement */
typedef struct MmoeCall
{
	ModelRef	ref;
	uint64		load_id;		/* model the scratch was made for */
	int			rows_asked;		/* rows the scratch was asked for */
	MemoryContext scratch_cxt;
	MmoeScratch *scratch;
} MmoeCall;

/*
 * Get the model named by argument 0 (version from argument version_arg,
 * NULL = newest) and scratch buffers for it, both kept across calls of the
 * statement.
 */
static const MmoeModel *
GetModel(FunctionCallInfo fcinfo, int version_arg, int maxrows, MmoeScratch **scratch,
		 uint64 *model_id)
{
	MmoeCall   *call = (MmoeCall *) fcinfo->flinfo->fn_extra;
	MemoryContext mcxt = fcinfo->flinfo->fn_mcxt;
	int			version = 0;
	const MmoeModel *m;
	uint64		load_id;

	if (call == NULL)
	{
		call = MemoryContextAllocZero(mcxt, sizeof(MmoeCall));
		fcinfo->flinfo->fn_extra = call;
	}
	if (!PG_ARGISNULL(version_arg))
	{
		version = PG_GETARG_INT32(version_arg);
		if (version < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("model version must be positive")));
	}
	m = ModelStoreAcquire(&call->ref, mcxt, &MmoeModelKind, PG_GETARG_TEXT_PP(0), version,
						  &load_id, NULL);
	if (call->scratch == NULL || call->load_id != load_id || call->rows_asked < maxrows)
	{
		MemoryContext old;

		if (call->scratch_cxt)
			MemoryContextDelete(call->scratch_cxt);
		call->scratch = NULL;
		call->scratch_cxt = AllocSetContextCreate(mcxt, "recsys mmoe scratch",
												  ALLOCSET_DEFAULT_SIZES);
		old = MemoryContextSwitchTo(call->scratch_cxt);
		call->scratch = MmoeScratchCreate(m, maxrows);
		MemoryContextSwitchTo(old);
		call->load_id = load_id;
		call->rows_asked = maxrows;
	}
	*scratch = call->scratch;
	if (model_id)
		*model_id = load_id;
	return m;
}

/* Get the index of a task by name, or raise an error */
static int
TaskIndex(const MmoeModel *m, text *task, text *model)
{
	char	   *name = text_to_cstring(task);

	for (int t = 0; t < m->ntasks; t++)
		if (strcmp(m->tasks[t].name, name) == 0)
			return t;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("model \"%s\" has no task \"%s\"", text_to_cstring(model), name)));
	return -1;
}

/* Check categorical ids against the vocabularies and store them for row r */
static void
SetIds(const MmoeModel *m, MmoeScratch *s, int r, const int32 *ids)
{
	for (int c = 0; c < m->ncategorical; c++)
	{
		if (ids[c] < 0 || ids[c] >= m->categorical[c].vocab)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("categorical id %d for \"%s\" is out of range [0, %d)",
							ids[c], m->categorical[c].name, m->categorical[c].vocab)));
		s->ids[r * m->ncategorical + c] = ids[c];
	}
}

/* Check a position (or NULL = missing) and store it for row r */
static void
SetPosition(const MmoeModel *m, MmoeScratch *s, int r, bool isnull, int32 pos)
{
	if (isnull)
	{
		s->position[r] = -1;
		return;
	}
	if (m->positions == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the model has no shallow tower, so position must be null")));
	if (pos < 0 || pos >= m->positions)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("position %d is out of range [0, %d)", pos, m->positions)));
	s->position[r] = pos;
}

/* Raise the error for a NULL optional input that the model needs */
static void
CheckNeeded(const MmoeModel *m, bool cat_null, bool ctx_null)
{
	if (cat_null && m->ncategorical > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the model has %d categorical feature(s), so categorical must not be null",
						m->ncategorical)));
	if (ctx_null && m->context_dim > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the model has a latent cross, so context must not be null")));
}

/*
 * Read one row's inputs from the arguments at the given positions (-1 when
 * the function has no such argument) into row r of the scratch.
 */
static void
ReadRow(FunctionCallInfo fcinfo, const MmoeModel *m, MmoeScratch *s, int r,
		int features_arg, int cat_arg, int ctx_arg, int pos_arg)
{
	ArrayType  *features = PG_GETARG_ARRAYTYPE_P(features_arg);
	bool		cat_null = cat_arg < 0 || PG_ARGISNULL(cat_arg);
	bool		ctx_null = ctx_arg < 0 || PG_ARGISNULL(ctx_arg);
	int			dim = VectorDim(features);

	if (dim != m->input_dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("features have %d elements, but the model takes %d", dim, m->input_dim)));
	VectorToFloats(features, s->x + (size_t) r * m->in_width);
	/* gate_weights has no context argument: gates do not use it */
	CheckNeeded(m, cat_null, ctx_arg >= 0 && ctx_null);
	if (!cat_null)
	{
		int			n;
		int32	   *ids = IntVectorGet(PG_GETARG_ARRAYTYPE_P(cat_arg), "categorical", &n);

		if (n != m->ncategorical)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("categorical has %d ids, but the model has %d categorical feature(s)",
							n, m->ncategorical)));
		SetIds(m, s, r, ids);
		pfree(ids);
	}
	if (!ctx_null)
	{
		ArrayType  *ctx = PG_GETARG_ARRAYTYPE_P(ctx_arg);

		if (m->context_dim == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the model has no latent cross, so context must be null")));
		dim = VectorDim(ctx);
		if (dim != m->context_dim)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("context has %d elements, but the model takes %d", dim, m->context_dim)));
		VectorToFloats(ctx, s->context + (size_t) r * m->context_dim);
	}
	if (pos_arg >= 0)
		SetPosition(m, s, r, PG_ARGISNULL(pos_arg), PG_ARGISNULL(pos_arg) ? 0 : PG_GETARG_INT32(pos_arg));
	else
		s->position[r] = -1;
}

/*
 * The last row predict scored in this backend.  A query that uses the
 * result several times, like the usual
 *	SELECT p[1] * 0.7 + p[2] * 0.3 FROM (SELECT recsys.predict(...) p ...) s
 * calls predict once per use after the planner flattens the subquery (each
 * use becomes its own call); those calls find the row here and skip the
 * forward pass.  Keyed by the parsed model and the exact inputs.
 */
static struct
{
	uint64		model_id;
	int			nkey;
	int			capacity;
	float	   *key;
	float	   *probe;
	float		out[MMOE_MAX_TASKS];
}			LastRow;

/* Score row 0 of the scratch, reusing the previous result for identical inputs */
static void
ScoreRow(const MmoeModel *m, MmoeScratch *s, uint64 model_id, float *out)
{
	int			nkey = m->input_dim + m->ncategorical + m->context_dim + 1;
	float	   *k;

	if (LastRow.capacity < nkey)
	{
		if (LastRow.key)
		{
			pfree(LastRow.key);
			pfree(LastRow.probe);
		}
		LastRow.model_id = 0;
		LastRow.key = MemoryContextAlloc(TopMemoryContext, sizeof(float) * nkey);
		LastRow.probe = MemoryContextAlloc(TopMemoryContext, sizeof(float) * nkey);
		LastRow.capacity = nkey;
	}
	k = LastRow.probe;
	memcpy(k, s->x, sizeof(float) * m->input_dim);
	k += m->input_dim;
	memcpy(k, s->ids, sizeof(int32) * m->ncategorical);
	k += m->ncategorical;
	memcpy(k, s->context, sizeof(float) * m->context_dim);
	k += m->context_dim;
	memcpy(k, &s->position[0], sizeof(int32));

	if (LastRow.model_id == model_id && LastRow.nkey == nkey &&
		memcmp(LastRow.probe, LastRow.key, sizeof(float) * nkey) == 0)
	{
		memcpy(out, LastRow.out, sizeof(float) * m->ntasks);
		return;
	}
	MmoeForward(m, s, 1, NULL, out);
	memcpy(LastRow.out, out, sizeof(float) * m->ntasks);
	k = LastRow.key;
	LastRow.key = LastRow.probe;
	LastRow.probe = k;
	LastRow.nkey = nkey;
	LastRow.model_id = model_id;
}

PG_FUNCTION_INFO_V1(mmoe_predict);
/* Score one row: one output per task, in config order */
Datum
mmoe_predict(PG_FUNCTION_ARGS)
{
	const MmoeModel *m;
	MmoeScratch *s;
	float		out[MMOE_MAX_TASKS];
	uint64		model_id;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	m = GetModel(fcinfo, 5, 1, &s, &model_id);
	ReadRow(fcinfo, m, s, 0, 1, 2, 3, 4);
	ScoreRow(m, s, model_id, out);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(out, m->ntasks));
}

PG_FUNCTION_INFO_V1(mmoe_predict_task);
/* Score one row for one task */
Datum
mmoe_predict_task(PG_FUNCTION_ARGS)
{
	const MmoeModel *m;
	MmoeScratch *s;
	float		out[MMOE_MAX_TASKS];
	int			t;
	uint64		model_id;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	m = GetModel(fcinfo, 6, 1, &s, &model_id);
	t = TaskIndex(m, PG_GETARG_TEXT_PP(2), PG_GETARG_TEXT_PP(0));
	ReadRow(fcinfo, m, s, 0, 1, 3, 4, 5);
	ScoreRow(m, s, model_id, out);
	PG_RETURN_FLOAT4(out[t]);
}

PG_FUNCTION_INFO_V1(mmoe_gate_weights);
/* Get the gate weights of one task for one row */
Datum
mmoe_gate_weights(PG_FUNCTION_ARGS)
{
	const MmoeModel *m;
	MmoeScratch *s;
	float	   *out;
	int			t;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	m = GetModel(fcinfo, 4, 1, &s, NULL);
	t = TaskIndex(m, PG_GETARG_TEXT_PP(2), PG_GETARG_TEXT_PP(0));
	ReadRow(fcinfo, m, s, 0, 1, 3, -1, -1);
	out = palloc(sizeof(float) * m->nexperts);
	MmoeGateWeights(m, s, 1, t, out);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(out, m->nexperts));
}

PG_FUNCTION_INFO_V1(mmoe_predict_mc);
/*
 * MC dropout for one row: mean and (population) variance of each task's
 * output over samples stochastic passes with the config's dropout rate.
 */
Datum
mmoe_predict_mc(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const MmoeModel *m;
	MmoeScratch *s;
	int			samples;
	MmoeDropout d;
	double		mean[MMOE_MAX_TASKS] = {0};
	double		m2[MMOE_MAX_TASKS] = {0};
	float	   *out;
	int			done = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		return (Datum) 0;
	samples = PG_GETARG_INT32(2);
	if (samples < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("samples must be at least 1")));
	if (samples > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("samples must be at most 100000")));
	m = GetModel(fcinfo, 7, Min(samples, MMOE_CHUNK_ROWS), &s, NULL);
	ReadRow(fcinfo, m, s, 0, 1, 4, 5, 6);

	/* every row of a pass is the same input under its own dropout mask */
	for (int r = 1; r < Min(samples, s->maxrows); r++)
	{
		memcpy(s->x + (size_t) r * m->in_width, s->x, sizeof(float) * m->input_dim);
		memcpy(s->ids + (size_t) r * m->ncategorical, s->ids, sizeof(int32) * m->ncategorical);
		memcpy(s->context + (size_t) r * m->context_dim, s->context, sizeof(float) * m->context_dim);
		s->position[r] = s->position[0];
	}
	d.rate = m->dropout;
	d.seed = (uint64) (int64) PG_GETARG_INT32(3);
	out = palloc(sizeof(float) * s->maxrows * m->ntasks);
	while (done < samples)
	{
		int			rows = Min(samples - done, s->maxrows);

		CHECK_FOR_INTERRUPTS();
		d.first_sample = done;
		MmoeForward(m, s, rows, &d, out);
		/* Welford's running mean and sum of squared deviations */
		for (int r = 0; r < rows; r++)
			for (int t = 0; t < m->ntasks; t++)
			{
				double		v = out[(size_t) r * m->ntasks + t];
				double		delta = v - mean[t];

				mean[t] += delta / (done + r + 1);
				m2[t] += delta * (v - mean[t]);
			}
		done += rows;
	}
	for (int t = 0; t < m->ntasks; t++)
	{
		Datum		values[3];
		bool		nulls[3] = {false};

		values[0] = CStringGetTextDatum(m->tasks[t].name);
		values[1] = Float4GetDatum((float) mean[t]);
		values[2] = Float4GetDatum((float) (m2[t] / samples));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(mmoe_predict_batch);
/*
 * Score a batch of rows given as 2-D arrays (one row per candidate) with
 * BLAS sgemm over chunks of rows: returns (row number, outputs per task).
 */
Datum
mmoe_predict_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const MmoeModel *m;
	MmoeScratch *s;
	ArrayType  *features;
	ArrayType  *context = NULL;
	const int32 *ids = NULL;
	int32	   *pos = NULL;
	bool	   *pos_null = NULL;
	int			rows;
	int			cols;
	float	   *out;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;
	features = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(features) == 0)
		return (Datum) 0;
	BatchDims(features, "features", &rows, &cols);
	if (rows == 0)
		return (Datum) 0;
	m = GetModel(fcinfo, 5, MMOE_CHUNK_ROWS, &s, NULL);
	if (cols != m->input_dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("features rows have %d elements, but the model takes %d", cols, m->input_dim)));
	CheckNeeded(m, PG_ARGISNULL(2), PG_ARGISNULL(3));
	if (!PG_ARGISNULL(2))
	{
		int			r2,
					c2;

		ids = IntMatrixData(PG_GETARG_ARRAYTYPE_P(2), "categorical", &r2, &c2);
		if (r2 != rows || c2 != m->ncategorical)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("categorical is %d x %d, but the batch needs %d x %d",
							r2, c2, rows, m->ncategorical)));
	}
	if (!PG_ARGISNULL(3))
	{
		int			r2,
					c2;

		if (m->context_dim == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the model has no latent cross, so context must be null")));
		context = PG_GETARG_ARRAYTYPE_P(3);
		BatchDims(context, "context", &r2, &c2);
		if (r2 != rows || c2 != m->context_dim)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("context is %d x %d, but the batch needs %d x %d",
							r2, c2, rows, m->context_dim)));
	}
	if (!PG_ARGISNULL(4))
	{
		int			n = IntVectorGetNullable(PG_GETARG_ARRAYTYPE_P(4), "positions", &pos, &pos_null);

		if (n != rows)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("positions has %d elements, but the batch has %d rows", n, rows)));
	}

	out = palloc(sizeof(float) * s->maxrows * m->ntasks);
	for (int first = 0; first < rows; first += s->maxrows)
	{
		int			n = Min(rows - first, s->maxrows);

		CHECK_FOR_INTERRUPTS();
		/* dense features land at the start of each row of x */
		if (m->in_width == m->input_dim)
			BatchRowsToFloats(features, first, n, s->x);
		else
		{
			BatchRowsToFloats(features, first, n, s->x);
			for (int r = n - 1; r >= 0; r--)
				memmove(s->x + (size_t) r * m->in_width, s->x + (size_t) r * m->input_dim,
						sizeof(float) * m->input_dim);
		}
		for (int r = 0; r < n; r++)
		{
			if (ids)
				SetIds(m, s, r, ids + (size_t) (first + r) * m->ncategorical);
			SetPosition(m, s, r, pos == NULL || pos_null[first + r], pos ? pos[first + r] : 0);
		}
		if (context)
			BatchRowsToFloats(context, first, n, s->context);
		MmoeForward(m, s, n, NULL, out);
		for (int r = 0; r < n; r++)
		{
			Datum		values[2];
			bool		nulls[2] = {false};

			values[0] = Int32GetDatum(first + r + 1);
			values[1] = PointerGetDatum(FloatsToArray(out + (size_t) r * m->ntasks, m->ntasks));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			pfree(DatumGetPointer(values[1]));
		}
	}
	return (Datum) 0;
}

/* Order C strings */
static int
CompareStrings(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

PG_FUNCTION_INFO_V1(mmoe_validate);
/*
 * Check a safetensors file against an MMoE config (the argument, else the
 * file's __metadata__.recsys) and get the config and the canonical file:
 * the same tensors, laid out as the reference writer does, with the config
 * in __metadata__.recsys (other metadata kept).
 */
Datum
mmoe_validate(PG_FUNCTION_ARGS)
{
	bytea	   *weights;
	Jsonb	   *config;
	SafetensorsFile file;
	MmoeModel  *m;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false};
	const char **keys;
	const char **vals;
	int			nmeta = 0;
	char	   *config_text;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("weights must not be null")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	weights = PG_GETARG_BYTEA_PP(0);
	ParseFile((const unsigned char *) VARDATA_ANY(weights), VARSIZE_ANY_EXHDR(weights), &file);
	if (!PG_ARGISNULL(1))
		config = PG_GETARG_JSONB_P(1);
	else
	{
		const char *meta = SafetensorsGetMeta(&file, "recsys");

		if (meta == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("no config given, and the file has no __metadata__ entry \"recsys\"")));
		config = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(meta)));
	}
	m = ConfigToModel(config);
	LoadTensors(m, &file);

	config_text = JsonbToCString(NULL, &config->root, VARSIZE(config));
	keys = palloc(sizeof(char *) * (file.nmeta + 1));
	vals = palloc(sizeof(char *) * (file.nmeta + 1));
	for (int i = 0; i < file.nmeta; i++)
		if (strcmp(file.meta_keys[i], "recsys") != 0)
			keys[nmeta++] = file.meta_keys[i];
	keys[nmeta++] = "recsys";
	qsort(keys, nmeta, sizeof(char *), CompareStrings);
	for (int i = 0; i < nmeta; i++)
		vals[i] = strcmp(keys[i], "recsys") == 0 ? config_text : SafetensorsGetMeta(&file, keys[i]);

	values[0] = JsonbPGetDatum(config);
	values[1] = PointerGetDatum(SafetensorsWrite(&file, nmeta, keys, vals));
	SafetensorsFree(&file);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
