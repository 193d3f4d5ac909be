/*
 * store/model_store.c
 *		The per-backend cache of loaded models from recsys.models, for every
 *		kind that registers a loader (see model_store.h for the rules).
 *
 * Invalidation: recsys.models is an ordinary table, so inserting or deleting
 * a version sends no relcache or syscache invalidation.  Instead every
 * statement resolves the model name once with an index lookup (through SPI,
 * under the statement's snapshot and the caller's privileges) and compares
 * the row's identity, (xmin, ctid), with the cached entry's: a new version,
 * a drop, a re-import under a reused version number or an UPDATE of the row
 * all give a different row or none.  Within a statement the first answer is
 * reused, so a query over a million rows looks the model up once and parses
 * it at most once.
 *
 * Memory: entries live in their own contexts under "recsys model cache"
 * (a child of CacheMemoryContext).  At most MODEL_CACHE_MAX_ENTRIES
 * unpinned entries are kept (least recently used evicted first).  Entries
 * pinned by a running statement are only unlinked, and freed when the last
 * pin goes (the pin is dropped by a reset callback on the holder context, so
 * also on error).
 */
#include "postgres.h"

#include <ctype.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "storage/itemptr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "catalog/namespace.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "utils/rel.h"
#include "access/table.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "catalog/indexing.h"
#include "nodes/value.h"
#include "utils/fmgroids.h"
#include "parser/parse_func.h"

#include "compat.h"
#include "store/model_kind.h"
#include "store/spi_safe.h"
#include "store/sql_version.h"

/* Registered kinds (a handful: one per model family) */
#define MODEL_MAX_KINDS 8
static const ModelKind *ModelKinds[MODEL_MAX_KINDS];
static int	ModelKindCount = 0;

struct ModelCacheEntry
{
	ModelCacheEntry *next;
	MemoryContext cxt;			/* holds the entry, its name and the model */
	const ModelKind *kind;
	char	   *name;
	int			version;
	Oid			relid;			/* the relation the row was read from */
	TransactionId xmin;
	ItemPointerData tid;
	uint64		triggers;		/* TouchTriggers' signature when loaded */
	void	   *model;
	uint64		load_id;
	int			pins;
	bool		linked;			/* still in the cache list */
	uint64		last_used;
	uint64		lookups;
	TimestampTz loaded_at;
};

static MemoryContext ModelCacheContext = NULL;
static ModelCacheEntry *ModelCacheHead = NULL;
static uint64 ModelCacheClock = 0;
static uint64 ModelLoadCounter = 0;
static StorePlan LookupPlan = {InvalidOid, NULL};
/* Whether the warning that the cache is off was given (once while it is) */
static bool CacheOffWarned = false;

/* Names of the store tables, by StoreTable */
static const char *const StoreTableNames[STORE_NTABLES] = {
	"model_names", "models", "user_vectors", "item_vectors", "model_aliases", "model_events"
};

/* The relations this statement reads (see ModelStoreRelation) */
static Oid	StoreRelids[STORE_NTABLES];
static ModelSnapshotKey StoreRelKey;
static bool StoreRelValid = false;

/* Get the key of the active snapshot; false when there is none */
static bool
CurrentSnapshotKey(ModelSnapshotKey *key)
{
	Snapshot	snap;

	memset(key, 0, sizeof(*key));
	if (!ActiveSnapshotSet())
		return false;
	snap = GetActiveSnapshot();
	key->lxid = RecsysLocalXid();
	key->xmin = snap->xmin;
	key->xmax = snap->xmax;
	key->curcid = snap->curcid;
	key->xcnt = snap->xcnt;
	key->completions = snap->snapXactCompletionCount;
	return true;
}

/* Free an entry that is neither linked nor pinned */
static void
FreeEntry(ModelCacheEntry *e)
{
	Assert(!e->linked && e->pins == 0);
	MemoryContextDelete(e->cxt);
}

