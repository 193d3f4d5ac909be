/*
 * store/model_store.h
 *		The one per-backend cache of stored models (recsys.models), for every
 *		kind of model.
 *
 * A kind (mmoe, embeddings, ...) registers a loader that turns a models row
 * into its in-memory form; the store knows nothing else about kinds.  A
 * caller keeps a ModelRef in memory that lives as long as its use of the
 * model (fn_extra, allocated in fn_mcxt).  ModelStoreAcquire resolves the
 * model name to a row once per statement (the active snapshot identifies the
 * statement), through SPI under the caller's privileges, reuses the loaded
 * model when the row (xmin, ctid) is the one cached, and otherwise loads the
 * row into a fresh cache entry.  The ref pins its entry until the holder
 * memory context goes away, so a model that a running query uses is never
 * freed under it, even if a newer version evicts it from the cache.
 *
 * Invalidation rule: an entry is valid exactly while its models row is the
 * visible one.  Kinds whose data lives in further tables (embeddings'
 * vectors) keep that rule true with triggers that touch the models row on
 * every write to those tables; each statement checks that those triggers
 * are there and enabled always, and keeps no entry while they are not.
 * Privilege rule: every call checks SELECT on recsys.models and on each
 * extra table the kind names, whether or not the entry was cached, and a
 * statement's answer is kept for one role only.
 *
 * Citus: when the store tables are Citus reference tables, every read goes
 * to this node's placement of them (recsys.models_<shardid>), because a
 * function running inside a shard task may not run a distributed query; a
 * node without a placement, and a server without Citus, read the tables.
 * ModelStoreRelation says which relation a statement reads; entries and
 * kept plans are keyed on it.
 */
#ifndef MODEL_STORE_H
#define MODEL_STORE_H

#include "postgres.h"

#include "compat.h"

/* Most cache entries kept when no query pins them */
#define MODEL_CACHE_MAX_ENTRIES 16

/* Longest model name (bytes); names are also checked in SQL */
#define MODEL_NAME_MAX 63

/* A kind of model (store/model_kind.h: what a kind's loader implements) */
typedef struct ModelKind ModelKind;

/* SPI's prepared plan (executor/spi.h), for those that keep one per store table */
struct _SPI_plan;

typedef struct ModelCacheEntry ModelCacheEntry;

/* What identifies the statement a lookup was made for */
typedef struct ModelSnapshotKey
{
	uint32		lxid;
	TransactionId xmin;
	TransactionId xmax;
	CommandId	curcid;
	uint32		xcnt;
	uint64		completions;
} ModelSnapshotKey;

typedef struct ModelRef
{
	ModelCacheEntry *entry;		/* pinned entry, or NULL */
	const ModelKind *kind;
	char	   *name;			/* the request the entry answers */
	int			namelen;
	int			version;		/* 0 = the serving alias's, else the newest */
	ModelSnapshotKey snap;
	Oid			userid;			/* the role the answer was given to */
	bool		valid;
	bool		callback_set;
	MemoryContext holder;
	MemoryContextCallback callback;
} ModelRef;

/* The tables of the store */
typedef enum StoreTable
{
	STORE_MODEL_NAMES,
	STORE_MODELS,
	STORE_USER_VECTORS,
	STORE_ITEM_VECTORS,
	STORE_MODEL_ALIASES,		/* absent before ALTER EXTENSION UPDATE to 0.3.0 */
	STORE_MODEL_EVENTS,			/* likewise */
	STORE_NTABLES
} StoreTable;

/* A plan kept per backend for a query over one store table */
typedef struct StorePlan
{
	Oid			relid;			/* the relation the plan reads */
	struct _SPI_plan *plan;
} StorePlan;

extern void ModelStoreRegisterKind(const ModelKind *kind);
extern const void *ModelStoreAcquire(ModelRef *ref, MemoryContext holder,
									 const ModelKind *kind, text *name, int version,
									 uint64 *load_id, int *found_version);
extern void ModelStoreCheckName(const char *name, int len);
RecsysNoreturn extern void ModelStoreReportMissing(const char *name, int version);
extern Oid	ModelStoreOwner(const char *name, int len);
extern bool ModelStoreHasLifecycle(void);
extern Oid	ModelStoreRelation(StoreTable table);
extern struct _SPI_plan *ModelStorePlan(StorePlan *slot, StoreTable table, const char *sql,
										int nargs, Oid *types);

#endif
