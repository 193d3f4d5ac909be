/*
 * embeddings/serving.c
 *		SQL entry points that serve embeddings models: recommend,
 *		recommend_all, fold_in, recommend_for_items and
 *		recommend_all_for_items.
 *
 * Every entry point gets its model from the model store (one lookup per
 * statement, privileges checked per statement), scores users in blocks with
 * one sgemm per block (FoldInScoreBlock; a single user is a block of one, so
 * recommend and recommend_all give identical scores) and keeps a bounded
 * top-k per user (topk.h).  Memory is bounded by the block: a block holds at
 * most SERVE_BLOCK_BYTES of scores, users are read through SPI cursors in
 * blocks, and rows go to the result tuplestore (which spills to disk past
 * work_mem) as each block completes.
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "store/arrays.h"
#include "embeddings/kind.h"
#include "kernel/ease.h"
#include "kernel/foldin.h"
#include "kernel/parallel.h"
#include "settings.h"
#include "store/model_store.h"
#include "store/spi_safe.h"
#include "store/statement_notice.h"
#include "store/sql_version.h"
#include "kernel/topk.h"

/* Most bytes of scores (one group) and of top-k lists (one block) per thread */
#define SERVE_BLOCK_BYTES (8 * 1024 * 1024)
/* Users scored together by one thread (one gemm, then their top-k) */
#define SERVE_GROUP_USERS 64
/* Groups of a block per thread: threads start once per block */
#define SERVE_GROUPS_PER_THREAD 8
/* Rows fetched from a cursor at a time */
#define SERVE_FETCH_ROWS 4096
/* Largest k served */
#define SERVE_MAX_K 1000000

/*
 * Argument positions of the entry points.  The forms with exclusions
 * (exclude bigint[] or exclude regclass, a new C symbol each) take every
 * argument of the plain form, then exclude; NO_ARG marks an argument a form
 * lacks.
 */
#define NO_ARG (-1)

typedef struct RecommendArgs
{
	int			model,
				user,
				k,
				exclude_seen,
				version,
				exclude;
} RecommendArgs;
static const RecommendArgs RecommendPlain = {0, 1, 2, 3, 4, NO_ARG};
static const RecommendArgs RecommendExclude = {0, 1, 2, 3, 4, 5};

typedef struct AllArgs
{
	int			model,
				k,
				users,
				exclude_seen,
				version,
				exclude;
} AllArgs;
static const AllArgs AllPlain = {0, 1, 2, 3, 4, NO_ARG};
static const AllArgs AllExclude = {0, 1, 2, 3, 4, 5};

#define ARG_FOLD_MODEL 0
#define ARG_FOLD_ITEMS 1
#define ARG_FOLD_WEIGHTS 2
#define ARG_FOLD_VERSION 3

typedef struct ForItemsArgs
{
	int			model,
				items,
				k,
				weights,
				exclude_seen,
				version,
				exclude;
} ForItemsArgs;
static const ForItemsArgs ForItemsPlain = {0, 1, 2, 3, 4, 5, NO_ARG};
static const ForItemsArgs ForItemsExclude = {0, 1, 2, 3, 4, 5, 6};

typedef struct AllItemsArgs
{
	int			model,
				table,
				user_column,
				item_column,
				weight_column,
				k,
				exclude_seen,
				version,
				exclude;
} AllItemsArgs;
static const AllItemsArgs AllItemsPlain = {0, 1, 2, 3, 4, 5, 6, 7, NO_ARG};
static const AllItemsArgs AllItemsExclude = {0, 1, 2, 3, 4, 5, 6, 7, 8};

/* ---------------------------------------------------------------------
 * Arguments and the model
 * ---------------------------------------------------------------------
 */

/* Raise an error for a NULL argument that must not be NULL */
static void
CheckNotNull(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
}

/* Get k of a top-k entry point */
static int
GetK(FunctionCallInfo fcinfo, int argno)
{
	int32		k;

	CheckNotNull(fcinfo, argno, "k");
	k = PG_GETARG_INT32(argno);
	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be at least 1")));
	if (k > SERVE_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("k must be at most %d", SERVE_MAX_K)));
	return k;
}

/* Get a boolean argument that must not be NULL */
static bool
GetFlag(FunctionCallInfo fcinfo, int argno, const char *what)
{
	CheckNotNull(fcinfo, argno, what);
	return PG_GETARG_BOOL(argno);
}

/*
 * Get the embeddings model a call names (model and version arguments; NULL
 * version = serving, else newest), pinned for the statement through a ref in fn_extra.
 */
static const EmbeddingModel *
GetModel(FunctionCallInfo fcinfo, int model_arg, int version_arg)
{
	ModelRef   *ref = (ModelRef *) fcinfo->flinfo->fn_extra;
	int			version = 0;
	uint64		load_id;

	/* 0.1.0's recommend declared no version argument */
	RecsysRequireArgs(fcinfo, version_arg + 1, RECSYS_VERSION(0, 2, 0));
	CheckNotNull(fcinfo, model_arg, "model");
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
	return ModelStoreAcquire(ref, fcinfo->flinfo->fn_mcxt, &EmbeddingModelKind,
							 PG_GETARG_TEXT_PP(model_arg), version, &load_id, NULL);
}

/* ---------------------------------------------------------------------
 * Blocks of users: scores, exclusions, top-k, output
 * ---------------------------------------------------------------------
 */

/*
 * The users of one block and what scoring them gives.  A block has two: the
 * threads score one while the calling thread fills the other (and writes
 * the rows of the one scored before), so that reading users and writing
 * rows, which only the calling thread may do, overlap the scoring.
 */
typedef struct ServeSet
{
	int			n;				/* users held */
	int64	   *user_ids;
	float	   *users;			/* cap x dim */
	int		   *excl_start;		/* cap + 1 offsets into excl */
	int		   *excl;			/* item rows left out, per user */
	int			excl_n;
	int			excl_cap;
	TopKItem   *slots;			/* cap x k: each user's top k, best first */
	int		   *found;			/* cap: items in each user's top k */
	/* ease models: each user's item rows and confidences (scores x_u B) */
	int		   *in_start;		/* cap + 1 offsets into in_rows, in_conf */
	int		   *in_rows;
	float	   *in_conf;
	int			in_n;
	int			in_cap;
} ServeSet;

typedef struct ServeBlock
{
	const EmbeddingModel *m;
	int			k;				/* kept per user (<= items) */
	int			cap;			/* users per set */
	float	   *scores;			/* per thread: one group's scores (group x n_items) */
	int			workers;		/* threads that score a set */
	int			group;			/* users scored together (one gemm) */
	ServeSet	sets[2];
	ServeSet   *fill;			/* the set users are added to */
	ServeSet   *scoring;		/* the set being scored (loop begun), or NULL */
	ParallelLoop loop;			/* the loop scoring it */
	bool		with_user;		/* rows (user_id, item_id, score, rank) */
	ReturnSetInfo *rsinfo;
	struct Exclusions *ex;		/* the caller's exclusions, or NULL */
} ServeBlock;