/* Take an entry out of the cache list; free it unless a statement pins it */
static void
UnlinkEntry(ModelCacheEntry *e)
{
	ModelCacheEntry **p;

	for (p = &ModelCacheHead; *p; p = &(*p)->next)
		if (*p == e)
		{
			*p = e->next;
			break;
		}
	e->next = NULL;
	e->linked = false;
	if (e->pins == 0)
		FreeEntry(e);
}

/* Evict least recently used unpinned entries beyond the cache size */
static void
EvictEntries(void)
{
	for (;;)
	{
		int			n = 0;
		ModelCacheEntry *victim = NULL;

		for (ModelCacheEntry *e = ModelCacheHead; e; e = e->next)
		{
			n++;
			if (e->pins == 0 && (victim == NULL || e->last_used < victim->last_used))
				victim = e;
		}
		if (n <= MODEL_CACHE_MAX_ENTRIES || victim == NULL)
			return;
		UnlinkEntry(victim);
	}
}

/* Unpin the entry a ref holds (also the holder context's reset callback) */
static void
ReleaseRef(void *arg)
{
	ModelRef   *ref = (ModelRef *) arg;
	ModelCacheEntry *e = ref->entry;

	ref->entry = NULL;
	ref->valid = false;
	if (e == NULL)
		return;
	Assert(e->pins > 0);
	e->pins--;
	if (!e->linked && e->pins == 0)
		FreeEntry(e);
}

/* Get a palloc'd copy of s with ASCII letters in lower case */
static char *
AsciiLower(const char *s)
{
	char	   *out = pstrdup(s);

	for (char *p = out; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	return out;
}

/*
 * Get a hint naming the model names nearest to name among those the caller
 * can read in recsys.model_names (row-level security applies), by
 * PostgreSQL's rule for misspelt column names: Levenshtein distance (here
 * ignoring ASCII case, since model names are not case-folded), no more
 * than half the name's length, the nearest (up to three) suggested.
 * NULL when name itself is there, none is near, or the caller may not read
 * the names.
 */
static char *
SimilarModelNames(const char *name)
{
	static StorePlan plan = {InvalidOid, NULL};
	MemoryContext caller = CurrentMemoryContext;
	int			len = strlen(name);
	char	   *lower = AsciiLower(name);
	int			best = len / 2;
	const char *found[3];
	int			nfound = 0;
	char	   *hint = NULL;
	int			guc_level;

	if (pg_class_aclcheck(ModelStoreRelation(STORE_MODEL_NAMES), GetUserId(),
						  ACL_SELECT) != ACLCHECK_OK)
		return NULL;
	guc_level = RecsysSpiConnect();
	ModelStorePlan(&plan, STORE_MODEL_NAMES, "SELECT n.name FROM %s n ORDER BY n.name", 0, NULL);
	if (SPI_execute_plan(plan.plan, NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "model name listing failed");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		char	   *cand = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
		int			d;

		if (cand == NULL)
			continue;
		if (strcmp(cand, name) == 0)
		{
			nfound = 0;			/* the name exists: a version is missing */
			break;
		}
		d = varstr_levenshtein_less_equal(lower, len, AsciiLower(cand), strlen(cand), 1, 1, 1,
										  best + 1, true);
		if (d > best)
			continue;
		if (d < best)
			nfound = 0;
		best = d;
		if (nfound < lengthof(found))
			found[nfound++] = cand;
	}
	if (nfound > 0)
	{
		StringInfoData s;

		MemoryContextSwitchTo(caller);
		initStringInfo(&s);
		appendStringInfoString(&s, "Perhaps you meant ");
		for (int i = 0; i < nfound; i++)
			appendStringInfo(&s, "%s\"%s\"", i == 0 ? "" : i == nfound - 1 ? " or " : ", ",
							 found[i]);
		appendStringInfoChar(&s, '.');
		hint = s.data;
	}
	RecsysSpiFinish(guc_level);
	MemoryContextSwitchTo(caller);
	return hint;
}

/*
 * Raise the error for a model name (or its version, when has_version) that
 * has no row the caller can see, suggesting the nearest names when the
 * name itself has none: the one place that reports an unknown model
 */
RecsysNoreturn static void
ReportMissing(const char *name, bool has_version, int version)
{
	char	   *hint = SimilarModelNames(name);

	if (!has_version)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name),
				 hint ? errhint("%s", hint) : 0));
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("model \"%s\" has no version %d", name, version),
			 hint ? errhint("%s", hint) : 0));
}

