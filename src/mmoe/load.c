/*
 * mmoe/load.c
 *		Bind the tensors of a safetensors file to an MMoE model skeleton
 *		(names, shapes, dtypes, finite values; nothing missing, nothing
 *		extra), and the model store's loader for rows of kind mmoe.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "mmoe/load.h"
#include "store/lookup_memory.h"
#include "mmoe/mmoe.h"
#include "store/model_kind.h"
#include "store/safetensors.h"

/* One tensor the config asks for */
typedef struct ExpectedTensor
{
	char	   *name;
	int			ndim;
	int64		dims[2];
	float	  **dest;			/* where to keep the floats; NULL = check only */
	bool		optional;
	bool		lookup;			/* an embedding table: rows read at random */
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
	e->lookup = false;
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
			 err->detail[0] ? errdetail("%s", err->detail) : 0,
			 err->hint[0] ? errhint("%s", err->hint) : 0));
}

/*
 * Check every tensor of file against the model's config (names, shapes,
 * dtypes, finite values; nothing missing, nothing extra) and keep the
 * weights as float32 in the model.
 */
void
MmoeLoadTensors(MmoeModel *m, const SafetensorsFile *file)
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
	{
		Expect(&list, psprintf("embeddings.%s.weight", m->categorical[c].name), 2,
			   m->categorical[c].vocab, m->categorical[c].dim, &m->categorical[c].table, false);
		list.items[list.n - 1].lookup = true;
	}
	for (int c = 0; c < m->nbags; c++)
	{
		Expect(&list, psprintf("embeddings.%s.weight", m->bags[c].name), 2,
			   m->bags[c].vocab, m->bags[c].dim, &m->bags[c].table, false);
		list.items[list.n - 1].lookup = true;
	}
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
		/* an embedding table kept is a lookup table (huge pages), never freed on its own */
		out = e->lookup && e->dest
			? LookupTableAlloc(CurrentMemoryContext, sizeof(float) * Max(t->nelem, 1))
			: MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * Max(t->nelem, 1));
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
void
MmoeParseFile(const unsigned char *data, uint64 len, SafetensorsFile *file)
{
	SafetensorsError err;

	if (!SafetensorsParse(data, len, file, &err))
		ReportSafetensorsError(&err);
}

/* Stack the first expert layers and the gates into one matrix (see mmoe_model.h) */
static void
FuseFirstLayers(MmoeModel *m)
{
	int			rows = MmoeFusedRows(m);
	float	   *w = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * rows * m->in_width);
	float	   *b = palloc(sizeof(float) * rows);
	float	  **old = palloc(sizeof(float *) * 2 * (m->nexperts + m->ntasks));
	int			n = 0;

	for (int i = 0; i < m->nexperts; i++)
	{
		old[n++] = m->experts[i * m->nlayers].w;
		old[n++] = m->experts[i * m->nlayers].b;
	}
	for (int t = 0; t < m->ntasks; t++)
	{
		old[n++] = m->tasks[t].gate.w;
		old[n++] = m->tasks[t].gate.b;
	}
	MmoeFuseFirstLayers(m, w, b);
	for (int i = 0; i < n; i++)
		pfree(old[i]);
	pfree(old);
}

/*
 * Build a model from its config and safetensors bytes, checking both; the
 * model is allocated in CurrentMemoryContext.
 */
MmoeModel *
MmoeModelLoad(Jsonb *config, const unsigned char *data, uint64 len)
{
	MmoeModel  *m = MmoeConfigToModel(config);
	SafetensorsFile file;

	MmoeParseFile(data, len, &file);
	MmoeLoadTensors(m, &file);
	SafetensorsFree(&file);
	FuseFirstLayers(m);
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

/* Get scratch buffers for passes of up to maxrows rows (fewer if huge), in CurrentMemoryContext */
MmoeScratch *
MmoeScratchCreate(const MmoeModel *m, int maxrows)
{
	MmoeScratch *s = palloc(sizeof(MmoeScratch));
	int			rows = MmoeScratchRows(m, maxrows);

	MmoeScratchInit(m, rows, palloc(MmoeScratchBytes(m, rows)), s);
	return s;
}