/*
 * (user_id, item_id) pairs to leave out, read in user order through a
 * cursor alongside the users served (also in user order): memory holds one
 * fetch of pairs, whatever the relation's size.
 */
typedef struct ExcludeReader
{
	Portal		portal;
	SPITupleTable *batch;		/* the pairs fetched, NULL before the first */
	uint64		n;
	uint64		pos;
	bool		done;
} ExcludeReader;

/* What a call leaves out besides the users' seen items */
typedef struct Exclusions
{
	int		   *rows;			/* item rows every user leaves out (exclude bigint[]) */
	int			nrows;
	ExcludeReader *reader;		/* pairs of an exclude relation, or NULL */
} Exclusions;

/* Allocate one set of a block */
static void
ServeSetInit(ServeSet *set, const EmbeddingModel *m, int cap, int k)
{
	memset(set, 0, sizeof(*set));
	set->user_ids = palloc(sizeof(int64) * cap);
	set->users = palloc(sizeof(float) * (Size) cap * (m->ease ? 1 : Max(m->dim, 1)));
	set->excl_start = palloc0(sizeof(int) * (cap + 1));
	set->excl_cap = 1024;
	set->excl = palloc(sizeof(int) * set->excl_cap);
	set->slots = palloc_extended(sizeof(TopKItem) * (Size) k * cap, MCXT_ALLOC_HUGE);
	set->found = palloc(sizeof(int) * cap);
	if (m->ease)
	{
		set->in_start = palloc0(sizeof(int) * (cap + 1));
		set->in_cap = 1024;
		set->in_rows = palloc(sizeof(int) * set->in_cap);
		set->in_conf = palloc(sizeof(float) * set->in_cap);
	}
}

/* Set up a block for a model; with_user picks the output columns */
static void
ServeBlockInit(ServeBlock *b, const EmbeddingModel *m, int k, int max_users,
			   ReturnSetInfo *rsinfo, bool with_user)
{
	int			workers = RecsysWorkers();
	int			group;
	int			cap;
	Size		slot_bytes;

	/*
	 * Users are scored in groups (one gemm, then their top k), each thread
	 * scoring its group into its own buffer of at most SERVE_BLOCK_BYTES; a
	 * set holds SERVE_GROUPS_PER_THREAD groups per thread (their vectors
	 * and top-k lists, at most SERVE_BLOCK_BYTES of lists per thread), so
	 * that the threads start once per many groups.  Groups start every
	 * `group` users whatever the number of threads: a user's scores come
	 * from the same gemm.
	 */
	group = SERVE_BLOCK_BYTES / (int) (sizeof(float) * Max(m->n_items, 1));
	group = Max(1, Min(group, SERVE_GROUP_USERS));
	memset(b, 0, sizeof(*b));
	b->k = Min(k, Max(m->n_items, 1));
	slot_bytes = sizeof(TopKItem) * (Size) b->k;
	cap = (int) Min((Size) SERVE_GROUPS_PER_THREAD * group, Max(SERVE_BLOCK_BYTES / slot_bytes, 1));
	cap = Max(group, cap - cap % group) * workers;
	cap = Min(cap, Max(max_users, 1));
	b->m = m;
	b->cap = cap;
	b->group = group;
	b->workers = workers;
	b->scores = palloc_extended(sizeof(float) * (Size) Min(group, cap) * workers * Max(m->n_items, 1),
								MCXT_ALLOC_HUGE);
	ServeSetInit(&b->sets[0], m, cap, b->k);
	/* one thread scores while it reads: no second set */
	if (workers > 1)
		ServeSetInit(&b->sets[1], m, cap, b->k);
	b->fill = &b->sets[0];
	b->with_user = with_user;
	b->rsinfo = rsinfo;
}

/*
 * Score one group of the set being scored and keep each user's top k (a
 * parallel loop's item: it runs on any thread, so it calls kernels only and
 * writes only its users' scores, slots and counts)
 */
static void
ScoreGroup(void *arg, int worker, int64 group)
{
	ServeBlock *b = (ServeBlock *) arg;
	ServeSet   *set = b->scoring;
	const EmbeddingModel *m = b->m;
	int			u0 = (int) group * b->group;
	int			nu = Min(b->group, set->n - u0);
	/* this thread's buffer: the scores of one group */
	float	   *scores = b->scores + (Size) worker * Min(b->group, b->cap) * m->n_items;

	if (m->ease)
		for (int u = u0; u < u0 + nu; u++)
			EaseScoreUser(m->n_items, m->items, set->in_start[u + 1] - set->in_start[u],
						  set->in_rows + set->in_start[u], set->in_conf + set->in_start[u],
						  scores + (Size) (u - u0) * m->n_items);
	else
		FoldInScoreBlock(&m->fold, nu, set->users + (Size) u0 * m->dim, scores);
	for (int u = u0; u < u0 + nu; u++)
	{
		float	   *s = scores + (Size) (u - u0) * m->n_items;
		TopK		top;

		/* NaN is never kept: it is how an excluded item leaves the race */
		for (int e = set->excl_start[u]; e < set->excl_start[u + 1]; e++)
			s[set->excl[e]] = NAN;
		TopKInit(&top, b->k, set->slots + (Size) u * b->k);
		TopKPushBlock(&top, m->item_ids, s, m->n_items);
		set->found[u] = TopKSorted(&top);
	}
}

/* Write the rows of a scored set, each user's top k best first, and empty it */
static void
ServeSetEmit(ServeBlock *b, ServeSet *set)
{
	for (int u = 0; u < set->n; u++)
	{
		const TopKItem *top = set->slots + (Size) u * b->k;

		for (int r = 0; r < set->found[u]; r++)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};
			int			c = 0;

			if (b->with_user)
				values[c++] = Int64GetDatum(set->user_ids[u]);
			values[c++] = Int64GetDatum(top[r].id);
			values[c++] = Float4GetDatum(top[r].score);
			if (b->with_user)
				values[c++] = Int32GetDatum(r + 1);
			tuplestore_putvalues(b->rsinfo->setResult, b->rsinfo->setDesc, values, nulls);
		}
		CHECK_FOR_INTERRUPTS();
	}
	set->n = 0;
	set->excl_n = 0;
	set->in_n = 0;
}

/* Finish scoring the set being scored (this thread helps); returns it, or NULL */
static ServeSet *
ServeBlockWait(ServeBlock *b)
{
	ServeSet   *done = b->scoring;

	if (done == NULL)
		return NULL;
	ParallelEnd(&b->loop);
	b->scoring = NULL;
	return done;
}

/*
 * The filling set is full (or the users ended): finish the set scored
 * before, begin scoring this one on the other threads, then write the
 * earlier set's rows while they score (groups of b->group on up to
 * b->workers threads, the same groups whatever their number).  Everything
 * the calling thread does until the next ServeBlockWait runs beside the
 * threads: the callers stop them (ParallelStop) before an error unwinds.
 */