/* Raise the error for an unknown model, or version when version is not 0 */
void
ModelStoreReportMissing(const char *name, int version)
{
	ReportMissing(name, version != 0, version);
}

/*
 * Get the version under the alias serving of a model, 0 when it has none
 * (or the store has no aliases yet: 0.2.0's SQL).  Call inside an SPI
 * connection.  The SQL twin is recsys.resolve_model_version.
 */
static int
ServingVersion(const char *name)
{
	static StorePlan plan = {InvalidOid, NULL};
	Oid			types[1] = {TEXTOID};
	Datum		args[1];
	int			ret;
	Oid			aliases = ModelStoreRelation(STORE_MODEL_ALIASES);

	if (!OidIsValid(aliases))
		return 0;
	if (pg_class_aclcheck(aliases, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table model_aliases"),
				 errdetail("A call without a version serves the version under the alias serving."),
				 errhint("Grant SELECT on recsys.model_aliases, or pass a version.")));
	ModelStorePlan(&plan, STORE_MODEL_ALIASES,
				   "SELECT a.version FROM %s a WHERE a.model OPERATOR(pg_catalog.=) $1"
				   " AND a.alias OPERATOR(pg_catalog.=) 'serving'", 1, types);
	args[0] = CStringGetTextDatum(name);
	ret = SPI_execute_plan(plan.plan, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "model alias lookup failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			return DatumGetInt32(d);
	}
	return 0;
}

/*
 * Find the row of a model (when version is 0: the version under the alias
 * serving, else the newest) and get the cache entry for it, parsing the row
 * when the cache has no entry for that exact row.  The entry comes back
 * pinned.
 */
