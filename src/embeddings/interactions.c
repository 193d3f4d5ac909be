/*
 * embeddings/interactions.c
 *		Reading and checking training interactions (see interactions.h).
 *
 * The source is read once: a plain table the caller may read, not under
 * row-level security, with a direct scan of its tuples under the
 * statement's snapshot (values converted as SQL's casts would: no SPI and
 * no executor per row); anything else (views, RLS, inheritance, Citus
 * tables, column privileges missing) through an SPI cursor in blocks, as
 * SELECT reads it.  Kept rows (weight
 * > 0) go into an array of (user index, item index, weight) triples, indexes
 * numbered in order of first appearance through two hash tables; after the
 * scan the indexes are renumbered in ascending id order, the triples are
 * counting-sorted by item, transposed into rows by user (so each user's
 * items come out ascending, repeated pairs adjacent and summed), and the
 * rows by item are rebuilt from those.  Weights stay double precision until
 * the repeated pairs are summed, and each sum is rounded to real once (as
 * the aggregate engine, which sums in double precision, sees them).  Peak
 * memory is about 28 bytes per kept row, then 16 per distinct pair.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "embeddings/interactions.h"
#include "store/spi_safe.h"
#include "store/values.h"
#include "store/progress.h"
#include "kernel/rng.h"

#define INTERACTIONS_FETCH_ROWS 10000
/* Rows of a direct scan between interrupt checks (a power of two) */
#define INTERACTIONS_SCAN_ROWS 8192
#define INTERACTIONS_CHECK_MASK 0xFFFFF

/* One kept row, indexes in order of first appearance */
typedef struct Triple
{
	int32		u;
	int32		i;
	double		w;				/* rounded to real only once summed */
} Triple;

/* An id and its dense index */
typedef struct IdEntry
{
	int64		id;
	int32		idx;
	char		status;
} IdEntry;

#define SH_PREFIX idmap
#define SH_ELEMENT_TYPE IdEntry
#define SH_KEY_TYPE int64
#define SH_KEY id
#define SH_HASH_KEY(tb, key) ((uint32) RngHash64((uint64) (key)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* Check that the source's columns exist and have usable types */
void
InteractionsCheckSource(const InteractionSource *src)
{
	static const Oid id_types[] = {INT2OID, INT4OID, INT8OID};
	static const Oid weight_types[] = {INT2OID, INT4OID, INT8OID, FLOAT4OID, FLOAT8OID, NUMERICOID};

	static const char *text_ids = "Map text ids to integers through a table of ids, as in the section \"Text ids\" of doc/embeddings.md, and train on a view that joins it.";

	RecsysColumnTypeHinted(src->relid, src->user_column, "user column", id_types,
						   lengthof(id_types), text_ids);
	RecsysColumnTypeHinted(src->relid, src->item_column, "item column", id_types,
						   lengthof(id_types), text_ids);
	if (src->weight_column)
		RecsysColumnType(src->relid, src->weight_column, "weight column", weight_types,
						 lengthof(weight_types));
}

/* Raise the error for the first kind of bad row found, with its count */
void
InteractionsReportBadRows(const InteractionSource *src, const RowChecks *c, int64 kept)
{
	char	   *rel = RecsysRelationSqlName(src->relid);

	if (c->null_user > 0 || c->null_item > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s column \"%s\" of %s is NULL in " INT64_FORMAT " row(s)",
						c->null_user > 0 ? "user" : "item",
						c->null_user > 0 ? src->user_column : src->item_column, rel,
						c->null_user > 0 ? c->null_user : c->null_item)));
	if (c->null_weight > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("weight column \"%s\" of %s is NULL in " INT64_FORMAT " row(s)",
						src->weight_column, rel, c->null_weight)));
	if (c->bad_weight > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("weight column \"%s\" of %s is NaN or infinite in " INT64_FORMAT " row(s)",
						src->weight_column, rel, c->bad_weight)));
	if (c->neg_weight > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("weight column \"%s\" of %s is negative in " INT64_FORMAT " row(s)",
						src->weight_column, rel, c->neg_weight),
				 errhint("Weights are confidences and must be zero or more.")));
	if (kept == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("interactions table %s has no rows with a positive weight", rel)));
}