static void
ServeBlockCycle(ServeBlock *b)
{
	ServeSet   *done = ServeBlockWait(b);
	ServeSet   *next = b->fill;

	if (next->n > 0)
	{
		memset(&b->loop, 0, offsetof(ParallelLoop, next));
		b->loop.nworkers = b->workers;
		b->loop.n = (next->n + b->group - 1) / b->group;
		b->loop.batch = 1;
		b->loop.abortable = 1;
		b->loop.fn = ScoreGroup;
		b->loop.arg = b;
		b->scoring = next;
		ParallelBegin(&b->loop);
	}
	if (done)
		ServeSetEmit(b, done);
	if (b->workers > 1)
		b->fill = (next == &b->sets[0]) ? &b->sets[1] : &b->sets[0];
	else
	{
		/* one set: it is scored and written before it fills again */
		ServeSet   *scored = ServeBlockWait(b);

		if (scored)
			ServeSetEmit(b, scored);
	}
}

/* Score and write every user added so far */
static void
ServeBlockFlush(ServeBlock *b)
{
	ServeSet   *last;

	if (b->fill->n > 0)
		ServeBlockCycle(b);
	last = ServeBlockWait(b);
	if (last)
		ServeSetEmit(b, last);
}

/* Add the excluded item row of the user being added */
static void
ServeBlockExclude(ServeBlock *b, int row)
{
	ServeSet   *set = b->fill;

	if (set->excl_n == set->excl_cap)
	{
		if ((Size) set->excl_cap * 2 * sizeof(int) >= MaxAllocHugeSize)
			elog(ERROR, "too many excluded items in one block");
		set->excl_cap *= 2;
		set->excl = repalloc_huge(set->excl, sizeof(int) * set->excl_cap);
	}
	set->excl[set->excl_n++] = row;
}

/* Add an item (row, confidence) of the ease user being added */
static void
ServeBlockInput(ServeBlock *b, int row, float conf)
{
	ServeSet   *set = b->fill;

	if (set->in_n == set->in_cap)
	{
		if ((Size) set->in_cap * 2 * sizeof(float) >= MaxAllocHugeSize)
			elog(ERROR, "too many items in one block");
		set->in_cap *= 2;
		set->in_rows = repalloc_huge(set->in_rows, sizeof(int) * set->in_cap);
		set->in_conf = repalloc_huge(set->in_conf, sizeof(float) * set->in_cap);
	}
	set->in_rows[set->in_n] = row;
	set->in_conf[set->in_n] = conf;
	set->in_n++;
}

/*
 * Begin a user in the block (moving a full set on first); returns where its
 * dim floats go (NULL for an ease model, whose users are their items:
 * ServeBlockInput).  Exclusions added next belong to it until ServeBlockEnd.
 */
static float *
ServeBlockBegin(ServeBlock *b, int64 user_id)
{
	ServeSet   *set;

	if (b->fill->n == b->cap)
		ServeBlockCycle(b);
	set = b->fill;
	set->user_ids[set->n] = user_id;
	set->excl_start[set->n] = set->excl_n;
	if (b->m->ease)
	{
		set->in_start[set->n] = set->in_n;
		return NULL;
	}
	return set->users + (Size) set->n * b->m->dim;
}

static void ExcludeReaderAdd(ExcludeReader *r, ServeBlock *b, int64 user_id);

/* Finish the user begun last, adding the call's exclusions */
static void
ServeBlockEnd(ServeBlock *b)
{
	ServeSet   *set = b->fill;

	if (b->ex)
	{
		for (int i = 0; i < b->ex->nrows; i++)
			ServeBlockExclude(b, b->ex->rows[i]);
		if (b->ex->reader)
			ExcludeReaderAdd(b->ex->reader, b, set->user_ids[set->n]);
	}
	set->n++;
	set->excl_start[set->n] = set->excl_n;
	if (b->m->ease)
		set->in_start[set->n] = set->in_n;
}

/* Exclude the items of a seen bigint[] (ids; unknown ones ignored) */
static void
ExcludeSeen(ServeBlock *b, Datum seen)
{
	ArrayType  *a = DatumGetArrayTypeP(seen);
	int			n;
	const int64 *ids;

	if (ARR_ELEMTYPE(a) != INT8OID || ARR_NDIM(a) > 1 || ARR_HASNULL(a))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("seen items of a user of model \"%s\" version %d are malformed",
						b->m->name, b->m->version)));
	n = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	ids = (const int64 *) ARR_DATA_PTR(a);
	for (int i = 0; i < n; i++)
	{
		int			row = EmbeddingItemRow(b->m, ids[i]);

		if (row >= 0)
			ServeBlockExclude(b, row);
	}
}

/*
 * Get the rows of the items of exclude bigint[] (NULL: none; unknown ids
 * are ignored) into ex
 */
static void
ExclusionsFromArray(FunctionCallInfo fcinfo, int arg, const EmbeddingModel *m, Exclusions *ex)
{
	ArrayType  *a;
	int			n;
	const int64 *ids;

	memset(ex, 0, sizeof(*ex));
	if (arg == NO_ARG || PG_ARGISNULL(arg))
		return;
	a = PG_GETARG_ARRAYTYPE_P(arg);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("exclude must be a one-dimensional array")));
	if (array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("exclude must not contain NULL")));
	n = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	ids = (const int64 *) ARR_DATA_PTR(a);
	ex->rows = palloc(sizeof(int) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		int			row = EmbeddingItemRow(m, ids[i]);

		if (row >= 0)
			ex->rows[ex->nrows++] = row;
	}
}

/*
 * Check the relation of exclude regclass: columns user_id and item_id of an
 * integer type.  Before any SPI connection; returns the query that reads it.
 */
static char *
ExcludeRelationQuery(FunctionCallInfo fcinfo, int arg)
{
	static const Oid ids[] = {INT2OID, INT4OID, INT8OID};
	Oid			relid;

	if (arg == NO_ARG || PG_ARGISNULL(arg))
		return NULL;
	relid = PG_GETARG_OID(arg);
	RecsysColumnType(relid, "user_id", "user column of exclude", ids, lengthof(ids));
	RecsysColumnType(relid, "item_id", "item column of exclude", ids, lengthof(ids));
	/* the types are checked: the casts are built-in integer widenings */
	return psprintf("SELECT e.user_id::pg_catalog.int8, e.item_id::pg_catalog.int8 FROM %s e"
					" WHERE e.user_id IS NOT NULL AND e.item_id IS NOT NULL ORDER BY 1",
					RecsysRelationSqlName(relid));
}

/* Open the cursor over an exclude relation (inside an SPI connection) */
static void
ExcludeReaderOpen(ExcludeReader *r, const char *sql)
{
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);

	memset(r, 0, sizeof(*r));
	if (plan == NULL)
		elog(ERROR, "could not prepare the exclude query: %s", SPI_result_code_string(SPI_result));
	r->portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
}