static ModelCacheEntry *
LookupEntry(const ModelKind *kind, const char *name, int version, bool cacheable,
			uint64 triggers)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	int			ret;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	int			found_version;
	TransactionId xmin;
	ItemPointerData tid;
	ModelCacheEntry *e;
	int			guc_level;
	SPIPlanPtr	plan;

	if (ModelCacheContext == NULL)
		ModelCacheContext = AllocSetContextCreate(CacheMemoryContext,
												  "recsys model cache",
												  ALLOCSET_DEFAULT_SIZES);

	guc_level = RecsysSpiConnect();
	/* one resolution rule for every serving function: version > serving > newest */
	if (version == 0)
		version = ServingVersion(name);
	{
		Oid			types[2] = {TEXTOID, INT4OID};

		plan = ModelStorePlan(&LookupPlan, STORE_MODELS,
							  "SELECT m.version, m.kind, m.xmin, m.ctid, m.config, m.weights"
							  " FROM %s m"
							  " WHERE m.name OPERATOR(pg_catalog.=) $1"
							  " AND ($2 IS NULL OR m.version OPERATOR(pg_catalog.=) $2)"
							  " ORDER BY m.version DESC LIMIT 1", 2, types);
	}
	args[0] = CStringGetTextDatum(name);
	args[1] = Int32GetDatum(version);
	if (version == 0)
		nulls[1] = 'n';
	ret = SPI_execute_plan(plan, args, nulls, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "model lookup failed: %s", SPI_result_code_string(ret));

	if (SPI_processed == 0)
	{
		/* the model is gone: forget what we had of it */
		ModelCacheEntry *next;

		for (e = ModelCacheHead; e; e = next)
		{
			next = e->next;
			if (strcmp(e->name, name) == 0 && (version == 0 || e->version == version))
				UnlinkEntry(e);
		}
		ModelStoreReportMissing(name, version);
	}

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	found_version = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	{
		char	   *found_kind = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));

		if (strcmp(found_kind, kind->name) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("model \"%s\" version %d is of kind \"%s\", not \"%s\"",
							name, found_version, found_kind, kind->name)));
	}
	xmin = DatumGetTransactionId(SPI_getbinval(tup, desc, 3, &isnull));
	ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(tup, desc, 4, &isnull)), &tid);

	for (e = ModelCacheHead; e; e = e->next)
		if (e->version == found_version && e->kind == kind && strcmp(e->name, name) == 0)
			break;
	if (e && (!cacheable || e->triggers != triggers ||
			  e->relid != LookupPlan.relid || e->xmin != xmin ||
			  !ItemPointerEquals(&e->tid, &tid)))
	{
		/*
		 * another row now has this name and version, or the store is read
		 * from another relation (a Citus placement came or went), or the
		 * triggers that keep the row's identity in step with the kind's
		 * tables were changed (they may have been off while those tables
		 * were written) or are off now: stale
		 */
		UnlinkEntry(e);
		e = NULL;
	}

	if (e == NULL)
	{
		Datum		config = SPI_getbinval(tup, desc, 5, &isnull);
		Datum		weights;
		bytea	   *w;
		MemoryContext cxt;
		MemoryContext old;

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("model \"%s\" version %d has no config", name, found_version)));
		weights = SPI_getbinval(tup, desc, 6, &isnull);
		w = isnull ? NULL : DatumGetByteaPP(weights);

		/* build under the caller's context; an error frees it with that */
		cxt = AllocSetContextCreate(caller, "recsys model", ALLOCSET_DEFAULT_SIZES);
		old = MemoryContextSwitchTo(cxt);
		e = palloc0(sizeof(ModelCacheEntry));
		e->cxt = cxt;
		e->name = pstrdup(name);
		e->version = found_version;
		e->kind = kind;
		e->relid = LookupPlan.relid;
		e->xmin = xmin;
		e->tid = tid;
		e->triggers = triggers;
		{
			ModelStoreRow row;

			row.name = e->name;
			row.version = found_version;
			row.config = DatumGetJsonbP(config);
			row.weights = w;
			e->model = kind->load(&row);
		}
		e->loaded_at = GetCurrentTimestamp();
		e->load_id = ++ModelLoadCounter;
		MemoryContextSwitchTo(old);
		MemoryContextSetParent(cxt, ModelCacheContext);
		if (cacheable)
		{
			e->linked = true;
			e->next = ModelCacheHead;
			ModelCacheHead = e;
		}
	}
	e->pins++;
	e->lookups++;
	e->last_used = ++ModelCacheClock;
	RecsysSpiFinish(guc_level);
	EvictEntries();
	return e;
}

/*
 * Find the relations of the store this node reads: this node's placements
 * when the store tables are Citus tables with a placement here, else the
 * tables themselves.
 */
static void
ResolveStoreRelations(Oid *relids)
{
	Oid			nsp = get_namespace_oid("recsys", false);
	Oid			types[1] = {OIDOID};
	Datum		args[1];
	int			guc_level;
	int			ret;

	/* the store's tables and columns as this library reads and writes them */
	RecsysRequireSqlVersion(RECSYS_SQL_STORE);
	for (int t = 0; t < STORE_NTABLES; t++)
	{
		relids[t] = get_relname_relid(StoreTableNames[t], nsp);
		/* 0.2.0's SQL (before ALTER EXTENSION UPDATE) has no aliases or events */
		if (!OidIsValid(relids[t]) && t < STORE_MODEL_ALIASES)
			elog(ERROR, "recsys.%s is missing", StoreTableNames[t]);
	}
	/* without Citus in this database there are no placements */
	if (!OidIsValid(get_extension_oid("citus", true)))
		return;

	/* not a kept plan: Citus's catalogs go away with DROP EXTENSION citus */
	guc_level = RecsysSpiConnect();
	args[0] = ObjectIdGetDatum(nsp);
	ret = SPI_execute_with_args("SELECT c.relname::pg_catalog.text, s.shardid"
								" FROM pg_catalog.pg_class c"
								" JOIN pg_catalog.pg_dist_shard s"
								" ON s.logicalrelid::pg_catalog.oid OPERATOR(pg_catalog.=) c.oid"
								" JOIN pg_catalog.pg_dist_placement p"
								" ON p.shardid OPERATOR(pg_catalog.=) s.shardid"
								" JOIN pg_catalog.pg_dist_local_group g"
								" ON g.groupid OPERATOR(pg_catalog.=) p.groupid"
								" WHERE c.relnamespace OPERATOR(pg_catalog.=) $1",
								1, types, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the Citus placements of the store: %s",
			 SPI_result_code_string(ret));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		bool		isnull;
		char	   *relname = TextDatumGetCString(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		int64		shardid = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));

		for (int t = 0; t < STORE_NTABLES; t++)
			if (strcmp(relname, StoreTableNames[t]) == 0)
			{
				char		placement[NAMEDATALEN * 2];
				Oid			relid;

				snprintf(placement, sizeof(placement), "%s_" INT64_FORMAT, relname, shardid);
				relid = get_relname_relid(placement, nsp);
				if (OidIsValid(relid))
					relids[t] = relid;
			}
	}
	RecsysSpiFinish(guc_level);
}