/* Get the dense index of an id, numbering new ids in order of appearance */
static inline int32
MapId(idmap_hash *map, int64 id, const char *what)
{
	bool		found;
	IdEntry    *e = idmap_insert(map, id, &found);

	if (!found)
	{
		if ((int64) map->members > INTERACTIONS_MAX_ENTITIES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many distinct %ss for training", what)));
		e->idx = (int32) (map->members - 1);
	}
	return e->idx;
}

/* qsort comparator of IdEntry by id */
static int
CompareIds(const void *a, const void *b)
{
	int64		x = ((const IdEntry *) a)->id;
	int64		y = ((const IdEntry *) b)->id;

	return x < y ? -1 : x > y;
}

/*
 * Turn an id map into the ascending id array (ids) and the renumbering
 * old index -> position in it (remap)
 */
static int32
SortIds(idmap_hash *map, int64 **ids, int32 **remap)
{
	int32		n = (int32) map->members;
	IdEntry    *all = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(IdEntry) * Max(n, 1));
	idmap_iterator it;
	IdEntry    *e;
	int32		t = 0;

	idmap_start_iterate(map, &it);
	while ((e = idmap_iterate(map, &it)) != NULL)
		all[t++] = *e;
	qsort(all, n, sizeof(IdEntry), CompareIds);
	*ids = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * Max(n, 1));
	*remap = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int32) * Max(n, 1));
	for (t = 0; t < n; t++)
	{
		(*ids)[t] = all[t].id;
		(*remap)[all[t].idx] = t;
	}
	pfree(all);
	return n;
}

/* Allocate n elements of size sz (more than 1 GB allowed) */
static void *
AllocHuge(Size n, Size sz)
{
	if (n > 0 && sz > MaxAllocHugeSize / n)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training interactions are too large")));
	return MemoryContextAllocHuge(CurrentMemoryContext, Max(n * sz, 1));
}

/*
 * Build the compressed rows of out from the triples (indexes already in
 * ascending id order), summing repeated pairs
 */