/* Leave out the items the exclude relation pairs with user_id */
static void
ExcludeReaderAdd(ExcludeReader *r, ServeBlock *b, int64 user_id)
{
	for (;;)
	{
		HeapTuple	tup;
		bool		isnull;
		int64		uid;
		int			row;

		if (r->pos == r->n)
		{
			MemoryContext caller = CurrentMemoryContext;

			if (r->done)
				return;
			if (r->batch)
			{
				SPI_freetuptable(r->batch);
				if (SPI_tuptable == r->batch)
					SPI_tuptable = NULL;
			}
			SPI_cursor_fetch(r->portal, true, SERVE_FETCH_ROWS);
			/* the caller's (per-batch) context stays current */
			MemoryContextSwitchTo(caller);
			r->batch = SPI_tuptable;
			r->n = SPI_processed;
			r->pos = 0;
			if (r->n == 0)
			{
				r->done = true;
				return;
			}
		}
		tup = r->batch->vals[r->pos];
		uid = DatumGetInt64(SPI_getbinval(tup, r->batch->tupdesc, 1, &isnull));
		if (uid > user_id)
			return;
		if (uid == user_id)
		{
			row = EmbeddingItemRow(b->m, DatumGetInt64(SPI_getbinval(tup, r->batch->tupdesc, 2, &isnull)));
			if (row >= 0)
				ServeBlockExclude(b, row);
		}
		r->pos++;
	}
}

/* Close the cursor over an exclude relation */
static void
ExcludeReaderClose(ExcludeReader *r)
{
	if (r->batch)
	{
		SPI_freetuptable(r->batch);
		if (SPI_tuptable == r->batch)
			SPI_tuptable = NULL;
	}
	SPI_cursor_close(r->portal);
}

/* Copy a stored user vector into the block, checking its length */
static void
UserVectorToBlock(ServeBlock *b, Datum embedding, float *out, int64 user_id)
{
	ArrayType  *a = DatumGetArrayTypeP(embedding);
	int			dim = VectorDim(a);

	if (dim != b->m->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("user " INT64_FORMAT " of model \"%s\" version %d has %d values, the items %d",
						user_id, b->m->name, b->m->version, dim, b->m->dim)));
	VectorToFloats(a, out);
}

/*
 * Put a stored user of an ease model in the block: seen holds the items,
 * embedding their confidences in the same order (unknown items skipped)
 */
static void
EaseUserToBlock(ServeBlock *b, Datum embedding, Datum seen, int64 user_id)
{
	ArrayType  *a = DatumGetArrayTypeP(embedding);
	ArrayType  *ids = DatumGetArrayTypeP(seen);
	int			n = ARR_NDIM(ids) == 0 ? 0 : ARR_DIMS(ids)[0];
	const int64 *id = (const int64 *) ARR_DATA_PTR(ids);
	const float *conf;

	if (ARR_ELEMTYPE(a) != FLOAT4OID || ARR_NDIM(a) != 1 || ARR_HASNULL(a) ||
		ARR_ELEMTYPE(ids) != INT8OID || ARR_NDIM(ids) > 1 || ARR_HASNULL(ids) ||
		ARR_DIMS(a)[0] != n)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("user " INT64_FORMAT " of ease model \"%s\" version %d is malformed",
						user_id, b->m->name, b->m->version),
				 errdetail("Its embedding must hold one confidence per seen item.")));
	conf = (const float *) ARR_DATA_PTR(a);
	for (int i = 0; i < n; i++)
	{
		int			row = EmbeddingItemRow(b->m, id[i]);

		if (row >= 0)
			ServeBlockInput(b, row, conf[i]);
	}
}

/* What puts a call's users in its block (reading rows: on the backend's thread) */
typedef void (*ServeFillFn) (ServeBlock *b, void *arg);

/*
 * Fill the block and score and write every user: the threads score a set
 * while this thread reads the next, so they are stopped before an error
 * unwinds
 */