/*
 * Get the relation that this statement reads for a store table: this node's
 * Citus placement of it when there is one, else the table.  Resolved once
 * per statement.
 */
Oid
ModelStoreRelation(StoreTable table)
{
	ModelSnapshotKey key;
	bool		have_key = CurrentSnapshotKey(&key);

	Assert(table >= 0 && table < STORE_NTABLES);
	if (!StoreRelValid || !have_key || memcmp(&key, &StoreRelKey, sizeof(key)) != 0)
	{
		Oid			relids[STORE_NTABLES];

		StoreRelValid = false;
		ResolveStoreRelations(relids);
		memcpy(StoreRelids, relids, sizeof(relids));
		StoreRelKey = key;
		StoreRelValid = have_key;
	}
	return StoreRelids[table];
}

/*
 * Get a kept plan of a query over a store table (sql names it as %s), for
 * the relation this statement reads; prepared again when that changes.
 * Call inside an SPI connection.
 */
SPIPlanPtr
ModelStorePlan(StorePlan *slot, StoreTable table, const char *sql, int nargs, Oid *types)
{
	Oid			relid = ModelStoreRelation(table);
	char	   *relname;
	char	   *query;
	SPIPlanPtr	p;

	if (slot->plan != NULL && slot->relid == relid)
		return slot->plan;
	if (slot->plan != NULL)
	{
		SPI_freeplan(slot->plan);
		slot->plan = NULL;
	}
	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										 get_rel_name(relid));
	query = psprintf(sql, relname);
	p = SPI_prepare(query, nargs, types);
	if (p == NULL || SPI_keepplan(p) != 0)
		elog(ERROR, "could not prepare a query over recsys.%s: %s",
			 StoreTableNames[table], SPI_result_code_string(SPI_result));
	pfree(query);
	pfree(relname);
	slot->plan = p;
	slot->relid = relid;
	return p;
}

/* Register a kind of model (from _PG_init) */
void
ModelStoreRegisterKind(const ModelKind *kind)
{
	for (int i = 0; i < ModelKindCount; i++)
		if (ModelKinds[i] == kind)
			return;
	if (ModelKindCount >= MODEL_MAX_KINDS)
		elog(ERROR, "too many model kinds");
	ModelKinds[ModelKindCount++] = kind;
}

/* Raise an error unless name is a usable model name */
void
ModelStoreCheckName(const char *name, int len)
{
	bool		blank = true;

	for (int i = 0; i < len; i++)
		if (!isspace((unsigned char) name[i]))
		{
			blank = false;
			break;
		}
	if (len == 0 || blank)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model name must not be empty or blank")));
	if (len > MODEL_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("model name is %d bytes long, more than the %d allowed", len,
						MODEL_NAME_MAX)));
}

/*
 * Get the owner role of a model name: the owner of its sequence
 * recsys_names.<name>; InvalidOid when there is none.
 */