static void
BuildRows(Interactions *out, Triple *triples, int64 kept)
{
	int32		nu = out->n_users;
	int32		ni = out->n_items;
	int64	   *iptr = AllocHuge(ni + 1, sizeof(int64));
	int32	   *iusers = AllocHuge(kept, sizeof(int32));
	double	   *iconf = AllocHuge(kept, sizeof(double));
	double	   *uconf;
	int64	   *fill;
	int64		nnz;

	/* counting sort of the triples by item */
	memset(iptr, 0, sizeof(int64) * (ni + 1));
	for (int64 r = 0; r < kept; r++)
		iptr[triples[r].i + 1]++;
	for (int32 i = 0; i < ni; i++)
		iptr[i + 1] += iptr[i];
	fill = AllocHuge(Max(nu, ni) + 1, sizeof(int64));
	memcpy(fill, iptr, sizeof(int64) * ni);
	for (int64 r = 0; r < kept; r++)
	{
		int64		at = fill[triples[r].i]++;

		iusers[at] = triples[r].u;
		iconf[at] = triples[r].w;
		if ((r & INTERACTIONS_CHECK_MASK) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(triples);

	/* transpose into rows by user: items come out ascending, repeats adjacent */
	out->user_ptr = AllocHuge(nu + 1, sizeof(int64));
	out->user_items = AllocHuge(kept, sizeof(int32));
	uconf = AllocHuge(kept, sizeof(double));
	memset(out->user_ptr, 0, sizeof(int64) * (nu + 1));
	for (int64 j = 0; j < kept; j++)
		out->user_ptr[iusers[j] + 1]++;
	for (int32 u = 0; u < nu; u++)
		out->user_ptr[u + 1] += out->user_ptr[u];
	memcpy(fill, out->user_ptr, sizeof(int64) * nu);
	for (int32 i = 0; i < ni; i++)
		for (int64 j = iptr[i]; j < iptr[i + 1]; j++)
		{
			int64		at = fill[iusers[j]]++;

			out->user_items[at] = i;
			uconf[at] = iconf[j];
		}
	pfree(iusers);
	pfree(iconf);

	/* sum repeated pairs in place in double precision */
	nnz = 0;
	for (int32 u = 0; u < nu; u++)
	{
		int64		j = out->user_ptr[u];
		int64		end = out->user_ptr[u + 1];

		out->user_ptr[u] = nnz;
		while (j < end)
		{
			int32		i = out->user_items[j];
			double		w = 0.0;

			for (; j < end && out->user_items[j] == i; j++)
				w += uconf[j];
			if (!isfinite((float) w))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("weights of user " INT64_FORMAT " and item " INT64_FORMAT
								" add up to %g, out of range for real",
								out->user_ids[u], out->item_ids[i], w),
						 errhint("Confidences are kept as real: scale the weights down.")));
			out->user_items[nnz] = i;
			uconf[nnz] = w;
			nnz++;
		}
		if ((u & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	out->user_ptr[nu] = nnz;
	out->nnz = nnz;
	if (nnz < kept)
		out->user_items = repalloc_huge(out->user_items, sizeof(int32) * Max(nnz, 1));
	/* each pair's sum rounded to real once */
	out->user_conf = AllocHuge(nnz, sizeof(float));
	for (int64 j = 0; j < nnz; j++)
		out->user_conf[j] = (float) uconf[j];
	pfree(uconf);

	/* rows by item from rows by user: users come out ascending */
	out->item_ptr = iptr;
	out->item_users = AllocHuge(nnz, sizeof(int32));
	out->item_conf = AllocHuge(nnz, sizeof(float));
	memset(iptr, 0, sizeof(int64) * (ni + 1));
	for (int64 j = 0; j < nnz; j++)
		iptr[out->user_items[j] + 1]++;
	for (int32 i = 0; i < ni; i++)
		iptr[i + 1] += iptr[i];
	memcpy(fill, iptr, sizeof(int64) * ni);
	for (int32 u = 0; u < nu; u++)
		for (int64 j = out->user_ptr[u]; j < out->user_ptr[u + 1]; j++)
		{
			int64		at = fill[out->user_items[j]]++;

			out->item_users[at] = u;
			out->item_conf[at] = out->user_conf[j];
		}
	pfree(fill);
}

/* What the loader keeps while reading rows */
typedef struct LoadState
{
	Interactions *out;
	RowChecks	checks;
	idmap_hash *users;
	idmap_hash *items;
	Triple	   *triples;
	int64		cap;
	int64		kept;
	bool		storing;
	Size		budget;
	Size		per_entity;
	Size	   *needed;
	MemoryContext scratch;
} LoadState;

/* Check one row and keep it (user, item, weight), counting bad ones */
static inline void
AddRow(LoadState *st, int64 user, bool nu, int64 item, bool ni, double w, bool nw)
{
	Triple	   *t;

	st->out->n_rows++;
	st->checks.null_user += nu;
	st->checks.null_item += ni;
	st->checks.null_weight += nw;
	if (nw)
		return;
	if (isnan(w) || isinf(w))
	{
		st->checks.bad_weight++;
		return;
	}
	if (w < 0.0)
		st->checks.neg_weight++;
	if (nu || ni || w <= 0.0)
		return;
	st->kept++;
	if (!st->storing)
		return;

	if (st->kept > st->cap)
	{
		int64		new_cap = Max(st->cap * 2, 4096);
		Size		used = (Size) new_cap * sizeof(Triple)
			+ (Size) (st->users->size + st->items->size) * sizeof(IdEntry)
			+ (Size) (st->users->members + st->items->members) * st->per_entity;

		if (used > st->budget)
		{
			/* over budget: keep reading, checking only */
			MemoryContextReset(st->scratch);
			st->storing = false;
			*st->needed = used;
			return;
		}
		st->triples = st->triples ? repalloc_huge(st->triples, sizeof(Triple) * new_cap)
			: MemoryContextAllocHuge(st->scratch, sizeof(Triple) * new_cap);
		st->cap = new_cap;
	}
	t = &st->triples[st->kept - 1];
	t->u = MapId(st->users, user, "user");
	t->i = MapId(st->items, item, "item");
	t->w = w;
}

/* Read the source through an SPI cursor (views, RLS, inheritance, Citus: what SELECT reads) */
static void
ReadWithSpi(const InteractionSource *src, LoadState *st)
{
	char	   *sql;
	SPIPlanPtr	plan;
	Portal		portal;

	if (src->weight_column)
		sql = psprintf("SELECT CAST(%s AS pg_catalog.int8), CAST(%s AS pg_catalog.int8),"
					   " CAST(%s AS pg_catalog.float8) FROM %s",
					   quote_identifier(src->user_column), quote_identifier(src->item_column),
					   quote_identifier(src->weight_column), RecsysRelationSqlName(src->relid));
	else
		sql = psprintf("SELECT CAST(%s AS pg_catalog.int8), CAST(%s AS pg_catalog.int8) FROM %s",
					   quote_identifier(src->user_column), quote_identifier(src->item_column),
					   RecsysRelationSqlName(src->relid));
	plan = SPI_prepare(sql, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, INTERACTIONS_FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		nu,
						ni,
						nw = false;
			Datum		du = SPI_getbinval(tup, desc, 1, &nu);
			Datum		di = SPI_getbinval(tup, desc, 2, &ni);
			double		w = 1.0;

			if (src->weight_column)
			{
				Datum		dw = SPI_getbinval(tup, desc, 3, &nw);

				if (!nw)
					w = DatumGetFloat8(dw);
			}
			AddRow(st, nu ? 0 : DatumGetInt64(du), nu, ni ? 0 : DatumGetInt64(di), ni, w, nw);
		}
		SPI_freetuptable(SPI_tuptable);
		ProgressSet(st->out->n_rows);
		ProgressTick();
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_freeplan(plan);
}

/*
 * May the source be read with a direct scan of its table (store/spi_safe.c's
 * rule), and is it not a Citus table, whose rows are in its shards?
 */
static bool
DirectScanAllowed(Relation rel, const InteractionSource *src)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			types[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	AttrNumber	atts[3];
	int			natts = 0;

	atts[natts++] = RecsysColumnNumber(rel, src->user_column);
	atts[natts++] = RecsysColumnNumber(rel, src->item_column);
	if (src->weight_column)
		atts[natts++] = RecsysColumnNumber(rel, src->weight_column);
	if (!RecsysDirectScanAllowed(rel, atts, natts))
		return false;
	if (OidIsValid(get_extension_oid("citus", true)))
	{
		if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_dist_partition"
								  " WHERE CAST(logicalrelid AS pg_catalog.oid) OPERATOR(pg_catalog.=) $1",
								  1, types, args, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "reading pg_dist_partition failed");
		if (SPI_processed > 0)
			return false;
	}
	return true;
}

/*
 * Read the source with a direct scan under the statement's snapshot (no
 * SPI, no executor: values straight from the tuples); returns false, having
 * read nothing, when DirectScanAllowed says no
 */
static bool
ReadDirect(const InteractionSource *src, LoadState *st)
{
	Relation	rel = relation_open(src->relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	au,
				ai,
				aw = InvalidAttrNumber;
	Oid			tu,
				ti,
				tw = InvalidOid;
	TableScanDesc scan;
	TupleTableSlot *slot;
	MemoryContext rows;
	MemoryContext old;
	uint64		n = 0;

	if (!DirectScanAllowed(rel, src))
	{
		relation_close(rel, NoLock);
		return false;
	}
	au = RecsysColumnNumber(rel, src->user_column);
	ai = RecsysColumnNumber(rel, src->item_column);
	tu = TupleDescAttr(desc, au - 1)->atttypid;
	ti = TupleDescAttr(desc, ai - 1)->atttypid;
	if (src->weight_column)
	{
		aw = RecsysColumnNumber(rel, src->weight_column);
		tw = TupleDescAttr(desc, aw - 1)->atttypid;
	}
	/* what a row may allocate (a detoasted numeric) goes away every few rows */
	rows = AllocSetContextCreate(CurrentMemoryContext, "recsys interaction rows", ALLOCSET_SMALL_SIZES);
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	old = MemoryContextSwitchTo(rows);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		nu,
					ni,
					nw = false;
		Datum		du = slot_getattr(slot, au, &nu);
		Datum		di = slot_getattr(slot, ai, &ni);
		double		w = 1.0;

		if (aw != InvalidAttrNumber)
		{
			Datum		dw = slot_getattr(slot, aw, &nw);

			if (!nw)
				w = RecsysNumberValue(dw, tw);
		}
		MemoryContextSwitchTo(old);
		AddRow(st, nu ? 0 : RecsysIntValue(du, tu), nu, ni ? 0 : RecsysIntValue(di, ti), ni, w, nw);
		MemoryContextSwitchTo(rows);
		if ((++n & (INTERACTIONS_SCAN_ROWS - 1)) == 0)
		{
			MemoryContextSwitchTo(old);
			MemoryContextReset(rows);
			ProgressSet(st->out->n_rows);
			ProgressTick();
			CHECK_FOR_INTERRUPTS();
			MemoryContextSwitchTo(rows);
		}
	}
	MemoryContextSwitchTo(old);
	ProgressSet(st->out->n_rows);
	ProgressTick();
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(rows);
	relation_close(rel, NoLock);
	return true;
}

/*
 * Read and check the source.  When budget > 0, also load it into out:
 * returns false (out left without rows) when the load buffer, the id maps
 * and per_entity bytes per entity would pass the budget, and *needed gets
 * the bytes of the loaded structures plus per_entity per entity.  Every row
 * is read and checked either way; a bad row is an error.
 */
bool
InteractionsLoad(const InteractionSource *src, Interactions *out, Size budget,
				 Size per_entity, Size *needed)
{
	MemoryContext caller = CurrentMemoryContext;
	LoadState	st;
	RowChecks	checks;
	idmap_hash *users;
	idmap_hash *items;
	Triple	   *triples;
	int64		kept;
	bool		storing;

	memset(out, 0, sizeof(Interactions));
	memset(&st, 0, sizeof(st));
	*needed = 0;
	st.out = out;
	st.storing = budget > 0;
	st.budget = budget;
	st.per_entity = per_entity;
	st.needed = needed;
	/* the maps and the triples live here until the rows are built */
	st.scratch = AllocSetContextCreate(caller, "recsys interactions", ALLOCSET_DEFAULT_SIZES);
	if (st.storing)
	{
		st.users = idmap_create(st.scratch, 1024, NULL);
		st.items = idmap_create(st.scratch, 1024, NULL);
	}
	ProgressPhase("reading", 0, 0, "rows");
	if (!ReadDirect(src, &st))
		ReadWithSpi(src, &st);
	checks = st.checks;
	users = st.users;
	items = st.items;
	triples = st.triples;
	kept = st.kept;
	storing = st.storing;
	InteractionsReportBadRows(src, &checks, kept);
	if (!storing)
	{
		MemoryContextDelete(st.scratch);
		if (*needed == 0 && budget > 0)
			*needed = budget + 1;
		return false;
	}

	/* ascending ids, then the rows (built in the caller's context) */
	MemoryContextSwitchTo(caller);
	{
		int32	   *remap_u,
				   *remap_i;

		out->n_users = SortIds(users, &out->user_ids, &remap_u);
		out->n_items = SortIds(items, &out->item_ids, &remap_i);
		for (int64 r = 0; r < kept; r++)
		{
			triples[r].u = remap_u[triples[r].u];
			triples[r].i = remap_i[triples[r].i];
		}
		pfree(remap_u);
		pfree(remap_i);
		idmap_destroy(users);
		idmap_destroy(items);
		BuildRows(out, triples, kept);
	}
	MemoryContextDelete(st.scratch);

	*needed = (Size) (out->n_users + out->n_items) * (2 * sizeof(int64) + per_entity)
		+ (Size) out->nnz * 2 * (sizeof(int32) + sizeof(float));
	if (*needed > budget)
	{
		pfree(out->user_ids);
		pfree(out->item_ids);
		pfree(out->user_ptr);
		pfree(out->user_items);
		pfree(out->user_conf);
		pfree(out->item_ptr);
		pfree(out->item_users);
		pfree(out->item_conf);
		out->user_ids = out->item_ids = NULL;
		out->user_ptr = out->item_ptr = NULL;
		return false;
	}
	return true;
}