static void
ServeAll(ServeBlock *b, ServeFillFn fill, void *arg)
{
	PG_TRY();
	{
		fill(b, arg);
		ServeBlockFlush(b);
	}
	PG_CATCH();
	{
		ParallelStop();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* A cursor over stored users, for ServeUserRows */
typedef struct UserRows
{
	Portal		portal;
	bool		exclude_seen;
	MemoryContext rows_cxt;
	MemoryContext spi_cxt;
	uint64		served;
} UserRows;

static void ServeUserRows(ServeBlock *b, void *arg);

/*
 * Serve stored users through a cursor, id order: all users of the version
 * (users = NULL) or those listed.  Returns the number of users served.
 */
static uint64
ServeStoredUsers(ServeBlock *b, ArrayType *users, bool exclude_seen, const char *exclude_sql)
{
	ExcludeReader reader;
	static StorePlan plan_all = {InvalidOid, NULL};
	static StorePlan plan_some = {InvalidOid, NULL};
	Oid			types[3] = {TEXTOID, INT4OID, INT8ARRAYOID};
	Datum		args[3];
	SPIPlanPtr	plan;
	Portal		portal;
	int			spi_level;
	MemoryContext spi_cxt;
	MemoryContext rows_cxt;
	UserRows	rows;
	uint64		served;

	spi_level = RecsysSpiConnect();
	spi_cxt = CurrentMemoryContext;
	/* detoasted (and short-header) vectors and seen lists: one fetch at a time */
	rows_cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys serve rows", ALLOCSET_DEFAULT_SIZES);
	if (users == NULL)
		plan = ModelStorePlan(&plan_all, STORE_USER_VECTORS,
							  "SELECT u.id, u.embedding, u.seen FROM %s u"
							  " WHERE u.model OPERATOR(pg_catalog.=) $1"
							  " AND u.version OPERATOR(pg_catalog.=) $2 ORDER BY u.id", 2, types);
	else
		plan = ModelStorePlan(&plan_some, STORE_USER_VECTORS,
							  "SELECT u.id, u.embedding, u.seen FROM %s u"
							  " WHERE u.model OPERATOR(pg_catalog.=) $1"
							  " AND u.version OPERATOR(pg_catalog.=) $2"
							  " AND u.id OPERATOR(pg_catalog.=) ANY ($3) ORDER BY u.id", 3, types);
	args[0] = CStringGetTextDatum(b->m->name);
	args[1] = Int32GetDatum(b->m->version);
	args[2] = users ? PointerGetDatum(users) : (Datum) 0;
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	if (exclude_sql)
	{
		ExcludeReaderOpen(&reader, exclude_sql);
		b->ex->reader = &reader;
	}
	rows.portal = portal;
	rows.exclude_seen = exclude_seen;
	rows.rows_cxt = rows_cxt;
	rows.spi_cxt = spi_cxt;
	rows.served = 0;
	ServeAll(b, ServeUserRows, &rows);
	served = rows.served;
	SPI_cursor_close(portal);
	if (exclude_sql)
	{
		ExcludeReaderClose(&reader);
		b->ex->reader = NULL;
	}
	RecsysReportMemory("serve", spi_cxt, NULL);
	RecsysSpiFinish(spi_level);
	return served;
}

/* Put the users a cursor returns in the block, counting them (a ServeFillFn) */
static void
ServeUserRows(ServeBlock *b, void *arg)
{
	UserRows   *ur = (UserRows *) arg;
	Portal		portal = ur->portal;
	bool		exclude_seen = ur->exclude_seen;
	MemoryContext rows_cxt = ur->rows_cxt;
	MemoryContext spi_cxt = ur->spi_cxt;
	uint64		served = 0;

	for (;;)
	{
		SPITupleTable *batch;
		uint64		nrows;

		SPI_cursor_fetch(portal, true, Min(SERVE_FETCH_ROWS, b->cap));
		/* the exclude cursor fetches in between: keep this batch's table */
		batch = SPI_tuptable;
		nrows = SPI_processed;
		if (nrows == 0)
			break;
		MemoryContextSwitchTo(rows_cxt);
		for (uint64 r = 0; r < nrows; r++)
		{
			HeapTuple	tup = batch->vals[r];
			TupleDesc	desc = batch->tupdesc;
			bool		isnull;
			int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			Datum		emb = SPI_getbinval(tup, desc, 2, &isnull);
			Datum		seen;
			float	   *out = ServeBlockBegin(b, id);

			seen = SPI_getbinval(tup, desc, 3, &isnull);
			if (b->m->ease)
				EaseUserToBlock(b, emb, seen, id);
			else
				UserVectorToBlock(b, emb, out, id);
			if (exclude_seen && !isnull)
				ExcludeSeen(b, seen);
			ServeBlockEnd(b);
		}
		served += nrows;
		MemoryContextSwitchTo(spi_cxt);
		/* this batch's table, not the exclude cursor's (it frees its own) */
		SPI_freetuptable(batch);
		if (SPI_tuptable == batch)
			SPI_tuptable = NULL;
		MemoryContextReset(rows_cxt);
		CHECK_FOR_INTERRUPTS();
	}
	ur->served = served;
}

/* Report a statement's calls of recommend for users the model does not know */
static void
ReportUnknownUsers(const StatementTally *t)
{
	if (t->calls == 1)
		ereport(NOTICE,
				(errmsg("user " INT64_FORMAT " is unknown to model \"%s\" version %d: no rows",
						t->first, t->model, t->version),
				 errhint("For a user without a stored vector, recsys.recommend_for_items(model, items) recommends from the user's items (recsys.fold_in gives the vector).")));
	else
		ereport(NOTICE,
				(errmsg(INT64_FORMAT " of " INT64_FORMAT " users are unknown to model \"%s\" version %d: no rows for them",
						t->hits, t->calls, t->model, t->version),
				 errdetail("The first is user " INT64_FORMAT ".", t->first),
				 errhint("For a user without a stored vector, recsys.recommend_for_items(model, items) recommends from the user's items (recsys.fold_in gives the vector).")));
}

/*
 * Get the top-k items of a stored user, best first (ties: smaller id),
 * without the user's training items when asked and the items of exclude;
 * no rows for an unknown user
 */
static Datum
Recommend(FunctionCallInfo fcinfo, const RecommendArgs *a)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const EmbeddingModel *m;
	int			k = GetK(fcinfo, a->k);
	bool		exclude_seen = GetFlag(fcinfo, a->exclude_seen, "exclude_seen");
	ServeBlock	b;
	Exclusions	ex;
	ArrayType  *one;
	Datum		id;

	InitMaterializedSRF(fcinfo, 0);
	m = GetModel(fcinfo, a->model, a->version);
	ExclusionsFromArray(fcinfo, a->exclude, m, &ex);
	if (PG_ARGISNULL(a->user) || m->n_items == 0)
		PG_RETURN_NULL();
	id = PG_GETARG_DATUM(a->user);
	one = construct_array(&id, 1, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE);
	ServeBlockInit(&b, m, k, 1, rsinfo, false);
	b.ex = &ex;
	{
		StatementTally *t = StatementTallyGet(fcinfo, ReportUnknownUsers, m->name, m->version);

		t->calls++;
		if (ServeStoredUsers(&b, one, exclude_seen, NULL) == 0 && t->hits++ == 0)
			t->first = DatumGetInt64(id);
	}
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(embedding_recommend);
/* recommend(model, user_id, k, exclude_seen, version) */
Datum
embedding_recommend(PG_FUNCTION_ARGS)
{
	return Recommend(fcinfo, &RecommendPlain);
}

PG_FUNCTION_INFO_V1(embedding_recommend_exclude);
/* recommend(model, user_id, k, exclude_seen, version, exclude bigint[]) */
Datum
embedding_recommend_exclude(PG_FUNCTION_ARGS)
{
	return Recommend(fcinfo, &RecommendExclude);
}

/*
 * Get the top-k items of every stored user (or of those listed), as
 * (user_id, item_id, score, rank) in user order, best first, without the
 * pairs of the exclude relation
 */
static Datum
RecommendAll(FunctionCallInfo fcinfo, const AllArgs *a)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const EmbeddingModel *m;
	int			k = GetK(fcinfo, a->k);
	bool		exclude_seen = GetFlag(fcinfo, a->exclude_seen, "exclude_seen");
	char	   *exclude_sql = ExcludeRelationQuery(fcinfo, a->exclude);
	ArrayType  *users = NULL;
	ServeBlock	b;
	Exclusions	ex;

	if (!PG_ARGISNULL(a->users))
	{
		users = PG_GETARG_ARRAYTYPE_P(a->users);
		if (ARR_NDIM(users) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("users must be a one-dimensional array")));
		if (array_contains_nulls(users))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("users must not contain NULL")));
	}
	InitMaterializedSRF(fcinfo, 0);
	m = GetModel(fcinfo, a->model, a->version);
	if (m->n_items == 0)
		PG_RETURN_NULL();
	ServeBlockInit(&b, m, k, INT_MAX, rsinfo, true);
	memset(&ex, 0, sizeof(ex));
	b.ex = &ex;
	ServeStoredUsers(&b, users, exclude_seen, exclude_sql);
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(embedding_recommend_all);
/* recommend_all(model, k, users, exclude_seen, version) */
Datum
embedding_recommend_all(PG_FUNCTION_ARGS)
{
	return RecommendAll(fcinfo, &AllPlain);
}

PG_FUNCTION_INFO_V1(embedding_recommend_all_exclude);
/* recommend_all(model, k, users, exclude_seen, version, exclude regclass) */
Datum
embedding_recommend_all_exclude(PG_FUNCTION_ARGS)
{
	return RecommendAll(fcinfo, &AllExclude);
}

/* ---------------------------------------------------------------------
 * Fold-in
 * ---------------------------------------------------------------------
 */

/* One user's items as fold-in takes them: distinct rows, summed confidences */
typedef struct FoldInput
{
	int			n;				/* distinct known rows of positive confidence */
	int			n_given;		/* distinct known rows (any confidence) */
	int			cap;
	int		   *rows;
	double	   *conf;
	double	   *work;
	Size		work_size;
	double	   *x;
} FoldInput;

typedef struct RowConf
{
	int			row;
	double		conf;
} RowConf;

/* Compare by row for qsort */
static int
CompareRowConf(const void *a, const void *b)
{
	int			x = ((const RowConf *) a)->row;
	int			y = ((const RowConf *) b)->row;

	return (x > y) - (x < y);
}