Oid
ModelStoreOwner(const char *name, int len)
{
	char		relname[NAMEDATALEN];
	Oid			nsp;
	Oid			relid;
	HeapTuple	tup;
	Oid			owner = InvalidOid;

	if (len <= 0 || len >= NAMEDATALEN)
		return InvalidOid;
	nsp = get_namespace_oid("recsys_names", true);
	if (!OidIsValid(nsp))
		return InvalidOid;
	memcpy(relname, name, len);
	relname[len] = '\0';
	relid = get_relname_relid(relname, nsp);
	if (!OidIsValid(relid))
		return InvalidOid;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tup))
	{
		Form_pg_class cls = (Form_pg_class) GETSTRUCT(tup);

		if (cls->relkind == RELKIND_SEQUENCE)
			owner = cls->relowner;
		ReleaseSysCache(tup);
	}
	return owner;
}

/*
 * Check, for this statement, that the current user may read every further
 * table the kind reads (the cache must never answer whom a query would not).
 */
static void
CheckKindTables(const ModelKind *kind)
{
	if (kind->tables == NULL)
		return;
	for (const char *const *t = kind->tables; *t; t++)
	{
		Oid			nsp = get_namespace_oid("recsys", false);
		Oid			relid = get_relname_relid(*t, nsp);

		if (!OidIsValid(relid))
			elog(ERROR, "recsys.%s is missing", *t);
		if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for table %s", *t),
					 errhint("Models of kind \"%s\" need SELECT on recsys.%s.", kind->name, *t)));
	}
}

/*
 * Check the triggers that keep a models row's identity in step with the
 * kind's further tables (recsys.vectors_touch_models on the relation this
 * statement reads for each of them): true when every write event has one,
 * enabled ALWAYS (so session_replication_role = replica fires it too).
 * *signature identifies the state of every trigger on those relations (oid
 * and xmin of each pg_trigger row): ENABLE/DISABLE TRIGGER writes the row,
 * so an entry loaded before triggers were turned off and on again is seen
 * as stale.  Read through the catalog snapshot, once per statement.
 */
static bool
TouchTriggers(const ModelKind *kind, uint64 *signature)
{
	const int	events = TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE | TRIGGER_TYPE_DELETE |
		TRIGGER_TYPE_TRUNCATE;
	Oid			touch;
	bool		intact = true;
	uint64		sig = UINT64CONST(1469598103934665603);

	*signature = 0;
	if (kind->tables == NULL)
		return true;
	touch = LookupFuncName(list_make2(makeString("recsys"), makeString("vectors_touch_models")),
						   0, NULL, true);
	for (const char *const *t = kind->tables; *t; t++)
	{
		Relation	tgrel;
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;
		Oid			relid = InvalidOid;
		int			seen = 0;

		for (int st = 0; st < STORE_NTABLES; st++)
			if (strcmp(*t, StoreTableNames[st]) == 0)
				relid = ModelStoreRelation((StoreTable) st);
		if (!OidIsValid(relid))
			elog(ERROR, "recsys.%s is not a table of the model store", *t);
		tgrel = table_open(TriggerRelationId, AccessShareLock);
		ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(relid));
		scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, NULL, 1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_trigger tg = (Form_pg_trigger) GETSTRUCT(tup);

			sig = (sig ^ tg->oid) * UINT64CONST(1099511628211);
			sig = (sig ^ HeapTupleHeaderGetRawXmin(tup->t_data)) * UINT64CONST(1099511628211);
			sig = (sig ^ (uint64) (unsigned char) tg->tgenabled) * UINT64CONST(1099511628211);
			if (OidIsValid(touch) && tg->tgfoid == touch &&
				tg->tgenabled == TRIGGER_FIRES_ALWAYS &&
				!TRIGGER_FOR_ROW(tg->tgtype) && TRIGGER_FOR_AFTER(tg->tgtype))
				seen |= tg->tgtype & events;
		}
		systable_endscan(scan);
		table_close(tgrel, AccessShareLock);
		if (seen != events)
			intact = false;
	}
	*signature = sig;
	return intact;
}

/*
 * Check, on every call, that the current user may read the relations a
 * model of this kind is read from: recsys.models (the relation this
 * statement reads) and the kind's further tables.  Cheap (acl checks on
 * syscache entries), so a model cached for one role never answers another.
 */
static void
CheckPrivileges(const ModelKind *kind)
{
	Oid			models = ModelStoreRelation(STORE_MODELS);

	if (pg_class_aclcheck(models, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table models"),
				 errhint("Reading a model needs SELECT on recsys.models.")));
	CheckKindTables(kind);
}

/*
 * Get the model of a kind that a statement asks for, by name and version
 * (0 = the version under the alias serving, else the newest).  ref
 * (allocated in holder, zeroed before first use)
 * remembers the answer for the rest of the statement and pins it until
 * holder is reset.  *load_id identifies the loaded model (it changes when
 * the model does); *found_version (if not NULL) is the version used.
 */
const void *
ModelStoreAcquire(ModelRef *ref, MemoryContext holder, const ModelKind *kind,
				  text *name, int version, uint64 *load_id, int *found_version)
{
	const char *n = VARDATA_ANY(name);
	int			len = VARSIZE_ANY_EXHDR(name);
	ModelSnapshotKey key;
	bool		have_key = CurrentSnapshotKey(&key);
	ModelCacheEntry *e;
	char	   *cname;
	bool		cacheable;
	uint64		triggers;

	if (ref->valid && have_key && ref->kind == kind && ref->version == version &&
		ref->userid == GetUserId() &&
		ref->namelen == len && memcmp(ref->name, n, len) == 0 &&
		memcmp(&ref->snap, &key, sizeof(key)) == 0)
	{
		/* the same statement and role: the answer stands, the grants may not */
		CheckPrivileges(kind);
		*load_id = ref->entry->load_id;
		if (found_version)
			*found_version = ref->entry->version;
		return ref->entry->model;
	}

	ModelStoreCheckName(n, len);
	if (version < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model version must be positive")));
	CheckPrivileges(kind);
	cacheable = TouchTriggers(kind, &triggers);
	if (!cacheable && !CacheOffWarned)
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recsys model cache is off: a trigger of the model store is missing or not enabled always"),
				 errdetail("Models of kind \"%s\" are read afresh by every statement while recsys.vectors_touch_models does not fire on every write to %s.",
						   kind->name, "recsys.user_vectors and recsys.item_vectors"),
				 errhint("Run ALTER EXTENSION recsys UPDATE after an upgrade; else ALTER TABLE ... ENABLE ALWAYS TRIGGER each touch_models trigger of recsys.user_vectors and recsys.item_vectors.")));
		CacheOffWarned = true;
	}
	else if (cacheable)
		CacheOffWarned = false;
	cname = text_to_cstring(name);
	e = LookupEntry(kind, cname, version, cacheable, triggers);
	pfree(cname);

	/* swap pins without anything that can fail in between */
	ReleaseRef(ref);
	ref->entry = e;
	if (!ref->callback_set)
	{
		ref->holder = holder;
		ref->callback.func = ReleaseRef;
		ref->callback.arg = ref;
		MemoryContextRegisterResetCallback(holder, &ref->callback);
		ref->callback_set = true;
	}
	if (ref->name == NULL || ref->namelen < len)
	{
		if (ref->name)
			pfree(ref->name);
		ref->name = MemoryContextAlloc(ref->holder, Max(len, 1));
	}
	memcpy(ref->name, n, len);
	ref->namelen = len;
	ref->kind = kind;
	ref->version = version;
	ref->snap = key;
	ref->userid = GetUserId();
	ref->valid = have_key;
	*load_id = e->load_id;
	if (found_version)
		*found_version = e->version;
	return e->model;
}

/*
 * Get whether this database's recsys SQL has the version lifecycle of 0.3.0
 * (recsys.begin_model_version): trainers under 0.2.0's SQL, before ALTER
 * EXTENSION UPDATE, number versions as 0.2.0 did and log nothing.
 */