/* Make room for n entries in a fold input */
static void
FoldInputReserve(FoldInput *in, int n, int dim)
{
	if (in->cap < n)
	{
		int			cap = Max(n, Max(in->cap * 2, 64));

		if (in->rows)
		{
			pfree(in->rows);
			pfree(in->conf);
		}
		in->rows = palloc(sizeof(int) * cap);
		in->conf = palloc(sizeof(double) * cap);
		in->cap = cap;
	}
	if (in->x == NULL)
		in->x = palloc(sizeof(double) * Max(dim, 1));
}

/*
 * Turn (row, confidence) pairs into the distinct rows of a user: repeated
 * items add their confidences and rows whose sum is zero are dropped, as
 * the trainer does with repeated interactions.  pairs is sorted in place.
 */
static void
FoldInputSet(FoldInput *in, RowConf *pairs, int n, int dim)
{
	FoldInputReserve(in, n, dim);
	qsort(pairs, n, sizeof(RowConf), CompareRowConf);
	in->n = 0;
	in->n_given = 0;
	for (int i = 0; i < n;)
	{
		int			row = pairs[i].row;
		double		c = 0.0;

		for (; i < n && pairs[i].row == row; i++)
			c += pairs[i].conf;
		in->n_given++;
		if (c > 0.0)
		{
			in->rows[in->n] = row;
			in->conf[in->n] = c;
			in->n++;
		}
	}
}

/* Refuse a fold-in of a two-tower model, before its arguments are read */
static void
RefuseTwoTower(const EmbeddingModel *m)
{
	if (m->two_tower)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model \"%s\" version %d is a two-tower model: fold-in does not apply", m->name, m->version),
				 errdetail("Its user vectors are the user tower's outputs over user features; no objective over a free user vector was trained."),
				 errhint("Give the user by features: recsys.two_tower_user_vector or recsys.recommend_for_features.")));
}

/* Solve the fold-in of in->rows into in->x; raise on a failed Cholesky */
static void
FoldInputSolve(const EmbeddingModel *m, FoldInput *in)
{
	Size		need = FoldInWorkSize(m->dim, in->n);
	int			info;

	RefuseTwoTower(m);
	if (!m->has_objective)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model \"%s\" version %d records no training objective", m->name, m->version),
				 errdetail("Fold-in needs gramian_weight and l2 (numbers, not negative) in the model's config.")));
	if (in->work_size < need)
	{
		if (in->work)
			pfree(in->work);
		if (need > MaxAllocHugeSize / sizeof(double))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("fold-in of %d items is too large", in->n)));
		in->work = palloc_extended(sizeof(double) * need, MCXT_ALLOC_HUGE);
		in->work_size = need;
	}
	info = FoldInSolve(&m->fold, in->n, in->rows, in->conf, in->work, in->x, NULL);
	if (info != 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("fold-in system of model \"%s\" version %d is not positive definite",
						m->name, m->version),
				 errdetail("LAPACK dpotrf returned %d after jitter retries.", info)));
}

/*
 * Report a statement's fold-in calls that were given unknown items (count:
 * unknown items, items, calls with no known item; first: the items of the
 * first such call)
 */
static void
ReportUnknownItems(const StatementTally *t)
{
	if (t->hits == 1)
		ereport(NOTICE,
				(errmsg(INT64_FORMAT " of " INT64_FORMAT " items are unknown to model \"%s\" version %d and skipped",
						t->count[0], t->first, t->model, t->version)));
	else
		ereport(NOTICE,
				(errmsg(INT64_FORMAT " of " INT64_FORMAT " items are unknown to model \"%s\" version %d and skipped",
						t->count[0], t->count[1], t->model, t->version),
				 t->count[2] == 0 ?
				 errdetail("They were given to " INT64_FORMAT " of the statement's " INT64_FORMAT " fold-in calls.",
						   t->hits, t->calls) :
				 errdetail("They were given to " INT64_FORMAT " of the statement's " INT64_FORMAT " fold-in calls; " INT64_FORMAT " of those calls had no known item (fold_in gives NULL, recommend_for_items no rows).",
						   t->hits, t->calls, t->count[2])));
}

/* Report unknown items (a NOTICE, never an error: models age) */
static void
NoticeUnknown(const EmbeddingModel *m, int64 unknown, int64 total, const char *of_what)
{
	if (unknown > 0)
		ereport(NOTICE,
				(errmsg(INT64_FORMAT " of " INT64_FORMAT " %s unknown to model \"%s\" version %d and skipped",
						unknown, total, of_what, m->name, m->version)));
}

/*
 * Read the items (and weights) arguments of a fold-in call into in: checks
 * every element; returns false (after a NOTICE) when no item is known.
 */
static bool
ReadFoldArgs(FunctionCallInfo fcinfo, const EmbeddingModel *m, int items_arg,
			 int weights_arg, FoldInput *in)
{
	ArrayType  *items;
	ArrayType  *weights = NULL;
	int			n;
	const int64 *ids;
	const float *w = NULL;
	RowConf    *pairs;
	int			npairs = 0;

	CheckNotNull(fcinfo, items_arg, "items");
	items = PG_GETARG_ARRAYTYPE_P(items_arg);
	if (ARR_NDIM(items) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("items must be a one-dimensional array")));
	n = ARR_NDIM(items) == 0 ? 0 : ARR_DIMS(items)[0];
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("items must not be empty")));
	if (ARR_HASNULL(items) && array_contains_nulls(items))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("items must not contain NULL")));
	ids = (const int64 *) ARR_DATA_PTR(items);
	if (!PG_ARGISNULL(weights_arg))
	{
		int			nw;

		weights = PG_GETARG_ARRAYTYPE_P(weights_arg);
		nw = ARR_NDIM(weights) == 0 ? 0 : ARR_DIMS(weights)[0];
		if (ARR_NDIM(weights) > 1 || nw != n)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("weights must be a one-dimensional array as long as items"),
					 errdetail("items has %d elements, weights %d.", n,
							   ARR_NDIM(weights) > 1 ? (int) ArrayGetNItems(ARR_NDIM(weights), ARR_DIMS(weights)) : nw)));
		if (ARR_HASNULL(weights) && array_contains_nulls(weights))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("weights must not contain NULL")));
		w = (const float *) ARR_DATA_PTR(weights);
		for (int i = 0; i < n; i++)
		{
			if (isnan(w[i]) || isinf(w[i]))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("weights must be finite"),
						 errdetail("Element %d is %s.", i + 1, isnan(w[i]) ? "NaN" : "infinite")));
			if (w[i] < 0.0f)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("weights must not be negative"),
						 errdetail("Element %d is %g.", i + 1, w[i]),
						 errhint("Weights are confidences: zero or more.")));
		}
	}

	pairs = palloc(sizeof(RowConf) * n);
	for (int i = 0; i < n; i++)
	{
		int			row = EmbeddingItemRow(m, ids[i]);

		if (row < 0)
			continue;
		pairs[npairs].row = row;
		pairs[npairs].conf = w ? (double) w[i] : 1.0;
		npairs++;
	}
	{
		StatementTally *t = StatementTallyGet(fcinfo, ReportUnknownItems, m->name, m->version);

		/* one NOTICE per statement, not per call (a LATERAL over many users) */
		t->calls++;
		if (npairs < n)
		{
			if (t->hits++ == 0)
				t->first = n;	/* the items of the one call, if it stays one */
			t->count[0] += n - npairs;
			t->count[2] += npairs == 0;
		}
		t->count[1] += n;
	}
	FoldInputSet(in, pairs, npairs, m->dim);
	pfree(pairs);
	return in->n > 0;
}