bool
ModelStoreHasLifecycle(void)
{
	Oid			args[4] = {TEXTOID, TEXTOID, JSONBOID, JSONBOID};

	return OidIsValid(LookupFuncName(list_make2(makeString("recsys"),
												makeString("begin_model_version")),
									 4, args, true));
}

PG_FUNCTION_INFO_V1(model_check_name);
/* Raise an error unless the argument is a usable model name */
Datum
model_check_name(PG_FUNCTION_ARGS)
{
	text	   *name;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name must not be NULL")));
	name = PG_GETARG_TEXT_PP(0);
	ModelStoreCheckName(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(model_raise_missing);
/* Raise the error for an unknown model name or version (SQL functions' use) */
Datum
model_raise_missing(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name must not be NULL")));
	ReportMissing(text_to_cstring(PG_GETARG_TEXT_PP(0)), !PG_ARGISNULL(1),
				  PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(model_cache);
/* List this backend's cached models (for monitoring and tests) */
Datum
model_cache(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (ModelCacheEntry *e = ModelCacheHead; e; e = e->next)
	{
		Datum		values[7];
		bool		nulls[7] = {false};

		values[0] = CStringGetTextDatum(e->name);
		values[1] = Int32GetDatum(e->version);
		values[2] = Int64GetDatum((int64) MemoryContextMemAllocated(e->cxt, true));
		values[3] = Int64GetDatum((int64) e->lookups);
		values[4] = Int32GetDatum(e->pins);
		values[5] = TimestampTzGetDatum(e->loaded_at);
		values[6] = CStringGetTextDatum(e->kind->name);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(model_store_relation);
/* Get the relation this node reads for a store table (a placement on Citus) */
Datum
model_store_relation(PG_FUNCTION_ARGS)
{
	char	   *table = text_to_cstring(PG_GETARG_TEXT_PP(0));

	for (int t = 0; t < STORE_NTABLES; t++)
		if (strcmp(table, StoreTableNames[t]) == 0)
			PG_RETURN_OID(ModelStoreRelation((StoreTable) t));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("\"%s\" is not a table of the model store", table),
			 errhint("The store tables are model_names, models, user_vectors, item_vectors, model_aliases and model_events.")));
	PG_RETURN_NULL();
}

/*
 * Get the owner of a model name from recsys.model_names.owner: the rule of
 * 0.2.0's SQL, which this library serves until ALTER EXTENSION recsys UPDATE
 * creates recsys_names.
 */
static Oid
OwnerBefore030(text *name)
{
	static StorePlan plan = {InvalidOid, NULL};
	Oid			types[1] = {TEXTOID};
	Datum		args[1];
	int			guc_level;
	Oid			owner = InvalidOid;

	guc_level = RecsysSpiConnect();
	ModelStorePlan(&plan, STORE_MODEL_NAMES,
				   "SELECT n.owner FROM %s n WHERE n.name OPERATOR(pg_catalog.=) $1",
				   1, types);
	args[0] = PointerGetDatum(name);
	if (SPI_execute_plan(plan.plan, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "model owner lookup failed");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			owner = DatumGetObjectId(d);
	}
	RecsysSpiFinish(guc_level);
	return owner;
}

PG_FUNCTION_INFO_V1(model_owned);
/*
 * Get whether the current user is a member of the owner role of a model
 * name (false for a name that does not exist).  The owner is the owner of
 * the name's sequence recsys_names.<name>, so this is two syscache lookups:
 * the row-level security policies of the store call it per row.
 */
Datum
model_owned(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	int			len = VARSIZE_ANY_EXHDR(name);
	Oid			owner;

	/* longer names cannot be in the store */
	if (len > MODEL_NAME_MAX)
		PG_RETURN_BOOL(false);
	if (OidIsValid(get_namespace_oid("recsys_names", true)))
		owner = ModelStoreOwner(VARDATA_ANY(name), len);
	else
		owner = OwnerBefore030(name);
	/* the MEMBER test of pg_has_role */
	PG_RETURN_BOOL(OidIsValid(owner) && is_member_of_role(GetUserId(), owner));
}