PG_FUNCTION_INFO_V1(embedding_fold_in);
/*
 * Get the user vector the model's objective gives a user with these items
 * (confidences: weights, default 1); NULL when no item is known to the model
 */
Datum
embedding_fold_in(PG_FUNCTION_ARGS)
{
	const EmbeddingModel *m = GetModel(fcinfo, ARG_FOLD_MODEL, ARG_FOLD_VERSION);
	FoldInput	in;
	float	   *x;

	if (m->ease)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model \"%s\" version %d is an ease model: it has no user vectors", m->name, m->version),
				 errhint("EASE scores a user's items directly: use recommend_for_items.")));
	RefuseTwoTower(m);
	memset(&in, 0, sizeof(in));
	if (!ReadFoldArgs(fcinfo, m, ARG_FOLD_ITEMS, ARG_FOLD_WEIGHTS, &in))
		PG_RETURN_NULL();
	FoldInputSolve(m, &in);
	x = palloc(sizeof(float) * m->dim);
	for (int t = 0; t < m->dim; t++)
		x[t] = (float) in.x[t];
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(x, m->dim));
}

/* Put a solved fold-in (rounded to float, as fold_in returns it) in a block */
static void
FoldedUserToBlock(ServeBlock *b, FoldInput *in, int64 user_id, bool exclude_given,
				  const int *given, int ngiven)
{
	float	   *out = ServeBlockBegin(b, user_id);

	if (b->m->ease)
		for (int i = 0; i < in->n; i++)
			ServeBlockInput(b, in->rows[i], (float) in->conf[i]);
	else
		for (int t = 0; t < b->m->dim; t++)
			out[t] = (float) in->x[t];
	if (exclude_given)
		for (int i = 0; i < ngiven; i++)
			ServeBlockExclude(b, given[i]);
	ServeBlockEnd(b);
}

/*
 * Get the top-k items for a user given by items (fold-in, then scoring),
 * without the given items when asked and the items of exclude; no rows when
 * no item is known
 */
static Datum
RecommendForItems(FunctionCallInfo fcinfo, const ForItemsArgs *a)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const EmbeddingModel *m;
	int			k = GetK(fcinfo, a->k);
	bool		exclude = GetFlag(fcinfo, a->exclude_seen, "exclude_seen");
	FoldInput	in;
	ServeBlock	b;
	Exclusions	ex;
	int		   *given;
	int			ngiven = 0;

	InitMaterializedSRF(fcinfo, 0);
	m = GetModel(fcinfo, a->model, a->version);
	RefuseTwoTower(m);
	ExclusionsFromArray(fcinfo, a->exclude, m, &ex);
	memset(&in, 0, sizeof(in));
	if (!ReadFoldArgs(fcinfo, m, a->items, a->weights, &in))
		PG_RETURN_NULL();
	if (!m->ease)
		FoldInputSolve(m, &in);

	/* every given known item, zero weights included, is left out */
	{
		ArrayType  *items = PG_GETARG_ARRAYTYPE_P(a->items);
		int			n = ARR_DIMS(items)[0];
		const int64 *ids = (const int64 *) ARR_DATA_PTR(items);

		given = palloc(sizeof(int) * n);
		for (int i = 0; i < n; i++)
		{
			int			row = EmbeddingItemRow(m, ids[i]);

			if (row >= 0)
				given[ngiven++] = row;
		}
	}
	ServeBlockInit(&b, m, k, 1, rsinfo, false);
	b.ex = &ex;
	FoldedUserToBlock(&b, &in, 0, exclude, given, ngiven);
	ServeBlockFlush(&b);
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(embedding_recommend_for_items);
/* recommend_for_items(model, items, k, weights, exclude_seen, version) */
Datum
embedding_recommend_for_items(PG_FUNCTION_ARGS)
{
	return RecommendForItems(fcinfo, &ForItemsPlain);
}

PG_FUNCTION_INFO_V1(embedding_recommend_for_items_exclude);
/* recommend_for_items(model, items, k, weights, exclude_seen, version, exclude bigint[]) */
Datum
embedding_recommend_for_items_exclude(PG_FUNCTION_ARGS)
{
	return RecommendForItems(fcinfo, &ForItemsExclude);
}

/* ---------------------------------------------------------------------
 * recommend_all_for_items: fold-in of every user of an interactions table
 * ---------------------------------------------------------------------
 */

/* Build the query that reads (user, item, weight) rows in user order */
static char *
InteractionsQuery(FunctionCallInfo fcinfo, const AllItemsArgs *a)
{
	static const Oid ids[] = {INT2OID, INT4OID, INT8OID};
	static const Oid weights[] = {INT2OID, INT4OID, INT8OID, FLOAT4OID, FLOAT8OID, NUMERICOID};
	Oid			relid;
	char	   *rel;
	const char *wexpr = "1";
	StringInfoData sql;

	CheckNotNull(fcinfo, a->table, "interactions");
	CheckNotNull(fcinfo, a->user_column, "user column");
	CheckNotNull(fcinfo, a->item_column, "item column");
	relid = PG_GETARG_OID(a->table);
	rel = RecsysRelationSqlName(relid);
	RecsysColumnType(relid, NameStr(*PG_GETARG_NAME(a->user_column)), "user column",
					 ids, lengthof(ids));
	RecsysColumnType(relid, NameStr(*PG_GETARG_NAME(a->item_column)), "item column",
					 ids, lengthof(ids));
	if (!PG_ARGISNULL(a->weight_column))
	{
		RecsysColumnType(relid, NameStr(*PG_GETARG_NAME(a->weight_column)),
						 "weight column", weights, lengthof(weights));
		wexpr = quote_identifier(NameStr(*PG_GETARG_NAME(a->weight_column)));
	}
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT s.%s::pg_catalog.int8, s.%s::pg_catalog.int8, (%s%s)::pg_catalog.float8"
					 " FROM %s s ORDER BY 1",
					 quote_identifier(NameStr(*PG_GETARG_NAME(a->user_column))),
					 quote_identifier(NameStr(*PG_GETARG_NAME(a->item_column))),
					 PG_ARGISNULL(a->weight_column) ? "" : "s.", wexpr, rel);
	return sql.data;
}

/* What recommend_all_for_items carries from one user to the next */
typedef struct BatchUser
{
	int64		id;
	int			n;				/* rows of the user so far */
	int			cap;
	RowConf    *pairs;			/* known items */
	int		   *given;
	int64		rows_total;
	int64		rows_unknown;
	int64		users_skipped;
} BatchUser;

/* Fold in the user gathered so far and put it in the block */
static void
FinishBatchUser(ServeBlock *b, BatchUser *u, FoldInput *in, bool exclude)
{
	for (int i = 0; i < u->n; i++)
		u->given[i] = u->pairs[i].row;
	FoldInputSet(in, u->pairs, u->n, b->m->dim);
	if (in->n == 0)
		u->users_skipped++;
	else
	{
		if (!b->m->ease)
			FoldInputSolve(b->m, in);
		FoldedUserToBlock(b, in, u->id, exclude, u->given, u->n);
	}
	u->n = 0;
}

/* An interactions cursor and the user being read, for ServeInteractionRows */
typedef struct InteractionRows
{
	Portal		portal;
	BatchUser  *u;
	FoldInput  *in;
	bool		exclude;
} InteractionRows;

static void ServeInteractionRows(ServeBlock *b, void *arg);

/*
 * Get the top-k items of every user of an interactions table by fold-in of
 * the user's rows, as (user_id, item_id, score, rank) in user order,
 * without the pairs of the exclude relation
 */
static Datum
RecommendAllForItems(FunctionCallInfo fcinfo, const AllItemsArgs *a)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const EmbeddingModel *m;
	int			k = GetK(fcinfo, a->k);
	bool		exclude = GetFlag(fcinfo, a->exclude_seen, "exclude_seen");
	char	   *sql = InteractionsQuery(fcinfo, a);
	char	   *exclude_sql = ExcludeRelationQuery(fcinfo, a->exclude);
	ExcludeReader reader;
	Exclusions	ex;
	ServeBlock	b;
	BatchUser	u;
	FoldInput	in;
	InteractionRows rows;
	Portal		portal;
	SPIPlanPtr	plan;
	int			spi_level;

	InitMaterializedSRF(fcinfo, 0);
	m = GetModel(fcinfo, a->model, a->version);
	if ((!m->has_objective && !m->ease) || m->two_tower)
	{
		/* the same error as a single fold-in, before reading any row */
		memset(&in, 0, sizeof(in));
		FoldInputSolve(m, &in);
	}
	ServeBlockInit(&b, m, k, INT_MAX, rsinfo, true);
	memset(&ex, 0, sizeof(ex));
	b.ex = &ex;
	memset(&u, 0, sizeof(u));
	memset(&in, 0, sizeof(in));
	u.cap = 256;
	u.pairs = palloc(sizeof(RowConf) * u.cap);
	u.given = palloc(sizeof(int) * u.cap);

	spi_level = RecsysSpiConnect();
	plan = SPI_prepare(sql, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "could not prepare the interactions query: %s",
			 SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	if (exclude_sql)
	{
		ExcludeReaderOpen(&reader, exclude_sql);
		ex.reader = &reader;
	}
	rows.portal = portal;
	rows.u = &u;
	rows.in = &in;
	rows.exclude = exclude;
	ServeAll(&b, ServeInteractionRows, &rows);
	SPI_cursor_close(portal);
	if (exclude_sql)
		ExcludeReaderClose(&reader);
	RecsysSpiFinish(spi_level);
	NoticeUnknown(m, u.rows_unknown, u.rows_total, "interaction rows name items");
	if (u.users_skipped > 0)
		ereport(NOTICE,
				(errmsg(INT64_FORMAT " users have no item known to model \"%s\" version %d and get no rows",
						u.users_skipped, m->name, m->version)));
	PG_RETURN_NULL();
}

/*
 * Fold in and put in the block the users of an interactions cursor (rows
 * in user order), each when its rows end (a ServeFillFn)
 */
static void
ServeInteractionRows(ServeBlock *b, void *arg)
{
	InteractionRows *ir = (InteractionRows *) arg;
	Portal		portal = ir->portal;
	BatchUser  *u = ir->u;
	FoldInput  *in = ir->in;
	bool		exclude = ir->exclude;
	const EmbeddingModel *m = b->m;
	bool		have_user = false;

	for (;;)
	{
		SPITupleTable *batch;
		uint64		nrows;

		SPI_cursor_fetch(portal, true, SERVE_FETCH_ROWS);
		/* the exclude cursor fetches in between: keep this batch's table */
		batch = SPI_tuptable;
		nrows = SPI_processed;
		if (nrows == 0)
			break;
		for (uint64 r = 0; r < nrows; r++)
		{
			HeapTuple	tup = batch->vals[r];
			TupleDesc	desc = batch->tupdesc;
			bool		n1,
						n2,
						n3;
			int64		uid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &n1));
			int64		iid = DatumGetInt64(SPI_getbinval(tup, desc, 2, &n2));
			double		w = DatumGetFloat8(SPI_getbinval(tup, desc, 3, &n3));
			int			row;

			if (n1 || n2 || n3)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("%s column of the interactions must not be NULL",
								n1 ? "user" : n2 ? "item" : "weight")));
			if (isnan(w) || isinf(w))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("weight column of the interactions must be finite"),
						 errdetail("User " INT64_FORMAT ", item " INT64_FORMAT ".", uid, iid)));
			if (w < 0.0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("weight column of the interactions must not be negative"),
						 errdetail("User " INT64_FORMAT ", item " INT64_FORMAT ".", uid, iid),
						 errhint("Weights are confidences: zero or more.")));
			if (have_user && uid != u->id)
				FinishBatchUser(b, u, in, exclude);
			u->id = uid;
			have_user = true;
			u->rows_total++;
			row = EmbeddingItemRow(m, iid);
			if (row < 0)
			{
				u->rows_unknown++;
				continue;
			}
			if (u->n == u->cap)
			{
				if ((Size) u->cap * 2 * sizeof(RowConf) >= MaxAllocHugeSize)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("user " INT64_FORMAT " has too many interactions", uid)));
				u->cap *= 2;
				u->pairs = repalloc_huge(u->pairs, sizeof(RowConf) * u->cap);
				u->given = repalloc_huge(u->given, sizeof(int) * u->cap);
			}
			u->pairs[u->n].row = row;
			u->pairs[u->n].conf = w;
			u->n++;
		}
		SPI_freetuptable(batch);
		if (SPI_tuptable == batch)
			SPI_tuptable = NULL;
		CHECK_FOR_INTERRUPTS();
	}
	if (have_user)
		FinishBatchUser(b, u, in, exclude);
}

PG_FUNCTION_INFO_V1(embedding_recommend_all_for_items);
/*
 * recommend_all_for_items(model, interactions, user_column, item_column,
 * weight_column, k, exclude_seen, version)
 */
Datum
embedding_recommend_all_for_items(PG_FUNCTION_ARGS)
{
	return RecommendAllForItems(fcinfo, &AllItemsPlain);
}

PG_FUNCTION_INFO_V1(embedding_recommend_all_for_items_exclude);
/*
 * recommend_all_for_items(model, interactions, user_column, item_column,
 * weight_column, k, exclude_seen, version, exclude regclass)
 */
Datum
embedding_recommend_all_for_items_exclude(PG_FUNCTION_ARGS)
{
	return RecommendAllForItems(fcinfo, &AllItemsExclude);
}
